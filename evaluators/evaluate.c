/* evaluate.c - FP32 accuracy and throughput of a graph on a dataset split.
 * See evaluate.h. Each OpenMP thread owns one engine and one input batch; the
 * correct counts are summed at the end, so the result does not depend on the
 * number of threads. */
#define _POSIX_C_SOURCE 200809L
#include "evaluators/evaluate.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum presso_status eval_check_model(const struct graph *g, const struct dataset *ds,
				    enum input_layout *layout)
{
	char want[64], have[64];
	if (g->n_inputs != 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "the model has %d inputs; image classification needs exactly one",
				   g->n_inputs);
	const struct value *in = &g->values[g->inputs[0]];
	const struct shape *s = &in->shape;
	snprintf(want, sizeof want, "[N,%d,%d,%d]", ds->c, ds->h, ds->w);
	shape_format(s, in->batched, have, sizeof have);
	if (s->n_dims == 4 && s->dims[1] == ds->c && s->dims[2] == ds->h && s->dims[3] == ds->w)
		*layout = LAYOUT_NCHW;
	else if (s->n_dims == 4 && s->dims[1] == ds->h && s->dims[2] == ds->w && s->dims[3] == ds->c)
		*layout = LAYOUT_NHWC;
	else if (s->n_dims == 2 && s->dims[1] == (int64_t)ds->c * ds->h * ds->w)
		*layout = LAYOUT_FLAT;
	else
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model input '%s' is %s but the dataset's images are %s (or NHWC, or flattened)",
				   in->name, have, want);
	if (!in->batched)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model input '%s' has a fixed batch of %lld; export it with a dynamic batch dimension",
				   in->name, (long long)s->dims[0]);
	const struct value *out = &g->values[g->outputs[0]];
	if (out->shape.n_dims != 2 || out->shape.dims[1] < ds->n_classes) {
		shape_format(&out->shape, out->batched, have, sizeof have);
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model output '%s' is %s; expected [N,%d] class scores", out->name,
				   have, ds->n_classes);
	}
	return PRESSO_OK;
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

enum presso_status eval_accuracy(const struct graph *g, const struct dataset *ds,
				 const struct normalize *norm, const struct split *split,
				 int batch, int threads, struct eval_result *out)
{
	memset(out, 0, sizeof *out);
	enum input_layout layout;
	enum presso_status s = eval_check_model(g, ds, &layout);
	if (s != PRESSO_OK)
		return s;
	if (batch < 1)
		batch = 1;
	if (threads < 1)
		threads = 1;
	int64_t n_batches = (split->n + batch - 1) / batch;
	if (threads > n_batches)
		threads = n_batches > 0 ? (int)n_batches : 1;
	int64_t correct = 0;
	enum presso_status first_error = PRESSO_OK;
	char error_msg[1024] = "";
	double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : correct)
	{
		struct engine *e = NULL;
		int32_t *labels = malloc(sizeof(int32_t) * (size_t)batch);
		enum presso_status ts = engine_create(g, batch, &e);
		if (ts == PRESSO_OK && !labels)
			ts = status_fail(PRESSO_E_NOMEM, "out of memory");
#pragma omp for schedule(dynamic, 1)
		for (int64_t b = 0; b < n_batches; b++) {
			if (ts != PRESSO_OK)
				continue;
			int64_t start = b * batch;
			int n = (int)(split->n - start < batch ? split->n - start : batch);
			dataset_get_batch(ds, norm, split->indices + start, n, layout == LAYOUT_NHWC,
					  engine_input(e, 0), labels);
			ts = engine_run(e, n);
			if (ts != PRESSO_OK)
				continue;
			struct shape os;
			const float *logits = engine_output(e, 0, &os);
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
		engine_free(e);
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

enum presso_status eval_throughput(const struct graph *g, const struct dataset *ds,
				   const struct normalize *norm, int batch, double min_seconds,
				   double *images_per_s)
{
	*images_per_s = 0;
	enum input_layout layout;
	enum presso_status s = eval_check_model(g, ds, &layout);
	if (s != PRESSO_OK)
		return s;
	struct engine *e;
	if ((s = engine_create(g, batch, &e)) != PRESSO_OK)
		return s;
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
	if (!idx) {
		engine_free(e);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < batch; i++)
		idx[i] = i % ds->n;
	dataset_get_batch(ds, norm, idx, batch, layout == LAYOUT_NHWC, engine_input(e, 0), NULL);
	free(idx);
	(void)engine_run(e, batch); /* warm-up */
	int64_t runs = 0;
	double t0 = now_s(), t = t0;
	do {
		if ((s = engine_run(e, batch)) != PRESSO_OK)
			break;
		runs++;
		t = now_s();
	} while (t - t0 < min_seconds || runs < 3);
	engine_free(e);
	if (s != PRESSO_OK)
		return s;
	*images_per_s = (double)(runs * batch) / (t - t0);
	return PRESSO_OK;
}
