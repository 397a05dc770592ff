/* test_transform.c - pruning, low-rank and the sparse size accounting:
 * the SVD's error is the discarded energy, pruning all-zero channels changes
 * nothing, residual groups are refused, shipped models shrink by exactly the
 * expected count and still run in both engines, and a hand count of size_bytes. */
#include <criterion/criterion.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "model/engine.h"
#include "format/presso_file.h"
#include "quant/qengine.h"
#include "quant/quant.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"
#include "transform/transform.h"

static struct graph *load(const char *rel)
{
	struct graph *g = NULL;
	cr_assert_eq(graph_load_onnx(fx_src(rel), &g), PRESSO_OK, "%s", status_msg());
	return g;
}

static uint64_t rng_state = 88172645463325252ull;

static float frand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static int layer_named(const struct graph *g, const char *name, struct layer *out)
{
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	int found = -1;
	for (int i = 0; i < n; i++)
		if (strcmp(ls[i].name, name) == 0) {
			found = i;
			if (out)
				*out = ls[i];
		}
	free(ls);
	cr_assert_geq(found, 0, "no layer %s", name);
	return found;
}

static struct policy *identity_policy(const struct graph *g)
{
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	free(ls);
	struct layer_policy id = policy_default_layer();
	struct policy *p;
	cr_assert_eq(policy_uniform(&id, n, &p), PRESSO_OK);
	return p;
}

/* FP32 outputs of g on `batch` inputs (copied out; free it). */
static float *run_fp32(const struct graph *g, const float *x, int batch, int64_t *n_out)
{
	struct engine *e;
	cr_assert_eq(engine_create(g, batch, &e), PRESSO_OK, "%s", status_msg());
	int64_t n_in = shape_numel(&g->values[g->inputs[0]].shape) * batch;
	memcpy(engine_input(e, 0), x, sizeof(float) * (size_t)n_in);
	cr_assert_eq(engine_run(e, batch), PRESSO_OK, "%s", status_msg());
	struct shape s;
	const float *y = engine_output(e, 0, &s);
	*n_out = shape_numel(&s);
	float *out = malloc(sizeof(float) * (size_t)*n_out);
	memcpy(out, y, sizeof(float) * (size_t)*n_out);
	engine_free(e);
	return out;
}

static float *random_inputs(const struct graph *g, int batch)
{
	int64_t n = shape_numel(&g->values[g->inputs[0]].shape) * batch;
	float *x = malloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		x[i] = frand() * 2.0f;
	return x;
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - b[i]));
	return m;
}

Test(transform, svd_error_is_the_discarded_energy)
{
	const int64_t shapes[][2] = {{7, 5}, {5, 9}, {16, 150}, {120, 400}};
	for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
		int64_t m = shapes[t][0], n = shapes[t][1], mn = m < n ? m : n;
		float *w = malloc(sizeof(float) * (size_t)(m * n));
		for (int64_t i = 0; i < m * n; i++)
			w[i] = frand();
		for (int64_t r = 1; r <= mn; r += (mn > 8 ? mn / 4 : 1)) {
			float *a = malloc(sizeof(float) * (size_t)(r * n));
			float *b = malloc(sizeof(float) * (size_t)(m * r));
			double discarded = -1;
			cr_assert_eq(transform_svd(w, m, n, r, a, b, &discarded), PRESSO_OK);
			double err = 0, energy = 0;
			for (int64_t i = 0; i < m; i++)
				for (int64_t j = 0; j < n; j++) {
					double s = 0;
					for (int64_t k = 0; k < r; k++)
						s += (double)b[i * r + k] * a[k * n + j];
					double d = w[i * n + j] - s;
					err += d * d;
					energy += (double)w[i * n + j] * w[i * n + j];
				}
			cr_assert(fabs(err - discarded) <= 1e-5 * energy,
				  "%lldx%lld rank %lld: ||W - BA||^2 %.9g, discarded energy %.9g",
				  (long long)m, (long long)n, (long long)r, err, discarded);
			if (r == mn)
				cr_assert_leq(discarded, 1e-9 * energy);
			free(a);
			free(b);
		}
		free(w);
	}
	float w[6] = {1, 2, 3, 4, 5, 6}, a[6], b[6];
	double d;
	cr_assert_eq(transform_svd(w, 2, 3, 3, a, b, &d), PRESSO_E_CONFIG, "rank above min(m, n)");
}

/* w is w0 with round(ratio * n) of its smallest magnitudes set to zero and
 * the rest unchanged; returns the zeros. */
static int64_t check_pruned(const struct value *w, const struct value *w0, double ratio)
{
	int64_t total = shape_numel(&w->shape), zeros = 0;
	float kept_min = INFINITY, cut_max = 0;
	for (int64_t i = 0; i < total; i++) {
		if (w->data[i] == 0) {
			zeros++;
			cut_max = fmaxf(cut_max, fabsf(w0->data[i]));
		} else {
			cr_assert_eq(w->data[i], w0->data[i], "surviving weights are unchanged");
			kept_min = fminf(kept_min, fabsf(w->data[i]));
		}
	}
	cr_assert_eq(zeros, (int64_t)floor(ratio * (double)total + 0.5));
	cr_assert_leq(cut_max, kept_min, "the smallest magnitudes go");
	return zeros;
}

Test(transform, unstructured_prunes_the_exact_fraction)
{
	struct graph *g = load("models/lenet.onnx");
	struct policy *p = identity_policy(g);
	int li = layer_named(g, "/conv2/Conv", NULL);
	p->layers[li].prune = 0.3;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct layer l2;
	layer_named(tr.g, "/conv2/Conv", &l2);
	const struct node *n = &tr.g->nodes[l2.node];
	const struct value *w = &tr.g->values[n->inputs[1]], *w0 = &g->values[n->inputs[1]];
	int64_t zeros = check_pruned(w, w0, 0.3);
	cr_assert(tr.changed);
	cr_assert(tr.repair[li], "a pruned layer is a repair target");
	cr_assert_eq(tr.after_prune.params, tr.before.params - zeros);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
}

/* A recurrent layer's R is pruned with its input projection, by the same
 * fraction of its own smallest magnitudes (the INT8 engine quantizes it at
 * the projection's bits too). */
Test(transform, recurrent_weights_are_pruned_with_their_projection)
{
	struct graph *g = load("models/lstm.onnx");
	struct policy *p = identity_policy(g);
	int li = layer_named(g, "/rnn/LSTM#proj", NULL);
	p->layers[li].prune = 0.6;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	int r = -1;
	for (int i = 0; i < tr.g->n_nodes; i++)
		if (tr.g->nodes[i].op == OP_LSTM)
			r = tr.g->nodes[i].inputs[RNN_IN_R];
	cr_assert_geq(r, 0);
	check_pruned(&tr.g->values[r], &g->values[graph_find_value(g, tr.g->values[r].name)], 0.6);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
}

Test(transform, structured_pruning_of_zero_channels_changes_nothing)
{
	struct graph *g0 = load("models/lenet.onnx");
	struct graph *g;
	cr_assert_eq(graph_clone(g0, &g), PRESSO_OK);
	struct layer l1;
	int li = layer_named(g, "/conv1/Conv", &l1);
	struct node *n = &g->nodes[l1.node];
	struct value *w = &g->values[n->inputs[1]], *b = &g->values[n->inputs[2]];
	const int dead[2] = {1, 4};
	for (int d = 0; d < 2; d++) {
		for (int j = 0; j < 25; j++)
			w->data[dead[d] * 25 + j] = 0.0f;
		b->data[dead[d]] = 0.0f;
	}
	struct policy *p = identity_policy(g);
	p->layers[li].prune = 2.0 / 6.0;
	p->layers[li].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct layer a, c;
	layer_named(tr.g, "/conv1/Conv", &a);
	layer_named(tr.g, "/conv2/Conv", &c);
	cr_assert_eq(a.c_out, 4);
	cr_assert_eq(c.c_in, 4, "the next conv loses the same input channels");
	/* the dead filters held no non-zero parameter; conv2 loses 2 x 16 x 25 */
	cr_assert_eq(tr.after_prune.params, tr.before.params - 2 * 16 * 25);
	float *x = random_inputs(g, 3);
	int64_t n1, n2;
	float *y1 = run_fp32(g, x, 3, &n1), *y2 = run_fp32(tr.g, x, 3, &n2);
	cr_assert_eq(n1, n2);
	cr_assert_leq(max_abs_diff(y1, y2, n1), 1e-5, "outputs moved by %g", max_abs_diff(y1, y2, n1));
	/* the channel map of the next conv's repair target is the identity, and
	 * conv1's own map names the four channels that stayed */
	int l2 = layer_named(tr.g, "/conv2/Conv", NULL);
	cr_assert(tr.repair[l2]);
	cr_assert_eq(tr.channels[l2][15], 15);
	free(x);
	free(y1);
	free(y2);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
	graph_free(g0);
}

static void expect_refused(const char *model, const char *layer, const char *needle)
{
	struct graph *g = load(model);
	struct policy *p = identity_policy(g);
	int li = layer_named(g, layer, NULL);
	p->layers[li].prune = 0.5;
	p->layers[li].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	enum presso_status s = transform_apply(g, p, &tr);
	cr_assert_eq(s, PRESSO_E_CONFIG, "%s %s: %s", model, layer, status_msg());
	cr_assert(strstr(status_msg(), layer), "names the layer: %s", status_msg());
	cr_assert(strstr(status_msg(), ".prune"), "names the field: %s", status_msg());
	cr_assert(strstr(status_msg(), needle), "says why (%s): %s", needle, status_msg());
	cr_assert_null(tr.g, "nothing half-built is left");
	policy_free(p);
	graph_free(g);
}

Test(transform, residual_groups_stay_consistent)
{
	/* a conv whose output meets the shortcut at an Add, the stem feeding the
	 * first block's identity shortcut, a MobileNet projection inside a residual */
	expect_refused("models/resnet.onnx", "/layers/layers.0/conv2/Conv", "(Add)");
	expect_refused("models/resnet.onnx", "/conv1/Conv", "(Add)");
	expect_refused("models/resnet.onnx", "/layers/layers.2/down/down.0/Conv", "(Add)");
	expect_refused("models/mobilenetv2.onnx", "/blocks/blocks.2/body/body.2/body.2.0/Conv",
		       "(Add)");
	expect_refused("models/mobilenetv2.onnx", "/blocks/blocks.1/body/body.1/body.1.0/Conv",
		       "depthwise");
	expect_refused("models/lenet.onnx", "/fc3/Gemm", "graph output");
}

/* n random 1 x h x w images of `classes` classes and the calibration of g on
 * them (free_images() frees the images). */
static struct calib *calibrate_random(const struct graph *g, int n, int h, int w, int classes,
				      struct dataset *ds)
{
	*ds = (struct dataset){.n = n, .c = 1, .h = h, .w = w, .n_classes = classes};
	ds->f32 = malloc(sizeof(float) * (size_t)(n * h * w));
	ds->labels = calloc((size_t)n, sizeof(int32_t));
	for (int i = 0; i < n * h * w; i++)
		ds->f32[i] = frand();
	struct split sp;
	cr_assert_eq(split_range(n, n, &sp), PRESSO_OK);
	struct calib *cal;
	cr_assert_eq(calib_run(g, ds, NULL, &sp, 8, &cal), PRESSO_OK, "%s", status_msg());
	split_free(&sp);
	return cal;
}

static void free_images(struct dataset *ds)
{
	free(ds->f32);
	free(ds->labels);
}

/* Quantizes g (identity-shaped policy) on a few random images and runs it. */
static void check_runs_int8(const struct graph *g, int bits)
{
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	free(ls);
	struct dataset ds;
	struct calib *cal = calibrate_random(g, 16, 28, 28, 10, &ds);
	struct layer_policy lp = policy_default_layer();
	lp.bits = bits;
	struct policy *p;
	cr_assert_eq(policy_uniform(&lp, n, &p), PRESSO_OK);
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *qm;
	cr_assert_eq(qmodel_build(g, p, cal, &qc, &qm), PRESSO_OK, "%s", status_msg());
	struct qengine *e;
	cr_assert_eq(qengine_create(qm, 4, &e), PRESSO_OK);
	memcpy(qengine_input(e, 0), ds.f32, sizeof(float) * 4 * 28 * 28);
	cr_assert_eq(qengine_run(e, 4), PRESSO_OK, "%s", status_msg());
	struct shape os;
	const float *y = qengine_output(e, 0, &os);
	for (int64_t i = 0; i < shape_numel(&os); i++)
		cr_assert(isfinite(y[i]));
	qengine_free(e);
	qmodel_free(qm);
	policy_free(p);
	calib_free(cal);
	free_images(&ds);
}

static int64_t total_params(const struct graph *g)
{
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	return params;
}

static void prune_middle(const char *model, const char *layer, int64_t expect_removed)
{
	struct graph *g = load(model);
	struct policy *p = identity_policy(g);
	int li = layer_named(g, layer, NULL);
	p->layers[li].prune = 0.5;
	p->layers[li].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s: %s", model, status_msg());
	cr_assert_eq(total_params(g) - total_params(tr.g), expect_removed,
		     "%s: removed %lld parameters, expected %lld", model,
		     (long long)(total_params(g) - total_params(tr.g)), (long long)expect_removed);
	float *x = random_inputs(tr.g, 2);
	int64_t ny;
	float *y = run_fp32(tr.g, x, 2, &ny);
	cr_assert_eq(ny, 20);
	free(x);
	free(y);
	check_runs_int8(tr.g, 8);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
}

Test(transform, half_a_middle_conv_on_every_shipped_model)
{
	/* LeNet conv2 (6->16, 5x5): 8 filters of 6*25+1, and fc1's 8*25 inputs x 120 */
	prune_middle("models/lenet.onnx", "/conv2/Conv", 8 * (6 * 25 + 1) + 8 * 25 * 120);
	/* MobileNetV2 expansion (32->128, 1x1): 64 filters of 33, the depthwise
	 * conv's 64 filters of 9+1, the projection's 64 inputs x 32 */
	prune_middle("models/mobilenetv2.onnx", "/blocks/blocks.4/body/body.0/body.0.0/Conv",
		     64 * 33 + 64 * 10 + 64 * 32);
	/* ResNet block conv1 (16->32, 3x3): 16 filters of 16*9+1, conv2's 16*9 inputs x 32 */
	prune_middle("models/resnet.onnx", "/layers/layers.2/conv1/Conv",
		     16 * (16 * 9 + 1) + 16 * 9 * 32);
	/* the BatchNorm nodes of resnet_bn fold into their convs at import */
	prune_middle("models/resnet_bn.onnx", "/layers/layers.2/conv1/Conv",
		     16 * (16 * 9 + 1) + 16 * 9 * 32);
}

/* Replaces a layer's weights by an exact rank-r matrix. */
static void make_low_rank(struct graph *g, const char *layer, int64_t r)
{
	struct layer l;
	layer_named(g, layer, &l);
	struct value *w = &g->values[g->nodes[l.node].inputs[1]];
	int64_t m = w->shape.dims[0], k = shape_numel(&w->shape) / m;
	float *u = malloc(sizeof(float) * (size_t)(m * r)), *v = malloc(sizeof(float) * (size_t)(r * k));
	for (int64_t i = 0; i < m * r; i++)
		u[i] = frand() * 0.3f;
	for (int64_t i = 0; i < r * k; i++)
		v[i] = frand() * 0.3f;
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < k; j++) {
			float s = 0;
			for (int64_t t = 0; t < r; t++)
				s += u[i * r + t] * v[t * k + j];
			w->data[i * k + j] = s;
		}
	free(u);
	free(v);
}

Test(transform, low_rank_of_a_low_rank_layer_is_exact)
{
	struct graph *g0 = load("models/lenet.onnx"), *g;
	cr_assert_eq(graph_clone(g0, &g), PRESSO_OK);
	make_low_rank(g, "/conv2/Conv", 4);  /* [16][150], Conv 5x5 */
	make_low_rank(g, "/fc1/Gemm", 10);   /* [120][400] (transB) */
	struct policy *p = identity_policy(g);
	p->layers[layer_named(g, "/conv2/Conv", NULL)].rank = 4;
	p->layers[layer_named(g, "/fc1/Gemm", NULL)].rank = 10;
	p->layers[layer_named(g, "/conv1/Conv", NULL)].rank = 0.9; /* 5 x (6 + 25) > 150 */
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(tr.g->n_nodes, g->n_nodes + 2, "two layers split in two");
	cr_assert_not_null(tr.notes);
	cr_assert(strstr(tr.notes, "/conv1/Conv: rank 5 left at full"), "%s", tr.notes);
	cr_assert_eq(tr.after_lowrank.params,
		     tr.before.params - 16 * 150 + 4 * (16 + 150) - 120 * 400 + 10 * (120 + 400),
		     "params %lld", (long long)tr.after_lowrank.params);
	cr_assert_eq(tr.n_layers, 7);
	struct layer first;
	int fi = layer_named(tr.g, "/conv2/Conv.lowrank", &first);
	cr_assert_eq(first.c_out, 4);
	cr_assert_eq(first.kh, 5);
	cr_assert_eq(tr.origin[fi], layer_named(g, "/conv2/Conv", NULL));
	cr_assert(!tr.repair[fi], "the first factor is not compared with the original");
	float *x = random_inputs(g, 3);
	int64_t n1, n2;
	float *y1 = run_fp32(g, x, 3, &n1), *y2 = run_fp32(tr.g, x, 3, &n2);
	cr_assert_eq(n1, n2);
	double scale = 0;
	for (int64_t i = 0; i < n1; i++)
		scale = fmax(scale, fabs(y1[i]));
	cr_assert_leq(max_abs_diff(y1, y2, n1), 1e-4 * scale + 1e-5, "outputs moved by %g (scale %g)",
		      max_abs_diff(y1, y2, n1), scale);
	check_runs_int8(tr.g, 4);
	free(x);
	free(y1);
	free(y2);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
	graph_free(g0);
}

Test(transform, rank_above_the_pruned_full_rank_is_an_error)
{
	struct graph *g = load("models/lenet.onnx");
	struct policy *p = identity_policy(g);
	int li = layer_named(g, "/fc2/Gemm", NULL); /* 84 x 120 */
	p->layers[li].prune = 0.5;
	p->layers[li].prune_kind = PRUNE_STRUCTURED; /* 42 outputs left */
	p->layers[li].rank = 50;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_E_CONFIG);
	cr_assert(strstr(status_msg(), "layers./fc2/Gemm.rank: 50 is above the layer's full rank 42"),
		  "%s", status_msg());
	policy_free(p);
	graph_free(g);
}

/* --- size accounting by hand ---------------------------------------------------- */

Test(transform, weight_coding_by_hand)
{
	int8_t q[40] = {0};
	q[20] = 1;
	q[24] = 2;
	/* 20 zeros: a filler (15 zeros + an explicit 0) then a run of 4; a run of 3;
	 * 15 trailing zeros need no entry: 3 entries of 4 + 4 bits */
	struct weight_coding c = quant_weight_coding(q, 40, 4);
	cr_assert_eq(c.kind, WCODE_RUNLENGTH);
	cr_assert_eq(c.bytes, 3);
	cr_assert_eq(c.nnz, 2);
	int8_t d[16];
	for (int i = 0; i < 16; i++)
		d[i] = (int8_t)(i % 2 ? 1 : -1);
	c = quant_weight_coding(d, 16, 8);
	cr_assert_eq(c.kind, WCODE_DENSE);
	cr_assert_eq(c.bytes, 16);
	/* half zeros, no long runs, 8 bits: bitmap 1 + 4 beats dense 8 and
	 * run-length 4 entries x 12 bits = 6 */
	int8_t h[8] = {1, 0, 2, 0, 3, 0, 4, 0};
	c = quant_weight_coding(h, 8, 8);
	cr_assert_eq(c.kind, WCODE_BITMAP);
	cr_assert_eq(c.bytes, 5);
	/* binary with a zero cannot be dense */
	int8_t bz[8] = {1, -1, 1, 0, 1, -1, 1, -1};
	c = quant_weight_coding(bz, 8, 1);
	cr_assert_neq(c.kind, WCODE_DENSE);
}

/* input [N,1,4,4] -> Conv 1->2 3x3 pad 1 -> Relu -> Flatten -> Gemm 32->3 */
static struct graph *tiny_model(void)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t in_dims[4] = {-1, 1, 4, 4};
	mb_input(&b, "x", in_dims, 4);
	float wc[18], bc[2] = {0.1f, -0.2f}, wg[96], bg[3] = {0.01f, 0.02f, 0.03f};
	for (int i = 0; i < 18; i++)
		wc[i] = (i % 2 ? 1.0f : -1.0f) * (0.5f + 0.02f * (float)i);
	/* distinct magnitudes, the smallest 48 first: pruning half leaves [48, 96) */
	for (int i = 0; i < 96; i++)
		wg[i] = (i % 3 ? 1.0f : -1.0f) * (0.1f + 0.01f * (float)i);
	int64_t dwc[4] = {2, 1, 3, 3}, dbc[1] = {2}, dwg[2] = {3, 32}, dbg[1] = {3};
	mb_init_f32(&b, "wc", dwc, 4, wc);
	mb_init_f32(&b, "bc", dbc, 1, bc);
	mb_init_f32(&b, "wg", dwg, 2, wg);
	mb_init_f32(&b, "bg", dbg, 1, bg);
	const char *ci[] = {"x", "wc", "bc", NULL};
	Onnx__NodeProto *c = mb_node(&b, "Conv", "conv", ci, "c");
	int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
	mb_attr_ints(&b, c, "kernel_shape", k, 2);
	mb_attr_ints(&b, c, "pads", pads, 4);
	const char *ri[] = {"c", NULL};
	mb_node(&b, "Relu", "relu", ri, "r");
	const char *fi[] = {"r", NULL};
	mb_node(&b, "Flatten", "flat", fi, "f");
	const char *gi[] = {"f", "wg", "bg", NULL};
	Onnx__NodeProto *gm = mb_node(&b, "Gemm", "fc", gi, "y");
	mb_attr_int(&b, gm, "transB", 1);
	mb_output(&b, "y");
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, n, NULL, &g), PRESSO_OK, "%s", status_msg());
	mb_free(&b);
	return g;
}

Test(transform, size_bytes_by_hand)
{
	struct graph *g = tiny_model();
	struct policy *p = identity_policy(g);
	p->layers[0].bits = 4;
	p->layers[1].prune = 0.5;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	/* FP32 after pruning: conv 18 + 2 floats; the Gemm's 96 weights coded at 32
	 * bits: bitmap 12 + 48 x 4 = 204 beats dense 384; biases 3 floats */
	cr_assert_eq(tr.before.size_bytes, 4 * (18 + 2 + 96 + 3));
	cr_assert_eq(tr.after_prune.size_bytes, 4 * 20 + 204 + 4 * 3);
	cr_assert_eq(tr.after_prune.params, 18 + 2 + 48 + 3);
	struct dataset ds;
	struct calib *cal = calibrate_random(tr.g, 8, 4, 4, 3, &ds);
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *qm;
	cr_assert_eq(qmodel_build(tr.g, tr.pol, cal, &qc, &qm), PRESSO_OK, "%s", status_msg());
	struct qmodel_size z;
	qmodel_size(qm, &z);
	/* conv: 18 weights x 4 bits = 9 bytes + 2 binary16 scales + its biases;
	 * fc: 8 bits, 48 non-zeros: bitmap 96/8 = 12 + 48 = 60 (dense 96, run-length
	 * 3 fillers + 48 = 51 entries x 12 bits = 77) + 3 scales + its biases;
	 * activations: the input and the conv/relu/flatten group, 5 bytes each */
	struct qlayer_view v0, v;
	qmodel_layer_view(qm, 0, &v0);
	qmodel_layer_view(qm, 1, &v);
	int64_t biases = fx_bias_bytes(v0.bias, 2) + fx_bias_bytes(v.bias, 3);
	cr_assert_eq(z.size_bytes, 9 + 2 * 2 + 60 + 3 * 2 + biases + 10, "size_bytes %lld",
		     (long long)z.size_bytes);
	cr_assert_eq(z.weight_bytes, 9 + 60);
	cr_assert_eq(v.coding.kind, WCODE_BITMAP);
	cr_assert_eq(v.coding.nnz, 48);
	qmodel_free(qm);
	calib_free(cal);
	transform_result_free(&tr);
	policy_free(p);
	free_images(&ds);
	graph_free(g);
}

Test(transform, pruned_and_factorised_models_round_trip_through_presso_files)
{
	struct graph *g = load("models/lenet.onnx");
	struct policy *p = identity_policy(g);
	p->layers[layer_named(g, "/conv2/Conv", NULL)].rank = 0.5;
	p->layers[layer_named(g, "/fc1/Gemm", NULL)].prune = 0.6;
	p->layers[layer_named(g, "/fc1/Gemm", NULL)].bits = 3;
	p->layers[layer_named(g, "/fc2/Gemm", NULL)].prune = 0.25;
	p->layers[layer_named(g, "/fc2/Gemm", NULL)].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct dataset ds;
	struct calib *cal = calibrate_random(tr.g, 16, 28, 28, 10, &ds);
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct qmodel *qm, *back;
	cr_assert_eq(qmodel_build(tr.g, tr.pol, cal, &qc, &qm), PRESSO_OK, "%s", status_msg());
	char *dir = fx_tmpdir();
	const char *path = fx_join(dir, "m.presso");
	int64_t file_bytes;
	cr_assert_eq(presso_file_write(qm, path, &file_bytes), PRESSO_OK, "%s", status_msg());
	struct graph *g2;
	cr_assert_eq(presso_file_load(path, qc.isa, &g2, &back), PRESSO_OK, "%s", status_msg());
	struct qmodel_size z1, z2;
	qmodel_size(qm, &z1);
	qmodel_size(back, &z2);
	cr_assert_eq(z1.size_bytes, z2.size_bytes);
	cr_assert_gt(file_bytes, z1.size_bytes);
	struct qengine *e1, *e2;
	cr_assert_eq(qengine_create(qm, 16, &e1), PRESSO_OK);
	cr_assert_eq(qengine_create(back, 16, &e2), PRESSO_OK);
	memcpy(qengine_input(e1, 0), ds.f32, sizeof(float) * 16 * 28 * 28);
	memcpy(qengine_input(e2, 0), ds.f32, sizeof(float) * 16 * 28 * 28);
	cr_assert_eq(qengine_run(e1, 16), PRESSO_OK);
	cr_assert_eq(qengine_run(e2, 16), PRESSO_OK);
	struct shape os;
	const float *y1 = qengine_output(e1, 0, &os), *y2 = qengine_output(e2, 0, NULL);
	cr_assert(memcmp(y1, y2, sizeof(float) * (size_t)shape_numel(&os)) == 0,
		  "the loaded model computes exactly what was written");
	qengine_free(e1);
	qengine_free(e2);
	qmodel_free(back);
	graph_free(g2);
	qmodel_free(qm);
	unlink(path);
	rmdir(dir);
	free(dir);
	calib_free(cal);
	free_images(&ds);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
}

/* --- structured pruning through the element-wise ops ------------------------ */

static struct graph *load_mb_graph(struct mb *b)
{
	size_t n;
	uint8_t *bytes = mb_pack(b, &n);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, n, NULL, &g), PRESSO_OK, "%s", status_msg());
	return g;
}

/* conv1 (6 channels, two of them all zero) -> PRelu with a per-channel slope
 * -> HardSwish -> Mul by a per-channel constant -> Div by a scalar -> conv2:
 * pruning conv1's zero channels shrinks the slope and the constant with them,
 * and the outputs stay what they were. */
Test(transform, structured_pruning_follows_element_wise_ops)
{
	float w1[6 * 2 * 9], b1[6], slope[6], scale[6], w2[3 * 6 * 9];
	for (int i = 0; i < 6 * 18; i++)
		w1[i] = frand();
	for (int i = 0; i < 6; i++) {
		b1[i] = 0.1f * frand();
		slope[i] = 0.2f * frand();
		scale[i] = 1.0f + frand();
	}
	for (int i = 0; i < 3 * 54; i++)
		w2[i] = frand();
	const int dead[2] = {1, 4};
	for (int d = 0; d < 2; d++) {
		for (int j = 0; j < 18; j++)
			w1[dead[d] * 18 + j] = 0.0f;
		b1[dead[d]] = 0.0f;
	}
	struct mb b;
	mb_init(&b, 14);
	mb_input(&b, "x", (int64_t[]){-1, 2, 5, 5}, 4);
	mb_init_f32(&b, "w1", (int64_t[]){6, 2, 3, 3}, 4, w1);
	mb_init_f32(&b, "b1", (int64_t[]){6}, 1, b1);
	mb_init_f32(&b, "slope", (int64_t[]){6, 1, 1}, 3, slope);
	mb_init_f32(&b, "scale", (int64_t[]){1, 6, 1, 1}, 4, scale);
	mb_init_f32(&b, "two", NULL, 0, (float[]){2.0f});
	mb_init_f32(&b, "w2", (int64_t[]){3, 6, 3, 3}, 4, w2);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv1", (const char *[]){"x", "w1", "b1", NULL}, "c1");
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(&b, "PRelu", "prelu", (const char *[]){"c1", "slope", NULL}, "a1");
	mb_node(&b, "HardSwish", "hswish", (const char *[]){"a1", NULL}, "a2");
	mb_node(&b, "Mul", "scale", (const char *[]){"scale", "a2", NULL}, "a3");
	mb_node(&b, "Div", "halve", (const char *[]){"a3", "two", NULL}, "a4");
	mb_node(&b, "Conv", "conv2", (const char *[]){"a4", "w2", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load_mb_graph(&b);
	struct policy *p = identity_policy(g);
	int li = layer_named(g, "conv1", NULL);
	p->layers[li].prune = 2.0 / 6.0;
	p->layers[li].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct layer a, c;
	layer_named(tr.g, "conv1", &a);
	layer_named(tr.g, "conv2", &c);
	cr_assert_eq(a.c_out, 4);
	cr_assert_eq(c.c_in, 4);
	int sv = graph_find_value(tr.g, "slope"), cv = graph_find_value(tr.g, "scale");
	cr_assert_eq(tr.g->values[sv].shape.dims[0], 4, "the slope shrinks with the channels");
	cr_assert_eq(tr.g->values[cv].shape.dims[1], 4, "and so does the per-channel factor");
	cr_assert_eq(tr.g->values[sv].data[1], slope[2], "channel 1 is the old channel 2");
	float *x = random_inputs(g, 3);
	int64_t n1, n2;
	float *y1 = run_fp32(g, x, 3, &n1), *y2 = run_fp32(tr.g, x, 3, &n2);
	cr_assert_eq(n1, n2);
	cr_assert_leq(max_abs_diff(y1, y2, n1), 1e-5, "outputs moved by %g", max_abs_diff(y1, y2, n1));
	free(x);
	free(y1);
	free(y2);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
	mb_free(&b);
}

/* A squeeze-excite block: the channels of conv0 reach a Mul by the gate that
 * is computed from them; structured pruning stops there, naming the Mul. A
 * per-channel constant that is not one value per channel stops it too. */
Test(transform, structured_pruning_stops_at_a_squeeze_excite_gate)
{
	float w0[8 * 2 * 9], w1[4 * 8], w2[8 * 4], w3[3 * 8];
	for (size_t i = 0; i < sizeof w0 / 4; i++) w0[i] = frand();
	for (size_t i = 0; i < sizeof w1 / 4; i++) w1[i] = frand();
	for (size_t i = 0; i < sizeof w2 / 4; i++) w2[i] = frand();
	for (size_t i = 0; i < sizeof w3 / 4; i++) w3[i] = frand();
	struct mb b;
	mb_init(&b, 14);
	mb_input(&b, "x", (int64_t[]){-1, 2, 5, 5}, 4);
	mb_init_f32(&b, "w0", (int64_t[]){8, 2, 3, 3}, 4, w0);
	mb_init_f32(&b, "w1", (int64_t[]){4, 8, 1, 1}, 4, w1);
	mb_init_f32(&b, "w2", (int64_t[]){8, 4, 1, 1}, 4, w2);
	mb_init_f32(&b, "w3", (int64_t[]){3, 8, 1, 1}, 4, w3);
	mb_node(&b, "Conv", "conv0", (const char *[]){"x", "w0", NULL}, "c");
	mb_node(&b, "GlobalAveragePool", "squeeze", (const char *[]){"c", NULL}, "s0");
	mb_node(&b, "Conv", "reduce", (const char *[]){"s0", "w1", NULL}, "s1");
	mb_node(&b, "Relu", "relu", (const char *[]){"s1", NULL}, "s2");
	mb_node(&b, "Conv", "expand", (const char *[]){"s2", "w2", NULL}, "s3");
	mb_node(&b, "HardSigmoid", "gate", (const char *[]){"s3", NULL}, "s");
	mb_node(&b, "Mul", "excite", (const char *[]){"c", "s", NULL}, "e");
	mb_node(&b, "Conv", "project", (const char *[]){"e", "w3", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load_mb_graph(&b);
	struct policy *p = identity_policy(g);
	const char *layers[] = {"conv0", "expand"};
	for (int t = 0; t < 2; t++) {
		int li = layer_named(g, layers[t], NULL);
		p->layers[li].prune = 0.5;
		p->layers[li].prune_kind = PRUNE_STRUCTURED;
		struct transform_result tr;
		cr_assert_eq(transform_apply(g, p, &tr), PRESSO_E_CONFIG, "%s", status_msg());
		cr_assert(strstr(status_msg(), layers[t]), "%s", status_msg());
		cr_assert(strstr(status_msg(), "node 'excite' (Mul)"), "%s", status_msg());
		cr_assert(strstr(status_msg(), "squeeze-excite"), "%s", status_msg());
		cr_assert_null(tr.g);
		p->layers[li].prune = 0;
	}
	/* the squeeze side alone can be pruned: reduce's channels end in expand */
	int li = layer_named(g, "reduce", NULL);
	p->layers[li].prune = 0.5;
	p->layers[li].prune_kind = PRUNE_STRUCTURED;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct layer e;
	layer_named(tr.g, "expand", &e);
	cr_assert_eq(e.c_in, 2);
	transform_result_free(&tr);
	policy_free(p);
	graph_free(g);
	mb_free(&b);
}

/* --- the canonical form --------------------------------------------------------- */

/* transform_canonical of p (a copy; free it). */
static struct policy *canonical(const struct graph *g, const struct policy *p)
{
	struct policy *c;
	cr_assert_eq(policy_copy(p, &c), PRESSO_OK);
	cr_assert_eq(transform_canonical(g, c), PRESSO_OK, "%s", status_msg());
	return c;
}

static bool same_policy(const struct policy *a, const struct policy *b)
{
	if (a->n_layers != b->n_layers)
		return false;
	for (int i = 0; i < a->n_layers; i++) {
		const struct layer_policy *x = &a->layers[i], *y = &b->layers[i];
		if (x->bits != y->bits || x->act_bits != y->act_bits ||
		    x->bias_correction != y->bias_correction || x->prune != y->prune ||
		    x->prune_kind != y->prune_kind || x->rank != y->rank)
			return false;
	}
	return true;
}

/* Parameters of the model p makes (transform_apply must accept it). */
static int64_t params_of(const struct graph *g, const struct policy *p)
{
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	int64_t n = tr.after_lowrank.params;
	transform_result_free(&tr);
	return n;
}

Test(transform, canonical_form_merges_fields_that_change_nothing)
{
	struct graph *g = load("models/lenet.onnx");
	int conv1 = layer_named(g, "/conv1/Conv", NULL); /* 6 x 25 */
	int conv2 = layer_named(g, "/conv2/Conv", NULL); /* 16 x 150 */
	int fc1 = layer_named(g, "/fc1/Gemm", NULL);     /* 120 x 400 */
	int fc2 = layer_named(g, "/fc2/Gemm", NULL);     /* 84 x 120 */
	struct policy *id = identity_policy(g), *v = identity_policy(g);
	/* prune_kind without pruning; the full rank given as an integer; a rank
	 * the transform leaves at full (5 x (6 + 25) >= 6 x 25) */
	v->layers[conv1].prune_kind = PRUNE_STRUCTURED;
	v->layers[conv2].rank = 16;
	v->layers[conv1].rank = 0.9;
	struct policy *a = canonical(g, id), *b = canonical(g, v);
	cr_assert(same_policy(a, id), "the identity is canonical");
	cr_assert(same_policy(a, b), "the variants are the identity");
	cr_assert_eq(params_of(g, v), params_of(g, id), "and make the same model");
	policy_free(b);
	/* fractions that give the same integer rank: 0.1 and 0.102 of 120 are 12 */
	v->layers[fc1].rank = 0.1;
	struct policy *w = identity_policy(g);
	w->layers[fc1].rank = 0.102;
	w->layers[conv2].rank = 1.0;
	b = canonical(g, v);
	struct policy *c = canonical(g, w);
	cr_assert(same_policy(b, c));
	cr_assert_eq(b->layers[fc1].rank, 12, "the canonical rank is the integer: %g",
		     b->layers[fc1].rank);
	cr_assert_eq(params_of(g, v), params_of(g, w));
	cr_assert_eq(params_of(g, b), params_of(g, v), "the canonical policy makes that model");
	policy_free(b);
	policy_free(c);
	/* a rank of 1 is kept as a fraction that gives 1 */
	w->layers[fc1].rank = 0.001;
	c = canonical(g, w);
	cr_assert_eq(c->layers[fc1].rank, 1.0 / 120);
	cr_assert_eq(params_of(g, c), params_of(g, w));
	policy_free(c);
	/* the rank counts against the layer as structured pruning leaves it: half
	 * of fc2's 84 outputs go, so half of full rank is 21 */
	policy_free(v);
	v = identity_policy(g);
	v->layers[fc2].prune = 0.5;
	v->layers[fc2].prune_kind = PRUNE_STRUCTURED;
	v->layers[fc2].rank = 0.5;
	b = canonical(g, v);
	cr_assert_eq(b->layers[fc2].rank, 21, "%g", b->layers[fc2].rank);
	cr_assert_eq(params_of(g, b), params_of(g, v));
	policy_free(b);
	/* what makes a policy fail is kept: 50 is above the pruned full rank 42 */
	v->layers[fc2].rank = 50;
	b = canonical(g, v);
	cr_assert_eq(b->layers[fc2].rank, 50);
	policy_free(b);
	/* bits and bias correction change the quantized weights: kept */
	v->layers[fc2].rank = 1.0;
	v->layers[conv2].bits = 3;
	v->layers[conv2].bias_correction = true;
	b = canonical(g, v);
	cr_assert(same_policy(b, v), "a canonical policy is its own canonical form");
	policy_free(b);
	policy_free(a);
	policy_free(w);
	policy_free(v);
	policy_free(id);
	graph_free(g);
}

Test(transform, canonical_act_bits_of_layers_reading_one_tensor)
{
	/* ResNet's layers.2 conv1 and its downsampling conv read the same tensor,
	 * which is quantized at the larger of their act_bits */
	struct graph *g = load("models/resnet.onnx");
	int c1 = layer_named(g, "/layers/layers.2/conv1/Conv", NULL);
	int down = layer_named(g, "/layers/layers.2/down/down.0/Conv", NULL);
	int c2 = layer_named(g, "/layers/layers.2/conv2/Conv", NULL);
	struct policy *v = identity_policy(g);
	v->layers[c1].act_bits = 4;
	v->layers[c2].act_bits = 4; /* the only reader of its input */
	struct policy *b = canonical(g, v);
	cr_assert_eq(b->layers[c1].act_bits, 8, "the tensor is read at 8 bits by the down conv");
	cr_assert_eq(b->layers[down].act_bits, 8);
	cr_assert_eq(b->layers[c2].act_bits, 4);
	policy_free(b);
	/* a factorised layer's own act_bits also sets its middle tensor's: kept */
	v->layers[c1].rank = 0.25;
	b = canonical(g, v);
	cr_assert_eq(b->layers[c1].act_bits, 4);
	cr_assert_eq(b->layers[c1].rank, 8, "a quarter of full rank 32: %g", b->layers[c1].rank);
	policy_free(b);
	policy_free(v);
	graph_free(g);
}
