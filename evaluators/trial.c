/* trial.c - study context and single-policy evaluation (see trial.h). */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/trial.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluators/evaluate.h"

#define BASELINE_LATENCY_RUNS 51

/* The folder options of cfg, the model's input filling what it leaves out:
 * the crop (the input's height and width) and the channels (gray for one
 * channel, else RGB). */
static enum presso_status folder_options(const struct config *cfg, const struct graph *g,
					 struct folder_opts *o)
{
	const struct data_config *d = &cfg->data;
	int c = 0, h = 0, w = 0;
	bool image = g && feed_input_image(g, &c, &h, &w);
	*o = (struct folder_opts){.resize = d->resize, .crop_h = d->crop_h, .crop_w = d->crop_w,
				  .channels = FOLDER_RGB};
	if (!o->crop_h && image) {
		o->crop_h = h;
		o->crop_w = w;
	}
	if (d->channels >= 0) {
		o->channels = (enum folder_channels)d->channels;
	} else if (image && c == 1) {
		o->channels = FOLDER_GRAY;
	} else if (image && c != 3) {
		return status_fail(PRESSO_E_CONFIG,
				   "data.channels: the model takes %d channels, and an image "
				   "folder gives 3 (\"rgb\", \"bgr\") or 1 (\"gray\")",
				   c);
	}
	return PRESSO_OK;
}

enum presso_status trial_load_dataset(const struct config *cfg, bool test, const struct graph *g,
				      struct dataset **ds)
{
	const struct data_config *d = &cfg->data;
	const char *images = test ? d->test_images : d->train_images;
	const char *labels = test ? d->test_labels : d->train_labels;
	enum presso_status s;
	*ds = NULL;
	if (strcmp(d->format, "folder") == 0) {
		struct folder_opts o;
		s = folder_options(cfg, g, &o);
		if (s == PRESSO_OK)
			s = dataset_load_folder(test ? d->test_dir : d->train_dir, d->train_dir, &o,
						ds);
		if (s == PRESSO_E_CONFIG && cfg->path && *cfg->path)
			status_wrap(s, "%s", cfg->path);
	} else {
		s = strcmp(d->format, "npy") == 0
			    ? dataset_load_npy(images, labels, d->channels_last, ds)
			    : dataset_load_idx(images, labels, ds);
	}
	if (s == PRESSO_OK && (s = dataset_check_normalize(*ds, &d->norm)) != PRESSO_OK) {
		dataset_free(*ds);
		*ds = NULL;
		if (cfg->path && *cfg->path)
			status_wrap(s, "%s", cfg->path);
	}
	return s;
}

/* baseline: measure the FP32 baseline too (a worker rank does not need it) */
static enum presso_status ctx_open(const struct config *cfg, bool verbose, bool baseline,
				   struct study_ctx **out)
{
	*out = NULL;
	struct study_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	c->cfg = cfg;
	enum presso_status s;
	if ((s = graph_load_onnx(cfg->model_path, &c->g)) ||
	    (s = graph_layers(c->g, &c->layers, &c->n_layers)) ||
	    (s = trial_load_dataset(cfg, false, c->g, &c->train)) ||
	    (s = trial_load_dataset(cfg, true, c->g, &c->test)) ||
	    (s = dataset_make_splits(c->train->n, cfg->data.seed, cfg->data.n_calib,
				     cfg->data.n_valid, &c->calib, &c->valid)) ||
	    (s = split_range(c->test->n, cfg->data.n_test, &c->test_split)))
		goto fail;
	struct feed feed;
	if ((s = feed_check(c->g, c->train, &feed)) != PRESSO_OK)
		goto fail;
	c->n_classes = c->train->n_classes;
	if ((s = quant_pipeline_init(&c->pipe, cfg, c->g, c->train, &c->calib, verbose)))
		goto fail;
	c->cal = c->pipe.cal;
	c->qc = c->pipe.qc;
	qmodel_fp32_size(c->g, &c->fp32_size);
	if (!baseline) {
		*out = c;
		return PRESSO_OK;
	}
	if (verbose)
		fprintf(stderr, "presso: FP32 baseline on %lld validation and %lld test images\n",
			(long long)c->valid.n, (long long)c->test_split.n);
	struct eval_model fm = {c->g, NULL};
	struct eval_result r;
	int threads = cfg->eval.threads;
	if ((s = eval_accuracy(&fm, c->train, &cfg->data.norm, &c->valid, cfg->eval.batch, threads, &r)))
		goto fail;
	c->fp32_valid_accuracy = r.accuracy_pct;
	if ((s = eval_accuracy(&fm, c->test, &cfg->data.norm, &c->test_split, cfg->eval.batch, threads, &r)))
		goto fail;
	c->fp32_test_accuracy = r.accuracy_pct;
	if ((s = eval_latency(&fm, c->train, &cfg->data.norm, BASELINE_LATENCY_RUNS, &c->fp32_latency_us)))
		goto fail;
	*out = c;
	return PRESSO_OK;
fail:
	study_ctx_free(c);
	return s;
}

enum presso_status study_ctx_open(const struct config *cfg, bool verbose, struct study_ctx **out)
{
	return ctx_open(cfg, verbose, true, out);
}

enum presso_status study_ctx_open_for_trials(const struct config *cfg, struct study_ctx **out)
{
	return ctx_open(cfg, false, false, out);
}

void study_ctx_free(struct study_ctx *c)
{
	if (!c)
		return;
	quant_pipeline_free(&c->pipe);
	split_free(&c->calib);
	split_free(&c->valid);
	split_free(&c->test_split);
	dataset_free(c->train);
	dataset_free(c->test);
	free(c->layers);
	graph_free(c->g);
	free(c);
}

void built_model_free(struct built_model *b)
{
	qmodel_free(b->qm);
	policy_free(b->pol);
	calib_free(b->own_cal);
	transform_result_free(&b->tr);
	memset(b, 0, sizeof *b);
}

void built_model_report(const struct built_model *b, FILE *f)
{
	if (!b->tr.g)
		return;
	const struct transform_result *t = &b->tr;
	struct qmodel_size z;
	qmodel_size(b->qm, &z);
	const struct graph_cost *st[3] = {&t->before, &t->after_prune, &t->after_lowrank};
	static const char *const names[3] = {"FP32", "pruned", "low-rank"};
	fprintf(f, "%-12s %12s %12s %14s %12s\n", "step", "params", "MACs", "BOPs", "size_bytes");
	for (int i = 0; i < 3; i++)
		fprintf(f, "%-12s %12lld %12lld %14.4g %12lld\n", names[i], (long long)st[i]->params,
			(long long)st[i]->macs, st[i]->bops, (long long)st[i]->size_bytes);
	fprintf(f, "%-12s %12lld %12lld %14.4g %12lld\n", "quantized", (long long)z.params,
		(long long)t->after_lowrank.macs, z.bops, (long long)z.size_bytes);
	if (b->repair.n_layers)
		fprintf(f, "repair:      %d layers re-fitted to the original statistics (mean shift %.2f std, mean scale %.2f)\n",
			b->repair.n_layers, b->repair.mean_abs_shift, b->repair.mean_scale);
	else if (t->changed)
		fprintf(f, "repair:      off\n");
	for (const char *l = t->notes; l && *l;) {
		const char *e = strchr(l, '\n');
		int len = e ? (int)(e - l) : (int)strlen(l);
		fprintf(f, "note:        %.*s\n", len, l);
		l = e ? e + 1 : l + len;
	}
}

struct quant_config trial_quant_config(const struct config *cfg)
{
	return (struct quant_config){cfg->quant.method, cfg->quant.percentile, q8_isa_best(),
				     NULL, NULL,
				     cfg->quant.requant_q31 ? REQUANT_Q31 : REQUANT_FLOAT};
}

enum presso_status quant_pipeline_init(struct quant_pipeline *qp, const struct config *cfg,
				       const struct graph *g, const struct dataset *train,
				       const struct split *calib, bool verbose)
{
	memset(qp, 0, sizeof *qp);
	*qp = (struct quant_pipeline){.cfg = cfg, .g = g, .train = train, .calib = calib};
	qp->qc = trial_quant_config(cfg);
	if (verbose)
		fprintf(stderr, "presso: calibrating on %lld training images\n", (long long)calib->n);
	enum presso_status s = calib_run(g, train, &cfg->data.norm, calib, cfg->eval.batch, &qp->cal);
	if (s == PRESSO_OK) {
		int64_t n = cfg->quant.repair_images < calib->n ? cfg->quant.repair_images : calib->n;
		qp->repair_split.indices = malloc(sizeof(int64_t) * (size_t)n);
		if (!qp->repair_split.indices)
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
		else
			qp->repair_split.n = n;
		if (s == PRESSO_OK)
			memcpy(qp->repair_split.indices, calib->indices, sizeof(int64_t) * (size_t)n);
	}
	if (s == PRESSO_OK)
		s = qweight_cache_new(g, &qp->qc.cache);
	if (s == PRESSO_OK && cfg->quant.repair)
		s = repair_measure(g, train, &cfg->data.norm, &qp->repair_split, &qp->repair_target);
	if (s == PRESSO_OK && cfg->quant.gptq) {
		s = hessians_run(g, train, &cfg->data.norm, &qp->repair_split, &qp->hess);
		qp->qc.hess = qp->hess;
	}
	if (s != PRESSO_OK)
		quant_pipeline_free(qp);
	return s;
}

void quant_pipeline_free(struct quant_pipeline *qp)
{
	qweight_cache_free(qp->qc.cache);
	calib_free(qp->cal);
	layer_stats_free(qp->repair_target);
	hessians_free(qp->hess);
	split_free(&qp->repair_split);
	memset(qp, 0, sizeof *qp);
}

enum presso_status trial_build(const struct study_ctx *c, const struct policy *p,
			       struct built_model *out)
{
	return quant_pipeline_build(&c->pipe, p, out);
}

enum presso_status quant_pipeline_build(const struct quant_pipeline *c, const struct policy *p,
					struct built_model *out)
{
	memset(out, 0, sizeof *out);
	out->g = c->g;
	out->cal = c->cal;
	const struct config *cfg = c->cfg;
	enum presso_status s = PRESSO_OK;
	if (transform_needed(p)) {
		s = transform_apply(c->g, p, &out->tr);
		/* repair and calibrate the changed graph in one pass */
		if (s == PRESSO_OK && out->tr.changed) {
			s = repair_run(&out->tr, c->repair_target, c->train, &cfg->data.norm,
				       &c->repair_split, &out->repair, &out->own_cal);
			out->own_g = out->tr.g;
			out->g = out->own_g;
			out->cal = out->own_cal;
		}
		if (s == PRESSO_OK) {
			out->pol = out->tr.pol;
			out->tr.pol = NULL;
		}
	}
	if (s == PRESSO_OK && !out->pol)
		s = policy_copy(p, &out->pol);
	if (s == PRESSO_OK)
		s = qmodel_build(out->g, out->pol, out->cal, &c->qc, &out->qm);
	if (s != PRESSO_OK)
		built_model_free(out);
	return s;
}

/* trial_evaluate on the images [first, first + n) of the split (n 0: all);
 * other: the training-set images of that split instead (on_test false). */
static enum presso_status evaluate(const struct study_ctx *c, const struct policy *p, bool on_test,
				   int64_t first, int64_t n, const struct split *other,
				   bool measure_latency, int latency_runs,
				   struct trial_metrics_out *out)
{
	memset(out, 0, sizeof *out);
	out->latency_us = NAN;
	struct built_model b;
	enum presso_status s = trial_build(c, p, &b);
	if (s != PRESSO_OK)
		return s;
	struct qmodel *qm = b.qm;
	struct eval_model em = {b.g, qm};
	struct eval_result r;
	const struct dataset *ds = on_test ? c->test : c->train;
	const struct split *whole = on_test ? &c->test_split : other ? other : &c->valid;
	PRESSO_CHECK(first >= 0 && n >= 0 && first + n <= whole->n);
	/* a view of part of the split: its indices, not a copy */
	struct split part = {n > 0 ? n : whole->n - first, whole->indices + first};
	s = eval_accuracy(&em, ds, &c->cfg->data.norm, &part, c->cfg->eval.batch, 1, &r);
	if (s == PRESSO_OK && measure_latency)
		s = eval_latency(&em, c->train, &c->cfg->data.norm, latency_runs, &out->latency_us);
	if (s == PRESSO_OK) {
		struct qmodel_size z;
		qmodel_size(qm, &z);
		out->accuracy = r.accuracy_pct;
		out->n_correct = r.n_correct;
		out->n_images = r.n_images;
		out->size_bytes = z.size_bytes;
		out->bops = z.bops;
		out->mean_bits = z.mean_bits;
		double w = 0, prune = 0, rank = 0;
		for (int i = 0; i < c->n_layers; i++) {
			double params = (double)c->layers[i].params;
			w += params;
			prune += params * p->layers[i].prune;
			rank += params * p->layers[i].rank;
		}
		out->mean_prune = w > 0 ? prune / w : 0;
		out->mean_rank = w > 0 ? rank / w : 1;
	}
	built_model_free(&b);
	return s;
}

enum presso_status trial_evaluate(const struct study_ctx *c, const struct policy *p,
				  bool on_test, bool measure_latency, int latency_runs,
				  struct trial_metrics_out *out)
{
	return evaluate(c, p, on_test, 0, 0, NULL, measure_latency, latency_runs, out);
}

enum presso_status trial_evaluate_part(const struct study_ctx *c, const struct policy *p,
				       int64_t first, int64_t n, struct trial_metrics_out *out)
{
	if (first < 0 || n < 0 || first + n > c->valid.n || (n == 0 && first >= c->valid.n))
		return status_fail(PRESSO_E_USAGE,
				   "validation images %lld..%lld asked of a split of %lld",
				   (long long)first, (long long)(first + n), (long long)c->valid.n);
	return evaluate(c, p, false, first, n, NULL, false, 0, out);
}

enum presso_status trial_evaluate_split(const struct study_ctx *c, const struct policy *p,
					const struct split *sp, struct trial_metrics_out *out)
{
	return evaluate(c, p, false, 0, 0, sp, false, 0, out);
}

enum presso_status trial_more_validation(const struct study_ctx *c, int64_t n,
					 struct split *out)
{
	const struct data_config *dc = &c->cfg->data;
	struct split calib, valid;
	*out = (struct split){0, NULL};
	if (n < 1 || dc->n_calib + c->valid.n + n > c->train->n)
		return status_fail(PRESSO_E_CONFIG,
				   "%lld more validation images asked for, but the training set has "
				   "%lld images and calibration (%lld) and validation (%lld) take %lld",
				   (long long)n, (long long)c->train->n, (long long)dc->n_calib,
				   (long long)c->valid.n, (long long)(dc->n_calib + c->valid.n));
	enum presso_status s = dataset_make_splits(c->train->n, dc->seed, dc->n_calib,
						   c->valid.n + n, &calib, &valid);
	if (s != PRESSO_OK)
		return s;
	/* the same draw: the validation split is the prefix of the longer one */
	PRESSO_CHECK(memcmp(valid.indices, c->valid.indices,
			    sizeof *valid.indices * (size_t)c->valid.n) == 0);
	out->n = n;
	out->indices = malloc(sizeof *out->indices * (size_t)n);
	if (out->indices)
		memcpy(out->indices, valid.indices + c->valid.n, sizeof *out->indices * (size_t)n);
	else
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s != PRESSO_OK)
		out->n = 0;
	split_free(&calib);
	split_free(&valid);
	return s;
}
