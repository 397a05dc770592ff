/* rng.c - xoshiro256** with splitmix64 seeding (see rng.h).
 *
 * Reference: https://prng.di.unimi.it/xoshiro256starstar.c and
 * splitmix64.c (public domain). Period 2^256 - 1; the all-zero state is the
 * one state it never reaches, which rng_from_text refuses.
 */
#include "base/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	if (n <= 1)
		return 0;
	/* Reject the lowest 2^64 mod n values, so that x % n is uniform. */
	uint64_t threshold = (0 - n) % n;
	uint64_t x;
	do
		x = rng_next(r);
	while (x < threshold);
	return x % n;
}

double rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_normal(struct rng *r)
{
	double u, v, q;
	do {
		u = 2.0 * rng_uniform(r) - 1.0;
		v = 2.0 * rng_uniform(r) - 1.0;
		q = u * u + v * v;
	} while (q >= 1.0 || q == 0.0);
	return u * sqrt(-2.0 * log(q) / q);
}

/* Gamma(a, 1), Marsaglia and Tsang 2000; a < 1 through Gamma(a + 1) * U^(1/a). */
static double gamma_draw(struct rng *r, double a)
{
	if (a < 1.0) {
		double u = rng_uniform(r);
		return gamma_draw(r, a + 1.0) * pow(u > 0 ? u : 0x1.0p-53, 1.0 / a);
	}
	double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x, v;
		do {
			x = rng_normal(r);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		double u = rng_uniform(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

double rng_beta(struct rng *r, double a, double b)
{
	double x = gamma_draw(r, a), y = gamma_draw(r, b);
	return x + y > 0 ? x / (x + y) : 0.5;
}

void rng_to_text(const struct rng *r, char text[RNG_TEXT_BYTES])
{
	for (int i = 0; i < 4; i++)
		snprintf(text + 16 * i, 17, "%016llx", (unsigned long long)r->s[i]);
}

bool rng_from_text(struct rng *r, const char *text)
{
	if (!text || strlen(text) != 64)
		return false;
	struct rng t;
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int k = 0; k < 16; k++) {
			char c = text[16 * i + k];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
						       : -1;
			if (d < 0)
				return false;
			w = w << 4 | (uint64_t)d;
		}
		t.s[i] = w;
	}
	if ((t.s[0] | t.s[1] | t.s[2] | t.s[3]) == 0)
		return false;
	*r = t;
	return true;
}
