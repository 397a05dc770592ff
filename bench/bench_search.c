/* bench_search.c - where a search trial's time goes: building the quantized
 * model (weight quantization, packing) against the accuracy pass on the
 * validation split (inference), for random policies of the config's space
 * (built twice: the first pass quantizes each (layer, bits) the first time,
 * the second finds them in the study's weight cache, the steady state the
 * shares below use);
 * then the search driver's own share (candidate generation, hashing, store
 * commits) from a one-worker search of N trials, as loop time minus the time
 * inside trial_evaluate.
 *
 * Usage: bench_search CONFIG [N_POLICIES=16] [N_TRIALS=32]   (bench/run_search.sh runs it)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "evaluators/evaluate.h"
#include "evaluators/trial.h"
#include "search/driver.h"
#include "base/rng.h"
#include "search/space.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what)
{
	fprintf(stderr, "bench_search: %s: %s\n", what, status_msg());
	return 1;
}

/* The next random policy of the space into p, built (timed into *secs). */
static bool build_next(const struct study_ctx *ctx, const struct space *sp, struct rng *r,
		       uint8_t *g, struct policy *p, struct qmodel **qm, double *secs)
{
	space_genome_random(sp, r, g);
	space_genome_to_policy(sp, g, p);
	double t0 = now_s();
	bool ok = qmodel_build(ctx->g, p, ctx->cal, &ctx->qc, qm) == PRESSO_OK;
	*secs = now_s() - t0;
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_search CONFIG [N_POLICIES] [N_TRIALS]\n");
		return 2;
	}
	int n_pol = argc > 2 ? atoi(argv[2]) : 16, n_trials = argc > 3 ? atoi(argv[3]) : 32;
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct space *sp = NULL;
	if (config_load(argv[1], &cfg) != PRESSO_OK)
		return fail(argv[1]);
	if (study_ctx_open(cfg, false, &ctx) != PRESSO_OK)
		return fail("study");
	if (space_parse(cfg->json, ctx->layers, ctx->n_layers, &sp) != PRESSO_OK)
		return fail("space");
	struct rng r;
	rng_seed(&r, 1);
	uint8_t *g = malloc((size_t)sp->n_genes);
	struct layer_policy lp = policy_default_layer();
	struct policy *p = NULL;
	if (!g || policy_uniform(&lp, ctx->n_layers, &p) != PRESSO_OK)
		return fail("memory");
	double build = 0, infer = 0, whole = 0;
	for (int i = 0; i < n_pol; i++) {
		struct qmodel *qm = NULL;
		double secs;
		if (!build_next(ctx, sp, &r, g, p, &qm, &secs))
			return fail("build");
		double t1 = now_s();
		struct eval_model em = {ctx->g, qm};
		struct eval_result er;
		if (eval_accuracy(&em, ctx->train, &cfg->data.norm, &ctx->valid, cfg->eval.batch, 1,
				  &er) != PRESSO_OK)
			return fail("accuracy");
		double t2 = now_s();
		qmodel_free(qm);
		struct trial_metrics_out out;
		double t3 = now_s();
		if (trial_evaluate(ctx, p, false, false, 0, &out) != PRESSO_OK)
			return fail("trial");
		whole += now_s() - t3;
		build += secs;
		infer += t2 - t1;
	}
	/* the same policies again: every (layer, bits) is in the study's weight
	 * cache now, as it is for all but the first use in a long search */
	double cold = build;
	build = 0;
	rng_seed(&r, 1);
	for (int i = 0; i < n_pol; i++) {
		struct qmodel *qm = NULL;
		double secs;
		if (!build_next(ctx, sp, &r, g, p, &qm, &secs))
			return fail("build");
		build += secs;
		qmodel_free(qm);
	}
	printf("building the quantized model: %.1f ms on the policies' first pass (each (layer, "
	       "bits) quantized the first time: %.2f s in all, once per study), %.1f ms again\n",
	       1e3 * cold / n_pol, cold - build, 1e3 * build / n_pol);
	double per_image_ms = 1e3 * infer / n_pol / (double)ctx->valid.n;
	printf("trial (mean of %d random policies, %lld validation images, one thread): "
	       "trial_evaluate %.1f ms; measured apart: building the quantized model %.1f ms (cached), "
	       "the accuracy pass %.1f ms (%.3f ms per image)\n",
	       n_pol, (long long)ctx->valid.n, 1e3 * whole / n_pol, 1e3 * build / n_pol,
	       1e3 * infer / n_pol, per_image_ms);
	/* build / (build + n * per_image) < 0.15  <=>  n > build * 0.85 / (0.15 * per_image) */
	printf("the build is the same whatever the split: outside inference < 15 %% from %.0f "
	       "validation images on\n",
	       1e3 * build / n_pol * 0.85 / (0.15 * per_image_ms));
	/* the driver: one worker, a fresh database */
	char db[] = "/tmp/presso-bench-search-XXXXXX";
	int fd = mkstemp(db);
	if (fd < 0)
		return fail("temporary file");
	close(fd);
	unlink(db);
	struct driver_opts o = {.cfg = cfg, .db_path = db, .workers = 1, .max_trials = n_trials,
				.quiet = true};
	struct driver_result res;
	if (driver_run(&o, &res) != PRESSO_OK)
		return fail("search");
	double loop = res.seconds, in_eval = res.eval_seconds;
	double outside_eval = loop - in_eval;
	printf("driver (one worker, %d trials): loop %.2f s, inside trial_evaluate %.2f s, "
	       "driver's own %.1f %%\n",
	       res.n_complete_run, loop, in_eval, 100 * outside_eval / loop);
	double build_share = build / (build + infer);
	printf("share of a trial outside inference: %.1f %% (building the model %.1f %% of a "
	       "trial's evaluation, the driver %.1f %% of the loop)\n",
	       100 * (outside_eval + in_eval * build_share) / loop, 100 * build_share,
	       100 * outside_eval / loop);
	driver_result_free(&res);
	char side[sizeof db + 8];
	snprintf(side, sizeof side, "%s-wal", db);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", db);
	unlink(side);
	unlink(db);
	policy_free(p);
	free(g);
	space_free(sp);
	study_ctx_free(ctx);
	config_free(cfg);
	return 0;
}
