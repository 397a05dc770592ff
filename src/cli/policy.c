/* policy.c - `presso policy`: a policy template listing every compressible layer
 * of a model with its choices at their defaults, the starting point for a policy
 * written by hand. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/json_get.h"
#include "config/config.h"
#include "base/fileio.h"
#include "model/graph.h"
#include "quant/policy.h"

static cJSON *layer_entry(const struct layer_policy *lp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "bits", lp->bits);
	cJSON_AddNumberToObject(o, "act_bits", lp->act_bits);
	cJSON_AddBoolToObject(o, "bias_correction", lp->bias_correction);
	cJSON_AddNumberToObject(o, "prune", lp->prune);
	cJSON_AddStringToObject(o, "prune_kind",
				lp->prune_kind == PRUNE_STRUCTURED ? "structured" : "unstructured");
	cJSON_AddNumberToObject(o, "rank", lp->rank);
	return o;
}

static cJSON *layer_info(const struct layer *l)
{
	cJSON *o = cJSON_CreateObject();
	bool dw = l->op == OP_CONV && l->group > 1 && l->group == l->c_out;
	cJSON_AddStringToObject(o, "op", dw ? "DWConv" : op_name(l->op));
	cJSON_AddNumberToObject(o, "c_out", (double)l->c_out);
	cJSON_AddNumberToObject(o, "c_in", (double)(l->c_in * l->group));
	if (l->op == OP_CONV) {
		cJSON *k = cJSON_AddArrayToObject(o, "kernel");
		cJSON_AddItemToArray(k, cJSON_CreateNumber(l->kh));
		cJSON_AddItemToArray(k, cJSON_CreateNumber(l->kw));
		cJSON_AddNumberToObject(o, "group", l->group);
	}
	cJSON_AddNumberToObject(o, "params", (double)l->params);
	cJSON_AddNumberToObject(o, "macs", (double)l->macs);
	cJSON_AddNumberToObject(o, "full_rank", l->group == 1 ? (double)policy_full_rank(l) : 0);
	return o;
}

int cmd_policy(int argc, char **argv)
{
	const char *model = NULL, *config_path = NULL, *output = "-";
	const struct cli_opt opts[] = {
		{"model", CLI_STRING, "FILE", "ONNX model", NULL, &model},
		{"config", CLI_STRING, "FILE", "or: the model of this study config", NULL, &config_path},
		{"output", CLI_STRING, "FILE", "where to write the template (default: standard output)",
		 NULL, &output},
	};
	const struct cli_cmd cmd = {
		"policy",
		"Writes a policy template for a model: a \"default\" entry and one entry per\n"
		"compressible layer (Conv, Gemm, MatMul with constant weights), every field at\n"
		"its default (W8A8, no bias correction, no pruning, full rank). Edit it and\n"
		"pass it to `presso eval --policy` or `presso compress --policy`. Fields:\n"
		"  bits 1..8 (2 = ternary, 1 = binary), act_bits 4..8, bias_correction,\n"
		"  prune 0..0.95 with prune_kind unstructured|structured, rank (a fraction of\n"
		"  full rank in (0, 1], or an integer >= 2).\n"
		"\"metadata.layers\" describes each layer (shape, parameters, MACs, full rank);\n"
		"presso ignores it when reading the policy. The file is written atomically.",
		"(--model FILE | --config FILE) [-o FILE]",
		opts, 3};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if ((model == NULL) == (config_path == NULL)) {
		fprintf(stderr, "presso policy: give one of --model or --config (see presso policy --help)\n");
		return 2;
	}
	struct config *cfg = NULL;
	struct graph *g = NULL;
	struct layer *layers = NULL;
	int n_layers = 0;
	enum presso_status s = PRESSO_OK;
	if (config_path && (s = config_load(config_path, &cfg)) != PRESSO_OK)
		return cli_fail("policy", s);
	const char *path = cfg ? cfg->model_path : model;
	if ((s = graph_load_onnx(path, &g)) != PRESSO_OK ||
	    (s = graph_layers(g, &layers, &n_layers)) != PRESSO_OK) {
		rc = cli_fail("policy", s);
		goto done;
	}
	struct layer_policy dflt = policy_default_layer();
	unsigned since = json_failures();
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddItemToObject(doc, "default", layer_entry(&dflt));
	cJSON *ls = cJSON_AddObjectToObject(doc, "layers");
	cJSON *meta = cJSON_AddObjectToObject(doc, "metadata");
	cJSON_AddStringToObject(meta, "model", path);
	cJSON *info = cJSON_AddObjectToObject(meta, "layers");
	for (int i = 0; i < n_layers; i++) {
		cJSON_AddItemToObject(ls, layers[i].name, layer_entry(&dflt));
		cJSON_AddItemToObject(info, layers[i].name, layer_info(&layers[i]));
	}
	char *text = json_print(doc, true, since);
	cJSON_Delete(doc);
	if (!text) {
		rc = cli_fail("policy", status_fail(PRESSO_E_NOMEM, "out of memory"));
		goto done;
	}
	size_t n = strlen(text);
	char *line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
	s = line ? file_write_atomic(output, line, n + 1)
		 : status_fail(PRESSO_E_NOMEM, "out of memory");
	free(line);
	rc = s == PRESSO_OK ? 0 : cli_fail("policy", s);
	if (s == PRESSO_OK && strcmp(output, "-") != 0)
		fprintf(stderr, "presso: wrote a template for %d layers of %s to %s\n", n_layers, path,
			output);
done:
	free(layers);
	graph_free(g);
	config_free(cfg);
	return rc;
}
