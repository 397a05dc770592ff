/* engine.c - the FP32 reference engine: planning and running a graph.
 *
 * Plan (engine_create):
 *   1. shapes at max_batch, from graph_infer_shapes(), which refuses a batch at
 *      which a tensor would pass GRAPH_MAX_ELEMS: every product of dimensions
 *      taken below (and the int the kernels count in) fits;
 *   2. every activation value gets a representative buffer rep[v]: itself, or,
 *      for the output of a fused Relu/Clip or of a reshape-like op, the buffer
 *      of its input (those nodes then do no work);
 *   3. each buffer lives from the node that first writes it to the last node
 *      that reads it (graph inputs from -1, graph outputs to the end);
 *   4. buffers are placed in one arena by arena_plan() (greedy by size).
 * Run (engine_run): each node's executor from exec_table[] reads and writes
 * arena pointers; the kernels are the reference kernels of kernels/f32_ref.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "kernels/kernels_f32.h"
#include "kernels/kernels_train.h"

enum step_kind { STEP_RUN, STEP_ALIAS, STEP_FUSED };

struct step {
	enum step_kind kind;
	float act_min, act_max;
	int observe; /* the value this step's output holds (the fused activation's) */
};

struct engine {
	const struct graph *g;
	int max_batch;
	int cur_batch;
	struct shape *shapes;   /* at cur_batch */
	int *rep;               /* value -> value whose buffer it uses */
	size_t *offset;         /* arena offset of each representative */
	struct step *steps;     /* per node */
	float *arena;
	size_t arena_bytes;
	float *scratch;
	size_t scratch_bytes;
	const float **in_ptrs;  /* GRAPH_MAX_INPUTS, reused per node */
	engine_observer_fn observer;
	void *observer_ctx;
};

/* --- node executors ------------------------------------------------------- */

struct exec_args {
	const struct graph *g;
	const struct node *n;
	const struct shape *shapes;
	const float *const *in;
	float *out;
	float *scratch;
	float act_min, act_max;
};

typedef void (*exec_fn)(const struct exec_args *x);

static const struct shape *in_shape(const struct exec_args *x, int i)
{
	return &x->shapes[x->n->inputs[i]];
}

static const struct shape *out_shape(const struct exec_args *x)
{
	return &x->shapes[x->n->output];
}

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

static void exec_conv(const struct exec_args *x)
{
	struct conv2d_params p;
	conv_params(x->n, in_shape(x, 0), in_shape(x, 1), out_shape(x), &p);
	p.act_min = x->act_min;
	p.act_max = x->act_max;
	const float *bias = x->n->n_inputs > 2 && x->n->inputs[2] >= 0 ? x->in[2] : NULL;
	conv2d_f32__ref(&p, x->in[0], x->in[1], bias, x->out, x->scratch);
}

/* ConvTranspose as the backward-data pass of the Conv it is the adjoint of:
 * that Conv maps the output's c_out channels to the input's with the same
 * weight, window and groups. */
static void convtranspose_params(const struct node *n, const struct shape *xs,
				 const struct shape *ws, const struct shape *ys,
				 struct conv2d_params *p)
{
	conv_params(n, ys, ws, xs, p);
}

static void exec_convtranspose(const struct exec_args *x)
{
	struct conv2d_params p;
	const struct shape *ys = out_shape(x);
	convtranspose_params(x->n, in_shape(x, 0), in_shape(x, 1), ys, &p);
	int64_t plane = ys->dims[2] * ys->dims[3];
	memset(x->out, 0, sizeof(float) * (size_t)shape_numel(ys));
	conv2d_backward_data_f32__ref(&p, x->in[0], x->in[1], x->out, x->scratch);
	const float *bias = x->n->n_inputs > 2 && x->n->inputs[2] >= 0 ? x->in[2] : NULL;
	for (int64_t i = 0; i < ys->dims[0] * ys->dims[1]; i++) {
		float v = bias ? bias[i % ys->dims[1]] : 0.0f, *o = x->out + i * plane;
		for (int64_t j = 0; j < plane; j++) {
			float y = o[j] + v;
			o[j] = y < x->act_min ? x->act_min : y > x->act_max ? x->act_max : y;
		}
	}
}

void engine_convtranspose_params(const struct node *n, const struct shape *shapes,
				 struct conv2d_params *p)
{
	convtranspose_params(n, &shapes[n->inputs[0]], &shapes[n->inputs[1]], &shapes[n->output],
			     p);
}

/* QuantizeLinear (round half to even, saturate) and DequantizeLinear. */
static void exec_fakequant(const struct exec_args *x)
{
	const struct node_attrs *a = &x->n->a;
	int64_t n = shape_numel(in_shape(x, 0));
	for (int64_t i = 0; i < n; i++) {
		float q = nearbyintf(x->in[0][i] / a->alpha) + a->beta;
		q = q < a->clip_min ? a->clip_min : q > a->clip_max ? a->clip_max : q;
		x->out[i] = (q - a->beta) * a->alpha;
	}
}

void engine_rnn_params(const struct node *n, const struct shape *shapes, struct rnn_params *p)
{
	const struct shape *xs = &shapes[n->inputs[RNN_IN_X]];
	bool bf = n->a.rnn_batch_first;
	*p = (struct rnn_params){
		.cell = n->op == OP_LSTM ? RNN_CELL_LSTM : n->op == OP_GRU ? RNN_CELL_GRU : RNN_CELL_RNN,
		.seq = xs->dims[bf ? 1 : 0], .batch = xs->dims[bf ? 0 : 1], .in = xs->dims[2],
		.hidden = n->a.rnn_hidden, .dirs = n->a.rnn_direction == 2 ? 2 : 1,
		.reverse = n->a.rnn_direction == 1, .batch_first = bf,
		.linear_before_reset = n->a.rnn_lbr, .projected = n->a.rnn_projected,
		.r_transposed = n->a.rnn_projected,
	};
}

void engine_rnn_tensors(const struct node *n, const float *const *in, struct rnn_tensors *t)
{
	const float *opt[RNN_N_IN] = {0};
	for (int k = RNN_IN_B; k < RNN_N_IN; k++)
		opt[k] = n->n_inputs > k && n->inputs[k] >= 0 ? in[k] : NULL;
	*t = (struct rnn_tensors){in[RNN_IN_X], n->inputs[RNN_IN_W] >= 0 ? in[RNN_IN_W] : NULL,
				  in[RNN_IN_R], opt[RNN_IN_B],
				  opt[RNN_IN_H0], opt[RNN_IN_C0], opt[RNN_IN_P]};
}

static void exec_rnn(const struct exec_args *x)
{
	struct rnn_params p;
	struct rnn_tensors t;
	engine_rnn_params(x->n, x->shapes, &p);
	engine_rnn_tensors(x->n, x->in, &t);
	rnn_f32__ref(&p, &t, x->out, (enum rnn_out)x->n->a.rnn_output, x->scratch, NULL);
}

static void exec_gemm(const struct exec_args *x)
{
	const struct node_attrs *a = &x->n->a;
	const struct shape *as = in_shape(x, 0), *ys = out_shape(x);
	int m = (int)ys->dims[0], nn = (int)ys->dims[1];
	int k = (int)(a->trans_a ? as->dims[0] : as->dims[1]);
	const float *c = NULL;
	int cm = 1, cn = 1;
	if (x->n->n_inputs > 2 && x->n->inputs[2] >= 0) {
		const struct shape *cs = in_shape(x, 2);
		c = x->in[2];
		cm = cs->n_dims == 2 ? (int)cs->dims[0] : 1;
		cn = cs->n_dims >= 1 ? (int)cs->dims[cs->n_dims - 1] : 1;
	}
	gemm_bias_f32__ref(m, nn, k, a->alpha, x->in[0], a->trans_a, x->in[1], a->trans_b,
			   a->beta, c, cm, cn, x->act_min, x->act_max, x->out);
}

static void exec_matmul(const struct exec_args *x)
{
	const struct shape *as = in_shape(x, 0), *bs = in_shape(x, 1), *ys = out_shape(x);
	matmul_f32__ref(as->dims, as->n_dims, x->in[0], bs->dims, bs->n_dims, x->in[1], ys->dims,
			ys->n_dims, x->out);
}

static void exec_relu(const struct exec_args *x)
{
	clip_f32__ref(shape_numel(out_shape(x)), x->in[0], 0.0f, INFINITY, x->out);
}

static void exec_clip(const struct exec_args *x)
{
	clip_f32__ref(shape_numel(out_shape(x)), x->in[0], x->n->a.clip_min, x->n->a.clip_max,
		      x->out);
}

static void exec_batchnorm(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	int64_t inner = 1;
	for (int i = 2; i < xs->n_dims; i++)
		inner *= xs->dims[i];
	batchnorm_f32__ref((int)xs->dims[0], (int)xs->dims[1], inner, x->in[0], x->in[1], x->in[2],
			   x->in[3], x->in[4], x->n->a.epsilon, x->out);
}

static void pool_params(const struct exec_args *x, struct pool2d_params *p)
{
	const struct shape *xs = in_shape(x, 0), *ys = out_shape(x);
	const struct node_attrs *a = &x->n->a;
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

static void exec_maxpool(const struct exec_args *x)
{
	struct pool2d_params p;
	pool_params(x, &p);
	maxpool2d_f32__ref(&p, x->in[0], x->out);
}

static void exec_avgpool(const struct exec_args *x)
{
	struct pool2d_params p;
	pool_params(x, &p);
	avgpool2d_f32__ref(&p, x->in[0], x->out);
}

static void exec_gap(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	int64_t hw = 1;
	for (int i = 2; i < xs->n_dims; i++)
		hw *= xs->dims[i];
	global_avgpool_f32__ref((int)xs->dims[0], (int)xs->dims[1], (int)hw, x->in[0], x->out);
}

static void exec_add(const struct exec_args *x)
{
	const struct shape *ys = out_shape(x);
	int64_t ad[GRAPH_MAX_DIMS], bd[GRAPH_MAX_DIMS];
	shape_right_align(in_shape(x, 0), ys->n_dims, ad);
	shape_right_align(in_shape(x, 1), ys->n_dims, bd);
	add_f32__ref(ad, x->in[0], bd, x->in[1], ys->dims, ys->n_dims, x->out);
}

/* The FP32 function of each element-wise op, + 1 (0: none): designated
 * entries of one table, so an op is one line here. */
static const struct {
	int unary, binary;
} elementwise[OP_COUNT] = {
	[OP_ADD] = {.binary = F32_ADD + 1},
	[OP_SUB] = {.binary = F32_SUB + 1},
	[OP_MUL] = {.binary = F32_MUL + 1},
	[OP_DIV] = {.binary = F32_DIV + 1},
	[OP_POW] = {.binary = F32_POW + 1},
	[OP_PRELU] = {.binary = F32_PRELU + 1},
	[OP_MAX] = {.binary = F32_MAX + 1},
	[OP_MIN] = {.binary = F32_MIN + 1},
	[OP_LOG] = {.unary = F32_LOG + 1},
	[OP_SIGMOID] = {.unary = F32_SIGMOID + 1},
	[OP_TANH] = {.unary = F32_TANH + 1},
	[OP_HARDSIGMOID] = {.unary = F32_HARDSIGMOID + 1},
	[OP_HARDSWISH] = {.unary = F32_HARDSWISH + 1},
	[OP_LEAKYRELU] = {.unary = F32_LEAKYRELU + 1},
	[OP_SQRT] = {.unary = F32_SQRT + 1},
	[OP_ERF] = {.unary = F32_ERF + 1},
	[OP_EXP] = {.unary = F32_EXP + 1},
	[OP_NEG] = {.unary = F32_NEG + 1},
	[OP_RECIPROCAL] = {.unary = F32_RECIPROCAL + 1},
	[OP_ABS] = {.unary = F32_ABS + 1},
	[OP_ELU] = {.unary = F32_ELU + 1},
	[OP_SELU] = {.unary = F32_SELU + 1},
	[OP_CELU] = {.unary = F32_CELU + 1},
	[OP_SOFTPLUS] = {.unary = F32_SOFTPLUS + 1},
	[OP_SOFTSIGN] = {.unary = F32_SOFTSIGN + 1},
	[OP_THRESHOLDEDRELU] = {.unary = F32_THRESHOLDEDRELU + 1},
};

bool engine_unary_fn(enum op_type op, enum f32_unary *f)
{
	if ((unsigned)op >= OP_COUNT || !elementwise[op].unary)
		return false;
	*f = (enum f32_unary)(elementwise[op].unary - 1);
	return true;
}

bool engine_binary_fn(enum op_type op, enum f32_binary *f)
{
	if ((unsigned)op >= OP_COUNT || !elementwise[op].binary)
		return false;
	*f = (enum f32_binary)(elementwise[op].binary - 1);
	return true;
}

/* Mul, Sub, Div, Pow, PRelu: the op's FP32 function, broadcast. */
static void exec_binary(const struct exec_args *x)
{
	const struct shape *ys = out_shape(x);
	int64_t ad[GRAPH_MAX_DIMS], bd[GRAPH_MAX_DIMS];
	enum f32_binary f;
	PRESSO_CHECK(engine_binary_fn(x->n->op, &f));
	shape_right_align(in_shape(x, 0), ys->n_dims, ad);
	shape_right_align(in_shape(x, 1), ys->n_dims, bd);
	binary_f32__ref(f, ad, x->in[0], bd, x->in[1], ys->dims, ys->n_dims, x->out);
}

/* ((x0 + x1) + x2) + ...: the output accumulates in place */
static void exec_sum(const struct exec_args *x)
{
	const struct shape *ys = out_shape(x);
	int n = x->n->n_inputs;
	int64_t ad[GRAPH_MAX_DIMS], bd[GRAPH_MAX_DIMS];
	if (n == 1) {
		memcpy(x->out, x->in[0], sizeof(float) * (size_t)shape_numel(ys));
		return;
	}
	shape_right_align(in_shape(x, 0), ys->n_dims, ad);
	shape_right_align(in_shape(x, 1), ys->n_dims, bd);
	binary_f32__ref(F32_ADD, ad, x->in[0], bd, x->in[1], ys->dims, ys->n_dims, x->out);
	for (int k = 2; k < n; k++) {
		shape_right_align(in_shape(x, k), ys->n_dims, bd);
		binary_f32__ref(F32_ADD, ys->dims, x->out, bd, x->in[k], ys->dims, ys->n_dims,
				x->out);
	}
}

/* Sigmoid, Tanh, ... Abs: the op's FP32 function per element. */
static void exec_unary(const struct exec_args *x)
{
	enum f32_unary f;
	PRESSO_CHECK(engine_unary_fn(x->n->op, &f));
	unary_f32__ref(f, shape_numel(out_shape(x)), x->in[0], x->n->a.alpha, x->n->a.beta,
		       x->out);
}

static void exec_pad(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	pad_f32__ref(xs->n_dims, xs->dims, x->n->a.ints, x->n->a.pad_value, x->in[0], x->out);
}

/* The per-dimension input-index maps of a Resize into maps (scratch of
 * engine_node_scratch_bytes()). */
/* Dimension d's scale: the attribute's, else output over input. */
static float resize_scale(const struct node *n, const struct shape *xs, const struct shape *ys,
			  int d)
{
	float scale = n->a.scales[d];
	if (d == 0 || !(scale > 0.0f))
		scale = d == 0 || xs->dims[d] == 0 ? 1.0f
						     : (float)((double)ys->dims[d] / (double)xs->dims[d]);
	return scale;
}

void engine_resize_maps(const struct node *n, const struct shape *xs, const struct shape *ys,
			int64_t *maps)
{
	for (int d = 0; d < xs->n_dims; d++) {
		resize_nearest_map(n->a.resize_coord, n->a.resize_round, xs->dims[d], ys->dims[d],
				   resize_scale(n, xs, ys, d), maps);
		maps += ys->dims[d];
	}
}

/* Dimension d's length after resizing, unrounded: the input's times the
 * attribute's scale, or the output's (resize_linear_map). */
static double resized_length(const struct node *n, const struct shape *xs,
			     const struct shape *ys, int d)
{
	float s = n->a.scales[d];
	return s > 0.0f ? (double)xs->dims[d] * (double)s : (double)ys->dims[d];
}

void engine_resize_linear_plan(const struct node *n, const struct shape *xs,
			       const struct shape *ys, void *scratch,
			       struct resize_linear_plan *pl)
{
	bool flat = xs->n_dims == 3; /* [N, C, L]: H = 1 */
	pl->n = xs->dims[0];
	pl->c = xs->dims[1];
	pl->hi = flat ? 1 : xs->dims[2];
	pl->ho = flat ? 1 : ys->dims[2];
	pl->wi = xs->dims[xs->n_dims - 1];
	pl->wo = ys->dims[ys->n_dims - 1];
	int64_t *ints = scratch;
	float *w = (float *)(ints + 2 * (pl->ho + pl->wo));
	pl->th = (struct resize_taps){ints, ints + pl->ho, w};
	pl->tw = (struct resize_taps){ints + 2 * pl->ho, ints + 2 * pl->ho + pl->wo, w + pl->ho};
	if (flat) {
		pl->th.i0[0] = pl->th.i1[0] = 0;
		pl->th.w[0] = 0.0f;
	} else {
		resize_linear_map(n->a.resize_coord, pl->hi, pl->ho, resize_scale(n, xs, ys, 2),
				  resized_length(n, xs, ys, 2), &pl->th);
	}
	int d = xs->n_dims - 1;
	resize_linear_map(n->a.resize_coord, pl->wi, pl->wo, resize_scale(n, xs, ys, d),
			  resized_length(n, xs, ys, d), &pl->tw);
}

static void exec_resize(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0), *ys = out_shape(x);
	if (x->n->a.resize_linear) {
		struct resize_linear_plan pl;
		engine_resize_linear_plan(x->n, xs, ys, x->scratch, &pl);
		resize_linear_f32__ref(pl.n * pl.c, pl.hi, pl.wi, 1, pl.ho, pl.wo, &pl.th, &pl.tw,
				       x->in[0], x->out);
		return;
	}
	int64_t *maps = (int64_t *)x->scratch;
	engine_resize_maps(x->n, xs, ys, maps);
	resize_nearest__ref(xs->n_dims, xs->dims, ys->dims, maps, sizeof(float), x->in[0], x->out);
}

void engine_reduced_dims(const struct node *n, const struct shape *xs, bool *red)
{
	for (int d = 0; d < xs->n_dims; d++)
		red[d] = n->a.n_ints == 0;
	for (int i = 0; i < n->a.n_ints; i++) {
		int64_t ax = n->a.ints[i];
		red[ax < 0 ? ax + xs->n_dims : ax] = true;
	}
}

static void exec_reducemean(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	bool red[GRAPH_MAX_DIMS];
	engine_reduced_dims(x->n, xs, red);
	reduce_mean_f32__ref(xs->n_dims, xs->dims, red, x->in[0], x->out);
}

static void exec_reduce(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	bool red[GRAPH_MAX_DIMS];
	engine_reduced_dims(x->n, xs, red);
	enum f32_reduce f = x->n->op == OP_REDUCESUM   ? F32_REDUCE_SUM
			    : x->n->op == OP_REDUCEMAX ? F32_REDUCE_MAX
			    : x->n->op == OP_REDUCEMIN ? F32_REDUCE_MIN
			    : x->n->op == OP_REDUCEL2  ? F32_REDUCE_L2
						       : F32_REDUCE_SUMSQUARE;
	reduce_f32__ref(f, xs->n_dims, xs->dims, red, x->in[0], x->out);
}

void engine_layernorm_rows(const struct node *n, const struct shape *xs, int64_t *outer,
			   int64_t *inner)
{
	int axis = n->a.axis < 0 ? n->a.axis + xs->n_dims : n->a.axis;
	*outer = *inner = 1;
	for (int d = 0; d < xs->n_dims; d++) {
		if (d < axis)
			*outer *= xs->dims[d];
		else
			*inner *= xs->dims[d];
	}
}

static void exec_layernorm(const struct exec_args *x)
{
	int64_t outer, inner;
	engine_layernorm_rows(x->n, in_shape(x, 0), &outer, &inner);
	bool has_b = x->n->n_inputs > 2 && x->n->inputs[2] >= 0;
	layernorm_f32__ref(outer, inner, x->in[0], x->in[1], shape_numel(in_shape(x, 1)),
			   has_b ? x->in[2] : NULL, has_b ? shape_numel(in_shape(x, 2)) : 1,
			   x->n->a.epsilon, x->out);
}

static void exec_lrn(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	int64_t inner = 1;
	for (int i = 2; i < xs->n_dims; i++)
		inner *= xs->dims[i];
	const struct node_attrs *a = &x->n->a;
	lrn_f32__ref((int)xs->dims[0], (int)xs->dims[1], inner, a->lrn_size, a->alpha, a->beta,
		     a->lrn_bias, x->in[0], x->out);
}

/* [outer, dim, inner] view of a shape around an axis */
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

static void exec_slice(const struct exec_args *x)
{
	int64_t outer, dim, inner;
	axis_view(in_shape(x, 0), x->n->a.axis, &outer, &dim, &inner);
	slice_f32__ref(outer, dim, inner, x->n->a.ints[0], x->n->a.ints[2], x->n->a.ints[1],
		       x->in[0], x->out);
}

static void exec_expand(const struct exec_args *x)
{
	int64_t per = shape_numel(in_shape(x, 0)), n = out_shape(x)->dims[0];
	for (int64_t b = 0; b < n; b++)
		memcpy(x->out + b * per, x->in[0], sizeof(float) * (size_t)per);
}

static void exec_concat(const struct exec_args *x)
{
	const struct shape *ys = out_shape(x);
	int axis = x->n->a.axis < 0 ? x->n->a.axis + ys->n_dims : x->n->a.axis;
	int64_t outer, dim, inner, axis_dims[GRAPH_MAX_INPUTS];
	axis_view(ys, axis, &outer, &dim, &inner);
	for (int i = 0; i < x->n->n_inputs; i++)
		axis_dims[i] = in_shape(x, i)->dims[axis];
	concat_f32__ref(x->n->n_inputs, x->in, axis_dims, outer, inner, x->out);
}

static void softmax_view(const struct exec_args *x, int64_t *outer, int64_t *dim,
			 int64_t *inner)
{
	const struct shape *s = out_shape(x);
	int axis = x->n->a.axis < 0 ? x->n->a.axis + s->n_dims : x->n->a.axis;
	if (x->g->opset >= 13) {
		axis_view(s, axis, outer, dim, inner);
		return;
	}
	/* before opset 13: the input is coerced to 2-D at axis */
	*outer = *dim = 1;
	*inner = 1;
	for (int i = 0; i < s->n_dims; i++) {
		if (i < axis)
			*outer *= s->dims[i];
		else
			*dim *= s->dims[i];
	}
}

static void exec_softmax(const struct exec_args *x)
{
	int64_t outer, dim, inner;
	softmax_view(x, &outer, &dim, &inner);
	softmax_f32__ref(outer, dim, inner, x->in[0], x->out);
}

static void exec_logsoftmax(const struct exec_args *x)
{
	int64_t outer, dim, inner;
	softmax_view(x, &outer, &dim, &inner);
	logsoftmax_f32__ref(outer, dim, inner, x->in[0], x->out);
}

static void exec_copy(const struct exec_args *x)
{
	memcpy(x->out, x->in[0], sizeof(float) * (size_t)shape_numel(out_shape(x)));
}

static void exec_transpose(const struct exec_args *x)
{
	const struct shape *xs = in_shape(x, 0);
	int64_t perm[GRAPH_MAX_DIMS];
	for (int i = 0; i < xs->n_dims; i++)
		perm[i] = x->n->a.n_ints ? x->n->a.ints[i] : xs->n_dims - 1 - i;
	transpose_f32__ref(xs->n_dims, xs->dims, perm, x->in[0], x->out);
}

static const exec_fn exec_table[OP_COUNT] = {
	[OP_CONV] = exec_conv,
	[OP_GEMM] = exec_gemm,
	[OP_MATMUL] = exec_matmul,
	[OP_RELU] = exec_relu,
	[OP_CLIP] = exec_clip,
	[OP_BATCHNORM] = exec_batchnorm,
	[OP_MAXPOOL] = exec_maxpool,
	[OP_AVGPOOL] = exec_avgpool,
	[OP_GLOBALAVGPOOL] = exec_gap,
	[OP_ADD] = exec_add,
	[OP_CONCAT] = exec_concat,
	[OP_FLATTEN] = exec_copy,
	[OP_RESHAPE] = exec_copy,
	[OP_SOFTMAX] = exec_softmax,
	[OP_LOGSOFTMAX] = exec_logsoftmax,
	[OP_IDENTITY] = exec_copy,
	[OP_TRANSPOSE] = exec_transpose,
	[OP_SQUEEZE] = exec_copy,
	[OP_UNSQUEEZE] = exec_copy,
	[OP_SIGMOID] = exec_unary,
	[OP_TANH] = exec_unary,
	[OP_HARDSIGMOID] = exec_unary,
	[OP_HARDSWISH] = exec_unary,
	[OP_LEAKYRELU] = exec_unary,
	[OP_PRELU] = exec_binary,
	[OP_MUL] = exec_binary,
	[OP_SUB] = exec_binary,
	[OP_DIV] = exec_binary,
	[OP_POW] = exec_binary,
	[OP_SQRT] = exec_unary,
	[OP_ERF] = exec_unary,
	[OP_SUM] = exec_sum,
	[OP_PAD] = exec_pad,
	[OP_REDUCEMEAN] = exec_reducemean,
	[OP_LAYERNORM] = exec_layernorm,
	[OP_LRN] = exec_lrn,
	[OP_EXP] = exec_unary,
	[OP_NEG] = exec_unary,
	[OP_RECIPROCAL] = exec_unary,
	[OP_ABS] = exec_unary,
	[OP_SLICE] = exec_slice,
	[OP_RESIZE] = exec_resize,
	[OP_EXPAND] = exec_expand,
	[OP_ELU] = exec_unary,
	[OP_SELU] = exec_unary,
	[OP_CELU] = exec_unary,
	[OP_SOFTPLUS] = exec_unary,
	[OP_SOFTSIGN] = exec_unary,
	[OP_THRESHOLDEDRELU] = exec_unary,
	[OP_CONVTRANSPOSE] = exec_convtranspose,
	[OP_RNN] = exec_rnn,
	[OP_GRU] = exec_rnn,
	[OP_LSTM] = exec_rnn,
	[OP_FAKEQUANT] = exec_fakequant,
	[OP_REDUCESUM] = exec_reduce,
	[OP_REDUCEMAX] = exec_reduce,
	[OP_REDUCEMIN] = exec_reduce,
	[OP_REDUCEL2] = exec_reduce,
	[OP_REDUCESUMSQUARE] = exec_reduce,
	[OP_MAX] = exec_binary,
	[OP_MIN] = exec_binary,
	[OP_LOG] = exec_unary,
};
_Static_assert(sizeof exec_table / sizeof exec_table[0] == OP_COUNT, "every op needs an executor");

size_t engine_node_scratch_bytes(const struct graph *g, const struct node *n,
				 const struct shape *shapes)
{
	if (shape_numel(&shapes[n->output]) == 0)
		return 0; /* not run (engine_exec_node) */
	if (n->op == OP_RESIZE) {
		const struct shape *ys = &shapes[n->output];
		int64_t total = 0;
		for (int d = 0; d < ys->n_dims; d++)
			total += ys->dims[d];
		/* nearest: one int64 per entry; linear: two and a float */
		return (2 * sizeof(int64_t) + sizeof(float)) * (size_t)total;
	}
	if (op_is_recurrent(n->op)) {
		struct rnn_params p;
		engine_rnn_params(n, shapes, &p);
		return sizeof(float) * rnn_scratch_floats(&p);
	}
	if (n->op == OP_CONVTRANSPOSE) {
		struct conv2d_params p;
		engine_convtranspose_params(n, shapes, &p);
		return conv2d_backward_scratch_bytes(&p);
	}
	if (n->op != OP_CONV)
		return 0;
	struct conv2d_params p;
	conv_params(n, &shapes[n->inputs[0]], &shapes[n->inputs[1]], &shapes[n->output], &p);
	return conv2d_f32_scratch_bytes(&p);
}

enum presso_status engine_exec_node(const struct graph *g, const struct node *n,
				    const struct shape *shapes, const float *const *in,
				    float *out, float *scratch, float act_min, float act_max)
{
	PRESSO_CHECK((unsigned)n->op < OP_COUNT && exec_table[n->op]);
	/* an empty output: nothing to compute (its kernel, a Conv's or a Resize's
	 * maps, may still be huge, and no scratch was sized for it) */
	if (shape_numel(&shapes[n->output]) == 0)
		return PRESSO_OK;
	struct exec_args x = {
		.g = g, .n = n, .shapes = shapes, .in = in, .out = out,
		.scratch = scratch, .act_min = act_min, .act_max = act_max,
	};
	exec_table[n->op](&x);
	return PRESSO_OK;
}

/* --- planning ------------------------------------------------------------- */

static bool is_alias_op(enum op_type op)
{
	return op == OP_RESHAPE || op == OP_FLATTEN || op == OP_SQUEEZE || op == OP_UNSQUEEZE ||
	       op == OP_IDENTITY;
}

static bool is_graph_output(const struct graph *g, int v)
{
	for (int i = 0; i < g->n_outputs; i++)
		if (g->outputs[i] == v)
			return true;
	return false;
}

/* Fuses a Relu/Clip into the Conv/Gemm producing its only input. */
static void plan_fusion(struct engine *e)
{
	const struct graph *g = e->g;
	for (int i = 0; i < g->n_nodes; i++) {
		int j = graph_fused_activation(g, i);
		if (j < 0 || e->steps[i].kind != STEP_RUN)
			continue;
		const struct node *act = &g->nodes[j];
		e->steps[i].act_min = act->op == OP_RELU ? 0.0f : act->a.clip_min;
		e->steps[i].act_max = act->op == OP_RELU ? INFINITY : act->a.clip_max;
		e->steps[i].observe = act->output;
		e->steps[j].kind = STEP_FUSED;
		e->rep[act->output] = e->rep[g->nodes[i].output];
	}
}

static enum presso_status plan_memory(struct engine *e)
{
	const struct graph *g = e->g;
	int nv = g->n_values;
	struct arena_buf *bufs = calloc((size_t)nv, sizeof *bufs);
	int *slot = malloc(sizeof(int) * (size_t)nv);
	int *owner = malloc(sizeof(int) * (size_t)nv);
	if (!bufs || !slot || !owner) {
		free(bufs);
		free(slot);
		free(owner);
		return status_fail(PRESSO_E_NOMEM, "out of memory planning the engine");
	}
	int n_bufs = 0;
	for (int v = 0; v < nv; v++)
		slot[v] = -1;
	/* every value that needs a buffer extends the lifetime of its representative */
	for (int v = 0; v < nv; v++) {
		if (value_is_const(&g->values[v]))
			continue;
		int r = e->rep[v];
		if (slot[r] < 0) {
			slot[r] = n_bufs;
			owner[n_bufs] = r;
			bufs[n_bufs++] = (struct arena_buf){.first = g->n_nodes + 1, .last = -2};
		}
		struct arena_buf *b = &bufs[slot[r]];
		int def = g->values[v].producer; /* -1 for graph inputs */
		if (def < b->first)
			b->first = def;
		if (def > b->last)
			b->last = def;
		size_t bytes = sizeof(float) * (size_t)shape_numel(&e->shapes[v]);
		if (bytes > b->bytes)
			b->bytes = bytes;
		if (is_graph_output(g, v))
			b->last = g->n_nodes;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		for (int k = 0; k < n->n_inputs; k++) {
			int v = n->inputs[k];
			if (v < 0 || value_is_const(&g->values[v]))
				continue;
			struct arena_buf *b = &bufs[slot[e->rep[v]]];
			if (i > b->last)
				b->last = i;
		}
	}
	enum presso_status s = arena_plan(bufs, n_bufs, &e->arena_bytes);
	for (int i = 0; s == PRESSO_OK && i < n_bufs; i++)
		e->offset[owner[i]] = bufs[i].offset;
	free(bufs);
	free(slot);
	free(owner);
	if (s != PRESSO_OK)
		return s;
	e->arena = aligned_alloc(ARENA_ALIGN, e->arena_bytes);
	if (!e->arena)
		return status_fail(PRESSO_E_NOMEM, "out of memory: activation arena of %zu bytes",
				   e->arena_bytes);
	memset(e->arena, 0, e->arena_bytes);
	return PRESSO_OK;
}

static const float *value_ptr(const struct engine *e, int v)
{
	const struct value *val = &e->g->values[v];
	if (val->data)
		return val->data;
	return (const float *)((const char *)e->arena + e->offset[e->rep[v]]);
}

static enum presso_status create(const struct graph *g, int max_batch, bool fuse,
				 struct engine **out)
{
	*out = NULL;
	if (max_batch < 1)
		return status_fail(PRESSO_E_USAGE, "engine batch must be at least 1 (got %d)",
				   max_batch);
	struct engine *e = calloc(1, sizeof *e);
	enum presso_status s = PRESSO_E_NOMEM;
	if (!e)
		return status_fail(s, "out of memory creating an engine");
	e->g = g;
	e->max_batch = max_batch;
	e->cur_batch = max_batch;
	e->shapes = calloc((size_t)g->n_values, sizeof *e->shapes);
	e->rep = malloc(sizeof(int) * (size_t)g->n_values);
	e->offset = calloc((size_t)g->n_values, sizeof *e->offset);
	e->steps = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *e->steps);
	e->in_ptrs = calloc(GRAPH_MAX_INPUTS, sizeof *e->in_ptrs);
	if (!e->shapes || !e->rep || !e->offset || !e->steps || !e->in_ptrs) {
		status_fail(s, "out of memory creating an engine");
		goto fail;
	}
	s = graph_infer_shapes(g, max_batch, e->shapes);
	if (s != PRESSO_OK)
		goto fail;
	for (int v = 0; v < g->n_values; v++)
		e->rep[v] = v;
	for (int i = 0; i < g->n_nodes; i++)
		e->steps[i] = (struct step){STEP_RUN, -INFINITY, INFINITY, g->nodes[i].output};
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		int v = n->inputs[0];
		if (is_alias_op(n->op) && v >= 0 && !value_is_const(&g->values[v])) {
			e->steps[i].kind = STEP_ALIAS;
			e->rep[n->output] = e->rep[v];
		}
	}
	if (fuse)
		plan_fusion(e);
	/* an alias planned before a fusion points at the fused activation's output,
	 * which now shares its producer's buffer: follow the chain to its end */
	for (int v = 0; v < g->n_values; v++)
		while (e->rep[e->rep[v]] != e->rep[v])
			e->rep[v] = e->rep[e->rep[v]];
	size_t scratch = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		size_t b = engine_node_scratch_bytes(g, &g->nodes[i], e->shapes);
		if (b > scratch)
			scratch = b;
	}
	e->scratch_bytes = arena_align(scratch ? scratch : ARENA_ALIGN);
	e->scratch = aligned_alloc(ARENA_ALIGN, e->scratch_bytes);
	if (!e->scratch) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory: scratch of %zu bytes",
				e->scratch_bytes);
		goto fail;
	}
	s = plan_memory(e);
	if (s != PRESSO_OK)
		goto fail;
	*out = e;
	return PRESSO_OK;
fail:
	engine_free(e);
	return s;
}

enum presso_status engine_create(const struct graph *g, int max_batch, struct engine **out)
{
	return create(g, max_batch, true, out);
}

enum presso_status engine_create_unfused(const struct graph *g, int max_batch,
					 struct engine **out)
{
	return create(g, max_batch, false, out);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	free(e->shapes);
	free(e->rep);
	free(e->offset);
	free(e->steps);
	free(e->arena);
	free(e->scratch);
	free(e->in_ptrs);
	free(e);
}

float *engine_input(struct engine *e, int i)
{
	PRESSO_CHECK(i >= 0 && i < e->g->n_inputs);
	return (float *)value_ptr(e, e->g->inputs[i]);
}

const float *engine_output(const struct engine *e, int i, struct shape *shape)
{
	PRESSO_CHECK(i >= 0 && i < e->g->n_outputs);
	if (shape)
		*shape = e->shapes[e->g->outputs[i]];
	return value_ptr(e, e->g->outputs[i]);
}

enum presso_status engine_run(struct engine *e, int batch)
{
	const struct graph *g = e->g;
	if (batch < 1 || batch > e->max_batch)
		return status_fail(PRESSO_E_USAGE, "batch %d outside 1..%d this engine was planned for",
				   batch, e->max_batch);
	if (batch != e->cur_batch) {
		enum presso_status s = graph_infer_shapes(g, batch, e->shapes);
		if (s != PRESSO_OK)
			return s;
		e->cur_batch = batch;
	}
	for (int i = 0; e->observer && i < g->n_inputs; i++) {
		int v = g->inputs[i];
		e->observer(e->observer_ctx, v, value_ptr(e, v), &e->shapes[v]);
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		if (e->steps[i].kind == STEP_FUSED)
			continue;
		if (e->steps[i].kind == STEP_ALIAS) {
			if (e->observer)
				e->observer(e->observer_ctx, n->output, value_ptr(e, n->output),
					    &e->shapes[n->output]);
			continue;
		}
		for (int k = 0; k < n->n_inputs; k++)
			e->in_ptrs[k] = n->inputs[k] >= 0 ? value_ptr(e, n->inputs[k]) : NULL;
		engine_exec_node(g, n, e->shapes, e->in_ptrs, (float *)value_ptr(e, n->output),
				 e->scratch, e->steps[i].act_min, e->steps[i].act_max);
		if (e->observer) {
			int v = e->steps[i].observe;
			e->observer(e->observer_ctx, v, value_ptr(e, v), &e->shapes[v]);
		}
	}
	return PRESSO_OK;
}

void engine_set_observer(struct engine *e, engine_observer_fn fn, void *ctx)
{
	e->observer = fn;
	e->observer_ctx = ctx;
}

size_t engine_arena_bytes(const struct engine *e)
{
	return e->arena_bytes;
}

size_t engine_scratch_bytes(const struct engine *e)
{
	return e->scratch_bytes;
}
