/* q8_avx2.c - INT8 kernels for AVX2 (exact int16 multiplies, vpmaddwd).
 *
 * Compiled with -mavx2 -mfma on x86-64 only; q8_dispatch.c calls it only after
 * CPUID and XGETBV said the CPU and the OS support AVX2. vpmaddubsw is not used:
 * its int16 pair sums saturate (255*127*2 > 32767). Instead both operands are
 * widened to int16 and vpmaddwd adds pairs of exact products into int32
 * (|2 * 255 * 128| < 2^31), so every sum is exact in wrapping int32 arithmetic;
 * requantization (requant8: float or Q31, as the reference), Add (add8) and
 * Mul (mul8, float form) repeat the reference's operations on 8 lanes, so
 * results are bit-identical to q8_ref.c.
 *
 * Table lookup (qlut_u8__avx2): vpshufb looks up 16 entries per 128-bit lane
 * and gives 0 where the index byte has its top bit set. The 256 entries are 16
 * rows of 16; x = 16m + r. For the low half (x < 128, non-negative as int8)
 * the lookups k = 0..7 use x - 16k (signed saturating), non-negative exactly
 * for k <= m and then ending in r: with row k stored xor-ed with row k - 1
 * (row 0 as it is), the xor of the lookups telescopes to row m at r. The high
 * half does the same with x ^ 0x80 and rows 8..15. Each half's indices stay
 * negative (saturated, never wrapping) for the other half's bytes.
 *
 * GEMM packed weights (int16): panels of 8 output channels, each panel
 * [ceil(k/8)][8 columns][8 k] int16 with w[j][8g..8g+7] together; K is padded
 * to a multiple of 8 and N to a multiple of 8 with zeros. One 32-byte vector
 * holds 8 k of two columns, so that vpmaddwd against 8 k of a row of A,
 * widened and repeated in both 128-bit halves, gives 4 partial sums of each
 * column (the "c8" scheme); the 4 vectors of a panel are reduced with three
 * vphaddd and one vpermd when the tile is stored.
 *
 * Micro-kernel qgemm_u8s8_3x8c8: 3 rows x 8 columns = 12 ymm accumulators
 * (16 registers: 12 + 3 rows of A + 1 product; weights are memory operands).
 *
 * Depthwise packed weights: blocks of 8 channels, [ceil(c/8)][kh*kw][8] int32
 * with w in the low 16 bits and 0 in the high 16 bits, so that vpmaddwd of
 * (x - a_zero) widened to int32 (high half 0 or -1) against it is exactly
 * (x - a_zero) * w. 32 channels are handled at a time, then 8, then the rest
 * through a small buffer.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define GEMM_MR 3
#define GEMM_NR 8
#define GEMM_A_BLOCK_BYTES (128 * 1024)

/* --- requantization on 8 lanes ------------------------------------------------ */

struct rq8 {
	__m256i bias, mult, mult_odd, left, right, mask, half;
	__m256 scale;      /* deq_scale (float output) */
	__m256 fscale;     /* rq_scale (float requantization) */
	bool f32;          /* requantize in float with fscale, else Q31 */
	int n_valid;
	bool any_left;     /* some shift > 0: the saturating left shift is needed */
	bool any_min_mult; /* some mult == INT32_MIN (outside the contract) */
};

struct rq_out {
	__m256i lo, hi, zero;
	__m256 zero_f, min_f, max_f; /* c_zero, c_min and c_max in float */
	bool deq;
};

/* Constants for columns j .. j + min(8, n - j) - 1 (deq_scale NULL: requantize,
 * in float when rq_scale is given; otherwise mult and shift may be NULL). */
static void rq8_init(const int32_t *bias, const int32_t *mult, const int8_t *shift,
		     const float *rq_scale, const float *deq_scale, int j, int n, struct rq8 *q)
{
	int32_t b[8] = {0}, m[8] = {0}, s[8] = {0};
	float f[8] = {0}, fs[8] = {0};
	q->n_valid = n - j < 8 ? n - j : 8;
	q->any_left = q->any_min_mult = false;
	q->f32 = !deq_scale && rq_scale;
	for (int i = 0; i < q->n_valid; i++) {
		b[i] = bias[j + i];
		if (deq_scale) {
			f[i] = deq_scale[j + i];
		} else if (rq_scale) {
			fs[i] = rq_scale[j + i];
		} else {
			m[i] = mult[j + i];
			s[i] = shift[j + i];
			q->any_left |= s[i] > 0;
			q->any_min_mult |= m[i] == INT32_MIN;
		}
	}
	q->bias = _mm256_loadu_si256((const __m256i *)b);
	q->scale = _mm256_loadu_ps(f);
	q->fscale = _mm256_loadu_ps(fs);
	q->mult = _mm256_loadu_si256((const __m256i *)m);
	q->mult_odd = _mm256_srli_epi64(q->mult, 32);
	__m256i sv = _mm256_loadu_si256((const __m256i *)s);
	q->left = _mm256_max_epi32(sv, _mm256_setzero_si256());
	q->right = _mm256_max_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), sv),
				    _mm256_setzero_si256());
	q->mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), q->right),
				   _mm256_set1_epi32(1));
	q->half = _mm256_srli_epi32(q->mask, 1);
}

static void rq_out_init(int32_t c_zero, uint8_t c_min, uint8_t c_max, bool deq,
			struct rq_out *o)
{
	o->lo = _mm256_set1_epi32((int32_t)c_min - c_zero);
	o->hi = _mm256_set1_epi32((int32_t)c_max - c_zero);
	o->zero = _mm256_set1_epi32(c_zero);
	o->zero_f = _mm256_set1_ps((float)c_zero);
	o->min_f = _mm256_set1_ps((float)c_min);
	o->max_f = _mm256_set1_ps((float)c_max);
	o->deq = deq;
}

/* q8_requant_f32(acc) on 8 lanes: the clamp in float, then rounded to
 * nearest even (MXCSR default). */
static ALWAYS_INLINE __m256i requant8_f32(__m256i acc, const struct rq8 *q,
					  const struct rq_out *o)
{
	__m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), q->fscale, o->zero_f);
	return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, o->min_f), o->max_f));
}

/* clamp(q31_requantize(acc) + c_zero) on 8 lanes (same steps as requant16 in
 * q8_avx512vnni.c, with vector compares instead of masks; the steps for
 * shift > 0 and mult = INT32_MIN are skipped when no lane needs them). */
static ALWAYS_INLINE __m256i requant8(__m256i acc, const struct rq8 *q, const struct rq_out *o)
{
	if (q->f32)
		return requant8_f32(acc, q, o);
	__m256i x = acc;
	if (q->any_left) {
		x = _mm256_sllv_epi32(acc, q->left);
		__m256i same = _mm256_cmpeq_epi32(_mm256_srav_epi32(x, q->left), acc);
		__m256i sat = _mm256_xor_si256(_mm256_srai_epi32(acc, 31),
					       _mm256_set1_epi32(INT32_MAX));
		x = _mm256_blendv_epi8(sat, x, same);
	}
	const __m256i nudge = _mm256_set1_epi64x(1ll << 30);
	__m256i ev = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, q->mult), nudge), 31);
	__m256i od = _mm256_slli_epi64(
		_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), q->mult_odd), nudge),
		1);
	__m256i h = _mm256_blend_epi32(ev, od, 0xaa);
	/* INT32_MIN (only from INT32_MIN * INT32_MIN) ^ -1 = INT32_MAX */
	if (q->any_min_mult)
		h = _mm256_xor_si256(h, _mm256_cmpeq_epi32(h, _mm256_set1_epi32(INT32_MIN)));
	__m256i rem = _mm256_and_si256(h, q->mask);
	__m256i thr = _mm256_add_epi32(q->half, _mm256_srli_epi32(h, 31));
	__m256i r = _mm256_srav_epi32(h, q->right);
	r = _mm256_sub_epi32(r, _mm256_cmpgt_epi32(rem, thr));
	r = _mm256_min_epi32(_mm256_max_epi32(r, o->lo), o->hi);
	return _mm256_add_epi32(r, o->zero);
}

/* 8 int32 in [0, 255] -> 8 bytes at c, or the first n of them. */
static ALWAYS_INLINE void store_u8x8(uint8_t *c, __m256i v, int n)
{
	__m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	__m128i b = _mm_packus_epi16(w16, w16);
	if (n >= 8) {
		_mm_storel_epi64((__m128i *)c, b);
	} else {
		uint8_t tmp[16];
		_mm_storeu_si128((__m128i *)tmp, b);
		memcpy(c, tmp, (size_t)n);
	}
}

static ALWAYS_INLINE void store_f32x8(float *c, __m256 v, int n)
{
	if (n >= 8) {
		_mm256_storeu_ps(c, v);
	} else {
		float tmp[8];
		_mm256_storeu_ps(tmp, v);
		memcpy(c, tmp, (size_t)n * sizeof(float));
	}
}

/* acc + bias for 8 columns at element offset off of c or c_f32. */
static ALWAYS_INLINE void store8(__m256i acc, const struct rq8 *q, const struct rq_out *o,
				 uint8_t *c, float *c_f32, size_t off)
{
	acc = _mm256_add_epi32(acc, q->bias);
	if (o->deq)
		store_f32x8(c_f32 + off, _mm256_mul_ps(_mm256_cvtepi32_ps(acc), q->scale),
			    q->n_valid);
	else
		store_u8x8(c + off, requant8(acc, q, o), q->n_valid);
}

/* acc + vpmaddwd(a, *w), the accumulator tied in place: GCC 12 spills 8 of the
 * 12 accumulators of the 3-row tile when this is written with intrinsics
 * (21 vs 14 MACs/cycle on Zen 4). */
static ALWAYS_INLINE __m256i madd_acc(__m256i acc, __m256i a, const int16_t *w)
{
	__m256i t;
	__asm__("vpmaddwd %3, %2, %1\n\tvpaddd %1, %0, %0"
		: "+x"(acc), "=&x"(t)
		: "x"(a), "m"(*(const __m256i *)w));
	return acc;
}

/* --- GEMM ---------------------------------------------------------------------- */

static size_t gemm_packed_bytes(int n, int k)
{
	size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
	return panels * (((size_t)k + 7) / 8) * GEMM_NR * 8 * sizeof(int16_t);
}

static void gemm_pack(int n, int k, const int8_t *w, void *packed)
{
	int16_t *out = packed;
	size_t k8 = ((size_t)k + 7) / 8;
	memset(out, 0, gemm_packed_bytes(n, k));
	for (int j = 0; j < n; j++) {
		int16_t *col = out + ((size_t)(j / GEMM_NR) * k8 * GEMM_NR + j % GEMM_NR) * 8;
		for (int kk = 0; kk < k; kk++)
			col[(size_t)(kk / 8) * GEMM_NR * 8 + kk % 8] = w[(size_t)j * k + kk];
	}
}

/* 8 bytes of a row of A (or the last 1..7, zero-padded), widened to int16 and
 * repeated in both halves. */
static ALWAYS_INLINE __m256i load_a8(const uint8_t *p, int n_bytes)
{
	uint64_t v = 0;
	if (n_bytes == 8) {
		memcpy(&v, p, 8);
	} else {
		/* a variable-length memcpy would be a libc call per row */
		for (int i = 0; i < n_bytes; i++)
			v |= (uint64_t)p[i] << (8 * i);
	}
	return _mm256_cvtepu8_epi16(_mm_set1_epi64x((int64_t)v));
}

/* MR x 8 tile over the full K, then requantize and store (MR constant after
 * inlining, so acc[][] lives in registers). */
static ALWAYS_INLINE void gemm_tile(int mr, int k, const uint8_t *a, size_t lda,
				   const int16_t *wp, const struct rq8 *q, const struct rq_out *o,
				   uint8_t *c, float *c_f32, size_t off, size_t ldc)
{
	__m256i acc[GEMM_MR][4];
	const uint8_t *ar[GEMM_MR];
	for (int r = 0; r < mr; r++) {
		ar[r] = a + (size_t)r * lda;
		for (int p = 0; p < 4; p++)
			acc[r][p] = _mm256_setzero_si256();
	}
	int k8 = k / 8;
	for (int g = 0; g < k8; g++) {
		__m256i av[GEMM_MR];
		for (int r = 0; r < mr; r++)
			av[r] = load_a8(ar[r] + 8 * g, 8);
		for (int p = 0; p < 4; p++)
			for (int r = 0; r < mr; r++)
				acc[r][p] = madd_acc(acc[r][p], av[r], wp + (size_t)g * 64 + 16 * p);
	}
	if (k & 7) {
		__m256i av[GEMM_MR];
		for (int r = 0; r < mr; r++)
			av[r] = load_a8(ar[r] + 8 * k8, k & 7);
		for (int p = 0; p < 4; p++) {
			__m256i w = _mm256_loadu_si256((const __m256i *)(wp + (size_t)k8 * 64 + 16 * p));
			for (int r = 0; r < mr; r++)
				acc[r][p] = _mm256_add_epi32(acc[r][p], _mm256_madd_epi16(av[r], w));
		}
	}
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	for (int r = 0; r < mr; r++) {
		/* acc[p] holds 4 partials of column 2p (low half) and 2p+1 (high half) */
		__m256i t0 = _mm256_hadd_epi32(acc[r][0], acc[r][1]);
		__m256i t1 = _mm256_hadd_epi32(acc[r][2], acc[r][3]);
		__m256i u = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(t0, t1), order);
		store8(u, q, o, c, c_f32, off + r * ldc);
	}
}

static void gemm_tile_any(int mr, int k, const uint8_t *a, size_t lda, const int16_t *wp,
			  const struct rq8 *q, const struct rq_out *o, uint8_t *c,
			  float *c_f32, size_t off, size_t ldc)
{
	switch (mr) {
	case 3: gemm_tile(3, k, a, lda, wp, q, o, c, c_f32, off, ldc); break;
	case 2: gemm_tile(2, k, a, lda, wp, q, o, c, c_f32, off, ldc); break;
	default: gemm_tile(1, k, a, lda, wp, q, o, c, c_f32, off, ldc); break;
	}
}

_Static_assert(GEMM_MR == 3, "gemm_tile_any lists the row counts");

static void gemm_run(const struct qgemm_params *p, const uint8_t *a, int lda,
		     const void *packed, uint8_t *c, int ldc)
{
	if (p->m <= 0 || p->n <= 0)
		return;
	size_t panel_elems = (((size_t)p->k + 7) / 8) * GEMM_NR * 8;
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, p->deq_scale != NULL, &o);
	int mc = GEMM_A_BLOCK_BYTES / (p->k > 0 ? p->k : 1);
	mc = mc < GEMM_MR ? GEMM_MR : mc - mc % GEMM_MR;
	for (int i0 = 0; i0 < p->m; i0 += mc) {
		int i1 = i0 + mc < p->m ? i0 + mc : p->m;
		for (int j0 = 0; j0 < p->n; j0 += GEMM_NR) {
			struct rq8 q;
			rq8_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j0, p->n, &q);
			const int16_t *wp = (const int16_t *)packed +
					    (size_t)(j0 / GEMM_NR) * panel_elems;
			for (int i = i0; i < i1; i += GEMM_MR) {
				int mr = i1 - i < GEMM_MR ? i1 - i : GEMM_MR;
				gemm_tile_any(mr, p->k, a + (size_t)i * lda, (size_t)lda, wp, &q,
					      &o, c, p->c_f32, (size_t)i * ldc + (size_t)j0,
					      (size_t)ldc);
			}
		}
	}
}

const struct qgemm_ukernel qgemm_u8s8_3x8c8__avx2 = {
	.name = "qgemm_u8s8_3x8c8__avx2",
	.packed_bytes = gemm_packed_bytes,
	.pack = gemm_pack,
	.run = gemm_run,
};

/* --- depthwise convolution ------------------------------------------------------ */

#define DW_VECS 4 /* 8-channel vectors per pass: 32 channels */

static size_t dw_packed_bytes(int c, int kh, int kw)
{
	return (((size_t)c + 7) / 8) * (size_t)kh * (size_t)kw * 8 * sizeof(int32_t);
}

static void dw_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	int32_t *out = packed;
	int taps = kh * kw;
	memset(out, 0, dw_packed_bytes(c, kh, kw));
	for (int ch = 0; ch < c; ch++)
		for (int t = 0; t < taps; t++)
			out[((size_t)(ch / 8) * taps + t) * 8 + ch % 8] =
				(int32_t)(uint16_t)(int16_t)w[(size_t)ch * taps + t];
}

/* NV vectors of 8 channels from channel ch for one output pixel; n_last is the
 * number of valid channels of the last vector (8 but for the channel tail). */
static ALWAYS_INLINE void dw_pixel(int nv, int n_last, const struct qdwconv_params *p,
				   const uint8_t *xi, int oh, int ow, int ch,
				   const int32_t *wblk, const struct rq8 *q,
				   const struct rq_out *o, uint8_t *yo)
{
	int taps = p->kh * p->kw;
	const __m256i az = _mm256_set1_epi32(p->a_zero);
	__m256i acc[DW_VECS];
	for (int v = 0; v < nv; v++)
		acc[v] = q[v].bias;
	for (int ki = 0; ki < p->kh; ki++) {
		int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
		if (ih < 0 || ih >= p->h_in)
			continue;
		for (int kj = 0; kj < p->kw; kj++) {
			int iw = ow * p->stride_w - p->pad_l + kj * p->dil_w;
			if (iw < 0 || iw >= p->w_in)
				continue;
			const uint8_t *xp = xi + ((size_t)ih * p->w_in + iw) * p->c + ch;
			int t = ki * p->kw + kj;
			for (int v = 0; v < nv; v++) {
				int64_t xb = 0;
				memcpy(&xb, xp + 8 * v, v == nv - 1 ? (size_t)n_last : 8);
				/* (x - a_zero) in [-255, 255]: |x - a_zero| * |w| <= 32640 */
				__m256i xv = _mm256_sub_epi32(
					_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(xb)), az);
				__m256i wv = _mm256_loadu_si256(
					(const __m256i *)(wblk + ((size_t)v * taps + t) * 8));
				acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(xv, wv));
			}
		}
	}
	for (int v = 0; v < nv; v++)
		store_u8x8(yo + 8 * v, requant8(acc[v], &q[v], o), q[v].n_valid);
}

static void dw_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		   uint8_t *y)
{
	int taps = p->kh * p->kw;
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * p->h_in * p->w_in * p->c;
		for (int oh = 0; oh < p->h_out; oh++) {
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * p->c;
			int ch = 0;
			for (; ch + 8 * DW_VECS <= p->c; ch += 8 * DW_VECS) {
				struct rq8 q[DW_VECS];
				for (int v = 0; v < DW_VECS; v++)
					rq8_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, ch + 8 * v, p->c,
						 &q[v]);
				const int32_t *wblk = (const int32_t *)packed +
						      (size_t)(ch / 8) * taps * 8;
				for (int ow = 0; ow < p->w_out; ow++)
					dw_pixel(DW_VECS, 8, p, xi, oh, ow, ch, wblk, q, &o,
						 yrow + (size_t)ow * p->c + ch);
			}
			for (; ch < p->c; ch += 8) {
				struct rq8 q;
				rq8_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, ch, p->c, &q);
				const int32_t *wblk = (const int32_t *)packed +
						      (size_t)(ch / 8) * taps * 8;
				for (int ow = 0; ow < p->w_out; ow++) {
					uint8_t *yo = yrow + (size_t)ow * p->c + ch;
					if (q.n_valid == 8)
						dw_pixel(1, 8, p, xi, oh, ow, ch, wblk, &q, &o, yo);
					else
						dw_pixel(1, q.n_valid, p, xi, oh, ow, ch, wblk, &q,
							 &o, yo);
				}
			}
		}
	}
}

const struct qdwconv_ukernel qdwconv_u8s8_32c__avx2 = {
	.name = "qdwconv_u8s8_32c__avx2",
	.packed_bytes = dw_packed_bytes,
	.pack = dw_pack,
	.run = dw_run,
};

/* --- Add ------------------------------------------------------------------------ */

/* q8_add_f32 on 8 lanes: the same float operations in the same order. */
static ALWAYS_INLINE __m256i add8(__m128i a8, __m128i b8, const struct qadd_params *p,
				  const struct rq_out *o)
{
	__m256 fa = _mm256_cvtepi32_ps(
		_mm256_sub_epi32(_mm256_cvtepu8_epi32(a8), _mm256_set1_epi32(p->a_zero)));
	__m256 fb = _mm256_cvtepi32_ps(
		_mm256_sub_epi32(_mm256_cvtepu8_epi32(b8), _mm256_set1_epi32(p->b_zero)));
	__m256 f = _mm256_add_ps(_mm256_mul_ps(fa, _mm256_set1_ps(p->a_scale)),
				 _mm256_mul_ps(fb, _mm256_set1_ps(p->b_scale)));
	f = _mm256_min_ps(_mm256_max_ps(f, _mm256_sub_ps(o->min_f, o->zero_f)),
			  _mm256_sub_ps(o->max_f, o->zero_f));
	return _mm256_add_epi32(_mm256_cvtps_epi32(f), o->zero);
}

void qadd_u8__avx2(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		   uint8_t *y)
{
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i a8 = _mm_loadl_epi64((const __m128i *)(a + i));
		__m128i b8 = _mm_loadl_epi64((const __m128i *)(b + i));
		store_u8x8(y + i, add8(a8, b8, p, &o), 8);
	}
	if (i < n) {
		uint8_t ta[8] = {0}, tb[8] = {0};
		memcpy(ta, a + i, n - i);
		memcpy(tb, b + i, n - i);
		store_u8x8(y + i, add8(_mm_loadl_epi64((const __m128i *)ta),
				       _mm_loadl_epi64((const __m128i *)tb), p, &o),
			   (int)(n - i));
	}
}

/* --- Mul ------------------------------------------------------------------------ */

/* q8_mul (float form) on 8 lanes: the exact int32 product, converted to float
 * exactly, one fused multiply-add with c_zero, the clamp, round to nearest
 * even: q8_requant_f32's steps. */
static ALWAYS_INLINE __m256i mul8(__m128i a8, __m128i b8, const struct qmul_params *p,
				  const struct rq_out *o)
{
	__m256i a = _mm256_sub_epi32(_mm256_cvtepu8_epi32(a8), _mm256_set1_epi32(p->a_zero));
	__m256i b = _mm256_sub_epi32(_mm256_cvtepu8_epi32(b8), _mm256_set1_epi32(p->b_zero));
	__m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(a, b)),
				   _mm256_set1_ps(p->scale), o->zero_f);
	return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, o->min_f), o->max_f));
}

void qmul_u8__avx2(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		   uint8_t *y)
{
	if (p->q31) {
		qmul_u8__ref(n, a, b, p, y);
		return;
	}
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		store_u8x8(y + i, mul8(_mm_loadl_epi64((const __m128i *)(a + i)),
				       _mm_loadl_epi64((const __m128i *)(b + i)), p, &o), 8);
	if (i < n) {
		uint8_t ta[8] = {0}, tb[8] = {0};
		memcpy(ta, a + i, n - i);
		memcpy(tb, b + i, n - i);
		store_u8x8(y + i, mul8(_mm_loadl_epi64((const __m128i *)ta),
				       _mm_loadl_epi64((const __m128i *)tb), p, &o),
			   (int)(n - i));
	}
}

/* --- table lookup ---------------------------------------------------------------- */

static ALWAYS_INLINE __m256i lut32(__m256i x, const __m256i *rows)
{
	const __m256i step = _mm256_set1_epi8(16);
	__m256i lo = x, hi = _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80));
	__m256i y = _mm256_xor_si256(_mm256_shuffle_epi8(rows[0], lo),
				     _mm256_shuffle_epi8(rows[8], hi));
	for (int k = 1; k < 8; k++) {
		lo = _mm256_subs_epi8(lo, step);
		hi = _mm256_subs_epi8(hi, step);
		y = _mm256_xor_si256(y, _mm256_shuffle_epi8(rows[k], lo));
		y = _mm256_xor_si256(y, _mm256_shuffle_epi8(rows[8 + k], hi));
	}
	return y;
}

void qlut_u8__avx2(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y)
{
	__m256i rows[16];
	for (int k = 0; k < 16; k++) {
		__m128i r = _mm_loadu_si128((const __m128i *)(table + 16 * k));
		if (k % 8)
			r = _mm_xor_si128(r, _mm_loadu_si128((const __m128i *)(table + 16 * (k - 1))));
		rows[k] = _mm256_broadcastsi128_si256(r);
	}
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		_mm256_storeu_si256((__m256i *)(y + i),
				    lut32(_mm256_loadu_si256((const __m256i *)(x + i)), rows));
	if (i < n) {
		uint8_t t[32] = {0};
		memcpy(t, x + i, n - i);
		_mm256_storeu_si256((__m256i *)t, lut32(_mm256_loadu_si256((const __m256i *)t), rows));
		memcpy(y + i, t, n - i);
	}
}

/* --- MatMul of two uint8 activations: qmatmul_u8u8_4x8__avx2 --------------------
 *
 * Without VNNI, both operands are widened to int16 with their zero points
 * subtracted (in [-255, 255]) and multiplied by vpmaddwd, which adds two exact
 * products into an int32 lane: acc is summed directly, no correction terms
 * (each pair below 2 * 65025, the whole sum below 2^31 for k <= Q8_K_MAX).
 * work holds B - b_zero packed as [n8/8][kp][8][2] int16 (n8 = n rounded up
 * to 8, kp = ceil(k/2); two consecutive k of one column in one dword, zero
 * past k). A row's two k are broadcast as one dword against an 8-column
 * panel; 4 rows share each panel load. B given transposed ([n][ldb]) is
 * packed from its rows byte by byte. */

static size_t mm256_kp(int k)
{
	return ((size_t)k + 1) / 2;
}

static size_t qmatmul_work_bytes_256(int k, int n)
{
	return ((size_t)n + 7) / 8 * mm256_kp(k) * 32;
}

static void qmatmul_pack_b_256(const struct qmatmul_params *p, const uint8_t *b, int ldb,
			       int16_t *packed)
{
	int k = p->k, n = p->n;
	size_t kp = mm256_kp(k);
	const __m128i zb = _mm_set1_epi16((int16_t)p->b_zero);
	for (int j0 = 0; j0 < n; j0 += 8) {
		size_t nb = n - j0 >= 8 ? 8 : (size_t)(n - j0);
		int16_t *dst = packed + (size_t)(j0 / 8) * kp * 16;
		for (size_t q = 0; q < kp; q++) {
			__m128i r[2];
			for (int t = 0; t < 2; t++) {
				size_t kk = 2 * q + (size_t)t;
				if (kk >= (size_t)k) {
					r[t] = _mm_setzero_si128();
					continue;
				}
				uint64_t bytes = 0;
				if (p->b_trans) /* column j0 + j is row j0 + j */
					for (size_t j = 0; j < nb; j++)
						bytes |= (uint64_t)b[((size_t)j0 + j) * (size_t)ldb + kk]
							 << (8 * j);
				else
					memcpy(&bytes, b + kk * (size_t)ldb + (size_t)j0, nb);
				r[t] = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)bytes)), zb);
			}
			_mm_storeu_si128((__m128i *)(dst + q * 16), _mm_unpacklo_epi16(r[0], r[1]));
			_mm_storeu_si128((__m128i *)(dst + q * 16 + 8), _mm_unpackhi_epi16(r[0], r[1]));
		}
	}
}

/* (a[2q] - a_zero, a[2q+1] - a_zero) as one dword of two int16, 0 past k. */
static ALWAYS_INLINE int32_t a_pair(const uint8_t *a, int k, size_t q, int32_t a_zero)
{
	size_t k0 = 2 * q;
	uint32_t lo = (uint16_t)(int16_t)((int32_t)a[k0] - a_zero);
	uint32_t hi = k0 + 1 < (size_t)k ? (uint16_t)(int16_t)((int32_t)a[k0 + 1] - a_zero) : 0;
	return (int32_t)(lo | hi << 16);
}

static ALWAYS_INLINE void qmatmul_store8(const struct qmatmul_params *p, __m256i acc, size_t nb,
					 uint8_t *c)
{
	uint8_t out[8];
	if (p->q31) {
		int32_t t[8];
		_mm256_storeu_si256((__m256i *)t, acc);
		for (size_t j = 0; j < nb; j++)
			c[j] = q8_matmul_requant(t[j], p);
		return;
	}
	__m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(p->rq_scale),
				   _mm256_set1_ps((float)p->c_zero));
	f = _mm256_max_ps(f, _mm256_set1_ps((float)p->c_min));
	f = _mm256_min_ps(f, _mm256_set1_ps((float)p->c_max));
	__m256i q = _mm256_cvtps_epi32(f);
	__m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
	_mm_storel_epi64((__m128i *)out, _mm_packus_epi16(w, w));
	memcpy(c, out, nb);
}

static void qmatmul_run_256(const struct qmatmul_params *p, const uint8_t *a, int lda,
			    const uint8_t *b, int ldb, uint8_t *c, int ldc, void *work)
{
	int m = p->m, n = p->n, k = p->k;
	if (m <= 0 || n <= 0)
		return;
	size_t kp = mm256_kp(k);
	int16_t *packed = work;
	qmatmul_pack_b_256(p, b, ldb, packed);
	for (int i0 = 0; i0 < m; i0 += 4) {
		int mr = m - i0 < 4 ? m - i0 : 4;
		const uint8_t *ar[4];
		for (int r = 0; r < 4; r++)
			ar[r] = a + (size_t)(i0 + (r < mr ? r : 0)) * (size_t)lda;
		for (int j0 = 0; j0 < n; j0 += 8) {
			size_t nb = n - j0 >= 8 ? 8 : (size_t)(n - j0);
			const int16_t *pb = packed + (size_t)(j0 / 8) * kp * 16;
			__m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
					  _mm256_setzero_si256(), _mm256_setzero_si256()};
			for (size_t q = 0; q < kp; q++) {
				__m256i bv = _mm256_loadu_si256((const __m256i *)(pb + q * 16));
				for (int r = 0; r < 4; r++)
					acc[r] = _mm256_add_epi32(
						acc[r], _mm256_madd_epi16(_mm256_set1_epi32(a_pair(
										  ar[r], k, q, p->a_zero)),
									  bv));
			}
			for (int r = 0; r < mr; r++)
				qmatmul_store8(p, acc[r], nb, c + (size_t)(i0 + r) * (size_t)ldc + j0);
		}
	}
}

const struct qmatmul_ukernel qmatmul_u8u8_4x8__avx2 = {
	.name = "qmatmul_u8u8_4x8__avx2",
	.work_bytes = qmatmul_work_bytes_256,
	.run = qmatmul_run_256,
};

/* --- Softmax and LayerNormalization rows: the per-element part in 8 lanes -------- */

static ALWAYS_INLINE void row_store8(__m256 f, const uint8_t c_min, uint8_t c_max, uint8_t *y)
{
	f = _mm256_max_ps(f, _mm256_set1_ps((float)c_min));
	f = _mm256_min_ps(f, _mm256_set1_ps((float)c_max));
	__m256i q = _mm256_cvtps_epi32(f);
	__m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
	_mm_storel_epi64((__m128i *)y, _mm_packus_epi16(w, w));
}

static ALWAYS_INLINE __m256 load8_u8_ps(const uint8_t *x)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)x)));
}

void qsoftmax_u8__avx2(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
		       uint8_t *y)
{
	const __m256 zero = _mm256_set1_ps((float)p->c_zero);
	for (size_t r = 0; r < rows; r++) {
		const uint8_t *xr = x + r * n;
		uint8_t *yr = y + r * n, mx;
		__m256 inv = _mm256_set1_ps(q8_softmax_row_prep(xr, n, p, &mx));
		__m256i vmx = _mm256_set1_epi32(mx);
		for (size_t i = 0; i < n; i += 8) {
			uint8_t in[8] = {0}, out[8];
			size_t len = n - i < 8 ? n - i : 8;
			memcpy(in, xr + i, len);
			__m256i d = _mm256_sub_epi32(
				vmx, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)in)));
			d = _mm256_max_epi32(d, _mm256_setzero_si256()); /* the padding lanes */
			__m256 e = _mm256_i32gather_ps(p->exp_table, d, 4);
			row_store8(_mm256_fmadd_ps(e, inv, zero), p->c_min, p->c_max, out);
			memcpy(yr + i, out, len);
		}
	}
}

void qlayernorm_u8__avx2(size_t rows, size_t n, const uint8_t *x,
			 const struct qlayernorm_params *p, uint8_t *y)
{
	for (size_t r = 0; r < rows; r++) {
		const uint8_t *xr = x + r * n;
		uint8_t *yr = y + r * n;
		float mean_s, a_s = q8_layernorm_row_prep(xr, n, p, &mean_s);
		__m256 mean = _mm256_set1_ps(mean_s), a = _mm256_set1_ps(a_s);
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			__m256 d = _mm256_mul_ps(_mm256_sub_ps(load8_u8_ps(xr + i), mean), a);
			__m256 f = _mm256_fmadd_ps(d, _mm256_loadu_ps(p->gamma_q + i),
						   _mm256_loadu_ps(p->beta_q + i));
			uint8_t out[8];
			row_store8(f, p->c_min, p->c_max, out);
			memcpy(yr + i, out, 8);
		}
		if (i < n) {
			uint8_t in[8] = {0}, out[8];
			float g[8] = {0}, b[8] = {0};
			size_t len = n - i;
			memcpy(in, xr + i, len);
			memcpy(g, p->gamma_q + i, len * sizeof(float));
			memcpy(b, p->beta_q + i, len * sizeof(float));
			__m256 d = _mm256_mul_ps(_mm256_sub_ps(load8_u8_ps(in), mean), a);
			row_store8(_mm256_fmadd_ps(d, _mm256_loadu_ps(g), _mm256_loadu_ps(b)), p->c_min,
				   p->c_max, out);
			memcpy(yr + i, out, len);
		}
	}
}

#else
typedef int q8_avx2_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
