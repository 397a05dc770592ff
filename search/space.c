/* space.c - reading a study's search space, objectives, constraints and
 * search settings, and mapping genomes to policies (format in space.h).
 *
 * Knobs are one table (knobs[], keyed by enum knob): key, value type, range,
 * identity value, how a value is read from and written to a layer_policy, and,
 * for a transform presso does not have, the message that refuses any value but
 * the identity (none today).
 *
 * Every field is read through the json_get getters or, for array elements,
 * through the same message form, so errors name the field's path; every
 * object is checked for unknown keys first. Layer patterns are fnmatch(3)
 * globs without flags ('*' also matches '/'); a pattern that is a layer's
 * exact name matches it even if it holds glob characters.
 */
#define _POSIX_C_SOURCE 200809L
#include "search/space.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "transform/transform.h"

#define PATH_BYTES 768
#define MAX_EXACT_INT 9007199254740991LL /* 2^53 - 1: cJSON numbers are doubles */
#define DEFAULT_MAX_TRIALS 0             /* the driver's default applies */

/* --- the knob table ------------------------------------------------------- */

enum knob_type { KT_INT, KT_BOOL, KT_NUMBER, KT_ENUM };

static const char *const prune_kind_names[] = {"unstructured", "structured", NULL};

static double get_bits(const struct layer_policy *lp) { return lp->bits; }
static double get_act(const struct layer_policy *lp) { return lp->act_bits; }
static double get_bias(const struct layer_policy *lp) { return lp->bias_correction ? 1 : 0; }
static double get_prune(const struct layer_policy *lp) { return lp->prune; }
static double get_kind(const struct layer_policy *lp) { return (double)lp->prune_kind; }
static double get_rank(const struct layer_policy *lp) { return lp->rank; }
static void set_bits(struct layer_policy *lp, double v) { lp->bits = (int)v; }
static void set_act(struct layer_policy *lp, double v) { lp->act_bits = (int)v; }
static void set_bias(struct layer_policy *lp, double v) { lp->bias_correction = v != 0; }
static void set_prune(struct layer_policy *lp, double v) { lp->prune = v; }
static void set_kind(struct layer_policy *lp, double v) { lp->prune_kind = (enum prune_kind)(int)v; }
static void set_rank(struct layer_policy *lp, double v) { lp->rank = v; }

static const struct knob_info {
	const char *name;
	enum knob_type type;
	double lo, hi;            /* KT_INT, KT_NUMBER: allowed range */
	bool lo_open;             /* the range excludes lo */
	double identity;          /* the value that leaves the layer as it is */
	double (*get)(const struct layer_policy *lp);
	void (*set)(struct layer_policy *lp, double v);
	const char *unavailable;  /* non-NULL: only the identity is accepted, and why */
} knobs[KNOB_COUNT] = {
	[KNOB_BITS] = {"bits", KT_INT, 1, 8, false, 8, get_bits, set_bits, NULL},
	[KNOB_ACT_BITS] = {"act_bits", KT_INT, 4, 8, false, 8, get_act, set_act, NULL},
	[KNOB_BIAS_CORRECTION] = {"bias_correction", KT_BOOL, 0, 1, false, 0, get_bias, set_bias,
				  NULL},
	[KNOB_PRUNE] = {"prune", KT_NUMBER, 0, 0.95, false, 0, get_prune, set_prune, NULL},
	[KNOB_PRUNE_KIND] = {"prune_kind", KT_ENUM, 0, 1, false, PRUNE_UNSTRUCTURED, get_kind,
			     set_kind, NULL},
	[KNOB_RANK] = {"rank", KT_NUMBER, 0, 1, true, 1, get_rank, set_rank, NULL},
};
_Static_assert(sizeof knobs / sizeof knobs[0] == KNOB_COUNT, "every knob needs a row");

/* The default domain of each knob when the config names none. */
static const struct knob_domain default_domains[KNOB_COUNT] = {
	[KNOB_BITS] = {6, {2, 3, 4, 5, 6, 8}},
	[KNOB_ACT_BITS] = {1, {8}},
	[KNOB_BIAS_CORRECTION] = {2, {0, 1}},
	[KNOB_PRUNE] = {1, {0}},
	[KNOB_PRUNE_KIND] = {1, {PRUNE_UNSTRUCTURED}},
	[KNOB_RANK] = {1, {1}},
};
_Static_assert(sizeof default_domains / sizeof default_domains[0] == KNOB_COUNT,
	       "every knob needs a default domain");

static const char *const knob_keys[] = {"bits",       "act_bits", "bias_correction", "prune",
					"prune_kind", "rank",     NULL};
_Static_assert(sizeof knob_keys / sizeof knob_keys[0] == KNOB_COUNT + 1,
	       "every knob is a config key");

const char *space_knob_name(enum knob k)
{
	return (unsigned)k < KNOB_COUNT ? knobs[k].name : "?";
}

static const char *const strategy_names[STRATEGY_COUNT + 1] = {
	[STRATEGY_RANDOM] = "random",
	[STRATEGY_BANDIT] = "bandit",
	[STRATEGY_EVOLUTION] = "evolution",
	[STRATEGY_HYBRID] = "hybrid",
	[STRATEGY_COUNT] = NULL,
};
_Static_assert(sizeof strategy_names / sizeof strategy_names[0] == STRATEGY_COUNT + 1,
	       "every strategy needs a name");

const char *space_strategy_name(enum strategy_kind s)
{
	return (unsigned)s < STRATEGY_COUNT ? strategy_names[s] : "?";
}

/* --- messages --------------------------------------------------------------- */

/* What a JSON item is, for messages (the form json_get uses). */
static const char *describe(const cJSON *it, char *buf, size_t cap)
{
	if (!it)
		return "nothing";
	if (cJSON_IsNumber(it)) {
		snprintf(buf, cap, "%.15g", it->valuedouble);
		return buf;
	}
	if (cJSON_IsString(it)) {
		snprintf(buf, cap, "the string \"%.40s%s\"", it->valuestring,
			 strlen(it->valuestring) > 40 ? "..." : "");
		return buf;
	}
	if (cJSON_IsBool(it))
		return cJSON_IsTrue(it) ? "true" : "false";
	if (cJSON_IsNull(it))
		return "null";
	if (cJSON_IsArray(it))
		return "an array";
	if (cJSON_IsObject(it))
		return "an object";
	return "an invalid value";
}

static enum presso_status expected(const char *path, const char *what, const cJSON *it)
{
	char buf[96];
	return status_fail(PRESSO_E_CONFIG, "%s: expected %s, got %s", path, what,
			   describe(it, buf, sizeof buf));
}

/* "an integer in 1..8", "a number in (0, 1]", ... */
static void knob_expect(enum knob k, char *buf, size_t cap)
{
	const struct knob_info *ki = &knobs[k];
	switch (ki->type) {
	case KT_INT:
		snprintf(buf, cap, "an integer in %g..%g", ki->lo, ki->hi);
		break;
	case KT_BOOL:
		snprintf(buf, cap, "true or false");
		break;
	case KT_NUMBER:
		snprintf(buf, cap, "a number in %c%g, %g]", ki->lo_open ? '(' : '[', ki->lo, ki->hi);
		break;
	case KT_ENUM:
		snprintf(buf, cap, "\"unstructured\" or \"structured\"");
		break;
	}
}

/* --- domains ---------------------------------------------------------------- */

/* One value of knob k at path. */
static enum presso_status parse_value(const cJSON *it, const char *path, enum knob k, double *v)
{
	const struct knob_info *ki = &knobs[k];
	char what[64] = "a value";
	knob_expect(k, what, sizeof what);
	switch (ki->type) {
	case KT_INT:
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
		    floor(it->valuedouble) != it->valuedouble || it->valuedouble < ki->lo ||
		    it->valuedouble > ki->hi)
			return expected(path, what, it);
		*v = it->valuedouble;
		return PRESSO_OK;
	case KT_BOOL:
		if (!cJSON_IsBool(it))
			return expected(path, what, it);
		*v = cJSON_IsTrue(it) ? 1 : 0;
		return PRESSO_OK;
	case KT_NUMBER:
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble > ki->hi ||
		    it->valuedouble < ki->lo || (ki->lo_open && it->valuedouble == ki->lo))
			return expected(path, what, it);
		*v = it->valuedouble;
		return PRESSO_OK;
	case KT_ENUM:
		for (int i = 0; cJSON_IsString(it) && prune_kind_names[i]; i++)
			if (strcmp(it->valuestring, prune_kind_names[i]) == 0) {
				*v = i;
				return PRESSO_OK;
			}
		return expected(path, what, it);
	}
	return expected(path, what, it);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A domain: one value, or an array of 1..SPACE_MAX_VALUES distinct values;
 * only_one refuses arrays (frozen layers). Sorted ascending on return. */
static enum presso_status parse_domain(const cJSON *it, const char *path, enum knob k,
				       bool only_one, struct knob_domain *d)
{
	enum presso_status s;
	char elem[PATH_BYTES];
	struct knob_domain nd = {0};
	if (cJSON_IsArray(it)) {
		if (only_one)
			return expected(path, "one value (a frozen layer has one choice per knob)",
					it);
		int n = cJSON_GetArraySize(it);
		if (n < 1 || n > SPACE_MAX_VALUES) {
			char what[96];
			snprintf(what, sizeof what, "a value or an array of 1..%d values",
				 SPACE_MAX_VALUES);
			return status_fail(PRESSO_E_CONFIG, "%s: expected %s, got %d values", path,
					   what, n);
		}
		int i = 0;
		for (const cJSON *e = it->child; e; e = e->next, i++) {
			snprintf(elem, sizeof elem, "%.700s[%d]", path, i);
			double v;
			if ((s = parse_value(e, elem, k, &v)) != PRESSO_OK)
				return s;
			for (int j = 0; j < nd.n; j++)
				if (nd.v[j] == v)
					return status_fail(PRESSO_E_CONFIG,
							   "%s: the value at [%d] is already at [%d]",
							   path, i, j);
			nd.v[nd.n++] = v;
		}
	} else {
		if ((s = parse_value(it, path, k, &nd.v[0])) != PRESSO_OK)
			return s;
		nd.n = 1;
	}
	qsort(nd.v, (size_t)nd.n, sizeof nd.v[0], cmp_double);
	if (knobs[k].unavailable)
		for (int j = 0; j < nd.n; j++)
			if (nd.v[j] != knobs[k].identity)
				return status_fail(PRESSO_E_UNSUPPORTED, "%s: %s", path,
						   knobs[k].unavailable);
	*d = nd;
	return PRESSO_OK;
}

/* Reads the knobs present in obj (at path) into d[]; absent knobs keep d[k]. */
static enum presso_status parse_knobs(const cJSON *obj, const char *path, bool only_one,
				      struct knob_domain d[KNOB_COUNT])
{
	enum presso_status s;
	if (!cJSON_IsObject(obj))
		return expected(path, "an object of knobs (bits, act_bits, ...)", obj);
	if ((s = json_check_keys(obj, path, knob_keys)) != PRESSO_OK)
		return s;
	for (int k = 0; k < KNOB_COUNT; k++) {
		const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, knobs[k].name);
		if (!it)
			continue;
		char p[PATH_BYTES];
		snprintf(p, sizeof p, "%.700s.%s", path, knobs[k].name);
		if ((s = parse_domain(it, p, (enum knob)k, only_one, &d[k])) != PRESSO_OK)
			return s;
	}
	return PRESSO_OK;
}

static bool matches(const char *pattern, const char *name)
{
	return strcmp(pattern, name) == 0 || fnmatch(pattern, name, 0) == 0;
}

/* Applies overrides[k] for the knobs `given` to every layer pattern matches;
 * fails naming path if it matches none. */
static enum presso_status apply_pattern(struct space *sp, const char *pattern, const char *path,
					const struct knob_domain over[KNOB_COUNT],
					const bool given[KNOB_COUNT], bool freeze)
{
	int n_matched = 0;
	for (int i = 0; i < sp->n_layers; i++) {
		if (!matches(pattern, sp->layers[i].name))
			continue;
		n_matched++;
		if (sp->ls[i].frozen)
			continue; /* a layer frozen by an earlier entry stays so */
		for (int k = 0; k < KNOB_COUNT; k++)
			if (given[k])
				sp->ls[i].d[k] = over[k];
		sp->ls[i].frozen = freeze;
	}
	if (n_matched == 0)
		return status_fail(PRESSO_E_CONFIG,
				   "%s: '%s' matches no layer of the model (its %d layers are "
				   "'%s'%s%s%s ... see presso info)",
				   path, pattern, sp->n_layers, sp->n_layers ? sp->layers[0].name : "",
				   sp->n_layers > 1 ? ", '" : "",
				   sp->n_layers > 1 ? sp->layers[1].name : "", sp->n_layers > 1 ? "'" : "");
	return PRESSO_OK;
}

static enum presso_status parse_space(const cJSON *root, struct space *sp)
{
	static const char *const space_keys[] = {"default", "layers", "frozen", NULL};
	const cJSON *obj = NULL, *dflt = NULL, *layers = NULL;
	enum presso_status s;
	struct knob_domain d[KNOB_COUNT];
	char path[PATH_BYTES];

	memcpy(d, default_domains, sizeof d);
	if ((s = json_get_object(root, "", "space", false, &obj)) ||
	    (s = json_check_keys(obj, "space", space_keys)) ||
	    (s = json_get_object(obj, "space", "default", false, &dflt)))
		return s;
	if (dflt && (s = parse_knobs(dflt, "space.default", false, d)) != PRESSO_OK)
		return s;
	for (int i = 0; i < sp->n_layers; i++)
		memcpy(sp->ls[i].d, d, sizeof d);

	if ((s = json_get_object(obj, "space", "layers", false, &layers)) != PRESSO_OK)
		return s;
	for (const cJSON *e = layers ? layers->child : NULL; e; e = e->next) {
		struct knob_domain over[KNOB_COUNT];
		bool given[KNOB_COUNT];
		snprintf(path, sizeof path, "space.layers.%.600s", e->string);
		for (const cJSON *o = layers->child; o != e; o = o->next)
			if (strcmp(o->string, e->string) == 0)
				return status_fail(PRESSO_E_CONFIG,
						   "space.layers: key '%s' appears twice", e->string);
		memcpy(over, d, sizeof over);
		if ((s = parse_knobs(e, path, false, over)) != PRESSO_OK)
			return s;
		for (int k = 0; k < KNOB_COUNT; k++)
			given[k] = cJSON_GetObjectItemCaseSensitive(e, knobs[k].name) != NULL;
		if ((s = apply_pattern(sp, e->string, path, over, given, false)) != PRESSO_OK)
			return s;
	}

	const cJSON *frozen = cJSON_GetObjectItemCaseSensitive(obj, "frozen");
	bool all[KNOB_COUNT];
	for (int k = 0; k < KNOB_COUNT; k++)
		all[k] = true;
	if (frozen && cJSON_IsArray(frozen)) {
		struct knob_domain id[KNOB_COUNT];
		for (int k = 0; k < KNOB_COUNT; k++)
			id[k] = (struct knob_domain){1, {knobs[k].identity}};
		int i = 0;
		for (const cJSON *e = frozen->child; e; e = e->next, i++) {
			snprintf(path, sizeof path, "space.frozen[%d]", i);
			if (!cJSON_IsString(e) || !*e->valuestring)
				return expected(path, "a layer name or glob", e);
			if ((s = apply_pattern(sp, e->valuestring, path, id, all, true)) != PRESSO_OK)
				return s;
		}
	} else if (frozen && cJSON_IsObject(frozen)) {
		for (const cJSON *e = frozen->child; e; e = e->next) {
			struct knob_domain val[KNOB_COUNT];
			for (int k = 0; k < KNOB_COUNT; k++)
				val[k] = (struct knob_domain){1, {knobs[k].identity}};
			snprintf(path, sizeof path, "space.frozen.%.600s", e->string);
			for (const cJSON *o = frozen->child; o != e; o = o->next)
				if (strcmp(o->string, e->string) == 0)
					return status_fail(PRESSO_E_CONFIG,
							   "space.frozen: key '%s' appears twice",
							   e->string);
			if ((s = parse_knobs(e, path, true, val)) != PRESSO_OK)
				return s;
			if ((s = apply_pattern(sp, e->string, path, val, all, true)) != PRESSO_OK)
				return s;
		}
	} else if (frozen) {
		return expected("space.frozen",
				"an array of layer names or globs, or an object of layer -> values",
				frozen);
	}
	return PRESSO_OK;
}

/* --- objectives, constraints, search ---------------------------------------- */

/* The names of objectives.KEY (a name or an array of names) into got[]. */
static enum presso_status objective_list(const cJSON *obj, const char *key, int max_n,
					 enum store_objective *got, int *n)
{
	static const struct {
		const char *name;
		enum store_objective o;
	} names[] = {
		{"accuracy", OBJ_ACCURACY}, {"size", OBJ_SIZE},       {"size_bytes", OBJ_SIZE},
		{"bops", OBJ_BOPS},         {"latency", OBJ_LATENCY}, {"latency_us", OBJ_LATENCY},
	};
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[64];
	*n = 0;
	if (!it)
		return PRESSO_OK;
	snprintf(path, sizeof path, "objectives.%s", key);
	if (cJSON_IsArray(it) && (cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > max_n))
		return status_fail(PRESSO_E_CONFIG, "%s: expected 1..%d objectives, got %d", path,
				   max_n, cJSON_GetArraySize(it));
	const cJSON *first = cJSON_IsArray(it) ? it->child : it;
	int i = 0;
	for (const cJSON *e = first; e; e = cJSON_IsArray(it) ? e->next : NULL, i++) {
		char at[80];
		if (cJSON_IsArray(it))
			snprintf(at, sizeof at, "%s[%d]", path, i);
		else
			snprintf(at, sizeof at, "%s", path);
		int found = -1;
		for (size_t k = 0; cJSON_IsString(e) && k < sizeof names / sizeof names[0]; k++)
			if (strcmp(e->valuestring, names[k].name) == 0)
				found = (int)names[k].o;
		if (found < 0)
			return expected(at, "one of accuracy, size, bops, latency", e);
		for (int j = 0; j < *n; j++)
			if (got[j] == (enum store_objective)found)
				return status_fail(PRESSO_E_CONFIG, "%s: '%s' is already listed", at,
						   store_objective_name(got[j]));
		got[(*n)++] = (enum store_objective)found;
	}
	return PRESSO_OK;
}

static enum presso_status parse_objectives(const cJSON *root, struct space *sp)
{
	static const char *const keys[] = {"maximize", "minimize", NULL};
	const cJSON *obj = NULL;
	enum store_objective max[SPACE_MAX_OBJECTIVES], min[SPACE_MAX_OBJECTIVES];
	int n_max = 0, n_min = 0;
	enum presso_status s;
	sp->n_obj = 2;
	sp->obj[0] = OBJ_ACCURACY;
	sp->obj[1] = OBJ_SIZE;
	if ((s = json_get_object(root, "", "objectives", false, &obj)) ||
	    (s = json_check_keys(obj, "objectives", keys)) ||
	    (s = objective_list(obj, "maximize", 1, max, &n_max)) ||
	    (s = objective_list(obj, "minimize", SPACE_MAX_OBJECTIVES - 1, min, &n_min)))
		return s;
	if (n_max && max[0] != OBJ_ACCURACY)
		return status_fail(PRESSO_E_CONFIG,
				   "objectives.maximize: only accuracy is maximized (%s is minimized)",
				   store_objective_name(max[0]));
	for (int i = 0; i < n_min; i++)
		if (min[i] == OBJ_ACCURACY)
			return status_fail(PRESSO_E_CONFIG,
					   "objectives.minimize: accuracy is maximized, not minimized");
	if (n_min)
		for (int i = 0; i < n_min; i++)
			sp->obj[1 + i] = min[i];
	sp->n_obj = 1 + (n_min ? n_min : 1);
	return PRESSO_OK;
}

/* One of two alternative keys (key_a in unit a, key_b in unit b = scale_b
 * units a); *out NAN when neither. */
static enum presso_status either(const cJSON *obj, const char *key_a, const char *key_b,
				 double scale_b, double lo, double *out)
{
	enum presso_status s;
	double a = NAN, b = NAN;
	if ((s = json_get_double(obj, "constraints", key_a, false, lo, HUGE_VAL, &a)) ||
	    (s = json_get_double(obj, "constraints", key_b, false, lo, HUGE_VAL, &b)))
		return s;
	if (!isnan(a) && !isnan(b))
		return status_fail(PRESSO_E_CONFIG, "constraints: give %s or %s, not both", key_a,
				   key_b);
	*out = !isnan(a) ? a : b * scale_b;
	return PRESSO_OK;
}

static enum presso_status parse_constraints(const cJSON *root, struct space *sp)
{
	static const char *const keys[] = {"max_size_bytes", "max_size_kb",  "max_latency_us",
					   "max_latency_ms", "min_accuracy", "max_accuracy_drop",
					   "confidence", NULL};
	const cJSON *obj = NULL;
	enum presso_status s;
	struct space_constraints *c = &sp->con;
	c->min_accuracy = c->max_accuracy_drop = c->confidence = NAN;
	if ((s = json_get_object(root, "", "constraints", false, &obj)) ||
	    (s = json_check_keys(obj, "constraints", keys)) ||
	    (s = either(obj, "max_size_bytes", "max_size_kb", 1024.0, 1e-9, &c->max_size_bytes)) ||
	    (s = either(obj, "max_latency_us", "max_latency_ms", 1000.0, 1e-9,
			&c->max_latency_us)) ||
	    (s = json_get_double(obj, "constraints", "min_accuracy", false, 0, 100,
				 &c->min_accuracy)) ||
	    (s = json_get_double(obj, "constraints", "max_accuracy_drop", false, 0, 100,
				 &c->max_accuracy_drop)) ||
	    (s = json_get_double(obj, "constraints", "confidence", false, -HUGE_VAL, HUGE_VAL,
				 &c->confidence)))
		return s;
	if (isnan(c->confidence))
		return PRESSO_OK;
	if (!(c->confidence > 0.5 && c->confidence < 1))
		return status_fail(PRESSO_E_CONFIG,
				   "constraints.confidence: expected a fraction between 0.5 and 1 "
				   "(exclusive), like 0.95, got %g%s",
				   c->confidence,
				   c->confidence > 50 && c->confidence < 100 ? " (a fraction, not percent)"
									     : "");
	if (isnan(c->min_accuracy) && isnan(c->max_accuracy_drop))
		return status_fail(PRESSO_E_CONFIG,
				   "constraints.confidence: it applies to min_accuracy or "
				   "max_accuracy_drop, and neither is set");
	return PRESSO_OK;
}

bool space_parse_duration(const char *text, double *seconds)
{
	if (!text || !*text)
		return false;
	char *end;
	double v = strtod(text, &end);
	double unit = 0;
	if (end != text && end[0] && !end[1])
		unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 0;
	if (unit == 0 || !isfinite(v) || !(v > 0) || text[0] == '+' || text[0] == ' ')
		return false;
	*seconds = v * unit;
	return true;
}

static enum presso_status parse_search(const cJSON *root, struct space *sp)
{
	static const char *const keys[] = {"strategy", "bandit",     "seed",           "max_trials",
					   "time_limit", "population", "batch",        "ucb_c",
					   "discount",   "crossover_rate", "latency_runs",
					   "finetune_front", "finetune_reach", "sensitivity", "sensitivity_images",
					   "fidelity", "rescore_images", NULL};
	static const char *const fidelity_keys[] = {"images", "confidence", NULL};
	static const char *const bandits[] = {"thompson", "ucb", "ucb1", NULL};
	const cJSON *obj = NULL, *fid = NULL;
	enum presso_status s;
	struct space_search *q = &sp->search;
	int64_t fidelity_images = 0, rescore_images = 0;
	const char *strategy = NULL, *bandit = NULL;
	int64_t seed = 1, max_trials = DEFAULT_MAX_TRIALS, population = 16, batch = 0,
		latency_runs = 25, finetune_front = 0, sensitivity_images = SPACE_SENSITIVITY_IMAGES;
	*q = (struct space_search){.strategy = STRATEGY_HYBRID, .bandit = BANDIT_THOMPSON,
				   .ucb_c = 1.4142135623730951, .discount = 0.99,
				   .crossover_rate = 0.9,
				   .fidelity_confidence = SPACE_FIDELITY_CONFIDENCE};
	if ((s = json_get_object(root, "", "search", false, &obj)) ||
	    (s = json_check_keys(obj, "search", keys)) ||
	    (s = json_get_string(obj, "search", "strategy", false, strategy_names, &strategy)) ||
	    (s = json_get_string(obj, "search", "bandit", false, bandits, &bandit)) ||
	    (s = json_get_int(obj, "search", "seed", false, 0, MAX_EXACT_INT, &seed)) ||
	    (s = json_get_int(obj, "search", "max_trials", false, 1, 1000000000, &max_trials)) ||
	    (s = json_get_int(obj, "search", "population", false, 4, 4096, &population)) ||
	    (s = json_get_int(obj, "search", "batch", false, 1, 4096, &batch)) ||
	    (s = json_get_double(obj, "search", "ucb_c", false, 0, 100, &q->ucb_c)) ||
	    (s = json_get_double(obj, "search", "discount", false, 0.5, 1, &q->discount)) ||
	    (s = json_get_double(obj, "search", "crossover_rate", false, 0, 1,
				 &q->crossover_rate)) ||
	    (s = json_get_int(obj, "search", "latency_runs", false, 1, 100000, &latency_runs)) ||
	    (s = json_get_int(obj, "search", "finetune_front", false, 0, SPACE_MAX_FINETUNE_FRONT,
			      &finetune_front)) ||
	    (s = json_get_double(obj, "search", "finetune_reach", false, 0, 100,
				 &q->finetune_reach)) ||
	    (s = json_get_bool(obj, "search", "sensitivity", false, &q->sensitivity)) ||
	    (s = json_get_int(obj, "search", "sensitivity_images", false, 1, 1000000000,
			      &sensitivity_images)) ||
	    (s = json_get_object(obj, "search", "fidelity", false, &fid)) ||
	    (s = json_get_int(obj, "search", "rescore_images", false, 0, 1000000000,
			      &rescore_images)))
		return s;
	if (fid && ((s = json_check_keys(fid, "search.fidelity", fidelity_keys)) ||
		    (s = json_get_int(fid, "search.fidelity", "images", true, 1, 1000000000,
				      &fidelity_images)) ||
		    (s = json_get_double(fid, "search.fidelity", "confidence", false, 0.5, 0.9999,
					 &q->fidelity_confidence))))
		return s;

	for (int i = 0; strategy && i < STRATEGY_COUNT; i++)
		if (strcmp(strategy, strategy_names[i]) == 0)
			q->strategy = (enum strategy_kind)i;
	if (bandit)
		bandit_algo_lookup(bandit, &q->bandit);
	const cJSON *tl = obj ? cJSON_GetObjectItemCaseSensitive(obj, "time_limit") : NULL;
	if (tl && !(cJSON_IsString(tl) && space_parse_duration(tl->valuestring, &q->time_limit_s)))
		return expected("search.time_limit", "a duration like \"90s\", \"15m\" or \"8h\"",
				tl);
	q->seed = (uint64_t)seed;
	q->max_trials = max_trials;
	q->population = (int)population;
	q->batch = batch ? (int)batch : (int)population;
	q->latency_runs = (int)latency_runs;
	q->finetune_front = (int)finetune_front;
	q->sensitivity_images = sensitivity_images;
	q->fidelity_images = fidelity_images;
	q->rescore_images = rescore_images;
	const struct space_constraints *c = &sp->con;
	if (q->finetune_reach > 0 && finetune_front == 0)
		return status_fail(PRESSO_E_CONFIG,
				   "search.finetune_reach: it loosens the accuracy bounds for trials "
				   "that fine-tuning will improve, and search.finetune_front is 0; "
				   "set finetune_front to how many to tune");
	if (q->finetune_reach > 0 && isnan(c->min_accuracy) && isnan(c->max_accuracy_drop))
		return status_fail(PRESSO_E_CONFIG,
				   "search.finetune_reach: it loosens the accuracy bounds, and "
				   "constraints sets neither min_accuracy nor max_accuracy_drop");
	if (rescore_images > 0 &&
	    (isnan(c->confidence) || (isnan(c->min_accuracy) && isnan(c->max_accuracy_drop))))
		return status_fail(PRESSO_E_CONFIG,
				   "search.rescore_images: it re-scores the trials whose accuracy "
				   "interval straddles an accuracy bound; set constraints.confidence "
				   "with min_accuracy or max_accuracy_drop");
	return PRESSO_OK;
}

/* --- parse ------------------------------------------------------------------ */

static enum presso_status list_free_genes(struct space *sp)
{
	sp->n_free = 0;
	for (int g = 0; g < sp->n_genes; g++)
		if (sp->ls[g / KNOB_COUNT].d[g % KNOB_COUNT].n > 1)
			sp->free_genes[sp->n_free++] = g;
	if (sp->n_free == 0)
		return status_fail(PRESSO_E_CONFIG,
				   "space: every knob of every layer has one value: there is nothing "
				   "to search (give some knob a list of values)");
	return PRESSO_OK;
}

enum presso_status space_fit_graph(struct space *sp, const struct graph *g, FILE *log)
{
	struct layer_policy id = policy_default_layer();
	struct policy *p;
	enum presso_status s = policy_uniform(&id, sp->n_layers, &p);
	if (s != PRESSO_OK)
		return s;
	int n_refused = 0, n_grouped = 0;
	for (int i = 0; i < sp->n_layers && s == PRESSO_OK; i++) {
		struct knob_domain *kind = &sp->ls[i].d[KNOB_PRUNE_KIND];
		const struct knob_domain *prune = &sp->ls[i].d[KNOB_PRUNE];
		struct knob_domain *rank = &sp->ls[i].d[KNOB_RANK];
		const struct layer *l = &sp->layers[i];
		bool structured = false;
		for (int k = 0; k < kind->n; k++)
			structured |= kind->v[k] == PRUNE_STRUCTURED;
		if (structured && prune->v[prune->n - 1] > 0) {
			p->layers[i].prune = prune->v[prune->n - 1];
			p->layers[i].prune_kind = PRUNE_STRUCTURED;
			struct transform_result tr;
			s = transform_apply(g, p, &tr);
			if (s == PRESSO_OK) {
				transform_result_free(&tr);
			} else if (s == PRESSO_E_CONFIG) {
				if (log && n_refused == 0)
					fprintf(log, "presso: space: %s\n", status_msg());
				n_refused++;
				*kind = (struct knob_domain){1, {PRUNE_UNSTRUCTURED}};
				status_clear();
				s = PRESSO_OK;
			}
			p->layers[i] = id;
		}
		if (l->group > 1 && (rank->n > 1 || rank->v[0] != 1.0)) {
			*rank = (struct knob_domain){1, {1.0}};
			n_grouped++;
		}
	}
	policy_free(p);
	if (log && n_refused)
		fprintf(log, "presso: space: so %d layer%s where structured pruning cannot apply (like that one) %s pruned unstructured only\n",
			n_refused, n_refused == 1 ? "" : "s", n_refused == 1 ? "is" : "are");
	if (log && n_grouped)
		fprintf(log, "presso: space: %d grouped convolution%s keep%s full rank\n", n_grouped,
			n_grouped == 1 ? "" : "s", n_grouped == 1 ? "s" : "");
	return s == PRESSO_OK ? list_free_genes(sp) : s;
}

/* The sections that say what a study aims for (objectives, constraints) and
 * how it searches; they do not depend on the model. */
static enum presso_status parse_goals(const cJSON *root, struct space *sp)
{
	enum presso_status s;
	if ((s = parse_objectives(root, sp)) || (s = parse_constraints(root, sp)) ||
	    (s = parse_search(root, sp)))
		return s;
	sp->needs_latency = !isnan(sp->con.max_latency_us);
	for (int k = 0; k < sp->n_obj; k++)
		sp->needs_latency |= sp->obj[k] == OBJ_LATENCY;
	return PRESSO_OK;
}

enum presso_status space_parse(const cJSON *root, const struct layer *layers, int n_layers,
			       struct space **out)
{
	*out = NULL;
	enum presso_status s;
	if (!cJSON_IsObject(root))
		return status_fail(PRESSO_E_CONFIG, "a study config is a JSON object");
	if (n_layers < 1)
		return status_fail(PRESSO_E_CONFIG,
				   "the model has no compressible layer (Conv, Gemm, MatMul): "
				   "nothing to search");
	struct space *sp = calloc(1, sizeof *sp);
	if (!sp)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	sp->n_layers = n_layers;
	sp->layers = layers;
	sp->n_genes = n_layers * KNOB_COUNT;
	sp->ls = calloc((size_t)n_layers, sizeof *sp->ls);
	sp->free_genes = malloc(sizeof(int) * (size_t)sp->n_genes);
	if (!sp->ls || !sp->free_genes) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	if ((s = parse_space(root, sp)) || (s = parse_goals(root, sp)))
		goto fail;
	if ((s = list_free_genes(sp)) != PRESSO_OK)
		goto fail;
	*out = sp;
	return PRESSO_OK;
fail:
	space_free(sp);
	return s;
}

enum presso_status space_parse_goals(const cJSON *root, struct space **out)
{
	*out = NULL;
	if (!cJSON_IsObject(root))
		return status_fail(PRESSO_E_CONFIG, "a study config is a JSON object");
	struct space *sp = calloc(1, sizeof *sp);
	if (!sp)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status s = parse_goals(root, sp);
	if (s != PRESSO_OK) {
		space_free(sp);
		return s;
	}
	*out = sp;
	return PRESSO_OK;
}

void space_free(struct space *s)
{
	if (!s)
		return;
	free(s->ls);
	free(s->free_genes);
	free(s);
}

double space_size(const struct space *s)
{
	double n = 1;
	for (int i = 0; i < s->n_free; i++) {
		int g = s->free_genes[i];
		n *= s->ls[g / KNOB_COUNT].d[g % KNOB_COUNT].n;
	}
	return n;
}

const char *space_size_text(double size, char *buf, size_t n)
{
	if (isinf(size))
		snprintf(buf, n, "more than 1e+308");
	else
		snprintf(buf, n, "%.3g", size);
	return buf;
}

/* --- genomes ------------------------------------------------------------------ */

void space_genome_random(const struct space *s, struct rng *r, uint8_t *g)
{
	memset(g, 0, (size_t)s->n_genes);
	for (int i = 0; i < s->n_free; i++) {
		int k = s->free_genes[i];
		g[k] = (uint8_t)rng_below(r, (uint64_t)s->ls[k / KNOB_COUNT].d[k % KNOB_COUNT].n);
	}
}

void space_genome_to_policy(const struct space *s, const uint8_t *g, struct policy *p)
{
	PRESSO_CHECK(p->n_layers == s->n_layers);
	for (int i = 0; i < s->n_layers; i++) {
		struct layer_policy lp = policy_default_layer();
		for (int k = 0; k < KNOB_COUNT; k++) {
			const struct knob_domain *d = &s->ls[i].d[k];
			int idx = g[i * KNOB_COUNT + k];
			PRESSO_CHECK(idx < d->n);
			knobs[k].set(&lp, d->v[idx]);
		}
		p->layers[i] = lp;
	}
}

bool space_genome_from_policy(const struct space *s, const struct policy *p, uint8_t *g)
{
	bool exact = p->n_layers == s->n_layers;
	for (int i = 0; i < s->n_layers; i++) {
		struct layer_policy lp = i < p->n_layers ? p->layers[i] : policy_default_layer();
		for (int k = 0; k < KNOB_COUNT; k++) {
			const struct knob_domain *d = &s->ls[i].d[k];
			double v = knobs[k].get(&lp);
			int best = 0;
			for (int j = 1; j < d->n; j++)
				if (fabs(d->v[j] - v) <= fabs(d->v[best] - v))
					best = j; /* ascending: a tie goes to the larger */
			exact &= d->v[best] == v;
			g[i * KNOB_COUNT + k] = (uint8_t)best;
		}
	}
	return exact;
}

enum presso_status space_genome_seed(const struct space *s, int which, uint8_t *g)
{
	PRESSO_CHECK(which >= 0 && which < SPACE_N_SEEDS);
	struct policy *p = NULL;
	enum presso_status st =
		policy_load(which == 0 ? "int8" : "int4", s->layers, s->n_layers, &p);
	if (st != PRESSO_OK)
		return st;
	space_genome_from_policy(s, p, g);
	policy_free(p);
	return PRESSO_OK;
}
