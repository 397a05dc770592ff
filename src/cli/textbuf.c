/* textbuf.c - see textbuf.h. */
#include "cli/textbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes and the NUL; false (and failed) if it cannot. */
static bool reserve(struct textbuf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->n + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->n + n + 1) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *s = realloc(b->s, cap);
	if (!s) {
		b->failed = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

static void add_bytes(struct textbuf *b, const char *p, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->n, p, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void textbuf_add(struct textbuf *b, const char *text)
{
	add_bytes(b, text, strlen(text));
}

void textbuf_printf(struct textbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid. */
static int utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	int n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void textbuf_escape(struct textbuf *b, const char *text)
{
	if (!text)
		return;
	const unsigned char *p = (const unsigned char *)text;
	while (*p) {
		/* the longest run that needs nothing, copied at once */
		const unsigned char *run = p;
		int n;
		while (*p && *p != '&' && *p != '<' && *p != '>' && *p != '"' && *p != '\'' &&
		       (*p >= 0x20 || *p == '\t' || *p == '\n' || *p == '\r') && *p != 0x7f &&
		       (n = utf8_len(p)) > 0)
			p += n;
		add_bytes(b, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		switch (*p) {
		case '&': textbuf_add(b, "&amp;"); p++; break;
		case '<': textbuf_add(b, "&lt;"); p++; break;
		case '>': textbuf_add(b, "&gt;"); p++; break;
		case '"': textbuf_add(b, "&quot;"); p++; break;
		case '\'': textbuf_add(b, "&#39;"); p++; break;
		default:
			/* a control character or a byte that is not UTF-8 */
			textbuf_add(b, "\xef\xbf\xbd");
			p++;
			break;
		}
	}
}

enum presso_status textbuf_done(const struct textbuf *b)
{
	return b->failed ? status_fail(PRESSO_E_NOMEM, "out of memory") : PRESSO_OK;
}

void textbuf_free(struct textbuf *b)
{
	if (!b)
		return;
	free(b->s);
	memset(b, 0, sizeof *b);
}
