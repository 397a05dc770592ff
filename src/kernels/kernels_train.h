/* kernels_train.h - FP32 backward kernels for training (the portable references).
 *
 * Same layout rules as kernels_f32.h: dense row-major tensors, images NCHW,
 * conv weights [c_out, c_in/group, kh, kw]. Every gradient output is
 * ACCUMULATED (dx += ..., dw += ...): a value read by several nodes gets the
 * sum of their contributions, and the caller zeroes the buffers once per
 * backward pass. Kernels never allocate; the ones that need scratch say how
 * much through a *_scratch_bytes() function. Gradient outputs never alias the
 * forward tensors they are computed from.
 *
 * The forward passes they differentiate are kernels_f32.h's: conv2d_f32__ref
 * (without a fused clamp: training runs Relu/Clip as their own nodes),
 * gemm_bias_f32__ref, the pools, batchnorm, add, concat, (log)softmax,
 * transpose; plus batchnorm_train_f32__ref (batch statistics) and the fake
 * quantization of activations, whose forwards live here.
 */
#ifndef PRESSO_KERNELS_TRAIN_H
#define PRESSO_KERNELS_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels_f32.h"

/* --- the kernels each instruction set provides -------------------------------
 * The training drivers below (conv forward and backward, gemm backward) are
 * written once over this table: a path supplies a GEMM that can accumulate
 * and the three depthwise planes. The portable reference (f32_train_ref.c)
 * is the oracle; f32_train_avx2.c and f32_train_avx512.c are checked against
 * it on many shapes (tests/test_train_kernels.c). Float sums run in another
 * order on each path, so paths agree to rounding, not bit for bit; one path
 * is deterministic for a given shape. */

/* C[m,n] (+)= op(A) op(B): A is [m,k] (lda) or, with trans_a, [k,m]; B is
 * [k,n] (ldb) or, with trans_b, [n,k]; with accumulate C is added to, else
 * overwritten (ldc). */
typedef void (*f32t_gemm_fn)(int m, int n, int k, const float *a, int lda, bool trans_a,
			     const float *b, int ldb, bool trans_b, float *c, int ldc,
			     bool accumulate);
/* One channel of a depthwise conv (p's geometry, one input and one output
 * plane): forward y = sum of taps (overwritten, no bias); data dx += taps^T dy;
 * filter dw[kh*kw] += sum over positions of dy * x. */
typedef void (*f32t_dw_forward_fn)(const struct conv2d_params *p, const float *x,
				   const float *w, float *y);
typedef void (*f32t_dw_data_fn)(const struct conv2d_params *p, const float *dy,
				const float *w, float *dx);
typedef void (*f32t_dw_filter_fn)(const struct conv2d_params *p, const float *x,
				  const float *dy, float *dw);

struct f32_train_kernels {
	const char *name;
	f32t_gemm_fn gemm;
	f32t_dw_forward_fn dw_forward;
	f32t_dw_data_fn dw_data;
	f32t_dw_filter_fn dw_filter;
};

enum f32t_isa { F32T_ISA_REF, F32T_ISA_AVX2, F32T_ISA_AVX512, F32T_ISA_COUNT };

/* The kernels of a path, or NULL when this build or this CPU lacks it. */
const struct f32_train_kernels *f32_train_kernels_for(enum f32t_isa isa);

/* The fastest path this CPU runs (PRESSO_ISA=ref|avx2|avx512vnni, as for the
 * INT8 kernels, picks ref, avx2 or avx512). */
const struct f32_train_kernels *f32_train_kernels_best(void);

/* The reference path (also f32_train_kernels_for(F32T_ISA_REF)). */
extern const struct f32_train_kernels f32_train_ref;

/* --- Conv ------------------------------------------------------------------ */

/* Scratch for the conv forward and both backward kernels (p->act_min/act_max
 * are honoured by the forward only). */
size_t conv2d_backward_scratch_bytes(const struct conv2d_params *p);

/* y = clamp(conv(x, w) + bias), as conv2d_f32__ref, on path k. */
void conv2d_forward_f32(const struct f32_train_kernels *k, const struct conv2d_params *p,
			const float *x, const float *w, const float *bias, float *y,
			float *scratch);

/* dx += d(conv)/dx . dy, for dy [n, c_out, h_out, w_out] and w as in the forward. */
void conv2d_backward_data_f32(const struct f32_train_kernels *k, const struct conv2d_params *p,
			      const float *dy, const float *w, float *dx, float *scratch);

/* dw (may be NULL) += sum over the batch of dy (x) im2col(x); db (may be NULL)
 * += dy summed over the batch and the output positions of each channel. */
void conv2d_backward_filter_f32(const struct f32_train_kernels *k,
				const struct conv2d_params *p, const float *x, const float *dy,
				float *dw, float *db, float *scratch);

/* The same on the reference path. */
void conv2d_backward_data_f32__ref(const struct conv2d_params *p, const float *dy,
				   const float *w, float *dx, float *scratch);
void conv2d_backward_filter_f32__ref(const struct conv2d_params *p, const float *x,
				     const float *dy, float *dw, float *db, float *scratch);

/* --- Gemm ------------------------------------------------------------------ */

/* Scratch of gemm_backward_f32 (none now: the products accumulate in place). */
size_t gemm_backward_scratch_bytes(int m, int n, int k);

/* Backward of y[m,n] = alpha op(A) op(B) + beta C (gemm_bias_f32__ref, no clamp):
 * da (may be NULL) += dL/dA in A's own layout ([m,k], or [k,m] with trans_a);
 * db (may be NULL) += dL/dB in B's layout; dc (may be NULL) += beta * dy summed
 * over the dimensions C is broadcast along ([c_m, c_n], each 1 or full).
 * dY is scaled by alpha first when alpha != 1 (into scratch: m * n floats). */
void gemm_backward_f32(const struct f32_train_kernels *k, int m, int n, int kk, float alpha,
		       const float *a, bool trans_a, const float *b, bool trans_b, float beta,
		       int c_m, int c_n, const float *dy, float *da, float *db, float *dc,
		       float *scratch);
void gemm_backward_f32__ref(int m, int n, int k, float alpha, const float *a, bool trans_a,
			    const float *b, bool trans_b, float beta, int c_m, int c_n,
			    const float *dy, float *da, float *db, float *dc, float *scratch);

/* The reference leaves, for the tests. */
void gemm_acc_f32__ref(int m, int n, int k, const float *a, int lda, bool trans_a,
		       const float *b, int ldb, bool trans_b, float *c, int ldc, bool accumulate);

/* --- Pooling ----------------------------------------------------------------- */

/* dx += dy routed to the first maximum of each window (the one the forward
 * kept: maxpool2d_f32__ref keeps the earliest of equal values, and a NaN). */
void maxpool2d_backward_f32__ref(const struct pool2d_params *p, const float *x,
				 const float *dy, float *dx);

/* dx += dy / count spread over each window's counted taps (the divisor of
 * avgpool2d_f32__ref; padding taps take nothing). */
void avgpool2d_backward_f32__ref(const struct pool2d_params *p, const float *dy, float *dx);

/* dx[n, c, hw] += dy[n, c] / hw. */
void global_avgpool_backward_f32__ref(int n, int c, int hw, const float *dy, float *dx);

/* --- Elementwise ----------------------------------------------------------- */

/* dx += dy where lo < x < hi (the derivative of clamp; 0 at the bounds and
 * outside, as PyTorch's relu/hardtanh backward). */
void clip_backward_f32__ref(int64_t count, const float *x, float lo, float hi,
			    const float *dy, float *dx);

/* Numpy-broadcast Add's backward for one operand: da += dy summed over the
 * dimensions a is broadcast along. a_dims is right-aligned to y_rank. */
void add_backward_f32__ref(const int64_t *a_dims, const int64_t *y_dims, int y_rank,
			   const float *dy, float *da);

/* Concat's backward: dxs[t] += its slice of dy (views as concat_f32__ref). */
void concat_backward_f32__ref(int n_in, float *const *dxs, const int64_t *axis_dims,
			      int64_t outer, int64_t inner, const float *dy);

/* (Log)Softmax's backward along one axis, from the forward output y:
 * softmax:    dx += y * (dy - sum(dy * y));
 * logsoftmax: dx += dy - exp(y) * sum(dy). */
void softmax_backward_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *y,
			       const float *dy, float *dx);
void logsoftmax_backward_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *y,
				  const float *dy, float *dx);

/* --- BatchNormalization over dim 1 of [n, c, inner] ------------------------- */

/* Training-mode forward: each channel normalised by the mean and the biased
 * variance of its n * inner values (computed in double), then scaled and
 * shifted: y = scale * (x - mean) * invstd + bias, invstd = 1/sqrt(var + eps).
 * Writes mean[c] and var[c] (biased) for the running averages and the
 * backward. */
void batchnorm_train_f32__ref(int n, int c, int64_t inner, const float *x, const float *scale,
			      const float *bias, float epsilon, float *y, float *mean,
			      float *var);

/* Backward of a BatchNormalization. With batch_stats (the training-mode
 * forward above, mean and var its batch statistics) the statistics' own
 * dependence on x is included:
 *   dx += scale * invstd * (dy - mean(dy) - xhat * mean(dy * xhat));
 * without (inference form, mean and var the running statistics) it is the
 * affine map: dx += scale * invstd * dy. Both: dscale += sum(dy * xhat),
 * dbias += sum(dy) (each may be NULL; dx may be NULL too). */
void batchnorm_backward_f32__ref(int n, int c, int64_t inner, const float *x,
				 const float *scale, const float *mean, const float *var,
				 float epsilon, bool batch_stats, const float *dy, float *dx,
				 float *dscale, float *dbias);

/* --- Fake quantization of activations ----------------------------------------- */

/* y = (clamp(round(x * inv_scale) + zero, 0, qmax) - zero) * scale: the value
 * the INT8 engine's uint8 tensor holds (quant_act_quantize's rounding: half
 * away from zero). x and y may be the same buffer. */
void fake_quant_act_f32__ref(int64_t count, const float *x, float scale, float inv_scale,
			     int32_t zero, int32_t qmax, float *y);

/* Straight-through estimator: dx += dy where lo <= x <= hi (the range the
 * quantization represents: lo = -zero * scale, hi = (qmax - zero) * scale),
 * 0 outside it, where the clamp is flat. */
void fake_quant_act_backward_f32__ref(int64_t count, const float *x, float lo, float hi,
				      const float *dy, float *dx);

/* --- Recurrent layers (f32_rnn.c) --------------------------------------------- */

/* Gradients of an RNN/GRU/LSTM's operands (rnn_tensors' layouts; each NULL
 * when not wanted), accumulated. */
struct rnn_grads {
	float *dx, *dw, *dr, *db, *dh0, *dc0, *dpeep;
};

size_t rnn_backward_scratch_floats(const struct rnn_params *p);

/* The backward pass through time of rnn_f32__ref, from the tape its forward
 * recorded and dy, the gradient of its output `out`. */
void rnn_backward_f32(const struct f32_train_kernels *k, const struct rnn_params *p,
		      const struct rnn_tensors *in, const float *tape, const float *dy,
		      enum rnn_out out, const struct rnn_grads *gr, float *scratch);

#endif
