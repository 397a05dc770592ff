/* feed.h - how a dataset's images are fed to a graph: the input layout the
 * graph's input shape asks for (NCHW, NHWC, [N,H,W] for one channel, or
 * flattened [N, C*H*W]), the model's batch, and the checks that the graph gives
 * one score per class.
 *
 * Fixed batch. A model exported with a fixed batch dimension (the ONNX model
 * zoo's mnist-8 takes [1,1,28,28] and reshapes to [1,256]) runs exactly B images
 * per engine run, whatever batch its caller wants. The callers that form batches
 * (evaluators/evaluate.c, calibration, Hessians, repair, the latency table) ask
 * this module instead of using their own batch:
 *   - feed_run_images(): the images one run holds (B, or the caller's batch);
 *   - feed_engine_batch(): the batch to plan and run the engine with (1 for a
 *     fixed batch: its shapes are fixed at B images; else the images);
 *   - feed_batch(): fills one run, repeating its images cyclically up to B when
 *     fewer are left (the outputs past them are ignored);
 *   - feed_stats_images(): how many images of a statistics pass to use: a
 *     multiple of B, so that no image is counted twice.
 * With a dynamic batch every helper is the identity, so results are unchanged.
 */
#ifndef PRESSO_FEED_H
#define PRESSO_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "model/graph.h"

enum input_layout { LAYOUT_NCHW, LAYOUT_NHWC, LAYOUT_FLAT };

/* How a dataset's images go into a graph's one input. */
struct feed {
	enum input_layout layout;
	int fixed_batch; /* the input's fixed batch B, or 0 when its batch is dynamic */
};

/* Checks that the graph takes the dataset's images and gives one score per class;
 * fills *f. Errors name both shapes; a label past the model's classes is named by
 * its file, index and value. */
enum presso_status feed_check(const struct graph *g, const struct dataset *ds, struct feed *f);

/* The fixed batch B of g's first input (1 for a model exported at batch 1 whose
 * graph does not run at batch 2), or 0 when its batch is dynamic or g has no
 * input. */
int feed_fixed_batch(const struct graph *g);

/* The image g's first input takes: channels, height and width from a
 * [N,C,H,W] input with C in 1..DATASET_MAX_CHANNELS, else [N,H,W,C] with C in
 * that range, or [N,H,W] (one channel). False for any other input (a
 * flattened [N,D] one). */
bool feed_input_image(const struct graph *g, int *c, int *h, int *w);

/* Images one engine run holds when the caller wants `batch` per run. */
int feed_run_images(const struct feed *f, int batch);

/* The batch to create an engine with and to run it at for a run of n images. */
int feed_engine_batch(const struct feed *f, int n);

/* Writes images indices[0..n-1] (n <= feed_run_images()) into x in the feed's
 * layout, and their n labels into y (may be NULL). With a fixed batch B > n the
 * slots n..B-1 repeat indices[0..n-1] cyclically. Never allocates. */
void feed_batch(const struct feed *f, const struct dataset *ds, const struct normalize *norm,
		const int64_t *indices, int n, float *x, int32_t *y);

/* The images of a statistics pass over n to use: n with a dynamic batch; with a
 * fixed batch B the largest multiple of B not above n, or n when n < B (one run,
 * padded by feed_batch()). */
int64_t feed_stats_images(const struct feed *f, int64_t n);

#endif
