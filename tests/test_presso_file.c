/* test_presso_file.c - the .presso format: weight codings round-trip at every
 * width; written models load back computing bit-identical outputs, at W8A8 and
 * at mixed low-bit policies with sparse layers, on every shipped model; the file
 * is the model's size_bytes plus a small structure; and every class of bad file
 * (wrong magic, other version, truncation, flipped bytes, corrupted counts
 * behind a valid checksum) is a PRESSO_E_FORMAT error, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "quant/calib.h"
#include "config/config.h"
#include "data/dataset.h"
#include "model/engine.h"
#include "evaluators/trial.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "format/onnx_export.h"
#include "format/presso_file.h"
#include "quant/qengine.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"
#include "format/wcode.h"

/* The structure a .presso file adds to size_bytes: 24 bytes of header plus
 * names, shapes and nodes. The shipped models (up to ~100 nodes with long
 * PyTorch names) stay below this. */
#define MAX_OVERHEAD_BYTES 8192
/* LeNet's structure is 818 bytes (README: the .presso format). */
#define LENET_MAX_OVERHEAD_BYTES 1024
#define N_CALIB 8
#define N_RUN 6

static uint32_t rng(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static float frand(uint32_t *s)
{
	return (float)(rng(s) & 0xffff) / 32768.0f - 1.0f;
}

/* --- weight codings ------------------------------------------------------------ */

static struct weight_coding coding_of(enum weight_coding_kind kind, const int8_t *q, int64_t n,
				      int bits)
{
	struct weight_coding c = quant_weight_coding(q, n, bits);
	int64_t entries = 0, run = 0;
	for (int64_t i = 0; i < n; i++) {
		if (q[i] == 0) {
			if (++run == WCODE_MAX_RUN + 1) {
				entries++;
				run = 0;
			}
			continue;
		}
		entries++;
		run = 0;
	}
	c.kind = kind;
	c.bytes = kind == WCODE_DENSE	 ? quant_packed_bytes(n, bits)
		  : kind == WCODE_BITMAP ? (n + 7) / 8 + quant_packed_bytes(c.nnz, bits)
					 : (entries * (WCODE_RUN_BITS + bits) + 7) / 8;
	return c;
}

/* Random weights at `bits`: zeros with probability `zeros`, in runs when `runs`. */
static void random_weights(int8_t *q, int64_t n, int bits, double zeros, bool runs, uint32_t *s)
{
	int qmax = quant_weight_qmax(bits);
	for (int64_t i = 0; i < n; i++) {
		bool zero = (double)(rng(s) % 10000) < zeros * 10000;
		if (runs && zero) {
			int64_t len = 1 + rng(s) % 40;
			for (int64_t j = 0; j < len && i < n; j++, i++)
				q[i] = 0;
			i--;
			continue;
		}
		int v = 0;
		while (v == 0 && !zero)
			v = (int)(rng(s) % (uint32_t)(2 * qmax + 1)) - qmax;
		q[i] = (int8_t)v;
	}
}

Test(wcode, every_coding_round_trips_at_every_width)
{
	static const int64_t lens[] = {1, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099};
	static const double zeros[] = {0.0, 0.05, 0.3, 0.7, 0.97, 1.0};
	uint32_t seed = 7;
	int8_t *q = malloc(4099), *back = malloc(4099);
	uint8_t *bytes = malloc(8192);
	for (int bits = 1; bits <= 8; bits++)
		for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
			for (size_t zi = 0; zi < sizeof zeros / sizeof zeros[0]; zi++)
				for (int runs = 0; runs < 2; runs++)
					for (int kind = WCODE_DENSE; kind <= WCODE_RUNLENGTH; kind++) {
		int64_t n = lens[li];
		random_weights(q, n, bits, zeros[zi], runs, &seed);
		struct weight_coding c = coding_of((enum weight_coding_kind)kind, q, n, bits);
		bool fillers = false;
		for (int64_t i = 0, run = 0; i < n; i++)
			if (q[i] == 0 && ++run > WCODE_MAX_RUN)
				fillers = true;
			else if (q[i] != 0)
				run = 0;
		/* binary has no code for zero: no dense with zeros, no fillers */
		if (bits == 1 && ((kind == WCODE_DENSE && c.nnz < n) ||
				  (kind == WCODE_RUNLENGTH && fillers)))
			continue;
		memset(bytes, 0xAB, 8192);
		wcode_encode(q, n, bits, &c, bytes);
		cr_assert_eq(bytes[c.bytes], 0xAB, "bits %d n %lld %s: wrote past its bytes", bits,
			     (long long)n, quant_coding_name(c.kind));
		memset(back, 0x55, (size_t)n);
		cr_assert(wcode_decode(bytes, &c, n, bits, back), "bits %d n %lld zeros %.2f %s",
			  bits, (long long)n, zeros[zi], quant_coding_name(c.kind));
		cr_assert_arr_eq(q, back, (size_t)n, "bits %d n %lld %s", bits, (long long)n,
				 quant_coding_name(c.kind));
		/* another non-zero count decodes to other weights with that count
		 * (binary run-length padding can hold one more entry) or not at all */
		struct weight_coding c2 = c;
		c2.nnz = c.nnz + 1;
		if (c2.nnz <= n && wcode_decode(bytes, &c2, n, bits, back)) {
			int64_t nnz = 0;
			for (int64_t i = 0; i < n; i++)
				nnz += back[i] != 0;
			cr_assert_eq(nnz, c2.nnz);
		}
		/* a wrong byte length is refused */
		c2 = c;
		c2.bytes = c.bytes + 1;
		bytes[c.bytes] = 0;
		cr_assert_not(wcode_decode(bytes, &c2, n, bits, back), "bits %d n %lld %s", bits,
			      (long long)n, quant_coding_name(c.kind));
	}
	free(q);
	free(back);
	free(bytes);
}

Test(wcode, biases_round_trip_at_their_width)
{
	uint32_t seed = 5;
	int32_t b[67], back[67];
	uint8_t bytes[1 + 67 * 4 + 1];
	for (int bits = 0; bits <= 32; bits++)
		for (int n = 1; n <= 67; n += 11) {
			/* n random values of at most `bits` bits, one of exactly `bits` */
			for (int i = 0; i < n; i++) {
				seed = seed * 1664525u + 1013904223u;
				int64_t lo = bits ? -(1ll << (bits - 1)) : 0, span = bits ? 1ll << bits : 1;
				b[i] = (int32_t)(lo + (int64_t)(((uint64_t)seed * 2654435761u) % (uint64_t)span));
			}
			if (bits)
				b[n / 2] = (int32_t)-(1ll << (bits - 1));
			cr_assert_eq(quant_bias_bits(b, n), bits);
			int64_t len = quant_bias_bytes(n, bits);
			memset(bytes, 0xAB, sizeof bytes);
			wcode_bias_encode(b, n, bytes);
			cr_assert_eq(bytes[len], 0xAB, "%d bits, n %d: wrote past its bytes", bits, n);
			cr_assert_eq(wcode_bias_decode(bytes, len, n, back), len, "%d bits, n %d", bits, n);
			cr_assert_arr_eq(b, back, sizeof(int32_t) * (size_t)n, "%d bits, n %d", bits, n);
			/* one byte short, or a set padding bit, is refused */
			cr_assert_eq(wcode_bias_decode(bytes, len - 1, n, back), -1);
			int64_t used_bits = (int64_t)n * bits;
			if (used_bits % 8) {
				bytes[1 + used_bits / 8] |= (uint8_t)(0x80u);
				cr_assert_eq(wcode_bias_decode(bytes, len, n, back), -1,
					     "%d bits, n %d: padding", bits, n);
			}
			/* a width wider than needed is not canonical: all values of
			 * 1 bit written at 2 */
			if (bits == 2) {
				int32_t ones[3] = {-1, 0, -1};
				uint8_t wide[2] = {2, 0x33}; /* 11 00 11, padding 00 */
				cr_assert_eq(wcode_bias_decode(wide, 2, 3, back), -1);
				wide[0] = 1;
				wide[1] = 0x05; /* 1 0 1 */
				cr_assert_eq(wcode_bias_decode(wide, 2, 3, back), 2);
				cr_assert_arr_eq(back, ones, sizeof ones);
			}
		}
	bytes[0] = 33;
	cr_assert_eq(wcode_bias_decode(bytes, (int64_t)sizeof bytes, 1, back), -1);
}

Test(wcode, damaged_bytes_never_read_or_write_out_of_bounds)
{
	uint32_t seed = 11;
	int8_t q[600], back[600];
	uint8_t bytes[700];
	for (int bits = 1; bits <= 8; bits++)
		for (int kind = WCODE_DENSE; kind <= WCODE_RUNLENGTH; kind++)
			for (int trial = 0; trial < 60; trial++) {
				int64_t n = 1 + rng(&seed) % 600;
				random_weights(q, n, bits, bits == 1 ? 0.0 : 0.6, trial & 1, &seed);
				struct weight_coding c = coding_of((enum weight_coding_kind)kind, q, n, bits);
				if (bits == 1 && kind == WCODE_DENSE && c.nnz < n)
					continue;
				memset(bytes, 0, sizeof bytes);
				if (!(bits == 1 && kind == WCODE_RUNLENGTH))
					wcode_encode(q, n, bits, &c, bytes);
				/* random damage; a decode that succeeds must give in-range weights */
				for (int f = 0; f < 3; f++)
					bytes[rng(&seed) % (uint32_t)(c.bytes ? c.bytes : 1)] ^=
						(uint8_t)(1u << (rng(&seed) % 8));
				if (wcode_decode(bytes, &c, n, bits, back))
					for (int64_t i = 0; i < n; i++)
						cr_assert(back[i] >= -quant_weight_qmax(bits) &&
							  back[i] <= quant_weight_qmax(bits));
			}
}

/* --- models -------------------------------------------------------------------- */

/* Removes dir and the files named in it (tests leave nothing behind). */
static void remove_dir(char *dir, const char *const *names)
{
	for (; *names; names++)
		remove(fx_join(dir, *names));
	cr_assert_eq(rmdir(dir), 0, "%s: files left behind", dir);
	free(dir);
}

static const struct normalize IDENTITY_NORM = {.scale = 1, .n_channels = 1, .mean = {0}, .std = {1}};

/* n random images shaped like g's input (NCHW float). */
static struct dataset *random_images(const struct graph *g, int n, uint32_t seed)
{
	const struct shape *s = &g->values[g->inputs[0]].shape;
	struct dataset *ds = calloc(1, sizeof *ds);
	ds->n = n;
	ds->c = (int)s->dims[1];
	ds->h = (int)s->dims[2];
	ds->w = (int)s->dims[3];
	int64_t per = (int64_t)ds->c * ds->h * ds->w;
	ds->f32 = malloc(sizeof(float) * (size_t)(n * per));
	ds->labels = calloc((size_t)n, sizeof(int32_t));
	ds->n_classes = 10;
	for (int64_t i = 0; i < n * per; i++)
		ds->f32[i] = 2.0f * frand(&seed);
	return ds;
}

static struct graph *load_model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s.onnx", name);
	struct graph *g;
	cr_assert_eq(graph_load_onnx(fx_src(rel), &g), PRESSO_OK, "%s", status_msg());
	return g;
}

static struct qmodel *quantize_as(const struct graph *g, const struct policy *pol,
				  enum requant_mode rq, struct calib **cal)
{
	struct dataset *ds = random_images(g, N_CALIB, 3);
	struct split sp;
	cr_assert_eq(split_range(ds->n, 0, &sp), PRESSO_OK);
	cr_assert_eq(calib_run(g, ds, &IDENTITY_NORM, &sp, N_CALIB, cal), PRESSO_OK, "%s",
		     status_msg());
	struct quant_config qc = {CALIB_MINMAX, 99.99, q8_isa_best(), NULL, NULL, rq};
	struct qmodel *m;
	cr_assert_eq(qmodel_build(g, pol, *cal, &qc, &m), PRESSO_OK, "%s", status_msg());
	split_free(&sp);
	dataset_free(ds);
	return m;
}

static struct qmodel *quantize(const struct graph *g, const struct policy *pol, struct calib **cal)
{
	return quantize_as(g, pol, REQUANT_FLOAT, cal);
}

/* The outputs of m on N_RUN fixed random images (malloc'd), *n_out floats. */
static float *run_q(const struct qmodel *m, int64_t *n_out)
{
	const struct graph *g = qmodel_graph(m);
	struct dataset *ds = random_images(g, N_RUN, 99);
	struct qengine *e;
	cr_assert_eq(qengine_create(m, N_RUN, &e), PRESSO_OK, "%s", status_msg());
	int64_t idx[N_RUN];
	for (int i = 0; i < N_RUN; i++)
		idx[i] = i;
	dataset_get_batch(ds, &IDENTITY_NORM, idx, N_RUN, false, qengine_input(e, 0), NULL);
	cr_assert_eq(qengine_run(e, N_RUN), PRESSO_OK, "%s", status_msg());
	struct shape s;
	const float *y = qengine_output(e, 0, &s);
	*n_out = shape_numel(&s);
	float *out = malloc(sizeof(float) * (size_t)*n_out);
	memcpy(out, y, sizeof(float) * (size_t)*n_out);
	qengine_free(e);
	dataset_free(ds);
	return out;
}

/* The loaded graph runs in the FP32 engine too (its weights dequantized). */
static void check_fp32_runs(const struct graph *g)
{
	struct engine *e;
	cr_assert_eq(engine_create(g, 2, &e), PRESSO_OK, "%s", status_msg());
	struct dataset *ds = random_images(g, 2, 5);
	int64_t idx[2] = {0, 1};
	dataset_get_batch(ds, &IDENTITY_NORM, idx, 2, false, engine_input(e, 0), NULL);
	cr_assert_eq(engine_run(e, 2), PRESSO_OK, "%s", status_msg());
	engine_free(e);
	dataset_free(ds);
}

struct roundtrip {
	int64_t file_bytes, size_bytes;
	bool coding_seen[3];
	int bits_seen[9];
	bool qconst_coding_seen[3];
	int qconst_bits_seen[9]; /* quantized constants (a recurrent layer's R) */
};

/* Writes m, loads it back, and checks outputs, sizes and per-layer choices. */
static void roundtrip(const struct qmodel *m, const char *path, struct roundtrip *rt)
{
	memset(rt, 0, sizeof *rt);
	cr_assert_eq(presso_file_write(m, path, &rt->file_bytes), PRESSO_OK, "%s", status_msg());
	size_t n;
	char *bytes = fx_read(path, &n);
	cr_assert_eq((int64_t)n, rt->file_bytes);
	free(bytes);

	struct graph *g2;
	struct qmodel *m2;
	cr_assert_eq(presso_file_load(path, q8_isa_best(), &g2, &m2), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(qmodel_requant(m2), qmodel_requant(m));
	struct qmodel_size z1, z2;
	qmodel_size(m, &z1);
	qmodel_size(m2, &z2);
	rt->size_bytes = z1.size_bytes;
	cr_assert_eq(z2.size_bytes, z1.size_bytes);
	cr_assert_eq(z2.weight_bytes, z1.weight_bytes);
	cr_assert_eq(z2.bops, z1.bops);
	cr_assert_eq(qmodel_n_layers(m2), qmodel_n_layers(m));
	for (int i = 0; i < qmodel_n_layers(m); i++) {
		struct qlayer_view a, b;
		qmodel_layer_view(m, i, &a);
		qmodel_layer_view(m2, i, &b);
		cr_assert_eq(a.bits, b.bits);
		cr_assert_eq(a.act_bits, b.act_bits);
		cr_assert_eq(a.coding.kind, b.coding.kind);
		cr_assert_eq(a.coding.bytes, b.coding.bytes);
		cr_assert_arr_eq(a.w, b.w, (size_t)(a.n_out * a.k));
		cr_assert_arr_eq(a.w_scale, b.w_scale, sizeof(float) * (size_t)a.n_out);
		cr_assert_arr_eq(a.bias, b.bias, sizeof(int32_t) * (size_t)a.n_out);
		rt->coding_seen[a.coding.kind] = true;
		rt->bits_seen[a.bits]++;
	}
	cr_assert_eq(qmodel_n_qconsts(m2), qmodel_n_qconsts(m));
	for (int i = 0; i < qmodel_n_qconsts(m); i++) {
		struct qconst_view a, b;
		qmodel_qconst_view(m, i, &a);
		qmodel_qconst_view(m2, i, &b);
		cr_assert_eq(a.value, b.value);
		cr_assert_eq(a.bits, b.bits);
		cr_assert_eq(a.n_out, b.n_out);
		cr_assert_eq(a.k, b.k);
		cr_assert_eq(a.coding.kind, b.coding.kind);
		cr_assert_arr_eq(a.w, b.w, (size_t)(a.n_out * a.k));
		cr_assert_arr_eq(a.w_scale, b.w_scale, sizeof(float) * (size_t)a.n_out);
		rt->qconst_coding_seen[a.coding.kind] = true;
		rt->qconst_bits_seen[a.bits]++;
	}
	int64_t n1, n2;
	float *y1 = run_q(m, &n1), *y2 = run_q(m2, &n2);
	cr_assert_eq(n1, n2);
	cr_assert_arr_eq(y1, y2, sizeof(float) * (size_t)n1, "outputs differ after loading");
	free(y1);
	free(y2);
	check_fp32_runs(g2);
	qmodel_free(m2);
	graph_free(g2);
}

static struct policy *uniform(int n_layers, int bits, int act_bits)
{
	struct layer_policy lp = policy_default_layer();
	lp.bits = bits;
	lp.act_bits = act_bits;
	struct policy *p;
	cr_assert_eq(policy_uniform(&lp, n_layers, &p), PRESSO_OK);
	return p;
}

static int n_layers_of(const struct graph *g)
{
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	free(ls);
	return nl;
}

Test(presso_file, lenet_w8a8_loads_bit_identical)
{
	char *dir = fx_tmpdir();
	struct graph *g = load_model("lenet");
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	struct roundtrip rt;
	roundtrip(m, fx_join(dir, "lenet.presso"), &rt);
	int64_t overhead = rt.file_bytes - rt.size_bytes;
	cr_assert(overhead > 24 && overhead <= LENET_MAX_OVERHEAD_BYTES,
		  "file %lld bytes, size_bytes %lld", (long long)rt.file_bytes,
		  (long long)rt.size_bytes);
	cr_log_info("lenet W8A8: %lld bytes = size_bytes %lld + %lld of structure",
		    (long long)rt.file_bytes, (long long)rt.size_bytes, (long long)overhead);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
	remove_dir(dir, (const char *const[]){"lenet.presso", NULL});
}

/* LeNet with every coding and width: a 90%-pruned binary conv (bitmap or
 * run-length), a ternary conv, a 3-bit fc1 with long runs of zeros (run-length),
 * 4- and 8-bit layers, 4..8-bit activations. */
Test(presso_file, lenet_mixed_low_bit_sparse_loads_bit_identical)
{
	char *dir = fx_tmpdir();
	struct graph *g = load_model("lenet");
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	cr_assert_eq(nl, 5);
	uint32_t s = 5;
	/* conv1: 90% of weights pruned at random */
	struct value *w0 = &g->values[g->nodes[ls[0].node].inputs[1]];
	for (int64_t i = 0; i < shape_numel(&w0->shape); i++)
		if (rng(&s) % 10 != 0)
			w0->data[i] = 0;
	/* fc1: 97% pruned in long runs */
	struct value *w2 = &g->values[g->nodes[ls[2].node].inputs[1]];
	for (int64_t i = 0; i < shape_numel(&w2->shape); i++)
		if ((i / 37) % 33 != 0)
			w2->data[i] = 0;
	struct policy *pol = uniform(nl, 8, 8);
	static const int bits[5] = {1, 2, 3, 4, 8}, act_bits[5] = {8, 6, 5, 4, 7};
	for (int i = 0; i < nl; i++) {
		pol->layers[i].bits = bits[i];
		pol->layers[i].act_bits = act_bits[i];
	}
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	struct roundtrip rt;
	roundtrip(m, fx_join(dir, "mixed.presso"), &rt);
	for (int k = 0; k < 3; k++)
		cr_assert(rt.coding_seen[k], "no layer in %s coding", quant_coding_name(k));
	cr_assert(rt.bits_seen[1] && rt.bits_seen[2] && rt.bits_seen[3]);
	cr_assert(rt.file_bytes - rt.size_bytes <= LENET_MAX_OVERHEAD_BYTES);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	free(ls);
	graph_free(g);
	remove_dir(dir, (const char *const[]){"mixed.presso", NULL});
}

/* Every shipped model (depthwise convs, residual Adds, folded BatchNorm, ReLU6,
 * an LSTM) at W8A8 and W4A8 with the first and last layer at 8 bits. Sanitizer builds,
 * ten times slower, check MobileNetV2 (every op the others have but the folded
 * BatchNorm, which import removes) at W4A8 only. */
Test(presso_file, shipped_models_load_bit_identical)
{
	static const char *const models[] = {"mobilenetv2", "lenet", "resnet", "resnet_bn", "lstm"};
	size_t n_models = fx_sanitized() ? 1 : sizeof models / sizeof models[0];
	char *dir = fx_tmpdir();
	for (size_t i = 0; i < n_models; i++) {
		struct graph *g = load_model(models[i]);
		int nl = n_layers_of(g);
		for (int w4 = fx_sanitized(); w4 < 2; w4++) {
			struct policy *pol = uniform(nl, w4 ? 4 : 8, 8);
			pol->layers[0].bits = pol->layers[nl - 1].bits = 8;
			struct calib *cal;
			struct qmodel *m = quantize(g, pol, &cal);
			struct roundtrip rt;
			roundtrip(m, fx_join(dir, "m.presso"), &rt);
			int64_t overhead = rt.file_bytes - rt.size_bytes;
			cr_assert(overhead > 24 && overhead <= MAX_OVERHEAD_BYTES, "%s: %lld bytes over",
				  models[i], (long long)overhead);
			cr_log_info("%s W%dA8: file %lld bytes = size_bytes %lld + %lld", models[i],
				    w4 ? 4 : 8, (long long)rt.file_bytes, (long long)rt.size_bytes,
				    (long long)overhead);
			qmodel_free(m);
			calib_free(cal);
			policy_free(pol);
		}
		graph_free(g);
	}
	remove_dir(dir, (const char *const[]){"m.presso", NULL});
}

/* The LSTM's recurrent weights R, quantized at its input projection's width,
 * in the file at every width and coding (R pruned to one weight in 8, in runs
 * of 3, for the sparse codings). */
Test(presso_file, lstm_recurrent_weights_load_bit_identical_at_every_width)
{
	char *dir = fx_tmpdir();
	struct graph *g = load_model("lstm");
	int nl = n_layers_of(g);
	int r = -1;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == OP_LSTM)
			r = g->nodes[i].inputs[RNN_IN_R];
	cr_assert_geq(r, 0);
	struct value *rv = &g->values[r];
	static const int widths[] = {1, 2, 3, 5, 8};
	bool coding_seen[3] = {false};
	for (int sparse = 0; sparse < 2; sparse++) {
		if (sparse)
			for (int64_t i = 0; i < shape_numel(&rv->shape); i++)
				if ((i / 3) % 8 != 0)
					rv->data[i] = 0;
		for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
			struct policy *pol = uniform(nl, widths[k], 8);
			struct calib *cal;
			struct qmodel *m = quantize(g, pol, &cal);
			cr_assert_eq(qmodel_n_qconsts(m), 1);
			struct roundtrip rt;
			roundtrip(m, fx_join(dir, "r.presso"), &rt);
			cr_assert_eq(rt.qconst_bits_seen[widths[k]], 1, "R not at %d bits", widths[k]);
			for (int c = 0; c < 3; c++)
				coding_seen[c] |= rt.qconst_coding_seen[c];
			qmodel_free(m);
			calib_free(cal);
			policy_free(pol);
		}
	}
	for (int c = 0; c < 3; c++)
		cr_assert(coding_seen[c], "R never in %s coding", quant_coding_name(c));
	graph_free(g);
	remove_dir(dir, (const char *const[]){"r.presso", NULL});
}

/* Files an earlier presso wrote still load: version 3 (the fuzzing seeds
 * written before quantized constants, LeNet W8A8 and a Q31 residual net at
 * 4 bits) and version 4 with the LSTM's R quantized, each to a model that
 * runs and writes back the same bytes but the version. */
Test(presso_file, version_3_and_4_files_load)
{
	static const char *const seeds[] = {"lenet-int8", "residual-int4-q31", "lstm-r3"};
	static const uint32_t versions[] = {3, 3, 4};
	char *dir = fx_tmpdir();
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		char rel[128];
		snprintf(rel, sizeof rel, "tests/fuzz/corpus/presso/%s.presso", seeds[i]);
		size_t n;
		uint8_t *old = (uint8_t *)fx_read(fx_src(rel), &n);
		cr_assert_not_null(old, "%s", rel);
		cr_assert_eq(old[8] | old[9] << 8 | old[10] << 16 | (uint32_t)old[11] << 24, versions[i],
			     "%s", rel);
		struct graph *g;
		struct qmodel *m;
		cr_assert_eq(presso_file_load(fx_src(rel), q8_isa_best(), &g, &m), PRESSO_OK, "%s: %s",
			     rel, status_msg());
		cr_assert_eq(qmodel_n_qconsts(m), versions[i] == 4 ? 1 : 0, "%s", rel);
		int64_t wrote;
		const char *path = fx_join(dir, "again.presso");
		cr_assert_eq(presso_file_write(m, path, &wrote), PRESSO_OK, "%s", status_msg());
		size_t n2;
		uint8_t *again = (uint8_t *)fx_read(path, &n2);
		/* a version-2 or 3 file differs in its version word and checksum
		 * only; a version-4 one in nothing */
		cr_assert_eq(n2, n, "%s", rel);
		cr_assert_eq(memcmp(again + 24, old + 24, n - 24), 0, "%s: the body changed", rel);
		free(again);
		free(old);
		qmodel_free(m);
		graph_free(g);
	}
	remove_dir(dir, (const char *const[]){"again.presso", NULL});
}

/* --- bad files ----------------------------------------------------------------- */

#define HEADER_BYTES 24

/* Rewrites the header's length and checksum for the body that is there, so that
 * the damage reaches the parser behind them. */
static void fix_header(uint8_t *b, size_t n)
{
	uint64_t body = n - HEADER_BYTES;
	uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + HEADER_BYTES, (uInt)body);
	for (int i = 0; i < 4; i++)
		b[12 + i] = (uint8_t)(crc >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[16 + i] = (uint8_t)(body >> (8 * i));
}

/* Loads bytes written to path: the status, with the model freed if it loaded. */
static enum presso_status load_bytes(const char *path, const uint8_t *b, size_t n)
{
	cr_assert(fx_write(path, b, n));
	struct graph *g;
	struct qmodel *m;
	enum presso_status s = presso_file_load(path, Q8_ISA_REF, &g, &m);
	if (s == PRESSO_OK) {
		qmodel_free(m);
		graph_free(g);
	} else {
		cr_assert_null(g);
		cr_assert_null(m);
		cr_assert(strstr(status_msg(), path), "the message names the file: %s", status_msg());
	}
	return s;
}

struct bad_fixture {
	char *dir;
	uint8_t *good;
	size_t n;
	size_t payload_guess; /* the structure lies before this offset */
};

static void write_mixed(struct bad_fixture *f)
{
	f->dir = fx_tmpdir();
	struct graph *g = load_model("lenet");
	int nl = n_layers_of(g);
	struct policy *pol = uniform(nl, 4, 8);
	pol->layers[0].bits = 2;
	pol->layers[1].bits = 1;
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	const char *path = fx_join(f->dir, "good.presso");
	int64_t bytes;
	cr_assert_eq(presso_file_write(m, path, &bytes), PRESSO_OK, "%s", status_msg());
	struct qmodel_size z;
	qmodel_size(m, &z);
	f->payload_guess = (size_t)(bytes - z.size_bytes);
	f->good = (uint8_t *)fx_read(path, &f->n);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
}

static void free_bad(struct bad_fixture *f)
{
	free(f->good);
	remove_dir(f->dir, (const char *const[]){"good.presso", "bad.presso", "cut.presso",
						   "flip.presso", NULL});
}

Test(presso_file, wrong_magic_version_and_missing_file)
{
	struct bad_fixture f;
	write_mixed(&f);
	const char *path = fx_join(f.dir, "bad.presso");
	uint8_t *b = malloc(f.n);
	memcpy(b, f.good, f.n);
	b[0] = 'X';
	cr_assert_eq(load_bytes(path, b, f.n), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "magic"), "%s", status_msg());
	memcpy(b, f.good, f.n);
	b[8] = 1; /* version 1 stored float32 scales and int32 biases */
	cr_assert_eq(load_bytes(path, b, f.n), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "version"), "%s", status_msg());
	b[8] = 5; /* a version from the future */
	cr_assert_eq(load_bytes(path, b, f.n), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "version"), "%s", status_msg());
	cr_assert_eq(load_bytes(path, b, 0), PRESSO_E_FORMAT);
	cr_assert_eq(load_bytes(path, (const uint8_t *)"not a model at all", 18), PRESSO_E_FORMAT);
	struct graph *g;
	struct qmodel *m;
	cr_assert_eq(presso_file_load(fx_join(f.dir, "none.presso"), Q8_ISA_REF, &g, &m),
		     PRESSO_E_IO);
	/* the good bytes still load */
	cr_assert_eq(load_bytes(path, f.good, f.n), PRESSO_OK, "%s", status_msg());
	free(b);
	free_bad(&f);
}

/* An empty file, or one cut inside its magic, is called empty or truncated (not
 * "not a .presso file", and not an ONNX model when sniffed); a device or a folder
 * is refused at once. */
Test(presso_file, empty_short_and_non_regular_files_say_what_they_are, .timeout = 20)
{
	struct bad_fixture f;
	write_mixed(&f);
	const char *path = fx_join(f.dir, "cut.presso");
	cr_assert_eq(load_bytes(path, f.good, 0), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "cut.presso: the file is empty (0 bytes)"), "%s",
		  status_msg());
	for (size_t len = 1; len < HEADER_BYTES; len += 3) {
		cr_assert_eq(load_bytes(path, f.good, len), PRESSO_E_FORMAT);
		cr_assert(strstr(status_msg(), "cut.presso: truncated"), "cut at %zu: %s", len,
			  status_msg());
	}
	/* the first bytes of the magic in a file of any name are sniffed as .presso */
	const char *bin = fx_join(f.dir, "flip.presso");
	cr_assert(fx_write(bin, f.good, 4));
	cr_assert(presso_file_sniff(bin));
	struct graph *g;
	struct qmodel *m;
	cr_assert_eq(presso_file_load("/dev/zero", Q8_ISA_REF, &g, &m), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "/dev/zero: is a device, not a model file"), "%s",
		  status_msg());
	cr_assert_eq(presso_file_load(f.dir, Q8_ISA_REF, &g, &m), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "is a folder, not a model file"), "%s", status_msg());
	cr_assert(!presso_file_sniff("/dev/zero"));
	free_bad(&f);
}

Test(presso_file, truncated_files_are_format_errors)
{
	struct bad_fixture f;
	write_mixed(&f);
	const char *path = fx_join(f.dir, "cut.presso");
	uint8_t *b = malloc(f.n);
	/* every length through the structure, then a spread over the payload; each
	 * as cut (the header disagrees) and with the header fixed to match */
	size_t step = fx_sanitized() ? 7 : 1;
	for (size_t len = 0; len < f.n; len += len < f.payload_guess + 64 ? step : f.n / 97 + 1) {
		memcpy(b, f.good, len);
		cr_assert_eq(load_bytes(path, b, len), PRESSO_E_FORMAT, "cut at %zu", len);
		if (len >= HEADER_BYTES) {
			fix_header(b, len);
			cr_assert_eq(load_bytes(path, b, len), PRESSO_E_FORMAT, "cut at %zu: %s", len,
				     status_msg());
		}
	}
	free(b);
	free_bad(&f);
}

Test(presso_file, flipped_bytes_are_format_errors_or_valid_models)
{
	struct bad_fixture f;
	write_mixed(&f);
	const char *path = fx_join(f.dir, "flip.presso");
	uint8_t *b = malloc(f.n);
	uint32_t s = 17;
	int n_trials = fx_sanitized() ? 150 : 600, n_fixed_ok = 0;
	for (int t = 0; t < n_trials; t++) {
		memcpy(b, f.good, f.n);
		/* mostly in the structure, where counts and indices live */
		size_t at = t % 4 ? rng(&s) % f.payload_guess : rng(&s) % f.n;
		b[at] ^= (uint8_t)(1u << (rng(&s) % 8));
		if (t % 3 == 0 && at + 1 < f.n)
			b[at + 1] = (uint8_t)rng(&s);
		/* as flipped: the checksum (or the header's own checks) catches it */
		cr_assert_eq(load_bytes(path, b, f.n), PRESSO_E_FORMAT, "flip at %zu", at);
		/* behind a valid checksum: an error naming the problem, or (a flip in a
		 * name or a scale) a model that loads */
		if (at >= HEADER_BYTES) {
			fix_header(b, f.n);
			enum presso_status st = load_bytes(path, b, f.n);
			cr_assert(st == PRESSO_OK || st == PRESSO_E_FORMAT, "flip at %zu: %s: %s", at,
				  status_str(st), status_msg());
			n_fixed_ok += st == PRESSO_OK;
		}
	}
	cr_log_info("%d of %d damaged files with a fixed checksum still loaded", n_fixed_ok,
		    n_trials);
	free(b);
	free_bad(&f);
}

/* --- presso eval --model --------------------------------------------------------- */

static cJSON *eval_json(const char *args, const char *what)
{
	char *out, *err;
	int rc = fx_presso(args, &out, &err);
	cr_assert_eq(rc, 0, "%s: %s", what, err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s: %s", what, out);
	free(out);
	free(err);
	return j;
}

static double quantized_field(const cJSON *j, const char *name)
{
	const cJSON *q = cJSON_GetObjectItem(j, "quantized");
	cr_assert_not_null(q);
	const cJSON *f = cJSON_GetObjectItem(q, name);
	cr_assert_not_null(f, "no quantized.%s", name);
	return f->valuedouble;
}

/* The .presso file of a study's int4 model evaluates to exactly what
 * `eval --policy int4` measures for the same config: accuracy and size. */
Test(presso_file, eval_model_matches_eval_policy)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"name\": \"pf\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": 300, \"test\": 300}}}",
		 fx_src("models/lenet.onnx"));
	char cfg_path[1024], model_path[1024], args[4096];
	snprintf(cfg_path, sizeof cfg_path, "%s", fx_join(dir, "c.json"));
	snprintf(model_path, sizeof model_path, "%s", fx_join(dir, "lenet4.presso"));
	cr_assert(fx_write(cfg_path, body, strlen(body)));

	struct config *cfg;
	struct study_ctx *ctx;
	struct policy *pol;
	struct built_model b;
	cr_assert_eq(config_load(cfg_path, &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(study_ctx_open(cfg, false, &ctx), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(policy_load("int4", ctx->layers, ctx->n_layers, &pol), PRESSO_OK);
	cr_assert_eq(trial_build(ctx, pol, &b), PRESSO_OK, "%s", status_msg());
	int64_t file_bytes;
	cr_assert_eq(presso_file_write(b.qm, model_path, &file_bytes), PRESSO_OK, "%s",
		     status_msg());
	built_model_free(&b);
	policy_free(pol);
	study_ctx_free(ctx);
	config_free(cfg);

	for (int valid = 0; valid < 2; valid++) {
		const char *split = valid ? " --split valid" : "";
		snprintf(args, sizeof args, "eval --json --threads 1 --policy int4%s --config '%s'",
			 split, cfg_path);
		cJSON *jp = eval_json(args, "eval --policy");
		snprintf(args, sizeof args, "eval --json --threads 1 --model '%s'%s --config '%s'",
			 model_path, split, cfg_path);
		cJSON *jm = eval_json(args, "eval --model");
		cr_assert_eq(cJSON_GetObjectItem(jm, "images")->valuedouble, 300);
		cr_assert_eq(quantized_field(jm, "correct"), quantized_field(jp, "correct"));
		cr_assert_eq(quantized_field(jm, "size_bytes"), quantized_field(jp, "size_bytes"));
		cr_assert_eq(quantized_field(jm, "bops"), quantized_field(jp, "bops"));
		cr_assert_eq(quantized_field(jm, "file_bytes"), (double)file_bytes);
		cJSON_Delete(jp);
		cJSON_Delete(jm);
	}

	/* `presso info FILE` lists each layer's quantization and the size */
	char *bytes, *out, *err;
	size_t n;
	snprintf(args, sizeof args, "info '%s' --json", model_path);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cJSON *ji = cJSON_Parse(out);
	cr_assert_not_null(ji, "%s", out);
	const cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(ji, "layers"), 1);
	cr_assert_eq(cJSON_GetObjectItem(l0, "bits")->valuedouble, 4, "%s", out);
	cr_assert_str_eq(cJSON_GetObjectItem(l0, "coding")->valuestring, "dense");
	cJSON_Delete(ji);
	free(out);
	free(err);

	/* a damaged file: exit 2, the file named; --model excludes --policy */
	bytes = fx_read(model_path, &n);
	cr_assert(fx_write(model_path, bytes, n / 2));
	free(bytes);
	snprintf(args, sizeof args, "eval --model '%s' --config '%s'", model_path, cfg_path);
	cr_assert_eq(fx_presso(args, &out, &err), 2);
	cr_assert(strstr(err, "lenet4.presso"), "%s", err);
	free(out);
	free(err);
	snprintf(args, sizeof args, "eval --model '%s' --policy int8 --config '%s'", model_path,
		 cfg_path);
	cr_assert_eq(fx_presso(args, &out, &err), 2);
	free(out);
	free(err);
	remove_dir(dir, (const char *const[]){"c.json", "lenet4.presso", NULL});
}

/* The requantization travels with the file: a Q31 model loads as Q31. A
 * version-2 file (written before float requantization existed: the same bytes
 * without the requant byte) loads as Q31 and computes the same; an unknown
 * requant byte is a format error. */
Test(presso_file, requant_mode_round_trips_and_version_2_reads_as_q31)
{
	char *dir = fx_tmpdir();
	struct graph *g = load_model("lenet");
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	struct calib *cal;
	struct qmodel *m = quantize_as(g, pol, REQUANT_Q31, &cal);
	struct roundtrip rt;
	const char *path = fx_join(dir, "q31.presso");
	roundtrip(m, path, &rt);
	size_t n;
	uint8_t *b = (uint8_t *)fx_read(path, &n);
	/* the requant byte follows producer (uv length + bytes) and three uv fields */
	size_t at = HEADER_BYTES, len = 0;
	uint8_t c;
	int shift = 0;
	do {
		c = b[at++];
		len |= (size_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	at += len;
	for (int f = 0; f < 3; f++)
		while (b[at++] & 0x80)
			;
	cr_assert_eq(b[at], 1, "requant byte of a Q31 model at %zu", at);
	uint8_t *v2 = malloc(n - 1);
	memcpy(v2, b, at);
	memcpy(v2 + at, b + at + 1, n - at - 1);
	v2[8] = 2;
	fix_header(v2, n - 1);
	const char *p2 = fx_join(dir, "v2.presso");
	cr_assert(fx_write(p2, v2, n - 1));
	struct graph *g2;
	struct qmodel *m2;
	cr_assert_eq(presso_file_load(p2, q8_isa_best(), &g2, &m2), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(qmodel_requant(m2), REQUANT_Q31);
	int64_t n1, n2;
	float *y1 = run_q(m, &n1), *y2 = run_q(m2, &n2);
	cr_assert_eq(n1, n2);
	cr_assert_arr_eq(y1, y2, sizeof(float) * (size_t)n1, "a version-2 file computes otherwise");
	qmodel_free(m2);
	graph_free(g2);
	b[at] = 2;
	fix_header(b, n);
	cr_assert_eq(load_bytes(p2, b, n), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "requantization"), "%s", status_msg());
	free(y1);
	free(y2);
	free(v2);
	free(b);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
	remove_dir(dir, (const char *const[]){"q31.presso", "v2.presso", NULL});
}

/* A model with every activation, arithmetic and normalisation op (tables, an
 * integer Mul with a squeeze-excite gate, a Sub, fallbacks) round-trips: the
 * ops, their attributes and the quantization come back, and the outputs are
 * bit-identical, in both requantization forms. */
Test(presso_file, new_ops_load_bit_identical)
{
	char *dir = fx_tmpdir();
	struct mb b;
	mb_new_ops_model(&b);
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++) {
		struct calib *cal;
		struct qmodel *m = quantize_as(g, pol, (enum requant_mode)rq, &cal);
		struct roundtrip rt;
		roundtrip(m, fx_join(dir, "ops.presso"), &rt);
		qmodel_free(m);
		calib_free(cal);
	}
	policy_free(pol);
	graph_free(g);
	mb_free(&b);
	remove_dir(dir, (const char *const[]){"ops.presso", NULL});
}

/* A DenseNet-style concatenation of 40 conv branches and the input (41
 * inputs, past the 8 a node once held): written and read back in both
 * requantization forms, and the INT8 model's outputs follow the FP32 ones. */
Test(presso_file, a_concat_of_41_inputs_round_trips_and_follows_fp32)
{
	enum { BRANCHES = 40 };
	char *dir = fx_tmpdir();
	uint32_t seed = 11;
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 6, 6}, 4);
	const char *cat_in[BRANCHES + 2] = {"x"};
	char names[BRANCHES][4][16];
	for (int i = 0; i < BRANCHES; i++) {
		float w[2] = {frand(&seed), frand(&seed)}, bias = 0.25f * frand(&seed);
		for (int k = 0; k < 4; k++)
			snprintf(names[i][k], sizeof names[i][k], "%c%d", "wbcr"[k], i);
		mb_init_f32(&b, names[i][0], (int64_t[]){1, 2, 1, 1}, 4, w);
		mb_init_f32(&b, names[i][1], (int64_t[]){1}, 1, &bias);
		mb_node(&b, "Conv", names[i][2],
			(const char *[]){"x", names[i][0], names[i][1], NULL}, names[i][2]);
		mb_node(&b, "Relu", names[i][3], (const char *[]){names[i][2], NULL}, names[i][3]);
		cat_in[i + 1] = names[i][3];
	}
	float wf[10 * (BRANCHES + 2)];
	for (size_t i = 0; i < sizeof wf / sizeof wf[0]; i++)
		wf[i] = frand(&seed);
	mb_init_f32(&b, "wf", (int64_t[]){10, BRANCHES + 2}, 2, wf);
	Onnx__NodeProto *cat = mb_node(&b, "Concat", "dense", cat_in, "cc");
	mb_attr_int(&b, cat, "axis", 1);
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"cc", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	Onnx__NodeProto *fc = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(&b, fc, "transB", 1);
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(n_layers_of(g), BRANCHES + 1);

	/* FP32 outputs on run_q's images */
	struct dataset *ds = random_images(g, N_RUN, 99);
	struct engine *e;
	cr_assert_eq(engine_create(g, N_RUN, &e), PRESSO_OK, "%s", status_msg());
	int64_t idx[N_RUN];
	for (int i = 0; i < N_RUN; i++)
		idx[i] = i;
	dataset_get_batch(ds, &IDENTITY_NORM, idx, N_RUN, false, engine_input(e, 0), NULL);
	cr_assert_eq(engine_run(e, N_RUN), PRESSO_OK, "%s", status_msg());
	struct shape ys;
	const float *yf = engine_output(e, 0, &ys);
	cr_assert_eq(shape_numel(&ys), N_RUN * 10);
	float range = 0;
	for (int i = 0; i < N_RUN * 10; i++)
		range = fmaxf(range, fabsf(yf[i]));

	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	for (int rq = REQUANT_FLOAT; rq <= REQUANT_Q31; rq++) {
		struct calib *cal;
		struct qmodel *m = quantize_as(g, pol, (enum requant_mode)rq, &cal);
		struct roundtrip rt;
		roundtrip(m, fx_join(dir, "dense.presso"), &rt);
		int64_t n;
		float *yq = run_q(m, &n);
		cr_assert_eq(n, N_RUN * 10);
		for (int i = 0; i < n; i++)
			cr_assert_leq(fabsf(yq[i] - yf[i]), 0.05f * range,
				      "output %d: INT8 %g, FP32 %g (form %d)", i, yq[i], yf[i], rq);
		free(yq);
		qmodel_free(m);
		calib_free(cal);
	}
	engine_free(e);
	dataset_free(ds);
	policy_free(pol);
	graph_free(g);
	mb_free(&b);
	remove_dir(dir, (const char *const[]){"dense.presso", NULL});
}

/* A sequence-first block (tokens [N,T,E] transposed to [T,N,E], flattened to
 * [T*N, E] rows for a Linear, and back) is written and read back: the rows
 * are batched (their count grows with the batch) but their batch-1 count is
 * T, not 1, which the reader once refused ("batched but its batch-1 shape
 * does not start with 1") in a file `presso compress` had just written. */
Test(presso_file, sequence_first_rows_load_bit_identical)
{
	char *dir = fx_tmpdir();
	uint32_t seed = 13;
	float w[8 * 8], wf[8 * 10];
	for (size_t i = 0; i < sizeof w / 4; i++)
		w[i] = frand(&seed);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = frand(&seed);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1, 4, 8}, 4);
	mb_init_i64(&b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 8});
	mb_init_i64(&b, "rows", (int64_t[]){2}, 1, (int64_t[]){-1, 8});
	mb_init_i64(&b, "seq", (int64_t[]){3}, 1, (int64_t[]){4, -1, 8});
	mb_init_i64(&b, "axes", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_f32(&b, "w", (int64_t[]){8, 8}, 2, w);
	mb_init_f32(&b, "wf", (int64_t[]){8, 10}, 2, wf);
	mb_node(&b, "Reshape", "to_tokens", (const char *[]){"x", "tokens", NULL}, "x3");
	Onnx__NodeProto *t = mb_node(&b, "Transpose", "seq_first", (const char *[]){"x3", NULL}, "xt");
	mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
	mb_node(&b, "Reshape", "to_rows", (const char *[]){"xt", "rows", NULL}, "r");
	mb_node(&b, "MatMul", "linear", (const char *[]){"r", "w", NULL}, "l");
	mb_node(&b, "Relu", "relu", (const char *[]){"l", NULL}, "a");
	mb_node(&b, "Reshape", "to_seq", (const char *[]){"a", "seq", NULL}, "s");
	t = mb_node(&b, "Transpose", "batch_first", (const char *[]){"s", NULL}, "bf");
	mb_attr_ints(&b, t, "perm", (int64_t[]){1, 0, 2}, 3);
	Onnx__NodeProto *rm = mb_node(&b, "ReduceMean", "pool", (const char *[]){"bf", NULL}, "m");
	mb_attr_ints(&b, rm, "axes", (int64_t[]){1}, 1);
	mb_attr_int(&b, rm, "keepdims", 0);
	mb_node(&b, "MatMul", "head", (const char *[]){"m", "wf", NULL}, "y");
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	int rows = -1;
	for (int v = 0; v < g->n_values; v++)
		if (strcmp(g->values[v].name, "r") == 0)
			rows = v;
	cr_assert_geq(rows, 0);
	cr_assert(g->values[rows].batched && g->values[rows].shape.dims[0] == 4,
		  "the rows [4N, 8] are batched, 4 at batch 1");
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	struct roundtrip rt;
	roundtrip(m, fx_join(dir, "seq.presso"), &rt);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
	mb_free(&b);
	remove_dir(dir, (const char *const[]){"seq.presso", NULL});
}

/* A ViT's class token at a dynamic batch: an Expand node repeating one
 * token to the batch, concatenated before the patch tokens. Written and read
 * back as .presso bit-identical, and exported as QDQ ONNX with the Expand's
 * shape computed from the input's (Shape, Slice [0:1], Concat with [1, 8]). */
Test(presso_file, a_class_token_expanded_to_the_batch_round_trips)
{
	char *dir = fx_tmpdir();
	uint32_t seed = 17;
	float tok[8], w[8 * 8], wf[8 * 10];
	for (size_t i = 0; i < 8; i++)
		tok[i] = frand(&seed);
	for (size_t i = 0; i < sizeof w / 4; i++)
		w[i] = frand(&seed);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = frand(&seed);
	struct mb b;
	mb_init(&b, 17);
	mb_input(&b, "x", (int64_t[]){-1, 1, 4, 8}, 4);
	mb_init_i64(&b, "tokens", (int64_t[]){3}, 1, (int64_t[]){0, 4, 8});
	mb_init_f32(&b, "cls", (int64_t[]){1, 1, 8}, 3, tok);
	mb_init_i64(&b, "zero", NULL, 0, (int64_t[]){0});
	mb_init_i64(&b, "axes0", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "rest", (int64_t[]){2}, 1, (int64_t[]){1, 8});
	mb_init_f32(&b, "w", (int64_t[]){8, 8}, 2, w);
	mb_init_f32(&b, "wf", (int64_t[]){8, 10}, 2, wf);
	mb_node(&b, "Reshape", "to_tokens", (const char *[]){"x", "tokens", NULL}, "x3");
	mb_node(&b, "Shape", "shape", (const char *[]){"x3", NULL}, "xs");
	Onnx__NodeProto *ga = mb_node(&b, "Gather", "batch", (const char *[]){"xs", "zero", NULL}, "n");
	mb_attr_int(&b, ga, "axis", 0);
	mb_node(&b, "Unsqueeze", "n1", (const char *[]){"n", "axes0", NULL}, "n1");
	Onnx__NodeProto *c = mb_node(&b, "Concat", "want", (const char *[]){"n1", "rest", NULL}, "sh");
	mb_attr_int(&b, c, "axis", 0);
	mb_node(&b, "Expand", "expand", (const char *[]){"cls", "sh", NULL}, "ce");
	c = mb_node(&b, "Concat", "with_token", (const char *[]){"ce", "x3", NULL}, "t");
	mb_attr_int(&b, c, "axis", 1);
	mb_node(&b, "MatMul", "linear", (const char *[]){"t", "w", NULL}, "l");
	mb_node(&b, "Relu", "relu", (const char *[]){"l", NULL}, "a");
	Onnx__NodeProto *rm = mb_node(&b, "ReduceMean", "pool", (const char *[]){"a", NULL}, "m");
	mb_attr_ints(&b, rm, "axes", (int64_t[]){1}, 1);
	mb_attr_int(&b, rm, "keepdims", 0);
	mb_node(&b, "MatMul", "head", (const char *[]){"m", "wf", NULL}, "y");
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	struct roundtrip rt;
	roundtrip(m, fx_join(dir, "cls.presso"), &rt);

	const char *path = fx_join(dir, "cls.onnx");
	cr_assert_eq(onnx_export_qdq(m, NULL, path), PRESSO_OK, "%s", status_msg());
	size_t n;
	char *file = fx_read(path, &n);
	Onnx__ModelProto *om = onnx__model_proto__unpack(NULL, n, (const uint8_t *)file);
	cr_assert_not_null(om);
	const Onnx__GraphProto *og = om->graph;
	const Onnx__NodeProto *ex = NULL;
	for (size_t i = 0; i < og->n_node; i++)
		if (strcmp(og->node[i]->op_type, "Expand") == 0)
			ex = og->node[i];
	cr_assert(ex && ex->n_input == 2, "an Expand with an input and a shape");
	/* its shape: Concat(Slice(Shape(input)), [1, 8]) */
	const char *want[3] = {"Concat", "Slice", "Shape"};
	const char *v = ex->input[1];
	for (int k = 0; k < 3; k++) {
		const Onnx__NodeProto *p = NULL;
		for (size_t i = 0; i < og->n_node && !p; i++)
			if (strcmp(og->node[i]->output[0], v) == 0)
				p = og->node[i];
		cr_assert(p && strcmp(p->op_type, want[k]) == 0, "step %d: %s", k,
			  p ? p->op_type : "no producer");
		v = p->input[0];
	}
	/* the graph input, or its quantize-dequantize pair */
	for (bool moved = true; moved;) {
		moved = false;
		for (size_t i = 0; i < og->n_node && !moved; i++)
			if (strcmp(og->node[i]->output[0], v) == 0 &&
			    strstr(og->node[i]->op_type, "uantizeLinear")) {
				v = og->node[i]->input[0];
				moved = true;
			}
	}
	bool from_input = false;
	for (size_t i = 0; i < og->n_input; i++)
		from_input |= strcmp(og->input[i]->name, v) == 0;
	cr_assert(from_input, "the Shape reads '%s', not the graph input", v);
	onnx__model_proto__free_unpacked(om, NULL);
	free(file);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
	mb_free(&b);
	remove_dir(dir, (const char *const[]){"cls.presso", "cls.onnx", NULL});
}

/* A branch that carries no element (a Slice keeping none of the input's
 * channels, max-pooled, then concatenated with a conv's output) is written
 * and read back: the reader once refused the empty tensor's 0 dimension
 * ("bad dimension 1") that `presso compress` had just written. */
Test(presso_file, an_empty_tensor_loads_bit_identical)
{
	char *dir = fx_tmpdir();
	uint32_t seed = 7;
	float w[4 * 2 * 9], bias[4], wf[10 * 4];
	for (size_t i = 0; i < sizeof w / 4; i++)
		w[i] = frand(&seed);
	for (size_t i = 0; i < sizeof bias / 4; i++)
		bias[i] = frand(&seed);
	for (size_t i = 0; i < sizeof wf / 4; i++)
		wf[i] = frand(&seed);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 8, 8}, 4);
	mb_init_i64(&b, "starts", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "ends", (int64_t[]){1}, 1, (int64_t[]){0});
	mb_init_i64(&b, "axes", (int64_t[]){1}, 1, (int64_t[]){1});
	mb_init_f32(&b, "w", (int64_t[]){4, 2, 3, 3}, 4, w);
	mb_init_f32(&b, "b", (int64_t[]){4}, 1, bias);
	mb_init_f32(&b, "wf", (int64_t[]){10, 4}, 2, wf);
	mb_node(&b, "Slice", "none", (const char *[]){"x", "starts", "ends", "axes", NULL}, "e");
	Onnx__NodeProto *p = mb_node(&b, "MaxPool", "pool", (const char *[]){"e", NULL}, "ep");
	mb_attr_ints(&b, p, "kernel_shape", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, p, "strides", (int64_t[]){2, 2}, 2);
	Onnx__NodeProto *c = mb_node(&b, "Conv", "conv", (const char *[]){"x", "w", "b", NULL}, "c");
	mb_attr_ints(&b, c, "strides", (int64_t[]){2, 2}, 2);
	mb_attr_ints(&b, c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	Onnx__NodeProto *cat = mb_node(&b, "Concat", "cat", (const char *[]){"ep", "c", NULL}, "cc");
	mb_attr_int(&b, cat, "axis", 1);
	mb_node(&b, "Relu", "relu", (const char *[]){"cc", NULL}, "r");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"r", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	Onnx__NodeProto *fc = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "wf", NULL}, "y");
	mb_attr_int(&b, fc, "transB", 1);
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	struct policy *pol = uniform(n_layers_of(g), 8, 8);
	struct calib *cal;
	struct qmodel *m = quantize(g, pol, &cal);
	struct roundtrip rt;
	roundtrip(m, fx_join(dir, "empty.presso"), &rt);
	qmodel_free(m);
	calib_free(cal);
	policy_free(pol);
	graph_free(g);
	mb_free(&b); /* and the packed bytes */
	remove_dir(dir, (const char *const[]){"empty.presso", NULL});
}
