/* bench_compressed.c - throughput of presso's INT8 engine on exactly the model
 * `presso compress` builds for a study config and a policy (the same calibration
 * split and transform pipeline, trial_build()), one thread.
 *
 * usage: bench_compressed CONFIG.json POLICY [--seconds S] [--rounds R] [BATCH ...]
 * prints per batch: "presso-int8 <model> batch <b> <images/s>", the best of R
 * rounds of S seconds (defaults 3 and 3: the machine may be shared). Part of
 * bench/run_compress.sh.
 * With BENCH_CLOCK=cpu in the environment the seconds are this process's CPU
 * time instead of wall time (ort_timing.js reads the same variable), so that
 * on a machine shared with other work the time slices others take count for
 * neither side: the same runs of qengine_run on the first test images. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "evaluators/evaluate.h"
#include "evaluators/trial.h"
#include "quant/policy.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* images/s of qengine_run at one batch over `seconds` of CPU time (>= 5 runs). */
static enum presso_status cpu_throughput(const struct qmodel *qm, const struct dataset *ds,
					 const struct normalize *norm, int batch, double seconds,
					 double *ips)
{
	struct qengine *e = NULL;
	enum presso_status s = qengine_create(qm, batch, &e);
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
	if (s == PRESSO_OK && !idx)
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s == PRESSO_OK) {
		for (int i = 0; i < batch; i++)
			idx[i] = i % ds->n;
		dataset_get_batch(ds, norm, idx, batch, false, qengine_input(e, 0), NULL);
		s = qengine_run(e, batch); /* warm-up */
	}
	int64_t runs = 0;
	double t0 = cpu_s(), t = t0;
	while (s == PRESSO_OK && (t - t0 < seconds || runs < 5)) {
		s = qengine_run(e, batch);
		runs++;
		t = cpu_s();
	}
	*ips = s == PRESSO_OK && t > t0 ? (double)(runs * batch) / (t - t0) : 0;
	free(idx);
	qengine_free(e);
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_compressed CONFIG.json POLICY [--seconds S] [--rounds R] [BATCH ...]\n");
		return 2;
	}
	double seconds = 3.0;
	int rounds = 3;
	int batches[16], nb = 0;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
		else if (nb < 16)
			batches[nb++] = atoi(argv[i]);
	}
	if (!nb) {
		batches[0] = 1;
		batches[1] = 64;
		nb = 2;
	}
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct policy *pol = NULL;
	struct built_model b = {0};
	enum presso_status s;
	if ((s = config_load(argv[1], &cfg)) || (s = study_ctx_open(cfg, false, &ctx)) ||
	    (s = policy_load(argv[2], ctx->layers, ctx->n_layers, &pol)) ||
	    (s = trial_build(ctx, pol, &b)))
		goto fail;
	const char *name = strrchr(cfg->model_path, '/') ? strrchr(cfg->model_path, '/') + 1
							 : cfg->model_path;
	struct eval_model em = {b.g, b.qm};
	const char *clk = getenv("BENCH_CLOCK");
	bool cpu = clk && strcmp(clk, "cpu") == 0;
	for (int i = 0; i < nb; i++) {
		double best = 0;
		for (int r = 0; r < rounds; r++) {
			double ips;
			if ((s = cpu ? cpu_throughput(b.qm, ctx->test, &cfg->data.norm, batches[i],
						      seconds, &ips)
				     : eval_throughput(&em, ctx->test, &cfg->data.norm, batches[i],
						       seconds, &ips)))
				goto fail;
			if (ips > best)
				best = ips;
		}
		printf("presso-int8 %s batch %d %.1f\n", name, batches[i], best);
		fflush(stdout);
	}
	built_model_free(&b);
	policy_free(pol);
	study_ctx_free(ctx);
	config_free(cfg);
	return 0;
fail:
	fprintf(stderr, "bench_compressed: %s\n", status_msg());
	return 1;
}
