/* bench_w4.c - can 4-bit weights stay packed two to a byte in memory and be
 * expanded inside the GEMM's inner loop at no cost in speed? (The engine keeps
 * every weight as int8 today, whatever its bit width.)
 *
 * usage: bench_w4 [--seconds S] [MxNxK ...]
 * Default shapes: those of bench_qgemm (1x128x512 64x128x1152 64x64x576
 * 256x256x256 1024x1024x1024) and the MLP's first layer at batch 64
 * (64x512x784).
 *
 * Two kernels that differ only in how a k-step's weights reach the registers,
 * both the shape of the engine's AVX-512 VNNI GEMM tile (src/kernels/
 * q8_avx512vnni.c, gemm_tile: up to 8 rows x 32 columns, 16 accumulators,
 * the 32 columns' 4-byte k-groups in a panel, one broadcast of 4 activation
 * bytes per row and k-group):
 *   w8: two 64-byte loads, the 32 columns' int8 weights;
 *   w4: one 64-byte load, byte i holding column i's weight in its low nibble
 *       and column 16 + i's in its high nibble, both two's complement. A
 *       nibble moved to the top of its byte is 16 times the weight as an
 *       int8, so the expansion is v & 0xF0 for the high columns and
 *       (v << 4) & 0xF0 for the low ones (3 instructions, no sign extension),
 *       the sums come out 16 times too large, and one arithmetic shift right
 *       by 4 after the k loop makes them exact (every term is a multiple of
 *       16; |sum| <= 255 * 128 * K < 2^31 for K < 65536).
 * Both produce the int32 sums C[m][n] = sum_k A[m][k] W[n][k] (no
 * requantization: the same for both), checked equal to each other and to a
 * scalar loop before timing. Weights are drawn in [-8, 7].
 * Times are this thread's CPU time, the best of 5 samples of >= S/5 seconds;
 * MACs/cycle against the measured clock and peak of bench/common/bench_cpu.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bench_cpu.h"

#define NR 32 /* columns per panel: two 16-lane blocks */
#define MR 8  /* rows per tile */
#define N_SAMPLES 5

struct shape {
	int m, n, k;
};

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define INLINE_VNNI static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vnni")))

/* Panel layout, both kernels: panel p (columns 32p..32p+31), k-group g: w8 at
 * ((p * k4 + g) * 32 + col) * 4 + kk; w4 at ((p * k4 + g) * 16 + col % 16) * 4
 * + kk, the low nibble for col < 16, the high one for col >= 16. */
static void pack_w8(int n, int k, const int8_t *w, int8_t *out)
{
	int k4 = (k + 3) / 4, panels = (n + NR - 1) / NR;
	memset(out, 0, (size_t)panels * k4 * NR * 4);
	for (int j = 0; j < n; j++)
		for (int kk = 0; kk < k; kk++)
			out[(((size_t)(j / NR) * k4 + kk / 4) * NR + j % NR) * 4 + kk % 4] =
				w[(size_t)j * k + kk];
}

static void pack_w4(int n, int k, const int8_t *w, uint8_t *out)
{
	int k4 = (k + 3) / 4, panels = (n + NR - 1) / NR;
	memset(out, 0, (size_t)panels * k4 * NR * 2);
	for (int j = 0; j < n; j++)
		for (int kk = 0; kk < k; kk++) {
			size_t at = (((size_t)(j / NR) * k4 + kk / 4) * 16 + j % 16) * 4 + kk % 4;
			uint8_t nib = (uint8_t)w[(size_t)j * k + kk] & 0x0F;
			out[at] |= (j % NR) < 16 ? nib : (uint8_t)(nib << 4);
		}
}

static inline int32_t load4(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* One tile: rows a[0..mr) (K a multiple of 4 here: the shapes are), one panel. */
INLINE_VNNI void tile(bool w4, int mr, int k, const uint8_t *a, int lda, const void *panel,
		      int32_t *c, int ldc, int nc)
{
	__m512i acc[MR][2];
	for (int r = 0; r < mr; r++)
		acc[r][0] = acc[r][1] = _mm512_setzero_si512();
	const __m512i hi_mask = _mm512_set1_epi8((char)0xF0);
	for (int g = 0; g < k / 4; g++) {
		__m512i b0, b1;
		if (w4) {
			__m512i v = _mm512_loadu_si512((const uint8_t *)panel + (size_t)g * 64);
			b1 = _mm512_and_si512(v, hi_mask);
			b0 = _mm512_and_si512(_mm512_slli_epi16(v, 4), hi_mask);
		} else {
			b0 = _mm512_loadu_si512((const int8_t *)panel + (size_t)g * 128);
			b1 = _mm512_loadu_si512((const int8_t *)panel + (size_t)g * 128 + 64);
		}
		for (int r = 0; r < mr; r++) {
			__m512i av = _mm512_set1_epi32(load4(a + (size_t)r * lda + 4 * g));
			acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
			acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
		}
	}
	for (int r = 0; r < mr; r++)
		for (int b = 0; b < 2; b++) {
			__m512i s = w4 ? _mm512_srai_epi32(acc[r][b], 4) : acc[r][b];
			int n_here = nc - 16 * b;
			if (n_here <= 0)
				continue;
			__mmask16 m = n_here >= 16 ? 0xFFFF : (__mmask16)((1u << n_here) - 1);
			_mm512_mask_storeu_epi32(c + (size_t)r * ldc + 16 * b, m, s);
		}
}

#define TILE_MR(W4, MR_)                                                                 \
	case MR_:                                                                        \
		tile(W4, MR_, k, a + (size_t)i * k, k, panel, c + (size_t)i * n + 32 * p, n, \
		     nc);                                                                \
		break

INLINE_VNNI void gemm_mode(bool w4, int m, int n, int k, const uint8_t *a, const void *packed,
			   int32_t *c)
{
	int k4 = k / 4, panels = (n + NR - 1) / NR;
	size_t panel_bytes = (size_t)k4 * NR * 4 / (w4 ? 2 : 1);
	for (int p = 0; p < panels; p++) {
		const void *panel = (const uint8_t *)packed + (size_t)p * panel_bytes;
		int nc = n - 32 * p < 32 ? n - 32 * p : 32;
		for (int i = 0; i < m; i += MR) {
			switch (m - i < MR ? m - i : MR) {
			TILE_MR(w4, 8); TILE_MR(w4, 7); TILE_MR(w4, 6); TILE_MR(w4, 5);
			TILE_MR(w4, 4); TILE_MR(w4, 3); TILE_MR(w4, 2); TILE_MR(w4, 1);
			}
		}
	}
}

static AVX512_VNNI void gemm_w8(int m, int n, int k, const uint8_t *a, const void *p, int32_t *c)
{
	gemm_mode(false, m, n, k, a, p, c);
}

static AVX512_VNNI void gemm_w4(int m, int n, int k, const uint8_t *a, const void *p, int32_t *c)
{
	gemm_mode(true, m, n, k, a, p, c);
}

typedef void (*gemm_fn)(int, int, int, const uint8_t *, const void *, int32_t *);

/* Best of N_SAMPLES samples of >= seconds / N_SAMPLES each: seconds per call. */
static double time_gemm(gemm_fn f, struct shape s, const uint8_t *a, const void *p, int32_t *c,
			double seconds)
{
	double best = 1e30;
	for (int smp = 0; smp < N_SAMPLES; smp++) {
		long calls = 0;
		double t0 = bench_thread_s(), t;
		do {
			f(s.m, s.n, s.k, a, p, c);
			calls++;
		} while ((t = bench_thread_s() - t0) < seconds / N_SAMPLES);
		if (t / (double)calls < best)
			best = t / (double)calls;
	}
	return best;
}

static int run(struct shape s, double seconds, double ghz, double peak)
{
	uint8_t *a = malloc((size_t)s.m * s.k);
	int8_t *w = malloc((size_t)s.n * s.k);
	int k4 = (s.k + 3) / 4, panels = (s.n + NR - 1) / NR;
	int8_t *p8 = malloc((size_t)panels * k4 * NR * 4);
	uint8_t *p4 = malloc((size_t)panels * k4 * NR * 2);
	int32_t *c8 = malloc(sizeof(int32_t) * (size_t)s.m * s.n);
	int32_t *c4 = malloc(sizeof(int32_t) * (size_t)s.m * s.n);
	if (!a || !w || !p8 || !p4 || !c8 || !c4) {
		fprintf(stderr, "bench_w4: out of memory\n");
		return 1;
	}
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < (size_t)s.m * s.k; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		a[i] = (uint8_t)x;
	}
	for (size_t i = 0; i < (size_t)s.n * s.k; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[i] = (int8_t)((int)(x % 16) - 8);
	}
	pack_w8(s.n, s.k, w, p8);
	pack_w4(s.n, s.k, w, p4);
	gemm_w8(s.m, s.n, s.k, a, p8, c8);
	gemm_w4(s.m, s.n, s.k, a, p4, c4);
	for (int i = 0; i < s.m; i++)
		for (int j = 0; j < s.n; j++) {
			int32_t ref = 0;
			for (int kk = 0; kk < s.k; kk++)
				ref += (int32_t)a[(size_t)i * s.k + kk] * w[(size_t)j * s.k + kk];
			if (c8[(size_t)i * s.n + j] != ref || c4[(size_t)i * s.n + j] != ref) {
				fprintf(stderr, "bench_w4: %dx%dx%d: C[%d][%d] = %d (w8) %d (w4), "
						"expected %d\n",
					s.m, s.n, s.k, i, j, c8[(size_t)i * s.n + j],
					c4[(size_t)i * s.n + j], ref);
				return 1;
			}
		}
	double t8 = time_gemm(gemm_w8, s, a, p8, c8, seconds);
	double t4 = time_gemm(gemm_w4, s, a, p4, c4, seconds);
	double macs = (double)s.m * s.n * s.k;
	printf("%5dx%dx%d  %9zu %9zu  %7.1f %7.1f  %6.1f%% %6.1f%%  %6.3f\n", s.m, s.n, s.k,
	       (size_t)panels * k4 * NR * 4, (size_t)panels * k4 * NR * 2,
	       macs / t8 / (ghz * 1e9), macs / t4 / (ghz * 1e9),
	       100 * macs / t8 / (ghz * 1e9) / peak, 100 * macs / t4 / (ghz * 1e9) / peak, t8 / t4);
	free(a), free(w), free(p8), free(p4), free(c8), free(c4);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = 1;
	struct shape shapes[32];
	int n_shapes = 0;
	for (int i = 1; i < argc; i++) {
		struct shape s;
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (sscanf(argv[i], "%dx%dx%d", &s.m, &s.n, &s.k) == 3 && s.m > 0 &&
			   s.n > 0 && s.k > 0 && s.k % 4 == 0 && s.k < 65536 && n_shapes < 32) {
			shapes[n_shapes++] = s;
		} else {
			fprintf(stderr, "usage: bench_w4 [--seconds S] [MxNxK ...] (K a multiple "
					"of 4, below 65536)\n");
			return 2;
		}
	}
	if (!n_shapes) {
		const struct shape def[] = {{1, 128, 512},    {64, 128, 1152}, {64, 64, 576},
					    {256, 256, 256},  {1024, 1024, 1024},
					    {64, 512, 784}};
		n_shapes = (int)(sizeof def / sizeof def[0]);
		memcpy(shapes, def, sizeof def);
	}
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) {
		fprintf(stderr, "bench_w4: this CPU has no AVX-512 VNNI\n");
		return 1;
	}
	char cpu[128];
	double ghz = 0, peak = bench_int8_peak(&ghz);
	printf("CPU: %s; clock %.2f GHz; measured peak %.1f MACs/cycle; one thread\n",
	       bench_cpu_model(cpu, sizeof cpu), ghz, peak);
	printf("%16s  %9s %9s  %7s %7s  %7s %7s  %6s\n", "MxNxK", "w8 bytes", "w4 bytes",
	       "w8 MAC/c", "w4 MAC/c", "w8 peak", "w4 peak", "w4/w8");
	for (int i = 0; i < n_shapes; i++)
		if (run(shapes[i], seconds, ghz, peak))
			return 1;
	return 0;
}

#else
int main(void)
{
	fprintf(stderr, "bench_w4: x86-64 with AVX-512 VNNI only\n");
	return 1;
}
#endif
