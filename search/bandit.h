/* bandit.h - multi-armed bandit statistics and arm choice: UCB1 and Thompson
 * sampling over rewards in [0, 1], with optional discounting.
 *
 * A bandit is a set of arms, each with a (discounted) pull count n and reward
 * sum s. bandit_pick() chooses among the allowed arms:
 *  - UCB1 (Auer, Cesa-Bianchi and Fischer 2002): an arm never pulled first
 *    (ties broken at random), else the largest s/n + c * sqrt(ln N / n), N the
 *    sum of the counts. Picks made since the last update count as pulls in
 *    the bonus (n + pending), so a batch of picks made before any reward comes
 *    back spreads over the arms instead of repeating the same one.
 *  - Thompson sampling (Agrawal and Goyal 2012): a draw from each arm's
 *    Beta(1 + s, 1 + n - s) posterior, the largest wins. A reward in [0, 1]
 *    counts as that fraction of a success, so Bernoulli rewards give the exact
 *    Beta-Bernoulli posterior.
 * With discount g < 1 every update first multiplies all counts and sums of
 * the bandit by g (Garivier and Moulines 2011), so old rewards fade: the
 * search's rewards are measured against a front that keeps moving.
 *
 * The statistics round-trip through JSON exactly (written with 17 significant
 * digits), so a resumed search continues with the same numbers, bit for bit.
 */
#ifndef PRESSO_BANDIT_H
#define PRESSO_BANDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/rng.h"
#include "base/status.h"

struct cJSON;

enum bandit_algo { BANDIT_UCB1, BANDIT_THOMPSON, BANDIT_ALGO_COUNT };

/* "ucb", "thompson". */
const char *bandit_algo_name(enum bandit_algo a);

/* Looks a name up ("ucb", "ucb1", "thompson"); false if unknown. */
bool bandit_algo_lookup(const char *name, enum bandit_algo *out);

struct bandit {
	enum bandit_algo algo;
	int n_arms;
	double ucb_c;    /* UCB1 exploration constant (sqrt(2) in the paper) */
	double discount; /* in (0, 1]: 1 keeps every reward at full weight */
	double *n;       /* discounted pulls that came back with a reward */
	double *sum;     /* discounted reward sum */
	int64_t *pulls;  /* raw number of rewards received (for reports) */
	int *pending;    /* picks not yet rewarded (UCB1's batch correction) */
	double *score;   /* scratch for bandit_pick, which so never allocates */
};

/* Sets up n_arms >= 1 arms with no statistics. Free with bandit_free(). */
enum presso_status bandit_init(struct bandit *b, enum bandit_algo algo, int n_arms, double ucb_c,
			       double discount);

/* Frees the arrays of *b (not b itself); a zeroed bandit is a no-op. */
void bandit_free(struct bandit *b);

/* Chooses an arm among those with allowed[a] true (allowed may be NULL: all),
 * and counts it as pending. Returns -1 when no arm is allowed. */
int bandit_pick(struct bandit *b, const bool *allowed, struct rng *r);

/* Records a reward in [0, 1] (clamped) for arm, releasing one pending pick. */
void bandit_update(struct bandit *b, int arm, double reward);

/* Forgets the pending picks (at the start of a batch: the last one is done). */
void bandit_clear_pending(struct bandit *b);

/* Gives an arm without rewards yet a prior: n pseudo-pulls whose rewards sum
 * to reward_sum (0 <= reward_sum <= n). The pulls counter stays 0. */
void bandit_set_prior(struct bandit *b, int arm, double n, double reward_sum);

/* The arm's mean reward s/n; NAN if it has none. */
double bandit_mean(const struct bandit *b, int arm);

/* The statistics as a JSON object {"algo", "n", "sum", "pulls"} (caller
 * deletes it; NULL when out of memory). */
struct cJSON *bandit_to_json(const struct bandit *b);

/* Restores statistics written by bandit_to_json into an initialised bandit
 * with the same number of arms; PRESSO_E_FORMAT naming `what` otherwise. */
enum presso_status bandit_from_json(struct bandit *b, const struct cJSON *obj, const char *what);

#endif
