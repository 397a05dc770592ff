/* textbuf.h - a growing text buffer for the documents the command writes
 * (the report's HTML and SVG), with XML/HTML escaping.
 *
 * Appending never fails visibly: on out of memory the buffer marks itself
 * failed and ignores what follows, and the caller checks `failed` once at the
 * end (textbuf_done). Everything escaped comes out as well-formed XML text:
 * & < > " ' become entities, and bytes that are not valid UTF-8 or are
 * control characters XML 1.0 forbids become U+FFFD, so text from a database
 * or a model (study and layer names, configs) can never break the document.
 */
#ifndef PRESSO_CLI_TEXTBUF_H
#define PRESSO_CLI_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

struct textbuf {
	char *s;     /* NUL-terminated while not failed */
	size_t n;    /* bytes used, without the NUL */
	size_t cap;
	bool failed; /* an allocation failed; the contents are incomplete */
};

/* Appends text as it is (markup). */
void textbuf_add(struct textbuf *b, const char *text);

/* Appends printf-style text as it is (markup; escape values with %s only when
 * they are known to be safe, else use textbuf_escape). */
void textbuf_printf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends text escaped for XML/HTML content and attribute values. NULL
 * appends nothing. */
void textbuf_escape(struct textbuf *b, const char *text);

/* PRESSO_E_NOMEM if any append failed, else PRESSO_OK. */
enum presso_status textbuf_done(const struct textbuf *b);

/* Frees the text; the buffer is empty again. NULL is a no-op. */
void textbuf_free(struct textbuf *b);

#endif
