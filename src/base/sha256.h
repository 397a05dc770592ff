/* sha256.h - SHA-256 (FIPS 180-4) for policy hashes and model file digests.
 *
 * A digest is 32 bytes; its text form is 64 lowercase hex digits plus a NUL
 * (SHA256_HEX_BYTES). Streaming: sha256_init, any number of sha256_update,
 * one sha256_final. No allocation; a context is plain data the caller owns.
 */
#ifndef PRESSO_SHA256_H
#define PRESSO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define SHA256_DIGEST_BYTES 32
#define SHA256_HEX_BYTES 65 /* 64 hex digits + NUL */

struct sha256 {
	uint32_t h[8];
	uint64_t n_bytes;    /* message length so far */
	uint8_t block[64];   /* pending bytes of the current block */
	size_t n_block;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
/* Pads, writes the digest and leaves c unusable until the next sha256_init. */
void sha256_final(struct sha256 *c, uint8_t digest[SHA256_DIGEST_BYTES]);

/* One-shot digest of n bytes as 64 lowercase hex digits. */
void sha256_hex(const void *data, size_t n, char hex[SHA256_HEX_BYTES]);

/* Digest of a whole file; PRESSO_E_IO naming the file if it cannot be read. */
enum presso_status sha256_file(const char *path, char hex[SHA256_HEX_BYTES]);

#endif
