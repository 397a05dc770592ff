/* termplot.h - a plot drawn with Unicode braille characters, for a look at a
 * front in a terminal (over ssh, without a browser).
 *
 * The canvas is cols x rows character cells; each cell is a braille
 * character holding 2 x 4 dots (U+2800 + one bit per dot), so lines are drawn
 * at twice the horizontal and four times the vertical resolution of the
 * text. A cell may instead hold a marker (one character such as "●"), which
 * is drawn over its dots: the points themselves stand out from the lines
 * joining them. Data coordinates map through the same scales as the SVG
 * charts (svg_scale, linear or log10), so tick values agree with the report.
 *
 * Printed, the plot is: a title line, `rows` lines of a y tick label column,
 * an axis and the canvas, then the x axis with tick marks, and a line of x
 * tick labels with the x title.
 */
#ifndef PRESSO_CLI_TERMPLOT_H
#define PRESSO_CLI_TERMPLOT_H

#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "cli/svg.h"

#define TERMPLOT_MARKER_BYTES 8 /* one UTF-8 character and its NUL */
#define TERMPLOT_LABEL_COLS 8   /* the y tick label column */

struct termplot {
	int cols, rows;         /* canvas cells */
	uint8_t *dots;          /* [rows * cols] braille bits */
	char (*marker)[TERMPLOT_MARKER_BYTES]; /* [rows * cols]; "" where none */
	struct svg_scale x, y;  /* data -> dot positions (0..2*cols-1, 4*rows-1..0) */
};

/* A canvas of cols x rows cells (each at least 8 x 4) over the data ranges
 * [x_lo, x_hi] and [y_lo, y_hi], with x on a log10 scale when x_log (x_lo >
 * 0). Free with termplot_free(). */
enum presso_status termplot_init(struct termplot *p, int cols, int rows, double x_lo,
				 double x_hi, int x_log, double y_lo, double y_hi);

void termplot_free(struct termplot *p);

/* A line between two data points (dots outside the canvas are dropped). */
void termplot_line(struct termplot *p, double x0, double y0, double x1, double y1);

/* A dotted horizontal line at data y: every `gap`-th dot across the canvas. */
void termplot_hline(struct termplot *p, double y, int gap);

/* Puts a marker (one character, UTF-8) in the cell of a data point; a point
 * outside the canvas is not drawn. */
void termplot_mark(struct termplot *p, double x, double y, const char *marker);

/* Prints the plot (see above) with tick labels from svg_ticks and fmt_x /
 * fmt_y (NULL: svg_format_number). */
void termplot_print(const struct termplot *p, FILE *f, const char *title, const char *x_title,
		    svg_format fmt_x, svg_format fmt_y);

#endif
