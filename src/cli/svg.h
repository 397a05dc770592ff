/* svg.h - a small SVG writer for the report's charts: scales (linear or
 * log10) with nice ticks, a chart frame with grid, tick labels and axis
 * titles, and the marks the charts are made of (circles, lines, polylines,
 * rectangles, text), written into a textbuf.
 *
 * Every picture is standalone SVG 1.1 (its own xmlns, presentation
 * attributes on the elements rather than CSS classes for looks), so the same
 * text can sit inline in an HTML page or be written to a .svg file. Classes
 * and data-* attributes on marks are hooks for readers and tests, not style.
 * Coordinates are written with one decimal: a tenth of a pixel is finer than
 * any screen shows and keeps the files small. Text is always escaped.
 */
#ifndef PRESSO_CLI_SVG_H
#define PRESSO_CLI_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/textbuf.h"

#define SVG_MAX_TICKS 24

/* Data -> pixels along one axis. */
struct svg_scale {
	double lo, hi;       /* the data range shown; lo > 0 on a log scale */
	bool log;            /* log10 scale */
	double px_lo, px_hi; /* where lo and hi land (px_hi < px_lo on a y axis) */
};

/* The pixel position of v (values outside the range land outside it). */
double svg_scale_px(const struct svg_scale *s, double v);

/* Widens [lo, hi] to a range whose ends read well: on a linear scale to
 * multiples of the tick step for about `target` ticks, on a log scale by a
 * margin of 6 % of the span either side. An empty range (lo == hi) is opened
 * around its value first. */
void svg_scale_nice(struct svg_scale *s, int target);

/* Up to max tick values inside [lo, hi], ascending; returns their number and
 * writes the step between linear ticks to *step (0 on a log scale). Linear:
 * multiples of 1, 2 or 5 x 10^k for about `target` ticks. Log: the coarsest
 * of {1}, {1, 2, 5}, {1, ..., 9} x 10^k that gives at least 4 ticks (a range
 * too narrow for any falls back to linear ticks). */
int svg_ticks(const struct svg_scale *s, int target, double *ticks, int max, double *step);

/* A tick label: as many decimals as the step needs (a log tick: %g). */
typedef void (*svg_format)(double v, double step, char *buf, size_t cap);
void svg_format_number(double v, double step, char *buf, size_t cap);

/* A chart: the picture's size, its plot area and the two scales. */
struct svg_chart {
	struct textbuf *b;
	double width, height;        /* the whole picture, px */
	double left, top, right, bottom; /* the plot area's edges, px from the top left */
	struct svg_scale x, y;
};

/* Sets up c for a width x height picture whose plot area is inset by the
 * margins (px); the scales' data ranges are the caller's to set, their pixel
 * ends are set here. */
void svg_chart_init(struct svg_chart *c, struct textbuf *b, double width, double height,
		    double margin_left, double margin_top, double margin_right,
		    double margin_bottom);

/* Opens a picture: <svg xmlns=... width height viewBox> with `id` (may be
 * NULL) and a <title> (escaped). Closes with svg_close(). */
void svg_open(struct textbuf *b, double width, double height, const char *id, const char *title);
void svg_close(struct textbuf *b);

/* The plot area's background, grid lines at the ticks, tick labels (an x
 * label that would overlap the one before it is left out), the axis titles
 * (escaped) and the frame. fx, fy format the tick labels (NULL:
 * svg_format_number). */
void svg_axes(const struct svg_chart *c, const char *x_title, const char *y_title, svg_format fx,
	      svg_format fy);

/* Data -> pixels on the chart's scales. */
double svg_x(const struct svg_chart *c, double v);
double svg_y(const struct svg_chart *c, double v);

/* A polyline through n data points (points with a NaN coordinate are
 * skipped); attrs is markup such as `stroke="#333" stroke-width="2"`
 * (fill is none). */
void svg_polyline(const struct svg_chart *c, const double *xs, const double *ys, int n,
		  const char *attrs);

/* The same through n data points as a staircase that holds each value until
 * the next x (a running best against trial number). */
void svg_steps(const struct svg_chart *c, const double *xs, const double *ys, int n,
	       const char *attrs);

/* A line between two pixel positions. */
void svg_line_px(struct textbuf *b, double x1, double y1, double x2, double y2, const char *attrs);

/* A rectangle in pixels. */
void svg_rect_px(struct textbuf *b, double x, double y, double w, double h, const char *attrs);

/* Text at a pixel position; attrs is markup (text-anchor, font-size, fill...). */
void svg_text_px(struct textbuf *b, double x, double y, const char *attrs, const char *text);

/* The width in px the text takes in the report's sans-serif font at size px,
 * estimated (0.56 em per character): enough to lay labels out. */
double svg_text_width(const char *text, double size);

/* A colour on the report's sequential ramp for t in [0, 1] (clamped): from a
 * pale cream (0: left as it is) through amber and orange to a dark red (1:
 * compressed hardest), as "#rrggbb" in buf (8 bytes). Returns buf. */
const char *svg_ramp(double t, char buf[8]);

/* True when text on svg_ramp(t) reads better in white than in black. */
bool svg_ramp_dark(double t);

/* The i-th colour of a palette of distinct, colour-blind-safe hues (cycles). */
const char *svg_palette(int i);

#endif
