/* q8_avx512vbmi.c - INT8 table lookup for AVX-512 VBMI (vpermi2b).
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vbmi on x86-64 only; q8_dispatch.c
 * calls it only where CPUID and XGETBV say the CPU and the OS support AVX-512
 * VBMI (it is the avx512vnni path's lookup there).
 *
 * Layout: the 256-byte table in four zmm registers. vpermi2b picks, for each
 * of 64 index bytes, one of 128 table bytes by the index's low 7 bits: one
 * lookup in table[0..127], one in table[128..255], and the index's top bit
 * (vpmovb2m) chooses between them. 64 bytes per two permutes and a blend; the
 * tail goes through masked loads and stores, so no byte past n is touched.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>

void qlut_u8__avx512vbmi(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y)
{
	const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
	const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512i v = _mm512_loadu_si512(x + i);
		__m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
		__m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
		_mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
	}
	if (i < n) {
		__mmask64 k = ((__mmask64)1 << (n - i)) - 1;
		__m512i v = _mm512_maskz_loadu_epi8(k, x + i);
		__m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
		__m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
		_mm512_mask_storeu_epi8(y + i, k,
					_mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
	}
}

#else
typedef int q8_avx512vbmi_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
