/* report.h - private to `presso report` (report.c reads the studies,
 * report_page.c draws them): what is known about one study.
 */
#ifndef PRESSO_CLI_REPORT_H
#define PRESSO_CLI_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/textbuf.h"
#include "db/store.h"
#include "search/space.h"

#define REPORT_MAX_STUDIES 6     /* lines on one progress chart stay readable */
#define REPORT_MAX_NOTES 8
#define REPORT_NOTE_BYTES 768
#define REPORT_NEAR_FP32 STORE_NEAR_FP32_POINTS /* the best rule without constraints */

/* Which trial is the best under the constraints (archive_best's rule): the
 * cheapest feasible one (an accuracy bound), the most accurate feasible one
 * (only cost bounds), the cheapest within REPORT_NEAR_FP32 points of FP32
 * (no constraints). */
enum best_rule { BEST_CHEAPEST, BEST_ACCURATE, BEST_NEAR_FP32 };

struct study_report {
	struct study_info info;
	struct store_trial *trials; /* every trial, by number */
	int n_trials;
	int n_complete, n_running, n_failed, n_lost;
	struct pareto_result front; /* accuracy, size; no --where */
	struct space *goals;        /* NULL when the stored config could not be read */
	enum best_rule rule;
	enum store_objective cost;  /* the study's first cost objective */
	/* after each complete trial, in number order */
	int n_prog;
	double *prog_trial, *prog_hv, *prog_best;
	int64_t best;               /* the best trial under the constraints; 0 if none */
	int64_t int8_trial, int4_trial; /* uniform policies among the trials; 0 if none */
	int64_t chosen;             /* the policy of the heat map; 0 if none */
	struct layer_choice *layers; /* the chosen trial's */
	int n_layers;
	int64_t *params, *macs;     /* [n_layers] from the model; NULL without it */
	char notes[REPORT_MAX_NOTES][REPORT_NOTE_BYTES];
	int n_notes;
};

/* The whole page about rs[0..n-1] (n <= REPORT_MAX_STUDIES) read from the
 * database file db, appended to b. */
void report_page_html(struct textbuf *b, const char *db, struct study_report *const *rs, int n);

/* A study's accuracy/size scatter alone, as a standalone SVG document
 * (without the XML declaration), appended to b. */
void report_scatter_svg(struct textbuf *b, const struct study_report *r);

#endif
