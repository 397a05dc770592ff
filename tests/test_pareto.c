/* test_pareto.c - src/base/pareto.c: non-dominated sorting against brute force on
 * random point sets (2, 3 and 4 objectives, mixed directions, many ties),
 * constraint-domination, crowding distance, and hypervolume against hand
 * computed cases and against counting unit cells on integer grids.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/pareto.h"

/* Small deterministic generator so failures reproduce. */
static unsigned rng_state;

static unsigned rnd(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

static bool brute_dominates(const double *a, const double *b, int d, const enum pareto_dir *dir)
{
	bool strict = false;
	for (int k = 0; k < d; k++) {
		double x = a[k], y = b[k];
		bool better = dir[k] == PARETO_MAXIMIZE ? x > y : x < y;
		bool worse = dir[k] == PARETO_MAXIMIZE ? x < y : x > y;
		if (worse)
			return false;
		strict |= better;
	}
	return strict;
}

/* Ranks by peeling: rank r = not dominated by any point not yet ranked below r. */
static void brute_rank(const double *p, int n, int d, const enum pareto_dir *dir, int *rank)
{
	for (int i = 0; i < n; i++)
		rank[i] = -1;
	for (int r = 0, left = n; left > 0; r++) {
		int *now = calloc((size_t)n, sizeof *now);
		for (int i = 0; i < n; i++) {
			if (rank[i] >= 0)
				continue;
			bool dominated = false;
			for (int j = 0; j < n && !dominated; j++)
				dominated = rank[j] < 0 && j != i &&
					    brute_dominates(&p[j * d], &p[i * d], d, dir);
			now[i] = !dominated;
		}
		for (int i = 0; i < n; i++)
			if (now[i]) {
				rank[i] = r;
				left--;
			}
		free(now);
	}
}

static void random_points(double *p, int n, int d, bool integer)
{
	for (int i = 0; i < n * d; i++)
		p[i] = integer ? (double)(rnd() % 6) : (double)(rnd() % 100000) / 997.0;
}

Test(pareto, ranks_match_brute_force)
{
	rng_state = 42;
	for (int trial = 0; trial < 300; trial++) {
		int d = 2 + trial % 3; /* 2, 3, 4 */
		int n = 1 + (int)(rnd() % 120);
		bool integer = trial % 2 == 0; /* many ties and duplicates */
		enum pareto_dir dir[PARETO_MAX_OBJECTIVES];
		for (int k = 0; k < d; k++)
			dir[k] = rnd() % 2 ? PARETO_MAXIMIZE : PARETO_MINIMIZE;
		double *p = malloc((size_t)(n * d) * sizeof *p);
		int *fast = malloc((size_t)n * sizeof *fast), *slow = malloc((size_t)n * sizeof *slow);
		int *front = malloc((size_t)n * sizeof *front);
		random_points(p, n, d, integer);
		int n_ranks, n_front;
		cr_assert_eq(pareto_rank(p, n, d, dir, NULL, fast, &n_ranks), PRESSO_OK);
		brute_rank(p, n, d, dir, slow);
		int max_rank = 0;
		for (int i = 0; i < n; i++) {
			cr_assert_eq(fast[i], slow[i], "trial %d (n %d, d %d): point %d rank %d, brute %d",
				     trial, n, d, i, fast[i], slow[i]);
			max_rank = slow[i] > max_rank ? slow[i] : max_rank;
		}
		cr_assert_eq(n_ranks, max_rank + 1);
		cr_assert_eq(pareto_front(p, n, d, dir, front, &n_front), PRESSO_OK);
		int expect = 0;
		for (int i = 0; i < n; i++)
			if (slow[i] == 0)
				cr_assert_eq(front[expect++], i, "front lists rank-0 points in order");
		cr_assert_eq(n_front, expect);
		free(front);
		free(slow);
		free(fast);
		free(p);
	}
}

Test(pareto, constraint_domination)
{
	/* minimise both; points 0..2 feasible, 3..5 infeasible */
	const double p[] = {1, 5, 5, 1, 6, 6, 0, 0, 0, 1, 9, 9};
	const double viol[] = {0, 0, 0, 2.0, 0.5, 0.5};
	const enum pareto_dir dir[2] = {PARETO_MINIMIZE, PARETO_MINIMIZE};
	int rank[6], n_ranks;
	cr_assert_eq(pareto_rank(p, 6, 2, dir, viol, rank, &n_ranks), PRESSO_OK);
	cr_assert_eq(rank[0], 0);
	cr_assert_eq(rank[1], 0);
	cr_assert_eq(rank[2], 1, "dominated by both feasible points");
	/* (0,0) dominates everything but is infeasible: ranks after every feasible one */
	cr_assert_eq(rank[4], 2, "smaller violation first");
	cr_assert_eq(rank[5], 2, "equal violations share a rank");
	cr_assert_eq(rank[3], 3);
	cr_assert_eq(n_ranks, 4);
	const double bad[] = {0, 0, 0, -1, 0, 0};
	cr_assert_eq(pareto_rank(p, 6, 2, dir, bad, rank, NULL), PRESSO_E_CONFIG);
}

Test(pareto, nan_and_bad_dimensions_refused)
{
	const double p[] = {1, NAN};
	const enum pareto_dir dir[5] = {0};
	int rank[1];
	cr_assert_eq(pareto_rank(p, 1, 2, dir, NULL, rank, NULL), PRESSO_E_CONFIG);
	cr_assert_eq(pareto_rank(p, 1, 5, dir, NULL, rank, NULL), PRESSO_E_CONFIG);
	cr_assert_eq(pareto_rank(p, 0, 2, dir, NULL, rank, NULL), PRESSO_OK, "no points is fine");
}

Test(pareto, crowding_distance)
{
	/* five points on a line x + y = 6, minimised: ends infinite, each interior
	 * point's neighbours are 2 apart on both objectives, range 4: 0.5 + 0.5 */
	const double p[] = {1, 5, 2, 4, 3, 3, 4, 2, 5, 1};
	const int members[] = {4, 2, 0, 3, 1};
	double dist[5];
	cr_assert_eq(pareto_crowding(p, 2, members, 5, dist), PRESSO_OK);
	cr_assert(isinf(dist[0]) && isinf(dist[2]), "members 4 and 0 are the extremes");
	cr_assert_float_eq(dist[1], 1.0, 1e-12);
	cr_assert_float_eq(dist[3], 1.0, 1e-12);
	cr_assert_float_eq(dist[4], 1.0, 1e-12);
	/* uneven spacing: x = 0, 1, 10 with y = -x: the middle point's gaps are 10/10 twice */
	const double q[] = {0, 0, 1, -1, 10, -10};
	const int all[] = {0, 1, 2};
	cr_assert_eq(pareto_crowding(q, 2, all, 3, dist), PRESSO_OK);
	cr_assert_float_eq(dist[1], 2.0, 1e-12);
	/* a constant objective separates nothing */
	const double r[] = {0, 7, 1, 7, 3, 7, 4, 7};
	const int four[] = {0, 1, 2, 3};
	cr_assert_eq(pareto_crowding(r, 2, four, 4, dist), PRESSO_OK);
	cr_assert_float_eq(dist[1], 3.0 / 4.0, 1e-12);
	cr_assert_float_eq(dist[2], 3.0 / 4.0, 1e-12);
	/* fewer than three members: all infinite */
	cr_assert_eq(pareto_crowding(p, 2, members, 2, dist), PRESSO_OK);
	cr_assert(isinf(dist[0]) && isinf(dist[1]));
}

static double hv(const double *p, int n, int d, const enum pareto_dir *dir, const double *ref)
{
	double v = -1;
	cr_assert_eq(pareto_hypervolume(p, n, d, dir, ref, &v), PRESSO_OK, "%s", status_msg());
	return v;
}

Test(pareto, hypervolume_hand_cases_2d)
{
	const enum pareto_dir mm[2] = {PARETO_MINIMIZE, PARETO_MINIMIZE};
	const double ref[2] = {4, 4};
	/* staircase (1,3) (2,2) (3,1): 3 + 2 + 1 */
	const double stairs[] = {3, 1, 1, 3, 2, 2};
	cr_assert_float_eq(hv(stairs, 3, 2, mm, ref), 6.0, 1e-12);
	/* a dominated point, a duplicate and a point outside the box add nothing */
	const double extra[] = {3, 1, 1, 3, 2, 2, 3, 3, 2, 2, 5, 0, 0, 4};
	cr_assert_float_eq(hv(extra, 7, 2, mm, ref), 6.0, 1e-12);
	cr_assert_float_eq(hv(extra, 0, 2, mm, ref), 0.0, 0);
	/* accuracy up, size down: (90 %, 100 B) and (80 %, 50 B) against (10 %, 200 B):
	 * 80*100 + 70*150 - 70*100 = 11500 */
	const enum pareto_dir as[2] = {PARETO_MAXIMIZE, PARETO_MINIMIZE};
	const double pts[] = {90, 100, 80, 50};
	const double ref2[] = {10, 200};
	cr_assert_float_eq(hv(pts, 2, 2, as, ref2), 11500.0, 1e-9);
	/* one objective: the distance from the best point to the reference */
	const double one[] = {3, 1, 2};
	const double r1[] = {5};
	cr_assert_float_eq(hv(one, 3, 1, mm, r1), 4.0, 0);
}

Test(pareto, hypervolume_hand_cases_3d)
{
	const enum pareto_dir mmm[3] = {PARETO_MINIMIZE, PARETO_MINIMIZE, PARETO_MINIMIZE};
	const double ref[3] = {2, 2, 2};
	const double one[] = {1, 1, 1};
	cr_assert_float_eq(hv(one, 1, 3, mmm, ref), 1.0, 1e-12);
	/* two boxes 2x1x1 and 1x2x1 overlapping in 1x1x1 */
	const double two[] = {0, 1, 1, 1, 0, 1};
	cr_assert_float_eq(hv(two, 2, 3, mmm, ref), 3.0, 1e-12);
	/* three unit "arms" (1,0,0) (0,1,0) (0,0,1): each box 1x2x2 = 4; pairwise
	 * overlaps 1x1x2 = 2; triple 1 -> 12 - 6 + 1 = 7 */
	const double three[] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
	cr_assert_float_eq(hv(three, 3, 3, mmm, ref), 7.0, 1e-12);
	/* maximised axis: accuracy 50 against chance 10, two minimised at 0.5 of 1 */
	const enum pareto_dir mix[3] = {PARETO_MAXIMIZE, PARETO_MINIMIZE, PARETO_MINIMIZE};
	const double p[] = {50, 0.5, 0.5};
	const double r[] = {10, 1, 1};
	cr_assert_float_eq(hv(p, 1, 3, mix, r), 40 * 0.25, 1e-12);
	/* four objectives are not implemented */
	const enum pareto_dir m4[4] = {0};
	const double p4[] = {1, 1, 1, 1}, r4[] = {2, 2, 2, 2};
	double v;
	cr_assert_eq(pareto_hypervolume(p4, 1, 4, m4, r4, &v), PRESSO_E_UNSUPPORTED);
	const double rn[] = {2, NAN, 2};
	cr_assert_eq(pareto_hypervolume(one, 1, 3, mmm, rn, &v), PRESSO_E_CONFIG);
}

/* Integer points in [0, 10)^d, reference 10: the hypervolume is the number of
 * unit cells [c, c+1) whose lower corner some point dominates-or-equals. */
static double count_cells(const double *p, int n, int d)
{
	int total = 0;
	int cells = d == 2 ? 100 : 1000;
	for (int c = 0; c < cells; c++) {
		int corner[3] = {c % 10, (c / 10) % 10, c / 100};
		bool covered = false;
		for (int i = 0; i < n && !covered; i++) {
			bool le = true;
			for (int k = 0; k < d; k++)
				le &= p[i * d + k] <= corner[k];
			covered = le;
		}
		total += covered;
	}
	return total;
}

Test(pareto, hypervolume_matches_cell_counting)
{
	rng_state = 7;
	const enum pareto_dir mmm[3] = {PARETO_MINIMIZE, PARETO_MINIMIZE, PARETO_MINIMIZE};
	const double ref[3] = {10, 10, 10};
	for (int trial = 0; trial < 200; trial++) {
		int d = 2 + trial % 2;
		int n = (int)(rnd() % 30);
		double p[30 * 3];
		for (int i = 0; i < n * d; i++)
			p[i] = (double)(rnd() % 10);
		cr_assert_float_eq(hv(p, n, d, mmm, ref), count_cells(p, n, d), 1e-9,
				   "trial %d: %d points in %d-D", trial, n, d);
		/* the same set with the first axis maximised (negated) is the same volume */
		const enum pareto_dir flip[3] = {PARETO_MAXIMIZE, PARETO_MINIMIZE, PARETO_MINIMIZE};
		double q[30 * 3];
		memcpy(q, p, sizeof q);
		for (int i = 0; i < n; i++)
			q[i * d] = -q[i * d];
		const double rf[3] = {-10, 10, 10};
		cr_assert_float_eq(hv(q, n, d, flip, rf), count_cells(p, n, d), 1e-9);
	}
}
