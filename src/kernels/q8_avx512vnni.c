/* q8_avx512vnni.c - INT8 kernels for AVX-512 with VNNI (vpdpbusd, vpdpwssd).
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni on x86-64 only;
 * q8_dispatch.c calls it only after CPUID and XGETBV said the CPU and the OS
 * support it. Results are bit-identical to q8_ref.c: every sum is exact in
 * wrapping int32 arithmetic and requantization is q8_requant_f32() or
 * q31_requantize() evaluated on 16 lanes (see requant16).
 *
 * GEMM packed weights: panels of GEMM_NR = 32 output channels, each panel
 * [ceil(k/4)][32][4] int8: for a group of 4 k and a column j, the 4 bytes
 * w[j][4g..4g+3] sit together, so one vpdpbusd of a broadcast 4-byte group of
 * a row of A against one 64-byte vector adds 4 products to 16 columns at once.
 * K is padded to a multiple of 4 and N to a multiple of 32 with zero weights.
 * panel p, group g, column j (0..31) byte t is at ((p * K4 + g) * 32 + j) * 4 + t.
 *
 * Micro-kernel qgemm_u8s8_8x32: 8 rows x 32 columns = 16 zmm accumulators,
 * started at bias_eff; per group of 4 k: 2 weight loads, 8 broadcasts, 16
 * vpdpbusd. Rows are blocked so that GEMM_A_BLOCK_BYTES of A stay in L2 while
 * every panel passes over them. A single row (batch-1 fully connected) takes
 * gemv(): two panels at a time, k split in two phases, 8 independent chains.
 * On Zen 4 (one 512-bit vpdpbusd per cycle, 64 MACs) tiles of 4..14 rows x
 * 32..64 columns all ran within noise of each other; 8 x 32 keeps the N
 * tail waste small. K = 16 with N <= 64 (1x1 convs of 16-channel inputs) is
 * the exception, gemm_k16: 4 rows x all N, the 16 weight vectors in
 * registers for the whole call, one broadcast per 4 vpdpbusd (1.3x).
 * The 8 x 32 tiles requantize and store 4 vectors at a time, Q31 screened in
 * float where the shifts allow (see "GEMM tile output" below): their
 * per-vector epilogue had cost 19 % of the peak at K = 256.
 *
 * Convolution (qconv_u8s8_8x32): the same micro-kernel with A read from a
 * padded copy of each input image (made once per image in the scratch, so
 * every window is kernel rows of contiguous bytes and no pixel needs a border
 * row of its own) instead of im2col rows; its packed weights are the GEMM
 * panels for K = kh * (kw*c rounded up to 4) (see conv_run below). With at
 * most 16 output channels a tile is up to 16 pixels of one output row, read
 * through one pointer where the pixel step is a constant (16 channels at
 * stride 1 or 2: ResNet's 16-channel 3x3 convs 1.6x on Zen 5). A
 * single-channel input (a first layer) with dil_w = 1 and stride_w <= 4 runs
 * conv_run_c1 instead, 16 output pixels across the lanes; for c = 1 its
 * weights follow the GEMM panels in the same packed buffer.
 * qconv_u8s8_c1x16__avx512vbmi, the conv of CPUs that also have VBMI, runs
 * single-channel inputs with its own kernel (see "single-channel input with
 * VBMI" below) and every other shape as qconv_u8s8_8x32.
 *
 * Requantization is compiled per form (enum rq_form: float, or Q31 with or
 * without its rare steps), so no kernel tests the form per vector; tile loops
 * carry unroll pragmas so that accumulators, taps and weights stay in
 * registers (GCC 12 otherwise keeps the depthwise taps and the GEMM tile's
 * accumulators on the stack: 2x and 1.4x slower).
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

/* --- GEMM ---------------------------------------------------------------------- */

static size_t gemm_packed_bytes(int n, int k)
{
	size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
	return panels * (((size_t)k + 3) / 4) * GEMM_NR * 4;
}

static void gemm_pack(int n, int k, const int8_t *w, void *packed)
{
	int8_t *out = packed;
	size_t k4 = ((size_t)k + 3) / 4;
	size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
	memset(out, 0, panels * k4 * GEMM_NR * 4);
	for (int j = 0; j < n; j++) {
		int8_t *col = out + ((size_t)(j / GEMM_NR) * k4 * GEMM_NR + j % GEMM_NR) * 4;
		for (int kk = 0; kk < k; kk++)
			col[(size_t)(kk / 4) * GEMM_NR * 4 + kk % 4] = w[(size_t)j * k + kk];
	}
}

/* MR x (16 * NB) tile: rows a[0..MR) (stride lda), panel wp, full K; then
 * requantize and store. MR and NB are constants after inlining, so acc[][]
 * lives in registers. */
static ALWAYS_INLINE void gemm_tile(enum gemm_rq F, int mr, int nb, int k, const uint8_t *a,
				   size_t lda, const int8_t *wp, const struct rq16 *q,
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
			acc[r][b] = q[b].bias;
	}
	int k4 = k / 4;
	for (int g = 0; g < k4; g++) {
		__m512i w[GEMM_NB];
#pragma GCC unroll 8
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(wp + ((size_t)g * GEMM_NR + 16 * b) * 4);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_u32(ar[r] + 4 * g));
#pragma GCC unroll 8
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd(acc[r][b], av, w[b]);
		}
	}
	if (k & 3) {
		__m512i w[GEMM_NB];
#pragma GCC unroll 8
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(wp + ((size_t)k4 * GEMM_NR + 16 * b) * 4);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_tail(ar[r] + 4 * k4, k & 3));
#pragma GCC unroll 8
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd(acc[r][b], av, w[b]);
		}
	}
	gemm_tile_out(F, mr, nb, acc, q, s, o, cl, c, c_f32, off, ldc);
}

#define TILE_CASE(MR_, NB_)                                                            \
	case (MR_) * 4 + (NB_):                                                        \
		gemm_tile(F, MR_, NB_, k, a, lda, wp, q, s, o, cl, c, c_f32, off, ldc);\
		break

/* One instance per requantization form (F a constant inside). */
static ALWAYS_INLINE void gemm_tile_mode(enum gemm_rq F, int mr, int nb, int k,
					 const uint8_t *a, size_t lda, const int8_t *wp,
					 const struct rq16 *q, const struct rq_screen *s,
					 const struct rq_out *o, const struct clamp_u8 *cl,
					 uint8_t *c, float *c_f32, size_t off, size_t ldc)
{
	switch (mr * 4 + nb) {
	TILE_CASE(8, 2); TILE_CASE(8, 1);
	TILE_CASE(7, 2); TILE_CASE(7, 1);
	TILE_CASE(6, 2); TILE_CASE(6, 1);
	TILE_CASE(5, 2); TILE_CASE(5, 1);
	TILE_CASE(4, 2); TILE_CASE(4, 1);
	TILE_CASE(3, 2); TILE_CASE(3, 1);
	TILE_CASE(2, 2); TILE_CASE(2, 1);
	TILE_CASE(1, 2); TILE_CASE(1, 1);
	default:
		__builtin_unreachable();
	}
}

static void gemm_tile_any(enum gemm_rq form, int mr, int nb, int k, const uint8_t *a,
			  size_t lda, const int8_t *wp, const struct rq16 *q,
			  const struct rq_screen *s, const struct rq_out *o,
			  const struct clamp_u8 *cl, uint8_t *c, float *c_f32, size_t off,
			  size_t ldc)
{
	switch (form) {
	case GEMM_RQ_F32:
		gemm_tile_mode(GEMM_RQ_F32, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off, ldc);
		break;
	case GEMM_RQ_SCREEN:
		gemm_tile_mode(GEMM_RQ_SCREEN, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off,
			       ldc);
		break;
	default:
		gemm_tile_mode(GEMM_RQ_Q31, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off, ldc);
		break;
	}
}

_Static_assert(GEMM_MR == 8 && GEMM_NB == 2, "gemm_tile_any lists the tile shapes");

/* One row: NP panels (NP * NB blocks) at a time, k in two phases, so that
 * 8 independent vpdpbusd chains hide their latency. */
static ALWAYS_INLINE void gemv_panels(int np, int nb_last, int k, const uint8_t *a,
				      const int8_t *wp, size_t panel_bytes,
				      const struct rq16 *q, const struct rq_out *o,
				      uint8_t *c, float *c_f32, size_t off)
{
	enum { NBLK = 2 * GEMM_NB };
	int nblk = (np - 1) * GEMM_NB + nb_last;
	__m512i acc[NBLK][2];
	for (int b = 0; b < nblk; b++) {
		acc[b][0] = q[b].bias;
		acc[b][1] = _mm512_setzero_si512();
	}
	int k4 = (k + 3) / 4;
	int g = 0;
	for (; g + 2 <= k / 4; g += 2) {
		__m512i a0 = _mm512_set1_epi32(load_u32(a + 4 * g));
		__m512i a1 = _mm512_set1_epi32(load_u32(a + 4 * g + 4));
		for (int b = 0; b < nblk; b++) {
			const int8_t *wb = wp + (size_t)(b / GEMM_NB) * panel_bytes +
					   ((size_t)g * GEMM_NR + 16 * (b % GEMM_NB)) * 4;
			acc[b][0] = dpbusd(acc[b][0], a0, _mm512_loadu_si512(wb));
			acc[b][1] = dpbusd(acc[b][1], a1,
							_mm512_loadu_si512(wb + GEMM_NR * 4));
		}
	}
	for (; g < k4; g++) {
		int rem = k - 4 * g;
		__m512i a0 = _mm512_set1_epi32(rem >= 4 ? load_u32(a + 4 * g)
							: load_tail(a + 4 * g, rem));
		for (int b = 0; b < nblk; b++) {
			const int8_t *wb = wp + (size_t)(b / GEMM_NB) * panel_bytes +
					   ((size_t)g * GEMM_NR + 16 * (b % GEMM_NB)) * 4;
			acc[b][0] = dpbusd(acc[b][0], a0, _mm512_loadu_si512(wb));
		}
	}
	for (int b = 0; b < nblk; b++)
		store16(q[b].f32, _mm512_add_epi32(acc[b][0], acc[b][1]), &q[b], o, c, c_f32,
			off + 16 * (size_t)b);
}

static void gemv(const struct qgemm_params *p, const uint8_t *a, const int8_t *packed,
		 size_t panel_bytes, const struct rq_out *o, uint8_t *c, float *c_f32)
{
	int n = p->n;
	for (int j0 = 0; j0 < n; j0 += 2 * GEMM_NR) {
		struct rq16 q[2 * GEMM_NB] = {0};
		int n_blocks = 0;
		for (int j = j0; j < n && j < j0 + 2 * GEMM_NR; j += 16, n_blocks++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, n, &q[n_blocks]);
		const int8_t *wp = packed + (size_t)(j0 / GEMM_NR) * panel_bytes;
		size_t off = (size_t)j0;
		switch (n_blocks) {
		case 4: gemv_panels(2, 2, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		case 3: gemv_panels(2, 1, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		case 2: gemv_panels(1, 2, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		default: gemv_panels(1, 1, p->k, a, wp, panel_bytes, q, o, c, c_f32, off); break;
		}
	}
}

/* K = 16 and N <= 64 (a 1x1 conv of a 16-channel input, MobileNetV2's first
 * expansion): all the weights, 4 groups of 4 k x up to 4 blocks of 16
 * columns, stay in registers for the whole call; tiles of 4 rows x N, so that
 * one broadcast of a row's 4 bytes feeds up to 4 vpdpbusd (the 8 x 32 tiles
 * broadcast every row once per panel, and re-read A per panel). */
#define K16_MR 4

static ALWAYS_INLINE void gemm_k16_rows(bool f32, int mr, int nb, const uint8_t *a, size_t lda,
					const __m512i w[4][4], const struct rq16 *q,
					const struct rq_out *o, uint8_t *c, float *c_f32,
					size_t off, size_t ldc)
{
	__m512i acc[K16_MR][4];
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			acc[r][b] = q[b].bias;
#pragma GCC unroll 4
	for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_u32(a + (size_t)r * lda + 4 * g));
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd(acc[r][b], av, w[g][b]);
		}
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store16(f32, acc[r][b], &q[b], o, c, c_f32, off + r * ldc + 16 * b);
}

static ALWAYS_INLINE void gemm_k16_mode(bool F32, int nb, int m, const uint8_t *a, size_t lda,
					const int8_t *packed, size_t panel_bytes,
					const struct rq16 *q, const struct rq_out *o, uint8_t *c,
					float *c_f32, size_t ldc)
{
	__m512i w[4][4];
#pragma GCC unroll 4
	for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[g][b] = _mm512_loadu_si512(packed + (size_t)(b / GEMM_NB) * panel_bytes +
						     ((size_t)g * GEMM_NR + 16 * (b % GEMM_NB)) * 4);
	int i = 0;
	for (; i + K16_MR <= m; i += K16_MR)
		gemm_k16_rows(F32, K16_MR, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			      (size_t)i * ldc, ldc);
	for (; i < m; i++)
		gemm_k16_rows(F32, 1, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			      (size_t)i * ldc, ldc);
}

#define K16_CASE(NB_)                                                                   \
	case NB_:                                                                       \
		if (q[0].f32)                                                           \
			gemm_k16_mode(true, NB_, m, a, lda, packed, panel_bytes, q, o, c,  \
				      c_f32, ldc);                                      \
		else                                                                    \
			gemm_k16_mode(false, NB_, m, a, lda, packed, panel_bytes, q, o, c, \
				      c_f32, ldc);                                      \
		break

static void gemm_k16(int nb, int m, const uint8_t *a, size_t lda, const int8_t *packed,
		     size_t panel_bytes, const struct rq16 *q, const struct rq_out *o,
		     uint8_t *c, float *c_f32, size_t ldc)
{
	switch (nb) {
	K16_CASE(4); K16_CASE(3); K16_CASE(2); K16_CASE(1);
	default:
		__builtin_unreachable();
	}
}

/* K = 24 or 32: gemm_sk_run, after gemm_run. */
#define SK_MR 4
static void gemm_sk_run(const struct qgemm_params *p, const uint8_t *a, int lda,
			const void *packed, size_t panel_bytes, const struct rq_out *o, uint8_t *c,
			int ldc);

static void gemm_run(const struct qgemm_params *p, const uint8_t *a, int lda,
		     const void *packed, uint8_t *c, int ldc)
{
	if (p->m <= 0 || p->n <= 0)
		return;
	size_t panel_bytes = (((size_t)p->k + 3) / 4) * GEMM_NR * 4;
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, p->deq_scale != NULL, &o);
	if (p->m == 1) {
		gemv(p, a, packed, panel_bytes, &o, c, p->c_f32);
		return;
	}
	if (p->k == 16 && p->n <= 64 && p->m >= K16_MR) {
		struct rq16 q[4] = {0};
		int nb = 0;
		for (int j = 0; j < p->n; j += 16, nb++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, p->n, &q[nb]);
		gemm_k16(nb, p->m, a, (size_t)lda, packed, panel_bytes, q, &o, c, p->c_f32,
			 (size_t)ldc);
		return;
	}
	if ((p->k == 24 || p->k == 32) && p->m >= SK_MR) {
		gemm_sk_run(p, a, lda, packed, panel_bytes, &o, c, ldc);
		return;
	}
	const struct clamp_u8 cl = {p->c_min, p->c_max};
	int mc = GEMM_A_BLOCK_BYTES / (p->k > 0 ? p->k : 1);
	mc = mc < GEMM_MR ? GEMM_MR : mc - mc % GEMM_MR;
	for (int i0 = 0; i0 < p->m; i0 += mc) {
		int i1 = i0 + mc < p->m ? i0 + mc : p->m;
		for (int j0 = 0; j0 < p->n; j0 += GEMM_NR) {
			struct rq16 q[GEMM_NB] = {0};
			struct rq_screen s[GEMM_NB] = {0};
			int nb = 0;
			bool screen = !p->rq_scale && !p->deq_scale;
			for (int j = j0; j < p->n && j < j0 + GEMM_NR; j += 16, nb++) {
				rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, p->n,
					  &q[nb]);
				screen = screen && rq_screen_init(p->mult, p->shift, p->c_zero, j,
								  p->n, &s[nb]);
			}
			enum gemm_rq form = p->rq_scale ? GEMM_RQ_F32
					    : screen   ? GEMM_RQ_SCREEN
						       : GEMM_RQ_Q31;
			const int8_t *wp = (const int8_t *)packed +
					   (size_t)(j0 / GEMM_NR) * panel_bytes;
			for (int i = i0; i < i1; i += GEMM_MR) {
				int mr = i1 - i < GEMM_MR ? i1 - i : GEMM_MR;
				gemm_tile_any(form, mr, nb, p->k, a + (size_t)i * lda, (size_t)lda,
					      wp, q, s, &o, &cl, c, p->c_f32,
					      (size_t)i * ldc + (size_t)j0, (size_t)ldc);
			}
		}
	}
}

/* K = 24 or 32 (1x1 convs of 24- and 32-channel inputs, MobileNetV2's
 * expansions) in passes of up to 64 columns: the K = 16 tiles above with 6 or
 * 8 groups of 4 k; GCC keeps part of the pass's weights as memory operands,
 * which the L1 serves. (The same code at K = 16 ran 10 % slower than
 * gemm_k16, hence two.) gemm_run reaches it through the noinline
 * gemm_sk_run: with these loops inlined into gemm_run, its K = 16 tiles
 * ran 10 % slower too. */

static ALWAYS_INLINE void gemm_sk_rows(bool f32, int k4, int mr, int nb, const uint8_t *a,
				       size_t lda, const __m512i w[8][4], const struct rq16 *q,
				       const struct rq_out *o, uint8_t *c, float *c_f32,
				       size_t off, size_t ldc)
{
	__m512i acc[SK_MR][4];
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			acc[r][b] = q[b].bias;
#pragma GCC unroll 8
	for (int g = 0; g < k4; g++)
#pragma GCC unroll 4
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load_u32(a + (size_t)r * lda + 4 * g));
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd(acc[r][b], av, w[g][b]);
		}
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store16(f32, acc[r][b], &q[b], o, c, c_f32, off + r * ldc + 16 * b);
}

/* One pass: columns j0 .. j0 + 16 * nb - 1 (wp: their first panel). */
static ALWAYS_INLINE void gemm_sk_mode(bool F32, int k4, int nb, int m, const uint8_t *a,
				       size_t lda, const int8_t *wp, size_t panel_bytes,
				       const struct rq16 *q, const struct rq_out *o, uint8_t *c,
				       float *c_f32, size_t j0, size_t ldc)
{
	__m512i w[8][4];
#pragma GCC unroll 8
	for (int g = 0; g < k4; g++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[g][b] = _mm512_loadu_si512(wp + (size_t)(b / GEMM_NB) * panel_bytes +
						     ((size_t)g * GEMM_NR + 16 * (b % GEMM_NB)) * 4);
	int i = 0;
	for (; i + SK_MR <= m; i += SK_MR)
		gemm_sk_rows(F32, k4, SK_MR, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			     (size_t)i * ldc + j0, ldc);
	for (; i < m; i++)
		gemm_sk_rows(F32, k4, 1, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			     (size_t)i * ldc + j0, ldc);
}

#define SK_CASE(K4_, NB_)                                                               \
	case (K4_) * 8 + (NB_):                                                         \
		if (q[0].f32)                                                           \
			gemm_sk_mode(true, K4_, NB_, m, a, lda, wp, panel_bytes, q, o, c, \
				     c_f32, j0, ldc);                                   \
		else                                                                    \
			gemm_sk_mode(false, K4_, NB_, m, a, lda, wp, panel_bytes, q, o, \
				     c, c_f32, j0, ldc);                                \
		break

static void gemm_sk(int k4, int nb, int m, const uint8_t *a, size_t lda, const int8_t *wp,
		    size_t panel_bytes, const struct rq16 *q, const struct rq_out *o, uint8_t *c,
		    float *c_f32, size_t j0, size_t ldc)
{
	switch (k4 * 8 + nb) {
	SK_CASE(6, 4); SK_CASE(6, 3); SK_CASE(6, 2); SK_CASE(6, 1);
	SK_CASE(8, 4); SK_CASE(8, 3); SK_CASE(8, 2); SK_CASE(8, 1);
	default:
		__builtin_unreachable();
	}
}

/* gemm_run's K = 24 or 32 case, in passes of up to 64 columns. */
static __attribute__((noinline)) void gemm_sk_run(const struct qgemm_params *p, const uint8_t *a,
						  int lda, const void *packed, size_t panel_bytes,
						  const struct rq_out *o, uint8_t *c, int ldc)
{
	for (int j0 = 0; j0 < p->n; j0 += 64) {
		struct rq16 q[4] = {0};
		int nb = 0;
		for (int j = j0; j < p->n && j < j0 + 64; j += 16, nb++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, p->n,
				  &q[nb]);
		gemm_sk(p->k / 4, nb, p->m, a, (size_t)lda,
			(const int8_t *)packed + (size_t)(j0 / GEMM_NR) * panel_bytes, panel_bytes,
			q, o, c, p->c_f32, (size_t)j0, (size_t)ldc);
	}
}

const struct qgemm_ukernel qgemm_u8s8_8x32__avx512vnni = {
	.name = "qgemm_u8s8_8x32__avx512vnni",
	.packed_bytes = gemm_packed_bytes,
	.pack = gemm_pack,
	.run = gemm_run,
};

/* --- convolution without im2col ------------------------------------------------- */

/* A conv is a GEMM whose row for output pixel i is its receptive field. With
 * dil_w = 1 the kw taps of one kernel row are kw*c contiguous bytes of x, so
 * the kernel reads A straight from x: the packed weights are the GEMM panels
 * for K = kh * kwc4 (each kernel row's kw*c weights padded with zeros to
 * kwc4 = kw*c rounded up to 4), and a row of a tile is (base, ki stride). Only
 * a pixel whose window leaves the input (padding) or has dil_w > 1 has its
 * row assembled in work first, in the same per-kernel-row layout. Rows run
 * over all output pixels of the batch, so tiles are full across image rows
 * and images. Reads of x: 4-byte groups inside the run, the last 1..3 bytes
 * with load_tail; the padding bytes of a row in work are never read. */

/* Output channels per pass of the single-input-channel kernel (conv_run_c1). */
#define C1_NCH 16
/* Its widest output stride: 16 pixels' windows must fit one 64-byte load. */
#define C1_MAX_STRIDE 4
/* Its widest kernel row in groups of 4 taps, and most groups in all (the input
 * vectors of one block of 16 pixels live on the stack: 2 KiB). */
#define C1_MAX_GROUPS 16
#define C1_MAX_TAP_GROUPS 32

static int conv_kwc4(int kw, int c)
{
	return (kw * c + 3) & ~3;
}

/* Bytes of the single-input-channel layout (see conv_run_c1), 0 for c > 1. */
static size_t conv_c1_bytes(int c_out, int kh, int kw, int c)
{
	if (c != 1)
		return 0;
	return (((size_t)c_out + C1_NCH - 1) / C1_NCH) * C1_NCH * (size_t)kh *
	       (((size_t)kw + 3) / 4) * 4;
}

static size_t conv_packed_bytes(int c_out, int kh, int kw, int c)
{
	return gemm_packed_bytes(c_out, kh * conv_kwc4(kw, c)) + conv_c1_bytes(c_out, kh, kw, c);
}

static void conv_pack(int c_out, int kh, int kw, int c, const int8_t *w, void *packed)
{
	int8_t *out = packed;
	int kwc = kw * c, kwc4 = conv_kwc4(kw, c);
	size_t k4 = (size_t)kh * kwc4 / 4;
	memset(out, 0, conv_packed_bytes(c_out, kh, kw, c));
	for (int j = 0; j < c_out; j++) {
		int8_t *col = out + ((size_t)(j / GEMM_NR) * k4 * GEMM_NR + j % GEMM_NR) * 4;
		for (int ki = 0; ki < kh; ki++)
			for (int t = 0; t < kwc; t++) {
				size_t kk = (size_t)ki * kwc4 + t;
				col[kk / 4 * GEMM_NR * 4 + kk % 4] = w[((size_t)j * kh + ki) * kwc + t];
			}
	}
	if (c == 1) {
		/* [ceil(c_out/C1_NCH)][kh][ceil(kw/4)][C1_NCH][4]: per pass of C1_NCH
		 * channels and tap group (ki, g), the dword of taps kj = 4g..4g+3 of
		 * each channel; zero past kw and c_out */
		int8_t *c1 = out + gemm_packed_bytes(c_out, kh * kwc4);
		size_t n_g = ((size_t)kw + 3) / 4, n_t = (size_t)kh * n_g;
		for (int j = 0; j < c_out; j++)
			for (int ki = 0; ki < kh; ki++)
				for (int kj = 0; kj < kw; kj++) {
					size_t t = (size_t)ki * n_g + (size_t)kj / 4;
					c1[(((size_t)(j / C1_NCH) * n_t + t) * C1_NCH + j % C1_NCH) * 4 +
					   kj % 4] = w[((size_t)j * kh + ki) * kw + kj];
				}
	}
}

/* Rows of a conv tile with one 16-channel block (c_out <= 16: 16 pixels x
 * 16 channels, 16 accumulators); with two blocks, GEMM_MR as the GEMM. */
#define CONV_MR1 16
/* Pixels per row of the two-row tiles (28 accumulators). */
#define CONV_MR2 14

/* The padded copy of one image that conv_run reads its windows from: the
 * rows from pad_t above the input down to the last one a window reaches, the
 * columns likewise, a_zero outside the input. */
struct conv_pad {
	int rows, cols;
	bool copy; /* false: every window lies inside x (no padding), read in place */
};

static void conv_pad_geometry(const struct qconv_params *p, struct conv_pad *g)
{
	g->rows = (p->h_out - 1) * p->stride_h + p->dil_h * (p->kh - 1) + 1;
	g->cols = (p->w_out - 1) * p->stride_w + p->dil_w * (p->kw - 1) + 1;
	g->copy = p->pad_t > 0 || p->pad_l > 0 || g->rows > p->h_in || g->cols > p->w_in;
}

/* Windows come from the padded copy unless dil_w > 1 (kernel rows are then
 * not contiguous: per-pixel border rows as before). */
static bool conv_reads_padded(const struct qconv_params *p)
{
	return p->dil_w == 1;
}

static size_t conv_work_bytes(const struct qconv_params *p)
{
	size_t rows = (size_t)CONV_MR1 * p->kh * conv_kwc4(p->kw, p->c);
	if (!conv_reads_padded(p))
		return rows;
	struct conv_pad g;
	conv_pad_geometry(p, &g);
	size_t image = g.copy ? (size_t)g.rows * g.cols * p->c : 0;
	return image > rows ? image : rows;
}

/* MR x (16 * NB) tile of the conv GEMM: row r reads kernel row ki at
 * rb[r] + ki * rs[r] (kwc bytes); wp is the panel. MR up to GEMM_MR with two
 * blocks, CONV_MR1 with one. PS > 0 (a constant): the rows are pixels PS
 * bytes apart, row r at rb[0] + r * PS (one pointer where MR pointers would
 * not fit the general registers). */
static ALWAYS_INLINE void conv_tile(enum gemm_rq F, int mr, int nb, int ps, int kh, int kwc,
				   const uint8_t *const *rb, const size_t *rs, const int8_t *wp,
				   const struct rq16 *q, const struct rq_out *o,
				   const struct clamp_u8 *cl, uint8_t *c, size_t ldc)
{
	__m512i acc[CONV_MR1][GEMM_NB];
#pragma GCC unroll 16
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
		for (int b = 0; b < nb; b++)
			acc[r][b] = q[b].bias;
	int g4 = kwc / 4, tail = kwc & 3, kwc4 = (kwc + 3) & ~3;
	for (int ki = 0; ki < kh; ki++) {
		const uint8_t *ar[CONV_MR1];
#pragma GCC unroll 16
		for (int r = 0; r < mr; r++)
			ar[r] = ps ? rb[0] + (size_t)ki * rs[0] + r * ps : rb[r] + (size_t)ki * rs[r];
		const int8_t *wk = wp + (size_t)ki * kwc4 * GEMM_NR;
		if (ps) {
			/* one pointer, the rows at constant offsets from it (GCC keeps
			 * a register per row for ar[r] + 4 * g: 16 do not fit) */
			const uint8_t *ap = ar[0];
			const int8_t *wg = wk;
			for (int g = 0; g < g4; g++, ap += 4, wg += GEMM_NR * 4) {
				__m512i w = _mm512_loadu_si512(wg);
#pragma GCC unroll 16
				for (int r = 0; r < mr; r++)
					acc[r][0] = dpbusd(acc[r][0], _mm512_set1_epi32(load_u32(ap + r * ps)),
							   w);
			}
		}
		for (int g = 0; g < (ps ? 0 : g4); g++) {
			__m512i w[GEMM_NB];
#pragma GCC unroll 2
			for (int b = 0; b < nb; b++)
				w[b] = _mm512_loadu_si512(wk + ((size_t)g * GEMM_NR + 16 * b) * 4);
#pragma GCC unroll 16
			for (int r = 0; r < mr; r++) {
				__m512i av = _mm512_set1_epi32(load_u32(ar[r] + 4 * g));
#pragma GCC unroll 2
				for (int b = 0; b < nb; b++)
					acc[r][b] = dpbusd(acc[r][b], av, w[b]);
			}
		}
		if (tail) {
			__m512i w[GEMM_NB];
#pragma GCC unroll 2
			for (int b = 0; b < nb; b++)
				w[b] = _mm512_loadu_si512(wk + ((size_t)g4 * GEMM_NR + 16 * b) * 4);
			/* masked: the bytes past the run are neither read nor faulted on */
			__mmask16 tk = (__mmask16)((1u << tail) - 1);
#pragma GCC unroll 16
			for (int r = 0; r < mr; r++) {
				__m512i av = _mm512_broadcastd_epi32(
					_mm_maskz_loadu_epi8(tk, ar[r] + 4 * g4));
#pragma GCC unroll 2
				for (int b = 0; b < nb; b++)
					acc[r][b] = dpbusd(acc[r][b], av, w[b]);
			}
		}
	}
	const struct rq_screen none = {0};
	gemm_tile_store(F, mr, nb, acc, q, &none, o, cl, c, ldc);
}

/* Two output rows of mr <= CONV_MR2 pixels each, one block (2 * mr
 * accumulators): as conv_tile with PS, the second row's windows d2 bytes
 * below the first's, its outputs at c + c2. */
static ALWAYS_INLINE void conv_tile_2rows(enum gemm_rq F, int mr, int ps, int kh, int kwc,
					  const uint8_t *a0, size_t rs, size_t d2,
					  const int8_t *wp, const struct rq16 *q,
					  const struct rq_out *o, const struct clamp_u8 *cl,
					  uint8_t *c, size_t c2, size_t ldc)
{
	__m512i acc[2 * CONV_MR2][GEMM_NB];
#pragma GCC unroll 32
	for (int r = 0; r < 2 * mr; r++)
		acc[r][0] = q[0].bias;
	int g4 = kwc / 4, tail = kwc & 3, kwc4 = (kwc + 3) & ~3;
	for (int ki = 0; ki < kh; ki++) {
		const uint8_t *ap = a0 + (size_t)ki * rs, *bp = ap + d2;
		const int8_t *wg = wp + (size_t)ki * kwc4 * GEMM_NR;
		for (int g = 0; g < g4; g++, ap += 4, bp += 4, wg += GEMM_NR * 4) {
			__m512i w = _mm512_loadu_si512(wg);
#pragma GCC unroll 16
			for (int r = 0; r < mr; r++) {
				acc[r][0] = dpbusd(acc[r][0], _mm512_set1_epi32(load_u32(ap + r * ps)), w);
				acc[mr + r][0] =
					dpbusd(acc[mr + r][0], _mm512_set1_epi32(load_u32(bp + r * ps)), w);
			}
		}
		if (tail) {
			__m512i w = _mm512_loadu_si512(wg);
			/* masked: the bytes past the run are neither read nor faulted on */
			__mmask16 tk = (__mmask16)((1u << tail) - 1);
#pragma GCC unroll 16
			for (int r = 0; r < mr; r++) {
				acc[r][0] = dpbusd(acc[r][0], _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(
								      tk, ap + r * ps)),
						   w);
				acc[mr + r][0] = dpbusd(acc[mr + r][0],
							_mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(
								tk, bp + r * ps)),
							w);
			}
		}
	}
	const struct rq_screen none = {0};
	gemm_tile_store(F, mr, 1, acc, q, &none, o, cl, c, ldc);
	gemm_tile_store(F, mr, 1, acc + mr, q, &none, o, cl, c + c2, ldc);
}

#define CONV_ROW2_CASE(MR_)                                                            \
	case MR_:                                                                      \
		conv_tile_2rows(F, MR_, PS, kh, kwc, a0, rs, d2, wp, q, o, cl, c, c2, ldc); \
		break

static ALWAYS_INLINE void conv_row2_tile_mode(enum gemm_rq F, int PS, int mr, int kh, int kwc,
					      const uint8_t *a0, size_t rs, size_t d2,
					      const int8_t *wp, const struct rq16 *q,
					      const struct rq_out *o, const struct clamp_u8 *cl,
					      uint8_t *c, size_t c2, size_t ldc)
{
	switch (mr) {
	CONV_ROW2_CASE(14); CONV_ROW2_CASE(13); CONV_ROW2_CASE(12); CONV_ROW2_CASE(11);
	CONV_ROW2_CASE(10); CONV_ROW2_CASE(9); CONV_ROW2_CASE(8); CONV_ROW2_CASE(7);
	CONV_ROW2_CASE(6); CONV_ROW2_CASE(5); CONV_ROW2_CASE(4); CONV_ROW2_CASE(3);
	CONV_ROW2_CASE(2); CONV_ROW2_CASE(1);
	default:
		__builtin_unreachable();
	}
}

static void conv_row2_tile_any(int ps, int mr, int kh, int kwc, const uint8_t *a0, size_t rs,
			       size_t d2, const int8_t *wp, const struct rq16 *q,
			       const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
			       size_t c2, size_t ldc)
{
	bool f32 = q[0].f32;
	if (ps == 16 && f32)
		conv_row2_tile_mode(GEMM_RQ_F32, 16, mr, kh, kwc, a0, rs, d2, wp, q, o, cl, c, c2, ldc);
	else if (ps == 16)
		conv_row2_tile_mode(GEMM_RQ_Q31, 16, mr, kh, kwc, a0, rs, d2, wp, q, o, cl, c, c2, ldc);
	else if (f32)
		conv_row2_tile_mode(GEMM_RQ_F32, 32, mr, kh, kwc, a0, rs, d2, wp, q, o, cl, c, c2, ldc);
	else
		conv_row2_tile_mode(GEMM_RQ_Q31, 32, mr, kh, kwc, a0, rs, d2, wp, q, o, cl, c, c2, ldc);
}

#define CONV_TILE_CASE(MR_, NB_)                                                       \
	case (MR_) * 4 + (NB_):                                                        \
		conv_tile(F, MR_, NB_, 0, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);      \
		break

static ALWAYS_INLINE void conv_tile_mode(enum gemm_rq F, int mr, int nb, int kh, int kwc,
					 const uint8_t *const *rb, const size_t *rs,
					 const int8_t *wp, const struct rq16 *q,
					 const struct rq_out *o, const struct clamp_u8 *cl,
					 uint8_t *c, size_t ldc)
{
	switch (mr * 4 + nb) {
	CONV_TILE_CASE(16, 1); CONV_TILE_CASE(15, 1); CONV_TILE_CASE(14, 1);
	CONV_TILE_CASE(13, 1); CONV_TILE_CASE(12, 1); CONV_TILE_CASE(11, 1);
	CONV_TILE_CASE(10, 1); CONV_TILE_CASE(9, 1);
	CONV_TILE_CASE(8, 2); CONV_TILE_CASE(8, 1);
	CONV_TILE_CASE(7, 2); CONV_TILE_CASE(7, 1);
	CONV_TILE_CASE(6, 2); CONV_TILE_CASE(6, 1);
	CONV_TILE_CASE(5, 2); CONV_TILE_CASE(5, 1);
	CONV_TILE_CASE(4, 2); CONV_TILE_CASE(4, 1);
	CONV_TILE_CASE(3, 2); CONV_TILE_CASE(3, 1);
	CONV_TILE_CASE(2, 2); CONV_TILE_CASE(2, 1);
	CONV_TILE_CASE(1, 2); CONV_TILE_CASE(1, 1);
	default:
		__builtin_unreachable();
	}
}

#define CONV_ROW_CASE(MR_)                                                             \
	case MR_:                                                                      \
		conv_tile(F, MR_, 1, PS, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);       \
		break

/* A one-block tile of mr pixels of one output row, PS bytes apart. */
static ALWAYS_INLINE void conv_row_tile_mode(enum gemm_rq F, int PS, int mr, int kh, int kwc,
					     const uint8_t *const *rb, const size_t *rs,
					     const int8_t *wp, const struct rq16 *q,
					     const struct rq_out *o, const struct clamp_u8 *cl,
					     uint8_t *c, size_t ldc)
{
	switch (mr) {
	CONV_ROW_CASE(16); CONV_ROW_CASE(15); CONV_ROW_CASE(14); CONV_ROW_CASE(13);
	CONV_ROW_CASE(12); CONV_ROW_CASE(11); CONV_ROW_CASE(10); CONV_ROW_CASE(9);
	CONV_ROW_CASE(8); CONV_ROW_CASE(7); CONV_ROW_CASE(6); CONV_ROW_CASE(5);
	CONV_ROW_CASE(4); CONV_ROW_CASE(3); CONV_ROW_CASE(2); CONV_ROW_CASE(1);
	default:
		__builtin_unreachable();
	}
}

/* Pixel steps the row tiles are compiled for: 16 channels at stride 1 and 2. */
static bool conv_row_step(int ps)
{
	return ps == 16 || ps == 32;
}

static void conv_row_tile_any(int ps, int mr, int kh, int kwc, const uint8_t *const *rb,
			      const size_t *rs, const int8_t *wp, const struct rq16 *q,
			      const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
			      size_t ldc)
{
	bool f32 = q[0].f32;
	if (ps == 16 && f32)
		conv_row_tile_mode(GEMM_RQ_F32, 16, mr, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
	else if (ps == 16)
		conv_row_tile_mode(GEMM_RQ_Q31, 16, mr, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
	else if (f32)
		conv_row_tile_mode(GEMM_RQ_F32, 32, mr, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
	else
		conv_row_tile_mode(GEMM_RQ_Q31, 32, mr, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
}

static void conv_tile_any(int mr, int nb, int kh, int kwc, const uint8_t *const *rb,
			  const size_t *rs, const int8_t *wp, const struct rq16 *q,
			  const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
			  size_t ldc)
{
	if (q[0].f32)
		conv_tile_mode(GEMM_RQ_F32, mr, nb, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
	else
		conv_tile_mode(GEMM_RQ_Q31, mr, nb, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
}

/* n bytes from src to dst, 64 at a time, the last chunk masked. */
static ALWAYS_INLINE void copy_bytes(uint8_t *dst, const uint8_t *src, int n)
{
	for (; n >= 64; n -= 64, dst += 64, src += 64)
		_mm512_storeu_si512(dst, _mm512_loadu_si512(src));
	if (n > 0) {
		__mmask64 k = (1ull << n) - 1; /* 0 < n < 64 */
		_mm512_mask_storeu_epi8(dst, k, _mm512_maskz_loadu_epi8(k, src));
	}
}

static ALWAYS_INLINE void fill_bytes(uint8_t *dst, __m512i v, int n)
{
	for (; n >= 64; n -= 64, dst += 64)
		_mm512_storeu_si512(dst, v);
	if (n > 0)
		_mm512_mask_storeu_epi8(dst, (1ull << n) - 1, v);
}

/* The row of a pixel whose window leaves the input (or has dil_w > 1):
 * kernel row ki at row + ki * kwc4, taps outside read a_zero. */
static void conv_border_row(const struct qconv_params *p, const uint8_t *xi, int ih0, int iw0,
			    int kwc4, uint8_t *row)
{
	const __m512i az = _mm512_set1_epi8((char)p->a_zero);
	int c = p->c, kwc = p->kw * c;
	for (int ki = 0; ki < p->kh; ki++) {
		int ih = ih0 + ki * p->dil_h;
		uint8_t *dst = row + (size_t)ki * kwc4;
		if (ih < 0 || ih >= p->h_in) {
			fill_bytes(dst, az, kwc);
			continue;
		}
		const uint8_t *src_row = xi + (size_t)ih * p->w_in * c;
		if (p->dil_w == 1) {
			/* taps [lo, hi) are inside: one contiguous run */
			int lo = iw0 < 0 ? -iw0 : 0, hi = p->w_in - iw0;
			lo = lo < p->kw ? lo : p->kw;
			hi = hi > p->kw ? p->kw : hi < lo ? lo : hi;
			fill_bytes(dst, az, lo * c);
			copy_bytes(dst + (size_t)lo * c, src_row + (size_t)(iw0 + lo) * c, (hi - lo) * c);
			fill_bytes(dst + (size_t)hi * c, az, (p->kw - hi) * c);
			continue;
		}
		for (int kj = 0; kj < p->kw; kj++) {
			int iw = iw0 + kj * p->dil_w;
			if (iw >= 0 && iw < p->w_in)
				copy_bytes(dst + (size_t)kj * c, src_row + (size_t)iw * c, c);
			else
				fill_bytes(dst + (size_t)kj * c, az, c);
		}
	}
}

/* --- convolution of a single-channel input (first layers) ------------------------ */

/* With c = 1 the GEMM formulation wastes most of each vpdpbusd (kw*c is 3 or 5
 * bytes) and a 16-column block holds few output channels. Here the lanes are 16
 * output pixels of one output row instead, and the output channels are the
 * accumulators (up to C1_NCH per pass):
 *   acc[j][p] = bias[j] + sum over ki, kj of x'(oh*sh - pt + ki*dh, (ow0+p)*sw - pl + kj) * w[j][ki][kj]
 * where x' reads a_zero outside the input, exactly the GEMM's padded rows, so
 * bias_eff (folded with a_zero over all taps) is the right bias. For kernel row
 * ki and taps kj = 4g..4g+3, lane p needs the 4 input bytes at window offset
 * sw*p + t (t < 4) of a 64-byte window starting at column (ow0*sw - pl + 4g): a
 * masked load (a_zero outside the row) then vpermd (lane L of 128 bits gets
 * dwords sw*L .. sw*L+3) and vpshufb (byte 4q+t <- sw*q+t) build them, for
 * sw <= C1_MAX_STRIDE. One vpdpbusd per output channel with the weight dword
 * broadcast from memory then adds 4 taps to 16 pixels. Requantization is per
 * channel (the same constants in every lane), then 4 channels are packed into a
 * dword per pixel, a 4x4 dword transpose per 128-bit lane gives each pixel's
 * channels contiguous, and each pixel's nch bytes are stored. */

static ALWAYS_INLINE __m512i dpbusd_bcast(__m512i acc, __m512i a, const int8_t *w4)
{
	__asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*(const int32_t *)w4));
	return acc;
}

/* rq16 with every lane holding channel j's constants. */
static void rq16_init_uniform(const int32_t *mult, const int8_t *shift, const float *rq_scale,
			      int j, struct rq16 *q)
{
	q->valid = 0xffff;
	q->bias = _mm512_setzero_si512();
	q->f32 = rq_scale != NULL;
	if (q->f32) {
		q->fscale = _mm512_set1_ps(rq_scale[j]);
		q->any_left = q->any_min_mult = false;
		return;
	}
	q->mult = _mm512_set1_epi32(mult[j]);
	q->mult_odd = _mm512_srli_epi64(q->mult, 32);
	q->any_min_mult = mult[j] == INT32_MIN;
	int s = shift[j];
	q->any_left = s > 0;
	q->left = _mm512_set1_epi32(s > 0 ? s : 0);
	q->right = _mm512_set1_epi32(s > 0 ? 0 : -s);
	q->mask = _mm512_set1_epi32((int32_t)((1ll << (s > 0 ? 0 : -s)) - 1));
	q->half = _mm512_srli_epi32(q->mask, 1);
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

/* One pass: NCH (a multiple of 4, <= C1_NCH) accumulators, channels j0 ..
 * j0 + nch - 1 (nch <= NCH; the others have zero weights and are not stored). */
static ALWAYS_INLINE void conv_c1_pass(int nch_max, enum rq_form form, const struct qconv_params *p,
				       const uint8_t *x, const int8_t *wc1, int j0, int nch,
				       const struct rq16 *q, const struct rq_out *o, uint8_t *y)
{
	enum { NCH_MAX = C1_NCH };
	const int sw = p->stride_w, kh = p->kh, n_g = (p->kw + 3) / 4, n_t = kh * n_g;
	const __m512i az = _mm512_set1_epi8((char)p->a_zero);
	/* vpermd: lane L takes dwords sw*L + d; vpshufb: byte 4q+t <- sw*q + t */
	int32_t perm_idx[16];
	uint8_t shuf_idx[64];
	for (int l = 0; l < 4; l++)
		for (int d = 0; d < 4; d++)
			perm_idx[4 * l + d] = sw * l + d;
	for (int l = 0; l < 4; l++)
		for (int qq = 0; qq < 4; qq++)
			for (int t = 0; t < 4; t++)
				shuf_idx[16 * l + 4 * qq + t] = (uint8_t)(sw * qq + t);
	const __m512i perm = _mm512_loadu_si512(perm_idx), shuf = _mm512_loadu_si512(shuf_idx);
	const __mmask16 store_k = (__mmask16)((1u << nch) - 1);
	const int8_t *wp = wc1 + (size_t)j0 * n_t * 4; /* this pass's [n_t][C1_NCH][4] */
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * p->h_in * p->w_in;
		for (int oh = 0; oh < p->h_out; oh++) {
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * p->c_out + j0;
			for (int ow0 = 0; ow0 < p->w_out; ow0 += 16) {
				int n_px = p->w_out - ow0 < 16 ? p->w_out - ow0 : 16;
				int iw0 = ow0 * sw - p->pad_l;
				/* the input dwords of every (kernel row, tap group) first */
				__mmask64 win_k[C1_MAX_GROUPS];
				for (int g = 0; g < n_g; g++)
					win_k[g] = window_mask(-(iw0 + 4 * g), p->w_in - (iw0 + 4 * g));
				__m512i xv[C1_MAX_TAP_GROUPS];
				for (int ki = 0; ki < kh; ki++) {
					int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
					if (ih < 0 || ih >= p->h_in) {
						for (int g = 0; g < n_g; g++)
							xv[ki * n_g + g] = az;
						continue;
					}
					const uint8_t *row = xi + (size_t)ih * p->w_in;
					for (int g = 0; g < n_g; g++) {
						/* masked-off bytes are neither read nor faulted on */
						const uint8_t *src = (const uint8_t *)((uintptr_t)row +
										      (intptr_t)(iw0 + 4 * g));
						__m512i v = _mm512_mask_loadu_epi8(az, win_k[g], src);
						xv[ki * n_g + g] = _mm512_shuffle_epi8(
							_mm512_permutexvar_epi32(perm, v), shuf);
					}
				}
				__m512i acc[NCH_MAX];
#pragma GCC unroll 16
				for (int j = 0; j < nch_max; j++)
					acc[j] = _mm512_set1_epi32(j < nch ? p->bias[j0 + j] : 0);
				for (int t = 0; t < n_t; t++)
#pragma GCC unroll 16
					for (int j = 0; j < nch_max; j++)
						acc[j] = dpbusd_bcast(acc[j], xv[t],
								      wp + ((size_t)t * C1_NCH + j) * 4);
				/* requantize, 4 channels per dword, then per pixel */
				__m512i d[NCH_MAX / 4];
#pragma GCC unroll 4
				for (int k4 = 0; k4 < nch_max / 4; k4++) {
					d[k4] = _mm512_setzero_si512();
#pragma GCC unroll 4
					for (int t = 0; t < 4; t++) {
						int j = 4 * k4 + t;
						if (j >= nch)
							break;
						__m512i r = form == RQ_F32
								    ? requant16_f32(acc[j], &q[j], o)
								: form == RQ_LEAN
								    ? requant16_lean(acc[j], &q[j], o)
								    : requant16_q31(acc[j], &q[j], o);
						d[k4] = _mm512_or_si512(d[k4], _mm512_slli_epi32(r, 8 * t));
					}
				}
				__m512i dd[4];
#pragma GCC unroll 4
				for (int k4 = 0; k4 < 4; k4++)
					dd[k4] = k4 < nch_max / 4 ? d[k4] : _mm512_setzero_si512();
				__m512i t0 = _mm512_unpacklo_epi32(dd[0], dd[1]);
				__m512i t1 = _mm512_unpackhi_epi32(dd[0], dd[1]);
				__m512i t2 = _mm512_unpacklo_epi32(dd[2], dd[3]);
				__m512i t3 = _mm512_unpackhi_epi32(dd[2], dd[3]);
				/* u[qq], 128-bit lane l: the channels of pixel 4l + qq */
				__m512i u[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
						_mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
				uint8_t *yo = yrow + (size_t)ow0 * p->c_out;
				size_t ys = (size_t)p->c_out;
#define C1_STORE_LANE(L)                                                                       \
	for (int qq = 0; qq < 4 && 4 * (L) + qq < n_px; qq++)                                  \
		_mm_mask_storeu_epi8(yo + (4 * (L) + qq) * ys, store_k,                        \
				     _mm512_extracti32x4_epi32(u[qq], L))
				C1_STORE_LANE(0);
				C1_STORE_LANE(1);
				C1_STORE_LANE(2);
				C1_STORE_LANE(3);
#undef C1_STORE_LANE
			}
		}
	}
}

static void conv_run_c1(const struct qconv_params *p, const uint8_t *x, const int8_t *wc1,
			uint8_t *y)
{
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	for (int j0 = 0; j0 < p->c_out; j0 += C1_NCH) {
		int nch = p->c_out - j0 < C1_NCH ? p->c_out - j0 : C1_NCH;
		struct rq16 q[C1_NCH];
		for (int j = 0; j < nch; j++)
			rq16_init_uniform(p->mult, p->shift, p->rq_scale, j0 + j, &q[j]);
		enum rq_form form = rq_form_of(q, nch);
#define C1_PASSES(F)                                                               \
	do {                                                                       \
		if (nch <= 4)                                                      \
			conv_c1_pass(4, F, p, x, wc1, j0, nch, q, &o, y);          \
		else if (nch <= 8)                                                 \
			conv_c1_pass(8, F, p, x, wc1, j0, nch, q, &o, y);          \
		else if (nch <= 12)                                                \
			conv_c1_pass(12, F, p, x, wc1, j0, nch, q, &o, y);         \
		else                                                               \
			conv_c1_pass(16, F, p, x, wc1, j0, nch, q, &o, y);         \
	} while (0)
		if (form == RQ_F32)
			C1_PASSES(RQ_F32);
		else if (form == RQ_LEAN)
			C1_PASSES(RQ_LEAN);
		else
			conv_c1_pass(16, RQ_FULL, p, x, wc1, j0, nch, q, &o, y);
#undef C1_PASSES
	}
}

/* Requantization constants cached per call for this many 16-channel blocks
 * (256 output channels; beyond, they are set up per tile). */
#define CONV_RQ_BLOCKS 16

/* Image xi padded as g says into dst (rows of g->cols * c bytes). */
static void conv_pad_image(const struct qconv_params *p, const struct conv_pad *g,
			   const uint8_t *xi, uint8_t *dst)
{
	const __m512i az = _mm512_set1_epi8((char)p->a_zero);
	int c = p->c, row = g->cols * c;
	/* columns [lo, hi) of a padded row are inside the input */
	int lo = p->pad_l < g->cols ? p->pad_l : g->cols;
	int hi = p->pad_l + p->w_in < g->cols ? p->pad_l + p->w_in : g->cols;
	hi = hi > lo ? hi : lo;
	for (int r = 0; r < g->rows; r++, dst += row) {
		int ih = r - p->pad_t;
		if (ih < 0 || ih >= p->h_in) {
			fill_bytes(dst, az, row);
			continue;
		}
		fill_bytes(dst, az, lo * c);
		copy_bytes(dst + (size_t)lo * c, xi + ((size_t)ih * p->w_in + (lo - p->pad_l)) * c,
			   (hi - lo) * c);
		fill_bytes(dst + (size_t)hi * c, az, (g->cols - hi) * c);
	}
}

/* The GEMM formulation, image by image: output pixel i of the image is row
 * i, its kernel row ki the kwc contiguous bytes of the window's row ki in
 * the padded copy (or in x, or a border row when dil_w > 1). Tiles of
 * CONV_MR1 pixels when c_out <= 16, else GEMM_MR pixels x 32 channels. */
static void conv_run(const struct qconv_params *p, const uint8_t *x, const void *packed,
		     uint8_t *y)
{
	int64_t m = (int64_t)p->h_out * p->w_out;
	if (m <= 0 || p->c_out <= 0 || p->n <= 0)
		return;
	int kwc = p->kw * p->c, kwc4 = conv_kwc4(p->kw, p->c);
	size_t k_row = (size_t)p->kh * kwc4;
	size_t panel_bytes = k_row / 4 * GEMM_NR * 4;
	if (p->c == 1 && p->dil_w == 1 && p->stride_w <= C1_MAX_STRIDE &&
	    p->kw <= 4 * C1_MAX_GROUPS && p->kh * ((p->kw + 3) / 4) <= C1_MAX_TAP_GROUPS) {
		conv_run_c1(p, x, (const int8_t *)packed + gemm_packed_bytes(p->c_out, (int)k_row), y);
		return;
	}
	size_t x_image = (size_t)p->h_in * p->w_in * p->c, x_pixel_row = (size_t)p->w_in * p->c;
	int n_blocks = (p->c_out + 15) / 16;
	int tile_m = p->c_out <= 16 ? CONV_MR1 : GEMM_MR;
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	const struct clamp_u8 cl = {p->c_min, p->c_max};
	struct rq16 qc[CONV_RQ_BLOCKS];
	for (int b = 0; b < n_blocks && b < CONV_RQ_BLOCKS; b++)
		rq16_init(p->bias, p->mult, p->shift, p->rq_scale, NULL, 16 * b, p->c_out, &qc[b]);
	const bool padded = conv_reads_padded(p);
	struct conv_pad g;
	conv_pad_geometry(p, &g);
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * x_image;
		/* windows of the padded image: pixel (oh, ow) starts at (oh*sh, ow*sw) */
		const uint8_t *base = xi;
		size_t base_row = x_pixel_row;
		if (padded && g.copy) {
			conv_pad_image(p, &g, xi, p->work);
			base = p->work;
			base_row = (size_t)g.cols * p->c;
		}
		uint8_t *yi = y + (size_t)img * m * p->c_out;
		int ps = p->stride_w * p->c;
		if (padded && p->c_out <= 16 && conv_row_step(ps)) {
			/* each output row in near-equal tiles of at most CONV_MR1 pixels */
			int n_t = (p->w_out + CONV_MR1 - 1) / CONV_MR1;
			int per = (p->w_out + n_t - 1) / n_t;
			size_t rs = (size_t)p->dil_h * base_row;
			/* two output rows at a time where a row's tiles are short enough */
			int rows = per <= CONV_MR2 ? 2 : 1;
			for (int oh = 0; oh < p->h_out; oh += rows) {
				int nr = p->h_out - oh < rows ? p->h_out - oh : rows;
				for (int ow0 = 0; ow0 < p->w_out; ow0 += per) {
					int mr = p->w_out - ow0 < per ? p->w_out - ow0 : per;
					const uint8_t *rb = base + (size_t)oh * p->stride_h * base_row +
							    (size_t)ow0 * ps;
					uint8_t *yo = yi + ((size_t)oh * p->w_out + ow0) * p->c_out;
					if (nr == 2)
						conv_row2_tile_any(ps, mr, p->kh, kwc, rb, rs,
								   (size_t)p->stride_h * base_row, packed,
								   qc, &o, &cl, yo,
								   (size_t)p->w_out * p->c_out,
								   (size_t)p->c_out);
					else
						conv_row_tile_any(ps, mr, p->kh, kwc, &rb, &rs, packed,
								  qc, &o, &cl, yo, (size_t)p->c_out);
				}
			}
			continue;
		}
		int oh = 0, ow = 0;
		for (int64_t i0 = 0; i0 < m; i0 += tile_m) {
			int mr = m - i0 < tile_m ? (int)(m - i0) : tile_m;
			const uint8_t *rb[CONV_MR1];
			size_t rs[CONV_MR1];
			for (int r = 0; r < mr; r++) {
				if (padded) {
					rb[r] = base + (size_t)oh * p->stride_h * base_row +
						(size_t)ow * p->stride_w * p->c;
					rs[r] = (size_t)p->dil_h * base_row;
				} else {
					int ih0 = oh * p->stride_h - p->pad_t;
					int iw0 = ow * p->stride_w - p->pad_l;
					uint8_t *row = p->work + (size_t)r * k_row;
					conv_border_row(p, xi, ih0, iw0, kwc4, row);
					rb[r] = row;
					rs[r] = (size_t)kwc4;
				}
				if (++ow == p->w_out) {
					ow = 0;
					oh++;
				}
			}
			for (int j0 = 0; j0 < p->c_out; j0 += GEMM_NR) {
				int b0 = j0 / 16, nb = p->c_out - j0 > 16 ? 2 : 1;
				struct rq16 qt[GEMM_NB];
				const struct rq16 *q = qc + b0;
				if (b0 + nb > CONV_RQ_BLOCKS) {
					for (int b = 0; b < nb; b++)
						rq16_init(p->bias, p->mult, p->shift, p->rq_scale, NULL,
							  j0 + 16 * b, p->c_out, &qt[b]);
					q = qt;
				}
				conv_tile_any(mr, nb, p->kh, kwc, rb, rs,
					      (const int8_t *)packed + (size_t)(j0 / GEMM_NR) * panel_bytes,
					      q, &o, &cl, yi + (size_t)i0 * p->c_out + j0,
					      (size_t)p->c_out);
			}
		}
	}
}

const struct qconv_ukernel qconv_u8s8_8x32__avx512vnni = {
	.name = "qconv_u8s8_8x32__avx512vnni",
	.packed_bytes = conv_packed_bytes,
	.pack = conv_pack,
	.work_bytes = conv_work_bytes,
	.run = conv_run,
};

/* --- convolution of a single-channel input with VBMI (first layers) -------------- */

/* conv_run_c1 spends a vpdpbusd on 4 taps of one kernel row, so a 5x5 kernel
 * takes 10 per output channel where 7 would do (25 taps), and its outputs go
 * out through a 4x4 transpose and 16 stores of a few bytes per 16 pixels.
 * With AVX-512 VBMI (vpermt2b: any 64 of 128 bytes) qconv_u8s8_c1x16__avx512vbmi
 * flattens the kernel instead: tap group g is taps 4g..4g+3 of the kh*kw taps
 * in row-major order (zero weights past the last), and lane p of group g's
 * input vector gets those taps' bytes for output pixel ow0 + p, picked by one
 * vpermt2b from the 64-byte windows of the kernel rows the group touches (at
 * most two, as kw >= 3). The window of kernel row ki is a masked load at
 * column ow0*sw - pl, a_zero outside the input, so bias_eff is the right bias
 * (as in conv_run_c1); lane p's tap kj is its byte sw*p + kj*dw, inside the
 * window when 15*sw + (kw-1)*dw < 64. Then one vpdpbusd per output channel
 * with the channel's weight dword broadcast: all c_out <= 16 channels in one
 * pass. Requantized per channel, 4 channels at a time are narrowed by packs
 * into bytes A[k] (byte 16L + 4cc + q = channel 4k + cc of pixel 4L + q), and
 * vpermt2b interleaves them into the 16 pixels' c_out bytes each, contiguous
 * in NHWC: 64-byte stores (LeNet's 5x5 conv1: 1.7x).
 * Packed weights: conv_pack's layout (for the shapes this kernel leaves to
 * conv_run), then [ceil(kh*kw/4)][16][4] int8: group g, channel j, byte t is
 * w[j][4g + t] (zero past kh*kw taps and c_out channels).
 * Its functions carry target("avx512vbmi"); q8_conv_for() hands this kernel
 * out only where the CPU has VBMI besides the avx512vnni path. */

#define VBMI __attribute__((target("avx512vbmi")))
#define C1V_MAX_CH 16     /* output channels: one pass */
#define C1V_MAX_GROUPS 16 /* kh*kw <= 64 taps */
#define C1V_MAX_KH 21     /* kw >= 3 and kh*kw <= 64 */

static int c1v_groups(int kh, int kw)
{
	return (kh * kw + 3) / 4;
}

static bool c1v_packs(int c_out, int kh, int kw, int c)
{
	return c == 1 && c_out <= C1V_MAX_CH && kh * kw <= 4 * C1V_MAX_GROUPS;
}

static bool c1v_applies(const struct qconv_params *p)
{
	return c1v_packs(p->c_out, p->kh, p->kw, p->c) && p->kw >= 3 && p->kh <= C1V_MAX_KH &&
	       15 * p->stride_w + (p->kw - 1) * p->dil_w < 64;
}

static size_t c1v_packed_bytes(int c_out, int kh, int kw, int c)
{
	return conv_packed_bytes(c_out, kh, kw, c) +
	       (c1v_packs(c_out, kh, kw, c) ? (size_t)c1v_groups(kh, kw) * C1V_MAX_CH * 4 : 0);
}

static void c1v_pack(int c_out, int kh, int kw, int c, const int8_t *w, void *packed)
{
	conv_pack(c_out, kh, kw, c, w, packed);
	if (!c1v_packs(c_out, kh, kw, c))
		return;
	int8_t *wv = (int8_t *)packed + conv_packed_bytes(c_out, kh, kw, c);
	int n_taps = kh * kw;
	memset(wv, 0, (size_t)c1v_groups(kh, kw) * C1V_MAX_CH * 4);
	for (int j = 0; j < c_out; j++)
		for (int t = 0; t < n_taps; t++)
			wv[((size_t)(t / 4) * C1V_MAX_CH + j) * 4 + t % 4] = w[(size_t)j * n_taps + t];
}

/* All channels (nch = c_out <= NCH, a multiple of 4; the rest have zero
 * weights and are not stored) in requantization form FORM. */
VBMI static ALWAYS_INLINE void c1v_pass(int nch_max, enum rq_form form,
					const struct qconv_params *p, const uint8_t *x,
					const int8_t *wv, const struct rq16 *q,
					const struct rq_out *o, uint8_t *y)
{
	enum { NCH_MAX = C1V_MAX_CH };
	const int kh = p->kh, kw = p->kw, n_taps = kh * kw, n_g = c1v_groups(kh, kw);
	const int nch = p->c_out;
	const __m512i az = _mm512_set1_epi8((char)p->a_zero);
	/* group g: vpermt2b of the windows of kernel rows lo[g] and lo[g] + 1 */
	__m512i gidx[C1V_MAX_GROUPS];
	int lo[C1V_MAX_GROUPS];
	for (int g = 0; g < n_g; g++) {
		uint8_t b[64];
		lo[g] = 4 * g / kw;
		for (int px = 0; px < 16; px++)
			for (int t = 0; t < 4; t++) {
				int tap = 4 * g + t, ki = tap / kw, kj = tap % kw;
				b[4 * px + t] = tap < n_taps ? (uint8_t)((ki - lo[g]) * 64 +
									 p->stride_w * px + kj * p->dil_w)
							     : 0;
			}
		gidx[g] = _mm512_loadu_si512(b);
	}
	/* output chunk c, byte i: pixel o / nch, channel o % nch (o = 64c + i) of
	 * A[channel / 4] (bit 7 of the index: A[2..3] rather than A[0..1]) */
	__m512i oidx[NCH_MAX / 4];
	for (int c = 0; c < nch_max / 4; c++) {
		uint8_t b[64];
		for (int i = 0; i < 64; i++) {
			int ob = 64 * c + i, px = ob / nch, ch = ob % nch;
			b[i] = ob < 16 * nch ? (uint8_t)(ch / 4 * 64 + 16 * (px / 4) + 4 * (ch % 4) +
							 px % 4)
					     : 0;
		}
		oidx[c] = _mm512_loadu_si512(b);
	}
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * p->h_in * p->w_in;
		for (int oh = 0; oh < p->h_out; oh++) {
			const uint8_t *rowp[C1V_MAX_KH];
			bool row_in[C1V_MAX_KH];
			for (int ki = 0; ki < kh; ki++) {
				int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
				row_in[ki] = ih >= 0 && ih < p->h_in;
				rowp[ki] = xi + (row_in[ki] ? (size_t)ih * p->w_in : 0);
			}
			uint8_t *yrow = y + ((size_t)img * p->h_out + oh) * p->w_out * nch;
			for (int ow0 = 0; ow0 < p->w_out; ow0 += 16) {
				int n_px = p->w_out - ow0 < 16 ? p->w_out - ow0 : 16;
				int iw0 = ow0 * p->stride_w - p->pad_l;
				__mmask64 k = window_mask(-iw0, p->w_in - iw0);
				__m512i win[C1V_MAX_KH + 1];
				for (int ki = 0; ki < kh; ki++)
					/* masked-off bytes are neither read nor faulted on */
					win[ki] = row_in[ki] ? _mm512_mask_loadu_epi8(
								       az, k,
								       (const uint8_t *)((uintptr_t)rowp[ki] +
											 (intptr_t)iw0))
							     : az;
				win[kh] = az;
				__m512i acc[NCH_MAX];
#pragma GCC unroll 16
				for (int j = 0; j < nch_max; j++)
					acc[j] = _mm512_set1_epi32(j < nch ? p->bias[j] : 0);
				for (int g = 0; g < n_g; g++) {
					__m512i xv = _mm512_permutex2var_epi8(win[lo[g]], gidx[g],
									      win[lo[g] + 1]);
#pragma GCC unroll 16
					for (int j = 0; j < nch_max; j++)
						acc[j] = dpbusd_bcast(acc[j], xv,
								      wv + ((size_t)g * C1V_MAX_CH + j) * 4);
				}
				__m512i r[NCH_MAX];
#pragma GCC unroll 16
				for (int j = 0; j < nch_max; j++)
					r[j] = j >= nch		? _mm512_setzero_si512()
					       : form == RQ_F32 ? requant16_f32(acc[j], &q[j], o)
					       : form == RQ_LEAN
						       ? requant16_lean(acc[j], &q[j], o)
						       : requant16_q31(acc[j], &q[j], o);
				__m512i a[NCH_MAX / 4];
#pragma GCC unroll 4
				for (int k4 = 0; k4 < nch_max / 4; k4++)
					a[k4] = _mm512_packus_epi16(
						_mm512_packus_epi32(r[4 * k4], r[4 * k4 + 1]),
						_mm512_packus_epi32(r[4 * k4 + 2], r[4 * k4 + 3]));
				uint8_t *yo = yrow + (size_t)ow0 * nch;
				int n_bytes = n_px * nch;
#pragma GCC unroll 4
				for (int c = 0; c < nch_max / 4; c++) {
					int rem = n_bytes - 64 * c;
					if (rem <= 0)
						break;
					__m512i v = _mm512_permutex2var_epi8(a[0], oidx[c],
									     nch_max > 4 ? a[1] : a[0]);
					if (nch_max > 8)
						v = _mm512_mask_blend_epi8(
							_mm512_movepi8_mask(oidx[c]), v,
							_mm512_permutex2var_epi8(
								a[2], oidx[c], nch_max > 12 ? a[3] : a[2]));
					if (rem >= 64)
						_mm512_storeu_si512(yo + 64 * c, v);
					else
						_mm512_mask_storeu_epi8(yo + 64 * c, (1ull << rem) - 1, v);
				}
			}
		}
	}
}

VBMI static void c1v_run(const struct qconv_params *p, const uint8_t *x, const int8_t *wv,
			 uint8_t *y)
{
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	struct rq16 q[C1V_MAX_CH];
	if (p->c_out < 1)
		return; /* (qconv_u8s8_c1x16 applies to 1..C1V_MAX_CH outputs) */
	for (int j = 0; j < p->c_out; j++)
		rq16_init_uniform(p->mult, p->shift, p->rq_scale, j, &q[j]);
	enum rq_form form = rq_form_of(q, p->c_out);
	int nch4 = (p->c_out + 3) / 4 * 4;
#define C1V_PASS(NCH, F)                                            \
	case (NCH) * 4 + (F):                                       \
		c1v_pass(NCH, F, p, x, wv, q, &o, y);               \
		break
	switch (nch4 * 4 + (int)form) {
	C1V_PASS(4, RQ_F32); C1V_PASS(8, RQ_F32); C1V_PASS(12, RQ_F32); C1V_PASS(16, RQ_F32);
	C1V_PASS(4, RQ_LEAN); C1V_PASS(8, RQ_LEAN); C1V_PASS(12, RQ_LEAN); C1V_PASS(16, RQ_LEAN);
	default:
		c1v_pass(16, RQ_FULL, p, x, wv, q, &o, y);
		break;
	}
#undef C1V_PASS
}

static void c1v_conv_run(const struct qconv_params *p, const uint8_t *x, const void *packed,
			 uint8_t *y)
{
	if (p->n <= 0 || p->h_out <= 0 || p->w_out <= 0 || p->c_out <= 0)
		return;
	if (!c1v_applies(p)) {
		conv_run(p, x, packed, y);
		return;
	}
	c1v_run(p, x, (const int8_t *)packed + conv_packed_bytes(p->c_out, p->kh, p->kw, p->c), y);
}

const struct qconv_ukernel qconv_u8s8_c1x16__avx512vbmi = {
	.name = "qconv_u8s8_c1x16__avx512vbmi",
	.packed_bytes = c1v_packed_bytes,
	.pack = c1v_pack,
	.work_bytes = conv_work_bytes,
	.run = c1v_conv_run,
};

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
 * (dword 4L + k holds group k's dword L); one vpermd puts them in order. */
static ALWAYS_INLINE __m512i pack64(const __m512i r[4], __m512i z16, __m512i cmin, __m512i cmax)
{
	const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
	__m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(r[0], r[1]), z16);
	__m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(r[2], r[3]), z16);
	__m512i v = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(ab, cd));
	return _mm512_min_epu8(_mm512_max_epu8(v, cmin), cmax);
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

/* 64 codes a time through pack64 where the sums fit (|f| < 2^30), else 16. */
void qadd_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		     uint8_t *y)
{
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	size_t i = 0;
	if (f32_fits(code_span(p->a_zero) * fabs((double)p->a_scale) +
		     code_span(p->b_zero) * fabs((double)p->b_scale) + 1.0) &&
	    p->c_zero >= -32768 && p->c_zero <= 32767) {
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
void qmul_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		     uint8_t *y)
{
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
			  const struct qmul_params *p, uint8_t *y)
{
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
typedef int q8_avx512vnni_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
