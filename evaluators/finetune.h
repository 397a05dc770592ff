/* finetune.h - a policy fine-tuned: quantization-aware training with
 * distillation (train/trainer.h), then the quantized model built again from
 * the tuned weights.
 *
 * Steps, in order:
 *   1. the policy's PTQ model as a trial builds it (trial_build): prune ->
 *      low-rank -> statistics repair; its FP32 graph (a copy) is the student,
 *      the study's FP32 model the teacher. A model whose BatchNorms the
 *      importer folded trains them unfolded instead (the model loaded with
 *      keep_batchnorm; activation ranges measured on its folded form) when
 *      the policy keeps the structure (no pruning, no low-rank), and is
 *      folded back after (train/fold.h);
 *   2. the student trains on every training image outside the validation
 *      split (calibration images included: they came from the training set
 *      and stay out of every score) with the layers' weights fake-quantized
 *      at the policy's bits and the activations as the INT8 engine holds them
 *      (trainer.h);
 *   3. the tuned graph is calibrated on the calibration split and quantized by
 *      qmodel_build with the policy, rounding to nearest (the grid and scales
 *      the training used: GPTQ would move weights the training placed) and
 *      without bias correction (the training already saw the quantization).
 * The result is an ordinary quantized model: evaluate, .presso, QDQ ONNX.
 */
#ifndef PRESSO_FINETUNE_H
#define PRESSO_FINETUNE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "evaluators/trial.h"
#include "train/train_config.h"
#include "train/trainer.h"

struct finetune_opts {
	const struct train_config *tc;
	int64_t steps;               /* 0: tc's epochs (and max_steps) */
	const char *checkpoint;      /* NULL: no checkpoints */
	bool restart;                /* ignore (overwrite) an existing checkpoint */
	FILE *log;                   /* progress, NULL: quiet */
	atomic_int *stop;           /* checkpoint and stop when non-zero */
	double deadline_s;          /* CLOCK_MONOTONIC seconds: checkpoint and stop past it;
				       0: none (trainer_setup.deadline_s) */
	bool eval_epochs;            /* log the validation accuracy after each epoch */
};

struct finetune_result {
	struct graph *g;             /* the tuned FP32 graph */
	struct policy *pol;          /* the policy over g's layers the model was built with */
	struct calib *cal;
	struct qmodel *qm;           /* the tuned quantized model */
	struct trainer_report train;
};

/* Fine-tunes policy p of a study. On success the caller frees *out with
 * finetune_result_free(); when the run was interrupted (out->train.interrupted)
 * there is no model (out->qm == NULL) and the checkpoint holds the progress. */
enum presso_status finetune_run(const struct study_ctx *ctx, const struct policy *p,
				const struct finetune_opts *o, struct finetune_result *out);

void finetune_result_free(struct finetune_result *r);

/* The metrics of a tuned model (fr from finetune_run with policy p, p over the
 * study's layers), counted as trial_evaluate counts a PTQ model's: accuracy on
 * the validation split (the test split when on_test), size, BOPs, mean weight
 * bits, prune and rank; latency NAN (the tuned model has the PTQ model's
 * structure, so its latency is the PTQ trial's). Uses cfg->eval.threads. */
enum presso_status finetune_evaluate(const struct study_ctx *ctx, const struct policy *p,
				     const struct finetune_result *fr, bool on_test,
				     struct trial_metrics_out *out);

/* finetune_evaluate on the training-set images of split sp (e.g. from
 * trial_more_validation: search.rescore_images). */
enum presso_status finetune_evaluate_split(const struct study_ctx *ctx, const struct policy *p,
					   const struct finetune_result *fr, const struct split *sp,
					   struct trial_metrics_out *out);

/* The fingerprint a fine-tune's checkpoint is keyed on: the model file, the
 * data settings, the policy, the training settings and the step count. */
enum presso_status finetune_fingerprint(const struct study_ctx *ctx, const struct policy *p,
					const struct train_config *tc, int64_t steps,
					uint8_t out[SHA256_DIGEST_BYTES]);

#endif
