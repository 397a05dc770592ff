/* test_train_kernels.c - every vectorised training kernel path (AVX2, AVX-512)
 * against the portable reference, on hundreds of random shapes: the GEMM in
 * all four transpositions, overwriting and accumulating, with leading
 * dimensions larger than the rows; the conv forward and both backward passes
 * (grouped, depthwise, 1x1, strided, padded, dilated). Paths sum in other
 * orders, so results agree to rounding: each element within TOL of the sum of
 * the absolute values of its terms. Paths this CPU lacks are skipped.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_train.h"

/* A float sum of K terms in two different orders differs by at most about
 * 2 K 2^-24 sum|term|; K <= ~600 here: 7e-5. Typical random-sign errors are
 * ~100x smaller; a wrong or missing term (>= sum|term| / K ~ 2e-3) fails. */
#define TOL 1e-4

static uint64_t rs;

static uint64_t rnext(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int rint_in(int lo, int hi)
{
	return lo + (int)(rnext() % (uint64_t)(hi - lo + 1));
}

static float *rbuf(int64_t n)
{
	float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)((double)(rnext() >> 40) / (double)(1ull << 23) - 1.0);
	return p;
}

static float *copy(const float *x, int64_t n)
{
	float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
	memcpy(p, x, sizeof(float) * (size_t)n);
	return p;
}

/* Checks got against want element by element, mag[i] = sum |terms| of i. */
static void expect_close(const float *got, const float *want, const double *mag, int64_t n,
			 const char *what, int trial)
{
	for (int64_t i = 0; i < n; i++)
		cr_assert_leq(fabs((double)got[i] - want[i]), TOL * mag[i] + 1e-6,
			      "%s, trial %d, element %lld: %g vs reference %g", what, trial,
			      (long long)i, got[i], want[i]);
}

static const struct f32_train_kernels *fast_paths[2];

static int n_fast(void)
{
	int n = 0;
	const struct f32_train_kernels *k;
	if ((k = f32_train_kernels_for(F32T_ISA_AVX2)))
		fast_paths[n++] = k;
	if ((k = f32_train_kernels_for(F32T_ISA_AVX512)))
		fast_paths[n++] = k;
	return n;
}

Test(train_kernels_paths, gemm)
{
	int n_paths = n_fast();
	if (!n_paths)
		cr_skip_test("no vectorised path on this CPU");
	rs = 50;
	for (int trial = 0; trial < 400; trial++) {
		int m = rint_in(1, 40), n = rint_in(1, 70), k = rint_in(1, trial % 10 ? 40 : 600);
		bool ta = rnext() & 1, tb = rnext() & 1, acc = rnext() & 1;
		int lda = (ta ? m : k) + rint_in(0, 3), ldb = (tb ? k : n) + rint_in(0, 3);
		int ldc = n + rint_in(0, 3);
		float *a = rbuf((int64_t)lda * (ta ? k : m)), *b = rbuf((int64_t)ldb * (tb ? n : k));
		float *c0 = rbuf((int64_t)ldc * m);
		float *want = copy(c0, (int64_t)ldc * m);
		double *mag = calloc((size_t)ldc * (size_t)m, sizeof(double));
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++) {
				double s = acc ? fabs(c0[i * ldc + j]) : 0.0;
				for (int kk = 0; kk < k; kk++)
					s += fabs((double)(ta ? a[kk * lda + i] : a[i * lda + kk]) *
						  (tb ? b[j * ldb + kk] : b[kk * ldb + j]));
				mag[i * ldc + j] = s;
			}
		gemm_acc_f32__ref(m, n, k, a, lda, ta, b, ldb, tb, want, ldc, acc);
		for (int p = 0; p < n_paths; p++) {
			float *got = copy(c0, (int64_t)ldc * m);
			fast_paths[p]->gemm(m, n, k, a, lda, ta, b, ldb, tb, got, ldc, acc);
			for (int i = 0; i < m; i++) /* the padding columns stay untouched */
				for (int j = n; j < ldc; j++)
					cr_assert_eq(got[i * ldc + j], c0[i * ldc + j],
						     "%s wrote past n", fast_paths[p]->name);
			expect_close(got, want, mag, (int64_t)ldc * m, fast_paths[p]->name, trial);
			free(got);
		}
		free(a);
		free(b);
		free(c0);
		free(want);
		free(mag);
	}
}

static void random_conv(struct conv2d_params *p)
{
	memset(p, 0, sizeof *p);
	int kind = rint_in(0, 3);
	p->group = kind == 1 ? rint_in(1, 3) : 1;
	p->c_in = p->group * rint_in(1, 5);
	p->c_out = p->group * rint_in(1, 5);
	if (kind == 2)
		p->group = p->c_in = p->c_out = rint_in(1, 6);
	p->n = rint_in(1, 3);
	bool one = kind == 3;
	p->kh = one ? 1 : rint_in(1, 5);
	p->kw = one ? 1 : rint_in(1, 5);
	p->stride_h = one ? 1 : rint_in(1, 2);
	p->stride_w = one ? 1 : rint_in(1, 2);
	p->dil_h = one ? 1 : rint_in(1, 2);
	p->dil_w = one ? 1 : rint_in(1, 2);
	p->pad_t = one ? 0 : rint_in(0, 2);
	p->pad_l = one ? 0 : rint_in(0, 2);
	int pb = one ? 0 : rint_in(0, 2), pr = one ? 0 : rint_in(0, 2);
	p->h_in = rint_in((p->kh - 1) * p->dil_h + 1, 30);
	p->w_in = rint_in((p->kw - 1) * p->dil_w + 1, 30);
	p->h_out = (p->h_in + p->pad_t + pb - (p->kh - 1) * p->dil_h - 1) / p->stride_h + 1;
	p->w_out = (p->w_in + p->pad_l + pr - (p->kw - 1) * p->dil_w - 1) / p->stride_w + 1;
	p->act_min = -INFINITY;
	p->act_max = INFINITY;
}

/* |terms| sums: forward per output, data per input, filter per weight. */
static void conv_mags(const struct conv2d_params *p, const float *x, const float *w,
		      const float *dy, double *my, double *mx, double *mw)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	for (int n = 0; n < p->n; n++)
		for (int oc = 0; oc < p->c_out; oc++) {
			int g = oc / cout_g;
			for (int oy = 0; oy < p->h_out; oy++)
				for (int ox = 0; ox < p->w_out; ox++) {
					int64_t yi = (((int64_t)n * p->c_out + oc) * p->h_out + oy) * p->w_out + ox;
					for (int ic = 0; ic < cin_g; ic++)
						for (int ky = 0; ky < p->kh; ky++)
							for (int kx = 0; kx < p->kw; kx++) {
								int iy = oy * p->stride_h - p->pad_t + ky * p->dil_h;
								int ix = ox * p->stride_w - p->pad_l + kx * p->dil_w;
								if (iy < 0 || iy >= p->h_in || ix < 0 || ix >= p->w_in)
									continue;
								int64_t xi = (((int64_t)n * p->c_in + g * cin_g + ic) * p->h_in + iy) * p->w_in + ix;
								int64_t wi = (((int64_t)oc * cin_g + ic) * p->kh + ky) * p->kw + kx;
								my[yi] += fabs((double)x[xi] * w[wi]);
								mx[xi] += fabs((double)dy[yi] * w[wi]);
								mw[wi] += fabs((double)dy[yi] * x[xi]);
							}
				}
		}
}

Test(train_kernels_paths, conv_forward_and_backward)
{
	int n_paths = n_fast();
	if (!n_paths)
		cr_skip_test("no vectorised path on this CPU");
	rs = 51;
	for (int trial = 0; trial < 300; trial++) {
		struct conv2d_params p;
		random_conv(&p);
		int64_t nx = (int64_t)p.n * p.c_in * p.h_in * p.w_in;
		int64_t nw = (int64_t)p.c_out * (p.c_in / p.group) * p.kh * p.kw;
		int64_t ny = (int64_t)p.n * p.c_out * p.h_out * p.w_out;
		float *x = rbuf(nx), *w = rbuf(nw), *dy = rbuf(ny);
		float *dx0 = rbuf(nx), *dw0 = rbuf(nw);
		double *my = calloc((size_t)ny, sizeof(double)), *mx = calloc((size_t)nx, sizeof(double));
		double *mw = calloc((size_t)nw, sizeof(double));
		conv_mags(&p, x, w, dy, my, mx, mw);
		for (int64_t i = 0; i < nx; i++)
			mx[i] += fabs(dx0[i]);
		for (int64_t i = 0; i < nw; i++)
			mw[i] += fabs(dw0[i]);
		float *scratch = malloc(conv2d_backward_scratch_bytes(&p) + 64);
		float *y_ref = malloc(sizeof(float) * (size_t)ny);
		float *dx_ref = copy(dx0, nx), *dw_ref = copy(dw0, nw);
		conv2d_forward_f32(&f32_train_ref, &p, x, w, NULL, y_ref, scratch);
		conv2d_backward_data_f32(&f32_train_ref, &p, dy, w, dx_ref, scratch);
		conv2d_backward_filter_f32(&f32_train_ref, &p, x, dy, dw_ref, NULL, scratch);
		for (int q = 0; q < n_paths; q++) {
			const struct f32_train_kernels *k = fast_paths[q];
			float *y = malloc(sizeof(float) * (size_t)ny);
			float *dx = copy(dx0, nx), *dw = copy(dw0, nw);
			conv2d_forward_f32(k, &p, x, w, NULL, y, scratch);
			conv2d_backward_data_f32(k, &p, dy, w, dx, scratch);
			conv2d_backward_filter_f32(k, &p, x, dy, dw, NULL, scratch);
			expect_close(y, y_ref, my, ny, k->name, trial);
			expect_close(dx, dx_ref, mx, nx, k->name, trial);
			expect_close(dw, dw_ref, mw, nw, k->name, trial);
			free(y);
			free(dx);
			free(dw);
		}
		free(x);
		free(w);
		free(dy);
		free(dx0);
		free(dw0);
		free(my);
		free(mx);
		free(mw);
		free(scratch);
		free(y_ref);
		free(dx_ref);
		free(dw_ref);
	}
}

/* The reference conv forward of the training kernels is the FP32 engine's. */
Test(train_kernels_paths, reference_forward_matches_the_engine)
{
	rs = 52;
	for (int trial = 0; trial < 200; trial++) {
		struct conv2d_params p;
		random_conv(&p);
		int64_t nx = (int64_t)p.n * p.c_in * p.h_in * p.w_in;
		int64_t nw = (int64_t)p.c_out * (p.c_in / p.group) * p.kh * p.kw;
		int64_t ny = (int64_t)p.n * p.c_out * p.h_out * p.w_out;
		float *x = rbuf(nx), *w = rbuf(nw), *dy = rbuf(ny), *bias = rbuf(p.c_out);
		double *my = calloc((size_t)ny, sizeof(double)), *mx = calloc((size_t)nx, sizeof(double));
		double *mw = calloc((size_t)nw, sizeof(double));
		conv_mags(&p, x, w, dy, my, mx, mw);
		for (int64_t i = 0; i < ny; i++)
			my[i] += 1.0;
		size_t sb = conv2d_backward_scratch_bytes(&p), se = conv2d_f32_scratch_bytes(&p);
		float *scratch = malloc((sb > se ? sb : se) + 64);
		float *y = malloc(sizeof(float) * (size_t)ny), *ye = malloc(sizeof(float) * (size_t)ny);
		p.act_min = -0.5f;
		p.act_max = 0.7f;
		conv2d_forward_f32(&f32_train_ref, &p, x, w, bias, y, scratch);
		conv2d_f32__ref(&p, x, w, bias, ye, scratch);
		expect_close(y, ye, my, ny, "ref vs engine", trial);
		free(x);
		free(w);
		free(dy);
		free(bias);
		free(my);
		free(mx);
		free(mw);
		free(scratch);
		free(y);
		free(ye);
	}
}
