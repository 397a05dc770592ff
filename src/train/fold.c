/* fold.c - trained weights folded into the importer's folded graph (fold.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/fold.h"

#include <math.h>
#include <string.h>

#include "transform/transform.h"

static int node_named(const struct graph *g, const char *name)
{
	for (int i = 0; i < g->n_nodes; i++)
		if (strcmp(g->nodes[i].name, name) == 0)
			return i;
	return -1;
}

/* The BatchNorm that is node i's only reader, or -1. */
static int bn_after(const struct graph *g, int i)
{
	int y = g->nodes[i].output;
	if (g->values[y].n_consumers != 1)
		return -1;
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *n = &g->nodes[j];
		if (n->op == OP_BATCHNORM && n->inputs[0] == y)
			return j;
	}
	return -1;
}

static bool same_shape(const struct value *a, const struct value *b)
{
	return shape_numel(&a->shape) == shape_numel(&b->shape);
}

static enum presso_status mismatch(const char *what)
{
	return status_fail(PRESSO_E_UNSUPPORTED,
			   "%s: the trained graph does not match the folded model", what);
}

/* Folds trained node ti (and its BatchNorm bi) into template node fi. */
static enum presso_status fold_layer(struct graph *f, int fi, const struct graph *t, int ti,
				     int bi)
{
	struct node *fn = &f->nodes[fi];
	const struct node *tn = &t->nodes[ti], *bn = &t->nodes[bi];
	if (fn->n_inputs < 3 || fn->inputs[2] < 0 || !f->values[fn->inputs[1]].data ||
	    !f->values[fn->inputs[2]].data)
		return mismatch(fn->name);
	struct value *fw = &f->values[fn->inputs[1]], *fb = &f->values[fn->inputs[2]];
	const struct value *tw = &t->values[tn->inputs[1]];
	const float *tb = tn->n_inputs > 2 && tn->inputs[2] >= 0 ? t->values[tn->inputs[2]].data : NULL;
	int64_t ntb = tb ? shape_numel(&t->values[tn->inputs[2]].shape) : 0;
	const float *gamma = t->values[bn->inputs[1]].data, *beta = t->values[bn->inputs[2]].data;
	const float *mean = t->values[bn->inputs[3]].data, *var = t->values[bn->inputs[4]].data;
	int64_t c = shape_numel(&t->values[bn->inputs[1]].shape), nw = shape_numel(&tw->shape);
	if (!same_shape(fw, tw) || shape_numel(&fb->shape) != c || !gamma || !beta || !mean || !var)
		return mismatch(fn->name);
	bool gemm = tn->op == OP_GEMM;
	float alpha = gemm ? tn->a.alpha : 1.0f, beta_c = gemm ? tn->a.beta : 1.0f;
	for (int64_t j = 0; j < c; j++) {
		/* the importer's fold, in double */
		double s = (double)gamma[j] / sqrt((double)var[j] + (double)bn->a.epsilon);
		double b0 = tb ? (double)beta_c * tb[ntb == 1 ? 0 : j] : 0.0;
		fb->data[j] = (float)((b0 - mean[j]) * s + beta[j]);
		if (!gemm || tn->a.trans_b) {
			int64_t per = nw / c;
			for (int64_t k = 0; k < per; k++)
				fw->data[j * per + k] = (float)(tw->data[j * per + k] * alpha * s);
		} else {
			int64_t rows = tw->shape.dims[0];
			for (int64_t k = 0; k < rows; k++)
				fw->data[k * c + j] = (float)(tw->data[k * c + j] * alpha * s);
		}
	}
	return PRESSO_OK;
}

enum presso_status train_fold_into(const struct graph *tmpl, const struct graph *trained,
				   struct graph **out)
{
	*out = NULL;
	struct graph *f;
	enum presso_status s = graph_clone(tmpl, &f);
	if (s != PRESSO_OK)
		return s;
	/* every float constant by name (weights of unfolded layers, Add operands) */
	for (int v = 0; v < f->n_values; v++) {
		struct value *fv = &f->values[v];
		if (!fv->data)
			continue;
		int tv = graph_find_value(trained, fv->name);
		if (tv >= 0 && trained->values[tv].data && same_shape(fv, &trained->values[tv]))
			memcpy(fv->data, trained->values[tv].data,
			       sizeof(float) * (size_t)shape_numel(&fv->shape));
	}
	/* then the layers a BatchNorm follows in the trained graph */
	for (int fi = 0; fi < f->n_nodes; fi++) {
		const struct node *fn = &f->nodes[fi];
		if (fn->op != OP_CONV && fn->op != OP_GEMM)
			continue;
		int ti = node_named(trained, fn->name);
		if (ti < 0 || trained->nodes[ti].op != fn->op) {
			graph_free(f);
			return mismatch(fn->name);
		}
		int bi = bn_after(trained, ti);
		if (bi < 0 || bn_after(f, fi) >= 0) /* no BatchNorm, or one the template kept */
			continue;
		if ((s = fold_layer(f, fi, trained, ti, bi)) != PRESSO_OK) {
			graph_free(f);
			return s;
		}
	}
	*out = f;
	return PRESSO_OK;
}
