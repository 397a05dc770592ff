/* quant.c - quantization math (see quant.h for the scheme and its derivations). */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* clipping ratios tried for b >= 3: 0.5, 0.505, ..., 1.0 */
#define CLIP_STEPS 101

float quant_scale_round(float x)
{
	if (!(x > 0x1p-24f))
		return 0x1p-24f;
	if (x >= 65504.0f)
		return 65504.0f;
	int e;
	frexpf(x, &e); /* x = f * 2^e, f in [0.5, 1) */
	/* binary16 keeps 11 significant bits for normals (e >= -13), and a fixed
	 * step of 2^-24 for subnormals */
	float step = ldexpf(1.0f, (e < -13 ? -13 : e) - 11);
	float r = rintf(x / step) * step; /* x / step is exact: step is a power of 2 */
	return r > 65504.0f ? 65504.0f : r;
}

uint16_t quant_f16_encode(float x)
{
	uint16_t sign = signbit(x) ? 0x8000u : 0;
	x = fabsf(x);
	if (x == 0)
		return sign;
	int e;
	frexpf(x, &e);
	if (e < -13) /* subnormal: x = m * 2^-24 */
		return (uint16_t)(sign | (uint16_t)lrintf(ldexpf(x, 24)));
	/* normal: x = (1 + m / 1024) * 2^(e - 1), biased exponent e - 1 + 15 */
	long m = lrintf(ldexpf(x, 11 - e)) - 1024;
	return (uint16_t)(sign | (uint16_t)(((e + 14) << 10) + m)); /* m = 1024 carries */
}

float quant_f16_decode(uint16_t h)
{
	int ex = (h >> 10) & 0x1f, m = h & 0x3ff;
	if (ex == 0x1f)
		return -1.0f;
	float v = ex ? ldexpf((float)(1024 + m), ex - 25) : ldexpf((float)m, -24);
	return (h & 0x8000u) ? -v : v;
}

int quant_bias_bits(const int32_t *b, int64_t n)
{
	int bits = 0;
	for (int64_t i = 0; i < n; i++) {
		/* v in [-2^(w-1), 2^(w-1) - 1] needs w bits */
		int64_t v = b[i] < 0 ? -(int64_t)b[i] - 1 : b[i];
		int w = b[i] ? 1 : 0;
		while (w && (v >> (w - 1)) != 0)
			w++;
		if (w > bits)
			bits = w;
	}
	return bits;
}

int64_t quant_bias_bytes(int64_t n, int bias_bits)
{
	return 1 + quant_packed_bytes(n, bias_bits);
}

int quant_weight_qmax(int bits)
{
	return bits >= 2 ? (1 << (bits - 1)) - 1 : 1;
}

/* roundf(x) clamped to [-qmax, qmax], without a call: clamping first gives
 * the same result (anything past qmax + 1/2 rounds to past qmax), NaN takes
 * -qmax as fmaxf gives it, and for |x| <= 127 the sum x +- 1/2 is exact in
 * double (at most 33 significant bits), so truncating it rounds half away from
 * zero as roundf does. The only difference, -0 for +0, never shows in a code
 * or in the error of a row. */
static inline float round_clamp(float x, float qmax)
{
	x = x >= -qmax ? x : -qmax;
	x = x <= qmax ? x : qmax;
	double d = (double)x + (x >= 0 ? 0.5 : -0.5);
	return (float)(int32_t)d;
}

/* Elements per check of a candidate's running error against the best: the
 * errors are summed one by one in order, as always, so checking less often
 * only stops a losing candidate a little later. */
#define ERR_BLOCK 64

static void quant_uniform(const float *w, int64_t n, int bits, int8_t *q, float *scale)
{
	int qmax = quant_weight_qmax(bits);
	float amax = 0;
	for (int64_t i = 0; i < n; i++)
		amax = fmaxf(amax, fabsf(w[i]));
	if (amax == 0) {
		memset(q, 0, (size_t)n);
		*scale = 1.0f;
		return;
	}
	float fq = (float)qmax;
	double best_err = INFINITY;
	float best_s = quant_scale_round(amax / fq);
	for (int step = 0; step < CLIP_STEPS; step++) {
		float t = 1.0f - 0.5f * (float)step / (float)(CLIP_STEPS - 1);
		float s = quant_scale_round(t * amax / fq);
		double err = 0;
		for (int64_t i0 = 0; i0 < n && err < best_err; i0 += ERR_BLOCK) {
			int64_t i1 = i0 + ERR_BLOCK < n ? i0 + ERR_BLOCK : n;
			for (int64_t i = i0; i < i1; i++) {
				double d = (double)w[i] - (double)s * round_clamp(w[i] / s, fq);
				err += d * d;
			}
		}
		if (err < best_err) {
			best_err = err;
			best_s = s;
		}
	}
	for (int64_t i = 0; i < n; i++)
		q[i] = (int8_t)round_clamp(w[i] / best_s, fq);
	*scale = best_s;
}

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x < y) - (x > y);
}

static void quant_ternary(const float *w, int64_t n, int8_t *q, float *scale)
{
	float *mag = malloc(sizeof(float) * (size_t)n);
	PRESSO_CHECK(mag != NULL);
	for (int64_t i = 0; i < n; i++)
		mag[i] = fabsf(w[i]);
	qsort(mag, (size_t)n, sizeof *mag, cmp_desc);
	double sum = 0, best = -1;
	int64_t best_k = 1;
	for (int64_t k = 1; k <= n; k++) {
		sum += mag[k - 1];
		double score = sum * sum / (double)k;
		if (score > best) {
			best = score;
			best_k = k;
		}
	}
	/* weights at least as large as the k-th magnitude form the support */
	float thresh = mag[best_k - 1];
	free(mag);
	double s_sum = 0;
	int64_t s_n = 0;
	for (int64_t i = 0; i < n; i++)
		if (fabsf(w[i]) >= thresh && thresh > 0) {
			s_sum += fabsf(w[i]);
			s_n++;
		}
	for (int64_t i = 0; i < n; i++)
		q[i] = (fabsf(w[i]) >= thresh && thresh > 0) ? (w[i] > 0 ? 1 : -1) : 0;
	*scale = s_n ? quant_scale_round((float)(s_sum / (double)s_n)) : 1.0f;
}

/* binary: q = sign(w); a weight that is exactly zero (pruned) stays 0 */
static void quant_binary(const float *w, int64_t n, int8_t *q, float *scale)
{
	double sum = 0;
	int64_t nz = 0;
	for (int64_t i = 0; i < n; i++) {
		sum += fabs(w[i]);
		nz += w[i] != 0;
		q[i] = w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0;
	}
	*scale = sum > 0 ? quant_scale_round((float)(sum / (double)nz)) : 1.0f;
}

void quant_weights(const float *w, int64_t n_out, int64_t per_out, int bits, int8_t *q,
		   float *scale)
{
	PRESSO_CHECK(bits >= QUANT_MIN_WEIGHT_BITS && bits <= QUANT_MAX_WEIGHT_BITS);
	for (int64_t c = 0; c < n_out; c++) {
		const float *wc = w + c * per_out;
		int8_t *qc = q + c * per_out;
		if (bits == 1)
			quant_binary(wc, per_out, qc, &scale[c]);
		else if (bits == 2)
			quant_ternary(wc, per_out, qc, &scale[c]);
		else
			quant_uniform(wc, per_out, bits, qc, &scale[c]);
	}
}

void quant_act_params(float lo, float hi, int bits, struct qparams *qp)
{
	PRESSO_CHECK(bits >= 2 && bits <= 8);
	int32_t qmax = (1 << bits) - 1;
	lo = fminf(lo, 0.0f);
	hi = fmaxf(hi, 0.0f);
	qp->bits = bits;
	if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
		qp->scale = qp->inv_scale = 1.0f;
		qp->zero = 0;
		return;
	}
	qp->scale = (hi - lo) / (float)qmax;
	qp->inv_scale = 1.0f / qp->scale;
	float z = roundf(-lo / qp->scale);
	qp->zero = (int32_t)fminf(fmaxf(z, 0.0f), (float)qmax);
}

void quant_multiplier(double m, int32_t *mult, int8_t *shift)
{
	if (!(m > 0)) {
		*mult = 0;
		*shift = 0;
		return;
	}
	int e;
	double frac = frexp(m, &e); /* m = frac * 2^e, frac in [0.5, 1) */
	int64_t q = (int64_t)llround(frac * 2147483648.0);
	if (q == 2147483648ll) { /* rounding reached 1.0 */
		q /= 2;
		e++;
	}
	if (e < -31) {
		/* q31_requantize shifts right by at most 31: below that the product is
		 * less than half an LSB for any int32 accumulator of a real layer */
		*mult = 0;
		*shift = 0;
		return;
	}
	if (e > 30) {
		*mult = INT32_MAX;
		*shift = 30;
		return;
	}
	*mult = (int32_t)q;
	*shift = (int8_t)e;
}

int64_t quant_packed_bytes(int64_t n, int bits)
{
	return (n * bits + 7) / 8;
}

const char *quant_coding_name(enum weight_coding_kind k)
{
	return k == WCODE_BITMAP ? "bitmap" : k == WCODE_RUNLENGTH ? "runlength" : "dense";
}

struct weight_coding quant_weight_coding(const int8_t *q, int64_t n, int bits)
{
	int64_t nnz = 0, entries = 0, run = 0;
	for (int64_t i = 0; i < n; i++) {
		if (q[i] == 0) {
			if (++run == WCODE_MAX_RUN + 1) {
				entries++; /* a filler: a full run and an explicit zero */
				run = 0;
			}
			continue;
		}
		nnz++;
		entries++;
		run = 0;
	}
	return quant_coding_from_counts(n, nnz, entries, bits);
}

struct weight_coding quant_coding_from_counts(int64_t n, int64_t nnz, int64_t entries, int bits)
{
	struct weight_coding c = {.kind = WCODE_DENSE, .nnz = nnz,
				  .bytes = quant_packed_bytes(n, bits)};
	/* binary has no code for zero: a layer with zeros must be coded sparsely */
	bool dense_ok = bits != 1 || nnz == n;
	int64_t bitmap = (n + 7) / 8 + quant_packed_bytes(nnz, bits);
	if (!dense_ok || bitmap < c.bytes) {
		c.kind = WCODE_BITMAP;
		c.bytes = bitmap;
	}
	bool fillers = entries > nnz;
	int64_t rle = (entries * (WCODE_RUN_BITS + bits) + 7) / 8;
	if (rle < c.bytes && !(bits == 1 && fillers)) {
		c.kind = WCODE_RUNLENGTH;
		c.bytes = rle;
	}
	return c;
}
