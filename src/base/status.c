/* status.c - status names and the per-thread error message (see status.h). */
#include "base/status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Room for a model refused for many nodes, one line each (onnx_import.c
 * lists every node whose op presso lacks): about a hundred lines. */
#define STATUS_MSG_BYTES 8192

static _Thread_local char msg_buf[STATUS_MSG_BYTES];

static const char *const status_names[PRESSO_STATUS_COUNT] = {
	[PRESSO_OK] = "ok",
	[PRESSO_E_USAGE] = "usage",
	[PRESSO_E_IO] = "io",
	[PRESSO_E_FORMAT] = "format",
	[PRESSO_E_UNSUPPORTED] = "unsupported",
	[PRESSO_E_CONFIG] = "config",
	[PRESSO_E_NOMEM] = "out of memory",
	[PRESSO_E_RUNTIME] = "runtime",
	[PRESSO_E_SYSTEM] = "system",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == PRESSO_STATUS_COUNT,
	       "every status needs a name");

const char *status_str(enum presso_status s)
{
	if ((unsigned)s >= PRESSO_STATUS_COUNT)
		return "unknown";
	return status_names[s];
}

enum presso_status status_fail(enum presso_status s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg_buf, sizeof msg_buf, fmt, ap);
	va_end(ap);
	return s;
}

enum presso_status status_wrap(enum presso_status s, const char *fmt, ...)
{
	char prefix[STATUS_MSG_BYTES];
	char old[STATUS_MSG_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, msg_buf, sizeof old);
	/* prefix ": " old, truncated to the buffer */
	size_t used = 0;
	const char *parts[3] = {prefix, ": ", old};
	for (int i = 0; i < 3; i++) {
		size_t len = strlen(parts[i]);
		if (len > sizeof msg_buf - 1 - used)
			len = sizeof msg_buf - 1 - used;
		memcpy(msg_buf + used, parts[i], len);
		used += len;
	}
	msg_buf[used] = '\0';
	return s;
}

const char *status_msg(void)
{
	return msg_buf;
}

void status_clear(void)
{
	msg_buf[0] = '\0';
}

enum presso_status status_from_errno(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EFBIG:
		return PRESSO_E_SYSTEM;
	case ENOMEM:
		return PRESSO_E_NOMEM;
	default:
		return PRESSO_E_IO;
	}
}

int status_exit_code(enum presso_status s)
{
	switch (s) {
	case PRESSO_OK:
		return 0;
	case PRESSO_E_USAGE:
	case PRESSO_E_IO:
	case PRESSO_E_FORMAT:
	case PRESSO_E_UNSUPPORTED:
	case PRESSO_E_CONFIG:
		return 2;
	default:
		return 1;
	}
}
