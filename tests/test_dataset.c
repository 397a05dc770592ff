/* test_dataset.c - IDX/NPY loaders, batches and splits (src/data/dataset.c).
 *
 * Every fixture file is built by the test in a fresh temporary folder, raw or
 * gzipped with zlib; each class of bad file gets a test that checks the status
 * and a distinctive part of the message. The real Fashion-MNIST files are
 * checked when Debian's dataset-fashion-mnist is installed.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "tests/fixtures.h"

static char *tmp;

static void setup(void)
{
	tmp = fx_tmpdir();
	cr_assert(tmp, "cannot create a temporary folder");
}

static void teardown(void)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(fx_join(tmp, e->d_name));
	if (d)
		closedir(d);
	rmdir(tmp);
	free(tmp);
}

TestSuite(dataset, .init = setup, .fini = teardown);

#define ASSERT_FAILS(call, want, needle)                                                   \
	do {                                                                               \
		enum presso_status st_ = (call);                                           \
		cr_assert_eq(st_, (want), "status '%s' (want '%s'), message: %s",          \
			     status_str(st_), status_str(want), status_msg());             \
		cr_assert(strstr(status_msg(), (needle)), "message \"%s\" lacks \"%s\"",   \
			  status_msg(), (needle));                                         \
	} while (0)

/* ---- building fixture files --------------------------------------------- */

struct bytes {
	unsigned char *p;
	size_t n;
};

static void put(struct bytes *b, const void *src, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	cr_assert(b->p);
	memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void put_be32(struct bytes *b, uint32_t v)
{
	unsigned char q[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	put(b, q, 4);
}

/* A copy of path that outlives fx_join's rotating slots (16 per test). */
static const char *keep(const char *path)
{
	static char kept[16][4096];
	static int next;
	char *k = kept[next];
	next = (next + 1) % 16;
	snprintf(k, sizeof kept[0], "%s", path);
	return k;
}

/* Writes b to tmp/name, gzipped when gz; returns the path (a fixtures slot). */
static const char *save(const char *name, const struct bytes *b, bool gz)
{
	const char *path = fx_join(tmp, name);
	if (gz) {
		gzFile f = gzopen(path, "wb");
		cr_assert(f);
		cr_assert_eq(gzwrite(f, b->p, (unsigned)b->n), (int)b->n);
		cr_assert_eq(gzclose(f), Z_OK);
	} else {
		cr_assert(fx_write(path, b->p, b->n));
	}
	return path;
}

/* Three 2x3 images with pixel (i, y, x) = 10*i + 3*y + x, labels 2, 0, 1. */
#define N_IMG 3
#define IMG_H 2
#define IMG_W 3
static const uint8_t want_labels[N_IMG] = {2, 0, 1};

static uint8_t pixel(int i, int y, int x)
{
	return (uint8_t)(10 * i + 3 * y + x);
}

static struct bytes idx_images(uint32_t magic, int n)
{
	struct bytes b = {0};
	put_be32(&b, magic);
	put_be32(&b, (uint32_t)n);
	put_be32(&b, IMG_H);
	put_be32(&b, IMG_W);
	for (int i = 0; i < n; i++)
		for (int y = 0; y < IMG_H; y++)
			for (int x = 0; x < IMG_W; x++) {
				uint8_t v = pixel(i, y, x);
				put(&b, &v, 1);
			}
	return b;
}

static struct bytes idx_labels(uint32_t magic, int n)
{
	struct bytes b = {0};
	put_be32(&b, magic);
	put_be32(&b, (uint32_t)n);
	for (int i = 0; i < n; i++)
		put(&b, &want_labels[i % N_IMG], 1);
	return b;
}

/* Writes images.idx and labels.idx (raw or gz) of the standard fixture. */
static void write_idx_pair(bool gz, const char **img, const char **lab)
{
	struct bytes bi = idx_images(0x803, N_IMG), bl = idx_labels(0x801, N_IMG);
	*img = keep(save(gz ? "img.gz" : "img.idx", &bi, gz));
	*lab = keep(save(gz ? "lab.gz" : "lab.idx", &bl, gz));
	free(bi.p);
	free(bl.p);
}

/* An NPY file: header dict for descr/fortran/shape, padded so data starts at a
 * multiple of 64, then n data bytes. major 1 or 2. */
static struct bytes npy(int major, const char *descr, bool fortran, const char *shape,
			const void *data, size_t n)
{
	struct bytes b = {0};
	char dict[256];
	int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
			   descr, fortran ? "True" : "False", shape);
	size_t pre = major == 1 ? 10 : 12;
	size_t total = (pre + (size_t)len + 1 + 63) / 64 * 64;
	size_t hlen = total - pre;
	put(&b, "\x93NUMPY", 6);
	unsigned char ver[2] = {(unsigned char)major, 0};
	put(&b, ver, 2);
	unsigned char l[4] = {(unsigned char)hlen, (unsigned char)(hlen >> 8),
			      (unsigned char)(hlen >> 16), (unsigned char)(hlen >> 24)};
	put(&b, l, major == 1 ? 2 : 4);
	put(&b, dict, (size_t)len);
	while (b.n < total - 1)
		put(&b, " ", 1);
	put(&b, "\n", 1);
	put(&b, data, n);
	return b;
}

static const char *save_npy(const char *name, int major, const char *descr, bool fortran,
			    const char *shape, const void *data, size_t n)
{
	struct bytes b = npy(major, descr, fortran, shape, data, n);
	const char *p = save(name, &b, false);
	free(b.p);
	return p;
}

/* Standard u8 labels for N_IMG images. */
static const char *save_labels_npy(void)
{
	return save_npy("lab.npy", 1, "|u1", false, "(3,)", want_labels, N_IMG);
}

static void check_fixture(const struct dataset *ds)
{
	cr_assert_eq(ds->n, N_IMG);
	cr_assert_eq(ds->c, 1);
	cr_assert_eq(ds->h, IMG_H);
	cr_assert_eq(ds->w, IMG_W);
	cr_assert_eq(ds->n_classes, 3);
	for (int i = 0; i < N_IMG; i++) {
		cr_assert_eq(ds->labels[i], want_labels[i]);
		for (int y = 0; y < IMG_H; y++)
			for (int x = 0; x < IMG_W; x++) {
				int k = (i * IMG_H + y) * IMG_W + x;
				float v = ds->u8 ? ds->u8[k] : ds->f32[k];
				cr_assert_eq(v, pixel(i, y, x), "image %d (%d,%d)", i, y, x);
			}
	}
}

/* ---- IDX ------------------------------------------------------------------ */

Test(dataset, idx_raw_loads)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(false, &img, &lab);
	cr_assert_eq(dataset_load_idx(img, lab, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert(ds->u8 && !ds->f32 && !ds->hwc);
	check_fixture(ds);
	dataset_free(ds);
	dataset_free(NULL);
}

Test(dataset, idx_gzip_loads)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(true, &img, &lab);
	cr_assert_eq(dataset_load_idx(img, lab, &ds), PRESSO_OK, "%s", status_msg());
	check_fixture(ds);
	dataset_free(ds);
}

Test(dataset, idx_wrong_image_magic)
{
	struct bytes bi = idx_images(0x804, N_IMG), bl = idx_labels(0x801, N_IMG);
	const char *img = keep(save("img.idx", &bi, false));
	const char *lab = save("lab.idx", &bl, false);
	struct dataset *ds = (void *)1;
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT,
		     "magic is 0x00000804, expected 0x00000803");
	cr_assert(strstr(status_msg(), "img.idx"));
	cr_assert_null(ds);
	free(bi.p);
	free(bl.p);
}

Test(dataset, idx_wrong_label_magic)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(true, &img, &lab);
	/* The paths swapped: the image file is read where labels belong. */
	ASSERT_FAILS(dataset_load_idx(lab, img, &ds), PRESSO_E_FORMAT,
		     "magic is 0x00000801, expected 0x00000803");
	cr_assert(strstr(status_msg(), "swapped"));
	struct bytes bl = idx_labels(0x0901, N_IMG);
	lab = save("lab2.idx", &bl, false);
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT,
		     "magic is 0x00000901, expected 0x00000801");
	free(bl.p);
}

Test(dataset, idx_truncated_image_file)
{
	struct bytes bi = idx_images(0x803, N_IMG), bl = idx_labels(0x801, N_IMG);
	bi.n -= 1;
	const char *img = keep(save("img.gz", &bi, true));
	const char *lab = save("lab.idx", &bl, false);
	struct dataset *ds = NULL;
	/* 16-byte header + 3x2x3 pixels = 34 bytes; one is missing. */
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT,
		     "truncated: expected 34 bytes");
	cr_assert(strstr(status_msg(), "holds only 33"), "%s", status_msg());
	cr_assert(strstr(status_msg(), "img.gz"));
	bi.n = 10; /* inside the header */
	img = save("img.idx", &bi, false);
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT, "truncated");
	bi.n = 0;
	img = save("empty.idx", &bi, false);
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT, "holds only 0");
	free(bi.p);
	free(bl.p);
}

Test(dataset, idx_truncated_gzip_stream)
{
	struct bytes bi = idx_images(0x803, 200), bl = idx_labels(0x801, 200);
	const char *img = keep(save("img.gz", &bi, true));
	const char *lab = save("lab.idx", &bl, false);
	size_t n;
	char *gz = fx_read(img, &n);
	cr_assert(gz && n > 30);
	cr_assert(fx_write(img, gz, n - 12)); /* drops the CRC/size trailer and more */
	free(gz);
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT, "truncated gzip stream");
	cr_assert(strstr(status_msg(), "img.gz"), "%s", status_msg());
	free(bi.p);
	free(bl.p);
}

Test(dataset, idx_trailing_bytes)
{
	struct bytes bi = idx_images(0x803, N_IMG), bl = idx_labels(0x801, N_IMG);
	put(&bl, "xyz", 3);
	const char *img = keep(save("img.idx", &bi, false));
	const char *lab = save("lab.idx", &bl, false);
	struct dataset *ds = NULL;
	/* 8-byte header + 3 labels = 11 bytes, plus 3 of garbage. */
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT,
		     "3 trailing bytes: expected 11 bytes");
	cr_assert(strstr(status_msg(), "holds 14"), "%s", status_msg());
	free(bi.p);
	free(bl.p);
}

Test(dataset, idx_count_mismatch)
{
	struct bytes bi = idx_images(0x803, N_IMG), bl = idx_labels(0x801, 2);
	const char *img = keep(save("img.idx", &bi, false));
	const char *lab = save("lab.idx", &bl, false);
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_idx(img, lab, &ds), PRESSO_E_FORMAT, "holds 3 images");
	cr_assert(strstr(status_msg(), "holds 2 labels"), "%s", status_msg());
	free(bi.p);
	free(bl.p);
}

Test(dataset, missing_file)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(false, &img, &lab);
	const char *missing = fx_join(tmp, "nope.idx");
	ASSERT_FAILS(dataset_load_idx(missing, lab, &ds), PRESSO_E_IO, "nope.idx");
	cr_assert(strstr(status_msg(), "No such file"), "%s", status_msg());
	ASSERT_FAILS(dataset_load_npy(img, missing, false, &ds), PRESSO_E_FORMAT, "not an NPY");
	ASSERT_FAILS(dataset_load_idx(img, tmp, &ds), PRESSO_E_IO, "is a folder, not a dataset file");
}

/* ---- NPY ------------------------------------------------------------------ */

Test(dataset, npy_u8_3d_loads)
{
	uint8_t pix[N_IMG * IMG_H * IMG_W];
	for (int i = 0; i < N_IMG; i++)
		for (int y = 0; y < IMG_H; y++)
			for (int x = 0; x < IMG_W; x++)
				pix[(i * IMG_H + y) * IMG_W + x] = pixel(i, y, x);
	const char *img = keep(save_npy("img.npy", 1, "|u1", false, "(3, 2, 3)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert(ds->u8);
	check_fixture(ds);
	dataset_free(ds);
}

Test(dataset, npy_f32_v2_loads)
{
	float pix[N_IMG * IMG_H * IMG_W];
	for (int i = 0; i < N_IMG; i++)
		for (int y = 0; y < IMG_H; y++)
			for (int x = 0; x < IMG_W; x++)
				pix[(i * IMG_H + y) * IMG_W + x] = pixel(i, y, x);
	/* Format 2.0, 4-D with one channel; the data is little-endian as on x86. */
	const char *img =
		keep(save_npy("img.npy", 2, "<f4", false, "(3, 1, 2, 3)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert(ds->f32 && !ds->u8);
	check_fixture(ds);
	dataset_free(ds);
}

/* float64, numpy's default for float arrays, little- and big-endian: read
 * as float32; a value past float32's range is refused like a NaN. */
Test(dataset, npy_f64_loads_as_float32)
{
	double pix[N_IMG * IMG_H * IMG_W];
	unsigned char be[sizeof pix];
	for (int i = 0; i < N_IMG; i++)
		for (int y = 0; y < IMG_H; y++)
			for (int x = 0; x < IMG_W; x++)
				pix[(i * IMG_H + y) * IMG_W + x] = pixel(i, y, x);
	for (size_t i = 0; i < sizeof pix / sizeof pix[0]; i++)
		for (int k = 0; k < 8; k++)
			be[8 * i + (size_t)k] = ((unsigned char *)&pix[i])[7 - k];
	for (int big = 0; big < 2; big++) {
		const char *img = keep(save_npy("img.npy", 1, big ? ">f8" : "<f8", false,
						"(3, 2, 3)", big ? (void *)be : (void *)pix,
						sizeof pix));
		const char *lab = save_labels_npy();
		struct dataset *ds = NULL;
		cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s", status_msg());
		cr_assert(ds->f32 && !ds->u8);
		check_fixture(ds);
		dataset_free(ds);
		/* and as a tensor (presso run --input) */
		int64_t dims[8];
		int nd;
		float *t;
		cr_assert_eq(dataset_load_npy_tensor(img, 8, dims, &nd, &t), PRESSO_OK, "%s",
			     status_msg());
		cr_assert(nd == 3 && dims[0] == 3 && dims[1] == 2 && dims[2] == 3);
		for (int i = 0; i < N_IMG * IMG_H * IMG_W; i++)
			cr_assert_eq(t[i], (float)pix[i], "element %d", i);
		free(t);
	}
	pix[7] = 1e39;
	const char *img = keep(save_npy("img.npy", 1, "<f8", false, "(3, 2, 3)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT,
		     "image 1 holds a non-finite or out-of-float32-range value at element 1");
}

Test(dataset, npy_gzip_loads)
{
	uint8_t pix[N_IMG * IMG_H * IMG_W];
	for (int k = 0; k < N_IMG * IMG_H * IMG_W; k++)
		pix[k] = (uint8_t)k;
	struct bytes b = npy(1, "|u1", false, "(3,2,3)", pix, sizeof pix);
	const char *img = keep(save("img.npy.gz", &b, true));
	free(b.p);
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(ds->u8[17], 17);
	dataset_free(ds);
}

/* Every supported label dtype converts to int32, in both byte orders. */
Test(dataset, npy_label_dtypes)
{
	uint8_t pix[N_IMG * 4] = {0};
	const char *img = keep(save_npy("img.npy", 1, "|u1", false, "(3, 2, 2)", pix, sizeof pix));
	static const struct {
		const char *descr;
		int bytes;
		bool big;
	} types[] = {{"|u1", 1, false}, {"|i1", 1, false}, {"<i2", 2, false}, {"<i4", 4, false},
		     {"<i8", 8, false}, {"<u2", 2, false}, {"<u4", 4, false}, {"<u8", 8, false},
		     {">i4", 4, true},  {">u2", 2, true}};
	static const uint32_t vals[N_IMG] = {7, 0, 300};
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
		unsigned char data[N_IMG * 8] = {0};
		int nb = types[t].bytes;
		for (int i = 0; i < N_IMG; i++) {
			uint32_t v = nb == 1 ? vals[i] % 128 : vals[i];
			for (int k = 0; k < nb && k < 4; k++) {
				int at = types[t].big ? nb - 1 - k : k;
				data[i * nb + at] = (unsigned char)(v >> (8 * k));
			}
		}
		const char *lab = save_npy("lab.npy", 1, types[t].descr, false, "(3,)", data,
					   (size_t)(N_IMG * nb));
		struct dataset *ds = NULL;
		cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s: %s",
			     types[t].descr, status_msg());
		for (int i = 0; i < N_IMG; i++)
			cr_assert_eq(ds->labels[i], (int32_t)(nb == 1 ? vals[i] % 128 : vals[i]),
				     "%s label %d", types[t].descr, i);
		cr_assert_eq(ds->n_classes, nb == 1 ? 45 : 301);
		dataset_free(ds);
	}
}

Test(dataset, npy_negative_label)
{
	uint8_t pix[N_IMG * 4] = {0};
	const char *img = keep(save_npy("img.npy", 1, "|u1", false, "(3, 2, 2)", pix, sizeof pix));
	int16_t labels[N_IMG] = {1, -1, 0};
	const char *lab = save_npy("lab.npy", 1, "<i2", false, "(3,)", labels, sizeof labels);
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT, "label 1 is -1");
	cr_assert_null(ds);
}

Test(dataset, npy_bad_header)
{
	uint8_t pix[12] = {0};
	const char *lab = keep(save_labels_npy());
	struct dataset *ds = NULL;
	/* A shape that is not a tuple. */
	const char *img = save_npy("img.npy", 1, "|u1", false, "[3, 2, 2]", pix, sizeof pix);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT,
		     "malformed NPY header");
	/* Not an NPY file at all. */
	struct bytes b = {0};
	put(&b, "hello world, not numpy", 22);
	img = save("junk.npy", &b, false);
	free(b.p);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT, "not an NPY file");
	/* An IDX file given as NPY gets a hint. */
	b = idx_images(0x803, N_IMG);
	img = save("img.idx", &b, false);
	free(b.p);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT,
		     "set data.format to \"idx\"");
	/* A header length that runs past the end of the file. */
	b = npy(1, "|u1", false, "(3, 2, 2)", pix, sizeof pix);
	b.p[8] = 0xff;
	b.p[9] = 0x7f;
	img = save("long.npy", &b, false);
	free(b.p);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT, "truncated");
	/* An unknown format version. */
	b = npy(1, "|u1", false, "(3, 2, 2)", pix, sizeof pix);
	b.p[6] = 9;
	img = save("v9.npy", &b, false);
	free(b.p);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "version 9.0");
}

Test(dataset, npy_fortran_order)
{
	uint8_t pix[12] = {0};
	const char *img = keep(save_npy("img.npy", 1, "|u1", true, "(3, 2, 2)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "Fortran order");
}

Test(dataset, npy_unsupported_dtype)
{
	uint16_t pix[12] = {0};
	const char *img = keep(save_npy("img.npy", 1, "<f2", false, "(3, 2, 2)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "dtype '<f2' is not supported for images (expected '|u1', '<f4' or '<f8')");
	float fl[N_IMG] = {0, 1, 2};
	img = keep(save_npy("img.npy", 1, "|u1", false, "(3, 2, 2)", pix, 12));
	lab = save_npy("lab.npy", 1, "<f4", false, "(3,)", fl, sizeof fl);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "dtype '<f4' is not supported for labels");
}

Test(dataset, npy_wrong_size)
{
	uint8_t pix[13] = {0};
	const char *lab = keep(save_labels_npy());
	struct dataset *ds = NULL;
	/* The header plus 3x2x2 bytes are expected; give 11, then 13. */
	struct bytes b = npy(1, "|u1", false, "(3, 2, 2)", pix, 11);
	size_t want = b.n - 11 + 12;
	char needle[96];
	const char *img = save("img.npy", &b, false);
	free(b.p);
	snprintf(needle, sizeof needle, "truncated: expected %zu bytes", want);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT, needle);
	img = save_npy("img.npy", 1, "|u1", false, "(3, 2, 2)", pix, 13);
	snprintf(needle, sizeof needle, "1 trailing bytes: expected %zu bytes", want);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT, needle);
	/* A 2-D array holds vectors (1 x d images); 5-D is no image array. */
	img = save_npy("img.npy", 1, "|u1", false, "(3, 4)", pix, 12);
	cr_assert_eq(dataset_load_npy(img, lab, false, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert(ds->n == 3 && ds->c == 1 && ds->h == 1 && ds->w == 4);
	dataset_free(ds);
	ds = NULL;
	img = save_npy("img.npy", 1, "|u1", false, "(3, 1, 2, 2, 1)", pix, 12);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "expected [n, d], [n, h, w]");
	/* 28 "channels": a [n,h,w,c] array read without channels_last. */
	uint8_t big[3 * 2 * 2 * 28] = {0};
	img = save_npy("img.npy", 1, "|u1", false, "(3, 28, 2, 2)", big, sizeof big);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_UNSUPPORTED,
		     "set data.channels_last");
	/* Image and label counts differ. */
	img = save_npy("img.npy", 1, "|u1", false, "(2, 2, 3)", pix, 12);
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT,
		     "holds 2 images but");
	cr_assert(strstr(status_msg(), "holds 3 labels"), "%s", status_msg());
}

Test(dataset, npy_non_finite_pixel)
{
	float pix[12] = {0};
	pix[7] = NAN;
	const char *img = keep(save_npy("img.npy", 1, "<f4", false, "(3, 2, 2)", pix, sizeof pix));
	const char *lab = save_labels_npy();
	struct dataset *ds = NULL;
	ASSERT_FAILS(dataset_load_npy(img, lab, false, &ds), PRESSO_E_FORMAT,
		     "image 1 holds a non-finite value at element 3");
}

/* ---- batches ---------------------------------------------------------------- */

Test(dataset, batch_normalises_bytes)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(false, &img, &lab);
	cr_assert_eq(dataset_load_idx(img, lab, &ds), PRESSO_OK, "%s", status_msg());
	struct normalize norm = {.scale = 1.0f / 255, .n_channels = 1, .mean = {0.25f},
				 .std = {0.5f}};
	cr_assert_eq(dataset_check_normalize(ds, &norm), PRESSO_OK);
	int64_t idx[2] = {2, 0};
	float x[2 * IMG_H * IMG_W];
	int32_t y[2];
	dataset_get_batch(ds, &norm, idx, 2, false, x, y);
	cr_assert_eq(y[0], want_labels[2]);
	cr_assert_eq(y[1], want_labels[0]);
	for (int b = 0; b < 2; b++)
		for (int p = 0; p < IMG_H * IMG_W; p++) {
			float raw = pixel((int)idx[b], p / IMG_W, p % IMG_W);
			float want = (raw * (1.0f / 255) - 0.25f) / 0.5f;
			cr_assert_float_eq(x[b * IMG_H * IMG_W + p], want, 1e-7f);
		}
	/* No normalisation: raw values; y may be NULL. */
	dataset_get_batch(ds, NULL, idx, 1, true, x, NULL);
	cr_assert_eq(x[4], pixel(2, 1, 1));
	/* Three means for a one-channel dataset. */
	norm.n_channels = 3;
	ASSERT_FAILS(dataset_check_normalize(ds, &norm), PRESSO_E_CONFIG, "data.normalize");
	dataset_free(ds);
}

/* Three-channel float images stored [n,c,h,w] and [n,h,w,c] give the same batch,
 * in either output layout, with per-channel mean and std. */
Test(dataset, batch_layouts)
{
	enum { N = 2, C = 3, H = 2, W = 2, PER = C * H * W };
	float chw[N * PER], hwc[N * PER];
	for (int i = 0; i < N; i++)
		for (int c = 0; c < C; c++)
			for (int p = 0; p < H * W; p++) {
				float v = (float)(100 * i + 10 * c + p);
				chw[i * PER + c * H * W + p] = v;
				hwc[i * PER + p * C + c] = v;
			}
	int32_t labels[N] = {4, 1};
	const char *lab = keep(save_npy("lab.npy", 1, "<i4", false, "(2,)", labels, sizeof labels));
	const char *a = keep(save_npy("chw.npy", 1, "<f4", false, "(2, 3, 2, 2)", chw, sizeof chw));
	const char *b = keep(save_npy("hwc.npy", 1, "<f4", false, "(2, 2, 2, 3)", hwc, sizeof hwc));
	struct dataset *da = NULL, *db = NULL;
	cr_assert_eq(dataset_load_npy(a, lab, false, &da), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(dataset_load_npy(b, lab, true, &db), PRESSO_OK, "%s", status_msg());
	cr_assert(!da->hwc && db->hwc);
	cr_assert_eq(db->c, C);
	cr_assert_eq(db->h, H);
	cr_assert_eq(db->n_classes, 5);
	struct normalize norm = {.scale = 0.5f, .n_channels = 3, .mean = {1, 2, 3},
				 .std = {2, 4, 8}};
	cr_assert_eq(dataset_check_normalize(da, &norm), PRESSO_OK);
	int64_t idx[N] = {1, 0};
	float xa[N * PER], xb[N * PER], ya[N * PER], yb[N * PER];
	dataset_get_batch(da, &norm, idx, N, false, xa, NULL);
	dataset_get_batch(db, &norm, idx, N, false, xb, NULL);
	dataset_get_batch(da, &norm, idx, N, true, ya, NULL);
	dataset_get_batch(db, &norm, idx, N, true, yb, NULL);
	for (int i = 0; i < N; i++)
		for (int c = 0; c < C; c++)
			for (int p = 0; p < H * W; p++) {
				float raw = (float)(100 * idx[i] + 10 * c + p);
				float want = (raw * 0.5f - norm.mean[c]) / norm.std[c];
				int nchw = i * PER + c * H * W + p, nhwc = i * PER + p * C + c;
				cr_assert_eq(xa[nchw], want);
				cr_assert_eq(xb[nchw], want);
				cr_assert_eq(ya[nhwc], want);
				cr_assert_eq(yb[nhwc], want);
			}
	dataset_free(da);
	dataset_free(db);
}

/* A mean/std count that fits neither 1 nor the channels names the field, its
 * count, the images and what to give, phrased for one channel and for several. */
Test(dataset, normalize_count_message_names_field_and_images)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(false, &img, &lab);
	cr_assert_eq(dataset_load_idx(img, lab, &ds), PRESSO_OK, "%s", status_msg());
	struct normalize norm = {.scale = 1, .n_channels = 3, .n_mean = 3, .n_std = 1,
				 .mean = {1, 2, 3}, .std = {1, 1, 1}};
	ASSERT_FAILS(dataset_check_normalize(ds, &norm), PRESSO_E_CONFIG,
		     "data.normalize.mean has 3 values, but the images of ");
	cr_assert(strstr(status_msg(), img), "names the images: %s", status_msg());
	cr_assert(strstr(status_msg(), "have 1 channel: give 1 value"), "%s", status_msg());
	cr_assert_null(strstr(status_msg(), " or 1"), "%s", status_msg());
	norm.n_mean = 1;
	norm.n_std = 3;
	ASSERT_FAILS(dataset_check_normalize(ds, &norm), PRESSO_E_CONFIG,
		     "data.normalize.std has 3 values");
	dataset_free(ds);

	enum { N = 2, C = 3, H = 2, W = 2 };
	float pixels[N * C * H * W] = {0};
	int32_t labels[N] = {0, 1};
	const char *l = keep(save_npy("l3.npy", 1, "<i4", false, "(2,)", labels, sizeof labels));
	const char *x = keep(save_npy("x3.npy", 1, "<f4", false, "(2, 3, 2, 2)", pixels,
				      sizeof pixels));
	cr_assert_eq(dataset_load_npy(x, l, false, &ds), PRESSO_OK, "%s", status_msg());
	norm = (struct normalize){.scale = 1, .n_channels = 2, .n_mean = 2, .n_std = 2,
				  .mean = {1, 2}, .std = {1, 1}};
	ASSERT_FAILS(dataset_check_normalize(ds, &norm), PRESSO_E_CONFIG,
		     "data.normalize.mean and .std have 2 values, but the images of ");
	cr_assert(strstr(status_msg(), "have 3 channels: give 1 (shared by all channels) or 3"),
		  "%s", status_msg());
	dataset_free(ds);
}

/* Paths that are not regular files are refused at once, saying what they are. */
Test(dataset, non_regular_files_are_refused, .timeout = 20)
{
	const char *img, *lab;
	struct dataset *ds = NULL;
	write_idx_pair(false, &img, &lab);
	ASSERT_FAILS(dataset_load_idx("/dev/zero", lab, &ds), PRESSO_E_IO,
		     "/dev/zero: is a device, not a dataset file");
	ASSERT_FAILS(dataset_load_idx(img, "/dev/zero", &ds), PRESSO_E_IO,
		     "/dev/zero: is a device, not a dataset file");
	ASSERT_FAILS(dataset_load_npy("/dev/zero", lab, false, &ds), PRESSO_E_IO,
		     "/dev/zero: is a device, not a dataset file");
	ASSERT_FAILS(dataset_load_npy(tmp, lab, false, &ds), PRESSO_E_IO,
		     "is a folder, not a dataset file");
	cr_assert_null(ds);
}

/* ---- splits ------------------------------------------------------------------ */

Test(dataset, splits_disjoint_and_sized)
{
	enum { N = 1000 };
	struct split c, v;
	cr_assert_eq(dataset_make_splits(N, 1, 100, 300, &c, &v), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(c.n, 100);
	cr_assert_eq(v.n, 300);
	char seen[N] = {0};
	for (int64_t i = 0; i < c.n; i++) {
		cr_assert(c.indices[i] >= 0 && c.indices[i] < N);
		cr_assert_eq(seen[c.indices[i]]++, 0, "index %lld twice", (long long)c.indices[i]);
	}
	for (int64_t i = 0; i < v.n; i++) {
		cr_assert(v.indices[i] >= 0 && v.indices[i] < N);
		cr_assert_eq(seen[v.indices[i]]++, 0, "index %lld twice", (long long)v.indices[i]);
	}
	split_free(&c);
	split_free(&v);
	split_free(NULL);
	/* The whole set, exactly. */
	cr_assert_eq(dataset_make_splits(10, 3, 4, 6, &c, &v), PRESSO_OK);
	cr_assert_eq(c.n + v.n, 10);
	split_free(&c);
	split_free(&v);
}

Test(dataset, splits_deterministic_per_seed)
{
	struct split c1, v1, c2, v2, c3, v3;
	cr_assert_eq(dataset_make_splits(60000, 1, 1000, 5000, &c1, &v1), PRESSO_OK);
	cr_assert_eq(dataset_make_splits(60000, 1, 1000, 5000, &c2, &v2), PRESSO_OK);
	cr_assert_eq(dataset_make_splits(60000, 2, 1000, 5000, &c3, &v3), PRESSO_OK);
	cr_assert_arr_eq(c1.indices, c2.indices, 1000 * sizeof(int64_t));
	cr_assert_arr_eq(v1.indices, v2.indices, 5000 * sizeof(int64_t));
	cr_assert_arr_neq(c1.indices, c3.indices, 1000 * sizeof(int64_t));
	cr_assert_arr_neq(v1.indices, v3.indices, 5000 * sizeof(int64_t));
	/* Golden values: splitmix64-seeded xoshiro256** with rejection-bounded
	 * Fisher-Yates (checked against an independent Python version). Changing
	 * them changes every stored study's splits. */
	static const int64_t want_c[4] = {59557, 21927, 50450, 3677};
	static const int64_t want_v[4] = {31394, 15054, 51095, 54272};
	cr_assert_arr_eq(c1.indices, want_c, sizeof want_c);
	cr_assert_arr_eq(v1.indices, want_v, sizeof want_v);
	split_free(&c1);
	split_free(&v1);
	split_free(&c2);
	split_free(&v2);
	split_free(&c3);
	split_free(&v3);
}

Test(dataset, splits_too_large)
{
	struct split c = {7, (int64_t *)1}, v = {7, (int64_t *)1};
	ASSERT_FAILS(dataset_make_splits(100, 1, 60, 41, &c, &v), PRESSO_E_CONFIG,
		     "calibration (60) + validation (41) images exceed the 100 training images");
	cr_assert(c.n == 0 && !c.indices && v.n == 0 && !v.indices);
	ASSERT_FAILS(dataset_make_splits(100, 1, -1, 4, &c, &v), PRESSO_E_CONFIG, "negative");
}

Test(dataset, split_range)
{
	struct split s;
	cr_assert_eq(split_range(10, 0, &s), PRESSO_OK);
	cr_assert_eq(s.n, 10);
	cr_assert_eq(s.indices[9], 9);
	split_free(&s);
	cr_assert_eq(split_range(10, 4, &s), PRESSO_OK);
	cr_assert_eq(s.n, 4);
	cr_assert_eq(s.indices[3], 3);
	split_free(&s);
	ASSERT_FAILS(split_range(10, 11, &s), PRESSO_E_CONFIG, "the test set has 10");
}

/* ---- the real Fashion-MNIST --------------------------------------------------- */

/* Known values read from Debian's files with Python's gzip module. */
Test(dataset, fashion_mnist_train)
{
	if (!fx_have_fmnist())
		cr_skip_test("Fashion-MNIST is not installed (dataset-fashion-mnist)");
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_idx(FX_FMNIST_DIR "/train-images-idx3-ubyte.gz",
				      FX_FMNIST_DIR "/train-labels-idx1-ubyte.gz", &ds),
		     PRESSO_OK, "%s", status_msg());
	cr_assert_eq(ds->n, 60000);
	cr_assert_eq(ds->h, 28);
	cr_assert_eq(ds->w, 28);
	cr_assert_eq(ds->c, 1);
	cr_assert_eq(ds->n_classes, 10);
	static const int32_t first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ds->labels[i], first[i], "label %d", i);
	cr_assert_eq(ds->labels[59999], 5);
	long sum = 0;
	for (int p = 0; p < 784; p++)
		sum += ds->u8[p];
	cr_assert_eq(sum, 76247);
	cr_assert_eq(ds->u8[417], 255);
	dataset_free(ds);
}

Test(dataset, fashion_mnist_test)
{
	if (!fx_have_fmnist())
		cr_skip_test("Fashion-MNIST is not installed (dataset-fashion-mnist)");
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_idx(FX_FMNIST_DIR "/t10k-images-idx3-ubyte.gz",
				      FX_FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", &ds),
		     PRESSO_OK, "%s", status_msg());
	cr_assert_eq(ds->n, 10000);
	cr_assert_eq(ds->n_classes, 10);
	static const int32_t first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ds->labels[i], first[i], "label %d", i);
	cr_assert_eq(ds->labels[9999], 5);
	long sum = 0;
	for (int p = 0; p < 784; p++)
		sum += ds->u8[p];
	cr_assert_eq(sum, 33456);
	dataset_free(ds);
}
