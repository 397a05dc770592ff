/* hessian.c - second moments of layer inputs (see hessian.h). */
#include "quant/hessian.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "data/feed.h"
#include "quant/axpy.h"

struct observe_ctx {
	const struct graph *g;
	struct hessians *h;
	int *in_v;     /* [n_layers] the value each layer reads */
	int *seen;     /* [n_layers] the last chunk that layer was measured in */
	double *x;     /* [HESSIAN_MAX_K] one input vector */
	uint32_t seed;
	int chunk;     /* the chunk being run, from 1 */
	double share;  /* its share of the images: its part of HESSIAN_MAX_ROWS */
};

/* The rows to take out of `total` in this chunk. */
static int64_t rows_to_take(const struct observe_ctx *c, int64_t total)
{
	int64_t cap = (int64_t)ceil(HESSIAN_MAX_ROWS * c->share);
	return total < cap ? total : cap;
}

static uint32_t next(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8; /* 24 good bits */
}

/* Adds x x^T to the upper triangle of h (k x k); zeros (ReLU outputs) are skipped. */
static void add_outer(double *h, const double *x, int64_t k)
{
	for (int64_t i = 0; i < k; i++) {
		double xi = x[i];
		if (xi == 0)
			continue;
		axpy(h + i * k + i, x + i, xi, k - i);
	}
}

/* Input row r of a Conv layer: image b, output pixel (oy, ox). */
static void conv_rows(struct observe_ctx *c, struct layer_hessian *lh, const struct node *n,
		      const float *data, const struct shape *in)
{
	const struct shape *out = &c->g->values[n->output].shape;
	int64_t nb = in->dims[0], C = in->dims[1], H = in->dims[2], W = in->dims[3];
	int64_t OH = out->dims[2], OW = out->dims[3];
	int kh = n->a.kernel[0], kw = n->a.kernel[1];
	int64_t cg = C / lh->n_blocks, total = nb * OH * OW;
	int64_t take = rows_to_take(c, total);
	for (int64_t t = 0; t < take; t++) {
		int64_t r = take == total ? t : (int64_t)(((uint64_t)next(&c->seed) << 24 |
							   next(&c->seed)) % (uint64_t)total);
		int64_t b = r / (OH * OW), oy = r / OW % OH, ox = r % OW;
		for (int blk = 0; blk < lh->n_blocks; blk++) {
			int64_t j = 0;
			for (int64_t ci = blk * cg; ci < (blk + 1) * cg; ci++) {
				const float *plane = data + (b * C + ci) * H * W;
				for (int y = 0; y < kh; y++) {
					int64_t iy = oy * n->a.strides[0] - n->a.pads[0] + y * n->a.dilations[0];
					for (int xk = 0; xk < kw; xk++, j++) {
						int64_t ix = ox * n->a.strides[1] - n->a.pads[1] +
							     xk * n->a.dilations[1];
						bool in_range = iy >= 0 && iy < H && ix >= 0 && ix < W;
						c->x[j] = in_range ? plane[iy * W + ix] : 0.0;
					}
				}
			}
			add_outer(lh->h + blk * lh->k * lh->k, c->x, lh->k);
		}
	}
	lh->rows += take;
}

static void matrix_rows(struct observe_ctx *c, struct layer_hessian *lh, const float *data,
			const struct shape *in)
{
	int64_t total = shape_numel(in) / lh->k;
	int64_t take = rows_to_take(c, total);
	for (int64_t t = 0; t < take; t++) {
		int64_t r = take == total ? t : (int64_t)(next(&c->seed) % (uint32_t)total);
		for (int64_t j = 0; j < lh->k; j++)
			c->x[j] = data[r * lh->k + j];
		add_outer(lh->h, c->x, lh->k);
	}
	lh->rows += take;
}

static void observe(void *vctx, int v, const float *data, const struct shape *shape)
{
	struct observe_ctx *c = vctx;
	for (int i = 0; i < c->h->n_layers; i++) {
		struct layer_hessian *lh = &c->h->l[i];
		if (c->in_v[i] != v || !lh->h || c->seen[i] == c->chunk)
			continue;
		c->seen[i] = c->chunk;
		const struct node *n = &c->g->nodes[lh->node];
		if (n->op == OP_CONV && shape->n_dims == 4)
			conv_rows(c, lh, n, data, shape);
		else if (n->op != OP_CONV && shape_numel(shape) % lh->k == 0)
			matrix_rows(c, lh, data, shape);
	}
}

void hessians_free(struct hessians *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->n_layers; i++)
		free(h->l[i].h);
	free(h->l);
	free(h);
}

static enum presso_status alloc_layers(const struct graph *g, const struct layer *ls, int nl,
				       struct hessians *h)
{
	h->g = g;
	h->n_layers = nl;
	h->l = calloc((size_t)(nl ? nl : 1), sizeof *h->l);
	if (!h->l)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int i = 0; i < nl; i++) {
		const struct node *n = &g->nodes[ls[i].node];
		struct layer_hessian *lh = &h->l[i];
		lh->node = ls[i].node;
		lh->n_blocks = ls[i].op == OP_CONV ? ls[i].group : 1;
		lh->k = ls[i].c_in * ls[i].kh * ls[i].kw;
		bool usable = lh->k > 0 && lh->k <= HESSIAN_MAX_K &&
			      !(n->op == OP_GEMM && n->a.trans_a);
		if (!usable)
			continue;
		lh->h = calloc((size_t)(lh->n_blocks * lh->k * lh->k), sizeof(double));
		if (!lh->h)
			return status_fail(PRESSO_E_NOMEM, "out of memory for layer '%s'", n->name);
	}
	return PRESSO_OK;
}

enum presso_status hessians_run(const struct graph *g, const struct dataset *ds,
				const struct normalize *norm, const struct split *split,
				struct hessians **out)
{
	*out = NULL;
	struct layer *ls = NULL;
	int nl = 0;
	struct feed f;
	enum presso_status s = feed_check(g, ds, &f);
	if (s == PRESSO_OK)
		s = graph_layers(g, &ls, &nl);
	if (s != PRESSO_OK)
		return s;
	struct hessians *h = calloc(1, sizeof *h);
	int *in_v = malloc(sizeof(int) * (size_t)(nl ? nl : 1));
	int *seen = calloc((size_t)(nl ? nl : 1), sizeof(int));
	double *x = malloc(sizeof(double) * HESSIAN_MAX_K);
	struct engine *e = NULL;
	if (!h || !in_v || !seen || !x)
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s == PRESSO_OK)
		s = alloc_layers(g, ls, nl, h);
	for (int i = 0; s == PRESSO_OK && i < nl; i++)
		in_v[i] = g->nodes[ls[i].node].inputs[0];
	/* a model with a fixed batch runs it, on a multiple of it (feed.h) */
	int64_t n = feed_stats_images(&f, split->n);
	int batch = feed_run_images(&f, n < HESSIAN_BATCH ? (int)n : HESSIAN_BATCH);
	if (s == PRESSO_OK && n > 0)
		s = engine_create(g, feed_engine_batch(&f, batch), &e);
	struct observe_ctx ctx = {g, h, in_v, seen, x, 12345u, 0, 0};
	if (e)
		engine_set_observer(e, observe, &ctx);
	for (int64_t at = 0; s == PRESSO_OK && at < n; at += batch) {
		int m = n - at < batch ? (int)(n - at) : batch;
		ctx.chunk++;
		ctx.share = (double)m / (double)n;
		feed_batch(&f, ds, norm, split->indices + at, m, engine_input(e, 0), NULL);
		s = engine_run(e, feed_engine_batch(&f, m));
	}
	engine_free(e);
	/* means, and the lower triangle from the upper */
	for (int i = 0; s == PRESSO_OK && i < nl; i++) {
		struct layer_hessian *lh = &h->l[i];
		if (!lh->h)
			continue;
		if (lh->rows == 0) {
			free(lh->h);
			lh->h = NULL;
			continue;
		}
		for (int b = 0; b < lh->n_blocks; b++) {
			double *m = lh->h + b * lh->k * lh->k;
			for (int64_t r = 0; r < lh->k; r++)
				for (int64_t c = r; c < lh->k; c++) {
					m[r * lh->k + c] /= (double)lh->rows;
					m[c * lh->k + r] = m[r * lh->k + c];
				}
		}
	}
	free(in_v);
	free(seen);
	free(x);
	free(ls);
	if (s != PRESSO_OK) {
		hessians_free(h);
		return s;
	}
	*out = h;
	return PRESSO_OK;
}

const struct layer_hessian *hessians_of(const struct hessians *h, const struct graph *g, int node,
					int64_t k, int n_blocks)
{
	if (!h)
		return NULL;
	for (int i = 0; i < h->n_layers; i++) {
		const struct layer_hessian *lh = &h->l[i];
		bool same = h->g == g ? lh->node == node
				      : strcmp(h->g->nodes[lh->node].name, g->nodes[node].name) == 0;
		if (same)
			return lh->h && lh->k == k && lh->n_blocks == n_blocks ? lh : NULL;
	}
	return NULL;
}
