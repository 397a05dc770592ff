/* expr.c - tokenizer, recursive-descent parser, SQL emitter and evaluator of
 * the --where / --pick language (see expr.h for the language).
 *
 * Grammar:
 *   pick    := ("max" | "min") metric ["where" or] END
 *   where   := or END
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | "(" or ")" | compare
 *   compare := operand op operand ["at" number "%"]
 *                                          (one metric, one number)
 *   operand := metric | ["-" | "+"] number [unit]
 *
 * The AST is an array of nodes (children by index). A comparison node stores
 * the metric, the operator with the metric on its left (`64 >= size_kb` is
 * stored as size_kb <= 64) and the number already converted to the metric's
 * unit; with `at C%`, also the signed z of the accuracy bound it compares
 * (expr.h). The SQL emitter writes column names from metric_table[], the
 * bound function's name and the operators + - only.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/expr.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/stats.h"

/* The size of one expression. SQLite's parser (a fixed 100-entry stack in the
 * library as built) refuses SQL nested more than about 45 levels of "(NOT" or
 * 25 of "(x AND (": the emitted SQL flattens chains of one operator
 * (a OR b OR c), so its depth follows the expression's parentheses and nots,
 * not its length, and these bounds keep every expression presso accepts well
 * inside what SQLite parses (tests/test_expr.c runs the deepest shapes).
 * Nothing a person types reaches them. */
#define EXPR_MAX_DEPTH 12        /* parentheses and `not` nested in one another */
#define EXPR_MAX_COMPARISONS 64  /* comparisons in one expression */
#define EXPR_TOKEN_BYTES 64 /* longest name or number shown back in a message */

enum dim { DIM_NONE, DIM_BYTES, DIM_TIME };

struct metric_info {
	const char *name;  /* and v_trials column */
	enum dim dim;
	double scale;      /* one unit of the metric in bytes or microseconds */
};

static const struct metric_info metric_table[EXPR_METRIC_COUNT] = {
	[EXPR_ACCURACY] = {"accuracy", DIM_NONE, 1},
	[EXPR_TEST_ACCURACY] = {"test_accuracy", DIM_NONE, 1},
	[EXPR_ACCURACY_DROP] = {"accuracy_drop", DIM_NONE, 1},
	[EXPR_SIZE_BYTES] = {"size_bytes", DIM_BYTES, 1},
	[EXPR_SIZE_KB] = {"size_kb", DIM_BYTES, 1024},
	[EXPR_SIZE_MB] = {"size_mb", DIM_BYTES, 1048576},
	[EXPR_RATIO] = {"ratio", DIM_NONE, 1},
	[EXPR_BOPS] = {"bops", DIM_NONE, 1},
	[EXPR_LATENCY_US] = {"latency_us", DIM_TIME, 1},
	[EXPR_LATENCY_MS] = {"latency_ms", DIM_TIME, 1000},
	[EXPR_MEAN_BITS] = {"mean_bits", DIM_NONE, 1},
	[EXPR_MEAN_PRUNE] = {"mean_prune", DIM_NONE, 1},
	[EXPR_MEAN_RANK] = {"mean_rank", DIM_NONE, 1},
	[EXPR_TRIAL] = {"trial", DIM_NONE, 1},
	[EXPR_TUNED] = {"tuned", DIM_NONE, 1},
	[EXPR_N_IMAGES] = {"n_images", DIM_NONE, 1},
};
_Static_assert(sizeof metric_table / sizeof metric_table[0] == EXPR_METRIC_COUNT,
	       "every metric needs a row");

static const struct {
	const char *alias;
	enum expr_metric metric;
} aliases[] = {
	{"size", EXPR_SIZE_BYTES},      {"latency", EXPR_LATENCY_US},
	{"bits_mean", EXPR_MEAN_BITS},  {"prune_mean", EXPR_MEAN_PRUNE},
	{"rank_mean", EXPR_MEAN_RANK},
};

static const struct {
	const char *name;
	enum dim dim;
	double scale; /* bytes or microseconds */
} units[] = {
	{"b", DIM_BYTES, 1},       {"kb", DIM_BYTES, 1024},  {"kib", DIM_BYTES, 1024},
	{"mb", DIM_BYTES, 1048576}, {"mib", DIM_BYTES, 1048576}, {"us", DIM_TIME, 1},
	{"ms", DIM_TIME, 1000},    {"s", DIM_TIME, 1000000},
};

double expr_accuracy_bound(double accuracy, double n_images, double z)
{
	return stats_wilson_bound(accuracy, n_images, z);
}

const char *expr_metric_name(enum expr_metric m)
{
	return (unsigned)m < EXPR_METRIC_COUNT ? metric_table[m].name : "?";
}

bool expr_metric_lookup(const char *name, enum expr_metric *out)
{
	for (int m = 0; m < EXPR_METRIC_COUNT; m++)
		if (strcasecmp(name, metric_table[m].name) == 0) {
			*out = (enum expr_metric)m;
			return true;
		}
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (strcasecmp(name, aliases[i].alias) == 0) {
			*out = aliases[i].metric;
			return true;
		}
	return false;
}

/* --- AST ------------------------------------------------------------------ */

enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_COUNT };

static const char *const op_sql[OP_COUNT] = {
	[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=", [OP_EQ] = "=", [OP_NE] = "!=",
};
/* the operator with its operands swapped: 64 >= x is x <= 64 */
static const enum op op_flip[OP_COUNT] = {
	[OP_LT] = OP_GT, [OP_LE] = OP_GE, [OP_GT] = OP_LT, [OP_GE] = OP_LE, [OP_EQ] = OP_EQ,
	[OP_NE] = OP_NE,
};

enum node_kind { NODE_CMP, NODE_AND, NODE_OR, NODE_NOT };

struct node {
	enum node_kind kind;
	int a, b;                 /* children (AND/OR: both; NOT: a) */
	enum expr_metric metric;  /* CMP */
	enum op op;               /* CMP, metric on the left */
	double value;             /* CMP, in the metric's unit */
	double z;                 /* CMP with `at C%`: the accuracy bound's signed z
				     (< 0 lower, > 0 upper); 0 without */
};

struct expr {
	struct node *nodes;
	int n_nodes, cap;
	int root;
};

void expr_free(struct expr *e)
{
	if (!e)
		return;
	free(e->nodes);
	free(e);
}

void expr_pick_free(struct expr_pick *p)
{
	if (!p)
		return;
	expr_free(p->where);
	p->where = NULL;
}

/* --- tokens --------------------------------------------------------------- */

enum tok_kind {
	T_END, T_NAME, T_NUMBER, T_OP, T_LPAREN, T_RPAREN, T_MINUS, T_PLUS, T_PERCENT, T_BAD
};

struct token {
	enum tok_kind kind;
	size_t pos, len;   /* byte offset and length in the text */
	enum op op;        /* T_OP */
	double number;     /* T_NUMBER */
	size_t unit_pos, unit_len; /* T_NUMBER: the unit's letters (len 0: none) */
};

struct parser {
	const char *text;
	const char *what;
	size_t pos;
	struct token tok; /* current token */
	struct expr *e;
	int depth;
	int n_comparisons;
};

/* Records "WHAT: PROBLEM at column N[ SUFFIX]" and the text with a caret under
 * column N on the next two lines; returns PRESSO_E_USAGE. */
__attribute__((format(printf, 4, 5))) static enum presso_status
fail_at_with(const struct parser *p, size_t pos, const char *suffix, const char *fmt, ...)
{
	char problem[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	int col = (int)pos + 1;
	size_t len = strlen(p->text);
	/* texts up to 200 bytes are shown whole, which covers anything typed on a
	 * command line; the caret stops at the end of what is shown */
	int shown = len > 200 ? 200 : (int)len;
	int caret = (int)pos < shown ? (int)pos : shown;
	return status_fail(PRESSO_E_USAGE, "%s: %s at column %d%s\n  %.*s\n  %*s^", p->what,
			   problem, col, suffix ? suffix : "", shown, p->text, caret, "");
}

#define fail_at(p, pos, ...) fail_at_with(p, pos, NULL, __VA_ARGS__)

static bool is_name_start(int c)
{
	return isalpha(c) || c == '_';
}

static bool is_name_char(int c)
{
	return isalnum(c) || c == '_';
}

static enum presso_status next_token(struct parser *p)
{
	const char *t = p->text;
	while (isspace((unsigned char)t[p->pos]))
		p->pos++;
	struct token *k = &p->tok;
	memset(k, 0, sizeof *k);
	k->pos = p->pos;
	int c = (unsigned char)t[p->pos];
	if (c == '\0') {
		k->kind = T_END;
		return PRESSO_OK;
	}
	if (is_name_start(c)) {
		size_t e = p->pos;
		while (is_name_char((unsigned char)t[e]))
			e++;
		k->kind = T_NAME;
		k->len = e - p->pos;
		p->pos = e;
		return PRESSO_OK;
	}
	if (isdigit(c) || (c == '.' && isdigit((unsigned char)t[p->pos + 1]))) {
		size_t e = p->pos;
		while (isdigit((unsigned char)t[e]))
			e++;
		if (t[e] == '.') {
			e++;
			while (isdigit((unsigned char)t[e]))
				e++;
		}
		if (t[e] == 'e' || t[e] == 'E') {
			size_t x = e + 1;
			if (t[x] == '+' || t[x] == '-')
				x++;
			if (isdigit((unsigned char)t[x])) {
				while (isdigit((unsigned char)t[x]))
					x++;
				e = x;
			}
		}
		char buf[EXPR_TOKEN_BYTES];
		size_t n = e - p->pos;
		if (n >= sizeof buf)
			return fail_at(p, p->pos, "number too long");
		memcpy(buf, t + p->pos, n);
		buf[n] = '\0';
		k->number = strtod(buf, NULL);
		if (!isfinite(k->number))
			return fail_at(p, p->pos, "number '%s' is out of range", buf);
		k->kind = T_NUMBER;
		/* a unit: letters right after the number, or after spaces when
		 * they spell a unit ("64 kb") */
		size_t u = e;
		while (t[u] == ' ' || t[u] == '\t')
			u++;
		size_t ue = u;
		while (isalpha((unsigned char)t[ue]))
			ue++;
		bool attached = u == e && ue > u;
		bool spaced_unit = false;
		for (size_t i = 0; !attached && ue > u && i < sizeof units / sizeof units[0]; i++)
			spaced_unit |= strlen(units[i].name) == ue - u &&
				       strncasecmp(units[i].name, t + u, ue - u) == 0 &&
				       !is_name_char((unsigned char)t[ue]);
		if (attached || spaced_unit) {
			if (attached)
				while (is_name_char((unsigned char)t[ue]))
					ue++;
			k->unit_pos = u;
			k->unit_len = ue - u;
			e = ue;
		}
		k->len = e - p->pos;
		p->pos = e;
		return PRESSO_OK;
	}
	static const struct {
		const char *s;
		enum op op;
	} ops[] = {{"<=", OP_LE}, {">=", OP_GE}, {"==", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE},
		   {"<", OP_LT},  {">", OP_GT},  {"=", OP_EQ}};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		size_t n = strlen(ops[i].s);
		if (strncmp(t + p->pos, ops[i].s, n) == 0) {
			k->kind = T_OP;
			k->op = ops[i].op;
			k->len = n;
			p->pos += n;
			return PRESSO_OK;
		}
	}
	k->len = 1;
	p->pos++;
	switch (c) {
	case '(':
		k->kind = T_LPAREN;
		return PRESSO_OK;
	case ')':
		k->kind = T_RPAREN;
		return PRESSO_OK;
	case '-':
		k->kind = T_MINUS;
		return PRESSO_OK;
	case '+':
		k->kind = T_PLUS;
		return PRESSO_OK;
	case '%':
		k->kind = T_PERCENT;
		return PRESSO_OK;
	default:
		if (isprint(c))
			return fail_at(p, k->pos, "unexpected character '%c'", c);
		return fail_at(p, k->pos, "unexpected byte 0x%02x", (unsigned)c);
	}
}

static bool tok_is_word(const struct parser *p, const char *word)
{
	return p->tok.kind == T_NAME && strlen(word) == p->tok.len &&
	       strncasecmp(p->text + p->tok.pos, word, p->tok.len) == 0;
}

/* The current token's text for messages ("end of text" at the end). */
static const char *tok_text(const struct parser *p, char buf[EXPR_TOKEN_BYTES])
{
	if (p->tok.kind == T_END)
		return "the end of the text";
	size_t n = p->tok.len < EXPR_TOKEN_BYTES - 3 ? p->tok.len : EXPR_TOKEN_BYTES - 3;
	snprintf(buf, EXPR_TOKEN_BYTES, "'%.*s'", (int)n, p->text + p->tok.pos);
	return buf;
}

static enum presso_status unknown_metric(const struct parser *p)
{
	char list[512];
	size_t used = 0;
	used += (size_t)snprintf(list, sizeof list, " (known: ");
	for (int m = 0; m < EXPR_METRIC_COUNT; m++)
		used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", m ? ", " : "",
					 metric_table[m].name);
	snprintf(list + used, sizeof list - used, ")");
	return fail_at_with(p, p->tok.pos, list, "unknown metric '%.*s'",
			    (int)(p->tok.len < 40 ? p->tok.len : 40), p->text + p->tok.pos);
}

static bool is_keyword(const struct parser *p)
{
	static const char *const words[] = {"and", "or", "not", "where", "max", "min", "at"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (tok_is_word(p, words[i]))
			return true;
	return false;
}

static enum presso_status add_node(struct parser *p, struct node n, int *index)
{
	struct expr *e = p->e;
	if (e->n_nodes == e->cap) {
		int cap = e->cap ? 2 * e->cap : 16;
		struct node *nn = realloc(e->nodes, (size_t)cap * sizeof *nn);
		if (!nn)
			return status_fail(PRESSO_E_NOMEM, "%s: out of memory", p->what);
		e->nodes = nn;
		e->cap = cap;
	}
	e->nodes[e->n_nodes] = n;
	*index = e->n_nodes++;
	return PRESSO_OK;
}

/* --- parser --------------------------------------------------------------- */

struct operand {
	bool is_metric;
	enum expr_metric metric;
	double number;
	size_t pos;                /* start, for messages */
	size_t unit_pos, unit_len; /* number's unit (len 0: none) */
};

static enum presso_status parse_operand(struct parser *p, struct operand *o)
{
	char buf[EXPR_TOKEN_BYTES];
	enum presso_status s;
	memset(o, 0, sizeof *o);
	o->pos = p->tok.pos;
	if (p->tok.kind == T_NAME) {
		if (is_keyword(p))
			return fail_at(p, p->tok.pos, "expected a metric or a number, got %s",
				       tok_text(p, buf));
		char name[EXPR_TOKEN_BYTES];
		if (p->tok.len >= sizeof name)
			return unknown_metric(p);
		memcpy(name, p->text + p->tok.pos, p->tok.len);
		name[p->tok.len] = '\0';
		if (!expr_metric_lookup(name, &o->metric))
			return unknown_metric(p);
		o->is_metric = true;
		return next_token(p);
	}
	double sign = 1;
	if (p->tok.kind == T_MINUS || p->tok.kind == T_PLUS) {
		sign = p->tok.kind == T_MINUS ? -1 : 1;
		if ((s = next_token(p)) != PRESSO_OK)
			return s;
		if (p->tok.kind != T_NUMBER)
			return fail_at(p, p->tok.pos, "expected a number after the sign, got %s",
				       tok_text(p, buf));
	}
	if (p->tok.kind != T_NUMBER)
		return fail_at(p, p->tok.pos, "expected a metric or a number, got %s",
			       tok_text(p, buf));
	o->number = sign * p->tok.number;
	o->unit_pos = p->tok.unit_pos;
	o->unit_len = p->tok.unit_len;
	return next_token(p);
}

static const char *dim_name(enum dim d)
{
	return d == DIM_BYTES ? "a size" : d == DIM_TIME ? "a time" : "a plain number";
}

/* The number converted to the metric's unit, or an error at the unit. */
static enum presso_status convert(const struct parser *p, const struct operand *num,
				  enum expr_metric m, double *value)
{
	const struct metric_info *mi = &metric_table[m];
	if (num->unit_len == 0) {
		*value = num->number;
		return PRESSO_OK;
	}
	const char *u = p->text + num->unit_pos;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strlen(units[i].name) != num->unit_len ||
		    strncasecmp(units[i].name, u, num->unit_len) != 0)
			continue;
		if (units[i].dim != mi->dim)
			return fail_at(p, num->unit_pos,
				       "unit '%s' is %s but '%s' is %s", units[i].name,
				       dim_name(units[i].dim), mi->name, dim_name(mi->dim));
		*value = num->number * units[i].scale / mi->scale;
		return PRESSO_OK;
	}
	return fail_at(p, num->unit_pos, "unknown unit '%.*s' (units: kb, mb, b, us, ms, s)",
		       (int)(num->unit_len < 20 ? num->unit_len : 20), u);
}

static enum presso_status parse_or(struct parser *p, int *out);

/* `at C%` after a comparison (the current token is `at`): checks that it
 * bounds accuracy or accuracy_drop with an inequality and sets n->z. */
static enum presso_status parse_confidence(struct parser *p, struct node *n)
{
	char buf[EXPR_TOKEN_BYTES];
	size_t at = p->tok.pos;
	enum presso_status s;
	if (n->metric != EXPR_ACCURACY && n->metric != EXPR_ACCURACY_DROP)
		return fail_at(p, at,
			       "'at' gives a confidence to accuracy and accuracy_drop only, not "
			       "to '%s'",
			       metric_table[n->metric].name);
	if (n->op == OP_EQ || n->op == OP_NE)
		return fail_at(p, at, "'at' needs a bound (<, <=, > or >=), not '%s'",
			       op_sql[n->op]);
	if ((s = next_token(p)) != PRESSO_OK)
		return s;
	size_t num = p->tok.pos;
	if (p->tok.kind != T_NUMBER || p->tok.unit_len)
		return fail_at(p, p->tok.pos,
			       "expected a confidence in percent after 'at' (example: at 95%%), "
			       "got %s",
			       tok_text(p, buf));
	double c = p->tok.number;
	if ((s = next_token(p)) != PRESSO_OK)
		return s;
	if (p->tok.kind != T_PERCENT)
		return fail_at(p, p->tok.pos,
			       "expected '%%' after the confidence (example: at 95%%), got %s",
			       tok_text(p, buf));
	/* 50 % is the point value itself; 100 % no finite bound */
	double z = stats_one_sided_z(c / 100);
	if (!(c > 50 && c < 100) || !isfinite(z))
		return fail_at(p, num, "confidence %g%% is not between 50%% and 100%% (exclusive)",
			       c);
	/* accuracy >= x and accuracy_drop <= x ask for the lower bound of accuracy */
	bool lower = (n->op == OP_GT || n->op == OP_GE) == (n->metric == EXPR_ACCURACY);
	n->z = lower ? -z : z;
	return next_token(p);
}

static enum presso_status parse_compare(struct parser *p, int *out)
{
	char buf[EXPR_TOKEN_BYTES];
	struct operand l, r;
	if (++p->n_comparisons > EXPR_MAX_COMPARISONS)
		return fail_at(p, p->tok.pos,
			       "more than %d comparisons, the most one expression may hold (split "
			       "the query, or use ranges: size_kb <= 64 and size_kb >= 32)",
			       EXPR_MAX_COMPARISONS);
	enum presso_status s = parse_operand(p, &l);
	if (s != PRESSO_OK)
		return s;
	if (p->tok.kind != T_OP)
		return fail_at(p, p->tok.pos,
			       "expected a comparison (<, <=, >, >=, =, !=) after %s, got %s",
			       l.is_metric ? "the metric" : "the number", tok_text(p, buf));
	enum op op = p->tok.op;
	size_t op_pos = p->tok.pos;
	if ((s = next_token(p)) != PRESSO_OK)
		return s;
	if ((s = parse_operand(p, &r)) != PRESSO_OK)
		return s;
	if (l.is_metric == r.is_metric)
		return fail_at(p, l.is_metric ? r.pos : op_pos,
			       "a comparison needs a metric on one side and a number on the other");
	struct node n = {.kind = NODE_CMP};
	const struct operand *num = l.is_metric ? &r : &l;
	n.metric = l.is_metric ? l.metric : r.metric;
	n.op = l.is_metric ? op : op_flip[op];
	if ((s = convert(p, num, n.metric, &n.value)) != PRESSO_OK)
		return s;
	if (tok_is_word(p, "at") && (s = parse_confidence(p, &n)) != PRESSO_OK)
		return s;
	return add_node(p, n, out);
}

static enum presso_status parse_not(struct parser *p, int *out)
{
	char buf[EXPR_TOKEN_BYTES];
	enum presso_status s;
	if (++p->depth > EXPR_MAX_DEPTH)
		return fail_at(p, p->tok.pos, "expression nested deeper than %d levels",
			       EXPR_MAX_DEPTH);
	if (tok_is_word(p, "not")) {
		int a;
		if ((s = next_token(p)) != PRESSO_OK || (s = parse_not(p, &a)) != PRESSO_OK)
			return s;
		s = add_node(p, (struct node){.kind = NODE_NOT, .a = a}, out);
	} else if (p->tok.kind == T_LPAREN) {
		size_t open = p->tok.pos;
		if ((s = next_token(p)) != PRESSO_OK || (s = parse_or(p, out)) != PRESSO_OK)
			return s;
		if (p->tok.kind != T_RPAREN)
			return fail_at(p, p->tok.pos,
				       "expected ')' to close the '(' at column %d, got %s",
				       (int)open + 1, tok_text(p, buf));
		s = next_token(p);
	} else {
		s = parse_compare(p, out);
	}
	p->depth--;
	return s;
}

static enum presso_status parse_and(struct parser *p, int *out)
{
	enum presso_status s = parse_not(p, out);
	while (s == PRESSO_OK && tok_is_word(p, "and")) {
		int b;
		if ((s = next_token(p)) != PRESSO_OK || (s = parse_not(p, &b)) != PRESSO_OK)
			return s;
		s = add_node(p, (struct node){.kind = NODE_AND, .a = *out, .b = b}, out);
	}
	return s;
}

static enum presso_status parse_or(struct parser *p, int *out)
{
	enum presso_status s = parse_and(p, out);
	while (s == PRESSO_OK && tok_is_word(p, "or")) {
		int b;
		if ((s = next_token(p)) != PRESSO_OK || (s = parse_and(p, &b)) != PRESSO_OK)
			return s;
		s = add_node(p, (struct node){.kind = NODE_OR, .a = *out, .b = b}, out);
	}
	return s;
}

static enum presso_status expect_end(struct parser *p)
{
	char buf[EXPR_TOKEN_BYTES];
	if (p->tok.kind == T_END)
		return PRESSO_OK;
	if (p->tok.kind == T_RPAREN)
		return fail_at(p, p->tok.pos, "')' without a matching '('");
	return fail_at(p, p->tok.pos, "expected 'and', 'or' or the end, got %s", tok_text(p, buf));
}

static enum presso_status parser_start(struct parser *p, const char *text, const char *what)
{
	memset(p, 0, sizeof *p);
	p->text = text ? text : "";
	p->what = what ? what : "expression";
	p->e = calloc(1, sizeof *p->e);
	if (!p->e)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", p->what);
	return next_token(p);
}

static enum presso_status parse_where_body(struct parser *p)
{
	if (p->tok.kind == T_END)
		return fail_at(p, p->tok.pos, "empty expression (example: accuracy >= 90 and "
					      "size_kb <= 64)");
	enum presso_status s = parse_or(p, &p->e->root);
	return s != PRESSO_OK ? s : expect_end(p);
}

enum presso_status expr_parse(const char *text, const char *what, struct expr **out)
{
	struct parser p;
	*out = NULL;
	enum presso_status s = parser_start(&p, text, what);
	if (s == PRESSO_OK)
		s = parse_where_body(&p);
	if (s != PRESSO_OK) {
		expr_free(p.e);
		return s;
	}
	*out = p.e;
	return PRESSO_OK;
}

enum presso_status expr_parse_pick(const char *text, const char *what, struct expr_pick *out)
{
	char buf[EXPR_TOKEN_BYTES];
	struct parser p;
	memset(out, 0, sizeof *out);
	enum presso_status s = parser_start(&p, text, what);
	if (s != PRESSO_OK)
		goto fail;
	if (!tok_is_word(&p, "max") && !tok_is_word(&p, "min")) {
		s = fail_at(&p, p.tok.pos,
			    "expected 'max' or 'min' (example: max accuracy where size_kb <= 64), "
			    "got %s",
			    tok_text(&p, buf));
		goto fail;
	}
	out->maximize = tok_is_word(&p, "max");
	if ((s = next_token(&p)) != PRESSO_OK)
		goto fail;
	struct operand m;
	if (p.tok.kind != T_NAME || is_keyword(&p)) {
		s = fail_at(&p, p.tok.pos, "expected a metric after '%s', got %s",
			    out->maximize ? "max" : "min", tok_text(&p, buf));
		goto fail;
	}
	if ((s = parse_operand(&p, &m)) != PRESSO_OK)
		goto fail;
	out->metric = m.metric;
	if (p.tok.kind == T_END) {
		expr_free(p.e);
		return PRESSO_OK;
	}
	if (!tok_is_word(&p, "where")) {
		s = fail_at(&p, p.tok.pos, "expected 'where' or the end after the metric, got %s",
			    tok_text(&p, buf));
		goto fail;
	}
	if ((s = next_token(&p)) != PRESSO_OK || (s = parse_where_body(&p)) != PRESSO_OK)
		goto fail;
	out->where = p.e;
	return PRESSO_OK;
fail:
	expr_free(p.e);
	memset(out, 0, sizeof *out);
	return s;
}

/* --- SQL and evaluation --------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct sbuf *b, const char *text)
{
	size_t n = strlen(text);
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, text, n + 1);
	b->len += n;
}

static void emit_chain(const struct expr *e, int i, enum node_kind kind, struct sbuf *b,
		       double *params, int *n_params);

static void emit(const struct expr *e, int i, struct sbuf *b, double *params, int *n_params)
{
	const struct node *n = &e->nodes[i];
	switch (n->kind) {
	case NODE_CMP:
		put(b, "(");
		if (n->z != 0) {
			/* the bound of accuracy (z a value), or of the drop: the
			 * point drop plus how far the bound is from the accuracy */
			if (n->metric == EXPR_ACCURACY_DROP)
				put(b, "accuracy_drop + accuracy - ");
			put(b, EXPR_SQL_BOUND_FUNCTION "(accuracy, n_images, ?)");
			params[(*n_params)++] = n->z;
		} else {
			put(b, metric_table[n->metric].name);
		}
		put(b, " ");
		put(b, op_sql[n->op]);
		put(b, " ?)");
		params[(*n_params)++] = n->value;
		return;
	case NODE_NOT:
		put(b, "(NOT ");
		emit(e, n->a, b, params, n_params);
		put(b, ")");
		return;
	case NODE_AND:
	case NODE_OR:
		put(b, "(");
		emit_chain(e, i, n->kind, b, params, n_params);
		put(b, ")");
		return;
	}
}

/* The operands of a chain of one operator, a OR b OR c, without the nesting
 * the parser built them with ((a OR b) OR c): SQLite's parser then needs no
 * deeper stack for a long chain than for a short one. */
static void emit_chain(const struct expr *e, int i, enum node_kind kind, struct sbuf *b,
		       double *params, int *n_params)
{
	const struct node *n = &e->nodes[i];
	if (n->kind != kind) {
		emit(e, i, b, params, n_params);
		return;
	}
	emit_chain(e, n->a, kind, b, params, n_params);
	put(b, kind == NODE_AND ? " AND " : " OR ");
	emit_chain(e, n->b, kind, b, params, n_params);
}

enum presso_status expr_sql(const struct expr *e, char **sql, double **params, int *n_params)
{
	struct sbuf b = {0};
	*sql = NULL;
	*params = NULL;
	*n_params = 0;
	/* at most two parameters per node (a comparison at a confidence) */
	double *p = malloc(2 * (size_t)(e->n_nodes ? e->n_nodes : 1) * sizeof *p);
	if (!p)
		return status_fail(PRESSO_E_NOMEM, "expression: out of memory");
	emit(e, e->root, &b, p, n_params);
	if (b.oom) {
		free(b.s);
		free(p);
		*n_params = 0;
		return status_fail(PRESSO_E_NOMEM, "expression: out of memory");
	}
	*sql = b.s;
	*params = p;
	return PRESSO_OK;
}

enum tri { T_FALSE, T_UNKNOWN, T_TRUE };

static enum tri eval(const struct expr *e, int i, const double *v)
{
	const struct node *n = &e->nodes[i];
	switch (n->kind) {
	case NODE_CMP: {
		double x = v[n->metric];
		if (n->z != 0) {
			/* the same arithmetic, in the same order, as the SQL */
			double bound = expr_accuracy_bound(v[EXPR_ACCURACY], v[EXPR_N_IMAGES], n->z);
			x = n->metric == EXPR_ACCURACY_DROP
				    ? v[EXPR_ACCURACY_DROP] + v[EXPR_ACCURACY] - bound
				    : bound;
		}
		if (isnan(x))
			return T_UNKNOWN;
		bool r = false;
		switch (n->op) {
		case OP_LT: r = x < n->value; break;
		case OP_LE: r = x <= n->value; break;
		case OP_GT: r = x > n->value; break;
		case OP_GE: r = x >= n->value; break;
		case OP_EQ: r = x == n->value; break;
		case OP_NE: r = x != n->value; break;
		case OP_COUNT: break;
		}
		return r ? T_TRUE : T_FALSE;
	}
	case NODE_NOT: {
		enum tri a = eval(e, n->a, v);
		return a == T_UNKNOWN ? T_UNKNOWN : a == T_TRUE ? T_FALSE : T_TRUE;
	}
	case NODE_AND: {
		enum tri a = eval(e, n->a, v), b = eval(e, n->b, v);
		return a < b ? a : b; /* FALSE < UNKNOWN < TRUE */
	}
	case NODE_OR: {
		enum tri a = eval(e, n->a, v), b = eval(e, n->b, v);
		return a > b ? a : b;
	}
	}
	return T_UNKNOWN;
}

bool expr_eval(const struct expr *e, const double values[EXPR_METRIC_COUNT])
{
	return eval(e, e->root, values) == T_TRUE;
}
