/* store_query.c - reading a study back: one trial and its layers, lists of
 * trials (optionally restricted by a --where expression), --pick, Pareto
 * fronts with their hypervolume, and the summaries of `presso studies`. The
 * only SQL composed at run time is here (prepare_with): a constant prefix and
 * an expression's fragment of whitelisted names, operators and `?`.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/store_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- trials --------------------------------------------------------------- */

void store_trials_free(struct store_trial *trials, int n)
{
	if (!trials)
		return;
	for (int i = 0; i < n; i++) {
		free(trials[i].policy_json);
		free(trials[i].worker);
		free(trials[i].error);
	}
	free(trials);
}

/* Reads a row of TRIAL_COLS. */
static enum presso_status read_trial(struct store *st, sqlite3_stmt *q, struct store_trial *t)
{
	bool oom = false;
	memset(t, 0, sizeof *t);
	t->number = sqlite3_column_int64(q, 0);
	t->state = trial_state_of(sqlite3_column_text(q, 1));
	t->metrics.accuracy = col_f64(q, 2);
	t->metrics.test_accuracy = col_f64(q, 3);
	t->metrics.size_bytes =
		sqlite3_column_type(q, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 4);
	t->metrics.bops = col_f64(q, 5);
	t->metrics.latency_us = col_f64(q, 6);
	t->metrics.mean_bits = col_f64(q, 7);
	t->metrics.mean_prune = col_f64(q, 8);
	t->metrics.mean_rank = col_f64(q, 9);
	t->policy_json = col_dup(q, 10, &oom);
	const unsigned char *h = sqlite3_column_text(q, 11);
	snprintf(t->policy_sha256, sizeof t->policy_sha256, "%s", h ? (const char *)h : "");
	t->worker = col_dup(q, 12, &oom);
	t->started_at = col_f64(q, 13);
	t->heartbeat_at = col_f64(q, 14);
	t->ended_at = col_f64(q, 15);
	t->error = col_dup(q, 16, &oom);
	t->lost = sqlite3_column_int(q, 17) != 0;
	t->parent_trial = sqlite3_column_type(q, 18) == SQLITE_NULL ? 0 : sqlite3_column_int64(q, 18);
	t->metrics.n_images = sqlite3_column_int64(q, 19); /* NULL reads as 0: not known */
	const unsigned char *fid = sqlite3_column_text(q, 20);
	t->metrics.low_fidelity = fid && strcmp((const char *)fid, "low") == 0;
	t->metrics.low_accuracy = col_f64(q, 21);
	t->metrics.low_n_images = sqlite3_column_int64(q, 22);
	if (oom) {
		free(t->policy_json);
		free(t->worker);
		free(t->error);
		memset(t, 0, sizeof *t);
		return nomem(st);
	}
	return PRESSO_OK;
}

enum presso_status store_get_trial(struct store *st, int64_t study_id, int64_t number,
				   struct store_trial **out)
{
	sqlite3_stmt *q;
	*out = NULL;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_GET, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (!q)
		return status_fail(PRESSO_E_USAGE, "%s: the study has no trial %lld", st->path,
				   (long long)number);
	struct store_trial *t = malloc(sizeof *t);
	s = t ? read_trial(st, q, t) : nomem(st);
	stmt_finish(q);
	if (s != PRESSO_OK) {
		free(t);
		return s;
	}
	*out = t;
	return PRESSO_OK;
}

enum presso_status store_get_layers(struct store *st, int64_t study_id, int64_t number,
				    struct layer_choice **layers, int *n)
{
	const char *what = "reading a trial's layers";
	sqlite3_stmt *q;
	*layers = NULL;
	*n = 0;
	/* two passes over the rows: sizes, then copies into one block */
	for (int pass = 0; pass < 2; pass++) {
		size_t n_rows = 0, n_chars = 0;
		char *names = *layers ? (char *)(*layers + *n) : NULL;
		enum presso_status s;
		for (s = stmt_query(st, &q, STMT_LAYERS_GET, what, "ii", study_id, number); q;
		     s = stmt_next(st, &q, what)) {
			const char *name = (const char *)sqlite3_column_text(q, 0);
			size_t len = strlen(name ? name : "") + 1;
			if (pass == 1 && (int)n_rows < *n) {
				struct layer_choice *l = &(*layers)[n_rows];
				memcpy(names + n_chars, name ? name : "", len);
				const char *kind = (const char *)sqlite3_column_text(q, 5);
				*l = (struct layer_choice){
					.layer = names + n_chars,
					.bits = sqlite3_column_int(q, 1),
					.act_bits = sqlite3_column_int(q, 2),
					.bias_correction = sqlite3_column_int(q, 3) != 0,
					.prune = sqlite3_column_double(q, 4),
					.prune_kind = kind && strcmp(kind, "structured") == 0,
					.rank = sqlite3_column_double(q, 6),
				};
			}
			n_rows++;
			n_chars += len;
		}
		if (s != PRESSO_OK) {
			free(*layers);
			*layers = NULL;
			*n = 0;
			return s;
		}
		if (pass == 0) {
			if (n_rows == 0)
				return PRESSO_OK;
			*layers = malloc(n_rows * sizeof **layers + n_chars);
			if (!*layers)
				return nomem(st);
			*n = (int)n_rows;
		}
	}
	return PRESSO_OK;
}

/* Prepares "prefix [AND fragment] suffix" with the fragment's values bound to
 * parameters 2, 3, ...; the caller binds ?1 (the study) and finalizes *q. */
static enum presso_status prepare_with(struct store *st, const char *prefix, const struct expr *where,
				       const char *suffix, sqlite3_stmt **q)
{
	char *frag = NULL, *sql = NULL;
	double *params = NULL;
	int n_params = 0;
	enum presso_status s = PRESSO_OK;
	*q = NULL;
	if (where && (s = expr_sql(where, &frag, &params, &n_params)) != PRESSO_OK)
		return s;
	size_t len = strlen(prefix) + strlen(suffix) + (frag ? strlen(frag) : 0) + 16;
	if (!(sql = malloc(len))) {
		s = nomem(st);
		goto fail;
	}
	snprintf(sql, len, "%s%s%s%s", prefix, frag ? " AND " : "", frag ? frag : "", suffix);
	int rc = sqlite3_prepare_v2(st->db, sql, -1, q, NULL);
	/* ?1 is the study; the fragment's placeholders are numbered from 2 */
	for (int i = 0; rc == SQLITE_OK && i < n_params; i++)
		rc = sqlite3_bind_double(*q, 2 + i, params[i]);
	if (rc != SQLITE_OK) {
		s = db_fail(st, rc, "preparing a query");
		sqlite3_finalize(*q);
		*q = NULL;
	}
fail:
	free(sql);
	free(frag);
	free(params);
	return s;
}

enum presso_status store_list_trials(struct store *st, int64_t study_id, bool complete_only,
				     const struct expr *where, struct store_trial **out, int *n)
{
	sqlite3_stmt *stmt = NULL, *q;
	struct store_trial *list = NULL;
	int count = 0, cap = 0;
	*out = NULL;
	*n = 0;
	char prefix[512];
	snprintf(prefix, sizeof prefix,
		 "SELECT " TRIAL_COLS " FROM trials WHERE study_id = ?1%s%s",
		 complete_only ? " AND state = 'complete'" : "",
		 where ? " AND id IN (SELECT trial_id FROM v_trials WHERE study_id = ?1" : "");
	enum presso_status s = prepare_with(st, prefix, where, where ? ") ORDER BY number"
								     : " ORDER BY number",
					    &stmt);
	if (s != PRESSO_OK)
		return s;
	/* q walks the rows of stmt, which is finalized at the end */
	for (q = stmt, s = stmt_start(st, &q, "listing trials", "i", study_id); q;
	     s = stmt_next(st, &q, "listing trials")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			struct store_trial *nl = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		if ((s = read_trial(st, q, &list[count])) != PRESSO_OK)
			break;
		count++;
	}
	sqlite3_finalize(stmt);
	if (s != PRESSO_OK) {
		store_trials_free(list, count);
		return s;
	}
	*out = list;
	*n = count;
	return PRESSO_OK;
}

enum presso_status store_pick(struct store *st, int64_t study_id, const struct expr_pick *pick,
			      int64_t *number, bool *found)
{
	sqlite3_stmt *stmt = NULL, *q;
	*found = false;
	const char *col = expr_metric_name(pick->metric);
	char prefix[256], suffix[256];
	/* col is from expr's whitelist, never from the user's text */
	snprintf(prefix, sizeof prefix,
		 "SELECT trial FROM v_trials WHERE study_id = ?1 AND state = 'complete' AND "
		 "fidelity = 'full' AND %s IS NOT NULL",
		 col);
	/* ties: the other objectives, each in its direction (the first of the
	 * tied trials in this order is dominated by none of them), then the
	 * lowest number; a missing latency counts as the worst */
	snprintf(suffix, sizeof suffix,
		 " ORDER BY %s %s, accuracy DESC, size_bytes ASC, bops ASC, latency_us IS NULL, "
		 "latency_us ASC, trial LIMIT 1",
		 col, pick->maximize ? "DESC" : "ASC");
	enum presso_status s = prepare_with(st, prefix, pick->where, suffix, &stmt);
	if (s != PRESSO_OK)
		return s;
	q = stmt;
	if ((s = stmt_start(st, &q, "picking a trial", "i", study_id)) == PRESSO_OK && q) {
		*number = sqlite3_column_int64(q, 0);
		*found = true;
	}
	sqlite3_finalize(stmt);
	return s;
}

/* x rounded to 9 decimals as SQLite's round(x, 9) does (print, then read), so
 * that a drop of 16.01 - 15.01 compares equal to 1 here as in v_trials. */
static double round_9(double x)
{
	char buf[64];
	if (!isfinite(x))
		return x;
	snprintf(buf, sizeof buf, "%.9f", x);
	return strtod(buf, NULL);
}

void store_expr_values(const struct trial_metrics *m, const struct baseline *b, int64_t number,
		       double v[EXPR_METRIC_COUNT])
{
	double size = m->size_bytes > 0 ? (double)m->size_bytes : NAN;
	v[EXPR_ACCURACY] = m->accuracy;
	v[EXPR_TEST_ACCURACY] = m->test_accuracy;
	v[EXPR_ACCURACY_DROP] = round_9(b->accuracy - m->accuracy);
	v[EXPR_SIZE_BYTES] = size;
	v[EXPR_SIZE_KB] = size / 1024.0;
	v[EXPR_SIZE_MB] = size / 1048576.0;
	v[EXPR_RATIO] = (double)b->size_bytes / size;
	v[EXPR_BOPS] = m->bops;
	v[EXPR_LATENCY_US] = m->latency_us;
	v[EXPR_LATENCY_MS] = m->latency_us / 1000.0;
	v[EXPR_MEAN_BITS] = m->mean_bits;
	v[EXPR_MEAN_PRUNE] = m->mean_prune;
	v[EXPR_MEAN_RANK] = m->mean_rank;
	v[EXPR_TRIAL] = (double)number;
	v[EXPR_TUNED] = 0; /* the search tests its own (PTQ) trials */
	v[EXPR_N_IMAGES] = m->n_images > 0 ? (double)m->n_images : NAN;
}

/* --- Pareto --------------------------------------------------------------- */

static const struct {
	const char *name;
	enum pareto_dir dir;
} objective_table[OBJ_COUNT] = {
	[OBJ_ACCURACY] = {"accuracy", PARETO_MAXIMIZE},
	[OBJ_SIZE] = {"size", PARETO_MINIMIZE},
	[OBJ_BOPS] = {"bops", PARETO_MINIMIZE},
	[OBJ_LATENCY] = {"latency", PARETO_MINIMIZE},
};
_Static_assert(sizeof objective_table / sizeof objective_table[0] == OBJ_COUNT,
	       "every objective needs a row");

const char *store_objective_name(enum store_objective o)
{
	return (unsigned)o < OBJ_COUNT ? objective_table[o].name : "?";
}

enum pareto_dir store_objective_dir(enum store_objective o)
{
	return objective_table[o].dir;
}

enum presso_status store_parse_objectives(const char *list, enum store_objective *objs,
					  int *n_objs)
{
	static const struct {
		const char *name;
		enum store_objective o;
	} names[] = {
		{"accuracy", OBJ_ACCURACY}, {"acc", OBJ_ACCURACY},       {"size", OBJ_SIZE},
		{"size_bytes", OBJ_SIZE},   {"bops", OBJ_BOPS},           {"latency", OBJ_LATENCY},
		{"latency_us", OBJ_LATENCY},
	};
	*n_objs = 0;
	const char *p = list ? list : "";
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int k = -1;
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == len && strncmp(names[i].name, p, len) == 0)
				k = (int)names[i].o;
		if (k < 0)
			return status_fail(PRESSO_E_USAGE,
					   "--objectives: unknown objective '%.*s' (known: accuracy, "
					   "size, bops, latency)",
					   (int)(len < 40 ? len : 40), p);
		for (int j = 0; j < *n_objs; j++)
			if (objs[j] == (enum store_objective)k)
				return status_fail(PRESSO_E_USAGE,
						   "--objectives: '%s' is listed twice",
						   objective_table[k].name);
		if (*n_objs == PARETO_MAX_OBJECTIVES)
			return status_fail(PRESSO_E_USAGE, "--objectives: at most %d",
					   PARETO_MAX_OBJECTIVES);
		objs[(*n_objs)++] = (enum store_objective)k;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (*n_objs < 2)
		return status_fail(PRESSO_E_USAGE,
				   "--objectives: a front needs at least two objectives (e.g. "
				   "accuracy,size)");
	return PRESSO_OK;
}

static double objective_value(const struct store_trial *t, enum store_objective o)
{
	switch (o) {
	case OBJ_ACCURACY:
		return t->metrics.accuracy;
	case OBJ_SIZE:
		return t->metrics.size_bytes > 0 ? (double)t->metrics.size_bytes : NAN;
	case OBJ_BOPS:
		return t->metrics.bops;
	case OBJ_LATENCY:
		return t->metrics.latency_us;
	case OBJ_COUNT:
		break;
	}
	return NAN;
}

void store_pareto_result_free(struct pareto_result *r)
{
	if (!r)
		return;
	store_trials_free(r->front, r->n_front);
	free(r->n_same);
	memset(r, 0, sizeof *r);
}

struct front_key {
	double key; /* first objective, negated when maximised: ascending = best first */
	int64_t number;
	int index; /* into all[] */
	int point; /* into pts */
};

static int by_front_key(const void *pa, const void *pb)
{
	const struct front_key *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return (a->number > b->number) - (a->number < b->number);
}

enum presso_status store_pareto(struct store *st, int64_t study_id,
				const enum store_objective *objs, int n_objs,
				const struct expr *where, struct pareto_result *out)
{
	struct store_trial *all = NULL;
	int n_all = 0, n_pts = 0, n_front = 0;
	double *pts = NULL;
	int *which = NULL, *front = NULL, *kept_pt = NULL;
	struct front_key *keys = NULL;
	struct study_info info = {0};
	enum pareto_dir dir[PARETO_MAX_OBJECTIVES];
	memset(out, 0, sizeof *out);
	if (n_objs < 1 || n_objs > PARETO_MAX_OBJECTIVES)
		return status_fail(PRESSO_E_USAGE, "a front needs 1 to %d objectives",
				   PARETO_MAX_OBJECTIVES);
	enum presso_status s = study_by_id(st, study_id, &info);
	if (s != PRESSO_OK)
		return s;
	if ((s = store_list_trials(st, study_id, true, where, &all, &n_all)) != PRESSO_OK)
		goto fail;
	size_t n_alloc = n_all ? (size_t)n_all : 1;
	pts = malloc(n_alloc * (size_t)n_objs * sizeof *pts);
	which = malloc(n_alloc * sizeof *which);
	front = malloc(n_alloc * sizeof *front);
	keys = malloc(n_alloc * sizeof *keys);
	if (!pts || !which || !front || !keys) {
		s = nomem(st);
		goto fail;
	}
	for (int k = 0; k < n_objs; k++)
		dir[k] = objective_table[objs[k]].dir;
	/* trials missing an objective (latency not measured) cannot be placed;
	 * low-fidelity trials (a screen on a subset) are not results */
	for (int i = 0; i < n_all; i++) {
		bool ok = !all[i].metrics.low_fidelity;
		out->n_low_fidelity += all[i].metrics.low_fidelity;
		for (int k = 0; k < n_objs; k++) {
			pts[n_pts * n_objs + k] = objective_value(&all[i], objs[k]);
			ok &= !isnan(pts[n_pts * n_objs + k]);
		}
		if (ok)
			which[n_pts++] = i;
	}
	if ((s = pareto_front(pts, n_pts, n_objs, dir, front, &n_front)) != PRESSO_OK)
		goto fail;
	out->n_candidates = n_pts;
	/* reference and ideal points; the hypervolume is of the front */
	bool ref_ok = true;
	double box = 1;
	for (int k = 0; k < n_objs; k++) {
		const struct baseline *b = &info.baseline;
		switch (objs[k]) {
		case OBJ_ACCURACY:
			out->ref[k] = 100.0 / b->n_classes;
			out->ideal[k] = 100.0;
			break;
		case OBJ_SIZE:
			out->ref[k] = (double)b->size_bytes;
			break;
		case OBJ_BOPS:
			out->ref[k] = b->bops;
			break;
		case OBJ_LATENCY:
			out->ref[k] = b->latency_us;
			break;
		case OBJ_COUNT:
			break;
		}
		ref_ok &= !isnan(out->ref[k]);
		box *= fabs(out->ideal[k] - out->ref[k]);
	}
	if (ref_ok && n_objs <= 3) {
		double *fp = malloc((size_t)(n_front ? n_front : 1) * (size_t)n_objs * sizeof *fp);
		if (!fp) {
			s = nomem(st);
			goto fail;
		}
		for (int j = 0; j < n_front; j++)
			memcpy(&fp[j * n_objs], &pts[front[j] * n_objs], (size_t)n_objs * sizeof *fp);
		s = pareto_hypervolume(fp, n_front, n_objs, dir, out->ref, &out->hypervolume);
		free(fp);
		if (s != PRESSO_OK)
			goto fail;
		out->has_hypervolume = true;
		out->hypervolume_ratio = box > 0 ? out->hypervolume / box : NAN;
	}
	/* the front, best first by the first objective; move the trials out of all[] */
	for (int j = 0; j < n_front; j++) {
		double v = pts[front[j] * n_objs];
		keys[j] = (struct front_key){dir[0] == PARETO_MAXIMIZE ? -v : v,
					     all[which[front[j]]].number, which[front[j]], front[j]};
	}
	qsort(keys, (size_t)n_front, sizeof *keys, by_front_key);
	out->front = malloc((size_t)(n_front ? n_front : 1) * sizeof *out->front);
	out->n_same = calloc((size_t)(n_front ? n_front : 1), sizeof *out->n_same);
	kept_pt = malloc((size_t)(n_front ? n_front : 1) * sizeof *kept_pt);
	if (!out->front || !out->n_same || !kept_pt) {
		s = nomem(st);
		goto fail;
	}
	/* identical points collapse into the first trial (lowest number: keys
	 * with one value are in number order), which counts the others */
	for (int j = 0; j < n_front; j++) {
		int same = -1;
		for (int i = 0; i < out->n_front && same < 0; i++)
			if (memcmp(&pts[keys[j].point * n_objs], &pts[kept_pt[i] * n_objs],
				   (size_t)n_objs * sizeof *pts) == 0)
				same = i;
		if (same >= 0) {
			out->n_same[same]++;
			out->n_collapsed++;
			continue;
		}
		kept_pt[out->n_front] = keys[j].point;
		out->front[out->n_front++] = all[keys[j].index];
		memset(&all[keys[j].index], 0, sizeof all[0]);
	}
fail:
	if (s != PRESSO_OK)
		store_pareto_result_free(out);
	store_trials_free(all, n_all);
	free(kept_pt);
	free(keys);
	free(front);
	free(which);
	free(pts);
	store_study_info_free(&info);
	return s;
}

/* --- summaries ------------------------------------------------------------ */

void store_study_summaries_free(struct study_summary *s, int n)
{
	if (!s)
		return;
	for (int i = 0; i < n; i++)
		store_study_info_free(&s[i].info);
	free(s);
}

static enum presso_status summarize(struct store *st, struct study_summary *sum)
{
	const char *what = "summarizing a study";
	sqlite3_stmt *q;
	struct resume_info ri;
	int64_t id = sum->info.id;
	enum presso_status s = store_resume_info(st, id, &ri);
	if (s != PRESSO_OK)
		return s;
	sum->n_running = ri.n_running;
	sum->n_complete = ri.n_complete + ri.n_finetuned; /* every complete row */
	sum->n_finetuned = ri.n_finetuned;
	sum->n_failed = ri.n_failed;
	sum->best_accuracy = NAN;
	sum->small_size_bytes = -1;
	if ((s = stmt_query(st, &q, STMT_BEST_ACCURACY, what, "i", id)) != PRESSO_OK)
		return s;
	if (q) {
		sum->best_accuracy_trial = sqlite3_column_int64(q, 0);
		sum->best_accuracy = sqlite3_column_double(q, 1);
	}
	stmt_finish(q);
	/* the same rounding tolerance as accuracy_drop in v_trials */
	double near_fp32 = sum->info.baseline.accuracy - STORE_NEAR_FP32_POINTS - 1e-9;
	if ((s = stmt_query(st, &q, STMT_SMALLEST_NEAR_FP32, what, "if", id, near_fp32)) !=
	    PRESSO_OK)
		return s;
	if (q) {
		sum->small_trial = sqlite3_column_int64(q, 0);
		sum->small_size_bytes = sqlite3_column_int64(q, 1);
	}
	stmt_finish(q);
	if ((s = stmt_query(st, &q, STMT_LAST_ACTIVITY, what, "i", id)) != PRESSO_OK)
		return s;
	double last = q ? col_f64(q, 0) : NAN;
	stmt_finish(q);
	sum->last_activity = sum->info.created_at;
	if (last > sum->last_activity)
		sum->last_activity = last;
	if (sum->info.finished_at > sum->last_activity)
		sum->last_activity = sum->info.finished_at;
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	struct pareto_result pr;
	if ((s = store_pareto(st, id, objs, 2, NULL, &pr)) != PRESSO_OK)
		return s;
	sum->n_front = pr.n_front;
	store_pareto_result_free(&pr);
	return PRESSO_OK;
}

enum presso_status store_list_studies(struct store *st, struct study_summary **out, int *n)
{
	sqlite3_stmt *q;
	struct study_summary *list = NULL;
	int count = 0, cap = 0;
	*out = NULL;
	*n = 0;
	/* names first (one statement at a time), then each study in turn */
	enum presso_status s;
	char **names = NULL;
	for (s = stmt_query(st, &q, STMT_STUDY_NAMES, "listing studies", ""); q;
	     s = stmt_next(st, &q, "listing studies")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 8;
			char **nn = realloc(names, (size_t)cap * sizeof *nn);
			if (!nn) {
				s = nomem(st);
				break;
			}
			names = nn;
		}
		bool oom = false;
		names[count] = col_dup(q, 0, &oom);
		if (oom) {
			s = nomem(st);
			break;
		}
		count++;
	}
	stmt_finish(q);
	if (s == PRESSO_OK && count && !(list = calloc((size_t)count, sizeof *list)))
		s = nomem(st);
	for (int i = 0; s == PRESSO_OK && i < count; i++) {
		bool found = false;
		s = study_by_name(st, names[i], &list[i].info, &found);
		if (s == PRESSO_OK && found)
			s = summarize(st, &list[i]);
	}
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	if (s != PRESSO_OK) {
		store_study_summaries_free(list, count);
		return s;
	}
	*out = list;
	*n = count;
	return PRESSO_OK;
}

/* --- fine-tuned trials ----------------------------------------------------- */

void store_finetune_info_free(struct finetune_info *f)
{
	if (!f)
		return;
	free(f->source);
	free(f->settings_json);
	f->source = f->settings_json = NULL;
}

enum presso_status store_get_finetune(struct store *st, int64_t study_id, int64_t number,
				      struct finetune_info *out, bool *found)
{
	sqlite3_stmt *q;
	memset(out, 0, sizeof *out);
	*found = false;
	enum presso_status s = stmt_query(st, &q, STMT_FINETUNE_GET, "reading a fine-tune", "ii",
					  study_id, number);
	if (s != PRESSO_OK || !q)
		return s;
	bool oom = false;
	out->source = col_dup(q, 0, &oom);
	out->settings_json = col_dup(q, 1, &oom);
	out->steps = sqlite3_column_int64(q, 2);
	out->epochs = sqlite3_column_int64(q, 3);
	out->lr = col_f64(q, 4);
	out->kd_weight = col_f64(q, 5);
	out->temperature = col_f64(q, 6);
	out->train_seconds = col_f64(q, 7);
	out->images_per_s = col_f64(q, 8);
	const unsigned char *h = sqlite3_column_text(q, 9);
	snprintf(out->model_sha256, sizeof out->model_sha256, "%s", h ? (const char *)h : "");
	out->model_bytes = sqlite3_column_int64(q, 10);
	out->parent = sqlite3_column_int64(q, 11);
	stmt_finish(q);
	if (oom || !out->source || !out->settings_json) {
		store_finetune_info_free(out);
		return nomem(st);
	}
	*found = true;
	return PRESSO_OK;
}

enum presso_status store_get_finetune_model(struct store *st, int64_t study_id, int64_t number,
					    void **bytes, size_t *n_bytes)
{
	sqlite3_stmt *q;
	*bytes = NULL;
	*n_bytes = 0;
	enum presso_status s = stmt_query(st, &q, STMT_FINETUNE_MODEL, "reading a tuned model",
					  "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (!q)
		return status_fail(PRESSO_E_USAGE,
				   "%s: trial %lld is not a fine-tuned trial: it has no tuned model",
				   st->path, (long long)number);
	const void *blob = sqlite3_column_blob(q, 0);
	size_t n = (size_t)sqlite3_column_bytes(q, 0);
	void *copy = malloc(n ? n : 1);
	if (copy && n)
		memcpy(copy, blob, n);
	stmt_finish(q);
	if (!copy || (n && !blob)) {
		free(copy);
		return nomem(st);
	}
	*bytes = copy;
	*n_bytes = n;
	return PRESSO_OK;
}

enum presso_status store_finetuned_parents(struct store *st, int64_t study_id, int64_t **parents,
					   int *n)
{
	sqlite3_stmt *q;
	int64_t *list = NULL;
	int count = 0, cap = 0;
	enum presso_status s;
	*parents = NULL;
	*n = 0;
	for (s = stmt_query(st, &q, STMT_TUNED_PARENTS, "listing fine-tuned trials", "i", study_id);
	     q; s = stmt_next(st, &q, "listing fine-tuned trials")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 8;
			int64_t *nl = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		list[count++] = sqlite3_column_int64(q, 0);
	}
	stmt_finish(q);
	if (s != PRESSO_OK) {
		free(list);
		return s;
	}
	*parents = list;
	*n = count;
	return PRESSO_OK;
}
