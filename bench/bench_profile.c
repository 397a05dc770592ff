/* bench_profile.c - where an INT8 model's time goes, and how well each layer
 * uses the core: per step of the engine (qengine_run_profiled, which splits a
 * batch into the engine's chunks as qengine_run does), the fastest of repeated
 * runs of one batch.
 *
 * usage: bench_profile MODEL.onnx [--policy int8|int4|FILE] [--batch B] [--runs R]
 *                      [--requant float|q31] [--int8-weights]
 * Calibrates on 500 training images of Fashion-MNIST like bench_int8, then
 * measures this core's clock and INT8 peak (bench/common/bench_cpu.c: a
 * dependent-add chain and a vpdpbusd throughput loop, the same as
 * bench_qgemm's) and prints one line per step: op, node, output shape,
 * microseconds per image, share of the total, and for a layer (conv,
 * depthwise, FC) its MACs per image, MACs per cycle and percent of the peak.
 * MACs per cycle count the MACs of taps inside the input (a conv's taps on
 * its padding add a_zero times a weight, which the AVX-512 convolution folds
 * into the bias where whole kernel rows or edge columns lie there): the
 * nominal count, in the MACs/img column, would put such a conv above the
 * peak. Then the same per kind of layer (MACs inside), and the steps that
 * are no layer. One
 * thread. Each step's time is its fastest over the runs (wall time,
 * CLOCK_MONOTONIC): on a machine shared with other work the mean counts every
 * time slice another process took; the total is the sum of those minima.
 * --int8-weights packs every weight as int8, even where the kernels would keep
 * 4-bit weights two to a byte (for before/after runs in one build). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "common/bench_cpu.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* How the engine was told to pack 4-bit weights, if it was. */
static const char *w4_note(void)
{
	const char *env = getenv(QENGINE_PACK_W4_ENV);
	return env && strcmp(env, "0") == 0 ? " (int8 throughout: " QENGINE_PACK_W4_ENV "=0)" : "";
}

/* MACs per image of conv layer L (node nd) over the taps that fall inside
 * its input: the nominal count less the taps on padding, which the AVX-512
 * convolution skips where whole kernel rows or edge columns lie there. Per
 * output row the kernel rows inside, per output column the kernel columns
 * inside: the two sums multiply. */
static double inside_macs(const struct graph *g, int nd, const struct layer *L)
{
	const struct node *n = &g->nodes[nd];
	if (n->op != OP_CONV || n->n_inputs < 1)
		return (double)L->macs;
	const struct shape *in = &g->values[n->inputs[0]].shape, *out = &g->values[n->output].shape;
	if (in->n_dims != 4 || out->n_dims != 4)
		return (double)L->macs;
	double sum[2] = {0, 0};
	for (int d = 0; d < 2; d++) {
		int64_t size_in = in->dims[2 + d], size_out = out->dims[2 + d];
		int k = d == 0 ? L->kh : L->kw, s = n->a.strides[d], dil = n->a.dilations[d];
		int pad = n->a.pads[d];
		for (int64_t o = 0; o < size_out; o++)
			for (int t = 0; t < k; t++) {
				int64_t i = o * s - pad + (int64_t)t * dil;
				sum[d] += i >= 0 && i < size_in;
			}
	}
	return sum[0] * sum[1] * (double)L->c_out * (double)L->c_in;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_profile MODEL.onnx [--policy P] [--batch B] [--runs R]"
				" [--requant float|q31] [--int8-weights]\n");
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
		else if (strcmp(argv[i], "--int8-weights") == 0)
			setenv(QENGINE_PACK_W4_ENV, "0", 1);
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
	double *t = NULL, *best = NULL; /* per step: this run, the fastest run */
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
	best = calloc((size_t)n_steps, sizeof *best);
	if (!t || !best) {
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
			if (r == 5 || t[i] < best[i])
				best[i] = t[i];
	}
	double total = 0;
	for (int i = 0; i < n_steps; i++)
		total += best[i];
	const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	char cpu[192];
	double ghz = 0, peak = bench_int8_peak(&ghz);
	printf("# %s, kernels %s, policy %s, %s requantization, batch %d, best of %d runs:"
	       " %.2f us/image\n",
	       name, q8_isa_name(qc.isa), policy, requant == REQUANT_Q31 ? "q31" : "float", batch,
	       runs, total / batch);
	printf("# CPU: %s; core clock %.2f GHz (dependent adds); measured INT8 peak %.1f MACs/cycle"
	       " (%s)\n", bench_cpu_model(cpu, sizeof cpu), ghz, peak,
	       q8_isa_supported(Q8_ISA_AVX512VNNI) ? "vpdpbusd zmm" : "vpmaddwd ymm");
	struct qmodel_size z;
	qmodel_size(m, &z);
	printf("# packed weights in memory: %lld bytes%s\n", (long long)z.resident_bytes,
	       w4_note());
	printf("# MAC/cyc and %%peak: the MACs of taps inside the input (MACs/img: all)\n");
	printf("%-4s %-18s %-28s %-20s %10s %6s %10s %7s %6s\n", "step", "op", "node",
	       "output (NCHW)", "us/image", "%", "MACs/img", "MAC/cyc", "%peak");
	double per_op[OP_COUNT] = {0};
	/* per kind of layer: MACs per image and seconds */
	enum { K_CONV1, K_CONV, K_DW, K_FC, K_OTHER, K_COUNT };
	static const char *const kind_name[K_COUNT] = {"conv 1x1", "conv kxk", "depthwise",
						       "fully connected", "no layer"};
	double kind_macs[K_COUNT] = {0}, kind_us[K_COUNT] = {0};
	for (int i = 0; i < n_steps; i++) {
		int nd = qmodel_step_node(m, i), li = qmodel_step_layer(m, i);
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
			per_op[g->nodes[nd].op] += best[i];
		double us = best[i] / batch;
		printf("%-4d %-18s %-28.28s %-20s %10.3f %5.1f%%", i, op,
		       nd >= 0 ? g->nodes[nd].name : "", shape, us, 100 * best[i] / total);
		int kind = K_OTHER;
		if (li >= 0 && li < nl) {
			const struct layer *L = &ls[li];
			kind = L->op != OP_CONV ? K_FC
			       : L->group > 1 && L->c_in == 1 ? K_DW
			       : L->kh == 1 && L->kw == 1 ? K_CONV1 : K_CONV;
			double done = inside_macs(g, nd, L);
			double mpc = us > 0 && ghz > 0 ? done / (us * 1e3 * ghz) : 0;
			printf(" %10lld %7.1f %5.1f%%", (long long)L->macs, mpc,
			       peak > 0 ? 100 * mpc / peak : 0.0);
			kind_macs[kind] += done;
		} else {
			printf(" %10s %7s %6s", "-", "-", "-");
		}
		kind_us[kind] += us;
		printf("\n");
	}
	for (int op = 0; op < OP_COUNT; op++)
		if (per_op[op] > 0)
			printf("# %-18s %5.1f%%\n", op_name((enum op_type)op), 100 * per_op[op] / total);
	double all_macs = 0;
	printf("# %-16s %10s %6s %12s %7s %6s\n", "kind", "us/image", "%", "MACs inside", "MAC/cyc",
	       "%peak");
	for (int k = 0; k < K_COUNT; k++) {
		if (kind_us[k] <= 0)
			continue;
		all_macs += kind_macs[k];
		double mpc = ghz > 0 ? kind_macs[k] / (kind_us[k] * 1e3 * ghz) : 0;
		printf("# %-16s %10.3f %5.1f%% %12.0f", kind_name[k], kind_us[k],
		       100 * kind_us[k] * batch / total, kind_macs[k]);
		if (k != K_OTHER)
			printf(" %7.1f %5.1f%%", mpc, peak > 0 ? 100 * mpc / peak : 0.0);
		printf("\n");
	}
	double mpc = ghz > 0 ? all_macs / (total / batch * 1e3 * ghz) : 0;
	printf("# %-16s %10.3f %5.1f%% %12.0f %7.1f %5.1f%%\n", "whole model", total / batch,
	       100.0, all_macs, mpc, peak > 0 ? 100 * mpc / peak : 0.0);
	free(t);
	free(best);
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
