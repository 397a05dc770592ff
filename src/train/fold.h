/* fold.h - BatchNormalization folded back after training.
 *
 * A model with BatchNorm is trained unfolded (each BatchNorm its own node,
 * graph_load_opts.keep_batchnorm) and deployed folded: train_fold_into()
 * copies the folded graph the importer made of the same model (its template:
 * same nodes, names and layer order, BatchNorm already folded) and fills it
 * with the trained weights: a Conv/Gemm that a BatchNorm follows gets
 *   w' = w s,  b' = (b - mean) s + beta,  s = gamma / sqrt(var + eps)
 * per output channel, computed in double as the importer folds; every other
 * float constant is copied from the trained graph's value of the same name.
 */
#ifndef PRESSO_TRAIN_FOLD_H
#define PRESSO_TRAIN_FOLD_H

#include "model/graph.h"

/* *out = template with trained's weights, BatchNorm folded. Fails
 * (PRESSO_E_UNSUPPORTED) naming the node when the two graphs do not match.
 * The caller frees *out with graph_free(). */
enum presso_status train_fold_into(const struct graph *folded_template,
				   const struct graph *trained, struct graph **out);

#endif
