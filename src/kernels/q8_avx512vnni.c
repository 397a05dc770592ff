/* q8_avx512vnni.c - INT8 GEMM for AVX-512 with VNNI (vpdpbusd, vpdpwssd).
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
 * float where the shifts allow ("GEMM tile output" in
 * q8_avx512vnni_common.h): their per-vector epilogue had cost 19 % of the
 * peak at K = 256.
 *
 * Requantization is compiled per form (enum rq_form: float, or Q31 with or
 * without its rare steps), so no kernel tests the form per vector; tile loops
 * carry unroll pragmas so that accumulators, taps and weights stay in
 * registers (GCC 12 otherwise keeps the depthwise taps and the GEMM tile's
 * accumulators on the stack: 2x and 1.4x slower).
 *
 * The convolutions are in q8_avx512vnni_conv.c, the depthwise ones in
 * q8_avx512vnni_dw.c, the element-wise kernels (Add, Mul, channel sums, the
 * uint8 MatMul, quantizing float, Softmax, LayerNormalization) in
 * q8_avx512vnni_elt.c: files that a build's cores compile side by side.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

/* --- GEMM ---------------------------------------------------------------------- */

/* The panels, then sum_k |w[j][k]| per column j (int32; gemm_float_form). */
static size_t gemm_packed_total(int n, int k)
{
	return gemm_packed_bytes(n, k) + (n > 0 ? (size_t)n : 0) * sizeof(int32_t);
}

static void gemm_pack(int n, int k, const int8_t *w, void *packed)
{
	int8_t *out = packed;
	size_t k4 = ((size_t)k + 3) / 4;
	size_t panels = ((size_t)n + GEMM_NR - 1) / GEMM_NR;
	memset(out, 0, panels * k4 * GEMM_NR * 4);
	int32_t *sum_abs = (int32_t *)(out + gemm_packed_bytes(n, k));
	for (int j = 0; j < n; j++) {
		int8_t *col = out + ((size_t)(j / GEMM_NR) * k4 * GEMM_NR + j % GEMM_NR) * 4;
		int64_t sum = 0;
		for (int kk = 0; kk < k; kk++) {
			col[(size_t)(kk / 4) * GEMM_NR * 4 + kk % 4] = w[(size_t)j * k + kk];
			sum += abs(w[(size_t)j * k + kk]);
		}
		sum_abs[j] = sum < INT32_MAX ? (int32_t)sum : INT32_MAX; /* then it cannot fit */
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
	case GEMM_RQ_F32_FIT:
		gemm_tile_mode(GEMM_RQ_F32_FIT, mr, nb, k, a, lda, wp, q, s, o, cl, c, c_f32, off,
			       ldc);
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

static ALWAYS_INLINE void gemm_k16_rows(enum gemm_rq F, int mr, int nb, const uint8_t *a, size_t lda,
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
	if (!o->deq && nb == 4) { /* (fewer blocks: the packs would be mostly zeros) */
#pragma GCC unroll 4
		for (int r = 0; r < mr; r++)
			store_row64(F, acc[r], q, o, c + off + r * ldc);
		return;
	}
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store16(F != GEMM_RQ_Q31, acc[r][b], &q[b], o, c, c_f32,
				off + r * ldc + 16 * b);
}

static ALWAYS_INLINE void gemm_k16_mode(enum gemm_rq F, int nb, int m, const uint8_t *a, size_t lda,
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
		gemm_k16_rows(F, K16_MR, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			      (size_t)i * ldc, ldc);
	for (; i < m; i++)
		gemm_k16_rows(F, 1, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			      (size_t)i * ldc, ldc);
}

#define K16_CASE(NB_)                                                                   \
	case NB_:                                                                       \
		if (F == GEMM_RQ_F32_FIT)                                               \
			gemm_k16_mode(GEMM_RQ_F32_FIT, NB_, m, a, lda, packed, panel_bytes, \
				      q, o, c, c_f32, ldc);                             \
		else if (F == GEMM_RQ_F32)                                              \
			gemm_k16_mode(GEMM_RQ_F32, NB_, m, a, lda, packed, panel_bytes, q, \
				      o, c, c_f32, ldc);                                \
		else                                                                    \
			gemm_k16_mode(GEMM_RQ_Q31, NB_, m, a, lda, packed, panel_bytes, q, \
				      o, c, c_f32, ldc);                                \
		break

static void gemm_k16(enum gemm_rq F, int nb, int m, const uint8_t *a, size_t lda, const int8_t *packed,
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
static void gemm_sk_run(enum gemm_rq F, const struct qgemm_params *p, const uint8_t *a,
			int lda, const void *packed, size_t panel_bytes, const struct rq_out *o,
			uint8_t *c, int ldc);

/* The float form of the whole GEMM: GEMM_RQ_F32_FIT where rq_f32_fits says
 * so of its columns (their sums of |w| follow the panels). */
static enum gemm_rq gemm_float_form(const struct qgemm_params *p, const void *packed)
{
	const int32_t *sum_abs =
		(const int32_t *)((const int8_t *)packed + gemm_packed_bytes(p->n, p->k));
	return rq_f32_fits(p->bias, sum_abs, p->rq_scale, p->c_zero, p->n) ? GEMM_RQ_F32_FIT
									     : GEMM_RQ_F32;
}

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
	const enum gemm_rq ff = p->rq_scale ? gemm_float_form(p, packed) : GEMM_RQ_Q31;
	if (p->k == 16 && p->n <= 64 && p->m >= K16_MR) {
		struct rq16 q[4] = {0};
		int nb = 0;
		for (int j = 0; j < p->n; j += 16, nb++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, p->n, &q[nb]);
		gemm_k16(ff, nb, p->m, a, (size_t)lda, packed, panel_bytes, q, &o, c, p->c_f32,
			 (size_t)ldc);
		return;
	}
	if ((p->k == 24 || p->k == 32) && p->m >= SK_MR) {
		gemm_sk_run(ff, p, a, lda, packed, panel_bytes, &o, c, ldc);
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
			enum gemm_rq form = p->rq_scale ? ff
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

static ALWAYS_INLINE void gemm_sk_rows(enum gemm_rq F, int k4, int mr, int nb, const uint8_t *a,
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
	if (!o->deq && nb == 4) { /* (fewer blocks: the packs would be mostly zeros) */
#pragma GCC unroll 4
		for (int r = 0; r < mr; r++)
			store_row64(F, acc[r], q, o, c + off + r * ldc);
		return;
	}
#pragma GCC unroll 4
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store16(F != GEMM_RQ_Q31, acc[r][b], &q[b], o, c, c_f32,
				off + r * ldc + 16 * b);
}

/* One pass: columns j0 .. j0 + 16 * nb - 1 (wp: their first panel). */
static ALWAYS_INLINE void gemm_sk_mode(enum gemm_rq F, int k4, int nb, int m, const uint8_t *a,
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
		gemm_sk_rows(F, k4, SK_MR, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			     (size_t)i * ldc + j0, ldc);
	for (; i < m; i++)
		gemm_sk_rows(F, k4, 1, nb, a + (size_t)i * lda, lda, w, q, o, c, c_f32,
			     (size_t)i * ldc + j0, ldc);
}

#define SK_CASE(K4_, NB_)                                                               \
	case (K4_) * 8 + (NB_):                                                         \
		if (F == GEMM_RQ_F32_FIT)                                               \
			gemm_sk_mode(GEMM_RQ_F32_FIT, K4_, NB_, m, a, lda, wp, panel_bytes, \
				     q, o, c, c_f32, j0, ldc);                          \
		else if (F == GEMM_RQ_F32)                                              \
			gemm_sk_mode(GEMM_RQ_F32, K4_, NB_, m, a, lda, wp, panel_bytes, q, \
				     o, c, c_f32, j0, ldc);                             \
		else                                                                    \
			gemm_sk_mode(GEMM_RQ_Q31, K4_, NB_, m, a, lda, wp, panel_bytes, q, \
				     o, c, c_f32, j0, ldc);                             \
		break

static void gemm_sk(enum gemm_rq F, int k4, int nb, int m, const uint8_t *a, size_t lda, const int8_t *wp,
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
static __attribute__((noinline)) void gemm_sk_run(enum gemm_rq F, const struct qgemm_params *p,
						  const uint8_t *a, int lda, const void *packed,
						  size_t panel_bytes, const struct rq_out *o,
						  uint8_t *c, int ldc)
{
	for (int j0 = 0; j0 < p->n; j0 += 64) {
		struct rq16 q[4] = {0};
		int nb = 0;
		for (int j = j0; j < p->n && j < j0 + 64; j += 16, nb++)
			rq16_init(p->bias, p->mult, p->shift, p->rq_scale, p->deq_scale, j, p->n,
				  &q[nb]);
		gemm_sk(F, p->k / 4, nb, p->m, a, (size_t)lda,
			(const int8_t *)packed + (size_t)(j0 / GEMM_NR) * panel_bytes, panel_bytes,
			q, o, c, p->c_f32, (size_t)j0, (size_t)ldc);
	}
}

const struct qgemm_ukernel qgemm_u8s8_8x32__avx512vnni = {
	.name = "qgemm_u8s8_8x32__avx512vnni",
	.packed_bytes = gemm_packed_total,
	.pack = gemm_pack,
	.run = gemm_run,
};

#else
typedef int q8_avx512vnni_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
