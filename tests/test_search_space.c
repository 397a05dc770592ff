/* test_search_space.c - search/space.c: the "space", "objectives",
 * "constraints" and "search" sections of a study config. Defaults, layer
 * overrides by name and glob, frozen layers, and every class of bad input,
 * each with the path of the bad field in its message; pruning and low-rank
 * domains, and their fitting to the model's structure. Also the genome: seeds,
 * policy round trips, the size of the space. The layers are made up here (the
 * space only reads their names), except for the shipped configs, which are
 * checked against their models.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "search/archive.h"
#include "search/space.h"
#include "tests/fixtures.h"

static struct layer layers[5] = {
	{.node = 0, .name = "/conv1/Conv"},
	{.node = 1, .name = "/conv2/Conv"},
	{.node = 2, .name = "/fc1/Gemm"},
	{.node = 3, .name = "/fc2/Gemm"},
	{.node = 4, .name = "/fc3/Gemm"},
};

/* Parses a config body (the sections only) for the five layers. */
static enum presso_status parse(const char *text, struct space **sp)
{
	cJSON *root = cJSON_Parse(text);
	cr_assert_not_null(root, "test config is not JSON: %s", text);
	status_clear();
	enum presso_status s = space_parse(root, layers, 5, sp);
	cJSON_Delete(root);
	return s;
}

/* The text must fail with status want and a message containing `needle`. */
static void fails(const char *text, enum presso_status want, const char *needle)
{
	struct space *sp = NULL;
	enum presso_status s = parse(text, &sp);
	cr_assert_eq(s, want, "%s: got status %s (%s)", text, status_str(s), status_msg());
	cr_assert_null(sp);
	cr_assert(strstr(status_msg(), needle), "%s: message '%s' lacks '%s'", text, status_msg(),
		  needle);
}

static struct space *ok(const char *text)
{
	struct space *sp = NULL;
	enum presso_status s = parse(text, &sp);
	cr_assert_eq(s, PRESSO_OK, "%s: %s", text, status_msg());
	return sp;
}

static const struct knob_domain *dom(const struct space *sp, int layer, enum knob k)
{
	return &sp->ls[layer].d[k];
}

static void assert_domain(const struct knob_domain *d, int n, const double *v)
{
	cr_assert_eq(d->n, n, "domain has %d values, expected %d", d->n, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(d->v[i], v[i], "value [%d] %g, expected %g", i, d->v[i], v[i]);
}

Test(space, defaults)
{
	struct space *sp = ok("{}");
	for (int l = 0; l < 5; l++) {
		assert_domain(dom(sp, l, KNOB_BITS), 6, (double[]){2, 3, 4, 5, 6, 8});
		assert_domain(dom(sp, l, KNOB_ACT_BITS), 1, (double[]){8});
		assert_domain(dom(sp, l, KNOB_BIAS_CORRECTION), 2, (double[]){0, 1});
		assert_domain(dom(sp, l, KNOB_PRUNE), 1, (double[]){0});
		assert_domain(dom(sp, l, KNOB_PRUNE_KIND), 1, (double[]){PRUNE_UNSTRUCTURED});
		assert_domain(dom(sp, l, KNOB_RANK), 1, (double[]){1});
		cr_assert_not(sp->ls[l].frozen);
	}
	cr_assert_eq(sp->n_free, 10, "bits and bias_correction of 5 layers");
	cr_assert_eq(sp->n_obj, 2);
	cr_assert_eq(sp->obj[0], OBJ_ACCURACY);
	cr_assert_eq(sp->obj[1], OBJ_SIZE);
	cr_assert(isnan(sp->con.max_size_bytes) && isnan(sp->con.max_latency_us) &&
		  isnan(sp->con.min_accuracy) && isnan(sp->con.max_accuracy_drop));
	cr_assert_eq(sp->search.strategy, STRATEGY_HYBRID);
	cr_assert_eq(sp->search.bandit, BANDIT_THOMPSON);
	cr_assert_eq(sp->search.seed, 1);
	cr_assert_eq(sp->search.population, 16);
	cr_assert_eq(sp->search.batch, 16);
	cr_assert_eq(sp->search.max_trials, 0);
	cr_assert_eq(sp->search.time_limit_s, 0);
	cr_assert_eq(sp->search.fidelity_images, 0, "single fidelity by default");
	cr_assert_eq(sp->search.rescore_images, 0);
	cr_assert_not(sp->needs_latency);
	cr_assert_float_eq(space_size(sp), pow(12, 5), 1e-6);
	space_free(sp);
}

Test(space, overrides_by_name_and_glob_in_file_order)
{
	struct space *sp = ok("{\"space\": {"
			      "  \"default\": {\"bits\": [4, 8], \"act_bits\": [8, 6], "
			      "                \"bias_correction\": false},"
			      "  \"layers\": {"
			      "    \"/fc*\": {\"bits\": [2, 4, 8]},"
			      "    \"/fc3/Gemm\": {\"bits\": 8, \"bias_correction\": [true, false]},"
			      "    \"/conv?/Conv\": {\"act_bits\": 8}"
			      "  }}}");
	assert_domain(dom(sp, 0, KNOB_BITS), 2, (double[]){4, 8});
	assert_domain(dom(sp, 0, KNOB_ACT_BITS), 1, (double[]){8});
	assert_domain(dom(sp, 1, KNOB_ACT_BITS), 1, (double[]){8});
	assert_domain(dom(sp, 2, KNOB_BITS), 3, (double[]){2, 4, 8});
	assert_domain(dom(sp, 2, KNOB_ACT_BITS), 2, (double[]){6, 8}); /* sorted */
	assert_domain(dom(sp, 2, KNOB_BIAS_CORRECTION), 1, (double[]){0});
	assert_domain(dom(sp, 4, KNOB_BITS), 1, (double[]){8});
	assert_domain(dom(sp, 4, KNOB_BIAS_CORRECTION), 2, (double[]){0, 1});
	/* free genes: conv bits (2); fc1, fc2 bits+act (4); fc3 act+bias (2) */
	cr_assert_eq(sp->n_free, 8);
	space_free(sp);
}

Test(space, frozen_layers)
{
	struct space *sp = ok("{\"space\": {\"frozen\": [\"/conv1/Conv\", \"/fc3/*\"]}}");
	for (int l = 0; l < 5; l++) {
		bool frozen = l == 0 || l == 4;
		cr_assert_eq(sp->ls[l].frozen, frozen, "layer %d", l);
		if (frozen) {
			assert_domain(dom(sp, l, KNOB_BITS), 1, (double[]){8});
			assert_domain(dom(sp, l, KNOB_ACT_BITS), 1, (double[]){8});
			assert_domain(dom(sp, l, KNOB_BIAS_CORRECTION), 1, (double[]){0});
		}
	}
	space_free(sp);
	sp = ok("{\"space\": {\"layers\": {\"/fc1/Gemm\": {\"bits\": [2, 3]}},"
		"\"frozen\": {\"/fc1/Gemm\": {\"bits\": 4, \"bias_correction\": true}}}}");
	cr_assert(sp->ls[2].frozen);
	assert_domain(dom(sp, 2, KNOB_BITS), 1, (double[]){4});
	assert_domain(dom(sp, 2, KNOB_BIAS_CORRECTION), 1, (double[]){1});
	assert_domain(dom(sp, 2, KNOB_ACT_BITS), 1, (double[]){8});
	space_free(sp);
}

Test(space, objectives_constraints_and_search)
{
	struct space *sp = ok(
		"{\"objectives\": {\"minimize\": [\"latency\", \"bops\"], \"maximize\": \"accuracy\"},"
		" \"constraints\": {\"max_size_kb\": 64, \"max_latency_ms\": 0.5, \"min_accuracy\": 80,"
		"                   \"max_accuracy_drop\": 1.5},"
		" \"search\": {\"strategy\": \"bandit\", \"bandit\": \"ucb\", \"seed\": 42,"
		"   \"max_trials\": 300, \"time_limit\": \"1.5h\", \"population\": 12, \"batch\": 6,"
		"   \"ucb_c\": 0.5, \"discount\": 0.9, \"crossover_rate\": 0.7, \"latency_runs\": 9}}");
	cr_assert_eq(sp->n_obj, 3);
	cr_assert_eq(sp->obj[0], OBJ_ACCURACY);
	cr_assert_eq(sp->obj[1], OBJ_LATENCY);
	cr_assert_eq(sp->obj[2], OBJ_BOPS);
	cr_assert_float_eq(sp->con.max_size_bytes, 65536, 1e-9);
	cr_assert_float_eq(sp->con.max_latency_us, 500, 1e-9);
	cr_assert_float_eq(sp->con.min_accuracy, 80, 1e-9);
	cr_assert_float_eq(sp->con.max_accuracy_drop, 1.5, 1e-9);
	cr_assert(sp->needs_latency);
	cr_assert_eq(sp->search.strategy, STRATEGY_BANDIT);
	cr_assert_eq(sp->search.bandit, BANDIT_UCB1);
	cr_assert_eq(sp->search.seed, 42);
	cr_assert_eq(sp->search.max_trials, 300);
	cr_assert_float_eq(sp->search.time_limit_s, 5400, 1e-9);
	cr_assert_eq(sp->search.population, 12);
	cr_assert_eq(sp->search.batch, 6);
	cr_assert_float_eq(sp->search.ucb_c, 0.5, 1e-12);
	cr_assert_float_eq(sp->search.discount, 0.9, 1e-12);
	cr_assert_float_eq(sp->search.crossover_rate, 0.7, 1e-12);
	cr_assert_eq(sp->search.latency_runs, 9);
	space_free(sp);
	sp = ok("{\"constraints\": {\"max_latency_us\": 300}}");
	cr_assert(sp->needs_latency, "a latency bound needs the latency table");
	space_free(sp);
}

Test(space, pruning_and_low_rank_domains)
{
	struct space *sp = ok("{\"space\": {\"default\": {\"prune\": [0], \"prune_kind\": "
			      "\"unstructured\", \"rank\": 1.0}}}");
	cr_assert_eq(sp->n_free, 10);
	space_free(sp);
	sp = ok("{\"space\": {\"default\": {\"bits\": 8, \"bias_correction\": false, "
		"\"prune\": [0, 0.25, 0.5], \"rank\": [0.5, 1]},"
		" \"layers\": {\"/fc1/Gemm\": {\"prune_kind\": [\"unstructured\", \"structured\"]}}}}");
	cr_assert_eq(sp->n_free, 5 * 2 + 1, "prune and rank free on 5 layers, the kind on one");
	space_free(sp);
	fails("{\"space\": {\"default\": {\"prune\": [0, 0.99]}}}", PRESSO_E_CONFIG,
	      "space.default.prune[1]");
	fails("{\"space\": {\"default\": {\"rank\": [0, 1]}}}", PRESSO_E_CONFIG,
	      "space.default.rank[0]");
	fails("{\"space\": {\"layers\": {\"/fc1/Gemm\": {\"prune_kind\": [\"diagonal\"]}}}}",
	      PRESSO_E_CONFIG, "space.layers./fc1/Gemm.prune_kind");
}

Test(space, bad_domains)
{
	fails("{\"space\": {\"default\": {\"bits\": [2, 4, 9]}}}", PRESSO_E_CONFIG,
	      "space.default.bits[2]: expected an integer in 1..8, got 9");
	fails("{\"space\": {\"default\": {\"bits\": [2, 2.5]}}}", PRESSO_E_CONFIG,
	      "space.default.bits[1]: expected an integer in 1..8, got 2.5");
	fails("{\"space\": {\"default\": {\"bits\": \"4\"}}}", PRESSO_E_CONFIG,
	      "space.default.bits: expected an integer in 1..8, got the string \"4\"");
	fails("{\"space\": {\"default\": {\"act_bits\": [3, 8]}}}", PRESSO_E_CONFIG,
	      "space.default.act_bits[0]: expected an integer in 4..8, got 3");
	fails("{\"space\": {\"default\": {\"bias_correction\": [0, 1]}}}", PRESSO_E_CONFIG,
	      "space.default.bias_correction[0]: expected true or false, got 0");
	fails("{\"space\": {\"default\": {\"bits\": [4, 8, 4]}}}", PRESSO_E_CONFIG,
	      "space.default.bits: the value at [2] is already at [0]");
	fails("{\"space\": {\"default\": {\"bits\": []}}}", PRESSO_E_CONFIG,
	      "space.default.bits: expected a value or an array of 1..16 values, got 0 values");
	fails("{\"space\": {\"default\": {\"bits\": null}}}", PRESSO_E_CONFIG,
	      "space.default.bits: expected an integer in 1..8, got null");
	fails("{\"space\": {\"default\": {\"prune\": [-0.1]}}}", PRESSO_E_CONFIG,
	      "space.default.prune[0]: expected a number in [0, 0.95]");
	fails("{\"space\": {\"default\": {\"rank\": 0}}}", PRESSO_E_CONFIG,
	      "space.default.rank: expected a number in (0, 1]");
	fails("{\"space\": {\"default\": {\"prune_kind\": \"diagonal\"}}}", PRESSO_E_CONFIG,
	      "space.default.prune_kind: expected \"unstructured\" or \"structured\"");
	fails("{\"space\": {\"default\": {\"bits\": 8, \"act_bits\": 8, \"bias_correction\": false}}}",
	      PRESSO_E_CONFIG, "nothing to search");
}

Test(space, bad_structure_and_unknown_keys)
{
	fails("{\"space\": []}", PRESSO_E_CONFIG, "space: expected an object, got an array");
	fails("{\"space\": {\"defaults\": {}}}", PRESSO_E_CONFIG,
	      "space: unknown key 'defaults' (expected one of: default, layers, frozen)");
	fails("{\"space\": {\"default\": {\"bit\": [4]}}}", PRESSO_E_CONFIG,
	      "space.default: unknown key 'bit'");
	fails("{\"space\": {\"layers\": {\"/fc1/Gemm\": {\"bitz\": [4]}}}}", PRESSO_E_CONFIG,
	      "space.layers./fc1/Gemm: unknown key 'bitz'");
	fails("{\"space\": {\"layers\": {\"/fc1/Gemm\": [4]}}}", PRESSO_E_CONFIG,
	      "space.layers./fc1/Gemm: expected an object of knobs");
	fails("{\"space\": {\"layers\": {\"/fc9/Gemm\": {\"bits\": [4]}}}}", PRESSO_E_CONFIG,
	      "space.layers./fc9/Gemm: '/fc9/Gemm' matches no layer of the model");
	fails("{\"space\": {\"layers\": {\"/fc1/Gemm\": {\"bits\": 4}, \"/fc1/Gemm\": {\"bits\": 8}}}}",
	      PRESSO_E_CONFIG, "space.layers: key '/fc1/Gemm' appears twice");
	fails("{\"space\": {\"frozen\": [\"/conv*\", 3]}}", PRESSO_E_CONFIG,
	      "space.frozen[1]: expected a layer name or glob, got 3");
	fails("{\"space\": {\"frozen\": [\"/pool*\"]}}", PRESSO_E_CONFIG,
	      "space.frozen[0]: '/pool*' matches no layer");
	fails("{\"space\": {\"frozen\": {\"/fc1/Gemm\": {\"bits\": [4, 8]}}}}", PRESSO_E_CONFIG,
	      "space.frozen./fc1/Gemm.bits: expected one value (a frozen layer has one choice "
	      "per knob)");
	fails("{\"space\": {\"frozen\": \"/fc1/Gemm\"}}", PRESSO_E_CONFIG,
	      "space.frozen: expected an array of layer names or globs");
}

Test(space, bad_objectives)
{
	fails("{\"objectives\": [\"accuracy\", \"size\"]}", PRESSO_E_CONFIG,
	      "objectives: expected an object, got an array");
	fails("{\"objectives\": {\"minimize\": [\"sise\"]}}", PRESSO_E_CONFIG,
	      "objectives.minimize[0]: expected one of accuracy, size, bops, latency, got the "
	      "string \"sise\"");
	fails("{\"objectives\": {\"minimize\": [\"size\", \"size_bytes\"]}}", PRESSO_E_CONFIG,
	      "objectives.minimize[1]: 'size' is already listed");
	fails("{\"objectives\": {\"minimize\": [\"size\", \"bops\", \"latency\"]}}", PRESSO_E_CONFIG,
	      "objectives.minimize: expected 1..2 objectives, got 3");
	fails("{\"objectives\": {\"minimize\": []}}", PRESSO_E_CONFIG,
	      "objectives.minimize: expected 1..2 objectives, got 0");
	fails("{\"objectives\": {\"minimize\": \"accuracy\"}}", PRESSO_E_CONFIG,
	      "objectives.minimize: accuracy is maximized");
	fails("{\"objectives\": {\"maximize\": \"size\"}}", PRESSO_E_CONFIG,
	      "objectives.maximize: only accuracy is maximized");
	fails("{\"objectives\": {\"maximise\": \"accuracy\"}}", PRESSO_E_CONFIG,
	      "objectives: unknown key 'maximise'");
}

Test(space, bad_constraints)
{
	fails("{\"constraints\": {\"max_size_kb\": 64, \"max_size_bytes\": 65536}}", PRESSO_E_CONFIG,
	      "constraints: give max_size_bytes or max_size_kb, not both");
	fails("{\"constraints\": {\"max_latency_us\": 1, \"max_latency_ms\": 1}}", PRESSO_E_CONFIG,
	      "constraints: give max_latency_us or max_latency_ms, not both");
	fails("{\"constraints\": {\"max_size_kb\": -1}}", PRESSO_E_CONFIG,
	      "constraints.max_size_kb: expected a number >= 1e-09, got -1");
	fails("{\"constraints\": {\"min_accuracy\": 101}}", PRESSO_E_CONFIG,
	      "constraints.min_accuracy: expected a number in [0, 100], got 101");
	fails("{\"constraints\": {\"max_drop\": 1}}", PRESSO_E_CONFIG,
	      "constraints: unknown key 'max_drop'");
	fails("{\"constraints\": {\"max_accuracy_drop\": \"1\"}}", PRESSO_E_CONFIG,
	      "constraints.max_accuracy_drop: expected a number in [0, 100]");
	/* a confidence: a fraction in (0.5, 1), on an accuracy bound */
	fails("{\"constraints\": {\"max_accuracy_drop\": 1, \"confidence\": 95}}",
	      PRESSO_E_CONFIG,
	      "constraints.confidence: expected a fraction between 0.5 and 1 (exclusive), like "
	      "0.95, got 95 (a fraction, not percent)");
	fails("{\"constraints\": {\"max_accuracy_drop\": 1, \"confidence\": 1}}",
	      PRESSO_E_CONFIG, "constraints.confidence: expected a fraction between 0.5 and 1");
	fails("{\"constraints\": {\"min_accuracy\": 80, \"confidence\": 0.5}}", PRESSO_E_CONFIG,
	      "constraints.confidence: expected a fraction between 0.5 and 1 (exclusive), like "
	      "0.95, got 0.5");
	fails("{\"constraints\": {\"max_accuracy_drop\": 1, \"confidence\": \"95%\"}}",
	      PRESSO_E_CONFIG, "constraints.confidence: expected a number");
	fails("{\"constraints\": {\"max_size_kb\": 64, \"confidence\": 0.95}}", PRESSO_E_CONFIG,
	      "constraints.confidence: it applies to min_accuracy or max_accuracy_drop, and "
	      "neither is set");
}

/* constraints.confidence: the best must meet the accuracy bound with the
 * Wilson lower bound of its accuracy, so it is a trial measured on more
 * images, or further inside the bound, than without. */
Test(space, a_confidence_makes_the_best_more_conservative)
{
	const char *const configs[] = {
		"{\"constraints\": {\"max_accuracy_drop\": 1}}",
		"{\"constraints\": {\"max_accuracy_drop\": 1, \"confidence\": 0.95}}",
	};
	/* FP32 91 %: trial 1 is 0.5 below on 1,000 images (95 % upper bound of
	 * the drop 2.14), trial 2 0.2 below on 20,000 (0.54), trial 3 2 below */
	const struct trial_metrics m[3] = {{90.5, NAN, 10000, 1, NAN, 4, 0, 1, 1000, false, 0, 0},
					   {90.8, NAN, 20000, 1, NAN, 4, 0, 1, 20000, false, 0, 0},
					   {89.0, NAN, 5000, 1, NAN, 3, 0, 1, 1000, false, 0, 0}};
	struct baseline b = {91.0, NAN, 100000, 1e6, NAN, 10};
	int64_t want[2] = {1, 2};
	for (int k = 0; k < 2; k++) {
		cJSON *root = cJSON_Parse(configs[k]);
		struct space *sp;
		cr_assert_eq(space_parse_goals(root, &sp), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(isnan(sp->con.confidence), k == 0);
		struct archive a;
		cr_assert_eq(archive_init(&a, sp, &b), PRESSO_OK, "%s", status_msg());
		for (int i = 0; i < 3; i++)
			cr_assert_eq(archive_add(&a, i + 1, NULL, &m[i], NULL), PRESSO_OK);
		int best = archive_best(&a);
		cr_assert_geq(best, 0);
		cr_assert_eq(a.pts[best].number, want[k], "%s: trial %lld", configs[k],
			     (long long)a.pts[best].number);
		cr_assert_eq(archive_confident(&a, &m[0]), k == 0);
		cr_assert(archive_confident(&a, &m[1]));
		/* an accuracy without its number of images has no bound */
		struct trial_metrics unknown = m[1];
		unknown.n_images = 0;
		cr_assert_eq(archive_confident(&a, &unknown), k == 0);
		archive_free(&a);
		space_free(sp);
		cJSON_Delete(root);
	}
}

Test(space, bad_search_settings)
{
	fails("{\"search\": {\"strategy\": \"annealing\"}}", PRESSO_E_CONFIG, "search.strategy");
	fails("{\"search\": {\"bandit\": \"exp3\"}}", PRESSO_E_CONFIG, "search.bandit");
	fails("{\"search\": {\"time_limit\": \"8x\"}}", PRESSO_E_CONFIG,
	      "search.time_limit: expected a duration like \"90s\", \"15m\" or \"8h\", got the "
	      "string \"8x\"");
	fails("{\"search\": {\"time_limit\": 3600}}", PRESSO_E_CONFIG, "search.time_limit");
	fails("{\"search\": {\"population\": 2}}", PRESSO_E_CONFIG,
	      "search.population: expected an integer in 4..4096, got 2");
	fails("{\"search\": {\"max_trials\": 0}}", PRESSO_E_CONFIG, "search.max_trials");
	fails("{\"search\": {\"discount\": 0}}", PRESSO_E_CONFIG, "search.discount");
	fails("{\"search\": {\"crossover_rate\": 1.5}}", PRESSO_E_CONFIG, "search.crossover_rate");
	fails("{\"search\": {\"seed\": -1}}", PRESSO_E_CONFIG, "search.seed");
	fails("{\"search\": {\"workers\": 2}}", PRESSO_E_CONFIG, "search: unknown key 'workers'");
	/* multi-fidelity and re-scoring */
	fails("{\"search\": {\"fidelity\": {}}}", PRESSO_E_CONFIG, "search.fidelity.images");
	fails("{\"search\": {\"fidelity\": {\"images\": 0}}}", PRESSO_E_CONFIG,
	      "search.fidelity.images");
	fails("{\"search\": {\"fidelity\": {\"images\": 100, \"confidence\": 0.3}}}",
	      PRESSO_E_CONFIG, "search.fidelity.confidence");
	fails("{\"search\": {\"fidelity\": {\"images\": 100, \"promote\": 0.5}}}",
	      PRESSO_E_CONFIG, "search.fidelity: unknown key 'promote'");
	fails("{\"search\": {\"fidelity\": 100}}", PRESSO_E_CONFIG, "search.fidelity");
	fails("{\"search\": {\"rescore_images\": 500}}", PRESSO_E_CONFIG,
	      "search.rescore_images");
	fails("{\"search\": {\"rescore_images\": -1}}", PRESSO_E_CONFIG, "search.rescore_images");
	/* fine-tuning's reach: a number of points, with something to tune and a bound to loosen */
	fails("{\"constraints\": {\"max_accuracy_drop\": 1}, \"search\": {\"finetune_reach\": 3}}",
	      PRESSO_E_CONFIG, "search.finetune_reach: it loosens the accuracy bounds for trials "
	      "that fine-tuning will improve, and search.finetune_front is 0");
	fails("{\"constraints\": {\"max_size_kb\": 64}, "
	      "\"search\": {\"finetune_front\": 2, \"finetune_reach\": 3}}",
	      PRESSO_E_CONFIG, "constraints sets neither min_accuracy nor max_accuracy_drop");
	fails("{\"constraints\": {\"max_accuracy_drop\": 1}, "
	      "\"search\": {\"finetune_front\": 2, \"finetune_reach\": -1}}",
	      PRESSO_E_CONFIG, "search.finetune_reach");
	fails("{\"constraints\": {\"max_accuracy_drop\": 1}, "
	      "\"search\": {\"finetune_front\": 2, \"finetune_reach\": \"3\"}}",
	      PRESSO_E_CONFIG, "search.finetune_reach");
}

/* search.finetune_reach: the search's violation (its front) takes the
 * accuracy bounds that much looser, the constraints as written still decide
 * what meets them and the best. */
Test(space, finetune_reach_loosens_the_search_not_the_best)
{
	const char *const configs[] = {
		"{\"constraints\": {\"max_accuracy_drop\": 1}, \"search\": {\"finetune_front\": 2}}",
		"{\"constraints\": {\"max_accuracy_drop\": 1}, "
		"\"search\": {\"finetune_front\": 2, \"finetune_reach\": 3}}",
		"{\"constraints\": {\"min_accuracy\": 90}, "
		"\"search\": {\"finetune_front\": 2, \"finetune_reach\": 3}}",
	};
	/* FP32 91 %: trial 1 0.5 below, trial 2 2.5 below (smaller), trial 3 5 below */
	const struct trial_metrics m[3] = {{90.5, NAN, 10000, 1, NAN, 4, 0, 1, 1000, false, 0, 0},
					   {88.5, NAN, 5000, 1, NAN, 3, 0, 1, 1000, false, 0, 0},
					   {86.0, NAN, 2000, 1, NAN, 2, 0, 1, 1000, false, 0, 0}};
	struct baseline b = {91.0, NAN, 100000, 1e6, NAN, 10};
	for (int k = 0; k < 3; k++) {
		cJSON *root = cJSON_Parse(configs[k]);
		struct space *sp;
		cr_assert_eq(space_parse_goals(root, &sp), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(sp->search.finetune_reach, k ? 3.0 : 0.0);
		struct archive a;
		cr_assert_eq(archive_init(&a, sp, &b), PRESSO_OK, "%s", status_msg());
		for (int i = 0; i < 3; i++)
			cr_assert_eq(archive_add(&a, i + 1, NULL, &m[i], NULL), PRESSO_OK);
		cr_assert_eq(a.pts[0].violation, 0);
		cr_assert_eq(a.pts[1].violation == 0, k > 0, "%s: 2.5 below", configs[k]);
		cr_assert_gt(a.pts[2].violation, 0, "%s: 5 below is beyond the reach", configs[k]);
		cr_assert_eq(a.n_feasible, k ? 2 : 1);
		int *front = NULL, n_front = 0;
		cr_assert_eq(archive_front(&a, &front, &n_front), PRESSO_OK);
		cr_assert_eq(n_front, k ? 2 : 1, "%s: the front covers the reach", configs[k]);
		free(front);
		cr_assert(archive_meets(&a, &m[0]));
		cr_assert_not(archive_meets(&a, &m[1]), "%s", configs[k]);
		int best = archive_best(&a);
		cr_assert_geq(best, 0);
		cr_assert_eq(a.pts[best].number, 1, "%s: the best meets the bound as written",
			     configs[k]);
		archive_free(&a);
		space_free(sp);
		cJSON_Delete(root);
	}
}

Test(space, durations)
{
	double s = 0;
	cr_assert(space_parse_duration("90s", &s) && s == 90);
	cr_assert(space_parse_duration("15m", &s) && s == 900);
	cr_assert(space_parse_duration("8h", &s) && s == 28800);
	cr_assert(space_parse_duration("1.5h", &s) && s == 5400);
	const char *bad[] = {"", "8", "h", "0s", "-1m", "8 h", "8hh", "1e999s", "nans", "+5s", NULL};
	for (int i = 0; bad[i]; i++)
		cr_assert_not(space_parse_duration(bad[i], &s), "'%s' accepted", bad[i]);
}

Test(space, seeds_and_policy_round_trip)
{
	struct space *sp = ok("{\"space\": {\"default\": {\"bits\": [2, 3, 6]},"
			      " \"layers\": {\"/fc3/Gemm\": {\"bits\": [4, 8]}}}}");
	uint8_t g[5 * KNOB_COUNT];
	struct policy *p = NULL;
	struct layer_policy lp = policy_default_layer();
	cr_assert_eq(policy_uniform(&lp, 5, &p), PRESSO_OK);
	/* W8A8 snaps to the largest value of each domain */
	cr_assert_eq(space_genome_seed(sp, 0, g), PRESSO_OK);
	space_genome_to_policy(sp, g, p);
	int w8[5] = {6, 6, 6, 6, 8};
	for (int l = 0; l < 5; l++) {
		cr_assert_eq(p->layers[l].bits, w8[l], "W8A8 seed, layer %d: %d bits", l,
			     p->layers[l].bits);
		cr_assert_eq(p->layers[l].act_bits, 8);
		cr_assert_not(p->layers[l].bias_correction);
	}
	/* W4A8 (the int4 shorthand: first and last layer at 8); 4 is between 3 and 6,
	 * nearer 3 */
	cr_assert_eq(space_genome_seed(sp, 1, g), PRESSO_OK);
	space_genome_to_policy(sp, g, p);
	int w4[5] = {6, 3, 3, 3, 8};
	for (int l = 0; l < 5; l++)
		cr_assert_eq(p->layers[l].bits, w4[l], "W4A8 seed, layer %d: %d bits", l,
			     p->layers[l].bits);
	/* round trip of random genomes */
	struct rng r;
	rng_seed(&r, 5);
	for (int t = 0; t < 200; t++) {
		uint8_t a[5 * KNOB_COUNT], b[5 * KNOB_COUNT];
		space_genome_random(sp, &r, a);
		space_genome_to_policy(sp, a, p);
		cr_assert(space_genome_from_policy(sp, p, b), "a genome's policy is in the space");
		cr_assert_eq(memcmp(a, b, sizeof a), 0);
	}
	/* a policy outside the space snaps and says so */
	p->layers[0].bits = 5;
	cr_assert_not(space_genome_from_policy(sp, p, g));
	cr_assert_float_eq(space_size(sp), 3 * 3 * 3 * 3 * 2 * 32.0, 1e-9);
	policy_free(p);
	space_free(sp);
}

/* space_parse_goals: what a stored study aimed for, without its model (the
 * space section, with patterns no model could check, is not read). */
Test(space, goals_without_a_model)
{
	cJSON *root = cJSON_Parse(
		"{\"space\": {\"layers\": {\"/no/such/layer\": {\"bits\": 4}}},"
		" \"objectives\": {\"minimize\": [\"bops\"]},"
		" \"constraints\": {\"max_accuracy_drop\": 1.5, \"max_latency_ms\": 2},"
		" \"search\": {\"strategy\": \"evolution\"}}");
	cr_assert_not_null(root);
	struct space *sp = NULL;
	cr_assert_eq(space_parse_goals(root, &sp), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(sp->n_layers, 0);
	cr_assert_eq(sp->n_genes, 0);
	cr_assert_eq(sp->n_obj, 2);
	cr_assert_eq(sp->obj[1], OBJ_BOPS);
	cr_assert_float_eq(sp->con.max_accuracy_drop, 1.5, 1e-12);
	cr_assert_float_eq(sp->con.max_latency_us, 2000, 1e-9);
	cr_assert(isnan(sp->con.max_size_bytes));
	cr_assert_eq(sp->search.strategy, STRATEGY_EVOLUTION);
	cr_assert(sp->needs_latency);
	space_free(sp);
	cJSON_Delete(root);
	/* such a space replays a study's best trial through the archive, without
	 * genomes: the cheapest within 1 point of FP32's 90 % */
	root = cJSON_Parse("{\"constraints\": {\"max_accuracy_drop\": 1}}");
	cr_assert_eq(space_parse_goals(root, &sp), PRESSO_OK, "%s", status_msg());
	struct baseline b = {90.0, NAN, 100000, 1e6, NAN, 10};
	struct archive a;
	cr_assert_eq(archive_init(&a, sp, &b), PRESSO_OK, "%s", status_msg());
	const struct trial_metrics m[3] = {{89.5, NAN, 30000, 1, NAN, 4, 0, 1, 0, false, 0, 0},
					   {88.0, NAN, 20000, 1, NAN, 3, 0, 1, 0, false, 0, 0},
					   {89.0, NAN, 25000, 1, NAN, 3, 0, 1, 0, false, 0, 0}};
	for (int i = 0; i < 3; i++)
		cr_assert_eq(archive_add(&a, i + 1, NULL, &m[i], NULL), PRESSO_OK);
	int best = archive_best(&a);
	cr_assert_eq(best, 2);
	cr_assert_eq(a.pts[best].number, 3);
	archive_free(&a);
	space_free(sp);
	cJSON_Delete(root);
	root = cJSON_Parse("{\"constraints\": {\"max_size_kb\": -1}}");
	cr_assert_eq(space_parse_goals(root, &sp), PRESSO_E_CONFIG);
	cr_assert_null(sp);
	cr_assert(strstr(status_msg(), "constraints.max_size_kb"), "%s", status_msg());
	cJSON_Delete(root);
}

Test(space, names)
{
	cr_assert_str_eq(space_knob_name(KNOB_BIAS_CORRECTION), "bias_correction");
	cr_assert_str_eq(space_strategy_name(STRATEGY_HYBRID), "hybrid");
	cr_assert_str_eq(space_strategy_name(STRATEGY_RANDOM), "random");
	cr_assert_str_eq(space_knob_name(KNOB_COUNT), "?");
}

Test(space, shipped_search_configs_parse_against_their_models)
{
	const char *configs[] = {"configs/demo.json", "configs/lenet-search.json",
				 "configs/mobilenetv2-search.json", "configs/resnet-search.json",
				 "configs/mobilenetv2-full-search.json",
				 "configs/mobilenetv2-full-finetune.json",
				 "configs/mobilenetv3-search.json", "configs/vit-search.json"};
	for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
		struct config *cfg = NULL;
		struct graph *g = NULL;
		struct layer *ls = NULL;
		struct space *sp = NULL;
		int n = 0;
		cr_assert_eq(config_load(fx_src(configs[i]), &cfg), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(graph_load_onnx(cfg->model_path, &g), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
		cr_assert_eq(space_parse(cfg->json, ls, n, &sp), PRESSO_OK, "%s: %s", configs[i],
			     status_msg());
		cr_assert_gt(sp->n_free, 0);
		space_free(sp);
		free(ls);
		graph_free(g);
		config_free(cfg);
	}
}

Test(space, fitted_to_the_model)
{
	struct graph *g;
	cr_assert_eq(graph_load_onnx(fx_src("models/mobilenetv2.onnx"), &g), PRESSO_OK);
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	cJSON *root = cJSON_Parse("{\"space\": {\"default\": {\"prune\": [0, 0.5],"
				  " \"prune_kind\": [\"unstructured\", \"structured\"], \"rank\": [0.5, 1]}}}");
	struct space *sp;
	cr_assert_eq(space_parse(root, ls, n, &sp), PRESSO_OK, "%s", status_msg());
	int before = sp->n_free;
	char *log = NULL;
	size_t log_bytes = 0;
	FILE *f = open_memstream(&log, &log_bytes);
	cr_assert_eq(space_fit_graph(sp, g, f), PRESSO_OK, "%s", status_msg());
	fclose(f);
	int expand = -1, project = -1, dw = -1;
	for (int i = 0; i < n; i++) {
		if (strcmp(ls[i].name, "/blocks/blocks.4/body/body.0/body.0.0/Conv") == 0)
			expand = i;
		if (strcmp(ls[i].name, "/blocks/blocks.4/body/body.2/body.2.0/Conv") == 0)
			project = i;
		if (strcmp(ls[i].name, "/blocks/blocks.4/body/body.1/body.1.0/Conv") == 0)
			dw = i;
	}
	cr_assert(expand >= 0 && project >= 0 && dw >= 0);
	cr_assert_eq(dom(sp, expand, KNOB_PRUNE_KIND)->n, 2, "an expansion conv keeps both kinds");
	cr_assert_eq(dom(sp, project, KNOB_PRUNE_KIND)->n, 1, "a projection into an Add does not");
	cr_assert_eq(dom(sp, project, KNOB_PRUNE_KIND)->v[0], PRUNE_UNSTRUCTURED);
	cr_assert_eq(dom(sp, dw, KNOB_RANK)->n, 1, "a depthwise conv keeps full rank");
	cr_assert_eq(dom(sp, dw, KNOB_RANK)->v[0], 1.0);
	cr_assert_eq(dom(sp, expand, KNOB_RANK)->n, 2);
	cr_assert_lt(sp->n_free, before);
	cr_assert(strstr(log, "pruned unstructured only") && strstr(log, "keep full rank"), "%s", log);
	free(log);
	space_free(sp);
	cJSON_Delete(root);
	free(ls);
	graph_free(g);
}

Test(space, size_text)
{
	char buf[32];
	cr_assert_str_eq(space_size_text(6.62e24, buf, sizeof buf), "6.62e+24");
	cr_assert_str_eq(space_size_text(48, buf, sizeof buf), "48");
	cr_assert_str_eq(space_size_text(INFINITY, buf, sizeof buf), "more than 1e+308");
}
