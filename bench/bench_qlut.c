/* bench_qlut.c - bytes per second of the INT8 table lookup (the element-wise
 * functions of the INT8 engine: Sigmoid, HardSwish, Erf, ...) on every kernel
 * path this CPU has, one thread.
 *
 * usage: bench_qlut [BYTES] [--seconds S]
 * Looks up BYTES (default 65536: a 64-channel 32x32 feature map) again and
 * again for S seconds (default 1) per path and prints
 *   "qlut <path> <bytes> <GB/s>". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels_q8.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t n = 65536;
	double seconds = 1.0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else
			n = (size_t)strtoull(argv[i], NULL, 10);
	}
	uint8_t *x = malloc(n ? n : 1), *y = malloc(n ? n : 1), table[256];
	if (!x || !y)
		return 1;
	for (size_t i = 0; i < n; i++)
		x[i] = (uint8_t)(i * 7919u);
	for (int i = 0; i < 256; i++)
		table[i] = (uint8_t)(255 - i);
	unsigned check = 0;
	for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
		qlut_fn lut = q8_lut_for((enum q8_isa)isa);
		if (!lut)
			continue;
		double t0 = now_s(), t = t0;
		long reps = 0;
		while (t - t0 < seconds) {
			for (int r = 0; r < 100; r++)
				lut(n, x, table, y);
			reps += 100;
			t = now_s();
		}
		check += y[n / 2];
		printf("qlut %s %zu %.2f\n", q8_isa_name((enum q8_isa)isa), n,
		       (double)reps * (double)n / (t - t0) / 1e9);
	}
	free(x);
	free(y);
	return check == 12345 ? 3 : 0; /* keeps the lookups from being optimised away */
}
