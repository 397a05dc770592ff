/* progress.h - what a running search shows: on a terminal one status line
 * rewritten in place, otherwise a plain log line every few trials (so a log
 * file gets a readable history rather than carriage returns).
 *
 *   57/200 trials  21.4/min  front 9  HV 71.2%  best 90.10% @ 41.3 KiB  left 6m40s
 */
#ifndef PRESSO_PROGRESS_H
#define PRESSO_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_LOG_EVERY 10    /* trials between log lines when not a terminal */
#define PROGRESS_TTY_PERIOD_S 0.25 /* least time between rewrites of the status line */

struct progress {
	FILE *f;
	bool tty, quiet;
	bool line_open;            /* a status line is on screen without its newline */
	double t0;                 /* start of this run (monotonic seconds) */
	double last_print;
	int64_t last_logged;       /* trials done at the last log line */
};

struct progress_info {
	int64_t done, budget;      /* trials that count, of the study; its budget */
	int64_t done_this_run;
	int n_front;
	double hv_ratio;           /* fraction of the reference box */
	double best_accuracy;      /* NAN if nothing feasible */
	double best_size_bytes;
	double time_limit_s;       /* 0: none */
};

/* Starts reporting to f (stderr, usually): a terminal gets the status line. */
void progress_init(struct progress *p, FILE *f, bool quiet);

/* Seconds since progress_init (monotonic). */
double progress_elapsed(const struct progress *p);

/* True when an update now would be printed (so the caller can skip computing
 * the hypervolume otherwise). `force` prints regardless of the period (in a
 * log, unless the last line already showed `done` trials). */
bool progress_due(const struct progress *p, int64_t done, bool force);

void progress_update(struct progress *p, const struct progress_info *info);

/* Ends the status line (a newline) before other output; safe to call twice. */
void progress_close(struct progress *p);

#endif
