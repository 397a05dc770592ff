/* trainer.h - a fine-tune: the loop that drives a tnet over a dataset,
 * quantization-aware when given a policy, distilled from a teacher when given
 * one, checkpointed so that it survives kill -9.
 *
 * Each step takes the next `batch` images of the epoch's order (a seeded
 * shuffle of the training images, a pure function of (seed, epoch); the last
 * incomplete batch of an epoch is dropped), splits them into parts of
 * micro_batch images, runs the parts on the OpenMP threads (one workspace
 * each), sums the parts' gradients in part order, adds the quantization
 * penalty, applies the straight-through estimator and the fixed zeros, and
 * updates the weights. So the weights after a step depend on the seed, the
 * config and the data, never on the thread count or on where a run was
 * interrupted and resumed. (BatchNorm in "batch" mode normalises each part by
 * its own statistics: ghost batches of micro_batch images.)
 *
 * Quantization-aware training (pol != NULL): every layer reads its weights
 * fake-quantized at the policy's bits (tnet.h); every activation the INT8
 * engine holds as uint8 is fake-quantized with the scale and zero point the
 * engine would give it: the trainer builds the quantized model of the current
 * weights (calibration on the calibration split with the config's method,
 * then qmodel_build) and reads each quantization group's parameters back
 * (qmodel_value_qparams; not a MatMul product the engine folds into the GEMM
 * with its bias Add, qmodel_value_is_folded, which it never rounds). That
 * happens before the first step, at every epoch's
 * start and every calib_every steps; the checkpoint keeps the ranges in use.
 */
#ifndef PRESSO_TRAIN_TRAINER_H
#define PRESSO_TRAIN_TRAINER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/sha256.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "train/train_config.h"

struct trainer_setup {
	struct graph *g;               /* the student: trained in place */
	const struct policy *pol;      /* its quantization (over g's layers), NULL: FP32 */
	/* [pol->n_layers] the layers whose zeros stay zero (pruned unstructured by
	 * the transform that made g, whose policy then says prune 0); NULL: the
	 * layers pol prunes unstructured */
	const bool *pruned;
	const struct graph *teacher;   /* distillation source, NULL: labels only */
	const struct train_config *tc;
	const struct dataset *ds;
	const struct normalize *norm;
	bool nhwc;                     /* the models' input layout (feed.h) */
	const int64_t *train;          /* indices of the training images */
	int64_t n_train;
	const struct split *calib;     /* activation ranges (QAT) */
	const struct quant_config *qc; /* calibration method for them (QAT) */
	int64_t steps;                 /* steps in all; 0: from tc (epochs, max_steps) */
	const char *checkpoint;        /* NULL: no checkpoints */
	uint8_t fingerprint[SHA256_DIGEST_BYTES]; /* of the run (checkpoint.h) */
	FILE *log;                     /* progress lines, NULL: quiet */
	atomic_int *stop;             /* when it becomes non-zero: checkpoint and stop */
	double deadline_s;            /* CLOCK_MONOTONIC seconds: past it, checkpoint and
					 stop (checked before each step); 0: none */
	/* when set, activation ranges are measured on the graph it returns (the
	 * deployed form of g, BatchNorm folded: fold.h), whose values map to g's
	 * by name; the trainer frees it */
	enum presso_status (*fold)(void *ctx, const struct graph *g, struct graph **out);
	void *fold_ctx;
	/* called after each epoch (and after the last step), weights current;
	 * may evaluate them, must not change them */
	void (*on_epoch)(void *ctx, int64_t epoch, const struct graph *g);
	void *on_epoch_ctx;
};

struct trainer_report {
	int64_t steps;           /* steps done in all */
	int64_t resumed_at;      /* step the checkpoint resumed from (0: a fresh start) */
	int64_t total_steps;
	bool interrupted;        /* stopped by *stop or the deadline before the end */
	double last_loss;        /* mean loss of the last step */
	double train_accuracy;   /* percent of the images of the last epoch's steps */
	double seconds;          /* wall time of the steps run now */
	double images_per_s;
};

/* Runs (or resumes) the fine-tune. On success the graph holds the tuned weights;
 * *out (may be NULL) says what happened. */
enum presso_status trainer_run(const struct trainer_setup *su, struct trainer_report *out);

/* The value holding a graph's logits: graph output 0, or the input of the
 * Softmax/LogSoftmax producing it (what tnet trains on). */
int train_logits_value(const struct graph *g);

#endif
