/* feed.c - checks that a graph takes a dataset's images (see feed.h). */
#include "data/feed.h"

#include <stdio.h>

enum presso_status feed_check(const struct graph *g, const struct dataset *ds,
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
	shape_format(&out->shape, out->batched, have, sizeof have);
	if (out->shape.n_dims != 2)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model output '%s' is %s; expected [N,%d] class scores", out->name,
				   have, ds->n_classes);
	int64_t classes = out->shape.dims[1];
	if (classes < ds->n_classes && (!ds->labels || ds->n < 1))
		return status_fail(PRESSO_E_FORMAT,
				   "the dataset has %d classes, but model output '%s' is %s: %lld classes",
				   ds->n_classes, out->name, have, (long long)classes);
	if (classes < ds->n_classes) {
		/* the output has the right form: a label is what does not fit it */
		int64_t i = 0;
		while (i < ds->n - 1 && ds->labels[i] < classes)
			i++;
		return status_fail(PRESSO_E_FORMAT,
				   "%s: label %lld is %d, but model output '%s' is %s: %lld classes, "
				   "so labels must be 0..%lld",
				   ds->labels_path ? ds->labels_path : "the dataset's labels",
				   (long long)i, ds->labels[i], out->name, have, (long long)classes,
				   (long long)classes - 1);
	}
	return PRESSO_OK;
}
