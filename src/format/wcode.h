/* wcode.h - the bytes of a layer's weight coding: encoder and decoder for the
 * three codings quant_weight_coding() chooses between (quant.h).
 *
 * Bit stream: bits are appended least significant first, byte after byte; the
 * last byte is padded with zero bits. A weight value at b bits is its two's
 * complement in b bits for b >= 2 (ternary: +1 = 01, -1 = 11); binary (b = 1)
 * writes 1 for +1 and 0 for -1.
 *   dense:     n values.
 *   bitmap:    n mask bits (1 = non-zero) then, from the next byte boundary, the
 *              nnz non-zero values.
 *   runlength: one entry per non-zero: the count of zeros before it in 4 bits,
 *              then the value. A run that reaches 16 zeros is cut by a filler
 *              entry (count 15, value 0) standing for those 16 zeros; fewer than
 *              16 zeros at the end are implied by n.
 * The sizes are exactly weight_coding.bytes, so encoded layers add up to the
 * model's weight_bytes.
 */
#ifndef PRESSO_WCODE_H
#define PRESSO_WCODE_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/quant.h"

/* Writes q[0..n) at `bits` in coding c (from quant_weight_coding(q, n, bits))
 * into out[0..c->bytes). */
void wcode_encode(const int8_t *q, int64_t n, int bits, const struct weight_coding *c,
		  uint8_t *out);

/* Reads n weights at `bits` coded as c->kind with c->nnz non-zeros from
 * in[0..c->bytes) into q[0..n). Returns false when the bytes are not the
 * canonical coding of any weights: a value outside [-qmax, qmax], a zero where
 * the coding promises a non-zero, a count that runs past n, too few or too many
 * entries, non-zero padding. Never reads or writes outside the two buffers. */
bool wcode_decode(const uint8_t *in, const struct weight_coding *c, int64_t n, int bits,
		  int8_t *q);

/* A layer's n int32 biases: a byte holding their width w = quant_bias_bits(),
 * then each in w bits two's complement, in the same bit stream;
 * quant_bias_bytes(n, w) bytes in all. */
void wcode_bias_encode(const int32_t *b, int64_t n, uint8_t *out);

/* Reads n biases from in[0..avail) into b; returns the bytes used, or -1 when
 * they are truncated or not canonical (a width over 32 or wider than needed,
 * non-zero padding). */
int64_t wcode_bias_decode(const uint8_t *in, int64_t avail, int64_t n, int32_t *b);

#endif
