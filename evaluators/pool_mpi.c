/* pool_mpi.c - a search across machines with MPI (compiled only with
 * -DPRESSO_MPI=ON; every MPI call of presso is in this file).
 *
 * `mpirun -np N presso search ...` starts N copies of presso. Rank 0 runs the
 * search driver (search/driver.c) and is the only rank that opens the
 * database; its pool (pool.h) is its own `--workers` threads (a local pool,
 * pool.c, started once the other ranks are ready) and the workers of ranks
 * 1..N-1, its own first when several are idle. Every other rank
 * runs pool_serve(): it loads the config from the same path and the study's
 * model and data from the paths the config names (shared or copied files:
 * nothing is broadcast), starts a local pool of its own `--workers` threads
 * (pool.c), and evaluates what rank 0 sends until rank 0 says stop.
 *
 * A rank's life, in messages (each exactly once unless said):
 *   worker: HELLO (ready, or why not) -> any number of JOB in / RESULT out
 *           -> STOP in -> BYE out -> MPI_Finalize
 *   rank 0: receives every HELLO in pool_mpi_open() (the search waits for
 *           all ranks before it begins; a rank that failed is an error naming
 *           it) -> JOBs and RESULTs -> STOP to each rank and its BYE in
 *           pool close, or in pool_world_finish() when the search ended before
 *           the pool opened -> MPI_Finalize.
 * Rank 0 sends a rank at most as many JOBs as it has workers (HELLO says how
 * many), so work goes by demand: a rank is given a job only when one of its
 * workers is free, and a slow rank holds nothing another could run. Rank 0's
 * driver thread waits for its own workers on their condition variable and
 * for the other ranks by polling, one or the other first.
 *
 * Messages are MPI_BYTE on MPI_COMM_WORLD, one tag per kind (enum tag),
 * serialised explicitly: integers little-endian at their width, doubles as
 * the little-endian bytes of their IEEE binary64 bits, a text as a u32 byte
 * count then the bytes (no NUL). So ranks on machines of either byte order
 * agree on every value, bit for bit.
 *
 *   HELLO  worker -> 0   u32 magic 0x70727373 ('prss'), u32 protocol (1),
 *                        u32 status (enum presso_status of loading), u32 workers,
 *                        i64 pid, text host, text presso version,
 *                        text identity ("config=SHA model=SHA train_images=SHA
 *                        ...": SHA-256 of the canonical config and of each
 *                        file it names), text error (when status is not 0)
 *   JOB    0 -> worker   u64 job, u32 flags (bit 0: the test split), u64 first_image,
 *                        u64 n_images (pool_job: part of the validation split), text
 *                        policy JSON
 *   RESULT worker -> 0   u64 job, u32 status, f64 eval_s, f64 accuracy,
 *                        i64 n_correct, i64 n_images, i64 size_bytes, f64 bops,
 *                        f64 latency_us, f64 mean_bits, f64 mean_prune,
 *                        f64 mean_rank, text error
 *   STOP   0 -> worker   (empty)
 *   BYE    worker -> 0   f64 wall_s (HELLO to STOP), f64 busy_s (summed over its
 *                        jobs: evaluating), f64 mpi_s (its main thread inside MPI
 *                        calls), f64 cpu_s (the process's CPU time, user + system),
 *                        u64 jobs, u32 workers
 *
 * Waiting never spins a core: a rank polls with MPI_Iprobe and naps between
 * polls (NAP_MIN_S doubling to NAP_MAX_S, back to NAP_MIN_S after a message),
 * so idle ranks and a rank 0 that shares a machine with a worker rank cost
 * nothing; a message waits at most NAP_MAX_S, against trials of 10 ms to
 * seconds. A worker rank waits for its own workers' results on a condition
 * variable, so results leave as soon as they are ready; while every worker of
 * it has a job it does not poll MPI at all (no job can come then).
 *
 * A rank that dies ends the job (mpirun's rule; with srun, --kill-on-bad-exit):
 * rank 0 is killed with it, the trials it had begun stay `running` in the
 * database and the next --resume, on any number of ranks, marks them lost and
 * evaluates their policies again. Nothing committed is lost.
 *
 * Benchmark hook: with PRESSO_MPI_SIMULATE_TRIAL_S=SECONDS in every rank's
 * environment, every rank's workers answer each job after sleeping SECONDS
 * with made-up metrics (a function of the policy text's SHA-256) and worker
 * ranks load nothing, so the driver and rank 0's database can be measured
 * with many ranks on one machine (bench/run_mpi.sh). Rank 0 still loads the
 * study. A user has no reason to set it.
 */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/pool_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "config/config.h"

#define MAGIC 0x70727373u
#define PROTOCOL 2u /* 2: JOB carries an image range (multi-fidelity) */
#define NAP_MIN_S 50e-6
#define NAP_MAX_S 1e-3
#define BUSY_WAIT_S 0.05 /* a worker rank whose workers all have a job: no JOB can
			    come (rank 0 sends one per free worker), only results */
#define SIMULATE_ENV "PRESSO_MPI_SIMULATE_TRIAL_S"
#define IDENTITY_BYTES 1024
#define MAX_LISTED_RANKS 8 /* ranks named one by one in the log; past that, a count */

enum tag { TAG_HELLO = 1, TAG_JOB, TAG_RESULT, TAG_STOP, TAG_BYE };

/* --- serialisation --------------------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static void put(struct wbuf *b, const void *x, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, x, n);
	b->n += n;
}

static void put_u64(struct wbuf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(b, x, 8);
}

static void put_u32(struct wbuf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(b, x, 4);
}

static void put_f64(struct wbuf *b, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	put_u64(b, u);
}

static void put_text(struct wbuf *b, const char *t)
{
	size_t n = t ? strlen(t) : 0;
	put_u32(b, (uint32_t)n);
	put(b, t, n);
}

struct rbuf {
	const uint8_t *p;
	size_t n, at;
	bool bad;
};

static const uint8_t *take(struct rbuf *b, size_t n)
{
	if (b->bad || b->n - b->at < n) {
		b->bad = true;
		return NULL;
	}
	const uint8_t *x = b->p + b->at;
	b->at += n;
	return x;
}

static uint64_t get_u64(struct rbuf *b)
{
	const uint8_t *x = take(b, 8);
	uint64_t v = 0;
	for (int i = 0; x && i < 8; i++)
		v |= (uint64_t)x[i] << (8 * i);
	return v;
}

static uint32_t get_u32(struct rbuf *b)
{
	const uint8_t *x = take(b, 4);
	uint32_t v = 0;
	for (int i = 0; x && i < 4; i++)
		v |= (uint32_t)x[i] << (8 * i);
	return v;
}

static double get_f64(struct rbuf *b)
{
	uint64_t u = get_u64(b);
	double v;
	memcpy(&v, &u, 8);
	return v;
}

/* A text into dst (cap bytes with its NUL; longer texts are cut). */
static void get_text(struct rbuf *b, char *dst, size_t cap)
{
	uint32_t n = get_u32(b);
	const uint8_t *x = take(b, n);
	size_t k = x ? (n < cap - 1 ? n : cap - 1) : 0;
	if (k)
		memcpy(dst, x, k);
	dst[k] = '\0';
}

/* A text, malloc'd (NULL when malformed or out of memory). */
static char *get_text_alloc(struct rbuf *b)
{
	uint32_t n = get_u32(b);
	const uint8_t *x = take(b, n);
	char *t = x ? malloc((size_t)n + 1) : NULL;
	if (t) {
		memcpy(t, x, n);
		t[n] = '\0';
	}
	return t;
}

/* --- MPI calls, timed ---------------------------------------------------------- */

static struct {
	bool joined;
	int rank, size;
	double mpi_s;        /* this process's time inside MPI calls */
	/* rank 0 */
	bool *hello;         /* [size]: its HELLO has been received */
	bool *stopped;       /* [size]: STOP sent and BYE received */
} W;

static enum presso_status mpi_fail(int rc, const char *what)
{
	char text[MPI_MAX_ERROR_STRING] = "";
	int len = 0;
	MPI_Error_string(rc, text, &len);
	return status_fail(PRESSO_E_RUNTIME, "MPI: %s: %s", what, text);
}

static enum presso_status send_msg(const struct wbuf *b, int dest, enum tag tag)
{
	if (b->oom)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	double t0 = pool_now_s();
	int rc = MPI_Send(b->p, (int)b->n, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
	W.mpi_s += pool_now_s() - t0;
	return rc == MPI_SUCCESS ? PRESSO_OK : mpi_fail(rc, "send");
}

/* Is a message from source (or MPI_ANY_SOURCE) with tag (or MPI_ANY_TAG) waiting? */
static enum presso_status poll_msg(int source, int tag, bool *got, MPI_Status *st)
{
	int flag = 0;
	double t0 = pool_now_s();
	int rc = MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, st);
	W.mpi_s += pool_now_s() - t0;
	*got = flag != 0;
	return rc == MPI_SUCCESS ? PRESSO_OK : mpi_fail(rc, "probe");
}

static void nap(double *s)
{
	struct timespec ts = {0, (long)(*s * 1e9)};
	nanosleep(&ts, NULL);
	*s = *s * 2 < NAP_MAX_S ? *s * 2 : NAP_MAX_S;
}

/* Waits for a message (napping between polls) and receives it: *buf
 * (malloc'd, the caller frees) and its source and tag. */
static enum presso_status recv_msg(int source, int tag, uint8_t **buf, int *n, int *src_out,
				   int *tag_out)
{
	MPI_Status st;
	bool got = false;
	double wait = NAP_MIN_S;
	enum presso_status s;
	while ((s = poll_msg(source, tag, &got, &st)) == PRESSO_OK && !got)
		nap(&wait);
	if (s != PRESSO_OK)
		return s;
	int count = 0;
	MPI_Get_count(&st, MPI_BYTE, &count);
	*buf = malloc((size_t)count + 1);
	if (!*buf)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	double t0 = pool_now_s();
	int rc = MPI_Recv(*buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
			  MPI_STATUS_IGNORE);
	W.mpi_s += pool_now_s() - t0;
	if (rc != MPI_SUCCESS) {
		free(*buf);
		*buf = NULL;
		return mpi_fail(rc, "receive");
	}
	*n = count;
	*src_out = st.MPI_SOURCE;
	*tag_out = st.MPI_TAG;
	return PRESSO_OK;
}

/* --- the world ------------------------------------------------------------------ */

static bool launched_by_mpi(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (getenv(vars[i]))
			return true;
	return false;
}

enum presso_status pool_mpi_world_init(struct pool_world *w)
{
	*w = (struct pool_world){0, 1};
	if (!launched_by_mpi())
		return PRESSO_OK;
	/* presso never blocks inside MPI (it polls with MPI_Iprobe and naps), so
	 * Open MPI's habit of yielding the CPU in every progress call on an
	 * oversubscribed node only stretches each poll to a scheduler timeslice
	 * (3x the transit time on a busy machine); a setting the user made wins */
	setenv("OMPI_MCA_mpi_yield_when_idle", "0", 0);
	int provided = 0;
	int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
	if (rc != MPI_SUCCESS)
		return status_fail(PRESSO_E_RUNTIME, "MPI_Init_thread failed (%d)", rc);
	W.joined = true;
	/* errors come back as codes, reported with the rank that saw them */
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_rank(MPI_COMM_WORLD, &W.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &W.size);
	if (provided < MPI_THREAD_FUNNELED)
		return status_fail(PRESSO_E_RUNTIME,
				   "MPI offers no thread support (MPI_THREAD_FUNNELED is needed)");
	if (W.rank == 0) {
		W.hello = calloc((size_t)W.size, sizeof *W.hello);
		W.stopped = calloc((size_t)W.size, sizeof *W.stopped);
		if (!W.hello || !W.stopped)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	*w = (struct pool_world){W.rank, W.size};
	return PRESSO_OK;
}

/* CPU seconds (user + system) this process has used. */
static double cpu_s(void)
{
	struct rusage u;
	if (getrusage(RUSAGE_SELF, &u) != 0)
		return 0;
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct bye {
	double wall_s, busy_s, mpi_s, cpu_s;
	uint64_t jobs;
	uint32_t workers;
};

/* Rank 0: STOP to rank r, then its messages until BYE (its HELLO on the way if
 * it had not come; results of dropped jobs are ignored). */
static enum presso_status stop_rank(int r, struct bye *bye)
{
	struct wbuf empty = {0};
	*bye = (struct bye){0};
	enum presso_status s = send_msg(&empty, r, TAG_STOP);
	while (s == PRESSO_OK) {
		uint8_t *buf = NULL;
		int n = 0, src = 0, tag = 0;
		if ((s = recv_msg(r, MPI_ANY_TAG, &buf, &n, &src, &tag)) != PRESSO_OK)
			break;
		if (tag == TAG_HELLO)
			W.hello[r] = true;
		if (tag == TAG_BYE) {
			struct rbuf b = {buf, (size_t)n, 0, false};
			bye->wall_s = get_f64(&b);
			bye->busy_s = get_f64(&b);
			bye->mpi_s = get_f64(&b);
			bye->cpu_s = get_f64(&b);
			bye->jobs = get_u64(&b);
			bye->workers = get_u32(&b);
			W.stopped[r] = true;
			free(buf);
			break;
		}
		free(buf);
	}
	return s;
}

void pool_mpi_world_finish(void)
{
	if (!W.joined)
		return;
	if (W.rank == 0 && W.stopped)
		for (int r = 1; r < W.size; r++) {
			struct bye bye;
			if (!W.stopped[r] && stop_rank(r, &bye) != PRESSO_OK)
				fprintf(stderr, "presso search: rank %d did not stop: %s\n", r,
					status_msg());
		}
	free(W.hello);
	free(W.stopped);
	W.hello = W.stopped = NULL;
	MPI_Finalize();
	W.joined = false;
}

/* --- what a rank evaluates against ------------------------------------------- */

/* "config=SHA model=SHA train_images=SHA ...": what every rank must share. */
static enum presso_status study_identity(const struct config *cfg, char *out, size_t cap)
{
	char *text = cJSON_PrintUnformatted(cfg->json);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	char sha[SHA256_HEX_BYTES];
	sha256_hex(text, strlen(text), sha);
	free(text);
	const struct data_config *d = &cfg->data;
	const char *names[] = {"model", "train_images", "train_labels", "test_images",
			       "test_labels"};
	const char *paths[] = {cfg->model_path, d->train_images, d->train_labels, d->test_images,
			       d->test_labels};
	size_t used = (size_t)snprintf(out, cap, "config=%s", sha);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		enum presso_status s = sha256_file(paths[i], sha);
		if (s != PRESSO_OK)
			return s;
		used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, " %s=%s", names[i],
					 sha);
	}
	return PRESSO_OK;
}

/* The first item ("model=...") in which two identities differ, as "model". */
static void identity_difference(const char *a, const char *b, char *what, size_t cap)
{
	snprintf(what, cap, "?");
	while (*a && *b) {
		size_t la = strcspn(a, " "), lb = strcspn(b, " ");
		if (la != lb || strncmp(a, b, la) != 0) {
			snprintf(what, cap, "%.*s", (int)strcspn(a, "="), a);
			return;
		}
		a += la + (a[la] == ' ');
		b += lb + (b[lb] == ' ');
	}
}

/* The simulated trial time (0: answer at once), or -1 when the hook is not set
 * (or not a number of seconds). */
static double simulated_trial_s(void)
{
	const char *e = getenv(SIMULATE_ENV);
	char *end = NULL;
	double v = e && *e ? strtod(e, &end) : -1;
	return e && *e && end && !*end && isfinite(v) && v >= 0 ? v : -1;
}

/* The hook's evaluation: a nap, and metrics made up from the policy's hash. */
static enum presso_status simulated_eval(void *ctx, const struct pool_job *job,
					 struct trial_metrics_out *out)
{
	double s = *(const double *)ctx;
	struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
	nanosleep(&ts, NULL);
	char sha[SHA256_HEX_BYTES];
	sha256_hex(job->policy_json, strlen(job->policy_json), sha);
	double u[3];
	for (int i = 0; i < 3; i++) {
		char part[9];
		memcpy(part, sha + 8 * i, 8);
		part[8] = '\0';
		u[i] = (double)strtoul(part, NULL, 16) / 4294967296.0;
	}
	*out = (struct trial_metrics_out){
		.accuracy = 50 + 45 * u[0], .n_images = 1000, .size_bytes = 1000 + (int64_t)(u[1] * 60000),
		.latency_us = NAN, .mean_bits = 1 + 7 * u[2], .mean_prune = 0, .mean_rank = 1};
	out->n_correct = (int64_t)(out->accuracy * 10);
	out->bops = (double)out->size_bytes * 1e4;
	return PRESSO_OK;
}

/* --- a worker rank ---------------------------------------------------------------- */

struct held {            /* a job a worker of this rank holds */
	uint64_t job;
	struct policy *p;
	char *json;
};

static enum presso_status send_result(uint64_t job, const struct pool_result *r)
{
	struct wbuf b = {0};
	const struct trial_metrics_out *o = &r->out;
	put_u64(&b, job);
	put_u32(&b, (uint32_t)r->status);
	put_f64(&b, r->eval_s);
	put_f64(&b, o->accuracy);
	put_u64(&b, (uint64_t)o->n_correct);
	put_u64(&b, (uint64_t)o->n_images);
	put_u64(&b, (uint64_t)o->size_bytes);
	put_f64(&b, o->bops);
	put_f64(&b, o->latency_us);
	put_f64(&b, o->mean_bits);
	put_f64(&b, o->mean_prune);
	put_f64(&b, o->mean_rank);
	put_text(&b, r->status == PRESSO_OK ? "" : r->error);
	enum presso_status s = send_msg(&b, 0, TAG_RESULT);
	free(b.p);
	return s;
}

/* A JOB message: parsed and given to a local worker, or failed at once. */
static enum presso_status take_job(const uint8_t *buf, int n, const struct study_ctx *ctx,
				   struct local_pool *lp, struct held *held)
{
	struct rbuf b = {buf, (size_t)n, 0, false};
	uint64_t job = get_u64(&b);
	uint32_t flags = get_u32(&b);
	int64_t first_image = (int64_t)get_u64(&b), n_images = (int64_t)get_u64(&b);
	char *json = get_text_alloc(&b);
	struct pool_result r = {.status = PRESSO_OK};
	if (b.bad || !json)
		r.status = status_fail(b.bad ? PRESSO_E_RUNTIME : PRESSO_E_NOMEM,
				       b.bad ? "a malformed job message" : "out of memory");
	struct policy *p = NULL;
	if (r.status == PRESSO_OK && ctx)
		r.status = policy_parse(json, "policy", ctx->layers, ctx->n_layers, &p);
	int w = r.status == PRESSO_OK ? local_pool_idle(lp) : -1;
	if (r.status == PRESSO_OK && w < 0)
		r.status = status_fail(PRESSO_E_RUNTIME, "rank 0 sent more jobs than this rank has "
							 "workers");
	if (r.status != PRESSO_OK) {
		snprintf(r.error, sizeof r.error, "%s", status_msg());
		policy_free(p);
		free(json);
		return send_result(job, &r);
	}
	held[w] = (struct held){job, p, json};
	struct pool_job pj = {w, p, json, (flags & 1u) != 0, first_image, n_images};
	return local_pool_submit(lp, w, &pj);
}

static enum presso_status send_hello(enum presso_status loaded, int workers, const char *identity)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	struct wbuf b = {0};
	put_u32(&b, MAGIC);
	put_u32(&b, PROTOCOL);
	put_u32(&b, (uint32_t)loaded);
	put_u32(&b, (uint32_t)workers);
	put_u64(&b, (uint64_t)(int64_t)getpid());
	put_text(&b, host);
	put_text(&b, PRESSO_VERSION);
	put_text(&b, identity);
	put_text(&b, loaded == PRESSO_OK ? "" : status_msg());
	enum presso_status s = send_msg(&b, 0, TAG_HELLO);
	free(b.p);
	return s;
}

enum presso_status pool_mpi_serve(const char *config_path, int workers)
{
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct local_pool *lp = NULL;
	struct held *held = NULL;
	char identity[IDENTITY_BYTES] = "";
	double sim_s = simulated_trial_s();
	if (workers < 1)
		workers = 1;
	enum presso_status loaded = config_load(config_path, &cfg);
	if (loaded == PRESSO_OK && sim_s >= 0)
		snprintf(identity, sizeof identity, "simulated=%s", getenv(SIMULATE_ENV));
	else if (loaded == PRESSO_OK)
		loaded = study_identity(cfg, identity, sizeof identity);
	if (loaded == PRESSO_OK && sim_s < 0)
		loaded = study_ctx_open_for_trials(cfg, &ctx);
	if (loaded == PRESSO_OK && !(held = calloc((size_t)workers, sizeof *held)))
		loaded = status_fail(PRESSO_E_NOMEM, "out of memory");
	if (loaded == PRESSO_OK)
		loaded = sim_s >= 0 ? local_pool_open(simulated_eval, &sim_s, workers, &lp)
				   : local_pool_open(pool_eval_trial, ctx, workers, &lp);
	enum presso_status s = send_hello(loaded, workers, identity);
	double t_start = pool_now_s(), wait = NAP_MIN_S;
	uint64_t jobs = 0;
	bool stop = false;
	while (s == PRESSO_OK && !stop) {
		bool busy = false;
		struct pool_result r;
		/* results first: they leave as soon as they are ready */
		while (lp && s == PRESSO_OK && local_pool_wait_for(lp, 0, &r)) {
			struct held *h = &held[r.tag];
			s = send_result(h->job, &r);
			policy_free(h->p);
			free(h->json);
			*h = (struct held){0};
			busy = true;
		}
		MPI_Status st;
		bool got = false;
		if (s == PRESSO_OK)
			s = poll_msg(0, MPI_ANY_TAG, &got, &st);
		if (s == PRESSO_OK && got) {
			uint8_t *buf = NULL;
			int n = 0, src = 0, tag = 0;
			s = recv_msg(0, st.MPI_TAG, &buf, &n, &src, &tag);
			if (s == PRESSO_OK && tag == TAG_STOP)
				stop = true;
			else if (s == PRESSO_OK && tag == TAG_JOB && lp) {
				s = take_job(buf, n, ctx, lp, held);
				jobs++;
			}
			free(buf);
			busy = true;
		}
		if (busy) {
			wait = NAP_MIN_S;
		} else if (lp && local_pool_in_flight(lp) > 0) {
			/* a result wakes this at once; a message waits for the timeout */
			bool full = local_pool_in_flight(lp) == local_pool_size(lp);
			if (local_pool_wait_for(lp, full ? BUSY_WAIT_S : wait, &r)) {
				struct held *h = &held[r.tag];
				s = send_result(h->job, &r);
				policy_free(h->p);
				free(h->json);
				*h = (struct held){0};
				wait = NAP_MIN_S;
			} else {
				wait = wait * 2 < NAP_MAX_S ? wait * 2 : NAP_MAX_S;
			}
		} else {
			nap(&wait);
		}
	}
	double wall_s = pool_now_s() - t_start, busy_s = 0, lp_wall = 0;
	if (lp) {
		struct pool_result r;
		while (local_pool_in_flight(lp) > 0)
			local_pool_wait(lp, &r);
		local_pool_times(lp, &lp_wall, &busy_s);
	}
	if (stop) {
		struct wbuf b = {0};
		put_f64(&b, wall_s);
		put_f64(&b, busy_s);
		put_f64(&b, W.mpi_s);
		put_f64(&b, cpu_s());
		put_u64(&b, jobs);
		put_u32(&b, (uint32_t)workers);
		s = send_msg(&b, 0, TAG_BYE);
		free(b.p);
	}
	for (int i = 0; held && i < workers; i++) {
		policy_free(held[i].p);
		free(held[i].json);
	}
	free(held);
	local_pool_close(lp);
	study_ctx_free(ctx);
	config_free(cfg);
	if (loaded == PRESSO_OK && s != PRESSO_OK) /* rank 0 cannot hear of it */
		fprintf(stderr, "presso search: rank %d: %s\n", W.rank, status_msg());
	return loaded != PRESSO_OK ? loaded : s;
}

/* --- rank 0's pool: the other ranks' workers ------------------------------------ */

struct rank_info {
	int workers;
	char name[POOL_NAME_BYTES]; /* host:pid rank R */
	int64_t jobs;
	double round_trip_s, eval_s; /* summed over its jobs: sent to result back, and evaluating */
};

struct mpi_pool {
	struct local_pool *local; /* rank 0's own workers: slots 0 .. local_n - 1 */
	int local_n;
	int n_slots;
	int *slot_rank;
	bool *slot_busy;
	int64_t *slot_tag;
	double *slot_sent;
	int in_flight;
	struct rank_info *ranks; /* [W.size]; 0: rank 0's own workers */
	double opened_at, wait_s, mpi_at_open, cpu_at_open;
};

static void mpi_pool_free(struct mpi_pool *mp)
{
	if (!mp)
		return;
	local_pool_close(mp->local);
	free(mp->slot_rank);
	free(mp->slot_busy);
	free(mp->slot_tag);
	free(mp->slot_sent);
	free(mp->ranks);
	free(mp);
}

/* A HELLO from rank r: its workers, or the error it reports. */
static enum presso_status read_hello(struct mpi_pool *mp, int r, const uint8_t *buf, int n,
				     const char *identity)
{
	struct rbuf b = {buf, (size_t)n, 0, false};
	char host[128], version[64], theirs[IDENTITY_BYTES], error[POOL_ERROR_BYTES];
	uint32_t magic = get_u32(&b), protocol = get_u32(&b), status = get_u32(&b),
		 workers = get_u32(&b);
	long pid = (long)(int64_t)get_u64(&b);
	get_text(&b, host, sizeof host);
	get_text(&b, version, sizeof version);
	get_text(&b, theirs, sizeof theirs);
	get_text(&b, error, sizeof error);
	W.hello[r] = true;
	if (b.bad || magic != MAGIC || protocol != PROTOCOL)
		return status_fail(PRESSO_E_RUNTIME,
				   "rank %d is not a presso worker of this version (protocol %u, "
				   "expected %u)",
				   r, protocol, PROTOCOL);
	snprintf(mp->ranks[r].name, sizeof mp->ranks[r].name, "%.64s:%ld rank %d", host, pid, r);
	if (status != PRESSO_OK)
		return status_fail(status < PRESSO_STATUS_COUNT ? (enum presso_status)status
								: PRESSO_E_RUNTIME,
				   "rank %d (%.64s:%ld): %s", r, host, pid, error);
	if (strcmp(version, PRESSO_VERSION) != 0)
		return status_fail(PRESSO_E_USAGE,
				   "rank %d (%.64s:%ld) runs presso %s, rank 0 runs %s: use one "
				   "build on every node",
				   r, host, pid, version, PRESSO_VERSION);
	if (strcmp(theirs, identity) != 0) {
		char what[64];
		identity_difference(identity, theirs, what, sizeof what);
		return status_fail(PRESSO_E_USAGE,
				   "rank %d (%.64s:%ld): its %s file differs from rank 0's "
				   "(SHA-256): every node must see the same config, model and data "
				   "at the same paths",
				   r, host, pid, what);
	}
	if (workers < 1 || workers > 1u << 16)
		return status_fail(PRESSO_E_RUNTIME, "rank %d reports %u workers", r, workers);
	mp->ranks[r].workers = (int)workers;
	return PRESSO_OK;
}

enum presso_status pool_mpi_open(const struct study_ctx *ctx, int workers, FILE *log,
				 void **impl)
{
	*impl = NULL;
	PRESSO_CHECK(W.joined && W.rank == 0 && W.size > 1);
	char identity[IDENTITY_BYTES];
	static double sim_s; /* read by rank 0's simulated workers while the pool lives */
	sim_s = simulated_trial_s();
	enum presso_status s = PRESSO_OK;
	if (sim_s >= 0)
		snprintf(identity, sizeof identity, "simulated=%s", getenv(SIMULATE_ENV));
	else if ((s = study_identity(ctx->cfg, identity, sizeof identity)) != PRESSO_OK)
		return s;
	struct mpi_pool *mp = calloc(1, sizeof *mp);
	if (!mp || !(mp->ranks = calloc((size_t)W.size, sizeof *mp->ranks))) {
		mpi_pool_free(mp);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	if (log)
		fprintf(log, "presso: waiting for %d MPI rank%s to load the study\n", W.size - 1,
			W.size == 2 ? "" : "s");
	/* every HELLO, reporting the first error after all have come */
	enum presso_status first = PRESSO_OK;
	char first_msg[1024] = "";
	for (int k = 1; k < W.size && s == PRESSO_OK; k++) {
		uint8_t *buf = NULL;
		int n = 0, src = 0, tag = 0;
		if ((s = recv_msg(MPI_ANY_SOURCE, TAG_HELLO, &buf, &n, &src, &tag)) != PRESSO_OK)
			break;
		enum presso_status hs = read_hello(mp, src, buf, n, identity);
		free(buf);
		if (hs != PRESSO_OK && first == PRESSO_OK) {
			first = hs;
			snprintf(first_msg, sizeof first_msg, "%s", status_msg());
		}
	}
	if (s == PRESSO_OK && first != PRESSO_OK)
		s = status_fail(first, "%s", first_msg);
	/* rank 0's own workers, once the others are ready: the machine is quiet
	 * while they load, and a failed start costs no threads */
	if (s == PRESSO_OK) {
		mp->local_n = mp->ranks[0].workers = workers > 0 ? workers : 1;
		char self[POOL_NAME_BYTES];
		pool_process_name(self, sizeof self);
		snprintf(mp->ranks[0].name, sizeof mp->ranks[0].name, "%.96s rank 0", self);
		s = sim_s >= 0 ? local_pool_open(simulated_eval, &sim_s, mp->local_n, &mp->local)
			      : local_pool_open(pool_eval_trial, (void *)ctx, mp->local_n, &mp->local);
	}
	for (int r = 0; s == PRESSO_OK && r < W.size; r++)
		mp->n_slots += mp->ranks[r].workers;
	if (s == PRESSO_OK) {
		size_t n = (size_t)mp->n_slots;
		mp->slot_rank = malloc(n * sizeof *mp->slot_rank);
		mp->slot_busy = calloc(n, sizeof *mp->slot_busy);
		mp->slot_tag = calloc(n, sizeof *mp->slot_tag);
		mp->slot_sent = calloc(n, sizeof *mp->slot_sent);
		if (!mp->slot_rank || !mp->slot_busy || !mp->slot_tag || !mp->slot_sent)
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	if (s != PRESSO_OK) {
		mpi_pool_free(mp);
		return s;
	}
	/* slots rank by rank, rank 0's first (local_pool tokens = slot numbers) */
	for (int r = 0, k = 0; r < W.size; r++)
		for (int i = 0; i < mp->ranks[r].workers; i++)
			mp->slot_rank[k++] = r;
	if (log) {
		fprintf(log, "presso: %d MPI ranks evaluate with %d worker%s in all", W.size,
			mp->n_slots, mp->n_slots == 1 ? "" : "s");
		for (int r = 0; r < W.size && r <= MAX_LISTED_RANKS; r++)
			fprintf(log, "%s%s: %d", r == 0 ? " (" : ", ", mp->ranks[r].name,
				mp->ranks[r].workers);
		fprintf(log, "%s\n", W.size - 1 > MAX_LISTED_RANKS ? ", ...)" : ")");
		if (sim_s >= 0)
			fprintf(log, "presso: " SIMULATE_ENV "=%g: every rank's workers sleep instead "
				     "of evaluating and make up their metrics (a benchmark of the driver)\n",
				sim_s);
	}
	mp->opened_at = pool_now_s();
	mp->mpi_at_open = W.mpi_s;
	mp->cpu_at_open = cpu_s();
	*impl = mp;
	return PRESSO_OK;
}

static int mp_size(const void *impl)
{
	return ((const struct mpi_pool *)impl)->n_slots;
}

static int mp_ranks(const void *impl)
{
	return W.size;
}

static int mp_idle(const void *impl)
{
	const struct mpi_pool *mp = impl;
	for (int w = 0; w < mp->n_slots; w++)
		if (!mp->slot_busy[w])
			return w;
	return -1;
}

static const char *mp_worker_name(const void *impl, int w)
{
	const struct mpi_pool *mp = impl;
	return mp->ranks[mp->slot_rank[w]].name;
}

static enum presso_status mp_submit(void *impl, int w, const struct pool_job *job)
{
	struct mpi_pool *mp = impl;
	PRESSO_CHECK(w >= 0 && w < mp->n_slots && !mp->slot_busy[w]);
	if (w < mp->local_n) {
		enum presso_status s = local_pool_submit(mp->local, w, job);
		if (s != PRESSO_OK)
			return s;
		mp->slot_busy[w] = true;
		mp->slot_tag[w] = job->tag;
		mp->slot_sent[w] = pool_now_s();
		mp->in_flight++;
		return PRESSO_OK;
	}
	struct wbuf b = {0};
	put_u64(&b, (uint64_t)job->tag);
	put_u32(&b, job->on_test ? 1u : 0u);
	put_u64(&b, (uint64_t)job->first_image);
	put_u64(&b, (uint64_t)job->n_images);
	put_text(&b, job->policy_json);
	enum presso_status s = send_msg(&b, mp->slot_rank[w], TAG_JOB);
	free(b.p);
	if (s != PRESSO_OK)
		return status_wrap(s, "sending a job to rank %d", mp->slot_rank[w]);
	mp->slot_busy[w] = true;
	mp->slot_tag[w] = job->tag;
	mp->slot_sent[w] = pool_now_s();
	mp->in_flight++;
	return PRESSO_OK;
}

static int mp_in_flight(const void *impl)
{
	return ((const struct mpi_pool *)impl)->in_flight;
}

/* Books a job's result in: its slot is free again. */
static void job_back(struct mpi_pool *mp, int w, double now, const struct pool_result *r)
{
	struct rank_info *ri = &mp->ranks[mp->slot_rank[w]];
	ri->jobs++;
	ri->round_trip_s += now - mp->slot_sent[w];
	ri->eval_s += r->eval_s;
	mp->slot_busy[w] = false;
	mp->in_flight--;
}

/* A result of rank 0's own workers, if one is ready (waiting at most timeout_s). */
static bool local_result(struct mpi_pool *mp, double timeout_s, struct pool_result *r)
{
	if (!mp->local || local_pool_in_flight(mp->local) == 0 ||
	    !local_pool_wait_for(mp->local, timeout_s, r))
		return false;
	int w = -1;
	for (int i = 0; i < mp->local_n && w < 0; i++)
		if (mp->slot_busy[i] && mp->slot_tag[i] == r->tag)
			w = i;
	PRESSO_CHECK(w >= 0);
	job_back(mp, w, pool_now_s(), r);
	return true;
}

/* A RESULT message from rank src, decoded into r. */
static enum presso_status remote_result(struct mpi_pool *mp, const uint8_t *buf, int n, int src,
					double now, struct pool_result *r)
{
	struct rbuf b = {buf, (size_t)n, 0, false};
	*r = (struct pool_result){0};
	uint64_t job = get_u64(&b);
	uint32_t status = get_u32(&b);
	struct trial_metrics_out *o = &r->out;
	r->eval_s = get_f64(&b);
	o->accuracy = get_f64(&b);
	o->n_correct = (int64_t)get_u64(&b);
	o->n_images = (int64_t)get_u64(&b);
	o->size_bytes = (int64_t)get_u64(&b);
	o->bops = get_f64(&b);
	o->latency_us = get_f64(&b);
	o->mean_bits = get_f64(&b);
	o->mean_prune = get_f64(&b);
	o->mean_rank = get_f64(&b);
	get_text(&b, r->error, sizeof r->error);
	int w = -1;
	for (int i = mp->local_n; i < mp->n_slots && w < 0; i++)
		if (mp->slot_busy[i] && mp->slot_rank[i] == src && (uint64_t)mp->slot_tag[i] == job)
			w = i;
	if (b.bad || w < 0 || status >= PRESSO_STATUS_COUNT)
		return status_fail(PRESSO_E_RUNTIME, "rank %d sent a malformed result", src);
	r->tag = mp->slot_tag[w];
	r->status = (enum presso_status)status;
	job_back(mp, w, now, r);
	return PRESSO_OK;
}

/* The next result, from rank 0's workers or another rank's: polls both,
 * napping in between (on rank 0's own results' condition variable while it
 * has jobs, so those are taken at once). */
static enum presso_status mp_wait(void *impl, struct pool_result *r)
{
	struct mpi_pool *mp = impl;
	double t0 = pool_now_s(), wait = NAP_MIN_S;
	enum presso_status s = PRESSO_OK;
	for (;;) {
		if (local_result(mp, 0, r))
			break;
		MPI_Status st;
		bool got = false;
		if ((s = poll_msg(MPI_ANY_SOURCE, TAG_RESULT, &got, &st)) != PRESSO_OK)
			break;
		if (got) {
			uint8_t *buf = NULL;
			int n = 0, src = 0, tag = 0;
			if ((s = recv_msg(st.MPI_SOURCE, TAG_RESULT, &buf, &n, &src, &tag)) == PRESSO_OK)
				s = remote_result(mp, buf, n, src, pool_now_s(), r);
			free(buf);
			break;
		}
		if (mp->local && local_pool_in_flight(mp->local) > 0) {
			if (local_result(mp, wait, r))
				break;
			wait = wait * 2 < NAP_MAX_S ? wait * 2 : NAP_MAX_S;
		} else {
			nap(&wait);
		}
	}
	mp->wait_s += pool_now_s() - t0;
	return s;
}

/* Where each rank's time went since the pool opened, one line per rank (the
 * first MAX_LISTED_RANKS), then the other ranks together: rank 0's workers
 * evaluating, and its driver thread waiting for results and inside MPI
 * calls; a worker rank's workers evaluating or idle (waiting for a job: the
 * driver's own work, the end of a batch, the re-check), its main thread's
 * share inside MPI calls, its CPU time, and the mean time a job spent outside
 * evaluation between rank 0 sending it and receiving its result (transit,
 * parsing, and waiting for rank 0 to look). */
static void report(const struct mpi_pool *mp, const struct bye *byes, FILE *log)
{
	double wall = pool_now_s() - mp->opened_at, lp_wall = 0, lp_busy = 0;
	local_pool_times(mp->local, &lp_wall, &lp_busy);
	const struct rank_info *r0 = &mp->ranks[0];
	fprintf(log, "presso: rank 0 (%s, the driver, %d worker%s): %lld jobs; workers evaluating "
		     "%.1f%%; the driver waiting for results %.1f%%, in MPI calls %.1f%% of %.1f s; "
		     "CPU %.2f s\n",
		r0->name, r0->workers, r0->workers == 1 ? "" : "s", (long long)r0->jobs,
		lp_wall > 0 ? 100 * lp_busy / (lp_wall * r0->workers) : 0,
		wall > 0 ? 100 * mp->wait_s / wall : 0,
		wall > 0 ? 100 * (W.mpi_s - mp->mpi_at_open) / wall : 0, wall,
		cpu_s() - mp->cpu_at_open);
	double slots = 0, busy = 0, rt = 0, ev = 0, mpi = 0, walls = 0, cpu = 0;
	int64_t jobs = 0;
	for (int r = 1; r < W.size; r++) {
		const struct bye *b = &byes[r];
		const struct rank_info *ri = &mp->ranks[r];
		double slot_s = b->wall_s * b->workers;
		slots += slot_s;
		busy += b->busy_s;
		rt += ri->round_trip_s;
		ev += ri->eval_s;
		jobs += ri->jobs;
		mpi += b->mpi_s;
		walls += b->wall_s;
		cpu += b->cpu_s;
		if (r > MAX_LISTED_RANKS)
			continue;
		fprintf(log,
			"presso: rank %d (%s, %u worker%s): %lld jobs; workers evaluating %.1f%%, "
			"idle %.1f%%; MPI calls %.1f%% of %.1f s; CPU %.2f s; %.2f ms per job in "
			"transit\n",
			r, ri->name, b->workers, b->workers == 1 ? "" : "s", (long long)ri->jobs,
			slot_s > 0 ? 100 * b->busy_s / slot_s : 0,
			slot_s > 0 ? 100 - 100 * b->busy_s / slot_s : 0,
			b->wall_s > 0 ? 100 * b->mpi_s / b->wall_s : 0, b->wall_s, b->cpu_s,
			ri->jobs ? 1e3 * (ri->round_trip_s - ri->eval_s) / (double)ri->jobs : 0);
	}
	fprintf(log,
		"presso: ranks 1..%d: %lld jobs; workers evaluating %.1f%%, idle %.1f%%; MPI "
		"calls %.1f%%; CPU %.2f s; %.2f ms per job in transit\n",
		W.size - 1, (long long)jobs, slots > 0 ? 100 * busy / slots : 0,
		slots > 0 ? 100 - 100 * busy / slots : 0, walls > 0 ? 100 * mpi / walls : 0, cpu,
		jobs ? 1e3 * (rt - ev) / (double)jobs : 0);
}

static void mp_close(void *impl, FILE *log)
{
	struct mpi_pool *mp = impl;
	struct pool_result r;
	while (mp->in_flight > 0 && mp_wait(mp, &r) == PRESSO_OK) {
	}
	struct bye *byes = calloc((size_t)W.size, sizeof *byes);
	bool ok = byes != NULL;
	for (int k = 1; byes && k < W.size; k++) {
		if (stop_rank(k, &byes[k]) != PRESSO_OK) {
			ok = false;
			if (log)
				fprintf(log, "presso: rank %d did not stop: %s\n", k, status_msg());
		}
	}
	if (ok && log)
		report(mp, byes, log);
	free(byes);
	mpi_pool_free(mp);
}

const struct pool_ops pool_mpi_ops = {
	.size = mp_size,
	.ranks = mp_ranks,
	.idle = mp_idle,
	.worker_name = mp_worker_name,
	.submit = mp_submit,
	.in_flight = mp_in_flight,
	.wait = mp_wait,
	.close = mp_close,
};
