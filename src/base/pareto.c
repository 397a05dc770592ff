/* pareto.c - non-dominated sorting, crowding distance and hypervolume.
 *
 * Every function first copies the points into minimisation form (a maximised
 * objective is negated), so the algorithms below only ever minimise.
 *
 * Non-dominated sorting is ENS-SS (Zhang, Tian, Cheng, Jin 2015): sort the
 * points lexicographically; then a point can only be dominated by points
 * before it, so each point in turn goes into the first front that holds no
 * point dominating it (a new front if every front does). Equal points never
 * dominate each other, so duplicates land in the same front.
 *
 * Hypervolume: 2-D is a sweep in increasing first objective, adding for each
 * point the strip between its second objective and the best one seen so far;
 * 3-D cuts the box into slabs between consecutive values of the third
 * objective and adds each slab's 2-D hypervolume times its thickness.
 */
#include "base/pareto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int (*cmp_fn)(const void *ctx, int a, int b);

/* Stable merge sort of idx[0..n) by cmp; tmp has room for n. */
static void merge_sort(int *idx, int *tmp, int n, cmp_fn cmp, const void *ctx)
{
	if (n < 2)
		return;
	int h = n / 2;
	merge_sort(idx, tmp, h, cmp, ctx);
	merge_sort(idx + h, tmp, n - h, cmp, ctx);
	int i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = cmp(ctx, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
	while (i < h)
		tmp[k++] = idx[i++];
	while (j < n)
		tmp[k++] = idx[j++];
	memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

struct rows {
	const double *v; /* minimisation form, n x d */
	int d;
	int key;         /* for by_key: the objective compared */
};

static int by_lex(const void *ctx, int a, int b)
{
	const struct rows *r = ctx;
	for (int k = 0; k < r->d; k++) {
		double x = r->v[a * r->d + k], y = r->v[b * r->d + k];
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

static int by_key(const void *ctx, int a, int b)
{
	const struct rows *r = ctx;
	double x = r->v[a * r->d + r->key], y = r->v[b * r->d + r->key];
	return x < y ? -1 : x > y;
}

static int by_value(const void *ctx, int a, int b)
{
	const double *v = ctx;
	return v[a] < v[b] ? -1 : v[a] > v[b];
}

static bool dominates_min(const double *a, const double *b, int d)
{
	bool strict = false;
	for (int k = 0; k < d; k++) {
		if (a[k] > b[k])
			return false;
		strict |= a[k] < b[k];
	}
	return strict;
}

bool pareto_dominates(const double *a, const double *b, int d, const enum pareto_dir *dir)
{
	bool strict = false;
	for (int k = 0; k < d; k++) {
		double x = dir[k] == PARETO_MAXIMIZE ? -a[k] : a[k];
		double y = dir[k] == PARETO_MAXIMIZE ? -b[k] : b[k];
		if (x > y)
			return false;
		strict |= x < y;
	}
	return strict;
}

/* Checks the arguments and returns a minimisation-form copy (NULL with the
 * status set on error or when n == 0). */
static enum presso_status to_min(const double *points, int n, int d, const enum pareto_dir *dir,
				 double **out)
{
	*out = NULL;
	if (n < 0 || d < 1 || d > PARETO_MAX_OBJECTIVES)
		return status_fail(PRESSO_E_CONFIG, "pareto: %d points of %d objectives (1..%d)", n,
				   d, PARETO_MAX_OBJECTIVES);
	if (n == 0)
		return PRESSO_OK;
	double *m = malloc((size_t)n * (size_t)d * sizeof *m);
	if (!m)
		return status_fail(PRESSO_E_NOMEM, "pareto: out of memory for %d points", n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < d; k++) {
			double x = points[i * d + k];
			if (isnan(x)) {
				free(m);
				return status_fail(PRESSO_E_CONFIG,
						   "pareto: objective %d of point %d is NaN", k, i);
			}
			m[i * d + k] = dir[k] == PARETO_MAXIMIZE ? -x : x;
		}
	*out = m;
	return PRESSO_OK;
}

enum presso_status pareto_rank(const double *points, int n, int d, const enum pareto_dir *dir,
			       const double *violation, int *rank, int *n_ranks)
{
	double *m;
	int *order = NULL, *tmp = NULL, *head = NULL, *next = NULL;
	enum presso_status s = to_min(points, n, d, dir, &m);
	if (s != PRESSO_OK)
		return s;
	if (n_ranks)
		*n_ranks = 0;
	if (n == 0)
		return PRESSO_OK;
	for (int i = 0; violation && i < n; i++)
		if (!(violation[i] >= 0)) {
			s = status_fail(PRESSO_E_CONFIG,
					"pareto: violation of point %d is %g (must be >= 0)", i,
					violation[i]);
			goto fail;
		}
	order = malloc((size_t)n * sizeof *order);
	tmp = malloc((size_t)n * sizeof *tmp);
	head = malloc((size_t)n * sizeof *head);
	next = malloc((size_t)n * sizeof *next);
	if (!order || !tmp || !head || !next) {
		s = status_fail(PRESSO_E_NOMEM, "pareto: out of memory for %d points", n);
		goto fail;
	}
	int n_feasible = 0, n_infeasible = 0;
	for (int i = 0; i < n; i++)
		if (!violation || violation[i] == 0)
			order[n_feasible++] = i;
	struct rows r = {m, d, 0};
	merge_sort(order, tmp, n_feasible, by_lex, &r);
	int n_fronts = 0;
	for (int j = 0; j < n_feasible; j++) {
		int p = order[j];
		int f = 0;
		for (; f < n_fronts; f++) {
			/* newest members first: they are the nearest in sort order */
			bool dominated = false;
			for (int q = head[f]; q >= 0 && !dominated; q = next[q])
				dominated = dominates_min(&m[q * d], &m[p * d], d);
			if (!dominated)
				break;
		}
		if (f == n_fronts)
			head[n_fronts++] = -1;
		next[p] = head[f];
		head[f] = p;
		rank[p] = f;
	}
	/* infeasible points: after every feasible front, by increasing violation */
	for (int i = 0; violation && i < n; i++)
		if (violation[i] != 0)
			order[n_infeasible++] = i;
	merge_sort(order, tmp, n_infeasible, by_value, violation);
	int extra = 0;
	for (int j = 0; j < n_infeasible; j++) {
		if (j > 0 && violation[order[j]] != violation[order[j - 1]])
			extra++;
		rank[order[j]] = n_fronts + extra;
	}
	if (n_ranks)
		*n_ranks = n_fronts + (n_infeasible ? extra + 1 : 0);
fail:
	free(next);
	free(head);
	free(tmp);
	free(order);
	free(m);
	return s;
}

enum presso_status pareto_front(const double *points, int n, int d, const enum pareto_dir *dir,
				int *front, int *n_front)
{
	*n_front = 0;
	if (n <= 0)
		return pareto_rank(points, n, d, dir, NULL, front, NULL);
	int *rank = malloc((size_t)n * sizeof *rank);
	if (!rank)
		return status_fail(PRESSO_E_NOMEM, "pareto: out of memory for %d points", n);
	enum presso_status s = pareto_rank(points, n, d, dir, NULL, rank, NULL);
	for (int i = 0; s == PRESSO_OK && i < n; i++)
		if (rank[i] == 0)
			front[(*n_front)++] = i;
	free(rank);
	return s;
}

enum presso_status pareto_crowding(const double *points, int d, const int *members,
				   int n_members, double *dist)
{
	if (d < 1 || d > PARETO_MAX_OBJECTIVES || n_members < 0)
		return status_fail(PRESSO_E_CONFIG, "pareto: %d members of %d objectives",
				   n_members, d);
	for (int j = 0; j < n_members; j++)
		dist[j] = n_members < 3 ? INFINITY : 0.0;
	if (n_members < 3)
		return PRESSO_OK;
	int *order = malloc((size_t)n_members * sizeof *order);
	int *tmp = malloc((size_t)n_members * sizeof *tmp);
	double *v = malloc((size_t)n_members * sizeof *v);
	enum presso_status s = PRESSO_OK;
	if (!order || !tmp || !v) {
		s = status_fail(PRESSO_E_NOMEM, "pareto: out of memory for %d members", n_members);
		goto fail;
	}
	for (int k = 0; k < d; k++) {
		for (int j = 0; j < n_members; j++) {
			v[j] = points[members[j] * d + k];
			if (isnan(v[j])) {
				s = status_fail(PRESSO_E_CONFIG,
						"pareto: objective %d of point %d is NaN", k,
						members[j]);
				goto fail;
			}
			order[j] = j;
		}
		merge_sort(order, tmp, n_members, by_value, v);
		double lo = v[order[0]], hi = v[order[n_members - 1]];
		double range = hi - lo;
		if (range == 0)
			continue; /* all equal: this objective separates nothing, has no extremes */
		dist[order[0]] = INFINITY;
		dist[order[n_members - 1]] = INFINITY;
		if (!isfinite(range))
			continue; /* unbounded: only the extremes are known to be far */
		for (int j = 1; j < n_members - 1; j++)
			dist[order[j]] += (v[order[j + 1]] - v[order[j - 1]]) / range;
	}
fail:
	free(v);
	free(tmp);
	free(order);
	return s;
}

/* 2-D hypervolume of pts (x, y pairs, minimisation, sorted by x ascending,
 * all strictly better than ref). */
static double hv2_sorted(const double *pts, int n, const double *ref)
{
	double area = 0, best_y = ref[1];
	for (int i = 0; i < n; i++) {
		double x = pts[2 * i], y = pts[2 * i + 1];
		if (y < best_y) {
			area += (ref[0] - x) * (best_y - y);
			best_y = y;
		}
	}
	return area;
}

enum presso_status pareto_hypervolume(const double *points, int n, int d,
				      const enum pareto_dir *dir, const double *ref,
				      double *volume)
{
	*volume = 0;
	if (d == 4)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "pareto: hypervolume is implemented for 1 to 3 objectives, not 4");
	if (d < 1 || d > 3)
		return status_fail(PRESSO_E_CONFIG, "pareto: %d objectives (1..%d)", d,
				   PARETO_MAX_OBJECTIVES);
	double r[3];
	for (int k = 0; k < d; k++) {
		if (isnan(ref[k]))
			return status_fail(PRESSO_E_CONFIG, "pareto: reference point %d is NaN", k);
		r[k] = dir[k] == PARETO_MAXIMIZE ? -ref[k] : ref[k];
	}
	double *m;
	enum presso_status s = to_min(points, n, d, dir, &m);
	if (s != PRESSO_OK || n == 0)
		return s;
	int *order = NULL, *tmp = NULL;
	double *slab = NULL;
	/* keep the points strictly inside the reference box */
	int n_in = 0;
	for (int i = 0; i < n; i++) {
		bool inside = true;
		for (int k = 0; k < d; k++)
			inside &= m[i * d + k] < r[k];
		if (inside) {
			memmove(&m[n_in * d], &m[i * d], (size_t)d * sizeof *m);
			n_in++;
		}
	}
	if (n_in == 0)
		goto fail;
	if (d == 1) {
		double best = m[0];
		for (int i = 1; i < n_in; i++)
			best = m[i] < best ? m[i] : best;
		*volume = r[0] - best;
		goto fail;
	}
	order = malloc((size_t)n_in * sizeof *order);
	tmp = malloc((size_t)n_in * sizeof *tmp);
	slab = malloc((size_t)n_in * 2 * sizeof *slab);
	if (!order || !tmp || !slab) {
		s = status_fail(PRESSO_E_NOMEM, "pareto: out of memory for %d points", n_in);
		goto fail;
	}
	for (int i = 0; i < n_in; i++)
		order[i] = i;
	struct rows rw = {m, d, d == 2 ? 0 : 2};
	merge_sort(order, tmp, n_in, by_key, &rw);
	if (d == 2) {
		for (int i = 0; i < n_in; i++) {
			slab[2 * i] = m[order[i] * 2];
			slab[2 * i + 1] = m[order[i] * 2 + 1];
		}
		*volume = hv2_sorted(slab, n_in, r);
		goto fail;
	}
	/* d == 3: slabs along z; slab[] holds the (x, y) of the points seen so
	 * far, kept sorted by x by insertion. */
	double total = 0;
	int n_slab = 0;
	for (int i = 0; i < n_in; i++) {
		const double *p = &m[order[i] * 3];
		int at = n_slab;
		while (at > 0 && slab[2 * (at - 1)] > p[0])
			at--;
		memmove(&slab[2 * (at + 1)], &slab[2 * at], (size_t)(n_slab - at) * 2 * sizeof *slab);
		slab[2 * at] = p[0];
		slab[2 * at + 1] = p[1];
		n_slab++;
		double z_next = i + 1 < n_in ? m[order[i + 1] * 3 + 2] : r[2];
		if (z_next > p[2])
			total += hv2_sorted(slab, n_slab, r) * (z_next - p[2]);
	}
	*volume = total;
fail:
	free(slab);
	free(tmp);
	free(order);
	free(m);
	return s;
}
