/* store.h - the SQLite store: studies, trials, per-layer choices, search state,
 * and the queries that read them back (pareto, pick, resume, summaries).
 *
 * One database file holds any number of studies. A study is one named search
 * (config, model, dataset, seed, FP32 baseline); a trial is one evaluated
 * policy, numbered 1, 2, 3, ... within its study without gaps. The schema and
 * the resume rules are in db/store.c and db/README.md.
 *
 * Every state change of a trial (begin, complete, fail, lost) is one
 * transaction, so a process killed at any moment leaves each trial either in
 * its previous state or in the new one. A policy is stored as its canonical
 * JSON text (cJSON_PrintUnformatted of the parsed document) with the SHA-256 of
 * that text; the store treats it as opaque otherwise.
 *
 * A struct store is one SQLite connection with its prepared statements: use it
 * from one thread at a time (open one store per thread or process; SQLite's
 * WAL mode lets them share the file). Every function reports failure through
 * enum presso_status with a message naming the database file.
 */
#ifndef PRESSO_STORE_H
#define PRESSO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/expr.h"
#include "base/sha256.h"
#include "base/pareto.h"
#include "base/status.h"

#define STORE_NAME_MAX 128         /* bytes in a study name */
#define STORE_BUSY_TIMEOUT_MS 10000 /* how long a write waits for another writer, */
#define STORE_BUSY_TIMEOUT_ENV "PRESSO_BUSY_TIMEOUT_MS" /* unless this says otherwise */
#define STORE_BUSY_TIMEOUT_MAX_MS 86400000 /* a day */
#define STORE_NEAR_FP32_POINTS 1.0 /* "within 1 point of FP32" in summaries */

/* --- what the caller hands in ----------------------------------------------- */

/* One layer's resolved choice in a trial (the policy with defaults applied). */
struct layer_choice {
	const char *layer;    /* the layer's name in the model */
	int bits;             /* weight bits, 1..32 */
	int act_bits;         /* activation bits, 1..32 */
	bool bias_correction;
	double prune;         /* fraction of weights removed, [0, 1) */
	int prune_kind;       /* 0 unstructured, 1 structured */
	double rank;          /* kept rank fraction, (0, 1] */
};

/* The metrics of a trial. accuracy, size_bytes and bops are required; the
 * others may be NAN (stored as NULL: not measured). */
struct trial_metrics {
	double accuracy;      /* percent, validation split */
	double test_accuracy; /* percent or NAN if not measured */
	int64_t size_bytes;
	double bops;
	double latency_us;
	double mean_bits;
	double mean_prune;
	double mean_rank;
	int64_t n_images;     /* validation images the accuracy was measured on;
				 0 when not known (its interval is then unknown) */
	/* multi-fidelity (schema 3; all zero for a trial without a low-fidelity
	 * pass, the zero value of the struct) */
	bool low_fidelity;    /* scored on the low-fidelity subset only (not
				 promoted): accuracy and n_images are the subset's,
				 and no front, --pick or archive takes it */
	double low_accuracy;  /* the low-fidelity pass's accuracy, percent */
	int64_t low_n_images; /* its images; 0: no low-fidelity pass */
};

/* The FP32 model's metrics: the reference for every comparison of a study. */
struct baseline {
	double accuracy;      /* percent, validation split */
	double test_accuracy; /* percent or NAN */
	int64_t size_bytes;   /* FP32 weights: the hypervolume reference for size */
	double bops;
	double latency_us;    /* or NAN */
	int n_classes;        /* chance accuracy = 100 / n_classes */
};

/* What identifies a study. Strings are copied; the caller keeps ownership. */
struct study_spec {
	const char *name;         /* 1..STORE_NAME_MAX bytes, no control characters */
	const char *config_json;  /* the study config; compared canonically on resume */
	const char *model_path;
	const char *model_sha256; /* 64 hex digits (sha256_file) */
	const char *dataset;      /* a description of the data and its splits */
	uint64_t seed;
	struct baseline baseline;
};

/* A key -> value entry of a study's search state (population, bandit, RNG). */
struct store_kv {
	const char *key;
	const void *value; /* text or bytes */
	size_t n_bytes;
	bool is_text;      /* stored as TEXT (readable in sqlite3) rather than a BLOB */
};

/* --- what comes back ------------------------------------------------------- */

enum trial_state { TRIAL_RUNNING, TRIAL_COMPLETE, TRIAL_FAILED, TRIAL_STATE_COUNT };

/* "running", "complete", "failed": also the values of trials.state. */
const char *store_trial_state_str(enum trial_state s);

struct study_info {
	int64_t id;
	char *name, *config_json, *config_sha256, *model_path, *model_sha256, *dataset;
	char *presso_version; /* the presso that created the study */
	char *status;         /* "running" or "finished" */
	uint64_t seed;
	struct baseline baseline;
	double created_at;    /* Unix seconds */
	double finished_at;   /* NAN while running */
};

/* Frees the strings of *info (not info itself); NULL is a no-op. */
void store_study_info_free(struct study_info *info);

struct store_trial {
	int64_t number;
	enum trial_state state;
	struct trial_metrics metrics; /* NAN / size_bytes -1 where not stored */
	char *policy_json;            /* canonical text */
	char policy_sha256[SHA256_HEX_BYTES];
	char *worker;
	double started_at, heartbeat_at, ended_at; /* Unix seconds; ended_at NAN if running */
	char *error;                  /* NULL unless failed */
	bool lost;                    /* failed because its worker stopped heartbeating */
	int64_t parent_trial;         /* fine-tuned from this PTQ trial; 0 for a PTQ trial */
};

/* Frees an array of n trials and their strings; NULL is a no-op. */
void store_trials_free(struct store_trial *trials, int n);

/* A policy handed back for re-evaluation after its worker was lost. */
struct store_policy {
	int64_t lost_trial; /* the trial that was lost */
	char *policy_json;
	char policy_sha256[SHA256_HEX_BYTES];
};

void store_policies_free(struct store_policy *p, int n);

/* What a resumed search needs besides the search state and the hashes. */
struct resume_info {
	int64_t next_number; /* the number the next store_begin_trial will get */
	int n_running, n_complete, n_failed, n_lost; /* PTQ trials (the search's own) */
	int n_finetuned;     /* complete fine-tuned trials */
};

/* What a fine-tune adds beside its trial row (table finetunes). Strings and
 * bytes are the caller's. */
struct finetune_record {
	int64_t parent;            /* the complete PTQ trial that was tuned */
	const char *source;        /* "search" (search.finetune_front) or "finetune" (the command) */
	const char *settings_json; /* the training settings, canonical JSON */
	int64_t steps;             /* optimizer steps taken */
	int64_t epochs;            /* epochs asked for (0 when set by steps) */
	double lr, kd_weight, temperature;
	double train_seconds, images_per_s; /* images_per_s may be NAN */
	const void *model;         /* the tuned model: a .presso file's bytes */
	size_t model_bytes;
	/* re-scored (search.rescore_images): the metrics' accuracy and n_images
	 * are over the validation split and more images; split_accuracy is the
	 * split's own, stored as valid_accuracy as store_set_rescored keeps it */
	bool rescored;
	double split_accuracy;
};

/* A fine-tuned trial's record, read back (store_get_finetune). */
struct finetune_info {
	int64_t parent;
	char *source, *settings_json;
	int64_t steps, epochs;
	double lr, kd_weight, temperature, train_seconds, images_per_s;
	char model_sha256[SHA256_HEX_BYTES];
	int64_t model_bytes;
};

/* Frees the strings of *f (not f); NULL is a no-op. */
void store_finetune_info_free(struct finetune_info *f);

/* One line of `presso studies`. */
struct study_summary {
	struct study_info info;
	int n_running, n_complete, n_failed; /* n_complete counts fine-tuned trials too */
	int n_finetuned;              /* complete fine-tuned trials */
	int64_t best_accuracy_trial;  /* 0 if no complete trial */
	double best_accuracy;         /* NAN if none */
	int64_t small_trial;          /* smallest size with accuracy >= FP32 - 1 point; 0 if none */
	int64_t small_size_bytes;     /* -1 if none */
	int n_front;                  /* accuracy/size Pareto front */
	double last_activity;         /* Unix seconds: latest start, heartbeat, end or creation */
};

void store_study_summaries_free(struct study_summary *s, int n);

/* --- objectives for Pareto queries ----------------------------------------- */

enum store_objective { OBJ_ACCURACY, OBJ_SIZE, OBJ_BOPS, OBJ_LATENCY, OBJ_COUNT };

/* "accuracy", "size", "bops", "latency". */
const char *store_objective_name(enum store_objective o);
enum pareto_dir store_objective_dir(enum store_objective o);

/* Parses "accuracy,size" (names, or size_bytes / latency_us / acc) into objs
 * (room for PARETO_MAX_OBJECTIVES), no repeats; PRESSO_E_USAGE naming the bad
 * name otherwise. */
enum presso_status store_parse_objectives(const char *list, enum store_objective *objs,
					  int *n_objs);

/* A front and its hypervolume (see store_pareto). */
struct pareto_result {
	struct store_trial *front;   /* sorted best-first by the first objective, then number */
	int n_front;
	int *n_same;                 /* [n_front] other trials with the same objective values,
					collapsed into this one (the first of them) */
	int n_collapsed;             /* their sum: trials left out of the front as duplicates */
	int n_candidates;            /* complete trials that met the constraints */
	int n_low_fidelity;          /* complete low-fidelity trials that met them, left
					out (schema 3: screens on a subset, no results) */
	bool has_hypervolume;        /* 1 to 3 objectives */
	double hypervolume;          /* in the objectives' units (percent x bytes, ...) */
	double hypervolume_ratio;    /* hypervolume / volume of the box ref..ideal (NAN if empty box) */
	double ref[PARETO_MAX_OBJECTIVES];   /* chance accuracy, FP32 size/BOPs/latency */
	double ideal[PARETO_MAX_OBJECTIVES]; /* 100 % accuracy, 0 for the others */
};

void store_pareto_result_free(struct pareto_result *r);

/* --- opening -------------------------------------------------------------- */

enum store_flags {
	STORE_READONLY = 1u << 0, /* queries only; never writes, never migrates */
	STORE_CREATE = 1u << 1,   /* create the file and the schema if missing */
};

struct store;

/* Opens (and with STORE_CREATE creates) a database, sets WAL, busy timeout,
 * foreign keys and synchronous=NORMAL, and migrates its schema forward.
 * Errors: PRESSO_E_IO (missing, unreadable, or read-only file opened for
 * writing), PRESSO_E_FORMAT (not an SQLite database, not a presso database),
 * PRESSO_E_UNSUPPORTED (schema newer than this presso, or older and opened
 * read-only), PRESSO_E_USAGE (PRESSO_BUSY_TIMEOUT_MS set to something else
 * than milliseconds in 0..STORE_BUSY_TIMEOUT_MAX_MS). The caller closes *out
 * with store_close(). */
enum presso_status store_open(const char *path, unsigned flags, struct store **out);

/* Finalizes the statements and closes the connection; NULL is a no-op. */
void store_close(struct store *st);

/* The schema version this presso writes (the highest migration in db/schema.sql). */
int store_schema_version(void);

/* The file name given to store_open. */
const char *store_path(const struct store *st);

/* --- studies -------------------------------------------------------------- */

/* Canonical text (malloc'd, may be NULL if not wanted) and SHA-256 of a JSON
 * document; PRESSO_E_CONFIG if it does not parse. */
enum presso_status store_canonical_json(const char *json, char **canonical,
					char hash[SHA256_HEX_BYTES]);

/* Opens a study for searching, in one transaction:
 *  - no study of that name: creates it (*resumed = false);
 *  - same name, same canonical config, model digest, dataset and seed:
 *    resumes it (status back to running, *resumed = true);
 *  - same name, anything different: PRESSO_E_CONFIG naming the first
 *    difference, unless new_study;
 *  - new_study: always creates a new study; when the name is taken it gets
 *    the first free "NAME-2", "NAME-3", ... (the caller reports the name).
 * Writes the study's id and (if name_out is not NULL) its actual name. */
enum presso_status store_create_or_resume_study(struct store *st, const struct study_spec *spec,
						bool new_study, int64_t *study_id, bool *resumed,
						char name_out[STORE_NAME_MAX + 1]);

/* Reads a study by name. A missing study is PRESSO_E_USAGE listing the
 * studies there are. Free *out with store_study_info_free(). */
enum presso_status store_find_study(struct store *st, const char *name, struct study_info *out);

/* Marks a study finished (a later resume marks it running again). */
enum presso_status store_finish_study(struct store *st, int64_t study_id);

/* Every study with its trial counts, best results and front size, oldest
 * first. Free with store_study_summaries_free(). */
enum presso_status store_list_studies(struct store *st, struct study_summary **out, int *n);

/* --- trials --------------------------------------------------------------- */

/* Starts a trial: state running, heartbeat now, number = the study's highest
 * number + 1 (so numbers have no gaps and never repeat). The policy is stored
 * as its canonical text. policy_hash is the policy's identity in the study:
 * NULL for the SHA-256 of that text; the search gives the SHA-256 of the
 * canonical form of the model the policy makes (transform_canonical), so
 * that two texts that make one model share it (64 lowercase hex digits, else
 * PRESSO_E_RUNTIME). worker identifies the process/thread evaluating it (may
 * be NULL). */
enum presso_status store_begin_trial(struct store *st, int64_t study_id, const char *policy_json,
				     const char *policy_hash, const char *worker,
				     int64_t *number);

/* Refreshes a running trial's heartbeat. PRESSO_E_RUNTIME if it is no longer
 * running (e.g. a resume declared its worker lost). */
enum presso_status store_heartbeat(struct store *st, int64_t study_id, int64_t number);

/* Running -> complete with its metrics, its n_layers per-layer choices and,
 * optionally, n_state search-state entries, all in one transaction. Metrics
 * and layers are checked first (PRESSO_E_CONFIG naming the bad value); a trial
 * that is not running is PRESSO_E_RUNTIME and nothing is written. */
enum presso_status store_complete_trial(struct store *st, int64_t study_id, int64_t number,
					const struct trial_metrics *m,
					const struct layer_choice *layers, int n_layers,
					const struct store_kv *state, int n_state);

/* Running -> failed with a message (the evaluator's error). */
enum presso_status store_fail_trial(struct store *st, int64_t study_id, int64_t number,
				    const char *error);

/* For a resume: marks every running trial whose heartbeat is stale_after_s or
 * more seconds old as failed and lost ("worker lost: ..."), then returns the
 * policies to evaluate again: those of lost trials that no later trial of the
 * study has taken up (so a policy lost twice is returned once, and one lost
 * before an earlier resume but never re-run is returned again). *n_marked
 * (may be NULL) counts the trials marked now. Free with store_policies_free(). */
enum presso_status store_requeue_stale(struct store *st, int64_t study_id, double stale_after_s,
				       int *n_marked, struct store_policy **policies,
				       int *n_policies);

/* True if the policy has been or is being evaluated in the study: a trial
 * with that hash exists that is not a lost one. */
enum presso_status store_has_policy(struct store *st, int64_t study_id, const char *policy_hash,
				    bool *found);

/* Every distinct hash store_has_policy answers true for (malloc'd array of n). */
enum presso_status store_policy_hashes(struct store *st, int64_t study_id,
				       char (**hashes)[SHA256_HEX_BYTES], int *n);

/* Next number and trial counts by state. */
enum presso_status store_resume_info(struct store *st, int64_t study_id, struct resume_info *out);

/* Writes search-state entries in one transaction (replacing same keys). */
enum presso_status store_put_state(struct store *st, int64_t study_id, const struct store_kv *kv,
				   int n);

/* Reads one entry: *value is malloc'd with a NUL after its n_bytes (so text
 * can be used as a C string); *found false (and *value NULL) if absent. */
enum presso_status store_get_state(struct store *st, int64_t study_id, const char *key,
				   void **value, size_t *n_bytes, bool *found);

/* One trial; PRESSO_E_USAGE if the study has no such number. Free with
 * store_trials_free(out, 1). */
enum presso_status store_get_trial(struct store *st, int64_t study_id, int64_t number,
				   struct store_trial **out);

/* The per-layer choices of a trial in model order, in one allocation (the
 * names point inside it): free(*layers) frees all. */
enum presso_status store_get_layers(struct store *st, int64_t study_id, int64_t number,
				    struct layer_choice **layers, int *n);

/* Trials of a study in number order: all, or only complete ones, optionally
 * restricted by a --where expression. Free with store_trials_free(). */
enum presso_status store_list_trials(struct store *st, int64_t study_id, bool complete_only,
				     const struct expr *where, struct store_trial **out, int *n);

/* The Pareto front of the study's complete trials over n_objs objectives
 * (constraints from `where` applied first; trials missing an objective's
 * value are left out), and its hypervolume against the reference point
 * ref = (chance accuracy = 100 / n_classes, FP32 size, FP32 BOPs, FP32
 * latency) for the chosen objectives. Trials with the same objective values
 * are one point: the first (lowest number) stands for them, n_same says how
 * many more there are. Free with store_pareto_result_free(). */
enum presso_status store_pareto(struct store *st, int64_t study_id,
				const enum store_objective *objs, int n_objs,
				const struct expr *where, struct pareto_result *out);

/* The complete trial a --pick chooses: best value of the metric among the
 * trials that meet its where clause; ties go to the best by the other
 * objectives in turn (accuracy, size, BOPs, latency: so the trial picked is
 * dominated by none of those it tied with), then to the lowest number.
 * *found false if none matches. */
enum presso_status store_pick(struct store *st, int64_t study_id, const struct expr_pick *pick,
			      int64_t *number, bool *found);

/* Fills the metric values an expression reads (enum expr_metric order) for a
 * trial, so search code can test constraints with expr_eval() exactly as the
 * SQL queries do (`tuned` is 0: the search tests its own PTQ trials). */
void store_expr_values(const struct trial_metrics *m, const struct baseline *b, int64_t number,
		       double values[EXPR_METRIC_COUNT]);

/* --- fine-tuned trials ----------------------------------------------------- */

/* Adds a fine-tuned result of PTQ trial f->parent as a trial of its own, in
 * one transaction: a complete row with the parent's policy, the next number,
 * parent_trial = f->parent and the metrics m (checked as a completion checks
 * them; valid_accuracy the split's own when f->rescored), its n_layers
 * choices, and its finetunes row (settings, timings, the model's bytes and
 * their SHA-256). The parent must be a complete PTQ trial
 * of the study (PRESSO_E_USAGE naming it otherwise); nothing is written on any
 * error. *number gets the new trial's number. */
enum presso_status store_add_finetuned(struct store *st, int64_t study_id,
				       const struct finetune_record *f,
				       const struct trial_metrics *m,
				       const struct layer_choice *layers, int n_layers,
				       const char *worker, int64_t *number);

/* The fine-tune record of trial `number`; *found false when it is not a
 * fine-tuned trial. Free with store_finetune_info_free(). */
enum presso_status store_get_finetune(struct store *st, int64_t study_id, int64_t number,
				      struct finetune_info *out, bool *found);

/* The stored tuned model (.presso bytes) of fine-tuned trial `number`:
 * *bytes malloc'd (the caller frees it); PRESSO_E_USAGE if the trial is not a
 * fine-tuned one. */
enum presso_status store_get_finetune_model(struct store *st, int64_t study_id, int64_t number,
					    void **bytes, size_t *n_bytes);

/* The PTQ trials that have a complete fine-tuned trial, ascending (malloc'd
 * array of n; NULL when n is 0). */
enum presso_status store_finetuned_parents(struct store *st, int64_t study_id, int64_t **parents,
					   int *n);

/* --- after a search ------------------------------------------------------- */

/* Stores the test-split accuracy (percent) of a complete trial (the search's
 * final re-check of its front). PRESSO_E_RUNTIME if the trial is not complete. */
enum presso_status store_set_test_accuracy(struct store *st, int64_t study_id, int64_t number,
					   double test_accuracy);

/* Replaces a complete full-fidelity trial's validation accuracy by one
 * measured on more images (search.rescore_images: the split and the images
 * after it), with their count; the first re-score keeps the split's own in
 * valid_accuracy. One statement. PRESSO_E_RUNTIME if the trial is not such a
 * trial. */
enum presso_status store_set_rescored(struct store *st, int64_t study_id, int64_t number,
				      double accuracy, int64_t n_images);

/* Stores a measured latency per image (microseconds) for a complete trial,
 * replacing what was there (the search's estimate). */
enum presso_status store_set_latency(struct store *st, int64_t study_id, int64_t number,
				     double latency_us);

/* Marks every running trial of the study failed and lost with `reason`, in one
 * statement: a search that was interrupted before (or while) evaluating them
 * hands their policies back to the next resume (store_requeue_stale). Only for
 * the process that owns the study's running trials. *n_marked may be NULL. */
enum presso_status store_abandon_trials(struct store *st, int64_t study_id, const char *reason,
					int *n_marked);

#endif
