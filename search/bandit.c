/* bandit.c - UCB1 and Thompson sampling with discounting (see bandit.h).
 *
 * Invariants: 0 <= sum[a] <= n[a] for every arm (rewards are clamped to
 * [0, 1] and discounting scales both alike); pending[a] >= 0.
 */
#include "search/bandit.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const algo_names[BANDIT_ALGO_COUNT] = {
	[BANDIT_UCB1] = "ucb",
	[BANDIT_THOMPSON] = "thompson",
};
_Static_assert(sizeof algo_names / sizeof algo_names[0] == BANDIT_ALGO_COUNT,
	       "every bandit algorithm needs a name");

const char *bandit_algo_name(enum bandit_algo a)
{
	return (unsigned)a < BANDIT_ALGO_COUNT ? algo_names[a] : "?";
}

bool bandit_algo_lookup(const char *name, enum bandit_algo *out)
{
	if (strcmp(name, "ucb1") == 0) {
		*out = BANDIT_UCB1;
		return true;
	}
	for (int a = 0; a < BANDIT_ALGO_COUNT; a++)
		if (strcmp(name, algo_names[a]) == 0) {
			*out = (enum bandit_algo)a;
			return true;
		}
	return false;
}

enum presso_status bandit_init(struct bandit *b, enum bandit_algo algo, int n_arms, double ucb_c,
			       double discount)
{
	memset(b, 0, sizeof *b);
	PRESSO_CHECK(n_arms >= 1 && (unsigned)algo < BANDIT_ALGO_COUNT);
	PRESSO_CHECK(discount > 0 && discount <= 1 && ucb_c >= 0);
	b->algo = algo;
	b->n_arms = n_arms;
	b->ucb_c = ucb_c;
	b->discount = discount;
	b->n = calloc((size_t)n_arms, sizeof *b->n);
	b->sum = calloc((size_t)n_arms, sizeof *b->sum);
	b->pulls = calloc((size_t)n_arms, sizeof *b->pulls);
	b->pending = calloc((size_t)n_arms, sizeof *b->pending);
	b->score = calloc((size_t)n_arms, sizeof *b->score);
	if (!b->n || !b->sum || !b->pulls || !b->pending || !b->score) {
		bandit_free(b);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	return PRESSO_OK;
}

void bandit_free(struct bandit *b)
{
	if (!b)
		return;
	free(b->n);
	free(b->sum);
	free(b->pulls);
	free(b->pending);
	free(b->score);
	memset(b, 0, sizeof *b);
}

static bool same_score(double a, double b)
{
	if (a == b)
		return true;
	return isfinite(a) && isfinite(b) && fabs(a - b) <= 1e-12 * fabs(b);
}

/* Among the allowed arms with the largest score (equal within 1e-12
 * relative), one at random. */
static int argmax_random(const double *score, const bool *allowed, int n, struct rng *r)
{
	int best = -1, n_ties = 0;
	for (int a = 0; a < n; a++) {
		if (allowed && !allowed[a])
			continue;
		if (best >= 0 && same_score(score[a], score[best])) {
			/* reservoir sampling over the tied arms */
			n_ties++;
			if (rng_below(r, (uint64_t)n_ties) == 0)
				best = a;
		} else if (best < 0 || score[a] > score[best]) {
			best = a;
			n_ties = 1;
		}
	}
	return best;
}

int bandit_pick(struct bandit *b, const bool *allowed, struct rng *r)
{
	double *score = b->score;
	double total = 0;
	for (int a = 0; a < b->n_arms; a++)
		total += b->n[a] + b->pending[a];
	for (int a = 0; a < b->n_arms; a++) {
		if (allowed && !allowed[a]) {
			score[a] = -INFINITY;
			continue;
		}
		if (b->algo == BANDIT_THOMPSON) {
			score[a] = rng_beta(r, 1.0 + b->sum[a], 1.0 + b->n[a] - b->sum[a]);
			continue;
		}
		double n_eff = b->n[a] + b->pending[a];
		if (n_eff <= 0) {
			score[a] = INFINITY; /* never tried: first */
			continue;
		}
		/* an arm picked in this batch but not yet rewarded is optimistic */
		double mean = b->n[a] > 0 ? b->sum[a] / b->n[a] : 1.0;
		score[a] = mean + b->ucb_c * sqrt(log(total > 1 ? total : 1) / n_eff);
	}
	int best = argmax_random(score, allowed, b->n_arms, r);
	if (best >= 0)
		b->pending[best]++;
	return best;
}

void bandit_update(struct bandit *b, int arm, double reward)
{
	PRESSO_CHECK(arm >= 0 && arm < b->n_arms);
	if (!(reward >= 0))
		reward = 0;
	if (reward > 1)
		reward = 1;
	if (b->discount < 1)
		for (int a = 0; a < b->n_arms; a++) {
			b->n[a] *= b->discount;
			b->sum[a] *= b->discount;
		}
	b->n[arm] += 1;
	b->sum[arm] += reward;
	b->pulls[arm]++;
	if (b->pending[arm] > 0)
		b->pending[arm]--;
}

void bandit_clear_pending(struct bandit *b)
{
	memset(b->pending, 0, sizeof(int) * (size_t)b->n_arms);
}

void bandit_set_prior(struct bandit *b, int arm, double n, double reward_sum)
{
	PRESSO_CHECK(arm >= 0 && arm < b->n_arms && n >= 0 && reward_sum >= 0 && reward_sum <= n);
	b->n[arm] = n;
	b->sum[arm] = reward_sum;
}

double bandit_mean(const struct bandit *b, int arm)
{
	return b->n[arm] > 0 ? b->sum[arm] / b->n[arm] : NAN;
}

/* n finite doubles as a JSON array that reads back bit for bit: 17 significant
 * digits identify a double exactly. (cJSON's own numbers print 15 digits
 * whenever they read back within an epsilon, which loses the last bits: a
 * resumed bandit would then pick from slightly different statistics.) */
static cJSON *exact_array(const double *v, int n)
{
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; arr && i < n; i++) {
		char text[32];
		snprintf(text, sizeof text, "%.17g", v[i]);
		cJSON *x = cJSON_CreateRaw(text);
		if (!cJSON_AddItemToArray(arr, x)) {
			cJSON_Delete(x);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

cJSON *bandit_to_json(const struct bandit *b)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *n = exact_array(b->n, b->n_arms);
	cJSON *s = exact_array(b->sum, b->n_arms);
	cJSON *p = cJSON_CreateArray();
	for (int a = 0; p && a < b->n_arms; a++)
		cJSON_AddItemToArray(p, cJSON_CreateNumber((double)b->pulls[a]));
	if (!o || !n || !s || !p) {
		cJSON_Delete(o);
		cJSON_Delete(n);
		cJSON_Delete(s);
		cJSON_Delete(p);
		return NULL;
	}
	cJSON_AddStringToObject(o, "algo", algo_names[b->algo]);
	cJSON_AddItemToObject(o, "n", n);
	cJSON_AddItemToObject(o, "sum", s);
	cJSON_AddItemToObject(o, "pulls", p);
	return o;
}

/* obj[key] as n finite numbers >= 0 into out. */
static bool read_array(const cJSON *obj, const char *key, int n, double *out)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
		return false;
	int i = 0;
	for (const cJSON *it = arr->child; it; it = it->next, i++) {
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0)
			return false;
		out[i] = it->valuedouble;
	}
	return true;
}

enum presso_status bandit_from_json(struct bandit *b, const cJSON *obj, const char *what)
{
	int n = b->n_arms;
	double *tmp = malloc(sizeof(double) * 3 * (size_t)n);
	if (!tmp)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	const cJSON *algo = cJSON_GetObjectItemCaseSensitive(obj, "algo");
	bool ok = cJSON_IsObject(obj) && cJSON_IsString(algo) &&
		  strcmp(algo->valuestring, algo_names[b->algo]) == 0 &&
		  read_array(obj, "n", n, tmp) && read_array(obj, "sum", n, tmp + n) &&
		  read_array(obj, "pulls", n, tmp + 2 * n);
	for (int a = 0; ok && a < n; a++)
		ok = tmp[n + a] <= tmp[a] * (1 + 1e-9) + 1e-12;
	if (ok)
		for (int a = 0; a < n; a++) {
			b->n[a] = tmp[a];
			b->sum[a] = tmp[n + a];
			b->pulls[a] = (int64_t)tmp[2 * n + a];
			b->pending[a] = 0;
		}
	free(tmp);
	if (!ok)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: the saved bandit statistics do not fit this search (%d %s "
				   "arms expected)",
				   what, n, algo_names[b->algo]);
	return PRESSO_OK;
}
