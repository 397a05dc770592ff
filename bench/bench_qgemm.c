/* bench_qgemm.c - INT8 GEMM throughput in MACs per cycle, one core: each presso
 * path (kernels_q8.h) and, when built with HAVE_DNNL, oneDNN's matmul primitive.
 *
 * usage: bench_qgemm [--seconds S] [--onednn-only] [--float-rq] [--versus] [MxNxK ...]
 * Default shapes (M, N, K): 1x128x512 64x128x1152 64x64x576 256x256x256 1024x1024x1024.
 * presso requantizes in Q31 fixed point (mult, shift) unless --float-rq asks
 * for the float form (rq_scale, the engine's default); oneDNN always gets
 * float output scales.
 *
 * The operation is the one presso runs: C[m][n] (uint8) = requantize(bias_eff[n] +
 * sum_k A[m][k] (uint8) * W[n][k] (int8)) with per-channel multipliers, shifts
 * and an output zero point. oneDNN gets the same work: u8 src [M,K], s8
 * weights [K,N] in the layout it picks (format_tag_any, reordered once, like
 * presso's pack), s32 bias, per-channel output scales and a dst zero point,
 * u8 dst. Its threads are the OpenMP ones: run with OMP_NUM_THREADS=1. The
 * oneDNN ISA is capped by ONEDNN_MAX_CPU_ISA, read by oneDNN at its first call
 * (bench/run_qgemm.sh runs this binary once per cap).
 *
 * Cycles: the core clock and the vpdpbusd peak come from bench/common/bench_cpu.c
 * (a dependent-add chain, since perf counters are not available in every
 * container). The clock is measured just before and just after each row's
 * timing; MACs/cycle = MACs / seconds / their mean (printed per row). Seconds
 * are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other processes on
 * the machine bias neither. Each figure is the best of 5 samples of >= S/5
 * seconds each (default S = 1).
 * Every presso path's output is checked bit-exact against the reference once.
 *
 * --versus (needs oneDNN): per shape, the fastest presso path in both
 * requantization forms and oneDNN, their samples taken in turn (2 x 5 of
 * each, >= 3 S / 10 seconds each; 4 S / 10 with the peak loop), then
 * presso's speed over oneDNN's per form. The machine's speed drifts by a few
 * percent between runs on shared hosts; a ratio from samples taken side by
 * side does not. With AVX-512 VNNI the vpdpbusd peak loop
 * (bench_vpdpbusd_run, as many MACs as the shape) is sampled in the same
 * turns, and each path is also printed as a fraction of it: a time ratio,
 * free of the clock estimate the MAC/cyc column rests on.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels_q8.h"
#include "common/bench_cpu.h"

#ifdef HAVE_DNNL
#include <dnnl.h>
#endif

#define N_SAMPLES 5
/* Nominal AVX-512 VNNI peak the targets refer to: 2 ports x 64 MACs. */
#define VNNI_NOMINAL_MACS_PER_CYCLE 128.0

/* CPU time of this thread: the time it is descheduled (other jobs on the
 * machine) counts neither in the kernels' samples nor in the clock estimate. */
static double now_s(void)
{
	return bench_thread_s();
}

/* --- problem ------------------------------------------------------------------ */

struct problem {
	int m, n, k;
	uint8_t *a;
	int8_t *w;   /* [n][k] */
	int32_t *bias, *mult;
	int8_t *shift;
	float *scale; /* mult * 2^shift / 2^31 for oneDNN */
	int32_t c_zero;
};

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static void *xmalloc(size_t bytes)
{
	void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!p) {
		fprintf(stderr, "bench_qgemm: out of memory\n");
		exit(1);
	}
	return p;
}

static void problem_make(struct problem *pb, int m, int n, int k)
{
	uint32_t s = 12345;
	*pb = (struct problem){.m = m, .n = n, .k = k, .c_zero = 128};
	pb->a = xmalloc((size_t)m * k);
	pb->w = xmalloc((size_t)n * k);
	pb->bias = xmalloc((size_t)n * sizeof(int32_t));
	pb->mult = xmalloc((size_t)n * sizeof(int32_t));
	pb->shift = xmalloc((size_t)n);
	pb->scale = xmalloc((size_t)n * sizeof(float));
	for (size_t i = 0; i < (size_t)m * k; i++)
		pb->a[i] = (uint8_t)lcg(&s);
	for (size_t i = 0; i < (size_t)n * k; i++)
		pb->w[i] = (int8_t)(lcg(&s) % 255 - 127);
	int32_t *bias_q = xmalloc((size_t)n * sizeof(int32_t));
	for (int j = 0; j < n; j++) {
		bias_q[j] = (int32_t)(lcg(&s) % 20001) - 10000;
		pb->mult[j] = (int32_t)((1u << 30) + lcg(&s) % (1u << 24) * 64);
		pb->shift[j] = -12;
		pb->scale[j] = (float)((double)pb->mult[j] / 2147483648.0 / 4096.0);
	}
	q8_bias_fold(n, k, pb->w, bias_q, 0, pb->bias);
	free(bias_q);
}

static void problem_free(struct problem *pb)
{
	free(pb->a);
	free(pb->w);
	free(pb->bias);
	free(pb->mult);
	free(pb->shift);
	free(pb->scale);
}

/* Calls of fn(ctx) per batch: doubled from 1 until a batch takes >= 1 ms,
 * after one call that warms caches and any lazy setup. */
static int64_t batch_of_1ms(void (*fn)(void *), void *ctx)
{
	fn(ctx);
	int64_t batch = 1;
	for (;;) {
		double t0 = now_s();
		for (int64_t i = 0; i < batch; i++)
			fn(ctx);
		if (now_s() - t0 >= 1e-3)
			return batch;
		batch *= 2;
	}
}

/* One sample: seconds per call of fn(ctx), over batches for >= seconds. */
static double sample(void (*fn)(void *), void *ctx, int64_t batch, double seconds)
{
	int64_t calls = 0;
	double t0 = now_s(), t;
	do {
		for (int64_t i = 0; i < batch; i++)
			fn(ctx);
		calls += batch;
		t = now_s();
	} while (t - t0 < seconds);
	return (t - t0) / (double)calls;
}

/* Best seconds per call of fn(ctx) over N_SAMPLES samples of >= seconds / N_SAMPLES.
 * Calls run in batches of >= 1 ms between clock reads (reading the thread
 * CPU clock is a system call, as long as a batch-1 GEMM). */
static double time_best(void (*fn)(void *), void *ctx, double seconds)
{
	int64_t batch = batch_of_1ms(fn, ctx);
	double best = 1e30;
	for (int s = 0; s < N_SAMPLES; s++) {
		double per = sample(fn, ctx, batch, seconds / N_SAMPLES);
		best = per < best ? per : best;
	}
	return best;
}

#ifdef HAVE_DNNL
/* Best seconds per call of each of n fns, sampled in turn (sample s of fn 0,
 * of fn 1, ..., then sample s + 1): every fn sees the same stretch of the
 * machine's state, so their ratios hold where the machine's speed drifts
 * between runs. */
static void time_best_interleaved(int n, void (*const *fn)(void *), void *const *ctx,
				  double seconds, double *best)
{
	int64_t batch[8];
	for (int f = 0; f < n; f++) {
		batch[f] = batch_of_1ms(fn[f], ctx[f]);
		best[f] = 1e30;
	}
	for (int s = 0; s < 2 * N_SAMPLES; s++)
		for (int f = 0; f < n; f++) {
			double per = sample(fn[f], ctx[f], batch[f], seconds / (2 * N_SAMPLES));
			best[f] = per < best[f] ? per : best[f];
		}
}
#endif

/* --- presso paths --------------------------------------------------------------- */

/* --float-rq: presso requantizes with rq_scale (float) instead of mult/shift. */
static bool float_rq;

struct presso_run {
	const struct qgemm_ukernel *uk;
	const struct problem *pb;
	struct qgemm_params p;
	void *packed;
	uint8_t *c;
};

static void presso_call(void *ctx)
{
	struct presso_run *r = ctx;
	r->uk->run(&r->p, r->pb->a, r->pb->k, r->packed, r->c, r->pb->n);
}

static void presso_setup_form(struct presso_run *r, const struct qgemm_ukernel *uk,
			      const struct problem *pb, bool f32)
{
	*r = (struct presso_run){.uk = uk, .pb = pb};
	r->p = (struct qgemm_params){
		.m = pb->m, .n = pb->n, .k = pb->k, .bias = pb->bias, .mult = pb->mult,
		.shift = pb->shift, .rq_scale = f32 ? pb->scale : NULL,
		.c_zero = pb->c_zero, .c_min = 0, .c_max = 255,
	};
	r->packed = xmalloc(uk->packed_bytes(pb->n, pb->k));
	uk->pack(pb->n, pb->k, pb->w, r->packed);
	r->c = xmalloc((size_t)pb->m * pb->n);
}

static void presso_setup(struct presso_run *r, const struct qgemm_ukernel *uk,
			 const struct problem *pb)
{
	presso_setup_form(r, uk, pb, float_rq);
}

static void presso_teardown(struct presso_run *r)
{
	free(r->packed);
	free(r->c);
}

/* --- oneDNN ------------------------------------------------------------------- */

#ifdef HAVE_DNNL
#define DNNL_CHECK(call)                                                                    \
	do {                                                                                \
		dnnl_status_t st_ = (call);                                                 \
		if (st_ != dnnl_success) {                                                  \
			fprintf(stderr, "bench_qgemm: %s failed: %d\n", #call, (int)st_);   \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

struct dnnl_run {
	dnnl_engine_t eng;
	dnnl_stream_t stream;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t prim;
	dnnl_memory_t src, wei, bias, dst;
	const char *impl;
};

static void dnnl_call(void *ctx)
{
	struct dnnl_run *r = ctx;
	dnnl_exec_arg_t args[] = {
		{DNNL_ARG_SRC, r->src}, {DNNL_ARG_WEIGHTS, r->wei},
		{DNNL_ARG_BIAS, r->bias}, {DNNL_ARG_DST, r->dst},
	};
	DNNL_CHECK(dnnl_primitive_execute(r->prim, r->stream, 4, args));
	DNNL_CHECK(dnnl_stream_wait(r->stream));
}

static void dnnl_setup(struct dnnl_run *r, const struct problem *pb, uint8_t *dst)
{
	DNNL_CHECK(dnnl_engine_create(&r->eng, dnnl_cpu, 0));
	DNNL_CHECK(dnnl_stream_create(&r->stream, r->eng, dnnl_stream_default_flags));
	dnnl_memory_desc_t src_md, wany_md, wuser_md, bias_md, dst_md;
	dnnl_dims_t sd = {pb->m, pb->k}, wd = {pb->k, pb->n}, bd = {1, pb->n}, dd = {pb->m, pb->n};
	DNNL_CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_u8, dnnl_ab));
	DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wany_md, 2, wd, dnnl_s8, dnnl_format_tag_any));
	/* dims {K, N} stored N-major ("ba") is presso's w [n][k] as it is */
	DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wuser_md, 2, wd, dnnl_s8, dnnl_ba));
	DNNL_CHECK(dnnl_memory_desc_init_by_tag(&bias_md, 2, bd, dnnl_s32, dnnl_ab));
	DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_u8, dnnl_ab));
	dnnl_matmul_desc_t md;
	DNNL_CHECK(dnnl_matmul_desc_init(&md, &src_md, &wany_md, &bias_md, &dst_md));
	dnnl_primitive_attr_t attr;
	DNNL_CHECK(dnnl_primitive_attr_create(&attr));
	DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, pb->n, 1 << 1, pb->scale));
	DNNL_CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &pb->c_zero));
	DNNL_CHECK(dnnl_primitive_desc_create(&r->pd, &md, attr, r->eng, NULL));
	dnnl_primitive_desc_t pd = r->pd;
	DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &r->impl));
	const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	DNNL_CHECK(dnnl_memory_create(&r->src, &src_md, r->eng, pb->a));
	DNNL_CHECK(dnnl_memory_create(&r->bias, &bias_md, r->eng, pb->bias));
	DNNL_CHECK(dnnl_memory_create(&r->dst, &dst_md, r->eng, dst));
	DNNL_CHECK(dnnl_memory_create(&r->wei, wmd, r->eng, DNNL_MEMORY_ALLOCATE));
	dnnl_memory_t wuser;
	DNNL_CHECK(dnnl_memory_create(&wuser, &wuser_md, r->eng, pb->w));
	dnnl_primitive_desc_t rpd;
	dnnl_primitive_t reorder;
	DNNL_CHECK(dnnl_reorder_primitive_desc_create(&rpd, &wuser_md, r->eng, wmd, r->eng, NULL));
	DNNL_CHECK(dnnl_primitive_create(&reorder, rpd));
	dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, r->wei}};
	DNNL_CHECK(dnnl_primitive_execute(reorder, r->stream, 2, rargs));
	DNNL_CHECK(dnnl_stream_wait(r->stream));
	DNNL_CHECK(dnnl_primitive_create(&r->prim, pd));
	dnnl_primitive_destroy(reorder);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(wuser);
	dnnl_primitive_attr_destroy(attr);
}

static void dnnl_teardown(struct dnnl_run *r)
{
	dnnl_primitive_destroy(r->prim);
	dnnl_primitive_desc_destroy(r->pd); /* owns the impl string */
	dnnl_memory_destroy(r->src);
	dnnl_memory_destroy(r->wei);
	dnnl_memory_destroy(r->bias);
	dnnl_memory_destroy(r->dst);
	dnnl_stream_destroy(r->stream);
	dnnl_engine_destroy(r->eng);
}
#endif

/* Core GHz where it can be measured, else 1 (the MACs/cycle column is GMAC/s). */
static double clock_ghz(void)
{
	double ghz = bench_core_ghz();
	return ghz > 0 ? ghz : 1.0;
}

static void print_row(const char *shape, const char *who, double macs, double sec,
		      double ghz, const char *note);

#ifdef HAVE_DNNL
/* The vpdpbusd peak loop, *(int64_t *)ctx x 1200 instructions. */
static void peak_call(void *ctx)
{
	bench_vpdpbusd_run(*(const int64_t *)ctx);
}

/* --versus for one shape: the fastest presso path (Q31 and float forms, each
 * checked against the reference in its form) and oneDNN, sampled in turn
 * with the vpdpbusd peak loop at about the shape's MACs, so that each is a
 * fraction of the peak measured beside it (no clock estimate involved). */
static void versus_shape(const char *shape, const struct problem *pb, double macs,
			 double seconds, const char *dnnl_label)
{
	enum q8_isa top = Q8_ISA_REF;
	for (int isa = 0; isa < Q8_ISA_COUNT; isa++)
		if (q8_isa_supported((enum q8_isa)isa))
			top = (enum q8_isa)isa;
	size_t bytes = (size_t)pb->m * pb->n;
	struct presso_run ref, run[2];
	const char *form[2] = {"Q31", "float"};
	bool same[2];
	for (int f = 0; f < 2; f++) {
		presso_setup_form(&ref, q8_gemm_for(Q8_ISA_REF), pb, f == 1);
		presso_call(&ref);
		presso_setup_form(&run[f], q8_gemm_for(top), pb, f == 1);
		presso_call(&run[f]);
		same[f] = memcmp(run[f].c, ref.c, bytes) == 0;
		presso_teardown(&ref);
	}
	struct dnnl_run d;
	uint8_t *dst = xmalloc(bytes);
	dnnl_setup(&d, pb, dst);
	int64_t reps = (int64_t)(macs / (64.0 * 1200.0) + 0.5);
	reps = reps < 1 ? 1 : reps;
	bool peak = q8_isa_supported(Q8_ISA_AVX512VNNI);
	void (*const fns[4])(void *) = {presso_call, presso_call, dnnl_call, peak_call};
	void *const ctx[4] = {&run[0], &run[1], &d, &reps};
	double best[4];
	double ghz = clock_ghz();
	time_best_interleaved(peak ? 4 : 3, fns, ctx, (peak ? 4 : 3) * seconds, best);
	ghz = (ghz + clock_ghz()) / 2;
	for (int f = 0; f < 2; f++) {
		char who[64];
		snprintf(who, sizeof who, "%s %s", run[f].uk->name, form[f]);
		print_row(shape, who, macs, best[f], ghz, same[f] ? "= ref" : "DIFFERS FROM REF");
	}
	print_row(shape, dnnl_label, macs, best[2], ghz, d.impl);
	printf("%-16s presso / oneDNN: Q31 %.3fx, float %.3fx (samples side by side)\n", shape,
	       best[2] / best[0], best[2] / best[1]);
	if (peak) {
		double t_mac = best[3] / (64.0 * 1200.0 * (double)reps); /* s per MAC at the peak */
		printf("%-16s of the vpdpbusd peak timed beside them: presso Q31 %.1f%%, float "
		       "%.1f%%, oneDNN %.1f%%\n",
		       shape, 100 * macs * t_mac / best[0], 100 * macs * t_mac / best[1],
		       100 * macs * t_mac / best[2]);
	}
	fflush(stdout);
	dnnl_teardown(&d);
	free(dst);
	presso_teardown(&run[0]);
	presso_teardown(&run[1]);
}
#endif

/* --- main ------------------------------------------------------------------------ */

/* This core's measured vpdpbusd peak in MACs/cycle (0: not measured). */
static double vnni_peak;

static void print_row(const char *shape, const char *who, double macs, double sec,
		      double ghz, const char *note)
{
	double mpc = macs / sec / (ghz * 1e9);
	printf("%-16s %-34s %8.1f %8.1f %6.1f%% %6.1f%% %5.2f  %s\n", shape, who, mpc,
	       macs / sec / 1e9, 100.0 * mpc / VNNI_NOMINAL_MACS_PER_CYCLE,
	       vnni_peak > 0 ? 100.0 * mpc / vnni_peak : 0.0, ghz, note);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const int defaults[][3] = {
		{1, 128, 512}, {64, 128, 1152}, {64, 64, 576}, {256, 256, 256}, {1024, 1024, 1024},
	};
	int shapes[32][3], n_shapes = 0;
	double seconds = 1.0;
	bool onednn_only = false, versus = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (strcmp(argv[i], "--onednn-only") == 0) {
			onednn_only = true;
		} else if (strcmp(argv[i], "--versus") == 0) {
			versus = true;
		} else if (strcmp(argv[i], "--float-rq") == 0) {
			float_rq = true;
		} else if (n_shapes < 32 && sscanf(argv[i], "%dx%dx%d", &shapes[n_shapes][0],
						   &shapes[n_shapes][1], &shapes[n_shapes][2]) == 3) {
			n_shapes++;
		} else {
			fprintf(stderr, "usage: bench_qgemm [--seconds S] [--onednn-only] [--float-rq]"
				" [--versus] [MxNxK ...]\n");
			return 2;
		}
	}
	if (!n_shapes) {
		n_shapes = (int)(sizeof defaults / sizeof defaults[0]);
		memcpy(shapes, defaults, sizeof defaults);
	}
#if defined(__x86_64__)
	char cpu[192];
	printf("# %s\n", bench_cpu_model(cpu, sizeof cpu));
	double ghz0 = bench_core_ghz();
	printf("# core clock: %.3f GHz from a dependent-add chain (1 add/cycle); TSC %.3f GHz;"
	       " perf counters not used\n", ghz0, bench_tsc_ghz());
	if (q8_isa_supported(Q8_ISA_AVX512VNNI)) {
		double r = bench_vpdpbusd_per_s(), ghz = (ghz0 + bench_core_ghz()) / 2;
		vnni_peak = 64 * r / (ghz * 1e9);
		printf("# measured peak: vpdpbusd zmm %.2f/cycle = %.1f MACs/cycle"
		       " (nominal %.0f = 2 ports x 64)\n", r / (ghz * 1e9), 64 * r / (ghz * 1e9),
		       VNNI_NOMINAL_MACS_PER_CYCLE);
	}
	if (q8_isa_supported(Q8_ISA_AVX2)) {
		double g = bench_core_ghz(), r = bench_vpmaddwd_per_s(),
		       ghz = (g + bench_core_ghz()) / 2;
		printf("# measured peak: vpmaddwd ymm %.2f/cycle = %.1f MACs/cycle\n",
		       r / (ghz * 1e9), 16 * r / (ghz * 1e9));
	}
#else
	printf("# no cycle measurement on this architecture: MACs/cycle column is GMAC/s\n");
#endif
#ifdef HAVE_DNNL
	const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
	const dnnl_version_t *v = dnnl_version();
	char dnnl_label[64];
	snprintf(dnnl_label, sizeof dnnl_label, "onednn-%d.%d.%d %s", v->major, v->minor,
		 v->patch, cap && *cap ? cap : "uncapped");
#else
	if (onednn_only || versus) {
		printf("# built without oneDNN (libdnnl-dev not found): nothing to run\n");
		return 0;
	}
#endif
	printf("# one thread; best of %d samples; %%nom = of the nominal %.0f MACs/cycle,"
	       " %%meas = of the measured vpdpbusd peak\n", N_SAMPLES, VNNI_NOMINAL_MACS_PER_CYCLE);
	if (versus)
		printf("# presso and oneDNN sampled in turn; presso in both requantization forms:"
		       " Q31 (mult, shift) and float (rq_scale, the engine's default; oneDNN's"
		       " output scales are float too)\n");
	else if (!onednn_only)
		printf("# presso requantization: %s\n",
		       float_rq ? "float (rq_scale)" : "Q31 (mult, shift)");
	printf("%-16s %-34s %8s %8s %7s %7s %5s  %s\n", "MxNxK", "path", "MAC/cyc", "GMAC/s",
	       "%nom", "%meas", "GHz", "note");
	for (int s = 0; s < n_shapes; s++) {
		struct problem pb;
		problem_make(&pb, shapes[s][0], shapes[s][1], shapes[s][2]);
		double macs = (double)pb.m * pb.n * pb.k;
		char shape[48];
		snprintf(shape, sizeof shape, "%dx%dx%d", pb.m, pb.n, pb.k);
#ifdef HAVE_DNNL
		if (versus) {
			versus_shape(shape, &pb, macs, seconds, dnnl_label);
			problem_free(&pb);
			continue;
		}
#endif
		uint8_t *c_ref = xmalloc((size_t)pb.m * pb.n);
		{
			struct presso_run r;
			presso_setup(&r, q8_gemm_for(Q8_ISA_REF), &pb);
			presso_call(&r);
			memcpy(c_ref, r.c, (size_t)pb.m * pb.n);
			presso_teardown(&r);
		}
		for (int isa = onednn_only ? Q8_ISA_COUNT : 0; isa < Q8_ISA_COUNT; isa++) {
			if (!q8_isa_supported((enum q8_isa)isa))
				continue;
			struct presso_run r;
			presso_setup(&r, q8_gemm_for((enum q8_isa)isa), &pb);
			double ghz = clock_ghz();
			double sec = time_best(presso_call, &r, seconds);
			ghz = (ghz + clock_ghz()) / 2;
			bool same = memcmp(r.c, c_ref, (size_t)pb.m * pb.n) == 0;
			print_row(shape, r.uk->name, macs, sec, ghz,
				  same ? "= ref" : "DIFFERS FROM REF");
			presso_teardown(&r);
		}
#ifdef HAVE_DNNL
		{
			struct dnnl_run r;
			uint8_t *dst = xmalloc((size_t)pb.m * pb.n);
			dnnl_setup(&r, &pb, dst);
			double ghz = clock_ghz();
			double sec = time_best(dnnl_call, &r, seconds);
			ghz = (ghz + clock_ghz()) / 2;
			print_row(shape, dnnl_label, macs, sec, ghz, r.impl);
			dnnl_teardown(&r);
			free(dst);
		}
#endif
		free(c_ref);
		problem_free(&pb);
	}
#if defined(__x86_64__)
	printf("# core clock after the runs: %.3f GHz\n", clock_ghz());
#endif
	return 0;
}
