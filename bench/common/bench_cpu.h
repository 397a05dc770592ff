/* bench_cpu.h - what a benchmark needs to know about the core it runs on:
 * the CPU's name, its clock and its measured INT8 peak, shared by bench_qgemm
 * (MACs per cycle of one GEMM) and bench_profile (MACs per cycle of every
 * step of a model), so that both state their figures against the same peak.
 *
 * Cycles: `perf stat -e cycles` is not available in every container, so the
 * core clock is measured: a chain of dependent register adds runs at one add
 * per cycle on every x86-64 core, so adds / second = cycles / second. The
 * peak is a loop of 12 independent vpdpbusd zmm (or vpmaddwd ymm) chains:
 * instructions / second / clock. All times are this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), so other processes on the machine bias neither.
 * Off x86-64 the clock is reported as 0 (unknown) and the peaks as 0. */
#ifndef PRESSO_BENCH_CPU_H
#define PRESSO_BENCH_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CPU time of this thread, seconds. */
double bench_thread_s(void);

/* The CPU's name and x86 family and model from /proc/cpuinfo ("AMD EPYC
 * (family 25, model 17)"), else "unknown CPU"; writes at most n bytes (NUL
 * included) into buf and returns it. */
char *bench_cpu_model(char *buf, size_t n);

/* Core clock in GHz: the best of 5 timings of 10^8 dependent adds (0 off x86-64). */
double bench_core_ghz(void);

/* Time-stamp counter rate in GHz over 0.2 s of wall clock (0 off x86-64). */
double bench_tsc_ghz(void);

/* vpdpbusd zmm instructions per second, the best of 5 samples (0 when the CPU
 * or the build lacks AVX-512 VNNI). 64 MACs each. */
double bench_vpdpbusd_per_s(void);

/* Runs reps x 1200 vpdpbusd zmm (the loop bench_vpdpbusd_per_s times), so that
 * a caller can time the peak beside its own kernels; false (nothing run)
 * without AVX-512 VNNI. */
bool bench_vpdpbusd_run(int64_t reps);

/* vpmaddwd ymm instructions per second (0 without AVX2). 16 MACs each. */
double bench_vpmaddwd_per_s(void);

/* This core's INT8 peak in MACs per cycle: the vpdpbusd rate (else the
 * vpmaddwd rate) over the mean of two clock measurements around it. Sets
 * *ghz to that clock when ghz is not NULL. 0 when it cannot be measured. */
double bench_int8_peak(double *ghz);

#endif
