/* svg.c - see svg.h. */
#include "cli/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FONT "font-family=\"Helvetica, Arial, sans-serif\""
#define AXIS_COLOR "#555"
#define GRID_COLOR "#e3e3e3"
#define EM_PER_CHAR 0.56 /* mean advance of a sans-serif character, in em */

double svg_scale_px(const struct svg_scale *s, double v)
{
	double a = s->lo, b = s->hi;
	if (s->log) {
		a = log10(a);
		b = log10(b);
		v = v > 0 ? log10(v) : -INFINITY;
	}
	double t = b != a ? (v - a) / (b - a) : 0.5;
	return s->px_lo + t * (s->px_hi - s->px_lo);
}

/* 1, 2 or 5 x 10^k, the smallest not below x (> 0). */
static double nice_step(double x)
{
	double p = pow(10, floor(log10(x)));
	double m = x / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

void svg_scale_nice(struct svg_scale *s, int target)
{
	if (!(s->hi > s->lo)) {
		double v = s->lo, d = v != 0 ? fabs(v) * 0.1 : 1;
		if (s->log) {
			s->lo = v / 1.5;
			s->hi = v * 1.5;
		} else {
			s->lo = v - d;
			s->hi = v + d;
		}
	}
	if (s->log) {
		double span = log10(s->hi) - log10(s->lo);
		s->lo = pow(10, log10(s->lo) - 0.06 * span);
		s->hi = pow(10, log10(s->hi) + 0.06 * span);
		return;
	}
	double step = nice_step((s->hi - s->lo) / (target > 1 ? target : 1));
	s->lo = floor(s->lo / step) * step;
	s->hi = ceil(s->hi / step) * step;
}

static int linear_ticks(double lo, double hi, int target, double *ticks, int max, double *step)
{
	*step = nice_step((hi - lo) / (target > 1 ? target : 1));
	int n = 0;
	for (double k = ceil(lo / *step - 1e-9); n < max; k++) {
		double v = k * *step;
		if (v > hi + 1e-9 * *step)
			break;
		ticks[n++] = fabs(v) < 1e-12 * *step ? 0 : v; /* no "-0" */
	}
	return n;
}

/* The ticks of one mantissa set on a log scale; returns their number (past
 * max: counts on without writing). */
static int log_ticks(double lo, double hi, const int *mant, int n_mant, double *ticks, int max)
{
	int n = 0;
	for (int e = (int)floor(log10(lo)) - 1; e <= (int)ceil(log10(hi)); e++)
		for (int j = 0; j < n_mant; j++) {
			double v = mant[j] * pow(10, e);
			if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9))
				continue;
			if (n < max)
				ticks[n] = v;
			n++;
		}
	return n;
}

int svg_ticks(const struct svg_scale *s, int target, double *ticks, int max, double *step)
{
	*step = 0;
	if (!(s->hi > s->lo) || max < 1)
		return 0;
	if (s->log && s->lo > 0) {
		static const int m1[] = {1}, m3[] = {1, 2, 5}, m9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
		static const struct {
			const int *m;
			int n;
		} sets[] = {{m1, 1}, {m3, 3}, {m9, 9}};
		for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
			int n = log_ticks(s->lo, s->hi, sets[k].m, sets[k].n, ticks, max);
			if (n >= 4 && n <= max)
				return n;
			if (n > max) /* too many: the coarser set, however few */
				return k ? log_ticks(s->lo, s->hi, sets[k - 1].m, sets[k - 1].n, ticks,
						     max)
					 : max;
		}
	}
	return linear_ticks(s->lo, s->hi, target, ticks, max, step);
}

void svg_format_number(double v, double step, char *buf, size_t cap)
{
	if (step > 0) {
		int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
		snprintf(buf, cap, "%.*f", dec > 6 ? 6 : dec, v);
	} else {
		snprintf(buf, cap, "%g", v);
	}
}

void svg_chart_init(struct svg_chart *c, struct textbuf *b, double width, double height,
		    double margin_left, double margin_top, double margin_right,
		    double margin_bottom)
{
	memset(c, 0, sizeof *c);
	c->b = b;
	c->width = width;
	c->height = height;
	c->left = margin_left;
	c->top = margin_top;
	c->right = width - margin_right;
	c->bottom = height - margin_bottom;
	c->x.px_lo = c->left;
	c->x.px_hi = c->right;
	c->y.px_lo = c->bottom;
	c->y.px_hi = c->top;
}

void svg_open(struct textbuf *b, double width, double height, const char *id, const char *title)
{
	textbuf_printf(b,
		       "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
		       "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\"",
		       width, height, width, height);
	if (id) {
		textbuf_add(b, " id=\"");
		textbuf_escape(b, id);
		textbuf_add(b, "\"");
	}
	textbuf_add(b, " " FONT " font-size=\"12\">\n<title>");
	textbuf_escape(b, title);
	textbuf_add(b, "</title>\n");
}

void svg_close(struct textbuf *b)
{
	textbuf_add(b, "</svg>\n");
}

double svg_x(const struct svg_chart *c, double v)
{
	return svg_scale_px(&c->x, v);
}

double svg_y(const struct svg_chart *c, double v)
{
	return svg_scale_px(&c->y, v);
}

void svg_line_px(struct textbuf *b, double x1, double y1, double x2, double y2, const char *attrs)
{
	textbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", x1, y1, x2,
		       y2, attrs);
}

void svg_rect_px(struct textbuf *b, double x, double y, double w, double h, const char *attrs)
{
	textbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" %s/>\n", x, y,
		       w > 0 ? w : 0, h > 0 ? h : 0, attrs);
}

void svg_text_px(struct textbuf *b, double x, double y, const char *attrs, const char *text)
{
	textbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
	textbuf_escape(b, text);
	textbuf_add(b, "</text>\n");
}

double svg_text_width(const char *text, double size)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		n += (*p & 0xc0) != 0x80;
	return (double)n * EM_PER_CHAR * size;
}

void svg_axes(const struct svg_chart *c, const char *x_title, const char *y_title, svg_format fx,
	      svg_format fy)
{
	struct textbuf *b = c->b;
	double t[SVG_MAX_TICKS], step;
	char label[64];
	if (!fx)
		fx = svg_format_number;
	if (!fy)
		fy = svg_format_number;
	svg_rect_px(b, c->left, c->top, c->right - c->left, c->bottom - c->top, "fill=\"#fcfcfc\"");
	int target_x = (int)((c->right - c->left) / 90);
	int n = svg_ticks(&c->x, target_x > 2 ? target_x : 2, t, SVG_MAX_TICKS, &step);
	double free_x = -INFINITY; /* where the next label may start */
	for (int i = 0; i < n; i++) {
		double x = svg_x(c, t[i]);
		svg_line_px(b, x, c->top, x, c->bottom, "stroke=\"" GRID_COLOR "\"");
		svg_line_px(b, x, c->bottom, x, c->bottom + 5, "stroke=\"" AXIS_COLOR "\"");
		fx(t[i], step, label, sizeof label);
		double w = svg_text_width(label, 12);
		if (x - w / 2 < free_x)
			continue; /* a dense log decade: the grid line, without its label */
		svg_text_px(b, x, c->bottom + 18, "text-anchor=\"middle\" fill=\"#333\"", label);
		free_x = x + w / 2 + 6;
	}
	int target_y = (int)((c->bottom - c->top) / 50);
	n = svg_ticks(&c->y, target_y > 2 ? target_y : 2, t, SVG_MAX_TICKS, &step);
	for (int i = 0; i < n; i++) {
		double y = svg_y(c, t[i]);
		svg_line_px(b, c->left, y, c->right, y, "stroke=\"" GRID_COLOR "\"");
		svg_line_px(b, c->left - 5, y, c->left, y, "stroke=\"" AXIS_COLOR "\"");
		fy(t[i], step, label, sizeof label);
		svg_text_px(b, c->left - 8, y + 4, "text-anchor=\"end\" fill=\"#333\"", label);
	}
	svg_rect_px(b, c->left, c->top, c->right - c->left, c->bottom - c->top,
		    "fill=\"none\" stroke=\"" AXIS_COLOR "\"");
	if (x_title)
		svg_text_px(b, (c->left + c->right) / 2, c->bottom + 40,
			    "text-anchor=\"middle\" font-size=\"13\" fill=\"#222\"", x_title);
	if (y_title) {
		double x = 16, y = (c->top + c->bottom) / 2;
		textbuf_printf(b,
			       "<text transform=\"translate(%.1f %.1f) rotate(-90)\" "
			       "text-anchor=\"middle\" font-size=\"13\" fill=\"#222\">",
			       x, y);
		textbuf_escape(b, y_title);
		textbuf_add(b, "</text>\n");
	}
}

/* Appends the pixel points of (xs, ys), skipping NaNs; as steps when asked. */
static void points(const struct svg_chart *c, const double *xs, const double *ys, int n,
		   bool steps)
{
	bool have = false;
	double last_y = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(xs[i]) || isnan(ys[i]))
			continue;
		double x = svg_x(c, xs[i]), y = svg_y(c, ys[i]);
		if (steps && have)
			textbuf_printf(c->b, "%.1f,%.1f ", x, last_y);
		textbuf_printf(c->b, "%.1f,%.1f ", x, y);
		last_y = y;
		have = true;
	}
}

void svg_polyline(const struct svg_chart *c, const double *xs, const double *ys, int n,
		  const char *attrs)
{
	textbuf_add(c->b, "<polyline fill=\"none\" points=\"");
	points(c, xs, ys, n, false);
	textbuf_printf(c->b, "\" %s/>\n", attrs);
}

void svg_steps(const struct svg_chart *c, const double *xs, const double *ys, int n,
	       const char *attrs)
{
	textbuf_add(c->b, "<polyline fill=\"none\" points=\"");
	points(c, xs, ys, n, true);
	textbuf_printf(c->b, "\" %s/>\n", attrs);
}

/* The ramp's stops (t, r, g, b): cream, amber, orange, red, dark red. */
static const double ramp[][4] = {
	{0.00, 0xf6, 0xf1, 0xe4}, {0.25, 0xf5, 0xc9, 0x6a}, {0.50, 0xe8, 0x8a, 0x3c},
	{0.75, 0xc2, 0x45, 0x35}, {1.00, 0x6b, 0x17, 0x2e},
};

const char *svg_ramp(double t, char buf[8])
{
	int n = (int)(sizeof ramp / sizeof ramp[0]);
	if (!(t > 0))
		t = 0;
	if (t > 1)
		t = 1;
	int i = 0;
	while (i + 2 < n && t > ramp[i + 1][0])
		i++;
	double u = (t - ramp[i][0]) / (ramp[i + 1][0] - ramp[i][0]);
	int rgb[3];
	for (int k = 0; k < 3; k++)
		rgb[k] = (int)lround(ramp[i][k + 1] + u * (ramp[i + 1][k + 1] - ramp[i][k + 1]));
	snprintf(buf, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
	return buf;
}

bool svg_ramp_dark(double t)
{
	return t > 0.6;
}

const char *svg_palette(int i)
{
	/* Okabe and Ito's colour-blind-safe hues, darkest first */
	static const char *const hues[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
					   "#e69f00", "#56b4e9", "#000000"};
	int n = (int)(sizeof hues / sizeof hues[0]);
	return hues[((i % n) + n) % n];
}
