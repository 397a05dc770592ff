/* driver.c - the search loop (see driver.h and search/README.md).
 *
 * A run:
 *   1. parse the space against the model's layers (config errors first, before
 *      anything slow), open the store, decide new / resume, load the model,
 *      data and FP32 baseline (study_ctx_open), create or resume the study;
 *   2. refuse if another live presso owns the study; the latency table when
 *      latency is an objective or a constraint (measured once, then read
 *      from the store); with search.sensitivity, the per-layer sensitivity
 *      table likewise, which seeds the strategy (strategy_use_sensitivity)
 *      before its saved state is restored;
 *   3. resume: mark the trials a dead run left running lost; rebuild the
 *      archive from the complete trials (latency as the table estimated it),
 *      the set of evaluated policies from their hashes, the RNG, the strategy
 *      and the last batch drawn from the search state;
 *   4. batches until the budget, the time limit, a stop request or the end of
 *      the space: what is left of the last batch first (alone), then new
 *      batches (lost policies outside that batch, then the strategy's
 *      candidates);
 *   5. unless interrupted: the front re-checked on the test split (accuracy,
 *      in parallel) and measured whole (latency, one at a time); the study
 *      marked finished. A stop during the re-check ends the run as
 *      interrupted; the next --resume re-checks what is left.
 *
 * A batch runs on the evaluators' worker pool (evaluators/pool.h: threads of
 * this process, or the other ranks of an MPI job), driven from this thread:
 *   - draw: a new batch is saved (search-state key `batch`: each candidate's
 *     genome, origin and hybrid arms) with the RNG after the draw and the
 *     strategy after its selection, in one transaction, before any of its
 *     trials begins.
 *   - begin: whenever a worker is idle, the next candidate in batch order is
 *     begun (its trial row, naming the worker) and handed to that worker, so
 *     trial numbers follow candidate order and work goes by demand: a faster
 *     worker or rank comes back for more sooner. A candidate whose turn comes
 *     after a stop request or the time limit is skipped without a trial row,
 *     so a stop leaves nothing half-begun and numbers stay gap-free.
 *   - evaluate: trial_evaluate on the validation split, on the worker.
 *   - commit: as results come back, in any order, the longest finished prefix
 *     of the batch, in candidate order: archive, strategy tell, and
 *     store_complete_trial with the search state of that moment (rng,
 *     population, bandit) in the same transaction.
 * Only this thread uses the store, archive and strategy. Tells follow
 * candidate order and the next batch is generated only after the whole batch
 * is told, so the trials do not depend on which worker finished first, nor on
 * how many workers or ranks there are (as long as the batch,
 * max(search.batch, workers), is the same).
 *
 * Resume invariant: the search state in the store is the driver's state after
 * its last draw or commit - each written in one transaction with what it
 * changed - so a resumed run continues exactly where the killed or
 * interrupted one was: the candidates of the last batch that no trial has
 * evaluated (not begun, skipped, or lost) are evaluated next, in batch order,
 * with their origin and arms, before anything new is drawn; a policy lost in
 * that batch comes back once, in its place, not also as a re-queued policy.
 * A kill between a draw and its save leaves the state the previous batch
 * wrote last, which holds the RNG from before the draw (failed trials write
 * no state and teach the strategy nothing): the resumed run draws the same
 * batch again. So a resumed study evaluates the policies of an uninterrupted
 * one with the same seed and batch, in the same order (lost trials add rows
 * with numbers of their own, nothing else). Complete trials above the state's
 * last_told (none, unless written by another tool) are told on resume.
 */
#define _POSIX_C_SOURCE 200809L
#include "search/driver.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json_get.h"
#include "base/sha256.h"
#include "base/stats.h"
#include "evaluators/evaluate.h"
#include "evaluators/finetune.h"
#include "evaluators/latency_lut.h"
#include "evaluators/pool.h"
#include "evaluators/trial.h"
#include "search/archive.h"
#include "search/lut.h"
#include "search/progress.h"
#include "base/rng.h"
#include "search/seen.h"
#include "search/sensitivity.h"
#include "search/strategy.h"
#include "train/train_config.h"
#include "transform/transform.h"

#define STATE_RNG "rng"
#define STATE_POPULATION "population"
#define STATE_BANDIT "bandit"
#define STATE_OWNER "owner"
#define STATE_BATCH "batch"
#define STATE_FIDELITY "fidelity"
#define MIN_FAILURES_TO_GIVE_UP 8 /* consecutive failed trials (or 2 batches) end a search */

static const char *const end_names[DRIVER_END_COUNT] = {
	[DRIVER_END_BUDGET] = "trial budget reached",
	[DRIVER_END_TIME] = "time limit reached",
	[DRIVER_END_INTERRUPTED] = "interrupted",
	[DRIVER_END_EXHAUSTED] = "every policy of the space has been evaluated",
};
_Static_assert(sizeof end_names / sizeof end_names[0] == DRIVER_END_COUNT,
	       "every end needs a description");

const char *driver_end_str(enum driver_end e)
{
	return (unsigned)e < DRIVER_END_COUNT ? end_names[e] : "?";
}

/* One candidate of a batch. With search.fidelity: QUEUED -> RUNNING (the
 * low-fidelity pass) -> DONE (screened out) or PROMOTED -> RUNNING_FULL (the
 * rest of the split) -> DONE. */
enum slot_state {
	SLOT_QUEUED,
	SLOT_RUNNING,
	SLOT_DONE,
	SLOT_FAILED,
	SLOT_SKIPPED,
	SLOT_PROMOTED,
	SLOT_RUNNING_FULL
};

struct slot {
	struct candidate c;
	struct policy *p;
	char *json;                 /* canonical policy JSON */
	char hash[SHA256_HEX_BYTES];
	int64_t number;
	enum slot_state state;
	struct trial_metrics_out out;
	struct trial_metrics_out low; /* search.fidelity: the low-fidelity pass */
	bool screened_out;          /* search.fidelity: not promoted; out = low */
	double eval_s;
	enum presso_status eval_status; /* why the evaluation failed */
	char error[512];
};

/* The test hook (PRESSO_TEST_INTERRUPT, see parse_hook). */
enum hook_at {
	HOOK_NONE,
	HOOK_BEGIN,
	HOOK_COMMIT,
	HOOK_BATCH,
	HOOK_RECHECK,
	HOOK_FINETUNE,
	HOOK_AT_COUNT
};

struct test_hook {
	enum hook_at at;
	int64_t k, seen;
	int sig;   /* SIGINT, SIGTERM or SIGKILL; 0 with `time` */
	bool time; /* TIME: the run's time limit is over from the event on */
};

struct driver {
	const struct driver_opts *o;
	FILE *log;
	struct study_ctx *ctx;
	struct space *sp;
	struct store *st;
	int64_t study_id;
	char study[STORE_NAME_MAX + 1];
	struct archive a;
	struct strategy *strat;
	struct seen *seen;
	struct rng rng;
	struct latency_lut *lut;
	struct sensitivity *sens;  /* search.sensitivity: the study's table */
	struct policy *claim_policy; /* scratch for claims (driver thread) */
	struct policy *canon_policy; /* scratch for model_hash (driver thread) */
	struct layer_choice *choices; /* scratch for commits (under the lock) */
	struct pool *pool;          /* the workers (evaluators/pool.h) */
	int workers, batch;         /* workers: the pool's, in all */
	int64_t budget, done;       /* trials that count in the study */
	int64_t fid_images;         /* search.fidelity: the low-fidelity subset (first
				       images of the validation split); 0: off */
	int fid_mark;               /* the archive's size when the batch was drawn:
				       promotion compares with those points only, so
				       it does not depend on the batch's own results
				       (search-state key `fidelity`) */
	double fid_z;               /* the upper Wilson bound's z */
	double time_limit_s;
	struct progress prog;
	/* the batch being run */
	struct slot *slots;
	int n_slots, cursor;
	/* outcome */
	atomic_int abort;           /* an error inside the batch: stop beginning trials */
	enum presso_status error;
	char error_msg[1024];
	int consecutive_failures;
	struct driver_result *r;
	/* lost policies waiting to be evaluated again */
	uint8_t *requeue;
	int n_requeue, next_requeue; /* in the order they were lost */
	/* the rest of the batch drawn before an interrupt, handed out first */
	struct candidate *pending;
	int n_pending, next_pending;
	struct test_hook hook;
	struct train_config tc;     /* the config's finetune section (search.finetune_front) */
};

/* --- small helpers ---------------------------------------------------------- */

static enum presso_status nomem(void)
{
	return status_fail(PRESSO_E_NOMEM, "out of memory");
}

static bool stop_requested(const struct driver *d)
{
	return (d->o->stop && atomic_load(d->o->stop) != 0) || atomic_load(&d->abort) != 0;
}

/* CPU seconds the calling thread has used. */
static double thread_cpu_s(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool time_up(const struct driver *d)
{
	return d->time_limit_s > 0 && progress_elapsed(&d->prog) >= d->time_limit_s;
}

/* Records the first error raised inside a batch and stops beginning trials. */
static void batch_error(struct driver *d, enum presso_status s)
{
	if (d->error == PRESSO_OK) {
		d->error = s;
		snprintf(d->error_msg, sizeof d->error_msg, "%s", status_msg());
	}
	atomic_store(&d->abort, 1);
}

/* The identity of the model a policy makes: the hash of its canonical form
 * (transform_canonical: fields that change nothing take one value), so that
 * two policies that make the same model are one trial. */
static enum presso_status model_hash(const struct driver *d, const struct policy *p,
				     char hash[SHA256_HEX_BYTES])
{
	struct policy *c = d->canon_policy;
	PRESSO_CHECK(c->n_layers == p->n_layers);
	memcpy(c->layers, p->layers, sizeof *c->layers * (size_t)p->n_layers);
	enum presso_status s = transform_canonical(d->ctx->g, c);
	if (s != PRESSO_OK)
		return s;
	char *text = policy_to_json(c, d->ctx->layers);
	if (!text)
		return nomem();
	s = store_canonical_json(text, NULL, hash);
	free(text);
	return s;
}

/* The policy a genome encodes (into p: scratch), its JSON as the store keeps
 * it (json may be NULL: not wanted) and the hash of its model (model_hash). */
static enum presso_status policy_identity(const struct driver *d, const uint8_t *g,
					  struct policy *p, char **json,
					  char hash[SHA256_HEX_BYTES])
{
	space_genome_to_policy(d->sp, g, p);
	enum presso_status s = model_hash(d, p, hash);
	if (s != PRESSO_OK || !json)
		return s;
	char *text = policy_to_json(p, d->ctx->layers);
	if (!text)
		return nomem();
	char ignored[SHA256_HEX_BYTES];
	s = store_canonical_json(text, json, ignored);
	free(text);
	return s;
}

/* The model hash of a stored policy text, so that a study an older presso
 * ran (its trials hashed as written) resumes with the same identities as a
 * new one: *hash keeps `stored` if the text is not a policy of this model.
 * Fails only when out of memory. */
static enum presso_status stored_identity(const struct driver *d, const char *json,
					  const char *stored, char hash[SHA256_HEX_BYTES])
{
	struct policy *p = NULL;
	enum presso_status s = policy_parse(json, "a stored policy", d->ctx->layers,
					    d->ctx->n_layers, &p);
	if (s == PRESSO_OK)
		s = model_hash(d, p, hash);
	policy_free(p);
	if (s == PRESSO_E_NOMEM)
		return s;
	if (s != PRESSO_OK)
		snprintf(hash, SHA256_HEX_BYTES, "%s", stored);
	status_clear();
	return PRESSO_OK;
}

/* strategy_claim_fn: new to the study -> remembered and true. */
static bool claim(void *ctx, const uint8_t *genome)
{
	struct driver *d = ctx;
	char hash[SHA256_HEX_BYTES];
	bool added = false;
	enum presso_status s = policy_identity(d, genome, d->claim_policy, NULL, hash);
	if (s == PRESSO_OK)
		s = seen_add(d->seen, hash, &added);
	if (s != PRESSO_OK)
		batch_error(d, s); /* not "already seen": fill_batch stops the search */
	return added;
}

/* "idx: train T (calibration C, validation V, seed S), test E" */
char *driver_dataset_text(const struct config *cfg)
{
	const struct data_config *dc = &cfg->data;
	/* an image folder's paths are its folders */
	const char *train = dc->train_images ? dc->train_images : dc->train_dir;
	const char *test = dc->test_images ? dc->test_images : dc->test_dir;
	size_t n = strlen(train) + strlen(test) + 256;
	char *t = malloc(n);
	if (t)
		snprintf(t, n,
			 "%s: train %s (calibration %lld, validation %lld, seed %llu); test %s "
			 "(%lld)",
			 dc->format, train, (long long)dc->n_calib, (long long)dc->n_valid,
			 (unsigned long long)dc->seed, test, (long long)dc->n_test);
	return t;
}

/* --- the test hook: PRESSO_TEST_INTERRUPT=WHERE:K:SIGNAL ----------------------------
 *
 * Lets a test stop or kill a search at an exact point: after the K-th event
 * WHERE of this run the process sends itself SIGNAL (INT, TERM or KILL).
 * WHERE is `begin` (a trial begun: its row is running), `commit` (a trial
 * committed, complete or failed), `batch` (a batch of candidates ready,
 * before any of its trials begins), `recheck` (a front member's test
 * accuracy stored, or then its measured latency, or before them a re-score
 * of search.rescore_images) or `finetune` (a fine-tuned
 * trial stored, search.finetune_front). INT and TERM take the
 * path a user's Ctrl-C takes (signals.c's thread raises the stop flag); the
 * hook waits until the flag is up, so the stop lands right after the event.
 * TIME is no signal: the run's clock moves past its time limit (--time-limit
 * or search.time_limit; without one it does nothing), so the limit falls
 * right after the event. Unset or empty: no hook. */

#define HOOK_ENV "PRESSO_TEST_INTERRUPT"
#define HOOK_WAIT_STEPS 10000 /* 1 ms each: how long the hook waits for the stop flag */

static enum presso_status parse_hook(struct test_hook *h)
{
	static const char *const where[HOOK_AT_COUNT] = {
		[HOOK_BEGIN] = "begin", [HOOK_COMMIT] = "commit", [HOOK_BATCH] = "batch",
		[HOOK_RECHECK] = "recheck", [HOOK_FINETUNE] = "finetune"};
	const char *env = getenv(HOOK_ENV);
	*h = (struct test_hook){HOOK_NONE, 0, 0, 0, false};
	if (!env || !*env)
		return PRESSO_OK;
	char at[16], sig[8];
	long long k = 0;
	int used = 0;
	if (sscanf(env, "%15[a-z]:%lld:%7[A-Z]%n", at, &k, sig, &used) == 3 && !env[used] &&
	    k >= 1) {
		for (int i = HOOK_BEGIN; i < HOOK_AT_COUNT; i++)
			if (strcmp(at, where[i]) == 0)
				h->at = (enum hook_at)i;
		h->sig = strcmp(sig, "INT") == 0    ? SIGINT
			 : strcmp(sig, "TERM") == 0 ? SIGTERM
			 : strcmp(sig, "KILL") == 0 ? SIGKILL
						    : 0;
		h->time = strcmp(sig, "TIME") == 0;
		h->k = k;
	}
	if (h->at == HOOK_NONE || (h->sig == 0 && !h->time))
		return status_fail(PRESSO_E_USAGE,
				   HOOK_ENV "='%s': expected begin|commit|batch|recheck|finetune:K:INT|TERM|KILL|TIME",
				   env);
	return PRESSO_OK;
}

/* An event of kind `at` happened: the hook's signal if it is the K-th. */
static void hook_event(struct driver *d, enum hook_at at)
{
	struct test_hook *h = &d->hook;
	if (h->at != at || ++h->seen != h->k)
		return;
	if (h->time) {
		if (d->log)
			fprintf(d->log, "\npresso: " HOOK_ENV ": the time limit is over\n");
		d->prog.t0 -= d->time_limit_s;
		return;
	}
	if (d->log)
		fprintf(d->log, "\npresso: " HOOK_ENV ": signal %d\n", h->sig);
	kill(getpid(), h->sig);
	struct timespec nap = {0, 1000000};
	for (int i = 0; i < HOOK_WAIT_STEPS && d->o->stop && !atomic_load(d->o->stop); i++)
		nanosleep(&nap, NULL);
}

/* --- ownership: one live search per study ----------------------------------- */

static void host_name(char *buf, size_t cap)
{
	if (gethostname(buf, cap) != 0 || !buf[0])
		snprintf(buf, cap, "localhost");
	buf[cap - 1] = '\0';
}

/* True if pid is a live presso process on this machine. */
static bool presso_alive(long pid)
{
	if (pid <= 0 || pid == (long)getpid())
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return false;
	char path[64], comm[64] = "";
	snprintf(path, sizeof path, "/proc/%ld/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true; /* no /proc: trust kill() */
	bool alive = fgets(comm, sizeof comm, f) && strncmp(comm, "presso", 6) == 0;
	fclose(f);
	if (alive) {
		/* a zombie (killed, not yet reaped) is gone for our purposes */
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *s = fopen(path, "r");
		char line[256] = "";
		if (s && fgets(line, sizeof line, s)) {
			const char *close = strrchr(line, ')');
			if (close && close[1] == ' ' && close[2] == 'Z')
				alive = false;
		}
		if (s)
			fclose(s);
	}
	return alive;
}

static enum presso_status take_ownership(struct driver *d)
{
	char host[256], mine[320];
	void *value = NULL;
	size_t n = 0;
	bool found = false;
	host_name(host, sizeof host);
	enum presso_status s = store_get_state(d->st, d->study_id, STATE_OWNER, &value, &n, &found);
	if (s != PRESSO_OK)
		return s;
	if (found) {
		char other_host[256] = "";
		long pid = 0;
		if (sscanf(value, "%255s %ld", other_host, &pid) == 2 &&
		    strcmp(other_host, host) == 0 && presso_alive(pid)) {
			free(value);
			return status_fail(PRESSO_E_RUNTIME,
					   "study '%s' is being searched by process %ld on this "
					   "machine; wait for it or stop it (kill -INT %ld) first",
					   d->study, pid, pid);
		}
		free(value);
	}
	int len = snprintf(mine, sizeof mine, "%s %ld", host, (long)getpid());
	struct store_kv kv = {STATE_OWNER, mine, (size_t)len, true};
	return store_put_state(d->st, d->study_id, &kv, 1);
}

/* The second interrupt: the trials in flight will not finish. */
struct abandon_ctx {
	const char *db_path;
	int64_t study_id;
};

static void abandon(void *arg, int sig)
{
	const struct abandon_ctx *a = arg;
	struct store *st = NULL;
	int n = 0;
	char reason[96];
	snprintf(reason, sizeof reason, "abandoned: signal %d arrived twice while it was running",
		 sig);
	if (store_open(a->db_path, 0, &st) == PRESSO_OK &&
	    store_abandon_trials(st, a->study_id, reason, &n) == PRESSO_OK)
		fprintf(stderr, "\npresso search: %d trial%s in flight abandoned (evaluated again on "
				"--resume)\n",
			n, n == 1 ? "" : "s");
	store_close(st);
}

/* --- setting up ----------------------------------------------------------------- */

/* Config errors before anything slow: the space against the model's layers,
 * and the finetune section when search.finetune_front asks for fine-tunes. */
static enum presso_status check_space(const struct config *cfg, struct train_config *tc)
{
	struct graph *g = NULL;
	struct layer *layers = NULL;
	struct space *sp = NULL;
	const cJSON *sec = NULL;
	int n = 0;
	enum presso_status s;
	if ((s = graph_load_onnx(cfg->model_path, &g)) == PRESSO_OK &&
	    (s = graph_layers(g, &layers, &n)) == PRESSO_OK)
		s = space_parse(cfg->json, layers, n, &sp);
	if (s == PRESSO_OK && sp->search.finetune_front > 0 &&
	    (s = json_get_object(cfg->json, "", "finetune", false, &sec)) == PRESSO_OK)
		s = train_config_parse(sec, "finetune", tc);
	if ((s == PRESSO_E_CONFIG || s == PRESSO_E_UNSUPPORTED) && cfg->path && *cfg->path)
		status_wrap(s, "%s", cfg->path);
	space_free(sp);
	free(layers);
	graph_free(g);
	return s;
}

static enum presso_status open_study(struct driver *d)
{
	const struct driver_opts *o = d->o;
	const struct config *cfg = o->cfg;
	const char *name = o->study && *o->study ? o->study : cfg->name;
	enum presso_status s;
	struct study_info info = {0};
	bool exists = false;
	if ((s = store_open(o->db_path, STORE_CREATE, &d->st)) != PRESSO_OK)
		return s;
	s = store_find_study(d->st, name, &info);
	if (s == PRESSO_OK)
		exists = true;
	else if (s != PRESSO_E_USAGE)
		return s;
	status_clear();
	if (exists && !o->resume && !o->new_study) {
		s = status_fail(PRESSO_E_USAGE,
				"study '%s' already exists in %s; add --resume to continue it or "
				"--new-study to start another",
				name, o->db_path);
		store_study_info_free(&info);
		return s;
	}
	store_study_info_free(&info);

	char sha[SHA256_HEX_BYTES];
	char *config_text = NULL, *dataset = NULL;
	if ((s = sha256_file(cfg->model_path, sha)) != PRESSO_OK)
		return s;
	if (d->log)
		fprintf(d->log, "presso: loading %s and its data\n", cfg->model_path);
	if ((s = study_ctx_open(cfg, d->log != NULL, &d->ctx)) != PRESSO_OK)
		return s;
	if ((s = space_parse(cfg->json, d->ctx->layers, d->ctx->n_layers, &d->sp)) != PRESSO_OK ||
	    (s = space_fit_graph(d->sp, d->ctx->g, d->log)) != PRESSO_OK)
		return s;
	config_text = cJSON_PrintUnformatted(cfg->json);
	dataset = driver_dataset_text(cfg);
	if (!config_text || !dataset) {
		free(config_text);
		free(dataset);
		return nomem();
	}
	const struct study_ctx *c = d->ctx;
	struct study_spec spec = {
		.name = name,
		.config_json = config_text,
		.model_path = cfg->model_path,
		.model_sha256 = sha,
		.dataset = dataset,
		.seed = d->sp->search.seed,
		.baseline = {c->fp32_valid_accuracy, c->fp32_test_accuracy, c->fp32_size.size_bytes,
			     c->fp32_size.bops, c->fp32_latency_us, c->n_classes},
	};
	s = store_create_or_resume_study(d->st, &spec, o->new_study, &d->study_id, &d->r->resumed,
					 d->study);
	free(config_text);
	free(dataset);
	if (s == PRESSO_OK)
		d->r->base = spec.baseline;
	/* a resumed study keeps the baseline its first run measured: the FP32
	 * latency is timed anew by every run, and it is the latency objective's
	 * reference point, so a new one would move every trial's rewards */
	if (s == PRESSO_OK && d->r->resumed) {
		struct study_info stored = {0};
		if ((s = store_find_study(d->st, d->study, &stored)) == PRESSO_OK)
			d->r->base = stored.baseline;
		store_study_info_free(&stored);
	}
	return s;
}

/* The genome of a stored policy text; *in_space false if it is not in the
 * space. Fails only when out of memory. */
static enum presso_status genome_of(const struct driver *d, const char *json, const char *where,
				    uint8_t *g, bool *in_space)
{
	struct policy *p = NULL;
	enum presso_status s = policy_parse(json, where, d->ctx->layers, d->ctx->n_layers, &p);
	*in_space = s == PRESSO_OK && space_genome_from_policy(d->sp, p, g);
	policy_free(p);
	if (s == PRESSO_E_NOMEM)
		return s;
	status_clear();
	return PRESSO_OK;
}

/* The metrics a complete trial has in the search's eyes: with a latency table,
 * latency is the table's estimate, as when the trial was committed - the
 * re-check of the front stores a measured latency in its place, which must not
 * move the front or the rewards of a resumed search (g: the trial's genome). */
static struct trial_metrics search_metrics(const struct driver *d, const uint8_t *g,
					   const struct trial_metrics *stored)
{
	struct trial_metrics m = *stored;
	if (d->lut) {
		space_genome_to_policy(d->sp, g, d->claim_policy);
		m.latency_us = latency_lut_estimate(d->lut, d->claim_policy);
	}
	return m;
}

/* The batch drawn last (search-state key `batch`): its candidates that no
 * trial has evaluated yet (complete or failed; a lost one has not) become the
 * pending candidates, in batch order, claimed again; lost policies that are
 * members of the batch are dropped from `lost` (they are pending, or taken up
 * already). */
static enum presso_status restore_batch(struct driver *d, const char *text,
					struct store_policy *lost, int *n_lost)
{
	struct candidate *c = NULL;
	int n = 0;
	char(*hash)[SHA256_HEX_BYTES] = NULL;
	enum presso_status s = strategy_load_batch(d->strat, text, &c, &n);
	if (s != PRESSO_OK) {
		status_wrap(s, "study '%s'", d->study);
		return s;
	}
	d->pending = calloc((size_t)(n ? n : 1), sizeof *d->pending);
	hash = malloc(sizeof *hash * (size_t)(n ? n : 1));
	if (!d->pending || !hash)
		s = nomem();
	for (int i = 0; i < n && s == PRESSO_OK; i++) {
		if ((s = policy_identity(d, c[i].genome, d->claim_policy, NULL, hash[i])) != PRESSO_OK)
			break;
		if (seen_has(d->seen, hash[i]))
			continue; /* evaluated */
		if ((s = seen_add(d->seen, hash[i], NULL)) != PRESSO_OK)
			break;
		d->pending[d->n_pending++] = c[i];
		c[i].genome = NULL; /* d->pending owns it now */
	}
	int kept = 0;
	for (int j = 0; j < *n_lost && s == PRESSO_OK; j++) {
		bool member = false;
		char id[SHA256_HEX_BYTES];
		if ((s = stored_identity(d, lost[j].policy_json, lost[j].policy_sha256, id)))
			break;
		for (int i = 0; i < n && !member; i++)
			member = strcmp(id, hash[i]) == 0;
		if (!member) {
			struct store_policy keep = lost[kept];
			lost[kept++] = lost[j];
			lost[j] = keep;
		}
	}
	if (s == PRESSO_OK)
		*n_lost = kept; /* the rest stay in the array for store_policies_free */
	free(hash);
	strategy_batch_free(c, n);
	return s;
}

static enum presso_status restore(struct driver *d)
{
	enum presso_status s;
	size_t gb = (size_t)d->sp->n_genes;
	uint8_t *g = malloc(gb);
	struct store_trial *t = NULL;
	struct store_policy *lost = NULL;
	void *rng_text = NULL, *pop_text = NULL, *bandit_text = NULL, *batch_text = NULL,
	     *fid_text = NULL;
	int n_t = 0, n_lost = 0, n_lost_all = 0, n_marked = 0;
	size_t nb;
	bool found_rng = false, found_pop = false, found_bandit = false, found_batch = false,
	     found_fid = false;
	if (!g)
		return nomem();
	if ((s = store_requeue_stale(d->st, d->study_id, 0, &n_marked, &lost, &n_lost_all)))
		goto done;
	n_lost = n_lost_all;
	if (n_marked && d->log)
		fprintf(d->log, "presso: %d trial%s left running by an earlier run marked lost\n",
			n_marked, n_marked == 1 ? "" : "s");
	/* the archive: every complete trial */
	if ((s = store_list_trials(d->st, d->study_id, false, NULL, &t, &n_t)) != PRESSO_OK)
		goto done;
	for (int i = 0; i < n_t; i++) {
		char where[64];
		int idx = -1;
		if (t[i].state != TRIAL_COMPLETE || t[i].parent_trial || t[i].metrics.low_fidelity)
			continue; /* a fine-tuned trial is not the search's own; a
				     low-fidelity one no result */
		snprintf(where, sizeof where, "trial %lld", (long long)t[i].number);
		bool in_space;
		if ((s = genome_of(d, t[i].policy_json, where, g, &in_space)) != PRESSO_OK)
			goto done;
		if (!in_space)
			continue; /* not of this space (cannot happen for a study presso made) */
		struct trial_metrics m = search_metrics(d, g, &t[i].metrics);
		if ((s = archive_add(&d->a, t[i].number, g, &m, &idx)) != PRESSO_OK)
			goto done;
		d->a.pts[idx].m.latency_us = t[i].metrics.latency_us; /* as measured, if it was */
	}
	/* the seen set: every trial that counts (not lost), by the hash of its
	 * model - recomputed, as a study an older presso ran hashed its policies
	 * as written (two trials of such a study may be one model: both stay) */
	for (int i = 0; i < n_t && s == PRESSO_OK; i++) {
		char id[SHA256_HEX_BYTES];
		if (t[i].lost || t[i].parent_trial)
			continue;
		if ((s = stored_identity(d, t[i].policy_json, t[i].policy_sha256, id)) == PRESSO_OK)
			s = seen_add(d->seen, id, NULL);
	}
	if (s != PRESSO_OK)
		goto done;
	/* RNG, strategy and the batch drawn last */
	if ((s = store_get_state(d->st, d->study_id, STATE_RNG, &rng_text, &nb, &found_rng)) ||
	    (s = store_get_state(d->st, d->study_id, STATE_POPULATION, &pop_text, &nb, &found_pop)) ||
	    (s = store_get_state(d->st, d->study_id, STATE_BANDIT, &bandit_text, &nb,
				 &found_bandit)) ||
	    (s = store_get_state(d->st, d->study_id, STATE_BATCH, &batch_text, &nb, &found_batch)) ||
	    (s = store_get_state(d->st, d->study_id, STATE_FIDELITY, &fid_text, &nb, &found_fid)))
		goto done;
	/* the archive's size when the saved batch was drawn (its trials come
	 * after those points: the archive is in trial number order) */
	d->fid_mark = d->a.n;
	if (found_fid) {
		long long mark = -1;
		if (sscanf(fid_text, "{\"archive_n\": %lld}", &mark) != 1 || mark < 0 ||
		    mark > d->a.n) {
			s = status_fail(PRESSO_E_FORMAT,
					"study '%s': the saved multi-fidelity state is damaged",
					d->study);
			goto done;
		}
		d->fid_mark = (int)mark;
	}
	rng_seed(&d->rng, d->sp->search.seed);
	if (found_rng && !rng_from_text(&d->rng, rng_text)) {
		s = status_fail(PRESSO_E_FORMAT, "study '%s': the saved RNG state is damaged",
				d->study);
		goto done;
	}
	if (found_pop && found_bandit &&
	    (s = strategy_load(d->strat, pop_text, bandit_text)) != PRESSO_OK) {
		status_wrap(s, "study '%s'", d->study);
		goto done;
	}
	if (found_batch && (s = restore_batch(d, batch_text, lost, &n_lost)) != PRESSO_OK)
		goto done;
	if (d->n_pending && d->log)
		fprintf(d->log, "presso: %d candidate%s of the last batch still to evaluate\n",
			d->n_pending, d->n_pending == 1 ? "" : "s");
	/* lost policies outside that batch (a study an older presso ran) go first */
	d->requeue = malloc(gb * (size_t)(n_lost ? n_lost : 1));
	if (!d->requeue) {
		s = nomem();
		goto done;
	}
	for (int i = 0; i < n_lost; i++) {
		char where[64];
		snprintf(where, sizeof where, "trial %lld", (long long)lost[i].lost_trial);
		bool in_space;
		if ((s = genome_of(d, lost[i].policy_json, where,
				   d->requeue + gb * (size_t)d->n_requeue, &in_space)) != PRESSO_OK)
			goto done;
		d->n_requeue += in_space;
	}
	d->r->n_requeued = n_lost_all;
	/* complete trials the saved state has not seen */
	for (int i = 0; i < n_t; i++) {
		int idx = archive_find(&d->a, t[i].number);
		if (idx < 0 || t[i].number <= strategy_last_told(d->strat))
			continue;
		struct candidate c = {.genome = (uint8_t *)archive_genome(&d->a, idx),
				      .origin = ORIGIN_REQUEUE};
		struct archive_gain gain;
		struct trial_metrics m = search_metrics(d, c.genome, &t[i].metrics);
		archive_gain(&d->a, &m, &gain);
		if ((s = strategy_tell(d->strat, &c, t[i].number, idx, &gain)) != PRESSO_OK)
			goto done;
	}
done:
	free(g);
	free(rng_text);
	free(pop_text);
	free(bandit_text);
	free(batch_text);
	free(fid_text);
	store_trials_free(t, n_t);
	store_policies_free(lost, n_lost_all);
	return s;
}

/* --- a batch -------------------------------------------------------------------- */

static void free_slots(struct driver *d)
{
	for (int i = 0; d->slots && i < d->batch; i++) {
		policy_free(d->slots[i].p);
		free(d->slots[i].json);
		free(d->slots[i].c.genome);
	}
	free(d->slots);
	d->slots = NULL;
}

static enum presso_status alloc_slots(struct driver *d)
{
	d->slots = calloc((size_t)d->batch, sizeof *d->slots);
	if (!d->slots)
		return nomem();
	struct layer_policy lp = policy_default_layer();
	for (int i = 0; i < d->batch; i++) {
		d->slots[i].c.genome = malloc((size_t)d->sp->n_genes);
		if (!d->slots[i].c.genome || policy_uniform(&lp, d->ctx->n_layers, &d->slots[i].p))
			return nomem();
	}
	return PRESSO_OK;
}

/* The search state of this moment, as store entries: rng, population, bandit
 * and, with_batch, the batch in the slots. */
struct saved_state {
	char rng[RNG_TEXT_BYTES];
	char *population, *bandit, *batch;
	char fidelity[64];
	struct store_kv kv[5];
	int n;
};

static void state_free(struct saved_state *ss)
{
	free(ss->population);
	free(ss->bandit);
	free(ss->batch);
}

static enum presso_status state_make(const struct driver *d, bool with_batch,
				     struct saved_state *ss)
{
	*ss = (struct saved_state){.n = 0};
	enum presso_status s = strategy_save(d->strat, &ss->population, &ss->bandit);
	if (s == PRESSO_OK && with_batch) {
		struct candidate *c = malloc(sizeof *c * (size_t)(d->n_slots ? d->n_slots : 1));
		if (!c)
			s = nomem();
		for (int i = 0; c && i < d->n_slots; i++)
			c[i] = d->slots[i].c;
		if (c)
			s = strategy_save_batch(d->strat, c, d->n_slots, &ss->batch);
		free(c);
	}
	if (s != PRESSO_OK) {
		state_free(ss);
		return s;
	}
	rng_to_text(&d->rng, ss->rng);
	ss->kv[ss->n++] = (struct store_kv){STATE_RNG, ss->rng, strlen(ss->rng), true};
	ss->kv[ss->n++] =
		(struct store_kv){STATE_POPULATION, ss->population, strlen(ss->population), true};
	ss->kv[ss->n++] = (struct store_kv){STATE_BANDIT, ss->bandit, strlen(ss->bandit), true};
	if (ss->batch)
		ss->kv[ss->n++] = (struct store_kv){STATE_BATCH, ss->batch, strlen(ss->batch), true};
	if (ss->batch && d->fid_images > 0) {
		int len = snprintf(ss->fidelity, sizeof ss->fidelity, "{\"archive_n\": %d}",
				   d->fid_mark);
		ss->kv[ss->n++] = (struct store_kv){STATE_FIDELITY, ss->fidelity, (size_t)len, true};
	}
	return PRESSO_OK;
}

/* Moves slots [n, n_slots) of a batch just drawn to the pending candidates
 * (the budget lets only n of it be evaluated): a later fill_batch, or a
 * --resume with a larger budget, hands them out before drawing again. */
static enum presso_status keep_rest_pending(struct driver *d, int n)
{
	size_t gb = (size_t)d->sp->n_genes;
	int rest = d->n_slots - n;
	struct candidate *c = calloc((size_t)rest, sizeof *c);
	if (!c)
		return nomem();
	for (int i = 0; i < rest; i++) {
		const struct slot *sl = &d->slots[n + i];
		c[i] = sl->c;
		c[i].genome = malloc(gb);
		if (!c[i].genome) {
			strategy_batch_free(c, i);
			return nomem();
		}
		memcpy(c[i].genome, sl->c.genome, gb);
	}
	strategy_batch_free(d->pending, d->n_pending);
	d->pending = c;
	d->n_pending = rest;
	d->next_pending = 0;
	d->n_slots = n;
	return PRESSO_OK;
}

/* Fills up to n slots. The rest of the batch an interrupted run drew comes
 * first, alone: no candidate is drawn until the whole of it is told, as in a
 * run without a break. Otherwise a new batch: lost policies outside that batch
 * (left by an older presso) first, then the strategy's candidates; the batch
 * is then saved with the state of that moment (the RNG after the draw, the
 * strategy after its selection) in one transaction, so that a resume hands
 * out the same candidates instead of drawing others. A new batch is always
 * drawn whole, even when the budget has room for fewer (n < batch): the
 * slots past n stay pending, so that a study resumed with a larger budget
 * evaluates what one run with that budget would have. */
static enum presso_status fill_batch(struct driver *d, int n)
{
	size_t gb = (size_t)d->sp->n_genes;
	int k = 0, got = 0;
	enum presso_status s = PRESSO_OK;
	bool fresh = d->next_pending == d->n_pending;
	while (!fresh && k < n && d->next_pending < d->n_pending) {
		const struct candidate *c = &d->pending[d->next_pending++];
		struct slot *sl = &d->slots[k++];
		memcpy(sl->c.genome, c->genome, gb);
		sl->c.origin = c->origin;
		sl->c.n_arms = c->n_arms;
		memcpy(sl->c.arms, c->arms, sizeof c->arms);
	}
	int take = n; /* the slots evaluated now */
	if (fresh)
		n = d->batch;
	while (fresh && k < n && d->next_requeue < d->n_requeue) {
		struct slot *sl = &d->slots[k];
		memcpy(sl->c.genome, d->requeue + gb * (size_t)d->next_requeue++, gb);
		sl->c.origin = ORIGIN_REQUEUE;
		sl->c.n_arms = 0;
		if (claim(d, sl->c.genome))
			k++;
	}
	if (fresh && k < n) {
		struct candidate *cands = malloc(sizeof *cands * (size_t)(n - k));
		if (!cands)
			return nomem();
		for (int i = k; i < n; i++)
			cands[i - k].genome = d->slots[i].c.genome;
		s = strategy_ask(d->strat, &d->rng, claim, d, n - k, cands, &got);
		for (int i = 0; i < got; i++)
			d->slots[k + i].c = cands[i];
		free(cands);
	}
	if (s == PRESSO_OK && d->error != PRESSO_OK) /* claim() failed */
		s = status_fail(d->error, "%s", d->error_msg);
	d->n_slots = k + got;
	d->cursor = 0;
	for (int i = 0; i < d->n_slots && s == PRESSO_OK; i++) {
		struct slot *sl = &d->slots[i];
		free(sl->json);
		sl->json = NULL;
		sl->number = 0;
		sl->state = SLOT_QUEUED;
		sl->screened_out = false;
		sl->eval_s = 0;
		sl->error[0] = '\0';
		s = policy_identity(d, sl->c.genome, sl->p, &sl->json, sl->hash);
	}
	if (s == PRESSO_OK && fresh) {
		struct saved_state ss;
		d->fid_mark = d->a.n;
		if ((s = state_make(d, true, &ss)) == PRESSO_OK) {
			s = store_put_state(d->st, d->study_id, ss.kv, ss.n);
			state_free(&ss);
		}
	}
	if (s == PRESSO_OK && take < d->n_slots)
		s = keep_rest_pending(d, take);
	return s;
}

static struct trial_metrics metrics_of(const struct driver *d, const struct slot *sl)
{
	const struct trial_metrics_out *o = &sl->out;
	bool two_pass = d->fid_images > 0;
	return (struct trial_metrics){
		.low_fidelity = sl->screened_out,
		.low_accuracy = two_pass ? sl->low.accuracy : 0,
		.low_n_images = two_pass ? sl->low.n_images : 0,
		.accuracy = o->accuracy,
		.test_accuracy = NAN,
		.size_bytes = o->size_bytes,
		.bops = o->bops,
		.latency_us = d->lut ? latency_lut_estimate(d->lut, sl->p) : NAN,
		.mean_bits = o->mean_bits,
		.mean_prune = o->mean_prune,
		.mean_rank = o->mean_rank,
		.n_images = o->n_images,
	};
}

static void show_progress(struct driver *d, bool force)
{
	if (!progress_due(&d->prog, d->done, force))
		return;
	struct progress_info in = {.done = d->done, .budget = d->budget,
				   .done_this_run = d->r->n_complete_run + d->r->n_failed_run,
				   .best_accuracy = NAN, .time_limit_s = d->time_limit_s};
	double hv = 0;
	int *front = NULL;
	if (archive_front(&d->a, &front, &in.n_front) == PRESSO_OK)
		free(front);
	archive_hypervolume(&d->a, &hv, &in.hv_ratio);
	int best = archive_best(&d->a);
	if (best >= 0) {
		in.best_accuracy = d->a.pts[best].m.accuracy;
		in.best_size_bytes = (double)d->a.pts[best].m.size_bytes;
	}
	status_clear();
	progress_update(&d->prog, &in);
}

/* Completes one evaluated slot: archive, tell, store with state. A candidate
 * screened out at low fidelity is no result: the archive does not take it
 * (nor the front, nor the population); the strategy learns from what its
 * low-fidelity score would have brought. */
static enum presso_status commit_done(struct driver *d, struct slot *sl)
{
	struct trial_metrics m = metrics_of(d, sl);
	struct archive_gain gain;
	struct saved_state ss;
	int idx = -1;
	archive_gain(&d->a, &m, &gain);
	enum presso_status s = PRESSO_OK;
	if (sl->screened_out)
		d->r->n_screened_run++;
	else
		s = archive_add(&d->a, sl->number, sl->c.genome, &m, &idx);
	if (s == PRESSO_OK && d->fid_images > 0 && !sl->screened_out)
		d->r->n_promoted_run++;
	if (s == PRESSO_OK)
		s = strategy_tell(d->strat, &sl->c, sl->number, idx, &gain);
	if (s == PRESSO_OK)
		s = state_make(d, false, &ss);
	if (s != PRESSO_OK)
		return s;
	for (int i = 0; i < d->ctx->n_layers; i++) {
		const struct layer_policy *lp = &sl->p->layers[i];
		d->choices[i] = (struct layer_choice){d->ctx->layers[i].name, lp->bits, lp->act_bits,
						      lp->bias_correction, lp->prune,
						      (int)lp->prune_kind, lp->rank};
	}
	s = store_complete_trial(d->st, d->study_id, sl->number, &m, d->choices, d->ctx->n_layers,
				 ss.kv, ss.n);
	state_free(&ss);
	return s;
}

/* Commits the longest finished prefix of the batch. */
static void commit_prefix(struct driver *d)
{
	int limit = d->workers * 2 > MIN_FAILURES_TO_GIVE_UP ? d->workers * 2
							      : MIN_FAILURES_TO_GIVE_UP;
	if (2 * d->batch > limit)
		limit = 2 * d->batch;
	while (d->cursor < d->n_slots) {
		struct slot *sl = &d->slots[d->cursor];
		if (sl->state == SLOT_QUEUED || sl->state == SLOT_RUNNING ||
		    sl->state == SLOT_PROMOTED || sl->state == SLOT_RUNNING_FULL)
			return;
		d->cursor++;
		if (sl->state == SLOT_SKIPPED || d->error != PRESSO_OK)
			continue;
		enum presso_status s;
		if (sl->state == SLOT_DONE) {
			s = commit_done(d, sl);
			d->consecutive_failures = 0;
			d->r->n_complete_run++;
			d->r->eval_seconds += sl->eval_s;
		} else if (sl->eval_status == PRESSO_E_NOMEM || sl->eval_status == PRESSO_E_SYSTEM) {
			/* the machine failed, not the policy: stop, leaving the trial
			 * running for --resume to evaluate again */
			s = status_fail(sl->eval_status, "trial %lld: %s", (long long)sl->number,
					sl->error);
		} else {
			s = store_fail_trial(d->st, d->study_id, sl->number, sl->error);
			snprintf(d->r->last_error, sizeof d->r->last_error, "trial %lld: %.480s",
				 (long long)sl->number, sl->error);
			d->r->n_failed_run++;
			if (++d->consecutive_failures >= limit && s == PRESSO_OK)
				s = status_fail(PRESSO_E_RUNTIME,
						"the last %d trials failed; the last one: %s",
						d->consecutive_failures, sl->error);
		}
		if (s != PRESSO_OK) {
			batch_error(d, s);
			continue;
		}
		d->done++;
		show_progress(d, false);
		hook_event(d, HOOK_COMMIT);
	}
}

/* search.fidelity: could a candidate reach the front? Its low-fidelity
 * metrics (with search.fidelity.confidence above 0.5, its accuracy at that
 * upper Wilson bound: the subset's uncertainty in its favour) against the
 * archive as it was when the batch was drawn, every point compared at its own
 * low-fidelity score on the same images (archive_gain_paired): promoted when
 * it would raise the hypervolume - feasible (or, while nothing is, the least
 * violation), inside the reference box and dominated by no point. Depends on
 * nothing the batch itself brings, so the decision is the same whichever
 * worker finished first and after a resume. */
static bool promote(const struct driver *d, const struct slot *sl)
{
	struct trial_metrics m = metrics_of(d, sl);
	m.accuracy = stats_wilson_bound(sl->low.accuracy, (double)sl->low.n_images, d->fid_z);
	if (isnan(m.accuracy))
		return true;
	struct archive_gain g;
	archive_gain_paired(&d->a, d->fid_mark, &m, &g);
	return g.improves;
}

/* A result back from the pool: the slot is done, failed or (search.fidelity,
 * after the low-fidelity pass) promoted to the rest of the split; then the
 * longest finished prefix is committed. */
static void take_result(struct driver *d, const struct pool_result *res)
{
	struct slot *sl = &d->slots[res->tag];
	PRESSO_CHECK(res->tag >= 0 && res->tag < d->n_slots &&
		     (sl->state == SLOT_RUNNING || sl->state == SLOT_RUNNING_FULL));
	bool second = sl->state == SLOT_RUNNING_FULL;
	sl->eval_s += res->eval_s;
	sl->eval_status = res->status;
	if (res->status != PRESSO_OK) {
		snprintf(sl->error, sizeof sl->error, "%s", res->error);
		sl->state = SLOT_FAILED;
	} else if (second) {
		/* the whole split: the two parts' counts add up (trial.h) */
		sl->out = res->out;
		sl->out.n_correct += sl->low.n_correct;
		sl->out.n_images += sl->low.n_images;
		sl->out.accuracy = 100.0 * (double)sl->out.n_correct / (double)sl->out.n_images;
		sl->state = SLOT_DONE;
	} else if (d->fid_images > 0) {
		sl->low = sl->out = res->out;
		sl->screened_out = !promote(d, sl);
		sl->state = sl->screened_out ? SLOT_DONE : SLOT_PROMOTED;
	} else {
		sl->out = res->out;
		sl->state = SLOT_DONE;
	}
	commit_prefix(d);
}

/* The first promoted slot waiting for its second pass, or -1. */
static int next_promoted(const struct driver *d)
{
	for (int i = 0; i < d->n_slots; i++)
		if (d->slots[i].state == SLOT_PROMOTED)
			return i;
	return -1;
}

/* Runs the batch in the slots: each idle worker gets the next candidate,
 * begun in batch order; results are committed in batch order as they come
 * back. With search.fidelity a candidate's first job is the low-fidelity
 * subset and a promoted one's second job the rest of the split; second jobs
 * go first (the commits wait for them). Returns when every begun trial is
 * back (after a stop too: the trials in flight finish, promoted ones with
 * their second pass; after an error nothing more is handed out). */
static void run_batch(struct driver *d)
{
	int next = 0;
	for (;;) {
		int w, full;
		while (!atomic_load(&d->abort) && (full = next_promoted(d)) >= 0 &&
		       (w = pool_idle(d->pool)) >= 0) {
			struct slot *sl = &d->slots[full];
			struct pool_job job = {full, sl->p, sl->json, false, d->fid_images, 0};
			sl->state = SLOT_RUNNING_FULL;
			enum presso_status s = pool_submit(d->pool, w, &job);
			if (s != PRESSO_OK) {
				sl->state = SLOT_SKIPPED; /* its row stays running: lost on resume */
				batch_error(d, s);
			}
		}
		while (next < d->n_slots && (w = pool_idle(d->pool)) >= 0) {
			struct slot *sl = &d->slots[next];
			if (stop_requested(d) || time_up(d)) {
				/* nothing more is begun: the rest is skipped */
				for (; next < d->n_slots; next++)
					d->slots[next].state = SLOT_SKIPPED;
				break;
			}
			enum presso_status s = store_begin_trial(d->st, d->study_id, sl->json, sl->hash,
								 pool_worker_name(d->pool, w),
								 &sl->number);
			if (s == PRESSO_OK) {
				struct pool_job job = {next, sl->p, sl->json, false, 0, d->fid_images};
				sl->state = SLOT_RUNNING;
				hook_event(d, HOOK_BEGIN);
				s = pool_submit(d->pool, w, &job);
				if (s != PRESSO_OK)
					sl->state = SLOT_SKIPPED; /* its row stays running: lost on resume */
			}
			if (s != PRESSO_OK)
				batch_error(d, s);
			next++;
		}
		commit_prefix(d);
		bool waiting = !atomic_load(&d->abort) && next_promoted(d) >= 0;
		if (pool_in_flight(d->pool) == 0 && !waiting &&
		    (next == d->n_slots || stop_requested(d)))
			break;
		if (pool_in_flight(d->pool) == 0)
			continue;
		struct pool_result res;
		enum presso_status s = pool_wait(d->pool, &res);
		if (s != PRESSO_OK) {
			batch_error(d, s);
			break; /* the transport is gone: nothing more will come back */
		}
		take_result(d, &res);
	}
	for (int i = 0; i < d->n_slots; i++)
		if (d->slots[i].state == SLOT_PROMOTED)
			d->slots[i].state = SLOT_SKIPPED; /* after an error: lost on resume */
	for (; next < d->n_slots; next++)
		d->slots[next].state = SLOT_SKIPPED;
	commit_prefix(d);
}

/* --- the end: re-score close front trials on more images -------------------------- */

struct rescore {
	struct split more;  /* the extra images, drawn at the first need */
	struct policy *pol; /* scratch */
};

/* One pass of rescore_front over the front: *n_pass trials re-scored. */
static enum presso_status rescore_pass(struct driver *d, struct rescore *rs, const int *front,
				       int n_front, int *n_pass)
{
	int64_t split_n = d->ctx->valid.n;
	enum presso_status s = PRESSO_OK;
	*n_pass = 0;
	for (int i = 0; i < n_front && s == PRESSO_OK && !stop_requested(d); i++) {
		struct archive_point *p = &d->a.pts[front[i]];
		if (p->violation != 0 || !archive_meets(&d->a, &p->m) || p->m.n_images != split_n ||
		    archive_confident(&d->a, &p->m))
			continue;
		if (!rs->more.indices &&
		    (s = trial_more_validation(d->ctx, d->sp->search.rescore_images, &rs->more))) {
			status_wrap(s, "search.rescore_images");
			break;
		}
		struct layer_policy lp = policy_default_layer();
		if (!rs->pol && (s = policy_uniform(&lp, d->ctx->n_layers, &rs->pol)) != PRESSO_OK)
			break;
		space_genome_to_policy(d->sp, archive_genome(&d->a, front[i]), rs->pol);
		struct trial_metrics_out out;
		if ((s = trial_evaluate_split(d->ctx, rs->pol, &rs->more, &out)) != PRESSO_OK)
			break;
		/* the split's correct count, exactly: accuracy = 100 c / n */
		int64_t correct = llround(p->m.accuracy * (double)split_n / 100.0) + out.n_correct;
		struct trial_metrics m = p->m;
		m.n_images = split_n + out.n_images;
		m.accuracy = 100.0 * (double)correct / (double)m.n_images;
		if ((s = store_set_rescored(d->st, d->study_id, p->number, m.accuracy, m.n_images)))
			break;
		if (d->log)
			fprintf(d->log, "presso: trial %lld re-scored on %lld more images: %.2f%% -> "
					"%.2f%% over %lld\n",
				(long long)p->number, (long long)out.n_images, p->m.accuracy, m.accuracy,
				(long long)m.n_images);
		archive_update(&d->a, front[i], &m);
		d->r->n_rescored_run++;
		(*n_pass)++;
		hook_event(d, HOOK_RECHECK);
	}
	return s;
}

/* search.rescore_images = M, before the test split is touched: the feasible
 * front trials that meet the accuracy bounds at their point value but not at
 * constraints.confidence (archive_confident: the interval straddles a bound)
 * are scored on the M training images after the validation split
 * (trial_more_validation), on this thread, and their accuracy becomes that of
 * the split and those images together (store_set_rescored; the archive point
 * too, so the front, the best trial and `presso pareto` use it). A trial that
 * leaves the front may uncover one it dominated: passes go on, the front
 * recomputed after each, until one re-scores nothing. A trial already
 * re-scored (n_images above the split) is not scored again, so a resumed run
 * finishes what a killed one left. */
static enum presso_status rescore_front(struct driver *d, int **front, int *n_front)
{
	struct rescore rs = {{0, NULL}, NULL};
	enum presso_status s = PRESSO_OK;
	int n_pass = d->sp->search.rescore_images > 0;
	while (s == PRESSO_OK && n_pass > 0 && !stop_requested(d)) {
		s = rescore_pass(d, &rs, *front, *n_front, &n_pass);
		if (s == PRESSO_OK && n_pass) {
			free(*front);
			*front = NULL;
			s = archive_front(&d->a, front, n_front);
		}
	}
	split_free(&rs.more);
	policy_free(rs.pol);
	return s;
}

/* --- the end: re-check the front -------------------------------------------------- */

static enum presso_status recheck_front(struct driver *d, const int *front, int n_front)
{
	const struct config *cfg = d->o->cfg;
	struct policy **pols = calloc((size_t)(n_front ? n_front : 1), sizeof *pols);
	enum presso_status s = PRESSO_OK;
	if (!pols)
		return nomem();
	struct layer_policy lp = policy_default_layer();
	for (int i = 0; i < n_front && s == PRESSO_OK; i++)
		if ((s = policy_uniform(&lp, d->ctx->n_layers, &pols[i])) == PRESSO_OK)
			space_genome_to_policy(d->sp, archive_genome(&d->a, front[i]), pols[i]);
	int n_todo = 0;
	for (int i = 0; i < n_front; i++)
		n_todo += isnan(d->a.pts[front[i]].m.test_accuracy);
	if (s == PRESSO_OK && n_todo && d->log)
		fprintf(d->log, "presso: re-checking %d front trial%s on %lld test images\n", n_todo,
			n_todo == 1 ? "" : "s", (long long)d->ctx->test_split.n);
	/* test accuracy, in parallel on the pool */
	char **texts = calloc((size_t)(n_front ? n_front : 1), sizeof *texts);
	if (!texts)
		s = nomem();
	int next = 0;
	while (s == PRESSO_OK) {
		int w;
		while (next < n_front && !stop_requested(d) && (w = pool_idle(d->pool)) >= 0) {
			int i = next++;
			if (!isnan(d->a.pts[front[i]].m.test_accuracy))
				continue;
			if (!(texts[i] = policy_to_json(pols[i], d->ctx->layers))) {
				batch_error(d, nomem());
				break;
			}
			struct pool_job job = {i, pols[i], texts[i], true, 0, 0};
			enum presso_status js = pool_submit(d->pool, w, &job);
			if (js != PRESSO_OK) {
				batch_error(d, js);
				break;
			}
		}
		if (pool_in_flight(d->pool) == 0 && (next == n_front || stop_requested(d)))
			break;
		if (pool_in_flight(d->pool) == 0)
			continue;
		struct pool_result res;
		enum presso_status es = pool_wait(d->pool, &res);
		if (es != PRESSO_OK) {
			batch_error(d, es);
			break;
		}
		struct archive_point *p = &d->a.pts[front[res.tag]];
		es = res.status;
		if (es != PRESSO_OK)
			status_fail(es, "re-checking trial %lld on the test split: %s",
				    (long long)p->number, res.error);
		if (es == PRESSO_OK && d->error == PRESSO_OK)
			es = store_set_test_accuracy(d->st, d->study_id, p->number, res.out.accuracy);
		if (es == PRESSO_OK && d->error == PRESSO_OK) {
			p->m.test_accuracy = res.out.accuracy;
			hook_event(d, HOOK_RECHECK);
		} else if (es != PRESSO_OK) {
			batch_error(d, es);
		}
	}
	for (int i = 0; texts && i < n_front; i++)
		free(texts[i]);
	free(texts);
	if (s == PRESSO_OK && d->error != PRESSO_OK)
		s = status_fail(d->error, "%s", d->error_msg);
	/* latency, one at a time on a quiet machine */
	for (int i = 0; i < n_front && s == PRESSO_OK && !stop_requested(d); i++) {
		struct archive_point *p = &d->a.pts[front[i]];
		double us = NAN;
		/* the policy's own model: pruned and factorised layers change latency */
		struct built_model b;
		s = trial_build(d->ctx, pols[i], &b);
		if (s == PRESSO_OK) {
			struct eval_model em = {b.g, b.qm};
			s = eval_latency(&em, d->ctx->train, &cfg->data.norm,
					 d->sp->search.latency_runs, &us);
			built_model_free(&b);
		}
		if (s == PRESSO_OK)
			s = store_set_latency(d->st, d->study_id, p->number, us);
		if (s == PRESSO_OK) {
			p->m.latency_us = us;
			hook_event(d, HOOK_RECHECK);
		}
	}
	for (int i = 0; i < n_front; i++)
		policy_free(pols[i]);
	free(pols);
	return s;
}

/* --- the end: fine-tune the smallest front trials ------------------------------------ */

struct by_size_item {
	int idx;
	int64_t size_bytes, number;
};

static int by_size(const void *pa, const void *pb)
{
	const struct by_size_item *a = pa, *b = pb;
	if (a->size_bytes != b->size_bytes)
		return a->size_bytes < b->size_bytes ? -1 : 1;
	return (a->number > b->number) - (a->number < b->number);
}

/* search.rescore_images for a tuned model, as rescore_front does for a PTQ
 * trial: one whose validation accuracy mv meets the accuracy bounds at its
 * point value but not at constraints.confidence is scored on the same M
 * images after the validation split, and m's accuracy and n_images become
 * those of the split and the M images together (*rescored true). So a tuned
 * trial can be the confident best, and `export --pick ... at 95%` can take
 * it, as a PTQ trial can. */
static enum presso_status rescore_tuned(struct driver *d, const struct policy *pol,
					const struct finetune_result *fr,
					const struct trial_metrics_out *mv, struct trial_metrics *m,
					bool *rescored)
{
	*rescored = false;
	if (d->sp->search.rescore_images <= 0 || !archive_meets(&d->a, m) ||
	    archive_confident(&d->a, m))
		return PRESSO_OK;
	struct split more = {0, NULL};
	struct trial_metrics_out out;
	enum presso_status s = trial_more_validation(d->ctx, d->sp->search.rescore_images, &more);
	if (s != PRESSO_OK)
		status_wrap(s, "search.rescore_images");
	else
		s = finetune_evaluate_split(d->ctx, pol, fr, &more, &out);
	split_free(&more);
	if (s != PRESSO_OK)
		return s;
	m->n_images = mv->n_images + out.n_images;
	m->accuracy = 100.0 * (double)(mv->n_correct + out.n_correct) / (double)m->n_images;
	*rescored = true;
	if (d->log)
		fprintf(d->log, "presso: the tuned model re-scored on %lld more images: %.2f%% -> "
				"%.2f%% over %lld\n",
			(long long)out.n_images, mv->accuracy, m->accuracy, (long long)m->n_images);
	return PRESSO_OK;
}

/* One front trial fine-tuned and stored as a trial of its own. */
static enum presso_status finetune_one(struct driver *d, const struct archive_point *p,
				       const uint8_t *genome)
{
	const struct driver_opts *o = d->o;
	struct policy *pol = NULL;
	struct finetune_result fr = {0};
	struct trial_metrics_out mv, mt;
	uint8_t *bytes = NULL;
	size_t n_bytes = 0;
	char *settings = NULL, *ckpt = NULL;
	struct layer_policy lp = policy_default_layer();
	enum presso_status s = policy_uniform(&lp, d->ctx->n_layers, &pol);
	if (s != PRESSO_OK)
		return s;
	space_genome_to_policy(d->sp, genome, pol);
	/* the checkpoint, beside the database: a killed fine-tune resumes there */
	size_t cap = strlen(o->db_path) + 64;
	if (!(ckpt = malloc(cap))) {
		s = nomem();
		goto done;
	}
	snprintf(ckpt, cap, "%s.finetune-%lld-%lld.ckpt", o->db_path, (long long)d->study_id,
		 (long long)p->number);
	if (d->log)
		fprintf(d->log, "presso: fine-tuning trial %lld (%.2f%% validation, %lld bytes)\n",
			(long long)p->number, p->m.accuracy, (long long)p->m.size_bytes);
	/* the run's time limit stops the training too, at the same point a
	 * stop request would: the checkpoint keeps it for --resume */
	struct finetune_opts fo = {.tc = &d->tc, .checkpoint = ckpt, .log = o->quiet ? NULL : d->log,
				   .stop = o->stop,
				   .deadline_s = d->time_limit_s > 0 ? d->prog.t0 + d->time_limit_s : 0};
	if ((s = finetune_run(d->ctx, pol, &fo, &fr)) != PRESSO_OK)
		goto done;
	if (fr.train.interrupted)
		goto done; /* the checkpoint holds it; the caller sees the stop or the time */
	if ((s = finetune_evaluate(d->ctx, pol, &fr, false, &mv)) != PRESSO_OK ||
	    (s = finetune_evaluate(d->ctx, pol, &fr, true, &mt)) != PRESSO_OK ||
	    (s = o->encode_model(fr.qm, &bytes, &n_bytes)) != PRESSO_OK)
		goto done;
	if (!(settings = train_config_canonical(&d->tc))) {
		s = nomem();
		goto done;
	}
	for (int i = 0; i < d->ctx->n_layers; i++) {
		const struct layer_policy *l = &pol->layers[i];
		d->choices[i] = (struct layer_choice){d->ctx->layers[i].name, l->bits, l->act_bits,
						      l->bias_correction, l->prune,
						      (int)l->prune_kind, l->rank};
	}
	/* the tuned model keeps the PTQ model's structure, so its latency */
	struct trial_metrics m = {.accuracy = mv.accuracy, .test_accuracy = mt.accuracy,
				  .size_bytes = mv.size_bytes, .bops = mv.bops,
				  .latency_us = p->m.latency_us, .mean_bits = mv.mean_bits,
				  .mean_prune = mv.mean_prune, .mean_rank = mv.mean_rank,
				  .n_images = mv.n_images};
	bool rescored = false;
	if ((s = rescore_tuned(d, pol, &fr, &mv, &m, &rescored)) != PRESSO_OK)
		goto done;
	struct finetune_record rec = {
		.parent = p->number, .source = "search", .settings_json = settings,
		.steps = fr.train.steps, .epochs = d->tc.max_steps > 0 ? 0 : d->tc.epochs,
		.lr = d->tc.lr, .kd_weight = d->tc.kd_weight, .temperature = d->tc.temperature,
		.train_seconds = fr.train.seconds, .images_per_s = fr.train.images_per_s,
		.model = bytes, .model_bytes = n_bytes, .rescored = rescored,
		.split_accuracy = mv.accuracy};
	char worker[300];
	host_name(worker, sizeof worker - 24);
	snprintf(worker + strlen(worker), 24, ":%ld", (long)getpid());
	int64_t number = 0;
	if ((s = store_add_finetuned(d->st, d->study_id, &rec, &m, d->choices, d->ctx->n_layers,
				     worker, &number)) != PRESSO_OK)
		goto done;
	if (unlink(ckpt) != 0 && errno != ENOENT && d->log)
		fprintf(d->log, "presso: warning: could not remove the checkpoint %s: %s\n", ckpt,
			strerror(errno));
	d->r->n_finetuned_run++;
	bool meets = archive_meets(&d->a, &m) && archive_confident(&d->a, &m);
	struct driver_result *r = d->r;
	if (meets && (!r->has_best_tuned || m.size_bytes < r->best_tuned.m.size_bytes ||
		      (m.size_bytes == r->best_tuned.m.size_bytes &&
		       m.accuracy > r->best_tuned.m.accuracy))) {
		r->has_best_tuned = true;
		r->best_tuned = (struct driver_trial){number, m, 0, NAN};
		r->best_tuned_parent = p->number;
	}
	if (d->log) {
		char more[80] = "";
		if (rescored)
			snprintf(more, sizeof more, " (%.2f%% over %lld images re-scored)", m.accuracy,
				 (long long)m.n_images);
		fprintf(d->log,
			"presso: trial %lld = trial %lld fine-tuned: %.2f%% -> %.2f%% validation%s, "
			"%.2f%% test, %lld steps in %.1f s; %s the constraints\n",
			(long long)number, (long long)p->number, p->m.accuracy, mv.accuracy, more,
			mt.accuracy, (long long)fr.train.steps, fr.train.seconds,
			meets ? "meets" : "does not meet");
	}
	hook_event(d, HOOK_FINETUNE);
done:
	if (s != PRESSO_OK)
		status_wrap(s, "fine-tuning trial %lld", (long long)p->number);
	free(settings);
	free(bytes);
	free(ckpt);
	finetune_result_free(&fr);
	policy_free(pol);
	return s;
}

/* search.finetune_front = K: the K smallest feasible front trials, each
 * fine-tuned once (a trial that already has a fine-tuned row is not tuned
 * again, so a resumed search finishes what a killed one left). With
 * search.finetune_reach the front reaches beyond the accuracy bounds, and
 * its members smaller than the best trial are the candidates: K of them
 * spread over their sizes (the middles of K equal parts of the list by
 * size), since the smallest may lie beyond what training wins back and the
 * largest saves little. Sets r->n_finetune_todo to what a stop request or the
 * run's time limit left undone. */
static enum presso_status finetune_front(struct driver *d, const int *front, int n_front)
{
	struct driver_result *r = d->r;
	int k = d->sp->search.finetune_front;
	r->n_finetune_todo = 0;
	if (k <= 0 || n_front == 0)
		return PRESSO_OK;
	if (!d->o->encode_model)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "search.finetune_front: this program cannot store tuned models");
	struct by_size_item *items = malloc(sizeof *items * (size_t)n_front);
	int64_t *done = NULL;
	int n_items = 0, n_done = 0;
	enum presso_status s = items ? store_finetuned_parents(d->st, d->study_id, &done, &n_done)
				     : nomem();
	if (s != PRESSO_OK) {
		free(items);
		return s;
	}
	bool reach = d->sp->search.finetune_reach > 0;
	int best = reach ? archive_best(&d->a) : -1;
	for (int i = 0; i < n_front; i++) {
		const struct archive_point *p = &d->a.pts[front[i]];
		if (p->violation == 0 &&
		    (best < 0 || p->m.size_bytes < d->a.pts[best].m.size_bytes))
			items[n_items++] = (struct by_size_item){front[i], p->m.size_bytes, p->number};
	}
	qsort(items, (size_t)n_items, sizeof *items, by_size);
	if (reach && n_items > k) {
		for (int j = 0; j < k; j++) /* increasing, so items[j] is read before written */
			items[j] = items[(2 * j + 1) * n_items / (2 * k)];
	}
	if (n_items > k)
		n_items = k;
	int n_todo = 0;
	for (int i = 0; i < n_items; i++) {
		bool tuned = false;
		for (int j = 0; j < n_done && !tuned; j++)
			tuned = done[j] == items[i].number;
		if (tuned)
			items[i].idx = -1;
		else
			n_todo++;
	}
	if (d->log && n_items && reach)
		fprintf(d->log, "presso: fine-tuning %d front trial%s within %g points of the "
				"accuracy bounds and smaller than the best trial: %d to do, %d done "
				"before\n",
			n_items, n_items == 1 ? "" : "s", d->sp->search.finetune_reach, n_todo,
			n_items - n_todo);
	else if (d->log && n_items)
		fprintf(d->log, "presso: fine-tuning the %d smallest front trial%s that meet the "
				"constraints: %d to do, %d done before\n",
			n_items, n_items == 1 ? "" : "s", n_todo, n_items - n_todo);
	for (int i = 0; i < n_items && s == PRESSO_OK; i++) {
		if (items[i].idx < 0)
			continue;
		if (stop_requested(d) || time_up(d))
			break;
		const struct archive_point *p = &d->a.pts[items[i].idx];
		int before = r->n_finetuned_run;
		s = finetune_one(d, p, archive_genome(&d->a, items[i].idx));
		n_todo -= r->n_finetuned_run - before;
	}
	r->n_finetune_todo = s == PRESSO_OK ? n_todo : 0;
	free(items);
	free(done);
	return s;
}

static struct driver_trial trial_of(const struct driver *d, int idx)
{
	const struct archive_point *p = &d->a.pts[idx];
	struct driver_trial t = {p->number, p->m, archive_n_same(&d->a, idx), NAN};
	if (d->lut) {
		struct layer_policy lp = policy_default_layer();
		struct policy *pol = NULL;
		if (policy_uniform(&lp, d->ctx->n_layers, &pol) == PRESSO_OK) {
			space_genome_to_policy(d->sp, archive_genome(&d->a, idx), pol);
			t.latency_estimate_us = latency_lut_estimate(d->lut, pol);
		}
		policy_free(pol);
	}
	return t;
}

static enum presso_status finish(struct driver *d)
{
	struct driver_result *r = d->r;
	int *front = NULL, n_front = 0;
	enum presso_status s = archive_front(&d->a, &front, &n_front);
	if (s != PRESSO_OK)
		return s;
	if (r->end != DRIVER_END_INTERRUPTED && (s = rescore_front(d, &front, &n_front)) == PRESSO_OK &&
	    stop_requested(d))
		r->end = DRIVER_END_INTERRUPTED; /* --resume re-scores the rest */
	if (s == PRESSO_OK && r->end != DRIVER_END_INTERRUPTED) {
		s = recheck_front(d, front, n_front);
		r->front_rechecked = s == PRESSO_OK && !stop_requested(d);
		/* a stop request cut the re-check short: --resume finishes it */
		if (s == PRESSO_OK && !r->front_rechecked)
			r->end = DRIVER_END_INTERRUPTED;
	}
	if (s == PRESSO_OK && r->end != DRIVER_END_INTERRUPTED) {
		s = finetune_front(d, front, n_front);
		/* --resume tunes the rest */
		if (s == PRESSO_OK && r->n_finetune_todo > 0)
			r->end = stop_requested(d) ? DRIVER_END_INTERRUPTED : DRIVER_END_TIME;
	}
	/* "finished" = no run is going on; a resume marks it running again */
	if (s == PRESSO_OK)
		s = store_finish_study(d->st, d->study_id);
	if (s == PRESSO_OK)
		s = archive_hypervolume(&d->a, &r->hypervolume, &r->hv_ratio);
	if (s == PRESSO_OK && n_front) {
		r->front = malloc(sizeof *r->front * (size_t)n_front);
		if (!r->front)
			s = nomem();
		for (int i = 0; s == PRESSO_OK && i < n_front; i++) {
			r->front[i] = trial_of(d, front[i]);
			r->n_front_same += r->front[i].n_same;
		}
		if (s == PRESSO_OK)
			r->n_front = n_front;
	}
	const struct space_constraints *c = &d->sp->con;
	r->finetune_reach = d->sp->search.finetune_reach;
	r->constrained = !isnan(c->min_accuracy) || !isnan(c->max_accuracy_drop) ||
			 !isnan(c->max_size_bytes) || !isnan(c->max_latency_us);
	if ((!isnan(c->min_accuracy) || !isnan(c->max_accuracy_drop)) && !isnan(c->confidence))
		r->best_rule = "the cheapest that meets the constraints, its accuracy bound at "
			       "the constraints' confidence";
	else if (!isnan(c->min_accuracy) || !isnan(c->max_accuracy_drop))
		r->best_rule = "the cheapest that meets the constraints";
	else if (!isnan(c->max_size_bytes) || !isnan(c->max_latency_us))
		r->best_rule = "the most accurate that meets the constraints";
	else
		r->best_rule = "the cheapest within 1 point of FP32 (no constraints set)";
	r->confidence = c->confidence;
	int best = archive_best(&d->a);
	if (s == PRESSO_OK && best >= 0) {
		r->has_best = true;
		r->best = trial_of(d, best);
	}
	free(front);
	return s;
}

/* --- the run ------------------------------------------------------------------------ */

static void driver_free(struct driver *d)
{
	pool_close(d->pool, d->log);
	free_slots(d);
	strategy_batch_free(d->pending, d->n_pending);
	free(d->requeue);
	free(d->choices);
	policy_free(d->claim_policy);
	policy_free(d->canon_policy);
	latency_lut_free(d->lut);
	sensitivity_free(d->sens);
	seen_free(d->seen);
	strategy_free(d->strat);
	archive_free(&d->a);
	space_free(d->sp);
	study_ctx_free(d->ctx);
	store_close(d->st);
}

static enum presso_status search(struct driver *d)
{
	const struct driver_opts *o = d->o;
	struct driver_result *r = d->r;
	enum presso_status s;
	struct layer_policy lp = policy_default_layer();
	if ((s = archive_init(&d->a, d->sp, &r->base)) ||
	    (s = strategy_create(d->sp, &d->a, &d->strat)) || (s = seen_create(&d->seen)) ||
	    (s = policy_uniform(&lp, d->ctx->n_layers, &d->claim_policy)) ||
	    (s = policy_uniform(&lp, d->ctx->n_layers, &d->canon_policy)))
		return s;
	d->choices = malloc(sizeof *d->choices * (size_t)d->ctx->n_layers);
	if (!d->choices)
		return nomem();
	if ((s = take_ownership(d)) != PRESSO_OK)
		return s;
	/* before the latency table: other ranks finish loading first, so a rank
	 * on this machine is quiet while the table is measured */
	if ((s = pool_open(d->ctx, d->workers, d->log, &d->pool)) != PRESSO_OK)
		return s;
	d->workers = pool_size(d->pool);
	r->workers = d->workers;
	r->ranks = pool_ranks(d->pool);
	if (d->sp->needs_latency &&
	    (s = lut_for_study(d->ctx, d->sp, d->st, d->study_id, d->log, &d->lut)) != PRESSO_OK)
		return s;
	/* measured once, at the start of a new study; a resume reads it back and
	 * seeds the strategy the same way before restoring its saved state */
	if (d->sp->search.sensitivity &&
	    ((s = sensitivity_for_study(d->ctx, d->sp, d->st, d->study_id, d->log, &d->sens)) ||
	     (s = strategy_use_sensitivity(d->strat, d->sens))))
		return s;
	r->valid_images = d->ctx->valid.n;
	if (d->sp->search.fidelity_images > 0 && d->sp->search.fidelity_images < d->ctx->valid.n) {
		d->fid_images = d->sp->search.fidelity_images;
		/* 0.5: the point estimate itself */
		double c = d->sp->search.fidelity_confidence;
		d->fid_z = c > 0.5 ? stats_one_sided_z(c) : 0;
		r->fidelity_images = d->fid_images;
	} else if (d->sp->search.fidelity_images > 0 && d->log) {
		fprintf(d->log, "presso: search.fidelity.images (%lld) is not below the validation "
				"split's %lld images: every candidate is scored on the whole split\n",
			(long long)d->sp->search.fidelity_images, (long long)d->ctx->valid.n);
	}
	if ((s = restore(d)) != PRESSO_OK)
		return s;
	struct resume_info ri;
	if ((s = store_resume_info(d->st, d->study_id, &ri)) != PRESSO_OK)
		return s;
	d->done = ri.n_complete + ri.n_failed - ri.n_lost;
	r->budget = d->budget;
	d->batch = d->sp->search.batch > d->workers ? d->sp->search.batch : d->workers;
	r->batch = d->batch;
	if ((s = alloc_slots(d)) != PRESSO_OK)
		return s;
	char size_text[32], ranks[32] = "";
	if (r->ranks > 1)
		snprintf(ranks, sizeof ranks, " on %d MPI ranks", r->ranks);
	if (d->log)
		fprintf(d->log,
			"presso: study '%s' (%s) in %s: %d layers, %s policies, strategy %s, "
			"%d worker%s%s, batches of %d, %lld of %lld trials done\n",
			d->study, r->resumed ? "resumed" : "new", o->db_path, d->ctx->n_layers,
			space_size_text(r->space_size, size_text, sizeof size_text),
			space_strategy_name(d->sp->search.strategy), d->workers,
			d->workers == 1 ? "" : "s", ranks, d->batch, (long long)d->done, (long long)d->budget);
	progress_init(&d->prog, d->log, o->quiet);
	double cpu0 = thread_cpu_s();
	struct abandon_ctx ab = {o->db_path, d->study_id};
	if (o->signals)
		signals_on_second(o->signals, abandon, &ab);
	r->end = DRIVER_END_BUDGET;
	for (;;) {
		if (o->stop && atomic_load(o->stop)) {
			r->end = DRIVER_END_INTERRUPTED;
			break;
		}
		if (d->done >= d->budget) {
			r->end = DRIVER_END_BUDGET;
			break;
		}
		if (time_up(d)) {
			r->end = DRIVER_END_TIME;
			break;
		}
		if ((double)seen_count(d->seen) >= r->space_size && d->next_requeue == d->n_requeue &&
		    d->next_pending == d->n_pending) {
			r->end = DRIVER_END_EXHAUSTED;
			break;
		}
		int64_t left = d->budget - d->done;
		int n = left < d->batch ? (int)left : d->batch;
		if ((s = fill_batch(d, n)) != PRESSO_OK)
			break;
		if (d->n_slots == 0) {
			r->end = DRIVER_END_EXHAUSTED;
			break;
		}
		hook_event(d, HOOK_BATCH);
		run_batch(d);
		if (d->error != PRESSO_OK) {
			s = status_fail(d->error, "%s", d->error_msg);
			break;
		}
	}
	r->seconds = progress_elapsed(&d->prog);
	r->driver_cpu_s = thread_cpu_s() - cpu0;
	/* a budget or time limit reached before MIN_FAILURES_TO_GIVE_UP, with no
	 * trial of the study complete: nothing found, and nothing to finish */
	if (s == PRESSO_OK && r->end != DRIVER_END_INTERRUPTED && r->n_failed_run > 0 &&
	    r->n_complete_run == 0 && d->a.n == 0)
		s = status_fail(PRESSO_E_RUNTIME,
				"all %d trials of this run failed and the study has no complete trial; "
				"the last one: %s",
				r->n_failed_run, r->last_error);
	if (s == PRESSO_OK) {
		show_progress(d, true);
		progress_close(&d->prog);
		s = finish(d);
	}
	progress_close(&d->prog);
	if (o->signals)
		signals_on_second(o->signals, NULL, NULL);
	r->done = d->done;
	return s;
}

enum presso_status driver_run(const struct driver_opts *o, struct driver_result *r)
{
	memset(r, 0, sizeof *r);
	r->confidence = NAN;
	struct driver d = {.o = o, .log = o->log, .r = r, .workers = o->workers > 0 ? o->workers : 1};
	atomic_init(&d.abort, 0);
	r->workers = d.workers;
	enum presso_status s = parse_hook(&d.hook);
	if (s == PRESSO_OK)
		s = check_space(o->cfg, &d.tc);
	if (s == PRESSO_OK)
		s = open_study(&d);
	if (s == PRESSO_OK) {
		const struct space_search *q = &d.sp->search;
		d.budget = o->max_trials > 0 ? o->max_trials
			   : q->max_trials > 0 ? q->max_trials : DRIVER_DEFAULT_TRIALS;
		d.time_limit_s = o->time_limit_s > 0 ? o->time_limit_s : q->time_limit_s;
		snprintf(r->study, sizeof r->study, "%s", d.study);
		r->strategy = q->strategy;
		r->n_layers = d.ctx->n_layers;
		r->space_size = space_size(d.sp);
		r->n_obj = d.sp->n_obj;
		memcpy(r->obj, d.sp->obj, sizeof r->obj);
		s = search(&d);
	}
	driver_free(&d);
	return s;
}

void driver_result_free(struct driver_result *r)
{
	if (!r)
		return;
	free(r->front);
	r->front = NULL;
	r->n_front = 0;
}
