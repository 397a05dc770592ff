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
 * entries. The table is JSON so it can be stored with a study:
 *   {"version": 1, "runs": 25, "isa": "avx2", "overhead_us": 12.5,
 *    "layers": ["/conv1/Conv", ...],
 *    "entries": [[layer, bits, act_bits, us], ...]}
 */
#ifndef PRESSO_LATENCY_LUT_H
#define PRESSO_LATENCY_LUT_H

#include <stdbool.h>

#include "calib.h"
#include "dataset.h"
#include "graph.h"
#include "policy.h"
#include "qengine.h"
#include "status.h"

#define LUT_MAX_BITS 8
#define LUT_MIN_ACT_BITS 4
#define LUT_N_ACT (LUT_MAX_BITS - LUT_MIN_ACT_BITS + 1)

struct latency_lut {
	int n_layers;
	int runs;
	double overhead_us;
	char isa[32];
	double *us; /* [n_layers][LUT_MAX_BITS][LUT_N_ACT], NAN where not measured */
};

/* What to measure: wanted(ctx, layer, bits, act_bits) is true for the
 * entries the table must hold. */
typedef bool (*latency_lut_wanted_fn)(void *ctx, int layer, int bits, int act_bits);

/* Measures the table for a graph and its calibration (images from ds,
 * normalised by norm, as the engine sees them) with `runs` timed runs per
 * setting after a warm-up. Single-threaded; run it on a quiet machine.
 * The caller frees *out with latency_lut_free(). */
enum presso_status latency_lut_measure(const struct graph *g, const struct calib *cal,
				       const struct quant_config *qc, const struct dataset *ds,
				       const struct normalize *norm, latency_lut_wanted_fn wanted,
				       void *wanted_ctx, int runs, struct latency_lut **out);

void latency_lut_free(struct latency_lut *lut);

/* The entry for a layer at (bits, act_bits), NAN if not measured. */
double latency_lut_entry(const struct latency_lut *lut, int layer, int bits, int act_bits);

/* The estimate for a policy: NAN if one of its entries was not measured. */
double latency_lut_estimate(const struct latency_lut *lut, const struct policy *p);

/* JSON text of the table (malloc'd; the caller frees), with the layers' names. */
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
