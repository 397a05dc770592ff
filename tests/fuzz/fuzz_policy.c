/* fuzz_policy.c - libFuzzer harness for the policy parser.
 *
 * Each input is the JSON text of a policy, resolved by policy_parse() for the
 * layers of models/lenet.onnx (loaded once) plus two made-up layers that reach
 * the shape checks LeNet cannot: a depthwise conv and a one-channel Gemm. A
 * policy that parses must pass policy_check_layer() on every layer, copy
 * exactly, and come back unchanged through policy_to_json() and policy_parse()
 * (what `presso export` writes, `presso eval --policy` reads).
 * Seeds: tests/fuzz/corpus/policy; dictionary: policy.dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "quant/policy.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct graph *lenet;
static struct layer *layers;
static int n_layers;

static void init(void)
{
	struct layer *ls = NULL;
	int n = 0;
	if (graph_load_onnx(fuzz_src("models/lenet.onnx"), &lenet) != PRESSO_OK ||
	    graph_layers(lenet, &ls, &n) != PRESSO_OK) {
		fprintf(stderr, "fuzz_policy: %s\n", status_msg());
		abort();
	}
	layers = calloc((size_t)n + 2, sizeof *layers);
	FUZZ_CHECK(layers);
	memcpy(layers, ls, sizeof *ls * (size_t)n);
	free(ls);
	layers[n] = (struct layer){.node = 0, .name = "dw", .op = OP_CONV, .c_out = 8, .c_in = 1,
				   .kh = 3, .kw = 3, .group = 8, .params = 80, .macs = 80 * 49};
	layers[n + 1] = (struct layer){.node = 0, .name = "one", .op = OP_GEMM, .c_out = 1,
				       .c_in = 4, .kh = 1, .kw = 1, .group = 1, .params = 5,
				       .macs = 4};
	n_layers = n + 2;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!lenet)
		init();
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	struct policy *p = NULL, *copy = NULL, *back = NULL;
	if (policy_parse(text, "fuzz", layers, n_layers, &p) != PRESSO_OK) {
		FUZZ_CHECK(p == NULL);
		fuzz_refused("policy");
		free(text);
		return 0;
	}
	FUZZ_CHECK(p->n_layers == n_layers);
	for (int i = 0; i < n_layers; i++) {
		const struct layer_policy *lp = &p->layers[i];
		FUZZ_CHECK(lp->bits >= 1 && lp->bits <= 8 && lp->act_bits >= 4 && lp->act_bits <= 8);
		FUZZ_CHECK(lp->prune >= 0 && lp->prune <= 0.95 && lp->rank > 0);
		FUZZ_CHECK(policy_check_layer(&layers[i], lp) == PRESSO_OK);
		int64_t r = policy_rank_of(&layers[i], lp->rank);
		FUZZ_CHECK(r >= 1 && r <= policy_full_rank(&layers[i]));
	}
	FUZZ_CHECK(policy_copy(p, &copy) == PRESSO_OK && same_policy(p, copy));
	char *json = policy_to_json(p, layers);
	FUZZ_CHECK(json);
	FUZZ_CHECK(policy_parse(json, "fuzz (written back)", layers, n_layers, &back) == PRESSO_OK);
	FUZZ_CHECK(same_policy(p, back));
	free(json);
	policy_free(back);
	policy_free(copy);
	policy_free(p);
	free(text);
	return 0;
}
