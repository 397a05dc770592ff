/* archive.c - the completed trials of a search in objective space (see
 * archive.h).
 *
 * Distance to the front (the bandit strategy's reward): with every objective
 * normalised and minimised (z), a feasible point f weakly dominates p when
 * z_f,k <= z_p,k for all k. To get out from under f, p must gain, in some
 * objective where it is strictly behind f, at least that gap; so
 *     d(p) = max over f weakly dominating p (f != p) of
 *            min over k with z_p,k > z_f,k of (z_p,k - z_f,k),
 * and 0 when nothing dominates p. This is the additive-epsilon distance to
 * the front (Zitzler et al. 2003) except that a tie is not a way out: a
 * policy that only switches bias correction off keeps the size of one on the
 * front, and is as far from the front as the accuracy it lost. A point one
 * accuracy point behind the front has d = 1 / (100 - chance). O(n) per call.
 */
#include "search/archive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/expr.h"
#include "base/stats.h"

enum presso_status archive_init(struct archive *a, const struct space *sp, const struct baseline *b)
{
	memset(a, 0, sizeof *a);
	a->sp = sp;
	a->base = *b;
	a->min_violation = INFINITY;
	for (int k = 0; k < sp->n_obj; k++) {
		a->dir[k] = store_objective_dir(sp->obj[k]);
		switch (sp->obj[k]) {
		case OBJ_ACCURACY:
			a->ref[k] = 100.0 / (b->n_classes > 0 ? b->n_classes : 2);
			a->ideal[k] = 100.0;
			break;
		case OBJ_SIZE:
			a->ref[k] = (double)b->size_bytes;
			break;
		case OBJ_BOPS:
			a->ref[k] = b->bops;
			break;
		case OBJ_LATENCY:
			a->ref[k] = b->latency_us;
			break;
		case OBJ_COUNT:
			break;
		}
		if (!(fabs(a->ref[k] - a->ideal[k]) > 0) || !isfinite(a->ref[k]))
			return status_fail(PRESSO_E_RUNTIME,
					   "objective %s: the FP32 reference (%g) gives an empty box",
					   store_objective_name(sp->obj[k]), a->ref[k]);
	}
	return PRESSO_OK;
}

void archive_free(struct archive *a)
{
	if (!a)
		return;
	free(a->pts);
	free(a->genomes);
	memset(a, 0, sizeof *a);
}

static double objective_value(enum store_objective o, const struct trial_metrics *m)
{
	switch (o) {
	case OBJ_ACCURACY:
		return m->accuracy;
	case OBJ_SIZE:
		return (double)m->size_bytes;
	case OBJ_BOPS:
		return m->bops;
	case OBJ_LATENCY:
		return m->latency_us;
	case OBJ_COUNT:
		break;
	}
	return NAN;
}

/* How far v is beyond bound (relative to scale); 0 within, and for NAN bounds. */
static double excess(double v, double bound, double scale, bool upper)
{
	if (isnan(bound))
		return 0;
	if (isnan(v))
		return 1; /* a bound on something not measured cannot be met */
	double e = upper ? v - bound : bound - v;
	return e > 0 ? e / scale : 0;
}

/* The constraints' violation with the accuracy bounds `reach` points looser. */
static double violation_of(const struct archive *a, const struct trial_metrics *m, double reach)
{
	/* the expression language's values, so accuracy_drop is rounded exactly as
	 * `presso pareto --where 'accuracy_drop <= 1'` rounds it */
	double v[EXPR_METRIC_COUNT];
	store_expr_values(m, &a->base, 0, v);
	const struct space_constraints *c = &a->sp->con;
	return excess(v[EXPR_SIZE_BYTES], c->max_size_bytes, c->max_size_bytes, true) +
	       excess(v[EXPR_LATENCY_US], c->max_latency_us, c->max_latency_us, true) +
	       excess(v[EXPR_ACCURACY], c->min_accuracy - reach, 100, false) +
	       excess(v[EXPR_ACCURACY_DROP], c->max_accuracy_drop + reach, 100, true);
}

void archive_objectives(const struct archive *a, const struct trial_metrics *m,
			double f[SPACE_MAX_OBJECTIVES], double z[SPACE_MAX_OBJECTIVES],
			double *violation)
{
	const struct space *sp = a->sp;
	for (int k = 0; k < sp->n_obj; k++) {
		f[k] = objective_value(sp->obj[k], m);
		z[k] = (f[k] - a->ideal[k]) / (a->ref[k] - a->ideal[k]);
		if (isnan(z[k]))
			z[k] = INFINITY; /* unmeasured: worst */
	}
	*violation = violation_of(a, m, sp->search.finetune_reach);
}

bool archive_meets(const struct archive *a, const struct trial_metrics *m)
{
	return violation_of(a, m, 0) == 0;
}

void archive_gain(const struct archive *a, const struct trial_metrics *m, struct archive_gain *out)
{
	archive_gain_upto(a, a->n, m, out);
}

void archive_gain_upto(const struct archive *a, int n_pts, const struct trial_metrics *m,
		       struct archive_gain *out)
{
	double f[SPACE_MAX_OBJECTIVES], z[SPACE_MAX_OBJECTIVES], viol;
	int d = a->sp->n_obj;
	PRESSO_CHECK(n_pts >= 0 && n_pts <= a->n);
	archive_objectives(a, m, f, z, &viol);
	out->feasible = viol == 0;
	out->distance = 0;
	if (!out->feasible) {
		int n_feasible = a->n_feasible;
		double min_violation = a->min_violation;
		if (n_pts < a->n) { /* the prefix's own counts */
			n_feasible = 0;
			min_violation = INFINITY;
			for (int i = 0; i < n_pts; i++) {
				n_feasible += a->pts[i].violation == 0;
				if (a->pts[i].violation < min_violation)
					min_violation = a->pts[i].violation;
			}
		}
		out->improves = n_feasible == 0 && viol < min_violation;
		out->distance = INFINITY;
		return;
	}
	bool inside = true, weakly_dominated = false;
	for (int k = 0; k < d; k++)
		inside &= z[k] < 1;
	for (int i = 0; i < n_pts; i++) {
		const struct archive_point *p = &a->pts[i];
		if (p->violation != 0)
			continue;
		bool weak = true, equal = true;
		double shift = INFINITY;
		for (int k = 0; k < d; k++) {
			double diff = z[k] - p->z[k];
			weak &= diff >= 0;
			equal &= diff == 0;
			if (diff > 0 && diff < shift)
				shift = diff; /* a tie is no way out: only where it is behind */
		}
		weakly_dominated |= weak;
		if (weak && !equal && shift > out->distance)
			out->distance = shift;
	}
	out->improves = inside && !weakly_dominated;
}

void archive_gain_paired(const struct archive *a, int n_pts, const struct trial_metrics *m,
			 struct archive_gain *out)
{
	archive_gain_upto(a, n_pts, m, out);
	if (!out->feasible)
		return; /* feasibility and violations are the points' own */
	double f[SPACE_MAX_OBJECTIVES], z[SPACE_MAX_OBJECTIVES], viol;
	int d = a->sp->n_obj;
	archive_objectives(a, m, f, z, &viol);
	bool inside = true, weakly_dominated = false;
	for (int k = 0; k < d; k++)
		inside &= z[k] < 1;
	for (int i = 0; i < n_pts && !weakly_dominated; i++) {
		const struct archive_point *p = &a->pts[i];
		if (p->violation != 0)
			continue;
		double pz[SPACE_MAX_OBJECTIVES];
		memcpy(pz, p->z, sizeof pz);
		if (p->m.low_n_images == m->n_images) {
			/* the point as it scored on the same images */
			struct trial_metrics pm = p->m;
			double pf[SPACE_MAX_OBJECTIVES], pv;
			pm.accuracy = p->m.low_accuracy;
			archive_objectives(a, &pm, pf, pz, &pv);
		}
		bool weak = true;
		for (int k = 0; k < d; k++)
			weak &= z[k] >= pz[k];
		weakly_dominated |= weak;
	}
	out->improves = inside && !weakly_dominated;
}

void archive_update(struct archive *a, int i, const struct trial_metrics *m)
{
	PRESSO_CHECK(i >= 0 && i < a->n);
	struct archive_point *p = &a->pts[i];
	p->m = *m;
	archive_objectives(a, m, p->f, p->z, &p->violation);
	a->n_feasible = 0;
	a->min_violation = INFINITY;
	for (int j = 0; j < a->n; j++) {
		a->n_feasible += a->pts[j].violation == 0;
		if (a->pts[j].violation < a->min_violation)
			a->min_violation = a->pts[j].violation;
	}
}

enum presso_status archive_add(struct archive *a, int64_t number, const uint8_t *genome,
			       const struct trial_metrics *m, int *index)
{
	size_t gb = (size_t)a->sp->n_genes;
	if (a->n == a->cap) {
		int cap = a->cap ? 2 * a->cap : 64;
		struct archive_point *np = realloc(a->pts, (size_t)cap * sizeof *np);
		if (!np)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		a->pts = np;
		if (gb) { /* a space without genes (space_parse_goals) keeps none */
			uint8_t *ng = realloc(a->genomes, (size_t)cap * gb);
			if (!ng)
				return status_fail(PRESSO_E_NOMEM, "out of memory");
			a->genomes = ng;
		}
		a->cap = cap;
	}
	struct archive_point *p = &a->pts[a->n];
	p->number = number;
	p->m = *m;
	archive_objectives(a, m, p->f, p->z, &p->violation);
	if (gb)
		memcpy(a->genomes + (size_t)a->n * gb, genome, gb);
	if (p->violation == 0)
		a->n_feasible++;
	if (p->violation < a->min_violation)
		a->min_violation = p->violation;
	if (index)
		*index = a->n;
	a->n++;
	return PRESSO_OK;
}

int archive_find(const struct archive *a, int64_t number)
{
	/* points are added in trial order on resume and mostly so afterwards */
	for (int i = a->n - 1; i >= 0; i--)
		if (a->pts[i].number == number)
			return i;
	return -1;
}

const uint8_t *archive_genome(const struct archive *a, int i)
{
	return a->genomes + (size_t)i * (size_t)a->sp->n_genes;
}

/* Point i before point j in a front listing: by the first objective, then
 * by trial number. */
static bool listed_before(const struct archive *a, int i, int j)
{
	const struct archive_point *x = &a->pts[i], *y = &a->pts[j];
	if (x->z[0] != y->z[0])
		return x->z[0] < y->z[0];
	return x->number < y->number;
}

static bool same_point(const struct archive *a, int i, int j)
{
	return memcmp(a->pts[i].f, a->pts[j].f, sizeof a->pts[i].f[0] * (size_t)a->sp->n_obj) == 0;
}

int archive_n_same(const struct archive *a, int i)
{
	int n = 0;
	for (int j = 0; j < a->n; j++)
		n += j != i && a->pts[j].violation == 0 && same_point(a, i, j);
	return n;
}

/* The feasible points: their indices and z rows. */
static enum presso_status feasible_points(const struct archive *a, int **idx, double **pts,
					  int *n)
{
	int d = a->sp->n_obj, m = 0;
	*idx = malloc(sizeof(int) * (size_t)(a->n ? a->n : 1));
	*pts = malloc(sizeof(double) * (size_t)(a->n ? a->n : 1) * (size_t)d);
	if (!*idx || !*pts) {
		free(*idx);
		free(*pts);
		*idx = NULL;
		*pts = NULL;
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < a->n; i++) {
		if (a->pts[i].violation != 0)
			continue;
		(*idx)[m] = i;
		memcpy(*pts + (size_t)m * (size_t)d, a->pts[i].f, sizeof(double) * (size_t)d);
		m++;
	}
	*n = m;
	return PRESSO_OK;
}

enum presso_status archive_front(const struct archive *a, int **front, int *n_front)
{
	int *idx = NULL, n = 0, *pos = NULL;
	double *pts = NULL;
	*front = NULL;
	*n_front = 0;
	enum presso_status s = feasible_points(a, &idx, &pts, &n);
	if (s != PRESSO_OK)
		return s;
	pos = malloc(sizeof(int) * (size_t)(n ? n : 1));
	if (!pos) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	int nf = 0;
	if ((s = pareto_front(pts, n, a->sp->n_obj, a->dir, pos, &nf)) != PRESSO_OK)
		goto done;
	for (int i = 0; i < nf; i++)
		pos[i] = idx[pos[i]];
	for (int i = 1; i < nf; i++) /* insertion sort: fronts are short */
		for (int j = i; j > 0 && listed_before(a, pos[j], pos[j - 1]); j--) {
			int t = pos[j];
			pos[j] = pos[j - 1];
			pos[j - 1] = t;
		}
	/* identical points: the first in that order (the lowest number) stays */
	int kept = 0;
	for (int i = 0; i < nf; i++) {
		bool twin = false;
		for (int j = 0; j < kept && !twin; j++)
			twin = same_point(a, pos[i], pos[j]);
		if (!twin)
			pos[kept++] = pos[i];
	}
	nf = kept;
	*front = pos;
	*n_front = nf;
	pos = NULL;
done:
	free(pos);
	free(idx);
	free(pts);
	return s;
}

enum presso_status archive_hypervolume(const struct archive *a, double *volume, double *ratio)
{
	int *idx = NULL, n = 0, d = a->sp->n_obj;
	double *pts = NULL;
	*volume = 0;
	*ratio = 0;
	enum presso_status s = feasible_points(a, &idx, &pts, &n);
	if (s != PRESSO_OK)
		return s;
	s = pareto_hypervolume(pts, n, d, a->dir, a->ref, volume);
	double box = 1;
	for (int k = 0; k < d; k++)
		box *= fabs(a->ref[k] - a->ideal[k]);
	*ratio = box > 0 ? *volume / box : 0;
	free(idx);
	free(pts);
	return s;
}

/* True when point i is a better "best" than point j under the rule. */
static bool better(const struct archive *a, int i, int j, bool cheapest)
{
	const struct archive_point *x = &a->pts[i], *y = &a->pts[j];
	double xa = x->z[0], ya = y->z[0];           /* accuracy, minimised */
	double xc = x->z[1], yc = y->z[1];           /* the first cost */
	if (cheapest ? xc != yc : xa != ya)
		return cheapest ? xc < yc : xa < ya;
	if (cheapest ? xa != ya : xc != yc)
		return cheapest ? xa < ya : xc < yc;
	for (int k = 2; k < a->sp->n_obj; k++) /* a dominated tie never wins */
		if (x->z[k] != y->z[k])
			return x->z[k] < y->z[k];
	return x->number < y->number;
}

bool archive_confident(const struct archive *a, const struct trial_metrics *m)
{
	const struct space_constraints *c = &a->sp->con;
	if (isnan(c->confidence) || (isnan(c->min_accuracy) && isnan(c->max_accuracy_drop)))
		return true;
	double v[EXPR_METRIC_COUNT];
	store_expr_values(m, &a->base, 0, v);
	double z = stats_one_sided_z(c->confidence);
	double lower = expr_accuracy_bound(v[EXPR_ACCURACY], v[EXPR_N_IMAGES], -z);
	/* the arithmetic of `accuracy_drop <= D at C%` (db/expr.c) */
	double drop_upper = v[EXPR_ACCURACY_DROP] + v[EXPR_ACCURACY] - lower;
	if (isnan(lower))
		return false;
	return (isnan(c->min_accuracy) || lower >= c->min_accuracy) &&
	       (isnan(c->max_accuracy_drop) || drop_upper <= c->max_accuracy_drop);
}

int archive_best(const struct archive *a)
{
	const struct space_constraints *c = &a->sp->con;
	bool acc_bound = !isnan(c->min_accuracy) || !isnan(c->max_accuracy_drop);
	bool cost_bound = !isnan(c->max_size_bytes) || !isnan(c->max_latency_us);
	int best = -1, near = -1;
	for (int i = 0; i < a->n; i++) {
		if (a->pts[i].violation != 0 || !archive_meets(a, &a->pts[i].m) ||
		    !archive_confident(a, &a->pts[i].m))
			continue;
		if (best < 0 || better(a, i, best, acc_bound))
			best = i;
		if (!acc_bound && !cost_bound &&
		    a->pts[i].m.accuracy >= a->base.accuracy - STORE_NEAR_FP32_POINTS &&
		    (near < 0 || better(a, i, near, true)))
			near = i;
	}
	return near >= 0 ? near : best;
}
