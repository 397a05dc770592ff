/* test_latency_lut.c - the latency table's arithmetic and its JSON: a policy's
 * estimate is the overhead plus its layers' (bits, act_bits) entries plus the
 * deltas of its structured pruning and ranks (unstructured pruning adds
 * nothing; a missing entry or delta gives NAN); tables round-trip through
 * JSON, version 1 tables (no deltas) still read, malformed deltas are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluators/latency_lut.h"
#include "quant/policy.h"

static const struct layer layers[3] = {
	{.name = "conv1"}, {.name = "conv2"}, {.name = "fc"},
};

#define TABLE                                                                             \
	"{\"version\": 2, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 10,"            \
	" \"layers\": [\"conv1\", \"conv2\", \"fc\"],"                                    \
	" \"entries\": [[0, 8, 8, 4], [1, 8, 8, 20], [2, 8, 8, 2], [1, 4, 8, 12]],"       \
	" \"deltas\": [[1, 0, 0.5, -7.5], [0, 1, 0.25, -1.25], [2, 1, 3, 0.5]]}"

static struct policy *w8a8(void)
{
	struct layer_policy lp = policy_default_layer();
	struct policy *p;
	cr_assert_eq(policy_uniform(&lp, 3, &p), PRESSO_OK);
	return p;
}

Test(latency_lut, estimate_adds_entries_and_deltas)
{
	struct latency_lut *lut;
	cr_assert_eq(latency_lut_from_json(TABLE, "t", layers, 3, &lut), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_eq(lut->n_deltas, 3);
	struct policy *p = w8a8();
	cr_assert_float_eq(latency_lut_estimate(lut, p), 10 + 4 + 20 + 2, 1e-12);
	p->layers[1].bits = 4;
	cr_assert_float_eq(latency_lut_estimate(lut, p), 10 + 4 + 12 + 2, 1e-12);
	/* unstructured pruning runs the same dense kernels */
	p->layers[1].prune = 0.5;
	cr_assert_float_eq(latency_lut_estimate(lut, p), 10 + 4 + 12 + 2, 1e-12);
	p->layers[1].prune_kind = PRUNE_STRUCTURED;
	cr_assert_float_eq(latency_lut_estimate(lut, p), 10 + 4 + 12 + 2 - 7.5, 1e-12);
	p->layers[0].rank = 0.25;
	p->layers[2].rank = 3;
	cr_assert_float_eq(latency_lut_estimate(lut, p), 10 + 4 + 12 + 2 - 7.5 - 1.25 + 0.5,
			   1e-12);
	/* a value the table has no delta for */
	p->layers[1].prune = 0.25;
	cr_assert(isnan(latency_lut_estimate(lut, p)));
	p->layers[1].prune = 0.5;
	p->layers[2].bits = 3;
	cr_assert(isnan(latency_lut_estimate(lut, p)), "no w3 entry for fc");
	cr_assert_float_eq(latency_lut_delta(lut, 1, LUT_PRUNE_STRUCTURED, 0.5), -7.5, 1e-12);
	cr_assert(isnan(latency_lut_delta(lut, 1, LUT_RANK, 0.5)));
	policy_free(p);
	latency_lut_free(lut);
}

Test(latency_lut, json_round_trip_and_refusals)
{
	struct latency_lut *lut, *back;
	cr_assert_eq(latency_lut_from_json(TABLE, "t", layers, 3, &lut), PRESSO_OK);
	char *text = latency_lut_to_json(lut, layers);
	cr_assert_not_null(text);
	cr_assert_eq(latency_lut_from_json(text, "t", layers, 3, &back), PRESSO_OK, "%s", text);
	cr_assert_eq(back->n_deltas, lut->n_deltas);
	for (int i = 0; i < lut->n_deltas; i++) {
		cr_assert_eq(back->deltas[i].layer, lut->deltas[i].layer);
		cr_assert_eq(back->deltas[i].knob, lut->deltas[i].knob);
		cr_assert_float_eq(back->deltas[i].value, lut->deltas[i].value, 1e-12);
		cr_assert_float_eq(back->deltas[i].us, lut->deltas[i].us, 1e-12);
	}
	struct policy *p = w8a8();
	p->layers[1].prune = 0.5;
	p->layers[1].prune_kind = PRUNE_STRUCTURED;
	cr_assert_float_eq(latency_lut_estimate(back, p), latency_lut_estimate(lut, p), 1e-12);
	free(text);
	latency_lut_free(back);

	/* version 1: no deltas; a structured policy has no estimate */
	const char *v1 = "{\"version\": 1, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 1,"
			 " \"layers\": [\"conv1\", \"conv2\", \"fc\"], \"entries\": [[0, 8, 8, 1]]}";
	cr_assert_eq(latency_lut_from_json(v1, "t", layers, 3, &back), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(back->n_deltas, 0);
	cr_assert(isnan(latency_lut_estimate(back, p)));
	latency_lut_free(back);

	const char *bad[] = {
		/* a knob that does not exist, a layer out of range, a short row, not an array */
		"{\"version\": 2, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 1, \"layers\":"
		" [\"conv1\", \"conv2\", \"fc\"], \"entries\": [], \"deltas\": [[0, 2, 0.5, 1]]}",
		"{\"version\": 2, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 1, \"layers\":"
		" [\"conv1\", \"conv2\", \"fc\"], \"entries\": [], \"deltas\": [[3, 0, 0.5, 1]]}",
		"{\"version\": 2, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 1, \"layers\":"
		" [\"conv1\", \"conv2\", \"fc\"], \"entries\": [], \"deltas\": [[0, 0, 0.5]]}",
		"{\"version\": 2, \"runs\": 5, \"isa\": \"ref\", \"overhead_us\": 1, \"layers\":"
		" [\"conv1\", \"conv2\", \"fc\"], \"entries\": [], \"deltas\": 3}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(latency_lut_from_json(bad[i], "state", layers, 3, &back), PRESSO_E_FORMAT,
			     "case %zu", i);
		cr_assert(strstr(status_msg(), "state"), "%s", status_msg());
	}
	policy_free(p);
	latency_lut_free(lut);
}
