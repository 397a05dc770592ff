/* info.c - `presso info`: the layers of a model, their shapes, parameters and MACs;
 * for a .presso file also each layer's quantization and the model's size. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/json_get.h"
#include "model/graph.h"
#include "format/presso_file.h"
#include "quant/qengine.h"
#include "quant/quant.h"

static const char *in_shape_str(const struct graph *g, const struct node *n, char *buf,
				size_t bytes)
{
	const struct value *v = &g->values[n->inputs[0]];
	return shape_format(&v->shape, v->batched, buf, bytes);
}

static const char *out_shape_str(const struct graph *g, const struct node *n, char *buf,
				 size_t bytes)
{
	const struct value *v = &g->values[n->output];
	return shape_format(&v->shape, v->batched, buf, bytes);
}

/* The R of recurrent node i when it takes the bits of a layer (its input
 * projection, graph_rnn_projection: *layer gets its index) and no earlier
 * node reads the same R; else -1. */
static int recurrent_weights(const struct graph *g, const struct layer *ls, int nl, int i,
			     int *layer)
{
	int p = graph_rnn_projection(g, i);
	*layer = -1;
	for (int k = 0; k < nl && p >= 0; k++)
		if (ls[k].node == p)
			*layer = k;
	int r = *layer >= 0 ? g->nodes[i].inputs[RNN_IN_R] : -1;
	for (int j = 0; j < i && r >= 0; j++)
		if (op_is_recurrent(g->nodes[j].op) && g->nodes[j].inputs[RNN_IN_R] == r)
			return -1;
	return r;
}

static int print_json(const char *path, const struct graph *g, const struct layer *ls, int nl,
		      const struct qmodel *qm)
{
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	char a[96], b[96];
	unsigned since = json_failures();
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "model", path);
	cJSON_AddStringToObject(root, "producer", g->producer ? g->producer : "");
	cJSON_AddNumberToObject(root, "opset", (double)g->opset);
	cJSON *ins = cJSON_AddArrayToObject(root, "inputs");
	for (int i = 0; i < g->n_inputs; i++) {
		const struct value *v = &g->values[g->inputs[i]];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", v->name);
		cJSON_AddStringToObject(o, "shape", shape_format(&v->shape, v->batched, a, sizeof a));
		cJSON_AddItemToArray(ins, o);
	}
	cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
	for (int i = 0; i < g->n_outputs; i++) {
		const struct value *v = &g->values[g->outputs[i]];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", v->name);
		cJSON_AddStringToObject(o, "shape", shape_format(&v->shape, v->batched, a, sizeof a));
		cJSON_AddItemToArray(outs, o);
	}
	cJSON *arr = cJSON_AddArrayToObject(root, "layers");
	for (int i = 0; i < nl; i++) {
		const struct node *n = &g->nodes[ls[i].node];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "index", i);
		cJSON_AddStringToObject(o, "name", ls[i].name);
		cJSON_AddStringToObject(o, "op", op_name(ls[i].op));
		cJSON_AddStringToObject(o, "input_shape", in_shape_str(g, n, a, sizeof a));
		cJSON_AddStringToObject(o, "output_shape", out_shape_str(g, n, b, sizeof b));
		cJSON_AddNumberToObject(o, "c_in", (double)ls[i].c_in);
		cJSON_AddNumberToObject(o, "c_out", (double)ls[i].c_out);
		cJSON_AddNumberToObject(o, "kh", ls[i].kh);
		cJSON_AddNumberToObject(o, "kw", ls[i].kw);
		cJSON_AddNumberToObject(o, "group", ls[i].group);
		cJSON_AddNumberToObject(o, "params", (double)ls[i].params);
		cJSON_AddNumberToObject(o, "macs", (double)ls[i].macs);
		if (qm) {
			struct qlayer_view v;
			qmodel_layer_view(qm, i, &v);
			cJSON_AddNumberToObject(o, "bits", v.bits);
			cJSON_AddNumberToObject(o, "act_bits", v.act_bits);
			cJSON_AddStringToObject(o, "coding", quant_coding_name(v.coding.kind));
			cJSON_AddNumberToObject(o, "weight_bytes", (double)v.coding.bytes);
		}
		cJSON_AddItemToArray(arr, o);
	}
	cJSON *rec = cJSON_AddArrayToObject(root, "recurrent_weights");
	for (int i = 0; i < g->n_nodes; i++) {
		int li, r = recurrent_weights(g, ls, nl, i, &li);
		if (r < 0)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "node", g->nodes[i].name);
		cJSON_AddNumberToObject(o, "layer", li);
		cJSON_AddNumberToObject(o, "params", (double)shape_numel(&g->values[r].shape));
		int c = qm ? qmodel_qconst_of(qm, r) : -1;
		if (c >= 0) {
			struct qconst_view q;
			qmodel_qconst_view(qm, c, &q);
			cJSON_AddNumberToObject(o, "bits", q.bits);
			cJSON_AddStringToObject(o, "coding", quant_coding_name(q.coding.kind));
			cJSON_AddNumberToObject(o, "weight_bytes", (double)q.coding.bytes);
		}
		cJSON_AddItemToArray(rec, o);
	}
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "layers", nl);
	cJSON_AddNumberToObject(tot, "nodes", g->n_nodes);
	cJSON_AddNumberToObject(tot, "params", (double)params);
	cJSON_AddNumberToObject(tot, "macs", (double)macs);
	cJSON_AddNumberToObject(tot, "fp32_bytes", (double)(params * 4));
	cJSON_AddNumberToObject(tot, "folded_batchnorm", g->n_folded_bn);
	if (qm) {
		struct qmodel_size z;
		qmodel_size(qm, &z);
		cJSON_AddNumberToObject(tot, "size_bytes", (double)z.size_bytes);
		cJSON_AddNumberToObject(tot, "weight_bytes", (double)z.weight_bytes);
		cJSON_AddNumberToObject(tot, "bops", z.bops);
		cJSON_AddNumberToObject(tot, "mean_bits", z.mean_bits);
	}
	char *text = json_print(root, true, since);
	cJSON_Delete(root);
	if (!text) {
		fprintf(stderr, "presso info: out of memory\n");
		return 1;
	}
	puts(text);
	free(text);
	return 0;
}

static int print_table(const char *path, const struct graph *g, const struct layer *ls, int nl,
		       const struct qmodel *qm)
{
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	char a[96], b[96];
	printf("model:   %s\n", path);
	printf("format:  %s opset %lld%s%s\n", qm ? ".presso, quantized from ONNX" : "ONNX",
	       (long long)g->opset, g->producer ? ", from " : "", g->producer ? g->producer : "");
	for (int i = 0; i < g->n_inputs; i++) {
		const struct value *v = &g->values[g->inputs[i]];
		printf("input:   %s %s", v->name, shape_format(&v->shape, v->batched, a, sizeof a));
		if (!v->batched && v->shape.n_dims > 0)
			printf(" (a fixed batch of %lld: data runs through it %lld at a time)",
			       (long long)v->shape.dims[0], (long long)v->shape.dims[0]);
		printf("\n");
	}
	for (int i = 0; i < g->n_outputs; i++) {
		const struct value *v = &g->values[g->outputs[i]];
		printf("output:  %s %s\n", v->name, shape_format(&v->shape, v->batched, a, sizeof a));
	}
	printf("graph:   %d nodes", g->n_nodes);
	if (g->n_folded_bn)
		printf(", %d BatchNormalization folded", g->n_folded_bn);
	int wn = 5, wio = 15;
	char io[200];
	for (int i = 0; i < nl; i++) {
		const struct node *n = &g->nodes[ls[i].node];
		int len = (int)strlen(ls[i].name);
		wn = len > wn ? len : wn;
		len = snprintf(io, sizeof io, "%s -> %s", in_shape_str(g, n, a, sizeof a),
			       out_shape_str(g, n, b, sizeof b));
		wio = len > wio ? len : wio;
	}
	printf("\n\n%3s  %-*s %-6s %-*s %10s %12s", "#", wn, "layer", "op", wio,
	       "input -> output", "params", "MACs");
	printf(qm ? "  %4s %4s %-9s %9s\n" : "\n", "bits", "act", "coding", "bytes");
	for (int i = 0; i < nl; i++) {
		const struct node *n = &g->nodes[ls[i].node];
		snprintf(io, sizeof io, "%s -> %s", in_shape_str(g, n, a, sizeof a),
			 out_shape_str(g, n, b, sizeof b));
		const char *op = op_name(ls[i].op);
		char opbuf[16];
		if (ls[i].op == OP_CONV && ls[i].group > 1)
			op = ls[i].group == ls[i].c_out ? "DWConv" : "GConv";
		snprintf(opbuf, sizeof opbuf, "%s", op);
		printf("%3d  %-*s %-6s %-*s %10lld %12lld", i, wn, ls[i].name, opbuf, wio, io,
		       (long long)ls[i].params, (long long)ls[i].macs);
		if (qm) {
			struct qlayer_view v;
			qmodel_layer_view(qm, i, &v);
			printf("  %4d %4d %-9s %9lld", v.bits, v.act_bits,
			       quant_coding_name(v.coding.kind), (long long)v.coding.bytes);
		}
		printf("\n");
	}
	/* a recurrent layer's R takes its input projection's bits */
	for (int i = 0; i < g->n_nodes; i++) {
		int li, r = recurrent_weights(g, ls, nl, i, &li);
		if (r < 0)
			continue;
		printf("%3s  R of %s (%lld recurrent weights) takes layer %d's weight bits", "",
		       g->nodes[i].name, (long long)shape_numel(&g->values[r].shape), li);
		int c = qm ? qmodel_qconst_of(qm, r) : -1;
		if (c >= 0) {
			struct qconst_view q;
			qmodel_qconst_view(qm, c, &q);
			printf(": %d bits, %s, %lld bytes", q.bits, quant_coding_name(q.coding.kind),
			       (long long)q.coding.bytes);
		}
		printf("\n");
	}
	printf("\ntotal:   %d compressible layers, %lld parameters (%.1f KiB as FP32), %.2f M MACs per image",
	       nl, (long long)params, (double)params * 4 / 1024.0, (double)macs / 1e6);
	int64_t fp32_macs = graph_fp32_macs(g);
	if (fp32_macs > 0) /* a recurrence or a ConvTranspose: not a layer */
		printf(" (%.2f M outside the layers: recurrences, ConvTranspose)",
		       (double)fp32_macs / 1e6);
	printf("\n");
	if (qm) {
		struct qmodel_size z;
		qmodel_size(qm, &z);
		printf("size:    %lld bytes quantized (weights %lld bytes, mean %.2f bits), %.4g BOPs\n",
		       (long long)z.size_bytes, (long long)z.weight_bytes, z.mean_bits, z.bops);
	}
	return 0;
}

int cmd_info(int argc, char **argv)
{
	const char *model = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"model", CLI_STRING, "FILE", "the ONNX or .presso model to describe", NULL, &model},
		{"json", CLI_FLAG, NULL, "print JSON instead of a table", &json, NULL},
	};
	const struct cli_cmd cmd = {"info",
				    "Lists the compressible layers of a model (Conv, Gemm, MatMul with "
				    "constant weights)\nwith their shapes, parameters and MACs per image; "
				    "for a .presso file also\neach layer's bits, activation bits and weight "
				    "coding, and the model's size.",
				    "--model FILE [--json]   or   presso info FILE [--json]", opts, 2};
	int rc;
	/* `presso info FILE`: the model may come first, without --model */
	if (argc > 1 && argv[1][0] != '-') {
		model = argv[1];
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "model", model))
		return 2;
	struct graph *g;
	struct qmodel *qm = NULL;
	enum presso_status s = presso_file_sniff(model)
				       ? presso_file_load(model, q8_isa_best(), &g, &qm)
				       : graph_load_onnx(model, &g);
	if (s != PRESSO_OK)
		return cli_fail("info", s);
	struct layer *ls;
	int nl;
	s = graph_layers(g, &ls, &nl);
	if (s != PRESSO_OK) {
		qmodel_free(qm);
		graph_free(g);
		return cli_fail("info", s);
	}
	rc = json ? print_json(model, g, ls, nl, qm) : print_table(model, g, ls, nl, qm);
	free(ls);
	qmodel_free(qm);
	graph_free(g);
	return rc;
}
