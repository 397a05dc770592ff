/* test_onnx_import.c - the ONNX importer: every class of bad model gives its
 * specific error; BatchNorm folding, constant folding, Constant/Identity inputs,
 * external data, MatMul+Add fusion and the symbolic batch work. Models are built
 * in memory with tests/onnx_builder.c. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/graph.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* Folding BatchNorm changes the order of float operations: a few ulp. */
#define FOLD_TOL 1e-5f

static const int64_t X_DIMS[] = {-1, 2, 5, 5};

static float frand(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void fill(float *x, int n, uint32_t seed)
{
	for (int i = 0; i < n; i++)
		x[i] = frand(&seed);
}

/* Runs a single-input graph on x (batch b) into y (count values). */
static void run(struct graph *g, int b, const float *x, int n_x, float *y, int n_y)
{
	struct engine *e;
	cr_assert_eq(engine_create(g, b, &e), PRESSO_OK, "%s", status_msg());
	memcpy(engine_input(e, 0), x, sizeof(float) * (size_t)n_x);
	cr_assert_eq(engine_run(e, b), PRESSO_OK, "%s", status_msg());
	struct shape s;
	const float *out = engine_output(e, 0, &s);
	cr_assert_eq(shape_numel(&s), n_y);
	memcpy(y, out, sizeof(float) * (size_t)n_y);
	engine_free(e);
}

static enum presso_status load(struct mb *b, struct graph **g)
{
	size_t n;
	uint8_t *bytes = mb_pack(b, &n);
	return graph_load_onnx_bytes(bytes, n, NULL, g);
}

/* Conv(2->3, 3x3, pad 1) + optional BatchNorm + Relu */
static void conv_bn_model(struct mb *b, bool with_bn)
{
	float w[3 * 2 * 3 * 3], bias[3], gamma[3] = {1.5f, 0.5f, -1.0f}, beta[3] = {0.1f, -0.2f, 0.3f},
				      mean[3] = {0.05f, -0.1f, 0.2f}, var[3] = {0.9f, 1.2f, 0.3f};
	fill(w, 54, 1);
	fill(bias, 3, 2);
	mb_init(b, 13);
	mb_input(b, "x", X_DIMS, 4);
	mb_init_f32(b, "w", (int64_t[]){3, 2, 3, 3}, 4, w);
	mb_init_f32(b, "b", (int64_t[]){3}, 1, bias);
	Onnx__NodeProto *c = mb_node(b, "Conv", "conv1", (const char *[]){"x", "w", "b", NULL},
				     with_bn ? "c" : "r_in");
	mb_attr_ints(b, c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_attr_ints(b, c, "kernel_shape", (int64_t[]){3, 3}, 2);
	if (with_bn) {
		mb_init_f32(b, "gamma", (int64_t[]){3}, 1, gamma);
		mb_init_f32(b, "beta", (int64_t[]){3}, 1, beta);
		mb_init_f32(b, "mean", (int64_t[]){3}, 1, mean);
		mb_init_f32(b, "var", (int64_t[]){3}, 1, var);
		Onnx__NodeProto *n = mb_node(b, "BatchNormalization", "bn1",
					     (const char *[]){"c", "gamma", "beta", "mean", "var", NULL},
					     "r_in");
		mb_attr_float(b, n, "epsilon", 1e-3f);
	}
	mb_node(b, "Relu", "relu1", (const char *[]){"r_in", NULL}, "y");
	mb_output(b, "y");
}

/* The expected output of conv_bn_model with BN, computed directly. */
static void conv_bn_reference(const float *x, int batch, float *y)
{
	float w[54], bias[3], gamma[3] = {1.5f, 0.5f, -1.0f}, beta[3] = {0.1f, -0.2f, 0.3f},
			      mean[3] = {0.05f, -0.1f, 0.2f}, var[3] = {0.9f, 1.2f, 0.3f};
	fill(w, 54, 1);
	fill(bias, 3, 2);
	for (int n = 0; n < batch; n++)
		for (int o = 0; o < 3; o++)
			for (int i = 0; i < 5; i++)
				for (int j = 0; j < 5; j++) {
					double acc = bias[o];
					for (int c = 0; c < 2; c++)
						for (int ki = 0; ki < 3; ki++)
							for (int kj = 0; kj < 3; kj++) {
								int ii = i + ki - 1, jj = j + kj - 1;
								if (ii < 0 || jj < 0 || ii >= 5 || jj >= 5)
									continue;
								acc += (double)w[((o * 2 + c) * 3 + ki) * 3 + kj] *
								       x[((n * 2 + c) * 5 + ii) * 5 + jj];
							}
					double v = (acc - mean[o]) / sqrt(var[o] + 1e-3) * gamma[o] + beta[o];
					y[((n * 3 + o) * 5 + i) * 5 + j] = (float)(v > 0 ? v : 0);
				}
}

Test(import, batchnorm_is_folded_and_exact)
{
	struct mb b;
	conv_bn_model(&b, true);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_folded_bn, 1);
	cr_assert_eq(g->n_nodes, 2, "Conv and Relu remain");
	cr_assert_eq(g->nodes[0].op, OP_CONV);
	float x[3 * 50], y[3 * 75], want[3 * 75];
	fill(x, 150, 7);
	run(g, 3, x, 150, y, 225);
	conv_bn_reference(x, 3, want);
	for (int i = 0; i < 225; i++)
		cr_assert_float_eq(y[i], want[i], FOLD_TOL * (1 + fabsf(want[i])), "y[%d]", i);
	graph_free(g);
	mb_free(&b);
}

Test(import, batchnorm_with_two_readers_is_kept)
{
	struct mb b;
	conv_bn_model(&b, true);
	/* a second reader of the conv output prevents folding */
	mb_node(&b, "Relu", "side", (const char *[]){"c", NULL}, "side_out");
	mb_output(&b, "side_out");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_folded_bn, 0);
	float x[50], y[75], want[75];
	fill(x, 50, 9);
	run(g, 1, x, 50, y, 75);
	conv_bn_reference(x, 1, want);
	for (int i = 0; i < 75; i++)
		cr_assert_float_eq(y[i], want[i], FOLD_TOL * (1 + fabsf(want[i])));
	graph_free(g);
	mb_free(&b);
}

Test(import, symbolic_batch_and_layers)
{
	struct mb b;
	conv_bn_model(&b, false);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	const struct value *in = &g->values[g->inputs[0]];
	cr_assert(in->batched);
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf),
			 "[N,3,5,5]");
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 1);
	cr_assert_str_eq(ls[0].name, "conv1");
	cr_assert_eq(ls[0].params, 54 + 3);
	cr_assert_eq(ls[0].macs, 3 * 25 * 2 * 9);
	free(ls);
	graph_free(g);
	mb_free(&b);
}

Test(import, constant_subgraph_over_weights_is_folded)
{
	/* Conv weight = Reshape(flat initializer, constant shape); ReLU6 bounds from
	 * Constant nodes; the result must equal the same conv with the weight given
	 * directly. */
	struct mb a, b;
	float w[54];
	fill(w, 54, 1);
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_init_f32(&b, "w_flat", (int64_t[]){54}, 1, w);
	mb_init_i64(&b, "w_shape", (int64_t[]){4}, 1, (int64_t[]){3, 2, 3, 3});
	mb_node(&b, "Reshape", "reshape_w", (const char *[]){"w_flat", "w_shape", NULL}, "w");
	mb_node(&b, "Identity", "share_w", (const char *[]){"w", NULL}, "w2");
	Onnx__NodeProto *c = mb_node(&b, "Conv", "conv1", (const char *[]){"x", "w2", NULL}, "c");
	mb_attr_ints(&b, c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	Onnx__NodeProto *k0 = mb_node(&b, "Constant", "k0", NULL, "lo");
	mb_attr_tensor(&b, k0, "value", mb_tensor_f32(&b, "lo", NULL, 0, (float[]){0.0f}));
	Onnx__NodeProto *k1 = mb_node(&b, "Constant", "k1", NULL, "hi");
	mb_attr_tensor(&b, k1, "value", mb_tensor_f32(&b, "hi", NULL, 0, (float[]){0.5f}));
	mb_node(&b, "Clip", "relu6", (const char *[]){"c", "lo", "hi", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_geq(g->n_folded_const, 2, "Reshape and Identity of weights folded");
	cr_assert_eq(g->n_nodes, 2, "Conv and Clip remain");
	cr_assert_eq(g->nodes[1].op, OP_CLIP);
	cr_assert_float_eq(g->nodes[1].a.clip_max, 0.5f, 0);

	mb_init(&a, 13);
	mb_input(&a, "x", X_DIMS, 4);
	mb_init_f32(&a, "w", (int64_t[]){3, 2, 3, 3}, 4, w);
	Onnx__NodeProto *c2 = mb_node(&a, "Conv", "conv1", (const char *[]){"x", "w", NULL}, "y");
	mb_attr_ints(&a, c2, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_output(&a, "y");
	struct graph *ga;
	cr_assert_eq(load(&a, &ga), PRESSO_OK, "%s", status_msg());
	float x[50], y[75], ya[75];
	fill(x, 50, 3);
	run(g, 1, x, 50, y, 75);
	run(ga, 1, x, 50, ya, 75);
	for (int i = 0; i < 75; i++)
		cr_assert_float_eq(y[i], fminf(fmaxf(ya[i], 0.0f), 0.5f), 0);
	graph_free(g);
	graph_free(ga);
	mb_free(&a);
	mb_free(&b);
}

Test(import, matmul_add_becomes_gemm)
{
	struct mb b;
	float w[6 * 4], bias[4];
	fill(w, 24, 5);
	fill(bias, 4, 6);
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 6}, 2);
	mb_init_f32(&b, "w", (int64_t[]){6, 4}, 2, w);
	mb_init_f32(&b, "bias", (int64_t[]){4}, 1, bias);
	mb_node(&b, "MatMul", "fc", (const char *[]){"x", "w", NULL}, "m");
	mb_node(&b, "Add", "fc_bias", (const char *[]){"m", "bias", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 1);
	cr_assert_eq(g->nodes[0].op, OP_GEMM);
	float x[2 * 6], y[2 * 4];
	fill(x, 12, 8);
	run(g, 2, x, 12, y, 8);
	for (int n = 0; n < 2; n++)
		for (int j = 0; j < 4; j++) {
			float acc = bias[j];
			for (int k = 0; k < 6; k++)
				acc += x[n * 6 + k] * w[k * 4 + j];
			cr_assert_float_eq(y[n * 4 + j], acc, 1e-5f);
		}
	graph_free(g);
	mb_free(&b);
}

Test(import, nhwc_input_transpose)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4, 4, 3}, 4);
	Onnx__NodeProto *t = mb_node(&b, "Transpose", "to_nchw", (const char *[]){"x", NULL}, "t");
	mb_attr_ints(&b, t, "perm", (int64_t[]){0, 3, 1, 2}, 4);
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"t", NULL}, "p");
	Onnx__NodeProto *f = mb_node(&b, "Flatten", "flat", (const char *[]){"p", NULL}, "y");
	mb_attr_int(&b, f, "axis", 1);
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	float x[2 * 48], y[2 * 3];
	for (int i = 0; i < 96; i++)
		x[i] = (float)(i % 3) + (i >= 48 ? 10.0f : 0.0f); /* channel c holds c (+10 in image 1) */
	run(g, 2, x, 96, y, 6);
	for (int n = 0; n < 2; n++)
		for (int c = 0; c < 3; c++)
			cr_assert_float_eq(y[n * 3 + c], (float)c + 10.0f * n, 1e-6f);
	graph_free(g);
	mb_free(&b);
}

/* --- bad models: each gives its own error -------------------------------- */

static void expect_error(struct mb *b, enum presso_status want, const char *needle)
{
	struct graph *g = (struct graph *)0x1;
	enum presso_status s = load(b, &g);
	cr_assert_eq(s, want, "status %s (%s), wanted %s", status_str(s), status_msg(),
		     status_str(want));
	cr_assert_null(g);
	cr_assert(strstr(status_msg(), needle), "message '%s' lacks '%s'", status_msg(), needle);
}

Test(import_errors, missing_file)
{
	struct graph *g;
	cr_assert_eq(graph_load_onnx("/nonexistent/model.onnx", &g), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "/nonexistent/model.onnx"));
	cr_assert(strstr(status_msg(), "No such file"));
}

Test(import_errors, empty_garbage_and_truncated)
{
	char *dir = fx_tmpdir();
	const char *p = fx_join(dir, "empty.onnx");
	cr_assert(fx_write(p, "", 0));
	struct graph *g;
	cr_assert_eq(graph_load_onnx(p, &g), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "empty.onnx: the file is empty"), "%s", status_msg());
	remove(p);
	const uint8_t garbage[] = "this is not a protobuf \xff\xff\xff\xff\xff\xff";
	cr_assert_eq(graph_load_onnx_bytes(garbage, sizeof garbage, NULL, &g), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "not a valid ONNX model"), "%s", status_msg());

	struct mb b;
	conv_bn_model(&b, true);
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	/* cut inside the graph message and inside the last field */
	size_t cuts[] = {n / 2, n / 3, n - 1, 40};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		g = NULL;
		enum presso_status s = graph_load_onnx_bytes(bytes, cuts[i], NULL, &g);
		cr_assert_neq(s, PRESSO_OK, "a model cut at %zu of %zu bytes loaded", cuts[i], n);
		cr_assert_null(g);
	}
	mb_free(&b);
	rmdir(dir);
	free(dir);
}

Test(import_errors, unsupported_op_names_node_and_op)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_node(&b, "GatherElements", "rnn7", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'rnn7': op GatherElements is not supported");
	mb_free(&b);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Every node with an op presso lacks is listed once, in file order, not just
 * the first; an unnamed one by its op and output. */
Test(import_errors, every_unsupported_node_is_listed_once)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_node(&b, "GatherElements", "rnn7", (const char *[]){"x", NULL}, "h");
	mb_node(&b, "Relu", "ok", (const char *[]){"h", NULL}, "r");
	mb_node(&b, "ScatterND", "", (const char *[]){"r", NULL}, "gru_out");
	mb_node(&b, "GatherElements", "rnn8", (const char *[]){"gru_out", NULL}, "h2");
	Onnx__NodeProto *f = mb_node(&b, "Fancy", "ext1", (const char *[]){"h2", NULL}, "y");
	f->domain = "com.example";
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "4 nodes use ops presso does not support");
	const char *m = status_msg();
	cr_assert(strstr(m, "(GatherElements, ScatterND, Fancy)"), "%s", m);
	cr_assert_eq(count_of(m, "node 'rnn7': GatherElements"), 1, "%s", m);
	cr_assert_eq(count_of(m, "unnamed node with output 'gru_out': ScatterND"), 1, "%s", m);
	cr_assert_eq(count_of(m, "node 'rnn8': GatherElements"), 1, "%s", m);
	cr_assert_eq(count_of(m, "node 'ext1': Fancy (domain 'com.example')"), 1, "%s", m);
	cr_assert_null(strstr(m, "'ok'"), "%s", m);
	cr_assert(strstr(m, "rnn7") < strstr(m, "gru_out") && strstr(m, "gru_out") < strstr(m, "rnn8"),
		  "file order: %s", m);
	f->domain = NULL;
	mb_free(&b);

	/* one unnamed node: the one-line form, named by its output */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_node(&b, "ScatterND", "", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "unnamed node with output 'y': op ScatterND is not supported");
	mb_free(&b);

	/* hundreds of them: each listed while there is room, then a count */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	char in[32] = "x", out[32], name[32];
	for (int i = 0; i < 400; i++) {
		snprintf(out, sizeof out, "t%d", i);
		snprintf(name, sizeof name, "ge_%03d", i);
		mb_node(&b, "GatherElements", name, (const char *[]){in, NULL}, out);
		snprintf(in, sizeof in, "%s", out);
	}
	mb_output(&b, in);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "400 nodes use ops presso does not support (GatherElements)");
	m = status_msg();
	cr_assert_eq(count_of(m, "node 'ge_000': GatherElements"), 1, "%s", m);
	cr_assert(strstr(m, "more"), "%s", m);
	cr_assert_lt(strlen(m), 8192);
	mb_free(&b);
}

Test(import_errors, unsupported_attribute_value)
{
	struct mb b;
	conv_bn_model(&b, false);
	mb_attr_string(&b, b.graph.node[0], "auto_pad", "SOMETIMES");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'conv1': Conv attribute auto_pad");
	mb_free(&b);

	conv_bn_model(&b, false);
	mb_attr_ints(&b, b.graph.node[0], "strides", (int64_t[]){1, 1, 1}, 3);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "strides must have 2 entries");
	mb_free(&b);

	conv_bn_model(&b, false);
	mb_attr_int(&b, b.graph.node[0], "mystery", 3);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "Conv attribute 'mystery' is not supported");
	mb_free(&b);
}

Test(import_errors, dangling_input_and_bad_shapes)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_node(&b, "Relu", "r", (const char *[]){"nowhere", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_FORMAT, "input 'nowhere' is not produced");
	mb_free(&b);

	/* weight with the wrong number of input channels */
	float w[3 * 4 * 9] = {0};
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_init_f32(&b, "w", (int64_t[]){3, 4, 3, 3}, 4, w);
	mb_node(&b, "Conv", "convx", (const char *[]){"x", "w", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_FORMAT, "node 'convx': Conv weight expects 4 input channels");
	mb_free(&b);

	/* raw_data shorter than the shape */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	Onnx__TensorProto *t = mb_init_f32(&b, "w", (int64_t[]){3, 2, 3, 3}, 4, w);
	t->raw_data.len -= 4;
	mb_node(&b, "Conv", "convx", (const char *[]){"x", "w", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_FORMAT, "raw_data holds 212 bytes");
	mb_free(&b);

	/* a graph output nobody produces */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "z");
	expect_error(&b, PRESSO_E_FORMAT, "graph output 'z'");
	mb_free(&b);

	/* an empty input name where the op has no optional input (fuzz_onnx: a
	 * Concat of integer constants read the value before the first) */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_init_i64(&b, "s", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_node(&b, "Concat", "cat", (const char *[]){"s", "", NULL}, "c");
	mb_node(&b, "Reshape", "r", (const char *[]){"x", "c", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_FORMAT, "node 'cat': Concat input 1 is empty, but the op requires it");
	mb_free(&b);

	/* symbolic non-batch dimension */
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, -1, 5, 5}, 4);
	mb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "dimension 1 is symbolic");
	mb_free(&b);
}

/* A Conv, Gemm or MatMul whose weight or product is empty (no output or no
 * input channel, an inner dimension of 0): refused by name at load. The FP32
 * conv divided by its empty reduction and the INT8 path by its channel count
 * (found with hand-made models after the fuzzer's empty Conv). */
Test(import_errors, empty_weights_and_products_are_refused)
{
	static const struct {
		const char *op;
		int64_t w[4];
		int n_w;
		const char *want;
	} cases[] = {
		{"Conv", {0, 2, 3, 3}, 4, "node 'l': Conv weight [0,2,3,3] is empty: a layer with no output"},
		{"Gemm", {10, 0}, 2, "node 'l': Gemm of an empty matrix (0 inner, 10 output columns)"},
		{"Gemm", {0, 50}, 2, "node 'l': Gemm of an empty matrix (50 inner, 0 output columns)"},
		{"MatMul", {0, 10}, 2, "node 'l': MatMul of an empty matrix (0 inner, 10 output columns)"},
	};
	float w[64] = {0};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool conv = strcmp(cases[i].op, "Conv") == 0;
		bool gemm = strcmp(cases[i].op, "Gemm") == 0;
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", X_DIMS, 4);
		const char *in = "x";
		if (!conv) {
			/* [N, 50], or [N, 0] for a product over nothing */
			int64_t k = cases[i].w[gemm ? 1 : 0];
			mb_init_i64(&b, "starts", (int64_t[]){1}, 1, (int64_t[]){0});
			mb_init_i64(&b, "ends", (int64_t[]){1}, 1, (int64_t[]){k});
			mb_init_i64(&b, "axes", (int64_t[]){1}, 1, (int64_t[]){1});
			mb_node(&b, "Flatten", "f", (const char *[]){"x", NULL}, "flat");
			mb_node(&b, "Slice", "s", (const char *[]){"flat", "starts", "ends", "axes", NULL},
				"sl");
			in = "sl";
		}
		mb_init_f32(&b, "w", cases[i].w, cases[i].n_w, w);
		Onnx__NodeProto *n = mb_node(&b, cases[i].op, "l", (const char *[]){in, "w", NULL}, "y");
		if (gemm)
			mb_attr_int(&b, n, "transB", 1);
		mb_output(&b, "y");
		expect_error(&b, PRESSO_E_UNSUPPORTED, cases[i].want);
		mb_free(&b);
	}
	/* no input channel: a Conv over a Slice that keeps none of x's */
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	mb_init_i64(&b, "starts", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "ends", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "axes", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_node(&b, "Slice", "s", (const char *[]){"x", "starts", "ends", "axes", NULL}, "sl");
	mb_init_f32(&b, "w", (int64_t[]){3, 0, 3, 3}, 4, w);
	mb_node(&b, "Conv", "l", (const char *[]){"sl", "w", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'l': Conv weight [3,0,3,3] is empty: a layer with no input");
	mb_free(&b);
}

/* 5 * 3689348814741910480 = 2^64 + 784: a Reshape to [0, 5, 3689348814741910480]
 * of a [N,1,28,28] input wraps around to its 784 elements per image unless the
 * product is checked. op is what reads the reshaped tensor. */
static void wrapping_reshape_model(struct mb *b, const char *op)
{
	bool pool = strcmp(op, "MaxPool") == 0;
	const int64_t shape[] = {0, 5, 3689348814741910480, 1};
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 1, 28, 28}, 4);
	mb_init_i64(b, "shape", (int64_t[]){pool ? 4 : 3}, 1, shape);
	mb_node(b, "Reshape", "reshape1", (const char *[]){"x", "shape", NULL}, "r");
	Onnx__NodeProto *n = mb_node(b, op, "after", (const char *[]){"r", NULL}, "y");
	if (strcmp(op, "Transpose") == 0)
		mb_attr_ints(b, n, "perm", (int64_t[]){0, 2, 1}, 3);
	if (pool)
		mb_attr_ints(b, n, "kernel_shape", (int64_t[]){1, 1}, 2);
	mb_output(b, "y");
}

Test(import_errors, shape_products_that_overflow_are_refused)
{
	static const char *const readers[] = {"Transpose", "Softmax", "MaxPool"};
	for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
		struct mb b;
		wrapping_reshape_model(&b, readers[i]);
		expect_error(&b, PRESSO_E_UNSUPPORTED,
			     "node 'reshape1': Reshape target shape has more than 2147483647 elements");
		mb_free(&b);
	}
}

Test(import_errors, shapes_past_the_element_bound_are_refused)
{
	/* a graph input of 2^32 elements per image */
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 65536, 65536}, 3);
	mb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "graph input 'x': more than 2147483647 elements");
	mb_free(&b);

	/* an initializer with no element but dimensions whose product overflows */
	mb_init(&b, 13);
	mb_input(&b, "x", X_DIMS, 4);
	float none = 0;
	Onnx__TensorProto *t = mb_init_f32(&b, "w", (int64_t[]){0, 1, 1}, 3, &none);
	t->dims[1] = t->dims[2] = (int64_t)1 << 62;
	mb_node(&b, "Add", "add", (const char *[]){"x", "w", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "tensor 'w': more than 2147483647 elements");
	mb_free(&b);

	/* a Flatten whose output would pass the bound at a large batch loads, and
	 * shape inference at that batch is refused naming the input */
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1 << 29}, 2);
	mb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	struct shape shapes[8];
	cr_assert_leq(g->n_values, 8);
	cr_assert_eq(graph_infer_shapes(g, 3, shapes), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(graph_infer_shapes(g, 4, shapes), PRESSO_E_UNSUPPORTED);
	cr_assert(strstr(status_msg(), "graph input 'x' at batch 4 has more than"), "%s",
		  status_msg());
	graph_free(g);
	mb_free(&b);
}

Test(import, checked_shape_products)
{
	int64_t p = -7;
	cr_assert(shape_mul(INT32_MAX, 1, &p) && p == INT32_MAX);
	cr_assert(shape_mul(65536, 32767, &p) && p == 65536LL * 32767);
	cr_assert(!shape_mul(65536, 32768, &p) && p == 65536LL * 32767, "unchanged on failure");
	cr_assert(!shape_mul(-1, 1, &p));
	cr_assert(!shape_mul(3689348814741910480, 5, &p), "wraps to 784 unchecked");
	cr_assert(!shape_mul(INT64_MAX, INT64_MAX, &p));
	cr_assert(shape_mul(0, INT32_MAX, &p) && p == 0);
	struct shape s = {3, {0, 5, 3689348814741910480}};
	cr_assert(!shape_numel_checked(&s, &p), "no element, but the dimensions overflow");
	s = (struct shape){3, {0, 5, 7}};
	cr_assert(shape_numel_checked(&s, &p) && p == 0);
	s = (struct shape){2, {-1, 5}};
	cr_assert(!shape_numel_checked(&s, &p));
	s = (struct shape){0, {0}};
	cr_assert(shape_numel_checked(&s, &p) && p == 1, "a scalar");
}

Test(import_errors, axes_out_of_int_range_are_refused)
{
	/* 2^40 cast to int is 0: it must not become axis 0 */
	const int64_t big = (int64_t)1 << 40;
	struct mb b;
	mb_init(&b, 11);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	Onnx__NodeProto *n = mb_node(&b, "Unsqueeze", "unsq", (const char *[]){"x", NULL}, "y");
	mb_attr_ints(&b, n, "axes", &big, 1);
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED,
		     "node 'unsq': Unsqueeze axes entry 1099511627776 is out of range");
	mb_free(&b);

	/* opset 13: axes from a constant input; and Squeeze, from the other end */
	const int64_t neg = -big;
	const char *ops[] = {"Unsqueeze", "Squeeze"};
	for (int i = 0; i < 2; i++) {
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 1, 4}, 3);
		mb_init_i64(&b, "axes", (int64_t[]){1}, 1, i ? &neg : &big);
		mb_node(&b, ops[i], "sq", (const char *[]){"x", "axes", NULL}, "y");
		mb_output(&b, "y");
		expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'sq': ");
		cr_assert(strstr(status_msg(), "is out of range"), "%s", status_msg());
		mb_free(&b);
	}
}

Test(import_errors, batchnorm_variance_plus_epsilon_must_be_positive)
{
	/* folded into the Conv before it, and on its own (run by the engine) */
	for (int alone = 0; alone < 2; alone++) {
		struct mb b;
		conv_bn_model(&b, true);
		Onnx__TensorProto *var = b.graph.initializer[5];
		cr_assert_str_eq(var->name, "var");
		((float *)var->raw_data.data)[1] = -0.5f;
		if (alone)
			b.graph.node[1]->input[0] = b.graph.input[0]->name;
		expect_error(&b, PRESSO_E_FORMAT,
			     "node 'bn1': BatchNormalization variance + epsilon is -0.499 for channel 1");
		mb_free(&b);
	}
	/* exactly -epsilon gives 0: refused too */
	struct mb b;
	conv_bn_model(&b, true);
	((float *)b.graph.initializer[5]->raw_data.data)[2] = -1e-3f;
	b.graph.node[1]->attribute[0]->f = 1e-3f;
	struct graph *g = NULL;
	enum presso_status s = load(&b, &g);
	cr_assert_eq(s, PRESSO_E_FORMAT, "%s", status_msg());
	cr_assert(strstr(status_msg(), "for channel 2"), "%s", status_msg());
	mb_free(&b);
}

Test(import_errors, opset_newer_than_supported_is_refused)
{
	struct mb b;
	conv_bn_model(&b, true);
	b.opset.version = 99;
	expect_error(&b, PRESSO_E_UNSUPPORTED,
		     "the model uses ai.onnx opset 99; presso supports opsets up to 18");
	mb_free(&b);
	/* the newest supported opset loads as before */
	conv_bn_model(&b, true);
	b.opset.version = 18;
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->opset, 18);
	graph_free(g);
	mb_free(&b);
}

Test(import_errors, non_regular_files_are_refused, .timeout = 20)
{
	struct graph *g = (struct graph *)0x1;
	cr_assert_eq(graph_load_onnx("/dev/zero", &g), PRESSO_E_IO);
	cr_assert_null(g);
	cr_assert(strstr(status_msg(), "/dev/zero: is a device, not a model file"), "%s",
		  status_msg());
	char *dir = fx_tmpdir();
	cr_assert_eq(graph_load_onnx(dir, &g), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "is a folder, not a model file"), "%s", status_msg());
	cr_assert(strncmp(status_msg(), dir, strlen(dir)) == 0, "names the folder: %s",
		  status_msg());
	struct value v;
	cr_assert_eq(graph_load_tensor_pb(dir, &v), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "is a folder, not a tensor file"), "%s", status_msg());
	rmdir(dir);
	free(dir);
}

Test(import, external_data_beside_the_model)
{
	char *dir = fx_tmpdir();
	float w[54];
	fill(w, 54, 1);
	cr_assert(fx_write(fx_join(dir, "weights.bin"), w, sizeof w));
	struct mb b;
	conv_bn_model(&b, false);
	Onnx__TensorProto *t = b.graph.initializer[0];
	cr_assert_str_eq(t->name, "w");
	t->has_raw_data = 0;
	t->has_data_location = 1;
	t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
	loc.key = "location";
	loc.value = "weights.bin";
	Onnx__StringStringEntryProto *entries[1] = {&loc};
	t->n_external_data = 1;
	t->external_data = entries;
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	const char *model = fx_join(dir, "m.onnx");
	cr_assert(fx_write(model, bytes, n));
	struct graph *g;
	cr_assert_eq(graph_load_onnx(model, &g), PRESSO_OK, "%s", status_msg());
	struct mb ref;
	conv_bn_model(&ref, false);
	struct graph *gr;
	cr_assert_eq(load(&ref, &gr), PRESSO_OK);
	float x[50], y[75], yr[75];
	fill(x, 50, 4);
	run(g, 1, x, 50, y, 75);
	run(gr, 1, x, 50, yr, 75);
	cr_assert_arr_eq(y, yr, sizeof y);
	graph_free(g);
	graph_free(gr);

	/* missing external file, and a location escaping the folder */
	remove(fx_join(dir, "weights.bin"));
	cr_assert_eq(graph_load_onnx(model, &g), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "weights.bin"), "%s", status_msg());
	loc.value = "../weights.bin";
	bytes = mb_pack(&b, &n);
	cr_assert(fx_write(model, bytes, n));
	cr_assert_eq(graph_load_onnx(model, &g), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "relative path"), "%s", status_msg());
	t->n_external_data = 0;
	t->external_data = NULL;
	remove(model);
	rmdir(dir);
	free(dir);
	mb_free(&ref);
	mb_free(&b);
}

Test(engine, reuses_memory_of_dead_tensors)
{
	/* a chain of 8 Add(x, x) nodes: only two buffers need to be live at once */
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1000}, 2);
	char prev[16] = "x", cur[16];
	for (int i = 0; i < 8; i++) {
		snprintf(cur, sizeof cur, "a%d", i);
		mb_node(&b, "Add", cur, (const char *[]){prev, prev, NULL}, i == 7 ? "y" : cur);
		snprintf(prev, sizeof prev, "%s", cur);
	}
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	struct engine *e;
	cr_assert_eq(engine_create(g, 4, &e), PRESSO_OK);
	size_t one = 4 * 1000 * sizeof(float);
	cr_assert_leq(engine_arena_bytes(e), 2 * one + 128, "arena %zu bytes for 9 tensors of %zu",
		      engine_arena_bytes(e), one);
	float *x = engine_input(e, 0);
	for (int i = 0; i < 4000; i++)
		x[i] = (float)i;
	cr_assert_eq(engine_run(e, 4), PRESSO_OK);
	const float *y = engine_output(e, 0, NULL);
	for (int i = 0; i < 4000; i++)
		cr_assert_float_eq(y[i], 256.0f * i, 0);
	/* a smaller batch on the same engine */
	cr_assert_eq(engine_run(e, 1), PRESSO_OK);
	cr_assert_neq(engine_run(e, 5), PRESSO_OK, "batch above the planned maximum is refused");
	engine_free(e);
	graph_free(g);
	mb_free(&b);
}

/* A Relu fused into its Conv, read through a Flatten that is the graph's
 * output: the Flatten shares the Conv's buffer (it once read a buffer nothing
 * wrote), in the FP32 engine and in a second engine on the same graph. */
Test(engine, flatten_of_a_fused_activation)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 3, 3}, 4);
	/* y = relu([x0 + 0.5, -x1]) */
	mb_init_f32(&b, "w", (int64_t[]){2, 2, 1, 1}, 4, (float[]){1, 0, 0, -1});
	mb_init_f32(&b, "bias", (int64_t[]){2}, 1, (float[]){0.5f, 0});
	mb_node(&b, "Conv", "conv", (const char *[]){"x", "w", "bias", NULL}, "c");
	mb_node(&b, "Relu", "relu", (const char *[]){"c", NULL}, "r");
	mb_node(&b, "Flatten", "flat", (const char *[]){"r", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	struct engine *e;
	cr_assert_eq(engine_create(g, 3, &e), PRESSO_OK);
	float *x = engine_input(e, 0);
	for (int i = 0; i < 3 * 18; i++)
		x[i] = (float)((i * 7) % 11) - 5.0f;
	cr_assert_eq(engine_run(e, 3), PRESSO_OK);
	struct shape ys;
	const float *y = engine_output(e, 0, &ys);
	cr_assert_eq(ys.dims[1], 18);
	for (int n = 0; n < 3; n++)
		for (int c = 0; c < 2; c++)
			for (int p = 0; p < 9; p++) {
				float xv = x[(n * 2 + c) * 9 + p];
				float want = c == 0 ? fmaxf(xv + 0.5f, 0) : fmaxf(-xv, 0);
				cr_assert_eq(y[(n * 2 + c) * 9 + p], want, "y[%d][%d][%d]", n, c, p);
			}
	engine_free(e);
	graph_free(g);
	mb_free(&b);
}

/* --- the activation, arithmetic and normalisation ops ------------------------ */

/* Float rounding of a few operations in another order than the double
 * reference: a few ulp of values of order 1. */
#define OP_TOL 2e-6f

/* Dropout's mask output is fine while nothing reads it; a read is refused with
 * the reader named. */
Test(ops, dropout_mask_only_when_unused)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	Onnx__NodeProto *d = mb_node(&b, "Dropout", "drop", (const char *[]){"x", NULL}, "y");
	char *mask = strdup("mask");
	d->n_output = 2;
	char *outs[2] = {d->output[0], mask};
	d->output = outs;
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 1);
	cr_assert_eq(g->nodes[0].op, OP_IDENTITY);
	graph_free(g);
	mb_node(&b, "Relu", "reads_mask", (const char *[]){"mask", NULL}, "z");
	mb_output(&b, "z");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "Dropout output 1 ('mask') is read by node 'reads_mask'");
	mb_free(&b);
	free(mask);
}

/* Runs a one-input graph at batch 1 on x, returns the output (static buffer). */
static const float *run1(struct mb *b, const float *x, int n_x, int n_y)
{
	static float y[4096];
	struct graph *g;
	cr_assert_eq(load(b, &g), PRESSO_OK, "%s", status_msg());
	run(g, 1, x, n_x, y, n_y);
	graph_free(g);
	return y;
}

/* PRelu with a [C,1,1] slope (as exporters write it) broadcasts over NCHW. */
Test(ops, prelu_per_channel_slope)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){1, 3, 2, 2}, 4);
	float slope[3] = {0.1f, -2.0f, 0.5f};
	mb_init_f32(&b, "slope", (int64_t[]){3, 1, 1}, 3, slope);
	mb_node(&b, "PRelu", "prelu", (const char *[]){"x", "slope", NULL}, "y");
	mb_output(&b, "y");
	float x[12];
	fill(x, 12, 11);
	const float *y = run1(&b, x, 12, 12);
	for (int i = 0; i < 12; i++)
		cr_assert_eq(y[i], x[i] < 0 ? slope[i / 4] * x[i] : x[i], "y[%d]", i);
	mb_free(&b);
}

/* Pow with an int64 constant exponent 2 (as exporters write x ** 2) is x * x
 * exactly; Sqrt of it gives |x| back. */
Test(ops, pow_with_integer_exponent_and_sqrt)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 5}, 2);
	mb_init_i64(&b, "two", NULL, 0, (int64_t[]){2});
	mb_node(&b, "Pow", "sq", (const char *[]){"x", "two", NULL}, "p");
	mb_node(&b, "Sqrt", "root", (const char *[]){"p", NULL}, "y");
	mb_node(&b, "Mul", "twice", (const char *[]){"p", "p", NULL}, "q");
	mb_output(&b, "y");
	mb_output(&b, "q");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	struct engine *e;
	cr_assert_eq(engine_create(g, 1, &e), PRESSO_OK);
	float x[5] = {-3.0f, -0.5f, 0.0f, 1.25f, 7.0f};
	memcpy(engine_input(e, 0), x, sizeof x);
	cr_assert_eq(engine_run(e, 1), PRESSO_OK);
	const float *y = engine_output(e, 0, NULL), *q = engine_output(e, 1, NULL);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(y[i], fabsf(x[i]));
		cr_assert_eq(q[i], (x[i] * x[i]) * (x[i] * x[i]));
	}
	engine_free(e);
	graph_free(g);
	mb_free(&b);
}

/* Pad (constant mode, pads as an input, a value) around a 4-D tensor. */
Test(ops, pad_constant_4d)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){1, 2, 2, 3}, 4);
	mb_init_i64(&b, "pads", (int64_t[]){8}, 1, (int64_t[]){0, 1, 1, 0, 0, 0, 2, 1});
	mb_init_f32(&b, "value", NULL, 0, (float[]){-7.5f});
	mb_node(&b, "Pad", "pad", (const char *[]){"x", "pads", "value", NULL}, "y");
	mb_output(&b, "y");
	float x[12];
	fill(x, 12, 13);
	/* y is [1, 3, 5, 4]: channel 0 is padding, then rows 1..2 and columns 0..2 are x */
	const float *y = run1(&b, x, 12, 60);
	for (int c = 0; c < 3; c++)
		for (int h = 0; h < 5; h++)
			for (int w = 0; w < 4; w++) {
				bool in = c >= 1 && h >= 1 && h <= 2 && w <= 2;
				float want = in ? x[((c - 1) * 2 + (h - 1)) * 3 + w] : -7.5f;
				cr_assert_eq(y[(c * 5 + h) * 4 + w], want, "(%d,%d,%d)", c, h, w);
			}
	mb_free(&b);

	/* negative pads (cropping) and other modes are refused by name */
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){1, 2, 2, 3}, 4);
	mb_init_i64(&b, "pads", (int64_t[]){8}, 1, (int64_t[]){0, 0, -1, 0, 0, 0, 0, 0});
	mb_node(&b, "Pad", "crop", (const char *[]){"x", "pads", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'crop': Pad pads entry -1 is not supported");
	mb_free(&b);
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){1, 2, 2, 3}, 4);
	mb_init_i64(&b, "pads", (int64_t[]){8}, 1, (int64_t[]){0, 0, 1, 0, 0, 0, 0, 0});
	Onnx__NodeProto *p = mb_node(&b, "Pad", "mirror", (const char *[]){"x", "pads", NULL}, "y");
	mb_attr_string(&b, p, "mode", "reflect");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'mirror': Pad attribute mode other than constant");
	mb_free(&b);
}

/* ReduceMean over axes that are not next to each other, and over the spatial
 * axes without keepdims; the mean of everything with noop_with_empty_axes is
 * the input itself. */
Test(ops, reduce_mean_axes)
{
	float x[2 * 3 * 4];
	fill(x, 24, 17);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){2, 3, 4}, 3);
	Onnx__NodeProto *r = mb_node(&b, "ReduceMean", "r", (const char *[]){"x", NULL}, "y");
	mb_attr_ints(&b, r, "axes", (int64_t[]){0, -1}, 2);
	mb_output(&b, "y");
	const float *y = run1(&b, x, 24, 3);
	for (int j = 0; j < 3; j++) {
		double s = 0;
		for (int i = 0; i < 2; i++)
			for (int k = 0; k < 4; k++)
				s += x[(i * 3 + j) * 4 + k];
		cr_assert_float_eq(y[j], s / 8, OP_TOL, "y[%d]", j);
	}
	mb_free(&b);

	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){1, 2, 3, 4}, 4);
	r = mb_node(&b, "ReduceMean", "r", (const char *[]){"x", NULL}, "y");
	mb_attr_ints(&b, r, "axes", (int64_t[]){2, 3}, 2);
	mb_attr_int(&b, r, "keepdims", 0);
	mb_output(&b, "y");
	y = run1(&b, x, 24, 2);
	for (int c = 0; c < 2; c++) {
		double s = 0;
		for (int k = 0; k < 12; k++)
			s += x[c * 12 + k];
		cr_assert_float_eq(y[c], s / 12, OP_TOL, "y[%d]", c);
	}
	mb_free(&b);

	mb_init(&b, 18);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	r = mb_node(&b, "ReduceMean", "r", (const char *[]){"x", NULL}, "y");
	mb_attr_int(&b, r, "noop_with_empty_axes", 1);
	mb_output(&b, "y");
	y = run1(&b, x, 4, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(y[i], x[i]);
	mb_free(&b);
}

/* GELU as exporters write it, x * 0.5 * (1 + Erf(x / sqrt 2)), runs as its
 * decomposed ops and matches the double-precision formula. */
Test(ops, gelu_pattern)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 64}, 2);
	mb_init_f32(&b, "sqrt2", NULL, 0, (float[]){1.4142135f});
	mb_init_f32(&b, "one", NULL, 0, (float[]){1.0f});
	mb_init_f32(&b, "half", NULL, 0, (float[]){0.5f});
	mb_node(&b, "Div", "d", (const char *[]){"x", "sqrt2", NULL}, "t");
	mb_node(&b, "Erf", "e", (const char *[]){"t", NULL}, "u");
	mb_node(&b, "Add", "a", (const char *[]){"u", "one", NULL}, "v");
	mb_node(&b, "Mul", "m", (const char *[]){"x", "v", NULL}, "w");
	mb_node(&b, "Mul", "h", (const char *[]){"w", "half", NULL}, "y");
	mb_output(&b, "y");
	float x[64];
	for (int i = 0; i < 64; i++)
		x[i] = (float)(i - 32) / 8.0f;
	const float *y = run1(&b, x, 64, 64);
	for (int i = 0; i < 64; i++) {
		double want = x[i] * 0.5 * (1 + erf(x[i] / sqrt(2.0)));
		cr_assert_float_eq(y[i], want, OP_TOL * (1 + fabs(want)), "gelu(%g)", x[i]);
	}
	mb_free(&b);
}

/* Attention scores: a batched MatMul of two activations, Q [N,2,3,4] by K^T
 * [N,2,4,3] from a Transpose, scaled, Softmax on the last axis, times V. */
Test(ops, matmul_between_activations)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "q", (int64_t[]){-1, 2, 3, 4}, 4);
	mb_input(&b, "k", (int64_t[]){-1, 2, 3, 4}, 4);
	mb_init_f32(&b, "scale", NULL, 0, (float[]){2.0f});
	Onnx__NodeProto *t = mb_node(&b, "Transpose", "kt", (const char *[]){"k", NULL}, "kt");
	mb_attr_ints(&b, t, "perm", (int64_t[]){0, 1, 3, 2}, 4);
	mb_node(&b, "MatMul", "qk", (const char *[]){"q", "kt", NULL}, "s");
	mb_node(&b, "Div", "scaled", (const char *[]){"s", "scale", NULL}, "s2");
	Onnx__NodeProto *sm = mb_node(&b, "Softmax", "p", (const char *[]){"s2", NULL}, "p");
	mb_attr_int(&b, sm, "axis", -1);
	mb_node(&b, "MatMul", "pv", (const char *[]){"p", "k", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 0, "a MatMul of two activations is no compressible layer");
	free(ls);
	struct engine *e;
	cr_assert_eq(engine_create(g, 2, &e), PRESSO_OK, "%s", status_msg());
	float q[48], k[48];
	fill(q, 48, 19);
	fill(k, 48, 23);
	memcpy(engine_input(e, 0), q, sizeof q);
	memcpy(engine_input(e, 1), k, sizeof k);
	cr_assert_eq(engine_run(e, 2), PRESSO_OK);
	struct shape ys;
	const float *y = engine_output(e, 0, &ys);
	cr_assert_eq(shape_numel(&ys), 48);
	for (int bh = 0; bh < 4; bh++) {
		const float *qb = q + bh * 12, *kb = k + bh * 12;
		for (int i = 0; i < 3; i++) {
			double s[3], mx = -1e30, sum = 0;
			for (int j = 0; j < 3; j++) {
				s[j] = 0;
				for (int d = 0; d < 4; d++)
					s[j] += (double)qb[i * 4 + d] * kb[j * 4 + d];
				s[j] /= 2.0;
				mx = fmax(mx, s[j]);
			}
			for (int j = 0; j < 3; j++)
				sum += exp(s[j] - mx);
			for (int d = 0; d < 4; d++) {
				double want = 0;
				for (int j = 0; j < 3; j++)
					want += exp(s[j] - mx) / sum * kb[j * 4 + d];
				cr_assert_float_eq(y[bh * 12 + i * 4 + d], want, 1e-5, "y");
			}
		}
	}
	engine_free(e);
	graph_free(g);
	mb_free(&b);
}

/* Sum of three inputs with broadcasting; Sub and Div broadcast both ways. */
Test(ops, sum_sub_div_broadcast)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 3}, 3);
	mb_init_f32(&b, "row", (int64_t[]){3}, 1, (float[]){1.0f, 2.0f, 4.0f});
	mb_init_f32(&b, "col", (int64_t[]){2, 1}, 2, (float[]){-1.0f, 0.25f});
	mb_node(&b, "Sum", "s", (const char *[]){"x", "row", "col", NULL}, "s");
	mb_node(&b, "Sub", "d", (const char *[]){"row", "s", NULL}, "d");
	mb_node(&b, "Div", "q", (const char *[]){"d", "col", NULL}, "y");
	mb_output(&b, "y");
	float x[6];
	fill(x, 6, 29);
	float row[3] = {1.0f, 2.0f, 4.0f}, col[2] = {-1.0f, 0.25f};
	const float *y = run1(&b, x, 6, 6);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++) {
			float s = (x[i * 3 + j] + row[j]) + col[i];
			cr_assert_eq(y[i * 3 + j], (row[j] - s) / col[i], "(%d,%d)", i, j);
		}
	mb_free(&b);
}

/* Concat(x, x * 1, ..., x * (n - 1)) on channels: a DenseNet block
 * concatenates every earlier layer's output (torchvision's densenet121: 25
 * inputs at once). */
static void many_concat_model(struct mb *b, int n)
{
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 1, 2, 2}, 4);
	const char **ins = calloc((size_t)n + 1, sizeof *ins);
	char names[GRAPH_MAX_INPUTS + 2][2][16];
	cr_assert_leq(n, GRAPH_MAX_INPUTS + 1);
	ins[0] = "x";
	for (int i = 1; i < n; i++) {
		snprintf(names[i][0], sizeof names[i][0], "c%d", i);
		snprintf(names[i][1], sizeof names[i][1], "f%d", i);
		mb_init_f32(b, names[i][0], NULL, 0, (float[]){(float)i});
		mb_node(b, "Mul", names[i][1], (const char *[]){"x", names[i][0], NULL}, names[i][1]);
		ins[i] = names[i][1];
	}
	Onnx__NodeProto *c = mb_node(b, "Concat", "dense", ins, "y");
	mb_attr_int(b, c, "axis", 1);
	mb_output(b, "y");
	free(ins);
}

Test(ops, concat_of_as_many_inputs_as_a_densenet_block)
{
	enum { N_IN = 49 }; /* torchvision's densenet201 */
	struct mb b;
	many_concat_model(&b, N_IN);
	float x[4];
	fill(x, 4, 41);
	const float *y = run1(&b, x, 4, 4 * N_IN);
	for (int i = 0; i < N_IN; i++)
		for (int p = 0; p < 4; p++)
			cr_assert_eq(y[i * 4 + p], i ? x[p] * (float)i : x[p], "channel %d", i);
	mb_free(&b);

	many_concat_model(&b, GRAPH_MAX_INPUTS + 1);
	char want[64];
	snprintf(want, sizeof want, "Concat has %d inputs; presso takes at most %d",
		 GRAPH_MAX_INPUTS + 1, GRAPH_MAX_INPUTS);
	expect_error(&b, PRESSO_E_UNSUPPORTED, want);
	mb_free(&b);
}

/* InstanceNormalization: each (image, channel) normalised over the rest,
 * then scaled and shifted per channel (InstanceNorm2d with affine); and
 * PyTorch's GroupNorm export, an InstanceNormalization of scale 1 and B 0
 * between two Reshapes, which becomes one LayerNormalization. */
Test(ops, instance_normalization_and_group_norm)
{
	static const float scale[2] = {1.5f, 0.5f}, bias[2] = {0.1f, -0.2f};
	for (int group = 0; group < 2; group++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 2, 3, 3}, 4);
		const char *in = "x";
		if (group) { /* GroupNorm(1, 2) */
			mb_init_i64(&b, "grouped", (int64_t[]){3}, 1, (int64_t[]){0, 1, -1});
			mb_init_i64(&b, "back", (int64_t[]){4}, 1, (int64_t[]){0, 2, 3, 3});
			mb_init_f32(&b, "s", (int64_t[]){1}, 1, (float[]){1.0f});
			mb_init_f32(&b, "b", (int64_t[]){1}, 1, (float[]){0.0f});
			mb_node(&b, "Reshape", "to_groups", (const char *[]){"x", "grouped", NULL}, "g");
			in = "g";
		} else {
			mb_init_f32(&b, "s", (int64_t[]){2}, 1, scale);
			mb_init_f32(&b, "b", (int64_t[]){2}, 1, bias);
		}
		Onnx__NodeProto *n = mb_node(&b, "InstanceNormalization", "inorm",
					     (const char *[]){in, "s", "b", NULL}, group ? "n" : "y");
		mb_attr_float(&b, n, "epsilon", 1e-3f);
		if (group)
			mb_node(&b, "Reshape", "from_groups", (const char *[]){"n", "back", NULL}, "y");
		mb_output(&b, "y");
		struct graph *g;
		cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
		int n_ln = 0;
		for (int i = 0; i < g->n_nodes; i++)
			n_ln += g->nodes[i].op == OP_LAYERNORM;
		cr_assert_eq(n_ln, 1);
		cr_assert_eq(g->n_nodes, 3, "%s",
			     group ? "Reshape, LayerNorm, Reshape" : "LayerNorm, Mul, Add");
		float x[2 * 18], y[2 * 18];
		fill(x, 36, 61);
		run(g, 2, x, 36, y, 36);
		/* over each image's 9 (instance) or 18 (one group) values */
		int span = group ? 18 : 9;
		for (int o = 0; o < 36; o += span) {
			double m = 0, v = 0;
			for (int i = 0; i < span; i++)
				m += x[o + i];
			m /= span;
			for (int i = 0; i < span; i++)
				v += (x[o + i] - m) * (x[o + i] - m);
			v /= span;
			for (int i = 0; i < span; i++) {
				int c = ((o + i) / 9) % 2;
				double want = (x[o + i] - m) / sqrt(v + 1e-3);
				if (!group)
					want = want * scale[c] + bias[c];
				cr_assert_float_eq(y[o + i], want, 1e-5, "%s: element %d",
						   group ? "group" : "instance", o + i);
			}
		}
		graph_free(g);
		mb_free(&b);
	}
}

/* --- shapes and integer constants folded at load ----------------------------- */

/* x.view(x.size(0), -1) as a dynamic-batch export writes it: Shape, Gather,
 * Unsqueeze, Concat with -1, Reshape. The chain folds (the batch entry
 * becomes "copy dimension 0") and the graph runs at any batch. */
Test(fold, shape_gather_concat_reshape_with_dynamic_batch)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 3, 2}, 4);
	mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(&b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "minus1", (int64_t[]){1}, 1, (int64_t[]){-1});
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	Onnx__NodeProto *ga = mb_node(&b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "n");
	mb_attr_int(&b, ga, "axis", 0);
	mb_node(&b, "Unsqueeze", "n1", (const char *[]){"n", "axes0", NULL}, "n1");
	Onnx__NodeProto *c = mb_node(&b, "Concat", "target", (const char *[]){"n1", "minus1", NULL}, "t");
	mb_attr_int(&b, c, "axis", 0);
	mb_node(&b, "Reshape", "flat", (const char *[]){"x", "t", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 1, "only the Reshape remains");
	cr_assert_eq(g->nodes[0].op, OP_RESHAPE);
	cr_assert_geq(g->n_folded_const, 4);
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf),
			 "[N,12]");
	float x[36], y[36];
	fill(x, 36, 31);
	run(g, 3, x, 36, y, 36);
	cr_assert(memcmp(x, y, sizeof x) == 0);
	graph_free(g);
	mb_free(&b);
}

/* A static dimension gathered from the Shape of a batched tensor stays a
 * number; the batch entry beside static ones becomes the -1 of the Reshape;
 * Cast, Slice and integer arithmetic fold too. */
Test(fold, static_dims_slice_cast_and_arithmetic)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 6, 4}, 3);
	mb_init_i64(&b, "s0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "s1", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_i64(&b, "s3", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(&b, "two", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	/* [N, 6, 4][0:1] = [N]; [N, 6, 4][1:3] = [6, 4] -> [6 / 2, 4 * 2] = [3, 8] */
	mb_node(&b, "Slice", "head", (const char *[]){"xs", "s0", "s1", NULL}, "n");
	mb_node(&b, "Slice", "tail", (const char *[]){"xs", "s1", "s3", NULL}, "hw");
	mb_node(&b, "Div", "half", (const char *[]){"hw", "two", NULL}, "hw2");
	mb_init_i64(&b, "mul", (int64_t[]){2}, 1, (int64_t[]){1, 4});
	mb_node(&b, "Mul", "dbl", (const char *[]){"hw2", "mul", NULL}, "hw3");
	Onnx__NodeProto *cast = mb_node(&b, "Cast", "to_i32", (const char *[]){"hw3", NULL}, "hw4");
	mb_attr_int(&b, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
	Onnx__NodeProto *c = mb_node(&b, "Concat", "target", (const char *[]){"n", "hw4", NULL}, "t");
	mb_attr_int(&b, c, "axis", 0);
	mb_node(&b, "Reshape", "view", (const char *[]){"x", "t", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 1);
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf),
			 "[N,3,8]");
	graph_free(g);
	mb_free(&b);
}

/* PyTorch's sequence-first attention reshapes [T, N, E] to [T, N * heads,
 * E / heads] with a target computed from the Shape: the batch entry times a
 * constant is still a dimension that follows the batch (the Reshape's -1),
 * and so is a multiple of it divided by a divisor of its factor. The graph
 * runs at any batch. */
Test(fold, batch_times_heads_in_a_reshape_target)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4, 6}, 3);
	Onnx__NodeProto *t = mb_node(&b, "Transpose", "seq_first", (const char *[]){"x", NULL}, "xt");
	mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
	mb_init_i64(&b, "one", NULL, 0, (int64_t[]){1});
	mb_init_i64(&b, "two", NULL, 0, (int64_t[]){2});
	mb_init_i64(&b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "t4", (int64_t[]){1}, 1, (int64_t[]){4});
	mb_init_i64(&b, "d3", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(&b, "d24", (int64_t[]){1}, 1, (int64_t[]){24});
	mb_node(&b, "Shape", "shape", (const char *[]){"xt", NULL}, "s");
	Onnx__NodeProto *ga = mb_node(&b, "Gather", "batch", (const char *[]){"s", "one", NULL}, "n");
	mb_attr_int(&b, ga, "axis", 0);
	mb_node(&b, "Mul", "batch_heads", (const char *[]){"n", "two", NULL}, "nh");
	mb_node(&b, "Unsqueeze", "nh1", (const char *[]){"nh", "axes0", NULL}, "nh1");
	Onnx__NodeProto *c = mb_node(&b, "Concat", "target", (const char *[]){"t4", "nh1", "d3", NULL}, "tg");
	mb_attr_int(&b, c, "axis", 0);
	mb_node(&b, "Reshape", "heads", (const char *[]){"xt", "tg", NULL}, "r");
	t = mb_node(&b, "Transpose", "batch_first", (const char *[]){"r", NULL}, "rt");
	mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
	mb_node(&b, "Div", "batch_again", (const char *[]){"nh", "two", NULL}, "n2");
	mb_node(&b, "Unsqueeze", "n21", (const char *[]){"n2", "axes0", NULL}, "n21");
	c = mb_node(&b, "Concat", "target2", (const char *[]){"n21", "d24", NULL}, "tg2");
	mb_attr_int(&b, c, "axis", 0);
	mb_node(&b, "Reshape", "rows", (const char *[]){"rt", "tg2", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf),
			 "[N,24]");
	for (int batch = 1; batch <= 3; batch += 2) {
		float x[3 * 24], y[3 * 24];
		fill(x, batch * 24, 43);
		run(g, batch, x, batch * 24, y, batch * 24);
		/* y[m][t][f] (m < 2N) of x[m / 2][t][(m % 2) * 3 + f] */
		for (int m = 0; m < 2 * batch; m++)
			for (int tt = 0; tt < 4; tt++)
				for (int f = 0; f < 3; f++)
					cr_assert_eq(y[m * 12 + tt * 3 + f],
						     x[(m / 2) * 24 + tt * 6 + (m % 2) * 3 + f],
						     "batch %d: (%d,%d,%d)", batch, m, tt, f);
	}
	graph_free(g);
	mb_free(&b);

	/* the batch plus one, or over a number that does not divide it, is not */
	for (int k = 0; k < 2; k++) {
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 4, 6}, 3);
		mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
		mb_init_i64(&b, "two", NULL, 0, (int64_t[]){2});
		mb_init_i64(&b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
		mb_init_i64(&b, "d", (int64_t[]){1}, 1, (int64_t[]){-1});
		mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "s");
		ga = mb_node(&b, "Gather", "batch", (const char *[]){"s", "zero", NULL}, "n");
		mb_attr_int(&b, ga, "axis", 0);
		mb_node(&b, k ? "Div" : "Add", "arith", (const char *[]){"n", "two", NULL}, "m");
		mb_node(&b, "Unsqueeze", "m1", (const char *[]){"m", "axes0", NULL}, "m1");
		c = mb_node(&b, "Concat", "target", (const char *[]){"m1", "d", NULL}, "tg");
		mb_attr_int(&b, c, "axis", 0);
		mb_node(&b, "Reshape", "view", (const char *[]){"x", "tg", NULL}, "y");
		mb_output(&b, "y");
		expect_error(&b, PRESSO_E_UNSUPPORTED,
			     k ? "node 'arith': Div of a shape that depends on the batch size"
			       : "node 'arith': Add of a shape that depends on the batch size");
		mb_free(&b);
	}
}

/* F.interpolate(p, size=x.shape[-2:]) as PyTorch exports it: Resize sizes
 * from Shape(p)[0:2] and Shape(x)[2:4]. The first entry is the input's own
 * batch, so the batch is kept (FPN and U-Net decoders), at any batch. */
Test(fold, resize_to_the_size_of_another_tensor)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 4, 4}, 4);
	Onnx__NodeProto *mp = mb_node(&b, "MaxPool", "down", (const char *[]){"x", NULL}, "p");
	mb_attr_ints(&b, mp, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, mp, "strides", (int64_t[]){2, 2}, 2);
	mb_init_i64(&b, "s0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "s2", (int64_t[]){1}, 1, (int64_t[]){2});
	mb_init_i64(&b, "s4", (int64_t[]){1}, 1, (int64_t[]){4});
	mb_node(&b, "Shape", "shape_p", (const char *[]){"p", NULL}, "sp");
	mb_node(&b, "Shape", "shape_x", (const char *[]){"x", NULL}, "sx");
	mb_node(&b, "Slice", "nc", (const char *[]){"sp", "s0", "s2", NULL}, "nc");
	mb_node(&b, "Slice", "hw", (const char *[]){"sx", "s2", "s4", NULL}, "hw");
	Onnx__NodeProto *c = mb_node(&b, "Concat", "sizes", (const char *[]){"nc", "hw", NULL}, "sz");
	mb_attr_int(&b, c, "axis", 0);
	Onnx__NodeProto *r = mb_node(&b, "Resize", "up", (const char *[]){"p", "", "", "sz", NULL}, "y");
	mb_attr_string(&b, r, "coordinate_transformation_mode", "asymmetric");
	mb_attr_string(&b, r, "nearest_mode", "floor");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	for (int batch = 1; batch <= 3; batch += 2) {
		float x[3 * 32], y[3 * 32];
		fill(x, batch * 32, 47);
		run(g, batch, x, batch * 32, y, batch * 32);
		for (int nc = 0; nc < batch * 2; nc++)
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++) {
					const float *q = x + nc * 16 + (i / 2) * 2 * 4 + (j / 2) * 2;
					float m = fmaxf(fmaxf(q[0], q[1]), fmaxf(q[4], q[5]));
					cr_assert_eq(y[nc * 16 + i * 4 + j], m, "batch %d: (%d,%d,%d)", batch,
						     nc, i, j);
				}
	}
	graph_free(g);
	mb_free(&b);
}

/* A ViT's class token as PyTorch exports x.expand(n, -1, -1) at a fixed
 * batch: ConstantOfShape, Mul, Equal(shape, -1), Where(..., 1, shape), then
 * Expand of the token, concatenated before the patches. All of it folds to
 * the token itself (the shape [1, -1, -1] as a constant, as the exporter
 * writes it at batch 1). With a dynamic batch the Expand's shape starts with
 * the batch: it becomes an Expand node that repeats the one token to the
 * input's batch. */
static void class_token_model(struct mb *b, bool dynamic)
{
	static const float tok[8] = {0.5f, -1, 2, 0.25f, -0.75f, 3, -2, 1};
	mb_init(b, 17);
	mb_input(b, "x", (int64_t[]){dynamic ? -1 : 1, 4, 8}, 3);
	mb_init_f32(b, "cls", (int64_t[]){1, 1, 8}, 3, tok);
	mb_init_i64(b, "three", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(b, "minus", NULL, 0, (int64_t[]){-1});
	mb_init_i64(b, "rest", (int64_t[]){2}, 1, (int64_t[]){-1, -1});
	mb_init_i64(b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	Onnx__NodeProto *c;
	if (dynamic) { /* the batch from the Shape */
		mb_node(b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
		Onnx__NodeProto *ga =
			mb_node(b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "n");
		mb_attr_int(b, ga, "axis", 0);
		mb_node(b, "Unsqueeze", "n1", (const char *[]){"n", "axes0", NULL}, "n1");
		c = mb_node(b, "Concat", "want", (const char *[]){"n1", "rest", NULL}, "want");
		mb_attr_int(b, c, "axis", 0);
	} else { /* the batch as exported */
		mb_init_i64(b, "want", (int64_t[]){3}, 1, (int64_t[]){1, -1, -1});
	}
	Onnx__NodeProto *k = mb_node(b, "ConstantOfShape", "ones", (const char *[]){"three", NULL}, "ones");
	mb_attr_tensor(b, k, "value", mb_tensor_i64(b, "one", (int64_t[]){1}, 1, (int64_t[]){1}));
	mb_node(b, "Mul", "minus_ones", (const char *[]){"ones", "minus", NULL}, "mo");
	mb_node(b, "Equal", "is_minus", (const char *[]){"want", "mo", NULL}, "eq");
	mb_node(b, "Where", "keep", (const char *[]){"eq", "ones", "want", NULL}, "sh");
	mb_node(b, "Expand", "expand", (const char *[]){"cls", "sh", NULL}, "ce");
	c = mb_node(b, "Concat", "tokens", (const char *[]){"ce", "x", NULL}, "y");
	mb_attr_int(b, c, "axis", 1);
	mb_output(b, "y");
}

Test(fold, class_token_equal_where_expand)
{
	struct mb b;
	class_token_model(&b, false);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 1, "only the Concat remains");
	float x[32], y[40];
	fill(x, 32, 53);
	run(g, 1, x, 32, y, 40);
	static const float tok[8] = {0.5f, -1, 2, 0.25f, -0.75f, 3, -2, 1};
	cr_assert_arr_eq(y, tok, sizeof tok);
	cr_assert_arr_eq(y + 8, x, sizeof x);
	graph_free(g);
	mb_free(&b);

	class_token_model(&b, true);
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(g->n_nodes, 2, "the Expand and the Concat");
	cr_assert_eq(g->nodes[0].op, OP_EXPAND);
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf),
			 "[N,5,8]");
	for (int batch = 1; batch <= 3; batch += 2) {
		float xb[3 * 32], yb[3 * 40];
		fill(xb, batch * 32, 59);
		run(g, batch, xb, batch * 32, yb, batch * 40);
		for (int i = 0; i < batch; i++) {
			cr_assert_arr_eq(yb + i * 40, tok, sizeof tok, "image %d of %d", i, batch);
			cr_assert_arr_eq(yb + i * 40 + 8, xb + i * 32, sizeof x, "image %d of %d", i,
					 batch);
		}
	}
	graph_free(g);
	mb_free(&b);
}

/* A few bytes of model naming a huge constant (fuzz_onnx found a
 * ConstantOfShape of 671 M int64 elements: a 5 GiB allocation) are refused
 * by name, as is an Expand or a broadcast of constants that would grow past
 * the same bound; a model's real ones stay far below it. */
Test(fold, constants_that_grow_past_the_bound_are_refused)
{
	static const char *const ops[3] = {"ConstantOfShape", "Expand", "Add"};
	static float zeros[1 << 15];
	for (int k = 0; k < 3; k++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 3}, 2);
		mb_init_i64(&b, "big", (int64_t[]){2}, 1, (int64_t[]){1 << 15, 1 << 14});
		mb_init_f32(&b, "one", (int64_t[]){1, 1}, 2, (float[]){1.0f});
		mb_init_f32(&b, "col", (int64_t[]){1 << 15, 1}, 2, zeros);
		mb_init_f32(&b, "row", (int64_t[]){1, 1 << 14}, 2, zeros);
		if (k == 0)
			mb_node(&b, "ConstantOfShape", "grow", (const char *[]){"big", NULL}, "c");
		else if (k == 1)
			mb_node(&b, "Expand", "grow", (const char *[]){"one", "big", NULL}, "c");
		else
			mb_node(&b, "Add", "grow", (const char *[]){"col", "row", NULL}, "c");
		mb_node(&b, "ReduceMean", "use", (const char *[]){"c", NULL}, "m");
		mb_node(&b, "Add", "y", (const char *[]){"x", "m", NULL}, "y");
		mb_output(&b, "y");
		char want[96];
		snprintf(want, sizeof want, "node 'grow': %s makes a constant of 536870912 elements",
			 ops[k]);
		expect_error(&b, PRESSO_E_UNSUPPORTED, want);
		mb_free(&b);
	}
}

/* Each fold's output counts whole against the same bound, not only what
 * grows: a copy of a large constant (fuzz_onnx: a Mul of a 939 MB
 * ConstantOfShape by one, whose two copies passed its 2 GB limit) is refused
 * by name when the two together would pass it. */
Test(fold, copies_of_constants_count_against_the_bound)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 3}, 2);
	/* 100 M elements: 800 MiB as the fold counts a ConstantOfShape (int64
	 * room), 400 MiB as the float copy */
	mb_init_i64(&b, "big", (int64_t[]){2}, 1, (int64_t[]){100, 1 << 20});
	mb_node(&b, "ConstantOfShape", "fill", (const char *[]){"big", NULL}, "c");
	mb_node(&b, "Neg", "copy", (const char *[]){"c", NULL}, "d");
	mb_node(&b, "ReduceMean", "use", (const char *[]){"d", NULL}, "m");
	mb_node(&b, "Add", "y", (const char *[]){"x", "m", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'copy': Neg makes a constant of 104857600 elements");
	mb_free(&b);
}

/* ConstantOfShape over a constant shape is a weight (filled with its value);
 * over a shape that follows the batch it is refused by name. */
Test(fold, constant_of_shape)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 3}, 2);
	mb_init_i64(&b, "shape", (int64_t[]){1}, 1, (int64_t[]){3});
	Onnx__NodeProto *k = mb_node(&b, "ConstantOfShape", "fill", (const char *[]){"shape", NULL}, "c");
	mb_attr_tensor(&b, k, "value", mb_tensor_f32(&b, "v", (int64_t[]){1}, 1, (float[]){0.25f}));
	mb_node(&b, "Add", "add", (const char *[]){"x", "c", NULL}, "y");
	mb_output(&b, "y");
	float x[6], y[6];
	fill(x, 6, 37);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	run(g, 2, x, 6, y, 6);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(y[i], x[i] + 0.25f);
	graph_free(g);
	mb_free(&b);

	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 3}, 2);
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	mb_node(&b, "ConstantOfShape", "zeros", (const char *[]){"xs", NULL}, "c");
	mb_node(&b, "Add", "add", (const char *[]){"x", "c", NULL}, "y");
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED,
		     "node 'zeros': ConstantOfShape of a shape that depends on the batch size");
	mb_free(&b);

	/* a Gather of a computed tensor at uneven indices says so */
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	mb_init_i64(&b, "i", (int64_t[]){3}, 1, (int64_t[]){0, 1, 3});
	Onnx__NodeProto *ga = mb_node(&b, "Gather", "pick", (const char *[]){"x", "i", NULL}, "y");
	mb_attr_int(&b, ga, "axis", 1);
	mb_output(&b, "y");
	expect_error(&b, PRESSO_E_UNSUPPORTED, "node 'pick': Gather of a computed tensor at indices that do not step evenly");
	mb_free(&b);
}

/* A fused QKV projection split three ways (Split with sizes, along the last
 * axis of a batched tensor) and a strided Slice over two axes of one part. */
Test(ops, split_and_slice_of_computed_tensors)
{
	struct mb b;
	float w[4 * 12];
	fill(w, 48, 41);
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 6, 4}, 3);
	mb_init_f32(&b, "w", (int64_t[]){4, 12}, 2, w);
	mb_init_i64(&b, "sizes", (int64_t[]){3}, 1, (int64_t[]){4, 4, 4});
	mb_init_i64(&b, "starts", (int64_t[]){2}, 1, (int64_t[]){5, 1});
	mb_init_i64(&b, "ends", (int64_t[]){2}, 1, (int64_t[]){-100, INT64_MAX});
	mb_init_i64(&b, "axes", (int64_t[]){2}, 1, (int64_t[]){1, -1});
	mb_init_i64(&b, "steps", (int64_t[]){2}, 1, (int64_t[]){-2, 2});
	mb_node(&b, "MatMul", "qkv", (const char *[]){"x", "w", NULL}, "t");
	Onnx__NodeProto *sp = mb_node(&b, "Split", "heads", (const char *[]){"t", "sizes", NULL}, "q");
	mb_attr_int(&b, sp, "axis", 2);
	char *extra[3] = {sp->output[0], strdup("k"), strdup("v")};
	sp->output = extra;
	sp->n_output = 3;
	mb_node(&b, "Slice", "pick", (const char *[]){"v", "starts", "ends", "axes", "steps", NULL}, "s");
	mb_output(&b, "q");
	mb_output(&b, "k");
	mb_output(&b, "s");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[2]].shape, true, buf, sizeof buf),
			 "[N,3,2]", "rows 5, 3, 1 and columns 1, 3");
	struct engine *e;
	cr_assert_eq(engine_create(g, 2, &e), PRESSO_OK, "%s", status_msg());
	float x[48];
	fill(x, 48, 43);
	memcpy(engine_input(e, 0), x, sizeof x);
	cr_assert_eq(engine_run(e, 2), PRESSO_OK);
	const float *q = engine_output(e, 0, NULL), *k = engine_output(e, 1, NULL);
	const float *s = engine_output(e, 2, NULL);
	for (int n = 0; n < 2; n++)
		for (int r = 0; r < 6; r++)
			for (int c = 0; c < 12; c++) {
				float acc = 0;
				for (int d = 0; d < 4; d++)
					acc += x[(n * 6 + r) * 4 + d] * w[d * 12 + c];
				float got = c < 4 ? q[(n * 6 + r) * 4 + c]
					  : c < 8 ? k[(n * 6 + r) * 4 + c - 4] : NAN;
				if (c < 8)
					cr_assert_float_eq(got, acc, 1e-5, "(%d,%d,%d)", n, r, c);
				int si = (5 - r) / 2, sj = (c - 8 - 1) / 2;
				if (c >= 8 && r % 2 == 1 && (c - 8) % 2 == 1)
					cr_assert_float_eq(s[(n * 3 + si) * 2 + sj], acc, 1e-5, "slice (%d,%d,%d)",
							   n, r, c);
			}
	engine_free(e);
	graph_free(g);
	free(extra[1]);
	free(extra[2]);
	mb_free(&b);
}

/* Gather of a computed tensor at one index (the class token, x[:, 0], and
 * x[:, -1]) or at evenly stepping ones: Slice (and Squeeze). */
Test(ops, gather_of_computed_tensors)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 5, 3}, 3);
	mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(&b, "last", NULL, 0, (int64_t[]){-1});
	mb_init_i64(&b, "evens", (int64_t[]){3}, 1, (int64_t[]){0, 2, 4});
	Onnx__NodeProto *n = mb_node(&b, "Gather", "cls", (const char *[]){"x", "zero", NULL}, "c");
	mb_attr_int(&b, n, "axis", 1);
	n = mb_node(&b, "Gather", "tail", (const char *[]){"x", "last", NULL}, "t");
	mb_attr_int(&b, n, "axis", 1);
	n = mb_node(&b, "Gather", "even", (const char *[]){"x", "evens", NULL}, "e");
	mb_attr_int(&b, n, "axis", -2);
	mb_output(&b, "c");
	mb_output(&b, "t");
	mb_output(&b, "e");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	char buf[64];
	cr_assert_str_eq(shape_format(&g->values[g->outputs[0]].shape, true, buf, sizeof buf), "[N,3]");
	cr_assert_str_eq(shape_format(&g->values[g->outputs[2]].shape, true, buf, sizeof buf), "[N,3,3]");
	struct engine *e;
	cr_assert_eq(engine_create(g, 2, &e), PRESSO_OK, "%s", status_msg());
	float x[30];
	fill(x, 30, 47);
	memcpy(engine_input(e, 0), x, sizeof x);
	cr_assert_eq(engine_run(e, 2), PRESSO_OK);
	const float *c = engine_output(e, 0, NULL), *t = engine_output(e, 1, NULL);
	const float *ev = engine_output(e, 2, NULL);
	for (int i = 0; i < 2; i++)
		for (int d = 0; d < 3; d++) {
			cr_assert_eq(c[i * 3 + d], x[i * 15 + d]);
			cr_assert_eq(t[i * 3 + d], x[i * 15 + 12 + d]);
			for (int k = 0; k < 3; k++)
				cr_assert_eq(ev[(i * 3 + k) * 3 + d], x[i * 15 + 2 * k * 3 + d]);
		}
	engine_free(e);
	graph_free(g);
	mb_free(&b);
}

/* --- 1-D layers ---------------------------------------------------------------- */

/* One image of a Conv1d (group g, no padding past pad_l on the left; the
 * right padding only decides len_out), written out from the operator's text. */
static void conv1d_ref(const float *x, int c_in, int len, const float *w, const float *bias,
		       int c_out, int k, int stride, int pad_l, int dil, int group, float *y,
		       int len_out)
{
	int cig = c_in / group, cog = c_out / group;
	for (int o = 0; o < c_out; o++)
		for (int t = 0; t < len_out; t++) {
			double acc = bias ? bias[o] : 0.0;
			for (int ci = 0; ci < cig; ci++)
				for (int j = 0; j < k; j++) {
					int pos = t * stride - pad_l + j * dil;
					if (pos >= 0 && pos < len)
						acc += (double)w[(o * cig + ci) * k + j] *
						       x[((o / cog) * cig + ci) * len + pos];
				}
			y[o * len_out + t] = (float)acc;
		}
}

/* Conv1d, BatchNorm1d, ReLU, MaxPool1d, a grouped dilated Conv1d and a [C, 1]
 * bias, as PyTorch exports them over [N, C, L]: they run as 2-D layers over
 * [N, C, 1, L] between one Unsqueeze and one Squeeze, and give the 1-D
 * result. */
Test(ops, conv1d_layers_run_as_2d_layers_over_one_row)
{
	enum { B = 2, C = 3, L = 12, O = 4, L1 = 7, L2 = 6, L3 = 4 };
	float w1[O * C * 3], b1[O], w2[O * 2 * 2], bias[O], sc[O], sh[O], mean[O], var[O];
	fill(w1, O * C * 3, 3);
	fill(b1, O, 5);
	fill(w2, O * 2 * 2, 7);
	fill(bias, O, 9);
	fill(mean, O, 13);
	for (int i = 0; i < O; i++) {
		sc[i] = 1.0f + 0.25f * (float)i;
		sh[i] = 0.1f * (float)i - 0.2f;
		var[i] = 0.5f + 0.5f * (float)i;
	}
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, C, L}, 3);
	mb_init_f32(&b, "w1", (int64_t[]){O, C, 3}, 3, w1);
	mb_init_f32(&b, "b1", (int64_t[]){O}, 1, b1);
	mb_init_f32(&b, "w2", (int64_t[]){O, 2, 2}, 3, w2);
	mb_init_f32(&b, "bias", (int64_t[]){O, 1}, 2, bias);
	mb_init_f32(&b, "sc", (int64_t[]){O}, 1, sc);
	mb_init_f32(&b, "sh", (int64_t[]){O}, 1, sh);
	mb_init_f32(&b, "mean", (int64_t[]){O}, 1, mean);
	mb_init_f32(&b, "var", (int64_t[]){O}, 1, var);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "c1", (const char *[]){"x", "w1", "b1", NULL}, "a");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3}, 1);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 2}, 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2}, 1);
	mb_node(&b, "BatchNormalization", "bn",
		(const char *[]){"a", "sc", "sh", "mean", "var", NULL}, "bnout");
	mb_node(&b, "Relu", "relu", (const char *[]){"bnout", NULL}, "r");
	n = mb_node(&b, "MaxPool", "pool", (const char *[]){"r", NULL}, "p");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){2}, 1);
	n = mb_node(&b, "Conv", "c2", (const char *[]){"p", "w2", NULL}, "c");
	mb_attr_int(&b, n, "group", 2);
	mb_attr_ints(&b, n, "dilations", (int64_t[]){2}, 1);
	mb_node(&b, "Add", "add", (const char *[]){"c", "bias", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	int n_unsq = 0, n_sq = 0, n_conv = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		n_unsq += g->nodes[i].op == OP_UNSQUEEZE;
		n_sq += g->nodes[i].op == OP_SQUEEZE;
		n_conv += g->nodes[i].op == OP_CONV;
	}
	cr_assert_eq(n_unsq, 1, "one Unsqueeze, at the input");
	cr_assert_eq(n_sq, 1, "one Squeeze, at the output");
	cr_assert_eq(n_conv, 2);
	cr_assert_eq(g->n_nodes, 7,
		     "Unsqueeze, Conv (the BatchNorm folded in), Relu, MaxPool, Conv, Add, Squeeze");
	const struct shape *ys = &g->values[g->outputs[0]].shape;
	cr_assert_eq(ys->n_dims, 3);
	cr_assert_eq(ys->dims[1], O);
	cr_assert_eq(ys->dims[2], L3);
	float x[B * C * L], y[B * O * L3];
	fill(x, B * C * L, 17);
	run(g, B, x, B * C * L, y, B * O * L3);
	for (int i = 0; i < B; i++) {
		float a[O * L1], p[O * L2], want[O * L3];
		conv1d_ref(x + i * C * L, C, L, w1, b1, O, 3, 2, 1, 1, 1, a, L1);
		for (int o = 0; o < O; o++)
			for (int t = 0; t < L1; t++) {
				float v = a[o * L1 + t];
				v = (v - mean[o]) / sqrtf(var[o] + 1e-5f) * sc[o] + sh[o];
				a[o * L1 + t] = v > 0 ? v : 0;
			}
		for (int o = 0; o < O; o++)
			for (int t = 0; t < L2; t++)
				p[o * L2 + t] = fmaxf(a[o * L1 + t], a[o * L1 + t + 1]);
		conv1d_ref(p, O, L2, w2, NULL, O, 2, 1, 0, 2, 2, want, L3);
		for (int o = 0; o < O; o++)
			for (int t = 0; t < L3; t++)
				cr_assert_float_eq(y[(i * O + o) * L3 + t], want[o * L3 + t] + bias[o],
						   1e-5, "image %d channel %d position %d", i, o, t);
	}
	graph_free(g);
	mb_free(&b);
}

/* --- QDQ models ------------------------------------------------------------------ */

/* A weight as PyTorch's QAT export writes it (float, QuantizeLinear and
 * DequantizeLinear per output channel, int8 zero points) folds to its grid at
 * load; an activation's QuantizeLinear -> DequantizeLinear rounds half to
 * even, saturates to uint8 and dequantizes. */
static void qdq_model(struct mb *b, const char *reader, bool other_scale, bool per_axis_act)
{
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 3}, 2);
	mb_init_f32(b, "w", (int64_t[]){2, 3}, 2, (float[]){0.26f, -0.74f, 1.0f, 0.5f, 0.05f, -2.0f});
	mb_init_f32(b, "ws", (int64_t[]){2}, 1, (float[]){0.1f, 0.25f});
	mb_init_bytes(b, "wz", (int64_t[]){2}, 1, ONNX__TENSOR_PROTO__DATA_TYPE__INT8,
		      (int8_t[]){0, 0});
	mb_init_f32(b, "xs", NULL, 0, (float[]){0.5f});
	mb_init_f32(b, "xs3", (int64_t[]){3}, 1, (float[]){0.5f, 0.5f, 0.5f});
	mb_init_f32(b, "xs2", NULL, 0, (float[]){0.25f});
	mb_init_bytes(b, "xz", NULL, 0, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, (uint8_t[]){3});
	Onnx__NodeProto *n = mb_node(b, "QuantizeLinear", "wq", (const char *[]){"w", "ws", "wz", NULL}, "wi");
	mb_attr_int(b, n, "axis", 0);
	n = mb_node(b, "DequantizeLinear", "wdq", (const char *[]){"wi", "ws", "wz", NULL}, "wf");
	mb_attr_int(b, n, "axis", 0);
	mb_node(b, "QuantizeLinear", "xq",
		(const char *[]){"x", per_axis_act ? "xs3" : "xs", "xz", NULL}, "xi");
	mb_node(b, reader, "xdq", (const char *[]){"xi", other_scale ? "xs2" : "xs", "xz", NULL},
		"xf");
	n = mb_node(b, "Gemm", "fc", (const char *[]){"xf", "wf", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
}

Test(qdq, weights_fold_and_activations_are_fake_quantized)
{
	struct mb b;
	qdq_model(&b, "DequantizeLinear", false, false);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	int n_fq = 0;
	const float *w = NULL;
	for (int i = 0; i < g->n_nodes; i++) {
		n_fq += g->nodes[i].op == OP_FAKEQUANT;
		if (g->nodes[i].op == OP_GEMM)
			w = g->values[g->nodes[i].inputs[1]].data;
	}
	cr_assert_eq(n_fq, 1);
	cr_assert_not_null(w);
	static const float grid[6] = {0.3f, -0.7f, 1.0f, 0.5f, 0.0f, -2.0f};
	for (int i = 0; i < 6; i++)
		cr_assert_float_eq(w[i], grid[i], 1e-6, "weight %d: %g", i, w[i]);
	/* x / 0.5 + 3, rounded half to even, in [0, 255] */
	float x[3] = {0.25f, -2.0f, 200.0f}, y[2];
	float xq[3] = {0.0f, -1.5f, 126.0f}; /* 0.5 -> 0; -4 + 3 = -1 -> 0; 400 + 3 -> 255 */
	run(g, 1, x, 3, y, 2);
	for (int o = 0; o < 2; o++) {
		float want = 0;
		for (int k = 0; k < 3; k++)
			want += xq[k] * grid[o * 3 + k];
		cr_assert_float_eq(y[o], want, 1e-4, "output %d: %g, want %g", o, y[o], want);
	}
	graph_free(g);
	mb_free(&b);
}

Test(qdq, unsupported_forms_are_refused_by_name)
{
	struct mb b;
	qdq_model(&b, "Relu", false, false);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "QuantizeLinear output 'xi' is read by node 'xdq'");
	mb_free(&b);
	qdq_model(&b, "DequantizeLinear", true, false);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "must read a QuantizeLinear with its scale and zero point");
	mb_free(&b);
	qdq_model(&b, "DequantizeLinear", false, true);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "of an activation per axis is not supported");
	mb_free(&b);
}

/* F.normalize(x, dim=1) as PyTorch exports it at opset 13: ReduceL2, Clip,
 * the norm expanded to Shape(x) (an Expand of a computed tensor: a Mul by
 * ones of [1, 4]), Div; at batch 3, each row has norm 1. */
Test(ops, normalize_expands_a_computed_norm)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	Onnx__NodeProto *n = mb_node(&b, "ReduceL2", "norm", (const char *[]){"x", NULL}, "l");
	mb_attr_ints(&b, n, "axes", (int64_t[]){1}, 1);
	mb_init_f32(&b, "eps", NULL, 0, (float[]){1e-12f});
	mb_node(&b, "Clip", "clamp", (const char *[]){"l", "eps", NULL}, "lc");
	mb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, "s");
	mb_node(&b, "Expand", "expand", (const char *[]){"lc", "s", NULL}, "le");
	mb_node(&b, "Div", "div", (const char *[]){"x", "le", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	float x[12], y[12];
	fill(x, 12, 71);
	run(g, 3, x, 12, y, 12);
	for (int r = 0; r < 3; r++) {
		double norm = 0;
		for (int k = 0; k < 4; k++)
			norm += (double)x[r * 4 + k] * x[r * 4 + k];
		norm = sqrt(norm);
		for (int k = 0; k < 4; k++)
			cr_assert_float_eq(y[r * 4 + k], x[r * 4 + k] / norm, 1e-6, "row %d, %d", r, k);
	}
	graph_free(g);
	mb_free(&b);
}

/* --- LSTM, GRU and RNN ------------------------------------------------------------ */

/* x [N, 6, 4] -> an LSTM (batch first, hidden 3) whose initial states are
 * zeros of the batch size as PyTorch writes them: ConstantOfShape of
 * [Shape(x)[0], 1, 3], sliced as a stacked LSTM's layers are; Y_h ->
 * Reshape [N, 3]. `attr` adds an
 * attribute presso lacks ("clip", "activations"), `fill` makes the states
 * non-zero, `elsewhere` has a Transpose read them instead. */
static float lstm_w(int k) { return 0.05f * (float)(k % 7 - 3); }
static float lstm_r(int k) { return -0.03f * (float)(k % 5 - 2); }

static void lstm_model(struct mb *b, const char *attr, float fill_value, bool elsewhere)
{
	mb_init(b, 14);
	mb_input(b, "x", (int64_t[]){-1, 6, 4}, 3);
	float w[12 * 4], r[12 * 3];
	for (int k = 0; k < 48; k++)
		w[k] = lstm_w(k);
	for (int k = 0; k < 36; k++)
		r[k] = lstm_r(k);
	mb_init_f32(b, "W", (int64_t[]){1, 12, 4}, 3, w);
	mb_init_f32(b, "R", (int64_t[]){1, 12, 3}, 3, r);
	mb_init_i64(b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(b, "axes1", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_i64(b, "dh", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_i64(b, "hh", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_init_i64(b, "s0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(b, "s1", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_node(b, "Shape", "shape", (const char *[]){"x", NULL}, "xs");
	Onnx__NodeProto *ga = mb_node(b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "n");
	mb_attr_int(b, ga, "axis", 0);
	mb_node(b, "Unsqueeze", "n1", (const char *[]){"n", "axes0", NULL}, "n1");
	Onnx__NodeProto *c = mb_node(b, "Concat", "sshape", (const char *[]){"n1", "dh", "hh", NULL}, "ss");
	mb_attr_int(b, c, "axis", 0);
	Onnx__NodeProto *z = mb_node(b, "ConstantOfShape", "zeros", (const char *[]){"ss", NULL}, "z");
	if (fill_value != 0.0f)
		mb_attr_tensor(b, z, "value", mb_tensor_f32(b, "", (int64_t[]){1}, 1, &fill_value));
	mb_node(b, "Slice", "layer0", (const char *[]){"z", "s0", "s1", "axes1", NULL}, "h0");
	const char *state = elsewhere ? "" : "h0";
	Onnx__NodeProto *n = mb_node(b, "LSTM", "lstm",
				     (const char *[]){"x", "W", "R", "", "", state, state, NULL}, "");
	mb_node_output(b, n, "yh");
	mb_attr_int(b, n, "hidden_size", 3);
	mb_attr_int(b, n, "layout", 1);
	if (strcmp(attr, "clip") == 0)
		mb_attr_float(b, n, "clip", 1.0f);
	else if (strcmp(attr, "activations") == 0)
		mb_attr_string(b, n, "activations", "Relu");
	const char *out = "yh";
	if (elsewhere) {
		mb_node(b, "Add", "mix", (const char *[]){"yh", "h0", NULL}, "yz");
		out = "yz";
	}
	mb_init_i64(b, "fs", (int64_t[]){2}, 1, (int64_t[]){-1, 3});
	mb_node(b, "Reshape", "flat", (const char *[]){out, "fs", NULL}, "y");
	mb_output(b, "y");
}

Test(import, lstm_with_pytorch_zero_states_runs_as_its_definition)
{
	struct mb b;
	lstm_model(&b, "", 0.0f, false);
	struct graph *g;
	cr_assert_eq(load(&b, &g), PRESSO_OK, "%s", status_msg());
	/* the input projection is a MatMul layer, the LSTM reads it */
	int n_lstm = 0, n_mm = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		n_lstm += g->nodes[i].op == OP_LSTM;
		n_mm += g->nodes[i].op == OP_MATMUL;
		if (g->nodes[i].op == OP_LSTM) {
			cr_assert(g->nodes[i].a.rnn_projected);
			cr_assert_eq(g->nodes[i].inputs[RNN_IN_H0], -1, "zero states are absent");
			cr_assert_eq(g->nodes[i].a.rnn_output, RNN_OUT_H);
		}
	}
	cr_assert_eq(n_lstm, 1, "Y is not read: one node, for Y_h");
	cr_assert_eq(n_mm, 1);
	/* Y_h of the first of two sequences against the LSTM definition */
	float x[2 * 6 * 4], y[2 * 3];
	fill(x, 48, 7);
	run(g, 2, x, 48, y, 6);
	double h[3] = {0}, cst[3] = {0};
	for (int t = 0; t < 6; t++) {
		double gsum[12];
		for (int k = 0; k < 12; k++) {
			gsum[k] = 0;
			for (int i = 0; i < 4; i++)
				gsum[k] += (double)lstm_w(k * 4 + i) * x[t * 4 + i];
			for (int j = 0; j < 3; j++)
				gsum[k] += (double)lstm_r(k * 3 + j) * h[j];
		}
		for (int j = 0; j < 3; j++) { /* gates i, o, f, c */
			double i = 1 / (1 + exp(-gsum[j])), o = 1 / (1 + exp(-gsum[3 + j]));
			double f = 1 / (1 + exp(-gsum[6 + j])), cc = tanh(gsum[9 + j]);
			cst[j] = f * cst[j] + i * cc;
			h[j] = o * tanh(cst[j]);
		}
	}
	for (int j = 0; j < 3; j++)
		cr_assert_float_eq(y[j], (float)h[j], 1e-5, "Y_h[%d]: %g, by hand %g", j, y[j], h[j]);
	graph_free(g);
	mb_free(&b);
}
Test(import_errors, lstm_forms_presso_lacks_are_refused_by_name)
{
	struct mb b;
	lstm_model(&b, "clip", 0.0f, false);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "clip");
	mb_free(&b);
	lstm_model(&b, "activations", 0.0f, false);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "activations");
	mb_free(&b);
	/* ones of the batch size are not zero states */
	lstm_model(&b, "", 1.0f, false);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "ConstantOfShape");
	mb_free(&b);
	/* zeros of the batch size read by anything but a recurrent layer */
	lstm_model(&b, "", 0.0f, true);
	expect_error(&b, PRESSO_E_UNSUPPORTED, "but as the initial state of an LSTM, GRU or RNN");
	cr_assert(strstr(status_msg(), "node 'zeros'") && strstr(status_msg(), "read by node 'mix'"),
		  "%s", status_msg());
	mb_free(&b);
}
