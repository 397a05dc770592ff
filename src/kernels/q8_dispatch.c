/* q8_dispatch.c - which INT8 kernels this build and this CPU can run.
 *
 * One table, paths[], names every path with its kernels; the x86 entries exist
 * only in x86-64 builds. The first call of any q8_* function fills, once for the
 * process (call_once), whether the CPU supports each path:
 *   avx2:        CPUID.1:ECX.{AVX, FMA, OSXSAVE}, CPUID.7.0:EBX.AVX2, and XCR0
 *                (XGETBV) enabling the SSE and AVX register state;
 *   avx512vnni:  additionally CPUID.7.0:EBX.{AVX512F, AVX512BW, AVX512VL},
 *                CPUID.7.0:ECX.AVX512_VNNI, and XCR0 enabling the opmask and
 *                both halves of the ZMM state; its table lookup and its
 *                conv are VBMI's where CPUID.7.0:ECX.AVX512_VBMI is set too
 *                (else AVX2's lookup and qconv_u8s8_8x32__avx512vnni);
 * then the best path, or the one named by PRESSO_ISA=ref|avx2|avx512vnni (an
 * unknown or unsupported value: a warning on stderr, once, and the best path).
 */
#include "kernels/kernels_q8.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static const struct q8_path {
	const char *name;
	const struct qgemm_ukernel *gemm;
	const struct qdwconv_ukernel *dwconv;
	const struct qconv_ukernel *conv;   /* NULL: im2col + gemm */
	qadd_fn add;
	qmul_fn mul;
	qlut_fn lut;
} paths[] = {
	[Q8_ISA_REF] = {"ref", &qgemm_u8s8__ref, &qdwconv_u8s8__ref, &qconv_u8s8__ref,
			qadd_u8__ref, qmul_u8__ref, qlut_u8__ref},
#if defined(__x86_64__)
	[Q8_ISA_AVX2] = {"avx2", &qgemm_u8s8_3x8c8__avx2, &qdwconv_u8s8_32c__avx2, NULL,
			 qadd_u8__avx2, qmul_u8__avx2, qlut_u8__avx2},
	[Q8_ISA_AVX512VNNI] = {"avx512vnni", &qgemm_u8s8_8x32__avx512vnni,
			       &qdwconv_u8s8_64c__avx512vnni, &qconv_u8s8_8x32__avx512vnni,
			       qadd_u8__avx512, qmul_u8__avx512, qlut_u8__avx2},
#else
	[Q8_ISA_AVX2] = {"avx2", NULL, NULL, NULL, NULL, NULL, NULL},
	[Q8_ISA_AVX512VNNI] = {"avx512vnni", NULL, NULL, NULL, NULL, NULL, NULL},
#endif
};
static_assert(sizeof paths / sizeof paths[0] == Q8_ISA_COUNT, "one paths[] entry per q8_isa");

/* Float-to-uint8 quantizers, apart from paths[] (AVX2 uses the reference's). */
static const qquant_fn quant_fns[] = {
	[Q8_ISA_REF] = qquant_f32_u8__ref,
#if defined(__x86_64__)
	[Q8_ISA_AVX2] = qquant_f32_u8__ref,
	[Q8_ISA_AVX512VNNI] = qquant_f32_u8__avx512,
#else
	[Q8_ISA_AVX2] = NULL,
	[Q8_ISA_AVX512VNNI] = NULL,
#endif
};
static_assert(sizeof quant_fns / sizeof quant_fns[0] == Q8_ISA_COUNT,
	      "one quant_fns[] entry per q8_isa");

static bool cpu_has[Q8_ISA_COUNT];
static bool cpu_has_vbmi; /* AVX-512 VBMI besides the avx512vnni path */
static enum q8_isa best;
static once_flag detect_once = ONCE_FLAG_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
	if (!osxsave || !avx || __get_cpuid_max(0, NULL) < 7)
		return;
	uint64_t xcr0 = xgetbv0();
	bool os_avx = (xcr0 & 0x6) == 0x6;          /* XMM | YMM state */
	bool os_avx512 = (xcr0 & 0xe6) == 0xe6;     /* + opmask | ZMM_Hi256 | Hi16_ZMM */
	__cpuid_count(7, 0, a, b, c, d);
	bool avx2 = b & (1u << 5);
	bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
	bool vnni = c & (1u << 11);
	cpu_has[Q8_ISA_AVX2] = os_avx && avx2 && fma;
	cpu_has[Q8_ISA_AVX512VNNI] = cpu_has[Q8_ISA_AVX2] && os_avx512 && avx512f && avx512bw &&
				     avx512vl && vnni;
	cpu_has_vbmi = cpu_has[Q8_ISA_AVX512VNNI] && (c & (1u << 1));
}
#endif

static void detect(void)
{
	cpu_has[Q8_ISA_REF] = true;
#if defined(__x86_64__)
	detect_x86();
#endif
	for (int i = 0; i < Q8_ISA_COUNT; i++)
		if (cpu_has[i] && paths[i].gemm)
			best = (enum q8_isa)i;
	const char *env = getenv("PRESSO_ISA");
	if (!env || !*env)
		return;
	for (int i = 0; i < Q8_ISA_COUNT; i++) {
		if (strcmp(env, paths[i].name) == 0) {
			if (cpu_has[i] && paths[i].gemm) {
				best = (enum q8_isa)i;
				return;
			}
			fprintf(stderr, "presso: warning: PRESSO_ISA=%s is not supported by this %s;"
				" using %s\n", env, paths[i].gemm ? "CPU" : "build",
				paths[best].name);
			return;
		}
	}
	fprintf(stderr, "presso: warning: unknown PRESSO_ISA=%s (expected ref, avx2 or"
		" avx512vnni); using %s\n", env, paths[best].name);
}

bool q8_isa_supported(enum q8_isa isa)
{
	if ((unsigned)isa >= Q8_ISA_COUNT)
		return false;
	call_once(&detect_once, detect);
	return cpu_has[isa] && paths[isa].gemm;
}

enum q8_isa q8_isa_best(void)
{
	call_once(&detect_once, detect);
	return best;
}

const char *q8_isa_name(enum q8_isa isa)
{
	return (unsigned)isa < Q8_ISA_COUNT ? paths[isa].name : "unknown";
}

const struct qgemm_ukernel *q8_gemm_for(enum q8_isa isa)
{
	return q8_isa_supported(isa) ? paths[isa].gemm : NULL;
}

const struct qgemm_ukernel *q8_gemm_s4_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return &qgemm_u8s4_8x32__avx512vnni;
#endif
	return NULL;
}

const struct qdwconv_ukernel *q8_dwconv_for(enum q8_isa isa)
{
	return q8_isa_supported(isa) ? paths[isa].dwconv : NULL;
}

const struct qconv_ukernel *q8_conv_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI && cpu_has_vbmi)
		return &qconv_u8s8_c1x16__avx512vbmi;
#endif
	return paths[isa].conv;
}

const struct qconv_ukernel *q8_conv_s4_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return &qconv_u8s4_8x32__avx512vnni;
#endif
	return NULL;
}

qadd_fn q8_add_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI && cpu_has_vbmi)
		return qadd_u8__avx512vbmi;
#endif
	return paths[isa].add;
}

qmul_fn q8_mul_for(enum q8_isa isa)
{
	return q8_isa_supported(isa) ? paths[isa].mul : NULL;
}

qmul_rows_fn q8_mul_rows_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return qmul_rows_u8__avx512;
#endif
	return qmul_rows_u8__ref;
}

qsum_pixels_fn q8_sum_pixels_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return qsum_pixels_u8__avx512;
#endif
	return qsum_pixels_u8__ref;
}

qlut_fn q8_lut_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI && cpu_has_vbmi)
		return qlut_u8__avx512vbmi;
#endif
	return paths[isa].lut;
}

qmaxpool2_fn q8_maxpool2_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
	if (isa == Q8_ISA_REF)
		return qmaxpool2_u8__ref;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI && cpu_has_vbmi)
		return qmaxpool2_u8__avx512vbmi;
#endif
	return NULL;
}

/* The MatMul of two uint8 activations, per path (a table of its own beside
 * paths[], filled like it). */
static const struct qmatmul_ukernel *const matmul_paths[] = {
	[Q8_ISA_REF] = &qmatmul_u8u8__ref,
#if defined(__x86_64__)
	[Q8_ISA_AVX2] = &qmatmul_u8u8_4x8__avx2,
	[Q8_ISA_AVX512VNNI] = &qmatmul_u8u8_4x16__avx512vnni,
#else
	[Q8_ISA_AVX2] = NULL,
	[Q8_ISA_AVX512VNNI] = NULL,
#endif
};
static_assert(sizeof matmul_paths / sizeof matmul_paths[0] == Q8_ISA_COUNT,
	      "one matmul_paths[] entry per q8_isa");

const struct qmatmul_ukernel *q8_matmul_for(enum q8_isa isa)
{
	return q8_isa_supported(isa) ? matmul_paths[isa] : NULL;
}

qsoftmax_fn q8_softmax_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return qsoftmax_u8__avx512;
	if (isa != Q8_ISA_REF)
		return qsoftmax_u8__avx2;
#endif
	return qsoftmax_u8__ref;
}

qlayernorm_fn q8_layernorm_for(enum q8_isa isa)
{
	if (!q8_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	if (isa == Q8_ISA_AVX512VNNI)
		return qlayernorm_u8__avx512;
	if (isa != Q8_ISA_REF)
		return qlayernorm_u8__avx2;
#endif
	return qlayernorm_u8__ref;
}

qquant_fn q8_quant_for(enum q8_isa isa)
{
	return q8_isa_supported(isa) ? quant_fns[isa] : NULL;
}
