/* feed.c - checks that a graph takes a dataset's images, and fills its runs
 * (see feed.h). */
#include "data/feed.h"

#include <stdio.h>

int feed_fixed_batch(const struct graph *g)
{
	if (g->n_inputs < 1)
		return 0;
	const struct value *in = &g->values[g->inputs[0]];
	if (in->batched || in->shape.n_dims < 1 || in->shape.dims[0] < 1)
		return 0;
	/* a dimension of a loaded graph's shape fits in an int (graph.h) */
	return (int)in->shape.dims[0];
}

enum presso_status feed_check(const struct graph *g, const struct dataset *ds, struct feed *f)
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
	f->fixed_batch = feed_fixed_batch(g);
	if (s->n_dims == 4 && s->dims[1] == ds->c && s->dims[2] == ds->h && s->dims[3] == ds->w)
		f->layout = LAYOUT_NCHW;
	else if (s->n_dims == 4 && s->dims[1] == ds->h && s->dims[2] == ds->w && s->dims[3] == ds->c)
		f->layout = LAYOUT_NHWC;
	else if (s->n_dims == 3 && ds->c == 1 && s->dims[1] == ds->h && s->dims[2] == ds->w)
		f->layout = LAYOUT_NCHW; /* [N,H,W]: one channel, the same bytes as NCHW */
	else if (s->n_dims == 2 && s->dims[1] == (int64_t)ds->c * ds->h * ds->w)
		f->layout = LAYOUT_FLAT;
	else
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model input '%s' is %s but the dataset's images are %s (or NHWC, or flattened)",
				   in->name, have, want);
	const struct value *out = &g->values[g->outputs[0]];
	shape_format(&out->shape, out->batched, have, sizeof have);
	if (out->shape.n_dims != 2)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model output '%s' is %s; expected [N,%d] class scores", out->name,
				   have, ds->n_classes);
	if (f->fixed_batch && out->shape.dims[0] != f->fixed_batch)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "model input '%s' has a fixed batch of %d but output '%s' is %s; "
				   "expected [%d,classes]",
				   in->name, f->fixed_batch, out->name, have, f->fixed_batch);
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

bool feed_input_image(const struct graph *g, int *c, int *h, int *w)
{
	if (g->n_inputs < 1)
		return false;
	const struct shape *s = &g->values[g->inputs[0]].shape;
	/* dimensions of a loaded graph fit in an int (graph.h) */
	if (s->n_dims == 4 && s->dims[1] >= 1 && s->dims[1] <= DATASET_MAX_CHANNELS) {
		*c = (int)s->dims[1], *h = (int)s->dims[2], *w = (int)s->dims[3];
		return true;
	}
	if (s->n_dims == 4 && s->dims[3] >= 1 && s->dims[3] <= DATASET_MAX_CHANNELS) {
		*h = (int)s->dims[1], *w = (int)s->dims[2], *c = (int)s->dims[3];
		return true;
	}
	if (s->n_dims == 3) {
		*c = 1, *h = (int)s->dims[1], *w = (int)s->dims[2];
		return true;
	}
	return false;
}

int feed_run_images(const struct feed *f, int batch)
{
	return f->fixed_batch ? f->fixed_batch : batch;
}

int feed_engine_batch(const struct feed *f, int n)
{
	return f->fixed_batch ? 1 : n;
}

void feed_batch(const struct feed *f, const struct dataset *ds, const struct normalize *norm,
		const int64_t *indices, int n, float *x, int32_t *y)
{
	bool nhwc = f->layout == LAYOUT_NHWC;
	PRESSO_CHECK(n >= 1 && (!f->fixed_batch || n <= f->fixed_batch));
	dataset_get_batch(ds, norm, indices, n, nhwc, x, y);
	const int64_t image = (int64_t)ds->c * ds->h * ds->w;
	/* pad a short run: each slot again from the images of this run, in order */
	for (int i = n; i < f->fixed_batch;) {
		int k = f->fixed_batch - i < n ? f->fixed_batch - i : n;
		dataset_get_batch(ds, norm, indices, k, nhwc, x + (int64_t)i * image, NULL);
		i += k;
	}
}

int64_t feed_stats_images(const struct feed *f, int64_t n)
{
	if (!f->fixed_batch || n < f->fixed_batch)
		return n;
	return n - n % f->fixed_batch;
}
