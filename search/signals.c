/* signals.c - a sigwait thread turning SIGINT/SIGTERM into stop requests
 * (see signals.h). When the search is over the thread is told to quit and
 * woken with a SIGTERM of its own (pthread_kill), not cancelled: glibc's
 * pthread_cancel loads libgcc_s on first use and aborts the process when
 * that fails, as it does when memory is short. */
#define _POSIX_C_SOURCE 200809L
#include "search/signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct signals {
	atomic_int flag;
	atomic_bool quit; /* set by signals_release: the next wake-up ends the thread */
	sigset_t set, old_mask;
	pthread_t thread;
	pthread_mutex_t lock; /* guards fn and arg */
	void (*fn)(void *arg, int sig);
	void *arg;
};

static void *waiter(void *p)
{
	struct signals *s = p;
	for (;;) {
		int sig = 0;
		if (sigwait(&s->set, &sig) != 0)
			continue;
		if (atomic_load(&s->quit))
			return NULL;
		if (atomic_load(&s->flag) == 0) {
			atomic_store(&s->flag, sig);
			static const char msg[] =
				"\npresso: stopping after the trials in flight (interrupt again to "
				"abandon them)\n";
			if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
				/* nothing to do: stderr is gone */
			}
			continue;
		}
		pthread_mutex_lock(&s->lock);
		if (s->fn)
			s->fn(s->arg, sig);
		pthread_mutex_unlock(&s->lock);
		_exit(128 + sig);
	}
	return NULL;
}

enum presso_status signals_catch(struct signals **out)
{
	*out = NULL;
	struct signals *s = calloc(1, sizeof *s);
	if (!s)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	atomic_init(&s->flag, 0);
	atomic_init(&s->quit, false);
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGINT);
	sigaddset(&s->set, SIGTERM);
	pthread_mutex_init(&s->lock, NULL);
	int rc = pthread_sigmask(SIG_BLOCK, &s->set, &s->old_mask);
	if (rc == 0) {
		rc = pthread_create(&s->thread, NULL, waiter, s);
		if (rc != 0)
			pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
	}
	if (rc != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return status_fail(PRESSO_E_RUNTIME, "cannot watch for interrupts: %s%s", strerror(rc),
				   rc == EAGAIN ? " (out of memory, or too many threads)" : "");
	}
	*out = s;
	return PRESSO_OK;
}

atomic_int *signals_flag(struct signals *s)
{
	return &s->flag;
}

void signals_on_second(struct signals *s, void (*fn)(void *arg, int sig), void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->fn = fn;
	s->arg = arg;
	pthread_mutex_unlock(&s->lock);
}

void signals_release(struct signals *s)
{
	if (!s)
		return;
	atomic_store(&s->quit, true);
	pthread_kill(s->thread, SIGTERM);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	/* a signal that arrived after the first stays pending: leave the mask so
	 * it does not kill the process on its way out */
	free(s);
}
