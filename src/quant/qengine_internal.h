/* qengine_internal.h - the INT8 engine's private structures: the model that
 * qengine_build.c makes and qengine_run.c reads (steps, layers, values with
 * their quantization groups, buffers with their lifetimes), as the opening
 * comment of qengine_build.c describes them. Private to src/quant/: only the
 * engine's own files include it; everything else goes through qengine.h,
 * whose opaque struct qmodel is defined here.
 */
#ifndef PRESSO_QENGINE_INTERNAL_H
#define PRESSO_QENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels_q8.h"
#include "model/graph.h"
#include "quant/qengine.h"
#include "quant/quant.h"

enum qkind {
	QK_QUANTIZE,
	QK_DEQUANT,
	QK_CONV,
	QK_DWCONV,
	QK_FC,
	QK_CLAMP,
	QK_MAXPOOL,
	QK_AVGPOOL,
	QK_GAP,
	QK_ADD,
	QK_MUL,
	QK_LUT,
	QK_RESHAPE,
	QK_RESIZE, /* nearest: a gather of uint8 codes in its input's quantization */
	QK_FALLBACK,
	QK_NONE, /* fused into another step */
	/* activation-by-activation and per-row ops in integers, on 4-D values
	 * stored in logical order (qvalue.nhwc false), see qengine_build.c */
	QK_QMATMUL,
	QK_TRANSPOSE,
	QK_SOFTMAX,
	QK_LAYERNORM,
};

enum qdom { QD_NONE, QD_CONST, QD_U8, QD_F32 };

struct qvalue {
	enum qdom dom;
	bool nhwc;      /* uint8 4-D stored NHWC */
	int group;      /* union-find parent for quantization groups */
	int buf;        /* u8 buffer (or f32 buffer for QD_F32 values), -1 none */
	int f32_buf;    /* float buffer of a graph input or a dequantized output */
	bool folded;    /* a quantization group (a .presso file stores it) that no
			   step writes: the product of a MatMul whose bias Add the
			   GEMM adds in int32; buf is -1 */
};

struct qlayer {
	int node;
	int bits, act_bits;
	int64_t n_out, k;         /* per group: n_out/group rows of k */
	int group;
	void *packed;             /* group-major, packed_group_bytes each */
	size_t packed_group_bytes;
	size_t packed_bytes;      /* all of packed (qmodel_size.resident_bytes) */
	int32_t *bias;            /* [n_out] bias_eff (GEMM) or bias_q (depthwise) */
	int32_t *mult;
	int8_t *shift;
	float *rq_scale;          /* [n_out] real multipliers for float requantization */
	float *deq_scale;         /* [n_out] for a float output, else NULL */
	int64_t macs, params;
	/* the quantized layer as exporters see it (graph weight order) */
	int8_t *wq;               /* [n_out][k] */
	float *w_scale;           /* [n_out] */
	int32_t *bias_q;          /* [n_out] in units of s_in * w_scale[c] */
	struct weight_coding coding;
};

/* A constant quantized like a layer's weights but read in float by an FP32
 * step: a recurrent layer's R at its input projection's weight bits
 * (graph_rnn_projection). The step reads deq in the graph's layout. */
struct qconst {
	int value;
	int bits;
	int64_t n_out, k;         /* ONNX R's rows [dirs * gates * hidden] of hidden */
	int8_t *wq;               /* [n_out][k] */
	float *w_scale;           /* [n_out] */
	float *deq;               /* the value's elements as the graph lays them out */
	struct weight_coding coding;
};

/* A recurrent layer's recurrence in integers (a FALLBACK step's node, whose R
 * is a qconst): each step's H' (and GRU's r . H'), within [-1, 1] for these
 * cells, is quantized to int8 at the fixed scale 1/127 (stored as uint8 with
 * zero point 128) and multiplied by R's int8 codes on the INT8 GEMM, with
 * float output acc * (1/127) * s_r[row]; the gates stay FP32. Parts per
 * direction: R's rows [0, n1), and for GRU without linear_before_reset its
 * h gate's rows [2 hidden, 3 hidden). */
#define QRNN_H_SCALE (1.0f / 127.0f)
struct qrnn {
	int64_t hidden;
	int n_parts;
	int64_t rows[2];          /* rows of each part */
	void *packed[2][2];       /* [direction][part], m->gemm's packing */
	int32_t *bias[2][2];      /* bias_eff: -128 * each row's sum */
	float *deq[2][2];         /* QRNN_H_SCALE * s_r[row] */
	size_t packed_bytes;      /* all of packed (qmodel_size.resident_bytes) */
};

struct qstep {
	enum qkind kind;
	int node;                 /* graph node, -1 for QUANTIZE/DEQUANT */
	int n_in;
	int in[GRAPH_MAX_INPUTS];
	int out;                  /* value written */
	int layer;                /* CONV, DWCONV, FC */
	uint8_t lo, hi;           /* output clamp */
	uint8_t *add_lut;         /* ADD, Q31 requantization: [256 * 256] output for
				     each (a, b) pair: TFLite's integer Add, tabulated
				     at build time */
	struct qadd_params add;   /* ADD, float requantization */
	uint8_t *add_tile;        /* ADD of an activation and a constant: the constant
				     broadcast to one image, in the activation's
				     layout, quantized on its own; in[0] is then the
				     activation and every image adds the same tile */
	int64_t tile_n;           /* its elements (one image of the output) */
	struct qmul_params mul;   /* MUL */
	bool mul_rows;            /* MUL of [N,C,H,W] by a [N,C,1,1] gate: per image,
				     its H*W rows of C channels (NHWC) by its gate
				     (qmul_rows_fn) */
	uint8_t *lut;             /* LUT: [256] output code of each input code */
	int lut_in;               /* LUT: the input that is the activation */
	int tmp_in[GRAPH_MAX_INPUTS], tmp_out; /* FALLBACK float buffers, -1 none */
	bool alias;               /* RESHAPE that shares its input's memory, or a
				     Reshape [N,C,H,W] -> [N,C,HW] of an NHWC value
				     and the Transpose to [N,HW,C] after it: the
				     NHWC bytes are that Transpose's output in
				     logical order, so both steps copy nothing */
	struct qmatmul_params qmm;   /* QMATMUL: m, n, k set per run */
	bool mm_view;             /* QMATMUL of 4-D values that reads A or B, or
				     writes C, through a Transpose keeping the
				     batch axis first (mm_view_reader): */
	int mm_val[3];            /* A, B, C: the value whose buffer holds it */
	int64_t mm_stride[3][4];  /* the element strides of its four axes there */
	struct qsoftmax_params sm;   /* SOFTMAX: exp_table points into ftab */
	struct qlayernorm_params ln; /* LAYERNORM: gamma_q, beta_q point into ftab */
	float *ftab;              /* SOFTMAX [256] exp(-s_x d); LAYERNORM [2][n] */
	struct qrnn *rnn;         /* FALLBACK of a recurrent node in integers, or NULL */
};

struct qbuf {
	int value;                /* sized by this value's shape */
	bool f32;
	int first, last;
};

struct qmodel {
	const struct graph *g;
	const struct qgemm_ukernel *gemm;
	const struct qdwconv_ukernel *dw;
	const struct qconv_ukernel *conv; /* NULL: every conv is im2col + gemm */
	qadd_fn add;
	qmul_fn mul;
	qmul_rows_fn mul_rows;    /* MUL by a per-channel gate */
	qsum_pixels_fn sum_pixels; /* GlobalAveragePool's sums */
	qlut_fn lut;
	qmaxpool2_fn maxpool2;    /* NULL: MaxPool 2x2/2 runs run_pool's loops too */
	const struct qmatmul_ukernel *matmul;
	qsoftmax_fn softmax;
	qlayernorm_fn layernorm;
	qquant_fn quant;          /* float -> uint8 (inputs, fallback outputs) */
	enum requant_mode requant;
	struct qvalue *v;
	struct qparams *qp;       /* [n_values] valid for uint8 values */
	int n_steps;
	struct qstep *steps;
	int n_layers;
	struct qlayer *layers;
	int n_bufs;
	struct qbuf *bufs;
	int n_consts;
	struct qconst *consts;
	const float **const_data; /* [n_values] what a fallback reads for a constant
				     (a qconst's deq), or NULL: the graph's data */
	struct qmodel_size size;
	const struct qmodel_preset *preset; /* qmodel_build_preset, while building */
	struct qweight_cache *cache;        /* quant_config's, while building */
	const struct hessians *hess;        /* quant_config's, while building */
};

/* A 1x1, stride-1, unpadded conv is a GEMM on the input as it is. */
static inline bool conv_is_pointwise(const struct graph *g, const struct node *n)
{
	const struct shape *ws = &g->values[n->inputs[1]].shape;
	const struct node_attrs *a = &n->a;
	return a->group == 1 && ws->dims[2] == 1 && ws->dims[3] == 1 && a->strides[0] == 1 &&
	       a->strides[1] == 1 && a->pads[0] == 0 && a->pads[1] == 0 && a->pads[2] == 0 &&
	       a->pads[3] == 0;
}

/* Whether a (non-depthwise) conv runs on m->conv rather than im2col + gemm:
 * one group and not pointwise. Decides the packing and the run alike. */
static inline bool conv_uses_kernel(const struct qmodel *m, const struct node *n)
{
	return m->conv && n->op == OP_CONV && n->a.group == 1 && !conv_is_pointwise(m->g, n);
}

/* The quantized-weight cache (qweight_cache.c) as a build uses it. */

/* Copies the cached rounding of weight value v of g at bits, n codes into q and
 * n_out scales into scale, and returns true; false, leaving q and scale alone,
 * when c is NULL or holds none. */
bool qweight_cache_get(struct qweight_cache *c, const struct graph *g, int v, int bits, int64_t n,
		       int64_t n_out, int8_t *q, float *scale);

/* Stores a copy of q[n] and scale[n_out] as the rounding of weight value v of g
 * at bits, unless c is NULL, v has no unchanged twin in the cache's graph, an
 * entry is there already, or memory runs out (the cache is then only slower). */
void qweight_cache_put(struct qweight_cache *c, const struct graph *g, int v, int bits, int64_t n,
		       int64_t n_out, const int8_t *q, const float *scale);

#endif
