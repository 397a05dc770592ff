/* q8_avx512vnni_w4conv.c - the AVX-512 VNNI convolution with weights in
 * [-8, 7] (a policy's weight bits <= 4) kept two to a byte while the model is
 * resident (qconv_u8s4_8x32__avx512vnni): half the packed bytes of the int8
 * convolution's GEMM panels.
 *
 * Packed buffer: a 64-byte header (int32 format, c_out, kh, kw, c), then
 *   CONV4_FMT_BASE:   the avx512vnni convolution's own packing (weights
 *                     outside [-8, 7], or a single input channel, whose
 *                     kernels have layouts of their own), run by it;
 *   CONV4_FMT_NIBBLE: the conv's GEMM panels (K = kh * (kw*c rounded up to
 *                     4), zero between kernel rows) in the 4-bit GEMM's
 *                     nibble layout (q8_avx512vnni_w4.c): per panel of 32
 *                     output channels [ceil(K/4)][16][4] bytes, lane i's
 *                     byte t of group g holding w[32p + i][4g + t] in its low
 *                     nibble and w[32p + 16 + i][4g + t] in its high nibble.
 * run() expands the nibbles once per call into int8 panels in the scratch,
 * behind what the int8 convolution needs there, followed by the per-channel
 * sum |w| that the int8 convolution's packing ends with (here its bound
 * 8 * kh*kw*c, which only decides whether the float requantization may skip
 * its overflow guard), and runs it on them: the
 * tiles, and so the results, are the int8 convolution's (bit-identical to
 * q8_ref.c). The expansion is one pass over the weights per call, against
 * c_out * K MACs per output pixel: at batch 1 on ResNet's smallest maps
 * (7 x 7) it is 1 / 49 of the layer's loads.
 */
#if defined(__x86_64__)

#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/q8_avx512vnni_common.h"

#define CONV4_HEADER_BYTES 64
enum { CONV4_FMT_BASE = 1, CONV4_FMT_NIBBLE = 2 };

/* The int8 convolution of this CPU (with or without VBMI). */
static const struct qconv_ukernel *conv4_base(void)
{
	return q8_conv_for(Q8_ISA_AVX512VNNI);
}

/* The conv's K: kernel rows of kw*c bytes rounded up to 4. */
static size_t conv4_k(int kh, int kw, int c)
{
	return (size_t)kh * (((size_t)kw * c + 3) & ~(size_t)3);
}

/* Bytes of the int8 GEMM panels, and of the nibble ones, for c_out x K. */
static size_t conv4_panels_int8(int c_out, size_t k)
{
	return ((size_t)c_out + GEMM_NR - 1) / GEMM_NR * ((k + 3) / 4) * GEMM_NR * 4;
}

static size_t conv4_panels_nibble(int c_out, size_t k)
{
	return conv4_panels_int8(c_out, k) / 2;
}

static bool conv4_nibbles(int c_out, int kh, int kw, int c, const int8_t *w)
{
	if (c == 1 || c_out <= 0)
		return false;
	size_t n = (size_t)c_out * kh * kw * c;
	for (size_t i = 0; i < n; i++)
		if (w[i] < -8 || w[i] > 7)
			return false;
	return true;
}

static size_t conv4_packed_bytes(int c_out, int kh, int kw, int c)
{
	return CONV4_HEADER_BYTES + conv4_base()->packed_bytes(c_out, kh, kw, c);
}

static size_t conv4_packed_bytes_for(int c_out, int kh, int kw, int c, const int8_t *w)
{
	if (!conv4_nibbles(c_out, kh, kw, c, w))
		return conv4_packed_bytes(c_out, kh, kw, c);
	return CONV4_HEADER_BYTES + conv4_panels_nibble(c_out, conv4_k(kh, kw, c));
}

static void conv4_pack(int c_out, int kh, int kw, int c, const int8_t *w, void *packed)
{
	bool nib = conv4_nibbles(c_out, kh, kw, c, w);
	int32_t header[CONV4_HEADER_BYTES / 4] = {nib ? CONV4_FMT_NIBBLE : CONV4_FMT_BASE, c_out,
						  kh, kw, c};
	memcpy(packed, header, sizeof header);
	uint8_t *out = (uint8_t *)packed + CONV4_HEADER_BYTES;
	if (!nib) {
		conv4_base()->pack(c_out, kh, kw, c, w, out);
		return;
	}
	size_t kwc = (size_t)kw * c, kwc4 = (kwc + 3) & ~(size_t)3, k = (size_t)kh * kwc4;
	size_t panel = ((k + 3) / 4) * GEMM_NR * 2;
	memset(out, 0, conv4_panels_nibble(c_out, k));
	for (int j = 0; j < c_out; j++) {
		uint8_t *col = out + (size_t)(j / GEMM_NR) * panel + (size_t)(j % 16) * 4;
		int hi = j % GEMM_NR >= 16 ? 4 : 0;
		for (int ki = 0; ki < kh; ki++)
			for (size_t t = 0; t < kwc; t++) {
				size_t kk = (size_t)ki * kwc4 + t;
				uint8_t nibble = (uint8_t)w[((size_t)j * kh + ki) * kwc + t] & 0x0F;
				col[kk / 4 * 64 + kk % 4] |= (uint8_t)(nibble << hi);
			}
	}
}

/* Where the expanded panels go in the scratch: behind the int8 conv's part. */
static size_t conv4_base_work(const struct qconv_params *p)
{
	return (conv4_base()->work_bytes(p) + 63) & ~(size_t)63;
}

static size_t conv4_work_bytes(const struct qconv_params *p)
{
	return conv4_base_work(p) + conv4_panels_int8(p->c_out, conv4_k(p->kh, p->kw, p->c)) +
	       (size_t)p->c_out * sizeof(int32_t);
}

static void conv4_run(const struct qconv_params *p, const uint8_t *x, const void *packed,
		      uint8_t *y)
{
	int32_t fmt;
	memcpy(&fmt, packed, sizeof fmt);
	const uint8_t *body = (const uint8_t *)packed + CONV4_HEADER_BYTES;
	if (fmt != CONV4_FMT_NIBBLE) {
		conv4_base()->run(p, x, body, y);
		return;
	}
	size_t k = conv4_k(p->kh, p->kw, p->c), k4 = (k + 3) / 4;
	int8_t *panels = (int8_t *)p->work + conv4_base_work(p);
	int n_panels = (p->c_out + GEMM_NR - 1) / GEMM_NR;
	for (int pi = 0; pi < n_panels; pi++)
		w4_expand_panel((int)k4, body + (size_t)pi * k4 * 64,
				panels + (size_t)pi * k4 * GEMM_NR * 4);
	int32_t *sum_abs = (int32_t *)(panels + conv4_panels_int8(p->c_out, k));
	for (int j = 0; j < p->c_out; j++)
		sum_abs[j] = 8 * p->kh * p->kw * p->c;
	conv4_base()->run(p, x, panels, y);
}

const struct qconv_ukernel qconv_u8s4_8x32__avx512vnni = {
	.name = "qconv_u8s4_8x32__avx512vnni",
	.packed_bytes = conv4_packed_bytes,
	.pack = conv4_pack,
	.work_bytes = conv4_work_bytes,
	.run = conv4_run,
	.packed_bytes_for = conv4_packed_bytes_for,
};

#endif
