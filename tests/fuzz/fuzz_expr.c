/* fuzz_expr.c - libFuzzer harness for the --where / --pick expression language.
 *
 * Each input is parsed both as a --where and as a --pick expression. For every
 * expression that parses, the SQL fragment expr_sql() emits must hold no text
 * of the user's (expr.h): it is checked token by token against what the
 * emitter may write, and the harness aborts on anything else, so the fuzzer
 * reports it:
 *   - words: a metric's column name (expr_metric_name), AND, OR, NOT, or
 *     the confidence bound's function (EXPR_SQL_BOUND_FUNCTION);
 *   - operators: < <= > >= = !=, and + - , of the `at C%` bound;
 *   - ( ) ? and single spaces;
 * with balanced parentheses and exactly one `?` per bound value. The
 * expression is also evaluated on a few rows of metrics (expr_eval).
 * Seeds: tests/fuzz/corpus/expr; dictionary: expr.dict.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/expr.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool allowed_word(const char *w, size_t n)
{
	static const char *const keywords[] = {"AND", "OR", "NOT", EXPR_SQL_BOUND_FUNCTION};
	for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
		if (strlen(keywords[i]) == n && memcmp(w, keywords[i], n) == 0)
			return true;
	for (int m = 0; m < EXPR_METRIC_COUNT; m++) {
		const char *name = expr_metric_name((enum expr_metric)m);
		if (strlen(name) == n && memcmp(w, name, n) == 0)
			return true;
	}
	return false;
}

static bool allowed_op(const char *op, size_t n)
{
	static const char *const ops[] = {"<", "<=", ">", ">=", "=", "!="};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strlen(ops[i]) == n && memcmp(op, ops[i], n) == 0)
			return true;
	return false;
}

/* Aborts unless sql is made only of what the emitter may write. */
static void check_sql(const char *sql, int n_params)
{
	int depth = 0, n_marks = 0;
	for (const char *p = sql; *p;) {
		if (is_word_char(*p)) {
			const char *w = p;
			while (is_word_char(*p))
				p++;
			if (!allowed_word(w, (size_t)(p - w))) {
				fprintf(stderr, "fuzz_expr: SQL holds the word '%.*s': %s\n",
					(int)(p - w), w, sql);
				abort();
			}
		} else if (strchr("<>=!", *p)) {
			const char *o = p;
			while (*p && strchr("<>=!", *p))
				p++;
			if (!allowed_op(o, (size_t)(p - o))) {
				fprintf(stderr, "fuzz_expr: SQL holds the operator '%.*s': %s\n",
					(int)(p - o), o, sql);
				abort();
			}
		} else if (*p == '+' || *p == '-' || *p == ',') {
			/* + and - between spaces, a comma after an argument */
			FUZZ_CHECK(p > sql && p[1] == ' ' && (*p == ',' || p[-1] == ' '));
			p++;
		} else if (*p == '(' || *p == ')' || *p == '?' || *p == ' ') {
			depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
			n_marks += *p == '?';
			FUZZ_CHECK(depth >= 0);
			FUZZ_CHECK(*p != ' ' || p[1] != ' ');
			p++;
		} else {
			fprintf(stderr, "fuzz_expr: SQL holds the byte 0x%02x at %zu: %s\n",
				(unsigned char)*p, (size_t)(p - sql), sql);
			abort();
		}
	}
	FUZZ_CHECK(depth == 0);
	FUZZ_CHECK(n_marks == n_params);
}

static void check_expr(const struct expr *e)
{
	char *sql = NULL;
	double *params = NULL;
	int n_params = 0;
	if (expr_sql(e, &sql, &params, &n_params) != PRESSO_OK)
		return;
	FUZZ_CHECK(sql && n_params >= 1 && n_params <= (int)strlen(sql));
	check_sql(sql, n_params);
	free(sql);
	free(params);

	double row[EXPR_METRIC_COUNT];
	for (int m = 0; m < EXPR_METRIC_COUNT; m++)
		row[m] = 0.0;
	expr_eval(e, row);
	for (int m = 0; m < EXPR_METRIC_COUNT; m++)
		row[m] = m == EXPR_TEST_ACCURACY ? NAN : 64.0 * (m + 1);
	expr_eval(e, row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	struct expr *e = NULL;
	if (expr_parse(text, "--where", &e) == PRESSO_OK) {
		FUZZ_CHECK(e);
		check_expr(e);
		expr_free(e);
	} else {
		FUZZ_CHECK(e == NULL);
		fuzz_refused("where");
	}
	struct expr_pick pick;
	if (expr_parse_pick(text, "--pick", &pick) == PRESSO_OK) {
		FUZZ_CHECK((unsigned)pick.metric < EXPR_METRIC_COUNT);
		if (pick.where)
			check_expr(pick.where);
		expr_pick_free(&pick);
	} else {
		fuzz_refused("pick");
	}
	free(text);
	return 0;
}
