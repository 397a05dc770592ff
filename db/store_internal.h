/* store_internal.h - private to db/: what the store's files share. Nothing
 * outside db/ includes it; callers use db/store.h.
 *
 * The store is three files around one struct store:
 *   store.c        the schema and the resume rules (its opening comment), the
 *                  statements' SQL (sql_text[]), opening and closing, the
 *                  connection, migrations, the statement helpers below and
 *                  transactions;
 *   store_trials.c studies and every change of a trial's state, search state;
 *   store_query.c  what reads them back: trials, layers, lists, --pick,
 *                  Pareto fronts, summaries.
 *
 * Statements. A fixed statement is named by an enum stmt. It is prepared on
 * first use and kept (SQLITE_PREPARE_PERSISTENT) in st->stmt[], and every use
 * is bind -> step -> reset through the helpers below, with its values bound,
 * never pasted into the SQL. A use reads as one call:
 *
 *	s = stmt_run(st, STMT_HEARTBEAT, "updating a heartbeat", "fii",
 *		     now_s(), study_id, number);
 *
 * The type string has one letter per SQL parameter, in order, naming the C
 * type of the value(s) passed for it:
 *   i  int64_t                    cast anything narrower: (int64_t)n. va_arg
 *                                 reads an int64_t, and an int passed there
 *                                 is undefined behaviour
 *   f  double                     NaN binds NULL ("not measured")
 *   t  const char *               NUL-terminated text; NULL binds NULL
 *   v  const void *, size_t, int  a value of that many bytes: TEXT when the
 *                                 int is nonzero, else a BLOB (a NULL pointer
 *                                 binds an empty one)
 *   I  const int64_t *            the integer pointed to; NULL binds NULL
 * For a fixed statement the number of letters must be its parameter count
 * (an always-on check). A value that fails to bind stops the binding, and
 * the error is reported as the step's. `what` names the action in an error
 * message: "PATH: <what>: <SQLite's message>".
 */
#ifndef PRESSO_STORE_INTERNAL_H
#define PRESSO_STORE_INTERNAL_H

#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"

/* --- statements ----------------------------------------------------------- */

enum stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_STUDY_BY_NAME,
	STMT_STUDY_BY_ID,
	STMT_STUDY_NAMES,
	STMT_STUDY_INSERT,
	STMT_STUDY_REOPEN,
	STMT_STUDY_FINISH,
	STMT_NEXT_NUMBER,
	STMT_TRIAL_INSERT,
	STMT_TRIAL_STATE,
	STMT_HEARTBEAT,
	STMT_COMPLETE,
	STMT_LAYER_INSERT,
	STMT_FAIL,
	STMT_MARK_LOST,
	STMT_REQUEUE_LIST,
	STMT_HAS_POLICY,
	STMT_HASHES,
	STMT_COUNTS,
	STMT_STATE_PUT,
	STMT_STATE_GET,
	STMT_TRIAL_GET,
	STMT_LAYERS_GET,
	STMT_BEST_ACCURACY,
	STMT_SMALLEST_NEAR_FP32,
	STMT_LAST_ACTIVITY,
	STMT_SET_TEST_ACCURACY,
	STMT_SET_RESCORED,
	STMT_SET_LATENCY,
	STMT_ABANDON,
	STMT_TUNED_INSERT,
	STMT_FINETUNE_INSERT,
	STMT_FINETUNE_GET,
	STMT_FINETUNE_MODEL,
	STMT_TUNED_PARENTS,
	STMT_COUNT
};

/* The columns of a study row (read by read_study in store_trials.c) and of a
 * trial row (read by read_trial in store_query.c), in that order. */
#define STUDY_COLS                                                                        \
	"id, name, config_json, config_sha256, model_path, model_sha256, dataset, seed, "  \
	"fp32_accuracy, fp32_test_accuracy, fp32_size_bytes, fp32_bops, fp32_latency_us, " \
	"n_classes, presso_version, status, created_at, finished_at"
#define TRIAL_COLS                                                                      \
	"number, state, accuracy, test_accuracy, size_bytes, bops, latency_us, mean_bits, " \
	"mean_prune, mean_rank, policy_json, policy_sha256, worker, started_at, "          \
	"heartbeat_at, ended_at, error, lost, parent_trial, n_images, fidelity, "           \
	"low_accuracy, low_n_images"

struct store {
	sqlite3 *db;
	char *path;
	bool readonly;
	int busy_timeout_ms;
	bool has_id;               /* file_dev/file_ino: the opened file, for writes to check */
	unsigned long long file_dev, file_ino;
	sqlite3_stmt *stmt[STMT_COUNT]; /* prepared on first use, finalized by store_close */
};

/* Runs statement id, which returns no rows: binds the values after types,
 * steps once and resets it. */
enum presso_status stmt_run(struct store *st, enum stmt id, const char *what, const char *types,
			    ...);

/* Runs statement id up to its first row: *q is the statement standing on
 * that row, for the caller to read and then stmt_next() or stmt_finish(); or
 * NULL, the statement already reset, when there is no row or on error. */
enum presso_status stmt_query(struct store *st, sqlite3_stmt **q, enum stmt id, const char *what,
			      const char *types, ...);

/* stmt_query for a statement prepared by the caller (SQL composed at run
 * time): binds the values after types to parameters 1, 2, ...; parameters
 * after those keep what the caller bound. The caller finalizes it. */
enum presso_status stmt_start(struct store *st, sqlite3_stmt **q, const char *what,
			      const char *types, ...);

/* Moves *q to its next row; at the end or on error resets it and sets *q to
 * NULL. So a loop over the rows is
 *	for (s = stmt_query(st, &q, ...); q; s = stmt_next(st, &q, what)) ...
 * and leaves s as the status and q NULL, unless it broke out early. */
enum presso_status stmt_next(struct store *st, sqlite3_stmt **q, const char *what);

/* Resets a statement left on a row (whatever happened); NULL is a no-op, so
 * it can follow any stmt_query or loop unconditionally. */
void stmt_finish(sqlite3_stmt *q);

/* BEGIN IMMEDIATE: waiting for another writer happens here, in the busy
 * handler, never as a deadlock on upgrading a read. Checks first that the
 * path still names the file that was opened (check_file in store.c). */
enum presso_status tx_begin(struct store *st);

/* Commits when s is PRESSO_OK, else rolls back keeping s and its message. */
enum presso_status tx_end(struct store *st, enum presso_status s);

/* Maps an SQLite result code to a status with a message naming the file. */
enum presso_status db_fail(const struct store *st, int rc, const char *what);

/* --- studies and trials, shared by store_trials.c and store_query.c -------- */

/* Looks a study up by name; *found false if there is none. */
enum presso_status study_by_name(struct store *st, const char *name, struct study_info *o,
				 bool *found);

/* Looks a study up by row id; a missing one is an error. */
enum presso_status study_by_id(struct store *st, int64_t id, struct study_info *o);

/* A trial state from its text in trials.state. */
enum trial_state trial_state_of(const unsigned char *text);

/* --- small helpers -------------------------------------------------------- */

static inline enum presso_status nomem(const struct store *st)
{
	return status_fail(PRESSO_E_NOMEM, "%s: out of memory", st ? st->path : "store");
}

/* A REAL column; NaN for SQL NULL. */
static inline double col_f64(sqlite3_stmt *q, int i)
{
	return sqlite3_column_type(q, i) == SQLITE_NULL ? NAN : sqlite3_column_double(q, i);
}

/* A malloc'd copy of a text column; NULL for SQL NULL. *oom set on failure. */
static inline char *col_dup(sqlite3_stmt *q, int i, bool *oom)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	if (!t)
		return NULL;
	size_t n = strlen((const char *)t) + 1;
	char *d = malloc(n);
	if (!d)
		*oom = true;
	else
		memcpy(d, t, n);
	return d;
}

#endif
