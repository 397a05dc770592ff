/* engine.h - runs a graph on batches of float32 inputs (the FP32 reference engine).
 *
 * Prepare once, run many: engine_create() infers shapes for the largest batch,
 * fuses Relu/Clip into the Conv/Gemm before them, turns reshape-like ops
 * (Reshape, Flatten, Squeeze, Unsqueeze, Identity) into aliases, and plans all
 * activation memory in one arena, reusing the space of dead tensors. engine_run()
 * allocates nothing. The caller writes inputs into engine_input() buffers and
 * reads engine_output() after the run. An engine reads the graph's constants
 * without copying them: one engine per thread may share one graph.
 */
#ifndef PRESSO_ENGINE_H
#define PRESSO_ENGINE_H

#include <stddef.h>

#include "kernels/kernels_f32.h"
#include "model/graph.h"

struct engine;

/* Plans an engine for batches of up to max_batch. The graph must outlive it.
 * The caller frees *out with engine_free(). */
enum presso_status engine_create(const struct graph *g, int max_batch, struct engine **out);

/* Same, without fusing Relu/Clip into the layer before them: the observer then
 * sees every Conv/Gemm's own (pre-activation) output, and may change it in place
 * before the next node reads it (statistics repair does). */
enum presso_status engine_create_unfused(const struct graph *g, int max_batch,
					 struct engine **out);

void engine_free(struct engine *e);

/* The buffer of runtime input i (graph.inputs[i]), room for max_batch. */
float *engine_input(struct engine *e, int i);

/* Output i (graph.outputs[i]) of the last run; *shape (may be NULL) gets its shape. */
const float *engine_output(const struct engine *e, int i, struct shape *shape);

/* Runs the graph on the first `batch` images of the input buffers. */
enum presso_status engine_run(struct engine *e, int batch);

/* Called during engine_run() with every graph input, then after each node with
 * the value it produced (for a Conv/Gemm with a fused activation: the
 * activation's output value; for reshape-like nodes: their output, which shares
 * its input's data) and its data; used by calibration. */
typedef void (*engine_observer_fn)(void *ctx, int value, const float *data,
				   const struct shape *shape);
void engine_set_observer(struct engine *e, engine_observer_fn fn, void *ctx);

/* Bytes of the activation arena and of the kernel scratch buffer. */
size_t engine_arena_bytes(const struct engine *e);
size_t engine_scratch_bytes(const struct engine *e);

/* A Resize node's per-dimension input-index maps (resize_nearest_map(), one
 * after the other, ys->dims[0] entries then ys->dims[1], ...) into maps, which
 * holds the sum of ys's dimensions: used by the FP32 and the quantized engines. */
void engine_resize_maps(const struct node *n, const struct shape *xs, const struct shape *ys,
			int64_t *maps);

/* red[d]: whether a Reduce node reduces dimension d of xs. */
void engine_reduced_dims(const struct node *n, const struct shape *xs, bool *red);

/* A LayerNormalization's rows: outer rows of inner values from its axis on. */
void engine_layernorm_rows(const struct node *n, const struct shape *xs, int64_t *outer,
			   int64_t *inner);

/* The Conv a ConvTranspose node is the adjoint of (its input is the node's
 * output, its output the node's input; same weight, window and groups). */
void engine_convtranspose_params(const struct node *n, const struct shape *shapes,
				 struct conv2d_params *p);

/* An RNN/GRU/LSTM node's sizes at shapes, and its operands among in[] (the
 * node's inputs' buffers; absent optional ones become NULL). */
void engine_rnn_params(const struct node *n, const struct shape *shapes, struct rnn_params *p);
void engine_rnn_tensors(const struct node *n, const float *const *in, struct rnn_tensors *t);

/* A linear Resize of [N, C, H, W] (or [N, C, L], as H = 1): its sizes and the
 * taps of H and W, in scratch (engine_node_scratch_bytes()). */
struct resize_linear_plan {
	int64_t n, c, hi, wi, ho, wo;
	struct resize_taps th, tw;
};
void engine_resize_linear_plan(const struct node *n, const struct shape *xs,
			       const struct shape *ys, void *scratch,
			       struct resize_linear_plan *pl);

/* Executes one node: in[i] points at the data of input i (NULL if absent), out at
 * room for its output; shapes[] is indexed by value. act_min/act_max clamp the
 * output of Conv/Gemm (fused activation). Used by the engine and by constant
 * folding at import. scratch must hold engine_node_scratch_bytes(). A node
 * whose output has no element does nothing (and needs no scratch). */
enum presso_status engine_exec_node(const struct graph *g, const struct node *n,
				    const struct shape *shapes, const float *const *in,
				    float *out, float *scratch, float act_min, float act_max);

size_t engine_node_scratch_bytes(const struct graph *g, const struct node *n,
				 const struct shape *shapes);

/* The FP32 function of an element-wise op of one input (Sigmoid, Erf, ...),
 * or of two (Add, Mul, ..., PRelu), into *f; false for any other op. The
 * engine computes these ops through it, per element; the INT8 engine
 * tabulates it. */
bool engine_unary_fn(enum op_type op, enum f32_unary *f);
bool engine_binary_fn(enum op_type op, enum f32_binary *f);

#endif
