/* store.c - the SQLite store (API in store.h, tables in db/schema.sql, every
 * column documented in db/README.md).
 *
 * Schema: studies (one row per named search, with its config, model digest,
 * dataset, seed and FP32 baseline), trials (one row per evaluated policy:
 * state, policy text and hash, metrics, worker, heartbeat, times, error),
 * trial_layers (per-layer choices of a completed trial), search_state (a
 * key -> value table per study for what a strategy needs to resume), and the
 * views v_trials / v_trial_layers for people and for --where expressions.
 * The schema is db/schema.sql, embedded at build time (db_schema_sql) and
 * applied as forward migrations: `-- @migration N` sections, each in one
 * transaction that ends with PRAGMA user_version = N.
 *
 * File: a new database is built in a temporary file beside it and linked into
 * place when complete, so the path never names a half-made database.
 *
 * Connection: WAL (readers never block the writer and see only committed
 * transactions), busy_timeout STORE_BUSY_TIMEOUT_MS, foreign_keys ON,
 * synchronous NORMAL (a commit survives the process being killed; after a
 * power cut the last commits may roll back, never corrupt the file). Write
 * transactions start with BEGIN IMMEDIATE so waiting happens up front in the
 * busy handler, never as a deadlock on upgrade.
 *
 * Statements: the fixed ones are prepared once, on first use, and kept in
 * st->stmt[] (sql_text[] below); every use is bind -> step -> reset, through
 * stmt_run() / stmt_query() and a type string for the values. The only
 * SQL composed at run time appends an expression's fragment (whitelisted
 * column names, operators and `?`, see expr.h) to a constant prefix; its
 * values are bound like every other value. Nothing from a user is pasted.
 *
 * Resume rules:
 *  - a trial number is max(number) + 1 within the study, taken inside the
 *    transaction that inserts it: no gaps, no repeats, across any crash;
 *  - a trial left running by a dead process (heartbeat older than the
 *    caller's threshold) becomes failed with lost = 1 on resume, and its
 *    policy is handed back until a later trial with the same hash exists;
 *  - a policy counts as evaluated (store_has_policy) if some trial with its
 *    hash is running, complete, or failed for a reason other than being lost;
 *  - search_state entries written with a trial's completion are in the same
 *    transaction, so the state always matches the trials that are complete.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* db/schema.sql, generated into the build folder by db/embed_schema.cmake. */
extern const unsigned char db_schema_sql[];
extern const size_t db_schema_sql_bytes;

#define APPLICATION_ID 1886548851 /* 0x70727373 'prss', set by migration 1 */
#define MIGRATION_MARK "-- @migration "

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
	STMT_SET_LATENCY,
	STMT_ABANDON,
	STMT_COUNT
};

#define STUDY_COLS                                                                        \
	"id, name, config_json, config_sha256, model_path, model_sha256, dataset, seed, "  \
	"fp32_accuracy, fp32_test_accuracy, fp32_size_bytes, fp32_bops, fp32_latency_us, " \
	"n_classes, presso_version, status, created_at, finished_at"
#define TRIAL_COLS                                                                      \
	"number, state, accuracy, test_accuracy, size_bytes, bops, latency_us, mean_bits, " \
	"mean_prune, mean_rank, policy_json, policy_sha256, worker, started_at, "          \
	"heartbeat_at, ended_at, error, lost"
/* a lost trial: failed because its worker stopped heartbeating */
#define NOT_LOST "NOT (state = 'failed' AND lost = 1)"

static const char *const sql_text[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_STUDY_BY_NAME] = "SELECT " STUDY_COLS " FROM studies WHERE name = ?",
	[STMT_STUDY_BY_ID] = "SELECT " STUDY_COLS " FROM studies WHERE id = ?",
	[STMT_STUDY_NAMES] = "SELECT name FROM studies ORDER BY created_at, id",
	[STMT_STUDY_INSERT] =
		"INSERT INTO studies (name, config_json, config_sha256, model_path, model_sha256, "
		"dataset, seed, fp32_accuracy, fp32_test_accuracy, fp32_size_bytes, fp32_bops, "
		"fp32_latency_us, n_classes, presso_version, status, created_at) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
	[STMT_STUDY_REOPEN] =
		"UPDATE studies SET status = 'running', finished_at = NULL WHERE id = ?",
	[STMT_STUDY_FINISH] =
		"UPDATE studies SET status = 'finished', finished_at = ? WHERE id = ?",
	[STMT_NEXT_NUMBER] = "SELECT coalesce(max(number), 0) + 1 FROM trials WHERE study_id = ?",
	[STMT_TRIAL_INSERT] =
		"INSERT INTO trials (study_id, number, state, policy_json, policy_sha256, worker, "
		"started_at, heartbeat_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
	[STMT_TRIAL_STATE] = "SELECT id, state, error FROM trials WHERE study_id = ? AND number = ?",
	[STMT_HEARTBEAT] = "UPDATE trials SET heartbeat_at = ? "
			   "WHERE study_id = ? AND number = ? AND state = 'running'",
	[STMT_COMPLETE] =
		"UPDATE trials SET state = 'complete', ended_at = ?, heartbeat_at = ?, "
		"accuracy = ?, test_accuracy = ?, size_bytes = ?, bops = ?, latency_us = ?, "
		"mean_bits = ?, mean_prune = ?, mean_rank = ? WHERE id = ? AND state = 'running'",
	[STMT_LAYER_INSERT] =
		"INSERT INTO trial_layers (trial_id, idx, layer, bits, act_bits, bias_correction, "
		"prune, prune_kind, rank) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[STMT_FAIL] = "UPDATE trials SET state = 'failed', ended_at = ?, error = ?, lost = 0 "
		      "WHERE id = ? AND state = 'running'",
	[STMT_MARK_LOST] = "UPDATE trials SET state = 'failed', lost = 1, ended_at = ?, error = ? "
			   "WHERE study_id = ? AND state = 'running' AND heartbeat_at <= ?",
	[STMT_REQUEUE_LIST] =
		"SELECT t.number, t.policy_json, t.policy_sha256 FROM trials t "
		"WHERE t.study_id = ?1 AND t.state = 'failed' AND t.lost = 1 AND NOT EXISTS "
		"(SELECT 1 FROM trials u WHERE u.study_id = ?1 AND "
		"u.policy_sha256 = t.policy_sha256 AND u.number > t.number) ORDER BY t.number",
	[STMT_HAS_POLICY] = "SELECT EXISTS (SELECT 1 FROM trials WHERE study_id = ? AND "
			    "policy_sha256 = ? AND " NOT_LOST ")",
	[STMT_HASHES] = "SELECT DISTINCT policy_sha256 FROM trials WHERE study_id = ? AND " NOT_LOST
			" ORDER BY policy_sha256",
	[STMT_COUNTS] = "SELECT coalesce(max(number), 0) + 1, "
			"coalesce(sum(state = 'running'), 0), coalesce(sum(state = 'complete'), 0), "
			"coalesce(sum(state = 'failed'), 0), coalesce(sum(lost), 0) "
			"FROM trials WHERE study_id = ?",
	[STMT_STATE_PUT] =
		"INSERT INTO search_state (study_id, key, value, trial_number, updated_at) "
		"VALUES (?, ?, ?, ?, ?) ON CONFLICT (study_id, key) DO UPDATE SET "
		"value = excluded.value, trial_number = excluded.trial_number, "
		"updated_at = excluded.updated_at",
	[STMT_STATE_GET] = "SELECT value FROM search_state WHERE study_id = ? AND key = ?",
	[STMT_TRIAL_GET] = "SELECT " TRIAL_COLS " FROM trials WHERE study_id = ? AND number = ?",
	[STMT_LAYERS_GET] =
		"SELECT l.layer, l.bits, l.act_bits, l.bias_correction, l.prune, l.prune_kind, "
		"l.rank FROM trial_layers l JOIN trials t ON t.id = l.trial_id "
		"WHERE t.study_id = ? AND t.number = ? ORDER BY l.idx",
	[STMT_BEST_ACCURACY] = "SELECT number, accuracy FROM trials WHERE study_id = ? AND "
			       "state = 'complete' ORDER BY accuracy DESC, number LIMIT 1",
	[STMT_SMALLEST_NEAR_FP32] =
		"SELECT number, size_bytes FROM trials WHERE study_id = ? AND state = 'complete' "
		"AND accuracy >= ? ORDER BY size_bytes, number LIMIT 1",
	[STMT_LAST_ACTIVITY] =
		"SELECT max(coalesce(max(started_at), 0), coalesce(max(heartbeat_at), 0), "
		"coalesce(max(ended_at), 0)) FROM trials WHERE study_id = ?",
	[STMT_SET_TEST_ACCURACY] = "UPDATE trials SET test_accuracy = ? "
				   "WHERE study_id = ? AND number = ? AND state = 'complete'",
	[STMT_SET_LATENCY] = "UPDATE trials SET latency_us = ? "
			     "WHERE study_id = ? AND number = ? AND state = 'complete'",
	[STMT_ABANDON] = "UPDATE trials SET state = 'failed', lost = 1, ended_at = ?, error = ? "
			 "WHERE study_id = ? AND state = 'running'",
};
_Static_assert(sizeof sql_text / sizeof sql_text[0] == STMT_COUNT, "every statement needs SQL");

struct store {
	sqlite3 *db;
	char *path;
	bool readonly;
	sqlite3_stmt *stmt[STMT_COUNT];
};

static const char *const state_names[TRIAL_STATE_COUNT] = {
	[TRIAL_RUNNING] = "running",
	[TRIAL_COMPLETE] = "complete",
	[TRIAL_FAILED] = "failed",
};
_Static_assert(sizeof state_names / sizeof state_names[0] == TRIAL_STATE_COUNT,
	       "every trial state needs a name");

static const char *const prune_kinds[] = {"unstructured", "structured"};

const char *store_trial_state_str(enum trial_state s)
{
	return (unsigned)s < TRIAL_STATE_COUNT ? state_names[s] : "?";
}

/* --- small helpers -------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static enum presso_status nomem(const struct store *st)
{
	return status_fail(PRESSO_E_NOMEM, "%s: out of memory", st ? st->path : "store");
}

/* Maps an SQLite result code to a status with a message naming the file. */
static enum presso_status db_fail(const struct store *st, int rc, const char *what)
{
	enum presso_status s = PRESSO_E_RUNTIME;
	const char *hint = "";
	const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		hint = " (another process kept the database locked for longer than the busy "
		       "timeout)";
		break;
	case SQLITE_NOTADB:
		return status_fail(PRESSO_E_FORMAT, "%s: not an SQLite database (%s)", st->path,
				   msg);
	case SQLITE_CORRUPT:
		return status_fail(PRESSO_E_FORMAT, "%s: the database is damaged (%s): %s",
				   st->path, msg, what);
	case SQLITE_READONLY:
	case SQLITE_PERM:
		s = PRESSO_E_IO;
		hint = " (no write access to the file or its folder)";
		break;
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		s = PRESSO_E_IO;
		break;
	case SQLITE_NOMEM:
		s = PRESSO_E_NOMEM;
		break;
	default:
		break;
	}
	return status_fail(s, "%s: %s: %s%s", st->path, what, msg, hint);
}

static enum presso_status prep(struct store *st, enum stmt id, sqlite3_stmt **q)
{
	if (!st->stmt[id]) {
		int rc = sqlite3_prepare_v3(st->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &st->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return db_fail(st, rc, "preparing a query");
	}
	*q = st->stmt[id];
	return PRESSO_OK;
}

/* The statement helpers: stmt_run() for a statement without rows,
 * stmt_query() / stmt_next() / stmt_finish() for one that returns them. Each
 * prepares the statement once (kept), binds the values that follow a type
 * string, steps and resets, so a query reads as one call:
 *
 *	s = stmt_run(st, STMT_HEARTBEAT, "updating a heartbeat", "fii",
 *		     now_s(), study_id, number);
 *
 * One letter per SQL parameter, naming the C type of the value(s) passed:
 *   i  int64_t                    cast an int: (int64_t)n. va_arg reads an
 *                                 int64_t, and an int passed there is
 *                                 undefined behaviour
 *   f  double                     NaN binds NULL ("not measured")
 *   t  const char *               NUL-terminated text; NULL binds NULL
 *   v  const void *, size_t, int  a value of n bytes: TEXT when the int is
 *                                 nonzero, else a BLOB (a NULL pointer binds
 *                                 an empty one)
 *   I  const int64_t *            the integer pointed to; NULL binds NULL
 * The number of letters must be the statement's parameter count (checked).
 * what names the action in an error message ("%s: <what>: <SQLite's
 * message>"). */

/* Binds the values in ap to parameters 1, 2, ... of q as types says; the
 * first failure stops it and is returned. */
static int bind_values(sqlite3_stmt *q, const char *types, va_list ap)
{
	int rc = SQLITE_OK;
	for (int i = 1; rc == SQLITE_OK && types[i - 1]; i++) {
		switch (types[i - 1]) {
		case 'i':
			rc = sqlite3_bind_int64(q, i, va_arg(ap, int64_t));
			break;
		case 'f': {
			double v = va_arg(ap, double);
			rc = isnan(v) ? sqlite3_bind_null(q, i) : sqlite3_bind_double(q, i, v);
			break;
		}
		case 't': {
			const char *t = va_arg(ap, const char *);
			rc = t ? sqlite3_bind_text(q, i, t, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(q, i);
			break;
		}
		case 'v': {
			const void *v = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			int is_text = va_arg(ap, int);
			rc = is_text ? sqlite3_bind_text64(q, i, v ? v : "", n, SQLITE_TRANSIENT,
							   SQLITE_UTF8)
				     : sqlite3_bind_blob64(q, i, v ? v : "", n, SQLITE_TRANSIENT);
			break;
		}
		case 'I': {
			const int64_t *v = va_arg(ap, const int64_t *);
			rc = v ? sqlite3_bind_int64(q, i, *v) : sqlite3_bind_null(q, i);
			break;
		}
		default:
			PRESSO_CHECK(!"a statement's type string has an unknown letter");
		}
	}
	return rc;
}

/* Resets a statement left on a row (whatever happened); NULL is a no-op. */
static void stmt_finish(sqlite3_stmt *q)
{
	if (!q)
		return;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

/* After a step (or a failed bind) that returned rc: a row leaves *q on it;
 * the end, or an error (recorded, naming what), resets *q and sets it NULL. */
static enum presso_status settle(struct store *st, sqlite3_stmt **q, int rc, const char *what)
{
	if (rc == SQLITE_ROW)
		return PRESSO_OK;
	enum presso_status s = rc == SQLITE_DONE ? PRESSO_OK : db_fail(st, rc, what);
	stmt_finish(*q);
	*q = NULL;
	return s;
}

static enum presso_status vstart(struct store *st, sqlite3_stmt **q, const char *what,
				 const char *types, va_list ap)
{
	int rc = bind_values(*q, types, ap);
	return settle(st, q, rc == SQLITE_OK ? sqlite3_step(*q) : rc, what);
}

/* Moves *q to its next row; at the end or on error resets it and sets *q to
 * NULL. */
static enum presso_status stmt_next(struct store *st, sqlite3_stmt **q, const char *what)
{
	return settle(st, q, sqlite3_step(*q), what);
}

/* Runs statement id up to its first row: *q stands on it for the caller to
 * read, or is NULL (the statement reset) when there is no row or on error. */
static enum presso_status stmt_query(struct store *st, sqlite3_stmt **q, enum stmt id,
				     const char *what, const char *types, ...)
{
	*q = NULL;
	enum presso_status s = prep(st, id, q);
	if (s != PRESSO_OK)
		return s;
	PRESSO_CHECK(strlen(types) == (size_t)sqlite3_bind_parameter_count(*q));
	va_list ap;
	va_start(ap, types);
	s = vstart(st, q, what, types, ap);
	va_end(ap);
	return s;
}

/* stmt_query for a statement the caller prepared: binds parameters 1, 2, ...
 * from types; later parameters keep what the caller bound. */
static enum presso_status stmt_start(struct store *st, sqlite3_stmt **q, const char *what,
				     const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	enum presso_status s = vstart(st, q, what, types, ap);
	va_end(ap);
	return s;
}

/* Runs statement id, which returns no rows, and resets it. */
static enum presso_status stmt_run(struct store *st, enum stmt id, const char *what,
				   const char *types, ...)
{
	sqlite3_stmt *q = NULL;
	enum presso_status s = prep(st, id, &q);
	if (s != PRESSO_OK)
		return s;
	PRESSO_CHECK(strlen(types) == (size_t)sqlite3_bind_parameter_count(q));
	va_list ap;
	va_start(ap, types);
	s = vstart(st, &q, what, types, ap);
	va_end(ap);
	stmt_finish(q);
	return s;
}

static double col_f64(sqlite3_stmt *q, int i)
{
	return sqlite3_column_type(q, i) == SQLITE_NULL ? NAN : sqlite3_column_double(q, i);
}

/* A malloc'd copy of a text column; NULL for SQL NULL. *oom set on failure. */
static char *col_dup(sqlite3_stmt *q, int i, bool *oom)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	if (!t)
		return NULL;
	char *d = strdup((const char *)t);
	if (!d)
		*oom = true;
	return d;
}

static enum presso_status writable(const struct store *st)
{
	if (st->readonly)
		return status_fail(PRESSO_E_IO, "%s: the store was opened read-only", st->path);
	return PRESSO_OK;
}

static enum presso_status tx_begin(struct store *st)
{
	return stmt_run(st, STMT_BEGIN, "starting a transaction", "");
}

/* Commits when s is PRESSO_OK, else rolls back keeping s and its message. */
static enum presso_status tx_end(struct store *st, enum presso_status s)
{
	if (s == PRESSO_OK && (s = stmt_run(st, STMT_COMMIT, "committing", "")) == PRESSO_OK)
		return s;
	/* SQLite may already have rolled back (e.g. on SQLITE_FULL) */
	if (!sqlite3_get_autocommit(st->db) && st->stmt[STMT_ROLLBACK] == NULL)
		sqlite3_prepare_v3(st->db, sql_text[STMT_ROLLBACK], -1, SQLITE_PREPARE_PERSISTENT,
				   &st->stmt[STMT_ROLLBACK], NULL);
	if (!sqlite3_get_autocommit(st->db) && st->stmt[STMT_ROLLBACK]) {
		sqlite3_step(st->stmt[STMT_ROLLBACK]);
		stmt_finish(st->stmt[STMT_ROLLBACK]);
	}
	return s;
}

/* --- migrations ----------------------------------------------------------- */

/* The text of migration v in the embedded schema: [*start, *end); false if
 * there is no such section. */
static bool migration_span(int v, const char **start, const char **end)
{
	const char *text = (const char *)db_schema_sql;
	const char *limit = text + db_schema_sql_bytes;
	const char *found = NULL;
	size_t mark_len = strlen(MIGRATION_MARK);
	for (const char *p = text; (p = strstr(p, MIGRATION_MARK)) != NULL; p += mark_len) {
		if (p != text && p[-1] != '\n')
			continue;
		if (found) {
			*start = found;
			*end = p;
			return true;
		}
		if (atoi(p + mark_len) == v)
			found = p;
	}
	if (!found)
		return false;
	*start = found;
	*end = limit;
	return true;
}

int store_schema_version(void)
{
	const char *a, *b;
	int v = 0;
	while (migration_span(v + 1, &a, &b))
		v++;
	return v;
}

/* One integer from a constant query (PRAGMA user_version, ...). */
static int query_int(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(q, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	return rc;
}

static enum presso_status migrate(struct store *st, int from, int to)
{
	for (int v = from + 1; v <= to; v++) {
		const char *a, *b;
		PRESSO_CHECK(migration_span(v, &a, &b));
		char *sql = strndup(a, (size_t)(b - a));
		if (!sql)
			return nomem(st);
		enum presso_status s = tx_begin(st);
		if (s != PRESSO_OK) {
			free(sql);
			return s;
		}
		/* another process may have migrated while we waited for the lock */
		int64_t now_v = 0;
		int rc = query_int(st, "PRAGMA user_version", &now_v);
		char *err = NULL;
		if (rc == SQLITE_OK && now_v < v)
			rc = sqlite3_exec(st->db, sql, NULL, NULL, &err);
		if (rc != SQLITE_OK) {
			s = status_fail(rc == SQLITE_BUSY ? PRESSO_E_RUNTIME : PRESSO_E_FORMAT,
					"%s: migrating the schema to version %d: %s", st->path, v,
					err ? err : sqlite3_errmsg(st->db));
		}
		sqlite3_free(err);
		free(sql);
		if ((s = tx_end(st, s)) != PRESSO_OK)
			return s;
	}
	return PRESSO_OK;
}

/* --- opening -------------------------------------------------------------- */

/* "file:" URI for path with ?immutable=1, percent-encoding what URIs reserve. */
static char *immutable_uri(const char *path)
{
	size_t n = strlen(path);
	char *u = malloc(3 * n + 32);
	if (!u)
		return NULL;
	char *p = u + sprintf(u, path[0] == '/' ? "file://" : "file:");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    strchr("/-._~", *c))
			*p++ = (char)*c;
		else
			p += sprintf(p, "%%%02X", *c);
	}
	strcpy(p, "?immutable=1");
	return u;
}

static enum presso_status db_connect(struct store *st, int flags, const char *name)
{
	int rc = sqlite3_open_v2(name, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		enum presso_status s = status_fail(
			PRESSO_E_IO, "%s: cannot open: %s", st->path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		sqlite3_close(st->db);
		st->db = NULL;
		return s;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	return PRESSO_OK;
}

/* Reads user_version, application_id and whether the file holds any schema,
 * in one statement so that all three come from one snapshot (another process
 * may be migrating). The first read is where SQLite notices a file that is
 * not a database. */
static int read_header(struct store *st, int64_t *version, int64_t *app_id, int64_t *n_objects)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db,
				    "SELECT (SELECT user_version FROM pragma_user_version), "
				    "(SELECT application_id FROM pragma_application_id), "
				    "(SELECT count(*) FROM sqlite_master)",
				    -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int64(q, 0);
		*app_id = sqlite3_column_int64(q, 1);
		*n_objects = sqlite3_column_int64(q, 2);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	return rc;
}

/* A WAL database in a folder we cannot write, with no -shm file, cannot be
 * opened normally even for reading. With no -wal content and no rollback
 * journal either, nothing is writing it and nothing is half-written, so
 * opening it immutable reads exactly what is there. */
static bool can_read_immutable(const char *path)
{
	char side[4096];
	struct stat sb;
	if (snprintf(side, sizeof side, "%s-journal", path) >= (int)sizeof side ||
	    stat(side, &sb) == 0)
		return false;
	snprintf(side, sizeof side, "%s-wal", path);
	return stat(side, &sb) != 0 || sb.st_size == 0;
}

static enum presso_status check_version(struct store *st, bool create, int64_t version,
					int64_t app_id, int64_t n_objects)
{
	int latest = store_schema_version();
	if (version == 0 && n_objects > 0)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: not a presso database (it holds other tables)", st->path);
	if (version > 0 && app_id != APPLICATION_ID)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: not a presso database (application id %lld, schema "
				   "version %lld)",
				   st->path, (long long)app_id, (long long)version);
	if (version > latest)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: schema version %lld is newer than this presso (%s) knows "
				   "(%d); use a newer presso",
				   st->path, (long long)version, PRESSO_VERSION, latest);
	if (version == 0 && !create)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: not a presso database yet (empty; presso search creates it)",
				   st->path);
	if (version < latest && st->readonly)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: schema version %lld is older than this presso's (%d); open "
				   "it once for writing (presso search --resume) to migrate it",
				   st->path, (long long)version, latest);
	return PRESSO_OK;
}

/* Makes a complete presso database at path, which did not exist: the schema
 * goes into a temporary file beside it, which is then linked into place. A
 * process killed meanwhile leaves at most a stray "PATH.new-...", never a
 * half-made database (whose hot journal a read-only reader could not roll
 * back). If another process creates path first, link fails and theirs is used. */
static enum presso_status create_file(const char *path)
{
	size_t n = strlen(path) + 40;
	char *tmp = malloc(n);
	if (!tmp)
		return nomem(NULL);
	/* a name of our own (O_EXCL), with the usual 0666 & ~umask permissions */
	static _Atomic unsigned counter;
	int fd = -1;
	for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(tmp, n, "%s.new-%ld-%u-%ld", path, (long)getpid(), counter++,
			 (long)ts.tv_nsec);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		enum presso_status s = status_fail(PRESSO_E_IO, "%s: cannot create: %s", path,
						   strerror(errno));
		free(tmp);
		return s;
	}
	close(fd);
	struct store *st;
	enum presso_status s = store_open(tmp, STORE_CREATE, &st);
	store_close(st);
	if (s == PRESSO_OK && link(tmp, path) != 0 && errno != EEXIST) {
		/* no hard links here (some network and FUSE file systems) */
		struct stat sb;
		if (stat(path, &sb) != 0 && rename(tmp, path) != 0)
			s = status_fail(PRESSO_E_IO, "%s: cannot create: %s", path,
					strerror(errno));
	}
	unlink(tmp);
	free(tmp);
	return s;
}

enum presso_status store_open(const char *path, unsigned flags, struct store **out)
{
	*out = NULL;
	if (!path || !*path)
		return status_fail(PRESSO_E_USAGE, "the database path is empty");
	bool ro = flags & STORE_READONLY;
	bool create = (flags & STORE_CREATE) && !ro;
	struct stat sb;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT || !create)
			return status_fail(PRESSO_E_IO, "%s: %s%s", path, strerror(errno),
					   errno == ENOENT ? " (presso search creates it)" : "");
		enum presso_status s = create_file(path);
		if (s != PRESSO_OK)
			return s;
	} else if (S_ISDIR(sb.st_mode)) {
		return status_fail(PRESSO_E_IO, "%s: is a folder, not a database file", path);
	}
	struct store *st = calloc(1, sizeof *st);
	enum presso_status s;
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return nomem(NULL);
	}
	st->readonly = ro;
	int oflags = ro ? SQLITE_OPEN_READONLY
			: SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	if ((s = db_connect(st, oflags, path)) != PRESSO_OK)
		goto fail;
	if (!ro && sqlite3_db_readonly(st->db, "main") == 1) {
		s = status_fail(PRESSO_E_IO,
				"%s: the file is read-only (presso studies, pareto and export can "
				"still read it)",
				path);
		goto fail;
	}
	int64_t version = 0, app_id = 0, n_objects = 0;
	int rc = read_header(st, &version, &app_id, &n_objects);
	/* no -shm and no way to make one (SQLite says READONLY_DIRECTORY, or
	 * CANTINIT / CANTOPEN depending on what exists) */
	if (((rc & 0xff) == SQLITE_CANTOPEN || rc == SQLITE_READONLY_DIRECTORY ||
	     rc == SQLITE_READONLY_CANTINIT) &&
	    ro && can_read_immutable(path)) {
		char *uri = immutable_uri(path);
		sqlite3_close(st->db);
		st->db = NULL;
		s = uri ? db_connect(st, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, uri) : nomem(st);
		free(uri);
		if (s != PRESSO_OK)
			goto fail;
		rc = read_header(st, &version, &app_id, &n_objects);
	}
	if (rc != SQLITE_OK) {
		s = db_fail(st, rc, "reading the schema version");
		goto fail;
	}
	if ((s = check_version(st, create, version, app_id, n_objects)) != PRESSO_OK)
		goto fail;
	char *err = NULL;
	rc = sqlite3_exec(st->db,
			  ro ? "PRAGMA foreign_keys = ON; PRAGMA query_only = ON;"
			     : "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
			       "PRAGMA foreign_keys = ON;",
			  NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		s = status_fail(rc == SQLITE_BUSY ? PRESSO_E_RUNTIME : PRESSO_E_IO,
				"%s: setting up the connection: %s", path,
				err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		goto fail;
	}
	if (!ro && (s = migrate(st, (int)version, store_schema_version())) != PRESSO_OK)
		goto fail;
	*out = st;
	return PRESSO_OK;
fail:
	store_close(st);
	return s;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st->path;
}

/* --- studies -------------------------------------------------------------- */

enum presso_status store_canonical_json(const char *json, char **canonical,
					char hash[SHA256_HEX_BYTES])
{
	if (canonical)
		*canonical = NULL;
	cJSON *doc = json ? cJSON_Parse(json) : NULL;
	if (!doc)
		return status_fail(PRESSO_E_CONFIG, "not valid JSON%s%.40s",
				   json ? " near: " : "", json && cJSON_GetErrorPtr() ?
				   cJSON_GetErrorPtr() : "");
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory printing JSON");
	sha256_hex(text, strlen(text), hash);
	char *copy = canonical ? strdup(text) : NULL;
	cJSON_free(text);
	if (canonical && !copy)
		return status_fail(PRESSO_E_NOMEM, "out of memory printing JSON");
	if (canonical)
		*canonical = copy;
	return PRESSO_OK;
}

void store_study_info_free(struct study_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->config_json);
	free(info->config_sha256);
	free(info->model_path);
	free(info->model_sha256);
	free(info->dataset);
	free(info->presso_version);
	free(info->status);
	memset(info, 0, sizeof *info);
}

/* Reads a row of STUDY_COLS. */
static enum presso_status read_study(struct store *st, sqlite3_stmt *q, struct study_info *o)
{
	bool oom = false;
	memset(o, 0, sizeof *o);
	o->id = sqlite3_column_int64(q, 0);
	o->name = col_dup(q, 1, &oom);
	o->config_json = col_dup(q, 2, &oom);
	o->config_sha256 = col_dup(q, 3, &oom);
	o->model_path = col_dup(q, 4, &oom);
	o->model_sha256 = col_dup(q, 5, &oom);
	o->dataset = col_dup(q, 6, &oom);
	o->seed = (uint64_t)sqlite3_column_int64(q, 7);
	o->baseline.accuracy = col_f64(q, 8);
	o->baseline.test_accuracy = col_f64(q, 9);
	o->baseline.size_bytes = sqlite3_column_int64(q, 10);
	o->baseline.bops = col_f64(q, 11);
	o->baseline.latency_us = col_f64(q, 12);
	o->baseline.n_classes = sqlite3_column_int(q, 13);
	o->presso_version = col_dup(q, 14, &oom);
	o->status = col_dup(q, 15, &oom);
	o->created_at = col_f64(q, 16);
	o->finished_at = col_f64(q, 17);
	if (oom) {
		store_study_info_free(o);
		return nomem(st);
	}
	return PRESSO_OK;
}

/* Looks a study up by name; *found false if there is none. */
static enum presso_status study_by_name(struct store *st, const char *name, struct study_info *o,
					bool *found)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_STUDY_BY_NAME, "reading a study", "t", name);
	if (s != PRESSO_OK)
		return s;
	*found = q != NULL;
	if (q)
		s = read_study(st, q, o);
	stmt_finish(q);
	return s;
}

static enum presso_status study_by_id(struct store *st, int64_t id, struct study_info *o)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_STUDY_BY_ID, "reading a study", "i", id);
	if (s != PRESSO_OK)
		return s;
	s = q ? read_study(st, q, o)
	      : status_fail(PRESSO_E_RUNTIME, "%s: no study with id %lld", st->path, (long long)id);
	stmt_finish(q);
	return s;
}

enum presso_status store_find_study(struct store *st, const char *name, struct study_info *out)
{
	bool found = false;
	memset(out, 0, sizeof *out);
	enum presso_status s = study_by_name(st, name, out, &found);
	if (s != PRESSO_OK || found)
		return s;
	/* list what is there */
	sqlite3_stmt *q;
	char list[768];
	size_t used = 0;
	int n = 0;
	list[0] = '\0';
	for (s = stmt_query(st, &q, STMT_STUDY_NAMES, "listing studies", ""); q;
	     s = stmt_next(st, &q, "listing studies")) {
		const char *nm = (const char *)sqlite3_column_text(q, 0);
		if (used < sizeof list - 8)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s'",
						 n ? ", " : "", nm ? nm : "");
		n++;
	}
	if (s != PRESSO_OK)
		return s;
	if (used >= sizeof list - 8)
		snprintf(list + sizeof list - 8, 8, "...");
	if (n == 0)
		return status_fail(PRESSO_E_USAGE, "%s: no study '%s' (the database holds no studies)",
				   st->path, name);
	return status_fail(PRESSO_E_USAGE, "%s: no study '%s' (studies: %s)", st->path, name, list);
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > STORE_NAME_MAX)
		return false;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

static bool hex64_ok(const char *h)
{
	if (!h || strlen(h) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

/* Finds the first place where two JSON documents differ: "" (the whole
 * document), "search.bits", "layers[2]". False if they are equal. */
static bool json_diff(const cJSON *a, const cJSON *b, char *path, size_t cap)
{
	if (cJSON_Compare(a, b, true))
		return false;
	size_t used = strlen(path);
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		for (int pass = 0; pass < 2; pass++) {
			const cJSON *x = pass == 0 ? a : b, *y = pass == 0 ? b : a;
			for (const cJSON *it = x->child; it; it = it->next) {
				const cJSON *other = cJSON_GetObjectItemCaseSensitive(y, it->string);
				if (other && cJSON_Compare(it, other, true))
					continue;
				snprintf(path + used, cap - used, "%s%s", used ? "." : "", it->string);
				if (other)
					json_diff(it, other, path, cap);
				return true;
			}
		}
	} else if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
		for (int i = 0; i < na || i < nb; i++) {
			const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
			if (x && y && cJSON_Compare(x, y, true))
				continue;
			snprintf(path + used, cap - used, "[%d]", i);
			if (x && y)
				json_diff(x, y, path, cap);
			return true;
		}
	}
	return true;
}

/* Why a stored study does not match a spec ("" if it matches). */
static void spec_mismatch(const struct study_info *have, const struct study_spec *want,
			  const char *want_hash, char *why, size_t cap)
{
	why[0] = '\0';
	if (strcmp(have->config_sha256, want_hash) != 0) {
		char path[256] = "";
		cJSON *a = cJSON_Parse(have->config_json), *b = cJSON_Parse(want->config_json);
		if (a && b && json_diff(a, b, path, sizeof path) && path[0])
			snprintf(why, cap, "its config differs at '%s'", path);
		else
			snprintf(why, cap, "its config differs");
		cJSON_Delete(a);
		cJSON_Delete(b);
	} else if (strcmp(have->model_sha256, want->model_sha256) != 0) {
		snprintf(why, cap, "its model file has changed (sha256 %.12s... then, %.12s... now)",
			 have->model_sha256, want->model_sha256);
	} else if (strcmp(have->dataset, want->dataset) != 0) {
		snprintf(why, cap, "its dataset differs ('%s' then, '%s' now)", have->dataset,
			 want->dataset);
	} else if (have->seed != want->seed) {
		snprintf(why, cap, "its seed differs (%llu then, %llu now)",
			 (unsigned long long)have->seed, (unsigned long long)want->seed);
	}
}

static enum presso_status check_spec(const struct store *st, const struct study_spec *sp)
{
	const struct baseline *b = &sp->baseline;
	if (!name_ok(sp->name))
		return status_fail(PRESSO_E_CONFIG,
				   "study name '%.*s' must be 1 to %d bytes without control "
				   "characters",
				   STORE_NAME_MAX, sp->name ? sp->name : "", STORE_NAME_MAX);
	if (!hex64_ok(sp->model_sha256))
		return status_fail(PRESSO_E_CONFIG, "study '%s': model sha256 must be 64 lowercase "
						    "hex digits", sp->name);
	if (!sp->model_path || !sp->dataset)
		return status_fail(PRESSO_E_CONFIG, "study '%s': model path and dataset are required",
				   sp->name);
	if (!(b->accuracy >= 0 && b->accuracy <= 100) ||
	    !(isnan(b->test_accuracy) || (b->test_accuracy >= 0 && b->test_accuracy <= 100)) ||
	    b->size_bytes <= 0 || !(b->bops >= 0) || !isfinite(b->bops) ||
	    !(isnan(b->latency_us) || (b->latency_us >= 0 && isfinite(b->latency_us))) ||
	    b->n_classes < 2)
		return status_fail(PRESSO_E_CONFIG,
				   "study '%s': bad FP32 baseline (accuracy %g %%, test %g %%, %lld "
				   "bytes, %g BOPs, %g us, %d classes)",
				   sp->name, b->accuracy, b->test_accuracy, (long long)b->size_bytes,
				   b->bops, b->latency_us, b->n_classes);
	(void)st;
	return PRESSO_OK;
}

static enum presso_status insert_study(struct store *st, const struct study_spec *sp,
				       const char *name, const char *config, const char *hash,
				       int64_t *id)
{
	const struct baseline *b = &sp->baseline;
	enum presso_status s = stmt_run(
		st, STMT_STUDY_INSERT, "creating a study", "ttttttiffiffitf", name, config, hash,
		sp->model_path, sp->model_sha256, sp->dataset, (int64_t)sp->seed, b->accuracy,
		b->test_accuracy, b->size_bytes, b->bops, b->latency_us, (int64_t)b->n_classes,
		PRESSO_VERSION, now_s());
	if (s != PRESSO_OK)
		return s;
	*id = sqlite3_last_insert_rowid(st->db);
	return PRESSO_OK;
}

enum presso_status store_create_or_resume_study(struct store *st, const struct study_spec *spec,
						bool new_study, int64_t *study_id, bool *resumed,
						char name_out[STORE_NAME_MAX + 1])
{
	char hash[SHA256_HEX_BYTES];
	char *config = NULL;
	char name[STORE_NAME_MAX + 16];
	struct study_info have = {0};
	bool found = false;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if ((s = check_spec(st, spec)) != PRESSO_OK)
		return s;
	if ((s = store_canonical_json(spec->config_json, &config, hash)) != PRESSO_OK)
		return status_wrap(s, "study '%s': config", spec->name);
	*resumed = false;
	snprintf(name, sizeof name, "%s", spec->name);
	if ((s = tx_begin(st)) != PRESSO_OK)
		goto fail;
	if ((s = study_by_name(st, name, &have, &found)) != PRESSO_OK)
		goto rollback;
	if (found && !new_study) {
		char why[512];
		spec_mismatch(&have, spec, hash, why, sizeof why);
		if (why[0]) {
			s = status_fail(PRESSO_E_CONFIG,
					"%s: study '%s' exists and %s; resume it with the same "
					"settings, or ask for a new study (presso search --new-study)",
					st->path, name, why);
			goto rollback;
		}
		s = stmt_run(st, STMT_STUDY_REOPEN, "resuming a study", "i", have.id);
		if (s != PRESSO_OK)
			goto rollback;
		*study_id = have.id;
		*resumed = true;
	} else {
		/* new: the name as given if free, else NAME-2, NAME-3, ... */
		for (int k = 2; found; k++) {
			store_study_info_free(&have);
			if (strlen(spec->name) + 1 + (size_t)snprintf(NULL, 0, "%d", k) >
			    STORE_NAME_MAX) {
				s = status_fail(PRESSO_E_CONFIG,
						"study name '%s' is taken and too long to number",
						spec->name);
				goto rollback;
			}
			snprintf(name, sizeof name, "%s-%d", spec->name, k);
			if ((s = study_by_name(st, name, &have, &found)) != PRESSO_OK)
				goto rollback;
		}
		if ((s = insert_study(st, spec, name, config, hash, study_id)) != PRESSO_OK)
			goto rollback;
	}
rollback:
	s = tx_end(st, s);
fail:
	if (s == PRESSO_OK && name_out) {
		PRESSO_CHECK(strlen(name) <= STORE_NAME_MAX);
		memcpy(name_out, name, strlen(name) + 1);
	}
	store_study_info_free(&have);
	free(config);
	return s;
}

enum presso_status store_finish_study(struct store *st, int64_t study_id)
{
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	return stmt_run(st, STMT_STUDY_FINISH, "finishing a study", "fi", now_s(), study_id);
}

/* --- trials --------------------------------------------------------------- */

void store_trials_free(struct store_trial *trials, int n)
{
	if (!trials)
		return;
	for (int i = 0; i < n; i++) {
		free(trials[i].policy_json);
		free(trials[i].worker);
		free(trials[i].error);
	}
	free(trials);
}

void store_policies_free(struct store_policy *p, int n)
{
	if (!p)
		return;
	for (int i = 0; i < n; i++)
		free(p[i].policy_json);
	free(p);
}

static enum trial_state state_of(const unsigned char *text)
{
	for (int i = 0; i < TRIAL_STATE_COUNT; i++)
		if (text && strcmp((const char *)text, state_names[i]) == 0)
			return (enum trial_state)i;
	return TRIAL_FAILED; /* the schema's CHECK allows nothing else */
}

/* Reads a row of TRIAL_COLS. */
static enum presso_status read_trial(struct store *st, sqlite3_stmt *q, struct store_trial *t)
{
	bool oom = false;
	memset(t, 0, sizeof *t);
	t->number = sqlite3_column_int64(q, 0);
	t->state = state_of(sqlite3_column_text(q, 1));
	t->metrics.accuracy = col_f64(q, 2);
	t->metrics.test_accuracy = col_f64(q, 3);
	t->metrics.size_bytes =
		sqlite3_column_type(q, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 4);
	t->metrics.bops = col_f64(q, 5);
	t->metrics.latency_us = col_f64(q, 6);
	t->metrics.mean_bits = col_f64(q, 7);
	t->metrics.mean_prune = col_f64(q, 8);
	t->metrics.mean_rank = col_f64(q, 9);
	t->policy_json = col_dup(q, 10, &oom);
	const unsigned char *h = sqlite3_column_text(q, 11);
	snprintf(t->policy_sha256, sizeof t->policy_sha256, "%s", h ? (const char *)h : "");
	t->worker = col_dup(q, 12, &oom);
	t->started_at = col_f64(q, 13);
	t->heartbeat_at = col_f64(q, 14);
	t->ended_at = col_f64(q, 15);
	t->error = col_dup(q, 16, &oom);
	t->lost = sqlite3_column_int(q, 17) != 0;
	if (oom) {
		free(t->policy_json);
		free(t->worker);
		free(t->error);
		memset(t, 0, sizeof *t);
		return nomem(st);
	}
	return PRESSO_OK;
}

enum presso_status store_begin_trial(struct store *st, int64_t study_id, const char *policy_json,
				     const char *policy_hash, const char *worker,
				     int64_t *number)
{
	char hash[SHA256_HEX_BYTES];
	char *canonical = NULL;
	struct study_info info = {0};
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if ((s = store_canonical_json(policy_json, &canonical, hash)) != PRESSO_OK)
		return status_wrap(s, "%s: policy", st->path);
	if (policy_hash && strcmp(policy_hash, hash) != 0) {
		s = status_fail(PRESSO_E_RUNTIME,
				"%s: policy hash %.16s... is not the sha256 of its canonical text "
				"(%.16s...)",
				st->path, policy_hash, hash);
		goto fail;
	}
	if ((s = tx_begin(st)) != PRESSO_OK)
		goto fail;
	s = study_by_id(st, study_id, &info);
	sqlite3_stmt *q = NULL;
	if (s == PRESSO_OK)
		s = stmt_query(st, &q, STMT_NEXT_NUMBER, "numbering a trial", "i", study_id);
	if (q) /* an aggregate: always one row */
		*number = sqlite3_column_int64(q, 0);
	stmt_finish(q);
	double t = now_s();
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_TRIAL_INSERT, "starting a trial", "iitttff", study_id,
			     *number, canonical, hash, worker ? worker : "", t, t);
	s = tx_end(st, s);
fail:
	store_study_info_free(&info);
	free(canonical);
	return s;
}

/* Explains why a trial cannot change state: missing, or not running. */
static enum presso_status not_running(struct store *st, int64_t study_id, int64_t number)
{
	sqlite3_stmt *q;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_STATE, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (!q)
		s = status_fail(PRESSO_E_RUNTIME, "%s: study %lld has no trial %lld", st->path,
				(long long)study_id, (long long)number);
	else
		s = status_fail(PRESSO_E_RUNTIME, "%s: trial %lld is %s, not running%s%s", st->path,
				(long long)number, (const char *)sqlite3_column_text(q, 1),
				sqlite3_column_text(q, 2) ? ": " : "",
				sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2)
							  : "");
	stmt_finish(q);
	return s;
}

/* The row id of a running trial (inside a transaction). */
static enum presso_status running_trial_id(struct store *st, int64_t study_id, int64_t number,
					   int64_t *id)
{
	sqlite3_stmt *q;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_STATE, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	bool running = q && state_of(sqlite3_column_text(q, 1)) == TRIAL_RUNNING;
	if (running)
		*id = sqlite3_column_int64(q, 0);
	stmt_finish(q);
	return running ? PRESSO_OK : not_running(st, study_id, number);
}

enum presso_status store_heartbeat(struct store *st, int64_t study_id, int64_t number)
{
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_HEARTBEAT, "updating a heartbeat", "fii", now_s(), study_id,
			     number);
	if (s != PRESSO_OK)
		return s;
	return sqlite3_changes(st->db) == 1 ? PRESSO_OK : not_running(st, study_id, number);
}

static enum presso_status check_metrics(const struct store *st, int64_t number,
					const struct trial_metrics *m)
{
	const char *bad = NULL;
	double v = 0;
	if (!(m->accuracy >= 0 && m->accuracy <= 100))
		bad = "accuracy (percent, 0..100)", v = m->accuracy;
	else if (!isnan(m->test_accuracy) && !(m->test_accuracy >= 0 && m->test_accuracy <= 100))
		bad = "test_accuracy (percent, 0..100 or NaN)", v = m->test_accuracy;
	else if (m->size_bytes <= 0)
		bad = "size_bytes (> 0)", v = (double)m->size_bytes;
	else if (!(m->bops >= 0) || !isfinite(m->bops))
		bad = "bops (>= 0)", v = m->bops;
	else if (!isnan(m->latency_us) && !(m->latency_us >= 0 && isfinite(m->latency_us)))
		bad = "latency_us (>= 0 or NaN)", v = m->latency_us;
	else if (isinf(m->mean_bits) || isinf(m->mean_prune) || isinf(m->mean_rank))
		bad = "mean_bits/mean_prune/mean_rank (finite or NaN)", v = INFINITY;
	if (bad)
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad %s: %g", st->path,
				   (long long)number, bad, v);
	return PRESSO_OK;
}

static enum presso_status check_layers(const struct store *st, int64_t number,
				       const struct layer_choice *l, int n)
{
	for (int i = 0; i < n; i++) {
		const char *bad = NULL;
		if (!l[i].layer || !*l[i].layer)
			bad = "an empty name";
		else if (l[i].bits < 1 || l[i].bits > 32)
			bad = "bits outside 1..32";
		else if (l[i].act_bits < 1 || l[i].act_bits > 32)
			bad = "act_bits outside 1..32";
		else if (!(l[i].prune >= 0 && l[i].prune < 1))
			bad = "prune outside [0, 1)";
		else if (l[i].prune_kind != 0 && l[i].prune_kind != 1)
			bad = "prune_kind not 0 (unstructured) or 1 (structured)";
		else if (!(l[i].rank > 0 && l[i].rank <= 1))
			bad = "rank outside (0, 1]";
		if (bad)
			return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: layer %d ('%s') has %s",
					   st->path, (long long)number, i,
					   l[i].layer ? l[i].layer : "", bad);
	}
	return PRESSO_OK;
}

static enum presso_status put_state(struct store *st, int64_t study_id, const struct store_kv *kv,
				    int n, int64_t trial_number)
{
	enum presso_status s = PRESSO_OK;
	double t = now_s();
	/* written on its own: no trial number */
	const int64_t *trial = trial_number > 0 ? &trial_number : NULL;
	for (int i = 0; i < n && s == PRESSO_OK; i++) {
		if (!kv[i].key || !*kv[i].key)
			return status_fail(PRESSO_E_CONFIG, "%s: a search-state key is empty",
					   st->path);
		s = stmt_run(st, STMT_STATE_PUT, "writing search state", "itvIf", study_id,
			     kv[i].key, kv[i].value, kv[i].n_bytes, (int)kv[i].is_text, trial, t);
	}
	return s;
}

enum presso_status store_complete_trial(struct store *st, int64_t study_id, int64_t number,
					const struct trial_metrics *m,
					const struct layer_choice *layers, int n_layers,
					const struct store_kv *state, int n_state)
{
	int64_t id = 0;
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = check_metrics(st, number, m);
	if (s == PRESSO_OK)
		s = check_layers(st, number, layers, n_layers);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	s = running_trial_id(st, study_id, number, &id);
	double t = now_s();
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_COMPLETE, "completing a trial", "ffffifffffi", t, t,
			     m->accuracy, m->test_accuracy, m->size_bytes, m->bops, m->latency_us,
			     m->mean_bits, m->mean_prune, m->mean_rank, id);
	for (int i = 0; i < n_layers && s == PRESSO_OK; i++) {
		const struct layer_choice *l = &layers[i];
		s = stmt_run(st, STMT_LAYER_INSERT, "storing a trial's layers", "iitiiiftf", id,
			     (int64_t)i, l->layer, (int64_t)l->bits, (int64_t)l->act_bits,
			     (int64_t)(l->bias_correction ? 1 : 0), l->prune,
			     prune_kinds[l->prune_kind], l->rank);
	}
	if (s == PRESSO_OK)
		s = put_state(st, study_id, state, n_state, number);
	return tx_end(st, s);
}

enum presso_status store_fail_trial(struct store *st, int64_t study_id, int64_t number,
				    const char *error)
{
	int64_t id = 0;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	s = running_trial_id(st, study_id, number, &id);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_FAIL, "failing a trial", "fti", now_s(),
			     error && *error ? error : "failed (no message)", id);
	return tx_end(st, s);
}

enum presso_status store_requeue_stale(struct store *st, int64_t study_id, double stale_after_s,
				       int *n_marked, struct store_policy **policies,
				       int *n_policies)
{
	sqlite3_stmt *q = NULL;
	struct store_policy *list = NULL;
	int n = 0, cap = 0;
	*policies = NULL;
	*n_policies = 0;
	if (n_marked)
		*n_marked = 0;
	enum presso_status s = writable(st);
	if (s != PRESSO_OK)
		return s;
	if (!(stale_after_s >= 0))
		return status_fail(PRESSO_E_CONFIG, "stale-trial threshold %g s must be >= 0",
				   stale_after_s);
	if ((s = tx_begin(st)) != PRESSO_OK)
		return s;
	char why[128];
	double t = now_s();
	snprintf(why, sizeof why, "worker lost: no heartbeat for %g s or more (found on resume)",
		 stale_after_s);
	s = stmt_run(st, STMT_MARK_LOST, "marking lost trials", "ftif", t, why, study_id,
		     t - stale_after_s);
	if (s != PRESSO_OK)
		goto done;
	if (n_marked)
		*n_marked = sqlite3_changes(st->db);
	for (s = stmt_query(st, &q, STMT_REQUEUE_LIST, "listing lost trials", "i", study_id); q;
	     s = stmt_next(st, &q, "listing lost trials")) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			struct store_policy *nl = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		bool oom = false;
		struct store_policy *p = &list[n++];
		p->lost_trial = sqlite3_column_int64(q, 0);
		p->policy_json = col_dup(q, 1, &oom);
		const unsigned char *h = sqlite3_column_text(q, 2);
		snprintf(p->policy_sha256, sizeof p->policy_sha256, "%s", h ? (const char *)h : "");
		if (oom || !p->policy_json) {
			s = nomem(st);
			break;
		}
	}
	stmt_finish(q);
done:
	s = tx_end(st, s);
	if (s != PRESSO_OK) {
		store_policies_free(list, n);
		if (n_marked)
			*n_marked = 0;
		return s;
	}
	*policies = list;
	*n_policies = n;
	return PRESSO_OK;
}

enum presso_status store_has_policy(struct store *st, int64_t study_id, const char *policy_hash,
				    bool *found)
{
	sqlite3_stmt *q;
	enum presso_status s = stmt_query(st, &q, STMT_HAS_POLICY, "looking a policy up", "it",
					  study_id, policy_hash);
	if (s != PRESSO_OK)
		return s;
	*found = q && sqlite3_column_int(q, 0) != 0;
	stmt_finish(q);
	return PRESSO_OK;
}

enum presso_status store_policy_hashes(struct store *st, int64_t study_id,
				       char (**hashes)[SHA256_HEX_BYTES], int *n)
{
	sqlite3_stmt *q;
	char(*list)[SHA256_HEX_BYTES] = NULL;
	int count = 0, cap = 0;
	*hashes = NULL;
	*n = 0;
	enum presso_status s;
	for (s = stmt_query(st, &q, STMT_HASHES, "listing policy hashes", "i", study_id); q;
	     s = stmt_next(st, &q, "listing policy hashes")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			char(*nl)[SHA256_HEX_BYTES] = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		const unsigned char *h = sqlite3_column_text(q, 0);
		snprintf(list[count++], SHA256_HEX_BYTES, "%s", h ? (const char *)h : "");
	}
	stmt_finish(q);
	if (s != PRESSO_OK) {
		free(list);
		return s;
	}
	*hashes = list;
	*n = count;
	return PRESSO_OK;
}

enum presso_status store_resume_info(struct store *st, int64_t study_id, struct resume_info *out)
{
	sqlite3_stmt *q;
	memset(out, 0, sizeof *out);
	enum presso_status s =
		stmt_query(st, &q, STMT_COUNTS, "counting trials", "i", study_id);
	if (s != PRESSO_OK)
		return s;
	if (q) { /* an aggregate: always one row */
		out->next_number = sqlite3_column_int64(q, 0);
		out->n_running = sqlite3_column_int(q, 1);
		out->n_complete = sqlite3_column_int(q, 2);
		out->n_failed = sqlite3_column_int(q, 3);
		out->n_lost = sqlite3_column_int(q, 4);
	}
	stmt_finish(q);
	return PRESSO_OK;
}

enum presso_status store_put_state(struct store *st, int64_t study_id, const struct store_kv *kv,
				   int n)
{
	enum presso_status s = writable(st);
	if (s != PRESSO_OK || (s = tx_begin(st)) != PRESSO_OK)
		return s;
	return tx_end(st, put_state(st, study_id, kv, n, 0));
}

enum presso_status store_get_state(struct store *st, int64_t study_id, const char *key,
				   void **value, size_t *n_bytes, bool *found)
{
	sqlite3_stmt *q;
	*value = NULL;
	*n_bytes = 0;
	*found = false;
	enum presso_status s = stmt_query(st, &q, STMT_STATE_GET, "reading search state", "it",
					  study_id, key);
	if (s != PRESSO_OK)
		return s;
	if (q) {
		const void *v = sqlite3_column_blob(q, 0);
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		char *copy = malloc(n + 1);
		if (!copy) {
			stmt_finish(q);
			return nomem(st);
		}
		if (n)
			memcpy(copy, v, n);
		copy[n] = '\0';
		*value = copy;
		*n_bytes = n;
		*found = true;
	}
	stmt_finish(q);
	return PRESSO_OK;
}

enum presso_status store_get_trial(struct store *st, int64_t study_id, int64_t number,
				   struct store_trial **out)
{
	sqlite3_stmt *q;
	*out = NULL;
	enum presso_status s =
		stmt_query(st, &q, STMT_TRIAL_GET, "reading a trial", "ii", study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (!q)
		return status_fail(PRESSO_E_USAGE, "%s: the study has no trial %lld", st->path,
				   (long long)number);
	struct store_trial *t = malloc(sizeof *t);
	s = t ? read_trial(st, q, t) : nomem(st);
	stmt_finish(q);
	if (s != PRESSO_OK) {
		free(t);
		return s;
	}
	*out = t;
	return PRESSO_OK;
}

enum presso_status store_get_layers(struct store *st, int64_t study_id, int64_t number,
				    struct layer_choice **layers, int *n)
{
	const char *what = "reading a trial's layers";
	sqlite3_stmt *q;
	*layers = NULL;
	*n = 0;
	/* two passes over the rows: sizes, then copies into one block */
	for (int pass = 0; pass < 2; pass++) {
		size_t n_rows = 0, n_chars = 0;
		char *names = *layers ? (char *)(*layers + *n) : NULL;
		enum presso_status s;
		for (s = stmt_query(st, &q, STMT_LAYERS_GET, what, "ii", study_id, number); q;
		     s = stmt_next(st, &q, what)) {
			const char *name = (const char *)sqlite3_column_text(q, 0);
			size_t len = strlen(name ? name : "") + 1;
			if (pass == 1 && (int)n_rows < *n) {
				struct layer_choice *l = &(*layers)[n_rows];
				memcpy(names + n_chars, name ? name : "", len);
				const char *kind = (const char *)sqlite3_column_text(q, 5);
				*l = (struct layer_choice){
					.layer = names + n_chars,
					.bits = sqlite3_column_int(q, 1),
					.act_bits = sqlite3_column_int(q, 2),
					.bias_correction = sqlite3_column_int(q, 3) != 0,
					.prune = sqlite3_column_double(q, 4),
					.prune_kind = kind && strcmp(kind, "structured") == 0,
					.rank = sqlite3_column_double(q, 6),
				};
			}
			n_rows++;
			n_chars += len;
		}
		if (s != PRESSO_OK) {
			free(*layers);
			*layers = NULL;
			*n = 0;
			return s;
		}
		if (pass == 0) {
			if (n_rows == 0)
				return PRESSO_OK;
			*layers = malloc(n_rows * sizeof **layers + n_chars);
			if (!*layers)
				return nomem(st);
			*n = (int)n_rows;
		}
	}
	return PRESSO_OK;
}

/* Prepares "prefix [AND fragment] suffix" with the fragment's values bound to
 * parameters 2, 3, ...; the caller binds ?1 (the study) and finalizes *q. */
static enum presso_status prepare_with(struct store *st, const char *prefix, const struct expr *where,
				       const char *suffix, sqlite3_stmt **q)
{
	char *frag = NULL, *sql = NULL;
	double *params = NULL;
	int n_params = 0;
	enum presso_status s = PRESSO_OK;
	*q = NULL;
	if (where && (s = expr_sql(where, &frag, &params, &n_params)) != PRESSO_OK)
		return s;
	size_t len = strlen(prefix) + strlen(suffix) + (frag ? strlen(frag) : 0) + 16;
	if (!(sql = malloc(len))) {
		s = nomem(st);
		goto fail;
	}
	snprintf(sql, len, "%s%s%s%s", prefix, frag ? " AND " : "", frag ? frag : "", suffix);
	int rc = sqlite3_prepare_v2(st->db, sql, -1, q, NULL);
	/* ?1 is the study; the fragment's placeholders are numbered from 2 */
	for (int i = 0; rc == SQLITE_OK && i < n_params; i++)
		rc = sqlite3_bind_double(*q, 2 + i, params[i]);
	if (rc != SQLITE_OK) {
		s = db_fail(st, rc, "preparing a query");
		sqlite3_finalize(*q);
		*q = NULL;
	}
fail:
	free(sql);
	free(frag);
	free(params);
	return s;
}

enum presso_status store_list_trials(struct store *st, int64_t study_id, bool complete_only,
				     const struct expr *where, struct store_trial **out, int *n)
{
	sqlite3_stmt *stmt = NULL, *q;
	struct store_trial *list = NULL;
	int count = 0, cap = 0;
	*out = NULL;
	*n = 0;
	char prefix[512];
	snprintf(prefix, sizeof prefix,
		 "SELECT " TRIAL_COLS " FROM trials WHERE study_id = ?1%s%s",
		 complete_only ? " AND state = 'complete'" : "",
		 where ? " AND id IN (SELECT trial_id FROM v_trials WHERE study_id = ?1" : "");
	enum presso_status s = prepare_with(st, prefix, where, where ? ") ORDER BY number"
								     : " ORDER BY number",
					    &stmt);
	if (s != PRESSO_OK)
		return s;
	/* q walks the rows of stmt, which is finalized at the end */
	for (q = stmt, s = stmt_start(st, &q, "listing trials", "i", study_id); q;
	     s = stmt_next(st, &q, "listing trials")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			struct store_trial *nl = realloc(list, (size_t)cap * sizeof *nl);
			if (!nl) {
				s = nomem(st);
				break;
			}
			list = nl;
		}
		if ((s = read_trial(st, q, &list[count])) != PRESSO_OK)
			break;
		count++;
	}
	sqlite3_finalize(stmt);
	if (s != PRESSO_OK) {
		store_trials_free(list, count);
		return s;
	}
	*out = list;
	*n = count;
	return PRESSO_OK;
}

enum presso_status store_pick(struct store *st, int64_t study_id, const struct expr_pick *pick,
			      int64_t *number, bool *found)
{
	sqlite3_stmt *stmt = NULL, *q;
	*found = false;
	const char *col = expr_metric_name(pick->metric);
	char prefix[256], suffix[128];
	/* col is from expr's whitelist, never from the user's text */
	snprintf(prefix, sizeof prefix,
		 "SELECT trial FROM v_trials WHERE study_id = ?1 AND state = 'complete' AND "
		 "%s IS NOT NULL",
		 col);
	snprintf(suffix, sizeof suffix, " ORDER BY %s %s, trial LIMIT 1", col,
		 pick->maximize ? "DESC" : "ASC");
	enum presso_status s = prepare_with(st, prefix, pick->where, suffix, &stmt);
	if (s != PRESSO_OK)
		return s;
	q = stmt;
	if ((s = stmt_start(st, &q, "picking a trial", "i", study_id)) == PRESSO_OK && q) {
		*number = sqlite3_column_int64(q, 0);
		*found = true;
	}
	sqlite3_finalize(stmt);
	return s;
}

/* x rounded to 9 decimals as SQLite's round(x, 9) does (print, then read), so
 * that a drop of 16.01 - 15.01 compares equal to 1 here as in v_trials. */
static double round_9(double x)
{
	char buf[64];
	if (!isfinite(x))
		return x;
	snprintf(buf, sizeof buf, "%.9f", x);
	return strtod(buf, NULL);
}

void store_expr_values(const struct trial_metrics *m, const struct baseline *b, int64_t number,
		       double v[EXPR_METRIC_COUNT])
{
	double size = m->size_bytes > 0 ? (double)m->size_bytes : NAN;
	v[EXPR_ACCURACY] = m->accuracy;
	v[EXPR_TEST_ACCURACY] = m->test_accuracy;
	v[EXPR_ACCURACY_DROP] = round_9(b->accuracy - m->accuracy);
	v[EXPR_SIZE_BYTES] = size;
	v[EXPR_SIZE_KB] = size / 1024.0;
	v[EXPR_SIZE_MB] = size / 1048576.0;
	v[EXPR_RATIO] = (double)b->size_bytes / size;
	v[EXPR_BOPS] = m->bops;
	v[EXPR_LATENCY_US] = m->latency_us;
	v[EXPR_LATENCY_MS] = m->latency_us / 1000.0;
	v[EXPR_MEAN_BITS] = m->mean_bits;
	v[EXPR_MEAN_PRUNE] = m->mean_prune;
	v[EXPR_MEAN_RANK] = m->mean_rank;
	v[EXPR_TRIAL] = (double)number;
}

/* --- Pareto --------------------------------------------------------------- */

static const struct {
	const char *name;
	enum pareto_dir dir;
} objective_table[OBJ_COUNT] = {
	[OBJ_ACCURACY] = {"accuracy", PARETO_MAXIMIZE},
	[OBJ_SIZE] = {"size", PARETO_MINIMIZE},
	[OBJ_BOPS] = {"bops", PARETO_MINIMIZE},
	[OBJ_LATENCY] = {"latency", PARETO_MINIMIZE},
};
_Static_assert(sizeof objective_table / sizeof objective_table[0] == OBJ_COUNT,
	       "every objective needs a row");

const char *store_objective_name(enum store_objective o)
{
	return (unsigned)o < OBJ_COUNT ? objective_table[o].name : "?";
}

enum pareto_dir store_objective_dir(enum store_objective o)
{
	return objective_table[o].dir;
}

enum presso_status store_parse_objectives(const char *list, enum store_objective *objs,
					  int *n_objs)
{
	static const struct {
		const char *name;
		enum store_objective o;
	} names[] = {
		{"accuracy", OBJ_ACCURACY}, {"acc", OBJ_ACCURACY},       {"size", OBJ_SIZE},
		{"size_bytes", OBJ_SIZE},   {"bops", OBJ_BOPS},           {"latency", OBJ_LATENCY},
		{"latency_us", OBJ_LATENCY},
	};
	*n_objs = 0;
	const char *p = list ? list : "";
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int k = -1;
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == len && strncmp(names[i].name, p, len) == 0)
				k = (int)names[i].o;
		if (k < 0)
			return status_fail(PRESSO_E_USAGE,
					   "--objectives: unknown objective '%.*s' (known: accuracy, "
					   "size, bops, latency)",
					   (int)(len < 40 ? len : 40), p);
		for (int j = 0; j < *n_objs; j++)
			if (objs[j] == (enum store_objective)k)
				return status_fail(PRESSO_E_USAGE,
						   "--objectives: '%s' is listed twice",
						   objective_table[k].name);
		if (*n_objs == PARETO_MAX_OBJECTIVES)
			return status_fail(PRESSO_E_USAGE, "--objectives: at most %d",
					   PARETO_MAX_OBJECTIVES);
		objs[(*n_objs)++] = (enum store_objective)k;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (*n_objs < 2)
		return status_fail(PRESSO_E_USAGE,
				   "--objectives: a front needs at least two objectives (e.g. "
				   "accuracy,size)");
	return PRESSO_OK;
}

static double objective_value(const struct store_trial *t, enum store_objective o)
{
	switch (o) {
	case OBJ_ACCURACY:
		return t->metrics.accuracy;
	case OBJ_SIZE:
		return t->metrics.size_bytes > 0 ? (double)t->metrics.size_bytes : NAN;
	case OBJ_BOPS:
		return t->metrics.bops;
	case OBJ_LATENCY:
		return t->metrics.latency_us;
	case OBJ_COUNT:
		break;
	}
	return NAN;
}

void store_pareto_result_free(struct pareto_result *r)
{
	if (!r)
		return;
	store_trials_free(r->front, r->n_front);
	memset(r, 0, sizeof *r);
}

struct front_key {
	double key; /* first objective, negated when maximised: ascending = best first */
	int64_t number;
	int index;
};

static int by_front_key(const void *pa, const void *pb)
{
	const struct front_key *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return (a->number > b->number) - (a->number < b->number);
}

enum presso_status store_pareto(struct store *st, int64_t study_id,
				const enum store_objective *objs, int n_objs,
				const struct expr *where, struct pareto_result *out)
{
	struct store_trial *all = NULL;
	int n_all = 0, n_pts = 0, n_front = 0;
	double *pts = NULL;
	int *which = NULL, *front = NULL;
	struct front_key *keys = NULL;
	struct study_info info = {0};
	enum pareto_dir dir[PARETO_MAX_OBJECTIVES];
	memset(out, 0, sizeof *out);
	if (n_objs < 1 || n_objs > PARETO_MAX_OBJECTIVES)
		return status_fail(PRESSO_E_USAGE, "a front needs 1 to %d objectives",
				   PARETO_MAX_OBJECTIVES);
	enum presso_status s = study_by_id(st, study_id, &info);
	if (s != PRESSO_OK)
		return s;
	if ((s = store_list_trials(st, study_id, true, where, &all, &n_all)) != PRESSO_OK)
		goto fail;
	size_t n_alloc = n_all ? (size_t)n_all : 1;
	pts = malloc(n_alloc * (size_t)n_objs * sizeof *pts);
	which = malloc(n_alloc * sizeof *which);
	front = malloc(n_alloc * sizeof *front);
	keys = malloc(n_alloc * sizeof *keys);
	if (!pts || !which || !front || !keys) {
		s = nomem(st);
		goto fail;
	}
	for (int k = 0; k < n_objs; k++)
		dir[k] = objective_table[objs[k]].dir;
	/* trials missing an objective (latency not measured) cannot be placed */
	for (int i = 0; i < n_all; i++) {
		bool ok = true;
		for (int k = 0; k < n_objs; k++) {
			pts[n_pts * n_objs + k] = objective_value(&all[i], objs[k]);
			ok &= !isnan(pts[n_pts * n_objs + k]);
		}
		if (ok)
			which[n_pts++] = i;
	}
	if ((s = pareto_front(pts, n_pts, n_objs, dir, front, &n_front)) != PRESSO_OK)
		goto fail;
	out->n_candidates = n_pts;
	/* reference and ideal points; the hypervolume is of the front */
	bool ref_ok = true;
	double box = 1;
	for (int k = 0; k < n_objs; k++) {
		const struct baseline *b = &info.baseline;
		switch (objs[k]) {
		case OBJ_ACCURACY:
			out->ref[k] = 100.0 / b->n_classes;
			out->ideal[k] = 100.0;
			break;
		case OBJ_SIZE:
			out->ref[k] = (double)b->size_bytes;
			break;
		case OBJ_BOPS:
			out->ref[k] = b->bops;
			break;
		case OBJ_LATENCY:
			out->ref[k] = b->latency_us;
			break;
		case OBJ_COUNT:
			break;
		}
		ref_ok &= !isnan(out->ref[k]);
		box *= fabs(out->ideal[k] - out->ref[k]);
	}
	if (ref_ok && n_objs <= 3) {
		double *fp = malloc((size_t)(n_front ? n_front : 1) * (size_t)n_objs * sizeof *fp);
		if (!fp) {
			s = nomem(st);
			goto fail;
		}
		for (int j = 0; j < n_front; j++)
			memcpy(&fp[j * n_objs], &pts[front[j] * n_objs], (size_t)n_objs * sizeof *fp);
		s = pareto_hypervolume(fp, n_front, n_objs, dir, out->ref, &out->hypervolume);
		free(fp);
		if (s != PRESSO_OK)
			goto fail;
		out->has_hypervolume = true;
		out->hypervolume_ratio = box > 0 ? out->hypervolume / box : NAN;
	}
	/* the front, best first by the first objective; move the trials out of all[] */
	for (int j = 0; j < n_front; j++) {
		double v = pts[front[j] * n_objs];
		keys[j] = (struct front_key){dir[0] == PARETO_MAXIMIZE ? -v : v,
					     all[which[front[j]]].number, which[front[j]]};
	}
	qsort(keys, (size_t)n_front, sizeof *keys, by_front_key);
	out->front = malloc((size_t)(n_front ? n_front : 1) * sizeof *out->front);
	if (!out->front) {
		s = nomem(st);
		goto fail;
	}
	for (int j = 0; j < n_front; j++) {
		out->front[j] = all[keys[j].index];
		memset(&all[keys[j].index], 0, sizeof all[0]);
	}
	out->n_front = n_front;
fail:
	if (s != PRESSO_OK)
		store_pareto_result_free(out);
	store_trials_free(all, n_all);
	free(keys);
	free(front);
	free(which);
	free(pts);
	store_study_info_free(&info);
	return s;
}

/* --- summaries ------------------------------------------------------------ */

void store_study_summaries_free(struct study_summary *s, int n)
{
	if (!s)
		return;
	for (int i = 0; i < n; i++)
		store_study_info_free(&s[i].info);
	free(s);
}

static enum presso_status summarize(struct store *st, struct study_summary *sum)
{
	const char *what = "summarizing a study";
	sqlite3_stmt *q;
	struct resume_info ri;
	int64_t id = sum->info.id;
	enum presso_status s = store_resume_info(st, id, &ri);
	if (s != PRESSO_OK)
		return s;
	sum->n_running = ri.n_running;
	sum->n_complete = ri.n_complete;
	sum->n_failed = ri.n_failed;
	sum->best_accuracy = NAN;
	sum->small_size_bytes = -1;
	if ((s = stmt_query(st, &q, STMT_BEST_ACCURACY, what, "i", id)) != PRESSO_OK)
		return s;
	if (q) {
		sum->best_accuracy_trial = sqlite3_column_int64(q, 0);
		sum->best_accuracy = sqlite3_column_double(q, 1);
	}
	stmt_finish(q);
	/* the same rounding tolerance as accuracy_drop in v_trials */
	double near_fp32 = sum->info.baseline.accuracy - STORE_NEAR_FP32_POINTS - 1e-9;
	if ((s = stmt_query(st, &q, STMT_SMALLEST_NEAR_FP32, what, "if", id, near_fp32)) !=
	    PRESSO_OK)
		return s;
	if (q) {
		sum->small_trial = sqlite3_column_int64(q, 0);
		sum->small_size_bytes = sqlite3_column_int64(q, 1);
	}
	stmt_finish(q);
	if ((s = stmt_query(st, &q, STMT_LAST_ACTIVITY, what, "i", id)) != PRESSO_OK)
		return s;
	double last = q ? col_f64(q, 0) : NAN;
	stmt_finish(q);
	sum->last_activity = sum->info.created_at;
	if (last > sum->last_activity)
		sum->last_activity = last;
	if (sum->info.finished_at > sum->last_activity)
		sum->last_activity = sum->info.finished_at;
	const enum store_objective objs[2] = {OBJ_ACCURACY, OBJ_SIZE};
	struct pareto_result pr;
	if ((s = store_pareto(st, id, objs, 2, NULL, &pr)) != PRESSO_OK)
		return s;
	sum->n_front = pr.n_front;
	store_pareto_result_free(&pr);
	return PRESSO_OK;
}

enum presso_status store_list_studies(struct store *st, struct study_summary **out, int *n)
{
	sqlite3_stmt *q;
	struct study_summary *list = NULL;
	int count = 0, cap = 0;
	*out = NULL;
	*n = 0;
	/* names first (one statement at a time), then each study in turn */
	enum presso_status s;
	char **names = NULL;
	for (s = stmt_query(st, &q, STMT_STUDY_NAMES, "listing studies", ""); q;
	     s = stmt_next(st, &q, "listing studies")) {
		if (count == cap) {
			cap = cap ? 2 * cap : 8;
			char **nn = realloc(names, (size_t)cap * sizeof *nn);
			if (!nn) {
				s = nomem(st);
				break;
			}
			names = nn;
		}
		bool oom = false;
		names[count] = col_dup(q, 0, &oom);
		if (oom) {
			s = nomem(st);
			break;
		}
		count++;
	}
	stmt_finish(q);
	if (s == PRESSO_OK && count && !(list = calloc((size_t)count, sizeof *list)))
		s = nomem(st);
	for (int i = 0; s == PRESSO_OK && i < count; i++) {
		bool found = false;
		s = study_by_name(st, names[i], &list[i].info, &found);
		if (s == PRESSO_OK && found)
			s = summarize(st, &list[i]);
	}
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	if (s != PRESSO_OK) {
		store_study_summaries_free(list, count);
		return s;
	}
	*out = list;
	*n = count;
	return PRESSO_OK;
}

/* --- after the search: the front's re-check, abandoned trials -------------- */

/* Sets one metric of a complete trial (stmt binds value, study, number). */
static enum presso_status set_metric(struct store *st, enum stmt id, int64_t study_id,
				     int64_t number, double value, const char *what)
{
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, id, what, "fii", value, study_id, number);
	if (s != PRESSO_OK)
		return s;
	if (sqlite3_changes(st->db) != 1)
		return status_fail(PRESSO_E_RUNTIME, "%s: trial %lld is not a complete trial of the study",
				   st->path, (long long)number);
	return PRESSO_OK;
}

enum presso_status store_set_test_accuracy(struct store *st, int64_t study_id, int64_t number,
					   double test_accuracy)
{
	if (!(test_accuracy >= 0 && test_accuracy <= 100))
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad test_accuracy %g (percent)",
				   st->path, (long long)number, test_accuracy);
	return set_metric(st, STMT_SET_TEST_ACCURACY, study_id, number, test_accuracy,
			  "storing a test accuracy");
}

enum presso_status store_set_latency(struct store *st, int64_t study_id, int64_t number,
				     double latency_us)
{
	if (!(latency_us >= 0 && isfinite(latency_us)))
		return status_fail(PRESSO_E_CONFIG, "%s: trial %lld: bad latency_us %g", st->path,
				   (long long)number, latency_us);
	return set_metric(st, STMT_SET_LATENCY, study_id, number, latency_us,
			  "storing a latency");
}

enum presso_status store_abandon_trials(struct store *st, int64_t study_id, const char *reason,
					int *n_marked)
{
	if (n_marked)
		*n_marked = 0;
	enum presso_status s = writable(st);
	if (s == PRESSO_OK)
		s = stmt_run(st, STMT_ABANDON, "abandoning running trials", "fti", now_s(),
			     reason && *reason ? reason : "abandoned", study_id);
	if (s != PRESSO_OK)
		return s;
	if (n_marked)
		*n_marked = sqlite3_changes(st->db);
	return PRESSO_OK;
}
