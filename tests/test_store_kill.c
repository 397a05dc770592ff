/* test_store_kill.c - a study survives SIGKILL at any moment.
 *
 * Round after round, a child process opens the store (creating it in the
 * first round, so early kills land inside the schema migration), resumes the
 * study, takes back the policies of trials its killed predecessor left
 * running, and then evaluates policies in a loop: begin, heartbeat, a moment
 * of "work", complete with layers and a search-state entry in the same
 * transaction, then "committed N" on a pipe. The parent kills it with SIGKILL after a random short delay and checks:
 *  - PRAGMA integrity_check is "ok";
 *  - every trial the child reported committed is complete, with its layers;
 *  - trial numbers are exactly 1..max: no gaps, no duplicates;
 *  - the search state written with the last completion names the highest
 *    complete trial (state and trials commit together);
 *  - a lost trial's policy is evaluated again by a later trial, or is still
 *    waiting in the re-queue list;
 *  - a resume by the parent continues the numbering at max + 1.
 * Delays come from a fixed seed; where the kill lands still varies from run to
 * run, which is the point. No assertion depends on timing.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/store.h"
#include "tests/fixtures.h"

#define ROUNDS 30
#define MAX_TRIALS 100000
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct layer_choice layers3[3] = {
	{"conv1", 8, 8, false, 0.0, 0, 1.0},
	{"conv2", 4, 8, true, 0.5, 1, 0.5},
	{"fc", 2, 8, false, 0.25, 0, 0.75},
};

static struct study_spec spec(void)
{
	return (struct study_spec){
		.name = "killed",
		.config_json = "{\"search\": {\"strategy\": \"random\"}}",
		.model_path = "m.onnx",
		.model_sha256 = SHA_A,
		.dataset = "synthetic",
		.seed = 7,
		.baseline = {90, NAN, 100000, 1e9, 500, 10},
	};
}

static void policy(int i, char *buf, size_t cap)
{
	snprintf(buf, cap,
		 "{\"default\": {\"bits\": 8}, \"layers\": {\"conv1\": {\"bits\": %d}, "
		 "\"conv2\": {\"prune\": %.6f}}}",
		 1 + i % 8, i / 1e6);
}

/* Evaluates one policy: begin, complete (with state), report. 0 on success. */
static int evaluate(struct store *st, int64_t study, const char *pol, int out_fd)
{
	int64_t n;
	if (store_begin_trial(st, study, pol, NULL, "child", &n) != PRESSO_OK)
		return -1;
	/* "evaluating": a heartbeat and a little time, so kills also land while
	 * trials are running and resumes have lost trials to re-queue */
	struct timespec work = {0, 300000};
	if (store_heartbeat(st, study, n) != PRESSO_OK)
		return -1;
	nanosleep(&work, NULL);
	struct trial_metrics m = {50 + (double)(n % 40), NAN, 1000 + (n * 7919) % 90000, 1e6,
				  100, 4, 0.1, 0.9, 1000, false, 0, 0};
	char last[32];
	int len = snprintf(last, sizeof last, "%lld", (long long)n);
	struct store_kv kv = {"last_complete", last, (size_t)len, true};
	if (store_complete_trial(st, study, n, &m, layers3, 3, &kv, 1) != PRESSO_OK)
		return -1;
	char line[48];
	len = snprintf(line, sizeof line, "committed %lld\n", (long long)n);
	return write(out_fd, line, (size_t)len) == len ? 0 : -1;
}

static int by_hash(const void *a, const void *b)
{
	return strcmp(a, b);
}

static _Noreturn void child(const char *path, int out_fd)
{
	struct store *st;
	struct study_spec sp = spec();
	int64_t study;
	bool resumed;
	struct store_policy *pol;
	int n_pol;
	if (store_open(path, STORE_CREATE, &st) != PRESSO_OK ||
	    store_create_or_resume_study(st, &sp, false, &study, &resumed, NULL) != PRESSO_OK ||
	    store_requeue_stale(st, study, 0, NULL, &pol, &n_pol) != PRESSO_OK) {
		fprintf(stderr, "child: %s\n", status_msg());
		_exit(1);
	}
	for (int i = 0; i < n_pol; i++)
		if (evaluate(st, study, pol[i].policy_json, out_fd) != 0)
			_exit(2);
	store_policies_free(pol, n_pol);
	/* what is evaluated already, read once as a resuming search would */
	char(*done)[SHA256_HEX_BYTES];
	int n_done;
	if (store_policy_hashes(st, study, &done, &n_done) != PRESSO_OK)
		_exit(3);
	if (n_done > 0)
		qsort(done, (size_t)n_done, sizeof *done, by_hash);
	for (int i = 0; i < MAX_TRIALS; i++) {
		char p[160], hash[SHA256_HEX_BYTES];
		policy(i, p, sizeof p);
		if (store_canonical_json(p, NULL, hash) != PRESSO_OK)
			_exit(3);
		bool has = n_done > 0 &&
			   bsearch(hash, done, (size_t)n_done, sizeof *done, by_hash) != NULL;
		if (!has && evaluate(st, study, p, out_fd) != 0) {
			fprintf(stderr, "child: %s\n", status_msg());
			_exit(4);
		}
	}
	store_close(st);
	_exit(0);
}

/* Reads "committed N" lines from fd into seen[] until the deadline (or EOF
 * when deadline_ms < 0). partial keeps an incomplete line between calls. */
static void read_reports(int fd, int deadline_ms, bool *seen, int64_t *max_seen, char *partial,
			 size_t *n_partial)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int wait_ms = -1;
		if (deadline_ms >= 0) {
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			int spent = (int)((t.tv_sec - t0.tv_sec) * 1000 +
					  (t.tv_nsec - t0.tv_nsec) / 1000000);
			if (spent >= deadline_ms)
				return;
			wait_ms = deadline_ms - spent;
		}
		struct pollfd pfd = {fd, POLLIN, 0};
		int r = poll(&pfd, 1, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_geq(r, 0);
		if (r == 0)
			return;
		char buf[4096];
		ssize_t got = read(fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		cr_assert_geq(got, 0);
		if (got == 0)
			return; /* EOF: the child is gone */
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] != '\n') {
				cr_assert_lt(*n_partial, 63);
				partial[(*n_partial)++] = buf[i];
				continue;
			}
			partial[*n_partial] = '\0';
			long long n;
			cr_assert_eq(sscanf(partial, "committed %lld", &n), 1, "bad report '%s'",
				     partial);
			cr_assert(n >= 1 && n < MAX_TRIALS);
			seen[n] = true;
			if (n > *max_seen)
				*max_seen = n;
			*n_partial = 0;
		}
	}
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q;
	int64_t v = -1;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

/* The checks after each kill (on a plain read-only connection). */
static void check_database(const char *path, const bool *seen, int64_t max_seen, int round)
{
	sqlite3 *db;
	if (access(path, F_OK) != 0) {
		cr_assert_eq(max_seen, 0, "round %d: trials reported but no database", round);
		return;
	}
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
	cr_assert_eq(rc, SQLITE_OK, "round %d: %d %s", round, rc, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok", "round %d", round);
	sqlite3_finalize(q);
	int64_t version = query_int(db, "PRAGMA user_version");
	if (version == 0) {
		/* killed before the first migration committed: nothing may be there */
		cr_assert_eq(max_seen, 0, "round %d", round);
		cr_assert_eq(query_int(db, "SELECT count(*) FROM sqlite_master"), 0,
			     "round %d: a half-made schema", round);
		sqlite3_close(db);
		return;
	}
	cr_assert_eq(version, store_schema_version());
	int64_t count = query_int(db, "SELECT count(*) FROM trials");
	int64_t top = query_int(db, "SELECT coalesce(max(number), 0) FROM trials");
	int64_t distinct = query_int(db, "SELECT count(DISTINCT number) FROM trials");
	cr_assert_eq(count, top, "round %d: numbers 1..%lld but %lld trials (a gap)", round,
		     (long long)top, (long long)count);
	cr_assert_eq(distinct, count, "round %d: a duplicate number", round);
	cr_assert_eq(query_int(db, "SELECT count(*) FROM trials WHERE number < 1"), 0);
	/* every reported trial is complete with its three layers */
	cr_assert_eq(sqlite3_prepare_v2(db,
					"SELECT t.state, (SELECT count(*) FROM trial_layers l WHERE "
					"l.trial_id = t.id) FROM trials t WHERE t.number = ?",
					-1, &q, NULL),
		     SQLITE_OK);
	for (int64_t n = 1; n <= max_seen; n++) {
		if (!seen[n])
			continue;
		sqlite3_bind_int64(q, 1, n);
		cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "round %d: reported trial %lld is missing",
			     round, (long long)n);
		cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "complete",
				 "round %d: trial %lld", round, (long long)n);
		cr_assert_eq(sqlite3_column_int(q, 1), 3, "round %d: trial %lld layers", round,
			     (long long)n);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	/* complete trials always have layers; the state matches the trials */
	cr_assert_eq(query_int(db, "SELECT count(*) FROM trials t WHERE state = 'complete' AND "
				   "(SELECT count(*) FROM trial_layers l WHERE l.trial_id = t.id) "
				   "<> 3"),
		     0, "round %d", round);
	int64_t last_complete =
		query_int(db, "SELECT coalesce(max(number), 0) FROM trials WHERE state = 'complete'");
	int64_t state = query_int(db, "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM "
				      "search_state WHERE key = 'last_complete'), 0)");
	cr_assert_eq(state, last_complete, "round %d: search state %lld, last complete trial %lld",
		     round, (long long)state, (long long)last_complete);
	/* a trial left running can only be the one the kill interrupted */
	cr_assert_leq(query_int(db, "SELECT count(*) FROM trials WHERE state = 'running'"), 1);
	sqlite3_close(db);
}

Test(store_kill, sigkill_at_random_moments)
{
	char *dir = fx_tmpdir();
	cr_assert_not_null(dir);
	char path[4200];
	snprintf(path, sizeof path, "%s/runs.db", dir);
	bool *seen = calloc(MAX_TRIALS, sizeof *seen);
	int64_t max_seen = 0;
	unsigned seed = 20240501;
	int n_reported = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int fds[2];
		cr_assert_eq(pipe(fds), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			child(path, fds[1]);
		}
		close(fds[1]);
		/* 5..80 ms; the first rounds are short so that kills land in creation,
		 * open and migration, the last ones long enough to get work done */
		seed = seed * 1103515245u + 12345u;
		int delay_ms = 5 + (int)((seed >> 16) % 76);
		if (round < 3)
			delay_ms = round * 2;
		if (round >= ROUNDS - 3)
			delay_ms = 200;
		char partial[64];
		size_t n_partial = 0;
		int64_t prev_max = max_seen;
		read_reports(fds[0], delay_ms, seen, &max_seen, partial, &n_partial);
		kill(pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		/* whatever reached the pipe before the kill */
		read_reports(fds[0], -1, seen, &max_seen, partial, &n_partial);
		close(fds[0]);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "round %d: the child stopped by itself (status %d)", round, status);
		for (int64_t n = prev_max + 1; n <= max_seen; n++)
			n_reported += seen[n];
		check_database(path, seen, max_seen, round);
	}
	cr_assert_gt(n_reported, 0, "no child ever committed a trial");

	/* the parent resumes: lost policies come back, numbering goes on */
	struct store *st;
	struct study_spec sp = spec();
	int64_t study;
	bool resumed;
	cr_assert_eq(store_open(path, 0, &st), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &study, &resumed, NULL), PRESSO_OK);
	cr_assert(resumed);
	struct store_policy *pol;
	int n_pol, n_marked;
	cr_assert_eq(store_requeue_stale(st, study, 0, &n_marked, &pol, &n_pol), PRESSO_OK);
	struct resume_info ri;
	cr_assert_eq(store_resume_info(st, study, &ri), PRESSO_OK);
	cr_assert_eq(ri.n_running, 0);
	/* every lost trial's policy was taken up later, or is in the list now */
	struct store_trial *all;
	int n_all;
	cr_assert_eq(store_list_trials(st, study, false, NULL, &all, &n_all), PRESSO_OK);
	cr_assert_eq(n_all, ri.next_number - 1);
	for (int i = 0; i < n_all; i++) {
		cr_assert_eq(all[i].number, i + 1);
		if (!all[i].lost)
			continue;
		bool later = false, listed = false;
		for (int j = i + 1; j < n_all; j++)
			later |= strcmp(all[j].policy_sha256, all[i].policy_sha256) == 0;
		for (int k = 0; k < n_pol; k++)
			listed |= strcmp(pol[k].policy_sha256, all[i].policy_sha256) == 0;
		cr_assert(later != listed, "lost trial %d: re-run %d, re-queued %d", i + 1, later,
			  listed);
	}
	/* no policy was completed twice */
	for (int i = 0; i < n_all; i++)
		for (int j = i + 1; j < n_all && all[i].state == TRIAL_COMPLETE; j++)
			cr_assert(all[j].state != TRIAL_COMPLETE ||
				  strcmp(all[i].policy_sha256, all[j].policy_sha256) != 0,
				  "trials %d and %d evaluated the same policy", i + 1, j + 1);
	int64_t next;
	char p[160];
	policy(MAX_TRIALS + 1, p, sizeof p);
	cr_assert_eq(store_begin_trial(st, study, p, NULL, "parent", &next), PRESSO_OK);
	cr_assert_eq(next, ri.next_number);
	cr_log_info("%d rounds: %d trials reported committed, %d in the database, %d lost, %d "
		    "re-queued at the end",
		    ROUNDS, n_reported, n_all, ri.n_lost, n_pol);
	store_trials_free(all, n_all);
	store_policies_free(pol, n_pol);
	store_close(st);
	free(seen);
	cr_assert(fx_rmtree(dir));
	free(dir);
}
