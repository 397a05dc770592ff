/* test_sha256.c - SHA-256 (src/base/sha256.c) against the FIPS 180-4 / NIST example
 * vectors, streaming in every split, and files against coreutils' sha256sum.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "tests/fixtures.h"

static void check(const char *msg, const char *want)
{
	char hex[SHA256_HEX_BYTES];
	sha256_hex(msg, strlen(msg), hex);
	cr_assert_str_eq(hex, want, "sha256(\"%.40s\")", msg);
}

Test(sha256, fips_vectors)
{
	check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* 448 bits: the padding needs a second block */
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* 896 bits */
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
	      "nopqrlmnopqrsmnopqrstnopqrstu",
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(sha256, million_a_streamed)
{
	struct sha256 c;
	uint8_t d[SHA256_DIGEST_BYTES];
	char chunk[1000];
	memset(chunk, 'a', sizeof chunk);
	sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, chunk, sizeof chunk);
	sha256_final(&c, d);
	static const uint8_t want[SHA256_DIGEST_BYTES] = {
		0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
		0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
		0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
	cr_assert_arr_eq(d, want, sizeof want);
}

Test(sha256, every_split_gives_the_same_digest)
{
	uint8_t msg[200];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof msg; n += 7) {
		char whole[SHA256_HEX_BYTES];
		sha256_hex(msg, n, whole);
		for (size_t cut = 0; cut <= n; cut++) {
			struct sha256 c;
			uint8_t d[SHA256_DIGEST_BYTES];
			char hex[SHA256_HEX_BYTES];
			sha256_init(&c);
			sha256_update(&c, msg, cut);
			sha256_update(&c, msg + cut, n - cut);
			sha256_final(&c, d);
			for (int i = 0; i < SHA256_DIGEST_BYTES; i++)
				sprintf(hex + 2 * i, "%02x", d[i]);
			cr_assert_str_eq(hex, whole, "length %zu cut at %zu", n, cut);
		}
	}
}

/* Lengths around the block and padding boundaries (55, 56, 63, 64, 119, ...)
 * against coreutils' independent implementation. */
Test(sha256, files_match_sha256sum)
{
	char *dir = fx_tmpdir();
	cr_assert_not_null(dir);
	const char *path = fx_join(dir, "data.bin");
	static const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 70001};
	unsigned seed = 12345;
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		size_t n = lens[k];
		uint8_t *buf = malloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		cr_assert(fx_write(path, buf, n));
		char mine[SHA256_HEX_BYTES], theirs[SHA256_HEX_BYTES] = "";
		cr_assert_eq(sha256_file(path, mine), PRESSO_OK, "%s", status_msg());
		char cmd[4200];
		snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
		FILE *p = popen(cmd, "r");
		cr_assert_not_null(p);
		cr_assert_eq(fscanf(p, "%64s", theirs), 1);
		pclose(p);
		cr_assert_str_eq(mine, theirs, "length %zu", n);
		/* and the in-memory digest agrees with the file's */
		char mem[SHA256_HEX_BYTES];
		sha256_hex(buf, n, mem);
		cr_assert_str_eq(mem, mine);
		free(buf);
	}
	unlink(path);
	rmdir(dir);
	free(dir);
}

Test(sha256, missing_file_names_it)
{
	char hex[SHA256_HEX_BYTES];
	cr_assert_eq(sha256_file("/nonexistent/model.onnx", hex), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "/nonexistent/model.onnx"), "%s", status_msg());
}
