/* json_get.h - small typed getters over cJSON that report the path of a bad field.
 *
 * Each getter reads obj[key]; `path` is the dotted path of obj ("data.splits") used
 * in messages ("data.splits.validation: expected a positive integer"). A missing
 * key is an error when required, else *out keeps the caller's default.
 * obj may be NULL (an absent optional section): every key is then missing.
 * All return PRESSO_E_CONFIG with the message set on a bad value, in the form
 * "PATH.KEY: expected WHAT, got WHAT-WAS-THERE" ("KEY: ..." when path is "").
 */
#ifndef PRESSO_JSON_GET_H
#define PRESSO_JSON_GET_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

struct cJSON;

/* cJSON_ParseWithOpts (end may be NULL; require_end: nothing but blanks may
 * follow the document) that also says why it returned NULL: *out_of_memory
 * (may be NULL) is true when an allocation failed, false when the text does
 * not parse, which cJSON alone cannot tell apart. Free the result with
 * cJSON_Delete.
 *
 * This and json_failures() route cJSON's allocations, for the whole process,
 * through malloc with a per-thread count of the ones that failed. */
struct cJSON *json_parse(const char *text, const char **end, bool require_end,
			 bool *out_of_memory);

/* This thread's count of failed cJSON allocations so far. Take it before
 * building a document (cJSON_Create..., cJSON_Add...) and hand it to
 * json_print: cJSON_Add* leave out what they cannot allocate, silently. */
unsigned json_failures(void);

/* cJSON_Print (formatted) or cJSON_PrintUnformatted of doc (malloc'd; NULL
 * doc gives NULL), or NULL when printing runs out of memory or when a cJSON
 * allocation on this thread has failed since json_failures() returned
 * `since`: then doc lacks something and is not printed. NULL always means out
 * of memory. */
char *json_print(const struct cJSON *doc, bool formatted, unsigned since);

/* Fails naming the first key of obj not in allowed (NULL-terminated list), or
 * a key that appears twice. */
enum presso_status json_check_keys(const struct cJSON *obj, const char *path,
				   const char *const *allowed);

/* obj[key] must be an object; *out points into obj (NULL if absent and optional). */
enum presso_status json_get_object(const struct cJSON *obj, const char *path, const char *key,
				   bool required, const struct cJSON **out);

/* An integer in [lo, hi]. */
enum presso_status json_get_int(const struct cJSON *obj, const char *path, const char *key,
				bool required, int64_t lo, int64_t hi, int64_t *out);

/* A finite number in [lo, hi]. */
enum presso_status json_get_double(const struct cJSON *obj, const char *path, const char *key,
				   bool required, double lo, double hi, double *out);

enum presso_status json_get_bool(const struct cJSON *obj, const char *path, const char *key,
				 bool required, bool *out);

/* A string; *out points into obj. If `choices` (NULL-terminated) is given the
 * value must be one of them. */
enum presso_status json_get_string(const struct cJSON *obj, const char *path, const char *key,
				   bool required, const char *const *choices, const char **out);

/* An integer n, read as [n, n], or an array [a, b] of two integers, each in
 * [lo, hi] (an image size: "crop": 224 or "crop": [224, 192]). */
enum presso_status json_get_int_pair(const struct cJSON *obj, const char *path, const char *key,
				     bool required, int64_t lo, int64_t hi, int64_t out[2]);

/* An array of 1..max_n finite numbers in [lo, hi]; writes *n_out. */
enum presso_status json_get_double_array(const struct cJSON *obj, const char *path,
					 const char *key, bool required, int max_n, double lo,
					 double hi, double *out, int *n_out);

#endif
