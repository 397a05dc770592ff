/* termplot.c - see termplot.h. */
#include "cli/termplot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The braille bit of the dot at (dx, dy) of a cell, dx 0..1, dy 0..3:
 * dots 1-2-3 and 7 down the left column, 4-5-6 and 8 down the right. */
static const uint8_t dot_bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};

enum presso_status termplot_init(struct termplot *p, int cols, int rows, double x_lo,
				 double x_hi, int x_log, double y_lo, double y_hi)
{
	memset(p, 0, sizeof *p);
	if (cols < 8)
		cols = 8;
	if (rows < 4)
		rows = 4;
	p->cols = cols;
	p->rows = rows;
	p->dots = calloc((size_t)cols * (size_t)rows, 1);
	p->marker = calloc((size_t)cols * (size_t)rows, sizeof *p->marker);
	if (!p->dots || !p->marker) {
		termplot_free(p);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	p->x = (struct svg_scale){x_lo, x_hi, x_log != 0, 0, 2.0 * cols - 1};
	p->y = (struct svg_scale){y_lo, y_hi, false, 4.0 * rows - 1, 0};
	return PRESSO_OK;
}

void termplot_free(struct termplot *p)
{
	if (!p)
		return;
	free(p->dots);
	free(p->marker);
	memset(p, 0, sizeof *p);
}

static void set_dot(struct termplot *p, long dx, long dy)
{
	if (dx < 0 || dy < 0 || dx >= 2L * p->cols || dy >= 4L * p->rows)
		return;
	p->dots[(dy / 4) * p->cols + dx / 2] |= dot_bit[dy % 4][dx % 2];
}

/* A data point's dot, or false when it is not a finite position. */
static bool to_dot(const struct termplot *p, double x, double y, long *dx, long *dy)
{
	double px = svg_scale_px(&p->x, x), py = svg_scale_px(&p->y, y);
	if (!isfinite(px) || !isfinite(py) || fabs(px) > 1e6 || fabs(py) > 1e6)
		return false;
	*dx = lround(px);
	*dy = lround(py);
	return true;
}

void termplot_line(struct termplot *p, double x0, double y0, double x1, double y1)
{
	long ax, ay, bx, by;
	if (!to_dot(p, x0, y0, &ax, &ay) || !to_dot(p, x1, y1, &bx, &by))
		return;
	/* Bresenham over the dots */
	long dx = labs(bx - ax), dy = -labs(by - ay);
	long sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1, err = dx + dy;
	for (;;) {
		set_dot(p, ax, ay);
		if (ax == bx && ay == by)
			break;
		long e2 = 2 * err;
		if (e2 >= dy) {
			err += dy;
			ax += sx;
		}
		if (e2 <= dx) {
			err += dx;
			ay += sy;
		}
	}
}

void termplot_hline(struct termplot *p, double y, int gap)
{
	long dx, dy;
	if (!to_dot(p, p->x.lo, y, &dx, &dy))
		return;
	for (long x = 0; x < 2L * p->cols; x += gap > 0 ? gap : 1)
		set_dot(p, x, dy);
}

void termplot_mark(struct termplot *p, double x, double y, const char *marker)
{
	long dx, dy;
	if (!to_dot(p, x, y, &dx, &dy) || dx < 0 || dy < 0 || dx >= 2L * p->cols ||
	    dy >= 4L * p->rows)
		return;
	snprintf(p->marker[(dy / 4) * p->cols + dx / 2], TERMPLOT_MARKER_BYTES, "%s", marker);
}

/* The UTF-8 bytes of braille pattern U+2800 + bits. */
static void braille(uint8_t bits, char out[4])
{
	unsigned cp = 0x2800u + bits;
	out[0] = (char)(0xe0 | (cp >> 12));
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	out[3] = '\0';
}

void termplot_print(const struct termplot *p, FILE *f, const char *title, const char *x_title,
		    svg_format fmt_x, svg_format fmt_y)
{
	double t[SVG_MAX_TICKS], step;
	char label[64];
	if (!fmt_x)
		fmt_x = svg_format_number;
	if (!fmt_y)
		fmt_y = svg_format_number;

	/* y ticks: the row each falls in, and its label */
	char (*ylab)[TERMPLOT_LABEL_COLS + 1] = calloc((size_t)p->rows, sizeof *ylab);
	if (!ylab)
		return;
	int n = svg_ticks(&p->y, p->rows / 4 > 2 ? p->rows / 4 : 2, t, SVG_MAX_TICKS, &step);
	for (int i = 0; i < n; i++) {
		long row = lround(svg_scale_px(&p->y, t[i])) / 4;
		if (row < 0 || row >= p->rows)
			continue;
		fmt_y(t[i], step, label, sizeof label);
		snprintf(ylab[row], sizeof ylab[row], "%.*s", TERMPLOT_LABEL_COLS, label);
	}
	fprintf(f, "%s\n", title);
	for (int r = 0; r < p->rows; r++) {
		fprintf(f, "%*s %s", TERMPLOT_LABEL_COLS - 1, ylab[r], ylab[r][0] ? "┤" : "│");
		for (int c = 0; c < p->cols; c++) {
			const char *m = p->marker[r * p->cols + c];
			char b[4];
			if (m[0]) {
				fputs(m, f);
			} else {
				braille(p->dots[r * p->cols + c], b);
				fputs(b, f);
			}
		}
		fputc('\n', f);
	}
	free(ylab);

	/* x ticks: a mark on the axis and a label centred under it when it fits */
	int target = p->cols / 12 > 2 ? p->cols / 12 : 2;
	n = svg_ticks(&p->x, target, t, SVG_MAX_TICKS, &step);
	char *axis_tick = calloc((size_t)p->cols, 1);
	char *labels = malloc((size_t)p->cols + TERMPLOT_LABEL_COLS + 64);
	if (!axis_tick || !labels) {
		free(axis_tick);
		free(labels);
		return;
	}
	int width = p->cols + TERMPLOT_LABEL_COLS + 63;
	memset(labels, ' ', (size_t)width);
	labels[width] = '\0';
	int used = 0; /* first free column of the label line */
	for (int i = 0; i < n; i++) {
		long col = lround(svg_scale_px(&p->x, t[i])) / 2;
		if (col < 0 || col >= p->cols)
			continue;
		axis_tick[col] = 1;
		fmt_x(t[i], step, label, sizeof label);
		int len = (int)strlen(label);
		int at = TERMPLOT_LABEL_COLS + 1 + (int)col - len / 2;
		if (at < used || at + len > width)
			continue;
		memcpy(labels + at, label, (size_t)len);
		used = at + len + 1;
	}
	fprintf(f, "%*s └", TERMPLOT_LABEL_COLS - 1, "");
	for (int c = 0; c < p->cols; c++)
		fputs(axis_tick[c] ? "┬" : "─", f);
	fputc('\n', f);
	int end = width;
	while (end > 0 && labels[end - 1] == ' ')
		end--;
	fprintf(f, "%.*s\n", end, labels);
	if (x_title)
		fprintf(f, "%*s%s\n", TERMPLOT_LABEL_COLS + 1 + (p->cols - (int)strlen(x_title)) / 2 > 0
					  ? TERMPLOT_LABEL_COLS + 1 + (p->cols - (int)strlen(x_title)) / 2
					  : 0,
			"", x_title);
	free(axis_tick);
	free(labels);
}
