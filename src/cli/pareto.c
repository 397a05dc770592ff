/* pareto.c - `presso pareto`: a study's Pareto front as a table, CSV or JSON.
 *
 * The front is over the chosen objectives (accuracy up; size, BOPs, latency
 * down) among the complete trials that meet --where. Every format has the
 * same columns: trial, accuracy, accuracy minus FP32's, size in KiB, FP32
 * size / size, BOPs, latency_us, mean weight bits, mean prune, mean rank,
 * "tuned from": for a fine-tuned trial (db/README.md, "Fine-tuned trials") the
 * PTQ trial it was tuned from, empty ("-", null) for a PTQ trial (fine-tuned
 * trials compete on the front like any other), and the accuracy's two-sided
 * 95 % Wilson interval with the number of validation images it was measured
 * on (base/stats.h; none when that number is not known). The table shows the
 * interval next to the accuracy.
 * The table and JSON also give the hypervolume against the reference point
 * (chance accuracy, FP32 size/BOPs/latency) and as a fraction of the box
 * between that point and the ideal one (100 %, 0 bytes, ...).
 *
 * --plot draws the front above the table in braille characters (termplot.h):
 * accuracy against the first cost objective on a log scale, each front trial
 * a "●" joined to the next, FP32's accuracy a dotted line, sized to the
 * terminal.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/termplot.h"
#include "base/json_get.h"
#include "base/stats.h"
#include "db/store.h"

#define PLOT_ROWS 16        /* canvas lines: 64 dots of accuracy */
#define PLOT_MIN_COLS 24
#define PLOT_MAX_COLS 150

#define N_COLS 14
#define CELL_BYTES 48
#define COL_LOW 11    /* the interval's columns: shown as one in the table */
#define COL_HIGH 12
#define COL_IMAGES 13
#define INTERVAL_CONFIDENCE 0.95 /* two-sided */

static const char *const col_head[N_COLS] = {
	"trial", "accuracy", "Δ vs FP32", "size_kb", "ratio vs FP32",
	"BOPs",  "latency_us", "mean bits", "mean prune", "mean rank", "tuned from",
	"95% interval", "", "images",
};
static const char *const col_csv[N_COLS] = {
	"trial", "accuracy", "delta_vs_fp32", "size_kb", "ratio_vs_fp32",
	"bops",  "latency_us", "mean_bits", "mean_prune", "mean_rank", "tuned_from",
	"accuracy_low95", "accuracy_high95", "n_images",
};
/* the table's column order: the interval and its images after the accuracy */
static const int table_cols[] = {0, 1, COL_LOW, COL_IMAGES, 2, 3, 4, 5, 6, 7, 8, 9, 10};
#define N_TABLE_COLS ((int)(sizeof table_cols / sizeof table_cols[0]))

/* The row's values in column order (NAN where not measured). */
static void row_values(const struct store_trial *t, const struct baseline *b, double v[N_COLS])
{
	const struct trial_metrics *m = &t->metrics;
	v[0] = (double)t->number;
	v[1] = m->accuracy;
	v[2] = m->accuracy - b->accuracy;
	v[3] = (double)m->size_bytes / 1024.0;
	v[4] = (double)b->size_bytes / (double)m->size_bytes;
	v[5] = m->bops;
	v[6] = m->latency_us;
	v[7] = m->mean_bits;
	v[8] = m->mean_prune;
	v[9] = m->mean_rank;
	v[10] = t->parent_trial ? (double)t->parent_trial : NAN; /* a fine-tuned trial's PTQ trial */
	/* two-sided: each side at (1 + c) / 2 */
	double z = stats_normal_quantile((1 + INTERVAL_CONFIDENCE) / 2);
	double n = m->n_images > 0 ? (double)m->n_images : NAN;
	v[COL_LOW] = stats_wilson_bound(m->accuracy, n, -z);
	v[COL_HIGH] = stats_wilson_bound(m->accuracy, n, z);
	v[COL_IMAGES] = n;
}

static void format_cell(int c, double v, char *buf, size_t cap)
{
	if (isnan(v)) {
		snprintf(buf, cap, "-");
		return;
	}
	switch (c) {
	case 0:
	case 10:
	case COL_IMAGES: snprintf(buf, cap, "%.0f", v); break;
	case 2: snprintf(buf, cap, "%+.2f", v); break;
	case 4: snprintf(buf, cap, "%.2fx", v); break;
	case 5: snprintf(buf, cap, "%.4g", v); break;
	case 6: snprintf(buf, cap, "%.1f", v); break;
	case 7: snprintf(buf, cap, "%.2f", v); break;
	case 8:
	case 9: snprintf(buf, cap, "%.3f", v); break;
	default: snprintf(buf, cap, "%.2f", v); break;
	}
}

static int width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void objectives_text(const enum store_objective *objs, int n, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int k = 0; k < n && used < cap; k++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s %s", k ? ", " : "",
					 store_objective_name(objs[k]),
					 store_objective_dir(objs[k]) == PARETO_MAXIMIZE ? "up"
											 : "down");
}

static int print_table(const struct study_info *info, const enum store_objective *objs, int n_objs,
		       const char *where, const struct pareto_result *r)
{
	const struct baseline *b = &info->baseline;
	char ob[160];
	objectives_text(objs, n_objs, ob, sizeof ob);
	printf("study %s: %d on the front of %d complete trials%s%s%s", info->name, r->n_front,
	       r->n_candidates, where ? " meeting '" : "", where ? where : "", where ? "'" : "");
	if (r->n_collapsed)
		printf(" (%d more with the same objective values as a member: not listed again)",
		       r->n_collapsed);
	if (r->n_low_fidelity)
		printf(" (%d more scored at low fidelity only: not candidates)", r->n_low_fidelity);
	printf("\n");
	printf("objectives: %s\n", ob);
	printf("FP32: accuracy %.2f %%, %.1f KB, %.4g BOPs", b->accuracy,
	       (double)b->size_bytes / 1024.0, b->bops);
	if (!isnan(b->latency_us))
		printf(", %.1f us", b->latency_us);
	printf("\n\n");
	char(*cells)[N_COLS][CELL_BYTES] = calloc((size_t)r->n_front + 1, sizeof *cells);
	if (!cells) {
		fprintf(stderr, "presso pareto: out of memory\n");
		return 1;
	}
	int w[N_COLS];
	for (int c = 0; c < N_COLS; c++)
		snprintf(cells[0][c], CELL_BYTES, "%s", col_head[c]);
	for (int i = 0; i < r->n_front; i++) {
		double v[N_COLS];
		row_values(&r->front[i], b, v);
		for (int c = 0; c < N_COLS; c++)
			format_cell(c, v[c], cells[i + 1][c], CELL_BYTES);
		if (!isnan(v[COL_LOW]))
			snprintf(cells[i + 1][COL_LOW], CELL_BYTES, "%.2f..%.2f", v[COL_LOW],
				 v[COL_HIGH]);
	}
	for (int c = 0; c < N_COLS; c++) {
		w[c] = 0;
		for (int i = 0; i <= r->n_front; i++)
			if (width(cells[i][c]) > w[c])
				w[c] = width(cells[i][c]);
	}
	for (int i = 0; i <= r->n_front; i++) {
		for (int k = 0; k < N_TABLE_COLS; k++) {
			int c = table_cols[k];
			printf("%s%*s%s", k ? "  " : "", w[c] - width(cells[i][c]), "", cells[i][c]);
		}
		printf("\n");
	}
	free(cells);
	int n_tuned = 0;
	for (int i = 0; i < r->n_front; i++)
		n_tuned += r->front[i].parent_trial != 0;
	if (n_tuned)
		printf("\n'tuned from' marks %s fine-tuned from that PTQ trial "
		       "(search.finetune_front or presso finetune --db); presso export --trial N "
		       "-o FILE.presso writes %s tuned weights\n",
		       n_tuned == 1 ? "a trial" : "trials", n_tuned == 1 ? "its" : "their");
	for (int i = 0; i < r->n_front; i++)
		if (r->n_same[i])
			printf("%strial %lld stands for %d more trial%s with the same values\n",
			       i == 0 || !r->n_same[i - 1] ? "\n" : "", (long long)r->front[i].number,
			       r->n_same[i], r->n_same[i] == 1 ? "" : "s");
	if (r->has_hypervolume) {
		printf("\nhypervolume: %.4f of the box from the reference point (", r->hypervolume_ratio);
		for (int k = 0; k < n_objs; k++)
			printf("%s%s %.6g", k ? ", " : "", store_objective_name(objs[k]), r->ref[k]);
		printf(") to the ideal one; %.6g in objective units\n", r->hypervolume);
	}
	return 0;
}

static void csv_number(double v, bool last)
{
	if (isnan(v))
		printf("%s", last ? "\n" : ",");
	else
		printf("%.10g%s", v, last ? "\n" : ",");
}

static int print_csv(const struct study_info *info, const struct pareto_result *r)
{
	for (int c = 0; c < N_COLS; c++)
		printf("%s%s", col_csv[c], c + 1 < N_COLS ? "," : "\n");
	for (int i = 0; i < r->n_front; i++) {
		double v[N_COLS];
		row_values(&r->front[i], &info->baseline, v);
		for (int c = 0; c < N_COLS; c++)
			csv_number(v[c], c + 1 == N_COLS);
	}
	return 0;
}

static void add_num(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static int print_json(const struct study_info *info, const enum store_objective *objs, int n_objs,
		      const char *where, const struct pareto_result *r)
{
	const struct baseline *b = &info->baseline;
	unsigned since = json_failures();
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "study", info->name);
	cJSON *ob = cJSON_AddArrayToObject(root, "objectives");
	for (int k = 0; k < n_objs; k++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", store_objective_name(objs[k]));
		cJSON_AddStringToObject(o, "direction", store_objective_dir(objs[k]) ==
								PARETO_MAXIMIZE ? "max" : "min");
		cJSON_AddItemToArray(ob, o);
	}
	if (where)
		cJSON_AddStringToObject(root, "where", where);
	else
		cJSON_AddNullToObject(root, "where");
	cJSON *fp = cJSON_AddObjectToObject(root, "fp32");
	cJSON_AddNumberToObject(fp, "accuracy", b->accuracy);
	add_num(fp, "test_accuracy", b->test_accuracy);
	cJSON_AddNumberToObject(fp, "size_bytes", (double)b->size_bytes);
	cJSON_AddNumberToObject(fp, "bops", b->bops);
	add_num(fp, "latency_us", b->latency_us);
	cJSON_AddNumberToObject(fp, "n_classes", b->n_classes);
	cJSON_AddNumberToObject(root, "candidates", r->n_candidates);
	cJSON_AddNumberToObject(root, "low_fidelity", r->n_low_fidelity);
	cJSON_AddNumberToObject(root, "collapsed", r->n_collapsed);
	if (r->has_hypervolume) {
		cJSON *hv = cJSON_AddObjectToObject(root, "hypervolume");
		cJSON_AddNumberToObject(hv, "value", r->hypervolume);
		add_num(hv, "ratio", r->hypervolume_ratio);
		cJSON *ref = cJSON_AddObjectToObject(hv, "reference");
		cJSON *ideal = cJSON_AddObjectToObject(hv, "ideal");
		for (int k = 0; k < n_objs; k++) {
			cJSON_AddNumberToObject(ref, store_objective_name(objs[k]), r->ref[k]);
			cJSON_AddNumberToObject(ideal, store_objective_name(objs[k]), r->ideal[k]);
		}
	} else {
		cJSON_AddNullToObject(root, "hypervolume");
	}
	cJSON *arr = cJSON_AddArrayToObject(root, "front");
	for (int i = 0; i < r->n_front; i++) {
		const struct store_trial *t = &r->front[i];
		double v[N_COLS];
		row_values(t, b, v);
		cJSON *o = cJSON_CreateObject();
		for (int c = 0; c < N_COLS; c++)
			add_num(o, col_csv[c], v[c]);
		add_num(o, "test_accuracy", t->metrics.test_accuracy);
		cJSON_AddNumberToObject(o, "size_bytes", (double)t->metrics.size_bytes);
		cJSON_AddStringToObject(o, "policy_sha256", t->policy_sha256);
		cJSON_AddNumberToObject(o, "n_same", r->n_same[i]);
		cJSON_AddItemToArray(arr, o);
	}
	char *text = json_print(root, true, since);
	cJSON_Delete(root);
	if (!text) {
		fprintf(stderr, "presso pareto: out of memory\n");
		return 1;
	}
	puts(text);
	free(text);
	return 0;
}

/* An objective's value as the plot shows it: size in KiB, the others as stored. */
static double plot_value(const struct trial_metrics *m, enum store_objective o)
{
	switch (o) {
	case OBJ_ACCURACY: return m->accuracy;
	case OBJ_SIZE: return m->size_bytes > 0 ? (double)m->size_bytes / 1024.0 : NAN;
	case OBJ_BOPS: return m->bops;
	case OBJ_LATENCY: return m->latency_us;
	case OBJ_COUNT: break;
	}
	return NAN;
}

static const char *plot_unit(enum store_objective o)
{
	static const char *const unit[OBJ_COUNT] = {"%", "KB", "BOPs", "us"};
	return unit[o];
}

/* The terminal's width in columns: the window's on a terminal, else $COLUMNS,
 * else 80. */
static int terminal_cols(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *env = getenv("COLUMNS");
	int n = env ? atoi(env) : 0;
	return n > 0 ? n : 80;
}

struct plot_point {
	double x, y;
};

static int by_x(const void *pa, const void *pb)
{
	const struct plot_point *a = pa, *b = pb;
	return (a->x > b->x) - (a->x < b->x);
}

/* Draws the front (see the file's comment); 0, or 1 when out of memory. */
static int print_plot(const struct study_info *info, const enum store_objective *objs, int n_objs,
		      const struct pareto_result *r)
{
	/* y: accuracy when it is an objective (else the first); x: the first other */
	int iy = 0;
	for (int k = 0; k < n_objs; k++)
		if (objs[k] == OBJ_ACCURACY)
			iy = k;
	int ix = iy == 0 ? 1 : 0;
	enum store_objective ox = objs[ix], oy = objs[iy];
	if (r->n_front == 0) {
		printf("(no front to plot: no complete trial has both %s and %s)\n\n",
		       store_objective_name(oy), store_objective_name(ox));
		return 0;
	}
	struct plot_point *pt = malloc(sizeof *pt * (size_t)r->n_front);
	if (!pt) {
		fprintf(stderr, "presso pareto: out of memory\n");
		return 1;
	}
	int n = 0;
	for (int i = 0; i < r->n_front; i++) {
		struct plot_point q = {plot_value(&r->front[i].metrics, ox),
				       plot_value(&r->front[i].metrics, oy)};
		if (isfinite(q.x) && q.x > 0 && isfinite(q.y))
			pt[n++] = q;
	}
	qsort(pt, (size_t)n, sizeof *pt, by_x);
	/* FP32: a dotted line at its accuracy. Its size stays out of the x range:
	 * a front 10x smaller than FP32 would shrink to a corner. */
	const struct baseline *b = &info->baseline;
	bool fp_line = oy == OBJ_ACCURACY && isfinite(b->accuracy);
	if (n == 0) {
		free(pt);
		printf("(no front to plot: no point has a positive %s)\n\n", store_objective_name(ox));
		return 0;
	}
	double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
	for (int i = 0; i < n; i++) {
		x_lo = fmin(x_lo, pt[i].x);
		x_hi = fmax(x_hi, pt[i].x);
		y_lo = fmin(y_lo, pt[i].y);
		y_hi = fmax(y_hi, pt[i].y);
	}
	if (fp_line) {
		y_lo = fmin(y_lo, b->accuracy);
		y_hi = fmax(y_hi, b->accuracy);
	}
	struct svg_scale xs = {x_lo, x_hi, true, 0, 1}, ys = {y_lo, y_hi, false, 0, 1};
	svg_scale_nice(&xs, 6);
	svg_scale_nice(&ys, 8);
	int cols = terminal_cols() - TERMPLOT_LABEL_COLS - 2;
	cols = cols < PLOT_MIN_COLS ? PLOT_MIN_COLS : cols > PLOT_MAX_COLS ? PLOT_MAX_COLS : cols;
	struct termplot tp;
	if (termplot_init(&tp, cols, PLOT_ROWS, xs.lo, xs.hi, 1, ys.lo, ys.hi) != PRESSO_OK) {
		free(pt);
		fprintf(stderr, "presso pareto: out of memory\n");
		return 1;
	}
	if (fp_line)
		termplot_hline(&tp, b->accuracy, 3);
	for (int i = 0; i + 1 < n; i++)
		termplot_line(&tp, pt[i].x, pt[i].y, pt[i + 1].x, pt[i + 1].y);
	for (int i = 0; i < n; i++)
		termplot_mark(&tp, pt[i].x, pt[i].y, "●");
	char title[512], x_title[128];
	char fp_text[96] = "";
	if (fp_line)
		snprintf(fp_text, sizeof fp_text, ", ⠂⠐⠂ FP32 accuracy (%.2f %%, %.1f KB)", b->accuracy,
			 (double)b->size_bytes / 1024.0);
	snprintf(title, sizeof title, "%s (%s) against %s (%s, log scale): ● the %d front trial%s%s",
		 store_objective_name(oy), plot_unit(oy), store_objective_name(ox), plot_unit(ox),
		 n, n == 1 ? "" : "s", fp_text);
	snprintf(x_title, sizeof x_title, "%s (%s)", store_objective_name(ox), plot_unit(ox));
	termplot_print(&tp, stdout, title, x_title, NULL, NULL);
	if (n_objs > 2)
		printf("(the front over %d objectives, seen along two of them)\n", n_objs);
	printf("\n");
	termplot_free(&tp);
	free(pt);
	return 0;
}

int cmd_pareto(int argc, char **argv)
{
	const char *db = NULL, *study = NULL, *objectives = "accuracy,size", *where = NULL;
	const char *format = "table";
	bool plot = false;
	const struct cli_opt opts[] = {
		{"db", CLI_STRING, "FILE", "the study database (opened read-only)", NULL, &db},
		{"study", CLI_STRING, "NAME", "the study", NULL, &study},
		{"objectives", CLI_STRING, "LIST",
		 "comma-separated: accuracy, size, bops, latency (default accuracy,size)", NULL,
		 &objectives},
		{"where", CLI_STRING, "EXPR",
		 "constraints applied before the front, e.g. 'accuracy >= 89 and size <= 64kb'",
		 NULL, &where},
		{"format", CLI_STRING, "table|csv|json", "output format (default table)", NULL,
		 &format},
		{"plot", CLI_FLAG, NULL,
		 "draw the front above the table in braille characters (table format only)", &plot,
		 NULL},
	};
	const struct cli_cmd cmd = {
		"pareto",
		"Prints the Pareto front of a study's complete trials: non-dominated over the\n"
		"objectives (accuracy up; size, BOPs, latency down) among the trials that meet\n"
		"--where, with the hypervolume against (chance accuracy, FP32 size/BOPs/latency).\n"
		"--where compares metrics (accuracy, test_accuracy, accuracy_drop, size_bytes,\n"
		"size_kb, size_mb, ratio, bops, latency_us, latency_ms, mean_bits, mean_prune,\n"
		"mean_rank, trial, n_images) with numbers, units kb/mb/us/ms, joined by\n"
		"and/or/not; 'accuracy_drop <= 1 at 95%' asks the bound to hold at that\n"
		"confidence. Each member's accuracy comes with its 95% interval.\n"
		"--plot draws the front in the terminal: accuracy against the first cost on a\n"
		"log scale (a look over ssh; presso report makes the full picture).",
		"--db FILE --study NAME [--objectives accuracy,size] [--where EXPR] "
		"[--format table|csv|json] [--plot]",
		opts, 6};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "db", db) || !cli_require(&cmd, "study", study))
		return 2;
	if (strcmp(format, "table") != 0 && strcmp(format, "csv") != 0 &&
	    strcmp(format, "json") != 0) {
		fprintf(stderr, "presso pareto: --format must be table, csv or json, not '%s'\n",
			format);
		return 2;
	}
	if (plot && strcmp(format, "table") != 0) {
		fprintf(stderr, "presso pareto: --plot draws with the table format, not with --format %s\n",
			format);
		return 2;
	}
	enum store_objective objs[PARETO_MAX_OBJECTIVES];
	int n_objs;
	struct expr *e = NULL;
	struct store *st = NULL;
	struct study_info info = {0};
	struct pareto_result r = {0};
	enum presso_status s = store_parse_objectives(objectives, objs, &n_objs);
	if (s == PRESSO_OK && where)
		s = expr_parse(where, "--where", &e);
	if (s == PRESSO_OK)
		s = store_open(db, STORE_READONLY, &st);
	if (s == PRESSO_OK)
		s = store_find_study(st, study, &info);
	if (s == PRESSO_OK)
		s = store_pareto(st, info.id, objs, n_objs, e, &r);
	if (s != PRESSO_OK) {
		rc = cli_fail("pareto", s);
	} else if (strcmp(format, "csv") == 0) {
		rc = print_csv(&info, &r);
	} else if (strcmp(format, "json") == 0) {
		rc = print_json(&info, objs, n_objs, where, &r);
	} else {
		rc = plot ? print_plot(&info, objs, n_objs, &r) : 0;
		if (rc == 0)
			rc = print_table(&info, objs, n_objs, where, &r);
	}
	store_pareto_result_free(&r);
	store_study_info_free(&info);
	store_close(st);
	expr_free(e);
	return rc;
}
