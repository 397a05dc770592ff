/* test_batch.c - models whose batch is fixed (data/feed.h) and inputs that are
 * not NCHW images.
 *
 * The fixed-batch models are the shipped LeNet rewritten as an exporter with a
 * fixed batch writes it: input [B,1,28,28] and its Flatten replaced by a Reshape
 * to the constant shape [B,400] (as the ONNX model zoo's mnist-8 does), so the
 * graph cannot run any other batch. B = 1 is the common case; B = 3 makes every
 * split size leave a short last run. Through `presso eval`, `compress` (both
 * formats) and a tiny `search`, each must score exactly what the dynamic-batch
 * model scores on the same images: the FP32 engine computes an image the same
 * whatever else is in its batch, calibration sees the same values, and
 * "rounding": "nearest" keeps GPTQ's row sampling (which follows the runs) out.
 * A pruned policy goes through statistics repair over the runs of a fixed
 * batch (one pass per layer, then calibration of the folded graph), which
 * rounds differently from the one-run repair: it must agree to within a point.
 *
 * The other inputs: a [N,25,10] input and a [N,784] MLP fed from NPY arrays.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* Accuracy points a pruned policy's repair over runs may move the result by:
 * the same a, b per channel, but calibration of the folded graph instead of
 * the corrected activations (float rounding of a few ranges). */
#define REPAIR_RUNS_TOLERANCE_PTS 1.0

static char *dir;
static char *paths[64];
static int n_paths;

static const char *path(const char *name)
{
	cr_assert_lt(n_paths, 64);
	paths[n_paths] = strdup(fx_join(dir, name));
	return paths[n_paths++];
}

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
	for (int i = 0; i < n_paths; i++)
		free(paths[i]);
	n_paths = 0;
}

TestSuite(batch, .init = setup, .fini = teardown);

static int presso(const char *args, char **out, char **err)
{
	int rc = fx_presso(args, out, err);
	cr_assert_geq(rc, 0, "could not run presso %s", args);
	return rc;
}

/* models/lenet.onnx with a fixed batch b: input dimension 0 and the output's
 * set to b, the Flatten turned into a Reshape to [b, 400]. Everything added is
 * malloc'd, so the unpacked model frees it. */
static const char *write_fixed_lenet(int b)
{
	size_t n;
	char *bytes = fx_read(fx_src("models/lenet.onnx"), &n);
	cr_assert_not_null(bytes);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, (const uint8_t *)bytes);
	free(bytes);
	cr_assert_not_null(m);
	Onnx__GraphProto *g = m->graph;
	Onnx__ValueInfoProto *ends[2] = {g->input[0], g->output[0]};
	for (int k = 0; k < 2; k++) {
		Onnx__TensorShapeProto__Dimension *d = ends[k]->type->tensor_type->shape->dim[0];
		if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
			free(d->dim_param);
		d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		d->dim_value = b;
	}
	int flattens = 0;
	for (size_t i = 0; i < g->n_node; i++) {
		Onnx__NodeProto *node = g->node[i];
		if (strcmp(node->op_type, "Flatten") != 0)
			continue;
		flattens++;
		free(node->op_type);
		node->op_type = strdup("Reshape");
		node->input = realloc(node->input, 2 * sizeof *node->input);
		node->input[1] = strdup("fixed_batch_shape");
		node->n_input = 2;
		for (size_t a = 0; a < node->n_attribute; a++)
			onnx__attribute_proto__free_unpacked(node->attribute[a], NULL);
		node->n_attribute = 0;
	}
	cr_assert_eq(flattens, 1, "the shipped LeNet has one Flatten");
	Onnx__TensorProto *t = malloc(sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = strdup("fixed_batch_shape");
	t->n_dims = 1;
	t->dims = malloc(sizeof *t->dims);
	t->dims[0] = 2;
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->n_int64_data = 2;
	t->int64_data = malloc(2 * sizeof *t->int64_data);
	t->int64_data[0] = b;
	t->int64_data[1] = 400;
	g->initializer = realloc(g->initializer, (g->n_initializer + 1) * sizeof *g->initializer);
	g->initializer[g->n_initializer++] = t;
	size_t size = onnx__model_proto__get_packed_size(m);
	uint8_t *out = malloc(size);
	onnx__model_proto__pack(m, out);
	onnx__model_proto__free_unpacked(m, NULL);
	char name[64];
	snprintf(name, sizeof name, "lenet_b%d.onnx", b);
	const char *p = path(name);
	cr_assert(fx_write(p, out, size));
	free(out);
	return p;
}

/* A LeNet config on Fashion-MNIST with small splits; sizes divisible by 3 where
 * a statistics pass uses them, so B = 3 calibrates on the same images. */
static const char *config(const char *name, const char *model, const char *extra)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"%s\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 96, \"validation\": 200, \"test\": 301}},"
		 "\"eval\": {\"batch\": 64},"
		 "\"quant\": {\"rounding\": \"nearest\", \"repair_images\": 48}%s%s}",
		 name, model, extra && *extra ? ", " : "", extra ? extra : "");
	char file[256];
	snprintf(file, sizeof file, "%s.json", name);
	const char *p = path(file);
	cr_assert(fx_write(p, body, strlen(body)));
	return p;
}

static cJSON *eval_json(const char *cfg, const char *more)
{
	char args[2048], *out, *err;
	snprintf(args, sizeof args, "eval --json --config '%s' %s", cfg, more);
	cr_assert_eq(presso(args, &out, &err), 0, "presso %s: %s", args, err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	free(out);
	free(err);
	return j;
}

static double num(const cJSON *j, const char *obj, const char *key)
{
	const cJSON *o = obj ? cJSON_GetObjectItem(j, obj) : j;
	const cJSON *v = cJSON_GetObjectItem(o, key);
	cr_assert(cJSON_IsNumber(v), "no %s.%s", obj ? obj : "", key);
	return v->valuedouble;
}

Test(batch, fixed_batch_model_loads_with_its_batch)
{
	for (int b = 1; b <= 3; b += 2) {
		struct graph *g;
		cr_assert_eq(graph_load_onnx(write_fixed_lenet(b), &g), PRESSO_OK, "%s", status_msg());
		const struct value *in = &g->values[g->inputs[0]];
		cr_assert(!in->batched, "batch %d: the input's batch is fixed", b);
		cr_assert_eq(in->shape.dims[0], b);
		graph_free(g);
	}
}

Test(batch, eval_equals_dynamic_batch, .timeout = 300)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *dyn = config("dyn", fx_src("models/lenet.onnx"), NULL);
	cJSON *want = eval_json(dyn, "");
	cJSON *want_q = eval_json(dyn, "--policy int8");
	for (int b = 1; b <= 3; b += 2) {
		char name[16];
		snprintf(name, sizeof name, "fixed%d", b);
		const char *cfg = config(name, write_fixed_lenet(b), NULL);
		cJSON *got = eval_json(cfg, "");
		cr_assert_eq(num(got, NULL, "images"), 301);
		cr_assert_eq(num(got, "fp32", "correct"), num(want, "fp32", "correct"),
			     "batch %d: FP32 %g correct, dynamic %g", b, num(got, "fp32", "correct"),
			     num(want, "fp32", "correct"));
		cr_assert_gt(num(got, "fp32", "images_per_s"), 0);
		cJSON_Delete(got);
		got = eval_json(cfg, "--policy int8");
		cr_assert_eq(num(got, "quantized", "correct"), num(want_q, "quantized", "correct"),
			     "batch %d: int8 %g correct, dynamic %g", b,
			     num(got, "quantized", "correct"), num(want_q, "quantized", "correct"));
		cr_assert_eq(num(got, "quantized", "size_bytes"),
			     num(want_q, "quantized", "size_bytes"));
		cr_assert_gt(num(got, "quantized", "latency_us"), 0);
		cJSON_Delete(got);
	}
	cJSON_Delete(want);
	cJSON_Delete(want_q);
}

/* "compressed:  NN.NN% top-1" of presso compress's output. */
static double compressed_accuracy(const char *out)
{
	const char *p = strstr(out, "compressed:");
	cr_assert_not_null(p, "%s", out);
	return strtod(p + strlen("compressed:"), NULL);
}

static double compress(const char *cfg, const char *policy, const char *output)
{
	char args[4096], *out, *err;
	snprintf(args, sizeof args, "compress --quiet --config '%s' --policy '%s' -o '%s'", cfg,
		 policy, output);
	cr_assert_eq(presso(args, &out, &err), 0, "presso %s: %s", args, err);
	double acc = compressed_accuracy(out);
	free(out);
	free(err);
	return acc;
}

Test(batch, compress_both_formats_keep_the_batch, .timeout = 300)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *dyn = config("dyn", fx_src("models/lenet.onnx"), NULL);
	const char *pruned = path("pruned.json");
	const char *pol = "{\"default\": {\"bits\": 8}, \"layers\": {\"/fc1/Gemm\": "
			  "{\"prune\": 0.5, \"prune_kind\": \"structured\"}}}";
	cr_assert(fx_write(pruned, pol, strlen(pol)));
	double want = compress(dyn, "int8", path("dyn.onnx"));
	double want_pruned = compress(dyn, pruned, path("dyn_pruned.presso"));
	for (int b = 1; b <= 3; b += 2) {
		char name[64];
		snprintf(name, sizeof name, "fixed%d", b);
		const char *cfg = config(name, write_fixed_lenet(b), NULL);
		snprintf(name, sizeof name, "fixed%d.onnx", b);
		const char *onnx = path(name);
		snprintf(name, sizeof name, "fixed%d.presso", b);
		const char *pfile = path(name);
		cr_assert_eq(compress(cfg, "int8", onnx), want, "batch %d", b);
		cr_assert_eq(compress(cfg, "int8", pfile), want, "batch %d", b);
		double got = compress(cfg, pruned, path(b == 1 ? "p1.presso" : "p3.presso"));
		cr_assert(fabs(got - want_pruned) <= REPAIR_RUNS_TOLERANCE_PTS,
			  "batch %d: pruned %.2f%%, dynamic %.2f%%", b, got, want_pruned);

		/* the QDQ export keeps the fixed batch in its input and output */
		size_t n;
		char *bytes = fx_read(onnx, &n);
		cr_assert_not_null(bytes);
		Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, (const uint8_t *)bytes);
		free(bytes);
		cr_assert_not_null(m);
		const Onnx__ValueInfoProto *ends[2] = {m->graph->input[0], m->graph->output[0]};
		for (int k = 0; k < 2; k++) {
			const Onnx__TensorShapeProto__Dimension *d =
				ends[k]->type->tensor_type->shape->dim[0];
			cr_assert(d->value_case ==
						  ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
					  d->dim_value == b,
				  "batch %d: %s's dimension 0 is not %d", b, ends[k]->name, b);
		}
		onnx__model_proto__free_unpacked(m, NULL);

		/* the .presso model scores the same through eval --model */
		char more[2048];
		snprintf(more, sizeof more, "--model '%s'", pfile);
		cJSON *j = eval_json(cfg, more);
		const cJSON *q = cJSON_GetObjectItem(j, "quantized");
		const cJSON *acc = q ? cJSON_GetObjectItem(q, "accuracy")
				     : cJSON_GetObjectItem(j, "accuracy");
		cr_assert(cJSON_IsNumber(acc), "%s", cJSON_PrintUnformatted(j));
		/* compress prints two decimals */
		cr_assert(fabs(acc->valuedouble - want) < 0.0051, "batch %d: %.4f vs %.2f", b,
			  acc->valuedouble, want);
		cJSON_Delete(j);
	}
}

static char *rows(const char *db, const char *sql)
{
	char *r = fx_rows(db, sql);
	cr_assert_not_null(r, "%s: %s", db, sql);
	return r;
}

Test(batch, search_equals_dynamic_batch, .timeout = 300)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *space = "\"space\": {\"default\": {\"bits\": [4, 8]}},"
			    "\"objectives\": {\"maximize\": \"accuracy\", \"minimize\": [\"size\"]},"
			    "\"search\": {\"strategy\": \"random\", \"seed\": 3, \"max_trials\": 4}";
	const char *cfgs[2] = {config("sdyn", fx_src("models/lenet.onnx"), space),
			       config("sfix", write_fixed_lenet(1), space)};
	const char *dbs[2] = {path("dyn.db"), path("fix.db")};
	char *got[2];
	for (int i = 0; i < 2; i++) {
		char args[4096], *out, *err;
		snprintf(args, sizeof args, "search --quiet --workers 1 --config '%s' --db '%s'",
			 cfgs[i], dbs[i]);
		cr_assert_eq(presso(args, &out, &err), 0, "presso %s: %s", args, err);
		free(out);
		free(err);
		got[i] = rows(dbs[i], "select number, policy_sha256, accuracy, size_bytes "
				      "from trials order by number");
	}
	cr_assert_gt(strlen(got[0]), 0);
	cr_assert_str_eq(got[1], got[0], "fixed batch:\n%s\ndynamic:\n%s", got[1], got[0]);
	free(got[0]);
	free(got[1]);
}

/* ---- inputs that are not NCHW images, from NPY --------------------------- */

/* An NPY 1.0 file of a C-order array: '<f4' or '|u1' (dtype), the shape. */
static void write_npy(const char *p, const char *dtype, const int64_t *shape, int nd,
		      const void *data, size_t elem)
{
	char dict[256], dims[128] = "";
	size_t count = 1, at = 0;
	for (int i = 0; i < nd; i++) {
		at += (size_t)snprintf(dims + at, sizeof dims - at, "%lld,%s", (long long)shape[i],
				       i + 1 < nd ? " " : "");
		count *= (size_t)shape[i];
	}
	int len = snprintf(dict, sizeof dict,
			   "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", dtype, dims);
	int total = 10 + len + 1;
	int pad = (64 - total % 64) % 64;
	size_t n = (size_t)(total + pad) + count * elem;
	unsigned char *buf = malloc(n);
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	uint16_t hl = (uint16_t)(len + pad + 1);
	buf[8] = (unsigned char)(hl & 0xff);
	buf[9] = (unsigned char)(hl >> 8);
	memcpy(buf + 10, dict, (size_t)len);
	memset(buf + 10 + len, ' ', (size_t)pad);
	buf[10 + len + pad] = '\n';
	memcpy(buf + total + pad, data, count * elem);
	cr_assert(fx_write(p, buf, n));
	free(buf);
}

/* Images [n, ...] of deterministic bytes and labels y = (sum of the first 10
 * values) % 3, written as NPY with the given per-image shape. */
static void write_npy_dataset(const char *images, const char *labels, const int64_t *shape,
			      int nd, int64_t n)
{
	int64_t full[4] = {n};
	size_t per = 1;
	for (int i = 0; i < nd; i++) {
		full[i + 1] = shape[i];
		per *= (size_t)shape[i];
	}
	unsigned char *x = malloc((size_t)n * per);
	int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
	uint32_t s = 7;
	for (int64_t i = 0; i < n; i++) {
		int sum = 0;
		for (size_t k = 0; k < per; k++) {
			s = s * 1103515245u + 12345u;
			x[(size_t)i * per + k] = (unsigned char)(s >> 24);
			if (k < 10)
				sum += x[(size_t)i * per + k];
		}
		y[i] = sum % 3;
	}
	write_npy(images, "|u1", full, nd + 1, x, 1);
	write_npy(labels, "<i8", (int64_t[]){n}, 1, y, 8);
	free(x);
	free(y);
}

/* input [N, dims...] -> Flatten -> Gemm to 3 classes. */
static const char *write_flat_model(const char *name, const int64_t *dims, int nd, int64_t k)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t in[4] = {-1};
	for (int i = 0; i < nd; i++)
		in[i + 1] = dims[i];
	mb_input(&b, "x", in, nd + 1);
	float *w = malloc(sizeof(float) * (size_t)(3 * k));
	for (int64_t i = 0; i < 3 * k; i++)
		w[i] = (float)((i * 37 % 101) - 50) / 500.0f;
	mb_init_f32(&b, "w", (int64_t[]){3, k}, 2, w);
	mb_init_f32(&b, "bias", (int64_t[]){3}, 1, (float[]){0.1f, -0.2f, 0.05f});
	mb_node(&b, "Flatten", "flat", (const char *[]){"x", NULL}, "f");
	Onnx__NodeProto *gm = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "w", "bias", NULL},
				      "y");
	mb_attr_int(&b, gm, "transB", 1);
	mb_output(&b, "y");
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	const char *p = path(name);
	cr_assert(fx_write(p, bytes, n));
	mb_free(&b);
	free(w);
	return p;
}

static const char *npy_config(const char *name, const char *model, const char *images,
			      const char *labels)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"%s\", \"model\": \"%s\", \"data\": {\"format\": \"npy\","
		 "\"train_images\": \"%s\", \"train_labels\": \"%s\","
		 "\"test_images\": \"%s\", \"test_labels\": \"%s\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.5], \"std\": [0.25]},"
		 "\"splits\": {\"calibration\": 20, \"validation\": 30, \"test\": 0}}}",
		 name, model, images, labels, images, labels);
	char file[256];
	snprintf(file, sizeof file, "%s.json", name);
	const char *p = path(file);
	cr_assert(fx_write(p, body, strlen(body)));
	return p;
}

Test(batch, non_image_inputs_from_npy)
{
	struct {
		const char *name;
		int64_t model_dims[3];
		int model_nd;
		int64_t data_dims[3];
		int data_nd;
	} cases[] = {
		{"seq", {25, 10}, 2, {25, 10}, 2},      /* [N,25,10] from [n,25,10] */
		{"mlp_img", {784}, 1, {28, 28}, 2},     /* [N,784] from [n,28,28] */
		{"mlp_vec", {784}, 1, {784}, 1},        /* [N,784] from [n,784] */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char name[64];
		int64_t k = 1;
		for (int d = 0; d < cases[i].model_nd; d++)
			k *= cases[i].model_dims[d];
		snprintf(name, sizeof name, "%s.onnx", cases[i].name);
		const char *model = write_flat_model(name, cases[i].model_dims, cases[i].model_nd, k);
		snprintf(name, sizeof name, "%s_x.npy", cases[i].name);
		const char *x = path(name);
		snprintf(name, sizeof name, "%s_y.npy", cases[i].name);
		const char *y = path(name);
		write_npy_dataset(x, y, cases[i].data_dims, cases[i].data_nd, 60);
		const char *cfg = npy_config(cases[i].name, model, x, y);
		cJSON *j = eval_json(cfg, "--policy int8");
		cr_assert_eq(num(j, NULL, "images"), 60, "%s", cases[i].name);
		cr_assert_geq(num(j, "fp32", "accuracy"), 0);
		cr_assert_geq(num(j, "quantized", "accuracy"), 0);
		cJSON_Delete(j);
	}
}
