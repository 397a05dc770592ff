/* qengine.h - the INT8 inference engine: a graph quantized by a policy.
 *
 * qmodel_build() turns an FP32 graph, a policy and calibration statistics into a
 * read-only quantized model: per-channel int8 weights packed for the kernels of
 * the chosen instruction set, int32 biases, Q31 requantization multipliers, and
 * uint8 quantization parameters for every activation tensor. qengine_create()
 * plans one instance's memory for a largest batch; qengine_run() allocates
 * nothing. Many engines (one per thread) can share one qmodel.
 *
 * Inside, 4-D activations are uint8 NHWC (channels innermost, as the GEMM and
 * depthwise kernels want); 2-D ones are [rows, features]. Conv, Gemm, MatMul with
 * a constant weight, ReLU/ReLU6 (fused as clamps, also into Add), MaxPool,
 * AveragePool, GlobalAveragePool, Add and reshapes run in integers. Any other op
 * (Softmax, Transpose, an unfolded BatchNormalization, ...) runs through its FP32
 * kernel between a dequantize and a quantize: correct, not fast. Inputs are fed
 * as float (quantized on entry); outputs come back as float (the last Gemm
 * writes dequantized logits directly).
 */
#ifndef PRESSO_QENGINE_H
#define PRESSO_QENGINE_H

#include <stdint.h>

#include "calib.h"
#include "graph.h"
#include "kernels/kernels_q8.h"
#include "policy.h"

struct quant_config {
	enum calib_method method;
	double percentile;       /* for CALIB_PERCENTILE, e.g. 99.99 */
	enum q8_isa isa;         /* kernels to pack for; q8_isa_best() by default */
};

/* What a quantized model costs (see README: size accounting). */
struct qmodel_size {
	int64_t size_bytes;     /* packed weights + per-channel scales and int32 biases
				   + per-tensor activation scale/zero point + any other
				   float constants */
	int64_t weight_bytes;   /* packed weights alone */
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

/* --- profiling (additive hook for the search's latency table) ---------------
 * A run is a fixed list of steps (kernels) in execution order. */

int qmodel_n_steps(const struct qmodel *m);

/* The layer (graph_layers() index, = policy layer) step i computes, or -1 for
 * steps that are no layer: quantize/dequantize, pools, Add, reshapes, FP32
 * fallbacks. A fused ReLU/ReLU6 is part of its layer's step. */
int qmodel_step_layer(const struct qmodel *m, int step);

/* qengine_run, also writing each step's wall time in microseconds into
 * step_us[0 .. qmodel_n_steps()). */
enum presso_status qengine_run_profiled(struct qengine *e, int batch, double *step_us);

#endif
