/* archive.h - every completed trial of a search, as points in objective space:
 * feasibility under the constraints, the front, its hypervolume, and what a
 * new point would add to it (the signal the bandits are rewarded with).
 *
 * Objectives are the space's (accuracy up; size, BOPs, latency down). Each
 * point also has normalised coordinates z, all to be minimised, 0 at the ideal
 * (100 % accuracy, zero cost) and 1 at the reference point the hypervolume is
 * measured against (chance accuracy = 100 / n_classes, the FP32 size, BOPs and
 * latency) - the same reference as `presso pareto`. The violation of a point
 * is the sum over the constraints of how far it is beyond each bound,
 * relative to the bound (accuracy bounds in points / 100); 0 means feasible.
 * The front is the feasible points no feasible point dominates.
 *
 * With search.finetune_reach R > 0 the accuracy bounds of the violation are
 * R points looser (min_accuracy - R, max_accuracy_drop + R): the search, its
 * front and hypervolume cover the trials fine-tuning is to bring within the
 * bounds. What meets the constraints as written (archive_meets) is asked
 * separately; the best trial must.
 */
#ifndef PRESSO_ARCHIVE_H
#define PRESSO_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "db/store.h"
#include "search/space.h"

struct archive_point {
	int64_t number;                   /* trial number */
	double f[SPACE_MAX_OBJECTIVES];   /* objective values in their own units */
	double z[SPACE_MAX_OBJECTIVES];   /* normalised, minimised */
	double violation;                 /* 0 when feasible */
	struct trial_metrics m;
};

struct archive {
	const struct space *sp;
	struct baseline base;
	enum pareto_dir dir[SPACE_MAX_OBJECTIVES];
	double ref[SPACE_MAX_OBJECTIVES], ideal[SPACE_MAX_OBJECTIVES];
	int n, cap;
	struct archive_point *pts;
	uint8_t *genomes;                 /* [n][sp->n_genes] */
	int n_feasible;
	double min_violation;             /* over all points; INFINITY when empty */
};

/* What adding a point would bring, measured before it is added. */
struct archive_gain {
	bool feasible;
	bool improves;   /* it raises the hypervolume: feasible, strictly inside the
			    reference box and not weakly dominated by a feasible point
			    (or, while nothing is feasible, the least violation yet) */
	double distance; /* how far (in z units) it is behind the front: the gain
			    it needs in one objective to escape every point that
			    dominates it (archive.c); 0 on or beyond the front */
};

/* An empty archive for a space and the study's FP32 baseline. Free with
 * archive_free(). */
enum presso_status archive_init(struct archive *a, const struct space *sp, const struct baseline *b);

void archive_free(struct archive *a);

/* Objective values and constraint violation of a trial's metrics. */
void archive_objectives(const struct archive *a, const struct trial_metrics *m,
			double f[SPACE_MAX_OBJECTIVES], double z[SPACE_MAX_OBJECTIVES],
			double *violation);

/* Whether m meets the constraints as written (without search.finetune_reach),
 * at its point accuracy. */
bool archive_meets(const struct archive *a, const struct trial_metrics *m);

void archive_gain(const struct archive *a, const struct trial_metrics *m, struct archive_gain *out);

/* The same against the first n_pts points only (0 <= n_pts <= a->n): the
 * archive as it was when it held n_pts points (points are only appended). */
void archive_gain_upto(const struct archive *a, int n_pts, const struct trial_metrics *m,
		       struct archive_gain *out);

/* The multi-fidelity question: would m, scored on its first m->n_images
 * validation images only, raise the hypervolume of the first n_pts points,
 * each compared at its own score on those same images (its low-fidelity
 * pass, m.low_accuracy, when it had one over as many images; else its full
 * accuracy)? Paired on one subset, the comparison does not see the subset's
 * noise that models share. Only improves is paired (as archive_gain's,
 * against those scores); feasible, distance and, for an infeasible m,
 * improves are archive_gain_upto's. */
void archive_gain_paired(const struct archive *a, int n_pts, const struct trial_metrics *m,
			 struct archive_gain *out);

/* Adds a completed trial; *index (may be NULL) gets its index. genome has
 * the space's n_genes bytes (NULL when the space has none). */
enum presso_status archive_add(struct archive *a, int64_t number, const uint8_t *genome,
			       const struct trial_metrics *m, int *index);

/* Replaces point i's metrics (a re-score: new accuracy and n_images), with
 * its objectives, violation and the archive's counts. */
void archive_update(struct archive *a, int i, const struct trial_metrics *m);

/* The index of trial `number`, or -1. */
int archive_find(const struct archive *a, int64_t number);

const uint8_t *archive_genome(const struct archive *a, int i);

/* The front: indices into *front (malloc'd, caller frees), best first by the
 * first objective (accuracy), ties to the lower trial number. Trials with the
 * same objective values are one point: only the first (lowest number) is
 * listed (archive_n_same counts the others), so the re-check on the test
 * split evaluates each point once. */
enum presso_status archive_front(const struct archive *a, int **front, int *n_front);

/* Feasible trials other than i with the same objective values as i. */
int archive_n_same(const struct archive *a, int i);

/* Hypervolume of the feasible points against the reference point, and its
 * fraction of the reference box. 0 when nothing is feasible. */
enum presso_status archive_hypervolume(const struct archive *a, double *volume, double *ratio);

/* The best feasible trial: with an accuracy bound, the cheapest by the second
 * objective; with only cost bounds, the most accurate; with no constraint, the
 * cheapest within STORE_NEAR_FP32_POINTS of FP32 (else the most accurate).
 * Ties go to the better by the other objective of those two, then by the
 * remaining objectives in order (so the best is dominated by none of the
 * trials it tied with), then to the lowest number. -1 when nothing is
 * feasible. With constraints.confidence, only feasible trials that also meet
 * the accuracy bounds at that confidence (archive_confident) count. */
int archive_best(const struct archive *a);

/* True when m meets the constraints' accuracy bounds at their confidence: the
 * Wilson lower bound of its accuracy over its n_images (base/stats.h) is at
 * least min_accuracy, and FP32 - that bound is at most max_accuracy_drop
 * (rounded as the expression language rounds accuracy_drop). True without a
 * confidence or accuracy bound; false when n_images is not known. */
bool archive_confident(const struct archive *a, const struct trial_metrics *m);

#endif
