/* test_disk_full.c - a full disk is a runtime failure (exit status 1), not bad
 * input (2), for every command that writes: policy, export, compress (both
 * formats) and search. Nothing half-written is left behind.
 *
 * Two ways to run out of room without filling a real disk: standard output
 * sent to /dev/full (every write fails with ENOSPC), and a file size limit
 * (`ulimit -f`, with SIGXFSZ ignored, so writes past it fail with EFBIG). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/store.h"
#include "tests/fixtures.h"

/* Runs `sh -c 'SETUP; exec presso ARGS'` with stdout to out_path ("/dev/full",
 * or NULL for /dev/null); returns the exit status, *err what presso printed on
 * stderr (free it). */
static int run_sh(const char *setup, const char *args, const char *out_path, char **err)
{
	char *dir = fx_tmpdir();
	cr_assert_not_null(dir);
	const char *err_path = fx_join(dir, "stderr");
	size_t n = strlen(args) + strlen(setup) + 4096;
	char *cmd = malloc(n);
	snprintf(cmd, n, "%s; exec '%s' %s >'%s' 2>'%s' </dev/null", setup, PRESSO_BINARY, args,
		 out_path ? out_path : "/dev/null", err_path);
	int rc = system(cmd);
	free(cmd);
	*err = fx_read(err_path, NULL);
	cr_assert_not_null(*err);
	unlink(err_path);
	rmdir(dir);
	free(dir);
	cr_assert(rc != -1 && WIFEXITED(rc), "presso %s did not exit normally", args);
	return WEXITSTATUS(rc);
}

/* The number of entries in dir besides . and .. */
static int n_entries(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void remove_tree(char *dir)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

/* A LeNet study config with small splits, in dir. */
static const char *small_config(const char *dir)
{
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], "
		 "\"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 64, \"validation\": 100, \"test\": 100}},"
		 "\"quant\": {\"rounding\": \"nearest\"},"
		 "\"space\": {\"default\": {\"bits\": [4, 8]}},"
		 "\"search\": {\"max_trials\": 6, \"seed\": 3}}",
		 fx_src("models/lenet.onnx"));
	const char *path = fx_join(dir, "c.json");
	cr_assert(fx_write(path, body, strlen(body)));
	return path;
}

Test(disk_full, policy_to_a_full_stdout_exits_1)
{
	char *err, args[4096];
	snprintf(args, sizeof args, "policy --model '%s' -o -", fx_src("models/lenet.onnx"));
	int rc = run_sh(":", args, "/dev/full", &err);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	free(err);
}

Test(disk_full, export_to_a_full_stdout_exits_1)
{
	char *dir = fx_tmpdir();
	const char *db = fx_join(dir, "runs.db");
	char db_path[4096];
	snprintf(db_path, sizeof db_path, "%s", db);
	struct store *st;
	cr_assert_eq(store_open(db_path, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	struct study_spec sp = {
		.name = "s",
		.config_json = "{\"name\": \"s\"}",
		.model_path = "m.onnx",
		.model_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.dataset = "d",
		.seed = 1,
		.baseline = {90.0, 89.0, 100000, 6.4e6, 150.0, 10},
	};
	int64_t id, n;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK);
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": {\"bits\": 4}}", NULL, "w", &n),
		     PRESSO_OK);
	struct trial_metrics m = {89.0, 88.0, 30000, 1e6, 100.0, 4.0, 0.0, 1.0, 1000, false, 0, 0};
	struct layer_choice lc = {"fc", 4, 8, false, 0.0, 0, 1.0};
	cr_assert_eq(store_complete_trial(st, id, n, &m, &lc, 1, NULL, 0), PRESSO_OK);
	store_close(st);
	char *err, args[8192];
	snprintf(args, sizeof args, "export --db '%s' --study s --pick 'max accuracy' -o -", db_path);
	int rc = run_sh(":", args, "/dev/full", &err);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	free(err);
	remove_tree(dir);
}

/* compress to .presso and .onnx past a file size limit: exit 1, and the
 * folder holds no output and no temporary file. */
Test(disk_full, compress_past_a_size_limit_exits_1_leaving_nothing, .timeout = 120)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char cfg[4096];
	snprintf(cfg, sizeof cfg, "%s", small_config(dir));
	char *out_dir = fx_tmpdir();
	static const char *const ext[] = {"presso", "onnx"};
	for (int k = 0; k < 2; k++) {
		char *err, args[8192];
		snprintf(args, sizeof args,
			 "compress --config '%s' --policy int8 --split valid -o '%s/m.%s'", cfg,
			 out_dir, ext[k]);
		/* 16 blocks: far below LeNet's 60 kB in either format */
		int rc = run_sh("ulimit -f 16; trap '' XFSZ", args, NULL, &err);
		cr_assert_eq(rc, 1, "%s: exit %d: %s", ext[k], rc, err);
		cr_assert(strstr(err, "File too large") || strstr(err, "No space left"), "%s", err);
		cr_assert_eq(n_entries(out_dir), k, "%s: something was left in the folder", ext[k]);
		free(err);
		/* and without the limit it is written */
		rc = run_sh(":", args, NULL, &err);
		cr_assert_eq(rc, 0, "%s: exit %d: %s", ext[k], rc, err);
		cr_assert_eq(n_entries(out_dir), k + 1);
		free(err);
	}
	remove_tree(out_dir);
	remove_tree(dir);
}

/* A search whose database cannot grow stops with exit 1 and a message naming
 * the database; what it committed is kept, and --resume without the limit
 * completes the budget. */
Test(disk_full, search_past_a_size_limit_exits_1_and_resumes, .timeout = 300)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char cfg[4096], db[4096];
	snprintf(cfg, sizeof cfg, "%s", small_config(dir));
	snprintf(db, sizeof db, "%s", fx_join(dir, "runs.db"));
	char *err, args[16384];
	snprintf(args, sizeof args, "search --config '%s' --db '%s' --workers 1 --quiet", cfg, db);
	/* 200 blocks: room for the new database, not for its write-ahead log */
	int rc = run_sh("ulimit -f 200; trap '' XFSZ", args, NULL, &err);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
	cr_assert(strstr(err, db), "the message names the database: %s", err);
	free(err);
	snprintf(args, sizeof args, "search --config '%s' --db '%s' --workers 1 --quiet --resume",
		 cfg, db);
	rc = run_sh(":", args, NULL, &err);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	free(err);
	struct store *st;
	cr_assert_eq(store_open(db, STORE_READONLY, &st), PRESSO_OK, "%s", status_msg());
	struct study_info info;
	cr_assert_eq(store_find_study(st, "c", &info), PRESSO_OK, "%s", status_msg());
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, info.id, &ri), PRESSO_OK);
	cr_assert_geq(ri.n_complete, 6, "%d complete", ri.n_complete);
	store_study_info_free(&info);
	store_close(st);
	remove_tree(dir);
}
