/* kernels_f32.h - FP32 reference kernels (plain C, the oracle for every fast path).
 *
 * Layout: activations are dense row-major (C order); images are NCHW. Conv
 * weights are [c_out, c_in/group, kh, kw]. Kernels never allocate: a kernel that
 * needs scratch says how many bytes through its *_scratch_bytes() function and
 * takes a caller-provided buffer. Output buffers never alias inputs.
 * Names: <what>_<types>__<how>; "__ref" is the portable reference.
 */
#ifndef PRESSO_KERNELS_F32_H
#define PRESSO_KERNELS_F32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conv2d_params {
	int n, c_in, h_in, w_in;      /* input [n, c_in, h_in, w_in] */
	int c_out, h_out, w_out;      /* output [n, c_out, h_out, w_out] */
	int kh, kw;
	int stride_h, stride_w;
	int pad_t, pad_l;             /* bottom/right padding is implied by h_out, w_out */
	int dil_h, dil_w;
	int group;                    /* c_in and c_out divisible by group */
	float act_min, act_max;       /* output clamp (fused Relu/Clip); -INF..INF for none */
};

/* Bytes of scratch conv2d_f32__ref needs (im2col of one image and group). */
size_t conv2d_f32_scratch_bytes(const struct conv2d_params *p);

/* y = clamp(conv(x, w) + bias). bias may be NULL. */
void conv2d_f32__ref(const struct conv2d_params *p, const float *x, const float *w,
		     const float *bias, float *y, float *scratch);

/* C[m,n] = sum_k A[m,k] * B[k,n], A and B optionally transposed:
 * A is [m,k] (lda) or, with trans_a, [k,m]; B is [k,n] (ldb) or, with trans_b, [n,k].
 * C is overwritten (ldc). */
void gemm_f32__ref(int m, int n, int k, const float *a, int lda, bool trans_a,
		   const float *b, int ldb, bool trans_b, float *c, int ldc);

/* gemm_f32__ref on this file's portable loops alone, on any CPU: where the CPU
 * has AVX-512F gemm_f32__ref runs its blocked loop as gemm_f32_blocked__avx512
 * (f32_avx512.c, x86-64 only), every C element the same sum in the same order
 * (no FMA), and tests/test_kernels_f32.c holds the two equal bit for bit. */
void gemm_f32__portable(int m, int n, int k, const float *a, int lda, bool trans_a,
			const float *b, int ldb, bool trans_b, float *c, int ldc);
void gemm_f32_blocked__avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs,
			      int64_t a_cs, const float *b, int64_t ldb, bool trans_b, float *c,
			      int64_t ldc);
/* One row of A (m = 1, B not transposed): c[j] = sum over kk in ascending
 * order of a[kk * a_cs] * b[kk * ldb + j], from 0.f, as the portable row
 * loop (gemm_row) sums it: a recurrent layer's step at batch 1. */
void gemm_f32_row__avx512(int64_t n, int64_t k, const float *a, int64_t a_cs, const float *b,
			  int64_t ldb, float *c);

/* Gemm as in ONNX: y[m,n] = alpha * op(A) op(B) + beta * bias, where bias is
 * broadcast from [bias_m, bias_n] (each 1 or the full size; bias may be NULL),
 * then clamped to [act_min, act_max]. */
void gemm_bias_f32__ref(int m, int n, int k, float alpha, const float *a, bool trans_a,
			const float *b, bool trans_b, float beta, const float *bias,
			int bias_m, int bias_n, float act_min, float act_max, float *y);

/* Broadcasting batched MatMul (numpy semantics) of a[.., m, k] and b[.., k, n].
 * Shapes are given with their ranks (1-D operands promoted as numpy does);
 * out_dims/out_rank describe y. */
void matmul_f32__ref(const int64_t *a_dims, int a_rank, const float *a,
		     const int64_t *b_dims, int b_rank, const float *b,
		     const int64_t *y_dims, int y_rank, float *y);

struct pool2d_params {
	int n, c, h_in, w_in, h_out, w_out;
	int kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
	int dil_h, dil_w;
	bool count_include_pad;       /* AveragePool only */
};

void maxpool2d_f32__ref(const struct pool2d_params *p, const float *x, float *y);
void avgpool2d_f32__ref(const struct pool2d_params *p, const float *x, float *y);
/* [n, c, hw] -> [n, c]: mean over hw. */
void global_avgpool_f32__ref(int n, int c, int hw, const float *x, float *y);

/* y = clamp(x, lo, hi) elementwise (Relu is lo=0, hi=INF). */
void clip_f32__ref(int64_t count, const float *x, float lo, float hi, float *y);

/* Inference BatchNormalization over dim 1 of [n, c, inner]. */
void batchnorm_f32__ref(int n, int c, int64_t inner, const float *x, const float *scale,
			const float *bias, const float *mean, const float *var,
			float epsilon, float *y);

/* Numpy-broadcasting elementwise add; a_dims/b_dims already right-aligned to
 * y_rank (leading 1s added by the caller). */
void add_f32__ref(const int64_t *a_dims, const float *a, const int64_t *b_dims,
		  const float *b, const int64_t *y_dims, int y_rank, float *y);

/* Elementwise functions of two operands, y = f(a, b). */
enum f32_binary {
	F32_ADD,        /* a + b */
	F32_SUB,        /* a - b */
	F32_MUL,        /* a * b */
	F32_DIV,        /* a / b */
	F32_POW,        /* a ^ b (powf; b == 2 is a * a, exactly) */
	F32_PRELU,      /* a < 0 ? b * a : a (b the slope) */
	F32_MAX,        /* the larger (NaN if either is) */
	F32_MIN,
	F32_BINARY_COUNT
};

/* f(a, b) for one pair: exactly what binary_f32__ref computes per element. */
float binary_f32_scalar(enum f32_binary f, float a, float b);

/* Numpy-broadcasting y = f(a, b), dims right-aligned as for add_f32__ref. y may
 * be a itself when a_dims equal y_dims (Sum accumulates in place). */
void binary_f32__ref(enum f32_binary f, const int64_t *a_dims, const float *a,
		     const int64_t *b_dims, const float *b, const int64_t *y_dims, int y_rank,
		     float *y);

/* Elementwise functions of one operand; alpha and beta are the op's
 * attributes where it has any. */
enum f32_unary {
	F32_SIGMOID,     /* 1 / (1 + e^-x) */
	F32_TANH,
	F32_HARDSIGMOID, /* max(0, min(1, alpha * x + beta)) */
	F32_HARDSWISH,   /* x * max(0, min(1, x / 6 + 1/2)) */
	F32_LEAKYRELU,   /* x < 0 ? alpha * x : x */
	F32_SQRT,
	F32_ERF,
	F32_EXP,
	F32_NEG,
	F32_RECIPROCAL,  /* 1 / x */
	F32_ABS,
	F32_ELU,         /* x < 0 ? alpha * (e^x - 1) : x */
	F32_SELU,        /* beta * (x <= 0 ? alpha * (e^x - 1) : x) */
	F32_CELU,        /* max(0, x) + min(0, alpha * (e^(x / alpha) - 1)) */
	F32_SOFTPLUS,    /* ln(1 + e^x) */
	F32_SOFTSIGN,    /* x / (1 + |x|) */
	F32_THRESHOLDEDRELU, /* x > alpha ? x : 0 */
	F32_LOG,
	F32_UNARY_COUNT
};

/* f(x) for one value: exactly what unary_f32__ref computes per element (the
 * INT8 engine tabulates it over the 256 codes of a quantized input). */
float unary_f32_scalar(enum f32_unary f, float x, float alpha, float beta);

/* y[i] = f(x[i]) for i < count (y may be x). */
void unary_f32__ref(enum f32_unary f, int64_t count, const float *x, float alpha, float beta,
		    float *y);

/* Constant padding: y has dims x_dims[i] + pads[i] + pads[rank + i] (pads are
 * the begin pads of every dimension, then the end pads; all >= 0), x in the
 * middle, value everywhere else. */
void pad_f32__ref(int rank, const int64_t *x_dims, const int64_t *pads, float value,
		  const float *x, float *y);

/* Resize, mode nearest (ONNX): coordinate_transformation_mode and
 * nearest_mode. */
enum resize_coord {
	RESIZE_HALF_PIXEL,
	RESIZE_PYTORCH_HALF_PIXEL,
	RESIZE_ALIGN_CORNERS,
	RESIZE_ASYMMETRIC,
	RESIZE_TF_HALF_PIXEL_FOR_NN,
	RESIZE_COORD_COUNT
};
enum resize_round {
	RESIZE_ROUND_PREFER_FLOOR,
	RESIZE_ROUND_PREFER_CEIL,
	RESIZE_FLOOR,
	RESIZE_CEIL,
	RESIZE_ROUND_COUNT
};

/* map[i] for i < len_out: the input index output index i reads along one
 * dimension of len_in (>= 1) elements resized by `scale` to len_out, as ONNX's
 * Resize with mode nearest computes it (in double precision, clamped to
 * [0, len_in)). */
void resize_nearest_map(enum resize_coord coord, enum resize_round round, int64_t len_in,
			int64_t len_out, float scale, int64_t *map);

/* y[j] = x[the input element output element j reads], both of rank dimensions,
 * elements of elem_bytes bytes (4 for float, 1 for uint8 codes); maps holds
 * the per-dimension maps of resize_nearest_map(), one after the other
 * (y_dims[0] entries, then y_dims[1], ...). */
void resize_nearest__ref(int rank, const int64_t *x_dims, const int64_t *y_dims,
			 const int64_t *maps, size_t elem_bytes, const void *x, void *y);

/* The backward of resize_nearest__ref() on floats: dx[the input element output
 * element j reads] += dy[j] for every j. */
void resize_nearest_backward_f32__ref(int rank, const int64_t *x_dims, const int64_t *y_dims,
				      const int64_t *maps, const float *dy, float *dx);

/* Resize, mode linear, along one dimension: output index i reads input
 * indices i0[i] and i1[i] weighted 1 - w[i] and w[i], its source coordinate
 * (coord, as resize_nearest_map) clamped to [0, len_in - 1] as ONNX's edge
 * padding gives it. align_corners divides by len_resized - 1: len_in times
 * the scale when a scale was given (ONNX's reference: 0.6 of 4 is 2.4, not
 * the 2 elements the output has), else len_out. */
struct resize_taps {
	int64_t *i0, *i1;
	float *w;
};
void resize_linear_map(enum resize_coord coord, int64_t len_in, int64_t len_out, float scale,
		       double len_resized, const struct resize_taps *t);

/* Bilinear resize of x [P][Hi][Wi][C] to y [P][Ho][Wo][C] (C = 1 for planes
 * of NCHW, P = N for NHWC) with the taps of H and W:
 *   y = (1 - wh) ((1 - ww) x00 + ww x01) + wh ((1 - ww) x10 + ww x11).
 * The _u8 form interpolates uint8 codes (the zero point cancels: the weights
 * sum to 1) and rounds to nearest, ties to even. */
void resize_linear_f32__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho, int64_t Wo,
			    const struct resize_taps *th, const struct resize_taps *tw,
			    const float *x, float *y);
void resize_linear_u8__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho, int64_t Wo,
			   const struct resize_taps *th, const struct resize_taps *tw,
			   const uint8_t *x, uint8_t *y);
/* Its backward on floats: each dy spread back over its four sources. */
void resize_linear_backward_f32__ref(int64_t P, int64_t Hi, int64_t Wi, int64_t C, int64_t Ho,
				     int64_t Wo, const struct resize_taps *th,
				     const struct resize_taps *tw, const float *dy, float *dx);

/* Mean over the dimensions d with reduce[d]; y holds the kept dimensions in
 * order (a reduced dimension counts as 1). */
/* ReduceSum, ReduceMax, ReduceMin and ReduceL2 over the dimensions d with
 * reduce[d], y as reduce_mean_f32__ref's; every x adds into its y in x's order
 * (the maximum of nothing is -inf, the minimum +inf, as numpy's identity). */
enum f32_reduce {
	F32_REDUCE_SUM, F32_REDUCE_MAX, F32_REDUCE_MIN, F32_REDUCE_L2, F32_REDUCE_SUMSQUARE
};
void reduce_f32__ref(enum f32_reduce f, int rank, const int64_t *x_dims, const bool *reduce,
		     const float *x, float *y);

void reduce_mean_f32__ref(int rank, const int64_t *x_dims, const bool *reduce, const float *x,
			  float *y);

/* Layer normalisation of each of `outer` rows of `inner` values:
 * y = (x - mean) / sqrt(var + epsilon) * scale + bias, mean and (biased)
 * variance over the row. scale repeats every n_scale values (n_scale divides
 * inner); bias (may be NULL) every n_bias. */
void layernorm_f32__ref(int64_t outer, int64_t inner, const float *x, const float *scale,
			int64_t n_scale, const float *bias, int64_t n_bias, float epsilon, float *y);

/* y[o, k, i] = x[o, first + k * step, i] for k < count, the tensors viewed as
 * [outer, dim, inner] and [outer, count, inner] (every index inside dim). */
void slice_f32__ref(int64_t outer, int64_t dim, int64_t inner, int64_t first, int64_t step,
		    int64_t count, const float *x, float *y);

/* Local response normalisation across channels of [n, c, inner]:
 * y = x / (bias + alpha / size * sum of x^2 over channels
 *      [ch - (size - 1) / 2, ch + size / 2]) ^ beta. */
void lrn_f32__ref(int n, int c, int64_t inner, int size, float alpha, float beta, float bias,
		  const float *x, float *y);

/* Concatenation along an axis: the tensors are viewed as [outer, dim_i, inner]. */
void concat_f32__ref(int n_in, const float *const *xs, const int64_t *axis_dims,
		     int64_t outer, int64_t inner, float *y);

/* (Log)Softmax along one axis: the tensor is viewed as [outer, dim, inner]. */
void softmax_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *x, float *y);
void logsoftmax_f32__ref(int64_t outer, int64_t dim, int64_t inner, const float *x,
			 float *y);

/* y = transpose(x, perm): y.dims[i] = x.dims[perm[i]]. */
void transpose_f32__ref(int rank, const int64_t *x_dims, const int64_t *perm,
			const float *x, float *y);

/* --- Recurrent layers (f32_rnn.c) --------------------------------------------- */

enum rnn_cell { RNN_CELL_RNN, RNN_CELL_GRU, RNN_CELL_LSTM };

/* What an RNN node yields: ONNX's Y (every step's hidden state), Y_h (each
 * direction's last hidden state) or Y_c (LSTM's last cell state). */
enum rnn_out { RNN_OUT_Y, RNN_OUT_H, RNN_OUT_C };

/* An ONNX RNN, GRU or LSTM: X [seq, batch, in] (batch_first: [batch, seq,
 * in]); per direction W [gates * hidden, in], R [gates * hidden, hidden], B
 * [2 * gates * hidden] (W's biases, then R's), LSTM peepholes P [3 * hidden]
 * (i, o, f); initial states, Y_h and Y_c [dirs, batch, hidden] ([batch,
 * dirs, hidden]). Y is [seq, dirs, batch, hidden] ([batch, seq, dirs,
 * hidden]). The default
 * activations only (logistic and tanh), no clip, no input_forget. */
struct rnn_params {
	enum rnn_cell cell;
	int64_t seq, batch, in, hidden;
	int dirs;                 /* 1, or 2: forward and reverse */
	bool reverse;             /* dirs == 1: from the last step to the first */
	bool batch_first;         /* ONNX layout 1 */
	bool linear_before_reset; /* GRU */
	bool projected;           /* X is already X W^T: [.., dirs * gates * hidden], no W */
	bool r_transposed;        /* R is R^T per direction: [hidden, gates * hidden] */
};

struct rnn_tensors {
	const float *x, *w, *r;
	const float *b, *h0, *c0, *peep; /* each may be NULL (zeros) */
};

/* Gates per cell: 1 (RNN), 3 (GRU), 4 (LSTM). */
int rnn_gates(enum rnn_cell cell);

/* Floats of scratch rnn_f32__ref needs, and of the record its backward reads. */
size_t rnn_scratch_floats(const struct rnn_params *p);
size_t rnn_tape_floats(const struct rnn_params *p);

/* y = the output `out` (may be NULL with a tape). With tape (rnn_tape_floats)
 * the gates and states of every step are recorded for rnn_backward_f32. */
void rnn_f32__ref(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		  enum rnn_out out, float *scratch, float *tape);

/* The recurrent product of direction d computed elsewhere (the INT8 engine's,
 * on R quantized): out[b][0 .. n) (row stride ldo) = x[b] (B rows of hidden
 * floats) times R^T's columns from col0 on (0: every gate, or GRU's z and r
 * without linear_before_reset; 2 * hidden: that GRU's h gate, x = r . H'). */
struct rnn_rec {
	void (*product)(void *ctx, int d, int64_t col0, int64_t n, int64_t batch, const float *x,
			float *out, int64_t ldo);
	void *ctx;
};

/* rnn_f32__ref with every H' R^T (and GRU's (r . H') Rh^T) from rec. */
void rnn_f32_rec(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		 enum rnn_out out, float *scratch, const struct rnn_rec *rec);

/* The same with the gate loops' portable code alone, on any CPU (where the
 * CPU has AVX2 or AVX-512, rnn_f32__ref runs them in 8 or 16 lanes, every
 * value the same: tests/test_kernels_f32.c). */
void rnn_f32__portable(const struct rnn_params *p, const struct rnn_tensors *in, float *y,
		       enum rnn_out out, float *scratch, float *tape);

#endif
