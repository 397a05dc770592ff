/* f32_train_ref.c - FP32 backward kernels (kernels_train.h): the portable oracle.
 *
 * Layout as in f32_ref.c: dense row-major, images NCHW, conv weights
 * [c_out, c_in/group, kh, kw]. Every gradient is accumulated into its output.
 *
 * Conv backward goes through the same im2col as the forward, one band of
 * output rows of one image and group at a time (at most CONV_BWD_COL_FLOATS
 * floats of columns):
 *   filter: dW_g [c_out/g, K] += dy_g [c_out/g, cols] . col^T [cols, K]
 *   data:   dcol [K, cols] = W_g^T [K, c_out/g] . dy_g [c_out/g, cols],
 *           then col2im adds each column entry back to the pixel it came from.
 * Each product goes through gemm_f32__ref into scratch and is then added, so
 * the gradients sum over images and bands in a fixed order. 1x1 stride-1
 * unpadded convs skip the im2col (the input is its own column matrix);
 * depthwise convs (one input and one output channel per group) use direct
 * loops over the taps, like the forward.
 *
 * BatchNorm statistics sum in double; bias gradients in BIAS_LANES float
 * partial sums combined in a fixed order (so they vectorize).
 */
#include "kernels/kernels_train.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/status.h"

/* im2col band cap of the backward: 2^18 floats = 1 MiB, as the forward's. */
#define CONV_BWD_COL_FLOATS ((int64_t)1 << 18)
/* Partial sums of a conv's bias gradient (the sum of dy per channel). */
#define BIAS_LANES 16
/* Most dimensions a broadcast reduction walks (after dropping size-1 ones). */
#define TRAIN_MAX_RANK 16

static inline int64_t min_i64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static inline int64_t max_i64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* y[0..n) += x[0..n). */
static inline void add_to(int64_t n, const float *restrict x, float *restrict y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] += x[i];
}

/* Indices t in [0, count) with 0 <= off + t * step < limit form [*lo, *hi). */
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

/* ---- Conv ------------------------------------------------------------------ */

static bool is_depthwise(const struct conv2d_params *p)
{
	return p->c_in == p->group && p->c_out == p->group;
}

static bool is_pointwise(const struct conv2d_params *p)
{
	return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
	       p->pad_t == 0 && p->pad_l == 0 && p->h_out == p->h_in && p->w_out == p->w_in;
}

static int64_t conv_k(const struct conv2d_params *p)
{
	return (int64_t)(p->c_in / p->group) * p->kh * p->kw;
}

/* Output rows per im2col band (0 for depthwise and 1x1 convs). */
static int64_t band_rows(const struct conv2d_params *p)
{
	if (is_depthwise(p) || is_pointwise(p) || p->h_out <= 0 || p->w_out <= 0)
		return 0;
	return min_i64(max_i64(CONV_BWD_COL_FLOATS / (conv_k(p) * p->w_out), 1), p->h_out);
}

size_t conv2d_backward_scratch_bytes(const struct conv2d_params *p)
{
	/* one band's columns (forward, filter) or their gradient (data); the
	 * depthwise and 1x1 paths need none */
	return (size_t)(conv_k(p) * band_rows(p) * p->w_out) * sizeof(float);
}

/* The im2col of conv output rows oy0 .. oy0 + rows of one image and group (as
 * f32_ref.c's): col[(c * kh + ky) * kw + kx][(oy - oy0) * w_out + ox]. */
static void im2col(const struct conv2d_params *p, int c_n, const float *x, int64_t oy0,
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

			if (iy < 0 || iy >= p->h_in) {
				memset(dst, 0, (size_t)p->w_out * sizeof(float));
				continue;
			}
			xr = xc + iy * p->w_in;
			for (int64_t ox = 0; ox < p->w_out; ox++)
				dst[ox] = ox >= lo && ox < hi ? xr[x_off + ox * p->stride_w] : 0.0f;
		}
	}
}

/* The adjoint of im2col: every column entry is added to the pixel it was read
 * from (padding entries are dropped). */
static void col2im_add(const struct conv2d_params *p, int c_n, const float *restrict col,
		       int64_t oy0, int64_t rows, float *dx)
{
	int64_t n_cols = rows * p->w_out, n_taps = (int64_t)p->kh * p->kw;

	for (int64_t row = 0; row < c_n * n_taps; row++) {
		int64_t c = row / n_taps, ky = row % n_taps / p->kw, kx = row % p->kw;
		float *dxc = dx + c * p->h_in * p->w_in;
		int64_t x_off = kx * p->dil_w - p->pad_l, lo, hi;
		const float *restrict src = col + row * n_cols;

		valid_range(x_off, p->stride_w, p->w_in, p->w_out, &lo, &hi);
		for (int64_t oy = oy0; oy < oy0 + rows; oy++, src += p->w_out) {
			int64_t iy = oy * p->stride_h - p->pad_t + ky * p->dil_h;
			float *restrict dr;

			if (iy < 0 || iy >= p->h_in)
				continue;
			dr = dxc + iy * p->w_in;
			for (int64_t ox = lo; ox < hi; ox++)
				dr[x_off + ox * p->stride_w] += src[ox];
		}
	}
}

void conv2d_forward_f32(const struct f32_train_kernels *kt, const struct conv2d_params *p,
			const float *x, const float *w, const float *bias, float *y,
			float *scratch)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;
	int64_t k = conv_k(p), band = band_rows(p);
	bool clamp = p->act_min > -INFINITY || p->act_max < INFINITY;

	assert(p->group > 0 && p->c_in % p->group == 0 && p->c_out % p->group == 0);
	for (int64_t ni = 0; ni < p->n; ni++) {
		for (int g = 0; g < p->group; g++) {
			const float *xg = x + (ni * p->c_in + (int64_t)g * cin_g) * hw_in;
			const float *wg = w + (int64_t)g * cout_g * k;
			float *yg = y + (ni * p->c_out + (int64_t)g * cout_g) * hw_out;

			if (is_depthwise(p)) {
				kt->dw_forward(p, xg, wg, yg);
			} else if (is_pointwise(p)) {
				kt->gemm(cout_g, (int)hw_out, cin_g, wg, cin_g, false, xg, (int)hw_out,
					 false, yg, (int)hw_out, false);
			} else {
				for (int64_t oy0 = 0; oy0 < p->h_out; oy0 += band) {
					int64_t rows = min_i64(band, p->h_out - oy0);
					int n_cols = (int)(rows * p->w_out);

					im2col(p, cin_g, xg, oy0, rows, scratch);
					kt->gemm(cout_g, n_cols, (int)k, wg, (int)k, false, scratch,
						 n_cols, false, yg + oy0 * p->w_out, (int)hw_out, false);
				}
			}
			if (!bias && !clamp)
				continue;
			for (int oc = 0; oc < cout_g; oc++) {
				float *restrict yc = yg + oc * hw_out;
				float bv = bias ? bias[g * cout_g + oc] : 0.0f;

				if (clamp) {
					for (int64_t i = 0; i < hw_out; i++) {
						float v = yc[i] + bv;

						v = v < p->act_min ? p->act_min : v;
						yc[i] = v > p->act_max ? p->act_max : v;
					}
				} else {
					for (int64_t i = 0; i < hw_out; i++)
						yc[i] += bv;
				}
			}
		}
	}
}

void conv2d_backward_data_f32(const struct f32_train_kernels *kt, const struct conv2d_params *p,
			      const float *dy, const float *w, float *dx, float *scratch)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;
	int64_t k = conv_k(p), band = band_rows(p);

	assert(p->group > 0 && p->c_in % p->group == 0 && p->c_out % p->group == 0);
	for (int64_t ni = 0; ni < p->n; ni++) {
		for (int g = 0; g < p->group; g++) {
			const float *dyg = dy + (ni * p->c_out + (int64_t)g * cout_g) * hw_out;
			const float *wg = w + (int64_t)g * cout_g * k;
			float *dxg = dx + (ni * p->c_in + (int64_t)g * cin_g) * hw_in;

			if (is_depthwise(p)) {
				kt->dw_data(p, dyg, wg, dxg);
				continue;
			}
			if (is_pointwise(p)) {
				kt->gemm(cin_g, (int)hw_out, cout_g, wg, cin_g, true, dyg, (int)hw_out,
					 false, dxg, (int)hw_in, true);
				continue;
			}
			for (int64_t oy0 = 0; oy0 < p->h_out; oy0 += band) {
				int64_t rows = min_i64(band, p->h_out - oy0);
				int n_cols = (int)(rows * p->w_out);

				kt->gemm((int)k, n_cols, cout_g, wg, (int)k, true, dyg + oy0 * p->w_out,
					 (int)hw_out, false, scratch, n_cols, false);
				col2im_add(p, cin_g, scratch, oy0, rows, dxg);
			}
		}
	}
}

void conv2d_backward_filter_f32(const struct f32_train_kernels *kt,
				const struct conv2d_params *p, const float *x, const float *dy,
				float *dw, float *db, float *scratch)
{
	int cin_g = p->c_in / p->group, cout_g = p->c_out / p->group;
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;
	int64_t k = conv_k(p), band = band_rows(p);

	assert(p->group > 0 && p->c_in % p->group == 0 && p->c_out % p->group == 0);
	for (int64_t ni = 0; dw && ni < p->n; ni++) {
		for (int g = 0; g < p->group; g++) {
			const float *dyg = dy + (ni * p->c_out + (int64_t)g * cout_g) * hw_out;
			const float *xg = x + (ni * p->c_in + (int64_t)g * cin_g) * hw_in;
			float *dwg = dw + (int64_t)g * cout_g * k;

			if (is_depthwise(p)) {
				kt->dw_filter(p, xg, dyg, dwg);
				continue;
			}
			if (is_pointwise(p)) {
				kt->gemm(cout_g, cin_g, (int)hw_out, dyg, (int)hw_out, false, xg,
					 (int)hw_in, true, dwg, cin_g, true);
				continue;
			}
			for (int64_t oy0 = 0; oy0 < p->h_out; oy0 += band) {
				int64_t rows = min_i64(band, p->h_out - oy0);
				int n_cols = (int)(rows * p->w_out);

				im2col(p, cin_g, xg, oy0, rows, scratch);
				kt->gemm(cout_g, (int)k, n_cols, dyg + oy0 * p->w_out, (int)hw_out,
					 false, scratch, n_cols, true, dwg, (int)k, true);
			}
		}
	}
	if (!db)
		return;
	/* per channel, BIAS_LANES partial sums combined in a fixed order */
	for (int oc = 0; oc < p->c_out; oc++) {
		float acc[BIAS_LANES] = {0};

		for (int64_t ni = 0; ni < p->n; ni++) {
			const float *restrict dyc = dy + (ni * p->c_out + oc) * hw_out;
			int64_t i = 0;

			for (; i + BIAS_LANES <= hw_out; i += BIAS_LANES)
				for (int l = 0; l < BIAS_LANES; l++)
					acc[l] += dyc[i + l];
			for (int l = 0; i < hw_out; i++, l++)
				acc[l] += dyc[i];
		}
		for (int w = BIAS_LANES / 2; w > 0; w /= 2)
			for (int l = 0; l < w; l++)
				acc[l] += acc[l + w];
		db[oc] += acc[0];
	}
}

void conv2d_backward_data_f32__ref(const struct conv2d_params *p, const float *dy,
				   const float *w, float *dx, float *scratch)
{
	conv2d_backward_data_f32(&f32_train_ref, p, dy, w, dx, scratch);
}

void conv2d_backward_filter_f32__ref(const struct conv2d_params *p, const float *x,
				     const float *dy, float *dw, float *db, float *scratch)
{
	conv2d_backward_filter_f32(&f32_train_ref, p, x, dy, dw, db, scratch);
}

/* ---- Gemm ------------------------------------------------------------------ */

/* Independent partial sums of the reference's dot products (trans_b). */
#define REF_DOT_LANES 8

void gemm_acc_f32__ref(int m, int n, int k, const float *a, int lda, bool trans_a,
		       const float *b, int ldb, bool trans_b, float *c, int ldc, bool accumulate)
{
	int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;

	for (int64_t i = 0; i < m; i++) {
		float *restrict cr = c + i * ldc;

		if (!accumulate)
			for (int64_t j = 0; j < n; j++)
				cr[j] = 0.0f;
		if (!trans_b) { /* rows of B, vectorized over n, k in order */
			for (int64_t kk = 0; kk < k; kk++) {
				float av = a[i * a_rs + kk * a_cs];
				const float *restrict br = b + kk * ldb;

				for (int64_t j = 0; j < n; j++)
					cr[j] += av * br[j];
			}
			continue;
		}
		for (int64_t j = 0; j < n; j++) { /* B^T: a dot product per entry */
			const float *br = b + j * ldb;
			float acc[REF_DOT_LANES] = {0};

			for (int64_t kk = 0; kk < k; kk++)
				acc[kk % REF_DOT_LANES] += a[i * a_rs + kk * a_cs] * br[kk];
			for (int w = REF_DOT_LANES / 2; w > 0; w /= 2)
				for (int l = 0; l < w; l++)
					acc[l] += acc[l + w];
			cr[j] += acc[0];
		}
	}
}

#define DW_LANES 8
#define DW_NAME(x) x##__ref /* dw_forward_plane__ref, ... */
#include "kernels/f32_train_dw.inc"

const struct f32_train_kernels f32_train_ref = {
	"ref", gemm_acc_f32__ref, dw_forward_plane__ref, dw_data_plane__ref, dw_filter_plane__ref,
};

size_t gemm_backward_scratch_bytes(int m, int n, int k)
{
	(void)k;
	return (size_t)m * (size_t)n * sizeof(float);
}

void gemm_backward_f32(const struct f32_train_kernels *kt, int m, int n, int k, float alpha,
		       const float *a, bool trans_a, const float *b, bool trans_b, float beta,
		       int c_m, int c_n, const float *dy, float *da, float *db, float *dc,
		       float *scratch)
{
	/* op(A) [m,k], op(B) [k,n]; B is [k,n] (ldb n) or, with trans_b, [n,k]. */
	const float *g = dy;

	if ((da || db) && alpha != 1.0f) {
		for (int64_t i = 0; i < (int64_t)m * n; i++)
			scratch[i] = alpha * dy[i];
		g = scratch;
	}
	if (da) {
		if (!trans_a) /* dA [m,k] += dY [m,n] . op(B)^T */
			kt->gemm(m, k, n, g, n, false, b, trans_b ? k : n, !trans_b, da, k, true);
		else /* A is [k,m]: dA += op(B) [k,n] . dY^T */
			kt->gemm(k, m, n, b, trans_b ? k : n, trans_b, g, n, true, da, m, true);
	}
	if (db) {
		if (!trans_b) /* dB [k,n] += op(A)^T . dY */
			kt->gemm(k, n, m, a, trans_a ? m : k, !trans_a, g, n, false, db, n, true);
		else /* B is [n,k]: dB += dY^T . op(A) */
			kt->gemm(n, k, m, g, n, true, a, trans_a ? m : k, trans_a, db, k, true);
	}
	if (dc) {
		for (int64_t ci = 0; ci < (int64_t)c_m * c_n; ci++) {
			int64_t r0 = c_m == 1 ? 0 : ci / c_n, r1 = c_m == 1 ? m : r0 + 1;
			int64_t j0 = c_n == 1 ? 0 : ci % c_n, j1 = c_n == 1 ? n : j0 + 1;
			double s = 0.0;

			for (int64_t r = r0; r < r1; r++)
				for (int64_t j = j0; j < j1; j++)
					s += dy[r * n + j];
			dc[ci] += beta * (float)s;
		}
	}
}

void gemm_backward_f32__ref(int m, int n, int k, float alpha, const float *a, bool trans_a,
			    const float *b, bool trans_b, float beta, int c_m, int c_n,
			    const float *dy, float *da, float *db, float *dc, float *scratch)
{
	gemm_backward_f32(&f32_train_ref, m, n, k, alpha, a, trans_a, b, trans_b, beta, c_m, c_n,
			  dy, da, db, dc, scratch);
}

/* ---- Pooling --------------------------------------------------------------- */

void maxpool2d_backward_f32__ref(const struct pool2d_params *p, const float *x,
				 const float *dy, float *dx)
{
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;

	for (int64_t nc = 0; nc < (int64_t)p->n * p->c; nc++) {
		const float *xc = x + nc * hw_in;
		const float *dyc = dy + nc * hw_out;
		float *dxc = dx + nc * hw_in;

		for (int64_t oy = 0; oy < p->h_out; oy++) {
			int64_t iy0 = oy * p->stride_h - p->pad_t, ky_lo, ky_hi;

			valid_range(iy0, p->dil_h, p->h_in, p->kh, &ky_lo, &ky_hi);
			for (int64_t ox = 0; ox < p->w_out; ox++) {
				int64_t ix0 = ox * p->stride_w - p->pad_l, kx_lo, kx_hi;
				int64_t arg = -1;
				float mx = -INFINITY;

				valid_range(ix0, p->dil_w, p->w_in, p->kw, &kx_lo, &kx_hi);
				for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
					int64_t row = (iy0 + ky * p->dil_h) * p->w_in;

					for (int64_t kx = kx_lo; kx < kx_hi; kx++) {
						int64_t at = row + ix0 + kx * p->dil_w;
						float v = xc[at];

						/* the forward's rule: a larger value or a NaN wins */
						if (arg < 0 || v > mx || v != v) {
							mx = v;
							arg = at;
						}
					}
				}
				if (arg >= 0)
					dxc[arg] += dyc[oy * p->w_out + ox];
			}
		}
	}
}

void avgpool2d_backward_f32__ref(const struct pool2d_params *p, const float *dy, float *dx)
{
	int64_t hw_in = (int64_t)p->h_in * p->w_in, hw_out = (int64_t)p->h_out * p->w_out;

	for (int64_t nc = 0; nc < (int64_t)p->n * p->c; nc++) {
		const float *dyc = dy + nc * hw_out;
		float *dxc = dx + nc * hw_in;

		for (int64_t oy = 0; oy < p->h_out; oy++) {
			int64_t iy0 = oy * p->stride_h - p->pad_t, ky_lo, ky_hi, py_lo, py_hi;

			valid_range(iy0, p->dil_h, p->h_in, p->kh, &ky_lo, &ky_hi);
			valid_range(iy0 + p->pad_t, p->dil_h,
				    (int64_t)p->pad_t + p->h_in + p->pad_b, p->kh, &py_lo, &py_hi);
			for (int64_t ox = 0; ox < p->w_out; ox++) {
				int64_t ix0 = ox * p->stride_w - p->pad_l, count;
				int64_t kx_lo, kx_hi, px_lo, px_hi;
				float g;

				valid_range(ix0, p->dil_w, p->w_in, p->kw, &kx_lo, &kx_hi);
				valid_range(ix0 + p->pad_l, p->dil_w,
					    (int64_t)p->pad_l + p->w_in + p->pad_r, p->kw, &px_lo,
					    &px_hi);
				if (p->count_include_pad)
					count = (py_hi - py_lo) * (px_hi - px_lo);
				else
					count = (ky_hi - ky_lo) * (kx_hi - kx_lo);
				if (count <= 0)
					continue;
				g = dyc[oy * p->w_out + ox] / (float)count;
				for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
					float *dr = dxc + (iy0 + ky * p->dil_h) * p->w_in;

					for (int64_t kx = kx_lo; kx < kx_hi; kx++)
						dr[ix0 + kx * p->dil_w] += g;
				}
			}
		}
	}
}

void global_avgpool_backward_f32__ref(int n, int c, int hw, const float *dy, float *dx)
{
	if (hw <= 0)
		return;
	for (int64_t i = 0; i < (int64_t)n * c; i++) {
		float g = dy[i] / (float)hw;
		float *restrict d = dx + i * hw;

		for (int64_t j = 0; j < hw; j++)
			d[j] += g;
	}
}

/* ---- Elementwise ----------------------------------------------------------- */

void clip_backward_f32__ref(int64_t count, const float *restrict x, float lo, float hi,
			    const float *restrict dy, float *restrict dx)
{
	/* every operand loaded unconditionally and the choice a select, so the
	 * loop vectorizes (a branch per element mispredicts on ReLU patterns) */
	for (int64_t i = 0; i < count; i++) {
		float xi = x[i], d = dy[i];

		dx[i] += xi > lo && xi < hi ? d : 0.0f;
	}
}

void add_backward_f32__ref(const int64_t *a_dims, const int64_t *y_dims, int y_rank,
			   const float *dy, float *da)
{
	/* Walk y with an odometer; a's offset steps where a is not broadcast. */
	int64_t dims[TRAIN_MAX_RANK], step[TRAIN_MAX_RANK], idx[TRAIN_MAX_RANK];
	int64_t total = 1, a_stride = 1, a_off = 0, inner, inner_step;
	int r = 0;

	/* innermost first, size-1 output dimensions dropped */
	for (int i = y_rank - 1; i >= 0; i--) {
		int64_t s = a_dims[i] == 1 ? 0 : a_stride;

		a_stride *= a_dims[i];
		total *= y_dims[i];
		if (y_dims[i] == 1)
			continue;
		PRESSO_CHECK(r < TRAIN_MAX_RANK);
		dims[r] = y_dims[i];
		step[r] = s;
		idx[r] = 0;
		r++;
	}
	if (total == 0)
		return;
	if (r == 0) {
		da[0] += dy[0];
		return;
	}
	inner = dims[0];
	inner_step = step[0];
	for (;;) {
		if (inner_step) {
			for (int64_t i = 0; i < inner; i++)
				da[a_off + i] += dy[i];
		} else {
			double s = 0.0;

			for (int64_t i = 0; i < inner; i++)
				s += dy[i];
			da[a_off] += (float)s;
		}
		dy += inner;
		int d = 1;

		for (; d < r; d++) {
			a_off += step[d];
			if (++idx[d] < dims[d])
				break;
			a_off -= step[d] * dims[d];
			idx[d] = 0;
		}
		if (d == r)
			return;
	}
}

void concat_backward_f32__ref(int n_in, float *const *dxs, const int64_t *axis_dims,
			      int64_t outer, int64_t inner, const float *dy)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int t = 0; t < n_in; t++) {
			int64_t len = axis_dims[t] * inner;

			if (dxs[t])
				add_to(len, dy, dxs[t] + o * len);
			dy += len;
		}
	}
}

void softmax_backward_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *y,
			       const float *dy, float *dx)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * dim * inner + i;
			double s = 0.0;

			for (int64_t d = 0; d < dim; d++)
				s += (double)dy[base + d * inner] * y[base + d * inner];
			for (int64_t d = 0; d < dim; d++) {
				int64_t at = base + d * inner;

				dx[at] += y[at] * (dy[at] - (float)s);
			}
		}
	}
}

void logsoftmax_backward_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *y,
				  const float *dy, float *dx)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * dim * inner + i;
			double s = 0.0;

			for (int64_t d = 0; d < dim; d++)
				s += dy[base + d * inner];
			for (int64_t d = 0; d < dim; d++) {
				int64_t at = base + d * inner;

				dx[at] += dy[at] - expf(y[at]) * (float)s;
			}
		}
	}
}

/* ---- BatchNormalization ------------------------------------------------------ */

void batchnorm_train_f32__ref(int n, int c, int64_t inner, const float *x, const float *scale,
			      const float *bias, float epsilon, float *y, float *mean,
			      float *var)
{
	int64_t count = (int64_t)n * inner;

	for (int ch = 0; ch < c; ch++) {
		double s = 0.0, ss = 0.0, mu, v, is;

		for (int64_t ni = 0; ni < n; ni++) {
			const float *xc = x + (ni * c + ch) * inner;

			for (int64_t i = 0; i < inner; i++)
				s += xc[i];
		}
		mu = count ? s / (double)count : 0.0;
		for (int64_t ni = 0; ni < n; ni++) {
			const float *xc = x + (ni * c + ch) * inner;

			for (int64_t i = 0; i < inner; i++)
				ss += ((double)xc[i] - mu) * ((double)xc[i] - mu);
		}
		v = count ? ss / (double)count : 0.0;
		is = 1.0 / sqrt(v + epsilon);
		mean[ch] = (float)mu;
		var[ch] = (float)v;
		{
			float sf = (float)(scale[ch] * is), tf = (float)(bias[ch] - mu * scale[ch] * is);

			for (int64_t ni = 0; ni < n; ni++) {
				const float *restrict xc = x + (ni * c + ch) * inner;
				float *restrict yc = y + (ni * c + ch) * inner;

				for (int64_t i = 0; i < inner; i++)
					yc[i] = xc[i] * sf + tf;
			}
		}
	}
}

void batchnorm_backward_f32__ref(int n, int c, int64_t inner, const float *x,
				 const float *scale, const float *mean, const float *var,
				 float epsilon, bool batch_stats, const float *dy, float *dx,
				 float *dscale, float *dbias)
{
	int64_t count = (int64_t)n * inner;

	for (int ch = 0; ch < c; ch++) {
		double is = 1.0 / sqrt((double)var[ch] + epsilon), mu = mean[ch];
		double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat) */

		for (int64_t ni = 0; ni < n; ni++) {
			const float *xc = x + (ni * c + ch) * inner;
			const float *dyc = dy + (ni * c + ch) * inner;

			for (int64_t i = 0; i < inner; i++) {
				sdy += dyc[i];
				sdyx += (double)dyc[i] * (((double)xc[i] - mu) * is);
			}
		}
		if (dscale)
			dscale[ch] += (float)sdyx;
		if (dbias)
			dbias[ch] += (float)sdy;
		if (!dx)
			continue;
		{
			float k = (float)(scale[ch] * is);
			float m_dy = batch_stats && count ? (float)(sdy / (double)count) : 0.0f;
			float m_dyx = batch_stats && count ? (float)(sdyx / (double)count) : 0.0f;
			float isf = (float)is, muf = (float)mu;

			for (int64_t ni = 0; ni < n; ni++) {
				const float *restrict xc = x + (ni * c + ch) * inner;
				const float *restrict dyc = dy + (ni * c + ch) * inner;
				float *restrict dxc = dx + (ni * c + ch) * inner;

				for (int64_t i = 0; i < inner; i++) {
					float xhat = (xc[i] - muf) * isf;

					dxc[i] += k * (dyc[i] - m_dy - xhat * m_dyx);
				}
			}
		}
	}
}

/* ---- Fake quantization ------------------------------------------------------ */

void fake_quant_act_f32__ref(int64_t count, const float *x, float scale, float inv_scale,
			     int32_t zero, int32_t qmax, float *y)
{
	/* clamp in the quantized domain first (as quant_act_quantize), so the
	 * conversion to an integer is always defined; NaN lands on the bottom */
	float lo = -(float)zero, hi = (float)(qmax - zero);

	for (int64_t i = 0; i < count; i++) {
		float t = x[i] * inv_scale;

		t = t > lo - 1.0f ? t : lo - 1.0f;
		t = t < hi + 1.0f ? t : hi + 1.0f;
		float r = (float)(int32_t)(t + (t >= 0 ? 0.5f : -0.5f));

		r = r < lo ? lo : r > hi ? hi : r;
		y[i] = r * scale;
	}
}

void fake_quant_act_backward_f32__ref(int64_t count, const float *restrict x, float lo,
				      float hi, const float *restrict dy, float *restrict dx)
{
	for (int64_t i = 0; i < count; i++) {
		float xi = x[i], d = dy[i];

		dx[i] += xi >= lo && xi <= hi ? d : 0.0f;
	}
}
