/* qengine.h - the INT8 inference engine: a graph quantized by a policy.
 *
 * qmodel_build() turns an FP32 graph, a policy and calibration statistics into a
 * read-only quantized model: per-channel int8 weights packed for the kernels of
 * the chosen instruction set, int32 biases, requantization multipliers (float
 * or Q31, quant_config's requant), and
 * uint8 quantization parameters for every activation tensor. qengine_create()
 * plans one instance's memory for a largest batch; qengine_run() allocates
 * nothing. Many engines (one per thread) can share one qmodel.
 *
 * Inside, 4-D activations are uint8 NHWC (channels innermost, as the GEMM and
 * depthwise kernels want); 2-D ones are [rows, features]. Conv, Gemm, MatMul with
 * a constant weight, ReLU/ReLU6 (fused as clamps, also into Add, Sub, Mul),
 * MaxPool, AveragePool, GlobalAveragePool (and ReduceMean like it), Add, Sub,
 * Mul (of one shape, or by a squeeze-excite gate), element-wise functions of
 * one tensor (256-entry tables), reshapes, Transpose, MatMul of two
 * activations, Softmax and LayerNormalization over the last axis (float
 * between the uint8 input and output; not when they give a graph output) and
 * ReduceMean over tokens run in integers. Any other op (an unfolded
 * BatchNormalization, Concat, Pad, ...) runs through its FP32 kernel between
 * a dequantize and a quantize: correct, not fast. Inputs are fed
 * as float (quantized on entry); outputs come back as float (the last Gemm
 * writes dequantized logits directly).
 *
 * The build is qengine_build.c (whose opening comment gives the build and run
 * steps and their invariants), the run qengine_run.c, the weight cache
 * qweight_cache.c.
 */
#ifndef PRESSO_QENGINE_H
#define PRESSO_QENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/calib.h"
#include "model/graph.h"
#include "quant/hessian.h"
#include "kernels/kernels_q8.h"
#include "quant/policy.h"
#include "quant/quant.h"

struct qweight_cache;

/* How a layer's int32 sums become uint8 (kernels_q8.h): in float (one
 * multiply and a round; the default, and the faster on every vector path) or
 * with TFLite's Q31 fixed-point multipliers (bit-exact with TFLite). They
 * differ by at most 1 per output. Add follows the same choice (float, or
 * TFLite's integer Add). */
enum requant_mode { REQUANT_FLOAT, REQUANT_Q31 };

struct quant_config {
	enum calib_method method;
	double percentile;       /* for CALIB_PERCENTILE, e.g. 99.99 */
	enum q8_isa isa;         /* kernels to pack for; q8_isa_best() by default */
	struct qweight_cache *cache; /* NULL, or quantized weights to reuse */
	const struct hessians *hess; /* NULL (round to nearest), or the layers' input
					moments: weights are rounded by gptq.h */
	enum requant_mode requant;   /* REQUANT_FLOAT (0) by default */
};

/* Where the kernels can keep a GEMM's or a convolution's weights in [-8, 7]
 * (4-bit policies) two to a byte (q8_gemm_s4_for, q8_conv_s4_for),
 * qmodel_build does so unless the environment
 * variable PRESSO_PACK_W4=0 (read at every build) asks for int8 throughout:
 * the outputs are the same either way; it is there to compare speed and size. */
#define QENGINE_PACK_W4_ENV "PRESSO_PACK_W4"

/* Quantized layer weights (q and per-channel scales) of one graph, per weight
 * value and bit width, computed once and reused by every qmodel_build() of that
 * graph that passes the cache: a search quantizes the same layer at the same
 * bits in many trials, and the clipping search (or GPTQ) is the costliest part
 * of a build. A transformed copy of the graph (pruned, factorised) uses it for
 * the layers whose weights it left unchanged (same name, shape and data; their
 * hessians_of() entry is the original's too); its changed layers are rounded
 * afresh and not cached. Thread-safe. */
enum presso_status qweight_cache_new(const struct graph *g, struct qweight_cache **out);
void qweight_cache_free(struct qweight_cache *c);

/* Builds served from the cache so far (layers, not models). */
int64_t qweight_cache_hits(const struct qweight_cache *c);

/* What a quantized model costs (see README: size accounting). */
struct qmodel_size {
	int64_t size_bytes;     /* packed weights + per-channel binary16 scales and packed biases
				   + per-tensor activation scale/zero point + any other
				   float constants */
	int64_t weight_bytes;   /* packed weights alone */
	int64_t resident_bytes; /* the weights as the engine holds them in memory,
				   packed for its kernels (int8, or 4-bit two to
				   a byte), padding included */
	double bops;            /* sum over layers of MACs * weight bits * input bits */
	double mean_bits;       /* parameter-weighted mean weight bits */
	int64_t params;
};

struct qmodel;

/* Builds the quantized model. The graph and calib must outlive it. The caller
 * frees *out with qmodel_free(). */
enum presso_status qmodel_build(const struct graph *g, const struct policy *pol,
				const struct calib *cal, const struct quant_config *qc,
				struct qmodel **out);

void qmodel_free(struct qmodel *m);

void qmodel_size(const struct qmodel *m, struct qmodel_size *out);

/* The FP32 size accounting of the same graph: 4 bytes per float constant, BOPs
 * at 32x32 bits. */
void qmodel_fp32_size(const struct graph *g, struct qmodel_size *out);

struct qengine;

enum presso_status qengine_create(const struct qmodel *m, int max_batch, struct qengine **out);

void qengine_free(struct qengine *e);

/* Float input i (the graph's logical layout), room for max_batch. */
float *qengine_input(struct qengine *e, int i);

/* Float output i of the last run; *shape (may be NULL) gets its shape. */
const float *qengine_output(const struct qengine *e, int i, struct shape *shape);

enum presso_status qengine_run(struct qengine *e, int batch);

/* --- the quantized layers and tensors, for exporters ----------------------- */

struct qlayer_view {
	int node;               /* graph node */
	int bits, act_bits;     /* weight bits, input activation bits */
	int64_t n_out, k;       /* weight rows (output channels) and row length */
	const int8_t *w;        /* [n_out][k] in the graph's weight order: Conv
				   [c_out][c_in/group][kh][kw]; Gemm/MatMul [N][K] */
	const float *w_scale;   /* [n_out] real weight = w_scale[c] * w */
	const int32_t *bias;    /* [n_out] real bias = s_in * w_scale[c] * bias */
	struct weight_coding coding;
};

int qmodel_n_layers(const struct qmodel *m);

void qmodel_layer_view(const struct qmodel *m, int layer, struct qlayer_view *out);

/* Constants that are quantized but no layer's weight: a recurrent layer's R
 * (graph_rnn_projection), at its input projection's weight bits, one scale per
 * row of ONNX's R [dirs * gates * hidden][hidden] (quant_weights). The
 * recurrence runs in FP32 on R dequantized; the size accounting counts R as
 * a layer's weights (coded, binary16 scales). */
struct qconst_view {
	int value;              /* graph value */
	int bits;
	int64_t n_out, k;       /* rows and row length */
	const int8_t *w;        /* [n_out][k] in ONNX's R order */
	const float *w_scale;   /* [n_out] */
	struct weight_coding coding;
};

int qmodel_n_qconsts(const struct qmodel *m);

/* Set to "0", keeps every recurrence in FP32 on R dequantized (else a
 * recurrent layer whose R is quantized runs its recurrence in integers:
 * qengine_internal.h, struct qrnn). For before/after measurements. */
#define QENGINE_RNN_INT8_ENV "PRESSO_RNN_INT8"


void qmodel_qconst_view(const struct qmodel *m, int i, struct qconst_view *out);

/* The index of the qconst of graph value v, or -1. */
int qmodel_qconst_of(const struct qmodel *m, int v);

/* The quantization of graph value v: true and *qp when the engine holds it as
 * uint8, false when it stays float (logits, fallback-only values) or is a constant. */
bool qmodel_value_qparams(const struct qmodel *m, int v, struct qparams *qp);

/* Whether v has a quantization (qmodel_value_qparams, kept so that a .presso
 * file stores what it always did) that no step rounds to: the product of a
 * MatMul whose bias Add the engine folds into the GEMM's int32 bias. Readers
 * that mirror the engine (an exported QDQ model, fake quantization in
 * training) treat v as float. */
bool qmodel_value_is_folded(const struct qmodel *m, int v);

/* The graph the model was built from. */
const struct graph *qmodel_graph(const struct qmodel *m);

/* --- a model given its quantization (read back from a .presso file) -------- */

struct qlayer_preset {
	const int8_t *w;        /* [n_out][k] as in qlayer_view, within the layer's bits */
	const float *w_scale;   /* [n_out] */
	const int32_t *bias;    /* [n_out] in units of s_in * w_scale[c] */
};

struct qmodel_preset {
	const struct qlayer_preset *layers; /* [n_layers], graph_layers() order */
	const struct qparams *qp;  /* [n_values]: the quantization of each group's head
				      (qmodel_value_group(v) == v); bits 0 elsewhere */
};

/* qmodel_build with the weights, scales, int32 biases and activation parameters
 * taken from preset instead of computed (no calibration): the rebuilt model
 * computes exactly what the one they were read from did. pol gives bits and
 * act_bits per layer. A group head whose preset is missing or has other bits
 * than the policy implies is a PRESSO_E_FORMAT error naming the value. The
 * preset is read during the call only; the graph must outlive the model. */
enum presso_status qmodel_build_preset(const struct graph *g, const struct policy *pol,
				       const struct qmodel_preset *preset,
				       const struct quant_config *qc, struct qmodel **out);

/* How m requantizes (quant_config's requant when it was built). */
enum requant_mode qmodel_requant(const struct qmodel *m);

/* The head of v's quantization group (the value whose scale and zero point v
 * shares; v itself for a head), or -1 when v is not held as uint8. */
int qmodel_value_group(const struct qmodel *m, int v);

/* --- profiling (additive hook for the search's latency table) ---------------
 * A run is a fixed list of steps (kernels) in execution order. */

int qmodel_n_steps(const struct qmodel *m);

/* The layer (graph_layers() index, = policy layer) step i computes, or -1 for
 * steps that are no layer: quantize/dequantize, pools, Add, reshapes, FP32
 * fallbacks. A fused ReLU/ReLU6 is part of its layer's step. */
int qmodel_step_layer(const struct qmodel *m, int step);

/* The graph node step i computes (its first node when ops are fused into
 * it), or -1 for quantize/dequantize steps. */
int qmodel_step_node(const struct qmodel *m, int step);

/* Whether step i computes in integers: false for a node run in FP32 between
 * a dequantize and a quantize (a fallback), and for the quantize/dequantize
 * steps of the graph's inputs and outputs. */
bool qmodel_step_is_integer(const struct qmodel *m, int step);

/* qengine_run, also writing each step's wall time in microseconds into
 * step_us[0 .. qmodel_n_steps()). */
enum presso_status qengine_run_profiled(struct qengine *e, int batch, double *step_us);

#endif
