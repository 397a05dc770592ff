/* test_train_grad.c - every backward pass of the training engine against
 * finite differences, and the backward kernels against their adjoints.
 *
 * Graph tests: a tiny model per op (built in memory with onnx_builder), a
 * random input and a random linear loss L = sum r * logits. For each parameter
 * tensor and a few random directions d, the analytic directional derivative
 * g . d from tnet_backward is compared with the central difference
 * (L(p + h d) - L(p - h d)) / 2h. Along one parameter tensor the loss is a
 * polynomial of degree <= 2 in h between the kinks of Relu/Clip/MaxPool for
 * every op here but Softmax and batch-statistics BatchNorm, so the central
 * difference is exact there up to rounding; ops that have no parameter are
 * placed between two that do, so their backward decides the first one's
 * gradient.
 *
 * Kernel tests: conv and gemm backward are the adjoints of the forward:
 * <dy, conv(x, w)> = <conv_data^T(dy), x> = <conv_filter^T(x, dy), w>, checked
 * on hundreds of random shapes (groups, depthwise, 1x1, strides, pads,
 * dilations) in double against a direct oracle.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_train.h"
#include "model/engine.h"
#include "model/graph.h"
#include "quant/quant.h"
#include "tests/onnx_builder.h"
#include "train/tnet.h"

/* Steps of the central differences, tried in order until one agrees. Along
 * one parameter tensor the loss is a polynomial of degree <= 2 between kinks
 * (Relu/Clip bounds, MaxPool argmax switches), so a step that crosses no kink
 * gives the derivative up to rounding; a kink within +-h moves the difference
 * by about (crossing units / all units) / 2. A correct gradient agrees at some
 * step (the crossings vanish as h shrinks); a wrong or missing term disagrees
 * at every step by its own size. */
static const double fd_steps[] = {1e-3, 3e-4, 1e-4};
/* |fd - g.d| <= FD_TOL_REL * sum|g_i d_i| + FD_TOL_ABS * (1e-3 / h): the loss
 * is a double sum of float logits, each off by ~1e-7 relative after a few
 * layers, so L is off by ~1e-6 absolute (~100 terms of ~1), and the difference
 * by ~1e-6 / 2h: 5e-4 at h = 1e-3. */
#define FD_TOL_REL 2e-3
#define FD_TOL_ABS 1e-3
/* Softmax and batch-statistics BatchNorm curve within h: truncation error
 * h^2 |L'''| / 6, below 1e-5 relative here; rounding dominates as above. */
#define FD_TOL_REL_CURVED 5e-3
#define FD_DIRECTIONS 3

/* Adjoint identities summed in float: relative to the sum of |terms|. */
#define ADJ_TOL 1e-5

/* ---- random numbers --------------------------------------------------------- */

static uint64_t rs;

static uint64_t rnext(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float runif(void) /* [-1, 1) */
{
	return (float)((double)(rnext() >> 40) / (double)(1ull << 23) - 1.0);
}

static int rint_in(int lo, int hi)
{
	return lo + (int)(rnext() % (uint64_t)(hi - lo + 1));
}

static float *rbuf(int64_t n, float scale)
{
	float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
	cr_assert_not_null(p);
	for (int64_t i = 0; i < n; i++)
		p[i] = runif() * scale;
	return p;
}

/* ---- model building ---------------------------------------------------------- */

static int n_inits;

/* A random float initializer called name. */
static void init_rand(struct mb *b, const char *name, const int64_t *dims, int n_dims,
		      float scale)
{
	int64_t n = 1;
	for (int i = 0; i < n_dims; i++)
		n *= dims[i];
	float *d = rbuf(n, scale);
	mb_init_f32(b, name, dims, n_dims, d);
	free(d);
	n_inits++;
}

static void init_const(struct mb *b, const char *name, const int64_t *dims, int n_dims,
		       float value)
{
	int64_t n = 1;
	for (int i = 0; i < n_dims; i++)
		n *= dims[i];
	float *d = malloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		d[i] = value;
	mb_init_f32(b, name, dims, n_dims, d);
	free(d);
}

/* A Conv node: weight [c_out, c_in/group, kh, kw] (and bias) made here. */
static Onnx__NodeProto *conv(struct mb *b, const char *name, const char *x, const char *y,
			     int c_in, int c_out, int kh, int kw, int group, bool bias)
{
	char wn[64], bn[64];
	snprintf(wn, sizeof wn, "%s.w", name);
	snprintf(bn, sizeof bn, "%s.b", name);
	int64_t wd[4] = {c_out, c_in / group, kh, kw}, bd[1] = {c_out};
	init_rand(b, wn, wd, 4, 1.0f / sqrtf((float)(c_in / group * kh * kw)));
	if (bias)
		init_rand(b, bn, bd, 1, 0.5f);
	Onnx__NodeProto *n = mb_node(b, "Conv", name,
				     bias ? (const char *[]){x, wn, bn, NULL}
					  : (const char *[]){x, wn, NULL},
				     y);
	int64_t ks[2] = {kh, kw};
	mb_attr_ints(b, n, "kernel_shape", ks, 2);
	if (group > 1)
		mb_attr_int(b, n, "group", group);
	return n;
}

static void pads(struct mb *b, Onnx__NodeProto *n, int t, int l, int bo, int r)
{
	int64_t p[4] = {t, l, bo, r};
	mb_attr_ints(b, n, "pads", p, 4);
}

static void strides(struct mb *b, Onnx__NodeProto *n, int sh, int sw)
{
	int64_t s[2] = {sh, sw};
	mb_attr_ints(b, n, "strides", s, 2);
}

static struct graph *load(struct mb *b, bool keep_bn)
{
	size_t n;
	uint8_t *bytes = mb_pack(b, &n);
	struct graph *g = NULL;
	struct graph_load_opts o = {.keep_batchnorm = keep_bn};
	enum presso_status s = graph_load_onnx_bytes_opts(bytes, n, NULL, &o, &g);
	cr_assert_eq(s, PRESSO_OK, "load: %s", status_msg());
	return g;
}

/* ---- the finite-difference check --------------------------------------------- */

struct fixture {
	struct graph *g;
	struct tnet *t;
	struct tnet_ws *w;
	int batch;
	float *x;   /* input */
	int64_t x_n;
	float *r;   /* loss weights, [batch, classes] */
	float *grad;
};

static double loss(struct fixture *f)
{
	memcpy(tnet_ws_input(f->w, 0), f->x, sizeof(float) * (size_t)f->x_n);
	cr_assert_eq(tnet_forward(f->t, f->w, f->batch), PRESSO_OK, "%s", status_msg());
	const float *y = tnet_ws_logits(f->w);
	double l = 0.0;
	for (int64_t i = 0; i < (int64_t)f->batch * tnet_n_classes(f->t); i++)
		l += (double)f->r[i] * y[i];
	return l;
}

static void gradient(struct fixture *f)
{
	loss(f);
	memcpy(tnet_ws_logits_grad(f->w), f->r,
	       sizeof(float) * (size_t)f->batch * (size_t)tnet_n_classes(f->t));
	memset(f->grad, 0, sizeof(float) * (size_t)tnet_n_floats(f->t));
	tnet_backward(f->t, f->w, f->grad);
}

static void fixture_open(struct fixture *f, struct graph *g, int batch, enum tnet_bn_mode bn)
{
	memset(f, 0, sizeof *f);
	f->g = g;
	f->batch = batch;
	cr_assert_eq(tnet_create(g, bn, &f->t), PRESSO_OK, "tnet_create: %s", status_msg());
	cr_assert_eq(tnet_ws_create(f->t, batch, &f->w), PRESSO_OK, "%s", status_msg());
	const struct value *in = &g->values[g->inputs[0]];
	f->x_n = shape_numel(&in->shape) * batch;
	f->x = rbuf(f->x_n, 1.0f);
	f->r = rbuf((int64_t)batch * tnet_n_classes(f->t), 1.0f);
	f->grad = calloc((size_t)tnet_n_floats(f->t) + 1, sizeof(float));
}

static void fixture_close(struct fixture *f)
{
	tnet_ws_free(f->w);
	tnet_free(f->t);
	graph_free(f->g);
	free(f->x);
	free(f->r);
	free(f->grad);
}

/* Checks every parameter's gradient along FD_DIRECTIONS random directions. */
static void check_params(struct fixture *f, double tol_rel, const char *what)
{
	gradient(f);
	cr_assert_gt(tnet_n_params(f->t), 0, "%s: no parameters", what);
	for (int p = 0; p < tnet_n_params(f->t); p++) {
		const struct tnet_param *tp = tnet_param(f->t, p);
		float *data = tnet_param_data(f->t, p);
		float *keep = malloc(sizeof(float) * (size_t)tp->n);
		memcpy(keep, data, sizeof(float) * (size_t)tp->n);
		for (int dir = 0; dir < FD_DIRECTIONS; dir++) {
			float *d = rbuf(tp->n, 1.0f);
			double an = 0.0, mag = 0.0, fd = 0.0, err = INFINITY, tol = 0.0;
			for (int64_t i = 0; i < tp->n; i++) {
				double gi = f->grad[tp->offset + i];
				an += gi * d[i];
				mag += fabs(gi * d[i]);
			}
			for (size_t si = 0; si < sizeof fd_steps / sizeof fd_steps[0] && err > tol; si++) {
				double h = fd_steps[si];
				for (int64_t i = 0; i < tp->n; i++)
					data[i] = (float)(keep[i] + h * d[i]);
				double lp = loss(f);
				for (int64_t i = 0; i < tp->n; i++)
					data[i] = (float)(keep[i] - h * d[i]);
				double lm = loss(f);
				memcpy(data, keep, sizeof(float) * (size_t)tp->n);
				fd = (lp - lm) / (2.0 * h);
				err = fabs(fd - an);
				tol = tol_rel * mag + FD_TOL_ABS * (1e-3 / h);
			}
			cr_expect_leq(err, tol,
				      "%s: parameter '%s' (kind %d), direction %d: finite difference %.7g, backward %.7g (sum |g d| %.4g)",
				      what, f->g->values[tp->value].name, (int)tp->kind, dir, fd, an,
				      mag);
			free(d);
		}
		free(keep);
	}
}

static void run_check(struct mb *b, int batch, bool keep_bn, enum tnet_bn_mode bn,
		      double tol_rel, const char *what)
{
	struct fixture f;
	fixture_open(&f, load(b, keep_bn), batch, bn);
	check_params(&f, tol_rel, what);
	fixture_close(&f);
}

/* ---- graph tests ------------------------------------------------------------ */

/* x -> Conv 1x1 (params before the conv under test) -> Conv(variant) -> y */
struct conv_case {
	int c_in, c_out, group, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, h, w;
};

static void conv_case_check(const struct conv_case *c, const char *what)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, c->c_in, c->h, c->w};
	mb_input(&b, "x", xd, 4);
	conv(&b, "pre", "x", "a", c->c_in, c->c_in, 1, 1, 1, true);
	Onnx__NodeProto *n = conv(&b, "conv", "a", "y", c->c_in, c->c_out, c->kh, c->kw,
				  c->group, true);
	strides(&b, n, c->sh, c->sw);
	pads(&b, n, c->pt, c->pl, c->pb, c->pr);
	int64_t dl[2] = {c->dh, c->dw};
	mb_attr_ints(&b, n, "dilations", dl, 2);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, what);
	mb_free(&b);
}

Test(train_grad, conv_variants)
{
	rs = 11;
	const struct conv_case cases[] = {
		{3, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 5},   /* 3x3 same */
		{4, 6, 2, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 7, 7},   /* grouped, stride 2 */
		{5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6},   /* depthwise */
		{6, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7, 8},   /* depthwise stride 2 */
		{4, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 5, 4},   /* pointwise */
		{2, 3, 1, 1, 1, 2, 1, 0, 0, 0, 0, 1, 1, 5, 5},   /* 1x1 strided */
		{3, 2, 1, 5, 3, 1, 2, 2, 0, 1, 2, 1, 1, 8, 7},   /* odd kernel, odd pads */
		{2, 4, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 7, 6},   /* dilation 2 */
		{4, 4, 4, 5, 5, 2, 1, 2, 2, 2, 2, 1, 1, 9, 9},   /* depthwise 5x5 */
		{6, 4, 2, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 6, 6},   /* grouped 2x2 */
	};
	char what[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(what, sizeof what, "conv case %zu", i);
		conv_case_check(&cases[i], what);
	}
}

static void gemm_check(bool trans_b, float alpha, float beta, int c_kind)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[2] = {-1, 6};
	mb_input(&b, "x", xd, 2);
	int64_t w0[2] = {6, 5};
	init_rand(&b, "w0", w0, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"x", "w0", NULL}, "a");
	int64_t wd[2] = {trans_b ? 4 : 5, trans_b ? 5 : 4};
	init_rand(&b, "w", wd, 2, 0.5f);
	int64_t cd[2] = {1, 4};
	if (c_kind == 0)
		init_rand(&b, "c", cd + 1, 1, 0.5f);  /* [N] */
	else if (c_kind == 1)
		init_rand(&b, "c", cd, 2, 0.5f);      /* [1, N] */
	else
		init_rand(&b, "c", cd, 1, 0.5f);      /* [1]: a scalar */
	Onnx__NodeProto *n = mb_node(&b, "Gemm", "gemm", (const char *[]){"a", "w", "c", NULL}, "y");
	mb_attr_int(&b, n, "transB", trans_b);
	mb_attr_float(&b, n, "alpha", alpha);
	mb_attr_float(&b, n, "beta", beta);
	mb_output(&b, "y");
	char what[64];
	snprintf(what, sizeof what, "gemm transB %d alpha %g beta %g C kind %d", trans_b, alpha,
		 beta, c_kind);
	run_check(&b, 3, false, TNET_BN_FROZEN, FD_TOL_REL, what);
	mb_free(&b);
}

Test(train_grad, gemm_and_matmul)
{
	rs = 12;
	gemm_check(true, 1.0f, 1.0f, 0);
	gemm_check(false, 1.0f, 1.0f, 1);
	gemm_check(true, 0.5f, 2.0f, 2);
	gemm_check(false, -1.5f, 0.25f, 0);
}

Test(train_grad, matmul_rank3)
{
	rs = 13;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[3] = {-1, 3, 5};
	mb_input(&b, "x", xd, 3);
	int64_t w0[2] = {5, 4}, w1[2] = {4, 2};
	init_rand(&b, "w0", w0, 2, 0.5f);
	init_rand(&b, "w1", w1, 2, 0.5f);
	mb_node(&b, "MatMul", "mm0", (const char *[]){"x", "w0", NULL}, "a");
	mb_node(&b, "MatMul", "mm1", (const char *[]){"a", "w1", NULL}, "y");
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "matmul rank 3");
	mb_free(&b);
}

/* x -> Conv -> OP -> Conv -> y for the parameterless op under test. */
static void between_convs(const char *op, void (*attrs)(struct mb *, Onnx__NodeProto *),
			  int c, int h, int w, int c_after, const char *what)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, c, h, w};
	mb_input(&b, "x", xd, 4);
	Onnx__NodeProto *n0 = conv(&b, "c0", "x", "a", c, c, 3, 3, 1, true);
	pads(&b, n0, 1, 1, 1, 1);
	Onnx__NodeProto *n = mb_node(&b, op, "op", (const char *[]){"a", NULL}, "o");
	if (attrs)
		attrs(&b, n);
	conv(&b, "c1", "o", "y", c_after, 2, 1, 1, 1, true);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, what);
	mb_free(&b);
}

static void attrs_pool_2x2(struct mb *b, Onnx__NodeProto *n)
{
	int64_t k[2] = {2, 2};
	mb_attr_ints(b, n, "kernel_shape", k, 2);
	strides(b, n, 2, 2);
}

static void attrs_pool_3x3_pad(struct mb *b, Onnx__NodeProto *n)
{
	int64_t k[2] = {3, 3};
	mb_attr_ints(b, n, "kernel_shape", k, 2);
	strides(b, n, 2, 1);
	pads(b, n, 1, 1, 1, 0);
}

static void attrs_avg_include_pad(struct mb *b, Onnx__NodeProto *n)
{
	attrs_pool_3x3_pad(b, n);
	mb_attr_int(b, n, "count_include_pad", 1);
}

static void attrs_clip(struct mb *b, Onnx__NodeProto *n)
{
	mb_attr_float(b, n, "min", -0.3f);
	mb_attr_float(b, n, "max", 0.4f);
}

static void attrs_transpose(struct mb *b, Onnx__NodeProto *n)
{
	int64_t perm[4] = {0, 1, 3, 2};
	mb_attr_ints(b, n, "perm", perm, 4);
}

Test(train_grad, elementwise_and_pools)
{
	rs = 14;
	between_convs("Relu", NULL, 3, 5, 6, 3, "relu");
	between_convs("Clip", attrs_clip, 3, 5, 6, 3, "clip (opset 6 attributes)");
	between_convs("MaxPool", attrs_pool_2x2, 3, 6, 6, 3, "maxpool 2x2");
	between_convs("MaxPool", attrs_pool_3x3_pad, 2, 7, 6, 2, "maxpool 3x3 padded");
	between_convs("AveragePool", attrs_pool_2x2, 3, 6, 7, 3, "avgpool 2x2");
	between_convs("AveragePool", attrs_pool_3x3_pad, 2, 7, 6, 2, "avgpool 3x3 padded");
	between_convs("AveragePool", attrs_avg_include_pad, 2, 7, 6, 2,
		      "avgpool count_include_pad");
	between_convs("GlobalAveragePool", NULL, 3, 5, 4, 3, "global average pool");
	between_convs("Transpose", attrs_transpose, 3, 5, 4, 3, "transpose");
	between_convs("Identity", NULL, 3, 4, 4, 3, "identity");
}

static void attrs_hardsigmoid(struct mb *b, Onnx__NodeProto *n)
{
	mb_attr_float(b, n, "alpha", 0.25f);
	mb_attr_float(b, n, "beta", 0.4f);
}

static void attrs_leaky(struct mb *b, Onnx__NodeProto *n)
{
	mb_attr_float(b, n, "alpha", 0.1f);
}

static void attrs_celu(struct mb *b, Onnx__NodeProto *n)
{
	mb_attr_float(b, n, "alpha", 1.5f);
}

/* The element-wise functions of MobileNetV3, EfficientNet and GELU (their
 * gradients had passed through unchanged, as if each were the identity), and
 * the ELU family, Softplus (Mish), Softsign and ThresholdedRelu. */
Test(train_grad, elementwise_functions)
{
	rs = 15;
	between_convs("Sigmoid", NULL, 3, 5, 6, 3, "sigmoid");
	between_convs("Tanh", NULL, 3, 5, 6, 3, "tanh");
	between_convs("HardSigmoid", attrs_hardsigmoid, 3, 5, 6, 3, "hardsigmoid");
	between_convs("HardSwish", NULL, 3, 5, 6, 3, "hardswish");
	between_convs("LeakyRelu", attrs_leaky, 3, 5, 6, 3, "leakyrelu");
	between_convs("Erf", NULL, 3, 5, 6, 3, "erf");
	between_convs("Exp", NULL, 3, 5, 6, 3, "exp");
	between_convs("Neg", NULL, 3, 5, 6, 3, "neg");
	between_convs("Abs", NULL, 3, 5, 6, 3, "abs");
	between_convs("Elu", attrs_leaky, 3, 5, 6, 3, "elu");
	between_convs("Selu", NULL, 3, 5, 6, 3, "selu");
	between_convs("Celu", attrs_celu, 3, 5, 6, 3, "celu");
	between_convs("Softplus", NULL, 3, 5, 6, 3, "softplus");
	between_convs("Softsign", NULL, 3, 5, 6, 3, "softsign");
	between_convs("ThresholdedRelu", attrs_leaky, 3, 5, 6, 3, "thresholdedrelu");
}

/* SiLU (x * sigmoid(x)), a squeeze-excite gate (ReduceMean over H and W,
 * 1x1 convs, HardSigmoid, Mul of [N,C,H,W] by [N,C,1,1]), Sub and Div of
 * activations and of constants that broadcast, and Sum. */
Test(train_grad, mul_sub_div_sum_reducemean_broadcast)
{
	rs = 19;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 3, 5, 4};
	mb_input(&b, "x", xd, 4);
	Onnx__NodeProto *n = conv(&b, "ca", "x", "a", 3, 4, 3, 3, 1, true);
	pads(&b, n, 1, 1, 1, 1);
	mb_node(&b, "Sigmoid", "sig", (const char *[]){"a", NULL}, "sa");
	mb_node(&b, "Mul", "silu", (const char *[]){"a", "sa", NULL}, "s");
	n = mb_node(&b, "ReduceMean", "squeeze", (const char *[]){"s", NULL}, "m");
	int64_t axes[2] = {2, 3};
	mb_attr_ints(&b, n, "axes", axes, 2);
	mb_attr_int(&b, n, "keepdims", 1);
	conv(&b, "reduce", "m", "r", 4, 2, 1, 1, 1, true);
	mb_node(&b, "Relu", "rr", (const char *[]){"r", NULL}, "r1");
	conv(&b, "expand", "r1", "e", 2, 4, 1, 1, 1, true);
	mb_node(&b, "HardSigmoid", "gate", (const char *[]){"e", NULL}, "gt");
	mb_node(&b, "Mul", "excite", (const char *[]){"s", "gt", NULL}, "se");
	int64_t kd[3] = {4, 1, 1};
	init_rand(&b, "k", kd, 3, 0.5f);
	init_const(&b, "two", NULL, 0, 2.0f);
	mb_node(&b, "Sub", "minus_k", (const char *[]){"se", "k", NULL}, "d0");
	mb_node(&b, "Sub", "from_gate", (const char *[]){"gt", "d0", NULL}, "d1");
	mb_node(&b, "Add", "plus_two", (const char *[]){"gt", "two", NULL}, "den");
	mb_node(&b, "Div", "ratio", (const char *[]){"d1", "den", NULL}, "q");
	mb_node(&b, "Sum", "sum", (const char *[]){"q", "se", "m", NULL}, "u");
	conv(&b, "cc", "u", "y", 4, 2, 1, 1, 1, false);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "mul, sub, div, sum, reducemean");
	mb_free(&b);
}

Test(train_grad, clip_opset13_is_relu6)
{
	rs = 15;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 2, 4, 4}, sc[1] = {1};
	(void)sc;
	mb_input(&b, "x", xd, 4);
	conv(&b, "c0", "x", "a", 2, 3, 1, 1, 1, true);
	init_const(&b, "lo", NULL, 0, 0.0f);
	init_const(&b, "hi", NULL, 0, 0.5f);
	mb_node(&b, "Clip", "clip", (const char *[]){"a", "lo", "hi", NULL}, "o");
	conv(&b, "c1", "o", "y", 3, 2, 1, 1, 1, true);
	mb_output(&b, "y");
	run_check(&b, 3, false, TNET_BN_FROZEN, FD_TOL_REL, "clip with constant bounds");
	mb_free(&b);
}

Test(train_grad, add_broadcasts)
{
	rs = 16;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 3, 5, 4};
	mb_input(&b, "x", xd, 4);
	conv(&b, "ca", "x", "a", 3, 3, 1, 1, 1, true);
	Onnx__NodeProto *nb = conv(&b, "cb", "x", "bb", 3, 3, 3, 3, 1, false);
	pads(&b, nb, 1, 1, 1, 1);
	mb_node(&b, "Add", "add_same", (const char *[]){"a", "bb", NULL}, "s");   /* same shape */
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"a", NULL}, "p");
	mb_node(&b, "Add", "add_bcast", (const char *[]){"s", "p", NULL}, "t");   /* [N,C,1,1] */
	int64_t kd[3] = {3, 1, 1};
	init_rand(&b, "k", kd, 3, 0.5f);
	mb_node(&b, "Add", "add_const", (const char *[]){"k", "t", NULL}, "u");   /* const [C,1,1] */
	conv(&b, "cc", "u", "y", 3, 2, 1, 1, 1, false);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "add (same, broadcast, constant)");
	mb_free(&b);
}

Test(train_grad, concat_flatten_reshape)
{
	rs = 17;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 2, 4, 3};
	mb_input(&b, "x", xd, 4);
	conv(&b, "ca", "x", "a", 2, 3, 1, 1, 1, true);
	conv(&b, "cb", "x", "bb", 2, 2, 1, 1, 1, true);
	Onnx__NodeProto *n = mb_node(&b, "Concat", "cat", (const char *[]){"a", "bb", "a", NULL}, "c");
	mb_attr_int(&b, n, "axis", 1);
	conv(&b, "cc", "c", "d", 8, 3, 1, 1, 1, true);
	mb_node(&b, "Flatten", "flat", (const char *[]){"d", NULL}, "f");
	int64_t sd[1] = {3}, shape[3] = {0, 6, 6};
	mb_init_i64(&b, "shape", sd, 1, shape);
	mb_node(&b, "Reshape", "rs", (const char *[]){"f", "shape", NULL}, "r");
	int64_t wd[2] = {6, 4};
	init_rand(&b, "w", wd, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"r", "w", NULL}, "y");
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "concat, flatten, reshape");
	mb_free(&b);
}

static void softmax_model(struct mb *b, const char *op, bool at_end)
{
	mb_init(b, 13);
	int64_t xd[2] = {-1, 5};
	mb_input(b, "x", xd, 2);
	int64_t w0[2] = {5, 4}, c0[1] = {4}, w1[2] = {4, 3};
	init_rand(b, "w0", w0, 2, 1.0f);
	init_rand(b, "c0", c0, 1, 0.5f);
	mb_node(b, "Gemm", "g0", (const char *[]){"x", "w0", "c0", NULL}, "a");
	Onnx__NodeProto *n = mb_node(b, op, "sm", (const char *[]){"a", NULL}, at_end ? "y" : "s");
	mb_attr_int(b, n, "axis", 1);
	if (!at_end) {
		init_rand(b, "w1", w1, 2, 1.0f);
		mb_node(b, "MatMul", "mm", (const char *[]){"s", "w1", NULL}, "y");
	}
	mb_output(b, "y");
}

Test(train_grad, softmax_inside)
{
	rs = 18;
	struct mb b;
	softmax_model(&b, "Softmax", false);
	run_check(&b, 3, false, TNET_BN_FROZEN, FD_TOL_REL_CURVED, "softmax inside");
	mb_free(&b);
	softmax_model(&b, "LogSoftmax", false);
	run_check(&b, 3, false, TNET_BN_FROZEN, FD_TOL_REL_CURVED, "logsoftmax inside");
	mb_free(&b);
}

/* A final Softmax is skipped: the logits are its input. */
Test(train_grad, final_softmax_is_skipped)
{
	rs = 19;
	struct mb b;
	softmax_model(&b, "Softmax", true);
	struct fixture f;
	fixture_open(&f, load(&b, false), 2, TNET_BN_FROZEN);
	int lv = tnet_logits_value(f.t);
	cr_assert_str_eq(f.g->values[lv].name, "a");
	check_params(&f, FD_TOL_REL, "final softmax skipped");
	fixture_close(&f);
	mb_free(&b);
}

static void bn_model(struct mb *b, bool after_conv)
{
	mb_init(b, 13);
	int64_t xd[4] = {-1, 2, 5, 4}, cd[1] = {3};
	mb_input(b, "x", xd, 4);
	Onnx__NodeProto *n = conv(b, "c0", "x", "a", 2, 3, 3, 3, 1, true);
	pads(b, n, 1, 1, 1, 1);
	const char *bn_in = "a";
	if (!after_conv) {
		mb_node(b, "Relu", "relu", (const char *[]){"a", NULL}, "r");
		bn_in = "r";
	}
	init_rand(b, "gamma", cd, 1, 1.0f);
	init_rand(b, "beta", cd, 1, 0.5f);
	init_rand(b, "mean", cd, 1, 0.3f);
	float var[3] = {0.5f, 1.5f, 0.8f};
	mb_init_f32(b, "var", cd, 1, var);
	Onnx__NodeProto *bn = mb_node(b, "BatchNormalization", "bn",
				      (const char *[]){bn_in, "gamma", "beta", "mean", "var", NULL},
				      "o");
	mb_attr_float(b, bn, "epsilon", 1e-3f);
	conv(b, "c1", "o", "y", 3, 2, 1, 1, 1, true);
	mb_output(b, "y");
}

Test(train_grad, batchnorm_frozen_and_batch)
{
	rs = 20;
	struct mb b;
	bn_model(&b, false);
	run_check(&b, 3, false, TNET_BN_FROZEN, FD_TOL_REL, "batchnorm after relu, frozen");
	run_check(&b, 3, false, TNET_BN_BATCH, FD_TOL_REL_CURVED,
		  "batchnorm after relu, batch statistics");
	mb_free(&b);
	bn_model(&b, true);
	run_check(&b, 3, true, TNET_BN_FROZEN, FD_TOL_REL, "batchnorm kept after conv, frozen");
	run_check(&b, 3, true, TNET_BN_BATCH, FD_TOL_REL_CURVED,
		  "batchnorm kept after conv, batch statistics");
	mb_free(&b);
}

/* A MobileNetV2-style block: expand 1x1 + ReLU6, depthwise 3x3 + ReLU6,
 * project 1x1, residual Add, then GAP, Flatten, Gemm. */
Test(train_grad, inverted_residual_block)
{
	rs = 21;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 3, 6, 6};
	mb_input(&b, "x", xd, 4);
	Onnx__NodeProto *n = conv(&b, "stem", "x", "s", 3, 4, 3, 3, 1, true);
	pads(&b, n, 1, 1, 1, 1);
	mb_node(&b, "Relu", "r0", (const char *[]){"s", NULL}, "s1");
	conv(&b, "expand", "s1", "e", 4, 8, 1, 1, 1, true);
	init_const(&b, "zero", NULL, 0, 0.0f);
	init_const(&b, "six", NULL, 0, 6.0f);
	mb_node(&b, "Clip", "r1", (const char *[]){"e", "zero", "six", NULL}, "e1");
	n = conv(&b, "dw", "e1", "d", 8, 8, 3, 3, 8, true);
	pads(&b, n, 1, 1, 1, 1);
	mb_node(&b, "Clip", "r2", (const char *[]){"d", "zero", "six", NULL}, "d1");
	conv(&b, "project", "d1", "p", 8, 4, 1, 1, 1, true);
	mb_node(&b, "Add", "res", (const char *[]){"p", "s1", NULL}, "a");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"a", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	int64_t wd[2] = {5, 4}, cd[1] = {5};
	init_rand(&b, "fc.w", wd, 2, 0.5f);
	init_rand(&b, "fc.b", cd, 1, 0.5f);
	n = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "fc.w", "fc.b", NULL}, "y");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "y");
	run_check(&b, 4, false, TNET_BN_FROZEN, FD_TOL_REL, "inverted residual block");
	mb_free(&b);
}

/* Attention over [N, T, D] tokens: q, k, v projections, q k^T through a
 * Transpose, a scaled Softmax, weights times v, an output projection, then
 * a MatMul by one matrix (B rank 2) of two activations' product. */
Test(train_grad, attention_matmuls_of_two_activations)
{
	rs = 31;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[3] = {-1, 4, 6};
	mb_input(&b, "x", xd, 3);
	int64_t wd[2] = {6, 6};
	init_rand(&b, "wq", wd, 2, 0.5f);
	init_rand(&b, "wk", wd, 2, 0.5f);
	init_rand(&b, "wv", wd, 2, 0.5f);
	init_rand(&b, "wo", wd, 2, 0.5f);
	init_const(&b, "scale", NULL, 0, 0.4f);
	mb_node(&b, "MatMul", "q", (const char *[]){"x", "wq", NULL}, "q");
	mb_node(&b, "MatMul", "k", (const char *[]){"x", "wk", NULL}, "k");
	mb_node(&b, "MatMul", "v", (const char *[]){"x", "wv", NULL}, "v");
	Onnx__NodeProto *n = mb_node(&b, "Transpose", "kt", (const char *[]){"k", NULL}, "kt");
	int64_t perm[3] = {0, 2, 1};
	mb_attr_ints(&b, n, "perm", perm, 3);
	mb_node(&b, "MatMul", "scores", (const char *[]){"q", "kt", NULL}, "s");
	mb_node(&b, "Mul", "scaled", (const char *[]){"s", "scale", NULL}, "ss");
	n = mb_node(&b, "Softmax", "attn", (const char *[]){"ss", NULL}, "p");
	mb_attr_int(&b, n, "axis", -1);
	mb_node(&b, "MatMul", "mix", (const char *[]){"p", "v", NULL}, "o");
	mb_node(&b, "MatMul", "out", (const char *[]){"o", "wo", NULL}, "h");
	mb_node(&b, "MatMul", "gram", (const char *[]){"p", "h", NULL}, "y");
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "attention");
	mb_free(&b);
}

/* ---- what the tnet refuses ---------------------------------------------------- */

/* A MatMul of two activations whose batch dimensions differ (broadcast) has
 * no backward here: refused by name. */
Test(train_grad, refuses_matmul_of_two_activations_of_other_batches)
{
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 2, 3, 4};
	mb_input(&b, "x", xd, 4);
	int64_t wd[2] = {4, 4};
	init_rand(&b, "w", wd, 2, 0.5f);
	mb_node(&b, "MatMul", "proj", (const char *[]){"x", "w", NULL}, "p");
	mb_init_i64(&b, "starts", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "ends", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_i64(&b, "axes", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_node(&b, "Slice", "one", (const char *[]){"p", "starts", "ends", "axes", NULL}, "p1");
	Onnx__NodeProto *n = mb_node(&b, "Transpose", "t", (const char *[]){"p", NULL}, "pt");
	int64_t perm[4] = {0, 1, 3, 2};
	mb_attr_ints(&b, n, "perm", perm, 4);
	mb_node(&b, "MatMul", "mm", (const char *[]){"p1", "pt", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load(&b, false);
	struct tnet *t = NULL;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_E_UNSUPPORTED);
	cr_assert_null(t);
	cr_assert(strstr(status_msg(), "node 'mm'"), "%s", status_msg());
	graph_free(g);
	mb_free(&b);
}

/* LayerNormalization over channels-last values (ConvNeXt: Transpose, LN over
 * C with a scale and B, Transpose back) and InstanceNormalization (a
 * LayerNormalization from axis 2, then a per-channel scale and B), between
 * convolutions. */
Test(train_grad, layer_and_instance_normalization)
{
	rs = 23;
	for (int inst = 0; inst < 2; inst++) {
		struct mb b;
		mb_init(&b, 17);
		int64_t xd[4] = {-1, 3, 5, 4};
		mb_input(&b, "x", xd, 4);
		Onnx__NodeProto *n = conv(&b, "c0", "x", "a", 3, 4, 3, 3, 1, true);
		pads(&b, n, 1, 1, 1, 1);
		int64_t cd[1] = {4};
		init_rand(&b, "gamma", cd, 1, 0.8f);
		init_rand(&b, "beta", cd, 1, 0.5f);
		if (inst) {
			n = mb_node(&b, "InstanceNormalization", "inorm",
				    (const char *[]){"a", "gamma", "beta", NULL}, "o");
		} else {
			n = mb_node(&b, "Transpose", "to_last", (const char *[]){"a", NULL}, "al");
			int64_t p1[4] = {0, 2, 3, 1}, p2[4] = {0, 3, 1, 2};
			mb_attr_ints(&b, n, "perm", p1, 4);
			n = mb_node(&b, "LayerNormalization", "ln",
				    (const char *[]){"al", "gamma", "beta", NULL}, "nl");
			mb_attr_int(&b, n, "axis", -1);
			n = mb_node(&b, "Transpose", "to_first", (const char *[]){"nl", NULL}, "o");
			mb_attr_ints(&b, n, "perm", p2, 4);
		}
		conv(&b, "c1", "o", "y", 4, 2, 1, 1, 1, true);
		mb_output(&b, "y");
		run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL,
			  inst ? "instance normalization" : "layer normalization over channels");
		mb_free(&b);
	}
}

/* Slice (ShuffleNet's channel split; a strided one along the width) and
 * constant Pad (TensorFlow exports and DenseNet's transitions) between
 * convolutions. */
Test(train_grad, slice_and_pad)
{
	rs = 29;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 3, 5, 6};
	mb_input(&b, "x", xd, 4);
	Onnx__NodeProto *n = conv(&b, "c0", "x", "a", 3, 4, 3, 3, 1, true);
	pads(&b, n, 1, 1, 1, 1);
	mb_init_i64(&b, "s_start", (int64_t[]){2}, 1, (int64_t[]){1, 0});
	mb_init_i64(&b, "s_end", (int64_t[]){2}, 1, (int64_t[]){3, 6});
	mb_init_i64(&b, "s_axes", (int64_t[]){2}, 1, (int64_t[]){1, 3});
	mb_init_i64(&b, "s_steps", (int64_t[]){2}, 1, (int64_t[]){1, 2});
	mb_node(&b, "Slice", "split", (const char *[]){"a", "s_start", "s_end", "s_axes", "s_steps", NULL},
		"sl");
	mb_init_i64(&b, "p", (int64_t[]){8}, 1, (int64_t[]){0, 0, 1, 2, 0, 0, 2, 1});
	mb_node(&b, "Pad", "pad", (const char *[]){"sl", "p", NULL}, "pd");
	conv(&b, "c1", "pd", "y", 2, 2, 1, 1, 1, true);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "slice and pad");
	mb_free(&b);
}

/* Conv1d, ReLU, MaxPool1d, a strided grouped Conv1d, global average and a
 * linear head over [N, C, L]: the 2-D layers of height 1 they import as. */
Test(train_grad, conv1d_layers)
{
	rs = 31;
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 3, 10}, 3);
	init_rand(&b, "w1", (int64_t[]){4, 3, 3}, 3, 0.5f);
	init_rand(&b, "b1", (int64_t[]){4}, 1, 0.5f);
	init_rand(&b, "w2", (int64_t[]){6, 2, 2}, 3, 0.5f);
	init_rand(&b, "wf", (int64_t[]){3, 6}, 2, 0.5f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "c1", (const char *[]){"x", "w1", "b1", NULL}, "a");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){3}, 1);
	mb_attr_ints(&b, n, "pads", (int64_t[]){1, 1}, 2);
	mb_node(&b, "Relu", "relu", (const char *[]){"a", NULL}, "r");
	n = mb_node(&b, "MaxPool", "pool", (const char *[]){"r", NULL}, "p");
	mb_attr_ints(&b, n, "kernel_shape", (int64_t[]){2}, 1);
	mb_attr_ints(&b, n, "strides", (int64_t[]){1}, 1);
	n = mb_node(&b, "Conv", "c2", (const char *[]){"p", "w2", NULL}, "c");
	mb_attr_int(&b, n, "group", 2);
	mb_attr_ints(&b, n, "strides", (int64_t[]){2}, 1);
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"c", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	n = mb_node(&b, "Gemm", "head", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "y");
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, "conv1d");
	mb_free(&b);
}

/* A bilinear Resize between two convs (F.interpolate(mode="bilinear") by a
 * scale, and align_corners to a size): each output's gradient goes back to
 * its four sources by their weights. */
Test(train_grad, linear_resize)
{
	rs = 37;
	for (int k = 0; k < 2; k++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 3, 4, 5}, 4);
		conv(&b, "c0", "x", "a", 3, 4, 1, 1, 1, true);
		if (k == 0)
			mb_init_f32(&b, "scales", (int64_t[]){4}, 1, (float[]){1, 1, 2.0f, 1.5f});
		else
			mb_init_i64(&b, "sizes", (int64_t[]){4}, 1, (int64_t[]){1, 4, 7, 3});
		Onnx__NodeProto *n = mb_node(&b, "Resize", "up",
					     k == 0 ? (const char *[]){"a", "", "scales", NULL}
						    : (const char *[]){"a", "", "", "sizes", NULL},
					     "r");
		mb_attr_string(&b, n, "mode", "linear");
		mb_attr_string(&b, n, "coordinate_transformation_mode",
			       k == 0 ? "pytorch_half_pixel" : "align_corners");
		conv(&b, "c1", "r", "y", 4, 2, 1, 1, 1, true);
		mb_output(&b, "y");
		run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, k == 0 ? "bilinear" : "align corners");
		mb_free(&b);
	}
}

/* A grouped, strided ConvTranspose with padding, output_padding and a bias
 * between two convs (a U-Net's up-sampling), and a dilated one without a
 * bias: its weight, bias and input gradients. */
Test(train_grad, convtranspose)
{
	rs = 41;
	for (int k = 0; k < 2; k++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 3, 4, 5}, 4);
		conv(&b, "c0", "x", "a", 3, 4, 1, 1, 1, true);
		init_rand(&b, "wt", (int64_t[]){4, k ? 3 : 2, 3, 3}, 4, 0.4f);
		init_rand(&b, "bt", (int64_t[]){4}, 1, 0.3f);
		Onnx__NodeProto *n = mb_node(&b, "ConvTranspose", "up",
					     k ? (const char *[]){"a", "wt", NULL}
					       : (const char *[]){"a", "wt", "bt", NULL},
					     "u");
		if (k == 0) {
			mb_attr_int(&b, n, "group", 2);
			strides(&b, n, 2, 2);
			pads(&b, n, 1, 0, 1, 1);
			mb_attr_ints(&b, n, "output_padding", (int64_t[]){1, 0}, 2);
		} else {
			mb_attr_ints(&b, n, "dilations", (int64_t[]){2, 1}, 2);
		}
		conv(&b, "c1", "u", "y", k ? 3 : 4, 2, 1, 1, 1, true);
		mb_output(&b, "y");
		run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, k ? "dilated" : "grouped strided");
		mb_free(&b);
	}
}

/* LSTM, GRU (both forms of linear_before_reset) and RNN after a MatMul, in
 * both layouts and all three directions, read through each of their outputs
 * (every step's hidden state, the last one, LSTM's last cell state), with
 * biases, peepholes and initial states computed from the input: the
 * gradients of W, R, B, P, of the MatMul before (through dX) and of the Gemm
 * making the initial states (through dH0, dC0). */
struct rnn_case {
	const char *op, *direction;
	int layout, output, lbr;
	bool bias, peep, h0, c0;
};

static void rnn_case_check(const struct rnn_case *c)
{
	enum { N_SEQ = 5, F_IN = 4, F_X = 3, H = 3 };
	int dirs = strcmp(c->direction, "bidirectional") == 0 ? 2 : 1;
	int gates = c->op[0] == 'L' ? 4 : c->op[0] == 'G' ? 3 : 1;
	struct mb b;
	mb_init(&b, 14);
	mb_input(&b, "x", (int64_t[]){-1, N_SEQ, F_IN}, 3);
	init_rand(&b, "wa", (int64_t[]){F_IN, F_X}, 2, 0.6f);
	mb_node(&b, "MatMul", "proj", (const char *[]){"x", "wa", NULL}, "a");
	const char *seq_in = "a";
	if (c->layout == 0) {
		Onnx__NodeProto *t = mb_node(&b, "Transpose", "tin", (const char *[]){"a", NULL}, "at");
		mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
		seq_in = "at";
	}
	/* initial states: Gemm of the flattened input, as [batch, dirs, H]
	 * (layout 1) or [dirs, batch, H] */
	const char *state[2] = {"", ""};
	for (int k = 0; k < 2; k++) {
		if (!(k == 0 ? c->h0 : c->c0))
			continue;
		char nm[8][32];
		for (int j = 0; j < 8; j++)
			snprintf(nm[j], sizeof nm[j], "s%d_%d", k, j);
		mb_node(&b, "Flatten", nm[0], (const char *[]){"x", NULL}, nm[1]);
		init_rand(&b, nm[2], (int64_t[]){dirs * H, N_SEQ * F_IN}, 2, 0.3f);
		Onnx__NodeProto *gm = mb_node(&b, "Gemm", nm[3], (const char *[]){nm[1], nm[2], NULL}, nm[4]);
		mb_attr_int(&b, gm, "transB", 1);
		mb_init_i64(&b, nm[5], (int64_t[]){3}, 1, (int64_t[]){-1, dirs, H});
		mb_node(&b, "Reshape", nm[6], (const char *[]){nm[4], nm[5], NULL}, nm[7]);
		state[k] = b.graph.node[b.graph.n_node - 1]->output[0];
		if (c->layout == 0) {
			char tn[32];
			snprintf(tn, sizeof tn, "s%d_t", k);
			Onnx__NodeProto *t = mb_node(&b, "Transpose", tn, (const char *[]){state[k], NULL}, tn);
			mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
			state[k] = t->output[0];
		}
	}
	init_rand(&b, "W", (int64_t[]){dirs, gates * H, F_X}, 3, 0.5f);
	init_rand(&b, "R", (int64_t[]){dirs, gates * H, H}, 3, 0.5f);
	if (c->bias)
		init_rand(&b, "B", (int64_t[]){dirs, 2 * gates * H}, 2, 0.3f);
	if (c->peep)
		init_rand(&b, "P", (int64_t[]){dirs, 3 * H}, 2, 0.4f);
	const char *in[9] = {seq_in, "W", "R", c->bias ? "B" : "", "", state[0], state[1],
			     c->peep ? "P" : "", NULL};
	if (gates != 4)
		in[6] = NULL; /* GRU and RNN take six */
	Onnx__NodeProto *n = mb_node(&b, c->op, "rec", in, c->output == 0 ? "o" : "");
	for (int k = 1; k <= c->output; k++)
		mb_node_output(&b, n, k == c->output ? "o" : "");
	mb_attr_int(&b, n, "hidden_size", H);
	mb_attr_string(&b, n, "direction", c->direction);
	if (c->layout)
		mb_attr_int(&b, n, "layout", 1);
	if (c->op[0] == 'G')
		mb_attr_int(&b, n, "linear_before_reset", c->lbr);
	/* to [batch, features], then a Gemm to 3 classes */
	const char *flat_in = "o";
	int64_t feat = (c->output == 0 ? N_SEQ : 1) * dirs * H;
	if (c->layout == 0) {
		Onnx__NodeProto *t = mb_node(&b, "Transpose", "tout", (const char *[]){"o", NULL}, "ot");
		if (c->output == 0)
			mb_attr_ints(&b, t, "perm", (int64_t[]){2, 0, 1, 3}, 4);
		else
			mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
		flat_in = "ot";
	}
	mb_init_i64(&b, "fshape", (int64_t[]){2}, 1, (int64_t[]){-1, feat});
	mb_node(&b, "Reshape", "flat", (const char *[]){flat_in, "fshape", NULL}, "f");
	init_rand(&b, "wo", (int64_t[]){3, feat}, 2, 0.5f);
	Onnx__NodeProto *gm = mb_node(&b, "Gemm", "head", (const char *[]){"f", "wo", NULL}, "y");
	mb_attr_int(&b, gm, "transB", 1);
	mb_output(&b, "y");
	char what[96];
	snprintf(what, sizeof what, "%s %s layout %d output %d lbr %d", c->op, c->direction,
		 c->layout, c->output, c->lbr);
	run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, what);
	mb_free(&b);
}

Test(train_grad, recurrent_layers)
{
	rs = 47;
	static const struct rnn_case cases[] = {
		{"LSTM", "bidirectional", 0, 0, 0, true, true, false, false},
		{"LSTM", "forward", 1, 2, 0, true, true, true, true},
		{"LSTM", "reverse", 0, 1, 0, false, false, true, false},
		{"GRU", "reverse", 1, 1, 1, true, false, true, false},
		{"GRU", "bidirectional", 0, 0, 0, true, false, false, false},
		{"GRU", "forward", 1, 0, 1, false, false, false, false},
		{"RNN", "forward", 1, 1, 0, false, false, true, false},
		{"RNN", "bidirectional", 0, 0, 0, true, false, false, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		rnn_case_check(&cases[i]);
}

/* ReduceSum, ReduceMax, ReduceMin and ReduceL2 over the spatial axes between
 * two convs (F.normalize's norm, a global max pool, x.sum(dim)). */
Test(train_grad, reduce_sum_max_min_l2)
{
	rs = 43;
	static const char *const ops[] = {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2"};
	for (int k = 0; k < 4; k++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 3, 4, 5}, 4);
		conv(&b, "c0", "x", "a", 3, 4, 1, 1, 1, true);
		Onnx__NodeProto *n;
		if (k == 0) { /* opset 13: axes as input 1 */
			mb_init_i64(&b, "axes", (int64_t[]){2}, 1, (int64_t[]){2, -1});
			n = mb_node(&b, ops[k], "red", (const char *[]){"a", "axes", NULL}, "r");
		} else {
			n = mb_node(&b, ops[k], "red", (const char *[]){"a", NULL}, "r");
			mb_attr_ints(&b, n, "axes", (int64_t[]){2, 3}, 2);
		}
		mb_attr_int(&b, n, "keepdims", 1);
		conv(&b, "c1", "r", "y", 4, 2, 1, 1, 1, true);
		mb_output(&b, "y");
		run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, ops[k]);
		mb_free(&b);
	}
}

/* Max and Min of two activations that broadcast (torch.maximum of a map and
 * its channel means), and Log (of a Softplus, so positive). */
Test(train_grad, max_min_log)
{
	rs = 47;
	static const char *const ops[] = {"Max", "Min", "Log"};
	for (int k = 0; k < 3; k++) {
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", (int64_t[]){-1, 3, 4, 5}, 4);
		conv(&b, "c0", "x", "a", 3, 4, 1, 1, 1, true);
		if (k < 2) {
			Onnx__NodeProto *n = mb_node(&b, "ReduceMean", "mean", (const char *[]){"a", NULL}, "m");
			mb_attr_ints(&b, n, "axes", (int64_t[]){2, 3}, 2);
			mb_node(&b, ops[k], "op", (const char *[]){"a", "m", NULL}, "r");
		} else {
			mb_node(&b, "Softplus", "sp", (const char *[]){"a", NULL}, "p");
			mb_node(&b, "Log", "op", (const char *[]){"p", NULL}, "r");
		}
		conv(&b, "c1", "r", "y", 4, 2, 1, 1, 1, true);
		mb_output(&b, "y");
		run_check(&b, 2, false, TNET_BN_FROZEN, FD_TOL_REL, ops[k]);
		mb_free(&b);
	}
}

/* An op without a backward on the gradient's way (here LRN between two
 * convolutions) is refused by name; before a model's first layer, where no
 * gradient passes, it is not. */
Test(train_grad, refuses_an_op_without_a_backward_on_the_gradients_way)
{
	for (int before = 0; before < 2; before++) {
		struct mb b;
		mb_init(&b, 13);
		int64_t xd[4] = {-1, 3, 5, 4};
		mb_input(&b, "x", xd, 4);
		if (before) {
			Onnx__NodeProto *l =
				mb_node(&b, "LRN", "lrn", (const char *[]){"x", NULL}, "xl");
			mb_attr_int(&b, l, "size", 3);
			conv(&b, "c0", "xl", "a", 3, 3, 1, 1, 1, true);
			conv(&b, "c1", "a", "y", 3, 2, 1, 1, 1, true);
		} else {
			conv(&b, "c0", "x", "a", 3, 3, 1, 1, 1, true);
			Onnx__NodeProto *l =
				mb_node(&b, "LRN", "lrn", (const char *[]){"a", NULL}, "al");
			mb_attr_int(&b, l, "size", 3);
			conv(&b, "c1", "al", "y", 3, 2, 1, 1, 1, true);
		}
		mb_output(&b, "y");
		struct graph *g = load(&b, false);
		struct tnet *t = NULL;
		enum presso_status s = tnet_create(g, TNET_BN_FROZEN, &t);
		if (before) {
			cr_assert_eq(s, PRESSO_OK, "%s", status_msg());
			tnet_free(t);
		} else {
			cr_assert_eq(s, PRESSO_E_UNSUPPORTED);
			cr_assert_null(t);
			cr_assert(strstr(status_msg(), "node 'lrn': training has no backward for LRN"),
				  "%s", status_msg());
		}
		graph_free(g);
		mb_free(&b);
	}
}

/* ---- fake quantization ---------------------------------------------------------- */

Test(train_grad, fake_quant_act_matches_the_engine_rounding)
{
	rs = 30;
	for (int trial = 0; trial < 200; trial++) {
		float lo = -runif() * 3.0f - 0.01f, hi = runif() * 3.0f + 3.02f;
		int bits = rint_in(2, 8);
		struct qparams qp;
		quant_act_params(lo, hi, bits, &qp);
		float x[64], y[64];
		for (int i = 0; i < 64; i++)
			x[i] = runif() * 5.0f;
		x[0] = NAN;
		fake_quant_act_f32__ref(64, x, qp.scale, qp.inv_scale, qp.zero, quant_act_qmax(&qp), y);
		for (int i = 0; i < 64; i++) {
			float want = ((float)quant_act_quantize(x[i], &qp) - (float)qp.zero) * qp.scale;
			cr_assert_eq(y[i], want, "x %g bits %d: %g vs %g", x[i], bits, y[i], want);
		}
	}
}

/* The fake-quantized weights are quant_weights()'s grid points, channel by
 * channel, for a Conv and a Gemm stored [K, N] (channels are columns). */
Test(train_grad, fake_quant_weights_are_the_ptq_grid)
{
	rs = 31;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 3, 4, 4};
	mb_input(&b, "x", xd, 4);
	conv(&b, "c0", "x", "a", 3, 5, 3, 3, 1, true);
	mb_node(&b, "Flatten", "flat", (const char *[]){"a", NULL}, "f");
	int64_t wd[2] = {20, 6};
	init_rand(&b, "w", wd, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"f", "w", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load(&b, false);
	struct tnet *t;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_OK);
	for (int bits = 1; bits <= 8; bits++) {
		for (int l = 0; l < 2; l++) {
			cr_assert_eq(tnet_set_weight_bits(t, l, bits), PRESSO_OK);
			const struct node *n = &g->nodes[l == 0 ? 0 : 2];
			const struct value *wv = &g->values[n->inputs[1]];
			int64_t no = l == 0 ? 5 : 6, po = shape_numel(&wv->shape) / no;
			float *src = malloc(sizeof(float) * (size_t)(no * po)), sc[8];
			int8_t *q = malloc((size_t)(no * po));
			for (int64_t c = 0; c < no; c++)
				for (int64_t j = 0; j < po; j++)
					src[c * po + j] = l == 0 ? wv->data[c * po + j] : wv->data[j * no + c];
			quant_weights(src, no, po, bits, q, sc);
			const float *wq = tnet_weight_q(t, l);
			for (int64_t c = 0; c < no; c++)
				for (int64_t j = 0; j < po; j++) {
					int64_t at = l == 0 ? c * po + j : j * no + c;
					cr_assert_eq(wq[at], (float)q[c * po + j] * sc[c],
						     "layer %d bits %d", l, bits);
				}
			free(src);
			free(q);
		}
	}
	tnet_free(t);
	graph_free(g);
	mb_free(&b);
}

/* With fake-quantized weights, the latent weights get the gradient of the
 * network that uses the quantized ones (straight through), masked where the
 * clamp cut them; fixed zeros get none and stay zero. */
Test(train_grad, weight_ste)
{
	rs = 32;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 2, 5, 5};
	mb_input(&b, "x", xd, 4);
	Onnx__NodeProto *n = conv(&b, "c0", "x", "a", 2, 4, 3, 3, 1, true);
	pads(&b, n, 1, 1, 1, 1);
	mb_node(&b, "Relu", "r", (const char *[]){"a", NULL}, "ra");
	conv(&b, "c1", "ra", "y", 4, 3, 1, 1, 1, true);
	mb_output(&b, "y");
	struct fixture f, ref;
	uint64_t seed = rs;
	fixture_open(&f, load(&b, false), 2, TNET_BN_FROZEN);
	rs = seed;
	fixture_open(&ref, load(&b, false), 2, TNET_BN_FROZEN);
	/* prune a few weights of c0, then quantize c0 at 3 bits */
	float *w0 = f.g->values[f.g->nodes[0].inputs[1]].data;
	for (int i = 0; i < 72; i += 7)
		w0[i] = 0.0f;
	tnet_fix_zeros(f.t, 0);
	cr_assert_eq(tnet_set_weight_bits(f.t, 0, 3), PRESSO_OK);
	/* the reference network holds the quantized weights as its own */
	float *r0 = ref.g->values[ref.g->nodes[0].inputs[1]].data;
	memcpy(r0, tnet_weight_q(f.t, 0), sizeof(float) * 72);
	gradient(&f);
	gradient(&ref);
	tnet_apply_ste(f.t, f.grad);
	const struct tnet_param *p0 = NULL;
	for (int p = 0; p < tnet_n_params(f.t); p++)
		if (tnet_param(f.t, p)->value == f.g->nodes[0].inputs[1])
			p0 = tnet_param(f.t, p);
	cr_assert_not_null(p0);
	int passed = 0;
	for (int64_t i = 0; i < 72; i++) {
		float gq = ref.grad[p0->offset + i], gl = f.grad[p0->offset + i];
		if (w0[i] == 0.0f) {
			cr_assert_eq(gl, 0.0f, "a fixed zero got a gradient");
			continue;
		}
		cr_assert(gl == gq || gl == 0.0f, "weight %lld: %g vs %g", (long long)i, gl, gq);
		passed += gl == gq;
	}
	cr_assert_gt(passed, 40, "the straight-through gradient passes most weights");
	w0[1] = 0.5f;
	tnet_apply_masks(f.t);
	cr_assert_eq(w0[0], 0.0f);
	cr_assert_eq(w0[1], 0.5f);
	fixture_close(&f);
	fixture_close(&ref);
	mb_free(&b);
}

/* The quantization penalty's gradient against finite differences (the
 * quantized weights held fixed: the penalty is quadratic in w). */
Test(train_grad, quant_penalty)
{
	rs = 33;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[2] = {-1, 6}, wd[2] = {6, 4};
	mb_input(&b, "x", xd, 2);
	init_rand(&b, "w", wd, 2, 0.5f);
	mb_node(&b, "MatMul", "mm", (const char *[]){"x", "w", NULL}, "y");
	mb_output(&b, "y");
	struct graph *g = load(&b, false);
	struct tnet *t;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_OK);
	cr_assert_eq(tnet_set_weight_bits(t, 0, 2), PRESSO_OK);
	float grad[24] = {0};
	double lambda = 0.3, p = tnet_quant_penalty(t, lambda, grad);
	float *w = tnet_param_data(t, 0);
	const float *wq = tnet_weight_q(t, 0);
	double want = 0.0;
	for (int i = 0; i < 24; i++) {
		want += ((double)w[i] - wq[i]) * ((double)w[i] - wq[i]);
		cr_assert_float_eq(grad[i], 2.0 * lambda * ((double)w[i] - wq[i]), 1e-6);
	}
	cr_assert_float_eq(p, lambda * want, 1e-9);
	tnet_free(t);
	graph_free(g);
	mb_free(&b);
}

/* Fake-quantized activations: with a fine 8-bit grid over the values' range
 * the gradient is the float network's up to the grid (straight through); with
 * a range every value of the buffer lies above, the clamp is flat and nothing
 * flows back through it. */
Test(train_grad, activation_ste)
{
	rs = 34;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 2, 4, 4};
	mb_input(&b, "x", xd, 4);
	conv(&b, "c0", "x", "a", 2, 3, 1, 1, 1, true);
	conv(&b, "c1", "a", "y", 3, 2, 1, 1, 1, true);
	mb_output(&b, "y");
	struct fixture f, ref;
	uint64_t seed = rs;
	fixture_open(&ref, load(&b, false), 2, TNET_BN_FROZEN);
	/* the same model and data, its buffer 'a' quantized (set before the
	 * workspace: the set of quantized buffers is fixed from then on) */
	rs = seed;
	memset(&f, 0, sizeof f);
	f.g = load(&b, false);
	f.batch = 2;
	cr_assert_eq(tnet_create(f.g, TNET_BN_FROZEN, &f.t), PRESSO_OK);
	int a = graph_find_value(f.g, "a");
	struct qparams qp;
	quant_act_params(-8.0f, 8.0f, 8, &qp);
	tnet_set_act_quant(f.t, a, &qp);
	cr_assert_eq(tnet_ws_create(f.t, 2, &f.w), PRESSO_OK);
	f.x_n = ref.x_n;
	f.x = malloc(sizeof(float) * (size_t)f.x_n);
	memcpy(f.x, ref.x, sizeof(float) * (size_t)f.x_n);
	f.r = malloc(sizeof(float) * (size_t)(2 * tnet_n_classes(f.t)));
	memcpy(f.r, ref.r, sizeof(float) * (size_t)(2 * tnet_n_classes(f.t)));
	f.grad = calloc((size_t)tnet_n_floats(f.t), sizeof(float));
	gradient(&f);
	gradient(&ref);
	int64_t n = tnet_n_floats(f.t);
	double diff = 0.0, mag = 0.0;
	for (int64_t i = 0; i < n; i++) {
		diff += fabs((double)f.grad[i] - ref.grad[i]);
		mag += fabs((double)ref.grad[i]);
	}
	/* the second conv's weight gradient reads quantized inputs (step 16/255
	 * against values of ~1): a few percent at most */
	cr_assert_lt(diff, 0.05 * mag, "straight-through gradient %g far from the float one (%g)",
		     diff, mag);
	cr_assert_gt(diff, 0.0, "the quantization changed nothing");
	/* a range every value of 'a' lies above: no gradient reaches c0 */
	quant_act_params(-1e-3f, 1e-3f, 8, &qp);
	tnet_set_act_quant(f.t, a, &qp);
	for (int p = 0; p < tnet_n_params(f.t); p++)
		if (strcmp(f.g->values[tnet_param(f.t, p)->value].name, "c0.b") == 0)
			for (int c = 0; c < 3; c++)
				tnet_param_data(f.t, p)[c] = 100.0f;
	gradient(&f);
	for (int p = 0; p < tnet_n_params(f.t); p++) {
		const struct tnet_param *tp = tnet_param(f.t, p);
		if (strncmp(f.g->values[tp->value].name, "c0", 2) != 0)
			continue;
		for (int64_t i = 0; i < tp->n; i++)
			cr_assert_eq(f.grad[tp->offset + i], 0.0f, "gradient through a cut value");
	}
	fixture_close(&f);
	fixture_close(&ref);
	mb_free(&b);
}

/* Conv -> BatchNorm (unfolded) with fake-quantized weights computes the
 * folded layer quantized on the folded grid: conv(x, q(w s)) + folded bias. */
Test(train_grad, unfolded_batchnorm_quantizes_the_folded_weight)
{
	rs = 35;
	struct mb b;
	bn_model(&b, true);
	struct graph *g = load(&b, true);
	struct graph *gf = NULL;
	size_t nbytes;
	uint8_t *bytes = mb_pack(&b, &nbytes);
	cr_assert_eq(graph_load_onnx_bytes(bytes, nbytes, NULL, &gf), PRESSO_OK);
	cr_assert_eq(gf->n_folded_bn, 1);
	struct tnet *t, *tf;
	struct tnet_ws *w, *wf;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_OK);
	cr_assert_eq(tnet_create(gf, TNET_BN_FROZEN, &tf), PRESSO_OK);
	cr_assert_eq(tnet_set_weight_bits(t, 0, 4), PRESSO_OK);
	cr_assert_eq(tnet_set_weight_bits(tf, 0, 4), PRESSO_OK);
	cr_assert_eq(tnet_ws_create(t, 2, &w), PRESSO_OK);
	cr_assert_eq(tnet_ws_create(tf, 2, &wf), PRESSO_OK);
	float *x = rbuf(2 * 40, 1.0f);
	memcpy(tnet_ws_input(w, 0), x, sizeof(float) * 80);
	memcpy(tnet_ws_input(wf, 0), x, sizeof(float) * 80);
	cr_assert_eq(tnet_forward(t, w, 2), PRESSO_OK);
	cr_assert_eq(tnet_forward(tf, wf, 2), PRESSO_OK);
	const float *y = tnet_ws_logits(w), *yf = tnet_ws_logits(wf);
	for (int i = 0; i < 2 * tnet_n_classes(t); i++)
		cr_assert_float_eq(y[i], yf[i], 1e-4, "output %d: %g vs folded %g", i, y[i], yf[i]);
	free(x);
	tnet_ws_free(w);
	tnet_ws_free(wf);
	tnet_free(t);
	tnet_free(tf);
	graph_free(g);
	graph_free(gf);
	mb_free(&b);
}

/* ---- kernels: adjoint identities on many shapes ------------------------------------ */

static double dot(int64_t n, const float *a, const float *b, double *mag)
{
	double s = 0.0;
	for (int64_t i = 0; i < n; i++) {
		s += (double)a[i] * b[i];
		*mag += fabs((double)a[i] * b[i]);
	}
	return s;
}

Test(train_kernels, conv_backward_is_the_adjoint)
{
	rs = 40;
	for (int trial = 0; trial < 400; trial++) {
		struct conv2d_params p = {0};
		int kind = rint_in(0, 3);
		p.group = kind == 1 ? rint_in(1, 4) : 1;
		p.c_in = p.group * rint_in(1, 4);
		p.c_out = p.group * rint_in(1, 4);
		if (kind == 2) { /* depthwise */
			p.group = p.c_in = p.c_out = rint_in(1, 6);
		}
		p.n = rint_in(1, 3);
		p.kh = kind == 3 ? 1 : rint_in(1, 5);
		p.kw = kind == 3 ? 1 : rint_in(1, 5);
		p.stride_h = kind == 3 ? 1 : rint_in(1, 3);
		p.stride_w = kind == 3 ? 1 : rint_in(1, 3);
		p.dil_h = kind == 3 ? 1 : rint_in(1, 2);
		p.dil_w = kind == 3 ? 1 : rint_in(1, 2);
		p.pad_t = kind == 3 ? 0 : rint_in(0, 2);
		p.pad_l = kind == 3 ? 0 : rint_in(0, 2);
		int pad_b = kind == 3 ? 0 : rint_in(0, 2), pad_r = kind == 3 ? 0 : rint_in(0, 2);
		p.h_in = rint_in((p.kh - 1) * p.dil_h + 1, 12);
		p.w_in = rint_in((p.kw - 1) * p.dil_w + 1, 12);
		p.h_out = (p.h_in + p.pad_t + pad_b - (p.kh - 1) * p.dil_h - 1) / p.stride_h + 1;
		p.w_out = (p.w_in + p.pad_l + pad_r - (p.kw - 1) * p.dil_w - 1) / p.stride_w + 1;
		p.act_min = -INFINITY;
		p.act_max = INFINITY;
		int64_t nx = (int64_t)p.n * p.c_in * p.h_in * p.w_in;
		int64_t nw = (int64_t)p.c_out * (p.c_in / p.group) * p.kh * p.kw;
		int64_t ny = (int64_t)p.n * p.c_out * p.h_out * p.w_out;
		float *x = rbuf(nx, 1.0f), *w = rbuf(nw, 1.0f), *dy = rbuf(ny, 1.0f);
		float *y = malloc(sizeof(float) * (size_t)ny);
		float *dx = calloc((size_t)nx, sizeof(float)), *dw = calloc((size_t)nw, sizeof(float));
		float *db = calloc((size_t)p.c_out, sizeof(float));
		size_t sf = conv2d_f32_scratch_bytes(&p), sb = conv2d_backward_scratch_bytes(&p);
		float *scratch = malloc((sf > sb ? sf : sb) + 64);
		conv2d_f32__ref(&p, x, w, NULL, y, scratch);
		conv2d_backward_data_f32__ref(&p, dy, w, dx, scratch);
		conv2d_backward_filter_f32__ref(&p, x, dy, dw, db, scratch);
		double m1 = 0, m2 = 0, m3 = 0;
		double lhs = dot(ny, dy, y, &m1), r1 = dot(nx, dx, x, &m2), r2 = dot(nw, dw, w, &m3);
		cr_assert_leq(fabs(lhs - r1), ADJ_TOL * (m1 + m2) + 1e-9, "trial %d: data adjoint %g vs %g",
			      trial, lhs, r1);
		cr_assert_leq(fabs(lhs - r2), ADJ_TOL * (m1 + m3) + 1e-9,
			      "trial %d: filter adjoint %g vs %g", trial, lhs, r2);
		/* bias: the sum of dy per channel */
		for (int c = 0; c < p.c_out; c++) {
			double s = 0.0;
			for (int ni = 0; ni < p.n; ni++)
				for (int i = 0; i < p.h_out * p.w_out; i++)
					s += dy[((int64_t)ni * p.c_out + c) * p.h_out * p.w_out + i];
			cr_assert_float_eq(db[c], s, 1e-4);
		}
		free(x);
		free(w);
		free(dy);
		free(y);
		free(dx);
		free(dw);
		free(db);
		free(scratch);
	}
}

Test(train_kernels, gemm_backward_is_the_adjoint)
{
	rs = 41;
	for (int trial = 0; trial < 300; trial++) {
		int m = rint_in(1, 9), n = rint_in(1, 9), k = rint_in(1, 9);
		bool ta = rnext() & 1, tb = rnext() & 1;
		float alpha = runif() * 2.0f;
		float *a = rbuf((int64_t)m * k, 1.0f), *b = rbuf((int64_t)k * n, 1.0f);
		float *dy = rbuf((int64_t)m * n, 1.0f), *y = malloc(sizeof(float) * (size_t)(m * n));
		float *da = calloc((size_t)(m * k), sizeof(float)), *db = calloc((size_t)(k * n), sizeof(float));
		float *scratch = malloc(gemm_backward_scratch_bytes(m, n, k));
		gemm_bias_f32__ref(m, n, k, alpha, a, ta, b, tb, 0.0f, NULL, 1, 1, -INFINITY,
				   INFINITY, y);
		gemm_backward_f32__ref(m, n, k, alpha, a, ta, b, tb, 0.0f, 1, 1, dy, da, db, NULL,
				       scratch);
		double m1 = 0, m2 = 0, m3 = 0;
		double lhs = dot((int64_t)m * n, dy, y, &m1);
		double r1 = dot((int64_t)m * k, da, a, &m2), r2 = dot((int64_t)k * n, db, b, &m3);
		cr_assert_leq(fabs(lhs - r1), ADJ_TOL * (m1 + m2) + 1e-9, "trial %d (ta %d tb %d): dA",
			      trial, ta, tb);
		cr_assert_leq(fabs(lhs - r2), ADJ_TOL * (m1 + m3) + 1e-9, "trial %d (ta %d tb %d): dB",
			      trial, ta, tb);
		free(a);
		free(b);
		free(dy);
		free(y);
		free(da);
		free(db);
		free(scratch);
	}
}

