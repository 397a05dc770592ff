/* q8_avx512vnni_w4.c - the AVX-512 VNNI GEMM with 4-bit weights kept two to a
 * byte (qgemm_u8s4_8x32__avx512vnni): half the packed bytes of
 * qgemm_u8s8_8x32__avx512vnni for a layer whose weights all lie in [-8, 7]
 * (a policy's weight bits <= 4), expanded inside the GEMM.
 *
 * Compiled with the flags of q8_avx512vnni.c; results are bit-identical to
 * q8_ref.c (the int32 sums are exact, and requantization and the tile output
 * are q8_avx512vnni_common.h's, the int8 GEMM's own).
 *
 * Packed buffer: a 64-byte header, then the weights in the layout it names.
 *   header: int32 format, n, k (the rest zero);
 *   W4_FMT_INT8:   qgemm_u8s8_8x32__avx512vnni's panels, run by its run();
 *   W4_FMT_NIBBLE: panels of GEMM_NR = 32 output channels, each panel
 *                  [ceil(k/4)][16][4] bytes: for k-group g, byte t of lane i
 *                  (at ((p * K4 + g) * 16 + i) * 4 + t) holds w[32p + i][4g + t]
 *                  in its low nibble and w[32p + 16 + i][4g + t] in its high
 *                  nibble, both two's complement; K is padded to a multiple of
 *                  4 and N to a multiple of 32 with zero weights. One 64-byte
 *                  load gives a k-group of 32 columns, where the int8 panel
 *                  needs two.
 * pack() picks the format from the values and the shape, once: nibbles where
 * every weight lies in [-8, 7], except for the shapes whose int8 tiles keep
 * all the weights in registers (K = 16 with N <= 64, K = 24 or 32: at most
 * 4 KiB of weights, nothing to save, and those tiles ran 1.05-1.5x the 8 x 32
 * ones); int8 otherwise. packed_bytes_for() says how many bytes that is.
 *
 * Expansion: a nibble moved to the top of its byte is 16 times the weight as
 * an int8, so a k-group's weights are v & 0xF0 (columns 16..31) and
 * (v << 4) & 0xF0 (columns 0..15): a vpsllw and two vpandd per 32 columns,
 * no sign extension. The tile accumulates these from 0: every product is 16
 * a * w with |16 w| <= 128, the same bound as int8 weights, so for
 * K <= Q8_K_MAX the sum is exact in int32 (kernels_q8.h) and a multiple of
 * 16; one arithmetic shift right by 4 gives the exact sum, then bias_eff is
 * added in wrapping int32 arithmetic as the other paths add it (starting from
 * 16 * bias could overflow; where it cannot, and requantization is in float,
 * the sums stay 16 x too large and the float scale takes the 1/16 instead:
 * w4_prescale). The tiles and gemv() are the int8 file's with that one
 * change: 8 rows x 32 columns, 16 accumulators, every MR/NB tail; a single
 * row two panels at a time with k in two phases. A block of many rows
 * expands each panel to int8 once instead and runs the int8 tile's loop on
 * it (w4_run_nibbles says when).
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

#define W4_HEADER_BYTES 64
enum { W4_FMT_INT8 = 1, W4_FMT_NIBBLE = 2 };

/* Bytes of one nibble panel: 32 columns x K4 groups x 4 k, two to a byte. */
static size_t w4_panel_bytes(int k)
{
	return (((size_t)k + 3) / 4) * GEMM_NR * 2;
}

/* Whether weights w [n][k] get the nibble layout (see above). */
static bool w4_nibbles(int n, int k, const int8_t *w)
{
	if (n <= 0 || k <= 0 || (k == 16 && n <= 64) || k == 24 || k == 32)
		return false;
	for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
		if (w[i] < -8 || w[i] > 7)
			return false;
	return true;
}

static size_t w4_packed_bytes(int n, int k)
{
	return W4_HEADER_BYTES + qgemm_u8s8_8x32__avx512vnni.packed_bytes(n, k);
}

static size_t w4_packed_bytes_for(int n, int k, const int8_t *w)
{
	if (!w4_nibbles(n, k, w))
		return w4_packed_bytes(n, k);
	return W4_HEADER_BYTES + ((size_t)n + GEMM_NR - 1) / GEMM_NR * w4_panel_bytes(k);
}

static void w4_pack(int n, int k, const int8_t *w, void *packed)
{
	bool nib = w4_nibbles(n, k, w);
	int32_t header[W4_HEADER_BYTES / 4] = {nib ? W4_FMT_NIBBLE : W4_FMT_INT8, n, k};
	memcpy(packed, header, sizeof header);
	uint8_t *out = (uint8_t *)packed + W4_HEADER_BYTES;
	if (!nib) {
		qgemm_u8s8_8x32__avx512vnni.pack(n, k, w, out);
		return;
	}
	size_t panel = w4_panel_bytes(k);
	memset(out, 0, ((size_t)n + GEMM_NR - 1) / GEMM_NR * panel);
	for (int j = 0; j < n; j++) {
		uint8_t *col = out + (size_t)(j / GEMM_NR) * panel + (size_t)(j % 16) * 4;
		int hi = j % GEMM_NR >= 16 ? 4 : 0;
		for (int kk = 0; kk < k; kk++) {
			uint8_t nibble = (uint8_t)w[(size_t)j * k + kk] & 0x0F;
			col[(size_t)(kk / 4) * 64 + kk % 4] |= (uint8_t)(nibble << hi);
		}
	}
}

/* The two 16-column weight vectors (16 x the int8 weights) of a 64-byte
 * nibble group v: w[0] columns 0..15, w[1] columns 16..31 (nb = 2 only). */
static ALWAYS_INLINE void w4_expand(int nb, const uint8_t *p, __m512i w[GEMM_NB])
{
	const __m512i hi = _mm512_set1_epi8((char)0xF0);
	__m512i v = _mm512_loadu_si512(p);
	w[0] = _mm512_and_si512(_mm512_slli_epi16(v, 4), hi);
	if (nb == 2)
		w[1] = _mm512_and_si512(v, hi);
}

/* acc + 4-byte dot products of a (u8) and w (s8) per lane, by the intrinsic:
 * here the common header's asm dpbusd() made GCC 12 put two register copies
 * around every vpdpbusd of the tiles (whose weights are computed, not
 * loaded), and the intrinsic none (the int8 file has it the other way). */
static ALWAYS_INLINE __m512i dpbusd_w4(__m512i acc, __m512i a, __m512i w)
{
	return _mm512_dpbusd_epi32(acc, a, w);
}

/* A zero accumulator of its own: with _mm512_setzero_si512(), one value to
 * GCC, gemv's chains were compiled with register copies per vpdpbusd. */
static ALWAYS_INLINE __m512i zero_acc(void)
{
	__m512i z;
	__asm__ volatile("vpxord %0, %0, %0" : "=v"(z));
	return z;
}

/* The two 16-column int8 weight vectors of k-group g of a panel expanded by
 * w4_expand_panel (w[1] for nb = 2 only). */
static ALWAYS_INLINE void w4_load_expanded(int nb, const uint8_t *p, __m512i w[GEMM_NB])
{
	w[0] = _mm512_loadu_si512(p);
	if (nb == 2)
		w[1] = _mm512_loadu_si512(p + 64);
}

/* 16 x sum -> sum + bias_eff (exact: see the opening comment). */
static ALWAYS_INLINE __m512i w4_finish(__m512i acc16, const struct rq16 *q)
{
	return _mm512_add_epi32(_mm512_srai_epi32(acc16, 4), q->bias);
}

/* Where a tile's weights come from and where its sums start:
 *   W4_LOOP:   nibbles expanded in the k loop, sums 16 x too large, from 0;
 *              shifted right by 4 and the bias added after the loop;
 *   W4_LOOP16: the same from q.bias = 16 x bias_eff, kept 16 x too large:
 *              q's float scales are divided by 16 (w4_prescale);
 *   W4_PANEL:  int8 weights of a panel expanded once (w4_expand_panel),
 *              sums from bias_eff: the int8 tile's loop. */
enum w4_mode { W4_LOOP, W4_LOOP16, W4_PANEL };

/* MR x (16 * NB) tile on panel wp in mode X (above), full K; then
 * requantize and store as gemm_tile does. */
static ALWAYS_INLINE void w4_tile(enum w4_mode X, enum gemm_rq F, int mr, int nb, int k, const uint8_t *a,
				  size_t lda, const uint8_t *wp, const struct rq16 *q,
				  const struct rq_screen *s, const struct rq_out *o,
				  const struct clamp_u8 *cl, uint8_t *c, float *c_f32, size_t off,
				  size_t ldc)
{
	__m512i acc[GEMM_MR][GEMM_NB];
	const uint8_t *ar[GEMM_MR];
#pragma GCC unroll 8
	for (int r = 0; r < mr; r++) {
		ar[r] = a + (size_t)r * lda;
#pragma GCC unroll 8
		for (int b = 0; b < nb; b++)
			acc[r][b] = X == W4_LOOP ? zero_acc() : q[b].bias;
	}
	int k4 = k / 4;
	for (int g = 0; g < k4; g++) {
		__m512i w[GEMM_NB];
		if (X == W4_PANEL)
			w4_load_expanded(nb, wp + (size_t)g * 128, w);
		else
			w4_expand(nb, wp + (size_t)g * 64, w);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_u32(ar[r] + 4 * g));
#pragma GCC unroll 8
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd_w4(acc[r][b], av, w[b]);
		}
	}
	if (k & 3) {
		__m512i w[GEMM_NB];
		if (X == W4_PANEL)
			w4_load_expanded(nb, wp + (size_t)k4 * 128, w);
		else
			w4_expand(nb, wp + (size_t)k4 * 64, w);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_tail(ar[r] + 4 * k4, k & 3));
#pragma GCC unroll 8
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd_w4(acc[r][b], av, w[b]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < mr && X == W4_LOOP; r++)
#pragma GCC unroll 8
		for (int b = 0; b < nb; b++)
			acc[r][b] = w4_finish(acc[r][b], &q[b]);
	gemm_tile_out(F, mr, nb, acc, q, s, o, cl, c, c_f32, off, ldc);
}

#define W4_TILE_CASE(MR_, NB_)                                                           \
	case (MR_) * 4 + (NB_):                                                          \
		w4_tile(X, F, MR_, NB_, k, a, lda, wp, q, s, o, cl, c, c_f32, off, ldc); \
		break

/* One instance per requantization form and weight source (F and X
 * constants inside). */
static ALWAYS_INLINE void w4_tile_mode(enum w4_mode X, enum gemm_rq F, int mr, int nb, int k,
				       const uint8_t *a, size_t lda, const uint8_t *wp,
				       const struct rq16 *q, const struct rq_screen *s,
				       const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
				       float *c_f32, size_t off, size_t ldc)
{
	switch (mr * 4 + nb) {
	W4_TILE_CASE(8, 2); W4_TILE_CASE(8, 1);
	W4_TILE_CASE(7, 2); W4_TILE_CASE(7, 1);
	W4_TILE_CASE(6, 2); W4_TILE_CASE(6, 1);
	W4_TILE_CASE(5, 2); W4_TILE_CASE(5, 1);
	W4_TILE_CASE(4, 2); W4_TILE_CASE(4, 1);
	W4_TILE_CASE(3, 2); W4_TILE_CASE(3, 1);
	W4_TILE_CASE(2, 2); W4_TILE_CASE(2, 1);
	W4_TILE_CASE(1, 2); W4_TILE_CASE(1, 1);
	default:
		__builtin_unreachable();
	}
}

#define W4_FORMS(X)                                                                         \
	switch (form) {                                                                     \
	case GEMM_RQ_F32:                                                                   \
		w4_tile_mode(X, GEMM_RQ_F32, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off, \
			     ldc);                                                          \
		break;                                                                      \
	case GEMM_RQ_SCREEN:                                                                \
		w4_tile_mode(X, GEMM_RQ_SCREEN, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32,   \
			     off, ldc);                                                     \
		break;                                                                      \
	default:                                                                            \
		w4_tile_mode(X, GEMM_RQ_Q31, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off, \
			     ldc);                                                          \
		break;                                                                      \
	}

static void w4_tile_any(enum w4_mode mode, enum gemm_rq form, int mr, int nb, int k,
			const uint8_t *a, size_t lda, const uint8_t *wp, const struct rq16 *q,
			const struct rq_screen *s, const struct rq_out *o,
			const struct clamp_u8 *cl, uint8_t *c, float *c_f32, size_t off,
			size_t ldc)
{
	if (mode == W4_PANEL)
		W4_FORMS(W4_PANEL)
	else if (mode == W4_LOOP16)
		W4_FORMS(W4_LOOP16)
	else
		W4_FORMS(W4_LOOP)
}
#undef W4_FORMS

_Static_assert(GEMM_MR == 8 && GEMM_NB == 2, "w4_tile_any lists the tile shapes");

/* One row: NP panels (NP * NB blocks) at a time, k in two phases, so that
 * 8 independent vpdpbusd chains hide their latency (gemv_panels with one
 * load per panel and k-group). */
static ALWAYS_INLINE void w4_gemv_panels(int np, int nb_last, int k, const uint8_t *a,
					 const uint8_t *wp, size_t panel_bytes,
					 const struct rq16 *q, const struct rq_out *o, uint8_t *c,
					 float *c_f32, size_t off)
{
	enum { NBLK = 2 * GEMM_NB };
	int nblk = (np - 1) * GEMM_NB + nb_last;
	__m512i acc[NBLK][2];
	for (int b = 0; b < nblk; b++)
		{
		acc[b][0] = zero_acc();
		acc[b][1] = zero_acc();
	}
	int k4 = (k + 3) / 4;
	int g = 0;
	for (; g + 2 <= k / 4; g += 2) {
		__m512i a0 = _mm512_set1_epi32(load_u32(a + 4 * g));
		__m512i a1 = _mm512_set1_epi32(load_u32(a + 4 * g + 4));
#pragma GCC unroll 2
		for (int p = 0; p < np; p++) {
			int nb = p == np - 1 ? nb_last : GEMM_NB;
			const uint8_t *wg = wp + (size_t)p * panel_bytes + (size_t)g * 64;
			__m512i w0[GEMM_NB], w1[GEMM_NB];
			if (nb == 2) {
				w4_expand(2, wg, w0);
				w4_expand(2, wg + 64, w1);
			} else {
				w4_expand(1, wg, w0);
				w4_expand(1, wg + 64, w1);
			}
#pragma GCC unroll 2
			for (int b = 0; b < nb; b++) {
				acc[p * GEMM_NB + b][0] = dpbusd_w4(acc[p * GEMM_NB + b][0], a0, w0[b]);
				acc[p * GEMM_NB + b][1] = dpbusd_w4(acc[p * GEMM_NB + b][1], a1, w1[b]);
			}
		}
	}
	for (; g < k4; g++) {
		int rem = k - 4 * g;
		__m512i a0 = _mm512_set1_epi32(rem >= 4 ? load_u32(a + 4 * g)
							: load_tail(a + 4 * g, rem));
#pragma GCC unroll 2
		for (int p = 0; p < np; p++) {
			int nb = p == np - 1 ? nb_last : GEMM_NB;
			__m512i w0[GEMM_NB];
			if (nb == 2)
				w4_expand(2, wp + (size_t)p * panel_bytes + (size_t)g * 64, w0);
			else
				w4_expand(1, wp + (size_t)p * panel_bytes + (size_t)g * 64, w0);
#pragma GCC unroll 2
			for (int b = 0; b < nb; b++)
				acc[p * GEMM_NB + b][0] = dpbusd_w4(acc[p * GEMM_NB + b][0], a0, w0[b]);
		}
	}
	for (int b = 0; b < nblk; b++)
		store16(q[b].f32, w4_finish(_mm512_add_epi32(acc[b][0], acc[b][1]), &q[b]), &q[b],
			o, c, c_f32, off + 16 * (size_t)b);
}

static void w4_gemv(const struct qgemm_params *p, const uint8_t *a, const uint8_t *packed,
		    size_t panel_bytes, const struct rq_out *o, uint8_t *c, float *c_f32)
{
	int n = p->n;
	for (int j0 = 0; j0 < n; j0 += 2 * GEMM_NR) {
		struct rq16 q[2 * GEMM_NB] = {0};
		int n_blocks = 0;
		for (int j = j0; j < n && j < j0 + 2 * GEMM_NR; j += 16, n_blocks++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, n,
				  &q[n_blocks]);
		const uint8_t *wp = packed + (size_t)(j0 / GEMM_NR) * panel_bytes;
		size_t off = (size_t)j0;
		switch (n_blocks) {
		case 4: w4_gemv_panels(2, 2, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		case 3: w4_gemv_panels(2, 1, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		case 2: w4_gemv_panels(1, 2, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		default: w4_gemv_panels(1, 1, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		}
	}
}

/* q for W4_LOOP16 where that is exact, else false: the sums start from
 * 16 x bias_eff and stay 16 x too large, and the float form's scale (or the
 * float output's) is divided by 16. Exact where |bias_eff + sum| < 2^27, so
 * that 16 x it fits int32 (|sum| <= 8 * 255 * K), and every scale / 16 is
 * exact (times 16 gives it back): then float(16 x) = 16 float(x) and the
 * fused multiply-add sees the same real product, so every rounding is the
 * one of the plain form. */
static bool w4_prescale(const struct rq16 *q, int nb, int k, bool deq, struct rq16 *q16)
{
	const __m512 sixteen = _mm512_set1_ps(16.0f), sixteenth = _mm512_set1_ps(0.0625f);
	int64_t lim = (1 << 27) - (int64_t)8 * 255 * k;
	for (int b = 0; b < nb; b++) {
		q16[b] = q[b];
		__m512i mag = _mm512_abs_epi32(q[b].bias);
		if (lim <= 0 || _mm512_mask_cmpge_epu32_mask(q[b].valid, mag,
							     _mm512_set1_epi32((int32_t)lim)))
			return false;
		__m512 *s = deq ? &q16[b].scale : &q16[b].fscale;
		*s = _mm512_mul_ps(*s, sixteenth);
		if (_mm512_mask_cmp_ps_mask(q[b].valid, _mm512_mul_ps(*s, sixteen),
					    deq ? q[b].scale : q[b].fscale, _CMP_NEQ_UQ))
			return false;
		q16[b].bias = _mm512_slli_epi32(q[b].bias, 4);
	}
	return true;
}

/* The nibble layout's GEMM: gemm_run's blocking (rows in blocks that keep
 * GEMM_A_BLOCK_BYTES of A in L2 while every panel passes over them), each row
 * block in one of the modes of w4_tile:
 *   W4_PANEL where the block has more than K / 2 rows and K <= W4_EXPAND_MAX_K
 *   (the stack buffer: at most 32 KiB): one expansion per panel costs about
 *   2.5 / rows of the tiles' time (4 % at 64 rows, K = 784, on Zen 5);
 *   else in the k loop, W4_LOOP16 in the float forms where w4_prescale
 *   allows, W4_LOOP otherwise: the shift and two ANDs per 16 vpdpbusd hide
 *   (Zen 5 has two vpdpbusd pipes beside four vector ALUs), but W4_LOOP's shift
 *   and bias add per accumulator cost MobileNetV2's 1x1 convs (K = 64..256,
 *   hundreds of rows) 5-10 %, which W4_LOOP16 and W4_PANEL do without. */
#define W4_EXPAND_MAX_K 1024
static void w4_run_nibbles(const struct qgemm_params *p, const uint8_t *a, int lda,
			   const uint8_t *packed, uint8_t *c, int ldc)
{
	size_t panel_bytes = w4_panel_bytes(p->k);
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, p->deq_scale != NULL, &o);
	if (p->m == 1) {
		w4_gemv(p, a, packed, panel_bytes, &o, c, p->c_f32);
		return;
	}
	const struct clamp_u8 cl = {p->c_min, p->c_max};
	_Alignas(64) int8_t expanded[W4_EXPAND_MAX_K / 4 * GEMM_NR * 4];
	int mc = GEMM_A_BLOCK_BYTES / (p->k > 0 ? p->k : 1);
	mc = mc < GEMM_MR ? GEMM_MR : mc - mc % GEMM_MR;
	for (int i0 = 0; i0 < p->m; i0 += mc) {
		int i1 = i0 + mc < p->m ? i0 + mc : p->m;
		bool expand = p->k <= W4_EXPAND_MAX_K && 2 * (i1 - i0) > p->k;
		for (int j0 = 0; j0 < p->n; j0 += GEMM_NR) {
			struct rq16 q[GEMM_NB] = {0};
			struct rq_screen s[GEMM_NB] = {0};
			int nb = 0;
			bool screen = !p->rq_scale && !p->deq_scale;
			for (int j = j0; j < p->n && j < j0 + GEMM_NR; j += 16, nb++) {
				rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j,
					  p->n, &q[nb]);
				screen = screen && rq_screen_init(p->mult, p->shift, p->c_zero, j,
								  p->n, &s[nb]);
			}
			enum gemm_rq form = p->rq_scale ? GEMM_RQ_F32
					    : screen   ? GEMM_RQ_SCREEN
						       : GEMM_RQ_Q31;
			const uint8_t *wp = packed + (size_t)(j0 / GEMM_NR) * panel_bytes;
			enum w4_mode mode = W4_LOOP;
			struct rq16 q16[GEMM_NB];
			const struct rq16 *qt = q;
			if (expand) {
				w4_expand_panel((p->k + 3) / 4, wp, expanded);
				wp = (const uint8_t *)expanded;
				mode = W4_PANEL;
			} else if ((p->deq_scale || p->rq_scale) &&
				   w4_prescale(q, nb, p->k, p->deq_scale != NULL, q16)) {
				mode = W4_LOOP16;
				qt = q16;
			}
			for (int i = i0; i < i1; i += GEMM_MR) {
				int mr = i1 - i < GEMM_MR ? i1 - i : GEMM_MR;
				w4_tile_any(mode, form, mr, nb, p->k, a + (size_t)i * lda, (size_t)lda, wp,
					    qt, s, &o, &cl, c, p->c_f32,
					    (size_t)i * ldc + (size_t)j0, (size_t)ldc);
			}
		}
	}
}

static void w4_run(const struct qgemm_params *p, const uint8_t *a, int lda, const void *packed,
		   uint8_t *c, int ldc)
{
	int32_t format;
	memcpy(&format, packed, sizeof format);
	const uint8_t *panels = (const uint8_t *)packed + W4_HEADER_BYTES;
	if (format != W4_FMT_NIBBLE) {
		qgemm_u8s8_8x32__avx512vnni.run(p, a, lda, panels, c, ldc);
		return;
	}
	if (p->m <= 0 || p->n <= 0)
		return;
	w4_run_nibbles(p, a, lda, panels, c, ldc);
}

const struct qgemm_ukernel qgemm_u8s4_8x32__avx512vnni = {
	.name = "qgemm_u8s4_8x32__avx512vnni",
	.packed_bytes = w4_packed_bytes,
	.packed_bytes_for = w4_packed_bytes_for,
	.pack = w4_pack,
	.run = w4_run,
};

#endif
