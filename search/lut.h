/* lut.h - a study's latency look-up table (evaluators/latency_lut.h): which
 * entries its space needs, kept in the study's search state so it is
 * measured once per study, and measured alone for `presso latency`.
 *
 * The table is stored under the search-state key "latency_lut" (JSON). A
 * resumed search uses the stored table, so its latency estimates are the same
 * numbers as before the interruption.
 */
#ifndef PRESSO_LUT_H
#define PRESSO_LUT_H

#include <stdbool.h>
#include <stdio.h>

#include "db/store.h"
#include "evaluators/latency_lut.h"
#include "evaluators/trial.h"
#include "search/space.h"

#define LUT_STATE_KEY "latency_lut"

/* latency_lut_wanted_fn over a struct space: the (layer, bits, act_bits)
 * combinations its domains allow. */
bool lut_wanted(void *space, int layer, int bits, int act_bits);

/* latency_lut_values_fn over a struct space: the structured prune ratios and
 * the ranks its domains allow a layer. */
int lut_values(void *space, int layer, enum lut_knob knob, double *values);

/* The study's table: read from the store, or measured on ctx's model (with
 * sp->search.latency_runs runs per setting, a note on log when not NULL),
 * stored and read back, so that every run of the study - the first one and
 * each resume - estimates with the same numbers. The caller frees *out with
 * latency_lut_free(). */
enum presso_status lut_for_study(const struct study_ctx *ctx, const struct space *sp,
				 struct store *st, int64_t study_id, FILE *log,
				 struct latency_lut **out);

/* What `presso latency` prints: the table for a config's model and space, and
 * the W8A8 model measured whole for comparison with the table's estimate. */
struct lut_report {
	struct graph *g;
	struct layer *layers;
	int n_layers;
	struct space *sp;
	struct latency_lut *lut;
	double w8a8_estimate_us, w8a8_measured_us;
};

/* Loads the config's model, training images and calibration, then measures
 * (runs per setting; 0 = the config's search.latency_runs). Free the report
 * with lut_report_free(). */
enum presso_status lut_for_config(const struct config *cfg, int runs, bool verbose,
				  struct lut_report *out);

void lut_report_free(struct lut_report *r);

#endif
