/* presso_file.c - the .presso format: a quantized model, ready to run.
 *
 * Layout, version 4. Integers are little-endian; "uv" is an unsigned LEB128
 * varint, "sv" a zigzag-coded signed one; "str" is a uv byte count and the bytes
 * (no NUL); f32 is IEEE-754 binary32.
 *
 *   header (24 bytes)
 *     magic        8   "PRESSO\r\n" (the CR LF catches a text-mode transfer)
 *     version      u32 4 (version 3 is the same without quantized
 *                  constants; version 2 also without the requant byte,
 *                  and reads as Q31 requantization)
 *     crc32        u32 CRC-32 (zlib) of the body
 *     body_bytes   u64 the file's size minus 24
 *   body, structure
 *     str producer, uv opset, uv n_folded_bn, uv n_folded_const
 *     u8 requant       0 float, 1 Q31 (qengine.h's requant_mode)
 *     uv n_values, n_nodes, n_inputs, n_outputs, n_layers
 *     value[n_values]  str name, u8 flags, uv n_dims, uv dims[n_dims] (at batch 1)
 *                      flags: bits 0-1 kind (0 activation, 1 float constant,
 *                      2 layer weight, 3 layer bias), bit 2 batched, bit 3
 *                      a float constant stored quantized (a recurrent
 *                      layer's R^T [dirs, hidden, gates * hidden]), bits 4-7
 *                      the activation bits of the quantization group the value
 *                      heads (0 if it heads none)
 *     node[n_nodes]    str name, u8 op, u8 n_inputs, uv inputs[n_inputs]
 *                      (value + 1; 0 for an absent optional input), uv output,
 *                      the attributes of its op (op_format below). op is
 *                      graph.h's enum op_type, to which ops are only ever
 *                      appended: a file keeps its meaning, and a file with
 *                      an op an older presso lacks is refused by it as an
 *                      unknown op
 *     uv inputs[n_inputs], uv outputs[n_outputs]   value indices
 *     layer[n_layers]  uv node, u8 bits, u8 act_bits, u8 coding, uv nnz
 *     qconst[]         per quantized constant (bit 3, in value order): u8
 *                      bits, u8 coding, uv nnz
 *   body, payload: exactly the model's size_bytes (qmodel_size)
 *     per layer        its weights in its coding (wcode.h; [n_out][k] in the
 *                      graph's weight order), binary16 scale[n_out] (u16,
 *                      positive and finite), then the biases (in units of
 *                      s_in * scale[c]): u8 width w, n_out values of w bits
 *                      two's complement, packed as wcode.h says
 *     per group head   (values with act bits, in value order) f32 scale,
 *                      u8 zero point
 *     per float constant (kind 1, value order) f32 data[numel]; a quantized
 *                      one: its codes in its coding (ONNX's R rows [dirs *
 *                      gates * hidden][hidden]), binary16 scale per row
 *
 * The structure is the overhead over size_bytes: 24 bytes of header plus
 * names, shapes, nodes and 5-10 bytes per layer, mostly names: 818 bytes for
 * LeNet, 3.5 to 5.6 KB for the shipped ResNet and MobileNetV2. Layer
 * weights and biases exist only as their quantized form: loading dequantizes
 * them (w = scale * q, b = s_in * scale * bias) into the graph. A Gemm layer is
 * written with alpha = beta = 1 (the quantized weights and biases include them);
 * a Conv or Gemm layer whose int32 bias is not zero but that had no bias input
 * (bias correction) gets one. Graphs with int64 constants are refused: none is
 * left after import, where Reshape shapes and axes become attributes.
 *
 * Loading checks everything before the engines see it: the CRC, every count
 * against the bytes left, indices, attributes, a topological order, every
 * stored shape against shape inference, the layers against graph_layers(), each
 * coding being canonical and the one quant_weight_coding() picks, and the
 * rebuilt model's groups and size against the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "format/presso_file.h"

#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model/engine.h" /* the Resize modes */
#include "quant/policy.h"
#include "quant/quant.h"
#include "format/wcode.h"

#define PFILE_MAGIC "PRESSO\r\n"
#define PFILE_MAGIC_BYTES 8
#define PFILE_EXTENSION ".presso"
#define PFILE_VERSION 4
#define PFILE_VERSION_NO_QCONST 3 /* no quantized constants */
#define PFILE_VERSION_Q31_ONLY 2 /* oldest readable: no requant byte, Q31 */
#define PFILE_HEADER_BYTES 24

/* Bounds a loaded graph must keep (far above any model presso handles): a
 * dimension, a tensor's elements at batch 1, and nodes or values. */
#define PFILE_MAX_DIM (INT64_C(1) << 24)
#define PFILE_MAX_NUMEL (INT64_C(1) << 28)
#define PFILE_MAX_COUNT (1 << 24)
/* The window attributes the importer accepts (onnx_import.c read_window). */
#define PFILE_MAX_WINDOW 1024

enum value_kind { VK_ACT, VK_CONST, VK_WEIGHT, VK_BIAS };

#define VF_KIND_MASK 0x03u
#define VF_BATCHED 0x04u
#define VF_QCONST 0x08u /* a float constant stored quantized (a recurrent layer's R) */
#define VF_BITS_SHIFT 4

/* Which attributes each op stores, and how many inputs it takes once imported. */
enum {
	A_WINDOW = 1 << 0, /* kernel[2], strides[2], pads[4], dilations[2]: uv; auto_pad u8 */
	A_GROUP = 1 << 1,  /* uv group */
	A_POOL = 1 << 2,   /* u8: ceil_mode | count_include_pad << 1 */
	A_GEMM = 1 << 3,   /* f32 alpha, f32 beta, u8: trans_a | trans_b << 1 */
	A_CLIP = 1 << 4,   /* f32 min, f32 max */
	A_EPS = 1 << 5,    /* f32 epsilon */
	A_AXIS = 1 << 6,   /* sv axis */
	A_INTS = 1 << 7,   /* uv n_ints, sv ints[n_ints], u8 allowzero */
	A_ALPHA = 1 << 8,  /* f32 alpha, f32 beta */
	A_LRN = 1 << 9,    /* f32 bias, uv size */
	A_PAD = 1 << 10,   /* uv n_ints (even), uv pads[n_ints], f32 value */
	A_REDUCE = 1 << 11, /* uv n_ints, sv axes[n_ints], u8 keepdims */
	A_OUTPAD = 1 << 13, /* uv out_pad[2] */
	A_RNN = 1 << 14,    /* uv hidden, u8 direction | batch_first << 2 | lbr << 3 | output << 4 |
			       projected << 6 */
	A_RESIZE = 1 << 12, /* u8 coord, u8 round | linear << 4, uv n_ints, then per dimension: sv size
			       (-1: from the scale), f32 scale (0: from the size) */
};

struct op_format {
	unsigned attrs;
	int min_inputs, max_inputs;
	bool optional_last; /* the last input may be absent (a bias) */
};

static const struct op_format op_format[OP_COUNT] = {
	[OP_CONV] = {A_WINDOW | A_GROUP, 2, 3, true},
	[OP_GEMM] = {A_GEMM, 2, 3, true},
	[OP_MATMUL] = {0, 2, 2, false},
	[OP_RELU] = {0, 1, 1, false},
	[OP_CLIP] = {A_CLIP, 1, 1, false},
	[OP_BATCHNORM] = {A_EPS, 5, 5, false},
	[OP_MAXPOOL] = {A_WINDOW | A_POOL, 1, 1, false},
	[OP_AVGPOOL] = {A_WINDOW | A_POOL, 1, 1, false},
	[OP_GLOBALAVGPOOL] = {0, 1, 1, false},
	[OP_ADD] = {0, 2, 2, false},
	[OP_CONCAT] = {A_AXIS, 1, GRAPH_MAX_INPUTS, false},
	[OP_FLATTEN] = {A_AXIS, 1, 1, false},
	[OP_RESHAPE] = {A_INTS, 1, 1, false},
	[OP_SOFTMAX] = {A_AXIS, 1, 1, false},
	[OP_LOGSOFTMAX] = {A_AXIS, 1, 1, false},
	[OP_IDENTITY] = {0, 1, 1, false},
	[OP_TRANSPOSE] = {A_INTS, 1, 1, false},
	[OP_SQUEEZE] = {A_INTS, 1, 1, false},
	[OP_UNSQUEEZE] = {A_INTS, 1, 1, false},
	[OP_SIGMOID] = {0, 1, 1, false},
	[OP_TANH] = {0, 1, 1, false},
	[OP_HARDSIGMOID] = {A_ALPHA, 1, 1, false},
	[OP_HARDSWISH] = {0, 1, 1, false},
	[OP_LEAKYRELU] = {A_ALPHA, 1, 1, false},
	[OP_PRELU] = {0, 2, 2, false},
	[OP_MUL] = {0, 2, 2, false},
	[OP_SUB] = {0, 2, 2, false},
	[OP_DIV] = {0, 2, 2, false},
	[OP_POW] = {0, 2, 2, false},
	[OP_SQRT] = {0, 1, 1, false},
	[OP_ERF] = {0, 1, 1, false},
	[OP_SUM] = {0, 1, GRAPH_MAX_INPUTS, false},
	[OP_PAD] = {A_PAD, 1, 1, false},
	[OP_REDUCEMEAN] = {A_REDUCE, 1, 1, false},
	[OP_LAYERNORM] = {A_AXIS | A_EPS, 2, 3, true},
	[OP_LRN] = {A_ALPHA | A_LRN, 1, 1, false},
	[OP_EXP] = {0, 1, 1, false},
	[OP_NEG] = {0, 1, 1, false},
	[OP_RECIPROCAL] = {0, 1, 1, false},
	[OP_ABS] = {0, 1, 1, false},
	[OP_SLICE] = {A_AXIS | A_INTS, 1, 1, false},
	[OP_RESIZE] = {A_RESIZE, 1, 1, false},
	[OP_EXPAND] = {0, 2, 2, false},
	[OP_ELU] = {A_ALPHA, 1, 1, false},
	[OP_SELU] = {A_ALPHA, 1, 1, false},
	[OP_CELU] = {A_ALPHA, 1, 1, false},
	[OP_SOFTPLUS] = {0, 1, 1, false},
	[OP_SOFTSIGN] = {0, 1, 1, false},
	[OP_THRESHOLDEDRELU] = {A_ALPHA, 1, 1, false},
	[OP_CONVTRANSPOSE] = {A_WINDOW | A_GROUP | A_OUTPAD, 2, 3, true},
	[OP_FAKEQUANT] = {A_ALPHA | A_CLIP, 1, 1, false},
	[OP_REDUCESUM] = {A_REDUCE, 1, 1, false},
	[OP_REDUCEMAX] = {A_REDUCE, 1, 1, false},
	[OP_REDUCEMIN] = {A_REDUCE, 1, 1, false},
	[OP_REDUCEL2] = {A_REDUCE, 1, 1, false},
	[OP_REDUCESUMSQUARE] = {A_REDUCE, 1, 1, false},
	[OP_MAX] = {0, 2, 2, false},
	[OP_MIN] = {0, 2, 2, false},
	[OP_LOG] = {0, 1, 1, false},
	/* inputs from RNN_IN_B on may be absent (read_nodes) */
	[OP_RNN] = {A_RNN, RNN_N_IN, RNN_N_IN, false},
	[OP_GRU] = {A_RNN, RNN_N_IN, RNN_N_IN, false},
	[OP_LSTM] = {A_RNN, RNN_N_IN, RNN_N_IN, false},
};
_Static_assert(sizeof op_format / sizeof op_format[0] == OP_COUNT, "every op needs a format");
/* (the array has OP_COUNT entries whatever it lists: an op left out reads as
 * taking no input, which tests/test_presso_file.c catches) */

static uint32_t body_crc(const uint8_t *p, size_t n)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	while (n > 0) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
		crc = crc32(crc, p, chunk);
		p += chunk;
		n -= chunk;
	}
	return (uint32_t)crc;
}

/* --- writing ------------------------------------------------------------------ */

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static uint8_t *w_room(struct wbuf *w, size_t k)
{
	if (w->oom)
		return NULL;
	if (w->n + k > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->n + k)
			cap *= 2;
		uint8_t *p = realloc(w->p, cap);
		if (!p) {
			w->oom = true;
			return NULL;
		}
		w->p = p;
		w->cap = cap;
	}
	uint8_t *at = w->p + w->n;
	w->n += k;
	return at;
}

static void w_bytes(struct wbuf *w, const void *src, size_t k)
{
	uint8_t *at = w_room(w, k);
	if (at && k)
		memcpy(at, src, k);
}

static void w_u8(struct wbuf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	w_bytes(w, &b, 1);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	w_bytes(w, b, 4);
}

static void w_u64(struct wbuf *w, uint64_t v)
{
	w_u32(w, (uint32_t)v);
	w_u32(w, (uint32_t)(v >> 32));
}

static void w_u16(struct wbuf *w, unsigned v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	w_bytes(w, b, 2);
}

static void w_f32(struct wbuf *w, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	w_u32(w, v);
}

static void w_uv(struct wbuf *w, uint64_t v)
{
	do {
		w_u8(w, (unsigned)(v & 0x7f) | (v > 0x7f ? 0x80u : 0));
		v >>= 7;
	} while (v);
}

static void w_sv(struct wbuf *w, int64_t v)
{
	w_uv(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void w_str(struct wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	w_uv(w, n);
	w_bytes(w, s, n);
}

static void w_attrs(struct wbuf *w, const struct node *n, bool gemm_layer)
{
	const struct node_attrs *a = &n->a;
	unsigned f = op_format[n->op].attrs;
	if (f & A_WINDOW) {
		for (int i = 0; i < 2; i++)
			w_uv(w, (uint64_t)a->kernel[i]);
		for (int i = 0; i < 2; i++)
			w_uv(w, (uint64_t)a->strides[i]);
		for (int i = 0; i < 4; i++)
			w_uv(w, (uint64_t)a->pads[i]);
		for (int i = 0; i < 2; i++)
			w_uv(w, (uint64_t)a->dilations[i]);
		w_u8(w, (unsigned)a->auto_pad);
	}
	if (f & A_GROUP)
		w_uv(w, (uint64_t)a->group);
	if (f & A_OUTPAD)
		for (int i = 0; i < 2; i++)
			w_uv(w, (uint64_t)a->out_pad[i]);
	if (f & A_RNN) {
		w_uv(w, (uint64_t)a->rnn_hidden);
		w_u8(w, a->rnn_direction | (a->rnn_batch_first ? 4u : 0) | (a->rnn_lbr ? 8u : 0) |
				(unsigned)a->rnn_output << 4 | (a->rnn_projected ? 0x40u : 0));
	}
	if (f & A_POOL)
		w_u8(w, (a->ceil_mode ? 1u : 0) | (a->count_include_pad ? 2u : 0));
	if (f & A_GEMM) {
		/* a layer's alpha and beta are inside its quantized weights and biases */
		w_f32(w, gemm_layer ? 1.0f : a->alpha);
		w_f32(w, gemm_layer ? 1.0f : a->beta);
		w_u8(w, (a->trans_a ? 1u : 0) | (a->trans_b ? 2u : 0));
	}
	if (f & A_CLIP) {
		w_f32(w, a->clip_min);
		w_f32(w, a->clip_max);
	}
	if (f & A_EPS)
		w_f32(w, a->epsilon);
	if (f & A_AXIS)
		w_sv(w, a->axis);
	if (f & A_INTS) {
		w_uv(w, (uint64_t)a->n_ints);
		for (int i = 0; i < a->n_ints; i++)
			w_sv(w, a->ints[i]);
		w_u8(w, a->allowzero ? 1u : 0);
	}
	if (f & A_ALPHA) {
		w_f32(w, a->alpha);
		w_f32(w, a->beta);
	}
	if (f & A_LRN) {
		w_f32(w, a->lrn_bias);
		w_uv(w, (uint64_t)a->lrn_size);
	}
	if (f & A_PAD) {
		w_uv(w, (uint64_t)a->n_ints);
		for (int i = 0; i < a->n_ints; i++)
			w_uv(w, (uint64_t)a->ints[i]);
		w_f32(w, a->pad_value);
	}
	if (f & A_REDUCE) {
		w_uv(w, (uint64_t)a->n_ints);
		for (int i = 0; i < a->n_ints; i++)
			w_sv(w, a->ints[i]);
		w_u8(w, a->keepdims ? 1u : 0);
	}
	if (f & A_RESIZE) {
		w_u8(w, a->resize_coord);
		w_u8(w, (unsigned)a->resize_round | (a->resize_linear ? 0x10u : 0u));
		w_uv(w, (uint64_t)a->n_ints);
		for (int i = 0; i < a->n_ints; i++) {
			w_sv(w, a->ints[i]);
			w_f32(w, a->scales[i]);
		}
	}
}

static bool any_nonzero(const int32_t *b, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (b[i])
			return true;
	return false;
}


static enum presso_status encode(const struct qmodel *m, const char *path, uint8_t **bytes,
				 size_t *n_bytes);

enum presso_status presso_file_write(const struct qmodel *m, const char *path,
				     int64_t *file_bytes)
{
	uint8_t *bytes = NULL;
	size_t n = 0;
	enum presso_status s = encode(m, path, &bytes, &n);
	if (s == PRESSO_OK)
		s = file_write_atomic(path, bytes, n);
	if (s == PRESSO_OK && file_bytes)
		*file_bytes = (int64_t)n;
	free(bytes);
	return s;
}

enum presso_status presso_file_encode(const struct qmodel *m, uint8_t **bytes, size_t *n_bytes)
{
	return encode(m, "the .presso image", bytes, n_bytes);
}

/* The file's bytes; `path` names it in messages. */
static enum presso_status encode(const struct qmodel *m, const char *path, uint8_t **bytes,
				 size_t *n_bytes)
{
	*bytes = NULL;
	*n_bytes = 0;
	const struct graph *g = qmodel_graph(m);
	int nl = qmodel_n_layers(m), nv = g->n_values;
	struct wbuf w = {0};
	enum presso_status s = PRESSO_OK;
	struct qlayer_view *views = calloc((size_t)(nl ? nl : 1), sizeof *views);
	uint8_t *kind = calloc((size_t)(nv ? nv : 1), 1);
	int *extra_bias = malloc(sizeof(int) * (size_t)(nl ? nl : 1)); /* value index or -1 */
	int64_t *bias_n = calloc((size_t)(nv ? nv : 1), sizeof *bias_n); /* a bias's channels */
	if (!views || !kind || !extra_bias || !bias_n) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		goto done;
	}
	/* value kinds; a bias input for layers whose int32 bias has no float value */
	int n_values = nv;
	for (int i = 0; i < nl; i++) {
		qmodel_layer_view(m, i, &views[i]);
		const struct node *n = &g->nodes[views[i].node];
		kind[n->inputs[1]] = VK_WEIGHT;
		extra_bias[i] = -1;
		if (n->n_inputs > 2 && n->inputs[2] >= 0) {
			kind[n->inputs[2]] = VK_BIAS;
			bias_n[n->inputs[2]] = views[i].n_out;
		} else if (n->op != OP_MATMUL && any_nonzero(views[i].bias, views[i].n_out))
			extra_bias[i] = n_values++;
	}
	for (int v = 0; v < nv; v++) {
		if (g->values[v].idata) {
			s = status_fail(PRESSO_E_UNSUPPORTED,
					"%s: value '%s' is an int64 constant, which .presso files do not hold",
					path, g->values[v].name);
			goto done;
		}
		if (kind[v] == VK_ACT && g->values[v].data)
			kind[v] = VK_CONST;
	}

	/* header, completed at the end */
	w_bytes(&w, PFILE_MAGIC, PFILE_MAGIC_BYTES);
	w_u32(&w, PFILE_VERSION);
	w_u32(&w, 0);
	w_u64(&w, 0);
	/* structure */
	w_str(&w, g->producer);
	w_uv(&w, (uint64_t)g->opset);
	w_uv(&w, (uint64_t)g->n_folded_bn);
	w_uv(&w, (uint64_t)g->n_folded_const);
	w_u8(&w, qmodel_requant(m) == REQUANT_Q31 ? 1 : 0);
	w_uv(&w, (uint64_t)n_values);
	w_uv(&w, (uint64_t)g->n_nodes);
	w_uv(&w, (uint64_t)g->n_inputs);
	w_uv(&w, (uint64_t)g->n_outputs);
	w_uv(&w, (uint64_t)nl);
	for (int v = 0; v < nv; v++) {
		const struct value *val = &g->values[v];
		struct qparams qp;
		unsigned flags = kind[v] | (val->batched ? VF_BATCHED : 0);
		if (qmodel_qconst_of(m, v) >= 0)
			flags |= VF_QCONST;
		if (qmodel_value_group(m, v) == v && qmodel_value_qparams(m, v, &qp))
			flags |= (unsigned)qp.bits << VF_BITS_SHIFT;
		w_str(&w, val->name);
		w_u8(&w, flags);
		if (kind[v] == VK_BIAS) { /* one float per output channel */
			w_uv(&w, 1);
			w_uv(&w, (uint64_t)bias_n[v]);
			continue;
		}
		w_uv(&w, (uint64_t)val->shape.n_dims);
		for (int d = 0; d < val->shape.n_dims; d++)
			w_uv(&w, (uint64_t)val->shape.dims[d]);
	}
	for (int i = 0; i < nl; i++) {
		if (extra_bias[i] < 0)
			continue;
		char name[300];
		snprintf(name, sizeof name, "%s.bias", g->nodes[views[i].node].name);
		w_str(&w, name);
		w_u8(&w, VK_BIAS);
		w_uv(&w, 1);
		w_uv(&w, (uint64_t)views[i].n_out);
	}
	for (int j = 0; j < g->n_nodes; j++) {
		const struct node *n = &g->nodes[j];
		int li = -1;
		for (int i = 0; i < nl; i++)
			if (views[i].node == j)
				li = i;
		int n_in = n->n_inputs;
		if (li >= 0 && extra_bias[li] >= 0)
			n_in = 3;
		w_str(&w, n->name);
		w_u8(&w, (unsigned)n->op);
		w_u8(&w, (unsigned)n_in);
		for (int k = 0; k < n_in; k++) {
			int v = k < n->n_inputs ? n->inputs[k] : extra_bias[li];
			w_uv(&w, (uint64_t)(v + 1));
		}
		w_uv(&w, (uint64_t)n->output);
		w_attrs(&w, n, li >= 0 && n->op == OP_GEMM);
	}
	for (int i = 0; i < g->n_inputs; i++)
		w_uv(&w, (uint64_t)g->inputs[i]);
	for (int i = 0; i < g->n_outputs; i++)
		w_uv(&w, (uint64_t)g->outputs[i]);
	for (int i = 0; i < nl; i++) {
		w_uv(&w, (uint64_t)views[i].node);
		w_u8(&w, (unsigned)views[i].bits);
		w_u8(&w, (unsigned)views[i].act_bits);
		w_u8(&w, (unsigned)views[i].coding.kind);
		w_uv(&w, (uint64_t)views[i].coding.nnz);
	}
	for (int v = 0; v < nv; v++) {
		int c = qmodel_qconst_of(m, v);
		if (c < 0)
			continue;
		struct qconst_view q;
		qmodel_qconst_view(m, c, &q);
		w_u8(&w, (unsigned)q.bits);
		w_u8(&w, (unsigned)q.coding.kind);
		w_uv(&w, (uint64_t)q.coding.nnz);
	}
	size_t payload_at = w.n;
	/* payload */
	for (int i = 0; i < nl && !w.oom; i++) {
		const struct qlayer_view *L = &views[i];
		uint8_t *at = w_room(&w, (size_t)L->coding.bytes);
		if (at)
			wcode_encode(L->w, L->n_out * L->k, L->bits, &L->coding, at);
		for (int64_t c = 0; c < L->n_out; c++)
			w_u16(&w, quant_f16_encode(L->w_scale[c]));
		at = w_room(&w, (size_t)quant_bias_bytes(L->n_out, quant_bias_bits(L->bias, L->n_out)));
		if (at)
			wcode_bias_encode(L->bias, L->n_out, at);
	}
	for (int v = 0; v < nv; v++) {
		struct qparams qp;
		if (qmodel_value_group(m, v) == v && qmodel_value_qparams(m, v, &qp)) {
			w_f32(&w, qp.scale);
			w_u8(&w, (unsigned)qp.zero);
		}
	}
	int64_t unused_const_bytes = 0;
	for (int v = 0; v < nv; v++) {
		if (kind[v] != VK_CONST)
			continue;
		const struct value *val = &g->values[v];
		int64_t numel = shape_numel(&val->shape);
		int c = qmodel_qconst_of(m, v);
		if (c >= 0) {
			struct qconst_view q;
			qmodel_qconst_view(m, c, &q);
			uint8_t *at = w_room(&w, (size_t)q.coding.bytes);
			if (at)
				wcode_encode(q.w, q.n_out * q.k, q.bits, &q.coding, at);
			for (int64_t r = 0; r < q.n_out; r++)
				w_u16(&w, quant_f16_encode(q.w_scale[r]));
			continue;
		}
		for (int64_t i = 0; i < numel; i++)
			w_f32(&w, val->data[i]);
		if (val->n_consumers == 0) /* not in size_bytes */
			unused_const_bytes += 4 * numel;
	}
	if (w.oom) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		goto done;
	}
	struct qmodel_size z;
	qmodel_size(m, &z);
	int64_t payload = (int64_t)(w.n - payload_at) - unused_const_bytes;
	if (payload != z.size_bytes) {
		s = status_fail(PRESSO_E_RUNTIME,
				"%s: internal error: the payload is %lld bytes but the model's size is %lld",
				path, (long long)payload, (long long)z.size_bytes);
		goto done;
	}
	uint8_t *h = w.p + PFILE_MAGIC_BYTES + 4;
	uint32_t crc = body_crc(w.p + PFILE_HEADER_BYTES, w.n - PFILE_HEADER_BYTES);
	uint64_t body = w.n - PFILE_HEADER_BYTES;
	for (int i = 0; i < 4; i++)
		h[i] = (uint8_t)(crc >> (8 * i));
	for (int i = 0; i < 8; i++)
		h[4 + i] = (uint8_t)(body >> (8 * i));
	*bytes = w.p;
	*n_bytes = w.n;
	w.p = NULL;
done:
	free(bias_n);
	free(views);
	free(kind);
	free(extra_bias);
	free(w.p);
	return s;
}

/* --- reading ------------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t n, pos;     /* the body and the read position in it */
	const char *path;
	bool oom;          /* a reader's allocation failed: bad() says so */
};

/* A format error naming the file and what is wrong. */
static enum presso_status bad(const struct rd *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum presso_status bad(const struct rd *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->oom)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory reading it", r->path);
	return status_fail(PRESSO_E_FORMAT, "%s: %s", r->path, msg);
}

static size_t r_left(const struct rd *r)
{
	return r->n - r->pos;
}

static bool r_bytes(struct rd *r, void *dst, size_t k)
{
	if (r_left(r) < k)
		return false;
	if (k)
		memcpy(dst, r->p + r->pos, k);
	r->pos += k;
	return true;
}

static bool r_u8(struct rd *r, unsigned *v)
{
	uint8_t b;
	if (!r_bytes(r, &b, 1))
		return false;
	*v = b;
	return true;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static bool r_u16(struct rd *r, unsigned *v)
{
	uint8_t b[2];
	if (!r_bytes(r, b, 2))
		return false;
	*v = (unsigned)b[0] | (unsigned)b[1] << 8;
	return true;
}

static bool r_u32(struct rd *r, uint32_t *v)
{
	uint8_t b[4];
	if (!r_bytes(r, b, 4))
		return false;
	*v = le32(b);
	return true;
}

static bool r_f32(struct rd *r, float *f)
{
	uint32_t v;
	if (!r_u32(r, &v))
		return false;
	memcpy(f, &v, 4);
	return true;
}

static bool r_uv(struct rd *r, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		unsigned b;
		if (!r_u8(r, &b))
			return false;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return shift < 63 || b <= 1;
	}
	return false;
}

static bool r_sv(struct rd *r, int64_t *v)
{
	uint64_t u;
	if (!r_uv(r, &u))
		return false;
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return true;
}

/* A uv in [lo, hi]; false when missing or out of range. */
static bool r_uv_in(struct rd *r, uint64_t lo, uint64_t hi, int64_t *v)
{
	uint64_t u;
	if (!r_uv(r, &u) || u < lo || u > hi)
		return false;
	*v = (int64_t)u;
	return true;
}

/* A string: a new NUL-terminated copy (free it). */
static bool r_str(struct rd *r, char **out)
{
	uint64_t n;
	*out = NULL;
	if (!r_uv(r, &n) || n > r_left(r))
		return false;
	char *s = malloc((size_t)n + 1);
	if (!s) {
		r->oom = true;
		return false;
	}
	r_bytes(r, s, (size_t)n);
	s[n] = '\0';
	*out = s;
	return true;
}

static enum presso_status r_attrs(struct rd *r, struct node *n)
{
	struct node_attrs *a = &n->a;
	unsigned f = op_format[n->op].attrs;
	int64_t v;
	unsigned b;
	a->group = 1;
	a->alpha = a->beta = 1.0f;
	a->clip_min = -INFINITY;
	a->clip_max = INFINITY;
	a->epsilon = 1e-5f;
	a->axis = 1;
	if (f & A_WINDOW) {
		/* a pool needs its kernel; a Conv takes its weight's */
		bool pool = n->op != OP_CONV && n->op != OP_CONVTRANSPOSE;
		for (int i = 0; i < 2; i++) {
			if (!r_uv_in(r, pool ? 1 : 0, PFILE_MAX_WINDOW, &v))
				return bad(r, "node '%s': bad kernel_shape", n->name);
			a->kernel[i] = (int)v;
		}
		for (int i = 0; i < 2; i++) {
			if (!r_uv_in(r, 1, PFILE_MAX_WINDOW, &v))
				return bad(r, "node '%s': bad strides", n->name);
			a->strides[i] = (int)v;
		}
		for (int i = 0; i < 4; i++) {
			if (!r_uv_in(r, 0, PFILE_MAX_WINDOW, &v))
				return bad(r, "node '%s': bad pads", n->name);
			a->pads[i] = (int)v;
		}
		for (int i = 0; i < 2; i++) {
			if (!r_uv_in(r, 1, PFILE_MAX_WINDOW, &v))
				return bad(r, "node '%s': bad dilations", n->name);
			a->dilations[i] = (int)v;
		}
		if (!r_u8(r, &b) || b > 3)
			return bad(r, "node '%s': bad auto_pad", n->name);
		a->auto_pad = (int)b;
	}
	if (f & A_GROUP) {
		if (!r_uv_in(r, 1, PFILE_MAX_COUNT, &v))
			return bad(r, "node '%s': bad group", n->name);
		a->group = (int)v;
	}
	if (f & A_OUTPAD)
		for (int i = 0; i < 2; i++) {
			if (!r_uv_in(r, 0, PFILE_MAX_WINDOW, &v))
				return bad(r, "node '%s': bad output_padding", n->name);
			a->out_pad[i] = (int)v;
		}
	if (f & A_RNN) {
		if (!r_uv_in(r, 1, INT32_MAX, &v) || !r_u8(r, &b) || (b & 3) > 2 ||
		    ((b >> 4) & 3) > 2 || (b & 0x80))
			return bad(r, "node '%s': bad recurrent layer attributes", n->name);
		a->rnn_hidden = (int)v;
		a->rnn_direction = (uint8_t)(b & 3);
		a->rnn_batch_first = b & 4;
		a->rnn_lbr = b & 8;
		a->rnn_output = (uint8_t)((b >> 4) & 3);
		a->rnn_projected = b & 0x40;
	}
	if (f & A_POOL) {
		if (!r_u8(r, &b) || b > 3)
			return bad(r, "node '%s': bad pooling flags", n->name);
		a->ceil_mode = b & 1;
		a->count_include_pad = (b >> 1) & 1;
		if (n->op == OP_AVGPOOL && (a->dilations[0] != 1 || a->dilations[1] != 1))
			return bad(r, "node '%s': AveragePool with dilations", n->name);
	}
	if (f & A_GEMM) {
		if (!r_f32(r, &a->alpha) || !r_f32(r, &a->beta) || !r_u8(r, &b) || b > 3)
			return bad(r, "node '%s': bad Gemm attributes", n->name);
		a->trans_a = b & 1;
		a->trans_b = (b >> 1) & 1;
	}
	if ((f & A_CLIP) && (!r_f32(r, &a->clip_min) || !r_f32(r, &a->clip_max)))
		return bad(r, "node '%s': bad Clip bounds", n->name);
	if ((f & A_EPS) && !r_f32(r, &a->epsilon))
		return bad(r, "node '%s': bad epsilon", n->name);
	if (f & A_AXIS) {
		if (!r_sv(r, &v) || v < -GRAPH_MAX_DIMS || v > GRAPH_MAX_DIMS)
			return bad(r, "node '%s': bad axis", n->name);
		a->axis = (int)v;
	}
	if (f & A_INTS) {
		if (!r_uv_in(r, 0, GRAPH_MAX_DIMS, &v))
			return bad(r, "node '%s': bad integer list", n->name);
		a->n_ints = (int)v;
		/* Reshape: a target shape whose product stays in bounds; else axes */
		bool shape = n->op == OP_RESHAPE, slice = n->op == OP_SLICE;
		int64_t lo = shape ? -1 : slice ? -PFILE_MAX_DIM : -GRAPH_MAX_DIMS;
		int64_t hi = shape || slice ? PFILE_MAX_DIM : GRAPH_MAX_DIMS;
		int64_t product = 1;
		for (int i = 0; i < a->n_ints; i++) {
			if (!r_sv(r, &a->ints[i]) || a->ints[i] < lo || a->ints[i] > hi)
				return bad(r, "node '%s': bad integer list", n->name);
			if (shape && a->ints[i] > 0 && (product *= a->ints[i]) > PFILE_MAX_NUMEL)
				return bad(r, "node '%s': Reshape to more than %lld elements", n->name,
					   (long long)PFILE_MAX_NUMEL);
		}
		if (!r_u8(r, &b) || b > 1)
			return bad(r, "node '%s': bad allowzero", n->name);
		a->allowzero = b;
	}
	if ((f & A_ALPHA) && (!r_f32(r, &a->alpha) || !r_f32(r, &a->beta)))
		return bad(r, "node '%s': bad alpha or beta", n->name);
	if (f & A_LRN) {
		if (!r_f32(r, &a->lrn_bias) || !r_uv_in(r, 1, PFILE_MAX_WINDOW, &v))
			return bad(r, "node '%s': bad LRN bias or size", n->name);
		a->lrn_size = (int)v;
	}
	if (f & A_PAD) {
		if (!r_uv_in(r, 0, GRAPH_MAX_DIMS, &v) || v % 2)
			return bad(r, "node '%s': bad pads", n->name);
		a->n_ints = (int)v;
		for (int i = 0; i < a->n_ints; i++) {
			if (!r_uv_in(r, 0, PFILE_MAX_DIM, &v))
				return bad(r, "node '%s': bad pads", n->name);
			a->ints[i] = v;
		}
		if (!r_f32(r, &a->pad_value))
			return bad(r, "node '%s': bad Pad value", n->name);
	}
	if (f & A_REDUCE) {
		if (!r_uv_in(r, 0, GRAPH_MAX_DIMS, &v))
			return bad(r, "node '%s': bad axes", n->name);
		a->n_ints = (int)v;
		for (int i = 0; i < a->n_ints; i++)
			if (!r_sv(r, &a->ints[i]) || a->ints[i] < -GRAPH_MAX_DIMS ||
			    a->ints[i] >= GRAPH_MAX_DIMS)
				return bad(r, "node '%s': bad axes", n->name);
		if (!r_u8(r, &b) || b > 1)
			return bad(r, "node '%s': bad keepdims", n->name);
		a->keepdims = b;
	}
	if (f & A_RESIZE) {
		unsigned coord, round;
		if (!r_u8(r, &coord) || coord >= RESIZE_COORD_COUNT || !r_u8(r, &round) ||
		    (round & 0xfu) >= RESIZE_ROUND_COUNT || round > 0x1fu ||
		    !r_uv_in(r, 1, GRAPH_MAX_DIMS, &v))
			return bad(r, "node '%s': bad Resize modes or rank", n->name);
		a->resize_coord = (uint8_t)coord;
		a->resize_round = (uint8_t)(round & 0xfu);
		a->resize_linear = round >> 4;
		a->n_ints = (int)v;
		for (int i = 0; i < a->n_ints; i++) {
			if (!r_sv(r, &a->ints[i]) || a->ints[i] < -1 || a->ints[i] > PFILE_MAX_DIM ||
			    !r_f32(r, &a->scales[i]) || !(a->scales[i] >= 0.0f) ||
			    !(a->scales[i] <= (float)PFILE_MAX_DIM) ||
			    (a->ints[i] < 0) != (a->scales[i] > 0.0f))
				return bad(r, "node '%s': bad Resize size or scale", n->name);
		}
	}
	return PRESSO_OK;
}

/* What the file says about a layer. */
struct flayer {
	int node;
	int bits, act_bits;
	struct weight_coding coding;
	int64_t n_out, k;
	int8_t *q;
	float *scale;
	int32_t *bias;
};

/* A quantized constant (VF_QCONST): ONNX's R of a recurrent layer, rows
 * [dirs * gates * hidden] of hidden, from a graph value [dirs, hidden,
 * gates * hidden] (R^T). */
struct fconst {
	int value;
	int bits;
	struct weight_coding coding;
	int64_t n_out, k;
	int8_t *q;
	float *scale;
};

struct loading {
	struct rd r;
	struct graph *g;
	int n_consts;
	struct fconst *consts; /* in value order */
	uint8_t *vflags;      /* [n_values] */
	int n_layers;
	struct flayer *layers;
	struct qparams *qp;   /* [n_values] */
	int64_t payload_at;
	uint32_t version;
	enum requant_mode requant;
};

static enum presso_status read_values(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	for (int v = 0; v < g->n_values; v++) {
		struct value *val = &g->values[v];
		val->producer = -1;
		unsigned flags;
		int64_t nd;
		if (!r_str(r, &val->name) || !r_u8(r, &flags))
			return bad(r, "value %d: truncated", v);
		L->vflags[v] = (uint8_t)flags;
		unsigned bits = flags >> VF_BITS_SHIFT, kind = flags & VF_KIND_MASK;
		bool qconst = flags & VF_QCONST;
		if ((qconst && (L->version <= PFILE_VERSION_NO_QCONST || kind != VK_CONST)) ||
		    (bits && (bits < 2 || bits > 8 || kind != VK_ACT)))
			return bad(r, "value '%s': bad flags 0x%02x", val->name, flags);
		val->batched = flags & VF_BATCHED;
		if (!r_uv_in(r, 0, GRAPH_MAX_DIMS, &nd))
			return bad(r, "value '%s': bad rank", val->name);
		val->shape.n_dims = (int)nd;
		/* a dimension may be 0 (an empty tensor, as the ONNX import allows):
		 * the bound is on the product of the others */
		int64_t numel = 1, span = 1;
		for (int d = 0; d < val->shape.n_dims; d++) {
			if (!r_uv_in(r, 0, PFILE_MAX_DIM, &val->shape.dims[d]))
				return bad(r, "value '%s': bad dimension %d", val->name, d);
			numel *= val->shape.dims[d];
			span *= val->shape.dims[d] ? val->shape.dims[d] : 1;
			if (span > PFILE_MAX_NUMEL)
				return bad(r, "value '%s': more than %lld elements", val->name,
					   (long long)PFILE_MAX_NUMEL);
		}
		/* batched: the first dimension grows with the batch (the importer's
		 * rule, onnx_import.c mark_batched): 1 for images, T for the T x N
		 * rows of a sequence-first attention */
		if (val->batched && (val->shape.n_dims == 0 || val->shape.dims[0] == 0))
			return bad(r, "value '%s': batched but its batch-1 shape has no first dimension",
				   val->name);
		if (kind != VK_ACT) {
			if (val->batched)
				return bad(r, "value '%s': a batched constant", val->name);
			/* every constant's data comes from the payload, which is in the file:
			 * a weight takes at least 5 bits per 16 elements (run-length fillers),
			 * anything else 4 bytes per element */
			int64_t room = (int64_t)r->n * (kind == VK_WEIGHT || qconst ? 26 : 1);
			if (numel > room)
				return bad(r, "value '%s': %lld elements cannot fit in the file",
					   val->name, (long long)numel);
			val->data = calloc((size_t)numel, sizeof(float));
			if (!val->data)
				return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
		}
	}
	return PRESSO_OK;
}

static enum presso_status read_nodes(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	enum presso_status s;
	for (int i = 0; i < g->n_nodes; i++) {
		struct node *n = &g->nodes[i];
		unsigned op, n_in;
		if (!r_str(r, &n->name) || !r_u8(r, &op) || !r_u8(r, &n_in))
			return bad(r, "node %d: truncated", i);
		if (op >= OP_COUNT)
			return bad(r, "node '%s': unknown op %u", n->name, op);
		n->op = (enum op_type)op;
		const struct op_format *of = &op_format[n->op];
		if ((int)n_in < of->min_inputs || (int)n_in > of->max_inputs)
			return bad(r, "node '%s': %s with %u inputs", n->name, op_name(n->op), n_in);
		n->n_inputs = (int)n_in;
		for (int k = 0; k < n->n_inputs; k++) {
			int64_t v;
			if (!r_uv_in(r, 0, (uint64_t)g->n_values, &v))
				return bad(r, "node '%s': input %d is out of range", n->name, k);
			/* a recurrent layer's W (absent when projected) and the
			 * inputs after R; shape inference checks the rest */
			bool optional = (of->optional_last && k == 2) ||
					(op_is_recurrent(n->op) && (k == RNN_IN_W || k >= RNN_IN_B));
			if (v == 0 && !optional)
				return bad(r, "node '%s': input %d is missing", n->name, k);
			n->inputs[k] = (int)v - 1;
		}
		int64_t out;
		if (!r_uv_in(r, 0, (uint64_t)g->n_values - 1, &out))
			return bad(r, "node '%s': output is out of range", n->name);
		n->output = (int)out;
		if ((s = r_attrs(r, n)) != PRESSO_OK)
			return s;
	}
	return PRESSO_OK;
}

/* Topological order, one producer per value, readable inputs, consumer counts. */
static enum presso_status check_graph(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	for (int i = 0; i < g->n_inputs; i++) {
		struct value *v = &g->values[g->inputs[i]];
		if ((L->vflags[g->inputs[i]] & VF_KIND_MASK) != VK_ACT || v->producer == -2)
			return bad(r, "graph input '%s' is a constant or listed twice", v->name);
		v->producer = -2; /* marks a graph input until the end */
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		for (int k = 0; k < n->n_inputs; k++) {
			int x = n->inputs[k];
			if (x < 0)
				continue;
			const struct value *v = &g->values[x];
			if ((L->vflags[x] & VF_KIND_MASK) == VK_ACT && v->producer == -1)
				return bad(r, "node '%s' reads '%s' before anything writes it", n->name,
					   v->name);
			g->values[x].n_consumers++;
		}
		struct value *o = &g->values[n->output];
		if ((L->vflags[n->output] & VF_KIND_MASK) != VK_ACT || o->producer != -1)
			return bad(r, "node '%s' writes '%s', which is a constant, an input or written twice",
				   n->name, o->name);
		o->producer = i;
	}
	for (int i = 0; i < g->n_outputs; i++) {
		const struct value *v = &g->values[g->outputs[i]];
		if ((L->vflags[g->outputs[i]] & VF_KIND_MASK) != VK_ACT || v->producer == -1)
			return bad(r, "graph output '%s' is not computed", v->name);
	}
	for (int v = 0; v < g->n_values; v++) {
		struct value *val = &g->values[v];
		if ((L->vflags[v] & VF_KIND_MASK) == VK_ACT && val->producer == -1)
			return bad(r, "value '%s' is neither an input, a constant nor computed",
				   val->name);
		if (val->producer == -2)
			val->producer = -1;
	}
	return PRESSO_OK;
}

/* Every stored shape against shape inference at batch 1, node by node (so that
 * each inference starts from checked shapes), and the batched flags against
 * inference at batch 2 (the importer's rule, onnx_import.c mark_batched). */
static enum presso_status check_shapes(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	enum presso_status s = PRESSO_OK;
	struct shape *s1 = malloc(sizeof *s1 * (size_t)g->n_values);
	struct shape *s2 = malloc(sizeof *s2 * (size_t)g->n_values);
	if (!s1 || !s2) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
		goto done;
	}
	for (int v = 0; v < g->n_values; v++) {
		s1[v] = s2[v] = g->values[v].shape;
		if (g->values[v].batched)
			s2[v].dims[0] *= 2;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *n = &g->nodes[i];
		const struct value *val = &g->values[n->output];
		struct shape out;
		char a[96], b[96];
		if ((s = graph_infer_node(g, n, s1, &out)) != PRESSO_OK) {
			s = status_wrap(PRESSO_E_FORMAT, "%s", r->path);
			goto done;
		}
		if (out.n_dims != val->shape.n_dims ||
		    memcmp(out.dims, val->shape.dims, sizeof(int64_t) * (size_t)out.n_dims) != 0) {
			s = bad(r, "value '%s': stored shape %s, computed %s", val->name,
				shape_format(&val->shape, false, a, sizeof a),
				shape_format(&out, false, b, sizeof b));
			goto done;
		}
	}
	bool has2 = true;
	for (int i = 0; i < g->n_nodes && has2; i++)
		has2 = graph_infer_node(g, &g->nodes[i], s2, &s2[g->nodes[i].output]) == PRESSO_OK;
	if (!has2) {
		status_clear();
		for (int i = 0; i < g->n_inputs; i++)
			if (g->values[g->inputs[i]].batched) {
				s = bad(r, "input '%s' is batched but the graph takes no batch of 2",
					g->values[g->inputs[i]].name);
				goto done;
			}
		memcpy(s2, s1, sizeof *s1 * (size_t)g->n_values);
	}
	for (int v = 0; v < g->n_values; v++) {
		const struct value *val = &g->values[v];
		if (val->producer < 0)
			continue;
		bool batched = s1[v].n_dims > 0 && s2[v].dims[0] == 2 * s1[v].dims[0];
		if (batched != val->batched) {
			s = bad(r, "value '%s': wrong batched flag", val->name);
			goto done;
		}
	}
done:
	free(s1);
	free(s2);
	return s;
}

/* The records of the quantized constants (VF_QCONST, in value order): bits,
 * coding, non-zeros; each a [dirs, hidden, gates * hidden] R^T. That they
 * are what the model quantizes is checked on the rebuilt model
 * (check_model). */
static enum presso_status read_qconsts(struct loading *L)
{
	struct rd *r = &L->r;
	const struct graph *g = L->g;
	int n = 0;
	for (int v = 0; v < g->n_values; v++)
		n += (L->vflags[v] & VF_QCONST) != 0;
	L->consts = calloc((size_t)(n ? n : 1), sizeof *L->consts);
	if (!L->consts)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
	for (int v = 0; v < g->n_values; v++) {
		if (!(L->vflags[v] & VF_QCONST))
			continue;
		const struct value *val = &g->values[v];
		struct fconst *F = &L->consts[L->n_consts++];
		unsigned bits, coding;
		F->value = v;
		if (!r_u8(r, &bits) || !r_u8(r, &coding) ||
		    !r_uv_in(r, 0, (uint64_t)INT64_MAX, &F->coding.nnz))
			return bad(r, "constant '%s': truncated", val->name);
		if (val->shape.n_dims != 3 || bits < QUANT_MIN_WEIGHT_BITS ||
		    bits > QUANT_MAX_WEIGHT_BITS || coding > WCODE_RUNLENGTH)
			return bad(r, "constant '%s': rank %d, bits %u, coding %u", val->name,
				   val->shape.n_dims, bits, coding);
		F->bits = (int)bits;
		F->coding.kind = (enum weight_coding_kind)coding;
		F->n_out = val->shape.dims[0] * val->shape.dims[2];
		F->k = val->shape.dims[1];
		int64_t n_w = F->n_out * F->k;
		if (F->coding.nnz > n_w)
			return bad(r, "constant '%s': non-zero count", val->name);
		F->coding.bytes = F->coding.kind == WCODE_DENSE ? quant_packed_bytes(n_w, F->bits)
				  : F->coding.kind == WCODE_BITMAP
					  ? (n_w + 7) / 8 + quant_packed_bytes(F->coding.nnz, F->bits)
					  : -1; /* run-length: fillers counted when read */
	}
	return PRESSO_OK;
}

/* The layers in the file against graph_layers(), and their weight and bias
 * values against the kinds the file gives them. */
static enum presso_status read_layers(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	struct layer *ls = NULL;
	int nl = 0;
	enum presso_status s = graph_layers(g, &ls, &nl);
	if (s != PRESSO_OK)
		return s;
	if (nl != L->n_layers) {
		s = bad(r, "the file lists %d layers, the graph has %d", L->n_layers, nl);
		goto done;
	}
	uint8_t *owner = calloc((size_t)g->n_values, 1); /* value kind a layer gives it */
	if (!owner) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
		goto done;
	}
	for (int i = 0; i < nl; i++) {
		struct flayer *F = &L->layers[i];
		int64_t node;
		unsigned bits, act_bits, coding;
		if (!r_uv_in(r, 0, (uint64_t)g->n_nodes - 1, &node) || !r_u8(r, &bits) ||
		    !r_u8(r, &act_bits) || !r_u8(r, &coding) ||
		    !r_uv_in(r, 0, (uint64_t)INT64_MAX, &F->coding.nnz)) {
			s = bad(r, "layer %d: truncated or out of range", i);
			break;
		}
		const struct node *n = &g->nodes[node];
		if (node != ls[i].node) {
			s = bad(r, "layer %d is node '%s', the graph's layer %d is '%s'", i, n->name,
				i, ls[i].name);
			break;
		}
		if (bits < QUANT_MIN_WEIGHT_BITS || bits > QUANT_MAX_WEIGHT_BITS || act_bits < 2 ||
		    act_bits > 8 || coding > WCODE_RUNLENGTH) {
			s = bad(r, "layer '%s': bits %u, act_bits %u, coding %u", n->name, bits,
				act_bits, coding);
			break;
		}
		F->node = (int)node;
		F->bits = (int)bits;
		F->act_bits = (int)act_bits;
		F->coding.kind = (enum weight_coding_kind)coding;
		F->n_out = ls[i].c_out;
		F->k = ls[i].c_in * ls[i].kh * ls[i].kw;
		const struct value *w = &g->values[n->inputs[1]];
		if (F->n_out * F->k != shape_numel(&w->shape) || F->coding.nnz > F->n_out * F->k) {
			s = bad(r, "layer '%s': weight shape or non-zero count", n->name);
			break;
		}
		switch (F->coding.kind) {
		case WCODE_DENSE:
			F->coding.bytes = quant_packed_bytes(F->n_out * F->k, F->bits);
			break;
		case WCODE_BITMAP:
			F->coding.bytes = (F->n_out * F->k + 7) / 8 +
					  quant_packed_bytes(F->coding.nnz, F->bits);
			break;
		case WCODE_RUNLENGTH: /* one entry per non-zero, fillers counted when read */
			F->coding.bytes = -1;
			break;
		}
		owner[n->inputs[1]] = VK_WEIGHT;
		if (n->n_inputs > 2 && n->inputs[2] >= 0) {
			const struct value *b = &g->values[n->inputs[2]];
			if (b->shape.n_dims != 1 || b->shape.dims[0] != F->n_out) {
				s = bad(r, "layer '%s': its bias is not [%lld]", n->name,
					(long long)F->n_out);
				break;
			}
			owner[n->inputs[2]] = VK_BIAS;
		}
	}
	for (int v = 0; s == PRESSO_OK && v < g->n_values; v++) {
		unsigned k = L->vflags[v] & VF_KIND_MASK;
		if ((k == VK_WEIGHT || k == VK_BIAS || owner[v]) && owner[v] != k)
			s = bad(r, "value '%s': kind %u, but the layers make it %u", g->values[v].name,
				k, owner[v]);
	}
	free(owner);
	if (s == PRESSO_OK)
		s = read_qconsts(L);
done:
	free(ls);
	return s;
}

/* The number of run-length entries n weights take: read off the codes, since
 * fillers are not counted in the file. */
static int64_t runlength_bytes(const uint8_t *p, size_t left, int64_t n, int bits, int64_t nnz)
{
	const int eb = WCODE_RUN_BITS + bits;
	int64_t pos = 0, found = 0, entries = 0, bit = 0, avail = (int64_t)left * 8;
	while (found < nnz) {
		if (avail - bit < eb)
			return -1;
		uint32_t code = 0;
		for (int i = 0; i < eb; i++, bit++)
			code |= (uint32_t)((p[bit >> 3] >> (bit & 7)) & 1u) << i;
		uint32_t count = code & ((1u << WCODE_RUN_BITS) - 1), val = code >> WCODE_RUN_BITS;
		entries++;
		if (val == 0 && bits > 1) {
			pos += WCODE_MAX_RUN + 1;
		} else {
			pos += count + 1;
			found++;
		}
		if (pos > n)
			return -1;
	}
	entries += (n - pos) / (WCODE_MAX_RUN + 1);
	return (entries * eb + 7) / 8;
}

/* n_out rows of k codes at `bits` in *coding (its bytes read off the codes
 * for run-length), the coding quant_weight_coding() picks, then a positive
 * binary16 scale per row, into q[n_out * k] and scale[n_out]. `what` and
 * `name` name the part in messages ("layer", "constant"). */
static enum presso_status read_codes(struct rd *r, const char *what, const char *name,
				     struct weight_coding *coding, int64_t n_out, int64_t k,
				     int bits, int8_t *q, float *scale)
{
	int64_t n = n_out * k;
	if (coding->kind == WCODE_RUNLENGTH)
		coding->bytes = runlength_bytes(r->p + r->pos, r_left(r), n, bits, coding->nnz);
	if (coding->bytes < 0 || (uint64_t)coding->bytes > r_left(r))
		return bad(r, "%s '%s': truncated weights", what, name);
	if (!wcode_decode(r->p + r->pos, coding, n, bits, q))
		return bad(r, "%s '%s': the %d-bit %s weights do not decode", what, name, bits,
			   quant_coding_name(coding->kind));
	struct weight_coding best = quant_weight_coding(q, n, bits);
	if (best.kind != coding->kind || best.bytes != coding->bytes)
		return bad(r, "%s '%s': weights in %s coding where %s is chosen", what, name,
			   quant_coding_name(coding->kind), quant_coding_name(best.kind));
	r->pos += (size_t)coding->bytes;
	for (int64_t c = 0; c < n_out; c++) {
		unsigned h;
		if (!r_u16(r, &h))
			return bad(r, "%s '%s': truncated scales", what, name);
		scale[c] = quant_f16_decode((uint16_t)h);
		if (!(scale[c] > 0))
			return bad(r, "%s '%s': bad scale %lld (binary16 0x%04x)", what, name,
				   (long long)c, h);
	}
	return PRESSO_OK;
}

/* A quantized constant's codes and scales, and its float data from them. */
static enum presso_status read_qconst(struct loading *L, struct fconst *F)
{
	struct rd *r = &L->r;
	struct value *val = &L->g->values[F->value];
	int64_t n = F->n_out * F->k;
	F->q = malloc((size_t)(n ? n : 1));
	F->scale = malloc(sizeof(float) * (size_t)(F->n_out ? F->n_out : 1));
	if (!F->q || !F->scale)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
	enum presso_status s =
		read_codes(r, "constant", val->name, &F->coding, F->n_out, F->k, F->bits, F->q, F->scale);
	if (s != PRESSO_OK)
		return s;
	/* R^T [dirs][hidden][gates * hidden] from ONNX's rows */
	int64_t h = val->shape.dims[1], gh = val->shape.dims[2];
	for (int64_t row = 0; row < F->n_out; row++)
		for (int64_t j = 0; j < h; j++)
			val->data[rnn_rt_index(h, gh, row, j)] = F->scale[row] * (float)F->q[row * h + j];
	return PRESSO_OK;
}

static enum presso_status read_payload(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	for (int i = 0; i < L->n_layers; i++) {
		struct flayer *F = &L->layers[i];
		const char *name = g->nodes[F->node].name;
		int64_t n = F->n_out * F->k;
		F->q = malloc((size_t)(n ? n : 1));
		F->scale = malloc(sizeof(float) * (size_t)(F->n_out ? F->n_out : 1));
		F->bias = malloc(sizeof(int32_t) * (size_t)(F->n_out ? F->n_out : 1));
		if (!F->q || !F->scale || !F->bias)
			return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
		enum presso_status s = read_codes(r, "layer", name, &F->coding, F->n_out, F->k,
						  F->bits, F->q, F->scale);
		if (s != PRESSO_OK)
			return s;
		int64_t used = wcode_bias_decode(r->p + r->pos, (int64_t)r_left(r), F->n_out, F->bias);
		if (used < 0)
			return bad(r, "layer '%s': truncated or malformed biases", name);
		r->pos += (size_t)used;
	}
	for (int v = 0; v < g->n_values; v++) {
		unsigned bits = L->vflags[v] >> VF_BITS_SHIFT;
		if (!bits)
			continue;
		float scale;
		unsigned zero;
		if (!r_f32(r, &scale) || !r_u8(r, &zero))
			return bad(r, "value '%s': truncated quantization", g->values[v].name);
		if (!isfinite(scale) || !(scale >= 1e-30f) || zero > (1u << bits) - 1)
			return bad(r, "value '%s': scale %g, zero point %u at %u bits", g->values[v].name,
				   (double)scale, zero, bits);
		L->qp[v] = (struct qparams){.scale = scale, .inv_scale = 1.0f / scale,
					    .zero = (int32_t)zero, .bits = (int)bits};
	}
	int ci = 0;
	for (int v = 0; v < g->n_values; v++) {
		if ((L->vflags[v] & VF_KIND_MASK) != VK_CONST)
			continue;
		struct value *val = &g->values[v];
		if (L->vflags[v] & VF_QCONST) {
			enum presso_status s = read_qconst(L, &L->consts[ci++]);
			if (s != PRESSO_OK)
				return s;
			continue;
		}
		int64_t numel = shape_numel(&val->shape);
		if ((uint64_t)numel * 4 > r_left(r))
			return bad(r, "constant '%s': truncated", val->name);
		for (int64_t i = 0; i < numel; i++)
			r_f32(r, &val->data[i]);
	}
	if (r_left(r) != 0)
		return bad(r, "%zu bytes after the end of the model", r_left(r));
	return PRESSO_OK;
}

/* The float weights of the graph's layers (biases need the built model). */
static void dequantize_weights(struct loading *L)
{
	struct graph *g = L->g;
	for (int i = 0; i < L->n_layers; i++) {
		const struct flayer *F = &L->layers[i];
		struct node *n = &g->nodes[F->node];
		float *w = g->values[n->inputs[1]].data;
		bool nk = n->op == OP_CONV || (n->op == OP_GEMM && n->a.trans_b);
		for (int64_t c = 0; c < F->n_out; c++)
			for (int64_t j = 0; j < F->k; j++) {
				float x = F->scale[c] * (float)F->q[c * F->k + j];
				w[nk ? c * F->k + j : j * F->n_out + c] = x;
			}
	}
}

static void fill_biases(struct loading *L, const struct qmodel *m)
{
	struct graph *g = L->g;
	for (int i = 0; i < L->n_layers; i++) {
		const struct flayer *F = &L->layers[i];
		const struct node *n = &g->nodes[F->node];
		if (n->n_inputs < 3 || n->inputs[2] < 0)
			continue;
		struct qparams qi;
		if (!qmodel_value_qparams(m, n->inputs[0], &qi))
			continue;
		float *b = g->values[n->inputs[2]].data;
		for (int64_t c = 0; c < F->n_out; c++)
			b[c] = (float)((double)qi.scale * F->scale[c] * F->bias[c]);
	}
}

/* The rebuilt model against the file: act_bits, groups, size. */
static enum presso_status check_model(struct loading *L, const struct qmodel *m)
{
	struct rd *r = &L->r;
	const struct graph *g = L->g;
	for (int i = 0; i < L->n_layers; i++) {
		struct qlayer_view view;
		qmodel_layer_view(m, i, &view);
		if (view.act_bits != L->layers[i].act_bits)
			return bad(r, "layer '%s': act_bits %d in the file, %d in the model",
				   g->nodes[view.node].name, L->layers[i].act_bits, view.act_bits);
	}
	if (qmodel_n_qconsts(m) != L->n_consts)
		return bad(r, "%d quantized constants in the file, %d in the model", L->n_consts,
			   qmodel_n_qconsts(m));
	for (int i = 0; i < L->n_consts; i++) {
		const struct fconst *F = &L->consts[i];
		int c = qmodel_qconst_of(m, F->value);
		struct qconst_view q;
		if (c >= 0)
			qmodel_qconst_view(m, c, &q);
		if (c < 0 || q.bits != F->bits || q.n_out != F->n_out || q.k != F->k ||
		    memcmp(q.w, F->q, (size_t)(F->n_out * F->k)) != 0 ||
		    memcmp(q.w_scale, F->scale, sizeof(float) * (size_t)F->n_out) != 0)
			return bad(r, "constant '%s': the model quantizes it otherwise than the file",
				   g->values[F->value].name);
	}
	int64_t payload = (int64_t)(r->n - (size_t)L->payload_at);
	for (int v = 0; v < g->n_values; v++) {
		bool head = qmodel_value_group(m, v) == v;
		if (head != (L->vflags[v] >> VF_BITS_SHIFT != 0))
			return bad(r, "value '%s': quantization given where the model has none, or missing",
				   g->values[v].name);
		if ((L->vflags[v] & VF_KIND_MASK) == VK_CONST && g->values[v].n_consumers == 0)
			payload -= 4 * shape_numel(&g->values[v].shape);
	}
	struct qmodel_size z;
	qmodel_size(m, &z);
	if (payload != z.size_bytes)
		return bad(r, "the payload is %lld bytes but the model's size is %lld",
			   (long long)payload, (long long)z.size_bytes);
	return PRESSO_OK;
}

static void loading_free(struct loading *L)
{
	for (int i = 0; L->layers && i < L->n_layers; i++) {
		free(L->layers[i].q);
		free(L->layers[i].scale);
		free(L->layers[i].bias);
	}
	free(L->layers);
	for (int i = 0; L->consts && i < L->n_consts; i++) {
		free(L->consts[i].q);
		free(L->consts[i].scale);
	}
	free(L->consts);
	free(L->vflags);
	free(L->qp);
}

static enum presso_status read_structure(struct loading *L)
{
	struct rd *r = &L->r;
	struct graph *g = L->g;
	enum presso_status s;
	int64_t opset, nbn, nfc, nv, nn, ni, no, nl;
	if (!r_str(r, &g->producer) || !r_uv_in(r, 0, INT32_MAX, &opset) ||
	    !r_uv_in(r, 0, INT32_MAX, &nbn) || !r_uv_in(r, 0, INT32_MAX, &nfc))
		return bad(r, "truncated or bad model header");
	g->opset = opset;
	g->n_folded_bn = (int)nbn;
	g->n_folded_const = (int)nfc;
	L->requant = REQUANT_Q31;
	if (L->version > PFILE_VERSION_Q31_ONLY) {
		unsigned rq;
		if (!r_u8(r, &rq) || rq > 1)
			return bad(r, "truncated header or unknown requantization");
		L->requant = rq ? REQUANT_Q31 : REQUANT_FLOAT;
	}
	if (!*g->producer) {
		free(g->producer);
		g->producer = NULL;
	}
	/* each value takes at least 3 bytes, each node 4, each index or layer 1 */
	if (!r_uv_in(r, 1, PFILE_MAX_COUNT, &nv) || !r_uv_in(r, 1, PFILE_MAX_COUNT, &nn) ||
	    !r_uv_in(r, 1, PFILE_MAX_COUNT, &ni) || !r_uv_in(r, 1, PFILE_MAX_COUNT, &no) ||
	    !r_uv_in(r, 0, PFILE_MAX_COUNT, &nl) || (uint64_t)(3 * nv + 4 * nn + ni + no + nl) > r_left(r))
		return bad(r, "bad counts of values, nodes, inputs, outputs or layers");
	g->values = calloc((size_t)nv, sizeof *g->values);
	g->nodes = calloc((size_t)nn, sizeof *g->nodes);
	g->inputs = calloc((size_t)ni, sizeof(int));
	g->outputs = calloc((size_t)no, sizeof(int));
	L->vflags = calloc((size_t)nv, 1);
	L->qp = calloc((size_t)nv, sizeof *L->qp);
	L->layers = calloc((size_t)(nl ? nl : 1), sizeof *L->layers);
	if (!g->values || !g->nodes || !g->inputs || !g->outputs || !L->vflags || !L->qp ||
	    !L->layers)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
	g->n_values = (int)nv;
	g->n_nodes = (int)nn;
	g->n_inputs = (int)ni;
	g->n_outputs = (int)no;
	L->n_layers = (int)nl;
	if ((s = read_values(L)) != PRESSO_OK || (s = read_nodes(L)) != PRESSO_OK)
		return s;
	for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
		int64_t v;
		if (!r_uv_in(r, 0, (uint64_t)nv - 1, &v))
			return bad(r, "graph input or output %d is out of range", i);
		if (i < g->n_inputs)
			g->inputs[i] = (int)v;
		else
			g->outputs[i - g->n_inputs] = (int)v;
	}
	return PRESSO_OK;
}

enum presso_status presso_file_load(const char *path, enum q8_isa isa, struct graph **g,
				    struct qmodel **m)
{
	*g = NULL;
	*m = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	struct loading L = {0};
	struct policy *pol = NULL;
	struct qlayer_preset *lp = NULL;
	struct qmodel *qm = NULL;
	char *bytes;
	enum presso_status s = file_read_all(path, "a model file", 0, &bytes, &n);
	if (s != PRESSO_OK)
		return s;
	buf = (uint8_t *)bytes;
	L.r = (struct rd){buf, n, 0, path, false};
	if (n == 0) {
		s = status_fail(PRESSO_E_FORMAT, "%s: the file is empty (0 bytes), not a model", path);
		goto fail;
	}
	size_t n_magic = n < PFILE_MAGIC_BYTES ? n : PFILE_MAGIC_BYTES;
	if (memcmp(buf, PFILE_MAGIC, n_magic) != 0) {
		s = status_fail(PRESSO_E_FORMAT, "%s: not a .presso file (bad magic)", path);
		goto fail;
	}
	if (n < PFILE_HEADER_BYTES) {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: truncated: %zu bytes, shorter than the %d-byte header of a .presso file",
				path, n, PFILE_HEADER_BYTES);
		goto fail;
	}
	uint32_t version = le32(buf + 8), crc = le32(buf + 12);
	uint64_t body = (uint64_t)le32(buf + 16) | (uint64_t)le32(buf + 20) << 32;
	if (version < PFILE_VERSION_Q31_ONLY || version > PFILE_VERSION) {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: format version %u, this presso reads versions %d to %d", path,
				version, PFILE_VERSION_Q31_ONLY, PFILE_VERSION);
		goto fail;
	}
	L.version = version;
	if (body != n - PFILE_HEADER_BYTES) {
		s = status_fail(PRESSO_E_FORMAT, "%s: truncated or extended: %zu bytes, the header says %llu",
				path, n, (unsigned long long)(body + PFILE_HEADER_BYTES));
		goto fail;
	}
	if (body_crc(buf + PFILE_HEADER_BYTES, (size_t)body) != crc) {
		s = status_fail(PRESSO_E_FORMAT, "%s: checksum mismatch (the file is corrupted)", path);
		goto fail;
	}
	L.r = (struct rd){buf + PFILE_HEADER_BYTES, (size_t)body, 0, path, false};
	L.g = calloc(1, sizeof *L.g);
	if (!L.g) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((s = read_structure(&L)) || (s = check_graph(&L)) || (s = check_shapes(&L)) ||
	    (s = read_layers(&L)))
		goto fail;
	L.payload_at = (int64_t)L.r.pos;
	if ((s = read_payload(&L)))
		goto fail;
	dequantize_weights(&L);

	struct layer_policy dflt = policy_default_layer();
	lp = calloc((size_t)(L.n_layers ? L.n_layers : 1), sizeof *lp);
	if (!lp || (s = policy_uniform(&dflt, L.n_layers, &pol)) != PRESSO_OK) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		goto fail;
	}
	for (int i = 0; i < L.n_layers; i++) {
		pol->layers[i].bits = L.layers[i].bits;
		pol->layers[i].act_bits = L.layers[i].act_bits;
		lp[i] = (struct qlayer_preset){L.layers[i].q, L.layers[i].scale, L.layers[i].bias};
	}
	struct qmodel_preset preset = {lp, L.qp};
	struct quant_config qc = {CALIB_MINMAX, 0, isa, NULL, NULL, L.requant};
	if ((s = qmodel_build_preset(L.g, pol, &preset, &qc, &qm)) != PRESSO_OK) {
		if (s != PRESSO_E_NOMEM)
			s = status_wrap(PRESSO_E_FORMAT, "%s: the model does not rebuild", path);
		goto fail;
	}
	if ((s = check_model(&L, qm)) != PRESSO_OK)
		goto fail;
	fill_biases(&L, qm);
	*g = L.g;
	*m = qm;
	L.g = NULL;
	qm = NULL;
	s = PRESSO_OK;
fail:
	qmodel_free(qm);
	graph_free(L.g);
	loading_free(&L);
	policy_free(pol);
	free(lp);
	free(buf);
	return s;
}

bool presso_file_sniff(const char *path)
{
	size_t len = strlen(path), ext = strlen(PFILE_EXTENSION);
	if (len > ext && strcmp(path + len - ext, PFILE_EXTENSION) == 0)
		return true;
	/* open and read, not fopen: nothing to allocate, so a short memory
	 * cannot make a .presso file look like something else */
	char magic[PFILE_MAGIC_BYTES];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	struct stat st;
	ssize_t got = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, magic, sizeof magic) : -1;
	close(fd);
	/* a file cut inside the magic is a truncated .presso file, not an ONNX one */
	return got > 0 && memcmp(magic, PFILE_MAGIC, (size_t)got) == 0;
}
