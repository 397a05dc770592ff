/* bench_cpu.c - clock, CPU name and INT8 peak of this core (bench_cpu.h). */
#define _POSIX_C_SOURCE 200809L
#include "bench_cpu.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels_q8.h"

double bench_thread_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *bench_cpu_model(char *buf, size_t n)
{
	snprintf(buf, n, "unknown CPU");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return buf;
	char line[512], name[256] = "", family[32] = "", model[32] = "";
	while (fgets(line, sizeof line, f) && !(*name && *family && *model)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		if (strncmp(line, "model name", 10) == 0)
			snprintf(name, sizeof name, "%s", v);
		else if (strncmp(line, "cpu family", 10) == 0)
			snprintf(family, sizeof family, "%s", v);
		else if (strncmp(line, "model\t", 6) == 0 || strncmp(line, "model :", 7) == 0)
			snprintf(model, sizeof model, "%s", v);
	}
	fclose(f);
	if (*name && *family && *model)
		snprintf(buf, n, "%s (family %s, model %s)", name, family, model);
	else if (*name)
		snprintf(buf, n, "%s", name);
	return buf;
}

#if defined(__x86_64__)
/* 10^6 dependent adds (1 cycle latency each); the loop counter is an
 * independent chain that runs alongside. */
static void add_chain_1m(void)
{
	uint64_t x = 0, one = 1;
	for (int i = 0; i < 1000; i++)
		__asm__ volatile(".rept 1000\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(one));
}

double bench_core_ghz(void)
{
	double best = 0;
	for (int s = 0; s < 5; s++) {
		double t0 = bench_thread_s();
		for (int i = 0; i < 100; i++)
			add_chain_1m();
		double ghz = 0.1 / (bench_thread_s() - t0);
		best = ghz > best ? ghz : best;
	}
	return best;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* wall clock: the TSC ticks while descheduled too */
double bench_tsc_ghz(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	uint64_t c0 = rdtsc();
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec) < 0.2);
	uint64_t c1 = rdtsc();
	return (double)(c1 - c0) /
	       ((double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec)) / 1e9;
}

/* reps x 1200 vpdpbusd zmm in 12 independent chains */
__attribute__((target("avx512f,avx512vnni"))) static void vpdpbusd_run(int64_t reps)
{
	for (int64_t i = 0; i < reps; i++)
		__asm__ volatile(
			"vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
			".rept 100\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm0\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm1\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm2\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm3\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm4\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm5\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm6\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm7\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm8\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm9\n\t"
			"vpdpbusd %%zmm13, %%zmm12, %%zmm10\n\tvpdpbusd %%zmm13, %%zmm12, %%zmm11\n\t"
			".endr"
			:
			:
			: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
			  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
}

/* reps x 1200 vpmaddwd ymm in 12 independent chains */
__attribute__((target("avx2"))) static void vpmaddwd_run(int64_t reps)
{
	for (int64_t i = 0; i < reps; i++)
		__asm__ volatile(
			".rept 100\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm0\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm1\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm2\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm3\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm4\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm5\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm6\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm7\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm8\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm9\n\t"
			"vpmaddwd %%ymm13, %%ymm12, %%ymm10\n\tvpmaddwd %%ymm13, %%ymm12, %%ymm11\n\t"
			".endr"
			:
			:
			: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
			  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
}

/* Instructions per second of run (1200 per rep): the best of 5 samples of
 * 20000 reps. */
static double best_rate(void (*run)(int64_t reps))
{
	double best = 0;
	for (int s = 0; s < 5; s++) {
		double t0 = bench_thread_s();
		run(20000);
		double r = 20000.0 * 1200 / (bench_thread_s() - t0);
		best = r > best ? r : best;
	}
	return best;
}

double bench_vpdpbusd_per_s(void)
{
	return q8_isa_supported(Q8_ISA_AVX512VNNI) ? best_rate(vpdpbusd_run) : 0;
}

double bench_vpmaddwd_per_s(void)
{
	return q8_isa_supported(Q8_ISA_AVX2) ? best_rate(vpmaddwd_run) : 0;
}

bool bench_vpdpbusd_run(int64_t reps)
{
	if (!q8_isa_supported(Q8_ISA_AVX512VNNI))
		return false;
	vpdpbusd_run(reps);
	return true;
}
#else
double bench_core_ghz(void)
{
	return 0;
}

double bench_tsc_ghz(void)
{
	return 0;
}

double bench_vpdpbusd_per_s(void)
{
	return 0;
}

bool bench_vpdpbusd_run(int64_t reps)
{
	(void)reps;
	return false;
}

double bench_vpmaddwd_per_s(void)
{
	return 0;
}
#endif

double bench_int8_peak(double *ghz)
{
	double g0 = bench_core_ghz(), r = bench_vpdpbusd_per_s(), macs = 64;
	if (r <= 0) {
		r = bench_vpmaddwd_per_s();
		macs = 16;
	}
	double g = (g0 + bench_core_ghz()) / 2;
	if (ghz)
		*ghz = g;
	return g > 0 && r > 0 ? macs * r / (g * 1e9) : 0;
}
