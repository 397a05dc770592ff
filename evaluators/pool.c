/* pool.c - the pool interface, and the local pool: threads of this process
 * (see pool.h).
 *
 * The local pool is one OpenMP parallel region of n_workers threads, opened
 * by a helper thread (`host`) for the pool's lifetime, so the caller's thread
 * stays free to hand out work and commit results. The threads share two
 * rings guarded by one mutex: jobs waiting for a thread and results waiting
 * for the caller, each at most n_workers long because a worker index (a
 * token, pool_idle) is given at most one job at a time. A thread takes the
 * oldest job, evaluates it with the mutex released, and queues its result.
 * Closing lets the threads finish what is queued, then ends the region.
 *
 * The helper thread and the OpenMP threads it starts inherit the caller's
 * signal mask (signals.h blocks SIGINT/SIGTERM before any thread exists), so
 * signals keep going to the search's sigwait thread.
 */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/pool_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pool {
	const struct pool_ops *ops;
	void *impl;
};

double pool_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pool_process_name(char *buf, size_t cap)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(buf, cap, "%.64s:%ld", host, (long)getpid());
}

enum presso_status pool_eval_trial(void *study_ctx, const struct pool_job *job,
				   struct trial_metrics_out *out)
{
	if (!job->on_test && (job->first_image > 0 || job->n_images > 0))
		return trial_evaluate_part(study_ctx, job->p, job->first_image, job->n_images, out);
	return trial_evaluate(study_ctx, job->p, job->on_test, false, 0, out);
}

/* --- the local pool ------------------------------------------------------------ */

struct queued {
	struct pool_job job;
	int w;
};

struct local_pool {
	pool_eval_fn eval;
	void *ctx;
	int n_workers;
	char name[POOL_NAME_BYTES];
	double opened_at;
	pthread_t host;
	bool host_started;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	/* under lock */
	struct queued *jobs;       /* ring of n_workers */
	int job_head, n_jobs;
	struct pool_result *results; /* ring of n_workers */
	int *result_w;
	int res_head, n_results;
	bool *busy;                /* per worker index: a job given, its result not taken */
	int in_flight;
	bool closing;
	double busy_s;
};

static void worker_loop(struct local_pool *lp)
{
	for (;;) {
		pthread_mutex_lock(&lp->lock);
		while (lp->n_jobs == 0 && !lp->closing)
			pthread_cond_wait(&lp->work, &lp->lock);
		if (lp->n_jobs == 0) {
			pthread_mutex_unlock(&lp->lock);
			return;
		}
		struct queued q = lp->jobs[lp->job_head];
		lp->job_head = (lp->job_head + 1) % lp->n_workers;
		lp->n_jobs--;
		pthread_mutex_unlock(&lp->lock);

		struct pool_result r = {.tag = q.job.tag};
		double t0 = pool_now_s();
		status_clear();
		r.status = lp->eval(lp->ctx, &q.job, &r.out);
		r.eval_s = pool_now_s() - t0;
		if (r.status != PRESSO_OK)
			snprintf(r.error, sizeof r.error, "%s",
				 *status_msg() ? status_msg() : status_str(r.status));

		pthread_mutex_lock(&lp->lock);
		int at = (lp->res_head + lp->n_results) % lp->n_workers;
		lp->results[at] = r;
		lp->result_w[at] = q.w;
		lp->n_results++;
		lp->busy_s += r.eval_s;
		pthread_cond_signal(&lp->done);
		pthread_mutex_unlock(&lp->lock);
	}
}

static void *host_main(void *arg)
{
	struct local_pool *lp = arg;
#pragma omp parallel num_threads(lp->n_workers)
	worker_loop(lp);
	return NULL;
}

void local_pool_close(struct local_pool *lp)
{
	if (!lp)
		return;
	if (lp->host_started) {
		pthread_mutex_lock(&lp->lock);
		lp->closing = true;
		pthread_cond_broadcast(&lp->work);
		pthread_mutex_unlock(&lp->lock);
		pthread_join(lp->host, NULL);
	}
	pthread_cond_destroy(&lp->work);
	pthread_cond_destroy(&lp->done);
	pthread_mutex_destroy(&lp->lock);
	free(lp->jobs);
	free(lp->results);
	free(lp->result_w);
	free(lp->busy);
	free(lp);
}

enum presso_status local_pool_open(pool_eval_fn eval, void *ctx, int workers,
				   struct local_pool **out)
{
	*out = NULL;
	PRESSO_CHECK(workers >= 1);
	struct local_pool *lp = calloc(1, sizeof *lp);
	if (!lp)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	lp->eval = eval;
	lp->ctx = ctx;
	lp->n_workers = workers;
	lp->opened_at = pool_now_s();
	pool_process_name(lp->name, sizeof lp->name);
	pthread_mutex_init(&lp->lock, NULL);
	pthread_cond_init(&lp->work, NULL);
	pthread_cond_init(&lp->done, NULL);
	lp->jobs = calloc((size_t)workers, sizeof *lp->jobs);
	lp->results = calloc((size_t)workers, sizeof *lp->results);
	lp->result_w = calloc((size_t)workers, sizeof *lp->result_w);
	lp->busy = calloc((size_t)workers, sizeof *lp->busy);
	if (!lp->jobs || !lp->results || !lp->result_w || !lp->busy) {
		local_pool_close(lp);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	int rc = pthread_create(&lp->host, NULL, host_main, lp);
	if (rc != 0) {
		local_pool_close(lp);
		/* EAGAIN: no memory (or no thread) for the stack and thread state */
		if (rc == EAGAIN || rc == ENOMEM)
			return status_fail(PRESSO_E_NOMEM,
					   "cannot start the worker threads: out of memory (%s)",
					   strerror(rc));
		return status_fail(PRESSO_E_RUNTIME, "cannot start the worker threads: %s",
				   strerror(rc));
	}
	lp->host_started = true;
	*out = lp;
	return PRESSO_OK;
}

int local_pool_size(const struct local_pool *lp)
{
	return lp->n_workers;
}

int local_pool_idle(const struct local_pool *lp)
{
	/* busy[] changes only on the caller's thread (submit, wait) */
	for (int w = 0; w < lp->n_workers; w++)
		if (!lp->busy[w])
			return w;
	return -1;
}

int local_pool_in_flight(const struct local_pool *lp)
{
	return lp->in_flight;
}

enum presso_status local_pool_submit(struct local_pool *lp, int w, const struct pool_job *job)
{
	PRESSO_CHECK(w >= 0 && w < lp->n_workers && !lp->busy[w]);
	lp->busy[w] = true;
	lp->in_flight++;
	pthread_mutex_lock(&lp->lock);
	lp->jobs[(lp->job_head + lp->n_jobs) % lp->n_workers] = (struct queued){*job, w};
	lp->n_jobs++;
	pthread_cond_signal(&lp->work);
	pthread_mutex_unlock(&lp->lock);
	return PRESSO_OK;
}

/* Takes the oldest result. Under the lock, with one there. */
static void take_result(struct local_pool *lp, struct pool_result *r)
{
	*r = lp->results[lp->res_head];
	lp->busy[lp->result_w[lp->res_head]] = false;
	lp->res_head = (lp->res_head + 1) % lp->n_workers;
	lp->n_results--;
	lp->in_flight--;
}

bool local_pool_wait_for(struct local_pool *lp, double timeout_s, struct pool_result *r)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
	double frac = (double)until.tv_nsec * 1e-9 + (timeout_s > 0 ? timeout_s : 0);
	until.tv_sec += (time_t)frac;
	until.tv_nsec = (long)((frac - floor(frac)) * 1e9);
	pthread_mutex_lock(&lp->lock);
	while (lp->n_results == 0 && timeout_s > 0 &&
	       pthread_cond_timedwait(&lp->done, &lp->lock, &until) == 0) {
	}
	bool got = lp->n_results > 0;
	if (got)
		take_result(lp, r);
	pthread_mutex_unlock(&lp->lock);
	return got;
}

enum presso_status local_pool_wait(struct local_pool *lp, struct pool_result *r)
{
	PRESSO_CHECK(lp->in_flight > 0);
	pthread_mutex_lock(&lp->lock);
	while (lp->n_results == 0)
		pthread_cond_wait(&lp->done, &lp->lock);
	take_result(lp, r);
	pthread_mutex_unlock(&lp->lock);
	return PRESSO_OK;
}

void local_pool_times(const struct local_pool *lp, double *wall_s, double *busy_s)
{
	pthread_mutex_lock((pthread_mutex_t *)&lp->lock);
	*busy_s = lp->busy_s;
	pthread_mutex_unlock((pthread_mutex_t *)&lp->lock);
	*wall_s = pool_now_s() - lp->opened_at;
}

/* The local pool behind the pool interface. */

static int lp_size(const void *impl)
{
	return local_pool_size(impl);
}

static int lp_ranks(const void *impl)
{
	return 1;
}

static int lp_idle(const void *impl)
{
	return local_pool_idle(impl);
}

static const char *lp_worker_name(const void *impl, int w)
{
	return ((const struct local_pool *)impl)->name;
}

static enum presso_status lp_submit(void *impl, int w, const struct pool_job *job)
{
	return local_pool_submit(impl, w, job);
}

static int lp_in_flight(const void *impl)
{
	return local_pool_in_flight(impl);
}

static enum presso_status lp_wait(void *impl, struct pool_result *r)
{
	return local_pool_wait(impl, r);
}

static void lp_close(void *impl, FILE *log)
{
	struct local_pool *lp = impl;
	struct pool_result r;
	while (local_pool_in_flight(lp) > 0)
		local_pool_wait(lp, &r);
	local_pool_close(lp);
}

static const struct pool_ops local_ops = {
	.size = lp_size,
	.ranks = lp_ranks,
	.idle = lp_idle,
	.worker_name = lp_worker_name,
	.submit = lp_submit,
	.in_flight = lp_in_flight,
	.wait = lp_wait,
	.close = lp_close,
};

/* --- the interface ------------------------------------------------------------- */

#ifdef PRESSO_MPI
static int world_size = 1;

enum presso_status pool_world_init(struct pool_world *w)
{
	enum presso_status s = pool_mpi_world_init(w);
	world_size = s == PRESSO_OK ? w->n_ranks : 1;
	return s;
}

void pool_world_finish(void)
{
	pool_mpi_world_finish();
}

enum presso_status pool_serve(const char *config_path, int workers)
{
	return pool_mpi_serve(config_path, workers);
}
#else
enum presso_status pool_world_init(struct pool_world *w)
{
	*w = (struct pool_world){0, 1};
	/* N copies of a build without MPI would all drive the same study */
	const char *size = getenv("OMPI_COMM_WORLD_SIZE");
	if (size && strtol(size, NULL, 10) > 1)
		return status_fail(PRESSO_E_USAGE,
				   "started by mpirun on %s ranks, but this presso was built without "
				   "MPI (cmake -DPRESSO_MPI=ON)",
				   size);
	return PRESSO_OK;
}

void pool_world_finish(void)
{
}

enum presso_status pool_serve(const char *config_path, int workers)
{
	return status_fail(PRESSO_E_USAGE, "this presso was built without MPI (-DPRESSO_MPI=ON)");
}
#endif

enum presso_status pool_open(const struct study_ctx *ctx, int workers, FILE *log,
			     struct pool **out)
{
	*out = NULL;
	struct pool *pl = calloc(1, sizeof *pl);
	if (!pl)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status s;
#ifdef PRESSO_MPI
	if (world_size > 1) {
		pl->ops = &pool_mpi_ops;
		s = pool_mpi_open(ctx, workers, log, &pl->impl);
	} else
#endif
	{
		pl->ops = &local_ops;
		struct local_pool *lp = NULL;
		s = local_pool_open(pool_eval_trial, (void *)ctx, workers > 0 ? workers : 1, &lp);
		pl->impl = lp;
	}
	if (s != PRESSO_OK) {
		free(pl);
		return s;
	}
	*out = pl;
	return PRESSO_OK;
}

int pool_size(const struct pool *pl)
{
	return pl->ops->size(pl->impl);
}

int pool_ranks(const struct pool *pl)
{
	return pl->ops->ranks(pl->impl);
}

int pool_idle(const struct pool *pl)
{
	return pl->ops->idle(pl->impl);
}

const char *pool_worker_name(const struct pool *pl, int w)
{
	return pl->ops->worker_name(pl->impl, w);
}

enum presso_status pool_submit(struct pool *pl, int w, const struct pool_job *job)
{
	return pl->ops->submit(pl->impl, w, job);
}

int pool_in_flight(const struct pool *pl)
{
	return pl->ops->in_flight(pl->impl);
}

enum presso_status pool_wait(struct pool *pl, struct pool_result *r)
{
	PRESSO_CHECK(pool_in_flight(pl) > 0);
	return pl->ops->wait(pl->impl, r);
}

void pool_close(struct pool *pl, FILE *log)
{
	if (!pl)
		return;
	pl->ops->close(pl->impl, log);
	free(pl);
}
