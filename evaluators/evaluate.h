/* evaluate.h - turning a model into metrics: top-1 accuracy on a split,
 * throughput and batch-1 latency, for the FP32 graph or a quantized model.
 *
 * The dataset's images are fed in the model's input layout (feed.h). Batches
 * are spread over `threads` OpenMP threads, one engine per thread sharing the
 * read-only model; kernels stay single-threaded inside a worker. Correct counts
 * are summed at the end, so results do not depend on the number of threads.
 * A model with a fixed batch B runs B images per run whatever `batch` says
 * (feed.h): a short last run is padded and its extra outputs not counted.
 */
#ifndef PRESSO_EVALUATE_H
#define PRESSO_EVALUATE_H

#include <stdint.h>

#include "data/dataset.h"
#include "data/feed.h"
#include "model/graph.h"
#include "quant/qengine.h"

struct eval_result {
	int64_t n_images;
	int64_t n_correct;
	double accuracy_pct;  /* 100 * n_correct / n_images */
	double seconds;       /* wall time of the inference loop: from the moment
				 every thread has its engine prepared to the end */
	double images_per_s;
};

/* What to run: the FP32 graph (q == NULL) or the quantized model q of it. */
struct eval_model {
	const struct graph *g;
	const struct qmodel *q;
};

/* Top-1 accuracy on the images of split. */
enum presso_status eval_accuracy(const struct eval_model *m, const struct dataset *ds,
				 const struct normalize *norm, const struct split *split,
				 int batch, int threads, struct eval_result *out);

/* Images per second at one batch size on one thread, over at least min_seconds
 * (inputs drawn from ds). A model with a fixed batch B takes a batch in
 * ceil(batch / B) runs of B images. */
enum presso_status eval_throughput(const struct eval_model *m, const struct dataset *ds,
				   const struct normalize *norm, int batch, double min_seconds,
				   double *images_per_s);

/* Batch-1 latency on one thread: the median of n_runs runs (after a warm-up).
 * For a model with a fixed batch B > 1 a run holds B images. */
enum presso_status eval_latency(const struct eval_model *m, const struct dataset *ds,
				const struct normalize *norm, int n_runs, double *latency_us);

#endif
