/* gptq.c - data-aware weight rounding (see gptq.h). */
#include "quant/gptq.h"

#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "quant/axpy.h"
#include "quant/quant.h"

#define DAMP 0.01
#define UNIFORM_RATIOS 11  /* 1.0, 0.95, ..., 0.5 of max |w| */
#define LSQ_FACTORS 9      /* 0.6, 0.7, ..., 1.4 of the least-squares scale */

struct block {
	int64_t k;
	int64_t *perm;  /* [k] columns by decreasing H_jj */
	double *u;      /* [k][k] upper Cholesky factor of H^-1, permuted */
};

struct column {
	double diag;
	int64_t j;
};

static int by_diag_desc(const void *a, const void *b)
{
	const struct column *x = a, *y = b;
	return x->diag > y->diag ? -1 : x->diag < y->diag ? 1 : (x->j > y->j) - (x->j < y->j);
}

/* U with H^-1 = U^T U for the damped, permuted H; false when H is not
 * positive definite even after more damping. */
static bool factor(const double *h, struct block *b, double *work)
{
	int64_t k = b->k;
	double *diag = malloc(sizeof(double) * (size_t)k);
	struct column *cols = malloc(sizeof *cols * (size_t)k);
	if (!diag || !cols) {
		free(diag);
		free(cols);
		return false;
	}
	double mean = 0;
	for (int64_t j = 0; j < k; j++) {
		diag[j] = h[j * k + j];
		mean += diag[j];
		cols[j] = (struct column){diag[j], j};
	}
	mean = mean > 0 ? mean / (double)k : 1.0;
	qsort(cols, (size_t)k, sizeof *cols, by_diag_desc);
	for (int64_t j = 0; j < k; j++)
		b->perm[j] = cols[j].j;
	free(cols);
	bool ok = false;
	for (int attempt = 0; attempt < 4 && !ok; attempt++) {
		double damp = DAMP * pow(10.0, attempt) * mean;
		for (int64_t r = 0; r < k; r++)
			for (int64_t c = 0; c < k; c++) {
				double v = h[b->perm[r] * k + b->perm[c]];
				if (r == c)
					v = (diag[b->perm[r]] > 0 ? v : 1.0) + damp;
				work[r * k + c] = v;
			}
		lapack_int n = (lapack_int)k;
		ok = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, work, n) == 0 &&
		     LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', n, work, n) == 0;
		if (!ok)
			continue;
		for (int64_t r = 0; r < k; r++)
			for (int64_t c = r + 1; c < k; c++)
				work[r * k + c] = work[c * k + r];
		ok = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, work, n) == 0;
	}
	if (ok)
		memcpy(b->u, work, sizeof(double) * (size_t)(k * k));
	free(diag);
	return ok;
}

static int grid(double r, int bits, int qmax)
{
	if (bits == 1)
		return r >= 0 ? 1 : -1;
	if (bits == 2)
		return r >= 0.5 ? 1 : r <= -0.5 ? -1 : 0;
	double t = nearbyint(r);
	return (int)(t > qmax ? qmax : t < -qmax ? -qmax : t);
}

/* One rounding pass of a permuted row wp at scale s; returns its error, or
 * stops early (returning at least `bound`) once the error passes bound. */
static double pass(const struct block *b, const double *wp, const bool *pruned, double s, int bits,
		   double bound, double *work, int8_t *qp)
{
	int64_t k = b->k;
	int qmax = quant_weight_qmax(bits);
	memcpy(work, wp, sizeof(double) * (size_t)k);
	double err = 0;
	for (int64_t j = 0; j < k; j++) {
		if (pruned[j]) {
			qp[j] = 0;
			continue;
		}
		int q = grid(work[j] / s, bits, qmax);
		qp[j] = (int8_t)q;
		const double *urow = b->u + j * k;
		double e = (work[j] - s * q) / urow[j];
		err += e * e;
		if (err >= bound)
			return err;
		/* pruned columns take the update too: their values are never read */
		axpy(work + j + 1, urow + j + 1, -e, k - j - 1);
	}
	return err;
}

/* Rounds one row w (original column order) into q and *scale. */
static void round_row(const struct block *b, const float *w, int bits, double *wp, bool *pruned,
		      double *work, int8_t *qp, int8_t *best_q, int8_t *q, float *scale)
{
	int64_t k = b->k;
	double amax = 0;
	for (int64_t j = 0; j < k; j++) {
		wp[j] = w[b->perm[j]];
		pruned[j] = wp[j] == 0;
		amax = fmax(amax, fabs(wp[j]));
	}
	if (amax == 0) { /* nothing to round: quant_weights()' answer for an empty row */
		quant_weights(w, 1, k, bits, q, scale);
		return;
	}
	/* ternary and binary candidates scale their least-squares scale */
	float s0 = 0;
	if (bits <= 2)
		quant_weights(w, 1, k, bits, q, &s0);
	int n_cand = bits >= 3 ? UNIFORM_RATIOS : LSQ_FACTORS;
	double best = INFINITY; /* the first candidate always sets it: its error is finite */
	float best_s = 0;
	int qmax = quant_weight_qmax(bits);
	for (int ci = 0; ci < n_cand; ci++) {
		float s = bits >= 3 ? quant_scale_round((float)((1.0 - 0.05 * ci) * amax / qmax))
				    : quant_scale_round((float)((0.6 + 0.1 * ci) * s0));
		double err = pass(b, wp, pruned, s, bits, best, work, qp);
		if (err < best) {
			best = err;
			best_s = s;
			memcpy(best_q, qp, (size_t)k);
		}
	}
	for (int64_t j = 0; j < k; j++)
		q[b->perm[j]] = best_q[j];
	*scale = best_s;
}

enum presso_status gptq_quantize(const float *w, int64_t n_out, int64_t k, int bits,
				 const struct layer_hessian *h, int8_t *q, float *scale)
{
	PRESSO_CHECK(h && h->k == k && h->n_blocks > 0 && n_out % h->n_blocks == 0);
	struct block b = {.k = k};
	b.perm = malloc(sizeof(int64_t) * (size_t)k);
	b.u = malloc(sizeof(double) * (size_t)(k * k));
	double *mat = malloc(sizeof(double) * (size_t)(k * k));
	double *wp = malloc(sizeof(double) * (size_t)k), *work = malloc(sizeof(double) * (size_t)k);
	bool *pruned = malloc((size_t)k);
	int8_t *qp = malloc((size_t)k), *best_q = malloc((size_t)k);
	enum presso_status s = PRESSO_OK;
	if (!b.perm || !b.u || !mat || !wp || !work || !pruned || !qp || !best_q)
		s = status_fail(PRESSO_E_NOMEM, "out of memory rounding weights");
	int64_t rows = n_out / h->n_blocks;
	for (int blk = 0; s == PRESSO_OK && blk < h->n_blocks; blk++) {
		const double *hb = h->h + blk * k * k;
		bool ok = factor(hb, &b, mat);
		for (int64_t r = blk * rows; r < (blk + 1) * rows; r++) {
			if (ok)
				round_row(&b, w + r * k, bits, wp, pruned, work, qp, best_q, q + r * k,
					  &scale[r]);
			else
				quant_weights(w + r * k, 1, k, bits, q + r * k, &scale[r]);
		}
	}
	free(b.perm);
	free(b.u);
	free(mat);
	free(wp);
	free(work);
	free(pruned);
	free(qp);
	free(best_q);
	return s;
}

double gptq_output_error(const float *w, int64_t n_out, int64_t k, const struct layer_hessian *h,
			 const int8_t *q, const float *scale)
{
	double total = 0;
	int64_t rows = n_out / h->n_blocks;
	double *d = malloc(sizeof(double) * (size_t)k);
	PRESSO_CHECK(d != NULL);
	for (int64_t r = 0; r < n_out; r++) {
		const double *hb = h->h + (r / rows) * k * k;
		for (int64_t j = 0; j < k; j++)
			d[j] = (double)w[r * k + j] - (double)scale[r] * q[r * k + j];
		for (int64_t i = 0; i < k; i++) {
			double acc = 0;
			for (int64_t j = 0; j < k; j++)
				acc += hb[i * k + j] * d[j];
			total += d[i] * acc;
		}
	}
	free(d);
	return total;
}
