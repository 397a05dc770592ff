/* bench_profile.c - where an INT8 model's time goes: per step of the engine
 * (qengine_run_profiled), summed over repeated runs of one chunk of images.
 *
 * usage: bench_profile MODEL.onnx [--policy int8|int4|FILE] [--batch B] [--runs R]
 *                      [--requant float|q31]
 * Calibrates on 500 training images of Fashion-MNIST like bench_int8, then
 * prints one line per step (op, node, output shape, microseconds per image,
 * share of the total) and the share per op. One thread. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_profile MODEL.onnx [--policy P] [--batch B] [--runs R]"
				" [--requant float|q31]\n");
		return 2;
	}
	const char *policy = "int8";
	int batch = 8, runs = 200;
	enum requant_mode requant = REQUANT_FLOAT;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
			policy = argv[++i];
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--requant") == 0 && i + 1 < argc)
			requant = strcmp(argv[++i], "q31") == 0 ? REQUANT_Q31 : REQUANT_FLOAT;
	}
	if (batch < 1 || runs < 1) {
		fprintf(stderr, "bench_profile: --batch and --runs must be positive\n");
		return 2;
	}
	struct graph *g = NULL;
	struct dataset *ds = NULL;
	struct calib *cal = NULL;
	struct layer *ls = NULL;
	struct policy *p = NULL;
	struct qmodel *m = NULL;
	struct qengine *e = NULL;
	struct split sp = {0};
	double *t = NULL, *sum = NULL;
	int nl;
	struct normalize norm = {.scale = 1.0f / 255, .n_channels = 1, .mean = {0.2860f}, .std = {0.3530f}};
	enum presso_status s;
	if ((s = graph_load_onnx(argv[1], &g)) ||
	    (s = dataset_load_idx(FMNIST "train-images-idx3-ubyte.gz", FMNIST "train-labels-idx1-ubyte.gz", &ds)) ||
	    (s = split_range(ds->n, 500, &sp)) ||
	    (s = calib_run(g, ds, &norm, &sp, 100, &cal)) ||
	    (s = graph_layers(g, &ls, &nl)) ||
	    (s = policy_load(policy, ls, nl, &p)))
		goto fail;
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, requant};
	if ((s = qmodel_build(g, p, cal, &qc, &m)) || (s = qengine_create(m, batch, &e)))
		goto fail;
	int n_steps = qmodel_n_steps(m);
	t = calloc((size_t)n_steps, sizeof *t);
	sum = calloc((size_t)n_steps, sizeof *sum);
	if (!t || !sum) {
		fprintf(stderr, "bench_profile: out of memory\n");
		return 1;
	}
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
	for (int i = 0; idx && i < batch; i++)
		idx[i] = i;
	if (idx)
		dataset_get_batch(ds, &norm, idx, batch, false, qengine_input(e, 0), NULL);
	free(idx);
	for (int r = 0; r < runs + 5; r++) {
		if ((s = qengine_run_profiled(e, batch, t)))
			goto fail;
		for (int i = 0; r >= 5 && i < n_steps; i++) /* 5 warm-up runs */
			sum[i] += t[i];
	}
	double total = 0;
	for (int i = 0; i < n_steps; i++)
		total += sum[i];
	const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	printf("# %s, kernels %s, policy %s, %s requantization, batch %d, %d runs: %.2f us/image\n",
	       name, q8_isa_name(qc.isa), policy, requant == REQUANT_Q31 ? "q31" : "float", batch,
	       runs, total / runs / batch);
	printf("%-4s %-18s %-28s %-20s %10s %6s\n", "step", "op", "node", "output (NCHW)",
	       "us/image", "%");
	double per_op[OP_COUNT] = {0};
	for (int i = 0; i < n_steps; i++) {
		int nd = qmodel_step_node(m, i);
		const char *op = nd >= 0 ? op_name(g->nodes[nd].op) : "(quantize)";
		char shape[64] = "";
		if (nd >= 0) {
			const struct shape *os = &g->values[g->nodes[nd].output].shape;
			int off = 0;
			for (int d = 1; d < os->n_dims && off < 48; d++)
				off += snprintf(shape + off, sizeof shape - (size_t)off, "%s%lld",
						d > 1 ? "x" : "", (long long)os->dims[d]);
			if (g->nodes[nd].op == OP_CONV && g->nodes[nd].a.group > 1)
				snprintf(shape + off, sizeof shape - (size_t)off, " dw");
		}
		if (nd >= 0 && (int)g->nodes[nd].op < OP_COUNT)
			per_op[g->nodes[nd].op] += sum[i];
		printf("%-4d %-18s %-28.28s %-20s %10.3f %5.1f%%\n", i, op,
		       nd >= 0 ? g->nodes[nd].name : "", shape, sum[i] / runs / batch,
		       100 * sum[i] / total);
	}
	for (int op = 0; op < OP_COUNT; op++)
		if (per_op[op] > 0)
			printf("# %-18s %5.1f%%\n", op_name((enum op_type)op), 100 * per_op[op] / total);
	free(t);
	free(sum);
	qengine_free(e);
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	split_free(&sp);
	dataset_free(ds);
	graph_free(g);
	return 0;
fail:
	fprintf(stderr, "bench_profile: %s\n", status_msg());
	return 1;
}
