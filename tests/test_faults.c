/* test_faults.c - presso when what lies under it fails: every allocation site
 * failing in turn, and the database locked, deleted or moved under a running
 * search.
 *
 * Suite "faults", out of memory. tests/fault/failalloc.c, preloaded into
 * presso (LD_PRELOAD), fails the first allocation of the k-th allocation site
 * (the presso code that allocated, directly or through the C library, SQLite,
 * cJSON, protobuf-c, zlib or libgomp; see that file). For each command below a
 * clean run counts the sites, then one run per site fails that site, and
 * every run must:
 *   - exit 0 (presso got over it) or 1 with a message about memory; never 2,
 *     as if the input were bad, never a signal (a crash or an abort), never
 *     a hang (HANG_LIMIT_S, then SIGALRM);
 *   - leave no output file when it failed and no temporary file at all;
 *   - when it got over the failure (exit 0), print and write what the clean
 *     run did (timings and dates aside) and, for a search, store the same
 *     trials and search state: a result that silently depends on a failed
 *     allocation is a defect too;
 *   - for a search, leave a database that passes PRAGMA integrity_check,
 *     opens for writing as --resume would, and keeps every trial completed
 *     before the run.
 * Every site is tried, with no bound: the commands run on LeNet with a
 * 200-image cut of Fashion-MNIST and splits of 16/32/32 images, so a run takes
 * a few hundredths of a second; the suite is about 1,700 runs (370 of them
 * a search that ends by fine-tuning its front, a few tenths of a second
 * each), about two minutes on two cores. A failure names the site as file+offset;
 * `addr2line -e build/presso OFFSET` (in a build with -g) gives the line.
 *
 * libgomp ends the process itself when it cannot allocate ("libgomp: Out of
 * memory allocating N bytes", exit 1); presso cannot intercept that, and the
 * checks above hold there as they do for a process killed at any moment
 * (test_store_kill.c). With more than one worker, libgomp's failure to
 * create a thread ends it the same way with "libgomp: Thread creation
 * failed" (exit 1, no word of memory): the searches here run one worker,
 * which also keeps the order of the sites the same from run to run.
 *
 * Skipped in the sanitizer build: AddressSanitizer replaces malloc itself and
 * must be the first library loaded, so the hook is not built there (and the
 * plain build runs these checks).
 *
 * Suite "db_faults", the database under a running search (LeNet on the same
 * cut, a space too large to finish): another process holding the write lock
 * past presso's busy timeout (PRESSO_BUSY_TIMEOUT_MS shortens it for the
 * test) stops the search with exit 1 naming the database and the lock, keeps
 * the committed trials, and --resume completes; a database deleted or moved
 * away stops it at its next commit with exit 1, leaves nothing that spoils a
 * new database at the same path, and a moved one keeps its trials and
 * resumes once moved back.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "db/store.h"
#include "tests/fixtures.h"

#define HANG_LIMIT_S 60   /* one presso run; the slowest takes well under a second */
#define WAIT_LIMIT_S 120  /* a search to commit its first trials, or to stop */
#define N_TRAIN 200       /* images in the cut of the training set */
#define N_TEST 100        /* and of the test set */
#define MAX_ARGS 16

/* --- a small dataset and a config, in a folder of their own ------------------ */

/* The first n records of a gzipped IDX file (header_bytes, then record_bytes
 * each), written with the count patched, gzipped or raw. */
static void cut_idx(const char *src, const char *dst, int n, int header_bytes, int record_bytes,
		    bool gz)
{
	gzFile in = gzopen(src, "rb");
	cr_assert_not_null(in, "%s", src);
	size_t bytes = (size_t)header_bytes + (size_t)n * (size_t)record_bytes;
	unsigned char *buf = malloc(bytes);
	cr_assert_not_null(buf);
	cr_assert_eq(gzread(in, buf, (unsigned)bytes), (int)bytes, "%s is short", src);
	gzclose(in);
	buf[4] = (unsigned char)(n >> 24);
	buf[5] = (unsigned char)(n >> 16);
	buf[6] = (unsigned char)(n >> 8);
	buf[7] = (unsigned char)n;
	if (gz) {
		gzFile out = gzopen(dst, "wb");
		cr_assert_not_null(out);
		cr_assert_eq(gzwrite(out, buf, (unsigned)bytes), (int)bytes);
		cr_assert_eq(gzclose(out), Z_OK);
	} else {
		cr_assert(fx_write(dst, buf, bytes));
	}
	free(buf);
}

/* A fresh folder: in /dev/shm when there is one (a memory file system, where
 * the fsyncs of a thousand runs cost nothing), else fx_tmpdir(). */
static char *work_dir(void)
{
	char tmpl[] = "/dev/shm/presso-faults-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : fx_tmpdir();
}

static void remove_tree(char *dir)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

/* dir with the cut dataset and c.json: LeNet, splits 16/32/32, nearest
 * rounding, the space `space`, `max_trials` trials; `search_extra` is added to
 * the search section and `sections` to the document (both "" or ", ..."). */
static char *setup_dir_with(const char *space, int max_trials, const char *search_extra,
			    const char *sections)
{
	char *dir = work_dir();
	cr_assert_not_null(dir);
	cut_idx(FX_FMNIST_DIR "/train-images-idx3-ubyte.gz", fx_join(dir, "train-images.gz"),
		N_TRAIN, 16, 28 * 28, true);
	cut_idx(FX_FMNIST_DIR "/train-labels-idx1-ubyte.gz", fx_join(dir, "train-labels.gz"),
		N_TRAIN, 8, 1, true);
	cut_idx(FX_FMNIST_DIR "/t10k-images-idx3-ubyte.gz", fx_join(dir, "test-images"), N_TEST,
		16, 28 * 28, false);
	cut_idx(FX_FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", fx_join(dir, "test-labels"), N_TEST, 8,
		1, false);
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"train-images.gz\", \"train_labels\": \"train-labels.gz\","
		 "\"test_images\": \"test-images\", \"test_labels\": \"test-labels\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], "
		 "\"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 16, \"validation\": 32, \"test\": 32}},"
		 "\"quant\": {\"rounding\": \"nearest\"},"
		 "\"space\": {\"default\": %s},"
		 "\"search\": {\"max_trials\": %d, \"seed\": 3%s}%s}",
		 fx_src("models/lenet.onnx"), space, max_trials, search_extra, sections);
	cr_assert(fx_write(fx_join(dir, "c.json"), body, strlen(body)));
	return dir;
}

static char *setup_dir(const char *space, int max_trials)
{
	return setup_dir_with(space, max_trials, "", "");
}

/* --- running presso ------------------------------------------------------------ */

struct run {
	int code;             /* exit status, or -1 after a signal */
	int sig;              /* the signal that ended it, or 0 */
	char *err;            /* what it printed on stderr (free it) */
	char failed[1024];    /* "failed k: SITE" from the hook, or "" */
	unsigned n_sites;     /* allocation sites the hook saw */
};

/* Starts presso with args (NULL-terminated) in dir, stdout and stderr to
 * dir/.out and dir/.err; with the hook preloaded when fail_site >= 0 (0:
 * count only); env_extra ("NAME=value" or NULL) added to its environment. */
static pid_t start(const char *dir, const char *const *args, int fail_site, const char *env_extra)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid != 0)
		return pid;
	if (chdir(dir) != 0)
		_exit(127);
	int in = open("/dev/null", O_RDONLY);
	int out = open(".out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int err = open(".err", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0)
		_exit(127);
	unsetenv("LD_PRELOAD");
	unsetenv("PRESSO_FAIL_SITE");
	unsetenv("PRESSO_FAIL_REPORT");
#ifdef PRESSO_FAILALLOC
	if (fail_site >= 0) {
		char k[32];
		snprintf(k, sizeof k, "%d", fail_site);
		setenv("LD_PRELOAD", PRESSO_FAILALLOC, 1);
		setenv("PRESSO_FAIL_REPORT", ".report", 1);
		/* glibc fills allocated and freed blocks with a pattern: a use of
		 * memory an error path freed or never set goes wrong visibly */
		setenv("MALLOC_PERTURB_", "165", 1);
		if (fail_site > 0)
			setenv("PRESSO_FAIL_SITE", k, 1);
	}
#endif
	if (env_extra)
		putenv((char *)env_extra);
	alarm(HANG_LIMIT_S);
	const char *argv[MAX_ARGS + 2] = {"presso"};
	for (int i = 0; i < MAX_ARGS && args[i]; i++)
		argv[i + 1] = args[i];
	execv(PRESSO_BINARY, (char *const *)argv);
	_exit(127);
}

/* Waits for pid; false if it is still running after limit_s seconds (then it
 * is killed). Polls: waitpid has no timeout. */
static bool wait_for(pid_t pid, int limit_s, int *status)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (long i = 0; i < limit_s * 50L; i++) {
		pid_t got = waitpid(pid, status, WNOHANG);
		cr_assert_neq(got, -1);
		if (got == pid)
			return true;
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return false;
}

static void finish_run(const char *dir, int status, struct run *r)
{
	memset(r, 0, sizeof *r);
	r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	r->err = fx_read(fx_join(dir, ".err"), NULL);
	cr_assert_not_null(r->err);
	char *report = fx_read(fx_join(dir, ".report"), NULL);
	if (report) {
		const char *f = strstr(report, "failed ");
		if (f)
			sscanf(f, "%1023[^\n]", r->failed);
		const char *n = strstr(report, "sites ");
		if (n)
			r->n_sites = (unsigned)strtoul(n + 6, NULL, 10);
		free(report);
	}
	unlink(fx_join(dir, ".report"));
}

static void run(const char *dir, const char *const *args, int fail_site, struct run *r)
{
	int status;
	pid_t pid = start(dir, args, fail_site, NULL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	finish_run(dir, status, r);
}

/* --- allocation failures --------------------------------------------------------- */

#define MAX_NAMES 64

/* The names in dir that do not start with '.' (the runs' own files). */
static int list_dir(const char *dir, char names[MAX_NAMES][256])
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		cr_assert_lt(n, MAX_NAMES);
		snprintf(names[n++], 256, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static bool in_list(const char *name, char names[][256], int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static bool copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = fx_read(from, &n);
	bool ok = b && fx_write(to, b, n);
	free(b);
	return ok;
}

/* A command swept over its allocation sites. */
struct command {
	const char *name;
	const char *args[MAX_ARGS + 1];
	const char *outputs[3];  /* files it writes: there after exit 0, absent after 1 */
	const char *db;          /* a database it writes, kept after a failure, or NULL */
	const char *db_pristine; /* what db is reset to before each run (NULL: removed) */
	int min_complete;        /* trials 1..min_complete must stay complete in db */
	/* a run that got over the failure (exit 0) printed and wrote what the
	 * clean run did, but for the lines holding one of `volatile_lines`
	 * (timings, dates) */
	bool same_output;
	const char *volatile_lines[3];
	/* and left the same trials and search state in db (db_digest) */
	bool same_db;
	/* files whose name starts so may stay after a failure (a checkpoint kept
	 * for the next run), or NULL */
	const char *kept_prefix;
	/* sites before this one are left alone (another sweep covers them); 0 or
	 * 1: every site */
	unsigned first_site;
};

/* What a search decided, as text: each study's FP32 baseline and status, each
 * trial's number, state, policy and metrics (not its times or measured
 * latency), the search state but for its owner (host and pid). */
static char *db_digest(const char *path)
{
	static const char *const sql =
		"SELECT group_concat(x, char(10)) FROM ("
		"SELECT 'study ' || name || ' ' || config_sha256 || ' ' || fp32_accuracy || ' ' || "
		"coalesce(fp32_test_accuracy, '') || ' ' || status AS x FROM studies "
		"UNION ALL SELECT * FROM (SELECT 'trial ' || number || ' ' || state || ' ' || "
		"policy_sha256 || ' ' || coalesce(accuracy, '') || ' ' || "
		"coalesce(test_accuracy, '') || ' ' || coalesce(size_bytes, '') || ' ' || "
		"coalesce(bops, '') || ' ' || lost FROM trials ORDER BY study_id, number) "
		"UNION ALL SELECT * FROM (SELECT 'state ' || key || ' ' || hex(value) "
		"FROM search_state WHERE key != 'owner' ORDER BY study_id, key))";
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char *text = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		text = strdup(sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0)
							: "");
	cr_assert_not_null(text, "%s: %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(q);
	sqlite3_close(db);
	return text;
}

/* text without the lines that hold one of pats (NULL-terminated, up to 3). */
static char *strip_lines(const char *text, const char *const *pats)
{
	char *out = malloc(strlen(text) + 1), *o = out;
	cr_assert_not_null(out);
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
		bool drop = false;
		for (int i = 0; i < 3 && pats[i]; i++)
			drop |= memmem(line, len, pats[i], strlen(pats[i])) != NULL;
		if (!drop) {
			memcpy(o, line, len);
			o += len;
		}
		line += len;
	}
	*o = '\0';
	return out;
}

/* What a run printed on stdout and wrote to each output, volatile lines
 * removed from stdout and from text outputs. */
struct output {
	char *stdout_text;
	char *files[3];
	size_t n_bytes[3];
};

static void read_output(const char *dir, const struct command *c, struct output *o)
{
	memset(o, 0, sizeof *o);
	char *raw = fx_read(fx_join(dir, ".out"), NULL);
	cr_assert_not_null(raw);
	o->stdout_text = strip_lines(raw, c->volatile_lines);
	free(raw);
	for (int i = 0; i < 3 && c->outputs[i]; i++) {
		raw = fx_read(fx_join(dir, c->outputs[i]), &o->n_bytes[i]);
		if (raw && strlen(raw) == o->n_bytes[i]) { /* text */
			o->files[i] = strip_lines(raw, c->volatile_lines);
			o->n_bytes[i] = strlen(o->files[i]);
			free(raw);
		} else {
			o->files[i] = raw;
		}
	}
}

static void output_free(struct output *o)
{
	free(o->stdout_text);
	for (int i = 0; i < 3; i++)
		free(o->files[i]);
}

/* Removes the outputs and the database's files, and puts the pristine copy back. */
static void reset(const char *dir, const struct command *c)
{
	for (int i = 0; i < 3 && c->outputs[i]; i++)
		unlink(fx_join(dir, c->outputs[i]));
	if (!c->db)
		return;
	static const char *const side[] = {"", "-wal", "-shm", "-journal"};
	for (int i = 0; i < 4; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s%s", fx_join(dir, c->db), side[i]);
		unlink(p);
	}
	if (c->db_pristine)
		cr_assert(copy_file(fx_join(dir, c->db_pristine), fx_join(dir, c->db)));
}

/* The database after a run: sound, openable for writing, its trials kept.
 * Returns false (with a message through cr_expect) if not. */
static bool check_db(const char *dir, const struct command *c, const char *what)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", fx_join(dir, c->db));
	if (!exists(path)) {
		cr_expect_eq(c->min_complete, 0, "%s: the database is gone", what);
		return c->min_complete == 0;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	bool ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
		  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
		  sqlite3_step(q) == SQLITE_ROW &&
		  strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0;
	cr_expect(ok, "%s: PRAGMA integrity_check: %s", what,
		  q && sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0)
						 : sqlite3_errmsg(db));
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (!ok)
		return false;
	struct store *st;
	enum presso_status s = store_open(path, 0, &st);
	cr_expect_eq(s, PRESSO_OK, "%s: the database does not open for writing: %s", what,
		     status_msg());
	if (s != PRESSO_OK)
		return false;
	struct study_info info;
	s = store_find_study(st, "c", &info);
	/* a new database may stop before its study is written */
	cr_expect(s == PRESSO_OK || c->min_complete == 0, "%s: the study is gone: %s", what,
		  status_msg());
	for (int64_t t = 1; s == PRESSO_OK && t <= c->min_complete && ok; t++) {
		struct store_trial *tr = NULL;
		ok = store_get_trial(st, info.id, t, &tr) == PRESSO_OK &&
		     tr->state == TRIAL_COMPLETE;
		cr_expect(ok, "%s: trial %lld is no longer complete", what, (long long)t);
		store_trials_free(tr, 1);
	}
	if (s == PRESSO_OK)
		store_study_info_free(&info);
	store_close(st);
	return ok;
}

static bool mentions_memory(const char *err)
{
	return strcasestr(err, "out of memory") || strcasestr(err, "cannot allocate memory");
}

/* Fails every allocation site of c in turn (see the top of the file). */
static void sweep(const char *dir, const struct command *c)
{
	struct run r;
	reset(dir, c);
	run(dir, c->args, 0, &r);
	cr_assert_eq(r.code, 0, "%s: the clean run failed (%d, signal %d): %s", c->name, r.code,
		     r.sig, r.err);
	cr_assert_gt(r.n_sites, 0, "%s: the hook saw no allocation (not preloaded?)", c->name);
	free(r.err);
	struct output clean;
	read_output(dir, c, &clean);
	char *clean_db = c->same_db ? db_digest(fx_join(dir, c->db)) : NULL;
	unsigned n_sites = r.n_sites, n_failed = 0, n_recovered = 0, n_bad = 0, n_missed = 0;
	unsigned first = c->first_site > 1 ? c->first_site : 1;
	for (unsigned k = first; k <= n_sites; k++) {
		reset(dir, c);
		char before[MAX_NAMES][256], after[MAX_NAMES][256];
		int n_before = list_dir(dir, before);
		run(dir, c->args, (int)k, &r);
		char what[1400];
		snprintf(what, sizeof what, "%s, site %u (%s)", c->name, k,
			 r.failed[0] ? r.failed : "not reached");
		bool ok = true;
		if (r.sig) {
			cr_expect(false, "%s: killed by signal %d%s: %s", what, r.sig,
				  r.sig == SIGALRM ? " (hung)" : "", r.err);
			ok = false;
		} else if (r.code != 0 && r.code != 1) {
			cr_expect(false, "%s: exit %d, as if the input were bad: %s", what, r.code,
				  r.err);
			ok = false;
		} else if (r.code == 1 && !mentions_memory(r.err)) {
			cr_expect(false, "%s: exit 1 without saying memory ran out: '%s'", what,
				  r.err);
			ok = false;
		}
		n_failed += r.code == 1;
		n_recovered += r.code == 0;
		n_missed += !r.failed[0];
		/* outputs: all there after a success, none after a failure */
		for (int i = 0; i < 3 && c->outputs[i]; i++) {
			bool there = exists(fx_join(dir, c->outputs[i]));
			if (r.code == 0 ? !there : r.code == 1 && there) {
				cr_expect(false, "%s: exit %d and %s is %s", what, r.code,
					  c->outputs[i], there ? "there" : "missing");
				ok = false;
			}
		}
		/* nothing else: no temporary file, no stray database file */
		int n_after = list_dir(dir, after);
		for (int i = 0; i < n_after; i++) {
			const char *name = after[i];
			bool expected = in_list(name, before, n_before);
			for (int j = 0; j < 3 && c->outputs[j]; j++)
				expected |= strcmp(name, c->outputs[j]) == 0;
			if (c->kept_prefix && r.code == 1)
				expected |= strncmp(name, c->kept_prefix, strlen(c->kept_prefix)) == 0;
			if (c->db)
				expected |= strncmp(name, c->db, strlen(c->db)) == 0 &&
					    (!name[strlen(c->db)] ||
					     strcmp(name + strlen(c->db), "-wal") == 0 ||
					     strcmp(name + strlen(c->db), "-shm") == 0);
			if (!expected) {
				cr_expect(false, "%s: exit %d left '%s' behind", what, r.code, name);
				ok = false;
			}
		}
		if (c->db)
			ok &= check_db(dir, c, what);
		if (r.code == 0 && c->same_output) {
			struct output got;
			read_output(dir, c, &got);
			if (strcmp(got.stdout_text, clean.stdout_text) != 0) {
				cr_expect(false, "%s: exit 0, but it printed\n%s\ninstead of\n%s", what,
					  got.stdout_text, clean.stdout_text);
				ok = false;
			}
			for (int i = 0; i < 3 && c->outputs[i]; i++) {
				if (got.n_bytes[i] != clean.n_bytes[i] ||
				    memcmp(got.files[i], clean.files[i], clean.n_bytes[i]) != 0) {
					cr_expect(false, "%s: exit 0, but %s differs from the clean run's",
						  what, c->outputs[i]);
					ok = false;
				}
			}
			output_free(&got);
		}
		if (r.code == 0 && c->same_db) {
			char *got = db_digest(fx_join(dir, c->db));
			if (strcmp(got, clean_db) != 0) {
				cr_expect(false, "%s: exit 0, but the database holds\n%s\ninstead of\n%s",
					  what, got, clean_db);
				ok = false;
			}
			free(got);
		}
		n_bad += !ok;
		free(r.err);
	}
	output_free(&clean);
	free(clean_db);
	fprintf(stderr,
		"faults: %s: %u allocation sites; failing each from site %u: %u exit 1 (out of "
		"memory), %u exit 0 (recovered), %u wrong, %u not reached\n",
		c->name, n_sites, first, n_failed, n_recovered, n_bad, n_missed);
	/* one worker: each run follows the clean one up to its failure, so every
	 * site is reached (a few may depend on timing) */
	cr_assert_leq(first, n_sites, "%s: no site from %u on", c->name, first);
	cr_expect_leq(n_missed * 20, n_sites - first + 1,
		      "%s: %u of %u sites were never reached: does their order vary?", c->name,
		      n_missed, n_sites);
}

static void need_hook(void)
{
#ifndef PRESSO_FAILALLOC
	cr_skip_test("the allocation-failure hook is not built with sanitizers (AddressSanitizer "
		     "replaces malloc); the plain build runs these checks");
#endif
	if (fx_sanitized())
		cr_skip_test("AddressSanitizer replaces malloc; the plain build runs these checks");
}

static char *fault_dir(void)
{
	need_hook();
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	return setup_dir("{\"bits\": [4, 8]}", 3);
}

Test(faults, info_onnx, .timeout = 600)
{
	need_hook();
	char *dir = work_dir();
	char model[PATH_MAX];
	snprintf(model, sizeof model, "%s", fx_src("models/lenet.onnx"));
	const struct command c = {.name = "info --model lenet.onnx",
				  .args = {"info", "--model", model, NULL},
				  .same_output = true};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, info_presso, .timeout = 600)
{
	char *dir = fault_dir();
	struct run r;
	run(dir, (const char *[]){"compress", "--config", "c.json", "--policy", "int4", "-o",
				  "m.presso", "--quiet", NULL},
	    -1, &r);
	cr_assert_eq(r.code, 0, "%s", r.err);
	free(r.err);
	const struct command c = {
		.name = "info m.presso", .args = {"info", "m.presso", NULL}, .same_output = true};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, eval, .timeout = 600)
{
	char *dir = fault_dir();
	const struct command c = {.name = "eval --policy int4",
				  .args = {"eval", "--config", "c.json", "--policy", "int4", NULL},
				  .same_output = true,
				  .volatile_lines = {"images/s", "latency"}};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, compress_presso, .timeout = 600)
{
	char *dir = fault_dir();
	const struct command c = {
		.name = "compress -o x.presso",
		.args = {"compress", "--config", "c.json", "--policy", "int4", "-o", "x.presso",
			 NULL},
		.outputs = {"x.presso"},
		.same_output = true};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, compress_onnx, .timeout = 600)
{
	char *dir = fault_dir();
	const struct command c = {
		.name = "compress -o x.onnx",
		.args = {"compress", "--config", "c.json", "--policy", "int4", "-o", "x.onnx", NULL},
		.outputs = {"x.onnx"},
		.same_output = true};
	sweep(dir, &c);
	remove_tree(dir);
}

/* A database made through the store API (no dataset needed): study "c" with
 * four complete trials, one failed, one running. */
static void small_db(const char *path)
{
	struct store *st;
	cr_assert_eq(store_open(path, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	struct study_spec sp = {
		.name = "c",
		.config_json = "{\"name\": \"c\"}",
		.model_path = "lenet.onnx",
		.model_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.dataset = "fashion-mnist",
		.seed = 1,
		.baseline = {90.0, 89.0, 100000, 6.4e6, 150.0, 10},
	};
	int64_t id, n;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK);
	static const struct layer_choice layers[2] = {
		{"conv1", 8, 8, false, 0.0, 0, 1.0},
		{"fc", 4, 8, true, 0.5, 1, 0.5},
	};
	for (int i = 0; i < 6; i++) {
		char p[128];
		snprintf(p, sizeof p, "{\"default\": {\"bits\": %d}}", i + 2);
		cr_assert_eq(store_begin_trial(st, id, p, NULL, "w0", &n), PRESSO_OK);
		if (i == 4) {
			cr_assert_eq(store_fail_trial(st, id, n, "calibration diverged"), PRESSO_OK);
			continue;
		}
		if (i == 5)
			break; /* left running */
		double acc = 85.0 + i;
		int64_t size = 20000 + 15000 * i;
		struct trial_metrics m = {acc,	       acc - 0.5, size, (double)size * 64, 120.0,
					  (double)i + 2, 0.0,	    1.0, 1000, false, 0, 0};
		cr_assert_eq(store_complete_trial(st, id, n, &m, layers, 2, NULL, 0), PRESSO_OK);
	}
	store_close(st);
}

Test(faults, pareto, .timeout = 600)
{
	need_hook();
	char *dir = work_dir();
	small_db(fx_join(dir, "pristine.db"));
	const struct command c = {
		.name = "pareto",
		.args = {"pareto", "--db", "r.db", "--study", "c", "--format", "json", NULL},
		.db = "r.db",
		.db_pristine = "pristine.db",
		.min_complete = 4,
		.same_output = true};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, export, .timeout = 600)
{
	need_hook();
	char *dir = work_dir();
	small_db(fx_join(dir, "pristine.db"));
	const struct command c = {.name = "export --pick",
				  .args = {"export", "--db", "r.db", "--study", "c", "--pick",
					   "max accuracy where size_kb <= 64", "-o", "p.json", NULL},
				  .outputs = {"p.json"},
				  .db = "r.db",
				  .db_pristine = "pristine.db",
				  .min_complete = 4,
				  .same_output = true,
				  .volatile_lines = {"exported_at"}};
	sweep(dir, &c);
	remove_tree(dir);
}

/* small_db with trial 2 fine-tuned (trial 7, its model a few stand-in bytes). */
static void small_db_tuned(const char *path)
{
	small_db(path);
	struct store *st;
	cr_assert_eq(store_open(path, 0, &st), PRESSO_OK, "%s", status_msg());
	struct study_info info;
	cr_assert_eq(store_find_study(st, "c", &info), PRESSO_OK);
	static const struct layer_choice layers[2] = {
		{"conv1", 8, 8, false, 0.0, 0, 1.0},
		{"fc", 4, 8, false, 0.5, 1, 0.5},
	};
	static const char model[] = "stand-in for a .presso file";
	struct finetune_record f = {.parent = 2, .source = "finetune", .settings_json = "{}",
				    .steps = 3, .lr = 0.01, .kd_weight = 0.5, .temperature = 2,
				    .train_seconds = 1, .images_per_s = 10, .model = model,
				    .model_bytes = sizeof model};
	struct trial_metrics m = {88.0, 87.5, 35000, 35000.0 * 64, 120.0, 3.0, 0.0, 1.0, 0, false, 0, 0};
	int64_t n = 0;
	cr_assert_eq(store_add_finetuned(st, info.id, &f, &m, layers, 2, "w0", &n), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_eq(n, 7);
	store_study_info_free(&info);
	store_close(st);
}

/* A fine-tuned trial's stored model written out, and its policy with the
 * fine-tune's metadata. */
Test(faults, export_tuned, .timeout = 600)
{
	need_hook();
	char *dir = work_dir();
	small_db_tuned(fx_join(dir, "pristine.db"));
	const struct command m = {.name = "export -o .presso",
				  .args = {"export", "--db", "r.db", "--study", "c", "--pick",
					   "max accuracy where tuned = 1", "-o", "t.presso", NULL},
				  .outputs = {"t.presso"},
				  .db = "r.db",
				  .db_pristine = "pristine.db",
				  .min_complete = 4,
				  .same_output = true};
	sweep(dir, &m);
	const struct command j = {.name = "export (tuned) -o .json",
				  .args = {"export", "--db", "r.db", "--study", "c", "--trial", "7",
					   "-o", "t.json", NULL},
				  .outputs = {"t.json"},
				  .db = "r.db",
				  .db_pristine = "pristine.db",
				  .min_complete = 4,
				  .same_output = true,
				  .volatile_lines = {"exported_at"}};
	sweep(dir, &j);
	remove_tree(dir);
}

Test(faults, search_new_database, .timeout = 600)
{
	char *dir = fault_dir();
	const struct command c = {.name = "search (new database)",
				  .args = {"search", "--config", "c.json", "--db", "s.db",
					   "--workers", "1", "--quiet", NULL},
				  .db = "s.db",
				  .same_db = true};
	sweep(dir, &c);
	remove_tree(dir);
}

Test(faults, search_resume, .timeout = 600)
{
	char *dir = fault_dir();
	struct run r;
	run(dir,
	    (const char *[]){"search", "--config", "c.json", "--db", "pristine.db", "--workers", "1",
			     "--quiet", NULL},
	    -1, &r);
	cr_assert_eq(r.code, 0, "%s", r.err);
	free(r.err);
	const struct command c = {.name = "search --resume",
				  .args = {"search", "--config", "c.json", "--db", "s.db",
					   "--workers", "1", "--quiet", "--resume", "--max-trials",
					   "5", NULL},
				  .db = "s.db",
				  .db_pristine = "pristine.db",
				  .min_complete = 3,
				  .same_db = true};
	sweep(dir, &c);
	remove_tree(dir);
}

/* The fine-tune phase of a search (search.finetune_front): training,
 * checkpoints (one per step), scoring, the model's bytes and their row. A
 * failed run may keep its checkpoint beside the database for --resume. */
Test(faults, search_finetune_front, .timeout = 600)
{
	need_hook();
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = setup_dir_with("{\"bits\": [4, 8]}", 3, ", \"finetune_front\": 1",
				   ", \"finetune\": {\"batch\": 8, \"micro_batch\": 4, "
				   "\"max_steps\": 2, \"threads\": 1, \"checkpoint_every\": 1}");
	/* the search before its fine-tune phase reaches its sites first, and
	 * search_new_database fails each of those: count them, and fail only the
	 * later ones here (every site of the fine-tune phase, and a few of the
	 * search's whose order the fine-tune config shifts) */
	char *plain = setup_dir("{\"bits\": [4, 8]}", 3);
	struct run r0;
	run(plain, (const char *[]){"search", "--config", "c.json", "--db", "s.db", "--workers",
				    "1", "--quiet", NULL},
	    0, &r0);
	cr_assert_eq(r0.code, 0, "the plain search failed: %s", r0.err);
	free(r0.err);
	remove_tree(plain);
	const struct command c = {.name = "search (finetune_front)",
				  .args = {"search", "--config", "c.json", "--db", "s.db",
					   "--workers", "1", "--quiet", NULL},
				  .db = "s.db",
				  .same_db = true,
				  .kept_prefix = "s.db.finetune-",
				  .first_site = r0.n_sites + 1};
	sweep(dir, &c);
	remove_tree(dir);
}

/* --- the database under a running search -------------------------------------- */

/* A space far too large to finish, so the search runs until the test acts. */
#define ENDLESS_SPACE "{\"bits\": [2, 3, 4, 5, 6, 7, 8], \"act_bits\": [4, 5, 6, 7, 8]}"
#define ENDLESS_TRIALS 1000000

static const char *const endless_search[] = {"search", "--config", "c.json", "--db",  "s.db",
					     "--workers", "1",	    "--quiet", NULL};

/* Complete trials of study "c" in path (a connection of its own, read-only). */
static int n_complete(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int n = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM trials WHERE state = 'complete'",
				       -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int(q, 0);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* Waits until the search in pid has completed n trials in path. */
static void wait_trials(pid_t pid, const char *path, int n)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (long i = 0; i < WAIT_LIMIT_S * 50L; i++) {
		int status;
		cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the search ended early");
		if (exists(path) && n_complete(path) >= n)
			return;
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("the search did not complete %d trials in %d s", n, WAIT_LIMIT_S);
}

static char *db_dir(void)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	return setup_dir(ENDLESS_SPACE, ENDLESS_TRIALS);
}

Test(db_faults, locked_past_the_busy_timeout_exits_1_and_resumes, .timeout = 600)
{
	char *dir = db_dir();
	char db_path[PATH_MAX];
	snprintf(db_path, sizeof db_path, "%s", fx_join(dir, "s.db"));
	pid_t pid = start(dir, endless_search, -1, STORE_BUSY_TIMEOUT_ENV "=300");
	wait_trials(pid, db_path, 2);
	/* hold the write lock until presso gives up */
	sqlite3 *db;
	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 30000);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(db));
	int n_locked = n_complete(db_path);
	int status;
	bool ended = wait_for(pid, WAIT_LIMIT_S, &status);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	cr_assert(ended, "presso kept running with the database locked");
	struct run r;
	finish_run(dir, status, &r);
	cr_assert_eq(r.code, 1, "exit %d (signal %d): %s", r.code, r.sig, r.err);
	cr_assert(strstr(r.err, "s.db") && strstr(r.err, "locked"),
		  "the message names the database and the lock: %s", r.err);
	free(r.err);
	cr_assert_geq(n_complete(db_path), n_locked, "committed trials were lost");
	cr_assert_geq(n_locked, 2);
	/* --resume completes a budget a few trials further */
	char budget[32];
	snprintf(budget, sizeof budget, "%d", n_locked + 3);
	run(dir,
	    (const char *[]){"search", "--config", "c.json", "--db", "s.db", "--workers", "1",
			     "--quiet", "--resume", "--max-trials", budget, NULL},
	    -1, &r);
	cr_assert_eq(r.code, 0, "resume: exit %d: %s", r.code, r.err);
	free(r.err);
	cr_assert_geq(n_complete(db_path), n_locked + 1);
	remove_tree(dir);
}

Test(db_faults, deleted_mid_search_stops_with_exit_1, .timeout = 600)
{
	char *dir = db_dir();
	char db_path[PATH_MAX];
	snprintf(db_path, sizeof db_path, "%s", fx_join(dir, "s.db"));
	pid_t pid = start(dir, endless_search, -1, NULL);
	wait_trials(pid, db_path, 2);
	cr_assert_eq(unlink(db_path), 0);
	int status;
	cr_assert(wait_for(pid, WAIT_LIMIT_S, &status),
		  "presso kept writing into a deleted database");
	struct run r;
	finish_run(dir, status, &r);
	cr_assert_eq(r.code, 1, "exit %d (signal %d): %s", r.code, r.sig, r.err);
	cr_assert(strstr(r.err, "s.db") && strstr(r.err, "removed"),
		  "the message says the database was removed: %s", r.err);
	free(r.err);
	cr_assert(!exists(db_path), "presso made a new file at the deleted database's path");
	/* what it left beside the path must not spoil a new database there */
	run(dir,
	    (const char *[]){"search", "--config", "c.json", "--db", "s.db", "--workers", "1",
			     "--quiet", "--max-trials", "3", NULL},
	    -1, &r);
	cr_assert_eq(r.code, 0, "a new search at the path: exit %d: %s", r.code, r.err);
	free(r.err);
	const struct command c = {.name = "new database", .db = "s.db", .min_complete = 3};
	cr_assert(check_db(dir, &c, "a new database at the path"));
	remove_tree(dir);
}

Test(db_faults, moved_mid_search_stops_keeping_its_trials, .timeout = 600)
{
	char *dir = db_dir();
	char db_path[PATH_MAX], moved[PATH_MAX];
	snprintf(db_path, sizeof db_path, "%s", fx_join(dir, "s.db"));
	snprintf(moved, sizeof moved, "%s", fx_join(dir, "moved.db"));
	pid_t pid = start(dir, endless_search, -1, NULL);
	wait_trials(pid, db_path, 2);
	int n_before = n_complete(db_path);
	cr_assert_eq(rename(db_path, moved), 0);
	int status;
	cr_assert(wait_for(pid, WAIT_LIMIT_S, &status),
		  "presso kept writing into a database moved away");
	struct run r;
	finish_run(dir, status, &r);
	cr_assert_eq(r.code, 1, "exit %d (signal %d): %s", r.code, r.sig, r.err);
	cr_assert(strstr(r.err, "s.db") && strstr(r.err, "moved"), "%s", r.err);
	free(r.err);
	/* the moved file holds what was committed, WAL included */
	int n_moved = n_complete(moved);
	cr_assert_geq(n_moved, n_before);
	/* moved back (beside the -wal and -shm presso left at the path), it resumes */
	cr_assert_eq(rename(moved, db_path), 0);
	char budget[32];
	snprintf(budget, sizeof budget, "%d", n_moved + 2);
	run(dir,
	    (const char *[]){"search", "--config", "c.json", "--db", "s.db", "--workers", "1",
			     "--quiet", "--resume", "--max-trials", budget, NULL},
	    -1, &r);
	cr_assert_eq(r.code, 0, "resume: exit %d: %s", r.code, r.err);
	free(r.err);
	cr_assert_geq(n_complete(db_path), n_moved + 1);
	remove_tree(dir);
}
