/* f32_ref.c - FP32 reference kernels (see kernels_f32.h): the portable oracle.
 *
 * Layout: dense row-major tensors, images NCHW, conv weights
 * [c_out, c_in/group, kh, kw]. Element offsets are int64_t throughout.
 *
 * Invariant: nothing here allocates. The only buffers are fixed-size stack
 * arrays (at most ~21 KiB, in gemm_blocked) and the caller's conv scratch.
 *
 * The kernels are plain C11 written so that GCC/Clang vectorize them at -O3
 * without -ffast-math: the vectorized dimension is never a float reduction
 * (gemm vectorizes over n and accumulates over k in order; the dot-product
 * paths keep DOT_LANES independent partial sums, combined in a fixed order).
 * Results are therefore deterministic for a given shape, but not bit-equal
 * to a naive loop whenever a dot-product path is taken.
 *
 * GEMM (GotoBLAS-style blocking without heap memory):
 *   for each KC-slice of k, MC-block of rows of C, NR-wide panel of columns:
 *     pack the KC x NR panel of op(B) into a stack buffer (zero-padded),
 *     then for each MR-row strip run an MR x NR micro-kernel whose
 *     accumulator tile is loaded from C after the first k-slice.
 *   Every C element is therefore summed in ascending k from 0.f, whatever
 *   the blocking; so where the CPU has AVX-512F (q8_isa_best() is
 *   avx512vnni) the blocked path runs as f32_avx512.c's 8 x 32 tiles of
 *   16-float vectors, with the same roundings in the same order: bit for bit
 *   this loop's (gemm_f32__portable keeps to this file's loops). Small
 *   shapes (a single row of A, or trans_b with few rows of A or a single
 *   column of C) take dot-product / axpy paths instead.
 *
 * Conv: im2col of a band of output rows of one image and group into the
 * caller's scratch ([c_in/group * kh * kw, rows * w_out]), then
 * W_g[c_out/group, K] x col -> y; bias and clamp in a last pass over y.
 * 1x1 stride-1 unpadded convs multiply the input directly; depthwise convs
 * (one input and one output channel per group) use a direct loop.
 */
#include "kernels/kernels_f32.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h> /* abort() in PRESSO_CHECK */
#include <string.h>

#include "base/status.h"
#include "kernels/kernels_q8.h"

/* Micro-kernel tile: MR rows x NR columns of C. 4 x 16 keeps the tile in
 * the 16 SSE registers' worth of accumulators at baseline x86-64 and was
 * the fastest of the shapes tried (2..8 x 8..64) with GCC 12 -O3. */
#define GEMM_MR 4
#define GEMM_NR 16
/* k-slice: the packed B panel is GEMM_KC * GEMM_NR * 4 = 16 KiB (L1). */
#define GEMM_KC 256
/* Rows of A per block: GEMM_MC * GEMM_KC * 4 = 128 KiB of A stays in L2. */
#define GEMM_MC 128
/* Independent partial sums of the dot-product paths. 16 (four SSE vectors)
 * runs ~5x faster than 8 with GCC 12 -O3, which otherwise vectorizes the
 * fully unrolled 8-lane body across k with shuffles. */
#define DOT_LANES 16
/* Columns of C updated per pass of the single-row (axpy) path: 4 KiB. */
#define AXPY_NB 1024
/* im2col band cap: 2^18 floats = 1 MiB of scratch, about one L2. */
#define CONV_COL_MAX_FLOATS ((int64_t)1 << 18)
/* Most dimensions a broadcast or transpose may have once size-1 dimensions
 * are dropped and contiguous runs merged. */
#define F32_MAX_RANK 16
/* Inner positions handled per pass of softmax over a strided axis. */
#define SOFTMAX_CHUNK 256
/* Tile edge of the 2-D blocked transpose (16 x 16 floats = 1 KiB). */
#define TRANSPOSE_TILE 16

static inline int64_t min_i64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static inline float clampf(float v, float lo, float hi)
{
	/* NaN compares false both ways and passes through. */
	v = v < lo ? lo : v;
	return v > hi ? hi : v;
}

/* y[0..n) += alpha * x[0..n), in order. The fixed 4-wide body vectorizes
 * even under GCC -O2's very-cheap cost model, which skips loops that need a
 * scalar epilogue (a plain loop runs 3x slower there); wider bodies cost
 * -O3 more in scalar tails on short conv rows than they gain. */
static inline void axpy(int64_t n, float alpha, const float *restrict x, float *restrict y)
{
	int64_t i = 0;

	for (; i + 4 <= n; i += 4)
		for (int t = 0; t < 4; t++)
			y[i + t] += alpha * x[i + t];
	for (; i < n; i++)
		y[i] += alpha * x[i];
}

/* Indices t in [0, count) with 0 <= off + t * step < limit form [*lo, *hi)
 * (step > 0; empty ranges come back as lo == hi). */
static void valid_range(int64_t off, int64_t step, int64_t limit, int64_t count,
			int64_t *lo, int64_t *hi)
{
	int64_t l = off >= 0 ? 0 : (-off + step - 1) / step;
	int64_t h = limit - off <= 0 ? 0 : (limit - off + step - 1) / step;

	l = min_i64(l, count);
	h = min_i64(h, count);
	*lo = l;
	*hi = h > l ? h : l;
}

/* ---- GEMM ---------------------------------------------------------------- */

/* C[0:mr, 0:nr] (+)= A[0:MR, 0:kc] x bp[0:kc, 0:NR]. A(r, kk) is
 * a[r * a_rs + kk * a_cs] for all MR rows (rows past mr must be readable:
 * callers pad them); bp is a packed panel, row kk at bp + kk * NR. With
 * load_c the tile starts from C (a later k-slice), else from zero.
 * The MR = 4 rows are spelled out: with a row loop, GCC -O2 (which does not
 * unroll it) keeps the tile in memory and runs 3x slower.
 * Not instrumented by the sanitizers: the sanitizer build spent 88 % of its
 * shipped-model tests in this loop. Its bounds are the packing code's
 * (instrumented), and scripts/valgrind_check.sh runs it under memcheck. */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize("address", "undefined")))
#endif
static void gemm_micro(int64_t kc, const float *restrict a, int64_t a_rs, int64_t a_cs,
		       const float *restrict bp, float *restrict c, int64_t ldc, bool load_c,
		       int mr, int nr)
{
	float c0[GEMM_NR], c1[GEMM_NR], c2[GEMM_NR], c3[GEMM_NR];
	float *const rows[GEMM_MR] = { c0, c1, c2, c3 };
	const float *restrict a0 = a, *restrict a1 = a + a_rs;
	const float *restrict a2 = a + 2 * a_rs, *restrict a3 = a + 3 * a_rs;

	_Static_assert(GEMM_MR == 4, "gemm_micro spells out 4 rows");
	for (int r = 0; r < GEMM_MR; r++)
		for (int j = 0; j < GEMM_NR; j++)
			rows[r][j] = load_c && r < mr && j < nr ? c[r * ldc + j] : 0.0f;
	for (int64_t kk = 0; kk < kc; kk++) {
		const float *restrict b = bp + kk * GEMM_NR;
		float x0 = a0[kk * a_cs], x1 = a1[kk * a_cs];
		float x2 = a2[kk * a_cs], x3 = a3[kk * a_cs];

		for (int j = 0; j < GEMM_NR; j++) {
			float bj = b[j];

			c0[j] += x0 * bj;
			c1[j] += x1 * bj;
			c2[j] += x2 * bj;
			c3[j] += x3 * bj;
		}
	}
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++)
			c[r * ldc + j] = rows[r][j];
}

/* Packs op(B)[k0:k0+kc, j0:j0+nr] into bp (kc rows of GEMM_NR floats),
 * zero-filling columns nr..GEMM_NR. */
static void gemm_pack_b(int64_t kc, int nr, const float *b, int64_t ldb, bool trans_b,
			int64_t k0, int64_t j0, float *restrict bp)
{
	if (!trans_b) {
		for (int64_t kk = 0; kk < kc; kk++) {
			const float *src = b + (k0 + kk) * ldb + j0;
			float *dst = bp + kk * GEMM_NR;

			if (nr == GEMM_NR) {
				for (int j = 0; j < GEMM_NR; j++)
					dst[j] = src[j];
			} else {
				for (int j = 0; j < GEMM_NR; j++)
					dst[j] = j < nr ? src[j] : 0.0f;
			}
		}
		return;
	}
	/* op(B)(kk, j) = b[j * ldb + kk]: read rows of B, scatter columns. */
	for (int j = 0; j < GEMM_NR; j++) {
		if (j < nr) {
			const float *src = b + (j0 + j) * ldb + k0;

			for (int64_t kk = 0; kk < kc; kk++)
				bp[kk * GEMM_NR + j] = src[kk];
		} else {
			for (int64_t kk = 0; kk < kc; kk++)
				bp[kk * GEMM_NR + j] = 0.0f;
		}
	}
}

/* The general path: any transposes, any shape. */
static void gemm_blocked(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs,
			 int64_t a_cs, const float *b, int64_t ldb, bool trans_b, float *c,
			 int64_t ldc)
{
	_Alignas(64) float bp[GEMM_KC * GEMM_NR];
	_Alignas(64) float ap[GEMM_MR * GEMM_KC];

	for (int64_t pc = 0; pc < k; pc += GEMM_KC) {
		int64_t kc = min_i64(GEMM_KC, k - pc);

		for (int64_t ic = 0; ic < m; ic += GEMM_MC) {
			int64_t mc = min_i64(GEMM_MC, m - ic);
			int64_t m_full = mc / GEMM_MR * GEMM_MR;
			int m_edge = (int)(mc - m_full);

			/* The last strip of a block may be short: copy it into
			 * ap, zero-padded to GEMM_MR rows, once per block. */
			if (m_edge) {
				const float *as = a + (ic + m_full) * a_rs + pc * a_cs;

				for (int r = 0; r < GEMM_MR; r++)
					for (int64_t kk = 0; kk < kc; kk++)
						ap[r * GEMM_KC + kk] = r < m_edge ?
							as[r * a_rs + kk * a_cs] : 0.0f;
			}
			for (int64_t jr = 0; jr < n; jr += GEMM_NR) {
				int nr = (int)min_i64(GEMM_NR, n - jr);

				gemm_pack_b(kc, nr, b, ldb, trans_b, pc, jr, bp);
				for (int64_t ir = 0; ir < m_full; ir += GEMM_MR)
					gemm_micro(kc, a + (ic + ir) * a_rs + pc * a_cs, a_rs, a_cs,
						   bp, c + (ic + ir) * ldc + jr, ldc, pc > 0,
						   GEMM_MR, nr);
				if (m_edge)
					gemm_micro(kc, ap, GEMM_KC, 1, bp,
						   c + (ic + m_full) * ldc + jr, ldc, pc > 0,
						   m_edge, nr);
			}
		}
	}
}

/* Sum of x[i] * y[i] over i < k in DOT_LANES interleaved partial sums. */
static float dot1(int64_t k, const float *restrict x, const float *restrict y)
{
	float s[DOT_LANES] = { 0 };
	int64_t kk = 0;

	for (; kk + DOT_LANES <= k; kk += DOT_LANES)
		for (int l = 0; l < DOT_LANES; l++)
			s[l] += x[kk + l] * y[kk + l];
	for (int l = 0; kk + l < k; l++)
		s[l] += x[kk + l] * y[kk + l];
	for (int w = DOT_LANES / 2; w > 0; w /= 2)
		for (int l = 0; l < w; l++)
			s[l] += s[l + w];
	return s[0];
}

/* out[j] = dot(x, y_j) for the 4 rows y_j = y + j * ldy, sharing loads of x;
 * each result equals dot1(k, x, y_j) bit for bit. */
static void dot4(int64_t k, const float *restrict x, const float *restrict y, int64_t ldy,
		 float *out)
{
	const float *restrict y0 = y, *restrict y1 = y + ldy;
	const float *restrict y2 = y + 2 * ldy, *restrict y3 = y + 3 * ldy;
	float s0[DOT_LANES] = { 0 }, s1[DOT_LANES] = { 0 };
	float s2[DOT_LANES] = { 0 }, s3[DOT_LANES] = { 0 };
	int64_t kk = 0;

	for (; kk + DOT_LANES <= k; kk += DOT_LANES) {
		for (int l = 0; l < DOT_LANES; l++) {
			float xv = x[kk + l];

			s0[l] += xv * y0[kk + l];
			s1[l] += xv * y1[kk + l];
			s2[l] += xv * y2[kk + l];
			s3[l] += xv * y3[kk + l];
		}
	}
	for (int l = 0; kk + l < k; l++) {
		float xv = x[kk + l];

		s0[l] += xv * y0[kk + l];
		s1[l] += xv * y1[kk + l];
		s2[l] += xv * y2[kk + l];
		s3[l] += xv * y3[kk + l];
	}
	for (int w = DOT_LANES / 2; w > 0; w /= 2) {
		for (int l = 0; l < w; l++) {
			s0[l] += s0[l + w];
			s1[l] += s1[l + w];
			s2[l] += s2[l + w];
			s3[l] += s3[l + w];
		}
	}
	out[0] = s0[0];
	out[1] = s1[0];
	out[2] = s2[0];
	out[3] = s3[0];
}

/* C = A B^T with rows of A (lda) and rows of B (ldb) contiguous in k. */
static void gemm_dot(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
		     const float *b, int64_t ldb, float *c, int64_t ldc)
{
	for (int64_t i = 0; i < m; i++) {
		const float *ar = a + i * lda;
		float *cr = c + i * ldc;
		int64_t j = 0;

		for (; j + 4 <= n; j += 4)
			dot4(k, ar, b + j * ldb, ldb, cr + j);
		for (; j < n; j++)
			cr[j] = dot1(k, ar, b + j * ldb);
	}
}

/* c[0, :] = sum_kk a(kk) * B[kk, :] for one row of A (a_cs apart) and a
 * row-major B: axpy over rows of B, vectorized over n, k in order. */
static void gemm_row(int64_t n, int64_t k, const float *a, int64_t a_cs, const float *b,
		     int64_t ldb, float *restrict c)
{
	for (int64_t j0 = 0; j0 < n; j0 += AXPY_NB) {
		int64_t nb = min_i64(AXPY_NB, n - j0);
		float *restrict cr = c + j0;

		for (int64_t j = 0; j < nb; j++)
			cr[j] = 0.0f;
		for (int64_t kk = 0; kk < k; kk++)
			axpy(nb, a[kk * a_cs], b + kk * ldb + j0, cr);
	}
}

/* The blocked loop's vector form (f32_avx512.c) where the INT8 side runs
 * avx512vnni, bit for bit this file's. */
static bool blocked_avx512(void)
{
#if defined(__x86_64__)
	return q8_isa_best() == Q8_ISA_AVX512VNNI;
#else
	return false;
#endif
}

static void gemm_any(bool portable, int m, int n, int k, const float *a, int lda, bool trans_a,
		     const float *b, int ldb, bool trans_b, float *c, int ldc)
{
	int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;

	if (m <= 0 || n <= 0)
		return;
	if (k <= 0) {
		for (int64_t i = 0; i < m; i++)
			memset(c + i * (int64_t)ldc, 0, (size_t)n * sizeof(float));
		return;
	}
	/* A single contiguous column of B is also a single row of B^T. */
	if (n == 1 && !trans_b && ldb == 1) {
		trans_b = true;
		ldb = k;
	}
	if (trans_b && !trans_a && (m < GEMM_MR || n < 4)) {
		gemm_dot(m, n, k, a, lda, b, ldb, c, ldc);
		return;
	}
	if (m == 1 && !trans_b) {
#if defined(__x86_64__)
		if (!portable && blocked_avx512()) {
			gemm_f32_row__avx512(n, k, a, a_cs, b, ldb, c);
			return;
		}
#endif
		gemm_row(n, k, a, a_cs, b, ldb, c);
		return;
	}
#if defined(__x86_64__)
	if (!portable && blocked_avx512()) {
		gemm_f32_blocked__avx512(m, n, k, a, a_rs, a_cs, b, ldb, trans_b, c, ldc);
		return;
	}
#endif
	gemm_blocked(m, n, k, a, a_rs, a_cs, b, ldb, trans_b, c, ldc);
}

void gemm_f32__ref(int m, int n, int k, const float *a, int lda, bool trans_a,
		   const float *b, int ldb, bool trans_b, float *c, int ldc)
{
	gemm_any(false, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc);
}

void gemm_f32__portable(int m, int n, int k, const float *a, int lda, bool trans_a,
			const float *b, int ldb, bool trans_b, float *c, int ldc)
{
	gemm_any(true, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc);
}

void gemm_bias_f32__ref(int m, int n, int k, float alpha, const float *a, bool trans_a,
			const float *b, bool trans_b, float beta, const float *bias,
			int bias_m, int bias_n, float act_min, float act_max, float *y)
{
	assert(!bias || ((bias_m == 1 || bias_m == m) && (bias_n == 1 || bias_n == n)));
	gemm_f32__ref(m, n, k, a, trans_a ? m : k, trans_a, b, trans_b ? k : n, trans_b, y, n);
	for (int64_t i = 0; i < m; i++) {
		float *yr = y + i * n;
		const float *br = bias ? bias + (bias_m == 1 ? 0 : i * bias_n) : NULL;

		if (alpha != 1.0f)
			for (int64_t j = 0; j < n; j++)
				yr[j] *= alpha;
		if (br && bias_n == 1) {
			float bv = beta * br[0];

			for (int64_t j = 0; j < n; j++)
				yr[j] += bv;
		} else if (br) {
			for (int64_t j = 0; j < n; j++)
				yr[j] += beta * br[j];
		}
		if (act_min > -INFINITY || act_max < INFINITY)
			for (int64_t j = 0; j < n; j++)
				yr[j] = clampf(yr[j], act_min, act_max);
	}
}

/* ---- Broadcast plans (add, matmul batches) ------------------------------- */

/* A broadcast iteration space over y, innermost dimension first, with the
 * element step of each operand per dimension (0 where it is broadcast).
 * Size-1 dimensions are dropped and neighbours merged when both operands
 * step through them alike, so same-shape, scalar and per-channel adds
 * become one or two long loops. */
struct bcast_plan {
	int rank;
	int64_t dims[F32_MAX_RANK];
	int64_t a_step[F32_MAX_RANK];
	int64_t b_step[F32_MAX_RANK];
	int64_t a_stride, b_stride;   /* running products while building */
};

static void bcast_init(struct bcast_plan *bp, int64_t a_elem, int64_t b_elem)
{
	bp->rank = 0;
	bp->a_stride = a_elem;
	bp->b_stride = b_elem;
}

/* Adds the next-outer dimension: y has y_d, the operands a_d, b_d (1 or y_d). */
static void bcast_push(struct bcast_plan *bp, int64_t y_d, int64_t a_d, int64_t b_d)
{
	int64_t sa = a_d == 1 ? 0 : bp->a_stride;
	int64_t sb = b_d == 1 ? 0 : bp->b_stride;
	int r = bp->rank;

	assert((a_d == 1 || a_d == y_d) && (b_d == 1 || b_d == y_d));
	bp->a_stride *= a_d;
	bp->b_stride *= b_d;
	if (y_d == 1)
		return;
	if (r > 0) {
		/* Mergeable: broadcast in both, or stepping on from the inner one. */
		int64_t ia = bp->a_step[r - 1] * bp->dims[r - 1];
		int64_t ib = bp->b_step[r - 1] * bp->dims[r - 1];
		bool a_ok = sa == 0 ? bp->a_step[r - 1] == 0 : sa == ia;
		bool b_ok = sb == 0 ? bp->b_step[r - 1] == 0 : sb == ib;

		if (a_ok && b_ok) {
			bp->dims[r - 1] *= y_d;
			return;
		}
	}
	PRESSO_CHECK(r < F32_MAX_RANK);
	bp->dims[r] = y_d;
	bp->a_step[r] = sa;
	bp->b_step[r] = sb;
	bp->rank = r + 1;
}

/* Advances the odometer idx over dims[from..rank) and the operand offsets;
 * returns false after the last position. */
static bool bcast_next(const struct bcast_plan *bp, int from, int64_t *idx, int64_t *a_off,
		       int64_t *b_off)
{
	for (int d = from; d < bp->rank; d++) {
		*a_off += bp->a_step[d];
		*b_off += bp->b_step[d];
		if (++idx[d] < bp->dims[d])
			return true;
		*a_off -= bp->a_step[d] * bp->dims[d];
		*b_off -= bp->b_step[d] * bp->dims[d];
		idx[d] = 0;
	}
	return false;
}

/* ---- MatMul -------------------------------------------------------------- */

void matmul_f32__ref(const int64_t *a_dims, int a_rank, const float *a,
		     const int64_t *b_dims, int b_rank, const float *b,
		     const int64_t *y_dims, int y_rank, float *y)
{
	int64_t m = a_rank >= 2 ? a_dims[a_rank - 2] : 1;
	int64_t k = a_dims[a_rank - 1];
	int64_t n = b_rank >= 2 ? b_dims[b_rank - 1] : 1;
	int a_nb = a_rank > 2 ? a_rank - 2 : 0, b_nb = b_rank > 2 ? b_rank - 2 : 0;
	int y_nb = y_rank - (a_rank >= 2) - (b_rank >= 2);
	struct bcast_plan bp;
	int64_t idx[F32_MAX_RANK] = { 0 };
	int64_t a_off = 0, b_off = 0, y_off = 0;

	assert(a_rank >= 1 && b_rank >= 1 && (b_rank >= 2 ? b_dims[b_rank - 2] : b_dims[0]) == k);
	assert(y_nb >= a_nb && y_nb >= b_nb);
	bcast_init(&bp, m * k, k * n);
	for (int i = y_nb - 1; i >= 0; i--) {
		int ia = i - (y_nb - a_nb), ib = i - (y_nb - b_nb);

		if (y_dims[i] == 0)
			return;
		bcast_push(&bp, y_dims[i], ia >= 0 ? a_dims[ia] : 1, ib >= 0 ? b_dims[ib] : 1);
	}
	if (m == 0 || n == 0)
		return;
	/* One operand matrix B for every batch and A's batches contiguous:
	 * the batches stack into the rows of one gemm. */
	if (bp.rank == 0 || (bp.rank == 1 && bp.b_step[0] == 0 && bp.a_step[0] == m * k)) {
		int64_t rows = m * (bp.rank ? bp.dims[0] : 1);

		gemm_f32__ref((int)rows, (int)n, (int)k, a, (int)k, false, b, (int)n, false, y,
			      (int)n);
		return;
	}
	/* dims[0] is iterated by the odometer too: a gemm per batch. */
	do {
		gemm_f32__ref((int)m, (int)n, (int)k, a + a_off, (int)k, false, b + b_off, (int)n,
			      false, y + y_off, (int)n);
		y_off += m * n;
	} while (bcast_next(&bp, 0, idx, &a_off, &b_off));
}

/* ---- Conv ---------------------------------------------------------------- */

static bool conv_is_depthwise(const struct conv2d_params *p)
{
	return p->c_in == p->group && p->c_out == p->group;
}

static bool conv_is_pointwise(const struct conv2d_params *p)
{
	return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
	       p->pad_t == 0 && p->pad_l == 0 && p->h_out == p->h_in && p->w_out == p->w_in;
}

/* Output rows per im2col band (0: this conv needs no im2col). */
static int64_t conv_band_rows(const struct conv2d_params *p)
{
	int64_t k = (int64_t)(p->c_in / p->group) * p->kh * p->kw;
	int64_t rows;

	if (conv_is_depthwise(p) || conv_is_pointwise(p) || p->h_out <= 0 || p->w_out <= 0)
		return 0;
	rows = CONV_COL_MAX_FLOATS / (k * p->w_out);
	if (rows < 1)
		rows = 1;
	return min_i64(rows, p->h_out);
}

/* The im2col of one band: at most CONV_COL_MAX_FLOATS floats unless a single
 * output row's columns are larger; 0 for depthwise and 1x1 convs. */
size_t conv2d_f32_scratch_bytes(const struct conv2d_params *p)
{
	int64_t k = (int64_t)(p->c_in / p->group) * p->kh * p->kw;

	return (size_t)(k * conv_band_rows(p) * p->w_out) * sizeof(float);
}

/* col[(c * kh + ky) * kw + kx][(oy - oy0) * w_out + ox] = x[c][iy][ix] (0 in
 * the padding) for output rows oy0 .. oy0 + rows of one image and group. */
static void conv_im2col(const struct conv2d_params *p, int c_n, const float *x, int64_t oy0,
			int64_t rows, float *restrict col)
{
	int64_t n_cols = rows * p->w_out, n_taps = (int64_t)p->kh * p->kw;

	for (int64_t row = 0; row < c_n * n_taps; row++) {
		int64_t c = row / n_taps, ky = row % n_taps / p->kw, kx = row % p->kw;
		const float *xc = x + c * p->h_in * p->w_in;
		int64_t x_off = kx * p->dil_w - p->pad_l, lo, hi;
		float *restrict dst = col + row * n_cols;

		valid_range(x_off, p->stride_w, p->w_in, p->w_out, &lo, &hi);
		for (int64_t oy = oy0; oy < oy0 + rows; oy++, dst += p->w_out) {
			int64_t iy = oy * p->stride_h - p->pad_t + ky * p->dil_h;
			const float *xr;

			if (iy < 0 || iy >= p->h_in || lo == hi) {
				memset(dst, 0, (size_t)p->w_out * sizeof(float));
				continue;
			}
			/* Column ox reads xr[x_off + ox * stride_w], in range for lo..hi. */
			xr = xc + iy * p->w_in;
			for (int64_t ox = 0; ox < lo; ox++)
				dst[ox] = 0.0f;
			if (p->stride_w == 1) {
				memcpy(dst + lo, xr + x_off + lo,
				       (size_t)(hi - lo) * sizeof(float));
			} else {
				for (int64_t ox = lo; ox < hi; ox++)
					dst[ox] = xr[x_off + ox * p->stride_w];
			}
			for (int64_t ox = hi; ox < p->w_out; ox++)
				dst[ox] = 0.0f;
		}
	}
}

/* One channel of a depthwise conv: y[oy][ox] = sum over ky, kx (in order) of
 * w[ky][kx] * x[iy][ix], skipping taps in the padding. Taps are the outer
 * loops, so each valid range is computed once per tap and the plane of y
 * (small, cache-resident) is swept kh * kw times. */
static void conv_depthwise_plane(const struct conv2d_params *p, const float *x,
				 const float *w, float *restrict y)
{
	memset(y, 0, (size_t)((int64_t)p->h_out * p->w_out) * sizeof(float));
	for (int ky = 0; ky < p->kh; ky++) {
		int64_t y_off = (int64_t)ky * p->dil_h - p->pad_t, oy_lo, oy_hi;

		valid_range(y_off, p->stride_h, p->h_in, p->h_out, &oy_lo, &oy_hi);
		for (int kx = 0; kx < p->kw; kx++) {
			int64_t x_off = (int64_t)kx * p->dil_w - p->pad_l, lo, hi;
			float wv = w[ky * p->kw + kx];

			valid_range(x_off, p->stride_w, p->w_in, p->w_out, &lo, &hi);
			for (int64_t oy = oy_lo; oy < oy_hi; oy++) {
				const float *restrict xr = x + (oy * p->stride_h + y_off) * p->w_in;
				float *restrict yr = y + oy * p->w_out;

				if (p->stride_w == 1) {
					if (hi > lo)
						axpy(hi - lo, wv, xr + x_off + lo, yr + lo);
				} else {
					for (int64_t ox = lo; ox < hi; ox++)
						yr[ox] += wv * xr[x_off + ox * p->stride_w];
				}
			}
		}
	}
}

/* Conv of one image and group, without bias or clamp: x [cin_g, h_in, w_in],
 * w [cout_g, cin_g, kh, kw] -> y [cout_g, h_out, w_out]. */
static void conv_group(const struct conv2d_params *p, const float *x, const float *w,
		       float *y, float *scratch)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	int hw_out = p->h_out * p->w_out;
	int k = cin_g * p->kh * p->kw;
	int64_t band = conv_band_rows(p);

	if (conv_is_depthwise(p)) {
		conv_depthwise_plane(p, x, w, y);
		return;
	}
	if (conv_is_pointwise(p)) {
		gemm_f32__ref(cout_g, hw_out, cin_g, w, cin_g, false, x, hw_out, false, y, hw_out);
		return;
	}
	for (int64_t oy0 = 0; oy0 < p->h_out; oy0 += band) {
		int n_cols = (int)(min_i64(band, p->h_out - oy0) * p->w_out);

		conv_im2col(p, cin_g, x, oy0, n_cols / p->w_out, scratch);
		gemm_f32__ref(cout_g, n_cols, k, w, k, false, scratch, n_cols, false,
			      y + oy0 * p->w_out, hw_out);
	}
}

void conv2d_f32__ref(const struct conv2d_params *p, const float *x, const float *w,
		     const float *bias, float *y, float *scratch)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;
	bool clamp = p->act_min > -INFINITY || p->act_max < INFINITY;

	assert(p->group > 0 && p->c_in % p->group == 0 && p->c_out % p->group == 0);
	assert(conv_band_rows(p) == 0 || scratch);
	for (int64_t ni = 0; ni < p->n; ni++) {
		for (int g = 0; g < p->group; g++) {
			int oc0 = g * cout_g;
			float *yg = y + (ni * p->c_out + oc0) * hw_out;

			conv_group(p, x + (ni * p->c_in + (int64_t)g * cin_g) * hw_in,
				   w + (int64_t)oc0 * cin_g * p->kh * p->kw, yg, scratch);
			if (!bias && !clamp)
				continue;
			/* Bias and clamp while the group's output is still cached. */
			for (int oc = 0; oc < cout_g; oc++) {
				float *restrict yc = yg + oc * hw_out;
				float bv = bias ? bias[oc0 + oc] : 0.0f;

				if (clamp) {
					for (int64_t i = 0; i < hw_out; i++)
						yc[i] = clampf(yc[i] + bv, p->act_min, p->act_max);
				} else {
					for (int64_t i = 0; i < hw_out; i++)
						yc[i] += bv;
				}
			}
		}
	}
}

/* ---- Pooling ------------------------------------------------------------- */

void maxpool2d_f32__ref(const struct pool2d_params *p, const float *x, float *y)
{
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;

	for (int64_t nc = 0; nc < (int64_t)p->n * p->c; nc++) {
		const float *xc = x + nc * hw_in;
		float *yc = y + nc * hw_out;

		for (int64_t oy = 0; oy < p->h_out; oy++) {
			int64_t iy0 = oy * p->stride_h - p->pad_t, ky_lo, ky_hi;

			valid_range(iy0, p->dil_h, p->h_in, p->kh, &ky_lo, &ky_hi);
			for (int64_t ox = 0; ox < p->w_out; ox++) {
				int64_t ix0 = ox * p->stride_w - p->pad_l, kx_lo, kx_hi;
				float mx = -INFINITY;

				valid_range(ix0, p->dil_w, p->w_in, p->kw, &kx_lo, &kx_hi);
				for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
					const float *xr = xc + (iy0 + ky * p->dil_h) * p->w_in;

					for (int64_t kx = kx_lo; kx < kx_hi; kx++) {
						float v = xr[ix0 + kx * p->dil_w];

						/* NaN wins, as in numpy/ONNX max. */
						mx = v > mx || v != v ? v : mx;
					}
				}
				yc[oy * p->w_out + ox] = mx;
			}
		}
	}
}

/* Divisor: taps inside the input, or with count_include_pad those inside
 * the padded input [-pad, in + pad_end) - never taps beyond pad_b/pad_r,
 * which only ceil-mode windows reach. A window with no counted tap gives 0. */
void avgpool2d_f32__ref(const struct pool2d_params *p, const float *x, float *y)
{
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;

	for (int64_t nc = 0; nc < (int64_t)p->n * p->c; nc++) {
		const float *xc = x + nc * hw_in;
		float *yc = y + nc * hw_out;

		for (int64_t oy = 0; oy < p->h_out; oy++) {
			int64_t iy0 = oy * p->stride_h - p->pad_t, ky_lo, ky_hi, py_lo, py_hi;

			valid_range(iy0, p->dil_h, p->h_in, p->kh, &ky_lo, &ky_hi);
			valid_range(iy0 + p->pad_t, p->dil_h,
				    (int64_t)p->pad_t + p->h_in + p->pad_b, p->kh, &py_lo, &py_hi);
			for (int64_t ox = 0; ox < p->w_out; ox++) {
				int64_t ix0 = ox * p->stride_w - p->pad_l, count;
				int64_t kx_lo, kx_hi, px_lo, px_hi;
				float sum = 0.0f;

				valid_range(ix0, p->dil_w, p->w_in, p->kw, &kx_lo, &kx_hi);
				valid_range(ix0 + p->pad_l, p->dil_w,
					    (int64_t)p->pad_l + p->w_in + p->pad_r, p->kw, &px_lo,
					    &px_hi);
				for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
					const float *xr = xc + (iy0 + ky * p->dil_h) * p->w_in;

					for (int64_t kx = kx_lo; kx < kx_hi; kx++)
						sum += xr[ix0 + kx * p->dil_w];
				}
				if (p->count_include_pad)
					count = (py_hi - py_lo) * (px_hi - px_lo);
				else
					count = (ky_hi - ky_lo) * (kx_hi - kx_lo);
				yc[oy * p->w_out + ox] = count > 0 ? sum / (float)count : 0.0f;
			}
		}
	}
}

/* Sum of x[0..count) in DOT_LANES interleaved partial sums. */
static float sum_lanes(int64_t count, const float *restrict x)
{
	float s[DOT_LANES] = { 0 };
	int64_t i = 0;

	for (; i + DOT_LANES <= count; i += DOT_LANES)
		for (int l = 0; l < DOT_LANES; l++)
			s[l] += x[i + l];
	for (int l = 0; i + l < count; l++)
		s[l] += x[i + l];
	for (int w = DOT_LANES / 2; w > 0; w /= 2)
		for (int l = 0; l < w; l++)
			s[l] += s[l + w];
	return s[0];
}

void global_avgpool_f32__ref(int n, int c, int hw, const float *x, float *y)
{
	for (int64_t i = 0; i < (int64_t)n * c; i++)
		y[i] = hw > 0 ? sum_lanes(hw, x + i * hw) / (float)hw : 0.0f;
}

/* ---- Elementwise --------------------------------------------------------- */

void clip_f32__ref(int64_t count, const float *x, float lo, float hi, float *y)
{
	for (int64_t i = 0; i < count; i++)
		y[i] = clampf(x[i], lo, hi);
}

/* y = x * s + t with s = scale / sqrt(var + eps), t = bias - mean * s, both
 * folded per channel in double. */
void batchnorm_f32__ref(int n, int c, int64_t inner, const float *x, const float *scale,
			const float *bias, const float *mean, const float *var,
			float epsilon, float *y)
{
	for (int ch = 0; ch < c; ch++) {
		double s = scale[ch] / sqrt((double)var[ch] + epsilon);
		float sf = (float)s, tf = (float)(bias[ch] - mean[ch] * s);

		for (int64_t ni = 0; ni < n; ni++) {
			const float *restrict xc = x + (ni * c + ch) * inner;
			float *restrict yc = y + (ni * c + ch) * inner;

			for (int64_t i = 0; i < inner; i++)
				yc[i] = xc[i] * sf + tf;
		}
	}
}

/* ---- Broadcasting binary ops ------------------------------------------------ */

static inline float f_add(float a, float b)
{
	return a + b;
}

static inline float f_sub(float a, float b)
{
	return a - b;
}

static inline float f_mul(float a, float b)
{
	return a * b;
}

static inline float f_div(float a, float b)
{
	return a / b;
}

/* b == 2 (a square, the commonest exponent) is the correctly rounded a * a;
 * powf is within an ulp of it, not always equal */
static inline float f_pow(float a, float b)
{
	return b == 2.0f ? a * a : powf(a, b);
}

static inline float f_prelu(float a, float slope)
{
	return a < 0.0f ? slope * a : a;
}

static inline float f_max(float a, float b)
{
	return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
}

static inline float f_min(float a, float b)
{
	return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
}

float binary_f32_scalar(enum f32_binary f, float a, float b)
{
	switch (f) {
	case F32_ADD:
		return f_add(a, b);
	case F32_SUB:
		return f_sub(a, b);
	case F32_MUL:
		return f_mul(a, b);
	case F32_DIV:
		return f_div(a, b);
	case F32_POW:
		return f_pow(a, b);
	case F32_PRELU:
		return f_prelu(a, b);
	case F32_MAX:
		return f_max(a, b);
	case F32_MIN:
		return f_min(a, b);
	case F32_BINARY_COUNT:
		break;
	}
	PRESSO_CHECK(!"a binary op");
	return 0.0f;
}

/* One run of `inner` outputs, each operand stepping by 1 (sa, sb != 0) or
 * standing still. y may be a when both step by 1. */
#define BINARY_RUN(F)                                                       \
	do {                                                                \
		if (sa && sb) {                                             \
			for (int64_t i = 0; i < inner; i++)                 \
				yp[i] = F(ap[i], bq[i]);                    \
		} else if (sa) {                                            \
			float bv = bq[0];                                   \
			for (int64_t i = 0; i < inner; i++)                 \
				yp[i] = F(ap[i], bv);                       \
		} else if (sb) {                                            \
			float av = ap[0];                                   \
			for (int64_t i = 0; i < inner; i++)                 \
				yp[i] = F(av, bq[i]);                       \
		} else {                                                    \
			float v = F(ap[0], bq[0]);                          \
			for (int64_t i = 0; i < inner; i++)                 \
				yp[i] = v;                                  \
		}                                                           \
	} while (0)

static void binary_run(enum f32_binary f, int64_t inner, const float *ap, int64_t sa,
		       const float *bq, int64_t sb, float *yp)
{
	switch (f) {
	case F32_ADD:
		BINARY_RUN(f_add);
		break;
	case F32_SUB:
		BINARY_RUN(f_sub);
		break;
	case F32_MUL:
		BINARY_RUN(f_mul);
		break;
	case F32_DIV:
		BINARY_RUN(f_div);
		break;
	case F32_POW:
		BINARY_RUN(f_pow);
		break;
	case F32_PRELU:
		BINARY_RUN(f_prelu);
		break;
	case F32_MAX:
		BINARY_RUN(f_max);
		break;
	case F32_MIN:
		BINARY_RUN(f_min);
		break;
	case F32_BINARY_COUNT:
		PRESSO_CHECK(!"a binary op");
	}
}

void binary_f32__ref(enum f32_binary f, const int64_t *a_dims, const float *a,
		     const int64_t *b_dims, const float *b, const int64_t *y_dims, int y_rank,
		     float *y)
{
	struct bcast_plan bp;
	int64_t idx[F32_MAX_RANK] = { 0 };
	int64_t a_off = 0, b_off = 0;

	bcast_init(&bp, 1, 1);
	for (int i = y_rank - 1; i >= 0; i--) {
		if (y_dims[i] == 0)
			return;
		bcast_push(&bp, y_dims[i], a_dims[i], b_dims[i]);
	}
	if (bp.rank == 0) {
		y[0] = binary_f32_scalar(f, a[0], b[0]);
		return;
	}
	/* The innermost merged dimension steps by 1 or 0 in each operand. */
	do {
		binary_run(f, bp.dims[0], a + a_off, bp.a_step[0], b + b_off, bp.b_step[0], y);
		y += bp.dims[0];
	} while (bcast_next(&bp, 1, idx, &a_off, &b_off));
}

void add_f32__ref(const int64_t *a_dims, const float *a, const int64_t *b_dims,
		  const float *b, const int64_t *y_dims, int y_rank, float *y)
{
	binary_f32__ref(F32_ADD, a_dims, a, b_dims, b, y_dims, y_rank, y);
}

/* ---- Elementwise functions of one operand ------------------------------------ */

/* Never exponentiates a positive number: no overflow, and 1 + e stays exact
 * where it matters (e small). */
static inline float f_sigmoid(float x)
{
	if (x >= 0.0f)
		return 1.0f / (1.0f + expf(-x));
	float e = expf(x);
	return e / (1.0f + e);
}

static inline float f_hardsigmoid(float x, float alpha, float beta)
{
	return clampf(alpha * x + beta, 0.0f, 1.0f);
}

static inline float f_hardswish(float x)
{
	return x * clampf(x * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
}

static inline float f_leakyrelu(float x, float alpha)
{
	return x < 0.0f ? alpha * x : x;
}

static inline float f_elu(float x, float alpha)
{
	return x < 0.0f ? alpha * expm1f(x) : x;
}

static inline float f_selu(float x, float alpha, float gamma)
{
	return x <= 0.0f ? gamma * (alpha * expm1f(x)) : gamma * x;
}

static inline float f_celu(float x, float alpha)
{
	return x > 0.0f ? x : alpha * expm1f(x / alpha);
}

/* ln(1 + e^x) without overflow: x + ln(1 + e^-x) for x > 0 */
static inline float f_softplus(float x)
{
	return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline float f_softsign(float x)
{
	return x / (1.0f + fabsf(x));
}

static inline float f_thresholdedrelu(float x, float alpha)
{
	return x > alpha ? x : 0.0f;
}

float unary_f32_scalar(enum f32_unary f, float x, float alpha, float beta)
{
	switch (f) {
	case F32_SIGMOID:
		return f_sigmoid(x);
	case F32_TANH:
		return tanhf(x);
	case F32_HARDSIGMOID:
		return f_hardsigmoid(x, alpha, beta);
	case F32_HARDSWISH:
		return f_hardswish(x);
	case F32_LEAKYRELU:
		return f_leakyrelu(x, alpha);
	case F32_SQRT:
		return sqrtf(x);
	case F32_ERF:
		return erff(x);
	case F32_EXP:
		return expf(x);
	case F32_NEG:
		return -x;
	case F32_RECIPROCAL:
		return 1.0f / x;
	case F32_ABS:
		return fabsf(x);
	case F32_ELU:
		return f_elu(x, alpha);
	case F32_SELU:
		return f_selu(x, alpha, beta);
	case F32_CELU:
		return f_celu(x, alpha);
	case F32_SOFTPLUS:
		return f_softplus(x);
	case F32_SOFTSIGN:
		return f_softsign(x);
	case F32_THRESHOLDEDRELU:
		return f_thresholdedrelu(x, alpha);
	case F32_LOG:
		return logf(x);
	case F32_UNARY_COUNT:
		break;
	}
	PRESSO_CHECK(!"a unary op");
	return 0.0f;
}

/* The loops call the same inline functions as unary_f32_scalar(), one per
 * op so that the cheap ones vectorize; libm calls stay scalar (no fast-math),
 * so every element is exactly unary_f32_scalar()'s value. */
void unary_f32__ref(enum f32_unary f, int64_t count, const float *x, float alpha, float beta,
		    float *y)
{
	switch (f) {
	case F32_SIGMOID:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_sigmoid(x[i]);
		break;
	case F32_TANH:
		for (int64_t i = 0; i < count; i++)
			y[i] = tanhf(x[i]);
		break;
	case F32_HARDSIGMOID:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_hardsigmoid(x[i], alpha, beta);
		break;
	case F32_HARDSWISH:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_hardswish(x[i]);
		break;
	case F32_LEAKYRELU:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_leakyrelu(x[i], alpha);
		break;
	case F32_SQRT:
		for (int64_t i = 0; i < count; i++)
			y[i] = sqrtf(x[i]);
		break;
	case F32_ERF:
		for (int64_t i = 0; i < count; i++)
			y[i] = erff(x[i]);
		break;
	case F32_EXP:
		for (int64_t i = 0; i < count; i++)
			y[i] = expf(x[i]);
		break;
	case F32_NEG:
		for (int64_t i = 0; i < count; i++)
			y[i] = -x[i];
		break;
	case F32_RECIPROCAL:
		for (int64_t i = 0; i < count; i++)
			y[i] = 1.0f / x[i];
		break;
	case F32_ABS:
		for (int64_t i = 0; i < count; i++)
			y[i] = fabsf(x[i]);
		break;
	case F32_ELU:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_elu(x[i], alpha);
		break;
	case F32_SELU:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_selu(x[i], alpha, beta);
		break;
	case F32_CELU:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_celu(x[i], alpha);
		break;
	case F32_SOFTPLUS:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_softplus(x[i]);
		break;
	case F32_SOFTSIGN:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_softsign(x[i]);
		break;
	case F32_THRESHOLDEDRELU:
		for (int64_t i = 0; i < count; i++)
			y[i] = f_thresholdedrelu(x[i], alpha);
		break;
	case F32_LOG:
		for (int64_t i = 0; i < count; i++)
			y[i] = logf(x[i]);
		break;
	case F32_UNARY_COUNT:
		PRESSO_CHECK(!"a unary op");
	}
}

/* ---- Pad ----------------------------------------------------------------- */

/* Rows of the innermost dimension: an odometer over the outer output
 * dimensions; a row outside x in any of them is all value, else value, the
 * x row, value. */
/* The input coordinate of output index i (ONNX's
 * coordinate_transformation_mode), in double precision. */
static double resize_source(enum resize_coord coord, int64_t i, int64_t len_in, int64_t len_out,
			    double len_resized, double s)
{
	switch (coord) {
	case RESIZE_PYTORCH_HALF_PIXEL:
		return len_out > 1 ? ((double)i + 0.5) / s - 0.5 : 0.0;
	case RESIZE_ALIGN_CORNERS:
		return len_out > 1 ? (double)i * (double)(len_in - 1) / (len_resized - 1.0) : 0.0;
	case RESIZE_ASYMMETRIC:
		return (double)i / s;
	case RESIZE_TF_HALF_PIXEL_FOR_NN:
		return ((double)i + 0.5) / s;
	default: /* RESIZE_HALF_PIXEL */
		return ((double)i + 0.5) / s - 0.5;
	}
}

void resize_linear_map(enum resize_coord coord, int64_t len_in, int64_t len_out, float scale,
		       double len_resized, const struct resize_taps *t)
{
	for (int64_t i = 0; i < len_out; i++) {
		double x = resize_source(coord, i, len_in, len_out, len_resized, scale);
		x = x < 0.0 ? 0.0 : x > (double)(len_in - 1) ? (double)(len_in - 1) : x;
		int64_t f = (int64_t)floor(x);
		t->i0[i] = f;
		t->i1[i] = f + 1 < len_in ? f + 1 : f;
		t->w[i] = (float)(x - (double)f);
	}
}

void resize_linear_f32__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho, int64_t Wo,
			    const struct resize_taps *th, const struct resize_taps *tw,
			    const float *x, float *y)
{
	for (int64_t p = 0; p < P; p++)
		for (int64_t h = 0; h < Ho; h++) {
			const float *r0 = x + ((p * Hi + th->i0[h]) * Wi) * C;
			const float *r1 = x + ((p * Hi + th->i1[h]) * Wi) * C;
			float wh = th->w[h];
			float *out = y + ((p * Ho + h) * Wo) * C;
			for (int64_t w = 0; w < Wo; w++) {
				int64_t a = tw->i0[w] * C, b = tw->i1[w] * C;
				float ww = tw->w[w];
				for (int64_t c = 0; c < C; c++) {
					float top = (1.0f - ww) * r0[a + c] + ww * r0[b + c];
					float bot = (1.0f - ww) * r1[a + c] + ww * r1[b + c];
					out[w * C + c] = (1.0f - wh) * top + wh * bot;
				}
			}
		}
}

void resize_linear_u8__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho, int64_t Wo,
			   const struct resize_taps *th, const struct resize_taps *tw,
			   const uint8_t *x, uint8_t *y)
{
	for (int64_t p = 0; p < P; p++)
		for (int64_t h = 0; h < Ho; h++) {
			const uint8_t *r0 = x + ((p * Hi + th->i0[h]) * Wi) * C;
			const uint8_t *r1 = x + ((p * Hi + th->i1[h]) * Wi) * C;
			float wh = th->w[h];
			uint8_t *out = y + ((p * Ho + h) * Wo) * C;
			for (int64_t w = 0; w < Wo; w++) {
				int64_t a = tw->i0[w] * C, b = tw->i1[w] * C;
				float ww = tw->w[w];
				for (int64_t c = 0; c < C; c++) {
					float top = (1.0f - ww) * (float)r0[a + c] + ww * (float)r0[b + c];
					float bot = (1.0f - ww) * (float)r1[a + c] + ww * (float)r1[b + c];
					float v = nearbyintf((1.0f - wh) * top + wh * bot);
					out[w * C + c] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
				}
			}
		}
}

void resize_linear_backward_f32__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho,
				     int64_t Wo, const struct resize_taps *th,
				     const struct resize_taps *tw, const float *dy, float *dx)
{
	for (int64_t p = 0; p < P; p++)
		for (int64_t h = 0; h < Ho; h++) {
			float *r0 = dx + ((p * Hi + th->i0[h]) * Wi) * C;
			float *r1 = dx + ((p * Hi + th->i1[h]) * Wi) * C;
			float wh = th->w[h];
			const float *g = dy + ((p * Ho + h) * Wo) * C;
			for (int64_t w = 0; w < Wo; w++) {
				int64_t a = tw->i0[w] * C, b = tw->i1[w] * C;
				float ww = tw->w[w];
				for (int64_t c = 0; c < C; c++) {
					float d = g[w * C + c], top = (1.0f - wh) * d, bot = wh * d;
					r0[a + c] += (1.0f - ww) * top;
					r0[b + c] += ww * top;
					r1[a + c] += (1.0f - ww) * bot;
					r1[b + c] += ww * bot;
				}
			}
		}
}

void resize_nearest_map(enum resize_coord coord, enum resize_round round, int64_t len_in,
			int64_t len_out, float scale, int64_t *map)
{
	double s = scale;
	for (int64_t i = 0; i < len_out; i++) {
		double x = resize_source(coord, i, len_in, len_out, (double)len_out, s);
		double f = floor(x), r;
		switch (round) {
		case RESIZE_ROUND_PREFER_CEIL:
			r = x - f >= 0.5 ? f + 1.0 : f;
			break;
		case RESIZE_FLOOR:
			r = f;
			break;
		case RESIZE_CEIL:
			r = ceil(x);
			break;
		default: /* RESIZE_ROUND_PREFER_FLOOR */
			r = x - f > 0.5 ? f + 1.0 : f;
			break;
		}
		map[i] = r < 0.0 ? 0 : r > (double)(len_in - 1) ? len_in - 1 : (int64_t)r;
	}
}

/* The rows of a nearest resize's output, in order: each one's offset in the
 * input (the last dimension's map then picks the elements of the row). */
struct resize_walk {
	int rank;
	const int64_t *map[F32_MAX_RANK];
	int64_t idx[F32_MAX_RANK], x_strides[F32_MAX_RANK];
	const int64_t *y_dims;
};

/* False when the output is empty. */
static bool resize_walk_init(struct resize_walk *w, int rank, const int64_t *x_dims,
			     const int64_t *y_dims, const int64_t *maps)
{
	PRESSO_CHECK(rank >= 1 && rank <= F32_MAX_RANK);
	w->rank = rank;
	w->y_dims = y_dims;
	for (int d = 0; d < rank; d++) {
		if (y_dims[d] == 0)
			return false;
		w->map[d] = maps;
		w->idx[d] = 0;
		maps += y_dims[d];
	}
	w->x_strides[rank - 1] = 1;
	for (int d = rank - 2; d >= 0; d--)
		w->x_strides[d] = w->x_strides[d + 1] * x_dims[d + 1];
	return true;
}

static int64_t resize_walk_offset(const struct resize_walk *w)
{
	int64_t x_off = 0;
	for (int d = 0; d < w->rank - 1; d++)
		x_off += w->map[d][w->idx[d]] * w->x_strides[d];
	return x_off;
}

/* Moves to the next row; false after the last. */
static bool resize_walk_next(struct resize_walk *w)
{
	for (int d = w->rank - 2; d >= 0; d--) {
		if (++w->idx[d] < w->y_dims[d])
			return true;
		w->idx[d] = 0;
	}
	return false;
}

void resize_nearest__ref(int rank, const int64_t *x_dims, const int64_t *y_dims,
			 const int64_t *maps, size_t elem_bytes, const void *x, void *y)
{
	struct resize_walk w;
	if (!resize_walk_init(&w, rank, x_dims, y_dims, maps))
		return;
	const uint8_t *xb = x;
	uint8_t *yb = y;
	int64_t row = y_dims[rank - 1];
	const int64_t *last = w.map[rank - 1];
	do {
		const uint8_t *src = xb + (size_t)resize_walk_offset(&w) * elem_bytes;
		if (elem_bytes == 1) {
			for (int64_t i = 0; i < row; i++)
				yb[i] = src[last[i]];
		} else {
			for (int64_t i = 0; i < row; i++)
				memcpy(yb + (size_t)i * elem_bytes, src + (size_t)last[i] * elem_bytes,
				       elem_bytes);
		}
		yb += (size_t)row * elem_bytes;
	} while (resize_walk_next(&w));
}

void resize_nearest_backward_f32__ref(int rank, const int64_t *x_dims, const int64_t *y_dims,
				      const int64_t *maps, const float *dy, float *dx)
{
	struct resize_walk w;
	if (!resize_walk_init(&w, rank, x_dims, y_dims, maps))
		return;
	int64_t row = y_dims[rank - 1];
	const int64_t *last = w.map[rank - 1];
	do {
		float *dst = dx + resize_walk_offset(&w);
		for (int64_t i = 0; i < row; i++)
			dst[last[i]] += dy[i];
		dy += row;
	} while (resize_walk_next(&w));
}

void pad_f32__ref(int rank, const int64_t *x_dims, const int64_t *pads, float value,
		  const float *x, float *y)
{
	int64_t y_dims[F32_MAX_RANK], idx[F32_MAX_RANK] = { 0 }, x_strides[F32_MAX_RANK];

	PRESSO_CHECK(rank <= F32_MAX_RANK);
	if (rank == 0) {
		y[0] = x[0];
		return;
	}
	for (int d = 0; d < rank; d++) {
		y_dims[d] = x_dims[d] + pads[d] + pads[rank + d];
		if (y_dims[d] == 0)
			return;
	}
	x_strides[rank - 1] = 1;
	for (int d = rank - 2; d >= 0; d--)
		x_strides[d] = x_strides[d + 1] * x_dims[d + 1];
	int64_t w = x_dims[rank - 1], left = pads[rank - 1], right = pads[2 * rank - 1];
	int64_t row = y_dims[rank - 1];
	for (;;) {
		bool inside = w > 0;
		int64_t x_off = 0;
		for (int d = 0; d < rank - 1 && inside; d++) {
			int64_t xi = idx[d] - pads[d];
			inside = xi >= 0 && xi < x_dims[d];
			x_off += xi * x_strides[d];
		}
		if (!inside) {
			for (int64_t i = 0; i < row; i++)
				y[i] = value;
		} else {
			for (int64_t i = 0; i < left; i++)
				y[i] = value;
			memcpy(y + left, x + x_off, sizeof(float) * (size_t)w);
			for (int64_t i = 0; i < right; i++)
				y[left + w + i] = value;
		}
		y += row;
		int d = rank - 2;
		for (; d >= 0; d--) {
			if (++idx[d] < y_dims[d])
				break;
			idx[d] = 0;
		}
		if (d < 0)
			return;
	}
}

void slice_f32__ref(int64_t outer, int64_t dim, int64_t inner, int64_t first, int64_t step,
		    int64_t count, const float *x, float *y)
{
	for (int64_t o = 0; o < outer; o++)
		for (int64_t k = 0; k < count; k++) {
			memcpy(y, x + (o * dim + first + k * step) * inner, sizeof(float) * (size_t)inner);
			y += inner;
		}
}

/* ---- ReduceSum, ReduceMax, ReduceMin, ReduceL2 ------------------------------ */

void reduce_f32__ref(enum f32_reduce f, int rank, const int64_t *x_dims, const bool *reduce,
		     const float *x, float *y)
{
	int64_t y_stride[F32_MAX_RANK], idx[F32_MAX_RANK] = {0}, n_y = 1, total = 1;
	PRESSO_CHECK(rank <= F32_MAX_RANK);
	for (int d = rank - 1; d >= 0; d--) {
		y_stride[d] = reduce[d] ? 0 : n_y;
		if (!reduce[d])
			n_y *= x_dims[d];
		total *= x_dims[d];
	}
	float init = f == F32_REDUCE_MAX ? -INFINITY : f == F32_REDUCE_MIN ? INFINITY : 0.0f;
	for (int64_t i = 0; i < n_y; i++)
		y[i] = init;
	int64_t yo = 0;
	for (int64_t i = 0; i < total; i++) {
		float v = x[i];
		switch (f) {
		case F32_REDUCE_SUM:
			y[yo] += v;
			break;
		case F32_REDUCE_MAX:
			y[yo] = v > y[yo] || isnan(v) ? v : y[yo];
			break;
		case F32_REDUCE_MIN:
			y[yo] = v < y[yo] || isnan(v) ? v : y[yo];
			break;
		default: /* F32_REDUCE_L2, F32_REDUCE_SUMSQUARE */
			y[yo] += v * v;
			break;
		}
		for (int d = rank - 1; d >= 0; d--) { /* the odometer, y's offset with it */
			yo += y_stride[d];
			if (++idx[d] < x_dims[d])
				break;
			yo -= y_stride[d] * x_dims[d];
			idx[d] = 0;
		}
	}
	if (f == F32_REDUCE_L2)
		for (int64_t i = 0; i < n_y; i++)
			y[i] = sqrtf(y[i]);
}

/* ---- ReduceMean ---------------------------------------------------------- */

/* Size-1 dimensions are dropped and neighbours of the same kind merged. With
 * one reduced run between kept ones, x is [outer, dim, inner]: a row mean
 * (inner 1) sums in DOT_LANES partial sums, otherwise rows of inner values are
 * added in order. Any other pattern adds every x into its y in x's order. */
void reduce_mean_f32__ref(int rank, const int64_t *x_dims, const bool *reduce, const float *x,
			  float *y)
{
	int64_t dims[F32_MAX_RANK], count = 1, total = 1, n_y = 1;
	bool red[F32_MAX_RANK];
	int r = 0, n_red_runs = 0;

	PRESSO_CHECK(rank <= F32_MAX_RANK);
	for (int d = 0; d < rank; d++) {
		total *= x_dims[d];
		if (reduce[d])
			count *= x_dims[d];
		else
			n_y *= x_dims[d];
		if (x_dims[d] == 1)
			continue;
		if (r > 0 && red[r - 1] == reduce[d]) {
			dims[r - 1] *= x_dims[d];
			continue;
		}
		dims[r] = x_dims[d];
		red[r] = reduce[d];
		n_red_runs += reduce[d];
		r++;
	}
	if (n_y == 0)
		return;
	if (total == 0 || count == 1) {
		for (int64_t i = 0; i < n_y; i++)
			y[i] = total == 0 ? NAN : x[i]; /* the mean of nothing */
		return;
	}
	float inv = (float)count;
	if (n_red_runs == 1) {
		int at = 0;
		while (!red[at])
			at++;
		int64_t outer = 1, inner = 1, dim = dims[at];
		for (int d = 0; d < at; d++)
			outer *= dims[d];
		for (int d = at + 1; d < r; d++)
			inner *= dims[d];
		for (int64_t o = 0; o < outer; o++) {
			const float *xo = x + o * dim * inner;
			float *yo = y + o * inner;
			if (inner == 1) {
				yo[0] = sum_lanes(dim, xo) / inv;
				continue;
			}
			memcpy(yo, xo, sizeof(float) * (size_t)inner);
			for (int64_t k = 1; k < dim; k++)
				axpy(inner, 1.0f, xo + k * inner, yo);
			for (int64_t i = 0; i < inner; i++)
				yo[i] /= inv;
		}
		return;
	}
	/* y strides of the merged dimensions (0 for reduced ones) */
	int64_t ys[F32_MAX_RANK], idx[F32_MAX_RANK] = { 0 }, step = 1, y_off = 0;
	for (int d = r - 1; d >= 0; d--) {
		ys[d] = red[d] ? 0 : step;
		if (!red[d])
			step *= dims[d];
	}
	for (int64_t i = 0; i < n_y; i++)
		y[i] = 0.0f;
	for (int64_t i = 0; i < total; i++) {
		y[y_off] += x[i];
		for (int d = r - 1; d >= 0; d--) {
			y_off += ys[d];
			if (++idx[d] < dims[d])
				break;
			y_off -= ys[d] * dims[d];
			idx[d] = 0;
		}
	}
	for (int64_t i = 0; i < n_y; i++)
		y[i] /= inv;
}

/* ---- Normalisation --------------------------------------------------------- */

/* Mean and variance in double over each row (two passes), then one float
 * multiply-add per value with the row's 1 / sqrt(var + epsilon). */
void layernorm_f32__ref(int64_t outer, int64_t inner, const float *x, const float *scale,
			int64_t n_scale, const float *bias, int64_t n_bias, float epsilon, float *y)
{
	for (int64_t o = 0; o < outer; o++) {
		const float *xr = x + o * inner;
		float *yr = y + o * inner;
		double sum = 0, sq = 0;
		for (int64_t i = 0; i < inner; i++)
			sum += xr[i];
		double mean = inner ? sum / (double)inner : 0;
		for (int64_t i = 0; i < inner; i++) {
			double dv = xr[i] - mean;
			sq += dv * dv;
		}
		double var = inner ? sq / (double)inner : 0;
		float inv = (float)(1.0 / sqrt(var + (double)epsilon)), m = (float)mean;
		for (int64_t i = 0; i < inner; i++) {
			float v = (xr[i] - m) * inv * scale[i % n_scale];
			yr[i] = bias ? v + bias[i % n_bias] : v;
		}
	}
}

void lrn_f32__ref(int n, int c, int64_t inner, int size, float alpha, float beta, float bias,
		  const float *x, float *y)
{
	int before = (size - 1) / 2, after = size / 2;
	float k = alpha / (float)size;
	for (int ni = 0; ni < n; ni++)
		for (int ch = 0; ch < c; ch++) {
			int lo = ch - before < 0 ? 0 : ch - before;
			int hi = ch + after > c - 1 ? c - 1 : ch + after;
			const float *xc = x + ((int64_t)ni * c + ch) * inner;
			float *yc = y + ((int64_t)ni * c + ch) * inner;
			for (int64_t i = 0; i < inner; i++) {
				float sq = 0.0f;
				for (int j = lo; j <= hi; j++) {
					float v = x[((int64_t)ni * c + j) * inner + i];
					sq += v * v;
				}
				yc[i] = xc[i] / powf(bias + k * sq, beta);
			}
		}
}

void concat_f32__ref(int n_in, const float *const *xs, const int64_t *axis_dims,
		     int64_t outer, int64_t inner, float *y)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int t = 0; t < n_in; t++) {
			int64_t len = axis_dims[t] * inner;

			memcpy(y, xs[t] + o * len, (size_t)len * sizeof(float));
			y += len;
		}
	}
}

/* ---- Softmax ------------------------------------------------------------- */

/* Shared by softmax and logsoftmax: y = exp(x - max) / sum, or
 * y = (x - max) - log(sum), max and sum taken along the [outer, dim, inner]
 * middle axis. */
static void softmax_any(int64_t outer, int64_t dim, int64_t inner, const float *x, float *y,
			bool log_out)
{
	float mx[SOFTMAX_CHUNK], sum[SOFTMAX_CHUNK];

	if (dim <= 0)
		return;
	for (int64_t o = 0; o < outer; o++) {
		const float *xo = x + o * dim * inner;
		float *yo = y + o * dim * inner;

		for (int64_t i0 = 0; i0 < inner; i0 += SOFTMAX_CHUNK) {
			int64_t cn = min_i64(SOFTMAX_CHUNK, inner - i0);

			for (int64_t i = 0; i < cn; i++) {
				mx[i] = xo[i0 + i];
				sum[i] = 0.0f;
			}
			for (int64_t d = 1; d < dim; d++)
				for (int64_t i = 0; i < cn; i++) {
					float v = xo[d * inner + i0 + i];

					mx[i] = v > mx[i] ? v : mx[i];
				}
			for (int64_t d = 0; d < dim; d++) {
				const float *xr = xo + d * inner + i0;
				float *yr = yo + d * inner + i0;

				for (int64_t i = 0; i < cn; i++) {
					float e = expf(xr[i] - mx[i]);

					sum[i] += e;
					if (!log_out)
						yr[i] = e;
				}
			}
			for (int64_t d = 0; d < dim; d++) {
				const float *xr = xo + d * inner + i0;
				float *yr = yo + d * inner + i0;

				if (log_out) {
					for (int64_t i = 0; i < cn; i++)
						yr[i] = (xr[i] - mx[i]) - logf(sum[i]);
				} else {
					for (int64_t i = 0; i < cn; i++)
						yr[i] /= sum[i];
				}
			}
		}
	}
}

void softmax_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *x, float *y)
{
	softmax_any(outer, dim, inner, x, y, false);
}

void logsoftmax_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *x,
			 float *y)
{
	softmax_any(outer, dim, inner, x, y, true);
}

/* ---- Transpose ----------------------------------------------------------- */

/* Output dimensions (outermost first) are merged where consecutive output
 * dimensions are consecutive in x too and size-1 ones dropped. If the
 * innermost output dimension then steps by 1 in x, rows are copied;
 * otherwise the output dimension P that steps by 1 in x and the innermost
 * one L are walked in TRANSPOSE_TILE square tiles, so reads and writes both
 * stay within a few cache lines. */
void transpose_f32__ref(int rank, const int64_t *x_dims, const int64_t *perm,
			const float *x, float *y)
{
	int64_t dims[F32_MAX_RANK], xs[F32_MAX_RANK], ys[F32_MAX_RANK], idx[F32_MAX_RANK];
	int r = 0, lst, p_dim = -1;
	int64_t total = 1, x_off = 0, y_off = 0;

	for (int i = 0; i < rank; i++) {
		int64_t d = x_dims[perm[i]], s = 1;

		total *= x_dims[i];
		for (int j = (int)perm[i] + 1; j < rank; j++)
			s *= x_dims[j];
		if (d == 1)
			continue;
		if (r > 0 && xs[r - 1] == s * d) {
			dims[r - 1] *= d;
			xs[r - 1] = s;
			continue;
		}
		PRESSO_CHECK(r < F32_MAX_RANK);
		dims[r] = d;
		xs[r] = s;
		r++;
	}
	if (total == 0)
		return;
	if (r == 0) {
		y[0] = x[0];
		return;
	}
	ys[r - 1] = 1;
	for (int i = r - 2; i >= 0; i--)
		ys[i] = ys[i + 1] * dims[i + 1];
	for (int i = 0; i < r; i++) {
		idx[i] = 0;
		if (xs[i] == 1)
			p_dim = i;
	}
	lst = r - 1;
	assert(p_dim >= 0);
	for (;;) {
		int d;

		if (p_dim == lst) {
			memcpy(y + y_off, x + x_off, (size_t)dims[lst] * sizeof(float));
		} else {
			int64_t np = dims[p_dim], nl = dims[lst], sxl = xs[lst], syp = ys[p_dim];

			for (int64_t p0 = 0; p0 < np; p0 += TRANSPOSE_TILE) {
				int64_t p1 = min_i64(np, p0 + TRANSPOSE_TILE);

				for (int64_t l0 = 0; l0 < nl; l0 += TRANSPOSE_TILE) {
					int64_t l1 = min_i64(nl, l0 + TRANSPOSE_TILE);

					for (int64_t pi = p0; pi < p1; pi++) {
						const float *xr = x + x_off + pi;
						float *yr = y + y_off + pi * syp;

						for (int64_t li = l0; li < l1; li++)
							yr[li] = xr[li * sxl];
					}
				}
			}
		}
		/* Odometer over the remaining dimensions, innermost first. */
		for (d = r - 1; d >= 0; d--) {
			if (d == lst || d == p_dim)
				continue;
			x_off += xs[d];
			y_off += ys[d];
			if (++idx[d] < dims[d])
				break;
			x_off -= xs[d] * dims[d];
			y_off -= ys[d] * dims[d];
			idx[d] = 0;
		}
		if (d < 0)
			return;
	}
}
