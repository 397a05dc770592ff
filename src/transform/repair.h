/* repair.h - statistics repair after pruning and low-rank.
 *
 * Pruning a layer or factorising it shifts the mean and shrinks the variance of
 * its output channels, and every layer after it sees inputs it was not trained
 * on. Repair re-estimates, on a set of calibration images, each changed layer's
 * per-channel output mean m' and standard deviation s' (before its activation)
 * and rescales the channel to the original layer's m and s on the same images:
 *     y <- a (y - m') + m,   a = min(s / s', 4)   (a = 1 when s' is ~0),
 * folded into the layer's weights (row c times a) and bias (a b + m - a m'). The
 * layers are repaired in graph order in one pass: the whole image set runs
 * through the graph node by node, and each changed layer's output is corrected
 * before the next node reads it, so later layers are measured on repaired
 * inputs. This is the recomputation of BatchNorm statistics after compression,
 * without training. A model with a fixed batch B (feed.h) cannot take the set
 * in one run: its largest multiple of B images run B at a time, one pass per
 * repaired layer (the layers before it corrected, its moments summed over the
 * runs: the same a and b as one run gives), and the repaired graph, folded, is
 * then calibrated with calib_run().
 */
#ifndef PRESSO_REPAIR_H
#define PRESSO_REPAIR_H

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/graph.h"
#include "transform/transform.h"

/* Per-channel output statistics of every layer of a graph (graph_layers()
 * order), measured before the layer's activation. */
struct layer_stats {
	int n_layers;
	int64_t *n_channels;    /* [n_layers] */
	double **mean, **std;   /* [n_layers][n_channels] */
};

/* Runs g over the images of split (one batch) and measures every layer. */
enum presso_status repair_measure(const struct graph *g, const struct dataset *ds,
				  const struct normalize *norm, const struct split *split,
				  struct layer_stats **out);

void layer_stats_free(struct layer_stats *s);

struct repair_report {
	int n_layers;           /* layers repaired */
	double mean_abs_shift;  /* mean over their channels of |m - m'| / s */
	double mean_scale;      /* mean over their channels of a */
};

/* Repairs the transformed graph tr->g in place against the original graph's
 * statistics `target` (measured on the same images; NULL: no repair), and
 * calibrates the result in the same pass: *cal gets the activation statistics of
 * every value of tr->g on those images (calib_observe_all()). */
enum presso_status repair_run(struct transform_result *tr, const struct layer_stats *target,
			      const struct dataset *ds, const struct normalize *norm,
			      const struct split *split, struct repair_report *rep,
			      struct calib **cal);

#endif
