/* test_kernels_f32.c - the FP32 reference kernels against naive oracles.
 *
 * Every kernel of kernels_f32.h is run on many random shapes drawn from a
 * fixed-seed PRNG (odd sizes, groups, depthwise, 1x1, strides, pads,
 * dilations, transposes, broadcasting, ...) and compared element by element
 * with an obviously correct implementation written here, computed in double.
 * Sums of products are compared with a tolerance relative to the sum of the
 * absolute values of their terms (see TOL_SUM); data movement and single
 * roundings (transpose, concat, add, clip, max pool) must match exactly.
 * Output buffers are allocated to their exact size (AddressSanitizer catches
 * overruns) and strided outputs are checked for untouched padding.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_f32.h"
#include "kernels/kernels_q8.h"
#include "kernels/kernels_train.h"

/* A float sum of K terms, in whatever order, is within K * 2^-24 *
 * sum|term| of the exact sum in the worst case and typically within
 * sqrt(K) * 2^-24 * sum|term| for random signs: about 4e-6 for K = 5000,
 * the largest reduction here. 1e-5 leaves margin for that while a wrong or
 * missing term (about sum|term| / K, >= 2e-4 here) still fails. */
#define TOL_SUM 1e-5
/* Softmax: expf/logf are within a few ulps and the sum of `dim` terms adds
 * up to dim * 2^-24 relative error (dim <= 300 here: <= 2e-5 worst case,
 * far less in practice); 1e-5 relative plus 1e-7 absolute for tiny values. */
#define TOL_SOFTMAX_REL 1e-5
#define TOL_SOFTMAX_ABS 1e-7

#define MAX_RANK 6

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
static int rng_int(int lo, int hi)
{
	return lo + (int)(rng_u64() % (uint64_t)(hi - lo + 1));
}

/* Uniform float in [-1, 1). */
static float rng_float(void)
{
	return (float)((double)(rng_u64() >> 40) / (double)(1ull << 23) - 1.0);
}

static bool rng_bool(void)
{
	return rng_u64() & 1;
}

static float *rand_buf(int64_t count)
{
	float *p = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));

	cr_assert_not_null(p);
	for (int64_t i = 0; i < count; i++)
		p[i] = rng_float();
	return p;
}

static double *dbuf(int64_t count)
{
	double *p = calloc((size_t)(count > 0 ? count : 1), sizeof(double));

	cr_assert_not_null(p);
	return p;
}

static int64_t prod(const int64_t *dims, int rank)
{
	int64_t p = 1;

	for (int i = 0; i < rank; i++)
		p *= dims[i];
	return p;
}

/* ---- Comparisons --------------------------------------------------------- */

/* got[i] against want[i] within TOL_SUM * mag[i] (mag: sum of |terms|). */
static void expect_sums(const char *what, int64_t count, const float *got, const double *want,
			const double *mag)
{
	for (int64_t i = 0; i < count; i++) {
		double err = fabs((double)got[i] - want[i]);

		if (!(err <= TOL_SUM * mag[i] + 1e-30))
			cr_assert_fail("%s: element %lld: got %.9g, want %.9g (mag %.3g)", what,
				       (long long)i, (double)got[i], want[i], mag[i]);
	}
}

static void expect_exact(const char *what, int64_t count, const float *got, const float *want)
{
	for (int64_t i = 0; i < count; i++)
		if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
			cr_assert_fail("%s: element %lld: got %.9g, want %.9g", what, (long long)i,
				       (double)got[i], (double)want[i]);
}

static double clampd(double v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- GEMM ---------------------------------------------------------------- */

/* op(A)(i, kk) for a stored [m, k] (lda) or, transposed, [k, m]. */
static double op_at(const float *a, int lda, bool trans, int i, int kk)
{
	return trans ? a[(int64_t)kk * lda + i] : a[(int64_t)i * lda + kk];
}

static void check_gemm(int m, int n, int k, bool ta, bool tb, int pad)
{
	int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
	int64_t a_n = (int64_t)(ta ? k : m) * lda, b_n = (int64_t)(tb ? n : k) * ldb;
	int64_t c_n = (int64_t)m * ldc;
	float *a = rand_buf(a_n), *b = rand_buf(b_n), *c = rand_buf(c_n);
	float *got = malloc((size_t)(m > 0 ? m : 1) * (size_t)(n > 0 ? n : 1) * sizeof(float));
	double *want = dbuf((int64_t)m * n), *mag = dbuf((int64_t)m * n);
	char what[96];

	for (int64_t i = 0; i < c_n; i++)
		c[i] = NAN;
	gemm_f32__ref(m, n, k, a, lda, ta, b, ldb, tb, c, ldc);
	for (int i = 0; i < m; i++) {
		for (int j = 0; j < n; j++) {
			double s = 0, g = 0;

			for (int kk = 0; kk < k; kk++) {
				double t = op_at(a, lda, ta, i, kk) * op_at(b, ldb, !tb, j, kk);

				s += t;
				g += fabs(t);
			}
			want[(int64_t)i * n + j] = s;
			mag[(int64_t)i * n + j] = g;
			got[(int64_t)i * n + j] = c[(int64_t)i * ldc + j];
		}
		for (int j = n; j < ldc; j++)
			cr_assert(isnan(c[(int64_t)i * ldc + j]),
				  "gemm wrote past n into the ldc padding");
	}
	snprintf(what, sizeof what, "gemm m=%d n=%d k=%d ta=%d tb=%d pad=%d", m, n, k, ta, tb, pad);
	expect_sums(what, (int64_t)m * n, got, want, mag);
	free(a);
	free(b);
	free(c);
	free(got);
	free(want);
	free(mag);
}

Test(kernels_f32, gemm_random_shapes_all_transposes)
{
	rng_seed(1);
	for (int t = 0; t < 300; t++) {
		int m = rng_int(1, 40), n = rng_int(1, 40), k = rng_int(1, 60);

		check_gemm(m, n, k, t & 1, t & 2, rng_int(0, 1) ? rng_int(1, 5) : 0);
	}
}

Test(kernels_f32, gemm_block_edges)
{
	/* Across the k-slice (256), row block (128), panel (16) and micro-tile
	 * (4) edges, and the single-row / single-column / few-row paths. */
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 1, 37, 300 }, { 37, 1, 300 }, { 3, 50, 513 }, { 2, 17, 9 },
		{ 130, 33, 257 }, { 129, 16, 256 }, { 5, 3, 600 }, { 4, 4, 4 }, { 7, 65, 33 },
		{ 64, 10, 512 }, { 1, 1, 1000 },
	};

	rng_seed(2);
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 4; t++)
			check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t & 2,
				   t == 3 ? 3 : 0);
}

/* Where the CPU has AVX-512F gemm_f32__ref runs its blocked loop as 8 x 32
 * tiles of 16-float vectors and a single row of A as rows of 256 columns
 * (f32_avx512.c), which must give the portable loops' result bit for bit:
 * random shapes over the tile (8 x 32), panel, row block, k-slice (256) and
 * row-chunk edges, every transpose, row strides, and values
 * that make roundings and signs show (tiny and huge magnitudes, -0, inf,
 * NaN: any NaN stands for any other, as IEEE 754 leaves which one an add of
 * two returns). */
Test(kernels_f32, gemm_vector_loop_equals_the_portable_one_bit_for_bit)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI) || q8_isa_best() != Q8_ISA_AVX512VNNI)
		cr_skip_test("this CPU (or PRESSO_ISA) runs the portable loop only");
	static const float specials[] = {0.0f, -0.0f, 1e-38f, -3e-39f, 1e30f, -7e29f,
					 INFINITY, -INFINITY, NAN, 1.0f, -1.0f, 0.1f};
	rng_seed(11);
	for (int t = 0; t < 400; t++) {
		/* every tenth a single row of A: the row loop (gemm_f32_row__avx512,
		 * in chunks of 256 columns) */
		bool row = t % 10 == 3;
		int m = row ? 1 : t < 40 ? rng_int(1, 9) : rng_int(1, 150);
		int n = row ? rng_int(1, 600) : rng_int(1, 80);
		int k = t % 7 == 0 ? rng_int(250, 700) : rng_int(1, 90);
		bool ta = t & 1, tb = t & 2;
		int pad = t & 4 ? rng_int(1, 9) : 0;
		int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
		int64_t a_n = (int64_t)(ta ? k : m) * lda, b_n = (int64_t)(tb ? n : k) * ldb;
		int64_t c_n = (int64_t)m * ldc;
		float *a = rand_buf(a_n), *b = rand_buf(b_n);
		float *c0 = malloc((size_t)c_n * sizeof(float)), *c1 = malloc((size_t)c_n * sizeof(float));
		cr_assert(c0 && c1);
		if (t % 5 == 0)
			for (int64_t i = 0; i < a_n; i += rng_int(1, 40))
				a[i] = specials[rng_int(0, 11)];
		if (t % 5 == 1)
			for (int64_t i = 0; i < b_n; i += rng_int(1, 40))
				b[i] = specials[rng_int(0, 11)];
		for (int64_t i = 0; i < c_n; i++)
			c0[i] = c1[i] = (float)i;
		gemm_f32__portable(m, n, k, a, lda, ta, b, ldb, tb, c0, ldc);
		gemm_f32__ref(m, n, k, a, lda, ta, b, ldb, tb, c1, ldc);
		/* bit for bit, except which NaN: an add of two NaNs returns one of them
		 * and either loop may hold them in either order */
		for (int64_t i = 0; i < c_n; i++) {
			uint32_t u0, u1;
			memcpy(&u0, &c0[i], 4);
			memcpy(&u1, &c1[i], 4);
			cr_assert(u0 == u1 || (isnan(c0[i]) && isnan(c1[i])),
				  "m=%d n=%d k=%d ta=%d tb=%d pad=%d: C[%lld] is %a, the portable "
				  "loop's %a", m, n, k, ta, tb, pad, (long long)i, c1[i], c0[i]);
		}
		free(a);
		free(b);
		free(c0);
		free(c1);
	}
}

Test(kernels_f32, gemm_k_zero_clears_c)
{
	float c[6] = { 1, 2, 3, 4, 5, 6 };

	gemm_f32__ref(2, 3, 0, NULL, 1, false, NULL, 3, false, c, 3);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(c[i], 0.0f);
}

Test(kernels_f32, gemm_bias_alpha_beta_broadcast_clamp)
{
	rng_seed(3);
	for (int t = 0; t < 200; t++) {
		int m = rng_int(1, 20), n = rng_int(1, 20), k = rng_int(1, 30);
		bool ta = rng_bool(), tb = rng_bool();
		int bias_kind = rng_int(0, 4);
		int bias_m = bias_kind == 2 || bias_kind == 4 ? m : 1;
		int bias_n = bias_kind == 1 || bias_kind == 4 ? n : 1;
		float alpha = rng_bool() ? 1.0f : rng_float() * 2, beta = rng_float() * 2;
		float lo = rng_bool() ? -INFINITY : -0.2f, hi = rng_bool() ? INFINITY : 0.3f;
		float *a = rand_buf((int64_t)m * k), *b = rand_buf((int64_t)k * n);
		float *bias = bias_kind ? rand_buf((int64_t)bias_m * bias_n) : NULL;
		float *y = rand_buf((int64_t)m * n);
		double *want = dbuf((int64_t)m * n), *mag = dbuf((int64_t)m * n);
		char what[96];

		gemm_bias_f32__ref(m, n, k, alpha, a, ta, b, tb, beta, bias, bias_m, bias_n, lo,
				   hi, y);
		for (int i = 0; i < m; i++) {
			for (int j = 0; j < n; j++) {
				double s = 0, g = 0, bv = 0;

				for (int kk = 0; kk < k; kk++) {
					double v = op_at(a, ta ? m : k, ta, i, kk) *
						   op_at(b, tb ? k : n, !tb, j, kk);

					s += v;
					g += fabs(v);
				}
				if (bias)
					bv = (double)beta * bias[(bias_m == 1 ? 0 : i) * bias_n +
								 (bias_n == 1 ? 0 : j)];
				want[i * n + j] = clampd(alpha * s + bv, lo, hi);
				mag[i * n + j] = fabs(alpha) * g + fabs(bv);
			}
		}
		snprintf(what, sizeof what, "gemm_bias m=%d n=%d k=%d bias=%d", m, n, k, bias_kind);
		expect_sums(what, (int64_t)m * n, y, want, mag);
		free(a);
		free(b);
		free(bias);
		free(y);
		free(want);
		free(mag);
	}
}

/* ---- MatMul -------------------------------------------------------------- */

Test(kernels_f32, matmul_broadcast_and_1d_operands)
{
	rng_seed(4);
	for (int t = 0; t < 300; t++) {
		int a_rank = rng_int(1, 4), b_rank = rng_int(1, 4);
		int a_nb = a_rank > 2 ? a_rank - 2 : 0, b_nb = b_rank > 2 ? b_rank - 2 : 0;
		int nb = a_nb > b_nb ? a_nb : b_nb;
		int64_t m = rng_int(1, 9), k = rng_int(1, 12), n = rng_int(1, 9);
		int64_t a_dims[4], b_dims[4], y_dims[6], ab[4], bb[4], yb[4];
		int y_rank = 0;
		float *a, *b, *y;
		double *want, *mag;
		int64_t nbatch, y_mat;
		char what[96];

		/* Batch dims right-aligned: each operand has the output's size or 1. */
		for (int i = 0; i < nb; i++) {
			int64_t d = rng_int(1, 3);
			int ia = i - (nb - a_nb), ib = i - (nb - b_nb);

			ab[i] = ia >= 0 && rng_int(0, 2) ? d : 1;
			bb[i] = ib >= 0 && rng_int(0, 2) ? d : 1;
			yb[i] = ab[i] > bb[i] ? ab[i] : bb[i];
			if (ia >= 0)
				a_dims[ia] = ab[i];
			if (ib >= 0)
				b_dims[ib] = bb[i];
			y_dims[y_rank++] = yb[i];
		}
		if (a_rank == 1) {
			a_dims[0] = k;
			m = 1;
		} else {
			a_dims[a_rank - 2] = m;
			a_dims[a_rank - 1] = k;
			y_dims[y_rank++] = m;
		}
		if (b_rank == 1) {
			b_dims[0] = k;
			n = 1;
		} else {
			b_dims[b_rank - 2] = k;
			b_dims[b_rank - 1] = n;
			y_dims[y_rank++] = n;
		}
		a = rand_buf(prod(a_dims, a_rank));
		b = rand_buf(prod(b_dims, b_rank));
		nbatch = prod(yb, nb);
		y_mat = m * n;
		y = rand_buf(nbatch * y_mat);
		want = dbuf(nbatch * y_mat);
		mag = dbuf(nbatch * y_mat);
		matmul_f32__ref(a_dims, a_rank, a, b_dims, b_rank, b, y_dims, y_rank, y);
		for (int64_t bi = 0; bi < nbatch; bi++) {
			int64_t rem = bi, a_off = 0, b_off = 0, a_st = m * k, b_st = k * n;

			for (int i = nb - 1; i >= 0; i--) {
				int64_t idx = rem % yb[i];

				rem /= yb[i];
				a_off += (ab[i] == 1 ? 0 : idx) * a_st;
				b_off += (bb[i] == 1 ? 0 : idx) * b_st;
				a_st *= ab[i];
				b_st *= bb[i];
			}
			for (int64_t i = 0; i < m; i++) {
				for (int64_t j = 0; j < n; j++) {
					double s = 0, g = 0;

					for (int64_t kk = 0; kk < k; kk++) {
						double v = (double)a[a_off + i * k + kk] *
							   b[b_off + kk * n + j];

						s += v;
						g += fabs(v);
					}
					want[bi * y_mat + i * n + j] = s;
					mag[bi * y_mat + i * n + j] = g;
				}
			}
		}
		snprintf(what, sizeof what, "matmul case %d (a_rank %d, b_rank %d)", t, a_rank,
			 b_rank);
		expect_sums(what, nbatch * y_mat, y, want, mag);
		free(a);
		free(b);
		free(y);
		free(want);
		free(mag);
	}
}

/* ---- Conv ---------------------------------------------------------------- */

/* The direct 7-loop conv at one output position: bias + sum over input
 * channels of the group and kernel taps inside the input; *mag gets the sum
 * of the absolute values of the terms. */
static double naive_conv_at(const struct conv2d_params *p, const float *x, const float *w,
			    const float *bias, int ni, int oc, int oy, int ox, double *mag)
{
	int cin_g = p->c_in / p->group, g = oc / (p->c_out / p->group);
	double s = bias ? bias[oc] : 0.0;

	*mag = fabs(s);
	for (int ic = 0; ic < cin_g; ic++) {
		const float *xc = x + ((int64_t)ni * p->c_in + g * cin_g + ic) * p->h_in * p->w_in;
		const float *wc = w + ((int64_t)oc * cin_g + ic) * p->kh * p->kw;

		for (int ky = 0; ky < p->kh; ky++) {
			for (int kx = 0; kx < p->kw; kx++) {
				int iy = oy * p->stride_h - p->pad_t + ky * p->dil_h;
				int ix = ox * p->stride_w - p->pad_l + kx * p->dil_w;
				double v;

				if (iy < 0 || iy >= p->h_in || ix < 0 || ix >= p->w_in)
					continue;
				v = (double)xc[iy * p->w_in + ix] * wc[ky * p->kw + kx];
				s += v;
				*mag += fabs(v);
			}
		}
	}
	return s;
}

static void check_conv(const struct conv2d_params *p, bool with_bias, const char *label)
{
	int cin_g = p->c_in / p->group;
	int64_t x_n = (int64_t)p->n * p->c_in * p->h_in * p->w_in;
	int64_t w_n = (int64_t)p->c_out * cin_g * p->kh * p->kw;
	int64_t y_n = (int64_t)p->n * p->c_out * p->h_out * p->w_out;
	size_t scratch_bytes = conv2d_f32_scratch_bytes(p);
	float *x = rand_buf(x_n), *w = rand_buf(w_n);
	float *bias = with_bias ? rand_buf(p->c_out) : NULL, *y = rand_buf(y_n);
	float *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
	double *want = dbuf(y_n), *mag = dbuf(y_n);
	int64_t o = 0;
	char what[200];

	cr_assert(scratch_bytes == 0 || scratch);
	conv2d_f32__ref(p, x, w, bias, y, scratch);
	for (int ni = 0; ni < p->n; ni++)
		for (int oc = 0; oc < p->c_out; oc++)
			for (int oy = 0; oy < p->h_out; oy++)
				for (int ox = 0; ox < p->w_out; ox++, o++) {
					double s = naive_conv_at(p, x, w, bias, ni, oc, oy, ox,
								 &mag[o]);

					want[o] = clampd(s, p->act_min, p->act_max);
				}
	snprintf(what, sizeof what,
		 "%s conv n=%d c %d->%d g=%d in %dx%d out %dx%d k %dx%d s %d,%d p %d,%d d %d,%d",
		 label, p->n, p->c_in, p->c_out, p->group, p->h_in, p->w_in, p->h_out, p->w_out,
		 p->kh, p->kw, p->stride_h, p->stride_w, p->pad_t, p->pad_l, p->dil_h, p->dil_w);
	expect_sums(what, y_n, y, want, mag);
	free(x);
	free(w);
	free(bias);
	free(y);
	free(scratch);
	free(want);
	free(mag);
}

/* Output size of one spatial axis with explicit end padding (floor mode). */
static int out_size(int in, int k, int s, int d, int pad_begin, int pad_end)
{
	int span = d * (k - 1) + 1;

	return (in + pad_begin + pad_end - span) / s + 1;
}

/* Fills the spatial part of p at random: input, kernel, stride, dilation,
 * padding (end padding random too, implied by h_out/w_out). */
static void rand_spatial(struct conv2d_params *p)
{
	do {
		int pb, pr;

		/* Tiny inputs often, so whole rows or columns fall in the padding. */
		p->h_in = rng_bool() ? rng_int(1, 3) : rng_int(1, 13);
		p->w_in = rng_bool() ? rng_int(1, 3) : rng_int(1, 13);
		p->kh = rng_int(1, 5);
		p->kw = rng_int(1, 5);
		p->stride_h = rng_int(1, 3);
		p->stride_w = rng_int(1, 3);
		p->dil_h = rng_int(1, 2);
		p->dil_w = rng_int(1, 2);
		p->pad_t = rng_int(0, 3);
		p->pad_l = rng_int(0, 3);
		pb = rng_int(0, 3);
		pr = rng_int(0, 3);
		p->h_out = out_size(p->h_in, p->kh, p->stride_h, p->dil_h, p->pad_t, pb);
		p->w_out = out_size(p->w_in, p->kw, p->stride_w, p->dil_w, p->pad_l, pr);
	} while (p->h_out < 1 || p->w_out < 1);
}

static void rand_clamp(struct conv2d_params *p)
{
	switch (rng_int(0, 2)) {
	case 0:
		p->act_min = -INFINITY;
		p->act_max = INFINITY;
		break;
	case 1:
		p->act_min = 0.0f;
		p->act_max = INFINITY;
		break;
	default:
		p->act_min = -0.5f;
		p->act_max = 0.5f;
		break;
	}
}

Test(kernels_f32, conv_random_grouped)
{
	rng_seed(5);
	for (int t = 0; t < 300; t++) {
		struct conv2d_params p = { 0 };

		p.n = rng_int(1, 2);
		p.group = rng_int(1, 3);
		p.c_in = p.group * rng_int(1, 4);
		p.c_out = p.group * rng_int(1, 5);
		rand_spatial(&p);
		rand_clamp(&p);
		check_conv(&p, rng_bool(), "random");
	}
}

Test(kernels_f32, conv_depthwise)
{
	rng_seed(6);
	for (int t = 0; t < 200; t++) {
		struct conv2d_params p = { 0 };

		p.n = rng_int(1, 2);
		p.group = p.c_in = p.c_out = rng_int(1, 6);
		rand_spatial(&p);
		rand_clamp(&p);
		cr_assert_eq(conv2d_f32_scratch_bytes(&p), 0, "depthwise needs no im2col");
		check_conv(&p, rng_bool(), "depthwise");
	}
}

Test(kernels_f32, conv_pointwise_and_1x1_strided)
{
	rng_seed(7);
	for (int t = 0; t < 100; t++) {
		struct conv2d_params p = { 0 };
		bool plain = t % 2 == 0;

		p.n = rng_int(1, 3);
		p.group = rng_int(1, 2);
		p.c_in = p.group * rng_int(1, 9);
		p.c_out = p.group * rng_int(1, 9);
		p.h_in = rng_int(1, 12);
		p.w_in = rng_int(1, 12);
		p.kh = p.kw = 1;
		p.dil_h = p.dil_w = rng_int(1, 2);
		p.stride_h = plain ? 1 : rng_int(1, 3);
		p.stride_w = plain ? 1 : rng_int(1, 3);
		p.pad_t = plain ? 0 : rng_int(0, 1);
		p.pad_l = plain ? 0 : rng_int(0, 1);
		p.h_out = out_size(p.h_in, 1, p.stride_h, 1, p.pad_t, p.pad_t);
		p.w_out = out_size(p.w_in, 1, p.stride_w, 1, p.pad_l, p.pad_l);
		rand_clamp(&p);
		if (plain)
			cr_assert_eq(conv2d_f32_scratch_bytes(&p), 0, "1x1 needs no im2col");
		check_conv(&p, rng_bool(), plain ? "pointwise" : "1x1 strided");
	}
}

Test(kernels_f32, conv_large_im2col_in_bands)
{
	/* K * w_out large enough that the im2col is split into bands of rows. */
	struct conv2d_params p = {
		.n = 1, .c_in = 64, .h_in = 20, .w_in = 64, .c_out = 6, .h_out = 20, .w_out = 64,
		.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_t = 1, .pad_l = 1,
		.dil_h = 1, .dil_w = 1, .group = 1, .act_min = -INFINITY, .act_max = INFINITY,
	};

	rng_seed(8);
	cr_assert_lt(conv2d_f32_scratch_bytes(&p), (size_t)64 * 9 * 20 * 64 * sizeof(float));
	check_conv(&p, true, "banded");
	/* And a typical first layer: 1 -> 8 channels, 5x5, MNIST-sized. */
	p = (struct conv2d_params){
		.n = 2, .c_in = 1, .h_in = 28, .w_in = 28, .c_out = 8, .h_out = 28, .w_out = 28,
		.kh = 5, .kw = 5, .stride_h = 1, .stride_w = 1, .pad_t = 2, .pad_l = 2,
		.dil_h = 1, .dil_w = 1, .group = 1, .act_min = 0.0f, .act_max = 6.0f,
	};
	check_conv(&p, true, "mnist");
}

/* ---- Pooling ------------------------------------------------------------- */

/* Random pooling geometry; h_out/w_out sometimes one more than floor mode
 * gives (ceil mode), so the last window may reach past pad_b/pad_r. */
static void rand_pool(struct pool2d_params *p)
{
	do {
		p->n = rng_int(1, 2);
		p->c = rng_int(1, 3);
		p->h_in = rng_int(1, 11);
		p->w_in = rng_int(1, 11);
		p->kh = rng_int(1, 4);
		p->kw = rng_int(1, 4);
		p->stride_h = rng_int(1, 3);
		p->stride_w = rng_int(1, 3);
		p->dil_h = rng_int(1, 2);
		p->dil_w = rng_int(1, 2);
		p->pad_t = rng_int(0, p->kh - 1);
		p->pad_l = rng_int(0, p->kw - 1);
		p->pad_b = rng_int(0, p->kh - 1);
		p->pad_r = rng_int(0, p->kw - 1);
		p->h_out = out_size(p->h_in, p->kh, p->stride_h, p->dil_h, p->pad_t, p->pad_b);
		p->w_out = out_size(p->w_in, p->kw, p->stride_w, p->dil_w, p->pad_l, p->pad_r);
		/* Ceil mode: one more window if it starts inside input + pad_t. */
		if (rng_bool() && p->h_out * p->stride_h < p->h_in + p->pad_t)
			p->h_out++;
		if (rng_bool() && p->w_out * p->stride_w < p->w_in + p->pad_l)
			p->w_out++;
	} while (p->h_out < 1 || p->w_out < 1);
}

/* What the naive pool sees in one window of one plane xc: the max and sum
 * over taps inside the input, the sum of their |values|, and the number of
 * taps inside the input and inside the padded input [-pad, in + pad_end). */
struct window {
	float max;
	double sum, mag;
	int n_in, n_pad;
};

static struct window naive_window(const struct pool2d_params *p, const float *xc, int oy,
				  int ox)
{
	struct window win = { .max = -INFINITY };

	for (int ky = 0; ky < p->kh; ky++) {
		for (int kx = 0; kx < p->kw; kx++) {
			int iy = oy * p->stride_h - p->pad_t + ky * p->dil_h;
			int ix = ox * p->stride_w - p->pad_l + kx * p->dil_w;
			float v;

			if (iy >= -p->pad_t && iy < p->h_in + p->pad_b && ix >= -p->pad_l &&
			    ix < p->w_in + p->pad_r)
				win.n_pad++;
			if (iy < 0 || iy >= p->h_in || ix < 0 || ix >= p->w_in)
				continue;
			v = xc[iy * p->w_in + ix];
			win.max = v > win.max ? v : win.max;
			win.sum += v;
			win.mag += fabs(v);
			win.n_in++;
		}
	}
	return win;
}

Test(kernels_f32, maxpool_random)
{
	rng_seed(9);
	for (int t = 0; t < 300; t++) {
		struct pool2d_params p = { 0 };
		int64_t y_n, x_n, o = 0;
		float *x, *y, *want;
		char what[96];

		rand_pool(&p);
		x_n = (int64_t)p.n * p.c * p.h_in * p.w_in;
		y_n = (int64_t)p.n * p.c * p.h_out * p.w_out;
		x = rand_buf(x_n);
		y = rand_buf(y_n);
		want = rand_buf(y_n);
		maxpool2d_f32__ref(&p, x, y);
		for (int nc = 0; nc < p.n * p.c; nc++) {
			const float *xc = x + (int64_t)nc * p.h_in * p.w_in;

			for (int oy = 0; oy < p.h_out; oy++)
				for (int ox = 0; ox < p.w_out; ox++, o++)
					want[o] = naive_window(&p, xc, oy, ox).max;
		}
		snprintf(what, sizeof what, "maxpool case %d", t);
		expect_exact(what, y_n, y, want);
		free(x);
		free(y);
		free(want);
	}
}

Test(kernels_f32, maxpool_nan_propagates)
{
	struct pool2d_params p = {
		.n = 1, .c = 1, .h_in = 2, .w_in = 4, .h_out = 1, .w_out = 2, .kh = 2, .kw = 2,
		.stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1,
	};
	const float x[8] = { NAN, 1, 2, 3, 4, 5, 6, NAN };
	float y[2];

	maxpool2d_f32__ref(&p, x, y);
	cr_assert(isnan(y[0]) && isnan(y[1]), "NaN in a window gives NaN, as numpy max");
}

Test(kernels_f32, avgpool_random_count_include_pad_both_ways)
{
	rng_seed(10);
	for (int t = 0; t < 400; t++) {
		struct pool2d_params p = { 0 };
		int64_t y_n, x_n, o = 0;
		float *x, *y;
		double *want, *mag;
		char what[96];

		rand_pool(&p);
		p.count_include_pad = t % 2;
		x_n = (int64_t)p.n * p.c * p.h_in * p.w_in;
		y_n = (int64_t)p.n * p.c * p.h_out * p.w_out;
		x = rand_buf(x_n);
		y = rand_buf(y_n);
		want = dbuf(y_n);
		mag = dbuf(y_n);
		avgpool2d_f32__ref(&p, x, y);
		for (int nc = 0; nc < p.n * p.c; nc++) {
			for (int oy = 0; oy < p.h_out; oy++) {
				for (int ox = 0; ox < p.w_out; ox++, o++) {
					struct window win = naive_window(
						&p, x + (int64_t)nc * p.h_in * p.w_in, oy, ox);
					int cnt = p.count_include_pad ? win.n_pad : win.n_in;

					want[o] = cnt ? win.sum / cnt : 0.0;
					mag[o] = cnt ? win.mag / cnt : 0.0;
				}
			}
		}
		snprintf(what, sizeof what, "avgpool case %d include_pad=%d", t,
			 p.count_include_pad);
		expect_sums(what, y_n, y, want, mag);
		free(x);
		free(y);
		free(want);
		free(mag);
	}
}

Test(kernels_f32, avgpool_ceil_window_past_pad_end)
{
	/* 1x5 input, k=3, s=2, pad 1/1, ceil mode: windows start at -1, 1, 3 (the
	 * last covers input 3, 4 and pad_r cell 5, nothing beyond). */
	struct pool2d_params p = {
		.n = 1, .c = 1, .h_in = 1, .w_in = 5, .h_out = 1, .w_out = 3, .kh = 1, .kw = 3,
		.stride_h = 1, .stride_w = 2, .pad_l = 1, .pad_r = 1, .dil_h = 1, .dil_w = 1,
	};
	const float x[5] = { 1, 2, 3, 4, 5 };
	float y[3];

	p.count_include_pad = true;
	avgpool2d_f32__ref(&p, x, y);
	cr_assert_float_eq(y[0], 3.0f / 3, 1e-6);
	cr_assert_float_eq(y[1], 9.0f / 3, 1e-6);
	cr_assert_float_eq(y[2], 9.0f / 3, 1e-6);
	/* With pad_r = 0 the last window's third cell is beyond the padding. */
	p.pad_r = 0;
	avgpool2d_f32__ref(&p, x, y);
	cr_assert_float_eq(y[2], 9.0f / 2, 1e-6);
	p.count_include_pad = false;
	avgpool2d_f32__ref(&p, x, y);
	cr_assert_float_eq(y[0], 3.0f / 2, 1e-6);
	cr_assert_float_eq(y[2], 9.0f / 2, 1e-6);
}

Test(kernels_f32, global_avgpool)
{
	rng_seed(11);
	for (int t = 0; t < 50; t++) {
		int n = rng_int(1, 3), c = rng_int(1, 7), hw = rng_int(1, 300);
		float *x = rand_buf((int64_t)n * c * hw), *y = rand_buf(n * c);
		double *want = dbuf(n * c), *mag = dbuf(n * c);

		global_avgpool_f32__ref(n, c, hw, x, y);
		for (int i = 0; i < n * c; i++) {
			for (int j = 0; j < hw; j++) {
				want[i] += x[(int64_t)i * hw + j];
				mag[i] += fabs(x[(int64_t)i * hw + j]);
			}
			want[i] /= hw;
			mag[i] /= hw;
		}
		expect_sums("global_avgpool", n * c, y, want, mag);
		free(x);
		free(y);
		free(want);
		free(mag);
	}
}

/* ---- Elementwise --------------------------------------------------------- */

Test(kernels_f32, clip)
{
	float x[37], y[37], want[37];

	rng_seed(12);
	for (int i = 0; i < 37; i++) {
		x[i] = rng_float() * 10;
		want[i] = x[i] < 0 ? 0 : x[i] > 6 ? 6 : x[i];
	}
	x[5] = NAN;
	want[5] = NAN;
	clip_f32__ref(37, x, 0.0f, 6.0f, y);
	cr_assert(isnan(y[5]), "NaN passes through clip");
	y[5] = want[5] = 0;
	expect_exact("clip", 37, y, want);
}

Test(kernels_f32, batchnorm)
{
	rng_seed(13);
	for (int t = 0; t < 30; t++) {
		int n = rng_int(1, 3), c = rng_int(1, 6);
		int64_t inner = rng_int(1, 50), count = n * c * inner;
		float *x = rand_buf(count), *y = rand_buf(count), *scale = rand_buf(c);
		float *bias = rand_buf(c), *mean = rand_buf(c), *var = rand_buf(c);
		double *want = dbuf(count), *mag = dbuf(count);
		float eps = 1e-5f;

		for (int ch = 0; ch < c; ch++)
			var[ch] = fabsf(var[ch]) + 0.1f;
		batchnorm_f32__ref(n, c, inner, x, scale, bias, mean, var, eps, y);
		for (int64_t i = 0; i < count; i++) {
			int ch = (int)(i / inner % c);
			double s = scale[ch] / sqrt((double)var[ch] + eps);

			want[i] = (x[i] - (double)mean[ch]) * s + bias[ch];
			mag[i] = fabs(x[i] * s) + fabs(mean[ch] * s) + fabs(bias[ch]);
		}
		expect_sums("batchnorm", count, y, want, mag);
		free(x);
		free(y);
		free(scale);
		free(bias);
		free(mean);
		free(var);
		free(want);
		free(mag);
	}
}

/* y[i] = a[..] + b[..] with numpy broadcasting, by multi-index. */
static void naive_add(const int64_t *a_dims, const float *a, const int64_t *b_dims,
		      const float *b, const int64_t *y_dims, int rank, float *y)
{
	int64_t count = prod(y_dims, rank);

	for (int64_t i = 0; i < count; i++) {
		int64_t rem = i, a_off = 0, b_off = 0, a_st = 1, b_st = 1;

		for (int d = rank - 1; d >= 0; d--) {
			int64_t idx = rem % y_dims[d];

			rem /= y_dims[d];
			a_off += (a_dims[d] == 1 ? 0 : idx) * a_st;
			b_off += (b_dims[d] == 1 ? 0 : idx) * b_st;
			a_st *= a_dims[d];
			b_st *= b_dims[d];
		}
		y[i] = a[a_off] + b[b_off];
	}
}

static void check_add(const int64_t *a_dims, const int64_t *b_dims, const int64_t *y_dims,
		      int rank, const char *what)
{
	int64_t y_n = prod(y_dims, rank);
	float *a = rand_buf(prod(a_dims, rank)), *b = rand_buf(prod(b_dims, rank));
	float *y = rand_buf(y_n), *want = rand_buf(y_n);

	add_f32__ref(a_dims, a, b_dims, b, y_dims, rank, y);
	naive_add(a_dims, a, b_dims, b, y_dims, rank, want);
	expect_exact(what, y_n, y, want);
	free(a);
	free(b);
	free(y);
	free(want);
}

Test(kernels_f32, add_broadcast_random)
{
	rng_seed(14);
	for (int t = 0; t < 400; t++) {
		int rank = rng_int(0, 5);
		int64_t a_dims[MAX_RANK], b_dims[MAX_RANK], y_dims[MAX_RANK];
		int mode = rng_int(0, 3);
		char what[64];

		for (int d = 0; d < rank; d++) {
			y_dims[d] = rng_int(1, 5);
			/* mode 0: same shapes; 1: b scalar; 2/3: random masks. */
			a_dims[d] = mode <= 1 || rng_int(0, 2) ? y_dims[d] : 1;
			if (mode == 0)
				b_dims[d] = y_dims[d];
			else
				b_dims[d] = mode == 1 || !rng_int(0, 2) ? 1 : y_dims[d];
			if (a_dims[d] == 1 && b_dims[d] == 1)
				y_dims[d] = 1;
		}
		snprintf(what, sizeof what, "add case %d rank %d mode %d", t, rank, mode);
		check_add(a_dims, b_dims, y_dims, rank, what);
	}
}

Test(kernels_f32, add_common_shapes)
{
	const int64_t y4[4] = { 2, 7, 9, 11 }, ch[4] = { 1, 7, 1, 1 }, one[4] = { 1, 1, 1, 1 };
	const int64_t row[4] = { 1, 1, 1, 11 }, nb[4] = { 2, 1, 9, 11 }, col[4] = { 2, 7, 9, 1 };

	rng_seed(15);
	check_add(y4, y4, y4, 4, "same shape");
	check_add(y4, ch, y4, 4, "per-channel b");
	check_add(ch, y4, y4, 4, "per-channel a");
	check_add(y4, one, y4, 4, "scalar b");
	check_add(one, y4, y4, 4, "scalar a");
	check_add(y4, row, y4, 4, "row b");
	check_add(nb, col, y4, 4, "both broadcast");
	check_add(one, one, one, 4, "all ones");
	check_add(y4 + 3, y4 + 3, y4 + 3, 1, "rank 1");
}

Test(kernels_f32, concat_random)
{
	rng_seed(16);
	for (int t = 0; t < 100; t++) {
		int n_in = rng_int(1, 4);
		int64_t outer = rng_int(1, 5), inner = rng_int(1, 6), dims[4], total = 0;
		const float *xs[4];
		float *bufs[4], *y, *want, *w;

		for (int i = 0; i < n_in; i++) {
			dims[i] = rng_int(0, 4);
			total += dims[i];
			bufs[i] = rand_buf(outer * dims[i] * inner);
			xs[i] = bufs[i];
		}
		y = rand_buf(outer * total * inner);
		want = rand_buf(outer * total * inner);
		concat_f32__ref(n_in, xs, dims, outer, inner, y);
		w = want;
		for (int64_t o = 0; o < outer; o++)
			for (int i = 0; i < n_in; i++)
				for (int64_t j = 0; j < dims[i] * inner; j++)
					*w++ = xs[i][o * dims[i] * inner + j];
		expect_exact("concat", outer * total * inner, y, want);
		for (int i = 0; i < n_in; i++)
			free(bufs[i]);
		free(y);
		free(want);
	}
}

/* ---- Softmax ------------------------------------------------------------- */

static void check_softmax(int64_t outer, int64_t dim, int64_t inner, float spread, bool log_out)
{
	int64_t count = outer * dim * inner;
	float *x = rand_buf(count), *y = rand_buf(count);

	/* Large values: a naive exp() would overflow to inf. */
	for (int64_t i = 0; i < count; i++)
		x[i] = x[i] * spread + (spread > 10 ? 500.0f : 0.0f);
	if (log_out)
		logsoftmax_f32__ref(outer, dim, inner, x, y);
	else
		softmax_f32__ref(outer, dim, inner, x, y);
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			double mx = -INFINITY, sum = 0, psum = 0;

			for (int64_t d = 0; d < dim; d++)
				mx = fmax(mx, x[(o * dim + d) * inner + i]);
			for (int64_t d = 0; d < dim; d++)
				sum += exp(x[(o * dim + d) * inner + i] - mx);
			for (int64_t d = 0; d < dim; d++) {
				int64_t at = (o * dim + d) * inner + i;
				double xv = x[at] - mx;
				double want = log_out ? xv - log(sum) : exp(xv) / sum;
				double tol = TOL_SOFTMAX_REL * (fabs(want) + (log_out ? 1 : 0)) +
					     TOL_SOFTMAX_ABS;

				cr_assert(isfinite(y[at]), "softmax produced %g", (double)y[at]);
				if (!(fabs(y[at] - want) <= tol))
					cr_assert_fail("%ssoftmax [%lld,%lld,%lld] at %lld: "
						       "got %.9g want %.9g",
						       log_out ? "log" : "", (long long)outer,
						       (long long)dim, (long long)inner,
						       (long long)at, (double)y[at], want);
				psum += log_out ? exp(y[at]) : y[at];
			}
			cr_assert(fabs(psum - 1) < 1e-4, "probabilities sum to %g", psum);
		}
	}
	free(x);
	free(y);
}

Test(kernels_f32, softmax_and_logsoftmax)
{
	rng_seed(17);
	for (int t = 0; t < 120; t++) {
		int64_t outer = rng_int(1, 4), dim = rng_int(1, 40), inner = rng_int(1, 5);
		float spread = t % 3 == 0 ? 100.0f : t % 3 == 1 ? 1.0f : 20.0f;

		if (t % 10 == 0)
			inner = 300; /* more than one chunk of the strided path */
		check_softmax(outer, dim, inner, spread, t & 1);
	}
	check_softmax(2, 300, 1, 50.0f, false);
	check_softmax(2, 300, 1, 50.0f, true);
}

/* ---- Transpose ----------------------------------------------------------- */

static void check_transpose(int rank, const int64_t *x_dims, const int64_t *perm)
{
	int64_t count = prod(x_dims, rank), y_dims[MAX_RANK], xs[MAX_RANK];
	float *x = rand_buf(count), *y = rand_buf(count), *want = rand_buf(count);
	char what[128];
	int len;

	for (int i = rank - 1, s = 1; i >= 0; s *= (int)x_dims[i], i--)
		xs[i] = s;
	for (int i = 0; i < rank; i++)
		y_dims[i] = x_dims[perm[i]];
	transpose_f32__ref(rank, x_dims, perm, x, y);
	for (int64_t i = 0; i < count; i++) {
		int64_t rem = i, off = 0;

		for (int d = rank - 1; d >= 0; d--) {
			off += rem % y_dims[d] * xs[perm[d]];
			rem /= y_dims[d];
		}
		want[i] = x[off];
	}
	len = snprintf(what, sizeof what, "transpose dims");
	for (int i = 0; i < rank; i++)
		len += snprintf(what + len, sizeof what - (size_t)len, " %lld",
				(long long)x_dims[i]);
	len += snprintf(what + len, sizeof what - (size_t)len, " perm");
	for (int i = 0; i < rank; i++)
		len += snprintf(what + len, sizeof what - (size_t)len, " %lld", (long long)perm[i]);
	expect_exact(what, count, y, want);
	free(x);
	free(y);
	free(want);
}

Test(kernels_f32, transpose_random_perms)
{
	rng_seed(18);
	for (int t = 0; t < 400; t++) {
		int rank = rng_int(2, 5);
		int64_t dims[MAX_RANK], perm[MAX_RANK];

		for (int i = 0; i < rank; i++) {
			dims[i] = rng_int(1, 6);
			perm[i] = i;
		}
		for (int i = rank - 1; i > 0; i--) {
			int j = rng_int(0, i);
			int64_t tmp = perm[i];

			perm[i] = perm[j];
			perm[j] = tmp;
		}
		check_transpose(rank, dims, perm);
	}
}

Test(kernels_f32, transpose_tiled_and_identity)
{
	const int64_t d2[2] = { 37, 53 }, p2[2] = { 1, 0 };
	const int64_t d3[3] = { 3, 33, 20 }, p3[3] = { 0, 2, 1 };
	const int64_t d4[4] = { 2, 3, 17, 19 }, p4[4] = { 0, 2, 3, 1 }, id4[4] = { 0, 1, 2, 3 };
	const int64_t d1[3] = { 1, 1, 1 }, p1[3] = { 2, 0, 1 };

	rng_seed(19);
	check_transpose(2, d2, p2);
	check_transpose(3, d3, p3);
	check_transpose(4, d4, p4);
	check_transpose(4, d4, id4);
	check_transpose(3, d1, p1);
}

/* ---- element-wise ops, Pad, ReduceMean, LayerNormalization ----------------------- */

/* Every binary op, broadcast every which way, equals binary_f32_scalar() at
 * each element by multi-index, bit for bit (the INT8 engine's tables rely on
 * the scalar function being what the kernel computes); y == a in place too. */
Test(kernels_f32, binary_ops_broadcast_equal_the_scalar_function)
{
	rng_seed(21);
	for (int f = 0; f < F32_BINARY_COUNT; f++)
		for (int t = 0; t < 150; t++) {
			int rank = rng_int(0, 5);
			int64_t a_dims[MAX_RANK], b_dims[MAX_RANK], y_dims[MAX_RANK];
			for (int d = 0; d < rank; d++) {
				y_dims[d] = rng_int(1, 5);
				a_dims[d] = rng_int(0, 2) ? y_dims[d] : 1;
				b_dims[d] = rng_int(0, 2) ? y_dims[d] : 1;
				if (a_dims[d] == 1 && b_dims[d] == 1)
					y_dims[d] = 1;
			}
			int64_t y_n = prod(y_dims, rank), a_n = prod(a_dims, rank), b_n = prod(b_dims, rank);
			float *a = rand_buf(a_n), *b = rand_buf(b_n), *y = rand_buf(y_n), *want = rand_buf(y_n);
			if (f == F32_POW) /* positive bases, a few integer exponents */
				for (int64_t i = 0; i < a_n; i++)
					a[i] = fabsf(a[i]) * 3.0f + 0.01f;
			if (f == F32_POW && t % 3 == 0)
				for (int64_t i = 0; i < b_n; i++)
					b[i] = 2.0f;
			for (int64_t i = 0; i < y_n; i++) {
				int64_t rem = i, a_off = 0, b_off = 0, a_st = 1, b_st = 1;
				for (int d = rank - 1; d >= 0; d--) {
					int64_t idx = rem % y_dims[d];
					rem /= y_dims[d];
					a_off += (a_dims[d] == 1 ? 0 : idx) * a_st;
					b_off += (b_dims[d] == 1 ? 0 : idx) * b_st;
					a_st *= a_dims[d];
					b_st *= b_dims[d];
				}
				want[i] = binary_f32_scalar((enum f32_binary)f, a[a_off], b[b_off]);
			}
			binary_f32__ref((enum f32_binary)f, a_dims, a, b_dims, b, y_dims, rank, y);
			char what[64];
			snprintf(what, sizeof what, "binary op %d case %d", f, t);
			expect_exact(what, y_n, y, want);
			if (a_n == y_n) {
				binary_f32__ref((enum f32_binary)f, a_dims, a, b_dims, b, y_dims, rank, a);
				expect_exact("in place", y_n, a, want);
			}
			if (f == F32_POW && t % 3 == 0)
				for (int64_t i = 0; i < y_n; i++)
					cr_assert_eq(y[i], want[i]);
			free(a);
			free(b);
			free(y);
			free(want);
		}
	/* x^2 is x * x exactly */
	float x = 1.1f;
	cr_assert_eq(binary_f32_scalar(F32_POW, x, 2.0f), x * x);
}

/* Every unary op equals unary_f32_scalar() element by element, in place too;
 * spot values from the definitions. */
Test(kernels_f32, unary_ops_equal_the_scalar_function)
{
	rng_seed(22);
	int64_t n = 5003;
	float *x = rand_buf(n), *y = rand_buf(n), *want = rand_buf(n);
	for (int64_t i = 0; i < n; i++)
		x[i] *= 12.0f; /* past the saturation of every function */
	x[0] = 0.0f;
	x[1] = -0.0f;
	x[2] = 3.0f;
	x[3] = -3.0f;
	for (int f = 0; f < F32_UNARY_COUNT; f++) {
		float alpha = 0.2f + 0.01f * (float)f, beta = 0.5f;
		for (int64_t i = 0; i < n; i++)
			want[i] = unary_f32_scalar((enum f32_unary)f, x[i], alpha, beta);
		unary_f32__ref((enum f32_unary)f, n, x, alpha, beta, y);
		char what[32];
		snprintf(what, sizeof what, "unary op %d", f);
		expect_exact(what, n, y, want);
		memcpy(y, x, sizeof(float) * (size_t)n);
		unary_f32__ref((enum f32_unary)f, n, y, alpha, beta, y);
		expect_exact("in place", n, y, want);
	}
	cr_assert_eq(unary_f32_scalar(F32_HARDSWISH, 3.0f, 0, 0), 3.0f);
	cr_assert_eq(unary_f32_scalar(F32_HARDSWISH, -3.0f, 0, 0), 0.0f);
	cr_assert_eq(unary_f32_scalar(F32_HARDSIGMOID, 10.0f, 0.2f, 0.5f), 1.0f);
	cr_assert_eq(unary_f32_scalar(F32_SIGMOID, 0.0f, 0, 0), 0.5f);
	cr_assert_eq(unary_f32_scalar(F32_SIGMOID, -200.0f, 0, 0), 0.0f, "no overflow");
	cr_assert_eq(unary_f32_scalar(F32_LEAKYRELU, -2.0f, 0.25f, 0), -0.5f);
	cr_assert_eq(unary_f32_scalar(F32_RECIPROCAL, 4.0f, 0, 0), 0.25f);
	free(x);
	free(y);
	free(want);
}

/* Pad against a naive multi-index, ReduceMean and LayerNormalization against
 * double sums, on random shapes. */
Test(kernels_f32, pad_reduce_mean_layernorm_random)
{
	rng_seed(23);
	for (int t = 0; t < 200; t++) {
		int rank = rng_int(1, 4);
		int64_t xd[MAX_RANK], pads[2 * MAX_RANK], yd[MAX_RANK];
		bool red[MAX_RANK];
		for (int d = 0; d < rank; d++) {
			xd[d] = rng_int(1, 6);
			pads[d] = rng_int(0, 2);
			pads[rank + d] = rng_int(0, 2);
			yd[d] = xd[d] + pads[d] + pads[rank + d];
			red[d] = rng_bool();
		}
		int64_t xn = prod(xd, rank), yn = prod(yd, rank);
		float *x = rand_buf(xn), *y = rand_buf(yn);
		pad_f32__ref(rank, xd, pads, -9.0f, x, y);
		for (int64_t i = 0; i < yn; i++) {
			int64_t rem = i, off = 0, st = 1;
			bool in = true;
			for (int d = rank - 1; d >= 0; d--) {
				int64_t idx = rem % yd[d] - pads[d];
				rem /= yd[d];
				in = in && idx >= 0 && idx < xd[d];
				off += idx * st;
				st *= xd[d];
			}
			cr_assert_eq(y[i], in ? x[off] : -9.0f, "pad case %d element %lld", t, (long long)i);
		}
		/* ReduceMean: y over the kept dimensions */
		int64_t kd[MAX_RANK], count = 1;
		for (int d = 0; d < rank; d++) {
			kd[d] = red[d] ? 1 : xd[d];
			count *= red[d] ? xd[d] : 1;
		}
		int64_t kn = prod(kd, rank);
		float *m = rand_buf(kn);
		double *want = dbuf(kn);
		reduce_mean_f32__ref(rank, xd, red, x, m);
		for (int64_t i = 0; i < xn; i++) {
			int64_t rem = i, off = 0, st = 1;
			for (int d = rank - 1; d >= 0; d--) {
				int64_t idx = rem % xd[d];
				rem /= xd[d];
				off += (red[d] ? 0 : idx) * st;
				st *= kd[d];
			}
			want[off] += x[i] / (double)count;
		}
		for (int64_t i = 0; i < kn; i++)
			cr_assert_float_eq(m[i], want[i], 1e-6, "reduce case %d element %lld", t,
					   (long long)i);
		/* LayerNormalization over the last dimensions from a random axis */
		int axis = rng_int(0, rank - 1);
		int64_t outer = prod(xd, axis), inner = xn / outer;
		float *scale = rand_buf(inner), *bias = rand_buf(inner), *l = rand_buf(xn);
		layernorm_f32__ref(outer, inner, x, scale, inner, bias, inner, 1e-3f, l);
		for (int64_t o = 0; o < outer; o++) {
			double s = 0, q = 0;
			for (int64_t i = 0; i < inner; i++)
				s += x[o * inner + i];
			s /= (double)inner;
			for (int64_t i = 0; i < inner; i++)
				q += (x[o * inner + i] - s) * (x[o * inner + i] - s);
			q /= (double)inner;
			for (int64_t i = 0; i < inner; i++) {
				double w = (x[o * inner + i] - s) / sqrt(q + 1e-3) * scale[i] + bias[i];
				cr_assert_float_eq(l[o * inner + i], w, 1e-4 * (1 + fabs(w)),
						   "layernorm case %d", t);
			}
		}
		free(x);
		free(y);
		free(m);
		free(want);
		free(scale);
		free(bias);
		free(l);
	}
}

/* Nearest resize: the backward is the forward's adjoint, <R x, dy> = <x, R^T dy>,
 * and every output element is an input element (here the inputs are their own
 * indices, so the forward's picks are checked against the maps too). */
Test(kernels_f32, resize_nearest_backward_is_the_adjoint)
{
	const int64_t x_dims[4] = {2, 3, 5, 7}, y_dims[4] = {2, 3, 8, 4};
	int64_t maps[2 + 3 + 8 + 4];
	resize_nearest_map(RESIZE_ASYMMETRIC, RESIZE_FLOOR, 2, 2, 1.0f, maps);
	resize_nearest_map(RESIZE_ASYMMETRIC, RESIZE_FLOOR, 3, 3, 1.0f, maps + 2);
	resize_nearest_map(RESIZE_HALF_PIXEL, RESIZE_ROUND_PREFER_FLOOR, 5, 8, 1.6f, maps + 5);
	resize_nearest_map(RESIZE_ALIGN_CORNERS, RESIZE_CEIL, 7, 4, 4.0f / 7.0f, maps + 13);
	enum { NX = 2 * 3 * 5 * 7, NY = 2 * 3 * 8 * 4 };
	float x[NX], y[NY], dy[NY], dx[NX] = {0};
	for (int i = 0; i < NX; i++)
		x[i] = (float)i;
	resize_nearest__ref(4, x_dims, y_dims, maps, sizeof(float), x, y);
	for (int64_t n = 0, j = 0; n < 2; n++)
		for (int64_t c = 0; c < 3; c++)
			for (int64_t h = 0; h < 8; h++)
				for (int64_t w = 0; w < 4; w++, j++) {
					int64_t src = ((n * 3 + c) * 5 + maps[5 + h]) * 7 + maps[13 + w];
					cr_assert_eq(y[j], (float)src, "y[%lld]", (long long)j);
				}
	uint32_t s = 5;
	for (int i = 0; i < NY; i++) {
		s = s * 1664525u + 1013904223u;
		dy[i] = (float)(s >> 9) / 8388608.0f - 0.5f;
	}
	for (int i = 0; i < NX; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = (float)(s >> 9) / 8388608.0f - 0.5f;
	}
	resize_nearest__ref(4, x_dims, y_dims, maps, sizeof(float), x, y);
	resize_nearest_backward_f32__ref(4, x_dims, y_dims, maps, dy, dx);
	double lhs = 0, rhs = 0;
	for (int i = 0; i < NY; i++)
		lhs += (double)y[i] * dy[i];
	for (int i = 0; i < NX; i++)
		rhs += (double)x[i] * dx[i];
	cr_assert(fabs(lhs - rhs) < 1e-5, "<Rx,dy> = %.9g, <x,R^T dy> = %.9g", lhs, rhs);
	/* the align_corners / ceil map of 7 -> 4: x = i * 6 / 3 = 0, 2, 4, 6 */
	cr_assert(maps[13] == 0 && maps[14] == 2 && maps[15] == 4 && maps[16] == 6);
}

/* RNN, GRU (both forms) and LSTM with peepholes, one or two directions, both
 * layouts, with and without biases and initial states, with W or projected
 * (X is X W^T, which a projected LSTM's gates read in place), the gates' inputs
 * scaled from tiny to far past the exp's clamp: the vector gate loops give
 * the portable ones' output and record bit for bit. */
Test(kernels_f32, rnn_gate_loops_equal_the_portable_ones_bit_for_bit)
{
	if (q8_isa_best() == Q8_ISA_REF)
		cr_skip_test("this CPU (or PRESSO_ISA) runs the portable loops only");
	rng_seed(23);
	for (int t = 0; t < 60; t++) {
		struct rnn_params p = {
			.cell = (enum rnn_cell)(t % 3), .seq = rng_int(1, 7), .batch = rng_int(1, 5),
			.in = rng_int(1, 9), .hidden = rng_int(1, 37), .dirs = t % 4 == 3 ? 2 : 1,
			.reverse = t % 4 == 1, .batch_first = t & 4, .linear_before_reset = t & 8,
			.r_transposed = (t / 3) & 1,
		};
		int64_t G = rnn_gates(p.cell), GH = G * p.hidden, D = p.dirs;
		if (t % 6 >= 4) { /* X is every direction's X W^T (a projected layer) */
			p.projected = true;
			p.in = D * GH;
		}
		float scale = t % 5 == 0 ? 40.0f : t % 5 == 1 ? 1e-3f : 1.5f;
		float *x = rand_buf(p.seq * p.batch * p.in), *w = rand_buf(D * GH * p.in);
		float *r = rand_buf(D * GH * p.hidden), *b = rand_buf(D * 2 * GH);
		float *h0 = rand_buf(D * p.batch * p.hidden), *c0 = rand_buf(D * p.batch * p.hidden);
		float *peep = rand_buf(D * 3 * p.hidden);
		for (int64_t i = 0; i < D * GH * p.in; i++)
			w[i] *= scale;
		for (int64_t i = 0; p.projected && i < p.seq * p.batch * p.in; i++)
			x[i] *= scale;
		struct rnn_tensors in = {x, w, r, t & 16 ? b : NULL, t & 32 ? h0 : NULL,
					 t & 32 ? c0 : NULL, t & 2 ? peep : NULL};
		size_t ys = (size_t)(p.seq * D * p.batch * p.hidden), ts = rnn_tape_floats(&p);
		float *y0 = calloc(ys, sizeof(float)), *y1 = calloc(ys, sizeof(float));
		float *t0 = calloc(ts, sizeof(float)), *t1 = calloc(ts, sizeof(float));
		float *scratch = malloc(rnn_scratch_floats(&p) * sizeof(float));
		cr_assert(y0 && y1 && t0 && t1 && scratch);
		enum rnn_out out = p.cell == RNN_CELL_LSTM && t % 7 == 0 ? RNN_OUT_C : RNN_OUT_Y;
		rnn_f32__portable(&p, &in, y0, out, scratch, t0);
		rnn_f32__ref(&p, &in, y1, out, scratch, t1);
		cr_assert(memcmp(y0, y1, ys * sizeof(float)) == 0 &&
				  memcmp(t0, t1, ts * sizeof(float)) == 0,
			  "case %d (cell %d, hidden %lld): the vector gate loops differ", t, (int)p.cell,
			  (long long)p.hidden);
		if (p.projected) {
			/* the same layer with W: each direction's W picks its block
			 * of X (products by 1 and sums of zeros, exact) */
			struct rnn_params q = p;
			q.projected = false;
			memset(w, 0, sizeof(float) * (size_t)(D * GH * p.in));
			for (int64_t d = 0; d < D; d++)
				for (int64_t k = 0; k < GH; k++)
					w[(d * GH + k) * p.in + d * GH + k] = 1.0f;
			float *scratch_q = malloc(rnn_scratch_floats(&q) * sizeof(float));
			cr_assert(scratch_q);
			rnn_f32__ref(&q, &in, y0, out, scratch_q, t0);
			cr_assert(memcmp(y0, y1, ys * sizeof(float)) == 0 &&
					  memcmp(t0, t1, ts * sizeof(float)) == 0,
				  "case %d (cell %d): projected X W^T is not the layer with W", t,
				  (int)p.cell);
			free(scratch_q);
		}
		free(x), free(w), free(r), free(b), free(h0), free(c0), free(peep);
		free(y0), free(y1), free(t0), free(t1), free(scratch);
	}
}

/* R as ONNX holds it ([G*H, H] per direction) or transposed (presso's
 * projected layers): the forward and the backward through time agree, the
 * gradients to rounding (the transposed form is the one the finite-difference
 * tests of test_train_grad.c check). */
Test(kernels_f32, rnn_with_r_transposed_is_the_same_layer)
{
	rng_seed(29);
	const struct f32_train_kernels *k = f32_train_kernels_best();
	for (int t = 0; t < 24; t++) {
		struct rnn_params p = {
			.cell = (enum rnn_cell)(t % 3), .seq = rng_int(1, 6), .batch = rng_int(1, 4),
			.in = rng_int(1, 7), .hidden = rng_int(1, 9), .dirs = t % 4 == 3 ? 2 : 1,
			.reverse = t % 4 == 1, .batch_first = t & 4, .linear_before_reset = t & 8,
		};
		int64_t G = rnn_gates(p.cell), GH = G * p.hidden, H = p.hidden, D = p.dirs;
		int64_t nx = p.seq * p.batch * p.in, ny = p.seq * D * p.batch * H;
		float *x = rand_buf(nx), *w = rand_buf(D * GH * p.in), *r = rand_buf(D * GH * H);
		float *b = rand_buf(D * 2 * GH), *dy = rand_buf(ny), *rt = rand_buf(D * GH * H);
		for (int64_t d = 0; d < D; d++)
			for (int64_t kk = 0; kk < GH; kk++)
				for (int64_t j = 0; j < H; j++)
					rt[(d * H + j) * GH + kk] = r[(d * GH + kk) * H + j];
		size_t sc = rnn_scratch_floats(&p), bs = rnn_backward_scratch_floats(&p);
		float *scratch = malloc((sc > bs ? sc : bs) * sizeof(float));
		float *y[2], *tape[2], *dx[2], *dr[2], *dw[2];
		for (int f = 0; f < 2; f++) {
			struct rnn_params q = p;
			q.r_transposed = f;
			struct rnn_tensors in = {x, w, f ? rt : r, b, NULL, NULL, NULL};
			y[f] = calloc((size_t)ny, sizeof(float));
			tape[f] = calloc(rnn_tape_floats(&q), sizeof(float));
			dx[f] = calloc((size_t)nx, sizeof(float));
			dr[f] = calloc((size_t)(D * GH * H), sizeof(float));
			dw[f] = calloc((size_t)(D * GH * p.in), sizeof(float));
			rnn_f32__ref(&q, &in, y[f], RNN_OUT_Y, scratch, tape[f]);
			struct rnn_grads gr = {dx[f], dw[f], dr[f], NULL, NULL, NULL, NULL};
			rnn_backward_f32(k, &q, &in, tape[f], dy, RNN_OUT_Y, &gr, scratch);
		}
		for (int64_t i = 0; i < ny; i++)
			cr_assert_float_eq(y[0][i], y[1][i], 1e-5f, "case %d: Y[%lld]", t, (long long)i);
		for (int64_t i = 0; i < nx; i++)
			cr_assert_float_eq(dx[0][i], dx[1][i], 1e-4f, "case %d: dX[%lld]", t, (long long)i);
		for (int64_t i = 0; i < D * GH * p.in; i++)
			cr_assert_float_eq(dw[0][i], dw[1][i], 1e-4f, "case %d: dW[%lld]", t, (long long)i);
		for (int64_t d = 0; d < D; d++)
			for (int64_t kk = 0; kk < GH; kk++)
				for (int64_t j = 0; j < H; j++)
					cr_assert_float_eq(dr[0][(d * GH + kk) * H + j],
							   dr[1][(d * H + j) * GH + kk], 1e-4f,
							   "case %d: dR[%lld][%lld][%lld]", t, (long long)d,
							   (long long)kk, (long long)j);
		for (int f = 0; f < 2; f++)
			free(y[f]), free(tape[f]), free(dx[f]), free(dr[f]), free(dw[f]);
		free(x), free(w), free(r), free(b), free(dy), free(rt), free(scratch);
	}
}

/* rnn_f32_rec's product hook, given the product rnn_f32__ref computes (the
 * same GEMM on R^T's columns), gives rnn_f32__ref's outputs bit for bit for
 * every cell (GRU both ways: its h gate's product on r . H' is the hook's
 * second part), direction and layout: the hook gets the columns, the rows
 * and the strides the INT8 engine's recurrence relies on. */
struct float_product {
	const float *rt; /* R^T [dirs][hidden][gates * hidden] */
	int64_t hidden, gh;
	int calls[2];
};

static void float_product(void *ctx, int d, int64_t col0, int64_t n, int64_t batch, const float *x,
			  float *out, int64_t ldo)
{
	struct float_product *f = ctx;
	f->calls[col0 ? 1 : 0]++;
	gemm_f32__ref((int)batch, (int)n, (int)f->hidden, x, (int)f->hidden, false,
		      f->rt + (size_t)d * f->hidden * f->gh + col0, (int)f->gh, false, out, (int)ldo);
}

Test(kernels_f32, rnn_product_hook_is_the_recurrence)
{
	rng_seed(31);
	for (int t = 0; t < 24; t++) {
		struct rnn_params p = {
			.cell = (enum rnn_cell)(t % 3), .seq = rng_int(1, 6), .batch = rng_int(1, 4),
			.in = rng_int(1, 7), .hidden = rng_int(1, 9), .dirs = t % 4 == 3 ? 2 : 1,
			.reverse = t % 4 == 1, .batch_first = t & 4, .linear_before_reset = t & 8,
			.r_transposed = true,
		};
		int64_t G = rnn_gates(p.cell), GH = G * p.hidden, H = p.hidden, D = p.dirs;
		int64_t nx = p.seq * p.batch * p.in, ny = p.seq * D * p.batch * H;
		float *x = rand_buf(nx), *w = rand_buf(D * GH * p.in), *rt = rand_buf(D * GH * H);
		float *b = rand_buf(D * 2 * GH);
		float *scratch = malloc(rnn_scratch_floats(&p) * sizeof(float));
		float *y0 = calloc((size_t)ny, sizeof(float)), *y1 = calloc((size_t)ny, sizeof(float));
		struct rnn_tensors in = {x, w, rt, b, NULL, NULL, NULL};
		rnn_f32__ref(&p, &in, y0, RNN_OUT_Y, scratch, NULL);
		struct float_product fp = {rt, H, GH, {0, 0}};
		const struct rnn_rec rec = {float_product, &fp};
		rnn_f32_rec(&p, &in, y1, RNN_OUT_Y, scratch, &rec);
		cr_assert_arr_eq(y0, y1, sizeof(float) * (size_t)ny, "case %d", t);
		bool split = p.cell == RNN_CELL_GRU && !p.linear_before_reset;
		cr_assert_eq(fp.calls[0], D * p.seq, "case %d", t);
		cr_assert_eq(fp.calls[1], split ? D * p.seq : 0, "case %d", t);
		free(x), free(w), free(rt), free(b), free(scratch), free(y0), free(y1);
	}
}
