/* hessian.h - second moments of every layer's input, for data-aware weight
 * rounding (gptq.h).
 *
 * A layer computes y = W x over input vectors x of length k: for a Conv, the
 * patch under one output pixel in the weight's order [c_in/group][kh][kw]
 * (zeros where the window leaves the input); for a Gemm or MatMul, one input
 * row. The squared output error of a weight error dW is dW H dW^T with
 * H = E[x x^T] (k x k). A grouped conv has one H per group (a depthwise conv one
 * kh*kw square per channel).
 *
 * One FP32 pass over a set of calibration images, HESSIAN_BATCH at a time,
 * fills them: at most HESSIAN_MAX_ROWS input vectors per layer (each batch its
 * share), picked by a fixed pseudo-random sequence over images and output
 * positions, so the cost does not grow with the image count. Layers whose k exceeds HESSIAN_MAX_K (H would take more than
 * about 10 MB) and Gemms reading a transposed A get none.
 */
#ifndef PRESSO_HESSIAN_H
#define PRESSO_HESSIAN_H

#include <stdint.h>

#include "data/dataset.h"
#include "model/graph.h"
#include "base/status.h"

#define HESSIAN_MAX_K 1152
#define HESSIAN_MAX_ROWS 16384
#define HESSIAN_BATCH 32

struct layer_hessian {
	int node;         /* graph node of the layer */
	int64_t k;        /* input vector length (per group) */
	int n_blocks;     /* groups; block b serves output rows [b, b+1) * n_out / n_blocks */
	double *h;        /* [n_blocks][k][k], symmetric; NULL when the layer has none */
	int64_t rows;     /* input vectors averaged */
};

struct hessians {
	const struct graph *g;
	int n_layers;
	struct layer_hessian *l; /* graph_layers() order */
};

/* Runs g (FP32) over the images of split in one batch and measures every
 * layer's H. The caller frees *out with hessians_free(). */
enum presso_status hessians_run(const struct graph *g, const struct dataset *ds,
				const struct normalize *norm, const struct split *split,
				struct hessians **out);

void hessians_free(struct hessians *h);

/* The H of graph g's node for a layer whose weights are [n_out][k]: the entry
 * of the same node when h was measured on g; for another graph (a transformed
 * copy), the entry of the node with the same name if its k and groups still
 * match. NULL when there is none. */
const struct layer_hessian *hessians_of(const struct hessians *h, const struct graph *g, int node,
					int64_t k, int n_blocks);

#endif
