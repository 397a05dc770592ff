/* test_search_replay.c - an interrupted and resumed search is the same study
 * as one that ran without a break.
 *
 * A reference search runs to its budget in one go. The same study (same
 * config and seed) is then stopped at chosen points and resumed with
 * `--resume`, several times, until it ends; after every stop the complete
 * trials' policies must be a prefix of the reference's, and at the end the
 * whole list (policy hashes in trial-number order, lost trials left out), the
 * front with its test-split re-check, its hypervolume and the best trial must
 * be the reference's. The stops:
 *  - SIGINT (the path of a user's Ctrl-C) between two batches, right after a
 *    batch is drawn and before any of it begins, in the middle of a batch,
 *    and while the front is re-checked on the test split; two of the resumes
 *    run with one worker instead of two (the batch does not depend on it);
 *  - SIGKILL while a trial is running (it becomes lost and is evaluated
 *    again), right after a commit in the middle of a batch, right after a
 *    batch is drawn, and during the re-check;
 *  - with the bandit strategy (UCB1) and latency as an objective: SIGINT in
 *    the middle of a batch, SIGKILL while a trial runs, and SIGKILL while the
 *    front's latency is being measured.
 *  - a budget given in steps: the study run to 6 trials (the middle of its
 *    second batch), resumed to 11 (the middle of its third), then to the
 *    budget;
 *  - multi-fidelity (search.fidelity: every candidate first on 40 of the 100
 *    validation images, the promising ones then on the rest): SIGKILL while
 *    a candidate's low-fidelity pass runs, SIGINT and SIGKILL in the middle
 *    of a batch, after a batch is drawn; the study must hold trials of both
 *    fidelities and its front only full-fidelity ones.
 * presso runs as a child process; the stops land at exact points through the
 * driver's test hook, PRESSO_TEST_INTERRUPT=WHERE:K:SIGNAL (search/driver.c),
 * which sends the process the signal after the K-th event of its run.
 * LeNet with tiny splits: each run takes a fraction of a second.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixtures.h"

#define BUDGET 14 /* population 4 = batch 4: batches of 4, 4, 4, 2 */

static char *dir;
static char cfg[1024], out_path[1024], err_path[1024];

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
	snprintf(cfg, sizeof cfg, "%s/replay.json", dir);
	snprintf(out_path, sizeof out_path, "%s/out", dir);
	snprintf(err_path, sizeof err_path, "%s/err", dir);
}

/* The study: LeNet, tiny splits, population (and batch) 4, seed 3, and the
 * given extra sections. */
static void write_config(const char *extra)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"replay\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": 100, \"test\": 100}},"
		 "%s}",
		 fx_src("models/lenet.onnx"), extra);
	cr_assert(fx_write(cfg, body, strlen(body)));
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

/* Runs `presso search` on db (a file in the test's folder) to a budget of
 * n_trials, with the test hook set to `hook` (NULL: none). Returns the exit
 * status, 128 + signal when killed; stdout and stderr go to out_path and
 * err_path. */
static int run_to(const char *db, int workers, int n_trials, bool resume, const char *hook)
{
	char path[1100], w[16], budget[16];
	snprintf(path, sizeof path, "%s/%s", dir, db);
	snprintf(w, sizeof w, "%d", workers);
	snprintf(budget, sizeof budget, "%d", n_trials);
	const char *argv[] = {PRESSO_BINARY, "search", "--quiet", "--config", cfg, "--db", path,
			      "--workers", w, "--max-trials", budget,
			      resume ? "--resume" : NULL, NULL};
	int pid = fx_spawn(argv, out_path, err_path, hook);
	cr_assert_gt(pid, 0);
	int code = fx_wait(pid);
	cr_assert_neq(code, -1);
	return code;
}

/* run_to the study's budget, BUDGET. */
static int run(const char *db, int workers, bool resume, const char *hook)
{
	return run_to(db, workers, BUDGET, resume, hook);
}

/* The rows of a query on db, one line each, '|'-separated (malloc'd). */
static char *rows(const char *db, const char *sql)
{
	char *r = fx_rows(fx_join(dir, db), sql);
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

/* The complete trials' policies in trial-number order, with the fidelity
 * they were scored at and what they scored. */
#define TRIALS                                                                            \
	"select policy_sha256, fidelity, accuracy, n_images, low_accuracy, low_n_images from " \
	"trials where state = 'complete' order by number"

/* What a finished study must reproduce: its trials, the re-checked front
 * (policy, validation and test accuracy, size), the summary's front line
 * (size and hypervolume) and the best trial's policy. */
static char *study_of(const char *db)
{
	char *trials = rows(db, TRIALS);
	char *front = rows(db, "select policy_sha256, accuracy, test_accuracy, size_bytes from "
			       "trials where test_accuracy is not null order by policy_sha256");
	char *out = fx_read(out_path, NULL);
	cr_assert_not_null(out);
	const char *line = strstr(out, "front:");
	const char *best = strstr(out, "best:      trial ");
	cr_assert(line && best, "%s", out);
	char sql[128];
	snprintf(sql, sizeof sql, "select policy_sha256 from trials where number = %ld",
		 strtol(best + strlen("best:      trial "), NULL, 10));
	char *best_policy = rows(db, sql);
	size_t n = strlen(trials) + strlen(front) + strlen(best_policy) + 512;
	char *s = malloc(n);
	snprintf(s, n, "trials:\n%sfront:\n%s%.*s\nbest: %s", trials, front,
		 (int)strcspn(line, "\n"), line, best_policy);
	free(trials);
	free(front);
	free(best_policy);
	free(out);
	return s;
}

/* After a stop: nothing left running (once resumed), no policy evaluated
 * twice, and the complete trials so far are the reference's first ones. */
static void check_prefix(const char *db, const char *reference, const char *stage)
{
	cr_assert_eq(count(db, "select count(*) - count(distinct policy_sha256) from trials "
			       "where state = 'complete'"),
		     0, "%s: a policy was evaluated twice", stage);
	cr_assert_eq(count(db, "select count(*) from trials where state = 'failed' and lost = 0"),
		     0, "%s: a trial failed", stage);
	char *got = rows(db, TRIALS);
	cr_assert_gt(strlen(got), 0, "%s: nothing committed", stage);
	cr_assert(strncmp(got, reference, strlen(got)) == 0,
		  "%s: the trials differ from the uninterrupted run's\n%s\nreference:\n%s", stage,
		  got, reference);
	free(got);
}

static void check_finished(const char *db, const char *reference)
{
	cr_assert_eq(count(db, "select count(*) from trials where state = 'running'"), 0);
	cr_assert_eq(count(db, "select count(*) from trials where state = 'complete'"), BUDGET);
	cr_assert_eq(count(db, "select max(number) - count(*) from trials"), 0,
		     "numbers run 1..N without gaps");
	char *got = study_of(db);
	cr_assert_str_eq(got, reference,
			 "the resumed study differs from the uninterrupted one:\n%s\nreference:\n%s",
			 got, reference);
	free(got);
}

/* The uninterrupted study: its finished summary and its trials. */
static void reference(bool resume, char **study, char **trials)
{
	cr_assert_eq(run("ref.db", 2, resume, NULL), 0, "%s", fx_read(err_path, NULL));
	cr_assert_eq(count("ref.db", "select count(*) from trials where state = 'complete'"),
		     BUDGET);
	*study = study_of("ref.db");
	*trials = rows("ref.db", TRIALS);
}

struct stop {
	const char *hook;  /* PRESSO_TEST_INTERRUPT; a %d in it becomes the front's size + 1:
			      the re-check's first latency store (after every test accuracy) */
	int workers;
	int exit_status;   /* expected */
	const char *stage; /* for messages */
};

/* The reference, then run.db stopped at each of the stops in turn and
 * resumed to the end. shared: both databases start as copies of one in which
 * the study is created and stopped before its first trial (the latency table,
 * which is measured, is then the same in both). */
static void replay(const char *config, bool shared, const struct stop *stops, int n_stops)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(config);
	if (shared) {
		cr_assert_eq(run("ref.db", 2, false, "batch:1:INT"), 0, "%s", fx_read(err_path, NULL));
		cr_assert_eq(count("ref.db", "select count(*) from trials"), 0);
		char cmd[4300];
		snprintf(cmd, sizeof cmd, "cp '%s/ref.db' '%s/run.db'", dir, dir);
		cr_assert_eq(system(cmd), 0);
	}
	char *ref_study, *ref_trials;
	reference(shared, &ref_study, &ref_trials);
	long n_front = count("ref.db", "select count(*) from trials where test_accuracy is not null");
	cr_assert_gt(n_front, 0);
	for (int i = 0; i < n_stops; i++) {
		char hook[64];
		snprintf(hook, sizeof hook, stops[i].hook, (int)n_front + 1);
		int rc = run("run.db", stops[i].workers, shared || i > 0, hook);
		cr_assert_eq(rc, stops[i].exit_status, "%s: exit status %d: %s", stops[i].stage, rc,
			     fx_read(err_path, NULL));
		check_prefix("run.db", ref_trials, stops[i].stage);
	}
	cr_assert_eq(run("run.db", 2, true, NULL), 0, "%s", fx_read(err_path, NULL));
	check_finished("run.db", ref_study);
	free(ref_study);
	free(ref_trials);
}

#define HYBRID "\"search\": {\"population\": 4, \"seed\": 3}"

Test(search_replay, sigint_anywhere_resumes_to_the_same_study, .init = setup, .fini = teardown)
{
	static const struct stop stops[] = {
		{"commit:4:INT", 2, 0, "SIGINT between the first two batches"},
		{"batch:1:INT", 2, 0, "SIGINT after the second batch is drawn, before it begins"},
		{"commit:2:INT", 2, 0, "SIGINT in the middle of the second batch"},
		{"commit:2:INT", 1, 0, "SIGINT after the rest of that batch (one worker)"},
		{"recheck:1:INT", 1, 0, "SIGINT during the re-check of the front"},
	};
	replay(HYBRID, false, stops, sizeof stops / sizeof stops[0]);
}

Test(search_replay, kill_9_anywhere_resumes_to_the_same_study, .init = setup, .fini = teardown)
{
	static const struct stop stops[] = {
		{"begin:6:KILL", 2, 128 + SIGKILL, "SIGKILL while trial 6 runs"},
		{"commit:1:KILL", 2, 128 + SIGKILL, "SIGKILL after a commit in the middle of a batch"},
		{"batch:2:KILL", 2, 128 + SIGKILL, "SIGKILL after a batch is drawn"},
		{"recheck:2:KILL", 2, 128 + SIGKILL, "SIGKILL during the re-check of the front"},
	};
	replay(HYBRID, false, stops, sizeof stops / sizeof stops[0]);
	cr_assert_gt(count("run.db", "select count(*) from trials where lost = 1"), 0,
		     "a trial was lost and evaluated again");
}

/* The per-gene bandits of the bandit strategy (UCB1 here) and a latency
 * objective: the front's measured latencies, stored by the re-check, must not
 * move the front of the resumed search, which ranks trials by the table's
 * estimates; nor may the FP32 latency, timed again by every run. */
Test(search_replay, bandit_and_latency_resume_to_the_same_study, .init = setup, .fini = teardown)
{
	static const struct stop stops[] = {
		{"commit:6:INT", 2, 0, "SIGINT in the middle of the second batch"},
		{"begin:3:KILL", 2, 128 + SIGKILL, "SIGKILL while a trial runs"},
		{"recheck:%d:KILL", 2, 128 + SIGKILL, "SIGKILL while the front's latency is measured"},
	};
	replay("\"objectives\": {\"maximize\": \"accuracy\", \"minimize\": [\"size\", \"latency\"]},"
	       "\"search\": {\"strategy\": \"bandit\", \"bandit\": \"ucb\", \"population\": 4, "
	       "\"seed\": 3, \"latency_runs\": 3}",
	       true, stops, sizeof stops / sizeof stops[0]);
}

/* Multi-fidelity: a candidate's two passes, its promotion (which compares
 * with the archive as it was when the batch was drawn, saved with the batch)
 * and the screened-out trials the strategy learns from all replay exactly. */
Test(search_replay, multi_fidelity_resumes_to_the_same_study, .init = setup, .fini = teardown)
{
	static const struct stop stops[] = {
		{"begin:6:KILL", 2, 128 + SIGKILL, "SIGKILL while trial 6 runs"},
		{"commit:2:INT", 2, 0, "SIGINT in the middle of a batch"},
		{"commit:1:KILL", 1, 128 + SIGKILL, "SIGKILL after a commit in the middle of a batch"},
		{"batch:1:KILL", 2, 128 + SIGKILL, "SIGKILL after a batch is drawn"},
	};
	replay("\"search\": {\"population\": 4, \"seed\": 3, "
	       "\"fidelity\": {\"images\": 40, \"confidence\": 0.5}}",
	       false, stops, sizeof stops / sizeof stops[0]);
	const char *dbs[] = {"ref.db", "run.db"};
	for (int i = 0; i < 2; i++) {
		const char *db = dbs[i];
		cr_assert_gt(count(db, "select count(*) from trials where state = 'complete' and "
				       "fidelity = 'low' and n_images = 40 and low_n_images = 40 and "
				       "accuracy = low_accuracy"),
			     0, "%s: some candidates were screened out on 40 images", db);
		cr_assert_gt(count(db, "select count(*) from trials where state = 'complete' and "
				       "fidelity = 'full' and n_images = 100 and low_n_images = 40"),
			     0, "%s: some were promoted to the whole split", db);
		cr_assert_eq(count(db, "select count(*) from trials where test_accuracy is not null "
				       "and fidelity <> 'full'"),
			     0, "%s: the front holds full-fidelity trials only", db);
	}
}

/* --max-trials is the study's total budget, and raising it on --resume goes on
 * as if the larger budget had been given from the start: a batch is drawn
 * whole even where the budget leaves room for part of it, and the rest is
 * evaluated first once the budget grows. */
Test(search_replay, a_budget_raised_on_resume_gives_the_same_study, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(HYBRID);
	char *ref_study, *ref_trials;
	reference(false, &ref_study, &ref_trials);
	static const int steps[] = {6, 11};
	for (int i = 0; i < 2; i++) {
		char stage[64];
		snprintf(stage, sizeof stage, "a budget of %d", steps[i]);
		cr_assert_eq(run_to("run.db", 2, steps[i], i > 0, NULL), 0, "%s: %s", stage,
			     fx_read(err_path, NULL));
		cr_assert_eq(count("run.db", "select count(*) from trials where state = 'complete'"),
			     steps[i], "%s", stage);
		check_prefix("run.db", ref_trials, stage);
	}
	cr_assert_eq(run("run.db", 2, true, NULL), 0, "%s", fx_read(err_path, NULL));
	char *err = fx_read(err_path, NULL);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "1 candidate of the last batch still to evaluate"), "%s", err);
	free(err);
	/* Each run ended on its budget and re-checked its front on the test
	 * split, so run.db also holds the test accuracy of trials that were on
	 * an earlier front: the final front is compared on the reference's. */
	char *front = rows("ref.db", "select policy_sha256 from trials where test_accuracy is not "
				     "null order by policy_sha256");
	char sql[2048] = "update trials set test_accuracy = null where policy_sha256 not in (''";
	for (char *h = strtok(front, "\n"); h; h = strtok(NULL, "\n"))
		snprintf(sql + strlen(sql), sizeof sql - strlen(sql), ", '%s'", h);
	strncat(sql, ")", sizeof sql - strlen(sql) - 1);
	free(front);
	char path[1100];
	snprintf(path, sizeof path, "%s/run.db", dir);
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_close(h), SQLITE_OK);
	check_finished("run.db", ref_study);
	free(ref_study);
	free(ref_trials);
}
