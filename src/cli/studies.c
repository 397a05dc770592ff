/* studies.c - `presso studies`: what a database holds, one line per study.
 *
 * For each study: status, trial counts by state, the FP32 accuracy, the best
 * accuracy (and its trial), the smallest size within STORE_NEAR_FP32_POINTS of
 * the FP32 accuracy (and its trial), the size of the accuracy/size Pareto
 * front, when it started and its last activity (latest trial start,
 * heartbeat or end). The database is opened read-only.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/json_get.h"
#include "db/store.h"

#define N_COLS 11
#define CELL_BYTES 160

/* Local time "2024-05-01 12:34" for tables; "-" if t is not a time. */
static const char *local_time(double t, char *buf, size_t cap)
{
	struct tm tm;
	time_t s = (time_t)t;
	if (!(t > 0) || !localtime_r(&s, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, cap, "-");
	return buf;
}

/* UTC "2024-05-01T12:34:56Z" for JSON. */
static const char *utc_time(double t, char *buf, size_t cap)
{
	struct tm tm;
	time_t s = (time_t)t;
	if (!(t > 0) || !gmtime_r(&s, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "-");
	return buf;
}

/* Display width of UTF-8 text (continuation bytes take no column). */
static int width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void print_table(const char *db, const struct study_summary *ss, int n)
{
	static const char *const head[N_COLS] = {
		"study",    "status",   "running", "complete", "failed",        "FP32 acc",
		"best acc", "smallest within 1 pt", "front (all)", "started", "last activity",
	};
	/* right-aligned columns: the numbers */
	static const bool right[N_COLS] = {false, false, true, true,  true, true,
					   true,  true,  true, false, false};
	char(*cells)[N_COLS][CELL_BYTES] = calloc((size_t)n + 1, sizeof *cells);
	int w[N_COLS];
	if (!cells) {
		fprintf(stderr, "presso studies: out of memory\n");
		return;
	}
	for (int c = 0; c < N_COLS; c++)
		snprintf(cells[0][c], CELL_BYTES, "%s", head[c]);
	for (int i = 0; i < n; i++) {
		const struct study_summary *s = &ss[i];
		char(*r)[CELL_BYTES] = cells[i + 1];
		snprintf(r[0], CELL_BYTES, "%s", s->info.name ? s->info.name : "?");
		snprintf(r[1], CELL_BYTES, "%s", s->info.status ? s->info.status : "?");
		snprintf(r[2], CELL_BYTES, "%d", s->n_running);
		snprintf(r[3], CELL_BYTES, "%d", s->n_complete);
		snprintf(r[4], CELL_BYTES, "%d", s->n_failed);
		snprintf(r[5], CELL_BYTES, "%.2f", s->info.baseline.accuracy);
		if (isnan(s->best_accuracy))
			snprintf(r[6], CELL_BYTES, "-");
		else
			snprintf(r[6], CELL_BYTES, "%.2f (#%lld)", s->best_accuracy,
				 (long long)s->best_accuracy_trial);
		if (s->small_size_bytes < 0)
			snprintf(r[7], CELL_BYTES, "-");
		else
			snprintf(r[7], CELL_BYTES, "%.1f KB, %.1fx (#%lld)",
				 (double)s->small_size_bytes / 1024.0,
				 (double)s->info.baseline.size_bytes / (double)s->small_size_bytes,
				 (long long)s->small_trial);
		snprintf(r[8], CELL_BYTES, "%d", s->n_front);
		local_time(s->info.created_at, r[9], CELL_BYTES);
		local_time(s->last_activity, r[10], CELL_BYTES);
	}
	for (int c = 0; c < N_COLS; c++) {
		w[c] = 0;
		for (int i = 0; i <= n; i++)
			if (width(cells[i][c]) > w[c])
				w[c] = width(cells[i][c]);
	}
	printf("database: %s (%d %s)\n\n", db, n, n == 1 ? "study" : "studies");
	for (int i = 0; i <= n; i++) {
		for (int c = 0; c < N_COLS; c++) {
			int pad = w[c] - width(cells[i][c]);
			const char *sep = c + 1 < N_COLS ? "  " : "";
			if (right[c])
				printf("%*s%s%s", pad, "", cells[i][c], sep);
			else if (c + 1 < N_COLS)
				printf("%s%*s%s", cells[i][c], pad, "", sep);
			else
				printf("%s", cells[i][c]);
		}
		printf("\n");
	}
	free(cells);
	if (n)
		printf("\nfront (all): the accuracy x size front of every complete trial, constraints "
		       "not applied\n(presso search's summary counts the front of the trials that "
		       "meet them; presso pareto --where applies any)\n");
}

static void add_number_or_null(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static int print_json(const char *db, const struct study_summary *ss, int n)
{
	char t[64];
	unsigned since = json_failures();
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "database", db);
	cJSON *arr = cJSON_AddArrayToObject(root, "studies");
	for (int i = 0; i < n; i++) {
		const struct study_summary *s = &ss[i];
		const struct baseline *b = &s->info.baseline;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", s->info.name ? s->info.name : "");
		cJSON_AddStringToObject(o, "status", s->info.status ? s->info.status : "");
		cJSON_AddStringToObject(o, "model", s->info.model_path ? s->info.model_path : "");
		cJSON_AddStringToObject(o, "model_sha256",
					s->info.model_sha256 ? s->info.model_sha256 : "");
		cJSON_AddStringToObject(o, "dataset", s->info.dataset ? s->info.dataset : "");
		cJSON *tr = cJSON_AddObjectToObject(o, "trials");
		cJSON_AddNumberToObject(tr, "running", s->n_running);
		cJSON_AddNumberToObject(tr, "complete", s->n_complete);
		cJSON_AddNumberToObject(tr, "failed", s->n_failed);
		cJSON_AddNumberToObject(tr, "finetuned", s->n_finetuned);
		cJSON *fp = cJSON_AddObjectToObject(o, "fp32");
		cJSON_AddNumberToObject(fp, "accuracy", b->accuracy);
		add_number_or_null(fp, "test_accuracy", b->test_accuracy);
		cJSON_AddNumberToObject(fp, "size_bytes", (double)b->size_bytes);
		cJSON_AddNumberToObject(fp, "bops", b->bops);
		add_number_or_null(fp, "latency_us", b->latency_us);
		if (isnan(s->best_accuracy)) {
			cJSON_AddNullToObject(o, "best_accuracy");
		} else {
			cJSON *ba = cJSON_AddObjectToObject(o, "best_accuracy");
			cJSON_AddNumberToObject(ba, "trial", (double)s->best_accuracy_trial);
			cJSON_AddNumberToObject(ba, "accuracy", s->best_accuracy);
		}
		if (s->small_size_bytes < 0) {
			cJSON_AddNullToObject(o, "smallest_near_fp32");
		} else {
			cJSON *sm = cJSON_AddObjectToObject(o, "smallest_near_fp32");
			cJSON_AddNumberToObject(sm, "trial", (double)s->small_trial);
			cJSON_AddNumberToObject(sm, "size_bytes", (double)s->small_size_bytes);
			cJSON_AddNumberToObject(sm, "within_points", STORE_NEAR_FP32_POINTS);
		}
		cJSON_AddNumberToObject(o, "front_size", s->n_front);
		cJSON_AddStringToObject(o, "started", utc_time(s->info.created_at, t, sizeof t));
		cJSON_AddStringToObject(o, "last_activity", utc_time(s->last_activity, t, sizeof t));
		cJSON_AddItemToArray(arr, o);
	}
	char *text = json_print(root, true, since);
	cJSON_Delete(root);
	if (!text) {
		fprintf(stderr, "presso studies: out of memory\n");
		return 1;
	}
	puts(text);
	free(text);
	return 0;
}

int cmd_studies(int argc, char **argv)
{
	const char *db = NULL, *format = "table";
	const struct cli_opt opts[] = {
		{"db", CLI_STRING, "FILE", "the study database (opened read-only)", NULL, &db},
		{"format", CLI_STRING, "table|json", "output format (default table)", NULL, &format},
	};
	const struct cli_cmd cmd = {
		"studies",
		"Lists the studies in a database: status, trials by state, FP32 and best accuracy,\n"
		"the smallest trial within 1 point of FP32 accuracy, the size of the\n"
		"accuracy/size Pareto front, start and last activity.",
		"--db FILE [--format table|json]", opts, 2};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "db", db))
		return 2;
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "presso studies: --format must be table or json, not '%s'\n", format);
		return 2;
	}
	struct store *st;
	struct study_summary *ss = NULL;
	int n = 0;
	enum presso_status s = store_open(db, STORE_READONLY, &st);
	if (s != PRESSO_OK)
		return cli_fail("studies", s);
	s = store_list_studies(st, &ss, &n);
	store_close(st);
	if (s != PRESSO_OK)
		return cli_fail("studies", s);
	rc = 0;
	if (strcmp(format, "json") == 0)
		rc = print_json(db, ss, n);
	else if (n == 0)
		printf("database: %s holds no studies yet\n", db);
	else
		print_table(db, ss, n);
	store_study_summaries_free(ss, n);
	return rc;
}
