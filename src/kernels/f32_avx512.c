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
 * times the portable loop's SSE vectors). Blocking as the training SGEMM's
 * (f32_train_avx512.c): KC = 256 rows of a 32-column panel of op(B) packed on
 * the stack (32 KiB), A read in place (a_rs, a_cs), a short last strip from a
 * zero-padded copy, tiles past the edge of C through a stack tile.
 * gemm_f32__ref runs it where q8_isa_best() is avx512vnni (AVX-512F is on
 * every such CPU); tests/test_kernels_f32.c holds it equal to the portable
 * loop on many shapes.
 */
#include "kernels/kernels_f32.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 8
#define NR 32
#define KC 256

static void pack_b(int64_t kc, int nr, const float *b, int64_t ldb, bool trans_b, int64_t k0,
		   int64_t j0, float *restrict bp)
{
	if (!trans_b) {
		for (int64_t kk = 0; kk < kc; kk++) {
			const float *src = b + (k0 + kk) * ldb + j0;
			float *dst = bp + kk * NR;

			if (nr == NR) {
				_mm512_storeu_ps(dst, _mm512_loadu_ps(src));
				_mm512_storeu_ps(dst + 16, _mm512_loadu_ps(src + 16));
			} else {
				for (int j = 0; j < NR; j++)
					dst[j] = j < nr ? src[j] : 0.0f;
			}
		}
		return;
	}
	for (int j = 0; j < NR; j++) {
		if (j < nr) {
			const float *src = b + (j0 + j) * ldb + k0;

			for (int64_t kk = 0; kk < kc; kk++)
				bp[kk * NR + j] = src[kk];
		} else {
			for (int64_t kk = 0; kk < kc; kk++)
				bp[kk * NR + j] = 0.0f;
		}
	}
}

/* C[0:8, 0:32] (+)= A[0:8, 0:kc] bp[0:kc, 0:32], C full-sized (ldc); with
 * load_c the tile starts from C, else from zero. Not instrumented by the
 * sanitizers, as the portable micro-kernel is not: its bounds are the
 * packing's and the callers'. */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize("address", "undefined")))
#endif
static void micro(int64_t kc, const float *a, int64_t a_rs, int64_t a_cs, const float *bp,
		  float *c, int64_t ldc, bool load_c)
{
	__m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;

	if (load_c) {
#define LD(r) c##r##0 = _mm512_loadu_ps(c + r * ldc); c##r##1 = _mm512_loadu_ps(c + r * ldc + 16);
		LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7)
#undef LD
	} else {
		c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = _mm512_setzero_ps();
		c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = _mm512_setzero_ps();
	}
	for (int64_t kk = 0; kk < kc; kk++) {
		__m512 b0 = _mm512_loadu_ps(bp + kk * NR), b1 = _mm512_loadu_ps(bp + kk * NR + 16);
		const float *ak = a + kk * a_cs;
		__m512 av;
#define STEP(r)                                                                        \
	av = _mm512_set1_ps(ak[r * a_rs]);                                             \
	c##r##0 = _mm512_add_ps(c##r##0, _mm512_mul_ps(av, b0));                       \
	c##r##1 = _mm512_add_ps(c##r##1, _mm512_mul_ps(av, b1));
		STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
#undef STEP
	}
#define ST(r) _mm512_storeu_ps(c + r * ldc, c##r##0); _mm512_storeu_ps(c + r * ldc + 16, c##r##1);
	ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7)
#undef ST
}

void gemm_f32_blocked__avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs,
			      int64_t a_cs, const float *b, int64_t ldb, bool trans_b, float *c,
			      int64_t ldc)
{
	_Alignas(64) float bp[KC * NR];
	_Alignas(64) float ap[MR * KC];
	_Alignas(64) float tile[MR * NR];

	for (int64_t pc = 0; pc < k; pc += KC) {
		int64_t kc = k - pc < KC ? k - pc : KC;
		bool load = pc > 0;
		int64_t m_full = m / MR * MR, m_edge = m - m_full;

		if (m_edge) { /* the last rows, zero-padded to MR, [MR][kc] */
			for (int r = 0; r < MR; r++)
				for (int64_t kk = 0; kk < kc; kk++)
					ap[r * KC + kk] = r < m_edge ?
						a[(m_full + r) * a_rs + (pc + kk) * a_cs] : 0.0f;
		}
		for (int64_t jr = 0; jr < n; jr += NR) {
			int nr = n - jr < NR ? (int)(n - jr) : NR;

			pack_b(kc, nr, b, ldb, trans_b, pc, jr, bp);
			for (int64_t ir = 0; ir < m_full; ir += MR) {
				const float *as = a + ir * a_rs + pc * a_cs;
				float *cs = c + ir * ldc + jr;

				if (nr == NR) {
					micro(kc, as, a_rs, a_cs, bp, cs, ldc, load);
					continue;
				}
				for (int r = 0; r < MR; r++)
					for (int j = 0; j < NR; j++)
						tile[r * NR + j] = load && j < nr ? cs[r * ldc + j] : 0.0f;
				micro(kc, as, a_rs, a_cs, bp, tile, NR, true);
				for (int r = 0; r < MR; r++)
					memcpy(cs + r * ldc, tile + r * NR, (size_t)nr * sizeof(float));
			}
			if (m_edge) {
				float *cs = c + m_full * ldc + jr;

				for (int r = 0; r < MR; r++)
					for (int j = 0; j < NR; j++)
						tile[r * NR + j] = load && r < m_edge && j < nr ?
							cs[r * ldc + j] : 0.0f;
				micro(kc, ap, KC, 1, bp, tile, NR, true);
				for (int64_t r = 0; r < m_edge; r++)
					memcpy(cs + r * ldc, tile + r * NR, (size_t)nr * sizeof(float));
			}
		}
	}
}

#else
typedef int f32_avx512_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
