/* eval.c - `presso eval`: accuracy, size, BOPs and speed of a study's model, in
 * FP32 or quantized by a policy, or of a quantized model from a .presso file. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quant/calib.h"
#include "cli/cli.h"
#include "base/json_get.h"
#include "config/config.h"
#include "data/feed.h"
#include "evaluators/evaluate.h"
#include "evaluators/trial.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "format/presso_file.h"
#include "quant/qengine.h"

/* batch-1 latency: the median of this many runs */
#define LATENCY_RUNS 51

struct eval_out {
	const char *split;
	struct eval_result fp32, q;
	struct qmodel_size fp32_size, q_size;
	double fp32_latency_us, q_latency_us;
	const char *policy;
	const char *isa;
	const char *calibration;
	const char *requant;
	int fixed_batch; /* the model's fixed batch (feed.h), 0 if dynamic */
};

/* What a latency is measured on: batch 1, or one run of a fixed batch B > 1. */
static const char *latency_unit(int fixed_batch, char *buf, size_t cap)
{
	if (fixed_batch <= 1)
		return "at batch 1";
	snprintf(buf, cap, "per run of %d images (the model's fixed batch)", fixed_batch);
	return buf;
}

/* PRESSO_E_NOMEM if the document could not be built. */
static enum presso_status print_json(const struct config *cfg, const struct eval_out *o,
				     int threads)
{
	unsigned since = json_failures();
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "study", cfg->name);
	cJSON_AddStringToObject(j, "model", cfg->model_path);
	cJSON_AddStringToObject(j, "split", o->split);
	cJSON_AddNumberToObject(j, "images", (double)o->fp32.n_images);
	cJSON *f = cJSON_AddObjectToObject(j, "fp32");
	cJSON_AddNumberToObject(f, "accuracy", o->fp32.accuracy_pct);
	cJSON_AddNumberToObject(f, "correct", (double)o->fp32.n_correct);
	cJSON_AddNumberToObject(f, "size_bytes", (double)o->fp32_size.size_bytes);
	cJSON_AddNumberToObject(f, "bops", o->fp32_size.bops);
	cJSON_AddNumberToObject(f, "images_per_s", o->fp32.images_per_s);
	if (o->policy) {
		cJSON_AddNumberToObject(f, "latency_us", o->fp32_latency_us);
		cJSON *q = cJSON_AddObjectToObject(j, "quantized");
		cJSON_AddStringToObject(q, "policy", o->policy);
		cJSON_AddNumberToObject(q, "accuracy", o->q.accuracy_pct);
		cJSON_AddNumberToObject(q, "correct", (double)o->q.n_correct);
		cJSON_AddNumberToObject(q, "accuracy_delta", o->q.accuracy_pct - o->fp32.accuracy_pct);
		cJSON_AddNumberToObject(q, "size_bytes", (double)o->q_size.size_bytes);
		cJSON_AddNumberToObject(q, "weight_bytes", (double)o->q_size.weight_bytes);
		cJSON_AddNumberToObject(q, "compression_ratio",
					(double)o->fp32_size.size_bytes / (double)o->q_size.size_bytes);
		cJSON_AddNumberToObject(q, "bops", o->q_size.bops);
		cJSON_AddNumberToObject(q, "mean_bits", o->q_size.mean_bits);
		cJSON_AddNumberToObject(q, "latency_us", o->q_latency_us);
		cJSON_AddNumberToObject(q, "images_per_s", o->q.images_per_s);
		cJSON_AddStringToObject(q, "isa", o->isa);
		cJSON_AddStringToObject(q, "calibration", o->calibration);
		cJSON_AddStringToObject(q, "requant", o->requant);
	}
	cJSON_AddNumberToObject(j, "batch", cfg->eval.batch);
	if (o->fixed_batch)
		cJSON_AddNumberToObject(j, "fixed_batch", o->fixed_batch);
	cJSON_AddNumberToObject(j, "threads", threads);
	char *text = json_print(j, true, since);
	cJSON_Delete(j);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	puts(text);
	free(text);
	return PRESSO_OK;
}

static void print_text(const struct config *cfg, const struct eval_out *o, int threads)
{
	printf("study:       %s\n", cfg->name);
	printf("model:       %s\n", cfg->model_path);
	printf("split:       %s, %lld images\n", o->split, (long long)o->fp32.n_images);
	printf("FP32:        %.2f%% top-1, %lld bytes, %.3g BOPs, %.0f images/s (batch %d, %d thread%s)",
	       o->fp32.accuracy_pct, (long long)o->fp32_size.size_bytes, o->fp32_size.bops,
	       o->fp32.images_per_s, cfg->eval.batch, threads, threads == 1 ? "" : "s");
	char unit[80];
	if (o->policy)
		printf(", %.1f us %s", o->fp32_latency_us,
		       latency_unit(o->fixed_batch, unit, sizeof unit));
	printf("\n");
	if (!o->policy)
		return;
	printf("policy:      %s (calibration %s, %s requantization, kernels %s)\n", o->policy,
	       o->calibration, o->requant, o->isa);
	printf("quantized:   %.2f%% top-1 (%+.2f vs FP32)\n", o->q.accuracy_pct,
	       o->q.accuracy_pct - o->fp32.accuracy_pct);
	printf("size:        %lld bytes (%.2fx smaller than FP32; weights %lld bytes, mean %.2f bits)\n",
	       (long long)o->q_size.size_bytes,
	       (double)o->fp32_size.size_bytes / (double)o->q_size.size_bytes,
	       (long long)o->q_size.weight_bytes, o->q_size.mean_bits);
	printf("BOPs:        %.4g (%.1fx fewer than FP32)\n", o->q_size.bops,
	       o->fp32_size.bops / o->q_size.bops);
	printf("latency:     %.1f us %s (FP32 %.1f us); %.0f images/s at batch %d\n",
	       o->q_latency_us, latency_unit(o->fixed_batch, unit, sizeof unit),
	       o->fp32_latency_us, o->q.images_per_s, cfg->eval.batch);
}

/* --model: a .presso file's quantized model on the config's dataset. */
static int eval_presso(const struct config *cfg, const char *path, const char *split_name,
		       int threads, bool json)
{
	struct graph *g = NULL;
	struct qmodel *qm = NULL;
	struct dataset *ds = NULL;
	struct split calib_sp = {0}, valid_sp = {0}, test_sp = {0};
	struct eval_result r = {0};
	struct qmodel_size z, fz;
	double latency_us = 0;
	int rc;
	bool on_test = strcmp(split_name, "test") == 0;
	enum q8_isa isa = q8_isa_best();
	enum presso_status s = presso_file_load(path, isa, &g, &qm);
	if (s != PRESSO_OK)
		goto fail;
	if ((s = trial_load_dataset(cfg, on_test, g, &ds)) != PRESSO_OK)
		goto fail;
	if (on_test)
		s = split_range(ds->n, cfg->data.n_test, &test_sp);
	else
		s = dataset_make_splits(ds->n, cfg->data.seed, cfg->data.n_calib, cfg->data.n_valid,
					&calib_sp, &valid_sp);
	if (s != PRESSO_OK)
		goto fail;
	struct eval_model qmod = {g, qm};
	if ((s = eval_accuracy(&qmod, ds, &cfg->data.norm, on_test ? &test_sp : &valid_sp,
			       cfg->eval.batch, threads, &r)) != PRESSO_OK ||
	    (s = eval_latency(&qmod, ds, &cfg->data.norm, LATENCY_RUNS, &latency_us)) != PRESSO_OK) {
		status_wrap(s, "%s", path);
		goto fail;
	}
	qmodel_size(qm, &z);
	/* the ratio is against the config's own FP32 model (the file holds the
	 * compressed graph, which may be pruned or factorised); the file's graph
	 * when that model cannot be read */
	struct graph *orig = NULL;
	if (graph_load_onnx(cfg->model_path, &orig) == PRESSO_OK)
		qmodel_fp32_size(orig, &fz);
	else
		qmodel_fp32_size(g, &fz);
	status_clear();
	graph_free(orig);
	struct stat st;
	int64_t file_bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
	if (json) {
		unsigned since = json_failures();
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "study", cfg->name);
		cJSON_AddStringToObject(j, "model", path);
		cJSON_AddStringToObject(j, "split", split_name);
		cJSON_AddNumberToObject(j, "images", (double)r.n_images);
		cJSON *q = cJSON_AddObjectToObject(j, "quantized");
		cJSON_AddNumberToObject(q, "accuracy", r.accuracy_pct);
		cJSON_AddNumberToObject(q, "correct", (double)r.n_correct);
		cJSON_AddNumberToObject(q, "size_bytes", (double)z.size_bytes);
		cJSON_AddNumberToObject(q, "file_bytes", (double)file_bytes);
		cJSON_AddNumberToObject(q, "weight_bytes", (double)z.weight_bytes);
		cJSON_AddNumberToObject(q, "compression_ratio",
					(double)fz.size_bytes / (double)z.size_bytes);
		cJSON_AddNumberToObject(q, "bops", z.bops);
		cJSON_AddNumberToObject(q, "mean_bits", z.mean_bits);
		cJSON_AddNumberToObject(q, "latency_us", latency_us);
		cJSON_AddNumberToObject(q, "images_per_s", r.images_per_s);
		cJSON_AddStringToObject(q, "isa", q8_isa_name(isa));
		cJSON_AddStringToObject(q, "requant",
					qmodel_requant(qm) == REQUANT_Q31 ? "q31" : "float");
		cJSON_AddNumberToObject(j, "batch", cfg->eval.batch);
		if (feed_fixed_batch(g))
			cJSON_AddNumberToObject(j, "fixed_batch", feed_fixed_batch(g));
		cJSON_AddNumberToObject(j, "threads", threads);
		char *text = json_print(j, true, since);
		cJSON_Delete(j);
		if (!text) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		puts(text);
		free(text);
	} else {
		printf("study:       %s\n", cfg->name);
		printf("model:       %s (%d quantized layers, kernels %s)\n", path, qmodel_n_layers(qm),
		       q8_isa_name(isa));
		printf("split:       %s, %lld images\n", split_name, (long long)r.n_images);
		printf("quantized:   %.2f%% top-1\n", r.accuracy_pct);
		printf("size:        %lld bytes (%.2fx smaller than FP32; weights %lld bytes, mean %.2f bits); file %lld bytes\n",
		       (long long)z.size_bytes, (double)fz.size_bytes / (double)z.size_bytes,
		       (long long)z.weight_bytes, z.mean_bits, (long long)file_bytes);
		printf("BOPs:        %.4g (%.1fx fewer than FP32)\n", z.bops, fz.bops / z.bops);
		char unit[80];
		printf("latency:     %.1f us %s; %.0f images/s at batch %d (%d thread%s)\n",
		       latency_us, latency_unit(feed_fixed_batch(g), unit, sizeof unit),
		       r.images_per_s, cfg->eval.batch, threads, threads == 1 ? "" : "s");
	}
	rc = 0;
	goto done;
fail:
	rc = cli_fail("eval", s);
done:
	split_free(&calib_sp);
	split_free(&valid_sp);
	split_free(&test_sp);
	dataset_free(ds);
	qmodel_free(qm);
	graph_free(g);
	return rc;
}

int cmd_eval(int argc, char **argv)
{
	const char *config_path = NULL, *split_name = "test", *threads_arg = NULL,
		   *policy_arg = NULL, *model_arg = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, dataset, splits)", NULL, &config_path},
		{"policy", CLI_STRING, "FILE|int8|int4",
		 "quantize with this policy (JSON file, or a shorthand) and compare with FP32", NULL,
		 &policy_arg},
		{"model", CLI_STRING, "FILE.presso",
		 "evaluate this quantized model (written by compress) instead of the config's", NULL,
		 &model_arg},
		{"split", CLI_STRING, "test|valid", "split to evaluate on (default: test)", NULL, &split_name},
		{"threads", CLI_STRING, "N", "worker threads (default: the config's eval.threads)", NULL, &threads_arg},
		{"json", CLI_FLAG, NULL, "print JSON instead of text", &json, NULL},
	};
	const struct cli_cmd cmd = {
		"eval",
		"Evaluates the config's model on a split of its dataset: FP32 top-1 accuracy\n"
		"and images per second; with --policy also the quantized model's accuracy,\n"
		"its difference from FP32, size in bytes, compression ratio, BOPs\n"
		"(MACs x weight bits x activation bits) and batch-1 latency (median, one thread;\n"
		"a model with a fixed batch B runs B images at a time, and its latency is a run).\n"
		"Calibration uses the config's calibration split of the training set.\n"
		"With --model, the .presso file's quantized model runs on the config's dataset\n"
		"instead: its accuracy, size, BOPs and latency (no FP32 comparison).",
		"--config FILE [--policy FILE|int8|int4 | --model FILE.presso] [--split test|valid]\n"
		"       [--threads N] [--json]",
		opts, 6};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path))
		return 2;
	if (policy_arg && model_arg) {
		fprintf(stderr, "presso eval: --policy and --model exclude each other\n");
		return 2;
	}
	if (strcmp(split_name, "test") != 0 && strcmp(split_name, "valid") != 0) {
		fprintf(stderr, "presso eval: --split must be test or valid, not '%s'\n", split_name);
		return 2;
	}
	struct config *cfg = NULL;
	struct graph *g = NULL;
	struct dataset *train = NULL, *test = NULL;
	struct split calib_sp = {0}, valid_sp = {0}, test_sp = {0};
	struct layer *layers = NULL;
	int n_layers = 0;
	struct policy *pol = NULL;
	struct quant_pipeline pipe = {0};
	struct built_model built = {0};
	struct qmodel *qm = NULL;
	struct eval_out o = {.split = split_name};
	enum presso_status s = config_load(config_path, &cfg);
	if (s != PRESSO_OK)
		goto fail;
	int threads = cfg->eval.threads;
	if (threads_arg) {
		char *end;
		long t = strtol(threads_arg, &end, 10);
		if (*end || t < 1 || t > 256) {
			fprintf(stderr, "presso eval: --threads must be an integer 1..256, not '%s'\n",
				threads_arg);
			config_free(cfg);
			return 2;
		}
		threads = (int)t;
	}
	if (model_arg) {
		rc = eval_presso(cfg, model_arg, split_name, threads, json);
		config_free(cfg);
		return rc;
	}
	if ((s = graph_load_onnx(cfg->model_path, &g)) != PRESSO_OK)
		goto fail;
	if ((s = graph_layers(g, &layers, &n_layers)) != PRESSO_OK)
		goto fail;
	o.fixed_batch = feed_fixed_batch(g);
	if (policy_arg && (s = policy_load(policy_arg, layers, n_layers, &pol)) != PRESSO_OK)
		goto fail;
	bool on_test = strcmp(split_name, "test") == 0;
	if (!on_test || pol) {
		if ((s = trial_load_dataset(cfg, false, g, &train)) != PRESSO_OK)
			goto fail;
		if ((s = dataset_make_splits(train->n, cfg->data.seed, cfg->data.n_calib,
					     cfg->data.n_valid, &calib_sp, &valid_sp)) != PRESSO_OK)
			goto fail;
	}
	if (on_test) {
		if ((s = trial_load_dataset(cfg, true, g, &test)) != PRESSO_OK)
			goto fail;
		if ((s = split_range(test->n, cfg->data.n_test, &test_sp)) != PRESSO_OK)
			goto fail;
	}
	const struct dataset *eds = on_test ? test : train;
	const struct split *esp = on_test ? &test_sp : &valid_sp;
	struct eval_model fm = {g, NULL};
	if ((s = eval_accuracy(&fm, eds, &cfg->data.norm, esp, cfg->eval.batch, threads, &o.fp32)) != PRESSO_OK)
		goto wrap;
	qmodel_fp32_size(g, &o.fp32_size);
	if (pol) {
		if ((s = quant_pipeline_init(&pipe, cfg, g, train, &calib_sp, false)) != PRESSO_OK ||
		    (s = quant_pipeline_build(&pipe, pol, &built)) != PRESSO_OK)
			goto wrap;
		qm = built.qm;
		struct quant_config qc = pipe.qc;
		struct eval_model qmod = {built.g, qm};
		if ((s = eval_accuracy(&qmod, eds, &cfg->data.norm, esp, cfg->eval.batch, threads, &o.q)) != PRESSO_OK)
			goto wrap;
		qmodel_size(qm, &o.q_size);
		if ((s = eval_latency(&fm, eds, &cfg->data.norm, LATENCY_RUNS, &o.fp32_latency_us)) ||
		    (s = eval_latency(&qmod, eds, &cfg->data.norm, LATENCY_RUNS, &o.q_latency_us)))
			goto wrap;
		o.policy = policy_arg;
		o.isa = q8_isa_name(qc.isa);
		o.calibration = calib_method_name(qc.method);
		o.requant = qmodel_requant(qm) == REQUANT_Q31 ? "q31" : "float";
	}
	if (json) {
		if ((s = print_json(cfg, &o, threads)) != PRESSO_OK)
			goto fail;
	} else {
		print_text(cfg, &o, threads);
		built_model_report(&built, stdout);
	}
	rc = 0;
	goto done;
wrap:
	status_wrap(s, "%s", cfg->model_path);
fail:
	rc = cli_fail("eval", s);
done:
	built_model_free(&built);
	quant_pipeline_free(&pipe);
	policy_free(pol);
	free(layers);
	split_free(&calib_sp);
	split_free(&valid_sp);
	split_free(&test_sp);
	dataset_free(train);
	dataset_free(test);
	graph_free(g);
	config_free(cfg);
	return rc;
}
