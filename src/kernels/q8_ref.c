/* q8_ref.c - INT8 reference kernels (see kernels_q8.h): the portable oracle.
 *
 * Layout: activations NHWC uint8; the packed GEMM weights are a plain copy of
 * w [n][k] int8 (one row per output channel), the packed depthwise weights a
 * plain copy of w [c][kh][kw] int8, the packed convolution weights a plain
 * copy of w [c_out][kh][kw][c] int8.
 *
 * Every output is computed the obvious way: an int32 sum of exact products,
 * then q8_requant_f32(acc, rq_scale[j], ...) when rq_scale is given, else
 * clamp(q31_requantize(acc, mult, shift) + c_zero, c_min, c_max), or, in
 * float-output mode, (float)acc * deq_scale[j]. The fast paths must reproduce
 * these numbers bit for bit.
 *
 * Overflow: a sum of K <= Q8_K_MAX products is below 255 * 128 * 2^15 < 2^30 in
 * magnitude; adding the bias is done in wrapping (uint32) arithmetic so that an
 * out-of-contract bias gives the same wrapped result as the vector paths
 * rather than undefined behaviour.
 */
#include "kernels/kernels_q8.h"

#include <stdbool.h>
#include <string.h>

/* bias + sum, wrapping modulo 2^32 like vpaddd (GCC converts modulo 2^32). */
static inline int32_t add_wrap(int32_t bias, int32_t sum)
{
	return (int32_t)((uint32_t)bias + (uint32_t)sum);
}

/* clamp(r + c_zero) without int32 overflow. */
static inline uint8_t requant_out(int32_t acc, int32_t mult, int shift, int32_t c_zero,
				  uint8_t c_min, uint8_t c_max)
{
	int64_t v = (int64_t)q31_requantize(acc, mult, shift) + c_zero;
	if (v < c_min)
		v = c_min;
	if (v > c_max)
		v = c_max;
	return (uint8_t)v;
}

/* Output j: float requantization when rq_scale is given, else Q31. */
static inline uint8_t requant_j(int32_t acc, int j, const float *rq_scale, const int32_t *mult,
				const int8_t *shift, int32_t c_zero, uint8_t c_min, uint8_t c_max)
{
	if (rq_scale)
		return (uint8_t)q8_requant_f32(acc, rq_scale[j], c_zero, c_min, c_max);
	return requant_out(acc, mult[j], shift[j], c_zero, c_min, c_max);
}

/* --- GEMM ------------------------------------------------------------------ */

static size_t gemm_packed_bytes(int n, int k)
{
	return (size_t)n * (size_t)k;
}

static void gemm_pack(int n, int k, const int8_t *w, void *packed)
{
	size_t bytes = gemm_packed_bytes(n, k);
	if (bytes)
		memcpy(packed, w, bytes);
}

static void gemm_run(const struct qgemm_params *p, const uint8_t *a, int lda,
		     const void *packed, uint8_t *c, int ldc)
{
	const int8_t *w = packed;
	for (int i = 0; i < p->m; i++) {
		const uint8_t *ai = a + (size_t)i * (size_t)lda;
		for (int j = 0; j < p->n; j++) {
			const int8_t *wj = w + (size_t)j * (size_t)p->k;
			int32_t sum = 0; /* |sum| <= 32640 * K < 2^30 for K <= Q8_K_MAX */
			for (int kk = 0; kk < p->k; kk++)
				sum += (int32_t)ai[kk] * (int32_t)wj[kk];
			int32_t acc = add_wrap(p->bias[j], sum);
			size_t o = (size_t)i * (size_t)ldc + (size_t)j;
			if (p->deq_scale)
				p->c_f32[o] = (float)acc * p->deq_scale[j];
			else
				c[o] = requant_j(acc, j, p->rq_scale, p->mult, p->shift,
						 p->c_zero, p->c_min, p->c_max);
		}
	}
}

const struct qgemm_ukernel qgemm_u8s8__ref = {
	.name = "qgemm_u8s8__ref",
	.packed_bytes = gemm_packed_bytes,
	.pack = gemm_pack,
	.run = gemm_run,
};

void q8_bias_fold(int n, int k, const int8_t *w, const int32_t *bias_q, int32_t a_zero,
		  int32_t *bias_eff)
{
	for (int j = 0; j < n; j++) {
		const int8_t *wj = w + (size_t)j * (size_t)k;
		int64_t sum_w = 0;
		for (int kk = 0; kk < k; kk++)
			sum_w += wj[kk];
		int64_t b = (bias_q ? bias_q[j] : 0) - (int64_t)a_zero * sum_w;
		/* in range for K <= Q8_K_MAX; wraps like the kernels' adds otherwise */
		bias_eff[j] = (int32_t)(uint32_t)(uint64_t)b;
	}
}

/* --- depthwise convolution ------------------------------------------------- */

static size_t dw_packed_bytes(int c, int kh, int kw)
{
	return (size_t)c * (size_t)kh * (size_t)kw;
}

static void dw_pack(int c, int kh, int kw, const int8_t *w, void *packed)
{
	if (dw_packed_bytes(c, kh, kw))
		memcpy(packed, w, dw_packed_bytes(c, kh, kw));
}

static void dw_run(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		   uint8_t *y)
{
	const int8_t *w = packed;
	int taps = p->kh * p->kw;
	for (int img = 0; img < p->n; img++) {
		const uint8_t *xi = x + (size_t)img * p->h_in * p->w_in * p->c;
		for (int oh = 0; oh < p->h_out; oh++) {
			for (int ow = 0; ow < p->w_out; ow++) {
				uint8_t *yo = y + (((size_t)img * p->h_out + oh) * p->w_out + ow) *
							  p->c;
				for (int ch = 0; ch < p->c; ch++) {
					/* |sum| <= 255 * 128 * kh*kw < 2^30 for kh*kw <= Q8_K_MAX */
					int32_t sum = 0;
					for (int ki = 0; ki < p->kh; ki++) {
						int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
						if (ih < 0 || ih >= p->h_in)
							continue;
						for (int kj = 0; kj < p->kw; kj++) {
							int iw = ow * p->stride_w - p->pad_l +
								 kj * p->dil_w;
							if (iw < 0 || iw >= p->w_in)
								continue;
							int32_t xv = xi[((size_t)ih * p->w_in + iw) *
										p->c + ch];
							sum += (xv - p->a_zero) *
							       w[(size_t)ch * taps + ki * p->kw + kj];
						}
					}
					yo[ch] = requant_j(add_wrap(p->bias[ch], sum), ch,
							   p->rq_scale, p->mult, p->shift,
							   p->c_zero, p->c_min, p->c_max);
				}
			}
		}
	}
}

const struct qdwconv_ukernel qdwconv_u8s8__ref = {
	.name = "qdwconv_u8s8__ref",
	.packed_bytes = dw_packed_bytes,
	.pack = dw_pack,
	.run = dw_run,
};

/* --- im2col ------------------------------------------------------------------ */

/* Short copies (a few channels) are cheaper inline than as a libc call; the
 * fixed-size memcpy calls below compile to plain loads and stores (a byte loop
 * would be turned back into a memcpy call by the compiler). */
static inline void copy_small(uint8_t *restrict dst, const uint8_t *restrict src, size_t n)
{
	if (n >= 64) {
		memcpy(dst, src, n);
		return;
	}
	for (; n >= 8; n -= 8, dst += 8, src += 8)
		memcpy(dst, src, 8);
	if (n >= 4) {
		memcpy(dst, src, 4);
		dst += 4;
		src += 4;
		n -= 4;
	}
	switch (n) {
	case 3:
		dst[2] = src[2];
		/* fall through */
	case 2:
		dst[1] = src[1];
		/* fall through */
	case 1:
		dst[0] = src[0];
		/* fall through */
	default:
		break;
	}
}

static inline void fill_small(uint8_t *dst, uint8_t v, size_t n)
{
	if (n >= 64) {
		memset(dst, v, n);
		return;
	}
	uint64_t pattern = 0x0101010101010101ull * v;
	for (; n >= 8; n -= 8, dst += 8)
		memcpy(dst, &pattern, 8);
	for (size_t i = 0; i < n; i++)
		dst[i] = v;
}

void im2col_nhwc_u8(const uint8_t *x, int h_in, int w_in, int c_total, int g, int cg,
		    int h_out, int w_out, int kh, int kw, int sh, int sw, int pt, int pl, int dh,
		    int dw, uint8_t pad_value, uint8_t *rows)
{
	size_t row_bytes = (size_t)kh * kw * cg;
	/* with one group and no dilation, a kernel row's taps are contiguous in x */
	bool runs = dw == 1 && cg == c_total;
	for (int oh = 0; oh < h_out; oh++) {
		for (int ow = 0; ow < w_out; ow++) {
			uint8_t *row = rows + ((size_t)oh * w_out + ow) * row_bytes;
			int iw0 = ow * sw - pl, ih0 = oh * sh - pt;
			if (runs && iw0 >= 0 && iw0 + kw <= w_in && ih0 >= 0 &&
			    ih0 + (kh - 1) * dh < h_in) {
				/* the whole window is inside: kh contiguous runs */
				size_t run = (size_t)kw * cg;
				const uint8_t *src = x + ((size_t)ih0 * w_in + iw0) * c_total;
				for (int ki = 0; ki < kh; ki++)
					copy_small(row + ki * run, src + (size_t)ki * dh * w_in * c_total, run);
				continue;
			}
			for (int ki = 0; ki < kh; ki++) {
				int ih = oh * sh - pt + ki * dh;
				uint8_t *dst = row + (size_t)ki * kw * cg;
				if (ih < 0 || ih >= h_in) {
					fill_small(dst, pad_value, (size_t)kw * cg);
					continue;
				}
				const uint8_t *src_row = x + (size_t)ih * w_in * c_total + (size_t)g * cg;
				if (runs) {
					/* taps [lo, hi) fall inside the input row */
					int lo = iw0 < 0 ? -iw0 : 0;
					int hi = w_in - iw0 < kw ? w_in - iw0 : kw;
					if (lo > kw)
						lo = kw;
					if (hi < lo)
						hi = lo;
					fill_small(dst, pad_value, (size_t)lo * cg);
					copy_small(dst + (size_t)lo * cg, src_row + (size_t)(iw0 + lo) * c_total,
						   (size_t)(hi - lo) * cg);
					fill_small(dst + (size_t)hi * cg, pad_value, (size_t)(kw - hi) * cg);
					continue;
				}
				for (int kj = 0; kj < kw; kj++) {
					int iw = iw0 + kj * dw;
					if (iw < 0 || iw >= w_in)
						fill_small(dst + (size_t)kj * cg, pad_value, (size_t)cg);
					else
						copy_small(dst + (size_t)kj * cg, src_row + (size_t)iw * c_total,
							   (size_t)cg);
				}
			}
		}
	}
}

/* --- convolution (one group) ------------------------------------------------ */

static size_t conv_packed_bytes(int c_out, int kh, int kw, int c)
{
	return (size_t)c_out * (size_t)kh * (size_t)kw * (size_t)c;
}

static void conv_pack(int c_out, int kh, int kw, int c, const int8_t *w, void *packed)
{
	size_t bytes = conv_packed_bytes(c_out, kh, kw, c);
	if (bytes)
		memcpy(packed, w, bytes);
}

static size_t conv_work_bytes(const struct qconv_params *p)
{
	return (size_t)p->kh * p->kw * p->c;
}

/* Per output pixel: its receptive field (a_zero outside the input) into
 * work, [kh][kw][c] like a row of w, then one dot product per channel. */
static void conv_run(const struct qconv_params *p, const uint8_t *x, const void *packed,
		     uint8_t *y)
{
	const int8_t *w = packed;
	size_t k = (size_t)p->kh * p->kw * p->c;
	uint8_t *field = p->work;
	for (int img = 0; img < p->n; img++)
		for (int oh = 0; oh < p->h_out; oh++)
			for (int ow = 0; ow < p->w_out; ow++) {
				for (int ki = 0; ki < p->kh; ki++) {
					int ih = oh * p->stride_h - p->pad_t + ki * p->dil_h;
					for (int kj = 0; kj < p->kw; kj++) {
						int iw = ow * p->stride_w - p->pad_l + kj * p->dil_w;
						uint8_t *dst = field + ((size_t)ki * p->kw + kj) * p->c;
						if (ih >= 0 && ih < p->h_in && iw >= 0 && iw < p->w_in)
							copy_small(dst, x + (((size_t)img * p->h_in + ih) *
										     p->w_in + iw) * p->c,
								   (size_t)p->c);
						else
							fill_small(dst, p->a_zero, (size_t)p->c);
					}
				}
				uint8_t *yo = y + (((size_t)img * p->h_out + oh) * p->w_out + ow) *
							  p->c_out;
				for (int j = 0; j < p->c_out; j++) {
					const int8_t *wj = w + (size_t)j * k;
					int32_t sum = 0; /* |sum| <= 32640 * K < 2^30 for K <= Q8_K_MAX */
					for (size_t kk = 0; kk < k; kk++)
						sum += (int32_t)field[kk] * (int32_t)wj[kk];
					yo[j] = requant_j(add_wrap(p->bias[j], sum), j, p->rq_scale,
							  p->mult, p->shift, p->c_zero, p->c_min,
							  p->c_max);
				}
			}
}

const struct qconv_ukernel qconv_u8s8__ref = {
	.name = "qconv_u8s8__ref",
	.packed_bytes = conv_packed_bytes,
	.pack = conv_pack,
	.work_bytes = conv_work_bytes,
	.run = conv_run,
};

/* --- Add, Mul, table lookup -------------------------------------------------- */

void qadd_u8__ref(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		  uint8_t *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = q8_add_f32(a[i], b[i], p);
}

void qmul_u8__ref(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		  uint8_t *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = q8_mul(a[i], b[i], p);
}

void qmul_rows_u8__ref(size_t rows, size_t c, const uint8_t *a, const uint8_t *gate,
		       const struct qmul_params *p, uint8_t *y)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t ch = 0; ch < c; ch++)
			y[r * c + ch] = q8_mul(a[r * c + ch], gate[ch], p);
}

void qsum_pixels_u8__ref(size_t hw, size_t c, size_t stride, const uint8_t *x, uint32_t *sum)
{
	for (size_t ch = 0; ch < c; ch++)
		sum[ch] = 0;
	for (size_t px = 0; px < hw; px++)
		for (size_t ch = 0; ch < c; ch++)
			sum[ch] += x[px * stride + ch];
}

void qlut_u8__ref(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = table[x[i]];
}

void qmaxpool2_u8__ref(int n, int h, int w, int c, const uint8_t *x, uint8_t *y)
{
	int ho = h / 2, wo = w / 2;
	size_t row = (size_t)w * c;
	for (int img = 0; img < n; img++)
		for (int oh = 0; oh < ho; oh++)
			for (int ow = 0; ow < wo; ow++)
				for (int ch = 0; ch < c; ch++) {
					const uint8_t *px = x + ((size_t)img * h + 2 * oh) * row +
							    (size_t)2 * ow * c + ch;
					uint8_t a = px[0] > px[c] ? px[0] : px[c];
					uint8_t b = px[row] > px[row + c] ? px[row] : px[row + c];
					*y++ = a > b ? a : b;
				}
}

/* --- MatMul of two uint8 activations ----------------------------------------- */

static size_t matmul_work_bytes(int k, int n)
{
	(void)k;
	(void)n;
	return 0;
}

static void matmul_run(const struct qmatmul_params *p, const uint8_t *a, int lda,
		       const uint8_t *b, int ldb, uint8_t *c, int ldc, void *work)
{
	(void)work;
	for (int i = 0; i < p->m; i++) {
		const uint8_t *ai = a + (size_t)i * (size_t)lda;
		for (int j = 0; j < p->n; j++) {
			/* |acc| <= 65025 * K < 2^31 for K <= Q8_K_MAX */
			int32_t acc = 0;
			size_t bj = p->b_trans ? (size_t)j * (size_t)ldb : (size_t)j;
			size_t bk = p->b_trans ? 1 : (size_t)ldb;
			for (int kk = 0; kk < p->k; kk++)
				acc += ((int32_t)ai[kk] - p->a_zero) *
				       ((int32_t)b[bj + (size_t)kk * bk] - p->b_zero);
			c[(size_t)i * (size_t)ldc + (size_t)j] = q8_matmul_requant(acc, p);
		}
	}
}

const struct qmatmul_ukernel qmatmul_u8u8__ref = {
	.name = "qmatmul_u8u8__ref",
	.work_bytes = matmul_work_bytes,
	.run = matmul_run,
};

/* --- Softmax, LayerNormalization, Transpose ------------------------------------ */

static inline uint8_t clamp_round(float f, uint8_t c_min, uint8_t c_max)
{
	f = f > (float)c_min ? f : (float)c_min;
	f = f < (float)c_max ? f : (float)c_max;
	return (uint8_t)lrintf(f);
}

float q8_softmax_row_prep(const uint8_t *x, size_t n, const struct qsoftmax_params *p,
			  uint8_t *max_code)
{
	uint8_t mx = 0;
	for (size_t i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	/* >= exp_table[0] = 1 (the row's max), summed in an order 16-lane code
	 * reproduces: lane j adds x[j], x[j + 16], ... in index order, then the
	 * lanes pairwise, (j, j + 8), (j, j + 4), (j, j + 2), (j, j + 1) */
	float part[16] = {0};
	for (size_t i = 0; i < n; i++)
		part[i % 16] += p->exp_table[mx - x[i]];
	for (int w = 8; w >= 1; w /= 2)
		for (int j = 0; j < w; j++)
			part[j] += part[j + w];
	*max_code = mx;
	return p->inv_out_scale / part[0];
}

void qsoftmax_u8__ref(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
		      uint8_t *y)
{
	for (size_t r = 0; r < rows; r++) {
		const uint8_t *xr = x + r * n;
		uint8_t *yr = y + r * n, mx;
		float inv = q8_softmax_row_prep(xr, n, p, &mx);
		for (size_t i = 0; i < n; i++)
			yr[i] = clamp_round(fmaf(p->exp_table[mx - xr[i]], inv, (float)p->c_zero),
					    p->c_min, p->c_max);
	}
}

float q8_layernorm_row_prep(const uint8_t *x, size_t n, const struct qlayernorm_params *p,
			    float *mean)
{
	/* S2 <= 65025 n and n S2 <= 65025 n^2: exact in int64 for n < 2^31 */
	int64_t s1 = 0, s2 = 0;
	for (size_t i = 0; i < n; i++) {
		s1 += x[i];
		s2 += (int64_t)x[i] * x[i];
	}
	return q8_layernorm_from_sums(s1, s2, n, p, mean);
}

float q8_layernorm_from_sums(int64_t s1, int64_t s2, size_t n, const struct qlayernorm_params *p,
			     float *mean)
{
	double nn = (double)n;
	double var_codes = n ? (double)((int64_t)n * s2 - s1 * s1) / (nn * nn) : 0.0;
	double s = p->in_scale;
	double var = s * s * var_codes;
	*mean = n ? (float)((double)s1 / nn) : 0.0f;
	return (float)(s / sqrt(var + (double)p->epsilon));
}

void qlayernorm_u8__ref(size_t rows, size_t n, const uint8_t *x,
			const struct qlayernorm_params *p, uint8_t *y)
{
	for (size_t r = 0; r < rows; r++) {
		const uint8_t *xr = x + r * n;
		uint8_t *yr = y + r * n;
		float mean, a = q8_layernorm_row_prep(xr, n, p, &mean);
		for (size_t i = 0; i < n; i++) {
			float d = ((float)xr[i] - mean) * a;
			yr[i] = clamp_round(fmaf(d, p->gamma_q[i], p->beta_q[i]), p->c_min, p->c_max);
		}
	}
}

void transpose_u8__ref(int rank, const int64_t *x_dims, const int64_t *perm, const uint8_t *x,
		       uint8_t *y)
{
	/* y's axis i walks x with x's stride of axis perm[i]; an odometer over y */
	int64_t x_stride[8], y_dims[8], step[8], idx[8] = {0};
	int64_t total = 1, s = 1;
	for (int i = rank - 1; i >= 0; i--) {
		x_stride[i] = s;
		s *= x_dims[i];
	}
	for (int i = 0; i < rank; i++) {
		y_dims[i] = x_dims[perm[i]];
		step[i] = x_stride[perm[i]];
		total *= y_dims[i];
	}
	if (total == 0)
		return;
	if (rank == 0) {
		y[0] = x[0];
		return;
	}
	int last = rank - 1;
	int64_t off = 0;
	for (int64_t o = 0; o < total; o += y_dims[last]) {
		const uint8_t *src = x + off;
		if (step[last] == 1) /* the last axis stays last: a row copy */
			for (int64_t j = 0; j < y_dims[last]; j++)
				y[o + j] = src[j];
		else
			for (int64_t j = 0; j < y_dims[last]; j++)
				y[o + j] = src[j * step[last]];
		for (int d = last - 1; d >= 0; d--) {
			off += step[d];
			if (++idx[d] < y_dims[d])
				break;
			off -= step[d] * y_dims[d];
			idx[d] = 0;
		}
	}
}

void qquant_f32_u8__ref(size_t n, const float *x, const struct qquant_params *p, uint8_t *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = q8_quantize_f32(x[i], p);
}
