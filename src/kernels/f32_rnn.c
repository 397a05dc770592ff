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
#include <string.h>

#include "kernels/kernels_f32.h"
#include "kernels/kernels_train.h"

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
			3 * p->hidden);
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

static inline float sigm(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* tanh as (1 - e^-2|x|) / (1 + e^-2|x|), its sign then x's: glibc's tanhf
 * (through expm1f) had taken three quarters of an LSTM's time, its expf
 * takes a fifth of it. Within 1e-7 of tanh (absolute) for every float. */
static inline float tanh_(float x)
{
	float e = expf(-2.0f * fabsf(x));
	return copysignf((1.0f - e) / (1.0f + e), x);
}

/* Direction d's step s in time. */
static int64_t step_time(const struct rnn_params *p, int d, int64_t s)
{
	bool back = d == 1 || p->reverse;
	return back ? p->seq - 1 - s : s;
}

void rnn_f32__ref(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		  enum rnn_out out, float *scratch, float *tape)
{
	const int64_t H = p->hidden, B = p->batch, G = rnn_gates(p->cell), GH = G * H;
	const bool gru = p->cell == RNN_CELL_GRU, lstm = p->cell == RNN_CELL_LSTM;
	const bool lbr = gru && p->linear_before_reset;
	float *xw = scratch, *hr = xw + p->seq * B * GH, *h = hr + B * GH, *c = h + B * H;
	float *rh = c + B * H, *hn = rh + B * H, *zeros = hn + B * H;
	memset(zeros, 0, sizeof(float) * (size_t)(3 * H));
	for (int d = 0; d < p->dirs; d++) {
		const float *r = in->r + (size_t)d * GH * H;
		const float *wb = in->b ? in->b + (size_t)d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
		const float *peep = lstm && in->peep ? in->peep + (size_t)d * 3 * H : NULL;
		if (p->projected) /* X holds every direction's X W^T side by side */
			for (int64_t row = 0; row < p->seq * B; row++)
				memcpy(xw + row * GH, in->x + row * p->in + d * GH, sizeof(float) * (size_t)GH);
		else
			gemm_f32__ref((int)(p->seq * B), (int)GH, (int)p->in, in->x, (int)p->in, false,
				      in->w + (size_t)d * GH * p->in, (int)p->in, true, xw, (int)GH);
		if (wb)
			for (int64_t row = 0; row < p->seq * B; row++)
				for (int64_t k = 0; k < GH; k++)
					xw[row * GH + k] += wb[k] + (lbr && k >= 2 * H ? 0.0f : rb[k]);
		for (int64_t b = 0; b < B; b++) {
			for (int64_t j = 0; j < H; j++) {
				h[b * H + j] = in->h0 ? in->h0[s_off(p, d, b) + j] : 0.0f;
				c[b * H + j] = lstm && in->c0 ? in->c0[s_off(p, d, b) + j] : 0.0f;
			}
		}
		for (int64_t s = 0; s < p->seq; s++) {
			int64_t t = step_time(p, d, s);
			/* H' R^T (for GRU without linear_before_reset: the z and r gates) */
			gemm_f32__ref((int)B, (int)(gru && !lbr ? 2 * H : GH), (int)H, h, (int)H, false, r,
				      (int)H, true, hr, (int)GH);
			for (int64_t b = 0; b < B; b++) {
				const float *xg = xw + x_row(p, t, b) * GH;
				float *g = hr + b * GH, *hp = h + b * H, *cp = c + b * H;
				float *rec = tape ? tape + ((d * p->seq + t) * B + b) * (G + 2) * H : NULL;
				if (p->cell == RNN_CELL_RNN) {
					for (int64_t j = 0; j < H; j++)
						hn[b * H + j] = tanh_(xg[j] + g[j]);
				} else if (gru) {
					for (int64_t j = 0; j < 2 * H; j++)
						g[j] = sigm(xg[j] + g[j]);
					if (lbr) {
						/* q = H' Rh^T + Rbh kept in rh (free here) for the record */
						const float *rbh = rb ? rb + 2 * H : zeros;
						float *q = rh + b * H;
						for (int64_t j = 0; j < H; j++) {
							q[j] = g[2 * H + j] + rbh[j];
							g[2 * H + j] = tanh_(xg[2 * H + j] + g[H + j] * q[j]);
						}
						if (rec)
							memcpy(rec + 3 * H, q, sizeof(float) * (size_t)H);
					} else {
						for (int64_t j = 0; j < H; j++)
							rh[b * H + j] = g[H + j] * hp[j];
					}
				} else {
					/* no branch inside: the loop vectorizes (pp: the
					 * peepholes or zeros) */
					const float *pp = peep ? peep : zeros;
					float *hnb = hn + b * H;
					for (int64_t j = 0; j < H; j++) {
						float cj = cp[j];
						float i = sigm(xg[j] + g[j] + pp[j] * cj);
						float f = sigm(xg[2 * H + j] + g[2 * H + j] + pp[2 * H + j] * cj);
						float cc = tanh_(xg[3 * H + j] + g[3 * H + j]);
						float cn = f * cj + i * cc;
						float o = sigm(xg[H + j] + g[H + j] + pp[H + j] * cn);
						g[j] = i;
						g[H + j] = o;
						g[2 * H + j] = f;
						g[3 * H + j] = cc;
						cp[j] = cn;
						hnb[j] = o * tanh_(cn);
					}
					if (rec)
						memcpy(rec + 4 * H, cp, sizeof(float) * (size_t)H);
				}
			}
			if (gru && !lbr) {
				/* (r . H') Rh^T, then h */
				float *hh = hn; /* free until the new states are formed */
				gemm_f32__ref((int)B, (int)H, (int)H, rh, (int)H, false, r + 2 * H * H,
					      (int)H, true, hh, (int)H);
				for (int64_t b = 0; b < B; b++) {
					const float *xg = xw + x_row(p, t, b) * GH;
					for (int64_t j = 0; j < H; j++)
						hr[b * GH + 2 * H + j] = tanh_(xg[2 * H + j] + hh[b * H + j]);
				}
			}
			for (int64_t b = 0; b < B; b++) {
				float *g = hr + b * GH, *hp = h + b * H;
				float *rec = tape ? tape + ((d * p->seq + t) * B + b) * (G + 2) * H : NULL;
				if (gru)
					for (int64_t j = 0; j < H; j++)
						hn[b * H + j] = (1.0f - g[j]) * g[2 * H + j] + g[j] * hp[j];
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
				k->gemm((int)B, (int)H, (int)H, drec + 2 * H, (int)GH, false, r + 2 * H * H,
					(int)H, false, aux, (int)H, false);
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
				if (dr)
					k->gemm((int)H, (int)H, (int)B, drec + 2 * H, (int)GH, true, rhp, (int)H,
						false, dr + 2 * H * H, (int)H, true);
			}
			/* dR += d(H' R^T)^T H'; dH' = d(H' R^T) R + the direct terms */
			int64_t nr = gru && !lbr ? 2 * H : GH;
			if (dr)
				k->gemm((int)nr, (int)H, (int)B, drec, (int)GH, true, hprev, (int)H, false, dr,
					(int)H, true);
			if (drb)
				for (int64_t b = 0; b < B; b++)
					for (int64_t j = 0; j < GH; j++)
						drb[j] += drec[b * GH + j];
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
