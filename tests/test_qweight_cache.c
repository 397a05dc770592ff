/* test_qweight_cache.c - the quantized-weight cache: a build served from the
 * cache is identical to one computed from scratch, and a pruned copy of the
 * graph reads it for exactly the layers it left alone. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "quant/calib.h"
#include "quant/qengine.h"
#include "tests/fixtures.h"
#include "transform/transform.h"

static struct calib *random_calib(const struct graph *g)
{
	struct dataset ds = {.n = 8, .c = 1, .h = 28, .w = 28, .n_classes = 10};
	ds.f32 = malloc(sizeof(float) * 8 * 28 * 28);
	ds.labels = calloc(8, sizeof(int32_t));
	for (int i = 0; i < 8 * 28 * 28; i++)
		ds.f32[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
	struct split sp;
	cr_assert_eq(split_range(8, 8, &sp), PRESSO_OK);
	struct calib *cal;
	cr_assert_eq(calib_run(g, &ds, NULL, &sp, 8, &cal), PRESSO_OK, "%s", status_msg());
	split_free(&sp);
	free(ds.f32);
	free(ds.labels);
	return cal;
}

static void same_layers(const struct qmodel *a, const struct qmodel *b)
{
	cr_assert_eq(qmodel_n_layers(a), qmodel_n_layers(b));
	for (int i = 0; i < qmodel_n_layers(a); i++) {
		struct qlayer_view x, y;
		qmodel_layer_view(a, i, &x);
		qmodel_layer_view(b, i, &y);
		cr_assert_eq(x.n_out * x.k, y.n_out * y.k);
		cr_assert(memcmp(x.w, y.w, (size_t)(x.n_out * x.k)) == 0, "layer %d weights", i);
		cr_assert(memcmp(x.w_scale, y.w_scale, sizeof(float) * (size_t)x.n_out) == 0,
			  "layer %d scales", i);
		cr_assert(memcmp(x.bias, y.bias, sizeof(int32_t) * (size_t)x.n_out) == 0,
			  "layer %d biases", i);
	}
}

Test(qweight_cache, cached_builds_equal_fresh_ones)
{
	struct graph *g;
	cr_assert_eq(graph_load_onnx(fx_src("models/lenet.onnx"), &g), PRESSO_OK);
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	free(ls);
	struct calib *cal = random_calib(g);
	struct qweight_cache *cache;
	cr_assert_eq(qweight_cache_new(g, &cache), PRESSO_OK);
	struct quant_config plain = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, REQUANT_FLOAT};
	struct quant_config cached = plain;
	cached.cache = cache;
	for (int bits = 1; bits <= 8; bits++) {
		struct layer_policy lp = policy_default_layer();
		lp.bits = bits;
		lp.bias_correction = bits < 4;
		struct policy *p;
		cr_assert_eq(policy_uniform(&lp, n, &p), PRESSO_OK);
		struct qmodel *fresh, *first, *second;
		cr_assert_eq(qmodel_build(g, p, cal, &plain, &fresh), PRESSO_OK);
		cr_assert_eq(qmodel_build(g, p, cal, &cached, &first), PRESSO_OK); /* fills */
		cr_assert_eq(qmodel_build(g, p, cal, &cached, &second), PRESSO_OK); /* reads */
		same_layers(fresh, first);
		same_layers(fresh, second);
		qmodel_free(fresh);
		qmodel_free(first);
		qmodel_free(second);
		policy_free(p);
	}
	/* a pruned copy of the graph reads the layers it left alone from the cache
	 * and quantizes its pruned layer afresh */
	struct layer_policy lp = policy_default_layer();
	struct policy *p;
	cr_assert_eq(policy_uniform(&lp, n, &p), PRESSO_OK);
	p->layers[1].prune = 0.5;
	struct transform_result tr;
	cr_assert_eq(transform_apply(g, p, &tr), PRESSO_OK, "%s", status_msg());
	struct calib *cal2 = random_calib(tr.g);
	struct qmodel *a, *b;
	cr_assert_eq(qmodel_build(tr.g, tr.pol, cal2, &plain, &a), PRESSO_OK);
	int64_t hits = qweight_cache_hits(cache);
	cr_assert_eq(qmodel_build(tr.g, tr.pol, cal2, &cached, &b), PRESSO_OK);
	cr_assert_eq(qweight_cache_hits(cache) - hits, n - 1, "every layer but the pruned one");
	same_layers(a, b);
	struct qlayer_view v;
	qmodel_layer_view(b, 1, &v);
	cr_assert_geq(v.n_out * v.k - v.coding.nnz, v.n_out * v.k / 2, "the pruned zeros are there");
	qmodel_free(a);
	qmodel_free(b);
	calib_free(cal2);
	transform_result_free(&tr);
	policy_free(p);
	qweight_cache_free(cache);
	calib_free(cal);
	graph_free(g);
}
