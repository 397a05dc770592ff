/* latency_lut.h - a per-layer latency look-up table measured on presso's own
 * INT8 engine (HAQ-style: Wang et al. 2019), and whole-model latency of one
 * policy.
 *
 * For each (weight bits, activation bits) setting a search can give some
 * layer, the model is quantized with that setting everywhere and run at batch
 * 1 on one thread with a clock around every step (qengine_run_profiled); each
 * layer's entry is the median over the runs of its step's time. The steps
 * that are no layer (input quantization, pools, Add, reshapes, fallbacks)
 * make up `overhead_us`, taken from the W8A8 setting (or the first one
 * measured). A policy's estimate is overhead_us + the sum of its layers'
 * entries.
 *
 * Structured pruning and low-rank change a layer's shape, and its consumers'
 * (the next layer reads fewer channels), so they are measured as deltas: for
 * each (layer, structured prune ratio) and (layer, rank) the space allows, the
 * model with that one layer transformed (and the rest as is) is built at W8A8
 * and run whole, and the entry is its time minus the W8A8 model's. A policy's
 * estimate adds the deltas of its transformed layers (first order: two
 * neighbours both pruned are counted as the sum of each alone). Unstructured
 * pruning does not change the dense kernels' time and has no entry.
 *
 * The table is JSON so it can be stored with a study:
 *   {"version": 2, "runs": 25, "isa": "avx2", "measured_on": "node1 (AMD EPYC)",
 *    "overhead_us": 12.5,
 *    "layers": ["/conv1/Conv", ...],
 *    "entries": [[layer, bits, act_bits, us], ...],
 *    "deltas": [[layer, knob (0 structured prune, 1 rank), value, us], ...]}
 * (version 1, without deltas, and tables without measured_on still read).
 * An MPI search measures its table on rank 0's machine, once per study;
 * measured_on says which.
 */
#ifndef PRESSO_LATENCY_LUT_H
#define PRESSO_LATENCY_LUT_H

#include <stdbool.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "base/status.h"

#define LUT_MAX_BITS 8
#define LUT_MIN_ACT_BITS 4
#define LUT_N_ACT (LUT_MAX_BITS - LUT_MIN_ACT_BITS + 1)

enum lut_knob { LUT_PRUNE_STRUCTURED, LUT_RANK, LUT_KNOB_COUNT };

#define LUT_MAX_VALUES 16

struct lut_delta {
	int layer;
	enum lut_knob knob;
	double value;   /* the prune ratio, or the policy's rank value */
	double us;      /* whole-model time with it, minus without (usually < 0) */
};

struct latency_lut {
	int n_layers;
	int runs;
	double overhead_us;
	char isa[32];
	char measured_on[192]; /* "host (CPU model)": the machine it was timed on ("" if unknown) */
	double *us; /* [n_layers][LUT_MAX_BITS][LUT_N_ACT], NAN where not measured */
	int n_deltas;
	struct lut_delta *deltas;
};

/* What to measure: wanted(ctx, layer, bits, act_bits) is true for the
 * entries the table must hold. */
typedef bool (*latency_lut_wanted_fn)(void *ctx, int layer, int bits, int act_bits);

/* The values of a shape-changing knob a layer may take besides none (prune
 * ratios > 0 with structured pruning allowed; ranks other than 1): writes up to
 * LUT_MAX_VALUES into values and returns how many. */
typedef int (*latency_lut_values_fn)(void *ctx, int layer, enum lut_knob knob, double *values);

/* Measures the table for a graph and its calibration (images from ds,
 * normalised by norm, as the engine sees them) with `runs` timed runs per
 * setting after a warm-up; the deltas too when values is not NULL (a
 * transformed model is calibrated on the first 8 images of ds). A setting the
 * transforms refuse gets no entry. Single-threaded; run it on a quiet machine.
 * The caller frees *out with latency_lut_free(). */
enum presso_status latency_lut_measure(const struct graph *g, const struct calib *cal,
				       const struct quant_config *qc, const struct dataset *ds,
				       const struct normalize *norm, latency_lut_wanted_fn wanted,
				       latency_lut_values_fn values, void *wanted_ctx, int runs,
				       struct latency_lut **out);

void latency_lut_free(struct latency_lut *lut);

/* The entry for a layer at (bits, act_bits), NAN if not measured. */
double latency_lut_entry(const struct latency_lut *lut, int layer, int bits, int act_bits);

/* The delta of one layer's knob value, NAN if not measured. */
double latency_lut_delta(const struct latency_lut *lut, int layer, enum lut_knob knob,
			 double value);

/* The estimate for a policy: NAN if one of its entries or deltas was not
 * measured. */
double latency_lut_estimate(const struct latency_lut *lut, const struct policy *p);

/* JSON text of the table (malloc'd; the caller frees), with the layers' names;
 * NULL when out of memory. */
char *latency_lut_to_json(const struct latency_lut *lut, const struct layer *layers);

/* Reads a table written by latency_lut_to_json for the same layers;
 * PRESSO_E_FORMAT (naming `what`) if it does not fit. */
enum presso_status latency_lut_from_json(const char *text, const char *what,
					 const struct layer *layers, int n_layers,
					 struct latency_lut **out);

/* Batch-1 latency of one policy (median of runs, one thread): build, run. */
enum presso_status latency_measure_policy(const struct graph *g, const struct calib *cal,
					  const struct quant_config *qc, const struct dataset *ds,
					  const struct normalize *norm, const struct policy *p,
					  int runs, double *latency_us);

#endif
