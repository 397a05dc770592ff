/* q8_avx512vnni_elt.c - INT8 element-wise kernels for AVX-512 with VNNI:
 * Add, Mul, per-channel sums over pixels, the MatMul of two uint8
 * activations, quantizing float, Softmax and LayerNormalization.
 *
 * Compiled and dispatched as q8_avx512vnni.c (its flags, its CPUID check);
 * results are bit-identical to q8_ref.c.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

/* --- Add ------------------------------------------------------------------------ */

/* q8_add_f32 on 16 lanes: the same float operations in the same order. */
static ALWAYS_INLINE __m128i add16(__m128i a8, __m128i b8, const struct qadd_params *p,
				   const struct rq_out *o)
{
	__m512 fa = _mm512_cvtepi32_ps(
		_mm512_sub_epi32(_mm512_cvtepu8_epi32(a8), _mm512_set1_epi32(p->a_zero)));
	__m512 fb = _mm512_cvtepi32_ps(
		_mm512_sub_epi32(_mm512_cvtepu8_epi32(b8), _mm512_set1_epi32(p->b_zero)));
	__m512 f = _mm512_add_ps(_mm512_mul_ps(fa, _mm512_set1_ps(p->a_scale)),
				 _mm512_mul_ps(fb, _mm512_set1_ps(p->b_scale)));
	f = _mm512_min_ps(_mm512_max_ps(f, _mm512_sub_ps(o->min_f, o->zero_f)),
			  _mm512_sub_ps(o->max_f, o->zero_f));
	return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), o->zero));
}

/* 64 results at once from their 4 groups of 16 int32 r[k] (each already
 * rounded: every float form rounds before it clamps, and with integer bounds
 * rounding and clamping commute): packed with saturation to int16, plus z16
 * (saturating; 0 where the zero point is in r already), to uint8, then
 * clamped as bytes; the saturations only meet values beyond the clamp, which
 * they leave beyond it. The packs interleave the 4 groups per 128-bit lane
 * (dword 4L + k holds group k's dword L); one vpermd puts them in order.
 * z, lo, hi: whether to add z16 and to clamp below and above; a caller that
 * knows once per call that c_zero = 0, c_min = 0 or c_max = 255 leaves that
 * step out (the packs saturate to [0, 255] already). */
static ALWAYS_INLINE __m512i pack64_lean(const __m512i r[4], __m512i z16, __m512i cmin,
					 __m512i cmax, bool z, bool lo, bool hi)
{
	const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
	__m512i ab = _mm512_packs_epi32(r[0], r[1]), cd = _mm512_packs_epi32(r[2], r[3]);
	if (z) {
		ab = _mm512_adds_epi16(ab, z16);
		cd = _mm512_adds_epi16(cd, z16);
	}
	__m512i v = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(ab, cd));
	if (lo)
		v = _mm512_max_epu8(v, cmin);
	if (hi)
		v = _mm512_min_epu8(v, cmax);
	return v;
}

/* pack64_lean with every step. */
static ALWAYS_INLINE __m512i pack64(const __m512i r[4], __m512i z16, __m512i cmin, __m512i cmax)
{
	return pack64_lean(r, z16, cmin, cmax, true, true, true);
}

/* Whether every float result of an elementwise kernel lies within 2^30 of 0
 * (amax: a bound on |f|), so that its conversion to int32 cannot overflow
 * and pack64 may clamp after it (NaN: no). */
static bool f32_fits(double amax)
{
	return amax < 1073741824.0;
}

/* The largest |code - zero| of a uint8 code. */
static double code_span(int32_t zero)
{
	return fmax(fabs((double)zero), fabs(255.0 - (double)zero));
}

/* Group k (16 codes) of p widened to int32: a plain load where FULL (a
 * constant), else masked by bits 16 k .. 16 k + 15 of m. */
static ALWAYS_INLINE __m512i codes16(const uint8_t *p, int k, bool full, __mmask64 m)
{
	const uint8_t *q = p + 16 * k;
	return _mm512_cvtepu8_epi32(full ? _mm_loadu_si128((const __m128i *)q)
					 : _mm_maskz_loadu_epi8((__mmask16)(m >> (16 * k)), q));
}

/* CALL with G (1..4, a constant) the groups of 16 that n (1..64) codes take. */
#define GROUPS_OF(n, CALL)                                                               \
	do {                                                                             \
		switch (((n) + 15) / 16) {                                               \
		case 1: {                                                                \
			const int G = 1;                                                 \
			CALL;                                                            \
		} break;                                                                 \
		case 2: {                                                                \
			const int G = 2;                                                 \
			CALL;                                                            \
		} break;                                                                 \
		case 3: {                                                                \
			const int G = 3;                                                 \
			CALL;                                                            \
		} break;                                                                 \
		default: {                                                               \
			const int G = 4;                                                 \
			CALL;                                                            \
		} break;                                                                 \
		}                                                                        \
	} while (0)

/* q8_add_f32 of groups 0..G-1 of 16 codes (the others 0), the rounded sum
 * without its zero point: the same float operations as add16. */
static ALWAYS_INLINE void add_r(int G, bool full, const uint8_t *a, const uint8_t *b, __mmask64 m,
				const struct qadd_params *p, __m512i r[4])
{
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		if (k >= G) {
			r[k] = _mm512_setzero_si512();
			continue;
		}
		__m512 fa = _mm512_cvtepi32_ps(
			_mm512_sub_epi32(codes16(a, k, full, m), _mm512_set1_epi32(p->a_zero)));
		__m512 fb = _mm512_cvtepi32_ps(
			_mm512_sub_epi32(codes16(b, k, full, m), _mm512_set1_epi32(p->b_zero)));
		r[k] = _mm512_cvtps_epi32(_mm512_add_ps(_mm512_mul_ps(fa, _mm512_set1_ps(p->a_scale)),
							_mm512_mul_ps(fb, _mm512_set1_ps(p->b_scale))));
	}
}

/* Whether the Add's 64-code path applies: every float result within 2^30
 * (f32_fits) and c_zero within int16 (pack64's saturating add). */
static bool add_fits(const struct qadd_params *p)
{
	return f32_fits(code_span(p->a_zero) * fabs((double)p->a_scale) +
			code_span(p->b_zero) * fabs((double)p->b_scale) + 1.0) &&
	       p->c_zero >= -32768 && p->c_zero <= 32767;
}

/* 64 codes a time through pack64 where the sums fit (|f| < 2^30), else 16. */
void qadd_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b,
		     const struct qadd_params *params, uint8_t *y)
{
	/* a copy: stores to y may alias *params, which the loops would read again */
	const struct qadd_params pc = *params, *p = &pc;
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	size_t i = 0;
	if (add_fits(p)) {
		const __m512i z16 = _mm512_set1_epi16((short)p->c_zero);
		const __m512i cmin = _mm512_set1_epi8((char)p->c_min), cmax = _mm512_set1_epi8((char)p->c_max);
		__m512i r[4];
		for (; i + 64 <= n; i += 64) {
			add_r(4, true, a + i, b + i, ~0ull, p, r);
			_mm512_storeu_si512(y + i, pack64(r, z16, cmin, cmax));
		}
		if (i < n) {
			/* masked: the bytes past n are neither read nor written */
			__mmask64 k = (1ull << (n - i)) - 1;
			GROUPS_OF(n - i, add_r(G, false, a + i, b + i, k, p, r));
			_mm512_mask_storeu_epi8(y + i, k, pack64(r, z16, cmin, cmax));
		}
		return;
	}
	for (; i + 16 <= n; i += 16)
		_mm_storeu_si128((__m128i *)(y + i),
				 add16(_mm_loadu_si128((const __m128i *)(a + i)),
				       _mm_loadu_si128((const __m128i *)(b + i)), p, &o));
	if (i < n) {
		/* masked: the bytes past n are neither read nor written */
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		_mm_mask_storeu_epi8(y + i, k,
				     add16(_mm_maskz_loadu_epi8(k, a + i), _mm_maskz_loadu_epi8(k, b + i),
					   p, &o));
	}
}

/* With AVX-512 VBMI: a - a_zero in float without widening, converting and
 * subtracting in int32. One vpermt2b puts code i of a group of 16 into the
 * low byte of a dword whose other bytes are 0x00, 0x00, 0x4B: the float 2^23
 * + a (exact), and one subtraction of 2^23 + a_zero leaves a - a_zero, the
 * same float as (float)(a - a_zero). From there on add_r's operations: the
 * results are q8_add_f32's bit for bit (1.3x on a 16 x 28 x 28 Add: two
 * operations of each operand's three per 16 codes gone). Its functions carry
 * target("avx512vbmi"); q8_add_for() hands it out only where the CPU has
 * VBMI besides the avx512vnni path. */
#define VBMI __attribute__((target("avx512vbmi")))

/* Groups 0..3 of 16 codes of v as floats c + 2^23 - off (exact). */
VBMI static ALWAYS_INLINE void codes_f32_vbmi(__m512i v, const __m512i idx[4], __m512 off,
					      __m512 f[4])
{
	const __m512i magic = _mm512_set1_epi32(0x4B000000);
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++)
		f[k] = _mm512_sub_ps(_mm512_castsi512_ps(_mm512_permutex2var_epi8(v, idx[k], magic)),
				     off);
}

/* The constants of add64_vbmi, read from qadd_params once (a store to y
 * may alias them, so the loop would read them again otherwise). */
struct add_vbmi {
	__m512i idx[4], z16, cmin, cmax;
	__m512 off_a, off_b, sa, sb;
	bool z, lo, hi; /* c_zero != 0, c_min > 0, c_max < 255 (pack64_lean) */
};

VBMI static ALWAYS_INLINE __m512i add64_vbmi(__m512i av, __m512i bv, const struct add_vbmi *k)
{
	__m512 fa[4], fb[4];
	codes_f32_vbmi(av, k->idx, k->off_a, fa);
	codes_f32_vbmi(bv, k->idx, k->off_b, fb);
	__m512i r[4];
#pragma GCC unroll 4
	for (int g = 0; g < 4; g++)
		r[g] = _mm512_cvtps_epi32(
			_mm512_add_ps(_mm512_mul_ps(fa[g], k->sa), _mm512_mul_ps(fb[g], k->sb)));
	return pack64_lean(r, k->z16, k->cmin, k->cmax, k->z, k->lo, k->hi);
}

VBMI void qadd_u8__avx512vbmi(size_t n, const uint8_t *a, const uint8_t *b,
			      const struct qadd_params *p, uint8_t *y)
{
	/* qadd_u8__avx512's 64-code path, with zero points within 2^22 (2^23 +
	 * zero is then exact, and so the subtraction) */
	if (!(add_fits(p) && p->a_zero > -4194304 && p->a_zero < 4194304 &&
	      p->b_zero > -4194304 && p->b_zero < 4194304)) {
		qadd_u8__avx512(n, a, b, p, y);
		return;
	}
	/* byte 4i of group g's dword i: code 16g + i of the 64; bytes 4i + 1..3:
	 * bytes 1..3 of the magic dword (indices 65, 66, 67: the second table) */
	struct add_vbmi k;
	const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	for (int g = 0; g < 4; g++)
		k.idx[g] = _mm512_add_epi32(iota, _mm512_set1_epi32(0x43424100 + 16 * g));
	k.z16 = _mm512_set1_epi16((short)p->c_zero);
	k.cmin = _mm512_set1_epi8((char)p->c_min);
	k.cmax = _mm512_set1_epi8((char)p->c_max);
	k.off_a = _mm512_set1_ps(8388608.0f + (float)p->a_zero);
	k.off_b = _mm512_set1_ps(8388608.0f + (float)p->b_zero);
	k.sa = _mm512_set1_ps(p->a_scale);
	k.sb = _mm512_set1_ps(p->b_scale);
	k.z = p->c_zero != 0;
	k.lo = p->c_min > 0;
	k.hi = p->c_max < 255;
	size_t i = 0;
	for (; i + 64 <= n; i += 64)
		_mm512_storeu_si512(y + i, add64_vbmi(_mm512_loadu_si512(a + i),
						      _mm512_loadu_si512(b + i), &k));
	if (i < n) {
		/* masked: the bytes past n are neither read nor written */
		__mmask64 m = (1ull << (n - i)) - 1;
		_mm512_mask_storeu_epi8(y + i, m,
					add64_vbmi(_mm512_maskz_loadu_epi8(m, a + i),
						   _mm512_maskz_loadu_epi8(m, b + i), &k));
	}
}
#undef VBMI

/* --- Mul ------------------------------------------------------------------------ */

/* q8_mul (float form) on 16 lanes, as mul8 in q8_avx2.c. */
static ALWAYS_INLINE __m128i mul16(__m128i a8, __m128i b8, const struct qmul_params *p,
				   const struct rq_out *o)
{
	__m512i a = _mm512_sub_epi32(_mm512_cvtepu8_epi32(a8), _mm512_set1_epi32(p->a_zero));
	__m512i b = _mm512_sub_epi32(_mm512_cvtepu8_epi32(b8), _mm512_set1_epi32(p->b_zero));
	__m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(a, b)),
				   _mm512_set1_ps(p->scale), o->zero_f);
	f = _mm512_min_ps(_mm512_max_ps(f, o->min_f), o->max_f);
	return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f));
}

/* round(fma((a - a_zero) * bz[k], scale, c_zero)) for groups 0..G-1 of 16
 * codes of a (the others 0), bz[k] the other factor of group k, its zero
 * point taken off. */
static ALWAYS_INLINE void mul_r(int G, bool full, const uint8_t *a, const __m512i bz[4], __mmask64 m,
				const struct qmul_params *p, __m512i r[4])
{
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		if (k >= G) {
			r[k] = _mm512_setzero_si512();
			continue;
		}
		__m512i acc = _mm512_mullo_epi32(
			_mm512_sub_epi32(codes16(a, k, full, m), _mm512_set1_epi32(p->a_zero)), bz[k]);
		r[k] = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(p->scale),
							  _mm512_set1_ps((float)p->c_zero)));
	}
}

/* The factors bz[0..G-1] of groups of 16 codes of b, zero point taken off. */
static ALWAYS_INLINE void mul_factors(int G, bool full, const uint8_t *b, __mmask64 m, int32_t b_zero,
				      __m512i bz[4])
{
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++)
		bz[k] = k < G ? _mm512_sub_epi32(codes16(b, k, full, m), _mm512_set1_epi32(b_zero))
			      : _mm512_setzero_si512();
}

/* The float form's results all within 2^30 (see f32_fits). */
static bool mul_fits(const struct qmul_params *p)
{
	return f32_fits(code_span(p->a_zero) * code_span(p->b_zero) * fabs((double)p->scale) +
			fabs((double)p->c_zero) + 1.0);
}

/* 64 codes a time through pack64 where the results fit, else 16. */
void qmul_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b,
		     const struct qmul_params *params, uint8_t *y)
{
	/* a copy: stores to y may alias *params, which the loops would read again */
	const struct qmul_params pc = *params, *p = &pc;
	if (p->q31) {
		qmul_u8__ref(n, a, b, p, y);
		return;
	}
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	size_t i = 0;
	if (mul_fits(p)) {
		const __m512i z16 = _mm512_setzero_si512();
		const __m512i cmin = _mm512_set1_epi8((char)p->c_min), cmax = _mm512_set1_epi8((char)p->c_max);
		__m512i bz[4], r[4];
		for (; i + 64 <= n; i += 64) {
			mul_factors(4, true, b + i, ~0ull, p->b_zero, bz);
			mul_r(4, true, a + i, bz, ~0ull, p, r);
			_mm512_storeu_si512(y + i, pack64(r, z16, cmin, cmax));
		}
		if (i < n) {
			__mmask64 k = (1ull << (n - i)) - 1;
			GROUPS_OF(n - i, mul_factors(G, false, b + i, k, p->b_zero, bz);
				  mul_r(G, false, a + i, bz, k, p, r));
			_mm512_mask_storeu_epi8(y + i, k, pack64(r, z16, cmin, cmax));
		}
		return;
	}
	for (; i + 16 <= n; i += 16)
		_mm_storeu_si128((__m128i *)(y + i),
				 mul16(_mm_loadu_si128((const __m128i *)(a + i)),
				       _mm_loadu_si128((const __m128i *)(b + i)), p, &o));
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		_mm_mask_storeu_epi8(y + i, k,
				     mul16(_mm_maskz_loadu_epi8(k, a + i), _mm_maskz_loadu_epi8(k, b + i),
					   p, &o));
	}
}

/* Rows of c codes of a by the gate, from chunk ch0 (nb codes, G groups of 16:
 * constants) on, the gate's factors bz. */
static ALWAYS_INLINE void mul_rows_chunk(int G, bool full, size_t rows, size_t c, size_t ch0, size_t nb,
					 const uint8_t *a, const __m512i bz[4],
					 const struct qmul_params *p, uint8_t *y)
{
	const __m512i z16 = _mm512_setzero_si512();
	const __m512i cmin = _mm512_set1_epi8((char)p->c_min), cmax = _mm512_set1_epi8((char)p->c_max);
	const __mmask64 k = full ? ~0ull : (1ull << nb) - 1;
	__m512i r[4];
	for (size_t row = 0; row < rows; row++) {
		mul_r(G, full, a + row * c + ch0, bz, k, p, r);
		if (full)
			_mm512_storeu_si512(y + row * c + ch0, pack64(r, z16, cmin, cmax));
		else
			_mm512_mask_storeu_epi8(y + row * c + ch0, k, pack64(r, z16, cmin, cmax));
	}
}

/* With c dividing 64, the rows are one run of codes whose gate repeats every
 * c codes, 64 at a time; else each row in chunks of 64 channels (the last in
 * as many groups of 16 as it takes), the gate's factors of a chunk
 * computed once for every row. */
void qmul_rows_u8__avx512(size_t rows, size_t c, const uint8_t *a, const uint8_t *gate,
			  const struct qmul_params *params, uint8_t *y)
{
	const struct qmul_params pc = *params, *p = &pc; /* (as in qmul_u8__avx512) */
	if (p->q31 || !mul_fits(p) || c == 0) {
		for (size_t r = 0; r < rows; r++)
			qmul_u8__avx512(c, a + r * c, gate, p, y + r * c);
		return;
	}
	__m512i bz[4];
	if (c <= 64 && 64 % c == 0) {
		const __m512i z16 = _mm512_setzero_si512();
		const __m512i cmin = _mm512_set1_epi8((char)p->c_min), cmax = _mm512_set1_epi8((char)p->c_max);
		__m512i r[4];
		uint8_t g64[64];
		for (int i = 0; i < 64; i++)
			g64[i] = gate[(size_t)i % c];
		mul_factors(4, true, g64, ~0ull, p->b_zero, bz);
		size_t n = rows * c, i = 0;
		for (; i + 64 <= n; i += 64) {
			mul_r(4, true, a + i, bz, ~0ull, p, r);
			_mm512_storeu_si512(y + i, pack64(r, z16, cmin, cmax));
		}
		if (i < n) {
			__mmask64 k = (1ull << (n - i)) - 1;
			GROUPS_OF(n - i, mul_r(G, false, a + i, bz, k, p, r));
			_mm512_mask_storeu_epi8(y + i, k, pack64(r, z16, cmin, cmax));
		}
		return;
	}
	size_t ch0 = 0;
	for (; ch0 + 64 <= c; ch0 += 64) {
		mul_factors(4, true, gate + ch0, ~0ull, p->b_zero, bz);
		mul_rows_chunk(4, true, rows, c, ch0, 64, a, bz, p, y);
	}
	if (ch0 < c) {
		size_t nb = c - ch0;
		__mmask64 k = (1ull << nb) - 1;
		GROUPS_OF(nb, mul_factors(G, false, gate + ch0, k, p->b_zero, bz);
			  mul_rows_chunk(G, false, rows, c, ch0, nb, a, bz, p, y));
	}
}

/* --- per-channel sums over pixels ------------------------------------------------- */

/* Codes are added into 16-bit lanes (vpmovzxbw, vpaddw), at most
 * SUM_U16_RUN to a lane (257 * 255 < 2^16), then widened into 32-bit sums.
 * With c dividing 64 and the pixels contiguous, the codes are one run, 64 at
 * a time, lane j of the run summing channel j % c, folded at the end; else
 * each chunk of 64 channels pixel by pixel. */
#define SUM_U16_RUN 257

/* acc32[0..3] += the 64 16-bit lanes of lo and hi, widened. */
static ALWAYS_INLINE void sum_widen(__m512i lo, __m512i hi, __m512i acc32[4])
{
	acc32[0] = _mm512_add_epi32(acc32[0], _mm512_cvtepu16_epi32(_mm512_castsi512_si256(lo)));
	acc32[1] = _mm512_add_epi32(acc32[1], _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(lo, 1)));
	acc32[2] = _mm512_add_epi32(acc32[2], _mm512_cvtepu16_epi32(_mm512_castsi512_si256(hi)));
	acc32[3] = _mm512_add_epi32(acc32[3], _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hi, 1)));
}

/* lo, hi += the codes of v (bytes 0..31, 32..63) as 16-bit lanes. */
static ALWAYS_INLINE void sum_add(__m512i v, __m512i *lo, __m512i *hi)
{
	*lo = _mm512_add_epi16(*lo, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v)));
	*hi = _mm512_add_epi16(*hi, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v, 1)));
}

void qsum_pixels_u8__avx512(size_t hw, size_t c, size_t stride, const uint8_t *x, uint32_t *sum)
{
	__m512i acc32[4];
	if (c > 0 && c <= 64 && 64 % c == 0 && stride == c) {
		acc32[0] = acc32[1] = acc32[2] = acc32[3] = _mm512_setzero_si512();
		size_t n = hw * c, i = 0;
		while (i < n) {
			__m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
			for (int run = 0; run < SUM_U16_RUN && i < n; run++, i += 64) {
				__mmask64 k = n - i >= 64 ? ~0ull : (1ull << (n - i)) - 1;
				sum_add(_mm512_maskz_loadu_epi8(k, x + i), &lo, &hi);
			}
			sum_widen(lo, hi, acc32);
		}
		/* lane j of acc32[q] sums byte 16 q + j of every 64, channel (16 q + j) % c */
		uint32_t t[64];
		for (int q = 0; q < 4; q++)
			_mm512_storeu_si512(t + 16 * q, acc32[q]);
		for (size_t ch = 0; ch < c; ch++) {
			uint32_t v = 0;
			for (size_t j = ch; j < 64; j += c)
				v += t[j];
			sum[ch] = v;
		}
		return;
	}
	for (size_t ch0 = 0; ch0 < c; ch0 += 64) {
		size_t nb = c - ch0 < 64 ? c - ch0 : 64;
		__mmask64 k = nb >= 64 ? ~0ull : (1ull << nb) - 1;
		acc32[0] = acc32[1] = acc32[2] = acc32[3] = _mm512_setzero_si512();
		const uint8_t *xc = x + ch0;
		for (size_t px = 0; px < hw;) {
			__m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
			for (int run = 0; run < SUM_U16_RUN && px < hw; run++, px++)
				sum_add(_mm512_maskz_loadu_epi8(k, xc + px * stride), &lo, &hi);
			sum_widen(lo, hi, acc32);
		}
		for (int q = 0; q < 4; q++) {
			size_t left = nb > (size_t)16 * q ? nb - (size_t)16 * q : 0;
			__mmask16 kq = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
			_mm512_mask_storeu_epi32(sum + ch0 + 16 * q, kq, acc32[q]);
		}
	}
}

/* --- MatMul of two uint8 activations: qmatmul_u8u8_4x16__avx512vnni ------------
 *
 * vpdpbusd multiplies uint8 by int8, so B is shifted to int8, b' = b - 128,
 * and the sum is expanded (kernels_q8.h):
 *     acc = sum a b' + (128 - b_zero) sum_k a - a_zero sum_k b + K a_zero b_zero
 * the first term from vpdpbusd, the second per row, the last two per column,
 * all in wrapping int32 arithmetic: the true acc fits int32, so the wrapped
 * sum is exactly it. work holds, 64-aligned: the column terms, int32
 * [n16] (n16 = n rounded up to 16), then B' packed as [n16/16][kq][16][4]
 * int8 (kq = ceil(k/4); four consecutive k of one column in one dword, zero
 * past k and n). A row's four k are broadcast as one dword against a 16-column
 * panel; 4 rows share each panel load. B given transposed ([n][ldb]) holds a
 * column's four k as one dword already: the packing gathers them. */

static size_t mm512_kq(int k)
{
	return ((size_t)k + 3) / 4;
}

static size_t mm512_n16(int n)
{
	return ((size_t)n + 15) / 16 * 16;
}

static size_t qmatmul_work_bytes_512(int k, int n)
{
	return mm512_n16(n) * 4 + mm512_n16(n) * mm512_kq(k) * 4;
}

/* Packs B' and writes the column terms. */
static void qmatmul_pack_b_512(const struct qmatmul_params *p, const uint8_t *b, int ldb,
			       int32_t *colterm, int8_t *packed)
{
	int k = p->k, n = p->n;
	size_t kq = mm512_kq(k);
	const __m512i ones = _mm512_set1_epi8(1);
	for (int j0 = 0; j0 < n; j0 += 16) {
		__mmask16 cm = (__mmask16)(n - j0 >= 16 ? 0xffff : (1u << (n - j0)) - 1);
		__m128i flip = _mm_maskz_mov_epi8(cm, _mm_set1_epi8((char)0x80));
		int8_t *dst = packed + (size_t)(j0 / 16) * kq * 64;
		__m512i colsum = _mm512_setzero_si512(); /* sum of b' per column */
		if (p->b_trans) {
			/* column j0 + j is row j0 + j: its four k of one dword are
			 * consecutive bytes, gathered as dwords (the last, partial
			 * dword byte by byte, never reading past k) */
			const __m512i rows = _mm512_mullo_epi32(
				_mm512_add_epi32(_mm512_set1_epi32(j0),
						 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
								   12, 13, 14, 15)),
				_mm512_set1_epi32(ldb));
			const __m512i flip4 = _mm512_set1_epi32((int)0x80808080u);
			for (size_t q = 0; q < kq; q++) {
				__m512i v;
				if (4 * q + 4 <= (size_t)k) {
					v = _mm512_mask_i32gather_epi32(
						_mm512_setzero_si512(), cm,
						_mm512_add_epi32(rows, _mm512_set1_epi32((int)(4 * q))),
						b, 1);
					v = _mm512_maskz_xor_epi32(cm, v, flip4);
				} else {
					int32_t w[16] = {0};
					for (int j = 0; j < 16 && j0 + j < n; j++)
						for (size_t kk = 4 * q; kk < (size_t)k; kk++)
							w[j] |= (int32_t)((uint32_t)(b[(size_t)(j0 + j) *
											  (size_t)ldb +
										  kk] ^
										0x80u)
									  << (8 * (kk - 4 * q)));
					v = _mm512_loadu_si512(w);
				}
				_mm512_storeu_si512(dst + q * 64, v);
				colsum = _mm512_dpbusd_epi32(colsum, ones, v);
			}
		}
		for (size_t q = 0; !p->b_trans && q < kq; q++) {
			__m128i r[4];
			for (int t = 0; t < 4; t++) {
				size_t kk = 4 * q + (size_t)t;
				r[t] = kk < (size_t)k ? _mm_xor_si128(_mm_maskz_loadu_epi8(
						cm, b + kk * (size_t)ldb + (size_t)j0), flip)
						      : _mm_setzero_si128();
			}
			__m128i t0 = _mm_unpacklo_epi8(r[0], r[1]), t1 = _mm_unpackhi_epi8(r[0], r[1]);
			__m128i t2 = _mm_unpacklo_epi8(r[2], r[3]), t3 = _mm_unpackhi_epi8(r[2], r[3]);
			__m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(t0, t2));
			v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(t0, t2), 1);
			v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(t1, t3), 2);
			v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(t1, t3), 3);
			_mm512_storeu_si512(dst + q * 64, v);
			colsum = _mm512_dpbusd_epi32(colsum, ones, v);
		}
		/* sum b = sum b' + 128 k; term = K a_zero b_zero - a_zero sum b */
		__m512i sum_b = _mm512_add_epi32(colsum, _mm512_set1_epi32(128 * k));
		__m512i term = _mm512_sub_epi32(
			_mm512_set1_epi32((int32_t)((uint32_t)k * (uint32_t)p->a_zero *
						    (uint32_t)p->b_zero)),
			_mm512_mullo_epi32(sum_b, _mm512_set1_epi32(p->a_zero)));
		_mm512_storeu_si512(colterm + j0, term);
	}
}

/* The dword of a's k values 4q .. 4q+3, zeros past k. */
static ALWAYS_INLINE int32_t a_dword(const uint8_t *a, int k, size_t q)
{
	int32_t w = 0;
	size_t k0 = 4 * q;
	memcpy(&w, a + k0, (size_t)k - k0 >= 4 ? 4 : (size_t)k - k0);
	return w;
}

/* Sum of a row's k bytes. */
static ALWAYS_INLINE int32_t row_sum_u8(const uint8_t *a, int k)
{
	__m512i s = _mm512_setzero_si512();
	for (int kk = 0; kk < k; kk += 64) {
		__mmask64 km = k - kk >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (k - kk)) - 1;
		s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(km, a + kk),
							_mm512_setzero_si512()));
	}
	return (int32_t)_mm512_reduce_add_epi64(s);
}

static ALWAYS_INLINE void qmatmul_store16(const struct qmatmul_params *p, __m512i acc,
					  __mmask16 cm, uint8_t *c)
{
	if (p->q31) {
		int32_t t[16];
		_mm512_storeu_si512(t, acc);
		for (int j = 0; j < 16; j++)
			if (cm >> j & 1)
				c[j] = q8_matmul_requant(t[j], p);
		return;
	}
	__m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(p->rq_scale),
				   _mm512_set1_ps((float)p->c_zero));
	f = _mm512_max_ps(f, _mm512_set1_ps((float)p->c_min));
	f = _mm512_min_ps(f, _mm512_set1_ps((float)p->c_max));
	_mm_mask_storeu_epi8(c, cm, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f)));
}

static void qmatmul_run_512(const struct qmatmul_params *p, const uint8_t *a, int lda,
			    const uint8_t *b, int ldb, uint8_t *c, int ldc, void *work)
{
	int m = p->m, n = p->n, k = p->k;
	if (m <= 0 || n <= 0)
		return;
	size_t kq = mm512_kq(k), kfull = (size_t)k / 4;
	int32_t *colterm = work;
	int8_t *packed = (int8_t *)work + mm512_n16(n) * 4;
	qmatmul_pack_b_512(p, b, ldb, colterm, packed);
	int32_t rs = 128 - p->b_zero;
	for (int i0 = 0; i0 < m; i0 += 4) {
		int mr = m - i0 < 4 ? m - i0 : 4;
		const uint8_t *ar[4];
		int32_t rowterm[4];
		for (int r = 0; r < 4; r++) {
			ar[r] = a + (size_t)(i0 + (r < mr ? r : 0)) * (size_t)lda;
			rowterm[r] = (int32_t)((uint32_t)rs * (uint32_t)row_sum_u8(ar[r], k));
		}
		for (int j0 = 0; j0 < n; j0 += 16) {
			__mmask16 cm = (__mmask16)(n - j0 >= 16 ? 0xffff : (1u << (n - j0)) - 1);
			const int8_t *pb = packed + (size_t)(j0 / 16) * kq * 64;
			__m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
			size_t q = 0;
			for (; q < kfull; q++) {
				__m512i bv = _mm512_loadu_si512(pb + q * 64);
				int32_t w[4];
				for (int r = 0; r < 4; r++)
					memcpy(&w[r], ar[r] + 4 * q, 4);
				acc0 = _mm512_dpbusd_epi32(acc0, _mm512_set1_epi32(w[0]), bv);
				acc1 = _mm512_dpbusd_epi32(acc1, _mm512_set1_epi32(w[1]), bv);
				acc2 = _mm512_dpbusd_epi32(acc2, _mm512_set1_epi32(w[2]), bv);
				acc3 = _mm512_dpbusd_epi32(acc3, _mm512_set1_epi32(w[3]), bv);
			}
			if (q < kq) {
				__m512i bv = _mm512_loadu_si512(pb + q * 64);
				acc0 = _mm512_dpbusd_epi32(acc0, _mm512_set1_epi32(a_dword(ar[0], k, q)), bv);
				acc1 = _mm512_dpbusd_epi32(acc1, _mm512_set1_epi32(a_dword(ar[1], k, q)), bv);
				acc2 = _mm512_dpbusd_epi32(acc2, _mm512_set1_epi32(a_dword(ar[2], k, q)), bv);
				acc3 = _mm512_dpbusd_epi32(acc3, _mm512_set1_epi32(a_dword(ar[3], k, q)), bv);
			}
			__m512i ct = _mm512_loadu_si512(colterm + j0);
			__m512i accs[4] = {acc0, acc1, acc2, acc3};
			for (int r = 0; r < mr; r++) {
				__m512i acc = _mm512_add_epi32(
					_mm512_add_epi32(accs[r], ct), _mm512_set1_epi32(rowterm[r]));
				qmatmul_store16(p, acc, cm, c + (size_t)(i0 + r) * (size_t)ldc + j0);
			}
		}
	}
}

const struct qmatmul_ukernel qmatmul_u8u8_4x16__avx512vnni = {
	.name = "qmatmul_u8u8_4x16__avx512vnni",
	.work_bytes = qmatmul_work_bytes_512,
	.run = qmatmul_run_512,
};

/* --- quantizing float ------------------------------------------------------------ */

/* q8_quantize_f32 on 16 lanes: max/min_ps return their second operand when
 * the first is NaN, which is the scalar form's comparison (NaN -> lo). */
static ALWAYS_INLINE __m128i quant16(__m512 x, __m512 inv, __m512 lo, __m512 hi,
				     __m512i zero, __m512i qmax)
{
	__m512 t = _mm512_mul_ps(x, inv);
	t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
	__mmask16 neg = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ);
	__m512 half = _mm512_mask_blend_ps(neg, _mm512_set1_ps(0.5f), _mm512_set1_ps(-0.5f));
	__m512i r = _mm512_add_epi32(_mm512_cvttps_epi32(_mm512_add_ps(t, half)), zero);
	r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_setzero_si512()), qmax);
	return _mm512_cvtepi32_epi8(r);
}

void qquant_f32_u8__avx512(size_t n, const float *x, const struct qquant_params *p, uint8_t *y)
{
	float qmax = (float)((1 << p->bits) - 1);
	__m512 inv = _mm512_set1_ps(p->inv_scale);
	__m512 lo = _mm512_set1_ps(-(float)p->zero - 1.0f);
	__m512 hi = _mm512_set1_ps(qmax - (float)p->zero + 1.0f);
	__m512i zero = _mm512_set1_epi32(p->zero), imax = _mm512_set1_epi32((1 << p->bits) - 1);
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm_storeu_si128((__m128i *)(y + i),
				 quant16(_mm512_loadu_ps(x + i), inv, lo, hi, zero, imax));
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		_mm_mask_storeu_epi8(y + i, k,
				     quant16(_mm512_maskz_loadu_ps(k, x + i), inv, lo, hi, zero, imax));
	}
}


/* --- Softmax, LayerNormalization: rows of up to 64 codes per register ---------- */

/* The largest byte of v. */
static ALWAYS_INLINE uint8_t max_epu8_64(__m512i v)
{
	v = _mm512_max_epu8(v, _mm512_shuffle_i64x2(v, v, 0x4E));
	v = _mm512_max_epu8(v, _mm512_shuffle_i64x2(v, v, 0xB1));
	__m128i m = _mm512_castsi512_si128(v);
	m = _mm_max_epu8(m, _mm_srli_si128(m, 8));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 4));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 2));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 1));
	return (uint8_t)_mm_cvtsi128_si32(m);
}

/* Mask of the first k of 16 lanes (k <= 16). */
static ALWAYS_INLINE __mmask16 lanes16(size_t k)
{
	return (__mmask16)(k >= 16 ? 0xFFFF : (1u << k) - 1);
}

/* Clamped and rounded as clamp_round, 16 codes stored under mask k. */
static ALWAYS_INLINE void row_store16(__m512 f, __m512 lo, __m512 hi, __mmask16 k, uint8_t *y)
{
	f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
	_mm_mask_storeu_epi8(y, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f)));
}

/* Four Softmax rows of 16 codes (attention over 16 tokens), one per 128-bit
 * lane of x: the maxima, the table entries and the sums of the four at
 * once, each row's sum in the order q8_softmax_row_prep defines (a row of 16
 * puts one entry in each lane, then adds (j, j + 8), (j, j + 4), (j, j + 2),
 * (j, j + 1)), the pairs gathered from the four rows into whole registers. */
static ALWAYS_INLINE void softmax4x16(const uint8_t *x, const struct qsoftmax_params *p, __m512 zero,
				      __m512 lo, __m512 hi, uint8_t *y)
{
	__m512i xb = _mm512_loadu_si512(x);
	__m512i m = _mm512_max_epu8(xb, _mm512_bsrli_epi128(xb, 8));
	m = _mm512_max_epu8(m, _mm512_bsrli_epi128(m, 4));
	m = _mm512_max_epu8(m, _mm512_bsrli_epi128(m, 2));
	m = _mm512_max_epu8(m, _mm512_bsrli_epi128(m, 1));
	/* each lane's max in all its bytes, then d = max - x in [0, 255] */
	__m512i d = _mm512_sub_epi8(_mm512_shuffle_epi8(m, _mm512_setzero_si512()), xb);
	__m512 e[4];
	e[0] = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(d)), p->exp_table, 4);
	e[1] = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(d, 1)),
				   p->exp_table, 4);
	e[2] = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(d, 2)),
				   p->exp_table, 4);
	e[3] = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(d, 3)),
				   p->exp_table, 4);
	/* (j, j + 8): rows 0 and 1 in one register, 2 and 3 in another */
	__m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(e[0], e[1], 0x44),
				   _mm512_shuffle_f32x4(e[0], e[1], 0xEE));
	__m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(e[2], e[3], 0x44),
				   _mm512_shuffle_f32x4(e[2], e[3], 0xEE));
	/* (j, j + 4): row t's four in 128-bit lane t */
	__m512 s4 = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88),
				  _mm512_shuffle_f32x4(s01, s23, 0xDD));
	/* (j, j + 2), (j, j + 1): row t's sum in element 4t */
	__m512 s2 = _mm512_add_ps(s4, _mm512_shuffle_ps(s4, s4, _MM_SHUFFLE(3, 2, 3, 2)));
	__m512 s1 = _mm512_add_ps(s2, _mm512_shuffle_ps(s2, s2, _MM_SHUFFLE(1, 1, 1, 1)));
	__m512 inv = _mm512_div_ps(_mm512_set1_ps(p->inv_out_scale), s1);
	for (int t = 0; t < 4; t++) {
		__m512 it = _mm512_permutexvar_ps(_mm512_set1_epi32(4 * t), inv);
		row_store16(_mm512_fmadd_ps(e[t], it, zero), lo, hi, 0xFFFF, y + 16 * t);
	}
}

void qsoftmax_u8__avx512(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
			 uint8_t *y)
{
	const __m512 zero = _mm512_set1_ps((float)p->c_zero);
	const __m512 lo = _mm512_set1_ps((float)p->c_min), hi = _mm512_set1_ps((float)p->c_max);
	size_t r = 0;
	if (n == 16)
		for (; r + 4 <= rows; r += 4)
			softmax4x16(x + r * 16, p, zero, lo, hi, y + r * 16);
	for (; r < rows; r++) {
		const uint8_t *xr = x + r * n;
		uint8_t *yr = y + r * n;
		/* the max code (masked-off bytes are 0, which never wins) */
		__m512i vm = _mm512_setzero_si512();
		for (size_t i = 0; i < n; i += 64) {
			__mmask64 k = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1;
			vm = _mm512_max_epu8(vm, _mm512_maskz_loadu_epi8(k, xr + i));
		}
		__m512i mx = _mm512_set1_epi32(max_epu8_64(vm));
		/* lane j sums x[j], x[j + 16], ... in index order (q8_softmax_row_prep);
		 * a row of up to 64 keeps its table entries for the second pass */
		__m512 acc = _mm512_setzero_ps(), kept[4];
		for (size_t i = 0; i < n; i += 16) {
			__mmask16 k = lanes16(n - i);
			__m512i d = _mm512_sub_epi32(
				mx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, xr + i)));
			__m512 e = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, d, p->exp_table, 4);
			if (n <= 64)
				kept[i / 16] = e;
			acc = _mm512_add_ps(acc, e);
		}
		/* then the lanes pairwise: (j, j + 8), (j, j + 4), (j, j + 2), (j, j + 1) */
		__m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(acc),
					  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
		__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
		__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
		__m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
		__m512 inv = _mm512_set1_ps(p->inv_out_scale / _mm_cvtss_f32(s1));
		for (size_t i = 0; i < n; i += 16) {
			__mmask16 k = lanes16(n - i);
			__m512 e;
			if (n <= 64) {
				e = kept[i / 16];
			} else {
				__m512i d = _mm512_sub_epi32(
					mx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, xr + i)));
				e = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, d, p->exp_table, 4);
			}
			row_store16(_mm512_fmadd_ps(e, inv, zero), lo, hi, k, yr + i);
		}
	}
}

/* A LayerNorm row's S1 and S2 by vpsadbw (u64 lanes) and vpmaddwd of the
 * codes widened to int16 (each pair <= 130050 in an int32 lane, the lanes
 * summed in int64): integers, exact in any order. */
static ALWAYS_INLINE void layernorm_sums(const uint8_t *xr, size_t n, int64_t *s1, int64_t *s2)
{
	__m512i s1v = _mm512_setzero_si512(), s2v = _mm512_setzero_si512();
	for (size_t i = 0; i < n; i += 32) {
		__mmask32 k = n - i >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (n - i)) - 1;
		__m256i b = _mm256_maskz_loadu_epi8(k, xr + i);
		__m512i w = _mm512_cvtepu8_epi16(b);
		s1v = _mm512_add_epi64(s1v, _mm512_sad_epu8(_mm512_zextsi256_si512(b),
							    _mm512_setzero_si512()));
		__m512i sq = _mm512_madd_epi16(w, w);
		s2v = _mm512_add_epi64(s2v, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(sq)));
		s2v = _mm512_add_epi64(s2v, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(sq, 1)));
	}
	*s1 = _mm512_reduce_add_epi64(s1v);
	*s2 = _mm512_reduce_add_epi64(s2v);
}

/* q8_layernorm_from_sums for 8 rows (n > 0) at once, operation for operation
 * in double lanes: one square root and three divisions for the 8. The
 * explicitly rounded forms keep the compiler from fusing a multiply and an
 * add that the scalar code rounds apart. */
static ALWAYS_INLINE void layernorm_scalars8(const int64_t *s1, const int64_t *s2, size_t n,
					     const struct qlayernorm_params *p, float *mean, float *a)
{
	enum { RN = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC };
	double num[8], sum[8];
	for (int r = 0; r < 8; r++) {
		num[r] = (double)((int64_t)n * s2[r] - s1[r] * s1[r]);
		sum[r] = (double)s1[r];
	}
	__m512d nn = _mm512_set1_pd((double)n), s = _mm512_set1_pd((double)p->in_scale);
	__m512d var_codes = _mm512_div_round_pd(_mm512_loadu_pd(num), _mm512_mul_round_pd(nn, nn, RN),
						RN);
	__m512d var = _mm512_mul_round_pd(_mm512_mul_round_pd(s, s, RN), var_codes, RN);
	__m512d root = _mm512_sqrt_round_pd(
		_mm512_add_round_pd(var, _mm512_set1_pd((double)p->epsilon), RN), RN);
	_mm256_storeu_ps(mean, _mm512_cvt_roundpd_ps(_mm512_div_round_pd(_mm512_loadu_pd(sum), nn, RN),
						     RN));
	_mm256_storeu_ps(a, _mm512_cvt_roundpd_ps(_mm512_div_round_pd(s, root, RN), RN));
}

/* One LayerNorm row from its mean and scale: as qlayernorm_u8__ref. */
static ALWAYS_INLINE void layernorm_apply(const uint8_t *xr, size_t n, float mean_s, float a_s,
					  const struct qlayernorm_params *p, __m512 lo, __m512 hi,
					  uint8_t *yr)
{
	__m512 mean = _mm512_set1_ps(mean_s), a = _mm512_set1_ps(a_s);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = lanes16(n - i);
		__m512 xv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, xr + i)));
		__m512 d = _mm512_mul_ps(_mm512_sub_ps(xv, mean), a);
		__m512 f = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, p->gamma_q + i),
					   _mm512_maskz_loadu_ps(k, p->beta_q + i));
		row_store16(f, lo, hi, k, yr + i);
	}
}

void qlayernorm_u8__avx512(size_t rows, size_t n, const uint8_t *x,
			   const struct qlayernorm_params *p, uint8_t *y)
{
	const __m512 lo = _mm512_set1_ps((float)p->c_min), hi = _mm512_set1_ps((float)p->c_max);
	size_t r = 0;
	/* eight rows' scalars in one go: the square root and divisions per
	 * row were the latency of a row of a few dozen codes */
	for (; n > 0 && r + 8 <= rows; r += 8) {
		int64_t s1[8], s2[8];
		float mean[8], a[8];
		for (int t = 0; t < 8; t++)
			layernorm_sums(x + (r + (size_t)t) * n, n, &s1[t], &s2[t]);
		layernorm_scalars8(s1, s2, n, p, mean, a);
		for (int t = 0; t < 8; t++)
			layernorm_apply(x + (r + (size_t)t) * n, n, mean[t], a[t], p, lo, hi,
					y + (r + (size_t)t) * n);
	}
	for (; r < rows; r++) {
		int64_t s1, s2;
		layernorm_sums(x + r * n, n, &s1, &s2);
		float mean, a = q8_layernorm_from_sums(s1, s2, n, p, &mean);
		layernorm_apply(x + r * n, n, mean, a, p, lo, hi, y + r * n);
	}
}

#else
typedef int q8_avx512vnni_elt_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
