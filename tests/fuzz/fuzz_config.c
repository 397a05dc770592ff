/* fuzz_config.c - libFuzzer harness for the study config and its search space.
 *
 * Each input is the text of a study config. config_parse() reads it (paths are
 * only resolved against a folder, never opened); a config that parses has its
 * search sections read by space_parse() for the layers of models/lenet.onnx
 * (loaded once), narrowed to that graph's structure, and then checked:
 *   - a random genome of the space and the two seed genomes decode to
 *     policies that encode back to the same genome (space.h: a policy of the
 *     space is in the space) and that policy_check_layer() accepts;
 *   - such a policy survives policy_to_json() and policy_parse() unchanged.
 * Seeds: tests/fuzz/corpus/config (the shipped configs and one with every
 * search field); dictionary: config.dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "config/config.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "search/space.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct graph *lenet;
static struct layer *layers;
static int n_layers;

static void init(void)
{
	if (graph_load_onnx(fuzz_src("models/lenet.onnx"), &lenet) != PRESSO_OK ||
	    graph_layers(lenet, &layers, &n_layers) != PRESSO_OK) {
		fprintf(stderr, "fuzz_config: %s\n", status_msg());
		abort();
	}
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

/* genome -> policy -> genome, and policy -> JSON -> policy */
static void check_genome(const struct space *sp, const uint8_t *genome)
{
	for (int i = 0; i < sp->n_genes; i++)
		FUZZ_CHECK(genome[i] < sp->ls[i / KNOB_COUNT].d[i % KNOB_COUNT].n);
	struct layer_policy id = policy_default_layer();
	struct policy *p = NULL, *back = NULL;
	FUZZ_CHECK(policy_uniform(&id, sp->n_layers, &p) == PRESSO_OK);
	space_genome_to_policy(sp, genome, p);
	uint8_t *again = malloc((size_t)sp->n_genes);
	FUZZ_CHECK(again);
	FUZZ_CHECK(space_genome_from_policy(sp, p, again));
	FUZZ_CHECK(memcmp(genome, again, (size_t)sp->n_genes) == 0);
	free(again);
	for (int i = 0; i < sp->n_layers; i++)
		if (policy_check_layer(&layers[i], &p->layers[i]) != PRESSO_OK)
			status_clear(); /* a rank or structured prune the layer cannot take:
					   the trial fails with that message, by design */
	char *json = policy_to_json(p, layers);
	FUZZ_CHECK(json);
	if (policy_parse(json, "fuzz", layers, n_layers, &back) == PRESSO_OK) {
		FUZZ_CHECK(same_policy(p, back));
		policy_free(back);
	}
	free(json);
	policy_free(p);
}

static void check_space(struct space *sp)
{
	char buf[64];
	space_size_text(space_size(sp), buf, sizeof buf);
	uint8_t *genome = malloc((size_t)sp->n_genes);
	FUZZ_CHECK(genome);
	struct rng r;
	rng_seed(&r, sp->search.seed);
	space_genome_random(sp, &r, genome);
	check_genome(sp, genome);
	for (int which = 0; which < SPACE_N_SEEDS; which++)
		if (space_genome_seed(sp, which, genome) == PRESSO_OK)
			check_genome(sp, genome);
	free(genome);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!lenet)
		init();
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	struct config *cfg = NULL;
	if (config_parse(text, "/nonexistent", "fuzz", &cfg) != PRESSO_OK) {
		FUZZ_CHECK(cfg == NULL);
		fuzz_refused("config");
		free(text);
		return 0;
	}
	FUZZ_CHECK(cfg->name && cfg->model_path && cfg->json);
	FUZZ_CHECK(cfg->eval.batch >= 1 && cfg->eval.threads >= 1);
	struct space *sp = NULL;
	if (space_parse(cfg->json, layers, n_layers, &sp) != PRESSO_OK) {
		fuzz_refused("space");
	} else {
		if (space_fit_graph(sp, lenet, NULL) == PRESSO_OK)
			check_space(sp);
		else
			fuzz_refused("space for lenet");
		space_free(sp);
	}
	config_free(cfg);
	free(text);
	return 0;
}
