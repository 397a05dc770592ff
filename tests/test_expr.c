/* test_expr.c - the --where / --pick language (db/expr.c): the SQL it emits
 * with its bound values, units, precedence, agreement of expr_eval() with
 * SQLite's own evaluation of the emitted SQL (NULLs included), and every kind
 * of error with the column it points at.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/expr.h"
#include "base/stats.h"

/* z of the one-sided bounds the tests ask for */
#define Z95 1.6448536269514715
#define Z99 2.3263478740408408

/* Parses text and checks the emitted SQL and values. */
static void sql_is(const char *text, const char *want_sql, int n_want, const double *want)
{
	struct expr *e;
	cr_assert_eq(expr_parse(text, "--where", &e), PRESSO_OK, "%s: %s", text, status_msg());
	char *sql;
	double *params;
	int n;
	cr_assert_eq(expr_sql(e, &sql, &params, &n), PRESSO_OK);
	cr_assert_str_eq(sql, want_sql, "%s", text);
	cr_assert_eq(n, n_want, "%s", text);
	for (int i = 0; i < n; i++)
		cr_assert_float_eq(params[i], want[i], 1e-12, "%s: value %d", text, i);
	free(sql);
	free(params);
	expr_free(e);
}

Test(expr, comparisons_and_sql)
{
	sql_is("accuracy >= 89.5 and size_kb <= 64", "((accuracy >= ?) AND (size_kb <= ?))", 2,
	       (double[]){89.5, 64});
	sql_is("trial = 3", "(trial = ?)", 1, (double[]){3});
	sql_is("trial == 3 or trial != 4 or trial <> 5",
	       "((trial = ?) OR (trial != ?) OR (trial != ?))", 3, (double[]){3, 4, 5});
	sql_is("accuracy_drop <= -0.5", "(accuracy_drop <= ?)", 1, (double[]){-0.5});
	sql_is("ratio > +4", "(ratio > ?)", 1, (double[]){4});
	sql_is("mean_bits < .5e1", "(mean_bits < ?)", 1, (double[]){5});
	/* the number on the left: the operator turns round */
	sql_is("90 <= accuracy", "(accuracy >= ?)", 1, (double[]){90});
	sql_is("64 > size_kb", "(size_kb < ?)", 1, (double[]){64});
	/* keywords, names and units ignore case; aliases map to columns */
	sql_is("ACCURACY >= 1 AND Size <= 1KB", "((accuracy >= ?) AND (size_bytes <= ?))", 2,
	       (double[]){1, 1024});
	/* chains of one operator are flat; a change of operator nests */
	sql_is("trial = 1 or trial = 2 and trial = 3 or not (trial = 4 or trial = 5)",
	       "((trial = ?) OR ((trial = ?) AND (trial = ?)) OR (NOT ((trial = ?) OR (trial = ?))))",
	       5, (double[]){1, 2, 3, 4, 5});
	sql_is("bits_mean < 5 and prune_mean > 0.1 and rank_mean <= 1",
	       "((mean_bits < ?) AND (mean_prune > ?) AND (mean_rank <= ?))", 3,
	       (double[]){5, 0.1, 1});
}

Test(expr, units_convert_to_the_metric)
{
	sql_is("size <= 64kb", "(size_bytes <= ?)", 1, (double[]){65536});
	sql_is("size <= 64 kb", "(size_bytes <= ?)", 1, (double[]){65536});
	sql_is("size_kb <= 1mb", "(size_kb <= ?)", 1, (double[]){1024});
	sql_is("size_mb < 1.5 MiB", "(size_mb < ?)", 1, (double[]){1.5});
	sql_is("size_kb < 2048b", "(size_kb < ?)", 1, (double[]){2});
	sql_is("size_bytes <= 2 KiB", "(size_bytes <= ?)", 1, (double[]){2048});
	sql_is("latency <= 2ms", "(latency_us <= ?)", 1, (double[]){2000});
	sql_is("latency_ms < 500us", "(latency_ms < ?)", 1, (double[]){0.5});
	sql_is("latency_us < 1s", "(latency_us < ?)", 1, (double[]){1e6});
	sql_is("64kb >= size", "(size_bytes <= ?)", 1, (double[]){65536});
	/* without a unit a number is in the metric's own unit */
	sql_is("size_kb <= 64", "(size_kb <= ?)", 1, (double[]){64});
}

Test(expr, precedence_not_and_or)
{
	sql_is("trial = 1 or trial = 2 and trial = 3",
	       "((trial = ?) OR ((trial = ?) AND (trial = ?)))", 3, (double[]){1, 2, 3});
	sql_is("(trial = 1 or trial = 2) and trial = 3",
	       "(((trial = ?) OR (trial = ?)) AND (trial = ?))", 3, (double[]){1, 2, 3});
	sql_is("not trial = 1 and trial = 2", "((NOT (trial = ?)) AND (trial = ?))", 2,
	       (double[]){1, 2});
	sql_is("not not (trial = 1)", "(NOT (NOT (trial = ?)))", 1, (double[]){1});
	sql_is("size <= 64kb or (latency <= 2ms and bits_mean < 5)",
	       "((size_bytes <= ?) OR ((latency_us <= ?) AND (mean_bits < ?)))", 3,
	       (double[]){65536, 2000, 5});
}

Test(expr, a_confidence_compares_the_accuracy_bound)
{
	/* the drop's upper bound: the point drop plus accuracy minus its lower bound */
	sql_is("accuracy_drop <= 1 at 95%",
	       "(accuracy_drop + accuracy - wilson_bound(accuracy, n_images, ?) <= ?)", 2,
	       (double[]){-Z95, 1});
	sql_is("accuracy >= 90 at 99%", "(wilson_bound(accuracy, n_images, ?) >= ?)", 2,
	       (double[]){-Z99, 90});
	/* turned round, the same bound; `<` asks for the upper bound */
	sql_is("90 <= accuracy at 95 %", "(wilson_bound(accuracy, n_images, ?) >= ?)", 2,
	       (double[]){-Z95, 90});
	sql_is("accuracy < 95 AT 95%", "(wilson_bound(accuracy, n_images, ?) < ?)", 2,
	       (double[]){Z95, 95});
	sql_is("accuracy_drop > 2 at 95%",
	       "(accuracy_drop + accuracy - wilson_bound(accuracy, n_images, ?) > ?)", 2,
	       (double[]){Z95, 2});
	/* mixed with plain comparisons, values in order */
	sql_is("size_kb <= 64 and not accuracy_drop <= 1 at 95% or n_images >= 2000",
	       "(((size_kb <= ?) AND (NOT (accuracy_drop + accuracy - wilson_bound(accuracy, "
	       "n_images, ?) <= ?))) OR (n_images >= ?))",
	       4, (double[]){64, -Z95, 1, 2000});
}

Test(expr, a_confidence_in_eval)
{
	struct expr *e;
	cr_assert_eq(expr_parse("accuracy_drop <= 1 at 95%", "--where", &e), PRESSO_OK);
	double v[EXPR_METRIC_COUNT];
	for (int m = 0; m < EXPR_METRIC_COUNT; m++)
		v[m] = 1;
	/* FP32 91, trial 90.5 on 1,000 images: drop 0.5, but its 95 % upper bound
	 * is 0.5 + 90.5 - 88.86 = 2.14 */
	v[EXPR_ACCURACY] = 90.5;
	v[EXPR_ACCURACY_DROP] = 0.5;
	v[EXPR_N_IMAGES] = 1000;
	cr_assert(!expr_eval(e, v));
	/* on 1,000,000 images the bound is 0.05 wide: it holds */
	v[EXPR_N_IMAGES] = 1e6;
	cr_assert(expr_eval(e, v));
	/* the number of images not known: unknown, not selected (nor with not) */
	v[EXPR_N_IMAGES] = NAN;
	cr_assert(!expr_eval(e, v));
	expr_free(e);
	cr_assert_eq(expr_parse("not accuracy_drop <= 1 at 95%", "--where", &e), PRESSO_OK);
	cr_assert(!expr_eval(e, v));
	v[EXPR_N_IMAGES] = 1000;
	cr_assert(expr_eval(e, v));
	expr_free(e);
	/* the bound of the plain accuracy */
	cr_assert_eq(expr_parse("accuracy >= 88.8 at 95%", "--where", &e), PRESSO_OK);
	cr_assert_float_eq(expr_accuracy_bound(90.5, 1000, -Z95), 88.86371214662044, 1e-9);
	cr_assert(expr_eval(e, v));
	v[EXPR_N_IMAGES] = 900;
	cr_assert(!expr_eval(e, v));
	expr_free(e);
}

Test(expr, pick)
{
	struct expr_pick p;
	cr_assert_eq(expr_parse_pick("max accuracy where size_kb <= 64", "--pick", &p), PRESSO_OK);
	cr_assert(p.maximize);
	cr_assert_eq(p.metric, EXPR_ACCURACY);
	cr_assert_not_null(p.where);
	char *sql;
	double *v;
	int n;
	cr_assert_eq(expr_sql(p.where, &sql, &v, &n), PRESSO_OK);
	cr_assert_str_eq(sql, "(size_kb <= ?)");
	free(sql);
	free(v);
	expr_pick_free(&p);
	cr_assert_eq(expr_parse_pick("MIN size where accuracy_drop <= 1", "--pick", &p), PRESSO_OK);
	cr_assert(!p.maximize);
	cr_assert_eq(p.metric, EXPR_SIZE_BYTES);
	expr_pick_free(&p);
	cr_assert_eq(expr_parse_pick("min size_kb", "--pick", &p), PRESSO_OK);
	cr_assert_eq(p.metric, EXPR_SIZE_KB);
	cr_assert_null(p.where);
	expr_pick_free(&p);
	expr_pick_free(NULL);
	expr_free(NULL);
}

Test(expr, metric_names_are_columns)
{
	for (int m = 0; m < EXPR_METRIC_COUNT; m++) {
		enum expr_metric back;
		cr_assert(expr_metric_lookup(expr_metric_name((enum expr_metric)m), &back));
		cr_assert_eq((int)back, m);
	}
	enum expr_metric x;
	cr_assert(!expr_metric_lookup("accuracy; drop table trials", &x));
}

/* --- eval agrees with SQLite ------------------------------------------------ */

/* The bound function as the store registers it (db/store.c). */
static void wilson_bound(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	for (int i = 0; i < argc; i++)
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
			sqlite3_result_null(ctx);
			return;
		}
	double b = expr_accuracy_bound(sqlite3_value_double(argv[0]),
				       sqlite3_value_double(argv[1]),
				       sqlite3_value_double(argv[2]));
	if (isnan(b))
		sqlite3_result_null(ctx);
	else
		sqlite3_result_double(ctx, b);
}

static sqlite3 *rows_db(void)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	cr_assert_eq(sqlite3_create_function(db, EXPR_SQL_BOUND_FUNCTION, 3,
					     SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
					     wilson_bound, NULL, NULL),
		     SQLITE_OK);
	char sql[1024] = "CREATE TABLE t (";
	for (int m = 0; m < EXPR_METRIC_COUNT; m++) {
		strcat(sql, expr_metric_name((enum expr_metric)m));
		strcat(sql, m + 1 < EXPR_METRIC_COUNT ? " REAL, " : " REAL)");
	}
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sql);
	return db;
}

Test(expr, eval_agrees_with_sqlite)
{
	static const char *const exprs[] = {
		"accuracy >= 50",
		"not accuracy >= 50",
		"test_accuracy >= 4 or size_kb < 3",
		"not (test_accuracy >= 4 and size_kb < 3)",
		"not test_accuracy != 2",
		"(size <= 3kb or latency >= 1ms) and not (trial = 2 or mean_bits < 4)",
		"accuracy_drop <= -1 or ratio > 2 and bops != 0",
		"latency_ms < 1 and size_mb < 0.01 or not mean_rank = 1",
		"accuracy >= 30 at 95%",
		"not accuracy_drop <= 8 at 80% and n_images >= 1",
		"accuracy < 60 at 97.5% and n_images >= 2",
	};
	sqlite3 *db = rows_db();
	sqlite3_stmt *ins;
	char sql[1024] = "INSERT INTO t VALUES (?";
	for (int m = 1; m < EXPR_METRIC_COUNT; m++)
		strcat(sql, ", ?");
	strcat(sql, ")");
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &ins, NULL), SQLITE_OK);
	unsigned seed = 99;
	enum { N_ROWS = 300 };
	static double rows[N_ROWS][EXPR_METRIC_COUNT];
	for (int r = 0; r < N_ROWS; r++) {
		for (int m = 0; m < EXPR_METRIC_COUNT; m++) {
			seed = seed * 1103515245u + 12345u;
			unsigned x = (seed >> 16) % 110;
			/* small integers (ties with the constants) and ~10 % NULLs */
			double v = x >= 100 ? NAN : (double)(x % 7) * (m == EXPR_ACCURACY ? 17 : 1);
			if (m == EXPR_N_IMAGES && !isnan(v))
				v *= 5; /* up to 30 images: bounds that are not all 0 or 100 */
			if (m == EXPR_SIZE_KB || m == EXPR_SIZE_MB)
				v = isnan(v) ? v : v / (m == EXPR_SIZE_MB ? 1024.0 : 1.0);
			if (m == EXPR_TRIAL)
				v = r;
			rows[r][m] = v;
			if (isnan(v))
				sqlite3_bind_null(ins, m + 1);
			else
				sqlite3_bind_double(ins, m + 1, v);
		}
		cr_assert_eq(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	for (size_t k = 0; k < sizeof exprs / sizeof exprs[0]; k++) {
		struct expr *e;
		cr_assert_eq(expr_parse(exprs[k], "--where", &e), PRESSO_OK, "%s", status_msg());
		char *frag;
		double *v;
		int n;
		cr_assert_eq(expr_sql(e, &frag, &v, &n), PRESSO_OK);
		char q[1024];
		snprintf(q, sizeof q, "SELECT trial FROM t WHERE %s ORDER BY trial", frag);
		sqlite3_stmt *st;
		cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK, "%s: %s", q,
			     sqlite3_errmsg(db));
		for (int i = 0; i < n; i++)
			sqlite3_bind_double(st, i + 1, v[i]);
		bool in_sql[N_ROWS] = {false};
		while (sqlite3_step(st) == SQLITE_ROW)
			in_sql[sqlite3_column_int(st, 0)] = true;
		sqlite3_finalize(st);
		int n_true = 0;
		for (int r = 0; r < N_ROWS; r++) {
			bool mine = expr_eval(e, rows[r]);
			n_true += mine;
			cr_assert_eq(mine, in_sql[r], "'%s' on row %d: eval %d, SQLite %d", exprs[k], r,
				     mine, in_sql[r]);
		}
		cr_assert(n_true > 0 && n_true < N_ROWS, "'%s' should split the rows (%d true)",
			  exprs[k], n_true);
		free(frag);
		free(v);
		expr_free(e);
	}
	sqlite3_close(db);
}

/* --- errors ------------------------------------------------------------------ */

/* The expression fails with PRESSO_E_USAGE, the message holds `part`, and
 * "at column N" with the caret under column N. */
static void fails_at(const char *text, int column, const char *part)
{
	struct expr *e = (struct expr *)1;
	cr_assert_eq(expr_parse(text, "--where", &e), PRESSO_E_USAGE, "'%s' should fail", text);
	cr_assert_null(e);
	const char *msg = status_msg();
	char want[64];
	snprintf(want, sizeof want, "at column %d", column);
	cr_assert(strncmp(msg, "--where: ", 9) == 0, "%s", msg);
	cr_assert(strstr(msg, want), "'%s': expected '%s' in: %s", text, want, msg);
	cr_assert(strstr(msg, part), "'%s': expected '%s' in: %s", text, part, msg);
	/* the caret line: two spaces, column-1 spaces, ^ */
	const char *caret = strrchr(msg, '\n');
	cr_assert_not_null(caret, "%s", msg);
	cr_assert_eq((int)strlen(caret + 1), 2 + column, "caret under column %d: %s", column, msg);
	cr_assert_eq(caret[strlen(caret) - 1], '^');
}

Test(expr, errors_point_at_their_column)
{
	fails_at("acuracy >= 5", 1, "unknown metric 'acuracy'");
	fails_at("acuracy >= 5", 1, "(known: accuracy, test_accuracy, accuracy_drop");
	fails_at("accuracy >= 5 and", 18, "expected a metric or a number, got the end");
	fails_at("accuracy 5", 10, "expected a comparison");
	fails_at("accuracy >= 5kg", 14, "unknown unit 'kg'");
	fails_at("accuracy >= 5kb", 14, "unit 'kb' is a size but 'accuracy' is a plain number");
	fails_at("latency <= 5kb", 13, "unit 'kb' is a size but 'latency_us' is a time");
	fails_at("size < 3ms", 9, "is a time but 'size_bytes' is a size");
	fails_at("(accuracy >= 5", 15, "expected ')' to close the '(' at column 1");
	fails_at("accuracy >= 5)", 14, "')' without a matching '('");
	fails_at("accuracy >= size", 13, "a metric on one side and a number on the other");
	fails_at("5 >= 6", 3, "a metric on one side and a number on the other");
	fails_at("", 1, "empty expression");
	fails_at("   ", 4, "empty expression");
	fails_at("accuracy >= 5 @", 15, "unexpected character '@'");
	fails_at("accuracy >= 1e999", 13, "out of range");
	fails_at("accuracy >= 5 and and", 19, "got 'and'");
	fails_at("accuracy >= 5 trial = 1", 15, "expected 'and', 'or' or the end");
	fails_at("accuracy >= -", 14, "expected a number after the sign");
	fails_at("accuracy >= 'x'", 13, "unexpected character");
	/* confidences */
	fails_at("size_kb <= 64 at 95%", 15,
		 "'at' gives a confidence to accuracy and accuracy_drop only, not to 'size_kb'");
	fails_at("test_accuracy >= 90 at 95%", 21, "not to 'test_accuracy'");
	fails_at("accuracy = 90 at 95%", 15, "'at' needs a bound (<, <=, > or >=), not '='");
	fails_at("accuracy_drop != 1 at 95%", 20, "not '!='");
	fails_at("accuracy >= 90 at 95", 21, "expected '%' after the confidence (example: at 95%), got the end");
	fails_at("accuracy >= 90 at", 18, "expected a confidence in percent after 'at'");
	fails_at("accuracy >= 90 at x%", 19, "expected a confidence in percent after 'at' (example: at 95%), got 'x'");
	fails_at("accuracy >= 90 at 95kb%", 19, "expected a confidence in percent");
	fails_at("accuracy >= 90 at 100%", 19, "confidence 100% is not between 50% and 100%");
	fails_at("accuracy >= 90 at 50%", 19, "confidence 50% is not between");
	fails_at("accuracy >= 90 at -95%", 19, "expected a confidence in percent");
	fails_at("accuracy >= 90 at 95% at 99%", 23, "expected 'and', 'or' or the end, got 'at'");
	fails_at("at >= 5", 1, "expected a metric or a number, got 'at'");
	fails_at("accuracy >= 90 %", 16, "expected 'and', 'or' or the end, got '%'");
	char deep[200];
	memset(deep, '(', 100);
	strcpy(deep + 100, "trial = 1");
	fails_at(deep, 13, "nested deeper than 12");
}

static void pick_fails_at(const char *text, int column, const char *part)
{
	struct expr_pick p;
	cr_assert_eq(expr_parse_pick(text, "--pick", &p), PRESSO_E_USAGE, "'%s' should fail", text);
	cr_assert_null(p.where);
	char want[64];
	snprintf(want, sizeof want, "at column %d", column);
	cr_assert(strncmp(status_msg(), "--pick: ", 8) == 0, "%s", status_msg());
	cr_assert(strstr(status_msg(), want), "'%s': %s", text, status_msg());
	cr_assert(strstr(status_msg(), part), "'%s': %s", text, status_msg());
}

Test(expr, pick_errors)
{
	pick_fails_at("maximum accuracy", 1, "expected 'max' or 'min'");
	pick_fails_at("max", 4, "expected a metric after 'max'");
	pick_fails_at("min 5", 5, "expected a metric after 'min'");
	pick_fails_at("max accurcy", 5, "unknown metric 'accurcy'");
	pick_fails_at("max accuracy size_kb <= 5", 14, "expected 'where'");
	pick_fails_at("max accuracy where", 19, "empty expression");
	pick_fails_at("max accuracy where size_kb <= 5 and", 36, "got the end");
}

/* --- size bounds: what presso accepts, SQLite parses ---------------------- */

/* Prepares the expression's SQL against the rows table and checks SQLite and
 * expr_eval agree on the rows; false if SQLite refused the SQL. */
static bool sqlite_takes(sqlite3 *db, const struct expr *e)
{
	char *frag;
	double *v;
	int n;
	cr_assert_eq(expr_sql(e, &frag, &v, &n), PRESSO_OK);
	size_t qn = strlen(frag) + 64;
	char *q = malloc(qn);
	snprintf(q, qn, "SELECT count(*) FROM t WHERE %s", frag);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		for (int i = 0; i < n; i++)
			sqlite3_bind_double(st, i + 1, v[i]);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		double row[EXPR_METRIC_COUNT];
		for (int m = 0; m < EXPR_METRIC_COUNT; m++)
			row[m] = 1.0;
		cr_assert_eq(sqlite3_column_int(st, 0), expr_eval(e, row) ? 1 : 0, "%s", q);
	}
	sqlite3_finalize(st);
	free(q);
	free(frag);
	free(v);
	return rc == SQLITE_OK;
}

/* Appends to a growing text. */
static void cat(char *buf, size_t cap, const char *text)
{
	cr_assert(strlen(buf) + strlen(text) < cap);
	strcat(buf, text);
}

/* A hundred comparisons joined by `or` used to reach SQLite and fail there
 * with "parser stack overflow", blamed on the database file. */
Test(expr, a_long_chain_is_refused_by_its_size_and_the_longest_allowed_one_runs)
{
	sqlite3 *db = rows_db();
	cr_assert_eq(sqlite3_exec(db, "INSERT INTO t (accuracy, trial) VALUES (1, 1)", NULL, NULL,
				  NULL),
		     SQLITE_OK);
	static char text[8192];
	for (int n = 1; n <= 100; n++) {
		text[0] = '\0';
		for (int k = 0; k < n; k++)
			cat(text, sizeof text, k ? " or trial = 99" : "trial = 99");
		cat(text, sizeof text, n % 2 ? " or accuracy = 1" : " and accuracy = 1");
		struct expr *e = NULL;
		enum presso_status s = expr_parse(text, "--where", &e);
		if (n + 1 <= 64) {
			cr_assert_eq(s, PRESSO_OK, "%d comparisons: %s", n + 1, status_msg());
			cr_assert(sqlite_takes(db, e), "SQLite refused %d comparisons: %s", n + 1,
				  sqlite3_errmsg(db));
		} else {
			cr_assert_eq(s, PRESSO_E_USAGE, "%d comparisons should be refused", n + 1);
			cr_assert(strstr(status_msg(), "more than 64 comparisons"), "%s", status_msg());
			if (n == 64) { /* at the 65th comparison, the last */
				char want[64];
				snprintf(want, sizeof want, "at column %zu",
					 strlen(text) - strlen("accuracy = 1") + 1);
				cr_assert(strstr(status_msg(), want), "%s: %s", want, status_msg());
			}
		}
		expr_free(e);
	}
	sqlite3_close(db);
}

/* The deepest expression of each shape presso accepts is one SQLite parses. */
Test(expr, the_deepest_accepted_expressions_run_in_sqlite)
{
	static const char *const open_level[] = {
		"not ",                           /* not not not ... */
		"(",                              /* ((((...)))) */
		"not (",                          /* not (not (...)) */
		"accuracy = 1 and (",             /* x and (x and (...)) */
		"trial = 2 or not (accuracy = 1 and (", /* the deepest SQL per level */
	};
	static const char *const close_level[] = {"", ")", ")", ")", "))"};
	sqlite3 *db = rows_db();
	cr_assert_eq(sqlite3_exec(db, "INSERT INTO t (accuracy, trial) VALUES (1, 1)", NULL, NULL,
				  NULL),
		     SQLITE_OK);
	static char text[8192];
	for (size_t k = 0; k < sizeof open_level / sizeof open_level[0]; k++) {
		int accepted = 0;
		for (int depth = 1; depth <= 40; depth++) {
			text[0] = '\0';
			for (int d = 0; d < depth; d++)
				cat(text, sizeof text, open_level[k]);
			cat(text, sizeof text, "accuracy = 1");
			for (int d = 0; d < depth; d++)
				cat(text, sizeof text, close_level[k]);
			struct expr *e = NULL;
			enum presso_status s = expr_parse(text, "--where", &e);
			if (s != PRESSO_OK) {
				cr_assert(strstr(status_msg(), "nested deeper than 12") ||
						  strstr(status_msg(), "more than 64 comparisons"),
					  "%s", status_msg());
				break;
			}
			accepted = depth;
			cr_assert(sqlite_takes(db, e), "SQLite refused an accepted expression (%s): %s",
				  sqlite3_errmsg(db), text);
			expr_free(e);
		}
		cr_assert(accepted >= 3 && accepted < 40, "shape %zu: %d levels accepted", k,
			  accepted);
	}
	sqlite3_close(db);
}
