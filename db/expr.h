/* expr.h - the small expression language of `--where` and `--pick`.
 *
 *   where:  accuracy >= 89.5 and size_kb <= 64
 *           size <= 64kb or (latency <= 2ms and not bits_mean >= 5)
 *   pick:   max accuracy where size_kb <= 64
 *           min size_kb where accuracy_drop <= 1
 *           min size_kb where accuracy_drop <= 1 at 95%
 *
 * A comparison puts a metric on one side and a number on the other, with one
 * of < <= > >= = (==) != (<>). Comparisons combine with and, or, not and
 * parentheses (not binds tighter than and, and tighter than or). Keywords,
 * metric names and units are case-insensitive.
 *
 * Metric names are a fixed whitelist (enum expr_metric); each is also the name
 * of a column of the store's v_trials view, so the SQL emitted by expr_sql()
 * holds only whitelisted column names, operators and `?` placeholders, never
 * text from the user. Numbers may carry a unit: kb, kib (x1024 bytes), mb, mib
 * (x1048576 bytes), b; us, ms (x1000 us), s (x1000000 us). A unit is converted
 * to the metric's own unit (`size_kb <= 1mb` means size_kb <= 1024); a unit
 * on a metric without that dimension is an error.
 *
 * A comparison of accuracy or accuracy_drop with <, <=, > or >= may end in
 * `at C%` (50 < C < 100): the bound must hold at that one-sided confidence,
 * so the comparison uses the Wilson bound of the accuracy over the trial's
 * n_images validation images (base/stats.h) instead of the point value:
 * `accuracy >= 90 at 95%` compares the 95 % lower bound of accuracy with 90,
 * `accuracy_drop <= 1 at 95%` the 95 % upper bound of the drop (FP32 accuracy,
 * taken as exact, minus that lower bound) with 1; `<` / `<=` on accuracy and
 * `>` / `>=` on the drop use the other bound. A trial whose n_images is not
 * known has no bound: the comparison is unknown (NULL) and the trial is not
 * selected. In SQL such a comparison calls EXPR_SQL_BOUND_FUNCTION, which a
 * connection must have registered (the store does; expr_accuracy_bound() is
 * its body), with the z of the confidence bound as a `?` value.
 *
 * One expression holds at most 64 comparisons nested at most 12 deep
 * (parentheses and not): bounds that keep the emitted SQL within what SQLite's
 * parser takes (expr.c says how they were chosen).
 *
 * Errors are PRESSO_E_USAGE with a message naming the option, the problem and
 * its 1-based column, followed by the text and a caret under that column:
 *   --where: unknown metric 'acuracy' at column 1 (known: accuracy, ...)
 */
#ifndef PRESSO_EXPR_H
#define PRESSO_EXPR_H

#include <stdbool.h>

#include "base/status.h"

enum expr_metric {
	EXPR_ACCURACY,      /* validation accuracy, percent */
	EXPR_TEST_ACCURACY, /* test accuracy, percent (NULL/NaN when not measured) */
	EXPR_ACCURACY_DROP, /* FP32 validation accuracy - accuracy, points */
	EXPR_SIZE_BYTES,
	EXPR_SIZE_KB,       /* size_bytes / 1024 */
	EXPR_SIZE_MB,       /* size_bytes / 1048576 */
	EXPR_RATIO,         /* FP32 size_bytes / size_bytes */
	EXPR_BOPS,
	EXPR_LATENCY_US,
	EXPR_LATENCY_MS,
	EXPR_MEAN_BITS,     /* mean weight bits over layers */
	EXPR_MEAN_PRUNE,
	EXPR_MEAN_RANK,
	EXPR_TRIAL,         /* trial number */
	EXPR_TUNED,         /* 1 for a fine-tuned trial, 0 for a PTQ one */
	EXPR_N_IMAGES,      /* validation images the accuracy was measured on
			       (NULL/NaN when not known) */
	EXPR_METRIC_COUNT
};

/* The metric's name, which is also its column in v_trials ("size_kb"). */
const char *expr_metric_name(enum expr_metric m);

/* Looks a metric up by name or alias (size, latency, bits_mean, prune_mean,
 * rank_mean), case-insensitively; false if unknown. */
bool expr_metric_lookup(const char *name, enum expr_metric *out);

/* The SQL function the `at C%` comparisons call:
 * wilson_bound(accuracy, n_images, z) = expr_accuracy_bound(...), NULL where
 * that is NaN. */
#define EXPR_SQL_BOUND_FUNCTION "wilson_bound"

/* The Wilson bound of an accuracy (percent) over n images at signed z (< 0
 * lower, > 0 upper): stats_wilson_bound(); NaN when either is not known. */
double expr_accuracy_bound(double accuracy, double n_images, double z);

/* A parsed boolean expression (opaque). */
struct expr;

/* Parses a --where expression. `what` names the option in messages ("--where").
 * The caller frees *out with expr_free(). */
enum presso_status expr_parse(const char *text, const char *what, struct expr **out);

/* `max METRIC [where EXPR]` or `min METRIC [where EXPR]`. */
struct expr_pick {
	bool maximize;
	enum expr_metric metric;
	struct expr *where; /* NULL when there is no where clause; owned */
};

/* Parses a --pick expression; free with expr_pick_free(). */
enum presso_status expr_parse_pick(const char *text, const char *what, struct expr_pick *out);
void expr_pick_free(struct expr_pick *p);

/* The expression as an SQL boolean fragment over v_trials' columns with `?`
 * placeholders, and the values to bind to them in order. *sql and *params are
 * malloc'd (the caller frees them; *params may be NULL when *n_params is 0). */
enum presso_status expr_sql(const struct expr *e, char **sql, double **params, int *n_params);

/* Evaluates the expression on metric values indexed by enum expr_metric with
 * SQL's three-valued logic (NaN is NULL: a comparison with it is unknown);
 * true only when the result is true, as a WHERE clause keeps a row. */
bool expr_eval(const struct expr *e, const double values[EXPR_METRIC_COUNT]);

void expr_free(struct expr *e);

#endif
