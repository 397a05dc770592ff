/* pareto.h - Pareto maths over small objective vectors: non-dominated sorting,
 * crowding distance and hypervolume. Pure functions, no SQLite, no globals.
 *
 * Points are n rows of d doubles, row-major (points[i*d + k] is objective k of
 * point i), 1 <= d <= PARETO_MAX_OBJECTIVES. Each objective has a direction;
 * a dominates b when a is at least as good in every objective and strictly
 * better in one. Equal points do not dominate each other (they share a rank).
 * NaN is refused (PRESSO_E_CONFIG); infinities compare as usual.
 *
 * In src/base because both the store (db/: fronts for `pareto`, `export`) and
 * the search (search/: selection, hypervolume progress) use it.
 */
#ifndef PRESSO_PARETO_H
#define PRESSO_PARETO_H

#include <stdbool.h>

#include "base/status.h"

#define PARETO_MAX_OBJECTIVES 4

enum pareto_dir { PARETO_MINIMIZE, PARETO_MAXIMIZE };

/* True if point a dominates point b (each d values). */
bool pareto_dominates(const double *a, const double *b, int d, const enum pareto_dir *dir);

/* Non-dominated sorting: rank[i] = 0 for the front, 1 for the front of what is
 * left, and so on. violation (may be NULL: everything feasible) applies
 * constraint-domination as in NSGA-II: a point with violation 0 is feasible and
 * beats every infeasible one; infeasible points rank after all feasible ones, in
 * order of increasing violation (equal violations share a rank). Writes
 * *n_ranks (may be NULL). O(d n^2) worst case, O(n) extra memory (Zhang et al.
 * 2015, ENS-SS: sort, then place each point in the first front that holds
 * nothing dominating it). */
enum presso_status pareto_rank(const double *points, int n, int d, const enum pareto_dir *dir,
			       const double *violation, int *rank, int *n_ranks);

/* Indices of the non-dominated points (rank 0), ascending, into front (room
 * for n); *n_front is their count. */
enum presso_status pareto_front(const double *points, int n, int d, const enum pareto_dir *dir,
				int *front, int *n_front);

/* NSGA-II crowding distance of the points listed in members (usually one
 * front): per objective, the two extreme members get +INFINITY and an interior
 * member the gap between its neighbours divided by the objective's range,
 * summed over objectives; an objective on which all members are equal adds
 * nothing and marks no extremes. dist[j] is for members[j].
 * Fewer than 3 members: all +INFINITY. */
enum presso_status pareto_crowding(const double *points, int d, const int *members,
				   int n_members, double *dist);

/* Hypervolume dominated by the points and bounded by ref (d values, the worst
 * corner of interest): the measure of the set of vectors that some point
 * dominates and that dominate ref. Points not strictly better than ref in
 * every objective add nothing. d = 1, 2 (sort and sweep, O(n log n)) or 3
 * (slices along the third objective, O(n^2)); d = 4 is PRESSO_E_UNSUPPORTED. */
enum presso_status pareto_hypervolume(const double *points, int n, int d,
				      const enum pareto_dir *dir, const double *ref,
				      double *volume);

#endif
