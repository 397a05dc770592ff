/* test_cli_store.c - `presso studies`, `presso pareto` and `presso export` as a
 * user runs them, on a database made through the store API: outputs in every
 * format, exit codes, error messages that name the problem, the export JSON,
 * --pick choosing the right trial, and failed exports leaving no file behind.
 *
 * The study "lenet" (FP32: 90 %, 100000 bytes, 10 classes) holds:
 *   1: 89.5 %, 30000 B  front        5: failed
 *   2: 88.0 %, 40000 B  dominated    6: running
 *   3: 85.0 %, 20000 B  front        7: 89.2 %, 25000 B  front
 *   4: 91.0 %, 90000 B  front
 * and "empty" holds nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/store.h"
#include "tests/fixtures.h"

#define MODEL_SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *tmp;
static char db[4200];

static const struct layer_choice layers[2] = {
	{"conv1", 8, 8, false, 0.0, 0, 1.0},
	{"fc", 4, 8, true, 0.5, 1, 0.5},
};

static void add(struct store *st, int64_t study, int bits, double acc, int64_t size)
{
	char p[256];
	snprintf(p, sizeof p,
		 "{\"default\": {\"bits\": 8, \"act_bits\": 8, \"bias_correction\": false, "
		 "\"prune\": 0.0, \"prune_kind\": \"unstructured\", \"rank\": 1.0}, "
		 "\"layers\": {\"fc\": {\"bits\": %d, \"prune\": 0.5, \"prune_kind\": "
		 "\"structured\", \"rank\": 0.5}}}",
		 bits);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, study, p, NULL, "w0", &n), PRESSO_OK, "%s", status_msg());
	struct trial_metrics m = {acc, acc - 0.5, size, (double)size * 64, 120.0, 6.0, 0.25, 0.75,
				  1000, false, 0, 0};
	cr_assert_eq(store_complete_trial(st, study, n, &m, layers, 2, NULL, 0), PRESSO_OK);
}

static void setup(void)
{
	tmp = fx_tmpdir();
	cr_assert(tmp);
	snprintf(db, sizeof db, "%s/runs.db", tmp);
	struct store *st;
	cr_assert_eq(store_open(db, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	struct study_spec sp = {
		.name = "lenet",
		.config_json = "{\"name\": \"lenet\"}",
		.model_path = "models/lenet.onnx",
		.model_sha256 = MODEL_SHA,
		.dataset = "fashion-mnist",
		.seed = 18446744073709551615u,
		.baseline = {90.0, 89.0, 100000, 6.4e6, 150.0, 10},
	};
	int64_t id, empty;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK);
	add(st, id, 1, 89.5, 30000);
	add(st, id, 2, 88.0, 40000);
	add(st, id, 3, 85.0, 20000);
	add(st, id, 4, 91.0, 90000);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": {\"bits\": 1}}", NULL, "w1", &n),
		     PRESSO_OK);
	cr_assert_eq(store_fail_trial(st, id, n, "calibration diverged"), PRESSO_OK);
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": {\"bits\": 2}}", NULL, "w2", &n),
		     PRESSO_OK);
	add(st, id, 7, 89.2, 25000);
	sp.name = "empty";
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &empty, &resumed, NULL),
		     PRESSO_OK);
	store_close(st);
}

static void teardown(void)
{
	if (!fx_rmtree(tmp))
		fprintf(stderr, "could not remove %s\n", tmp);
	free(tmp);
}

TestSuite(cli_store, .init = setup, .fini = teardown);

/* Runs presso with printf-style arguments; returns the exit status. */
__attribute__((format(printf, 3, 4))) static int run(char **out, char **err, const char *fmt, ...)
{
	char args[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	int rc = fx_presso(args, out, err);
	cr_assert_geq(rc, 0, "could not run presso %s", args);
	cr_assert_not_null(*out);
	cr_assert_not_null(*err);
	return rc;
}

static void free2(char *a, char *b)
{
	free(a);
	free(b);
}

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	cr_assert_not_null(v, "missing key '%s'", key);
	return v;
}

/* --- studies ----------------------------------------------------------------- */

Test(cli_store, studies_table)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "studies --db '%s'", db), 0, "%s", err);
	cr_assert(strstr(out, "2 studies"), "%s", out);
	cr_assert(strstr(out, "smallest within 1 pt"), "%s", out);
	/* lenet: 1 running, 5 complete, 1 failed, best 91.00 (#4), smallest near FP32 #7, front 4 */
	const char *row = strstr(out, "\nlenet ");
	cr_assert_not_null(row, "%s", out);
	char line[512];
	sscanf(row + 1, "%511[^\n]", line);
	char name[32], status[32];
	int running, complete, failed;
	double fp32;
	cr_assert_eq(sscanf(line, "%31s %31s %d %d %d %lf", name, status, &running, &complete,
			    &failed, &fp32),
		     6, "%s", line);
	cr_assert_eq(running, 1);
	cr_assert_eq(complete, 5);
	cr_assert_eq(failed, 1);
	cr_assert(strstr(line, "91.00 (#4)") && strstr(line, "(#7)"), "%s", line);
	cr_assert(strstr(out, "\nempty "), "%s", out);
	cr_assert(strstr(out, "front (all)") && strstr(out, "constraints not applied"),
		  "the front column says it is of every trial: %s", out);
	/* columns line up: every row has "running" values in the same column */
	const char *head = strstr(out, "study");
	cr_assert_not_null(head);
	free2(out, err);
}

Test(cli_store, studies_json)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "studies --db '%s' --format json", db), 0, "%s", err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	const cJSON *arr = get(j, "studies");
	cr_assert_eq(cJSON_GetArraySize(arr), 2);
	const cJSON *s = cJSON_GetArrayItem(arr, 0);
	cr_assert_str_eq(get(s, "name")->valuestring, "lenet");
	const cJSON *tr = get(s, "trials");
	cr_assert_eq(get(tr, "running")->valueint, 1);
	cr_assert_eq(get(tr, "complete")->valueint, 5);
	cr_assert_eq(get(tr, "failed")->valueint, 1);
	cr_assert_eq(get(get(s, "best_accuracy"), "trial")->valueint, 4);
	/* within 1 point of 90 %: trials 1 (30000 B), 4 (90000 B), 7 (25000 B) */
	cr_assert_eq(get(get(s, "smallest_near_fp32"), "trial")->valueint, 7);
	cr_assert_eq(get(get(s, "smallest_near_fp32"), "size_bytes")->valueint, 25000);
	cr_assert_eq(get(s, "front_size")->valueint, 4);
	cr_assert_str_eq(get(s, "model_sha256")->valuestring, MODEL_SHA);
	const cJSON *e = cJSON_GetArrayItem(arr, 1);
	cr_assert(cJSON_IsNull(get(e, "best_accuracy")));
	cr_assert_eq(get(e, "front_size")->valueint, 0);
	cJSON_Delete(j);
	free2(out, err);
}

Test(cli_store, studies_errors)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "studies --db '%s/none.db'", tmp), 2);
	cr_assert(strstr(err, "none.db"), "%s", err);
	cr_assert_str_eq(out, "");
	cr_assert(access(fx_join(tmp, "none.db"), F_OK) != 0, "studies never creates a database");
	free2(out, err);
	const char *junk = fx_join(tmp, "junk.db");
	cr_assert(fx_write(junk, "not a database at all, just some text.......", 44));
	cr_assert_eq(run(&out, &err, "studies --db '%s'", junk), 2);
	cr_assert(strstr(err, "junk.db: not an SQLite database"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "studies --db '%s' --format xml", db), 2);
	cr_assert(strstr(err, "--format"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "studies"), 2);
	cr_assert(strstr(err, "--db is required"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "studies --help"), 0);
	cr_assert(strstr(out, "--db"), "%s", out);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "--help"), 0);
	cr_assert(strstr(out, "studies") && strstr(out, "pareto") && strstr(out, "export"), "%s",
		  out);
	free2(out, err);
}

/* --- pareto ------------------------------------------------------------------ */

/* The trial numbers of a CSV front, in order. */
static int csv_trials(const char *csv, int *trials, int max)
{
	const char *line = strchr(csv, '\n');
	int n = 0;
	cr_assert_not_null(line);
	while (line && line[1] && n < max) {
		trials[n++] = atoi(line + 1);
		line = strchr(line + 1, '\n');
	}
	return n;
}

Test(cli_store, pareto_csv)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --format csv", db), 0, "%s",
		     err);
	cr_assert(strncmp(out,
			  "trial,accuracy,delta_vs_fp32,size_kb,ratio_vs_fp32,bops,latency_us,"
			  "mean_bits,mean_prune,mean_rank,tuned_from,accuracy_low95,accuracy_high95,"
			  "n_images\n",
			  149) == 0,
		  "%s", out);
	/* trial 4: 91 % of 1,000 images, its two-sided 95 % Wilson interval */
	cr_assert(strstr(out, "\n4,91,1,") && strstr(out, ",89.06582074,92.62038507,1000\n"),
		  "%s", out);
	int t[10];
	int n = csv_trials(out, t, 10);
	cr_assert_eq(n, 4, "%s", out);
	cr_assert(t[0] == 4 && t[1] == 1 && t[2] == 7 && t[3] == 3, "best accuracy first: %s", out);
	/* trial 4's row: +1 point, 90000/1024 KiB, 100000/90000 */
	double acc, delta, kb, ratio;
	cr_assert_eq(sscanf(strchr(out, '\n') + 1, "4,%lf,%lf,%lf,%lf", &acc, &delta, &kb, &ratio),
		     4);
	cr_assert_float_eq(acc, 91.0, 1e-9);
	cr_assert_float_eq(delta, 1.0, 1e-9);
	cr_assert_float_eq(kb, 90000 / 1024.0, 1e-6);
	cr_assert_float_eq(ratio, 100000 / 90000.0, 1e-6);
	free2(out, err);
}

Test(cli_store, pareto_where_and_objectives)
{
	char *out, *err;
	int t[10];
	cr_assert_eq(run(&out, &err,
			 "pareto --db '%s' --study lenet --format csv --where 'size_kb <= 25'", db),
		     0, "%s", err);
	int n = csv_trials(out, t, 10);
	cr_assert_eq(n, 2, "%s", out);
	cr_assert(t[0] == 7 && t[1] == 3, "%s", out);
	free2(out, err);
	cr_assert_eq(run(&out, &err,
			 "pareto --db '%s' --study lenet --format csv --where 'accuracy >= 95'", db),
		     0, "%s", err);
	cr_assert_eq(csv_trials(out, t, 10), 0, "nothing meets it: an empty front, not an error");
	free2(out, err);
	/* accuracy alone against latency (all 120 us): one best trial */
	cr_assert_eq(run(&out, &err,
			 "pareto --db '%s' --study lenet --format csv --objectives accuracy,latency",
			 db),
		     0, "%s", err);
	n = csv_trials(out, t, 10);
	cr_assert_eq(n, 1, "%s", out);
	cr_assert_eq(t[0], 4);
	free2(out, err);
	cr_assert_eq(run(&out, &err,
			 "pareto --db '%s' --study lenet --format csv --objectives "
			 "accuracy,size,bops,latency",
			 db),
		     0, "%s", err);
	free2(out, err);
}

Test(cli_store, pareto_json_hypervolume)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --format json", db), 0, "%s",
		     err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	cr_assert_str_eq(get(j, "study")->valuestring, "lenet");
	cr_assert_eq(get(j, "candidates")->valueint, 5);
	const cJSON *hv = get(j, "hypervolume");
	cr_assert_float_eq(get(get(hv, "reference"), "accuracy")->valuedouble, 10.0, 0);
	cr_assert_float_eq(get(get(hv, "reference"), "size")->valuedouble, 100000.0, 0);
	/* 81*10000 + 79.5*60000 + 79.2*5000 + 75*5000 */
	cr_assert_float_eq(get(hv, "value")->valuedouble, 6351000.0, 1e-6);
	cr_assert_float_eq(get(hv, "ratio")->valuedouble, 6351000.0 / 9e6, 1e-12);
	const cJSON *front = get(j, "front");
	cr_assert_eq(cJSON_GetArraySize(front), 4);
	const cJSON *f0 = cJSON_GetArrayItem(front, 0);
	cr_assert_eq(get(f0, "trial")->valueint, 4);
	cr_assert_eq(get(f0, "size_bytes")->valueint, 90000);
	cr_assert_float_eq(get(f0, "test_accuracy")->valuedouble, 90.5, 1e-9);
	cr_assert_eq(strlen(get(f0, "policy_sha256")->valuestring), 64);
	cr_assert_float_eq(get(f0, "accuracy_low95")->valuedouble, 89.06582074, 1e-8);
	cr_assert_float_eq(get(f0, "accuracy_high95")->valuedouble, 92.62038507, 1e-8);
	cr_assert_eq(get(f0, "n_images")->valueint, 1000);
	cJSON_Delete(j);
	free2(out, err);
}

Test(cli_store, pareto_table)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet", db), 0, "%s", err);
	cr_assert(strstr(out, "study lenet: 4 on the front of 5 complete trials"), "%s", out);
	cr_assert(strstr(out, "Δ vs FP32") && strstr(out, "ratio vs FP32") &&
		  strstr(out, "mean bits") && strstr(out, "hypervolume: 0.7057"),
		  "%s", out);
	/* the rows, right-aligned: each data line starts with spaces then the trial */
	const char *head = strstr(out, "trial  accuracy");
	cr_assert_not_null(head, "%s", out);
	const char *row = strchr(head, '\n') + 1;
	int trial, n_images;
	double acc, lo, hi, delta;
	cr_assert(strstr(head, "trial  accuracy  95% interval  images  Δ vs FP32"), "%s", head);
	cr_assert_eq(sscanf(row, "%d %lf %lf..%lf %d %lf", &trial, &acc, &lo, &hi, &n_images,
			    &delta),
		     6, "%s", row);
	cr_assert_eq(trial, 4);
	cr_assert_float_eq(lo, 89.07, 1e-9);
	cr_assert_float_eq(hi, 92.62, 1e-9);
	cr_assert_eq(n_images, 1000);
	cr_assert_float_eq(delta, 1.0, 1e-9);
	/* every row of the table has the header's width */
	size_t w = (size_t)(strchr(head, '\n') - head);
	for (int i = 0; i < 4; i++) {
		const char *end = strchr(row, '\n');
		cr_assert_not_null(end);
		cr_assert_eq((size_t)(end - row), w - 1, "row %d is not aligned: '%.*s'", i,
			     (int)(end - row), row); /* the header has the 2-byte Δ */
		row = end + 1;
	}
	free2(out, err);
}

Test(cli_store, pareto_errors)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study nope", db), 2);
	cr_assert(strstr(err, "no study 'nope' (studies: 'lenet', 'empty')"), "%s", err);
	cr_assert_str_eq(out, "");
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --where 'acuracy > 1'", db), 2);
	cr_assert(strstr(err, "--where: unknown metric 'acuracy' at column 1"), "%s", err);
	cr_assert(strstr(err, "  acuracy > 1\n  ^"), "the caret line: %s", err);
	cr_assert_str_eq(out, "");
	free2(out, err);
	cr_assert_eq(run(&out, &err,
			 "pareto --db '%s' --study lenet --where 'accuracy > 1 and size < 3ms'", db),
		     2);
	cr_assert(strstr(err, "at column 26"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --objectives accuracy,sise", db),
		     2);
	cr_assert(strstr(err, "unknown objective 'sise'"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --format yaml", db), 2);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s'", db), 2);
	cr_assert(strstr(err, "--study is required"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study empty --format csv", db), 0, "%s",
		     err);
	free2(out, err);
}

/* --- export ------------------------------------------------------------------ */

static cJSON *read_json(const char *path)
{
	char *text = fx_read(path, NULL);
	cr_assert_not_null(text, "%s was not written", path);
	cJSON *j = cJSON_Parse(text);
	cr_assert_not_null(j, "%s", text);
	free(text);
	return j;
}

/* No file of the folder but runs.db (and its WAL files) and the listed one. */
static void only_expected_files(const char *allowed)
{
	DIR *d = opendir(tmp);
	cr_assert_not_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strncmp(n, "runs.db", 7) == 0 ||
		    (allowed && strcmp(n, allowed) == 0))
			continue;
		cr_assert_fail("unexpected file left behind: %s", n);
	}
	closedir(d);
}

Test(cli_store, export_trial)
{
	char *out, *err;
	const char *path = fx_join(tmp, "best.json");
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 1 -o '%s'", db, path), 0,
		     "%s", err);
	cr_assert(strstr(err, "trial 1 of study 'lenet'"), "%s", err);
	cJSON *j = read_json(path);
	/* the policy as stored */
	const cJSON *def = get(j, "default");
	cr_assert_eq(get(def, "bits")->valueint, 8);
	cr_assert_str_eq(get(def, "prune_kind")->valuestring, "unstructured");
	const cJSON *fc = get(get(j, "layers"), "fc");
	cr_assert_eq(get(fc, "bits")->valueint, 1);
	cr_assert_str_eq(get(fc, "prune_kind")->valuestring, "structured");
	/* and its metadata */
	const cJSON *md = get(j, "metadata");
	cr_assert_str_eq(get(md, "study")->valuestring, "lenet");
	cr_assert_eq(get(md, "trial")->valueint, 1);
	const cJSON *m = get(md, "metrics");
	cr_assert_float_eq(get(m, "accuracy")->valuedouble, 89.5, 0);
	cr_assert_eq(get(m, "size_bytes")->valueint, 30000);
	cr_assert_float_eq(get(m, "bops")->valuedouble, 30000 * 64.0, 0);
	cr_assert_float_eq(get(get(md, "fp32"), "accuracy")->valuedouble, 90.0, 0);
	cr_assert_str_eq(get(md, "model_sha256")->valuestring, MODEL_SHA);
	cr_assert_str_eq(get(md, "model")->valuestring, "models/lenet.onnx");
	cr_assert_str_eq(get(md, "presso_version")->valuestring, PRESSO_VERSION);
	cr_assert_eq(strlen(get(md, "policy_sha256")->valuestring), 64);
	char *raw = fx_read(path, NULL);
	cr_assert(strstr(raw, "\"seed\":\t18446744073709551615"), "a 64-bit seed keeps every "
								"digit: %s", raw);
	free(raw);
	/* the policy part hashes to the stored hash */
	cJSON *pol = cJSON_Duplicate(j, true);
	cJSON_DeleteItemFromObject(pol, "metadata");
	char hash[SHA256_HEX_BYTES];
	char *text = cJSON_PrintUnformatted(pol);
	cr_assert_eq(store_canonical_json(text, NULL, hash), PRESSO_OK);
	cr_assert_str_eq(hash, get(md, "policy_sha256")->valuestring);
	free(text);
	cJSON_Delete(pol);
	cJSON_Delete(j);
	free2(out, err);
	only_expected_files("best.json");
	/* --output=FILE and -o - work too */
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 3 -o -", db), 0);
	j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	cr_assert_eq(get(get(j, "metadata"), "trial")->valueint, 3);
	cJSON_Delete(j);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 4 --output='%s'", db,
			 path),
		     0, "%s", err);
	j = read_json(path);
	cr_assert_eq(get(get(j, "metadata"), "trial")->valueint, 4, "replaced");
	cJSON_Delete(j);
	free2(out, err);
}

static int picked(const char *pick)
{
	char *out, *err;
	const char *path = fx_join(tmp, "pick.json");
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --pick '%s' -o '%s'", db, pick,
			 path),
		     0, "--pick '%s': %s", pick, err);
	cJSON *j = read_json(path);
	const cJSON *md = get(j, "metadata");
	cr_assert_str_eq(get(md, "picked_by")->valuestring, pick);
	int t = get(md, "trial")->valueint;
	cJSON_Delete(j);
	free2(out, err);
	unlink(path);
	return t;
}

Test(cli_store, export_pick)
{
	cr_assert_eq(picked("max accuracy where size_kb <= 64"), 1);
	cr_assert_eq(picked("min size_kb where accuracy_drop <= 1"), 7);
	/* on 1,000 images the 95 % upper bound of 7's drop (0.8) is 2.52, of 1's
	 * (0.5) 2.20: only 4, 1 point above FP32, keeps its bound (0.60) below 1 */
	cr_assert_eq(picked("min size_kb where accuracy_drop <= 1 at 95%"), 4);
	cr_assert_eq(picked("min size_kb where accuracy_drop <= 2.25 at 95%"), 1);
	cr_assert_eq(picked("max accuracy"), 4);
	cr_assert_eq(picked("min size"), 3);
	cr_assert_eq(picked("max ratio where accuracy >= 89 and not trial = 7"), 1);
	cr_assert_eq(picked("max test_accuracy where size <= 32kb"), 1);
}

Test(cli_store, failed_exports_leave_no_file)
{
	char *out, *err;
	const char *path = fx_join(tmp, "out.json");
	struct {
		const char *args;
		const char *msg;
	} cases[] = {
		{"--trial 5", "trial 5 of study 'lenet' is failed: calibration diverged"},
		{"--trial 6", "is running"},
		{"--trial 99", "no trial 99"},
		{"--trial 0", "--trial must be a trial number"},
		{"--trial 2x", "--trial must be a trial number"},
		{"--pick 'max accuracy where size_kb <= 1'", "no complete trial of study 'lenet' meets"},
		{"--pick 'max acuracy'", "--pick: unknown metric 'acuracy' at column 5"},
		{"--pick 'biggest accuracy'", "expected 'max' or 'min'"},
		{"--trial 1 --pick 'max accuracy'", "exactly one of --trial N and --pick"},
		{"", "exactly one of --trial N and --pick"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet %s -o '%s'", db,
				 cases[i].args, path),
			     2, "%s: %s", cases[i].args, err);
		cr_assert(strstr(err, cases[i].msg), "%s: %s", cases[i].args, err);
		cr_assert_eq(access(path, F_OK), -1, "%s left a file", cases[i].args);
		free2(out, err);
	}
	cr_assert_eq(run(&out, &err, "export --db '%s' --study nope --trial 1 -o '%s'", db, path), 2);
	cr_assert(strstr(err, "no study 'nope'"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 1", db), 2);
	cr_assert(strstr(err, "--output is required"), "%s", err);
	free2(out, err);
	/* an unwritable place: nothing there, nothing beside */
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 1 -o '%s/no/dir.json'",
			 db, tmp),
		     2);
	cr_assert(strstr(err, "no/dir.json"), "%s", err);
	free2(out, err);
	only_expected_files(NULL);
	/* the database is never the output */
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 1 -o '%s'", db, db), 2);
	cr_assert(strstr(err, "is the database itself"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "studies --db '%s'", db), 0, "still a database: %s", err);
	free2(out, err);
	/* a failed export leaves an existing file as it was */
	cr_assert(fx_write(path, "old\n", 4));
	cr_assert_eq(run(&out, &err, "export --db '%s' --study lenet --trial 5 -o '%s'", db, path), 2);
	char *kept = fx_read(path, NULL);
	cr_assert_str_eq(kept, "old\n");
	free(kept);
	free2(out, err);
	only_expected_files("out.json");
}
