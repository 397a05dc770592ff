/* test_search_strategy.c - the search's parts without a model: the RNG, the
 * bandits (UCB1 picks the better arm, Thompson's posterior moves with the
 * rewards, discounting, exact JSON round trips), the archive (feasibility,
 * distance to the front, best under constraints), NSGA-II selection (the
 * front survives, feasible before infeasible, the extremes of a front that
 * must be cut), and the four strategies driven through ask/tell on a made-up
 * objective: every proposal valid, none ever repeated, the seeds first, a
 * small space exhausted to its last policy, state and batch save/load exact.
 *
 * The made-up model: five layers with LeNet's parameter counts; size counts
 * packed weights, accuracy loses points quadratically in the missing bits of
 * each layer (less with bias correction).
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "search/archive.h"
#include "search/bandit.h"
#include "search/evolution.h"
#include "base/rng.h"
#include "search/seen.h"
#include "search/space.h"
#include "search/strategy.h"

#define N_LAYERS 5

static struct layer layers[N_LAYERS] = {
	{.node = 0, .name = "/conv1/Conv", .params = 156},
	{.node = 1, .name = "/conv2/Conv", .params = 2416},
	{.node = 2, .name = "/fc1/Gemm", .params = 48120},
	{.node = 3, .name = "/fc2/Gemm", .params = 10164},
	{.node = 4, .name = "/fc3/Gemm", .params = 850},
};
static const double sensitivity[N_LAYERS] = {0.6, 0.25, 0.03, 0.08, 0.4};
static const struct baseline base = {90.0, NAN, 246824, 4.3e8, 60.0, 10};

static struct space *make_space(const char *text)
{
	cJSON *root = cJSON_Parse(text);
	cr_assert_not_null(root);
	struct space *sp = NULL;
	cr_assert_eq(space_parse(root, layers, N_LAYERS, &sp), PRESSO_OK, "%s", status_msg());
	cJSON_Delete(root);
	return sp;
}

/* The made-up evaluation. */
static struct trial_metrics evaluate(const struct space *sp, const uint8_t *g)
{
	struct layer_policy lp[N_LAYERS];
	struct policy p = {N_LAYERS, lp};
	space_genome_to_policy(sp, g, &p);
	double acc = 90.0, size = 400;
	for (int l = 0; l < N_LAYERS; l++) {
		double missing = 8 - lp[l].bits;
		acc -= sensitivity[l] * missing * missing * (lp[l].bias_correction ? 0.6 : 1.0);
		size += (double)layers[l].params * lp[l].bits / 8.0;
	}
	return (struct trial_metrics){acc > 10 ? acc : 10, NAN, (int64_t)size, size * 1000, NAN,
				      4, 0, 1, 0, false, 0, 0};
}

/* A claim callback over a set of genome digests. */
struct claims {
	struct seen *seen;
	const struct space *sp;
};

static bool claim(void *ctx, const uint8_t *g)
{
	struct claims *c = ctx;
	char hash[SHA256_HEX_BYTES];
	sha256_hex(g, (size_t)c->sp->n_genes, hash);
	bool added = false;
	cr_assert_eq(seen_add(c->seen, hash, &added), PRESSO_OK);
	return added;
}

static void assert_valid(const struct space *sp, const uint8_t *g)
{
	for (int gene = 0; gene < sp->n_genes; gene++) {
		int n = sp->ls[gene / KNOB_COUNT].d[gene % KNOB_COUNT].n;
		cr_assert_lt(g[gene], n, "gene %d = %d outside a domain of %d", gene, g[gene], n);
	}
}

/* Runs a strategy for n_trials in batches; returns all genomes proposed. */
static uint8_t *run(const struct space *sp, struct strategy *s, struct archive *a,
		    struct rng *r, struct claims *cl, int n_trials, int batch, int *n_out,
		    int64_t first_number)
{
	size_t gb = (size_t)sp->n_genes;
	uint8_t *all = malloc(gb * (size_t)n_trials);
	uint8_t *buf = malloc(gb * (size_t)batch);
	struct candidate *c = calloc((size_t)batch, sizeof *c);
	int n = 0;
	int64_t number = first_number;
	while (n < n_trials) {
		int want = n_trials - n < batch ? n_trials - n : batch, got = 0;
		for (int i = 0; i < batch; i++)
			c[i].genome = buf + gb * (size_t)i;
		cr_assert_eq(strategy_ask(s, r, claim, cl, want, c, &got), PRESSO_OK, "%s",
			     status_msg());
		if (got == 0)
			break;
		for (int i = 0; i < got; i++) {
			assert_valid(sp, c[i].genome);
			memcpy(all + gb * (size_t)n++, c[i].genome, gb);
			struct trial_metrics m = evaluate(sp, c[i].genome);
			struct archive_gain gain;
			archive_gain(a, &m, &gain);
			int idx;
			cr_assert_eq(archive_add(a, ++number, c[i].genome, &m, &idx), PRESSO_OK);
			cr_assert_eq(strategy_tell(s, &c[i], number, idx, &gain), PRESSO_OK);
		}
	}
	free(buf);
	free(c);
	*n_out = n;
	return all;
}

static const char *const strategies[] = {"random", "bandit", "evolution", "hybrid"};

Test(strategy, proposals_are_valid_seeded_and_never_repeated)
{
	for (int k = 0; k < 4; k++) {
		for (int algo = 0; algo < 2; algo++) {
			char text[256];
			snprintf(text, sizeof text,
				 "{\"search\": {\"strategy\": \"%s\", \"bandit\": \"%s\", "
				 "\"population\": 8}}",
				 strategies[k], algo ? "ucb" : "thompson");
			struct space *sp = make_space(text);
			struct archive a;
			struct strategy *s;
			struct claims cl = {NULL, sp};
			struct rng r;
			rng_seed(&r, 7);
			cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
			cr_assert_eq(strategy_create(sp, &a, &s), PRESSO_OK);
			cr_assert_eq(seen_create(&cl.seen), PRESSO_OK);
			int n;
			uint8_t *all = run(sp, s, &a, &r, &cl, 150, 8, &n, 0);
			cr_assert_eq(n, 150, "%s: %d proposals", strategies[k], n);
			size_t gb = (size_t)sp->n_genes;
			for (int i = 0; i < n; i++)
				for (int j = 0; j < i; j++)
					cr_assert_neq(memcmp(all + gb * (size_t)i, all + gb * (size_t)j, gb),
						      0, "%s: proposals %d and %d are the same",
						      strategies[k], j, i);
			uint8_t seed[N_LAYERS * KNOB_COUNT];
			for (int q = 0; q < SPACE_N_SEEDS; q++) {
				cr_assert_eq(space_genome_seed(sp, q, seed), PRESSO_OK);
				cr_assert_eq(memcmp(all + gb * (size_t)q, seed, gb), 0,
					     "%s: proposal %d is not seed %d", strategies[k], q, q);
			}
			free(all);
			seen_free(cl.seen);
			strategy_free(s);
			archive_free(&a);
			space_free(sp);
		}
	}
}

Test(strategy, a_small_space_is_searched_to_its_last_policy)
{
	for (int k = 0; k < 4; k++) {
		char text[512];
		snprintf(text, sizeof text,
			 "{\"space\": {\"default\": {\"bits\": [2, 4, 8], \"bias_correction\": false},"
			 " \"frozen\": [\"/conv*\", \"/fc3/Gemm\"]},"
			 " \"search\": {\"strategy\": \"%s\", \"population\": 4}}",
			 strategies[k]);
		struct space *sp = make_space(text);
		cr_assert_float_eq(space_size(sp), 9, 1e-9);
		struct archive a;
		struct strategy *s;
		struct claims cl = {NULL, sp};
		struct rng r;
		rng_seed(&r, 3);
		cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
		cr_assert_eq(strategy_create(sp, &a, &s), PRESSO_OK);
		cr_assert_eq(seen_create(&cl.seen), PRESSO_OK);
		int n;
		uint8_t *all = run(sp, s, &a, &r, &cl, 50, 4, &n, 0);
		cr_assert_eq(n, 9, "%s: %d policies of 9", strategies[k], n);
		free(all);
		seen_free(cl.seen);
		strategy_free(s);
		archive_free(&a);
		space_free(sp);
	}
}

Test(strategy, state_saves_and_loads_exactly)
{
	for (int k = 0; k < 4; k++) {
		char text[256];
		snprintf(text, sizeof text, "{\"search\": {\"strategy\": \"%s\", \"population\": 8}}",
			 strategies[k]);
		struct space *sp = make_space(text);
		struct archive a;
		struct strategy *s, *t;
		struct claims cl = {NULL, sp};
		struct rng r;
		rng_seed(&r, 11);
		cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
		cr_assert_eq(strategy_create(sp, &a, &s), PRESSO_OK);
		cr_assert_eq(strategy_create(sp, &a, &t), PRESSO_OK);
		cr_assert_eq(seen_create(&cl.seen), PRESSO_OK);
		int n;
		free(run(sp, s, &a, &r, &cl, 44, 8, &n, 0));
		char *pop, *bandit, *pop2, *bandit2;
		cr_assert_eq(strategy_save(s, &pop, &bandit), PRESSO_OK);
		cr_assert_eq(strategy_load(t, pop, bandit), PRESSO_OK, "%s", status_msg());
		cr_assert_eq(strategy_save(t, &pop2, &bandit2), PRESSO_OK);
		cr_assert_str_eq(pop, pop2);
		cr_assert_str_eq(bandit, bandit2);
		cr_assert_eq(strategy_last_told(t), 44);
		/* both go on the same way from the same RNG */
		struct rng r1 = r, r2 = r;
		struct claims c1 = {NULL, sp}, c2 = {NULL, sp};
		cr_assert_eq(seen_create(&c1.seen), PRESSO_OK);
		cr_assert_eq(seen_create(&c2.seen), PRESSO_OK);
		uint8_t g1[8][N_LAYERS * KNOB_COUNT], g2[8][N_LAYERS * KNOB_COUNT];
		struct candidate x[8], y[8];
		for (int i = 0; i < 8; i++) {
			x[i].genome = g1[i];
			y[i].genome = g2[i];
		}
		int n1, n2;
		cr_assert_eq(strategy_ask(s, &r1, claim, &c1, 8, x, &n1), PRESSO_OK);
		cr_assert_eq(strategy_ask(t, &r2, claim, &c2, 8, y, &n2), PRESSO_OK);
		cr_assert_eq(n1, n2);
		cr_assert_eq(memcmp(g1, g2, sizeof g1), 0, "%s: a loaded strategy differs",
			     strategies[k]);
		/* a state of another strategy is refused */
		if (k > 0) {
			struct strategy *u;
			struct space *other = make_space("{\"search\": {\"strategy\": \"random\"}}");
			cr_assert_eq(strategy_create(other, &a, &u), PRESSO_OK);
			cr_assert_eq(strategy_load(u, pop, bandit), PRESSO_E_FORMAT);
			strategy_free(u);
			space_free(other);
		}
		free(pop);
		free(bandit);
		free(pop2);
		free(bandit2);
		seen_free(c1.seen);
		seen_free(c2.seen);
		seen_free(cl.seen);
		strategy_free(s);
		strategy_free(t);
		archive_free(&a);
		space_free(sp);
	}
}

/* The batch a resume hands out again: genome, origin and the hybrid's arms
 * come back exactly; a text that does not fit the space is refused. */
Test(strategy, a_batch_saves_and_loads_exactly)
{
	struct space *sp = make_space("{\"search\": {\"strategy\": \"hybrid\", \"population\": 8}}");
	struct archive a;
	struct strategy *s;
	struct claims cl = {NULL, sp};
	struct rng r;
	rng_seed(&r, 5);
	cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
	cr_assert_eq(strategy_create(sp, &a, &s), PRESSO_OK);
	cr_assert_eq(seen_create(&cl.seen), PRESSO_OK);
	int n;
	free(run(sp, s, &a, &r, &cl, 16, 8, &n, 0));
	uint8_t g[8][N_LAYERS * KNOB_COUNT];
	struct candidate c[8];
	for (int i = 0; i < 8; i++)
		c[i].genome = g[i];
	cr_assert_eq(strategy_ask(s, &r, claim, &cl, 8, c, &n), PRESSO_OK);
	cr_assert_eq(n, 8);
	cr_assert_eq(c[0].origin, ORIGIN_CHILD, "a second generation: children with arms");
	char *text;
	cr_assert_eq(strategy_save_batch(s, c, n, &text), PRESSO_OK);
	struct candidate *back;
	int n_back;
	cr_assert_eq(strategy_load_batch(s, text, &back, &n_back), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n_back, n);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(memcmp(back[i].genome, c[i].genome, (size_t)sp->n_genes), 0);
		cr_assert_eq(back[i].origin, c[i].origin);
		cr_assert_eq(back[i].n_arms, c[i].n_arms);
		cr_assert_gt(c[i].n_arms, 0);
		cr_assert_eq(memcmp(back[i].arms, c[i].arms, sizeof(int) * (size_t)c[i].n_arms), 0);
	}
	strategy_batch_free(back, n_back);
	free(text);
	cr_assert_eq(strategy_save_batch(s, c, 0, &text), PRESSO_OK);
	cr_assert_eq(strategy_load_batch(s, text, &back, &n_back), PRESSO_OK);
	cr_assert_eq(n_back, 0);
	strategy_batch_free(back, n_back);
	free(text);
	/* 5 layers x 4 knobs: 40 hex digits; all zeros (each gene at its first value) fits */
	char zeros[2 * N_LAYERS * KNOB_COUNT + 1];
	memset(zeros, '0', sizeof zeros - 1);
	zeros[sizeof zeros - 1] = '\0';
	const char *bad[] = {
		"", "[]", "{\"candidates\": 3}",
		"{\"candidates\": [{\"genome\": \"00\", \"origin\": \"child\", \"arms\": []}]}",
		"{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"alien\", \"arms\": []}]}",
		"{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"child\", \"arms\": [100000]}]}",
		"{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"child\", \"arms\": [-1]}]}",
		"{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"child\", \"arms\": [1.5]}]}",
		"{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"child\"}]}",
		"{\"candidates\": [{\"genome\": \"ff%s\", \"origin\": \"child\", \"arms\": []}]}",
		"{\"candidates\": [{\"genome\": \"zz%s\", \"origin\": \"child\", \"arms\": []}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char t[512];
		snprintf(t, sizeof t, bad[i], i >= 9 ? zeros + 2 : zeros);
		cr_assert_eq(strategy_load_batch(s, t, &back, &n_back), PRESSO_E_FORMAT, "%s", t);
		cr_assert_null(back);
		cr_assert_eq(n_back, 0);
	}
	char good[512];
	snprintf(good, sizeof good,
		 "{\"candidates\": [{\"genome\": \"%s\", \"origin\": \"random\", \"arms\": []}]}",
		 zeros);
	cr_assert_eq(strategy_load_batch(s, good, &back, &n_back), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n_back, 1);
	strategy_batch_free(back, n_back);
	seen_free(cl.seen);
	strategy_free(s);
	archive_free(&a);
	space_free(sp);
}

/* --- bandits ------------------------------------------------------------------------ */

Test(bandit, ucb_prefers_the_arm_with_the_higher_mean)
{
	struct bandit b;
	struct rng r;
	rng_seed(&r, 1);
	cr_assert_eq(bandit_init(&b, BANDIT_UCB1, 3, 1.4142135623730951, 1.0), PRESSO_OK);
	const double p[3] = {0.2, 0.8, 0.5};
	/* every arm once first */
	bool seen[3] = {false};
	for (int i = 0; i < 3; i++) {
		int a = bandit_pick(&b, NULL, &r);
		cr_assert(!seen[a], "arm %d picked twice before every arm was tried", a);
		seen[a] = true;
		bandit_update(&b, a, rng_uniform(&r) < p[a] ? 1 : 0);
	}
	for (int i = 0; i < 600; i++) {
		int a = bandit_pick(&b, NULL, &r);
		bandit_update(&b, a, rng_uniform(&r) < p[a] ? 1 : 0);
	}
	cr_assert_gt(b.pulls[1], b.pulls[0] + b.pulls[2], "pulls %lld %lld %lld",
		     (long long)b.pulls[0], (long long)b.pulls[1], (long long)b.pulls[2]);
	cr_assert_gt(bandit_mean(&b, 1), bandit_mean(&b, 0));
	/* exploitation: with the bonus gone the best mean wins */
	b.ucb_c = 0;
	cr_assert_eq(bandit_pick(&b, NULL, &r), 1);
	/* picks pending in a batch spread over the arms */
	b.ucb_c = 1.4142135623730951;
	bandit_clear_pending(&b);
	int counts[3] = {0};
	for (int i = 0; i < 200; i++)
		counts[bandit_pick(&b, NULL, &r)]++;
	cr_assert_gt(counts[0] + counts[2], 0, "a batch of picks never leaves the best arm");
	bandit_free(&b);
}

Test(bandit, thompson_posterior_follows_the_rewards)
{
	struct bandit b;
	struct rng r;
	rng_seed(&r, 2);
	cr_assert_eq(bandit_init(&b, BANDIT_THOMPSON, 2, 0, 1.0), PRESSO_OK);
	cr_assert(isnan(bandit_mean(&b, 0)), "no rewards, no mean");
	for (int i = 0; i < 20; i++) {
		bandit_update(&b, 0, 1.0);
		bandit_update(&b, 1, 0.0);
	}
	cr_assert_float_eq(b.n[0], 20, 1e-12);
	cr_assert_float_eq(b.sum[0], 20, 1e-12);
	cr_assert_float_eq(b.sum[1], 0, 1e-12);
	cr_assert_float_eq(bandit_mean(&b, 0), 1.0, 1e-12);
	/* posteriors Beta(21, 1) and Beta(1, 21): arm 0 nearly always wins */
	int wins = 0;
	for (int i = 0; i < 200; i++)
		wins += bandit_pick(&b, NULL, &r) == 0;
	cr_assert_geq(wins, 195, "arm 0 won %d of 200", wins);
	/* fractional rewards count as fractions of a success, clamped to [0, 1] */
	bandit_update(&b, 1, 0.25);
	bandit_update(&b, 1, 7.0);
	cr_assert_float_eq(b.sum[1], 1.25, 1e-12);
	cr_assert_float_eq(b.n[1], 22, 1e-12);
	/* the allowed mask is obeyed; nothing allowed is -1 */
	bool only1[2] = {false, true}, none[2] = {false, false};
	for (int i = 0; i < 20; i++)
		cr_assert_eq(bandit_pick(&b, only1, &r), 1);
	cr_assert_eq(bandit_pick(&b, none, &r), -1);
	bandit_free(&b);
}

Test(bandit, discount_and_json_round_trip)
{
	struct bandit b, c;
	cr_assert_eq(bandit_init(&b, BANDIT_THOMPSON, 3, 1, 0.5), PRESSO_OK);
	bandit_update(&b, 0, 1.0);
	bandit_update(&b, 1, 0.3);
	cr_assert_float_eq(b.n[0], 0.5, 1e-12, "discounted by the later update");
	cr_assert_float_eq(b.sum[0], 0.5, 1e-12);
	cr_assert_float_eq(b.n[1], 1.0, 1e-12);
	cr_assert_eq(b.pulls[0], 1);
	bandit_update(&b, 2, 1.0 / 3.0);
	cJSON *j = bandit_to_json(&b);
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	cJSON *back = cJSON_Parse(text);
	cr_assert_eq(bandit_init(&c, BANDIT_THOMPSON, 3, 1, 0.5), PRESSO_OK);
	cr_assert_eq(bandit_from_json(&c, back, "test"), PRESSO_OK, "%s", status_msg());
	for (int a = 0; a < 3; a++) {
		cr_assert_eq(c.n[a], b.n[a], "n[%d] not exact", a);
		cr_assert_eq(c.sum[a], b.sum[a], "sum[%d] not exact", a);
		cr_assert_eq(c.pulls[a], b.pulls[a]);
	}
	struct bandit d;
	cr_assert_eq(bandit_init(&d, BANDIT_UCB1, 3, 1, 0.5), PRESSO_OK);
	cr_assert_eq(bandit_from_json(&d, back, "test"), PRESSO_E_FORMAT, "another algorithm");
	bandit_free(&d);
	cr_assert_eq(bandit_init(&d, BANDIT_THOMPSON, 4, 1, 0.5), PRESSO_OK);
	cr_assert_eq(bandit_from_json(&d, back, "test"), PRESSO_E_FORMAT, "another arm count");
	bandit_free(&d);
	cJSON_Delete(back);
	free(text);
	bandit_free(&b);
	bandit_free(&c);
	enum bandit_algo al;
	cr_assert(bandit_algo_lookup("ucb1", &al) && al == BANDIT_UCB1);
	cr_assert(bandit_algo_lookup("thompson", &al) && al == BANDIT_THOMPSON);
	cr_assert_not(bandit_algo_lookup("exp3", &al));
}

/* Discounting by 0.99 makes counts like 0.99^3 = 0.970299 whose last bits a
 * 15-digit print loses; a resumed search must pick from the same numbers. */
Test(bandit, json_round_trip_is_bit_exact_after_many_discounted_updates)
{
	struct bandit b, c;
	struct rng r;
	rng_seed(&r, 11);
	cr_assert_eq(bandit_init(&b, BANDIT_THOMPSON, 5, 1.414, 0.99), PRESSO_OK);
	cr_assert_eq(bandit_init(&c, BANDIT_THOMPSON, 5, 1.414, 0.99), PRESSO_OK);
	for (int i = 0; i < 300; i++)
		bandit_update(&b, (int)rng_below(&r, 5), rng_uniform(&r) < 0.3 ? 1.0 : 0.0);
	cJSON *j = bandit_to_json(&b);
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	cJSON *back = cJSON_Parse(text);
	cr_assert_eq(bandit_from_json(&c, back, "test"), PRESSO_OK, "%s", status_msg());
	for (int a = 0; a < 5; a++) {
		cr_assert(memcmp(&c.n[a], &b.n[a], sizeof(double)) == 0, "n[%d]: %.17g, not %.17g",
			  a, c.n[a], b.n[a]);
		cr_assert(memcmp(&c.sum[a], &b.sum[a], sizeof(double)) == 0,
			  "sum[%d]: %.17g, not %.17g", a, c.sum[a], b.sum[a]);
	}
	struct rng r1 = r, r2 = r;
	for (int i = 0; i < 50; i++)
		cr_assert_eq(bandit_pick(&c, NULL, &r1), bandit_pick(&b, NULL, &r2));
	cJSON_Delete(back);
	free(text);
	bandit_free(&b);
	bandit_free(&c);
}

/* --- RNG ---------------------------------------------------------------------------- */

Test(rng, deterministic_bounded_and_restorable)
{
	struct rng a, b;
	rng_seed(&a, 123);
	rng_seed(&b, 123);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(rng_next(&a), rng_next(&b));
	char text[RNG_TEXT_BYTES];
	rng_to_text(&a, text);
	cr_assert_eq(strlen(text), 64);
	struct rng c;
	cr_assert(rng_from_text(&c, text));
	for (int i = 0; i < 100; i++)
		cr_assert_eq(rng_next(&a), rng_next(&c));
	cr_assert_not(rng_from_text(&c, "00"));
	cr_assert_not(rng_from_text(&c, "000000000000000000000000000000000000000000000000000000000"
					"0000000"),
		      "the all-zero state");
	cr_assert_not(rng_from_text(&c, "g000000000000000000000000000000000000000000000000000000000"
					"000001"));
	int hist[7] = {0};
	double sum = 0;
	for (int i = 0; i < 7000; i++) {
		uint64_t v = rng_below(&a, 7);
		cr_assert_lt(v, 7);
		hist[v]++;
		double u = rng_uniform(&a);
		cr_assert(u >= 0 && u < 1);
		sum += rng_beta(&a, 2, 6);
	}
	for (int k = 0; k < 7; k++)
		cr_assert(hist[k] > 800 && hist[k] < 1200, "value %d drawn %d times of 7000", k,
			  hist[k]);
	cr_assert_float_eq(sum / 7000, 0.25, 0.01, "Beta(2, 6) has mean 1/4");
	cr_assert_eq(rng_below(&a, 1), 0);
}

/* --- archive and NSGA-II -------------------------------------------------------- */

static struct trial_metrics point(double acc, int64_t size)
{
	return (struct trial_metrics){acc, NAN, size, 1e6, NAN, 4, 0, 1, 0, false, 0, 0};
}

Test(archive, gain_front_and_best)
{
	struct space *sp = make_space("{\"constraints\": {\"max_size_bytes\": 60000}}");
	struct archive a;
	cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
	uint8_t g[N_LAYERS * KNOB_COUNT] = {0};
	struct archive_gain gain;
	struct trial_metrics big = point(80, 70000);
	archive_gain(&a, &big, &gain);
	cr_assert_not(gain.feasible);
	cr_assert(gain.improves, "the least violation while nothing is feasible");
	struct trial_metrics m1 = point(85, 50000), m2 = point(80, 30000), m3 = point(84, 50000);
	cr_assert_eq(archive_add(&a, 1, g, &big, NULL), PRESSO_OK);
	archive_gain(&a, &m1, &gain);
	cr_assert(gain.feasible && gain.improves);
	cr_assert_eq(gain.distance, 0);
	cr_assert_eq(archive_add(&a, 2, g, &m1, NULL), PRESSO_OK);
	cr_assert_eq(archive_add(&a, 3, g, &m2, NULL), PRESSO_OK);
	/* one accuracy point behind trial 2 at the same size */
	archive_gain(&a, &m3, &gain);
	cr_assert(gain.feasible);
	cr_assert_not(gain.improves);
	cr_assert_float_eq(gain.distance, 1.0 / 90.0, 1e-12);
	/* equal to a front point: weakly dominated, raises nothing */
	archive_gain(&a, &m2, &gain);
	cr_assert_not(gain.improves);
	cr_assert_eq(gain.distance, 0);
	cr_assert_eq(archive_add(&a, 4, g, &m3, NULL), PRESSO_OK);
	int *front, n_front;
	cr_assert_eq(archive_front(&a, &front, &n_front), PRESSO_OK);
	cr_assert_eq(n_front, 2);
	cr_assert_eq(a.pts[front[0]].number, 2, "best accuracy first");
	cr_assert_eq(a.pts[front[1]].number, 3);
	free(front);
	double hv, ratio;
	cr_assert_eq(archive_hypervolume(&a, &hv, &ratio), PRESSO_OK);
	double want = (85 - 10) * (246824.0 - 50000) + (80 - 10) * (50000 - 30000.0);
	cr_assert_float_eq(hv, want, 1e-6 * want);
	cr_assert_float_eq(ratio, want / (90.0 * 246824), 1e-9);
	/* size bounded: the most accurate feasible trial */
	cr_assert_eq(a.pts[archive_best(&a)].number, 2);
	archive_free(&a);
	space_free(sp);
	/* accuracy bounded: the smallest that meets it */
	sp = make_space("{\"constraints\": {\"max_accuracy_drop\": 9}}");
	cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
	archive_add(&a, 1, g, &m1, NULL);
	archive_add(&a, 2, g, &m2, NULL);
	struct trial_metrics m4 = point(81, 40000);
	archive_add(&a, 3, g, &m4, NULL);
	cr_assert_eq(a.pts[archive_best(&a)].number, 3, "drop 9 allows 81 %%, not 80 %%");
	cr_assert_eq(a.n_feasible, 2);
	archive_free(&a);
	space_free(sp);
}

Test(archive, identical_points_once_and_dominated_ties_lose)
{
	struct space *sp = make_space("{\"objectives\": {\"minimize\": [\"size\", \"bops\"]}, "
				      "\"constraints\": {\"max_accuracy_drop\": 5}}");
	struct archive a;
	cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
	uint8_t g[N_LAYERS * KNOB_COUNT] = {0};
	struct trial_metrics m = point(88, 30000), worse_bops = point(88, 30000);
	worse_bops.bops = 2e6;
	cr_assert_eq(archive_add(&a, 1, g, &worse_bops, NULL), PRESSO_OK);
	cr_assert_eq(archive_add(&a, 2, g, &m, NULL), PRESSO_OK);
	cr_assert_eq(archive_add(&a, 3, g, &m, NULL), PRESSO_OK);
	cr_assert_eq(archive_add(&a, 4, g, &m, NULL), PRESSO_OK);
	/* 2, 3 and 4 are one point: listed (and re-checked) once, as 2 */
	int *front, n_front;
	cr_assert_eq(archive_front(&a, &front, &n_front), PRESSO_OK);
	cr_assert_eq(n_front, 1);
	cr_assert_eq(a.pts[front[0]].number, 2);
	cr_assert_eq(archive_n_same(&a, front[0]), 2);
	free(front);
	/* the cheapest within the drop: 1 and 2 tie on size and accuracy, and 1
	 * is dominated on BOPs: 2, although 1 has the lower number */
	cr_assert_eq(a.pts[archive_best(&a)].number, 2);
	archive_free(&a);
	space_free(sp);
}

Test(evolution, selection_keeps_the_front_and_prefers_feasible)
{
	struct space *sp = make_space("{\"constraints\": {\"max_size_bytes\": 200000}}");
	struct archive a;
	cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
	uint8_t g[N_LAYERS * KNOB_COUNT] = {0};
	struct rng r;
	rng_seed(&r, 9);
	/* 30 random feasible points, 10 infeasible ones that would dominate them */
	for (int i = 0; i < 40; i++) {
		double acc = 40 + 50 * rng_uniform(&r);
		int64_t size = 20000 + (int64_t)(150000 * rng_uniform(&r));
		if (i >= 30) {
			acc = 95;
			size = 210000 + i;
		}
		struct trial_metrics m = point(acc, size);
		cr_assert_eq(archive_add(&a, i + 1, g, &m, NULL), PRESSO_OK);
	}
	int cand[40], keep[40], rank[40], n_kept;
	double crowd[40];
	for (int i = 0; i < 40; i++)
		cand[i] = 39 - i;
	int *front, n_front;
	cr_assert_eq(archive_front(&a, &front, &n_front), PRESSO_OK);
	cr_assert_geq(n_front, 3);
	/* room for the front: all of it survives */
	cr_assert_eq(evolution_select(&a, cand, 40, 20, keep, &n_kept, rank, crowd), PRESSO_OK);
	cr_assert_eq(n_kept, 20);
	for (int f = 0; f < n_front; f++) {
		bool kept = false;
		for (int i = 0; i < n_kept; i++)
			kept |= keep[i] == front[f];
		cr_assert(kept, "front trial %lld was not kept", (long long)a.pts[front[f]].number);
	}
	for (int i = 0; i < n_kept; i++) {
		cr_assert_eq(a.pts[keep[i]].violation, 0, "an infeasible point beat a feasible one");
		if (i)
			cr_assert_geq(rank[i], rank[i - 1], "kept in rank order");
	}
	/* less room than the front: the front's extremes survive the cut */
	cr_assert_eq(evolution_select(&a, cand, 40, 2, keep, &n_kept, rank, crowd), PRESSO_OK);
	cr_assert_eq(n_kept, 2);
	if (n_front > 2) {
		int best_acc = front[0], smallest = front[n_front - 1];
		cr_assert((keep[0] == best_acc && keep[1] == smallest) ||
			  (keep[1] == best_acc && keep[0] == smallest),
			  "the extremes of a front survive a cut");
	}
	free(front);
	/* tournaments: the lower rank wins */
	int rk[2] = {0, 1};
	double cw[2] = {0, INFINITY};
	for (int i = 0; i < 20; i++)
		cr_assert_eq(evolution_tournament(rk, cw, 2, &r), 0);
	archive_free(&a);
	space_free(sp);
}

Test(evolution, operators_stay_in_the_space)
{
	struct space *sp = make_space("{\"space\": {\"layers\": {\"/fc3/Gemm\": {\"bits\": 8}}}}");
	struct rng r;
	rng_seed(&r, 4);
	uint8_t x[N_LAYERS * KNOB_COUNT], y[N_LAYERS * KNOB_COUNT], c[N_LAYERS * KNOB_COUNT];
	int n_arms = evolution_n_arms(sp);
	cr_assert_eq(n_arms, 2 * sp->n_free);
	bool *allowed = malloc(sizeof(bool) * (size_t)n_arms);
	for (int t = 0; t < 300; t++) {
		space_genome_random(sp, &r, x);
		space_genome_random(sp, &r, y);
		evolution_crossover(sp, x, y, &r, c);
		for (int l = 0; l < N_LAYERS; l++) {
			bool from_x = memcmp(c + l * KNOB_COUNT, x + l * KNOB_COUNT, KNOB_COUNT) == 0;
			bool from_y = memcmp(c + l * KNOB_COUNT, y + l * KNOB_COUNT, KNOB_COUNT) == 0;
			cr_assert(from_x || from_y, "a layer's choices travel together");
		}
		evolution_mutate(sp, c, 0.5, &r);
		assert_valid(sp, c);
		evolution_arms_allowed(sp, c, allowed);
		for (int arm = 0; arm < n_arms; arm++) {
			if (!allowed[arm])
				continue;
			memcpy(y, c, sizeof c);
			evolution_apply_arm(sp, y, arm);
			assert_valid(sp, y);
			cr_assert_neq(memcmp(y, c, sizeof c), 0);
		}
	}
	char name[128];
	evolution_arm_name(sp, 1, name, sizeof name);
	cr_assert_str_eq(name, "layer '/conv1/Conv' bits up");
	free(allowed);
	space_free(sp);
}
