/* bench_int8.c - throughput of presso's INT8 engine (and its FP32 engine, same
 * run), one thread, on a shipped model with a policy.
 *
 * usage: bench_int8 MODEL.onnx [--policy int8|int4|FILE] [--seconds S] [--repeat R]
 *                   [--int8-weights] [BATCH ...]
 * Calibrates on 500 training images of Fashion-MNIST, then prints per batch
 * the best of R windows of S seconds each (the least disturbed by other load;
 * defaults 3 and 3):
 *   "presso-int8 <model> batch <b> <images/s>" and "presso-fp32 <model> batch <b> <images/s>"
 * and the kernel path in use with the bytes of its packed weights
 * (--int8-weights: every weight packed as int8, even where the path would keep
 * 4-bit weights two to a byte). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "evaluators/evaluate.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* How the engine was told to pack 4-bit weights, if it was. */
static const char *w4_note(void)
{
	const char *env = getenv(QENGINE_PACK_W4_ENV);
	return env && strcmp(env, "0") == 0 ? " (int8 throughout: " QENGINE_PACK_W4_ENV "=0)" : "";
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_int8 MODEL.onnx [--policy P] [--seconds S] [--repeat R]"
				" [--int8-weights] [BATCH ...]\n");
		return 2;
	}
	const char *policy = "int8";
	double seconds = 3.0;
	int repeat = 3, batches[16], nb = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
			policy = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (strcmp(argv[i], "--int8-weights") == 0)
			setenv(QENGINE_PACK_W4_ENV, "0", 1);
		else if (nb < 16)
			batches[nb++] = atoi(argv[i]);
	}
	if (!nb) {
		batches[0] = 1;
		batches[1] = 64;
		nb = 2;
	}
	struct graph *g = NULL;
	struct dataset *ds = NULL;
	struct calib *cal = NULL;
	struct layer *ls = NULL;
	struct policy *p = NULL;
	struct qmodel *m = NULL;
	struct split sp = {0};
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
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	if ((s = qmodel_build(g, p, cal, &qc, &m)))
		goto fail;
	const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	struct qmodel_size z;
	qmodel_size(m, &z);
	printf("# kernels: %s, policy %s, packed weights %lld bytes%s\n", q8_isa_name(qc.isa), policy,
	       (long long)z.resident_bytes, w4_note());
	struct eval_model em = {g, m}, fm = {g, NULL};
	for (int i = 0; i < nb; i++) {
		double qi = 0, fi = 0;
		for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
			double q1, f1;
			if ((s = eval_throughput(&em, ds, &norm, batches[i], seconds, &q1)) ||
			    (s = eval_throughput(&fm, ds, &norm, batches[i], seconds, &f1)))
				goto fail;
			qi = q1 > qi ? q1 : qi;
			fi = f1 > fi ? f1 : fi;
		}
		printf("presso-int8 %s batch %d %.1f\n", name, batches[i], qi);
		printf("presso-fp32 %s batch %d %.1f\n", name, batches[i], fi);
		fflush(stdout);
	}
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	split_free(&sp);
	dataset_free(ds);
	graph_free(g);
	return 0;
fail:
	fprintf(stderr, "bench_int8: %s\n", status_msg());
	return 1;
}
