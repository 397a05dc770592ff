/* seen.c - a set of SHA-256 hex digests (see seen.h). */
#include "search/seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct seen {
	int n, cap;                    /* cap a power of two, n <= cap / 2 */
	char (*keys)[SHA256_HEX_BYTES]; /* "" marks an empty slot */
};

static uint64_t probe_key(const char *hex)
{
	uint64_t k = 0;
	for (int i = 0; i < 16 && hex[i]; i++) {
		char c = hex[i];
		k = k << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return k * 0x9e3779b97f4a7c15u; /* spread in case the digits are not uniform */
}

enum presso_status seen_create(struct seen **out)
{
	*out = NULL;
	struct seen *s = calloc(1, sizeof *s);
	if (s) {
		s->cap = 1024;
		s->keys = calloc((size_t)s->cap, sizeof *s->keys);
	}
	if (!s || !s->keys) {
		seen_free(s);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	*out = s;
	return PRESSO_OK;
}

void seen_free(struct seen *s)
{
	if (!s)
		return;
	free(s->keys);
	free(s);
}

static int slot_of(const struct seen *s, const char *hash)
{
	size_t mask = (size_t)s->cap - 1;
	size_t i = (size_t)(probe_key(hash) >> 20) & mask;
	while (s->keys[i][0] && strcmp(s->keys[i], hash) != 0)
		i = (i + 1) & mask;
	return (int)i;
}

static enum presso_status grow(struct seen *s)
{
	struct seen bigger = {0, s->cap * 2, NULL};
	bigger.keys = calloc((size_t)bigger.cap, sizeof *bigger.keys);
	if (!bigger.keys)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int i = 0; i < s->cap; i++)
		if (s->keys[i][0]) {
			int slot = slot_of(&bigger, s->keys[i]);
			memcpy(bigger.keys[slot], s->keys[i], SHA256_HEX_BYTES);
			bigger.n++;
		}
	free(s->keys);
	*s = bigger;
	return PRESSO_OK;
}

enum presso_status seen_add(struct seen *s, const char hash[SHA256_HEX_BYTES], bool *added)
{
	PRESSO_CHECK(hash[0] != '\0');
	if (added)
		*added = false;
	if (seen_has(s, hash))
		return PRESSO_OK;
	if (2 * (s->n + 1) > s->cap) {
		enum presso_status st = grow(s);
		if (st != PRESSO_OK)
			return st;
	}
	int slot = slot_of(s, hash);
	memcpy(s->keys[slot], hash, SHA256_HEX_BYTES - 1);
	s->keys[slot][SHA256_HEX_BYTES - 1] = '\0';
	s->n++;
	if (added)
		*added = true;
	return PRESSO_OK;
}

bool seen_has(const struct seen *s, const char hash[SHA256_HEX_BYTES])
{
	return s->keys[slot_of(s, hash)][0] != '\0';
}

int seen_count(const struct seen *s)
{
	return s->n;
}
