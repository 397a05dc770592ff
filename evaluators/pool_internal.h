/* pool_internal.h - private to evaluators/pool*.c: the table of operations a
 * pool implements, the local (OpenMP) pool that pool.c implements and a
 * worker rank reuses, and the MPI pool's entry points (pool_mpi.c, compiled
 * only with -DPRESSO_MPI=ON). */
#ifndef PRESSO_POOL_INTERNAL_H
#define PRESSO_POOL_INTERNAL_H

#include "evaluators/pool.h"

struct pool_ops {
	int (*size)(const void *impl);
	int (*ranks)(const void *impl);
	int (*idle)(const void *impl);
	const char *(*worker_name)(const void *impl, int w);
	enum presso_status (*submit)(void *impl, int w, const struct pool_job *job);
	int (*in_flight)(const void *impl);
	enum presso_status (*wait)(void *impl, struct pool_result *r);
	void (*close)(void *impl, FILE *log);
};

/* Evaluates one job on the calling thread (ctx: what local_pool_open got). */
typedef enum presso_status (*pool_eval_fn)(void *ctx, const struct pool_job *job,
					   struct trial_metrics_out *out);

/* trial_evaluate() of a study_ctx: the evaluation a local pool normally runs. */
enum presso_status pool_eval_trial(void *study_ctx, const struct pool_job *job,
				   struct trial_metrics_out *out);

struct local_pool;

/* `workers` threads running eval(ctx, job) (ctx must outlive the pool). */
enum presso_status local_pool_open(pool_eval_fn eval, void *ctx, int workers,
				   struct local_pool **out);
int local_pool_size(const struct local_pool *lp);
int local_pool_idle(const struct local_pool *lp);
enum presso_status local_pool_submit(struct local_pool *lp, int w, const struct pool_job *job);
int local_pool_in_flight(const struct local_pool *lp);
/* A finished job's result (true), waiting for one at most timeout_s seconds
 * (0: not at all). */
bool local_pool_wait_for(struct local_pool *lp, double timeout_s, struct pool_result *r);
enum presso_status local_pool_wait(struct local_pool *lp, struct pool_result *r);
/* Seconds since it opened, and summed over its jobs, seconds evaluating. */
void local_pool_times(const struct local_pool *lp, double *wall_s, double *busy_s);
void local_pool_close(struct local_pool *lp);

/* "host:pid" of this process. */
void pool_process_name(char *buf, size_t cap);

/* Monotonic seconds. */
double pool_now_s(void);

#ifdef PRESSO_MPI
enum presso_status pool_mpi_world_init(struct pool_world *w);
void pool_mpi_world_finish(void);
enum presso_status pool_mpi_serve(const char *config_path, int workers);
/* Rank 0's pool in a world of 2 or more: its own `workers` threads and the
 * other ranks' workers. */
enum presso_status pool_mpi_open(const struct study_ctx *ctx, int workers, FILE *log,
				 void **impl);
extern const struct pool_ops pool_mpi_ops;
#endif

#endif
