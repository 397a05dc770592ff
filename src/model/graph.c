/* graph.c - the graph IR's shapes, shape inference, layer listing and freeing.
 *
 * Shape inference walks the nodes in order; each op's rule is a function in
 * the table op_traits[], keyed by enum op_type (a new op breaks the build until
 * it has an entry). Spatial ops are 2-D (NCHW); pads are explicit by now
 * (auto_pad was resolved at import, where the spatial sizes are known).
 */
#define _POSIX_C_SOURCE 200809L
#include "model/graph.h"

#include "kernels/kernels_f32.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum presso_status (*infer_fn)(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out);

struct op_traits {
	const char *name;
	infer_fn infer;
};

static enum presso_status node_error(const struct node *n, const char *what)
{
	return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s %s", n->name, op_name(n->op),
			   what);
}

/* A node whose `what` (its output, its target shape) has too many elements. */
static enum presso_status too_large(const struct node *n, const char *what)
{
	return status_fail(PRESSO_E_UNSUPPORTED,
			   "node '%s': %s %s has more than %lld elements (the most a tensor may have)",
			   n->name, op_name(n->op), what, (long long)GRAPH_MAX_ELEMS);
}

bool shape_mul(int64_t a, int64_t b, int64_t *out)
{
	/* a, b <= 2^31 - 1 after the first test, so a * b cannot overflow int64 */
	if (a < 0 || b < 0 || a > GRAPH_MAX_ELEMS || b > GRAPH_MAX_ELEMS ||
	    a * b > GRAPH_MAX_ELEMS)
		return false;
	*out = a * b;
	return true;
}

bool shape_numel_checked(const struct shape *s, int64_t *out)
{
	int64_t nonzero = 1;
	bool empty = false;
	for (int i = 0; i < s->n_dims; i++) {
		if (s->dims[i] == 0)
			empty = true;
		else if (!shape_mul(nonzero, s->dims[i], &nonzero))
			return false;
	}
	*out = empty ? 0 : nonzero;
	return true;
}

int64_t shape_numel(const struct shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->n_dims; i++)
		PRESSO_CHECK(!__builtin_mul_overflow(n, s->dims[i], &n));
	return n;
}

void shape_right_align(const struct shape *s, int rank, int64_t *dims)
{
	int lead = rank - s->n_dims;
	for (int i = 0; i < rank; i++)
		dims[i] = i < lead ? 1 : s->dims[i - lead];
}

int64_t shape_broadcast_src(const int64_t *dims, const int64_t *ydims, int nd, int64_t o)
{
	int64_t src = 0, stride = 1;
	for (int d = nd - 1; d >= 0; d--) {
		int64_t i = o % ydims[d];
		o /= ydims[d];
		if (dims[d] != 1)
			src += i * stride;
		stride *= dims[d];
	}
	return src;
}

char *shape_format(const struct shape *s, bool batched, char *buf, size_t buf_bytes)
{
	size_t used = (size_t)snprintf(buf, buf_bytes, "[");
	for (int i = 0; i < s->n_dims && used < buf_bytes; i++) {
		const char *sep = i ? "," : "";
		if (i == 0 && batched)
			used += (size_t)snprintf(buf + used, buf_bytes - used, "%sN", sep);
		else
			used += (size_t)snprintf(buf + used, buf_bytes - used, "%s%lld", sep,
						 (long long)s->dims[i]);
	}
	if (used < buf_bytes)
		snprintf(buf + used, buf_bytes - used, "]");
	return buf;
}

/* --- shape inference rules ------------------------------------------------ */

static enum presso_status infer_same(const struct graph *g, const struct node *n,
				     const struct shape *in[], struct shape *out)
{
	*out = *in[0];
	return PRESSO_OK;
}

/* in, k < 2^31 and stride, dil, pads <= 1024 (checked at import): nothing here
 * comes near int64's range */
static int64_t conv_out_dim(int64_t in, int64_t k, int stride, int dil, int pad_a, int pad_b,
			    bool ceil_mode)
{
	int64_t eff = dil * (k - 1) + 1;
	int64_t span = in + pad_a + pad_b - eff;
	if (span < 0)
		return 0;
	int64_t o = ceil_mode ? (span + stride - 1) / stride + 1 : span / stride + 1;
	/* ceil mode: the last window must start inside the input or its left padding */
	if (ceil_mode && (o - 1) * stride >= in + pad_a)
		o--;
	return o;
}

static enum presso_status infer_conv(const struct graph *g, const struct node *n,
				      const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0], *w = in[1];
	if (x->n_dims != 4)
		return node_error(n, "needs a 4-D NCHW input (only 2-D convolution is supported)");
	if (w->n_dims != 4)
		return node_error(n, "needs a 4-D weight");
	const struct node_attrs *a = &n->a;
	if (a->group <= 0 || x->dims[1] % a->group != 0 || w->dims[0] % a->group != 0)
		return node_error(n, "has a group that does not divide its channels");
	if (w->dims[1] != x->dims[1] / a->group) {
		if (a->group == 1)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': Conv weight expects %lld input channels, input has %lld",
					   n->name, (long long)w->dims[1], (long long)x->dims[1]);
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Conv weight expects %lld input channels per group, input has %lld in %d groups",
				   n->name, (long long)w->dims[1], (long long)x->dims[1], a->group);
	}
	if (w->dims[2] < 1 || w->dims[3] < 1)
		return node_error(n, "has an empty kernel");
	if (w->dims[0] < 1 || w->dims[1] < 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Conv weight [%lld,%lld,%lld,%lld] is empty: a layer "
				   "with no %s channel has nothing to compress or compute",
				   n->name, (long long)w->dims[0], (long long)w->dims[1],
				   (long long)w->dims[2], (long long)w->dims[3],
				   w->dims[0] < 1 ? "output" : "input");
	if (n->n_inputs > 2 && n->inputs[2] >= 0 &&
	    (in[2]->n_dims != 1 || in[2]->dims[0] != w->dims[0]))
		return status_fail(PRESSO_E_FORMAT, "node '%s': Conv bias must be [%lld]", n->name,
				   (long long)w->dims[0]);
	out->n_dims = 4;
	out->dims[0] = x->dims[0];
	out->dims[1] = w->dims[0];
	out->dims[2] = conv_out_dim(x->dims[2], w->dims[2], a->strides[0], a->dilations[0],
				    a->pads[0], a->pads[2], false);
	out->dims[3] = conv_out_dim(x->dims[3], w->dims[3], a->strides[1], a->dilations[1],
				    a->pads[1], a->pads[3], false);
	if (out->dims[2] <= 0 || out->dims[3] <= 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Conv kernel larger than its padded input",
				   n->name);
	return PRESSO_OK;
}

/* ConvTranspose: out = (in - 1) * stride - pads + dilation * (k - 1) + 1 +
 * output_padding per spatial dimension. */
static enum presso_status infer_convtranspose(const struct graph *g, const struct node *n,
					      const struct shape *in[], struct shape *out)
{
	(void)g;
	const struct shape *x = in[0], *w = in[1];
	const struct node_attrs *a = &n->a;
	if (x->n_dims != 4)
		return node_error(n, "needs a 4-D NCHW input (only 1-D and 2-D ConvTranspose are supported)");
	if (w->n_dims != 4)
		return node_error(n, "needs a 4-D weight");
	if (a->group <= 0 || x->dims[1] % a->group != 0)
		return node_error(n, "has a group that does not divide its channels");
	if (w->dims[0] != x->dims[1])
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': ConvTranspose weight expects %lld input channels, input has %lld",
				   n->name, (long long)w->dims[0], (long long)x->dims[1]);
	if (w->dims[1] < 1 || w->dims[2] < 1 || w->dims[3] < 1)
		return node_error(n, "has an empty kernel");
	int64_t c_out = w->dims[1] * a->group;
	if (n->n_inputs > 2 && n->inputs[2] >= 0 && (in[2]->n_dims != 1 || in[2]->dims[0] != c_out))
		return status_fail(PRESSO_E_FORMAT, "node '%s': ConvTranspose bias must be [%lld]",
				   n->name, (long long)c_out);
	out->n_dims = 4;
	out->dims[0] = x->dims[0];
	out->dims[1] = c_out;
	for (int d = 0; d < 2; d++) {
		if (a->out_pad[d] >= a->strides[d] && a->out_pad[d] >= a->dilations[d])
			return node_error(n, "has an output_padding not below its stride or dilation");
		int64_t o = (x->dims[2 + d] - 1) * a->strides[d] - a->pads[d] - a->pads[d + 2] +
			    (int64_t)a->dilations[d] * (w->dims[2 + d] - 1) + 1 + a->out_pad[d];
		if (x->dims[2 + d] > 0 && o <= 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': ConvTranspose padding leaves an empty output",
					   n->name);
		if (o > GRAPH_MAX_ELEMS)
			return too_large(n, "output");
		out->dims[2 + d] = x->dims[2 + d] > 0 ? o : 0;
	}
	return PRESSO_OK;
}

/* RNN, GRU, LSTM: Y [seq, dirs, batch, hidden] (batch first: [batch, seq,
 * dirs, hidden]), Y_h and Y_c [dirs, batch, hidden] ([batch, dirs, hidden]);
 * the weights' shapes checked against X and hidden_size. */
static enum presso_status infer_rnn(const struct graph *g, const struct node *n,
				    const struct shape *in[], struct shape *out)
{
	(void)g;
	const struct node_attrs *a = &n->a;
	const struct shape *x = in[RNN_IN_X], *r = in[RNN_IN_R];
	const struct shape *w = n->inputs[RNN_IN_W] >= 0 ? in[RNN_IN_W] : NULL;
	int64_t h = a->rnn_hidden, dirs = a->rnn_direction == 2 ? 2 : 1;
	int64_t gates = n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1;
	if (x->n_dims != 3)
		return node_error(n, "needs a 3-D input [seq, batch, features]");
	int64_t seq = x->dims[a->rnn_batch_first ? 1 : 0], batch = x->dims[a->rnn_batch_first ? 0 : 1];
	if (h < 1 || (a->rnn_projected && (w || x->dims[2] != dirs * gates * h)))
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': %s of projected input needs [.., %lld] features and no W",
				   n->name, op_name(n->op), (long long)(dirs * gates * h));
	if (!a->rnn_projected && (!w || w->n_dims != 3 || w->dims[0] != dirs ||
				  w->dims[1] != gates * h || w->dims[2] != x->dims[2]))
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': %s W must be [%lld, %lld, %lld] for hidden_size %lld and %lld input features",
				   n->name, op_name(n->op), (long long)dirs, (long long)(gates * h),
				   (long long)x->dims[2], (long long)h, (long long)x->dims[2]);
	int64_t r1 = a->rnn_projected ? h : gates * h, r2 = a->rnn_projected ? gates * h : h;
	if (r->n_dims != 3 || r->dims[0] != dirs || r->dims[1] != r1 || r->dims[2] != r2)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s R must be [%lld, %lld, %lld]",
				   n->name, op_name(n->op), (long long)dirs, (long long)r1,
				   (long long)r2);
	const struct shape *b = n->inputs[RNN_IN_B] >= 0 ? in[RNN_IN_B] : NULL;
	if (b && (b->n_dims != 2 || b->dims[0] != dirs || b->dims[1] != 2 * gates * h))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s B must be [%lld, %lld]", n->name,
				   op_name(n->op), (long long)dirs, (long long)(2 * gates * h));
	for (int k = RNN_IN_H0; k <= RNN_IN_C0; k++) {
		const struct shape *s = n->n_inputs > k && n->inputs[k] >= 0 ? in[k] : NULL;
		int64_t d0 = a->rnn_batch_first ? batch : dirs, d1 = a->rnn_batch_first ? dirs : batch;
		if (s && (s->n_dims != 3 || s->dims[0] != d0 || s->dims[1] != d1 || s->dims[2] != h))
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': %s %s must be [%lld, %lld, %lld]", n->name,
					   op_name(n->op), k == RNN_IN_H0 ? "initial_h" : "initial_c",
					   (long long)d0, (long long)d1, (long long)h);
	}
	const struct shape *p = n->n_inputs > RNN_IN_P && n->inputs[RNN_IN_P] >= 0 ? in[RNN_IN_P] : NULL;
	if (p && (p->n_dims != 2 || p->dims[0] != dirs || p->dims[1] != 3 * h))
		return status_fail(PRESSO_E_FORMAT, "node '%s': LSTM P must be [%lld, %lld]", n->name,
				   (long long)dirs, (long long)(3 * h));
	if (a->rnn_output > RNN_OUT_C || (a->rnn_output == RNN_OUT_C && n->op != OP_LSTM))
		return node_error(n, "has no such output");
	if (a->rnn_output != RNN_OUT_Y) { /* Y_h, Y_c: the initial states' shape */
		*out = (struct shape){.n_dims = 3, .dims = {dirs, batch, h}};
		if (a->rnn_batch_first)
			out->dims[0] = batch, out->dims[1] = dirs;
		return PRESSO_OK;
	}
	*out = (struct shape){.n_dims = 4, .dims = {seq, dirs, batch, h}};
	if (a->rnn_batch_first)
		out->dims[0] = batch, out->dims[1] = seq, out->dims[2] = dirs;
	int64_t count;
	if (!shape_numel_checked(out, &count))
		return too_large(n, "output");
	return PRESSO_OK;
}

static enum presso_status infer_pool(const struct graph *g, const struct node *n,
				     const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	const struct node_attrs *a = &n->a;
	if (x->n_dims != 4)
		return node_error(n, "needs a 4-D NCHW input (only 2-D pooling is supported)");
	out->n_dims = 4;
	out->dims[0] = x->dims[0];
	out->dims[1] = x->dims[1];
	out->dims[2] = conv_out_dim(x->dims[2], a->kernel[0], a->strides[0], a->dilations[0],
				    a->pads[0], a->pads[2], a->ceil_mode);
	out->dims[3] = conv_out_dim(x->dims[3], a->kernel[1], a->strides[1], a->dilations[1],
				    a->pads[1], a->pads[3], a->ceil_mode);
	if (out->dims[2] <= 0 || out->dims[3] <= 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': pooling window larger than its input",
				   n->name);
	return PRESSO_OK;
}

static enum presso_status infer_gap(const struct graph *g, const struct node *n,
				    const struct shape *in[], struct shape *out)
{
	if (in[0]->n_dims < 3)
		return node_error(n, "needs an input of rank 3 or more");
	*out = *in[0];
	for (int i = 2; i < out->n_dims; i++)
		out->dims[i] = 1;
	return PRESSO_OK;
}

static enum presso_status infer_gemm(const struct graph *g, const struct node *n,
				     const struct shape *in[], struct shape *out)
{
	const struct shape *a = in[0], *b = in[1];
	if (a->n_dims != 2 || b->n_dims != 2)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Gemm needs 2-D A and B (A is %d-D, B is %d-D)",
				   n->name, a->n_dims, b->n_dims);
	int64_t m = n->a.trans_a ? a->dims[1] : a->dims[0];
	int64_t ka = n->a.trans_a ? a->dims[0] : a->dims[1];
	int64_t kb = n->a.trans_b ? b->dims[1] : b->dims[0];
	int64_t nn = n->a.trans_b ? b->dims[0] : b->dims[1];
	if (ka != kb)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Gemm inner dimensions differ (%lld vs %lld)",
				   n->name, (long long)ka, (long long)kb);
	if (ka < 1 || nn < 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Gemm of an empty matrix (%lld inner, %lld output "
				   "columns): nothing to compress or compute",
				   n->name, (long long)ka, (long long)nn);
	if (n->n_inputs > 2 && n->inputs[2] >= 0) {
		const struct shape *c = in[2];
		if (c->n_dims > 2)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Gemm C has rank %d", n->name,
					   c->n_dims);
		int64_t cm = c->n_dims == 2 ? c->dims[0] : 1;
		int64_t cn = c->n_dims >= 1 ? c->dims[c->n_dims - 1] : 1;
		if ((cm != 1 && cm != m) || (cn != 1 && cn != nn))
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': Gemm C does not broadcast to [%lld,%lld]", n->name,
					   (long long)m, (long long)nn);
	}
	out->n_dims = 2;
	out->dims[0] = m;
	out->dims[1] = nn;
	return PRESSO_OK;
}

/* numpy broadcasting of two shapes into out; false if incompatible */
static bool broadcast(const struct shape *a, const struct shape *b, struct shape *out)
{
	int r = a->n_dims > b->n_dims ? a->n_dims : b->n_dims;
	out->n_dims = r;
	for (int i = 0; i < r; i++) {
		int ia = a->n_dims - r + i, ib = b->n_dims - r + i;
		int64_t da = ia >= 0 ? a->dims[ia] : 1;
		int64_t db = ib >= 0 ? b->dims[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return false;
		out->dims[i] = da == 1 ? db : da;
	}
	return true;
}

/* Add, Sub, Mul, Div, Pow: numpy broadcasting of the two inputs. */
static enum presso_status infer_bcast(const struct graph *g, const struct node *n,
				      const struct shape *in[], struct shape *out)
{
	if (!broadcast(in[0], in[1], out))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s inputs do not broadcast",
				   n->name, op_name(n->op));
	return PRESSO_OK;
}

/* Sum: every input broadcast together. */
static enum presso_status infer_sum(const struct graph *g, const struct node *n,
				    const struct shape *in[], struct shape *out)
{
	*out = *in[0];
	for (int i = 1; i < n->n_inputs; i++) {
		struct shape s = *out;
		if (!broadcast(&s, in[i], out))
			return status_fail(PRESSO_E_FORMAT, "node '%s': Sum input %d does not broadcast",
					   n->name, i);
	}
	return PRESSO_OK;
}

/* PRelu: the slope broadcasts to X (one way: the output is X's shape). */
static enum presso_status infer_prelu(const struct graph *g, const struct node *n,
				      const struct shape *in[], struct shape *out)
{
	struct shape b;
	if (!broadcast(in[0], in[1], &b) || b.n_dims != in[0]->n_dims ||
	    memcmp(b.dims, in[0]->dims, sizeof(int64_t) * (size_t)b.n_dims) != 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': PRelu slope does not broadcast to X",
				   n->name);
	*out = *in[0];
	return PRESSO_OK;
}

static enum presso_status infer_matmul(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out)
{
	struct shape a = *in[0], b = *in[1];
	bool a1 = a.n_dims == 1, b1 = b.n_dims == 1;
	if (a.n_dims == 0 || b.n_dims == 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': MatMul of a scalar", n->name);
	if (a1) {
		a.dims[1] = a.dims[0];
		a.dims[0] = 1;
		a.n_dims = 2;
	}
	if (b1) {
		b.dims[1] = 1;
		b.n_dims = 2;
	}
	if (a.dims[a.n_dims - 1] != b.dims[b.n_dims - 2])
		return status_fail(PRESSO_E_FORMAT, "node '%s': MatMul inner dimensions differ (%lld vs %lld)",
				   n->name, (long long)a.dims[a.n_dims - 1],
				   (long long)b.dims[b.n_dims - 2]);
	if (a.dims[a.n_dims - 1] < 1 || b.dims[b.n_dims - 1] < 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': MatMul of an empty matrix (%lld inner, %lld output "
				   "columns): nothing to compress or compute",
				   n->name, (long long)a.dims[a.n_dims - 1],
				   (long long)b.dims[b.n_dims - 1]);
	struct shape ab = {.n_dims = a.n_dims - 2}, bb = {.n_dims = b.n_dims - 2}, batch;
	memcpy(ab.dims, a.dims, sizeof(int64_t) * (size_t)ab.n_dims);
	memcpy(bb.dims, b.dims, sizeof(int64_t) * (size_t)bb.n_dims);
	if (!broadcast(&ab, &bb, &batch))
		return status_fail(PRESSO_E_FORMAT, "node '%s': MatMul batch dimensions do not broadcast",
				   n->name);
	*out = batch;
	if (!a1)
		out->dims[out->n_dims++] = a.dims[a.n_dims - 2];
	if (!b1)
		out->dims[out->n_dims++] = b.dims[b.n_dims - 1];
	return PRESSO_OK;
}

static int64_t norm_axis(int64_t axis, int rank)
{
	return axis < 0 ? axis + rank : axis;
}

static enum presso_status infer_concat(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out)
{
	int r = in[0]->n_dims;
	int axis = (int)norm_axis(n->a.axis, r);
	if (axis < 0 || axis >= r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Concat axis %d out of range for rank %d",
				   n->name, n->a.axis, r);
	*out = *in[0];
	for (int i = 1; i < n->n_inputs; i++) {
		if (in[i]->n_dims != r)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Concat inputs differ in rank",
					   n->name);
		for (int d = 0; d < r; d++)
			if (d != axis && in[i]->dims[d] != out->dims[d])
				return status_fail(PRESSO_E_FORMAT,
						   "node '%s': Concat inputs differ in dimension %d",
						   n->name, d);
		out->dims[axis] += in[i]->dims[axis];
	}
	return PRESSO_OK;
}

static enum presso_status infer_axis_op(const struct graph *g, const struct node *n,
					const struct shape *in[], struct shape *out)
{
	int r = in[0]->n_dims;
	int axis = (int)norm_axis(n->a.axis, r);
	if (axis < 0 || axis >= r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s axis %d out of range for rank %d",
				   n->name, op_name(n->op), n->a.axis, r);
	*out = *in[0];
	return PRESSO_OK;
}

static enum presso_status infer_flatten(const struct graph *g, const struct node *n,
					const struct shape *in[], struct shape *out)
{
	int r = in[0]->n_dims;
	int axis = (int)norm_axis(n->a.axis, r);
	if (axis < 0 || axis > r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Flatten axis %d out of range for rank %d",
				   n->name, n->a.axis, r);
	int64_t outer = 1, inner = 1;
	for (int i = 0; i < r; i++)
		if (!shape_mul(i < axis ? outer : inner, in[0]->dims[i], i < axis ? &outer : &inner))
			return too_large(n, "output");
	out->n_dims = 2;
	out->dims[0] = outer;
	out->dims[1] = inner;
	return PRESSO_OK;
}

static enum presso_status infer_reshape(const struct graph *g, const struct node *n,
					const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	int64_t total = shape_numel(x), known = 1;
	int infer_at = -1;
	bool zero = false;
	out->n_dims = n->a.n_ints;
	for (int i = 0; i < n->a.n_ints; i++) {
		int64_t d = n->a.ints[i];
		if (d == 0 && !n->a.allowzero) {
			if (i >= x->n_dims)
				return status_fail(PRESSO_E_FORMAT,
						   "node '%s': Reshape copies dimension %d the input lacks",
						   n->name, i);
			d = x->dims[i];
		} else if (d == -1) {
			if (infer_at >= 0)
				return status_fail(PRESSO_E_FORMAT, "node '%s': Reshape with two -1 entries",
						   n->name);
			infer_at = i;
			d = 1;
		} else if (d < 0) {
			return status_fail(PRESSO_E_FORMAT, "node '%s': Reshape to a negative size",
					   n->name);
		}
		out->dims[i] = d;
		/* a product past the bound is refused here, before it can wrap around */
		if (i != infer_at && d != 0 && !shape_mul(known, d, &known))
			return too_large(n, "target shape");
		if (d == 0)
			zero = true;
	}
	if (zero)
		known = 0;
	if (infer_at >= 0) {
		if (known == 0 || total % known != 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': Reshape cannot infer -1 (%lld elements into %lld)",
					   n->name, (long long)total, (long long)known);
		out->dims[infer_at] = total / known;
	} else if (known != total) {
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Reshape of %lld elements into %lld (a fixed batch size in the target shape?)",
				   n->name, (long long)total, (long long)known);
	}
	return PRESSO_OK;
}

static enum presso_status infer_transpose(const struct graph *g, const struct node *n,
					  const struct shape *in[], struct shape *out)
{
	int r = in[0]->n_dims;
	if (n->a.n_ints == 0) {
		out->n_dims = r;
		for (int i = 0; i < r; i++)
			out->dims[i] = in[0]->dims[r - 1 - i];
		return PRESSO_OK;
	}
	if (n->a.n_ints != r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Transpose perm has %d entries for rank %d",
				   n->name, n->a.n_ints, r);
	bool seen[GRAPH_MAX_DIMS] = {false};
	out->n_dims = r;
	for (int i = 0; i < r; i++) {
		int64_t p = n->a.ints[i];
		if (p < 0 || p >= r || seen[p])
			return status_fail(PRESSO_E_FORMAT, "node '%s': Transpose perm is not a permutation",
					   n->name);
		seen[p] = true;
		out->dims[i] = in[0]->dims[p];
	}
	return PRESSO_OK;
}

static enum presso_status infer_squeeze(const struct graph *g, const struct node *n,
					const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	bool drop[GRAPH_MAX_DIMS] = {false};
	if (n->a.n_ints == 0) {
		for (int i = 0; i < x->n_dims; i++)
			drop[i] = x->dims[i] == 1;
	}
	for (int i = 0; i < n->a.n_ints; i++) {
		int64_t ax = norm_axis(n->a.ints[i], x->n_dims);
		if (ax < 0 || ax >= x->n_dims || x->dims[ax] != 1)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': Squeeze axis %lld is not a dimension of size 1",
					   n->name, (long long)n->a.ints[i]);
		drop[ax] = true;
	}
	out->n_dims = 0;
	for (int i = 0; i < x->n_dims; i++)
		if (!drop[i])
			out->dims[out->n_dims++] = x->dims[i];
	return PRESSO_OK;
}

static enum presso_status infer_unsqueeze(const struct graph *g, const struct node *n,
					  const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	int r = x->n_dims + n->a.n_ints;
	if (r > GRAPH_MAX_DIMS)
		return node_error(n, "would exceed the supported rank");
	bool ins[GRAPH_MAX_DIMS] = {false};
	for (int i = 0; i < n->a.n_ints; i++) {
		int64_t ax = norm_axis(n->a.ints[i], r);
		if (ax < 0 || ax >= r || ins[ax])
			return status_fail(PRESSO_E_FORMAT, "node '%s': Unsqueeze axis %lld is invalid",
					   n->name, (long long)n->a.ints[i]);
		ins[ax] = true;
	}
	out->n_dims = r;
	for (int i = 0, j = 0; i < r; i++)
		out->dims[i] = ins[i] ? 1 : x->dims[j++];
	return PRESSO_OK;
}

static enum presso_status infer_pad(const struct graph *g, const struct node *n,
				    const struct shape *in[], struct shape *out)
{
	int r = in[0]->n_dims;
	if (n->a.n_ints != 2 * r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Pad has %d pads for rank %d (needs %d)",
				   n->name, n->a.n_ints, r, 2 * r);
	*out = *in[0];
	for (int i = 0; i < r; i++) {
		/* pads <= GRAPH_MAX_ELEMS (import): the sum cannot overflow */
		out->dims[i] += n->a.ints[i] + n->a.ints[r + i];
		if (out->dims[i] > GRAPH_MAX_ELEMS)
			return too_large(n, "output");
	}
	return PRESSO_OK;
}

/* Resize: each dimension but the batch's to its size, or to the floor of its
 * input's times its scale (ONNX's rule); the batch follows the input. */
/* Input 0 [1, d1, ...] repeated to input 1's first dimension. */
static enum presso_status infer_expand(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out)
{
	(void)g;
	if (n->n_inputs != 2 || in[0]->n_dims < 1 || in[0]->dims[0] != 1 || in[1]->n_dims < 1)
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Expand needs a [1, ...] tensor and a tensor whose first dimension it takes",
				   n->name);
	*out = *in[0];
	out->dims[0] = in[1]->dims[0];
	return PRESSO_OK;
}

static enum presso_status infer_resize(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out)
{
	(void)g;
	int r = in[0]->n_dims;
	if (n->a.n_ints != r || r < 1)
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Resize has %d scales or sizes for an input of rank %d",
				   n->name, n->a.n_ints, r);
	*out = *in[0];
	for (int i = 1; i < r; i++) {
		if (n->a.ints[i] >= 0) {
			out->dims[i] = n->a.ints[i];
			continue;
		}
		double d = floor((double)in[0]->dims[i] * (double)n->a.scales[i]);
		if (d > (double)GRAPH_MAX_ELEMS)
			return too_large(n, "output");
		out->dims[i] = (int64_t)d;
	}
	for (int i = 1; i < r; i++)
		if (in[0]->dims[i] == 0 && out->dims[i] > 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': Resize of an empty dimension to %lld elements",
					   n->name, (long long)out->dims[i]);
	if (n->a.resize_linear && ((r != 3 && r != 4) || out->dims[1] != in[0]->dims[1]))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Resize mode linear is supported over the spatial dimensions of [N, C, H, W] or [N, C, L] only",
				   n->name);
	return PRESSO_OK;
}

static enum presso_status infer_reduce(const struct graph *g, const struct node *n,
				       const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	bool red[GRAPH_MAX_DIMS] = {false};
	for (int i = 0; i < x->n_dims; i++)
		red[i] = n->a.n_ints == 0;
	for (int i = 0; i < n->a.n_ints; i++) {
		int64_t ax = norm_axis(n->a.ints[i], x->n_dims);
		if (ax < 0 || ax >= x->n_dims || (red[ax] && n->a.n_ints))
			return status_fail(PRESSO_E_FORMAT, "node '%s': %s axis %lld is invalid for rank %d",
					   n->name, op_name(n->op), (long long)n->a.ints[i], x->n_dims);
		red[ax] = true;
	}
	out->n_dims = 0;
	for (int i = 0; i < x->n_dims; i++) {
		if (!red[i])
			out->dims[out->n_dims++] = x->dims[i];
		else if (n->a.keepdims)
			out->dims[out->n_dims++] = 1;
	}
	return PRESSO_OK;
}

/* LayerNormalization over the dimensions from axis on; Scale (and B) must be
 * those trailing dimensions, or a suffix of them, with any leading 1s: values
 * that repeat along the normalised row (see layernorm_f32__ref). */
static enum presso_status infer_layernorm(const struct graph *g, const struct node *n,
					  const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	int r = x->n_dims;
	int axis = (int)norm_axis(n->a.axis, r);
	if (axis < 0 || axis >= r)
		return status_fail(PRESSO_E_FORMAT, "node '%s': LayerNormalization axis %d out of range for rank %d",
				   n->name, n->a.axis, r);
	for (int k = 1; k < n->n_inputs; k++) {
		if (n->inputs[k] < 0)
			continue;
		const struct shape *p = in[k];
		int lead = 0;
		while (lead < p->n_dims && p->dims[lead] == 1)
			lead++;
		bool ok = p->n_dims - lead <= r - axis;
		for (int i = lead; ok && i < p->n_dims; i++)
			ok = p->dims[i] == x->dims[r - p->n_dims + i];
		if (!ok)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': LayerNormalization %s must have the normalised dimensions of X (from axis %d)",
					   n->name, k == 1 ? "Scale" : "B", axis);
	}
	*out = *x;
	return PRESSO_OK;
}

/* Slice along one static dimension: count elements from first by step, all
 * inside the dimension (the importer resolved the ONNX clamping). */
static enum presso_status infer_slice(const struct graph *g, const struct node *n,
				      const struct shape *in[], struct shape *out)
{
	const struct shape *x = in[0];
	int axis = n->a.axis;
	int64_t first = n->a.ints[0], count = n->a.ints[1], step = n->a.ints[2];
	if (n->a.n_ints != 3 || axis < 0 || axis >= x->n_dims || count < 0 || step == 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Slice is malformed", n->name);
	int64_t dim = x->dims[axis], last = first + (count - 1) * step;
	if (count > 0 && (first < 0 || first >= dim || last < 0 || last >= dim))
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Slice of %lld from %lld by %lld leaves dimension %d of size %lld",
				   n->name, (long long)count, (long long)first, (long long)step, axis,
				   (long long)dim);
	*out = *x;
	out->dims[axis] = count;
	return PRESSO_OK;
}

static enum presso_status infer_lrn(const struct graph *g, const struct node *n,
				    const struct shape *in[], struct shape *out)
{
	if (in[0]->n_dims < 3)
		return node_error(n, "needs an input of rank 3 or more");
	*out = *in[0];
	return PRESSO_OK;
}

static enum presso_status infer_batchnorm(const struct graph *g, const struct node *n,
					  const struct shape *in[], struct shape *out)
{
	if (in[0]->n_dims < 2)
		return node_error(n, "needs an input of rank 2 or more");
	for (int i = 1; i < 5; i++)
		if (in[i]->n_dims != 1 || in[i]->dims[0] != in[0]->dims[1])
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': BatchNormalization parameter %d is not [%lld]",
					   n->name, i, (long long)in[0]->dims[1]);
	*out = *in[0];
	return PRESSO_OK;
}

static const struct op_traits op_traits[OP_COUNT] = {
	[OP_CONV] = {"Conv", infer_conv},
	[OP_GEMM] = {"Gemm", infer_gemm},
	[OP_MATMUL] = {"MatMul", infer_matmul},
	[OP_RELU] = {"Relu", infer_same},
	[OP_CLIP] = {"Clip", infer_same},
	[OP_BATCHNORM] = {"BatchNormalization", infer_batchnorm},
	[OP_MAXPOOL] = {"MaxPool", infer_pool},
	[OP_AVGPOOL] = {"AveragePool", infer_pool},
	[OP_GLOBALAVGPOOL] = {"GlobalAveragePool", infer_gap},
	[OP_ADD] = {"Add", infer_bcast},
	[OP_CONCAT] = {"Concat", infer_concat},
	[OP_FLATTEN] = {"Flatten", infer_flatten},
	[OP_RESHAPE] = {"Reshape", infer_reshape},
	[OP_SOFTMAX] = {"Softmax", infer_axis_op},
	[OP_LOGSOFTMAX] = {"LogSoftmax", infer_axis_op},
	[OP_IDENTITY] = {"Identity", infer_same},
	[OP_TRANSPOSE] = {"Transpose", infer_transpose},
	[OP_SQUEEZE] = {"Squeeze", infer_squeeze},
	[OP_UNSQUEEZE] = {"Unsqueeze", infer_unsqueeze},
	[OP_SIGMOID] = {"Sigmoid", infer_same},
	[OP_TANH] = {"Tanh", infer_same},
	[OP_HARDSIGMOID] = {"HardSigmoid", infer_same},
	[OP_HARDSWISH] = {"HardSwish", infer_same},
	[OP_LEAKYRELU] = {"LeakyRelu", infer_same},
	[OP_PRELU] = {"PRelu", infer_prelu},
	[OP_MUL] = {"Mul", infer_bcast},
	[OP_SUB] = {"Sub", infer_bcast},
	[OP_DIV] = {"Div", infer_bcast},
	[OP_POW] = {"Pow", infer_bcast},
	[OP_SQRT] = {"Sqrt", infer_same},
	[OP_ERF] = {"Erf", infer_same},
	[OP_SUM] = {"Sum", infer_sum},
	[OP_PAD] = {"Pad", infer_pad},
	[OP_REDUCEMEAN] = {"ReduceMean", infer_reduce},
	[OP_LAYERNORM] = {"LayerNormalization", infer_layernorm},
	[OP_LRN] = {"LRN", infer_lrn},
	[OP_EXP] = {"Exp", infer_same},
	[OP_NEG] = {"Neg", infer_same},
	[OP_RECIPROCAL] = {"Reciprocal", infer_same},
	[OP_ABS] = {"Abs", infer_same},
	[OP_SLICE] = {"Slice", infer_slice},
	[OP_RESIZE] = {"Resize", infer_resize},
	[OP_EXPAND] = {"Expand", infer_expand},
	[OP_ELU] = {"Elu", infer_same},
	[OP_SELU] = {"Selu", infer_same},
	[OP_CELU] = {"Celu", infer_same},
	[OP_SOFTPLUS] = {"Softplus", infer_same},
	[OP_SOFTSIGN] = {"Softsign", infer_same},
	[OP_THRESHOLDEDRELU] = {"ThresholdedRelu", infer_same},
	[OP_CONVTRANSPOSE] = {"ConvTranspose", infer_convtranspose},
	[OP_FAKEQUANT] = {"QuantizeLinear", infer_same},
	[OP_REDUCESUM] = {"ReduceSum", infer_reduce},
	[OP_REDUCEMAX] = {"ReduceMax", infer_reduce},
	[OP_REDUCEMIN] = {"ReduceMin", infer_reduce},
	[OP_REDUCEL2] = {"ReduceL2", infer_reduce},
	[OP_REDUCESUMSQUARE] = {"ReduceSumSquare", infer_reduce},
	[OP_MAX] = {"Max", infer_bcast},
	[OP_MIN] = {"Min", infer_bcast},
	[OP_LOG] = {"Log", infer_same},
	[OP_RNN] = {"RNN", infer_rnn},
	[OP_GRU] = {"GRU", infer_rnn},
	[OP_LSTM] = {"LSTM", infer_rnn},
};
_Static_assert(sizeof op_traits / sizeof op_traits[0] == OP_COUNT, "every op needs traits");

const char *op_name(enum op_type op)
{
	if ((unsigned)op >= OP_COUNT)
		return "?";
	return op_traits[op].name;
}

enum presso_status graph_infer_node(const struct graph *g, const struct node *n,
				    const struct shape *shapes, struct shape *out)
{
	const struct shape *in[GRAPH_MAX_INPUTS];
	static const struct shape empty = {0};
	for (int i = 0; i < n->n_inputs; i++)
		in[i] = n->inputs[i] >= 0 ? &shapes[n->inputs[i]] : &empty;
	PRESSO_CHECK(op_traits[n->op].infer != NULL);
	enum presso_status s = op_traits[n->op].infer(g, n, in, out);
	int64_t numel;
	if (s == PRESSO_OK && !shape_numel_checked(out, &numel)) {
		char buf[256];
		shape_format(out, false, buf, sizeof buf);
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s output %s has more than %lld elements (the most a tensor may have)",
				   n->name, op_name(n->op), buf, (long long)GRAPH_MAX_ELEMS);
	}
	return s;
}

enum presso_status graph_infer_shapes(const struct graph *g, int64_t batch,
				      struct shape *shapes)
{
	for (int i = 0; i < g->n_values; i++) {
		shapes[i] = g->values[i].shape;
		if (g->values[i].producer < 0 && g->values[i].batched) {
			shapes[i].dims[0] = batch;
			int64_t numel;
			if (!shape_numel_checked(&shapes[i], &numel))
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "graph input '%s' at batch %lld has more than %lld elements (the most a tensor may have)",
						   g->values[i].name, (long long)batch,
						   (long long)GRAPH_MAX_ELEMS);
		}
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		enum presso_status s = graph_infer_node(g, n, shapes, &shapes[n->output]);
		if (s != PRESSO_OK)
			return s;
	}
	return PRESSO_OK;
}

int graph_find_value(const struct graph *g, const char *name)
{
	for (int i = 0; i < g->n_values; i++)
		if (g->values[i].name && strcmp(g->values[i].name, name) == 0)
			return i;
	return -1;
}

static bool layer_of(const struct graph *g, int node_index, struct layer *l)
{
	const struct node *n = &g->nodes[node_index];
	if (n->op != OP_CONV && n->op != OP_GEMM && n->op != OP_MATMUL)
		return false;
	if (n->n_inputs < 2 || n->inputs[1] < 0)
		return false;
	const struct value *w = &g->values[n->inputs[1]];
	if (!w->data)
		return false;
	const struct shape *out = &g->values[n->output].shape;
	memset(l, 0, sizeof *l);
	l->node = node_index;
	l->name = n->name;
	l->op = n->op;
	l->params = shape_numel(&w->shape);
	if (n->n_inputs > 2 && n->inputs[2] >= 0)
		l->params += shape_numel(&g->values[n->inputs[2]].shape);
	if (n->op == OP_CONV) {
		l->c_out = w->shape.dims[0];
		l->c_in = w->shape.dims[1];
		l->kh = (int)w->shape.dims[2];
		l->kw = (int)w->shape.dims[3];
		l->group = n->a.group;
		/* output elements times weights per output: each count <= GRAPH_MAX_ELEMS
		 * (see graph.h), so the product is below 2^62 */
		l->macs = out->dims[1] * out->dims[2] * out->dims[3] * l->c_in * l->kh * l->kw;
		if (!g->values[n->output].batched)
			l->macs *= out->dims[0];
	} else {
		bool tb = n->op == OP_GEMM && n->a.trans_b;
		if (w->shape.n_dims != 2)
			return false;
		l->c_out = tb ? w->shape.dims[0] : w->shape.dims[1];
		l->c_in = tb ? w->shape.dims[1] : w->shape.dims[0];
		l->kh = l->kw = 1;
		l->group = 1;
		l->macs = shape_numel(out) * l->c_in;
	}
	/* an input with a fixed batch B (not batched): the output holds B images */
	const struct value *in = g->n_inputs ? &g->values[g->inputs[0]] : NULL;
	if (in && !in->batched && in->shape.n_dims > 0 && in->shape.dims[0] > 1 &&
	    out->n_dims > 0 && out->dims[0] == in->shape.dims[0])
		l->macs /= in->shape.dims[0];
	return true;
}

enum presso_status graph_layers(const struct graph *g, struct layer **out, int *n_out)
{
	*out = NULL;
	*n_out = 0;
	struct layer *ls = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *ls);
	if (!ls)
		return status_fail(PRESSO_E_NOMEM, "out of memory listing layers");
	int n = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if (layer_of(g, i, &ls[n]))
			n++;
	*out = ls;
	*n_out = n;
	return PRESSO_OK;
}

int graph_rnn_projection(const struct graph *g, int i)
{
	const struct node *n = &g->nodes[i];
	if (!op_is_recurrent(n->op) || !n->a.rnn_projected || n->inputs[RNN_IN_R] < 0 ||
	    !g->values[n->inputs[RNN_IN_R]].data || g->values[n->inputs[RNN_IN_R]].shape.n_dims != 3)
		return -1;
	int p = g->values[n->inputs[RNN_IN_X]].producer;
	if (p < 0 || g->nodes[p].op != OP_MATMUL || g->nodes[p].n_inputs < 2 ||
	    !g->values[g->nodes[p].inputs[1]].data ||
	    g->values[g->nodes[p].inputs[1]].shape.n_dims != 2)
		return -1;
	return p;
}

int graph_fused_activation(const struct graph *g, int i)
{
	const struct node *n = &g->nodes[i];
	if (n->op != OP_CONV && n->op != OP_GEMM)
		return -1;
	const struct value *v = &g->values[n->output];
	if (v->n_consumers != 1)
		return -1;
	for (int k = 0; k < g->n_outputs; k++)
		if (g->outputs[k] == n->output)
			return -1;
	for (int j = i + 1; j < g->n_nodes; j++) {
		const struct node *m = &g->nodes[j];
		if ((m->op == OP_RELU || m->op == OP_CLIP) && m->inputs[0] == n->output)
			return j;
	}
	return -1;
}

/* Multiply-adds per image of the nodes that compute with weights but are not
 * layers (they run in FP32 in both engines): an RNN/GRU/LSTM's recurrence
 * (and its input projection when not projected), a ConvTranspose. */
int64_t graph_node_fp32_macs(const struct graph *g, int i)
{
	const struct node *n = &g->nodes[i];
	if (op_is_recurrent(n->op)) {
		const struct shape *x = &g->values[n->inputs[RNN_IN_X]].shape;
		int64_t seq = x->n_dims == 3 ? x->dims[n->a.rnn_batch_first ? 1 : 0] : 0;
		int64_t h = n->a.rnn_hidden, dirs = n->a.rnn_direction == 2 ? 2 : 1;
		int64_t gh = (n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1) * h;
		int64_t in = n->a.rnn_projected || x->n_dims != 3 ? 0 : x->dims[2];
		return seq * dirs * gh * (h + in);
	}
	if (n->op == OP_CONVTRANSPOSE) {
		const struct shape *w = &g->values[n->inputs[1]].shape;
		if (w->n_dims == 4)
			return shape_numel(&g->values[n->inputs[0]].shape) * w->dims[1] * w->dims[2] *
			       w->dims[3];
	}
	return 0;
}

int64_t graph_fp32_macs(const struct graph *g)
{
	int64_t m = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		int64_t add = graph_node_fp32_macs(g, i);
		m = add > INT64_MAX - m ? INT64_MAX : m + add;
	}
	return m;
}

void graph_totals(const struct graph *g, int64_t *params, int64_t *macs)
{
	int64_t p = 0, m = 0;
	for (int i = 0; i < g->n_values; i++) {
		const struct value *v = &g->values[i];
		if (v->data && v->n_consumers > 0)
			p += shape_numel(&v->shape);
	}
	for (int i = 0; i < g->n_nodes; i++) {
		struct layer l;
		if (layer_of(g, i, &l))
			m = l.macs > INT64_MAX - m ? INT64_MAX : m + l.macs;
	}
	int64_t f = graph_fp32_macs(g);
	*params = p;
	*macs = f > INT64_MAX - m ? INT64_MAX : m + f;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n_values; i++) {
		free(g->values[i].name);
		free(g->values[i].data);
		free(g->values[i].idata);
	}
	for (int i = 0; i < g->n_nodes; i++)
		free(g->nodes[i].name);
	free(g->values);
	free(g->nodes);
	free(g->inputs);
	free(g->outputs);
	free(g->producer);
	free(g);
}
