/* gptq.h - data-aware weight rounding: the weights of a layer are rounded one
 * input column at a time, and each column's rounding error is spread over the
 * columns not yet rounded so that the layer's output, not each weight, stays
 * close (the optimal-brain-surgeon update of GPTQ, Frantar et al. 2022).
 *
 * For one output row w (length k) and the input second moments H (hessian.h),
 * the output error of the rounded row q is (w - q) H (w - q)^T. With U the
 * upper Cholesky factor of H^-1 (H^-1 = U^T U), columns are taken in order of
 * decreasing H_jj; rounding column j to the grid gives e = (w_j - q_j) / U_jj,
 * and every later column i moves by -e U_ji. The sum of e^2 is the output error
 * the row ends with, so it also picks the row's scale: each of the clipping
 * ratios tried by the nearest-rounding search (quant.h) and, for ternary and
 * binary, factors 0.6..1.4 of their least-squares scale, are run and the one
 * with the smallest error is kept. H gets 1% of its mean diagonal added (and 1
 * on the diagonal of an input that is always 0) so that it is invertible.
 *
 * Weights that are exactly 0 before rounding (pruned) stay 0 and receive no
 * update. Scales are binary16 values as in quant_weights(), and the grid is the
 * same: a rounded layer differs from quant_weights() only in which grid point
 * each weight takes.
 */
#ifndef PRESSO_GPTQ_H
#define PRESSO_GPTQ_H

#include <stdint.h>

#include "quant/hessian.h"
#include "base/status.h"

/* Rounds w[n_out][k] to `bits` (1..8) per output channel with the input
 * moments h (h->k == k; output rows split evenly over h->n_blocks): writes
 * q[n_out][k] and scale[n_out]. Fails only when out of memory; a block whose
 * H cannot be factorised falls back to quant_weights(). */
enum presso_status gptq_quantize(const float *w, int64_t n_out, int64_t k, int bits,
				 const struct layer_hessian *h, int8_t *q, float *scale);

/* The output error sum over rows of (w - s q) H (w - s q)^T of a rounding
 * (for tests and reports). */
double gptq_output_error(const float *w, int64_t n_out, int64_t k, const struct layer_hessian *h,
			 const int8_t *q, const float *scale);

#endif
