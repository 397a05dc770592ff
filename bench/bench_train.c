/* bench_train.c - FP32 training throughput of presso's training engine.
 *
 * usage: bench_train MODEL.onnx [--batch B] [--micro M] [--threads T]
 *                   [--steps N] [--repeat R] [--optimizer sgd|adam] [--qat BITS]
 * Trains the model (in memory; the file is not changed) on random 28x28-style
 * images of its input shape with random labels: cross-entropy, SGD with
 * momentum, the trainer's real loop (parts on OpenMP threads, ordered
 * reduction, update). Prints "presso-train <model> batch <b> threads <t>
 * <images/s>", the best of R windows of N steps after one warm-up window.
 * --qat BITS trains quantization-aware at BITS for every layer instead. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "train/trainer.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_train MODEL.onnx [--batch B] [--micro M] [--threads T] "
				"[--steps N] [--repeat R] [--optimizer sgd|adam] [--qat BITS]\n");
		return 2;
	}
	const char *path = argv[1];
	struct train_config tc = train_config_default();
	int steps = 20, repeat = 3, qat = 0;
	tc.threads = 1;
	tc.kd_weight = 0.0;
	tc.schedule = SCHED_CONSTANT;
	tc.lr = 0.001;
	tc.log_every = 1000000;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--batch") == 0)
			tc.batch = atoi(v);
		else if (strcmp(k, "--micro") == 0)
			tc.micro_batch = atoi(v);
		else if (strcmp(k, "--threads") == 0)
			tc.threads = atoi(v);
		else if (strcmp(k, "--steps") == 0)
			steps = atoi(v);
		else if (strcmp(k, "--repeat") == 0)
			repeat = atoi(v);
		else if (strcmp(k, "--qat") == 0)
			qat = atoi(v);
		else if (strcmp(k, "--optimizer") == 0)
			tc.optimizer = strcmp(v, "adam") == 0 ? OPTIM_ADAM : OPTIM_SGD;
		else {
			fprintf(stderr, "bench_train: unknown option %s\n", k);
			return 2;
		}
	}
	if (tc.micro_batch > tc.batch)
		tc.micro_batch = tc.batch;
	struct graph *g;
	if (graph_load_onnx(path, &g) != PRESSO_OK) {
		fprintf(stderr, "bench_train: %s\n", status_msg());
		return 1;
	}
	const struct shape *in = &g->values[g->inputs[0]].shape;
	int classes = (int)shape_numel(&g->values[g->outputs[0]].shape);
	/* a synthetic uint8 dataset of the input's [c, h, w] */
	struct dataset ds = {0};
	ds.n = 4096;
	ds.c = (int)in->dims[1];
	ds.h = (int)in->dims[2];
	ds.w = (int)in->dims[3];
	ds.n_classes = classes;
	int64_t per = (int64_t)ds.c * ds.h * ds.w;
	ds.u8 = malloc((size_t)(ds.n * per));
	ds.labels = malloc(sizeof(int32_t) * (size_t)ds.n);
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)ds.n);
	uint32_t s = 12345;
	for (int64_t i = 0; i < ds.n * per; i++) {
		s = s * 1664525u + 1013904223u;
		ds.u8[i] = (uint8_t)(s >> 24);
	}
	for (int64_t i = 0; i < ds.n; i++) {
		ds.labels[i] = (int32_t)(i % classes);
		idx[i] = i;
	}
	struct normalize norm = {.scale = 1.0f / 255.0f, .n_channels = 1, .mean = {0.5f},
				 .std = {0.25f}};
	struct policy *pol = NULL;
	struct split calib = {.n = 64, .indices = idx};
	struct quant_config qc = {.method = CALIB_MINMAX, .percentile = 99.99,
				  .isa = q8_isa_best()};
	if (qat) {
		struct layer *layers;
		int n_layers;
		graph_layers(g, &layers, &n_layers);
		struct layer_policy lp = policy_default_layer();
		lp.bits = qat;
		policy_uniform(&lp, n_layers, &pol);
		free(layers);
	}
	struct trainer_setup su = {
		.g = g, .pol = pol, .tc = &tc, .ds = &ds, .norm = &norm, .train = idx,
		.n_train = ds.n, .calib = &calib, .qc = &qc, .steps = steps,
	};
	double best = 0.0;
	for (int r = 0; r <= repeat; r++) {
		struct trainer_report rep;
		if (trainer_run(&su, &rep) != PRESSO_OK) {
			fprintf(stderr, "bench_train: %s\n", status_msg());
			return 1;
		}
		if (r > 0 && rep.images_per_s > best)
			best = rep.images_per_s;
	}
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	printf("presso-train %s batch %d threads %d %.1f\n", name, tc.batch, tc.threads, best);
	policy_free(pol);
	free(ds.u8);
	free(ds.labels);
	free(idx);
	graph_free(g);
	return 0;
}
