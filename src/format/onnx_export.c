/* onnx_export.c - a quantized model as an ONNX model in QDQ form (onnx_export.h).
 *
 * The form (opset 13, IR version 7; opset 17 and IR version 8 when the graph
 * has HardSwish or LayerNormalization), for the graph the quantized model runs:
 *
 *   - every value the INT8 engine holds as uint8 (qmodel_value_qparams) is
 *     followed by QuantizeLinear -> DequantizeLinear with its scale and uint8
 *     zero point. The producing node writes "<name>_float"; the DequantizeLinear
 *     writes the original name, so readers and graph outputs keep their names.
 *     A graph input keeps its name and is read through "<name>_dequantized".
 *     A MatMul product whose bias Add the engine folds into the GEMM
 *     (qmodel_value_is_folded) has no pair: the MatMul and the Add run in
 *     float and only the Add's output is quantized, as in the engine.
 *   - activations narrower than 8 bits live in the uint8 container with
 *     q in [0, 2^bits - 1]; the engine clamps to that range, so the float value
 *     first goes through Clip(scale * (0 - zero), scale * (qmax - zero)).
 *     Dividing either bound by the scale lands within float rounding of an
 *     integer, so QuantizeLinear maps them to 0 and qmax exactly.
 *   - each compressible layer (Conv, Gemm, MatMul) reads its weight through
 *     DequantizeLinear of an int8 initializer "<weight>_quantized" with one float
 *     scale per output channel (zero points 0): axis 0 for Conv
 *     [c_out][c_in/group][kh][kw] and for Gemm with transB = 1 ([N][K]); axis 1
 *     for Gemm with transB = 0 and MatMul ([K][N]). Sub-8-bit weights keep
 *     their narrower range in the int8 container. The bias is an int32
 *     initializer read through DequantizeLinear with scale s_in * w_scale[c]
 *     (s_in: the layer input's activation scale), axis 0, zero points 0; a
 *     MatMul whose bias correction made a bias gets an Add. Gemm's alpha and
 *     beta are folded into the weights and the bias, so they are written as 1.
 *   - a recurrent layer's R that the engine quantizes (qmodel_qconst_view) is
 *     an int8 initializer of ONNX's rows [dirs * gates * hidden][hidden]
 *     through DequantizeLinear (a scale per row, axis 0), then a Reshape to
 *     [dirs, gates * hidden, hidden].
 *   - every other node is written as it is (its attributes as imported: explicit
 *     pads, Clip bounds and Reshape/Squeeze/Unsqueeze axes as opset-13 inputs);
 *     float constants are float initializers, int64 ones int64 initializers.
 *   - graph inputs and outputs keep their names, float32, with a symbolic batch
 *     dimension "N", or the model's fixed batch when it has one (a fixed
 *     dimension 0 is written as it is, like every Reshape shape).
 * What the form does not reproduce bit for bit: presso rounds requantization
 * in Q31 fixed point (gemmlowp) and averages pools in integers, a runtime in
 * float; results differ in the last bit of a few activations. presso runs a
 * recurrent layer's recurrence in integers (the hidden state at 1/127 steps
 * times R's codes), a runtime in float on R dequantized: ONNX has no form
 * for it.
 *
 * Tensors go into raw_data in the host's byte order; presso runs on
 * little-endian hosts only, which is ONNX's order (checked at run time).
 *
 * Every allocation of the protobuf-c structures is owned by one builder and
 * freed at the end; an out-of-memory sets a flag that stops the build.
 */
#define _POSIX_C_SOURCE 200809L
#include "format/onnx_export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "model/engine.h" /* the Resize modes */
#include "model/graph.h"
#include "onnx.pb-c.h"

struct xb {
	const struct qmodel *m;
	const struct graph *g;
	bool oom;
	void **owned;
	size_t n_owned, cap_owned;
	Onnx__NodeProto **nodes;
	size_t n_nodes, cap_nodes;
	Onnx__TensorProto **inits;
	size_t n_inits, cap_inits;
	char **names; /* names made here, so that new names never collide */
	size_t n_names, cap_names;
	char **read_name;  /* [n_values] the name readers of a value use */
	char **write_name; /* [n_values] the name its producer writes */
	bool *emitted;     /* [n_values] constant written as an initializer */
};

/* Appends item to the growing array arr of n entries and capacity cap; on
 * failure sets b->oom (and the item is not kept). */
#define PUSH(b, arr, n, cap, item)                                                    \
	do {                                                                          \
		if ((n) == (cap)) {                                                   \
			size_t c_ = (cap) ? 2 * (cap) : 64;                           \
			void *p_ = realloc((arr), c_ * sizeof *(arr));                \
			if (!p_) {                                                    \
				(b)->oom = true;                                      \
				break;                                                \
			}                                                             \
			(arr) = p_;                                                   \
			(cap) = c_;                                                   \
		}                                                                     \
		(arr)[(n)++] = (item);                                                \
	} while (0)

static void *own(struct xb *b, void *p)
{
	if (!p) {
		b->oom = true;
		return NULL;
	}
	size_t before = b->n_owned;
	PUSH(b, b->owned, b->n_owned, b->cap_owned, p);
	if (b->n_owned == before) {
		free(p);
		return NULL;
	}
	return p;
}

static void *zalloc(struct xb *b, size_t bytes)
{
	return own(b, calloc(1, bytes ? bytes : 1));
}

static char *dup_str(struct xb *b, const char *s)
{
	return own(b, strdup(s));
}

static bool name_taken(const struct xb *b, const char *s)
{
	if (graph_find_value(b->g, s) >= 0)
		return true;
	for (size_t i = 0; i < b->n_names; i++)
		if (strcmp(b->names[i], s) == 0)
			return true;
	return false;
}

/* A new name "<base><suffix>", made unique with "_2", "_3", ... if needed. */
static char *new_name(struct xb *b, const char *base, const char *suffix)
{
	size_t len = strlen(base) + strlen(suffix) + 24;
	char *s = zalloc(b, len);
	if (!s)
		return NULL;
	snprintf(s, len, "%s%s", base, suffix);
	for (int k = 2; name_taken(b, s); k++)
		snprintf(s, len, "%s%s_%d", base, suffix, k);
	PUSH(b, b->names, b->n_names, b->cap_names, s);
	return b->oom ? NULL : s;
}

/* --- tensors and nodes --------------------------------------------------- */

static Onnx__TensorProto *add_init(struct xb *b, const char *name, int32_t type,
				   const int64_t *dims, int n_dims, const void *data,
				   size_t elem_bytes)
{
	if (b->oom)
		return NULL;
	Onnx__TensorProto *t = zalloc(b, sizeof *t);
	if (!t)
		return NULL;
	onnx__tensor_proto__init(t);
	t->name = dup_str(b, name);
	t->n_dims = (size_t)n_dims;
	t->dims = zalloc(b, sizeof(int64_t) * (size_t)(n_dims ? n_dims : 1));
	size_t count = 1;
	for (int i = 0; t->dims && i < n_dims; i++) {
		t->dims[i] = dims[i];
		count *= (size_t)dims[i];
	}
	t->has_data_type = 1;
	t->data_type = type;
	t->has_raw_data = 1;
	t->raw_data.len = count * elem_bytes;
	t->raw_data.data = zalloc(b, t->raw_data.len);
	if (b->oom)
		return NULL;
	memcpy(t->raw_data.data, data, t->raw_data.len);
	PUSH(b, b->inits, b->n_inits, b->cap_inits, t);
	return b->oom ? NULL : t;
}

static const char *scalar_f32(struct xb *b, const char *base, const char *suffix, float v)
{
	char *name = new_name(b, base, suffix);
	if (name)
		add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0, &v, 4);
	return name;
}

/* A node with n_in inputs (NULL or "" for an absent optional one) and one output. */
static Onnx__NodeProto *add_node(struct xb *b, const char *op, const char *name, int n_in,
				 const char *const *in, const char *out)
{
	if (b->oom)
		return NULL;
	Onnx__NodeProto *n = zalloc(b, sizeof *n);
	if (!n)
		return NULL;
	onnx__node_proto__init(n);
	n->op_type = dup_str(b, op);
	n->name = dup_str(b, name);
	n->domain = dup_str(b, "");
	n->n_input = (size_t)n_in;
	n->input = zalloc(b, sizeof(char *) * (size_t)(n_in ? n_in : 1));
	for (int i = 0; n->input && i < n_in; i++)
		n->input[i] = dup_str(b, in[i] ? in[i] : "");
	n->n_output = 1;
	n->output = zalloc(b, sizeof(char *));
	if (n->output)
		n->output[0] = dup_str(b, out);
	if (b->oom)
		return NULL;
	PUSH(b, b->nodes, b->n_nodes, b->cap_nodes, n);
	return b->oom ? NULL : n;
}

static Onnx__AttributeProto *add_attr(struct xb *b, Onnx__NodeProto *n, const char *name,
				      Onnx__AttributeProto__AttributeType type)
{
	if (!n || b->oom)
		return NULL;
	Onnx__AttributeProto *a = zalloc(b, sizeof *a);
	Onnx__AttributeProto **grown = zalloc(b, sizeof *grown * (n->n_attribute + 1));
	if (!a || !grown)
		return NULL;
	onnx__attribute_proto__init(a);
	a->name = dup_str(b, name);
	a->has_type = 1;
	a->type = type;
	if (n->n_attribute)
		memcpy(grown, n->attribute, sizeof *grown * n->n_attribute);
	grown[n->n_attribute++] = a;
	n->attribute = grown;
	return a;
}

static void attr_int(struct xb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	if (a) {
		a->has_i = 1;
		a->i = v;
	}
}

static void attr_float(struct xb *b, Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a =
		add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	if (a) {
		a->has_f = 1;
		a->f = v;
	}
}

static void attr_ints(struct xb *b, Onnx__NodeProto *n, const char *name, const int64_t *v,
		      int count)
{
	Onnx__AttributeProto *a = add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	if (!a)
		return;
	a->ints = zalloc(b, sizeof(int64_t) * (size_t)(count ? count : 1));
	if (!a->ints)
		return;
	memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
	a->n_ints = (size_t)count;
}

static void attr_str(struct xb *b, Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a =
		add_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	if (!a)
		return;
	a->has_s = 1;
	a->s.len = strlen(v);
	a->s.data = zalloc(b, a->s.len + 1);
	if (a->s.data)
		memcpy(a->s.data, v, a->s.len);
}

/* Resize's scales input: the node's scales, or for a size the float scale
 * whose product with the input's dimension floors to it (as runtimes compute
 * the output's shape from scales in float); the batch's is 1, so the export
 * keeps a dynamic batch. */
static const char *resize_scales(struct xb *b, const struct node *n)
{
	const struct shape *xs = &b->g->values[n->inputs[0]].shape;
	const struct shape *ys = &b->g->values[n->output].shape;
	float sc[GRAPH_MAX_DIMS];
	int64_t len = n->a.n_ints;
	for (int d = 0; d < n->a.n_ints; d++) {
		sc[d] = n->a.scales[d];
		if (d == 0)
			sc[d] = 1.0f;
		else if (!(sc[d] > 0.0f) && xs->dims[d] > 0) {
			float f = (float)((double)ys->dims[d] / (double)xs->dims[d]);
			while ((int64_t)((float)xs->dims[d] * f) < ys->dims[d])
				f = nextafterf(f, INFINITY);
			sc[d] = f;
		} else if (!(sc[d] > 0.0f)) {
			sc[d] = 1.0f;
		}
	}
	char *name = new_name(b, n->name, "_scales");
	if (name)
		add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &len, 1, sc, 4);
	return name ? name : "";
}

/* --- the QDQ pieces ------------------------------------------------------ */

/* src (float) -> [Clip to the narrow range] -> QuantizeLinear -> DequantizeLinear
 * -> dst (float), with the engine's parameters for the value called base. */
static void emit_qdq(struct xb *b, const char *base, const char *src, const char *dst,
		     const struct qparams *qp)
{
	const char *x = src;
	int32_t qmax = quant_act_qmax(qp);
	if (qmax < 255) {
		const char *in[3] = {src, scalar_f32(b, base, "_clip_min",
						     qp->scale * (float)(0 - qp->zero)),
				     scalar_f32(b, base, "_clip_max",
						qp->scale * (float)(qmax - qp->zero))};
		char *clipped = new_name(b, base, "_clipped");
		char *node = new_name(b, base, "_Clip");
		if (!clipped || !node)
			return;
		add_node(b, "Clip", node, 3, in, clipped);
		x = clipped;
	}
	char *scale = new_name(b, base, "_scale");
	char *zero = new_name(b, base, "_zero_point");
	char *q = new_name(b, base, "_quantized");
	char *qn = new_name(b, base, "_QuantizeLinear");
	char *dn = new_name(b, base, "_DequantizeLinear");
	if (b->oom)
		return;
	uint8_t z = (uint8_t)qp->zero;
	add_init(b, scale, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0, &qp->scale, 4);
	add_init(b, zero, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, NULL, 0, &z, 1);
	const char *qin[3] = {x, scale, zero};
	add_node(b, "QuantizeLinear", qn, 3, qin, q);
	const char *din[3] = {q, scale, zero};
	add_node(b, "DequantizeLinear", dn, 3, din, dst);
}

/* A per-axis DequantizeLinear of an integer initializer: returns the float name. */
static const char *emit_dq_const(struct xb *b, const char *base, int32_t type, size_t elem,
				 const int64_t *dims, int n_dims, const void *data,
				 const float *scale, int64_t n_scale, int axis)
{
	char *qname = new_name(b, base, "_quantized");
	char *sname = new_name(b, base, "_scale");
	char *zname = new_name(b, base, "_zero_point");
	char *fname = new_name(b, base, "_dequantized");
	char *node = new_name(b, base, "_DequantizeLinear");
	void *zeros = zalloc(b, elem * (size_t)n_scale);
	if (b->oom)
		return NULL;
	add_init(b, qname, type, dims, n_dims, data, elem);
	add_init(b, sname, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &n_scale, 1, scale, 4);
	add_init(b, zname, type, &n_scale, 1, zeros, elem);
	const char *in[3] = {qname, sname, zname};
	attr_int(b, add_node(b, "DequantizeLinear", node, 3, in, fname), "axis", axis);
	return fname;
}

/* A constant value read by a node as it is: a float or int64 initializer. */
static void emit_const(struct xb *b, int v)
{
	const struct value *val = &b->g->values[v];
	if (b->emitted[v])
		return;
	b->emitted[v] = true;
	if (val->data)
		add_init(b, val->name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, val->shape.dims,
			 val->shape.n_dims, val->data, 4);
	else
		add_init(b, val->name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, val->shape.dims,
			 val->shape.n_dims, val->idata, 8);
}

/* After the node writing value v: its quantization, if the engine has one. */
static void emit_value_qdq(struct xb *b, int v)
{
	struct qparams qp;
	if (!qmodel_value_is_folded(b->m, v) && qmodel_value_qparams(b->m, v, &qp))
		emit_qdq(b, b->g->values[v].name, b->write_name[v], b->read_name[v], &qp);
}

/* --- layers ---------------------------------------------------------------- */

static enum presso_status emit_layer(struct xb *b, const struct qlayer_view *L)
{
	const struct graph *g = b->g;
	const struct node *n = &g->nodes[L->node];
	const struct value *w = &g->values[n->inputs[1]];
	struct qparams qin;
	if (!qmodel_value_qparams(b->m, n->inputs[0], &qin))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': the layer's input is not quantized", n->name);
	int64_t n_out = L->n_out, k = L->k;
	PRESSO_CHECK(n_out * k == shape_numel(&w->shape));

	/* the weight, in the layout the node reads */
	bool nk = n->op == OP_CONV || (n->op == OP_GEMM && n->a.trans_b);
	int64_t dims[GRAPH_MAX_DIMS];
	int n_dims;
	const int8_t *wdata = L->w;
	int8_t *kn = NULL;
	if (n->op == OP_CONV) {
		n_dims = w->shape.n_dims;
		memcpy(dims, w->shape.dims, sizeof(int64_t) * (size_t)n_dims);
	} else {
		n_dims = 2;
		dims[0] = nk ? n_out : k;
		dims[1] = nk ? k : n_out;
	}
	if (!nk) {
		kn = zalloc(b, (size_t)(n_out * k));
		if (!kn)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		for (int64_t r = 0; r < n_out; r++)
			for (int64_t c = 0; c < k; c++)
				kn[c * n_out + r] = L->w[r * k + c];
		wdata = kn;
	}
	const char *wname = emit_dq_const(b, w->name, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, dims,
					  n_dims, wdata, L->w_scale, n_out, nk ? 0 : 1);

	/* the bias: int32 in units of s_in * w_scale[c] */
	bool has_bias = n->op != OP_MATMUL;
	for (int64_t c = 0; !has_bias && c < n_out; c++)
		has_bias = L->bias[c] != 0;
	const char *bname = NULL;
	if (has_bias) {
		float *bscale = zalloc(b, sizeof(float) * (size_t)n_out);
		if (!bscale)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		for (int64_t c = 0; c < n_out; c++)
			bscale[c] = (float)((double)qin.scale * (double)L->w_scale[c]);
		const struct value *bv = n->n_inputs > 2 && n->inputs[2] >= 0
						 ? &g->values[n->inputs[2]]
						 : NULL;
		char *base = NULL;
		if (!bv)
			base = new_name(b, n->name, "_bias");
		bname = emit_dq_const(b, bv ? bv->name : base ? base : "bias",
				      ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 4, &n_out, 1, L->bias,
				      bscale, n_out, 0);
	}

	const char *x = b->read_name[n->inputs[0]];
	const char *y = b->write_name[n->output];
	if (n->op == OP_CONV) {
		const char *in[3] = {x, wname, bname};
		Onnx__NodeProto *p = add_node(b, "Conv", n->name, 3, in, y);
		int64_t ks[2] = {w->shape.dims[2], w->shape.dims[3]};
		int64_t st[2] = {n->a.strides[0], n->a.strides[1]};
		int64_t pads[4] = {n->a.pads[0], n->a.pads[1], n->a.pads[2], n->a.pads[3]};
		int64_t dil[2] = {n->a.dilations[0], n->a.dilations[1]};
		attr_ints(b, p, "kernel_shape", ks, 2);
		attr_ints(b, p, "strides", st, 2);
		attr_ints(b, p, "pads", pads, 4);
		attr_ints(b, p, "dilations", dil, 2);
		attr_int(b, p, "group", n->a.group);
	} else if (n->op == OP_GEMM) {
		const char *in[3] = {x, wname, bname};
		Onnx__NodeProto *p = add_node(b, "Gemm", n->name, 3, in, y);
		attr_float(b, p, "alpha", 1.0f);
		attr_float(b, p, "beta", 1.0f);
		attr_int(b, p, "transB", nk ? 1 : 0);
	} else {
		const char *in[2] = {x, wname};
		if (!bname) {
			add_node(b, "MatMul", n->name, 2, in, y);
		} else {
			char *mm = new_name(b, n->name, "_matmul");
			char *add = new_name(b, n->name, "_bias_Add");
			if (mm && add) {
				add_node(b, "MatMul", n->name, 2, in, mm);
				const char *ain[2] = {mm, bname};
				add_node(b, "Add", add, 2, ain, y);
			}
		}
	}
	return b->oom ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
}

/* --- every other node ---------------------------------------------------------- */

static void window_attrs(struct xb *b, Onnx__NodeProto *p, const struct node *n)
{
	int64_t ks[2] = {n->a.kernel[0], n->a.kernel[1]};
	int64_t st[2] = {n->a.strides[0], n->a.strides[1]};
	int64_t pads[4] = {n->a.pads[0], n->a.pads[1], n->a.pads[2], n->a.pads[3]};
	attr_ints(b, p, "kernel_shape", ks, 2);
	attr_ints(b, p, "strides", st, 2);
	attr_ints(b, p, "pads", pads, 4);
	if (n->a.ceil_mode)
		attr_int(b, p, "ceil_mode", 1);
}

static enum presso_status emit_node(struct xb *b, int i)
{
	const struct graph *g = b->g;
	const struct node *n = &g->nodes[i];
	const char *in[GRAPH_MAX_INPUTS + 2];
	int n_in = n->n_inputs;
	for (int k = 0; k < n->n_inputs; k++) {
		int v = n->inputs[k];
		in[k] = v < 0 ? "" : b->read_name[v];
		/* (a projected recurrent layer's R^T goes back to R below) */
		bool rt = op_is_recurrent(n->op) && n->a.rnn_projected && k == RNN_IN_R;
		if (v >= 0 && value_is_const(&g->values[v]) && !rt)
			emit_const(b, v);
	}
	const char *y = b->write_name[n->output];
	const char *op = op_name(n->op);
	if (n->op == OP_FAKEQUANT) {
		/* a QDQ model's pair, as it came: uint8 or int8 by its range */
		char *scale = new_name(b, n->name, "_scale"), *zero = new_name(b, n->name, "_zero_point");
		char *q = new_name(b, n->name, "_quantized"), *dn = new_name(b, n->name, "_Dequantize");
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		bool s8 = n->a.clip_min < 0.0f;
		int8_t z8 = (int8_t)n->a.beta;
		uint8_t zu = (uint8_t)n->a.beta;
		add_init(b, scale, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0, &n->a.alpha, 4);
		add_init(b, zero, s8 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT8 : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
			 NULL, 0, s8 ? (const void *)&z8 : (const void *)&zu, 1);
		const char *qin[3] = {in[0], scale, zero}, *din[3] = {q, scale, zero};
		add_node(b, "QuantizeLinear", n->name, 3, qin, q);
		add_node(b, "DequantizeLinear", dn, 3, din, y);
		return b->oom ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
	}
	/* inputs that the importer turned into attributes go back to inputs */
	if (n->op == OP_CLIP) {
		n_in = 3;
		in[1] = isinf(n->a.clip_min) ? "" : scalar_f32(b, n->name, "_min", n->a.clip_min);
		in[2] = isinf(n->a.clip_max) ? "" : scalar_f32(b, n->name, "_max", n->a.clip_max);
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		if (!in[2][0] && !in[1][0])
			n_in = 1;
		else if (!in[2][0])
			n_in = 2;
	} else if (n->op == OP_REDUCESUM && n->a.n_ints > 0) {
		int64_t len = n->a.n_ints;
		char *name = new_name(b, n->name, "_axes");
		if (name)
			add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &len, 1, n->a.ints, 8);
		in[1] = name ? name : "";
		n_in = 2;
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (n->op == OP_SLICE) {
		/* starts, ends, axes, steps; an end before index 0 is INT64_MIN (a
		 * -1 would mean the last element) */
		int64_t one = 1, first = n->a.ints[0], count = n->a.ints[1], step = n->a.ints[2];
		int64_t end = first + count * step, axis = n->a.axis;
		if (step < 0 && end < 0)
			end = INT64_MIN;
		const int64_t *vals[4] = {&first, &end, &axis, &step};
		static const char *const suffix[4] = {"_starts", "_ends", "_axes", "_steps"};
		for (int k = 0; k < 4; k++) {
			char *name = new_name(b, n->name, suffix[k]);
			if (name)
				add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &one, 1, vals[k], 8);
			in[1 + k] = name ? name : "";
		}
		n_in = 5;
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (n->op == OP_EXPAND) {
		/* the shape: input 1's first dimension (Shape, Slice [0:1]), then
		 * the rest of input 0's */
		const struct shape *cs = &g->values[n->inputs[0]].shape;
		int64_t one = 1, zero = 0, first = 1, nr = cs->n_dims - 1;
		char *shp = new_name(b, n->name, "_shape"), *lo = new_name(b, n->name, "_zero"),
		     *hi = new_name(b, n->name, "_one"), *bat = new_name(b, n->name, "_batch"),
		     *rest = new_name(b, n->name, "_rest"), *tgt = new_name(b, n->name, "_target");
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		add_init(b, lo, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &one, 1, &zero, 8);
		add_init(b, hi, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &one, 1, &first, 8);
		add_node(b, "Shape", shp, 1, (const char *const[]){in[1]}, shp);
		add_node(b, "Slice", bat, 3, (const char *const[]){shp, lo, hi}, bat);
		in[1] = bat;
		if (nr > 0) {
			add_init(b, rest, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &nr, 1, cs->dims + 1, 8);
			Onnx__NodeProto *c =
				add_node(b, "Concat", tgt, 2, (const char *const[]){bat, rest}, tgt);
			if (c)
				attr_int(b, c, "axis", 0);
			in[1] = tgt;
		}
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (n->op == OP_PAD) {
		int64_t len = n->a.n_ints;
		char *name = new_name(b, n->name, "_pads");
		if (name)
			add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &len, 1, n->a.ints, 8);
		in[1] = name ? name : "";
		in[2] = scalar_f32(b, n->name, "_value", n->a.pad_value);
		n_in = 3;
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (n->op == OP_RESIZE) {
		if (n->a.resize_coord == RESIZE_TF_HALF_PIXEL_FOR_NN)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Resize with tf_half_pixel_for_nearest has no opset-%d form",
					   n->name, ONNX_EXPORT_OPSET);
		in[1] = "";
		in[2] = resize_scales(b, n);
		n_in = 3;
		if (b->oom)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
	} else if (n->op == OP_RESHAPE || ((n->op == OP_SQUEEZE || n->op == OP_UNSQUEEZE) &&
					   n->a.n_ints > 0)) {
		if (n->op == OP_RESHAPE && n->a.allowzero)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Reshape with allowzero=1 needs opset 14 "
					   "(the export writes opset %d)",
					   n->name, ONNX_EXPORT_OPSET);
		int64_t len = n->a.n_ints;
		char *name = new_name(b, n->name, n->op == OP_RESHAPE ? "_shape" : "_axes");
		if (name)
			add_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &len, 1, n->a.ints, 8);
		n_in = 2;
		in[1] = name ? name : "";
	}
	if ((n->op == OP_SOFTMAX || n->op == OP_LOGSOFTMAX) && g->opset < 13) {
		/* before opset 13 the axis meant "flatten from here": the same only
		 * when it is the last axis */
		int r = g->values[n->inputs[0]].shape.n_dims;
		int ax = n->a.axis < 0 ? n->a.axis + r : n->a.axis;
		if (ax != r - 1)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s over axes %d.. of a rank-%d tensor (opset "
					   "%lld) has no opset-%d form",
					   n->name, op, ax, r, (long long)g->opset, ONNX_EXPORT_OPSET);
	}
	if (op_is_recurrent(n->op)) {
		/* ONNX's input order (sequence_lens, absent, between B and
		 * initial_h) and the node's one output in its place: Y, Y_h or Y_c */
		const char *rin[8] = {in[RNN_IN_X], in[RNN_IN_W], in[RNN_IN_R], in[RNN_IN_B], "",
				      in[RNN_IN_H0], in[RNN_IN_C0], in[RNN_IN_P]};
		if (n->a.rnn_projected) {
			/* R as ONNX has it, [dirs, G * H, H], from presso's R^T; when
			 * the engine quantizes it (qmodel_qconst_of), its int8 rows
			 * [dirs * G * H, H] through a per-row DequantizeLinear, then
			 * a Reshape */
			const struct value *rv = &g->values[n->inputs[RNN_IN_R]];
			int64_t rd = rv->shape.dims[0], rh = rv->shape.dims[1], rg = rv->shape.dims[2];
			int64_t rdims[3] = {rd, rg, rh};
			char *rn = new_name(b, n->name, "_R");
			if (!rn)
				return status_fail(PRESSO_E_NOMEM, "out of memory");
			int qc = qmodel_qconst_of(b->m, n->inputs[RNN_IN_R]);
			if (qc >= 0) {
				struct qconst_view q;
				qmodel_qconst_view(b->m, qc, &q);
				int64_t qdims[2] = {q.n_out, q.k}, three = 3;
				const char *fq = emit_dq_const(b, rn, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1,
							       qdims, 2, q.w, q.w_scale, q.n_out, 0);
				char *shn = new_name(b, rn, "_shape");
				if (!fq || !shn)
					return status_fail(PRESSO_E_NOMEM, "out of memory");
				add_init(b, shn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &three, 1, rdims, 8);
				add_node(b, "Reshape", rn, 2, (const char *const[]){fq, shn}, rn);
			} else {
				float *rr = malloc(sizeof(float) * (size_t)(rd * rh * rg));
				if (!rr)
					return status_fail(PRESSO_E_NOMEM, "out of memory");
				for (int64_t row = 0; row < rd * rg; row++)
					for (int64_t j = 0; j < rh; j++)
						rr[row * rh + j] = rv->data[rnn_rt_index(rh, rg, row, j)];
				add_init(b, rn, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rdims, 3, rr,
					 sizeof(float));
				free(rr);
			}
			rin[RNN_IN_R] = rn;
			/* X is X W^T already: W picks each direction's part of it,
			 * made at load from a shape (EyeLike of ConstantOfShape [GH,
			 * dirs * GH] at offset d * GH, stacked), not stored */
			int64_t dirs = n->a.rnn_direction == 2 ? 2 : 1;
			int64_t gh = (n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1) *
				     (int64_t)n->a.rnn_hidden;
			int64_t two = 2, one = 1, sh[2] = {gh, dirs * gh}, zero = 0;
			char *shn = new_name(b, n->name, "_W_shape"), *zn = new_name(b, n->name, "_W_zeros");
			char *axn = new_name(b, n->name, "_W_axes"), *wn = new_name(b, n->name, "_W");
			if (!shn || !zn || !axn || !wn)
				return status_fail(PRESSO_E_NOMEM, "out of memory");
			add_init(b, shn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &two, 1, sh, 8);
			add_init(b, axn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &one, 1, &zero, 8);
			add_node(b, "ConstantOfShape", zn, 1, (const char *const[]){shn}, zn);
			const char *part[2];
			for (int64_t d = 0; d < dirs; d++) {
				char *en = new_name(b, n->name, d ? "_W_eye1" : "_W_eye0");
				char *un = dirs == 1 ? wn : new_name(b, n->name, d ? "_W_dir1" : "_W_dir0");
				if (!en || !un)
					return status_fail(PRESSO_E_NOMEM, "out of memory");
				Onnx__NodeProto *e = add_node(b, "EyeLike", en, 1, (const char *const[]){zn}, en);
				if (e)
					attr_int(b, e, "k", d * gh);
				add_node(b, "Unsqueeze", un, 2, (const char *const[]){en, axn}, un);
				part[d] = un;
			}
			if (dirs == 2) {
				Onnx__NodeProto *c = add_node(b, "Concat", wn, 2, part, wn);
				if (c)
					attr_int(b, c, "axis", 0);
			}
			rin[RNN_IN_W] = wn;
		}
		int rn = n->op == OP_LSTM ? 8 : 6;
		while (rn > 3 && !rin[rn - 1][0])
			rn--;
		/* batch first (layout 1, which ONNX Runtime does not run): the
		 * layout-0 node between Transposes of X, the initial states and
		 * the output */
		bool bf = n->a.rnn_batch_first;
		const char *node_y = y;
		if (bf) {
			static const int64_t p3[3] = {1, 0, 2};
			static const char *const tags[3] = {"_x_seq_first", "_h0_seq_first",
							    "_c0_seq_first"};
			static const int slots[3] = {RNN_IN_X, RNN_IN_H0, RNN_IN_C0};
			for (int t = 0; t < 3; t++) {
				int slot = slots[t], at = slot == RNN_IN_X ? 0 : slot == RNN_IN_H0 ? 5 : 6;
				if (!rin[at][0])
					continue;
				char *tn = new_name(b, n->name, tags[t]);
				Onnx__NodeProto *tp = tn ? add_node(b, "Transpose", tn, 1,
								    (const char *const[]){rin[at]}, tn)
							 : NULL;
				if (tp)
					attr_ints(b, tp, "perm", p3, 3);
				rin[at] = tn ? tn : "";
			}
			node_y = new_name(b, n->name, "_seq_first");
			if (b->oom || !node_y)
				return status_fail(PRESSO_E_NOMEM, "out of memory");
		}
		Onnx__NodeProto *p = add_node(b, op, n->name, rn, rin, "");
		int k = n->a.rnn_output;
		char **outs = p ? zalloc(b, sizeof(char *) * (size_t)(k + 1)) : NULL;
		if (!outs)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		for (int j = 0; j <= k; j++)
			outs[j] = p->output[0];
		outs[k] = dup_str(b, node_y);
		p->output = outs;
		p->n_output = (size_t)(k + 1);
		static const char *const dirs[] = {"forward", "reverse", "bidirectional"};
		attr_int(b, p, "hidden_size", n->a.rnn_hidden);
		attr_str(b, p, "direction", dirs[n->a.rnn_direction]);
		if (bf) { /* Y [S, D, B, H] -> [B, S, D, H]; Y_h, Y_c [D, B, H] -> [B, D, H] */
			static const int64_t py[4] = {2, 0, 1, 3}, ps[3] = {1, 0, 2};
			Onnx__NodeProto *tp = add_node(b, "Transpose", y, 1,
						       (const char *const[]){node_y}, y);
			if (tp && k == RNN_OUT_Y)
				attr_ints(b, tp, "perm", py, 4);
			else if (tp)
				attr_ints(b, tp, "perm", ps, 3);
		}
		if (n->op == OP_GRU)
			attr_int(b, p, "linear_before_reset", n->a.rnn_lbr);
		return b->oom ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
	}
	Onnx__NodeProto *p = add_node(b, op, n->name, n_in, in, y);
	if (op_is_reduce(n->op) && n->op != OP_REDUCESUM) {
		if (n->a.n_ints > 0)
			attr_ints(b, p, "axes", n->a.ints, n->a.n_ints);
		attr_int(b, p, "keepdims", n->a.keepdims);
	}
	switch (n->op) {
	case OP_MAXPOOL:
		window_attrs(b, p, n);
		if (n->a.dilations[0] != 1 || n->a.dilations[1] != 1) {
			int64_t dil[2] = {n->a.dilations[0], n->a.dilations[1]};
			attr_ints(b, p, "dilations", dil, 2);
		}
		break;
	case OP_AVGPOOL:
		window_attrs(b, p, n);
		if (n->a.count_include_pad)
			attr_int(b, p, "count_include_pad", 1);
		break;
	case OP_CONV:
	case OP_CONVTRANSPOSE: {
		/* a Conv the engine runs in FP32 (its weight is not a constant), and
		 * ConvTranspose (FP32 in the INT8 engine) */
		int64_t ks[2] = {n->a.kernel[0], n->a.kernel[1]};
		int64_t st[2] = {n->a.strides[0], n->a.strides[1]};
		int64_t pads[4] = {n->a.pads[0], n->a.pads[1], n->a.pads[2], n->a.pads[3]};
		int64_t dil[2] = {n->a.dilations[0], n->a.dilations[1]};
		if (ks[0] > 0)
			attr_ints(b, p, "kernel_shape", ks, 2);
		attr_ints(b, p, "strides", st, 2);
		attr_ints(b, p, "pads", pads, 4);
		attr_ints(b, p, "dilations", dil, 2);
		attr_int(b, p, "group", n->a.group);
		if (n->op == OP_CONVTRANSPOSE && (n->a.out_pad[0] || n->a.out_pad[1])) {
			int64_t opad[2] = {n->a.out_pad[0], n->a.out_pad[1]};
			attr_ints(b, p, "output_padding", opad, 2);
		}
		break;
	}
	case OP_GEMM:
		attr_float(b, p, "alpha", n->a.alpha);
		attr_float(b, p, "beta", n->a.beta);
		attr_int(b, p, "transA", n->a.trans_a);
		attr_int(b, p, "transB", n->a.trans_b);
		break;
	case OP_BATCHNORM:
		attr_float(b, p, "epsilon", n->a.epsilon);
		break;
	case OP_CONCAT:
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX:
	case OP_FLATTEN:
		attr_int(b, p, "axis", n->a.axis);
		break;
	case OP_TRANSPOSE:
		if (n->a.n_ints > 0)
			attr_ints(b, p, "perm", n->a.ints, n->a.n_ints);
		break;
	case OP_HARDSIGMOID:
		attr_float(b, p, "alpha", n->a.alpha);
		attr_float(b, p, "beta", n->a.beta);
		break;
	case OP_LEAKYRELU:
	case OP_ELU:
	case OP_CELU:
	case OP_THRESHOLDEDRELU:
		attr_float(b, p, "alpha", n->a.alpha);
		break;
	case OP_SELU:
		attr_float(b, p, "alpha", n->a.alpha);
		attr_float(b, p, "gamma", n->a.beta);
		break;
	case OP_LRN:
		attr_float(b, p, "alpha", n->a.alpha);
		attr_float(b, p, "beta", n->a.beta);
		attr_float(b, p, "bias", n->a.lrn_bias);
		attr_int(b, p, "size", n->a.lrn_size);
		break;
	case OP_REDUCESUM: /* its axes are input 1 from opset 13 */
		attr_int(b, p, "keepdims", n->a.keepdims);
		break;
	case OP_LAYERNORM:
		attr_int(b, p, "axis", n->a.axis);
		attr_float(b, p, "epsilon", n->a.epsilon);
		break;
	case OP_RESIZE: {
		static const char *const coords[RESIZE_COORD_COUNT] = {
			"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
			"tf_half_pixel_for_nearest"};
		static const char *const rounds[RESIZE_ROUND_COUNT] = {
			"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
		attr_str(b, p, "mode", n->a.resize_linear ? "linear" : "nearest");
		attr_str(b, p, "coordinate_transformation_mode", coords[n->a.resize_coord]);
		if (!n->a.resize_linear)
			attr_str(b, p, "nearest_mode", rounds[n->a.resize_round]);
		break;
	}
	default:
		break;
	}
	return b->oom ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
}

/* --- the model ----------------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(struct xb *b, int v)
{
	const struct value *val = &b->g->values[v];
	Onnx__ValueInfoProto *vi = zalloc(b, sizeof *vi);
	Onnx__TypeProto *tp = zalloc(b, sizeof *tp);
	Onnx__TypeProto__Tensor *tt = zalloc(b, sizeof *tt);
	Onnx__TensorShapeProto *sp = zalloc(b, sizeof *sp);
	int nd = val->shape.n_dims;
	Onnx__TensorShapeProto__Dimension **dims = zalloc(b, sizeof *dims * (size_t)(nd ? nd : 1));
	if (b->oom)
		return NULL;
	onnx__value_info_proto__init(vi);
	onnx__type_proto__init(tp);
	onnx__type_proto__tensor__init(tt);
	onnx__tensor_shape_proto__init(sp);
	vi->name = dup_str(b, val->name);
	vi->type = tp;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = sp;
	sp->n_dim = (size_t)nd;
	sp->dim = dims;
	for (int d = 0; d < nd; d++) {
		Onnx__TensorShapeProto__Dimension *dim = zalloc(b, sizeof *dim);
		if (!dim)
			return NULL;
		onnx__tensor_shape_proto__dimension__init(dim);
		if (d == 0 && val->batched) {
			dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			dim->dim_param = dup_str(b, "N");
		} else {
			dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			dim->dim_value = val->shape.dims[d];
		}
		dims[d] = dim;
	}
	return b->oom ? NULL : vi;
}

/* Names of every value: quantized ones get a float name before their QDQ pair. */
static void plan_names(struct xb *b)
{
	const struct graph *g = b->g;
	for (int v = 0; v < g->n_values && !b->oom; v++) {
		const char *name = g->values[v].name;
		struct qparams qp;
		b->read_name[v] = b->write_name[v] = (char *)name;
		if (qmodel_value_is_folded(b->m, v) || !qmodel_value_qparams(b->m, v, &qp))
			continue;
		if (g->values[v].producer < 0)
			b->read_name[v] = new_name(b, name, "_dequantized");
		else
			b->write_name[v] = new_name(b, name, "_float");
	}
}

static enum presso_status build(struct xb *b, const char *note, Onnx__ModelProto *model,
				Onnx__GraphProto *graph, Onnx__OperatorSetIdProto *opset,
				Onnx__OperatorSetIdProto **opsets)
{
	const struct graph *g = b->g;
	enum presso_status s = PRESSO_OK;
	int nv = g->n_values;
	b->read_name = zalloc(b, sizeof(char *) * (size_t)(nv ? nv : 1));
	b->write_name = zalloc(b, sizeof(char *) * (size_t)(nv ? nv : 1));
	b->emitted = zalloc(b, sizeof(bool) * (size_t)(nv ? nv : 1));
	int *layer_of = zalloc(b, sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
	if (b->oom)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int i = 0; i < g->n_nodes; i++)
		layer_of[i] = -1;
	for (int l = 0; l < qmodel_n_layers(b->m); l++) {
		struct qlayer_view L;
		qmodel_layer_view(b->m, l, &L);
		layer_of[L.node] = l;
	}
	plan_names(b);

	Onnx__ValueInfoProto **inputs = zalloc(b, sizeof *inputs * (size_t)(g->n_inputs + 1));
	Onnx__ValueInfoProto **outputs = zalloc(b, sizeof *outputs * (size_t)(g->n_outputs + 1));
	for (int i = 0; i < g->n_inputs && !b->oom; i++) {
		int v = g->inputs[i];
		inputs[i] = value_info(b, v);
		emit_value_qdq(b, v);
	}
	for (int i = 0; i < g->n_nodes && s == PRESSO_OK && !b->oom; i++) {
		if (layer_of[i] >= 0) {
			struct qlayer_view L;
			qmodel_layer_view(b->m, layer_of[i], &L);
			s = emit_layer(b, &L);
		} else {
			s = emit_node(b, i);
		}
		if (s == PRESSO_OK)
			emit_value_qdq(b, g->nodes[i].output);
	}
	for (int i = 0; i < g->n_outputs && s == PRESSO_OK && !b->oom; i++) {
		int v = g->outputs[i];
		if (value_is_const(&g->values[v]))
			return status_fail(PRESSO_E_UNSUPPORTED, "graph output '%s' is a constant",
					   g->values[v].name);
		outputs[i] = value_info(b, v);
	}
	if (s != PRESSO_OK)
		return s;
	if (b->oom)
		return status_fail(PRESSO_E_NOMEM, "out of memory");

	onnx__operator_set_id_proto__init(opset);
	opset->domain = dup_str(b, "");
	opset->has_version = 1;
	bool new_ops = false;
	for (int i = 0; i < g->n_nodes; i++)
		new_ops |= g->nodes[i].op == OP_HARDSWISH || g->nodes[i].op == OP_LAYERNORM;
	opset->version = new_ops ? ONNX_EXPORT_OPSET_NEW : ONNX_EXPORT_OPSET;
	opsets[0] = opset;
	onnx__graph_proto__init(graph);
	graph->name = dup_str(b, "presso_qdq");
	graph->n_node = b->n_nodes;
	graph->node = b->nodes;
	graph->n_initializer = b->n_inits;
	graph->initializer = b->inits;
	graph->n_input = (size_t)g->n_inputs;
	graph->input = inputs;
	graph->n_output = (size_t)g->n_outputs;
	graph->output = outputs;
	onnx__model_proto__init(model);
	model->has_ir_version = 1;
	model->ir_version = new_ops ? ONNX_EXPORT_IR_VERSION_NEW : ONNX_EXPORT_IR_VERSION;
	model->n_opset_import = 1;
	model->opset_import = opsets;
	model->producer_name = dup_str(b, "presso");
	model->producer_version = dup_str(b, PRESSO_VERSION);
	if (note)
		model->doc_string = dup_str(b, note);
	model->graph = graph;
	return b->oom ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
}

/* Writes bytes to path through a temporary file beside it, renamed into place. */
enum presso_status onnx_export_qdq(const struct qmodel *m, const char *producer_note,
				   const char *path)
{
	const uint16_t one = 1;
	if (*(const uint8_t *)&one != 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: ONNX export needs a little-endian host", path);
	struct xb b = {.m = m, .g = qmodel_graph(m)};
	Onnx__ModelProto model;
	Onnx__GraphProto graph;
	Onnx__OperatorSetIdProto opset, *opsets[1];
	uint8_t *bytes = NULL;
	enum presso_status s = build(&b, producer_note, &model, &graph, &opset, opsets);
	if (s == PRESSO_OK) {
		size_t n = onnx__model_proto__get_packed_size(&model);
		bytes = malloc(n ? n : 1);
		if (!bytes) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory serializing %s", path);
		} else {
			size_t packed = onnx__model_proto__pack(&model, bytes);
			PRESSO_CHECK(packed == n);
			s = file_write_atomic(path, bytes, n);
		}
	} else if (s != PRESSO_E_IO && s != PRESSO_E_SYSTEM) {
		status_wrap(s, "%s", path);
	}
	free(bytes);
	for (size_t i = 0; i < b.n_owned; i++)
		free(b.owned[i]);
	free(b.owned);
	free(b.nodes);
	free(b.inits);
	free(b.names);
	return s;
}
