/* sensitivity.c - `presso sensitivity`: the per-layer sensitivity table a
 * search with search.sensitivity measures at its start (search/sensitivity.h),
 * measured alone and printed: per knob the space lets vary (bits, act_bits,
 * prune, rank), one row per layer with its parameters and one column per
 * value, each cell the validation accuracy lost (points) when that layer alone
 * takes that value, every other layer at its most accurate choice. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "evaluators/trial.h"
#include "search/sensitivity.h"
#include "search/space.h"

#define MAX_COLUMNS 64

static void print_table(const struct config *cfg, const struct study_ctx *ctx,
			const struct sensitivity *sn)
{
	static const enum knob knobs[] = {KNOB_BITS, KNOB_ACT_BITS, KNOB_PRUNE, KNOB_RANK};
	int name_w = 5;
	for (int l = 0; l < ctx->n_layers; l++) {
		int w = (int)strlen(ctx->layers[l].name);
		name_w = w > name_w ? w : name_w;
	}
	printf("model:     %s\n", cfg->model_path);
	printf("reference: every layer at its most accurate choice, %.2f %% on %lld validation "
	       "images\n",
	       sn->reference_accuracy, (long long)sn->n_images);
	printf("cells:     accuracy drop (points) with that one layer changed; - not in its "
	       "space\n");
	for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
		double cols[MAX_COLUMNS];
		int n_cols = 0;
		for (int i = 0; i < sn->n_entries; i++) {
			const struct sensitivity_entry *e = &sn->e[i];
			bool have = false;
			for (int c = 0; c < n_cols; c++)
				have |= cols[c] == e->value;
			if (e->knob != knobs[k] || have || n_cols == MAX_COLUMNS)
				continue;
			int at = n_cols++;
			while (at > 0 && cols[at - 1] > e->value) {
				cols[at] = cols[at - 1];
				at--;
			}
			cols[at] = e->value;
		}
		if (n_cols == 0)
			continue;
		printf("\n%s\n  %3s  %-*s %10s", space_knob_name(knobs[k]), "#", name_w, "layer",
		       "params");
		for (int c = 0; c < n_cols; c++)
			printf(" %7g", cols[c]);
		printf("\n");
		for (int l = 0; l < ctx->n_layers; l++) {
			printf("  %3d  %-*s %10lld", l, name_w, ctx->layers[l].name,
			       (long long)ctx->layers[l].params);
			for (int c = 0; c < n_cols; c++) {
				double d = sensitivity_drop(sn, l, knobs[k], cols[c]);
				bool in = false;
				for (int i = 0; i < sn->n_entries; i++)
					in |= sn->e[i].layer == l && sn->e[i].knob == knobs[k] &&
					      sn->e[i].value == cols[c];
				if (!in || isnan(d))
					printf(" %7s", "-");
				else
					printf(" %7.2f", d);
			}
			printf("\n");
		}
	}
}

int cmd_sensitivity(int argc, char **argv)
{
	const char *config_path = NULL, *images_arg = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, data, space)", NULL, &config_path},
		{"images", CLI_STRING, "N",
		 "validation images to measure on (default: the config's search.sensitivity_images, "
		 "else 256)",
		 NULL, &images_arg},
		{"json", CLI_FLAG, NULL, "print the table as JSON (the form a study stores)", &json,
		 NULL},
	};
	const struct cli_cmd cmd = {
		"sensitivity",
		"Measures each layer's sensitivity: the validation accuracy lost when that layer\n"
		"alone takes each value its space allows (bits, act_bits, prune ratio, rank),\n"
		"every other layer at its most accurate choice (most bits, no pruning, full\n"
		"rank), on the first N validation images; one model build per value. A search\n"
		"with \"search\": {\"sensitivity\": true} measures the same table at the start\n"
		"of a study, stores it, and seeds its first generation and its bandits with it.",
		"--config FILE [--images N] [--json]", opts, 3};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path))
		return 2;
	long long images = 0;
	if (images_arg) {
		char *end;
		errno = 0;
		images = strtoll(images_arg, &end, 10);
		if (errno || *end || end == images_arg || images < 1 || images > 1000000000) {
			fprintf(stderr,
				"presso sensitivity: --images must be an integer in 1..1000000000, "
				"not '%s'\n",
				images_arg);
			return 2;
		}
	}
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct space *sp = NULL;
	struct sensitivity *sn = NULL;
	char *text = NULL;
	enum presso_status s = config_load(config_path, &cfg);
	if (s == PRESSO_OK && !json)
		fprintf(stderr, "presso: loading %s and its data\n", cfg->model_path);
	if (s == PRESSO_OK)
		s = study_ctx_open_for_trials(cfg, &ctx);
	if (s == PRESSO_OK &&
	    (s = space_parse(cfg->json, ctx->layers, ctx->n_layers, &sp)) == PRESSO_OK)
		s = space_fit_graph(sp, ctx->g, json ? NULL : stderr);
	if (s == PRESSO_OK)
		s = sensitivity_measure(ctx, sp, images ? images : sp->search.sensitivity_images,
					json ? NULL : stderr, &sn);
	if (s == PRESSO_OK && json) {
		if ((text = sensitivity_to_json(sn, ctx->layers)))
			puts(text);
		else
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (s == PRESSO_OK) {
		print_table(cfg, ctx, sn);
	}
	rc = s == PRESSO_OK ? 0 : cli_fail("sensitivity", s);
	free(text);
	sensitivity_free(sn);
	space_free(sp);
	study_ctx_free(ctx);
	config_free(cfg);
	return rc;
}
