/* test_run.c - `presso run` as a user runs it (src/cli/run.c):
 *  - ONNX test data sets of Debian's libonnx-testdata whose ops presso
 *    supports match their expected outputs (exit 0), and a wrong expectation
 *    exits 1 unless the tolerance allows it;
 *  - an NPY input through LeNet gives, in the NPY it writes, exactly what the
 *    FP32 engine computes on the same input, over more than one run of 64, and
 *    the same input and output as a test data set folder compare equal;
 *  - a model with a fixed batch runs a multiple of it, several runs joined;
 *  - the INT8 engine: a .presso file and an ONNX model with a policy and a
 *    config calibrate the same and write the same outputs;
 *  - usage and input errors exit 2 naming the problem.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "model/engine.h"
#include "model/graph.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* INT8 logits against FP32 ones: a few quantization steps of the logits'
 * range, far below the gap between classes it would take to hide a bug such
 * as a wrong input layout (logits of LeNet span about 20). */
#define INT8_VS_FP32_MAX_ABS 1.5

static char *dir;

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

TestSuite(run, .init = setup, .fini = teardown);

static const char *at(const char *rel)
{
	static char buf[8][1024];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", dir, rel);
	return p;
}

static int presso(const char *args, char **out, char **err)
{
	int rc = fx_presso(args, out, err);
	cr_assert_geq(rc, 0, "could not run presso %s", args);
	return rc;
}

static bool have_testdata(void)
{
	struct stat st;
	return stat(FX_ONNX_NODE_DIR "/test_relu/test_data_set_0", &st) == 0;
}

Test(run, onnx_test_data_sets_match)
{
	if (!have_testdata())
		cr_skip_test("libonnx-testdata is not installed");
	static const char *const cases[] = {
		"test_relu", "test_add", "test_conv_with_strides_padding",
		"test_conv_with_strides_no_padding", "test_gemm_default_matrix_bias",
		"test_gemm_all_attributes", "test_gemm_transposeA", "test_maxpool_2d_default",
		"test_averagepool_2d_default", "test_softmax_example", "test_flatten_axis1",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char args[2048], *out, *err;
		snprintf(args, sizeof args,
			 "run --model '" FX_ONNX_NODE_DIR "/%s/model.onnx' --input '" FX_ONNX_NODE_DIR
			 "/%s/test_data_set_0'",
			 cases[i], cases[i]);
		cr_assert_eq(presso(args, &out, &err), 0, "%s: %s%s", cases[i], out, err);
		cr_assert(strstr(out, "max abs error") && strstr(out, "within atol"), "%s: %s",
			  cases[i], out);
		cr_assert(strstr(out, "argmax per row:"), "%s", out);
		free(out);
		free(err);
	}
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = fx_read(from, &n);
	cr_assert_not_null(b, "%s", from);
	cr_assert(fx_write(to, b, n));
	free(b);
}

Test(run, wrong_expected_outputs_exit_1)
{
	if (!have_testdata())
		cr_skip_test("libonnx-testdata is not installed");
	/* Relu's model on LeakyRelu's data: the negative inputs differ */
	mkdir(at("set"), 0755);
	copy_file(FX_ONNX_NODE_DIR "/test_leakyrelu/test_data_set_0/input_0.pb", at("set/input_0.pb"));
	copy_file(FX_ONNX_NODE_DIR "/test_leakyrelu/test_data_set_0/output_0.pb",
		  at("set/output_0.pb"));
	char args[2048], *out, *err;
	snprintf(args, sizeof args, "run --model '" FX_ONNX_NODE_DIR "/test_relu/model.onnx' --input '%s'",
		 at("set"));
	cr_assert_eq(presso(args, &out, &err), 1, "%s%s", out, err);
	cr_assert(strstr(out, "values outside atol 1e-05 + rtol 0.001"), "%s", out);
	free(out);
	free(err);
	/* LeakyRelu's alpha 0.1 times inputs under 3: within an absolute 0.5 */
	strcat(args, " --atol 0.5");
	cr_assert_eq(presso(args, &out, &err), 0, "%s%s", out, err);
	free(out);
	free(err);
}

/* A float NPY file of shape dims written by the library's writer. */
static void save_npy(const char *path, const int64_t *dims, int nd, const float *x)
{
	cr_assert_eq(dataset_save_npy_tensor(path, dims, nd, x), PRESSO_OK, "%s", status_msg());
}

static float *load_npy(const char *path, int64_t *dims, int *nd)
{
	float *x;
	cr_assert_eq(dataset_load_npy_tensor(path, 8, dims, nd, &x), PRESSO_OK, "%s", status_msg());
	return x;
}

/* n deterministic pseudo-images [n,1,28,28] in roughly the normalised range. */
static float *inputs(int n)
{
	float *x = malloc(sizeof(float) * (size_t)n * 784);
	uint32_t s = 99;
	for (int i = 0; i < n * 784; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = (float)(s >> 8) / (float)(1u << 24) * 3.5f - 0.8f;
	}
	return x;
}

/* What the FP32 engine gives for x on LeNet, in one batch of n. */
static float *engine_logits(const float *x, int n)
{
	struct graph *g;
	struct engine *e;
	cr_assert_eq(graph_load_onnx(fx_src("models/lenet.onnx"), &g), PRESSO_OK);
	cr_assert_eq(engine_create(g, n, &e), PRESSO_OK);
	memcpy(engine_input(e, 0), x, sizeof(float) * (size_t)n * 784);
	cr_assert_eq(engine_run(e, n), PRESSO_OK);
	float *y = malloc(sizeof(float) * (size_t)n * 10);
	memcpy(y, engine_output(e, 0, NULL), sizeof(float) * (size_t)n * 10);
	engine_free(e);
	graph_free(g);
	return y;
}

/* A TensorProto file of float data. */
static void save_pb(const char *path, const char *name, const int64_t *dims, int nd,
		    const float *x)
{
	struct mb b;
	mb_init(&b, 13);
	Onnx__TensorProto *t = mb_tensor_f32(&b, name, dims, nd, x);
	size_t n = onnx__tensor_proto__get_packed_size(t);
	uint8_t *buf = malloc(n);
	onnx__tensor_proto__pack(t, buf);
	cr_assert(fx_write(path, buf, n));
	free(buf);
	mb_free(&b);
}

Test(run, npy_round_trip_over_two_runs)
{
	const int n = 70; /* runs of 64 and 6 */
	float *x = inputs(n);
	int64_t xd[4] = {n, 1, 28, 28};
	save_npy(at("x.npy"), xd, 4, x);
	char args[2048], *out, *err;
	snprintf(args, sizeof args, "run --model '%s' --input '%s' -o '%s'",
		 fx_src("models/lenet.onnx"), at("x.npy"), at("y.npy"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "written:") && strstr(out, "'logits' [70,10]"), "%s", out);
	free(out);
	free(err);
	int64_t yd[8];
	int nd;
	float *y = load_npy(at("y.npy"), yd, &nd);
	cr_assert(nd == 2 && yd[0] == n && yd[1] == 10);
	float *want = engine_logits(x, n);
	for (int i = 0; i < n * 10; i++)
		cr_assert_eq(y[i], want[i], "logit %d: %g, engine %g", i, y[i], want[i]);

	/* the same as a test data set: the comparison finds no error */
	mkdir(at("set"), 0755);
	save_pb(at("set/input_0.pb"), "input", xd, 4, x);
	save_pb(at("set/output_0.pb"), "logits", (int64_t[]){n, 10}, 2, y);
	snprintf(args, sizeof args, "run --model '%s' --input '%s'", fx_src("models/lenet.onnx"),
		 at("set"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "max abs error 0, max rel error 0"), "%s", out);
	/* the summary: the first row's argmax is the engine's */
	int best = 0;
	for (int c = 1; c < 10; c++)
		if (want[c] > want[best])
			best = c;
	char needle[64];
	snprintf(needle, sizeof needle, "argmax per row: %d ", best);
	cr_assert(strstr(out, needle), "%s", out);
	cr_assert(strstr(out, "... (70 rows)"), "%s", out);
	free(out);
	free(err);
	free(x);
	free(y);
	free(want);
}

Test(run, fixed_batch_model_runs_a_multiple_of_it)
{
	if (!have_testdata())
		cr_skip_test("libonnx-testdata is not installed");
	/* test_relu's model takes x [3,4,5]: a fixed batch of 3 */
	const char *model = FX_ONNX_NODE_DIR "/test_relu/model.onnx";
	float x[6 * 20];
	for (int i = 0; i < 120; i++)
		x[i] = (float)(i % 7) - 3.0f;
	save_npy(at("x6.npy"), (int64_t[]){6, 4, 5}, 3, x);
	char args[2048], *out, *err;
	snprintf(args, sizeof args, "run --model '%s' --input '%s' -o '%s'", model, at("x6.npy"),
		 at("y6.npy"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	int64_t yd[8];
	int nd;
	float *y = load_npy(at("y6.npy"), yd, &nd);
	cr_assert(nd == 3 && yd[0] == 6 && yd[1] == 4 && yd[2] == 5);
	for (int i = 0; i < 120; i++)
		cr_assert_eq(y[i], x[i] > 0 ? x[i] : 0.0f);
	free(y);
	/* 4 rows are no multiple of 3 */
	save_npy(at("x4.npy"), (int64_t[]){4, 4, 5}, 3, x);
	snprintf(args, sizeof args, "run --model '%s' --input '%s'", model, at("x4.npy"));
	cr_assert_eq(presso(args, &out, &err), 2, "%s", out);
	cr_assert(strstr(err, "x4.npy: a tensor of shape [4,4,5], but model input 'x' is [3,4,5]") &&
			  strstr(err, "multiple of it"),
		  "%s", err);
	free(out);
	free(err);
}

Test(run, int8_engine_from_presso_file_and_from_policy, .timeout = 120)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"calibration\": 64, \"validation\": 64, \"test\": 64}}}",
		 fx_src("models/lenet.onnx"));
	cr_assert(fx_write(at("c.json"), body, strlen(body)));
	const int n = 5;
	float *x = inputs(n);
	save_npy(at("x.npy"), (int64_t[]){n, 1, 28, 28}, 4, x);
	char args[4096], *out, *err;
	snprintf(args, sizeof args, "compress --quiet --config '%s' --policy int8 -o '%s'",
		 at("c.json"), at("m.presso"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	snprintf(args, sizeof args, "run --model '%s' --input '%s' -o '%s'", at("m.presso"),
		 at("x.npy"), at("q1.npy"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	snprintf(args, sizeof args, "run --model '%s' --policy int8 --config '%s' --input '%s' -o '%s'",
		 fx_src("models/lenet.onnx"), at("c.json"), at("x.npy"), at("q2.npy"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	int64_t d1[8], d2[8];
	int n1, n2;
	float *q1 = load_npy(at("q1.npy"), d1, &n1), *q2 = load_npy(at("q2.npy"), d2, &n2);
	cr_assert(n1 == 2 && n2 == 2 && d1[0] == n && d2[0] == n);
	float *f = engine_logits(x, n);
	for (int i = 0; i < n * 10; i++) {
		cr_assert_eq(q1[i], q2[i], "value %d: .presso %g, policy %g", i, q1[i], q2[i]);
		cr_assert(fabs(q1[i] - f[i]) < INT8_VS_FP32_MAX_ABS, "value %d: INT8 %g, FP32 %g", i,
			  q1[i], f[i]);
	}
	free(q1);
	free(q2);
	free(f);
	free(x);
}

Test(run, usage_and_input_errors_exit_2)
{
	float x[784] = {0};
	save_npy(at("x.npy"), (int64_t[]){1, 1, 28, 28}, 4, x);
	save_npy(at("bad.npy"), (int64_t[]){1, 784}, 2, x);
	const char *lenet = fx_src("models/lenet.onnx");
	/* M: LeNet, X: a good input, B: a bad one, D: a folder with no .pb */
	struct {
		const char *args, *needle;
	} cases[] = {
		{"run --input X", "--model is required"},
		{"run --model M", "--input is required"},
		{"run --model M --input X --policy int8", "--policy and --config go together"},
		{"run --model m.presso --input X --policy int8 --config c.json", "already quantized"},
		{"run --model M --input X -o y.txt", "must end in .npy"},
		{"run --model M --input X --atol -1", "--atol must be a number >= 0"},
		{"run --model M --input X --rtol x", "--rtol must be a number >= 0"},
		{"run --model M --input B",
		 "bad.npy: a tensor of shape [1,784], but model input 'input' is [N,1,28,28]"},
		{"run --model M --input X.missing", "x.npy.missing"},
		{"run --model M --input D", "no input_0.pb"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char args[4096], *out, *err;
		size_t pos = 0;
		for (const char *c = cases[i].args; *c && pos + 1200 < sizeof args; c++) {
			const char *sub = *c == 'M' ? lenet : *c == 'X' ? at("x.npy")
							 : *c == 'B' ? at("bad.npy")
							 : *c == 'D' ? dir : NULL;
			if (sub)
				pos += (size_t)snprintf(args + pos, sizeof args - pos, "'%s'", sub);
			else
				args[pos++] = *c;
		}
		args[pos] = '\0';
		cr_assert_eq(presso(args, &out, &err), 2, "%s: %s%s", args, out, err);
		cr_assert(strstr(err, cases[i].needle), "%s: %s", args, err);
		cr_assert_str_eq(out, "", "%s", args);
		free(out);
		free(err);
	}
	char *out, *err;
	cr_assert_eq(presso("run --help", &out, &err), 0);
	cr_assert(strstr(out, "--input") && strstr(out, "test_data_set") && strstr(out, "--atol"),
		  "%s", out);
	free(out);
	free(err);
	cr_assert_eq(presso("--help", &out, &err), 0);
	cr_assert(strstr(out, "  run "), "%s", out);
	free(out);
	free(err);
}
