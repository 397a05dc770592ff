/* tnet.c - the training engine: planning, forward with saved activations,
 * backward, fake quantization.
 *
 * Plan (tnet_create), in order:
 *   1. parameters: every float constant that a Conv, Gemm, MatMul, BatchNorm
 *      (scale, bias) or Add reads, once per value (a shared constant gets the
 *      sum of its readers' gradients), laid out one after the other in the
 *      flat gradient vector in value order;
 *   2. logits: graph output 0, or the input of the (Log)Softmax producing it;
 *      only the nodes the logits depend on run (the rest are skipped);
 *   3. buffers: every activation value gets a representative rep[v] whose
 *      buffer it uses: itself, or for the output of a reshape-like node
 *      (Flatten, Reshape, Squeeze, Unsqueeze, Identity) its input's; a
 *      Relu/Clip that is a Conv/Gemm's only reader (graph_fused_activation)
 *      runs inside it as a clamp and shares its buffer: the clamp's backward
 *      needs only the clamped output (y strictly inside the bounds exactly
 *      when the input was); other Relu/Clip nodes keep their input;
 *   4. needs_grad[v]: v depends on a parameter (graph inputs do not, so no
 *      dx is computed for the first layer).
 * Workspace (tnet_ws_create), for up to max_batch images: per representative
 * an activation buffer (every one is kept until the backward: no reuse), a
 * fake-quantized copy when that buffer is quantized, and a gradient buffer when
 * it needs one; one scratch for the largest forward or backward kernel; all in
 * one allocation made once. Forward and backward allocate nothing.
 *
 * Forward: node by node in graph order: Conv on the training kernels
 * (kernels_train.h, the fastest path of this CPU), BatchNorm in batch mode
 * through batchnorm_train, every other op through the FP32 engine's
 * executors (engine_exec_node). A layer
 * with fake-quantized weights reads the tnet's quantized copy; a buffer with
 * fake-quantized activations is quantized into its copy right after it is
 * written, and every reader (through aliases too) reads the copy.
 * Backward: gradient buffers zeroed (all but the logits', which the caller
 * wrote), then nodes in reverse order; each adds its inputs' gradients
 * (kernels_train.h; the element-wise functions, Mul, Sub, Div, Sum and
 * ReduceMean here, broadcasting summed back; has_backward() lists the ops,
 * and a model whose gradient would pass through any other is refused at
 * tnet_create, naming the node); a quantized buffer's gradient is first passed straight
 * through where its value lay inside the quantization range and zeroed where
 * the clamp cut it, before its producer's backward runs.
 *
 * Fake-quantized weights (tnet_quantize_weights): the weight of layer L, viewed
 * [n_out][per_out] per output channel (a Gemm weight stored [K, N] is
 * transposed for it), goes through quant_weights() - the grid and the scales
 * the PTQ build's "nearest" rounding gives the same weights, so the model
 * trained is the model built afterwards - and back: wq = q * scale. Scales are
 * recomputed from the weights at every call, not learned. When a Conv/Gemm's
 * only reader is a BatchNorm (an unfolded model), the grid is the folded
 * weight's, w * s with s = scale / sqrt(running_var + eps) per channel:
 * wq = quant(w * s) / s, so conv-then-BatchNorm computes exactly the folded,
 * quantized layer the export builds. Straight-through estimator: the weight's
 * gradient passes where |w * s| <= (qmax + 1/2) * scale (bits 3..8; outside
 * the clamp is flat) and everywhere for ternary and binary, whose scales
 * follow the weights' mean magnitude; the scales' own dependence on the
 * weights is ignored. Fixed zeros (pruning) get no gradient and are reset to
 * zero after each update.
 */
#define _POSIX_C_SOURCE 200809L
#include "train/tnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "kernels/kernels_train.h"
#include "model/engine.h"

enum step_kind { STEP_RUN, STEP_ALIAS, STEP_SKIP, STEP_FUSED };

struct act_quant {
	bool on;
	float scale, inv_scale, lo, hi;
	int32_t zero, qmax;
};

struct wq_layer {
	int bits;          /* 0: the layer reads its own weight */
	int node, param;
	int64_t n, n_out, per_out;
	/* 0: output channel c's weights are row c; else they are column c % cb
	 * of block c / cb, each block [per_out][cb] (a Gemm or MatMul's [K, N]
	 * weight: one block of N; a recurrent layer's R^T: one of gates *
	 * hidden per direction) */
	int64_t col_block;
	int tied;          /* a recurrent layer's R: the layer whose bits it takes, else -1 */
	int bn_node;       /* BatchNorm whose scale folds into the grid, or -1 */
	float *wq;         /* [n] in the weight's own layout */
	uint8_t *pass;     /* [n] 1 where the gradient passes */
	uint8_t *keep;     /* [n] 0 for a fixed zero, or NULL */
};

struct tnet {
	struct graph *g;
	const struct f32_train_kernels *k; /* conv and gemm kernels */
	enum tnet_bn_mode bn;
	struct layer *layers;
	int n_layers;
	int *layer_of_node;      /* [n_nodes] */
	struct tnet_param *params;
	int n_params;
	int64_t n_floats;
	int *param_of_value;     /* [n_values], -1 if none */
	int *rep;                /* [n_values] */
	bool *needs_grad;        /* [n_values] */
	enum step_kind *steps;   /* [n_nodes] */
	int *fused;              /* [n_nodes] the Relu/Clip fused into a Conv/Gemm, or -1 */
	int logits;
	int n_classes;
	struct act_quant *aq;    /* [n_values], by representative */
	int n_ws;                /* workspaces created so far */
	struct wq_layer *wl;     /* [n_wl]: the layers', then the recurrent layers' R */
	int n_wl;
	int *r_slot_of_node;     /* [n_nodes] the wl slot of a recurrent node's R, or -1 */
	int64_t *bn_off;         /* [n_nodes] offset in the BatchNorm channel arrays, or -1 */
	int64_t n_bn;
	/* quantize_weights() scratch, sized for the largest layer */
	float *qw_src;
	int8_t *qw_q;
	float *qw_scale;
};

struct tnet_ws {
	int max_batch, cur_batch;
	struct shape *shapes;    /* [n_values] at cur_batch */
	float **act, **qact, **grad; /* [n_values] by representative */
	float *scratch;
	float *bn_mean, *bn_var; /* [n_bn] */
	const float **in_ptrs;
	float *logits, *logits_grad;
	float **inputs;          /* [n_inputs] the graph inputs' buffers */
	float *mem;
};

static bool is_alias_op(enum op_type op)
{
	return op == OP_RESHAPE || op == OP_FLATTEN || op == OP_SQUEEZE || op == OP_UNSQUEEZE ||
	       op == OP_IDENTITY;
}

static bool is_const(const struct graph *g, int v)
{
	return v >= 0 && value_is_const(&g->values[v]);
}

/* The element-wise functions of one tensor that unary_backward differentiates. */
static bool is_function(enum op_type op)
{
	enum f32_unary f;
	return engine_unary_fn(op, &f);
}

/* The ops backward_node differentiates (the reshape-like ones as the
 * identity); a gradient that must pass through any other op is refused by
 * name rather than passed through unchanged. */
static bool has_backward(enum op_type op)
{
	switch (op) {
	case OP_CONV:
	case OP_GEMM:
	case OP_MATMUL:
	case OP_RELU:
	case OP_CLIP:
	case OP_BATCHNORM:
	case OP_MAXPOOL:
	case OP_AVGPOOL:
	case OP_GLOBALAVGPOOL:
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_SUM:
	case OP_CONCAT:
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX:
	case OP_TRANSPOSE:
	case OP_RESIZE:
	case OP_EXPAND:
	case OP_MAX:
	case OP_MIN:
	case OP_LAYERNORM:
	case OP_SLICE:
	case OP_PAD:
	case OP_CONVTRANSPOSE:
	case OP_RNN:
	case OP_GRU:
	case OP_LSTM:
		return true;
	default:
		return is_alias_op(op) || is_function(op) || op_is_reduce(op);
	}
}

/* --- planning ------------------------------------------------------------- */

static bool input_is_param(const struct node *n, int k)
{
	switch (n->op) {
	case OP_CONV:
	case OP_CONVTRANSPOSE:
	case OP_GEMM:
	case OP_MATMUL:
	case OP_ADD:
		return true;
	case OP_BATCHNORM:
		return k == 1 || k == 2;
	case OP_RNN:
	case OP_GRU:
	case OP_LSTM: /* W, R, B, P; constant initial states stay */
		return k == RNN_IN_W || k == RNN_IN_R || k == RNN_IN_B || k == RNN_IN_P;
	default:
		return false;
	}
}

static enum tnet_param_kind param_kind(const struct node *n, int k)
{
	if (n->op == OP_BATCHNORM)
		return k == 1 ? TP_BN_SCALE : TP_BN_BIAS;
	if (n->op == OP_CONV || n->op == OP_GEMM || n->op == OP_MATMUL)
		return k == 1 ? TP_WEIGHT : k == 2 ? TP_BIAS : TP_OTHER;
	return TP_OTHER;
}

static enum presso_status plan_params(struct tnet *t)
{
	struct graph *g = t->g;
	int *kind_of = malloc(sizeof(int) * (size_t)g->n_values);
	int *layer_of_value = malloc(sizeof(int) * (size_t)g->n_values);
	if (!kind_of || !layer_of_value) {
		free(kind_of);
		free(layer_of_value);
		return status_fail(PRESSO_E_NOMEM, "out of memory planning training");
	}
	for (int v = 0; v < g->n_values; v++) {
		kind_of[v] = -1;
		layer_of_value[v] = -1;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		if (t->steps[i] != STEP_RUN)
			continue;
		for (int k = 0; k < n->n_inputs; k++) {
			int v = n->inputs[k];
			if (v < 0 || !g->values[v].data || !input_is_param(n, k) || kind_of[v] >= 0)
				continue;
			kind_of[v] = (int)param_kind(n, k);
			if (t->layer_of_node[i] >= 0 && k <= 2)
				layer_of_value[v] = t->layer_of_node[i];
		}
	}
	int count = 0;
	for (int v = 0; v < g->n_values; v++)
		count += kind_of[v] >= 0;
	t->params = calloc((size_t)(count ? count : 1), sizeof *t->params);
	if (!t->params) {
		free(kind_of);
		free(layer_of_value);
		return status_fail(PRESSO_E_NOMEM, "out of memory planning training");
	}
	int64_t off = 0;
	for (int v = 0; v < g->n_values; v++) {
		if (kind_of[v] < 0)
			continue;
		int64_t n = shape_numel(&g->values[v].shape);
		t->param_of_value[v] = t->n_params;
		t->params[t->n_params++] = (struct tnet_param){
			.value = v, .n = n, .offset = off, .kind = (enum tnet_param_kind)kind_of[v],
			.layer = layer_of_value[v],
		};
		off += n;
	}
	t->n_floats = off;
	free(kind_of);
	free(layer_of_value);
	return PRESSO_OK;
}

/* Which ops have a backward here, and the shapes they must have. */
static enum presso_status check_node(const struct tnet *t, const struct node *n)
{
	const struct graph *g = t->g;
	switch (n->op) {
	case OP_MATMUL: {
		const struct value *w = n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
		const struct shape *as = &g->values[n->inputs[0]].shape;
		bool ok = !is_const(g, n->inputs[0]) && w && as->n_dims >= 2;
		if (ok && w->data) /* a layer: a constant 2-D weight */
			ok = w->shape.n_dims == 2;
		else if (ok) /* two activations (attention): B one matrix, or the same batch */
			ok = !is_const(g, n->inputs[1]) &&
			     (w->shape.n_dims == 2 ||
			      (w->shape.n_dims == as->n_dims &&
			       memcmp(w->shape.dims, as->dims, sizeof(int64_t) * (size_t)(as->n_dims - 2)) == 0));
		if (!ok)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': training supports MatMul as an activation of rank >= 2 times a constant 2-D weight, or times an activation of one matrix or of the same batch dimensions",
					   n->name);
		return PRESSO_OK;
	}
	case OP_CONV:
		if (is_const(g, n->inputs[0]))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': training needs a Conv's input to be an activation",
					   n->name);
		if (g->values[n->inputs[0]].shape.n_dims != 4)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': training supports 2-D convolutions only", n->name);
		return PRESSO_OK;
	case OP_MAXPOOL:
	case OP_AVGPOOL:
		if (g->values[n->inputs[0]].shape.n_dims != 4)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': training supports 2-D pooling only", n->name);
		return PRESSO_OK;
	case OP_BATCHNORM:
		for (int k = 1; k < 5; k++)
			if (!is_const(g, n->inputs[k]))
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': training needs BatchNormalization's scale, bias, mean and variance to be constants",
						   n->name);
		return PRESSO_OK;
	default:
		return PRESSO_OK;
	}
}

static enum presso_status plan(struct tnet *t)
{
	struct graph *g = t->g;
	enum presso_status s;
	/* 2. logits, and the nodes they need */
	int out = g->outputs[0];
	int p = g->values[out].producer;
	if (p >= 0 && (g->nodes[p].op == OP_SOFTMAX || g->nodes[p].op == OP_LOGSOFTMAX) &&
	    !is_const(g, g->nodes[p].inputs[0]))
		out = g->nodes[p].inputs[0];
	t->logits = out;
	bool *needed = calloc((size_t)g->n_values, sizeof *needed);
	if (!needed)
		return status_fail(PRESSO_E_NOMEM, "out of memory planning training");
	needed[out] = true;
	for (int i = g->n_nodes - 1; i >= 0; i--) {
		const struct node *n = &g->nodes[i];
		t->steps[i] = needed[n->output] ? STEP_RUN : STEP_SKIP;
		if (t->steps[i] == STEP_SKIP)
			continue;
		for (int k = 0; k < n->n_inputs; k++)
			if (n->inputs[k] >= 0)
				needed[n->inputs[k]] = true;
	}
	free(needed);
	for (int i = 0; i < g->n_nodes; i++)
		if (t->steps[i] == STEP_RUN && (s = check_node(t, &g->nodes[i])) != PRESSO_OK)
			return s;
	/* 3. buffers */
	for (int v = 0; v < g->n_values; v++)
		t->rep[v] = v;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		if (t->steps[i] == STEP_RUN && is_alias_op(n->op) && !is_const(g, n->inputs[0])) {
			t->steps[i] = STEP_ALIAS;
			t->rep[n->output] = t->rep[n->inputs[0]];
		}
	}
	/* a Relu/Clip that is a Conv/Gemm's only reader runs inside it as a clamp
	 * and shares its buffer: its backward needs only the clamped output */
	for (int i = 0; i < g->n_nodes; i++) {
		int j = t->steps[i] == STEP_RUN ? graph_fused_activation(g, i) : -1;
		t->fused[i] = -1;
		if (j < 0 || t->steps[j] != STEP_RUN)
			continue;
		t->fused[i] = j;
		t->steps[j] = STEP_FUSED;
		t->rep[g->nodes[j].output] = t->rep[g->nodes[i].output];
	}
	/* an alias of a fused activation's output shares its producer's buffer */
	for (int v = 0; v < g->n_values; v++)
		while (t->rep[t->rep[v]] != t->rep[v])
			t->rep[v] = t->rep[t->rep[v]];
	/* 1. parameters */
	if ((s = plan_params(t)) != PRESSO_OK)
		return s;
	/* 4. gradients */
	for (int v = 0; v < g->n_values; v++)
		t->needs_grad[v] = t->param_of_value[v] >= 0;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		if (t->steps[i] == STEP_SKIP)
			continue;
		for (int k = 0; k < n->n_inputs; k++)
			if (n->inputs[k] >= 0 && t->needs_grad[n->inputs[k]])
				t->needs_grad[n->output] = true;
	}
	if (!t->needs_grad[t->logits])
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "the model's output '%s' depends on no trainable parameter",
				   g->values[t->logits].name);
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		bool flows = false;
		for (int k = 0; k < n->n_inputs; k++)
			flows |= n->inputs[k] >= 0 && t->needs_grad[n->inputs[k]];
		if (t->steps[i] == STEP_RUN && flows && !has_backward(n->op))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': training has no backward for %s, and the gradient of an earlier layer passes through it",
					   n->name, op_name(n->op));
	}
	/* BatchNorm channels */
	for (int i = 0; i < g->n_nodes; i++) {
		t->bn_off[i] = -1;
		if (g->nodes[i].op == OP_BATCHNORM && t->steps[i] == STEP_RUN) {
			t->bn_off[i] = t->n_bn;
			t->n_bn += shape_numel(&g->values[g->nodes[i].inputs[1]].shape);
		}
	}
	return PRESSO_OK;
}

/* The BatchNorm that is the only reader of layer node i's output (and whose
 * channels are the layer's output channels), or -1. */
static int folded_bn(const struct tnet *t, int i, int64_t n_out)
{
	const struct graph *g = t->g;
	int y = g->nodes[i].output;
	if (g->values[y].n_consumers != 1 || y == g->outputs[0])
		return -1;
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *m = &g->nodes[j];
		if (m->op == OP_BATCHNORM && m->inputs[0] == y && t->steps[j] == STEP_RUN &&
		    shape_numel(&g->values[m->inputs[1]].shape) == n_out)
			return j;
	}
	return -1;
}

enum presso_status tnet_create(struct graph *g, enum tnet_bn_mode bn, struct tnet **out)
{
	*out = NULL;
	if (g->n_outputs < 1 || g->n_inputs < 1)
		return status_fail(PRESSO_E_UNSUPPORTED, "training needs a model with an input and an output");
	struct tnet *t = calloc(1, sizeof *t);
	enum presso_status s = PRESSO_E_NOMEM;
	if (!t)
		return status_fail(s, "out of memory planning training");
	t->g = g;
	t->bn = bn;
	t->k = f32_train_kernels_best();
	size_t nv = (size_t)g->n_values, nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
	t->layer_of_node = malloc(sizeof(int) * nn);
	t->param_of_value = malloc(sizeof(int) * nv);
	t->rep = malloc(sizeof(int) * nv);
	t->needs_grad = calloc(nv, sizeof *t->needs_grad);
	t->steps = calloc(nn, sizeof *t->steps);
	t->aq = calloc(nv, sizeof *t->aq);
	t->bn_off = malloc(sizeof(int64_t) * nn);
	t->fused = malloc(sizeof(int) * nn);
	if (!t->fused || !t->layer_of_node || !t->param_of_value || !t->rep || !t->needs_grad || !t->steps ||
	    !t->aq || !t->bn_off) {
		status_fail(s, "out of memory planning training");
		goto fail;
	}
	for (int v = 0; v < g->n_values; v++)
		t->param_of_value[v] = -1;
	if ((s = graph_layers(g, &t->layers, &t->n_layers)) != PRESSO_OK)
		goto fail;
	for (int i = 0; i < g->n_nodes; i++)
		t->layer_of_node[i] = -1;
	for (int l = 0; l < t->n_layers; l++)
		t->layer_of_node[t->layers[l].node] = l;
	if ((s = plan(t)) != PRESSO_OK)
		goto fail;
	const struct value *lv = &g->values[t->logits];
	int64_t per_image = shape_numel(&lv->shape);
	if (!lv->batched || lv->shape.n_dims < 1 || lv->shape.dims[0] != 1 || per_image < 1 ||
	    per_image > INT32_MAX) {
		s = status_fail(PRESSO_E_UNSUPPORTED,
				"the model's logits '%s' must hold one row of scores per image",
				lv->name);
		goto fail;
	}
	t->n_classes = (int)per_image;
	/* weight quantization slots: every layer's, then every recurrent
	 * layer's R that follows its input projection's bits
	 * (graph_rnn_projection), one per R value */
	t->wl = calloc((size_t)(t->n_layers + g->n_nodes + 1), sizeof *t->wl);
	t->r_slot_of_node = malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
	if (!t->wl || !t->r_slot_of_node) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory planning training");
		goto fail;
	}
	int64_t largest = 1, most_out = 1;
	for (int l = 0; l < t->n_layers; l++) {
		const struct layer *ly = &t->layers[l];
		const struct node *n = &g->nodes[ly->node];
		struct wq_layer *w = &t->wl[l];
		w->node = ly->node;
		w->param = t->param_of_value[n->inputs[1]];
		w->n = shape_numel(&g->values[n->inputs[1]].shape);
		w->n_out = ly->c_out;
		w->per_out = w->n / (ly->c_out ? ly->c_out : 1);
		bool columns = ly->op == OP_MATMUL || (ly->op == OP_GEMM && !n->a.trans_b);
		w->col_block = columns ? ly->c_out : 0;
		w->tied = -1;
		w->bn_node = ly->op == OP_MATMUL ? -1 : folded_bn(t, ly->node, ly->c_out);
		if (t->steps[ly->node] != STEP_RUN)
			w->param = -1; /* not on the way to the logits: never trained */
		if (w->n > largest)
			largest = w->n;
		if (w->n_out > most_out)
			most_out = w->n_out;
	}
	t->n_wl = t->n_layers;
	for (int i = 0; i < g->n_nodes; i++) {
		t->r_slot_of_node[i] = -1;
		int p = graph_rnn_projection(g, i);
		if (p < 0 || t->layer_of_node[p] < 0)
			continue;
		int r = g->nodes[i].inputs[RNN_IN_R];
		for (int k = t->n_layers; k < t->n_wl; k++)
			if (g->nodes[t->wl[k].node].inputs[RNN_IN_R] == r)
				t->r_slot_of_node[i] = k;
		if (t->r_slot_of_node[i] >= 0)
			continue;
		const struct shape *rs = &g->values[r].shape; /* R^T [dirs, hidden, gates * hidden] */
		struct wq_layer *w = &t->wl[t->n_wl];
		*w = (struct wq_layer){.node = i, .param = t->param_of_value[r],
				       .n = shape_numel(rs), .n_out = rs->dims[0] * rs->dims[2],
				       .per_out = rs->dims[1], .col_block = rs->dims[2],
				       .tied = t->layer_of_node[p], .bn_node = -1};
		if (t->steps[i] != STEP_RUN)
			w->param = -1;
		if (w->n > largest)
			largest = w->n;
		if (w->n_out > most_out)
			most_out = w->n_out;
		t->r_slot_of_node[i] = t->n_wl++;
	}
	t->qw_src = malloc(sizeof(float) * (size_t)largest);
	t->qw_q = malloc((size_t)largest);
	t->qw_scale = malloc(sizeof(float) * (size_t)most_out);
	if (!t->qw_src || !t->qw_q || !t->qw_scale) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory planning training");
		goto fail;
	}
	*out = t;
	return PRESSO_OK;
fail:
	tnet_free(t);
	return s;
}

void tnet_free(struct tnet *t)
{
	if (!t)
		return;
	for (int l = 0; t->wl && l < t->n_wl; l++) {
		free(t->wl[l].wq);
		free(t->wl[l].pass);
		free(t->wl[l].keep);
	}
	free(t->wl);
	free(t->r_slot_of_node);
	free(t->layers);
	free(t->layer_of_node);
	free(t->params);
	free(t->param_of_value);
	free(t->rep);
	free(t->needs_grad);
	free(t->steps);
	free(t->aq);
	free(t->bn_off);
	free(t->fused);
	free(t->qw_src);
	free(t->qw_q);
	free(t->qw_scale);
	free(t);
}

void tnet_set_kernels(struct tnet *t, const struct f32_train_kernels *k)
{
	t->k = k;
}

const struct graph *tnet_graph(const struct tnet *t)
{
	return t->g;
}

int tnet_n_params(const struct tnet *t)
{
	return t->n_params;
}

const struct tnet_param *tnet_param(const struct tnet *t, int i)
{
	PRESSO_CHECK(i >= 0 && i < t->n_params);
	return &t->params[i];
}

float *tnet_param_data(const struct tnet *t, int i)
{
	PRESSO_CHECK(i >= 0 && i < t->n_params);
	return t->g->values[t->params[i].value].data;
}

int64_t tnet_n_floats(const struct tnet *t)
{
	return t->n_floats;
}

int tnet_n_classes(const struct tnet *t)
{
	return t->n_classes;
}

int tnet_logits_value(const struct tnet *t)
{
	return t->logits;
}

int64_t tnet_n_bn_channels(const struct tnet *t)
{
	return t->n_bn;
}

/* --- fake quantization ----------------------------------------------------- */

enum presso_status tnet_set_weight_bits(struct tnet *t, int layer, int bits)
{
	if (layer < 0 || layer >= t->n_layers)
		return status_fail(PRESSO_E_CONFIG, "layer %d: no such layer (the model has %d)", layer,
				   t->n_layers);
	if (bits != 0 && (bits < QUANT_MIN_WEIGHT_BITS || bits > QUANT_MAX_WEIGHT_BITS))
		return status_fail(PRESSO_E_CONFIG, "layer '%s': weight bits %d outside %d..%d",
				   t->layers[layer].name, bits, QUANT_MIN_WEIGHT_BITS,
				   QUANT_MAX_WEIGHT_BITS);
	/* the layer's slot, and the R slots that take its bits */
	for (int k = 0; k < t->n_wl; k++) {
		struct wq_layer *w = &t->wl[k];
		if ((k != layer && w->tied != layer) || w->param < 0)
			continue; /* another layer's, or skipped: nothing to train */
		if (bits && !w->wq) {
			w->wq = malloc(sizeof(float) * (size_t)w->n);
			w->pass = malloc((size_t)w->n);
			if (!w->wq || !w->pass) {
				free(w->wq);
				free(w->pass);
				w->wq = NULL;
				w->pass = NULL;
				return status_fail(PRESSO_E_NOMEM,
						   "out of memory for fake-quantized weights");
			}
		}
		w->bits = bits;
	}
	if (bits)
		tnet_quantize_weights(t);
	return PRESSO_OK;
}

void tnet_fix_zeros(struct tnet *t, int layer)
{
	PRESSO_CHECK(layer >= 0 && layer < t->n_layers);
	/* the layer's slot and the R slots that follow it (pruned with it) */
	for (int k = 0; k < t->n_wl; k++) {
		struct wq_layer *w = &t->wl[k];
		if ((k != layer && w->tied != layer) || w->param < 0)
			continue;
		if (!w->keep) {
			w->keep = malloc((size_t)w->n);
			PRESSO_CHECK(w->keep != NULL);
		}
		const float *d = tnet_param_data(t, w->param);
		for (int64_t i = 0; i < w->n; i++)
			w->keep[i] = d[i] != 0.0f;
	}
}

void tnet_set_act_quant(struct tnet *t, int v, const struct qparams *qp)
{
	PRESSO_CHECK(v >= 0 && v < t->g->n_values && !is_const(t->g, v));
	struct act_quant *a = &t->aq[t->rep[v]];
	/* the set of quantized buffers is fixed once a workspace exists */
	PRESSO_CHECK(t->n_ws == 0 || a->on == (qp != NULL));
	if (!qp) {
		a->on = false;
		return;
	}
	a->on = true;
	a->scale = qp->scale;
	a->inv_scale = qp->inv_scale;
	a->zero = qp->zero;
	a->qmax = (1 << qp->bits) - 1;
	a->lo = -(float)qp->zero * qp->scale;
	a->hi = (float)(a->qmax - qp->zero) * qp->scale;
}

bool tnet_act_quantized(const struct tnet *t, int v)
{
	return v >= 0 && v < t->g->n_values && !is_const(t->g, v) && t->aq[t->rep[v]].on;
}

/* Per-channel factors s[c] of the folded BatchNorm's grid (1 without one). */
static float bn_factor(const struct tnet *t, const struct wq_layer *w, int64_t c)
{
	if (w->bn_node < 0)
		return 1.0f;
	const struct node *bn = &t->g->nodes[w->bn_node];
	const float *scale = t->g->values[bn->inputs[1]].data;
	const float *var = t->g->values[bn->inputs[4]].data;
	float s = (float)(scale[c] / sqrt((double)var[c] + bn->a.epsilon));
	return s != 0.0f && isfinite(s) ? s : 1.0f;
}

/* Where output channel c's first weight lies in the slot's weight; its j-th
 * is `*stride` j further (one division per channel, none per weight). */
static inline int64_t wq_first(const struct wq_layer *w, int64_t c, int64_t *stride)
{
	int64_t cb = w->col_block;
	*stride = cb ? cb : 1;
	return cb ? (c / cb) * w->per_out * cb + c % cb : c * w->per_out;
}

void tnet_quantize_weights(struct tnet *t)
{
	for (int l = 0; l < t->n_wl; l++) {
		struct wq_layer *w = &t->wl[l];
		if (!w->bits)
			continue;
		const float *d = tnet_param_data(t, w->param);
		int64_t no = w->n_out, po = w->per_out;
		/* src[c][j]: channel c's weights, times the folded BatchNorm's factor */
		for (int64_t c = 0; c < no; c++) {
			float f = bn_factor(t, w, c);
			int64_t st, at = wq_first(w, c, &st);
			for (int64_t j = 0; j < po; j++)
				t->qw_src[c * po + j] = d[at + j * st] * f;
		}
		quant_weights(t->qw_src, no, po, w->bits, t->qw_q, t->qw_scale);
		int qmax = quant_weight_qmax(w->bits);
		for (int64_t c = 0; c < no; c++) {
			float f = bn_factor(t, w, c), sc = t->qw_scale[c];
			float edge = ((float)qmax + 0.5f) * sc;
			int64_t st, first = wq_first(w, c, &st);
			for (int64_t j = 0; j < po; j++) {
				int64_t at = first + j * st;
				float src = t->qw_src[c * po + j];
				w->wq[at] = (float)t->qw_q[c * po + j] * sc / f;
				w->pass[at] = w->bits <= 2 || fabsf(src) <= edge;
			}
		}
	}
}

const float *tnet_weight_q(const struct tnet *t, int layer)
{
	PRESSO_CHECK(layer >= 0 && layer < t->n_layers);
	return t->wl[layer].bits ? t->wl[layer].wq : NULL;
}

void tnet_apply_ste(const struct tnet *t, float *grad)
{
	for (int l = 0; l < t->n_wl; l++) {
		const struct wq_layer *w = &t->wl[l];
		if (w->param < 0)
			continue;
		float *gr = grad + t->params[w->param].offset;
		if (w->bits)
			for (int64_t i = 0; i < w->n; i++)
				gr[i] = w->pass[i] ? gr[i] : 0.0f;
		if (w->keep)
			for (int64_t i = 0; i < w->n; i++)
				gr[i] = w->keep[i] ? gr[i] : 0.0f;
	}
}

void tnet_apply_masks(struct tnet *t)
{
	for (int l = 0; l < t->n_wl; l++) {
		const struct wq_layer *w = &t->wl[l];
		if (!w->keep)
			continue;
		float *d = tnet_param_data(t, w->param);
		for (int64_t i = 0; i < w->n; i++)
			d[i] = w->keep[i] ? d[i] : 0.0f;
	}
}

double tnet_quant_penalty(const struct tnet *t, double lambda, float *grad)
{
	double sum = 0.0;
	for (int l = 0; l < t->n_wl; l++) {
		const struct wq_layer *w = &t->wl[l];
		if (!w->bits)
			continue;
		const float *d = tnet_param_data(t, w->param);
		float *gr = grad ? grad + t->params[w->param].offset : NULL;
		for (int64_t i = 0; i < w->n; i++) {
			double e = (double)d[i] - (double)w->wq[i];
			sum += e * e;
			if (gr)
				gr[i] += (float)(2.0 * lambda * e);
		}
	}
	return lambda * sum;
}

/* --- workspaces ------------------------------------------------------------ */

static void conv_params(const struct node *n, const struct shape *xs, const struct shape *ws,
			const struct shape *ys, struct conv2d_params *p)
{
	*p = (struct conv2d_params){
		.n = (int)xs->dims[0], .c_in = (int)xs->dims[1],
		.h_in = (int)xs->dims[2], .w_in = (int)xs->dims[3],
		.c_out = (int)ys->dims[1], .h_out = (int)ys->dims[2], .w_out = (int)ys->dims[3],
		.kh = (int)ws->dims[2], .kw = (int)ws->dims[3],
		.stride_h = n->a.strides[0], .stride_w = n->a.strides[1],
		.pad_t = n->a.pads[0], .pad_l = n->a.pads[1],
		.dil_h = n->a.dilations[0], .dil_w = n->a.dilations[1],
		.group = n->a.group, .act_min = -INFINITY, .act_max = INFINITY,
	};
}

static void pool_params(const struct node *n, const struct shape *xs, const struct shape *ys,
			struct pool2d_params *p)
{
	const struct node_attrs *a = &n->a;
	*p = (struct pool2d_params){
		.n = (int)xs->dims[0], .c = (int)xs->dims[1],
		.h_in = (int)xs->dims[2], .w_in = (int)xs->dims[3],
		.h_out = (int)ys->dims[2], .w_out = (int)ys->dims[3],
		.kh = a->kernel[0], .kw = a->kernel[1],
		.stride_h = a->strides[0], .stride_w = a->strides[1],
		.pad_t = a->pads[0], .pad_l = a->pads[1], .pad_b = a->pads[2], .pad_r = a->pads[3],
		.dil_h = a->dilations[0], .dil_w = a->dilations[1],
		.count_include_pad = a->count_include_pad,
	};
}

/* Gemm's [m, n, k] and its C's broadcast shape [c_m, c_n]. */
static void gemm_dims(const struct node *n, const struct shape *shapes, int *m, int *nn, int *k,
		      int *cm, int *cn)
{
	const struct shape *as = &shapes[n->inputs[0]], *ys = &shapes[n->output];
	*m = (int)ys->dims[0];
	*nn = (int)ys->dims[1];
	*k = (int)(n->a.trans_a ? as->dims[0] : as->dims[1]);
	*cm = *cn = 1;
	if (n->n_inputs > 2 && n->inputs[2] >= 0) {
		const struct shape *c = &shapes[n->inputs[2]];
		*cm = c->n_dims == 2 ? (int)c->dims[0] : 1;
		*cn = c->n_dims >= 1 ? (int)c->dims[c->n_dims - 1] : 1;
	}
}

/* Floats of an RNN/GRU/LSTM's record in scratch, rounded so that the
 * kernel scratch after it stays aligned. */
static size_t rnn_tape_pad(const struct rnn_params *p)
{
	return (rnn_tape_floats(p) + 15) / 16 * 16;
}

/* Floats of a ConvTranspose's input gradient in scratch, rounded so that
 * the kernel scratch after it stays aligned. */
static size_t convt_dx_floats(const struct shape *xs)
{
	return ((size_t)shape_numel(xs) + 15) / 16 * 16;
}

static size_t node_scratch_bytes(const struct tnet *t, const struct node *n,
				 const struct shape *shapes)
{
	size_t fwd = engine_node_scratch_bytes(t->g, n, shapes), bwd = 0;
	switch (n->op) {
	case OP_CONV: {
		struct conv2d_params p;
		conv_params(n, &shapes[n->inputs[0]], &shapes[n->inputs[1]], &shapes[n->output], &p);
		bwd = conv2d_backward_scratch_bytes(&p);
		break;
	}
	case OP_GEMM: {
		int m, nn, k, cm, cn;
		gemm_dims(n, shapes, &m, &nn, &k, &cm, &cn);
		bwd = gemm_backward_scratch_bytes(m, nn, k);
		break;
	}
	case OP_MATMUL: {
		const struct shape *ws = &shapes[n->inputs[1]];
		if (ws->n_dims != 2)
			break; /* two activations: no scratch (matmul_act_backward) */
		int64_t k = ws->dims[0], rows = shape_numel(&shapes[n->inputs[0]]) / (k ? k : 1);
		bwd = gemm_backward_scratch_bytes((int)rows, (int)ws->dims[1], (int)k);
		break;
	}
	case OP_TRANSPOSE:
	case OP_MUL:
	case OP_SUB:
	case OP_DIV:
	case OP_MAX:
	case OP_MIN:
		bwd = sizeof(float) * (size_t)shape_numel(&shapes[n->output]);
		break;
	case OP_RNN:
	case OP_GRU:
	case OP_LSTM: { /* the forward's record, then the larger of the two passes' scratch */
		struct rnn_params p;
		engine_rnn_params(n, shapes, &p);
		size_t a = rnn_scratch_floats(&p), b = rnn_backward_scratch_floats(&p);
		bwd = sizeof(float) * (rnn_tape_pad(&p) + (a > b ? a : b));
		break;
	}
	case OP_CONVTRANSPOSE: { /* dx through a temporary, then the conv's scratch */
		struct conv2d_params p;
		engine_convtranspose_params(n, shapes, &p);
		bwd = convt_dx_floats(&shapes[n->inputs[0]]) * sizeof(float) +
		      conv2d_backward_scratch_bytes(&p);
		break;
	}
	default:
		break;
	}
	return fwd > bwd ? fwd : bwd;
}

enum presso_status tnet_ws_create(const struct tnet *t, int max_batch, struct tnet_ws **out)
{
	*out = NULL;
	const struct graph *g = t->g;
	if (max_batch < 1)
		return status_fail(PRESSO_E_USAGE, "training batch must be at least 1 (got %d)",
				   max_batch);
	struct tnet_ws *w = calloc(1, sizeof *w);
	enum presso_status s = PRESSO_E_NOMEM;
	if (!w)
		return status_fail(s, "out of memory for a training workspace");
	size_t nv = (size_t)g->n_values;
	w->max_batch = w->cur_batch = max_batch;
	w->shapes = calloc(nv, sizeof *w->shapes);
	w->act = calloc(nv, sizeof *w->act);
	w->qact = calloc(nv, sizeof *w->qact);
	w->grad = calloc(nv, sizeof *w->grad);
	w->in_ptrs = calloc(GRAPH_MAX_INPUTS, sizeof *w->in_ptrs);
	w->inputs = calloc((size_t)g->n_inputs, sizeof *w->inputs);
	if (!w->shapes || !w->act || !w->qact || !w->grad || !w->in_ptrs || !w->inputs) {
		status_fail(s, "out of memory for a training workspace");
		goto fail;
	}
	if ((s = graph_infer_shapes(g, max_batch, w->shapes)) != PRESSO_OK)
		goto fail;
	/* offsets (in floats, each buffer ARENA_ALIGN-aligned) of every buffer */
	size_t total = 0, align = ARENA_ALIGN / sizeof(float);
	size_t *a_off = calloc(nv * 3, sizeof *a_off);
	if (!a_off) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory for a training workspace");
		goto fail;
	}
	size_t scratch = ARENA_ALIGN;
	for (int i = 0; i < g->n_nodes; i++) {
		if (t->steps[i] != STEP_RUN)
			continue;
		size_t b = node_scratch_bytes(t, &g->nodes[i], w->shapes);
		scratch = b > scratch ? b : scratch;
	}
	for (int v = 0; v < g->n_values; v++) {
		if (is_const(g, v) || t->rep[v] != v)
			continue;
		size_t n = (size_t)shape_numel(&w->shapes[v]);
		size_t padded = (n + align - 1) / align * align;
		a_off[3 * v] = total + 1; /* 0 = none */
		total += padded;
		if (t->aq[v].on) {
			a_off[3 * v + 1] = total + 1;
			total += padded;
		}
		if (t->needs_grad[v]) {
			a_off[3 * v + 2] = total + 1;
			total += padded;
		}
	}
	size_t scratch_floats = (scratch + sizeof(float) - 1) / sizeof(float);
	scratch_floats = (scratch_floats + align - 1) / align * align;
	size_t bn_floats = ((size_t)t->n_bn + align - 1) / align * align;
	w->mem = aligned_alloc(ARENA_ALIGN, sizeof(float) * (total + scratch_floats + 2 * bn_floats + align));
	if (!w->mem) {
		free(a_off);
		s = status_fail(PRESSO_E_NOMEM, "out of memory: a training workspace of %zu bytes",
				sizeof(float) * (total + scratch_floats));
		goto fail;
	}
	memset(w->mem, 0, sizeof(float) * total);
	for (int v = 0; v < g->n_values; v++) {
		if (a_off[3 * v])
			w->act[v] = w->mem + a_off[3 * v] - 1;
		if (a_off[3 * v + 1])
			w->qact[v] = w->mem + a_off[3 * v + 1] - 1;
		if (a_off[3 * v + 2])
			w->grad[v] = w->mem + a_off[3 * v + 2] - 1;
	}
	free(a_off);
	w->scratch = w->mem + total;
	w->bn_mean = w->scratch + scratch_floats;
	w->bn_var = w->bn_mean + bn_floats;
	for (int i = 0; i < g->n_inputs; i++)
		w->inputs[i] = w->act[t->rep[g->inputs[i]]];
	w->logits = w->act[t->rep[t->logits]];
	w->logits_grad = w->grad[t->rep[t->logits]];
	((struct tnet *)t)->n_ws++; /* the quantized set is now fixed (tnet_set_act_quant) */
	*out = w;
	return PRESSO_OK;
fail:
	tnet_ws_free(w);
	return s;
}

void tnet_ws_free(struct tnet_ws *w)
{
	if (!w)
		return;
	free(w->shapes);
	free(w->act);
	free(w->qact);
	free(w->grad);
	free(w->in_ptrs);
	free(w->inputs);
	free(w->mem);
	free(w);
}

float *tnet_ws_input(struct tnet_ws *w, int i)
{
	return w->inputs[i];
}

/* --- forward ---------------------------------------------------------------- */

/* The clamp of a fused Relu/Clip. */
static void act_bounds(const struct node *act, float *lo, float *hi)
{
	*lo = act->op == OP_RELU ? 0.0f : act->a.clip_min;
	*hi = act->op == OP_RELU ? INFINITY : act->a.clip_max;
}

/* What a reader of activation v sees: the quantized copy when there is one. */
static const float *read_act(const struct tnet *t, const struct tnet_ws *w, int v)
{
	int r = t->rep[v];
	return t->aq[r].on ? w->qact[r] : w->act[r];
}

static const float *read_value(const struct tnet *t, const struct tnet_ws *w, int v)
{
	return is_const(t->g, v) ? t->g->values[v].data : read_act(t, w, v);
}

static void quantize_buffer(const struct tnet *t, struct tnet_ws *w, int v)
{
	const struct act_quant *a = &t->aq[v];
	if (!a->on)
		return;
	fake_quant_act_f32__ref(shape_numel(&w->shapes[v]), w->act[v], a->scale, a->inv_scale,
				a->zero, a->qmax, w->qact[v]);
}

enum presso_status tnet_forward(const struct tnet *t, struct tnet_ws *w, int batch)
{
	const struct graph *g = t->g;
	if (batch < 1 || batch > w->max_batch)
		return status_fail(PRESSO_E_USAGE, "batch %d outside 1..%d this workspace was planned for",
				   batch, w->max_batch);
	if (batch != w->cur_batch) {
		enum presso_status s = graph_infer_shapes(g, batch, w->shapes);
		if (s != PRESSO_OK)
			return s;
		w->cur_batch = batch;
	}
	for (int i = 0; i < g->n_inputs; i++)
		quantize_buffer(t, w, g->inputs[i]);
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		if (t->steps[i] != STEP_RUN)
			continue;
		int l = t->layer_of_node[i];
		for (int k = 0; k < n->n_inputs; k++)
			w->in_ptrs[k] = n->inputs[k] >= 0 ? read_value(t, w, n->inputs[k]) : NULL;
		if (l >= 0 && t->wl[l].bits)
			w->in_ptrs[1] = t->wl[l].wq;
		int rq = t->r_slot_of_node[i];
		if (rq >= 0 && t->wl[rq].bits)
			w->in_ptrs[RNN_IN_R] = t->wl[rq].wq;
		float *y = w->act[t->rep[n->output]];
		float lo = -INFINITY, hi = INFINITY;
		if (t->fused[i] >= 0)
			act_bounds(&g->nodes[t->fused[i]], &lo, &hi);
		if (n->op == OP_CONV) {
			struct conv2d_params p;
			conv_params(n, &w->shapes[n->inputs[0]], &w->shapes[n->inputs[1]],
				    &w->shapes[n->output], &p);
			p.act_min = lo;
			p.act_max = hi;
			conv2d_forward_f32(t->k, &p, w->in_ptrs[0], w->in_ptrs[1],
					   n->n_inputs > 2 ? w->in_ptrs[2] : NULL, y, w->scratch);
		} else if (n->op == OP_BATCHNORM && t->bn == TNET_BN_BATCH) {
			const struct shape *xs = &w->shapes[n->inputs[0]];
			int64_t inner = 1;
			for (int d = 2; d < xs->n_dims; d++)
				inner *= xs->dims[d];
			batchnorm_train_f32__ref((int)xs->dims[0], (int)xs->dims[1], inner,
						 w->in_ptrs[0], w->in_ptrs[1], w->in_ptrs[2],
						 n->a.epsilon, y, w->bn_mean + t->bn_off[i],
						 w->bn_var + t->bn_off[i]);
		} else {
			engine_exec_node(g, n, w->shapes, w->in_ptrs, y, w->scratch, lo, hi);
		}
		quantize_buffer(t, w, t->rep[n->output]);
	}
	return PRESSO_OK;
}

const float *tnet_ws_logits(const struct tnet_ws *w)
{
	return w->logits;
}

float *tnet_ws_logits_grad(struct tnet_ws *w)
{
	return w->logits_grad;
}

void tnet_bn_stats(const struct tnet *t, const struct tnet_ws *w, float *mean, float *var)
{
	memcpy(mean, w->bn_mean, sizeof(float) * (size_t)t->n_bn);
	memcpy(var, w->bn_var, sizeof(float) * (size_t)t->n_bn);
}

/* --- backward --------------------------------------------------------------- */

/* Where the gradient of node input v goes: its parameter's slot, its buffer's
 * gradient, or nowhere (NULL). */
static float *grad_of(const struct tnet *t, struct tnet_ws *w, float *grad, int v)
{
	if (v < 0)
		return NULL;
	if (t->param_of_value[v] >= 0)
		return grad + t->params[t->param_of_value[v]].offset;
	if (is_const(t->g, v) || !t->needs_grad[v])
		return NULL;
	return w->grad[t->rep[v]];
}

/* [outer, dim, inner] around an axis (Concat, opset >= 13 softmax). */
static void axis_view(const struct shape *s, int axis, int64_t *outer, int64_t *dim,
		      int64_t *inner)
{
	*outer = *inner = 1;
	for (int i = 0; i < axis; i++)
		*outer *= s->dims[i];
	for (int i = axis + 1; i < s->n_dims; i++)
		*inner *= s->dims[i];
	*dim = s->dims[axis];
}

/* (Log)Softmax's view, as the FP32 engine takes it (before opset 13 the input
 * is coerced to 2-D at the axis). */
static void softmax_view(const struct graph *g, const struct node *n, const struct shape *s,
			 int64_t *outer, int64_t *dim, int64_t *inner)
{
	int axis = n->a.axis < 0 ? n->a.axis + s->n_dims : n->a.axis;
	if (g->opset >= 13) {
		axis_view(s, axis, outer, dim, inner);
		return;
	}
	*outer = *dim = *inner = 1;
	for (int i = 0; i < s->n_dims; i++) {
		if (i < axis)
			*outer *= s->dims[i];
		else
			*dim *= s->dims[i];
	}
}

/* The straight-through estimator of a quantized buffer, in place on its
 * gradient: kept where the raw value was inside the quantization range. */
static void ste_act(const struct tnet *t, struct tnet_ws *w, int v)
{
	const struct act_quant *a = &t->aq[v];
	float *d = w->grad[v];
	const float *x = w->act[v];
	int64_t count = shape_numel(&w->shapes[v]);
	if (!a->on || !d)
		return;
	for (int64_t i = 0; i < count; i++)
		d[i] = x[i] >= a->lo && x[i] <= a->hi ? d[i] : 0.0f;
}

/* d = d where lo < y < hi, else 0: a clamp's derivative read off its output
 * (y strictly inside the bounds exactly when its input was). */
static void clip_mask_inplace(int64_t count, const float *restrict y, float lo, float hi,
			      float *restrict d)
{
	for (int64_t i = 0; i < count; i++) {
		float yi = y[i], di = d[i];
		d[i] = yi > lo && yi < hi ? di : 0.0f;
	}
}

/* dx += dy * f'(x) for an element-wise op of one tensor, y = f(x). */
static void unary_backward(const struct node *n, int64_t count, const float *x, const float *y,
			   const float *dy, float *dx)
{
	for (int64_t j = 0; j < count; j++) {
		float xv = x[j], yv = y[j], d;
		switch (n->op) {
		case OP_SIGMOID:
			d = yv * (1.0f - yv);
			break;
		case OP_TANH:
			d = 1.0f - yv * yv;
			break;
		case OP_HARDSIGMOID: {
			float v = n->a.alpha * xv + n->a.beta;
			d = v > 0.0f && v < 1.0f ? n->a.alpha : 0.0f;
			break;
		}
		case OP_HARDSWISH: /* x * clamp(x + 3, 0, 6) / 6 */
			d = xv <= -3.0f ? 0.0f : xv >= 3.0f ? 1.0f : (2.0f * xv + 3.0f) / 6.0f;
			break;
		case OP_LEAKYRELU:
			d = xv > 0.0f ? 1.0f : n->a.alpha;
			break;
		case OP_ELU: /* alpha e^x = y + alpha below 0 */
			d = xv < 0.0f ? yv + n->a.alpha : 1.0f;
			break;
		case OP_SELU: /* gamma alpha e^x below 0 */
			d = xv <= 0.0f ? yv + n->a.beta * n->a.alpha : n->a.beta;
			break;
		case OP_CELU: /* e^(x / alpha) = y / alpha + 1 below 0 */
			d = xv > 0.0f ? 1.0f : yv / n->a.alpha + 1.0f;
			break;
		case OP_SOFTPLUS: /* the sigmoid */
			d = 1.0f / (1.0f + expf(-xv));
			break;
		case OP_SOFTSIGN: {
			float den = 1.0f + fabsf(xv);
			d = 1.0f / (den * den);
			break;
		}
		case OP_THRESHOLDEDRELU:
			d = xv > n->a.alpha ? 1.0f : 0.0f;
			break;
		case OP_LOG:
			d = 1.0f / xv;
			break;
		case OP_ERF: /* 2 / sqrt(pi) exp(-x^2) */
			d = 1.1283791670955126f * expf(-xv * xv);
			break;
		case OP_SQRT:
			d = yv > 0.0f ? 0.5f / yv : 0.0f;
			break;
		case OP_EXP:
			d = yv;
			break;
		case OP_NEG:
			d = -1.0f;
			break;
		case OP_RECIPROCAL:
			d = -yv * yv;
			break;
		default: /* OP_ABS */
			d = xv > 0.0f ? 1.0f : xv < 0.0f ? -1.0f : 0.0f;
			break;
		}
		dx[j] += dy[j] * d;
	}
}

/* Mul, Sub, Div of two tensors that broadcast: each input's gradient at every
 * output element into g (the output's size), then summed over the dimensions
 * where the input broadcasts (add_backward). */
static void binary_backward(const struct tnet *t, struct tnet_ws *w, float *grad,
			    const struct node *n, const float *dy)
{
	const struct shape *sh = w->shapes, *ys = &sh[n->output];
	int nd = ys->n_dims;
	int64_t count = shape_numel(ys), dims[2][GRAPH_MAX_DIMS];
	const float *v[2];
	for (int k = 0; k < 2; k++) {
		shape_right_align(&sh[n->inputs[k]], nd, dims[k]);
		v[k] = read_value(t, w, n->inputs[k]);
	}
	float *g = w->scratch;
	for (int k = 0; k < 2; k++) {
		float *da = grad_of(t, w, grad, n->inputs[k]);
		if (!da)
			continue;
		for (int64_t o = 0; o < count; o++) {
			float a = v[0][shape_broadcast_src(dims[0], ys->dims, nd, o)];
			float b = v[1][shape_broadcast_src(dims[1], ys->dims, nd, o)];
			switch (n->op) {
			case OP_MUL:
				g[o] = dy[o] * (k ? a : b);
				break;
			case OP_SUB:
				g[o] = k ? -dy[o] : dy[o];
				break;
			case OP_MAX: /* to the larger; a tie to the first */
				g[o] = (k ? b > a : a >= b) ? dy[o] : 0.0f;
				break;
			case OP_MIN:
				g[o] = (k ? b < a : a <= b) ? dy[o] : 0.0f;
				break;
			default: /* OP_DIV */
				g[o] = k ? -dy[o] * a / (b * b) : dy[o] / b;
				break;
			}
		}
		add_backward_f32__ref(dims[k], ys->dims, nd, g, da);
	}
}

/* LayerNormalization from axis: per row of `inner` values, with g = dy * scale
 * and xh = (x - mean) / sd, dx = (g - mean(g) - xh * mean(g * xh)) / sd (the
 * statistics in double, as the forward's). Scale and B get no gradient: they
 * are constants here. */
static void layernorm_backward(const struct node *n, const struct shape *xs, const float *x,
			       const float *scale, int64_t n_scale, const float *dy, float *dx)
{
	int64_t outer, inner;
	engine_layernorm_rows(n, xs, &outer, &inner);
	if (inner == 0)
		return;
	for (int64_t r = 0; r < outer; r++) {
		const float *xr = x + r * inner, *dyr = dy + r * inner;
		float *dxr = dx + r * inner;
		double mean = 0, var = 0, mg = 0, mgx = 0;
		for (int64_t j = 0; j < inner; j++)
			mean += xr[j];
		mean /= (double)inner;
		for (int64_t j = 0; j < inner; j++)
			var += (xr[j] - mean) * (xr[j] - mean);
		var /= (double)inner;
		double inv = 1.0 / sqrt(var + (double)n->a.epsilon);
		for (int64_t j = 0; j < inner; j++) {
			double g = (double)dyr[j] * scale[j % n_scale];
			mg += g;
			mgx += g * (xr[j] - mean) * inv;
		}
		mg /= (double)inner;
		mgx /= (double)inner;
		for (int64_t j = 0; j < inner; j++) {
			double g = (double)dyr[j] * scale[j % n_scale];
			dxr[j] += (float)(inv * (g - mg - (xr[j] - mean) * inv * mgx));
		}
	}
}

/* MatMul of two activations, C[p] = A[p] B[p] (or one B for every p): per
 * matrix dA += dC B^T and dB += A^T dC, summed in double over the shared
 * dimension (attention's q k^T and its weights times v; small matrices). */
static void matmul_act_backward(const struct tnet *t, struct tnet_ws *w, float *grad,
				const struct node *n, const float *dy)
{
	const struct shape *sh = w->shapes, *as = &sh[n->inputs[0]], *bs = &sh[n->inputs[1]];
	int64_t m = as->dims[as->n_dims - 2], k = as->dims[as->n_dims - 1],
		nn = bs->dims[bs->n_dims - 1];
	int64_t count = m * nn, mats = count ? shape_numel(&sh[n->output]) / count : 0;
	bool one_b = bs->n_dims == 2;
	const float *a = read_value(t, w, n->inputs[0]), *b = read_value(t, w, n->inputs[1]);
	float *da = grad_of(t, w, grad, n->inputs[0]), *db = grad_of(t, w, grad, n->inputs[1]);
	for (int64_t p = 0; p < mats; p++) {
		const float *ap = a + p * m * k, *bp = b + (one_b ? 0 : p * k * nn),
			    *dc = dy + p * m * nn;
		for (int64_t i = 0; da && i < m; i++)
			for (int64_t j = 0; j < k; j++) {
				double acc = 0;
				for (int64_t c = 0; c < nn; c++)
					acc += (double)dc[i * nn + c] * bp[j * nn + c];
				da[p * m * k + i * k + j] += (float)acc;
			}
		float *dbp = db ? db + (one_b ? 0 : p * k * nn) : NULL;
		for (int64_t j = 0; dbp && j < k; j++)
			for (int64_t c = 0; c < nn; c++) {
				double acc = 0;
				for (int64_t i = 0; i < m; i++)
					acc += (double)ap[i * k + j] * dc[i * nn + c];
				dbp[j * nn + c] += (float)acc;
			}
	}
}

/* Pad (constant, pads >= 0): each input element's gradient is dy at its place
 * in the padded output. */
static void pad_backward(const struct node *n, const struct shape *xs, const float *dy, float *dx)
{
	int r = xs->n_dims;
	int64_t ystride[GRAPH_MAX_DIMS], off = 0;
	int64_t stride = 1;
	for (int d = r - 1; d >= 0; d--) {
		ystride[d] = stride;
		off += n->a.ints[d] * stride;
		stride *= xs->dims[d] + n->a.ints[d] + n->a.ints[r + d];
	}
	for (int64_t i = 0; i < shape_numel(xs); i++) {
		int64_t rest = i, y = off;
		for (int d = r - 1; d >= 0; d--) {
			y += rest % xs->dims[d] * ystride[d];
			rest /= xs->dims[d];
		}
		dx[i] += dy[y];
	}
}

/* ReduceMean: each input element gets its group's dy over the group's size. */
/* ReduceSum: dy to every reduced x; Max and Min: to the x that is the
 * extremum (each of a tie); L2: dy x / y (0 where y is). */
static void reduce_backward(const struct node *n, const struct shape *xs, const float *x,
			    const float *y, const float *dy, float *dx)
{
	int nd = xs->n_dims;
	int64_t kept[GRAPH_MAX_DIMS];
	bool red[GRAPH_MAX_DIMS];
	engine_reduced_dims(n, xs, red);
	for (int d = 0; d < nd; d++)
		kept[d] = red[d] ? 1 : xs->dims[d];
	for (int64_t i = 0; i < shape_numel(xs); i++) {
		int64_t o = shape_broadcast_src(kept, xs->dims, nd, i);
		switch (n->op) {
		case OP_REDUCESUM:
			dx[i] += dy[o];
			break;
		case OP_REDUCEMAX:
		case OP_REDUCEMIN:
			if (x[i] == y[o])
				dx[i] += dy[o];
			break;
		case OP_REDUCESUMSQUARE:
			dx[i] += 2.0f * x[i] * dy[o];
			break;
		default: /* OP_REDUCEL2 */
			if (y[o] > 0.0f)
				dx[i] += dy[o] * x[i] / y[o];
			break;
		}
	}
}

static void reducemean_backward(const struct node *n, const struct shape *xs, const float *dy,
				float *dx)
{
	int nd = xs->n_dims;
	int64_t kept[GRAPH_MAX_DIMS], group = 1;
	bool red[GRAPH_MAX_DIMS];
	engine_reduced_dims(n, xs, red);
	for (int d = 0; d < nd; d++) {
		kept[d] = red[d] ? 1 : xs->dims[d];
		group *= red[d] ? xs->dims[d] : 1;
	}
	float inv = group ? 1.0f / (float)group : 0.0f;
	for (int64_t i = 0; i < shape_numel(xs); i++)
		dx[i] += dy[shape_broadcast_src(kept, xs->dims, nd, i)] * inv;
}

static void backward_node(const struct tnet *t, struct tnet_ws *w, float *grad, int i)
{
	const struct graph *g = t->g;
	const struct node *n = &g->nodes[i];
	const struct shape *sh = w->shapes;
	const float *dy = w->grad[t->rep[n->output]];
	/* a fused activation's output shares the buffer: its gradient is dy */
	const float *x = n->inputs[0] >= 0 ? read_value(t, w, n->inputs[0]) : NULL;
	float *dx = grad_of(t, w, grad, n->inputs[0]);
	int l = t->layer_of_node[i];

	switch (n->op) {
	case OP_CONV: {
		struct conv2d_params p;
		const float *wt = l >= 0 && t->wl[l].bits ? t->wl[l].wq : read_value(t, w, n->inputs[1]);
		float *dw = grad_of(t, w, grad, n->inputs[1]);
		float *db = n->n_inputs > 2 ? grad_of(t, w, grad, n->inputs[2]) : NULL;
		conv_params(n, &sh[n->inputs[0]], &sh[n->inputs[1]], &sh[n->output], &p);
		if (dx)
			conv2d_backward_data_f32(t->k, &p, dy, wt, dx, w->scratch);
		if (dw || db)
			conv2d_backward_filter_f32(t->k, &p, x, dy, dw, db, w->scratch);
		break;
	}
	case OP_RNN:
	case OP_GRU:
	case OP_LSTM: {
		/* the forward again, recording its gates and states, then back
		 * through time */
		struct rnn_params p;
		struct rnn_tensors in;
		const float *ins[RNN_N_IN];
		float *gi[RNN_N_IN];
		for (int k = 0; k < RNN_N_IN; k++) {
			int v = n->n_inputs > k ? n->inputs[k] : -1;
			ins[k] = v >= 0 ? read_value(t, w, v) : NULL;
			gi[k] = v >= 0 ? grad_of(t, w, grad, v) : NULL;
		}
		int rq = t->r_slot_of_node[i];
		if (rq >= 0 && t->wl[rq].bits)
			ins[RNN_IN_R] = t->wl[rq].wq; /* fake-quantized: its gradient passes straight */
		engine_rnn_params(n, sh, &p);
		engine_rnn_tensors(n, ins, &in);
		enum rnn_out out = (enum rnn_out)n->a.rnn_output;
		float *tape = w->scratch, *rest = tape + rnn_tape_pad(&p);
		rnn_f32__ref(&p, &in, NULL, out, rest, tape);
		const struct rnn_grads gr = {gi[RNN_IN_X], gi[RNN_IN_W], gi[RNN_IN_R], gi[RNN_IN_B],
					     gi[RNN_IN_H0], gi[RNN_IN_C0], gi[RNN_IN_P]};
		rnn_backward_f32(t->k, &p, &in, tape, dy, out, &gr, rest);
		break;
	}
	case OP_CONVTRANSPOSE: {
		/* the adjoint of the Conv p: dx = p(dy); dw as p's filter gradient
		 * with the roles of input and output swapped */
		struct conv2d_params p;
		engine_convtranspose_params(n, sh, &p);
		const float *wt = read_value(t, w, n->inputs[1]);
		float *dw = grad_of(t, w, grad, n->inputs[1]);
		float *db = n->n_inputs > 2 && n->inputs[2] >= 0 ? grad_of(t, w, grad, n->inputs[2])
								   : NULL;
		if (dx) {
			const struct shape *xs = &sh[n->inputs[0]];
			float *tmp = w->scratch;
			conv2d_forward_f32(t->k, &p, dy, wt, NULL, tmp, tmp + convt_dx_floats(xs));
			for (int64_t j = 0; j < shape_numel(xs); j++)
				dx[j] += tmp[j];
		}
		if (dw)
			conv2d_backward_filter_f32(t->k, &p, dy, x, dw, NULL, w->scratch);
		if (db) {
			const struct shape *ys = &sh[n->output];
			int64_t plane = ys->dims[2] * ys->dims[3];
			for (int64_t r = 0; r < ys->dims[0] * ys->dims[1]; r++) {
				double s = 0.0;
				for (int64_t j = 0; j < plane; j++)
					s += dy[r * plane + j];
				db[r % ys->dims[1]] += (float)s;
			}
		}
		break;
	}
	case OP_GEMM: {
		int m, nn, k, cm, cn;
		const float *b = l >= 0 && t->wl[l].bits ? t->wl[l].wq : read_value(t, w, n->inputs[1]);
		float *dc = n->n_inputs > 2 ? grad_of(t, w, grad, n->inputs[2]) : NULL;
		gemm_dims(n, sh, &m, &nn, &k, &cm, &cn);
		gemm_backward_f32(t->k, m, nn, k, n->a.alpha, x, n->a.trans_a, b, n->a.trans_b,
				  n->a.beta, cm, cn, dy, dx, grad_of(t, w, grad, n->inputs[1]), dc,
				  w->scratch);
		break;
	}
	case OP_MATMUL: {
		const struct shape *ws = &sh[n->inputs[1]];
		if (!g->values[n->inputs[1]].data) {
			matmul_act_backward(t, w, grad, n, dy);
			break;
		}
		int k = (int)ws->dims[0], nn = (int)ws->dims[1];
		int rows = (int)(shape_numel(&sh[n->inputs[0]]) / (k ? k : 1));
		const float *b = l >= 0 && t->wl[l].bits ? t->wl[l].wq : read_value(t, w, n->inputs[1]);
		gemm_backward_f32(t->k, rows, nn, k, 1.0f, x, false, b, false, 0.0f, 1, 1, dy, dx,
				  grad_of(t, w, grad, n->inputs[1]), NULL, w->scratch);
		break;
	}
	case OP_RELU:
		if (dx)
			clip_backward_f32__ref(shape_numel(&sh[n->output]), x, 0.0f, INFINITY, dy, dx);
		break;
	case OP_CLIP:
		if (dx)
			clip_backward_f32__ref(shape_numel(&sh[n->output]), x, n->a.clip_min,
					       n->a.clip_max, dy, dx);
		break;
	case OP_BATCHNORM: {
		const struct shape *xs = &sh[n->inputs[0]];
		int64_t inner = 1;
		for (int d = 2; d < xs->n_dims; d++)
			inner *= xs->dims[d];
		bool batch = t->bn == TNET_BN_BATCH;
		const float *mean = batch ? w->bn_mean + t->bn_off[i] : read_value(t, w, n->inputs[3]);
		const float *var = batch ? w->bn_var + t->bn_off[i] : read_value(t, w, n->inputs[4]);
		batchnorm_backward_f32__ref((int)xs->dims[0], (int)xs->dims[1], inner, x,
					    read_value(t, w, n->inputs[1]), mean, var, n->a.epsilon,
					    batch, dy, dx, grad_of(t, w, grad, n->inputs[1]),
					    grad_of(t, w, grad, n->inputs[2]));
		break;
	}
	case OP_MAXPOOL:
	case OP_AVGPOOL: {
		struct pool2d_params p;
		if (!dx)
			break;
		pool_params(n, &sh[n->inputs[0]], &sh[n->output], &p);
		if (n->op == OP_MAXPOOL)
			maxpool2d_backward_f32__ref(&p, x, dy, dx);
		else
			avgpool2d_backward_f32__ref(&p, dy, dx);
		break;
	}
	case OP_GLOBALAVGPOOL: {
		const struct shape *xs = &sh[n->inputs[0]];
		int64_t hw = 1;
		for (int d = 2; d < xs->n_dims; d++)
			hw *= xs->dims[d];
		if (dx)
			global_avgpool_backward_f32__ref((int)xs->dims[0], (int)xs->dims[1], (int)hw,
							 dy, dx);
		break;
	}
	case OP_ADD:
	case OP_SUM: {
		const struct shape *ys = &sh[n->output];
		for (int k = 0; k < n->n_inputs; k++) {
			int64_t dims[GRAPH_MAX_DIMS];
			float *da = grad_of(t, w, grad, n->inputs[k]);
			if (!da)
				continue;
			shape_right_align(&sh[n->inputs[k]], ys->n_dims, dims);
			add_backward_f32__ref(dims, ys->dims, ys->n_dims, dy, da);
		}
		break;
	}
	case OP_CONCAT: {
		const struct shape *ys = &sh[n->output];
		int axis = n->a.axis < 0 ? n->a.axis + ys->n_dims : n->a.axis;
		int64_t outer, dim, inner, axis_dims[GRAPH_MAX_INPUTS];
		float *dxs[GRAPH_MAX_INPUTS];
		axis_view(ys, axis, &outer, &dim, &inner);
		for (int k = 0; k < n->n_inputs; k++) {
			axis_dims[k] = sh[n->inputs[k]].dims[axis];
			dxs[k] = grad_of(t, w, grad, n->inputs[k]);
		}
		concat_backward_f32__ref(n->n_inputs, dxs, axis_dims, outer, inner, dy);
		break;
	}
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX: {
		int64_t outer, dim, inner;
		if (!dx)
			break;
		softmax_view(g, n, &sh[n->output], &outer, &dim, &inner);
		if (n->op == OP_SOFTMAX)
			softmax_backward_f32__ref(outer, dim, inner, w->act[n->output], dy, dx);
		else
			logsoftmax_backward_f32__ref(outer, dim, inner, w->act[n->output], dy, dx);
		break;
	}
	case OP_TRANSPOSE: {
		const struct shape *xs = &sh[n->inputs[0]], *ys = &sh[n->output];
		int64_t perm[GRAPH_MAX_DIMS], inv[GRAPH_MAX_DIMS];
		if (!dx)
			break;
		for (int d = 0; d < xs->n_dims; d++)
			perm[d] = n->a.n_ints ? n->a.ints[d] : xs->n_dims - 1 - d;
		for (int d = 0; d < xs->n_dims; d++)
			inv[perm[d]] = d;
		transpose_f32__ref(ys->n_dims, ys->dims, inv, dy, w->scratch);
		for (int64_t j = 0; j < shape_numel(xs); j++)
			dx[j] += w->scratch[j];
		break;
	}
	case OP_RESIZE: {
		const struct shape *xs = &sh[n->inputs[0]], *ys = &sh[n->output];
		if (!dx)
			break;
		if (n->a.resize_linear) {
			struct resize_linear_plan pl;
			engine_resize_linear_plan(n, xs, ys, w->scratch, &pl);
			resize_linear_backward_f32__ref(pl.n * pl.c, pl.hi, pl.wi, 1, pl.ho, pl.wo,
							&pl.th, &pl.tw, dy, dx);
			break;
		}
		int64_t *maps = (int64_t *)w->scratch;
		engine_resize_maps(n, xs, ys, maps);
		resize_nearest_backward_f32__ref(xs->n_dims, xs->dims, ys->dims, maps, dy, dx);
		break;
	}
	case OP_EXPAND: /* a constant repeated: input 1 gives only its count */
		break;
	case OP_MUL:
	case OP_SUB:
	case OP_DIV:
	case OP_MAX:
	case OP_MIN:
		binary_backward(t, w, grad, n, dy);
		break;
	case OP_REDUCEMEAN:
		if (dx)
			reducemean_backward(n, &sh[n->inputs[0]], dy, dx);
		break;
	case OP_REDUCESUM:
	case OP_REDUCEMAX:
	case OP_REDUCEMIN:
	case OP_REDUCEL2:
	case OP_REDUCESUMSQUARE:
		if (dx)
			reduce_backward(n, &sh[n->inputs[0]], x, read_value(t, w, n->output), dy, dx);
		break;
	case OP_SLICE: { /* count elements from first by step along the axis */
		int64_t outer, dim, inner, first = n->a.ints[0], count = n->a.ints[1],
						   step = n->a.ints[2];
		if (!dx)
			break;
		axis_view(&sh[n->inputs[0]], n->a.axis, &outer, &dim, &inner);
		for (int64_t o = 0; o < outer; o++)
			for (int64_t c = 0; c < count; c++)
				for (int64_t k = 0; k < inner; k++)
					dx[(o * dim + first + c * step) * inner + k] +=
						dy[(o * count + c) * inner + k];
		break;
	}
	case OP_PAD:
		if (dx)
			pad_backward(n, &sh[n->inputs[0]], dy, dx);
		break;
	case OP_LAYERNORM:
		if (dx)
			layernorm_backward(n, &sh[n->inputs[0]], x, read_value(t, w, n->inputs[1]),
					   shape_numel(&sh[n->inputs[1]]), dy, dx);
		break;
	default:
		if (is_function(n->op)) {
			if (dx)
				unary_backward(n, shape_numel(&sh[n->output]), x, w->act[n->output],
					       dy, dx);
			break;
		}
		/* reshape-like ops (has_backward): the same elements in the same order */
		if (dx)
			for (int64_t j = 0; j < shape_numel(&sh[n->output]); j++)
				dx[j] += dy[j];
		break;
	}
}

void tnet_backward(const struct tnet *t, struct tnet_ws *w, float *grad)
{
	const struct graph *g = t->g;
	int lr = t->rep[t->logits];
	for (int v = 0; v < g->n_values; v++)
		if (w->grad[v] && v != lr)
			memset(w->grad[v], 0, sizeof(float) * (size_t)shape_numel(&w->shapes[v]));
	for (int i = g->n_nodes - 1; i >= 0; i--) {
		const struct node *n = &g->nodes[i];
		if (t->steps[i] != STEP_RUN || !t->needs_grad[n->output])
			continue;
		int r = t->rep[n->output];
		if (r == n->output || t->fused[i] >= 0)
			ste_act(t, w, r);
		if (t->fused[i] >= 0) { /* the clamp's backward, from its output */
			float lo, hi;
			act_bounds(&g->nodes[t->fused[i]], &lo, &hi);
			clip_mask_inplace(shape_numel(&w->shapes[r]), w->act[r], lo, hi, w->grad[r]);
		}
		backward_node(t, w, grad, i);
	}
}

void tnet_bn_update(struct tnet *t, const float *mean, const float *var, int batch,
		    float momentum)
{
	struct graph *g = t->g;
	for (int i = 0; i < g->n_nodes; i++) {
		if (t->bn_off[i] < 0)
			continue;
		const struct node *n = &g->nodes[i];
		const struct shape *xs = &g->values[n->inputs[0]].shape; /* at batch 1 */
		int64_t count = batch, c = shape_numel(&g->values[n->inputs[1]].shape);
		for (int d = 2; d < xs->n_dims; d++)
			count *= xs->dims[d];
		float *rm = g->values[n->inputs[3]].data, *rv = g->values[n->inputs[4]].data;
		double unbias = count > 1 ? (double)count / (double)(count - 1) : 1.0;
		for (int64_t ch = 0; ch < c; ch++) {
			int64_t at = t->bn_off[i] + ch;
			rm[ch] = (float)((1.0 - momentum) * rm[ch] + momentum * mean[at]);
			rv[ch] = (float)((1.0 - momentum) * rv[ch] + momentum * var[at] * unbias);
		}
	}
}

void tnet_bn_running(const struct tnet *t, float *out, const float *in)
{
	const struct graph *g = t->g;
	for (int i = 0; i < g->n_nodes; i++) {
		if (t->bn_off[i] < 0)
			continue;
		const struct node *n = &g->nodes[i];
		int64_t c = shape_numel(&g->values[n->inputs[1]].shape), at = t->bn_off[i];
		float *rm = g->values[n->inputs[3]].data, *rv = g->values[n->inputs[4]].data;
		if (out) {
			memcpy(out + at, rm, sizeof(float) * (size_t)c);
			memcpy(out + t->n_bn + at, rv, sizeof(float) * (size_t)c);
		} else {
			memcpy(rm, in + at, sizeof(float) * (size_t)c);
			memcpy(rv, in + t->n_bn + at, sizeof(float) * (size_t)c);
		}
	}
}

int64_t tnet_act_quant_floats(const struct tnet *t)
{
	return (int64_t)t->g->n_values * 7;
}

void tnet_act_quant_state(struct tnet *t, float *out, const float *in)
{
	for (int v = 0; v < t->g->n_values; v++) {
		struct act_quant *a = &t->aq[v];
		if (out) {
			float *o = out + 7 * (int64_t)v;
			o[0] = a->on;
			o[1] = a->scale;
			o[2] = a->inv_scale;
			o[3] = (float)a->zero;
			o[4] = (float)a->qmax;
			o[5] = a->lo;
			o[6] = a->hi;
			continue;
		}
		const float *i = in + 7 * (int64_t)v;
		/* the set of quantized buffers is fixed: only their ranges come back */
		if (!a->on || i[0] == 0.0f)
			continue;
		a->scale = i[1];
		a->inv_scale = i[2];
		a->zero = (int32_t)i[3];
		a->qmax = (int32_t)i[4];
		a->lo = i[5];
		a->hi = i[6];
	}
}
