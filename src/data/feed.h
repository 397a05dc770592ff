/* feed.h - how a dataset's images are fed to a graph: the input layout the
 * graph's input shape asks for (NCHW, NHWC, or flattened [N, C*H*W]) and the
 * checks that the graph gives one score per class. */
#ifndef PRESSO_FEED_H
#define PRESSO_FEED_H

#include "data/dataset.h"
#include "model/graph.h"

enum input_layout { LAYOUT_NCHW, LAYOUT_NHWC, LAYOUT_FLAT };

/* Checks that the graph takes the dataset's images and gives one score per class;
 * writes the input layout. Errors name both shapes; a label past the model's
 * classes is named by its file, index and value. */
enum presso_status feed_check(const struct graph *g, const struct dataset *ds,
			      enum input_layout *layout);

#endif
