/* latency_lut.c - the per-layer latency table and one policy's latency (see
 * latency_lut.h).
 *
 * Measuring: for every (bits, act_bits) pair some wanted entry needs, one
 * uniform policy, one qmodel, one batch-1 engine fed with the first image of
 * the dataset; WARMUP_RUNS untimed runs, then `runs` profiled runs. Each step's
 * time is the median over the runs (robust to the odd interrupt); a layer's
 * entry is its step's median. A delta's model is the graph with one layer
 * transformed, calibrated on DELTA_IMAGES images (ranges do not change the
 * kernels' time) and built at W8A8 with rounding to nearest; its whole runs
 * alternate with the W8A8 model's, and the delta is the difference of the two
 * medians. The table is independent of the images' values
 * (the kernels do not branch on data) but not of the machine or its load.
 */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/latency_lut.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json_get.h"
#include "evaluators/evaluate.h"
#include "data/feed.h"
#include "transform/transform.h"

#define WARMUP_RUNS 3
#define DELTA_IMAGES 8
#define VALUE_EPS 1e-9

static size_t entry_index(int layer, int bits, int act_bits)
{
	return ((size_t)layer * LUT_MAX_BITS + (size_t)(bits - 1)) * LUT_N_ACT +
	       (size_t)(act_bits - LUT_MIN_ACT_BITS);
}

static bool in_range(int bits, int act_bits)
{
	return bits >= 1 && bits <= LUT_MAX_BITS && act_bits >= LUT_MIN_ACT_BITS &&
	       act_bits <= LUT_MAX_BITS;
}

static enum presso_status add_delta(struct latency_lut *lut, int layer, enum lut_knob knob,
				    double value, double us)
{
	struct lut_delta *d = realloc(lut->deltas, sizeof *d * (size_t)(lut->n_deltas + 1));
	if (!d)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	lut->deltas = d;
	d[lut->n_deltas++] = (struct lut_delta){layer, knob, value, us};
	return PRESSO_OK;
}

static enum presso_status lut_new(int n_layers, int runs, struct latency_lut **out)
{
	struct latency_lut *lut = calloc(1, sizeof *lut);
	size_t n = (size_t)(n_layers > 0 ? n_layers : 1) * LUT_MAX_BITS * LUT_N_ACT;
	if (lut)
		lut->us = malloc(n * sizeof *lut->us);
	if (!lut || !lut->us) {
		latency_lut_free(lut);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		lut->us[i] = NAN;
	lut->n_layers = n_layers;
	lut->runs = runs;
	*out = lut;
	return PRESSO_OK;
}

void latency_lut_free(struct latency_lut *lut)
{
	if (!lut)
		return;
	free(lut->us);
	free(lut->deltas);
	free(lut);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A batch-1 engine for q, its input filled with the dataset's first image (a
 * model with a fixed batch B: B copies of it, one run; its engine batch is 1
 * too, feed.h). */
static enum presso_status fed_engine(const struct graph *g, const struct qmodel *q,
				     const struct dataset *ds, const struct normalize *norm,
				     struct qengine **e)
{
	struct feed f;
	enum presso_status s = feed_check(g, ds, &f);
	if (s == PRESSO_OK)
		s = qengine_create(q, feed_engine_batch(&f, 1), e);
	if (s != PRESSO_OK)
		return s;
	int64_t idx = 0;
	feed_batch(&f, ds, norm, &idx, 1, qengine_input(*e, 0), NULL);
	return PRESSO_OK;
}

/* Profiles one uniform setting: per-step medians into step_med[n_steps]. */
static enum presso_status profile_setting(const struct graph *g, const struct calib *cal,
					  const struct quant_config *qc, const struct dataset *ds,
					  const struct normalize *norm, int n_layers, int bits,
					  int act_bits, int runs, struct qmodel **qm_out,
					  double **step_med)
{
	struct layer_policy lp = policy_default_layer();
	lp.bits = bits;
	lp.act_bits = act_bits;
	struct policy *p = NULL;
	struct qmodel *qm = NULL;
	struct qengine *e = NULL;
	double *t = NULL, *col = NULL;
	*step_med = NULL;
	enum presso_status s;
	if ((s = policy_uniform(&lp, n_layers, &p)) || (s = qmodel_build(g, p, cal, qc, &qm)) ||
	    (s = fed_engine(g, qm, ds, norm, &e)))
		goto done;
	int n_steps = qmodel_n_steps(qm);
	t = malloc(sizeof(double) * (size_t)(n_steps ? n_steps : 1) * (size_t)runs);
	col = malloc(sizeof(double) * (size_t)runs);
	*step_med = malloc(sizeof(double) * (size_t)(n_steps ? n_steps : 1));
	if (!t || !col || !*step_med) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	for (int r = 0; r < WARMUP_RUNS && s == PRESSO_OK; r++)
		s = qengine_run(e, 1);
	for (int r = 0; r < runs && s == PRESSO_OK; r++)
		s = qengine_run_profiled(e, 1, t + (size_t)r * (size_t)n_steps);
	if (s != PRESSO_OK)
		goto done;
	for (int i = 0; i < n_steps; i++) {
		for (int r = 0; r < runs; r++)
			col[r] = t[(size_t)r * (size_t)n_steps + (size_t)i];
		(*step_med)[i] = median(col, runs);
	}
done:
	if (s != PRESSO_OK) {
		free(*step_med);
		*step_med = NULL;
		qmodel_free(qm);
		qm = NULL;
	}
	*qm_out = qm;
	qengine_free(e);
	policy_free(p);
	free(t);
	free(col);
	return s;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* A W8A8 model of g (rounded to nearest; its own calibration on the first
 * DELTA_IMAGES images when cal is NULL) and a fed batch-1 engine for it. */
static enum presso_status w8a8_engine(const struct graph *g, const struct calib *cal,
				      const struct quant_config *qc, const struct dataset *ds,
				      const struct normalize *norm, struct qmodel **qm,
				      struct qengine **e)
{
	struct layer *ls = NULL;
	int nl = 0;
	struct layer_policy id = policy_default_layer();
	struct policy *p = NULL;
	struct split sp = {0};
	struct calib *own = NULL;
	struct quant_config plain = *qc;
	plain.cache = NULL;
	plain.hess = NULL;
	*qm = NULL;
	*e = NULL;
	int64_t n = ds->n < DELTA_IMAGES ? ds->n : DELTA_IMAGES;
	enum presso_status s;
	if ((s = graph_layers(g, &ls, &nl)) || (s = policy_uniform(&id, nl, &p)))
		goto done;
	if (!cal && ((s = split_range(ds->n, n, &sp)) ||
		     (s = calib_run(g, ds, norm, &sp, (int)n, &own))))
		goto done;
	if ((s = qmodel_build(g, p, cal ? cal : own, &plain, qm)) ||
	    (s = fed_engine(g, *qm, ds, norm, e)))
		goto done;
	for (int r = 0; r < WARMUP_RUNS && s == PRESSO_OK; r++)
		s = qengine_run(*e, 1);
done:
	if (s != PRESSO_OK) {
		qengine_free(*e);
		qmodel_free(*qm);
		*e = NULL;
		*qm = NULL;
	}
	calib_free(own);
	split_free(&sp);
	policy_free(p);
	free(ls);
	return s;
}

/* The delta of one layer transformed as lp says: runs of the transformed
 * model interleaved with runs of the W8A8 one (base), so that a change in the
 * machine's load moves both; *us = the difference of their medians, or NAN
 * when the transforms refuse the change. */
static enum presso_status measure_delta(const struct graph *g, const struct quant_config *qc,
					const struct dataset *ds, const struct normalize *norm,
					int n_layers, int layer, const struct layer_policy *lp,
					int runs, struct qengine *base, double *us)
{
	*us = NAN;
	struct layer_policy id = policy_default_layer();
	struct policy *p = NULL;
	struct transform_result tr = {0};
	struct qmodel *qm = NULL;
	struct qengine *e = NULL;
	double *tb = malloc(sizeof(double) * (size_t)runs), *tt = malloc(sizeof(double) * (size_t)runs);
	enum presso_status s = tb && tt ? policy_uniform(&id, n_layers, &p)
				      : status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s != PRESSO_OK)
		goto done;
	p->layers[layer] = *lp;
	if (transform_apply(g, p, &tr) != PRESSO_OK)
		goto done; /* refused: no entry */
	if ((s = w8a8_engine(tr.g, NULL, qc, ds, norm, &qm, &e)))
		goto done;
	for (int r = 0; r < runs && s == PRESSO_OK; r++) {
		double t0 = now_us();
		s = qengine_run(base, 1);
		double t1 = now_us();
		if (s == PRESSO_OK)
			s = qengine_run(e, 1);
		tb[r] = t1 - t0;
		tt[r] = now_us() - t1;
	}
	if (s == PRESSO_OK)
		*us = median(tt, runs) - median(tb, runs);
done:
	qengine_free(e);
	qmodel_free(qm);
	transform_result_free(&tr);
	policy_free(p);
	free(tb);
	free(tt);
	return s;
}

static enum presso_status measure_deltas(const struct graph *g, const struct calib *cal,
					 const struct quant_config *qc, const struct dataset *ds,
					 const struct normalize *norm, int n_layers,
					 latency_lut_values_fn values, void *ctx, int runs,
					 struct latency_lut *lut)
{
	struct qmodel *bq = NULL;
	struct qengine *base = NULL;
	enum presso_status s = PRESSO_OK;
	for (int l = 0; l < n_layers && s == PRESSO_OK; l++)
		for (int k = 0; k < LUT_KNOB_COUNT && s == PRESSO_OK; k++) {
			double v[LUT_MAX_VALUES];
			int nv = values(ctx, l, (enum lut_knob)k, v);
			if (nv > 0 && !base)
				s = w8a8_engine(g, cal, qc, ds, norm, &bq, &base);
			for (int i = 0; i < nv && i < LUT_MAX_VALUES && s == PRESSO_OK; i++) {
				struct layer_policy lp = policy_default_layer();
				if (k == LUT_PRUNE_STRUCTURED) {
					lp.prune = v[i];
					lp.prune_kind = PRUNE_STRUCTURED;
				} else {
					lp.rank = v[i];
				}
				double us;
				s = measure_delta(g, qc, ds, norm, n_layers, l, &lp, runs, base, &us);
				if (s == PRESSO_OK && !isnan(us))
					s = add_delta(lut, l, (enum lut_knob)k, v[i], us);
			}
		}
	qengine_free(base);
	qmodel_free(bq);
	return s;
}

/* "host (CPU model)" of this machine, the model from /proc/cpuinfo when there is one. */
static void machine_name(char *buf, size_t cap)
{
	char host[128] = "", cpu[128] = "", line[512];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && !cpu[0] && fgets(line, sizeof line, f)) {
		const char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon) {
			colon += 1 + strspn(colon + 1, " \t");
			snprintf(cpu, sizeof cpu, "%.*s", (int)strcspn(colon, "\n"), colon);
		}
	}
	if (f)
		fclose(f);
	if (cpu[0])
		snprintf(buf, cap, "%s (%s)", host, cpu);
	else
		snprintf(buf, cap, "%s", host);
}

enum presso_status latency_lut_measure(const struct graph *g, const struct calib *cal,
				       const struct quant_config *qc, const struct dataset *ds,
				       const struct normalize *norm, latency_lut_wanted_fn wanted,
				       latency_lut_values_fn values, void *wanted_ctx, int runs,
				       struct latency_lut **out)
{
	*out = NULL;
	struct layer *layers = NULL;
	int n_layers = 0;
	struct latency_lut *lut = NULL;
	enum presso_status s = graph_layers(g, &layers, &n_layers);
	if (s != PRESSO_OK)
		return s;
	if (runs < 1)
		runs = 1;
	if ((s = lut_new(n_layers, runs, &lut)) != PRESSO_OK)
		goto fail;
	snprintf(lut->isa, sizeof lut->isa, "%s", q8_isa_name(qc->isa));
	machine_name(lut->measured_on, sizeof lut->measured_on);
	bool have_overhead = false;
	/* W8A8 first, so the overhead comes from the identity setting */
	for (int pass = 0; pass < 2; pass++)
		for (int b = LUT_MAX_BITS; b >= 1; b--)
			for (int a = LUT_MAX_BITS; a >= LUT_MIN_ACT_BITS; a--) {
				bool identity = b == LUT_MAX_BITS && a == LUT_MAX_BITS;
				if ((pass == 0) != identity)
					continue;
				bool any = false;
				for (int l = 0; l < n_layers && !any; l++)
					any = wanted(wanted_ctx, l, b, a);
				if (!any && !(identity && !have_overhead))
					continue;
				struct qmodel *qm = NULL;
				double *med = NULL;
				s = profile_setting(g, cal, qc, ds, norm, n_layers, b, a, runs, &qm,
						    &med);
				if (s != PRESSO_OK)
					goto fail;
				double overhead = 0;
				for (int i = 0; i < qmodel_n_steps(qm); i++) {
					int l = qmodel_step_layer(qm, i);
					if (l < 0)
						overhead += med[i];
					else if (wanted(wanted_ctx, l, b, a))
						lut->us[entry_index(l, b, a)] = med[i];
				}
				if (!have_overhead) {
					lut->overhead_us = overhead;
					have_overhead = true;
				}
				free(med);
				qmodel_free(qm);
			}
	if (values && (s = measure_deltas(g, cal, qc, ds, norm, n_layers, values, wanted_ctx, runs,
					  lut)) != PRESSO_OK)
		goto fail;
	free(layers);
	*out = lut;
	return PRESSO_OK;
fail:
	free(layers);
	latency_lut_free(lut);
	return s;
}

double latency_lut_entry(const struct latency_lut *lut, int layer, int bits, int act_bits)
{
	if (layer < 0 || layer >= lut->n_layers || !in_range(bits, act_bits))
		return NAN;
	return lut->us[entry_index(layer, bits, act_bits)];
}

double latency_lut_delta(const struct latency_lut *lut, int layer, enum lut_knob knob,
			 double value)
{
	for (int i = 0; i < lut->n_deltas; i++) {
		const struct lut_delta *d = &lut->deltas[i];
		if (d->layer == layer && d->knob == knob && fabs(d->value - value) < VALUE_EPS)
			return d->us;
	}
	return NAN;
}

double latency_lut_estimate(const struct latency_lut *lut, const struct policy *p)
{
	if (p->n_layers != lut->n_layers)
		return NAN;
	double sum = lut->overhead_us;
	for (int l = 0; l < p->n_layers; l++) {
		const struct layer_policy *lp = &p->layers[l];
		sum += latency_lut_entry(lut, l, lp->bits, lp->act_bits);
		if (lp->prune > 0 && lp->prune_kind == PRUNE_STRUCTURED)
			sum += latency_lut_delta(lut, l, LUT_PRUNE_STRUCTURED, lp->prune);
		if (lp->rank != 1)
			sum += latency_lut_delta(lut, l, LUT_RANK, lp->rank);
	}
	return sum;
}

char *latency_lut_to_json(const struct latency_lut *lut, const struct layer *layers)
{
	unsigned since = json_failures();
	cJSON *doc = cJSON_CreateObject();
	if (!doc)
		return NULL;
	cJSON_AddNumberToObject(doc, "version", 2);
	cJSON_AddNumberToObject(doc, "runs", lut->runs);
	cJSON_AddStringToObject(doc, "isa", lut->isa);
	if (lut->measured_on[0])
		cJSON_AddStringToObject(doc, "measured_on", lut->measured_on);
	cJSON_AddNumberToObject(doc, "overhead_us", lut->overhead_us);
	cJSON *names = cJSON_AddArrayToObject(doc, "layers");
	for (int l = 0; names && l < lut->n_layers; l++)
		cJSON_AddItemToArray(names, cJSON_CreateString(layers[l].name));
	cJSON *entries = cJSON_AddArrayToObject(doc, "entries");
	for (int l = 0; entries && l < lut->n_layers; l++)
		for (int b = 1; b <= LUT_MAX_BITS; b++)
			for (int a = LUT_MIN_ACT_BITS; a <= LUT_MAX_BITS; a++) {
				double v = lut->us[entry_index(l, b, a)];
				if (isnan(v))
					continue;
				double row[4] = {l, b, a, v};
				cJSON_AddItemToArray(entries, cJSON_CreateDoubleArray(row, 4));
			}
	cJSON *deltas = cJSON_AddArrayToObject(doc, "deltas");
	for (int i = 0; deltas && i < lut->n_deltas; i++) {
		const struct lut_delta *d = &lut->deltas[i];
		double row[4] = {d->layer, d->knob, d->value, d->us};
		cJSON_AddItemToArray(deltas, cJSON_CreateDoubleArray(row, 4));
	}
	char *text = json_print(doc, false, since);
	cJSON_Delete(doc);
	return text;
}

enum presso_status latency_lut_from_json(const char *text, const char *what,
					 const struct layer *layers, int n_layers,
					 struct latency_lut **out)
{
	*out = NULL;
	struct latency_lut *lut = NULL;
	bool oom;
	cJSON *doc = json_parse(text ? text : "", NULL, false, &oom);
	if (oom)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory reading the latency table",
				   what);
	const cJSON *runs = cJSON_GetObjectItemCaseSensitive(doc, "runs");
	const cJSON *isa = cJSON_GetObjectItemCaseSensitive(doc, "isa");
	const cJSON *over = cJSON_GetObjectItemCaseSensitive(doc, "overhead_us");
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(doc, "layers");
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(doc, "entries");
	enum presso_status s = PRESSO_OK;
	bool ok = cJSON_IsObject(doc) && cJSON_IsNumber(runs) && cJSON_IsString(isa) &&
		  cJSON_IsNumber(over) && cJSON_IsArray(names) && cJSON_IsArray(entries) &&
		  cJSON_GetArraySize(names) == n_layers;
	int l = 0;
	for (const cJSON *e = ok ? names->child : NULL; e && ok; e = e->next, l++)
		ok = cJSON_IsString(e) && strcmp(e->valuestring, layers[l].name) == 0;
	if (ok && (s = lut_new(n_layers, (int)runs->valuedouble, &lut)) != PRESSO_OK)
		goto done;
	if (ok) {
		snprintf(lut->isa, sizeof lut->isa, "%s", isa->valuestring);
		const cJSON *on = cJSON_GetObjectItemCaseSensitive(doc, "measured_on");
		if (cJSON_IsString(on))
			snprintf(lut->measured_on, sizeof lut->measured_on, "%s", on->valuestring);
		lut->overhead_us = over->valuedouble;
	}
	for (const cJSON *e = ok ? entries->child : NULL; e && ok; e = e->next) {
		double v[4];
		int k = 0;
		for (const cJSON *x = cJSON_IsArray(e) ? e->child : NULL; x && k < 4; x = x->next)
			v[k++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
		ok = k == 4 && cJSON_GetArraySize(e) == 4 && v[0] >= 0 && v[0] < n_layers &&
		     in_range((int)v[1], (int)v[2]) && v[3] >= 0 && isfinite(v[3]);
		if (ok)
			lut->us[entry_index((int)v[0], (int)v[1], (int)v[2])] = v[3];
	}
	/* version 1 tables have none */
	const cJSON *deltas = cJSON_GetObjectItemCaseSensitive(doc, "deltas");
	if (ok && deltas && !cJSON_IsArray(deltas))
		ok = false;
	for (const cJSON *e = ok && deltas ? deltas->child : NULL; e && ok; e = e->next) {
		double v[4];
		int k = 0;
		for (const cJSON *x = cJSON_IsArray(e) ? e->child : NULL; x && k < 4; x = x->next)
			v[k++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
		ok = k == 4 && cJSON_GetArraySize(e) == 4 && v[0] >= 0 && v[0] < n_layers &&
		     (v[1] == LUT_PRUNE_STRUCTURED || v[1] == LUT_RANK) && isfinite(v[2]) &&
		     isfinite(v[3]);
		if (ok && (s = add_delta(lut, (int)v[0], (enum lut_knob)v[1], v[2], v[3])) != PRESSO_OK)
			goto done;
	}
	if (!ok)
		s = status_fail(PRESSO_E_FORMAT,
				"%s: not a latency table of this model's %d layers (measure it again)",
				what, n_layers);
done:
	cJSON_Delete(doc);
	if (s != PRESSO_OK) {
		latency_lut_free(lut);
		return s;
	}
	*out = lut;
	return PRESSO_OK;
}

enum presso_status latency_measure_policy(const struct graph *g, const struct calib *cal,
					  const struct quant_config *qc, const struct dataset *ds,
					  const struct normalize *norm, const struct policy *p,
					  int runs, double *latency_us)
{
	struct qmodel *qm = NULL;
	*latency_us = NAN;
	enum presso_status s = qmodel_build(g, p, cal, qc, &qm);
	if (s != PRESSO_OK)
		return s;
	struct eval_model em = {g, qm};
	s = eval_latency(&em, ds, norm, runs, latency_us);
	qmodel_free(qm);
	return s;
}
