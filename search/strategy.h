/* strategy.h - the search strategies behind one ask/tell interface:
 * random, bandit, evolution (NSGA-II) and hybrid (NSGA-II whose mutations a
 * bandit chooses). search/README.md describes each and its reward.
 *
 * The driver asks for a batch of new candidates, evaluates them, and tells
 * the strategy each result in candidate order; the strategy's whole state is
 * saved after every ask and every tell (strategy_save, with the driver's RNG
 * and the batch asked for, strategy_save_batch) and restored on resume
 * (strategy_load). A strategy never proposes a policy the claim
 * callback refuses (one already evaluated or proposed in the study); every
 * strategy proposes the two seeds (W8A8, W4A8) first while they are unclaimed
 * (then, seeded from a sensitivity table, its greedy policies).
 */
#ifndef PRESSO_STRATEGY_H
#define PRESSO_STRATEGY_H

#include <stdbool.h>
#include <stdint.h>

#include "search/archive.h"
#include "base/rng.h"
#include "search/sensitivity.h"
#include "search/space.h"

#define STRATEGY_MAX_ARMS 8 /* operator arms applied to one hybrid child */

/* The bandit strategy's reward: exp(-distance / REWARD_SCALE), distance in
 * normalised objective units (archive.h), so a trial on the front earns 1 and
 * one 2 % of the reference box behind it earns 1/e. */
#define STRATEGY_REWARD_SCALE 0.02

enum candidate_origin {
	ORIGIN_SEED,     /* W8A8 or W4A8 */
	ORIGIN_RANDOM,   /* uniform over the space (also the fallback of the others) */
	ORIGIN_BANDIT,   /* every free gene chosen by its bandit */
	ORIGIN_CHILD,    /* crossover + mutation of two population members */
	ORIGIN_REQUEUE,  /* a lost trial's policy, evaluated again */
	ORIGIN_COUNT
};

const char *strategy_origin_name(enum candidate_origin o);

struct candidate {
	uint8_t *genome;                  /* sp->n_genes bytes, the caller's buffer */
	enum candidate_origin origin;
	int n_arms;                       /* hybrid: operator arms applied */
	int arms[STRATEGY_MAX_ARMS];
};

/* Claims a genome for evaluation: true (and remembered) if no trial of the
 * study has evaluated or been given its policy, false otherwise. */
typedef bool (*strategy_claim_fn)(void *ctx, const uint8_t *genome);

struct strategy;

/* A strategy of kind sp->search.strategy over the archive a (the driver's;
 * both must outlive it). Free with strategy_free(). */
enum presso_status strategy_create(const struct space *sp, const struct archive *a,
				   struct strategy **out);

void strategy_free(struct strategy *s);

/* Seeds the strategy from a per-layer sensitivity table, once, after
 * strategy_create and before the first ask or strategy_load (which then
 * replaces the bandit statistics with the saved ones, priors included):
 *  - the greedy genomes of sensitivity_budgets[] become seeds, proposed after
 *    W8A8 and W4A8 while unclaimed (origin "seed");
 *  - bandit: each measured value of a gene starts with one pseudo-pull of
 *    reward exp(-drop / SENSITIVITY_PRIOR_POINTS);
 *  - hybrid: every arm starts with one pseudo-pull, reward 0.5 for "up" arms
 *    and arms of unmeasured genes; for a "down" arm 0.5 times the mean of
 *    exp(-drop / SENSITIVITY_PRIOR_POINTS) over its gene's measured values.
 * Deterministic in the table, so a resumed study is seeded the same. */
enum presso_status strategy_use_sensitivity(struct strategy *s, const struct sensitivity *sn);

/* Proposes up to n new candidates into out[0..n) (each out[i].genome set by
 * the caller), all claimed. *n_out < n only when no new policy could be found
 * (the space is nearly exhausted). */
enum presso_status strategy_ask(struct strategy *s, struct rng *r, strategy_claim_fn claim,
				void *claim_ctx, int n, struct candidate *out, int *n_out);

/* Feeds back a completed candidate: its archive index (already added) and
 * what it brought (archive_gain before it was added). index -1: a candidate
 * the multi-fidelity search screened out on its low-fidelity score (not in
 * the archive): the bandits learn from gain (which then never "improves"),
 * the population does not take it. Tells come in trial number order, except
 * that with search.fidelity a batch's screened-out candidates are told
 * before its promoted ones (driver.c). */
enum presso_status strategy_tell(struct strategy *s, const struct candidate *c, int64_t number,
				 int index, const struct archive_gain *gain);

/* The highest trial number told so far (0 if none). */
int64_t strategy_last_told(const struct strategy *s);

/* The state as two JSON texts (malloc'd; the caller frees): the population
 * (generation, members and pending offspring as trial numbers, last trial
 * told, the next uniform policy of the first generation) and the bandit
 * statistics ("null" for strategies without one). */
enum presso_status strategy_save(const struct strategy *s, char **population, char **bandit);

/* Restores a saved state; trial numbers are looked up in the archive (members
 * no longer complete are dropped). PRESSO_E_FORMAT if the texts do not fit. */
enum presso_status strategy_load(struct strategy *s, const char *population, const char *bandit);

/* A batch of candidates as JSON text (malloc'd; the caller frees):
 * {"candidates": [{"genome": "0003010200...", "origin": "child", "arms": [7]}]},
 * the genome two hex digits per gene. What a resume needs to hand out the
 * candidates of a batch that was drawn but not finished, and to tell the
 * strategy their results exactly as it would have been told them. */
enum presso_status strategy_save_batch(const struct strategy *s, const struct candidate *c, int n,
				       char **text);

/* Reads a text strategy_save_batch wrote into *out (malloc'd, *n of them, each
 * genome malloc'd; free with strategy_batch_free). PRESSO_E_FORMAT if it does
 * not fit the space (a gene outside its domain, an unknown origin or arm). */
enum presso_status strategy_load_batch(const struct strategy *s, const char *text,
				       struct candidate **out, int *n);

void strategy_batch_free(struct candidate *c, int n);

/* For reports: the hybrid strategy's operator bandit (NULL for others). */
const struct bandit *strategy_operator_bandit(const struct strategy *s);

#endif
