/* config.c - reading and checking a study config (schema in config.h).
 *
 * Every field goes through a json_get getter, so a bad value is reported with its
 * path; every object is checked for unknown keys before its fields are read.
 * Sections that later stages define (search, space, objectives,
 * constraints, finetune) are only checked to be objects here; their owners read them from
 * cfg->json. On any error nothing is returned: *out stays NULL.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/json_get.h"

/* cJSON numbers are doubles: integers above 2^53 - 1 are not exact. */
#define MAX_EXACT_INT 9007199254740991LL
#define MAX_SPLIT_IMAGES 2147483647LL
#define MAX_BATCH 4096
#define MAX_THREADS 256
#define MAX_CONFIG_BYTES (64 << 20)

static const char *const top_keys[] = {"name",  "model",  "data",       "eval",
				       "quant", "search", "space",      "objectives",
				       "constraints", "finetune", NULL};
/* Sections later stages define; only their type is checked here. */
static const char *const later_sections[] = {"search", "space", "objectives",
					     "constraints", "finetune", NULL};
static const char *const quant_keys[] = {"calibration", "percentile", "rounding", "requant",
					 "repair", "repair_images", NULL};
static const char *const roundings[] = {"nearest", "gptq", NULL};
static const char *const requants[] = {"float", "q31", NULL};
static const char *const calib_methods[] = {"minmax", "percentile", "mse", NULL};
static const char *const data_keys[] = {"format",      "train_images", "train_labels",
					"test_images", "test_labels",  "channels_last",
					"train_dir",   "test_dir",     "resize",
					"crop",        "channels",     "normalize",
					"splits",      NULL};
/* the keys of one format only, and the format they belong to */
static const char *const file_keys[] = {"train_images", "train_labels", "test_images",
					"test_labels", "channels_last", NULL};
static const char *const folder_keys[] = {"train_dir", "test_dir", "resize", "crop", "channels",
					  NULL};
/* indexed by enum folder_channels */
static const char *const folder_channels[] = {"rgb", "bgr", "gray", NULL};
static const char *const normalize_keys[] = {"scale", "mean", "std", NULL};
static const char *const splits_keys[] = {"seed", "calibration", "validation", "test", NULL};
static const char *const eval_keys[] = {"batch", "threads", NULL};
static const char *const formats[] = {"idx", "npy", "folder", NULL};
/* the largest resize or crop side: 16384 pixels */
#define MAX_IMAGE_SIDE 16384

static char *dup_str(const char *s)
{
	char *d = strdup(s);
	if (!d)
		status_fail(PRESSO_E_NOMEM, "out of memory");
	return d;
}

/* base_dir "/" p, or p itself when absolute or when base_dir is "." or "". */
static char *resolve(const char *base_dir, const char *p)
{
	if (p[0] == '/' || !base_dir || !*base_dir || strcmp(base_dir, ".") == 0)
		return dup_str(p);
	size_t nb = strlen(base_dir), np = strlen(p);
	bool slash = base_dir[nb - 1] == '/';
	char *out = malloc(nb + np + 2);
	if (!out) {
		status_fail(PRESSO_E_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(out, base_dir, nb);
	if (!slash)
		out[nb++] = '/';
	memcpy(out + nb, p, np + 1);
	return out;
}

/* A required non-empty path string at path.key, resolved against base_dir. */
static enum presso_status get_path(const cJSON *obj, const char *path, const char *key,
				   const char *base_dir, char **out)
{
	const char *s = NULL;
	enum presso_status st = json_get_string(obj, path, key, true, NULL, &s);
	if (st != PRESSO_OK)
		return st;
	if (!*s)
		return status_fail(PRESSO_E_CONFIG, "%s%s%s: expected a file path, got \"\"", path,
				   *path ? "." : "", key);
	*out = resolve(base_dir, s);
	return *out ? PRESSO_OK : PRESSO_E_NOMEM;
}

static enum presso_status parse_normalize(const cJSON *data, struct normalize *norm)
{
	const cJSON *obj = NULL;
	double scale = 1.0, mean[DATASET_MAX_CHANNELS] = {0}, std[DATASET_MAX_CHANNELS] = {1};
	int n_mean = 1, n_std = 1;
	enum presso_status st;

	st = json_get_object(data, "data", "normalize", false, &obj);
	if (st != PRESSO_OK)
		return st;
	st = json_check_keys(obj, "data.normalize", normalize_keys);
	if (st != PRESSO_OK)
		return st;
	st = json_get_double(obj, "data.normalize", "scale", false, -HUGE_VAL, HUGE_VAL, &scale);
	if (st != PRESSO_OK)
		return st;
	if (!(scale > 0) || (float)scale == 0 || !isfinite((float)scale))
		return status_fail(PRESSO_E_CONFIG,
				   "data.normalize.scale: expected a number > 0, got %.15g", scale);
	st = json_get_double_array(obj, "data.normalize", "mean", false, DATASET_MAX_CHANNELS,
				   -HUGE_VAL, HUGE_VAL, mean, &n_mean);
	if (st != PRESSO_OK)
		return st;
	st = json_get_double_array(obj, "data.normalize", "std", false, DATASET_MAX_CHANNELS,
				   -HUGE_VAL, HUGE_VAL, std, &n_std);
	if (st != PRESSO_OK)
		return st;
	for (int i = 0; i < n_std; i++)
		if (!(std[i] > 0) || (float)std[i] == 0 || !isfinite((float)std[i]))
			return status_fail(PRESSO_E_CONFIG,
					   "data.normalize.std[%d]: expected a number > 0, got %.15g",
					   i, std[i]);
	if (n_mean != n_std && n_mean != 1 && n_std != 1)
		return status_fail(PRESSO_E_CONFIG,
				   "data.normalize: mean has %d entries and std %d; expected the "
				   "same count, or 1 to share one value across channels",
				   n_mean, n_std);
	/* One entry is shared by every channel: broadcast it to the other's count. */
	norm->n_channels = n_mean > n_std ? n_mean : n_std;
	norm->n_mean = n_mean;
	norm->n_std = n_std;
	norm->scale = (float)scale;
	for (int c = 0; c < norm->n_channels; c++) {
		norm->mean[c] = (float)mean[n_mean == 1 ? 0 : c];
		norm->std[c] = (float)std[n_std == 1 ? 0 : c];
	}
	for (int c = norm->n_channels; c < DATASET_MAX_CHANNELS; c++) {
		norm->mean[c] = 0.0f;
		norm->std[c] = 1.0f;
	}
	return PRESSO_OK;
}

static enum presso_status parse_splits(const cJSON *data, struct data_config *dc)
{
	const cJSON *obj = NULL;
	int64_t seed = 1, n_calib = 1000, n_valid = 5000, n_test = 0;
	enum presso_status st;

	st = json_get_object(data, "data", "splits", false, &obj);
	if (st != PRESSO_OK)
		return st;
	st = json_check_keys(obj, "data.splits", splits_keys);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "data.splits", "seed", false, 0, MAX_EXACT_INT, &seed);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "data.splits", "calibration", false, 1, MAX_SPLIT_IMAGES,
				  &n_calib);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "data.splits", "validation", false, 1, MAX_SPLIT_IMAGES,
				  &n_valid);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "data.splits", "test", false, 0, MAX_SPLIT_IMAGES, &n_test);
	if (st != PRESSO_OK)
		return st;
	dc->seed = (uint64_t)seed;
	dc->n_calib = n_calib;
	dc->n_valid = n_valid;
	dc->n_test = n_test;
	return PRESSO_OK;
}

static enum presso_status parse_data(const cJSON *root, const char *base_dir,
				     struct data_config *dc)
{
	const cJSON *data = NULL;
	const char *format = "idx";
	enum presso_status st;

	st = json_get_object(root, "", "data", true, &data);
	if (st != PRESSO_OK)
		return st;
	st = json_check_keys(data, "data", data_keys);
	if (st != PRESSO_OK)
		return st;
	st = json_get_string(data, "data", "format", false, formats, &format);
	if (st != PRESSO_OK)
		return st;
	dc->format = dup_str(format);
	if (!dc->format)
		return PRESSO_E_NOMEM;
	bool folder = strcmp(format, "folder") == 0;
	/* the other format's keys are an error, not silently unused */
	const char *const *other = folder ? file_keys : folder_keys;
	for (int i = 0; other[i]; i++)
		if (cJSON_GetObjectItemCaseSensitive(data, other[i]))
			return status_fail(PRESSO_E_CONFIG,
					   "data.%s: not used with \"format\": \"%s\"%s", other[i],
					   format,
					   folder ? " (an image folder has data.train_dir and data.test_dir)"
						  : " (it belongs to \"format\": \"folder\")");
	dc->channels = -1;
	if (folder) {
		int64_t resize = 0, crop[2] = {0, 0};
		const char *channels = NULL;
		st = get_path(data, "data", "train_dir", base_dir, &dc->train_dir);
		if (st == PRESSO_OK)
			st = get_path(data, "data", "test_dir", base_dir, &dc->test_dir);
		if (st == PRESSO_OK)
			st = json_get_int(data, "data", "resize", false, 1, MAX_IMAGE_SIDE, &resize);
		if (st == PRESSO_OK)
			st = json_get_int_pair(data, "data", "crop", false, 1, MAX_IMAGE_SIDE, crop);
		if (st == PRESSO_OK)
			st = json_get_string(data, "data", "channels", false, folder_channels,
					     &channels);
		if (st != PRESSO_OK)
			return st;
		dc->resize = (int)resize;
		dc->crop_h = (int)crop[0];
		dc->crop_w = (int)crop[1];
		for (int i = 0; channels && folder_channels[i]; i++)
			if (strcmp(channels, folder_channels[i]) == 0)
				dc->channels = i;
	} else {
		st = get_path(data, "data", "train_images", base_dir, &dc->train_images);
		if (st == PRESSO_OK)
			st = get_path(data, "data", "train_labels", base_dir, &dc->train_labels);
		if (st == PRESSO_OK)
			st = get_path(data, "data", "test_images", base_dir, &dc->test_images);
		if (st == PRESSO_OK)
			st = get_path(data, "data", "test_labels", base_dir, &dc->test_labels);
		if (st == PRESSO_OK)
			st = json_get_bool(data, "data", "channels_last", false, &dc->channels_last);
	}
	if (st == PRESSO_OK)
		st = parse_normalize(data, &dc->norm);
	if (st == PRESSO_OK)
		st = parse_splits(data, dc);
	return st;
}

static enum presso_status parse_eval(const cJSON *root, struct eval_config *ec)
{
	const cJSON *obj = NULL;
	int64_t batch = 64, threads = 1;
	enum presso_status st;

	st = json_get_object(root, "", "eval", false, &obj);
	if (st == PRESSO_OK)
		st = json_check_keys(obj, "eval", eval_keys);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "eval", "batch", false, 1, MAX_BATCH, &batch);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "eval", "threads", false, 1, MAX_THREADS, &threads);
	if (st != PRESSO_OK)
		return st;
	ec->batch = (int)batch;
	ec->threads = (int)threads;
	return PRESSO_OK;
}

static enum presso_status parse_quant(const cJSON *root, struct quant_section *q)
{
	const cJSON *obj = NULL;
	const char *method = NULL;
	enum presso_status st;

	q->method = CALIB_PERCENTILE;
	q->percentile = 99.99;
	st = json_get_object(root, "", "quant", false, &obj);
	if (st == PRESSO_OK)
		st = json_check_keys(obj, "quant", quant_keys);
	if (st == PRESSO_OK)
		st = json_get_string(obj, "quant", "calibration", false, calib_methods, &method);
	if (st == PRESSO_OK)
		st = json_get_double(obj, "quant", "percentile", false, 50.0, 100.0, &q->percentile);
	const char *rounding = NULL;
	if (st == PRESSO_OK)
		st = json_get_string(obj, "quant", "rounding", false, roundings, &rounding);
	q->gptq = !rounding || strcmp(rounding, "gptq") == 0;
	const char *requant = NULL;
	if (st == PRESSO_OK)
		st = json_get_string(obj, "quant", "requant", false, requants, &requant);
	q->requant_q31 = requant && strcmp(requant, "q31") == 0;
	q->repair = true;
	q->repair_images = 256;
	if (st == PRESSO_OK)
		st = json_get_bool(obj, "quant", "repair", false, &q->repair);
	if (st == PRESSO_OK)
		st = json_get_int(obj, "quant", "repair_images", false, 1, 100000, &q->repair_images);
	if (st != PRESSO_OK)
		return st;
	for (int i = 0; method && calib_methods[i]; i++)
		if (strcmp(method, calib_methods[i]) == 0)
			q->method = (enum calib_method)i;
	return PRESSO_OK;
}

/* 1-based line and column of byte offset `at` in text. */
static void line_col(const char *text, size_t at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < at && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Parses text (whose source is `where` in messages: a file path, or "" for a
 * string) into a config; see config_parse(). */
static enum presso_status parse(const char *text, const char *where, const char *base_dir,
				const char *name, struct config **out)
{
	struct config *cfg = NULL;
	const char *end = NULL;
	const char *s = NULL;
	enum presso_status st;

	*out = NULL;
	cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	/* ParseWithOpts reports the error position through `end`, unlike
	 * cJSON_GetErrorPtr() which is a process-wide global and not thread-safe. */
	bool oom;
	cfg->json = json_parse(text, &end, true, &oom);
	if (!cfg->json && oom) {
		st = status_fail(PRESSO_E_NOMEM, "%s%sout of memory reading the config", where,
				 *where ? ": " : "");
		goto fail;
	}
	if (!cfg->json) {
		int line, col;
		size_t at = end && end >= text ? (size_t)(end - text) : 0;
		line_col(text, at, &line, &col);
		size_t near = strcspn(text + at, "\r\n");
		if (!text[0] || strspn(text, " \t\r\n") == strlen(text))
			st = status_fail(PRESSO_E_CONFIG, "%s%s%d:%d: invalid JSON: the text is empty",
					 where, *where ? ":" : "", line, col);
		else
			st = status_fail(PRESSO_E_CONFIG, "%s%s%d:%d: invalid JSON near '%.*s'", where,
					 *where ? ":" : "", line, col, (int)(near > 30 ? 30 : near),
					 text + at);
		goto fail;
	}
	if (!cJSON_IsObject(cfg->json)) {
		st = status_fail(PRESSO_E_CONFIG, "%s%sexpected a JSON object at the top level",
				 where, *where ? ": " : "");
		goto fail;
	}
	cfg->path = dup_str(where);
	if (!cfg->path) {
		st = PRESSO_E_NOMEM;
		goto fail;
	}

	st = json_check_keys(cfg->json, "", top_keys);
	if (st != PRESSO_OK)
		goto wrap;
	s = name && *name ? name : "study";
	st = json_get_string(cfg->json, "", "name", false, NULL, &s);
	if (st != PRESSO_OK)
		goto wrap;
	if (!*s) {
		st = status_fail(PRESSO_E_CONFIG, "name: expected a non-empty string, got \"\"");
		goto wrap;
	}
	cfg->name = dup_str(s);
	if (!cfg->name) {
		st = PRESSO_E_NOMEM;
		goto fail;
	}
	st = get_path(cfg->json, "", "model", base_dir, &cfg->model_path);
	if (st != PRESSO_OK)
		goto wrap;
	st = parse_data(cfg->json, base_dir, &cfg->data);
	if (st != PRESSO_OK)
		goto wrap;
	st = parse_eval(cfg->json, &cfg->eval);
	if (st != PRESSO_OK)
		goto wrap;
	st = parse_quant(cfg->json, &cfg->quant);
	if (st != PRESSO_OK)
		goto wrap;
	for (const char *const *sec = later_sections; *sec; sec++) {
		const cJSON *obj;
		st = json_get_object(cfg->json, "", *sec, false, &obj);
		if (st != PRESSO_OK)
			goto wrap;
	}
	*out = cfg;
	return PRESSO_OK;
wrap:
	if (*where && st != PRESSO_E_NOMEM)
		status_wrap(st, "%s", where);
fail:
	config_free(cfg);
	return st;
}

enum presso_status config_parse(const char *text, const char *base_dir, const char *name,
				struct config **out)
{
	return parse(text, "", base_dir ? base_dir : ".", name, out);
}

/* Reads a whole config file into a NUL-terminated buffer (malloc'd). */
static enum presso_status read_file(const char *path, char **out)
{
	size_t n;
	enum presso_status st = file_read_all(path, "a config file", MAX_CONFIG_BYTES, out, &n);
	if (st != PRESSO_OK)
		return st;
	if (memchr(*out, '\0', n)) {
		free(*out);
		*out = NULL;
		return status_fail(PRESSO_E_CONFIG, "%s: contains a NUL byte; not a JSON file", path);
	}
	return PRESSO_OK;
}

enum presso_status config_load(const char *path, struct config **out)
{
	char *text = NULL, *dir = NULL, *name = NULL;
	enum presso_status st;

	*out = NULL;
	st = read_file(path, &text);
	if (st != PRESSO_OK)
		return st;
	/* The config's folder, and its file name without ".json" as the default name. */
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	size_t nb = strlen(base);
	if (nb > 5 && strcmp(base + nb - 5, ".json") == 0)
		nb -= 5;
	name = strndup(base, nb);
	if (!dir || !name) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	st = parse(text, path, dir, name, out);
fail:
	free(text);
	free(dir);
	free(name);
	return st;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->name);
	free(cfg->model_path);
	free(cfg->data.format);
	free(cfg->data.train_images);
	free(cfg->data.train_labels);
	free(cfg->data.test_images);
	free(cfg->data.test_labels);
	free(cfg->data.train_dir);
	free(cfg->data.test_dir);
	cJSON_Delete(cfg->json);
	free(cfg);
}
