/* latency.c - `presso latency`: the per-layer latency table a search with a
 * latency objective or constraint uses (search/lut.h), measured alone and
 * printed: one row per layer, one column per weight bit width the space
 * allows, per activation bit width; the time of the steps that are no layer;
 * and the W8A8 estimate next to the W8A8 model measured whole. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/json_get.h"
#include "config/config.h"
#include "search/lut.h"

/* PRESSO_E_NOMEM if the document could not be built. */
static enum presso_status print_json(const struct lut_report *r)
{
	unsigned since = json_failures();
	char *text = latency_lut_to_json(r->lut, r->layers);
	cJSON *doc = json_parse(text, NULL, false, NULL);
	free(text);
	cJSON_AddNumberToObject(doc, "w8a8_estimate_us", r->w8a8_estimate_us);
	cJSON_AddNumberToObject(doc, "w8a8_measured_us", r->w8a8_measured_us);
	char *out = json_print(doc, true, since);
	cJSON_Delete(doc);
	if (!out)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	puts(out);
	free(out);
	return PRESSO_OK;
}

static void print_table(const struct config *cfg, const struct lut_report *r)
{
	bool bits_used[LUT_MAX_BITS + 1] = {false}, act_used[LUT_MAX_BITS + 1] = {false};
	int name_w = 5;
	for (int l = 0; l < r->n_layers; l++) {
		int w = (int)strlen(r->layers[l].name);
		name_w = w > name_w ? w : name_w;
		for (int b = 1; b <= LUT_MAX_BITS; b++)
			for (int a = LUT_MIN_ACT_BITS; a <= LUT_MAX_BITS; a++)
				if (!isnan(latency_lut_entry(r->lut, l, b, a)))
					bits_used[b] = act_used[a] = true;
	}
	printf("model:    %s\n", cfg->model_path);
	printf("kernels:  %s; batch 1, one thread, median of %d runs per setting (us)\n",
	       r->lut->isa, r->lut->runs);
	if (r->lut->measured_on[0])
		printf("machine:  %s\n", r->lut->measured_on);
	for (int a = LUT_MIN_ACT_BITS; a <= LUT_MAX_BITS; a++) {
		if (!act_used[a])
			continue;
		printf("\nact_bits %d\n  %3s  %-*s", a, "#", name_w, "layer");
		for (int b = 1; b <= LUT_MAX_BITS; b++)
			if (bits_used[b]) {
				char head[16];
				snprintf(head, sizeof head, "w%d", b);
				printf(" %8s", head);
			}
		printf("\n");
		for (int l = 0; l < r->n_layers; l++) {
			printf("  %3d  %-*s", l, name_w, r->layers[l].name);
			for (int b = 1; b <= LUT_MAX_BITS; b++) {
				if (!bits_used[b])
					continue;
				double v = latency_lut_entry(r->lut, l, b, a);
				if (isnan(v))
					printf(" %8s", "-");
				else
					printf(" %8.2f", v);
			}
			printf("\n");
		}
	}
	printf("\nother steps (input quantization, pools, Add, reshapes): %.2f us\n",
	       r->lut->overhead_us);
	if (r->lut->n_deltas > 0) {
		printf("\nshape changes, W8A8, one layer at a time: whole-model time minus W8A8's (us)\n");
		for (int i = 0; i < r->lut->n_deltas; i++) {
			const struct lut_delta *d = &r->lut->deltas[i];
			printf("  %3d  %-*s  %-17s %6.3g  %+8.2f\n", d->layer, name_w,
			       r->layers[d->layer].name,
			       d->knob == LUT_PRUNE_STRUCTURED ? "prune structured" : "rank", d->value,
			       d->us);
		}
	}
	if (!isnan(r->w8a8_estimate_us))
		printf("W8A8:     %.1f us from the table, %.1f us measured whole\n",
		       r->w8a8_estimate_us, r->w8a8_measured_us);
	else
		printf("W8A8:     %.1f us measured whole (the space has no W8A8 for every layer)\n",
		       r->w8a8_measured_us);
}

int cmd_latency(int argc, char **argv)
{
	const char *config_path = NULL, *runs_arg = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, data, space)", NULL, &config_path},
		{"runs", CLI_STRING, "N",
		 "timed runs per setting (default: the config's search.latency_runs, else 25)", NULL,
		 &runs_arg},
		{"json", CLI_FLAG, NULL, "print the table as JSON (the form a study stores)", &json,
		 NULL},
	};
	const struct cli_cmd cmd = {
		"latency",
		"Measures the per-layer latency table a search uses when latency is an objective\n"
		"or a constraint: every layer at every (bits, act_bits) its space allows, on\n"
		"presso's INT8 engine at batch 1 on one thread, and the W8A8 model measured whole\n"
		"to compare with the table's estimate. Structured pruning ratios and ranks the\n"
		"space allows are measured as deltas: the model with that one layer changed, run\n"
		"whole, minus the W8A8 model. Run it on a quiet machine.",
		"--config FILE [--runs N] [--json]", opts, 3};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path))
		return 2;
	long runs = 0;
	if (runs_arg) {
		char *end;
		errno = 0;
		runs = strtol(runs_arg, &end, 10);
		if (errno || *end || end == runs_arg || runs < 1 || runs > 100000) {
			fprintf(stderr, "presso latency: --runs must be an integer in 1..100000, not '%s'\n",
				runs_arg);
			return 2;
		}
	}
	struct config *cfg = NULL;
	struct lut_report r = {0};
	enum presso_status s = config_load(config_path, &cfg);
	if (s == PRESSO_OK)
		s = lut_for_config(cfg, (int)runs, !json, &r);
	if (s == PRESSO_OK) {
		if (json)
			s = print_json(&r);
		else
			print_table(cfg, &r);
	}
	rc = s == PRESSO_OK ? 0 : cli_fail("latency", s);
	lut_report_free(&r);
	config_free(cfg);
	return rc;
}
