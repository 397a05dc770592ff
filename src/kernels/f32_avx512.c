/* f32_avx512.c - the FP32 engine's blocked GEMM with 16 floats to a vector
 * (AVX-512F), bit for bit the portable one (f32_ref.c, gemm_blocked).
 *
 * Compiled with -mavx512f -ffp-contract=off and no FMA: every product is
 * rounded, then added, as the portable loop's `c += x * b` is, and every C
 * element is summed in ascending k from 0.f (the first k-slice starts its
 * tile at zero and adds, later slices reload C), whatever the blocking. So
 * the tile can be wider than the portable 4 x 16 without changing a bit:
 * 8 rows x 32 columns, 16 zmm accumulators, per k two loads of the packed B
 * panel, eight broadcasts of A, 16 multiplies and 16 adds (the FMA-free
 * peak: two multiplies and two adds of 16 floats per cycle on Zen 5, four
 * times the portable loop's SSE vectors). The blocking and the tile are the
 * training SGEMM's, from f32_gemm_avx512.inc, with this file's update.
 * gemm_f32__ref runs it where q8_isa_best() is avx512vnni (AVX-512F is on
 * every such CPU); tests/test_kernels_f32.c holds it equal to the portable
 * loop on many shapes.
 */
#include "kernels/kernels_f32.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* one update: rounded product, then rounded sum (no FMA) */
#define GEMM_MADD(c, a, b) _mm512_add_ps(c, _mm512_mul_ps(a, b))
#include "kernels/f32_gemm_avx512.inc"

void gemm_f32_blocked__avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs,
			      int64_t a_cs, const float *b, int64_t ldb, bool trans_b, float *c,
			      int64_t ldc)
{
	gemm_blocked_avx512(m, n, k, a, a_rs, a_cs, b, ldb, trans_b, c, ldc, false);
}

/* Full chunks of 256 columns in 16 accumulators (constant indices: they
 * stay in registers), each k one broadcast, then per vector a load, a
 * multiply and an add; the columns after the last full chunk one vector at a
 * time (the last one masked), each over all of k. */
void gemm_f32_row__avx512(int64_t n, int64_t k, const float *a, int64_t a_cs, const float *b,
			  int64_t ldb, float *c)
{
	enum { V = 16, NV = 16 };
	int64_t j0 = 0;
	for (; j0 + NV * V <= n; j0 += NV * V) {
		__m512 acc[NV];
#pragma GCC unroll 16
		for (int v = 0; v < NV; v++)
			acc[v] = _mm512_setzero_ps();
		for (int64_t kk = 0; kk < k; kk++) {
			__m512 av = _mm512_set1_ps(a[kk * a_cs]);
			const float *br = b + kk * ldb + j0;
#pragma GCC unroll 16
			for (int v = 0; v < NV; v++)
				acc[v] = GEMM_MADD(acc[v], av, _mm512_loadu_ps(br + v * V));
		}
#pragma GCC unroll 16
		for (int v = 0; v < NV; v++)
			_mm512_storeu_ps(c + j0 + v * V, acc[v]);
	}
	for (; j0 < n; j0 += V) {
		__mmask16 m = (__mmask16)(n - j0 >= V ? 0xFFFFu : (1u << (n - j0)) - 1);
		__m512 acc = _mm512_setzero_ps();
		for (int64_t kk = 0; kk < k; kk++)
			acc = GEMM_MADD(acc, _mm512_set1_ps(a[kk * a_cs]),
					_mm512_maskz_loadu_ps(m, b + kk * ldb + j0));
		_mm512_mask_storeu_ps(c + j0, m, acc);
	}
}

#else
typedef int f32_avx512_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
