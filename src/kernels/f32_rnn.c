/* f32_rnn.c - ONNX RNN, GRU and LSTM in FP32: the forward pass (which can
 * record what its backward needs) and the backward pass through time.
 *
 * Per direction the input projection of every step is one GEMM (X W^T, with
 * both biases added once), then each step adds H_{t-1} R^T (one small GEMM)
 * and applies the cell's gates. The backward pass walks the steps in the
 * opposite order, collects the gradient of every step's gate
 * pre-activations, and turns them into dX and dW with one GEMM each; dR and
 * dH_{t-1} need H_{t-1} and so take one GEMM per step. The formulas are the
 * ONNX operator definitions (gate orders: LSTM i, o, f, c; GRU z, r, h):
 *   RNN   H = tanh(X Wi^T + H' Ri^T + Wbi + Rbi)
 *   GRU   z = s(X Wz^T + H' Rz^T + Wbz + Rbz), r likewise,
 *         h = tanh(X Wh^T + (r . H') Rh^T + Rbh + Wbh)        (linear_before_reset 0)
 *         h = tanh(X Wh^T + r . (H' Rh^T + Rbh) + Wbh)        (linear_before_reset 1)
 *         H = (1 - z) . h + z . H'
 *   LSTM  i = s(X Wi^T + H' Ri^T + Pi . C' + Wbi + Rbi), f likewise with Pf,
 *         c = tanh(X Wc^T + H' Rc^T + Wbc + Rbc), C = f . C' + i . c,
 *         o = s(X Wo^T + H' Ro^T + Po . C + Wbo + Rbo), H = o . tanh(C)
 * where s is the logistic function, H' and C' the previous step's states
 * (initial_h and initial_c, or zeros, at the first step). A projected layer
 * (rnn_params.projected) takes X W^T itself as its input, computed before it
 * by a MatMul (a layer the policy compresses). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels_f32.h"
#include "kernels/kernels_q8.h"
#include "kernels/kernels_train.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

int rnn_gates(enum rnn_cell cell)
{
	return cell == RNN_CELL_LSTM ? 4 : cell == RNN_CELL_GRU ? 3 : 1;
}

/* Floats one step of one batch row records: the gates' activations, then
 * LSTM's cell state or GRU's H' Rh^T + Rbh (linear_before_reset) or nothing,
 * then the hidden state. */
static int64_t tape_row(const struct rnn_params *p)
{
	return (int64_t)(rnn_gates(p->cell) + 2) * p->hidden;
}

size_t rnn_tape_floats(const struct rnn_params *p)
{
	return (size_t)(p->dirs * p->seq * p->batch * tape_row(p));
}

size_t rnn_scratch_floats(const struct rnn_params *p)
{
	int64_t gh = rnn_gates(p->cell) * p->hidden;
	return (size_t)(p->seq * p->batch * gh + p->batch * gh + 4 * p->batch * p->hidden +
			4 * p->hidden + gh);
}

/* Row of X (and of the per-step projections) for step t, batch row b. */
static int64_t x_row(const struct rnn_params *p, int64_t t, int64_t b)
{
	return p->batch_first ? b * p->seq + t : t * p->batch + b;
}

/* Offset of Y's row (step t, direction d, batch row b). */
static int64_t y_off(const struct rnn_params *p, int64_t t, int d, int64_t b)
{
	int64_t r = p->batch_first ? (b * p->seq + t) * p->dirs + d : (t * p->dirs + d) * p->batch + b;
	return r * p->hidden;
}

/* Offset of an initial state's row (direction d, batch row b). */
static int64_t s_off(const struct rnn_params *p, int d, int64_t b)
{
	return (p->batch_first ? b * p->dirs + d : d * p->batch + b) * p->hidden;
}

/* e^x for the gates, branch-free so that the gate loops vectorize (GCC
 * keeps a loop that calls expf scalar, and glibc's tanhf, through expm1f,
 * had taken three quarters of an LSTM's time): x = n ln 2 + r with |r| <=
 * ln 2 / 2, e^r by a degree-6 polynomial (1 and 1 fixed, the rest fitted for
 * relative error on that interval: 3e-9), 2^n from the exponent bits. x is
 * clamped to [-86, 86] (so that 2^n and the result are normal numbers), and
 * a NaN passes the clamps and stays a NaN. ln 2 is one float, which costs
 * large |x| accuracy the gates do not see: within 1.02 ulp of e^x for |x| <
 * 10 and 4.5 ulp beyond, and sigm and tanh_ below within 9e-8 and 1.4e-7 of
 * the exact functions (every float checked against double). Every
 * multiply-add is an explicit fmaf, the one rounding IEEE 754 defines for
 * it, and nothing else is contracted (this file's compile options): the
 * same operations in the same order on every CPU, so the result does not
 * depend on the vector width. n comes from the rounding of x log2 e + 1.5 *
 * 2^23, whose low bits then hold n: shifted into the exponent field they
 * give 2^n. */
#define EXP_C6 1.3818099396e-3f
#define EXP_C5 8.3687556908e-3f
#define EXP_C4 4.1668329388e-2f
#define EXP_C3 1.6666519642e-1f
#define EXP_C2 4.9999994040e-1f
#define EXP_LN2 0.693147182464599609375f

static inline float exp_(float x)
{
	float xc = -86.0f > x ? -86.0f : x; /* a NaN fails both tests */
	xc = 86.0f < xc ? 86.0f : xc;
	float t = fmaf(xc, 1.44269504088896341f, 12582912.0f);
	float n = t - 12582912.0f;
	float r = fmaf(n, -EXP_LN2, xc);
	float y = fmaf(EXP_C6, r, EXP_C5);
	y = fmaf(y, r, EXP_C4);
	y = fmaf(y, r, EXP_C3);
	y = fmaf(y, r, EXP_C2);
	y = fmaf(y, r, 1.0f);
	y = fmaf(y, r, 1.0f);
	union {
		uint32_t u;
		float f;
	} scale = {.f = t};
	scale.u = (scale.u << 23) + 0x3f800000u;
	return y * scale.f;
}

static inline float sigm(float x)
{
	return 1.0f / (1.0f + exp_(-x));
}

/* tanh as (1 - e^-2x) / (1 + e^-2x): within 1.4e-7 of tanh (absolute) for
 * every float, and s within 9e-8. With exp_'s clamp a large |x| gives
 * exactly 1 or -1 (1 + e and 1 - e round to 1 or to e and -e), so no branch
 * on x's sign is needed (tanh(-0) comes out +0). */
static inline float tanh_(float x)
{
	float e = exp_(-2.0f * x);
	return (1.0f - e) / (1.0f + e);
}

/* The gate loops, each over one batch row's hidden units with restrict
 * operands, so that the compiler vectorizes them: once portable, and on
 * x86-64 again for AVX2 and for AVX-512F (8 and 16 lanes), picked as the INT8
 * kernels are (q8_isa_best: CPUID, XCR0, PRESSO_ISA); the LSTM step for
 * AVX-512 is written out below. The same operations in the same order in
 * each (explicit fmaf, no other contraction: this file's compile options),
 * so every path gives the portable one's bits (tests/test_kernels_f32.c).
 * They are:
 *   sigm_acc    y = s(a + y)
 *   tanh_add    y = tanh(a + b)
 *   gru_h_lbr   GRU's h with linear_before_reset: q = H' Rh^T + Rbh, h =
 *               tanh(xh + r . q), g holding z, r, then H' Rh^T, which h
 *               replaces
 *   lstm_gates  one LSTM step of `rows` batch rows (xg's rows ldx floats
 *               apart, g's 4H, c's and hn's H): the pre-activations are
 *               (xg + xb) + g, xg the step's X W^T and xb the summed
 *               biases (or zeros); g holds H' R^T by gate (i, o, f, c) and
 *               becomes the activations, c the cell state (updated), hn
 *               the new hidden state, pp the peepholes (or NULL) */
struct gate_fns {
	void (*sigm_acc)(int64_t n, const float *restrict a, float *restrict y);
	void (*tanh_add)(int64_t n, const float *restrict a, const float *restrict b,
			 float *restrict y);
	void (*gru_h_lbr)(int64_t H, const float *restrict xg, float *restrict g,
			  const float *restrict rbh, float *restrict q);
	void (*lstm_gates)(int64_t rows, int64_t H, const float *restrict xg, int64_t ldx,
			   const float *restrict xb, float *restrict g, const float *restrict pp,
			   float *restrict c, float *restrict hn);
	void (*add)(int64_t n, const float *restrict a, const float *restrict b,
		    float *restrict y);
};

#define LSTM_GATES(SUF, ATTR)                                                                  \
	ATTR static void lstm_row_##SUF(int64_t H, const float *restrict xg,                   \
					const float *restrict xb, float *restrict g,           \
					const float *restrict pp, float *restrict c,           \
					float *restrict hn)                                    \
	{                                                                                      \
		for (int64_t j = 0; j < H; j++) {                                              \
			float cj = c[j];                                                       \
			float pi = xg[j] + xb[j] + g[j];                                       \
			float pf = xg[2 * H + j] + xb[2 * H + j] + g[2 * H + j];               \
			float pc = xg[3 * H + j] + xb[3 * H + j] + g[3 * H + j];               \
			float po = xg[H + j] + xb[H + j] + g[H + j];                           \
			float i = sigm(pp ? fmaf(pp[j], cj, pi) : pi);                         \
			float f = sigm(pp ? fmaf(pp[2 * H + j], cj, pf) : pf);                 \
			float cc = tanh_(pc);                                                  \
			float cn = fmaf(f, cj, i * cc);                                        \
			float o = sigm(pp ? fmaf(pp[H + j], cn, po) : po);                     \
			g[j] = i;                                                              \
			g[H + j] = o;                                                          \
			g[2 * H + j] = f;                                                      \
			g[3 * H + j] = cc;                                                     \
			c[j] = cn;                                                             \
			hn[j] = o * tanh_(cn);                                                 \
		}                                                                              \
	}                                                                                      \
	ATTR static void lstm_gates_##SUF(int64_t rows, int64_t H, const float *restrict xg,   \
					  int64_t ldx, const float *restrict xb,               \
					  float *restrict g, const float *restrict pp,         \
					  float *restrict c, float *restrict hn)               \
	{                                                                                      \
		for (int64_t b = 0; b < rows; b++)                                             \
			lstm_row_##SUF(H, xg + b * ldx, xb, g + b * 4 * H, pp, c + b * H,      \
				       hn + b * H);                                            \
	}

#define GATE_FNS(SUF, LSTM, ATTR)                                                              \
	ATTR static void sigm_acc_##SUF(int64_t n, const float *restrict a, float *restrict y) \
	{                                                                                      \
		for (int64_t j = 0; j < n; j++)                                                \
			y[j] = sigm(a[j] + y[j]);                                              \
	}                                                                                      \
	ATTR static void tanh_add_##SUF(int64_t n, const float *restrict a,                    \
					const float *restrict b, float *restrict y)            \
	{                                                                                      \
		for (int64_t j = 0; j < n; j++)                                                \
			y[j] = tanh_(a[j] + b[j]);                                             \
	}                                                                                      \
	ATTR static void gru_h_lbr_##SUF(int64_t H, const float *restrict xg,                  \
					 float *restrict g, const float *restrict rbh,         \
					 float *restrict q)                                    \
	{                                                                                      \
		for (int64_t j = 0; j < H; j++) {                                              \
			q[j] = g[2 * H + j] + rbh[j];                                          \
			g[2 * H + j] = tanh_(xg[2 * H + j] + g[H + j] * q[j]);                 \
		}                                                                              \
	}                                                                                      \
	ATTR static void add_##SUF(int64_t n, const float *restrict a, const float *restrict b, \
				   float *restrict y)                                          \
	{                                                                                      \
		for (int64_t j = 0; j < n; j++)                                                \
			y[j] = a[j] + b[j];                                                    \
	}                                                                                      \
	static const struct gate_fns gates_##SUF = {sigm_acc_##SUF, tanh_add_##SUF,            \
						     gru_h_lbr_##SUF, lstm_gates_##LSTM, add_##SUF};

LSTM_GATES(portable, )
GATE_FNS(portable, portable, )
#if defined(__x86_64__) && defined(__GNUC__)
LSTM_GATES(avx2, __attribute__((target("avx2,fma"))))
GATE_FNS(avx2, avx2, __attribute__((target("avx2,fma"))))

/* The LSTM step again, written out for AVX-512: the same roundings in the
 * same order. The compiler's vector form of the loop above runs one vector
 * of units through a chain of five exponentials and divisions, longer than
 * the core can look ahead, so it waits on latency; here the exponentials
 * that do not depend on each other (i, f and c of two vectors, then o, then
 * tanh C of both) are interleaved, an operation at a time. max(c, x) and
 * min(c, x) are the C selects of exp_ (a NaN x passes), and vscalefps
 * multiplies by 2^n exactly as the exponent bits do, the product being a
 * normal number. */
#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX512_INLINE __attribute__((target("avx512f,fma"), always_inline))
#define LSTM_NV 2 /* vectors of units in flight at once */
#define EXP_MAX (3 * LSTM_NV) /* exponentials in flight at once */

/* x[u] = e^x[u] for u < n, n a constant where this is inlined */
AVX512_INLINE static inline void exp_n(__m512 *x, int n)
{
	__m512 t[EXP_MAX], r[EXP_MAX];
	for (int u = 0; u < n; u++)
		x[u] = _mm512_min_ps(_mm512_set1_ps(86.0f),
				     _mm512_max_ps(_mm512_set1_ps(-86.0f), x[u]));
	for (int u = 0; u < n; u++)
		t[u] = _mm512_fmadd_ps(x[u], _mm512_set1_ps(1.44269504088896341f),
				       _mm512_set1_ps(12582912.0f));
	for (int u = 0; u < n; u++)
		t[u] = _mm512_sub_ps(t[u], _mm512_set1_ps(12582912.0f)); /* n */
	for (int u = 0; u < n; u++)
		r[u] = _mm512_fmadd_ps(t[u], _mm512_set1_ps(-EXP_LN2), x[u]);
	for (int u = 0; u < n; u++)
		x[u] = _mm512_fmadd_ps(_mm512_set1_ps(EXP_C6), r[u], _mm512_set1_ps(EXP_C5));
	static const float c[5] = {EXP_C4, EXP_C3, EXP_C2, 1.0f, 1.0f};
	for (int k = 0; k < 5; k++)
		for (int u = 0; u < n; u++)
			x[u] = _mm512_fmadd_ps(x[u], r[u], _mm512_set1_ps(c[k]));
	for (int u = 0; u < n; u++)
		x[u] = _mm512_scalef_ps(x[u], t[u]);
}

/* x[u] = s(x[u]) */
AVX512_INLINE static inline void sigm_n(__m512 *x, int n)
{
	const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
	const __m512 one = _mm512_set1_ps(1.0f);
	for (int u = 0; u < n; u++)
		x[u] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x[u]), sign));
	exp_n(x, n);
	for (int u = 0; u < n; u++)
		x[u] = _mm512_div_ps(one, _mm512_add_ps(one, x[u]));
}

/* x[u] = tanh(x[u]) */
AVX512_INLINE static inline void tanh_n(__m512 *x, int n)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	for (int u = 0; u < n; u++)
		x[u] = _mm512_mul_ps(_mm512_set1_ps(-2.0f), x[u]);
	exp_n(x, n);
	for (int u = 0; u < n; u++)
		x[u] = _mm512_div_ps(_mm512_sub_ps(one, x[u]), _mm512_add_ps(one, x[u]));
}

/* One step for n vectors of units from j (n at most LSTM_NV), the last of
 * them masked by k. */
AVX512_INLINE static inline void lstm_n(int64_t H, int64_t j, int n, __mmask16 k,
					const float *restrict xg, const float *restrict xb,
					float *restrict g, bool peep, const float *restrict pp,
					float *restrict c, float *restrict hn)
{
	__m512 a[3 * LSTM_NV], cj[LSTM_NV], cn[LSTM_NV], o[LSTM_NV], h[LSTM_NV];
	for (int u = 0; u < n; u++) {
		__mmask16 m = u == n - 1 ? k : (__mmask16)0xffff;
		int64_t at = j + 16 * u;
#define LD(p, off) _mm512_maskz_loadu_ps(m, (p) + (off) + at)
#define PRE(off) _mm512_add_ps(_mm512_add_ps(LD(xg, off), LD(xb, off)), LD(g, off))
		cj[u] = LD(c, 0);
		a[3 * u] = PRE(0);
		a[3 * u + 1] = PRE(2 * H);
		a[3 * u + 2] = PRE(3 * H);
		o[u] = PRE(H);
		if (peep) {
			a[3 * u] = _mm512_fmadd_ps(LD(pp, 0), cj[u], a[3 * u]);
			a[3 * u + 1] = _mm512_fmadd_ps(LD(pp, 2 * H), cj[u], a[3 * u + 1]);
			h[u] = LD(pp, H);
		}
#undef PRE
#undef LD
	}
	/* i and f of every vector together, then c's tanh */
	__m512 s[2 * LSTM_NV], tc[LSTM_NV];
	for (int u = 0; u < n; u++) {
		s[2 * u] = a[3 * u];
		s[2 * u + 1] = a[3 * u + 1];
		tc[u] = a[3 * u + 2];
	}
	sigm_n(s, 2 * n);
	tanh_n(tc, n);
	for (int u = 0; u < n; u++) {
		cn[u] = _mm512_fmadd_ps(s[2 * u + 1], cj[u], _mm512_mul_ps(s[2 * u], tc[u]));
		if (peep)
			o[u] = _mm512_fmadd_ps(h[u], cn[u], o[u]);
		h[u] = cn[u];
	}
	sigm_n(o, n);
	tanh_n(h, n);
	for (int u = 0; u < n; u++) {
		int64_t at = j + 16 * u;
		__m512 hv = _mm512_mul_ps(o[u], h[u]);
		if (u < n - 1 || k == 0xffff) {
			_mm512_storeu_ps(g + at, s[2 * u]);
			_mm512_storeu_ps(g + H + at, o[u]);
			_mm512_storeu_ps(g + 2 * H + at, s[2 * u + 1]);
			_mm512_storeu_ps(g + 3 * H + at, tc[u]);
			_mm512_storeu_ps(c + at, cn[u]);
			_mm512_storeu_ps(hn + at, hv);
		} else {
			_mm512_mask_storeu_ps(g + at, k, s[2 * u]);
			_mm512_mask_storeu_ps(g + H + at, k, o[u]);
			_mm512_mask_storeu_ps(g + 2 * H + at, k, s[2 * u + 1]);
			_mm512_mask_storeu_ps(g + 3 * H + at, k, tc[u]);
			_mm512_mask_storeu_ps(c + at, k, cn[u]);
			_mm512_mask_storeu_ps(hn + at, k, hv);
		}
	}
}

AVX512_INLINE static inline void lstm_row(int64_t H, const float *restrict xg,
					  const float *restrict xb, float *restrict g, bool peep,
					  const float *restrict pp, float *restrict c,
					  float *restrict hn)
{
	int64_t j = 0;
	for (; j + 16 * LSTM_NV <= H; j += 16 * LSTM_NV)
		lstm_n(H, j, LSTM_NV, 0xffff, xg, xb, g, peep, pp, c, hn);
	for (; j < H; j += 16)
		lstm_n(H, j, 1, H - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (H - j)) - 1), xg,
		       xb, g, peep, pp, c, hn);
}

AVX512 static void lstm_gates_avx512x(int64_t rows, int64_t H, const float *restrict xg,
				      int64_t ldx, const float *restrict xb, float *restrict g,
				      const float *restrict pp, float *restrict c,
				      float *restrict hn)
{
	for (int64_t b = 0; b < rows; b++) {
		if (pp)
			lstm_row(H, xg + b * ldx, xb, g + b * 4 * H, true, pp, c + b * H, hn + b * H);
		else
			lstm_row(H, xg + b * ldx, xb, g + b * 4 * H, false, NULL, c + b * H,
				 hn + b * H);
	}
}
#undef AVX512
#undef AVX512_INLINE

GATE_FNS(avx512, avx512x, __attribute__((target("avx512f,fma"))))
#endif

static const struct gate_fns *gates_best(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	switch (q8_isa_best()) {
	case Q8_ISA_AVX512VNNI:
		return &gates_avx512;
	case Q8_ISA_AVX2:
		return &gates_avx2;
	default:
		break;
	}
#endif
	return &gates_portable;
}

/* Direction d's step s in time. */
static int64_t step_time(const struct rnn_params *p, int d, int64_t s)
{
	bool back = d == 1 || p->reverse;
	return back ? p->seq - 1 - s : s;
}

static void rnn_forward(const struct gate_fns *gf, const struct rnn_params *p,
			const struct rnn_tensors *in, float *y, enum rnn_out out, float *scratch,
			float *tape, const struct rnn_rec *rec_fn)
{
	const int64_t H = p->hidden, B = p->batch, G = rnn_gates(p->cell), GH = G * H;
	const bool gru = p->cell == RNN_CELL_GRU, lstm = p->cell == RNN_CELL_LSTM;
	const bool lbr = gru && p->linear_before_reset;
	float *xw = scratch, *hr = xw + p->seq * B * GH, *h = hr + B * GH, *c = h + B * H;
	float *rh = c + B * H, *hn = rh + B * H, *zeros = hn + B * H, *bsum = zeros + 4 * H;
	memset(zeros, 0, sizeof(float) * (size_t)(4 * H));
	/* A projected LSTM's gates read X W^T where the MatMul left it and add
	 * the biases themselves (no pass over every step's rows first). */
	const bool direct = lstm && p->projected;
	for (int d = 0; d < p->dirs; d++) {
		const float *r = in->r + (size_t)d * GH * H;
		const float *wb = in->b ? in->b + (size_t)d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
		const float *peep = lstm && in->peep ? in->peep + (size_t)d * 3 * H : NULL;
		/* X W^T + Wb + Rb (GRU with linear_before_reset: Rbh apart), the
		 * biases summed first */
		if (wb)
			for (int64_t k = 0; k < GH; k++)
				bsum[k] = wb[k] + (lbr && k >= 2 * H ? 0.0f : rb[k]);
		if (p->projected && !direct) { /* X: every direction's X W^T side by side */
			for (int64_t row = 0; row < p->seq * B; row++) {
				const float *xr = in->x + row * p->in + d * GH;
				if (wb)
					gf->add(GH, xr, bsum, xw + row * GH);
				else
					memcpy(xw + row * GH, xr, sizeof(float) * (size_t)GH);
			}
		} else if (!p->projected) {
			gemm_f32__ref((int)(p->seq * B), (int)GH, (int)p->in, in->x, (int)p->in, false,
				      in->w + (size_t)d * GH * p->in, (int)p->in, true, xw, (int)GH);
			if (wb)
				for (int64_t row = 0; row < p->seq * B; row++)
					for (int64_t k = 0; k < GH; k++)
						xw[row * GH + k] += bsum[k];
		}
		for (int64_t b = 0; b < B; b++) {
			for (int64_t j = 0; j < H; j++) {
				h[b * H + j] = in->h0 ? in->h0[s_off(p, d, b) + j] : 0.0f;
				c[b * H + j] = lstm && in->c0 ? in->c0[s_off(p, d, b) + j] : 0.0f;
			}
		}
		for (int64_t s = 0; s < p->seq; s++) {
			int64_t t = step_time(p, d, s);
			/* H' R^T (for GRU without linear_before_reset: the z and r gates) */
			int64_t n1 = gru && !lbr ? 2 * H : GH;
			if (rec_fn)
				rec_fn->product(rec_fn->ctx, d, 0, n1, B, h, hr, GH);
			else if (p->r_transposed) /* one batch row: an axpy per hidden unit */
				gemm_f32__ref((int)B, (int)n1, (int)H, h, (int)H, false, r, (int)GH, false,
					      hr, (int)GH);
			else
				gemm_f32__ref((int)B, (int)n1, (int)H, h, (int)H, false, r, (int)H, true,
					      hr, (int)GH);
			if (lstm) {
				/* every batch row in one call, X W^T's rows x_row apart */
				int64_t ldx = (p->batch_first ? p->seq : 1) * (direct ? p->in : GH);
				const float *x0 = direct ? in->x + x_row(p, t, 0) * p->in + d * GH
							 : xw + x_row(p, t, 0) * GH;
				gf->lstm_gates(B, H, x0, ldx, direct && wb ? bsum : zeros, hr, peep, c, h);
				for (int64_t b = 0; tape && b < B; b++)
					memcpy(tape + ((d * p->seq + t) * B + b) * (G + 2) * H + 4 * H,
					       c + b * H, sizeof(float) * (size_t)H);
			}
			for (int64_t b = 0; !lstm && b < B; b++) {
				const float *xg = xw + x_row(p, t, b) * GH;
				float *g = hr + b * GH, *hp = h + b * H;
				float *rec = tape ? tape + ((d * p->seq + t) * B + b) * (G + 2) * H : NULL;
				if (p->cell == RNN_CELL_RNN) {
					gf->tanh_add(H, xg, g, hn + b * H);
				} else if (gru) {
					gf->sigm_acc(2 * H, xg, g);
					if (lbr) {
						/* q = H' Rh^T + Rbh kept in rh (free here) for the record */
						float *q = rh + b * H;
						gf->gru_h_lbr(H, xg, g, rb ? rb + 2 * H : zeros, q);
						if (rec)
							memcpy(rec + 3 * H, q, sizeof(float) * (size_t)H);
					} else {
						for (int64_t j = 0; j < H; j++)
							rh[b * H + j] = g[H + j] * hp[j];
					}
				}
			}
			if (gru && !lbr) {
				/* (r . H') Rh^T, then h */
				float *hh = hn; /* free until the new states are formed */
				if (rec_fn)
					rec_fn->product(rec_fn->ctx, d, 2 * H, H, B, rh, hh, H);
				else if (p->r_transposed)
					gemm_f32__ref((int)B, (int)H, (int)H, rh, (int)H, false, r + 2 * H,
						      (int)GH, false, hh, (int)H);
				else
					gemm_f32__ref((int)B, (int)H, (int)H, rh, (int)H, false,
						      r + 2 * H * H, (int)H, true, hh, (int)H);
				for (int64_t b = 0; b < B; b++)
					gf->tanh_add(H, xw + x_row(p, t, b) * GH + 2 * H, hh + b * H,
						     hr + b * GH + 2 * H);
			}
			for (int64_t b = 0; b < B; b++) {
				float *g = hr + b * GH, *hp = h + b * H;
				float *rec = tape ? tape + ((d * p->seq + t) * B + b) * (G + 2) * H : NULL;
				if (gru)
					for (int64_t j = 0; j < H; j++)
						hn[b * H + j] = (1.0f - g[j]) * g[2 * H + j] + g[j] * hp[j];
				if (!lstm) /* (an LSTM's gates leave H in place: H' is read before) */
					memcpy(hp, hn + b * H, sizeof(float) * (size_t)H);
				if (rec) {
					if (p->cell == RNN_CELL_RNN)
						memcpy(rec, hp, sizeof(float) * (size_t)H);
					else
						memcpy(rec, g, sizeof(float) * (size_t)GH);
					memcpy(rec + (G + 1) * H, hp, sizeof(float) * (size_t)H);
				}
				if (y && out == RNN_OUT_Y)
					memcpy(y + y_off(p, t, d, b), hp, sizeof(float) * (size_t)H);
				else if (y && s == p->seq - 1)
					memcpy(y + s_off(p, d, b), out == RNN_OUT_C ? c + b * H : hp,
					       sizeof(float) * (size_t)H);
			}
		}
	}
}

void rnn_f32__ref(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		  enum rnn_out out, float *scratch, float *tape)
{
	rnn_forward(gates_best(), p, in, y, out, scratch, tape, NULL);
}

void rnn_f32_rec(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		 enum rnn_out out, float *scratch, const struct rnn_rec *rec)
{
	rnn_forward(gates_best(), p, in, y, out, scratch, NULL, rec);
}

void rnn_f32__portable(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		       enum rnn_out out, float *scratch, float *tape)
{
	rnn_forward(&gates_portable, p, in, y, out, scratch, tape, NULL);
}

size_t rnn_backward_scratch_floats(const struct rnn_params *p)
{
	int64_t gh = rnn_gates(p->cell) * p->hidden;
	return (size_t)(p->seq * p->batch * gh + p->batch * gh + 7 * p->batch * p->hidden);
}

void rnn_backward_f32(const struct f32_train_kernels *k, const struct rnn_params *p,
		      const struct rnn_tensors *in, const float *tape, const float *dy,
		      enum rnn_out out, const struct rnn_grads *gr, float *scratch)
{
	const int64_t H = p->hidden, B = p->batch, G = rnn_gates(p->cell), GH = G * H;
	const int64_t TR = (G + 2) * H;
	const bool gru = p->cell == RNN_CELL_GRU, lstm = p->cell == RNN_CELL_LSTM;
	const bool lbr = gru && p->linear_before_reset;
	float *dpre = scratch;               /* [seq * batch rows (x_row)][GH] */
	float *drec = dpre + p->seq * B * GH; /* one step's d(H' R^T) [B][GH] */
	float *dh = drec + B * GH, *dc = dh + B * H, *hprev = dc + B * H, *cprev = hprev + B * H;
	float *dhn = cprev + B * H, *aux = dhn + B * H, *rhp = aux + B * H;
	for (int d = 0; d < p->dirs; d++) {
		const float *r = in->r + (size_t)d * GH * H;
		const float *w = p->projected ? NULL : in->w + (size_t)d * GH * p->in;
		const float *peep = lstm && in->peep ? in->peep + (size_t)d * 3 * H : NULL;
		float *dw = gr->dw && w ? gr->dw + (size_t)d * GH * p->in : NULL;
		float *dr = gr->dr ? gr->dr + (size_t)d * GH * H : NULL;
		float *dwb = gr->db ? gr->db + (size_t)d * 2 * GH : NULL, *drb = dwb ? dwb + GH : NULL;
		float *dpeep = lstm && gr->dpeep ? gr->dpeep + (size_t)d * 3 * H : NULL;
		memset(dh, 0, sizeof(float) * (size_t)(2 * B * H));
		for (int64_t s = p->seq - 1; s >= 0; s--) {
			int64_t t = step_time(p, d, s), tp = s > 0 ? step_time(p, d, s - 1) : -1;
			for (int64_t b = 0; b < B; b++) {
				const float *rp = tp >= 0 ? tape + ((d * p->seq + tp) * B + b) * TR : NULL;
				for (int64_t j = 0; j < H; j++) {
					hprev[b * H + j] = rp ? rp[(G + 1) * H + j]
							      : in->h0 ? in->h0[s_off(p, d, b) + j] : 0.0f;
					cprev[b * H + j] = !lstm ? 0.0f
							   : rp ? rp[4 * H + j]
							   : in->c0 ? in->c0[s_off(p, d, b) + j] : 0.0f;
				}
			}
			for (int64_t b = 0; b < B; b++) {
				const float *rec = tape + ((d * p->seq + t) * B + b) * TR;
				const float *dyr = out == RNN_OUT_Y	 ? dy + y_off(p, t, d, b)
						   : s == p->seq - 1 ? dy + s_off(p, d, b)
								     : NULL;
				float *dp = dpre + x_row(p, t, b) * GH, *dq = drec + b * GH;
				float *dhb = dh + b * H, *dcb = dc + b * H, *hp = hprev + b * H;
				for (int64_t j = 0; dyr && j < H; j++) {
					if (out != RNN_OUT_C)
						dhb[j] += dyr[j];
					else
						dcb[j] += dyr[j];
				}
				if (p->cell == RNN_CELL_RNN) {
					for (int64_t j = 0; j < H; j++) {
						float hj = rec[(G + 1) * H + j];
						dp[j] = dq[j] = dhb[j] * (1.0f - hj * hj);
						dhn[b * H + j] = 0.0f;
					}
				} else if (lstm) {
					for (int64_t j = 0; j < H; j++) {
						float i = rec[j], o = rec[H + j], f = rec[2 * H + j];
						float cc = rec[3 * H + j], cn = rec[4 * H + j];
						float cp = cprev[b * H + j], tc = tanh_(cn);
						float dpo = dhb[j] * tc * o * (1.0f - o);
						float dC = dcb[j] + dhb[j] * o * (1.0f - tc * tc) +
							   (peep ? dpo * peep[H + j] : 0.0f);
						float dpi = dC * cc * i * (1.0f - i);
						float dpf = dC * cp * f * (1.0f - f);
						float dpc = dC * i * (1.0f - cc * cc);
						dp[j] = dq[j] = dpi;
						dp[H + j] = dq[H + j] = dpo;
						dp[2 * H + j] = dq[2 * H + j] = dpf;
						dp[3 * H + j] = dq[3 * H + j] = dpc;
						/* the new dC': through f and the peepholes */
						aux[b * H + j] = dC * f + (peep ? dpi * peep[j] + dpf * peep[2 * H + j]
										: 0.0f);
						if (dpeep) {
							dpeep[j] += dpi * cp;
							dpeep[H + j] += dpo * cn;
							dpeep[2 * H + j] += dpf * cp;
						}
						dhn[b * H + j] = 0.0f;
					}
				} else {
					for (int64_t j = 0; j < H; j++) {
						float z = rec[j], rr = rec[H + j], hh = rec[2 * H + j];
						float dhh = dhb[j] * (1.0f - z);
						float dz = dhb[j] * (hp[j] - hh);
						float dph = dhh * (1.0f - hh * hh);
						dp[j] = dq[j] = dz * z * (1.0f - z);
						dp[2 * H + j] = dph;
						dhn[b * H + j] = dhb[j] * z;
						if (lbr) {
							float q = rec[3 * H + j], dr_ = dph * q;
							dq[2 * H + j] = dph * rr;
							dp[H + j] = dq[H + j] = dr_ * rr * (1.0f - rr);
						} else {
							dq[2 * H + j] = dph;
						}
					}
				}
			}
			if (gru && !lbr) {
				/* d(r . H') = dh_pre Rh: r's gradient, and H' through r */
				if (p->r_transposed)
					k->gemm((int)B, (int)H, (int)H, drec + 2 * H, (int)GH, false, r + 2 * H,
						(int)GH, true, aux, (int)H, false);
				else
					k->gemm((int)B, (int)H, (int)H, drec + 2 * H, (int)GH, false,
						r + 2 * H * H, (int)H, false, aux, (int)H, false);
				for (int64_t b = 0; b < B; b++) {
					const float *rec = tape + ((d * p->seq + t) * B + b) * TR;
					for (int64_t j = 0; j < H; j++) {
						float rr = rec[H + j], g = aux[b * H + j];
						float dpr = g * hprev[b * H + j] * rr * (1.0f - rr);
						dpre[x_row(p, t, b) * GH + H + j] = drec[b * GH + H + j] = dpr;
						dhn[b * H + j] += g * rr;
						rhp[b * H + j] = rr * hprev[b * H + j];
					}
				}
				if (dr && p->r_transposed)
					k->gemm((int)H, (int)H, (int)B, rhp, (int)H, true, drec + 2 * H,
						(int)GH, false, dr + 2 * H, (int)GH, true);
				else if (dr)
					k->gemm((int)H, (int)H, (int)B, drec + 2 * H, (int)GH, true, rhp, (int)H,
						false, dr + 2 * H * H, (int)H, true);
			}
			/* dR += d(H' R^T)^T H'; dH' = d(H' R^T) R + the direct terms */
			int64_t nr = gru && !lbr ? 2 * H : GH;
			if (dr && p->r_transposed)
				k->gemm((int)H, (int)nr, (int)B, hprev, (int)H, true, drec, (int)GH, false, dr,
					(int)GH, true);
			else if (dr)
				k->gemm((int)nr, (int)H, (int)B, drec, (int)GH, true, hprev, (int)H, false, dr,
					(int)H, true);
			if (drb)
				for (int64_t b = 0; b < B; b++)
					for (int64_t j = 0; j < GH; j++)
						drb[j] += drec[b * GH + j];
			if (p->r_transposed)
				k->gemm((int)B, (int)H, (int)nr, drec, (int)GH, false, r, (int)GH, true, dhn,
					(int)H, true);
			else
				k->gemm((int)B, (int)H, (int)nr, drec, (int)GH, false, r, (int)H, false, dhn,
					(int)H, true);
			memcpy(dh, dhn, sizeof(float) * (size_t)(B * H));
			if (lstm)
				memcpy(dc, aux, sizeof(float) * (size_t)(B * H));
		}
		if (gr->dh0)
			for (int64_t b = 0; b < B; b++)
				for (int64_t j = 0; j < H; j++)
					gr->dh0[s_off(p, d, b) + j] += dh[b * H + j];
		if (lstm && gr->dc0)
			for (int64_t b = 0; b < B; b++)
				for (int64_t j = 0; j < H; j++)
					gr->dc0[s_off(p, d, b) + j] += dc[b * H + j];
		int64_t rows = p->seq * B;
		if (dwb)
			for (int64_t row = 0; row < rows; row++)
				for (int64_t j = 0; j < GH; j++)
					dwb[j] += dpre[row * GH + j];
		if (dw)
			k->gemm((int)GH, (int)p->in, (int)rows, dpre, (int)GH, true, in->x, (int)p->in,
				false, dw, (int)p->in, true);
		if (gr->dx && p->projected)
			for (int64_t row = 0; row < rows; row++)
				for (int64_t j = 0; j < GH; j++)
					gr->dx[row * p->in + d * GH + j] += dpre[row * GH + j];
		else if (gr->dx)
			k->gemm((int)rows, (int)p->in, (int)GH, dpre, (int)GH, false, w, (int)p->in, false,
				gr->dx, (int)p->in, true);
	}
}
