/* test_dataset_folder.c - image-folder datasets (src/data/image_folder.c).
 *
 * The test writes its folders itself: PNGs with libpng (RGB, gray, RGBA) and
 * JPEGs with libjpeg (RGB, gray), in class folders with a subfolder, hidden
 * entries and other files that must be skipped. Each loaded image is checked
 * against a reference the test computes on its own: the pixels it wrote (the
 * JPEGs decoded with libjpeg here), converted, resized with the documented
 * triangle filter written as a 2-D sum of separately normalised weights, and
 * centre-cropped. The loader rounds once, so every byte must be within half a
 * step of the exact value. The batch it then feeds is checked against
 * (x * scale - mean[c]) / std[c] of the loaded bytes. Every class of bad input
 * gets a test naming the file or folder.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <jpeglib.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

/* The loader rounds the exact resized value once, half up: within half a step.
 * The margin covers double rounding in the reference's own sums. */
#define ROUNDING_TOLERANCE (0.5 + 1e-9)
/* A normalised value is one float expression of the byte: exact up to float. */
#define NORMALISED_TOLERANCE 1e-5

static char *dir;

static void setup(void)
{
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
}

static void teardown(void)
{
	cr_assert(fx_rmtree(dir));
	free(dir);
}

TestSuite(dataset_folder, .init = setup, .fini = teardown);

/* dir/rel (rotating static buffers), creating the folders on the way. */
static const char *at(const char *rel)
{
	static char buf[8][1024];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", dir, rel);
	for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	return p;
}

/* ---- writing images -------------------------------------------------------- */

static void write_png(const char *path, int w, int h, int channels, const unsigned char *px)
{
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	im.width = (png_uint_32)w;
	im.height = (png_uint_32)h;
	im.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
	cr_assert(png_image_write_to_file(&im, path, 0, px, 0, NULL), "%s: %s", path, im.message);
}

static void write_jpeg(const char *path, int w, int h, int channels, const unsigned char *px)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr err;
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	c.err = jpeg_std_error(&err);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, f);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = channels;
	c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w * (size_t)channels);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	fclose(f);
}

/* The RGB pixels libjpeg decodes a file to (malloc'd). */
static unsigned char *read_jpeg_rgb(const char *path, int *w, int *h)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr err;
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	d.err = jpeg_std_error(&err);
	jpeg_create_decompress(&d);
	jpeg_stdio_src(&d, f);
	jpeg_read_header(&d, TRUE);
	d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	*w = (int)d.output_width;
	*h = (int)d.output_height;
	unsigned char *px = malloc((size_t)*w * (size_t)*h * 3);
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = px + (size_t)d.output_scanline * (size_t)*w * 3;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	fclose(f);
	return px;
}

/* Deterministic pixels: channel k of (x, y) in image `seed`. */
static unsigned char *pattern(int w, int h, int channels, int seed)
{
	unsigned char *p = malloc((size_t)w * (size_t)h * (size_t)channels);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < channels; k++)
				p[((size_t)y * w + x) * channels + k] =
					(unsigned char)((x * 37 + y * 91 + k * 53 + seed * 17) % 256);
	return p;
}

/* ---- the reference ------------------------------------------------------------ */

/* An image as the reference holds it: doubles, [h, w, c]. */
struct ref {
	int w, h, c;
	double *v;
};

/* The documented filter's weight of input pixel i for output o, n_in -> n_out,
 * before normalisation. */
static double tri(int n_in, int n_out, int o, int i)
{
	double scale = (double)n_in / n_out, f = scale > 1 ? scale : 1;
	double centre = (o + 0.5) * scale, x = 1 - fabs(i + 0.5 - centre) / f;
	return x > 0 ? x : 0;
}

static double weight(int n_in, int n_out, int o, int i)
{
	double sum = 0;
	for (int j = 0; j < n_in; j++)
		sum += tri(n_in, n_out, o, j);
	return tri(n_in, n_out, o, i) / sum;
}

/* The reference of an RGB image: converted, resized (shorter side to `resize`,
 * 0: none), centre-cropped to ch x cw (0: none). */
static struct ref reference(const unsigned char *rgb, int w, int h, enum folder_channels chans,
			    int resize, int ch, int cw)
{
	struct ref r = {w, h, chans == FOLDER_GRAY ? 1 : 3, NULL};
	r.v = malloc(sizeof(double) * (size_t)w * (size_t)h * (size_t)r.c);
	for (int i = 0; i < w * h; i++) {
		const unsigned char *p = rgb + 3 * i;
		if (chans == FOLDER_GRAY) {
			r.v[i] = (double)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
		} else {
			for (int k = 0; k < 3; k++)
				r.v[3 * i + k] = p[chans == FOLDER_BGR ? 2 - k : k];
		}
	}
	if (resize) {
		int oh, ow;
		if (h <= w) {
			oh = resize;
			ow = (int)((double)resize * w / h);
		} else {
			ow = resize;
			oh = (int)((double)resize * h / w);
		}
		double *o = calloc((size_t)ow * (size_t)oh * (size_t)r.c, sizeof(double));
		for (int y = 0; y < oh; y++)
			for (int x = 0; x < ow; x++)
				for (int j = 0; j < h; j++)
					for (int i = 0; i < w; i++) {
						double wt = weight(h, oh, y, j) * weight(w, ow, x, i);
						for (int k = 0; k < r.c; k++)
							o[((size_t)y * ow + x) * r.c + k] +=
								wt * r.v[((size_t)j * w + i) * r.c + k];
					}
		free(r.v);
		r.v = o;
		r.w = ow;
		r.h = oh;
	}
	if (ch) {
		/* torchvision's int(round((h - ch) / 2.0)): ties to even */
		int top = (int)nearbyint((r.h - ch) / 2.0), left = (int)nearbyint((r.w - cw) / 2.0);
		double *o = malloc(sizeof(double) * (size_t)ch * (size_t)cw * (size_t)r.c);
		for (int y = 0; y < ch; y++)
			for (int x = 0; x < cw; x++)
				for (int k = 0; k < r.c; k++)
					o[((size_t)y * cw + x) * r.c + k] =
						r.v[((size_t)(top + y) * r.w + left + x) * r.c + k];
		free(r.v);
		r.v = o;
		r.w = cw;
		r.h = ch;
	}
	return r;
}

static void check_image(const struct dataset *ds, int64_t index, const struct ref *r,
			const char *what)
{
	cr_assert(ds->h == r->h && ds->w == r->w && ds->c == r->c,
		  "%s: dataset images %dx%dx%d, reference %dx%dx%d", what, ds->w, ds->h, ds->c,
		  r->w, r->h, r->c);
	const unsigned char *got = ds->u8 + index * ds->h * ds->w * ds->c;
	for (int i = 0; i < r->h * r->w * r->c; i++)
		cr_assert(fabs(got[i] - r->v[i]) <= ROUNDING_TOLERANCE,
			  "%s: byte %d (y %d, x %d, c %d) is %d, exact %.6f", what, i,
			  i / r->c / r->w, i / r->c % r->w, i % r->c, got[i], r->v[i]);
}

/* ---- the fixture folder ----------------------------------------------------- */

struct fixture {
	const char *rel;      /* under train/ */
	int w, h, channels;   /* as written */
	bool jpeg;
	int seed;
};

/* The train folder: sorted classes ant, cat, dog; the images in load order. */
static const struct fixture train_images[] = {
	{"ant/a1.png", 8, 6, 3, false, 1},       /* RGB PNG */
	{"ant/sub/a2.png", 6, 6, 1, false, 2},   /* gray PNG, in a subfolder */
	{"cat/c1.jpg", 8, 8, 3, true, 3},        /* RGB JPEG */
	{"dog/d0.jpeg", 6, 9, 1, true, 4},       /* gray JPEG, taller than wide */
	{"dog/d1.PNG", 10, 6, 4, false, 5},      /* RGBA PNG, upper-case name */
};
static const int32_t train_labels[] = {0, 0, 1, 2, 2};
#define N_TRAIN (sizeof train_images / sizeof train_images[0])

static void write_fixture(const char *root, const struct fixture *f)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", root, f->rel);
	unsigned char *px = pattern(f->w, f->h, f->channels, f->seed);
	if (f->jpeg)
		write_jpeg(at(rel), f->w, f->h, f->channels, px);
	else
		write_png(at(rel), f->w, f->h, f->channels, px);
	free(px);
}

/* The RGB pixels presso should decode from a fixture (malloc'd). */
static unsigned char *fixture_rgb(const char *root, const struct fixture *f)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", root, f->rel);
	if (f->jpeg) {
		int w, h;
		unsigned char *px = read_jpeg_rgb(at(rel), &w, &h);
		cr_assert(w == f->w && h == f->h);
		return px;
	}
	unsigned char *src = pattern(f->w, f->h, f->channels, f->seed);
	unsigned char *rgb = malloc((size_t)f->w * (size_t)f->h * 3);
	for (int i = 0; i < f->w * f->h; i++)
		for (int k = 0; k < 3; k++) /* gray repeated; alpha dropped */
			rgb[3 * i + k] = src[(size_t)i * f->channels + (f->channels == 1 ? 0 : k)];
	free(src);
	return rgb;
}

static void write_train(void)
{
	for (size_t i = 0; i < N_TRAIN; i++)
		write_fixture("train", &train_images[i]);
	/* skipped: hidden entries, other files, a hidden class folder */
	cr_assert(fx_write(at("train/cat/.hidden.png"), "not an image", 12));
	cr_assert(fx_write(at("train/cat/notes.txt"), "not an image", 12));
	cr_assert(fx_write(at("train/.cache/x.png"), "not an image", 12));
	cr_assert(fx_write(at("train/README"), "a file beside the classes", 25));
}

static void check_all(const struct dataset *ds, const struct folder_opts *o)
{
	cr_assert_eq(ds->n, (int64_t)N_TRAIN);
	cr_assert_eq(ds->n_classes, 3);
	cr_assert(ds->hwc && ds->u8 && !ds->f32);
	for (size_t i = 0; i < N_TRAIN; i++) {
		const struct fixture *f = &train_images[i];
		cr_assert_eq(ds->labels[i], train_labels[i], "%s", f->rel);
		unsigned char *rgb = fixture_rgb("train", f);
		struct ref r = reference(rgb, f->w, f->h, o->channels, o->resize, o->crop_h, o->crop_w);
		check_image(ds, (int64_t)i, &r, f->rel);
		free(r.v);
		free(rgb);
	}
}

Test(dataset_folder, resize_crop_rgb_and_batch)
{
	write_train();
	/* shorter side to 4, then the centre 4 x 3 (h x w): 8x6 -> 5x4, 6x6 -> 4x4,
	 * 8x8 -> 4x4, 6x9 -> 4x6, 10x6 -> 6x4, each with its own crop offsets */
	struct folder_opts o = {.resize = 4, .crop_h = 4, .crop_w = 3, .channels = FOLDER_RGB};
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_folder(at("train"), NULL, &o, &ds), PRESSO_OK, "%s", status_msg());
	check_all(ds, &o);

	/* the batch a model gets: NCHW, (x * scale - mean[c]) / std[c] */
	struct normalize norm = {.scale = 1.0f / 255, .n_channels = 3, .n_mean = 3, .n_std = 3,
				 .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
	cr_assert_eq(dataset_check_normalize(ds, &norm), PRESSO_OK);
	int64_t idx[N_TRAIN];
	for (size_t i = 0; i < N_TRAIN; i++)
		idx[i] = (int64_t)(N_TRAIN - 1 - i);
	size_t per = (size_t)ds->c * ds->h * ds->w;
	float *x = malloc(sizeof(float) * per * N_TRAIN);
	int32_t y[N_TRAIN];
	dataset_get_batch(ds, &norm, idx, (int)N_TRAIN, false, x, y);
	for (size_t i = 0; i < N_TRAIN; i++) {
		cr_assert_eq(y[i], train_labels[idx[i]]);
		const unsigned char *src = ds->u8 + per * (size_t)idx[i];
		for (int k = 0; k < 3; k++)
			for (int p = 0; p < ds->h * ds->w; p++) {
				double want = (src[p * 3 + k] / 255.0 - norm.mean[k]) / norm.std[k];
				double got = x[per * i + (size_t)k * ds->h * ds->w + (size_t)p];
				cr_assert(fabs(got - want) < NORMALISED_TOLERANCE,
					  "image %zu channel %d pixel %d: %f, want %f", i, k, p, got,
					  want);
			}
	}
	free(x);
	dataset_free(ds);
}

Test(dataset_folder, gray_and_bgr_and_upscale)
{
	write_train();
	struct dataset *ds = NULL;
	/* gray, the shorter side up to 7 (bilinear), centre 7 x 7 */
	struct folder_opts o = {.resize = 7, .crop_h = 7, .crop_w = 7, .channels = FOLDER_GRAY};
	cr_assert_eq(dataset_load_folder(at("train"), NULL, &o, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(ds->c, 1);
	check_all(ds, &o);
	dataset_free(ds);
	/* BGR, no resize, the centre 5 x 5 */
	o = (struct folder_opts){.crop_h = 5, .crop_w = 5, .channels = FOLDER_BGR};
	cr_assert_eq(dataset_load_folder(at("train"), NULL, &o, &ds), PRESSO_OK, "%s", status_msg());
	check_all(ds, &o);
	dataset_free(ds);
}

Test(dataset_folder, same_size_images_need_no_crop)
{
	unsigned char *px = pattern(5, 4, 3, 9);
	write_png(at("d/b/x.png"), 5, 4, 3, px);
	write_png(at("d/a/y.png"), 5, 4, 3, px);
	struct folder_opts o = {.channels = FOLDER_RGB};
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_folder(at("d"), NULL, &o, &ds), PRESSO_OK, "%s", status_msg());
	cr_assert(ds->n == 2 && ds->w == 5 && ds->h == 4 && ds->c == 3);
	cr_assert(ds->labels[0] == 0 && ds->labels[1] == 1, "a before b");
	cr_assert_eq(memcmp(ds->u8, px, 60), 0, "no resize, no crop: the pixels as written");
	dataset_free(ds);
	/* a third of another size */
	unsigned char *other = pattern(4, 4, 3, 1);
	write_png(at("d/b/z.png"), 4, 4, 3, other);
	cr_assert_eq(dataset_load_folder(at("d"), NULL, &o, &ds), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "z.png: 4x4") && strstr(status_msg(), "need data.crop"),
		  "%s", status_msg());
	free(px);
	free(other);
}

Test(dataset_folder, test_folder_takes_the_training_classes)
{
	unsigned char *px = pattern(4, 4, 3, 2);
	write_png(at("train/a/1.png"), 4, 4, 3, px);
	write_png(at("train/b/1.png"), 4, 4, 3, px);
	write_png(at("train/c/1.png"), 4, 4, 3, px);
	/* the test folder lacks class a: c is still label 2 */
	write_png(at("test/c/1.png"), 4, 4, 3, px);
	write_png(at("test/b/1.png"), 4, 4, 3, px);
	struct folder_opts o = {.channels = FOLDER_RGB};
	struct dataset *ds = NULL;
	cr_assert_eq(dataset_load_folder(at("test"), at("train"), &o, &ds), PRESSO_OK, "%s",
		     status_msg());
	cr_assert(ds->n == 2 && ds->labels[0] == 1 && ds->labels[1] == 2);
	dataset_free(ds);
	/* a class the training folder does not have */
	write_png(at("test/zebra/1.png"), 4, 4, 3, px);
	cr_assert_eq(dataset_load_folder(at("test"), at("train"), &o, &ds), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "class 'zebra' is not a class of") &&
			  strstr(status_msg(), "a, b, c"),
		  "%s", status_msg());
	free(px);
}

/* Fails with status want and a message holding the file's path and needle. */
static void assert_fails(const char *root, const struct folder_opts *o, enum presso_status want,
			 const char *file, const char *needle)
{
	struct dataset *ds = NULL;
	enum presso_status s = dataset_load_folder(root, NULL, o, &ds);
	cr_assert_eq(s, want, "status %s (want %s): %s", status_str(s), status_str(want),
		     status_msg());
	cr_assert_null(ds);
	cr_assert(strstr(status_msg(), file), "message \"%s\" does not name %s", status_msg(), file);
	cr_assert(strstr(status_msg(), needle), "message \"%s\" lacks \"%s\"", status_msg(), needle);
}

Test(dataset_folder, bad_files_are_named)
{
	struct folder_opts o = {.resize = 4, .crop_h = 4, .crop_w = 4, .channels = FOLDER_RGB};
	unsigned char *px = pattern(8, 8, 3, 7);
	write_png(at("ok/a/good.png"), 8, 8, 3, px);

	/* a PNG signature followed by garbage */
	unsigned char bad[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	for (int i = 8; i < 64; i++)
		bad[i] = (unsigned char)(i * 7);
	cr_assert(fx_write(at("p/a/broken.png"), bad, sizeof bad));
	assert_fails(at("p"), &o, PRESSO_E_FORMAT, "p/a/broken.png", "corrupt PNG file");

	/* a PNG cut short in its image data */
	size_t n;
	char *whole = fx_read(at("ok/a/good.png"), &n);
	cr_assert(fx_write(at("t/a/cut.png"), whole, n - 30));
	assert_fails(at("t"), &o, PRESSO_E_FORMAT, "t/a/cut.png", "corrupt PNG file");
	free(whole);

	/* a JPEG cut in half: libjpeg's warning is an error */
	write_jpeg(at("jj/a/full.jpg"), 8, 8, 3, px);
	whole = fx_read(at("jj/a/full.jpg"), &n);
	cr_assert(fx_write(at("j/a/half.jpg"), whole, n / 2));
	assert_fails(at("j"), &o, PRESSO_E_FORMAT, "j/a/half.jpg", "corrupt JPEG file");
	/* only the JPEG start marker */
	cr_assert(fx_write(at("j2/a/stub.jpeg"), "\xff\xd8\xff", 3));
	assert_fails(at("j2"), &o, PRESSO_E_FORMAT, "j2/a/stub.jpeg", "corrupt JPEG file");
	free(whole);

	/* text named .png */
	cr_assert(fx_write(at("x/a/text.png"), "hello, world", 12));
	assert_fails(at("x"), &o, PRESSO_E_FORMAT, "x/a/text.png", "not a PNG or JPEG file");

	/* a class folder with no image */
	write_png(at("e/a/1.png"), 8, 8, 3, px);
	cr_assert(fx_write(at("e/b/readme.txt"), "no images here", 14));
	assert_fails(at("e"), &o, PRESSO_E_FORMAT, "e/b", "no .png, .jpg or .jpeg files");

	/* an image smaller than the crop (no resize) */
	struct folder_opts big = {.crop_h = 9, .crop_w = 9, .channels = FOLDER_RGB};
	assert_fails(at("ok"), &big, PRESSO_E_FORMAT, "ok/a/good.png", "smaller than the crop");

	/* no class folders; a missing folder; a file, not a folder */
	cr_assert(fx_write(at("flat/1.png"), "x", 1));
	assert_fails(at("flat"), &o, PRESSO_E_FORMAT, "flat", "no class folders");
	assert_fails(at("missing"), &o, PRESSO_E_IO, "missing", "No such file");
	assert_fails(at("ok/a/good.png"), &o, PRESSO_E_IO, "good.png", "not a folder");
	free(px);
}

/* ---- through the command ---------------------------------------------------- */

/* input [N,1,4,4] -> Flatten -> Gemm to 2 classes. */
static void write_gray_model(const char *path)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1, 4, 4}, 4);
	float w[2 * 16];
	for (int i = 0; i < 32; i++)
		w[i] = (float)((i * 7 % 11) - 5) / 10.0f;
	mb_init_f32(&b, "w", (int64_t[]){2, 16}, 2, w);
	mb_node(&b, "Flatten", "flat", (const char *[]){"x", NULL}, "f");
	Onnx__NodeProto *g = mb_node(&b, "Gemm", "fc", (const char *[]){"f", "w", NULL}, "y");
	mb_attr_int(&b, g, "transB", 1);
	mb_output(&b, "y");
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	cr_assert(fx_write(path, bytes, n));
	mb_free(&b);
}

Test(dataset_folder, eval_from_folders_and_a_corrupt_file, .timeout = 60)
{
	/* RGB PNGs and JPEGs of 6x6: the model's [N,1,4,4] input makes them gray,
	 * centre-cropped to 4x4, without a word in the config about either */
	for (int i = 0; i < 12; i++) {
		char rel[64];
		unsigned char *px = pattern(6, 6, 3, i);
		snprintf(rel, sizeof rel, "train/%s/%02d.%s", i % 2 ? "odd" : "even", i,
			 i % 3 ? "png" : "jpg");
		if (i % 3)
			write_png(at(rel), 6, 6, 3, px);
		else
			write_jpeg(at(rel), 6, 6, 3, px);
		if (i < 6) {
			snprintf(rel, sizeof rel, "val/%s/%02d.png", i % 2 ? "odd" : "even", i);
			write_png(at(rel), 6, 6, 3, px);
		}
		free(px);
	}
	write_gray_model(at("m.onnx"));
	const char *cfg_text =
		"{\"model\": \"m.onnx\", \"data\": {\"format\": \"folder\", \"train_dir\": \"train\","
		" \"test_dir\": \"val\", \"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.5],"
		" \"std\": [0.25]}, \"splits\": {\"calibration\": 4, \"validation\": 4}}}";
	cr_assert(fx_write(at("c.json"), cfg_text, strlen(cfg_text)));
	char args[2048], *out, *err;
	snprintf(args, sizeof args, "eval --config '%s' --policy int8", at("c.json"));
	int rc = fx_presso(args, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "split:       test, 6 images"), "%s", out);
	free(out);
	free(err);

	/* a corrupt JPEG in the test folder: exit 2, the file named, nothing printed */
	cr_assert(fx_write(at("val/odd/bad.jpg"), "\xff\xd8\xff\xe0garbage", 11));
	rc = fx_presso(args, &out, &err);
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert(strstr(err, "val/odd/bad.jpg: corrupt JPEG file"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);

	/* a model of 2 channels: data.channels cannot follow it */
	unlink(at("val/odd/bad.jpg"));
	const char *cfg2 =
		"{\"model\": \"m2.onnx\", \"data\": {\"format\": \"folder\", \"train_dir\": \"train\","
		" \"test_dir\": \"val\", \"splits\": {\"calibration\": 4, \"validation\": 4}}}";
	cr_assert(fx_write(at("c2.json"), cfg2, strlen(cfg2)));
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 2, 4, 4}, 4);
	mb_node(&b, "Flatten", "flat", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	size_t n;
	uint8_t *bytes = mb_pack(&b, &n);
	cr_assert(fx_write(at("m2.onnx"), bytes, n));
	mb_free(&b);
	snprintf(args, sizeof args, "eval --config '%s'", at("c2.json"));
	rc = fx_presso(args, &out, &err);
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert(strstr(err, "c2.json: data.channels: the model takes 2 channels"), "%s", err);
	free(out);
	free(err);
}
