/* test_search_run.c - `presso search` and `presso latency` as a user runs
 * them, on LeNet with tiny splits (calibration 100, validation 200, test 200):
 *  - the same seed and worker count give the same trials (v_trials rows), and
 *    so does another worker count (the batch does not depend on it);
 *  - a finished search leaves every trial complete, numbered 1..N, each
 *    policy once, the front re-checked on the test split, the study finished;
 *  - every strategy runs end to end;
 *  - usage and config errors exit 2 with a message naming the problem;
 *  - `presso latency` prints the table.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

static char *dir;
static char *paths[32]; /* what path() handed out, freed by teardown */
static int n_paths;

/* dir/name, kept until the end of the test (fx_join's buffers rotate). */
static const char *path(const char *name)
{
	cr_assert_lt(n_paths, 32);
	paths[n_paths] = strdup(fx_join(dir, name));
	return paths[n_paths++];
}

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
	for (int i = 0; i < n_paths; i++)
		free(paths[i]);
	n_paths = 0;
}

/* A LeNet config with tiny splits and the given extra sections; returns its path. */
static const char *config(const char *name, const char *extra)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"%s\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": 200, \"test\": 200}}"
		 "%s%s}",
		 name, fx_src("models/lenet.onnx"), extra && *extra ? ", " : "", extra ? extra : "");
	char file[256];
	snprintf(file, sizeof file, "%s.json", name);
	const char *p = path(file);
	cr_assert(fx_write(p, body, strlen(body)));
	return p;
}

/* Rows of a query, one line each, '|'-separated (malloc'd). */
static char *rows(const char *db, const char *sql)
{
	char *r = fx_rows(db, sql);
	cr_assert_not_null(r, "%s: %s", db, sql);
	return r;
}

static long count(const char *db, const char *sql)
{
	char *r = rows(db, sql);
	long v = strtol(r, NULL, 10);
	free(r);
	return v;
}

static int search(const char *cfg, const char *db, const char *more, char **out, char **err)
{
	char args[8192];
	snprintf(args, sizeof args, "search --quiet --config '%s' --db '%s' %s", cfg, db,
		 more ? more : "");
	return fx_presso(args, out, err);
}

#define TRIAL_ROWS \
	"select trial, state, accuracy, size_bytes, bops, mean_bits, policy_sha256 from v_trials " \
	"order by trial"

Test(search_run, same_seed_same_trials, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("det", "\"search\": {\"population\": 6, \"seed\": 5}");
	char db[3][512];
	const char *workers[3] = {"--workers 2", "--workers 2", "--workers 1"};
	char *first = NULL;
	for (int i = 0; i < 3; i++) {
		snprintf(db[i], sizeof db[i], "%s", path(i == 0 ? "a.db" : i == 1 ? "b.db" : "c.db"));
		char more[64], *out, *err;
		snprintf(more, sizeof more, "%s --max-trials 18", workers[i]);
		cr_assert_eq(search(cfg, db[i], more, &out, &err), 0, "%s", err);
		free(out);
		free(err);
		char *r = rows(db[i], TRIAL_ROWS);
		cr_assert_eq(count(db[i], "select count(*) from trials"), 18);
		if (!first)
			first = r;
		else {
			cr_assert_str_eq(r, first, "run %d differs from run 0 (%s)", i, workers[i]);
			free(r);
		}
	}
	free(first);
}

Test(search_run, a_finished_search, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("done", "\"search\": {\"population\": 6}, "
					 "\"constraints\": {\"max_size_kb\": 40}");
	const char *db = path("runs.db");
	char *out, *err;
	cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 20", &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "ended:     trial budget reached: 20 of 20 trials"), "%s", out);
	cr_assert(strstr(out, "measured for the front"), "%s", out);
	cr_assert(strstr(out, "best:      trial "), "%s", out);
	cr_assert(strstr(out, "presso export --db"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(count(db, "select count(*) from trials where state = 'complete'"), 20);
	cr_assert_eq(count(db, "select max(number) - min(number) + 1 from trials"), 20);
	cr_assert_eq(count(db, "select count(distinct policy_sha256) from trials"), 20);
	cr_assert_eq(count(db, "select count(*) from studies where status = 'finished'"), 1);
	cr_assert_gt(count(db, "select count(*) from trials where test_accuracy is not null"), 0);
	cr_assert_eq(count(db, "select count(*) from trials where test_accuracy is not null and "
			       "latency_us is null"),
		     0, "the re-checked front also has a measured latency");
	cr_assert_eq(count(db, "select count(*) from trial_layers"), 20 * 5);
	cr_assert_eq(count(db, "select count(*) from search_state where key in ('rng', "
			       "'population', 'bandit') and trial_number = 20"),
		     3, "the state written with the last trial");
}

Test(search_run, every_strategy, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *names[] = {"random", "bandit", "evolution", "hybrid"};
	for (int i = 0; i < 4; i++) {
		char extra[256], name[32];
		snprintf(name, sizeof name, "s-%s", names[i]);
		snprintf(extra, sizeof extra,
			 "\"search\": {\"strategy\": \"%s\", \"population\": 4, \"bandit\": \"%s\"}, "
			 "\"objectives\": {\"minimize\": [\"size\", \"bops\"]}",
			 names[i], i % 2 ? "ucb" : "thompson");
		const char *cfg = config(name, extra);
		const char *db = path("all.db");
		char *out, *err;
		cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 10", &out, &err), 0, "%s: %s",
			     names[i], err);
		cr_assert(strstr(out, names[i]), "%s", out);
		free(out);
		free(err);
		char sql[256];
		snprintf(sql, sizeof sql,
			 "select count(*) from v_trials where study = '%s' and state = 'complete'",
			 name);
		cr_assert_eq(count(db, sql), 10, "%s", names[i]);
		snprintf(sql, sizeof sql,
			 "select count(*) from v_trials where study = '%s' and test_accuracy is not null",
			 name);
		cr_assert_gt(count(db, sql), 0, "%s: the front re-checked on the test split",
			     names[i]);
	}
}

Test(search_run, usage_and_config_errors, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *db = path("e.db");
	const char *good = config("e", "\"search\": {\"population\": 4}");
	struct {
		const char *args;
		const char *needle;
	} usage[] = {
		{"search --db x.db", "--config is required"},
		{"search --config c.json", "--db is required"},
		{"search --config c.json --db x.db --resume --new-study", "contradict"},
		{"search --config c.json --db x.db --workers 0", "--workers must be an integer"},
		{"search --config c.json --db x.db --max-trials ten", "--max-trials must be"},
		{"search --config c.json --db x.db --time-limit 8", "--time-limit must be a duration"},
		{"search --config c.json --db x.db --bogus", "unknown option '--bogus'"},
	};
	for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
		char *err;
		cr_assert_eq(fx_presso(usage[i].args, NULL, &err), 2, "%s", usage[i].args);
		cr_assert(strstr(err, usage[i].needle), "%s: %s", usage[i].args, err);
		free(err);
	}
	/* config errors name the file and the field, before anything is loaded */
	const char *bad = config("bad", "\"space\": {\"default\": {\"bits\": [4, 9]}}");
	char *err;
	cr_assert_eq(search(bad, db, NULL, NULL, &err), 2);
	cr_assert(strstr(err, "bad.json: space.default.bits[1]: expected an integer in 1..8, got 9"),
		  "%s", err);
	free(err);
	bad = config("prune", "\"space\": {\"default\": {\"prune\": [0, 1.5]}}");
	cr_assert_eq(search(bad, db, NULL, NULL, &err), 2);
	cr_assert(strstr(err, "space.default.prune[1]"), "%s", err);
	free(err);
	cr_assert_neq(access(db, F_OK), 0, "a config error creates no database");
	/* an existing study needs --resume or --new-study */
	cr_assert_eq(search(good, db, "--max-trials 4 --workers 2", NULL, &err), 0, "%s", err);
	free(err);
	cr_assert_eq(search(good, db, "--max-trials 4", NULL, &err), 2);
	cr_assert(strstr(err, "study 'e' already exists") && strstr(err, "--resume"), "%s", err);
	free(err);
	char *out;
	cr_assert_eq(search(good, db, "--max-trials 2 --new-study --workers 2", &out, &err), 0,
		     "%s", err);
	cr_assert(strstr(out, "study:     e-2 (new)"), "%s", out);
	free(out);
	free(err);
	/* a resumed study at its budget only finishes */
	cr_assert_eq(search(good, db, "--max-trials 4 --resume", &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "(resumed)") && strstr(out, "4 of 4 trials (this run: 0 complete"),
		  "%s", out);
	free(out);
	free(err);
	/* a changed config is another study */
	const char *changed = config("e", "\"search\": {\"population\": 5}");
	cr_assert_eq(search(changed, db, "--resume", NULL, &err), 2);
	cr_assert(strstr(err, "differs"), "%s", err);
	free(err);
}

Test(search_run, latency_table, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("lat", "\"space\": {\"default\": {\"bits\": [4, 8]}}");
	char args[4200], *out, *err;
	snprintf(args, sizeof args, "latency --runs 3 --config '%s'", cfg);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "/fc1/Gemm") && strstr(out, "w4") && strstr(out, "w8") &&
		  strstr(out, "act_bits 8") && strstr(out, "measured whole"),
		  "%s", out);
	cr_assert_null(strstr(out, "w2"), "2 bits is not in the space: %s", out);
	cr_assert_null(strstr(out, "shape changes"), "no pruning or rank in the space: %s", out);
	free(out);
	free(err);
	/* structured pruning and ranks in the space: one delta per layer and value */
	cfg = config("latp", "\"space\": {\"default\": {\"bits\": 8, \"prune\": [0, 0.5],"
			     " \"prune_kind\": \"structured\", \"rank\": [0.5, 1]}}");
	snprintf(args, sizeof args, "latency --runs 3 --json --config '%s'", cfg);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cJSON *doc = cJSON_Parse(out);
	const cJSON *deltas = cJSON_GetObjectItem(doc, "deltas");
	cr_assert(cJSON_IsArray(deltas), "%s", out);
	int n_prune = 0, n_rank = 0;
	for (const cJSON *d = deltas->child; d; d = d->next) {
		cr_assert_eq(cJSON_GetArraySize(d), 4);
		int knob = cJSON_GetArrayItem(d, 1)->valueint;
		cr_assert_float_eq(cJSON_GetArrayItem(d, 2)->valuedouble, 0.5, 1e-12);
		n_prune += knob == 0;
		n_rank += knob == 1;
	}
	/* LeNet: conv1, conv2, fc1, fc2 can lose channels (fc3 is the output);
	 * all five layers get a rank */
	cr_assert_eq(n_prune, 4, "%s", out);
	cr_assert_eq(n_rank, 5, "%s", out);
	cJSON_Delete(doc);
	free(out);
	free(err);
	/* a search with latency as an objective stores the table and estimates */
	cfg = config("latobj", "\"space\": {\"default\": {\"bits\": [4, 8]}}, "
			       "\"objectives\": {\"minimize\": [\"size\", \"latency\"]}, "
			       "\"search\": {\"population\": 4, \"latency_runs\": 3}");
	const char *db = path("lat.db");
	cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 6", &out, &err), 0, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(count(db, "select count(*) from search_state where key = 'latency_lut'"), 1);
	cr_assert_eq(count(db, "select count(*) from trials where latency_us is null"), 0,
		     "every trial has its latency (estimated, or measured for the front)");
}

Test(search_run, every_trial_a_new_model, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	/* 2^15 genomes but 32 models: prune_kind does nothing without pruning,
	 * and a rank of 0.95 is left at full on every LeNet layer (r (m + k) >= m k) */
	const char *cfg = config("canon", "\"space\": {\"default\": {\"bits\": [4, 8], "
					  "\"bias_correction\": [false], \"prune\": [0], "
					  "\"prune_kind\": [\"unstructured\", \"structured\"], "
					  "\"rank\": [0.95, 1]}}, "
					  "\"search\": {\"population\": 8, \"seed\": 3}");
	const char *db = path("runs.db");
	char *out, *err;
	cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 40", &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "every policy of the space has been evaluated"), "%s", out);
	free(out);
	free(err);
	/* the models by their weight bits: each once, all 32 */
	const char *models = "select count(distinct b) from (select group_concat(bits, ',') "
			     "as b from (select trial_id, bits from trial_layers order by "
			     "trial_id, idx) group by trial_id)";
	cr_assert_eq(count(db, "select count(*) from trials"), 32);
	cr_assert_eq(count(db, models), 32);
	cr_assert_eq(count(db, "select count(distinct policy_sha256) from trials"), 32);
	/* ... and the redundant fields did vary: the hash is not the text's */
	cr_assert_gt(count(db, "select count(*) from trials where policy_json like '%structured%' "
			       "or policy_json like '%0.95%'"),
		     0);
}

/* Gives every trial the hash an older presso stored: the SHA-256 of its
 * policy text as written, not of the model it makes. */
static void hash_as_written(const char *db)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_stmt *q, *u;
	cr_assert_eq(sqlite3_prepare_v2(h, "select id, policy_json from trials", -1, &q, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, "update trials set policy_sha256 = ? where id = ?", -1,
					&u, NULL),
		     SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *json = (const char *)sqlite3_column_text(q, 1);
		char hex[SHA256_HEX_BYTES];
		sha256_hex(json, strlen(json), hex);
		sqlite3_bind_text(u, 1, hex, -1, SQLITE_STATIC);
		sqlite3_bind_int64(u, 2, sqlite3_column_int64(q, 0));
		cr_assert_eq(sqlite3_step(u), SQLITE_DONE);
		sqlite3_reset(u);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	sqlite3_close(h);
}

Test(search_run, a_study_hashed_as_written_resumes_as_it_was, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("old", "\"space\": {\"default\": {\"bits\": [2, 4, 8], "
					"\"bias_correction\": [false], \"prune\": [0], "
					"\"prune_kind\": [\"unstructured\", \"structured\"], "
					"\"rank\": [0.95, 1]}}, "
					"\"search\": {\"population\": 6, \"seed\": 4}");
	const char *whole = path("whole.db"), *parts = path("parts.db");
	char *out, *err;
	cr_assert_eq(search(cfg, whole, "--workers 2 --max-trials 24", &out, &err), 0, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(search(cfg, parts, "--workers 2 --max-trials 12", &out, &err), 0, "%s", err);
	free(out);
	free(err);
	char *before = rows(parts, "select policy_sha256 from trials order by number");
	hash_as_written(parts);
	char *after = rows(parts, "select policy_sha256 from trials order by number");
	cr_assert_str_neq(before, after, "some policies were written other than canonically");
	free(before);
	free(after);
	cr_assert_eq(search(cfg, parts, "--workers 2 --max-trials 24 --resume", &out, &err), 0,
		     "%s", err);
	free(out);
	free(err);
	/* the same policies in the same order as a study run by this presso
	 * alone: none of the old trials' models evaluated again */
	const char *texts = "select number, policy_json from trials order by number";
	char *a = rows(whole, texts), *b = rows(parts, texts);
	cr_assert_str_eq(b, a);
	free(a);
	free(b);
	const char *models = "select count(distinct b) from (select group_concat(bits, ',') "
			     "as b from (select trial_id, bits from trial_layers order by "
			     "trial_id, idx) group by trial_id)";
	cr_assert_eq(count(parts, models), 24);
}

/* search.rescore_images (issue 19 part 5): the feasible front trials whose
 * accuracy interval at constraints.confidence straddles the accuracy bound
 * are scored on more images before the test re-check; their accuracy becomes
 * that of the split and the extra images together, the split's own is kept,
 * and a resumed run does not score them again. */
Test(search_run, close_front_trials_are_rescored_on_more_images, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("rescore", "\"search\": {\"population\": 6, \"rescore_images\": 1000},"
					    "\"constraints\": {\"max_accuracy_drop\": 1.5, "
					    "\"confidence\": 0.9}");
	const char *db = path("runs.db");
	char *out, *err;
	cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 18", &out, &err), 0, "%s", err);
	/* on 200 images a 90 % interval is about 5 points wide: every feasible
	 * front trial straddles a 1.5-point bound */
	cr_assert(strstr(out, "rescored:  "), "%s", out);
	free(out);
	free(err);
	long n = count(db, "select count(*) from v_trials where valid_accuracy is not null");
	cr_assert_gt(n, 0);
	cr_assert_eq(count(db, "select count(*) from v_trials where valid_accuracy is not null and "
			       "(n_images <> 1200 or fidelity <> 'full' or "
			       "abs(accuracy * 12 - round(accuracy * 12)) > 1e-6 or "
			       "abs(valid_accuracy * 2 - round(valid_accuracy * 2)) > 1e-6)"),
		     0, "a whole number of 1,200 images, the split's own of 200 kept");
	cr_assert_eq(count(db, "select count(*) from v_trials where valid_accuracy is null and "
			       "n_images <> 200"),
		     0);
	/* the summary's best meets the bound at 90 % on what it was scored on */
	char *best = rows(db, "select count(*) from v_trials where test_accuracy is not null");
	cr_assert_gt(strtol(best, NULL, 10), 0);
	free(best);
	cr_assert_eq(search(cfg, db, "--workers 2 --max-trials 18 --resume", &out, &err), 0, "%s",
		     err);
	cr_assert_null(strstr(out, "rescored:  "), "nothing is re-scored twice: %s", out);
	free(out);
	free(err);
	cr_assert_eq(count(db, "select count(*) from v_trials where valid_accuracy is not null"), n);
	/* without a confidence there is no interval to straddle */
	cfg = config("bad", "\"search\": {\"rescore_images\": 1000},"
			    "\"constraints\": {\"max_accuracy_drop\": 1.5}");
	cr_assert_eq(search(cfg, path("bad.db"), "--max-trials 4", &out, &err), 2, "%s", err);
	cr_assert(strstr(err, "search.rescore_images"), "%s", err);
	free(out);
	free(err);
}

/* A model whose FP32 baseline runs but whose every compressed trial fails
 * the same way (a Gemm whose bias is an activation: no INT8 step takes it).
 * A budget below the consecutive-failure limit used to end such a run with
 * exit 0 and nothing found; it now exits 1 naming the failure, and the
 * failed trials are stored as such. */
Test(search_run, a_run_whose_every_trial_failed_exits_1, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	static float w[784 * 10];
	uint32_t seed = 3;
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		seed = seed * 1664525u + 1013904223u;
		w[i] = (float)((int)(seed >> 16) % 201 - 100) * 5e-4f;
	}
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1, 28, 28}, 4);
	mb_init_i64(&b, "flat", (int64_t[]){2}, 1, (int64_t[]){-1, 784});
	mb_init_f32(&b, "w1", (int64_t[]){784, 10}, 2, w);
	mb_init_f32(&b, "w2", (int64_t[]){784, 10}, 2, w);
	mb_node(&b, "Reshape", "flatten", (const char *[]){"x", "flat", NULL}, "f");
	mb_node(&b, "Gemm", "side", (const char *[]){"f", "w2", NULL}, "s");
	mb_node(&b, "Relu", "relu", (const char *[]){"s", NULL}, "r");
	mb_node(&b, "Gemm", "main", (const char *[]){"f", "w1", "r", NULL}, "y");
	mb_output(&b, "y");
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	const char *model = path("refused.onnx");
	cr_assert(fx_write(model, bytes, n));
	mb_free(&b);
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"refused\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"splits\": {\"seed\": 1, \"calibration\": 50, \"validation\": 100, \"test\": 100}},"
		 "\"space\": {\"default\": {\"bits\": [4, 8]}}}",
		 model);
	const char *cfg = path("refused.json");
	cr_assert(fx_write(cfg, body, strlen(body)));
	const char *db = path("refused.db");
	char *out, *err;
	cr_assert_eq(search(cfg, db, "--max-trials 3", &out, &err), 1, "%s", err);
	cr_assert(strstr(err, "all 3 trials of this run failed") &&
		  strstr(err, "layer 'main': Gemm with this input cannot run in the INT8 engine"),
		  "%s", err);
	cr_assert_eq(count(db, "select count(*) from trials where state = 'failed'"), 3);
	free(out);
	free(err);
}
