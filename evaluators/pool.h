/* pool.h - the workers that evaluate a search's policies: threads of this
 * process (OpenMP), or, in a build with -DPRESSO_MPI=ON started by an MPI
 * launcher (mpirun, srun --mpi=pmix) on more than one rank, the other ranks.
 *
 * The caller (search/driver.c) owns the order of everything: it asks which
 * worker is idle (pool_idle), hands that worker one policy (pool_submit) and
 * takes results back one at a time as they finish, in any order (pool_wait).
 * A worker holds at most one job, so work goes by demand: a fast worker comes
 * back for more sooner, a slow one is never given work it cannot start. Every
 * call is made from one thread, the caller's.
 *
 * Local pool: one OpenMP parallel region of `workers` threads, hosted by a
 * helper thread for the pool's lifetime; each evaluates one job at a time
 * with trial_evaluate() on a single thread (nested OpenMP regions inside
 * stay inactive, as in any parallel loop).
 *
 * MPI pool (pool_mpi.c, where the message format is documented): rank 0 runs
 * the caller and is the only rank that touches the database; every other rank
 * loads the study's model and data itself, from the same paths (the files
 * must be visible on every node: a shared file system or copies; rank 0 checks
 * their SHA-256 against its own), and runs a local pool of its own `workers`
 * threads (pool_serve). Policies travel as their JSON text, results as
 * explicitly serialised metrics. Rank 0's pool is its own `workers` threads
 * and every other rank's workers.
 *
 * Whatever the pool, trial_evaluate() gives the same metrics for the same
 * policy (presso's kernels are bit-identical on every path), so a caller that
 * commits results in its own order gets the same study from any pool.
 */
#ifndef PRESSO_POOL_H
#define PRESSO_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "evaluators/trial.h"

#define POOL_ERROR_BYTES 512
#define POOL_NAME_BYTES 128

struct pool;

struct pool_job {
	int64_t tag;             /* the caller's id for the job, given back with its result */
	const struct policy *p;  /* the policy (read by local workers until the result is back) */
	const char *policy_json; /* the same policy as JSON text (what travels to another rank) */
	bool on_test;            /* the test split instead of the validation split */
	int64_t first_image;     /* validation only: the images [first_image, */
	int64_t n_images;        /* first_image + n_images) (trial_evaluate_part);
				    both 0: the whole split */
};

struct pool_result {
	int64_t tag;
	enum presso_status status;      /* of trial_evaluate() */
	char error[POOL_ERROR_BYTES];   /* its message when status is not PRESSO_OK */
	struct trial_metrics_out out;   /* valid when status is PRESSO_OK */
	double eval_s;                  /* wall time of the evaluation on its worker */
};

/* --- the processes of a run ------------------------------------------------ */

struct pool_world {
	int rank;    /* 0: the driver */
	int n_ranks; /* 1 unless an MPI build was started by an MPI launcher */
};

/* Joins the MPI job when this is an MPI build started by an MPI launcher
 * (its environment has OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK): rank and
 * size from MPI. Otherwise rank 0 of 1, without touching MPI. Call it once,
 * after signals are blocked (signals.h: MPI's own threads then inherit the
 * mask) and before any pool. */
enum presso_status pool_world_init(struct pool_world *w);

/* Leaves the MPI job, if pool_world_init() joined one. On rank 0 it first
 * stops the worker ranks no pool has stopped (an error before the search
 * began), so every rank ends. No-op otherwise. */
void pool_world_finish(void);

/* A worker rank's whole life (rank > 0 of an MPI build): loads the config at
 * config_path and the study's model and data (not the FP32 baseline), tells
 * rank 0 that it is ready (or why it is not), then evaluates what rank 0
 * sends with `workers` threads until rank 0 says stop. Errors go to rank 0,
 * which reports them; the return value is for the exit status. In a build
 * without MPI: PRESSO_E_USAGE. */
enum presso_status pool_serve(const char *config_path, int workers);

/* --- a pool ------------------------------------------------------------------ */

/* Opens the pool a study's search runs on: `workers` (>= 1) threads of this
 * process on ctx, which must outlive the pool, and, when the world has more
 * than one rank, the other ranks' workers (after each has loaded the study:
 * this waits for them). Progress
 * and the ranks that joined go to log (may be NULL). Errors: a worker rank that
 * could not load the study (named by rank, host and pid), or files that differ
 * from rank 0's. Free with pool_close(). */
enum presso_status pool_open(const struct study_ctx *ctx, int workers, FILE *log,
			     struct pool **out);

/* Workers in all (at least 1). */
int pool_size(const struct pool *pl);

/* Processes of the run: 1 for a local pool; for an MPI pool, the ranks (rank 0,
 * which drives, and the worker ranks). */
int pool_ranks(const struct pool *pl);

/* An idle worker (0 .. pool_size - 1), or -1 if every worker has a job. */
int pool_idle(const struct pool *pl);

/* Who worker w is, for the trials table's `worker` column: "host:pid" for a
 * local worker, "host:pid rank R" for a worker of rank R. */
const char *pool_worker_name(const struct pool *pl, int w);

/* Gives idle worker w the job. The job's policy and text are read until its
 * result has been taken with pool_wait(). Errors: the transport failed. */
enum presso_status pool_submit(struct pool *pl, int w, const struct pool_job *job);

/* Jobs submitted and not yet returned by pool_wait(). */
int pool_in_flight(const struct pool *pl);

/* Waits for the next job to finish (there must be one in flight) and returns
 * its result; the worker is idle again. */
enum presso_status pool_wait(struct pool *pl, struct pool_result *r);

/* Stops the workers (after waiting for the jobs still in flight, whose results
 * are dropped) and frees the pool; with a log, one line per rank on where its
 * time went (evaluating, waiting for work, in MPI calls). NULL is a no-op. */
void pool_close(struct pool *pl, FILE *log);

#endif
