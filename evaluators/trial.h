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

#include "calib.h"
#include "config.h"
#include "dataset.h"
#include "graph.h"
#include "policy.h"
#include "qengine.h"

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

struct study_ctx {
	const struct config *cfg;
	struct graph *g;
	struct layer *layers;
	int n_layers;
	struct dataset *train, *test;
	struct split calib, valid, test_split;
	struct calib *cal;
	struct quant_config qc;
	/* FP32 baseline */
	double fp32_valid_accuracy, fp32_test_accuracy;
	struct qmodel_size fp32_size;
	double fp32_latency_us;
	int n_classes;
};

/* Loads the training set (test = false) or the test set of a config, in its
 * format, and checks its normalisation. The caller frees *ds. */
enum presso_status trial_load_dataset(const struct config *cfg, bool test, struct dataset **ds);

/* Loads the model and data of cfg, calibrates, and measures the FP32 baseline
 * (progress lines on stderr when `verbose`). The config must outlive the
 * context. The caller frees *out with study_ctx_free(). */
enum presso_status study_ctx_open(const struct config *cfg, bool verbose, struct study_ctx **out);

void study_ctx_free(struct study_ctx *ctx);

/* A policy applied to the study's model: prune -> low-rank -> statistics repair
 * (the transformed FP32 graph), calibration of that graph, then quantization. */
struct built_model {
	const struct graph *g;      /* the graph qm runs: ctx->g when the policy
				       changes no weights, else own_g */
	struct graph *own_g;
	const struct calib *cal;    /* ctx->cal, or own_cal for a transformed graph */
	struct calib *own_cal;
	struct policy *pol;         /* the policy over g's layers */
	struct qmodel *qm;
};

/* Builds a policy's model. Uses the calling thread only. Free with
 * built_model_free(). */
enum presso_status trial_build(const struct study_ctx *ctx, const struct policy *p,
			       struct built_model *out);

void built_model_free(struct built_model *b);

/* Evaluates a policy: accuracy on the validation split (or the test split when
 * on_test), size, BOPs and, when measure_latency, batch-1 latency (median of
 * latency_runs runs). Uses the calling thread only. */
enum presso_status trial_evaluate(const struct study_ctx *ctx, const struct policy *p,
				  bool on_test, bool measure_latency, int latency_runs,
				  struct trial_metrics_out *out);

#endif
