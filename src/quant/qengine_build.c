/* qengine_build.c - the INT8 engine, first half: building a quantized model.
 *
 * The engine is split as TFLite Micro splits Init/Prepare from Eval: this file
 * lowers a graph, a policy and calibration statistics into a read-only qmodel
 * (and frees it); qengine_run.c prepares and runs engines on it;
 * qengine_internal.h holds the structures the two share, and qweight_cache.c
 * the rounded weights that builds reuse. The steps and invariants below are
 * the whole engine's.
 *
 * Build (qmodel_build), in graph order:
 *   1. each node becomes a step: a native integer kernel (CONV, DWCONV, FC, CLAMP,
 *      MAXPOOL, AVGPOOL, GAP, ADD, MUL, LUT, RESHAPE) or FALLBACK (dequantize,
 *      FP32 kernel, quantize). A Relu/Clip that is the only reader of a
 *      Conv/Gemm/Add/Sub/Mul output is fused into it as a clamp: the step writes
 *      the activation's value. Sub of two tensors is an ADD whose second
 *      input's scale is negated (exact in float; TFLite's integer Sub in Q31).
 *      MUL is TFLite's integer Mul, of two tensors of one shape or of an
 *      [N,C,H,W] tensor by a [N,C,1,1] gate (squeeze-excite). An Add (or a
 *      Sub, activation - constant) of an activation and a constant that
 *      broadcasts to one image is an ADD whose second operand is a tile: the
 *      constant laid out as one image of the activation, quantized to 8 bits
 *      over its own range (add_const_tile); when the activation is a MatMul
 *      product that only it reads and the constant lies along the last axis
 *      (a Linear's bias), the Add is folded into the MatMul's GEMM instead
 *      (bias_add_after): no step of its own, the constant in the int32
 *      bias, the GEMM writing the Add's output. LUT is any
 *      element-wise function of one uint8 tensor (Sigmoid, Tanh, HardSigmoid,
 *      HardSwish, LeakyRelu, Sqrt, Erf, Exp, Neg, Reciprocal, Abs; Add, Sub,
 *      Mul, Div, Pow and PRelu with a constant scalar): a 256-entry table made
 *      once in step 4 from the input's and the output's quantization, through
 *      the FP32 engine's own scalar function, so it gives exactly what the
 *      fallback (dequantize, FP32 kernel, quantize) would. ReduceMean over the
 *      two spatial axes of a 4-D tensor, or over the tokens of a [N, T, D]
 *      one, is a GAP. MatMul of two activations (QMATMUL), Transpose,
 *      Softmax and LayerNormalization over the last axis run in integers
 *      (see layout_plan for their 4-D layout; a QMATMUL reads and writes
 *      through the head Transposes around it in place, mm_views). Everything else (Div of two
 *      tensors, Pad, Sum, LRN, Concat...) is FALLBACK.
 *      Graph inputs get a QUANTIZE step first; uint8 graph outputs a DEQUANT
 *      step last.
 *   2. a value produced by FC or FALLBACK stays float when it is a graph output
 *      or only fallbacks read it (so the logits are never requantized);
 *      everything else is uint8, 4-D values in NHWC.
 *      A folded MatMul product stays a quantization group (a .presso file
 *      stores it) with no buffer (qvalue.folded).
 *   3. ops that do not change the real values (CLAMP, pools, RESHAPE, TRANSPOSE) join their
 *      input's quantization group (union-find): one scale/zero point per group,
 *      taken from the calibration range of the group's head (the value a
 *      quantizing step writes) at the group's bit width: the largest act_bits of
 *      the layers that read any of its values, 8 if none does.
 *   4. LUT tables and MUL/ADD requantization constants from the groups' scales;
 *      layers: weights quantized per output channel (quant.c), optionally
 *      bias-corrected, reordered for NHWC im2col ([c_out][kh][kw][c_in/g]),
 *      packed once for the chosen kernels (a GEMM's weights in [-8, 7] two to
 *      a byte where the path can: q8_gemm_s4_for); int32 biases with the input
 *      zero point folded in (kernels_q8.h); Q31 multipliers s_in * s_w[c] / s_out.
 *   5. buffer lifetimes in step indices, for the arena planner.
 * Run (qengine_run.c): qengine_create places every buffer in one arena by its
 * lifetime, for the largest batch; qengine_run: shapes for the batch, then each
 * step on arena pointers.
 */
#include "quant/qengine.h"
#include "quant/qengine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "model/engine.h"
#include "quant/gptq.h"
#include "quant/quant.h"

/* An int32 bias must leave headroom for the accumulation (kernels_q8.h). */
#define BIAS_LIMIT (1 << 30)
/* K bound of the int32 accumulator proof in kernels_q8.h. */
#define MAX_GEMM_K Q8_K_MAX

/* --- small helpers -------------------------------------------------------- */

/* Whether GEMM weights in [-8, 7] go two to a byte where the kernels can
 * (qengine.h: QENGINE_PACK_W4_ENV). */
static bool pack_w4(void)
{
	const char *env = getenv(QENGINE_PACK_W4_ENV);
	return !env || strcmp(env, "0") != 0;
}

static int find(struct qvalue *v, int x)
{
	while (v[x].group != x) {
		v[x].group = v[v[x].group].group;
		x = v[x].group;
	}
	return x;
}

static void unite(struct qvalue *v, int a, int b)
{
	a = find(v, a);
	b = find(v, b);
	if (a != b)
		v[b].group = a;
}

static bool is_graph_output(const struct graph *g, int v)
{
	for (int i = 0; i < g->n_outputs; i++)
		if (g->outputs[i] == v)
			return true;
	return false;
}

static bool is_reshape_op(enum op_type op)
{
	return op == OP_FLATTEN || op == OP_RESHAPE || op == OP_SQUEEZE || op == OP_UNSQUEEZE ||
	       op == OP_IDENTITY;
}

/* The Relu/Clip fused into node i (Conv/Gemm as in the FP32 engine, and Add,
 * Sub, Mul). */
static int fused_act(const struct graph *g, int i)
{
	const struct node *n = &g->nodes[i];
	if (n->op != OP_ADD && n->op != OP_SUB && n->op != OP_MUL)
		return graph_fused_activation(g, i);
	const struct value *v = &g->values[n->output];
	if (v->n_consumers != 1 || is_graph_output(g, n->output))
		return -1;
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *m = &g->nodes[j];
		if ((m->op == OP_RELU || m->op == OP_CLIP) && m->inputs[0] == n->output)
			return j;
	}
	return -1;
}

static const struct value *input_value(const struct graph *g, const struct node *n, int k)
{
	return k < n->n_inputs && n->inputs[k] >= 0 ? &g->values[n->inputs[k]] : NULL;
}

/* For a two-input op with one constant scalar operand (of rank no higher than
 * the other's, so the output has the activation's shape and layout): the
 * input that is the activation; else -1. */
static int scalar_operand_input(const struct graph *g, const struct node *n)
{
	enum f32_binary f;
	if (n->n_inputs != 2 || !engine_binary_fn(n->op, &f))
		return -1;
	for (int k = 0; k < 2; k++) {
		const struct value *x = input_value(g, n, k), *c = input_value(g, n, 1 - k);
		if (x && c && !value_is_const(x) && c->data && shape_numel(&c->shape) == 1 &&
		    c->shape.n_dims <= x->shape.n_dims && (n->op != OP_PRELU || k == 0))
			return k;
	}
	return -1;
}

/* Add, or Sub as activation - constant, of a batched activation and a constant
 * of more than one element that broadcasts to one image of it (a bias of the
 * last axis, a per-channel [C,1,1] offset, a position embedding [1,T,D]; never
 * across images): the input that is the activation, else -1. */
static int const_operand_input(const struct graph *g, const struct node *n)
{
	if ((n->op != OP_ADD && n->op != OP_SUB) || n->n_inputs != 2)
		return -1;
	for (int k = 0; k < 2; k++) {
		const struct value *x = input_value(g, n, k), *c = input_value(g, n, 1 - k);
		if (!x || !c || value_is_const(x) || !x->batched || !c->data ||
		    (n->op == OP_SUB && k != 0) || shape_numel(&c->shape) <= 1 ||
		    c->shape.n_dims > x->shape.n_dims)
			continue;
		int off = x->shape.n_dims - c->shape.n_dims;
		bool fits = true;
		for (int j = 0; j < c->shape.n_dims; j++) {
			int64_t cd = c->shape.dims[j], xd = x->shape.dims[j + off];
			if (cd != 1 && (cd != xd || j + off == 0))
				fits = false;
		}
		if (fits)
			return k;
	}
	return -1;
}

/* The bias Add folded into MatMul node i (see build's step 1): the reader j of
 * the product when it is the only one and an ADD of a constant along the
 * product's last axis only ([N] or [1,..,1,N]: one value per output column),
 * else -1. */
static int bias_add_after(const struct graph *g, const enum qkind *kind, int i)
{
	const struct node *n = &g->nodes[i];
	if (kind[i] != QK_FC || n->op != OP_MATMUL || g->values[n->output].n_consumers != 1 ||
	    is_graph_output(g, n->output))
		return -1;
	int64_t n_out = g->values[n->inputs[1]].shape.dims[1];
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *a = &g->nodes[j];
		int k = kind[j] == QK_ADD ? const_operand_input(g, a) : -1;
		if (k < 0 || a->inputs[k] != n->output)
			continue;
		const struct shape *cs = &g->values[a->inputs[1 - k]].shape;
		return shape_numel(cs) == n_out && cs->dims[cs->n_dims - 1] == n_out ? j : -1;
	}
	return -1;
}

/* Mul of an [N,C,H,W] activation by an [N,C,1,1] one (a squeeze-excite gate):
 * per pixel, a row of C channels times the image's gate (both NHWC). */
static bool mul_by_gate(const struct graph *g, const struct node *n)
{
	const struct value *a = input_value(g, n, 0), *b = input_value(g, n, 1);
	if (!a || !b || value_is_const(a) || value_is_const(b))
		return false;
	for (int k = 0; k < 2; k++) {
		const struct shape *x = k ? &b->shape : &a->shape, *s = k ? &a->shape : &b->shape;
		if (x->n_dims == 4 && s->n_dims == 4 && x->dims[0] == s->dims[0] &&
		    x->dims[1] == s->dims[1] && s->dims[2] == 1 && s->dims[3] == 1 &&
		    x->dims[2] * x->dims[3] > 1 && a->batched == b->batched)
			return true;
	}
	return false;
}

/* Two activations of one shape (and so one layout), both batched or neither. */
static bool same_shape(const struct value *a, const struct value *b)
{
	if (!a || !b || value_is_const(a) || value_is_const(b) || a->shape.n_dims != b->shape.n_dims ||
	    a->batched != b->batched)
		return false;
	return memcmp(a->shape.dims, b->shape.dims, sizeof(int64_t) * (size_t)a->shape.n_dims) == 0;
}

/* ReduceMean over the two spatial axes of a 4-D tensor: GlobalAveragePool. */
static bool reduce_is_gap(const struct node *n, const struct value *x)
{
	if (x->shape.n_dims != 4 || n->a.n_ints != 2)
		return false;
	bool h = false, w = false;
	for (int i = 0; i < 2; i++) {
		int64_t a = n->a.ints[i] < 0 ? n->a.ints[i] + 4 : n->a.ints[i];
		h |= a == 2;
		w |= a == 3;
	}
	return h && w;
}

/* --- ops between activations and per-row ops in integers --------------------
 * MatMul of two activations (QMATMUL), Transpose, Softmax and
 * LayerNormalization over the last axis, and ReduceMean over the tokens of a
 * [N, T, D] tensor (a GAP) run in integers. Their 4-D values are kept in
 * logical (row-major) order rather than NHWC: layout_plan() marks them, and
 * the element-wise steps that share a value with them, so that both inputs of
 * an Add or Mul agree; should a marked value also feed or come from a step
 * that needs NHWC (a convolution, a pool), the new steps touching 4-D values
 * fall back to FP32 instead. */

/* MatMul of two activations the engine runs: ranks >= 2, k within the int32
 * proof, and either the same batch dimensions or B a plain matrix. */
static bool matmul_of_activations(const struct value *a, const struct value *b)
{
	if (!a || !b || value_is_const(a) || value_is_const(b) || a->shape.n_dims < 2 ||
	    b->shape.n_dims < 2 || a->shape.dims[a->shape.n_dims - 1] > MAX_GEMM_K)
		return false;
	if (b->shape.n_dims == 2 && !b->batched)
		return true;
	if (a->shape.n_dims != b->shape.n_dims || a->batched != b->batched)
		return false;
	return memcmp(a->shape.dims, b->shape.dims, sizeof(int64_t) * (size_t)(a->shape.n_dims - 2)) == 0;
}

/* The last axis of a rank-r tensor, given as axis (negative counts from the end). */
static bool is_last_axis(int64_t axis, int rank)
{
	return axis == -1 || axis == rank - 1;
}

/* LayerNormalization over the last axis with constant scale and bias of one
 * element or of the axis' length. */
static bool layernorm_is_rowwise(const struct graph *g, const struct node *n)
{
	const struct value *x = input_value(g, n, 0), *sc = input_value(g, n, 1),
			   *bi = input_value(g, n, 2);
	if (!x || x->shape.n_dims < 1 || !is_last_axis(n->a.axis, x->shape.n_dims) || !sc ||
	    !sc->data || (bi && !bi->data))
		return false;
	int64_t inner = x->shape.dims[x->shape.n_dims - 1];
	int64_t ns = shape_numel(&sc->shape), nb = bi ? shape_numel(&bi->shape) : 1;
	return (ns == 1 || ns == inner) && (nb == 1 || nb == inner);
}

/* ReduceMean over axis 1 of a [N, T, D] tensor: the mean over T of each of D
 * channels, which is a GAP with T pixels of D channels. */
static bool reduce_is_token_mean(const struct node *n, const struct value *x)
{
	return x->shape.n_dims == 3 && n->a.n_ints == 1 && (n->a.ints[0] == 1 || n->a.ints[0] == -2);
}

static bool kind_wants_logical(enum qkind k)
{
	return k == QK_QMATMUL || k == QK_TRANSPOSE || k == QK_SOFTMAX || k == QK_LAYERNORM;
}

static int mm_view_reader(const struct graph *g, const enum qkind *kind, int t);
static int mm_view_writer(const struct graph *g, const enum qkind *kind, int j);

/* A 4-D value that node i needs in logical order: its output (k < 0), or its
 * input k. An FC of a 4-D input (ConvNeXt's Linear over [N,H,W,C]) reads
 * rows of its last axis, so both are logical. A Transpose between
 * channels-first and channels-last, perm (0,2,3,1) or (0,3,1,2), wants only
 * its channels-last side logical: its other side can stay NHWC, and the two
 * are then the same bytes (nhwc_swap); unless a QMATMUL reads or writes it
 * in place, at the strides of the logical order ("MatMuls through
 * transposes" below). */
static bool wants_logical(const struct graph *g, const enum qkind *kind, int i, int k)
{
	const struct node *n = &g->nodes[i];
	if (kind[i] == QK_FC)
		return g->values[n->inputs[0]].shape.n_dims == 4;
	if (!kind_wants_logical(kind[i]))
		return false;
	int from = n->n_inputs > 0 ? g->values[n->inputs[0]].producer : -1;
	if (kind[i] == QK_TRANSPOSE && n->a.n_ints == 4 &&
	    g->values[n->inputs[0]].shape.n_dims == 4 && n->a.ints[0] == 0 &&
	    mm_view_reader(g, kind, i) < 0 && (from < 0 || mm_view_writer(g, kind, from) != i)) {
		const int64_t *p = n->a.ints;
		if (p[1] == 2 && p[2] == 3 && p[3] == 1)
			return k < 0;
		if (p[1] == 3 && p[2] == 1 && p[3] == 2)
			return k >= 0;
	}
	return true;
}

/* Transpose i between an NHWC value and the same bytes in logical order:
 * [N,C,H,W] (NHWC) to [N,H,W,C] (logical), or back. */
static bool nhwc_swap(const struct qmodel *m, const enum qkind *kind, int i)
{
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[i];
	if (kind[i] != QK_TRANSPOSE || n->a.n_ints != 4 || g->values[n->inputs[0]].shape.n_dims != 4 ||
	    n->a.ints[0] != 0)
		return false;
	const struct qvalue *x = &m->v[n->inputs[0]], *y = &m->v[n->output];
	if (x->dom != QD_U8 || y->dom != QD_U8)
		return false;
	const int64_t *p = n->a.ints;
	if (p[1] == 2 && p[2] == 3 && p[3] == 1)
		return x->nhwc && !y->nhwc;
	return p[1] == 3 && p[2] == 1 && p[3] == 2 && !x->nhwc && y->nhwc;
}

/* Steps that need their 4-D values in NHWC. */
static bool kind_wants_nhwc(const struct graph *g, int i, enum qkind k)
{
	if (k == QK_CONV || k == QK_DWCONV || k == QK_MAXPOOL || k == QK_AVGPOOL || k == QK_GAP)
		return true;
	return k == QK_MUL && mul_by_gate(g, &g->nodes[i]);
}

/* Element-wise steps: their 4-D operands share one layout, whichever it is. */
static bool kind_elementwise(enum qkind k)
{
	return k == QK_ADD || k == QK_MUL || k == QK_LUT || k == QK_CLAMP;
}

/* Marks in logical[] the 4-D values kept in logical order (see above), or
 * turns the steps that would need them into FALLBACK when a marked value
 * meets an NHWC step. act_of: the activation fused into each node, -1 none. */
static void layout_plan(const struct graph *g, enum qkind *kind, const int *act_of, bool *logical)
{
	int nn = g->n_nodes;
	for (int pass = 0; pass < 2; pass++) {
		memset(logical, 0, sizeof(bool) * (size_t)g->n_values);
		for (int i = 0; i < nn; i++) {
			const struct node *n = &g->nodes[i];
			for (int k = 0; k < n->n_inputs; k++)
				if (n->inputs[k] >= 0 && !value_is_const(&g->values[n->inputs[k]]) &&
				    wants_logical(g, kind, i, k))
					logical[n->inputs[k]] = true;
			if (wants_logical(g, kind, i, -1))
				logical[n->output] = true;
		}
		bool changed = true;
		while (changed) {
			changed = false;
			for (int i = 0; i < nn; i++) {
				if (!kind_elementwise(kind[i]) || kind_wants_nhwc(g, i, kind[i]))
					continue;
				const struct node *n = &g->nodes[i];
				int vals[GRAPH_MAX_INPUTS + 2], nv = 0;
				for (int k = 0; k < n->n_inputs; k++)
					if (n->inputs[k] >= 0 && !value_is_const(&g->values[n->inputs[k]]))
						vals[nv++] = n->inputs[k];
				vals[nv++] = n->output;
				if (act_of[i] >= 0)
					vals[nv++] = g->nodes[act_of[i]].output;
				bool any = false;
				for (int k = 0; k < nv; k++)
					any |= logical[vals[k]] && g->values[vals[k]].shape.n_dims == 4;
				for (int k = 0; any && k < nv; k++)
					if (g->values[vals[k]].shape.n_dims == 4 && !logical[vals[k]])
						logical[vals[k]] = changed = true;
			}
		}
		bool conflict = false;
		for (int i = 0; i < nn && !conflict; i++) {
			if (!kind_wants_nhwc(g, i, kind[i]))
				continue;
			const struct node *n = &g->nodes[i];
			for (int k = 0; k < n->n_inputs; k++)
				conflict |= n->inputs[k] >= 0 && logical[n->inputs[k]] &&
					    g->values[n->inputs[k]].shape.n_dims == 4;
			int out = act_of[i] >= 0 ? g->nodes[act_of[i]].output : n->output;
			conflict |= logical[out] && g->values[out].shape.n_dims == 4;
		}
		if (!conflict)
			return;
		for (int i = 0; i < nn; i++) {
			const struct node *n = &g->nodes[i];
			bool four = g->values[n->output].shape.n_dims == 4;
			for (int k = 0; k < n->n_inputs; k++)
				four |= n->inputs[k] >= 0 && g->values[n->inputs[k]].shape.n_dims == 4;
			if ((kind_wants_logical(kind[i]) || wants_logical(g, kind, i, -1)) && four)
				kind[i] = QK_FALLBACK;
		}
	}
	/* not reached: the second pass has no 4-D step that wants logical order */
}

/* Classifies node i into a step kind (before domains are known). */
static enum qkind classify(const struct graph *g, int i)
{
	const struct node *n = &g->nodes[i];
	const struct value *x = input_value(g, n, 0), *w = input_value(g, n, 1),
			   *b = input_value(g, n, 2);
	enum f32_unary fu;
	if (scalar_operand_input(g, n) >= 0)
		return QK_LUT;
	if (const_operand_input(g, n) >= 0)
		return QK_ADD;
	if (value_is_const(x))
		return QK_FALLBACK;
	switch (n->op) {
	case OP_CONV:
		if (!w || !w->data || (b && !b->data) || x->shape.n_dims != 4)
			return QK_FALLBACK;
		if (n->a.group > 1 && n->a.group == x->shape.dims[1] && w->shape.dims[0] == n->a.group &&
		    w->shape.dims[1] == 1)
			return w->shape.dims[2] * w->shape.dims[3] <= MAX_GEMM_K ? QK_DWCONV : QK_FALLBACK;
		return w->shape.dims[1] * w->shape.dims[2] * w->shape.dims[3] <= MAX_GEMM_K ? QK_CONV
											 : QK_FALLBACK;
	case OP_GEMM:
		if (!w || !w->data || n->a.trans_a || (b && !b->data) || x->shape.n_dims != 2 ||
		    x->shape.dims[1] > MAX_GEMM_K)
			return QK_FALLBACK;
		if (b) {
			int64_t nb = shape_numel(&b->shape);
			int64_t nn = n->a.trans_b ? w->shape.dims[0] : w->shape.dims[1];
			if (nb != 1 && nb != nn)
				return QK_FALLBACK;
			if (b->shape.n_dims == 2 && b->shape.dims[0] != 1)
				return QK_FALLBACK;
		}
		return QK_FC;
	case OP_MATMUL:
		if (w && !w->data && !value_is_const(w))
			return matmul_of_activations(x, w) ? QK_QMATMUL : QK_FALLBACK;
		if (!w || !w->data || w->shape.n_dims != 2 || x->shape.n_dims < 2 ||
		    w->shape.dims[0] > MAX_GEMM_K)
			return QK_FALLBACK;
		return QK_FC;
	case OP_RELU:
	case OP_CLIP:
		return QK_CLAMP;
	case OP_MAXPOOL:
		return QK_MAXPOOL;
	case OP_AVGPOOL:
		return QK_AVGPOOL;
	case OP_GLOBALAVGPOOL:
		return x->shape.n_dims == 4 ? QK_GAP : QK_FALLBACK;
	case OP_ADD:
	case OP_SUB:
		return same_shape(x, w) ? QK_ADD : QK_FALLBACK;
	case OP_MUL:
		return same_shape(x, w) || mul_by_gate(g, n) ? QK_MUL : QK_FALLBACK;
	case OP_REDUCEMEAN:
		return reduce_is_gap(n, x) || reduce_is_token_mean(n, x) ? QK_GAP : QK_FALLBACK;
	case OP_RESIZE:
		return QK_RESIZE;
	case OP_TRANSPOSE:
		return x->shape.n_dims <= 8 ? QK_TRANSPOSE : QK_FALLBACK;
	case OP_SOFTMAX:
		return is_last_axis(n->a.axis, x->shape.n_dims) ? QK_SOFTMAX : QK_FALLBACK;
	case OP_LAYERNORM:
		return layernorm_is_rowwise(g, n) ? QK_LAYERNORM : QK_FALLBACK;
	default:
		if (engine_unary_fn(n->op, &fu))
			return QK_LUT;
		return is_reshape_op(n->op) ? QK_RESHAPE : QK_FALLBACK;
	}
}

/* The table of a LUT step: each input code dequantized (as a fallback would),
 * the FP32 engine's scalar function, quantized and clamped to [lo, hi]. */
static void build_lut(const struct graph *g, const struct node *n, int x_in,
		      const struct qparams *qi, const struct qparams *qo, uint8_t lo, uint8_t hi,
		      uint8_t *table)
{
	enum f32_unary fu;
	enum f32_binary fb;
	bool unary = engine_unary_fn(n->op, &fu);
	float c = 0.0f;
	if (!unary) {
		PRESSO_CHECK(engine_binary_fn(n->op, &fb));
		c = g->values[n->inputs[1 - x_in]].data[0];
	}
	for (int q = 0; q < 256; q++) {
		float x = qi->scale * (float)(q - qi->zero), y;
		if (unary)
			y = unary_f32_scalar(fu, x, n->a.alpha, n->a.beta);
		else
			y = x_in == 0 ? binary_f32_scalar(fb, x, c) : binary_f32_scalar(fb, c, x);
		uint8_t code = quant_act_quantize(y, qo);
		table[q] = code < lo ? lo : code > hi ? hi : code;
	}
}

/* --- weights ---------------------------------------------------------------- */

/* The float weight of a layer as [n_out][k] (Gemm with trans_b=0 and MatMul are
 * transposed; alpha folded in). Caller frees. */
static float *layer_weights_nk(const struct graph *g, const struct node *n, int64_t *n_out,
			       int64_t *k)
{
	const struct value *w = &g->values[n->inputs[1]];
	int64_t total = shape_numel(&w->shape);
	float *out = malloc(sizeof(float) * (size_t)(total ? total : 1));
	if (!out)
		return NULL;
	if (n->op == OP_CONV) {
		*n_out = w->shape.dims[0];
		*k = total / *n_out;
		memcpy(out, w->data, sizeof(float) * (size_t)total);
		return out;
	}
	bool tb = n->op == OP_GEMM && n->a.trans_b;
	float alpha = n->op == OP_GEMM ? n->a.alpha : 1.0f;
	*n_out = tb ? w->shape.dims[0] : w->shape.dims[1];
	*k = tb ? w->shape.dims[1] : w->shape.dims[0];
	for (int64_t r = 0; r < *n_out; r++)
		for (int64_t c = 0; c < *k; c++)
			out[r * *k + c] = alpha * (tb ? w->data[r * *k + c] : w->data[c * *n_out + r]);
	return out;
}

static float layer_bias(const struct graph *g, const struct node *n, int64_t c)
{
	const struct value *b = input_value(g, n, 2);
	if (!b || n->op == OP_MATMUL)
		return 0.0f;
	float beta = n->op == OP_GEMM ? n->a.beta : 1.0f;
	return beta * (shape_numel(&b->shape) == 1 ? b->data[0] : b->data[c]);
}

/* Column c of the constant a bias Add (bias_add_after) adds: negated for a
 * Sub (activation - constant). */
static double folded_bias(const struct graph *g, const struct node *add, int64_t c)
{
	int k = const_operand_input(g, add);
	double b = g->values[add->inputs[1 - k]].data[c];
	return add->op == OP_SUB ? -b : b;
}

/* Output clamp of a step writing value out with an optional activation node. */
static void step_clamp(const struct graph *g, const struct qparams *qp, int act, struct qstep *st)
{
	st->lo = 0;
	st->hi = (uint8_t)quant_act_qmax(qp);
	if (act < 0)
		return;
	const struct node *a = &g->nodes[act];
	float lo = a->op == OP_RELU ? 0.0f : a->a.clip_min;
	float hi = a->op == OP_RELU ? INFINITY : a->a.clip_max;
	if (!isinf(lo)) {
		uint8_t q = quant_act_quantize(lo, qp);
		if (q > st->lo)
			st->lo = q;
	}
	if (!isinf(hi)) {
		uint8_t q = quant_act_quantize(hi, qp);
		if (q < st->hi)
			st->hi = q;
	}
}

/* The layer of step st: weights quantized (or taken from the preset), packed;
 * int32 biases and requantization to the step's output. bias_add: the Add
 * folded into the layer (bias_add_after), NULL none; its constant joins the
 * int32 bias the kernels add (L->bias), not the layer's own bias (L->bias_q,
 * what files store and exporters write), which the graph's Add still holds. */
static enum presso_status build_layer(struct qmodel *m, struct qstep *st, const struct calib *cal,
				      const struct layer_policy *lp, const struct node *bias_add)
{
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	struct qlayer *L = &m->layers[st->layer];
	int64_t n_out = 0, k = 0;
	float *w = layer_weights_nk(g, n, &n_out, &k);
	int8_t *q = malloc((size_t)(n_out * k));
	int8_t *qr = malloc((size_t)(n_out * k));
	float *scale = malloc(sizeof(float) * (size_t)n_out);
	L->bias = malloc(sizeof(int32_t) * (size_t)n_out);
	L->mult = malloc(sizeof(int32_t) * (size_t)n_out);
	L->shift = malloc((size_t)n_out);
	L->rq_scale = malloc(sizeof(float) * (size_t)n_out);
	L->bias_q = malloc(sizeof(int32_t) * (size_t)n_out);
	if (!w || !q || !qr || !scale || !L->bias || !L->mult || !L->shift || !L->rq_scale ||
	    !L->bias_q) {
		free(w);
		free(q);
		free(qr);
		free(scale);
		return status_fail(PRESSO_E_NOMEM, "out of memory quantizing '%s'", n->name);
	}
	L->node = st->node;
	L->bits = lp->bits;
	L->n_out = n_out;
	L->group = n->op == OP_CONV ? n->a.group : 1;
	if (m->preset) {
		memcpy(q, m->preset->layers[st->layer].w, (size_t)(n_out * k));
		memcpy(scale, m->preset->layers[st->layer].w_scale, sizeof(float) * (size_t)n_out);
	} else if (!qweight_cache_get(m->cache, g, n->inputs[1], lp->bits, n_out * k, n_out, q,
				      scale)) {
		const struct layer_hessian *lh = hessians_of(m->hess, g, st->node, k, L->group);
		if (!lh)
			quant_weights(w, n_out, k, lp->bits, q, scale);
		else if (gptq_quantize(w, n_out, k, lp->bits, lh, q, scale) != PRESSO_OK) {
			free(w);
			free(q);
			free(qr);
			free(scale);
			return PRESSO_E_NOMEM;
		}
		qweight_cache_put(m->cache, g, n->inputs[1], lp->bits, n_out * k, n_out, q, scale);
	}
	L->wq = q;
	L->w_scale = scale;
	L->coding = quant_weight_coding(q, n_out * k, lp->bits);

	int in_v = n->inputs[0];
	const struct qparams *qi = &m->qp[in_v];
	L->act_bits = qi->bits;
	double s_in = qi->scale;
	bool float_out = m->v[st->out].dom == QD_F32;
	const struct qparams *qo = &m->qp[st->out];

	/* bias correction: remove the mean output error the weight quantization
	 * causes, E[(Wq - W) x] = (Wq - W) E[x] with E[x] the FP32 channel means */
	const struct calib_stats *cs = cal ? &cal->v[in_v] : NULL;
	int64_t spatial = n->op == OP_CONV ? k / (g->values[n->inputs[1]].shape.dims[1]) : 1;
	int64_t cg = k / spatial; /* input channels per group */
	for (int64_t c = 0; c < n_out; c++) {
		double bias = layer_bias(g, n, c);
		if (lp->bias_correction && cs && cs->ch_mean) {
			int64_t g0 = n->op == OP_CONV ? (c / (n_out / L->group)) * cg : 0;
			double delta = 0;
			for (int64_t j = 0; j < k; j++) {
				int64_t ch = g0 + (n->op == OP_CONV ? j / spatial : j);
				if (ch < cs->n_channels)
					delta += ((double)scale[c] * q[c * k + j] - w[c * k + j]) * cs->ch_mean[ch];
			}
			if (isfinite(delta)) /* an infinite or NaN mean or weight: no correction */
				bias -= delta;
		}
		double real = s_in * (double)scale[c];
		double bq = real > 0 ? nearbyint(bias / real) : 0;
		if (bq != bq)
			bq = 0; /* a NaN bias (a NaN in the model's constants): no integer holds it */
		if (m->preset)
			bq = m->preset->layers[st->layer].bias[c];
		if (bq > BIAS_LIMIT)
			bq = BIAS_LIMIT;
		if (bq < -BIAS_LIMIT)
			bq = -BIAS_LIMIT;
		L->bias_q[c] = (int32_t)bq;
		/* the folded Add's constant in the same units */
		if (bias_add && real > 0)
			bq = fmin(fmax(bq + nearbyint(folded_bias(g, bias_add, c) / real), -BIAS_LIMIT),
				  BIAS_LIMIT);
		L->bias[c] = (int32_t)bq;
		if (float_out) {
			L->mult[c] = 0;
			L->shift[c] = 0;
			L->rq_scale[c] = 0;
		} else {
			quant_multiplier(real / qo->scale, &L->mult[c], &L->shift[c]);
			L->rq_scale[c] = (float)(real / qo->scale);
		}
	}
	if (float_out) {
		L->deq_scale = malloc(sizeof(float) * (size_t)n_out);
		if (!L->deq_scale) {
			free(w);
			free(qr);
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		for (int64_t c = 0; c < n_out; c++)
			L->deq_scale[c] = (float)(s_in * scale[c]);
	}
	free(w);

	if (st->kind == QK_DWCONV) {
		int kh = (int)g->values[n->inputs[1]].shape.dims[2];
		int kw = (int)g->values[n->inputs[1]].shape.dims[3];
		L->k = k;
		L->packed_group_bytes = m->dw->packed_bytes((int)n_out, kh, kw);
		L->packed_bytes = arena_align(L->packed_group_bytes);
		L->packed = aligned_alloc(ARENA_ALIGN, L->packed_bytes);
		if (!L->packed) {
			free(qr);
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		m->dw->pack((int)n_out, kh, kw, q, L->packed);
	} else {
		/* reorder conv weights [c][cg][kh][kw] -> [c][kh][kw][cg] for NHWC im2col */
		if (n->op == OP_CONV) {
			for (int64_t c = 0; c < n_out; c++)
				for (int64_t ci = 0; ci < cg; ci++)
					for (int64_t s = 0; s < spatial; s++)
						qr[c * k + s * cg + ci] = q[c * k + ci * spatial + s];
		} else {
			memcpy(qr, q, (size_t)(n_out * k));
		}
		/* fold the input zero point into the bias: bias - z_in * sum_k w */
		for (int64_t c = 0; c < n_out; c++) {
			int64_t sum = 0;
			for (int64_t j = 0; j < k; j++)
				sum += qr[c * k + j];
			int64_t b = (int64_t)L->bias[c] - (int64_t)qi->zero * sum;
			L->bias[c] = (int32_t)(b > INT32_MAX ? INT32_MAX : b < INT32_MIN ? INT32_MIN : b);
		}
		int64_t n_g = n_out / L->group;
		L->k = k;
		if (conv_uses_kernel(m, n)) {
			const struct shape *ws = &g->values[n->inputs[1]].shape;
			int kh = (int)ws->dims[2], kw = (int)ws->dims[3];
			L->packed_group_bytes = arena_align(
				m->conv->packed_bytes_for
					? m->conv->packed_bytes_for((int)n_out, kh, kw, (int)cg, qr)
					: m->conv->packed_bytes((int)n_out, kh, kw, (int)cg));
			L->packed_bytes = L->packed_group_bytes;
			L->packed = aligned_alloc(ARENA_ALIGN, L->packed_group_bytes);
			if (!L->packed) {
				free(qr);
				return status_fail(PRESSO_E_NOMEM, "out of memory");
			}
			m->conv->pack((int)n_out, kh, kw, (int)cg, qr, L->packed);
			free(qr); /* q stays: it is L->wq */
			return PRESSO_OK;
		}
		/* a GEMM whose layout depends on the values (4-bit weights two to a
		 * byte) says how many bytes these need; groups share one stride */
		size_t gb = 0;
		for (int gi = 0; gi < L->group; gi++) {
			const int8_t *wg = qr + gi * n_g * k;
			size_t b = m->gemm->packed_bytes_for
					   ? m->gemm->packed_bytes_for((int)n_g, (int)k, wg)
					   : m->gemm->packed_bytes((int)n_g, (int)k);
			gb = b > gb ? b : gb;
		}
		L->packed_group_bytes = arena_align(gb);
		L->packed_bytes = L->packed_group_bytes * (size_t)L->group;
		L->packed = aligned_alloc(ARENA_ALIGN, L->packed_bytes);
		if (!L->packed) {
			free(qr);
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		for (int gi = 0; gi < L->group; gi++)
			m->gemm->pack((int)n_g, (int)k, qr + gi * n_g * k,
				      (char *)L->packed + (size_t)gi * L->packed_group_bytes);
	}
	free(qr);
	return PRESSO_OK;
}

/* The constants of a QMATMUL, SOFTMAX or LAYERNORM step from the groups'
 * scales (TRANSPOSE has none: it copies codes within one group). */
static enum presso_status build_rowwise(struct qmodel *m, struct qstep *st)
{
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	const struct qparams *x = &m->qp[n->inputs[0]], *o = &m->qp[st->out];
	if (st->kind == QK_QMATMUL) {
		const struct qparams *b = &m->qp[n->inputs[1]];
		double real = (double)x->scale * b->scale / o->scale;
		st->qmm = (struct qmatmul_params){
			.a_zero = x->zero, .b_zero = b->zero, .c_zero = o->zero,
			.rq_scale = (float)real, .q31 = m->requant == REQUANT_Q31,
			.c_min = st->lo, .c_max = st->hi, .b_trans = st->qmm.b_trans,
		};
		quant_multiplier(real, &st->qmm.mult, &st->qmm.shift);
	} else if (st->kind == QK_SOFTMAX) {
		/* exp(s_x (q - q_max)) for d = q_max - q, as the FP32 kernel's exp of
		 * the dequantized difference */
		if (!(st->ftab = malloc(sizeof(float) * 256)))
			return PRESSO_E_NOMEM;
		for (int d = 0; d < 256; d++)
			st->ftab[d] = expf(-x->scale * (float)d);
		st->sm = (struct qsoftmax_params){.exp_table = st->ftab,
						  .inv_out_scale = (float)(1.0 / o->scale),
						  .c_zero = o->zero, .c_min = st->lo, .c_max = st->hi};
	} else if (st->kind == QK_LAYERNORM) {
		const struct shape *xs = &g->values[n->inputs[0]].shape;
		int64_t inner = xs->dims[xs->n_dims - 1];
		const struct value *sc = input_value(g, n, 1), *bi = input_value(g, n, 2);
		int64_t ns = shape_numel(&sc->shape), nb = bi ? shape_numel(&bi->shape) : 1;
		if (!(st->ftab = malloc(sizeof(float) * 2 * (size_t)(inner ? inner : 1))))
			return PRESSO_E_NOMEM;
		for (int64_t i = 0; i < inner; i++) {
			st->ftab[i] = (float)(sc->data[i % ns] / (double)o->scale);
			st->ftab[inner + i] =
				(float)((bi ? bi->data[i % nb] : 0.0) / (double)o->scale + o->zero);
		}
		st->ln = (struct qlayernorm_params){.in_scale = x->scale, .epsilon = n->a.epsilon,
						    .gamma_q = st->ftab, .beta_q = st->ftab + inner,
						    .c_min = st->lo, .c_max = st->hi};
	}
	return PRESSO_OK;
}

/* --- build -------------------------------------------------------------------- */

static int add_buf(struct qmodel *m, int value, bool f32)
{
	m->bufs[m->n_bufs] = (struct qbuf){.value = value, .f32 = f32, .first = 1 << 30, .last = -2};
	return m->n_bufs++;
}

static void use_buf(struct qmodel *m, int buf, int step)
{
	if (buf < 0)
		return;
	struct qbuf *b = &m->bufs[buf];
	if (step < b->first)
		b->first = step;
	if (step > b->last)
		b->last = step;
}

/* True when a RESHAPE from value a to value b keeps the bytes in the same order. */
static bool same_memory_order(const struct qmodel *m, int a, int b)
{
	const struct graph *g = m->g;
	const struct shape *sa = &g->values[a].shape, *sb = &g->values[b].shape;
	/* NHWC is the logical order when H*W = 1 or C = 1 (an image's plane) */
	bool an = m->v[a].nhwc && sa->dims[2] * sa->dims[3] > 1 && sa->dims[1] > 1;
	bool bn = m->v[b].nhwc && sb->dims[2] * sb->dims[3] > 1 && sb->dims[1] > 1;
	if (!an && !bn)
		return true;
	if (an && bn && sa->n_dims == 4 && sb->n_dims == 4)
		return memcmp(sa->dims, sb->dims, sizeof(int64_t) * 4) == 0;
	return false;
}

/* Whether node i is a Reshape of an NHWC value [N,C,H,W] to [N,C,HW] whose
 * only reader is a Transpose to [N,HW,C] (how PyTorch exports a ViT's patch
 * embedding): the NHWC bytes are then that Transpose's output in logical
 * order, and both steps alias the conv's buffer instead of copying. */
static bool nhwc_to_tokens(const struct qmodel *m, const enum qkind *kind, int i)
{
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[i];
	if (kind[i] != QK_RESHAPE || !m->v[n->inputs[0]].nhwc)
		return false;
	const struct shape *xs = &g->values[n->inputs[0]].shape, *rs = &g->values[n->output].shape;
	const struct value *r = &g->values[n->output];
	if (rs->n_dims != 3 || rs->dims[0] != xs->dims[0] || rs->dims[1] != xs->dims[1] ||
	    rs->dims[2] != xs->dims[2] * xs->dims[3] || r->n_consumers != 1 ||
	    is_graph_output(g, n->output))
		return false;
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *t = &g->nodes[j];
		if (t->n_inputs < 1 || t->inputs[0] != n->output)
			continue;
		return kind[j] == QK_TRANSPOSE && t->a.n_ints == 3 && t->a.ints[0] == 0 &&
		       t->a.ints[1] == 2 && t->a.ints[2] == 1 && m->v[t->output].dom == QD_U8 &&
		       !m->v[t->output].nhwc;
	}
	return false;
}

/* --- MatMuls through transposes -------------------------------------------
 * Attention splits heads with a Transpose of [N,T,H,D] to [N,H,T,D] before
 * q·kᵀ and attn·v (and [N,H,D,T] for kᵀ) and merges them with one after.
 * A Transpose of 4-D values that keeps the batch axis first, and whose output
 * only a QMATMUL reads (or that is the only reader of a QMATMUL's output), is
 * a strided view instead of a copy: the QMATMUL
 * reads its operand from the Transpose's input (or writes its result into
 * the Transpose's output) at the permuted strides, one kernel call per image
 * and head, and the Transpose copies nothing. A's and C's last axis must stay
 * the buffer's last (stride 1); B's may be (rows of B at a stride) or be its
 * second last (B given transposed, qmatmul_params.b_trans: the keys of kᵀ). */

/* Node t's perm when it is a Transpose of a 4-D value keeping axis 0 first. */
static const int64_t *batch_first_perm(const struct graph *g, const enum qkind *kind, int t)
{
	const struct node *n = &g->nodes[t];
	if (kind[t] != QK_TRANSPOSE || n->a.n_ints != 4 || n->a.ints[0] != 0 ||
	    g->values[n->inputs[0]].shape.n_dims != 4 || is_graph_output(g, n->output))
		return NULL;
	return n->a.ints;
}

/* The only reader of value v, -1 when it has none or more. */
static int only_reader(const struct graph *g, int v)
{
	if (g->values[v].n_consumers != 1 || is_graph_output(g, v))
		return -1;
	for (int j = 0; j < g->n_nodes; j++)
		for (int k = 0; k < g->nodes[j].n_inputs; k++)
			if (g->nodes[j].inputs[k] == v)
				return j;
	return -1;
}

/* The QMATMUL that reads Transpose t's output in place (see above), -1 none. */
static int mm_view_reader(const struct graph *g, const enum qkind *kind, int t)
{
	const int64_t *perm = batch_first_perm(g, kind, t);
	int j = perm ? only_reader(g, g->nodes[t].output) : -1;
	if (j < 0 || kind[j] != QK_QMATMUL || g->values[g->nodes[j].inputs[0]].shape.n_dims != 4 ||
	    g->values[g->nodes[j].inputs[1]].shape.n_dims != 4)
		return -1;
	if (g->nodes[j].inputs[0] == g->nodes[t].output)
		return perm[3] == 3 ? j : -1;
	return perm[3] == 3 || perm[2] == 3 ? j : -1;
}

/* The Transpose that only reads QMATMUL j's output and that j writes in place
 * (see above), -1 none. */
static int mm_view_writer(const struct graph *g, const enum qkind *kind, int j)
{
	const struct node *n = &g->nodes[j];
	if (kind[j] != QK_QMATMUL || g->values[n->output].shape.n_dims != 4 ||
	    g->values[n->inputs[1]].shape.n_dims != 4)
		return -1;
	int t = only_reader(g, n->output);
	const int64_t *perm = t >= 0 ? batch_first_perm(g, kind, t) : NULL;
	/* not a Transpose that is a view for a QMATMUL after it already */
	return perm && perm[3] == 3 && mm_view_reader(g, kind, t) < 0 ? t : -1;
}

/* Row-major element strides of a 4-D value's axes (per image: axis 0's is one
 * image's size, which the batch does not change). */
static void strides4(const struct shape *s, int64_t *st)
{
	st[3] = 1;
	for (int d = 2; d >= 0; d--)
		st[d] = st[d + 1] * s->dims[d + 1];
}

/* Sets up QMATMUL step st (node j) to read and write through the Transpose
 * views around it; *t_out: the Transpose it writes into, -1 none. */
static void mm_views(struct qmodel *m, const enum qkind *kind, int j, struct qstep *st,
		     int *t_out)
{
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[j];
	*t_out = -1;
	for (int k = 0; k < 3; k++) {
		int v = k < 2 ? n->inputs[k] : n->output;
		st->mm_val[k] = v;
		if (g->values[v].shape.n_dims == 4)
			strides4(&g->values[v].shape, st->mm_stride[k]);
	}
	for (int k = 0; k < 2; k++) {
		int t = g->values[n->inputs[k]].producer;
		if (t < 0 || mm_view_reader(g, kind, t) != j)
			continue;
		/* operand axis i is the Transpose input's axis perm[i] */
		const int64_t *perm = g->nodes[t].a.ints;
		int src = g->nodes[t].inputs[0];
		int64_t s[4];
		strides4(&g->values[src].shape, s);
		for (int i = 0; i < 4; i++)
			st->mm_stride[k][i] = s[perm[i]];
		st->mm_val[k] = src;
		st->mm_view = true;
		st->qmm.b_trans = k == 1 && perm[3] != 3;
	}
	int t = mm_view_writer(g, kind, j);
	if (t >= 0) {
		/* the Transpose's output axis i is C's axis perm[i] */
		const int64_t *perm = g->nodes[t].a.ints;
		int dst = g->nodes[t].output;
		int64_t s[4];
		strides4(&g->values[dst].shape, s);
		for (int i = 0; i < 4; i++)
			st->mm_stride[2][perm[i]] = s[i];
		st->mm_val[2] = dst;
		st->mm_view = true;
		*t_out = t;
	}
}

/* The value the step of node i writes: the output of the Relu/Clip fused
 * into it, else of the bias Add folded into it, else its own. */
static int step_output(const struct graph *g, int i, const int *act_of, const int *fold_of)
{
	if (act_of[i] >= 0)
		return g->nodes[act_of[i]].output;
	return fold_of[i] >= 0 ? g->nodes[fold_of[i]].output : g->nodes[i].output;
}

/* The qconst of a recurrent layer's R (graph_rnn_projection) at `bits`:
 * ONNX's rows of R (R^T in the graph: [dirs][hidden][gates * hidden])
 * quantized as a layer's weights, and dequantized back in the graph's layout
 * for the FP32 recurrence. */
static enum presso_status build_qconst_r(const struct graph *g, const struct node *n, int bits,
					 struct qconst *c)
{
	const struct value *rv = &g->values[n->inputs[RNN_IN_R]];
	int64_t dirs = rv->shape.dims[0], h = rv->shape.dims[1], gh = rv->shape.dims[2];
	int64_t rows = dirs * gh, total = rows * h;
	*c = (struct qconst){.value = n->inputs[RNN_IN_R], .bits = bits, .n_out = rows, .k = h};
	float *onnx_r = malloc(sizeof(float) * (size_t)total);
	c->wq = malloc((size_t)total);
	c->w_scale = malloc(sizeof(float) * (size_t)rows);
	c->deq = malloc(sizeof(float) * (size_t)total);
	if (!onnx_r || !c->wq || !c->w_scale || !c->deq) {
		free(onnx_r);
		return status_fail(PRESSO_E_NOMEM, "out of memory quantizing '%s'", rv->name);
	}
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < h; j++)
			onnx_r[r * h + j] = rv->data[rnn_rt_index(h, gh, r, j)];
	quant_weights(onnx_r, rows, h, bits, c->wq, c->w_scale);
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < h; j++)
			c->deq[rnn_rt_index(h, gh, r, j)] = (float)c->wq[r * h + j] * c->w_scale[r];
	free(onnx_r);
	c->coding = quant_weight_coding(c->wq, total, bits);
	return PRESSO_OK;
}

/* Every recurrent layer's R at its projection's weight bits (qengine.h,
 * struct qconst_view); nodes that share an R (one per output the model
 * reads) share its qconst. */
static enum presso_status build_qconsts(struct qmodel *m, const struct policy *pol,
					const int *layer_of_node)
{
	const struct graph *g = m->g;
	m->const_data = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *m->const_data);
	m->consts = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *m->consts);
	if (!m->const_data || !m->consts)
		return status_fail(PRESSO_E_NOMEM, "out of memory building the INT8 model");
	for (int i = 0; i < g->n_nodes; i++) {
		int p = graph_rnn_projection(g, i);
		if (p < 0 || layer_of_node[p] < 0)
			continue;
		const struct node *n = &g->nodes[i];
		if (m->const_data[n->inputs[RNN_IN_R]])
			continue;
		struct qconst *c = &m->consts[m->n_consts];
		enum presso_status s = build_qconst_r(g, n, pol->layers[layer_of_node[p]].bits, c);
		m->n_consts++;
		if (s != PRESSO_OK)
			return s;
		m->const_data[c->value] = c->deq;
	}
	return PRESSO_OK;
}

/* Whether recurrent node n's recurrence can run on its R's codes: its
 * initial state, which is quantized like every later one, within [-1, 1]
 * (absent: zeros) and constant; PRESSO_RNN_INT8=0 keeps every recurrence in
 * FP32 (for before/after measurements). */
static bool rnn_int8_ok(const struct graph *g, const struct node *n)
{
	const char *env = getenv(QENGINE_RNN_INT8_ENV);
	if (env && strcmp(env, "0") == 0)
		return false;
	int h0 = n->n_inputs > RNN_IN_H0 ? n->inputs[RNN_IN_H0] : -1;
	if (h0 < 0)
		return true;
	const struct value *v = &g->values[h0];
	if (!v->data)
		return false;
	for (int64_t i = 0; i < shape_numel(&v->shape); i++)
		if (!(fabsf(v->data[i]) <= 1.0f))
			return false;
	return true;
}

/* The integer recurrence of a step whose node's R is qconst c (struct qrnn). */
static enum presso_status build_qrnn(const struct qmodel *m, const struct node *n,
				     const struct qconst *c, struct qrnn **out)
{
	const int64_t H = n->a.rnn_hidden, dirs = n->a.rnn_direction == 2 ? 2 : 1;
	const int64_t GH = c->n_out / dirs;
	const bool gru_split = n->op == OP_GRU && !n->a.rnn_lbr;
	struct qrnn *q = calloc(1, sizeof *q);
	if (!q)
		return status_fail(PRESSO_E_NOMEM, "out of memory building the INT8 model");
	*out = q;
	q->hidden = H;
	q->n_parts = gru_split ? 2 : 1;
	q->rows[0] = gru_split ? 2 * H : GH;
	q->rows[1] = H;
	for (int64_t d = 0; d < dirs; d++)
		for (int part = 0; part < q->n_parts; part++) {
			int64_t row0 = d * GH + (part ? 2 * H : 0), rows = q->rows[part];
			const int8_t *w = c->wq + row0 * H;
			size_t bytes = m->gemm->packed_bytes_for
					       ? m->gemm->packed_bytes_for((int)rows, (int)H, w)
					       : m->gemm->packed_bytes((int)rows, (int)H);
			q->packed[d][part] = aligned_alloc(64, (bytes + 63) / 64 * 64);
			q->packed_bytes += bytes;
			q->bias[d][part] = malloc(sizeof(int32_t) * (size_t)rows);
			q->deq[d][part] = malloc(sizeof(float) * (size_t)rows);
			if (!q->packed[d][part] || !q->bias[d][part] || !q->deq[d][part])
				return status_fail(PRESSO_E_NOMEM, "out of memory building the INT8 model");
			m->gemm->pack((int)rows, (int)H, w, q->packed[d][part]);
			q8_bias_fold((int)rows, (int)H, w, NULL, 128, q->bias[d][part]);
			for (int64_t r = 0; r < rows; r++)
				q->deq[d][part][r] = QRNN_H_SCALE * c->w_scale[row0 + r];
		}
	return PRESSO_OK;
}

static void qrnn_free(struct qrnn *q)
{
	if (!q)
		return;
	for (int d = 0; d < 2; d++)
		for (int part = 0; part < 2; part++) {
			free(q->packed[d][part]);
			free(q->bias[d][part]);
			free(q->deq[d][part]);
		}
	free(q);
}

static void size_accounting(struct qmodel *m, const struct policy *pol)
{
	const struct graph *g = m->g;
	struct qmodel_size *z = &m->size;
	memset(z, 0, sizeof *z);
	double bits_sum = 0;
	int64_t wparams_extra = 0;
	bool *in_layer = calloc((size_t)g->n_values, sizeof *in_layer);
	for (int i = 0; i < m->n_layers; i++) {
		const struct qlayer *L = &m->layers[i];
		const struct node *n = &g->nodes[L->node];
		int64_t nw = shape_numel(&g->values[n->inputs[1]].shape);
		int64_t wb = L->coding.bytes;
		z->weight_bytes += wb;
		z->resident_bytes += (int64_t)L->packed_bytes;
		/* per output channel a binary16 scale; the biases at the layer's width */
		z->size_bytes += wb + 2 * L->n_out +
				 quant_bias_bytes(L->n_out, quant_bias_bits(L->bias_q, L->n_out));
		z->bops += (double)L->macs * L->bits * L->act_bits;
		bits_sum += (double)nw * L->bits;
		z->params += L->params;
		if (in_layer) {
			in_layer[n->inputs[1]] = true;
			if (n->n_inputs > 2 && n->inputs[2] >= 0)
				in_layer[n->inputs[2]] = true;
		}
	}
	for (int i = 0; i < m->n_consts; i++) {
		const struct qconst *c = &m->consts[i];
		int64_t nw = c->n_out * c->k;
		z->weight_bytes += c->coding.bytes;
		z->resident_bytes += 4 * nw; /* held dequantized for an FP32 recurrence
						(and packed by a struct qrnn: below) */
		z->size_bytes += c->coding.bytes + 2 * c->n_out;
		bits_sum += (double)nw * c->bits;
		z->params += nw;
		wparams_extra += nw;
		if (in_layer)
			in_layer[c->value] = true;
	}
	/* other float constants read by any step stay float32 */
	for (int v = 0; in_layer && v < g->n_values; v++)
		if (g->values[v].data && !in_layer[v] && g->values[v].n_consumers > 0) {
			z->size_bytes += 4 * shape_numel(&g->values[v].shape);
			z->params += shape_numel(&g->values[v].shape);
		}
	/* per quantization group: float32 scale + uint8 zero point */
	for (int v = 0; v < g->n_values; v++)
		if (m->v[v].dom == QD_U8 && find(m->v, v) == v)
			z->size_bytes += 5;
	int64_t wparams = wparams_extra;
	for (int i = 0; i < m->n_layers; i++)
		wparams += shape_numel(&g->values[g->nodes[m->layers[i].node].inputs[1]].shape);
	z->mean_bits = wparams ? bits_sum / (double)wparams : 0;
	/* what runs with weights outside the layers: a recurrence in integers
	 * at R's bits x 8 (its states' codes), in FP32 (a recurrence kept in
	 * float, a ConvTranspose) at 32 x 32 */
	z->bops += (double)graph_fp32_macs(g) * 32 * 32;
	for (int k = 0; k < m->n_steps; k++) {
		const struct qstep *st = &m->steps[k];
		if (!st->rnn)
			continue;
		const struct node *n = &g->nodes[st->node];
		int bits = m->consts[qmodel_qconst_of(m, n->inputs[RNN_IN_R])].bits;
		z->bops += (double)graph_node_fp32_macs(g, st->node) * (8 * bits - 32 * 32);
		z->resident_bytes += (int64_t)st->rnn->packed_bytes;
	}
	free(in_layer);
	(void)pol;
}

void qmodel_fp32_size(const struct graph *g, struct qmodel_size *out)
{
	memset(out, 0, sizeof *out);
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	out->params = params;
	out->size_bytes = 4 * params;
	out->weight_bytes = 4 * params;
	out->bops = (double)macs * 32 * 32;
	out->mean_bits = 32;
}

/* The constant of an ADD of an activation and a constant (const_operand_input)
 * as the step's tile: broadcast to one image of the output, in the
 * activation's layout (NHWC for a 4-D value that is), negated for a Sub, and
 * quantized to 8 bits over its own range (TFLite quantizes constant operands
 * the same way). Sets st->in[0] to the activation and *tq to the tile's
 * quantization. */
static enum presso_status add_const_tile(struct qmodel *m, const struct node *n, struct qstep *st,
					 struct qparams *tq)
{
	const struct graph *g = m->g;
	int k = const_operand_input(g, n);
	const struct value *x = &g->values[n->inputs[k]], *c = &g->values[n->inputs[1 - k]];
	st->in[0] = n->inputs[k];
	st->in[1] = n->inputs[1 - k];
	int r = x->shape.n_dims, off = r - c->shape.n_dims;
	int64_t nc = shape_numel(&c->shape);
	float sign = n->op == OP_SUB ? -1.0f : 1.0f, lo = 0, hi = 0;
	for (int64_t j = 0; j < nc; j++) {
		lo = fminf(lo, sign * c->data[j]);
		hi = fmaxf(hi, sign * c->data[j]);
	}
	quant_act_params(lo, hi, 8, tq);
	/* one image: x's dims after the batch axis */
	int64_t per = 1;
	for (int d = 1; d < r; d++)
		per *= x->shape.dims[d];
	st->tile_n = per;
	st->add_tile = malloc((size_t)per);
	if (!st->add_tile)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	bool nhwc = m->v[st->in[0]].nhwc;
	for (int64_t e = 0; e < per; e++) {
		/* e is the logical (row-major) index within the image; its index in
		 * c by broadcasting, right-aligned */
		int64_t rem = e, ci = 0, cstride = 1, idx[GRAPH_MAX_DIMS] = {0};
		for (int d = r - 1; d >= 1; d--) {
			idx[d] = rem % x->shape.dims[d];
			rem /= x->shape.dims[d];
		}
		for (int d = r - 1; d >= off && d >= 0; d--) {
			int64_t cd = c->shape.dims[d - off];
			ci += (cd == 1 ? 0 : idx[d]) * cstride;
			cstride *= cd;
		}
		/* where element e sits in memory: NHWC moves the channel last */
		int64_t at = e;
		if (nhwc) {
			int64_t C = x->shape.dims[1], HW = per / C;
			at = (e % HW) * C + e / HW;
		}
		st->add_tile[at] = quant_act_quantize(sign * c->data[ci], tq);
	}
	return PRESSO_OK;
}

/* qmodel_build, or with preset: qmodel_build_preset (cal is then NULL). */
static enum presso_status build(const struct graph *g, const struct policy *pol,
				const struct calib *cal, const struct qmodel_preset *preset,
				const struct quant_config *qc, struct qmodel **out)
{
	*out = NULL;
	struct layer *layers = NULL;
	int n_layers = 0;
	enum presso_status s = graph_layers(g, &layers, &n_layers);
	if (s != PRESSO_OK)
		return s;
	if (pol->n_layers != n_layers) {
		free(layers);
		return status_fail(PRESSO_E_CONFIG, "the policy has %d layers, the model %d",
				   pol->n_layers, n_layers);
	}
	struct qmodel *m = calloc(1, sizeof *m);
	int *act_of = NULL, *layer_of_node = NULL, *fold_of = NULL;
	enum qkind *kind = NULL;
	bool *logical = NULL;
	if (!m)
		goto nomem;
	m->g = g;
	m->preset = preset;
	m->cache = qc->cache;
	m->hess = qc->hess;
	m->gemm = q8_gemm_for(qc->isa);
	if (pack_w4() && q8_gemm_s4_for(qc->isa))
		m->gemm = q8_gemm_s4_for(qc->isa);
	m->dw = q8_dwconv_for(qc->isa);
	m->conv = q8_conv_for(qc->isa);
	if (m->conv && pack_w4() && q8_conv_s4_for(qc->isa))
		m->conv = q8_conv_s4_for(qc->isa);
	m->add = q8_add_for(qc->isa);
	m->mul = q8_mul_for(qc->isa);
	m->mul_rows = q8_mul_rows_for(qc->isa);
	m->sum_pixels = q8_sum_pixels_for(qc->isa);
	m->lut = q8_lut_for(qc->isa);
	m->maxpool2 = q8_maxpool2_for(qc->isa);
	m->matmul = q8_matmul_for(qc->isa);
	m->softmax = q8_softmax_for(qc->isa);
	m->layernorm = q8_layernorm_for(qc->isa);
	m->quant = q8_quant_for(qc->isa);
	if (!m->gemm || !m->dw) {
		m->gemm = q8_gemm_for(Q8_ISA_REF);
		m->dw = q8_dwconv_for(Q8_ISA_REF);
		m->conv = q8_conv_for(Q8_ISA_REF);
		m->add = q8_add_for(Q8_ISA_REF);
		m->mul = q8_mul_for(Q8_ISA_REF);
	m->mul_rows = q8_mul_rows_for(Q8_ISA_REF);
	m->sum_pixels = q8_sum_pixels_for(Q8_ISA_REF);
		m->lut = q8_lut_for(Q8_ISA_REF);
		m->maxpool2 = q8_maxpool2_for(Q8_ISA_REF);
		m->matmul = q8_matmul_for(Q8_ISA_REF);
		m->softmax = q8_softmax_for(Q8_ISA_REF);
		m->layernorm = q8_layernorm_for(Q8_ISA_REF);
		m->quant = q8_quant_for(Q8_ISA_REF);
	}
	m->requant = qc->requant;
	int nv = g->n_values, nn = g->n_nodes;
	m->v = calloc((size_t)nv, sizeof *m->v);
	m->qp = calloc((size_t)nv, sizeof *m->qp);
	m->steps = calloc((size_t)(nn + 2 * g->n_inputs + g->n_outputs + 1), sizeof *m->steps);
	m->layers = calloc((size_t)(n_layers ? n_layers : 1), sizeof *m->layers);
	m->bufs = calloc((size_t)(2 * nv + GRAPH_MAX_INPUTS * nn + nn + 1), sizeof *m->bufs);
	act_of = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
	layer_of_node = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
	fold_of = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
	kind = malloc(sizeof *kind * (size_t)(nn ? nn : 1));
	logical = calloc((size_t)(nv ? nv : 1), sizeof *logical);
	if (!m->v || !m->qp || !m->steps || !m->layers || !m->bufs || !act_of || !layer_of_node ||
	    !fold_of || !kind || !logical)
		goto nomem;
	for (int v = 0; v < nv; v++) {
		m->v[v] = (struct qvalue){.dom = value_is_const(&g->values[v]) ? QD_CONST : QD_NONE,
					  .group = v, .buf = -1, .f32_buf = -1};
	}
	for (int i = 0; i < nn; i++) {
		act_of[i] = -1;
		layer_of_node[i] = -1;
		fold_of[i] = -1;
	}
	for (int i = 0; i < n_layers; i++)
		layer_of_node[layers[i].node] = i;

	/* 1. step kinds and fusion */
	for (int i = 0; i < nn; i++) {
		kind[i] = classify(g, i);
		/* a Softmax or LayerNormalization that gives a graph output stays
		 * float, like the logits before it: probabilities summing to 1 */
		if ((kind[i] == QK_SOFTMAX || kind[i] == QK_LAYERNORM) &&
		    is_graph_output(g, g->nodes[i].output))
			kind[i] = QK_FALLBACK;
	}
	for (int i = 0; i < nn; i++) {
		if (kind[i] != QK_CONV && kind[i] != QK_DWCONV && kind[i] != QK_FC && kind[i] != QK_ADD &&
		    kind[i] != QK_MUL)
			continue;
		if (g->nodes[i].op == OP_MATMUL)
			continue;
		int a = fused_act(g, i);
		if (a >= 0 && kind[a] == QK_CLAMP) {
			act_of[i] = a;
			kind[a] = QK_NONE;
		}
	}
	/* an Add of a constant that gives a graph output stays float (a bias
	 * after the last MatMul: the logits are not requantized); and a .presso
	 * file written before such Adds ran in integers keeps them in FP32: the
	 * activation they read, which an FC or a fallback wrote as float then,
	 * has no quantization stored */
	for (int i = 0; i < nn; i++) {
		int k = kind[i] == QK_ADD ? const_operand_input(g, &g->nodes[i]) : -1;
		if (k >= 0 && is_graph_output(g, g->nodes[i].output)) {
			kind[i] = QK_FALLBACK;
			continue;
		}
		if (!preset)
			continue;
		int x = k >= 0 ? g->nodes[i].inputs[k] : -1;
		for (int j = 0; x >= 0 && j < i; j++)
			if (g->nodes[j].output == x && (kind[j] == QK_FC || kind[j] == QK_FALLBACK) &&
			    preset->qp[x].bits == 0)
				kind[i] = QK_FALLBACK;
	}
	/* a MatMul whose only reader is a bias Add (PyTorch's Linear over tokens:
	 * MatMul, then Add(bias, product)) computes the sum in one GEMM: the
	 * bias joins its int32 bias, it requantizes straight to the Add's output
	 * (through the clamp fused into the Add) and the Add has no step. The
	 * graph keeps the Add, so the fold is made again at every build and a
	 * .presso file still holds the product's quantization (the value stays
	 * a group, marked folded, with no buffer). A file whose Add output has
	 * no quantization keeps the two steps. */
	for (int i = 0; i < nn; i++) {
		int j = bias_add_after(g, kind, i);
		if (j < 0 || (preset && preset->qp[step_output(g, j, act_of, fold_of)].bits == 0))
			continue;
		fold_of[i] = j;
		act_of[i] = act_of[j];
		kind[j] = QK_NONE;
	}
	/* a layer the policy names must run as one (else its choices would be lost) */
	for (int i = 0; i < n_layers; i++) {
		int ni = layers[i].node;
		if (kind[ni] != QK_CONV && kind[ni] != QK_DWCONV && kind[ni] != QK_FC) {
			s = status_fail(PRESSO_E_UNSUPPORTED,
					"layer '%s': %s with this input cannot run in the INT8 engine",
					layers[i].name, op_name(layers[i].op));
			goto fail;
		}
	}

	layout_plan(g, kind, act_of, logical);

	/* 2. domains: the value each step writes */
	for (int i = 0; i < g->n_inputs; i++)
		m->v[g->inputs[i]].dom = QD_U8;
	for (int i = 0; i < nn; i++) {
		if (kind[i] == QK_NONE)
			continue;
		m->v[step_output(g, i, act_of, fold_of)].dom = QD_U8;
		if (fold_of[i] >= 0) {
			m->v[g->nodes[i].output].dom = QD_U8;
			m->v[g->nodes[i].output].folded = true;
		}
	}
	for (int i = nn - 1; i >= 0; i--) {
		if (kind[i] != QK_FC && kind[i] != QK_FALLBACK)
			continue;
		if (act_of[i] >= 0 || fold_of[i] >= 0)
			continue;
		/* float when every reader (if any) is a fallback and it is read or
		 * a graph output: an integer step reading it keeps it uint8 */
		int v = g->nodes[i].output;
		bool only_fallback = true;
		for (int j = i + 1; j < nn; j++)
			for (int k = 0; k < g->nodes[j].n_inputs; k++)
				if (g->nodes[j].inputs[k] == v && kind[j] != QK_FALLBACK &&
				    kind[j] != QK_NONE)
					only_fallback = false;
		if (only_fallback && (is_graph_output(g, v) || g->values[v].n_consumers > 0))
			m->v[v].dom = QD_F32;
	}
	for (int v = 0; v < nv; v++)
		m->v[v].nhwc = m->v[v].dom == QD_U8 && g->values[v].shape.n_dims == 4 && !logical[v];

	/* 3. quantization groups and their bit widths */
	for (int i = 0; i < nn; i++) {
		enum qkind k = kind[i];
		if (k == QK_CLAMP || k == QK_MAXPOOL || k == QK_AVGPOOL || k == QK_GAP || k == QK_RESHAPE ||
		    k == QK_RESIZE || k == QK_TRANSPOSE)
			unite(m->v, g->nodes[i].inputs[0], g->nodes[i].output);
	}
	int *group_bits = calloc((size_t)nv, sizeof(int));
	if (!group_bits)
		goto nomem;
	for (int i = 0; i < n_layers; i++) {
		int in_v = g->nodes[layers[i].node].inputs[0];
		int r = find(m->v, in_v);
		if (pol->layers[i].act_bits > group_bits[r])
			group_bits[r] = pol->layers[i].act_bits;
	}
	for (int v = 0; v < nv; v++) {
		if (m->v[v].dom != QD_U8 || find(m->v, v) != v)
			continue;
		/* the head: the member that a quantizing step writes (the root of the
		 * union is the first input of the chain) */
		int bits = group_bits[v] ? group_bits[v] : 8;
		if (preset) {
			if (preset->qp[v].bits != bits) {
				free(group_bits);
				s = status_fail(PRESSO_E_FORMAT,
						"value '%s': no %d-bit activation quantization given",
						g->values[v].name, bits);
				goto fail;
			}
			m->qp[v] = preset->qp[v];
			continue;
		}
		float lo, hi;
		calib_range(cal, v, qc->method, qc->percentile, bits, &lo, &hi);
		quant_act_params(lo, hi, bits, &m->qp[v]);
	}
	free(group_bits);
	for (int v = 0; v < nv; v++)
		if (m->v[v].dom == QD_U8)
			m->qp[v] = m->qp[find(m->v, v)];

	/* 4. steps, layers, buffers */
	for (int v = 0; v < nv; v++) {
		if ((m->v[v].dom == QD_U8 && !m->v[v].folded) || m->v[v].dom == QD_F32)
			m->v[v].buf = add_buf(m, v, m->v[v].dom == QD_F32);
	}
	for (int i = 0; i < g->n_inputs; i++) {
		int v = g->inputs[i];
		m->v[v].f32_buf = add_buf(m, v, true);
		struct qstep *st = &m->steps[m->n_steps];
		*st = (struct qstep){.kind = QK_QUANTIZE, .node = -1, .n_in = 1, .out = v};
		st->in[0] = v;
		use_buf(m, m->v[v].f32_buf, -1);
		use_buf(m, m->v[v].f32_buf, m->n_steps);
		use_buf(m, m->v[v].buf, m->n_steps);
		m->n_steps++;
	}
	for (int i = 0; i < nn; i++) {
		if (kind[i] == QK_NONE)
			continue;
		const struct node *n = &g->nodes[i];
		int si = m->n_steps;
		struct qstep *st = &m->steps[m->n_steps++];
		*st = (struct qstep){.kind = kind[i], .node = i, .n_in = n->n_inputs, .layer = -1,
				     .tmp_out = -1};
		st->out = step_output(g, i, act_of, fold_of);
		for (int k = 0; k < n->n_inputs; k++) {
			st->in[k] = n->inputs[k];
			st->tmp_in[k] = -1;
			if (n->inputs[k] >= 0)
				use_buf(m, m->v[n->inputs[k]].buf, si);
		}
		if (m->v[st->out].dom == QD_U8)
			step_clamp(g, &m->qp[st->out], act_of[i], st);
		if (kind[i] == QK_CLAMP) {
			/* a standalone Relu/Clip: a clamp in its input's quantization */
			step_clamp(g, &m->qp[st->out], i, st);
		}
		int from = n->n_inputs > 0 ? g->values[n->inputs[0]].producer : -1;
		if ((kind[i] == QK_RESHAPE &&
		     (same_memory_order(m, n->inputs[0], st->out) || nhwc_to_tokens(m, kind, i))) ||
		    (kind[i] == QK_TRANSPOSE && from >= 0 && nhwc_to_tokens(m, kind, from)) ||
		    nhwc_swap(m, kind, i)) {
			st->alias = true;
			/* share the input's buffer: extend its lifetime instead */
			int ib = m->v[n->inputs[0]].buf;
			m->bufs[m->v[st->out].buf].first = -3; /* unused */
			m->v[st->out].buf = ib;
		}
		/* a Transpose a QMATMUL reads or writes in place: no copy, and
		 * the value it writes (one the QMATMUL reads) no buffer */
		if (kind[i] == QK_TRANSPOSE &&
		    (mm_view_reader(g, kind, i) >= 0 ||
		     (from >= 0 && mm_view_writer(g, kind, from) == i)))
			st->alias = true;
		if (kind[i] == QK_TRANSPOSE && mm_view_reader(g, kind, i) >= 0) {
			m->bufs[m->v[st->out].buf].first = -3;
			m->v[st->out].buf = -1;
		}
		if (kind[i] == QK_QMATMUL) {
			int t_out;
			mm_views(m, kind, i, st, &t_out);
			if (t_out >= 0) { /* C goes to the Transpose's output */
				m->bufs[m->v[st->out].buf].first = -3;
				m->v[st->out].buf = -1;
			}
			for (int k = 0; k < 3; k++)
				use_buf(m, m->v[st->mm_val[k]].buf, si);
		}
		use_buf(m, m->v[st->out].buf, si);
		if (kind[i] == QK_FALLBACK) {
			for (int k = 0; k < n->n_inputs; k++) {
				int v = n->inputs[k];
				if (v >= 0 && m->v[v].dom == QD_U8) {
					st->tmp_in[k] = add_buf(m, v, true);
					use_buf(m, st->tmp_in[k], si);
				}
			}
			if (m->v[st->out].dom == QD_U8) {
				st->tmp_out = add_buf(m, st->out, true);
				use_buf(m, st->tmp_out, si);
			}
		}
		/* Sub: the second input's scale negated (exact: rounding is symmetric) */
		double sub_sign = n->op == OP_SUB ? -1.0 : 1.0;
		struct qparams tile_qp;
		const struct qparams *add_a = NULL, *add_b = NULL;
		if (kind[i] == QK_ADD && const_operand_input(g, n) >= 0) {
			if (add_const_tile(m, n, st, &tile_qp) != PRESSO_OK)
				goto nomem;
			add_a = &m->qp[st->in[0]];
			add_b = &tile_qp;
			sub_sign = 1.0; /* a Sub's constant is negated in the tile */
		} else if (kind[i] == QK_ADD) {
			add_a = &m->qp[n->inputs[0]];
			add_b = &m->qp[n->inputs[1]];
		}
		if (kind[i] == QK_ADD && m->requant == REQUANT_FLOAT) {
			const struct qparams *a = add_a, *b = add_b, *o = &m->qp[st->out];
			st->add = (struct qadd_params){
				.a_zero = a->zero, .b_zero = b->zero, .c_zero = o->zero,
				.a_scale = (float)(a->scale / o->scale),
				.b_scale = (float)(sub_sign * b->scale / o->scale),
				.c_min = st->lo, .c_max = st->hi,
			};
		} else if (kind[i] == QK_ADD) {
			/* TFLite's integer Add: both inputs to a common scale with 20 bits of
			 * headroom, sum, then to the output scale */
			const struct qparams *a = add_a, *b = add_b, *o = &m->qp[st->out];
			double twice_max = 2.0 * fmax(a->scale, b->scale);
			int32_t m1, m2, mo;
			int8_t s1, s2, so;
			quant_multiplier(a->scale / twice_max, &m1, &s1);
			quant_multiplier(b->scale / twice_max, &m2, &s2);
			quant_multiplier(twice_max / ((double)(1 << 20) * o->scale), &mo, &so);
			st->add_lut = malloc(256 * 256);
			if (!st->add_lut)
				goto nomem;
			/* the output depends on two uint8 inputs only: tabulate all 65536
			 * pairs once (exactly the integer arithmetic, clamp included) */
			int32_t ta[256], tb[256];
			for (int q = 0; q < 256; q++) {
				ta[q] = q31_requantize((q - a->zero) * (1 << 20), m1, s1);
				tb[q] = (int32_t)sub_sign * q31_requantize((q - b->zero) * (1 << 20), m2, s2);
			}
			for (int qa = 0; qa < 256; qa++)
				for (int qb = 0; qb < 256; qb++) {
					/* in int64: a saturated requantization plus the
					 * zero point must clamp, not overflow */
					int64_t r = (int64_t)q31_requantize(ta[qa] + tb[qb], mo, so) +
						    o->zero;
					st->add_lut[qa * 256 + qb] =
						(uint8_t)(r < st->lo ? st->lo : r > st->hi ? st->hi : r);
				}
		}
		if (kind[i] == QK_MUL) {
			const struct qparams *a = &m->qp[n->inputs[0]], *b = &m->qp[n->inputs[1]],
					     *o = &m->qp[st->out];
			double real = (double)a->scale * b->scale / o->scale;
			st->mul = (struct qmul_params){
				.a_zero = a->zero, .b_zero = b->zero, .c_zero = o->zero,
				.scale = (float)real, .q31 = m->requant == REQUANT_Q31,
				.c_min = st->lo, .c_max = st->hi,
			};
			quant_multiplier(real, &st->mul.mult, &st->mul.shift);
			st->mul_rows = !same_shape(&g->values[n->inputs[0]], &g->values[n->inputs[1]]);
		}
		if (kind[i] == QK_LUT) {
			st->lut_in = scalar_operand_input(g, n);
			if (st->lut_in < 0)
				st->lut_in = 0;
			st->lut = malloc(256);
			if (!st->lut)
				goto nomem;
			build_lut(g, n, st->lut_in, &m->qp[n->inputs[st->lut_in]], &m->qp[st->out],
				  st->lo, st->hi, st->lut);
		}
		if (kind_wants_logical(kind[i]) && build_rowwise(m, st) != PRESSO_OK)
			goto nomem;
		if (kind[i] == QK_CONV || kind[i] == QK_DWCONV || kind[i] == QK_FC) {
			int li = layer_of_node[i];
			PRESSO_CHECK(li >= 0);
			st->layer = li;
			m->layers[li].macs = layers[li].macs;
			m->layers[li].params = layers[li].params;
			const struct node *bias_add = fold_of[i] >= 0 ? &g->nodes[fold_of[i]] : NULL;
			if ((s = build_layer(m, st, cal, &pol->layers[li], bias_add)) != PRESSO_OK)
				goto fail;
		}
	}
	m->n_layers = n_layers;
	if ((s = build_qconsts(m, pol, layer_of_node)) != PRESSO_OK)
		goto fail;
	for (int i = 0; i < m->n_steps; i++) {
		struct qstep *st = &m->steps[i];
		if (st->kind != QK_FALLBACK || st->node < 0 || !op_is_recurrent(g->nodes[st->node].op))
			continue;
		const struct node *n = &g->nodes[st->node];
		int c = qmodel_qconst_of(m, n->inputs[RNN_IN_R]);
		if (c >= 0 && rnn_int8_ok(g, n) &&
		    (s = build_qrnn(m, n, &m->consts[c], &st->rnn)) != PRESSO_OK)
			goto fail;
	}
	for (int i = 0; i < g->n_outputs; i++) {
		int v = g->outputs[i];
		if (m->v[v].dom == QD_F32) {
			use_buf(m, m->v[v].buf, 1 << 29);
			continue;
		}
		m->v[v].f32_buf = add_buf(m, v, true);
		struct qstep *st = &m->steps[m->n_steps];
		*st = (struct qstep){.kind = QK_DEQUANT, .node = -1, .n_in = 1, .out = v};
		st->in[0] = v;
		use_buf(m, m->v[v].buf, m->n_steps);
		use_buf(m, m->v[v].f32_buf, m->n_steps);
		use_buf(m, m->v[v].f32_buf, 1 << 29);
		m->n_steps++;
	}
	for (int i = 0; i < m->n_bufs; i++)
		if (m->bufs[i].last >= (1 << 29))
			m->bufs[i].last = m->n_steps;
	/* a large batch runs the steps once per chunk of images: the float inputs
	 * (written before the run) and outputs (read after it) must survive every
	 * pass, so they live from before the first step to after the last */
	for (int i = 0; i < g->n_inputs; i++) {
		struct qbuf *b = &m->bufs[m->v[g->inputs[i]].f32_buf];
		b->first = -1;
		b->last = m->n_steps;
	}
	for (int i = 0; i < g->n_outputs; i++) {
		const struct qvalue *qv = &m->v[g->outputs[i]];
		struct qbuf *b = &m->bufs[qv->dom == QD_F32 ? qv->buf : qv->f32_buf];
		b->first = -1;
		b->last = m->n_steps;
	}
	size_accounting(m, pol);
	m->preset = NULL;
	m->cache = NULL;
	m->hess = NULL;
	free(layers);
	free(act_of);
	free(layer_of_node);
	free(fold_of);
	free(kind);
	free(logical);
	*out = m;
	return PRESSO_OK;
nomem:
	s = status_fail(PRESSO_E_NOMEM, "out of memory building the INT8 model");
fail:
	if (m)
		m->n_layers = n_layers;
	free(layers);
	free(act_of);
	free(layer_of_node);
	free(fold_of);
	free(kind);
	free(logical);
	qmodel_free(m);
	return s;
}

enum presso_status qmodel_build(const struct graph *g, const struct policy *pol,
				const struct calib *cal, const struct quant_config *qc,
				struct qmodel **out)
{
	return build(g, pol, cal, NULL, qc, out);
}

enum presso_status qmodel_build_preset(const struct graph *g, const struct policy *pol,
				       const struct qmodel_preset *preset,
				       const struct quant_config *qc, struct qmodel **out)
{
	return build(g, pol, NULL, preset, qc, out);
}

void qmodel_free(struct qmodel *m)
{
	if (!m)
		return;
	for (int i = 0; m->layers && i < m->n_layers; i++) {
		struct qlayer *L = &m->layers[i];
		free(L->packed);
		free(L->bias);
		free(L->mult);
		free(L->shift);
		free(L->rq_scale);
		free(L->deq_scale);
		free(L->wq);
		free(L->w_scale);
		free(L->bias_q);
	}
	free(m->layers);
	for (int i = 0; m->consts && i < m->n_consts; i++) {
		free(m->consts[i].wq);
		free(m->consts[i].w_scale);
		free(m->consts[i].deq);
	}
	free(m->consts);
	free(m->const_data);
	free(m->v);
	free(m->qp);
	for (int i = 0; m->steps && i < m->n_steps; i++) {
		free(m->steps[i].add_lut);
		free(m->steps[i].add_tile);
		free(m->steps[i].lut);
		free(m->steps[i].ftab);
		qrnn_free(m->steps[i].rnn);
	}
	free(m->steps);
	free(m->bufs);
	free(m);
}

void qmodel_size(const struct qmodel *m, struct qmodel_size *out)
{
	*out = m->size;
}

/* --- the built model, for exporters and the profiler ------------------------ */

int qmodel_n_qconsts(const struct qmodel *m)
{
	return m->n_consts;
}

void qmodel_qconst_view(const struct qmodel *m, int i, struct qconst_view *out)
{
	const struct qconst *c = &m->consts[i];
	*out = (struct qconst_view){.value = c->value, .bits = c->bits, .n_out = c->n_out,
				    .k = c->k, .w = c->wq, .w_scale = c->w_scale,
				    .coding = c->coding};
}

int qmodel_qconst_of(const struct qmodel *m, int v)
{
	for (int i = 0; i < m->n_consts; i++)
		if (m->consts[i].value == v)
			return i;
	return -1;
}

int qmodel_n_layers(const struct qmodel *m)
{
	return m->n_layers;
}

void qmodel_layer_view(const struct qmodel *m, int layer, struct qlayer_view *out)
{
	const struct qlayer *L = &m->layers[layer];
	*out = (struct qlayer_view){.node = L->node, .bits = L->bits, .act_bits = L->act_bits,
				    .n_out = L->n_out, .k = L->k, .w = L->wq,
				    .w_scale = L->w_scale, .bias = L->bias_q, .coding = L->coding};
}

bool qmodel_value_qparams(const struct qmodel *m, int v, struct qparams *qp)
{
	if (v < 0 || v >= m->g->n_values || m->v[v].dom != QD_U8)
		return false;
	*qp = m->qp[v];
	return true;
}

bool qmodel_value_is_folded(const struct qmodel *m, int v)
{
	return v >= 0 && v < m->g->n_values && m->v[v].folded;
}

enum requant_mode qmodel_requant(const struct qmodel *m)
{
	return m->requant;
}

int qmodel_value_group(const struct qmodel *m, int v)
{
	if (v < 0 || v >= m->g->n_values || m->v[v].dom != QD_U8)
		return -1;
	while (m->v[v].group != v) /* no path compression: the model is shared */
		v = m->v[v].group;
	return v;
}

const struct graph *qmodel_graph(const struct qmodel *m)
{
	return m->g;
}

int qmodel_n_steps(const struct qmodel *m)
{
	return m->n_steps;
}

int qmodel_step_layer(const struct qmodel *m, int step)
{
	if (step < 0 || step >= m->n_steps)
		return -1;
	const struct qstep *st = &m->steps[step];
	bool is_layer = st->kind == QK_CONV || st->kind == QK_DWCONV || st->kind == QK_FC;
	return is_layer ? st->layer : -1;
}

bool qmodel_step_is_integer(const struct qmodel *m, int step)
{
	if (step < 0 || step >= m->n_steps)
		return false;
	enum qkind k = m->steps[step].kind;
	return k != QK_FALLBACK && k != QK_QUANTIZE && k != QK_DEQUANT;
}

int qmodel_step_node(const struct qmodel *m, int step)
{
	if (step < 0 || step >= m->n_steps)
		return -1;
	return m->steps[step].node;
}
