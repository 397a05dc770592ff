/* finetune.c - a policy fine-tuned and rebuilt (finetune.h has the steps). */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/finetune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "data/feed.h"
#include "evaluators/evaluate.h"
#include "train/fold.h"

enum presso_status finetune_fingerprint(const struct study_ctx *ctx, const struct policy *p,
					const struct train_config *tc, int64_t steps,
					uint8_t out[SHA256_DIGEST_BYTES])
{
	const struct config *cfg = ctx->cfg;
	char model_hex[SHA256_HEX_BYTES];
	enum presso_status s = sha256_file(cfg->model_path, model_hex);
	if (s != PRESSO_OK)
		return s;
	char *pol = policy_to_json(p, ctx->layers), *tcs = train_config_canonical(tc);
	if (!pol || !tcs) {
		free(pol);
		free(tcs);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	char data[512];
	const struct data_config *d = &cfg->data;
	snprintf(data, sizeof data,
		 "images %lld calib %lld valid %lld seed %llu scale %.9g norm %.9g/%.9g quant %d %.17g %d steps %lld",
		 (long long)ctx->train->n, (long long)d->n_calib, (long long)d->n_valid,
		 (unsigned long long)d->seed, d->norm.scale, d->norm.mean[0], d->norm.std[0],
		 (int)cfg->quant.method, cfg->quant.percentile, (int)cfg->quant.requant_q31,
		 (long long)steps);
	struct sha256 c;
	sha256_init(&c);
	const char *parts[] = {"presso finetune 1", model_hex, data, pol, tcs};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		sha256_update(&c, parts[i], strlen(parts[i]) + 1);
	sha256_final(&c, out);
	free(pol);
	free(tcs);
	return PRESSO_OK;
}

struct epoch_eval {
	const struct study_ctx *ctx;
	const struct policy *pol;
	FILE *log;
	bool unfolded;  /* the student has BatchNorm nodes: fold before scoring */
};

/* trainer_setup.fold: the student with BatchNorm folded into the study's
 * folded graph. */
static enum presso_status fold_cb(void *ctx, const struct graph *g, struct graph **out)
{
	return train_fold_into((const struct graph *)ctx, g, out);
}

/* After each epoch: the validation accuracy of the model quantized now. */
static void on_epoch(void *p, int64_t epoch, const struct graph *g)
{
	struct epoch_eval *e = p;
	const struct study_ctx *ctx = e->ctx;
	struct calib *cal = NULL;
	struct qmodel *qm = NULL;
	struct graph *folded = NULL;
	struct quant_config qc = ctx->qc;
	qc.hess = NULL;
	qc.cache = NULL;
	struct eval_result r;
	enum presso_status s = PRESSO_OK;
	if (e->unfolded && (s = train_fold_into(ctx->g, g, &folded)) == PRESSO_OK)
		g = folded;
	if (s == PRESSO_OK)
		s = calib_run(g, ctx->train, &ctx->cfg->data.norm, &ctx->calib, ctx->cfg->eval.batch,
			      &cal);
	if (s == PRESSO_OK)
		s = qmodel_build(g, e->pol, cal, &qc, &qm);
	struct eval_model em = {g, qm};
	if (s == PRESSO_OK)
		s = eval_accuracy(&em, ctx->train, &ctx->cfg->data.norm, &ctx->valid,
				  ctx->cfg->eval.batch, ctx->cfg->eval.threads, &r);
	if (s == PRESSO_OK)
		fprintf(e->log, "presso: epoch %lld: %.2f%% top-1 on the %lld validation images, quantized\n",
			(long long)epoch, r.accuracy_pct, (long long)r.n_images);
	else
		fprintf(e->log, "presso: epoch %lld: no validation score: %s\n", (long long)epoch,
			status_msg());
	fflush(e->log);
	qmodel_free(qm);
	calib_free(cal);
	graph_free(folded);
}

void finetune_result_free(struct finetune_result *r)
{
	if (!r)
		return;
	qmodel_free(r->qm);
	calib_free(r->cal);
	policy_free(r->pol);
	graph_free(r->g);
	memset(r, 0, sizeof *r);
}

enum presso_status finetune_run(const struct study_ctx *ctx, const struct policy *p,
				const struct finetune_opts *o, struct finetune_result *out)
{
	memset(out, 0, sizeof *out);
	const struct config *cfg = ctx->cfg;
	struct built_model b;
	int64_t *train = NULL;
	uint8_t *in_valid = NULL;
	bool *pruned = NULL;
	struct graph *unfolded = NULL;
	enum presso_status s = trial_build(ctx, p, &b);
	if (s != PRESSO_OK)
		return s;
	/* 1. the student: the model with its BatchNorms as nodes when the importer
	 * folded some and the policy keeps the structure, else a copy of the PTQ
	 * model's FP32 graph */
	bool unfold = ctx->g->n_folded_bn > 0 && !transform_needed(p);
	if (unfold) {
		struct graph_load_opts lo = {.keep_batchnorm = true};
		s = graph_load_onnx_opts(cfg->model_path, &lo, &unfolded);
	} else {
		s = graph_clone(b.g, &out->g);
	}
	if (s != PRESSO_OK || (s = policy_copy(b.pol, &out->pol)) != PRESSO_OK)
		goto fail;
	for (int l = 0; l < out->pol->n_layers; l++)
		out->pol->layers[l].bias_correction = false;
	/* 2. the training images: all but the validation split */
	in_valid = calloc((size_t)ctx->train->n, 1);
	train = malloc(sizeof(int64_t) * (size_t)ctx->train->n);
	if (!in_valid || !train) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t i = 0; i < ctx->valid.n; i++)
		in_valid[ctx->valid.indices[i]] = 1;
	int64_t n_train = 0;
	for (int64_t i = 0; i < ctx->train->n; i++)
		if (!in_valid[i])
			train[n_train++] = i;
	struct feed feed;
	if ((s = feed_check(ctx->g, ctx->train, &feed)) != PRESSO_OK)
		goto fail;
	if (feed.fixed_batch > 0) {
		/* the training engine runs micro-batches of its own size */
		s = status_fail(PRESSO_E_UNSUPPORTED,
				"the model's batch is fixed at %d: fine-tuning needs a model "
				"exported with a dynamic batch (dynamic_axes in torch.onnx.export)",
				feed.fixed_batch);
		goto fail;
	}
	enum input_layout layout = feed.layout;
	/* the layers pruned unstructured: their zeros (and their recurrent
	 * layers' R's) stay zero; the transformed policy says prune 0 */
	pruned = calloc((size_t)(out->pol->n_layers ? out->pol->n_layers : 1), sizeof *pruned);
	if (!pruned) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	for (int l = 0; l < out->pol->n_layers; l++) {
		int org = b.tr.origin ? b.tr.origin[l] : l;
		pruned[l] = org >= 0 && org < p->n_layers && p->layers[org].prune > 0 &&
			    p->layers[org].prune_kind == PRUNE_UNSTRUCTURED;
	}
	struct epoch_eval ee = {ctx, out->pol, o->log, unfold};
	struct trainer_setup su = {
		.g = unfold ? unfolded : out->g, .pol = out->pol, .pruned = pruned, .teacher = ctx->g, .tc = o->tc, .ds = ctx->train,
		.norm = &cfg->data.norm, .nhwc = layout == LAYOUT_NHWC, .train = train,
		.n_train = n_train, .calib = &ctx->calib, .qc = &ctx->qc, .steps = o->steps,
		.checkpoint = o->checkpoint, .log = o->log, .stop = o->stop,
		.deadline_s = o->deadline_s,
		.on_epoch = o->eval_epochs && o->log ? on_epoch : NULL, .on_epoch_ctx = &ee,
		.fold = unfold ? fold_cb : NULL, .fold_ctx = (void *)ctx->g,
	};
	if ((s = finetune_fingerprint(ctx, p, o->tc, o->steps, su.fingerprint)) != PRESSO_OK)
		goto fail;
	if (o->checkpoint && o->restart && unlink(o->checkpoint) != 0 && errno != ENOENT) {
		s = status_fail(status_from_errno(errno), "%s: cannot remove the old checkpoint: %s",
				o->checkpoint, strerror(errno));
		goto fail;
	}
	if ((s = trainer_run(&su, &out->train)) != PRESSO_OK)
		goto fail;
	if (out->train.interrupted)
		goto done;
	if (unfold && (s = train_fold_into(ctx->g, unfolded, &out->g)) != PRESSO_OK)
		goto fail;
	/* 3. the tuned model, quantized as trained */
	struct quant_config qc = ctx->qc;
	qc.hess = NULL;
	qc.cache = NULL;
	if ((s = calib_run(out->g, ctx->train, &cfg->data.norm, &ctx->calib, cfg->eval.batch,
			   &out->cal)) != PRESSO_OK ||
	    (s = qmodel_build(out->g, out->pol, out->cal, &qc, &out->qm)) != PRESSO_OK)
		goto fail;
done:
	free(train);
	free(in_valid);
	free(pruned);
	graph_free(unfolded);
	built_model_free(&b);
	return PRESSO_OK;
fail:
	free(train);
	free(in_valid);
	free(pruned);
	graph_free(unfolded);
	built_model_free(&b);
	finetune_result_free(out);
	return s;
}

/* finetune_evaluate on the images of split sp of dataset ds. */
static enum presso_status evaluate_on(const struct study_ctx *ctx, const struct policy *p,
				      const struct finetune_result *fr, const struct dataset *ds,
				      const struct split *sp, struct trial_metrics_out *out)
{
	memset(out, 0, sizeof *out);
	out->latency_us = NAN;
	const struct config *cfg = ctx->cfg;
	struct eval_model em = {fr->g, fr->qm};
	struct eval_result r;
	enum presso_status s = eval_accuracy(&em, ds, &cfg->data.norm, sp, cfg->eval.batch,
					     cfg->eval.threads, &r);
	if (s != PRESSO_OK)
		return s;
	struct qmodel_size z;
	qmodel_size(fr->qm, &z);
	out->accuracy = r.accuracy_pct;
	out->n_correct = r.n_correct;
	out->n_images = r.n_images;
	out->size_bytes = z.size_bytes;
	out->bops = z.bops;
	out->mean_bits = z.mean_bits;
	double w = 0, prune = 0, rank = 0;
	for (int i = 0; i < ctx->n_layers; i++) {
		double params = (double)ctx->layers[i].params;
		w += params;
		prune += params * p->layers[i].prune;
		rank += params * p->layers[i].rank;
	}
	out->mean_prune = w > 0 ? prune / w : 0;
	out->mean_rank = w > 0 ? rank / w : 1;
	return PRESSO_OK;
}

enum presso_status finetune_evaluate(const struct study_ctx *ctx, const struct policy *p,
				     const struct finetune_result *fr, bool on_test,
				     struct trial_metrics_out *out)
{
	return on_test ? evaluate_on(ctx, p, fr, ctx->test, &ctx->test_split, out)
		       : evaluate_on(ctx, p, fr, ctx->train, &ctx->valid, out);
}

enum presso_status finetune_evaluate_split(const struct study_ctx *ctx, const struct policy *p,
					   const struct finetune_result *fr, const struct split *sp,
					   struct trial_metrics_out *out)
{
	return evaluate_on(ctx, p, fr, ctx->train, sp, out);
}
