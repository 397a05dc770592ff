/* test_kernels_q8.c - INT8 kernels: requantization, every ISA path vs the reference.
 *
 * 1. q31_requantize (kernels_q8.h) against an exact int64 model of its
 *    definition written here from the arithmetic, not from gemmlowp's code:
 *    mul_high = a*b / 2^31 rounded to nearest, ties toward +infinity
 *    (saturating INT32_MIN^2); the shift = round to nearest, ties away from
 *    zero. The model itself is checked against double arithmetic where that
 *    is exact. Edge values: multipliers near 2^30 and 2^31, shifts -31..30,
 *    acc INT32_MIN/MAX, positive and negative ties at both roundings.
 * 2. The reference GEMM, depthwise conv and im2col against naive versions
 *    written here (int64 sums, the model above).
 * 3. Every path this CPU has (q8_gemm_for, q8_dwconv_for) against the
 *    reference, bit for bit, on random shapes from a fixed-seed PRNG: GEMM
 *    m 1..70, n 1..150, k 1..600 (odd sizes, row strides > k and > n, random
 *    zero points, per-channel multipliers and shifts, clamps, float output)
 *    plus listed edge shapes; depthwise with strides 1-2, pads, dilations 1-2,
 *    kernels 3 and 5, channels 1..100 (40% multiples of 16), and again in
 *    the MobileNet class (3 x 3, dil_w 1, channels 16..256 in multiples of 16,
 *    rows up to 40 pixels), and on small maps (1 x 1 to 16 x 16, dilation 1,
 *    kernels 3 x 3, 5 x 5 and any up to 7 x 7, strides 1-3, any channel count
 *    up to 200, each requantization form); convolution (q8_conv_for) on any
 *    shape, on single-channel inputs with rows up to 90 pixels, strides
 *    up to 5 and kernels up to 9 wide (the first-layer kernels), and on
 *    16-channel inputs (also the avx512vnni kernel of CPUs without VBMI, which
 *    q8_conv_for() does not hand out where VBMI is there); 2x2 MaxPool
 *    (q8_maxpool2_for) against a naive pool. The
 *    requantization edge values are also
 *    pushed through every path (k = 1, zero weights, acc = bias), with the
 *    expected value placed inside the uint8 range so clamping hides nothing.
 *    A path the CPU lacks is skipped with a message.
 * Buffers are allocated to their exact size (AddressSanitizer catches any
 * read past a row of A or a write past C), and outputs are compared whole,
 * padding between rows included, so a stray write shows.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_q8.h"
#include "quant/quant.h"

/* Random shapes per fast path (plus the listed edge shapes). The whole file
 * runs in about 1 s, 3 s under AddressSanitizer + UBSan, so the counts are the
 * same in every build. */
#define N_GEMM_SHAPES 1000
#define N_DW_SHAPES 800
#define N_CONV_SHAPES 500
#define N_CONV_C1_SHAPES 500
#define N_CONV_C16_SHAPES 500
/* Random (acc, mult, shift) triples of the requantization sweep. */
#define N_REQUANT_RANDOM 2000000

/* ---- PRNG (splitmix64, fixed seed per test) ------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint64_t rng_u64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]. */
static int64_t rng_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_u64() % (uint64_t)(hi - lo + 1));
}

static int rng_int(int lo, int hi)
{
	return (int)rng_range(lo, hi);
}

static bool rng_chance(int percent)
{
	return rng_int(0, 99) < percent;
}

static void *xmalloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);
	cr_assert_not_null(p);
	return p;
}

/* ---- the model of q31_requantize ------------------------------------------ */

static int64_t floor_div_pow2(int64_t x, int e)
{
	int64_t d = (int64_t)1 << e;
	int64_t q = x / d;
	return (x % d != 0 && x < 0) ? q - 1 : q;
}

/* a*b / 2^31 to nearest, ties toward +infinity; INT32_MIN^2 saturates. */
static int32_t model_mul_high(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	int64_t ab = (int64_t)a * b;
	int64_t q = floor_div_pow2(ab, 31);
	int64_t r = ab - q * ((int64_t)1 << 31); /* 0 <= r < 2^31 */
	return (int32_t)(q + (r >= ((int64_t)1 << 30)));
}

/* x / 2^e to nearest, ties away from zero. */
static int32_t model_round_shift(int32_t x, int e)
{
	if (e == 0)
		return x;
	int64_t q = floor_div_pow2(x, e);
	int64_t r = x - q * ((int64_t)1 << e); /* 0 <= r < 2^e */
	int64_t half = (int64_t)1 << (e - 1);
	if (r > half || (r == half && x >= 0))
		q++;
	return (int32_t)q;
}

static int32_t model_requant(int32_t acc, int32_t mult, int shift)
{
	int64_t x = acc;
	if (shift > 0) {
		x *= (int64_t)1 << shift;
		x = x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : x;
	}
	int32_t h = model_mul_high((int32_t)x, mult);
	return shift >= 0 ? h : model_round_shift(h, -shift);
}

static uint8_t model_out(int32_t acc, int32_t mult, int shift, int32_t c_zero, uint8_t c_min,
			 uint8_t c_max)
{
	int64_t v = (int64_t)model_requant(acc, mult, shift) + c_zero;
	return (uint8_t)(v < c_min ? c_min : v > c_max ? c_max : v);
}

static const int32_t edge_mults[] = {
	1 << 30, (1 << 30) + 1, (1 << 30) + 2, 0x5a827999 /* 2^30.5 */, 3 << 29,
	INT32_MAX - 2, INT32_MAX - 1, INT32_MAX,
};

static const int32_t edge_accs[] = {
	INT32_MIN, INT32_MIN + 1, INT32_MIN + 2, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1,
	-65536, -65535, -32769, -32768, -32767, -257, -256, -255, -129, -128, -127, -5, -4, -3,
	-2, -1, 0, 1, 2, 3, 4, 5, 127, 128, 129, 255, 256, 257, 32767, 32768, 65535, 65536,
	(1 << 30) - 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 2, INT32_MAX - 1, INT32_MAX,
};

#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

Test(q8_requant, model_matches_double_where_exact)
{
	/* |a*b| < 2^53: a*b / 2^31 and the tie tests are exact in double */
	rng_seed(1);
	for (int i = 0; i < 200000; i++) {
		int32_t a = (int32_t)rng_range(-(1 << 26), 1 << 26);
		int32_t b = (int32_t)rng_range(-(1 << 26), 1 << 26);
		if (rng_chance(20))
			a = (int32_t)rng_range(-5, 5) * (1 << 25) + (int32_t)rng_range(-2, 2);
		double v = (double)a * (double)b / 2147483648.0;
		cr_assert_eq(model_mul_high(a, b), (int32_t)floor(v + 0.5), "mul_high(%d, %d)", a,
			     b);
		int e = rng_int(0, 31);
		int32_t x = (int32_t)rng_range(INT32_MIN, INT32_MAX);
		double xs = (double)x / ldexp(1.0, e);
		double want = xs >= 0 ? floor(xs + 0.5) : -floor(-xs + 0.5);
		cr_assert_eq(model_round_shift(x, e), (int32_t)want, "round_shift(%d, %d)", x, e);
	}
}

Test(q8_requant, edge_values)
{
	cr_assert_eq(q31_mul_high(INT32_MIN, INT32_MIN), INT32_MAX);
	cr_assert_eq(q31_requantize(INT32_MIN, INT32_MIN, 0), INT32_MAX);
	for (int mi = 0; mi < N_ELEMS(edge_mults); mi++)
		for (int shift = -31; shift <= 30; shift++)
			for (int ai = 0; ai < N_ELEMS(edge_accs); ai++) {
				int32_t acc = edge_accs[ai], mult = edge_mults[mi];
				cr_assert_eq(q31_requantize(acc, mult, shift),
					     model_requant(acc, mult, shift),
					     "requantize(%d, %d, %d)", acc, mult, shift);
			}
}

Test(q8_requant, ties)
{
	/* mult = 2^30 halves: odd acc is a tie of mul_high; x = (2j+1) * 2^(e-1)
	 * is a tie of the shift. Both signs. */
	for (int e = 1; e <= 31; e++)
		for (int j = -40; j <= 40; j++) {
			int64_t x = (2 * (int64_t)j + 1) * ((int64_t)1 << (e - 1));
			if (x < INT32_MIN || x > INT32_MAX)
				continue;
			int32_t want = model_round_shift((int32_t)x, e);
			cr_assert_eq(q31_round_shift_right((int32_t)x, e), want, "x=%lld e=%d",
				     (long long)x, e);
			cr_assert_eq(want, x > 0 ? j + 1 : j, "tie away from zero: x=%lld e=%d",
				     (long long)x, e);
		}
	for (int32_t acc = -1001; acc <= 1001; acc += 2) {
		cr_assert_eq(q31_mul_high(acc, 1 << 30), model_mul_high(acc, 1 << 30));
		cr_assert_eq(q31_mul_high(acc, 1 << 30), (acc + 1) / 2, "acc=%d: tie toward +inf",
			     acc);
		for (int shift = -31; shift <= 0; shift++)
			cr_assert_eq(q31_requantize(acc, 1 << 30, shift),
				     model_requant(acc, 1 << 30, shift));
	}
}

Test(q8_requant, random)
{
	rng_seed(2);
	for (int i = 0; i < N_REQUANT_RANDOM; i++) {
		int32_t acc = (int32_t)rng_range(INT32_MIN, INT32_MAX);
		if (rng_chance(50))
			acc >>= rng_int(0, 31);
		int32_t mult = (int32_t)rng_range(1 << 30, INT32_MAX);
		int shift = rng_int(-31, 30);
		cr_assert_eq(q31_requantize(acc, mult, shift), model_requant(acc, mult, shift),
			     "requantize(%d, %d, %d)", acc, mult, shift);
	}
}

/* The float multipliers of n channels' Q31 (mult, shift): what the engine
 * passes as rq_scale, the real multiplier rounded to float. */
static float *float_multipliers(int n, const int32_t *mult, const int8_t *shift)
{
	float *f = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
	for (int j = 0; j < n; j++)
		f[j] = (float)ldexp((double)mult[j], shift[j] - 31);
	return f;
}

/* Expected output in either requantization form. */
static uint8_t model_out_any(int32_t acc, const float *rq_scale, int32_t mult, int shift, int j,
			     int32_t c_zero, uint8_t c_min, uint8_t c_max)
{
	if (rq_scale)
		return (uint8_t)q8_requant_f32(acc, rq_scale[j], c_zero, c_min, c_max);
	return model_out(acc, mult, shift, c_zero, c_min, c_max);
}

/* The float form is the Q31 form within 1, equal almost everywhere: over
 * realistic layers (outputs spread over the uint8 range) and over every
 * shift with accumulators at the edges. Ties show the one systematic
 * difference: float rounds them to even, Q31 away from zero. */
Test(q8_requant, float_form_within_one_of_q31)
{
	rng_seed(7);
	int64_t n = 0, differ = 0;
	for (int t = 0; t < 200000; t++) {
		int32_t mult = (int32_t)rng_range(1 << 30, INT32_MAX);
		int shift = rng_chance(10) ? rng_int(-31, 30) : -rng_int(8, 20);
		int32_t acc = rng_chance(5) ? edge_accs[rng_int(0, N_ELEMS(edge_accs) - 1)]
					    : (int32_t)rng_range(-(1 << 24), 1 << 24);
		int32_t c_zero = rng_int(0, 255);
		float f = (float)ldexp((double)mult, shift - 31);
		int32_t q = model_out(acc, mult, shift, c_zero, 0, 255);
		int32_t r = q8_requant_f32(acc, f, c_zero, 0, 255);
		cr_assert(r >= 0 && r <= 255);
		cr_assert(abs(r - q) <= 1, "acc=%d mult=%d shift=%d: float %d, Q31 %d", acc, mult,
			  shift, r, q);
		n++;
		differ += r != q;
	}
	cr_assert(differ * 1000 < n, "%lld of %lld differ", (long long)differ, (long long)n);
	cr_log_info("float vs Q31 requantization: %lld of %lld outputs differ (by 1)",
		    (long long)differ, (long long)n);
	/* 5 * 0.5 = 2.5: float gives 2 (even), Q31 3 (away from zero) */
	cr_assert_eq(q8_requant_f32(5, 0.5f, 0, 0, 255), 2);
	cr_assert_eq(model_out(5, 1 << 30, 0, 0, 0, 255), 3);
	cr_assert_eq(q8_requant_f32(-5, 0.5f, 10, 0, 255), 8);
	/* the clamp is applied before rounding, and far outside the range */
	cr_assert_eq(q8_requant_f32(INT32_MAX, 1e10f, 3, 5, 200), 200);
	cr_assert_eq(q8_requant_f32(INT32_MIN, 1e10f, 3, 5, 200), 5);
	cr_assert_eq(q8_requant_f32(1000, 0.1f, 0, 0, 99), 99);
}

/* ---- GEMM -------------------------------------------------------------------- */

struct gemm_case {
	int m, n, k, lda, ldc;
	bool deq;
	uint8_t *a;
	int8_t *w;
	int32_t *bias, *mult;
	int8_t *shift;
	float *scale, *rqs;
	struct qgemm_params p;
};

static size_t a_bytes(const struct gemm_case *g)
{
	return g->m ? (size_t)(g->m - 1) * g->lda + g->k : 0;
}

static size_t c_elems(const struct gemm_case *g)
{
	return g->m ? (size_t)(g->m - 1) * g->ldc + g->n : 0;
}

/* A random GEMM of the given shape with realistic quantization parameters:
 * the multiplier maps the typical |acc| (about 2^14 sqrt(k)) onto the uint8
 * range, sometimes far off it, sometimes any shift at all. */
static void gemm_case_make(struct gemm_case *g, int m, int n, int k)
{
	*g = (struct gemm_case){.m = m, .n = n, .k = k};
	g->lda = k + (rng_chance(50) ? rng_int(0, 9) : 0);
	g->ldc = n + (rng_chance(50) ? rng_int(0, 9) : 0);
	g->deq = rng_chance(20);
	g->a = xmalloc(a_bytes(g));
	g->w = xmalloc((size_t)n * k);
	g->bias = xmalloc((size_t)n * sizeof(int32_t));
	g->mult = xmalloc((size_t)n * sizeof(int32_t));
	g->shift = xmalloc((size_t)n);
	g->scale = xmalloc((size_t)n * sizeof(float));
	int a_zero = rng_int(0, 255);
	int a_lo = rng_chance(20) ? 0 : rng_int(0, 255), a_hi = rng_int(a_lo, 255);
	for (size_t i = 0; i < a_bytes(g); i++)
		g->a[i] = (uint8_t)rng_int(a_lo, a_hi);
	int w_max = rng_chance(10) ? 128 : 127;
	for (size_t i = 0; i < (size_t)n * k; i++)
		g->w[i] = (int8_t)rng_int(-w_max, w_max < 128 ? w_max : 127);
	int32_t *bias_q = xmalloc((size_t)n * sizeof(int32_t));
	int bias_bits = rng_int(0, 29);
	int base_shift = -(int)(14 + log2(sqrt((double)k + 1)) - 7);
	/* half the cases with some columns' shifts anywhere (the float
	 * requantization then keeps its overflow guard), half with all near
	 * the usual one (where the avx512vnni path drops it: GEMM_RQ_F32_FIT) */
	bool wild = rng_chance(50);
	for (int j = 0; j < n; j++) {
		bias_q[j] = (int32_t)rng_range(-(1 << bias_bits), 1 << bias_bits);
		g->mult[j] = (int32_t)rng_range(1 << 30, INT32_MAX);
		g->shift[j] = (int8_t)(wild && rng_chance(10) ? rng_int(-31, 30)
							      : base_shift + rng_int(-3, 3));
		g->scale[j] = (float)ldexp((double)rng_int(1, 1 << 20), -rng_int(20, 40));
	}
	q8_bias_fold(n, k, g->w, bias_q, a_zero, g->bias);
	free(bias_q);
	g->rqs = float_multipliers(n, g->mult, g->shift);
	int32_t c_zero = rng_int(0, 255);
	int c_min = rng_chance(50) ? 0 : rng_int(0, 255);
	int c_max = rng_chance(50) ? 255 : rng_int(c_min, 255);
	g->p = (struct qgemm_params){
		.m = m, .n = n, .k = k, .bias = g->bias,
		.mult = g->deq ? NULL : g->mult, .shift = g->deq ? NULL : g->shift,
		.c_zero = c_zero, .c_min = (uint8_t)c_min, .c_max = (uint8_t)c_max,
		.deq_scale = g->deq ? g->scale : NULL,
		.rq_scale = !g->deq && rng_chance(50) ? g->rqs : NULL,
	};
}

static void gemm_case_free(struct gemm_case *g)
{
	free(g->a);
	free(g->w);
	free(g->bias);
	free(g->mult);
	free(g->shift);
	free(g->scale);
	free(g->rqs);
}

/* Runs kernel uk on g into freshly allocated outputs (pre-filled with a
 * pattern, exact size); returns them through c / c_f32. */
static void gemm_run_kernel(const struct qgemm_ukernel *uk, struct gemm_case *g, uint8_t **c,
			    float **c_f32)
{
	size_t packed_bytes = uk->packed_bytes(g->n, g->k);
	void *packed = xmalloc(packed_bytes);
	uk->pack(g->n, g->k, g->w, packed);
	*c = NULL;
	*c_f32 = NULL;
	struct qgemm_params p = g->p;
	if (g->deq) {
		*c_f32 = xmalloc(c_elems(g) * sizeof(float));
		for (size_t i = 0; i < c_elems(g); i++)
			(*c_f32)[i] = -1234.5f;
		p.c_f32 = *c_f32;
	} else {
		*c = xmalloc(c_elems(g));
		memset(*c, 0xa5, c_elems(g));
	}
	uk->run(&p, g->a, g->lda, packed, *c, g->ldc);
	free(packed);
}

static void gemm_check_same(const char *what, const struct gemm_case *g, const uint8_t *c0,
			    const float *f0, const uint8_t *c1, const float *f1)
{
	for (size_t i = 0; i < c_elems(g); i++) {
		int row = (int)(i / g->ldc), col = (int)(i % g->ldc);
		if (g->deq)
			cr_assert(memcmp(&f0[i], &f1[i], sizeof(float)) == 0,
				  "%s: m=%d n=%d k=%d lda=%d ldc=%d float: c[%d][%d] = %.9g, want %.9g",
				  what, g->m, g->n, g->k, g->lda, g->ldc, row, col, f1[i], f0[i]);
		else
			cr_assert_eq(c0[i], c1[i],
				     "%s: m=%d n=%d k=%d lda=%d ldc=%d c_zero=%d clamp %d..%d %s: "
				     "c[%d][%d] = %d, want %d", what, g->m, g->n, g->k, g->lda,
				     g->ldc, g->p.c_zero, g->p.c_min, g->p.c_max,
				     g->p.rq_scale ? "float" : "Q31", row, col, c1[i], c0[i]);
	}
}

Test(q8_gemm, reference_vs_naive)
{
	rng_seed(10);
	const struct qgemm_ukernel *ref = q8_gemm_for(Q8_ISA_REF);
	cr_assert_not_null(ref);
	for (int t = 0; t < 150; t++) {
		struct gemm_case g;
		gemm_case_make(&g, rng_int(1, 20), rng_int(1, 40), rng_int(1, 300));
		uint8_t *c;
		float *f;
		gemm_run_kernel(ref, &g, &c, &f);
		for (int i = 0; i < g.m; i++)
			for (int j = 0; j < g.n; j++) {
				int64_t acc = g.bias[j];
				for (int kk = 0; kk < g.k; kk++)
					acc += (int64_t)g.a[(size_t)i * g.lda + kk] *
					       g.w[(size_t)j * g.k + kk];
				cr_assert(acc >= INT32_MIN && acc <= INT32_MAX);
				size_t o = (size_t)i * g.ldc + j;
				if (g.deq)
					cr_assert_eq(f[o], (float)acc * g.scale[j]);
				else
					cr_assert_eq(c[o], model_out_any((int32_t)acc, g.p.rq_scale,
									 g.mult[j], g.shift[j], j,
									 g.p.c_zero, g.p.c_min,
									 g.p.c_max),
						     "m=%d n=%d k=%d at [%d][%d]", g.m, g.n, g.k, i, j);
			}
		free(c);
		free(f);
		gemm_case_free(&g);
	}
}

/* Shapes at the tile edges of every path: rows 1..9 and 16, 17, 24, 25;
 * columns around 8, 16, 32, 64; k around multiples of 4 and 8. */
static const int edge_shapes[][3] = {
	{1, 1, 1}, {1, 1, 4}, {1, 16, 4}, {1, 17, 5}, {1, 32, 8}, {1, 33, 9}, {1, 64, 3},
	{1, 65, 7}, {1, 128, 512}, {1, 150, 600}, {1, 10, 0}, {2, 3, 1}, {3, 8, 8}, {4, 15, 12},
	{5, 31, 13}, {6, 47, 31}, {7, 63, 63}, {8, 64, 64}, {9, 65, 65}, {16, 96, 100},
	{17, 97, 101}, {24, 128, 127}, {25, 129, 129}, {70, 150, 600}, {64, 128, 576},
	{3, 2, 0},
	/* more rows than one L2 block of A (GEMM_A_BLOCK_BYTES / k) */
	{300, 40, 1000}, {530, 17, 2001}, {129, 33, 4099},
	/* K = 16, 24, 32: the avx512vnni path's tiles of 4 rows x 64 columns */
	{3, 64, 16}, {4, 16, 16}, {5, 17, 16}, {7, 33, 16}, {9, 48, 16}, {70, 64, 16},
	{130, 50, 16}, {4, 65, 16}, {66, 64, 15}, {4, 96, 24}, {5, 100, 24}, {64, 96, 24},
	{9, 130, 32}, {70, 128, 32}, {6, 20, 32}, {7, 64, 28},
};

/* Shape t of the GEMM tests: the edge shapes first, then random ones with N up
 * to max_n and K up to max_k (M = 1 for 15 %, K <= 40 for 30 %). */
static void gemm_shape(int t, int max_n, int max_k, int *m, int *n, int *k)
{
	if (t < N_ELEMS(edge_shapes)) {
		*m = edge_shapes[t][0];
		*n = edge_shapes[t][1];
		*k = edge_shapes[t][2];
		return;
	}
	*m = rng_chance(15) ? 1 : rng_int(1, 70);
	*n = rng_int(1, max_n);
	*k = rng_chance(30) ? rng_int(1, 40) : rng_int(1, max_k);
}

/* K = Q8_K_MAX with every product at its extreme and the bias at +-2^30:
 * the sums reach 2^31 - 13 million, and every path must still be exact. */
static void gemm_k_max(const struct qgemm_ukernel *ref, const struct qgemm_ukernel *uk)
{
	for (int sign = -1; sign <= 1; sign += 2) {
		struct gemm_case g;
		gemm_case_make(&g, 9, 35, Q8_K_MAX);
		memset(g.a, 255, a_bytes(&g));
		memset(g.w, sign < 0 ? -128 : 127, (size_t)g.n * g.k);
		for (int j = 0; j < g.n; j++) {
			g.bias[j] = sign * ((1 << 30) - j);
			g.mult[j] = INT32_MAX - j;
			g.shift[j] = -31;
		}
		free(g.rqs);
		g.rqs = float_multipliers(g.n, g.mult, g.shift);
		for (int form = 0; form <= 2; form++) {
			int deq = form == 2;
			g.deq = deq;
			g.p.deq_scale = deq ? g.scale : NULL;
			g.p.rq_scale = form == 1 ? g.rqs : NULL;
			g.p.mult = g.mult;
			g.p.shift = g.shift;
			uint8_t *c0, *c1;
			float *f0, *f1;
			gemm_run_kernel(ref, &g, &c0, &f0);
			gemm_run_kernel(uk, &g, &c1, &f1);
			gemm_check_same(uk->name, &g, c0, f0, c1, f1);
			free(c0);
			free(c1);
			free(f0);
			free(f1);
		}
		gemm_case_free(&g);
	}
}

static void gemm_path_vs_ref(enum q8_isa isa)
{
	if (!q8_isa_supported(isa)) {
		cr_log_warn("q8 path %s: not supported by this CPU or build, skipped",
			    q8_isa_name(isa));
		cr_skip_test("q8 path %s: not supported by this CPU or build", q8_isa_name(isa));
	}
	const struct qgemm_ukernel *ref = q8_gemm_for(Q8_ISA_REF), *uk = q8_gemm_for(isa);
	cr_assert_not_null(uk);
	rng_seed(100 + isa);
	int n_random = N_GEMM_SHAPES;
	int n_total = N_ELEMS(edge_shapes) + n_random;
	for (int t = 0; t < n_total; t++) {
		int m, n, k;
		gemm_shape(t, 150, 600, &m, &n, &k);
		struct gemm_case g;
		gemm_case_make(&g, m, n, k);
		uint8_t *c0, *c1;
		float *f0, *f1;
		gemm_run_kernel(ref, &g, &c0, &f0);
		gemm_run_kernel(uk, &g, &c1, &f1);
		gemm_check_same(uk->name, &g, c0, f0, c1, f1);
		free(c0);
		free(c1);
		free(f0);
		free(f1);
		gemm_case_free(&g);
	}
	gemm_k_max(ref, uk);
	cr_log_info("%s: %d GEMM shapes bit-identical to the reference", uk->name, n_total + 2);
}

Test(q8_gemm, avx2_vs_reference)
{
	gemm_path_vs_ref(Q8_ISA_AVX2);
}

Test(q8_gemm, avx512vnni_vs_reference)
{
	gemm_path_vs_ref(Q8_ISA_AVX512VNNI);
}

/* ---- GEMM with 4-bit weights two to a byte ------------------------------------ */

/* The packed bytes qgemm_u8s4_8x32 must take for weights w: the nibble layout
 * (a 64-byte header, then 32-column panels of ceil(k/4) groups of 64 bytes)
 * where every weight lies in [-8, 7] and the shape is not one the int8 tiles
 * keep in registers (K = 16 with N <= 64, K = 24, K = 32); else the header,
 * the int8 panels and their columns' sums of |w| (int32). */
static size_t w4_expected_bytes(int n, int k, const int8_t *w)
{
	size_t panels = ((size_t)n + 31) / 32, k4 = ((size_t)k + 3) / 4;
	bool nib = n > 0 && k > 0 && !(k == 16 && n <= 64) && k != 24 && k != 32;
	for (size_t i = 0; nib && i < (size_t)n * k; i++)
		nib = w[i] >= -8 && w[i] <= 7;
	return 64 + (nib ? panels * k4 * 64 : panels * k4 * 128 + (size_t)n * 4);
}

/* Runs qgemm_u8s4 on g with exactly packed_bytes_for() bytes of packing
 * (the sanitizer builds catch a read past them) and checks it against the
 * reference; returns whether the nibble layout was taken. */
static bool w4_case_vs_ref(const struct qgemm_ukernel *ref, const struct qgemm_ukernel *uk,
			   struct gemm_case *g)
{
	size_t want = w4_expected_bytes(g->n, g->k, g->w);
	size_t bytes = uk->packed_bytes_for(g->n, g->k, g->w);
	cr_assert_eq(bytes, want, "m=%d n=%d k=%d: %zu packed bytes, want %zu", g->m, g->n, g->k,
		     bytes, want);
	cr_assert_leq(bytes, uk->packed_bytes(g->n, g->k));
	void *packed = xmalloc(bytes);
	uk->pack(g->n, g->k, g->w, packed);
	uint8_t *c0, *c1 = NULL;
	float *f0, *f1 = NULL;
	gemm_run_kernel(ref, g, &c0, &f0);
	struct qgemm_params p = g->p;
	if (g->deq) {
		f1 = xmalloc(c_elems(g) * sizeof(float));
		for (size_t i = 0; i < c_elems(g); i++)
			f1[i] = -1234.5f;
		p.c_f32 = f1;
	} else {
		c1 = xmalloc(c_elems(g));
		memset(c1, 0xa5, c_elems(g));
	}
	uk->run(&p, g->a, g->lda, packed, c1, g->ldc);
	gemm_check_same(uk->name, g, c0, f0, c1, f1);
	free(packed);
	free(c0);
	free(c1);
	free(f0);
	free(f1);
	return bytes < 64 + ((size_t)g->n + 31) / 32 * (((size_t)g->k + 3) / 4) * 128;
}

/* Weights in [-8, 7] (with -8 and 7 present where there are two), now and
 * then one weight outside (the int8 layout must be taken then). */
static void w4_weights(struct gemm_case *g)
{
	size_t nw = (size_t)g->n * g->k;
	for (size_t i = 0; i < nw; i++)
		g->w[i] = (int8_t)(rng_chance(10) ? (rng_chance(50) ? -8 : 7) : rng_int(-8, 7));
	if (nw >= 2) {
		g->w[rng_int(0, (int)nw - 1)] = -8;
		g->w[rng_int(0, (int)nw - 1)] = 7;
	}
	if (rng_chance(8))
		g->w[rng_int(0, (int)nw - 1)] = (int8_t)(rng_chance(50) ? -9 : 8);
}

Test(q8_gemm, s4_avx512vnni_vs_reference)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	const struct qgemm_ukernel *ref = q8_gemm_for(Q8_ISA_REF);
	const struct qgemm_ukernel *uk = q8_gemm_s4_for(Q8_ISA_AVX512VNNI);
	cr_assert_eq(uk, &qgemm_u8s4_8x32__avx512vnni);
	cr_assert_null(q8_gemm_s4_for(Q8_ISA_REF));
	rng_seed(400);
	int n_total = N_ELEMS(edge_shapes) + N_GEMM_SHAPES, n_nibble = 0, n_forms[3] = {0};
	for (int t = 0; t < n_total; t++) {
		int m, n, k;
		gemm_shape(t, 100, 300, &m, &n, &k);
		struct gemm_case g;
		gemm_case_make(&g, m, n, k);
		w4_weights(&g);
		/* the fold again for these weights, from bias_q anywhere in +-2^29 */
		int32_t *bias_q = xmalloc((size_t)n * sizeof(int32_t));
		for (int j = 0; j < n; j++)
			bias_q[j] = (int32_t)rng_range(-(1 << 29), 1 << 29);
		q8_bias_fold(n, k, g.w, bias_q, rng_int(0, 255), g.bias);
		free(bias_q);
		n_forms[g.deq ? 2 : g.p.rq_scale ? 1 : 0]++;
		n_nibble += w4_case_vs_ref(ref, uk, &g);
		gemm_case_free(&g);
	}
	/* K = Q8_K_MAX at the extreme codes and weights, the bias at +-2^30 */
	for (int sign = -1; sign <= 1; sign += 2)
		for (int form = 0; form <= 2; form++) {
			struct gemm_case g;
			gemm_case_make(&g, form == 0 ? 1 : 9, 37, Q8_K_MAX);
			memset(g.a, 255, a_bytes(&g));
			memset(g.w, sign < 0 ? -8 : 7, (size_t)g.n * g.k);
			for (int j = 0; j < g.n; j++) {
				g.bias[j] = sign * ((1 << 30) - j);
				g.mult[j] = INT32_MAX - j;
				g.shift[j] = -31;
			}
			free(g.rqs);
			g.rqs = float_multipliers(g.n, g.mult, g.shift);
			g.deq = form == 2;
			g.p.deq_scale = g.deq ? g.scale : NULL;
			g.p.rq_scale = form == 1 ? g.rqs : NULL;
			g.p.mult = g.mult;
			g.p.shift = g.shift;
			cr_assert(w4_case_vs_ref(ref, uk, &g));
			gemm_case_free(&g);
		}
	cr_assert_gt(n_nibble, n_total / 2, "only %d of %d shapes took the nibble layout",
		     n_nibble, n_total);
	cr_assert(n_forms[0] > 100 && n_forms[1] > 100 && n_forms[2] > 100);
	cr_log_info("%s: %d GEMM shapes bit-identical to the reference (%d nibble-packed)",
		    uk->name, n_total + 6, n_nibble + 6);
}

/* acc = bias exactly (k = 1, zero weights); each column gets one
 * (acc, mult, shift) and c_zero = 128 puts results in -128..127 on view. */
static void requant_through_gemm(const struct qgemm_ukernel *uk,
				 int32_t (*pick_acc)(int32_t, int, int))
{
	enum { N_COLS = 67 }; /* odd: tails in every path */
	int32_t bias[N_COLS], mult[N_COLS];
	int8_t shift[N_COLS], w[N_COLS] = {0};
	uint8_t a[2] = {200, 17}, c[2 * N_COLS];
	void *packed = xmalloc(uk->packed_bytes(N_COLS, 1));
	uk->pack(N_COLS, 1, w, packed);
	int64_t checked = 0;
	for (int mi = 0; mi < N_ELEMS(edge_mults); mi++) {
		for (int s0 = -31; s0 <= 30; s0 += 8) {
			for (int rep = 0; rep < 20; rep++) {
				for (int j = 0; j < N_COLS; j++) {
					mult[j] = rng_chance(50) ? edge_mults[mi]
								 : (int32_t)rng_range(1 << 30, INT32_MAX);
					shift[j] = (int8_t)(s0 + j % 8 > 30 ? 30 : s0 + j % 8);
					bias[j] = pick_acc(mult[j], shift[j], j);
				}
				struct qgemm_params p = {
					.m = 2, .n = N_COLS, .k = 1, .bias = bias, .mult = mult,
					.shift = shift, .c_zero = 128, .c_min = 0, .c_max = 255,
				};
				uk->run(&p, a, 1, packed, c, N_COLS);
				for (int i = 0; i < 2 * N_COLS; i++) {
					int j = i % N_COLS;
					cr_assert_eq(c[i], model_out(bias[j], mult[j], shift[j], 128, 0,
								     255),
						     "%s: requantize(%d, %d, %d)", uk->name, bias[j],
						     mult[j], shift[j]);
					checked++;
				}
			}
		}
	}
	/* mult = INT32_MIN is outside the contract, but q31_requantize defines it
	 * (INT32_MIN * INT32_MIN saturates), so every path must agree there too */
	for (int j = 0; j < N_COLS; j++) {
		mult[j] = INT32_MIN;
		shift[j] = (int8_t)(j % 62 - 31);
		bias[j] = j % 3 == 0 ? INT32_MIN : j % 3 == 1 ? INT32_MIN + 1 : -(j << 20);
	}
	struct qgemm_params p = {
		.m = 1, .n = N_COLS, .k = 1, .bias = bias, .mult = mult, .shift = shift,
		.c_zero = 128, .c_min = 0, .c_max = 255,
	};
	uk->run(&p, a, 1, packed, c, N_COLS);
	for (int j = 0; j < N_COLS; j++)
		cr_assert_eq(c[j], model_out(bias[j], mult[j], shift[j], 128, 0, 255),
			     "%s: requantize(%d, INT32_MIN, %d)", uk->name, bias[j], shift[j]);
	free(packed);
	cr_log_info("%s: %lld requantizations checked", uk->name, (long long)checked);
}

/* An edge acc, or one whose result lands near a random value in -140..140
 * (some clamp), jittered so both roundings meet ties and near-ties. */
static int32_t acc_edge_or_targeted(int32_t mult, int shift, int j)
{
	if (rng_chance(30))
		return edge_accs[rng_int(0, N_ELEMS(edge_accs) - 1)];
	double real = (double)mult / 2147483648.0 * ldexp(1.0, shift);
	double acc = (double)rng_int(-140, 140) / real + (double)rng_int(-3, 3);
	if (rng_chance(30))
		acc = round(acc / 2) * 2 + 1; /* odd: a tie of mul_high at mult = 2^30 */
	return acc > INT32_MAX ? INT32_MAX : acc < INT32_MIN ? INT32_MIN : (int32_t)acc;
}

static void requant_path(enum q8_isa isa)
{
	if (!q8_isa_supported(isa)) {
		cr_log_warn("q8 path %s: not supported by this CPU or build, skipped",
			    q8_isa_name(isa));
		cr_skip_test("q8 path %s: not supported by this CPU or build", q8_isa_name(isa));
	}
	rng_seed(200 + isa);
	requant_through_gemm(q8_gemm_for(isa), acc_edge_or_targeted);
}

Test(q8_requant, through_ref_gemm)
{
	requant_path(Q8_ISA_REF);
}

Test(q8_requant, through_avx2_gemm)
{
	requant_path(Q8_ISA_AVX2);
}

Test(q8_requant, through_avx512vnni_gemm)
{
	requant_path(Q8_ISA_AVX512VNNI);
}

/* Q31 requantization through a GEMM's tiles at accs that straddle rounding
 * boundaries: the avx512vnni tiles screen Q31 in float where every column of
 * a 32-column panel has shift <= -6 and recompute 4 vectors exactly where
 * some lane lies within 2e of one (q8_avx512vnni_common.h), so the expected values
 * there must come out of the exact steps. k = 1 with weight 1 and A[i] = i,
 * so row i's acc is bias[j] + i: 8 rows walk 8 consecutive accs per column
 * across a boundary of either rounding (mul_high's at h = n + 1/2, the
 * shift's where h / 2^right = n + 1/2), with every shift from -31 to -6 and
 * c_zero anywhere, so outputs near both clamps are checked too. */
static void requant_near_ties(const struct qgemm_ukernel *uk)
{
	enum { M_ROWS = 8, N_COLS = 67, N_REPS = 400 };
	int32_t bias[N_COLS], mult[N_COLS];
	int8_t shift[N_COLS], w[N_COLS];
	uint8_t a[M_ROWS], c[M_ROWS * N_COLS];
	for (int j = 0; j < N_COLS; j++)
		w[j] = 1;
	for (int i = 0; i < M_ROWS; i++)
		a[i] = (uint8_t)i;
	void *packed = xmalloc(uk->packed_bytes(N_COLS, 1));
	uk->pack(N_COLS, 1, w, packed);
	int64_t checked = 0;
	for (int rep = 0; rep < N_REPS; rep++) {
		int32_t c_zero = rng_chance(30) ? rng_int(0, 255) : 128;
		int s_lo = rng_chance(50) ? -31 : rng_int(-31, -6), s_hi = rng_int(s_lo, -6);
		for (int j = 0; j < N_COLS; j++) {
			mult[j] = rng_chance(20) ? edge_mults[rng_int(0, N_ELEMS(edge_mults) - 1)]
						 : (int32_t)rng_range(1 << 30, INT32_MAX);
			shift[j] = (int8_t)rng_int(s_lo, s_hi);
			/* target: the real result n + 1/2 (a boundary of the final
			 * rounding, h = (n + 1/2) 2^right), or next to it the acc
			 * where acc * mult / 2^31 is itself a half (mul_high's) */
			double mh = (double)mult[j] / 2147483648.0, h_scale = ldexp(1.0, -shift[j]);
			double n = rng_int(-c_zero - 3, 258 - c_zero);
			double acc = rng_chance(80) ? (n + 0.5) * h_scale / mh
						    : (floor((n + 0.5) * h_scale) + 0.5) / mh;
			acc += rng_int(-M_ROWS, 0) + (rng_chance(50) ? 0 : rng_int(-2, 2));
			bias[j] = acc > INT32_MAX - M_ROWS ? INT32_MAX - M_ROWS
				  : acc < INT32_MIN	 ? INT32_MIN
							 : (int32_t)acc;
		}
		struct qgemm_params p = {
			.m = M_ROWS, .n = N_COLS, .k = 1, .bias = bias, .mult = mult,
			.shift = shift, .c_zero = c_zero, .c_min = 0, .c_max = 255,
		};
		uk->run(&p, a, 1, packed, c, N_COLS);
		for (int i = 0; i < M_ROWS; i++)
			for (int j = 0; j < N_COLS; j++) {
				int32_t acc = bias[j] + i;
				cr_assert_eq(c[i * N_COLS + j],
					     model_out(acc, mult[j], shift[j], c_zero, 0, 255),
					     "%s: requantize(%d, %d, %d) + %d at row %d column %d",
					     uk->name, acc, mult[j], shift[j], c_zero, i, j);
				checked++;
			}
	}
	free(packed);
	cr_log_info("%s: %lld requantizations near rounding boundaries checked", uk->name,
		    (long long)checked);
}

static void requant_near_ties_path(enum q8_isa isa)
{
	if (!q8_isa_supported(isa)) {
		cr_log_warn("q8 path %s: not supported by this CPU or build, skipped",
			    q8_isa_name(isa));
		cr_skip_test("q8 path %s: not supported by this CPU or build", q8_isa_name(isa));
	}
	rng_seed(300 + isa);
	requant_near_ties(q8_gemm_for(isa));
}

Test(q8_requant, near_ties_through_ref_gemm)
{
	requant_near_ties_path(Q8_ISA_REF);
}

Test(q8_requant, near_ties_through_avx2_gemm)
{
	requant_near_ties_path(Q8_ISA_AVX2);
}

Test(q8_requant, near_ties_through_avx512vnni_gemm)
{
	requant_near_ties_path(Q8_ISA_AVX512VNNI);
}

/* The same two through the 4-bit GEMM: weights 0 and 1 take its nibble
 * layout, so its tiles' requantization (after the shift by 4) is checked at
 * the edge accs and near the rounding boundaries too. */
Test(q8_requant, through_s4_avx512vnni_gemm)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	rng_seed(500);
	requant_through_gemm(q8_gemm_s4_for(Q8_ISA_AVX512VNNI), acc_edge_or_targeted);
	rng_seed(501);
	requant_near_ties(q8_gemm_s4_for(Q8_ISA_AVX512VNNI));
}

/* ---- depthwise convolution ------------------------------------------------------ */

struct dw_case {
	struct qdwconv_params p;
	uint8_t *x;
	int8_t *w;
	int32_t *bias, *mult;
	int8_t *shift;
	float *rqs;
	size_t y_bytes;
};

/* The depthwise case classes dw_case_make draws from. */
enum dw_kind {
	DW_ANY,   /* any shape: strides 1-2, pads, dilations 1-2, kernels 3 and 5 */
	DW_K3,    /* the MobileNet class */
	DW_SMALL, /* dilation 1, small maps, any channel count */
};

/* Channel counts of DW_SMALL besides random ones: not multiples of 16 (a
 * partial last 16 and a partial last chunk of 64), and multiples. */
static const int dw_small_channels[] = {8, 24, 40, 72, 88, 120, 1, 7, 17, 63, 65, 16, 48, 96, 144};

/* A random depthwise case. DW_K3: the MobileNet class instead (3 x 3, dil_w 1,
 * channels a multiple of 16 up to 256, rows up to 40 pixels), which the
 * AVX-512 path runs by kernel column with the columns sliding along a row:
 * long rows, both strides and every padding, so that the window start, the
 * middle and the end of a row (with a partial last vector of pixels) all
 * occur. DW_SMALL: dilation 1, maps 1 x 1 to 16 x 16, kernels 3 x 3 and
 * 5 x 5 (sometimes any kh, kw up to 7), strides 1 and 2 (sometimes 3), pads
 * up to the kernel size less one on each side, the channel counts above or
 * any up to 200, which the AVX-512 path runs by kernel column over only the
 * taps inside the input (dwk); shifts of every sign (each requantization
 * form: float with and without the headroom of RQ_F32_FIT, Q31 with and
 * without a left shift). */
static void dw_case_make(struct dw_case *d, enum dw_kind kind)
{
	struct qdwconv_params *p = &d->p;
	bool k3 = kind == DW_K3;
	if (kind == DW_SMALL) {
		int kh = rng_chance(45) ? 3 : rng_chance(80) ? 5 : rng_int(1, 7);
		int kw = rng_chance(80) ? kh : rng_int(1, 7);
		*p = (struct qdwconv_params){
			.n = rng_int(1, 3),
			.c = rng_chance(60) ? dw_small_channels[rng_int(0, N_ELEMS(dw_small_channels) - 1)]
					    : rng_int(1, 200),
			.kh = kh, .kw = kw,
			.stride_h = rng_chance(10) ? 3 : rng_int(1, 2),
			.stride_w = rng_chance(10) ? 3 : rng_int(1, 2),
			.dil_h = 1, .dil_w = 1,
		};
	} else {
		int kern = k3 || rng_chance(50) ? 3 : 5;
		*p = (struct qdwconv_params){
			/* multiples of 16 (a separate fast path) and anything */
			.n = rng_int(1, 2),
			.c = k3 ? 16 * (rng_chance(50) ? rng_int(1, 2) : rng_int(3, 16))
			   : rng_chance(40) ? 16 * rng_int(1, 8) : rng_chance(20) ? rng_int(1, 16) : rng_int(1, 100),
			.kh = k3 || rng_chance(90) ? kern : rng_int(1, 5), .kw = kern,
			.stride_h = rng_int(1, 2), .stride_w = rng_int(1, 2),
			.dil_h = rng_int(1, 2), .dil_w = k3 ? 1 : rng_int(1, 2),
		};
	}
	p->pad_t = rng_int(0, p->kh - 1);
	p->pad_l = rng_int(0, p->kw - 1);
	int pad_b = rng_int(0, p->kh - 1), pad_r = rng_int(0, p->kw - 1);
	int span_h = p->dil_h * (p->kh - 1) + 1, span_w = p->dil_w * (p->kw - 1) + 1;
	int max_h = kind == DW_SMALL ? 16 : k3 ? 6 : 12, max_w = kind == DW_SMALL ? 16 : k3 ? 40 : 12;
	p->h_in = rng_int(span_h - p->pad_t - pad_b > 1 ? span_h - p->pad_t - pad_b : 1, max_h);
	p->w_in = rng_int(span_w - p->pad_l - pad_r > 1 ? span_w - p->pad_l - pad_r : 1, max_w);
	if (kind == DW_SMALL && rng_chance(50)) { /* mostly maps of a few pixels */
		p->h_in = span_h - p->pad_t - pad_b > 1 ? span_h - p->pad_t - pad_b : 1;
		p->w_in = span_w - p->pad_l - pad_r > 1 ? span_w - p->pad_l - pad_r : 1;
		p->h_in += rng_int(0, 4);
		p->w_in += rng_int(0, 4);
	}
	p->h_out = (p->h_in + p->pad_t + pad_b - span_h) / p->stride_h + 1;
	p->w_out = (p->w_in + p->pad_l + pad_r - span_w) / p->stride_w + 1;
	cr_assert(p->h_out >= 1 && p->w_out >= 1);
	size_t x_bytes = (size_t)p->n * p->h_in * p->w_in * p->c;
	int taps = p->kh * p->kw;
	d->y_bytes = (size_t)p->n * p->h_out * p->w_out * p->c;
	d->x = xmalloc(x_bytes);
	d->w = xmalloc((size_t)p->c * taps);
	d->bias = xmalloc((size_t)p->c * sizeof(int32_t));
	d->mult = xmalloc((size_t)p->c * sizeof(int32_t));
	d->shift = xmalloc((size_t)p->c);
	for (size_t i = 0; i < x_bytes; i++)
		d->x[i] = (uint8_t)rng_int(0, 255);
	for (size_t i = 0; i < (size_t)p->c * taps; i++)
		d->w[i] = (int8_t)rng_int(rng_chance(10) ? -128 : -127, 127);
	int base_shift = -(int)(14 + log2(sqrt((double)taps)) - 7);
	/* DW_SMALL: a shift of any sign in no channel (the lean forms), in one,
	 * or in a tenth of them; the others one in ten */
	int wild = kind == DW_SMALL ? rng_int(0, 2) : 2, wild_ch = rng_int(0, p->c - 1);
	for (int ch = 0; ch < p->c; ch++) {
		d->bias[ch] = (int32_t)rng_range(-(1 << 20), 1 << 20);
		d->mult[ch] = (int32_t)rng_range(1 << 30, INT32_MAX);
		bool any = wild == 2 ? rng_chance(10) : wild == 1 && ch == wild_ch;
		d->shift[ch] = (int8_t)(any ? rng_int(-31, 30) : base_shift + rng_int(-3, 3));
	}
	p->a_zero = rng_int(0, 255);
	p->bias = d->bias;
	p->mult = d->mult;
	p->shift = d->shift;
	d->rqs = float_multipliers(p->c, d->mult, d->shift);
	p->rq_scale = rng_chance(50) ? d->rqs : NULL;
	p->c_zero = rng_int(0, 255);
	p->c_min = (uint8_t)(rng_chance(50) ? 0 : rng_int(0, 255));
	p->c_max = (uint8_t)(rng_chance(50) ? 255 : rng_int(p->c_min, 255));
}

static void dw_case_free(struct dw_case *d)
{
	free(d->x);
	free(d->w);
	free(d->bias);
	free(d->mult);
	free(d->shift);
	free(d->rqs);
}

static uint8_t *dw_run_kernel(const struct qdwconv_ukernel *uk, const struct dw_case *d)
{
	const struct qdwconv_params *p = &d->p;
	void *packed = xmalloc(uk->packed_bytes(p->c, p->kh, p->kw));
	uk->pack(p->c, p->kh, p->kw, d->w, packed);
	uint8_t *y = xmalloc(d->y_bytes);
	memset(y, 0xa5, d->y_bytes);
	uk->run(p, d->x, packed, y);
	free(packed);
	return y;
}

static const char *dw_describe(const struct qdwconv_params *p)
{
	static char buf[256];
	snprintf(buf, sizeof buf,
		 "n=%d %dx%dx%d -> %dx%d k=%dx%d s=%d,%d pad=%d,%d dil=%d,%d a_zero=%d", p->n,
		 p->h_in, p->w_in, p->c, p->h_out, p->w_out, p->kh, p->kw, p->stride_h,
		 p->stride_w, p->pad_t, p->pad_l, p->dil_h, p->dil_w, p->a_zero);
	return buf;
}

Test(q8_dwconv, reference_vs_naive)
{
	rng_seed(20);
	const struct qdwconv_ukernel *ref = q8_dwconv_for(Q8_ISA_REF);
	cr_assert_not_null(ref);
	for (int t = 0; t < 100; t++) {
		struct dw_case d;
		dw_case_make(&d, t % 2 ? DW_SMALL : DW_ANY);
		const struct qdwconv_params *p = &d.p;
		uint8_t *y = dw_run_kernel(ref, &d);
		/* naive: pad the input with a_zero, then a plain correlation */
		for (int img = 0; img < p->n; img++)
			for (int oh = 0; oh < p->h_out; oh++)
				for (int ow = 0; ow < p->w_out; ow++)
					for (int ch = 0; ch < p->c; ch++) {
						int64_t acc = d.bias[ch];
						for (int ki = 0; ki < p->kh; ki++)
							for (int kj = 0; kj < p->kw; kj++) {
								int ih = oh * p->stride_h - p->pad_t +
									 ki * p->dil_h;
								int iw = ow * p->stride_w - p->pad_l +
									 kj * p->dil_w;
								bool in = ih >= 0 && ih < p->h_in &&
									  iw >= 0 && iw < p->w_in;
								int xv = in ? d.x[(((size_t)img * p->h_in + ih) *
										  p->w_in + iw) * p->c + ch]
									    : p->a_zero;
								acc += (int64_t)(xv - p->a_zero) *
								       d.w[((size_t)ch * p->kh + ki) *
									   p->kw + kj];
							}
						size_t o = (((size_t)img * p->h_out + oh) * p->w_out + ow) *
								   p->c + ch;
						cr_assert_eq(y[o], model_out_any((int32_t)acc, p->rq_scale,
										 d.mult[ch], d.shift[ch], ch,
										 p->c_zero, p->c_min,
										 p->c_max),
							     "%s at (%d,%d,%d,%d)", dw_describe(p), img, oh,
							     ow, ch);
					}
		free(y);
		dw_case_free(&d);
	}
}

static void dw_path_vs_ref(enum q8_isa isa, enum dw_kind kind)
{
	if (!q8_isa_supported(isa)) {
		cr_log_warn("q8 path %s: not supported by this CPU or build, skipped",
			    q8_isa_name(isa));
		cr_skip_test("q8 path %s: not supported by this CPU or build", q8_isa_name(isa));
	}
	const struct qdwconv_ukernel *ref = q8_dwconv_for(Q8_ISA_REF), *uk = q8_dwconv_for(isa);
	cr_assert_not_null(uk);
	rng_seed(300 + isa + 100 * kind);
	int n_shapes = N_DW_SHAPES;
	for (int t = 0; t < n_shapes; t++) {
		struct dw_case d;
		dw_case_make(&d, kind);
		uint8_t *y0 = dw_run_kernel(ref, &d), *y1 = dw_run_kernel(uk, &d);
		for (size_t i = 0; i < d.y_bytes; i++)
			cr_assert_eq(y1[i], y0[i], "%s: %s: y[%zu] (channel %zu) = %d, want %d",
				     uk->name, dw_describe(&d.p), i, i % (size_t)d.p.c, y1[i], y0[i]);
		free(y0);
		free(y1);
		dw_case_free(&d);
	}
	cr_log_info("%s: %d depthwise shapes%s bit-identical to the reference", uk->name,
		    n_shapes, kind == DW_K3 ? " (3 x 3, dil_w 1, c % 16 = 0)"
			      : kind == DW_SMALL ? " (small maps, dil 1, any c)" : "");
}

Test(q8_dwconv, avx2_vs_reference)
{
	dw_path_vs_ref(Q8_ISA_AVX2, DW_ANY);
}

Test(q8_dwconv, avx512vnni_vs_reference)
{
	dw_path_vs_ref(Q8_ISA_AVX512VNNI, DW_ANY);
}

Test(q8_dwconv, avx2_vs_reference_3x3)
{
	dw_path_vs_ref(Q8_ISA_AVX2, DW_K3);
}

Test(q8_dwconv, avx512vnni_vs_reference_3x3)
{
	dw_path_vs_ref(Q8_ISA_AVX512VNNI, DW_K3);
}

Test(q8_dwconv, avx2_vs_reference_small_maps)
{
	dw_path_vs_ref(Q8_ISA_AVX2, DW_SMALL);
}

Test(q8_dwconv, avx512vnni_vs_reference_small_maps)
{
	dw_path_vs_ref(Q8_ISA_AVX512VNNI, DW_SMALL);
}

/* ---- convolution without im2col --------------------------------------------------- */

struct conv_case {
	struct qconv_params p;
	uint8_t *x;
	int8_t *w;               /* [c_out][kh][kw][c] */
	int32_t *bias, *mult;
	int8_t *shift;
	float *rqs;
	size_t x_bytes, y_bytes;
};

/* wide_c1: a single input channel and rows up to 90 pixels (first layers: the
 * kernels lay 16 output pixels of a row across the lanes, so rows longer than
 * 16, strides up to 5 and kernels up to 9 wide matter; half of them with at
 * most 16 output channels, which the VBMI kernel takes in one pass); c16: exactly 16 input
 * channels and rows up to 40 pixels (tiles of up to 16 pixels of one output row,
 * several per row), kernels up to 11 high so that more output rows than the
 * AVX-512 row tiles skip padding for (8) may lie at the edges; else any shape. */
static void conv_case_make(struct conv_case *d, bool wide_c1, bool c16)
{
	struct qconv_params *p = &d->p;
	/* channels: 1 (first layers), multiples of 4 and 16, and anything; the
	 * c16 family takes 16, 32 or 64, whose pixel steps (c * stride_w = 16, 32
	 * or 64) the AVX-512 row tiles are compiled for */
	int c = c16 ? (rng_chance(50) ? 16 : rng_chance(50) ? 32 : 64)
		    : wide_c1 || rng_chance(20) ? 1
		    : rng_chance(30)            ? 4 * rng_int(1, 12)
						: rng_int(1, 40);
	int kern = rng_int(1, wide_c1 ? 9 : c > 16 ? 3 : 5);
	int max_stride = wide_c1 ? 5 : c16 && c == 16 ? 4 : 3;
	int max_w = wide_c1 ? 90 : c16 ? (c == 16 ? 40 : 24) : 12;
	*p = (struct qconv_params){
		.n = rng_int(1, wide_c1 ? 2 : 3), .c = c,
		.c_out = rng_chance(wide_c1 ? 50 : 30) ? rng_int(1, 16) : rng_int(1, wide_c1 ? 40 : 80),
		.kh = rng_chance(80) ? kern : rng_int(1, c16 ? 11 : 5), .kw = kern,
		.stride_h = rng_int(1, 3), .stride_w = rng_int(1, max_stride),
		.dil_h = rng_chance(80) ? 1 : 2, .dil_w = rng_chance(80) ? 1 : 2,
	};
	p->pad_t = rng_int(0, p->kh - 1);
	p->pad_l = rng_int(0, p->kw - 1);
	int pad_b = rng_int(0, p->kh - 1), pad_r = rng_int(0, p->kw - 1);
	int span_h = p->dil_h * (p->kh - 1) + 1, span_w = p->dil_w * (p->kw - 1) + 1;
	int min_h = span_h - p->pad_t - pad_b > 1 ? span_h - p->pad_t - pad_b : 1;
	int min_w = span_w - p->pad_l - pad_r > 1 ? span_w - p->pad_l - pad_r : 1;
	int max_h = wide_c1 ? 8 : 12;
	p->h_in = rng_int(min_h, max_h > min_h ? max_h : min_h);
	p->w_in = rng_int(min_w, max_w > min_w ? max_w : min_w);
	p->h_out = (p->h_in + p->pad_t + pad_b - span_h) / p->stride_h + 1;
	p->w_out = (p->w_in + p->pad_l + pad_r - span_w) / p->stride_w + 1;
	cr_assert(p->h_out >= 1 && p->w_out >= 1);
	size_t k = (size_t)p->kh * p->kw * p->c;
	d->x_bytes = (size_t)p->n * p->h_in * p->w_in * p->c;
	d->y_bytes = (size_t)p->n * p->h_out * p->w_out * p->c_out;
	d->x = xmalloc(d->x_bytes);
	d->w = xmalloc((size_t)p->c_out * k);
	d->bias = xmalloc((size_t)p->c_out * sizeof(int32_t));
	d->mult = xmalloc((size_t)p->c_out * sizeof(int32_t));
	d->shift = xmalloc((size_t)p->c_out);
	for (size_t i = 0; i < d->x_bytes; i++)
		d->x[i] = (uint8_t)rng_int(0, 255);
	for (size_t i = 0; i < (size_t)p->c_out * k; i++)
		d->w[i] = (int8_t)rng_int(rng_chance(10) ? -128 : -127, 127);
	p->a_zero = (uint8_t)rng_int(0, 255);
	int32_t *bias_q = xmalloc((size_t)p->c_out * sizeof(int32_t));
	int base_shift = -(int)(14 + log2(sqrt((double)k)) - 7);
	for (int j = 0; j < p->c_out; j++) {
		bias_q[j] = (int32_t)rng_range(-(1 << 20), 1 << 20);
		d->mult[j] = (int32_t)rng_range(1 << 30, INT32_MAX);
		d->shift[j] = (int8_t)(rng_chance(10) ? rng_int(-31, 30) : base_shift + rng_int(-3, 3));
	}
	q8_bias_fold(p->c_out, (int)k, d->w, bias_q, p->a_zero, d->bias);
	free(bias_q);
	p->bias = d->bias;
	p->mult = d->mult;
	p->shift = d->shift;
	d->rqs = float_multipliers(p->c_out, d->mult, d->shift);
	p->rq_scale = rng_chance(50) ? d->rqs : NULL;
	p->c_zero = rng_int(0, 255);
	p->c_min = (uint8_t)(rng_chance(50) ? 0 : rng_int(0, 255));
	p->c_max = (uint8_t)(rng_chance(50) ? 255 : rng_int(p->c_min, 255));
}

static void conv_case_free(struct conv_case *d)
{
	free(d->x);
	free(d->w);
	free(d->bias);
	free(d->mult);
	free(d->shift);
	free(d->rqs);
}

static uint8_t *conv_run_kernel(const struct qconv_ukernel *uk, struct conv_case *d)
{
	struct qconv_params *p = &d->p;
	/* exactly the bytes pack() writes (AddressSanitizer sees any read past) */
	void *packed = xmalloc(uk->packed_bytes_for
				       ? uk->packed_bytes_for(p->c_out, p->kh, p->kw, p->c, d->w)
				       : uk->packed_bytes(p->c_out, p->kh, p->kw, p->c));
	uk->pack(p->c_out, p->kh, p->kw, p->c, d->w, packed);
	size_t work = uk->work_bytes(p);
	p->work = work ? xmalloc(work) : NULL;
	uint8_t *y = xmalloc(d->y_bytes);
	memset(y, 0xa5, d->y_bytes);
	uk->run(p, d->x, packed, y);
	free(p->work);
	p->work = NULL;
	free(packed);
	return y;
}

static const char *conv_describe(const struct qconv_params *p)
{
	static char buf[256];
	snprintf(buf, sizeof buf,
		 "n=%d %dx%dx%d -> %dx%dx%d k=%dx%d s=%d,%d pad=%d,%d dil=%d,%d a_zero=%d", p->n,
		 p->h_in, p->w_in, p->c, p->h_out, p->w_out, p->c_out, p->kh, p->kw, p->stride_h,
		 p->stride_w, p->pad_t, p->pad_l, p->dil_h, p->dil_w, p->a_zero);
	return buf;
}

/* The reference conv against a naive one and against im2col + the reference
 * GEMM (what the engine does for paths without a conv kernel). */
Test(q8_conv, reference_vs_naive_and_im2col_gemm)
{
	rng_seed(40);
	const struct qconv_ukernel *ref = q8_conv_for(Q8_ISA_REF);
	const struct qgemm_ukernel *gemm = q8_gemm_for(Q8_ISA_REF);
	cr_assert_not_null(ref);
	for (int t = 0; t < 100; t++) {
		struct conv_case d;
		conv_case_make(&d, t % 4 == 3, t % 4 == 2);
		const struct qconv_params *p = &d.p;
		uint8_t *y = conv_run_kernel(ref, &d);
		int k = p->kh * p->kw * p->c;
		for (int img = 0; img < p->n; img++)
			for (int oh = 0; oh < p->h_out; oh++)
				for (int ow = 0; ow < p->w_out; ow++)
					for (int j = 0; j < p->c_out; j++) {
						int64_t acc = d.bias[j];
						for (int ki = 0; ki < p->kh; ki++)
							for (int kj = 0; kj < p->kw; kj++)
								for (int c = 0; c < p->c; c++) {
									int ih = oh * p->stride_h - p->pad_t +
										 ki * p->dil_h;
									int iw = ow * p->stride_w - p->pad_l +
										 kj * p->dil_w;
									bool in = ih >= 0 && ih < p->h_in &&
										  iw >= 0 && iw < p->w_in;
									int xv = in ? d.x[(((size_t)img * p->h_in +
											    ih) * p->w_in + iw) *
											  p->c + c]
										    : p->a_zero;
									acc += (int64_t)xv *
									       d.w[(size_t)j * k +
										   ((size_t)ki * p->kw + kj) *
											   p->c + c];
								}
						size_t o = (((size_t)img * p->h_out + oh) * p->w_out + ow) *
								   p->c_out + j;
						cr_assert_eq(y[o], model_out_any((int32_t)acc, p->rq_scale,
										 d.mult[j], d.shift[j], j,
										 p->c_zero, p->c_min,
										 p->c_max),
							     "%s at (%d,%d,%d,%d)", conv_describe(p), img,
							     oh, ow, j);
					}
		/* im2col + GEMM, image by image */
		size_t rows_bytes = (size_t)p->h_out * p->w_out * k;
		uint8_t *rows = xmalloc(rows_bytes > 0 ? rows_bytes : 1);
		void *packed = xmalloc(gemm->packed_bytes(p->c_out, k) + 1);
		gemm->pack(p->c_out, k, d.w, packed);
		struct qgemm_params gp = {.m = p->h_out * p->w_out, .n = p->c_out, .k = k,
					  .bias = d.bias, .mult = d.mult, .shift = d.shift,
					  .rq_scale = p->rq_scale,
					  .c_zero = p->c_zero, .c_min = p->c_min,
					  .c_max = p->c_max};
		uint8_t *y2 = xmalloc(d.y_bytes);
		for (int img = 0; img < p->n; img++) {
			im2col_nhwc_u8(d.x + (size_t)img * p->h_in * p->w_in * p->c, p->h_in,
				       p->w_in, p->c, 0, p->c, p->h_out, p->w_out, p->kh, p->kw,
				       p->stride_h, p->stride_w, p->pad_t, p->pad_l, p->dil_h,
				       p->dil_w, p->a_zero, rows);
			gemm->run(&gp, rows, k, packed,
				  y2 + (size_t)img * p->h_out * p->w_out * p->c_out, p->c_out);
		}
		cr_assert(memcmp(y, y2, d.y_bytes) == 0, "%s: conv != im2col + gemm",
			  conv_describe(p));
		free(y2);
		free(packed);
		free(rows);
		free(y);
		conv_case_free(&d);
	}
}

/* uk against the reference on the random shapes of every kind. */
static void conv_kernel_vs_ref(const struct qconv_ukernel *uk, uint64_t seed)
{
	const struct qconv_ukernel *ref = q8_conv_for(Q8_ISA_REF);
	rng_seed(seed);
	int n_total = N_CONV_SHAPES + N_CONV_C1_SHAPES + N_CONV_C16_SHAPES;
	for (int t = 0; t < n_total; t++) {
		struct conv_case d;
		conv_case_make(&d, t >= N_CONV_SHAPES && t < N_CONV_SHAPES + N_CONV_C1_SHAPES,
			       t >= N_CONV_SHAPES + N_CONV_C1_SHAPES);
		uint8_t *y0 = conv_run_kernel(ref, &d), *y1 = conv_run_kernel(uk, &d);
		for (size_t i = 0; i < d.y_bytes; i++)
			cr_assert_eq(y1[i], y0[i], "%s: %s: y[%zu] (channel %zu) = %d, want %d",
				     uk->name, conv_describe(&d.p), i, i % (size_t)d.p.c_out, y1[i],
				     y0[i]);
		free(y0);
		free(y1);
		conv_case_free(&d);
	}
	cr_log_info("%s: %d conv shapes (%d single-channel and wide, %d with 16, 32 or 64 channels)"
		    " bit-identical to the reference", uk->name, n_total, N_CONV_C1_SHAPES,
		    N_CONV_C16_SHAPES);
}

static void conv_path_vs_ref(enum q8_isa isa)
{
	if (!q8_isa_supported(isa)) {
		cr_log_warn("q8 path %s: not supported by this CPU or build, skipped",
			    q8_isa_name(isa));
		cr_skip_test("q8 path %s: not supported by this CPU or build", q8_isa_name(isa));
	}
	const struct qconv_ukernel *uk = q8_conv_for(isa);
	if (!uk) {
		cr_log_info("q8 path %s has no conv kernel (im2col + gemm)", q8_isa_name(isa));
		return;
	}
	conv_kernel_vs_ref(uk, 400 + isa);
}

Test(q8_conv, avx2_vs_reference)
{
	conv_path_vs_ref(Q8_ISA_AVX2);
}

Test(q8_conv, avx512vnni_vs_reference)
{
	conv_path_vs_ref(Q8_ISA_AVX512VNNI);
}

/* Where the CPU has VBMI, q8_conv_for hands out qconv_u8s8_c1x16__avx512vbmi
 * for the avx512vnni path; the kernel of CPUs without it is checked here. */
Test(q8_conv, avx512vnni_without_vbmi_vs_reference)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	conv_kernel_vs_ref(&qconv_u8s8_8x32__avx512vnni, 410);
}

/* The 4-bit convolution against the reference on the random shapes of every
 * kind with weights in [-8, 7] (every 8th case left in int8 range, which
 * takes the int8 layout), packed into exactly packed_bytes_for() bytes:
 * single-channel inputs keep the int8 kernels' layouts, the rest go two to a
 * byte (half the GEMM panels, checked) and are expanded per call. */
Test(q8_conv, s4_avx512vnni_vs_reference)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		cr_skip_test("q8 path avx512vnni: not supported by this CPU or build");
	const struct qconv_ukernel *uk = q8_conv_s4_for(Q8_ISA_AVX512VNNI);
	cr_assert_eq(uk, &qconv_u8s4_8x32__avx512vnni);
	cr_assert_null(q8_conv_s4_for(Q8_ISA_REF));
	const struct qconv_ukernel *ref = q8_conv_for(Q8_ISA_REF);
	rng_seed(420);
	int n_total = N_CONV_SHAPES + N_CONV_C1_SHAPES + N_CONV_C16_SHAPES, n_nibble = 0;
	for (int t = 0; t < n_total; t++) {
		struct conv_case d;
		conv_case_make(&d, t >= N_CONV_SHAPES && t < N_CONV_SHAPES + N_CONV_C1_SHAPES,
			       t >= N_CONV_SHAPES + N_CONV_C1_SHAPES);
		struct qconv_params *p = &d.p;
		size_t k = (size_t)p->kh * p->kw * p->c;
		if (t % 8 != 0) {
			int32_t *bias_q = xmalloc((size_t)p->c_out * sizeof(int32_t));
			for (int j = 0; j < p->c_out; j++)
				bias_q[j] = (int32_t)rng_range(-(1 << 16), 1 << 16);
			for (size_t i = 0; i < (size_t)p->c_out * k; i++)
				d.w[i] = (int8_t)(rng_int(0, 15) - 8);
			q8_bias_fold(p->c_out, (int)k, d.w, bias_q, p->a_zero, d.bias);
			free(bias_q);
		}
		uint8_t *y0 = conv_run_kernel(ref, &d);
		size_t bytes = uk->packed_bytes_for(p->c_out, p->kh, p->kw, p->c, d.w);
		cr_assert_leq(bytes, uk->packed_bytes(p->c_out, p->kh, p->kw, p->c));
		if (t % 8 != 0 && p->c != 1) {
			size_t kwc4 = ((size_t)p->kw * p->c + 3) & ~(size_t)3;
			size_t panels = ((size_t)p->c_out + 31) / 32 * ((size_t)p->kh * kwc4 / 4) * 64;
			cr_assert_eq(bytes, 64 + panels, "%s: %zu packed bytes, want %zu",
				     conv_describe(p), bytes, 64 + panels);
			n_nibble++;
		}
		uint8_t *y1 = conv_run_kernel(uk, &d);
		for (size_t i = 0; i < d.y_bytes; i++)
			cr_assert_eq(y1[i], y0[i], "%s: %s: y[%zu] = %d, want %d", uk->name,
				     conv_describe(p), i, y1[i], y0[i]);
		free(y1);
		free(y0);
		conv_case_free(&d);
	}
	cr_assert_gt(n_nibble, n_total / 3);
	cr_log_info("%s: %d conv shapes bit-identical to the reference, %d of them two weights "
		    "to a byte", uk->name, n_total, n_nibble);
}

/* ---- 2x2 max pooling -------------------------------------------------------------- */

/* Every path's 2x2 stride-2 MaxPool against a naive one written here, on
 * random shapes (odd heights and widths, channels 1..100: below 32 the VBMI
 * kernel permutes whole pixels of a row, from 32 on it takes 64 channels at a
 * time), input and output allocated to their exact size (AddressSanitizer
 * sees any read or write outside them). */
Test(q8_maxpool2, every_path_vs_naive)
{
	rng_seed(44);
	int paths = 0;
	for (int t = 0; t < 600; t++) {
		int n = rng_int(1, 3), h = rng_int(1, 30), w = rng_int(1, 70);
		int c = t % 3 == 0 ? (rng_chance(50) ? 6 : 16) : t % 3 == 1 ? rng_int(1, 31)
											: rng_int(32, 100);
		int ho = h / 2, wo = w / 2;
		size_t x_bytes = (size_t)n * h * w * c, y_bytes = (size_t)n * ho * wo * c;
		uint8_t *x = xmalloc(x_bytes), *want = xmalloc(y_bytes + 1),
			*y = xmalloc(y_bytes + 1);
		for (size_t i = 0; i < x_bytes; i++)
			x[i] = (uint8_t)rng_int(0, 255);
		for (int img = 0; img < n; img++)
			for (int oh = 0; oh < ho; oh++)
				for (int ow = 0; ow < wo; ow++)
					for (int ch = 0; ch < c; ch++) {
						int best = -1;
						for (int i = 0; i < 2; i++)
							for (int j = 0; j < 2; j++) {
								int v = x[(((size_t)img * h + 2 * oh + i) * w +
									   2 * ow + j) * c + ch];
								best = v > best ? v : best;
							}
						want[(((size_t)img * ho + oh) * wo + ow) * c + ch] =
							(uint8_t)best;
					}
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qmaxpool2_fn pool = q8_maxpool2_for((enum q8_isa)isa);
			if (!pool)
				continue;
			paths += t == 0;
			memset(y, 0xa5, y_bytes + 1);
			pool(n, h, w, c, x, y);
			cr_assert(memcmp(y, want, y_bytes) == 0,
				  "%s: maxpool2 of n=%d %dx%dx%d differs from the naive pool",
				  q8_isa_name((enum q8_isa)isa), n, h, w, c);
			cr_assert_eq(y[y_bytes], 0xa5, "%s wrote past the output",
				     q8_isa_name((enum q8_isa)isa));
		}
		free(x);
		free(want);
		free(y);
	}
	cr_assert(paths >= 1);
	cr_log_info("2x2 max pooling: %d paths equal the naive pool", paths);
}

/* ---- im2col ---------------------------------------------------------------------- */

Test(q8_im2col, vs_naive)
{
	rng_seed(30);
	for (int t = 0; t < 200; t++) {
		int h_in = rng_int(1, 9), w_in = rng_int(1, 9), groups = rng_int(1, 3);
		int cg = rng_int(1, 7), c_total = groups * cg, g = rng_int(0, groups - 1);
		int kh = rng_int(1, 4), kw = rng_int(1, 4), sh = rng_int(1, 3), sw = rng_int(1, 3);
		int dh = rng_int(1, 2), dw = rng_int(1, 2);
		int pt = rng_int(0, 3), pl = rng_int(0, 3), pb = rng_int(0, 3), pr = rng_int(0, 3);
		int h_out = (h_in + pt + pb - dh * (kh - 1) - 1) / sh + 1;
		int w_out = (w_in + pl + pr - dw * (kw - 1) - 1) / sw + 1;
		if (h_in + pt + pb < dh * (kh - 1) + 1 || w_in + pl + pr < dw * (kw - 1) + 1)
			continue;
		uint8_t pad = (uint8_t)rng_int(0, 255);
		size_t x_bytes = (size_t)h_in * w_in * c_total;
		size_t row_bytes = (size_t)kh * kw * cg, rows_bytes = (size_t)h_out * w_out * row_bytes;
		uint8_t *x = xmalloc(x_bytes), *rows = xmalloc(rows_bytes);
		for (size_t i = 0; i < x_bytes; i++)
			x[i] = (uint8_t)rng_int(0, 255);
		im2col_nhwc_u8(x, h_in, w_in, c_total, g, cg, h_out, w_out, kh, kw, sh, sw, pt, pl,
			       dh, dw, pad, rows);
		for (int oh = 0; oh < h_out; oh++)
			for (int ow = 0; ow < w_out; ow++)
				for (int ki = 0; ki < kh; ki++)
					for (int kj = 0; kj < kw; kj++)
						for (int c = 0; c < cg; c++) {
							int ih = oh * sh - pt + ki * dh;
							int iw = ow * sw - pl + kj * dw;
							uint8_t want = pad;
							if (ih >= 0 && ih < h_in && iw >= 0 && iw < w_in)
								want = x[((size_t)ih * w_in + iw) * c_total +
									 (size_t)g * cg + c];
							size_t at = ((size_t)oh * w_out + ow) * row_bytes +
								    ((size_t)ki * kw + kj) * cg + c;
							cr_assert_eq(rows[at], want);
						}
		free(x);
		free(rows);
	}
}

/* ---- dispatch -------------------------------------------------------------------- */

Test(q8_dispatch, table)
{
	cr_assert(q8_isa_supported(Q8_ISA_REF));
	cr_assert(!q8_isa_supported(Q8_ISA_COUNT));
	cr_assert_eq(q8_gemm_for(Q8_ISA_REF), &qgemm_u8s8__ref);
	cr_assert_eq(q8_dwconv_for(Q8_ISA_REF), &qdwconv_u8s8__ref);
	cr_assert_eq(q8_conv_for(Q8_ISA_REF), &qconv_u8s8__ref);
	cr_assert_str_eq(q8_isa_name(Q8_ISA_AVX512VNNI), "avx512vnni");
	enum q8_isa best = q8_isa_best();
	cr_assert(q8_isa_supported(best));
	for (int i = 0; i < Q8_ISA_COUNT; i++) {
		bool has = q8_isa_supported((enum q8_isa)i);
		cr_assert_eq(has, q8_gemm_for((enum q8_isa)i) != NULL);
		cr_assert_eq(has, q8_dwconv_for((enum q8_isa)i) != NULL);
		if (has)
			cr_assert(i <= (int)best || getenv("PRESSO_ISA"));
		cr_log_info("q8 path %s: %s", q8_isa_name((enum q8_isa)i),
			    has ? "supported" : "not supported here");
	}
}

/* Criterion runs each test in its own process, so the environment set here
 * is what the first q8 call of that process sees. */
Test(q8_dispatch, env_forces_ref)
{
	setenv("PRESSO_ISA", "ref", 1);
	cr_assert_eq(q8_isa_best(), Q8_ISA_REF);
}

Test(q8_dispatch, env_unknown_falls_back_to_best)
{
	setenv("PRESSO_ISA", "sse9", 1);
	enum q8_isa best = Q8_ISA_REF;
	for (int i = 0; i < Q8_ISA_COUNT; i++)
		if (q8_isa_supported((enum q8_isa)i))
			best = (enum q8_isa)i;
	cr_assert_eq(q8_isa_best(), best);
}

/* ---- Add -------------------------------------------------------------------------- */

static const char *add_path_name(int isa)
{
	return isa < Q8_ISA_COUNT ? q8_isa_name((enum q8_isa)isa) : "avx512vnni without VBMI";
}

/* Every (a, b) pair through every path's Add, with random scales, zero points
 * and clamps, at lengths that leave every tail (and in place, y = a): each
 * path equals q8_add_f32, which is within 1 of the exact real sum. Scales of
 * the real layers' size, then (t >= 12) large ones, whose sums leave int16
 * (the AVX-512 path's saturating packs) or 2^30 (its other form). */
Test(q8_add, every_pair_on_every_path)
{
	rng_seed(31);
	size_t n = 65536 + 13;
	uint8_t *a = xmalloc(n), *b = xmalloc(n), *y = xmalloc(n), *ya = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		a[i] = (uint8_t)(i >> 8);
		b[i] = (uint8_t)i;
	}
	int paths = 0;
	for (int t = 0; t < 16; t++) {
		/* t >= 12: 2^7..2^15 (sums beyond int16, within 2^30), t = 15: 2^23..2^30 */
		int lo = t < 12 ? 18 : t < 15 ? 5 : -10, hi = t < 12 ? 22 : t < 15 ? 12 : -4;
		int m_lo = t < 12 ? 1 : 1 << 19;
		struct qadd_params p = {
			/* c_zero 0 in every other case (a ReLU's output; the VBMI Add
			 * then skips adding it) */
			.a_zero = rng_int(0, 255), .b_zero = rng_int(0, 255),
			.c_zero = t % 2 ? 0 : rng_int(0, 255),
			.a_scale = (float)ldexp((double)rng_int(m_lo, 1 << 20), -rng_int(lo, hi)),
			.b_scale = (float)ldexp((double)rng_int(m_lo, 1 << 20), -rng_int(lo, hi)),
			.c_min = (uint8_t)(rng_chance(50) ? 0 : rng_int(0, 128)),
		};
		p.c_max = (uint8_t)(rng_chance(50) ? 255 : rng_int(p.c_min, 255));
		for (size_t i = 0; i < n; i++) {
			uint8_t want = q8_add_f32(a[i], b[i], &p);
			double exact = (a[i] - p.a_zero) * (double)p.a_scale +
				       (b[i] - p.b_zero) * (double)p.b_scale + p.c_zero;
			exact = exact < p.c_min ? p.c_min : exact > p.c_max ? p.c_max : exact;
			cr_assert(fabs(want - exact) <= 1.0 || t >= 12, "(%d, %d): %d for %.3f", a[i],
				  b[i], want, exact);
		}
		/* every path q8_add_for hands out, and the AVX-512 one that CPUs
		 * with VBMI pass over (index Q8_ISA_COUNT) */
		for (int isa = 0; isa <= Q8_ISA_COUNT; isa++) {
			qadd_fn add = isa < Q8_ISA_COUNT ? q8_add_for((enum q8_isa)isa)
				      : q8_isa_supported(Q8_ISA_AVX512VNNI) &&
						      q8_add_for(Q8_ISA_AVX512VNNI) != qadd_u8__avx512
					      ? qadd_u8__avx512
					      : NULL;
			if (!add)
				continue;
			paths += t == 0;
			size_t len = t == 0 || t >= 12 ? n : (size_t)rng_int(0, 200);
			memset(y, 0xa5, n);
			add(len, a, b, &p, y);
			for (size_t i = 0; i < len; i++)
				cr_assert_eq(y[i], q8_add_f32(a[i], b[i], &p), "%s: (%d, %d) at %zu",
					     add_path_name(isa), a[i], b[i], i);
			for (size_t i = len; i < n; i++)
				cr_assert_eq(y[i], 0xa5, "%s wrote past n = %zu", add_path_name(isa),
					     len);
			memcpy(ya, a, n);
			add(len, ya, b, &p, ya);
			cr_assert(memcmp(ya, y, len) == 0, "%s: in place differs", add_path_name(isa));
		}
	}
	cr_log_info("Add: %d paths equal q8_add_f32 on all 65536 pairs", paths);
	free(a);
	free(b);
	free(y);
	free(ya);
}

/* ---- table lookup ------------------------------------------------------------------- */

/* Every path's lookup equals the reference on all 256 codes, for random
 * tables (and the identity and a constant table), at lengths that leave every
 * tail, in place too, and writes nothing past n. */
Test(q8_lut, every_code_on_every_path)
{
	rng_seed(41);
	size_t n = 4096 + 77;
	uint8_t *x = xmalloc(n), *y = xmalloc(n), *want = xmalloc(n), *xi = xmalloc(n);
	uint8_t table[256];
	int paths = 0;
	for (int t = 0; t < 40; t++) {
		/* the identity, a constant, random bytes, and (odd t) a sigmoid between
		 * random input and output quantizations, as the INT8 engine builds them */
		struct qparams qi, qo;
		float lo = -(float)rng_int(1, 800) / 100.0f, hi = (float)rng_int(1, 800) / 100.0f;
		quant_act_params(lo, hi, 8, &qi);
		quant_act_params(0.0f, (float)rng_int(50, 100) / 100.0f, 8, &qo);
		for (int q = 0; q < 256; q++) {
			float real = qi.scale * (float)(q - qi.zero);
			table[q] = t == 0 ? (uint8_t)q : t == 1 ? 0x5a
				 : t % 2 ? quant_act_quantize(1.0f / (1.0f + expf(-real)), &qo)
					 : (uint8_t)rng_int(0, 255);
		}
		for (size_t i = 0; i < n; i++)
			x[i] = t < 3 ? (uint8_t)i : (uint8_t)rng_int(0, 255);
		size_t len = t < 3 ? n : (size_t)rng_int(0, 300);
		qlut_u8__ref(len, x, table, want);
		for (size_t i = 0; i < len; i++)
			cr_assert_eq(want[i], table[x[i]]);
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qlut_fn lut = q8_lut_for((enum q8_isa)isa);
			if (!lut)
				continue;
			paths += t == 0;
			memset(y, 0xa5, n);
			lut(len, x, table, y);
			cr_assert(memcmp(y, want, len) == 0, "%s differs from the reference (len %zu)",
				  q8_isa_name((enum q8_isa)isa), len);
			for (size_t i = len; i < n; i++)
				cr_assert_eq(y[i], 0xa5, "%s wrote past n = %zu",
					     q8_isa_name((enum q8_isa)isa), len);
			memcpy(xi, x, n);
			lut(len, xi, table, xi);
			cr_assert(memcmp(xi, want, len) == 0, "%s: in place differs",
				  q8_isa_name((enum q8_isa)isa));
		}
	}
	cr_log_info("table lookup: %d paths equal the reference", paths);
	free(x);
	free(y);
	free(want);
	free(xi);
}

/* ---- Mul ----------------------------------------------------------------------------- */

/* Every (a, b) pair through every path's Mul, with random scales, zero points
 * and clamps, in both requantization forms: each path equals q8_mul, which is
 * within 1 of the exact real product (float form) and within 1 of the float
 * form (Q31). */
Test(q8_mul, every_pair_on_every_path)
{
	rng_seed(43);
	size_t n = 65536 + 13;
	uint8_t *a = xmalloc(n), *b = xmalloc(n), *y = xmalloc(n), *ya = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		a[i] = (uint8_t)(i >> 8);
		b[i] = (uint8_t)i;
	}
	int paths = 0;
	for (int t = 0; t < 22; t++) {
		/* t >= 16: large scales (products beyond int16, or 2^30: the AVX-512
		 * path's saturating packs and its other form) */
		double real = t < 16 ? ldexp((double)rng_int(1, 1 << 20), -rng_int(24, 32))
				     : ldexp((double)rng_int(1 << 19, 1 << 20),
					     t < 20 ? -rng_int(10, 18) : rng_int(4, 10));
		struct qmul_params p = {
			.a_zero = rng_int(0, 255), .b_zero = rng_int(0, 255), .c_zero = rng_int(0, 255),
			.scale = (float)real, .q31 = t % 2 == 1,
			.c_min = (uint8_t)(rng_chance(50) ? 0 : rng_int(0, 128)),
		};
		quant_multiplier(real, &p.mult, &p.shift);
		p.c_max = (uint8_t)(rng_chance(50) ? 255 : rng_int(p.c_min, 255));
		struct qmul_params pf = p;
		pf.q31 = false;
		for (size_t i = 0; i < n; i++) {
			uint8_t want = q8_mul(a[i], b[i], &p);
			double exact = (double)(a[i] - p.a_zero) * (b[i] - p.b_zero) * (double)p.scale +
				       p.c_zero;
			exact = exact < p.c_min ? p.c_min : exact > p.c_max ? p.c_max : exact;
			cr_assert(fabs(want - exact) <= (p.q31 ? 1.5 : 1.0) || t >= 16,
				  "(%d, %d): %d for %.3f", a[i], b[i], want, exact);
			if (p.q31 && t < 16)
				cr_assert(abs(want - q8_mul(a[i], b[i], &pf)) <= 1);
		}
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qmul_fn mul = q8_mul_for((enum q8_isa)isa);
			if (!mul)
				continue;
			paths += t == 0;
			size_t len = t < 2 || t >= 16 ? n : (size_t)rng_int(0, 200);
			memset(y, 0xa5, n);
			mul(len, a, b, &p, y);
			for (size_t i = 0; i < len; i++)
				cr_assert_eq(y[i], q8_mul(a[i], b[i], &p), "%s: (%d, %d) at %zu",
					     q8_isa_name((enum q8_isa)isa), a[i], b[i], i);
			for (size_t i = len; i < n; i++)
				cr_assert_eq(y[i], 0xa5, "%s wrote past n = %zu",
					     q8_isa_name((enum q8_isa)isa), len);
			memcpy(ya, a, n);
			mul(len, ya, b, &p, ya);
			cr_assert(memcmp(ya, y, len) == 0, "%s: in place differs",
				  q8_isa_name((enum q8_isa)isa));
		}
	}
	cr_log_info("Mul: %d paths equal q8_mul on all 65536 pairs", paths);
	free(a);
	free(b);
	free(y);
	free(ya);
}

/* Every path's Mul by a per-channel gate (squeeze-excite) equals q8_mul row by
 * row: channel counts that divide 64 (one run of codes) and others (chunks of
 * 64 channels), 1 to 200 rows, both forms and large scales as above; writes
 * nothing past the rows, and in place gives the same. */
Test(q8_mul_rows, every_path_equals_q8_mul)
{
	rng_seed(47);
	static const int cs[] = {1, 2, 4, 8, 16, 32, 64, 3, 24, 40, 72, 96, 120, 144, 192, 200};
	int paths = 0;
	for (int t = 0; t < 400; t++) {
		size_t c = (size_t)(rng_chance(70) ? cs[rng_int(0, N_ELEMS(cs) - 1)] : rng_int(1, 300));
		size_t rows = (size_t)(rng_chance(50) ? rng_int(1, 20) : rng_int(1, 200)), n = rows * c;
		double real = t % 8 < 6 ? ldexp((double)rng_int(1, 1 << 20), -rng_int(24, 32))
					: ldexp((double)rng_int(1 << 19, 1 << 20),
						t % 8 == 6 ? -rng_int(10, 18) : rng_int(4, 10));
		struct qmul_params p = {
			.a_zero = rng_int(0, 255), .b_zero = rng_int(0, 255), .c_zero = rng_int(0, 255),
			.scale = (float)real, .q31 = t % 5 == 4,
			.c_min = (uint8_t)(rng_chance(50) ? 0 : rng_int(0, 128)),
		};
		quant_multiplier(real, &p.mult, &p.shift);
		p.c_max = (uint8_t)(rng_chance(50) ? 255 : rng_int(p.c_min, 255));
		uint8_t *a = xmalloc(n), *gate = xmalloc(c), *y = xmalloc(n + 64), *want = xmalloc(n);
		for (size_t i = 0; i < n; i++)
			a[i] = (uint8_t)rng_int(0, 255);
		for (size_t i = 0; i < c; i++)
			gate[i] = (uint8_t)rng_int(0, 255);
		for (size_t r = 0; r < rows; r++)
			for (size_t ch = 0; ch < c; ch++)
				want[r * c + ch] = q8_mul(a[r * c + ch], gate[ch], &p);
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qmul_rows_fn mul_rows = q8_mul_rows_for((enum q8_isa)isa);
			if (!mul_rows)
				continue;
			paths += t == 0;
			memset(y, 0xa5, n + 64);
			mul_rows(rows, c, a, gate, &p, y);
			cr_assert(memcmp(y, want, n) == 0, "%s: %zu rows x %zu channels differ",
				  q8_isa_name((enum q8_isa)isa), rows, c);
			for (size_t i = n; i < n + 64; i++)
				cr_assert_eq(y[i], 0xa5, "%s wrote past the rows", q8_isa_name((enum q8_isa)isa));
			memcpy(y, a, n);
			mul_rows(rows, c, y, gate, &p, y);
			cr_assert(memcmp(y, want, n) == 0, "%s: in place differs",
				  q8_isa_name((enum q8_isa)isa));
		}
		free(a);
		free(gate);
		free(y);
		free(want);
	}
	cr_log_info("gate Mul: %d paths equal q8_mul", paths);
}

/* ---- per-channel sums over pixels --------------------------------------------------- */

/* Every path's pixel sums equal a plain sum: channel counts that divide 64 with
 * contiguous pixels (one run of codes) and any other count or a row stride
 * past c, pixel counts up to 700 (16-bit partial sums are widened every 257
 * codes), all-255 inputs among the random ones; nothing written past c. */
Test(q8_sum_pixels, every_path_equals_plain_sums)
{
	rng_seed(53);
	static const int cs[] = {1, 2, 4, 8, 16, 32, 64, 3, 24, 40, 72, 96, 120, 144, 192, 512};
	int paths = 0;
	for (int t = 0; t < 300; t++) {
		size_t c = (size_t)(rng_chance(70) ? cs[rng_int(0, N_ELEMS(cs) - 1)] : rng_int(1, 300));
		size_t stride = c + (rng_chance(25) ? (size_t)rng_int(1, 40) : 0);
		size_t hw = (size_t)(rng_chance(50) ? rng_int(1, 64) : rng_int(1, 700));
		size_t bytes = (hw - 1) * stride + c;
		uint8_t *x = xmalloc(bytes);
		bool full = rng_chance(20);
		for (size_t i = 0; i < bytes; i++)
			x[i] = full ? 255 : (uint8_t)rng_int(0, 255);
		uint32_t *want = xmalloc((c + 16) * sizeof(uint32_t)), *sum = xmalloc((c + 16) * sizeof(uint32_t));
		for (size_t ch = 0; ch < c; ch++) {
			uint64_t v = 0;
			for (size_t px = 0; px < hw; px++)
				v += x[px * stride + ch];
			want[ch] = (uint32_t)v;
		}
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qsum_pixels_fn sum_pixels = q8_sum_pixels_for((enum q8_isa)isa);
			if (!sum_pixels)
				continue;
			paths += t == 0;
			memset(sum, 0xa5, (c + 16) * sizeof(uint32_t));
			sum_pixels(hw, c, stride, x, sum);
			for (size_t ch = 0; ch < c; ch++)
				cr_assert_eq(sum[ch], want[ch], "%s: %zu pixels x %zu channels (stride %zu), channel %zu",
					     q8_isa_name((enum q8_isa)isa), hw, c, stride, ch);
			for (size_t ch = c; ch < c + 16; ch++)
				cr_assert_eq(sum[ch], 0xa5a5a5a5u, "%s wrote past c", q8_isa_name((enum q8_isa)isa));
		}
		free(x);
		free(want);
		free(sum);
	}
	cr_log_info("pixel sums: %d paths equal plain sums", paths);
}

/* ---- MatMul of two uint8 activations ---------------------------------------------- */

/* Random shapes of the u8 x u8 MatMul per path (plus the listed edge shapes). */
#define N_MATMUL_SHAPES 600

/* C of the exact int64 sum, requantized by q8_matmul_requant. */
static void naive_qmatmul(const struct qmatmul_params *p, const uint8_t *a, int lda,
			  const uint8_t *b, int ldb, uint8_t *c, int ldc)
{
	for (int i = 0; i < p->m; i++)
		for (int j = 0; j < p->n; j++) {
			int64_t acc = 0;
			for (int kk = 0; kk < p->k; kk++)
				acc += (int64_t)(a[(size_t)i * lda + kk] - p->a_zero) *
				       ((p->b_trans ? b[(size_t)j * ldb + kk] : b[(size_t)kk * ldb + j]) -
					p->b_zero);
			cr_assert(acc >= INT32_MIN && acc <= INT32_MAX);
			c[(size_t)i * ldc + j] = q8_matmul_requant((int32_t)acc, p);
		}
}

/* One shape through path mm against the naive model: the whole of C
 * compared, the padding between rows included. */
static void check_qmatmul(const struct qmatmul_ukernel *mm, const struct qmatmul_params *p,
			  const uint8_t *a, int lda, const uint8_t *b, int ldb, int ldc)
{
	size_t c_bytes = (size_t)p->m * (size_t)ldc;
	uint8_t *c = xmalloc(c_bytes), *want = xmalloc(c_bytes);
	memset(c, 0xa5, c_bytes);
	memset(want, 0xa5, c_bytes);
	size_t wb = mm->work_bytes(p->k, p->n);
	void *work = aligned_alloc(64, (wb + 63) / 64 * 64 + 64);
	cr_assert_not_null(work);
	naive_qmatmul(p, a, lda, b, ldb, want, ldc);
	mm->run(p, a, lda, b, ldb, c, ldc, work);
	for (size_t i = 0; i < c_bytes; i++)
		cr_assert_eq(c[i], want[i],
			     "%s: m %d n %d k %d lda %d ldb %d%s ldc %d zeros %d %d %s: byte %zu is "
			     "%d, want %d", mm->name, p->m, p->n, p->k, lda, ldb,
			     p->b_trans ? " (B transposed)" : "", ldc, p->a_zero, p->b_zero,
			     p->q31 ? "q31" : "float", i, c[i], want[i]);
	free(work);
	free(c);
	free(want);
}

static void random_qmatmul_params(struct qmatmul_params *p, int m, int n, int k)
{
	double real = ldexp((double)rng_int(1, 1 << 20), -rng_int(26, 40));
	*p = (struct qmatmul_params){
		.m = m, .n = n, .k = k, .a_zero = rng_int(0, 255), .b_zero = rng_int(0, 255),
		.c_zero = rng_int(0, 255), .rq_scale = (float)real, .q31 = rng_chance(40),
		.c_min = (uint8_t)(rng_chance(70) ? 0 : rng_int(0, 100)),
	};
	quant_multiplier(real, &p->mult, &p->shift);
	p->c_max = (uint8_t)(rng_chance(70) ? 255 : rng_int(p->c_min, 255));
}

/* Random shapes (odd m, n, k, row strides past the rows, B given as it is or
 * transposed) and edge shapes on one path: k from 0 to Q8_K_MAX with the
 * extreme codes that make |acc| its largest, ragged 16- and 8-column and
 * 4-row edges. */
static void qmatmul_path_vs_model(enum q8_isa isa)
{
	const struct qmatmul_ukernel *mm = q8_matmul_for(isa);
	if (!mm) {
		cr_log_warn("%s: not supported here, skipped", q8_isa_name(isa));
		return;
	}
	rng_seed(1400 + (uint64_t)isa);
	for (int t = 0; t < N_MATMUL_SHAPES; t++) {
		int m = rng_int(1, 40), n = rng_int(1, 70), k = rng_int(1, 300);
		if (t < 40) { /* the attention shapes: 16 x 16 x 16 and neighbours */
			m = 15 + t % 3;
			n = 15 + (t / 3) % 3;
			k = 15 + (t / 9) % 3;
		}
		bool b_trans = rng_chance(50);
		int lda = k + (rng_chance(50) ? 0 : rng_int(1, 9));
		int ldb = (b_trans ? k : n) + (rng_chance(50) ? 0 : rng_int(1, 9));
		int ldc = n + (rng_chance(50) ? 0 : rng_int(1, 9));
		struct qmatmul_params p;
		random_qmatmul_params(&p, m, n, k);
		p.b_trans = b_trans;
		/* B exactly as long as its rows need: a read past it is caught
		 * under the sanitizers */
		size_t b_bytes = b_trans ? (size_t)(n - 1) * ldb + (size_t)k
					 : (size_t)(k - 1) * ldb + (size_t)n;
		uint8_t *a = xmalloc((size_t)m * lda), *b = xmalloc(b_bytes);
		for (size_t i = 0; i < (size_t)m * lda; i++)
			a[i] = (uint8_t)rng_int(0, 255);
		for (size_t i = 0; i < b_bytes; i++)
			b[i] = (uint8_t)rng_int(0, 255);
		check_qmatmul(mm, &p, a, lda, b, ldb, ldc);
		free(a);
		free(b);
	}
	/* extremes: acc = +-255^2 K at K = Q8_K_MAX, and K = 0 (acc = 0) */
	const int ks[] = {0, 1, 3, 4, 5, 63, 64, 65, Q8_K_MAX - 1, Q8_K_MAX};
	for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
		for (int sign = 0; sign < 2; sign++) {
			int m = 5, n = 17, k = ks[t];
			struct qmatmul_params p = {.m = m, .n = n, .k = k, .a_zero = 0,
						   .b_zero = sign ? 0 : 255, .c_zero = 128,
						   .rq_scale = ldexp(1.0, -25), .c_min = 0, .c_max = 255};
			quant_multiplier(ldexp(1.0, -25), &p.mult, &p.shift);
			uint8_t *a = xmalloc((size_t)m * (k ? k : 1)), *b = xmalloc((size_t)(k ? k : 1) * n);
			memset(a, 255, (size_t)m * (k ? k : 1));
			memset(b, sign ? 255 : 0, (size_t)(k ? k : 1) * n);
			for (int q31 = 0; q31 < 2; q31++) {
				p.q31 = q31;
				p.b_trans = false;
				check_qmatmul(mm, &p, a, k ? k : 1, b, n, n);
				/* all of B is one code: [n][k] reads the same bytes */
				p.b_trans = true;
				if (k)
					check_qmatmul(mm, &p, a, k, b, k, n);
			}
			free(a);
			free(b);
		}
	}
	cr_log_info("%s: %d random shapes and the edges equal the model", mm->name, N_MATMUL_SHAPES);
}

Test(q8_matmul, reference_vs_model)
{
	qmatmul_path_vs_model(Q8_ISA_REF);
}

Test(q8_matmul, avx2_vs_model)
{
	qmatmul_path_vs_model(Q8_ISA_AVX2);
}

Test(q8_matmul, avx512vnni_vs_model)
{
	qmatmul_path_vs_model(Q8_ISA_AVX512VNNI);
}

/* The requantized output is the real product to within one code: the float
 * form against a double computation. */
Test(q8_matmul, reference_near_real_product)
{
	rng_seed(1410);
	for (int t = 0; t < 200; t++) {
		int m = rng_int(1, 9), n = rng_int(1, 9), k = rng_int(1, 64);
		struct qmatmul_params p;
		random_qmatmul_params(&p, m, n, k);
		p.q31 = false;
		uint8_t a[9 * 64], b[64 * 9], c[81];
		for (int i = 0; i < m * k; i++)
			a[i] = (uint8_t)rng_int(0, 255);
		for (int i = 0; i < k * n; i++)
			b[i] = (uint8_t)rng_int(0, 255);
		qmatmul_u8u8__ref.run(&p, a, k, b, n, c, n, NULL);
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++) {
				double s = 0;
				for (int kk = 0; kk < k; kk++)
					s += (double)(a[i * k + kk] - p.a_zero) * (b[kk * n + j] - p.b_zero);
				double want = s * (double)p.rq_scale + p.c_zero;
				want = want < p.c_min ? p.c_min : want > p.c_max ? p.c_max : want;
				cr_assert(fabs(c[i * n + j] - want) <= 0.5 + 1e-3, "%d vs %.4f",
					  c[i * n + j], want);
			}
	}
}

/* ---- Softmax, LayerNormalization, Transpose --------------------------------------- */

/* Within one code of the real softmax of the dequantized row (the float sum,
 * the table's float exp and the per-row reciprocal each round once). */
Test(q8_softmax, reference_near_real)
{
	rng_seed(1420);
	float table[256];
	for (int t = 0; t < 300; t++) {
		size_t n = (size_t)rng_int(1, 80), rows = (size_t)rng_int(1, 5);
		double sx = ldexp((double)rng_int(1, 1000), -rng_int(6, 12));
		double sy = 1.0 / rng_int(200, 300);
		int zy = rng_int(0, 20);
		for (int d = 0; d < 256; d++)
			table[d] = expf(-(float)sx * (float)d);
		struct qsoftmax_params p = {.exp_table = table, .inv_out_scale = (float)(1.0 / sy),
					    .c_zero = zy, .c_min = 0, .c_max = 255};
		uint8_t x[5 * 80], y[5 * 80];
		int lo = rng_int(0, 255), hi = rng_int(lo, 255);
		for (size_t i = 0; i < rows * n; i++)
			x[i] = (uint8_t)rng_int(lo, hi);
		qsoftmax_u8__ref(rows, n, x, &p, y);
		for (size_t r = 0; r < rows; r++) {
			const uint8_t *xr = x + r * n;
			int mx = 0;
			for (size_t i = 0; i < n; i++)
				mx = xr[i] > mx ? xr[i] : mx;
			double sum = 0;
			for (size_t i = 0; i < n; i++)
				sum += exp(sx * (xr[i] - mx));
			for (size_t i = 0; i < n; i++) {
				double want = exp(sx * (xr[i] - mx)) / sum / sy + zy;
				want = want > 255 ? 255 : want;
				cr_assert(fabs(y[r * n + i] - want) <= 1.0, "row %zu of %zu: %d vs %.3f",
					  r, n, y[r * n + i], want);
			}
		}
	}
}

Test(q8_layernorm, reference_near_real)
{
	rng_seed(1430);
	for (int t = 0; t < 300; t++) {
		size_t n = (size_t)rng_int(1, 100), rows = (size_t)rng_int(1, 4);
		double sx = ldexp((double)rng_int(1, 1000), -rng_int(6, 12));
		double sy = ldexp((double)rng_int(1, 1000), -rng_int(7, 9));
		int zy = rng_int(0, 255);
		float eps = rng_chance(50) ? 1e-5f : 1e-3f;
		float gamma[100], beta[100], gq[100], bq[100];
		for (size_t i = 0; i < n; i++) {
			gamma[i] = (float)(rng_int(-2000, 2000) / 1000.0);
			beta[i] = (float)(rng_int(-500, 500) / 1000.0);
			gq[i] = (float)(gamma[i] / sy);
			bq[i] = (float)(beta[i] / sy + zy);
		}
		struct qlayernorm_params p = {.in_scale = (float)sx, .epsilon = eps, .gamma_q = gq,
					      .beta_q = bq, .c_min = 0, .c_max = 255};
		uint8_t x[4 * 100], y[4 * 100];
		int lo = rng_int(0, 255), hi = rng_int(lo, 255);
		for (size_t i = 0; i < rows * n; i++)
			x[i] = (uint8_t)rng_int(lo, hi);
		qlayernorm_u8__ref(rows, n, x, &p, y);
		for (size_t r = 0; r < rows; r++) {
			const uint8_t *xr = x + r * n;
			double mean = 0, var = 0;
			for (size_t i = 0; i < n; i++)
				mean += sx * xr[i];
			mean /= (double)n;
			for (size_t i = 0; i < n; i++)
				var += (sx * xr[i] - mean) * (sx * xr[i] - mean);
			var /= (double)n;
			for (size_t i = 0; i < n; i++) {
				double v = (sx * xr[i] - mean) / sqrt(var + eps) * gamma[i] + beta[i];
				double want = v / sy + zy;
				want = want < 0 ? 0 : want > 255 ? 255 : want;
				cr_assert(fabs(y[r * n + i] - want) <= 0.5 + 2e-3 * (1 + fabs(want - zy)),
					  "n %zu: %d vs %.4f", n, y[r * n + i], want);
			}
		}
	}
}

/* Every permutation of ranks 1..5 on random shapes against index arithmetic
 * done here: y at multi-index j is x at the index with x[perm[i]] = j[i]. */
Test(q8_transpose, reference_vs_index_arithmetic)
{
	rng_seed(1440);
	for (int t = 0; t < 400; t++) {
		int rank = rng_int(1, 5);
		int64_t dims[5], perm[5], ydims[5];
		size_t total = 1;
		for (int i = 0; i < rank; i++) {
			dims[i] = rng_int(1, 6);
			perm[i] = i;
			total *= (size_t)dims[i];
		}
		for (int i = rank - 1; i > 0; i--) { /* Fisher-Yates */
			int j = rng_int(0, i);
			int64_t s = perm[i];
			perm[i] = perm[j];
			perm[j] = s;
		}
		for (int i = 0; i < rank; i++)
			ydims[i] = dims[perm[i]];
		uint8_t *x = xmalloc(total), *y = xmalloc(total + 1);
		for (size_t i = 0; i < total; i++)
			x[i] = (uint8_t)rng_int(0, 255);
		y[total] = 0x5a;
		transpose_u8__ref(rank, dims, perm, x, y);
		cr_assert_eq(y[total], 0x5a, "wrote past y");
		for (size_t l = 0; l < total; l++) {
			int64_t yi[5], xi[5];
			size_t r = l;
			for (int i = rank - 1; i >= 0; i--) {
				yi[i] = (int64_t)(r % (size_t)ydims[i]);
				r /= (size_t)ydims[i];
			}
			for (int i = 0; i < rank; i++)
				xi[perm[i]] = yi[i];
			size_t off = 0;
			for (int i = 0; i < rank; i++)
				off = off * (size_t)dims[i] + (size_t)xi[i];
			cr_assert_eq(y[l], x[off], "rank %d at %zu", rank, l);
		}
		free(x);
		free(y);
	}
}

/* Every path's Softmax and LayerNormalization rows against the reference,
 * bit for bit, on random row lengths (1..100: ragged 8-lane tails; the first
 * 40 of 16, attention's rows, which AVX-512 takes four at a time), 1 to 20
 * rows (AVX-512 LayerNorm takes eight at a time), scales, zero points and
 * clamps. */
Test(q8_rows, every_path_equals_reference)
{
	rng_seed(1450);
	float table[256], gq[100], bq[100];
	static uint8_t x[20 * 100], y[20 * 100 + 1], want[20 * 100 + 1];
	int paths = 0;
	for (int t = 0; t < 400; t++) {
		size_t n = t < 40 ? 16 : t < 80 ? 48 : (size_t)rng_int(1, 100);
		size_t rows = (size_t)rng_int(1, 20);
		double sx = ldexp((double)rng_int(1, 1000), -rng_int(6, 12));
		for (int d = 0; d < 256; d++)
			table[d] = expf(-(float)sx * (float)d);
		for (size_t i = 0; i < n; i++) {
			gq[i] = (float)(rng_int(-20000, 20000) / 100.0);
			bq[i] = (float)rng_int(-100, 400);
		}
		uint8_t c_min = (uint8_t)(rng_chance(70) ? 0 : rng_int(0, 100));
		uint8_t c_max = (uint8_t)(rng_chance(70) ? 255 : rng_int(c_min, 255));
		struct qsoftmax_params sp = {.exp_table = table,
					     .inv_out_scale = (float)rng_int(100, 400),
					     .c_zero = rng_int(0, 30), .c_min = c_min, .c_max = c_max};
		struct qlayernorm_params lp = {.in_scale = (float)sx, .epsilon = 1e-5f, .gamma_q = gq,
					       .beta_q = bq, .c_min = c_min, .c_max = c_max};
		int lo = rng_int(0, 255), hi = rng_int(lo, 255);
		for (size_t i = 0; i < rows * n; i++)
			x[i] = (uint8_t)rng_int(lo, hi);
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qsoftmax_fn sm = q8_softmax_for((enum q8_isa)isa);
			qlayernorm_fn ln = q8_layernorm_for((enum q8_isa)isa);
			if (!sm || !ln)
				continue;
			paths += t == 0;
			for (int which = 0; which < 2; which++) {
				memset(y, 0xa5, sizeof y);
				memset(want, 0xa5, sizeof want);
				if (which == 0) {
					qsoftmax_u8__ref(rows, n, x, &sp, want);
					sm(rows, n, x, &sp, y);
				} else {
					qlayernorm_u8__ref(rows, n, x, &lp, want);
					ln(rows, n, x, &lp, y);
				}
				cr_assert(memcmp(y, want, rows * n + 1) == 0, "%s %s: rows %zu n %zu",
					  q8_isa_name((enum q8_isa)isa), which ? "LayerNorm" : "Softmax",
					  rows, n);
			}
		}
	}
	cr_assert_geq(paths, 1);
}

/* Softmax's row sum has one order (q8_softmax_row_prep: lane j adds elements
 * j, j + 16, ... in index order, then lanes (j, j + 8), (j, j + 4), (j, j + 2),
 * (j, j + 1)), which every path must follow to stay bit-exact. Random rows
 * rarely show an order change in the output codes, so here the table holds
 * +-2^24 beside small values: the float sum then depends on the order by
 * whole units, and the codes with it. The reference is also checked against
 * the order written out here. The first 60 sets have rows of 16 (one entry
 * per lane: the order is the pairwise tree alone), 1 to 13 of them, which
 * AVX-512 takes four at a time. */
Test(q8_rows, softmax_sums_in_the_defined_order)
{
	rng_seed(2024);
	float table[256];
	for (int d = 0; d < 256; d++)
		table[d] = 1.0f;
	table[1] = 16777216.0f;
	table[2] = -16777216.0f;
	table[3] = 3.0f;
	uint8_t x[4 * 100], y[4 * 100], want[4 * 100];
	int differs_from_sequential = 0;
	for (int t = 0; t < 360; t++) {
		size_t n = t < 60 ? 16 : (size_t)rng_int(17, 100);
		size_t rows = (size_t)(t < 60 ? rng_int(1, 13) : rng_int(1, 4));
		for (size_t i = 0; i < rows * n; i++)
			x[i] = (uint8_t)(255 - rng_int(0, 3));
		for (size_t r = 0; r < rows; r++)
			x[r * n + (size_t)rng_int(0, (int)n - 1)] = 255; /* the row's max: d = 0 */
		struct qsoftmax_params sp = {.exp_table = table, .inv_out_scale = 64.0f,
					     .c_zero = 128, .c_min = 0, .c_max = 255};
		for (size_t r = 0; r < rows; r++) {
			const uint8_t *xr = x + r * n;
			float part[16] = {0}, seq = 0;
			for (size_t i = 0; i < n; i++) {
				part[i % 16] += table[255 - xr[i]];
				seq += table[255 - xr[i]];
			}
			for (int w = 8; w >= 1; w /= 2)
				for (int j = 0; j < w; j++)
					part[j] += part[j + w];
			uint8_t mx;
			float inv = q8_softmax_row_prep(xr, n, &sp, &mx);
			cr_assert_eq(mx, 255);
			cr_assert(memcmp(&inv, &(float){64.0f / part[0]}, sizeof inv) == 0,
				  "n %zu: the reference's sum is not the defined order's", n);
			differs_from_sequential += seq != part[0];
		}
		qsoftmax_u8__ref(rows, n, x, &sp, want);
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qsoftmax_fn sm = q8_softmax_for((enum q8_isa)isa);
			if (!sm)
				continue;
			memset(y, 0xa5, sizeof y);
			sm(rows, n, x, &sp, y);
			cr_assert(memcmp(y, want, rows * n) == 0, "%s: rows %zu n %zu",
				  q8_isa_name((enum q8_isa)isa), rows, n);
		}
	}
	cr_assert_gt(differs_from_sequential, 50, "the test's rows must tell orders apart");
}

/* ---- quantizing float ---------------------------------------------------------------- */

/* Every path's float-to-uint8 quantizer equals quant_act_quantize (the
 * engine's scalar definition) on random values across and beyond the range,
 * the rounding ties (x.5 steps), +-0, +-infinity and NaN, at every bit width
 * and at lengths that leave every tail, and writes nothing past n. */
Test(q8_quant, every_value_on_every_path)
{
	rng_seed(47);
	size_t n = 1024 + 45;
	float *x = xmalloc(n * sizeof *x);
	uint8_t *y = xmalloc(n), *want = xmalloc(n);
	int paths = 0;
	for (int t = 0; t < 60; t++) {
		struct qparams qp;
		int bits = 2 + t % 7;
		float lo = -(float)rng_int(0, 800) / 100.0f, hi = (float)rng_int(1, 800) / 100.0f;
		quant_act_params(lo, hi, bits, &qp);
		struct qquant_params q = {qp.inv_scale, qp.zero, qp.bits};
		for (size_t i = 0; i < n; i++) {
			int kind = rng_int(0, 9);
			float step = (float)rng_int(-300, 300) + (kind == 0 ? 0.5f : 0.0f);
			x[i] = kind <= 1 ? step * qp.scale                                  /* ties, steps */
			     : kind == 2 ? (rng_int(0, 1) ? 0.0f : -0.0f)
			     : kind == 3 ? (rng_int(0, 1) ? INFINITY : -INFINITY)
			     : kind == 4 ? NAN
			     : (float)rng_int(-1000000, 1000000) / 1000000.0f * 2.0f * (hi - lo);
		}
		size_t len = t < 2 ? n : (size_t)rng_int(0, 300);
		for (size_t i = 0; i < len; i++)
			want[i] = quant_act_quantize(x[i], &qp);
		for (int isa = 0; isa < Q8_ISA_COUNT; isa++) {
			qquant_fn quant = q8_quant_for((enum q8_isa)isa);
			if (!quant)
				continue;
			paths += t == 0;
			memset(y, 0xa5, n);
			quant(len, x, &q, y);
			for (size_t i = 0; i < len; i++)
				cr_assert_eq(y[i], want[i], "%s: x = %a (bits %d, zero %d) gives %d, want %d",
					     q8_isa_name((enum q8_isa)isa), (double)x[i], bits, qp.zero,
					     y[i], want[i]);
			for (size_t i = len; i < n; i++)
				cr_assert_eq(y[i], 0xa5, "%s wrote past n = %zu",
					     q8_isa_name((enum q8_isa)isa), len);
		}
	}
	cr_assert_geq(paths, 1);
	cr_log_info("float quantizer: %d paths equal quant_act_quantize", paths);
	free(x);
	free(y);
	free(want);
}
