/* trainer.c - the fine-tuning loop (trainer.h has the contract and the
 * invariants: fixed parts of a batch reduced in order, seeded epoch order,
 * activation ranges from the INT8 build).
 *
 * Memory: one tnet workspace and one teacher engine per thread, for
 * micro_batch images; one gradient vector per part of a batch (parts x
 * parameters floats) and the reduced one; the teacher's logits cached per
 * training image as they are first needed (each image's are computed once per
 * run: the teacher never changes).
 */
#define _POSIX_C_SOURCE 200809L
#include "train/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"
#include "model/engine.h"
#include "quant/calib.h"
#include "train/checkpoint.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/tnet.h"

/* Images per batch of the calibration pass (as the evaluators use). */
#define CALIB_BATCH 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int train_logits_value(const struct graph *g)
{
	int out = g->outputs[0];
	int p = g->values[out].producer;
	if (p >= 0 && (g->nodes[p].op == OP_SOFTMAX || g->nodes[p].op == OP_LOGSOFTMAX) &&
	    !value_is_const(&g->values[g->nodes[p].inputs[0]]))
		out = g->nodes[p].inputs[0];
	return out;
}

/* One thread's teacher: an FP32 engine and where its logits land. */
struct teacher {
	struct engine *e;
	int logits;         /* value */
	float *dst;         /* [micro_batch, classes] of the last run */
	int64_t row_floats;
};

static void teacher_observe(void *ctx, int v, const float *data, const struct shape *shape)
{
	struct teacher *t = ctx;
	if (v == t->logits)
		memcpy(t->dst, data, sizeof(float) * (size_t)shape_numel(shape));
}

struct run {
	const struct trainer_setup *su;
	const struct train_config *tc;
	struct tnet *t;
	struct optim *o;
	int n_threads, n_parts, classes;
	struct tnet_ws **ws;          /* [n_threads] */
	struct teacher *te;           /* [n_threads] or NULL */
	float *tcache;                /* [ds->n, classes] teacher logits */
	uint8_t *tdone;               /* [ds->n] */
	float **part_grad;            /* [n_parts] */
	float *grad;
	float *part_bn;               /* [n_parts][2 * n_bn] */
	double *part_loss;
	int *part_correct;
	int32_t **labels;             /* [n_threads][micro_batch] */
	float **trows;                /* [n_threads][micro_batch * classes] */
	int64_t *order;               /* the epoch's image order */
	int64_t order_epoch;
	enum presso_status err;
};

static void epoch_order(struct run *r, int64_t epoch)
{
	const struct trainer_setup *su = r->su;
	struct rng g;
	rng_seed(&g, r->tc->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)));
	for (int64_t i = 0; i < su->n_train; i++)
		r->order[i] = su->train[i];
	for (int64_t i = su->n_train - 1; i > 0; i--) { /* Fisher-Yates */
		int64_t j = (int64_t)rng_below(&g, (uint64_t)(i + 1));
		int64_t x = r->order[i];
		r->order[i] = r->order[j];
		r->order[j] = x;
	}
	r->order_epoch = epoch;
}

/* The teacher's logits of n images into rows (computing those not cached). */
static enum presso_status teacher_rows(struct run *r, int th, const int64_t *idx, int n,
				       float *rows)
{
	const struct trainer_setup *su = r->su;
	struct teacher *te = &r->te[th];
	int64_t missing[1024];
	int n_miss = 0;
	for (int i = 0; i < n; i++)
		if (!r->tdone[idx[i]])
			missing[n_miss++] = idx[i];
	if (n_miss) {
		dataset_get_batch(su->ds, su->norm, missing, n_miss, su->nhwc, engine_input(te->e, 0),
				  NULL);
		enum presso_status s = engine_run(te->e, n_miss);
		if (s != PRESSO_OK)
			return s;
		for (int i = 0; i < n_miss; i++) {
			memcpy(r->tcache + missing[i] * r->classes, te->dst + (int64_t)i * r->classes,
			       sizeof(float) * (size_t)r->classes);
			r->tdone[missing[i]] = 1;
		}
	}
	for (int i = 0; i < n; i++)
		memcpy(rows + (int64_t)i * r->classes, r->tcache + idx[i] * r->classes,
		       sizeof(float) * (size_t)r->classes);
	return PRESSO_OK;
}

/* One part of a step on thread th: forward, loss, backward into its gradient. */
static enum presso_status run_part(struct run *r, int th, int part, const int64_t *idx, int n,
				   int batch)
{
	const struct trainer_setup *su = r->su;
	struct tnet_ws *w = r->ws[th];
	dataset_get_batch(su->ds, su->norm, idx, n, su->nhwc, tnet_ws_input(w, 0), r->labels[th]);
	const float *trow = NULL;
	if (r->te) {
		enum presso_status s = teacher_rows(r, th, idx, n, r->trows[th]);
		if (s != PRESSO_OK)
			return s;
		trow = r->trows[th];
	}
	enum presso_status s = tnet_forward(r->t, w, n);
	if (s != PRESSO_OK)
		return s;
	s = train_loss(n, r->classes, tnet_ws_logits(w), r->labels[th], trow, r->tc->kd_weight,
		       r->tc->temperature, 1.0f / (float)batch, tnet_ws_logits_grad(w),
		       &r->part_correct[part], &r->part_loss[part]);
	if (s != PRESSO_OK)
		return s;
	memset(r->part_grad[part], 0, sizeof(float) * (size_t)tnet_n_floats(r->t));
	tnet_backward(r->t, w, r->part_grad[part]);
	if (tnet_n_bn_channels(r->t))
		tnet_bn_stats(r->t, w, r->part_bn + (int64_t)part * 2 * tnet_n_bn_channels(r->t),
			      r->part_bn + ((int64_t)part * 2 + 1) * tnet_n_bn_channels(r->t));
	return PRESSO_OK;
}

/* Activation ranges of the current weights, as the INT8 build gives them. */
static enum presso_status refresh_ranges(struct run *r, bool first)
{
	const struct trainer_setup *su = r->su;
	if (!su->pol)
		return PRESSO_OK;
	struct calib *cal = NULL;
	struct qmodel *m = NULL;
	struct graph *own = NULL;
	const struct graph *gq = su->g;
	struct quant_config qc = *su->qc;
	qc.hess = NULL;
	qc.cache = NULL;
	enum presso_status s = PRESSO_OK;
	if (su->fold && (s = su->fold(su->fold_ctx, su->g, &own)) == PRESSO_OK)
		gq = own;
	if (s == PRESSO_OK)
		s = calib_run(gq, su->ds, su->norm, su->calib, CALIB_BATCH, &cal);
	if (s == PRESSO_OK)
		s = qmodel_build(gq, su->pol, cal, &qc, &m);
	if (s != PRESSO_OK) {
		calib_free(cal);
		graph_free(own);
		return status_wrap(s, "measuring activation ranges for training");
	}
	const struct graph *g = su->g;
	int logits = tnet_logits_value(r->t);
	for (int vq = 0; vq < gq->n_values; vq++) {
		struct qparams qp;
		if (value_is_const(&gq->values[vq]) || qmodel_value_group(m, vq) != vq ||
		    qmodel_value_is_folded(m, vq) || !qmodel_value_qparams(m, vq, &qp))
			continue;
		int v = own ? graph_find_value(g, gq->values[vq].name) : vq;
		if (v < 0 || value_is_const(&g->values[v]) || v == logits)
			continue;
		/* the quantized set is fixed by the first measurement */
		if (first || tnet_act_quantized(r->t, v))
			tnet_set_act_quant(r->t, v, &qp);
	}
	qmodel_free(m);
	calib_free(cal);
	graph_free(own);
	return PRESSO_OK;
}

static void run_free(struct run *r)
{
	for (int i = 0; r->ws && i < r->n_threads; i++)
		tnet_ws_free(r->ws[i]);
	free(r->ws);
	for (int i = 0; r->te && i < r->n_threads; i++) {
		engine_free(r->te[i].e);
		free(r->te[i].dst);
	}
	free(r->te);
	for (int i = 0; r->part_grad && i < r->n_parts; i++)
		free(r->part_grad[i]);
	free(r->part_grad);
	for (int i = 0; r->labels && i < r->n_threads; i++)
		free(r->labels[i]);
	free(r->labels);
	for (int i = 0; r->trows && i < r->n_threads; i++)
		free(r->trows[i]);
	free(r->trows);
	free(r->grad);
	free(r->part_bn);
	free(r->part_loss);
	free(r->part_correct);
	free(r->tcache);
	free(r->tdone);
	free(r->order);
	optim_free(r->o);
	tnet_free(r->t);
}

static enum presso_status nomem(void)
{
	return status_fail(PRESSO_E_NOMEM, "out of memory setting up the fine-tune");
}

static enum presso_status setup_run(struct run *r, const struct trainer_setup *su)
{
	const struct train_config *tc = su->tc;
	enum presso_status s;
	r->su = su;
	r->tc = tc;
	r->order_epoch = -1;
	s = tnet_create(su->g, tc->batchnorm == TRAIN_BN_BATCH ? TNET_BN_BATCH : TNET_BN_FROZEN,
			&r->t);
	if (s != PRESSO_OK)
		return s;
	r->classes = tnet_n_classes(r->t);
	if (su->pol) {
		struct layer *layers;
		int n_layers;
		if ((s = graph_layers(su->g, &layers, &n_layers)) != PRESSO_OK)
			return s;
		if (n_layers != su->pol->n_layers) {
			free(layers);
			return status_fail(PRESSO_E_CONFIG,
					   "the policy has %d layers but the model %d", su->pol->n_layers,
					   n_layers);
		}
		for (int l = 0; l < n_layers && s == PRESSO_OK; l++) {
			const struct layer_policy *lp = &su->pol->layers[l];
			s = tnet_set_weight_bits(r->t, l, lp->bits);
			bool pruned = su->pruned ? su->pruned[l]
						 : lp->prune > 0 && lp->prune_kind == PRUNE_UNSTRUCTURED;
			if (s == PRESSO_OK && pruned)
				tnet_fix_zeros(r->t, l);
		}
		free(layers);
		if (s != PRESSO_OK)
			return s;
		tnet_apply_masks(r->t);
		tnet_quantize_weights(r->t);
		/* the quantized set must be known before the workspaces exist */
		if ((s = refresh_ranges(r, true)) != PRESSO_OK)
			return s;
	}
	r->n_threads = tc->threads > 0 ? tc->threads : omp_get_max_threads();
	r->n_parts = (tc->batch + tc->micro_batch - 1) / tc->micro_batch;
	if (r->n_threads > r->n_parts)
		r->n_threads = r->n_parts;
	int64_t nf = tnet_n_floats(r->t), nb = tnet_n_bn_channels(r->t);
	r->ws = calloc((size_t)r->n_threads, sizeof *r->ws);
	r->labels = calloc((size_t)r->n_threads, sizeof *r->labels);
	r->trows = calloc((size_t)r->n_threads, sizeof *r->trows);
	r->part_grad = calloc((size_t)r->n_parts, sizeof *r->part_grad);
	r->grad = malloc(sizeof(float) * (size_t)(nf ? nf : 1));
	r->part_bn = malloc(sizeof(float) * (size_t)(2 * nb * r->n_parts + 1));
	r->part_loss = calloc((size_t)r->n_parts, sizeof *r->part_loss);
	r->part_correct = calloc((size_t)r->n_parts, sizeof *r->part_correct);
	r->order = malloc(sizeof(int64_t) * (size_t)(su->n_train ? su->n_train : 1));
	if (!r->ws || !r->labels || !r->trows || !r->part_grad || !r->grad || !r->part_bn ||
	    !r->part_loss || !r->part_correct || !r->order)
		return nomem();
	for (int i = 0; i < r->n_parts; i++)
		if (!(r->part_grad[i] = malloc(sizeof(float) * (size_t)(nf ? nf : 1))))
			return nomem();
	for (int i = 0; i < r->n_threads; i++) {
		if ((s = tnet_ws_create(r->t, tc->micro_batch, &r->ws[i])) != PRESSO_OK)
			return s;
		r->labels[i] = malloc(sizeof(int32_t) * (size_t)tc->micro_batch);
		r->trows[i] = malloc(sizeof(float) * (size_t)tc->micro_batch * (size_t)r->classes);
		if (!r->labels[i] || !r->trows[i])
			return nomem();
	}
	if (su->teacher && tc->kd_weight > 0.0) {
		int tl = train_logits_value(su->teacher);
		int64_t tcl = shape_numel(&su->teacher->values[tl].shape);
		if (tcl != r->classes)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "the teacher gives %lld scores per image, the model %d",
					   (long long)tcl, r->classes);
		r->te = calloc((size_t)r->n_threads, sizeof *r->te);
		r->tcache = malloc(sizeof(float) * (size_t)su->ds->n * (size_t)r->classes);
		r->tdone = calloc((size_t)su->ds->n, 1);
		if (!r->te || !r->tcache || !r->tdone)
			return nomem();
		for (int i = 0; i < r->n_threads; i++) {
			struct teacher *te = &r->te[i];
			te->logits = tl;
			te->dst = malloc(sizeof(float) * (size_t)tc->micro_batch * (size_t)r->classes);
			if (!te->dst)
				return nomem();
			/* unfused, so the observer sees the logits even when a final
			 * activation would be fused into their layer */
			if ((s = engine_create_unfused(su->teacher, tc->micro_batch, &te->e)) != PRESSO_OK)
				return s;
			engine_set_observer(te->e, teacher_observe, te);
		}
	}
	return optim_create(tc, r->t, &r->o);
}

/* Batch statistics of the whole batch from its parts' (each of n_p images):
 * the mean of the means, and the variance by the parallel-axis rule. */
static void merge_bn(struct run *r, int batch, float *mean, float *var)
{
	int64_t nb = tnet_n_bn_channels(r->t);
	int micro = r->tc->micro_batch;
	for (int64_t c = 0; c < nb; c++) {
		double m = 0.0, v = 0.0;
		for (int p = 0; p < r->n_parts; p++) {
			int np = p == r->n_parts - 1 ? batch - micro * p : micro;
			m += np * (double)r->part_bn[(int64_t)p * 2 * nb + c];
		}
		m /= batch;
		for (int p = 0; p < r->n_parts; p++) {
			int np = p == r->n_parts - 1 ? batch - micro * p : micro;
			double pm = r->part_bn[(int64_t)p * 2 * nb + c];
			double pv = r->part_bn[((int64_t)p * 2 + 1) * nb + c];
			v += np * (pv + (pm - m) * (pm - m));
		}
		mean[c] = (float)m;
		var[c] = (float)(v / batch);
	}
}

static enum presso_status step_once(struct run *r, const int64_t *idx, int batch, double lr,
				    double *loss, int *correct)
{
	const struct train_config *tc = r->tc;
	int micro = tc->micro_batch;
	r->err = PRESSO_OK;
#pragma omp parallel num_threads(r->n_threads)
	{
		int th = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
		for (int p = 0; p < r->n_parts; p++) {
			int n = p == r->n_parts - 1 ? batch - micro * p : micro;
			enum presso_status s = run_part(r, th, p, idx + (int64_t)p * micro, n, batch);
			if (s != PRESSO_OK) {
#pragma omp critical(presso_train_error)
				if (r->err == PRESSO_OK)
					r->err = s;
			}
		}
		/* reduce in part order; each thread a range of elements */
		int64_t nf = tnet_n_floats(r->t);
#pragma omp for schedule(static)
		for (int64_t i0 = 0; i0 < nf; i0 += 4096) {
			int64_t i1 = i0 + 4096 < nf ? i0 + 4096 : nf;
			for (int64_t i = i0; i < i1; i++)
				r->grad[i] = r->part_grad[0][i];
			for (int p = 1; p < r->n_parts; p++)
				for (int64_t i = i0; i < i1; i++)
					r->grad[i] += r->part_grad[p][i];
		}
	}
	if (r->err != PRESSO_OK)
		return r->err;
	double l = 0.0;
	int c = 0;
	for (int p = 0; p < r->n_parts; p++) {
		l += r->part_loss[p];
		c += r->part_correct[p];
	}
	l /= batch;
	if (r->su->pol && tc->lambda > 0.0)
		l += tnet_quant_penalty(r->t, tc->lambda, r->grad);
	tnet_apply_ste(r->t, r->grad);
	optim_step(r->o, tc, r->t, r->grad, lr);
	tnet_apply_masks(r->t);
	if (tnet_n_bn_channels(r->t) && tc->batchnorm == TRAIN_BN_BATCH) {
		int64_t nb = tnet_n_bn_channels(r->t);
		float *mean = malloc(sizeof(float) * (size_t)nb * 2);
		if (!mean)
			return nomem();
		merge_bn(r, batch, mean, mean + nb);
		tnet_bn_update(r->t, mean, mean + nb, batch, 0.1f);
		free(mean);
	}
	if (r->su->pol)
		tnet_quantize_weights(r->t);
	*loss = l;
	*correct = c;
	return PRESSO_OK;
}

enum presso_status trainer_run(const struct trainer_setup *su, struct trainer_report *out)
{
	const struct train_config *tc = su->tc;
	struct trainer_report rep = {0};
	struct run r = {0};
	enum presso_status s;
	if (su->n_train < tc->batch) {
		s = status_fail(PRESSO_E_CONFIG,
				"finetune.batch: %d is more than the %lld training images", tc->batch,
				(long long)su->n_train);
		goto done;
	}
	if (tc->micro_batch > 1024) { /* teacher_rows() keeps the missing indices on the stack */
		s = status_fail(PRESSO_E_CONFIG, "finetune.micro_batch: expected at most 1024, got %d",
				tc->micro_batch);
		goto done;
	}
	if ((s = setup_run(&r, su)) != PRESSO_OK)
		goto done;
	int64_t spe = su->n_train / tc->batch;
	int64_t total = su->steps > 0 ? su->steps : (int64_t)tc->epochs * spe;
	if (su->steps <= 0 && tc->max_steps > 0 && tc->max_steps < total)
		total = tc->max_steps;
	rep.total_steps = total;
	int64_t step = 0;
	if (su->checkpoint) {
		bool found = false;
		if ((s = checkpoint_load(su->checkpoint, su->fingerprint, r.t, r.o, &step, &found)) !=
		    PRESSO_OK)
			goto done;
		if (found) {
			if (step > total) {
				s = status_fail(PRESSO_E_FORMAT,
						"%s: the checkpoint is at step %lld, past this run's %lld steps",
						su->checkpoint, (long long)step, (long long)total);
				goto done;
			}
			rep.resumed_at = step;
			if (su->pol)
				tnet_quantize_weights(r.t);
			if (su->log)
				fprintf(su->log, "presso: resuming the fine-tune from %s at step %lld of %lld\n",
					su->checkpoint, (long long)step, (long long)total);
		}
	}
	if (su->log)
		fprintf(su->log,
			"presso: fine-tuning %lld steps (%lld per epoch) of %d images in parts of %d on %d threads, %s lr %.3g %s%s\n",
			(long long)total, (long long)spe, tc->batch, tc->micro_batch, r.n_threads,
			train_optimizer_name(tc->optimizer), tc->lr, train_schedule_name(tc->schedule),
			r.te ? ", distilled from the FP32 model" : "");
	double t0 = now_s(), loss_sum = 0.0;
	int64_t seen = 0, correct_sum = 0, steps_now = 0;
	while (step < total) {
		if ((su->stop && atomic_load(su->stop)) ||
		    (su->deadline_s > 0 && now_s() >= su->deadline_s)) {
			rep.interrupted = true;
			break;
		}
		int64_t epoch = step / spe, pos = step % spe;
		if (epoch != r.order_epoch)
			epoch_order(&r, epoch);
		/* ranges at every epoch's start and every calib_every steps; those of
		 * step 0 were measured by setup_run(), and a checkpoint holds the
		 * ranges of before its step's own refresh */
		bool refresh = step > 0 && (pos == 0 || (tc->calib_every > 0 &&
							  step % tc->calib_every == 0));
		if (su->pol && refresh && (s = refresh_ranges(&r, false)) != PRESSO_OK)
			goto done;
		if (pos == 0) {
			loss_sum = 0.0;
			seen = correct_sum = 0;
		}
		double lr = optim_lr(tc, step, total, spe), loss = 0.0;
		int correct = 0;
		s = step_once(&r, r.order + pos * tc->batch, tc->batch, lr, &loss, &correct);
		if (s != PRESSO_OK)
			goto done;
		if (!isfinite(loss)) {
			s = status_fail(PRESSO_E_RUNTIME,
					"the fine-tune diverged at step %lld (loss %g); lower finetune.lr (%.3g)",
					(long long)step, loss, tc->lr);
			goto done;
		}
		step++;
		steps_now++;
		rep.last_loss = loss;
		loss_sum += loss * tc->batch;
		seen += tc->batch;
		correct_sum += correct;
		bool epoch_end = step % spe == 0 || step == total;
		if (su->log && (step % tc->log_every == 0 || step == total)) {
			double el = now_s() - t0;
			fprintf(su->log,
				"presso: step %lld/%lld epoch %lld loss %.4f train acc %.2f%% lr %.3g %.0f img/s\n",
				(long long)step, (long long)total, (long long)(epoch + 1),
				loss_sum / (double)seen, 100.0 * (double)correct_sum / (double)seen, lr,
				el > 0 ? (double)(steps_now * tc->batch) / el : 0.0);
			fflush(su->log);
		}
		if (su->checkpoint && (step % tc->checkpoint_every == 0 || epoch_end)) {
			if ((s = checkpoint_save(su->checkpoint, su->fingerprint, r.t, r.o, step)) !=
			    PRESSO_OK)
				goto done;
		}
		if (epoch_end && su->on_epoch)
			su->on_epoch(su->on_epoch_ctx, epoch + 1, su->g);
		rep.train_accuracy = seen ? 100.0 * (double)correct_sum / (double)seen : 0.0;
	}
	if (rep.interrupted && su->checkpoint &&
	    (s = checkpoint_save(su->checkpoint, su->fingerprint, r.t, r.o, step)) != PRESSO_OK)
		goto done;
	rep.steps = step;
	rep.seconds = now_s() - t0;
	rep.images_per_s = rep.seconds > 0 ? (double)(steps_now * tc->batch) / rep.seconds : 0.0;
	s = PRESSO_OK;
done:
	run_free(&r);
	if (out)
		*out = rep;
	return s;
}
