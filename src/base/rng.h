/* rng.h - presso's one pseudo-random generator: xoshiro256** (Blackman and
 * Vigna, 2018) seeded through splitmix64. The search draws its policies from
 * it and the dataset splits (data/dataset.c) their images.
 *
 * presso owns its generator so that a study is reproducible on any libc
 * and resumable: the whole state is four 64-bit words, saved with every trial
 * completion (rng_to_text) and restored on --resume (rng_from_text). Every
 * draw below is a pure function of that state, with no floating-point
 * operations whose results could differ between compilers except those in
 * rng_normal/rng_beta (IEEE arithmetic and libm log/sqrt/exp, deterministic on
 * one machine).
 */
#ifndef PRESSO_RNG_H
#define PRESSO_RNG_H

#include <stdbool.h>
#include <stdint.h>

#define RNG_TEXT_BYTES 65 /* four words as 64 hex digits, and a NUL */

struct rng {
	uint64_t s[4];
};

/* Seeds the four words with splitmix64 from seed (any value, 0 included). */
void rng_seed(struct rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* Uniform in 0..n-1 (n >= 1), without modulo bias (rejection of the lowest
 * 2^64 mod n values). */
uint64_t rng_below(struct rng *r, uint64_t n);

/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);

/* Standard normal (Marsaglia's polar method). */
double rng_normal(struct rng *r);

/* Beta(a, b) for a, b > 0, through two gamma draws (Marsaglia and Tsang). */
double rng_beta(struct rng *r, double a, double b);

/* The state as 64 lowercase hex digits; and back (false if the text is not
 * exactly that, or is the all-zero state xoshiro cannot leave). */
void rng_to_text(const struct rng *r, char text[RNG_TEXT_BYTES]);
bool rng_from_text(struct rng *r, const char *text);

#endif
