/* evaluate.c - accuracy, throughput and latency of an FP32 graph or INT8 model.
 * See evaluate.h. A runner hides which engine runs: each OpenMP thread owns one
 * runner and one label buffer. */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/evaluate.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/engine.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct runner {
	struct engine *f;
	struct qengine *q;
};

static enum presso_status runner_create(const struct eval_model *m, int batch, struct runner *r)
{
	memset(r, 0, sizeof *r);
	return m->q ? qengine_create(m->q, batch, &r->q) : engine_create(m->g, batch, &r->f);
}

static float *runner_input(struct runner *r)
{
	return r->q ? qengine_input(r->q, 0) : engine_input(r->f, 0);
}

static enum presso_status runner_run(struct runner *r, int batch)
{
	return r->q ? qengine_run(r->q, batch) : engine_run(r->f, batch);
}

static const float *runner_output(struct runner *r, struct shape *s)
{
	return r->q ? qengine_output(r->q, 0, s) : engine_output(r->f, 0, s);
}

static void runner_free(struct runner *r)
{
	qengine_free(r->q);
	engine_free(r->f);
}

static int64_t count_correct(const float *logits, int64_t n_classes, const int32_t *labels,
			     int n)
{
	int64_t correct = 0;
	for (int i = 0; i < n; i++) {
		const float *row = logits + (int64_t)i * n_classes;
		int64_t best = 0;
		for (int64_t c = 1; c < n_classes; c++)
			if (row[c] > row[best])
				best = c;
		correct += best == labels[i];
	}
	return correct;
}

enum presso_status eval_accuracy(const struct eval_model *m, const struct dataset *ds,
				 const struct normalize *norm, const struct split *split,
				 int batch, int threads, struct eval_result *out)
{
	memset(out, 0, sizeof *out);
	struct feed f;
	enum presso_status s = feed_check(m->g, ds, &f);
	if (s != PRESSO_OK)
		return s;
	if (batch < 1)
		batch = 1;
	if (threads < 1)
		threads = 1;
	/* images per run: the batch, or the model's fixed batch */
	const int per_run = feed_run_images(&f, batch);
	int64_t n_batches = (split->n + per_run - 1) / per_run;
	if (threads > n_batches)
		threads = n_batches > 0 ? (int)n_batches : 1;
	int64_t correct = 0;
	enum presso_status first_error = PRESSO_OK;
	char error_msg[1024] = "";
	double t0 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : correct)
	{
		struct runner r;
		int32_t *labels = malloc(sizeof(int32_t) * (size_t)per_run);
		enum presso_status ts = runner_create(m, feed_engine_batch(&f, per_run), &r);
		if (ts == PRESSO_OK && !labels)
			ts = status_fail(PRESSO_E_NOMEM, "out of memory");
		/* the clock starts when every thread has its engine: preparing one
		 * (the arena's allocation and first touch) is no inference, and the
		 * threads do it at once, so it weighed twice as much in a run on two
		 * threads as on one */
#pragma omp barrier
#pragma omp master
		t0 = now_s();
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
		for (int64_t b = 0; b < n_batches; b++) {
			if (ts != PRESSO_OK)
				continue;
			int64_t start = b * per_run;
			int n = (int)(split->n - start < per_run ? split->n - start : per_run);
			feed_batch(&f, ds, norm, split->indices + start, n, runner_input(&r), labels);
			ts = runner_run(&r, feed_engine_batch(&f, n));
			if (ts != PRESSO_OK)
				continue;
			struct shape os;
			const float *logits = runner_output(&r, &os);
			/* the first n rows: a padded run's others repeat its images */
			correct += count_correct(logits, os.dims[1], labels, n);
		}
		if (ts != PRESSO_OK) {
#pragma omp critical(presso_eval_error)
			{
				if (first_error == PRESSO_OK) {
					first_error = ts;
					snprintf(error_msg, sizeof error_msg, "%s", status_msg());
				}
			}
		}
		runner_free(&r);
		free(labels);
	}
	double t1 = now_s();
	if (first_error != PRESSO_OK)
		return status_fail(first_error, "%s", error_msg);
	out->n_images = split->n;
	out->n_correct = correct;
	out->accuracy_pct = split->n ? 100.0 * (double)correct / (double)split->n : 0.0;
	out->seconds = t1 - t0;
	out->images_per_s = out->seconds > 0 ? (double)split->n / out->seconds : 0.0;
	return PRESSO_OK;
}

/* A runner for one run of `images` images (the model's fixed batch, if it has
 * one), filled with the first images of ds and run once; *f gets the feed. */
static enum presso_status prepared_runner(const struct eval_model *m, const struct dataset *ds,
					  const struct normalize *norm, int images,
					  struct feed *f, struct runner *r)
{
	enum presso_status s = feed_check(m->g, ds, f);
	if (s != PRESSO_OK)
		return s;
	images = feed_run_images(f, images);
	if ((s = runner_create(m, feed_engine_batch(f, images), r)) != PRESSO_OK)
		return s;
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)images);
	if (!idx) {
		runner_free(r);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < images; i++)
		idx[i] = i % ds->n;
	feed_batch(f, ds, norm, idx, images, runner_input(r), NULL);
	free(idx);
	if ((s = runner_run(r, feed_engine_batch(f, images))) != PRESSO_OK) /* warm-up */
		runner_free(r);
	return s;
}

enum presso_status eval_throughput(const struct eval_model *m, const struct dataset *ds,
				   const struct normalize *norm, int batch, double min_seconds,
				   double *images_per_s)
{
	*images_per_s = 0;
	struct runner r;
	struct feed f;
	if (batch < 1)
		batch = 1;
	enum presso_status s = prepared_runner(m, ds, norm, batch, &f, &r);
	if (s != PRESSO_OK)
		return s;
	/* a model with a fixed batch B takes the batch in ceil(batch / B) runs */
	const int per_run = feed_run_images(&f, batch);
	const int runs_per_batch = (batch + per_run - 1) / per_run;
	const int engine_batch = feed_engine_batch(&f, per_run);
	int64_t runs = 0;
	double t0 = now_s(), t = t0;
	do {
		for (int k = 0; k < runs_per_batch && s == PRESSO_OK; k++)
			s = runner_run(&r, engine_batch);
		if (s != PRESSO_OK)
			break;
		runs += runs_per_batch;
		t = now_s();
	} while (t - t0 < min_seconds || runs < 3);
	runner_free(&r);
	if (s != PRESSO_OK)
		return s;
	*images_per_s = (double)(runs * per_run) / (t - t0);
	return PRESSO_OK;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

enum presso_status eval_latency(const struct eval_model *m, const struct dataset *ds,
				const struct normalize *norm, int n_runs, double *latency_us)
{
	*latency_us = 0;
	if (n_runs < 1)
		n_runs = 1;
	struct runner r;
	struct feed f;
	enum presso_status s = prepared_runner(m, ds, norm, 1, &f, &r);
	if (s != PRESSO_OK)
		return s;
	double *t = malloc(sizeof(double) * (size_t)n_runs);
	if (!t) {
		runner_free(&r);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < n_runs && s == PRESSO_OK; i++) {
		double t0 = now_s();
		s = runner_run(&r, feed_engine_batch(&f, 1));
		t[i] = (now_s() - t0) * 1e6;
	}
	runner_free(&r);
	if (s == PRESSO_OK) {
		qsort(t, (size_t)n_runs, sizeof *t, cmp_double);
		*latency_us = n_runs % 2 ? t[n_runs / 2] : 0.5 * (t[n_runs / 2 - 1] + t[n_runs / 2]);
	}
	free(t);
	return s;
}
