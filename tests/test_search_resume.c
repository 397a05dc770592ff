/* test_search_resume.c - a search survives being killed and interrupted:
 *  - kill -9 while trials are running, then `--resume`: the budget is
 *    completed, no complete trial is lost, no policy is evaluated twice, the
 *    trials left running become lost and their policies are evaluated again,
 *    and trial numbers run 1..N without gaps;
 *  - SIGINT: the trials in flight finish, the summary is printed, exit 0, no
 *    trial is left running; `--resume` then continues the study;
 *  - two SIGINTs: the trials in flight are abandoned (failed, lost) and the
 *    process ends at once; `--resume` evaluates them again.
 * presso runs as a child process (fork/exec) on LeNet with tiny splits; the
 * test waits for trials to commit by reading the database, never on timing.
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
#include <time.h>
#include <unistd.h>

#include "tests/fixtures.h"

#define WAIT_LIMIT_S 120 /* for trials to commit: generous for sanitizer builds */

static char *dir;
static char cfg[1024], db[1024], out_path[1024], err_path[1024];

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
	snprintf(cfg, sizeof cfg, "%s/lenet.json", dir);
	snprintf(db, sizeof db, "%s/runs.db", dir);
	snprintf(out_path, sizeof out_path, "%s/out", dir);
	snprintf(err_path, sizeof err_path, "%s/err", dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

static void write_config(int n_valid)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"lenet\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": %d, \"test\": 200}},"
		 "\"search\": {\"population\": 8}}",
		 fx_src("models/lenet.onnx"), n_valid);
	cr_assert(fx_write(cfg, body, strlen(body)));
}

/* Starts `presso search ... --max-trials budget` in the background. */
static pid_t start(long budget, bool resume)
{
	char trials[32];
	snprintf(trials, sizeof trials, "%ld", budget);
	const char *argv[] = {PRESSO_BINARY, "search", "--quiet",      "--config", cfg,
			      "--db",         db,       "--workers",    "2",        "--max-trials",
			      trials,         resume ? "--resume" : NULL, NULL};
	pid_t pid = fx_spawn(argv, out_path, err_path, NULL);
	cr_assert_gt(pid, 0);
	return pid;
}

/* The first column of the first row of a query, or -1 if the database cannot
 * answer (yet). */
static long query(const char *sql)
{
	sqlite3 *h = NULL;
	long v = -1;
	if (access(db, F_OK) != 0)
		return -1;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 5000);
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
			v = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	sqlite3_close(h);
	return v;
}

/* Waits until n trials are complete (or the child ended: then fails). */
static void wait_complete(pid_t pid, long n)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (int i = 0; i < WAIT_LIMIT_S * 50; i++) {
		if (query("select count(*) from trials where state = 'complete'") >= n)
			return;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char *err = fx_read(err_path, NULL);
			cr_assert_fail("presso ended before %ld trials completed: %s", n, err ? err : "");
		}
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("%ld trials did not complete within %d s", n, WAIT_LIMIT_S);
}

static int finish(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* What every state of the database must satisfy. */
static void check_invariants(void)
{
	cr_assert_eq(query("select count(*) from trials where state = 'running'"), 0,
		     "no trial is left running");
	cr_assert_eq(query("select max(number) - count(*) from trials"), 0,
		     "numbers run 1..N without gaps");
	cr_assert_eq(query("select count(*) - count(distinct policy_sha256) from trials "
			   "where state = 'complete'"),
		     0, "no policy is evaluated twice");
	cr_assert_eq(query("select count(*) from trials where state = 'failed' and lost = 0"), 0,
		     "no real failure");
	cr_assert_eq(query("select count(*) from trials t where state = 'complete' and "
			   "(select count(*) from trial_layers l where l.trial_id = t.id) <> 5"),
		     0, "every complete trial has its 5 layers");
}

/* After a finished resume: every lost trial's policy was evaluated again. */
static void check_lost_reevaluated(void)
{
	cr_assert_eq(query("select count(*) from trials f where f.state = 'failed' and not exists "
			   "(select 1 from trials c where c.state = 'complete' and "
			   "c.policy_sha256 = f.policy_sha256 and c.number > f.number)"),
		     0, "a lost trial's policy is evaluated again after the resume");
}

Test(search_resume, kill_9_then_resume_completes_the_budget, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(300);
	const long budget = 60;
	pid_t pid = start(budget, false);
	wait_complete(pid, 17);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(finish(pid), 128 + SIGKILL);
	long complete = query("select count(*) from trials where state = 'complete'");
	long total = query("select count(*) from trials");
	cr_assert_geq(complete, 17);
	cr_assert_lt(complete, budget, "killed before the end");
	cr_assert_eq(query("select max(number) - count(*) from trials"), 0);
	/* resume in the foreground */
	pid = start(budget, true);
	cr_assert_eq(finish(pid), 0, "%s", fx_read(err_path, NULL));
	check_invariants();
	check_lost_reevaluated();
	cr_assert_eq(query("select count(*) from trials where state = 'complete'"), budget);
	long lost = query("select count(*) from trials where lost = 1");
	cr_assert_eq(query("select count(*) from trials"), budget + lost);
	cr_assert_geq(query("select count(*) from trials"), total,
		      "the trials of the killed run are all kept");
	char *out = fx_read(out_path, NULL);
	cr_assert(out && strstr(out, "(resumed)"), "%s", out ? out : "");
	cr_assert(strstr(out, "trial budget reached"), "%s", out);
	free(out);
}

Test(search_resume, sigint_finishes_cleanly_and_resume_continues, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(300);
	pid_t pid = start(100000, false);
	wait_complete(pid, 10);
	cr_assert_eq(kill(pid, SIGINT), 0);
	cr_assert_eq(finish(pid), 0, "%s", fx_read(err_path, NULL));
	char *out = fx_read(out_path, NULL);
	cr_assert(out && strstr(out, "ended:     interrupted"), "%s", out ? out : "");
	cr_assert(strstr(out, "not re-checked on the test split (interrupted)"), "%s", out);
	free(out);
	check_invariants();
	cr_assert_eq(query("select count(*) from trials where state = 'failed'"), 0,
		     "a stop request leaves nothing half-begun");
	long done = query("select count(*) from trials");
	cr_assert_eq(query("select count(*) from studies where status = 'finished'"), 1);
	/* resume to a budget a few trials further */
	pid = start(done + 6, true);
	cr_assert_eq(finish(pid), 0, "%s", fx_read(err_path, NULL));
	check_invariants();
	cr_assert_eq(query("select count(*) from trials where state = 'complete'"), done + 6);
	cr_assert_gt(query("select count(*) from trials where test_accuracy is not null"), 0,
		     "the finished search re-checked its front");
}

Test(search_resume, a_second_sigint_abandons_the_trials_in_flight, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(3000); /* slower trials: the second signal lands while they run */
	pid_t pid = start(100000, false);
	wait_complete(pid, 4);
	cr_assert_eq(kill(pid, SIGINT), 0);
	struct timespec nap = {0, 5 * 1000 * 1000};
	nanosleep(&nap, NULL);
	kill(pid, SIGINT); /* may find the process gone: nothing was in flight */
	int rc = finish(pid);
	cr_assert(rc == 0 || rc == 128 + SIGINT, "exit status %d: %s", rc, fx_read(err_path, NULL));
	check_invariants();
	long abandoned = query("select count(*) from trials where error like 'abandoned:%'");
	if (rc == 128 + SIGINT)
		cr_assert_eq(abandoned, query("select count(*) from trials where state = 'failed'"));
	long done = query("select count(*) from trials where state = 'complete'");
	pid = start(done + 3, true);
	cr_assert_eq(finish(pid), 0, "%s", fx_read(err_path, NULL));
	check_invariants();
	check_lost_reevaluated();
	cr_assert_eq(query("select count(*) from trials where state = 'complete'"), done + 3);
}
