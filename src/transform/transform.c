/* transform.c - pruning and low-rank factorisation on a copy of the graph (see
 * transform.h for what each transform does and refuses).
 *
 * The copy keeps the original's node and value indices through pruning (weights
 * shrink in place); low-rank then rebuilds the node list with the first factor
 * of each factorised layer inserted before the second. At the end producers,
 * consumer counts and the batch-1 shapes of activations are recomputed, and the
 * new graph's layers are matched to the original ones through a per-node origin.
 */
#define _POSIX_C_SOURCE 200809L
#include "transform/transform.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "quant/quant.h"

/* --- graph copy ----------------------------------------------------------- */

static void *dup_mem(const void *p, size_t bytes)
{
	if (!p)
		return NULL;
	void *q = malloc(bytes ? bytes : 1);
	if (q)
		memcpy(q, p, bytes);
	return q;
}

enum presso_status graph_clone(const struct graph *g, struct graph **out)
{
	*out = NULL;
	struct graph *c = calloc(1, sizeof *c);
	if (!c)
		return status_fail(PRESSO_E_NOMEM, "out of memory copying the graph");
	*c = *g;
	c->values = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->values);
	c->nodes = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->nodes);
	c->inputs = dup_mem(g->inputs, sizeof(int) * (size_t)g->n_inputs);
	c->outputs = dup_mem(g->outputs, sizeof(int) * (size_t)g->n_outputs);
	c->producer = g->producer ? strdup(g->producer) : NULL;
	bool ok = c->values && c->nodes && (c->inputs || !g->n_inputs) &&
		  (c->outputs || !g->n_outputs) && (c->producer || !g->producer);
	for (int v = 0; ok && v < g->n_values; v++) {
		const struct value *s = &g->values[v];
		struct value *d = &c->values[v];
		*d = *s;
		size_t n = (size_t)shape_numel(&s->shape);
		d->name = strdup(s->name);
		d->data = dup_mem(s->data, sizeof(float) * n);
		d->idata = dup_mem(s->idata, sizeof(int64_t) * n);
		ok = d->name && (d->data || !s->data) && (d->idata || !s->idata);
	}
	for (int i = 0; ok && i < g->n_nodes; i++) {
		c->nodes[i] = g->nodes[i];
		c->nodes[i].name = strdup(g->nodes[i].name);
		ok = c->nodes[i].name != NULL;
	}
	if (!ok) {
		if (!c->values || !c->nodes) {
			free(c->values);
			free(c->nodes);
			free(c->inputs);
			free(c->outputs);
			free(c->producer);
			free(c);
		} else {
			graph_free(c);
		}
		return status_fail(PRESSO_E_NOMEM, "out of memory copying the graph");
	}
	*out = c;
	return PRESSO_OK;
}

/* Recomputes producers, consumer counts and the batch-1 shapes of activations. */
static enum presso_status graph_refresh(struct graph *g)
{
	for (int v = 0; v < g->n_values; v++) {
		g->values[v].producer = -1;
		g->values[v].n_consumers = 0;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		g->values[g->nodes[i].output].producer = i;
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (g->nodes[i].inputs[k] >= 0)
				g->values[g->nodes[i].inputs[k]].n_consumers++;
	}
	struct shape *shapes = malloc(sizeof *shapes * (size_t)g->n_values);
	if (!shapes)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status s = graph_infer_shapes(g, 1, shapes);
	for (int v = 0; s == PRESSO_OK && v < g->n_values; v++)
		if (!value_is_const(&g->values[v]))
			g->values[v].shape = shapes[v];
	free(shapes);
	return s;
}

/* --- cost ----------------------------------------------------------------- */

static void count_coding(const float *w, int64_t n, int64_t *nnz, int64_t *entries)
{
	int64_t run = 0;
	*nnz = *entries = 0;
	for (int64_t i = 0; i < n; i++) {
		if (w[i] == 0.0f) {
			if (++run == WCODE_MAX_RUN + 1) {
				++*entries;
				run = 0;
			}
			continue;
		}
		++*nnz;
		++*entries;
		run = 0;
	}
}

void transform_cost(const struct graph *g, struct graph_cost *out)
{
	memset(out, 0, sizeof *out);
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	out->macs = macs;
	out->bops = (double)macs * 32 * 32;
	bool *is_weight = calloc((size_t)g->n_values, sizeof *is_weight);
	struct layer *layers = NULL;
	int n_layers = 0;
	if (is_weight && graph_layers(g, &layers, &n_layers) == PRESSO_OK)
		for (int i = 0; i < n_layers; i++)
			is_weight[g->nodes[layers[i].node].inputs[1]] = true;
	free(layers);
	for (int v = 0; v < g->n_values; v++) {
		const struct value *val = &g->values[v];
		if (!val->data || val->n_consumers == 0)
			continue;
		int64_t n = shape_numel(&val->shape), nnz, entries;
		count_coding(val->data, n, &nnz, &entries);
		out->params += nnz;
		if (is_weight && is_weight[v])
			out->size_bytes += quant_coding_from_counts(n, nnz, entries, 32).bytes;
		else
			out->size_bytes += 4 * n;
	}
	free(is_weight);
}

/* --- tensors -------------------------------------------------------------- */

/* Keeps the indices keep[0..n_keep) along axis of a constant value. */
static enum presso_status keep_along(struct value *v, int axis, const int64_t *keep,
				     int64_t n_keep)
{
	const struct shape *s = &v->shape;
	int64_t outer = 1, inner = 1, len = s->dims[axis];
	for (int d = 0; d < axis; d++)
		outer *= s->dims[d];
	for (int d = axis + 1; d < s->n_dims; d++)
		inner *= s->dims[d];
	float *nd = malloc(sizeof(float) * (size_t)(outer * n_keep * inner + 1));
	if (!nd)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < n_keep; j++)
			memcpy(nd + (o * n_keep + j) * inner, v->data + (o * len + keep[j]) * inner,
			       sizeof(float) * (size_t)inner);
	free(v->data);
	v->data = nd;
	v->shape.dims[axis] = n_keep;
	return PRESSO_OK;
}

static const struct value *opt_input(const struct graph *g, const struct node *n, int k)
{
	return k < n->n_inputs && n->inputs[k] >= 0 ? &g->values[n->inputs[k]] : NULL;
}

/* --- unstructured pruning --------------------------------------------------- */

struct mag {
	float m;
	int64_t i;
};

static int cmp_mag(const void *a, const void *b)
{
	const struct mag *x = a, *y = b;
	if (x->m != y->m)
		return x->m < y->m ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

static enum presso_status prune_unstructured(struct value *w, double ratio)
{
	int64_t n = shape_numel(&w->shape);
	int64_t k = (int64_t)floor(ratio * (double)n + 0.5);
	if (k <= 0)
		return PRESSO_OK;
	struct mag *m = malloc(sizeof *m * (size_t)n);
	if (!m)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t i = 0; i < n; i++)
		m[i] = (struct mag){fabsf(w->data[i]), i};
	qsort(m, (size_t)n, sizeof *m, cmp_mag);
	for (int64_t i = 0; i < k; i++)
		w->data[m[i].i] = 0.0f;
	free(m);
	return PRESSO_OK;
}

/* --- structured pruning ----------------------------------------------------- */

struct prune_ctx {
	struct graph *g;
	const struct shape *shapes;  /* batch-1 shapes of the original graph */
	int64_t **kept;              /* [n_nodes] origin channel per output channel */
	bool *changed;               /* [n_nodes] */
	const char *layer;           /* the layer being pruned, for messages */
	bool channels_last;          /* its channels are the last dimension (Gemm,
					MatMul), not dimension 1 (Conv, NCHW) */
};

static enum presso_status refuse(const struct prune_ctx *c, const struct node *n, const char *why)
{
	return status_fail(PRESSO_E_CONFIG,
			   "layers.%s.prune: structured pruning cannot follow its channels into node '%s' (%s): %s; prune this layer unstructured instead",
			   c->layer, n ? n->name : "?", n ? op_name(n->op) : "?", why);
}

static bool is_output(const struct graph *g, int v)
{
	for (int i = 0; i < g->n_outputs; i++)
		if (g->outputs[i] == v)
			return true;
	return false;
}

/* Composes a node's channel map with a selection of its current channels. */
static enum presso_status compose_kept(struct prune_ctx *c, int node, const int64_t *keep,
				       int64_t n_keep)
{
	int64_t *nk = malloc(sizeof(int64_t) * (size_t)(n_keep ? n_keep : 1));
	if (!nk)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t j = 0; j < n_keep; j++)
		nk[j] = c->kept[node] ? c->kept[node][keep[j]] : keep[j];
	free(c->kept[node]);
	c->kept[node] = nk;
	return PRESSO_OK;
}

static enum presso_status shrink_const(struct prune_ctx *c, const struct node *n, int k, int axis,
				       const int64_t *keep, int64_t n_keep)
{
	if (k >= n->n_inputs || n->inputs[k] < 0)
		return PRESSO_OK;
	struct value *v = &c->g->values[n->inputs[k]];
	if (!v->data)
		return refuse(c, n, "a per-channel input is not a constant");
	if (v->n_consumers > 1)
		return refuse(c, n, "its weights are shared with another node");
	if (v->shape.n_dims <= axis || shape_numel(&v->shape) == 1)
		return PRESSO_OK; /* a scalar broadcasts over every channel */
	return keep_along(v, axis, keep, n_keep);
}

static enum presso_status follow(struct prune_ctx *c, int v, const int64_t *keep, int64_t n_keep,
				 int64_t flat);

/* A Gemm or MatMul reading the pruned channels as its K features. */
static enum presso_status shrink_k(struct prune_ctx *c, int i, const int64_t *keep,
				   int64_t n_keep, int64_t flat)
{
	struct node *n = &c->g->nodes[i];
	if (n->op == OP_GEMM && n->a.trans_a)
		return refuse(c, n, "a transposed input");
	int64_t nk = n_keep * flat;
	int64_t *kk = malloc(sizeof(int64_t) * (size_t)(nk ? nk : 1));
	if (!kk)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t j = 0; j < n_keep; j++)
		for (int64_t s = 0; s < flat; s++)
			kk[j * flat + s] = keep[j] * flat + s;
	int axis = n->op == OP_GEMM && n->a.trans_b ? 1 : 0;
	enum presso_status st = shrink_const(c, n, 1, axis, kk, nk);
	free(kk);
	c->changed[i] = true;
	return st;
}

/* A constant operand of an element-wise op whose channels are pruned: a scalar
 * applies to every channel; one value per channel, its other dimensions 1,
 * lines up with the channel dimension of x and shrinks along it. */
static enum presso_status follow_const_operand(struct prune_ctx *c, int i, int k_const,
					       const int64_t *keep, int64_t n_keep, int64_t flat)
{
	struct node *n = &c->g->nodes[i];
	const struct value *v = &c->g->values[n->inputs[k_const]];
	const struct shape *xs = &c->shapes[n->inputs[1 - k_const]];
	if (shape_numel(&v->shape) == 1)
		return follow(c, n->output, keep, n_keep, flat);
	int ch = c->channels_last ? xs->n_dims - 1 : 1;
	int axis = v->shape.n_dims - (xs->n_dims - ch); /* x's channel dimension in v */
	bool per_channel = flat == 1 && axis >= 0 && axis < v->shape.n_dims &&
			   v->shape.n_dims <= xs->n_dims && v->shape.dims[axis] == xs->dims[ch];
	for (int d = 0; per_channel && d < v->shape.n_dims; d++)
		per_channel = d == axis || v->shape.dims[d] == 1;
	if (!per_channel)
		return refuse(c, n, "its constant operand is not one value per channel");
	enum presso_status s = shrink_const(c, n, k_const, axis, keep, n_keep);
	return s != PRESSO_OK ? s : follow(c, n->output, keep, n_keep, flat);
}

static enum presso_status follow_node(struct prune_ctx *c, int i, int k, const int64_t *keep,
				      int64_t n_keep, int64_t flat)
{
	struct graph *g = c->g;
	struct node *n = &g->nodes[i];
	enum presso_status s;
	switch (n->op) {
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_POW:
	case OP_PRELU:
		/* with a constant (scalar or per channel) the channels go on; with
		 * another tensor, such as a squeeze-excite gate computed from them,
		 * the two would no longer line up */
		if (n->n_inputs == 2 && n->inputs[1 - k] >= 0 && g->values[n->inputs[1 - k]].data)
			return follow_const_operand(c, i, 1 - k, keep, n_keep, flat);
		return refuse(c, n, n->op == OP_MUL ? "the channels are multiplied by another tensor here (a squeeze-excite gate?), whose channels would no longer match"
						    : "the channels meet another tensor here");
	default:
		break;
	}
	if (k != 0)
		return refuse(c, n, "the channels meet another tensor here");
	enum f32_unary fn;
	if (engine_unary_fn(n->op, &fn)) /* element-wise: each channel stays itself */
		return follow(c, n->output, keep, n_keep, flat);
	switch (n->op) {
	case OP_RELU:
	case OP_CLIP:
	case OP_IDENTITY:
		return follow(c, n->output, keep, n_keep, flat);
	case OP_LAYERNORM:
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX:
	case OP_LRN:
	case OP_REDUCEMEAN:
	case OP_SUM:
		return refuse(c, n, "it combines values across the pruned channels");
	case OP_RESIZE: {
		/* a nearest resize that keeps the channel dimension keeps each
		 * channel itself; it is told to keep it by scale, not by size */
		const struct shape *xs = &c->shapes[n->inputs[0]];
		int ch = c->channels_last ? xs->n_dims - 1 : 1;
		if (ch < 1 || ch >= n->a.n_ints ||
		    (n->a.ints[ch] >= 0 ? n->a.ints[ch] != xs->dims[ch] : n->a.scales[ch] != 1.0f))
			return refuse(c, n, "it resizes the channel dimension");
		n->a.ints[ch] = -1;
		n->a.scales[ch] = 1.0f;
	}
		/* fall through */
	case OP_MAXPOOL:
	case OP_AVGPOOL:
	case OP_GLOBALAVGPOOL:
		if (flat != 1)
			return refuse(c, n, "after a Flatten");
		return follow(c, n->output, keep, n_keep, 1);
	case OP_BATCHNORM:
		for (int j = 1; j <= 4; j++)
			if ((s = shrink_const(c, n, j, 0, keep, n_keep)) != PRESSO_OK)
				return s;
		return follow(c, n->output, keep, n_keep, flat);
	case OP_FLATTEN: {
		const struct shape *xs = &c->shapes[n->inputs[0]];
		if (n->a.axis != 1 || xs->n_dims < 2)
			return refuse(c, n, "only a Flatten at axis 1 keeps channels apart");
		int64_t hw = 1;
		for (int d = 2; d < xs->n_dims; d++)
			hw *= xs->dims[d];
		return follow(c, n->output, keep, n_keep, flat * hw);
	}
	case OP_CONV: {
		struct value *w = &g->values[n->inputs[1]];
		if (!w->data)
			return refuse(c, n, "its weights are not constant");
		if (flat != 1)
			return refuse(c, n, "after a Flatten");
		int64_t c_in = c->shapes[n->inputs[0]].dims[1];
		if (n->a.group == 1) {
			c->changed[i] = true;
			return shrink_const(c, n, 1, 1, keep, n_keep);
		}
		if (n->a.group == c_in && w->shape.dims[0] == c_in) {
			/* depthwise: its channels go with its input's */
			if ((s = shrink_const(c, n, 1, 0, keep, n_keep)) ||
			    (s = shrink_const(c, n, 2, 0, keep, n_keep)) ||
			    (s = compose_kept(c, i, keep, n_keep)))
				return s;
			n->a.group = (int)n_keep;
			return follow(c, n->output, keep, n_keep, 1);
		}
		return refuse(c, n, "a grouped convolution");
	}
	case OP_GEMM:
		return shrink_k(c, i, keep, n_keep, flat);
	case OP_MATMUL:
		if (!opt_input(g, n, 1) || !opt_input(g, n, 1)->data ||
		    c->shapes[n->inputs[0]].n_dims != 2)
			return refuse(c, n, "a MatMul without a constant 2-D weight");
		return shrink_k(c, i, keep, n_keep, flat);
	default:
		return refuse(c, n, "the channels meet another branch or leave the channel layout");
	}
}

static enum presso_status follow(struct prune_ctx *c, int v, const int64_t *keep, int64_t n_keep,
				 int64_t flat)
{
	struct graph *g = c->g;
	if (is_output(g, v))
		return refuse(c, g->values[v].producer >= 0 ? &g->nodes[g->values[v].producer] : NULL,
			      "its output is a graph output");
	for (int i = 0; i < g->n_nodes; i++)
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (g->nodes[i].inputs[k] == v) {
				enum presso_status s = follow_node(c, i, k, keep, n_keep, flat);
				if (s != PRESSO_OK)
					return s;
			}
	return PRESSO_OK;
}

struct chan {
	double l1;
	int64_t c;
};

static int cmp_chan(const void *a, const void *b)
{
	const struct chan *x = a, *y = b;
	if (x->l1 != y->l1)
		return x->l1 < y->l1 ? -1 : 1;
	return (x->c < y->c) - (x->c > y->c); /* equal norms: the later channel first */
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static enum presso_status prune_structured(struct prune_ctx *c, int node, double ratio)
{
	struct graph *g = c->g;
	struct node *n = &g->nodes[node];
	struct value *w = &g->values[n->inputs[1]];
	if (n->op == OP_CONV && n->a.group != 1)
		return status_fail(PRESSO_E_CONFIG,
				   "layers.%s.prune: a grouped or depthwise convolution cannot be pruned structurally (its channels belong to the layer before: prune that one)",
				   c->layer);
	if (n->op == OP_GEMM && n->a.trans_a)
		return status_fail(PRESSO_E_CONFIG, "layers.%s.prune: a Gemm with transA", c->layer);
	if (w->n_consumers > 1)
		return status_fail(PRESSO_E_CONFIG,
				   "layers.%s.prune: its weights are shared with another node", c->layer);
	/* output channels along axis 0 (Conv, Gemm transB) or 1 (Gemm, MatMul) */
	int axis = n->op == OP_CONV || (n->op == OP_GEMM && n->a.trans_b) ? 0 : 1;
	if (n->op == OP_MATMUL && w->shape.n_dims != 2)
		return status_fail(PRESSO_E_CONFIG, "layers.%s.prune: a MatMul with a %d-D weight",
				   c->layer, w->shape.n_dims);
	c->channels_last = n->op != OP_CONV;
	int64_t n_out = w->shape.dims[axis], total = shape_numel(&w->shape);
	int64_t removed = (int64_t)floor(ratio * (double)n_out + 0.5);
	if (removed <= 0)
		return PRESSO_OK;
	if (removed >= n_out)
		return status_fail(PRESSO_E_CONFIG,
				   "layers.%s.prune: %g of %lld output channels removes every channel",
				   c->layer, ratio, (long long)n_out);
	struct chan *ch = calloc((size_t)n_out, sizeof *ch);
	int64_t *keep = malloc(sizeof(int64_t) * (size_t)n_out);
	if (!ch || !keep) {
		free(ch);
		free(keep);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	int64_t per = total / n_out;
	for (int64_t o = 0; o < n_out; o++)
		ch[o].c = o;
	for (int64_t i = 0; i < total; i++) {
		int64_t o = axis == 0 ? i / per : i % n_out;
		ch[o].l1 += fabs(w->data[i]);
	}
	qsort(ch, (size_t)n_out, sizeof *ch, cmp_chan);
	int64_t n_keep = n_out - removed;
	for (int64_t j = 0; j < n_keep; j++)
		keep[j] = ch[removed + j].c;
	qsort(keep, (size_t)n_keep, sizeof *keep, cmp_i64);
	free(ch);
	const struct value *b = n->op == OP_MATMUL ? NULL : opt_input(g, n, 2);
	int bias_axis = b ? b->shape.n_dims - 1 : 0; /* [c_out], or Gemm's [1, N] */
	enum presso_status s = keep_along(w, axis, keep, n_keep);
	if (s == PRESSO_OK && b)
		s = shrink_const(c, n, 2, bias_axis, keep, n_keep);
	if (s == PRESSO_OK)
		s = compose_kept(c, node, keep, n_keep);
	if (s == PRESSO_OK)
		s = follow(c, n->output, keep, n_keep, 1);
	free(keep);
	return s;
}

/* --- low-rank ---------------------------------------------------------------- */

enum presso_status transform_svd(const float *w, int64_t m, int64_t n, int64_t r, float *a,
				 float *b, double *discarded)
{
	int64_t mn = m < n ? m : n;
	if (r < 1 || r > mn)
		return status_fail(PRESSO_E_CONFIG, "rank %lld outside 1..%lld", (long long)r,
				   (long long)mn);
	double *A = malloc(sizeof(double) * (size_t)(m * n));
	double *S = malloc(sizeof(double) * (size_t)mn);
	double *U = malloc(sizeof(double) * (size_t)(m * mn));
	double *VT = malloc(sizeof(double) * (size_t)(mn * n));
	if (!A || !S || !U || !VT) {
		free(A);
		free(S);
		free(U);
		free(VT);
		return status_fail(PRESSO_E_NOMEM, "out of memory for the SVD");
	}
	for (int64_t i = 0; i < m * n; i++)
		A[i] = w[i];
	lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)m, (lapack_int)n, A,
					 (lapack_int)n, S, U, (lapack_int)mn, VT, (lapack_int)n);
	enum presso_status s = PRESSO_OK;
	if (info != 0) {
		s = status_fail(PRESSO_E_RUNTIME, "the SVD did not converge (LAPACK info %d)",
				(int)info);
	} else {
		double rest = 0;
		for (int64_t i = r; i < mn; i++)
			rest += S[i] * S[i];
		*discarded = rest;
		for (int64_t k = 0; k < r; k++) {
			double sq = sqrt(S[k]);
			for (int64_t j = 0; j < n; j++)
				a[k * n + j] = (float)(sq * VT[k * n + j]);
			for (int64_t i = 0; i < m; i++)
				b[i * r + k] = (float)(U[i * mn + k] * sq);
		}
	}
	free(A);
	free(S);
	free(U);
	free(VT);
	return s;
}

struct lowrank {
	int node;       /* the factorised node (becomes the second factor) */
	int rank;
	int first_w;    /* value of the first factor's weight */
	int mid;        /* value between the two factors */
};

static int add_value(struct graph *g, const char *name, const struct shape *shape, bool batched,
		     float *data)
{
	struct value *nv = realloc(g->values, sizeof *nv * (size_t)(g->n_values + 1));
	if (!nv)
		return -1;
	g->values = nv;
	struct value *v = &g->values[g->n_values];
	*v = (struct value){.name = strdup(name), .shape = *shape, .batched = batched,
			    .dtype = DTYPE_F32, .data = data, .producer = -1};
	if (!v->name)
		return -1;
	return g->n_values++;
}

/* Rewrites node i as the second factor and prepares the first (*done), or leaves
 * it alone with a line appended to *notes. */
static enum presso_status lowrank_layer(struct graph *g, int i, int64_t r, struct lowrank *lr,
					char **notes, const char *layer, bool *done)
{
	*done = false;
	struct node *n = &g->nodes[i];
	struct value *w = &g->values[n->inputs[1]];
	char note[512] = "";
	int64_t m, k;
	if (n->op == OP_CONV && n->a.group != 1) {
		snprintf(note, sizeof note, "%s: rank left at full: a grouped convolution has no single weight matrix", layer);
	} else if (n->op == OP_MATMUL || (n->op == OP_GEMM && n->a.trans_a)) {
		snprintf(note, sizeof note, "%s: rank left at full: only Conv and Gemm (without transA) are factorised", layer);
	}
	if (n->op == OP_CONV) {
		m = w->shape.dims[0];
		k = shape_numel(&w->shape) / m;
	} else {
		m = n->a.trans_b ? w->shape.dims[0] : w->shape.dims[1];
		k = n->a.trans_b ? w->shape.dims[1] : w->shape.dims[0];
	}
	int64_t full = m < k ? m : k;
	if (!note[0] && r > full)
		return status_fail(PRESSO_E_CONFIG, "layers.%s.rank: %lld is above the layer's full rank %lld",
				   layer, (long long)r, (long long)full);
	if (!note[0] && r * (m + k) >= m * k)
		snprintf(note, sizeof note,
			 "%s: rank %lld left at full: %lld x (%lld + %lld) factor weights would not be fewer than %lld x %lld",
			 layer, (long long)r, (long long)r, (long long)m, (long long)k, (long long)m,
			 (long long)k);
	if (note[0]) {
		size_t old = *notes ? strlen(*notes) : 0;
		char *t = realloc(*notes, old + strlen(note) + 2);
		if (!t)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		memcpy(t + old, note, strlen(note));
		t[old + strlen(note)] = '\n';
		t[old + strlen(note) + 1] = '\0';
		*notes = t;
		return PRESSO_OK;
	}
	/* W as [m][k] */
	float *wm = malloc(sizeof(float) * (size_t)(m * k));
	float *fa = malloc(sizeof(float) * (size_t)(r * k));
	float *fb = malloc(sizeof(float) * (size_t)(m * r));
	float alpha = n->op == OP_GEMM ? n->a.alpha : 1.0f;
	if (!wm || !fa || !fb) {
		free(wm);
		free(fa);
		free(fb);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int64_t o = 0; o < m; o++)
		for (int64_t j = 0; j < k; j++)
			wm[o * k + j] = alpha * (n->op == OP_CONV || n->a.trans_b ? w->data[o * k + j]
								     : w->data[j * m + o]);
	double discarded;
	enum presso_status s = transform_svd(wm, m, k, r, fa, fb, &discarded);
	free(wm);
	if (s != PRESSO_OK) {
		free(fa);
		free(fb);
		return status_wrap(s, "layers.%s.rank", layer);
	}
	char name[1024];
	struct shape sa = w->shape, sb = w->shape, smid;
	if (n->op == OP_CONV) {
		sa.dims[0] = r;                      /* [r][c_in][kh][kw] */
		sb = (struct shape){4, {m, r, 1, 1}}; /* [c_out][r][1][1] */
	} else {
		sa = (struct shape){2, {r, k}};
		sb = (struct shape){2, {m, r}};
	}
	smid = (struct shape){0};
	int x = n->inputs[1];
	snprintf(name, sizeof name, "%s.lowrank", g->values[x].name);
	int va = add_value(g, name, &sa, false, fa);
	if (va < 0) {
		free(fa);
		free(fb);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	/* the second factor's weight replaces the original weight in place */
	n = &g->nodes[i];
	w = &g->values[n->inputs[1]];
	free(w->data);
	w->data = fb;
	w->shape = sb;
	snprintf(name, sizeof name, "%s.lowrank", g->values[n->output].name);
	int vm = add_value(g, name, &smid, true, NULL);
	if (vm < 0)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	n = &g->nodes[i];
	if (n->op == OP_GEMM) {
		n->a.alpha = 1.0f;
		n->a.trans_b = true;
	}
	*lr = (struct lowrank){.node = i, .rank = (int)r, .first_w = va, .mid = vm};
	*done = true;
	return PRESSO_OK;
}

/* Rebuilds the node list with each factorised node split in two. */
static enum presso_status insert_factors(struct graph *g, const struct lowrank *lr, int n_lr,
					 int *node_origin, int **new_origin, bool *first_of)
{
	int nn = g->n_nodes + n_lr;
	struct node *nodes = calloc((size_t)nn, sizeof *nodes);
	int *origin = malloc(sizeof(int) * (size_t)nn);
	if (!nodes || !origin) {
		free(nodes);
		free(origin);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	int j = 0, l = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		struct node *n = &g->nodes[i];
		if (l < n_lr && lr[l].node == i) {
			struct node a = *n;
			char name[1024];
			snprintf(name, sizeof name, "%s.lowrank", n->name);
			a.name = strdup(name);
			if (!a.name) {
				for (int t = 0; t < j; t++)
					free(nodes[t].name);
				free(nodes);
				free(origin);
				return status_fail(PRESSO_E_NOMEM, "out of memory");
			}
			a.n_inputs = 2;
			a.inputs[1] = lr[l].first_w;
			a.output = lr[l].mid;
			if (a.op == OP_GEMM) {
				a.a.alpha = 1.0f;
				a.a.beta = 1.0f;
				a.a.trans_b = true;
			}
			first_of[j] = true;
			origin[j] = node_origin[i];
			nodes[j++] = a;
			/* the second factor: a 1x1 Conv (or a Gemm) on the middle tensor */
			n->inputs[0] = lr[l].mid;
			if (n->op == OP_CONV) {
				n->a.kernel[0] = n->a.kernel[1] = 1;
				n->a.strides[0] = n->a.strides[1] = 1;
				n->a.dilations[0] = n->a.dilations[1] = 1;
				memset(n->a.pads, 0, sizeof n->a.pads);
				n->a.auto_pad = 0;
			}
			l++;
		}
		first_of[j] = false;
		origin[j] = node_origin[i];
		nodes[j++] = *n;
	}
	free(g->nodes);
	g->nodes = nodes;
	g->n_nodes = nn;
	*new_origin = origin;
	return PRESSO_OK;
}

/* --- canonical form ------------------------------------------------------------ */

/* True when lowrank_layer leaves a layer of this kind alone whatever its rank. */
static bool never_factorised(const struct graph *g, const struct layer *l)
{
	const struct node *n = &g->nodes[l->node];
	return (n->op == OP_CONV && n->a.group != 1) || n->op == OP_MATMUL ||
	       (n->op == OP_GEMM && n->a.trans_a);
}

/* The canonical rank of one layer (see transform.h); `now` is the layer as
 * pruning leaves it, `orig` as the model has it. */
static double canonical_rank(const struct graph *g, const struct layer *orig,
			     const struct layer *now, double rank)
{
	if (rank == 1.0)
		return rank;
	if (rank > 1.0 && (int64_t)rank > policy_full_rank(orig))
		return rank; /* refused by policy_check_layer */
	if (never_factorised(g, orig))
		return 1.0;
	int64_t m = now->c_out, k = now->c_in * now->kh * now->kw;
	int64_t full = m < k ? m : k, r = policy_rank_of(now, rank);
	if (r > full)
		return rank; /* refused by lowrank_layer */
	if (r * (m + k) >= m * k)
		return 1.0; /* left at full */
	if (r >= 2)
		return (double)r;
	return 1.0 / (double)policy_full_rank(orig); /* gives r = 1 on any pruned shape */
}

enum presso_status transform_canonical(const struct graph *g, struct policy *p)
{
	struct layer *layers = NULL, *now = NULL;
	int n_layers = 0, n_now = 0;
	struct transform_result tr = {0};
	struct policy *pruning = NULL;
	int *max_act = NULL;
	enum presso_status s = graph_layers(g, &layers, &n_layers);
	if (s != PRESSO_OK)
		return s;
	PRESSO_CHECK(p->n_layers == n_layers);
	bool structured = false, ranked = false;
	for (int i = 0; i < n_layers; i++) {
		struct layer_policy *lp = &p->layers[i];
		if (!(lp->prune > 0))
			lp->prune_kind = PRUNE_UNSTRUCTURED;
		structured |= lp->prune > 0 && lp->prune_kind == PRUNE_STRUCTURED;
		ranked |= lp->rank != 1.0;
	}
	/* the shapes the factorisation sees: structured pruning shrinks layers
	 * and their consumers (unstructured pruning keeps every shape) */
	now = layers;
	n_now = n_layers;
	if (ranked && structured) {
		struct layer_policy id = policy_default_layer();
		if ((s = policy_uniform(&id, n_layers, &pruning)) != PRESSO_OK)
			goto done;
		for (int i = 0; i < n_layers; i++) {
			pruning->layers[i].prune = p->layers[i].prune;
			pruning->layers[i].prune_kind = p->layers[i].prune_kind;
		}
		s = transform_apply(g, pruning, &tr);
		if (s == PRESSO_E_NOMEM)
			goto done;
		if (s != PRESSO_OK) { /* the pruning fails: so will the policy */
			status_clear();
			s = PRESSO_OK;
			now = NULL;
		} else if ((s = graph_layers(tr.g, &now, &n_now)) != PRESSO_OK) {
			now = NULL;
			goto done;
		}
		PRESSO_CHECK(!now || n_now == n_layers);
	}
	for (int i = 0; i < n_layers && now; i++)
		p->layers[i].rank = canonical_rank(g, &layers[i], &now[i], p->layers[i].rank);
	/* act_bits: every reader of a tensor quantizes it at the largest width */
	max_act = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *max_act);
	if (!max_act) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	for (int i = 0; i < n_layers; i++) {
		int v = g->nodes[layers[i].node].inputs[0];
		if (p->layers[i].act_bits > max_act[v])
			max_act[v] = p->layers[i].act_bits;
	}
	for (int i = 0; i < n_layers; i++) {
		struct layer_policy *lp = &p->layers[i];
		bool factorised = lp->rank != 1.0 && !never_factorised(g, &layers[i]);
		if (!factorised)
			lp->act_bits = max_act[g->nodes[layers[i].node].inputs[0]];
	}
done:
	free(max_act);
	if (now != layers)
		free(now);
	free(layers);
	policy_free(pruning);
	transform_result_free(&tr);
	return s;
}

/* --- apply --------------------------------------------------------------------- */

bool transform_needed(const struct policy *p)
{
	for (int i = 0; i < p->n_layers; i++)
		if (p->layers[i].prune > 0 || p->layers[i].rank != 1.0)
			return true;
	return false;
}

void transform_result_free(struct transform_result *r)
{
	graph_free(r->g);
	policy_free(r->pol);
	for (int i = 0; r->channels && i < r->n_layers; i++)
		free(r->channels[i]);
	free(r->channels);
	free(r->origin);
	free(r->repair);
	free(r->notes);
	memset(r, 0, sizeof *r);
}

enum presso_status transform_apply(const struct graph *g0, const struct policy *p,
				   struct transform_result *out)
{
	memset(out, 0, sizeof *out);
	struct layer *layers = NULL, *nl = NULL;
	int n_layers = 0, n_nl = 0;
	struct shape *shapes = NULL;
	struct prune_ctx pc = {0};
	struct lowrank *lr = NULL;
	int n_lr = 0, *node_origin = NULL, *origin2 = NULL;
	bool *first_of = NULL;
	int nn = g0->n_nodes;
	enum presso_status s;
	if ((s = graph_layers(g0, &layers, &n_layers)) != PRESSO_OK)
		return s;
	if (p->n_layers != n_layers) {
		free(layers);
		return status_fail(PRESSO_E_CONFIG, "the policy has %d layers, the model %d",
				   p->n_layers, n_layers);
	}
	transform_cost(g0, &out->before);
	if ((s = graph_clone(g0, &out->g)) != PRESSO_OK)
		goto done;
	struct graph *g = out->g;
	shapes = malloc(sizeof *shapes * (size_t)g->n_values);
	pc = (struct prune_ctx){.g = g, .shapes = shapes,
				.kept = calloc((size_t)nn, sizeof(int64_t *)),
				.changed = calloc((size_t)nn, sizeof(bool))};
	node_origin = malloc(sizeof(int) * (size_t)nn);
	lr = calloc((size_t)(n_layers ? n_layers : 1), sizeof *lr);
	first_of = calloc((size_t)(nn + n_layers + 1), sizeof *first_of);
	if (!shapes || !pc.kept || !pc.changed || !node_origin || !lr || !first_of) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	if ((s = graph_infer_shapes(g0, 1, shapes)) != PRESSO_OK)
		goto done;
	for (int i = 0; i < nn; i++)
		node_origin[i] = -1;
	for (int i = 0; i < n_layers; i++)
		node_origin[layers[i].node] = i;

	/* 1. pruning, layer by layer */
	for (int i = 0; i < n_layers; i++) {
		const struct layer_policy *lp = &p->layers[i];
		if (!(lp->prune > 0))
			continue;
		if ((s = policy_check_layer(&layers[i], lp)) != PRESSO_OK)
			goto done;
		pc.layer = layers[i].name;
		int ni = layers[i].node;
		if (lp->prune_kind == PRUNE_STRUCTURED) {
			s = prune_structured(&pc, ni, lp->prune);
		} else {
			s = prune_unstructured(&g->values[g->nodes[ni].inputs[1]], lp->prune);
			pc.changed[ni] = true;
			/* a recurrent layer's R follows its input projection (as it
			 * follows its bits: graph_rnn_projection), once per R */
			for (int j = 0; j < nn && s == PRESSO_OK; j++) {
				if (graph_rnn_projection(g, j) != ni)
					continue;
				int r = g->nodes[j].inputs[RNN_IN_R];
				bool done = false;
				for (int k = 0; k < j; k++)
					done |= op_is_recurrent(g->nodes[k].op) &&
						g->nodes[k].inputs[RNN_IN_R] == r &&
						graph_rnn_projection(g, k) == ni;
				if (!done)
					s = prune_unstructured(&g->values[r], lp->prune);
			}
		}
		if (s != PRESSO_OK)
			goto done;
		out->changed = true;
	}
	if ((s = graph_refresh(g)) != PRESSO_OK)
		goto done;
	transform_cost(g, &out->after_prune);

	/* 2. low-rank, on the pruned weights */
	for (int i = 0; i < n_layers; i++) {
		const struct layer_policy *lp = &p->layers[i];
		if (lp->rank == 1.0)
			continue;
		if ((s = policy_check_layer(&layers[i], lp)) != PRESSO_OK)
			goto done;
		/* the rank counts against the layer as pruning left it */
		struct layer now = layers[i];
		const struct value *w = &g->values[g->nodes[now.node].inputs[1]];
		if (now.op == OP_CONV) {
			now.c_out = w->shape.dims[0];
			now.c_in = w->shape.dims[1];
		} else {
			bool tb = now.op == OP_GEMM && g->nodes[now.node].a.trans_b;
			now.c_out = tb ? w->shape.dims[0] : w->shape.dims[1];
			now.c_in = tb ? w->shape.dims[1] : w->shape.dims[0];
		}
		int64_t r = policy_rank_of(&now, lp->rank);
		bool done_lr;
		if ((s = lowrank_layer(g, now.node, r, &lr[n_lr], &out->notes, now.name, &done_lr)))
			goto done;
		if (done_lr) {
			pc.changed[now.node] = true;
			n_lr++;
			out->changed = true;
		}
	}
	if ((s = insert_factors(g, lr, n_lr, node_origin, &origin2, first_of)) != PRESSO_OK)
		goto done;
	if ((s = graph_refresh(g)) != PRESSO_OK)
		goto done;
	transform_cost(g, &out->after_lowrank);

	/* 3. the new graph's layers, their origin, policy and repair targets */
	if ((s = graph_layers(g, &nl, &n_nl)) != PRESSO_OK)
		goto done;
	struct layer_policy id = policy_default_layer();
	if ((s = policy_uniform(&id, n_nl, &out->pol)) != PRESSO_OK)
		goto done;
	out->n_layers = n_nl;
	out->origin = malloc(sizeof(int) * (size_t)(n_nl ? n_nl : 1));
	out->repair = calloc((size_t)(n_nl ? n_nl : 1), sizeof(bool));
	out->channels = calloc((size_t)(n_nl ? n_nl : 1), sizeof(int *));
	if (!out->origin || !out->repair || !out->channels) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	/* new node j is old node `old` unless it is a first factor */
	int old = 0;
	for (int j = 0; j < g->n_nodes; j++) {
		int li = -1;
		for (int t = 0; t < n_nl; t++)
			if (nl[t].node == j)
				li = t;
		int old_node = first_of[j] ? -1 : old++;
		if (li < 0)
			continue;
		int o = origin2[j];
		if (o < 0) {
			s = status_fail(PRESSO_E_RUNTIME, "layer '%s' has no origin", nl[li].name);
			goto done;
		}
		out->origin[li] = o;
		out->pol->layers[li] = p->layers[o];
		out->pol->layers[li].prune = 0;
		out->pol->layers[li].rank = 1.0;
		if (old_node >= 0 && pc.changed[old_node]) {
			out->repair[li] = true;
			int64_t c_out = nl[li].c_out;
			out->channels[li] = malloc(sizeof(int) * (size_t)(c_out ? c_out : 1));
			if (!out->channels[li]) {
				s = status_fail(PRESSO_E_NOMEM, "out of memory");
				goto done;
			}
			for (int64_t c = 0; c < c_out; c++)
				out->channels[li][c] =
					(int)(pc.kept[old_node] ? pc.kept[old_node][c] : c);
		}
	}
	s = PRESSO_OK;
done:
	for (int i = 0; pc.kept && i < nn; i++)
		free(pc.kept[i]);
	free(pc.kept);
	free(pc.changed);
	free(shapes);
	free(node_origin);
	free(origin2);
	free(first_of);
	free(lr);
	free(layers);
	free(nl);
	if (s != PRESSO_OK)
		transform_result_free(out);
	return s;
}
