/* dataset.c - IDX and NPY loaders, batch normalisation and seeded splits.
 *
 * File formats (either file may be gzip-compressed: first two bytes 1f 8b):
 *   IDX (LeCun's MNIST format): a big-endian uint32 magic 0x0000TTDD, TT the
 *       element type (08 = unsigned byte), DD the number of dimensions; then DD
 *       big-endian uint32 sizes; then the elements in C order. Images are
 *       0x00000803 [n, h, w], labels 0x00000801 [n].
 *   NPY (numpy format 1.0, 2.0, 3.0): "\x93NUMPY", major, minor, the header
 *       length (uint16 LE in 1.0, uint32 LE after), an ASCII Python dict literal
 *       {'descr': '<f4', 'fortran_order': False, 'shape': (n, h, w), } padded with
 *       spaces and a newline; then the elements in C order.
 *
 * Invariant: a loaded file holds exactly its header plus the product of its
 * dimensions times the element size. A byte short or a byte over is an error, so a
 * truncated download or the wrong file never loads as a plausible dataset.
 *
 * Splits: presso's one generator (base/rng.h: splitmix64 expands the seed into
 * xoshiro256** state) drives a partial Fisher-Yates shuffle with unbiased
 * bounded draws (rng_below: rejection, as OpenBSD's arc4random_uniform) that
 * picks the calibration images, then the validation images.
 * Integer arithmetic only, so a seed gives the same splits on every machine.
 */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"
#include "base/fileio.h"
#include "base/rng.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Labels are class indices; 2^20 classes is far above any classification
 * dataset (ImageNet-21k has 21841) and keeps per-class tables small. */
#define MAX_LABEL ((1 << 20) - 1)
/* An NPY header is a short dict literal; numpy pads it to 64 bytes. */
#define NPY_MAX_HEADER_BYTES (1 << 20)
#define NPY_MAX_DIMS 32
#define READ_CHUNK_BYTES (1 << 24)
#define GZ_BUFFER_BYTES (1 << 17)

/* ---- reading whole files, raw or gzip ---------------------------------- */

struct reader {
	const char *path;
	FILE *f;   /* raw file, or NULL */
	gzFile gz; /* gzip file, or NULL */
};

static enum presso_status reader_open(struct reader *r, const char *path)
{
	unsigned char magic[2];
	memset(r, 0, sizeof *r);
	r->path = path;
	FILE *f;
	enum presso_status s = file_open_regular(path, "a dataset file", &f, NULL);
	if (s != PRESSO_OK)
		return s;
	size_t got = fread(magic, 1, sizeof magic, f);
	if (ferror(f)) {
		int err = errno;
		fclose(f);
		return status_fail(status_from_errno(err), "%s: %s", path, strerror(err));
	}
	if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		fclose(f);
		errno = 0;
		r->gz = gzopen(path, "rb");
		if (!r->gz)
			return status_fail(errno ? status_from_errno(errno) : PRESSO_E_IO, "%s: %s",
					   path, errno ? strerror(errno) : "cannot open gzip file");
		gzbuffer(r->gz, GZ_BUFFER_BYTES);
		return PRESSO_OK;
	}
	rewind(f);
	r->f = f;
	return PRESSO_OK;
}

static void reader_close(struct reader *r)
{
	if (r->f)
		fclose(r->f);
	if (r->gz)
		gzclose(r->gz);
	r->f = NULL;
	r->gz = NULL;
}

/* Reads up to n bytes; *got < n only at the end of the (decompressed) data. */
static enum presso_status reader_read(struct reader *r, void *buf, size_t n, size_t *got)
{
	unsigned char *p = buf;
	*got = 0;
	if (r->f) {
		*got = fread(p, 1, n, r->f);
		if (*got < n && ferror(r->f))
			return status_fail(status_from_errno(errno), "%s: %s", r->path,
					   strerror(errno));
		return PRESSO_OK;
	}
	while (*got < n) {
		size_t want = n - *got;
		if (want > (size_t)1 << 30)
			want = (size_t)1 << 30;
		int k = gzread(r->gz, p + *got, (unsigned)want);
		int errnum = Z_OK;
		const char *zmsg = gzerror(r->gz, &errnum);
		if (k < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
			if (errnum == Z_ERRNO)
				return status_fail(status_from_errno(errno), "%s: %s", r->path,
						   strerror(errno));
			if (errnum == Z_MEM_ERROR)
				return status_fail(PRESSO_E_NOMEM, "%s: out of memory decompressing",
						   r->path);
			return status_fail(PRESSO_E_FORMAT, "%s: corrupt gzip data: %s", r->path,
					   zmsg);
		}
		*got += (size_t)(k > 0 ? k : 0);
		/* zlib reports a stream cut short as Z_BUF_ERROR once its input ends. */
		if (errnum == Z_BUF_ERROR)
			return status_fail(PRESSO_E_FORMAT,
					   "%s: truncated gzip stream (the compressed file ends "
					   "before the end of its data)",
					   r->path);
		if (k == 0)
			break;
	}
	return PRESSO_OK;
}

/* Reads exactly n header bytes; a shorter file is truncated. */
static enum presso_status read_header(struct reader *r, void *buf, size_t n, int64_t offset,
				      const char *what)
{
	size_t got;
	enum presso_status st = reader_read(r, buf, n, &got);
	if (st != PRESSO_OK)
		return st;
	if (got < n)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: truncated: expected at least %lld bytes of %s header, "
				   "but the %s holds only %lld",
				   r->path, (long long)(offset + (int64_t)n), what,
				   r->gz ? "decompressed file" : "file",
				   (long long)(offset + (int64_t)got));
	return PRESSO_OK;
}

/* Reads the n payload bytes after a header of header_bytes into a new buffer
 * (*out, malloc'd, at least 1 byte) and checks that nothing follows. The buffer
 * grows with the data, so a corrupt header claiming terabytes fails on length,
 * not on allocation. `layout` describes the expected payload for the message. */
static enum presso_status read_payload(struct reader *r, int64_t header_bytes, int64_t n,
				       const char *layout, unsigned char **out)
{
	enum presso_status st;
	size_t cap = n < READ_CHUNK_BYTES ? (size_t)n : READ_CHUNK_BYTES;
	size_t got = 0;
	int64_t extra = 0;
	unsigned char *buf = malloc(cap ? cap : 1);
	*out = NULL;
	if (!buf)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", r->path);
	while ((int64_t)got < n) {
		if (got == cap) {
			size_t ncap = (int64_t)cap * 2 < n ? cap * 2 : (size_t)n;
			unsigned char *nb = realloc(buf, ncap);
			if (!nb) {
				st = status_fail(PRESSO_E_NOMEM,
						 "%s: out of memory reading %lld bytes", r->path,
						 (long long)n);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		size_t k;
		st = reader_read(r, buf + got, cap - got, &k);
		if (st != PRESSO_OK)
			goto fail;
		if (k == 0)
			break;
		got += k;
	}
	if ((int64_t)got < n) {
		st = status_fail(PRESSO_E_FORMAT,
				 "%s: truncated: expected %lld bytes (%s), but the %s holds only %lld",
				 r->path, (long long)(header_bytes + n), layout,
				 r->gz ? "decompressed file" : "file",
				 (long long)(header_bytes + (int64_t)got));
		goto fail;
	}
	for (;;) {
		unsigned char scratch[1 << 14];
		size_t k;
		st = reader_read(r, scratch, sizeof scratch, &k);
		if (st != PRESSO_OK)
			goto fail;
		if (k == 0)
			break;
		extra += (int64_t)k;
	}
	if (extra > 0) {
		st = status_fail(PRESSO_E_FORMAT,
				 "%s: %lld trailing bytes: expected %lld bytes (%s), but the %s "
				 "holds %lld",
				 r->path, (long long)extra, (long long)(header_bytes + n), layout,
				 r->gz ? "decompressed file" : "file",
				 (long long)(header_bytes + n + extra));
		goto fail;
	}
	*out = buf;
	return PRESSO_OK;
fail:
	free(buf);
	return st;
}

/* *prod = a * b, false if it would exceed INT64_MAX (a, b >= 0). */
static bool mul_ok(int64_t a, int64_t b, int64_t *prod)
{
	if (a != 0 && b > INT64_MAX / a)
		return false;
	*prod = a * b;
	return true;
}

static struct dataset *dataset_alloc(const char *images_path, const char *labels_path)
{
	struct dataset *ds = calloc(1, sizeof *ds);
	if (ds) {
		ds->images_path = strdup(images_path);
		ds->labels_path = strdup(labels_path);
	}
	if (!ds || !ds->images_path || !ds->labels_path) {
		dataset_free(ds);
		status_fail(PRESSO_E_NOMEM, "out of memory");
		return NULL;
	}
	return ds;
}

void dataset_free(struct dataset *ds)
{
	if (!ds)
		return;
	free(ds->u8);
	free(ds->f32);
	free(ds->labels);
	free(ds->images_path);
	free(ds->labels_path);
	free(ds);
}

/* n_classes = max label + 1 (labels are already known to be >= 0). */
static void set_n_classes(struct dataset *ds)
{
	int32_t max = -1;
	for (int64_t i = 0; i < ds->n; i++)
		if (ds->labels[i] > max)
			max = ds->labels[i];
	ds->n_classes = max + 1;
}

/* ---- IDX ---------------------------------------------------------------- */

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Loads one IDX file of unsigned bytes with magic `magic` (ndims = low byte,
 * at most 3) into dims[] and *data (malloc'd). */
static enum presso_status idx_load(const char *path, uint32_t magic, const char *what,
				   int64_t dims[3], unsigned char **data)
{
	struct reader r;
	unsigned char head[16];
	int ndims = (int)(magic & 0xff);
	int64_t header_bytes = 4 + 4 * (int64_t)ndims;
	int64_t total = 1;
	char layout[160];
	enum presso_status st;

	*data = NULL;
	st = reader_open(&r, path);
	if (st != PRESSO_OK)
		return st;
	st = read_header(&r, head, 4, 0, "IDX");
	if (st != PRESSO_OK)
		goto fail;
	uint32_t found = be32(head);
	if (found != magic) {
		const char *hint = "";
		if (found == IDX_MAGIC_IMAGES || found == IDX_MAGIC_LABELS)
			hint = found == IDX_MAGIC_IMAGES ? " (it is an IDX image file; are the image "
							   "and label paths swapped?)"
							 : " (it is an IDX label file; are the image "
							   "and label paths swapped?)";
		else if (memcmp(head, "\x93NUM", 4) == 0)
			hint = " (it is an NPY file; set data.format to \"npy\")";
		st = status_fail(PRESSO_E_FORMAT,
				 "%s: not an IDX %s file: magic is 0x%08x, expected 0x%08x%s", path,
				 what, (unsigned)found, (unsigned)magic, hint);
		goto fail;
	}
	st = read_header(&r, head + 4, (size_t)(4 * ndims), 4, "IDX");
	if (st != PRESSO_OK)
		goto fail;
	int pos = snprintf(layout, sizeof layout, "%lld-byte header + ", (long long)header_bytes);
	for (int d = 0; d < ndims; d++) {
		dims[d] = be32(head + 4 + 4 * d);
		if (dims[d] == 0 || (d > 0 && dims[d] > INT_MAX)) {
			st = status_fail(PRESSO_E_FORMAT, "%s: IDX dimension %d is %lld", path, d,
					 (long long)dims[d]);
			goto fail;
		}
		if (!mul_ok(total, dims[d], &total) || total > (int64_t)(SIZE_MAX / 2)) {
			st = status_fail(PRESSO_E_FORMAT, "%s: IDX dimensions are too large", path);
			goto fail;
		}
		if (pos > 0 && pos < (int)sizeof layout)
			pos += snprintf(layout + pos, sizeof layout - (size_t)pos, "%s%lld",
					d ? "x" : "", (long long)dims[d]);
	}
	if (pos > 0 && pos < (int)sizeof layout)
		snprintf(layout + pos, sizeof layout - (size_t)pos, " bytes");
	st = read_payload(&r, header_bytes, total, layout, data);
fail:
	reader_close(&r);
	return st;
}

enum presso_status dataset_load_idx(const char *images_path, const char *labels_path,
				    struct dataset **out)
{
	int64_t idims[3] = {0}, ldims[3] = {0};
	unsigned char *labels = NULL;
	struct dataset *ds = NULL;
	enum presso_status st;

	*out = NULL;
	ds = dataset_alloc(images_path, labels_path);
	if (!ds)
		return PRESSO_E_NOMEM;
	st = idx_load(images_path, IDX_MAGIC_IMAGES, "image", idims, &ds->u8);
	if (st != PRESSO_OK)
		goto fail;
	st = idx_load(labels_path, IDX_MAGIC_LABELS, "label", ldims, &labels);
	if (st != PRESSO_OK)
		goto fail;
	if (idims[0] != ldims[0]) {
		st = status_fail(PRESSO_E_FORMAT, "%s holds %lld images but %s holds %lld labels",
				 images_path, (long long)idims[0], labels_path,
				 (long long)ldims[0]);
		goto fail;
	}
	ds->n = idims[0];
	ds->c = 1;
	ds->h = (int)idims[1];
	ds->w = (int)idims[2];
	ds->hwc = false;
	ds->labels = malloc((size_t)ds->n * sizeof *ds->labels);
	if (!ds->labels) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory for %lld labels", (long long)ds->n);
		goto fail;
	}
	for (int64_t i = 0; i < ds->n; i++)
		ds->labels[i] = labels[i];
	free(labels);
	labels = NULL;
	set_n_classes(ds);
	*out = ds;
	return PRESSO_OK;
fail:
	free(labels);
	dataset_free(ds);
	return st;
}

/* ---- NPY ---------------------------------------------------------------- */

struct npy_header {
	char descr[16];
	bool fortran_order;
	int ndim;
	int64_t shape[NPY_MAX_DIMS];
	int64_t header_bytes; /* everything before the data */
	int64_t count;        /* product of shape */
};

/* What the dict parser works on: the header text and a cursor in it. */
struct npy_parse {
	const char *path;
	const char *text;
	size_t pos, len;
};

static enum presso_status npy_bad(const struct npy_parse *p, const char *expected)
{
	size_t n = p->len;
	while (n > 0 && (p->text[n - 1] == ' ' || p->text[n - 1] == '\n'))
		n--;
	return status_fail(PRESSO_E_FORMAT,
			   "%s: malformed NPY header: expected %s at byte %zu of \"%.*s\"", p->path,
			   expected, p->pos, (int)(n > 200 ? 200 : n), p->text);
}

static void npy_ws(struct npy_parse *p)
{
	while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' ||
				   p->text[p->pos] == '\n' || p->text[p->pos] == '\r'))
		p->pos++;
}

static bool npy_eat(struct npy_parse *p, char c)
{
	npy_ws(p);
	if (p->pos < p->len && p->text[p->pos] == c) {
		p->pos++;
		return true;
	}
	return false;
}

/* A Python string literal in single or double quotes, no escapes. */
static enum presso_status npy_string(struct npy_parse *p, char *out, size_t cap)
{
	npy_ws(p);
	if (p->pos >= p->len || (p->text[p->pos] != '\'' && p->text[p->pos] != '"'))
		return npy_bad(p, "a quoted string");
	char q = p->text[p->pos++];
	size_t start = p->pos;
	while (p->pos < p->len && p->text[p->pos] != q)
		p->pos++;
	if (p->pos >= p->len)
		return npy_bad(p, "a closing quote");
	size_t n = p->pos - start;
	p->pos++;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p->text + start, n);
	out[n] = '\0';
	return PRESSO_OK;
}

static enum presso_status npy_shape(struct npy_parse *p, struct npy_header *h)
{
	if (!npy_eat(p, '('))
		return npy_bad(p, "'(' opening the shape tuple");
	h->ndim = 0;
	for (;;) {
		if (npy_eat(p, ')'))
			return PRESSO_OK;
		npy_ws(p);
		if (p->pos >= p->len || p->text[p->pos] < '0' || p->text[p->pos] > '9')
			return npy_bad(p, "a dimension (non-negative integer)");
		int64_t v = 0;
		while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
			int digit = p->text[p->pos++] - '0';
			if (v > (INT64_MAX - digit) / 10)
				return npy_bad(p, "a dimension that fits in 64 bits");
			v = v * 10 + digit;
		}
		if (p->pos < p->len && p->text[p->pos] == 'L') /* Python 2 long */
			p->pos++;
		if (h->ndim == NPY_MAX_DIMS)
			return npy_bad(p, "at most 32 dimensions");
		h->shape[h->ndim++] = v;
		if (npy_eat(p, ','))
			continue;
		if (npy_eat(p, ')'))
			return PRESSO_OK;
		return npy_bad(p, "',' or ')' in the shape tuple");
	}
}

/* Parses {'descr': ..., 'fortran_order': ..., 'shape': (...), } */
static enum presso_status npy_dict(struct npy_parse *p, struct npy_header *h)
{
	bool seen_descr = false, seen_order = false, seen_shape = false;
	enum presso_status st;
	if (!npy_eat(p, '{'))
		return npy_bad(p, "'{'");
	for (;;) {
		char key[32];
		if (npy_eat(p, '}'))
			break;
		st = npy_string(p, key, sizeof key);
		if (st != PRESSO_OK)
			return st;
		if (!npy_eat(p, ':'))
			return npy_bad(p, "':' after a key");
		if (strcmp(key, "descr") == 0) {
			npy_ws(p);
			if (p->pos < p->len && p->text[p->pos] == '[')
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "%s: structured NPY dtypes are not supported",
						   p->path);
			st = npy_string(p, h->descr, sizeof h->descr);
			if (st != PRESSO_OK)
				return st;
			seen_descr = true;
		} else if (strcmp(key, "fortran_order") == 0) {
			npy_ws(p);
			if (p->len - p->pos >= 4 && memcmp(p->text + p->pos, "True", 4) == 0) {
				h->fortran_order = true;
				p->pos += 4;
			} else if (p->len - p->pos >= 5 &&
				   memcmp(p->text + p->pos, "False", 5) == 0) {
				h->fortran_order = false;
				p->pos += 5;
			} else {
				return npy_bad(p, "True or False");
			}
			seen_order = true;
		} else if (strcmp(key, "shape") == 0) {
			st = npy_shape(p, h);
			if (st != PRESSO_OK)
				return st;
			seen_shape = true;
		} else {
			return status_fail(PRESSO_E_FORMAT,
					   "%s: malformed NPY header: unknown key '%s' (expected "
					   "descr, fortran_order, shape)",
					   p->path, key);
		}
		if (npy_eat(p, ','))
			continue;
		if (npy_eat(p, '}'))
			break;
		return npy_bad(p, "',' or '}'");
	}
	if (!seen_descr || !seen_order || !seen_shape)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: malformed NPY header: missing '%s'", p->path,
				   !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
	return PRESSO_OK;
}

/* Reads the magic, version and header dict; leaves r at the first data byte. */
static enum presso_status npy_read_header(struct reader *r, struct npy_header *h)
{
	unsigned char pre[12];
	char *text = NULL;
	enum presso_status st;
	memset(h, 0, sizeof *h);
	st = read_header(r, pre, 8, 0, "NPY");
	if (st != PRESSO_OK)
		return st;
	if (memcmp(pre, "\x93NUMPY", 6) != 0) {
		const char *hint = "";
		if (pre[0] == 0 && pre[1] == 0 && pre[2] == 8)
			hint = " (it looks like an IDX file; set data.format to \"idx\")";
		return status_fail(PRESSO_E_FORMAT,
				   "%s: not an NPY file: it starts with %02x %02x %02x %02x %02x "
				   "%02x, expected 93 4e 55 4d 50 59 (\"\\x93NUMPY\")%s",
				   r->path, pre[0], pre[1], pre[2], pre[3], pre[4], pre[5], hint);
	}
	int major = pre[6], minor = pre[7];
	uint32_t hlen;
	int64_t pre_bytes;
	if (major == 1) {
		st = read_header(r, pre + 8, 2, 8, "NPY");
		if (st != PRESSO_OK)
			return st;
		hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
		pre_bytes = 10;
	} else if (major == 2 || major == 3) {
		st = read_header(r, pre + 8, 4, 8, "NPY");
		if (st != PRESSO_OK)
			return st;
		hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 |
		       (uint32_t)pre[11] << 24;
		pre_bytes = 12;
	} else {
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: NPY format version %d.%d is not supported (1.0, 2.0 and "
				   "3.0 are)",
				   r->path, major, minor);
	}
	if (hlen == 0 || hlen > NPY_MAX_HEADER_BYTES)
		return status_fail(PRESSO_E_FORMAT,
				   "%s: malformed NPY header: header length %u is not in 1..%d",
				   r->path, (unsigned)hlen, NPY_MAX_HEADER_BYTES);
	text = malloc(hlen + 1);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	st = read_header(r, text, hlen, pre_bytes, "NPY");
	if (st != PRESSO_OK)
		goto fail;
	text[hlen] = '\0';
	struct npy_parse p = {.path = r->path, .text = text, .pos = 0, .len = hlen};
	st = npy_dict(&p, h);
	if (st != PRESSO_OK)
		goto fail;
	h->header_bytes = pre_bytes + hlen;
	h->count = 1;
	for (int d = 0; d < h->ndim; d++)
		if (!mul_ok(h->count, h->shape[d], &h->count) ||
		    h->count > (int64_t)(SIZE_MAX / 16)) {
			st = status_fail(PRESSO_E_FORMAT, "%s: NPY shape is too large", r->path);
			goto fail;
		}
fail:
	free(text);
	return st;
}

struct npy_dtype {
	const char *name; /* without the byte-order character */
	int bytes;
	bool is_signed, is_float;
};

static const struct npy_dtype npy_dtypes[] = {
	{"u1", 1, false, false}, {"i1", 1, true, false}, {"u2", 2, false, false},
	{"i2", 2, true, false},  {"u4", 4, false, false}, {"i4", 4, true, false},
	{"u8", 8, false, false}, {"i8", 8, true, false},  {"f4", 4, true, true},
	{"f8", 8, true, true}, /* numpy's default float: converted to float32 */
};

/* Finds descr ('<f4', '|u1', ...) in the table; *big_endian from its first char. */
static const struct npy_dtype *npy_find_dtype(const char *descr, bool *big_endian)
{
	char order = descr[0];
	if (order != '<' && order != '>' && order != '|')
		return NULL;
	for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++) {
		const struct npy_dtype *t = &npy_dtypes[i];
		if (strcmp(descr + 1, t->name) != 0)
			continue;
		if (order == '|' && t->bytes != 1)
			return NULL;
		*big_endian = order == '>';
		return t;
	}
	return NULL;
}

static void format_shape(const struct npy_header *h, char *buf, size_t cap)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (int d = 0; d < h->ndim && pos < cap; d++)
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s%lld", d ? ", " : "",
					(long long)h->shape[d]);
	if (h->ndim == 1 && pos < cap)
		snprintf(buf + pos, cap - pos, ",");
}

/* Opens an NPY file, parses and checks its header, reads its data. `what` the
 * array holds, for messages: "images" and tensors take uint8 or float32,
 * labels (labels = true) any integer type. (Float64 is read too and
 * converted to float32: numpy saves float arrays as float64 by default.) */
static enum presso_status npy_load(const char *path, bool labels, const char *what,
				   struct npy_header *h,
				   const struct npy_dtype **dtype, bool *big_endian,
				   unsigned char **data)
{
	struct reader r;
	char layout[256], shape[160];
	enum presso_status st;

	*data = NULL;
	st = reader_open(&r, path);
	if (st != PRESSO_OK)
		return st;
	st = npy_read_header(&r, h);
	if (st != PRESSO_OK)
		goto fail;
	*dtype = npy_find_dtype(h->descr, big_endian);
	/* Images: bytes or float32. Labels: any integer type. */
	bool ok = *dtype && (labels ? !(*dtype)->is_float
				    : (*dtype)->is_float || !strcmp((*dtype)->name, "u1"));
	if (!ok) {
		st = status_fail(PRESSO_E_UNSUPPORTED,
				 "%s: NPY dtype '%s' is not supported for %s (expected %s)", path,
				 h->descr, what,
				 labels ? "an integer type: '|u1', '|i1', '<i2', '<i4', '<i8', "
					  "'<u2', '<u4', '<u8'"
					: "'|u1', '<f4' or '<f8'");
		goto fail;
	}
	if (h->fortran_order) {
		st = status_fail(PRESSO_E_UNSUPPORTED,
				 "%s: the array is in Fortran order (fortran_order: True); save it "
				 "in C order (numpy.ascontiguousarray)",
				 path);
		goto fail;
	}
	format_shape(h, shape, sizeof shape);
	snprintf(layout, sizeof layout, "%lld-byte header + (%s) x %d-byte %s",
		 (long long)h->header_bytes, shape, (*dtype)->bytes, h->descr);
	st = read_payload(&r, h->header_bytes, h->count * (*dtype)->bytes, layout, data);
fail:
	reader_close(&r);
	return st;
}

/* The bytes of element i of a little- or big-endian array, as an unsigned
 * integer of t->bytes bytes. */
static uint64_t npy_bits(const unsigned char *data, int64_t i, const struct npy_dtype *t,
			 bool big_endian)
{
	const unsigned char *p = data + i * t->bytes;
	uint64_t u = 0;
	for (int b = 0; b < t->bytes; b++)
		u |= (uint64_t)p[big_endian ? t->bytes - 1 - b : b] << (8 * b);
	return u;
}

/* Element i of a little- or big-endian float32 or float64 array, as float
 * (a float64 beyond float32's range becomes an infinity). */
static float npy_float(const unsigned char *data, int64_t i, const struct npy_dtype *t,
		       bool big_endian)
{
	uint64_t u = npy_bits(data, i, t, big_endian);
	if (t->bytes == 4) {
		uint32_t u32 = (uint32_t)u;
		float f;
		memcpy(&f, &u32, sizeof f);
		return f;
	}
	double d;
	memcpy(&d, &u, sizeof d);
	return (float)d;
}

/* Element i of a little- or big-endian integer array, sign-extended. */
static int64_t npy_int(const unsigned char *data, int64_t i, const struct npy_dtype *t,
		       bool big_endian)
{
	uint64_t u = npy_bits(data, i, t, big_endian);
	if (t->is_signed && t->bytes < 8 && (u >> (8 * t->bytes - 1)) & 1)
		u |= ~(uint64_t)0 << (8 * t->bytes);
	if (t->is_signed && (u >> 63))
		return -(int64_t)(~u) - 1;
	return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
}

enum presso_status dataset_load_npy(const char *images_path, const char *labels_path,
				    bool channels_last, struct dataset **out)
{
	struct npy_header ih, lh;
	const struct npy_dtype *it = NULL, *lt = NULL;
	bool ibig = false, lbig = false;
	unsigned char *pixels = NULL, *labels = NULL;
	struct dataset *ds = NULL;
	char shape[160];
	enum presso_status st;

	*out = NULL;
	ds = dataset_alloc(images_path, labels_path);
	if (!ds)
		return PRESSO_E_NOMEM;
	st = npy_load(images_path, false, "images", &ih, &it, &ibig, &pixels);
	if (st != PRESSO_OK)
		goto fail;
	format_shape(&ih, shape, sizeof shape);
	int64_t c, hh, ww;
	if (ih.ndim == 2) {
		c = 1, hh = 1, ww = ih.shape[1]; /* feature vectors: one row of w values */
	} else if (ih.ndim == 3) {
		c = 1, hh = ih.shape[1], ww = ih.shape[2];
	} else if (ih.ndim == 4 && !channels_last) {
		c = ih.shape[1], hh = ih.shape[2], ww = ih.shape[3];
	} else if (ih.ndim == 4) {
		hh = ih.shape[1], ww = ih.shape[2], c = ih.shape[3];
	} else {
		st = status_fail(PRESSO_E_UNSUPPORTED,
				 "%s: images have shape (%s); expected [n, d], [n, h, w] or %s", images_path,
				 shape, channels_last ? "[n, h, w, c]" : "[n, c, h, w]");
		goto fail;
	}
	if (ih.shape[0] == 0 || hh <= 0 || ww <= 0 || hh > INT_MAX || ww > INT_MAX) {
		st = status_fail(PRESSO_E_FORMAT, "%s: images have shape (%s); no dimension may be 0",
				 images_path, shape);
		goto fail;
	}
	if (c < 1 || c > DATASET_MAX_CHANNELS) {
		st = status_fail(PRESSO_E_UNSUPPORTED,
				 "%s: images of shape (%s) have %lld channels; presso supports "
				 "1..%d%s",
				 images_path, shape, (long long)c, DATASET_MAX_CHANNELS,
				 channels_last ? " (is the array really [n, h, w, c]?)"
					       : " (if the array is [n, h, w, c], set data.channels_last)");
		goto fail;
	}
	ds->n = ih.shape[0];
	ds->c = (int)c;
	ds->h = (int)hh;
	ds->w = (int)ww;
	ds->hwc = ih.ndim == 4 && channels_last;
	if (it->is_float) {
		/* Decode in place from the file's byte order (float64 into the first
		 * half: element i is written at 4i after it is read from 8i); reject
		 * NaN and infinity (a float64 past float32's range included), which
		 * would silently poison every accuracy computed from them. */
		ds->f32 = (float *)(void *)pixels;
		for (int64_t i = 0; i < ih.count; i++) {
			float v = npy_float(pixels, i, it, ibig);
			if (!isfinite(v)) {
				int64_t per = ih.count / ds->n;
				st = status_fail(PRESSO_E_FORMAT,
						 "%s: image %lld holds a %s value at element %lld",
						 images_path, (long long)(i / per),
						 it->bytes == 8 ? "non-finite or out-of-float32-range"
								: "non-finite",
						 (long long)(i % per));
				pixels = NULL;
				goto fail;
			}
			ds->f32[i] = v;
		}
		if (it->bytes == 8) { /* give back the second half */
			float *shrunk = realloc(ds->f32, sizeof(float) * (size_t)ih.count);
			if (shrunk)
				ds->f32 = shrunk;
		}
	} else {
		ds->u8 = pixels;
	}
	pixels = NULL;

	st = npy_load(labels_path, true, "labels", &lh, &lt, &lbig, &labels);
	if (st != PRESSO_OK)
		goto fail;
	format_shape(&lh, shape, sizeof shape);
	if (!(lh.ndim == 1 || (lh.ndim == 2 && lh.shape[1] == 1))) {
		st = status_fail(PRESSO_E_FORMAT, "%s: labels have shape (%s); expected [n]",
				 labels_path, shape);
		goto fail;
	}
	if (lh.shape[0] != ds->n) {
		st = status_fail(PRESSO_E_FORMAT, "%s holds %lld images but %s holds %lld labels",
				 images_path, (long long)ds->n, labels_path,
				 (long long)lh.shape[0]);
		goto fail;
	}
	ds->labels = malloc((size_t)ds->n * sizeof *ds->labels);
	if (!ds->labels) {
		st = status_fail(PRESSO_E_NOMEM, "out of memory for %lld labels", (long long)ds->n);
		goto fail;
	}
	for (int64_t i = 0; i < ds->n; i++) {
		int64_t v = npy_int(labels, i, lt, lbig);
		if (v < 0 || v > MAX_LABEL) {
			st = status_fail(PRESSO_E_FORMAT,
					 "%s: label %lld is %lld; labels must be class indices in "
					 "0..%d",
					 labels_path, (long long)i, (long long)v, MAX_LABEL);
			goto fail;
		}
		ds->labels[i] = (int32_t)v;
	}
	set_n_classes(ds);
	free(labels);
	*out = ds;
	return PRESSO_OK;
fail:
	free(pixels);
	free(labels);
	dataset_free(ds);
	return st;
}

/* ---- NPY tensors ---------------------------------------------------------- */

enum presso_status dataset_load_npy_tensor(const char *path, int max_dims, int64_t *dims,
					   int *n_dims, float **data)
{
	struct npy_header h;
	const struct npy_dtype *t = NULL;
	bool big = false;
	unsigned char *raw = NULL;
	char shape[160];
	*data = NULL;
	*n_dims = 0;
	enum presso_status st = npy_load(path, false, "a tensor", &h, &t, &big, &raw);
	if (st != PRESSO_OK)
		return st;
	format_shape(&h, shape, sizeof shape);
	if (h.ndim < 1 || h.ndim > max_dims || h.count == 0) {
		free(raw);
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: an array of shape (%s); expected 1..%d dimensions, none 0",
				   path, shape, max_dims);
	}
	float *x = malloc(sizeof(float) * (size_t)h.count);
	if (!x) {
		free(raw);
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory for %lld values", path,
				   (long long)h.count);
	}
	for (int64_t i = 0; i < h.count; i++) {
		if (!t->is_float) {
			x[i] = raw[i];
			continue;
		}
		x[i] = npy_float(raw, i, t, big);
		if (!isfinite(x[i])) {
			free(raw);
			free(x);
			return status_fail(PRESSO_E_FORMAT,
					   "%s: element %lld is not finite (NaN or infinity%s)", path,
					   (long long)i, t->bytes == 8 ? ", or past float32's range" : "");
		}
	}
	free(raw);
	for (int d = 0; d < h.ndim; d++)
		dims[d] = h.shape[d];
	*n_dims = h.ndim;
	*data = x;
	return PRESSO_OK;
}

enum presso_status dataset_save_npy_tensor(const char *path, const int64_t *dims, int n_dims,
					   const float *data)
{
	char dict[NPY_MAX_DIMS * 24 + 96], shape[NPY_MAX_DIMS * 24 + 8] = "";
	size_t pos = 0;
	int64_t count = 1;
	PRESSO_CHECK(n_dims >= 0 && n_dims <= NPY_MAX_DIMS);
	for (int d = 0; d < n_dims; d++) {
		pos += (size_t)snprintf(shape + pos, sizeof shape - pos, "%lld,%s",
					(long long)dims[d], d + 1 < n_dims ? " " : "");
		count *= dims[d];
	}
	int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
			   shape);
	/* magic, version, length, dict, spaces, newline: a multiple of 64 bytes */
	size_t head = 10 + (size_t)len + 1, pad = (64 - head % 64) % 64;
	size_t n = head + pad + 4 * (size_t)count;
	unsigned char *buf = malloc(n);
	if (!buf)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	size_t hlen = (size_t)len + pad + 1;
	buf[8] = (unsigned char)(hlen & 0xff);
	buf[9] = (unsigned char)(hlen >> 8);
	memcpy(buf + 10, dict, (size_t)len);
	memset(buf + 10 + len, ' ', pad);
	buf[10 + (size_t)len + pad] = '\n';
	unsigned char *p = buf + head + pad;
	for (int64_t i = 0; i < count; i++) {
		uint32_t u;
		memcpy(&u, &data[i], sizeof u);
		p[4 * i] = (unsigned char)u;
		p[4 * i + 1] = (unsigned char)(u >> 8);
		p[4 * i + 2] = (unsigned char)(u >> 16);
		p[4 * i + 3] = (unsigned char)(u >> 24);
	}
	enum presso_status st = file_write_atomic(path, buf, n);
	free(buf);
	return st;
}

/* ---- batches ------------------------------------------------------------ */

enum presso_status dataset_check_normalize(const struct dataset *ds, const struct normalize *norm)
{
	if (!norm || norm->n_channels == 1 || norm->n_channels == ds->c)
		return PRESSO_OK;
	/* the field(s) holding more than one value: n_channels is the larger count */
	bool mean = norm->n_mean == norm->n_channels, std = norm->n_std == norm->n_channels;
	const char *fields = mean && std ? "data.normalize.mean and .std have"
			     : mean      ? "data.normalize.mean has"
			     : std       ? "data.normalize.std has"
					 : "data.normalize.mean/std have";
	char images[600] = "the images";
	if (ds->images_path)
		snprintf(images, sizeof images, "the images of %s", ds->images_path);
	if (ds->c == 1)
		return status_fail(PRESSO_E_CONFIG,
				   "%s %d values, but %s have 1 channel: give 1 value", fields,
				   norm->n_channels, images);
	return status_fail(PRESSO_E_CONFIG,
			   "%s %d values, but %s have %d channels: give 1 (shared by all channels) or %d",
			   fields, norm->n_channels, images, ds->c, ds->c);
}

void dataset_get_batch(const struct dataset *ds, const struct normalize *norm,
		       const int64_t *indices, int n, bool nhwc_out, float *x, int32_t *y)
{
	const int c = ds->c;
	const int64_t plane = (int64_t)ds->h * ds->w;
	const int64_t image = plane * c;
	float scale = 1.0f, mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];

	PRESSO_CHECK(c >= 1 && c <= DATASET_MAX_CHANNELS);
	PRESSO_CHECK(!norm || norm->n_channels == 1 || norm->n_channels == c);
	for (int ch = 0; ch < c; ch++) {
		int k = norm && norm->n_channels == 1 ? 0 : ch;
		mean[ch] = norm ? norm->mean[k] : 0.0f;
		std[ch] = norm ? norm->std[k] : 1.0f;
	}
	if (norm)
		scale = norm->scale;

	for (int i = 0; i < n; i++) {
		const int64_t k = indices[i];
		PRESSO_CHECK(k >= 0 && k < ds->n);
		float *dst = x + (int64_t)i * image;
		const int64_t base = k * image;
		for (int ch = 0; ch < c; ch++) {
			for (int64_t p = 0; p < plane; p++) {
				int64_t s = ds->hwc ? p * c + ch : ch * plane + p;
				int64_t d = nhwc_out ? p * c + ch : ch * plane + p;
				float v = ds->u8 ? (float)ds->u8[base + s] : ds->f32[base + s];
				dst[d] = (v * scale - mean[ch]) / std[ch];
			}
		}
		if (y)
			y[i] = ds->labels[k];
	}
}

/* ---- splits ------------------------------------------------------------- */

static enum presso_status split_alloc(struct split *s, int64_t n)
{
	s->n = n;
	s->indices = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->indices);
	if (!s->indices) {
		s->n = 0;
		return status_fail(PRESSO_E_NOMEM, "out of memory for a split of %lld images",
				   (long long)n);
	}
	return PRESSO_OK;
}

enum presso_status dataset_make_splits(int64_t n_train, uint64_t seed, int64_t n_calib,
				       int64_t n_valid, struct split *calib,
				       struct split *valid)
{
	int64_t *perm = NULL;
	enum presso_status st;
	struct rng r;

	*calib = (struct split){0, NULL};
	*valid = (struct split){0, NULL};
	if (n_calib < 0 || n_valid < 0 || n_train < 0)
		return status_fail(PRESSO_E_CONFIG,
				   "data.splits: sizes must not be negative (calibration %lld, "
				   "validation %lld)",
				   (long long)n_calib, (long long)n_valid);
	if (n_calib > n_train || n_valid > n_train - n_calib)
		return status_fail(PRESSO_E_CONFIG,
				   "data.splits: calibration (%lld) + validation (%lld) images "
				   "exceed the %lld training images",
				   (long long)n_calib, (long long)n_valid, (long long)n_train);
	perm = malloc((size_t)(n_train > 0 ? n_train : 1) * sizeof *perm);
	if (!perm)
		return status_fail(PRESSO_E_NOMEM, "out of memory for %lld indices",
				   (long long)n_train);
	for (int64_t i = 0; i < n_train; i++)
		perm[i] = i;
	/* Partial Fisher-Yates: after step i, perm[0..i] is a uniform sample of
	 * i+1 distinct indices in uniformly random order. */
	rng_seed(&r, seed);
	const int64_t k = n_calib + n_valid;
	for (int64_t i = 0; i < k; i++) {
		int64_t j = i + (int64_t)rng_below(&r, (uint64_t)(n_train - i));
		int64_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	st = split_alloc(calib, n_calib);
	if (st != PRESSO_OK)
		goto fail;
	st = split_alloc(valid, n_valid);
	if (st != PRESSO_OK)
		goto fail;
	memcpy(calib->indices, perm, (size_t)n_calib * sizeof *perm);
	memcpy(valid->indices, perm + n_calib, (size_t)n_valid * sizeof *perm);
	free(perm);
	return PRESSO_OK;
fail:
	free(perm);
	split_free(calib);
	split_free(valid);
	return st;
}

enum presso_status split_range(int64_t n_total, int64_t n, struct split *out)
{
	*out = (struct split){0, NULL};
	if (n <= 0)
		n = n_total;
	if (n > n_total)
		return status_fail(PRESSO_E_CONFIG,
				   "data.splits.test: %lld images asked for, but the test set has "
				   "%lld",
				   (long long)n, (long long)n_total);
	enum presso_status st = split_alloc(out, n);
	if (st != PRESSO_OK)
		return st;
	for (int64_t i = 0; i < n; i++)
		out->indices[i] = i;
	return PRESSO_OK;
}

void split_free(struct split *s)
{
	if (!s)
		return;
	free(s->indices);
	s->indices = NULL;
	s->n = 0;
}
