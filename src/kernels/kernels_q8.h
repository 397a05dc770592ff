/* kernels_q8.h - INT8 kernels: uint8 activations x int8 weights -> int32 -> uint8.
 *
 * Quantization follows TFLite's integer scheme: an activation tensor is uint8 with
 * real = scale * (q - zero_point); weights are int8, symmetric per output channel
 * (zero point 0). A layer accumulates in int32:
 *     acc[n] = bias_eff[n] + sum_k a[k] * w[n][k]
 * where bias_eff[n] = bias_q[n] - a_zero * sum_k w[n][k] is folded at prepare time
 * (so kernels never subtract the activation zero point inside the inner loop),
 * then requantizes with a Q31 fixed-point multiplier and shift per output channel
 * (gemmlowp rounding), adds the output zero point and clamps to [c_min, c_max]
 * (fused ReLU / ReLU6 and narrower activation ranges are just tighter clamps).
 *
 * Overflow: |a*w| <= 255*128 = 32640 and 32640 * 2^15 < 2^30, so for K <= Q8_K_MAX
 * the sum of products and bias_q (bounded by 2^30) add up to less than 2^31;
 * callers check K (and kh*kw for depthwise) at prepare. bias_eff itself is also
 * below 2^31 in magnitude, and the fast paths add in wrapping int32 arithmetic,
 * so any order of summation gives the exact acc.
 *
 * Layouts: activations are NHWC (channels innermost); a GEMM's A is [m][lda] u8
 * (one row per output pixel), its C is [m][ldc]. Weights are given to pack()
 * as [n][k] int8 (one row per output channel); each implementation packs them
 * into its own layout once, at prepare time. Kernels never allocate.
 *
 * Requantization comes in two forms, chosen per call: float (q8_requant_f32,
 * the engine's default: one fused multiply-add and a round, cheaper in
 * vector code than the Q31 steps) or TFLite's Q31 fixed point (q31_requantize,
 * bit-exact with TFLite and gemmlowp). The two differ by at most 1 and only
 * where the exact value lies within about 2^-14 of a rounding boundary.
 *
 * Every path (reference, AVX2, AVX-512 VNNI) gives bit-identical results in
 * either form: the int32 sums are exact, and requantization is one of the
 * functions below, whose float operations (each rounded to nearest even, the
 * multiply-add fused on every path) every path performs in the same order.
 */
#ifndef PRESSO_KERNELS_Q8_H
#define PRESSO_KERNELS_Q8_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest K (GEMM) or kh*kw (depthwise) whose int32 accumulation is exact. */
#define Q8_K_MAX 32768

/* --- requantization (shared by every path, so results are identical) ------ */

/* round(a * b / 2^31) with a and b Q31, saturating the one overflow case.
 * Ties round toward +infinity: for every a, b but the saturating pair this is
 * floor((a*b + 2^30) / 2^31), the form the vector paths compute. */
static inline int32_t q31_mul_high(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	int64_t ab = (int64_t)a * (int64_t)b;
	int64_t nudge = ab >= 0 ? (1ll << 30) : (1 - (1ll << 30));
	return (int32_t)((ab + nudge) / (1ll << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero (gemmlowp). */
static inline int32_t q31_round_shift_right(int32_t x, int exponent)
{
	int32_t mask = (int32_t)((1ll << exponent) - 1);
	int32_t remainder = x & mask;
	int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
	return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* acc * real_multiplier, where real_multiplier = mult / 2^31 * 2^shift
 * (mult in [2^30, 2^31), shift in [-31, 30]). A GEMM or depthwise output is
 * clamp(q31_requantize(acc, mult, shift) + c_zero, c_min, c_max), the addition
 * taken without int32 overflow (c_zero is a uint8 zero point, 0..255). */
static inline int32_t q31_requantize(int32_t acc, int32_t mult, int shift)
{
	int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
	int64_t shifted = (int64_t)acc * ((int64_t)1 << left);
	if (shifted > INT32_MAX)
		shifted = INT32_MAX;
	if (shifted < INT32_MIN)
		shifted = INT32_MIN;
	return q31_round_shift_right(q31_mul_high((int32_t)shifted, mult), right);
}

/* clamp(round(acc * scale + c_zero), c_min, c_max) in binary32: acc converted
 * to float (rounded to nearest even), one fused multiply-add (a single
 * rounding), the clamp in float (the bounds are integers, so clamping before
 * the rounding is clamping after it), then rounded to nearest even. scale is
 * the layer's real multiplier s_in * s_w / s_out rounded to float. This is
 * what the float form of requantization computes on every path. */
static inline int32_t q8_requant_f32(int32_t acc, float scale, int32_t c_zero, uint8_t c_min,
				     uint8_t c_max)
{
	float f = fmaf((float)acc, scale, (float)c_zero);
	f = f > (float)c_min ? f : (float)c_min;
	f = f < (float)c_max ? f : (float)c_max;
	return (int32_t)lrintf(f);
}

/* --- GEMM ------------------------------------------------------------------ */

struct qgemm_params {
	int m, n, k;
	const int32_t *bias;    /* [n] bias_eff (see above) */
	const int32_t *mult;    /* [n] Q31 multipliers */
	const int8_t *shift;    /* [n] exponents */
	const float *rq_scale;  /* [n]: when non-NULL, requantize in float
				   (q8_requant_f32) with these; mult and shift
				   may then be NULL */
	int32_t c_zero;         /* output zero point */
	uint8_t c_min, c_max;   /* output clamp */
	const float *deq_scale; /* [n]: when non-NULL, write float acc * deq_scale[n]
				   into c_f32 instead of requantizing (the last layer) */
	float *c_f32;           /* [m][ldc] when deq_scale is set */
};

/* pack() writes packed_bytes(n, k) bytes (any alignment; 64 is best) once at
 * prepare time; run() reads a [m][lda] (only the first k bytes of each row),
 * writes the first n entries of each row of c (or c_f32, and then c may be
 * NULL) and nothing else. m, n or k may be 0 (k = 0: acc = bias). */
struct qgemm_ukernel {
	const char *name;                                   /* "qgemm_u8s8__ref" */
	size_t (*packed_bytes)(int n, int k);
	void (*pack)(int n, int k, const int8_t *w, void *packed); /* w is [n][k] */
	void (*run)(const struct qgemm_params *p, const uint8_t *a, int lda,
		    const void *packed, uint8_t *c, int ldc);
	/* Optional (NULL: packed_bytes(n, k)): the bytes pack() writes for these
	 * weights, at most packed_bytes(n, k). A kernel that picks its layout
	 * from the values (qgemm_u8s4: weights in [-8, 7] two to a byte) needs
	 * fewer for some; callers that keep the packing resident allocate this. */
	size_t (*packed_bytes_for)(int n, int k, const int8_t *w);
};

/* bias_eff[j] = bias_q[j] - a_zero * sum_k w[j][k] for w [n][k] (bias_q may be
 * NULL for zeros): the fold every qgemm path expects in qgemm_params.bias. */
void q8_bias_fold(int n, int k, const int8_t *w, const int32_t *bias_q, int32_t a_zero,
		  int32_t *bias_eff);

/* --- depthwise convolution (NHWC) ------------------------------------------ */

struct qdwconv_params {
	int n, h_in, w_in, c;
	int h_out, w_out;
	int kh, kw, stride_h, stride_w, pad_t, pad_l, dil_h, dil_w;
	int32_t a_zero;         /* input zero point: padding reads as a_zero */
	const int32_t *bias;    /* [c] bias_q (NOT zero-point corrected) */
	const int32_t *mult;
	const int8_t *shift;
	const float *rq_scale;  /* as in qgemm_params */
	int32_t c_zero;
	uint8_t c_min, c_max;
};

/* x is [n][h_in][w_in][c], y is [n][h_out][w_out][c]; y is computed as
 * acc[c] = bias[c] + sum over taps inside the input of (x - a_zero) * w[c][ki][kj],
 * then requantized like the GEMM. */
struct qdwconv_ukernel {
	const char *name;
	size_t (*packed_bytes)(int c, int kh, int kw);
	void (*pack)(int c, int kh, int kw, const int8_t *w, void *packed); /* w is [c][kh][kw] */
	void (*run)(const struct qdwconv_params *p, const uint8_t *x, const void *packed,
		    uint8_t *y);
};

/* --- convolution (NHWC, one group) without im2col ---------------------------- */

/* y = conv(x, w) for one group: output pixel (img, oh, ow), channel j:
 * acc = bias[j] + sum over ki, kj, c of x[img, ih, iw, c] * w[j][ki][kj][c],
 * ih = oh*stride_h - pad_t + ki*dil_h, iw = ow*stride_w - pad_l + kj*dil_w,
 * where a tap outside the input reads a_zero; then requantized like the GEMM.
 * bias is bias_eff, folded from the same w as the GEMM's (q8_bias_fold with
 * k = kh*kw*c), so this equals im2col_nhwc_u8 (pad a_zero) + qgemm exactly. */
struct qconv_params {
	int n, h_in, w_in, c;          /* x is [n][h_in][w_in][c] */
	int h_out, w_out, c_out;       /* y is [n][h_out][w_out][c_out] */
	int kh, kw, stride_h, stride_w, pad_t, pad_l, dil_h, dil_w;
	uint8_t a_zero;                /* input zero point: what padding reads */
	const int32_t *bias;           /* [c_out] bias_eff */
	const int32_t *mult;           /* [c_out] Q31 multipliers */
	const int8_t *shift;           /* [c_out] exponents */
	const float *rq_scale;         /* as in qgemm_params */
	int32_t c_zero;
	uint8_t c_min, c_max;
	uint8_t *work;                 /* work_bytes(p) bytes of scratch */
};

/* The implementation packs w [c_out][kh][kw][c] once (any alignment; 64 is
 * best) and owns its layout; run() writes all of y and reads x only inside
 * the input. Kernels never allocate: the caller passes work. */
struct qconv_ukernel {
	const char *name;
	size_t (*packed_bytes)(int c_out, int kh, int kw, int c);
	void (*pack)(int c_out, int kh, int kw, int c, const int8_t *w, void *packed);
	/* scratch for run() on p's shapes (its n, pointers and quantization unread) */
	size_t (*work_bytes)(const struct qconv_params *p);
	void (*run)(const struct qconv_params *p, const uint8_t *x, const void *packed,
		    uint8_t *y);
	/* Optional (NULL: packed_bytes): the bytes pack() writes for these
	 * weights, as struct qgemm_ukernel's */
	size_t (*packed_bytes_for)(int c_out, int kh, int kw, int c, const int8_t *w);
};

/* --- elementwise Add of two uint8 tensors -------------------------------------- */

/* The float form of Add: each input to the output's scale, summed, rounded
 * (ONNX Runtime's QLinearAdd computes the same in float). The Q31 form is
 * TFLite's integer Add, which the engine tabulates (256 x 256 bytes). */
struct qadd_params {
	int32_t a_zero, b_zero, c_zero;
	float a_scale, b_scale; /* s_a / s_c and s_b / s_c, rounded to float */
	uint8_t c_min, c_max;
};

/* (a - a_zero) * a_scale + (b - b_zero) * b_scale, each product and the sum
 * rounded to float, then clamped and rounded like q8_requant_f32. */
static inline uint8_t q8_add_f32(uint8_t a, uint8_t b, const struct qadd_params *p)
{
	float fa = (float)((int32_t)a - p->a_zero) * p->a_scale;
	float fb = (float)((int32_t)b - p->b_zero) * p->b_scale;
	float f = fa + fb;
	float lo = (float)((int32_t)p->c_min - p->c_zero), hi = (float)((int32_t)p->c_max - p->c_zero);
	f = f > lo ? f : lo;
	f = f < hi ? f : hi;
	return (uint8_t)((int32_t)lrintf(f) + p->c_zero);
}

/* y[i] = q8_add_f32(a[i], b[i]) for i < n (y may be a or b). */
typedef void (*qadd_fn)(size_t n, const uint8_t *a, const uint8_t *b,
			const struct qadd_params *p, uint8_t *y);

/* --- element-wise functions of one uint8 tensor: a 256-entry table --------------- */

/* y[i] = table[x[i]] for i < n (y may be x). The INT8 engine tabulates an
 * element-wise function of one quantized tensor (Sigmoid, HardSwish, Erf, a
 * Mul by a constant, ...) once at build time, over the 256 input codes:
 * dequantize with the input's scale and zero point, the FP32 function,
 * quantize with the output's, as TFLite does for its table-driven
 * activations. Any table is exact: every path gives the same bytes. */
typedef void (*qlut_fn)(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y);

/* --- 2x2 max pooling with stride 2 (NHWC) ---------------------------------------- */

/* y[img][oh][ow][ch] = the largest of x[img][2oh + i][2ow + j][ch], i, j in {0, 1},
 * for x [n][h][w][c] and y [n][h/2][w/2][c] (an odd last row or column of x is
 * not read): MaxPool with a 2x2 kernel, strides 2 and no padding, whose
 * windows all lie inside the input. A maximum is exact: every path gives the
 * same bytes. */
typedef void (*qmaxpool2_fn)(int n, int h, int w, int c, const uint8_t *x, uint8_t *y);

/* --- elementwise Mul of two uint8 tensors --------------------------------------- */

/* TFLite's integer Mul: acc = (a - a_zero) * (b - b_zero), exact in int32
 * (|acc| <= 255 * 255 < 2^24, so exact in float too), requantized with the
 * real multiplier s_a * s_b / s_c like a GEMM output: in float
 * (q8_requant_f32 with scale) or, with q31 set, TFLite's fixed point (mult,
 * shift). */
struct qmul_params {
	int32_t a_zero, b_zero, c_zero;
	float scale;            /* s_a * s_b / s_c rounded to float */
	int32_t mult;           /* the same as a Q31 multiplier and shift */
	int8_t shift;
	bool q31;
	uint8_t c_min, c_max;
};

static inline uint8_t q8_mul(uint8_t a, uint8_t b, const struct qmul_params *p)
{
	int32_t acc = ((int32_t)a - p->a_zero) * ((int32_t)b - p->b_zero);
	if (!p->q31)
		return (uint8_t)q8_requant_f32(acc, p->scale, p->c_zero, p->c_min, p->c_max);
	int64_t v = (int64_t)q31_requantize(acc, p->mult, p->shift) + p->c_zero;
	return (uint8_t)(v < p->c_min ? p->c_min : v > p->c_max ? p->c_max : v);
}

/* y[i] = q8_mul(a[i], b[i]) for i < n (y may be a or b). */
typedef void (*qmul_fn)(size_t n, const uint8_t *a, const uint8_t *b,
			const struct qmul_params *p, uint8_t *y);

/* y[r * c + ch] = q8_mul(a[r * c + ch], gate[ch], p) for r < rows, ch < c: a
 * Mul of [rows][c] by a per-channel gate (squeeze-excite; y may be a). */
typedef void (*qmul_rows_fn)(size_t rows, size_t c, const uint8_t *a, const uint8_t *gate,
			     const struct qmul_params *p, uint8_t *y);

/* --- per-channel sums over pixels (GlobalAveragePool) ----------------------------- */

/* sum[ch] = the sum over p < hw of x[p * stride + ch], for ch < c: a GAP's
 * numerators, exact for hw < 2^24 (so every path gives the same). */
typedef void (*qsum_pixels_fn)(size_t hw, size_t c, size_t stride, const uint8_t *x,
			       uint32_t *sum);

/* --- quantizing a float tensor (the engine's inputs and fallback outputs) -------- */

/* An activation's quantization as the kernels see it: q in [0, 2^bits - 1],
 * real = (q - zero) / inv_scale. */
struct qquant_params {
	float inv_scale;
	int32_t zero;
	int bits;               /* 2..8 */
};

/* x * inv_scale (rounded to float), clamped in float to one step beyond the
 * range (so the conversion is always defined; NaN lands on the low bound),
 * rounded half away from zero as trunc(t +- 0.5) in float, plus zero, clamped
 * to [0, 2^bits - 1]: quant_act_quantize() (quant/quant.h) step for step. */
static inline uint8_t q8_quantize_f32(float x, const struct qquant_params *p)
{
	float t = x * p->inv_scale;
	float qmax = (float)((1 << p->bits) - 1);
	float lo = -(float)p->zero - 1.0f, hi = qmax - (float)p->zero + 1.0f;
	t = t > lo ? t : lo;
	t = t < hi ? t : hi;
	int32_t r = (int32_t)(t + (t >= 0 ? 0.5f : -0.5f)) + p->zero;
	return (uint8_t)(r < 0 ? 0 : r > (int32_t)qmax ? (int32_t)qmax : r);
}

/* y[i] = q8_quantize_f32(x[i]) for i < n. */
typedef void (*qquant_fn)(size_t n, const float *x, const struct qquant_params *p, uint8_t *y);

/* --- im2col (NHWC) for the GEMM-based convolution --------------------------- */

/* Writes one row per output pixel of image img for channel group g:
 * row[(ki*kw + kj)*cg + c] = x[img, oh*sh - pt + ki*dh, ow*sw - pl + kj*dw, g*cg + c],
 * or pad_value outside the input. rows is [h_out*w_out][kh*kw*cg]. */
void im2col_nhwc_u8(const uint8_t *x, int h_in, int w_in, int c_total, int g, int cg,
		    int h_out, int w_out, int kh, int kw, int sh, int sw, int pt, int pl, int dh,
		    int dw, uint8_t pad_value, uint8_t *rows);

/* --- the paths ---------------------------------------------------------------- */

enum q8_isa { Q8_ISA_REF, Q8_ISA_AVX2, Q8_ISA_AVX512VNNI, Q8_ISA_COUNT };

extern const struct qgemm_ukernel qgemm_u8s8__ref;
extern const struct qdwconv_ukernel qdwconv_u8s8__ref;
extern const struct qconv_ukernel qconv_u8s8__ref;
/* Defined in x86-64 builds only; reach them through q8_gemm_for()/q8_dwconv_for(),
 * which also checks that the CPU has them. */
extern const struct qgemm_ukernel qgemm_u8s8_3x8c8__avx2;
extern const struct qdwconv_ukernel qdwconv_u8s8_32c__avx2;
extern const struct qgemm_ukernel qgemm_u8s8_8x32__avx512vnni;
/* The same GEMM with weights in [-8, 7] (4-bit policies) kept two to a byte,
 * expanded in registers: pack() picks, from the values and the shape, the
 * nibble layout or qgemm_u8s8_8x32's, and records which in the packed bytes,
 * which run() reads (q8_avx512vnni_w4.c). */
extern const struct qgemm_ukernel qgemm_u8s4_8x32__avx512vnni;
extern const struct qdwconv_ukernel qdwconv_u8s8_64c__avx512vnni;
extern const struct qconv_ukernel qconv_u8s8_8x32__avx512vnni;
/* The avx512vnni path's convolution with weights in [-8, 7] kept two to a
 * byte (except single-channel inputs): expanded to int8 once per call in the
 * scratch, then run as the int8 one (q8_avx512vnni_w4conv.c). */
extern const struct qconv_ukernel qconv_u8s4_8x32__avx512vnni;
/* The avx512vnni path's conv where the CPU has AVX-512 VBMI too: single-channel
 * inputs (first layers) with vpermt2b, everything else as qconv_u8s8_8x32. */
extern const struct qconv_ukernel qconv_u8s8_c1x16__avx512vbmi;
void qadd_u8__ref(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		  uint8_t *y);
void qadd_u8__avx2(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		   uint8_t *y);
void qadd_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b, const struct qadd_params *p,
		     uint8_t *y);
void qadd_u8__avx512vbmi(size_t n, const uint8_t *a, const uint8_t *b,
			 const struct qadd_params *p, uint8_t *y);
void qlut_u8__ref(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y);
void qlut_u8__avx2(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y);
/* AVX-512 VBMI (vpermi2b): the table path of avx512vnni CPUs that have VBMI */
void qlut_u8__avx512vbmi(size_t n, const uint8_t *x, const uint8_t *table, uint8_t *y);
void qmaxpool2_u8__ref(int n, int h, int w, int c, const uint8_t *x, uint8_t *y);
/* AVX-512 VBMI: an output row's pixels, up to 64 bytes at a time, picked by one
 * vpermt2b from the byte-wise maxima of the 2x2 windows */
void qmaxpool2_u8__avx512vbmi(int n, int h, int w, int c, const uint8_t *x, uint8_t *y);
void qmul_u8__ref(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		  uint8_t *y);
void qmul_u8__avx2(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		   uint8_t *y);
void qmul_u8__avx512(size_t n, const uint8_t *a, const uint8_t *b, const struct qmul_params *p,
		     uint8_t *y);
void qmul_rows_u8__ref(size_t rows, size_t c, const uint8_t *a, const uint8_t *gate,
		       const struct qmul_params *p, uint8_t *y);
void qmul_rows_u8__avx512(size_t rows, size_t c, const uint8_t *a, const uint8_t *gate,
			  const struct qmul_params *p, uint8_t *y);
void qsum_pixels_u8__ref(size_t hw, size_t c, size_t stride, const uint8_t *x, uint32_t *sum);
void qsum_pixels_u8__avx512(size_t hw, size_t c, size_t stride, const uint8_t *x, uint32_t *sum);

void qquant_f32_u8__ref(size_t n, const float *x, const struct qquant_params *p, uint8_t *y);
void qquant_f32_u8__avx512(size_t n, const float *x, const struct qquant_params *p, uint8_t *y);

/* The kernels of one path; NULL if this build or CPU lacks it. q8_conv_for()
 * is also NULL for a path without a convolution kernel (AVX2): its callers
 * convolve with im2col_nhwc_u8 and that path's GEMM instead.
 * The avx512vnni path's conv is qconv_u8s8_c1x16__avx512vbmi where the CPU has
 * AVX-512 VBMI. */
const struct qgemm_ukernel *q8_gemm_for(enum q8_isa isa);
/* The path's GEMM that keeps weights in [-8, 7] two to a byte where it can
 * (qgemm_u8s4_8x32__avx512vnni, deciding per packed matrix); NULL for a path
 * without one (ref, avx2) or this build or CPU lacking the path. */
const struct qgemm_ukernel *q8_gemm_s4_for(enum q8_isa isa);
const struct qdwconv_ukernel *q8_dwconv_for(enum q8_isa isa);
const struct qconv_ukernel *q8_conv_for(enum q8_isa isa);
/* The path's convolution that keeps weights in [-8, 7] two to a byte
 * (qconv_u8s4_8x32__avx512vnni), NULL as q8_gemm_s4_for. */
const struct qconv_ukernel *q8_conv_s4_for(enum q8_isa isa);
qadd_fn q8_add_for(enum q8_isa isa);
/* The table lookup of a path: the avx512vnni path's is VBMI's vpermi2b where
 * the CPU has AVX-512 VBMI, else AVX2's. */
qlut_fn q8_lut_for(enum q8_isa isa);
qmul_fn q8_mul_for(enum q8_isa isa);
/* The gate Mul and the pixel sums of a path (AVX2 uses the reference's). */
qmul_rows_fn q8_mul_rows_for(enum q8_isa isa);
qsum_pixels_fn q8_sum_pixels_for(enum q8_isa isa);
/* The 2x2 max pooling of a path: the reference's for the reference path, VBMI's
 * for the avx512vnni path where the CPU has AVX-512 VBMI; NULL otherwise (the
 * engine then pools with its own loops). */
qmaxpool2_fn q8_maxpool2_for(enum q8_isa isa);
/* The float-to-uint8 quantizer of a path (AVX2 uses the reference's). */
qquant_fn q8_quant_for(enum q8_isa isa);

/* The best path this CPU supports (CPUID + XGETBV), or the one forced with the
 * environment variable PRESSO_ISA=ref|avx2|avx512vnni (an unknown or unsupported
 * value falls back to the best path with a warning on stderr, once). */
enum q8_isa q8_isa_best(void);
const char *q8_isa_name(enum q8_isa isa);
bool q8_isa_supported(enum q8_isa isa);

/* --- MatMul of two uint8 activations ------------------------------------------- */

/* C = A B for A [m][k] and B [k][n], both uint8 activations with their own
 * scale and zero point (attention's q.k^T and attn.v): per output
 *     acc = sum_k (a[i][k] - a_zero) * (b[k][j] - b_zero)
 * then requantized with the real multiplier s_a * s_b / s_c, in float
 * (q8_requant_f32 with rq_scale) or, with q31 set, Q31 (mult, shift), as a
 * GEMM output. Overflow: |(a - a_zero)(b - b_zero)| <= 255^2 = 65025 and
 * 65025 * Q8_K_MAX < 2^31, so acc is exact in int32 for k <= Q8_K_MAX; a path
 * may sum an expanded form in wrapping int32 arithmetic (the AVX-512 path
 * shifts B to int8 by -128 for vpdpbusd and adds the row and column sums
 * back), and the result is still exactly acc. B is an activation, so a path
 * packs it at run time into work (work_bytes(k, n) bytes, 64-aligned). */
struct qmatmul_params {
	int m, n, k;
	int32_t a_zero, b_zero, c_zero;
	float rq_scale;         /* s_a * s_b / s_c rounded to float */
	int32_t mult;           /* the same as a Q31 multiplier and shift */
	int8_t shift;
	bool q31;
	uint8_t c_min, c_max;
	bool b_trans;           /* b is given transposed: [n][ldb], B's column j
				   a row (the keys of q·kᵀ, read in place) */
};

struct qmatmul_ukernel {
	const char *name;       /* "qmatmul_u8u8__ref" */
	size_t (*work_bytes)(int k, int n);
	/* a is [m][lda], b is [k][ldb] ([n][ldb] when p->b_trans), c is
	 * [m][ldc]; writes the first n bytes of each of c's m rows and nothing
	 * else */
	void (*run)(const struct qmatmul_params *p, const uint8_t *a, int lda, const uint8_t *b,
		    int ldb, uint8_t *c, int ldc, void *work);
};

/* The output code of one accumulator: the requantization every path applies. */
static inline uint8_t q8_matmul_requant(int32_t acc, const struct qmatmul_params *p)
{
	if (!p->q31)
		return (uint8_t)q8_requant_f32(acc, p->rq_scale, p->c_zero, p->c_min, p->c_max);
	int64_t v = (int64_t)q31_requantize(acc, p->mult, p->shift) + p->c_zero;
	return (uint8_t)(v < p->c_min ? p->c_min : v > p->c_max ? p->c_max : v);
}

extern const struct qmatmul_ukernel qmatmul_u8u8__ref;
extern const struct qmatmul_ukernel qmatmul_u8u8_4x8__avx2;       /* x86-64 builds only */
extern const struct qmatmul_ukernel qmatmul_u8u8_4x16__avx512vnni; /* x86-64 builds only */

/* The MatMul kernel of a path; NULL if this build or CPU lacks the path. */
const struct qmatmul_ukernel *q8_matmul_for(enum q8_isa isa);

/* --- Softmax and LayerNormalization over the last axis of a uint8 tensor ---------- */

/* Softmax of rows of n codes with input scale s_x: exp(s_x * (x - max))
 * depends only on d = max - x in [0, 255], so the caller tabulates
 * exp_table[d] = expf(-s_x * d) once. Per row: the float sum of the table
 * entries in index order, r = 1 / (sum * s_y), then for each element
 * clamp(lrintf(fmaf(exp_table[d], r, y_zero)), c_min, c_max). */
struct qsoftmax_params {
	const float *exp_table; /* [256] */
	float inv_out_scale;    /* 1 / s_y */
	int32_t c_zero;
	uint8_t c_min, c_max;
};

void qsoftmax_u8__ref(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
		      uint8_t *y);

/* LayerNormalization of rows of n codes (input scale s_x, zero point
 * irrelevant: it cancels): S1 = sum x and S2 = sum x^2 exactly in integers,
 * var = s_x^2 (n S2 - S1^2) / n^2 and a = s_x / sqrt(var + eps) in double,
 * rounded to float with mean = S1 / n; then per element, in float,
 * clamp(lrintf(fmaf((x - mean) * a, gamma_q[i], beta_q[i])), c_min, c_max)
 * where gamma_q = gamma / s_y and beta_q = beta / s_y + y_zero are folded
 * at build time. */
struct qlayernorm_params {
	float in_scale;         /* s_x */
	float epsilon;
	const float *gamma_q;   /* [n] */
	const float *beta_q;    /* [n] */
	uint8_t c_min, c_max;
};

void qlayernorm_u8__ref(size_t rows, size_t n, const uint8_t *x,
			const struct qlayernorm_params *p, uint8_t *y);

/* The per-row scalars both kernels above start from, computed once in
 * q8_ref.c for every path (so a path's vector code cannot round them
 * differently): the row's largest code and r = inv_out_scale / sum; the
 * row's mean code and a = s_x / sqrt(var + eps). */
float q8_softmax_row_prep(const uint8_t *x, size_t n, const struct qsoftmax_params *p,
			  uint8_t *max_code);
float q8_layernorm_row_prep(const uint8_t *x, size_t n, const struct qlayernorm_params *p,
			    float *mean);
/* The same from the row's exact sums S1 = sum x and S2 = sum x^2 (for vector
 * code that sums in its own order: the sums are integers). */
float q8_layernorm_from_sums(int64_t s1, int64_t s2, size_t n, const struct qlayernorm_params *p,
			     float *mean);

typedef void (*qsoftmax_fn)(size_t rows, size_t n, const uint8_t *x,
			    const struct qsoftmax_params *p, uint8_t *y);
typedef void (*qlayernorm_fn)(size_t rows, size_t n, const uint8_t *x,
			      const struct qlayernorm_params *p, uint8_t *y);
/* AVX2 + FMA: the per-element part in 8 lanes, bit-exact with the reference
 * (the same roundings: a subtraction, a multiply, one fused multiply-add). */
void qsoftmax_u8__avx2(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
		       uint8_t *y);
void qlayernorm_u8__avx2(size_t rows, size_t n, const uint8_t *x,
			 const struct qlayernorm_params *p, uint8_t *y);

/* AVX-512: a row of up to 64 codes per register; Softmax's max and sum and
 * LayerNorm's sums are vector reductions (the sum in the reference's lane
 * order, the integer sums in any), bit-exact with the reference. */
void qsoftmax_u8__avx512(size_t rows, size_t n, const uint8_t *x, const struct qsoftmax_params *p,
			 uint8_t *y);
void qlayernorm_u8__avx512(size_t rows, size_t n, const uint8_t *x,
			   const struct qlayernorm_params *p, uint8_t *y);

/* The row kernels of a path; NULL if this build or CPU lacks the path. */
qsoftmax_fn q8_softmax_for(enum q8_isa isa);
qlayernorm_fn q8_layernorm_for(enum q8_isa isa);

/* y = x transposed by perm (ONNX Transpose: y's axis i is x's axis perm[i]),
 * bytes in row-major logical order; rank <= 8. */
void transpose_u8__ref(int rank, const int64_t *x_dims, const int64_t *perm, const uint8_t *x,
		       uint8_t *y);

#endif
