/* store_trials.c - studies and the changes of a trial's state: creating or
 * resuming a study, beginning, heartbeating, completing and failing trials,
 * requeueing lost ones, search state, and after a search the test accuracy,
 * measured latency and abandoned trials. Each state change is one
 * transaction; the resume rules these functions keep are at the top of
 * store.c, the statements' SQL in its sql_text[].
 */
#define _POSIX_C_SOURCE 200809L
#include "db/store_internal.h"
#include "base/json_get.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* trials.state, by enum trial_state */
static const char *const state_names[TRIAL_STATE_COUNT] = {
	[TRIAL_RUNNING] = "running",
	[TRIAL_COMPLETE] = "complete",
	[TRIAL_FAILED] = "failed",
};
_Static_assert(sizeof state_names / sizeof state_names[0] == TRIAL_STATE_COUNT,
	       "every trial state needs a name");

/* trial_layers.prune_kind, by struct layer_choice's prune_kind */
static const char *const prune_kinds[] = {"unstructured", "structured"};

const char *store_trial_state_str(enum trial_state s)
{
	return (unsigned)s < TRIAL_STATE_COUNT ? state_names[s] : "?";
}

enum trial_state trial_state_of(const unsigned char *text)
{
	for (int i = 0; i < TRIAL_STATE_COUNT; i++)
		if (text && strcmp((const char *)text, state_names[i]) == 0)
			return (enum trial_state)i;
	return TRIAL_FAILED; /* the schema's CHECK allows nothing else */
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static enum presso_status writable(const struct store *st)
{
	if (st->readonly)
		return status_fail(PRESSO_E_IO, "%s: the store was opened read-only", st->path);
	return PRESSO_OK;
}

/* --- studies -------------------------------------------------------------- */

enum presso_status store_canonical_json(const char *json, char **canonical,
					char hash[SHA256_HEX_BYTES])
{
	if (canonical)
		*canonical = NULL;
	bool oom;
	cJSON *doc = json_parse(json, NULL, false, &oom);
	if (!doc && oom)
		return status_fail(PRESSO_E_NOMEM, "out of memory reading JSON");
	if (!doc)
		return status_fail(PRESSO_E_CONFIG, "not valid JSON%s%.40s",
				   json ? " near: " : "", json && cJSON_GetErrorPtr() ?
				   cJSON_GetErrorPtr() : "");
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory printing JSON");
	sha256_hex(text, strlen(text), hash);
	char *copy = canonical ? strdup(text) : NULL;
	cJSON_free(text);
	if (canonical && !copy)
		return status_fail(PRESSO_E_NOMEM, "out of memory printing JSON");
	if (canonical)
		*canonical = copy;
	return PRESSO_OK;
}

void store_study_info_free(struct study_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->config_json);
	free(info->config_sha256);
	free(info->model_path);
	free(info->model_sha256);
	free(info->dataset);
	free(info->presso_version);
	free(info->status);
	memset(info, 0, sizeof *info);
}

/* Reads a row of STUDY_COLS. */
static enum presso_status read_study(struct store *st, sqlite3_stmt *q, struct study_info *o)
{
	bool oom = false;
	memset(o, 0, sizeof *o);
	o->id = sqlite3_column_int64(q, 0);
	o->name = col_dup(q, 1, &oom);
	o->config_json = col_dup(q, 2, &oom);
	o->config_sha256 = col_dup(q, 3, &oom);
	o->model_path = col_dup(q, 4, &oom);
	o->model_sha256 = col_dup(q, 5, &oom);
	o->dataset = col_dup(q, 6, &oom);
	o->seed = (uint64_t)sqlite3_column_int64(q, 7);
	o->baseline.accuracy = col_f64(q, 8);
	o->baseline.test_accuracy = col_f64(q, 9);
	o->baseline.size_bytes = sqlite3_column_int64(q, 10);
	o->baseline.bops = col_f64(q, 11);
	o->baseline.latency_us = col_f64(q, 12);
	o->baseline.n_classes = sqlite3_column_int(q, 13);
	o->presso_version = col_dup(q, 14, &oom);
	o->status = col_dup(q, 15, &oom);
	o->created_at = col_f64(q, 16);
	o->finished_at = col_f64(q, 17);
	if (oom) {
		store_study_info_free(o);
		return nomem(st);
	}
	return PRESSO_OK;
}

/* Looks a study up by name; *found false if there is none. */
enum presso_status study_by_name(struct store *st, const char *name, struct study_info *o,
				 bool *found)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_STUDY_BY_NAME, "reading a study", "t", name);
	if (s != PRESSO_OK)
		return s;
	*found = q != NULL;
	if (q)
		s = read_study(st, q, o);
	stmt_finish(q);
	return s;
}

/* Looks a study up by row id; a missing one is an error. */
enum presso_status study_by_id(struct store *st, int64_t id, struct study_info *o)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_STUDY_BY_ID, "reading a study", "i", id);
	if (s != PRESSO_OK)
		return s;
	s = q ? read_study(st, q, o)
	      : status_fail(PRESSO_E_RUNTIME, "%s: no study with id %lld", st->path, (long long)id);
	stmt_finish(q);
	return s;
}

enum presso_status store_find_study(struct store *st, const char *name, struct study_info *out)
{
	bool found = false;
	memset(out, 0, sizeof *out);
	enum presso_status s = study_by_name(st, name, out, &found);
	if (s != PRESSO_OK || found)
		return s;
	/* list what is there */
	sqlite3_stmt *q;
	char list[768];
	size_t used = 0;
	int n = 0;
	list[0] = '\0';
	for (s = stmt_query(st, &q, STMT_STUDY_NAMES, "listing studies", ""); q;
	     s = stmt_next(st, &q, "listing studies")) {
		const char *nm = (const char *)sqlite3_column_text(q, 0);
		if (used < sizeof list - 8)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s'",
						 n ? ", " : "", nm ? nm : "");
		n++;
	}
	if (s != PRESSO_OK)
		return s;
	if (used >= sizeof list - 8)
		snprintf(list + sizeof list - 8, 8, "...");
	if (n == 0)
		return status_fail(PRESSO_E_USAGE, "%s: no study '%s' (the database holds no studies)",
				   st->path, name);
	return status_fail(PRESSO_E_USAGE, "%s: no study '%s' (studies: %s)", st->path, name, list);
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > STORE_NAME_MAX)
		return false;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

static bool hex64_ok(const char *h)
{
	if (!h || strlen(h) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

/* Finds the first place where two JSON documents differ: "" (the whole
 * document), "search.bits", "layers[2]". False if they are equal. */
static bool json_diff(const cJSON *a, const cJSON *b, char *path, size_t cap)
{
	if (cJSON_Compare(a, b, true))
		return false;
	size_t used = strlen(path);
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		for (int pass = 0; pass < 2; pass++) {
			const cJSON *x = pass == 0 ? a : b, *y = pass == 0 ? b : a;
			for (const cJSON *it = x->child; it; it = it->next) {
				const cJSON *other = cJSON_GetObjectItemCaseSensitive(y, it->string);
				if (other && cJSON_Compare(it, other, true))
					continue;
				snprintf(path + used, cap - used, "%s%s", used ? "." : "", it->string);
				if (other)
					json_diff(it, other, path, cap);
				return true;
			}
		}
	} else if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
		for (int i = 0; i < na || i < nb; i++) {
			const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
			if (x && y && cJSON_Compare(x, y, true))
				continue;
			snprintf(path + used, cap - used, "[%d]", i);
			if (x && y)
				json_diff(x, y, path, cap);
			return true;
		}
	}
	return true;
}

/* Why a stored study does not match a spec ("" if it matches). */
static void spec_mismatch(const struct study_info *have, const struct study_spec *want,
			  const char *want_hash, char *why, size_t cap)
{
	why[0] = '\0';
	if (strcmp(have->config_sha256, want_hash) != 0) {
		char path[256] = "";
		cJSON *a = cJSON_Parse(have->config_json), *b = cJSON_Parse(want->config_json);
		if (a && b && json_diff(a, b, path, sizeof path) && path[0])
			snprintf(why, cap, "its config differs at '%s'", path);
		else
			snprintf(why, cap, "its config differs");
		cJSON_Delete(a);
		cJSON_Delete(b);
	} else if (strcmp(have->model_sha256, want->model_sha256) != 0) {
		snprintf(why, cap, "its model file has changed (sha256 %.12s... then, %.12s... now)",
			 have->model_sha256, want->model_sha256);
	} else if (strcmp(have->dataset, want->dataset) != 0) {
		snprintf(why, cap, "its dataset differs ('%s' then, '%s' now)", have->dataset,
			 want->dataset);
	} else if (have->seed != want->seed) {
		snprintf(why, cap, "its seed differs (%llu then, %llu now)",
			 (unsigned long long)have->seed, (unsigned long long)want->seed);
	}
}

static enum presso_status check_spec(const struct store *st, const struct study_spec *sp)
{
	const struct baseline *b = &sp->baseline;
	if (!name_ok(sp->name))
		return status_fail(PRESSO_E_CONFIG,
				   "study name '%.*s' must be 1 to %d bytes without control "
				   "characters",
				   STORE_NAME_MAX, sp->name ? sp->name : "", STORE_NAME_MAX);
	if (!hex64_ok(sp->model_sha256))
		return status_fail(PRESSO_E_CONFIG, "study '%s': model sha256 must be 64 lowercase "
						    "hex digits", sp->name);
	if (!sp->model_path || !sp->dataset)
		return status_fail(PRESSO_E_CONFIG, "study '%s': model path and dataset are required",
				   sp->name);
	if (!(b->accuracy >= 0 && b->accuracy <= 100) ||
	    !(isnan(b->test_accuracy) || (b->test_accuracy >= 0 && b->test_accuracy <= 100)) ||
	    b->size_bytes <= 0 || !(b->bops >= 0) || !isfinite(b->bops) ||
	    !(isnan(b->latency_us) || (b->latency_us >= 0 && isfinite(b->latency_us))) ||
	    b->n_classes < 2)
		return status_fail(PRESSO_E_CONFIG,
				   "study '%s': bad FP32 baseline (accuracy %g %%, test %g %%, %lld "
				   "bytes, %g BOPs, %g us, %d classes)",
				   sp->name, b->accuracy, b->test_accuracy, (long long)b->size_bytes,
				   b->bops, b->latency_us, b->n_classes);
	(void)st;
	return PRESSO_OK;
}

static enum presso_status insert_study(struct store *st, const struct study_spec *sp,
				       const char *name, const char *config, const char *hash,
				       int64_t *id)
{
	const struct baseline *b = &sp->baseline;
	enum presso_status s = stmt_run(
		st, STMT_STUDY_INSERT, "creating a study", "ttttttiffiffitf", name, config, hash,
		sp->model_path, sp->model_sha256, sp->dataset, (int64_t)sp->seed, b->accuracy,
		b->test_accuracy, b->size_bytes, b->bops, b->latency_us, (int64_t)b->n_classes,
		PRESSO_VERSION, now_s());
	if (s != PRESSO_OK)
		return s;
	*id = sqlite3_last_insert_rowid(st->db);
	return PRESSO_OK;
}

enum presso_status store_create_or_resume_study(struct store *st, const struct study_spec *spec,
						bool new_study, int64_t *study_id, bool *resumed,
						char name_out[STORE_NAME_MAX + 1])
{
	char hash[SHA256_HEX_BYTES];
	char *config = NULL;
	char name[STORE_NAME_MAX + 16];
	struct study_info have = {0};
	bool found = false;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if ((s = check_spec(st, spec)) != PRESSO_OK)
		return s;
	if ((s = store_canonical_json(spec->config_json, &config, hash)) != PRESSO_OK)
		return status_wrap(s, "study '%s': config", spec->name);
	*resumed = false;
	snprintf(name, sizeof name, "%s", spec->name);
	if ((s = tx_begin(st)) != PRESSO_OK)
		goto fail;
	if ((s = study_by_name(st, name, &have, &found)) != PRESSO_OK)
		goto rollback;
	if (found && !new_study) {
		char why[512];
		spec_mismatch(&have, spec, hash, why, sizeof why);
		if (why[0]) {
			s = status_fail(PRESSO_E_CONFIG,
					"%s: study '%s' exists and %s; resume it with the same "
					"settings, or ask for a new study (presso search --new-study)",
					st->path, name, why);
			goto rollback;
		}
		s = stmt_run(st, STMT_STUDY_REOPEN, "resuming a study", "i", have.id);
		if (s != PRESSO_OK)
			goto rollback;
		*study_id = have.id;
		*resumed = true;
	} else {
		/* new: the name as given if free, else NAME-2, NAME-3, ... */
		for (int k = 2; found; k++) {
			store_study_info_free(&have);
			if (strlen(spec->name) + 1 + (size_t)snprintf(NULL, 0, "%d", k) >
			    STORE_NAME_MAX) {
				s = status_fail(PRESSO_E_CONFIG,
						"study name '%s' is taken and too long to number",
						spec->name);
				goto rollback;
			}
			snprintf(name, sizeof name, "%s-%d", spec->name, k);
			if ((s = study_by_name(st, name, &have, &found)) != PRESSO_OK)
				goto rollback;
		}
		if ((s = insert_study(st, spec, name, config, hash, study_id)) != PRESSO_OK)
			goto rollback;
	}
rollback:
	s = tx_end(st, s);
fail:
	if (s == PRESSO_OK && name_out) {
		PRESSO_CHECK(strlen(name) <= STORE_NAME_MAX);
		memcpy(name_out, name, strlen(name) + 1);
	}
	store_study_info_free(&have);
	free(config);
	return s;
}

enum presso_status store_finish_study(struct store *st, int64_t study_id)
{
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	return stmt_run(st, STMT_STUDY_FINISH, "finishing a study", "fi", now_s(), study_id);
}

/* --- trials --------------------------------------------------------------- */

void store_policies_free(struct store_policy *p, int n)
{
	if (!p)
		return;
	for (int i = 0; i < n; i++)
		free(p[i].policy_json);
	free(p);
}

enum presso_status store_begin_trial(struct store *st, int64_t study_id, const char *policy_json,
				     const char *policy_hash, const char *worker,
				     int64_t *number)
{
	char hash[SHA256_HEX_BYTES];
	char *canonical = NULL;
	struct study_info info = {0};
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if ((s = store_canonical_json(policy_json, &canonical, hash)) != PRESSO_OK)
		return status_wrap(s, "%s: policy", st->path);
	if (policy_hash) {
		/* the caller's identity of the policy (the search hashes the
		 * canonical form of the model it makes): 64 lowercase hex digits */
		size_t n = strspn(policy_hash, "0123456789abcdef");
		if (n != SHA256_HEX_BYTES - 1 || policy_hash[n] != '\0') {
			s = status_fail(PRESSO_E_RUNTIME,
					"%s: policy hash '%.70s' is not a SHA-256 in hex (64 digits "
					"0-9a-f)",
					st->path, policy_hash);
			goto fail;
		}
		memcpy(hash, policy_hash, SHA256_HEX_BYTES);
	}
	if ((s = tx_begin(st)) != PRESSO_OK)
		goto fail;
	s = study_by_id(st, study_id, &info);
	sqlite3_stmt *q = NULL;
	if (s == PRESSO_OK)
		s = stmt_query(st, &q, STMT_NEXT_NUMBER, "numbering a trial", "i", study_id);
	if (q) /* an aggregate: always one row */
		*number = sqlite3_column_int64(q, 0);
	stmt_finish(q);
	double t = now_s();
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_TRIAL_INSERT, "starting a trial", "iitttff", study_id,
			     *number, canonical, hash, worker ? worker : "", t, t);
	s = tx_end(st, s);
fail:
	store_study_info_free(&info);
	free(canonical);
	return s;
}

/* Explains why a trial cannot change state: missing, or not running. */
static enum presso_status not_running(struct store *st, int64_t study_id, int64_t number)
{
	sqlite3_stmt *q;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_STATE, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (!q)
		s = status_fail(PRESSO_E_RUNTIME, "%s: study %lld has no trial %lld", st->path,
				(long long)study_id, (long long)number);
	else
		s = status_fail(PRESSO_E_RUNTIME, "%s: trial %lld is %s, not running%s%s", st->path,
				(long long)number, (const char *)sqlite3_column_text(q, 1),
				sqlite3_column_text(q, 2) ? ": " : "",
				sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2)
							  : "");
	stmt_finish(q);
	return s;
}

/* The row id of a running trial (inside a transaction). */
static enum presso_status running_trial_id(struct store *st, int64_t study_id, int64_t number,
					   int64_t *id)
{
	sqlite3_stmt *q;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_STATE, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	bool running = q && trial_state_of(sqlite3_column_text(q, 1)) == TRIAL_RUNNING;
	if (running)
		*id = sqlite3_column_int64(q, 0);
	stmt_finish(q);
	return running ? PRESSO_OK : not_running(st, study_id, number);
}

enum presso_status store_heartbeat(struct store *st, int64_t study_id, int64_t number)
{
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_HEARTBEAT, "updating a heartbeat", "fii", now_s(), study_id,
			     number);
	if (s != PRESSO_OK)
		return s;
	return sqlite3_changes(st->db) == 1 ? PRESSO_OK : not_running(st, study_id, number);
}

static enum presso_status check_metrics(const struct store *st, int64_t number,
					const struct trial_metrics *m)
{
	const char *bad = NULL;
	double v = 0;
	if (!(m->accuracy >= 0 && m->accuracy <= 100))
		bad = "accuracy (percent, 0..100)", v = m->accuracy;
	else if (!isnan(m->test_accuracy) && !(m->test_accuracy >= 0 && m->test_accuracy <= 100))
		bad = "test_accuracy (percent, 0..100 or NaN)", v = m->test_accuracy;
	else if (m->size_bytes <= 0)
		bad = "size_bytes (> 0)", v = (double)m->size_bytes;
	else if (!(m->bops >= 0) || !isfinite(m->bops))
		bad = "bops (>= 0)", v = m->bops;
	else if (!isnan(m->latency_us) && !(m->latency_us >= 0 && isfinite(m->latency_us)))
		bad = "latency_us (>= 0 or NaN)", v = m->latency_us;
	else if (isinf(m->mean_bits) || isinf(m->mean_prune) || isinf(m->mean_rank))
		bad = "mean_bits/mean_prune/mean_rank (finite or NaN)", v = INFINITY;
	else if (m->n_images < 0)
		bad = "n_images (>= 1, or 0: not known)", v = (double)m->n_images;
	else if (m->low_n_images < 0 ||
		 (m->low_n_images > 0 && !(m->low_accuracy >= 0 && m->low_accuracy <= 100)))
		bad = "low-fidelity pass (accuracy 0..100 over >= 1 images)", v = m->low_accuracy;
	else if (m->low_fidelity && m->low_n_images <= 0)
		bad = "low-fidelity trial without its pass", v = (double)m->low_n_images;
	if (bad)
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad %s: %g", st->path,
				   (long long)number, bad, v);
	return PRESSO_OK;
}

static enum presso_status check_layers(const struct store *st, int64_t number,
				       const struct layer_choice *l, int n)
{
	for (int i = 0; i < n; i++) {
		const char *bad = NULL;
		if (!l[i].layer || !*l[i].layer)
			bad = "an empty name";
		else if (l[i].bits < 1 || l[i].bits > 32)
			bad = "bits outside 1..32";
		else if (l[i].act_bits < 1 || l[i].act_bits > 32)
			bad = "act_bits outside 1..32";
		else if (!(l[i].prune >= 0 && l[i].prune < 1))
			bad = "prune outside [0, 1)";
		else if (l[i].prune_kind != 0 && l[i].prune_kind != 1)
			bad = "prune_kind not 0 (unstructured) or 1 (structured)";
		else if (!(l[i].rank > 0 && l[i].rank <= 1))
			bad = "rank outside (0, 1]";
		if (bad)
			return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: layer %d ('%s') has %s",
					   st->path, (long long)number, i,
					   l[i].layer ? l[i].layer : "", bad);
	}
	return PRESSO_OK;
}

static enum presso_status put_state(struct store *st, int64_t study_id, const struct store_kv *kv,
				    int n, int64_t trial_number)
{
	enum presso_status s = PRESSO_OK;
	double t = now_s();
	/* written on its own: no trial number */
	const int64_t *trial = trial_number > 0 ? &trial_number : NULL;
	for (int i = 0; i < n && s == PRESSO_OK; i++) {
		if (!kv[i].key || !*kv[i].key)
			return status_fail(PRESSO_E_CONFIG, "%s: a search-state key is empty",
					   st->path);
		s = stmt_run(st, STMT_STATE_PUT, "writing search state", "itvIf", study_id,
			     kv[i].key, kv[i].value, kv[i].n_bytes, (int)kv[i].is_text, trial, t);
	}
	return s;
}

enum presso_status store_complete_trial(struct store *st, int64_t study_id, int64_t number,
					const struct trial_metrics *m,
					const struct layer_choice *layers, int n_layers,
					const struct store_kv *state, int n_state)
{
	int64_t id = 0;
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = check_metrics(st, number, m);
	if (s == PRESSO_OK)
		s = check_layers(st, number, layers, n_layers);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	s = running_trial_id(st, study_id, number, &id);
	double t = now_s();
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_COMPLETE, "completing a trial", "ffffifffffItfIi", t, t,
			     m->accuracy, m->test_accuracy, m->size_bytes, m->bops, m->latency_us,
			     m->mean_bits, m->mean_prune, m->mean_rank,
			     m->n_images > 0 ? &m->n_images : NULL,
			     m->low_fidelity ? "low" : "full",
			     m->low_n_images > 0 ? m->low_accuracy : NAN,
			     m->low_n_images > 0 ? &m->low_n_images : NULL, id);
	for (int i = 0; i < n_layers && s == PRESSO_OK; i++) {
		const struct layer_choice *l = &layers[i];
		s = stmt_run(st, STMT_LAYER_INSERT, "storing a trial's layers", "iitiiiftf", id,
			     (int64_t)i, l->layer, (int64_t)l->bits, (int64_t)l->act_bits,
			     (int64_t)(l->bias_correction ? 1 : 0), l->prune,
			     prune_kinds[l->prune_kind], l->rank);
	}
	if (s == PRESSO_OK)
		s = put_state(st, study_id, state, n_state, number);
	return tx_end(st, s);
}

/* --- fine-tuned trials ----------------------------------------------------- */

enum presso_status store_add_finetuned(struct store *st, int64_t study_id,
				       const struct finetune_record *f,
				       const struct trial_metrics *m,
				       const struct layer_choice *layers, int n_layers,
				       const char *worker, int64_t *number)
{
	sqlite3_stmt *q = NULL;
	char *policy = NULL;
	char hash[SHA256_HEX_BYTES] = "", model_hash[SHA256_HEX_BYTES];
	int64_t next = 0;
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = check_metrics(st, f->parent, m);
	if (s == PRESSO_OK)
		s = check_layers(st, f->parent, layers, n_layers);
	if (s == PRESSO_OK && f->rescored &&
	    !(f->split_accuracy >= 0 && f->split_accuracy <= 100 && m->n_images > 0))
		s = status_fail(PRESSO_E_CONFIG, "%s: a fine-tune of trial %lld: bad re-score "
				"(split accuracy %g %%, %lld images)", st->path,
				(long long)f->parent, f->split_accuracy, (long long)m->n_images);
	if (s == PRESSO_OK && (!f->source || !f->settings_json || !f->model || !f->model_bytes))
		s = status_fail(PRESSO_E_CONFIG, "%s: a fine-tune of trial %lld without %s",
				st->path, (long long)f->parent,
				!f->model || !f->model_bytes ? "its model" : "its settings");
	if (s != PRESSO_OK)
		return s;
	sha256_hex(f->model, f->model_bytes, model_hash);
	if ((s = tx_begin(st)) != PRESSO_OK)
		return s;
	/* the parent: a complete PTQ trial of the study, whose policy the row takes */
	s = stmt_query(st, &q, STMT_TRIAL_GET, "reading a trial", "ii", study_id, f->parent);
	if (s == PRESSO_OK && !q)
		s = status_fail(PRESSO_E_USAGE, "%s: the study has no trial %lld", st->path,
				(long long)f->parent);
	if (s == PRESSO_OK && trial_state_of(sqlite3_column_text(q, 1)) != TRIAL_COMPLETE)
		s = status_fail(PRESSO_E_USAGE, "%s: trial %lld is %s; only a complete trial can be "
				"fine-tuned", st->path, (long long)f->parent,
				sqlite3_column_text(q, 1));
	if (s == PRESSO_OK && sqlite3_column_type(q, 18) != SQLITE_NULL)
		s = status_fail(PRESSO_E_USAGE, "%s: trial %lld is itself fine-tuned (from trial "
				"%lld); tune its PTQ trial", st->path, (long long)f->parent,
				(long long)sqlite3_column_int64(q, 18));
	if (s == PRESSO_OK) {
		bool oom = false;
		policy = col_dup(q, 10, &oom);
		const unsigned char *h = sqlite3_column_text(q, 11);
		snprintf(hash, sizeof hash, "%s", h ? (const char *)h : "");
		if (oom || !policy)
			s = nomem(st);
	}
	stmt_finish(q);
	q = NULL;
	if (s == PRESSO_OK &&
	    (s = stmt_query(st, &q, STMT_NEXT_NUMBER, "numbering a trial", "i", study_id)) ==
		    PRESSO_OK && q)
		next = sqlite3_column_int64(q, 0);
	stmt_finish(q);
	double t = now_s();
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_TUNED_INSERT, "storing a fine-tuned trial", "iitttfffffifffffiIf",
			     study_id, next, policy, hash, worker ? worker : "",
			     t - f->train_seconds, t, t, m->accuracy, m->test_accuracy,
			     m->size_bytes, m->bops, m->latency_us, m->mean_bits, m->mean_prune,
			     m->mean_rank, f->parent, m->n_images > 0 ? &m->n_images : NULL,
			     f->rescored ? f->split_accuracy : NAN);
	int64_t id = s == PRESSO_OK ? sqlite3_last_insert_rowid(st->db) : 0;
	for (int i = 0; i < n_layers && s == PRESSO_OK; i++) {
		const struct layer_choice *l = &layers[i];
		s = stmt_run(st, STMT_LAYER_INSERT, "storing a trial's layers", "iitiiiftf", id,
			     (int64_t)i, l->layer, (int64_t)l->bits, (int64_t)l->act_bits,
			     (int64_t)(l->bias_correction ? 1 : 0), l->prune,
			     prune_kinds[l->prune_kind], l->rank);
	}
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_FINETUNE_INSERT, "storing a fine-tune", "ittiifffffvt", id,
			     f->source, f->settings_json, f->steps, f->epochs, f->lr, f->kd_weight,
			     f->temperature, f->train_seconds, f->images_per_s, f->model,
			     f->model_bytes, 0, model_hash);
	free(policy);
	s = tx_end(st, s);
	if (s == PRESSO_OK && number)
		*number = next;
	return s;
}

enum presso_status store_fail_trial(struct store *st, int64_t study_id, int64_t number,
				    const char *error)
{
	int64_t id = 0;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	s = running_trial_id(st, study_id, number, &id);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_FAIL, "failing a trial", "fti", now_s(),
			     error && *error ? error : "failed (no message)", id);
	return tx_end(st, s);
}

enum presso_status store_requeue_stale(struct store *st, int64_t study_id, double stale_after_s,
				       int *n_marked, struct store_policy **policies,
				       int *n_policies)
{
	sqlite3_stmt *q = NULL;
	struct store_policy *list = NULL;
	int n = 0, cap = 0;
	*policies = NULL;
	*n_policies = 0;
	if (n_marked)
		*n_marked = 0;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if (!(stale_after_s >= 0))
		return status_fail(PRESSO_E_CONFIG, "stale-trial threshold %g s must be >= 0",
				   stale_after_s);
	if ((s = tx_begin(st)) != PRESSO_OK)
		return s;
	char why[128];
	double t = now_s();
	snprintf(why, sizeof why, "worker lost: no heartbeat for %g s or more (found on resume)",
		 stale_after_s);
	s = stmt_run(st, STMT_MARK_LOST, "marking lost trials", "ftif", t, why, study_id,
		     t - stale_after_s);
	if (s != PRESSO_OK)
		goto done;
	if (n_marked)
		*n_marked = sqlite3_changes(st->db);
	for (s = stmt_query(st, &q, STMT_REQUEUE_LIST, "listing lost trials", "i", study_id); q;
	     s = stmt_next(st, &q, "listing lost trials")) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			struct store_policy *nl = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		bool oom = false;
		struct store_policy *p = &list[n++];
		p->lost_trial = sqlite3_column_int64(q, 0);
		p->policy_json = col_dup(q, 1, &oom);
		const unsigned char *h = sqlite3_column_text(q, 2);
		snprintf(p->policy_sha256, sizeof p->policy_sha256, "%s", h ? (const char *)h : "");
		if (oom || !p->policy_json) {
			s = nomem(st);
			break;
		}
	}
	stmt_finish(q);
done:
	s = tx_end(st, s);
	if (s != PRESSO_OK) {
		store_policies_free(list, n);
		if (n_marked)
			*n_marked = 0;
		return s;
	}
	*policies = list;
	*n_policies = n;
	return PRESSO_OK;
}

/* --- what a resume reads -------------------------------------------------- */

enum presso_status store_has_policy(struct store *st, int64_t study_id, const char *policy_hash,
				    bool *found)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_HAS_POLICY, "looking a policy up", "it",
					  study_id, policy_hash);
	if (s != PRESSO_OK)
		return s;
	*found = q && sqlite3_column_int(q, 0) != 0;
	stmt_finish(q);
	return PRESSO_OK;
}

enum presso_status store_policy_hashes(struct store *st, int64_t study_id,
				       char (**hashes)[SHA256_HEX_BYTES], int *n)
{
	sqlite3_stmt *q;
	char(*list)[SHA256_HEX_BYTES] = NULL;
	int count = 0, cap = 0;
	*hashes = NULL;
	*n = 0;
	enum presso_status s;
	for (s = stmt_query(st, &q, STMT_HASHES, "listing policy hashes", "i", study_id); q;
	     s = stmt_next(st, &q, "listing policy hashes")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			char(*nl)[SHA256_HEX_BYTES] = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		const unsigned char *h = sqlite3_column_text(q, 0);
		snprintf(list[count++], SHA256_HEX_BYTES, "%s", h ? (const char *)h : "");
	}
	stmt_finish(q);
	if (s != PRESSO_OK) {
		free(list);
		return s;
	}
	*hashes = list;
	*n = count;
	return PRESSO_OK;
}

enum presso_status store_resume_info(struct store *st, int64_t study_id, struct resume_info *out)
{
	sqlite3_stmt *q;
	memset(out, 0, sizeof *out);
	enum presso_status s =
		stmt_query(st, &q, STMT_COUNTS, "counting trials", "i", study_id);
	if (s != PRESSO_OK)
		return s;
	if (q) { /* an aggregate: always one row */
		out->next_number = sqlite3_column_int64(q, 0);
		out->n_running = sqlite3_column_int(q, 1);
		out->n_complete = sqlite3_column_int(q, 2);
		out->n_failed = sqlite3_column_int(q, 3);
		out->n_lost = sqlite3_column_int(q, 4);
		out->n_finetuned = sqlite3_column_int(q, 5);
	}
	stmt_finish(q);
	return PRESSO_OK;
}

/* --- search state --------------------------------------------------------- */

enum presso_status store_put_state(struct store *st, int64_t study_id, const struct store_kv *kv,
				   int n)
{
	enum presso_status s = writable(st);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	return tx_end(st, put_state(st, study_id, kv, n, 0));
}

enum presso_status store_get_state(struct store *st, int64_t study_id, const char *key,
				   void **value, size_t *n_bytes, bool *found)
{
	sqlite3_stmt *q;
	*value = NULL;
	*n_bytes = 0;
	*found = false;
	enum presso_status s = stmt_query(st, &q, STMT_STATE_GET, "reading search state", "it",
					  study_id, key);
	if (s != PRESSO_OK)
		return s;
	if (q) {
		const void *v = sqlite3_column_blob(q, 0);
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		char *copy = malloc(n + 1);
		if (!copy) {
			stmt_finish(q);
			return nomem(st);
		}
		if (n)
			memcpy(copy, v, n);
		copy[n] = '\0';
		*value = copy;
		*n_bytes = n;
		*found = true;
	}
	stmt_finish(q);
	return PRESSO_OK;
}

/* --- after the search: the front's re-check, abandoned trials -------------- */

/* Sets one metric of a complete trial (stmt binds value, study, number). */
static enum presso_status set_metric(struct store *st, enum stmt id, int64_t study_id,
				     int64_t number, double value, const char *what)
{
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, id, what, "fii", value, study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (sqlite3_changes(st->db) != 1)
		return status_fail(PRESSO_E_RUNTIME, "%s: trial %lld is not a complete trial of the study",
				   st->path, (long long)number);
	return PRESSO_OK;
}

enum presso_status store_set_test_accuracy(struct store *st, int64_t study_id, int64_t number,
					   double test_accuracy)
{
	if (!(test_accuracy >= 0 && test_accuracy <= 100))
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad test_accuracy %g (percent)",
				   st->path, (long long)number, test_accuracy);
	return set_metric(st, STMT_SET_TEST_ACCURACY, study_id, number, test_accuracy,
			  "storing a test accuracy");
}

enum presso_status store_set_rescored(struct store *st, int64_t study_id, int64_t number,
				      double accuracy, int64_t n_images)
{
	if (!(accuracy >= 0 && accuracy <= 100) || n_images < 1)
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad re-score %g %% of %lld images",
				   st->path, (long long)number, accuracy, (long long)n_images);
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_SET_RESCORED, "storing a re-scored accuracy", "fiii", accuracy,
			     n_images, study_id, number);
	if (s == PRESSO_OK && sqlite3_changes(st->db) != 1)
		s = status_fail(PRESSO_E_RUNTIME,
				"%s: trial %lld is not a complete full-fidelity trial of the study",
				st->path, (long long)number);
	return s;
}

enum presso_status store_set_latency(struct store *st, int64_t study_id, int64_t number,
				     double latency_us)
{
	if (!(latency_us >= 0 && isfinite(latency_us)))
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad latency_us %g", st->path,
				   (long long)number, latency_us);
	return set_metric(st, STMT_SET_LATENCY, study_id, number, latency_us,
			  "storing a latency");
}

enum presso_status store_abandon_trials(struct store *st, int64_t study_id, const char *reason,
					int *n_marked)
{
	if (n_marked)
		*n_marked = 0;
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_ABANDON, "abandoning running trials", "fti", now_s(),
			     reason && *reason ? reason : "abandoned", study_id);
	if (s != PRESSO_OK)
		return s;
	if (n_marked)
		*n_marked = sqlite3_changes(st->db);
	return PRESSO_OK;
}
