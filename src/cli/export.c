/* export.c - `presso export`: one trial's policy as the JSON file that
 * `presso compress --policy` and `presso eval --policy` read, or, with
 * `-o FILE.presso`, a fine-tuned trial's tuned model as the store holds it
 * (db/README.md, "Fine-tuned trials": the policy alone rebuilds only the PTQ
 * weights, so a fine-tuned trial's JSON says so in its metadata and on stderr).
 *
 * The output is the trial's stored policy ({"default": {...}, "layers":
 * {...}}) with a "metadata" object added: study, trial, how it was chosen,
 * its metrics, the FP32 baseline, the model path and sha256, dataset, seed,
 * policy sha256, presso version and export time. Policy readers ignore
 * "metadata".
 *
 * The file is written atomically: a temporary file beside it, fsync, rename,
 * fsync of the folder. A failed export leaves no new file and does not touch
 * an existing one. `-o -` writes to standard output.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/fileio.h"
#include "base/json_get.h"
#include "db/store.h"

static void add_num(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static bool is_presso_path(const char *path)
{
	size_t n = strlen(path);
	return n > 7 && strcmp(path + n - 7, ".presso") == 0;
}

/* metadata.finetuned of a fine-tuned trial: where it came from and how. */
static void add_finetune(cJSON *md, const struct finetune_info *f)
{
	cJSON *fo = cJSON_AddObjectToObject(md, "finetuned");
	cJSON_AddNumberToObject(fo, "from_trial", (double)f->parent);
	cJSON_AddStringToObject(fo, "source", f->source);
	cJSON_AddNumberToObject(fo, "steps", (double)f->steps);
	cJSON_AddNumberToObject(fo, "epochs", (double)f->epochs);
	cJSON_AddNumberToObject(fo, "lr", f->lr);
	cJSON_AddNumberToObject(fo, "kd_weight", f->kd_weight);
	cJSON_AddNumberToObject(fo, "temperature", f->temperature);
	cJSON_AddNumberToObject(fo, "train_seconds", f->train_seconds);
	cJSON_AddNumberToObject(fo, "model_bytes", (double)f->model_bytes);
	cJSON_AddStringToObject(fo, "model_sha256", f->model_sha256);
	cJSON_AddStringToObject(fo, "note", "the policy rebuilds the PTQ model; the tuned "
					    "weights: presso export --trial N -o FILE.presso");
	cJSON *settings = cJSON_Parse(f->settings_json);
	if (settings)
		cJSON_AddItemToObject(fo, "settings", settings);
}

/* The export document: the policy plus its metadata. */
static enum presso_status build(const struct study_info *info, const struct store_trial *t,
				const struct finetune_info *ft, const char *pick, char **text)
{
	*text = NULL;
	bool oom;
	unsigned since = json_failures();
	cJSON *doc = json_parse(t->policy_json, NULL, false, &oom);
	if (oom)
		return status_fail(PRESSO_E_NOMEM, "out of memory reading trial %lld's policy",
				   (long long)t->number);
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return status_fail(PRESSO_E_FORMAT, "trial %lld: the stored policy is not a JSON object",
				   (long long)t->number);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "metadata");
	cJSON *md = cJSON_AddObjectToObject(doc, "metadata");
	cJSON_AddStringToObject(md, "study", info->name);
	cJSON_AddNumberToObject(md, "trial", (double)t->number);
	if (pick)
		cJSON_AddStringToObject(md, "picked_by", pick);
	const struct trial_metrics *m = &t->metrics;
	cJSON *mo = cJSON_AddObjectToObject(md, "metrics");
	cJSON_AddNumberToObject(mo, "accuracy", m->accuracy);
	add_num(mo, "test_accuracy", m->test_accuracy);
	cJSON_AddNumberToObject(mo, "size_bytes", (double)m->size_bytes);
	cJSON_AddNumberToObject(mo, "bops", m->bops);
	add_num(mo, "latency_us", m->latency_us);
	add_num(mo, "mean_bits", m->mean_bits);
	add_num(mo, "mean_prune", m->mean_prune);
	add_num(mo, "mean_rank", m->mean_rank);
	const struct baseline *b = &info->baseline;
	cJSON *bo = cJSON_AddObjectToObject(md, "fp32");
	cJSON_AddNumberToObject(bo, "accuracy", b->accuracy);
	add_num(bo, "test_accuracy", b->test_accuracy);
	cJSON_AddNumberToObject(bo, "size_bytes", (double)b->size_bytes);
	cJSON_AddNumberToObject(bo, "bops", b->bops);
	add_num(bo, "latency_us", b->latency_us);
	cJSON_AddNumberToObject(bo, "n_classes", b->n_classes);
	cJSON_AddStringToObject(md, "model", info->model_path);
	cJSON_AddStringToObject(md, "model_sha256", info->model_sha256);
	cJSON_AddStringToObject(md, "dataset", info->dataset);
	char seed[32];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)info->seed);
	cJSON_AddRawToObject(md, "seed", seed);
	cJSON_AddStringToObject(md, "policy_sha256", t->policy_sha256);
	if (ft)
		add_finetune(md, ft);
	cJSON_AddStringToObject(md, "presso_version", PRESSO_VERSION);
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
		cJSON_AddStringToObject(md, "exported_at", when);
	char *printed = json_print(doc, true, since);
	cJSON_Delete(doc);
	if (!printed)
		return status_fail(PRESSO_E_NOMEM, "out of memory writing the policy");
	size_t n = strlen(printed);
	*text = malloc(n + 2);
	if (*text) {
		memcpy(*text, printed, n);
		memcpy(*text + n, "\n", 2);
	}
	cJSON_free(printed);
	return *text ? PRESSO_OK : status_fail(PRESSO_E_NOMEM, "out of memory writing the policy");
}


static bool parse_trial_number(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < 1)
		return false;
	*out = v;
	return true;
}

static const char *const string_opts[] = {"--db", "--study", "--trial", "--pick", "--output"};

/* argv with "-o" (where an option may stand) spelled "--output"; the strings
 * still point into argv. */
static char **spell_short_options(int argc, char **argv)
{
	char **args = malloc((size_t)(argc + 1) * sizeof *args);
	if (!args)
		return NULL;
	for (int i = 0; i < argc; i++) {
		args[i] = argv[i];
		if (i > 0 && strcmp(argv[i], "-o") == 0)
			args[i] = (char *)"--output";
		for (size_t k = 0; i > 0 && k < sizeof string_opts / sizeof string_opts[0]; k++)
			if (strcmp(args[i], string_opts[k]) == 0 && i + 1 < argc) {
				args[i + 1] = argv[i + 1]; /* a value, even if it is "-o" */
				i++;
				break;
			}
	}
	args[argc] = NULL;
	return args;
}

int cmd_export(int argc, char **argv)
{
	const char *db = NULL, *study = NULL, *trial_text = NULL, *pick_text = NULL;
	const char *output = NULL;
	const struct cli_opt opts[] = {
		{"db", CLI_STRING, "FILE", "the study database (opened read-only)", NULL, &db},
		{"study", CLI_STRING, "NAME", "the study", NULL, &study},
		{"trial", CLI_STRING, "N", "export trial N", NULL, &trial_text},
		{"pick", CLI_STRING, "EXPR",
		 "export the trial an expression picks, e.g. 'max accuracy where size_kb <= 64'",
		 NULL, &pick_text},
		{"output", CLI_STRING, "FILE", "where to write the policy (- for stdout)", NULL,
		 &output},
	};
	const struct cli_cmd cmd = {
		"export",
		"Writes a complete trial's policy as JSON (the input of presso compress and\n"
		"presso eval --policy) with a metadata block: study, trial, metrics, FP32\n"
		"baseline, model sha256, presso version. --pick is 'max METRIC [where EXPR]' or\n"
		"'min METRIC [where EXPR]' over the metrics --where knows; ties go to the\n"
		"lowest trial number ('tuned = 1' keeps fine-tuned trials). -o FILE.presso\n"
		"writes a fine-tuned trial's tuned model (stored in the database) instead; a\n"
		"PTQ trial's model is built with presso compress --policy. The file is\n"
		"replaced atomically, never half-written.",
		"--db FILE --study NAME (--trial N | --pick EXPR) -o FILE.json|FILE.presso", opts, 5};
	char **args = spell_short_options(argc, argv);
	if (!args) {
		fprintf(stderr, "presso export: out of memory\n");
		return 1;
	}
	int rc;
	bool go = cli_parse(&cmd, argc, args, &rc);
	free(args);
	if (!go)
		return rc;
	if (!cli_require(&cmd, "db", db) || !cli_require(&cmd, "study", study) ||
	    !cli_require(&cmd, "output", output))
		return 2;
	if (!trial_text == !pick_text) {
		fprintf(stderr, "presso export: give exactly one of --trial N and --pick EXPR\n");
		return 2;
	}
	struct stat a, b;
	if (stat(output, &a) == 0 && stat(db, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		fprintf(stderr, "presso export: -o %s is the database itself\n", output);
		return 2;
	}
	int64_t number = 0;
	if (trial_text && !parse_trial_number(trial_text, &number)) {
		fprintf(stderr, "presso export: --trial must be a trial number (1, 2, ...), not '%s'\n",
			trial_text);
		return 2;
	}
	struct expr_pick pick = {0};
	struct store *st = NULL;
	struct study_info info = {0};
	struct store_trial *t = NULL;
	struct finetune_info ft = {0};
	bool tuned = false, as_model = is_presso_path(output);
	void *model = NULL;
	size_t model_bytes = 0;
	char *text = NULL;
	enum presso_status s = PRESSO_OK;
	if (pick_text)
		s = expr_parse_pick(pick_text, "--pick", &pick);
	if (s == PRESSO_OK)
		s = store_open(db, STORE_READONLY, &st);
	if (s == PRESSO_OK)
		s = store_find_study(st, study, &info);
	if (s == PRESSO_OK && pick_text) {
		bool found;
		s = store_pick(st, info.id, &pick, &number, &found);
		if (s == PRESSO_OK && !found)
			s = status_fail(PRESSO_E_USAGE,
					"no complete trial of study '%s' meets --pick '%s'", study,
					pick_text);
	}
	if (s == PRESSO_OK)
		s = store_get_trial(st, info.id, number, &t);
	if (s == PRESSO_OK && t->state != TRIAL_COMPLETE)
		s = status_fail(PRESSO_E_USAGE,
				"trial %lld of study '%s' is %s%s%s; only complete trials can be "
				"exported",
				(long long)number, study, store_trial_state_str(t->state),
				t->error ? ": " : "", t->error ? t->error : "");
	if (s == PRESSO_OK)
		s = store_get_finetune(st, info.id, number, &ft, &tuned);
	if (s == PRESSO_OK && as_model && !tuned)
		s = status_fail(PRESSO_E_USAGE,
				"-o %s: trial %lld of study '%s' is a PTQ trial, whose model the "
				"database does not hold; export its policy (-o FILE.json) and build "
				"the model with presso compress --policy",
				output, (long long)number, study);
	if (s == PRESSO_OK && as_model)
		s = store_get_finetune_model(st, info.id, number, &model, &model_bytes);
	if (s == PRESSO_OK && as_model)
		s = file_write_atomic(output, model, model_bytes);
	if (s == PRESSO_OK && !as_model)
		s = build(&info, t, tuned ? &ft : NULL, pick_text, &text);
	if (s == PRESSO_OK && !as_model)
		s = file_write_atomic(output, text, strlen(text));
	rc = s == PRESSO_OK ? 0 : cli_fail("export", s);
	if (s == PRESSO_OK && strcmp(output, "-") != 0)
		fprintf(stderr, "presso export: %strial %lld of study '%s' (accuracy %.2f %%, %lld "
				"bytes) written to %s\n",
			as_model ? "the tuned model of " : "", (long long)number, study,
			t->metrics.accuracy, (long long)t->metrics.size_bytes, output);
	if (s == PRESSO_OK && t->metrics.low_fidelity)
		fprintf(stderr, "presso export: note: trial %lld was scored on %lld validation "
				"images only (screened out by the multi-fidelity search): its accuracy "
				"is that subset's\n",
			(long long)number, (long long)t->metrics.n_images);
	if (s == PRESSO_OK && tuned && !as_model)
		fprintf(stderr, "presso export: trial %lld is trial %lld fine-tuned: the policy "
				"rebuilds the PTQ model; -o FILE.presso writes the tuned weights\n",
			(long long)number, (long long)ft.parent);
	free(model);
	store_finetune_info_free(&ft);
	free(text);
	store_trials_free(t, t ? 1 : 0);
	store_study_info_free(&info);
	store_close(st);
	expr_pick_free(&pick);
	return rc;
}
