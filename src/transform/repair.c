/* repair.c - per-channel statistics of layer outputs, and their repair (see
 * repair.h). Both run the unfused FP32 engine over one batch holding every
 * image (a model with a fixed batch: over the runs of its batch, one pass per
 * repaired layer); an observer sees each layer's output before its
 * activation. */
#define _POSIX_C_SOURCE 200809L
#include "transform/repair.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "model/engine.h"
#include "data/feed.h"

/* below this standard deviation a channel is constant: shift it, do not scale */
#define STD_EPS 1e-6
/* a channel the compression nearly silenced is not blown up past this gain:
 * its remaining signal is mostly what the compression left of other inputs */
#define REPAIR_MAX_SCALE 4.0

struct observe_ctx {
	int *layer_of_value;    /* [n_values] layer whose output it is, or -1 */
	struct layer_stats *st; /* measure into */
	/* repair mode */
	const struct layer_stats *target;
	struct transform_result *tr;
	double **a, **b;        /* [n_layers][c] the correction applied */
	struct calib *cal;      /* activation statistics of every value, or NULL */
	bool failed;
	/* A model with a fixed batch runs the images in several runs (feed.h):
	 * moments are summed over the runs, and a repair measures one layer per
	 * pass over all of them, the layers before it corrected. */
	bool runs;              /* more than one run per pass */
	int active;             /* repair over runs: the layer measured in this pass */
	double **sum, **sq;     /* [n_layers][c] sums over the runs so far */
	int64_t *count;         /* [n_layers] values summed per channel */
	const int64_t *c_out;   /* [n_layers] channels of each layer */
};

/* Adds the per-channel sums of x and x^2 over a [n, c_n, ...] tensor. */
static void moments_add(const float *x, const struct shape *s, int64_t c_n, double *sum,
			double *sq, int64_t *count)
{
	int64_t n = s->dims[0], inner = shape_numel(s) / (n * c_n);
	for (int64_t c = 0; c < c_n; c++) {
		for (int64_t b = 0; b < n; b++) {
			const float *p = x + (b * c_n + c) * inner;
			for (int64_t i = 0; i < inner; i++) {
				sum[c] += p[i];
				sq[c] += (double)p[i] * p[i];
			}
		}
	}
	*count += n * inner;
}

static void moments_finish(const double *sum, const double *sq, int64_t count, int64_t c_n,
			   double *mean, double *std)
{
	for (int64_t c = 0; c < c_n; c++) {
		double cnt = (double)count, m = sum[c] / cnt, var = sq[c] / cnt - m * m;
		mean[c] = m;
		std[c] = sqrt(var > 0 ? var : 0);
	}
}

static void correct(struct observe_ctx *c, int li, const float *data, const struct shape *shape);

static void observe(void *vctx, int v, const float *data, const struct shape *shape)
{
	struct observe_ctx *c = vctx;
	int li = c->layer_of_value[v];
	if (li >= 0 && !c->failed)
		correct(c, li, data, shape);
	if (c->cal)
		calib_observe_all(c->cal, v, data, shape);
}

/* The correction a, b of layer li from its output's moments m, sd. */
static void fit(struct observe_ctx *c, int li, int64_t ch, const double *m, const double *sd)
{
	int o = c->tr->origin[li];
	const int *orig_ch = c->tr->channels[li];
	for (int64_t k = 0; k < ch; k++) {
		int64_t oc = orig_ch[k];
		double tm = c->target->mean[o][oc], ts = c->target->std[o][oc];
		double a = sd[k] > STD_EPS ? ts / sd[k] : 1.0;
		if (a > REPAIR_MAX_SCALE)
			a = REPAIR_MAX_SCALE;
		c->a[li][k] = a;
		c->b[li][k] = tm - a * m[k];
	}
}

/* Measures layer li's output, or (repair) corrects it in place. */
static void correct(struct observe_ctx *c, int li, const float *data, const struct shape *shape)
{
	int64_t ch = shape->n_dims >= 2 ? shape->dims[1] : 1;
	if (ch != c->c_out[li])
		return; /* not [N, C, ...] with C the layer's channels (a 3-D MatMul) */
	if (!c->target) {
		moments_add(data, shape, ch, c->sum[li], c->sq[li], &c->count[li]);
		return;
	}
	if (!c->a[li]) {
		if (c->runs && li != c->active)
			return; /* measured in a later pass */
		moments_add(data, shape, ch, c->sum[li], c->sq[li], &c->count[li]);
		if (c->runs)
			return; /* fitted after the pass */
		double *m = malloc(sizeof(double) * (size_t)ch);
		double *sd = malloc(sizeof(double) * (size_t)ch);
		c->a[li] = malloc(sizeof(double) * (size_t)ch);
		c->b[li] = malloc(sizeof(double) * (size_t)ch);
		if (!m || !sd || !c->a[li] || !c->b[li]) {
			free(m);
			free(sd);
			c->failed = true;
			return;
		}
		moments_finish(c->sum[li], c->sq[li], c->count[li], ch, m, sd);
		fit(c, li, ch, m, sd);
		free(m);
		free(sd);
	}
	/* correct the output in place so the next layers see the repaired values */
	int64_t n = shape->dims[0], inner = shape_numel(shape) / (n * ch);
	float *x = (float *)data;
	for (int64_t b = 0; b < n; b++)
		for (int64_t k = 0; k < ch; k++) {
			float a = (float)c->a[li][k], sh = (float)c->b[li][k];
			float *p = x + (b * ch + k) * inner;
			for (int64_t i = 0; i < inner; i++)
				p[i] = a * p[i] + sh;
		}
}

/* One pass of g over the images (one run, or the runs of a fixed batch). */
static enum presso_status run_pass(struct engine *e, const struct feed *f,
				   const struct dataset *ds, const struct normalize *norm,
				   const struct split *split, int64_t n_images, int per_run)
{
	enum presso_status s = PRESSO_OK;
	for (int64_t at = 0; s == PRESSO_OK && at < n_images; at += per_run) {
		int n = (int)(n_images - at < per_run ? n_images - at : per_run);
		feed_batch(f, ds, norm, split->indices + at, n, engine_input(e, 0), NULL);
		s = engine_run(e, feed_engine_batch(f, n));
	}
	return s;
}

/* Runs g over the images of split and measures (or repairs) the layers of
 * ctx->layer_of_value, n_layers of c_out[] channels. Every image in one run,
 * or, for a model with a fixed batch, over the runs of its batch: one pass to
 * measure; to repair, one pass per layer in graph order, then none for the
 * calibration (ctx->cal is left to the caller, who calibrates the folded
 * graph; *over_runs says so). */
static enum presso_status run_images(const struct graph *g, const struct dataset *ds,
				     const struct normalize *norm, const struct split *split,
				     int n_layers, const int64_t *c_out, struct observe_ctx *ctx,
				     bool *over_runs)
{
	struct feed f;
	enum presso_status s = feed_check(g, ds, &f);
	if (s != PRESSO_OK)
		return s;
	const int64_t n_images = feed_stats_images(&f, split->n);
	const int per_run = feed_run_images(&f, (int)n_images);
	ctx->runs = n_images > per_run;
	*over_runs = ctx->runs;
	ctx->c_out = c_out;
	ctx->sum = calloc((size_t)(n_layers + 1), sizeof(double *));
	ctx->sq = calloc((size_t)(n_layers + 1), sizeof(double *));
	ctx->count = calloc((size_t)(n_layers + 1), sizeof(int64_t));
	bool ok = ctx->sum && ctx->sq && ctx->count;
	for (int i = 0; ok && i < n_layers; i++) {
		ctx->sum[i] = calloc((size_t)c_out[i], sizeof(double));
		ctx->sq[i] = calloc((size_t)c_out[i], sizeof(double));
		ok = ctx->sum[i] && ctx->sq[i];
	}
	struct engine *e = NULL;
	if (!ok)
		s = status_fail(PRESSO_E_NOMEM, "out of memory repairing statistics");
	if (s == PRESSO_OK)
		s = engine_create_unfused(g, feed_engine_batch(&f, per_run), &e);
	if (s == PRESSO_OK)
		engine_set_observer(e, observe, ctx);
	if (s == PRESSO_OK && (ctx->st || !ctx->runs)) {
		/* measure over the runs, or measure, repair and calibrate in one run */
		struct calib *cal = ctx->cal;
		if (ctx->runs)
			ctx->cal = NULL;
		s = run_pass(e, &f, ds, norm, split, n_images, per_run);
		ctx->cal = cal;
	}
	for (int i = 0; s == PRESSO_OK && ctx->target && ctx->runs && i < n_layers; i++) {
		bool repaired = false;
		for (int v = 0; v < g->n_values && !repaired; v++)
			repaired = ctx->layer_of_value[v] == i;
		if (!repaired)
			continue;
		struct calib *cal = ctx->cal;
		ctx->cal = NULL;
		ctx->active = i;
		s = run_pass(e, &f, ds, norm, split, n_images, per_run);
		ctx->cal = cal;
		if (s != PRESSO_OK || ctx->count[i] == 0)
			continue; /* a layer the pass never reached keeps no correction */
		int64_t ch = c_out[i];
		double *m = malloc(sizeof(double) * (size_t)ch);
		double *sd = malloc(sizeof(double) * (size_t)ch);
		ctx->a[i] = malloc(sizeof(double) * (size_t)ch);
		ctx->b[i] = malloc(sizeof(double) * (size_t)ch);
		if (m && sd && ctx->a[i] && ctx->b[i]) {
			moments_finish(ctx->sum[i], ctx->sq[i], ctx->count[i], ch, m, sd);
			fit(ctx, i, ch, m, sd);
		} else {
			ctx->failed = true;
		}
		free(m);
		free(sd);
		if (ctx->failed)
			break;
	}
	if (s == PRESSO_OK && !ctx->target) {
		for (int i = 0; i < n_layers; i++)
			if (ctx->count[i])
				moments_finish(ctx->sum[i], ctx->sq[i], ctx->count[i], c_out[i],
					       ctx->st->mean[i], ctx->st->std[i]);
	}
	engine_free(e);
	for (int i = 0; i < n_layers && ctx->sum && ctx->sq; i++) {
		free(ctx->sum[i]);
		free(ctx->sq[i]);
	}
	free(ctx->sum);
	free(ctx->sq);
	free(ctx->count);
	ctx->sum = ctx->sq = NULL;
	ctx->count = NULL;
	if (s == PRESSO_OK && ctx->failed)
		s = status_fail(PRESSO_E_NOMEM, "out of memory repairing statistics");
	return s;
}

void layer_stats_free(struct layer_stats *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_layers; i++) {
		free(s->mean ? s->mean[i] : NULL);
		free(s->std ? s->std[i] : NULL);
	}
	free(s->mean);
	free(s->std);
	free(s->n_channels);
	free(s);
}

enum presso_status repair_measure(const struct graph *g, const struct dataset *ds,
				  const struct normalize *norm, const struct split *split,
				  struct layer_stats **out)
{
	*out = NULL;
	struct layer *layers = NULL;
	int n_layers = 0;
	enum presso_status s = graph_layers(g, &layers, &n_layers);
	if (s != PRESSO_OK)
		return s;
	struct layer_stats *st = calloc(1, sizeof *st);
	int *lov = malloc(sizeof(int) * (size_t)g->n_values);
	if (st) {
		st->n_layers = n_layers;
		st->n_channels = calloc((size_t)(n_layers + 1), sizeof(int64_t));
		st->mean = calloc((size_t)(n_layers + 1), sizeof(double *));
		st->std = calloc((size_t)(n_layers + 1), sizeof(double *));
	}
	bool ok = st && lov && st->n_channels && st->mean && st->std;
	for (int v = 0; ok && v < g->n_values; v++)
		lov[v] = -1;
	for (int i = 0; ok && i < n_layers; i++) {
		int64_t c = layers[i].c_out;
		st->n_channels[i] = c;
		st->mean[i] = calloc((size_t)c, sizeof(double));
		st->std[i] = calloc((size_t)c, sizeof(double));
		ok = st->mean[i] && st->std[i];
		lov[g->nodes[layers[i].node].output] = i;
	}
	free(layers);
	if (!ok) {
		free(lov);
		layer_stats_free(st);
		return status_fail(PRESSO_E_NOMEM, "out of memory for layer statistics");
	}
	struct observe_ctx ctx = {.layer_of_value = lov, .st = st};
	bool over_runs;
	s = run_images(g, ds, norm, split, n_layers, st->n_channels, &ctx, &over_runs);
	free(lov);
	if (s != PRESSO_OK) {
		layer_stats_free(st);
		return s;
	}
	*out = st;
	return PRESSO_OK;
}

/* Folds y <- a y + b into node's weights and bias (adding a bias if it has none). */
static enum presso_status fold(struct graph *g, int node, const double *a, const double *b,
			       int64_t ch)
{
	struct node *n = &g->nodes[node];
	struct value *w = &g->values[n->inputs[1]];
	int64_t total = shape_numel(&w->shape), per = total / ch;
	bool rows = n->op == OP_CONV || (n->op == OP_GEMM && n->a.trans_b);
	for (int64_t i = 0; i < total; i++) {
		int64_t c = rows ? i / per : i % ch;
		w->data[i] = (float)(a[c] * w->data[i]);
	}
	float beta = n->op == OP_GEMM ? n->a.beta : 1.0f;
	int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
	if (bi < 0 || beta == 0.0f || shape_numel(&g->values[bi].shape) != ch) {
		/* a new per-channel bias holding the old (broadcast) one */
		float *nb = malloc(sizeof(float) * (size_t)ch);
		struct value *nv = realloc(g->values, sizeof *nv * (size_t)(g->n_values + 1));
		if (!nb || !nv) {
			free(nb);
			if (nv)
				g->values = nv;
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		g->values = nv;
		n = &g->nodes[node];
		for (int64_t c = 0; c < ch; c++)
			nb[c] = bi >= 0 ? beta * g->values[bi].data[shape_numel(&g->values[bi].shape) == 1 ? 0 : c] : 0.0f;
		char name[512];
		snprintf(name, sizeof name, "%s.bias", n->name);
		struct value *v = &g->values[g->n_values];
		*v = (struct value){.name = strdup(name), .shape = {1, {ch}}, .dtype = DTYPE_F32,
				    .data = nb, .producer = -1, .n_consumers = 1};
		if (!v->name) {
			free(nb);
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		if (bi >= 0)
			g->values[bi].n_consumers--;
		bi = g->n_values++;
		n->inputs[2] = bi;
		n->n_inputs = 3;
		if (n->op == OP_GEMM)
			n->a.beta = beta = 1.0f;
	}
	float *bd = g->values[bi].data;
	for (int64_t c = 0; c < ch; c++)
		bd[c] = (float)((a[c] * beta * bd[c] + b[c]) / beta);
	return PRESSO_OK;
}

enum presso_status repair_run(struct transform_result *tr, const struct layer_stats *target,
			      const struct dataset *ds, const struct normalize *norm,
			      const struct split *split, struct repair_report *rep,
			      struct calib **cal_out)
{
	memset(rep, 0, sizeof *rep);
	*cal_out = NULL;
	struct calib *cal = NULL;
	struct graph *g = tr->g;
	struct layer *layers = NULL;
	int n_layers = 0;
	enum presso_status s = graph_layers(g, &layers, &n_layers);
	if (s != PRESSO_OK)
		return s;
	int *lov = malloc(sizeof(int) * (size_t)g->n_values);
	int64_t *c_out = malloc(sizeof(int64_t) * (size_t)(n_layers + 1));
	double **a = calloc((size_t)(n_layers + 1), sizeof(double *));
	double **b = calloc((size_t)(n_layers + 1), sizeof(double *));
	if (!lov || !c_out || !a || !b) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	for (int v = 0; v < g->n_values; v++)
		lov[v] = -1;
	for (int i = 0; target && i < n_layers; i++)
		if (tr->repair[i] && layers[i].op != OP_MATMUL)
			lov[g->nodes[layers[i].node].output] = i;
	if ((s = calib_new(g, &cal)) != PRESSO_OK)
		goto done;
	struct observe_ctx ctx = {.layer_of_value = lov, .target = target, .tr = tr, .a = a, .b = b,
				  .cal = cal};
	for (int i = 0; i < n_layers; i++)
		c_out[i] = layers[i].c_out;
	bool over_runs = false;
	if ((s = run_images(g, ds, norm, split, n_layers, c_out, &ctx, &over_runs)) != PRESSO_OK)
		goto done;
	cal->n_images = split->n;
	double shift = 0, scale = 0;
	int64_t n_ch = 0;
	for (int i = 0; i < n_layers; i++) {
		if (!a[i])
			continue;
		int64_t ch = layers[i].c_out;
		if ((s = fold(g, layers[i].node, a[i], b[i], ch)) != PRESSO_OK)
			goto done;
		const struct layer_stats *t = target;
		int o = tr->origin[i];
		for (int64_t c = 0; c < ch; c++) {
			int64_t oc = tr->channels[i][c];
			double ts = t->std[o][oc];
			/* m - m' = b + (a - 1) m' ... reported relative to the target std */
			double m_new = a[i][c] != 0 ? (t->mean[o][oc] - b[i][c]) / a[i][c] : 0;
			shift += ts > STD_EPS ? fabs(t->mean[o][oc] - m_new) / ts : 0;
			scale += a[i][c];
			n_ch++;
		}
		rep->n_layers++;
	}
	rep->mean_abs_shift = n_ch ? shift / (double)n_ch : 0;
	rep->mean_scale = n_ch ? scale / (double)n_ch : 1;
	if (over_runs) {
		/* the runs of a fixed batch: calibrate the repaired graph on its own */
		calib_free(cal);
		cal = NULL;
		if ((s = calib_run(g, ds, norm, split, 1, &cal)) != PRESSO_OK)
			goto done;
	}
	*cal_out = cal;
	cal = NULL;
done:
	calib_free(cal);
	for (int i = 0; a && b && i < n_layers; i++) {
		free(a[i]);
		free(b[i]);
	}
	free(a);
	free(b);
	free(lov);
	free(c_out);
	free(layers);
	return s;
}
