/* calib.c - activation statistics and clipping ranges (see calib.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "data/feed.h"
#include "quant/quant.h"

/* MSE search: t = 1, 0.99, ..., 0.20 */
#define MSE_STEPS 81

struct pass_ctx {
	struct calib *c;
	int pass;
};

static void observe(void *ctx, int v, const float *data, const struct shape *shape)
{
	struct pass_ctx *p = ctx;
	struct calib_stats *st = &p->c->v[v];
	int64_t n = shape_numel(shape);
	if (n == 0)
		return;
	if (p->pass == 0) {
		float lo = st->seen ? st->min : data[0], hi = st->seen ? st->max : data[0];
		for (int64_t i = 0; i < n; i++) {
			lo = fminf(lo, data[i]);
			hi = fmaxf(hi, data[i]);
		}
		st->min = lo;
		st->max = hi;
		st->seen = true;
		st->count += n;
		if (shape->n_dims >= 2 && st->ch_mean) {
			int64_t outer = shape->dims[0], ch = shape->dims[1], inner = n / (outer * ch);
			for (int64_t o = 0; o < outer; o++)
				for (int64_t c = 0; c < ch && c < st->n_channels; c++) {
					const float *x = data + (o * ch + c) * inner;
					double s = 0;
					for (int64_t i = 0; i < inner; i++)
						s += x[i];
					st->ch_mean[c] += s;
				}
		}
		return;
	}
	/* One value, or a range that an infinity opened: no histogram
	 * (calib_range() then falls back to min and max). */
	double width = (double)st->max - (double)st->min;
	if (!(width > 0) || !isfinite(width))
		return;
	double inv = CALIB_BINS / width;
	for (int64_t i = 0; i < n; i++) {
		double t = ((double)data[i] - st->min) * inv;
		if (t != t)
			continue; /* NaN: in no bin, as min and max pass over it */
		int64_t b = t <= 0 ? 0 : t >= CALIB_BINS ? CALIB_BINS - 1 : (int64_t)t;
		st->hist[b] += 1;
	}
}

/* One pass over the split's first feed_stats_images() images, `batch` per run
 * (the model's fixed batch, if it has one); *n_used gets their count. */
static enum presso_status run_pass(const struct graph *g, const struct dataset *ds,
				   const struct normalize *norm, const struct split *split,
				   int batch, struct pass_ctx *ctx, int64_t *n_used)
{
	struct feed f;
	enum presso_status s = feed_check(g, ds, &f);
	if (s != PRESSO_OK)
		return s;
	const int per_run = feed_run_images(&f, batch);
	const int64_t n_images = feed_stats_images(&f, split->n);
	struct engine *e;
	if ((s = engine_create(g, feed_engine_batch(&f, per_run), &e)) != PRESSO_OK)
		return s;
	engine_set_observer(e, observe, ctx);
	for (int64_t start = 0; start < n_images && s == PRESSO_OK; start += per_run) {
		int n = (int)(n_images - start < per_run ? n_images - start : per_run);
		feed_batch(&f, ds, norm, split->indices + start, n, engine_input(e, 0), NULL);
		s = engine_run(e, feed_engine_batch(&f, n));
	}
	engine_free(e);
	*n_used = n_images;
	return s;
}

enum presso_status calib_run(const struct graph *g, const struct dataset *ds,
			     const struct normalize *norm, const struct split *split, int batch,
			     struct calib **out)
{
	*out = NULL;
	if (split->n < 1)
		return status_fail(PRESSO_E_CONFIG, "the calibration split is empty");
	struct calib *c;
	enum presso_status s = calib_new(g, &c);
	if (s != PRESSO_OK)
		return s;
	struct pass_ctx ctx = {c, 0};
	int64_t n_used = 0;
	if ((s = run_pass(g, ds, norm, split, batch, &ctx, &n_used)) != PRESSO_OK)
		goto fail;
	for (int v = 0; v < g->n_values; v++) {
		struct calib_stats *st = &c->v[v];
		if (!st->seen || !st->ch_mean)
			continue;
		double per_channel = (double)st->count / st->n_channels;
		for (int k = 0; k < st->n_channels; k++)
			st->ch_mean[k] /= per_channel;
	}
	ctx.pass = 1;
	if ((s = run_pass(g, ds, norm, split, batch, &ctx, &n_used)) != PRESSO_OK)
		goto fail;
	c->n_images = n_used;
	*out = c;
	return PRESSO_OK;
fail:
	calib_free(c);
	return s;
}

enum presso_status calib_new(const struct graph *g, struct calib **out)
{
	*out = NULL;
	struct calib *c = calloc(1, sizeof *c);
	if (!c)
		return status_fail(PRESSO_E_NOMEM, "out of memory for calibration statistics");
	c->n_values = g->n_values;
	c->v = calloc((size_t)g->n_values, sizeof *c->v);
	if (!c->v)
		goto nomem;
	for (int v = 0; v < g->n_values; v++) {
		const struct value *val = &g->values[v];
		if (value_is_const(val))
			continue;
		struct calib_stats *st = &c->v[v];
		st->hist = calloc(CALIB_BINS, sizeof *st->hist);
		if (!st->hist)
			goto nomem;
		if (val->shape.n_dims >= 2) {
			st->n_channels = (int)val->shape.dims[1];
			st->ch_mean = calloc((size_t)st->n_channels, sizeof *st->ch_mean);
			if (!st->ch_mean)
				goto nomem;
		}
	}
	*out = c;
	return PRESSO_OK;
nomem:
	calib_free(c);
	return status_fail(PRESSO_E_NOMEM, "out of memory for calibration statistics");
}

void calib_observe_all(struct calib *c, int v, const float *data, const struct shape *shape)
{
	struct calib_stats *st = &c->v[v];
	if (st->seen || !st->hist)
		return; /* a value observed twice (an alias) keeps its first statistics */
	struct pass_ctx ctx = {c, 0};
	observe(&ctx, v, data, shape);
	if (!st->seen)
		return;
	if (st->ch_mean) {
		double per_channel = (double)st->count / st->n_channels;
		for (int k = 0; k < st->n_channels; k++)
			st->ch_mean[k] /= per_channel;
	}
	ctx.pass = 1;
	observe(&ctx, v, data, shape);
}

void calib_free(struct calib *c)
{
	if (!c)
		return;
	for (int v = 0; c->v && v < c->n_values; v++) {
		free(c->v[v].hist);
		free(c->v[v].ch_mean);
	}
	free(c->v);
	free(c);
}

/* the value below which a fraction q of the histogram's mass lies */
static double hist_quantile(const struct calib_stats *st, double q)
{
	double total = 0;
	for (int b = 0; b < CALIB_BINS; b++)
		total += st->hist[b];
	if (total <= 0)
		return q < 0.5 ? st->min : st->max;
	double want = q * total, acc = 0, width = ((double)st->max - st->min) / CALIB_BINS;
	for (int b = 0; b < CALIB_BINS; b++) {
		if (acc + st->hist[b] >= want) {
			double frac = st->hist[b] > 0 ? (want - acc) / st->hist[b] : 0;
			return st->min + (b + frac) * width;
		}
		acc += st->hist[b];
	}
	return st->max;
}

static double hist_mse(const struct calib_stats *st, float lo, float hi, int bits)
{
	struct qparams qp;
	quant_act_params(lo, hi, bits, &qp);
	double width = ((double)st->max - st->min) / CALIB_BINS, err = 0;
	for (int b = 0; b < CALIB_BINS; b++) {
		if (st->hist[b] == 0)
			continue;
		float x = (float)(st->min + (b + 0.5) * width);
		float back = qp.scale * (float)(quant_act_quantize(x, &qp) - qp.zero);
		double d = (double)x - back;
		err += st->hist[b] * d * d;
	}
	return err;
}

void calib_range(const struct calib *c, int v, enum calib_method method, double percentile,
		 int bits, float *lo, float *hi)
{
	const struct calib_stats *st = &c->v[v];
	*lo = st->seen ? st->min : 0.0f;
	*hi = st->seen ? st->max : 0.0f;
	if (!st->seen || !(st->max > st->min))
		return;
	if (method == CALIB_PERCENTILE) {
		*lo = (float)hist_quantile(st, 1.0 - percentile / 100.0);
		*hi = (float)hist_quantile(st, percentile / 100.0);
		if (st->min >= 0)
			*lo = st->min;
	} else if (method == CALIB_MSE) {
		double best = INFINITY;
		float blo = *lo, bhi = *hi;
		for (int i = 0; i < MSE_STEPS; i++) {
			float t = 1.0f - 0.01f * (float)i;
			float l = st->min * t, h = st->max * t;
			double e = hist_mse(st, l, h, bits);
			if (e < best) {
				best = e;
				blo = l;
				bhi = h;
			}
		}
		*lo = blo;
		*hi = bhi;
	}
}

const char *calib_method_name(enum calib_method m)
{
	static const char *const names[CALIB_METHOD_COUNT] = {
		[CALIB_MINMAX] = "minmax", [CALIB_PERCENTILE] = "percentile", [CALIB_MSE] = "mse"};
	return (unsigned)m < CALIB_METHOD_COUNT ? names[m] : "?";
}
