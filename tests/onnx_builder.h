/* onnx_builder.h - builds small ONNX models in memory for the tests, with the
 * protobuf-c bindings. Everything a builder allocates is freed by mb_free(). */
#ifndef PRESSO_TEST_ONNX_BUILDER_H
#define PRESSO_TEST_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

struct mb {
	Onnx__ModelProto model;
	Onnx__GraphProto graph;
	Onnx__OperatorSetIdProto opset;
	Onnx__OperatorSetIdProto *opsets[1];
	void **allocs;
	size_t n_allocs, cap_allocs;
};

void mb_init(struct mb *b, int64_t opset);
void mb_free(struct mb *b);

/* A float tensor not yet attached anywhere (for Constant nodes). */
Onnx__TensorProto *mb_tensor_f32(struct mb *b, const char *name, const int64_t *dims, int n_dims,
				 const float *data);
Onnx__TensorProto *mb_tensor_i64(struct mb *b, const char *name, const int64_t *dims, int n_dims,
				 const int64_t *data);

/* A float initializer (data copied). */
Onnx__TensorProto *mb_init_f32(struct mb *b, const char *name, const int64_t *dims, int n_dims,
			       const float *data);
/* An int64 initializer (data copied). */
Onnx__TensorProto *mb_init_i64(struct mb *b, const char *name, const int64_t *dims, int n_dims,
			       const int64_t *data);
/* A one-byte initializer (UINT8 or INT8; data copied). */
Onnx__TensorProto *mb_init_bytes(struct mb *b, const char *name, const int64_t *dims,
				 int n_dims, int32_t data_type, const void *data);
/* A graph input (float); dims[i] < 0 means symbolic ("N"). */
void mb_input(struct mb *b, const char *name, const int64_t *dims, int n_dims);
void mb_output(struct mb *b, const char *name);

/* A node with inputs (NULL-terminated; "" for absent) and one output. */
Onnx__NodeProto *mb_node(struct mb *b, const char *op, const char *name,
			 const char *const *inputs, const char *output);
/* Appends an output to n (a node of several outputs; "" for an unnamed one). */
void mb_node_output(struct mb *b, Onnx__NodeProto *n, const char *output);
void mb_attr_int(struct mb *b, Onnx__NodeProto *n, const char *name, int64_t v);
void mb_attr_float(struct mb *b, Onnx__NodeProto *n, const char *name, float v);
void mb_attr_ints(struct mb *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count);
void mb_attr_string(struct mb *b, Onnx__NodeProto *n, const char *name, const char *v);
void mb_attr_tensor(struct mb *b, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t);

/* A model over [N, 3, 6, 6] inputs that uses every activation, arithmetic and
 * normalisation op presso imports beside the classic CNN ones: a conv with
 * HardSwish and a per-channel PRelu, a squeeze-excite block (GAP, two 1x1
 * convs, Relu, HardSigmoid, Mul), LRN, a grouped strided ConvTranspose with
 * output_padding, two Resizes (nearest by scales,
 * linear by sizes), Pad, ReduceMean, ReduceMax, ReduceL2, ReduceSum,
 * LayerNormalization,
 * Sigmoid, Tanh, LeakyRelu, Elu, Selu, Celu, Softplus, Softsign,
 * ThresholdedRelu, Sum, Sub, Abs, Sqrt, Erf, Neg, Exp, Add,
 * Reciprocal, Pow, Mul, Div, Split, Concat, then Flatten and a Gemm to
 * [N, 10]. Its weights
 * are fixed pseudo-random numbers; every value stays finite. For round trips
 * through the file formats. */
void mb_new_ops_model(struct mb *b);

/* Serializes the model; the bytes belong to the builder. */
uint8_t *mb_pack(struct mb *b, size_t *n_out);

#endif
