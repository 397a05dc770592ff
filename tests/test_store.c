/* test_store.c - the SQLite store (db/store*.c): schema and migrations, every
 * way opening can fail (missing file, folder, not SQLite, someone else's
 * SQLite, newer schema, read-only file), study create/resume/config mismatch,
 * trial numbering across reopen, stale trials re-queued on resume, policy
 * lookups, atomic completion with search state, Pareto/pick/list queries, a
 * reader querying the front while another process writes (fork()), and
 * fine-tuned trials: added beside their PTQ trial, kept out of what the search
 * counts and re-queues, on the front, picked, their model read back; a
 * version-1 database migrated with its trials kept.
 *
 * Each test works in its own temporary folder; databases are inspected with
 * plain sqlite3 calls as well as through the API.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/store.h"
#include "tests/fixtures.h"

static char *tmp;

static void setup(void)
{
	tmp = fx_tmpdir();
	cr_assert(tmp, "cannot create a temporary folder");
}

static void teardown(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' && rm -rf '%s'", tmp, tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	free(tmp);
}

TestSuite(store, .init = setup, .fini = teardown);

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CONFIG_A "{\"name\": \"s\", \"search\": {\"bits\": [4, 8], \"strategy\": \"hybrid\"}}"

static struct study_spec spec_of(const char *name, const char *config)
{
	return (struct study_spec){
		.name = name,
		.config_json = config,
		.model_path = "models/lenet.onnx",
		.model_sha256 = SHA_A,
		.dataset = "fashion-mnist idx, calib 1000 / valid 5000 / test 10000, seed 1",
		.seed = 1,
		.baseline = {.accuracy = 90.0, .test_accuracy = 89.5, .size_bytes = 100000,
			     .bops = 1e9, .latency_us = 500, .n_classes = 10},
	};
}

static const struct layer_choice layers3[3] = {
	{"conv1", 8, 8, false, 0.0, 0, 1.0},
	{"conv2", 4, 8, true, 0.5, 1, 0.5},
	{"fc", 2, 8, false, 0.25, 0, 0.75},
};

static char *policy_text(int i)
{
	char *p = malloc(512);
	snprintf(p, 512,
		 "{\"default\": {\"bits\": 8, \"act_bits\": 8, \"bias_correction\": false, "
		 "\"prune\": 0.0, \"prune_kind\": \"unstructured\", \"rank\": 1.0},\n"
		 "  \"layers\": {\"conv1\": {\"bits\": %d, \"prune\": %g}}}",
		 1 + i % 8, (i / 8) * 0.01);
	return p;
}

static struct trial_metrics metrics_of(double acc, int64_t size)
{
	return (struct trial_metrics){acc, NAN, size, (double)size * 80, 100.0 + (double)size / 1000,
				      5.0, 0.1, 0.9, 1000, false, 0, 0};
}

static struct store *open_new(const char *name)
{
	struct store *st;
	cr_assert_eq(store_open(fx_join(tmp, name), STORE_CREATE, &st), PRESSO_OK, "%s",
		     status_msg());
	return st;
}

static int64_t new_study(struct store *st, const char *name)
{
	struct study_spec sp = spec_of(name, CONFIG_A);
	int64_t id;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK,
		     "%s", status_msg());
	return id;
}

/* A complete trial with policy i and the given metrics; returns its number. */
static int64_t add_trial(struct store *st, int64_t study, int i, double acc, int64_t size)
{
	char *p = policy_text(i);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, study, p, NULL, "test", &n), PRESSO_OK, "%s",
		     status_msg());
	struct trial_metrics m = metrics_of(acc, size);
	cr_assert_eq(store_complete_trial(st, study, n, &m, layers3, 3, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
	free(p);
	return n;
}

/* One integer from a query on a separate plain connection. */
static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t v = -1;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* --- schema and opening ------------------------------------------------------ */

Test(store, creates_the_schema_in_wal_mode)
{
	struct store *st = open_new("runs.db");
	const char *path = fx_join(tmp, "runs.db");
	cr_assert_eq(store_schema_version(), 3);
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), store_schema_version());
	cr_assert_eq(raw_int(path, "PRAGMA application_id"), 0x70727373);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('studies', "
				   "'trials', 'trial_layers', 'search_state', 'v_trials', "
				   "'v_trial_layers')"),
		     6);
	sqlite3 *db;
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
	store_close(st);
	/* opening again (without CREATE) keeps what is there */
	cr_assert_eq(store_open(path, 0, &st), PRESSO_OK, "%s", status_msg());
	int64_t id = new_study(st, "again");
	cr_assert_gt(id, 0);
	store_close(st);
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_OK, "%s", status_msg());
	struct study_info info;
	cr_assert_eq(store_find_study(st, "again", &info), PRESSO_OK);
	cr_assert_eq(info.id, id);
	store_study_info_free(&info);
	store_study_info_free(NULL);
	store_close(st);
	store_close(NULL);
}

Test(store, missing_file_and_folder)
{
	struct store *st = (struct store *)1;
	const char *path = fx_join(tmp, "nope.db");
	cr_assert_eq(store_open(path, 0, &st), PRESSO_E_IO);
	cr_assert_null(st);
	cr_assert(strstr(status_msg(), "nope.db") && strstr(status_msg(), "presso search creates it"),
		  "%s", status_msg());
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_E_IO);
	cr_assert_eq(store_open(path, STORE_READONLY | STORE_CREATE, &st), PRESSO_E_IO,
		     "read-only never creates");
	cr_assert_eq(access(path, F_OK), -1, "no file was created");
	cr_assert_eq(store_open(tmp, STORE_CREATE, &st), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "is a folder"), "%s", status_msg());
	cr_assert_eq(store_open("", 0, &st), PRESSO_E_USAGE);
}

Test(store, not_an_sqlite_file)
{
	const char *path = fx_join(tmp, "notes.db");
	char junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = "this is not a database\n"[i % 23];
	cr_assert(fx_write(path, junk, sizeof junk));
	static const unsigned flags[] = {0, STORE_READONLY, STORE_CREATE};
	for (int k = 0; k < 3; k++) {
		struct store *st = (struct store *)1;
		cr_assert_eq(store_open(path, flags[k], &st), PRESSO_E_FORMAT, "flags %u", flags[k]);
		cr_assert_null(st);
		cr_assert(strstr(status_msg(), path) && strstr(status_msg(), "not an SQLite database"),
			  "%s", status_msg());
	}
	size_t n;
	char *after = fx_read(path, &n);
	cr_assert(after && n == sizeof junk && memcmp(after, junk, n) == 0, "the file is untouched");
	free(after);
	/* a truncated presso database is not silently replaced either */
	cr_assert(fx_write(path, "SQLite format 3", 16));
	struct store *st;
	cr_assert_neq(store_open(path, STORE_CREATE, &st), PRESSO_OK);
}

Test(store, someone_elses_sqlite_and_empty_files)
{
	const char *other = fx_join(tmp, "other.db");
	raw_exec(other, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')");
	struct store *st;
	cr_assert_eq(store_open(other, STORE_CREATE, &st), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "not a presso database (it holds other tables)"), "%s",
		  status_msg());
	cr_assert_eq(raw_int(other, "SELECT count(*) FROM sqlite_master"), 1, "left as it was");
	/* an empty file: created on request, refused otherwise */
	const char *empty = fx_join(tmp, "empty.db");
	cr_assert(fx_write(empty, "", 0));
	cr_assert_eq(store_open(empty, 0, &st), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "not a presso database yet"), "%s", status_msg());
	cr_assert_eq(store_open(empty, STORE_READONLY, &st), PRESSO_E_FORMAT);
	cr_assert_eq(store_open(empty, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	store_close(st);
	/* a presso-versioned file with another application id */
	raw_exec(other, "PRAGMA user_version = 1");
	cr_assert_eq(store_open(other, 0, &st), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "not a presso database"), "%s", status_msg());
}

Test(store, newer_schema_is_refused)
{
	struct store *st = open_new("runs.db");
	new_study(st, "s");
	store_close(st);
	const char *path = fx_join(tmp, "runs.db");
	raw_exec(path, "PRAGMA user_version = 99");
	cr_assert_eq(store_open(path, 0, &st), PRESSO_E_UNSUPPORTED);
	cr_assert(strstr(status_msg(), "schema version 99 is newer") &&
		  strstr(status_msg(), "use a newer presso"),
		  "%s", status_msg());
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_E_UNSUPPORTED);
	cr_assert_eq(store_open(path, STORE_CREATE, &st), PRESSO_E_UNSUPPORTED);
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), 99, "not downgraded");
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM studies"), 1, "data untouched");
}

/* In a child (as `nobody` when run as root, since root ignores file modes):
 * the file and its folder are read-only. Writing is refused with a clear
 * error; reading works. Exit status: 0 ok, else the failed step. */
static int read_only_child(const char *path)
{
	if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
		return 10;
	struct store *st;
	if (store_open(path, 0, &st) != PRESSO_E_IO)
		return 11;
	if (!strstr(status_msg(), "read-only")) {
		fprintf(stderr, "message: %s\n", status_msg());
		return 12;
	}
	if (store_open(path, STORE_READONLY, &st) != PRESSO_OK) {
		fprintf(stderr, "read-only open: %s\n", status_msg());
		return 13;
	}
	struct study_info info;
	struct pareto_result r;
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	if (store_find_study(st, "s", &info) != PRESSO_OK)
		return 14;
	if (store_pareto(st, info.id, objs, 2, NULL, &r) != PRESSO_OK || r.n_front != 2) {
		fprintf(stderr, "pareto: %s\n", status_msg());
		return 15;
	}
	store_pareto_result_free(&r);
	int64_t n;
	if (store_begin_trial(st, info.id, "{}", NULL, NULL, &n) != PRESSO_E_IO)
		return 16;
	store_study_info_free(&info);
	store_close(st);
	return 0;
}

Test(store, read_only_database_serves_queries)
{
	/* under /tmp so that `nobody` can reach it whatever $TMPDIR is */
	char dir[] = "/tmp/presso-ro-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/runs.db", dir);
	struct store *st;
	cr_assert_eq(store_open(path, STORE_CREATE, &st), PRESSO_OK);
	int64_t id = new_study(st, "s");
	add_trial(st, id, 1, 80, 1000);
	add_trial(st, id, 2, 85, 2000);
	add_trial(st, id, 3, 70, 3000);
	store_close(st);
	cr_assert_eq(chmod(path, 0444), 0);
	cr_assert_eq(chmod(dir, 0555), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(read_only_child(path));
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	chmod(dir, 0755);
	chmod(path, 0644);
	cr_assert(fx_rmtree(dir));
	cr_assert(WIFEXITED(status), "the child crashed");
	cr_assert_eq(WEXITSTATUS(status), 0, "read-only child failed at step %d",
		     WEXITSTATUS(status));
}

Test(store, read_only_flag_refuses_writes)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	int64_t running;
	char *p = policy_text(1);
	cr_assert_eq(store_begin_trial(st, id, p, NULL, NULL, &running), PRESSO_OK);
	store_close(st);
	cr_assert_eq(store_open(fx_join(tmp, "runs.db"), STORE_READONLY, &st), PRESSO_OK);
	struct study_spec sp = spec_of("t", CONFIG_A);
	int64_t sid, n;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &sid, &resumed, NULL), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "read-only"), "%s", status_msg());
	cr_assert_eq(store_begin_trial(st, id, p, NULL, NULL, &n), PRESSO_E_IO);
	struct trial_metrics m = metrics_of(50, 10);
	cr_assert_eq(store_complete_trial(st, id, running, &m, NULL, 0, NULL, 0), PRESSO_E_IO);
	cr_assert_eq(store_fail_trial(st, id, running, "x"), PRESSO_E_IO);
	cr_assert_eq(store_heartbeat(st, id, running), PRESSO_E_IO);
	cr_assert_eq(store_finish_study(st, id), PRESSO_E_IO);
	struct store_policy *pol;
	int n_pol;
	cr_assert_eq(store_requeue_stale(st, id, 0, NULL, &pol, &n_pol), PRESSO_E_IO);
	struct store_kv kv = {"k", "v", 1, true};
	cr_assert_eq(store_put_state(st, id, &kv, 1), PRESSO_E_IO);
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, id, &ri), PRESSO_OK);
	cr_assert_eq(ri.n_running, 1);
	store_close(st);
	free(p);
}

/* Several processes creating the same database and study at once: one schema,
 * one study, every process gets its id. */
Test(store, concurrent_creation)
{
	const char *path = fx_join(tmp, "race.db");
	enum { N = 4 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0) {
			struct store *st;
			struct study_spec sp = spec_of("race", CONFIG_A);
			int64_t id;
			bool resumed;
			if (store_open(path, STORE_CREATE, &st) != PRESSO_OK) {
				fprintf(stderr, "open: %s\n", status_msg());
				_exit(1);
			}
			if (store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL) !=
			    PRESSO_OK) {
				fprintf(stderr, "study: %s\n", status_msg());
				_exit(2);
			}
			store_close(st);
			_exit(0);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;
		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i,
			  status);
	}
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM studies"), 1);
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), store_schema_version());
}

/* --- studies --------------------------------------------------------------- */

Test(store, same_config_resumes_different_config_refused)
{
	struct store *st = open_new("runs.db");
	struct study_spec a = spec_of("lenet", CONFIG_A);
	int64_t id1, id2, id3, id4;
	bool resumed;
	char name[STORE_NAME_MAX + 1];
	cr_assert_eq(store_create_or_resume_study(st, &a, false, &id1, &resumed, name), PRESSO_OK);
	cr_assert(!resumed);
	cr_assert_str_eq(name, "lenet");
	/* same config, different whitespace: the same canonical text */
	struct study_spec a2 = spec_of("lenet", "{\"name\":\"s\",\"search\":{\"bits\":[4,8],"
						"\"strategy\":\"hybrid\"}}");
	cr_assert_eq(store_create_or_resume_study(st, &a2, false, &id2, &resumed, name), PRESSO_OK,
		     "%s", status_msg());
	cr_assert(resumed);
	cr_assert_eq(id2, id1);
	/* a different config is refused, naming the first difference */
	struct study_spec b = spec_of("lenet", "{\"name\": \"s\", \"search\": {\"bits\": [4, 6], "
					       "\"strategy\": \"hybrid\"}}");
	cr_assert_eq(store_create_or_resume_study(st, &b, false, &id3, &resumed, name),
		     PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "study 'lenet' exists") &&
		  strstr(status_msg(), "differs at 'search.bits[1]'") &&
		  strstr(status_msg(), "--new-study"),
		  "%s", status_msg());
	/* so is a changed model, dataset or seed */
	struct study_spec c = a;
	c.model_sha256 = SHA_B;
	cr_assert_eq(store_create_or_resume_study(st, &c, false, &id3, &resumed, name),
		     PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "model file has changed"), "%s", status_msg());
	c = a;
	c.seed = 2;
	cr_assert_eq(store_create_or_resume_study(st, &c, false, &id3, &resumed, name),
		     PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "seed differs"), "%s", status_msg());
	c = a;
	c.dataset = "mnist";
	cr_assert_eq(store_create_or_resume_study(st, &c, false, &id3, &resumed, name),
		     PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "dataset differs"), "%s", status_msg());
	/* asking for a new study numbers the name */
	cr_assert_eq(store_create_or_resume_study(st, &b, true, &id3, &resumed, name), PRESSO_OK);
	cr_assert(!resumed);
	cr_assert_str_eq(name, "lenet-2");
	cr_assert_neq(id3, id1);
	cr_assert_eq(store_create_or_resume_study(st, &a, true, &id4, &resumed, name), PRESSO_OK);
	cr_assert_str_eq(name, "lenet-3", "new even with the same config");
	/* lenet-2 resumes under its own name with its own config */
	struct study_spec b2 = b;
	b2.name = "lenet-2";
	cr_assert_eq(store_create_or_resume_study(st, &b2, false, &id4, &resumed, name), PRESSO_OK);
	cr_assert(resumed);
	cr_assert_eq(id4, id3);
	store_close(st);
}

Test(store, bad_study_specs)
{
	struct store *st = open_new("runs.db");
	int64_t id;
	bool resumed;
	struct study_spec s = spec_of("", CONFIG_A);
	cr_assert_eq(store_create_or_resume_study(st, &s, false, &id, &resumed, NULL),
		     PRESSO_E_CONFIG);
	s = spec_of("tab\there", CONFIG_A);
	cr_assert_eq(store_create_or_resume_study(st, &s, false, &id, &resumed, NULL),
		     PRESSO_E_CONFIG);
	s = spec_of("ok", "{not json");
	cr_assert_eq(store_create_or_resume_study(st, &s, false, &id, &resumed, NULL),
		     PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "study 'ok': config"), "%s", status_msg());
	s = spec_of("ok", CONFIG_A);
	s.model_sha256 = "abc";
	cr_assert_eq(store_create_or_resume_study(st, &s, false, &id, &resumed, NULL),
		     PRESSO_E_CONFIG);
	s = spec_of("ok", CONFIG_A);
	s.baseline.n_classes = 1;
	cr_assert_eq(store_create_or_resume_study(st, &s, false, &id, &resumed, NULL),
		     PRESSO_E_CONFIG);
	cr_assert_eq(raw_int(fx_join(tmp, "runs.db"), "SELECT count(*) FROM studies"), 0);
	store_close(st);
}

Test(store, missing_study_lists_the_others)
{
	struct store *st = open_new("runs.db");
	struct study_info info;
	cr_assert_eq(store_find_study(st, "x", &info), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "holds no studies"), "%s", status_msg());
	new_study(st, "alpha");
	new_study(st, "beta");
	cr_assert_eq(store_find_study(st, "gamma", &info), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "no study 'gamma' (studies: 'alpha', 'beta')"), "%s",
		  status_msg());
	store_close(st);
}

Test(store, finish_and_resume_study)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	cr_assert_eq(store_finish_study(st, id), PRESSO_OK);
	struct study_info info;
	cr_assert_eq(store_find_study(st, "s", &info), PRESSO_OK);
	cr_assert_str_eq(info.status, "finished");
	cr_assert(info.finished_at >= info.created_at);
	store_study_info_free(&info);
	new_study(st, "s");
	cr_assert_eq(store_find_study(st, "s", &info), PRESSO_OK);
	cr_assert_str_eq(info.status, "running");
	cr_assert(isnan(info.finished_at));
	cr_assert_str_eq(info.presso_version, PRESSO_VERSION);
	cr_assert_eq(info.baseline.size_bytes, 100000);
	cr_assert_float_eq(info.baseline.test_accuracy, 89.5, 0);
	store_study_info_free(&info);
	store_close(st);
}

/* --- trials ------------------------------------------------------------------ */

Test(store, numbering_continues_across_reopen)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	cr_assert_eq(add_trial(st, id, 0, 50, 100), 1);
	int64_t n2, n3, n4;
	char *p = policy_text(1), *q = policy_text(2), *r = policy_text(3);
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "w1", &n2), PRESSO_OK);
	cr_assert_eq(store_fail_trial(st, id, n2, "evaluator: out of range"), PRESSO_OK);
	cr_assert_eq(store_begin_trial(st, id, q, NULL, "w2", &n3), PRESSO_OK);
	cr_assert_eq(n2, 2);
	cr_assert_eq(n3, 3);
	/* a second study numbers on its own */
	int64_t other = new_study(st, "other");
	cr_assert_eq(add_trial(st, other, 0, 50, 100), 1);
	store_close(st);
	cr_assert_eq(store_open(fx_join(tmp, "runs.db"), 0, &st), PRESSO_OK);
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, id, &ri), PRESSO_OK);
	cr_assert_eq(ri.next_number, 4);
	cr_assert_eq(ri.n_complete, 1);
	cr_assert_eq(ri.n_failed, 1);
	cr_assert_eq(ri.n_running, 1);
	cr_assert_eq(ri.n_lost, 0);
	cr_assert_eq(store_begin_trial(st, id, r, NULL, "w1", &n4), PRESSO_OK);
	cr_assert_eq(n4, 4);
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, 2, &t), PRESSO_OK);
	cr_assert_eq(t->state, TRIAL_FAILED);
	cr_assert_str_eq(t->error, "evaluator: out of range");
	cr_assert(!t->lost);
	cr_assert_str_eq(t->worker, "w1");
	store_trials_free(t, 1);
	cr_assert_eq(store_get_trial(st, id, 99, &t), PRESSO_E_USAGE);
	/* a failed trial cannot be completed or failed again */
	struct trial_metrics m = metrics_of(50, 100);
	cr_assert_eq(store_complete_trial(st, id, 2, &m, NULL, 0, NULL, 0), PRESSO_E_RUNTIME);
	cr_assert(strstr(status_msg(), "trial 2 is failed, not running"), "%s", status_msg());
	cr_assert_eq(store_fail_trial(st, id, 1, "x"), PRESSO_E_RUNTIME);
	cr_assert_eq(store_fail_trial(st, id, 77, "x"), PRESSO_E_RUNTIME);
	cr_assert(strstr(status_msg(), "has no trial 77"), "%s", status_msg());
	store_close(st);
	free(p);
	free(q);
	free(r);
}

Test(store, stale_trials_are_requeued_once)
{
	struct store *st = open_new("runs.db");
	const char *path = fx_join(tmp, "runs.db");
	int64_t id = new_study(st, "s");
	add_trial(st, id, 0, 50, 100);
	char *p = policy_text(5);
	char hash[SHA256_HEX_BYTES];
	cr_assert_eq(store_canonical_json(p, NULL, hash), PRESSO_OK);
	int64_t lost;
	cr_assert_eq(store_begin_trial(st, id, p, hash, "dead worker", &lost), PRESSO_OK);
	cr_assert_eq(store_heartbeat(st, id, lost), PRESSO_OK);
	struct store_policy *pol;
	int n_pol, n_marked;
	/* a fresh heartbeat is not stale */
	cr_assert_eq(store_requeue_stale(st, id, 3600, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_marked, 0);
	cr_assert_eq(n_pol, 0);
	cr_assert_null(pol);
	/* two hours without a heartbeat */
	raw_exec(path, "UPDATE trials SET heartbeat_at = heartbeat_at - 7200 WHERE number = 2");
	cr_assert_eq(store_requeue_stale(st, id, 3600, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_marked, 1);
	cr_assert_eq(n_pol, 1);
	cr_assert_eq(pol[0].lost_trial, lost);
	cr_assert_str_eq(pol[0].policy_sha256, hash);
	char *canon;
	cr_assert_eq(store_canonical_json(p, &canon, hash), PRESSO_OK);
	cr_assert_str_eq(pol[0].policy_json, canon);
	store_policies_free(pol, n_pol);
	store_policies_free(NULL, 0);
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, lost, &t), PRESSO_OK);
	cr_assert_eq(t->state, TRIAL_FAILED);
	cr_assert(t->lost);
	cr_assert(strncmp(t->error, "worker lost", 11) == 0, "%s", t->error);
	store_trials_free(t, 1);
	/* the dead worker's late calls are refused */
	cr_assert_eq(store_heartbeat(st, id, lost), PRESSO_E_RUNTIME);
	cr_assert(strstr(status_msg(), "worker lost"), "%s", status_msg());
	struct trial_metrics m = metrics_of(60, 100);
	cr_assert_eq(store_complete_trial(st, id, lost, &m, NULL, 0, NULL, 0), PRESSO_E_RUNTIME);
	/* not re-run yet: a second resume hands it back again */
	bool has;
	cr_assert_eq(store_has_policy(st, id, hash, &has), PRESSO_OK);
	cr_assert(!has, "a lost policy does not count as evaluated");
	cr_assert_eq(store_requeue_stale(st, id, 3600, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_marked, 0);
	cr_assert_eq(n_pol, 1);
	store_policies_free(pol, n_pol);
	/* re-run (and lost again): handed back once, for the latest trial */
	int64_t again;
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "w", &again), PRESSO_OK);
	cr_assert_eq(again, 3);
	cr_assert_eq(store_has_policy(st, id, hash, &has), PRESSO_OK);
	cr_assert(has, "running counts as evaluated");
	cr_assert_eq(store_requeue_stale(st, id, 0, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_marked, 1, "threshold 0: every running trial is stale");
	cr_assert_eq(n_pol, 1);
	cr_assert_eq(pol[0].lost_trial, 3);
	store_policies_free(pol, n_pol);
	/* completed at last: nothing to hand back */
	int64_t done;
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "w", &done), PRESSO_OK);
	cr_assert_eq(store_complete_trial(st, id, done, &m, layers3, 3, NULL, 0), PRESSO_OK);
	cr_assert_eq(store_requeue_stale(st, id, 0, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_pol, 0);
	cr_assert_eq(store_requeue_stale(st, id, -1, &n_marked, &pol, &n_pol), PRESSO_E_CONFIG);
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, id, &ri), PRESSO_OK);
	cr_assert_eq(ri.n_lost, 2);
	cr_assert_eq(ri.next_number, 5);
	free(canon);
	free(p);
	store_close(st);
}

Test(store, policy_hashes_and_lookup)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	add_trial(st, id, 0, 50, 100);
	add_trial(st, id, 1, 60, 200);
	char *fp = policy_text(2);
	int64_t failed;
	cr_assert_eq(store_begin_trial(st, id, fp, NULL, NULL, &failed), PRESSO_OK);
	cr_assert_eq(store_fail_trial(st, id, failed, ""), PRESSO_OK);
	char want[3][SHA256_HEX_BYTES];
	for (int i = 0; i < 3; i++) {
		char *p = policy_text(i);
		cr_assert_eq(store_canonical_json(p, NULL, want[i]), PRESSO_OK);
		bool has;
		cr_assert_eq(store_has_policy(st, id, want[i], &has), PRESSO_OK);
		cr_assert(has, "policy %d", i);
		free(p);
	}
	bool has;
	cr_assert_eq(store_has_policy(st, id, SHA_B, &has), PRESSO_OK);
	cr_assert(!has);
	int64_t other = new_study(st, "other");
	cr_assert_eq(store_has_policy(st, other, want[0], &has), PRESSO_OK);
	cr_assert(!has, "per study");
	char(*hashes)[SHA256_HEX_BYTES];
	int n;
	cr_assert_eq(store_policy_hashes(st, id, &hashes, &n), PRESSO_OK);
	cr_assert_eq(n, 3);
	for (int i = 0; i < 3; i++) {
		bool found = false;
		for (int j = 0; j < n; j++)
			found |= strcmp(hashes[j], want[i]) == 0;
		cr_assert(found, "hash %d listed", i);
	}
	free(hashes);
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, failed, &t), PRESSO_OK);
	cr_assert_str_eq(t->error, "failed (no message)");
	store_trials_free(t, 1);
	store_close(st);
	free(fp);
}

Test(store, policies_are_stored_canonically)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	const char *pretty = "{\n  \"default\": {\"bits\": 4},\n  \"layers\": {}\n}\n";
	int64_t n;
	cr_assert_eq(store_begin_trial(st, id, pretty, NULL, NULL, &n), PRESSO_OK);
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, n, &t), PRESSO_OK);
	cr_assert_str_eq(t->policy_json, "{\"default\":{\"bits\":4},\"layers\":{}}");
	char hex[SHA256_HEX_BYTES];
	sha256_hex(t->policy_json, strlen(t->policy_json), hex);
	cr_assert_str_eq(t->policy_sha256, hex);
	cr_assert_eq(t->state, TRIAL_RUNNING);
	cr_assert(isnan(t->ended_at));
	store_trials_free(t, 1);
	/* a given hash is the caller's identity of the policy (the search's is
	 * the hash of the model it makes): kept, if it is a SHA-256 in hex */
	cr_assert_eq(store_begin_trial(st, id, pretty, SHA_B, NULL, &n), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_eq(store_get_trial(st, id, n, &t), PRESSO_OK);
	cr_assert_str_eq(t->policy_sha256, SHA_B);
	cr_assert_str_eq(t->policy_json, "{\"default\":{\"bits\":4},\"layers\":{}}");
	store_trials_free(t, 1);
	bool found;
	cr_assert_eq(store_has_policy(st, id, SHA_B, &found), PRESSO_OK);
	cr_assert(found);
	static const char *const bad[] = {"abc", SHA_B "0",
		"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "",
		"g000000000000000000000000000000000000000000000000000000000000000"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(store_begin_trial(st, id, pretty, bad[i], NULL, &n), PRESSO_E_RUNTIME,
			     "'%s' is not a hash", bad[i]);
		cr_assert(strstr(status_msg(), "policy hash '"), "names it: %s", status_msg());
	}
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": ", NULL, NULL, &n), PRESSO_E_CONFIG);
	cr_assert_eq(store_begin_trial(st, id + 100, pretty, NULL, NULL, &n), PRESSO_E_RUNTIME);
	cr_assert(strstr(status_msg(), "no study with id"), "%s", status_msg());
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, id, &ri), PRESSO_OK);
	cr_assert_eq(ri.next_number, 3, "failed begins took no number");
	store_close(st);
}

Test(store, completion_is_checked_and_atomic)
{
	struct store *st = open_new("runs.db");
	const char *path = fx_join(tmp, "runs.db");
	int64_t id = new_study(st, "s");
	char *p = policy_text(0);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, id, p, NULL, NULL, &n), PRESSO_OK);
	struct store_kv state[2] = {
		{"population", "[1,2,3]", 7, true},
		{"rng", "\x01\x00\x02", 3, false},
	};
	struct trial_metrics m = metrics_of(120, 100);
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, state, 2), PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "accuracy"), "%s", status_msg());
	m = metrics_of(50, 0);
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, state, 2), PRESSO_E_CONFIG);
	m = metrics_of(50, 100);
	m.bops = NAN;
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, state, 2), PRESSO_E_CONFIG);
	m = metrics_of(50, 100);
	struct layer_choice bad[3];
	memcpy(bad, layers3, sizeof bad);
	bad[1].rank = 0;
	cr_assert_eq(store_complete_trial(st, id, n, &m, bad, 3, state, 2), PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "layer 1 ('conv2') has rank outside (0, 1]"), "%s",
		  status_msg());
	memcpy(bad, layers3, sizeof bad);
	bad[2].bits = 0;
	cr_assert_eq(store_complete_trial(st, id, n, &m, bad, 3, state, 2), PRESSO_E_CONFIG);
	memcpy(bad, layers3, sizeof bad);
	bad[0].prune_kind = 2;
	cr_assert_eq(store_complete_trial(st, id, n, &m, bad, 3, state, 2), PRESSO_E_CONFIG);
	/* a duplicate layer name fails inside the transaction: nothing is kept */
	memcpy(bad, layers3, sizeof bad);
	bad[2].layer = "conv1";
	cr_assert_eq(store_complete_trial(st, id, n, &m, bad, 3, state, 2), PRESSO_E_RUNTIME);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM trial_layers"), 0);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM search_state"), 0);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM trials WHERE state = 'running'"), 1);
	/* and then it completes, with its layers and its state */
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, state, 2), PRESSO_OK, "%s",
		     status_msg());
	struct layer_choice *ls;
	int nl;
	cr_assert_eq(store_get_layers(st, id, n, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_str_eq(ls[i].layer, layers3[i].layer);
		cr_assert_eq(ls[i].bits, layers3[i].bits);
		cr_assert_eq(ls[i].act_bits, layers3[i].act_bits);
		cr_assert_eq(ls[i].bias_correction, layers3[i].bias_correction);
		cr_assert_float_eq(ls[i].prune, layers3[i].prune, 0);
		cr_assert_eq(ls[i].prune_kind, layers3[i].prune_kind);
		cr_assert_float_eq(ls[i].rank, layers3[i].rank, 0);
	}
	free(ls);
	void *v;
	size_t nb;
	bool found;
	cr_assert_eq(store_get_state(st, id, "rng", &v, &nb, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(nb, 3);
	cr_assert_arr_eq(v, "\x01\x00\x02", 3);
	free(v);
	cr_assert_eq(raw_int(path, "SELECT trial_number FROM search_state WHERE key = 'population'"),
		     n);
	cr_assert_eq(raw_int(path, "SELECT typeof(value) = 'text' FROM search_state WHERE key = "
				   "'population'"),
		     1, "text state is readable in sqlite3");
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, n, &t), PRESSO_OK);
	cr_assert_eq(t->state, TRIAL_COMPLETE);
	cr_assert_float_eq(t->metrics.accuracy, 50, 0);
	cr_assert_eq(t->metrics.size_bytes, 100);
	cr_assert(isnan(t->metrics.test_accuracy), "NaN stored as NULL and read back as NaN");
	cr_assert(t->ended_at >= t->started_at);
	store_trials_free(t, 1);
	/* completing twice is refused and changes nothing */
	struct store_kv later = {"population", "[9]", 3, true};
	cr_assert_eq(store_complete_trial(st, id, n, &m, NULL, 0, &later, 1), PRESSO_E_RUNTIME);
	cr_assert_eq(store_get_state(st, id, "population", &v, &nb, &found), PRESSO_OK);
	cr_assert_str_eq(v, "[1,2,3]");
	free(v);
	store_close(st);
	free(p);
}

Test(store, search_state_roundtrip)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	void *v;
	size_t n;
	bool found;
	cr_assert_eq(store_get_state(st, id, "bandit", &v, &n, &found), PRESSO_OK);
	cr_assert(!found);
	cr_assert_null(v);
	struct store_kv kv[2] = {{"bandit", "{\"arms\": 3}", 11, true}, {"empty", NULL, 0, false}};
	cr_assert_eq(store_put_state(st, id, kv, 2), PRESSO_OK);
	kv[0].value = "{\"arms\": 4}";
	cr_assert_eq(store_put_state(st, id, kv, 1), PRESSO_OK);
	cr_assert_eq(store_get_state(st, id, "bandit", &v, &n, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_str_eq(v, "{\"arms\": 4}");
	free(v);
	cr_assert_eq(store_get_state(st, id, "empty", &v, &n, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(n, 0);
	free(v);
	struct store_kv nokey = {"", "x", 1, true};
	cr_assert_eq(store_put_state(st, id, &nokey, 1), PRESSO_E_CONFIG);
	store_close(st);
}

/* --- queries ----------------------------------------------------------------- */

/* Multi-fidelity (schema 3): a trial screened out on a subset of the
 * validation images is stored with its fidelity and pass, and no front,
 * --pick or summary takes it, however good its subset score looks. */
Test(store, low_fidelity_trials_stay_out_of_fronts_and_picks)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	add_trial(st, id, 0, 89.5, 30000); /* 1: full fidelity */
	char *p = policy_text(1);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "test", &n), PRESSO_OK);
	free(p);
	/* 2: screened out on 250 images, though it would dominate trial 1 */
	struct trial_metrics m = metrics_of(95.2, 20000);
	m.n_images = 250;
	m.low_fidelity = true;
	m.low_accuracy = 95.2;
	m.low_n_images = 250;
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
	/* 3: promoted: 250 images first, then the whole split */
	p = policy_text(2);
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "test", &n), PRESSO_OK);
	free(p);
	m = metrics_of(88.0, 25000);
	m.low_accuracy = 90.4;
	m.low_n_images = 250;
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
	const char *path = fx_join(tmp, "runs.db");
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM v_trials WHERE trial = 2 AND "
				   "fidelity = 'low' AND low_n_images = 250 AND n_images = 250"),
		     1);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM v_trials WHERE trial = 3 AND "
				   "fidelity = 'full' AND low_n_images = 250 AND n_images = 1000"),
		     1);
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, 2, &t), PRESSO_OK);
	cr_assert(t->metrics.low_fidelity);
	cr_assert_eq(t->metrics.low_n_images, 250);
	cr_assert_float_eq(t->metrics.low_accuracy, 95.2, 1e-9);
	store_trials_free(t, 1);
	cr_assert_eq(store_get_trial(st, id, 3, &t), PRESSO_OK);
	cr_assert_not(t->metrics.low_fidelity);
	cr_assert_float_eq(t->metrics.low_accuracy, 90.4, 1e-9);
	store_trials_free(t, 1);
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	struct pareto_result r;
	cr_assert_eq(store_pareto(st, id, objs, 2, NULL, &r), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(r.n_front, 2, "trials 1 and 3, not the screened-out 2");
	cr_assert_eq(r.n_candidates, 2);
	cr_assert_eq(r.n_low_fidelity, 1);
	for (int i = 0; i < r.n_front; i++)
		cr_assert_neq(r.front[i].number, 2);
	store_pareto_result_free(&r);
	struct expr_pick pk;
	int64_t num;
	bool found;
	cr_assert_eq(expr_parse_pick("max accuracy", "--pick", &pk), PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(num, 1);
	expr_pick_free(&pk);
	struct study_summary *sum;
	int n_sum;
	cr_assert_eq(store_list_studies(st, &sum, &n_sum), PRESSO_OK);
	cr_assert_eq(n_sum, 1);
	cr_assert_eq(sum[0].best_accuracy_trial, 1);
	cr_assert_eq(sum[0].n_front, 2);
	store_study_summaries_free(sum, n_sum);
	/* a low-fidelity trial must say what it was scored on */
	p = policy_text(3);
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "test", &n), PRESSO_OK);
	free(p);
	m = metrics_of(88.0, 25000);
	m.low_fidelity = true;
	cr_assert_eq(store_complete_trial(st, id, n, &m, layers3, 3, NULL, 0), PRESSO_E_CONFIG);
	status_clear();
	store_close(st);
}

Test(store, pareto_pick_and_where)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	/* FP32: 90 %, 100000 bytes, 10 classes */
	add_trial(st, id, 0, 89.5, 30000); /* 1: front */
	add_trial(st, id, 1, 88.0, 40000); /* 2: dominated by 1 */
	add_trial(st, id, 2, 85.0, 20000); /* 3: front */
	add_trial(st, id, 3, 91.0, 90000); /* 4: front, best accuracy */
	add_trial(st, id, 4, 89.2, 25000); /* 5: front */
	add_trial(st, id, 5, 85.0, 20000); /* 6: equal to 3: collapsed into it */
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	struct pareto_result r;
	cr_assert_eq(store_pareto(st, id, objs, 2, NULL, &r), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(r.n_candidates, 6);
	cr_assert_eq(r.n_front, 4);
	const int64_t order[4] = {4, 1, 5, 3};
	const int same[4] = {0, 0, 0, 1};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(r.front[i].number, order[i], "front[%d] is trial %lld", i,
			     (long long)r.front[i].number);
		cr_assert_eq(r.n_same[i], same[i], "trial %lld", (long long)order[i]);
	}
	cr_assert_eq(r.n_collapsed, 1);
	cr_assert(r.has_hypervolume);
	cr_assert_float_eq(r.ref[0], 10.0, 0);
	cr_assert_float_eq(r.ref[1], 100000.0, 0);
	/* sweep by accuracy: 81*10000 + 79.5*60000 + 79.2*5000 + 75*5000 */
	cr_assert_float_eq(r.hypervolume, 6351000.0, 1e-6);
	cr_assert_float_eq(r.hypervolume_ratio, 6351000.0 / (90.0 * 100000.0), 1e-12);
	store_pareto_result_free(&r);
	store_pareto_result_free(NULL);
	/* constraints first: the front of what is left */
	struct expr *e;
	cr_assert_eq(expr_parse("size_kb <= 35", "--where", &e), PRESSO_OK);
	cr_assert_eq(store_pareto(st, id, objs, 2, e, &r), PRESSO_OK);
	cr_assert_eq(r.n_candidates, 4);
	cr_assert_eq(r.n_front, 3, "1, 5, and 3 for itself and 6; 4 is too big");
	cr_assert_eq(r.front[0].number, 1);
	store_pareto_result_free(&r);
	expr_free(e);
	cr_assert_eq(expr_parse("accuracy_drop <= 2 and ratio >= 2", "--where", &e), PRESSO_OK);
	struct store_trial *list;
	int n;
	cr_assert_eq(store_list_trials(st, id, true, e, &list, &n), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n, 3, "trials 1, 2 and 5");
	cr_assert_eq(list[0].number, 1);
	cr_assert_eq(list[1].number, 2);
	cr_assert_eq(list[2].number, 5);
	/* the same answer from expr_eval on the metrics, as search code would ask */
	struct study_info info;
	cr_assert_eq(store_find_study(st, "s", &info), PRESSO_OK);
	store_trials_free(list, n);
	cr_assert_eq(store_list_trials(st, id, false, NULL, &list, &n), PRESSO_OK);
	cr_assert_eq(n, 6);
	int n_true = 0;
	for (int i = 0; i < n; i++) {
		double v[EXPR_METRIC_COUNT];
		store_expr_values(&list[i].metrics, &info.baseline, list[i].number, v);
		n_true += expr_eval(e, v);
	}
	cr_assert_eq(n_true, 3);
	store_trials_free(list, n);
	store_study_info_free(&info);
	expr_free(e);
	/* three objectives, and one the trials lack (latency is measured here) */
	const enum store_objective three[3] = {OBJ_ACCURACY, OBJ_SIZE, OBJ_LATENCY};
	cr_assert_eq(store_pareto(st, id, three, 3, NULL, &r), PRESSO_OK);
	cr_assert(r.has_hypervolume);
	cr_assert_eq(r.n_front, 4);
	store_pareto_result_free(&r);
	/* pick */
	struct expr_pick pk;
	int64_t num;
	bool found;
	cr_assert_eq(expr_parse_pick("max accuracy where size_kb <= 64", "--pick", &pk), PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(num, 1);
	expr_pick_free(&pk);
	cr_assert_eq(expr_parse_pick("min size_kb where accuracy_drop <= 1", "--pick", &pk),
		     PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert_eq(num, 5);
	expr_pick_free(&pk);
	cr_assert_eq(expr_parse_pick("min size", "--pick", &pk), PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert_eq(num, 3, "ties go to the lowest number");
	expr_pick_free(&pk);
	cr_assert_eq(expr_parse_pick("max test_accuracy", "--pick", &pk), PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert(!found, "no trial has a test accuracy");
	expr_pick_free(&pk);
	/* a later trial as small as 5 but more accurate: the tie goes to the
	 * other objective before the number (5 is dominated by 7) */
	add_trial(st, id, 6, 89.4, 25000); /* 7 */
	cr_assert_eq(expr_parse_pick("min size_kb where accuracy_drop <= 1", "--pick", &pk),
		     PRESSO_OK);
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert_eq(num, 7, "picked %lld, dominated by 7", (long long)num);
	expr_pick_free(&pk);
	store_close(st);
}

/* A trial with an accuracy measured on n_images; returns its number. */
static int64_t add_trial_n(struct store *st, int64_t study, int i, double acc, int64_t size,
			   int64_t n_images)
{
	char *p = policy_text(i);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, study, p, NULL, "test", &n), PRESSO_OK, "%s",
		     status_msg());
	struct trial_metrics m = metrics_of(acc, size);
	m.n_images = n_images;
	cr_assert_eq(store_complete_trial(st, study, n, &m, layers3, 3, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
	free(p);
	return n;
}

static int64_t pick(struct store *st, int64_t study, const char *text)
{
	struct expr_pick pk;
	int64_t num = 0;
	bool found;
	cr_assert_eq(expr_parse_pick(text, "--pick", &pk), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(store_pick(st, study, &pk, &num, &found), PRESSO_OK, "%s", status_msg());
	expr_pick_free(&pk);
	return found ? num : 0;
}

/* FP32 at 90 %: trial 1 is 0.5 below on 1,000 images (the 95 % upper bound
 * of its drop is 2.2), trial 2 0.2 below on 20,000 (0.55), trial 3 0.1 below
 * without a known number of images, trial 4 3 below. */
Test(store, a_pick_at_95_percent_is_more_conservative)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	cr_assert_eq(add_trial_n(st, id, 0, 89.5, 10000, 1000), 1);
	cr_assert_eq(add_trial_n(st, id, 1, 89.8, 20000, 20000), 2);
	cr_assert_eq(add_trial_n(st, id, 2, 89.9, 15000, 0), 3);
	cr_assert_eq(add_trial_n(st, id, 3, 87.0, 5000, 1000), 4);
	/* the number of images is stored (NULL when not known) */
	struct store_trial *t;
	cr_assert_eq(store_get_trial(st, id, 2, &t), PRESSO_OK);
	cr_assert_eq(t->metrics.n_images, 20000);
	store_trials_free(t, 1);
	cr_assert_eq(store_get_trial(st, id, 3, &t), PRESSO_OK);
	cr_assert_eq(t->metrics.n_images, 0);
	store_trials_free(t, 1);
	cr_assert_eq(raw_int(fx_join(tmp, "runs.db"),
			     "SELECT count(*) FROM v_trials WHERE n_images IS NULL"),
		     1);
	cr_assert_eq(pick(st, id, "min size_kb where accuracy_drop <= 1"), 1);
	cr_assert_eq(pick(st, id, "min size_kb where accuracy_drop <= 1 at 95%"), 2);
	cr_assert_eq(pick(st, id, "min size_kb where accuracy >= 89 at 95%"), 2);
	cr_assert_eq(pick(st, id, "min size_kb where accuracy >= 89"), 1);
	/* a looser confidence lets trial 1 back in: its 60 % bound is 0.74 */
	cr_assert_eq(pick(st, id, "min size_kb where accuracy_drop <= 1 at 60%"), 1);
	/* nothing meets a bound that tight at 99.9 % */
	cr_assert_eq(pick(st, id, "min size_kb where accuracy_drop <= 0.3 at 99.9%"), 0);
	/* --where through the front: the same rule */
	struct expr *e;
	cr_assert_eq(expr_parse("accuracy_drop <= 1 at 95%", "--where", &e), PRESSO_OK);
	struct store_trial *list;
	int n;
	cr_assert_eq(store_list_trials(st, id, true, e, &list, &n), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0].number, 2);
	/* and expr_eval on store_expr_values agrees, as the search asks it */
	store_trials_free(list, n);
	cr_assert_eq(store_list_trials(st, id, true, NULL, &list, &n), PRESSO_OK);
	struct study_info info;
	cr_assert_eq(store_find_study(st, "s", &info), PRESSO_OK);
	for (int i = 0; i < n; i++) {
		double v[EXPR_METRIC_COUNT];
		store_expr_values(&list[i].metrics, &info.baseline, list[i].number, v);
		cr_assert_eq(expr_eval(e, v), list[i].number == 2, "trial %lld",
			     (long long)list[i].number);
	}
	store_study_info_free(&info);
	store_trials_free(list, n);
	expr_free(e);
	/* a negative count is refused, naming it */
	char *p = policy_text(9);
	int64_t num;
	cr_assert_eq(store_begin_trial(st, id, p, NULL, "test", &num), PRESSO_OK);
	struct trial_metrics m = metrics_of(80, 1000);
	m.n_images = -5;
	cr_assert_eq(store_complete_trial(st, id, num, &m, layers3, 3, NULL, 0), PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "bad n_images"), "%s", status_msg());
	free(p);
	store_close(st);
}

extern const unsigned char db_schema_sql[];

/* A database as a presso of schema version 1 wrote it: that migration alone,
 * then a study whose config names its validation split and one that leaves
 * the default, with trials. Opening it for writing migrates it to the
 * current version: n_images from the config where the accuracy is a whole
 * number of its images, NULL otherwise (2); full fidelity (3). */
Test(store, a_version_1_database_migrates_with_its_image_counts)
{
	const char *path = fx_join(tmp, "v1.db");
	const char *all = (const char *)db_schema_sql;
	const char *end = strstr(all, "-- @migration 2");
	cr_assert_not_null(end);
	char *v1 = strndup(all, (size_t)(end - all));
	raw_exec(path, v1);
	free(v1);
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), 1);
	raw_exec(path,
		 "INSERT INTO studies (id, name, config_json, config_sha256, model_path, "
		 "model_sha256, dataset, seed, fp32_accuracy, fp32_size_bytes, fp32_bops, n_classes, "
		 "presso_version, created_at) VALUES "
		 "(1, 'given', '{\"data\": {\"splits\": {\"validation\": 1000}}}', '" SHA_A "', "
		 "'m.onnx', '" SHA_A "', 'd', 1, 90.0, 100000, 1e9, 10, '0.1.0', 0), "
		 "(2, 'default', '{\"name\": \"x\"}', '" SHA_A "', "
		 "'m.onnx', '" SHA_A "', 'd', 1, 90.0, 100000, 1e9, 10, '0.1.0', 0);"
		 "INSERT INTO trials (study_id, number, state, policy_json, policy_sha256, "
		 "started_at, heartbeat_at, ended_at, accuracy, size_bytes, bops) VALUES "
		 "(1, 1, 'complete', '{}', '" SHA_A "', 0, 0, 1, 89.5, 10000, 1), "
		 "(1, 2, 'complete', '{}', '" SHA_B "', 0, 0, 1, 89.55, 9000, 1), "
		 "(1, 3, 'running', '{}', '" SHA_B "', 0, 0, NULL, NULL, NULL, NULL), "
		 "(2, 1, 'complete', '{}', '" SHA_A "', 0, 0, 1, 89.98, 10000, 1)");
	struct store *st;
	cr_assert_eq(store_open(path, 0, &st), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), 3);
	cr_assert_eq(store_schema_version(), 3);
	/* migration 3: every older trial was scored on its whole split */
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM v_trials WHERE fidelity = 'full' AND "
				   "low_accuracy IS NULL AND low_n_images IS NULL"),
		     4);
	/* 895 of 1,000; 89.55 % is not a whole number of 1,000 images; running */
	cr_assert_eq(raw_int(path, "SELECT n_images FROM v_trials WHERE study = 'given' AND "
				   "trial = 1"),
		     1000);
	cr_assert_eq(raw_int(path, "SELECT n_images IS NULL FROM trials WHERE study_id = 1 AND "
				   "number = 2"),
		     1);
	cr_assert_eq(raw_int(path, "SELECT n_images IS NULL FROM trials WHERE study_id = 1 AND "
				   "number = 3"),
		     1);
	/* the default validation split: 4,499 of 5,000 */
	cr_assert_eq(raw_int(path, "SELECT n_images FROM trials WHERE study_id = 2"), 5000);
	/* the migrated database answers `at` picks: trial 1's 95 % bound on the
	 * drop is 2.1, trial 2 has no bound */
	cr_assert_eq(pick(st, 1, "min size_kb where accuracy_drop <= 1"), 2);
	cr_assert_eq(pick(st, 1, "min size_kb where accuracy_drop <= 2.5 at 95%"), 1);
	cr_assert_eq(pick(st, 1, "min size_kb where accuracy_drop <= 1 at 95%"), 0);
	cr_assert_eq(pick(st, 2, "min size_kb where accuracy_drop <= 1 at 95%"), 1);
	store_close(st);
	/* a second open finds it at the latest version and changes nothing */
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_OK, "%s", status_msg());
	store_close(st);
}

Test(store, objectives_parse)
{
	enum store_objective o[PARETO_MAX_OBJECTIVES];
	int n;
	cr_assert_eq(store_parse_objectives("accuracy,size", o, &n), PRESSO_OK);
	cr_assert_eq(n, 2);
	cr_assert_eq(o[0], OBJ_ACCURACY);
	cr_assert_eq(o[1], OBJ_SIZE);
	cr_assert_eq(store_parse_objectives("latency_us,bops,acc,size_bytes", o, &n), PRESSO_OK);
	cr_assert_eq(n, 4);
	cr_assert_eq(store_parse_objectives("accuracy,sise", o, &n), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "unknown objective 'sise'"), "%s", status_msg());
	cr_assert_eq(store_parse_objectives("accuracy,accuracy", o, &n), PRESSO_E_USAGE);
	cr_assert_eq(store_parse_objectives("accuracy", o, &n), PRESSO_E_USAGE);
	cr_assert_eq(store_parse_objectives("", o, &n), PRESSO_E_USAGE);
}

Test(store, summaries)
{
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	new_study(st, "empty");
	add_trial(st, id, 0, 89.5, 30000);
	add_trial(st, id, 1, 91.0, 90000);
	add_trial(st, id, 2, 88.0, 10000);
	int64_t run;
	char *p = policy_text(9);
	cr_assert_eq(store_begin_trial(st, id, p, NULL, NULL, &run), PRESSO_OK);
	struct study_summary *ss;
	int n;
	cr_assert_eq(store_list_studies(st, &ss, &n), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n, 2);
	cr_assert_str_eq(ss[0].info.name, "s");
	cr_assert_eq(ss[0].n_complete, 3);
	cr_assert_eq(ss[0].n_running, 1);
	cr_assert_eq(ss[0].n_failed, 0);
	cr_assert_eq(ss[0].best_accuracy_trial, 2);
	cr_assert_float_eq(ss[0].best_accuracy, 91.0, 0);
	cr_assert_eq(ss[0].small_trial, 1, "88.0 is more than one point below 90");
	cr_assert_eq(ss[0].small_size_bytes, 30000);
	cr_assert_eq(ss[0].n_front, 3);
	cr_assert(ss[0].last_activity >= ss[0].info.created_at);
	cr_assert_str_eq(ss[1].info.name, "empty");
	cr_assert(isnan(ss[1].best_accuracy));
	cr_assert_eq(ss[1].small_size_bytes, -1);
	cr_assert_eq(ss[1].n_front, 0);
	store_study_summaries_free(ss, n);
	store_study_summaries_free(NULL, 0);
	store_close(st);
	free(p);
}

/* --- a reader while a writer inserts ------------------------------------------ */

#define WRITER_TRIALS 300

static int writer_child(const char *path, int64_t study)
{
	struct store *st;
	if (store_open(path, 0, &st) != PRESSO_OK)
		return 1;
	for (int i = 0; i < WRITER_TRIALS; i++) {
		char *p = policy_text(1000 + i);
		int64_t n;
		struct trial_metrics m = metrics_of(50 + (i * 37) % 50, 1000 + (i * 7919) % 99000);
		bool ok = store_begin_trial(st, study, p, NULL, "writer", &n) == PRESSO_OK &&
			  store_complete_trial(st, study, n, &m, layers3, 3, NULL, 0) == PRESSO_OK;
		free(p);
		if (!ok) {
			fprintf(stderr, "writer: %s\n", status_msg());
			return 2;
		}
	}
	store_close(st);
	return 0;
}

Test(store, reader_sees_no_errors_while_a_writer_inserts)
{
	const char *path = fx_join(tmp, "runs.db");
	struct store *st = open_new("runs.db");
	int64_t id = new_study(st, "s");
	store_close(st);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(writer_child(path, id));
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_OK, "%s", status_msg());
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	int last = 0, reads = 0, status = 0;
	bool writer_done = false;
	for (;;) {
		struct pareto_result r;
		cr_assert_eq(store_pareto(st, id, objs, 2, NULL, &r), PRESSO_OK, "read %d: %s", reads,
			     status_msg());
		cr_assert_geq(r.n_candidates, last, "complete trials never disappear");
		last = r.n_candidates;
		/* a trial seen complete has its layers (same transaction) */
		if (r.n_front > 0) {
			struct layer_choice *ls;
			int nl;
			cr_assert_eq(store_get_layers(st, id, r.front[0].number, &ls, &nl), PRESSO_OK);
			cr_assert_eq(nl, 3);
			free(ls);
		}
		store_pareto_result_free(&r);
		reads++;
		if (writer_done)
			break;
		pid_t w = waitpid(pid, &status, WNOHANG);
		cr_assert_geq(w, 0);
		writer_done = w == pid;
	}
	store_close(st);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer failed (status %d)",
		  status);
	cr_assert_eq(last, WRITER_TRIALS, "the last read sees every trial");
	cr_log_info("%d reads while %d trials were written", reads, WRITER_TRIALS);
}

/* 16.01 - 15.01 is 1.0000000000000018 in doubles; a user asking for a drop of
 * at most one point means this trial, in SQL and in expr_eval alike. */
Test(store, accuracy_drop_has_no_float_noise)
{
	struct store *st = open_new("runs.db");
	struct study_spec sp = spec_of("s", CONFIG_A);
	sp.baseline.accuracy = 16.01;
	int64_t id;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK);
	volatile double fp32 = 16.01, acc = 15.01;
	cr_assert_gt(fp32 - acc, 1.0, "the premise: the subtraction is not exact");
	int64_t n = add_trial(st, id, 0, 15.01, 5000);
	add_trial(st, id, 1, 16.0, 50000);
	struct expr_pick pk;
	cr_assert_eq(expr_parse_pick("min size where accuracy_drop <= 1", "--pick", &pk), PRESSO_OK);
	int64_t num;
	bool found;
	cr_assert_eq(store_pick(st, id, &pk, &num, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(num, n);
	struct trial_metrics m = metrics_of(15.01, 5000);
	double v[EXPR_METRIC_COUNT];
	store_expr_values(&m, &sp.baseline, n, v);
	cr_assert(expr_eval(pk.where, v));
	expr_pick_free(&pk);
	struct study_summary *ss;
	int k;
	cr_assert_eq(store_list_studies(st, &ss, &k), PRESSO_OK);
	cr_assert_eq(ss[0].small_trial, n, "within one point of FP32");
	store_study_summaries_free(ss, k);
	store_close(st);
}

/* --- fine-tuned trials and migration 2 ---------------------------------------- */

/* db/schema.sql as compiled in (db/embed_schema.cmake). */
extern const unsigned char db_schema_sql[];
extern const size_t db_schema_sql_bytes;

static const char tuned_model[] = "PRESSO-model-bytes";

static struct finetune_record record_of(int64_t parent)
{
	return (struct finetune_record){
		.parent = parent, .source = "search", .settings_json = "{\"lr\":0.01}",
		.steps = 5, .epochs = 0, .lr = 0.01, .kd_weight = 0.5, .temperature = 4,
		.train_seconds = 1.5, .images_per_s = 100, .model = tuned_model,
		.model_bytes = sizeof tuned_model};
}

Test(store, finetuned_trials_beside_their_ptq_trial)
{
	struct store *st = open_new("runs.db");
	const char *path = fx_join(tmp, "runs.db");
	int64_t study = new_study(st, "s");
	int64_t a = add_trial(st, study, 1, 80.0, 4000); /* 1 */
	int64_t b = add_trial(st, study, 2, 70.0, 2000); /* 2 */
	int64_t running;
	char *p3 = policy_text(3);
	cr_assert_eq(store_begin_trial(st, study, p3, NULL, "test", &running), PRESSO_OK);
	free(p3);
	/* tuned from trial 2: its own number, the parent's policy, complete at once */
	struct finetune_record f = record_of(b);
	struct trial_metrics m = metrics_of(78.0, 2100);
	m.test_accuracy = 77.0;
	int64_t tuned = 0;
	cr_assert_eq(store_add_finetuned(st, study, &f, &m, layers3, 3, "host:1", &tuned), PRESSO_OK,
		     "%s", status_msg());
	cr_assert_eq(tuned, 4);
	struct store_trial *t = NULL, *parent = NULL;
	cr_assert_eq(store_get_trial(st, study, tuned, &t), PRESSO_OK);
	cr_assert_eq(store_get_trial(st, study, b, &parent), PRESSO_OK);
	cr_assert_eq(t->state, TRIAL_COMPLETE);
	cr_assert_eq(t->parent_trial, b);
	cr_assert_eq(parent->parent_trial, 0);
	cr_assert_str_eq(t->policy_sha256, parent->policy_sha256);
	cr_assert_float_eq(t->metrics.test_accuracy, 77.0, 1e-9);
	store_trials_free(t, 1);
	store_trials_free(parent, 1);
	/* its record and model come back */
	struct finetune_info fi;
	bool found = false;
	cr_assert_eq(store_get_finetune(st, study, tuned, &fi, &found), PRESSO_OK);
	cr_assert(found);
	cr_assert_eq(fi.parent, b);
	cr_assert_str_eq(fi.source, "search");
	cr_assert_eq(fi.steps, 5);
	cr_assert_eq(fi.model_bytes, (int64_t)sizeof tuned_model);
	char hex[SHA256_HEX_BYTES];
	sha256_hex(tuned_model, sizeof tuned_model, hex);
	cr_assert_str_eq(fi.model_sha256, hex);
	store_finetune_info_free(&fi);
	cr_assert_eq(store_get_finetune(st, study, a, &fi, &found), PRESSO_OK);
	cr_assert_not(found, "a PTQ trial has no fine-tune record");
	void *bytes = NULL;
	size_t n = 0;
	cr_assert_eq(store_get_finetune_model(st, study, tuned, &bytes, &n), PRESSO_OK);
	cr_assert(n == sizeof tuned_model && memcmp(bytes, tuned_model, n) == 0);
	free(bytes);
	cr_assert_eq(store_get_finetune_model(st, study, a, &bytes, &n), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "not a fine-tuned trial"), "%s", status_msg());
	int64_t *parents = NULL;
	int n_parents = 0;
	cr_assert_eq(store_finetuned_parents(st, study, &parents, &n_parents), PRESSO_OK);
	cr_assert(n_parents == 1 && parents[0] == b);
	free(parents);
	/* the search's counts and hashes are of its PTQ trials; numbering goes on */
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, study, &ri), PRESSO_OK);
	cr_assert_eq(ri.n_complete, 2);
	cr_assert_eq(ri.n_running, 1);
	cr_assert_eq(ri.n_finetuned, 1);
	cr_assert_eq(ri.next_number, 5);
	struct study_summary *sum = NULL;
	int n_sum = 0;
	cr_assert_eq(store_list_studies(st, &sum, &n_sum), PRESSO_OK);
	cr_assert(n_sum == 1 && sum[0].n_complete == 3 && sum[0].n_finetuned == 1,
		  "presso studies counts every complete row, the fine-tuned apart too: %d %d %d", n_sum,
		  n_sum ? sum[0].n_complete : -1, n_sum ? sum[0].n_finetuned : -1);
	store_study_summaries_free(sum, n_sum);
	/* refused: a running parent, a tuned parent, a missing one; nothing written */
	f = record_of(running);
	cr_assert_eq(store_add_finetuned(st, study, &f, &m, layers3, 3, NULL, NULL), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "is running"), "%s", status_msg());
	f = record_of(tuned);
	cr_assert_eq(store_add_finetuned(st, study, &f, &m, layers3, 3, NULL, NULL), PRESSO_E_USAGE);
	cr_assert(strstr(status_msg(), "itself fine-tuned (from trial 2)"), "%s", status_msg());
	f = record_of(99);
	cr_assert_eq(store_add_finetuned(st, study, &f, &m, layers3, 3, NULL, NULL), PRESSO_E_USAGE);
	f = record_of(a);
	f.model_bytes = 0;
	cr_assert_eq(store_add_finetuned(st, study, &f, &m, layers3, 3, NULL, NULL), PRESSO_E_CONFIG);
	f = record_of(a);
	struct trial_metrics bad = m;
	bad.accuracy = 101;
	cr_assert_eq(store_add_finetuned(st, study, &f, &bad, layers3, 3, NULL, NULL),
		     PRESSO_E_CONFIG);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM trials"), 4);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM finetunes"), 1);
	/* a lost fine-tuned row (a row another tool left running) is not re-queued */
	raw_exec(path, "UPDATE trials SET state = 'running', ended_at = NULL, parent_trial = 1 "
		       "WHERE number = 3");
	int n_marked = 0, n_pol = 0;
	struct store_policy *pol = NULL;
	cr_assert_eq(store_requeue_stale(st, study, 0, &n_marked, &pol, &n_pol), PRESSO_OK);
	cr_assert_eq(n_marked, 1);
	cr_assert_eq(n_pol, 0, "a fine-tuned row is not the search's to evaluate again");
	store_policies_free(pol, n_pol);
	/* on the front, and --where/--pick know `tuned` */
	struct expr *where = NULL;
	cr_assert_eq(expr_parse("tuned = 1", "--where", &where), PRESSO_OK);
	struct store_trial *list = NULL;
	int n_list = 0;
	cr_assert_eq(store_list_trials(st, study, true, where, &list, &n_list), PRESSO_OK);
	cr_assert(n_list == 1 && list[0].number == tuned);
	store_trials_free(list, n_list);
	expr_free(where);
	enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	struct pareto_result r;
	cr_assert_eq(store_pareto(st, study, objs, 2, NULL, &r), PRESSO_OK);
	bool on_front = false;
	for (int i = 0; i < r.n_front; i++)
		on_front |= r.front[i].number == tuned && r.front[i].parent_trial == b;
	cr_assert(on_front, "78%% at 2100 bytes is on the front");
	store_pareto_result_free(&r);
	struct expr_pick pick;
	cr_assert_eq(expr_parse_pick("min size where tuned = 1", "--pick", &pick), PRESSO_OK);
	int64_t picked = 0;
	cr_assert_eq(store_pick(st, study, &pick, &picked, &found), PRESSO_OK);
	cr_assert(found && picked == tuned);
	expr_pick_free(&pick);
	cr_assert_eq(raw_int(path, "SELECT tuned_from FROM v_finetunes WHERE trial = 4"), b);
	store_close(st);
}

Test(store, migrates_a_version_1_database)
{
	/* a database as presso 0.1 with schema 1 wrote it */
	const char *path = fx_join(tmp, "old.db");
	const char *text = (const char *)db_schema_sql;
	const char *v2 = strstr(text, "-- @migration 2");
	cr_assert_not_null(v2);
	char *v1 = strndup(text, (size_t)(v2 - text));
	raw_exec(path, v1);
	free(v1);
	raw_exec(path,
		 "INSERT INTO studies (name, config_json, config_sha256, model_path, model_sha256, "
		 "dataset, seed, fp32_accuracy, fp32_size_bytes, fp32_bops, n_classes, "
		 "presso_version, created_at) VALUES ('old', '{}', printf('%064d', 0), 'm.onnx', "
		 "printf('%064d', 1), 'd', 1, 90, 10000, 1e6, 10, '0.1.0', 0);"
		 "INSERT INTO trials (study_id, number, state, policy_json, policy_sha256, "
		 "started_at, heartbeat_at, ended_at, accuracy, size_bytes, bops) VALUES "
		 "(1, 1, 'complete', '{}', printf('%064d', 2), 0, 1, 1, 88, 3000, 1e5);");
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), 1);
	/* read-only, it is refused and left alone */
	struct store *st = NULL;
	cr_assert_eq(store_open(path, STORE_READONLY, &st), PRESSO_E_UNSUPPORTED);
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), 1);
	/* opened for writing, it migrates and keeps its trial */
	cr_assert_eq(store_open(path, 0, &st), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(raw_int(path, "PRAGMA user_version"), store_schema_version());
	struct study_info info;
	cr_assert_eq(store_find_study(st, "old", &info), PRESSO_OK, "%s", status_msg());
	struct store_trial *t = NULL;
	cr_assert_eq(store_get_trial(st, info.id, 1, &t), PRESSO_OK);
	cr_assert_eq(t->parent_trial, 0);
	cr_assert_float_eq(t->metrics.accuracy, 88, 1e-9);
	store_trials_free(t, 1);
	cr_assert_eq(raw_int(path, "SELECT tuned FROM v_trials WHERE trial = 1"), 0);
	/* and takes a fine-tuned trial of it */
	struct finetune_record f = record_of(1);
	struct trial_metrics m = metrics_of(89.0, 3100);
	int64_t tuned = 0;
	cr_assert_eq(store_add_finetuned(st, info.id, &f, &m, layers3, 3, NULL, &tuned), PRESSO_OK,
		     "%s", status_msg());
	cr_assert_eq(tuned, 2);
	store_study_info_free(&info);
	store_close(st);
	cr_assert_eq(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
}
