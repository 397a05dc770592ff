/* wcode.c - weight coding bytes (the bit stream and the three codings: wcode.h). */
#include "format/wcode.h"

#include <assert.h>
#include <string.h>

/* --- the bit stream ---------------------------------------------------------- */

struct bitw {
	uint8_t *p;
	int64_t pos; /* bits written */
};

static void put_bits(struct bitw *w, uint32_t v, int k)
{
	for (int i = 0; i < k; i++, w->pos++)
		if ((v >> i) & 1u)
			w->p[w->pos >> 3] |= (uint8_t)(1u << (w->pos & 7));
}

struct bitr {
	const uint8_t *p;
	int64_t n_bits;
	int64_t pos; /* bits read */
};

/* Reads k bits (the caller checked they are there). */
static uint32_t get_bits(struct bitr *r, int k)
{
	uint32_t v = 0;
	for (int i = 0; i < k; i++, r->pos++)
		v |= (uint32_t)((r->p[r->pos >> 3] >> (r->pos & 7)) & 1u) << i;
	return v;
}

static bool has_bits(const struct bitr *r, int64_t k)
{
	return r->n_bits - r->pos >= k;
}

/* The bits between the read position and the end are all zero (padding). */
static bool zero_padding(struct bitr *r)
{
	while (r->pos < r->n_bits)
		if (get_bits(r, 1))
			return false;
	return true;
}

static uint32_t value_code(int q, int bits)
{
	if (bits == 1)
		return q > 0 ? 1u : 0u;
	return (uint32_t)q & ((1u << bits) - 1u);
}

/* The weight a code stands for, sign-extended; binary codes are never zero. */
static int code_value(uint32_t code, int bits)
{
	if (bits == 1)
		return code ? 1 : -1;
	int v = (int)code;
	return v >= (1 << (bits - 1)) ? v - (1 << bits) : v;
}

static bool in_range(int v, int bits)
{
	int qmax = quant_weight_qmax(bits);
	return v >= -qmax && v <= qmax;
}

/* --- encoder --------------------------------------------------------------------- */

void wcode_encode(const int8_t *q, int64_t n, int bits, const struct weight_coding *c,
		  uint8_t *out)
{
	memset(out, 0, (size_t)c->bytes);
	struct bitw w = {out, 0};
	switch (c->kind) {
	case WCODE_DENSE:
		for (int64_t i = 0; i < n; i++)
			put_bits(&w, value_code(q[i], bits), bits);
		break;
	case WCODE_BITMAP:
		for (int64_t i = 0; i < n; i++)
			put_bits(&w, q[i] != 0, 1);
		w.pos = (n + 7) / 8 * 8;
		for (int64_t i = 0; i < n; i++)
			if (q[i] != 0)
				put_bits(&w, value_code(q[i], bits), bits);
		break;
	case WCODE_RUNLENGTH: {
		uint32_t run = 0;
		for (int64_t i = 0; i < n; i++) {
			if (q[i] == 0) {
				if (++run == WCODE_MAX_RUN + 1) {
					assert(bits > 1); /* binary is never run-length coded with fillers */
					put_bits(&w, WCODE_MAX_RUN, WCODE_RUN_BITS);
					put_bits(&w, 0, bits);
					run = 0;
				}
				continue;
			}
			put_bits(&w, run, WCODE_RUN_BITS);
			put_bits(&w, value_code(q[i], bits), bits);
			run = 0;
		}
		break;
	}
	}
	assert(w.pos <= c->bytes * 8);
}

/* --- decoder --------------------------------------------------------------------- */

static bool decode_dense(struct bitr *r, const struct weight_coding *c, int64_t n, int bits,
			 int8_t *q)
{
	if (c->bytes != quant_packed_bytes(n, bits))
		return false;
	int64_t nnz = 0;
	for (int64_t i = 0; i < n; i++) {
		int v = code_value(get_bits(r, bits), bits);
		if (!in_range(v, bits))
			return false;
		q[i] = (int8_t)v;
		nnz += v != 0;
	}
	return nnz == c->nnz;
}

static bool decode_bitmap(struct bitr *r, const struct weight_coding *c, int64_t n, int bits,
			  int8_t *q)
{
	if (c->bytes != (n + 7) / 8 + quant_packed_bytes(c->nnz, bits))
		return false;
	int64_t nnz = 0;
	for (int64_t i = 0; i < n; i++) {
		q[i] = (int8_t)get_bits(r, 1); /* 1 marks a non-zero, filled in below */
		nnz += q[i];
	}
	if (nnz != c->nnz)
		return false;
	struct bitr mask_pad = {r->p, (n + 7) / 8 * 8, r->pos};
	if (!zero_padding(&mask_pad))
		return false;
	r->pos = (n + 7) / 8 * 8;
	for (int64_t i = 0; i < n; i++) {
		if (!q[i])
			continue;
		int v = code_value(get_bits(r, bits), bits);
		if (v == 0 || !in_range(v, bits))
			return false;
		q[i] = (int8_t)v;
	}
	return true;
}

static bool decode_runlength(struct bitr *r, const struct weight_coding *c, int64_t n,
			     int bits, int8_t *q)
{
	const int entry_bits = WCODE_RUN_BITS + bits;
	int64_t pos = 0, found = 0, entries = 0;
	while (found < c->nnz) {
		if (!has_bits(r, entry_bits))
			return false;
		int64_t count = get_bits(r, WCODE_RUN_BITS);
		int v = code_value(get_bits(r, bits), bits);
		entries++;
		if (!in_range(v, bits))
			return false;
		if (v == 0) { /* a filler: 16 zeros */
			if (count != WCODE_MAX_RUN || n - pos < WCODE_MAX_RUN + 1)
				return false;
			memset(q + pos, 0, WCODE_MAX_RUN + 1);
			pos += WCODE_MAX_RUN + 1;
			continue;
		}
		if (n - pos < count + 1)
			return false;
		memset(q + pos, 0, (size_t)count);
		q[pos + count] = (int8_t)v;
		pos += count + 1;
		found++;
	}
	/* the zeros after the last non-zero: a filler for every 16 of them */
	int64_t trailing = n - pos;
	if (bits == 1 && trailing > WCODE_MAX_RUN)
		return false;
	for (int64_t f = 0; f < trailing / (WCODE_MAX_RUN + 1); f++) {
		if (!has_bits(r, entry_bits))
			return false;
		if (get_bits(r, WCODE_RUN_BITS) != WCODE_MAX_RUN || get_bits(r, bits) != 0)
			return false;
		entries++;
	}
	memset(q + pos, 0, (size_t)trailing);
	return c->bytes == (entries * entry_bits + 7) / 8;
}

bool wcode_decode(const uint8_t *in, const struct weight_coding *c, int64_t n, int bits,
		  int8_t *q)
{
	if (bits < QUANT_MIN_WEIGHT_BITS || bits > QUANT_MAX_WEIGHT_BITS || n < 0 || c->nnz < 0 ||
	    c->nnz > n || c->bytes < 0)
		return false;
	struct bitr r = {in, c->bytes * 8, 0};
	bool ok;
	switch (c->kind) {
	case WCODE_DENSE:
		ok = decode_dense(&r, c, n, bits, q);
		break;
	case WCODE_BITMAP:
		ok = decode_bitmap(&r, c, n, bits, q);
		break;
	case WCODE_RUNLENGTH:
		ok = decode_runlength(&r, c, n, bits, q);
		break;
	default:
		return false;
	}
	return ok && zero_padding(&r);
}

/* --- biases -------------------------------------------------------------------- */

void wcode_bias_encode(const int32_t *b, int64_t n, uint8_t *out)
{
	int bits = quant_bias_bits(b, n);
	memset(out, 0, (size_t)quant_bias_bytes(n, bits));
	out[0] = (uint8_t)bits;
	struct bitw w = {out + 1, 0};
	uint32_t mask = bits == 32 ? 0xffffffffu : (1u << bits) - 1u;
	for (int64_t i = 0; i < n && bits; i++)
		put_bits(&w, (uint32_t)b[i] & mask, bits);
}

int64_t wcode_bias_decode(const uint8_t *in, int64_t avail, int64_t n, int32_t *b)
{
	if (avail < 1 || n < 0 || in[0] > 32)
		return -1;
	int bits = in[0];
	int64_t bytes = quant_bias_bytes(n, bits);
	if (bytes > avail)
		return -1;
	struct bitr r = {in + 1, (bytes - 1) * 8, 0};
	for (int64_t i = 0; i < n; i++) {
		uint32_t v = bits ? get_bits(&r, bits) : 0;
		if (bits && bits < 32 && (v >> (bits - 1)))
			v |= ~((1u << bits) - 1u); /* sign-extend */
		memcpy(&b[i], &v, sizeof v);
	}
	/* canonical: the fewest bits that hold them, zero padding */
	if (quant_bias_bits(b, n) != bits || !zero_padding(&r))
		return -1;
	return bytes;
}
