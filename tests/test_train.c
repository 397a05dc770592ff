/* test_train.c - the fine-tuning library: loss, optimizers, schedules, config,
 * and the trainer's promises (the same weights whatever the thread count; a
 * run interrupted and resumed from its checkpoint ends where an uninterrupted
 * one does; another run's checkpoint is refused; it learns).
 *
 * The trainer runs on a tiny model (Conv 3x3 + Relu + MaxPool + Gemm on 6x6
 * images) and a synthetic dataset of three classes (which third of the image
 * is bright), so each test takes milliseconds.
 */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "quant/quant.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"
#include "train/checkpoint.h"
#include "train/fold.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/tnet.h"
#include "train/train_config.h"
#include "train/trainer.h"

/* Central differences of the loss in double: truncation h^2 |L'''| / 6 with
 * h = 1e-3 and |L'''| < 10 here, rounding 1e-16 / h: both far below this. */
#define LOSS_FD_TOL 1e-5
#define N_IMAGES 48
#define IMG 6

/* ---- fixtures --------------------------------------------------------------- */

static uint64_t rs;

static float runif(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static void init_rand(struct mb *b, const char *name, const int64_t *dims, int n, float scale)
{
	int64_t count = 1;
	for (int i = 0; i < n; i++)
		count *= dims[i];
	float *d = malloc(sizeof(float) * (size_t)count);
	for (int64_t i = 0; i < count; i++)
		d[i] = runif() * scale;
	mb_init_f32(b, name, dims, n, d);
	free(d);
}

/* Conv 3x3 (1 -> 4, pad 1) + Relu + MaxPool 2 + Flatten + Gemm (36 -> 3). */
static struct graph *tiny_model(uint64_t seed)
{
	rs = seed;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 1, IMG, IMG}, wd[4] = {4, 1, 3, 3}, bd[1] = {4};
	int64_t fw[2] = {3, 36}, fb[1] = {3}, k[2] = {3, 3}, p[4] = {1, 1, 1, 1}, pk[2] = {2, 2};
	mb_input(&b, "x", xd, 4);
	init_rand(&b, "conv.w", wd, 4, 0.5f);
	init_rand(&b, "conv.b", bd, 1, 0.1f);
	init_rand(&b, "fc.w", fw, 2, 0.3f);
	init_rand(&b, "fc.b", fb, 1, 0.1f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv", (const char *[]){"x", "conv.w", "conv.b", NULL}, "c");
	mb_attr_ints(&b, n, "kernel_shape", k, 2);
	mb_attr_ints(&b, n, "pads", p, 4);
	mb_node(&b, "Relu", "relu", (const char *[]){"c", NULL}, "r");
	n = mb_node(&b, "MaxPool", "pool", (const char *[]){"r", NULL}, "m");
	mb_attr_ints(&b, n, "kernel_shape", pk, 2);
	mb_attr_ints(&b, n, "strides", pk, 2);
	mb_node(&b, "Flatten", "flat", (const char *[]){"m", NULL}, "f");
	n = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "fc.w", "fc.b", NULL}, "y");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	cr_assert_eq(graph_load_onnx_bytes(bytes, nb, NULL, &g), PRESSO_OK, "%s", status_msg());
	mb_free(&b);
	return g;
}

/* Three classes: which third of the columns is bright, plus noise. */
static struct dataset *tiny_data(void)
{
	struct dataset *ds = calloc(1, sizeof *ds);
	ds->n = N_IMAGES;
	ds->c = 1;
	ds->h = ds->w = IMG;
	ds->n_classes = 3;
	ds->u8 = malloc(N_IMAGES * IMG * IMG);
	ds->labels = malloc(sizeof(int32_t) * N_IMAGES);
	rs = 99;
	for (int i = 0; i < N_IMAGES; i++) {
		int c = i % 3;
		ds->labels[i] = c;
		for (int y = 0; y < IMG; y++)
			for (int x = 0; x < IMG; x++) {
				float v = (x / 2 == c ? 180.0f : 40.0f) + 60.0f * runif();
				ds->u8[(i * IMG + y) * IMG + x] = (uint8_t)v;
			}
	}
	return ds;
}

struct setup {
	struct graph *g, *teacher;
	struct dataset *ds;
	struct normalize norm;
	int64_t idx[N_IMAGES];
	struct split calib;
	struct quant_config qc;
	struct train_config tc;
	struct policy *pol;
	struct trainer_setup su;
};

static void setup_open(struct setup *s, int bits)
{
	memset(s, 0, sizeof *s);
	s->g = tiny_model(7);
	s->teacher = tiny_model(7);
	s->ds = tiny_data();
	s->norm = (struct normalize){.scale = 1.0f / 255.0f, .n_channels = 1, .mean = {0.4f},
				     .std = {0.3f}};
	for (int i = 0; i < N_IMAGES; i++)
		s->idx[i] = i;
	s->calib = (struct split){.n = 12, .indices = s->idx};
	s->qc = (struct quant_config){.method = CALIB_MINMAX, .percentile = 99.99,
				      .isa = Q8_ISA_REF};
	s->tc = train_config_default();
	s->tc.batch = 8;
	s->tc.micro_batch = 2;
	s->tc.threads = 1;
	s->tc.lr = 0.05;
	s->tc.epochs = 3;
	if (bits) {
		struct layer_policy lp = policy_default_layer();
		lp.bits = bits;
		cr_assert_eq(policy_uniform(&lp, 2, &s->pol), PRESSO_OK);
	}
	s->su = (struct trainer_setup){
		.g = s->g, .pol = s->pol, .teacher = s->teacher, .tc = &s->tc, .ds = s->ds,
		.norm = &s->norm, .train = s->idx, .n_train = N_IMAGES, .calib = &s->calib,
		.qc = &s->qc,
	};
	memset(s->su.fingerprint, 0x5a, sizeof s->su.fingerprint);
}

static void setup_close(struct setup *s)
{
	graph_free(s->g);
	graph_free(s->teacher);
	dataset_free(s->ds);
	policy_free(s->pol);
}

/* Every float constant of a graph, in value order, for bitwise comparison. */
static int64_t weights(const struct graph *g, float *out)
{
	int64_t n = 0;
	for (int v = 0; v < g->n_values; v++) {
		const struct value *val = &g->values[v];
		if (!val->data)
			continue;
		int64_t k = shape_numel(&val->shape);
		if (out)
			memcpy(out + n, val->data, sizeof(float) * (size_t)k);
		n += k;
	}
	return n;
}

static float *weights_copy(const struct graph *g)
{
	float *w = malloc(sizeof(float) * (size_t)weights(g, NULL));
	weights(g, w);
	return w;
}

/* Top-1 accuracy of a graph's FP32 forward on the tiny dataset. */
static double accuracy(struct setup *s)
{
	struct tnet *t;
	struct tnet_ws *w;
	cr_assert_eq(tnet_create(s->g, TNET_BN_FROZEN, &t), PRESSO_OK);
	cr_assert_eq(tnet_ws_create(t, N_IMAGES, &w), PRESSO_OK);
	int32_t labels[N_IMAGES];
	dataset_get_batch(s->ds, &s->norm, s->idx, N_IMAGES, false, tnet_ws_input(w, 0), labels);
	cr_assert_eq(tnet_forward(t, w, N_IMAGES), PRESSO_OK);
	int correct;
	double loss;
	cr_assert_eq(train_loss(N_IMAGES, 3, tnet_ws_logits(w), labels, NULL, 0.0, 1.0, 1.0f, NULL,
				&correct, &loss),
		     PRESSO_OK);
	tnet_ws_free(w);
	tnet_free(t);
	return 100.0 * correct / N_IMAGES;
}

/* ---- loss --------------------------------------------------------------------- */

Test(train_loss, gradient_matches_finite_differences)
{
	rs = 1;
	const int n = 3, classes = 5;
	float z[15], t[15], dz[15];
	int32_t y[3] = {0, 4, 2};
	for (int i = 0; i < 15; i++) {
		z[i] = 3.0f * runif();
		t[i] = 3.0f * runif();
	}
	const double weights_[] = {0.0, 0.3, 1.0}, temps[] = {1.0, 2.0, 4.0};
	for (int a = 0; a < 3; a++)
		for (int k = 0; k < 3; k++) {
			double l0, lp, lm;
			cr_assert_eq(train_loss(n, classes, z, y, t, weights_[a], temps[k], 1.0f, dz,
						NULL, &l0),
				     PRESSO_OK);
			for (int i = 0; i < 15; i++) {
				float keep = z[i];
				const float h = 1e-3f;
				z[i] = keep + h;
				train_loss(n, classes, z, y, t, weights_[a], temps[k], 1.0f, NULL, NULL, &lp);
				z[i] = keep - h;
				train_loss(n, classes, z, y, t, weights_[a], temps[k], 1.0f, NULL, NULL, &lm);
				z[i] = keep;
				/* h is a float step: use the step actually taken */
				double hh = ((double)(keep + h) - (double)(keep - h)) / 2.0;
				cr_expect_float_eq(dz[i], (lp - lm) / (2.0 * hh), LOSS_FD_TOL + 1e-3 * fabs(dz[i]),
						   "kd %g T %g logit %d: %g vs %g", weights_[a], temps[k], i, dz[i],
						   (lp - lm) / (2.0 * hh));
			}
		}
}

Test(train_loss, values_and_counts)
{
	/* two classes, logits 0 and log 3: p = 1/4, 3/4 */
	float z[4] = {0.0f, logf(3.0f), 5.0f, 5.0f};
	int32_t y[2] = {1, 0};
	int correct;
	double l = NAN, lk = NAN;
	cr_assert_eq(train_loss(2, 2, z, y, NULL, 0.5, 2.0, 1.0f, NULL, &correct, &l), PRESSO_OK);
	cr_assert_float_eq(l, -log(0.75) - log(0.5), 1e-6);
	cr_assert_eq(correct, 2, "a tie goes to the lower class");
	/* the same logits for teacher and student: KL is 0 */
	float t[4];
	memcpy(t, z, sizeof t);
	cr_assert_eq(train_loss(2, 2, z, y, t, 1.0, 3.0, 1.0f, NULL, NULL, &lk), PRESSO_OK);
	cr_assert_float_eq(lk, 0.0, 1e-12);
}

/* ---- optimizers and schedules ---------------------------------------------------- */

Test(train_optim, schedules)
{
	struct train_config tc = train_config_default();
	tc.lr = 0.1;
	tc.lr_min = 0.01;
	cr_assert_float_eq(optim_lr(&tc, 0, 11, 5), 0.1, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 5, 11, 5), 0.055, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 10, 11, 5), 0.01, 1e-12);
	tc.warmup_steps = 4;
	cr_assert_float_eq(optim_lr(&tc, 0, 14, 5), 0.025, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 3, 14, 5), 0.1, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 4, 14, 5), 0.1, 1e-12);
	tc.warmup_steps = 0;
	tc.schedule = SCHED_STEP;
	tc.step_epochs = 2;
	tc.gamma = 0.5;
	cr_assert_float_eq(optim_lr(&tc, 9, 100, 5), 0.1, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 10, 100, 5), 0.05, 1e-12);
	cr_assert_float_eq(optim_lr(&tc, 29, 100, 5), 0.025, 1e-12);
	tc.schedule = SCHED_CONSTANT;
	cr_assert_float_eq(optim_lr(&tc, 77, 100, 5), 0.1, 1e-12);
}

/* One SGD and one Adam update by hand, on the tiny model's parameters. */
Test(train_optim, updates)
{
	struct graph *g = tiny_model(3);
	struct tnet *t;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_OK);
	int64_t n = tnet_n_floats(t);
	float *grad = malloc(sizeof(float) * (size_t)n), *w0 = malloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		grad[i] = runif();
	for (int opt = 0; opt < 2; opt++) {
		struct train_config tc = train_config_default();
		tc.optimizer = opt ? OPTIM_ADAM : OPTIM_SGD;
		tc.weight_decay = 0.1;
		struct optim *o;
		cr_assert_eq(optim_create(&tc, t, &o), PRESSO_OK);
		for (int p = 0; p < tnet_n_params(t); p++)
			memcpy(w0 + tnet_param(t, p)->offset, tnet_param_data(t, p),
			       sizeof(float) * (size_t)tnet_param(t, p)->n);
		optim_step(o, &tc, t, grad, 0.01);
		optim_step(o, &tc, t, grad, 0.01);
		for (int p = 0; p < tnet_n_params(t); p++) {
			const struct tnet_param *tp = tnet_param(t, p);
			double wd = tp->kind == TP_WEIGHT ? 0.1 : 0.0;
			for (int64_t i = 0; i < tp->n; i++) {
				double w = w0[tp->offset + i], g1 = grad[tp->offset + i], want;
				if (!opt) { /* Nesterov SGD, L2 decay, two steps */
					double gi = g1 + wd * w, m = gi;
					w -= 0.01 * (gi + 0.9 * m);
					gi = g1 + wd * w;
					m = 0.9 * m + gi;
					want = w - 0.01 * (gi + 0.9 * m);
				} else { /* AdamW, two steps: m-hat = g, v-hat = g^2 each time */
					w = w * (1 - 0.01 * wd) - 0.01 * g1 / (fabs(g1) + 1e-8);
					want = w * (1 - 0.01 * wd) - 0.01 * g1 / (fabs(g1) + 1e-8);
				}
				cr_assert_float_eq(tnet_param_data(t, p)[i], want, 1e-5,
						   "optimizer %d param %d[%lld]", opt, p, (long long)i);
			}
			memcpy(tnet_param_data(t, p), w0 + tp->offset, sizeof(float) * (size_t)tp->n);
		}
		optim_free(o);
	}
	free(grad);
	free(w0);
	tnet_free(t);
	graph_free(g);
}

/* ---- config ---------------------------------------------------------------------- */

static enum presso_status parse(const char *json, struct train_config *tc)
{
	cJSON *j = cJSON_Parse(json);
	cr_assert_not_null(j);
	enum presso_status s = train_config_parse(j, "finetune", tc);
	cJSON_Delete(j);
	return s;
}

Test(train_config, fields_and_errors)
{
	struct train_config tc;
	cr_assert_eq(parse("{\"epochs\": 5, \"optimizer\": \"adam\", \"lr\": 0.001, "
			   "\"schedule\": \"step\", \"kd_weight\": 0.9, \"temperature\": 4}", &tc),
		     PRESSO_OK);
	cr_assert_eq(tc.epochs, 5);
	cr_assert_eq(tc.optimizer, OPTIM_ADAM);
	cr_assert_eq(tc.schedule, SCHED_STEP);
	cr_assert_float_eq(tc.kd_weight, 0.9, 1e-12);
	const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"lr\": -1}", "finetune.lr: expected a number in [0, 10]"},
		{"{\"optimizer\": \"rmsprop\"}", "finetune.optimizer"},
		{"{\"kd_weight\": 2}", "finetune.kd_weight"},
		{"{\"batch\": 8, \"micro_batch\": 16}", "finetune.micro_batch: 16 is larger"},
		{"{\"epoch\": 3}", "epoch"},
		{"{\"seed\": 1.5}", "finetune.seed"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(parse(bad[i].json, &tc), PRESSO_E_CONFIG, "%s", bad[i].json);
		cr_assert(strstr(status_msg(), bad[i].msg), "%s: %s", bad[i].json, status_msg());
	}
}

/* ---- the trainer ----------------------------------------------------------------- */

Test(trainer, learns)
{
	struct setup s;
	setup_open(&s, 0);
	double before = accuracy(&s);
	struct trainer_report rep;
	s.tc.epochs = 8;
	cr_assert_eq(trainer_run(&s.su, &rep), PRESSO_OK, "%s", status_msg());
	double after = accuracy(&s);
	cr_assert_eq(rep.steps, 8 * (N_IMAGES / 8));
	cr_assert_geq(after, 90.0, "accuracy %.1f%% after training (%.1f%% before)", after, before);
	setup_close(&s);
}

/* The parts of a batch are reduced in a fixed order: 1, 2 and 3 threads give
 * the same weights, bit for bit (QAT at 3 bits, distillation on). */
Test(trainer, thread_count_does_not_change_the_weights)
{
	float *ref = NULL;
	int64_t n = 0;
	for (int threads = 1; threads <= 3; threads++) {
		struct setup s;
		setup_open(&s, 3);
		s.tc.threads = threads;
		s.tc.max_steps = 10;
		cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_OK, "%s", status_msg());
		float *w = weights_copy(s.g);
		if (!ref) {
			ref = w;
			n = weights(s.g, NULL);
		} else {
			cr_assert_eq(memcmp(ref, w, sizeof(float) * (size_t)n), 0,
				     "%d threads changed the weights", threads);
			free(w);
		}
		setup_close(&s);
	}
	free(ref);
}

struct stopper {
	atomic_int *flag;
	int64_t at_epoch;
};

static void stop_after(void *ctx, int64_t epoch, const struct graph *g)
{
	(void)g;
	struct stopper *st = ctx;
	if (epoch == st->at_epoch)
		atomic_store(st->flag, 1);
}

/* Interrupted after epoch 2 of 4 (checkpoint written), then run again: the
 * same final weights as without the interruption, bit for bit; QAT on, so the
 * activation ranges measured at each epoch's start must come back too. */
Test(trainer, resume_equals_uninterrupted)
{
	char *dir = fx_tmpdir();
	const char *ck = fx_join(dir, "run.ckpt");
	struct setup s;
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.tc.calib_every = 5;
	cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_OK, "%s", status_msg());
	float *ref = weights_copy(s.g);
	int64_t n = weights(s.g, NULL);
	setup_close(&s);

	atomic_int flag = 0;
	struct stopper st = {&flag, 2};
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.tc.calib_every = 5;
	s.su.checkpoint = ck;
	s.su.stop = &flag;
	s.su.on_epoch = stop_after;
	s.su.on_epoch_ctx = &st;
	struct trainer_report rep;
	cr_assert_eq(trainer_run(&s.su, &rep), PRESSO_OK, "%s", status_msg());
	cr_assert(rep.interrupted);
	cr_assert_eq(rep.steps, 2 * (N_IMAGES / 8));
	setup_close(&s);

	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.tc.calib_every = 5;
	s.su.checkpoint = ck;
	cr_assert_eq(trainer_run(&s.su, &rep), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(rep.resumed_at, 2 * (N_IMAGES / 8));
	cr_assert_eq(rep.steps, 4 * (N_IMAGES / 8));
	float *w = weights_copy(s.g);
	cr_assert_eq(memcmp(ref, w, sizeof(float) * (size_t)n), 0,
		     "the resumed run ended with other weights");
	free(w);
	setup_close(&s);

	/* a deadline stops it the same way: one in the past before the first
	 * step (checkpointed there), then the run resumes from it and ends with
	 * the uninterrupted weights */
	unlink(ck);
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.tc.calib_every = 5;
	s.su.checkpoint = ck;
	s.su.deadline_s = 1e-9; /* CLOCK_MONOTONIC: long past */
	cr_assert_eq(trainer_run(&s.su, &rep), PRESSO_OK, "%s", status_msg());
	cr_assert(rep.interrupted, "a past deadline did not stop the fine-tune");
	cr_assert_eq(rep.steps, 0);
	cr_assert_eq(access(ck, F_OK), 0, "no checkpoint at the deadline");
	setup_close(&s);
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.tc.calib_every = 5;
	s.su.checkpoint = ck;
	s.su.deadline_s = 1e12; /* far ahead: no effect */
	cr_assert_eq(trainer_run(&s.su, &rep), PRESSO_OK, "%s", status_msg());
	cr_assert(!rep.interrupted);
	cr_assert_eq(rep.steps, 4 * (N_IMAGES / 8));
	w = weights_copy(s.g);
	cr_assert_eq(memcmp(ref, w, sizeof(float) * (size_t)n), 0,
		     "the run resumed after its deadline ended with other weights");
	free(w);
	setup_close(&s);
	free(ref);

	/* another run's checkpoint (other fingerprint) is refused, naming the file */
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.su.checkpoint = ck;
	s.su.fingerprint[0] ^= 1;
	cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "run.ckpt") && strstr(status_msg(), "another fine-tune"),
		  "%s", status_msg());
	setup_close(&s);
	/* a damaged one too */
	size_t nb;
	char *bytes = fx_read(ck, &nb);
	cr_assert_not_null(bytes);
	bytes[nb - 3] ^= 0x40;
	cr_assert(fx_write(ck, bytes, nb));
	free(bytes);
	setup_open(&s, 2);
	s.tc.epochs = 4;
	s.su.checkpoint = ck;
	cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "damaged"), "%s", status_msg());
	setup_close(&s);
	unlink(ck);
	rmdir(dir);
	free(dir);
}

/* The quantization penalty pulls the weights onto their grid. */
Test(trainer, quant_penalty_pulls_weights_to_the_grid)
{
	double dist[2];
	for (int k = 0; k < 2; k++) {
		struct setup s;
		setup_open(&s, 3);
		s.tc.lambda = k ? 2.0 : 0.0;
		s.tc.momentum = 0.0; /* plain steps: w - q shrinks by 1 - 2 lr lambda = 0.8 each */
		s.tc.max_steps = 12;
		cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_OK, "%s", status_msg());
		struct tnet *t;
		cr_assert_eq(tnet_create(s.g, TNET_BN_FROZEN, &t), PRESSO_OK);
		tnet_set_weight_bits(t, 0, 3);
		tnet_set_weight_bits(t, 1, 3);
		dist[k] = tnet_quant_penalty(t, 1.0, NULL);
		tnet_free(t);
		setup_close(&s);
	}
	cr_assert_lt(dist[1], 0.5 * dist[0], "sum (w - q(w))^2: %g with lambda, %g without",
		     dist[1], dist[0]);
}

/* ---- BatchNorm folded back ------------------------------------------------------ */

/* resnet_bn.onnx loaded unfolded and folded into its folded form gives the
 * importer's folded weights bit for bit, and the unfolded graph trains to the
 * same logits as the folded one (BatchNorm frozen). */
Test(train_fold, untrained_fold_is_the_importers)
{
	struct graph *f = NULL, *u = NULL, *back = NULL;
	struct graph_load_opts lo = {.keep_batchnorm = true};
	cr_assert_eq(graph_load_onnx(fx_src("models/resnet_bn.onnx"), &f), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_eq(graph_load_onnx_opts(fx_src("models/resnet_bn.onnx"), &lo, &u), PRESSO_OK);
	cr_assert_gt(f->n_folded_bn, 0);
	cr_assert_eq(u->n_folded_bn, 0);
	cr_assert_eq(train_fold_into(f, u, &back), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(back->n_values, f->n_values);
	for (int v = 0; v < f->n_values; v++) {
		if (!f->values[v].data)
			continue;
		int64_t n = shape_numel(&f->values[v].shape);
		cr_assert_eq(memcmp(f->values[v].data, back->values[v].data, sizeof(float) * (size_t)n),
			     0, "value '%s' differs", f->values[v].name);
	}
	/* the same logits from both training graphs */
	struct tnet *tf, *tu;
	struct tnet_ws *wf, *wu;
	cr_assert_eq(tnet_create(f, TNET_BN_FROZEN, &tf), PRESSO_OK);
	cr_assert_eq(tnet_create(u, TNET_BN_FROZEN, &tu), PRESSO_OK, "%s", status_msg());
	cr_assert_gt(tnet_n_bn_channels(tu), 0);
	cr_assert_eq(tnet_ws_create(tf, 2, &wf), PRESSO_OK);
	cr_assert_eq(tnet_ws_create(tu, 2, &wu), PRESSO_OK);
	rs = 5;
	for (int i = 0; i < 2 * 28 * 28; i++)
		tnet_ws_input(wf, 0)[i] = tnet_ws_input(wu, 0)[i] = runif();
	cr_assert_eq(tnet_forward(tf, wf, 2), PRESSO_OK);
	cr_assert_eq(tnet_forward(tu, wu, 2), PRESSO_OK);
	for (int i = 0; i < 20; i++)
		cr_assert_float_eq(tnet_ws_logits(wf)[i], tnet_ws_logits(wu)[i], 1e-3, "logit %d", i);
	tnet_ws_free(wf);
	tnet_ws_free(wu);
	tnet_free(tf);
	tnet_free(tu);
	graph_free(back);
	graph_free(u);
	graph_free(f);
}

/* Conv -> BatchNorm (kept as a node) -> Relu -> GAP -> Gemm on the tiny data. */
static struct graph *tiny_bn_model(void)
{
	rs = 11;
	struct mb b;
	mb_init(&b, 13);
	int64_t xd[4] = {-1, 1, IMG, IMG}, wd[4] = {4, 1, 3, 3}, cd[1] = {4};
	int64_t fw[2] = {3, 4}, fb[1] = {3}, k[2] = {3, 3}, p[4] = {1, 1, 1, 1};
	mb_input(&b, "x", xd, 4);
	init_rand(&b, "conv.w", wd, 4, 0.5f);
	init_rand(&b, "gamma", cd, 1, 0.5f);
	init_rand(&b, "beta", cd, 1, 0.1f);
	init_rand(&b, "mean", cd, 1, 0.1f);
	float var[4] = {1.0f, 0.5f, 2.0f, 1.5f};
	mb_init_f32(&b, "var", cd, 1, var);
	init_rand(&b, "fc.w", fw, 2, 0.5f);
	init_rand(&b, "fc.b", fb, 1, 0.1f);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv", (const char *[]){"x", "conv.w", NULL}, "c");
	mb_attr_ints(&b, n, "kernel_shape", k, 2);
	mb_attr_ints(&b, n, "pads", p, 4);
	mb_node(&b, "BatchNormalization", "bn",
		(const char *[]){"c", "gamma", "beta", "mean", "var", NULL}, "bnout");
	mb_node(&b, "Relu", "relu", (const char *[]){"bnout", NULL}, "r");
	mb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"r", NULL}, "g");
	mb_node(&b, "Flatten", "flat", (const char *[]){"g", NULL}, "f");
	n = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "fc.w", "fc.b", NULL}, "y");
	mb_attr_int(&b, n, "transB", 1);
	mb_output(&b, "y");
	size_t nb;
	uint8_t *bytes = mb_pack(&b, &nb);
	struct graph *g;
	struct graph_load_opts lo = {.keep_batchnorm = true};
	cr_assert_eq(graph_load_onnx_bytes_opts(bytes, nb, NULL, &lo, &g), PRESSO_OK, "%s",
		     status_msg());
	mb_free(&b);
	return g;
}

/* Batch-statistics BatchNorm and Adam through the trainer: the running
 * statistics move, and 1 or 2 threads give the same weights and statistics. */
Test(trainer, batchnorm_batch_mode_and_adam)
{
	float *ref = NULL;
	int64_t n = 0;
	for (int threads = 1; threads <= 2; threads++) {
		struct setup s;
		setup_open(&s, 0);
		graph_free(s.g);
		s.g = tiny_bn_model();
		s.su.g = s.g;
		s.su.teacher = NULL;
		s.tc.threads = threads;
		s.tc.optimizer = OPTIM_ADAM;
		s.tc.lr = 0.01;
		s.tc.batchnorm = TRAIN_BN_BATCH;
		s.tc.max_steps = 9;
		int mean = graph_find_value(s.g, "mean");
		float before = s.g->values[mean].data[0];
		cr_assert_eq(trainer_run(&s.su, NULL), PRESSO_OK, "%s", status_msg());
		cr_assert_neq(s.g->values[mean].data[0], before, "the running mean did not move");
		float *w = weights_copy(s.g);
		if (!ref) {
			ref = w;
			n = weights(s.g, NULL);
		} else {
			cr_assert_eq(memcmp(ref, w, sizeof(float) * (size_t)n), 0,
				     "2 threads changed the weights or the statistics");
			free(w);
		}
		setup_close(&s);
	}
	free(ref);
}

/* Logits of the FP32 engine on g for the n images in x. */
static float *engine_logits(const struct graph *g, const float *x, int n, int64_t per_image,
			    int64_t *n_out)
{
	struct engine *e;
	cr_assert_eq(engine_create(g, n, &e), PRESSO_OK, "%s", status_msg());
	memcpy(engine_input(e, 0), x, sizeof(float) * (size_t)(n * per_image));
	cr_assert_eq(engine_run(e, n), PRESSO_OK, "%s", status_msg());
	struct shape ys;
	const float *y = engine_output(e, 0, &ys);
	*n_out = shape_numel(&ys);
	float *copy = malloc(sizeof(float) * (size_t)*n_out);
	memcpy(copy, y, sizeof(float) * (size_t)*n_out);
	engine_free(e);
	return copy;
}

/* The row LSTM's recurrent weights R train fake-quantized at its input
 * projection's width, as the INT8 engine quantizes them (one scale per row
 * of ONNX's R): the tnet's logits at 3 bits are the FP32 engine's on the
 * model whose projection weight is the tnet's quantized one and whose R is
 * quantized per row here, and not those with R left in float. */
Test(trainer, recurrent_weights_train_at_the_projection_width)
{
	struct graph *g, *ref;
	cr_assert_eq(graph_load_onnx(fx_src("models/lstm.onnx"), &g), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(graph_load_onnx(fx_src("models/lstm.onnx"), &ref), PRESSO_OK);
	struct tnet *t;
	cr_assert_eq(tnet_create(g, TNET_BN_FROZEN, &t), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(tnet_set_weight_bits(t, 0, 3), PRESSO_OK);
	enum { N = 4, PER = 28 * 28 };
	float *x = malloc(sizeof(float) * N * PER);
	for (int i = 0; i < N * PER; i++)
		x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
	struct tnet_ws *ws;
	cr_assert_eq(tnet_ws_create(t, N, &ws), PRESSO_OK);
	memcpy(tnet_ws_input(ws, 0), x, sizeof x[0] * N * PER);
	cr_assert_eq(tnet_forward(t, ws, N), PRESSO_OK, "%s", status_msg());
	const float *got = tnet_ws_logits(ws);

	/* the reference: the projection's weight as the tnet quantized it */
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(ref, &ls, &nl), PRESSO_OK);
	struct value *pw = &ref->values[ref->nodes[ls[0].node].inputs[1]];
	memcpy(pw->data, tnet_weight_q(t, 0), sizeof(float) * (size_t)shape_numel(&pw->shape));
	int64_t n_y;
	float *float_r = engine_logits(ref, x, N, PER, &n_y);
	cr_assert_eq(n_y, N * tnet_n_classes(t));
	/* and R^T [dirs, hidden, gates * hidden] quantized by ONNX's rows */
	struct value *rv = NULL;
	for (int i = 0; i < ref->n_nodes; i++)
		if (ref->nodes[i].op == OP_LSTM)
			rv = &ref->values[ref->nodes[i].inputs[RNN_IN_R]];
	cr_assert_not_null(rv);
	int64_t dirs = rv->shape.dims[0], h = rv->shape.dims[1], gh = rv->shape.dims[2];
	float *rows = malloc(sizeof(float) * (size_t)(dirs * gh * h));
	int8_t *q = malloc((size_t)(dirs * gh * h));
	float *scale = malloc(sizeof(float) * (size_t)(dirs * gh));
	for (int64_t d = 0; d < dirs; d++)
		for (int64_t j = 0; j < h; j++)
			for (int64_t u = 0; u < gh; u++)
				rows[(d * gh + u) * h + j] = rv->data[(d * h + j) * gh + u];
	quant_weights(rows, dirs * gh, h, 3, q, scale);
	for (int64_t d = 0; d < dirs; d++)
		for (int64_t j = 0; j < h; j++)
			for (int64_t u = 0; u < gh; u++)
				rv->data[(d * h + j) * gh + u] =
					(float)q[(d * gh + u) * h + j] * scale[d * gh + u];
	float *want = engine_logits(ref, x, N, PER, &n_y);
	double off_float_r = 0;
	for (int64_t i = 0; i < n_y; i++) {
		cr_assert_float_eq(got[i], want[i], 1e-4f * (1.0f + fabsf(want[i])), "logit %lld: %g vs %g",
				   (long long)i, (double)got[i], (double)want[i]);
		off_float_r = fmax(off_float_r, fabs((double)got[i] - float_r[i]));
	}
	cr_assert_gt(off_float_r, 1e-2, "R at 3 bits moves no logit: it was not quantized");
	free(float_r);
	free(want);
	free(rows);
	free(q);
	free(scale);
	free(ls);
	free(x);
	tnet_ws_free(ws);
	tnet_free(t);
	graph_free(g);
	graph_free(ref);
}
