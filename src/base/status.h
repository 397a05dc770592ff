/* status.h - presso's one status enum and the per-thread error message.
 *
 * Every function that can fail returns an enum presso_status; results come back
 * through out-parameters. A failing function records a message a user can act on
 * with status_fail() ("node 'conv3': Conv with dilations=[2,2] is not supported");
 * the caller reads it with status_msg(). The message is per thread, so workers
 * evaluating candidates in parallel never see each other's errors.
 *
 * Values are stable: they are process exit codes' inputs and may be stored.
 */
#ifndef PRESSO_STATUS_H
#define PRESSO_STATUS_H

#include <stdio.h>
#include <stdlib.h>

enum presso_status {
	PRESSO_OK = 0,
	PRESSO_E_USAGE = 1,       /* bad command line */
	PRESSO_E_IO = 2,          /* a file is missing, unreadable or unwritable */
	PRESSO_E_FORMAT = 3,      /* a file is malformed (truncated, bad magic, bad protobuf) */
	PRESSO_E_UNSUPPORTED = 4, /* well-formed but outside what presso supports */
	PRESSO_E_CONFIG = 5,      /* a config or policy value is wrong */
	PRESSO_E_NOMEM = 6,       /* out of memory */
	PRESSO_E_RUNTIME = 7,     /* anything else that went wrong while running */
	PRESSO_E_SYSTEM = 8,      /* the system failed what should have worked: the
				     disk or quota is full, an I/O error */
	PRESSO_STATUS_COUNT
};

/* Short stable name of a status ("io", "format", ...). */
const char *status_str(enum presso_status s);

/* Records a printf-style message for this thread and returns s, so that
 * `return status_fail(PRESSO_E_IO, "%s: %s", path, strerror(errno));` reads. */
enum presso_status status_fail(enum presso_status s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "prefix: " (adds context on the way up). */
enum presso_status status_wrap(enum presso_status s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The last message recorded in this thread ("" if none). */
const char *status_msg(void);

/* Clears this thread's message. */
void status_clear(void);

/* The status for a failed system call's errno: PRESSO_E_SYSTEM when the
 * system ran out of room or failed (ENOSPC, EDQUOT, EIO, EFBIG), PRESSO_E_NOMEM
 * for ENOMEM, else PRESSO_E_IO (a path that is missing, not allowed, not a
 * folder...: something the user named). */
enum presso_status status_from_errno(int err);

/* Process exit code for a status: 0 ok, 2 bad input or usage (usage, io,
 * format, unsupported, config), 1 everything else (out of memory, runtime,
 * system: a full disk is not the input's fault). */
int status_exit_code(enum presso_status s);

/* Always-on invariant check: aborts with file:line. For broken invariants only,
 * never for anything that comes from outside. */
#define PRESSO_CHECK(cond)                                                        \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "presso: internal error at %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);                       \
			abort();                                                  \
		}                                                                 \
	} while (0)

#endif
