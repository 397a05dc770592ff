/* tnet.h - the training engine: a graph's forward pass with every activation
 * saved, its backward pass, and the gradients of its parameters (FP32, NCHW).
 *
 * A tnet trains a graph in place: its parameters are the graph's own float
 * constants (the weights and biases of Conv, Gemm and MatMul, BatchNorm's scale
 * and bias, an Add's constant operand), so after any update the graph is the
 * current FP32 model, ready for the FP32 engine, calibration or quantization.
 * BatchNorm's running mean and variance are state, not parameters.
 *
 * Quantization-aware training is built in: a layer may read fake-quantized
 * weights (tnet_set_weight_bits: per output channel, quant_weights()'s grid and
 * scales, recomputed by tnet_quantize_weights() after every update) and an
 * activation tensor may be fake-quantized where it is written
 * (tnet_set_act_quant), with straight-through gradients (tnet.c says which).
 *
 * One tnet is shared read-only by the threads of a step; each thread runs its
 * part of a batch in its own workspace (struct tnet_ws: the saved activations,
 * their gradients, scratch) and accumulates parameter gradients into a flat
 * vector of tnet_n_floats() floats that the caller owns: param i's gradient is
 * grad[param->offset .. + param->n).
 */
#ifndef PRESSO_TNET_H
#define PRESSO_TNET_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "model/graph.h"
#include "quant/quant.h"

enum tnet_param_kind {
	TP_WEIGHT,   /* a layer's weight (input 1 of a Conv/Gemm/MatMul) */
	TP_BIAS,     /* a layer's bias (input 2) */
	TP_BN_SCALE, /* BatchNorm scale (gamma) */
	TP_BN_BIAS,  /* BatchNorm bias (beta) */
	TP_OTHER,    /* any other float constant an op reads (an Add's operand) */
	TP_KIND_COUNT
};

struct tnet_param {
	int value;        /* the graph value whose data is the parameter */
	int64_t n;        /* elements */
	int64_t offset;   /* of its gradient in the flat vector */
	enum tnet_param_kind kind;
	int layer;        /* graph_layers() index of the layer it belongs to, or -1 */
};

/* How BatchNormalization nodes run while training. */
enum tnet_bn_mode {
	TNET_BN_FROZEN, /* with the running statistics: an affine map per channel
			   (exactly what the folded model computes) */
	TNET_BN_BATCH,  /* with each workspace's batch statistics (training mode);
			   tnet_bn_stats() reports them for the running averages */
};

struct tnet;
struct tnet_ws;

/* Plans training for g, which must outlive the tnet and which it updates in
 * place. The loss is taken on the logits: graph output 0, or the input of the
 * Softmax/LogSoftmax that produces it (that node is then skipped); they must
 * hold one row of scores per image. Ops without a backward pass here
 * (MatMul of two activations, a MatMul whose weight is not 2-D, ...) are an
 * error naming the node. The caller frees *out with tnet_free(). */
enum presso_status tnet_create(struct graph *g, enum tnet_bn_mode bn, struct tnet **out);

void tnet_free(struct tnet *t);

/* The kernels convolutions and matrix products run on: f32_train_kernels_best()
 * unless set here (tests compare the paths). */
struct f32_train_kernels;
void tnet_set_kernels(struct tnet *t, const struct f32_train_kernels *k);

const struct graph *tnet_graph(const struct tnet *t);
int tnet_n_params(const struct tnet *t);
const struct tnet_param *tnet_param(const struct tnet *t, int i);
float *tnet_param_data(const struct tnet *t, int i);
int64_t tnet_n_floats(const struct tnet *t);   /* total parameter elements */
int tnet_n_classes(const struct tnet *t);      /* scores per image */
int tnet_logits_value(const struct tnet *t);

/* --- quantization-aware training ------------------------------------------- */

/* Layer (graph_layers() index) reads its weight fake-quantized at `bits`
 * (1..8; 0 turns it off), and so does the recurrent layer whose input
 * projection it is (graph_rnn_projection) read its R, as the INT8 engine
 * quantizes it. Fails (PRESSO_E_CONFIG) on a bad layer or width. */
enum presso_status tnet_set_weight_bits(struct tnet *t, int layer, int bits);

/* Keeps the zeros of the layer's weight at zero: the current zeros become a
 * fixed mask (pruned weights); the same for the R of the recurrent layer
 * whose input projection it is (pruned with it: transform.h). */
void tnet_fix_zeros(struct tnet *t, int layer);

/* Fake-quantizes value v (an activation) with qp where it is written: its
 * readers see what the INT8 engine would hold. qp == NULL turns it off. A
 * value that shares its buffer with others (through Flatten, Reshape, ...)
 * quantizes the buffer. */
void tnet_set_act_quant(struct tnet *t, int v, const struct qparams *qp);

/* True when v's buffer is fake-quantized. */
bool tnet_act_quantized(const struct tnet *t, int v);

/* Recomputes every fake-quantized weight from the current parameters (the
 * per-channel scales too). Call after each update, before the next forward. */
void tnet_quantize_weights(struct tnet *t);

/* The straight-through estimator on a reduced gradient: gradients of
 * fake-quantized weights are kept only where the weight lies inside the range
 * its grid represents (bits >= 3; ternary and binary pass everything), and
 * masked (pruned) weights get none. */
void tnet_apply_ste(const struct tnet *t, float *grad);

/* Sets masked weights back to zero (after an optimizer update). */
void tnet_apply_masks(struct tnet *t);

/* lambda * sum over fake-quantized layers of (w - q(w))^2; when grad is not
 * NULL adds its gradient 2 lambda (w - q(w)) there (q taken as constant). Uses
 * the weights of the last tnet_quantize_weights(). */
double tnet_quant_penalty(const struct tnet *t, double lambda, float *grad);

/* The fake-quantized weight the layer reads (NULL when it reads its own). */
const float *tnet_weight_q(const struct tnet *t, int layer);

/* --- running one part of a batch ------------------------------------------- */

/* A workspace for parts of up to max_batch images. Free with tnet_ws_free(). */
enum presso_status tnet_ws_create(const struct tnet *t, int max_batch, struct tnet_ws **out);
void tnet_ws_free(struct tnet_ws *w);

/* Input i's buffer (graph input order), room for max_batch images. */
float *tnet_ws_input(struct tnet_ws *w, int i);

/* Runs the forward pass on `batch` images, saving every activation. */
enum presso_status tnet_forward(const struct tnet *t, struct tnet_ws *w, int batch);

/* The logits of the last forward, [batch, n_classes]. */
const float *tnet_ws_logits(const struct tnet_ws *w);

/* Where the caller writes dL/dlogits, [batch, n_classes], before tnet_backward. */
float *tnet_ws_logits_grad(struct tnet_ws *w);

/* Backpropagates the logits' gradient through the last forward, adding the
 * parameters' gradients into grad[tnet_n_floats()] (the raw gradients with
 * respect to what each node read: tnet_apply_ste() finishes them). */
void tnet_backward(const struct tnet *t, struct tnet_ws *w, float *grad);

/* Number of BatchNorm channels (sum over BatchNorm nodes) and, after a forward
 * in TNET_BN_BATCH mode, their batch means and (biased) variances, node by node
 * in graph order. */
int64_t tnet_n_bn_channels(const struct tnet *t);
void tnet_bn_stats(const struct tnet *t, const struct tnet_ws *w, float *mean, float *var);

/* Updates the running statistics of every BatchNorm from batch statistics
 * (mean, var as tnet_bn_stats gives them, of `batch` images):
 * running = (1 - momentum) running + momentum batch, with the variance made
 * unbiased (count / (count - 1), count the values per channel) as PyTorch does. */
void tnet_bn_update(struct tnet *t, const float *mean, const float *var, int batch,
		    float momentum);

/* BatchNorm running statistics (state, not parameters): 2 * tnet_n_bn_channels()
 * floats, the means then the variances, node by node in graph order. Copies
 * them into out, or (out == NULL) sets them from in. */
void tnet_bn_running(const struct tnet *t, float *out, const float *in);

/* The activation quantization (every value's range and grid, as
 * tnet_set_act_quant set them): tnet_act_quant_floats() floats, copied into out,
 * or (out == NULL) set from in for the buffers already quantized. Checkpoints
 * keep it so that a resumed run uses the ranges the interrupted one measured. */
int64_t tnet_act_quant_floats(const struct tnet *t);
void tnet_act_quant_state(struct tnet *t, float *out, const float *in);

#endif
