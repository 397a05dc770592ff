/* checkpoint.c - fine-tune checkpoints (the layout is in checkpoint.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"

#define CKPT_MAGIC "PRSOCKPT"
#define CKPT_VERSION 1u
#define CKPT_BOM 0x01020304u
#define CKPT_HEADER_BYTES 88

struct buf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void put_i64(struct buf *b, int64_t v)
{
	put(b, &v, sizeof v);
}

static void put_floats(struct buf *b, const float *f, int64_t n)
{
	put_i64(b, n);
	if (n > 0)
		put(b, f, sizeof(float) * (size_t)n);
}

enum presso_status checkpoint_save(const char *path, const uint8_t fingerprint[SHA256_DIGEST_BYTES],
				   const struct tnet *t, const struct optim *o, int64_t step)
{
	struct buf b = {0};
	uint8_t header[CKPT_HEADER_BYTES] = {0};
	put(&b, header, sizeof header);
	put_i64(&b, step);
	put_i64(&b, tnet_n_floats(t));
	for (int p = 0; p < tnet_n_params(t); p++)
		put(&b, tnet_param_data(t, p), sizeof(float) * (size_t)tnet_param(t, p)->n);
	int64_t nb = 2 * tnet_n_bn_channels(t);
	float *bn = malloc(sizeof(float) * (size_t)(nb ? nb : 1));
	if (!bn) {
		free(b.p);
		return status_fail(PRESSO_E_NOMEM, "out of memory writing checkpoint %s", path);
	}
	tnet_bn_running(t, bn, NULL);
	put_floats(&b, bn, nb);
	free(bn);
	int64_t na = tnet_act_quant_floats(t);
	float *aq = malloc(sizeof(float) * (size_t)(na ? na : 1));
	if (!aq) {
		free(b.p);
		return status_fail(PRESSO_E_NOMEM, "out of memory writing checkpoint %s", path);
	}
	tnet_act_quant_state((struct tnet *)t, aq, NULL);
	put_floats(&b, aq, na);
	free(aq);
	put_i64(&b, o->t);
	put_floats(&b, o->m, o->m ? o->n : 0);
	put_floats(&b, o->v, o->v ? o->n : 0);
	if (b.oom) {
		free(b.p);
		return status_fail(PRESSO_E_NOMEM, "out of memory writing checkpoint %s", path);
	}
	uint32_t version = CKPT_VERSION, bom = CKPT_BOM;
	uint64_t body = b.n - CKPT_HEADER_BYTES;
	memcpy(b.p, CKPT_MAGIC, 8);
	memcpy(b.p + 8, &version, 4);
	memcpy(b.p + 12, &bom, 4);
	memcpy(b.p + 16, fingerprint, SHA256_DIGEST_BYTES);
	struct sha256 c;
	sha256_init(&c);
	sha256_update(&c, b.p + CKPT_HEADER_BYTES, body);
	sha256_final(&c, b.p + 48);
	memcpy(b.p + 80, &body, 8);
	enum presso_status s = file_write_atomic(path, b.p, b.n);
	free(b.p);
	return s;
}

struct reader {
	const uint8_t *p;
	size_t n, at;
};

static bool get(struct reader *r, void *dst, size_t n)
{
	if (r->n - r->at < n)
		return false;
	memcpy(dst, r->p + r->at, n);
	r->at += n;
	return true;
}

/* An array of exactly `want` floats into dst (dst may be NULL when want is 0). */
static bool get_floats(struct reader *r, float *dst, int64_t want)
{
	int64_t n;
	if (!get(r, &n, sizeof n) || n != want)
		return false;
	return want == 0 || get(r, dst, sizeof(float) * (size_t)want);
}

enum presso_status checkpoint_load(const char *path, const uint8_t fingerprint[SHA256_DIGEST_BYTES],
				   struct tnet *t, struct optim *o, int64_t *step, bool *found)
{
	*found = false;
	struct stat st;
	if (stat(path, &st) != 0 && errno == ENOENT)
		return PRESSO_OK;
	char *bytes = NULL;
	size_t n = 0;
	enum presso_status s = file_read_all(path, "a checkpoint", 0, &bytes, &n);
	if (s != PRESSO_OK)
		return s;
	const uint8_t *p = (const uint8_t *)bytes;
	uint32_t version, bom;
	uint64_t body;
	uint8_t digest[SHA256_DIGEST_BYTES];
	float *params = NULL, *bn = NULL, *aq = NULL, *m = NULL, *v = NULL;
	int64_t nb = 2 * tnet_n_bn_channels(t), nf = tnet_n_floats(t), got_step, opt_t;
	int64_t na = tnet_act_quant_floats(t);
	if (n < CKPT_HEADER_BYTES || memcmp(p, CKPT_MAGIC, 8) != 0) {
		s = status_fail(PRESSO_E_FORMAT, "%s: not a presso checkpoint", path);
		goto done;
	}
	memcpy(&version, p + 8, 4);
	memcpy(&bom, p + 12, 4);
	memcpy(&body, p + 80, 8);
	if (version != CKPT_VERSION || bom != CKPT_BOM) {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: checkpoint version %u (byte order %08x); this presso reads version %u",
				path, version, bom, CKPT_VERSION);
		goto done;
	}
	if (body != n - CKPT_HEADER_BYTES) {
		s = status_fail(PRESSO_E_FORMAT, "%s: checkpoint truncated (%zu of %llu bytes)", path,
				n, (unsigned long long)(body + CKPT_HEADER_BYTES));
		goto done;
	}
	struct sha256 c;
	sha256_init(&c);
	sha256_update(&c, p + CKPT_HEADER_BYTES, body);
	sha256_final(&c, digest);
	if (memcmp(digest, p + 48, SHA256_DIGEST_BYTES) != 0) {
		s = status_fail(PRESSO_E_FORMAT, "%s: checkpoint damaged (checksum mismatch)", path);
		goto done;
	}
	if (memcmp(fingerprint, p + 16, SHA256_DIGEST_BYTES) != 0) {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: checkpoint of another fine-tune (a different model, data, policy or finetune setting); delete it or start over with --restart",
				path);
		goto done;
	}
	params = malloc(sizeof(float) * (size_t)(nf ? nf : 1));
	bn = malloc(sizeof(float) * (size_t)(nb ? nb : 1));
	aq = malloc(sizeof(float) * (size_t)(na ? na : 1));
	m = malloc(sizeof(float) * (size_t)(o->n ? o->n : 1));
	v = malloc(sizeof(float) * (size_t)(o->n ? o->n : 1));
	if (!params || !bn || !aq || !m || !v) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory reading checkpoint %s", path);
		goto done;
	}
	struct reader r = {p + CKPT_HEADER_BYTES, body, 0};
	if (!get(&r, &got_step, sizeof got_step) || got_step < 0 || !get_floats(&r, params, nf) ||
	    !get_floats(&r, bn, nb) || !get_floats(&r, aq, na) || !get(&r, &opt_t, sizeof opt_t) ||
	    !get_floats(&r, m, o->m ? o->n : 0) || !get_floats(&r, v, o->v ? o->n : 0) ||
	    r.at != r.n) {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: checkpoint does not fit this model and optimizer (%lld parameters)",
				path, (long long)nf);
		goto done;
	}
	int64_t off = 0;
	for (int i = 0; i < tnet_n_params(t); i++) {
		int64_t k = tnet_param(t, i)->n;
		memcpy(tnet_param_data(t, i), params + off, sizeof(float) * (size_t)k);
		off += k;
	}
	tnet_bn_running(t, NULL, bn);
	tnet_act_quant_state(t, NULL, aq);
	o->t = opt_t;
	if (o->m)
		memcpy(o->m, m, sizeof(float) * (size_t)o->n);
	if (o->v)
		memcpy(o->v, v, sizeof(float) * (size_t)o->n);
	*step = got_step;
	*found = true;
done:
	free(params);
	free(bn);
	free(aq);
	free(m);
	free(v);
	free(bytes);
	return s;
}
