/* q8_avx512vnni_common.h - what the AVX-512 VNNI GEMM files share (private to
 * src/kernels/): the vpdpbusd wrapper, requantization on 16 lanes (both
 * forms, bit-exact with kernels_q8.h's scalar functions), and the GEMM tile's
 * output (requantize 4 vectors, pack to bytes, store; the float screen of the
 * Q31 form with its proof). The GEMM (q8_avx512vnni.c), the convolution
 * (_conv.c), the depthwise (_dw.c) and element-wise (_elt.c) kernels, the
 * 4-bit GEMM (_w4.c) and the 4-bit convolution (_w4conv.c) include it; a file
 * including it must be compiled with the AVX-512 F/BW/VL/VNNI flags
 * (CMakeLists.txt: PRESSO_Q8_VNNI_SOURCES). The GEMM's packed layouts are
 * described in those files.
 */
#ifndef PRESSO_Q8_AVX512VNNI_COMMON_H
#define PRESSO_Q8_AVX512VNNI_COMMON_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels_q8.h"

/* The out-of-line helpers (constants set up once per panel or call): static
 * without inline, so that GCC inlines them no more than it did before they
 * moved here; unused where an includer does not call one. */
#define Q8_SETUP static __attribute__((unused))
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define GEMM_MR 8
#define GEMM_NB 2                   /* 16-column blocks per panel */
#define GEMM_NR (16 * GEMM_NB)
/* Bytes of A kept in L2 per row block (Zen 4 and Ice Lake+ have >= 1 MiB L2). */
#define GEMM_A_BLOCK_BYTES (128 * 1024)

/* acc + 4-byte dot products of a (u8) and w (s8) per lane. Written as asm with
 * the accumulator tied in place: GCC 12 compiles _mm512_dpbusd_epi32 in a
 * register-blocked loop with two register copies per instruction. */
static ALWAYS_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i w)
{
	__asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(w));
	return acc;
}

/* acc + 2-element dot products of int16 pairs per lane (same reason). */
static ALWAYS_INLINE __m512i dpwssd(__m512i acc, __m512i a, __m512i w)
{
	__asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(w));
	return acc;
}

/* --- requantization on 16 lanes ---------------------------------------------- */

/* Per-column constants of q31_requantize for 16 columns. */
struct rq16 {
	__m512i bias, mult, mult_odd, left, right, mask, half;
	__m512 scale;      /* deq_scale (float output) */
	__m512 fscale;     /* rq_scale (float requantization) */
	bool f32;          /* requantize in float with fscale, else Q31 */
	__mmask16 valid;
	bool any_left;     /* some shift > 0: the saturating left shift is needed */
	bool any_min_mult; /* some mult == INT32_MIN (outside the contract) */
};

/* Output constants shared by all columns. */
struct rq_out {
	__m512i lo, hi, zero; /* clamp r to [c_min - c_zero, c_max - c_zero], then + c_zero */
	__m512 zero_f;        /* c_zero in float */
	__m512 min_f, max_f;  /* c_min and c_max in float */
	__m512i cmin8, cmax8; /* c_min and c_max in every byte */
	bool deq;
};

/* The Q31 constants of q from mult and shift (int32 lanes). */
Q8_SETUP void rq16_q31(struct rq16 *q, __m512i mult, __m512i s)
{
	q->mult = mult;
	q->mult_odd = _mm512_srli_epi64(q->mult, 32);
	q->any_min_mult = _mm512_cmpeq_epi32_mask(q->mult, _mm512_set1_epi32(INT32_MIN)) != 0;
	q->any_left = _mm512_cmpgt_epi32_mask(s, _mm512_setzero_si512()) != 0;
	q->left = _mm512_max_epi32(s, _mm512_setzero_si512());
	q->right = _mm512_max_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), s),
				    _mm512_setzero_si512());
	q->mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), q->right),
				   _mm512_set1_epi32(1));
	q->half = _mm512_srli_epi32(q->mask, 1);
}

/* Constants for columns j .. j + min(16, n - j) - 1 (deq_scale NULL: requantize,
 * in float when rq_scale is given; otherwise mult and shift may be NULL). */
Q8_SETUP void rq16_init(const int32_t *bias, const int32_t *mult, const int8_t *shift,
			const float *rq_scale, const float *deq_scale, int j, int n,
			struct rq16 *q)
{
	__mmask16 v = (__mmask16)(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
	q->valid = v;
	q->bias = _mm512_maskz_loadu_epi32(v, bias + j);
	q->f32 = false;
	q->any_left = q->any_min_mult = false;
	if (deq_scale) {
		q->scale = _mm512_maskz_loadu_ps(v, deq_scale + j);
		return;
	}
	if (rq_scale) {
		q->f32 = true;
		q->fscale = _mm512_maskz_loadu_ps(v, rq_scale + j);
		return;
	}
	rq16_q31(q, _mm512_maskz_loadu_epi32(v, mult + j),
		 _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(v, shift + j)));
}

Q8_SETUP void rq_out_init(int32_t c_zero, uint8_t c_min, uint8_t c_max, bool deq,
			  struct rq_out *o)
{
	o->lo = _mm512_set1_epi32((int32_t)c_min - c_zero);
	o->hi = _mm512_set1_epi32((int32_t)c_max - c_zero);
	o->zero = _mm512_set1_epi32(c_zero);
	o->zero_f = _mm512_set1_ps((float)c_zero);
	o->min_f = _mm512_set1_ps((float)c_min);
	o->max_f = _mm512_set1_ps((float)c_max);
	o->cmin8 = _mm512_set1_epi8((char)c_min);
	o->cmax8 = _mm512_set1_epi8((char)c_max);
	o->deq = deq;
}

/* round(acc * fscale + c_zero) as int32, at most 32767: q8_requant_f32 up to
 * its clamp to [c_min, c_max], which callers apply after saturating packs
 * (with bounds inside int16's range, clamping twice is clamping once; a value
 * below -2^31 converts to INT32_MIN, which saturates to 0 as it should).
 * Rounds to nearest even (MXCSR default). */
static ALWAYS_INLINE __m512i requant16_f32_r(__m512i acc, const struct rq16 *q,
					     const struct rq_out *o)
{
	__m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), q->fscale, o->zero_f);
	return _mm512_cvtps_epi32(_mm512_min_ps(f, _mm512_set1_ps(32767.0f)));
}

/* q31_requantize(acc) on 16 lanes, step by step as in kernels_q8.h. The two
 * steps that only matter for shift > 0 or mult = INT32_MIN run when left or
 * min_mult says some lane may need them (they are the identity elsewhere). */
static ALWAYS_INLINE __m512i requant16_q31_r(__m512i acc, const struct rq16 *q, bool left,
					     bool min_mult)
{
	__m512i x = acc;
	if (left) {
		/* acc << left, saturated: overflow iff shifting back changes the value */
		x = _mm512_sllv_epi32(acc, q->left);
		__mmask16 ovf = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(x, q->left), acc);
		__m512i sat = _mm512_xor_si512(_mm512_srai_epi32(acc, 31),
					       _mm512_set1_epi32(INT32_MAX));
		x = _mm512_mask_mov_epi32(x, ovf, sat);
	}
	/* q31_mul_high = floor((x * mult + 2^30) / 2^31): bits 31..62 of the 64-bit
	 * sum, low dword of even lanes (>> 31), high dword of odd lanes (<< 1) */
	const __m512i nudge = _mm512_set1_epi64(1ll << 30);
	__m512i ev = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, q->mult), nudge), 31);
	__m512i od = _mm512_slli_epi64(
		_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), q->mult_odd), nudge),
		1);
	__m512i h = _mm512_mask_blend_epi32(0xaaaa, ev, od);
	if (min_mult) {
		/* only INT32_MIN * INT32_MIN gives 2^31, which wrapped to INT32_MIN */
		__mmask16 big = _mm512_cmpeq_epi32_mask(h, _mm512_set1_epi32(INT32_MIN));
		h = _mm512_mask_mov_epi32(h, big, _mm512_set1_epi32(INT32_MAX));
	}
	/* h / 2^right, ties away from zero */
	__m512i rem = _mm512_and_si512(h, q->mask);
	__m512i thr = _mm512_add_epi32(q->half, _mm512_srli_epi32(h, 31));
	__m512i r = _mm512_srav_epi32(h, q->right);
	return _mm512_mask_sub_epi32(r, _mm512_cmpgt_epi32_mask(rem, thr), r,
				     _mm512_set1_epi32(-1));
}

/* q8_requant_f32(acc) on 16 lanes: the clamp in float, then rounded. */
static ALWAYS_INLINE __m512i requant16_f32(__m512i acc, const struct rq16 *q,
					   const struct rq_out *o)
{
	__m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), q->fscale, o->zero_f);
	return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(f, o->min_f), o->max_f));
}

/* clamp(q31_requantize(acc) + c_zero) on 16 lanes (the clamp first, in
 * [c_min - c_zero, c_max - c_zero], so the addition cannot overflow). */
static ALWAYS_INLINE __m512i requant16_q31(__m512i acc, const struct rq16 *q,
					   const struct rq_out *o)
{
	__m512i r = requant16_q31_r(acc, q, q->any_left, q->any_min_mult);
	r = _mm512_min_epi32(_mm512_max_epi32(r, o->lo), o->hi);
	return _mm512_add_epi32(r, o->zero);
}

/* requant16 for blocks without a left shift or an INT32_MIN multiplier: no
 * run-time tests. */
static ALWAYS_INLINE __m512i requant16_lean(__m512i acc, const struct rq16 *q,
					    const struct rq_out *o)
{
	__m512i r = requant16_q31_r(acc, q, false, false);
	r = _mm512_min_epi32(_mm512_max_epi32(r, o->lo), o->hi);
	return _mm512_add_epi32(r, o->zero);
}

/* The requantization a block of kernel code is compiled for (a constant
 * after inlining): float, Q31 without the rare steps (no left shift or
 * INT32_MIN multiplier in any of its lanes), or Q31 with them. */
/* RQ_F32_FIT: the float form where |acc * scale + c_zero| < 2^30 is known for
 * every input (dw3_form), so the conversion needs no guard below it. */
enum rq_form { RQ_FULL, RQ_LEAN, RQ_F32, RQ_F32_FIT };

/* Whether the float requantization of n outputs may drop its guard
 * (RQ_F32_FIT, GEMM_RQ_F32_FIT): for every output j, acc = bias[j] + sum_k
 * x_k w[j][k] with x in [0, 255] is bounded by |bias[j]| + 255 sum_abs[j]
 * (sum_abs[j] = sum_k |w[j][k]|); that bound below 2^30 and, times
 * |scale[j]|, plus |c_zero|, below 2^29, both computed in float with a
 * margin of 2 for its roundings, so every requantized value lies within
 * 2^30: its conversion cannot overflow and the saturating packs take it. 16
 * outputs at a time (the kernels ask once per call). */
Q8_SETUP bool rq_f32_fits(const int32_t *bias, const int32_t *sum_abs, const float *scale,
			  int32_t c_zero, int n)
{
	const __m512 zf = _mm512_set1_ps(fabsf((float)c_zero));
	for (int j = 0; j < n; j += 16) {
		__mmask16 v = (__mmask16)(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
		__m512 acc_max = _mm512_fmadd_ps(
			_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(v, sum_abs + j)),
			_mm512_set1_ps(255.0f),
			_mm512_abs_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(v, bias + j))));
		__m512 out_max = _mm512_fmadd_ps(acc_max, _mm512_abs_ps(_mm512_maskz_loadu_ps(v, scale + j)),
						 zf);
		__mmask16 ok = _mm512_cmp_ps_mask(acc_max, _mm512_set1_ps(1073741824.0f), _CMP_LT_OQ) &
			       _mm512_cmp_ps_mask(out_max, _mm512_set1_ps(536870912.0f), _CMP_LT_OQ);
		if ((ok & v) != v)
			return false;
	}
	return true;
}

/* The form that serves all n blocks of q. */
Q8_SETUP enum rq_form rq_form_of(const struct rq16 *q, int n)
{
	if (q[0].f32)
		return RQ_F32;
	for (int i = 0; i < n; i++)
		if (q[i].any_left || q[i].any_min_mult)
			return RQ_FULL;
	return RQ_LEAN;
}

/* Unclamped r in form f: requant16_q31_r, or requant16_f32_r, which includes
 * c_zero (the caller adds it to the Q31 forms only). */
static ALWAYS_INLINE __m512i requant16_form_r(enum rq_form f, __m512i acc, const struct rq16 *q,
					      const struct rq_out *o)
{
	if (f == RQ_F32)
		return requant16_f32_r(acc, q, o);
	if (f == RQ_F32_FIT)
		return _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), q->fscale, o->zero_f));
	return requant16_q31_r(acc, q, f == RQ_FULL && q->any_left,
			       f == RQ_FULL && q->any_min_mult);
}

/* requant16_f32 or requant16_q31 as q says (F32 a constant after inlining:
 * callers whose loops should not test q->f32 per vector pass it as such). */
static ALWAYS_INLINE __m512i requant16(__m512i acc, const struct rq16 *q,
				       const struct rq_out *o)
{
	return q->f32 ? requant16_f32(acc, q, o) : requant16_q31(acc, q, o);
}

/* Writes acc (bias included) for 16 columns (masked) at element offset off
 * of c or, in float-output mode, of c_f32 (the other one may be NULL). F32:
 * q->f32, as a constant. */
static ALWAYS_INLINE void store16(bool f32, __m512i acc, const struct rq16 *q,
				  const struct rq_out *o, uint8_t *c, float *c_f32, size_t off)
{
	if (o->deq)
		_mm512_mask_storeu_ps(c_f32 + off, q->valid,
				      _mm512_mul_ps(_mm512_cvtepi32_ps(acc), q->scale));
	else
		_mm512_mask_cvtepi32_storeu_epi8(c + off, q->valid,
						 f32 ? requant16_f32(acc, q, o)
						     : requant16_q31(acc, q, o));
}

static ALWAYS_INLINE int32_t load_u32(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* The last 1..3 bytes of a row, zero-padded (never reads past them). */
static ALWAYS_INLINE int32_t load_tail(const uint8_t *p, int n_bytes)
{
	/* byte by byte: a variable-length memcpy is a libc call per row */
	uint32_t v = p[0];
	if (n_bytes > 1)
		v |= (uint32_t)p[1] << 8;
	if (n_bytes > 2)
		v |= (uint32_t)p[2] << 16;
	return (int32_t)v;
}

/* --- GEMM tile output: requantize, pack to bytes, store ----------------------------
 *
 * A tile's uint8 outputs leave 4 vectors at a time (2 rows x 32 columns, or
 * 4 rows x 16): each vector requantized to int32 with c_zero added but not
 * clamped, two vpackssdw and one vpackuswb (saturating: a clamp to [0, 255])
 * make 64 bytes, one vpermd puts each row's bytes together, and a byte
 * max/min clamps to [c_min, c_max] (inside [0, 255], so clamping the
 * saturated value is clamping the exact one). Per 16 outputs that is under
 * 2 operations besides the requantization, where vpmovdb and the int32
 * clamp took 3 to 4.
 *
 * Q31 requantization, screened in float (RQ_SCREEN): the exact steps
 * (requant16_q31_r: 64-bit products of even and odd lanes, two roundings)
 * take 14 vector operations per 16 outputs, which at K = 256 cost as much as
 * a sixth of the tile's vpdpbusd time. Where every column of the panel has
 * right = -shift >= GEMM_SCREEN_RIGHT_MIN (no left shift) and mult !=
 * INT32_MIN, the tile computes instead, per lane,
 *   t = fma(float(acc), s, z),  s = float(mult) * 2^-(31 + right),
 *                               z = c_zero + 1/2 + e,
 *   e = 2^-(min(right, 13) + 1) + 2^-14  (exact in binary32 with z),
 * and takes floor(t) when frac(t) >= 2e, else recomputes its 4 vectors
 * with the exact steps. Why floor(t) is exact there: let y = acc * mult /
 * 2^(31 + right) (real) and w = y + c_zero + 1/2. q31_requantize's first
 * rounding h = floor(acc * mult / 2^31 + 1/2) is within 2^-(right+1) of y
 * after the division by 2^right, so where y is farther than 2^-(right+1)
 * from every half-integer, q31 + c_zero = floor(w). Only outputs with w in
 * [-1, 257] are not clamped away (then |y| <= 256.5 since 0 <= c_zero <=
 * 255); there float(acc), s and the fma each err by a relative 2^-24 at
 * most, so |t - (w + e)| <= 256.5 * 2^-23 * (1 + 2^-24) + 2^-16 (half an
 * ulp below 512) < 0.76 * 2^-14 =: E, and frac(t) >= 2e puts w in
 * [floor(t) + e - E, floor(t) + 1 - e + E), inside (floor(t) + 2^-(right+1),
 * floor(t) + 1 - 2^-(right+1)) because e - E > 2^-(right+1). Outside
 * [-1, 257] both are clamped to the same bound (t keeps the side of w: its
 * relative error is below 2^-22). |t| < 2^30 + 258 for right >= 1, so the
 * conversion cannot overflow. A lane takes the exact steps with
 * probability about 2e: 2^-11.4 at right = 12 (2.4 % of the groups of 4
 * vectors), 2^-5.9 at right = 6 (64 %); at 256 x 256 x 256 the screen ran
 * 1.12x the exact steps at right = 12, 1.02x at 6 and 0.99x at 5, hence
 * GEMM_SCREEN_RIGHT_MIN. */
#define GEMM_SCREEN_RIGHT_MIN 6

/* Float constants of the screen for 16 columns (see above). */
struct rq_screen {
	__m512 scale, zc, thr;
};

/* The output clamp [c_min, c_max]. */
struct clamp_u8 {
	uint8_t c_min, c_max;
};

/* The tile's requantization form: float, Q31 screened, or Q31 exact (with
 * the rare steps tested per block, as requant16_q31 does); GEMM_RQ_F32_FIT
 * is the float form where the caller knows |acc * scale + c_zero| < 2^30 for
 * every input (as RQ_F32_FIT), so the conversion needs no guard. */
enum gemm_rq { GEMM_RQ_F32, GEMM_RQ_SCREEN, GEMM_RQ_Q31, GEMM_RQ_F32_FIT };

/* Screen constants for columns j .. j + 15 (past n: zero, never flagged);
 * false if some column there cannot be screened (right < GEMM_SCREEN_RIGHT_MIN
 * or mult = INT32_MIN). */
Q8_SETUP bool rq_screen_init(const int32_t *mult, const int8_t *shift, int32_t c_zero,
			     int j, int n, struct rq_screen *s)
{
	__mmask16 v = (__mmask16)(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
	__m512i m = _mm512_maskz_loadu_epi32(v, mult + j);
	__m512i right = _mm512_sub_epi32(_mm512_setzero_si512(),
					 _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(v, shift + j)));
	if (_mm512_mask_cmplt_epi32_mask(v, right, _mm512_set1_epi32(GEMM_SCREEN_RIGHT_MIN)) ||
	    _mm512_mask_cmpeq_epi32_mask(v, m, _mm512_set1_epi32(INT32_MIN)))
		return false;
	/* scalef multiplies by 2^floor(exponent): exact for these powers of two */
	__m512 e_exp = _mm512_cvtepi32_ps(_mm512_sub_epi32(
		_mm512_set1_epi32(-1), _mm512_min_epi32(right, _mm512_set1_epi32(13))));
	__m512 e = _mm512_add_ps(_mm512_scalef_ps(_mm512_set1_ps(1.0f), e_exp),
				 _mm512_set1_ps(0x1p-14f));
	s->scale = _mm512_scalef_ps(_mm512_cvtepi32_ps(m),
				    _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(-31),
									right)));
	s->zc = _mm512_maskz_add_ps(v, _mm512_set1_ps((float)c_zero + 0.5f), e);
	s->thr = _mm512_maskz_add_ps(v, e, e);
	return true;
}

/* acc requantized with c_zero added, not clamped, in form F (the screened
 * form ors into *near the lanes that need the exact steps: frac(t) < 2e;
 * frac by an fnmadd, which runs beside the other float operations). */
static ALWAYS_INLINE __m512i rq_tile16(enum gemm_rq F, __m512i acc, const struct rq16 *q,
				       const struct rq_screen *s, const struct rq_out *o,
				       __mmask16 *near)
{
	if (F == GEMM_RQ_F32)
		return requant16_f32_r(acc, q, o);
	if (F == GEMM_RQ_F32_FIT)
		return requant16_form_r(RQ_F32_FIT, acc, q, o);
	if (F == GEMM_RQ_Q31)
		return requant16_q31(acc, q, o);
	__m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), s->scale, s->zc);
	__m512 f = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
	*near |= _mm512_cmp_ps_mask(_mm512_fnmadd_ps(f, _mm512_set1_ps(1.0f), t), s->thr,
				    _CMP_LT_OQ);
	return _mm512_cvtps_epi32(f);
}

/* Bytes of 4 requantized vectors v[0..3] (after the packs, 128-bit lane i
 * holds dwords i of v[0], v[1], v[2], v[3]) in the order v[0], v[1], v[2],
 * v[3], clamped to [c_min, c_max]; each bound only where lo or hi says it
 * cuts (the packs saturate to [0, 255] already: callers that know c_min = 0
 * or c_max = 255 once per tile leave that clamp out). */
static ALWAYS_INLINE __m512i pack_u8x64_range(const __m512i v[4], __m512i cmin, __m512i cmax,
					      bool lo, bool hi)
{
	const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11,
					       15);
	__m512i b = _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]),
					_mm512_packs_epi32(v[2], v[3]));
	b = _mm512_permutexvar_epi32(perm, b);
	if (lo)
		b = _mm512_max_epu8(b, cmin);
	if (hi)
		b = _mm512_min_epu8(b, cmax);
	return b;
}

static ALWAYS_INLINE __m512i pack_u8x64(const __m512i v[4], __m512i cmin, __m512i cmax)
{
	return pack_u8x64_range(v, cmin, cmax, true, true);
}

/* Requantizes one row's 4 blocks of 16 columns acc[0..3] and stores them
 * at c as one 64-byte store (masked to the valid columns of the last block
 * unless it is whole): pack_u8x64's bytes, where per-vector vpmovdb stores
 * took 3 to 4 operations per 16 outputs. F: GEMM_RQ_F32, GEMM_RQ_F32_FIT
 * or GEMM_RQ_Q31 (as q says), a constant. */
static ALWAYS_INLINE void store_row64(enum gemm_rq F, const __m512i *acc, const struct rq16 *q,
				      const struct rq_out *o, uint8_t *c)
{
	__m512i v[4];
#pragma GCC unroll 4
	for (int b = 0; b < 4; b++)
		v[b] = F == GEMM_RQ_F32 ? requant16_f32_r(acc[b], &q[b], o)
		       : F == GEMM_RQ_F32_FIT ? requant16_form_r(RQ_F32_FIT, acc[b], &q[b], o)
					      : requant16_q31(acc[b], &q[b], o);
	__m512i bytes = pack_u8x64(v, o->cmin8, o->cmax8);
	if (q[3].valid == 0xffff)
		_mm512_storeu_si512(c, bytes);
	else
		_mm512_mask_storeu_epi8(c, (__mmask64)q[3].valid << 48 | 0xffffffffffffull, bytes);
}

/* Requantizes and stores an MR x (16 * NB) tile acc to c (row stride ldc):
 * NB = 2: 2 rows per 64 bytes, NB = 1: 4 rows. Where the rows are whole and
 * adjacent (ldc = 16 * NB, as in a conv with 16 or 32 output channels), each
 * 64 bytes go out in one store, not one per row after an extraction. */
static ALWAYS_INLINE void gemm_tile_store(enum gemm_rq F, int mr, int nb,
					  __m512i (*acc)[GEMM_NB], const struct rq16 *q,
					  const struct rq_screen *s, const struct rq_out *o,
					  const struct clamp_u8 *cl, uint8_t *c, size_t ldc)
{
	const int rows = nb == 2 ? 2 : 4;
	const __m512i cmin = _mm512_set1_epi8((char)cl->c_min);
	const __m512i cmax = _mm512_set1_epi8((char)cl->c_max);
	__mmask64 row_mask = nb == 2 ? (__mmask64)q[0].valid | (__mmask64)q[1].valid << 16
				     : (__mmask64)q[0].valid;
	const bool contig = ldc == (size_t)16 * nb && row_mask == (1ull << (16 * nb)) - 1;
	const bool lo = cl->c_min != 0, hi = cl->c_max != 255;
#pragma GCC unroll 16
	for (int r0 = 0; r0 < mr; r0 += rows) {
		__m512i v[4];
		__mmask16 near = 0;
#pragma GCC unroll 4
		for (int t = 0; t < 4; t++) {
			int r = r0 + t / nb, b = t % nb;
			v[t] = r < mr ? rq_tile16(F, acc[r][b], &q[b], &s[b], o, &near) : v[0];
		}
		if (F == GEMM_RQ_SCREEN && __builtin_expect(near != 0, 0)) {
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++) {
				int r = r0 + t / nb, b = t % nb;
				v[t] = r < mr ? requant16_lean(acc[r][b], &q[b], o) : v[0];
			}
		}
		__m512i bytes = pack_u8x64_range(v, cmin, cmax, lo, hi);
		if (contig) {
			int n_rows = mr - r0 < rows ? mr - r0 : rows;
			_mm512_mask_storeu_epi8(c + (size_t)r0 * ldc,
						n_rows == rows ? ~0ull : (1ull << (n_rows * 16 * nb)) - 1,
						bytes);
		} else if (nb == 2) {
			_mm256_mask_storeu_epi8(c + (size_t)r0 * ldc, (__mmask32)row_mask,
						_mm512_castsi512_si256(bytes));
			if (r0 + 1 < mr)
				_mm256_mask_storeu_epi8(c + (size_t)(r0 + 1) * ldc,
							(__mmask32)row_mask,
							_mm512_extracti64x4_epi64(bytes, 1));
		} else {
			_mm_mask_storeu_epi8(c + (size_t)r0 * ldc, (__mmask16)row_mask,
					     _mm512_castsi512_si128(bytes));
			if (r0 + 1 < mr)
				_mm_mask_storeu_epi8(c + (size_t)(r0 + 1) * ldc, (__mmask16)row_mask,
						     _mm512_extracti32x4_epi32(bytes, 1));
			if (r0 + 2 < mr)
				_mm_mask_storeu_epi8(c + (size_t)(r0 + 2) * ldc, (__mmask16)row_mask,
						     _mm512_extracti32x4_epi32(bytes, 2));
			if (r0 + 3 < mr)
				_mm_mask_storeu_epi8(c + (size_t)(r0 + 3) * ldc, (__mmask16)row_mask,
						     _mm512_extracti32x4_epi32(bytes, 3));
		}
	}
}

/* A GEMM tile's output: float (deq mode) at element offset off of c_f32, or
 * requantized by gemm_tile_store at c + off. */
static ALWAYS_INLINE void gemm_tile_out(enum gemm_rq F, int mr, int nb, __m512i (*acc)[GEMM_NB],
					const struct rq16 *q, const struct rq_screen *s,
					const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
					float *c_f32, size_t off, size_t ldc)
{
	if (o->deq) {
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
			for (int b = 0; b < nb; b++)
				store16(false, acc[r][b], &q[b], o, c, c_f32, off + r * ldc + 16 * b);
		return;
	}
	gemm_tile_store(F, mr, nb, acc, q, s, o, cl, c + off, ldc);
}

/* A nibble panel of k4 groups (the 4-bit GEMM's layout, q8_avx512vnni_w4.c) as
 * int8 in qgemm_u8s8_8x32's panel layout
 * ([k4][32][4]: 128 bytes per group): each nibble sign-extended through a
 * 16-entry table (vpshufb). */
Q8_SETUP void w4_expand_panel(int k4, const uint8_t *wp, int8_t *out)
{
	const __m512i lut = _mm512_broadcast_i32x4(
		_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1));
	const __m512i low = _mm512_set1_epi8(0x0F);
	for (int g = 0; g < k4; g++) {
		__m512i v = _mm512_loadu_si512(wp + (size_t)g * 64);
		__m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low));
		__m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
		_mm512_storeu_si512(out + (size_t)g * 128, lo);
		_mm512_storeu_si512(out + (size_t)g * 128 + 64, hi);
	}
}

/* Bytes [lo, hi) of a 64-byte window set, lo and hi clipped to 0..64. */
static ALWAYS_INLINE __mmask64 window_mask(int lo, int hi)
{
	lo = lo < 0 ? 0 : lo > 64 ? 64 : lo;
	hi = hi < lo ? lo : hi > 64 ? 64 : hi;
	uint64_t below_hi = hi == 64 ? ~0ull : (1ull << hi) - 1;
	uint64_t below_lo = lo == 64 ? ~0ull : (1ull << lo) - 1;
	return below_hi & ~below_lo;
}

/* Bytes of the GEMM panels of n output channels over k (q8_avx512vnni.c). */
static inline size_t gemm_packed_bytes(int n, int k)
{
	size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
	return panels * (((size_t)k + 3) / 4) * GEMM_NR * 4;
}

#endif
