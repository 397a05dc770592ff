/* driver.h - the search loop: a study's budget, batches of candidates
 * evaluated in parallel, every result committed to the store with the
 * strategy's state, signals, progress, resume, and the final re-check of the
 * front on the test split. search/README.md describes the whole search.
 *
 * Reproducibility: candidates are generated on the driver from the study's
 * seeded RNG, a batch at a time; trials are numbered in candidate order and
 * their results fed back in that order, so the same seed and batch size give
 * the same trials, whatever the number of workers and of MPI ranks they run
 * on (the batch is max(search.batch, workers), workers counted on every rank).
 *
 * Test hook: with PRESSO_TEST_INTERRUPT=WHERE:K:SIGNAL in the environment
 * (WHERE begin, commit, batch, recheck or finetune; SIGNAL INT, TERM or KILL) the run
 * sends its own process SIGNAL right after the K-th such event, so tests can
 * stop or kill a search at an exact point (search/driver.c says where each
 * event is). A malformed value is PRESSO_E_USAGE.
 */
#ifndef PRESSO_DRIVER_H
#define PRESSO_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "db/store.h"
#include "search/signals.h"
#include "search/space.h"

struct qmodel;

#define DRIVER_DEFAULT_TRIALS 100 /* budget when neither --max-trials nor search.max_trials */

struct driver_opts {
	const struct config *cfg;
	const char *db_path;
	const char *study;       /* NULL: the config's name */
	bool new_study;          /* always a new study (NAME-2, NAME-3, ... if the name is taken) */
	bool resume;             /* continue the study of that name (or start it) */
	int workers;             /* >= 1; with MPI ranks, each worker rank's own (pool.h) */
	int64_t max_trials;      /* the study's budget; 0: search.max_trials, else the default */
	double time_limit_s;     /* for this run; 0: search.time_limit, else none */
	bool quiet;              /* no progress line */
	FILE *log;               /* notices and progress (stderr); NULL: silent */
	atomic_int *stop;        /* may be NULL; non-zero: finish the trials in flight and stop */
	struct signals *signals; /* may be NULL; gets the second interrupt's abandon action */
	/* writes a quantized model as a .presso file's bytes (malloc'd) for the
	 * store: needed by search.finetune_front (src/format's presso_file_encode;
	 * the search does not use src/format itself) */
	enum presso_status (*encode_model)(const struct qmodel *m, uint8_t **bytes, size_t *n);
};

enum driver_end {
	DRIVER_END_BUDGET,      /* the study has its max_trials trials */
	DRIVER_END_TIME,        /* this run's time limit */
	DRIVER_END_INTERRUPTED, /* a stop request (SIGINT/SIGTERM) */
	DRIVER_END_EXHAUSTED,   /* every policy of the space has been evaluated */
	DRIVER_END_COUNT
};

/* "trial budget reached", "time limit reached", ... */
const char *driver_end_str(enum driver_end e);

struct driver_trial {
	int64_t number;
	struct trial_metrics m;    /* test_accuracy / latency_us as re-checked */
	int n_same;                /* other trials with the same objective values (not listed) */
	double latency_estimate_us; /* from the latency table, NAN without one */
};

struct driver_result {
	char study[STORE_NAME_MAX + 1];
	bool resumed;
	enum driver_end end;
	int workers, batch;            /* workers in all (on every rank) */
	int ranks;                     /* processes: 1, or the MPI ranks (rank 0 drives, the others evaluate) */
	enum strategy_kind strategy;
	int n_layers;
	double space_size;
	int n_obj;
	enum store_objective obj[SPACE_MAX_OBJECTIVES];
	struct baseline base;
	int64_t budget, done;          /* trials that count (complete + failed) in the study */
	int n_complete_run, n_failed_run, n_requeued;
	int64_t fidelity_images;       /* search.fidelity's subset (0: single fidelity) */
	int64_t valid_images;          /* the validation split */
	int n_screened_run;            /* complete at low fidelity only (this run) */
	int n_promoted_run;            /* complete on the whole split after a low-fidelity pass */
	int n_rescored_run;            /* front trials re-scored on more images (search.rescore_images) */
	double seconds;                /* wall time of this run's search loop */
	double eval_seconds;           /* summed wall time inside trial_evaluate */
	double driver_cpu_s;           /* CPU time of the driver's own thread in the loop */
	struct driver_trial *front;    /* best first by accuracy; identical points once */
	int n_front;
	int n_front_same;              /* trials left out of front[] as duplicates of a member */
	bool constrained;              /* the front is of the trials meeting the constraints */
	bool front_rechecked;          /* test accuracy and latency measured */
	double hypervolume, hv_ratio;
	bool has_best;
	struct driver_trial best;      /* archive_best(): the best under the constraints */
	const char *best_rule;         /* how it was chosen, e.g. "most accurate under the constraints" */
	double confidence;             /* constraints.confidence the best meets, NAN if none */
	char last_error[512];          /* the last failed trial's error, "" if none */
	int n_finetuned_run;           /* front trials fine-tuned by this run (search.finetune_front) */
	int n_finetune_todo;           /* fine-tunes a stop request or the time limit left
					  for --resume */
	bool has_best_tuned;           /* a trial fine-tuned by this run meets the constraints */
	struct driver_trial best_tuned; /* the smallest such (ties: more accurate) */
	int64_t best_tuned_parent;     /* the PTQ trial it was tuned from */
	double finetune_reach;         /* search.finetune_reach */
};

/* The description of a config's data and splits a study stores (studies.dataset)
 * and compares on resume; malloc'd, NULL when out of memory. */
char *driver_dataset_text(const struct config *cfg);

/* Runs (or resumes) a study's search to its end. On PRESSO_OK, *r says how it
 * ended (free with driver_result_free()); an interrupted search is PRESSO_OK
 * with end DRIVER_END_INTERRUPTED. Errors: the config's space (PRESSO_E_CONFIG
 * naming the field), the store, the model or data, or every trial failing. */
enum presso_status driver_run(const struct driver_opts *o, struct driver_result *r);

void driver_result_free(struct driver_result *r);

#endif
