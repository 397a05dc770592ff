/* strategy.c - random, bandit, evolution and hybrid behind ask/tell (see
 * strategy.h and search/README.md).
 *
 * The strategies are one table (ops[], keyed by enum strategy_kind): how a
 * batch begins, how one candidate is proposed, what a result teaches. ask()
 * is shared: the unclaimed seeds first, then proposals until the batch is
 * full; a proposal the claim refuses is retried (PROPOSE_ATTEMPTS), then
 * replaced by uniform random genomes (RANDOM_ATTEMPTS), then, in a space small
 * enough to walk (ENUMERATE_MAX_SIZE), by the next unclaimed genome in
 * mixed-radix order from a random start - so a small space is searched to the
 * last policy and a search stops only when nothing new is left.
 *
 *  random     every free gene uniform over its domain.
 *  bandit     one bandit per free gene (layer x knob) whose arms are the
 *             domain's values; a candidate takes each gene's pick; every gene
 *             of an evaluated policy is rewarded with exp(-d / SCALE), d its
 *             distance to the front (archive.h): dense, 1 on the front.
 *  evolution  NSGA-II (evolution.c): a first generation of `population`
 *             seeds + random genomes, then each batch of offspring from
 *             tournaments, uniform crossover (crossover_rate) and mutation of
 *             each free gene with probability 1 / n_free; selection of the
 *             next population from parents + offspring at the next ask.
 *  hybrid     the same population and selection, but each child is mutated
 *             by one arm (layer, knob, direction) that a bandit chooses;
 *             the arm earns 1 when the child raised the hypervolume (entered
 *             the front), else 0.
 *
 * With a sensitivity table (strategy_use_sensitivity), its greedy genomes
 * are extra seeds, proposed after the two fixed ones while unclaimed (no state:
 * the claims say which are taken), and the bandits start with priors.
 */
#include "search/strategy.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "search/bandit.h"
#include "search/evolution.h"

#define PROPOSE_ATTEMPTS 64
#define RANDOM_ATTEMPTS 256
#define ENUMERATE_MAX_SIZE 1e7
#define ENUMERATE_MAX_STEPS 200000

struct strategy {
	enum strategy_kind kind;
	const struct space *sp;
	const struct archive *a;
	int64_t last_told;
	int generation;
	/* evolution, hybrid: the population (archive indices) with its ranks and
	 * crowding, and the offspring told since the last selection */
	int *pop, n_pop;
	int *rank;
	double *crowd;
	int *pending, n_pending, cap_pending;
	/* bandit: one per free gene, arms = domain values */
	struct bandit *genes;
	/* hybrid: one over the mutation arms */
	struct bandit op;
	bool *allowed;
	uint8_t *scratch;
	/* the first generation's uniform policies (evolution, hybrid) */
	int n_uniform, next_uniform;
	int uniform_bits[2 * SPACE_MAX_VALUES];
	bool uniform_bias[2 * SPACE_MAX_VALUES];
	/* the sensitivity's greedy seeds (strategy_use_sensitivity) */
	int n_greedy;
	uint8_t *greedy; /* [n_greedy * n_genes] */
};

static const char *const origin_names[ORIGIN_COUNT] = {
	[ORIGIN_SEED] = "seed",   [ORIGIN_RANDOM] = "random",   [ORIGIN_BANDIT] = "bandit",
	[ORIGIN_CHILD] = "child", [ORIGIN_REQUEUE] = "requeued",
};
_Static_assert(sizeof origin_names / sizeof origin_names[0] == ORIGIN_COUNT,
	       "every origin needs a name");

const char *strategy_origin_name(enum candidate_origin o)
{
	return (unsigned)o < ORIGIN_COUNT ? origin_names[o] : "?";
}

/* --- the strategies ----------------------------------------------------------- */

static void random_propose(struct strategy *s, struct rng *r, struct candidate *c)
{
	space_genome_random(s->sp, r, c->genome);
	c->origin = ORIGIN_RANDOM;
}

static enum presso_status bandit_begin(struct strategy *s)
{
	for (int i = 0; i < s->sp->n_free; i++)
		bandit_clear_pending(&s->genes[i]);
	return PRESSO_OK;
}

static void bandit_propose(struct strategy *s, struct rng *r, struct candidate *c)
{
	memset(c->genome, 0, (size_t)s->sp->n_genes);
	for (int i = 0; i < s->sp->n_free; i++)
		c->genome[s->sp->free_genes[i]] = (uint8_t)bandit_pick(&s->genes[i], NULL, r);
	c->origin = ORIGIN_BANDIT;
}

static void bandit_learn(struct strategy *s, const struct candidate *c,
			 const struct archive_gain *gain)
{
	double reward = gain->feasible ? exp(-gain->distance / STRATEGY_REWARD_SCALE)
					: gain->improves ? 1.0 : 0.0;
	for (int i = 0; i < s->sp->n_free; i++)
		bandit_update(&s->genes[i], c->genome[s->sp->free_genes[i]], reward);
}

/* Population: parents + pending offspring -> the next population. */
static enum presso_status population_begin(struct strategy *s)
{
	if (s->kind == STRATEGY_HYBRID)
		bandit_clear_pending(&s->op);
	if (s->n_pending == 0 && s->n_pop > 0)
		return PRESSO_OK;
	int n = s->n_pop + s->n_pending;
	if (n == 0)
		return PRESSO_OK;
	int *cand = malloc(sizeof(int) * (size_t)n);
	if (!cand)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	memcpy(cand, s->pop, sizeof(int) * (size_t)s->n_pop);
	memcpy(cand + s->n_pop, s->pending, sizeof(int) * (size_t)s->n_pending);
	enum presso_status st = evolution_select(s->a, cand, n, s->sp->search.population, s->pop,
						 &s->n_pop, s->rank, s->crowd);
	free(cand);
	if (st == PRESSO_OK) {
		s->n_pending = 0;
		s->generation++;
	}
	return st;
}

/* Two tournament parents crossed (or the first copied) into c->genome. */
static void make_child(struct strategy *s, struct rng *r, struct candidate *c,
		       const uint8_t **p1, const uint8_t **p2)
{
	*p1 = archive_genome(s->a, s->pop[evolution_tournament(s->rank, s->crowd, s->n_pop, r)]);
	*p2 = archive_genome(s->a, s->pop[evolution_tournament(s->rank, s->crowd, s->n_pop, r)]);
	if (rng_uniform(r) < s->sp->search.crossover_rate)
		evolution_crossover(s->sp, *p1, *p2, r, c->genome);
	else
		memcpy(c->genome, *p1, (size_t)s->sp->n_genes);
	c->origin = ORIGIN_CHILD;
}

/* A random allowed single-step arm for g, or -1. */
static int random_arm(struct strategy *s, const uint8_t *g, struct rng *r)
{
	int n = evolution_n_arms(s->sp), n_ok = 0, pick = -1;
	evolution_arms_allowed(s->sp, g, s->allowed);
	for (int a = 0; a < n; a++)
		if (s->allowed[a] && rng_below(r, (uint64_t)++n_ok) == 0)
			pick = a;
	return pick;
}

/* The first generation of a population: uniform policies (every layer at the
 * same bits, bias correction off, then on) spread the population along the
 * size axis, where the front of a quantization search lies; then random ones. */
static void first_generation(struct strategy *s, struct rng *r, struct candidate *c)
{
	if (s->next_uniform < s->n_uniform) {
		struct layer_policy lp[1];
		int k = s->next_uniform++;
		struct policy *p = NULL;
		lp[0] = policy_default_layer();
		lp[0].bits = s->uniform_bits[k];
		lp[0].bias_correction = s->uniform_bias[k];
		if (policy_uniform(lp, s->sp->n_layers, &p) == PRESSO_OK) {
			space_genome_from_policy(s->sp, p, c->genome);
			policy_free(p);
			c->origin = ORIGIN_SEED;
			return;
		}
		status_clear();
	}
	random_propose(s, r, c);
}

static void evolution_propose(struct strategy *s, struct rng *r, struct candidate *c)
{
	if (s->n_pop < 2) {
		first_generation(s, r, c);
		return;
	}
	const uint8_t *p1, *p2;
	make_child(s, r, c, &p1, &p2);
	int changed = evolution_mutate(s->sp, c->genome, 1.0 / s->sp->n_free, r);
	size_t gb = (size_t)s->sp->n_genes;
	if (changed == 0 || memcmp(c->genome, p1, gb) == 0 || memcmp(c->genome, p2, gb) == 0) {
		int arm = random_arm(s, c->genome, r);
		if (arm >= 0)
			evolution_apply_arm(s->sp, c->genome, arm);
	}
}

static void hybrid_propose(struct strategy *s, struct rng *r, struct candidate *c)
{
	if (s->n_pop < 2) {
		first_generation(s, r, c);
		return;
	}
	const uint8_t *p1, *p2;
	make_child(s, r, c, &p1, &p2);
	/* one bandit-chosen step; more only while the child is still a parent */
	size_t gb = (size_t)s->sp->n_genes;
	do {
		evolution_arms_allowed(s->sp, c->genome, s->allowed);
		int arm = bandit_pick(&s->op, s->allowed, r);
		if (arm < 0)
			break;
		evolution_apply_arm(s->sp, c->genome, arm);
		c->arms[c->n_arms++] = arm;
	} while (c->n_arms < STRATEGY_MAX_ARMS &&
		 (memcmp(c->genome, p1, gb) == 0 || memcmp(c->genome, p2, gb) == 0));
}

static enum presso_status population_learn(struct strategy *s, const struct candidate *c,
					   int index, const struct archive_gain *gain)
{
	if (s->kind == STRATEGY_HYBRID)
		for (int i = 0; i < c->n_arms; i++)
			bandit_update(&s->op, c->arms[i], gain->improves ? 1.0 : 0.0);
	if (index < 0)
		return PRESSO_OK; /* screened out at low fidelity: not in the archive */
	if (s->n_pending == s->cap_pending) {
		int cap = s->cap_pending ? 2 * s->cap_pending : 64;
		int *np = realloc(s->pending, sizeof(int) * (size_t)cap);
		if (!np)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		s->pending = np;
		s->cap_pending = cap;
	}
	s->pending[s->n_pending++] = index;
	return PRESSO_OK;
}

static const struct strategy_ops {
	enum presso_status (*begin)(struct strategy *s);
	void (*propose)(struct strategy *s, struct rng *r, struct candidate *c);
	bool has_population;
} ops[STRATEGY_COUNT] = {
	[STRATEGY_RANDOM] = {NULL, random_propose, false},
	[STRATEGY_BANDIT] = {bandit_begin, bandit_propose, false},
	[STRATEGY_EVOLUTION] = {population_begin, evolution_propose, true},
	[STRATEGY_HYBRID] = {population_begin, hybrid_propose, true},
};
_Static_assert(sizeof ops / sizeof ops[0] == STRATEGY_COUNT, "every strategy needs its ops");

/* The first generation's uniform policies: every weight bit width some layer
 * allows, widest first, without then with bias correction, at most half the
 * population (the seeds included). */
static void uniform_plan(struct strategy *s)
{
	bool has[9] = {false};
	for (int l = 0; l < s->sp->n_layers; l++) {
		const struct knob_domain *d = &s->sp->ls[l].d[KNOB_BITS];
		for (int i = 0; i < d->n; i++)
			has[(int)d->v[i]] = true;
	}
	int cap = s->sp->search.population / 2 - SPACE_N_SEEDS;
	for (int pass = 0; pass < 2; pass++)
		for (int b = 8; b >= 1; b--)
			if (has[b] && s->n_uniform < cap) {
				s->uniform_bits[s->n_uniform] = b;
				s->uniform_bias[s->n_uniform++] = pass == 1;
			}
}

/* --- life cycle ------------------------------------------------------------------ */

enum presso_status strategy_create(const struct space *sp, const struct archive *a,
				   struct strategy **out)
{
	*out = NULL;
	struct strategy *s = calloc(1, sizeof *s);
	if (!s)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status st = PRESSO_OK;
	const struct space_search *q = &sp->search;
	s->kind = q->strategy;
	s->sp = sp;
	s->a = a;
	int p = q->population, n_arms = evolution_n_arms(sp);
	s->pop = malloc(sizeof(int) * (size_t)p);
	s->rank = malloc(sizeof(int) * (size_t)p);
	s->crowd = malloc(sizeof(double) * (size_t)p);
	s->allowed = malloc(sizeof(bool) * (size_t)(n_arms > 0 ? n_arms : 1));
	s->scratch = malloc((size_t)sp->n_genes);
	if (!s->pop || !s->rank || !s->crowd || !s->allowed || !s->scratch) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	if (s->kind == STRATEGY_BANDIT) {
		s->genes = calloc((size_t)sp->n_free, sizeof *s->genes);
		if (!s->genes) {
			st = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		for (int i = 0; i < sp->n_free && st == PRESSO_OK; i++) {
			int g = sp->free_genes[i];
			int n_values = sp->ls[g / KNOB_COUNT].d[g % KNOB_COUNT].n;
			st = bandit_init(&s->genes[i], q->bandit, n_values, q->ucb_c, q->discount);
		}
	}
	if (s->kind == STRATEGY_HYBRID)
		st = bandit_init(&s->op, q->bandit, n_arms, q->ucb_c, q->discount);
	if (st != PRESSO_OK)
		goto fail;
	uniform_plan(s);
	*out = s;
	return PRESSO_OK;
fail:
	strategy_free(s);
	return st;
}

void strategy_free(struct strategy *s)
{
	if (!s)
		return;
	for (int i = 0; s->genes && i < s->sp->n_free; i++)
		bandit_free(&s->genes[i]);
	free(s->genes);
	bandit_free(&s->op);
	free(s->pop);
	free(s->rank);
	free(s->crowd);
	free(s->pending);
	free(s->allowed);
	free(s->scratch);
	free(s->greedy);
	free(s);
}

enum presso_status strategy_use_sensitivity(struct strategy *s, const struct sensitivity *sn)
{
	const struct space *sp = s->sp;
	size_t gb = (size_t)sp->n_genes;
	free(s->greedy);
	s->n_greedy = 0;
	if (!(s->greedy = malloc(gb * SENSITIVITY_N_BUDGETS)))
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int b = 0; b < SENSITIVITY_N_BUDGETS; b++)
		sensitivity_greedy_genome(sn, sp, sensitivity_budgets[b], s->greedy + gb * (size_t)b);
	s->n_greedy = SENSITIVITY_N_BUDGETS;
	for (int i = 0; i < sp->n_free; i++) {
		int gene = sp->free_genes[i], l = gene / KNOB_COUNT;
		enum knob k = (enum knob)(gene % KNOB_COUNT);
		const struct knob_domain *d = &sp->ls[l].d[k];
		double sum = 0;
		int n = 0;
		for (int j = 0; j < d->n; j++) {
			double drop = sensitivity_drop(sn, l, k, d->v[j]);
			if (isnan(drop))
				continue;
			double prior = exp(-fmax(drop, 0) / SENSITIVITY_PRIOR_POINTS);
			if (s->kind == STRATEGY_BANDIT)
				bandit_set_prior(&s->genes[i], j, 1, prior);
			sum += prior;
			n++;
		}
		if (s->kind == STRATEGY_HYBRID) {
			bandit_set_prior(&s->op, 2 * i, 1, n ? 0.5 * sum / n : 0.5);
			bandit_set_prior(&s->op, 2 * i + 1, 1, 0.5);
		}
	}
	return PRESSO_OK;
}

/* --- ask ------------------------------------------------------------------------- */

/* The next genome after g in mixed-radix order over the free genes (wraps). */
static void next_genome(const struct space *sp, uint8_t *g)
{
	for (int i = 0; i < sp->n_free; i++) {
		int gene = sp->free_genes[i];
		if (++g[gene] < sp->ls[gene / KNOB_COUNT].d[gene % KNOB_COUNT].n)
			return;
		g[gene] = 0;
	}
}

static bool find_fallback(struct strategy *s, struct rng *r, strategy_claim_fn claim, void *ctx,
			  struct candidate *c)
{
	for (int t = 0; t < RANDOM_ATTEMPTS; t++) {
		random_propose(s, r, c);
		if (claim(ctx, c->genome))
			return true;
	}
	if (!(space_size(s->sp) <= ENUMERATE_MAX_SIZE))
		return false;
	random_propose(s, r, c);
	for (int t = 0; t < ENUMERATE_MAX_STEPS; t++) {
		next_genome(s->sp, c->genome);
		if (claim(ctx, c->genome))
			return true;
	}
	return false;
}

enum presso_status strategy_ask(struct strategy *s, struct rng *r, strategy_claim_fn claim,
				void *claim_ctx, int n, struct candidate *out, int *n_out)
{
	enum presso_status st = PRESSO_OK;
	*n_out = 0;
	if (ops[s->kind].begin && (st = ops[s->kind].begin(s)) != PRESSO_OK)
		return st;
	for (int k = 0; k < SPACE_N_SEEDS && *n_out < n; k++) {
		struct candidate *c = &out[*n_out];
		c->n_arms = 0;
		c->origin = ORIGIN_SEED;
		if ((st = space_genome_seed(s->sp, k, c->genome)) != PRESSO_OK)
			return st;
		if (claim(claim_ctx, c->genome))
			(*n_out)++;
	}
	for (int k = 0; k < s->n_greedy && *n_out < n; k++) {
		struct candidate *c = &out[*n_out];
		c->n_arms = 0;
		c->origin = ORIGIN_SEED;
		memcpy(c->genome, s->greedy + (size_t)k * (size_t)s->sp->n_genes,
		       (size_t)s->sp->n_genes);
		if (claim(claim_ctx, c->genome))
			(*n_out)++;
	}
	while (*n_out < n) {
		struct candidate *c = &out[*n_out];
		bool found = false;
		for (int t = 0; t < PROPOSE_ATTEMPTS && !found; t++) {
			c->n_arms = 0;
			ops[s->kind].propose(s, r, c);
			found = claim(claim_ctx, c->genome);
		}
		if (!found) {
			c->n_arms = 0;
			found = find_fallback(s, r, claim, claim_ctx, c);
		}
		if (!found)
			break;
		(*n_out)++;
	}
	return PRESSO_OK;
}

/* --- tell ------------------------------------------------------------------------ */

enum presso_status strategy_tell(struct strategy *s, const struct candidate *c, int64_t number,
				 int index, const struct archive_gain *gain)
{
	if (number > s->last_told)
		s->last_told = number;
	if (s->kind == STRATEGY_BANDIT)
		bandit_learn(s, c, gain);
	if (ops[s->kind].has_population)
		return population_learn(s, c, index, gain);
	return PRESSO_OK;
}

int64_t strategy_last_told(const struct strategy *s)
{
	return s->last_told;
}

const struct bandit *strategy_operator_bandit(const struct strategy *s)
{
	return s->kind == STRATEGY_HYBRID ? &s->op : NULL;
}

/* --- save / load ----------------------------------------------------------------- */

static cJSON *numbers(const struct archive *a, const int *idx, int n)
{
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; arr && i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a->pts[idx[i]].number));
	return arr;
}

static char *print_and_delete(cJSON *j, unsigned since)
{
	char *text = json_print(j, false, since);
	cJSON_Delete(j);
	return text;
}

enum presso_status strategy_save(const struct strategy *s, char **population, char **bandit)
{
	*population = *bandit = NULL;
	unsigned since = json_failures();
	cJSON *p = cJSON_CreateObject();
	if (p) {
		cJSON_AddStringToObject(p, "strategy", space_strategy_name(s->kind));
		cJSON_AddNumberToObject(p, "generation", s->generation);
		cJSON_AddNumberToObject(p, "last_told", (double)s->last_told);
		cJSON_AddNumberToObject(p, "next_uniform", s->next_uniform);
		cJSON_AddItemToObject(p, "population", numbers(s->a, s->pop, s->n_pop));
		cJSON_AddItemToObject(p, "pending", numbers(s->a, s->pending, s->n_pending));
	}
	*population = print_and_delete(p, since);
	cJSON *b = NULL;
	if (s->kind == STRATEGY_HYBRID) {
		b = bandit_to_json(&s->op);
	} else if (s->kind == STRATEGY_BANDIT) {
		b = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(b, "genes");
		for (int i = 0; arr && i < s->sp->n_free; i++)
			cJSON_AddItemToArray(arr, bandit_to_json(&s->genes[i]));
	} else {
		b = cJSON_CreateNull();
	}
	*bandit = print_and_delete(b, since);
	if (!*population || !*bandit) {
		free(*population);
		free(*bandit);
		*population = *bandit = NULL;
		return status_fail(PRESSO_E_NOMEM, "out of memory saving the search state");
	}
	return PRESSO_OK;
}

/* Archive indices of the trial numbers in arr (missing ones dropped). */
static int load_members(const struct archive *a, const cJSON *arr, int *out, int cap)
{
	int n = 0;
	for (const cJSON *e = arr ? arr->child : NULL; e && n < cap; e = e->next) {
		int i = cJSON_IsNumber(e) ? archive_find(a, (int64_t)e->valuedouble) : -1;
		if (i >= 0)
			out[n++] = i;
	}
	return n;
}

enum presso_status strategy_load(struct strategy *s, const char *population, const char *bandit)
{
	enum presso_status st = PRESSO_OK;
	bool oom_p, oom_b;
	cJSON *p = json_parse(population ? population : "", NULL, false, &oom_p);
	cJSON *b = json_parse(bandit ? bandit : "", NULL, false, &oom_b);
	if (oom_p || oom_b) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory reading the saved search state");
		goto done;
	}
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(p, "strategy");
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(p, "generation");
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(p, "last_told");
	const cJSON *pop = cJSON_GetObjectItemCaseSensitive(p, "population");
	const cJSON *pend = cJSON_GetObjectItemCaseSensitive(p, "pending");
	if (!cJSON_IsObject(p) || !cJSON_IsString(kind) || !cJSON_IsNumber(gen) ||
	    !cJSON_IsNumber(last) || !cJSON_IsArray(pop) || !cJSON_IsArray(pend) || !b) {
		st = status_fail(PRESSO_E_FORMAT, "the saved search state is not one presso wrote");
		goto done;
	}
	if (strcmp(kind->valuestring, space_strategy_name(s->kind)) != 0) {
		st = status_fail(PRESSO_E_FORMAT,
				 "the saved search state is of strategy '%s', not '%s'",
				 kind->valuestring, space_strategy_name(s->kind));
		goto done;
	}
	s->generation = (int)gen->valuedouble;
	s->last_told = (int64_t)last->valuedouble;
	/* where the first generation's uniform policies stand (absent in states
	 * older presso wrote: from the first, which the claims then skip) */
	const cJSON *uni = cJSON_GetObjectItemCaseSensitive(p, "next_uniform");
	s->next_uniform = 0;
	if (cJSON_IsNumber(uni) && uni->valuedouble >= 0 && uni->valuedouble <= s->n_uniform)
		s->next_uniform = (int)uni->valuedouble;
	s->n_pop = load_members(s->a, pop, s->pop, s->sp->search.population);
	int n_pend = cJSON_GetArraySize(pend);
	if (n_pend > s->cap_pending) {
		int *np = realloc(s->pending, sizeof(int) * (size_t)n_pend);
		if (!np) {
			st = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto done;
		}
		s->pending = np;
		s->cap_pending = n_pend;
	}
	s->n_pending = load_members(s->a, pend, s->pending, n_pend);
	if (ops[s->kind].has_population && s->n_pop > 0 &&
	    (st = evolution_rank_crowd(s->a, s->pop, s->n_pop, s->rank, s->crowd)) != PRESSO_OK)
		goto done;
	if (s->kind == STRATEGY_HYBRID) {
		st = bandit_from_json(&s->op, b, "search state 'bandit'");
	} else if (s->kind == STRATEGY_BANDIT) {
		const cJSON *genes = cJSON_GetObjectItemCaseSensitive(b, "genes");
		if (!cJSON_IsArray(genes) || cJSON_GetArraySize(genes) != s->sp->n_free) {
			st = status_fail(PRESSO_E_FORMAT,
					 "search state 'bandit': expected %d per-gene bandits",
					 s->sp->n_free);
			goto done;
		}
		int i = 0;
		for (const cJSON *e = genes->child; e && st == PRESSO_OK; e = e->next, i++)
			st = bandit_from_json(&s->genes[i], e, "search state 'bandit'");
	}
done:
	cJSON_Delete(p);
	cJSON_Delete(b);
	return st;
}

/* --- a batch of candidates ------------------------------------------------------- */

static const char hex_digits[] = "0123456789abcdef";

enum presso_status strategy_save_batch(const struct strategy *s, const struct candidate *c, int n,
				       char **text)
{
	*text = NULL;
	unsigned since = json_failures();
	size_t gb = (size_t)s->sp->n_genes;
	char *hex = malloc(2 * gb + 1);
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "candidates");
	for (int i = 0; hex && arr && i < n; i++) {
		for (size_t k = 0; k < gb; k++) {
			hex[2 * k] = hex_digits[c[i].genome[k] >> 4];
			hex[2 * k + 1] = hex_digits[c[i].genome[k] & 15];
		}
		hex[2 * gb] = '\0';
		cJSON *e = cJSON_CreateObject();
		if (!cJSON_AddItemToArray(arr, e)) {
			cJSON_Delete(e);
			break;
		}
		cJSON_AddStringToObject(e, "genome", hex);
		cJSON_AddStringToObject(e, "origin", strategy_origin_name(c[i].origin));
		cJSON *arms = cJSON_AddArrayToObject(e, "arms");
		for (int a = 0; arms && a < c[i].n_arms; a++)
			cJSON_AddItemToArray(arms, cJSON_CreateNumber(c[i].arms[a]));
	}
	free(hex);
	/* every candidate whole, or nothing: a short batch would drop candidates */
	bool whole = arr && cJSON_GetArraySize(arr) == n;
	for (const cJSON *e = arr ? arr->child : NULL; whole && e; e = e->next)
		whole = cJSON_GetArraySize(e) == 3;
	*text = whole ? print_and_delete(root, since) : (cJSON_Delete(root), NULL);
	if (!*text)
		return status_fail(PRESSO_E_NOMEM, "out of memory saving the search state");
	return PRESSO_OK;
}

static int hex_value(char ch)
{
	const char *p = ch ? strchr(hex_digits, ch) : NULL;
	return p ? (int)(p - hex_digits) : -1;
}

/* One saved candidate into c (genome already allocated); false if it does not fit. */
static bool load_candidate(const struct strategy *s, const cJSON *e, struct candidate *c)
{
	const cJSON *genome = cJSON_GetObjectItemCaseSensitive(e, "genome");
	const cJSON *origin = cJSON_GetObjectItemCaseSensitive(e, "origin");
	const cJSON *arms = cJSON_GetObjectItemCaseSensitive(e, "arms");
	const struct space *sp = s->sp;
	if (!cJSON_IsString(genome) || !cJSON_IsString(origin) || !cJSON_IsArray(arms) ||
	    strlen(genome->valuestring) != 2 * (size_t)sp->n_genes ||
	    cJSON_GetArraySize(arms) > STRATEGY_MAX_ARMS)
		return false;
	for (int k = 0; k < sp->n_genes; k++) {
		int hi = hex_value(genome->valuestring[2 * k]);
		int lo = hex_value(genome->valuestring[2 * k + 1]);
		if (hi < 0 || lo < 0 || 16 * hi + lo >= sp->ls[k / KNOB_COUNT].d[k % KNOB_COUNT].n)
			return false;
		c->genome[k] = (uint8_t)(16 * hi + lo);
	}
	c->origin = ORIGIN_COUNT;
	for (int o = 0; o < ORIGIN_COUNT; o++)
		if (strcmp(origin->valuestring, origin_names[o]) == 0)
			c->origin = (enum candidate_origin)o;
	if (c->origin == ORIGIN_COUNT)
		return false;
	c->n_arms = 0;
	int n_arms = s->kind == STRATEGY_HYBRID ? s->op.n_arms : 0;
	for (const cJSON *a = arms->child; a; a = a->next) {
		if (!cJSON_IsNumber(a) || a->valuedouble != (int)a->valuedouble ||
		    (int)a->valuedouble < 0 || (int)a->valuedouble >= n_arms)
			return false;
		c->arms[c->n_arms++] = (int)a->valuedouble;
	}
	return true;
}

enum presso_status strategy_load_batch(const struct strategy *s, const char *text,
				       struct candidate **out, int *n)
{
	*out = NULL;
	*n = 0;
	bool oom = false;
	cJSON *root = json_parse(text ? text : "", NULL, false, &oom);
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "candidates");
	struct candidate *c = NULL;
	int k = 0;
	enum presso_status st = PRESSO_OK;
	if (oom) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory reading the saved search state");
		goto done;
	}
	if (!cJSON_IsObject(root) || !cJSON_IsArray(arr)) {
		st = status_fail(PRESSO_E_FORMAT, "search state 'batch': not one presso wrote");
		goto done;
	}
	int cap = cJSON_GetArraySize(arr);
	if (!(c = calloc((size_t)(cap ? cap : 1), sizeof *c))) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	for (const cJSON *e = arr->child; e && st == PRESSO_OK; e = e->next, k++) {
		if (!(c[k].genome = malloc((size_t)s->sp->n_genes)))
			st = status_fail(PRESSO_E_NOMEM, "out of memory");
		else if (!load_candidate(s, e, &c[k]))
			st = status_fail(PRESSO_E_FORMAT,
					 "search state 'batch': candidate %d does not fit the space",
					 k + 1);
	}
done:
	cJSON_Delete(root);
	if (st != PRESSO_OK) {
		strategy_batch_free(c, k);
		return st;
	}
	*out = c;
	*n = k;
	return PRESSO_OK;
}

void strategy_batch_free(struct candidate *c, int n)
{
	for (int i = 0; c && i < n; i++)
		free(c[i].genome);
	free(c);
}
