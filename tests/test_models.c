/* test_models.c - the shipped reference models against their cards: presso's FP32
 * engine reproduces PyTorch's logits on the card's test images and PyTorch's
 * FP32 test accuracy on all 10,000 Fashion-MNIST test images (the opset-17
 * mobilenetv3 and vit are checked on their logits only, to keep the suite short;
 * bench/RESULTS.md records their accuracy from `presso eval`). The fully
 * connected mlp has 3 layers and the row lstm 2 (its LSTM's input projection
 * and the classifier), so they are outside MODELS (whose models have at
 * least 5) and have their own two tests each. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "model/engine.h"
#include "evaluators/evaluate.h"
#include "model/graph.h"
#include "tests/fixtures.h"

/* The bound on presso vs PyTorch logits (float32, different summation order). */
#define LOGIT_TOL 1e-4
/* The bound on presso vs PyTorch test accuracy, in points. */
#define ACCURACY_TOL_POINTS 0.05
/* Sanitizer builds check a prefix of the test set; its accuracy differs from the
 * whole set's by sampling alone (500 images: a few points at most). */
#define SANITIZED_IMAGES 500
#define SANITIZED_TOL_POINTS 4.0

static const char *const MODELS[] = {"lenet", "mobilenetv2", "resnet", "resnet_bn",
				     "mobilenetv3", "vit"};

static cJSON *read_card(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, "models/%s.json", name);
	char *text = fx_read(fx_src(rel), NULL);
	cr_assert_not_null(text, "card %s missing", rel);
	cJSON *card = cJSON_Parse(text);
	free(text);
	cr_assert_not_null(card, "card %s is not JSON", rel);
	return card;
}

static void card_norm(const cJSON *card, struct normalize *norm)
{
	const cJSON *nm = cJSON_GetObjectItem(card, "normalisation");
	cr_assert_not_null(nm);
	norm->scale = (float)cJSON_GetObjectItem(nm, "scale")->valuedouble;
	norm->n_channels = 1;
	norm->mean[0] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(nm, "mean"), 0)->valuedouble;
	norm->std[0] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(nm, "std"), 0)->valuedouble;
}

static struct graph *load_model(const cJSON *card)
{
	char rel[256];
	snprintf(rel, sizeof rel, "models/%s", cJSON_GetObjectItem(card, "file")->valuestring);
	struct graph *g;
	cr_assert_eq(graph_load_onnx(fx_src(rel), &g), PRESSO_OK, "%s", status_msg());
	return g;
}

static struct dataset *test_set(void)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed (scripts/setup.sh installs it)");
	struct dataset *ds;
	cr_assert_eq(dataset_load_idx(FX_FMNIST_TEST_IMAGES,
				      FX_FMNIST_TEST_LABELS, &ds),
		     PRESSO_OK, "%s", status_msg());
	return ds;
}

static void check_reference_outputs(const char *name)
{
	cJSON *card = read_card(name);
	struct dataset *ds = test_set();
	struct normalize norm;
	card_norm(card, &norm);
	struct graph *g = load_model(card);
	const cJSON *refs = cJSON_GetObjectItem(card, "reference_outputs");
	int n = cJSON_GetArraySize(refs);
	cr_assert_geq(n, 1);
	struct engine *e;
	cr_assert_eq(engine_create(g, n, &e), PRESSO_OK, "%s", status_msg());
	int64_t idx[16];
	cr_assert_leq(n, 16);
	for (int i = 0; i < n; i++)
		idx[i] = (int64_t)cJSON_GetObjectItem(cJSON_GetArrayItem(refs, i), "test_index")->valuedouble;
	dataset_get_batch(ds, &norm, idx, n, false, engine_input(e, 0), NULL);
	cr_assert_eq(engine_run(e, n), PRESSO_OK, "%s", status_msg());
	struct shape os;
	const float *y = engine_output(e, 0, &os);
	cr_assert_eq(os.dims[0], n);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		const cJSON *logits = cJSON_GetObjectItem(cJSON_GetArrayItem(refs, i), "logits");
		cr_assert_eq(cJSON_GetArraySize(logits), os.dims[1]);
		for (int c = 0; c < os.dims[1]; c++) {
			double d = fabs(y[i * os.dims[1] + c] - cJSON_GetArrayItem(logits, c)->valuedouble);
			if (d > worst)
				worst = d;
		}
	}
	cr_log_info("%s: max |presso - PyTorch| logit difference %.3g", name, worst);
	cr_assert_leq(worst, LOGIT_TOL, "%s: logits differ from PyTorch by %.3g", name, worst);
	engine_free(e);
	graph_free(g);
	dataset_free(ds);
	cJSON_Delete(card);
}

static void check_accuracy(const char *name)
{
	cJSON *card = read_card(name);
	struct dataset *ds = test_set();
	struct normalize norm;
	card_norm(card, &norm);
	struct graph *g = load_model(card);
	/* under AddressSanitizer only the first SANITIZED_IMAGES images, against a
	 * loose bound: the exact check on all 10,000 runs in the plain build */
	bool full = !fx_sanitized();
	struct split all;
	cr_assert_eq(split_range(ds->n, full ? 0 : SANITIZED_IMAGES, &all), PRESSO_OK);
	struct eval_result r;
	struct eval_model em = {g, NULL};
	cr_assert_eq(eval_accuracy(&em, ds, &norm, &all, 100, 2, &r), PRESSO_OK, "%s", status_msg());
	double want = cJSON_GetObjectItem(card, "fp32_test_accuracy")->valuedouble;
	cr_log_info("%s: presso %.2f%% on %lld images, PyTorch %.2f%% on 10000", name,
		    r.accuracy_pct, (long long)r.n_images, want);
	cr_assert_eq(r.n_images, full ? 10000 : SANITIZED_IMAGES);
	cr_assert_leq(fabs(r.accuracy_pct - want), full ? ACCURACY_TOL_POINTS : SANITIZED_TOL_POINTS,
		      "%s: presso %.4f%% vs PyTorch %.4f%%", name, r.accuracy_pct, want);
	split_free(&all);
	graph_free(g);
	dataset_free(ds);
	cJSON_Delete(card);
}

Test(models, lenet_reference_outputs) { check_reference_outputs("lenet"); }
Test(models, mobilenetv2_reference_outputs) { check_reference_outputs("mobilenetv2"); }
Test(models, resnet_reference_outputs) { check_reference_outputs("resnet"); }
Test(models, resnet_bn_reference_outputs) { check_reference_outputs("resnet_bn"); }
Test(models, mobilenetv3_reference_outputs) { check_reference_outputs("mobilenetv3"); }
Test(models, vit_reference_outputs) { check_reference_outputs("vit"); }
Test(models, mlp_reference_outputs) { check_reference_outputs("mlp"); }
Test(models, lstm_reference_outputs) { check_reference_outputs("lstm"); }

Test(models, lenet_test_accuracy, .timeout = 300) { check_accuracy("lenet"); }
Test(models, mobilenetv2_test_accuracy, .timeout = 300) { check_accuracy("mobilenetv2"); }
Test(models, resnet_test_accuracy, .timeout = 300) { check_accuracy("resnet"); }
Test(models, resnet_bn_test_accuracy, .timeout = 300) { check_accuracy("resnet_bn"); }
Test(models, mlp_test_accuracy, .timeout = 300) { check_accuracy("mlp"); }
Test(models, lstm_test_accuracy, .timeout = 300) { check_accuracy("lstm"); }

Test(models, resnet_bn_is_folded_at_import)
{
	cJSON *card = read_card("resnet_bn");
	struct graph *g = load_model(card);
	cr_assert_gt(g->n_folded_bn, 0, "the unfolded export must exercise BatchNorm folding");
	for (int i = 0; i < g->n_nodes; i++)
		cr_assert_neq(g->nodes[i].op, OP_BATCHNORM, "node '%s' kept as BatchNormalization",
			      g->nodes[i].name);
	cJSON *card2 = read_card("resnet");
	struct graph *g2 = load_model(card2);
	struct layer *l1, *l2;
	int n1, n2;
	cr_assert_eq(graph_layers(g, &l1, &n1), PRESSO_OK);
	cr_assert_eq(graph_layers(g2, &l2, &n2), PRESSO_OK);
	cr_assert_eq(n1, n2, "same compressible layers with and without BatchNorm in the file");
	for (int i = 0; i < n1; i++)
		cr_assert_eq(l1[i].params, l2[i].params);
	free(l1);
	free(l2);
	graph_free(g);
	graph_free(g2);
	cJSON_Delete(card);
	cJSON_Delete(card2);
}

Test(models, every_model_lists_its_layers)
{
	for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++) {
		cJSON *card = read_card(MODELS[m]);
		struct graph *g = load_model(card);
		struct layer *ls;
		int nl;
		cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
		cr_assert_geq(nl, 5, "%s has %d layers", MODELS[m], nl);
		int64_t params, macs;
		graph_totals(g, &params, &macs);
		int64_t layer_params = 0;
		for (int i = 0; i < nl; i++)
			layer_params += ls[i].params;
		int64_t card_params = (int64_t)cJSON_GetObjectItem(card, "params")->valuedouble;
		if (strcmp(MODELS[m], "vit") == 0) {
			/* the ViT keeps weights outside its layers (LayerNorm scales and
			 * biases, the position embedding), and presso also counts the
			 * scalars of its Constant nodes (GELU's 1/sqrt2, 1, 0.5 and the
			 * attention scale: 4 per block) that the card leaves out */
			cr_assert_lt(layer_params, params, "vit: LayerNorm weights are outside layers");
			cr_assert_leq(params - card_params, 16, "vit: %lld params, card %lld",
				      (long long)params, (long long)card_params);
		} else {
			cr_assert_eq(layer_params, params, "%s: all weights belong to layers", MODELS[m]);
		}
		/* resnet_bn's card counts the BatchNorm statistics it carries in the file */
		if (strcmp(MODELS[m], "resnet_bn") != 0 && strcmp(MODELS[m], "vit") != 0)
			cr_assert_eq(params, card_params, "%s: parameter count differs from the card",
				     MODELS[m]);
		free(ls);
		graph_free(g);
		cJSON_Delete(card);
	}
}

/* The row LSTM's recurrence (28 steps of H' R^T: 256 x 64 each) is not a
 * layer, but it is counted: in the graph's MACs and so in FP32 BOPs. */
Test(models, lstm_recurrence_counts_in_the_macs)
{
	cJSON *card = read_card("lstm");
	struct graph *g = load_model(card);
	cr_assert_eq(graph_fp32_macs(g), 28 * 256 * 64);
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	cr_assert_eq(params, cJSON_GetObjectItem(card, "params")->valueint);
	cr_assert_eq(macs, 28 * 28 * 256 /* the projection */ + 64 * 10 + 28 * 256 * 64);
	graph_free(g);
	cJSON_Delete(card);
}
