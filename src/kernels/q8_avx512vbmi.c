/* q8_avx512vbmi.c - INT8 table lookup and 2x2 max pooling for AVX-512 VBMI
 * (vpermi2b / vpermt2b: any 64 of 128 bytes).
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vbmi on x86-64 only; q8_dispatch.c
 * calls it only where CPUID and XGETBV say the CPU and the OS support AVX-512
 * VBMI (it is the avx512vnni path's lookup and pooling there).
 *
 * Lookup:
 * the 256-byte table in four zmm registers. vpermi2b picks, for each
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

/* 2x2 max pooling, stride 2, NHWC. With c < 32 channels, a chunk is P =
 * floor(64 / c) output pixels of one output row (P*c <= 64 bytes), whose
 * windows span 2*P*c <= 128 bytes of each of the two input rows, from byte
 * base = 2 * ow0 * c. Two 64-byte halves m0, m1 of the byte-wise maximum
 * m[s] = max(r0[base + s], r0[base + s + c], r1[base + s], r1[base + s + c])
 * (masked loads: nothing past the chunk's windows is read), then output byte
 * i = j*c + ch of the chunk is m[2*j*c + ch]: one vpermt2b with the same
 * index for every chunk, one masked store. With c >= 32 each output pixel is
 * the maximum of four masked loads per 64 channels. */
static inline __mmask64 bytes_below(ptrdiff_t n)
{
	return n >= 64 ? ~0ull : n <= 0 ? 0 : (1ull << n) - 1;
}

void qmaxpool2_u8__avx512vbmi(int n, int h, int w, int c, const uint8_t *x, uint8_t *y)
{
	int ho = h / 2, wo = w / 2;
	size_t row = (size_t)w * c, orow = (size_t)wo * c;
	if (ho <= 0 || wo <= 0 || c <= 0)
		return;
	if (c >= 32) {
		for (int img = 0; img < n; img++)
			for (int oh = 0; oh < ho; oh++) {
				const uint8_t *r0 = x + ((size_t)img * h + 2 * oh) * row, *r1 = r0 + row;
				uint8_t *yo = y + ((size_t)img * ho + oh) * orow;
				for (int ow = 0; ow < wo; ow++)
					for (int c0 = 0; c0 < c; c0 += 64) {
						__mmask64 k = bytes_below(c - c0);
						size_t o0 = (size_t)2 * ow * c + c0, o1 = o0 + c;
						__m512i a = _mm512_max_epu8(_mm512_maskz_loadu_epi8(k, r0 + o0),
									    _mm512_maskz_loadu_epi8(k, r0 + o1));
						__m512i b = _mm512_max_epu8(_mm512_maskz_loadu_epi8(k, r1 + o0),
									    _mm512_maskz_loadu_epi8(k, r1 + o1));
						_mm512_mask_storeu_epi8(yo + (size_t)ow * c + c0, k,
									_mm512_max_epu8(a, b));
					}
			}
		return;
	}
	const int n_px = 64 / c; /* output pixels per chunk */
	uint8_t idx_b[64];
	for (int i = 0; i < 64; i++)
		idx_b[i] = (uint8_t)(i < n_px * c ? 2 * (i / c) * c + i % c : 0);
	const __m512i idx = _mm512_loadu_si512(idx_b);
	for (int img = 0; img < n; img++)
		for (int oh = 0; oh < ho; oh++) {
			const uint8_t *r0 = x + ((size_t)img * h + 2 * oh) * row, *r1 = r0 + row;
			uint8_t *yo = y + ((size_t)img * ho + oh) * orow;
			for (int ow0 = 0; ow0 < wo; ow0 += n_px) {
				int px = wo - ow0 < n_px ? wo - ow0 : n_px;
				ptrdiff_t span = (ptrdiff_t)2 * px * c; /* window bytes of the chunk */
				size_t base = (size_t)2 * ow0 * c;
				__mmask64 k0 = bytes_below(span), k1 = bytes_below(span - 64);
				__mmask64 k0c = bytes_below(span - c), k1c = bytes_below(span - 64 - c);
				__m512i m0 = _mm512_max_epu8(
					_mm512_max_epu8(_mm512_maskz_loadu_epi8(k0, r0 + base),
							_mm512_maskz_loadu_epi8(k0c, r0 + base + c)),
					_mm512_max_epu8(_mm512_maskz_loadu_epi8(k0, r1 + base),
							_mm512_maskz_loadu_epi8(k0c, r1 + base + c)));
				__m512i m1 = _mm512_max_epu8(
					_mm512_max_epu8(_mm512_maskz_loadu_epi8(k1, r0 + base + 64),
							_mm512_maskz_loadu_epi8(k1c, r0 + base + 64 + c)),
					_mm512_max_epu8(_mm512_maskz_loadu_epi8(k1, r1 + base + 64),
							_mm512_maskz_loadu_epi8(k1c, r1 + base + 64 + c)));
				_mm512_mask_storeu_epi8(yo + (size_t)ow0 * c, bytes_below((ptrdiff_t)px * c),
							_mm512_permutex2var_epi8(m0, idx, m1));
			}
		}
}

#else
typedef int q8_avx512vbmi_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
