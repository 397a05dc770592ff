/* axpy.h - y += a x over doubles, two at a time: the inner loop of the input
 * moments (hessian.c) and of data-aware rounding (gptq.c).
 *
 * Written with a two-double vector type so that it runs as SSE2 on x86-64 at
 * any optimisation level (GCC's -O2 does not vectorise a loop that needs a
 * scalar tail, and the sanitizer build is -O2). Each element is rounded as the
 * scalar y[i] + a * x[i]: the ISO C build does not contract it into an FMA. */
#ifndef PRESSO_AXPY_H
#define PRESSO_AXPY_H

#include <stdint.h>
#include <string.h>

typedef double axpy_dbl2 __attribute__((vector_size(16)));

/* Not instrumented by the sanitizers, as the FP32 GEMM's micro-kernel is not:
 * the sanitizer build spent 20 % of its search tests here. Its bounds are
 * its callers' (y and x hold n doubles). */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize("address", "undefined")))
#endif
static inline void axpy(double *restrict y, const double *restrict x, double a, int64_t n)
{
	axpy_dbl2 a2 = {a, a};
	int64_t i = 0;
	for (; i + 2 <= n; i += 2) {
		axpy_dbl2 yv, xv;
		memcpy(&yv, y + i, sizeof yv);
		memcpy(&xv, x + i, sizeof xv);
		yv += a2 * xv;
		memcpy(y + i, &yv, sizeof yv);
	}
	for (; i < n; i++)
		y[i] += a * x[i];
}

#endif
