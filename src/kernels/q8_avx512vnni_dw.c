/* q8_avx512vnni_dw.c - INT8 depthwise convolution for AVX-512 with VNNI.
 *
 * Compiled and dispatched as q8_avx512vnni.c (its flags, its CPUID check);
 * results are bit-identical to q8_ref.c, requantization as in
 * q8_avx512vnni_common.h.
 *
 * Depthwise, channels a multiple of 16 (dw4_run): 4 taps per vpdpbusd on the
 * input bytes as they are, the zero point folded into the bias; see the
 * comment above dw4_applies for the byte interleave and its packed layout.
 * A 3 x 3 kernel with dil_w = 1 (MobileNet's) groups the taps by kernel column
 * instead (dw3_run_pixels, dw3_run_rows), so that each input column is
 * interleaved once per output row, not once per output pixel that reads it.
 * Every other depthwise with dil 1 (any kernel up to 16 x 16, any c) runs by
 * kernel column over only the taps inside the input (dwk_run; the comment
 * above dwk_packs). The rest (a dilation, or pads that give more than
 * DWK_MAX_CLASSES edge rows or columns) runs dw4 where c is a multiple of 16,
 * else dw_any_run: blocks of 16 channels, [ceil(c/16)][kh*kw][16]
 * int32 whose low 16 bits hold w and high 16 bits 0, so that vpdpwssd of
 * (x - a_zero) widened to int32 (high half 0 or -1) against it adds exactly
 * (x - a_zero) * w. Channels are handled 64 at a time (4 zmm accumulators),
 * then 32, then 16 at a time with masks.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

/* --- depthwise convolution ------------------------------------------------------ */

#define DW_VECS 4 /* 16-channel vectors per pass: 64 channels */

static size_t dw_any_packed_bytes(int c, int kh, int kw)
{
	return (((size_t)c + 15) / 16) * (size_t)kh * (size_t)kw * 16 * sizeof(int32_t);
}

static void dw_any_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	int32_t *out = packed;
	int taps = kh * kw;
	memset(out, 0, dw_any_packed_bytes(c, kh, kw));
	for (int ch = 0; ch < c; ch++)
		for (int t = 0; t < taps; t++)
			out[((size_t)(ch / 16) * taps + t) * 16 + ch % 16] =
				(int32_t)(uint16_t)(int16_t)w[(size_t)ch * taps + t];
}

/* NV vectors of 16 channels starting at channel ch for one output pixel.
 * All are full except, when NV == 1, possibly the one masked by q->valid. */
static ALWAYS_INLINE void dw_pixel(int nv, const struct qdwconv_params *p,
				   const uint8_t *xi, int oh, int ow, int ch,
				   const int32_t *wblk, const struct rq16 *q,
				   const struct rq_out *o, uint8_t *yo)
{
	int taps = p->kh * p->kw;
	const __m512i az = _mm512_set1_epi32(p->a_zero);
	__m512i acc[DW_VECS];
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
				__m128i xb = nv == 1 ? _mm_maskz_loadu_epi8(q[0].valid, xp)
						     : _mm_loadu_si128((const __m128i *)(xp + 16 * v));
				/* (x - a_zero) in [-255, 255]: |x - a_zero| * |w| <= 32640 */
				__m512i xv = _mm512_sub_epi32(_mm512_cvtepu8_epi32(xb), az);
				__m512i wv = _mm512_loadu_si512(wblk + ((size_t)v * taps + t) * 16);
				acc[v] = dpwssd(acc[v], xv, wv);
			}
		}
	}
	for (int v = 0; v < nv; v++)
		_mm512_mask_cvtepi32_storeu_epi8(yo + 16 * v, q[v].valid, requant16(acc[v], &q[v], o));
}

static void dw_any_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
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
			for (; ch + 16 * DW_VECS <= p->c; ch += 16 * DW_VECS) {
				struct rq16 q[DW_VECS];
				for (int v = 0; v < DW_VECS; v++)
					rq16_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, ch + 16 * v,
						  p->c, &q[v]);
				const int32_t *wblk = (const int32_t *)packed +
						      (size_t)(ch / 16) * taps * 16;
				for (int ow = 0; ow < p->w_out; ow++)
					dw_pixel(DW_VECS, p, xi, oh, ow, ch, wblk, q, &o,
						 yrow + (size_t)ow * p->c + ch);
			}
			if (ch + 32 <= p->c) {
				struct rq16 q[2];
				for (int v = 0; v < 2; v++)
					rq16_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, ch + 16 * v,
						  p->c, &q[v]);
				const int32_t *wblk = (const int32_t *)packed +
						      (size_t)(ch / 16) * taps * 16;
				for (int ow = 0; ow < p->w_out; ow++)
					dw_pixel(2, p, xi, oh, ow, ch, wblk, q, &o,
						 yrow + (size_t)ow * p->c + ch);
				ch += 32;
			}
			for (; ch < p->c; ch += 16) {
				struct rq16 q;
				rq16_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, ch, p->c, &q);
				const int32_t *wblk = (const int32_t *)packed +
						      (size_t)(ch / 16) * taps * 16;
				for (int ow = 0; ow < p->w_out; ow++)
					dw_pixel(1, p, xi, oh, ow, ch, wblk, &q, &o,
						 yrow + (size_t)ow * p->c + ch);
			}
		}
	}
}

/* --- depthwise convolution, channels a multiple of 16 ------------------------------ */

/* The zero point leaves the inner loop: with x' = x inside the input and a_zero
 * outside, acc = bias - a_zero * sum_t w[t] + sum_t x'[t] * w[t] (mod 2^32, like
 * the reference's wrapping add), and x' is uint8, so vpdpbusd adds 4 taps at
 * once. For 4 taps t0..t3 held in 4 vectors of 64 channel bytes, two rounds of
 * unpacks (bytes, then words) give 4 vectors A, B, C, D whose 128-bit lane L
 * holds, as dwords, the 4 taps of channels 16L+0..3 (A), +4..7 (B), +8..11 (C),
 * +12..15 (D) of the lane's 16 channels. The packs that narrow the results
 * (int32 -> int16 -> uint8, saturating) work within 128-bit lanes in the same
 * order, so packs(A, B), packs(C, D), packus of those two put every channel
 * back in place. The weights are packed in that order.
 *
 * A 64-byte vector is 4 slots of 16 channels: 4 channel groups of one output
 * pixel (c >= 48), or 2 pixels x 32 channels, or 4 pixels x 16 channels.
 *
 * Packed: [G = ceil(kh*kw/4)][part P = A..D][c/16][4 channels][4 taps] int8
 * (taps past kh*kw are 0), then sum_t w[ch][t] as int32 [c]. */

#define DW4_MAX_TAPS 64

static bool dw4_applies(int c, int kh, int kw)
{
	return c > 0 && c % 16 == 0 && kh * kw <= DW4_MAX_TAPS;
}

/* The 3 x 3 kernel also has its weights by kernel column (dw3, below). */
static bool dw3_packed(int kh, int kw)
{
	return kh == 3 && kw == 3;
}

static size_t dw4_packed_bytes(int c, int kh, int kw)
{
	size_t n_g = ((size_t)kh * kw + 3) / 4;
	return n_g * 4 * (size_t)c + (size_t)c * sizeof(int32_t) +
	       (dw3_packed(kh, kw) ? 3 * 4 * (size_t)c + (size_t)c * sizeof(int32_t) : 0);
}

static void dw4_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	int8_t *out = packed;
	int taps = kh * kw, n_g = (taps + 3) / 4, n_cg = c / 16;
	memset(out, 0, dw4_packed_bytes(c, kh, kw));
	int32_t sum[16];
	for (int ch = 0; ch < c; ch++) {
		int cg = ch / 16, part = ch % 16 / 4, i = ch % 4;
		int32_t s = 0;
		for (int t = 0; t < taps; t++) {
			int g = t / 4;
			out[(((size_t)(g * 4 + part) * n_cg + cg) * 4 + i) * 4 + t % 4] =
				w[(size_t)ch * taps + t];
			s += w[(size_t)ch * taps + t];
		}
		sum[ch % 16] = s;
		if (ch % 16 == 15)
			memcpy(out + (size_t)n_g * 4 * c + (size_t)(ch - 15) * sizeof(int32_t), sum,
			       sizeof sum);
	}
	if (!dw3_packed(kh, kw))
		return;
	/* [kj][part][c/16][4 channels][ki = 0, 1, 2, then a zero], then sum_t |w[ch][t]|
	 * as int32 [c] */
	int8_t *col = out + (size_t)n_g * 4 * c + (size_t)c * sizeof(int32_t);
	for (int ch = 0; ch < c; ch++) {
		int cg = ch / 16, part = ch % 16 / 4, i = ch % 4;
		int32_t s_abs = 0;
		for (int kj = 0; kj < 3; kj++)
			for (int ki = 0; ki < 3; ki++) {
				int8_t wt = w[(size_t)ch * 9 + ki * 3 + kj];
				col[(((size_t)(kj * 4 + part) * n_cg + cg) * 4 + i) * 4 + ki] = wt;
				s_abs += wt < 0 ? -wt : wt;
			}
		memcpy(col + (size_t)12 * c + (size_t)ch * sizeof(int32_t), &s_abs, sizeof s_abs);
	}
}

/* Per-call state of the multiple-of-16 depthwise kernel. */
struct dw4 {
	const struct qdwconv_params *p;
	const uint8_t *x;
	const int8_t *w;          /* [G][4][n_cg][16] */
	int n_cg, n_g, taps;
	__m512i az, z16, cmin, cmax;
	struct rq_out o;
};

/* Requantization constants of the 4 parts for slots whose channel groups are
 * cg[0..3] (cg < 0: an unused slot, given channel 0's constants). */
static enum rq_form dw4_constants(const struct dw4 *d, const int *cg, struct rq16 q[4])
{
	const struct qdwconv_params *p = d->p;
	const int32_t *sum_w = (const int32_t *)(d->w + (size_t)d->n_g * 4 * p->c);
	for (int part = 0; part < 4; part++) {
		int32_t b[16], m[16];
		int8_t sh[16];
		float fs[16];
		for (int l = 0; l < 4; l++)
			for (int i = 0; i < 4; i++) {
				int ch = cg[l] < 0 ? 0 : 16 * cg[l] + 4 * part + i;
				/* bias - a_zero * sum w, wrapping like the reference's add */
				b[4 * l + i] = (int32_t)((uint32_t)p->bias[ch] -
							 (uint32_t)p->a_zero * (uint32_t)sum_w[ch]);
				m[4 * l + i] = p->rq_scale ? 0 : p->mult[ch];
				sh[4 * l + i] = p->rq_scale ? 0 : p->shift[ch];
				fs[4 * l + i] = p->rq_scale ? p->rq_scale[ch] : 0;
			}
		rq16_init(b, m, sh, p->rq_scale ? fs : NULL, NULL, 0, 16, &q[part]);
	}
	return rq_form_of(q, 4);
}

/* acc[0..3] += the 4 taps of group g; xt are the taps' input vectors. */
static ALWAYS_INLINE void dw4_group(__m512i acc[4], const __m512i xt[4], __m512i w0,
				    __m512i w1, __m512i w2, __m512i w3)
{
	__m512i lo01 = _mm512_unpacklo_epi8(xt[0], xt[1]), hi01 = _mm512_unpackhi_epi8(xt[0], xt[1]);
	__m512i lo23 = _mm512_unpacklo_epi8(xt[2], xt[3]), hi23 = _mm512_unpackhi_epi8(xt[2], xt[3]);
	acc[0] = dpbusd(acc[0], _mm512_unpacklo_epi16(lo01, lo23), w0);
	acc[1] = dpbusd(acc[1], _mm512_unpackhi_epi16(lo01, lo23), w1);
	acc[2] = dpbusd(acc[2], _mm512_unpacklo_epi16(hi01, hi23), w2);
	acc[3] = dpbusd(acc[3], _mm512_unpackhi_epi16(hi01, hi23), w3);
}

/* The 64 output bytes of acc[0..3] (clamped), in channel order per slot. */
static ALWAYS_INLINE __m512i dw4_out(const struct dw4 *d, const __m512i acc[4],
				     const struct rq16 q[4], enum rq_form form)
{
	/* r is saturated to int16 before adding the zero point (saturating): a
	 * value beyond int16 is beyond the uint8 range either way */
#define DW4_R(i) requant16_form_r(form, acc[i], &q[i], &d->o)
	__m512i ab = _mm512_packs_epi32(DW4_R(0), DW4_R(1));
	__m512i cd = _mm512_packs_epi32(DW4_R(2), DW4_R(3));
#undef DW4_R
	if (form != RQ_F32 && form != RQ_F32_FIT) { /* the float forms have the zero point in already */
		ab = _mm512_adds_epi16(ab, d->z16);
		cd = _mm512_adds_epi16(cd, d->z16);
	}
	__m512i v = _mm512_packus_epi16(ab, cd);
	return _mm512_min_epu8(_mm512_max_epu8(v, d->cmin), d->cmax);
}

/* The kernel rows of output row oh of image img: a base address per ki and a
 * mask that is all ones when the input row exists, 0 when it is padding. */
static ALWAYS_INLINE void dw4_rows(const struct dw4 *d, int img, int oh, int kh,
				   uintptr_t *rowp, __mmask64 *rowk)
{
	const struct qdwconv_params *p = d->p;
	size_t row_bytes = (size_t)p->w_in * p->c;
	const uint8_t *xi = d->x + (size_t)img * p->h_in * row_bytes;
	for (int ki = 0; ki < kh; ki++) {
		int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
		bool in = ih >= 0 && ih < p->h_in;
		rowp[ki] = (uintptr_t)(xi + (in ? (size_t)ih * row_bytes : 0));
		rowk[ki] = in ? ~0ull : 0;
	}
}

/* acc[0..3] += all taps; tap (ki, kj) reads mask rowk[ki] & colk[kj] at
 * rowp[ki] + colo[kj] (a_zero where the mask is 0). KH and KW are the
 * kernel's size when constant (3 x 3), else 0 (read from p). */
static ALWAYS_INLINE void dw4_taps(const struct dw4 *d, int KH, int KW, const uintptr_t *rowp,
				   const __mmask64 *rowk, const intptr_t *colo,
				   const __mmask64 *colk, const __m512i *wv, __m512i acc[4])
{
	const int kh = KH ? KH : d->p->kh, kw = KW ? KW : d->p->kw;
	__m512i xt[4];
	int k = 0, g = 0;
	/* unrolled for the constant 3 x 3, so that xt and wv stay in registers */
#pragma GCC unroll 8
	for (int ki = 0; ki < kh; ki++)
#pragma GCC unroll 8
		for (int kj = 0; kj < kw; kj++) {
			/* masked-off bytes are neither read nor faulted on */
			xt[k] = _mm512_mask_loadu_epi8(d->az, rowk[ki] & colk[kj],
						       (const void *)(rowp[ki] + (uintptr_t)colo[kj]));
			if (++k == 4) {
				dw4_group(acc, xt, wv[4 * g], wv[4 * g + 1], wv[4 * g + 2], wv[4 * g + 3]);
				k = 0;
				g++;
			}
		}
	if (k) {
		for (; k < 4; k++)
			xt[k] = d->az;
		dw4_group(acc, xt, wv[4 * g], wv[4 * g + 1], wv[4 * g + 2], wv[4 * g + 3]);
	}
}

/* Output pixels whose 4 slots are channel groups cg0 .. cg0 + n_slots - 1 of
 * one pixel (c >= 48). */
static ALWAYS_INLINE void dw4_run_pixels(const struct dw4 *d, int KH, int KW, int cg0,
					 int n_slots, enum rq_form form, const struct rq16 q[4],
					 uint8_t *y)
{
	const struct qdwconv_params *p = d->p;
	const int c = p->c, n_cg = d->n_cg, kh = KH ? KH : p->kh, kw = KW ? KW : p->kw;
	const __mmask64 xk = n_slots >= 4 ? ~0ull : (1ull << (16 * n_slots)) - 1;
	const __mmask16 wk = (__mmask16)((1u << (4 * n_slots)) - 1);
	__m512i wv[DW4_MAX_TAPS];  /* this chunk's weights, [g][part] */
	for (int g = 0; g < d->n_g; g++)
		for (int part = 0; part < 4; part++)
			wv[g * 4 + part] = _mm512_maskz_loadu_epi32(
				wk, d->w + ((size_t)(g * 4 + part) * n_cg + cg0) * 16);
	uintptr_t rowp[DW4_MAX_TAPS];
	__mmask64 rowk[DW4_MAX_TAPS], colk[DW4_MAX_TAPS];
	intptr_t colo[DW4_MAX_TAPS];
	for (int img = 0; img < p->n; img++)
		for (int oh = 0; oh < p->h_out; oh++) {
			dw4_rows(d, img, oh, kh, rowp, rowk);
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * c + 16 * cg0;
			for (int ow = 0; ow < p->w_out; ow++) {
				int iw0 = ow * p->stride_w - p->pad_l;
				for (int kj = 0; kj < kw; kj++) {
					int iw = iw0 + kj * p->dil_w;
					colk[kj] = iw >= 0 && iw < p->w_in ? xk : 0;
					colo[kj] = (intptr_t)iw * c + 16 * cg0;
				}
				__m512i acc[4] = {q[0].bias, q[1].bias, q[2].bias, q[3].bias};
				dw4_taps(d, KH, KW, rowp, rowk, colo, colk, wv, acc);
				_mm512_mask_storeu_epi8(yrow + (size_t)ow * c, xk, dw4_out(d, acc, q, form));
			}
		}
}

/* c = 16 or 32: a vector is ppc = 64 / c consecutive output pixels of a row. */
static ALWAYS_INLINE void dw4_run_rows(const struct dw4 *d, int KH, int KW, enum rq_form form,
				       const struct rq16 q[4], uint8_t *y)
{
	const struct qdwconv_params *p = d->p;
	const int c = p->c, ppc = 64 / c, kh = KH ? KH : p->kh, kw = KW ? KW : p->kw;
	__m512i wv[DW4_MAX_TAPS];
	for (int g = 0; g < d->n_g; g++)
		for (int part = 0; part < 4; part++) {
			const int8_t *src = d->w + (size_t)(g * 4 + part) * d->n_cg * 16;
			wv[g * 4 + part] = c == 16 ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)src))
						   : _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)src));
		}
	const int row_bytes = p->w_in * c;
	uintptr_t rowp[DW4_MAX_TAPS];
	__mmask64 rowk[DW4_MAX_TAPS], colk[DW4_MAX_TAPS];
	intptr_t colo[DW4_MAX_TAPS];
	for (int img = 0; img < p->n; img++)
		for (int oh = 0; oh < p->h_out; oh++) {
			dw4_rows(d, img, oh, kh, rowp, rowk);
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * c;
			for (int ow0 = 0; ow0 < p->w_out; ow0 += ppc) {
				int n_px = p->w_out - ow0 < ppc ? p->w_out - ow0 : ppc;
				__mmask64 yk = n_px * c >= 64 ? ~0ull : (1ull << (n_px * c)) - 1;
				__m512i acc[4] = {q[0].bias, q[1].bias, q[2].bias, q[3].bias};
				if (p->stride_w == 1) {
					/* the slots are consecutive input pixels: one load per tap */
					for (int kj = 0; kj < kw; kj++) {
						int b0 = (ow0 - p->pad_l + kj * p->dil_w) * c;
						colk[kj] = window_mask(-b0, row_bytes - b0) & yk;
						colo[kj] = b0;
					}
					dw4_taps(d, KH, KW, rowp, rowk, colo, colk, wv, acc);
				} else {
					/* gather the slots pixel by pixel, then the taps */
					__m512i xt[DW4_MAX_TAPS + 3];
					int taps = kh * kw;
					for (int ki = 0; ki < kh; ki++)
						for (int kj = 0; kj < kw; kj++) {
							__m512i v = d->az;
							for (int i = 0; i < n_px; i++) {
								int iw = (ow0 + i) * p->stride_w - p->pad_l +
									 kj * p->dil_w;
								__mmask64 k_px = iw >= 0 && iw < p->w_in
											 ? ((1ull << c) - 1) << (i * c)
											 : 0;
								v = _mm512_mask_loadu_epi8(
									v, k_px & rowk[ki],
									(const void *)(rowp[ki] +
										       (uintptr_t)((intptr_t)(iw - i) * c)));
							}
							xt[ki * kw + kj] = v;
						}
					for (int t = taps; t < 4 * d->n_g; t++)
						xt[t] = d->az;
					for (int g = 0; g < d->n_g; g++)
						dw4_group(acc, xt + 4 * g, wv[4 * g], wv[4 * g + 1],
							  wv[4 * g + 2], wv[4 * g + 3]);
				}
				_mm512_mask_storeu_epi8(yrow + (size_t)ow0 * c, yk, dw4_out(d, acc, q, form));
			}
		}
}

/* --- depthwise 3 x 3, taps grouped by kernel column (dw3) ------------------------- */

/* With dil_w = 1, output pixels next to each other share input columns: the
 * dw4 grouping (4 taps in tap order) transposes 9 input vectors per output
 * vector, but grouping the taps by kernel column kj instead, the dword of a
 * channel holds the input bytes of kernel rows ki = 0, 1, 2 (and a fourth
 * byte against a zero weight) of one input column, and that transposed column
 * T(iw) serves every output pixel that reads column iw, each with its own kj's
 * weights. A row of outputs then transposes each input column once (3 loads,
 * 8 unpacks): per output vector, 1 column at stride 1 and 2 at stride 2,
 * against 9 (padded to 12) in dw4, for the same 12 vpdpbusd. The transposed
 * columns slide along the row in registers.
 *
 * c >= 48 (dw3_run_pixels): a vector is 4 channel groups of one pixel, as in
 * dw4_run_pixels. c = 16 or 32, and the last 16 or 32 channels of a larger c
 * (96 = 64 + 32: dw3_run_rows): a vector is 64 / C pixels x C channels (one
 * load per row when c = C and stride_w = 1, else one per pixel); the windows
 * of the other kernel columns are the block moved on by one pixel, taken from
 * two consecutive transposed blocks with valignd (a pixel is C / 4 dwords in
 * every part). stride_w 1 or 2 throughout.
 * Weights: the dw4 buffer's tail [kj][part][c/16][4 channels][4 rows], then
 * sum |w| per channel (for dw3_form). */

/* T: three rows' bytes interleaved as in dw4_group, the third row as the
 * fourth byte too (against a zero weight). */
static ALWAYS_INLINE void dw3_interleave(__m512i r0, __m512i r1, __m512i r2, __m512i t[4])
{
	__m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1);
	__m512i lo22 = _mm512_unpacklo_epi8(r2, r2), hi22 = _mm512_unpackhi_epi8(r2, r2);
	t[0] = _mm512_unpacklo_epi16(lo01, lo22);
	t[1] = _mm512_unpackhi_epi16(lo01, lo22);
	t[2] = _mm512_unpacklo_epi16(hi01, hi22);
	t[3] = _mm512_unpackhi_epi16(hi01, hi22);
}

static ALWAYS_INLINE void dw3_transpose(const struct dw4 *d, const uintptr_t *rp,
					const __mmask64 *rk, intptr_t off, __m512i t[4])
{
	__m512i r0 = _mm512_mask_loadu_epi8(d->az, rk[0], (const void *)(rp[0] + (uintptr_t)off));
	__m512i r1 = _mm512_mask_loadu_epi8(d->az, rk[1], (const void *)(rp[1] + (uintptr_t)off));
	__m512i r2 = _mm512_mask_loadu_epi8(d->az, rk[2], (const void *)(rp[2] + (uintptr_t)off));
	dw3_interleave(r0, r1, r2, t);
}

/* T(iw) of one pixel's n_slots channel groups (mask xk) at column iw. */
static ALWAYS_INLINE void dw3_column(const struct dw4 *d, const uintptr_t *rowp,
				     const __mmask64 *rowk, __mmask64 xk, int iw, int cg0,
				     __m512i t[4])
{
	__mmask64 ck = iw >= 0 && iw < d->p->w_in ? xk : 0;
	__mmask64 rk[3] = {rowk[0] & ck, rowk[1] & ck, rowk[2] & ck};
	dw3_transpose(d, rowp, rk, (intptr_t)iw * d->p->c + 16 * cg0, t);
}

/* acc = bias + the three columns' taps (weights wv[kj * 4 + part]). */
static ALWAYS_INLINE void dw3_acc(const struct rq16 q[4], const __m512i *wv, const __m512i ta[4],
				  const __m512i tb[4], const __m512i tc[4], __m512i acc[4])
{
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		acc[i] = dpbusd(q[i].bias, ta[i], wv[i]);
		acc[i] = dpbusd(acc[i], tb[i], wv[4 + i]);
		acc[i] = dpbusd(acc[i], tc[i], wv[8 + i]);
	}
}

static ALWAYS_INLINE const int8_t *dw3_weights(const struct dw4 *d)
{
	return d->w + (size_t)d->n_g * 4 * d->p->c + (size_t)d->p->c * sizeof(int32_t);
}

/* c >= 48: output pixels whose 4 slots are channel groups cg0 .. cg0 + n_slots - 1. */
static ALWAYS_INLINE void dw3_run_pixels(const struct dw4 *d, int SW, int cg0, int n_slots,
					 enum rq_form form, const struct rq16 q[4], uint8_t *y)
{
	const struct qdwconv_params *p = d->p;
	const int c = p->c, n_cg = d->n_cg;
	const __mmask64 xk = n_slots >= 4 ? ~0ull : (1ull << (16 * n_slots)) - 1;
	const __mmask16 wk = (__mmask16)((1u << (4 * n_slots)) - 1);
	const int8_t *wc = dw3_weights(d);
	__m512i wv[12]; /* [kj][part] */
	for (int i = 0; i < 12; i++)
		wv[i] = _mm512_maskz_loadu_epi32(wk, wc + ((size_t)i * n_cg + cg0) * 16);
	uintptr_t rowp[3];
	__mmask64 rowk[3];
	for (int img = 0; img < p->n; img++)
		for (int oh = 0; oh < p->h_out; oh++) {
			dw4_rows(d, img, oh, 3, rowp, rowk);
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * c + 16 * cg0;
			const int iw0 = -p->pad_l;
			__m512i ta[4], tb[4], tc[4], acc[4];
			dw3_column(d, rowp, rowk, xk, iw0, cg0, ta);
			if (SW == 1)
				dw3_column(d, rowp, rowk, xk, iw0 + 1, cg0, tb);
			for (int ow = 0; ow < p->w_out; ow++) {
				if (SW == 1) {
					dw3_column(d, rowp, rowk, xk, iw0 + ow + 2, cg0, tc);
				} else {
					dw3_column(d, rowp, rowk, xk, iw0 + 2 * ow + 1, cg0, tb);
					dw3_column(d, rowp, rowk, xk, iw0 + 2 * ow + 2, cg0, tc);
				}
				dw3_acc(q, wv, ta, tb, tc, acc);
				_mm512_mask_storeu_epi8(yrow + (size_t)ow * c, xk, dw4_out(d, acc, q, form));
#pragma GCC unroll 4
				for (int i = 0; i < 4; i++) {
					if (SW == 1) {
						ta[i] = tb[i];
						tb[i] = tc[i];
					} else {
						ta[i] = tc[i];
					}
				}
			}
		}
}

/* Pixel i of dw3_gather's: C channels (16 or 32) from byte off of pixel
 * iw + SW * i, a_zero outside the input or where rk is 0. */
static ALWAYS_INLINE __m256i dw3_pixel(const struct dw4 *d, int C, int SW, int c, int w_in,
				       uintptr_t rp, __mmask64 rk, int iw, intptr_t off, int i)
{
	int w = iw + SW * i;
	__mmask32 k = w >= 0 && w < w_in ? (__mmask32)rk : 0;
	const void *src = (const void *)(rp + (uintptr_t)((intptr_t)w * c + off));
	return C == 32 ? _mm256_mask_loadu_epi8(_mm512_castsi512_si256(d->az), k, src)
		       : _mm256_castsi128_si256(_mm_mask_loadu_epi8(_mm512_castsi512_si128(d->az),
								    (__mmask16)k, src));
}

/* One row's bytes of the 64 / C pixels iw, iw + SW, ... (C channels from byte
 * off of each pixel; a_zero outside the input or where rk is 0). */
static ALWAYS_INLINE __m512i dw3_gather(const struct dw4 *d, int C, int SW, bool whole,
					uintptr_t rp, __mmask64 rk, int iw, intptr_t off)
{
	const int c = whole ? C : d->p->c, w_in = d->p->w_in;
	if (whole && SW == 1) { /* consecutive pixels: one load */
		int b0 = iw * C;
		return _mm512_mask_loadu_epi8(d->az, rk & window_mask(-b0, w_in * C - b0),
					      (const void *)(rp + (uintptr_t)(intptr_t)b0));
	}
	__m256i px[4];
	px[0] = dw3_pixel(d, C, SW, c, w_in, rp, rk, iw, off, 0);
	px[1] = dw3_pixel(d, C, SW, c, w_in, rp, rk, iw, off, 1);
	if (C == 16) { /* 4 pixels: written out, as a loop's unroll pragma is
			* ignored (and warned about) where C is not folded */
		px[2] = dw3_pixel(d, C, SW, c, w_in, rp, rk, iw, off, 2);
		px[3] = dw3_pixel(d, C, SW, c, w_in, rp, rk, iw, off, 3);
		px[0] = _mm256_inserti128_si256(px[0], _mm256_castsi256_si128(px[1]), 1);
		px[1] = _mm256_inserti128_si256(px[2], _mm256_castsi256_si128(px[3]), 1);
	}
	return _mm512_inserti64x4(_mm512_castsi256_si512(px[0]), px[1], 1);
}

/* T of the 64 / C pixels iw, iw + SW, ... */
static ALWAYS_INLINE void dw3_block(const struct dw4 *d, int C, int SW, bool whole,
				    const uintptr_t *rowp, const __mmask64 *rowk, int iw, intptr_t off,
				    __m512i t[4])
{
	__m512i r0 = dw3_gather(d, C, SW, whole, rowp[0], rowk[0], iw, off);
	__m512i r1 = dw3_gather(d, C, SW, whole, rowp[1], rowk[1], iw, off);
	__m512i r2 = dw3_gather(d, C, SW, whole, rowp[2], rowk[2], iw, off);
	dw3_interleave(r0, r1, r2, t);
}

/* Vectors of 64 / C output pixels x C channels (C = 16 or 32): channel groups
 * cg0 .. cg0 + C/16 - 1 of each pixel (cg0 = -1 when c = C, a constant after
 * inlining: then a row's pixels are one load), stride_w SW = 1 or 2. Windows: at
 * stride 1, block T_k (pixels ow0 - pad_l + i) serves kj = 0, and kj = 1, 2
 * are T_k moved on by one and two pixels (valignd with T_k+1); at stride 2,
 * A_k (pixels 2 ow0 - pad_l + 2i) serves kj = 0, B_k (one column on) kj = 1,
 * and A_k moved on by one pixel kj = 2. */
static ALWAYS_INLINE void dw3_run_rows(const struct dw4 *d, int C, int SW, int cg0,
				       enum rq_form form, const struct rq16 q[4], uint8_t *y)
{
	const struct qdwconv_params *p = d->p;
	const bool whole = cg0 < 0; /* c = C: every channel, pixels contiguous */
	const int c = whole ? C : p->c, ppc = 64 / C;
	cg0 = whole ? 0 : cg0;
	const intptr_t off = 16 * cg0;
	const int8_t *wc = dw3_weights(d);
	__m512i wv[12];
	for (int i = 0; i < 12; i++) {
		const int8_t *src = wc + ((size_t)i * d->n_cg + cg0) * 16;
		wv[i] = C == 16 ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)src))
				: _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)src));
	}
	uintptr_t rowp[3];
	__mmask64 rowk[3];
	for (int img = 0; img < p->n; img++)
		for (int oh = 0; oh < p->h_out; oh++) {
			dw4_rows(d, img, oh, 3, rowp, rowk);
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * c + off;
			__m512i ta[4], tn[4], tb[4], tc[4], acc[4];
			dw3_block(d, C, SW, whole, rowp, rowk, -p->pad_l, off, ta);
			for (int ow0 = 0; ow0 < p->w_out; ow0 += ppc) {
				int n_px = p->w_out - ow0 < ppc ? p->w_out - ow0 : ppc;
				int iw = SW * ow0 - p->pad_l;
				dw3_block(d, C, SW, whole, rowp, rowk, iw + SW * ppc, off, tn);
				if (SW == 2)
					dw3_block(d, C, SW, whole, rowp, rowk, iw + 1, off, tb);
#pragma GCC unroll 4
				for (int i = 0; i < 4; i++) {
					/* windows one (and two) pixels on */
					/* (literal shifts: an immediate must be one) */
					__m512i t1 = C == 16 ? _mm512_alignr_epi32(tn[i], ta[i], 4)
							     : _mm512_alignr_epi32(tn[i], ta[i], 8);
					if (SW == 1) {
						tb[i] = t1;
						tc[i] = C == 16 ? _mm512_alignr_epi32(tn[i], ta[i], 8) : tn[i];
					} else {
						tc[i] = t1;
					}
				}
				dw3_acc(q, wv, ta, tb, tc, acc);
				__m512i out = dw4_out(d, acc, q, form);
				uint8_t *yo = yrow + (size_t)ow0 * c;
				if (whole) {
					_mm512_mask_storeu_epi8(yo, n_px == ppc ? ~0ull : (1ull << (n_px * C)) - 1,
								out);
				} else if (C == 32) {
					_mm256_storeu_si256((__m256i *)yo, _mm512_castsi512_si256(out));
					if (n_px > 1)
						_mm256_storeu_si256((__m256i *)(yo + c), _mm512_extracti64x4_epi64(out, 1));
				} else {
					_mm_storeu_si128((__m128i *)yo, _mm512_castsi512_si128(out));
					if (n_px > 1)
						_mm_storeu_si128((__m128i *)(yo + c), _mm512_extracti32x4_epi32(out, 1));
					if (n_px > 2)
						_mm_storeu_si128((__m128i *)(yo + 2 * c), _mm512_extracti32x4_epi32(out, 2));
					if (n_px > 3)
						_mm_storeu_si128((__m128i *)(yo + 3 * c), _mm512_extracti32x4_epi32(out, 3));
				}
#pragma GCC unroll 4
				for (int i = 0; i < 4; i++)
					ta[i] = tn[i];
			}
		}
}

/* RQ_F32_FIT in place of RQ_F32 when it holds for the slots' channels cg[]
 * (as in dw4_constants): acc = bias - a_zero sum w + sum x w with x in
 * [0, 255], so |acc| <= |bias - a_zero sum w| + 255 sum |w| (below 2^31: no
 * wrap), and the float result is below 2^30 * (1 + 2^-22) < 2^31. */
static enum rq_form dw3_form(const struct dw4 *d, const int *cg, enum rq_form form)
{
	const struct qdwconv_params *p = d->p;
	if (form != RQ_F32)
		return form;
	const int32_t *sum_w = (const int32_t *)(d->w + (size_t)d->n_g * 4 * p->c);
	const int32_t *sum_abs = (const int32_t *)(dw3_weights(d) + (size_t)12 * p->c);
	for (int l = 0; l < 4; l++)
		for (int j = 0; j < 16; j++) {
			int ch = cg[l] < 0 ? 0 : 16 * cg[l] + j;
			double acc_max = fabs((double)p->bias[ch] - (double)p->a_zero * sum_w[ch]) +
					 255.0 * (double)sum_abs[ch];
			if (acc_max >= 2147483648.0 ||
			    acc_max * fabs((double)p->rq_scale[ch]) + fabs((double)p->c_zero) >=
				    1073741824.0)
				return RQ_F32;
		}
	return RQ_F32_FIT;
}

/* CALL, with F the form as a constant (the depthwise kernels' dispatch on the
 * requantization form). */
#define RQ_FORMS(CALL)                                                                  \
	do {                                                                             \
		if (form == RQ_F32_FIT) {                                                \
			const enum rq_form F = RQ_F32_FIT;                               \
			CALL;                                                            \
		} else if (form == RQ_F32) {                                             \
			const enum rq_form F = RQ_F32;                                   \
			CALL;                                                            \
		} else if (form == RQ_LEAN) {                                            \
			const enum rq_form F = RQ_LEAN;                                  \
			CALL;                                                            \
		} else {                                                                 \
			const enum rq_form F = RQ_FULL;                                  \
			CALL;                                                            \
		}                                                                        \
	} while (0)

/* The dw3 variants, each its own function with the three forms inside: inlined
 * all into dw4_run, GCC's register allocation of the hot loops got worse
 * (MobileNetV2's 16-channel depthwise 1.3x slower). cg0 < 0: all channels. */
#define DW3_ENTRY(NAME, CALL)                                                            \
	static __attribute__((noinline)) void NAME(const struct dw4 *d_in, int cg0,      \
						   int n_slots, enum rq_form form,         \
						   const struct rq16 *q_in, uint8_t *y)    \
	{                                                                                \
		/* local copies: stores to y cannot alias them, so they stay in registers */ \
		const struct dw4 dl = *d_in, *d = &dl;                                   \
		const struct rq16 q[4] = {q_in[0], q_in[1], q_in[2], q_in[3]};           \
		(void)cg0;                                                               \
		(void)n_slots;                                                           \
		RQ_FORMS(CALL);                                                         \
	}
DW3_ENTRY(dw3_pixels_s1, dw3_run_pixels(d, 1, cg0, n_slots, F, q, y))
DW3_ENTRY(dw3_pixels_s2, dw3_run_pixels(d, 2, cg0, n_slots, F, q, y))
DW3_ENTRY(dw3_c16_s1, dw3_run_rows(d, 16, 1, -1, F, q, y))
DW3_ENTRY(dw3_c16_s2, dw3_run_rows(d, 16, 2, -1, F, q, y))
DW3_ENTRY(dw3_c32_s1, dw3_run_rows(d, 32, 1, -1, F, q, y))
DW3_ENTRY(dw3_c32_s2, dw3_run_rows(d, 32, 2, -1, F, q, y))
DW3_ENTRY(dw3_tail16_s1, dw3_run_rows(d, 16, 1, cg0, F, q, y))
DW3_ENTRY(dw3_tail16_s2, dw3_run_rows(d, 16, 2, cg0, F, q, y))
DW3_ENTRY(dw3_tail32_s1, dw3_run_rows(d, 32, 1, cg0, F, q, y))
DW3_ENTRY(dw3_tail32_s2, dw3_run_rows(d, 32, 2, cg0, F, q, y))
#undef DW3_ENTRY

typedef void (*dw3_fn)(const struct dw4 *d, int cg0, int n_slots, enum rq_form form,
		       const struct rq16 *q, uint8_t *y);

/* fn on copies of d and q: were dw4_run's own d and q to escape into the call,
 * GCC would reload them after every store to y in the dw4 loops (a 5 x 5
 * depthwise 1.1x slower). */
static ALWAYS_INLINE void dw3_call(dw3_fn fn, struct dw4 d, int cg0, int n_slots,
				   enum rq_form form, const struct rq16 *q, uint8_t *y)
{
	struct rq16 qc[4] = {q[0], q[1], q[2], q[3]};
	fn(&d, cg0, n_slots, form, qc, y);
}

static void dw4_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		    uint8_t *y)
{
	struct dw4 d = {.p = p, .x = x, .w = packed, .n_cg = p->c / 16,
			.taps = p->kh * p->kw};
	d.n_g = (d.taps + 3) / 4;
	d.az = _mm512_set1_epi8((char)p->a_zero);
	d.z16 = _mm512_set1_epi16((short)p->c_zero);
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &d.o);
	d.cmin = _mm512_set1_epi8((char)p->c_min);
	d.cmax = _mm512_set1_epi8((char)p->c_max);
	struct rq16 q[4];
	bool k3 = p->kh == 3 && p->kw == 3;
	/* dw3 needs adjacent kernel columns */
	bool col3 = k3 && p->dil_w == 1 && p->stride_w <= 2;
	if (p->c <= 32) {
		int cg[4];
		for (int l = 0; l < 4; l++)
			cg[l] = l % d.n_cg;
		enum rq_form form = dw4_constants(&d, cg, q);
		if (col3)
			form = dw3_form(&d, cg, form);
		if (col3 && p->c == 16)
			dw3_call(p->stride_w == 1 ? dw3_c16_s1 : dw3_c16_s2, d, -1, 1, form, q, y);
		else if (col3)
			dw3_call(p->stride_w == 1 ? dw3_c32_s1 : dw3_c32_s2, d, -1, 2, form, q, y);
		else if (form == RQ_F32 && k3)
			dw4_run_rows(&d, 3, 3, RQ_F32, q, y);
		else if (form == RQ_F32)
			dw4_run_rows(&d, 0, 0, RQ_F32, q, y);
		else if (form == RQ_LEAN && k3)
			dw4_run_rows(&d, 3, 3, RQ_LEAN, q, y);
		else if (form == RQ_LEAN)
			dw4_run_rows(&d, 0, 0, RQ_LEAN, q, y);
		else
			dw4_run_rows(&d, 0, 0, RQ_FULL, q, y);
		return;
	}
	for (int cg0 = 0; cg0 < d.n_cg; cg0 += 4) {
		int n_slots = d.n_cg - cg0 < 4 ? d.n_cg - cg0 : 4;
		int cg[4];
		for (int l = 0; l < 4; l++)
			cg[l] = l < n_slots ? cg0 + l : -1;
		enum rq_form form = dw4_constants(&d, cg, q);
		if (col3 && n_slots <= 2) {
			/* the last 16 or 32 channels: several pixels per vector */
			for (int l = 0; l < 4; l++)
				cg[l] = cg0 + l % n_slots;
			form = dw3_form(&d, cg, dw4_constants(&d, cg, q));
			if (n_slots == 1)
				dw3_call(p->stride_w == 1 ? dw3_tail16_s1 : dw3_tail16_s2, d, cg0, 1, form, q, y);
			else
				dw3_call(p->stride_w == 1 ? dw3_tail32_s1 : dw3_tail32_s2, d, cg0, 2, form, q, y);
		} else if (col3) {
			form = dw3_form(&d, cg, form);
			dw3_call(p->stride_w == 1 ? dw3_pixels_s1 : dw3_pixels_s2, d, cg0, n_slots, form, q, y);
		} else if (form == RQ_F32 && k3)
			dw4_run_pixels(&d, 3, 3, cg0, n_slots, RQ_F32, q, y);
		else if (form == RQ_F32)
			dw4_run_pixels(&d, 0, 0, cg0, n_slots, RQ_F32, q, y);
		else if (form == RQ_LEAN && k3)
			dw4_run_pixels(&d, 3, 3, cg0, n_slots, RQ_LEAN, q, y);
		else if (form == RQ_LEAN)
			dw4_run_pixels(&d, 0, 0, cg0, n_slots, RQ_LEAN, q, y);
		else
			dw4_run_pixels(&d, 0, 0, cg0, n_slots, RQ_FULL, q, y);
	}
}

/* --- depthwise kh x kw by kernel column, any channel count (dwk) ------------------ */

/* dil 1 in both directions, any strides, kh and kw up to DWK_MAX_K, any c (the
 * engine's every depthwise but dw3's and those of more than DWK_MAX_CLASSES
 * row or column classes, below): the taps grouped by kernel column as in dw3,
 * 4 kernel rows a dword. Only the taps
 * inside the input are summed: an output pixel's taps inside the input are
 * the rectangle of kernel rows [a, b) and columns [c0, d0) (a > 0 or b < kh
 * near the top or bottom edge, c0, d0 likewise at the sides), its rows in
 * ceil((b - a) / 4) groups of 4 starting at a (so on a 4 x 4 map with a 5 x 5
 * kernel, where at most 4 rows are inside, one group), its columns only from
 * c0 to d0. With x' = x inside the input,
 *     acc = bias - a_zero * sum_{rectangle} w + sum_{rectangle} x' w
 * (mod 2^32): the first two terms depend only on the rectangle, which is the
 * same for every output pixel of a row class and column class (the rows and
 * columns near the edges each a class of their own, the interior one class),
 * and are tabulated once per call and chunk of 64 channels from the 2D prefix
 * sums of w; rows of a group past b read as 0. (On MobileNetV3's 4 x 4 maps
 * with 5 x 5 kernels every pixel is a class of its own and half the taps are
 * padding: 2.6-4.3x faster than dw4 and dw_any.)
 *
 * A vector is 4 slots of 16 channels of one output pixel, as in dw4_run_pixels
 * (the last chunk's loads and stores masked to the channels there are, the
 * weights zero past c). A row of outputs goes in segments of DWK_NP pixels:
 * per group, each input column the segment reads is transposed once (4 loads,
 * 8 unpacks), then added to every pixel of the segment that reads it, with
 * the weights of its kernel column kj (memory operands: 4 x kw vectors would
 * not fit in registers beside the DWK_NP x 4 accumulators). For kw 3 and 5
 * with stride_w 1 and 2 the segment's columns are unrolled, so which pixel
 * takes a column with which weights is known at compile time (1.2x).
 *
 * Packed (after the dw4 or dw_any weights), per chunk q of 64 channels (the
 * last padded with zero weights), slot l, part p, channel i of the part
 * (channel 64 q + 16 l + 4 p + i):
 *   W [q][a = 0..kh-1][kj][p][l][i][4 rows a..a+3] int8 (rows past kh are 0):
 *     the 4 parts of (a, kj) are 256 consecutive bytes;
 *   P [q][0..kh][0..kw][p][l][i] int32: P[q][r][s] sums w[ch][ki][kj] over
 *     ki < r, kj < s;
 *   sum_t |w[ch][t]| as int32 [c rounded up to 64] (for dwk_constants). */

#define DWK_MAX_K 16
#define DWK_MAX_CLASSES 8
#define DWK_NP 4

static bool dwk_packs(int c, int kh, int kw)
{
	return c > 0 && kh >= 1 && kw >= 1 && kh <= DWK_MAX_K && kw <= DWK_MAX_K &&
	       kh * kw <= Q8_K_MAX;
}

/* c rounded up to a whole chunk of 64 */
static size_t dwk_cp(int c)
{
	return ((size_t)c + 63) / 64 * 64;
}

static size_t dwk_w_bytes(int c, int kh, int kw)
{
	return (size_t)4 * kh * kw * dwk_cp(c);
}

static size_t dwk_p_bytes(int c, int kh, int kw)
{
	return (size_t)4 * (kh + 1) * (kw + 1) * dwk_cp(c);
}

static size_t dwk_packed_bytes(int c, int kh, int kw)
{
	return dwk_w_bytes(c, kh, kw) + dwk_p_bytes(c, kh, kw) + 4 * dwk_cp(c);
}

static void dwk_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	int8_t *wo = packed;
	int32_t *po = (int32_t *)(wo + dwk_w_bytes(c, kh, kw));
	int32_t *ao = (int32_t *)((int8_t *)po + dwk_p_bytes(c, kh, kw));
	memset(packed, 0, dwk_packed_bytes(c, kh, kw));
	for (int ch = 0; ch < c; ch++) {
		const int8_t *wc = w + (size_t)ch * kh * kw;
		/* chunk, slot, part, channel in the part */
		size_t cq = (size_t)ch / 64, l = (size_t)ch % 64 / 16, part = (size_t)ch % 16 / 4,
		       i = (size_t)ch % 4;
		for (int a = 0; a < kh; a++)
			for (int kj = 0; kj < kw; kj++)
				for (int r = 0; r < 4 && a + r < kh; r++)
					wo[(((cq * kh + (size_t)a) * kw + kj) * 4 + part) * 64 + l * 16 +
					   i * 4 + (size_t)r] = wc[(a + r) * kw + kj];
		int32_t s_abs = 0;
		for (int ii = 0; ii <= kh; ii++)
			for (int jj = 0; jj <= kw; jj++) {
				int32_t s = 0;
				for (int ki = 0; ki < ii; ki++)
					for (int kj = 0; kj < jj; kj++)
						s += wc[ki * kw + kj];
				po[(((cq * (kh + 1) + (size_t)ii) * (kw + 1) + jj) * 4 + part) * 16 +
				   l * 4 + i] = s;
			}
		for (int t = 0; t < kh * kw; t++)
			s_abs += wc[t] < 0 ? -wc[t] : wc[t];
		memcpy(ao + ch, &s_abs, sizeof s_abs);
	}
}

/* The outputs o of one axis fall into classes of equal tap ranges: the first
 * top (tap range cut at the start), one interior class, the last bot (cut at
 * the end); or, where those overlap (small maps), one class per output. */
struct dwk_axis {
	int k, stride, pad, in, out;
	int top, bot, n;
};

static void dwk_axis_init(struct dwk_axis *ax, int k, int stride, int pad, int in, int out)
{
	*ax = (struct dwk_axis){.k = k, .stride = stride, .pad = pad, .in = in, .out = out};
	/* a(o) = max(0, pad - o s) > 0 iff o < ceil(pad / s) */
	int top = pad > 0 ? (pad + stride - 1) / stride : 0;
	/* b(o) = min(k, in + pad - o s) < k iff o s > in + pad - k */
	int last = in + pad - k;
	int bot = last < 0 ? out : out - (last / stride + 1);
	ax->top = top < out ? top : out;
	ax->bot = bot < 0 ? 0 : bot;
	ax->n = ax->top + ax->bot >= out ? out : ax->top + 1 + ax->bot;
}

static ALWAYS_INLINE int dwk_class(const struct dwk_axis *ax, int o)
{
	if (ax->top + ax->bot >= ax->out)
		return o;
	return o < ax->top ? o : o >= ax->out - ax->bot ? ax->top + 1 + o - (ax->out - ax->bot) : ax->top;
}

/* An output of class cls (the inverse of dwk_class). */
static int dwk_class_rep(const struct dwk_axis *ax, int cls)
{
	if (ax->top + ax->bot >= ax->out || cls <= ax->top)
		return cls;
	return ax->out - ax->bot + (cls - ax->top - 1);
}

/* The taps [*lo, *hi) of output o inside the input. */
static ALWAYS_INLINE void dwk_range(const struct dwk_axis *ax, int o, int *lo, int *hi)
{
	int i0 = o * ax->stride - ax->pad;
	*lo = i0 < 0 ? -i0 : 0;
	*hi = ax->in - i0 < ax->k ? ax->in - i0 : ax->k;
	if (*hi < *lo)
		*hi = *lo;
}

struct dwk {
	struct dw4 d;
	const int8_t *w;       /* W */
	const int32_t *pre;    /* P */
	const int32_t *sum_abs;
	int cp, n_cg;
	struct dwk_axis rows, cols;
};

static bool dwk_runs(const struct qdwconv_params *p)
{
	if (!dwk_packs(p->c, p->kh, p->kw) || p->dil_h != 1 || p->dil_w != 1 ||
	    p->stride_h < 1 || p->stride_w < 1)
		return false;
	struct dwk_axis r, c;
	dwk_axis_init(&r, p->kh, p->stride_h, p->pad_t, p->h_in, p->h_out);
	dwk_axis_init(&c, p->kw, p->stride_w, p->pad_l, p->w_in, p->w_out);
	return r.n <= DWK_MAX_CLASSES && c.n <= DWK_MAX_CLASSES;
}

/* The 16-lane vectors of the 4 parts of chunk cg0 from n[l], the 16
 * channels of slot l in order: part p is lane p of every n[l] (a 4 x 4
 * transpose of 128-bit lanes). */
static void dwk_parts(const __m512i n[4], __m512i part[4])
{
	__m512i lo01 = _mm512_shuffle_i32x4(n[0], n[1], _MM_SHUFFLE(1, 0, 1, 0));
	__m512i lo23 = _mm512_shuffle_i32x4(n[2], n[3], _MM_SHUFFLE(1, 0, 1, 0));
	__m512i hi01 = _mm512_shuffle_i32x4(n[0], n[1], _MM_SHUFFLE(3, 2, 3, 2));
	__m512i hi23 = _mm512_shuffle_i32x4(n[2], n[3], _MM_SHUFFLE(3, 2, 3, 2));
	part[0] = _mm512_shuffle_i32x4(lo01, lo23, _MM_SHUFFLE(2, 0, 2, 0));
	part[1] = _mm512_shuffle_i32x4(lo01, lo23, _MM_SHUFFLE(3, 1, 3, 1));
	part[2] = _mm512_shuffle_i32x4(hi01, hi23, _MM_SHUFFLE(2, 0, 2, 0));
	part[3] = _mm512_shuffle_i32x4(hi01, hi23, _MM_SHUFFLE(3, 1, 3, 1));
}

/* dwk_parts of a [c] array of 32-bit values (0 past c). */
static void dwk_parts32(const void *a, int c, int cg0, __m512i part[4])
{
	__m512i n[4];
	for (int l = 0; l < 4; l++) {
		int ch = 16 * (cg0 + l), left = c - ch;
		__mmask16 v = (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1);
		n[l] = _mm512_maskz_loadu_epi32(v, (const int32_t *)a + (left > 0 ? ch : 0));
	}
	dwk_parts(n, part);
}

/* dwk_parts of a [c] int8 array, widened to int32 (0 past c). */
static void dwk_parts8(const int8_t *a, int c, int cg0, __m512i part[4])
{
	__m512i n[4];
	for (int l = 0; l < 4; l++) {
		int ch = 16 * (cg0 + l), left = c - ch;
		__mmask16 v = (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1);
		n[l] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(v, a + (left > 0 ? ch : 0)));
	}
	dwk_parts(n, part);
}

/* Requantization constants of chunk cg0 in part order (bias unfolded; 0
 * past c), and the form that serves them: RQ_F32_FIT as in dw3_form, with
 * |acc| <= |bias| + 510 sum |w| over any rectangle of taps, checked in float
 * with a margin of 2 for its roundings (|acc| < 2^30 and
 * |acc * scale| + |c_zero| < 2^29). Vectors throughout: per-channel arrays
 * built in memory and loaded as vectors stalled on store forwarding. */
static enum rq_form dwk_constants(const struct dwk *k, int cg0, struct rq16 q[4])
{
	const struct qdwconv_params *p = k->d.p;
	__m512i bias[4], v1[4], v2[4];
	dwk_parts32(p->bias, p->c, cg0, bias);
	for (int part = 0; part < 4; part++) { /* field by field: no memset of the whole */
		q[part].bias = bias[part];
		q[part].valid = 0xffff;
		q[part].f32 = q[part].any_left = q[part].any_min_mult = false;
	}
	if (p->rq_scale) {
		dwk_parts32(p->rq_scale, p->c, cg0, v1);
		dwk_parts32(k->sum_abs, p->c, cg0, v2);
		__mmask16 fit = 0xffff;
		for (int part = 0; part < 4; part++) {
			q[part].f32 = true;
			q[part].fscale = _mm512_castsi512_ps(v1[part]);
			__m512 acc_max = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v2[part]), _mm512_set1_ps(510.0f),
							 _mm512_abs_ps(_mm512_cvtepi32_ps(bias[part])));
			__m512 out_max = _mm512_fmadd_ps(acc_max, _mm512_abs_ps(q[part].fscale),
							 _mm512_set1_ps(fabsf((float)p->c_zero)));
			fit &= _mm512_cmp_ps_mask(acc_max, _mm512_set1_ps(1073741824.0f), _CMP_LT_OQ) &
			       _mm512_cmp_ps_mask(out_max, _mm512_set1_ps(536870912.0f), _CMP_LT_OQ);
		}
		return fit == 0xffff ? RQ_F32_FIT : RQ_F32;
	}
	dwk_parts32(p->mult, p->c, cg0, v1);
	dwk_parts8(p->shift, p->c, cg0, v2);
	for (int part = 0; part < 4; part++)
		rq16_q31(&q[part], v1[part], v2[part]);
	return rq_form_of(q, 4);
}

/* tab[(rc * cols.n + cc) * 4 + part] = bias - a_zero * sum of w over the taps
 * of row class rc and column class cc, for chunk cg0. */
static void dwk_table(const struct dwk *k, int cg0, const struct rq16 q[4], __m512i *tab)
{
	const struct qdwconv_params *p = k->d.p;
	const __m512i az = _mm512_set1_epi32(p->a_zero);
	const int kw1 = p->kw + 1;
	const int32_t *pq = k->pre + (size_t)cg0 / 4 * (p->kh + 1) * kw1 * 64;
	for (int rc = 0; rc < k->rows.n; rc++) {
		int a, b;
		dwk_range(&k->rows, dwk_class_rep(&k->rows, rc), &a, &b);
		for (int cc = 0; cc < k->cols.n; cc++) {
			int c0, d0;
			dwk_range(&k->cols, dwk_class_rep(&k->cols, cc), &c0, &d0);
			for (int part = 0; part < 4; part++) {
#define DWK_P(i, j) _mm512_loadu_si512(pq + (((size_t)(i) * kw1 + (j)) * 4 + part) * 16)
				__m512i s = _mm512_sub_epi32(_mm512_add_epi32(DWK_P(b, d0), DWK_P(a, c0)),
							     _mm512_add_epi32(DWK_P(a, d0), DWK_P(b, c0)));
#undef DWK_P
				tab[(rc * k->cols.n + cc) * 4 + part] =
					_mm512_sub_epi32(q[part].bias, _mm512_mullo_epi32(az, s));
			}
		}
	}
}

/* The transposed input column at byte off of the rows rp (mask rk; 0 where off). */
static ALWAYS_INLINE void dwk_column(const uint8_t *const rp[4], const __mmask64 rk[4], size_t off,
				     __m512i t[4])
{
	__m512i r0 = _mm512_maskz_loadu_epi8(rk[0], rp[0] + off);
	__m512i r1 = _mm512_maskz_loadu_epi8(rk[1], rp[1] + off);
	__m512i r2 = _mm512_maskz_loadu_epi8(rk[2], rp[2] + off);
	__m512i r3 = _mm512_maskz_loadu_epi8(rk[3], rp[3] + off);
	__m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1);
	__m512i lo23 = _mm512_unpacklo_epi8(r2, r3), hi23 = _mm512_unpackhi_epi8(r2, r3);
	t[0] = _mm512_unpacklo_epi16(lo01, lo23);
	t[1] = _mm512_unpackhi_epi16(lo01, lo23);
	t[2] = _mm512_unpacklo_epi16(hi01, hi23);
	t[3] = _mm512_unpackhi_epi16(hi01, hi23);
}

/* acc[i] += t against kernel column kj's weights (wk: its 4 parts). */
static ALWAYS_INLINE void dwk_madd(__m512i acc[4], const __m512i t[4], const int8_t *wk)
{
#pragma GCC unroll 4
	for (int part = 0; part < 4; part++)
		acc[part] = dpbusd(acc[part], t[part], _mm512_loadu_si512(wk + part * 64));
}

/* One segment's taps of one group of kernel rows (weights wg, rows rp):
 * pixel i of the segment reads input column iw0 + SW i + kj for kernel column
 * kj. KW, SW constant (> 0): the segment's columns iw0 .. iw0 + (NP - 1) SW + KW - 1
 * in turn, those outside the input skipped, and which pixel takes which
 * column is known at compile time; else (0) the columns inside the input, and
 * per column the pixels that read it. */
static ALWAYS_INLINE void dwk_segment(int KW, int SW, int kw, int sw, int c, int w_in,
				      const uint8_t *const rp[4], const __mmask64 rk[4],
				      const int8_t *wg, int iw0, int n_px, __m512i acc[DWK_NP][4])
{
	if (KW > 0) {
#pragma GCC unroll 16
		for (int m = 0; m < (DWK_NP - 1) * SW + KW; m++) {
			const int iw = iw0 + m;
			if (iw < 0 || iw >= w_in)
				continue;
			__m512i t[4];
			dwk_column(rp, rk, (size_t)iw * c, t);
#pragma GCC unroll 4
			for (int i = 0; i < DWK_NP; i++) {
				const int kj = m - i * SW;
				if (kj >= 0 && kj < KW) /* pixels past n_px: never stored */
					dwk_madd(acc[i], t, wg + kj * 256);
			}
		}
		return;
	}
	int iw_lo = iw0, iw_hi = iw0 + (n_px - 1) * sw + kw;
	iw_lo = iw_lo < 0 ? 0 : iw_lo;
	iw_hi = iw_hi > w_in ? w_in : iw_hi;
	for (int iw = iw_lo; iw < iw_hi; iw++) {
		__m512i t[4];
		dwk_column(rp, rk, (size_t)iw * c, t);
		const int kj0 = iw - iw0; /* pixel 0's kernel column */
#pragma GCC unroll 4
		for (int i = 0; i < DWK_NP; i++) {
			int kj = kj0 - i * sw;
			if (i < n_px && kj >= 0 && kj < kw)
				dwk_madd(acc[i], t, wg + (size_t)kj * 256);
		}
	}
}

/* Chunk cg0 (channels 16 cg0 .. 16 cg0 + 63, those below c) of every output.
 * The scalars are local copies, so that stores to y do not make them reloaded
 * (k and q are the entry's copies, as in DW3_ENTRY: with them in the caller's
 * memory instead, 1.15x slower). */
static ALWAYS_INLINE void dwk_run_chunk(int KW, int SW, const struct dwk *k, int cg0,
					enum rq_form form, const struct rq16 *q, const __m512i *tab,
					uint8_t *y)
{
	const struct dw4 *d = &k->d;
	const struct qdwconv_params *p = d->p;
	const int c = p->c, kw = KW ? KW : p->kw, sw = SW ? SW : p->stride_w, pl = p->pad_l;
	const int n = p->n, h_in = p->h_in, w_in = p->w_in, h_out = p->h_out, w_out = p->w_out;
	const int sh = p->stride_h, pt = p->pad_t;
	const struct dwk_axis rows = k->rows, cols = k->cols;
	const uint8_t *x = d->x;
	const int nb = c - 16 * cg0;
	const __mmask64 xk = nb >= 64 ? ~0ull : (1ull << nb) - 1;
	const int8_t *wc = k->w + (size_t)cg0 / 4 * p->kh * kw * 256;
	const size_t row_bytes = (size_t)w_in * c;
	for (int img = 0; img < n; img++) {
		const uint8_t *xi = x + (size_t)img * h_in * row_bytes + 16 * (size_t)cg0;
		for (int oh = 0; oh < h_out; oh++) {
			int a, b;
			dwk_range(&rows, oh, &a, &b);
			const int ih0 = oh * sh - pt; /* input row of ki = 0 */
			const __m512i *trow = tab + (size_t)dwk_class(&rows, oh) * cols.n * 4;
			uint8_t *yrow = y + ((size_t)img * h_out + oh) * w_out * c + 16 * (size_t)cg0;
			for (int ow0 = 0; ow0 < w_out; ow0 += DWK_NP) {
				const int n_px = w_out - ow0 < DWK_NP ? w_out - ow0 : DWK_NP;
				__m512i acc[DWK_NP][4];
#pragma GCC unroll 4
				for (int i = 0; i < DWK_NP; i++) {
					int ow = ow0 + i < w_out ? ow0 + i : w_out - 1;
					const __m512i *t = trow + (size_t)dwk_class(&cols, ow) * 4;
#pragma GCC unroll 4
					for (int part = 0; part < 4; part++)
						acc[i][part] = t[part];
				}
				for (int g = a; g < b; g += 4) {
					const uint8_t *rp[4];
					__mmask64 rk[4];
#pragma GCC unroll 4
					for (int r = 0; r < 4; r++) {
						bool in = g + r < b;
						rp[r] = xi + (in ? (size_t)(ih0 + g + r) * row_bytes : 0);
						rk[r] = in ? xk : 0;
					}
					dwk_segment(KW, SW, kw, sw, c, w_in, rp, rk, wc + (size_t)g * kw * 256,
						    ow0 * sw - pl, n_px, acc);
				}
#pragma GCC unroll 4
				for (int i = 0; i < DWK_NP; i++)
					if (i < n_px)
						_mm512_mask_storeu_epi8(yrow + (size_t)(ow0 + i) * c, xk,
									dw4_out(d, acc[i], q, form));
			}
		}
	}
}

#define DWK_ENTRY(NAME, KW, SW)                                                          \
	static __attribute__((noinline)) void NAME(const struct dwk *k_in, int cg0,      \
						   enum rq_form form,                      \
						   const struct rq16 *q_in,                \
						   const __m512i *tab, uint8_t *y)         \
	{                                                                                \
		const struct dwk kl = *k_in;                                             \
		const struct rq16 q[4] = {q_in[0], q_in[1], q_in[2], q_in[3]};           \
		RQ_FORMS(dwk_run_chunk(KW, SW, &kl, cg0, F, q, tab, y));                \
	}
DWK_ENTRY(dwk_chunk_k3s1, 3, 1)
DWK_ENTRY(dwk_chunk_k3s2, 3, 2)
DWK_ENTRY(dwk_chunk_k5s1, 5, 1)
DWK_ENTRY(dwk_chunk_k5s2, 5, 2)
DWK_ENTRY(dwk_chunk_any, 0, 0)
#undef DWK_ENTRY
#undef RQ_FORMS

/* packed: the dwk part of the weights. */
static void dwk_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		    uint8_t *y)
{
	struct dwk k = {.w = packed, .cp = (int)dwk_cp(p->c)};
	k.n_cg = k.cp / 16;
	k.pre = (const int32_t *)(k.w + dwk_w_bytes(p->c, p->kh, p->kw));
	k.sum_abs = (const int32_t *)((const int8_t *)k.pre + dwk_p_bytes(p->c, p->kh, p->kw));
	dwk_axis_init(&k.rows, p->kh, p->stride_h, p->pad_t, p->h_in, p->h_out);
	dwk_axis_init(&k.cols, p->kw, p->stride_w, p->pad_l, p->w_in, p->w_out);
	k.d = (struct dw4){.p = p, .x = x};
	k.d.az = _mm512_set1_epi8((char)p->a_zero);
	k.d.z16 = _mm512_set1_epi16((short)p->c_zero);
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &k.d.o);
	k.d.cmin = _mm512_set1_epi8((char)p->c_min);
	k.d.cmax = _mm512_set1_epi8((char)p->c_max);
	__m512i tab[DWK_MAX_CLASSES * DWK_MAX_CLASSES * 4];
	void (*fn)(const struct dwk *, int, enum rq_form, const struct rq16 *, const __m512i *,
		   uint8_t *) = dwk_chunk_any;
	if (p->kw == 3 && p->stride_w <= 2)
		fn = p->stride_w == 1 ? dwk_chunk_k3s1 : dwk_chunk_k3s2;
	else if (p->kw == 5 && p->stride_w <= 2)
		fn = p->stride_w == 1 ? dwk_chunk_k5s1 : dwk_chunk_k5s2;
	for (int cg0 = 0; cg0 < k.n_cg; cg0 += 4) {
		struct rq16 q[4];
		enum rq_form form = dwk_constants(&k, cg0, q);
		dwk_table(&k, cg0, q, tab);
		fn(&k, cg0, form, q, tab, y);
	}
}

/* --- depthwise: the entry points ------------------------------------------------- */

static size_t dw_base_bytes(int c, int kh, int kw)
{
	return dw4_applies(c, kh, kw) ? dw4_packed_bytes(c, kh, kw) : dw_any_packed_bytes(c, kh, kw);
}

static size_t dw_packed_bytes(int c, int kh, int kw)
{
	return dw_base_bytes(c, kh, kw) + (dwk_packs(c, kh, kw) ? dwk_packed_bytes(c, kh, kw) : 0);
}

static void dw_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	if (dw4_applies(c, kh, kw))
		dw4_pack(c, kh, kw, w, packed);
	else
		dw_any_pack(c, kh, kw, w, packed);
	if (dwk_packs(c, kh, kw))
		dwk_pack(c, kh, kw, w, (int8_t *)packed + dw_base_bytes(c, kh, kw));
}

/* dw3 where it applies (3 x 3, c a multiple of 16); dwk where it applies. */
static bool dw_use_dwk(const struct qdwconv_params *p)
{
	bool col3 = dw4_applies(p->c, p->kh, p->kw) && p->kh == 3 && p->kw == 3 && p->dil_w == 1 &&
		    p->stride_w <= 2;
	return !col3 && dwk_runs(p);
}

static void dw_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		   uint8_t *y)
{
	if (p->n <= 0 || p->h_out <= 0 || p->w_out <= 0 || p->c <= 0)
		return;
	if (dw_use_dwk(p))
		dwk_run(p, x, (const int8_t *)packed + dw_base_bytes(p->c, p->kh, p->kw), y);
	else if (dw4_applies(p->c, p->kh, p->kw))
		dw4_run(p, x, packed, y);
	else
		dw_any_run(p, x, packed, y);
}

const struct qdwconv_ukernel qdwconv_u8s8_64c__avx512vnni = {
	.name = "qdwconv_u8s8_64c__avx512vnni",
	.packed_bytes = dw_packed_bytes,
	.pack = dw_pack,
	.run = dw_run,
};

#else
typedef int q8_avx512vnni_dw_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
