/* onnx_export.h - a quantized model written back to ONNX, in QDQ form, for
 * deployment with any ONNX runtime (ONNX Runtime fuses the QuantizeLinear /
 * DequantizeLinear pairs into its integer kernels).
 *
 * The written model computes what presso's INT8 engine computes, up to the
 * order of the requantization's float operations (or presso's Q31 form):
 * the same int8 weights, per-channel scales, int32 biases and uint8 activation
 * parameters. onnx_export.c documents the form node by node.
 */
#ifndef PRESSO_ONNX_EXPORT_H
#define PRESSO_ONNX_EXPORT_H

#include "quant/qengine.h"
#include "base/status.h"

/* The ONNX opset and IR version of the written models: opset 13, or 17 (IR
 * version 8, ONNX 1.12) for a graph with HardSwish (opset 14) or
 * LayerNormalization (opset 17). Every other op is written as opset 13
 * defines it, which opset 17 keeps. */
#define ONNX_EXPORT_OPSET 13
#define ONNX_EXPORT_IR_VERSION 7
#define ONNX_EXPORT_OPSET_NEW 17
#define ONNX_EXPORT_IR_VERSION_NEW 8

/* Writes the quantized model m (and the graph it was built from,
 * qmodel_graph(m)) to path as an ONNX ModelProto in QDQ form. producer_note
 * (may be NULL) becomes the model's doc_string, e.g. the policy it was built
 * with. The file is written atomically: a temporary file beside it, renamed
 * into place, so a failure leaves no file and an existing one untouched.
 * Errors name the path (PRESSO_E_IO), or the node that cannot be written in
 * opset 13 (PRESSO_E_UNSUPPORTED). */
enum presso_status onnx_export_qdq(const struct qmodel *m, const char *producer_note,
				   const char *path);

#endif
