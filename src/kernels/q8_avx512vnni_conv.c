/* q8_avx512vnni_conv.c - INT8 convolution for AVX-512 with VNNI.
 *
 * Compiled and dispatched as q8_avx512vnni.c (its flags, its CPUID check);
 * results are bit-identical to q8_ref.c. The tiles are the GEMM's
 * (q8_avx512vnni.c), their output q8_avx512vnni_common.h's.
 *
 * Convolution (qconv_u8s8_8x32): the same micro-kernel with A read from a
 * padded copy of each input image (made once per image in the scratch, so
 * every window is kernel rows of contiguous bytes and no pixel needs a border
 * row of its own) instead of im2col rows; its packed weights are the GEMM
 * panels for K = kh * (kw*c rounded up to 4), followed by each output
 * channel's sum |w| (see conv_run below). Where the pixel step is 16, 32 or
 * 64 bytes a tile is pixels of one output row (two rows with at most 16
 * output channels), read through one pointer (ResNet's 16-channel 3x3 convs
 * 1.6x on Zen 5; its 32- and 64-channel ones 1.07x and 1.04x on Zen 4).
 * Row tiles skip the kernel rows and the edge pixels' kernel columns that lie
 * in the padding, starting from a bias that holds a_zero times the skipped
 * weights (conv_row_classes), and read x in place, without the padded copy,
 * where that skips all of it (conv_reads_inside; ResNet 98.97 -> 92.1 us per
 * image on Zen 4). The float requantization drops its overflow guard where those sums show that
 * no accumulator can need it (conv_form). A 1x1 conv with a stride and no
 * padding runs the GEMM on its pixels, gathered per image. A
 * single-channel input (a first layer) with dil_w = 1 and stride_w <= 4 runs
 * conv_run_c1 instead, 16 output pixels across the lanes; for c = 1 its
 * weights follow the GEMM panels in the same packed buffer.
 * qconv_u8s8_c1x16__avx512vbmi, the conv of CPUs that also have VBMI, runs
 * single-channel inputs with its own kernel (see "single-channel input with
 * VBMI" below) and every other shape as qconv_u8s8_8x32.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

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

/* Where the sums sum_t |w[j][t]| (int32, one per output channel) follow the
 * panels and the single-channel layout: conv_form reads them. */
static size_t conv_abs_offset(int c_out, int kh, int kw, int c)
{
	return gemm_packed_bytes(c_out, kh * conv_kwc4(kw, c)) + conv_c1_bytes(c_out, kh, kw, c);
}

static size_t conv_packed_bytes(int c_out, int kh, int kw, int c)
{
	return conv_abs_offset(c_out, kh, kw, c) + (size_t)c_out * sizeof(int32_t);
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
	int32_t *sum_abs = (int32_t *)(out + conv_abs_offset(c_out, kh, kw, c));
	for (int j = 0; j < c_out; j++) {
		int64_t s = 0;
		for (size_t t = 0; t < (size_t)kh * kwc; t++)
			s += abs(w[(size_t)j * kh * kwc + t]);
		sum_abs[j] = s < INT32_MAX ? (int32_t)s : INT32_MAX; /* then it cannot fit */
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

/* A 1x1 conv with a stride and no padding (ResNet's downsampling shortcuts),
 * over 4-byte groups of channels: its packed weights are the GEMM's panels
 * for K = c, so conv_run_pointwise runs the GEMM, whose small-K tiles serve
 * K = 16 to 32 better than the conv tiles (8 rows, a pointer each). */
static bool conv_strided_pointwise(const struct qconv_params *p)
{
	return p->kh == 1 && p->kw == 1 && p->c % 4 == 0 && p->pad_t == 0 && p->pad_l == 0 &&
	       (int64_t)(p->h_out - 1) * p->stride_h < p->h_in &&
	       (int64_t)(p->w_out - 1) * p->stride_w < p->w_in;
}

static size_t conv_work_bytes(const struct qconv_params *p)
{
	if (conv_strided_pointwise(p))
		return (size_t)p->h_out * p->w_out * p->c;
	size_t rows = (size_t)CONV_MR1 * p->kh * conv_kwc4(p->kw, p->c);
	if (!conv_reads_padded(p))
		return rows;
	struct conv_pad g;
	conv_pad_geometry(p, &g);
	size_t image = g.copy ? (size_t)g.rows * g.cols * p->c : 0;
	return image > rows ? image : rows;
}

/* Where a row tile's first and last pixels have kernel columns in the
 * padding: pixel 0 skips the first gl groups of 4 bytes of each kernel row,
 * pixel mr - 1 the last gr, and their accumulators start from the bias plus
 * dl or dr (a_zero times the skipped weights, per 16-channel block of the
 * tile). gl = gr = 0: none. */
struct conv_cols {
	int gl, gr;
	const __m512i *dl, *dr;
};

/* Groups [0, n_g) of a kernel row (windows at ap + r * PS, weights at wg)
 * into the accumulators of pixels r0 .. r1 - 1. */
static ALWAYS_INLINE void conv_row_groups(int nb, int ps, int r0, int r1, int n_g,
					  const uint8_t *ap, const int8_t *wg,
					  __m512i (*acc)[GEMM_NB])
{
	for (int g = 0; g < n_g; g++, ap += 4, wg += GEMM_NR * 4) {
		__m512i w[GEMM_NB];
#pragma GCC unroll 2
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(wg + 64 * b);
#pragma GCC unroll 16
		for (int r = r0; r < r1; r++) {
			__m512i av = _mm512_set1_epi32(load_u32(ap + r * ps));
#pragma GCC unroll 2
			for (int b = 0; b < nb; b++)
				acc[r][b] = dpbusd(acc[r][b], av, w[b]);
		}
	}
}

/* MR x (16 * NB) tile of the conv GEMM: row r reads kernel row ki at
 * rb[r] + ki * rs[r] (kwc bytes); wp is the panel. MR up to GEMM_MR with two
 * blocks, CONV_MR1 with one. PS > 0 (a constant): the rows are pixels PS
 * bytes apart, row r at rb[0] + r * PS (one pointer where MR pointers would
 * not fit the general registers), and cols may skip the edge pixels'
 * padding columns. */
static ALWAYS_INLINE void conv_tile(enum gemm_rq F, int mr, int nb, int ps, int kh, int kwc,
				   const uint8_t *const *rb, const size_t *rs, const int8_t *wp,
				   const struct conv_cols *cols, const struct rq16 *q,
				   const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
				   size_t ldc)
{
	__m512i acc[CONV_MR1][GEMM_NB];
#pragma GCC unroll 16
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
		for (int b = 0; b < nb; b++)
			acc[r][b] = q[b].bias;
	int gl = ps ? cols->gl : 0, gr = ps ? cols->gr : 0;
#pragma GCC unroll 2
	for (int b = 0; b < nb; b++) {
		if (gl)
			acc[0][b] = _mm512_add_epi32(acc[0][b], cols->dl[b]);
		if (gr)
			acc[mr - 1][b] = _mm512_add_epi32(acc[mr - 1][b], cols->dr[b]);
	}
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
			int mid = g4 - gl - gr;
			conv_row_groups(nb, ps, 1, mr, gl, ap, wk, acc);
			conv_row_groups(nb, ps, 0, mr, mid, ap + 4 * gl, wk + (size_t)gl * GEMM_NR * 4,
					acc);
			conv_row_groups(nb, ps, 0, mr - 1, gr, ap + 4 * (g4 - gr),
					wk + (size_t)(g4 - gr) * GEMM_NR * 4, acc);
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

/* Groups [0, n_g) of a kernel row of conv_tile_2rows (its windows at ap
 * and bp, its weights at wg) for pixels r0 .. r1 - 1: of the first output
 * row's accumulators acc[0..mr-1] if A, the second's acc[mr..2mr-1] if B. */
static ALWAYS_INLINE void conv_2rows_groups(int mr, int ps, int r0, int r1, int n_g,
					    const uint8_t *ap, const uint8_t *bp,
					    const int8_t *wg, bool A, bool B,
					    __m512i (*acc)[GEMM_NB])
{
	for (int g = 0; g < n_g; g++, ap += 4, bp += 4, wg += GEMM_NR * 4) {
		__m512i w = _mm512_loadu_si512(wg);
#pragma GCC unroll 16
		for (int r = r0; r < r1; r++) {
			if (A)
				acc[r][0] = dpbusd(acc[r][0], _mm512_set1_epi32(load_u32(ap + r * ps)), w);
			if (B)
				acc[mr + r][0] =
					dpbusd(acc[mr + r][0], _mm512_set1_epi32(load_u32(bp + r * ps)), w);
		}
	}
}

/* Kernel row ki of conv_tile_2rows: its gl first groups without pixel 0,
 * its gr last without pixel mr - 1 (see struct conv_cols), as
 * conv_2rows_groups says; the tail of a kwc not a multiple of 4 (then gl =
 * gr = 0) for every pixel. */
static ALWAYS_INLINE void conv_2rows_krow(int mr, int ps, int g4, int tail, int gl, int gr,
					  const uint8_t *ap, const uint8_t *bp, const int8_t *wg,
					  bool A, bool B, __m512i (*acc)[GEMM_NB])
{
	conv_2rows_groups(mr, ps, 1, mr, gl, ap, bp, wg, A, B, acc);
	size_t o = 4 * (size_t)gl, ow = (size_t)gl * GEMM_NR * 4;
	conv_2rows_groups(mr, ps, 0, mr, g4 - gl - gr, ap + o, bp + o, wg + ow, A, B, acc);
	o = 4 * (size_t)(g4 - gr), ow = (size_t)(g4 - gr) * GEMM_NR * 4;
	conv_2rows_groups(mr, ps, 0, mr - 1, gr, ap + o, bp + o, wg + ow, A, B, acc);
	if (tail) {
		ap += 4 * (size_t)g4;
		bp += 4 * (size_t)g4;
		__m512i w = _mm512_loadu_si512(wg + (size_t)g4 * GEMM_NR * 4);
		/* masked: the bytes past the run are neither read nor faulted on */
		__mmask16 tk = (__mmask16)((1u << tail) - 1);
#pragma GCC unroll 16
		for (int r = 0; r < mr; r++) {
			if (A)
				acc[r][0] = dpbusd(acc[r][0], _mm512_broadcastd_epi32(
								      _mm_maskz_loadu_epi8(tk, ap + r * ps)),
						   w);
			if (B)
				acc[mr + r][0] = dpbusd(acc[mr + r][0],
							_mm512_broadcastd_epi32(
								_mm_maskz_loadu_epi8(tk, bp + r * ps)),
							w);
		}
	}
}

/* Two output rows of mr <= CONV_MR2 pixels each, one block (2 * mr
 * accumulators): as conv_tile with PS, the second row's windows d2 bytes
 * below the first's, its outputs at c + c2 (kh >= 1). The last kernel row
 * runs for the first output row, whose outputs then leave, before the
 * second's, so that the first row's requantization can run beside the
 * second's vpdpbusd (each output operation costs about a cycle of the
 * vpdpbusd stream on Zen 4; ResNet's 16-channel convs 8.60 -> 8.55 us). */
static ALWAYS_INLINE void conv_tile_2rows(enum gemm_rq F, int mr, int ps, int kh, int kwc,
					  const uint8_t *a0, size_t rs, size_t d2,
					  const int8_t *wp, const struct conv_cols *cols,
					  const struct rq16 *q, const struct rq_out *o,
					  const struct clamp_u8 *cl, uint8_t *c, size_t c2, size_t ldc)
{
	__m512i acc[2 * CONV_MR2][GEMM_NB];
#pragma GCC unroll 32
	for (int r = 0; r < 2 * mr; r++)
		acc[r][0] = q[0].bias;
	int gl = cols->gl, gr = cols->gr;
	if (gl) {
		acc[0][0] = _mm512_add_epi32(acc[0][0], cols->dl[0]);
		acc[mr][0] = _mm512_add_epi32(acc[mr][0], cols->dl[0]);
	}
	if (gr) {
		acc[mr - 1][0] = _mm512_add_epi32(acc[mr - 1][0], cols->dr[0]);
		acc[2 * mr - 1][0] = _mm512_add_epi32(acc[2 * mr - 1][0], cols->dr[0]);
	}
	int g4 = kwc / 4, tail = kwc & 3, kwc4 = (kwc + 3) & ~3;
	for (int ki = 0; ki + 1 < kh; ki++) {
		const uint8_t *ap = a0 + (size_t)ki * rs;
		conv_2rows_krow(mr, ps, g4, tail, gl, gr, ap, ap + d2,
				wp + (size_t)ki * kwc4 * GEMM_NR, true, true, acc);
	}
	const uint8_t *ap = a0 + (size_t)(kh - 1) * rs;
	const int8_t *wl = wp + (size_t)(kh - 1) * kwc4 * GEMM_NR;
	const struct rq_screen none = {0};
	conv_2rows_krow(mr, ps, g4, tail, gl, gr, ap, ap + d2, wl, true, false, acc);
	gemm_tile_store(F, mr, 1, acc, q, &none, o, cl, c, ldc);
	conv_2rows_krow(mr, ps, g4, tail, gl, gr, ap, ap + d2, wl, false, true, acc);
	gemm_tile_store(F, mr, 1, acc + mr, q, &none, o, cl, c + c2, ldc);
}

#define CONV_ROW2_CASE(MR_)                                                            \
	case MR_:                                                                      \
		conv_tile_2rows(F, MR_, PS, kh, kwc, a0, rs, d2, wp, cols, q, o, cl, c, c2,  \
				ldc);                                                  \
		break

static ALWAYS_INLINE void conv_row2_tile_mode(enum gemm_rq F, int PS, int mr, int kh, int kwc,
					      const uint8_t *a0, size_t rs, size_t d2,
					      const int8_t *wp, const struct conv_cols *cols,
					      const struct rq16 *q,
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

/* The row tiles come in the forms GEMM_RQ_F32_FIT and GEMM_RQ_Q31 (conv_run
 * sends a float requantization that does not fit to the general tiles). */
static void conv_row2_tile_any(enum gemm_rq F, int ps, int mr, int kh, int kwc,
			       const uint8_t *a0, size_t rs, size_t d2, const int8_t *wp,
			       const struct conv_cols *cols, const struct rq16 *q,
			       const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
			       size_t c2, size_t ldc)
{
#define CONV_ROW2_MODE(F_, PS_)                                                                \
	conv_row2_tile_mode(F_, PS_, mr, kh, kwc, a0, rs, d2, wp, cols, q, o, cl, c, c2, ldc)
	bool fit = F == GEMM_RQ_F32_FIT;
	if (ps == 16 && fit)
		CONV_ROW2_MODE(GEMM_RQ_F32_FIT, 16);
	else if (ps == 16)
		CONV_ROW2_MODE(GEMM_RQ_Q31, 16);
	else if (fit)
		CONV_ROW2_MODE(GEMM_RQ_F32_FIT, 32);
	else
		CONV_ROW2_MODE(GEMM_RQ_Q31, 32);
#undef CONV_ROW2_MODE
}

#define CONV_TILE_CASE(MR_, NB_)                                                       \
	case (MR_) * 4 + (NB_):                                                        \
		conv_tile(F, MR_, NB_, 0, kh, kwc, rb, rs, wp, NULL, q, o, cl, c, ldc); \
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

#define CONV_ROW_CASE(MR_, NB_)                                                        \
	case (MR_) * 4 + (NB_):                                                        \
		conv_tile(F, MR_, NB_, PS, kh, kwc, rb, rs, wp, cols, q, o, cl, c, ldc); \
		break

/* A tile of mr pixels of one output row, PS bytes apart, in nb blocks of 16
 * channels (nb = 2: mr <= CONV_MR2, 28 accumulators). */
static ALWAYS_INLINE void conv_row_tile_mode(enum gemm_rq F, int PS, int mr, int nb, int kh,
					     int kwc, const uint8_t *const *rb, const size_t *rs,
					     const int8_t *wp, const struct conv_cols *cols,
					     const struct rq16 *q,
					     const struct rq_out *o, const struct clamp_u8 *cl,
					     uint8_t *c, size_t ldc)
{
	switch (mr * 4 + nb) {
	CONV_ROW_CASE(16, 1); CONV_ROW_CASE(15, 1); CONV_ROW_CASE(14, 1); CONV_ROW_CASE(13, 1);
	CONV_ROW_CASE(12, 1); CONV_ROW_CASE(11, 1); CONV_ROW_CASE(10, 1); CONV_ROW_CASE(9, 1);
	CONV_ROW_CASE(8, 1); CONV_ROW_CASE(7, 1); CONV_ROW_CASE(6, 1); CONV_ROW_CASE(5, 1);
	CONV_ROW_CASE(4, 1); CONV_ROW_CASE(3, 1); CONV_ROW_CASE(2, 1); CONV_ROW_CASE(1, 1);
	CONV_ROW_CASE(14, 2); CONV_ROW_CASE(13, 2); CONV_ROW_CASE(12, 2); CONV_ROW_CASE(11, 2);
	CONV_ROW_CASE(10, 2); CONV_ROW_CASE(9, 2); CONV_ROW_CASE(8, 2); CONV_ROW_CASE(7, 2);
	CONV_ROW_CASE(6, 2); CONV_ROW_CASE(5, 2); CONV_ROW_CASE(4, 2); CONV_ROW_CASE(3, 2);
	CONV_ROW_CASE(2, 2); CONV_ROW_CASE(1, 2);
	default:
		__builtin_unreachable();
	}
}

/* Pixel steps the row tiles are compiled for: 16, 32 and 64 bytes (16 or 32
 * channels at stride 1 and 2, 64 at stride 1). */
static bool conv_row_step(int ps)
{
	return ps == 16 || ps == 32 || ps == 64;
}

static void conv_row_tile_any(enum gemm_rq F, int ps, int mr, int nb, int kh, int kwc,
			      const uint8_t *const *rb, const size_t *rs, const int8_t *wp,
			      const struct conv_cols *cols, const struct rq16 *q,
			      const struct rq_out *o, const struct clamp_u8 *cl, uint8_t *c,
			      size_t ldc)
{
#define CONV_ROW_MODE(F_, PS_)                                                                 \
	conv_row_tile_mode(F_, PS_, mr, nb, kh, kwc, rb, rs, wp, cols, q, o, cl, c, ldc)
	bool fit = F == GEMM_RQ_F32_FIT;
	if (ps == 16 && fit)
		CONV_ROW_MODE(GEMM_RQ_F32_FIT, 16);
	else if (ps == 16)
		CONV_ROW_MODE(GEMM_RQ_Q31, 16);
	else if (ps == 32 && fit)
		CONV_ROW_MODE(GEMM_RQ_F32_FIT, 32);
	else if (ps == 32)
		CONV_ROW_MODE(GEMM_RQ_Q31, 32);
	else if (fit)
		CONV_ROW_MODE(GEMM_RQ_F32_FIT, 64);
	else
		CONV_ROW_MODE(GEMM_RQ_Q31, 64);
#undef CONV_ROW_MODE
}

static void conv_tile_any(enum gemm_rq F, int mr, int nb, int kh, int kwc,
			  const uint8_t *const *rb, const size_t *rs, const int8_t *wp,
			  const struct rq16 *q, const struct rq_out *o, const struct clamp_u8 *cl,
			  uint8_t *c, size_t ldc)
{
	if (F == GEMM_RQ_F32_FIT)
		conv_tile_mode(GEMM_RQ_F32_FIT, mr, nb, kh, kwc, rb, rs, wp, q, o, cl, c, ldc);
	else if (F == GEMM_RQ_F32)
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

/* conv_strided_pointwise's convs: per image, the pixels the conv reads
 * gathered into work (h_out * w_out rows of c bytes), then the GEMM. */
static void conv_run_pointwise(const struct qconv_params *p, const uint8_t *x, const void *packed,
			       uint8_t *y)
{
	const struct qgemm_params gp = {
		.m = p->h_out * p->w_out, .n = p->c_out, .k = p->c, .bias = p->bias,
		.mult = p->mult, .shift = p->shift, .rq_scale = p->rq_scale,
		.c_zero = p->c_zero, .c_min = p->c_min, .c_max = p->c_max,
	};
	size_t x_image = (size_t)p->h_in * p->w_in * p->c;
	size_t y_image = (size_t)p->h_out * p->w_out * p->c_out;
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * x_image;
		uint8_t *row = p->work;
		for (int oh = 0; oh < p->h_out; oh++) {
			const uint8_t *src = xi + (size_t)oh * p->stride_h * p->w_in * p->c;
			for (int ow = 0; ow < p->w_out; ow++, row += p->c)
				copy_bytes(row, src + (size_t)ow * p->stride_w * p->c, p->c);
		}
		qgemm_u8s8_8x32__avx512vnni.run(&gp, p->work, p->c, packed, y + (size_t)img * y_image,
						p->c_out);
	}
}

/* The requantization form of the whole conv: GEMM_RQ_F32_FIT where
 * rq_f32_fits says so of its channels (their sums of |w| follow the panels;
 * the padding reads a_zero, a code like any other), else the guarded float
 * form, or Q31. */
static enum gemm_rq conv_form(const struct qconv_params *p, const void *packed)
{
	if (!p->rq_scale)
		return GEMM_RQ_Q31;
	const int32_t *sum_abs =
		(const int32_t *)((const int8_t *)packed + conv_abs_offset(p->c_out, p->kh, p->kw, p->c));
	return rq_f32_fits(p->bias, sum_abs, p->rq_scale, p->c_zero, p->c_out) ? GEMM_RQ_F32_FIT
										 : GEMM_RQ_F32;
}

/* Output row oh's kernel rows [*k0, *k1) reach the input; the others read
 * only the padded copy's a_zero rows (a row's window starts at input row
 * oh * stride_h - pad_t). */
static void conv_live_krows(const struct qconv_params *p, int oh, int *k0, int *k1)
{
	int top = oh * p->stride_h - p->pad_t;
	int a = top >= 0 ? 0 : (-top + p->dil_h - 1) / p->dil_h;
	int b = top >= p->h_in ? 0 : (p->h_in - 1 - top) / p->dil_h + 1;
	*k0 = a < p->kh ? a : p->kh;
	*k1 = b < p->kh ? b : p->kh;
	if (*k1 < *k0)
		*k1 = *k0;
}

/* The kernel columns of output column 0 that lie left of the input, and of
 * the last output column right of it. */
static void conv_side_cols(const struct qconv_params *p, int *left, int *right)
{
	int kw = p->kw, first = -p->pad_l, last = (p->w_out - 1) * p->stride_w - p->pad_l;
	int out = last + kw - p->w_in;
	*left = first < 0 ? (-first < kw ? -first : kw) : 0;
	*right = out > 0 ? (out < kw ? out : kw) : 0;
}

/* Groups [gl of each kernel row's first, gr of its last] that a row tile's
 * first and last pixels skip (struct conv_cols): conv_side_cols's columns
 * (0 unless c is a multiple of 4, so that columns are whole groups). */
static void conv_side_groups(const struct qconv_params *p, int *gl, int *gr)
{
	*gl = *gr = 0;
	if (p->c % 4 != 0)
		return;
	int left, right;
	conv_side_cols(p, &left, &right);
	if (left + right > p->kw)
		return; /* one pixel, and its sides overlap: nothing skipped */
	*gl = left * p->c / 4;
	*gr = right * p->c / 4;
}

/* Output rows whose top or bottom kernel rows fall wholly in the padding
 * (the first and last rows of a padded conv), at most this many per conv;
 * the rest run every kernel row, which the padded copy makes right too. */
#define CONV_EDGE_ROWS 8

/* What the row tiles of output row oh skip: the kernel rows outside
 * [k0, k1), and at the sides the groups conv_side_groups gives; its tiles
 * start from bias (qc's plus a_zero times the skipped kernel rows' weights)
 * and the first and last pixels' deltas dl and dr (a_zero times the
 * weights of their skipped groups in kernel rows k0 .. k1 - 1). */
struct conv_rows {
	int oh, k0, k1;
	__m512i bias[CONV_RQ_BLOCKS], dl[CONV_RQ_BLOCKS], dr[CONV_RQ_BLOCKS];
};

/* Sum of the packed weights of 16-channel block b over kernel rows
 * [k0, k1) and groups [g0, g1) of each: vpdpbusd with bytes of 1. */
static __m512i conv_weight_sum(const struct qconv_params *p, const void *packed, int b, int k0,
			       int k1, int g0, int g1)
{
	int kwc4 = conv_kwc4(p->kw, p->c);
	size_t panel_bytes = (size_t)p->kh * kwc4 * GEMM_NR;
	const int8_t *wb = (const int8_t *)packed + (size_t)(b / 2) * panel_bytes + 64 * (b % 2);
	const __m512i ones = _mm512_set1_epi8(1);
	__m512i s = _mm512_setzero_si512();
	for (int ki = k0; ki < k1; ki++)
		for (int g = g0; g < g1; g++)
			s = dpbusd(s, ones,
				   _mm512_loadu_si512(wb + ((size_t)ki * kwc4 / 4 + g) * GEMM_NR * 4));
	return s;
}

/* rows[0]: every output row with all its kernel rows; rows[1..n] (n
 * returned): the edge rows in order of oh. */
static int conv_row_classes(const struct qconv_params *p, const void *packed,
			    const struct rq16 *qc, struct conv_rows *rows)
{
	int gl, gr, g4 = conv_kwc4(p->kw, p->c) / 4, n = 0;
	conv_side_groups(p, &gl, &gr);
	const __m512i az = _mm512_set1_epi32(p->a_zero);
	for (int oh = -1; oh < p->h_out && n < CONV_EDGE_ROWS; oh++) {
		int k0 = 0, k1 = p->kh;
		if (oh >= 0) {
			conv_live_krows(p, oh, &k0, &k1);
			if (k0 == 0 && k1 == p->kh)
				continue;
		}
		struct conv_rows *r = &rows[oh < 0 ? 0 : ++n];
		r->oh = oh;
		r->k0 = k0;
		r->k1 = k1;
		for (int b = 0; b < (p->c_out + 15) / 16; b++) {
			__m512i dead = _mm512_add_epi32(conv_weight_sum(p, packed, b, 0, k0, 0, g4),
							conv_weight_sum(p, packed, b, k1, p->kh, 0, g4));
			r->bias[b] = _mm512_add_epi32(qc[b].bias, _mm512_mullo_epi32(dead, az));
			r->dl[b] = _mm512_mullo_epi32(conv_weight_sum(p, packed, b, k0, k1, 0, gl), az);
			r->dr[b] = _mm512_mullo_epi32(
				conv_weight_sum(p, packed, b, k0, k1, g4 - gr, g4), az);
		}
	}
	return n;
}

/* Whether the row tiles, skipping the kernel rows conv_row_classes and the
 * groups conv_side_groups say, read no byte of padding: then they read x in
 * place, without the padded copy (ResNet's 3x3 convs with pad 1). So: every
 * edge row has its class, the only pixels with columns outside the input
 * are a row's first (left of it) and last (right of it), and those columns
 * are whole groups. */
static bool conv_reads_inside(const struct qconv_params *p)
{
	int edges = 0;
	for (int oh = 0; oh < p->h_out; oh++) {
		int k0, k1;
		conv_live_krows(p, oh, &k0, &k1);
		edges += k0 > 0 || k1 < p->kh;
	}
	if (edges > CONV_EDGE_ROWS)
		return false;
	int gl, gr, left, right, sw = p->stride_w, kw = p->kw;
	conv_side_groups(p, &gl, &gr);
	conv_side_cols(p, &left, &right);
	int first = -p->pad_l, last = (p->w_out - 1) * sw - p->pad_l; /* the windows' starts */
	if (4 * gl != left * p->c || 4 * gr != right * p->c)
		return false; /* some side columns are not skipped */
	if (p->w_out == 1)
		return true;
	/* the first window ends inside, the last starts inside, the second and
	 * the last but one lie inside */
	return first + kw <= p->w_in && last >= 0 && first + sw >= 0 &&
	       last - sw + kw <= p->w_in;
}

/* The GEMM formulation, image by image: output pixel i of the image is row
 * i, its kernel row ki the kwc contiguous bytes of the window's row ki in
 * the padded copy (or in x, or a border row when dil_w > 1). Row tiles where
 * the pixel step is one the tiles are compiled for (conv_row_step) and the
 * requantization is not the guarded float one: up to CONV_MR1 pixels of a
 * row (two rows of up to CONV_MR2 where those fit) with c_out <= 16, else up
 * to CONV_MR2 pixels x 32 channels per pass; otherwise tiles of CONV_MR1
 * pixels when c_out <= 16, else GEMM_MR pixels x 32 channels, a pointer per
 * pixel. */
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
	if (conv_strided_pointwise(p)) {
		conv_run_pointwise(p, x, packed, y);
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
	const enum gemm_rq form = conv_form(p, packed);
	struct conv_pad g;
	conv_pad_geometry(p, &g);
	const int ps = p->stride_w * p->c;
	const bool row_tiles = padded && p->c_out <= 16 * CONV_RQ_BLOCKS && conv_row_step(ps) &&
			       form != GEMM_RQ_F32;
	struct conv_rows rows_of[1 + CONV_EDGE_ROWS];
	struct rq16 qe[CONV_RQ_BLOCKS];
	int n_edges = row_tiles ? conv_row_classes(p, packed, qc, rows_of) : 0, gl, gr;
	conv_side_groups(p, &gl, &gr);
	const bool inside = row_tiles && g.copy && conv_reads_inside(p);
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * x_image;
		/* windows of the padded image: pixel (oh, ow) starts at (oh*sh, ow*sw) */
		const uint8_t *base = xi;
		size_t base_row = x_pixel_row;
		if (inside) {
			/* the padded image's origin: never read outside x */
			base = (const uint8_t *)((uintptr_t)xi -
						 ((size_t)p->pad_t * p->w_in + (size_t)p->pad_l) * p->c);
		} else if (padded && g.copy) {
			conv_pad_image(p, &g, xi, p->work);
			base = p->work;
			base_row = (size_t)g.cols * p->c;
		}
		uint8_t *yi = y + (size_t)img * m * p->c_out;
		if (row_tiles) {
			/* each output row in near-equal tiles of at most CONV_MR1 pixels
			 * (CONV_MR2 with two blocks) */
			int nb = p->c_out > 16 ? 2 : 1, mr_max = nb == 2 ? CONV_MR2 : CONV_MR1;
			int n_t = (p->w_out + mr_max - 1) / mr_max;
			int per = (p->w_out + n_t - 1) / n_t;
			size_t rs = (size_t)p->dil_h * base_row;
			/* one block: two output rows at a time where a row's tiles are
			 * short enough (compiled for pixel steps 16 and 32) */
			int rows = nb == 1 && per <= CONV_MR2 && ps <= 32 ? 2 : 1;
			int e = 1; /* the next edge row: rows_of[e] */
			for (int oh = 0, nr = 1; oh < p->h_out; oh += nr) {
				/* edge rows one at a time, from their kernel rows k0..k1-1 */
				bool edge = e <= n_edges && rows_of[e].oh == oh;
				nr = rows == 2 && !edge && oh + 1 < p->h_out &&
						     !(e <= n_edges && rows_of[e].oh == oh + 1)
					     ? 2
					     : 1;
				const struct conv_rows *rc = &rows_of[edge ? e++ : 0];
				int k0 = rc->k0, k1 = rc->k1;
				const struct rq16 *qr = qc;
				if (edge) {
					for (int b = 0; b < n_blocks; b++) {
						qe[b] = qc[b];
						qe[b].bias = rc->bias[b];
					}
					qr = qe;
				}
				const int8_t *wk = (const int8_t *)packed + (size_t)k0 * kwc4 * GEMM_NR;
				for (int ow0 = 0; ow0 < p->w_out; ow0 += per) {
					int mr = p->w_out - ow0 < per ? p->w_out - ow0 : per;
					const uint8_t *rb = base + (size_t)oh * p->stride_h * base_row +
							    k0 * rs + (size_t)ow0 * ps;
					uint8_t *yo = yi + ((size_t)oh * p->w_out + ow0) * p->c_out;
					struct conv_cols cols = {ow0 == 0 ? gl : 0,
								 ow0 + mr == p->w_out ? gr : 0, rc->dl,
								 rc->dr};
					if (nr == 2)
						conv_row2_tile_any(form, ps, mr, p->kh, kwc, rb, rs,
								   (size_t)p->stride_h * base_row, wk,
								   &cols, qr, &o, &cl, yo,
								   (size_t)p->w_out * p->c_out,
								   (size_t)p->c_out);
					else
						for (int j0 = 0; j0 < p->c_out; j0 += GEMM_NR) {
							int nbj = p->c_out - j0 > 16 ? 2 : 1;
							struct conv_cols cj = {cols.gl, cols.gr,
									       rc->dl + j0 / 16,
									       rc->dr + j0 / 16};
							conv_row_tile_any(form, ps, mr, nbj, k1 - k0, kwc,
									  &rb, &rs,
									  wk + (size_t)(j0 / GEMM_NR) *
										       panel_bytes,
									  &cj, qr + j0 / 16, &o, &cl,
									  yo + j0, (size_t)p->c_out);
						}
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
				conv_tile_any(form, mr, nb, p->kh, kwc, rb, rs,
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
					r[j] = j >= nch ? _mm512_setzero_si512()
					       : form == RQ_F32 || form == RQ_F32_FIT
						       ? requant16_form_r(form, acc[j], &q[j], o)
					       : form == RQ_LEAN
						       ? requant16_lean(acc[j], &q[j], o)
						       : requant16_q31(acc[j], &q[j], o);
				__m512i a[NCH_MAX / 4];
#pragma GCC unroll 4
				for (int k4 = 0; k4 < nch_max / 4; k4++)
					a[k4] = _mm512_packus_epi16(
						_mm512_packs_epi32(r[4 * k4], r[4 * k4 + 1]),
						_mm512_packs_epi32(r[4 * k4 + 2], r[4 * k4 + 3]));
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
					/* the float form's clamp, on bytes: the packs saturated
					 * to [0, 255] (see pack_u8x64); a no-op for Q31 */
					if (p->c_min > 0)
						v = _mm512_max_epu8(v, o->cmin8);
					if (p->c_max < 255)
						v = _mm512_min_epu8(v, o->cmax8);
					if (rem >= 64)
						_mm512_storeu_si512(yo + 64 * c, v);
					else
						_mm512_mask_storeu_epi8(yo + 64 * c, (1ull << rem) - 1, v);
				}
			}
		}
	}
}

VBMI static void c1v_run(const struct qconv_params *p, const uint8_t *x, const void *packed,
			 uint8_t *y)
{
	const int8_t *wv = (const int8_t *)packed + conv_packed_bytes(p->c_out, p->kh, p->kw, p->c);
	struct rq_out o;
	rq_out_init(p->c_zero, p->c_min, p->c_max, false, &o);
	struct rq16 q[C1V_MAX_CH];
	if (p->c_out < 1)
		return; /* (qconv_u8s8_c1x16 applies to 1..C1V_MAX_CH outputs) */
	for (int j = 0; j < p->c_out; j++)
		rq16_init_uniform(p->mult, p->shift, p->rq_scale, j, &q[j]);
	enum rq_form form = rq_form_of(q, p->c_out);
	if (form == RQ_F32 && conv_form(p, packed) == GEMM_RQ_F32_FIT)
		form = RQ_F32_FIT;
	int nch4 = (p->c_out + 3) / 4 * 4;
#define C1V_PASS(NCH, F)                                            \
	case (NCH) * 4 + (F):                                       \
		c1v_pass(NCH, F, p, x, wv, q, &o, y);               \
		break
	switch (nch4 * 4 + (int)form) {
	C1V_PASS(4, RQ_F32); C1V_PASS(8, RQ_F32); C1V_PASS(12, RQ_F32); C1V_PASS(16, RQ_F32);
	C1V_PASS(4, RQ_F32_FIT); C1V_PASS(8, RQ_F32_FIT); C1V_PASS(12, RQ_F32_FIT);
	C1V_PASS(16, RQ_F32_FIT);
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
	c1v_run(p, x, packed, y);
}

const struct qconv_ukernel qconv_u8s8_c1x16__avx512vbmi = {
	.name = "qconv_u8s8_c1x16__avx512vbmi",
	.packed_bytes = c1v_packed_bytes,
	.pack = c1v_pack,
	.work_bytes = conv_work_bytes,
	.run = c1v_conv_run,
};

#else
typedef int q8_avx512vnni_conv_is_x86_64_only; /* ISO C wants a non-empty file */
#endif
