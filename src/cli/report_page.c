/* report_page.c - the page `presso report` writes (report.c reads the
 * studies it shows).
 *
 * The page (inline SVG and CSS; nothing is fetched, no script) holds:
 *   - the search's progress: the hypervolume of the accuracy/size front after
 *     each complete trial, and the best trial under the study's constraints
 *     after each one, one line per study (repeat --study to compare
 *     strategies);
 *   - per study: the accuracy/size scatter (size on a log scale), every
 *     complete trial a faint point, the front highlighted and joined, FP32,
 *     uniform INT8 and INT4 and the best trial marked, the constraints drawn
 *     (and, when the full view is much taller, the same zoomed to within
 *     ZOOM_POINTS of FP32 with the front's trial numbers); the chosen policy per layer (bits, act_bits, bias correction, prune,
 *     rank) as a heat map with each layer's parameters and MACs; the front
 *     as a table; the study's config and timings.
 * Classes and data-* attributes on the marks are hooks for readers and tests:
 * in the full scatter each complete trial is one <circle class="trial"
 * data-trial="N">, the front's "trial front"; the zoom uses "ztrial" and
 * "ztrial zfront"; the uniform policies are <rect class="uniform int8|int4">,
 * the best trial <circle class="best">, the progress lines <polyline
 * class="progress" data-study="i">, the heat map's rows <g class="layer">.
 * Every picture is standalone SVG (svg.h), so the scatter is also the --svg
 * file. Every string from the database or the model is escaped (textbuf.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/report.h"
#include "cli/svg.h"
#include "cli/textbuf.h"
#include "db/store.h"
#include "search/space.h"

#define MAX_ERRORS 5      /* distinct failure messages listed per study */

/* --- numbers as people read them ------------------------------------------ */

/* "36.1 KB", "1.21 MB", "512 B" (KB = 1024 bytes, as size_kb). */
static const char *fmt_bytes(double bytes, char *buf, size_t cap)
{
	if (isnan(bytes))
		snprintf(buf, cap, "-");
	else if (bytes >= 1024.0 * 1024.0)
		snprintf(buf, cap, "%.2f MB", bytes / (1024.0 * 1024.0));
	else if (bytes >= 1024.0)
		snprintf(buf, cap, "%.1f KB", bytes / 1024.0);
	else
		snprintf(buf, cap, "%.0f B", bytes);
	return buf;
}

/* "950", "12.3k", "4.56M", "1.2G". */
static const char *fmt_count(double v, char *buf, size_t cap)
{
	if (isnan(v) || v < 0)
		snprintf(buf, cap, "-");
	else if (v >= 1e9)
		snprintf(buf, cap, "%.3gG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, cap, "%.3gM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, cap, "%.3gk", v / 1e3);
	else
		snprintf(buf, cap, "%.0f", v);
	return buf;
}

/* "42 s", "3 min 05 s", "2 h 07 min". */
static const char *fmt_duration(double s, char *buf, size_t cap)
{
	if (!(s >= 0))
		snprintf(buf, cap, "-");
	else if (s < 60)
		snprintf(buf, cap, "%.1f s", s);
	else if (s < 3600)
		snprintf(buf, cap, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
	else
		snprintf(buf, cap, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
	return buf;
}

/* UTC "2026-11-27 08:15:02 UTC", "-" for no time. */
static const char *fmt_time(double t, char *buf, size_t cap)
{
	struct tm tm;
	time_t s = (time_t)t;
	if (!(t > 0) || !gmtime_r(&s, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, cap, "-");
	return buf;
}

static const char *cost_unit(enum store_objective o)
{
	switch (o) {
	case OBJ_SIZE: return "KB";
	case OBJ_BOPS: return "BOPs";
	case OBJ_LATENCY: return "us";
	default: return "";
	}
}

/* --- lookups over a study -------------------------------------------------- */

static const struct store_trial *trial_by_number(const struct study_report *r, int64_t number)
{
	/* numbers have no gaps: trial n sits at n - 1 */
	if (number >= 1 && number <= r->n_trials && r->trials[number - 1].number == number)
		return &r->trials[number - 1];
	for (int i = 0; i < r->n_trials; i++)
		if (r->trials[i].number == number)
			return &r->trials[i];
	return NULL;
}

static bool on_front(const struct study_report *r, int64_t number)
{
	for (int i = 0; i < r->front.n_front; i++)
		if (r->front.front[i].number == number)
			return true;
	return false;
}

static const char *rule_text(const struct study_report *r)
{
	if (!r->goals)
		return "unknown (the config could not be read)";
	switch (r->rule) {
	case BEST_CHEAPEST: return "the cheapest trial that meets the constraints";
	case BEST_ACCURATE: return "the most accurate trial that meets the constraints";
	case BEST_NEAR_FP32: break;
	}
	return "the cheapest trial within 1 point of FP32 (no constraints set)";
}

/* "max_size_kb 48, max_accuracy_drop 1" or "none". */
static const char *constraints_text(const struct study_report *r, char *buf, size_t cap)
{
	size_t u = 0;
	buf[0] = '\0';
	if (!r->goals) {
		snprintf(buf, cap, "unknown");
		return buf;
	}
	const struct space_constraints *c = &r->goals->con;
	if (!isnan(c->max_size_bytes))
		u += (size_t)snprintf(buf + u, cap - u, "%ssize at most %.6g KB", u ? ", " : "",
				      c->max_size_bytes / 1024.0);
	if (u < cap && !isnan(c->max_latency_us))
		u += (size_t)snprintf(buf + u, cap - u, "%slatency at most %.6g us", u ? ", " : "",
				      c->max_latency_us);
	if (u < cap && !isnan(c->min_accuracy))
		u += (size_t)snprintf(buf + u, cap - u, "%saccuracy at least %.6g %%",
				      u ? ", " : "", c->min_accuracy);
	if (u < cap && !isnan(c->max_accuracy_drop))
		u += (size_t)snprintf(buf + u, cap - u, "%saccuracy at most %.6g point%s below FP32",
				      u ? ", " : "", c->max_accuracy_drop,
				      c->max_accuracy_drop == 1 ? "" : "s");
	if (!u)
		snprintf(buf, cap, "none");
	return buf;
}

/* --- the scatter ------------------------------------------------------------ */

#define ZOOM_POINTS 5.0   /* the zoomed scatter: from FP32 accuracy minus this */
#define HALO "paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\""

/* A point's tooltip: "trial 12: 89.50 %, 30.2 KB (11.2x smaller than FP32)". */
static void point_title(struct textbuf *b, const struct study_report *r, const struct store_trial *t,
			const char *extra)
{
	char sz[32];
	textbuf_printf(b, "<title>trial %lld: %.2f %% (%+.2f vs FP32), %s, %.2fx smaller than FP32, "
			  "mean %.2f bits%s%s</title>",
		       (long long)t->number, t->metrics.accuracy,
		       t->metrics.accuracy - r->info.baseline.accuracy,
		       fmt_bytes((double)t->metrics.size_bytes, sz, sizeof sz),
		       (double)r->info.baseline.size_bytes / (double)t->metrics.size_bytes,
		       t->metrics.mean_bits, extra ? "; " : "", extra ? extra : "");
}

static double size_kb(const struct store_trial *t)
{
	return t->metrics.size_bytes > 0 ? (double)t->metrics.size_bytes / 1024.0 : NAN;
}

/* What a scatter shows: the ranges, and whether it is the zoom on the top of
 * the front (points outside are left out there, and carry other classes). */
struct view {
	double x_lo, x_hi, y_lo, y_hi;
	bool zoom;
};

/* The accuracy bound the constraints set (NAN: none). */
static double accuracy_bound(const struct study_report *r)
{
	const struct space_constraints *con = r->goals ? &r->goals->con : NULL;
	double bound = NAN;
	if (con && !isnan(con->min_accuracy))
		bound = con->min_accuracy;
	if (con && !isnan(con->max_accuracy_drop))
		bound = fmax(isnan(bound) ? -INFINITY : bound,
			     r->info.baseline.accuracy - con->max_accuracy_drop);
	return bound;
}

static double size_bound_kb(const struct study_report *r)
{
	const struct space_constraints *con = r->goals ? &r->goals->con : NULL;
	return con && !isnan(con->max_size_bytes) ? con->max_size_bytes / 1024.0 : NAN;
}

/* The full view: every complete trial, FP32 and the bounds. */
static struct view full_view(const struct study_report *r)
{
	const struct baseline *base = &r->info.baseline;
	struct view v = {(double)base->size_bytes / 1024.0, (double)base->size_bytes / 1024.0,
			 base->accuracy, base->accuracy, false};
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE || isnan(size_kb(t)))
			continue;
		v.x_lo = fmin(v.x_lo, size_kb(t));
		v.x_hi = fmax(v.x_hi, size_kb(t));
		v.y_lo = fmin(v.y_lo, t->metrics.accuracy);
		v.y_hi = fmax(v.y_hi, t->metrics.accuracy);
	}
	double sb = size_bound_kb(r), ab = accuracy_bound(r);
	if (sb > 0) {
		v.x_lo = fmin(v.x_lo, sb);
		v.x_hi = fmax(v.x_hi, sb);
	}
	if (!isnan(ab)) {
		v.y_lo = fmin(v.y_lo, ab);
		v.y_hi = fmax(v.y_hi, ab);
	}
	return v;
}

/* The zoom on the top of the front: accuracy from ZOOM_POINTS below FP32 (or
 * a point below the accuracy bound, if lower) and the sizes of the trials
 * there. False when the full view already shows that much detail (its
 * accuracy range is less than twice the zoom's) or there is nothing to zoom. */
static bool zoom_view(const struct study_report *r, const struct view *full, struct view *v)
{
	double lo = r->info.baseline.accuracy - ZOOM_POINTS, ab = accuracy_bound(r);
	if (!isnan(ab) && ab - 1 < lo)
		lo = ab - 1;
	*v = (struct view){INFINITY, -INFINITY, lo, -INFINITY, true};
	int n = 0;
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE || isnan(size_kb(t)) || t->metrics.accuracy < lo)
			continue;
		v->x_lo = fmin(v->x_lo, size_kb(t));
		v->x_hi = fmax(v->x_hi, size_kb(t));
		v->y_hi = fmax(v->y_hi, t->metrics.accuracy);
		n++;
	}
	v->y_hi = fmax(v->y_hi, r->info.baseline.accuracy);
	double sb = size_bound_kb(r);
	if (n && sb > 0 && sb < 2 * v->x_hi && sb > v->x_lo / 2) {
		v->x_lo = fmin(v->x_lo, sb);
		v->x_hi = fmax(v->x_hi, sb);
	}
	return n >= 2 && full->y_hi - full->y_lo > 2 * (v->y_hi - v->y_lo);
}

/* A labelled square around a trial's point. */
static void ring(const struct svg_chart *c, const struct study_report *r, int64_t number,
		 const char *label, const char *color, const char *cls)
{
	const struct store_trial *t = trial_by_number(r, number);
	if (!t || isnan(size_kb(t)))
		return;
	double x = svg_x(c, size_kb(t)), y = svg_y(c, t->metrics.accuracy);
	if (x < c->left || x > c->right || y < c->top || y > c->bottom)
		return;
	char attrs[256];
	textbuf_printf(c->b,
		       "<rect class=\"%s\" data-trial=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"14\" "
		       "height=\"14\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
		       cls, (long long)number, x - 7, y - 7, color);
	/* right of the point, or left of it near the right edge */
	bool left = x + 10 + svg_text_width(label, 11) > c->right;
	snprintf(attrs, sizeof attrs,
		 "text-anchor=\"%s\" font-size=\"11\" font-weight=\"bold\" fill=\"%s\" " HALO,
		 left ? "end" : "start", color);
	svg_text_px(c->b, left ? x - 10 : x + 10, y + 16, attrs, label);
}

/* A study's accuracy/size scatter as one standalone SVG. In the full view
 * each complete trial is one <circle class="trial" data-trial="N">, the
 * front's with class "trial front"; the zoom uses "ztrial" and "ztrial
 * zfront" for the points it shows, and labels the front's with their
 * numbers. */
static void scatter_svg(struct textbuf *b, const struct study_report *r, const char *id,
			const struct view *v)
{
	const double W = 960, H = v->zoom ? 480 : 560;
	const struct baseline *base = &r->info.baseline;
	const char *pt_class = v->zoom ? "ztrial" : "trial";
	struct svg_chart c;
	char title[STORE_NAME_MAX + 160], label[160], clip[64];
	const char *best_text = r->goals && r->rule == BEST_NEAR_FP32
					? "best: the cheapest within 1 point of FP32"
					: "best under the constraints";
	if (v->zoom)
		snprintf(title, sizeof title, "study %s: the top of the front, within %.3g points "
					      "of FP32",
			 r->info.name, base->accuracy - v->y_lo);
	else
		snprintf(title, sizeof title, "study %s: %d complete trials, %d on the front",
			 r->info.name, r->n_complete, r->front.n_front);
	/* the legend goes right of the title, or under it when they would meet */
	double legend_w = 112 + 124 + 24 + svg_text_width(best_text, 11);
	double title_w = svg_text_width(title, 15) * 1.1; /* bold */
	bool two_lines = 70 + title_w + 24 > W - 28 - legend_w;
	svg_chart_init(&c, b, W, H, 70, two_lines ? 60 : 44, 28, 62);
	svg_open(b, W, H, id, title);
	c.x = (struct svg_scale){v->x_lo, v->x_hi, true, c.left, c.right};
	c.y = (struct svg_scale){v->y_lo, v->y_hi, false, c.bottom, c.top};
	svg_scale_nice(&c.x, 8);
	if (v->zoom) /* the zoom starts where it says */
		c.y.lo = v->y_lo, c.y.hi = v->y_hi + 0.08 * (v->y_hi - v->y_lo);
	else
		svg_scale_nice(&c.y, 8);
	svg_axes(&c, "size (KB, log scale)", "validation accuracy (%)", NULL, NULL);
	snprintf(clip, sizeof clip, "%s-clip", id ? id : "scatter");
	textbuf_add(b, "<defs><clipPath id=\"");
	textbuf_escape(b, clip);
	textbuf_printf(b, "\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
			  "</clipPath></defs>\n<g clip-path=\"url(#",
		       c.left, c.top, c.right - c.left, c.bottom - c.top);
	textbuf_escape(b, clip);
	textbuf_add(b, ")\">\n");

	/* the constraints: their infeasible side shaded, the bound dashed */
	double sb = size_bound_kb(r), ab = accuracy_bound(r);
	if (sb > 0) {
		double x = svg_x(&c, sb);
		svg_rect_px(b, x, c.top, c.right - x, c.bottom - c.top,
			    "class=\"constraint\" fill=\"#b2182b\" fill-opacity=\"0.06\"");
		svg_line_px(b, x, c.top, x, c.bottom,
			    "stroke=\"#b2182b\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
	}
	if (!isnan(ab)) {
		double y = svg_y(&c, ab);
		svg_rect_px(b, c.left, y, c.right - c.left, c.bottom - y,
			    "class=\"constraint\" fill=\"#b2182b\" fill-opacity=\"0.06\"");
		svg_line_px(b, c.left, y, c.right, y,
			    "stroke=\"#b2182b\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
	} else if (r->goals && r->rule == BEST_NEAR_FP32) {
		double y = svg_y(&c, base->accuracy - REPORT_NEAR_FP32);
		svg_line_px(b, c.left, y, c.right, y,
			    "stroke=\"#777\" stroke-width=\"1\" stroke-dasharray=\"2 3\"");
	}
	if (v->zoom) { /* FP32's accuracy, for the eye */
		double y = svg_y(&c, base->accuracy);
		svg_line_px(b, c.left, y, c.right, y, "stroke=\"#222\" stroke-width=\"1\" "
						      "stroke-dasharray=\"8 3 2 3\"");
	}

	/* every complete trial off the front, faint */
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_COMPLETE || on_front(r, t->number))
			continue;
		double kb = size_kb(t);
		if (v->zoom && (isnan(kb) || t->metrics.accuracy < v->y_lo))
			continue;
		textbuf_printf(b,
			       "<circle class=\"%s\" data-trial=\"%lld\" cx=\"%.1f\" cy=\"%.1f\" "
			       "r=\"3.2\" fill=\"#5a6b7d\" fill-opacity=\"0.35\">",
			       pt_class, (long long)t->number, isnan(kb) ? c.left : svg_x(&c, kb),
			       svg_y(&c, t->metrics.accuracy));
		point_title(b, r, t, NULL);
		textbuf_add(b, "</circle>\n");
	}
	/* the front, joined from small to large */
	int nf = r->front.n_front;
	double *fx = malloc(sizeof(double) * (size_t)(nf ? nf : 1));
	double *fy = malloc(sizeof(double) * (size_t)(nf ? nf : 1));
	if (fx && fy) {
		for (int i = 0; i < nf; i++) { /* listed most accurate first: largest first */
			fx[nf - 1 - i] = size_kb(&r->front.front[i]);
			fy[nf - 1 - i] = r->front.front[i].metrics.accuracy;
		}
		svg_polyline(&c, fx, fy, nf,
			     "class=\"front-line\" stroke=\"#0072b2\" stroke-width=\"2\" "
			     "stroke-linejoin=\"round\"");
	} else {
		b->failed = true;
	}
	free(fx);
	free(fy);
	for (int i = 0; i < nf; i++) {
		const struct store_trial *t = &r->front.front[i];
		if (v->zoom && t->metrics.accuracy < v->y_lo)
			continue;
		double x = svg_x(&c, size_kb(t)), y = svg_y(&c, t->metrics.accuracy);
		textbuf_printf(b,
			       "<circle class=\"%s\" data-trial=\"%lld\" cx=\"%.1f\" "
			       "cy=\"%.1f\" r=\"5\" fill=\"#0072b2\" stroke=\"#ffffff\" "
			       "stroke-width=\"1.2\">",
			       v->zoom ? "ztrial zfront" : "trial front", (long long)t->number, x, y);
		point_title(b, r, t, "on the front");
		textbuf_add(b, "</circle>\n");
	}
	textbuf_add(b, "</g>\n");

	/* labels, over everything: bounds, FP32, INT8/INT4, the best trial */
	if (sb > 0 && svg_x(&c, sb) <= c.right) {
		snprintf(label, sizeof label, "max size %.6g KB", sb);
		svg_text_px(b, svg_x(&c, sb) - 6, c.top + 14,
			    "text-anchor=\"end\" font-size=\"11\" fill=\"#b2182b\" " HALO, label);
	}
	if (!isnan(ab)) {
		snprintf(label, sizeof label, "min accuracy %.2f %%", ab);
		svg_text_px(b, c.right - 6, svg_y(&c, ab) + 14,
			    "text-anchor=\"end\" font-size=\"11\" fill=\"#b2182b\" " HALO, label);
	} else if (r->goals && r->rule == BEST_NEAR_FP32) {
		svg_text_px(b, c.right - 6, svg_y(&c, base->accuracy - REPORT_NEAR_FP32) + 14,
			    "text-anchor=\"end\" font-size=\"11\" fill=\"#555\" " HALO,
			    "FP32 - 1 point: without constraints the best is the cheapest above");
	}
	if (v->zoom) {
		snprintf(label, sizeof label, "FP32 %.2f %%", base->accuracy);
		svg_text_px(b, c.left + 6, svg_y(&c, base->accuracy) - 6,
			    "font-size=\"11\" font-weight=\"bold\" fill=\"#222\" " HALO, label);
		/* the front's trial numbers, to find them in the table */
		for (int i = 0; i < nf; i++) {
			const struct store_trial *t = &r->front.front[i];
			if (t->metrics.accuracy < v->y_lo)
				continue;
			snprintf(label, sizeof label, "#%lld", (long long)t->number);
			svg_text_px(b, svg_x(&c, size_kb(t)) - 7, svg_y(&c, t->metrics.accuracy) - 7,
				    "text-anchor=\"end\" font-size=\"10\" fill=\"#0b4f7c\" " HALO, label);
		}
	} else {
		double x = svg_x(&c, (double)base->size_bytes / 1024.0), y = svg_y(&c, base->accuracy);
		textbuf_printf(b,
			       "<path class=\"fp32\" d=\"M%.1f %.1fl7 7l-7 7l-7 -7z\" fill=\"#222\">"
			       "<title>FP32: %.2f %%, %s</title></path>\n",
			       x, y - 7, base->accuracy,
			       fmt_bytes((double)base->size_bytes, label, sizeof label));
		svg_text_px(b, x - 10, y - 8,
			    "text-anchor=\"end\" font-size=\"11\" font-weight=\"bold\" fill=\"#222\" " HALO,
			    "FP32");
	}
	if (r->int8_trial) {
		snprintf(label, sizeof label, "INT8 (#%lld)", (long long)r->int8_trial);
		ring(&c, r, r->int8_trial, label, "#009e73", "uniform int8");
	}
	if (r->int4_trial) {
		snprintf(label, sizeof label, "INT4 (#%lld)", (long long)r->int4_trial);
		ring(&c, r, r->int4_trial, label, "#b0498a", "uniform int4");
	}
	const struct store_trial *bt = r->best ? trial_by_number(r, r->best) : NULL;
	if (bt && !isnan(size_kb(bt)) && bt->metrics.accuracy >= c.y.lo) {
		double x = svg_x(&c, size_kb(bt)), y = svg_y(&c, bt->metrics.accuracy);
		textbuf_printf(b,
			       "<circle class=\"best\" data-trial=\"%lld\" cx=\"%.1f\" cy=\"%.1f\" "
			       "r=\"9\" fill=\"none\" stroke=\"#d55e00\" stroke-width=\"2\"/>\n",
			       (long long)bt->number, x, y);
		snprintf(label, sizeof label, "best #%lld", (long long)bt->number);
		svg_text_px(b, x + 12, y + 18,
			    "font-size=\"11\" font-weight=\"bold\" fill=\"#d55e00\" " HALO, label);
	}
	/* the legend, in one line above the plot's right end: on no data */
	double lx = c.right - legend_w, ly = two_lines ? 44 : 22;
	textbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"#5a6b7d\" "
			  "fill-opacity=\"0.35\"/>\n",
		       lx + 6, ly - 4);
	svg_text_px(b, lx + 14, ly, "font-size=\"11\"", "a complete trial");
	lx += 112;
	svg_line_px(b, lx, ly - 4, lx + 20, ly - 4, "stroke=\"#0072b2\" stroke-width=\"2\"");
	textbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#0072b2\"/>\n", lx + 10,
		       ly - 4);
	svg_text_px(b, lx + 26, ly, "font-size=\"11\"", "the Pareto front");
	lx += 124;
	textbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#d55e00\" "
			  "stroke-width=\"2\"/>\n",
		       lx + 8, ly - 4);
	svg_text_px(b, lx + 20, ly, "font-size=\"11\"", best_text);
	svg_text_px(b, c.left, 24, "font-size=\"15\" font-weight=\"bold\" fill=\"#222\"", title);
	svg_close(b);
}

/* --- the progress charts ------------------------------------------------------ */

/* One chart of a per-trial series of several studies (which[], n of them):
 * series 0 is the hypervolume ratio, 1 the best under the constraints. */
static void progress_svg(struct textbuf *b, struct study_report *const *rs, const int *which,
			 int n, int series, const char *title, const char *y_title, const char *id)
{
	const double W = 960, H = 360;
	struct svg_chart c;
	svg_chart_init(&c, b, W, H, 70, 44, 84, 62); /* the right margin: the end values */
	double x_hi = 1, y_lo = INFINITY, y_hi = -INFINITY;
	struct end_label {
		double y;
		char text[48];
		const char *color;
	} ends[REPORT_MAX_STUDIES];
	int n_ends = 0;
	for (int k = 0; k < n; k++) {
		const struct study_report *r = rs[which[k]];
		const double *ys = series == 0 ? r->prog_hv : r->prog_best;
		for (int i = 0; i < r->n_prog; i++) {
			x_hi = fmax(x_hi, r->prog_trial[i]);
			if (!isnan(ys[i])) {
				y_lo = fmin(y_lo, ys[i]);
				y_hi = fmax(y_hi, ys[i]);
			}
		}
	}
	if (!isfinite(y_lo)) {
		y_lo = 0;
		y_hi = 1;
	}
	svg_open(b, W, H, id, title);
	c.x = (struct svg_scale){0, x_hi, false, c.left, c.right};
	c.y = (struct svg_scale){y_lo, y_hi, false, c.bottom, c.top};
	svg_scale_nice(&c.x, 10);
	c.x.lo = 0;
	svg_scale_nice(&c.y, 6);
	svg_axes(&c, "trial", y_title, NULL, NULL);
	for (int k = 0; k < n; k++) {
		const struct study_report *r = rs[which[k]];
		const double *ys = series == 0 ? r->prog_hv : r->prog_best;
		char attrs[160];
		snprintf(attrs, sizeof attrs,
			 "class=\"progress\" data-study=\"%d\" stroke=\"%s\" stroke-width=\"2\"",
			 which[k], svg_palette(which[k]));
		textbuf_add(b, "<g>");
		textbuf_add(b, "<title>");
		textbuf_escape(b, r->info.name);
		textbuf_add(b, "</title>\n");
		svg_steps(&c, r->prog_trial, ys, r->n_prog, attrs);
		textbuf_add(b, "</g>\n");
		/* the last value, labelled right of the plot (placed below) */
		int last = r->n_prog - 1;
		while (last >= 0 && isnan(ys[last]))
			last--;
		if (last >= 0) {
			struct end_label *e = &ends[n_ends++];
			if (series == 0)
				snprintf(e->text, sizeof e->text, "%.4f", ys[last]);
			else
				snprintf(e->text, sizeof e->text, "%.2f%s%s", ys[last],
					 r->rule == BEST_ACCURATE ? "" : " ",
					 r->rule == BEST_ACCURATE ? " %" : cost_unit(r->cost));
			e->y = svg_y(&c, ys[last]) + 4;
			e->color = svg_palette(which[k]);
		}
	}
	/* end labels top to bottom, each at least a line below the one above */
	for (int i = 1; i < n_ends; i++)
		for (int j = i; j > 0 && ends[j].y < ends[j - 1].y; j--) {
			struct end_label t = ends[j];
			ends[j] = ends[j - 1];
			ends[j - 1] = t;
		}
	for (int i = 0; i < n_ends; i++) {
		char attrs[160];
		if (i && ends[i].y < ends[i - 1].y + 13)
			ends[i].y = ends[i - 1].y + 13;
		snprintf(attrs, sizeof attrs, "font-size=\"11\" font-weight=\"bold\" fill=\"%s\"",
			 ends[i].color);
		svg_text_px(b, c.right + 6, ends[i].y, attrs, ends[i].text);
	}
	/* legend: one swatch per study, top left under the title */
	double lx = c.left;
	for (int k = 0; k < n; k++) {
		const struct study_report *r = rs[which[k]];
		char text[STORE_NAME_MAX + 64], stroke[64];
		const char *strategy = r->goals ? space_strategy_name(r->goals->search.strategy) : NULL;
		snprintf(text, sizeof text, "%s%s%s%s", r->info.name, strategy ? " (" : "",
			 strategy ? strategy : "", strategy ? ")" : "");
		snprintf(stroke, sizeof stroke, "stroke=\"%s\" stroke-width=\"3\"", svg_palette(which[k]));
		svg_line_px(b, lx, 32, lx + 22, 32, stroke);
		svg_text_px(b, lx + 28, 36, "font-size=\"12\" fill=\"#222\"", text);
		lx += 44 + svg_text_width(text, 12);
	}
	svg_text_px(b, c.left, 16, "font-size=\"15\" font-weight=\"bold\" fill=\"#222\"", title);
	svg_close(b);
}

/* --- the heat map --------------------------------------------------------- */

#define HM_KNOBS 5

/* How hard a knob compresses: 0 left as it is .. 1 the most presso does. */
static double knob_strength(const struct layer_choice *l, int k)
{
	switch (k) {
	case 0: return (8.0 - l->bits) / 7.0;       /* 8 .. 1 bits */
	case 1: return (8.0 - l->act_bits) / 4.0;   /* 8 .. 4 bits */
	case 2: return l->bias_correction ? 0.3 : 0; /* a repair, not a compression */
	case 3: return l->prune / 0.95;
	default: return 1.0 - l->rank;
	}
}

static void knob_text(const struct layer_choice *l, int k, char *buf, size_t cap)
{
	switch (k) {
	case 0: snprintf(buf, cap, "%d", l->bits); break;
	case 1: snprintf(buf, cap, "%d", l->act_bits); break;
	case 2: snprintf(buf, cap, "%s", l->bias_correction ? "on" : "off"); break;
	case 3:
		if (l->prune > 0)
			snprintf(buf, cap, "%.2f%s", l->prune, l->prune_kind ? " s" : "");
		else
			snprintf(buf, cap, "0");
		break;
	default: snprintf(buf, cap, "%.2g", l->rank); break;
	}
}

/* Layer names are long ("/blocks/blocks.3/body/body.0/body.0.0/Conv"): the
 * tail tells them apart, so a long one keeps its last max_chars characters. */
static void tail_name(const char *name, size_t max_chars, char *buf, size_t cap)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		n += (*p & 0xc0) != 0x80;
	if (n <= max_chars) {
		snprintf(buf, cap, "%s", name);
		return;
	}
	const unsigned char *p = (const unsigned char *)name;
	for (size_t skip = n - (max_chars - 1); *p && skip; p++)
		if ((p[1] & 0xc0) != 0x80)
			skip--;
	snprintf(buf, cap, "…%s", (const char *)p);
}

static void heatmap_svg(struct textbuf *b, const struct study_report *r, const char *id)
{
	static const char *const head[HM_KNOBS] = {"bits", "act bits", "bias corr.", "prune",
						   "rank"};
	const double row_h = 18, cell_w = 62, name_chars = 44, top = 70, font = 11;
	double name_w = 8;
	char buf[256], color[8];
	for (int i = 0; i < r->n_layers; i++) {
		tail_name(r->layers[i].layer, (size_t)name_chars, buf, sizeof buf);
		name_w = fmax(name_w, svg_text_width(buf, font));
	}
	name_w += 12;
	bool model = r->params && r->macs;
	double x0 = name_w, xp = x0 + HM_KNOBS * cell_w + 12;
	double W = xp + (model ? 300 : 20), H = top + row_h * r->n_layers + 50;
	snprintf(buf, sizeof buf, "the policy of trial %lld, layer by layer", (long long)r->chosen);
	svg_open(b, W, H, id, buf);
	for (int k = 0; k < HM_KNOBS; k++)
		svg_text_px(b, x0 + k * cell_w + cell_w / 2, top - 8,
			    "text-anchor=\"middle\" font-size=\"11\" font-weight=\"bold\" fill=\"#333\"",
			    head[k]);
	svg_text_px(b, 4, top - 8, "font-size=\"11\" font-weight=\"bold\" fill=\"#333\"", "layer");
	int64_t max_macs = 1, sum_params = 0, sum_macs = 0;
	if (model) {
		svg_text_px(b, xp + 70, top - 8,
			    "text-anchor=\"end\" font-size=\"11\" font-weight=\"bold\" fill=\"#333\"",
			    "params");
		svg_text_px(b, xp + 140, top - 8,
			    "text-anchor=\"end\" font-size=\"11\" font-weight=\"bold\" fill=\"#333\"",
			    "MACs");
		svg_text_px(b, xp + 152, top - 8, "font-size=\"11\" font-weight=\"bold\" fill=\"#333\"",
			    "share of MACs");
		for (int i = 0; i < r->n_layers; i++) {
			if (r->macs[i] > max_macs)
				max_macs = r->macs[i];
			sum_params += r->params[i] > 0 ? r->params[i] : 0;
			sum_macs += r->macs[i] > 0 ? r->macs[i] : 0;
		}
	}
	for (int i = 0; i < r->n_layers; i++) {
		const struct layer_choice *l = &r->layers[i];
		double y = top + i * row_h;
		if (i % 2)
			svg_rect_px(b, 0, y, W, row_h, "fill=\"#f6f6f6\"");
		tail_name(l->layer, (size_t)name_chars, buf, sizeof buf);
		textbuf_printf(b, "<g class=\"layer\" data-layer=\"%d\"><title>", i);
		textbuf_escape(b, l->layer);
		textbuf_add(b, "</title>\n");
		svg_text_px(b, 4, y + 13, "font-size=\"11\" fill=\"#222\"", buf);
		for (int k = 0; k < HM_KNOBS; k++) {
			double t = knob_strength(l, k);
			char attrs[96], cell[32];
			if (k == 2)
				snprintf(color, sizeof color, "%s", l->bias_correction ? "#cfe3f1" : "#f6f1e4");
			else
				svg_ramp(t, color);
			snprintf(attrs, sizeof attrs, "class=\"cell\" fill=\"%s\" stroke=\"#ffffff\"", color);
			svg_rect_px(b, x0 + k * cell_w, y, cell_w, row_h, attrs);
			knob_text(l, k, cell, sizeof cell);
			snprintf(attrs, sizeof attrs, "text-anchor=\"middle\" font-size=\"11\" fill=\"%s\"",
				 k != 2 && svg_ramp_dark(t) ? "#ffffff" : "#222222");
			svg_text_px(b, x0 + k * cell_w + cell_w / 2, y + 13, attrs, cell);
		}
		if (model && r->params[i] >= 0) {
			svg_text_px(b, xp + 70, y + 13, "text-anchor=\"end\" font-size=\"11\" fill=\"#222\"",
				    fmt_count((double)r->params[i], buf, sizeof buf));
			svg_text_px(b, xp + 140, y + 13, "text-anchor=\"end\" font-size=\"11\" fill=\"#222\"",
				    fmt_count((double)r->macs[i], buf, sizeof buf));
			svg_rect_px(b, xp + 152, y + 4, 110.0 * (double)r->macs[i] / (double)max_macs,
				    row_h - 8, "fill=\"#8da0b3\"");
			snprintf(buf, sizeof buf, "%.1f%%",
				 sum_macs ? 100.0 * (double)r->macs[i] / (double)sum_macs : 0);
			svg_text_px(b, xp + 152 + 110.0 * (double)r->macs[i] / (double)max_macs + 4,
				    y + 13, "font-size=\"10\" fill=\"#555\"", buf);
		}
		textbuf_add(b, "</g>\n");
	}
	double yb = top + row_h * r->n_layers;
	if (model) {
		char p[32], m[32];
		snprintf(buf, sizeof buf, "total %s params, %s MACs per image",
			 fmt_count((double)sum_params, p, sizeof p),
			 fmt_count((double)sum_macs, m, sizeof m));
		svg_text_px(b, xp + 140, yb + 16, "text-anchor=\"end\" font-size=\"11\" fill=\"#333\"", buf);
	}
	/* the ramp's legend */
	svg_text_px(b, 4, 18, "font-size=\"11\" fill=\"#333\"", "left as it is");
	for (int k = 0; k < 10; k++) {
		char attrs[64];
		snprintf(attrs, sizeof attrs, "fill=\"%s\"", svg_ramp(k / 9.0, color));
		svg_rect_px(b, 80 + k * 16, 8, 16, 12, attrs);
	}
	svg_text_px(b, 248, 18, "font-size=\"11\" fill=\"#333\"",
		    "compressed hardest (fewer bits, more pruning, lower rank)");
	svg_text_px(b, 4, 38, "font-size=\"11\" fill=\"#555\"",
		    "prune: fraction of weights removed (s: structured); rank: kept fraction; "
		    "hover a row for the layer's full name");
	svg_close(b);
}

/* --- the page --------------------------------------------------------------- */

static const char css[] =
	"*{box-sizing:border-box}"
	"body{margin:0;background:#f3f4f6;color:#1f2328;font:14px/1.45 Helvetica,Arial,sans-serif}"
	"main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff;"
	"box-shadow:0 0 0 1px #e5e7eb}"
	"h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px;padding-top:12px;"
	"border-top:2px solid #e5e7eb}h3{font-size:15px;margin:26px 0 8px}"
	".meta{color:#57606a;margin:0 0 12px}"
	".cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}"
	".card{flex:1 1 180px;border:1px solid #e5e7eb;border-radius:6px;padding:8px 12px;"
	"background:#fafbfc}"
	".card b{display:block;font-size:18px}.card span{color:#57606a;font-size:12px}"
	"figure{margin:8px 0}figure svg{max-width:100%;height:auto;display:block}"
	"figcaption,.note{color:#57606a;font-size:12.5px;margin-top:4px}"
	".note{background:#fff8e6;border-left:3px solid #e69f00;padding:4px 8px;margin:6px 0}"
	".scroll{overflow-x:auto}"
	"table{border-collapse:collapse;font-size:13px;margin:6px 0}"
	"th,td{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:right;"
	"white-space:nowrap}th{background:#f6f8fa;font-weight:600;white-space:normal;"
	"vertical-align:bottom}"
	"td.l,th.l{text-align:left;white-space:normal}"
	"tr.best td{background:#fdf0e6;font-weight:600}"
	".tag{display:inline-block;font-size:11px;padding:0 5px;margin-left:4px;border-radius:3px;"
	"color:#fff;font-weight:600}.t-best{background:#d55e00}.t-int8{background:#009e73}"
	".t-int4{background:#cc79a7}"
	"pre{background:#f6f8fa;border:1px solid #e5e7eb;border-radius:6px;padding:10px;"
	"font-size:12px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-all;"
	"tab-size:2}.timings th{white-space:nowrap;vertical-align:top}"
	".cols{display:flex;flex-wrap:wrap;gap:24px}.cols>div{flex:1 1 300px;min-width:0}"
	"nav a{margin-right:14px}";

static void card(struct textbuf *b, const char *value, const char *what)
{
	textbuf_add(b, "<div class=\"card\"><b>");
	textbuf_escape(b, value);
	textbuf_add(b, "</b><span>");
	textbuf_escape(b, what);
	textbuf_add(b, "</span></div>\n");
}

static void notes_html(struct textbuf *b, const struct study_report *r)
{
	for (int i = 0; i < r->n_notes; i++) {
		textbuf_add(b, "<p class=\"note\">");
		textbuf_escape(b, r->notes[i]);
		textbuf_add(b, "</p>\n");
	}
}

static void cell_num(struct textbuf *b, const char *fmt, double v)
{
	if (isnan(v))
		textbuf_add(b, "<td>-</td>");
	else {
		textbuf_add(b, "<td>");
		textbuf_printf(b, fmt, v);
		textbuf_add(b, "</td>");
	}
}

static void front_table(struct textbuf *b, const struct study_report *r)
{
	const struct baseline *base = &r->info.baseline;
	textbuf_add(b, "<div class=\"scroll\"><table class=\"front\"><tr><th>trial</th><th>accuracy %</th>"
		       "<th>&#916; vs FP32</th><th>test accuracy %</th><th>size KB</th>"
		       "<th>smaller than FP32</th><th>BOPs</th><th>latency us</th>"
		       "<th>mean bits</th><th>mean prune</th><th>mean rank</th><th>tuned from</th></tr>\n");
	for (int i = 0; i < r->front.n_front; i++) {
		const struct store_trial *t = &r->front.front[i];
		const struct trial_metrics *m = &t->metrics;
		textbuf_printf(b, "<tr%s data-trial=\"%lld\"><td>%lld", t->number == r->chosen ? " class=\"best\"" : "",
			       (long long)t->number, (long long)t->number);
		if (t->number == r->best)
			textbuf_add(b, "<span class=\"tag t-best\">best</span>");
		if (t->number == r->int8_trial)
			textbuf_add(b, "<span class=\"tag t-int8\">INT8</span>");
		if (t->number == r->int4_trial)
			textbuf_add(b, "<span class=\"tag t-int4\">INT4</span>");
		textbuf_add(b, "</td>");
		cell_num(b, "%.2f", m->accuracy);
		cell_num(b, "%+.2f", m->accuracy - base->accuracy);
		cell_num(b, "%.2f", m->test_accuracy);
		cell_num(b, "%.1f", (double)m->size_bytes / 1024.0);
		cell_num(b, "%.2fx", (double)base->size_bytes / (double)m->size_bytes);
		cell_num(b, "%.4g", m->bops);
		cell_num(b, "%.1f", m->latency_us);
		cell_num(b, "%.2f", m->mean_bits);
		cell_num(b, "%.3f", m->mean_prune);
		cell_num(b, "%.3f", m->mean_rank);
		if (t->parent_trial > 0)
			textbuf_printf(b, "<td class=\"tuned\">%lld</td>", (long long)t->parent_trial);
		else
			textbuf_add(b, "<td>-</td>");
		textbuf_add(b, "</tr>\n");
	}
	textbuf_add(b, "</table></div>\n");
	if (r->front.n_front == 0)
		textbuf_add(b, "<p class=\"note\">No complete trial yet: the front is empty.</p>\n");
}

static void row(struct textbuf *b, const char *key, const char *value)
{
	textbuf_add(b, "<tr><th class=\"l\">");
	textbuf_escape(b, key);
	textbuf_add(b, "</th><td class=\"l\">");
	textbuf_escape(b, value);
	textbuf_add(b, "</td></tr>\n");
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;
	return (a > b) - (a < b);
}

static void timings_table(struct textbuf *b, const struct study_report *r)
{
	char buf[256], t1[32], t2[32];
	double first = INFINITY, last = -INFINITY, sum = 0;
	int n_timed = 0;
	double *secs = malloc(sizeof(double) * (size_t)(r->n_trials ? r->n_trials : 1));
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		first = fmin(first, t->started_at);
		if (!isnan(t->ended_at)) {
			last = fmax(last, t->ended_at);
			if (secs && t->state == TRIAL_COMPLETE) {
				secs[n_timed++] = t->ended_at - t->started_at;
				sum += t->ended_at - t->started_at;
			}
		}
	}
	textbuf_add(b, "<table class=\"timings\">\n");
	row(b, "status", r->info.status ? r->info.status : "-");
	row(b, "created", fmt_time(r->info.created_at, buf, sizeof buf));
	row(b, "finished", isnan(r->info.finished_at) ? "not yet (running, or stopped without "
							  "finishing)"
						      : fmt_time(r->info.finished_at, buf, sizeof buf));
	row(b, "first trial started", fmt_time(first, buf, sizeof buf));
	row(b, "last trial ended", fmt_time(last, buf, sizeof buf));
	double wall = last - first;
	row(b, "first start to last end", isfinite(wall) ? fmt_duration(wall, buf, sizeof buf) : "-");
	snprintf(buf, sizeof buf, "%d complete, %d failed (%d lost workers), %d running",
		 r->n_complete, r->n_failed, r->n_lost, r->n_running);
	row(b, "trials", buf);
	if (n_timed) {
		qsort(secs, (size_t)n_timed, sizeof *secs, cmp_double);
		snprintf(buf, sizeof buf, "mean %s, median %s",
			 fmt_duration(sum / n_timed, t1, sizeof t1),
			 fmt_duration(secs[n_timed / 2], t2, sizeof t2));
		row(b, "one trial's evaluation", buf);
	}
	if (isfinite(wall) && wall > 0) {
		snprintf(buf, sizeof buf, "%.1f complete trials per minute", r->n_complete * 60.0 / wall);
		row(b, "throughput", buf);
	}
	free(secs);
	snprintf(buf, sizeof buf, "%s (SHA-256 %.16s...)", r->info.model_path ? r->info.model_path : "-",
		 r->info.model_sha256 ? r->info.model_sha256 : "");
	row(b, "model", buf);
	row(b, "dataset", r->info.dataset ? r->info.dataset : "-");
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->info.seed);
	row(b, "seed", buf);
	row(b, "made by presso", r->info.presso_version ? r->info.presso_version : "-");
	textbuf_add(b, "</table>\n");
	/* the distinct failures, most frequent first as they come */
	const char *err[MAX_ERRORS];
	int count[MAX_ERRORS], n_err = 0, more = 0;
	for (int i = 0; i < r->n_trials; i++) {
		const struct store_trial *t = &r->trials[i];
		if (t->state != TRIAL_FAILED || !t->error)
			continue;
		int j = 0;
		while (j < n_err && strcmp(err[j], t->error) != 0)
			j++;
		if (j < n_err)
			count[j]++;
		else if (n_err < MAX_ERRORS) {
			err[n_err] = t->error;
			count[n_err++] = 1;
		} else
			more++;
	}
	if (n_err) {
		textbuf_add(b, "<table class=\"failures\"><tr><th>failed trials</th><th class=\"l\">"
			       "why</th></tr>\n");
		for (int j = 0; j < n_err; j++) {
			textbuf_printf(b, "<tr><td>%d</td><td class=\"l\">", count[j]);
			textbuf_escape(b, err[j]);
			textbuf_add(b, "</td></tr>\n");
		}
		if (more)
			textbuf_printf(b, "<tr><td>%d</td><td class=\"l\">other reasons</td></tr>\n", more);
		textbuf_add(b, "</table>\n");
	}
}

static void config_pre(struct textbuf *b, const struct study_report *r)
{
	cJSON *j = cJSON_Parse(r->info.config_json ? r->info.config_json : "");
	char *text = j ? cJSON_Print(j) : NULL;
	textbuf_add(b, "<pre class=\"config\">");
	textbuf_escape(b, text ? text : r->info.config_json);
	textbuf_add(b, "</pre>\n");
	free(text);
	cJSON_Delete(j);
}

static void study_html(struct textbuf *b, const struct study_report *r, int index)
{
	const struct baseline *base = &r->info.baseline;
	char v[128], w[256], id[32], sz[32];
	textbuf_printf(b, "<section class=\"study\" id=\"study-%d\">\n<h2>Study ", index);
	textbuf_escape(b, r->info.name);
	textbuf_add(b, "</h2>\n<div class=\"cards\">\n");
	snprintf(v, sizeof v, "%d", r->n_complete);
	snprintf(w, sizeof w, "complete trials (%d failed, %d running)", r->n_failed, r->n_running);
	card(b, v, w);
	snprintf(v, sizeof v, "%.2f %%", base->accuracy);
	snprintf(w, sizeof w, "FP32 validation accuracy, %s",
		 fmt_bytes((double)base->size_bytes, sz, sizeof sz));
	card(b, v, w);
	snprintf(v, sizeof v, "%d", r->front.n_front);
	if (r->front.has_hypervolume)
		snprintf(w, sizeof w, "on the accuracy/size front; hypervolume %.4f of the box", r->front.hypervolume_ratio);
	else
		snprintf(w, sizeof w, "on the accuracy/size front");
	card(b, v, w);
	const struct store_trial *bt = r->best ? trial_by_number(r, r->best) : NULL;
	if (bt) {
		snprintf(v, sizeof v, "#%lld: %.2f %%, %s", (long long)bt->number, bt->metrics.accuracy,
			 fmt_bytes((double)bt->metrics.size_bytes, sz, sizeof sz));
		snprintf(w, sizeof w, "best: %s; %.2fx smaller than FP32, %+.2f points",
			 rule_text(r), (double)base->size_bytes / (double)bt->metrics.size_bytes,
			 bt->metrics.accuracy - base->accuracy);
	} else {
		snprintf(v, sizeof v, "none");
		snprintf(w, sizeof w, "best: %s", rule_text(r));
	}
	card(b, v, w);
	textbuf_add(b, "</div>\n<p class=\"meta\">constraints: ");
	textbuf_escape(b, constraints_text(r, w, sizeof w));
	if (r->goals && !isnan(r->goals->con.max_latency_us))
		textbuf_add(b, " (the latency bound is not drawn on the scatter)");
	textbuf_add(b, "</p>\n");
	notes_html(b, r);

	textbuf_add(b, "<h3>Accuracy against size</h3>\n<figure>\n");
	snprintf(id, sizeof id, "scatter-%d", index);
	struct view full = full_view(r), zoom;
	scatter_svg(b, r, id, &full);
	textbuf_add(b, "<figcaption>Every complete trial's validation accuracy against its exact "
		       "compressed size. Hover a point for its trial. The front is the same as "
		       "<code>presso pareto --study ");
	textbuf_escape(b, r->info.name);
	textbuf_add(b, "</code> prints.</figcaption>\n</figure>\n");
	if (zoom_view(r, &full, &zoom)) {
		textbuf_add(b, "<figure>\n");
		snprintf(id, sizeof id, "zoom-%d", index);
		scatter_svg(b, r, id, &zoom);
		textbuf_add(b, "<figcaption>The same, zoomed on the trials close to FP32's accuracy, "
			       "with the front's trial numbers.</figcaption>\n</figure>\n");
	}

	textbuf_add(b, "<h3>The chosen policy");
	if (r->chosen)
		textbuf_printf(b, ": trial %lld", (long long)r->chosen);
	textbuf_add(b, "</h3>\n");
	if (r->chosen && r->n_layers) {
		const struct store_trial *t = trial_by_number(r, r->chosen);
		if (t) {
			textbuf_printf(b,
				       "<p class=\"meta\">%.2f %% validation accuracy (%+.2f vs FP32), "
				       "%s, %.2fx smaller than FP32, mean %.2f weight bits. "
				       "<code>presso export --study ",
				       t->metrics.accuracy, t->metrics.accuracy - base->accuracy,
				       fmt_bytes((double)t->metrics.size_bytes, sz, sizeof sz),
				       (double)base->size_bytes / (double)t->metrics.size_bytes,
				       t->metrics.mean_bits);
			textbuf_escape(b, r->info.name);
			textbuf_printf(b, " --trial %lld -o policy.json</code> writes it.</p>\n",
				       (long long)t->number);
		}
		textbuf_add(b, "<figure>\n");
		snprintf(id, sizeof id, "policy-%d", index);
		heatmap_svg(b, r, id);
		textbuf_add(b, "</figure>\n");
	} else {
		textbuf_add(b, "<p class=\"note\">No policy to show: the study has no complete "
			       "trial with its layers.</p>\n");
	}

	textbuf_add(b, "<h3>The front</h3>\n");
	front_table(b, r);
	if (r->front.has_hypervolume)
		textbuf_printf(b,
			       "<p class=\"meta\">Hypervolume %.4f of the box from the reference "
			       "point (chance accuracy %.4g %%, FP32 size %lld bytes) to the ideal "
			       "one (100 %%, 0 bytes); %.6g in percent x bytes.</p>\n",
			       r->front.hypervolume_ratio, r->front.ref[0],
			       (long long)base->size_bytes, r->front.hypervolume);

	textbuf_add(b, "<h3>Config and timings</h3>\n<div class=\"cols\"><div>\n");
	timings_table(b, r);
	textbuf_add(b, "</div><div>\n");
	config_pre(b, r);
	textbuf_add(b, "</div></div>\n</section>\n");
}

/* The progress section: one hypervolume chart, and one best-under-constraint
 * chart per kind of best (the studies' rules and costs may differ). */
static void progress_html(struct textbuf *b, struct study_report *const *rs, int n)
{
	int all[REPORT_MAX_STUDIES] = {0}, which[REPORT_MAX_STUDIES] = {0};
	if (n > REPORT_MAX_STUDIES)
		n = REPORT_MAX_STUDIES;
	for (int i = 0; i < n; i++)
		all[i] = i;
	textbuf_add(b, "<section id=\"progress\">\n<h2>The search's progress</h2>\n<figure>\n");
	progress_svg(b, rs, all, n, 0, "hypervolume of the accuracy/size front after each trial",
		     "hypervolume (fraction of the box)", "progress-hv");
	textbuf_add(b, "<figcaption>The fraction of the box between the reference point (chance "
		       "accuracy, FP32 size) and the ideal one (100 %, 0 bytes) that the front "
		       "dominates, after each complete trial: the last value is the one "
		       "<code>presso pareto</code> prints.</figcaption>\n</figure>\n");
	bool done[REPORT_MAX_STUDIES] = {false};
	int chart = 0;
	for (int i = 0; i < n; i++) {
		if (done[i] || !rs[i]->goals)
			continue;
		int m = 0;
		for (int j = i; j < n; j++) {
			bool same = rs[j]->goals && (rs[j]->rule == BEST_ACCURATE) ==
							    (rs[i]->rule == BEST_ACCURATE) &&
				    (rs[i]->rule == BEST_ACCURATE || rs[j]->cost == rs[i]->cost);
			if (!done[j] && same) {
				which[m++] = j;
				done[j] = true;
			}
		}
		char y_title[96], id[32], title[160];
		if (rs[i]->rule == BEST_ACCURATE)
			snprintf(y_title, sizeof y_title, "validation accuracy (%%)");
		else
			snprintf(y_title, sizeof y_title, "%s (%s)", store_objective_name(rs[i]->cost),
				 cost_unit(rs[i]->cost));
		snprintf(title, sizeof title, "the best trial so far: %s", rule_text(rs[i]));
		snprintf(id, sizeof id, "progress-best-%d", chart++);
		textbuf_add(b, "<figure>\n");
		progress_svg(b, rs, which, m, 1, title, y_title, id);
		textbuf_add(b, "<figcaption>The best trial under the study's constraints after each "
			       "complete trial, replayed with the search's own rule; no line "
			       "before one qualifies.</figcaption>\n</figure>\n");
	}
	textbuf_add(b, "</section>\n");
}

void report_page_html(struct textbuf *b, const char *db, struct study_report *const *rs, int n)
{
	char now[64];
	textbuf_add(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		       "<title>presso report: ");
	for (int i = 0; i < n; i++) {
		textbuf_add(b, i ? ", " : "");
		textbuf_escape(b, rs[i]->info.name);
	}
	textbuf_add(b, "</title>\n<style>");
	textbuf_add(b, css);
	textbuf_add(b, "</style>\n</head>\n<body>\n<main>\n<h1>presso report: ");
	for (int i = 0; i < n; i++) {
		textbuf_add(b, i ? ", " : "");
		textbuf_escape(b, rs[i]->info.name);
	}
	textbuf_add(b, "</h1>\n<p class=\"meta\">database ");
	textbuf_escape(b, db);
	textbuf_printf(b, "; written %s by presso %s</p>\n",
		       fmt_time((double)time(NULL), now, sizeof now), PRESSO_VERSION);
	if (n > 1) {
		textbuf_add(b, "<nav>");
		for (int i = 0; i < n; i++) {
			textbuf_printf(b, "<a href=\"#study-%d\">", i);
			textbuf_escape(b, rs[i]->info.name);
			textbuf_add(b, "</a>");
		}
		textbuf_add(b, "</nav>\n");
	}
	progress_html(b, rs, n);
	for (int i = 0; i < n; i++)
		study_html(b, rs[i], i);
	textbuf_add(b, "</main>\n</body>\n</html>\n");
}

void report_scatter_svg(struct textbuf *b, const struct study_report *r)
{
	struct view full = full_view(r);
	scatter_svg(b, r, NULL, &full);
}
