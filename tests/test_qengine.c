/* test_qengine.c - the INT8 engine: quantized models track their FP32 graph,
 * every kernel path gives bit-identical results, sizes are exact to a hand
 * count, and W8A8 on the shipped models stays within 0.5 points of FP32. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "model/engine.h"
#include "evaluators/evaluate.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* The issue's bound on W8A8 test accuracy vs FP32, in points. */
#define W8A8_MAX_DROP_POINTS 0.5
/* Sanitizer builds run the shipped-model checks on a prefix of the test set,
 * where one image is 0.1 point: the bound widens accordingly. */
#define SANITIZED_IMAGES 400
#define SANITIZED_MAX_DROP_POINTS 1.5

static float frand(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A small residual network over 6x6x3 inputs: conv3x3+relu, depthwise+relu6,
 * 1x1 conv, residual Add + Relu, maxpool, GAP, flatten, gemm -> 4 logits. */
static struct graph *small_net(struct mb *b)
{
	uint32_t s = 1;
	float w1[8 * 3 * 9], b1[8], wd[8 * 9], bd[8], w2[8 * 8], b2[8], wf[4 * 8], bf[4];
	for (size_t i = 0; i < sizeof w1 / 4; i++) w1[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof wd / 4; i++) wd[i] = 0.5f * frand(&s);
	for (size_t i = 0; i < sizeof w2 / 4; i++) w2[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++) wf[i] = frand(&s);
	for (int i = 0; i < 8; i++) { b1[i] = 0.1f * frand(&s); bd[i] = 0.1f * frand(&s); b2[i] = 0.1f * frand(&s); }
	for (int i = 0; i < 4; i++) bf[i] = 0.1f * frand(&s);
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(b, "w1", (int64_t[]){8, 3, 3, 3}, 4, w1);
	mb_init_f32(b, "b1", (int64_t[]){8}, 1, b1);
	mb_init_f32(b, "wd", (int64_t[]){8, 1, 3, 3}, 4, wd);
	mb_init_f32(b, "bd", (int64_t[]){8}, 1, bd);
	mb_init_f32(b, "w2", (int64_t[]){8, 8, 1, 1}, 4, w2);
	mb_init_f32(b, "b2", (int64_t[]){8}, 1, b2);
	mb_init_f32(b, "wf", (int64_t[]){4, 8}, 2, wf);
	mb_init_f32(b, "bf", (int64_t[]){4}, 1, bf);
	mb_init_f32(b, "zero", NULL, 0, (float[]){0.0f});
	mb_init_f32(b, "six", NULL, 0, (float[]){6.0f});
	Onnx__NodeProto *n = mb_node(b, "Conv", "conv1", (const char *[]){"x", "w1", "b1", NULL}, "c1");
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(b, "Relu", "r1", (const char *[]){"c1", NULL}, "a1");
	n = mb_node(b, "Conv", "dw", (const char *[]){"a1", "wd", "bd", NULL}, "c2");
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_attr_int(b, n, "group", 8);
	mb_node(b, "Clip", "r2", (const char *[]){"c2", "zero", "six", NULL}, "a2");
	mb_node(b, "Conv", "pw", (const char *[]){"a2", "w2", "b2", NULL}, "c3");
	mb_node(b, "Add", "res", (const char *[]){"c3", "a1", NULL}, "s");
	mb_node(b, "Relu", "r3", (const char *[]){"s", NULL}, "a3");
	n = mb_node(b, "MaxPool", "pool", (const char *[]){"a3", NULL}, "p");
	mb_attr_ints(b, n, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(b, n, "strides", (int64_t[]){2, 2}, 2);
	mb_node(b, "GlobalAveragePool", "gap", (const char *[]){"p", NULL}, "g");
	mb_node(b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	n = mb_node(b, "Gemm", "fc", (const char *[]){"f", "wf", "bf", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	return g;
}

/* A tiny in-memory dataset of n random 3x6x6 images. */
static struct dataset *random_images(int n, uint32_t seed)
{
	struct dataset *ds = calloc(1, sizeof *ds);
	ds->n = n;
	ds->c = 3;
	ds->h = ds->w = 6;
	ds->f32 = malloc(sizeof(float) * (size_t)n * 108);
	ds->labels = calloc((size_t)n, sizeof(int32_t));
	ds->n_classes = 4;
	for (int i = 0; i < n * 108; i++)
		ds->f32[i] = frand(&seed);
	return ds;
}

static const struct normalize IDENTITY_NORM = {.scale = 1, .n_channels = 1, .mean = {0}, .std = {1}};

static void run_fp32(const struct graph *g, const struct dataset *ds, int n, float *out)
{
	struct engine *e;
	cr_assert_eq(engine_create(g, n, &e), PRESSO_OK);
	int64_t idx[64];
	for (int i = 0; i < n; i++)
		idx[i] = i;
	dataset_get_batch(ds, &IDENTITY_NORM, idx, n, false, engine_input(e, 0), NULL);
	cr_assert_eq(engine_run(e, n), PRESSO_OK);
	memcpy(out, engine_output(e, 0, NULL), sizeof(float) * (size_t)n * 4);
	engine_free(e);
}

/* The INT8 engine's [n, classes] output on the first n (<= 64) items of ds. */
static void run_q_items(const struct qmodel *m, const struct dataset *ds,
			const struct normalize *norm, int n, int classes, float *out)
{
	struct qengine *e;
	cr_assert_eq(qengine_create(m, n, &e), PRESSO_OK, "%s", status_msg());
	int64_t idx[64];
	for (int i = 0; i < n; i++)
		idx[i] = i;
	dataset_get_batch(ds, norm, idx, n, false, qengine_input(e, 0), NULL);
	cr_assert_eq(qengine_run(e, n), PRESSO_OK, "%s", status_msg());
	struct shape s;
	const float *y = qengine_output(e, 0, &s);
	cr_assert_eq(s.dims[0], n);
	cr_assert_eq(s.dims[1], classes);
	memcpy(out, y, sizeof(float) * (size_t)n * (size_t)classes);
	qengine_free(e);
}

static void run_q(const struct qmodel *m, const struct dataset *ds, int n, float *out)
{
	run_q_items(m, ds, &IDENTITY_NORM, n, 4, out);
}

static struct calib *calibrate(const struct graph *g, const struct dataset *ds)
{
	struct split sp;
	cr_assert_eq(split_range(ds->n, 0, &sp), PRESSO_OK);
	struct calib *c;
	cr_assert_eq(calib_run(g, ds, &IDENTITY_NORM, &sp, 16, &c), PRESSO_OK, "%s", status_msg());
	split_free(&sp);
	return c;
}

Test(qengine, w8a8_tracks_fp32_on_a_residual_net)
{
	struct mb b;
	struct graph *g = small_net(&b);
	struct dataset *ds = random_images(64, 5);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 4);
	for (int method = 0; method < CALIB_METHOD_COUNT; method++) {
		struct policy *p;
		cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
		struct quant_config qc = {(enum calib_method)method, 99.99, Q8_ISA_REF, NULL, NULL, REQUANT_FLOAT};
		struct qmodel *m;
		cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		float yf[32 * 4], yq[32 * 4];
		run_fp32(g, ds, 32, yf);
		run_q(m, ds, 32, yq);
		double err = 0, ref = 0;
		for (int i = 0; i < 32 * 4; i++) {
			err += (yf[i] - yq[i]) * (yf[i] - yq[i]);
			ref += yf[i] * yf[i];
		}
		/* 8-bit weights and activations through 4 layers: a few percent of the
		 * signal at most (a wrong scale or layout gives errors near 100%) */
		cr_assert_lt(sqrt(err / ref), 0.05, "%s: relative error %.4f", calib_method_name(qc.method),
			     sqrt(err / ref));
		qmodel_free(m);
		policy_free(p);
	}
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* A model whose activations hold NaN (a NaN weight) and infinity (weights
 * whose sums overflow) calibrates and runs: calibration bins no NaN (before,
 * (int64_t)NaN: undefined behaviour, found by fuzz_onnx) and keeps no
 * histogram for a range an infinity opened; a NaN bias (a NaN BatchNorm beta
 * folds into one, also found by fuzz_onnx) quantizes to 0, not to
 * (int32_t)NaN; every method builds and runs. */
Test(qengine, nan_and_inf_activations_calibrate_and_run)
{
	float wa[2 * 27], wb[2 * 27], wf[4 * 2], ba[2] = {NAN, 0.25f};
	uint32_t seed = 3;
	for (int i = 0; i < 54; i++) {
		wa[i] = 0.3f * frand(&seed);
		wb[i] = i < 27 ? 3e38f : 0.3f * frand(&seed);
	}
	wa[5] = NAN;
	for (int i = 0; i < 8; i++)
		wf[i] = frand(&seed);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(&b, "wa", (int64_t[]){2, 3, 3, 3}, 4, wa);
	mb_init_f32(&b, "wb", (int64_t[]){2, 3, 3, 3}, 4, wb);
	mb_init_f32(&b, "wf", (int64_t[]){4, 2}, 2, wf);
	mb_init_f32(&b, "ba", (int64_t[]){2}, 1, ba);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "ca", (const char *[]){"x", "wa", "ba", NULL},
				     "a");
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	n = mb_node(&b, "Conv", "cb", (const char *[]){"x", "wb", NULL}, "bb");
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(&b, "Add", "s", (const char *[]){"a", "bb", NULL}, "sum");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"sum", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	n = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "y");
	size_t nbytes;
	uint8_t *bytes = mb_pack(&b, &nbytes);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nbytes, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct dataset *ds = random_images(16, 9);
	struct calib *cal = calibrate(g, ds);
	for (int v = 0; v < g->n_values; v++) {
		const struct calib_stats *st = &cal->v[v];
		if (!st->seen || !st->hist)
			continue;
		double total = 0;
		for (int k = 0; k < CALIB_BINS; k++)
			total += st->hist[k];
		const char *name = g->values[v].name;
		if (strcmp(name, "a") == 0) /* channel 0 NaN, channel 1 finite: half binned */
			cr_assert_eq(total, (double)st->count / 2, "%s: %g of %lld binned", name, total,
				     (long long)st->count);
		if (strcmp(name, "bb") == 0) /* channel 0 infinite: no histogram */
			cr_assert(isinf(st->max) && total == 0, "%s: max %g, %g binned", name,
				  st->max, total);
	}
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	for (int method = 0; method < CALIB_METHOD_COUNT; method++) {
		struct policy *p;
		cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
		struct quant_config qc = {(enum calib_method)method, 99.99, q8_isa_best(), NULL, NULL,
					  REQUANT_FLOAT};
		struct qmodel *m;
		cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		for (int l = 0; l < qmodel_n_layers(m); l++) {
			struct qlayer_view lv;
			qmodel_layer_view(m, l, &lv);
			if (strcmp(g->nodes[lv.node].name, "ca") == 0)
				cr_assert_eq(lv.bias[0], 0, "the NaN bias became %d", lv.bias[0]);
		}
		float yq[8 * 4];
		run_q(m, ds, 8, yq);
		qmodel_free(m);
		policy_free(p);
	}
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

Test(qengine, every_kernel_path_gives_identical_outputs)
{
	struct mb b;
	struct graph *g = small_net(&b);
	struct dataset *ds = random_images(40, 9);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_parse("{\"layers\": {\"conv1\": {\"bits\": 3, \"bias_correction\": true},"
				  " \"pw\": {\"bits\": 2}}}", "p", ls, nl, &p), PRESSO_OK, "%s",
		     status_msg());
	float ref[2][40 * 4];
	int n_paths = 0;
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			if (!q8_isa_supported((enum q8_isa)isa)) {
				cr_log_info("path %s: not on this CPU, skipped",
					    q8_isa_name((enum q8_isa)isa));
				continue;
			}
			struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
						  (enum requant_mode)rq};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(qmodel_requant(m), (enum requant_mode)rq);
			float y[40 * 4];
			run_q(m, ds, 40, y);
			if (isa == Q8_ISA_REF)
				memcpy(ref[rq], y, sizeof y);
			else
				cr_assert_arr_eq(y, ref[rq], sizeof y,
						 "path %s differs from the reference (%s)",
						 q8_isa_name((enum q8_isa)isa),
						 rq == REQUANT_Q31 ? "Q31" : "float");
			n_paths++;
			qmodel_free(m);
		}
	cr_assert_geq(n_paths, 2);
	/* the two forms compute nearly the same logits (a few output steps apart) */
	float worst = 0, range = 0;
	for (int i = 0; i < 40 * 4; i++) {
		worst = fmaxf(worst, fabsf(ref[0][i] - ref[1][i]));
		range = fmaxf(range, fabsf(ref[1][i]));
	}
	cr_assert_lt(worst, 0.1f * range, "float vs Q31: logits differ by %g (range %g)", worst,
		     range);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

Test(qengine, size_accounting_matches_a_hand_count)
{
	struct mb b;
	struct graph *g = small_net(&b);
	struct dataset *ds = random_images(16, 2);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_parse("{\"default\": {\"bits\": 4}, \"layers\": {\"dw\": {\"bits\": 2},"
				  " \"fc\": {\"bits\": 1, \"act_bits\": 6}}}", "p", ls, nl, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_MINMAX, 99.99, Q8_ISA_REF, NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	struct qmodel_size z;
	qmodel_size(m, &z);
	/* packed weights: conv1 216 x 4 bits = 108 B; dw 72 x 2 bits = 18 B;
	 * pw 64 x 4 bits = 32 B; fc 32 x 1 bit = 4 B */
	cr_assert_eq(z.weight_bytes, 108 + 18 + 32 + 4);
	/* + per output channel a 2 B (binary16) scale: 8 + 8 + 8 + 4 channels;
	 * + per layer a width byte and the biases packed at the fewest bits that
	 *   hold each of them in two's complement;
	 * + 5 B (scale, zero point) per quantization group: x; conv1+relu; dw+relu6;
	 *   pw; Add+Relu with the maxpool, GAP and flatten after it. The logits
	 *   stay float. */
	int64_t bias_bytes = 0;
	cr_assert_eq(qmodel_n_layers(m), 4);
	for (int i = 0; i < 4; i++) {
		struct qlayer_view v;
		qmodel_layer_view(m, i, &v);
		int64_t bb = fx_bias_bytes(v.bias, v.n_out);
		cr_assert_gt(bb, 1 + v.n_out / 8, "layer %d: its biases should not all be tiny", i);
		bias_bytes += bb;
	}
	int64_t groups = 5;
	cr_assert_eq(z.size_bytes, 162 + 2 * 28 + bias_bytes + 5 * groups, "size %lld",
		     (long long)z.size_bytes);
	/* BOPs: MACs x weight bits x input bits (fc reads 6-bit activations) */
	double bops = 7776.0 * 4 * 8 + 2592.0 * 2 * 8 + 2304.0 * 4 * 8 + 32.0 * 1 * 6;
	cr_assert_float_eq(z.bops, bops, 1e-6, "bops %.0f vs %.0f", z.bops, bops);
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* --- the shipped models ---------------------------------------------------- */

struct shipped {
	struct graph *g;
	struct dataset *train, *test;
	struct split calib, valid, all;
	struct normalize norm;
	struct layer *ls;
	int nl;
	struct calib *cal;
};

static bool load_shipped(const char *name, struct shipped *s)
{
	memset(s, 0, sizeof *s);
	if (!fx_have_fmnist())
		return false;
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s.onnx", name);
	cr_assert_eq(graph_load_onnx(fx_src(rel), &s->g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(dataset_load_idx(FX_FMNIST_TRAIN_IMAGES,
				      FX_FMNIST_TRAIN_LABELS, &s->train), PRESSO_OK);
	cr_assert_eq(dataset_load_idx(FX_FMNIST_TEST_IMAGES,
				      FX_FMNIST_TEST_LABELS, &s->test), PRESSO_OK);
	s->norm = (struct normalize){.scale = 1.0f / 255, .n_channels = 1, .mean = {0.2860f},
				     .std = {0.3530f}};
	cr_assert_eq(dataset_make_splits(s->train->n, 1, 1000, 1000, &s->calib, &s->valid), PRESSO_OK);
	cr_assert_eq(split_range(s->test->n, fx_sanitized() ? SANITIZED_IMAGES : 0, &s->all),
		     PRESSO_OK);
	cr_assert_eq(graph_layers(s->g, &s->ls, &s->nl), PRESSO_OK);
	cr_assert_eq(calib_run(s->g, s->train, &s->norm, &s->calib, 100, &s->cal), PRESSO_OK);
	return true;
}

static void free_shipped(struct shipped *s)
{
	calib_free(s->cal);
	free(s->ls);
	split_free(&s->calib);
	split_free(&s->valid);
	split_free(&s->all);
	dataset_free(s->train);
	dataset_free(s->test);
	graph_free(s->g);
}

/* W8A8 on the whole test set within W8A8_MAX_DROP_POINTS of FP32, and at
 * least min_shrink times smaller. */
static void check_w8a8_shrink(const char *name, double min_shrink)
{
	struct shipped s;
	if (!load_shipped(name, &s))
		cr_skip_test("dataset-fashion-mnist is not installed");
	struct policy *p;
	cr_assert_eq(policy_load("int8", s.ls, s.nl, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(s.g, p, s.cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	struct eval_model fm = {s.g, NULL}, qm = {s.g, m};
	struct eval_result rf, rq;
	cr_assert_eq(eval_accuracy(&fm, s.test, &s.norm, &s.all, 100, 2, &rf), PRESSO_OK);
	cr_assert_eq(eval_accuracy(&qm, s.test, &s.norm, &s.all, 100, 2, &rq), PRESSO_OK, "%s",
		     status_msg());
	cr_log_info("%s: FP32 %.2f%%, W8A8 %.2f%% (%s kernels)", name, rf.accuracy_pct,
		    rq.accuracy_pct, q8_isa_name(qc.isa));
	cr_assert_leq(rf.accuracy_pct - rq.accuracy_pct,
		      fx_sanitized() ? SANITIZED_MAX_DROP_POINTS : W8A8_MAX_DROP_POINTS,
		      "%s: W8A8 %.2f%% vs FP32 %.2f%%", name, rq.accuracy_pct, rf.accuracy_pct);
	struct qmodel_size zq, zf;
	qmodel_size(m, &zq);
	qmodel_fp32_size(s.g, &zf);
	cr_assert_lt((double)zq.size_bytes * min_shrink, (double)zf.size_bytes,
		     "%s: %lld bytes at 8 bits against %lld in FP32", name, (long long)zq.size_bytes,
		     (long long)zf.size_bytes);
	qmodel_free(m);
	policy_free(p);
	free_shipped(&s);
}

static void check_w8a8(const char *name)
{
	check_w8a8_shrink(name, 2.0);
}

Test(shipped, lenet_w8a8, .timeout = 600) { check_w8a8("lenet"); }
Test(shipped, mobilenetv2_w8a8, .timeout = 600) { check_w8a8("mobilenetv2"); }
Test(shipped, resnet_w8a8, .timeout = 600) { check_w8a8("resnet"); }
/* the LSTM's input projection and its recurrent weights R at 8 bits (R stays
 * FP32 in the size and 24,714 weights give 1.30x when R is not quantized) */
Test(shipped, lstm_w8a8, .timeout = 600) { check_w8a8_shrink("lstm", 3.4); }

/* The LSTM's R takes its input projection's width (the FC's does not matter):
 * one scale per row of ONNX's R, every weight within half a step of the
 * scale's grid or at its end, and the recurrence reads it: 2-bit R moves the
 * logits where the projection alone at 8 bits does not reach. */
Test(shipped, lstm_recurrent_weights_take_the_projection_width, .timeout = 600)
{
	struct shipped s;
	if (!load_shipped("lstm", &s))
		cr_skip_test("dataset-fashion-mnist is not installed");
	cr_assert_eq(s.nl, 2);
	cr_assert_eq(s.g->nodes[s.ls[0].node].op, OP_MATMUL);
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct eval_result res[2];
	for (int k = 0; k < 2; k++) {
		int bits = k ? 2 : 4;
		struct policy *p;
		cr_assert_eq(policy_load("int8", s.ls, s.nl, &p), PRESSO_OK);
		p->layers[0].bits = bits;
		struct qmodel *m;
		cr_assert_eq(qmodel_build(s.g, p, s.cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(qmodel_n_qconsts(m), 1);
		struct qconst_view q;
		qmodel_qconst_view(m, 0, &q);
		cr_assert_eq(q.bits, bits);
		const struct value *rv = &s.g->values[q.value];
		int64_t dirs = rv->shape.dims[0], h = rv->shape.dims[1], gh = rv->shape.dims[2];
		cr_assert_eq(q.n_out, dirs * gh);
		cr_assert_eq(q.k, h);
		int qmax = quant_weight_qmax(bits);
		for (int64_t d = 0; d < dirs; d++)
			for (int64_t j = 0; j < h; j++)
				for (int64_t u = 0; u < gh; u++) {
					int64_t row = d * gh + u;
					float w = rv->data[(d * h + j) * gh + u];
					int code = q.w[row * h + j];
					cr_assert_leq(abs(code), qmax);
					if (bits > 2 && abs(code) < qmax)
						cr_assert_leq(fabsf(w - (float)code * q.w_scale[row]),
							      0.5001f * q.w_scale[row]);
				}
		struct eval_model qm = {s.g, m};
		cr_assert_eq(eval_accuracy(&qm, s.test, &s.norm, &s.all, 100, 2, &res[k]), PRESSO_OK);
		cr_log_info("lstm: projection and R at %d bits: %.2f%%", bits, res[k].accuracy_pct);
		qmodel_free(m);
		policy_free(p);
	}
	struct eval_model fm = {s.g, NULL};
	struct eval_result rf;
	cr_assert_eq(eval_accuracy(&fm, s.test, &s.norm, &s.all, 100, 2, &rf), PRESSO_OK);
	/* 4 bits: within a point of FP32; 2 bits: measurably below 4 bits */
	cr_assert_leq(rf.accuracy_pct - res[0].accuracy_pct, fx_sanitized() ? 2.0 : 1.0);
	cr_assert_lt(res[1].accuracy_pct, res[0].accuracy_pct - 2.0);
	free_shipped(&s);
}

Test(shipped, low_bit_policies_run_on_every_path, .timeout = 600)
{
	struct shipped s;
	if (!load_shipped("mobilenetv2", &s))
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *policies[] = {"int4", "{\"default\": {\"bits\": 2}}",
				  "{\"default\": {\"bits\": 1, \"act_bits\": 4}}"};
	struct split few;
	cr_assert_eq(split_range(s.test->n, fx_sanitized() ? 100 : 300, &few), PRESSO_OK);
	for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
		struct policy *p;
		if (k == 0)
			cr_assert_eq(policy_load(policies[k], s.ls, s.nl, &p), PRESSO_OK);
		else
			cr_assert_eq(policy_parse(policies[k], "p", s.ls, s.nl, &p), PRESSO_OK);
		int64_t correct[2] = {-1, -1};
		for (int k2 = 0; k2 < 2 * Q8_ISA_COUNT; k2++) {
			int isa = k2 % Q8_ISA_COUNT, rq = k2 / Q8_ISA_COUNT;
			if (!q8_isa_supported((enum q8_isa)isa))
				continue;
			struct quant_config qc = {CALIB_PERCENTILE, 99.99, (enum q8_isa)isa, NULL, NULL,
						  (enum requant_mode)rq};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(s.g, p, s.cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			struct eval_model qm = {s.g, m};
			struct eval_result r;
			cr_assert_eq(eval_accuracy(&qm, s.test, &s.norm, &few, 50, 1, &r), PRESSO_OK);
			if (correct[rq] < 0)
				correct[rq] = r.n_correct;
			cr_assert_eq(r.n_correct, correct[rq], "policy %zu: path %s disagrees (%s)", k,
				     q8_isa_name((enum q8_isa)isa), rq ? "Q31" : "float");
			qmodel_free(m);
		}
		/* float and Q31 requantization: the same accuracy within 2% of the images */
		cr_assert_leq(llabs(correct[0] - correct[1]) * 50, few.n, "policy %zu: %lld vs %lld",
			      k, (long long)correct[0], (long long)correct[1]);
		policy_free(p);
	}
	split_free(&few);
	free_shipped(&s);
}

/* NHWC input -> Transpose (fallback) -> Conv -> AveragePool with padding counted
 * and MaxPool branches -> Concat (fallback) -> GAP -> Flatten -> Gemm -> Softmax
 * (fallback, float output): mixed integer and float steps track FP32. */
Test(qengine, fallback_ops_track_fp32)
{
	uint32_t s = 4;
	float w[6 * 3 * 9], wf[5 * 12], bf[5];
	for (size_t i = 0; i < sizeof w / 4; i++) w[i] = 0.3f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++) wf[i] = frand(&s);
	for (int i = 0; i < 5; i++) bf[i] = 0.1f * frand(&s);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 6, 6, 3}, 4);
	mb_init_f32(&b, "w", (int64_t[]){6, 3, 3, 3}, 4, w);
	mb_init_f32(&b, "wf", (int64_t[]){12, 5}, 2, wf);
	mb_init_f32(&b, "bf", (int64_t[]){5}, 1, bf);
	Onnx__NodeProto *n = mb_node(&b, "Transpose", "nchw", (const char *[]){"x", NULL}, "t");
	mb_attr_ints(&b, n, "perm", (int64_t[]){0, 3, 1, 2}, 4);
	n = mb_node(&b, "Conv", "conv", (const char *[]){"t", "w", NULL}, "c");
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	n = mb_node(&b, "AveragePool", "avg", (const char *[]){"c", NULL}, "a");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_attr_int(&b, n, "count_include_pad", 1);
	n = mb_node(&b, "MaxPool", "max", (const char *[]){"c", NULL}, "m");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	n = mb_node(&b, "Concat", "cat", (const char *[]){"a", "m", NULL}, "k");
	mb_attr_int(&b, n, "axis", 1);
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"k", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	mb_node(&b, "MatMul", "fc", (const char *[]){"f", "wf", NULL}, "mm");
	mb_node(&b, "Add", "fc_b", (const char *[]){"mm", "bf", NULL}, "l");
	mb_node(&b, "Softmax", "prob", (const char *[]){"l", NULL}, "y");
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct dataset *ds = random_images(48, 12);
	ds->c = 3;
	ds->hwc = true; /* the stored images are read as NHWC */
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 2);
	struct policy *p;
	cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	struct engine *fe;
	struct qengine *qe;
	cr_assert_eq(engine_create(g, 16, &fe), PRESSO_OK);
	cr_assert_eq(qengine_create(m, 16, &qe), PRESSO_OK);
	int64_t idx[16];
	for (int i = 0; i < 16; i++)
		idx[i] = i;
	dataset_get_batch(ds, &IDENTITY_NORM, idx, 16, true, engine_input(fe, 0), NULL);
	dataset_get_batch(ds, &IDENTITY_NORM, idx, 16, true, qengine_input(qe, 0), NULL);
	cr_assert_eq(engine_run(fe, 16), PRESSO_OK);
	cr_assert_eq(qengine_run(qe, 16), PRESSO_OK, "%s", status_msg());
	struct shape os;
	const float *yf = engine_output(fe, 0, NULL), *yq = qengine_output(qe, 0, &os);
	cr_assert_eq(os.dims[0], 16);
	cr_assert_eq(os.dims[1], 5);
	double worst = 0, sum = 0;
	for (int i = 0; i < 16 * 5; i++) {
		worst = fmax(worst, fabs(yf[i] - yq[i]));
		sum += yq[i];
	}
	/* probabilities: each row sums to 1 and stays within a few hundredths */
	cr_assert_float_eq(sum, 16.0, 1e-3);
	cr_assert_lt(worst, 0.03, "largest probability difference %.4f", worst);
	engine_free(fe);
	qengine_free(qe);
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* Only GEMMs over 6x6x3 inputs: 1x1 convs 3 -> 40 and 40 -> 33 (each a GEMM on
 * the NHWC input as it is), flatten, Gemm 1188 -> 50 and 50 -> 4 logits. */
static struct graph *gemm_net(struct mb *b)
{
	uint32_t s = 7;
	enum { C1 = 40, C2 = 33, F1 = 50, KF = C2 * 36 };
	static float w1[C1 * 3], w2[C2 * C1], wf1[F1 * KF], wf2[4 * F1], b1[C1], b2[C2], bf1[F1],
		bf2[4];
	for (size_t i = 0; i < sizeof w1 / 4; i++) w1[i] = 0.5f * frand(&s);
	for (size_t i = 0; i < sizeof w2 / 4; i++) w2[i] = 0.3f * frand(&s);
	for (size_t i = 0; i < sizeof wf1 / 4; i++) wf1[i] = 0.05f * frand(&s);
	for (size_t i = 0; i < sizeof wf2 / 4; i++) wf2[i] = 0.3f * frand(&s);
	for (int i = 0; i < C1; i++) b1[i] = 0.1f * frand(&s);
	for (int i = 0; i < C2; i++) b2[i] = 0.1f * frand(&s);
	for (int i = 0; i < F1; i++) bf1[i] = 0.1f * frand(&s);
	for (int i = 0; i < 4; i++) bf2[i] = 0.1f * frand(&s);
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(b, "w1", (int64_t[]){C1, 3, 1, 1}, 4, w1);
	mb_init_f32(b, "b1", (int64_t[]){C1}, 1, b1);
	mb_init_f32(b, "w2", (int64_t[]){C2, C1, 1, 1}, 4, w2);
	mb_init_f32(b, "b2", (int64_t[]){C2}, 1, b2);
	mb_init_f32(b, "wf1", (int64_t[]){F1, KF}, 2, wf1);
	mb_init_f32(b, "bf1", (int64_t[]){F1}, 1, bf1);
	mb_init_f32(b, "wf2", (int64_t[]){4, F1}, 2, wf2);
	mb_init_f32(b, "bf2", (int64_t[]){4}, 1, bf2);
	mb_node(b, "Conv", "pw1", (const char *[]){"x", "w1", "b1", NULL}, "c1");
	mb_node(b, "Relu", "r1", (const char *[]){"c1", NULL}, "a1");
	mb_node(b, "Conv", "pw2", (const char *[]){"a1", "w2", "b2", NULL}, "c2");
	mb_node(b, "Relu", "r2", (const char *[]){"c2", NULL}, "a2");
	mb_node(b, "Flatten", "flat", (const char *[]){"a2", NULL}, "f");
	Onnx__NodeProto *n = mb_node(b, "Gemm", "fc1", (const char *[]){"f", "wf1", "bf1", NULL}, "h");
	mb_attr_int(b, n, "transB", 1);
	mb_node(b, "Relu", "r3", (const char *[]){"h", NULL}, "a3");
	n = mb_node(b, "Gemm", "fc2", (const char *[]){"a3", "wf2", "bf2", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	return g;
}

/* Under the int4 policy (the middle layers at 4 bits, the first and last at
 * 8) on the avx512vnni path, the 4-layer net g keeps its 4-bit layers' weights
 * two to a byte: the logits are bit-identical to int8 packing
 * (PRESSO_PACK_W4=0) and to the reference path, at batch 1 and 37, in both
 * requantization forms, the stored size is the same, and the packed weights
 * take under max_pct % of int8 packing's bytes. */
static void check_w4_packing(struct graph *g, uint32_t seed, int max_pct, const char *what)
{
	struct dataset *ds = random_images(37, seed);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 4);
	struct policy *p;
	cr_assert_eq(policy_load("int4", ls, nl, &p), PRESSO_OK);
	for (int rq = 0; rq < 2; rq++) {
		struct qmodel *m[3]; /* nibbles, int8 packing, reference path */
		struct qmodel_size z[3];
		for (int v = 0; v < 3; v++) {
			struct quant_config qc = {CALIB_MINMAX, 99.99,
						  v == 2 ? Q8_ISA_REF : Q8_ISA_AVX512VNNI, NULL, NULL,
						  (enum requant_mode)rq};
			if (v == 1)
				setenv(QENGINE_PACK_W4_ENV, "0", 1);
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m[v]), PRESSO_OK, "%s",
				     status_msg());
			unsetenv(QENGINE_PACK_W4_ENV);
			qmodel_size(m[v], &z[v]);
		}
		cr_assert_lt(z[0].resident_bytes * 100, z[1].resident_bytes * max_pct,
			     "%s: packed weights: %lld bytes with nibbles, %lld as int8", what,
			     (long long)z[0].resident_bytes, (long long)z[1].resident_bytes);
		cr_assert_eq(z[0].size_bytes, z[1].size_bytes, "the stored size does not change");
		cr_log_info("int4 %s: packed weights %lld bytes (int8: %lld)", what,
			    (long long)z[0].resident_bytes, (long long)z[1].resident_bytes);
		int batches[] = {1, 37};
		for (int bi = 0; bi < 2; bi++) {
			float out[3][37 * 4];
			for (int v = 0; v < 3; v++)
				run_q(m[v], ds, batches[bi], out[v]);
			size_t bytes = sizeof(float) * 4 * (size_t)batches[bi];
			cr_assert_arr_eq(out[0], out[1], bytes, "%s, batch %d, %s: nibbles vs int8",
					 what, batches[bi], rq ? "Q31" : "float");
			cr_assert_arr_eq(out[0], out[2], bytes,
					 "%s, batch %d, %s: nibbles vs reference", what,
					 batches[bi], rq ? "Q31" : "float");
		}
		for (int v = 0; v < 3; v++)
			qmodel_free(m[v]);
	}
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
}

/* The GEMM net: its 1x1 convs and Gemms at 4 bits take little over half the
 * bytes. */
Test(qengine, w4_packing_equals_int8_packing)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	struct mb b;
	struct graph *g = gemm_net(&b);
	check_w4_packing(g, 9, 55, "GEMM net");
	graph_free(g);
	mb_free(&b);
}

/* 3x3 convs over 6x6x3 inputs: 3 -> 16, 16 -> 16 (the row tiles, two rows
 * at a time) and 16 -> 40 with stride 2 (the 8 x 32 tiles, a 16-channel
 * block left over), all padded, then GAP, flatten, Gemm 40 -> 4 logits. */
static struct graph *conv3x3_net(struct mb *b)
{
	uint32_t s = 11;
	enum { C1 = 16, C2 = 16, C3 = 40 };
	static float w1[C1 * 27], w2[C2 * C1 * 9], w3[C3 * C2 * 9], wf[4 * C3], b1[C1], b2[C2],
		b3[C3], bf[4];
	for (size_t i = 0; i < sizeof w1 / 4; i++) w1[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof w2 / 4; i++) w2[i] = 0.2f * frand(&s);
	for (size_t i = 0; i < sizeof w3 / 4; i++) w3[i] = 0.2f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++) wf[i] = 0.5f * frand(&s);
	for (int i = 0; i < C3; i++) {
		b3[i] = 0.1f * frand(&s);
		if (i < C1) {
			b1[i] = 0.1f * frand(&s);
			b2[i] = 0.1f * frand(&s);
		}
		if (i < 4)
			bf[i] = 0.1f * frand(&s);
	}
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(b, "w1", (int64_t[]){C1, 3, 3, 3}, 4, w1);
	mb_init_f32(b, "b1", (int64_t[]){C1}, 1, b1);
	mb_init_f32(b, "w2", (int64_t[]){C2, C1, 3, 3}, 4, w2);
	mb_init_f32(b, "b2", (int64_t[]){C2}, 1, b2);
	mb_init_f32(b, "w3", (int64_t[]){C3, C2, 3, 3}, 4, w3);
	mb_init_f32(b, "b3", (int64_t[]){C3}, 1, b3);
	mb_init_f32(b, "wf", (int64_t[]){4, C3}, 2, wf);
	mb_init_f32(b, "bf", (int64_t[]){4}, 1, bf);
	const char *ins[][4] = {{"x", "w1", "b1", NULL}, {"a1", "w2", "b2", NULL},
				{"a2", "w3", "b3", NULL}};
	const char *outs[] = {"c1", "c2", "c3"}, *acts[] = {"a1", "a2", "a3"};
	for (int l = 0; l < 3; l++) {
		char name[8];
		snprintf(name, sizeof name, "conv%d", l + 1);
		Onnx__NodeProto *n = mb_node(b, "Conv", name, ins[l], outs[l]);
		mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
		if (l == 2)
			mb_attr_ints(b, n, "strides", (int64_t[]){2, 2}, 2);
		snprintf(name, sizeof name, "relu%d", l + 1);
		mb_node(b, "Relu", name, (const char *[]){outs[l], NULL}, acts[l]);
	}
	mb_node(b, "GlobalAveragePool", "gap", (const char *[]){"a3", NULL}, "g");
	mb_node(b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	Onnx__NodeProto *n = mb_node(b, "Gemm", "fc", (const char *[]){"f", "wf", "bf", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	return g;
}

/* The conv net: conv2 and conv3 at 4 bits, expanded per call (the 8-bit
 * first conv and Gemm stay as they were). */
Test(qengine, w4_conv_packing_equals_int8_packing)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	struct mb b;
	struct graph *g = conv3x3_net(&b);
	check_w4_packing(g, 5, 65, "conv net");
	graph_free(g);
	mb_free(&b);
}

/* A batch larger than the engine's chunk runs in chunks of images: the logits
 * must equal those of the images run one at a time. */
Test(qengine, chunked_batches_equal_single_images)
{
	struct mb b;
	struct graph *g = small_net(&b);
	struct dataset *ds = random_images(37, 21);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_load("int4", ls, nl, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	float all[37 * 4];
	run_q(m, ds, 37, all);
	struct qengine *e;
	cr_assert_eq(qengine_create(m, 1, &e), PRESSO_OK);
	for (int i = 0; i < 37; i++) {
		int64_t idx = i;
		dataset_get_batch(ds, &IDENTITY_NORM, &idx, 1, false, qengine_input(e, 0), NULL);
		cr_assert_eq(qengine_run(e, 1), PRESSO_OK);
		cr_assert_arr_eq(qengine_output(e, 0, NULL), all + 4 * i, 4 * sizeof(float),
				 "image %d differs between batch 37 and batch 1", i);
	}
	qengine_free(e);
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* Max-pooling commutes with the (monotone) quantization, so the INT8 engine's
 * pool must give exactly the max of the quantized inputs over each window
 * (padding ignored): kernels 2 and 3, strides 1 to 3, with and without
 * padding, 1 to 4 channels (what a dataset can feed). */
Test(qengine, maxpool_is_the_max_of_quantized_inputs)
{
	const struct {
		int k, s, pad, c;
	} cases[] = {{2, 2, 0, 4}, {3, 1, 1, 3}, {3, 2, 1, 2}, {2, 1, 0, 3}, {3, 3, 0, 1},
		     {3, 2, 0, 4}, {4, 1, 2, 3}};
	const int H = 11, W = 13, N = 3;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		int k = cases[ci].k, st = cases[ci].s, pad = cases[ci].pad, C = cases[ci].c;
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, C, H, W}, 4);
		Onnx__NodeProto *n = mb_node(&b, "MaxPool", "max", (const char *[]){"x", NULL}, "m");
		mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){k, k}, 2);
		mb_attr_ints(&b, n, "strides", (int64_t[]){st, st}, 2);
		mb_attr_ints(&b, n, "pads", (int64_t[]){pad, pad, pad, pad}, 4);
		/* flat: calibration wants [N, scores] */
		mb_node(&b, "Flatten", "flat", (const char *[]){"m", NULL}, "y");
		mb_output(&b, "y");
		int Ho = (H + 2 * pad - k) / st + 1, Wo = (W + 2 * pad - k) / st + 1;
		size_t nb;
		uint8_t *bytes = mb_pack(&b, &nb);
		struct graph *g;
		cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
		struct dataset *ds = calloc(1, sizeof *ds);
		ds->n = 8;
		ds->c = C;
		ds->h = H;
		ds->w = W;
		ds->n_classes = C * Ho * Wo;
		ds->f32 = malloc(sizeof(float) * (size_t)ds->n * C * H * W);
		ds->labels = calloc((size_t)ds->n, sizeof(int32_t));
		uint32_t seed = 31 + (uint32_t)ci;
		for (int i = 0; i < ds->n * C * H * W; i++)
			ds->f32[i] = frand(&seed);
		struct calib *cal = calibrate(g, ds);
		struct policy *p;
		cr_assert_eq(policy_load("int8", NULL, 0, &p), PRESSO_OK, "%s", status_msg());
		struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
		struct qmodel *m;
		cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		struct qparams qp;
		cr_assert(qmodel_value_qparams(m, g->inputs[0], &qp));
		struct qengine *e;
		cr_assert_eq(qengine_create(m, N, &e), PRESSO_OK);
		float *x = qengine_input(e, 0);
		memcpy(x, ds->f32, sizeof(float) * (size_t)N * C * H * W);
		cr_assert_eq(qengine_run(e, N), PRESSO_OK, "%s", status_msg());
		struct shape os;
		const float *y = qengine_output(e, 0, &os);
		cr_assert_eq(os.dims[1], C * Ho * Wo);
		for (int img = 0; img < N; img++)
			for (int c = 0; c < C; c++)
				for (int oh = 0; oh < Ho; oh++)
					for (int ow = 0; ow < Wo; ow++) {
						int best = -1;
						for (int ki = 0; ki < k; ki++)
							for (int kj = 0; kj < k; kj++) {
								int ih = oh * st - pad + ki, iw = ow * st - pad + kj;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								int q = quant_act_quantize(
									ds->f32[(((size_t)img * C + c) * H + ih) * W + iw], &qp);
								best = q > best ? q : best;
							}
						float want = qp.scale * (float)(best - qp.zero);
						float got = y[(((size_t)img * C + c) * Ho + oh) * Wo + ow];
						cr_assert_eq(got, want, "k=%d s=%d pad=%d c=%d at (%d,%d,%d,%d): %g, want %g",
							     k, st, pad, C, img, c, oh, ow, got, want);
					}
		qengine_free(e);
		qmodel_free(m);
		policy_free(p);
		calib_free(cal);
		dataset_free(ds);
		graph_free(g);
		mb_free(&b);
	}
}

/* --- activations, Mul, attention: LUT and MUL steps, fallbacks --------------------- */

/* n items of c x h x w floats uniform in [lo, hi]. */
static struct dataset *uniform_items(int n, int c, int h, int w, float lo, float hi, uint32_t seed)
{
	struct dataset *ds = calloc(1, sizeof *ds);
	ds->n = n;
	ds->c = c;
	ds->h = h;
	ds->w = w;
	ds->n_classes = 2;
	ds->f32 = malloc(sizeof(float) * (size_t)n * c * h * w);
	ds->labels = calloc((size_t)n, sizeof(int32_t));
	for (int64_t i = 0; i < (int64_t)n * c * h * w; i++)
		ds->f32[i] = lo + (hi - lo) * 0.5f * (frand(&seed) + 1.0f);
	return ds;
}

static struct graph *load_mb(struct mb *b)
{
	size_t nb;
	uint8_t *bytes = mb_pack(b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	return g;
}

/* ONNX's nearest-resize source index, written out here from the operator's
 * text (not from the kernel) for the test below. */
static int64_t onnx_nearest_src(const char *coord, const char *rounding, int64_t i, int64_t len_in,
				int64_t len_out, double scale)
{
	double x;
	if (strcmp(coord, "asymmetric") == 0)
		x = (double)i / scale;
	else if (strcmp(coord, "align_corners") == 0)
		x = len_out == 1 ? 0 : (double)i * (double)(len_in - 1) / (double)(len_out - 1);
	else if (strcmp(coord, "pytorch_half_pixel") == 0)
		x = len_out > 1 ? ((double)i + 0.5) / scale - 0.5 : 0;
	else /* half_pixel */
		x = ((double)i + 0.5) / scale - 0.5;
	double r;
	if (strcmp(rounding, "floor") == 0)
		r = floor(x);
	else if (strcmp(rounding, "ceil") == 0)
		r = ceil(x);
	else if (x == floor(x) + 0.5) /* a tie */
		r = strcmp(rounding, "round_prefer_ceil") == 0 ? ceil(x) : floor(x);
	else
		r = round(x);
	return r < 0 ? 0 : r > (double)(len_in - 1) ? len_in - 1 : (int64_t)r;
}

/* A nearest Resize runs as an integer gather: every output is exactly the
 * quantized input element ONNX's rule picks, for scales and sizes, every
 * coordinate mode and rounding, up and down. */
Test(qengine, resize_is_a_gather_of_quantized_inputs)
{
	const struct {
		const char *coord, *round;
		bool sizes;
		int64_t ho, wo;     /* sizes, or 0 */
		float sh, sw;       /* scales, or 0 */
	} cases[] = {{"asymmetric", "floor", false, 0, 0, 2.0f, 3.0f},
		     {"half_pixel", "round_prefer_floor", true, 4, 5, 0, 0},
		     {"align_corners", "ceil", true, 9, 17, 0, 0},
		     {"pytorch_half_pixel", "round_prefer_ceil", false, 0, 0, 0.6f, 1.7f},
		     {"half_pixel", "round_prefer_ceil", false, 0, 0, 1.5f, 0.5f}};
	const int H = 7, W = 11, C = 3, N = 2;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, C, H, W}, 4);
		if (cases[ci].sizes)
			mb_init_i64(&b, "sizes", (int64_t[]){4}, 1,
				    (int64_t[]){1, C, cases[ci].ho, cases[ci].wo});
		else
			mb_init_f32(&b, "scales", (int64_t[]){4}, 1,
				    (float[]){1, 1, cases[ci].sh, cases[ci].sw});
		Onnx__NodeProto *n = mb_node(
			&b, "Resize", "up",
			cases[ci].sizes ? (const char *[]){"x", "", "", "sizes", NULL}
					: (const char *[]){"x", "", "scales", NULL},
			"r");
		mb_attr_string(&b, n, "mode", "nearest");
		mb_attr_string(&b, n, "coordinate_transformation_mode", cases[ci].coord);
		mb_attr_string(&b, n, "nearest_mode", cases[ci].round);
		mb_node(&b, "Flatten", "flat", (const char *[]){"r", NULL}, "y");
		mb_output(&b, "y");
		int64_t Ho = cases[ci].sizes ? cases[ci].ho : (int64_t)floor(H * (double)cases[ci].sh);
		int64_t Wo = cases[ci].sizes ? cases[ci].wo : (int64_t)floor(W * (double)cases[ci].sw);
		double sh = cases[ci].sizes ? (double)(float)((double)Ho / H) : cases[ci].sh;
		double sw = cases[ci].sizes ? (double)(float)((double)Wo / W) : cases[ci].sw;
		struct graph *g = load_mb(&b);
		struct dataset *ds = uniform_items(8, C, H, W, -2.0f, 3.0f, 77 + (uint32_t)ci);
		ds->n_classes = (int)(C * Ho * Wo);
		struct calib *cal = calibrate(g, ds);
		struct policy *p;
		cr_assert_eq(policy_load("int8", NULL, 0, &p), PRESSO_OK, "%s", status_msg());
		struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
		struct qmodel *m;
		cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		int n_int = 0;
		for (int i = 0; i < qmodel_n_steps(m); i++) {
			int node = qmodel_step_node(m, i);
			if (node >= 0 && g->nodes[node].op == OP_RESIZE)
				n_int += qmodel_step_is_integer(m, i);
		}
		cr_assert_eq(n_int, 1, "the Resize runs as an integer step");
		struct qparams qp;
		cr_assert(qmodel_value_qparams(m, g->inputs[0], &qp));
		struct qengine *e;
		cr_assert_eq(qengine_create(m, N, &e), PRESSO_OK);
		memcpy(qengine_input(e, 0), ds->f32, sizeof(float) * (size_t)N * C * H * W);
		cr_assert_eq(qengine_run(e, N), PRESSO_OK, "%s", status_msg());
		struct shape os;
		const float *y = qengine_output(e, 0, &os);
		cr_assert_eq(os.dims[1], C * Ho * Wo);
		for (int img = 0; img < N; img++)
			for (int c = 0; c < C; c++)
				for (int64_t oh = 0; oh < Ho; oh++)
					for (int64_t ow = 0; ow < Wo; ow++) {
						int64_t ih = onnx_nearest_src(cases[ci].coord, cases[ci].round,
									      oh, H, Ho, sh);
						int64_t iw = onnx_nearest_src(cases[ci].coord, cases[ci].round,
									      ow, W, Wo, sw);
						int q = quant_act_quantize(
							ds->f32[(((size_t)img * C + c) * H + ih) * W + iw], &qp);
						float want = qp.scale * (float)(q - qp.zero);
						float got = y[(((size_t)img * C + c) * Ho + oh) * Wo + ow];
						cr_assert_eq(got, want, "%s/%s at (%d,%d,%lld,%lld): %g, want %g",
							     cases[ci].coord, cases[ci].round, img, c,
							     (long long)oh, (long long)ow, got, want);
					}
		qengine_free(e);
		qmodel_free(m);
		policy_free(p);
		calib_free(cal);
		dataset_free(ds);
		graph_free(g);
		mb_free(&b);
	}
}

/* Runs the first n items through the FP32 graph and the quantized model;
 * returns the output count per item. */
static int run_both(const struct graph *g, const struct qmodel *m, const struct dataset *ds, int n,
		    float *yf, float *yq)
{
	int64_t idx[64];
	for (int i = 0; i < n; i++)
		idx[i] = i;
	struct engine *fe;
	struct qengine *qe;
	cr_assert_eq(engine_create(g, n, &fe), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(qengine_create(m, n, &qe), PRESSO_OK, "%s", status_msg());
	dataset_get_batch(ds, &IDENTITY_NORM, idx, n, false, engine_input(fe, 0), NULL);
	dataset_get_batch(ds, &IDENTITY_NORM, idx, n, false, qengine_input(qe, 0), NULL);
	cr_assert_eq(engine_run(fe, n), PRESSO_OK);
	cr_assert_eq(qengine_run(qe, n), PRESSO_OK, "%s", status_msg());
	struct shape sf, sq;
	const float *f = engine_output(fe, 0, &sf), *q = qengine_output(qe, 0, &sq);
	int64_t total = shape_numel(&sf);
	cr_assert_eq(total, shape_numel(&sq));
	memcpy(yf, f, sizeof(float) * (size_t)total);
	memcpy(yq, q, sizeof(float) * (size_t)total);
	engine_free(fe);
	qengine_free(qe);
	return (int)(total / n);
}

static int count_steps(const struct qmodel *m, const struct graph *g, enum op_type op)
{
	int k = 0;
	for (int i = 0; i < qmodel_n_steps(m); i++) {
		int node = qmodel_step_node(m, i);
		k += node >= 0 && g->nodes[node].op == op;
	}
	return k;
}

/* Steps of nodes that run in FP32 between a dequantize and a quantize. */
static int count_fallbacks(const struct qmodel *m)
{
	int k = 0;
	for (int i = 0; i < qmodel_n_steps(m); i++)
		k += qmodel_step_node(m, i) >= 0 && !qmodel_step_is_integer(m, i);
	return k;
}

/* Relative RMS difference of two arrays. */
static double rel_rms(const float *a, const float *b, int n)
{
	double err = 0, ref = 0;
	for (int i = 0; i < n; i++) {
		err += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		ref += (double)b[i] * b[i];
	}
	return sqrt(err / (ref > 0 ? ref : 1));
}

static double d_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double d_hardsigmoid(double x) { return fmax(0, fmin(1, 0.2 * x + 0.5)); }
static double d_hardswish(double x) { return x * fmax(0, fmin(1, x / 6 + 0.5)); }
static double d_leaky(double x) { return x < 0 ? 0.1 * x : x; }
static double d_neg(double x) { return -x; }
static double d_recip(double x) { return 1 / x; }
static double d_half(double x) { return x * 0.5; }
static double d_div(double x) { return x / (double)1.4142135f; }
static double d_add1(double x) { return x + 1; }
static double d_one_minus(double x) { return 1 - x; }
static double d_square(double x) { return x * x; }
static double d_prelu(double x) { return x < 0 ? 0.25 * x : x; }
static double d_elu(double x) { return x < 0 ? expm1(x) : x; }
static double d_selu(double x)
{
	return 1.0507009873554805 * (x <= 0 ? 1.6732632423543772 * expm1(x) : x);
}
static double d_celu2(double x) { return x > 0 ? x : 2.0 * expm1(x / 2.0); }
static double d_softplus(double x) { return log1p(exp(x)); }
static double d_softsign(double x) { return x / (1 + fabs(x)); }
static double d_thresholded(double x) { return x > 0.5 ? x : 0; }
static double d_max_half(double x) { return x > 0.5 ? x : 0.5; }
static double d_min_half(double x) { return x < 0.5 ? x : 0.5; }

/* Each element-wise op on one activation (alone, or with a constant scalar on
 * either side) runs as a 256-entry table: its output is within half an output
 * step (and float rounding) of the exact function at the quantized input, on
 * every path and in both requantization forms alike. */
Test(qengine, element_wise_ops_run_as_tables)
{
	const struct {
		const char *op;
		double (*f)(double);
		float lo, hi;
		int const_at;   /* -1 unary, else the constant's input */
		float c;
		const char *attr;
		float attr_v;
	} cases[] = {
		{"Sigmoid", d_sigmoid, -6, 6, -1, 0, NULL, 0},
		{"Tanh", tanh, -3, 3, -1, 0, NULL, 0},
		{"HardSigmoid", d_hardsigmoid, -4, 4, -1, 0, NULL, 0},
		{"HardSwish", d_hardswish, -4, 4, -1, 0, NULL, 0},
		{"LeakyRelu", d_leaky, -3, 3, -1, 0, "alpha", 0.1f},
		{"Erf", erf, -2, 2, -1, 0, NULL, 0},
		{"Sqrt", sqrt, 0, 4, -1, 0, NULL, 0},
		{"Exp", exp, -2, 1, -1, 0, NULL, 0},
		{"Neg", d_neg, -3, 2, -1, 0, NULL, 0},
		{"Reciprocal", d_recip, 0.5f, 4, -1, 0, NULL, 0},
		{"Abs", fabs, -3, 2, -1, 0, NULL, 0},
		{"Elu", d_elu, -3, 2, -1, 0, NULL, 0},
		{"Selu", d_selu, -3, 2, -1, 0, NULL, 0},
		{"Celu", d_celu2, -3, 2, -1, 0, "alpha", 2.0f},
		{"Softplus", d_softplus, -4, 4, -1, 0, NULL, 0},
		{"Softsign", d_softsign, -4, 4, -1, 0, NULL, 0},
		{"ThresholdedRelu", d_thresholded, -1, 4, -1, 0, "alpha", 0.5f},
		{"Log", log, 0.25f, 4, -1, 0, NULL, 0},
		{"Max", d_max_half, -3, 3, 1, 0.5f, NULL, 0},
		{"Min", d_min_half, -3, 3, 0, 0.5f, NULL, 0},
		{"Mul", d_half, -3, 3, 1, 0.5f, NULL, 0},
		{"Div", d_div, -3, 3, 1, 1.4142135f, NULL, 0},
		{"Add", d_add1, -3, 3, 0, 1.0f, NULL, 0},
		{"Sub", d_one_minus, -3, 3, 0, 1.0f, NULL, 0},
		{"Pow", d_square, -3, 3, 1, 2.0f, NULL, 0},
		{"PRelu", d_prelu, -3, 3, 1, 0.25f, NULL, 0},
	};
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct mb b;
		mb_init(&b, 14);
		mb_input(&b, "x", (int64_t[]){-1, 64}, 2);
		mb_init_f32(&b, "c", NULL, 0, (float[]){cases[ci].c});
		const char *in2[] = {"x", "c", NULL}, *in1[] = {"x", NULL}, *inr[] = {"c", "x", NULL};
		const char *const *ins = cases[ci].const_at < 0 ? in1 : cases[ci].const_at == 1 ? in2 : inr;
		Onnx__NodeProto *n = mb_node(&b, cases[ci].op, "op", ins, "t");
		if (cases[ci].attr)
			mb_attr_float(&b, n, cases[ci].attr, cases[ci].attr_v);
		mb_node(&b, "Identity", "out", (const char *[]){"t", NULL}, "y");
		mb_output(&b, "y");
		struct graph *g = load_mb(&b);
		struct dataset *ds = uniform_items(32, 1, 4, 16, cases[ci].lo, cases[ci].hi, 40 + (uint32_t)ci);
		struct calib *cal = calibrate(g, ds);
		struct policy *p;
		cr_assert_eq(policy_load("int8", NULL, 0, &p), PRESSO_OK);
		float ref_out[32 * 64];
		for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
			for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
				if (!q8_isa_supported((enum q8_isa)isa))
					continue;
				struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
							  (enum requant_mode)rq};
				struct qmodel *m;
				cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
				cr_assert_eq(qmodel_n_steps(m), 4, "%s: quantize, table, reshape, dequantize",
					     cases[ci].op);
				cr_assert(qmodel_step_is_integer(m, 1), "%s runs as a table", cases[ci].op);
				float yf[32 * 64], yq[32 * 64];
				int per = run_both(g, m, ds, 32, yf, yq);
				cr_assert_eq(per, 64);
				if (rq == REQUANT_FLOAT && isa == Q8_ISA_REF) {
					memcpy(ref_out, yq, sizeof yq);
					struct qparams qx, qy;
					cr_assert(qmodel_value_qparams(m, g->inputs[0], &qx));
					cr_assert(qmodel_value_qparams(m, g->outputs[0], &qy));
					float lo_y = qy.scale * (float)(0 - qy.zero);
					float hi_y = qy.scale * (float)(255 - qy.zero);
					for (int i = 0; i < 32 * 64; i++) {
						int q = quant_act_quantize(ds->f32[i], &qx);
						double xq = qx.scale * (float)(q - qx.zero);
						double want = fmin(fmax(cases[ci].f(xq), lo_y), hi_y);
						cr_assert(fabs(yq[i] - want) <= qy.scale * 0.5001 + 1e-6 * fabs(want),
							  "%s(%g): %g, want %g (step %g)", cases[ci].op, xq,
							  yq[i], want, qy.scale);
					}
					/* and so near the FP32 output: a few steps of the output */
					cr_assert_lt(rel_rms(yq, yf, 32 * 64), 0.02, "%s: relative error %.4f",
						     cases[ci].op, rel_rms(yq, yf, 32 * 64));
				} else {
					cr_assert_arr_eq(yq, ref_out, sizeof yq, "%s: path %s (%s) differs",
							 cases[ci].op, q8_isa_name((enum q8_isa)isa),
							 rq == REQUANT_Q31 ? "Q31" : "float");
				}
				qmodel_free(m);
			}
		policy_free(p);
		calib_free(cal);
		dataset_free(ds);
		graph_free(g);
		mb_free(&b);
	}
}

/* A squeeze-excite block as MobileNetV3 has it, after a conv:
 *   c = Conv(x); s = GlobalAveragePool(c) -> Conv -> Relu -> Conv -> HardSigmoid;
 *   y = Mul(c, s) -> Conv 1x1
 * The gate runs as a table, the Mul as an integer Mul of each pixel's channels
 * by the image's gate; INT8 tracks FP32 on every path, identically. */
static struct graph *se_block(struct mb *b)
{
	uint32_t s = 3;
	float w0[8 * 3 * 9], w1[4 * 8], b1[4], w2[8 * 4], b2[8], w3[5 * 8];
	for (size_t i = 0; i < sizeof w0 / 4; i++) w0[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof w1 / 4; i++) w1[i] = 0.6f * frand(&s);
	for (size_t i = 0; i < sizeof w2 / 4; i++) w2[i] = 1.5f * frand(&s);
	for (size_t i = 0; i < sizeof w3 / 4; i++) w3[i] = 0.5f * frand(&s);
	for (int i = 0; i < 4; i++) b1[i] = 0.1f * frand(&s);
	for (int i = 0; i < 8; i++) b2[i] = 0.5f * frand(&s);
	mb_init(b, 14);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(b, "w0", (int64_t[]){8, 3, 3, 3}, 4, w0);
	mb_init_f32(b, "w1", (int64_t[]){4, 8, 1, 1}, 4, w1);
	mb_init_f32(b, "b1", (int64_t[]){4}, 1, b1);
	mb_init_f32(b, "w2", (int64_t[]){8, 4, 1, 1}, 4, w2);
	mb_init_f32(b, "b2", (int64_t[]){8}, 1, b2);
	mb_init_f32(b, "w3", (int64_t[]){5, 8, 1, 1}, 4, w3);
	Onnx__NodeProto *n = mb_node(b, "Conv", "conv0", (const char *[]){"x", "w0", NULL}, "c0");
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(b, "HardSwish", "act0", (const char *[]){"c0", NULL}, "c");
	mb_node(b, "GlobalAveragePool", "squeeze", (const char *[]){"c", NULL}, "s0");
	mb_node(b, "Conv", "reduce", (const char *[]){"s0", "w1", "b1", NULL}, "s1");
	mb_node(b, "Relu", "relu", (const char *[]){"s1", NULL}, "s2");
	mb_node(b, "Conv", "expand", (const char *[]){"s2", "w2", "b2", NULL}, "s3");
	mb_node(b, "HardSigmoid", "gate", (const char *[]){"s3", NULL}, "s");
	mb_node(b, "Mul", "excite", (const char *[]){"c", "s", NULL}, "e");
	mb_node(b, "Conv", "project", (const char *[]){"e", "w3", NULL}, "p");
	mb_node(b, "Flatten", "flat", (const char *[]){"p", NULL}, "y");
	mb_output(b, "y");
	return load_mb(b);
}

Test(qengine, squeeze_excite_block_tracks_fp32)
{
	struct mb b;
	struct graph *g = se_block(&b);
	struct dataset *ds = uniform_items(48, 3, 6, 6, -1, 1, 77);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 4);
	struct policy *p;
	cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
	float ref[2][48 * 180];
	int n_paths = 0;
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			if (!q8_isa_supported((enum q8_isa)isa))
				continue;
			struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
						  (enum requant_mode)rq};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			/* every node in integers: no FP32 fallback */
			for (int i = 0; i < qmodel_n_steps(m); i++)
				cr_assert(qmodel_step_node(m, i) < 0 || qmodel_step_is_integer(m, i),
					  "node '%s' runs in float", g->nodes[qmodel_step_node(m, i)].name);
			cr_assert_eq(count_steps(m, g, OP_MUL), 1);
			float yf[48 * 180], yq[48 * 180];
			int per = run_both(g, m, ds, 48, yf, yq);
			cr_assert_eq(per, 180);
			if (isa == Q8_ISA_REF) {
				memcpy(ref[rq], yq, sizeof yq);
				/* five 8-bit layers, two tables and a Mul: a few percent */
				cr_assert_lt(rel_rms(yq, yf, 48 * 180), 0.05, "relative error %.4f (%s)",
					     rel_rms(yq, yf, 48 * 180), rq == REQUANT_Q31 ? "Q31" : "float");
				cr_log_info("SE block W8A8 vs FP32 (%s): relative RMS error %.4f",
					    rq == REQUANT_Q31 ? "Q31" : "float", rel_rms(yq, yf, 48 * 180));
			} else {
				cr_assert_arr_eq(yq, ref[rq], sizeof yq, "path %s differs (%s)",
						 q8_isa_name((enum q8_isa)isa), rq == REQUANT_Q31 ? "Q31" : "float");
			}
			n_paths++;
			qmodel_free(m);
		}
	cr_assert_geq(n_paths, 2);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* A tiny transformer block over [N, T=4, D=8]: LayerNormalization, Q/K/V
 * projections (MatMul layers), scores Q K^T / sqrt(D) with a Softmax, times
 * V, an output projection and the residual, then a GELU MLP as exporters
 * decompose it (Div, Erf, Add, Mul, Mul). Everything runs in integers: the
 * projections, MatMul of two activations, Transpose, Softmax,
 * LayerNormalization, the GELU's tables and Mul, and the residual Add. */
static struct graph *attention_block(struct mb *b)
{
	uint32_t s = 9;
	float wq[64], wk[64], wv[64], wo[64], w1[8 * 16], w2[16 * 8], gam[8], bet[8];
	for (int i = 0; i < 64; i++) {
		wq[i] = 0.5f * frand(&s);
		wk[i] = 0.5f * frand(&s);
		wv[i] = 0.5f * frand(&s);
		wo[i] = 0.4f * frand(&s);
	}
	for (int i = 0; i < 128; i++) {
		w1[i] = 0.5f * frand(&s);
		w2[i] = 0.4f * frand(&s);
	}
	for (int i = 0; i < 8; i++) {
		gam[i] = 1.0f + 0.2f * frand(&s);
		bet[i] = 0.1f * frand(&s);
	}
	mb_init(b, 17);
	mb_input(b, "x0", (int64_t[]){-1, 32}, 2);
	mb_init_i64(b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 8});
	mb_node(b, "Reshape", "to_tokens", (const char *[]){"x0", "tokens", NULL}, "x");
	mb_init_f32(b, "wq", (int64_t[]){8, 8}, 2, wq);
	mb_init_f32(b, "wk", (int64_t[]){8, 8}, 2, wk);
	mb_init_f32(b, "wv", (int64_t[]){8, 8}, 2, wv);
	mb_init_f32(b, "wo", (int64_t[]){8, 8}, 2, wo);
	mb_init_f32(b, "w1", (int64_t[]){8, 16}, 2, w1);
	mb_init_f32(b, "w2", (int64_t[]){16, 8}, 2, w2);
	mb_init_f32(b, "gamma", (int64_t[]){8}, 1, gam);
	mb_init_f32(b, "beta", (int64_t[]){8}, 1, bet);
	mb_init_f32(b, "sqrt_d", NULL, 0, (float[]){2.828427f});
	mb_init_f32(b, "sqrt2", NULL, 0, (float[]){1.4142135f});
	mb_init_f32(b, "one", NULL, 0, (float[]){1.0f});
	mb_init_f32(b, "half", NULL, 0, (float[]){0.5f});
	mb_node(b, "LayerNormalization", "ln", (const char *[]){"x", "gamma", "beta", NULL}, "h");
	mb_node(b, "MatMul", "q_proj", (const char *[]){"h", "wq", NULL}, "q");
	mb_node(b, "MatMul", "k_proj", (const char *[]){"h", "wk", NULL}, "k");
	mb_node(b, "MatMul", "v_proj", (const char *[]){"h", "wv", NULL}, "v");
	Onnx__NodeProto *t = mb_node(b, "Transpose", "kt", (const char *[]){"k", NULL}, "kt");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 1}, 3);
	mb_node(b, "MatMul", "scores", (const char *[]){"q", "kt", NULL}, "s");
	mb_node(b, "Div", "scale", (const char *[]){"s", "sqrt_d", NULL}, "s2");
	Onnx__NodeProto *sm = mb_node(b, "Softmax", "attn", (const char *[]){"s2", NULL}, "a");
	mb_attr_int(b, sm, "axis", -1);
	mb_node(b, "MatMul", "mix", (const char *[]){"a", "v", NULL}, "o");
	mb_node(b, "MatMul", "o_proj", (const char *[]){"o", "wo", NULL}, "o2");
	mb_node(b, "Add", "residual", (const char *[]){"x", "o2", NULL}, "r");
	mb_node(b, "MatMul", "fc1", (const char *[]){"r", "w1", NULL}, "f");
	mb_node(b, "Div", "gelu_div", (const char *[]){"f", "sqrt2", NULL}, "g1");
	mb_node(b, "Erf", "gelu_erf", (const char *[]){"g1", NULL}, "g2");
	mb_node(b, "Add", "gelu_add", (const char *[]){"g2", "one", NULL}, "g3");
	mb_node(b, "Mul", "gelu_mul", (const char *[]){"f", "g3", NULL}, "g4");
	mb_node(b, "Mul", "gelu_half", (const char *[]){"g4", "half", NULL}, "g5");
	mb_node(b, "MatMul", "fc2", (const char *[]){"g5", "w2", NULL}, "m");
	mb_node(b, "Flatten", "flat", (const char *[]){"m", NULL}, "y");
	mb_output(b, "y");
	return load_mb(b);
}

/* A block built by make on n items of ds: W8A8 on every path and in both
 * requantization forms runs without a fallback, every path gives the
 * reference's bytes, and the reference tracks FP32 within a relative RMS
 * error of 0.06 (a few quantized tensors deep through a softmax); the
 * block has n_layers weight MatMuls and per outputs per item. */
static void check_block_in_integers(struct graph *(*make)(struct mb *), const char *what,
				    struct dataset *ds, int n, int n_layers, int per)
{
	struct mb b;
	struct graph *g = make(&b);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, n_layers, "%s: the MatMuls with a constant weight", what);
	struct policy *p;
	cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
	size_t bytes = sizeof(float) * (size_t)n * (size_t)per;
	float *ref[2] = {malloc(bytes), malloc(bytes)}, *yf = malloc(bytes), *yq = malloc(bytes);
	int n_paths = 0;
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			if (!q8_isa_supported((enum q8_isa)isa))
				continue;
			struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
						  (enum requant_mode)rq};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(count_fallbacks(m), 0, "%s: every node runs in integers", what);
			cr_assert_eq(run_both(g, m, ds, n, yf, yq), per);
			if (isa == Q8_ISA_REF) {
				memcpy(ref[rq], yq, bytes);
				double e = rel_rms(yq, yf, n * per);
				cr_log_info("%s W8A8 vs FP32 (%s): relative RMS error %.4f", what,
					    rq == REQUANT_Q31 ? "Q31" : "float", e);
				cr_assert_lt(e, 0.06, "%s: relative error %.4f", what, e);
			} else {
				cr_assert_arr_eq(yq, ref[rq], bytes, "%s: path %s differs (%s)", what,
						 q8_isa_name((enum q8_isa)isa),
						 rq == REQUANT_Q31 ? "Q31" : "float");
			}
			n_paths++;
			qmodel_free(m);
		}
	cr_assert_geq(n_paths, 2);
	free(ref[0]);
	free(ref[1]);
	free(yf);
	free(yq);
	policy_free(p);
	free(ls);
	calib_free(cal);
	graph_free(g);
	mb_free(&b);
}

Test(qengine, attention_block_tracks_fp32)
{
	/* q, k, v, o, fc1, fc2; eight quantized tensors deep, softmax and all */
	struct dataset *ds = uniform_items(48, 1, 4, 8, -2, 2, 91);
	check_block_in_integers(attention_block, "attention block", ds, 48, 6, 32);
	dataset_free(ds);
}

/* Multi-head attention over [N, T=4, D=16] with 2 heads as PyTorch exports
 * it: a position embedding added, biases added to the projections (Add and
 * Sub of a constant: a tile per image, quantized on its own), 4-D Reshape and
 * Transpose into heads, q.k^T and attn.v as MatMuls of
 * two 4-D activations, Softmax over the last axis, back to tokens, then the
 * mean over tokens (ReduceMean axis 1). The 4-D values are kept in logical
 * order; every node runs in integers, every kernel path gives the same
 * bytes, and the result tracks FP32. heads_out: the heads (the Transposes
 * around the MatMuls of two activations) are graph outputs too, so that the
 * MatMuls cannot read or write them in place. */
static struct graph *multi_head_block_outs(struct mb *b, bool heads_out)
{
	uint32_t s = 23;
	float wq[256], wk[256], wv[256], gam[16], bet[16];
	for (int i = 0; i < 256; i++) {
		wq[i] = 0.4f * frand(&s);
		wk[i] = 0.4f * frand(&s);
		wv[i] = 0.4f * frand(&s);
	}
	for (int i = 0; i < 16; i++) {
		gam[i] = 1.0f + 0.2f * frand(&s);
		bet[i] = 0.1f * frand(&s);
	}
	mb_init(b, 17);
	mb_input(b, "x0", (int64_t[]){-1, 64}, 2);
	mb_init_i64(b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 16});
	mb_init_i64(b, "heads", (int64_t[]){4}, 1, (int64_t[]){0, 4, 2, 8});
	mb_node(b, "Reshape", "to_tokens", (const char *[]){"x0", "tokens", NULL}, "x");
	mb_init_f32(b, "wq", (int64_t[]){16, 16}, 2, wq);
	mb_init_f32(b, "wk", (int64_t[]){16, 16}, 2, wk);
	mb_init_f32(b, "wv", (int64_t[]){16, 16}, 2, wv);
	mb_init_f32(b, "gamma", (int64_t[]){16}, 1, gam);
	mb_init_f32(b, "beta", (int64_t[]){16}, 1, bet);
	/* as PyTorch exports a ViT: a position embedding [1, T, D] added to the
	 * tokens, and each Linear as MatMul then Add(bias, product); one bias
	 * subtracted instead (Sub of a constant) */
	float pos[64], bq[16], bk[16], bv[16];
	for (int i = 0; i < 64; i++)
		pos[i] = 0.8f * frand(&s);
	for (int i = 0; i < 16; i++) {
		bq[i] = 0.6f * frand(&s);
		bk[i] = 0.6f * frand(&s);
		bv[i] = 0.6f * frand(&s);
	}
	mb_init_f32(b, "pos", (int64_t[]){1, 4, 16}, 3, pos);
	mb_init_f32(b, "bq", (int64_t[]){16}, 1, bq);
	mb_init_f32(b, "bk", (int64_t[]){16}, 1, bk);
	mb_init_f32(b, "bv", (int64_t[]){16}, 1, bv);
	mb_node(b, "Add", "pos_embed", (const char *[]){"x", "pos", NULL}, "xp");
	mb_node(b, "LayerNormalization", "ln", (const char *[]){"xp", "gamma", "beta", NULL}, "h");
	mb_node(b, "MatMul", "q_proj", (const char *[]){"h", "wq", NULL}, "q0");
	mb_node(b, "MatMul", "k_proj", (const char *[]){"h", "wk", NULL}, "k0");
	mb_node(b, "MatMul", "v_proj", (const char *[]){"h", "wv", NULL}, "v0");
	mb_node(b, "Add", "q_bias", (const char *[]){"bq", "q0", NULL}, "q");
	mb_node(b, "Add", "k_bias", (const char *[]){"bk", "k0", NULL}, "k");
	mb_node(b, "Sub", "v_bias", (const char *[]){"v0", "bv", NULL}, "v");
	mb_node(b, "Reshape", "q_heads", (const char *[]){"q", "heads", NULL}, "q4");
	mb_node(b, "Reshape", "k_heads", (const char *[]){"k", "heads", NULL}, "k4");
	mb_node(b, "Reshape", "v_heads", (const char *[]){"v", "heads", NULL}, "v4");
	Onnx__NodeProto *t = mb_node(b, "Transpose", "qt", (const char *[]){"q4", NULL}, "qh");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 1, 3}, 4);
	t = mb_node(b, "Transpose", "kt", (const char *[]){"k4", NULL}, "kh");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 3, 1}, 4);
	t = mb_node(b, "Transpose", "vt", (const char *[]){"v4", NULL}, "vh");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 1, 3}, 4);
	mb_node(b, "MatMul", "scores", (const char *[]){"qh", "kh", NULL}, "sc");
	Onnx__NodeProto *sm = mb_node(b, "Softmax", "attn", (const char *[]){"sc", NULL}, "a");
	mb_attr_int(b, sm, "axis", -1);
	mb_node(b, "MatMul", "mix", (const char *[]){"a", "vh", NULL}, "o");
	t = mb_node(b, "Transpose", "ot", (const char *[]){"o", NULL}, "o4");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 1, 3}, 4);
	mb_node(b, "Reshape", "merge", (const char *[]){"o4", "tokens", NULL}, "o3");
	Onnx__NodeProto *rm = mb_node(b, "ReduceMean", "pool", (const char *[]){"o3", NULL}, "y");
	mb_attr_ints(b, rm, "axes", (int64_t[]){1}, 1);
	mb_attr_int(b, rm, "keepdims", 0);
	mb_output(b, "y");
	if (heads_out) {
		mb_output(b, "qh");
		mb_output(b, "kh");
		mb_output(b, "vh");
		mb_output(b, "o");
	}
	return load_mb(b);
}

static struct graph *multi_head_block(struct mb *b)
{
	return multi_head_block_outs(b, false);
}

/* The MatMuls of two activations read q, k and v through the Transposes that
 * split the heads (k's as B given transposed) and write through the one that
 * merges them, and give exactly the bytes of the copies they replace (the
 * same block with the heads also graph outputs, so that every Transpose
 * copies), on every path and in both requantization forms. */
Test(qengine, attention_reads_its_heads_in_place)
{
	enum { N = 24 };
	struct dataset *ds = uniform_items(N, 1, 4, 16, -2, 2, 67);
	struct mb b1, b2;
	struct graph *g = multi_head_block_outs(&b1, false), *gc = multi_head_block_outs(&b2, true);
	struct calib *cal = calibrate(g, ds), *calc = calibrate(gc, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
	float yf[N * 16], yv[N * 16], yc[N * 16];
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			if (!q8_isa_supported((enum q8_isa)isa))
				continue;
			struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
						  (enum requant_mode)rq};
			struct qmodel *m, *mc;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(qmodel_build(gc, p, calc, &qc, &mc), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(count_fallbacks(m), 0);
			cr_assert_eq(run_both(g, m, ds, N, yf, yv), 16);
			cr_assert_eq(run_both(gc, mc, ds, N, yf, yc), 16);
			cr_assert_arr_eq(yv, yc, sizeof yv, "%s (%s): in place differs from the copies",
					 q8_isa_name((enum q8_isa)isa), rq == REQUANT_Q31 ? "Q31" : "float");
			qmodel_free(m);
			qmodel_free(mc);
		}
	policy_free(p);
	free(ls);
	calib_free(cal);
	calib_free(calc);
	graph_free(g);
	graph_free(gc);
	mb_free(&b1);
	mb_free(&b2);
	dataset_free(ds);
}

/* Constants added to a 4-D NHWC activation: a per-channel [C,1,1] offset
 * after a conv without bias, then a whole [1,C,H,W] map subtracted, so the
 * tile must be laid out in NHWC like the activation (a layout error moves
 * values across channels and pixels, far beyond the tolerance); a Gemm over
 * the flattened map reads every element. */
static struct graph *nhwc_constant_block(struct mb *b)
{
	uint32_t s = 31;
	float w1[8 * 3 * 9], off[8], map[8 * 36], wf[2 * 8 * 36];
	for (size_t i = 0; i < sizeof w1 / 4; i++)
		w1[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = 0.2f * frand(&s);
	for (int i = 0; i < 8; i++)
		off[i] = 1.5f * frand(&s);
	for (int i = 0; i < 8 * 36; i++)
		map[i] = frand(&s);
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	mb_init_f32(b, "w1", (int64_t[]){8, 3, 3, 3}, 4, w1);
	mb_init_f32(b, "off", (int64_t[]){8, 1, 1}, 3, off);
	mb_init_f32(b, "map", (int64_t[]){1, 8, 6, 6}, 4, map);
	Onnx__NodeProto *n = mb_node(b, "Conv", "conv1", (const char *[]){"x", "w1", NULL}, "c1");
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(b, "Add", "offset", (const char *[]){"off", "c1", NULL}, "d");
	mb_node(b, "Sub", "minus_map", (const char *[]){"d", "map", NULL}, "e");
	mb_node(b, "Relu", "r", (const char *[]){"e", NULL}, "a");
	mb_node(b, "Flatten", "flat", (const char *[]){"a", NULL}, "f");
	mb_init_f32(b, "wf", (int64_t[]){2, 8 * 36}, 2, wf);
	Onnx__NodeProto *fc = mb_node(b, "Gemm", "fc", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(b, fc, "transB", 1);
	mb_output(b, "y");
	return load_mb(b);
}

Test(qengine, constants_add_to_nhwc_maps_in_integers)
{
	struct dataset *ds = uniform_items(24, 3, 6, 6, -1, 1, 77);
	check_block_in_integers(nhwc_constant_block, "NHWC constant add", ds, 24, 2, 2);
	dataset_free(ds);
}

/* A token MLP as PyTorch exports a Linear: MatMul, then Add(bias, product). */
static struct graph *token_linear_block(struct mb *b)
{
	uint32_t s = 41;
	float w[64], bias[8], wf[16];
	for (int i = 0; i < 64; i++)
		w[i] = 0.5f * frand(&s);
	for (int i = 0; i < 8; i++)
		bias[i] = frand(&s);
	for (int i = 0; i < 16; i++)
		wf[i] = frand(&s);
	mb_init(b, 17);
	mb_input(b, "x0", (int64_t[]){-1, 32}, 2);
	mb_init_i64(b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 8});
	mb_node(b, "Reshape", "to_tokens", (const char *[]){"x0", "tokens", NULL}, "x");
	mb_init_f32(b, "w", (int64_t[]){8, 8}, 2, w);
	mb_init_f32(b, "bias", (int64_t[]){8}, 1, bias);
	mb_node(b, "MatMul", "proj", (const char *[]){"x", "w", NULL}, "p");
	mb_node(b, "Add", "proj_bias", (const char *[]){"bias", "p", NULL}, "h");
	Onnx__NodeProto *rm = mb_node(b, "ReduceMean", "pool", (const char *[]){"h", NULL}, "m");
	mb_attr_ints(b, rm, "axes", (int64_t[]){1}, 1);
	mb_attr_int(b, rm, "keepdims", 0);
	mb_init_f32(b, "wf", (int64_t[]){8, 2}, 2, wf);
	mb_node(b, "MatMul", "fc", (const char *[]){"m", "wf", NULL}, "y");
	mb_output(b, "y");
	return load_mb(b);
}

/* A model rebuilt from its own quantization (as a .presso file is loaded)
 * folds the bias Add into the MatMul as the original did (the product's
 * quantization, which files store, is kept though no step rounds to it);
 * given a quantization without the product before the Add (as a file written
 * before such Adds ran in integers has it: that product was float then), the
 * rebuild runs the Add in FP32, unfolded, instead of failing for the missing
 * quantization. */
Test(qengine, a_rebuilt_model_keeps_how_its_file_ran_a_constant_add)
{
	struct mb b;
	struct graph *g = token_linear_block(&b);
	struct dataset *ds = uniform_items(16, 1, 4, 8, -2, 2, 13);
	struct calib *cal = calibrate(g, ds);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_MINMAX, 99.99, Q8_ISA_REF, NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(count_fallbacks(m), 0, "the bias Add runs in integers");
	cr_assert_eq(count_steps(m, g, OP_ADD), 0, "the bias Add is folded into the MatMul");
	/* the preset a .presso file would give */
	struct qlayer_preset lp[2];
	cr_assert_eq(qmodel_n_layers(m), 2);
	for (int i = 0; i < 2; i++) {
		struct qlayer_view v;
		qmodel_layer_view(m, i, &v);
		lp[i] = (struct qlayer_preset){v.w, v.w_scale, v.bias};
	}
	struct qparams *qp = calloc((size_t)g->n_values, sizeof *qp);
	for (int v = 0; v < g->n_values; v++)
		if (qmodel_value_group(m, v) == v)
			cr_assert(qmodel_value_qparams(m, v, &qp[v]));
	struct qmodel_preset preset = {lp, qp};
	struct qmodel *r;
	cr_assert_eq(qmodel_build_preset(g, p, &preset, &qc, &r), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(count_fallbacks(r), 0);
	cr_assert_eq(count_steps(r, g, OP_ADD), 0, "the rebuilt model folds the Add too");
	float y1[32], y2[32], f[32];
	cr_assert_eq(run_both(g, m, ds, 16, f, y1), 2);
	cr_assert_eq(run_both(g, r, ds, 16, f, y2), 2);
	cr_assert_arr_eq(y1, y2, sizeof y1, "the rebuilt model computes what the built one did");
	qmodel_free(r);
	/* as an older file: no quantization for the product */
	int prod = graph_find_value(g, "p");
	cr_assert_geq(prod, 0);
	cr_assert_gt(qp[prod].bits, 0, "the product heads a group now");
	qp[prod] = (struct qparams){0};
	cr_assert_eq(qmodel_build_preset(g, p, &preset, &qc, &r), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(count_fallbacks(r), 1, "the bias Add in FP32, as the older file ran it");
	cr_assert_eq(count_steps(r, g, OP_ADD), 1, "and not folded");
	cr_assert_eq(run_both(g, r, ds, 16, f, y2), 2);
	qmodel_free(r);
	free(qp);
	qmodel_free(m);
	policy_free(p);
	free(ls);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* One token Linear as PyTorch exports it, x [N, 4, 8] @ w [8, 8], then the
 * bias: Add(bias, product) and a ReLU (sub false), or Sub(product, bias)
 * (sub true); flattened to the output. product_out: the product is a graph
 * output too (second), which keeps the Add its own step. */
static struct graph *token_bias_block(struct mb *b, bool sub, bool product_out)
{
	uint32_t s = sub ? 43 : 47;
	float w[64], bias[8];
	for (int i = 0; i < 64; i++)
		w[i] = 0.5f * frand(&s);
	for (int i = 0; i < 8; i++)
		bias[i] = 1.5f * frand(&s);
	mb_init(b, 17);
	mb_input(b, "x0", (int64_t[]){-1, 32}, 2);
	mb_init_i64(b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 8});
	mb_node(b, "Reshape", "to_tokens", (const char *[]){"x0", "tokens", NULL}, "x");
	mb_init_f32(b, "w", (int64_t[]){8, 8}, 2, w);
	mb_init_f32(b, "bias", (int64_t[]){1, 8}, 2, bias);
	mb_node(b, "MatMul", "proj", (const char *[]){"x", "w", NULL}, "p");
	if (sub) {
		mb_node(b, "Sub", "proj_bias", (const char *[]){"p", "bias", NULL}, "r");
	} else {
		mb_node(b, "Add", "proj_bias", (const char *[]){"bias", "p", NULL}, "h");
		mb_node(b, "Relu", "act", (const char *[]){"h", NULL}, "r");
	}
	mb_node(b, "Flatten", "flat", (const char *[]){"r", NULL}, "y");
	mb_output(b, "y");
	if (product_out)
		mb_output(b, "p");
	return load_mb(b);
}

/* The largest difference, in codes of qp, of two dequantized outputs. */
static int max_code_diff(const float *a, const float *b, int n, const struct qparams *qp)
{
	int d = 0;
	for (int i = 0; i < n; i++) {
		int k = abs((int)lrintf(a[i] / qp->scale) - (int)lrintf(b[i] / qp->scale));
		d = k > d ? k : d;
	}
	return d;
}

/* A MatMul followed by a bias Add (with the ReLU fused into it) or Sub of a
 * constant along the last axis is one step: the GEMM adds the bias in int32
 * and requantizes to the Add's output, and the product gets no buffer. It
 * computes (a) what the unfolded integer steps compute (the same graph with
 * the product also an output, so that it is not folded), within the two
 * roundings the fold removes: the product to its 8-bit scale and the bias to
 * its tile's, half a step each, plus one code for the two final roundings;
 * (b) what the FP32 Add of an older file computes (no rounding between the
 * GEMM and the Add either), within one code; and (c) every kernel path gives
 * the reference path's bytes. */
Test(qengine, a_bias_add_after_a_matmul_folds_into_its_gemm)
{
	enum { N = 16, PER = 32 };
	struct dataset *ds = uniform_items(N, 1, 4, 8, -2, 2, 29);
	for (int sub = 0; sub <= 1; sub++) {
		struct mb b1, b2;
		struct graph *g = token_bias_block(&b1, sub, false);
		struct graph *gu = token_bias_block(&b2, sub, true);
		struct calib *cal = calibrate(g, ds), *calu = calibrate(gu, ds);
		struct layer *ls;
		int nl;
		cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
		struct policy *p;
		cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
		enum op_type bias_op = sub ? OP_SUB : OP_ADD;
		float yf[N * PER], ref[N * PER], yq[N * PER], yu[N * PER];
		for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++) {
			int n_paths = 0;
			for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
				if (!q8_isa_supported((enum q8_isa)isa))
					continue;
				struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL,
							  NULL, (enum requant_mode)rq};
				struct qmodel *m;
				cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s",
					     status_msg());
				/* quantize, reshape, the GEMM, flatten, dequantize */
				cr_assert_eq(qmodel_n_steps(m), 5, "sub %d: the bias has no step", sub);
				cr_assert_eq(count_steps(m, g, bias_op), 0);
				cr_assert_eq(count_fallbacks(m), 0);
				int prod = graph_find_value(g, "p");
				struct qparams qprod;
				cr_assert(qmodel_value_is_folded(m, prod));
				cr_assert(qmodel_value_qparams(m, prod, &qprod),
					  "the product keeps the quantization files store");
				cr_assert_eq(run_both(g, m, ds, N, yf, yq), PER);
				if (isa != Q8_ISA_REF) {
					cr_assert_arr_eq(yq, ref, sizeof yq, "sub %d: path %s differs",
							 sub, q8_isa_name((enum q8_isa)isa));
					qmodel_free(m);
					n_paths++;
					continue;
				}
				memcpy(ref, yq, sizeof yq);
				struct qparams qy, qpu;
				cr_assert(qmodel_value_qparams(m, g->outputs[0], &qy));
				/* (a) the unfolded integer steps */
				struct qmodel *u;
				cr_assert_eq(qmodel_build(gu, p, calu, &qc, &u), PRESSO_OK, "%s",
					     status_msg());
				cr_assert_eq(count_steps(u, gu, bias_op), 1, "the product is an output");
				cr_assert(!qmodel_value_is_folded(u, graph_find_value(gu, "p")));
				cr_assert(qmodel_value_qparams(u, graph_find_value(gu, "p"), &qpu));
				cr_assert_eq(run_both(gu, u, ds, N, yf, yu), PER);
				float lo = 0, hi = 0;
				const struct value *bv = &g->values[graph_find_value(g, "bias")];
				for (int c = 0; c < 8; c++) {
					lo = fminf(lo, bv->data[c]);
					hi = fmaxf(hi, bv->data[c]);
				}
				double s_tile = (hi - lo) / 255.0;
				int bound = (int)ceil((qpu.scale + s_tile) / (2.0 * qy.scale)) + 1;
				int d = max_code_diff(yq, yu, N * PER, &qy);
				cr_log_info("sub %d (%s): folded vs unfolded, at most %d codes apart (bound %d)",
					    sub, rq == REQUANT_Q31 ? "Q31" : "float", d, bound);
				cr_assert_leq(d, bound, "sub %d: %d codes from the unfolded steps", sub, d);
				cr_assert_lt(rel_rms(yq, yf, N * PER), 0.03, "sub %d tracks FP32", sub);
				qmodel_free(u);
				/* (b) an older file: no quantization of the product, so the
				 * Add runs in FP32 on the GEMM's float product */
				struct qlayer_view v;
				qmodel_layer_view(m, 0, &v);
				struct qlayer_preset lp = {v.w, v.w_scale, v.bias};
				struct qparams *qp = calloc((size_t)g->n_values, sizeof *qp);
				for (int val = 0; val < g->n_values; val++)
					if (qmodel_value_group(m, val) == val)
						cr_assert(qmodel_value_qparams(m, val, &qp[val]));
				qp[prod] = (struct qparams){0};
				struct qmodel_preset preset = {&lp, qp};
				struct qmodel *o;
				cr_assert_eq(qmodel_build_preset(g, p, &preset, &qc, &o), PRESSO_OK, "%s",
					     status_msg());
				cr_assert_eq(count_fallbacks(o), 1, "the older file's FP32 Add");
				cr_assert_eq(run_both(g, o, ds, N, yf, yu), PER);
				d = max_code_diff(yq, yu, N * PER, &qy);
				cr_assert_leq(d, 1, "sub %d: %d codes from the FP32 Add", sub, d);
				qmodel_free(o);
				free(qp);
				qmodel_free(m);
				n_paths++;
			}
			cr_assert_geq(n_paths, 2);
		}
		policy_free(p);
		free(ls);
		calib_free(cal);
		calib_free(calu);
		graph_free(g);
		graph_free(gu);
		mb_free(&b1);
		mb_free(&b2);
	}
	dataset_free(ds);
}

/* A ViT's patch embedding as PyTorch exports it: a strided Conv, Reshape
 * [N,C,H,W] -> [N,C,HW], Transpose to [N,HW,C] (which on the conv's NHWC
 * bytes copy nothing: both alias its buffer), a position embedding, a
 * LayerNormalization, a token Linear with its bias folded, the mean over
 * tokens and a classifier. A layout error moves values across tokens and
 * channels, far beyond the tolerance. */
static struct graph *patch_embed_block(struct mb *b)
{
	uint32_t s = 53;
	float wc[12 * 1 * 2 * 2], bc[12], pos[4 * 12], gam[12], bet[12], w[12 * 12], bias[12],
		wf[12 * 3];
	for (size_t i = 0; i < sizeof wc / 4; i++)
		wc[i] = 0.6f * frand(&s);
	for (size_t i = 0; i < sizeof w / 4; i++)
		w[i] = 0.4f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = 0.5f * frand(&s);
	for (size_t i = 0; i < sizeof pos / 4; i++)
		pos[i] = 0.5f * frand(&s);
	for (int i = 0; i < 12; i++) {
		bc[i] = 0.2f * frand(&s);
		gam[i] = 1.0f + 0.2f * frand(&s);
		bet[i] = 0.1f * frand(&s);
		bias[i] = 0.5f * frand(&s);
	}
	mb_init(b, 17);
	mb_input(b, "img", (int64_t[]){-1, 1, 4, 4}, 4);
	mb_init_f32(b, "wc", (int64_t[]){12, 1, 2, 2}, 4, wc);
	mb_init_f32(b, "bc", (int64_t[]){12}, 1, bc);
	Onnx__NodeProto *c = mb_node(b, "Conv", "embed", (const char *[]){"img", "wc", "bc", NULL}, "e");
	mb_attr_ints(b, c, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(b, c, "strides", (int64_t[]){2, 2}, 2);
	mb_init_i64(b, "flat_hw", (int64_t[]){3}, 1, (int64_t[]){0, 12, 4});
	mb_node(b, "Reshape", "to_chw", (const char *[]){"e", "flat_hw", NULL}, "e3");
	Onnx__NodeProto *t = mb_node(b, "Transpose", "to_tokens", (const char *[]){"e3", NULL}, "x");
	mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 1}, 3);
	mb_init_f32(b, "pos", (int64_t[]){1, 4, 12}, 3, pos);
	mb_node(b, "Add", "pos_embed", (const char *[]){"x", "pos", NULL}, "xp");
	mb_init_f32(b, "gamma", (int64_t[]){12}, 1, gam);
	mb_init_f32(b, "beta", (int64_t[]){12}, 1, bet);
	mb_node(b, "LayerNormalization", "ln", (const char *[]){"xp", "gamma", "beta", NULL}, "h");
	mb_init_f32(b, "w", (int64_t[]){12, 12}, 2, w);
	mb_init_f32(b, "bias", (int64_t[]){12}, 1, bias);
	mb_node(b, "MatMul", "proj", (const char *[]){"h", "w", NULL}, "p");
	mb_node(b, "Add", "proj_bias", (const char *[]){"bias", "p", NULL}, "q");
	Onnx__NodeProto *rm = mb_node(b, "ReduceMean", "pool", (const char *[]){"q", NULL}, "m");
	mb_attr_ints(b, rm, "axes", (int64_t[]){1}, 1);
	mb_attr_int(b, rm, "keepdims", 0);
	mb_init_f32(b, "wf", (int64_t[]){12, 3}, 2, wf);
	mb_node(b, "MatMul", "fc", (const char *[]){"m", "wf", NULL}, "y");
	mb_output(b, "y");
	return load_mb(b);
}

Test(qengine, a_patch_embedding_reads_the_conv_output_in_place)
{
	/* embed, proj, fc */
	struct dataset *ds = uniform_items(32, 1, 4, 4, -1, 1, 61);
	check_block_in_integers(patch_embed_block, "patch embedding", ds, 32, 3, 3);
	dataset_free(ds);
}

Test(qengine, multi_head_attention_runs_in_integers)
{
	/* q, k, v; six quantized tensors deep through a softmax */
	struct dataset *ds = uniform_items(40, 1, 4, 16, -2, 2, 57);
	check_block_in_integers(multi_head_block, "multi-head attention", ds, 40, 3, 16);
	dataset_free(ds);
}

/* A ConvNeXt block as torchvision exports it: a depthwise 3x3 conv, a
 * Transpose to channels-last [N,H,W,C], LayerNormalization over C (with ln),
 * two Linears (MatMul of a 4-D activation, then Add of the bias) with a Relu
 * between, a Transpose back to [N,C,H,W] and the residual Add; then GAP and
 * a Gemm. With twin set, the same block without the Transposes and the
 * LayerNormalization, its Linears as 1x1 convs of the transposed weights. */
static struct graph *convnext_block_as(struct mb *b, bool twin, bool ln)
{
	enum { C = 4, E = 16 }; /* C: the most channels a dataset has */
	uint32_t s = 71;
	float wd[C * 9], bd[C], gam[C], bet[C], w1[C * E], b1[E], w2[E * C], b2[C], wf[3 * C];
	float w1t[E * C], w2t[C * E];
	for (size_t i = 0; i < sizeof wd / 4; i++)
		wd[i] = 0.5f * frand(&s);
	for (int i = 0; i < C; i++) {
		bd[i] = 0.2f * frand(&s);
		gam[i] = 1.0f + 0.2f * frand(&s);
		bet[i] = 0.1f * frand(&s);
		b2[i] = 0.2f * frand(&s);
	}
	for (int i = 0; i < E; i++)
		b1[i] = 0.2f * frand(&s);
	for (int k = 0; k < C; k++)
		for (int j = 0; j < E; j++) {
			w1[k * E + j] = w1t[j * C + k] = 0.5f * frand(&s);
			w2[j * C + k] = w2t[k * E + j] = 0.5f * frand(&s);
		}
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = 0.5f * frand(&s);
	mb_init(b, 17);
	mb_input(b, "img", (int64_t[]){-1, C, 4, 4}, 4);
	mb_init_f32(b, "wd", (int64_t[]){C, 1, 3, 3}, 4, wd);
	mb_init_f32(b, "bd", (int64_t[]){C}, 1, bd);
	Onnx__NodeProto *d = mb_node(b, "Conv", "dw", (const char *[]){"img", "wd", "bd", NULL}, "d");
	mb_attr_ints(b, d, "kernel_shape", (int64_t[]){3, 3}, 2);
	mb_attr_ints(b, d, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_attr_int(b, d, "group", C);
	mb_init_f32(b, "b1", (int64_t[]){E}, 1, b1);
	mb_init_f32(b, "b2", (int64_t[]){C}, 1, b2);
	if (twin) {
		mb_init_f32(b, "w1", (int64_t[]){E, C, 1, 1}, 4, w1t);
		mb_init_f32(b, "w2", (int64_t[]){C, E, 1, 1}, 4, w2t);
		mb_node(b, "Conv", "fc1", (const char *[]){"d", "w1", "b1", NULL}, "h1b");
		mb_node(b, "Relu", "act", (const char *[]){"h1b", NULL}, "r");
		mb_node(b, "Conv", "fc2", (const char *[]){"r", "w2", "b2", NULL}, "o");
	} else {
		Onnx__NodeProto *t = mb_node(b, "Transpose", "to_last", (const char *[]){"d", NULL}, "dl");
		mb_attr_ints(b, t, "perm", (int64_t[]){0, 2, 3, 1}, 4);
		if (ln) {
			mb_init_f32(b, "gamma", (int64_t[]){C}, 1, gam);
			mb_init_f32(b, "beta", (int64_t[]){C}, 1, bet);
			mb_node(b, "LayerNormalization", "ln",
				(const char *[]){"dl", "gamma", "beta", NULL}, "n");
		}
		mb_init_f32(b, "w1", (int64_t[]){C, E}, 2, w1);
		mb_init_f32(b, "w2", (int64_t[]){E, C}, 2, w2);
		mb_node(b, "MatMul", "fc1", (const char *[]){ln ? "n" : "dl", "w1", NULL}, "h1");
		mb_node(b, "Add", "fc1_bias", (const char *[]){"b1", "h1", NULL}, "h1b");
		mb_node(b, "Relu", "act", (const char *[]){"h1b", NULL}, "r");
		mb_node(b, "MatMul", "fc2", (const char *[]){"r", "w2", NULL}, "h2");
		mb_node(b, "Add", "fc2_bias", (const char *[]){"h2", "b2", NULL}, "h2b");
		t = mb_node(b, "Transpose", "to_first", (const char *[]){"h2b", NULL}, "o");
		mb_attr_ints(b, t, "perm", (int64_t[]){0, 3, 1, 2}, 4);
	}
	mb_node(b, "Add", "residual", (const char *[]){"img", "o", NULL}, "res");
	mb_node(b, "GlobalAveragePool", "gap", (const char *[]){"res", NULL}, "g");
	mb_node(b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	mb_init_f32(b, "wf", (int64_t[]){3, C}, 2, wf);
	Onnx__NodeProto *fc = mb_node(b, "Gemm", "head", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(b, fc, "transB", 1);
	mb_output(b, "y");
	return load_mb(b);
}

static struct graph *convnext_block(struct mb *b) { return convnext_block_as(b, false, true); }

/* Its Linears run as GEMMs over the channels-last rows, and the Transposes
 * copy nothing: the NHWC bytes of the conv output are the channels-last
 * tensor in logical order. Every node runs in integers and tracks FP32. */
Test(qengine, a_convnext_block_runs_its_linears_over_nhwc_bytes)
{
	/* dw, fc1, fc2, head */
	struct dataset *ds = uniform_items(32, 4, 4, 4, -1, 1, 67);
	check_block_in_integers(convnext_block, "ConvNeXt block", ds, 32, 4, 3);
	dataset_free(ds);
}

/* The block without its LayerNormalization gives the same bytes as its twin
 * of 1x1 convs (the same values, so the same calibration and the same
 * per-channel weights), on the reference kernels and the CPU's best, in
 * both requantization forms. */
Test(qengine, convnext_linears_equal_1x1_convs_bit_for_bit)
{
	enum { N = 16 };
	struct dataset *ds = uniform_items(N, 4, 4, 4, -1, 1, 83);
	float yf[N * 3], yq[2][N * 3];
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = Q8_ISA_REF; isa <= (int)q8_isa_best(); isa += (int)q8_isa_best()) {
			for (int twin = 0; twin < 2; twin++) {
				struct mb b;
				struct graph *g = convnext_block_as(&b, twin, false);
				struct calib *cal = calibrate(g, ds);
				struct layer *ls;
				int nl;
				cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
				cr_assert_eq(nl, 4);
				struct policy *p;
				cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
				struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
							  (enum requant_mode)rq};
				struct qmodel *m;
				cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s",
					     status_msg());
				cr_assert_eq(count_fallbacks(m), 0);
				cr_assert_eq(run_both(g, m, ds, N, yf, yq[twin]), 3);
				qmodel_free(m);
				policy_free(p);
				free(ls);
				calib_free(cal);
				graph_free(g);
				mb_free(&b);
			}
			cr_assert_arr_eq(yq[0], yq[1], sizeof yq[0],
					 "the Linears and the 1x1 convs differ (%s, %s)",
					 q8_isa_name((enum q8_isa)isa), rq == REQUANT_Q31 ? "Q31" : "float");
			if (isa == (int)q8_isa_best())
				break;
		}
	dataset_free(ds);
}

/* A Conv1d stack (conv, ReLU, max pool, a grouped strided conv, global
 * average, linear head) as PyTorch exports it over [N, C, L], and its twin
 * written with 2-D layers of height 1 after an explicit Unsqueeze: the INT8
 * engine runs both with no FP32 step and gives the same bytes, on the
 * reference kernels and the CPU's best. */
static struct graph *conv1d_stack_as(struct mb *b, bool twin)
{
	enum { C = 3, L = 16, O = 8 };
	uint32_t s = 97;
	float w1[O * C * 3], b1[O], w2[O * 4 * 3], b2[O], wf[5 * O];
	for (size_t i = 0; i < sizeof w1 / 4; i++)
		w1[i] = 0.5f * frand(&s);
	for (size_t i = 0; i < sizeof w2 / 4; i++)
		w2[i] = 0.5f * frand(&s);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = 0.5f * frand(&s);
	for (int i = 0; i < O; i++) {
		b1[i] = 0.2f * frand(&s);
		b2[i] = 0.2f * frand(&s);
	}
	mb_init(b, 13);
	mb_input(b, "x", (int64_t[]){-1, C, L}, 3);
	int64_t w1d[4] = {O, C, 1, 3}, w2d[4] = {O, 4, 1, 3};
	int wr = twin ? 4 : 3;
	if (twin) {
		mb_init_i64(b, "axes", (int64_t[]){1}, 1, (int64_t[]){2});
		mb_node(b, "Unsqueeze", "lift", (const char *[]){"x", "axes", NULL}, "x4");
	} else {
		w1d[2] = 3;
		w2d[2] = 3;
	}
	mb_init_f32(b, "w1", w1d, wr, w1);
	mb_init_f32(b, "b1", (int64_t[]){O}, 1, b1);
	mb_init_f32(b, "w2", w2d, wr, w2);
	mb_init_f32(b, "b2", (int64_t[]){O}, 1, b2);
	Onnx__NodeProto *n = mb_node(b, "Conv", "c1",
				     (const char *[]){twin ? "x4" : "x", "w1", "b1", NULL}, "a");
	mb_attr_ints(b, n, "kernel_shape", (int64_t[]){1, 3}, twin ? 2 : 1);
	mb_attr_ints(b, n, "pads", twin ? (int64_t[]){0, 1, 0, 1} : (int64_t[]){1, 1}, twin ? 4 : 2);
	mb_node(b, "Relu", "relu", (const char *[]){"a", NULL}, "r");
	n = mb_node(b, "MaxPool", "pool", (const char *[]){"r", NULL}, "p");
	mb_attr_ints(b, n, "kernel_shape", twin ? (int64_t[]){1, 2} : (int64_t[]){2}, twin ? 2 : 1);
	mb_attr_ints(b, n, "strides", twin ? (int64_t[]){1, 2} : (int64_t[]){2}, twin ? 2 : 1);
	n = mb_node(b, "Conv", "c2", (const char *[]){"p", "w2", "b2", NULL}, "c");
	mb_attr_int(b, n, "group", 2);
	mb_attr_ints(b, n, "strides", twin ? (int64_t[]){1, 2} : (int64_t[]){2}, twin ? 2 : 1);
	mb_node(b, "Relu", "relu2", (const char *[]){"c", NULL}, "cr");
	mb_node(b, "GlobalAveragePool", "gap", (const char *[]){"cr", NULL}, "g");
	mb_node(b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	mb_init_f32(b, "wf", (int64_t[]){5, O}, 2, wf);
	n = mb_node(b, "Gemm", "head", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
	return load_mb(b);
}

Test(qengine, conv1d_stack_equals_its_2d_twin_bit_for_bit)
{
	enum { N = 16 };
	struct dataset *ds = uniform_items(N, 1, 3, 16, -1, 1, 89); /* [N, 3, 16] as NPY loads it */
	float yf[N * 5], yq[2][N * 5];
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++)
		for (int isa = Q8_ISA_REF; isa <= (int)q8_isa_best(); isa += (int)q8_isa_best()) {
			for (int twin = 0; twin < 2; twin++) {
				struct mb b;
				struct graph *g = conv1d_stack_as(&b, twin);
				struct calib *cal = calibrate(g, ds);
				struct layer *ls;
				int nl;
				cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
				cr_assert_eq(nl, 3);
				struct policy *p;
				cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
				struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
							  (enum requant_mode)rq};
				struct qmodel *m;
				cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s",
					     status_msg());
				cr_assert_eq(count_fallbacks(m), 0, "%s", twin ? "2-D twin" : "1-D");
				cr_assert_eq(run_both(g, m, ds, N, yf, yq[twin]), 5);
				cr_assert_lt(rel_rms(yq[twin], yf, N * 5), 0.05);
				qmodel_free(m);
				policy_free(p);
				free(ls);
				calib_free(cal);
				graph_free(g);
				mb_free(&b);
			}
			cr_assert_arr_eq(yq[0], yq[1], sizeof yq[0], "the 1-D stack and its twin differ (%s, %s)",
					 q8_isa_name((enum q8_isa)isa), rq == REQUANT_Q31 ? "Q31" : "float");
			if (isa == (int)q8_isa_best())
				break;
		}
	dataset_free(ds);
}

/* ONNX's linear-resize source coordinate, from the operator's text and its
 * reference (align_corners over the unrounded resized length), clamped as
 * edge padding gives it. */
static double onnx_linear_src(const char *coord, int64_t i, int64_t len_in, int64_t len_out,
			      double scale)
{
	double x;
	if (strcmp(coord, "asymmetric") == 0)
		x = (double)i / scale;
	else if (strcmp(coord, "align_corners") == 0)
		x = len_out == 1 ? 0 : (double)i * (double)(len_in - 1) / (len_in * scale - 1);
	else if (strcmp(coord, "pytorch_half_pixel") == 0)
		x = len_out > 1 ? ((double)i + 0.5) / scale - 0.5 : 0;
	else /* half_pixel */
		x = ((double)i + 0.5) / scale - 0.5;
	return x < 0 ? 0 : x > (double)(len_in - 1) ? (double)(len_in - 1) : x;
}

/* A linear Resize runs on the quantized codes: every output is within half
 * a step of ONNX's bilinear interpolation of the quantized inputs, for
 * scales and sizes, every coordinate mode, up and down. After a conv and
 * before another (channels-last codes) it needs no FP32 step either. */
Test(qengine, linear_resize_interpolates_quantized_inputs)
{
	const struct {
		const char *coord;
		bool sizes;
		int64_t ho, wo;
		float sh, sw;
	} cases[] = {{"half_pixel", false, 0, 0, 2.0f, 2.0f},
		     {"pytorch_half_pixel", true, 5, 17, 0, 0},
		     {"align_corners", true, 9, 6, 0, 0},
		     {"asymmetric", false, 0, 0, 0.6f, 1.7f}};
	const int H = 7, W = 11, C = 3, N = 2;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
		for (int conv = 0; conv < 2; conv++) {
			struct mb b;
			mb_init(&b, 13);
			mb_input(&b, "x", (int64_t[]){-1, C, H, W}, 4);
			if (cases[ci].sizes)
				mb_init_i64(&b, "sizes", (int64_t[]){4}, 1,
					    (int64_t[]){1, C, cases[ci].ho, cases[ci].wo});
			else
				mb_init_f32(&b, "scales", (int64_t[]){4}, 1,
					    (float[]){1, 1, cases[ci].sh, cases[ci].sw});
			uint32_t s = 5;
			float w0[C * C], w1[C * C];
			for (int i = 0; i < C * C; i++) {
				w0[i] = 0.5f * frand(&s);
				w1[i] = 0.5f * frand(&s);
			}
			mb_init_f32(&b, "w0", (int64_t[]){C, C, 1, 1}, 4, w0);
			mb_init_f32(&b, "w1", (int64_t[]){C, C, 1, 1}, 4, w1);
			if (conv)
				mb_node(&b, "Conv", "c0", (const char *[]){"x", "w0", NULL}, "xc");
			Onnx__NodeProto *n = mb_node(
				&b, "Resize", "up",
				cases[ci].sizes ? (const char *[]){conv ? "xc" : "x", "", "", "sizes", NULL}
						: (const char *[]){conv ? "xc" : "x", "", "scales", NULL},
				"r");
			mb_attr_string(&b, n, "mode", "linear");
			mb_attr_string(&b, n, "coordinate_transformation_mode", cases[ci].coord);
			if (conv)
				mb_node(&b, "Conv", "c1", (const char *[]){"r", "w1", NULL}, "rc");
			mb_node(&b, "Flatten", "flat", (const char *[]){conv ? "rc" : "r", NULL}, "y");
			mb_output(&b, "y");
			int64_t Ho = cases[ci].sizes ? cases[ci].ho : (int64_t)floor(H * (double)cases[ci].sh);
			int64_t Wo = cases[ci].sizes ? cases[ci].wo : (int64_t)floor(W * (double)cases[ci].sw);
			double sh = cases[ci].sizes ? (double)(float)((double)Ho / H) : cases[ci].sh;
			double sw = cases[ci].sizes ? (double)(float)((double)Wo / W) : cases[ci].sw;
			struct graph *g = load_mb(&b);
			struct dataset *ds = uniform_items(8, C, H, W, -2.0f, 3.0f, 91 + (uint32_t)ci);
			ds->n_classes = (int)(C * Ho * Wo);
			struct calib *cal = calibrate(g, ds);
			struct layer *ls;
			int nl;
			cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
			struct policy *p;
			cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK, "%s", status_msg());
			struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL,
						  REQUANT_FLOAT};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(count_fallbacks(m), 0, "%s: an FP32 step", cases[ci].coord);
			if (conv) {
				float yf[8 * 3 * 9 * 22], yq[8 * 3 * 9 * 22];
				int per = run_both(g, m, ds, N, yf, yq);
				cr_assert_lt(rel_rms(yq, yf, N * per), 0.03, "%s: relative error %.4f",
					     cases[ci].coord, rel_rms(yq, yf, N * per));
			} else {
				struct qparams qp;
				cr_assert(qmodel_value_qparams(m, g->inputs[0], &qp));
				struct qengine *e;
				cr_assert_eq(qengine_create(m, N, &e), PRESSO_OK);
				memcpy(qengine_input(e, 0), ds->f32, sizeof(float) * (size_t)N * C * H * W);
				cr_assert_eq(qengine_run(e, N), PRESSO_OK, "%s", status_msg());
				struct shape os;
				const float *y = qengine_output(e, 0, &os);
				cr_assert_eq(os.dims[1], C * Ho * Wo);
				for (int img = 0; img < N; img++)
					for (int c = 0; c < C; c++)
						for (int64_t oh = 0; oh < Ho; oh++)
							for (int64_t ow = 0; ow < Wo; ow++) {
								double fh = onnx_linear_src(cases[ci].coord, oh, H, Ho, sh);
								double fw = onnx_linear_src(cases[ci].coord, ow, W, Wo, sw);
								int64_t h0 = (int64_t)fh, w0i = (int64_t)fw;
								int64_t h1 = h0 + 1 < H ? h0 + 1 : h0;
								int64_t w1i = w0i + 1 < W ? w0i + 1 : w0i;
								double v[2][2];
								int64_t hs[2] = {h0, h1}, ws[2] = {w0i, w1i};
								for (int i = 0; i < 2; i++)
									for (int j = 0; j < 2; j++) {
										int q = quant_act_quantize(
											ds->f32[(((size_t)img * C + c) * H + hs[i]) * W + ws[j]],
											&qp);
										v[i][j] = qp.scale * (double)(q - qp.zero);
									}
								double ah = fh - (double)h0, aw = fw - (double)w0i;
								double want = (1 - ah) * ((1 - aw) * v[0][0] + aw * v[0][1]) +
									      ah * ((1 - aw) * v[1][0] + aw * v[1][1]);
								float got = y[(((size_t)img * C + c) * Ho + oh) * Wo + ow];
								cr_assert(fabs(got - want) <= 0.5001 * qp.scale,
									  "%s at (%d,%d,%lld,%lld): %g, want %g (step %g)",
									  cases[ci].coord, img, c, (long long)oh,
									  (long long)ow, got, want, qp.scale);
							}
				qengine_free(e);
			}
			qmodel_free(m);
			policy_free(p);
			free(ls);
			calib_free(cal);
			dataset_free(ds);
			graph_free(g);
			mb_free(&b);
		}
}

/* The same over [N, C, L] (F.interpolate(mode="linear") of a sequence): the
 * codes in their logical order, one row per channel. */
Test(qengine, linear_resize_of_a_sequence)
{
	const int L = 9, C = 2, N = 2, Lo = 22;
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, C, L}, 3);
	mb_init_f32(&b, "scales", (int64_t[]){3}, 1, (float[]){1, 1, 2.5f});
	Onnx__NodeProto *n = mb_node(&b, "Resize", "up", (const char *[]){"x", "", "scales", NULL}, "r");
	mb_attr_string(&b, n, "mode", "linear");
	mb_node(&b, "Flatten", "flat", (const char *[]){"r", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load_mb(&b);
	struct dataset *ds = uniform_items(8, 1, C, L, -2.0f, 3.0f, 19);
	ds->n_classes = C * Lo;
	struct calib *cal = calibrate(g, ds);
	struct policy *p;
	cr_assert_eq(policy_load("int8", NULL, 0, &p), PRESSO_OK, "%s", status_msg());
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(count_fallbacks(m), 0);
	struct qparams qp;
	cr_assert(qmodel_value_qparams(m, g->inputs[0], &qp));
	struct qengine *e;
	cr_assert_eq(qengine_create(m, N, &e), PRESSO_OK);
	memcpy(qengine_input(e, 0), ds->f32, sizeof(float) * (size_t)N * C * L);
	cr_assert_eq(qengine_run(e, N), PRESSO_OK, "%s", status_msg());
	struct shape os;
	const float *y = qengine_output(e, 0, &os);
	cr_assert_eq(os.dims[1], C * Lo);
	for (int row = 0; row < N * C; row++)
		for (int o = 0; o < Lo; o++) {
			double f = onnx_linear_src("half_pixel", o, L, Lo, 2.5);
			int i0 = (int)f, i1 = i0 + 1 < L ? i0 + 1 : i0;
			double v0 = qp.scale * (quant_act_quantize(ds->f32[row * L + i0], &qp) - qp.zero);
			double v1 = qp.scale * (quant_act_quantize(ds->f32[row * L + i1], &qp) - qp.zero);
			double want = (1 - (f - i0)) * v0 + (f - i0) * v1;
			cr_assert(fabs(y[row * Lo + o] - want) <= 0.5001 * qp.scale, "row %d at %d: %g, want %g",
				  row, o, y[row * Lo + o], want);
		}
	qengine_free(e);
	qmodel_free(m);
	policy_free(p);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}

/* A global average over no pixels (here after a Resize that leaves no
 * column) is 0 in the INT8 engine as in FP32; it divided by zero (a fuzzer's
 * find, tests/fuzz/regressions/onnx/gap_of_no_pixels.onnx). */
Test(qengine, global_average_of_no_pixels_is_zero)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 1, 4}, 4);
	mb_init_f32(&b, "scales", (int64_t[]){4}, 1, (float[]){1, 1, 1, 0.1f});
	Onnx__NodeProto *n = mb_node(&b, "Resize", "none", (const char *[]){"x", "", "scales", NULL}, "r");
	mb_attr_string(&b, n, "mode", "nearest");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"r", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load_mb(&b);
	struct dataset *ds = uniform_items(4, 2, 1, 4, 1.0f, 3.0f, 23);
	struct calib *cal = calibrate(g, ds);
	struct policy *p;
	cr_assert_eq(policy_load("int8", NULL, 0, &p), PRESSO_OK, "%s", status_msg());
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	float yf[4 * 2], yq[4 * 2];
	cr_assert_eq(run_both(g, m, ds, 4, yf, yq), 2);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(yf[i], 0.0f);
		cr_assert_eq(yq[i], 0.0f, "output %d: %g", i, yq[i]);
	}
	qmodel_free(m);
	policy_free(p);
	calib_free(cal);
	dataset_free(ds);
	graph_free(g);
	mb_free(&b);
}


/* The row LSTM's recurrence in integers (H' at 1/127 steps times R's codes
 * on the INT8 GEMM): the same logits on the reference kernels and the CPU's
 * best, not those of the FP32 recurrence on R dequantized (PRESSO_RNN_INT8=0),
 * and within 0.5 point of its accuracy on the test images. */
Test(shipped, lstm_recurrence_in_integers, .timeout = 600)
{
	struct shipped s;
	if (!load_shipped("lstm", &s))
		cr_skip_test("dataset-fashion-mnist is not installed");
	enum { N = 48 };
	static float y[3][N * 10];
	struct eval_result res[2];
	struct qmodel_size z[3];
	struct policy *p;
	cr_assert_eq(policy_load("int8", s.ls, s.nl, &p), PRESSO_OK);
	for (int k = 0; k < 3; k++) {
		/* k = 0: the reference kernels; 1: the best; 2: the best, FP32 recurrence */
		if (k == 2)
			cr_assert_eq(setenv(QENGINE_RNN_INT8_ENV, "0", 1), 0);
		struct quant_config qc = {CALIB_PERCENTILE, 99.99, k ? q8_isa_best() : Q8_ISA_REF, NULL,
					  NULL, REQUANT_FLOAT};
		struct qmodel *m;
		cr_assert_eq(qmodel_build(s.g, p, s.cal, &qc, &m), PRESSO_OK, "%s", status_msg());
		if (k == 2)
			cr_assert_eq(unsetenv(QENGINE_RNN_INT8_ENV), 0);
		run_q_items(m, s.test, &s.norm, N, 10, y[k]);
		qmodel_size(m, &z[k]);
		if (k) {
			struct eval_model qm = {s.g, m};
			cr_assert_eq(eval_accuracy(&qm, s.test, &s.norm, &s.all, 100, 2, &res[k - 1]),
				     PRESSO_OK);
		}
		qmodel_free(m);
	}
	cr_assert_arr_eq(y[0], y[1], sizeof y[0], "the reference and %s kernels differ",
			 q8_isa_name(q8_isa_best()));
	double moved = 0;
	for (int i = 0; i < N * 10; i++)
		moved = fmax(moved, fabs((double)y[1][i] - y[2][i]));
	cr_assert_gt(moved, 1e-4, "the integer recurrence gives the FP32 one's logits: not run");
	cr_log_info("lstm W8A8: %.2f%% with the integer recurrence, %.2f%% with FP32's",
		    res[0].accuracy_pct, res[1].accuracy_pct);
	cr_assert_leq(fabs(res[0].accuracy_pct - res[1].accuracy_pct), fx_sanitized() ? 1.0 : 0.5);
	/* BOPs: the recurrence's MACs at 8 x 8 bits, not 32 x 32 */
	int64_t rec = 0;
	for (int i = 0; i < s.g->n_nodes; i++)
		rec += graph_node_fp32_macs(s.g, i);
	cr_assert_eq(rec, 28 * 4 * 64 * 64);
	cr_assert_float_eq(z[2].bops - z[1].bops, (double)rec * (32 * 32 - 8 * 8), 1.0);
	policy_free(p);
	free_shipped(&s);
}

/* A bidirectional GRU without linear_before_reset (its h gate's product is
 * on r . H': the integer recurrence's second part) and a bidirectional RNN,
 * batch first over an item's rows, then an FC: the INT8 engine runs each
 * recurrence in integers, the same on the reference kernels and the best,
 * within 5 % (relative RMS) of the FP32 engine's logits. */
Test(qengine, gru_and_rnn_recurrences_in_integers_on_every_path)
{
	enum { N = 32, T = 6, IN = 5, H = 4 };
	struct dataset *ds = uniform_items(N, 1, T, IN, -1, 1, 97);
	for (int cell = 0; cell < 2; cell++) {
		const char *op = cell ? "RNN" : "GRU";
		int G = cell ? 1 : 3;
		float yq[2][N * 3], yf[N * 3];
		for (int isa = Q8_ISA_REF; isa <= (int)q8_isa_best(); isa += (int)q8_isa_best()) {
			struct mb b;
			mb_init(&b, 14);
			mb_input(&b, "input", (int64_t[]){-1, 1, T, IN}, 4);
			mb_init_i64(&b, "rows", (int64_t[]){3}, 1, (int64_t[]){-1, T, IN});
			mb_node(&b, "Reshape", "seq", (const char *[]){"input", "rows", NULL}, "x");
			float w[2 * 3 * H * IN], r[2 * 3 * H * H], bias[2 * 6 * H], head[3 * 2 * H];
			uint32_t seed = 5;
			for (int i = 0; i < 2 * G * H * IN; i++)
				w[i] = 0.8f * frand(&seed);
			for (int i = 0; i < 2 * G * H * H; i++)
				r[i] = 0.8f * frand(&seed);
			for (int i = 0; i < 2 * 2 * G * H; i++)
				bias[i] = 0.2f * frand(&seed);
			for (int i = 0; i < 3 * 2 * H; i++)
				head[i] = frand(&seed);
			mb_init_f32(&b, "W", (int64_t[]){2, G * H, IN}, 3, w);
			mb_init_f32(&b, "R", (int64_t[]){2, G * H, H}, 3, r);
			mb_init_f32(&b, "B", (int64_t[]){2, 2 * G * H}, 2, bias);
			Onnx__NodeProto *n =
				mb_node(&b, op, "rec", (const char *[]){"x", "W", "R", "B", NULL}, "");
			mb_node_output(&b, n, "h");
			mb_attr_int(&b, n, "hidden_size", H);
			mb_attr_int(&b, n, "layout", 1);
			mb_attr_string(&b, n, "direction", "bidirectional");
			mb_init_i64(&b, "flat", (int64_t[]){2}, 1, (int64_t[]){-1, 2 * H});
			mb_node(&b, "Reshape", "hflat", (const char *[]){"h", "flat", NULL}, "hf");
			mb_init_f32(&b, "fc", (int64_t[]){3, 2 * H}, 2, head);
			n = mb_node(&b, "Gemm", "head", (const char *[]){"hf", "fc", NULL}, "logits");
			mb_attr_int(&b, n, "transB", 1);
			mb_output(&b, "logits");
			struct graph *g = load_mb(&b);
			struct calib *cal = calibrate(g, ds);
			struct layer *ls;
			int nl;
			cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
			struct policy *p;
			cr_assert_eq(policy_load("int8", ls, nl, &p), PRESSO_OK);
			struct quant_config qc = {CALIB_MINMAX, 99.99, (enum q8_isa)isa, NULL, NULL,
						  REQUANT_FLOAT};
			struct qmodel *m;
			cr_assert_eq(qmodel_build(g, p, cal, &qc, &m), PRESSO_OK, "%s", status_msg());
			cr_assert_eq(qmodel_n_qconsts(m), 1, "%s: R is quantized", op);
			int k = isa == Q8_ISA_REF ? 0 : 1;
			cr_assert_eq(run_both(g, m, ds, N, yf, yq[k]), 3);
			double e = rel_rms(yq[k], yf, N * 3);
			cr_log_info("%s: INT8 (%s) against FP32: relative RMS %.4f", op,
				    q8_isa_name((enum q8_isa)isa), e);
			cr_assert_lt(e, 0.05, "%s on %s: relative RMS %g", op,
				     q8_isa_name((enum q8_isa)isa), e);
			qmodel_free(m);
			policy_free(p);
			free(ls);
			calib_free(cal);
			graph_free(g);
			mb_free(&b);
			if (isa == (int)q8_isa_best())
				break;
		}
		if (q8_isa_best() != Q8_ISA_REF) /* (PRESSO_ISA=ref: one path only) */
			cr_assert_arr_eq(yq[0], yq[1], sizeof yq[0], "%s: the kernels differ", op);
	}
	dataset_free(ds);
}
