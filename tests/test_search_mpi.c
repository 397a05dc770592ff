/* test_search_mpi.c - `presso search` across MPI ranks (built with -DPRESSO_MPI=ON,
 * where it runs presso, or -DPRESSO_MPI_ALSO=ON, where it runs presso-mpi).
 *
 *  - The invariant (search/README.md, "Across machines"): the same seed and
 *    the same batch, max(search.batch, workers in all), give the same study
 *    whatever the mix of ranks and workers. A study is created by a 3-rank
 *    run that stops before its first trial (its latency table is measured
 *    there, on rank 0, and says so); copies of it are then searched to the
 *    budget by one process with 2 workers, by 3 ranks with 1 worker each and
 *    by 2 ranks with 2 workers each (the batch is 4 in every case): the
 *    trials (policy hashes in trial-number order), the re-checked front, its
 *    hypervolume and the best trial must be the same, and every rank must
 *    have evaluated some of the MPI runs' trials.
 *  - A worker rank killed (SIGKILL, its pid taken from the trials' `worker`
 *    column) in the middle of a 3-rank search ends the job; every trial
 *    committed before the kill is still there, unchanged; `--resume` on 2
 *    ranks (2 workers each) then completes the budget, and the study is the
 *    one an uninterrupted single process makes.
 * mpirun runs on this machine (--oversubscribe, --allow-run-as-root for CI
 * containers), on LeNet with tiny splits.
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

#define WAIT_LIMIT_S 300 /* for one run: generous on a loaded machine */
#define BUDGET 14        /* population (and batch) 4: batches of 4, 4, 4, 2 */
#define KILL_BUDGET 24
#define KILL_AFTER 4     /* complete trials before the worker rank is killed */

static char *dir;
static char cfg[1024], out_path[1024], err_path[1024];

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
	snprintf(cfg, sizeof cfg, "%s/mpi.json", dir);
	snprintf(out_path, sizeof out_path, "%s/out", dir);
	snprintf(err_path, sizeof err_path, "%s/err", dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

/* LeNet, tiny splits (validation n_valid), population (and batch) 4, seed 3,
 * and the given extra sections. */
static void write_config(int n_valid, const char *extra)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"mpi\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": %d, \"test\": 100}},"
		 "\"search\": {\"population\": 4, \"seed\": 3}%s}",
		 fx_src("models/lenet.onnx"), n_valid, extra);
	cr_assert(fx_write(cfg, body, strlen(body)));
}

/* Starts `presso search` on db (a file in the test's folder) with `workers`
 * workers per process: under mpirun with `ranks` ranks, or alone when ranks is
 * 0. hook: PRESSO_TEST_INTERRUPT (NULL: none). */
static pid_t start(const char *db, int ranks, int workers, int budget, bool resume,
		   const char *hook)
{
	char path[1100], w[16], np[16], trials[16];
	snprintf(path, sizeof path, "%s/%s", dir, db);
	snprintf(w, sizeof w, "%d", workers);
	snprintf(np, sizeof np, "%d", ranks);
	snprintf(trials, sizeof trials, "%d", budget);
	const char *argv[32];
	int n = 0;
	if (ranks > 0) {
		argv[n++] = PRESSO_MPIEXEC;
		argv[n++] = "--allow-run-as-root";
		argv[n++] = "--oversubscribe";
		argv[n++] = "-np";
		argv[n++] = np;
	}
	const char *rest[] = {PRESSO_BINARY, "search", "--quiet", "--config", cfg, "--db", path,
			      "--workers", w, "--max-trials", trials};
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
		argv[n++] = rest[i];
	if (resume)
		argv[n++] = "--resume";
	argv[n] = NULL;
	unsetenv("PRESSO_MPI_SIMULATE_TRIAL_S"); /* the ranks evaluate for real */
	pid_t pid = fx_spawn(argv, out_path, err_path, hook);
	cr_assert_gt(pid, 0);
	return pid;
}

/* Waits for the run to end: its exit status (128 + signal when killed). */
static int finish(pid_t pid)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (int i = 0; i < WAIT_LIMIT_S * 50; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
		}
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGTERM); /* mpirun passes it on to its ranks */
	waitpid(pid, NULL, 0);
	cr_assert_fail("the run did not end within %d s", WAIT_LIMIT_S);
	return -1;
}

static int run(const char *db, int ranks, int workers, int budget, bool resume, const char *hook)
{
	return finish(start(db, ranks, workers, budget, resume, hook));
}

/* The rows of a query on db, one line each, '|'-separated (malloc'd); NULL
 * when the database cannot answer (yet). */
static char *try_rows(const char *db, const char *sql)
{
	return fx_rows(fx_join(dir, db), sql);
}

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

static void copy(const char *from, const char *to)
{
	char cmd[4300];
	snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s/%s'", dir, from, dir, to);
	cr_assert_eq(system(cmd), 0);
}

/* The complete trials' policies in trial-number order. */
#define TRIALS "select policy_sha256 from trials where state = 'complete' order by number"

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

/* Every trial of db names the rank that evaluated it, and each of the ranks
 * evaluated some. */
static void check_workers(const char *db, int ranks)
{
	cr_assert_eq(count(db, "select count(*) from trials where worker not like '% rank %'"), 0,
		     "%s: a trial does not name its rank", db);
	for (int r = 0; r < ranks; r++) {
		char sql[128];
		snprintf(sql, sizeof sql, "select count(*) from trials where worker like '%% rank %d'",
			 r);
		cr_assert_gt(count(db, sql), 0, "%s: rank %d evaluated nothing", db, r);
	}
}

Test(search_mpi, any_mix_of_ranks_and_workers_gives_the_same_study, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	/* latency as an objective: the table is measured once, by rank 0 */
	write_config(100, ",\"objectives\": {\"maximize\": \"accuracy\", "
			  "\"minimize\": [\"size\", \"latency\"]}");
	cr_assert_eq(run("new.db", 3, 1, BUDGET, false, "batch:1:INT"), 0, "%s",
		     fx_read(err_path, NULL));
	cr_assert_eq(count("new.db", "select count(*) from trials"), 0);
	char host[256] = "";
	gethostname(host, sizeof host);
	char *lut = rows("new.db", "select value from search_state where key = 'latency_lut'");
	char want[400];
	snprintf(want, sizeof want, "\"measured_on\":\"%s", host);
	cr_assert(strstr(lut, want), "the latency table names rank 0's machine: %s", lut);
	free(lut);

	static const struct {
		const char *db;
		int ranks, workers;
	} runs[] = {{"one.db", 0, 2}, {"three.db", 3, 1}, {"two.db", 2, 2}};
	char *reference = NULL;
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		copy("new.db", runs[i].db);
		cr_assert_eq(run(runs[i].db, runs[i].ranks, runs[i].workers, BUDGET, true, NULL), 0,
			     "%s: %s", runs[i].db, fx_read(err_path, NULL));
		cr_assert_eq(count(runs[i].db,
				   "select count(*) from trials where state = 'complete'"),
			     BUDGET);
		cr_assert_eq(count(runs[i].db, "select max(number) - count(*) from trials"), 0);
		char *got = study_of(runs[i].db);
		if (!reference) {
			reference = got;
			continue;
		}
		check_workers(runs[i].db, runs[i].ranks);
		cr_assert_str_eq(got, reference,
				 "%d ranks x %d workers differ from one process x 2 workers:\n%s\n"
				 "reference:\n%s",
				 runs[i].ranks, runs[i].workers, got, reference);
		free(got);
	}
	free(reference);
}

Test(search_mpi, a_killed_worker_rank_loses_nothing_and_resume_completes, .init = setup,
     .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	write_config(400, "");
	/* the uninterrupted study, one process */
	cr_assert_eq(run("ref.db", 0, 2, KILL_BUDGET, false, NULL), 0, "%s",
		     fx_read(err_path, NULL));
	char *reference = study_of("ref.db");
	char *ref_trials = rows("ref.db", TRIALS);

	/* 3 ranks, 1 worker each; rank 2 is killed once KILL_AFTER trials are in */
	pid_t job = start("run.db", 3, 1, KILL_BUDGET, false, NULL);
	struct timespec nap = {0, 10 * 1000 * 1000};
	char *worker = NULL;
	for (int i = 0; i < WAIT_LIMIT_S * 100 && !worker; i++) {
		char *n = try_rows("run.db", "select count(*) from trials where state = 'complete'");
		if (n && strtol(n, NULL, 10) >= KILL_AFTER)
			worker = try_rows("run.db", "select worker from trials where worker like "
						    "'% rank 2' order by number desc limit 1");
		free(n);
		int status;
		cr_assert_neq(waitpid(job, &status, WNOHANG), job, "the search ended before the kill: %s",
			      fx_read(err_path, NULL));
		if (!worker)
			nanosleep(&nap, NULL);
	}
	cr_assert(worker && *worker, "no trial ran on rank 2");
	/* "host:pid rank 2" */
	const char *colon = strrchr(strtok(worker, " "), ':');
	cr_assert_not_null(colon, "%s", worker);
	pid_t victim = (pid_t)strtol(colon + 1, NULL, 10);
	cr_assert_gt(victim, 1);
	char *before = rows("run.db", "select number, policy_sha256, accuracy, size_bytes from "
				      "trials where state = 'complete' order by number");
	cr_assert_eq(kill(victim, SIGKILL), 0);
	int rc = finish(job);
	cr_assert_neq(rc, 0, "the job ends when a rank dies");

	/* nothing committed is lost */
	char *after = rows("run.db", "select number, policy_sha256, accuracy, size_bytes from "
				     "trials where state = 'complete' order by number");
	cr_assert(strncmp(after, before, strlen(before)) == 0,
		  "a committed trial changed or vanished:\nbefore the kill:\n%s\nafter:\n%s", before,
		  after);
	char *done = rows("run.db", TRIALS);
	cr_assert(strncmp(done, ref_trials, strlen(done)) == 0,
		  "the trials so far differ from the uninterrupted study's:\n%s\nreference:\n%s",
		  done, ref_trials);
	long left_running = count("run.db", "select count(*) from trials where state = 'running'");

	/* resumed on 2 ranks (2 workers: the same batch) to the budget */
	cr_assert_eq(run("run.db", 2, 2, KILL_BUDGET, true, NULL), 0, "%s",
		     fx_read(err_path, NULL));
	cr_assert_eq(count("run.db", "select count(*) from trials where state = 'running'"), 0);
	cr_assert_eq(count("run.db", "select count(*) from trials where lost = 1"), left_running,
		     "the trials the dead job left running are lost, and only they");
	cr_assert_eq(count("run.db", "select count(*) from trials where state = 'failed' and "
				     "lost = 0"),
		     0);
	cr_assert_eq(count("run.db", "select count(*) from trials where state = 'complete'"),
		     KILL_BUDGET);
	cr_assert_eq(count("run.db", "select max(number) - count(*) from trials"), 0);
	cr_assert_eq(count("run.db", "select count(*) - count(distinct policy_sha256) from trials "
				     "where state = 'complete'"),
		     0, "no policy is evaluated twice");
	char *final = rows("run.db", "select number, policy_sha256, accuracy, size_bytes from "
				     "trials where state = 'complete' order by number");
	cr_assert(strncmp(final, before, strlen(before)) == 0, "a committed trial changed");
	char *got = study_of("run.db");
	cr_assert_str_eq(got, reference,
			 "the resumed study differs from the uninterrupted one:\n%s\nreference:\n%s",
			 got, reference);
	free(got);
	free(final);
	free(done);
	free(after);
	free(before);
	free(worker);
	free(ref_trials);
	free(reference);
}
