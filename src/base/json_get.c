/* json_get.c - typed getters over cJSON that name the path of a bad field.
 *
 * Every message has the form "PATH.KEY: expected WHAT, got WHAT-WAS-THERE"
 * ("data.splits.validation: expected an integer in 1..60000, got 3.5"), or
 * "KEY: ..." when PATH is "" (the top level); array elements are "PATH.KEY[i]".
 * obj may be NULL, meaning an absent optional section: every key is then missing,
 * so callers can read an optional section's fields without testing for it.
 *
 * cJSON keeps every number as a double, so an integer is a finite, integral
 * double inside [lo, hi]; beyond 2^53 doubles are not exact, which callers
 * account for in their bounds.
 */
#define _POSIX_C_SOURCE 200809L
#include "base/json_get.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BYTES 256
#define DESC_BYTES 256

/* --- parsing ----------------------------------------------------------------- */

static _Thread_local unsigned n_failed; /* cJSON allocations that failed on this thread */
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *noting_malloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		n_failed++;
	return p;
}

static void install_hooks(void)
{
	cJSON_Hooks hooks = {noting_malloc, free};
	cJSON_InitHooks(&hooks);
}

struct cJSON *json_parse(const char *text, const char **end, bool require_end,
			 bool *out_of_memory)
{
	unsigned since = json_failures();
	const char *stop = NULL;
	cJSON *doc = text ? cJSON_ParseWithOpts(text, &stop, require_end) : NULL;
	if (end)
		*end = stop;
	if (out_of_memory)
		*out_of_memory = !doc && n_failed != since;
	return doc;
}

unsigned json_failures(void)
{
	pthread_once(&hooks_once, install_hooks);
	return n_failed;
}

char *json_print(const struct cJSON *doc, bool formatted, unsigned since)
{
	if (!doc || n_failed != since)
		return NULL;
	char *text = formatted ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
	if (text && n_failed != since) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- getters ----------------------------------------------------------------- */

/* "path.key", or "key" at the top level. */
static const char *join(char *buf, const char *path, const char *key)
{
	if (path && *path)
		snprintf(buf, PATH_BYTES, "%s.%s", path, key);
	else
		snprintf(buf, PATH_BYTES, "%s", key);
	return buf;
}

/* What was found, for messages: "3.5", "a string", "nothing". */
static const char *found(const cJSON *item, char *buf, size_t cap)
{
	if (!item)
		return "nothing (the key is missing)";
	if (cJSON_IsNumber(item)) {
		snprintf(buf, cap, "%.15g", item->valuedouble);
		return buf;
	}
	if (cJSON_IsString(item)) {
		snprintf(buf, cap, "the string \"%.40s%s\"", item->valuestring,
			 strlen(item->valuestring) > 40 ? "..." : "");
		return buf;
	}
	if (cJSON_IsBool(item))
		return cJSON_IsTrue(item) ? "true" : "false";
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an invalid value";
}

static enum presso_status bad(const char *where, const char *expected, const cJSON *item)
{
	char buf[96];
	return status_fail(PRESSO_E_CONFIG, "%s: expected %s, got %s", where, expected,
			   found(item, buf, sizeof buf));
}

/* obj[key], or NULL when obj is NULL or lacks key. */
static const cJSON *item_of(const cJSON *obj, const char *key)
{
	return obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

enum presso_status json_check_keys(const cJSON *obj, const char *path,
				   const char *const *allowed)
{
	if (!obj)
		return PRESSO_OK;
	for (const cJSON *it = obj->child; it; it = it->next) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = it->string && strcmp(it->string, *a) == 0;
		if (!ok) {
			char list[DESC_BYTES];
			size_t pos = 0;
			list[0] = '\0';
			for (const char *const *a = allowed; *a && pos < sizeof list; a++)
				pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s",
							a == allowed ? "" : ", ", *a);
			return status_fail(PRESSO_E_CONFIG,
					   "%s%sunknown key '%s' (expected one of: %s)",
					   path && *path ? path : "", path && *path ? ": " : "",
					   it->string ? it->string : "", list);
		}
		/* cJSON keeps duplicates but reads the first: a silent trap. */
		for (const cJSON *o = obj->child; o != it; o = o->next)
			if (strcmp(o->string, it->string) == 0)
				return status_fail(PRESSO_E_CONFIG, "%s%skey '%s' appears twice",
						   path && *path ? path : "",
						   path && *path ? ": " : "", it->string);
	}
	return PRESSO_OK;
}

enum presso_status json_get_object(const cJSON *obj, const char *path, const char *key,
				   bool required, const cJSON **out)
{
	char where[PATH_BYTES];
	const cJSON *it = item_of(obj, key);
	if (!it) {
		*out = NULL;
		return required ? bad(join(where, path, key), "an object", NULL) : PRESSO_OK;
	}
	if (!cJSON_IsObject(it))
		return bad(join(where, path, key), "an object", it);
	*out = it;
	return PRESSO_OK;
}

/* "an integer in 1..64", "an integer >= 0", "an integer". */
static void int_desc(char *buf, size_t cap, int64_t lo, int64_t hi)
{
	if (lo == INT64_MIN && hi == INT64_MAX)
		snprintf(buf, cap, "an integer");
	else if (hi == INT64_MAX)
		snprintf(buf, cap, "an integer >= %lld", (long long)lo);
	else if (lo == INT64_MIN)
		snprintf(buf, cap, "an integer <= %lld", (long long)hi);
	else
		snprintf(buf, cap, "an integer in %lld..%lld", (long long)lo, (long long)hi);
}

enum presso_status json_get_int(const cJSON *obj, const char *path, const char *key,
				bool required, int64_t lo, int64_t hi, int64_t *out)
{
	char where[PATH_BYTES], desc[DESC_BYTES];
	const cJSON *it = item_of(obj, key);
	int_desc(desc, sizeof desc, lo, hi);
	if (!it)
		return required ? bad(join(where, path, key), desc, NULL) : PRESSO_OK;
	if (!cJSON_IsNumber(it))
		return bad(join(where, path, key), desc, it);
	double v = it->valuedouble;
	/* -2^63 and 2^63 are exact doubles; inside them the cast is defined. */
	if (!isfinite(v) || floor(v) != v || v < -9223372036854775808.0 ||
	    v >= 9223372036854775808.0)
		return bad(join(where, path, key), desc, it);
	int64_t i = (int64_t)v;
	if (i < lo || i > hi)
		return bad(join(where, path, key), desc, it);
	*out = i;
	return PRESSO_OK;
}

/* "a number in [0, 1]", "a number >= 0", "a number". */
static void double_desc(char *buf, size_t cap, double lo, double hi)
{
	bool has_lo = isfinite(lo), has_hi = isfinite(hi);
	if (has_lo && has_hi)
		snprintf(buf, cap, "a number in [%.15g, %.15g]", lo, hi);
	else if (has_lo)
		snprintf(buf, cap, "a number >= %.15g", lo);
	else if (has_hi)
		snprintf(buf, cap, "a number <= %.15g", hi);
	else
		snprintf(buf, cap, "a number");
}

static bool double_ok(const cJSON *it, double lo, double hi)
{
	return cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble >= lo &&
	       it->valuedouble <= hi;
}

enum presso_status json_get_double(const cJSON *obj, const char *path, const char *key,
				   bool required, double lo, double hi, double *out)
{
	char where[PATH_BYTES], desc[DESC_BYTES];
	const cJSON *it = item_of(obj, key);
	double_desc(desc, sizeof desc, lo, hi);
	if (!it)
		return required ? bad(join(where, path, key), desc, NULL) : PRESSO_OK;
	if (!double_ok(it, lo, hi))
		return bad(join(where, path, key), desc, it);
	*out = it->valuedouble;
	return PRESSO_OK;
}

enum presso_status json_get_bool(const cJSON *obj, const char *path, const char *key,
				 bool required, bool *out)
{
	char where[PATH_BYTES];
	const cJSON *it = item_of(obj, key);
	if (!it)
		return required ? bad(join(where, path, key), "true or false", NULL) : PRESSO_OK;
	if (!cJSON_IsBool(it))
		return bad(join(where, path, key), "true or false", it);
	*out = cJSON_IsTrue(it);
	return PRESSO_OK;
}

enum presso_status json_get_string(const cJSON *obj, const char *path, const char *key,
				   bool required, const char *const *choices, const char **out)
{
	char where[PATH_BYTES], desc[DESC_BYTES];
	const cJSON *it = item_of(obj, key);
	snprintf(desc, sizeof desc, "a string");
	if (choices) {
		size_t pos = (size_t)snprintf(desc, sizeof desc, "one of");
		for (const char *const *c = choices; *c && pos < sizeof desc; c++)
			pos += (size_t)snprintf(desc + pos, sizeof desc - pos, "%s \"%s\"",
						c == choices ? "" : ",", *c);
	}
	if (!it)
		return required ? bad(join(where, path, key), desc, NULL) : PRESSO_OK;
	if (!cJSON_IsString(it) || !it->valuestring)
		return bad(join(where, path, key), desc, it);
	if (choices) {
		const char *const *c = choices;
		while (*c && strcmp(*c, it->valuestring) != 0)
			c++;
		if (!*c)
			return bad(join(where, path, key), desc, it);
	}
	*out = it->valuestring;
	return PRESSO_OK;
}

enum presso_status json_get_double_array(const cJSON *obj, const char *path, const char *key,
					 bool required, int max_n, double lo, double hi,
					 double *out, int *n_out)
{
	char where[PATH_BYTES], desc[DESC_BYTES];
	const cJSON *it = item_of(obj, key);
	if (max_n == 1)
		snprintf(desc, sizeof desc, "an array of 1 number");
	else
		snprintf(desc, sizeof desc, "an array of 1..%d numbers", max_n);
	if (!it)
		return required ? bad(join(where, path, key), desc, NULL) : PRESSO_OK;
	if (!cJSON_IsArray(it))
		return bad(join(where, path, key), desc, it);
	int n = cJSON_GetArraySize(it);
	if (n < 1 || n > max_n)
		return status_fail(PRESSO_E_CONFIG, "%s: expected %s, got %d entries",
				   join(where, path, key), desc, n);
	int i = 0;
	for (const cJSON *e = it->child; e; e = e->next, i++) {
		if (!double_ok(e, lo, hi)) {
			char elem[PATH_BYTES + 16];
			double_desc(desc, sizeof desc, lo, hi);
			snprintf(elem, sizeof elem, "%s[%d]", join(where, path, key), i);
			return bad(elem, desc, e);
		}
	}
	i = 0;
	for (const cJSON *e = it->child; e; e = e->next)
		out[i++] = e->valuedouble;
	*n_out = n;
	return PRESSO_OK;
}

/* v is an integer in [lo, hi]. */
static bool int_ok(const cJSON *it, int64_t lo, int64_t hi, int64_t *v)
{
	if (!cJSON_IsNumber(it))
		return false;
	double d = it->valuedouble;
	if (!isfinite(d) || floor(d) != d || d < -9223372036854775808.0 ||
	    d >= 9223372036854775808.0)
		return false;
	*v = (int64_t)d;
	return *v >= lo && *v <= hi;
}

enum presso_status json_get_int_pair(const cJSON *obj, const char *path, const char *key,
				     bool required, int64_t lo, int64_t hi, int64_t out[2])
{
	char where[PATH_BYTES], desc[DESC_BYTES + 32], one[DESC_BYTES];
	const cJSON *it = item_of(obj, key);
	int_desc(one, sizeof one, lo, hi);
	snprintf(desc, sizeof desc, "%s or an array of 2 of them", one);
	if (!it)
		return required ? bad(join(where, path, key), desc, NULL) : PRESSO_OK;
	int64_t a, b;
	if (cJSON_IsNumber(it)) {
		if (!int_ok(it, lo, hi, &a))
			return bad(join(where, path, key), desc, it);
		out[0] = out[1] = a;
		return PRESSO_OK;
	}
	if (!cJSON_IsArray(it))
		return bad(join(where, path, key), desc, it);
	if (cJSON_GetArraySize(it) != 2)
		return status_fail(PRESSO_E_CONFIG, "%s: expected %s, got %d entries",
				   join(where, path, key), desc, cJSON_GetArraySize(it));
	const cJSON *e0 = it->child, *e1 = e0->next;
	for (int i = 0; i < 2; i++) {
		const cJSON *e = i ? e1 : e0;
		if (!int_ok(e, lo, hi, i ? &b : &a)) {
			char elem[PATH_BYTES + 16];
			snprintf(elem, sizeof elem, "%s[%d]", join(where, path, key), i);
			return bad(elem, one, e);
		}
	}
	out[0] = a;
	out[1] = b;
	return PRESSO_OK;
}
