/* trial.h - a study's evaluation context and the evaluation of one policy.
 *
 * study_ctx_open() loads everything a study evaluates against once: the FP32
 * graph and its layers, the training set (calibration and validation splits)
 * and the test set, the FP32 calibration statistics, and the FP32 baseline
 * (validation and test accuracy, size, BOPs, batch-1 latency). trial_evaluate()
 * turns one policy into metrics: build the quantized model, run it on the
 * validation split (or the test split), count size and BOPs, optionally measure
 * batch-1 latency. The context is read-only after opening, so trials may be
 * evaluated concurrently from several threads (each call uses one thread).
 */
#ifndef PRESSO_TRIAL_H
#define PRESSO_TRIAL_H

#include <stdbool.h>
#include <stdio.h>

#include "quant/calib.h"
#include "config/config.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "transform/repair.h"
#include "transform/transform.h"

struct trial_metrics_out {
	double accuracy;       /* percent on the split evaluated */
	int64_t n_correct, n_images;
	int64_t size_bytes;
	double bops;
	double latency_us;     /* NAN when not measured */
	double mean_bits;      /* parameter-weighted mean weight bits */
	double mean_prune;     /* parameter-weighted mean prune ratio */
	double mean_rank;      /* parameter-weighted mean rank fraction */
};

/* What turning policies into quantized models needs, besides the policy: the
 * FP32 graph, the calibration images and their statistics, and the original
 * layers' output statistics for repair. */
struct quant_pipeline {
	const struct config *cfg;
	const struct graph *g;
	const struct dataset *train;
	const struct split *calib;
	struct calib *cal;                 /* the FP32 graph's calibration */
	struct quant_config qc;
	struct split repair_split;         /* the first quant.repair_images of calib:
					      a transformed graph is repaired and
					      calibrated on these in one pass */
	struct layer_stats *repair_target; /* NULL when quant.repair is off */
	struct hessians *hess;             /* the layers' input moments on
					      repair_split (NULL when quant.rounding
					      is "nearest"); a transformed graph's
					      layers use their original's when their
					      shape is unchanged (hessians_of()) */
};

/* The quantization settings cfg asks for (calibration method, requantization
 * form), packed for the fastest kernels this CPU runs (q8_isa_best(), or the
 * PRESSO_ISA override): the one place above src/ that picks the kernels, so
 * the search's latency table measures what its trials run. No hessians, no
 * weight cache. */
struct quant_config trial_quant_config(const struct config *cfg);

/* Calibrates g on the calib split and measures the repair targets (progress on
 * stderr when verbose). Everything passed must outlive the pipeline. */
enum presso_status quant_pipeline_init(struct quant_pipeline *qp, const struct config *cfg,
				       const struct graph *g, const struct dataset *train,
				       const struct split *calib, bool verbose);

void quant_pipeline_free(struct quant_pipeline *qp);

struct study_ctx {
	const struct config *cfg;
	struct graph *g;
	struct layer *layers;
	int n_layers;
	struct dataset *train, *test;
	struct split calib, valid, test_split;
	struct quant_pipeline pipe;
	const struct calib *cal;     /* = pipe.cal */
	struct quant_config qc;      /* = pipe.qc */
	/* FP32 baseline */
	double fp32_valid_accuracy, fp32_test_accuracy;
	struct qmodel_size fp32_size;
	double fp32_latency_us;
	int n_classes;
};

/* Loads the training set (test = false) or the test set of a config, in its
 * format, and checks its normalisation (errors about it name the config file).
 * g is the model the images are for (may be NULL): an image folder takes the
 * crop and the channels the config leaves out from its input. The caller frees
 * *ds; it is NULL on failure. */
enum presso_status trial_load_dataset(const struct config *cfg, bool test, const struct graph *g,
				      struct dataset **ds);

/* Loads the model and data of cfg, calibrates, and measures the FP32 baseline
 * (progress lines on stderr when `verbose`). The config must outlive the
 * context. The caller frees *out with study_ctx_free(). */
enum presso_status study_ctx_open(const struct config *cfg, bool verbose, struct study_ctx **out);

/* The same without the FP32 baseline (its accuracies and latency are 0; the
 * FP32 size is counted): all trial_evaluate() needs, for a worker rank. */
enum presso_status study_ctx_open_for_trials(const struct config *cfg, struct study_ctx **out);

void study_ctx_free(struct study_ctx *ctx);

/* A policy applied to a model: prune -> low-rank -> statistics repair (the
 * transformed FP32 graph), calibration of that graph, then quantization. */
struct built_model {
	const struct graph *g;      /* the graph qm runs: ctx->g when the policy
				       changes no weights, else own_g */
	struct graph *own_g;
	const struct calib *cal;    /* ctx->cal, or own_cal for a transformed graph */
	struct calib *own_cal;
	struct policy *pol;         /* the policy over g's layers */
	struct qmodel *qm;
	struct transform_result tr; /* tr.g is own_g when transformed */
	struct repair_report repair;
};

/* Builds a policy's model. Uses the calling thread only; many threads may
 * build from one pipeline. Free with built_model_free(). */
enum presso_status quant_pipeline_build(const struct quant_pipeline *qp, const struct policy *p,
					struct built_model *out);

/* The same for a study's model. */
enum presso_status trial_build(const struct study_ctx *ctx, const struct policy *p,
			       struct built_model *out);

void built_model_free(struct built_model *b);

/* Prints what each step did (params, MACs, BOPs and size_bytes after pruning,
 * low-rank and quantization; repair; notes) as text lines, nothing when the
 * policy had no pruning or low-rank. */
void built_model_report(const struct built_model *b, FILE *f);

/* Evaluates a policy: accuracy on the validation split (or the test split when
 * on_test), size, BOPs and, when measure_latency, batch-1 latency (median of
 * latency_runs runs). Uses the calling thread only. */
enum presso_status trial_evaluate(const struct study_ctx *ctx, const struct policy *p,
				  bool on_test, bool measure_latency, int latency_runs,
				  struct trial_metrics_out *out);

/* The same on part of the validation split: its images [first, first + n)
 * (n 0: from first to the end), which the multi-fidelity search scores in two
 * passes. Split order is draw order, so a prefix is a uniform sample, and the
 * correct counts of two parts add up to the whole split's exactly (an image's
 * prediction does not depend on the others of its batch). No latency. */
enum presso_status trial_evaluate_part(const struct study_ctx *ctx, const struct policy *p,
				       int64_t first, int64_t n, struct trial_metrics_out *out);

/* n more training images for validation: those the seeded split draw gives
 * right after the validation split (the same draw with n more validation
 * images keeps calibration and validation as they are), so they are disjoint
 * from both. Into *out (free with split_free). PRESSO_E_CONFIG, naming the
 * sizes, when the training set has fewer images left. */
enum presso_status trial_more_validation(const struct study_ctx *ctx, int64_t n,
					 struct split *out);

/* trial_evaluate on the training-set images of split sp (e.g. from
 * trial_more_validation), without latency. */
enum presso_status trial_evaluate_split(const struct study_ctx *ctx, const struct policy *p,
					const struct split *sp, struct trial_metrics_out *out);

#endif
