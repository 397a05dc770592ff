/* report.c - `presso report`: one self-contained HTML page about one or more
 * studies, to look at after a night's search. This file reads the studies;
 * report_page.c draws the page (its opening comment says what is on it).
 *
 * Where each number comes from:
 *   - the front and its hypervolume are store_pareto()'s over accuracy and
 *     size with no --where: `presso pareto --db D --study S` prints the same.
 *     The hypervolume after trial n is recomputed from the complete trials up
 *     to n with the same reference point (chance accuracy, FP32 size), so the
 *     last value is the one `presso pareto` prints;
 *   - "best under the constraints" replays the complete trials in number
 *     order through the search's own archive (search/archive.h) with the
 *     objectives and constraints read from the study's stored config
 *     (space_parse_goals): the trial the search's summary names, by the same
 *     rule (with an accuracy bound the cheapest feasible trial, with only cost
 *     bounds the most accurate, without constraints the cheapest within one
 *     point of FP32). The chosen policy is that trial's (or, when nothing is
 *     feasible, the front's most accurate);
 *   - INT8 and INT4 are marked at the study's own trials whose resolved
 *     layers are uniform: W8A8 everywhere, and W4A8 with the first and last
 *     layer at 8 bits (the `int4` shorthand; every search proposes both
 *     first). Their sizes are not computed from the model: that needs
 *     calibration data and the quantization pipeline. A study without such a
 *     trial says so under its scatter;
 *   - parameters and MACs per layer come from the model file stored with the
 *     study when it is still there with the same SHA-256; otherwise the heat
 *     map is drawn without them and the page says why.
 * Every string from the database or the model is escaped (textbuf.h). Files
 * are written atomically; a failed report leaves neither file.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/sha256.h"
#include "cli/cli.h"
#include "cli/report.h"
#include "cli/textbuf.h"
#include "db/store.h"
#include "model/graph.h"
#include "search/archive.h"
#include "search/space.h"

__attribute__((format(printf, 2, 3))) static void note(struct study_report *r, const char *fmt,
							  ...)
{
	if (r->n_notes == REPORT_MAX_NOTES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->n_notes++], REPORT_NOTE_BYTES, fmt, ap);
	va_end(ap);
}

static void study_report_free(struct study_report *r)
{
	store_study_info_free(&r->info);
	store_trials_free(r->trials, r->n_trials);
	store_pareto_result_free(&r->front);
	space_free(r->goals);
	free(r->prog_trial);
	free(r->prog_hv);
	free(r->prog_best);
	free(r->layers);
	free(r->params);
	free(r->macs);
	memset(r, 0, sizeof *r);
}
/* A cost as the charts show it: size in KB, the others as stored. */
static double cost_shown(enum store_objective o, double v)
{
	return o == OBJ_SIZE ? v / 1024.0 : v;
}
/* --- reading a study ------------------------------------------------------ */

/* The hypervolume ratio of the accuracy/size front after each complete trial
 * (see the file's comment). The front is kept as it grows: a new point that
 * nothing on it dominates joins it and pushes out what it dominates. */
static enum presso_status replay_hypervolume(struct study_report *r)
{
	const enum pareto_dir dir[2] = {PARETO_MAXIMIZE, PARETO_MINIMIZE};
	double box = fabs(r->front.ideal[0] - r->front.ref[0]) * fabs(r->front.ideal[1] - r->front.ref[1]);
	double *pts = malloc(sizeof(double) * 2 * (size_t)(r->n_complete ? r->n_complete : 1));
	if (!pts)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	int n_front = 0, k = 0;
	enum presso_status s = PRESSO_OK;
	for (int i = 0; i < r->n_trials && s == PRESSO_OK; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE)
			continue;
		double p[2] = {t->metrics.accuracy, (double)t->metrics.size_bytes};
		/* a low-fidelity trial (a screen on a subset) is no point of the front */
		bool placed = !isnan(p[0]) && t->metrics.size_bytes > 0 && !t->metrics.low_fidelity,
		     dominated = false;
		for (int j = 0; placed && j < n_front && !dominated; j++)
			dominated = pareto_dominates(&pts[2 * j], p, 2, dir);
		if (placed && !dominated) {
			int m = 0;
			for (int j = 0; j < n_front; j++)
				if (!pareto_dominates(p, &pts[2 * j], 2, dir)) {
					pts[2 * m] = pts[2 * j];
					pts[2 * m + 1] = pts[2 * j + 1];
					m++;
				}
			pts[2 * m] = p[0];
			pts[2 * m + 1] = p[1];
			n_front = m + 1;
		}
		double hv = NAN;
		if (r->front.has_hypervolume && box > 0) {
			s = pareto_hypervolume(pts, n_front, 2, dir, r->front.ref, &hv);
			hv /= box;
		}
		r->prog_hv[k++] = hv;
	}
	free(pts);
	return s;
}

/* The best trial under the constraints after each complete trial, through
 * the search's archive; notes why when it cannot be replayed. */
static enum presso_status replay_best(struct study_report *r)
{
	for (int k = 0; k < r->n_prog; k++)
		r->prog_best[k] = NAN;
	if (!r->goals)
		return PRESSO_OK;
	const struct space_constraints *c = &r->goals->con;
	bool acc_bound = !isnan(c->min_accuracy) || !isnan(c->max_accuracy_drop);
	bool cost_bound = !isnan(c->max_size_bytes) || !isnan(c->max_latency_us);
	r->rule = acc_bound ? BEST_CHEAPEST : cost_bound ? BEST_ACCURATE : BEST_NEAR_FP32;
	r->cost = r->goals->n_obj > 1 ? r->goals->obj[1] : OBJ_SIZE;
	struct archive a;
	enum presso_status s = archive_init(&a, r->goals, &r->info.baseline);
	if (s != PRESSO_OK) {
		note(r, "the best trial under the constraints is not replayed: %s", status_msg());
		status_clear();
		return PRESSO_OK;
	}
	int k = 0;
	for (int i = 0; i < r->n_trials && s == PRESSO_OK; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE)
			continue;
		if (!t->metrics.low_fidelity &&
		    (s = archive_add(&a, t->number, NULL, &t->metrics, NULL)) != PRESSO_OK)
			break;
		int b = archive_best(&a);
		if (b >= 0) {
			const struct archive_point *p = &a.pts[b];
			r->best = p->number;
			bool near = p->m.accuracy >= r->info.baseline.accuracy - REPORT_NEAR_FP32;
			if (r->rule == BEST_ACCURATE)
				r->prog_best[k] = p->m.accuracy;
			else if (r->rule == BEST_CHEAPEST || near)
				r->prog_best[k] = cost_shown(r->cost, p->f[1]);
		}
		k++;
	}
	archive_free(&a);
	return s;
}

/* Marks the uniform INT8 / INT4 trials (see the file's comment); among
 * several, the first without bias correction, else the first. */
static enum presso_status find_uniform(struct store *st, struct study_report *r)
{
	bool int8_plain = false, int4_plain = false;
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE)
			continue;
		struct layer_choice *l;
		int n;
		enum presso_status s = store_get_layers(st, r->info.id, t->number, &l, &n);
		if (s != PRESSO_OK)
			return s;
		bool w8 = n > 0, w4 = n > 2, plain = true;
		for (int j = 0; j < n; j++) {
			bool dense = l[j].act_bits == 8 && l[j].prune == 0 && l[j].rank == 1;
			bool edge = j == 0 || j == n - 1;
			w8 &= dense && l[j].bits == 8;
			w4 &= dense && l[j].bits == (edge ? 8 : 4);
			plain &= !l[j].bias_correction;
		}
		free(l);
		if (w8 && (!r->int8_trial || (plain && !int8_plain))) {
			r->int8_trial = t->number;
			int8_plain = plain;
		}
		if (w4 && (!r->int4_trial || (plain && !int4_plain))) {
			r->int4_trial = t->number;
			int4_plain = plain;
		}
	}
	if (!r->int8_trial && !r->int4_trial)
		note(r, "no trial of this study is a uniform INT8 or INT4 policy, so neither is "
			"marked (their sizes need the model, its calibration data and the "
			"quantization pipeline: presso eval --policy int8 measures them)");
	else if (!r->int8_trial || !r->int4_trial)
		note(r, "no trial of this study is a uniform %s policy, so it is not marked",
		     r->int8_trial ? "INT4" : "INT8");
	return PRESSO_OK;
}

/* Parameters and MACs per chosen layer from the study's model file, when it
 * is there and unchanged. */
static void read_model(struct study_report *r)
{
	const char *path = r->info.model_path;
	char sha[SHA256_HEX_BYTES];
	struct graph *g = NULL;
	struct layer *ls = NULL;
	int n = 0;
	if (!path || !*path || access(path, R_OK) != 0) {
		note(r, "the model file '%s' is not there (paths are as the search was given "
			"them, relative to where it ran): the policy is shown without each "
			"layer's parameters and MACs",
		     path ? path : "");
		return;
	}
	if (sha256_file(path, sha) != PRESSO_OK ||
	    strcmp(sha, r->info.model_sha256 ? r->info.model_sha256 : "") != 0) {
		note(r, "the model file '%s' is not the one the study searched (its SHA-256 "
			"differs): the policy is shown without each layer's parameters and MACs",
		     path);
		status_clear();
		return;
	}
	if (graph_load_onnx(path, &g) != PRESSO_OK || graph_layers(g, &ls, &n) != PRESSO_OK) {
		note(r, "the model file '%s' could not be read (%s): the policy is shown without "
			"each layer's parameters and MACs",
		     path, status_msg());
		status_clear();
		graph_free(g);
		return;
	}
	r->params = malloc(sizeof(int64_t) * (size_t)(r->n_layers ? r->n_layers : 1));
	r->macs = malloc(sizeof(int64_t) * (size_t)(r->n_layers ? r->n_layers : 1));
	if (r->params && r->macs) {
		for (int i = 0; i < r->n_layers; i++) {
			r->params[i] = r->macs[i] = -1;
			for (int j = 0; j < n; j++)
				if (strcmp(ls[j].name, r->layers[i].layer) == 0) {
					r->params[i] = ls[j].params;
					r->macs[i] = ls[j].macs;
				}
		}
	} else {
		free(r->params);
		free(r->macs);
		r->params = r->macs = NULL;
		note(r, "out of memory reading the model: parameters and MACs are not shown");
	}
	free(ls);
	graph_free(g);
}

static enum presso_status read_study(struct store *st, const char *name, struct study_report *r)
{
	enum presso_status s;
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	if ((s = store_find_study(st, name, &r->info)) ||
	    (s = store_list_trials(st, r->info.id, false, NULL, &r->trials, &r->n_trials)) ||
	    (s = store_pareto(st, r->info.id, objs, 2, NULL, &r->front)))
		return s;
	for (int i = 0; i < r->n_trials; i++) {
		switch (r->trials[i].state) {
		case TRIAL_COMPLETE: r->n_complete++; break;
		case TRIAL_RUNNING: r->n_running++; break;
		default:
			r->n_failed++;
			r->n_lost += r->trials[i].lost;
			break;
		}
	}
	/* the objectives and constraints the study was searched with */
	cJSON *cfg = cJSON_Parse(r->info.config_json ? r->info.config_json : "");
	if (!cfg || space_parse_goals(cfg, &r->goals) != PRESSO_OK) {
		note(r, "the study's config does not give its objectives and constraints (%s): "
			"no best trial under constraints",
		     cfg ? status_msg() : "it is not JSON");
		status_clear();
	}
	cJSON_Delete(cfg);
	size_t n = (size_t)(r->n_complete ? r->n_complete : 1);
	r->n_prog = r->n_complete;
	r->prog_trial = malloc(n * sizeof(double));
	r->prog_hv = malloc(n * sizeof(double));
	r->prog_best = malloc(n * sizeof(double));
	if (!r->prog_trial || !r->prog_hv || !r->prog_best)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int i = 0, k = 0; i < r->n_trials; i++)
		if (r->trials[i].state == TRIAL_COMPLETE)
			r->prog_trial[k++] = (double)r->trials[i].number;
	if ((s = replay_hypervolume(r)) || (s = replay_best(r)) || (s = find_uniform(st, r)))
		return s;
	/* the policy to map */
	r->chosen = r->best;
	if (!r->chosen && r->front.n_front) {
		r->chosen = r->front.front[0].number;
		if (r->goals)
			note(r, "no trial meets the constraints: the policy shown is the front's "
				"most accurate");
	}
	if (r->chosen) {
		if ((s = store_get_layers(st, r->info.id, r->chosen, &r->layers, &r->n_layers)))
			return s;
		read_model(r);
	}
	return PRESSO_OK;
}
/* --- the command ---------------------------------------------------------- */

/* Fails early, before any work, when a file cannot be written where asked. */
static enum presso_status check_writable(const char *path)
{
	if (strcmp(path, "-") == 0)
		return PRESSO_OK;
	char *dir = strdup(path);
	if (!dir)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	char *slash = strrchr(dir, '/');
	const char *d = slash == dir ? "/" : slash ? (*slash = '\0', dir) : ".";
	enum presso_status s = PRESSO_OK;
	if (access(d, W_OK | X_OK) != 0)
		s = status_fail(PRESSO_E_IO, "%s: cannot write in the folder '%s'", path, d);
	free(dir);
	return s;
}

int cmd_report(int argc, char **argv)
{
	const char *db = NULL, *study = NULL, *output = NULL, *svg = NULL;
	const struct cli_opt opts[] = {
		{"db", CLI_STRING, "FILE", "the study database (opened read-only)", NULL, &db},
		{"study", CLI_STRING, "NAME",
		 "the study; repeat it (up to 6) to compare studies on the progress charts", NULL,
		 &study},
		{"output", CLI_STRING, "FILE.html", "the HTML report ('-': standard output)", NULL,
		 &output},
		{"svg", CLI_STRING, "FILE.svg", "also (or only) the first study's scatter as SVG",
		 NULL, &svg},
	};
	const struct cli_cmd cmd = {
		"report",
		"Writes one self-contained HTML page about a study (inline SVG and CSS, nothing\n"
		"fetched): the accuracy/size scatter with the front, FP32, uniform INT8/INT4 and\n"
		"the constraints; hypervolume and the best trial under the constraints after each\n"
		"trial (one line per --study, to compare strategies); the chosen policy per layer\n"
		"as a heat map with each layer's parameters and MACs; the front as a table; the\n"
		"study's config and timings. --svg writes the first study's scatter alone; give\n"
		"-o, --svg or both.",
		"--db FILE --study NAME [--study NAME ...] [-o FILE.html] [--svg FILE.svg]", opts, 4};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "db", db) || !cli_require(&cmd, "study", study))
		return 2;
	const char *names[REPORT_MAX_STUDIES];
	int n = cli_values(&cmd, argc, argv, "study", names, REPORT_MAX_STUDIES);
	if (n < 0)
		return 2;
	if (!output && !svg) {
		fprintf(stderr, "presso report: say where to write: -o FILE.html and/or --svg FILE.svg\n");
		return 2;
	}
	if (output && svg && strcmp(output, svg) == 0) {
		fprintf(stderr, "presso report: -o and --svg name the same file '%s'\n", svg);
		return 2;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0) {
				fprintf(stderr, "presso report: --study '%s' is given twice\n", names[i]);
				return 2;
			}
	struct study_report reports[REPORT_MAX_STUDIES];
	struct study_report *rs[REPORT_MAX_STUDIES];
	memset(reports, 0, sizeof reports);
	for (int i = 0; i < n; i++)
		rs[i] = &reports[i];
	struct store *st = NULL;
	struct textbuf html = {0}, scatter = {0};
	enum presso_status s = PRESSO_OK;
	if ((output && (s = check_writable(output))) || (svg && (s = check_writable(svg))))
		goto done;
	if ((s = store_open(db, STORE_READONLY, &st)) != PRESSO_OK)
		goto done;
	for (int i = 0; i < n && s == PRESSO_OK; i++)
		s = read_study(st, names[i], rs[i]);
	store_close(st);
	if (s != PRESSO_OK)
		goto done;
	if (output) {
		report_page_html(&html, db, rs, n);
		if ((s = textbuf_done(&html)) != PRESSO_OK)
			goto done;
	}
	if (svg) {
		textbuf_add(&scatter, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
		report_scatter_svg(&scatter, rs[0]);
		if ((s = textbuf_done(&scatter)) != PRESSO_OK)
			goto done;
	}
	if (svg && (s = file_write_atomic(svg, scatter.s, scatter.n)) != PRESSO_OK)
		goto done;
	if (output && (s = file_write_atomic(output, html.s, html.n)) != PRESSO_OK) {
		if (svg && strcmp(svg, "-") != 0)
			unlink(svg); /* neither file, rather than half the report */
		goto done;
	}
	if (output && strcmp(output, "-") != 0)
		fprintf(stderr, "presso report: wrote %s (%zu KB)\n", output, (html.n + 1023) / 1024);
	if (svg && strcmp(svg, "-") != 0)
		fprintf(stderr, "presso report: wrote %s\n", svg);
done:
	rc = s == PRESSO_OK ? 0 : cli_fail("report", s);
	for (int i = 0; i < n; i++)
		study_report_free(rs[i]);
	textbuf_free(&html);
	textbuf_free(&scatter);
	return rc;
}
