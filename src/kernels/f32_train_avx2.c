/* f32_train_avx2.c - the training kernels with AVX2 and FMA: an SGEMM that
 * can accumulate, and the depthwise planes of f32_train_dw.inc compiled for
 * 8-float vectors. Compiled with -mavx2 -mfma; runs only where
 * f32_train_dispatch.c found AVX2 and FMA.
 *
 * GEMM: as f32_train_avx512.c's, with a 6 x 16 micro-kernel (12 ymm
 * accumulators, per k two loads of B and six broadcasts of A, 12 FMAs: 15 of
 * the 16 registers) over NR = 16 wide packed panels of op(B).
 */
#include "kernels/kernels_train.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 6
#define NR 16
/* The packed B panel is KC * NR * 4 = 16 KiB. */
#define KC 256

static void pack_b(int kc, int nr, const float *b, int64_t ldb, bool trans_b, int64_t k0,
		   int64_t j0, float *restrict bp)
{
	if (!trans_b) {
		for (int kk = 0; kk < kc; kk++) {
			const float *src = b + (k0 + kk) * ldb + j0;
			float *dst = bp + kk * NR;

			if (nr == NR) {
				_mm256_storeu_ps(dst, _mm256_loadu_ps(src));
				_mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
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

			for (int kk = 0; kk < kc; kk++)
				bp[kk * NR + j] = src[kk];
		} else {
			for (int kk = 0; kk < kc; kk++)
				bp[kk * NR + j] = 0.0f;
		}
	}
}

/* C[0:6, 0:16] (+)= A[0:6, 0:kc] bp[0:kc, 0:16], C full-sized (ldc). */
static void micro(int kc, const float *a, int64_t a_rs, int64_t a_cs, const float *bp, float *c,
		  int64_t ldc, bool load_c)
{
	__m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;

	if (load_c) {
#define LD(r) c##r##0 = _mm256_loadu_ps(c + r * ldc); c##r##1 = _mm256_loadu_ps(c + r * ldc + 8);
		LD(0) LD(1) LD(2) LD(3) LD(4) LD(5)
#undef LD
	} else {
		c00 = c01 = c10 = c11 = c20 = c21 = _mm256_setzero_ps();
		c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
	}
	for (int kk = 0; kk < kc; kk++) {
		__m256 b0 = _mm256_loadu_ps(bp + kk * NR), b1 = _mm256_loadu_ps(bp + kk * NR + 8);
		const float *ak = a + kk * a_cs;
		__m256 av;
#define STEP(r) av = _mm256_broadcast_ss(ak + r * a_rs); c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
	c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);
		STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5)
#undef STEP
	}
#define ST(r) _mm256_storeu_ps(c + r * ldc, c##r##0); _mm256_storeu_ps(c + r * ldc + 8, c##r##1);
	ST(0) ST(1) ST(2) ST(3) ST(4) ST(5)
#undef ST
}

static void gemm_avx2(int m, int n, int k, const float *a, int lda, bool trans_a,
		      const float *b, int ldb, bool trans_b, float *c, int ldc, bool accumulate)
{
	_Alignas(32) float bp[KC * NR];
	_Alignas(32) float ap[MR * KC];
	_Alignas(32) float tile[MR * NR];
	int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;

	if (m <= 0 || n <= 0)
		return;
	if (k <= 0) {
		if (!accumulate)
			for (int64_t i = 0; i < m; i++)
				memset(c + i * (int64_t)ldc, 0, (size_t)n * sizeof(float));
		return;
	}
	for (int pc = 0; pc < k; pc += KC) {
		int kc = k - pc < KC ? k - pc : KC;
		bool load = accumulate || pc > 0;
		int m_full = m / MR * MR, m_edge = m - m_full;

		if (m_edge) {
			for (int r = 0; r < MR; r++)
				for (int kk = 0; kk < kc; kk++)
					ap[r * KC + kk] = r < m_edge ?
						a[(m_full + r) * a_rs + (pc + kk) * a_cs] : 0.0f;
		}
		for (int jr = 0; jr < n; jr += NR) {
			int nr = n - jr < NR ? n - jr : NR;

			pack_b(kc, nr, b, ldb, trans_b, pc, jr, bp);
			for (int ir = 0; ir < m_full; ir += MR) {
				const float *as = a + ir * a_rs + pc * a_cs;
				float *cs = c + (int64_t)ir * ldc + jr;

				if (nr == NR) {
					micro(kc, as, a_rs, a_cs, bp, cs, ldc, load);
					continue;
				}
				for (int r = 0; r < MR; r++)
					for (int j = 0; j < NR; j++)
						tile[r * NR + j] = load && j < nr ? cs[r * (int64_t)ldc + j] : 0.0f;
				micro(kc, as, a_rs, a_cs, bp, tile, NR, true);
				for (int r = 0; r < MR; r++)
					memcpy(cs + r * (int64_t)ldc, tile + r * NR, (size_t)nr * sizeof(float));
			}
			if (m_edge) {
				float *cs = c + (int64_t)m_full * ldc + jr;

				for (int r = 0; r < MR; r++)
					for (int j = 0; j < NR; j++)
						tile[r * NR + j] = load && r < m_edge && j < nr ?
							cs[r * (int64_t)ldc + j] : 0.0f;
				micro(kc, ap, KC, 1, bp, tile, NR, true);
				for (int r = 0; r < m_edge; r++)
					memcpy(cs + r * (int64_t)ldc, tile + r * NR, (size_t)nr * sizeof(float));
			}
		}
	}
}

#define DW_LANES 8
#define DW_NAME(x) x##__avx2 /* dw_forward_plane__avx2, ... */
#include "kernels/f32_train_dw.inc"

const struct f32_train_kernels f32_train_avx2 = {
	"avx2", gemm_avx2, dw_forward_plane__avx2, dw_data_plane__avx2, dw_filter_plane__avx2,
};

#endif
