/* evaluate.h - turning a model into metrics: top-1 accuracy on a split, throughput.
 *
 * The dataset's images are fed in the model's input layout (NCHW, NHWC, or
 * flattened [N, C*H*W]), decided from the graph's input shape. Batches are
 * spread over `threads` OpenMP threads, one engine per thread sharing the graph;
 * kernels stay single-threaded inside a worker.
 */
#ifndef PRESSO_EVALUATE_H
#define PRESSO_EVALUATE_H

#include <stdint.h>

#include "dataset.h"
#include "graph.h"

struct eval_result {
	int64_t n_images;
	int64_t n_correct;
	double accuracy_pct;  /* 100 * n_correct / n_images */
	double seconds;       /* wall time of the inference loop */
	double images_per_s;
};

enum input_layout { LAYOUT_NCHW, LAYOUT_NHWC, LAYOUT_FLAT };

/* Checks that the graph takes the dataset's images and gives one score per class;
 * writes the input layout. Errors name both shapes. */
enum presso_status eval_check_model(const struct graph *g, const struct dataset *ds,
				    enum input_layout *layout);

/* Top-1 accuracy of the FP32 graph on the images of split. */
enum presso_status eval_accuracy(const struct graph *g, const struct dataset *ds,
				 const struct normalize *norm, const struct split *split,
				 int batch, int threads, struct eval_result *out);

/* Images per second of the FP32 graph at one batch size on one thread, over at
 * least min_seconds (inputs drawn from ds). */
enum presso_status eval_throughput(const struct graph *g, const struct dataset *ds,
				   const struct normalize *norm, int batch, double min_seconds,
				   double *images_per_s);

#endif
