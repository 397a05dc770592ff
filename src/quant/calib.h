/* calib.h - activation calibration: statistics of every activation tensor of the
 * FP32 graph on the calibration split, and the clipping ranges derived from them.
 *
 * Two passes of the FP32 engine over the split: the first records each tensor's
 * min, max and per-channel mean (channel = dimension 1); the second a histogram of
 * CALIB_BINS bins over [min, max]. A range for a given method and bit width is
 * derived from these without touching the data again:
 *   minmax:     [min, max];
 *   percentile: [P(100-p), P(p)] of the histogram (p = 99.99 by default);
 *   mse:        [t*min, t*max] for the t in (0, 1] that minimises the expected
 *               squared quantization error over the histogram at that bit width.
 * The per-channel means feed bias correction.
 */
#ifndef PRESSO_CALIB_H
#define PRESSO_CALIB_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "model/graph.h"

#define CALIB_BINS 2048

enum calib_method { CALIB_MINMAX, CALIB_PERCENTILE, CALIB_MSE, CALIB_METHOD_COUNT };

struct calib_stats {
	bool seen;
	float min, max;
	int64_t count;      /* values seen per pass */
	double *hist;       /* [CALIB_BINS] over [min, max] */
	int n_channels;
	double *ch_mean;    /* [n_channels] mean of each channel (dimension 1) */
};

struct calib {
	int n_values;
	struct calib_stats *v; /* [n_values], indexed like graph.values */
	int64_t n_images;
};

/* Runs the FP32 graph over the images of split (two passes) and gathers the
 * statistics; a model with a fixed batch B runs B images at a time, over the
 * largest multiple of B of them (feed.h). The caller frees *out with
 * calib_free(). */
enum presso_status calib_run(const struct graph *g, const struct dataset *ds,
			     const struct normalize *norm, const struct split *split, int batch,
			     struct calib **out);

void calib_free(struct calib *c);

/* Empty statistics for the values of g, to fill with calib_observe_all(). */
enum presso_status calib_new(const struct graph *g, struct calib **out);

/* Both passes at once over one batch holding every calibration image (the
 * statistics calib_run() would gather from the same images in one batch). */
void calib_observe_all(struct calib *c, int v, const float *data, const struct shape *shape);

/* The clipping range of value v for a method and activation bit width. */
void calib_range(const struct calib *c, int v, enum calib_method method, double percentile,
		 int bits, float *lo, float *hi);

const char *calib_method_name(enum calib_method m);

#endif
