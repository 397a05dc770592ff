/* lut.c - a study's latency table: wanted entries, store, measure (see lut.h). */
#define _POSIX_C_SOURCE 200809L
#include "search/lut.h"

#include <stdlib.h>
#include <string.h>

bool lut_wanted(void *space, int layer, int bits, int act_bits)
{
	const struct space *sp = space;
	if (layer < 0 || layer >= sp->n_layers)
		return false;
	const struct knob_domain *b = &sp->ls[layer].d[KNOB_BITS];
	const struct knob_domain *a = &sp->ls[layer].d[KNOB_ACT_BITS];
	bool has_b = false, has_a = false;
	for (int i = 0; i < b->n; i++)
		has_b |= (int)b->v[i] == bits;
	for (int i = 0; i < a->n; i++)
		has_a |= (int)a->v[i] == act_bits;
	return has_b && has_a;
}

int lut_values(void *space, int layer, enum lut_knob knob, double *values)
{
	const struct space *sp = space;
	if (layer < 0 || layer >= sp->n_layers)
		return 0;
	const struct knob_domain *d = &sp->ls[layer].d[KNOB_RANK];
	if (knob == LUT_PRUNE_STRUCTURED) {
		const struct knob_domain *kind = &sp->ls[layer].d[KNOB_PRUNE_KIND];
		bool structured = false;
		for (int i = 0; i < kind->n; i++)
			structured |= (int)kind->v[i] == PRUNE_STRUCTURED;
		if (!structured)
			return 0;
		d = &sp->ls[layer].d[KNOB_PRUNE];
	}
	int n = 0;
	for (int i = 0; i < d->n && n < LUT_MAX_VALUES; i++)
		if (knob == LUT_PRUNE_STRUCTURED ? d->v[i] > 0 : d->v[i] != 1)
			values[n++] = d->v[i];
	return n;
}

enum presso_status lut_for_study(const struct study_ctx *ctx, const struct space *sp,
				 struct store *st, int64_t study_id, FILE *log,
				 struct latency_lut **out)
{
	*out = NULL;
	void *value = NULL;
	size_t n = 0;
	bool found = false;
	enum presso_status s = store_get_state(st, study_id, LUT_STATE_KEY, &value, &n, &found);
	if (s != PRESSO_OK)
		return s;
	if (found) {
		s = latency_lut_from_json(value, "search state '" LUT_STATE_KEY "'", ctx->layers,
					  ctx->n_layers, out);
		free(value);
		return s;
	}
	if (log)
		fprintf(log, "presso: measuring the latency table (%d layers, %d runs per setting)\n",
			ctx->n_layers, sp->search.latency_runs);
	struct latency_lut *lut = NULL;
	s = latency_lut_measure(ctx->g, ctx->cal, &ctx->qc, ctx->train, &ctx->cfg->data.norm,
				lut_wanted, lut_values, (void *)sp, sp->search.latency_runs, &lut);
	if (s != PRESSO_OK)
		return s;
	char *text = latency_lut_to_json(lut, ctx->layers);
	if (!text) {
		latency_lut_free(lut);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	struct store_kv kv = {LUT_STATE_KEY, text, strlen(text), true};
	s = store_put_state(st, study_id, &kv, 1);
	/* from here on the table as stored: its JSON numbers need not give back
	 * the measured doubles bit for bit, and a resume reads the stored ones, so
	 * every run of the study must use those to get the same estimates */
	if (s == PRESSO_OK)
		s = latency_lut_from_json(text, "search state '" LUT_STATE_KEY "'", ctx->layers,
					  ctx->n_layers, out);
	free(text);
	latency_lut_free(lut);
	return s;
}

enum presso_status lut_for_config(const struct config *cfg, int runs, bool verbose,
				  struct lut_report *r)
{
	memset(r, 0, sizeof *r);
	struct dataset *train = NULL;
	struct split calib = {0}, valid = {0};
	struct calib *cal = NULL;
	struct policy *w8a8 = NULL;
	enum presso_status s;
	if ((s = graph_load_onnx(cfg->model_path, &r->g)) ||
	    (s = graph_layers(r->g, &r->layers, &r->n_layers)) ||
	    (s = space_parse(cfg->json, r->layers, r->n_layers, &r->sp)) ||
	    (s = trial_load_dataset(cfg, false, r->g, &train)) ||
	    (s = dataset_make_splits(train->n, cfg->data.seed, cfg->data.n_calib, 1, &calib,
				     &valid)))
		goto done;
	if (verbose)
		fprintf(stderr, "presso: calibrating on %lld training images\n", (long long)calib.n);
	if ((s = calib_run(r->g, train, &cfg->data.norm, &calib, cfg->eval.batch, &cal)))
		goto done;
	if (runs < 1)
		runs = r->sp->search.latency_runs;
	struct quant_config qc = trial_quant_config(cfg);
	if (verbose)
		fprintf(stderr, "presso: measuring the latency table (%d layers, %d runs per setting)\n",
			r->n_layers, runs);
	struct layer_policy lp = policy_default_layer();
	if ((s = latency_lut_measure(r->g, cal, &qc, train, &cfg->data.norm, lut_wanted,
				     lut_values, r->sp, runs, &r->lut)) ||
	    (s = policy_uniform(&lp, r->n_layers, &w8a8)) ||
	    (s = latency_measure_policy(r->g, cal, &qc, train, &cfg->data.norm, w8a8, runs,
					&r->w8a8_measured_us)))
		goto done;
	/* NAN when some layer's space has no W8A8 entry */
	r->w8a8_estimate_us = latency_lut_estimate(r->lut, w8a8);
done:
	policy_free(w8a8);
	calib_free(cal);
	split_free(&calib);
	split_free(&valid);
	dataset_free(train);
	if (s != PRESSO_OK) {
		status_wrap(s, "%s", cfg->path && *cfg->path ? cfg->path : cfg->model_path);
		lut_report_free(r);
	}
	return s;
}

void lut_report_free(struct lut_report *r)
{
	if (!r)
		return;
	latency_lut_free(r->lut);
	space_free(r->sp);
	free(r->layers);
	graph_free(r->g);
	memset(r, 0, sizeof *r);
}
