/* eval.c - `presso eval`: FP32 top-1 accuracy and throughput of a study's model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "evaluators/evaluate.h"
#include "graph.h"

/* Loads the dataset part a split needs and the split's indices. */
static enum presso_status load_split(const struct config *cfg, const char *which,
				     struct dataset **ds, struct split *sp)
{
	const struct data_config *d = &cfg->data;
	bool test = strcmp(which, "test") == 0;
	const char *images = test ? d->test_images : d->train_images;
	const char *labels = test ? d->test_labels : d->train_labels;
	enum presso_status s = strcmp(d->format, "npy") == 0
				       ? dataset_load_npy(images, labels, d->channels_last, ds)
				       : dataset_load_idx(images, labels, ds);
	if (s != PRESSO_OK)
		return s;
	if ((s = dataset_check_normalize(*ds, &d->norm)) != PRESSO_OK)
		return s;
	if (test)
		return split_range((*ds)->n, d->n_test, sp);
	struct split calib;
	s = dataset_make_splits((*ds)->n, d->seed, d->n_calib, d->n_valid, &calib, sp);
	split_free(&calib);
	return s;
}

int cmd_eval(int argc, char **argv)
{
	const char *config_path = NULL, *split_name = "test", *threads_arg = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, dataset, splits)", NULL, &config_path},
		{"split", CLI_STRING, "test|valid", "split to evaluate on (default: test)", NULL, &split_name},
		{"threads", CLI_STRING, "N", "worker threads (default: the config's eval.threads)", NULL, &threads_arg},
		{"json", CLI_FLAG, NULL, "print JSON instead of text", &json, NULL},
	};
	const struct cli_cmd cmd = {"eval",
				    "Evaluates the config's model in FP32 on a split of its dataset:\n"
				    "top-1 accuracy and images per second.",
				    "--config FILE [--split test|valid] [--threads N] [--json]", opts, 4};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path))
		return 2;
	if (strcmp(split_name, "test") != 0 && strcmp(split_name, "valid") != 0) {
		fprintf(stderr, "presso eval: --split must be test or valid, not '%s'\n", split_name);
		return 2;
	}
	struct config *cfg = NULL;
	struct graph *g = NULL;
	struct dataset *ds = NULL;
	struct split sp = {0};
	struct eval_result r;
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
	if ((s = graph_load_onnx(cfg->model_path, &g)) != PRESSO_OK)
		goto fail;
	if ((s = load_split(cfg, split_name, &ds, &sp)) != PRESSO_OK)
		goto fail;
	if ((s = eval_accuracy(g, ds, &cfg->data.norm, &sp, cfg->eval.batch, threads, &r)) != PRESSO_OK) {
		status_wrap(s, "%s", cfg->model_path);
		goto fail;
	}
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "study", cfg->name);
		cJSON_AddStringToObject(o, "model", cfg->model_path);
		cJSON_AddStringToObject(o, "split", split_name);
		cJSON_AddStringToObject(o, "precision", "fp32");
		cJSON_AddNumberToObject(o, "images", (double)r.n_images);
		cJSON_AddNumberToObject(o, "correct", (double)r.n_correct);
		cJSON_AddNumberToObject(o, "accuracy", r.accuracy_pct);
		cJSON_AddNumberToObject(o, "images_per_s", r.images_per_s);
		cJSON_AddNumberToObject(o, "batch", cfg->eval.batch);
		cJSON_AddNumberToObject(o, "threads", threads);
		char *text = cJSON_Print(o);
		cJSON_Delete(o);
		if (text)
			puts(text);
		free(text);
	} else {
		printf("study:     %s\n", cfg->name);
		printf("model:     %s\n", cfg->model_path);
		printf("split:     %s, %lld images\n", split_name, (long long)r.n_images);
		printf("accuracy:  %.2f%% top-1 FP32 (%lld correct)\n", r.accuracy_pct,
		       (long long)r.n_correct);
		printf("speed:     %.0f images/s (batch %d, %d thread%s)\n", r.images_per_s,
		       cfg->eval.batch, threads, threads == 1 ? "" : "s");
	}
	split_free(&sp);
	dataset_free(ds);
	graph_free(g);
	config_free(cfg);
	return 0;
fail:
	rc = cli_fail("eval", s);
	split_free(&sp);
	dataset_free(ds);
	graph_free(g);
	config_free(cfg);
	return rc;
}
