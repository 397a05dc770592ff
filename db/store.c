/* store.c - the SQLite store (API in store.h, tables in db/schema.sql, every
 * column documented in db/README.md): opening, the connection, the schema's
 * migrations, the statements and transactions. Studies and trial state
 * changes are in store_trials.c, the queries that read them back in
 * store_query.c; what the three share is in store_internal.h.
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
 * place when complete, so the path never names a half-made database. Before
 * every write a writer checks that the path still names the file it opened
 * (device and inode, one stat): a database deleted, moved or replaced while a
 * search runs stops it at its next commit (check_file).
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
 * stmt_run() or stmt_query() with a type string for the values (the letters
 * are listed in store_internal.h). The only SQL composed at run time
 * (store_query.c) appends an expression's fragment (whitelisted column
 * names, operators and `?`, see expr.h) to a constant prefix; its values are
 * bound like every other value. Nothing from a user is pasted.
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
#include "db/store_internal.h"

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

/* The SQL of each enum stmt (store_internal.h). */

/* a lost trial: failed because its worker stopped heartbeating */
#define NOT_LOST "NOT (state = 'failed' AND lost = 1)"
/* a PTQ trial, as the search made it (fine-tuned rows name their parent) */
#define PTQ "parent_trial IS NULL"
/* scored on the whole validation split (schema 3: not a low-fidelity screen) */
#define FULL "fidelity = 'full'"

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
		"mean_bits = ?, mean_prune = ?, mean_rank = ?, n_images = ?, fidelity = ?, "
		"low_accuracy = ?, low_n_images = ? WHERE id = ? AND state = 'running'",
	[STMT_LAYER_INSERT] =
		"INSERT INTO trial_layers (trial_id, idx, layer, bits, act_bits, bias_correction, "
		"prune, prune_kind, rank) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[STMT_FAIL] = "UPDATE trials SET state = 'failed', ended_at = ?, error = ?, lost = 0 "
		      "WHERE id = ? AND state = 'running'",
	[STMT_MARK_LOST] = "UPDATE trials SET state = 'failed', lost = 1, ended_at = ?, error = ? "
			   "WHERE study_id = ? AND state = 'running' AND heartbeat_at <= ?",
	[STMT_REQUEUE_LIST] =
		"SELECT t.number, t.policy_json, t.policy_sha256 FROM trials t "
		"WHERE t.study_id = ?1 AND t.state = 'failed' AND t.lost = 1 AND "
		"t.parent_trial IS NULL AND NOT EXISTS "
		"(SELECT 1 FROM trials u WHERE u.study_id = ?1 AND u.parent_trial IS NULL AND "
		"u.policy_sha256 = t.policy_sha256 AND u.number > t.number) ORDER BY t.number",
	[STMT_HAS_POLICY] = "SELECT EXISTS (SELECT 1 FROM trials WHERE study_id = ? AND "
			    "policy_sha256 = ? AND parent_trial IS NULL AND " NOT_LOST ")",
	[STMT_HASHES] = "SELECT DISTINCT policy_sha256 FROM trials WHERE study_id = ? AND "
			"parent_trial IS NULL AND " NOT_LOST " ORDER BY policy_sha256",
	/* the numbers go on across both kinds; the counts are of PTQ trials */
	[STMT_COUNTS] = "SELECT coalesce(max(number), 0) + 1, "
			"coalesce(sum(state = 'running' AND " PTQ "), 0), "
			"coalesce(sum(state = 'complete' AND " PTQ "), 0), "
			"coalesce(sum(state = 'failed' AND " PTQ "), 0), "
			"coalesce(sum(lost AND " PTQ "), 0), "
			"coalesce(sum(state = 'complete' AND NOT " PTQ "), 0) "
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
			       "state = 'complete' AND " FULL " ORDER BY accuracy DESC, number "
			       "LIMIT 1",
	[STMT_SMALLEST_NEAR_FP32] =
		"SELECT number, size_bytes FROM trials WHERE study_id = ? AND state = 'complete' "
		"AND " FULL " AND accuracy >= ? ORDER BY size_bytes, number LIMIT 1",
	[STMT_LAST_ACTIVITY] =
		"SELECT max(coalesce(max(started_at), 0), coalesce(max(heartbeat_at), 0), "
		"coalesce(max(ended_at), 0)) FROM trials WHERE study_id = ?",
	[STMT_SET_TEST_ACCURACY] = "UPDATE trials SET test_accuracy = ? "
				   "WHERE study_id = ? AND number = ? AND state = 'complete'",
	[STMT_SET_RESCORED] = "UPDATE trials SET valid_accuracy = coalesce(valid_accuracy, "
			      "accuracy), accuracy = ?, n_images = ? WHERE study_id = ? AND "
			      "number = ? AND state = 'complete' AND " FULL,
	[STMT_SET_LATENCY] = "UPDATE trials SET latency_us = ? "
			     "WHERE study_id = ? AND number = ? AND state = 'complete'",
	[STMT_ABANDON] = "UPDATE trials SET state = 'failed', lost = 1, ended_at = ?, error = ? "
			 "WHERE study_id = ? AND state = 'running'",
	[STMT_TUNED_INSERT] =
		"INSERT INTO trials (study_id, number, state, policy_json, policy_sha256, worker, "
		"started_at, heartbeat_at, ended_at, accuracy, test_accuracy, size_bytes, bops, "
		"latency_us, mean_bits, mean_prune, mean_rank, parent_trial, n_images, "
		"valid_accuracy) "
		"VALUES (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[STMT_FINETUNE_INSERT] =
		"INSERT INTO finetunes (trial_id, source, settings_json, steps, epochs, lr, kd_weight, "
		"temperature, train_seconds, images_per_s, model, model_sha256) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[STMT_FINETUNE_GET] =
		"SELECT f.source, f.settings_json, f.steps, f.epochs, f.lr, f.kd_weight, "
		"f.temperature, f.train_seconds, f.images_per_s, f.model_sha256, length(f.model), "
		"t.parent_trial FROM finetunes f JOIN trials t ON t.id = f.trial_id "
		"WHERE t.study_id = ? AND t.number = ?",
	[STMT_FINETUNE_MODEL] =
		"SELECT f.model FROM finetunes f JOIN trials t ON t.id = f.trial_id "
		"WHERE t.study_id = ? AND t.number = ?",
	[STMT_TUNED_PARENTS] =
		"SELECT DISTINCT parent_trial FROM trials WHERE study_id = ? AND "
		"parent_trial IS NOT NULL AND state = 'complete' ORDER BY parent_trial",
};
_Static_assert(sizeof sql_text / sizeof sql_text[0] == STMT_COUNT, "every statement needs SQL");

/* --- statement helpers (contracts, type letters: store_internal.h) -------- */

enum presso_status db_fail(const struct store *st, int rc, const char *what)
{
	enum presso_status s = PRESSO_E_RUNTIME;
	const char *hint = "";
	char busy[160];
	const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(busy, sizeof busy,
			 " (another process kept the database locked for longer than the busy "
			 "timeout, %d ms; %s sets it)",
			 st->busy_timeout_ms, STORE_BUSY_TIMEOUT_ENV);
		hint = busy;
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
		/* a full disk is not the input's fault: exit 1, and resume later */
		s = PRESSO_E_SYSTEM;
		hint = " (the disk or quota is full: make room, then resume)";
		break;
	case SQLITE_IOERR:
		s = PRESSO_E_SYSTEM;
		break;
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

/* The status of an SQLite result code from opening or setting up a
 * connection, when it is not the input's fault: fallback otherwise. */
static enum presso_status rc_status(int rc, enum presso_status fallback)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return PRESSO_E_NOMEM;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		return PRESSO_E_SYSTEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return PRESSO_E_RUNTIME;
	default:
		return fallback;
	}
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

/* Binds the values in ap to parameters 1, 2, ... of q as types says (the
 * letters are listed in store_internal.h); the first failure stops it and is
 * returned. */
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

void stmt_finish(sqlite3_stmt *q)
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

enum presso_status stmt_next(struct store *st, sqlite3_stmt **q, const char *what)
{
	return settle(st, q, sqlite3_step(*q), what);
}

enum presso_status stmt_query(struct store *st, sqlite3_stmt **q, enum stmt id, const char *what,
			      const char *types, ...)
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

enum presso_status stmt_start(struct store *st, sqlite3_stmt **q, const char *what,
			      const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	enum presso_status s = vstart(st, q, what, types, ap);
	va_end(ap);
	return s;
}

/* Fails (PRESSO_E_RUNTIME, naming the file) when st->path no longer names the
 * file the store opened: deleted, or moved and maybe replaced since. Checked
 * before every write (tx_begin, and stmt_run outside a transaction), so a
 * search stops at its next commit instead of writing its results into a file
 * nobody can open again. One stat() per call.
 *
 * Before failing it checkpoints the WAL into the file it has open and
 * truncates it: SQLite leaves the -wal of a moved database where it was, and
 * would replay it into the next database created at the path, corrupting
 * it; and a moved database keeps everything that was committed. */
static enum presso_status check_file(struct store *st)
{
	if (!st->has_id)
		return PRESSO_OK;
	struct stat sb;
	bool gone = stat(st->path, &sb) != 0;
	if (gone && errno != ENOENT)
		return PRESSO_OK; /* SQLite will say what is wrong */
	if (!gone && (unsigned long long)sb.st_dev == st->file_dev &&
	    (unsigned long long)sb.st_ino == st->file_ino)
		return PRESSO_OK;
	sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (gone)
		return status_fail(PRESSO_E_RUNTIME,
				   "%s: the database file was removed (deleted or moved away) while "
				   "presso had it open; stopping rather than writing results nobody "
				   "would find (if it was moved, what was committed is in it)",
				   st->path);
	return status_fail(PRESSO_E_RUNTIME,
			   "%s: now names another file than the database presso opened (it was "
			   "moved or replaced); stopping rather than writing results nobody "
			   "would find (what was committed is in the file that was moved)",
			   st->path);
}

enum presso_status stmt_run(struct store *st, enum stmt id, const char *what, const char *types,
			    ...)
{
	sqlite3_stmt *q = NULL;
	enum presso_status s = prep(st, id, &q);
	if (s != PRESSO_OK)
		return s;
	PRESSO_CHECK(strlen(types) == (size_t)sqlite3_bind_parameter_count(q));
	/* a write of its own (outside a transaction, which tx_begin checked) */
	if (sqlite3_get_autocommit(st->db) && !sqlite3_stmt_readonly(q) &&
	    (s = check_file(st)) != PRESSO_OK)
		return s;
	va_list ap;
	va_start(ap, types);
	s = vstart(st, &q, what, types, ap);
	va_end(ap);
	stmt_finish(q);
	return s;
}

/* --- transactions --------------------------------------------------------- */

enum presso_status tx_begin(struct store *st)
{
	enum presso_status s = check_file(st);
	return s != PRESSO_OK ? s : stmt_run(st, STMT_BEGIN, "starting a transaction", "");
}

enum presso_status tx_end(struct store *st, enum presso_status s)
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
			s = status_fail(rc_status(rc, PRESSO_E_FORMAT),
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

/* STORE_BUSY_TIMEOUT_MS, or PRESSO_BUSY_TIMEOUT_MS from the environment. */
static enum presso_status busy_timeout(int *ms)
{
	*ms = STORE_BUSY_TIMEOUT_MS;
	const char *env = getenv(STORE_BUSY_TIMEOUT_ENV);
	if (!env || !*env)
		return PRESSO_OK;
	char *end;
	errno = 0;
	long v = strtol(env, &end, 10);
	if (errno || *end || v < 0 || v > STORE_BUSY_TIMEOUT_MAX_MS)
		return status_fail(PRESSO_E_USAGE,
				   "%s: expected milliseconds in 0..%d, got '%s'",
				   STORE_BUSY_TIMEOUT_ENV, STORE_BUSY_TIMEOUT_MAX_MS, env);
	*ms = (int)v;
	return PRESSO_OK;
}

/* wilson_bound(accuracy, n_images, z): the SQL side of `at C%` comparisons
 * (expr.h), NULL when any argument is NULL or the bound is not defined. */
static void sql_wilson_bound(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	for (int i = 0; i < argc; i++)
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
			sqlite3_result_null(ctx);
			return;
		}
	double bound = expr_accuracy_bound(sqlite3_value_double(argv[0]),
					   sqlite3_value_double(argv[1]),
					   sqlite3_value_double(argv[2]));
	if (isnan(bound))
		sqlite3_result_null(ctx);
	else
		sqlite3_result_double(ctx, bound);
}

static enum presso_status db_connect(struct store *st, int flags, const char *name)
{
	int rc = sqlite3_open_v2(name, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		enum presso_status s = status_fail(
			rc_status(rc, PRESSO_E_IO), "%s: cannot open: %s", st->path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		sqlite3_close(st->db);
		st->db = NULL;
		return s;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, st->busy_timeout_ms);
	rc = sqlite3_create_function(st->db, EXPR_SQL_BOUND_FUNCTION, 3,
				     SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				     sql_wilson_bound, NULL, NULL);
	if (rc != SQLITE_OK) {
		enum presso_status s = status_fail(rc_status(rc, PRESSO_E_IO),
						   "%s: cannot register a SQL function: %s",
						   st->path, sqlite3_errmsg(st->db));
		sqlite3_close(st->db);
		st->db = NULL;
		return s;
	}
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
	char *tmp = malloc(2 * n + 8), *side = tmp + n; /* side: tmp's -wal and -shm */
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
		enum presso_status s = status_fail(status_from_errno(errno), "%s: cannot create: %s",
						   path, strerror(errno));
		free(tmp);
		return s;
	}
	close(fd);
	struct store *st;
	enum presso_status s = store_open(tmp, STORE_CREATE, &st);
	/* all of it into the file itself: its -wal is named after tmp and would
	 * not follow it into place (SQLite's checkpoint on close, which would do
	 * it, gives up quietly when it cannot allocate) */
	int rc = s == PRESSO_OK ? sqlite3_wal_checkpoint_v2(st->db, NULL,
							    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL)
				: SQLITE_OK;
	if (rc != SQLITE_OK)
		s = db_fail(st, rc, "writing the new database");
	store_close(st);
	if (s == PRESSO_OK && link(tmp, path) != 0 && errno != EEXIST) {
		/* no hard links here (some network and FUSE file systems) */
		struct stat sb;
		if (stat(path, &sb) != 0 && rename(tmp, path) != 0)
			s = status_fail(status_from_errno(errno), "%s: cannot create: %s", path,
					strerror(errno));
	}
	unlink(tmp);
	static const char *const sides[] = {"-wal", "-shm"};
	size_t len = strlen(tmp);
	memcpy(side, tmp, len);
	for (int i = 0; i < 2; i++) {
		memcpy(side + len, sides[i], 5);
		unlink(side);
	}
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
			return status_fail(status_from_errno(errno), "%s: %s%s", path, strerror(errno),
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
	if ((s = busy_timeout(&st->busy_timeout_ms)) != PRESSO_OK)
		goto fail;
	int oflags = ro ? SQLITE_OPEN_READONLY
			: SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	if ((s = db_connect(st, oflags, path)) != PRESSO_OK)
		goto fail;
	/* what check_file compares with before every write */
	if (!ro && stat(path, &sb) == 0) {
		st->has_id = true;
		st->file_dev = (unsigned long long)sb.st_dev;
		st->file_ino = (unsigned long long)sb.st_ino;
	}
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
		s = status_fail(rc_status(rc, PRESSO_E_IO), "%s: setting up the connection: %s", path,
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
