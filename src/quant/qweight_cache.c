/* qweight_cache.c - the quantized-weight cache (qengine.h): a graph's layer
 * weights as rounded once per bit width, for the many qmodel_build() calls of a
 * search.
 *
 * One entry per weight value of the cache's graph and bit width (1 ..
 * QUANT_MAX_WEIGHT_BITS): the int8 codes [n_out][k] in the graph's weight order
 * and the n_out per-channel scales, owned by the cache. An entry is written
 * once and never changed: the first thread to store it wins and a later store
 * of the same entry is dropped. One lock guards the entries and the hit count.
 * A transformed copy of the graph finds an entry through the value of the same
 * name when its shape and data are unchanged (cache_slot).
 */
#include "quant/qengine.h"
#include "quant/qengine_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "quant/quant.h"

struct qweight_entry {
	int8_t *q;
	float *scale;
};

struct qweight_cache {
	const struct graph *g;
	struct qweight_entry *e;  /* [n_values][QUANT_MAX_WEIGHT_BITS] */
	int64_t hits;
	omp_lock_t lock;
};

enum presso_status qweight_cache_new(const struct graph *g, struct qweight_cache **out)
{
	struct qweight_cache *c = calloc(1, sizeof *c);
	if (c)
		c->e = calloc((size_t)g->n_values * QUANT_MAX_WEIGHT_BITS, sizeof *c->e);
	if (!c || !c->e) {
		free(c);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	c->g = g;
	omp_init_lock(&c->lock);
	*out = c;
	return PRESSO_OK;
}

void qweight_cache_free(struct qweight_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->g->n_values * QUANT_MAX_WEIGHT_BITS; i++) {
		free(c->e[i].q);
		free(c->e[i].scale);
	}
	omp_destroy_lock(&c->lock);
	free(c->e);
	free(c);
}

int64_t qweight_cache_hits(const struct qweight_cache *c)
{
	return c ? c->hits : 0;
}

/* The cache's value for weight value v of graph g: v itself for the cache's
 * graph; for a transformed copy, the value of the same name whose shape and
 * data are the same (a layer the transforms left alone), else -1. */
static int cache_slot(const struct qweight_cache *c, const struct graph *g, int v)
{
	if (c->g == g)
		return v;
	const struct value *x = &g->values[v];
	for (int i = 0; i < c->g->n_values; i++) {
		const struct value *y = &c->g->values[i];
		if (!y->data || strcmp(y->name, x->name) != 0)
			continue;
		bool same = x->data && y->shape.n_dims == x->shape.n_dims &&
			    memcmp(y->shape.dims, x->shape.dims, sizeof(int64_t) * (size_t)x->shape.n_dims) == 0 &&
			    memcmp(y->data, x->data, sizeof(float) * (size_t)shape_numel(&x->shape)) == 0;
		return same ? i : -1;
	}
	return -1;
}

bool qweight_cache_get(struct qweight_cache *c, const struct graph *g, int v, int bits, int64_t n,
		       int64_t n_out, int8_t *q, float *scale)
{
	if (!c || (v = cache_slot(c, g, v)) < 0)
		return false;
	omp_set_lock(&c->lock);
	const struct qweight_entry *e = &c->e[v * QUANT_MAX_WEIGHT_BITS + bits - 1];
	bool hit = e->q != NULL;
	if (hit) {
		memcpy(q, e->q, (size_t)n);
		memcpy(scale, e->scale, sizeof(float) * (size_t)n_out);
		c->hits++;
	}
	omp_unset_lock(&c->lock);
	return hit;
}

void qweight_cache_put(struct qweight_cache *c, const struct graph *g, int v, int bits, int64_t n,
		       int64_t n_out, const int8_t *q, const float *scale)
{
	if (!c || (v = cache_slot(c, g, v)) < 0)
		return;
	int8_t *cq = malloc((size_t)n);
	float *cs = malloc(sizeof(float) * (size_t)n_out);
	if (cq && cs) {
		memcpy(cq, q, (size_t)n);
		memcpy(cs, scale, sizeof(float) * (size_t)n_out);
	}
	omp_set_lock(&c->lock);
	struct qweight_entry *e = &c->e[v * QUANT_MAX_WEIGHT_BITS + bits - 1];
	if (!e->q && cq && cs) {
		e->q = cq;
		e->scale = cs;
		cq = NULL;
		cs = NULL;
	}
	omp_unset_lock(&c->lock);
	free(cq); /* out of memory, or another thread was first: nothing cached */
	free(cs);
}
