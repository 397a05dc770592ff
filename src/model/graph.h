/* graph.h - presso's graph IR: what an imported ONNX model becomes.
 *
 * A graph is a list of values (tensors) and a list of nodes in topological
 * order. A value is either a constant (weights, folded at import: initializers,
 * Constant nodes and constant subgraphs over them) or an activation computed by
 * exactly one node or fed as a graph input. Everything is float32 at run time;
 * int64 constants (Reshape shapes, axes) are kept beside as int64.
 *
 * Shapes: the batch dimension is symbolic. value.shape holds the shape at batch 1
 * and value.batched says whether dimension 0 follows the batch; the engine calls
 * graph_infer_shapes() for the batch it runs. BatchNormalization is folded into
 * the Conv/Gemm before it when that is its only consumer; Dropout becomes
 * Identity; ReduceMean with no axes and noop_with_empty_axes too. The compressible layers (Conv, Gemm, MatMul with a constant weight)
 * are listed in order by graph_layers(): the unit every later stage works on.
 *
 * The graph owns every string and buffer it points to; graph_free() frees all.
 * A loaded graph is read-only and may be shared between threads.
 */
#ifndef PRESSO_GRAPH_H
#define PRESSO_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define GRAPH_MAX_DIMS 8
/* Inputs per node: a Concat or Sum with more is refused. DenseNets
 * concatenate every earlier layer of a block (torchvision's densenet201: 49
 * inputs). */
#define GRAPH_MAX_INPUTS 64

enum op_type {
	OP_CONV,
	OP_GEMM,
	OP_MATMUL,
	OP_RELU,
	OP_CLIP,
	OP_BATCHNORM,
	OP_MAXPOOL,
	OP_AVGPOOL,
	OP_GLOBALAVGPOOL,
	OP_ADD,
	OP_CONCAT,
	OP_FLATTEN,
	OP_RESHAPE,
	OP_SOFTMAX,
	OP_LOGSOFTMAX,
	OP_IDENTITY,
	OP_TRANSPOSE,
	OP_SQUEEZE,
	OP_UNSQUEEZE,
	/* appended after the first ops, so that the op codes of .presso files stay */
	OP_SIGMOID,
	OP_TANH,
	OP_HARDSIGMOID,
	OP_HARDSWISH,
	OP_LEAKYRELU,
	OP_PRELU,
	OP_MUL,
	OP_SUB,
	OP_DIV,
	OP_POW,
	OP_SQRT,
	OP_ERF,
	OP_SUM,
	OP_PAD,
	OP_REDUCEMEAN,
	OP_LAYERNORM,
	OP_LRN,
	OP_EXP,
	OP_NEG,
	OP_RECIPROCAL,
	OP_ABS,
	OP_SLICE,
	OP_RESIZE,
	/* a constant [1, ...] repeated along axis 0 to input 1's first
	 * dimension (the batch): a ViT's class token x.expand(n, -1, -1) */
	OP_EXPAND,
	OP_ELU,             /* x < 0 ? alpha (e^x - 1) : x */
	OP_SELU,            /* beta (gamma) * (x <= 0 ? alpha (e^x - 1) : x) */
	OP_CELU,            /* max(0, x) + min(0, alpha (e^(x / alpha) - 1)) */
	OP_SOFTPLUS,        /* ln(1 + e^x) */
	OP_SOFTSIGN,        /* x / (1 + |x|) */
	OP_THRESHOLDEDRELU, /* x > alpha ? x : 0 */
	/* the adjoint of a Conv: weight [c_in, c_out / group, kh, kw] */
	OP_CONVTRANSPOSE,
	/* a QDQ model's QuantizeLinear -> DequantizeLinear of an activation:
	 * (clamp(round(x / alpha) + beta, clip_min, clip_max) - beta) * alpha */
	OP_FAKEQUANT,
	/* ReduceMean's siblings: the same axes and keepdims */
	OP_REDUCESUM,
	OP_REDUCEMAX,
	OP_REDUCEMIN,
	OP_REDUCEL2,
	OP_REDUCESUMSQUARE,
	OP_MAX,             /* element-wise, two tensors that broadcast */
	OP_MIN,
	OP_LOG,
	/* recurrent layers, FP32 in both engines (their input projection X W^T
	 * is a MatMul layer before them: rnn_projected). Inputs: 0 X, 1 W, 2 R, then
	 * optional (-1 when absent) 3 B, 4 initial_h, 5 initial_c, 6 P (ONNX's
	 * sequence_lens is not an input: the importer takes only full-length
	 * sequences). A node yields one of ONNX's outputs (rnn_output): Y, Y_h or
	 * Y_c; a model that reads two of them has a node for each. */
	OP_RNN,
	OP_GRU,
	OP_LSTM,
	OP_COUNT
};

/* ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceL2, ReduceSumSquare: the
 * ops of axes and keepdims. */
static inline bool op_is_reduce(enum op_type op)
{
	return op == OP_REDUCEMEAN || op == OP_REDUCESUM || op == OP_REDUCEMAX ||
	       op == OP_REDUCEMIN || op == OP_REDUCEL2 || op == OP_REDUCESUMSQUARE;
}

/* The ONNX op name of an op ("Conv"). */
const char *op_name(enum op_type op);

struct shape {
	int n_dims;
	int64_t dims[GRAPH_MAX_DIMS];
};

/* The most elements a tensor may have, at any batch: 2^31 - 1 (8 GiB of
 * float32), because the kernels count a tensor's elements, rows and columns in
 * int. Every shape of a loaded graph, and every shape inferred for a batch, keeps
 * to it in the stronger form shape_numel_checked() tests, so any product of some
 * of a shape's dimensions fits in an int, and a product of two such counts (a
 * layer's multiply-adds: output elements times weights per output) fits in
 * int64. A model past it is refused at load, naming the node or tensor. */
#define GRAPH_MAX_ELEMS ((int64_t)INT32_MAX)

/* *out = a * b when a, b >= 0 and the product is at most GRAPH_MAX_ELEMS;
 * false (and *out unchanged) otherwise. The one multiply for dimensions and
 * element counts that come from a model: it cannot overflow. */
bool shape_mul(int64_t a, int64_t b, int64_t *out);

/* Number of elements of s into *out (1 for a scalar). False if a dimension is
 * negative or the product of its non-zero dimensions passes GRAPH_MAX_ELEMS (so
 * a shape [0, 2^40, 2^40] is refused although it holds no element). */
bool shape_numel_checked(const struct shape *s, int64_t *out);

/* Number of elements of a shape (1 for a scalar), for shapes that passed
 * shape_numel_checked() (every shape of a loaded graph has); aborts on one that
 * would overflow int64, a broken invariant. */
int64_t shape_numel(const struct shape *s);

/* s's dimensions right-aligned to rank (rank >= s->n_dims), 1 before them:
 * numpy's broadcasting. */
void shape_right_align(const struct shape *s, int rank, int64_t *dims);

/* The element that element o of a tensor of ydims (nd dimensions) reads from a
 * tensor of right-aligned dims that broadcasts to it (1 where it repeats). */
int64_t shape_broadcast_src(const int64_t *dims, const int64_t *ydims, int nd, int64_t o);

/* Formats "[N,16,28,28]" (batched) or "[16,28,28]" into buf; returns buf. */
char *shape_format(const struct shape *s, bool batched, char *buf, size_t buf_bytes);

enum dtype { DTYPE_F32, DTYPE_I64 };

struct value {
	char *name;
	struct shape shape; /* at batch 1 for batched values */
	bool batched;       /* dimension 0 follows the batch */
	enum dtype dtype;
	float *data;        /* constant float data, or NULL for activations */
	int64_t *idata;     /* constant int64 data (dtype DTYPE_I64), or NULL */
	int producer;       /* index of the node that computes it, -1 if none */
	int n_consumers;    /* nodes that read it (graph outputs not counted) */
};

static inline bool value_is_const(const struct value *v)
{
	return v->data != NULL || v->idata != NULL;
}

/* Per-op attributes, already validated and normalised at import. */
struct node_attrs {
	/* Conv, MaxPool, AveragePool: 2-D only. pads = top, left, bottom, right,
	 * already resolved from auto_pad for the graph's spatial sizes. */
	int kernel[2];
	int strides[2];
	int pads[4];
	int dilations[2];
	int group;
	int auto_pad;           /* 0 explicit, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
	int out_pad[2];         /* ConvTranspose output_padding (H, W) */
	bool ceil_mode;
	bool count_include_pad;
	/* Gemm; also HardSigmoid (alpha, beta), LeakyRelu (alpha) and LRN (alpha,
	 * beta), whose ONNX attributes have the same names */
	float alpha, beta;
	bool trans_a, trans_b;
	/* Clip (Relu6 is Clip 0..6); bounds from attributes or constant inputs */
	float clip_min, clip_max;
	/* BatchNormalization, LayerNormalization */
	float epsilon;
	/* Concat, Softmax, LogSoftmax, Flatten, LayerNormalization */
	int axis;
	/* Transpose perm, Squeeze/Unsqueeze/ReduceMean axes (ReduceMean: none is
	 * every axis), Reshape target shape, Pad pads (the begin pad of each
	 * dimension, then the end pads: 2 * rank entries), Slice first, count and
	 * step along dimension axis (>= 0; Split becomes Slices) */
	int n_ints;
	int64_t ints[GRAPH_MAX_DIMS];
	bool allowzero;         /* Reshape */
	bool keepdims;          /* ReduceMean */
	float pad_value;        /* Pad (constant mode) */
	float lrn_bias;         /* LRN */
	int lrn_size;           /* LRN */
	/* Resize (mode nearest): ints holds the output's dimensions (n_ints =
	 * rank; the batch's entry is unused), scales the factor of each
	 * dimension the coordinates are mapped with (the model's scales, or
	 * output / input when it gave sizes) */
	float scales[GRAPH_MAX_DIMS];
	uint8_t resize_coord;   /* enum resize_coord (kernels_f32.h) */
	uint8_t resize_round;   /* enum resize_round (kernels_f32.h) */
	uint8_t resize_linear;  /* Resize mode linear (else nearest) */
	/* RNN, GRU, LSTM: hidden_size; direction 0 forward, 1 reverse, 2
	 * bidirectional; ONNX layout 1 (batch first); GRU's linear_before_reset;
	 * the output the node yields (enum rnn_out: Y, Y_h or Y_c); projected
	 * (presso's own form, made at import): input X is X W^T of every
	 * direction (a MatMul before the node), W absent, and R held as R^T per
	 * direction, [dirs, hidden, gates * hidden] */
	int rnn_hidden;
	uint8_t rnn_direction;
	bool rnn_batch_first;
	bool rnn_lbr;
	bool rnn_projected;
	uint8_t rnn_output;
};

/* Nodes' input slots of OP_RNN, OP_GRU and OP_LSTM (graph.h's op list). */
enum { RNN_IN_X, RNN_IN_W, RNN_IN_R, RNN_IN_B, RNN_IN_H0, RNN_IN_C0, RNN_IN_P, RNN_N_IN };

static inline bool op_is_recurrent(enum op_type op)
{
	return op == OP_RNN || op == OP_GRU || op == OP_LSTM;
}

/* Where element j of ONNX's R row `row` (direction row / gh, gate unit
 * row % gh) lies in a projected layer's R^T [dirs, hidden, gh]. */
static inline int64_t rnn_rt_index(int64_t hidden, int64_t gh, int64_t row, int64_t j)
{
	return ((row / gh) * hidden + j) * gh + row % gh;
}


struct node {
	char *name;
	enum op_type op;
	int n_inputs;
	int inputs[GRAPH_MAX_INPUTS]; /* value indices; -1 for an absent optional input */
	int output;                   /* value index */
	struct node_attrs a;
};

struct graph {
	int n_values;
	struct value *values;
	int n_nodes;
	struct node *nodes;          /* topological order */
	int n_inputs;
	int *inputs;                 /* value indices of the runtime inputs */
	int n_outputs;
	int *outputs;                /* value indices of the graph outputs */
	int64_t opset;
	char *producer;              /* "pytorch 1.13.0" */
	int n_folded_bn;             /* BatchNormalization nodes folded at import */
	int n_folded_const;          /* nodes folded into constants at import */
};

/* A compressible layer: a Conv, Gemm or MatMul with a constant weight. */
struct layer {
	int node;        /* index into graph.nodes */
	const char *name;
	enum op_type op;
	int64_t c_out, c_in; /* Conv: channels (c_in per group); Gemm/MatMul: N, K */
	int kh, kw;          /* 1,1 for Gemm/MatMul */
	int group;
	int64_t params;      /* weights + bias */
	int64_t macs;        /* per image (batch 1) */
};

/* Loads an ONNX file: parses it, folds constants and BatchNorm, infers shapes.
 * External-data tensors are read from files beside the model. On failure *out
 * is NULL and status_msg() names the node, the op and the reason.
 * The caller frees *out with graph_free(). */
enum presso_status graph_load_onnx(const char *path, struct graph **out);

/* Same, from bytes in memory; base_dir resolves external data (may be NULL). */
enum presso_status graph_load_onnx_bytes(const uint8_t *bytes, size_t n_bytes,
					 const char *base_dir, struct graph **out);

/* How a model is loaded; NULL means the defaults (all false). */
struct graph_load_opts {
	bool keep_batchnorm; /* leave every BatchNormalization as its own node (for
				training, which folds them after: train/fold.h) */
};

enum presso_status graph_load_onnx_opts(const char *path, const struct graph_load_opts *opts,
					struct graph **out);
enum presso_status graph_load_onnx_bytes_opts(const uint8_t *bytes, size_t n_bytes,
					      const char *base_dir,
					      const struct graph_load_opts *opts, struct graph **out);

void graph_free(struct graph *g);

/* Reads one serialized TensorProto (.pb) into a constant value (float32 or int64)
 * whose name, data and idata the caller frees. */
enum presso_status graph_load_tensor_pb(const char *path, struct value *out);

/* Infers every value's shape for the given batch into shapes[g->n_values]
 * (constants keep their own shape). Errors name the node. */
enum presso_status graph_infer_shapes(const struct graph *g, int64_t batch,
				      struct shape *shapes);

/* Infers one node's output shape from shapes[] (indexed by value). */
enum presso_status graph_infer_node(const struct graph *g, const struct node *n,
				    const struct shape *shapes, struct shape *out);

/* Lists the compressible layers in order into a new array *out of *n_out
 * entries (free() it; names point into the graph). */
enum presso_status graph_layers(const struct graph *g, struct layer **out, int *n_out);

/* Index of the value called name, or -1. */
int graph_find_value(const struct graph *g, const char *name);

/* The Relu/Clip node that reads node i's output as its only reader, when node i
 * is a Conv or Gemm and that output is not a graph output: the activation both
 * engines fuse into node i as a clamp. -1 if none. */
int graph_fused_activation(const struct graph *g, int i);

/* The input projection of recurrent node i: the MatMul layer (a constant
 * weight) that computes its X when the node is in presso's projected form,
 * else -1. Its weight bits are the recurrent weights' too: the INT8 engine
 * quantizes R at them (qengine.h, qmodel_qconst_view). */
int graph_rnn_projection(const struct graph *g, int i);

/* Multiply-adds per image (batch 1) of the nodes with weights that are not
 * layers and run in FP32 in both engines: recurrent layers' recurrence,
 * ConvTranspose. */
int64_t graph_fp32_macs(const struct graph *g);

/* The same for node i alone (0 for a node that is none of those). */
int64_t graph_node_fp32_macs(const struct graph *g, int i);

/* Totals over the whole graph at batch 1: weights (all float constants) and MACs
 * (the layers' and graph_fp32_macs(); INT64_MAX if the sum does not fit). */
void graph_totals(const struct graph *g, int64_t *params, int64_t *macs);

#endif
