/* seen.h - the set of policy hashes a study has evaluated or handed out, so
 * that no policy is evaluated twice.
 *
 * Keys are SHA-256 hex digests of canonical policy JSON (store.h). Open
 * addressing with linear probing on the first 64 bits of the digest, kept at
 * most half full; the full digest is compared, so a collision of the probe key
 * never merges two policies.
 */
#ifndef PRESSO_SEEN_H
#define PRESSO_SEEN_H

#include <stdbool.h>

#include "base/sha256.h"
#include "base/status.h"

struct seen;

/* An empty set. Free with seen_free(). */
enum presso_status seen_create(struct seen **out);

void seen_free(struct seen *s);

/* Adds a hash; *added (may be NULL) is false when it was already there. */
enum presso_status seen_add(struct seen *s, const char hash[SHA256_HEX_BYTES], bool *added);

bool seen_has(const struct seen *s, const char hash[SHA256_HEX_BYTES]);

int seen_count(const struct seen *s);

#endif
