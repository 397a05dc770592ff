/* evolution.c - NSGA-II selection and variation (see evolution.h).
 *
 * Algorithm (Deb, Pratap, Agarwal and Meyarivan 2002, with constraint-
 * domination as in its section VI):
 *   1. rank parents + offspring with pareto_rank(): feasible points by
 *      non-domination, then infeasible points by increasing violation;
 *   2. fill the next population front by front; the front that does not fit
 *      is cut by crowding distance (pareto_crowding: sparse regions first),
 *      which keeps the extremes of every front (infinite distance);
 *   3. parents for the next offspring come from binary tournaments on (rank,
 *      crowding); a child is a uniform crossover across layers (a layer's
 *      choices travel together: bits and bias correction interact) followed
 *      by mutation.
 * Ranks use the normalised coordinates z (all minimised), which order points
 * exactly as the raw objectives do; crowding divides by each objective's range
 * anyway. Everything is deterministic given the RNG state and the archive.
 */
#include "search/evolution.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ranked {
	int cand;     /* position in cand[] */
	int rank;
	double crowd;
	int64_t number;
};

/* Rank ascending, then crowding descending, then trial number ascending. */
static int by_rank_crowd(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->crowd != b->crowd)
		return a->crowd > b->crowd ? -1 : 1;
	return (a->number > b->number) - (a->number < b->number);
}

/* Crowding of the members of r[lo..hi) (one front) among themselves. */
static enum presso_status crowd_front(const double *pts, int d, struct ranked *r, int lo, int hi)
{
	int n = hi - lo;
	int *members = malloc(sizeof(int) * (size_t)(n ? n : 1));
	double *dist = malloc(sizeof(double) * (size_t)(n ? n : 1));
	if (!members || !dist) {
		free(members);
		free(dist);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int j = 0; j < n; j++)
		members[j] = r[lo + j].cand;
	enum presso_status s = pareto_crowding(pts, d, members, n, dist);
	for (int j = 0; s == PRESSO_OK && j < n; j++)
		r[lo + j].crowd = dist[j];
	free(members);
	free(dist);
	return s;
}

/* z rows (non-finite values capped) and violations of the listed points. */
static enum presso_status gather(const struct archive *a, const int *idx, int n, double **pts,
				 double **viol)
{
	int d = a->sp->n_obj;
	*pts = calloc((size_t)(n ? n : 1) * (size_t)d, sizeof(double));
	*viol = calloc((size_t)(n ? n : 1), sizeof(double));
	if (!*pts || !*viol) {
		free(*pts);
		free(*viol);
		*pts = *viol = NULL;
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		const struct archive_point *p = &a->pts[idx[i]];
		for (int k = 0; k < d; k++)
			(*pts)[i * d + k] = isfinite(p->z[k]) ? p->z[k] : 1e300;
		(*viol)[i] = p->violation;
	}
	return PRESSO_OK;
}

/* Ranks (constraint-domination) of the listed points into r[i].rank, r[i].cand = i. */
static enum presso_status rank_points(const struct archive *a, const double *pts,
				      const double *viol, const int *idx, int n, struct ranked *r)
{
	int d = a->sp->n_obj;
	enum pareto_dir dir[SPACE_MAX_OBJECTIVES];
	for (int k = 0; k < d; k++)
		dir[k] = PARETO_MINIMIZE;
	int *rk = malloc(sizeof(int) * (size_t)(n ? n : 1));
	if (!rk)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status s = pareto_rank(pts, n, d, dir, viol, rk, NULL);
	for (int i = 0; s == PRESSO_OK && i < n; i++)
		r[i] = (struct ranked){i, rk[i], 0, a->pts[idx[i]].number};
	free(rk);
	return s;
}

/* Crowding of every point within its rank (r in any order). */
static enum presso_status crowd_by_rank(const double *pts, int d, struct ranked *r, int n)
{
	enum presso_status s = PRESSO_OK;
	struct ranked *sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1));
	if (!sorted)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	memcpy(sorted, r, sizeof *sorted * (size_t)n);
	for (int i = 0; i < n; i++)
		sorted[i].crowd = 0;
	qsort(sorted, (size_t)n, sizeof *sorted, by_rank_crowd);
	for (int lo = 0; lo < n && s == PRESSO_OK;) {
		int hi = lo;
		while (hi < n && sorted[hi].rank == sorted[lo].rank)
			hi++;
		s = crowd_front(pts, d, sorted, lo, hi);
		lo = hi;
	}
	for (int i = 0; i < n; i++)
		r[sorted[i].cand].crowd = sorted[i].crowd;
	free(sorted);
	return s;
}

enum presso_status evolution_rank_crowd(const struct archive *a, const int *members, int n,
					int *rank, double *crowd)
{
	double *pts = NULL, *viol = NULL;
	struct ranked *r = malloc(sizeof *r * (size_t)(n ? n : 1));
	enum presso_status s = r ? gather(a, members, n, &pts, &viol)
				 : status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s == PRESSO_OK)
		s = rank_points(a, pts, viol, members, n, r);
	if (s == PRESSO_OK)
		s = crowd_by_rank(pts, a->sp->n_obj, r, n);
	for (int i = 0; s == PRESSO_OK && i < n; i++) {
		rank[i] = r[i].rank;
		crowd[i] = r[i].crowd;
	}
	free(pts);
	free(viol);
	free(r);
	return s;
}

enum presso_status evolution_select(const struct archive *a, const int *cand, int n, int n_keep,
				    int *keep, int *n_kept, int *rank, double *crowd)
{
	*n_kept = 0;
	if (n == 0)
		return PRESSO_OK;
	double *pts = NULL, *viol = NULL;
	struct ranked *r = malloc(sizeof *r * (size_t)n);
	enum presso_status s = r ? gather(a, cand, n, &pts, &viol)
				 : status_fail(PRESSO_E_NOMEM, "out of memory");
	if (s == PRESSO_OK)
		s = rank_points(a, pts, viol, cand, n, r);
	/* whole fronts by rank, the last one cut by crowding over the whole front */
	if (s == PRESSO_OK)
		s = crowd_by_rank(pts, a->sp->n_obj, r, n);
	if (s != PRESSO_OK)
		goto done;
	qsort(r, (size_t)n, sizeof *r, by_rank_crowd);
	int m = n < n_keep ? n : n_keep;
	for (int i = 0; i < m; i++)
		keep[i] = cand[r[i].cand];
	/* ranks and crowding of the kept, among the kept (what the tournaments use,
	 * and what evolution_rank_crowd gives the same list after a resume) */
	s = evolution_rank_crowd(a, keep, m, rank, crowd);
	if (s == PRESSO_OK)
		*n_kept = m;
done:
	free(pts);
	free(viol);
	free(r);
	return s;
}

int evolution_tournament(const int *rank, const double *crowd, int n, struct rng *r)
{
	int i = (int)rng_below(r, (uint64_t)n);
	if (n == 1)
		return i;
	int j = (int)rng_below(r, (uint64_t)(n - 1));
	if (j >= i)
		j++; /* two distinct members */
	if (rank[j] != rank[i])
		return rank[j] < rank[i] ? j : i;
	return crowd[j] > crowd[i] ? j : i;
}

void evolution_crossover(const struct space *sp, const uint8_t *a, const uint8_t *b,
			 struct rng *r, uint8_t *child)
{
	for (int l = 0; l < sp->n_layers; l++) {
		const uint8_t *from = (rng_next(r) >> 63) ? b : a;
		memcpy(child + l * KNOB_COUNT, from + l * KNOB_COUNT, KNOB_COUNT);
	}
}

static int domain_n(const struct space *sp, int gene)
{
	return sp->ls[gene / KNOB_COUNT].d[gene % KNOB_COUNT].n;
}

int evolution_mutate(const struct space *sp, uint8_t *g, double rate, struct rng *r)
{
	int changed = 0;
	for (int i = 0; i < sp->n_free; i++) {
		if (rng_uniform(r) >= rate)
			continue;
		int gene = sp->free_genes[i], n = domain_n(sp, gene), v = g[gene];
		int nv;
		if (rng_uniform(r) < 0.8) {
			bool up = v == 0 || (v < n - 1 && (rng_next(r) >> 63));
			nv = up ? v + 1 : v - 1;
		} else {
			nv = (int)rng_below(r, (uint64_t)(n - 1));
			if (nv >= v)
				nv++; /* another value */
		}
		g[gene] = (uint8_t)nv;
		changed++;
	}
	return changed;
}

int evolution_n_arms(const struct space *sp)
{
	return 2 * sp->n_free;
}

void evolution_arms_allowed(const struct space *sp, const uint8_t *g, bool *allowed)
{
	for (int i = 0; i < sp->n_free; i++) {
		int gene = sp->free_genes[i];
		allowed[2 * i] = g[gene] > 0;
		allowed[2 * i + 1] = g[gene] + 1 < domain_n(sp, gene);
	}
}

void evolution_apply_arm(const struct space *sp, uint8_t *g, int arm)
{
	PRESSO_CHECK(arm >= 0 && arm < 2 * sp->n_free);
	int gene = sp->free_genes[arm / 2];
	if (arm % 2)
		g[gene]++;
	else
		g[gene]--;
	PRESSO_CHECK(g[gene] < domain_n(sp, gene));
}

void evolution_arm_name(const struct space *sp, int arm, char *buf, int cap)
{
	int gene = sp->free_genes[arm / 2];
	snprintf(buf, (size_t)cap, "layer '%s' %s %s", sp->layers[gene / KNOB_COUNT].name,
		 space_knob_name((enum knob)(gene % KNOB_COUNT)), arm % 2 ? "up" : "down");
}
