/* test_onnx_export.c - the ONNX export in QDQ form: the shipped LeNet quantized
 * at W8A8 and at a low-bit policy, written, parsed back with protobuf-c, and
 * checked against the quantized model it came from (every uint8 activation as a
 * QuantizeLinear -> DequantizeLinear pair with the engine's parameters, narrow
 * activations clipped first, int8 weights equal to the engine's with per-axis
 * scales, int32 biases, opset 13, graph names kept); bad output paths fail
 * cleanly and leave nothing behind; `presso compress` end to end.
 *
 * No per-test .timeout: when timed tests overlap (--jobs 2), Criterion 2.4's
 * runner leaks a 48-byte record, which fails the ASan build; ctest's TIMEOUT
 * bounds the file instead. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/engine.h"
#include "model/graph.h"
#include "onnx.pb-c.h"
#include "format/onnx_export.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "transform/transform.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* calibration images: few, the structure does not depend on the ranges */
#define CALIB_IMAGES 200

/* W4A5 by default, ternary conv2, 3-bit fc1 reading 4-bit activations, binary
 * fc3, 8-bit conv1 input */
static const char *LOW_BIT_POLICY =
	"{\"default\": {\"bits\": 4, \"act_bits\": 5, \"bias_correction\": true}, \"layers\": {"
	"\"/conv1/Conv\": {\"bits\": 8, \"act_bits\": 8}, \"/conv2/Conv\": {\"bits\": 2},"
	"\"/fc1/Gemm\": {\"bits\": 3, \"act_bits\": 4}, \"/fc3/Gemm\": {\"bits\": 1}}}";

struct fixture {
	struct graph *g;
	struct calib *cal;
	struct policy *pol;
	struct qmodel *qm;
	char *dir;
	Onnx__ModelProto *model;
};

/* A model of Fashion-MNIST's input (a path) quantized by policy (JSON text
 * or a shorthand), exported and read back. */
static void build_model(struct fixture *f, const char *model, const char *policy)
{
	memset(f, 0, sizeof *f);
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	cr_assert_eq(graph_load_onnx(model, &f->g), PRESSO_OK, "%s", status_msg());
	struct dataset *train;
	cr_assert_eq(dataset_load_idx(FX_FMNIST_TRAIN_IMAGES,
				      FX_FMNIST_TRAIN_LABELS, &train),
		     PRESSO_OK);
	struct split sp;
	cr_assert_eq(split_range(train->n, CALIB_IMAGES, &sp), PRESSO_OK);
	struct normalize norm = {.scale = 1.0f / 255, .n_channels = 1, .mean = {0.2860f},
				 .std = {0.3530f}};
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(f->g, &ls, &nl), PRESSO_OK);
	enum presso_status s = policy[0] == '{' ? policy_parse(policy, "p", ls, nl, &f->pol)
						: policy_load(policy, ls, nl, &f->pol);
	cr_assert_eq(s, PRESSO_OK, "%s", status_msg());
	free(ls);
	if (transform_needed(f->pol)) {
		/* pruned or factorised: the exported graph is the transformed one */
		struct transform_result tr;
		cr_assert_eq(transform_apply(f->g, f->pol, &tr), PRESSO_OK, "%s", status_msg());
		graph_free(f->g);
		policy_free(f->pol);
		f->g = tr.g;
		f->pol = tr.pol;
		tr.g = NULL;
		tr.pol = NULL;
		transform_result_free(&tr);
	}
	cr_assert_eq(calib_run(f->g, train, &norm, &sp, 100, &f->cal), PRESSO_OK);
	split_free(&sp);
	dataset_free(train);
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	cr_assert_eq(qmodel_build(f->g, f->pol, f->cal, &qc, &f->qm), PRESSO_OK, "%s",
		     status_msg());
	f->dir = fx_tmpdir();
	const char *path = fx_join(f->dir, "m.onnx");
	cr_assert_eq(onnx_export_qdq(f->qm, "test note", path), PRESSO_OK, "%s", status_msg());
	size_t n;
	char *bytes = fx_read(path, &n);
	cr_assert_not_null(bytes);
	f->model = onnx__model_proto__unpack(NULL, n, (const uint8_t *)bytes);
	free(bytes);
	cr_assert_not_null(f->model, "the exported file does not parse as a ModelProto");
	unlink(path);
}

/* LeNet */
static void build(struct fixture *f, const char *policy)
{
	build_model(f, fx_src("models/lenet.onnx"), policy);
}

/* The exported model loaded by presso's importer. */
static struct graph *read_back(const struct fixture *f)
{
	size_t nb = onnx__model_proto__get_packed_size(f->model);
	uint8_t *bytes = malloc(nb);
	cr_assert_not_null(bytes);
	onnx__model_proto__pack(f->model, bytes);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	free(bytes);
	return g;
}

static void release(struct fixture *f)
{
	onnx__model_proto__free_unpacked(f->model, NULL);
	qmodel_free(f->qm);
	policy_free(f->pol);
	calib_free(f->cal);
	graph_free(f->g);
	if (f->dir)
		rmdir(f->dir);
	free(f->dir);
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_initializer; i++)
		if (strcmp(g->initializer[i]->name, name) == 0)
			return g->initializer[i];
	return NULL;
}

static const Onnx__NodeProto *producer(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++)
		if (g->node[i]->n_output == 1 && strcmp(g->node[i]->output[0], name) == 0)
			return g->node[i];
	return NULL;
}

static const Onnx__NodeProto *node_named(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++)
		if (strcmp(g->node[i]->name, name) == 0)
			return g->node[i];
	return NULL;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float dflt)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (strcmp(n->attribute[i]->name, name) == 0)
			return n->attribute[i]->f;
	return dflt;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (strcmp(n->attribute[i]->name, name) == 0)
			return n->attribute[i]->i;
	return dflt;
}

/* Whether string attribute name of n is v. */
static bool attr_s_is(const Onnx__NodeProto *n, const char *name, const char *v)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (strcmp(n->attribute[i]->name, name) == 0)
			return n->attribute[i]->has_s && n->attribute[i]->s.len == strlen(v) &&
			       memcmp(n->attribute[i]->s.data, v, strlen(v)) == 0;
	return false;
}

static size_t numel(const Onnx__TensorProto *t)
{
	size_t n = 1;
	for (size_t i = 0; i < t->n_dims; i++)
		n *= (size_t)t->dims[i];
	return n;
}

/* The float scalar of initializer `name`. */
static float scalar_f32(const Onnx__GraphProto *g, const char *name)
{
	const Onnx__TensorProto *t = find_init(g, name);
	cr_assert_not_null(t, "initializer '%s'", name);
	cr_assert_eq(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
	cr_assert_eq(t->raw_data.len, 4);
	float v;
	memcpy(&v, t->raw_data.data, 4);
	return v;
}

/* Model-level facts: opset, names, dynamic batch, the note. */
static void check_model_header(const struct fixture *f)
{
	const Onnx__ModelProto *m = f->model;
	cr_assert_eq(m->ir_version, ONNX_EXPORT_IR_VERSION);
	cr_assert_eq(m->n_opset_import, 1);
	cr_assert_str_eq(m->opset_import[0]->domain, "");
	cr_assert_eq(m->opset_import[0]->version, 13);
	cr_assert_str_eq(m->producer_name, "presso");
	cr_assert_str_eq(m->doc_string, "test note");
	const Onnx__GraphProto *g = m->graph;
	cr_assert_eq(g->n_input, 1);
	cr_assert_str_eq(g->input[0]->name, "input");
	const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
	cr_assert_eq(s->n_dim, 4);
	cr_assert_eq(s->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
	cr_assert_eq(s->dim[1]->dim_value, 1);
	cr_assert_eq(s->dim[2]->dim_value, 28);
	cr_assert_eq(g->n_output, 1);
	cr_assert_str_eq(g->output[0]->name, "logits");
	cr_assert_not_null(producer(g, "logits"), "the graph output keeps its name");
}

/* Every value the engine quantizes: [Clip ->] QuantizeLinear -> DequantizeLinear,
 * with the engine's scale and zero point; nothing else is quantized. */
static void check_activations(const struct fixture *f)
{
	const Onnx__GraphProto *g = f->model->graph;
	int n_quantized = 0;
	for (int v = 0; v < f->g->n_values; v++) {
		struct qparams qp;
		if (!qmodel_value_qparams(f->qm, v, &qp))
			continue;
		n_quantized++;
		const char *name = f->g->values[v].name;
		/* readers see the dequantized value: under the original name, or
		 * "<input>_dequantized" for the graph input */
		char dq_name[512];
		snprintf(dq_name, sizeof dq_name, "%s%s", name,
			 f->g->values[v].producer < 0 ? "_dequantized" : "");
		const Onnx__NodeProto *dq = producer(g, dq_name);
		cr_assert_not_null(dq, "value '%s' has no DequantizeLinear", name);
		cr_assert_str_eq(dq->op_type, "DequantizeLinear");
		const Onnx__NodeProto *q = producer(g, dq->input[0]);
		cr_assert_not_null(q);
		cr_assert_str_eq(q->op_type, "QuantizeLinear");
		cr_assert_str_eq(q->input[1], dq->input[1]);
		cr_assert_str_eq(q->input[2], dq->input[2]);
		cr_assert_eq(scalar_f32(g, q->input[1]), qp.scale, "value '%s' scale", name);
		const Onnx__TensorProto *z = find_init(g, q->input[2]);
		cr_assert_not_null(z);
		cr_assert_eq(z->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8);
		cr_assert_eq(z->raw_data.data[0], qp.zero, "value '%s' zero point", name);
		/* the range clip the export adds is called "<value>_Clip" */
		char clip_name[512];
		snprintf(clip_name, sizeof clip_name, "%s_Clip", name);
		const Onnx__NodeProto *clip = producer(g, q->input[0]);
		int32_t qmax = quant_act_qmax(&qp);
		if (qp.bits == 8) {
			cr_assert_null(node_named(g, clip_name), "value '%s' is 8-bit: no range clip",
				       name);
			continue;
		}
		cr_assert_not_null(clip, "value '%s' (%d bits) is not clipped", name, qp.bits);
		cr_assert_str_eq(clip->name, clip_name);
		cr_assert_str_eq(clip->op_type, "Clip", "value '%s' (%d bits)", name, qp.bits);
		cr_assert_eq(clip->n_input, 3);
		cr_assert_eq(scalar_f32(g, clip->input[1]), qp.scale * (float)(0 - qp.zero));
		cr_assert_eq(scalar_f32(g, clip->input[2]), qp.scale * (float)(qmax - qp.zero));
		/* the bounds land on the range's ends */
		float hi = scalar_f32(g, clip->input[2]) / qp.scale + (float)qp.zero;
		cr_assert_float_eq(hi, (float)qmax, 1e-3);
	}
	int n_q = 0;
	for (size_t i = 0; i < g->n_node; i++)
		n_q += strcmp(g->node[i]->op_type, "QuantizeLinear") == 0;
	cr_assert_eq(n_q, n_quantized, "one QuantizeLinear per quantized value");
	cr_assert_gt(n_quantized, 5);
}

/* Every layer reads int8 weights (the engine's, in the node's layout) through a
 * per-axis DequantizeLinear, and an int32 bias in units of s_in * w_scale[c]. */
static void check_layers(const struct fixture *f)
{
	const Onnx__GraphProto *g = f->model->graph;
	int nl = qmodel_n_layers(f->qm);
	cr_assert_eq(nl, f->pol->n_layers);
	for (int l = 0; l < nl; l++) {
		struct qlayer_view L;
		qmodel_layer_view(f->qm, l, &L);
		const struct node *gn = &f->g->nodes[L.node];
		const Onnx__NodeProto *n = node_named(g, gn->name);
		cr_assert_not_null(n, "layer '%s' is missing", gn->name);
		cr_assert_str_eq(n->op_type, op_name(gn->op));
		cr_assert(n->n_input == 3 || n->n_input == 2, "layer '%s'", gn->name);
		bool conv = gn->op == OP_CONV;
		bool trans_b = conv || attr_i(n, "transB", 0) != 0;
		if (!conv) {
			cr_assert_eq(attr_i(n, "transA", 0), 0);
			cr_assert(trans_b, "LeNet's Gemm weights are [N][K]");
		}
		/* weights */
		const Onnx__NodeProto *wdq = producer(g, n->input[1]);
		cr_assert_not_null(wdq);
		cr_assert_str_eq(wdq->op_type, "DequantizeLinear");
		cr_assert_eq(attr_i(wdq, "axis", 1), 0, "per output channel: axis 0");
		const Onnx__TensorProto *w = find_init(g, wdq->input[0]);
		cr_assert_not_null(w);
		cr_assert_eq(w->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT8);
		cr_assert_eq(w->n_dims, conv ? 4 : 2);
		cr_assert_eq(w->dims[0], L.n_out);
		cr_assert_eq(numel(w), (size_t)(L.n_out * L.k));
		cr_assert_eq(memcmp(w->raw_data.data, L.w, (size_t)(L.n_out * L.k)), 0,
			     "layer '%s': int8 weights differ from the engine's", gn->name);
		/* one assertion per layer, not per weight: each is an event to the runner */
		int qmax = quant_weight_qmax(L.bits), widest = 0;
		for (int64_t i = 0; i < L.n_out * L.k; i++)
			if (abs((int8_t)w->raw_data.data[i]) > widest)
				widest = abs((int8_t)w->raw_data.data[i]);
		cr_assert_leq(widest, qmax, "layer '%s' %d bits", gn->name, L.bits);
		const Onnx__TensorProto *ws = find_init(g, wdq->input[1]);
		cr_assert_not_null(ws);
		cr_assert_eq(ws->n_dims, 1);
		cr_assert_eq(ws->dims[0], L.n_out);
		cr_assert_eq(memcmp(ws->raw_data.data, L.w_scale, sizeof(float) * (size_t)L.n_out), 0);
		const Onnx__TensorProto *wz = find_init(g, wdq->input[2]);
		cr_assert_not_null(wz);
		cr_assert_eq(wz->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT8);
		bool zeros = true;
		for (int64_t c = 0; c < L.n_out; c++)
			zeros = zeros && wz->raw_data.data[c] == 0;
		cr_assert(zeros, "layer '%s': weight zero points are 0", gn->name);
		/* bias (a low-rank first factor has none, and needs none) */
		if (n->n_input == 2) {
			bool none = true;
			for (int64_t c = 0; c < L.n_out; c++)
				none = none && L.bias[c] == 0;
			cr_assert(none, "layer '%s' lost its bias", gn->name);
			continue;
		}
		const Onnx__NodeProto *bdq = producer(g, n->input[2]);
		cr_assert_not_null(bdq);
		cr_assert_str_eq(bdq->op_type, "DequantizeLinear");
		cr_assert_eq(attr_i(bdq, "axis", 1), 0);
		const Onnx__TensorProto *b = find_init(g, bdq->input[0]);
		cr_assert_eq(b->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
		cr_assert_eq(numel(b), (size_t)L.n_out);
		cr_assert_eq(memcmp(b->raw_data.data, L.bias, sizeof(int32_t) * (size_t)L.n_out), 0);
		struct qparams qin;
		cr_assert(qmodel_value_qparams(f->qm, gn->inputs[0], &qin));
		const Onnx__TensorProto *bs = find_init(g, bdq->input[1]);
		double worst = 0;
		for (int64_t c = 0; c < L.n_out; c++) {
			float s;
			memcpy(&s, bs->raw_data.data + 4 * c, 4);
			double want = (double)qin.scale * L.w_scale[c];
			worst = fmax(worst, fabs(s - want) / want);
		}
		/* the product of two floats rounded to float: half an ulp */
		cr_assert_leq(worst, 1e-7, "layer '%s': bias scales are s_in * w_scale[c]", gn->name);
		if (gn->op == OP_GEMM) {
			cr_assert_eq(attr_i(n, "transB", 0), 1);
		} else {
			cr_assert_eq(attr_i(n, "group", 1), gn->a.group);
		}
	}
}

Test(onnx_export, w8a8_lenet_structure)
{
	struct fixture f;
	build(&f, "int8");
	check_model_header(&f);
	check_activations(&f);
	check_layers(&f);
	/* no Clip at all at 8 bits (LeNet has none of its own) */
	const Onnx__GraphProto *g = f.model->graph;
	for (size_t i = 0; i < g->n_node; i++)
		cr_assert_str_neq(g->node[i]->op_type, "Clip");
	/* the other nodes are copied: two MaxPools with their windows, a Flatten */
	const Onnx__NodeProto *pool = node_named(g, "/pool/MaxPool");
	cr_assert_not_null(pool);
	cr_assert_str_eq(pool->op_type, "MaxPool");
	bool has_kernel = false;
	for (size_t i = 0; i < pool->n_attribute; i++)
		if (strcmp(pool->attribute[i]->name, "kernel_shape") == 0) {
			has_kernel = true;
			cr_assert_eq(pool->attribute[i]->n_ints, 2);
			cr_assert_eq(pool->attribute[i]->ints[0], 2);
		}
	cr_assert(has_kernel);
	cr_assert_not_null(node_named(g, "/Flatten"));
	release(&f);
}

Test(onnx_export, low_bit_lenet_structure)
{
	struct fixture f;
	build(&f, LOW_BIT_POLICY);
	check_model_header(&f);
	check_activations(&f);
	check_layers(&f);
	/* the policy's narrow activations are there: 4 bits into fc1, 5 elsewhere */
	struct qlayer_view L;
	qmodel_layer_view(f.qm, 2, &L);
	cr_assert_eq(L.bits, 3);
	struct qparams qp;
	cr_assert(qmodel_value_qparams(f.qm, f.g->nodes[L.node].inputs[0], &qp));
	cr_assert_eq(qp.bits, 4);
	qmodel_layer_view(f.qm, 4, &L);
	cr_assert_eq(L.bits, 1);
	release(&f);
}

/* No file, nothing half-written, and a message naming the path. */
Test(onnx_export, low_rank_lenet_structure)
{
	struct fixture f;
	build(&f, "{\"default\": {\"bits\": 4, \"rank\": 0.5}, \"layers\": {"
		  "\"/conv1/Conv\": {\"bits\": 8}, \"/fc3/Gemm\": {\"bits\": 8},"
		  " \"/fc2/Gemm\": {\"prune\": 0.25, \"prune_kind\": \"structured\"}}}");
	check_model_header(&f);
	check_activations(&f);
	check_layers(&f);
	const Onnx__GraphProto *g = f.model->graph;
	/* conv2 [16][150] at rank 8 and fc1 [120][400] at rank 60 are split in two */
	const Onnx__NodeProto *a = node_named(g, "/conv2/Conv.lowrank");
	const Onnx__NodeProto *b = node_named(g, "/fc1/Gemm.lowrank");
	cr_assert(a && b, "the first factors are exported");
	cr_assert_str_eq(a->op_type, "Conv");
	const Onnx__NodeProto *wdq = producer(g, a->input[1]);
	cr_assert(wdq && strcmp(wdq->op_type, "DequantizeLinear") == 0);
	const Onnx__TensorProto *w = find_init(g, wdq->input[0]);
	cr_assert(w && w->n_dims == 4 && w->dims[0] == 8 && w->dims[1] == 6, "conv2's first factor is [8,6,5,5]");
	/* fc2 lost a quarter of its 84 outputs, fc3 (its first factor) the same inputs */
	const Onnx__NodeProto *fc3 = node_named(g, "/fc3/Gemm.lowrank");
	cr_assert_not_null(fc3);
	const Onnx__TensorProto *w3 = find_init(g, producer(g, fc3->input[1])->input[0]);
	cr_assert(w3 && w3->dims[1] == 63, "fc3 reads 63 features, not %lld", (long long)w3->dims[1]);
	release(&f);
}

Test(onnx_export, bad_output_paths_fail_cleanly)
{
	struct fixture f;
	build(&f, "int8");
	char missing[4200];
	snprintf(missing, sizeof missing, "%s", fx_join(f.dir, "no-such-dir/m.onnx"));
	cr_assert_eq(onnx_export_qdq(f.qm, NULL, missing), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), missing), "message: %s", status_msg());
	/* the path is a folder: the temporary file is made, the rename fails */
	char folder[4200];
	snprintf(folder, sizeof folder, "%s", fx_join(f.dir, "sub"));
	cr_assert_eq(mkdir(folder, 0700), 0);
	cr_assert_eq(onnx_export_qdq(f.qm, NULL, folder), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), folder), "message: %s", status_msg());
	DIR *d = opendir(f.dir);
	cr_assert_not_null(d);
	int n_entries = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			n_entries++;
			cr_assert_str_eq(e->d_name, "sub", "left behind: %s", e->d_name);
		}
	closedir(d);
	cr_assert_eq(n_entries, 1);
	rmdir(folder);
	release(&f);
}

Test(onnx_export, compress_cli)
{
	char *out = NULL, *err = NULL;
	cr_assert_eq(fx_presso("compress --help", &out, NULL), 0);
	cr_assert(strstr(out, "QDQ") && strstr(out, ".presso"), "%s", out);
	free(out);
	cr_assert_eq(fx_presso("compress --config c.json --policy int8 -o m.tflite", NULL, &err), 2);
	cr_assert(strstr(err, "m.tflite") && strstr(err, ".onnx"), "%s", err);
	free(err);
	cr_assert_eq(fx_presso("compress --config c.json -o m.onnx", NULL, &err), 2);
	cr_assert(strstr(err, "--policy"), "%s", err);
	free(err);
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"name\": \"c\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 200, \"validation\": 100, \"test\": 300}},"
		 "\"eval\": {\"batch\": 50}}",
		 fx_src("models/lenet.onnx"));
	char cfg[4200], model[4200], args[9000];
	snprintf(cfg, sizeof cfg, "%s", fx_join(dir, "c.json"));
	snprintf(model, sizeof model, "%s", fx_join(dir, "lenet-int4.onnx"));
	cr_assert(fx_write(cfg, body, strlen(body)));
	snprintf(args, sizeof args, "compress --config '%s' --policy int4 -o '%s' --quiet", cfg,
		 model);
	int rc = fx_presso(args, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_empty(err, "--quiet prints no progress: %s", err);
	cr_assert(strstr(out, "compressed:") && strstr(out, "300 images") &&
			  strstr(out, "61706 params"),
		  "%s", out);
	free(out);
	free(err);
	size_t n;
	char *bytes = fx_read(model, &n);
	cr_assert_not_null(bytes);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, (const uint8_t *)bytes);
	cr_assert_not_null(m);
	cr_assert_eq(m->opset_import[0]->version, 13);
	cr_assert(strstr(m->doc_string, "int4"), "%s", m->doc_string);
	onnx__model_proto__free_unpacked(m, NULL);
	free(bytes);
	unlink(model);
	unlink(cfg);
	rmdir(dir);
	free(dir);
}

/* The activation, arithmetic and normalisation ops are written as they are,
 * with their attributes, in opset 17 (HardSwish, LayerNormalization). */
Test(export, new_ops_are_written_with_their_attributes)
{
	struct mb b;
	mb_new_ops_model(&b);
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct dataset *ds = calloc(1, sizeof *ds);
	ds->n = 16;
	ds->c = 3;
	ds->h = ds->w = 6;
	ds->n_classes = 10;
	ds->f32 = malloc(sizeof(float) * 16 * 108);
	ds->labels = calloc(16, sizeof(int32_t));
	uint32_t s = 7;
	for (int i = 0; i < 16 * 108; i++) {
		s = s * 1664525u + 1013904223u;
		ds->f32[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
	struct split sp;
	cr_assert_eq(split_range(ds->n, 0, &sp), PRESSO_OK);
	static const struct normalize norm = {.scale = 1, .n_channels = 1, .mean = {0}, .std = {1}};
	struct calib *cal;
	cr_assert_eq(calib_run(g, ds, &norm, &sp, 16, &cal), PRESSO_OK, "%s", status_msg());
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *pol;
	cr_assert_eq(policy_load("int8", ls, nl, &pol), PRESSO_OK);
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *qm;
	cr_assert_eq(qmodel_build(g, pol, cal, &qc, &qm), PRESSO_OK, "%s", status_msg());
	char *dir = fx_tmpdir();
	const char *path = fx_join(dir, "ops.onnx");
	cr_assert_eq(onnx_export_qdq(qm, NULL, path), PRESSO_OK, "%s", status_msg());
	size_t n;
	char *file = fx_read(path, &n);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, (const uint8_t *)file);
	cr_assert_not_null(m);
	cr_assert_eq(m->opset_import[0]->version, ONNX_EXPORT_OPSET_NEW);
	cr_assert_eq(m->ir_version, ONNX_EXPORT_IR_VERSION_NEW);
	const Onnx__GraphProto *og = m->graph;
	const Onnx__NodeProto *hs = node_named(og, "gate"), *lr = node_named(og, "leaky");
	const Onnx__NodeProto *ln = node_named(og, "ln"), *pad = node_named(og, "pad");
	const Onnx__NodeProto *rm = node_named(og, "rows"), *lrn = node_named(og, "lrn");
	cr_assert(hs && lr && ln && pad && rm && lrn);
	cr_assert_str_eq(hs->op_type, "HardSigmoid");
	cr_assert_float_eq(attr_f(hs, "alpha", 0), 0.25f, 0);
	cr_assert_float_eq(attr_f(hs, "beta", 0), 0.5f, 0);
	cr_assert_float_eq(attr_f(lr, "alpha", 0), 0.2f, 0);
	const Onnx__NodeProto *el = node_named(og, "elu"), *se = node_named(og, "selu");
	const Onnx__NodeProto *ce = node_named(og, "celu"), *tr = node_named(og, "thresholded");
	const Onnx__NodeProto *splus = node_named(og, "softplus"), *ss = node_named(og, "softsign");
	cr_assert(el && se && ce && tr && splus && ss);
	cr_assert_str_eq(se->op_type, "Selu");
	cr_assert_str_eq(splus->op_type, "Softplus");
	cr_assert_str_eq(ss->op_type, "Softsign");
	cr_assert_float_eq(attr_f(el, "alpha", 0), 0.5f, 0);
	cr_assert_float_eq(attr_f(se, "alpha", 0), 1.5f, 0);
	cr_assert_float_eq(attr_f(se, "gamma", 0), 1.25f, 0);
	cr_assert_float_eq(attr_f(ce, "alpha", 0), 2.0f, 0);
	cr_assert_float_eq(attr_f(tr, "alpha", 0), 0.25f, 0);
	const Onnx__NodeProto *rs = node_named(og, "row_sum"), *rx = node_named(og, "row_max");
	cr_assert(rs && rx);
	cr_assert_str_eq(rs->op_type, "ReduceSum");
	cr_assert_eq(rs->n_input, 2, "ReduceSum: data, axes (opset 13)");
	cr_assert_str_eq(rx->op_type, "ReduceMax");
	cr_assert_eq(rx->n_input, 1, "ReduceMax: axes as an attribute");
	const Onnx__NodeProto *dc = node_named(og, "deconv");
	cr_assert(dc);
	cr_assert_str_eq(dc->op_type, "ConvTranspose");
	cr_assert_eq(attr_i(dc, "group", 0), 2);
	cr_assert_eq(dc->n_input, 3, "X, W, B");
	for (size_t i = 0; i < dc->n_attribute; i++)
		if (strcmp(dc->attribute[i]->name, "output_padding") == 0 ||
		    strcmp(dc->attribute[i]->name, "strides") == 0)
			cr_assert(dc->attribute[i]->n_ints == 2 && dc->attribute[i]->ints[0] ==
				  (strcmp(dc->attribute[i]->name, "strides") == 0 ? 2 : 1));
	cr_assert_eq(attr_i(ln, "axis", 0), 1);
	cr_assert_eq(attr_i(lrn, "size", 0), 3);
	cr_assert_eq(attr_i(rm, "keepdims", 0), 1);
	cr_assert_eq(pad->n_input, 3, "Pad: data, pads, constant_value");
	const Onnx__TensorProto *pads = find_init(og, pad->input[1]);
	cr_assert_not_null(pads);
	/* Resize by sizes is written by scales (the batch's 1), keeping a dynamic batch */
	const Onnx__NodeProto *up = node_named(og, "up"), *down = node_named(og, "down");
	cr_assert(up && down);
	cr_assert_str_eq(up->op_type, "Resize");
	cr_assert(attr_s_is(up, "mode", "linear"));
	cr_assert(attr_s_is(up, "coordinate_transformation_mode", "pytorch_half_pixel"));
	cr_assert(attr_s_is(down, "mode", "nearest"));
	cr_assert_eq(up->n_input, 3, "Resize: X, roi, scales");
	const Onnx__TensorProto *sc = find_init(og, up->input[2]);
	cr_assert(sc && sc->raw_data.len == 16);
	float f[4];
	memcpy(f, sc->raw_data.data, sizeof f);
	cr_assert(f[0] == 1.0f && f[1] == 1.0f && f[2] == 2.0f && f[3] == 2.0f);
	cr_assert_eq(attr_s_is(down, "coordinate_transformation_mode", "asymmetric"), true);
	cr_assert_eq(attr_s_is(down, "nearest_mode", "floor"), true);
	cr_assert_eq(pads->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
	cr_assert_eq(pads->raw_data.len, 8 * 8);
	/* every op of the graph is there, named as in the graph */
	for (int i = 0; i < g->n_nodes; i++) {
		const Onnx__NodeProto *p = node_named(og, g->nodes[i].name);
		cr_assert_not_null(p, "node '%s'", g->nodes[i].name);
		cr_assert_str_eq(p->op_type, op_name(g->nodes[i].op));
	}
	onnx__model_proto__free_unpacked(m, NULL);
	free(file);
	remove(path);
	rmdir(dir);
	free(dir);
	qmodel_free(qm);
	policy_free(pol);
	free(ls);
	calib_free(cal);
	split_free(&sp);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* The exported QDQ model, read back by presso's importer (QuantizeLinear ->
 * DequantizeLinear of activations as fake quantization, the int8 weights and
 * int32 biases dequantized at load) and run in the FP32 engine, gives the
 * INT8 engine's outputs on FMNIST test images: at W8A8 and at the low-bit
 * policy (narrow activations clipped, ternary and binary weights). */
static void qdq_reads_back(const char *path, const char *policy)
{
	struct fixture f;
	build_model(&f, path, policy);
	struct graph *qg = read_back(&f);
	int n_fq = 0;
	for (int i = 0; i < qg->n_nodes; i++)
		n_fq += qg->nodes[i].op == OP_FAKEQUANT;
	cr_assert_gt(n_fq, 0, "the activations' QuantizeLinear -> DequantizeLinear pairs");
	struct dataset *test;
	cr_assert_eq(dataset_load_idx(FX_FMNIST_TEST_IMAGES, FX_FMNIST_TEST_LABELS, &test),
		     PRESSO_OK);
	enum { B = 64 };
	int64_t idx[B];
	for (int i = 0; i < B; i++)
		idx[i] = i;
	struct normalize norm = {.scale = 1.0f / 255, .n_channels = 1, .mean = {0.2860f},
				 .std = {0.3530f}};
	struct engine *fe;
	struct qengine *qe;
	cr_assert_eq(engine_create(qg, B, &fe), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(qengine_create(f.qm, B, &qe), PRESSO_OK, "%s", status_msg());
	dataset_get_batch(test, &norm, idx, B, false, engine_input(fe, 0), NULL);
	dataset_get_batch(test, &norm, idx, B, false, qengine_input(qe, 0), NULL);
	cr_assert_eq(engine_run(fe, B), PRESSO_OK);
	cr_assert_eq(qengine_run(qe, B), PRESSO_OK);
	struct shape sf, sq;
	const float *yf = engine_output(fe, 0, &sf), *yq = qengine_output(qe, 0, &sq);
	cr_assert_eq(shape_numel(&sf), B * 10);
	double err = 0, ref = 0;
	int agree = 0;
	for (int i = 0; i < B; i++) {
		int af = 0, aq = 0;
		for (int c = 0; c < 10; c++) {
			double d = yf[i * 10 + c] - yq[i * 10 + c];
			err += d * d;
			ref += (double)yq[i * 10 + c] * yq[i * 10 + c];
			af = yf[i * 10 + c] > yf[i * 10 + af] ? c : af;
			aq = yq[i * 10 + c] > yq[i * 10 + aq] ? c : aq;
		}
		agree += af == aq;
	}
	cr_assert_geq(agree, B - 1, "%s: %d of %d images have the INT8 engine's class", policy,
		      agree, B);
	cr_assert_lt(sqrt(err / ref), 0.01, "%s: relative RMS %.4f", policy, sqrt(err / ref));
	engine_free(fe);
	qengine_free(qe);
	dataset_free(test);
	graph_free(qg);
	release(&f);
}

Test(onnx_export, qdq_export_read_back_runs_as_the_int8_engine)
{
	qdq_reads_back(fx_src("models/lenet.onnx"), "int8");
	qdq_reads_back(fx_src("models/lenet.onnx"), LOW_BIT_POLICY);
}

/* The row LSTM with its input projection at 3 bits: the projection is a
 * quantized MatMul, the LSTM reads it with a W made at load (EyeLike, not
 * stored) and its R (3 bits too) as int8 rows through DequantizeLinear, so
 * the file holds the weights as int8; reading the file
 * back gives the same two layers, no third for that W, and the INT8
 * engine's classes. */
Test(onnx_export, lstm_export_reads_back_as_its_layers)
{
	const char *policy = "{\"default\": {\"bits\": 8}, \"layers\": "
			     "{\"/rnn/LSTM#proj\": {\"bits\": 3}}}";
	qdq_reads_back(fx_src("models/lstm.onnx"), policy);
	struct fixture f;
	build_model(&f, fx_src("models/lstm.onnx"), policy);
	const Onnx__GraphProto *og = f.model->graph;
	size_t stored = 0;
	for (size_t i = 0; i < og->n_initializer; i++)
		stored += og->initializer[i]->raw_data.len + 4 * og->initializer[i]->n_float_data;
	/* every weight in an int8 initializer, R (16,384 of the 24,714) too, plus
	 * the scales: in FP32, R alone would take 65,536 bytes */
	cr_assert_lt(stored, 24714 * 5 / 4, "%zu bytes of initializers: the weights as int8", stored);
	bool eye = false, lstm = false;
	for (size_t i = 0; i < og->n_node; i++) {
		eye |= strcmp(og->node[i]->op_type, "EyeLike") == 0;
		lstm |= strcmp(og->node[i]->op_type, "LSTM") == 0;
	}
	cr_assert(eye && lstm);
	struct graph *qg = read_back(&f);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(qg, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 2, "the projection and the classifier");
	cr_assert_eq(ls[0].op, OP_MATMUL);
	free(ls);
	graph_free(qg);
	release(&f);
}

/* A batch-first (layout 1) GRU over the image's rows, as an ONNX file may
 * have it: ONNX Runtime runs only layout 0, so the export writes the layout-0
 * GRU between Transposes (of X and of Y_h), and reads back as the INT8
 * engine. */
Test(onnx_export, batch_first_recurrent_layers_are_written_seq_first)
{
	struct mb b;
	mb_init(&b, 14);
	mb_input(&b, "input", (int64_t[]){-1, 1, 28, 28}, 4);
	mb_init_i64(&b, "rows", (int64_t[]){3}, 1, (int64_t[]){-1, 28, 28});
	mb_node(&b, "Reshape", "seq", (const char *[]){"input", "rows", NULL}, "x");
	float w[24 * 28], r[24 * 8], head[10 * 8];
	for (int i = 0; i < 24 * 28; i++)
		w[i] = 0.02f * (float)(i % 11 - 5);
	for (int i = 0; i < 24 * 8; i++)
		r[i] = 0.05f * (float)(i % 7 - 3);
	for (int i = 0; i < 80; i++)
		head[i] = 0.1f * (float)(i % 9 - 4);
	mb_init_f32(&b, "W", (int64_t[]){1, 24, 28}, 3, w);
	mb_init_f32(&b, "R", (int64_t[]){1, 24, 8}, 3, r);
	Onnx__NodeProto *n = mb_node(&b, "GRU", "gru", (const char *[]){"x", "W", "R", NULL}, "");
	mb_node_output(&b, n, "h");
	mb_attr_int(&b, n, "hidden_size", 8);
	mb_attr_int(&b, n, "layout", 1);
	mb_attr_int(&b, n, "linear_before_reset", 1);
	mb_init_i64(&b, "flat", (int64_t[]){2}, 1, (int64_t[]){-1, 8});
	mb_node(&b, "Reshape", "hflat", (const char *[]){"h", "flat", NULL}, "hf");
	mb_init_f32(&b, "fc", (int64_t[]){10, 8}, 2, head);
	n = mb_node(&b, "Gemm", "head", (const char *[]){"hf", "fc", NULL}, "logits");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "logits");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	char *dir = fx_tmpdir();
	char path[1024];
	snprintf(path, sizeof path, "%s", fx_join(dir, "gru.onnx"));
	cr_assert(fx_write(path, bytes, nb));
	mb_free(&b); /* the bytes were the builder's */
	qdq_reads_back(path, "int8");
	struct fixture f;
	build_model(&f, path, "int8");
	const Onnx__GraphProto *og = f.model->graph;
	int n_gru = 0, n_t = 0;
	for (size_t i = 0; i < og->n_node; i++) {
		const Onnx__NodeProto *p = og->node[i];
		n_t += strcmp(p->op_type, "Transpose") == 0;
		if (strcmp(p->op_type, "GRU") == 0) {
			n_gru++;
			cr_assert_eq(attr_i(p, "layout", 0), 0, "layout 0 for ONNX Runtime");
			cr_assert_eq(attr_i(p, "linear_before_reset", 0), 1);
		}
	}
	cr_assert_eq(n_gru, 1);
	cr_assert_geq(n_t, 2, "X in, Y_h out");
	release(&f);
	unlink(path);
	rmdir(dir);
	free(dir);
}
