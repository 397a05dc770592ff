/* bench_fp32.c - FP32 throughput of presso's reference engine, one thread.
 *
 * usage: bench_fp32 MODEL.onnx [BATCH ...] [--seconds S]
 * Prints one line per batch size: "presso <model> batch <b> <images/s>".
 * Inputs are fixed pseudo-random values (throughput does not depend on them). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/engine.h"
#include "model/graph.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(const struct graph *g, const char *name, int batch, double seconds)
{
	struct engine *e;
	if (engine_create(g, batch, &e) != PRESSO_OK) {
		fprintf(stderr, "bench_fp32: %s\n", status_msg());
		return 1;
	}
	int64_t n = shape_numel(&g->values[g->inputs[0]].shape) * batch;
	float *x = engine_input(e, 0);
	uint32_t s = 12345;
	for (int64_t i = 0; i < n; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
	}
	engine_run(e, batch);
	int64_t runs = 0;
	double t0 = now_s(), t = t0;
	while (t - t0 < seconds || runs < 5) {
		engine_run(e, batch);
		runs++;
		t = now_s();
	}
	printf("presso %s batch %d %.1f\n", name, batch, (double)(runs * batch) / (t - t0));
	engine_free(e);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_fp32 MODEL.onnx [BATCH ...] [--seconds S]\n");
		return 2;
	}
	double seconds = 3.0;
	int batches[16], n_batches = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (n_batches < 16)
			batches[n_batches++] = atoi(argv[i]);
	}
	if (!n_batches) {
		batches[0] = 1;
		batches[1] = 64;
		n_batches = 2;
	}
	struct graph *g;
	if (graph_load_onnx(argv[1], &g) != PRESSO_OK) {
		fprintf(stderr, "bench_fp32: %s\n", status_msg());
		return 2;
	}
	const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	int rc = 0;
	for (int i = 0; i < n_batches && !rc; i++)
		rc = bench(g, name, batches[i], seconds);
	graph_free(g);
	return rc;
}
