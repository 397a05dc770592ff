/* test_quant.c - quantization math: fixed-point multipliers (edge cases), weight
 * quantization (ranges, least-squares optimality of ternary and binary scales,
 * clipping search never worse than max-abs), activation parameters, packed
 * sizes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_q8.h"
#include "quant/quant.h"

static double real_of(int32_t mult, int8_t shift)
{
	return (double)mult / 2147483648.0 * pow(2.0, shift);
}

Test(quant, multiplier_round_trips)
{
	double ms[] = {1e-9, 3.7e-5, 0.0123, 0.25, 0.4999999, 0.5, 0.75, 0.999999999, 1.0, 1.5,
		       3.0, 1234.5};
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		int32_t mult;
		int8_t shift;
		quant_multiplier(ms[i], &mult, &shift);
		cr_assert_geq(mult, 1 << 30, "m=%g: mult %d below 2^30", ms[i], mult);
		cr_assert_leq(fabs(real_of(mult, shift) - ms[i]) / ms[i], 1.0 / (1u << 30),
			      "m=%g represented as %d * 2^%d", ms[i], mult, shift);
	}
}

Test(quant, multiplier_edge_cases)
{
	int32_t mult;
	int8_t shift;
	/* frac * 2^31 rounds up to exactly 2^31: must renormalise, not overflow */
	quant_multiplier(1.0 - 1e-12, &mult, &shift);
	cr_assert_eq(mult, 1 << 30);
	cr_assert_eq(shift, 1);
	/* so small that every product rounds to zero */
	quant_multiplier(1e-12, &mult, &shift);
	cr_assert_eq(mult, 0);
	cr_assert_eq(q31_requantize(2000000000, mult, shift), 0);
	/* very large: saturates instead of wrapping */
	quant_multiplier(1e12, &mult, &shift);
	cr_assert_eq(mult, INT32_MAX);
	cr_assert_eq(shift, 30);
	quant_multiplier(0.0, &mult, &shift);
	cr_assert_eq(mult, 0);
	quant_multiplier(-1.0, &mult, &shift);
	cr_assert_eq(mult, 0);
}

Test(quant, requantize_matches_real_arithmetic)
{
	uint32_t seed = 7;
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1664525u + 1013904223u;
		int32_t acc = (int32_t)(seed >> 4) - (1 << 27);
		double m = pow(10.0, -6.0 + 6.0 * (double)(seed % 1000) / 1000.0);
		int32_t mult;
		int8_t shift;
		quant_multiplier(m, &mult, &shift);
		int32_t got = q31_requantize(acc, mult, shift);
		double want = (double)acc * real_of(mult, shift);
		/* gemmlowp rounds twice: the high multiply to the nearest 2^-right, then
		 * the shift to the nearest integer, so the error is below
		 * 0.5 + 0.5 / 2^right */
		int right = shift > 0 ? 0 : -shift;
		cr_assert_leq(fabs((double)got - want), 0.5 + 0.5 / pow(2.0, right) + 1e-6,
			      "acc %d m %g: %d vs %.3f", acc, m, got, want);
	}
}

Test(quant, weight_ranges_per_bit_width)
{
	float w[64];
	for (int i = 0; i < 64; i++)
		w[i] = sinf((float)i * 1.3f) * (1.0f + (float)i / 16.0f);
	int8_t q[64];
	float s;
	for (int bits = 1; bits <= 8; bits++) {
		quant_weights(w, 1, 64, bits, q, &s);
		int qmax = quant_weight_qmax(bits);
		for (int i = 0; i < 64; i++) {
			cr_assert_leq(abs(q[i]), qmax, "bits %d: q %d", bits, q[i]);
			if (bits == 1) /* sign(w); an exact zero (pruned) stays 0 */
				cr_assert(w[i] == 0 ? q[i] == 0 : q[i] == (w[i] > 0 ? 1 : -1),
					  "w %g q %d", w[i], q[i]);
		}
		cr_assert_gt(s, 0);
	}
	cr_assert_eq(quant_weight_qmax(8), 127);
	cr_assert_eq(quant_weight_qmax(3), 3);
	cr_assert_eq(quant_weight_qmax(2), 1);
}

static double sq_err(const float *w, const int8_t *q, float s, int n)
{
	double e = 0;
	for (int i = 0; i < n; i++)
		e += ((double)w[i] - (double)s * q[i]) * ((double)w[i] - (double)s * q[i]);
	return e;
}

Test(quant, ternary_is_least_squares_optimal)
{
	/* brute force over every support and sign pattern's optimal scale */
	uint32_t seed = 3;
	for (int trial = 0; trial < 50; trial++) {
		enum { N = 10 };
		float w[N];
		for (int i = 0; i < N; i++) {
			seed = seed * 1664525u + 1013904223u;
			w[i] = (float)((int)(seed >> 9) % 2001 - 1000) / 500.0f;
		}
		int8_t q[N];
		float s;
		quant_weights(w, 1, N, 2, q, &s);
		double got = sq_err(w, q, s, N), best = INFINITY;
		for (int mask = 1; mask < (1 << N); mask++) {
			double sum = 0;
			int k = 0;
			for (int i = 0; i < N; i++)
				if (mask >> i & 1) {
					sum += fabs(w[i]);
					k++;
				}
			double a = sum / k, e = 0;
			for (int i = 0; i < N; i++)
				e += (mask >> i & 1) ? (fabs(w[i]) - a) * (fabs(w[i]) - a) : (double)w[i] * w[i];
			if (e < best)
				best = e;
		}
		cr_assert_leq(got, best * (1 + 1e-5) + 1e-9, "trial %d: %g vs optimum %g", trial, got, best);
	}
}

Test(quant, binary_scale_is_mean_abs)
{
	float w[] = {0.5f, -1.5f, 2.0f, -0.25f};
	int8_t q[4];
	float s;
	quant_weights(w, 1, 4, 1, q, &s);
	cr_assert_float_eq(s, (0.5f + 1.5f + 2.0f + 0.25f) / 4, 1e-7f);
	cr_assert_eq(q[0], 1);
	cr_assert_eq(q[1], -1);
}

Test(quant, clipping_search_beats_or_equals_max_abs)
{
	float w[256];
	uint32_t seed = 11;
	for (int i = 0; i < 256; i++) {
		seed = seed * 1664525u + 1013904223u;
		double u = ((seed >> 8) + 0.5) / 16777216.0;
		w[i] = (float)(0.1 * tan(3.0 * (u - 0.5))); /* heavy tails: clipping pays */
	}
	for (int bits = 3; bits <= 8; bits++) {
		int8_t q[256], qm[256];
		float s;
		quant_weights(w, 1, 256, bits, q, &s);
		float amax = 0;
		for (int i = 0; i < 256; i++)
			amax = fmaxf(amax, fabsf(w[i]));
		/* max-abs at the scale precision presso stores (binary16) */
		int qmax = quant_weight_qmax(bits);
		float sm = quant_scale_round(amax / (float)qmax);
		for (int i = 0; i < 256; i++)
			qm[i] = (int8_t)fminf(fmaxf(roundf(w[i] / sm), (float)-qmax), (float)qmax);
		cr_assert_leq(sq_err(w, q, s, 256), sq_err(w, qm, sm, 256) * (1 + 1e-9),
			      "bits %d", bits);
	}
}

Test(quant, per_channel_scales_are_independent)
{
	float w[2 * 4] = {1, -1, 0.5f, 0.25f, 100, -50, 25, 10};
	int8_t q[8];
	float s[2];
	quant_weights(w, 2, 4, 8, q, s);
	cr_assert_lt(s[0], 0.01f);
	cr_assert_gt(s[1], 0.5f);
	cr_assert_eq(q[0], 127);
	cr_assert_eq(q[4], 127);
}

Test(quant, zero_channel)
{
	float w[4] = {0, 0, 0, 0};
	int8_t q[4];
	float s;
	for (int bits = 1; bits <= 8; bits++) {
		quant_weights(w, 1, 4, bits, q, &s);
		cr_assert_gt(s, 0);
		if (bits > 1)
			for (int i = 0; i < 4; i++)
				cr_assert_eq(q[i], 0);
	}
}

Test(quant, activation_params)
{
	struct qparams qp;
	quant_act_params(0.0f, 6.0f, 8, &qp);
	cr_assert_eq(qp.zero, 0);
	cr_assert_float_eq(qp.scale, 6.0f / 255, 1e-9f);
	cr_assert_eq(quant_act_quantize(6.0f, &qp), 255);
	cr_assert_eq(quant_act_quantize(7.0f, &qp), 255);
	cr_assert_eq(quant_act_quantize(-1.0f, &qp), 0);
	/* zero is exactly representable whatever the range */
	quant_act_params(-1.3f, 2.9f, 8, &qp);
	cr_assert_float_eq(qp.scale * (float)(quant_act_quantize(0.0f, &qp) - qp.zero), 0.0f, 0);
	/* 4 bits: q in 0..15 in an 8-bit container */
	quant_act_params(-1.0f, 1.0f, 4, &qp);
	cr_assert_eq(quant_act_qmax(&qp), 15);
	cr_assert_eq(quant_act_quantize(100.0f, &qp), 15);
	/* ranges that exclude zero are widened to include it */
	quant_act_params(2.0f, 4.0f, 8, &qp);
	cr_assert_eq(qp.zero, 0);
	cr_assert_float_eq(qp.scale, 4.0f / 255, 1e-9f);
	/* degenerate range */
	quant_act_params(0.0f, 0.0f, 8, &qp);
	cr_assert_gt(qp.scale, 0);
	cr_assert_eq(quant_act_quantize(NAN, &qp), 0);
}

/* The definition of quant_act_quantize written out with branches: round half
 * away from zero, clamp to 0..qmax, NaN and anything below the range give 0. */
static uint8_t model_act_quantize(float x, const struct qparams *qp)
{
	float t = x * qp->inv_scale;
	if (isnan(t))
		return 0;
	int32_t qmax = quant_act_qmax(qp);
	if (t >= (float)(qmax - qp->zero) + 0.5f)
		return (uint8_t)qmax;
	if (t <= (float)(-qp->zero) - 0.5f)
		return 0;
	int32_t r = (int32_t)(t >= 0 ? t + 0.5f : t - 0.5f) + qp->zero;
	return (uint8_t)(r < 0 ? 0 : r > qmax ? qmax : r);
}

/* The branch-free quant_act_quantize (a vectorized loop of it quantizes the
 * engine's input) against the model: random reals around and far beyond the
 * range, halfway points, infinities, NaN, at 8, 5 and 2 bits. */
Test(quant, activation_quantize_matches_model)
{
	const float lo[] = {0.0f, -1.3f, -4.0f, -0.01f}, hi[] = {6.0f, 2.9f, 0.5f, 30.0f};
	const int bits[] = {8, 5, 2};
	srand(7);
	for (size_t r = 0; r < sizeof lo / sizeof lo[0]; r++)
		for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
			struct qparams qp;
			quant_act_params(lo[r], hi[r], bits[b], &qp);
			float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f,
					   qp.scale * 0.5f, -qp.scale * 0.5f, qp.scale * 1.5f};
			for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
				cr_assert_eq(quant_act_quantize(special[i], &qp),
					     model_act_quantize(special[i], &qp), "x=%g", special[i]);
			for (int i = 0; i < 200000; i++) {
				float span = (hi[r] - lo[r]) * 1.5f;
				float x = lo[r] - span / 4 + span * (float)rand() / (float)RAND_MAX;
				if (i % 5 == 0) /* halfway between two levels */
					x = qp.scale * ((float)(rand() % 600 - 300) + 0.5f);
				cr_assert_eq(quant_act_quantize(x, &qp), model_act_quantize(x, &qp),
					     "x=%.9g bits %d zero %d", x, bits[b], qp.zero);
			}
		}
}

Test(quant, packed_bytes)
{
	cr_assert_eq(quant_packed_bytes(10, 8), 10);
	cr_assert_eq(quant_packed_bytes(10, 4), 5);
	cr_assert_eq(quant_packed_bytes(11, 4), 6);
	cr_assert_eq(quant_packed_bytes(9, 1), 2);
	cr_assert_eq(quant_packed_bytes(3, 3), 2);
	cr_assert_eq(quant_packed_bytes(0, 5), 0);
}

Test(quant, scales_round_to_binary16)
{
	/* every positive finite binary16 value is kept and round-trips its bits */
	float prev = 0;
	for (unsigned h = 1; h < 0x7c00; h++) {
		float v = quant_f16_decode((uint16_t)h);
		cr_assert_gt(v, prev, "0x%04x: %g not above 0x%04x's %g", h, v, h - 1, prev);
		cr_assert_eq(quant_scale_round(v), v, "0x%04x: %g moved", h, v);
		cr_assert_eq(quant_f16_encode(v), h, "0x%04x: %g encodes as 0x%04x", h, v,
			     quant_f16_encode(v));
		prev = v;
	}
	cr_assert_eq(quant_f16_decode(0x3c00), 1.0f);
	cr_assert_eq(quant_f16_decode(0x0001), 0x1p-24f);
	cr_assert_eq(quant_f16_decode(0x7bff), 65504.0f);
	cr_assert_lt(quant_f16_decode(0x7c00), 0, "infinity must not decode to a scale");
	cr_assert_lt(quant_f16_decode(0x7e00), 0, "NaN must not decode to a scale");
	/* any other positive float goes to its nearest neighbour, never 0 or inf */
	uint32_t seed = 11;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1664525u + 1013904223u;
		float x = ldexpf(1.0f + (float)(seed >> 8) / 16777216.0f, (int)(seed % 44) - 28);
		float r = quant_scale_round(x);
		uint16_t h = quant_f16_encode(r);
		cr_assert_eq(quant_f16_decode(h), r, "x=%a rounds to %a, not a binary16", x, r);
		if (x <= 0x1p-24f || x >= 65504.0f)
			continue;
		float lo = quant_f16_decode((uint16_t)(h - 1)), hi = quant_f16_decode((uint16_t)(h + 1));
		cr_assert_leq(fabsf(x - r), fabsf(x - lo), "x=%a: %a farther than %a", x, r, lo);
		if (h + 1 < 0x7c00)
			cr_assert_leq(fabsf(x - r), fabsf(x - hi), "x=%a: %a farther than %a", x, r, hi);
	}
	cr_assert_eq(quant_scale_round(0), 0x1p-24f);
	cr_assert_eq(quant_scale_round(1e-30f), 0x1p-24f);
	cr_assert_eq(quant_scale_round(1e30f), 65504.0f);
	/* quantized weights carry binary16 scales at every width */
	float w[64];
	for (int i = 0; i < 64; i++)
		w[i] = sinf((float)i * 0.7f) * 0.0371f;
	for (int bits = 1; bits <= 8; bits++) {
		int8_t q[64];
		float s[2];
		quant_weights(w, 2, 32, bits, q, s);
		for (int c = 0; c < 2; c++)
			cr_assert_eq(quant_scale_round(s[c]), s[c], "%d bits: scale %a", bits, s[c]);
	}
}

Test(quant, bias_widths)
{
	struct {
		int32_t b[3];
		int n, bits;
	} cases[] = {
		{{0, 0, 0}, 3, 0},          {{-1, 0, 0}, 3, 1},
		{{1, 0, -1}, 3, 2},         {{127, -128, 5}, 3, 8},
		{{128, 0, 0}, 1, 9},        {{-129, 0, 0}, 1, 9},
		{{INT32_MAX, 0, 0}, 1, 32}, {{INT32_MIN, 0, 0}, 1, 32},
		{{0, 0, 0}, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_assert_eq(quant_bias_bits(cases[i].b, cases[i].n), cases[i].bits, "case %zu: %d",
			     i, quant_bias_bits(cases[i].b, cases[i].n));
	cr_assert_eq(quant_bias_bytes(10, 0), 1);
	cr_assert_eq(quant_bias_bytes(10, 9), 1 + 12);
	cr_assert_eq(quant_bias_bytes(3, 32), 1 + 12);
}

/* The GAP's division by the pixel count as a multiply: equal to the integer
 * division for every numerator the GAP can make (up to 255 d + d / 2), every
 * d up to 600 exhaustively, then larger d on their extremes and at random. */
Test(quant, divider_equals_integer_division)
{
	for (uint32_t d = 1; d <= 600; d++) {
		struct quant_divider q = quant_divider(d);
		cr_assert_gt(quant_divider_exact_below(q), (uint64_t)256 * d);
		for (uint32_t n = 0; n <= 255 * d + d / 2; n++)
			cr_assert_eq(quant_divide(n, q), n / d, "%u / %u", n, d);
	}
	uint64_t r = 88172645463325252ull;
	for (int t = 0; t < 20000; t++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		uint32_t d = (uint32_t)(r % 1000000) + 1;
		struct quant_divider q = quant_divider(d);
		uint64_t top = (uint64_t)255 * d + d / 2;
		cr_assert_gt(quant_divider_exact_below(q), top);
		uint32_t ns[5] = {0, d - 1, d, (uint32_t)top, (uint32_t)((r >> 20) % (top + 1))};
		for (int i = 0; i < 5; i++)
			cr_assert_eq(quant_divide(ns[i], q), ns[i] / d, "%u / %u", ns[i], d);
	}
}
