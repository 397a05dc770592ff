/* f32_train_avx512.c - the training kernels with AVX-512F (and FMA): an SGEMM
 * that can accumulate, and the depthwise planes of f32_train_dw.inc compiled
 * for 16-float vectors. Compiled with -mavx512f -mfma; runs only where
 * f32_train_dispatch.c found AVX-512F.
 *
 * GEMM: f32_gemm_avx512.inc's blocked 8 x 32 tiles (shared with the FP32
 * engine's f32_avx512.c) with an FMA per update.
 */
#include "kernels/kernels_train.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define GEMM_MADD(c, a, b) _mm512_fmadd_ps(a, b, c)
#include "kernels/f32_gemm_avx512.inc"

static void gemm_avx512(int m, int n, int k, const float *a, int lda, bool trans_a,
			const float *b, int ldb, bool trans_b, float *c, int ldc, bool accumulate)
{
	int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;

	if (m <= 0 || n <= 0)
		return;
	if (k <= 0) {
		if (!accumulate)
			for (int64_t i = 0; i < m; i++)
				memset(c + i * (int64_t)ldc, 0, (size_t)n * sizeof(float));
		return;
	}
	gemm_blocked_avx512(m, n, k, a, a_rs, a_cs, b, ldb, trans_b, c, ldc, accumulate);
}

#define DW_LANES 16
#define DW_NAME(x) x##__avx512 /* dw_forward_plane__avx512, ... */
#include "kernels/f32_train_dw.inc"

const struct f32_train_kernels f32_train_avx512 = {
	"avx512", gemm_avx512, dw_forward_plane__avx512, dw_data_plane__avx512,
	dw_filter_plane__avx512,
};

#endif
