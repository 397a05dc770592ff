/* signals.h - SIGINT/SIGTERM as stop requests for a long search.
 *
 * signals_catch() blocks both signals in the calling thread - and so in every
 * thread created after it, OpenMP's included - and starts one thread that
 * waits for them with sigwait(): no handler runs inside a kernel or inside
 * SQLite, so nothing needs to be async-signal-safe. The first signal sets the
 * stop flag (the search finishes the trials in flight, commits, and ends
 * normally); the second runs the registered abandon action (mark the trials
 * in flight failed) and ends the process at once with status 128 + signal.
 * Call it before any other thread exists.
 */
#ifndef PRESSO_SIGNALS_H
#define PRESSO_SIGNALS_H

#include <stdatomic.h>

#include "base/status.h"

struct signals;

/* Starts catching; free with signals_release(). */
enum presso_status signals_catch(struct signals **out);

/* The stop flag: 0 until the first signal, then the signal's number. */
atomic_int *signals_flag(struct signals *s);

/* Sets (or clears, fn NULL) what the second signal does before the process
 * ends: fn(arg, signal) runs on the waiting thread. */
void signals_on_second(struct signals *s, void (*fn)(void *arg, int sig), void *arg);

/* Stops the waiting thread; the signals stay blocked, so one that arrives
 * while the process is printing its summary and exiting does not cut that
 * short. NULL is a no-op. */
void signals_release(struct signals *s);

#endif
