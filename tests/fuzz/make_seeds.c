/* make_seeds.c - writes the generated part of the fuzzers' seed corpora.
 *
 * Usage: fuzz_make_seeds DIR   (tests/fuzz/make_corpus.sh runs it on
 *                                tests/fuzz/corpus)
 * Writes DIR/onnx/{cnn,residual,shapes}.onnx: tiny models that together use
 * every operator presso imports (cnn and residual take Fashion-MNIST's
 * [N,1,28,28], so `presso compress` can quantize them for the .presso seeds),
 * and small IDX and NPY datasets, raw and gzip, in the input layout of
 * fuzz_dataset.c, in DIR/dataset. Weights come from a fixed LCG: the same
 * bytes on every run.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "tests/onnx_builder.h"

#define SEPARATOR "@@LABELS@@" /* fuzz_dataset.c */

static uint32_t lcg = 12345;

static float next_weight(float amplitude)
{
	lcg = lcg * 1664525u + 1013904223u;
	return amplitude * ((float)(lcg >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
}

static float *weights(int64_t n, float amplitude)
{
	float *w = malloc(sizeof *w * (size_t)n);
	if (!w)
		abort();
	for (int64_t i = 0; i < n; i++)
		w[i] = next_weight(amplitude);
	return w;
}

static void add_weight(struct mb *b, const char *name, const int64_t *dims, int n_dims,
		       float amplitude)
{
	int64_t n = 1;
	for (int i = 0; i < n_dims; i++)
		n *= dims[i];
	float *w = weights(n, amplitude);
	mb_init_f32(b, name, dims, n_dims, w);
	free(w);
}

static const char *out_dir;

static void write_file(const char *sub, const char *name, const void *bytes, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", out_dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	printf("%s (%zu bytes)\n", path, n);
}

static void write_model(struct mb *b, const char *name)
{
	size_t n;
	uint8_t *bytes = mb_pack(b, &n);
	write_file("onnx", name, bytes, n);
	mb_free(b);
}

static const int64_t IMAGE_DIMS[4] = {-1, 1, 28, 28};

/* Conv s2 -> BatchNorm -> Relu -> MaxPool -> depthwise Conv -> Clip (ReLU6)
 * -> AveragePool -> Flatten -> Gemm -> Softmax */
static void cnn(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", IMAGE_DIMS, 4);
	add_weight(&b, "w1", (int64_t[]){4, 1, 3, 3}, 4, 0.5f);
	add_weight(&b, "b1", (int64_t[]){4}, 1, 0.1f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv1", (const char *[]){"x", "w1", "b1", NULL}, "c1");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_init_f32(&b, "gamma", (int64_t[]){4}, 1, (float[]){1.0f, 0.5f, 1.5f, 0.8f});
	mb_init_f32(&b, "beta", (int64_t[]){4}, 1, (float[]){0.1f, -0.1f, 0.0f, 0.2f});
	mb_init_f32(&b, "mean", (int64_t[]){4}, 1, (float[]){0.0f, 0.1f, -0.1f, 0.05f});
	mb_init_f32(&b, "var", (int64_t[]){4}, 1, (float[]){1.0f, 0.5f, 2.0f, 0.9f});
	n = mb_node(&b, "BatchNormalization", "bn1",
		    (const char *[]){"c1", "gamma", "beta", "mean", "var", NULL}, "n1");
	mb_attr_float(&b, n, "epsilon", 1e-5f);
	mb_node(&b, "Relu", "relu1", (const char *[]){"n1", NULL}, "r1");
	n = mb_node(&b, "MaxPool", "pool1", (const char *[]){"r1", NULL}, "p1");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2, 2}, 2);
	add_weight(&b, "w2", (int64_t[]){4, 1, 3, 3}, 4, 0.5f);
	n = mb_node(&b, "Conv", "dw2", (const char *[]){"p1", "w2", NULL}, "c2");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2, 2}, 2);
	mb_attr_string(&b, n, "auto_pad", "SAME_UPPER");
	mb_attr_int(&b, n, "group", 4);
	mb_init_f32(&b, "lo", (int64_t[]){0}, 0, (float[]){0.0f});
	mb_init_f32(&b, "hi", (int64_t[]){0}, 0, (float[]){6.0f});
	mb_node(&b, "Clip", "relu6", (const char *[]){"c2", "lo", "hi", NULL}, "r2");
	n = mb_node(&b, "AveragePool", "pool2", (const char *[]){"r2", NULL}, "p2");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2, 2}, 2);
	mb_node(&b, "Flatten", "flat", (const char *[]){"p2", NULL}, "f");
	add_weight(&b, "w3", (int64_t[]){10, 16}, 2, 0.4f);
	add_weight(&b, "b3", (int64_t[]){10}, 1, 0.1f);
	n = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "w3", "b3", NULL}, "logits");
	mb_attr_int(&b, n, "transB", 1);
	n = mb_node(&b, "Softmax", "softmax", (const char *[]){"logits", NULL}, "y");
	mb_attr_int(&b, n, "axis", 1);
	mb_output(&b, "y");
	write_model(&b, "cnn.onnx");
}

/* Conv -> Relu -> Conv -> Add (skip) -> Relu -> GlobalAveragePool -> Reshape
 * -> MatMul + Add (a Gemm once imported) -> LogSoftmax */
static void residual(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", IMAGE_DIMS, 4);
	add_weight(&b, "w0", (int64_t[]){4, 1, 3, 3}, 4, 0.5f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "stem", (const char *[]){"x", "w0", NULL}, "s");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){4, 4}, 2);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(&b, "Relu", "stem_relu", (const char *[]){"s", NULL}, "a");
	add_weight(&b, "w1", (int64_t[]){4, 4, 3, 3}, 4, 0.3f);
	add_weight(&b, "b1", (int64_t[]){4}, 1, 0.1f);
	n = mb_node(&b, "Conv", "body1", (const char *[]){"a", "w1", "b1", NULL}, "c1");
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(&b, "Relu", "body_relu", (const char *[]){"c1", NULL}, "r1");
	add_weight(&b, "w2", (int64_t[]){4, 4, 1, 1}, 4, 0.3f);
	mb_node(&b, "Conv", "body2", (const char *[]){"r1", "w2", NULL}, "c2");
	mb_node(&b, "Add", "skip", (const char *[]){"a", "c2", NULL}, "sum");
	mb_node(&b, "Relu", "out_relu", (const char *[]){"sum", NULL}, "r2");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"r2", NULL}, "g");
	mb_init_i64(&b, "shape", (int64_t[]){2}, 1, (int64_t[]){-1, 4});
	mb_node(&b, "Reshape", "reshape", (const char *[]){"g", "shape", NULL}, "v");
	add_weight(&b, "wf", (int64_t[]){4, 10}, 2, 0.5f);
	add_weight(&b, "bf", (int64_t[]){10}, 1, 0.1f);
	mb_node(&b, "MatMul", "fc", (const char *[]){"v", "wf", NULL}, "mm");
	mb_node(&b, "Add", "fc_bias", (const char *[]){"mm", "bf", NULL}, "logits");
	n = mb_node(&b, "LogSoftmax", "logsoftmax", (const char *[]){"logits", NULL}, "y");
	mb_attr_int(&b, n, "axis", -1);
	mb_output(&b, "y");
	write_model(&b, "residual.onnx");
}

/* The shape ops and constants: Constant, Transpose, Unsqueeze, Squeeze,
 * Concat, Identity, Dropout, Flatten, and a subgraph over constants that is
 * folded at import. */
static void shapes(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 3}, 3);
	Onnx__NodeProto *n = mb_node(&b, "Constant", "k", NULL, "k");
	float k[6] = {1, 2, 3, 4, 5, 6};
	mb_attr_tensor(&b, n, "value", mb_tensor_f32(&b, "k", (int64_t[]){1, 2, 3}, 3, k));
	mb_node(&b, "Relu", "fold", (const char *[]){"k", NULL}, "kr");
	n = mb_node(&b, "Transpose", "t", (const char *[]){"x", NULL}, "xt");
	mb_attr_ints(&b, n, "perm", (int64_t[]){0, 2, 1}, 3);
	n = mb_node(&b, "Transpose", "t_back", (const char *[]){"xt", NULL}, "xb");
	mb_attr_ints(&b, n, "perm", (int64_t[]){0, 2, 1}, 3);
	mb_init_i64(&b, "ax1", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_node(&b, "Unsqueeze", "u", (const char *[]){"xb", "ax1", NULL}, "xu");
	mb_node(&b, "Squeeze", "s", (const char *[]){"xu", "ax1", NULL}, "xs");
	mb_node(&b, "Add", "plus_k", (const char *[]){"xs", "kr", NULL}, "xa");
	n = mb_node(&b, "Concat", "cat", (const char *[]){"xa", "xs", NULL}, "c");
	mb_attr_int(&b, n, "axis", 2);
	mb_node(&b, "Identity", "id", (const char *[]){"c", NULL}, "ci");
	mb_node(&b, "Dropout", "drop", (const char *[]){"ci", NULL}, "cd");
	n = mb_node(&b, "Flatten", "flat", (const char *[]){"cd", NULL}, "f");
	mb_attr_int(&b, n, "axis", 1);
	add_weight(&b, "w", (int64_t[]){12, 3}, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"f", "w", NULL}, "y");
	mb_output(&b, "y");
	write_model(&b, "shapes.onnx");
}

/* A transformer's shape arithmetic at a dynamic batch: a class token
 * expanded to the batch (Shape, Gather, Unsqueeze, Concat, ConstantOfShape,
 * Mul, Equal, Where, Expand) and concatenated before the tokens, then a
 * sequence-first Reshape to [T, batch x 2, D / 2] (Mul of the batch) and back
 * to [batch, T x D] (Div of it), and a MatMul. */
static void tokens(void)
{
	struct mb b;
	mb_init(&b, 17);
	mb_input(&b, "x", (int64_t[]){-1, 4, 6}, 3);
	add_weight(&b, "cls", (int64_t[]){1, 1, 6}, 3, 0.5f);
	mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(&b, "one", NULL, 0, (int64_t[]){1});
	mb_init_i64(&b, "two", NULL, 0, (int64_t[]){2});
	mb_init_i64(&b, "minus", NULL, 0, (int64_t[]){-1});
	mb_init_i64(&b, "three", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(&b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "rest", (int64_t[]){2}, 1, (int64_t[]){-1, -1});
	mb_init_i64(&b, "t5", (int64_t[]){1}, 1, (int64_t[]){5});
	mb_init_i64(&b, "d3", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(&b, "d30", (int64_t[]){1}, 1, (int64_t[]){30});
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	Onnx__NodeProto *n = mb_node(&b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "n");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "Unsqueeze", "n1", (const char *[]){"n", "axes0", NULL}, "n1");
	n = mb_node(&b, "Concat", "want", (const char *[]){"n1", "rest", NULL}, "want");
	mb_attr_int(&b, n, "axis", 0);
	n = mb_node(&b, "ConstantOfShape", "ones", (const char *[]){"three", NULL}, "ones");
	mb_attr_tensor(&b, n, "value", mb_tensor_i64(&b, "v1", (int64_t[]){1}, 1, (int64_t[]){1}));
	mb_node(&b, "Mul", "minus_ones", (const char *[]){"ones", "minus", NULL}, "mo");
	mb_node(&b, "Equal", "is_minus", (const char *[]){"want", "mo", NULL}, "eq");
	mb_node(&b, "Where", "keep", (const char *[]){"eq", "ones", "want", NULL}, "sh");
	mb_node(&b, "Expand", "expand", (const char *[]){"cls", "sh", NULL}, "ce");
	n = mb_node(&b, "Concat", "with_token", (const char *[]){"ce", "x", NULL}, "t");
	mb_attr_int(&b, n, "axis", 1);
	n = mb_node(&b, "Transpose", "seq_first", (const char *[]){"t", NULL}, "tt");
	mb_attr_ints(&b, n, "perm", (int64_t[]){1, 0, 2}, 3);
	mb_node(&b, "Shape", "shape_t", (const char *[]){"tt", NULL}, "ts");
	n = mb_node(&b, "Gather", "batch_t", (const char *[]){"ts", "one", NULL}, "nb");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "Mul", "heads", (const char *[]){"nb", "two", NULL}, "nh");
	mb_node(&b, "Unsqueeze", "nh1", (const char *[]){"nh", "axes0", NULL}, "nh1");
	n = mb_node(&b, "Concat", "split", (const char *[]){"t5", "nh1", "d3", NULL}, "tg");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "Reshape", "to_heads", (const char *[]){"tt", "tg", NULL}, "r");
	n = mb_node(&b, "Transpose", "batch_first", (const char *[]){"r", NULL}, "rb");
	mb_attr_ints(&b, n, "perm", (int64_t[]){1, 0, 2}, 3);
	mb_node(&b, "Div", "unheads", (const char *[]){"nh", "two", NULL}, "n2");
	mb_node(&b, "Unsqueeze", "n21", (const char *[]){"n2", "axes0", NULL}, "n21");
	n = mb_node(&b, "Concat", "rows", (const char *[]){"n21", "d30", NULL}, "tg2");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "Reshape", "to_rows", (const char *[]){"rb", "tg2", NULL}, "f");
	add_weight(&b, "w", (int64_t[]){30, 5}, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"f", "w", NULL}, "y");
	mb_output(&b, "y");
	write_model(&b, "tokens.onnx");
}

/* 1-D layers lifted to 2-D at import (Conv1d, ELU, a grouped ConvTranspose1d
 * with output_padding, Softplus, MaxPool1d), then a bilinear Resize, the
 * mean over the positions and a MatMul. */
static void lifted(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 12}, 3);
	add_weight(&b, "w1", (int64_t[]){4, 2, 3}, 3, 0.5f);
	add_weight(&b, "b1", (int64_t[]){4}, 1, 0.2f);
	add_weight(&b, "wt", (int64_t[]){4, 2, 2}, 3, 0.5f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "c1", (const char *[]){"x", "w1", "b1", NULL}, "a");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3}, 1);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1}, 2);
	n = mb_node(&b, "Elu", "elu", (const char *[]){"a", NULL}, "e");
	mb_attr_float(&b, n, "alpha", 0.5f);
	n = mb_node(&b, "ConvTranspose", "up", (const char *[]){"e", "wt", NULL}, "u");
	mb_attr_int(&b, n, "group", 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2}, 1);
	mb_attr_ints(&b, n, "output_padding", (int64_t[]){1}, 1);
	mb_node(&b, "Softplus", "softplus", (const char *[]){"u", NULL}, "s");
	n = mb_node(&b, "MaxPool", "pool", (const char *[]){"s", NULL}, "p");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){2}, 1);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2}, 1);
	mb_init_i64(&b, "ax2", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_node(&b, "Unsqueeze", "rows", (const char *[]){"p", "ax2", NULL}, "p4");
	mb_init_f32(&b, "scales", (int64_t[]){4}, 1, (float[]){1, 1, 2, 1.5f});
	n = mb_node(&b, "Resize", "bilinear", (const char *[]){"p4", "", "scales", NULL}, "r");
	mb_attr_string(&b, n, "mode", "linear");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"r", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	add_weight(&b, "w", (int64_t[]){4, 3}, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"f", "w", NULL}, "y");
	mb_output(&b, "y");
	write_model(&b, "lifted.onnx");
}

/* Recurrent layers as PyTorch exports them: a bidirectional GRU
 * (linear_before_reset) over [N, 5, 3] whose zero initial state is a
 * ConstantOfShape of the batch size, sliced as a stacked layer's; its Y into
 * an LSTM with peepholes whose Y_h and Y_c are both read; a projected RNN
 * whose W is made by EyeLike, as presso's QDQ export writes it. */
static void recurrent(void)
{
	struct mb b;
	mb_init(&b, 14);
	mb_input(&b, "x", (int64_t[]){-1, 5, 3}, 3);
	add_weight(&b, "gw", (int64_t[]){2, 12, 3}, 3, 0.5f);
	add_weight(&b, "gr", (int64_t[]){2, 12, 4}, 3, 0.5f);
	add_weight(&b, "gb", (int64_t[]){2, 24}, 2, 0.2f);
	mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(&b, "ax0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "ax1", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_i64(&b, "two", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_init_i64(&b, "four", (int64_t[]){1}, 1, (int64_t[]){4});
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	Onnx__NodeProto *n = mb_node(&b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "nb");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "Unsqueeze", "nb1", (const char *[]){"nb", "ax0", NULL}, "nb1");
	n = mb_node(&b, "Concat", "hshape", (const char *[]){"nb1", "two", "four", NULL}, "hs");
	mb_attr_int(&b, n, "axis", 0);
	mb_node(&b, "ConstantOfShape", "zeros", (const char *[]){"hs", NULL}, "z");
	mb_init_i64(&b, "s2", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_node(&b, "Slice", "layer0", (const char *[]){"z", "zero_1", "s2", "ax1", NULL}, "h0");
	mb_init_i64(&b, "zero_1", (int64_t[]){1}, 1, (int64_t[]){0});
	n = mb_node(&b, "GRU", "gru", (const char *[]){"x", "gw", "gr", "gb", "", "h0", NULL}, "gy");
	mb_attr_int(&b, n, "hidden_size", 4);
	mb_attr_string(&b, n, "direction", "bidirectional");
	mb_attr_int(&b, n, "layout", 1);
	mb_attr_int(&b, n, "linear_before_reset", 1);
	mb_init_i64(&b, "flat3", (int64_t[]){3}, 1, (int64_t[]){-1, 5, 8});
	mb_node(&b, "Reshape", "merge", (const char *[]){"gy", "flat3", NULL}, "g3");
	add_weight(&b, "lw", (int64_t[]){1, 12, 8}, 3, 0.5f);
	add_weight(&b, "lr", (int64_t[]){1, 12, 3}, 3, 0.5f);
	add_weight(&b, "lp", (int64_t[]){1, 9}, 2, 0.3f);
	n = mb_node(&b, "LSTM", "lstm", (const char *[]){"g3", "lw", "lr", "", "", "", "", "lp", NULL}, "");
	mb_node_output(&b, n, "lh");
	mb_node_output(&b, n, "lc");
	mb_attr_int(&b, n, "hidden_size", 3);
	mb_attr_int(&b, n, "layout", 1);
	mb_node(&b, "Add", "hc", (const char *[]){"lh", "lc", NULL}, "s");
	mb_init_i64(&b, "eshape", (int64_t[]){2}, 1, (int64_t[]){3, 3});
	mb_node(&b, "ConstantOfShape", "ez", (const char *[]){"eshape", NULL}, "e0");
	n = mb_node(&b, "EyeLike", "eye", (const char *[]){"e0", NULL}, "e");
	mb_attr_int(&b, n, "k", 0);
	mb_node(&b, "Unsqueeze", "rw", (const char *[]){"e", "ax0", NULL}, "rw");
	add_weight(&b, "rr", (int64_t[]){1, 3, 3}, 3, 0.5f);
	n = mb_node(&b, "RNN", "rnn", (const char *[]){"s", "rw", "rr", NULL}, "ry");
	mb_attr_int(&b, n, "hidden_size", 3);
	mb_attr_string(&b, n, "direction", "reverse");
	mb_attr_int(&b, n, "layout", 1);
	mb_init_i64(&b, "flat2", (int64_t[]){2}, 1, (int64_t[]){-1, 3});
	mb_node(&b, "Reshape", "flat", (const char *[]){"ry", "flat2", NULL}, "y");
	mb_output(&b, "y");
	write_model(&b, "recurrent.onnx");
}

/* --- datasets ---------------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *bytes, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, bytes, n);
	b->n += n;
}

static void put_be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, x, 4);
}

static struct buf gzip(const struct buf *in)
{
	struct buf out = {0};
	z_stream z = {0};
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	out.cap = deflateBound(&z, in->n) + 32;
	out.p = malloc(out.cap);
	z.next_in = in->p;
	z.avail_in = (uInt)in->n;
	z.next_out = out.p;
	z.avail_out = (uInt)out.cap;
	if (!out.p || deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	out.n = z.total_out;
	deflateEnd(&z);
	return out;
}

/* an IDX image file [n, h, w] and its label file */
static void idx_files(int n, int h, int w, struct buf *images, struct buf *labels)
{
	put_be32(images, 0x00000803);
	put_be32(images, (uint32_t)n);
	put_be32(images, (uint32_t)h);
	put_be32(images, (uint32_t)w);
	for (int i = 0; i < n * h * w; i++)
		put(images, &(uint8_t){(uint8_t)(i * 37)}, 1);
	put_be32(labels, 0x00000801);
	put_be32(labels, (uint32_t)n);
	for (int i = 0; i < n; i++)
		put(labels, &(uint8_t){(uint8_t)(i % 3)}, 1);
}

/* an NPY 1.0 file: header dict padded to a multiple of 64 bytes, then data */
static void npy_file(struct buf *b, const char *descr, const char *shape, const void *data,
		     size_t n)
{
	char dict[256];
	int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
			   descr, shape);
	int total = 10 + len + 1;
	int pad = (64 - total % 64) % 64;
	uint16_t hl = (uint16_t)(len + pad + 1);
	put(b, "\x93NUMPY\x01\x00", 8);
	put(b, (uint8_t[]){(uint8_t)hl, (uint8_t)(hl >> 8)}, 2);
	put(b, dict, (size_t)len);
	for (int i = 0; i < pad; i++)
		put(b, " ", 1);
	put(b, "\n", 1);
	put(b, data, n);
}

static void dataset_seed(const char *name, uint8_t flags, const struct buf *images,
			 const struct buf *labels)
{
	struct buf all = {0};
	put(&all, &flags, 1);
	put(&all, images->p, images->n);
	put(&all, SEPARATOR, strlen(SEPARATOR));
	put(&all, labels->p, labels->n);
	write_file("dataset", name, all.p, all.n);
	free(all.p);
}

static void datasets(void)
{
	struct buf im = {0}, lb = {0};
	idx_files(3, 4, 5, &im, &lb);
	dataset_seed("idx_u8", 0x00, &im, &lb);
	struct buf gi = gzip(&im), gl = gzip(&lb);
	dataset_seed("idx_gz", 0x04, &gi, &gl);
	free(gi.p);
	free(gl.p);
	free(im.p);
	free(lb.p);

	uint8_t px[2 * 3 * 3 * 3];
	for (size_t i = 0; i < sizeof px; i++)
		px[i] = (uint8_t)(i * 11);
	int64_t l64[2] = {1, 0};
	int32_t l32[2] = {0, 2};
	im = (struct buf){0};
	lb = (struct buf){0};
	npy_file(&im, "|u1", "(2, 3, 3)", px, 18);
	npy_file(&lb, "<i8", "(2,)", l64, sizeof l64);
	dataset_seed("npy_u8", 0x01, &im, &lb);
	gi = gzip(&im);
	dataset_seed("npy_gz_images", 0x05, &gi, &lb);
	free(gi.p);
	free(im.p);
	free(lb.p);

	im = (struct buf){0};
	lb = (struct buf){0};
	npy_file(&im, "|u1", "(2, 3, 3, 3)", px, sizeof px);
	npy_file(&lb, "<i4", "(2, 1)", l32, sizeof l32);
	dataset_seed("npy_u8_channels_last", 0x03, &im, &lb);
	free(im.p);
	free(lb.p);

	float f[2 * 2 * 2 * 2];
	for (int i = 0; i < 16; i++)
		f[i] = (float)i / 16.0f - 0.5f;
	uint8_t l8[2] = {0, 1};
	im = (struct buf){0};
	lb = (struct buf){0};
	npy_file(&im, "<f4", "(2, 2, 2, 2)", f, sizeof f);
	npy_file(&lb, "|u1", "(2,)", l8, sizeof l8);
	dataset_seed("npy_f32_nchw", 0x01, &im, &lb);
	gl = gzip(&lb);
	dataset_seed("npy_f32_gz_labels", 0x05, &im, &gl);
	free(gl.p);
	free(im.p);
	free(lb.p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	cnn();
	residual();
	shapes();
	tokens();
	lifted();
	recurrent();
	datasets();
	return 0;
}
