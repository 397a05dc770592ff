/* progress.c - the status line and log lines of a running search (see
 * progress.h). Times are CLOCK_MONOTONIC, so a clock change does not make the
 * rate or the time left jump. */
#define _POSIX_C_SOURCE 200809L
#include "search/progress.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(struct progress *p, FILE *f, bool quiet)
{
	*p = (struct progress){.f = f, .quiet = quiet || !f};
	p->tty = f && isatty(fileno(f));
	p->t0 = mono_s();
	p->last_print = -1e9;
}

double progress_elapsed(const struct progress *p)
{
	return mono_s() - p->t0;
}

bool progress_due(const struct progress *p, int64_t done, bool force)
{
	if (p->quiet)
		return false;
	if (force)
		return p->tty || done != p->last_logged;
	if (p->tty)
		return mono_s() - p->last_print >= PROGRESS_TTY_PERIOD_S;
	return done - p->last_logged >= PROGRESS_LOG_EVERY;
}

/* "6m40s", "2h05m", "45s". */
static void format_duration(double s, char *buf, size_t cap)
{
	if (!(s >= 0) || !isfinite(s)) {
		snprintf(buf, cap, "?");
		return;
	}
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, cap, "%lds", t);
}

void progress_update(struct progress *p, const struct progress_info *in)
{
	if (p->quiet)
		return;
	double now = mono_s(), elapsed = now - p->t0;
	double rate = elapsed > 0 ? 60.0 * (double)in->done_this_run / elapsed : 0;
	double left = INFINITY;
	if (rate > 0)
		left = 60.0 * (double)(in->budget - in->done) / rate;
	if (in->time_limit_s > 0 && in->time_limit_s - elapsed < left)
		left = in->time_limit_s - elapsed;
	if (left < 0)
		left = 0;
	char left_text[32], best[64];
	format_duration(left, left_text, sizeof left_text);
	if (isnan(in->best_accuracy))
		snprintf(best, sizeof best, "best -");
	else
		snprintf(best, sizeof best, "best %.2f%% @ %.1f KiB", in->best_accuracy,
			 in->best_size_bytes / 1024.0);
	fprintf(p->f, "%s%lld/%lld trials  %.1f/min  front %d  HV %.1f%%  %s  left %s%s",
		p->tty ? "\r\033[K" : "presso search: ", (long long)in->done,
		(long long)in->budget, rate, in->n_front, 100.0 * in->hv_ratio, best, left_text,
		p->tty ? "" : "\n");
	fflush(p->f);
	p->line_open = p->tty;
	p->last_print = now;
	p->last_logged = in->done;
}

void progress_close(struct progress *p)
{
	if (p->line_open) {
		fputc('\n', p->f);
		fflush(p->f);
		p->line_open = false;
	}
}
