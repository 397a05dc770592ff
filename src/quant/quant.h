/* quant.h - quantization math: weights, activation ranges, fixed-point multipliers
 * and exact size accounting.
 *
 * Scheme (TFLite's integer scheme, so results compare with TFLite, ONNX Runtime
 * and PyTorch):
 *   - weights: symmetric per output channel, zero point 0. For b in 3..8 bits
 *     q in [-(2^(b-1)-1), 2^(b-1)-1], w ~ scale[c] * q. b = 2 is ternary,
 *     q in {-1, 0, +1}, w ~ a[c] * q; b = 1 is binary, q in {-1, +1}
 *     (a weight that is exactly zero, a pruned one, stays 0 at every width).
 *   - the per-channel scale minimises the squared weight error, among the values
 *     an IEEE-754 binary16 can hold (scales are stored as 16-bit floats: their
 *     relative rounding, at most 2^-11, is far below any weight step):
 *       b >= 3: scale = t * max|w| / qmax for the best t of 101 clipping ratios
 *               t in [0.5, 1] (t = 1 is plain max-abs);
 *       ternary: the support S (weights set to +-a) is the k largest |w| for the
 *               k maximising (sum_S |w|)^2 / k, and a = mean of |w| over S, which
 *               is the exact least-squares optimum (a weight outside S costs w^2,
 *               one inside costs (|w| - a)^2);
 *       binary: a = mean |w| over the non-zero weights (the least-squares
 *               optimum for q = sign(w)).
 *   - activations: asymmetric per tensor in uint8 containers; b activation bits
 *     use q in [0, 2^b - 1]; real = scale * (q - zero_point), with the range
 *     widened to include 0 so that 0 is exact.
 */
#ifndef PRESSO_QUANT_H
#define PRESSO_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

#define QUANT_MIN_WEIGHT_BITS 1
#define QUANT_MAX_WEIGHT_BITS 8

/* Quantizes w[n_out][per_out] per output channel to `bits` (1..8): writes
 * q[n_out][per_out] and scale[n_out]. */
void quant_weights(const float *w, int64_t n_out, int64_t per_out, int bits, int8_t *q,
		   float *scale);

/* x rounded to the nearest IEEE-754 binary16 value (ties to even), for x >= 0;
 * a positive x below the smallest subnormal (2^-24) gives 2^-24, and anything
 * above 65504 gives 65504: a weight scale is never 0 or infinite. */
float quant_scale_round(float x);

/* The binary16 bits of a value quant_scale_round() returns, and back. Decoding
 * refuses (returns a negative value for) infinities and NaNs. */
uint16_t quant_f16_encode(float x);
float quant_f16_decode(uint16_t h);

/* Biases are int32 in the engine but stored in the fewest bits that hold every
 * one of a layer's biases in two's complement: 0 when all are 0, else 1..32.
 * The stored form is a one-byte width then the n biases packed at it. */
int quant_bias_bits(const int32_t *b, int64_t n);
int64_t quant_bias_bytes(int64_t n, int bias_bits);

/* Largest |q| of a weight bit width: 2^(b-1)-1 for b >= 2, 1 for b = 1. */
int quant_weight_qmax(int bits);

struct qparams {
	float scale;
	float inv_scale; /* 1 / scale: quantizing multiplies */
	int32_t zero;
	int bits;    /* q in [0, 2^bits - 1] */
};

/* Activation quantization parameters for real range [lo, hi] at `bits` (2..8). */
void quant_act_params(float lo, float hi, int bits, struct qparams *qp);

static inline int32_t quant_act_qmax(const struct qparams *qp)
{
	return (1 << qp->bits) - 1;
}

/* q = clamp(round(x * inv_scale) + zero, 0, qmax), rounding half away from zero;
 * NaN gives 0. Inline and branch-free: it runs per element at every quantize
 * step, and loops of it vectorize. */
static inline uint8_t quant_act_quantize(float x, const struct qparams *qp)
{
	float t = x * qp->inv_scale;
	float qmax = (float)((1 << qp->bits) - 1);
	/* clamp in float first so the integer conversion is always defined; below
	 * the range and NaN (every comparison is false) land on lo, which gives
	 * (int)(-zero - 1.5) + zero = -1, so 0 */
	float lo = -(float)qp->zero - 1.0f, hi = qmax - (float)qp->zero + 1.0f;
	t = t > lo ? t : lo;
	t = t < hi ? t : hi;
	int32_t r = (int32_t)(t + (t >= 0 ? 0.5f : -0.5f)) + qp->zero;
	return (uint8_t)(r < 0 ? 0 : r > (int32_t)qmax ? (int32_t)qmax : r);
}

/* The real multiplier m > 0 as mult * 2^(shift - 31), mult in [2^30, 2^31).
 * m below 2^-32 gives mult 0 (times any int32 it is below half an LSB); m at or
 * above 2^30 (no real layer) saturates. */
void quant_multiplier(double m, int32_t *mult, int8_t *shift);

/* Bytes of n weights packed at `bits` each: ceil(n * bits / 8). */
int64_t quant_packed_bytes(int64_t n, int bits);

/* Sparse weight coding. A layer's quantized weights are stored in whichever of
 * three codings is smallest (ties keep the earlier):
 *   dense:     every weight packed at `bits` bits: ceil(n * bits / 8) bytes;
 *   bitmap:    one bit per weight (1 = non-zero), then the non-zeros packed:
 *              ceil(n / 8) + ceil(nnz * bits / 8) bytes;
 *   runlength: one entry per non-zero, a 4-bit count of the zeros before it
 *              and the value at `bits` bits; a run longer than 15 zeros is cut
 *              by filler entries (count 15, value 0):
 *              ceil(entries * (4 + bits) / 8) bytes.
 * Zeros come from pruning and from quantization itself (ternary). Binary has no
 * code for zero, so a binary layer with zeros (pruned) cannot be dense, and
 * cannot use fillers. */
#define WCODE_RUN_BITS 4
#define WCODE_MAX_RUN 15

enum weight_coding_kind { WCODE_DENSE, WCODE_BITMAP, WCODE_RUNLENGTH };

struct weight_coding {
	enum weight_coding_kind kind;
	int64_t bytes;
	int64_t nnz;
};

struct weight_coding quant_weight_coding(const int8_t *q, int64_t n, int bits);

/* The coding chosen for n weights of `bits` bits (up to 32) with nnz non-zeros
 * that need `entries` run-length entries (non-zeros plus fillers). */
struct weight_coding quant_coding_from_counts(int64_t n, int64_t nnz, int64_t entries, int bits);

const char *quant_coding_name(enum weight_coding_kind k);

/* Division by a constant d >= 1 as a multiply and a shift (Granlund and
 * Montgomery's round-up method): with L = ceil(log2 d), s = 32 + L and
 * m = ceil(2^s / d), (n * m) >> s == n / d for every n < 2^32 whose product
 * n * m fits in 64 bits, which quant_divider_exact_below() bounds. The GAP
 * divides each channel's sum by the pixel count this way. */
struct quant_divider {
	uint64_t m;
	int s;
};

static inline struct quant_divider quant_divider(uint32_t d)
{
	int l = 0;
	while (l < 32 && ((uint64_t)1 << l) < d)
		l++;
	int s = 32 + l;
	return (struct quant_divider){(((uint64_t)1 << s) + d - 1) / d, s};
}

/* The numerators below this stay exact (n * m < 2^64 and n < 2^32). */
static inline uint64_t quant_divider_exact_below(struct quant_divider q)
{
	uint64_t lim = UINT64_MAX / q.m;
	return lim < ((uint64_t)1 << 32) ? lim : (uint64_t)1 << 32;
}

static inline uint32_t quant_divide(uint32_t n, struct quant_divider q)
{
	return (uint32_t)(((uint64_t)n * q.m) >> q.s);
}

#endif
