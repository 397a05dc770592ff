/* qengine_run.c - the INT8 engine, second half: running a built qmodel.
 *
 * The steps, their quantization groups, the NHWC layout and the buffer
 * lifetimes are described at the top of qengine_build.c, which makes them;
 * this file only reads the model, so that many engines (one per thread) can
 * share it.
 *
 * qengine_create prepares one engine: the shapes for its largest batch, every
 * buffer placed in one arena by its lifetime (arena_plan), scratch for im2col
 * and for the FP32 kernels of fallbacks. qengine_run then allocates nothing: it
 * infers the shapes for the batch and runs each step on arena pointers, a large
 * batch in chunks of QENGINE_CHUNK images (or in one when the whole arena
 * takes at most QENGINE_CHUNK_BYTES). A fallback step dequantizes its
 * uint8 inputs into float buffers, runs the FP32 kernel and quantizes its
 * output back.
 */
#define _POSIX_C_SOURCE 200809L
#include "quant/qengine.h"
#include "quant/qengine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "model/engine.h"
#include "quant/quant.h"

/* --- an engine: its arena, planned once for a largest batch --------------- */

struct qengine {
	const struct qmodel *m;
	int max_batch, cur_batch;
	struct shape *shapes;
	size_t *offset;         /* per buffer */
	uint8_t *arena;
	size_t arena_bytes;
	uint8_t *scratch;       /* im2col rows */
	size_t scratch_bytes;
	float *fscratch;        /* FP32 kernel scratch for fallbacks */
	size_t fscratch_bytes;
	/* large batches run in chunks of QENGINE_CHUNK images so that a layer's
	 * activations stay in cache: every buffer is then addressed at image img0 */
	bool chunkable;         /* every buffer holds a batched value */
	int chunk;              /* images per chunk */
	size_t *per_image;      /* per buffer: bytes of one image */
	int64_t img0;
	bool *empty;            /* per step: its output has no element at any
				   batch (run_step skips it) */
};

/* images per chunk: 8 images of a 64-channel 28x28 uint8 tensor are 400 KB,
 * the size of a core's L2 cache share on the machines we measure */
#define QENGINE_CHUNK 8
/* An engine whose whole arena (max_batch images) takes at most this many
 * bytes runs a batch in one chunk: its fully connected layers then get every
 * row in one call (the MLP at batch 64, 286 KB: 3 % faster than 8 chunks).
 * Every other model keeps chunks of QENGINE_CHUNK (MobileNetV2 and ResNet
 * measured slower at 16; LeNet in chunks of 40 slower than of 8). */
#define QENGINE_CHUNK_BYTES ((size_t)400 * 1024)

static void *buf_ptr(const struct qengine *e, int buf)
{
	return e->arena + e->offset[buf] + (size_t)e->img0 * e->per_image[buf];
}

static size_t buf_bytes(const struct qmodel *m, const struct shape *shapes, int b)
{
	return (size_t)shape_numel(&shapes[m->bufs[b].value]) * (m->bufs[b].f32 ? 4 : 1);
}

static void conv_kernel_params(const struct qengine *e, const struct qstep *st,
			       struct qconv_params *cp);

enum presso_status qengine_create(const struct qmodel *m, int max_batch, struct qengine **out)
{
	*out = NULL;
	if (max_batch < 1)
		return status_fail(PRESSO_E_USAGE, "engine batch must be at least 1");
	const struct graph *g = m->g;
	struct qengine *e = calloc(1, sizeof *e);
	struct arena_buf *ab = NULL;
	enum presso_status s = PRESSO_E_NOMEM;
	if (!e)
		return status_fail(s, "out of memory");
	e->m = m;
	e->max_batch = e->cur_batch = max_batch;
	e->shapes = calloc((size_t)g->n_values, sizeof *e->shapes);
	e->offset = calloc((size_t)(m->n_bufs ? m->n_bufs : 1), sizeof *e->offset);
	e->per_image = calloc((size_t)(m->n_bufs ? m->n_bufs : 1), sizeof *e->per_image);
	ab = calloc((size_t)(m->n_bufs ? m->n_bufs : 1), sizeof *ab);
	if (!e->shapes || !e->offset || !e->per_image || !ab) {
		status_fail(s, "out of memory");
		goto fail;
	}
	if ((s = graph_infer_shapes(g, max_batch, e->shapes)) != PRESSO_OK)
		goto fail;
	if (!(e->empty = calloc((size_t)(m->n_steps ? m->n_steps : 1), sizeof *e->empty))) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	for (int i = 0; i < m->n_steps; i++)
		e->empty[i] = m->steps[i].out >= 0 && shape_numel(&e->shapes[m->steps[i].out]) == 0;
	int n_ab = 0;
	int *map = malloc(sizeof(int) * (size_t)(m->n_bufs ? m->n_bufs : 1));
	if (!map) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	for (int b = 0; b < m->n_bufs; b++) {
		map[b] = -1;
		if (m->bufs[b].first == -3 || m->bufs[b].last < m->bufs[b].first)
			continue;
		map[b] = n_ab;
		ab[n_ab++] = (struct arena_buf){.bytes = buf_bytes(m, e->shapes, b),
						.first = m->bufs[b].first, .last = m->bufs[b].last};
	}
	s = arena_plan(ab, n_ab, &e->arena_bytes);
	for (int b = 0; s == PRESSO_OK && b < m->n_bufs; b++)
		e->offset[b] = map[b] >= 0 ? ab[map[b]].offset : 0;
	free(map);
	if (s != PRESSO_OK)
		goto fail;
	e->chunkable = true;
	for (int b = 0; b < m->n_bufs; b++) {
		const struct value *val = &g->values[m->bufs[b].value];
		if (!val->batched)
			e->chunkable = false;
		else
			e->per_image[b] = (size_t)shape_numel(&val->shape) * (m->bufs[b].f32 ? 4 : 1);
	}
	/* the arena holds max_batch images */
	e->chunk = e->arena_bytes <= QENGINE_CHUNK_BYTES ? max_batch : QENGINE_CHUNK;
	size_t scratch = 0, fscratch = 0;
	for (int i = 0; i < m->n_steps; i++) {
		const struct qstep *st = &m->steps[i];
		if (st->kind == QK_CONV) {
			const struct qlayer *L = &m->layers[st->layer];
			const struct shape *ys = &e->shapes[st->out];
			const struct node *n = &g->nodes[st->node];
			size_t b = (size_t)(ys->dims[2] * ys->dims[3] * L->k);
			if (conv_uses_kernel(m, n)) {
				struct qconv_params cp;
				conv_kernel_params(e, st, &cp);
				b = m->conv->work_bytes(&cp);
			}
			if (b > scratch)
				scratch = b;
		} else if (st->kind == QK_QMATMUL) {
			const struct shape *bs = &e->shapes[st->in[1]];
			size_t b = m->matmul->work_bytes((int)bs->dims[bs->n_dims - 2],
							 (int)bs->dims[bs->n_dims - 1]);
			if (b > scratch)
				scratch = b;
		} else if (st->kind == QK_FALLBACK || st->kind == QK_RESIZE) {
			if (st->rnn) { /* its quantized states: batch rows of hidden bytes */
				const struct shape *xs = &e->shapes[g->nodes[st->node].inputs[RNN_IN_X]];
				size_t b = (size_t)(xs->dims[0] * xs->dims[1]) * (size_t)st->rnn->hidden;
				if (b > scratch)
					scratch = b;
			}
			/* a Resize holds its maps twice: in logical and in storage order */
			size_t b = engine_node_scratch_bytes(g, &g->nodes[st->node], e->shapes) *
				   (st->kind == QK_RESIZE ? 2 : 1);
			if (b > fscratch)
				fscratch = b;
		}
	}
	e->scratch_bytes = arena_align(scratch + 64);
	e->fscratch_bytes = arena_align(fscratch + 64);
	e->arena = aligned_alloc(ARENA_ALIGN, e->arena_bytes);
	e->scratch = aligned_alloc(ARENA_ALIGN, e->scratch_bytes);
	e->fscratch = aligned_alloc(ARENA_ALIGN, e->fscratch_bytes);
	if (!e->arena || !e->scratch || !e->fscratch) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory: INT8 arena of %zu bytes", e->arena_bytes);
		goto fail;
	}
	memset(e->arena, 0, e->arena_bytes);
	free(ab);
	*out = e;
	return PRESSO_OK;
fail:
	free(ab);
	qengine_free(e);
	return s;
}

void qengine_free(struct qengine *e)
{
	if (!e)
		return;
	free(e->shapes);
	free(e->offset);
	free(e->per_image);
	free(e->empty);
	free(e->arena);
	free(e->scratch);
	free(e->fscratch);
	free(e);
}

float *qengine_input(struct qengine *e, int i)
{
	PRESSO_CHECK(i >= 0 && i < e->m->g->n_inputs);
	return buf_ptr(e, e->m->v[e->m->g->inputs[i]].f32_buf);
}

const float *qengine_output(const struct qengine *e, int i, struct shape *shape)
{
	const struct qmodel *m = e->m;
	PRESSO_CHECK(i >= 0 && i < m->g->n_outputs);
	int v = m->g->outputs[i];
	if (shape)
		*shape = e->shapes[v];
	return buf_ptr(e, m->v[v].dom == QD_F32 ? m->v[v].buf : m->v[v].f32_buf);
}

/* --- the steps ------------------------------------------------------------ */

/* float (logical layout) -> uint8 (NHWC when 4-D); quant is the model's
 * kernel for the contiguous case */
static void quantize_tensor(const float *x, const struct shape *s, bool nhwc,
			    const struct qparams *qp, qquant_fn quant, uint8_t *y)
{
	int64_t n = shape_numel(s);
	if (!nhwc || s->dims[1] == 1) {
		/* the same order (one channel: NHWC is NCHW) */
		struct qquant_params q = {qp->inv_scale, qp->zero, qp->bits};
		quant((size_t)n, x, &q, y);
		return;
	}
	int64_t N = s->dims[0], C = s->dims[1], HW = s->dims[2] * s->dims[3];
	for (int64_t b = 0; b < N; b++)
		for (int64_t c = 0; c < C; c++)
			for (int64_t p = 0; p < HW; p++)
				y[(b * HW + p) * C + c] = quant_act_quantize(x[(b * C + c) * HW + p], qp);
}

/* uint8 (NHWC when 4-D) -> float (logical layout) */
static void dequantize_tensor(const uint8_t *x, const struct shape *s, bool nhwc,
			      const struct qparams *qp, float *y)
{
	int64_t n = shape_numel(s);
	if (!nhwc) {
		for (int64_t i = 0; i < n; i++)
			y[i] = qp->scale * (float)((int32_t)x[i] - qp->zero);
		return;
	}
	int64_t N = s->dims[0], C = s->dims[1], HW = s->dims[2] * s->dims[3];
	for (int64_t b = 0; b < N; b++)
		for (int64_t c = 0; c < C; c++)
			for (int64_t p = 0; p < HW; p++)
				y[(b * C + c) * HW + p] =
					qp->scale * (float)((int32_t)x[(b * HW + p) * C + c] - qp->zero);
}

/* The float multipliers when the model requantizes in float, else NULL (Q31). */
static const float *layer_rq_scale(const struct qmodel *m, const struct qlayer *L)
{
	return m->requant == REQUANT_FLOAT ? L->rq_scale : NULL;
}

/* The conv kernel's parameters for step st (a QK_CONV step the kernel runs). */
static void conv_kernel_params(const struct qengine *e, const struct qstep *st,
			       struct qconv_params *cp)
{
	const struct qmodel *m = e->m;
	const struct node *n = &m->g->nodes[st->node];
	const struct qlayer *L = &m->layers[st->layer];
	const struct shape *xs = &e->shapes[n->inputs[0]], *ys = &e->shapes[st->out];
	const struct shape *ws = &m->g->values[n->inputs[1]].shape;
	const struct node_attrs *a = &n->a;
	*cp = (struct qconv_params){
		.n = (int)xs->dims[0], .h_in = (int)xs->dims[2], .w_in = (int)xs->dims[3],
		.c = (int)xs->dims[1], .h_out = (int)ys->dims[2], .w_out = (int)ys->dims[3],
		.c_out = (int)ys->dims[1], .kh = (int)ws->dims[2], .kw = (int)ws->dims[3],
		.stride_h = a->strides[0], .stride_w = a->strides[1], .pad_t = a->pads[0],
		.pad_l = a->pads[1], .dil_h = a->dilations[0], .dil_w = a->dilations[1],
		.a_zero = (uint8_t)m->qp[n->inputs[0]].zero, .bias = L->bias, .mult = L->mult,
		.shift = L->shift, .rq_scale = layer_rq_scale(m, L), .c_zero = m->qp[st->out].zero,
		.c_min = st->lo, .c_max = st->hi, .work = e->scratch,
	};
}

static void run_conv(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	const struct qlayer *L = &m->layers[st->layer];
	const struct shape *xs = &e->shapes[n->inputs[0]], *ys = &e->shapes[st->out];
	const struct shape *ws = &g->values[n->inputs[1]].shape;
	const uint8_t *x = buf_ptr(e, m->v[n->inputs[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	int N = (int)xs->dims[0], C = (int)xs->dims[1], H = (int)xs->dims[2], W = (int)xs->dims[3];
	int Co = (int)ys->dims[1], Ho = (int)ys->dims[2], Wo = (int)ys->dims[3];
	int kh = (int)ws->dims[2], kw = (int)ws->dims[3], G = L->group;
	int cg = C / G, ng = Co / G;
	const struct node_attrs *a = &n->a;
	struct qgemm_params p = {.k = (int)L->k, .n = ng, .c_zero = m->qp[st->out].zero,
				 .c_min = st->lo, .c_max = st->hi, .rq_scale = layer_rq_scale(m, L)};
	uint8_t pad = (uint8_t)m->qp[n->inputs[0]].zero;
	if (conv_uses_kernel(m, n)) {
		struct qconv_params cp;
		conv_kernel_params(e, st, &cp);
		m->conv->run(&cp, x, L->packed, y);
		return;
	}
	if (conv_is_pointwise(g, n)) {
		p.m = N * H * W;
		p.bias = L->bias;
		p.mult = L->mult;
		p.shift = L->shift;
		m->gemm->run(&p, x, C, L->packed, y, Co);
		return;
	}
	p.m = Ho * Wo;
	for (int b = 0; b < N; b++)
		for (int gi = 0; gi < G; gi++) {
			im2col_nhwc_u8(x + (size_t)b * H * W * C, H, W, C, gi, cg, Ho, Wo, kh, kw,
				       a->strides[0], a->strides[1], a->pads[0], a->pads[1],
				       a->dilations[0], a->dilations[1], pad, e->scratch);
			p.bias = L->bias + gi * ng;
			p.mult = L->mult + gi * ng;
			p.shift = L->shift + gi * ng;
			p.rq_scale = layer_rq_scale(m, L) ? L->rq_scale + gi * ng : NULL;
			m->gemm->run(&p, e->scratch, (int)L->k,
				     (const char *)L->packed + (size_t)gi * L->packed_group_bytes,
				     y + (size_t)b * Ho * Wo * Co + (size_t)gi * ng, Co);
		}
}

static void run_dwconv(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	const struct qlayer *L = &m->layers[st->layer];
	const struct shape *xs = &e->shapes[n->inputs[0]], *ys = &e->shapes[st->out];
	const struct shape *ws = &g->values[n->inputs[1]].shape;
	struct qdwconv_params p = {
		.n = (int)xs->dims[0], .h_in = (int)xs->dims[2], .w_in = (int)xs->dims[3],
		.c = (int)xs->dims[1], .h_out = (int)ys->dims[2], .w_out = (int)ys->dims[3],
		.kh = (int)ws->dims[2], .kw = (int)ws->dims[3],
		.stride_h = n->a.strides[0], .stride_w = n->a.strides[1],
		.pad_t = n->a.pads[0], .pad_l = n->a.pads[1],
		.dil_h = n->a.dilations[0], .dil_w = n->a.dilations[1],
		.a_zero = m->qp[n->inputs[0]].zero, .bias = L->bias, .mult = L->mult,
		.shift = L->shift, .rq_scale = layer_rq_scale(m, L), .c_zero = m->qp[st->out].zero,
		.c_min = st->lo, .c_max = st->hi,
	};
	m->dw->run(&p, buf_ptr(e, m->v[n->inputs[0]].buf), L->packed,
		   buf_ptr(e, m->v[st->out].buf));
}

static void run_fc(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	const struct qlayer *L = &m->layers[st->layer];
	const struct shape *xs = &e->shapes[n->inputs[0]];
	int k = (int)L->k;
	int rows = (int)(shape_numel(xs) / k);
	struct qgemm_params p = {.m = rows, .n = (int)L->n_out, .k = k, .bias = L->bias,
				 .mult = L->mult, .shift = L->shift, .rq_scale = layer_rq_scale(m, L),
				 .c_zero = 0, .c_min = st->lo, .c_max = st->hi};
	const uint8_t *x = buf_ptr(e, m->v[n->inputs[0]].buf);
	if (m->v[st->out].dom == QD_F32) {
		p.deq_scale = L->deq_scale;
		p.c_f32 = buf_ptr(e, m->v[st->out].buf);
		m->gemm->run(&p, x, k, L->packed, NULL, (int)L->n_out);
		return;
	}
	p.c_zero = m->qp[st->out].zero;
	m->gemm->run(&p, x, k, L->packed, buf_ptr(e, m->v[st->out].buf), (int)L->n_out);
}

static void run_clamp(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	int64_t n = shape_numel(&e->shapes[st->out]);
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] < st->lo ? st->lo : x[i] > st->hi ? st->hi : x[i];
}

/* One output pixel of a pooling window over channels [0, C): the general case
 * (padding, dilation, ceil-mode overhang). */
static void pool_pixel(const uint8_t *x, int b, int H, int W, int C, int h0, int w0,
		       const struct node_attrs *a, bool is_max, int32_t zero, uint8_t *out)
{
	int32_t acc[512];
	for (int c0 = 0; c0 < C; c0 += 512) {
		int cn = C - c0 < 512 ? C - c0 : 512;
		int count = 0, padded = 0;
		bool first = true;
		for (int c = 0; c < cn; c++)
			acc[c] = 0;
		for (int ki = 0; ki < a->kernel[0]; ki++) {
			int ih = h0 + ki * a->dilations[0];
			for (int kj = 0; kj < a->kernel[1]; kj++) {
				int iw = w0 + kj * a->dilations[1];
				if (ih < 0 || iw < 0 || ih >= H || iw >= W) {
					/* inside the explicit padding (not the ceil-mode
					 * overhang) counts as zero */
					if (ih < H + a->pads[2] && iw < W + a->pads[3])
						padded++;
					continue;
				}
				const uint8_t *px = x + (((size_t)b * H + ih) * W + iw) * C + c0;
				if (is_max) {
					for (int c = 0; c < cn; c++)
						acc[c] = first || px[c] > acc[c] ? px[c] : acc[c];
				} else {
					for (int c = 0; c < cn; c++)
						acc[c] += px[c];
				}
				first = false;
				count++;
			}
		}
		if (!is_max && a->count_include_pad) {
			for (int c = 0; c < cn; c++)
				acc[c] += padded * zero;
			count += padded;
		}
		for (int c = 0; c < cn; c++)
			out[c0 + c] = (uint8_t)(is_max ? acc[c] : count ? (acc[c] + count / 2) / count : zero);
	}
}

static void run_pool(const struct qengine *e, const struct qstep *st, bool is_max)
{
	const struct qmodel *m = e->m;
	const struct node *n = &m->g->nodes[st->node];
	const struct node_attrs *a = &n->a;
	const struct shape *xs = &e->shapes[st->in[0]], *ys = &e->shapes[st->out];
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	int N = (int)xs->dims[0], C = (int)xs->dims[1], H = (int)xs->dims[2], W = (int)xs->dims[3];
	int Ho = (int)ys->dims[2], Wo = (int)ys->dims[3];
	int kh = a->kernel[0], kw = a->kernel[1];
	int32_t zero = m->qp[st->in[0]].zero;
	bool plain = a->dilations[0] == 1 && a->dilations[1] == 1;
	if (is_max && m->maxpool2 && plain && kh == 2 && kw == 2 && a->strides[0] == 2 &&
	    a->strides[1] == 2 && a->pads[0] == 0 && a->pads[1] == 0 && Ho == H / 2 && Wo == W / 2) {
		/* every window inside the input (no padding, no ceil-mode overhang) */
		m->maxpool2(N, H, W, C, x, y);
		return;
	}
	/* max over the kh input rows of an output row first (a byte-wise max over
	 * W*C contiguous bytes, which vectorises), then over kw pixels of that */
	uint8_t colmax[4096], win[4096];
	bool by_rows = is_max && plain && (size_t)W * C <= sizeof colmax;
	for (int b = 0; b < N; b++)
		for (int oh = 0; oh < Ho; oh++) {
			int h0 = oh * a->strides[0] - a->pads[0];
			if (by_rows && h0 >= 0 && h0 + kh <= H) {
				const uint8_t *x0 = x + ((size_t)b * H + h0) * W * C;
				size_t wc = (size_t)W * C;
				memcpy(colmax, x0, wc);
				for (int ki = 1; ki < kh; ki++) {
					const uint8_t *xr = x0 + ki * wc;
					for (size_t i = 0; i < wc; i++)
						colmax[i] = xr[i] > colmax[i] ? xr[i] : colmax[i];
				}
				/* then the max over kw pixels at every start column, again
				 * contiguous bytes: win[w*C + c] for windows [w, w + kw) */
				if (W >= kw) {
					size_t nwin = (size_t)(W - kw + 1) * C;
					memcpy(win, colmax, nwin);
					for (int kj = 1; kj < kw; kj++) {
						const uint8_t *src = colmax + (size_t)kj * C;
						for (size_t i = 0; i < nwin; i++)
							win[i] = src[i] > win[i] ? src[i] : win[i];
					}
				}
				for (int ow = 0; ow < Wo; ow++) {
					uint8_t *out = y + (((size_t)b * Ho + oh) * Wo + ow) * C;
					int w0 = ow * a->strides[1] - a->pads[1];
					if (w0 < 0 || w0 + kw > W) {
						pool_pixel(x, b, H, W, C, h0, w0, a, is_max, zero, out);
						continue;
					}
					memcpy(out, win + (size_t)w0 * C, (size_t)C);
				}
				continue;
			}
			for (int ow = 0; ow < Wo; ow++) {
				uint8_t *out = y + (((size_t)b * Ho + oh) * Wo + ow) * C;
				int w0 = ow * a->strides[1] - a->pads[1];
				if (!plain || h0 < 0 || w0 < 0 || h0 + kh > H || w0 + kw > W || C > 512) {
					pool_pixel(x, b, H, W, C, h0, w0, a, is_max, zero, out);
					continue;
				}
				/* the window lies inside the input: no padding to count */
				const uint8_t *base = x + (((size_t)b * H + h0) * W + w0) * C;
				if (is_max) {
					for (int c = 0; c < C; c++)
						out[c] = base[c];
					for (int ki = 0; ki < kh; ki++)
						for (int kj = 0; kj < kw; kj++) {
							const uint8_t *px = base + ((size_t)ki * W + kj) * C;
							for (int c = 0; c < C; c++)
								out[c] = px[c] > out[c] ? px[c] : out[c];
						}
				} else {
					int32_t acc[512] = {0};
					int count = kh * kw;
					for (int ki = 0; ki < kh; ki++)
						for (int kj = 0; kj < kw; kj++) {
							const uint8_t *px = base + ((size_t)ki * W + kj) * C;
							for (int c = 0; c < C; c++)
								acc[c] += px[c];
						}
					for (int c = 0; c < C; c++)
						out[c] = (uint8_t)((acc[c] + count / 2) / count);
				}
			}
		}
}

static void run_gap(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct shape *xs = &e->shapes[st->in[0]];
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	int64_t N = xs->dims[0], C = xs->dims[1], HW = xs->dims[2] * xs->dims[3];
	if (xs->n_dims == 3) { /* [N, T, D] over T: T pixels of D channels */
		C = xs->dims[2];
		HW = xs->dims[1];
	}
	if (HW == 0) { /* the mean of no pixels: 0, as the FP32 kernel gives it */
		memset(y, m->qp[st->out].zero, (size_t)(N * C));
		return;
	}
	uint32_t acc[512];
	/* the rounded mean (sum + HW / 2) / HW, the division a multiply when
	 * the largest sum, 255 HW + HW / 2, keeps it exact (quant.h) */
	struct quant_divider dv = quant_divider((uint32_t)(HW > 0 && HW < INT32_MAX ? HW : 1));
	bool by_mul = HW > 0 && (uint64_t)(256 * HW) < quant_divider_exact_below(dv);
	for (int64_t b = 0; b < N; b++)
		for (int64_t c0 = 0; c0 < C; c0 += 512) {
			int64_t cn = C - c0 < 512 ? C - c0 : 512;
			m->sum_pixels((size_t)HW, (size_t)cn, (size_t)C, x + b * HW * C + c0, acc);
			for (int64_t c = 0; c < cn; c++)
				y[b * C + c0 + c] =
					by_mul ? (uint8_t)quant_divide((uint32_t)(acc[c] + HW / 2), dv)
					       : (uint8_t)((acc[c] + HW / 2) / HW);
		}
}

static void add_span(const struct qmodel *m, const struct qstep *st, size_t n, const uint8_t *a,
		     const uint8_t *b, uint8_t *y)
{
	const uint8_t *lut = st->add_lut;
	if (!lut) {
		m->add(n, a, b, &st->add, y);
		return;
	}
	for (size_t i = 0; i < n; i++)
		y[i] = lut[(size_t)a[i] << 8 | b[i]];
}

static void run_add(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	int64_t n = shape_numel(&e->shapes[st->out]);
	const uint8_t *a = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	/* with a constant: every image adds the same tile */
	int64_t per = st->add_tile ? st->tile_n : n;
	for (int64_t img = 0; img < n; img += per) {
		const uint8_t *b = st->add_tile ? st->add_tile : buf_ptr(e, m->v[st->in[1]].buf);
		add_span(m, st, (size_t)per, a + img, b, y + img);
	}
}

static void run_mul(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const uint8_t *a = buf_ptr(e, m->v[st->in[0]].buf), *b = buf_ptr(e, m->v[st->in[1]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	const struct shape *ys = &e->shapes[st->out];
	if (!st->mul_rows) {
		m->mul((size_t)shape_numel(ys), a, b, &st->mul, y);
		return;
	}
	/* [N,H,W,C] by the gate [N,C]: the gate is the input of size N*C */
	bool gate_b = shape_numel(&e->shapes[st->in[1]]) < shape_numel(&e->shapes[st->in[0]]);
	size_t N = (size_t)ys->dims[0], C = (size_t)ys->dims[1];
	size_t HW = (size_t)(ys->dims[2] * ys->dims[3]);
	/* q8_mul(x, gate) = q8_mul(gate, x) with the zero points swapped: the
	 * product of the two differences is the same */
	struct qmul_params pr = st->mul;
	if (!gate_b) {
		pr.a_zero = st->mul.b_zero;
		pr.b_zero = st->mul.a_zero;
	}
	for (size_t img = 0; img < N; img++) {
		size_t rows = img * HW * C, gate = img * C;
		m->mul_rows(HW, C, (gate_b ? a : b) + rows, (gate_b ? b : a) + gate, &pr, y + rows);
	}
}

static void run_lut(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	m->lut((size_t)shape_numel(&e->shapes[st->out]), buf_ptr(e, m->v[st->in[st->lut_in]].buf),
	       st->lut, buf_ptr(e, m->v[st->out].buf));
}

static void run_reshape(const struct qengine *e, const struct qstep *st)
{
	if (st->alias)
		return;
	const struct qmodel *m = e->m;
	const struct shape *xs = &e->shapes[st->in[0]], *ys = &e->shapes[st->out];
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	bool xn = m->v[st->in[0]].nhwc, yn = m->v[st->out].nhwc;
	int64_t total = shape_numel(xs);
	if (xn != yn && xs->dims[0] == ys->dims[0]) {
		/* NHWC <-> flat logical order (Flatten before a Gemm): a transpose of
		 * each image's [HW][C] */
		const struct shape *s4 = xn ? xs : ys;
		int64_t N = s4->dims[0], C = s4->dims[1], HW = s4->dims[2] * s4->dims[3];
		for (int64_t b = 0; b < N; b++) {
			const uint8_t *xb = x + b * C * HW;
			uint8_t *yb = y + b * C * HW;
			for (int64_t p = 0; p < HW; p++)
				for (int64_t c = 0; c < C; c++) {
					if (xn)
						yb[c * HW + p] = xb[p * C + c];
					else
						yb[p * C + c] = xb[c * HW + p];
				}
		}
		return;
	}
	/* logical index l: element l of the row-major logical tensor */
	for (int64_t l = 0; l < total; l++) {
		int64_t src = l, dst = l;
		if (xn) {
			int64_t C = xs->dims[1], HW = xs->dims[2] * xs->dims[3];
			int64_t b = l / (C * HW), c = (l / HW) % C, p = l % HW;
			src = (b * HW + p) * C + c;
		}
		if (yn) {
			int64_t C = ys->dims[1], HW = ys->dims[2] * ys->dims[3];
			int64_t b = l / (C * HW), c = (l / HW) % C, p = l % HW;
			dst = (b * HW + p) * C + c;
		}
		y[dst] = x[src];
	}
}

/* Resize (linear) of uint8 codes over H and W: planes of NCHW (or of
 * [N, C, L]) or rows of NHWC pixels in one kernel; a step whose input and
 * output lie in different orders reads each source element where it is. */
static void run_resize_linear(const struct qengine *e, const struct node *n,
			      const struct shape *xs, const struct shape *ys, bool xn, bool yn,
			      const uint8_t *x, uint8_t *y)
{
	struct resize_linear_plan pl;
	engine_resize_linear_plan(n, xs, ys, e->fscratch, &pl);
	if (xn == yn) {
		if (xn)
			resize_linear_u8__ref(pl.n, pl.hi, pl.wi, pl.c, pl.ho, pl.wo, &pl.th, &pl.tw, x,
					      y);
		else
			resize_linear_u8__ref(pl.n * pl.c, pl.hi, pl.wi, 1, pl.ho, pl.wo, &pl.th, &pl.tw,
					      x, y);
		return;
	}
	const struct resize_taps *th = &pl.th, *tw = &pl.tw;
	for (int64_t b = 0; b < pl.n; b++)
		for (int64_t c = 0; c < pl.c; c++)
			for (int64_t h = 0; h < pl.ho; h++)
				for (int64_t w = 0; w < pl.wo; w++) {
					int64_t hs[2] = {th->i0[h], th->i1[h]}, ws[2] = {tw->i0[w], tw->i1[w]};
					float v[2][2];
					for (int i = 0; i < 2; i++)
						for (int j = 0; j < 2; j++) {
							int64_t xo = xn ? ((b * pl.hi + hs[i]) * pl.wi + ws[j]) * pl.c + c
									: ((b * pl.c + c) * pl.hi + hs[i]) * pl.wi + ws[j];
							v[i][j] = (float)x[xo];
						}
					float top = (1.0f - tw->w[w]) * v[0][0] + tw->w[w] * v[0][1];
					float bot = (1.0f - tw->w[w]) * v[1][0] + tw->w[w] * v[1][1];
					float r = nearbyintf((1.0f - th->w[h]) * top + th->w[h] * bot);
					int64_t yo = yn ? ((b * pl.ho + h) * pl.wo + w) * pl.c + c
							: ((b * pl.c + c) * pl.ho + h) * pl.wo + w;
					y[yo] = (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
				}
}

/* Resize (nearest) of uint8 codes: the FP32 engine's maps, put in the order of
 * the dimensions in memory (N, H, W, C for an NHWC tensor). */
static void run_resize(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct node *n = &m->g->nodes[st->node];
	const struct shape *xs = &e->shapes[st->in[0]], *ys = &e->shapes[st->out];
	int r = xs->n_dims;
	int64_t total = 0, off[GRAPH_MAX_DIMS];
	for (int d = 0; d < r; d++) {
		off[d] = total;
		total += ys->dims[d];
	}
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	bool xn = m->v[st->in[0]].nhwc, yn = m->v[st->out].nhwc;
	if (n->a.resize_linear) {
		run_resize_linear(e, n, xs, ys, xn, yn, x, y);
		return;
	}
	int64_t *logical = (int64_t *)e->fscratch, *maps = logical + total;
	engine_resize_maps(n, xs, ys, logical);
	if (xn != yn) {
		/* one side NHWC, the other in logical order (a value shared with
		 * the row-major transformer steps): element by element */
		int64_t N = ys->dims[0], C = ys->dims[1], H = ys->dims[2], W = ys->dims[3];
		int64_t Hi = xs->dims[2], Wi = xs->dims[3];
		for (int64_t b = 0; b < N; b++)
			for (int64_t c = 0; c < C; c++)
				for (int64_t h = 0; h < H; h++)
					for (int64_t w = 0; w < W; w++) {
						int64_t ib = logical[off[0] + b], ic = logical[off[1] + c];
						int64_t ih = logical[off[2] + h], iw = logical[off[3] + w];
						int64_t xo = xn ? ((ib * Hi + ih) * Wi + iw) * xs->dims[1] + ic
								: ((ib * xs->dims[1] + ic) * Hi + ih) * Wi + iw;
						int64_t yo = yn ? ((b * H + h) * W + w) * C + c
								: ((b * C + c) * H + h) * W + w;
						y[yo] = x[xo];
					}
		return;
	}
	/* the storage order of the dimensions */
	int order[GRAPH_MAX_DIMS];
	for (int d = 0; d < r; d++)
		order[d] = d;
	if (xn) {
		order[1] = 2;
		order[2] = 3;
		order[3] = 1;
	}
	int64_t x_dims[GRAPH_MAX_DIMS], y_dims[GRAPH_MAX_DIMS], pos = 0;
	for (int k = 0; k < r; k++) {
		int d = order[k];
		x_dims[k] = xs->dims[d];
		y_dims[k] = ys->dims[d];
		memcpy(maps + pos, logical + off[d], sizeof(int64_t) * (size_t)ys->dims[d]);
		pos += ys->dims[d];
	}
	resize_nearest__ref(r, x_dims, y_dims, maps, 1, x, y);
}

/* MatMul of two uint8 activations: one kernel call per matrix of the batch
 * dimensions (A's batches as rows of one call when B is a plain matrix). */
static void run_qmatmul(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct shape *as = &e->shapes[st->in[0]], *bs = &e->shapes[st->in[1]];
	/* the buffers that hold A, B and C: their own, or those of the
	 * Transposes read or written in place */
	const uint8_t *a = buf_ptr(e, m->v[st->mm_val[0]].buf);
	const uint8_t *b = buf_ptr(e, m->v[st->mm_val[1]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->mm_val[2]].buf);
	int k = (int)as->dims[as->n_dims - 1], n = (int)bs->dims[bs->n_dims - 1];
	int rows = (int)as->dims[as->n_dims - 2];
	if (rows == 0 || n == 0)
		return;
	int64_t batches = shape_numel(&e->shapes[st->out]) / ((int64_t)rows * n);
	struct qmatmul_params p = st->qmm;
	p.k = k;
	p.n = n;
	if (st->mm_view) {
		/* A, B and C are strided views of 4-D buffers: one call per image
		 * and head, rows at the row axis' stride */
		const int64_t *sa = st->mm_stride[0], *sb = st->mm_stride[1], *sc = st->mm_stride[2];
		int ldb = (int)(p.b_trans ? sb[3] : sb[2]);
		p.m = rows;
		for (int64_t i = 0; i < as->dims[0]; i++)
			for (int64_t h = 0; h < as->dims[1]; h++)
				m->matmul->run(&p, a + i * sa[0] + h * sa[1], (int)sa[2],
					       b + i * sb[0] + h * sb[1], ldb, y + i * sc[0] + h * sc[1],
					       (int)sc[2], e->scratch);
		return;
	}
	if (bs->n_dims == 2) {
		p.m = (int)(shape_numel(as) / k);
		m->matmul->run(&p, a, k, b, n, y, n, e->scratch);
		return;
	}
	p.m = rows;
	for (int64_t i = 0; i < batches; i++)
		m->matmul->run(&p, a + (size_t)i * rows * k, k, b + (size_t)i * k * n, n,
			       y + (size_t)i * rows * n, n, e->scratch);
}

static void run_transpose(const struct qengine *e, const struct qstep *st)
{
	if (st->alias) /* [N,C,HW] -> [N,HW,C] of an NHWC conv output: its bytes */
		return;
	const struct qmodel *m = e->m;
	const struct node *n = &m->g->nodes[st->node];
	const struct shape *xs = &e->shapes[st->in[0]];
	int64_t perm[GRAPH_MAX_DIMS];
	for (int i = 0; i < xs->n_dims; i++)
		perm[i] = n->a.n_ints ? n->a.ints[i] : xs->n_dims - 1 - i;
	transpose_u8__ref(xs->n_dims, xs->dims, perm, buf_ptr(e, m->v[st->in[0]].buf),
			  buf_ptr(e, m->v[st->out].buf));
}

/* Softmax or LayerNormalization over the last axis: rows of its length. */
static void run_rowwise(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct shape *xs = &e->shapes[st->in[0]];
	size_t n = (size_t)xs->dims[xs->n_dims - 1];
	size_t rows = n ? (size_t)shape_numel(xs) / n : 0;
	const uint8_t *x = buf_ptr(e, m->v[st->in[0]].buf);
	uint8_t *y = buf_ptr(e, m->v[st->out].buf);
	if (st->kind == QK_SOFTMAX)
		m->softmax(rows, n, x, &st->sm, y);
	else
		m->layernorm(rows, n, x, &st->ln, y);
}

/* A recurrent step's product on R's codes (struct qrnn): x (batch rows of
 * hidden floats) quantized at QRNN_H_SCALE into the engine's scratch, then
 * the INT8 GEMM with float output. */
struct qrnn_run {
	const struct qrnn *q;
	const struct qgemm_ukernel *gemm;
	qquant_fn quant;
	uint8_t *qx;
};

static void qrnn_product(void *ctx, int d, int64_t col0, int64_t n, int64_t batch, const float *x,
			 float *out, int64_t ldo)
{
	const struct qrnn_run *r = ctx;
	const struct qrnn *q = r->q;
	int part = col0 ? 1 : 0;
	const struct qquant_params qp = {.inv_scale = 127.0f, .zero = 128, .bits = 8};
	r->quant((size_t)(batch * q->hidden), x, &qp, r->qx);
	PRESSO_CHECK(n == q->rows[part]);
	struct qgemm_params p = {.m = (int)batch, .n = (int)n, .k = (int)q->hidden,
				 .bias = q->bias[d][part], .deq_scale = q->deq[d][part],
				 .c_f32 = out};
	r->gemm->run(&p, r->qx, (int)q->hidden, q->packed[d][part], NULL, (int)ldo);
}

static void run_fallback(const struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	const struct graph *g = m->g;
	const struct node *n = &g->nodes[st->node];
	const float *in[GRAPH_MAX_INPUTS];
	for (int k = 0; k < n->n_inputs; k++) {
		int v = n->inputs[k];
		if (v < 0) {
			in[k] = NULL;
		} else if (m->v[v].dom == QD_CONST) {
			in[k] = m->const_data[v] ? m->const_data[v] : g->values[v].data;
		} else if (m->v[v].dom == QD_F32) {
			in[k] = buf_ptr(e, m->v[v].buf);
		} else {
			float *t = buf_ptr(e, st->tmp_in[k]);
			dequantize_tensor(buf_ptr(e, m->v[v].buf), &e->shapes[v], m->v[v].nhwc, &m->qp[v], t);
			in[k] = t;
		}
	}
	bool f32_out = m->v[st->out].dom == QD_F32;
	float *out = buf_ptr(e, f32_out ? m->v[st->out].buf : st->tmp_out);
	if (st->rnn) {
		struct rnn_params p;
		struct rnn_tensors t;
		engine_rnn_params(n, e->shapes, &p);
		engine_rnn_tensors(n, in, &t);
		struct qrnn_run r = {st->rnn, m->gemm, m->quant, e->scratch};
		const struct rnn_rec rec = {qrnn_product, &r};
		rnn_f32_rec(&p, &t, out, (enum rnn_out)n->a.rnn_output, e->fscratch, &rec);
	} else {
		engine_exec_node(g, n, e->shapes, in, out, e->fscratch, -INFINITY, INFINITY);
	}
	if (!f32_out)
		quantize_tensor(out, &e->shapes[st->out], m->v[st->out].nhwc, &m->qp[st->out], m->quant,
				buf_ptr(e, m->v[st->out].buf));
}

static void run_step(struct qengine *e, const struct qstep *st)
{
	const struct qmodel *m = e->m;
	int v = st->out;
	/* an empty output: nothing to compute, and no scratch was sized for it */
	if (e->empty[st - m->steps])
		return;
	switch (st->kind) {
	case QK_QUANTIZE:
		quantize_tensor(buf_ptr(e, m->v[v].f32_buf), &e->shapes[v], m->v[v].nhwc, &m->qp[v], m->quant,
				buf_ptr(e, m->v[v].buf));
		break;
	case QK_DEQUANT:
		dequantize_tensor(buf_ptr(e, m->v[v].buf), &e->shapes[v], m->v[v].nhwc, &m->qp[v],
				  buf_ptr(e, m->v[v].f32_buf));
		break;
	case QK_CONV:
		run_conv(e, st);
		break;
	case QK_DWCONV:
		run_dwconv(e, st);
		break;
	case QK_FC:
		run_fc(e, st);
		break;
	case QK_CLAMP:
		run_clamp(e, st);
		break;
	case QK_MAXPOOL:
		run_pool(e, st, true);
		break;
	case QK_AVGPOOL:
		run_pool(e, st, false);
		break;
	case QK_GAP:
		run_gap(e, st);
		break;
	case QK_ADD:
		run_add(e, st);
		break;
	case QK_MUL:
		run_mul(e, st);
		break;
	case QK_LUT:
		run_lut(e, st);
		break;
	case QK_RESHAPE:
		run_reshape(e, st);
		break;
	case QK_RESIZE:
		run_resize(e, st);
		break;
	case QK_FALLBACK:
		run_fallback(e, st);
		break;
	case QK_NONE:
		break;
	case QK_QMATMUL:
		run_qmatmul(e, st);
		break;
	case QK_TRANSPOSE:
		run_transpose(e, st);
		break;
	case QK_SOFTMAX:
	case QK_LAYERNORM:
		run_rowwise(e, st);
		break;
	}
}

/* --- run ------------------------------------------------------------------ */

/* Checks the batch and infers the shapes for it when it changed. */
static enum presso_status prepare_batch(struct qengine *e, int batch)
{
	if (batch < 1 || batch > e->max_batch)
		return status_fail(PRESSO_E_USAGE, "batch %d outside 1..%d this engine was planned for",
				   batch, e->max_batch);
	if (batch != e->cur_batch) {
		enum presso_status s = graph_infer_shapes(e->m->g, batch, e->shapes);
		if (s != PRESSO_OK)
			return s;
		e->cur_batch = batch;
	}
	return PRESSO_OK;
}

enum presso_status qengine_run(struct qengine *e, int batch)
{
	if (!e->chunkable || batch <= e->chunk) {
		enum presso_status s = prepare_batch(e, batch);
		for (int i = 0; s == PRESSO_OK && i < e->m->n_steps; i++)
			run_step(e, &e->m->steps[i]);
		return s;
	}
	enum presso_status s = PRESSO_OK;
	for (int i0 = 0; s == PRESSO_OK && i0 < batch; i0 += e->chunk) {
		int k = batch - i0 < e->chunk ? batch - i0 : e->chunk;
		if ((s = prepare_batch(e, k)) != PRESSO_OK)
			break;
		e->img0 = i0;
		for (int i = 0; i < e->m->n_steps; i++)
			run_step(e, &e->m->steps[i]);
	}
	e->img0 = 0;
	/* leave the shapes of the whole batch for qengine_output() */
	enum presso_status s2 = prepare_batch(e, batch);
	return s != PRESSO_OK ? s : s2;
}

/* --- profiling (the search's latency table) ---------------------------------- */
/* qengine_run with a clock around each step: the same chunks, each step's
 * times summed over them, so that a profile shows the row counts the kernels
 * really get. */

static double profile_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

enum presso_status qengine_run_profiled(struct qengine *e, int batch, double *step_us)
{
	const struct qmodel *m = e->m;
	enum presso_status s = prepare_batch(e, batch);
	if (s != PRESSO_OK)
		return s;
	int chunk = e->chunkable ? e->chunk : batch;
	for (int i = 0; i < m->n_steps; i++)
		step_us[i] = 0;
	for (int i0 = 0; s == PRESSO_OK && i0 < batch; i0 += chunk) {
		int k = batch - i0 < chunk ? batch - i0 : chunk;
		if ((s = prepare_batch(e, k)) != PRESSO_OK)
			break;
		e->img0 = i0;
		double t = profile_now_us();
		for (int i = 0; i < m->n_steps; i++) {
			run_step(e, &m->steps[i]);
			double t1 = profile_now_us();
			step_us[i] += t1 - t;
			t = t1;
		}
	}
	e->img0 = 0;
	/* leave the shapes of the whole batch for qengine_output() */
	enum presso_status s2 = prepare_batch(e, batch);
	return s != PRESSO_OK ? s : s2;
}
