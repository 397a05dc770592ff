/* image_folder.c - image-folder datasets: PNG and JPEG files, one subfolder per
 * class, decoded into presso's uint8 dataset (see dataset.h).
 *
 * Layout. The classes are the subfolders of the folder (of classes_dir when
 * given), sorted by name in byte order; class k has label k. A class's images
 * are the regular files named *.png, *.jpg or *.jpeg (any case) in its folder
 * and the folders below it, sorted by folder path, then file name (the order
 * of torchvision's ImageFolder). Names starting with '.' are skipped (so a
 * hidden folder is never a class, where torchvision would count it), and so
 * are other files; symbolic links to folders below a class are not followed.
 *
 * Each image, in this order:
 *   1. decoded to 8-bit RGB, whatever its file's form, by content (not by
 *      name): PNG with libpng (palette and low-bit gray expanded, 16-bit
 *      samples scaled to 8 bits by png_set_scale_16, alpha dropped, not
 *      composited; warnings such as a wrong sRGB profile ignored, errors fatal);
 *      JPEG with libjpeg (its default decoder: accurate integer DCT, fancy
 *      upsampling; a warning, such as data that ends early, is an error; CMYK
 *      is refused);
 *   2. converted: RGB kept, BGR swapped, or gray as BT.601 luma in fixed point,
 *      Y = (19595 R + 38470 G + 7471 B + 32768) >> 16 (PIL's convert("L"));
 *   3. resized (when `resize` > 0) so that its shorter side is `resize` pixels
 *      and its longer side floor(resize * long / short) (torchvision's Resize
 *      with one size). The filter is separable, horizontal pass first: output
 *      pixel i of an axis of n_in -> n_out pixels is centred at
 *      c = (i + 0.5) * n_in / n_out in input coordinates (pixel j covering
 *      [j, j+1)); it takes input pixel j with the triangle weight
 *      max(0, 1 - |j + 0.5 - c| / f), f = max(1, n_in / n_out), over the pixels
 *      inside the image, divided by the sum of the weights. Upscaling (f = 1)
 *      is plain bilinear interpolation with half-pixel centres (align_corners
 *      False); downscaling widens the triangle to f pixels a side, which
 *      averages every input pixel (antialiased bilinear, as PIL's resize and
 *      torchvision's default). Sums in double, no rounding between the passes,
 *      then rounded half up to uint8 (close to PIL, which rounds the first
 *      pass in fixed point, not bit-identical);
 *   4. centre-cropped (when crop_h > 0) to crop_h x crop_w, the top row at
 *      round((h - crop_h) / 2) with ties to even, the left column likewise
 *      (torchvision's CenterCrop); an image smaller than the crop is an error
 *      naming it, not padded.
 * The dataset is n images of [h, w, c] uint8 (hwc), c = 3 or 1; normalisation
 * happens when a batch is drawn, as for every dataset.
 *
 * Errors. libpng and libjpeg report errors by longjmp. Each decoder calls
 * setjmp once, before anything it must free exists; what it allocates after
 * is reached through a struct in its caller (never a local of the function
 * that called setjmp, whose non-volatile locals are indeterminate after the
 * jump), so the error path frees everything and returns a status naming the
 * file.
 */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <jpeglib.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/fileio.h"

/* An image file larger than this is not a plausible dataset image. */
#define MAX_IMAGE_FILE_BYTES ((size_t)256 << 20)
/* Decoded pixels per image: 2^26 (8192 x 8192), 192 MiB as RGB. */
#define MAX_IMAGE_PIXELS ((int64_t)1 << 26)
/* Labels fit dataset.c's class-index bound. */
#define MAX_CLASSES (1 << 20)
/* Folders below a class folder. */
#define MAX_DEPTH 32

/* ---- listing the folders -------------------------------------------------- */

struct file_entry {
	char *folder; /* the folder holding it */
	char *path;   /* folder "/" name */
	const char *name;
	int32_t label;
};

struct file_list {
	struct file_entry *v;
	size_t n, cap;
};

struct name_list {
	char **v;
	size_t n, cap;
};

static void names_free(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void files_free(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].folder);
		free(l->v[i].path);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static enum presso_status names_push(struct name_list *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return status_fail(PRESSO_E_NOMEM, "out of memory listing a folder");
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name)))
		return status_fail(PRESSO_E_NOMEM, "out of memory listing a folder");
	l->n++;
	return PRESSO_OK;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_files(const void *a, const void *b)
{
	const struct file_entry *x = a, *y = b;
	int c = strcmp(x->folder, y->folder);
	return c ? c : strcmp(x->name, y->name);
}

static char *join(const char *dir, const char *name)
{
	size_t nd = strlen(dir), nn = strlen(name);
	bool slash = nd > 0 && dir[nd - 1] == '/';
	char *p = malloc(nd + nn + 2);
	if (p)
		snprintf(p, nd + nn + 2, "%s%s%s", dir, slash ? "" : "/", name);
	return p;
}

/* The entries of dir not starting with '.', sorted. */
static enum presso_status list_names(const char *dir, struct name_list *out)
{
	memset(out, 0, sizeof *out);
	errno = 0;
	DIR *d = opendir(dir);
	if (!d)
		return status_fail(status_from_errno(errno), "%s: %s", dir, strerror(errno));
	enum presso_status s = PRESSO_OK;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			if (errno)
				s = status_fail(status_from_errno(errno), "%s: %s", dir,
						strerror(errno));
			break;
		}
		if (e->d_name[0] == '.')
			continue;
		if ((s = names_push(out, e->d_name)) != PRESSO_OK)
			break;
	}
	closedir(d);
	if (s != PRESSO_OK) {
		names_free(out);
		return s;
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_names);
	return PRESSO_OK;
}

/* The class folders of dir: its subfolders (links to folders count). */
static enum presso_status list_classes(const char *dir, struct name_list *out)
{
	struct name_list all;
	memset(out, 0, sizeof *out);
	struct stat st;
	if (stat(dir, &st) != 0)
		return status_fail(status_from_errno(errno), "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return status_fail(PRESSO_E_IO,
				   "%s: not a folder (an image-folder dataset is a folder with "
				   "one subfolder per class)",
				   dir);
	enum presso_status s = list_names(dir, &all);
	for (size_t i = 0; s == PRESSO_OK && i < all.n; i++) {
		char *p = join(dir, all.v[i]);
		if (!p) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			break;
		}
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			s = names_push(out, all.v[i]);
		free(p);
	}
	names_free(&all);
	if (s == PRESSO_OK && out->n == 0)
		s = status_fail(PRESSO_E_FORMAT,
				"%s: no class folders (an image-folder dataset holds one "
				"subfolder per class, each with its .png/.jpg images)",
				dir);
	if (s == PRESSO_OK && out->n > MAX_CLASSES)
		s = status_fail(PRESSO_E_UNSUPPORTED, "%s: %zu class folders; at most %d", dir,
				out->n, MAX_CLASSES);
	if (s != PRESSO_OK)
		names_free(out);
	return s;
}

static bool is_image_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
		       strcasecmp(dot, ".jpeg") == 0);
}

/* Adds the images of folder (and the folders below it) to files. */
static enum presso_status walk(const char *folder, int32_t label, int depth,
			       struct file_list *files)
{
	struct name_list names;
	enum presso_status s = list_names(folder, &names);
	if (s != PRESSO_OK)
		return s;
	for (size_t i = 0; s == PRESSO_OK && i < names.n; i++) {
		char *p = join(folder, names.v[i]);
		struct stat st, lst;
		if (!p) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			break;
		}
		if (lstat(p, &lst) == 0 && S_ISDIR(lst.st_mode)) {
			if (depth >= MAX_DEPTH)
				s = status_fail(PRESSO_E_UNSUPPORTED,
						"%s: folders nested more than %d deep", p, MAX_DEPTH);
			else
				s = walk(p, label, depth + 1, files);
			free(p);
			continue;
		}
		if (!is_image_name(names.v[i]) || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		if (files->n == files->cap) {
			size_t cap = files->cap ? 2 * files->cap : 256;
			struct file_entry *v = realloc(files->v, cap * sizeof *v);
			if (!v) {
				free(p);
				s = status_fail(PRESSO_E_NOMEM, "out of memory listing images");
				break;
			}
			files->v = v;
			files->cap = cap;
		}
		struct file_entry *e = &files->v[files->n];
		e->folder = strdup(folder);
		e->path = p;
		e->name = p + strlen(p) - strlen(names.v[i]);
		e->label = label;
		if (!e->folder) {
			free(p);
			s = status_fail(PRESSO_E_NOMEM, "out of memory listing images");
			break;
		}
		files->n++;
	}
	names_free(&names);
	return s;
}

/* ---- decoding ----------------------------------------------------------- */

/* A decoded image: h x w pixels of c channels, [h, w, c]. */
struct image {
	int h, w, c;
	unsigned char *px;
};

static void image_free(struct image *im)
{
	free(im->px);
	memset(im, 0, sizeof *im);
}

static enum presso_status check_dims(const char *path, const char *kind, uint64_t w, uint64_t h)
{
	if (w == 0 || h == 0 || w > INT_MAX || h > INT_MAX ||
	    (int64_t)w * (int64_t)h > MAX_IMAGE_PIXELS)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "%s: a %s image of %llux%llu pixels; presso decodes at most "
				   "%lld pixels per image",
				   path, kind, (unsigned long long)w, (unsigned long long)h,
				   (long long)MAX_IMAGE_PIXELS);
	return PRESSO_OK;
}

/* PNG: what the error handler and the reader share with decode_png(). */
struct png_ctx {
	jmp_buf jmp;
	char msg[256];
	const unsigned char *bytes;
	size_t n, at;
	png_bytep *rows; /* freed on every path */
};

static void on_png_error(png_structp png, png_const_charp msg)
{
	struct png_ctx *c = png_get_error_ptr(png);
	snprintf(c->msg, sizeof c->msg, "%s", msg);
	longjmp(c->jmp, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg; /* benign: a wrong sRGB profile, a bad ancillary chunk */
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
	struct png_ctx *c = png_get_io_ptr(png);
	if (n > c->n - c->at)
		png_error(png, "the file ends early (truncated)");
	memcpy(out, c->bytes + c->at, n);
	c->at += n;
}

/* Decodes PNG bytes to 8-bit RGB into *im (whose px the caller frees). */
static enum presso_status decode_png(const char *path, const unsigned char *bytes, size_t n,
				     struct png_ctx *c, struct image *im)
{
	memset(c, 0, sizeof *c);
	c->bytes = bytes;
	c->n = n;
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_png_error,
						 on_png_warning);
	if (!png)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory decoding PNG", path);
	png_infop info = png_create_info_struct(png);
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory decoding PNG", path);
	}
	/* png and info are set before setjmp and never changed after; the rows
	 * and pixels live in *c and *im, outside this frame */
	if (setjmp(c->jmp)) {
		png_destroy_read_struct(&png, &info, NULL);
		free(c->rows);
		c->rows = NULL;
		image_free(im);
		return status_fail(PRESSO_E_FORMAT, "%s: corrupt PNG file: %s", path, c->msg);
	}
	png_set_read_fn(png, c, png_read_mem);
	png_set_user_limits(png, 1u << 16, 1u << 16);
	png_read_info(png, info);
	png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
	enum presso_status s = check_dims(path, "PNG", w, h);
	if (s != PRESSO_OK) {
		png_destroy_read_struct(&png, &info, NULL);
		return s;
	}
	int type = png_get_color_type(png, info);
	if (type == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
		png_set_expand_gray_1_2_4_to_8(png);
		png_set_gray_to_rgb(png);
	}
	png_set_scale_16(png);
	png_set_strip_alpha(png);
	(void)png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != (size_t)w * 3 || png_get_bit_depth(png, info) != 8)
		png_error(png, "unexpected pixel layout after conversion to RGB");
	im->w = (int)w;
	im->h = (int)h;
	im->c = 3;
	im->px = malloc((size_t)w * h * 3);
	c->rows = malloc(sizeof *c->rows * h);
	if (!im->px || !c->rows)
		png_error(png, "out of memory");
	for (png_uint_32 y = 0; y < h; y++)
		c->rows[y] = im->px + (size_t)y * w * 3;
	png_read_image(png, c->rows);
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	free(c->rows);
	c->rows = NULL;
	return PRESSO_OK;
}

/* JPEG: libjpeg's error manager extended with the jump and the message. */
struct jpeg_ctx {
	struct jpeg_error_mgr err; /* first: libjpeg's pointer is to it */
	jmp_buf jmp;
	char msg[JMSG_LENGTH_MAX];
	struct jpeg_decompress_struct dec;
};

static void on_jpeg_error(j_common_ptr cinfo)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)(void *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, c->msg);
	longjmp(c->jmp, 1);
}

/* A warning (level -1: corrupt data, a file that ends early) is an error;
 * trace messages (level >= 0) are ignored. */
static void on_jpeg_message(j_common_ptr cinfo, int level)
{
	if (level < 0)
		on_jpeg_error(cinfo);
}

/* Decodes JPEG bytes to 8-bit RGB into *im (whose px the caller frees). */
static enum presso_status decode_jpeg(const char *path, const unsigned char *bytes, size_t n,
				      struct jpeg_ctx *c, struct image *im)
{
	memset(c, 0, sizeof *c);
	c->dec.err = jpeg_std_error(&c->err);
	c->err.error_exit = on_jpeg_error;
	c->err.emit_message = on_jpeg_message;
	/* c and im are outside this frame: the error path reads only them */
	if (setjmp(c->jmp)) {
		jpeg_destroy_decompress(&c->dec);
		image_free(im);
		return status_fail(PRESSO_E_FORMAT, "%s: corrupt JPEG file: %s", path, c->msg);
	}
	jpeg_create_decompress(&c->dec);
	jpeg_mem_src(&c->dec, bytes, (unsigned long)n);
	jpeg_read_header(&c->dec, TRUE);
	enum presso_status s = PRESSO_OK;
	if (c->dec.jpeg_color_space == JCS_CMYK || c->dec.jpeg_color_space == JCS_YCCK)
		s = status_fail(PRESSO_E_UNSUPPORTED,
				"%s: a CMYK JPEG; presso reads RGB and grayscale JPEGs (convert "
				"it to RGB)",
				path);
	if (s == PRESSO_OK)
		s = check_dims(path, "JPEG", c->dec.image_width, c->dec.image_height);
	if (s != PRESSO_OK) {
		jpeg_destroy_decompress(&c->dec);
		return s;
	}
	c->dec.out_color_space = JCS_RGB;
	jpeg_start_decompress(&c->dec);
	if (c->dec.output_components != 3) {
		jpeg_destroy_decompress(&c->dec);
		return status_fail(PRESSO_E_UNSUPPORTED, "%s: a JPEG that does not decode to RGB",
				   path);
	}
	im->w = (int)c->dec.output_width;
	im->h = (int)c->dec.output_height;
	im->c = 3;
	im->px = malloc((size_t)im->w * (size_t)im->h * 3);
	if (!im->px) {
		jpeg_destroy_decompress(&c->dec);
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory decoding JPEG", path);
	}
	while (c->dec.output_scanline < c->dec.output_height) {
		JSAMPROW row = im->px + (size_t)c->dec.output_scanline * (size_t)im->w * 3;
		jpeg_read_scanlines(&c->dec, &row, 1);
	}
	jpeg_finish_decompress(&c->dec);
	jpeg_destroy_decompress(&c->dec);
	return PRESSO_OK;
}

/* Reads and decodes one file, by its first bytes. */
static enum presso_status decode_file(const char *path, struct image *im)
{
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	char *bytes = NULL;
	size_t n = 0;
	memset(im, 0, sizeof *im);
	enum presso_status s = file_read_all(path, "an image file", MAX_IMAGE_FILE_BYTES, &bytes, &n);
	if (s != PRESSO_OK)
		return s;
	const unsigned char *b = (const unsigned char *)bytes;
	if (n >= 8 && memcmp(b, png_sig, 8) == 0) {
		struct png_ctx *c = malloc(sizeof *c);
		s = c ? decode_png(path, b, n, c, im)
		      : status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		free(c);
	} else if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
		struct jpeg_ctx *c = malloc(sizeof *c);
		s = c ? decode_jpeg(path, b, n, c, im)
		      : status_fail(PRESSO_E_NOMEM, "%s: out of memory", path);
		free(c);
	} else {
		s = status_fail(PRESSO_E_FORMAT,
				"%s: not a PNG or JPEG file (it starts with neither the PNG "
				"signature nor a JPEG SOI marker)",
				path);
	}
	free(bytes);
	return s;
}

/* ---- converting, resizing, cropping -------------------------------------- */

/* RGB -> the channels asked for, in place (gray shrinks the buffer's use). */
static void convert(struct image *im, enum folder_channels ch)
{
	int64_t n = (int64_t)im->h * im->w;
	unsigned char *p = im->px;
	if (ch == FOLDER_BGR) {
		for (int64_t i = 0; i < n; i++) {
			unsigned char t = p[3 * i];
			p[3 * i] = p[3 * i + 2];
			p[3 * i + 2] = t;
		}
	} else if (ch == FOLDER_GRAY) {
		/* in place: output i is written after input i is read */
		for (int64_t i = 0; i < n; i++)
			p[i] = (unsigned char)((19595u * p[3 * i] + 38470u * p[3 * i + 1] +
						7471u * p[3 * i + 2] + 32768u) >> 16);
		im->c = 1;
	}
}

/* The filter of one axis, n_in -> n_out pixels (see the top of the file):
 * output i reads first[i] .. first[i] + count[i] - 1 with weights w[i * max ..]. */
struct taps {
	int max;
	int *first, *count;
	double *w;
};

static void taps_free(struct taps *t)
{
	free(t->first);
	free(t->count);
	free(t->w);
}

static bool taps_make(int n_in, int n_out, struct taps *t)
{
	double scale = (double)n_in / n_out, f = scale > 1 ? scale : 1;
	t->max = 2 * (int)ceil(f) + 3;
	t->first = malloc(sizeof(int) * (size_t)n_out);
	t->count = malloc(sizeof(int) * (size_t)n_out);
	t->w = malloc(sizeof(double) * (size_t)n_out * (size_t)t->max);
	if (!t->first || !t->count || !t->w)
		return false;
	for (int i = 0; i < n_out; i++) {
		double c = (i + 0.5) * scale;
		int lo = (int)floor(c - f), hi = (int)ceil(c + f);
		lo = lo < 0 ? 0 : lo;
		hi = hi > n_in - 1 ? n_in - 1 : hi;
		double *w = t->w + (size_t)i * (size_t)t->max, sum = 0;
		int k = 0;
		for (int j = lo; j <= hi; j++, k++) {
			double x = 1.0 - fabs(j + 0.5 - c) / f;
			w[k] = x > 0 ? x : 0;
			sum += w[k];
		}
		/* the input pixel under c has |j + 0.5 - c| <= 0.5, so sum > 0 */
		for (int m = 0; m < k; m++)
			w[m] /= sum;
		t->first[i] = lo;
		t->count[i] = k;
	}
	return true;
}

/* Resizes im to out_h x out_w (see the top of the file). */
static enum presso_status resize_image(const char *path, struct image *im, int out_h, int out_w)
{
	const int c = im->c, in_w = im->w, in_h = im->h;
	struct taps tx = {0}, ty = {0};
	double *mid = NULL;
	unsigned char *out = NULL;
	enum presso_status s = PRESSO_OK;
	if (!taps_make(in_w, out_w, &tx) || !taps_make(in_h, out_h, &ty) ||
	    !(mid = malloc(sizeof(double) * (size_t)in_h * (size_t)out_w * (size_t)c)) ||
	    !(out = malloc((size_t)out_h * (size_t)out_w * (size_t)c))) {
		s = status_fail(PRESSO_E_NOMEM, "%s: out of memory resizing to %dx%d", path, out_w,
				out_h);
		goto done;
	}
	for (int y = 0; y < in_h; y++)
		for (int x = 0; x < out_w; x++) {
			const double *w = tx.w + (size_t)x * (size_t)tx.max;
			for (int ch = 0; ch < c; ch++) {
				double acc = 0;
				const unsigned char *src = im->px + ((size_t)y * in_w + tx.first[x]) * c + ch;
				for (int k = 0; k < tx.count[x]; k++)
					acc += w[k] * src[(size_t)k * c];
				mid[((size_t)y * out_w + x) * c + ch] = acc;
			}
		}
	for (int y = 0; y < out_h; y++) {
		const double *w = ty.w + (size_t)y * (size_t)ty.max;
		for (int x = 0; x < out_w; x++)
			for (int ch = 0; ch < c; ch++) {
				double acc = 0;
				for (int k = 0; k < ty.count[y]; k++)
					acc += w[k] * mid[((size_t)(ty.first[y] + k) * out_w + x) * c + ch];
				double v = floor(acc + 0.5);
				out[((size_t)y * out_w + x) * c + ch] =
					(unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
	}
	free(im->px);
	im->px = out;
	out = NULL;
	im->h = out_h;
	im->w = out_w;
done:
	taps_free(&tx);
	taps_free(&ty);
	free(mid);
	free(out);
	return s;
}

/* round(x / 2) with ties to even, for x >= 0 (Python's round, as torchvision). */
static int half_to_even(int x)
{
	int q = x / 2;
	return x % 2 && q % 2 ? q + 1 : q;
}

/* Decodes, converts, resizes and crops one file into *im. */
static enum presso_status load_image(const char *path, const struct folder_opts *opt,
				     struct image *im)
{
	enum presso_status s = decode_file(path, im);
	if (s != PRESSO_OK)
		return s;
	convert(im, opt->channels);
	if (opt->resize > 0) {
		int64_t short_side = im->h < im->w ? im->h : im->w;
		int64_t long_side = im->h < im->w ? im->w : im->h;
		int64_t new_long = (int64_t)((double)((int64_t)opt->resize * long_side) /
					     (double)short_side);
		if (new_long < 1 || new_long > INT_MAX ||
		    new_long * opt->resize > MAX_IMAGE_PIXELS) {
			image_free(im);
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "%s: %dx%d resized to a shorter side of %d would be "
					   "%lld pixels long; at most %lld pixels per image",
					   path, im->w, im->h, opt->resize, (long long)new_long,
					   (long long)MAX_IMAGE_PIXELS);
		}
		int oh = im->h < im->w ? opt->resize : (int)new_long;
		int ow = im->h < im->w ? (int)new_long : opt->resize;
		if ((oh != im->h || ow != im->w) &&
		    (s = resize_image(path, im, oh, ow)) != PRESSO_OK) {
			image_free(im);
			return s;
		}
	}
	if (opt->crop_h > 0) {
		if (im->h < opt->crop_h || im->w < opt->crop_w) {
			s = status_fail(PRESSO_E_FORMAT,
					"%s: %dx%d (width x height%s) is smaller than the crop "
					"%dx%d; set data.resize to at least the crop",
					path, im->w, im->h, opt->resize > 0 ? ", after resize" : "",
					opt->crop_w, opt->crop_h);
			image_free(im);
			return s;
		}
		int top = half_to_even(im->h - opt->crop_h), left = half_to_even(im->w - opt->crop_w);
		size_t row = (size_t)opt->crop_w * im->c;
		/* rows move up and left only: memmove in place */
		for (int y = 0; y < opt->crop_h; y++)
			memmove(im->px + (size_t)y * row,
				im->px + ((size_t)(top + y) * im->w + left) * im->c, row);
		im->h = opt->crop_h;
		im->w = opt->crop_w;
	}
	return PRESSO_OK;
}

/* ---- the dataset ---------------------------------------------------------- */

/* Index of name in the sorted list, or -1. */
static int32_t find_class(const struct name_list *classes, const char *name)
{
	char *const *hit = bsearch(&name, classes->v, classes->n, sizeof *classes->v, cmp_names);
	return hit ? (int32_t)(hit - classes->v) : -1;
}

/* "a, b, c" (at most cap bytes, "..." when cut). */
static void format_classes(const struct name_list *l, char *buf, size_t cap)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n && pos + 4 < cap; i++)
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", l->v[i]);
	if (pos >= cap - 4)
		snprintf(buf + cap - 4, 4, "...");
}

enum presso_status dataset_load_folder(const char *dir, const char *classes_dir,
				       const struct folder_opts *opt, struct dataset **out)
{
	struct name_list classes = {0}, own = {0};
	struct file_list files = {0};
	struct dataset *ds = NULL;
	struct image im = {0};
	enum presso_status s;

	*out = NULL;
	if ((s = list_classes(dir, &own)) != PRESSO_OK)
		return s;
	if (classes_dir && strcmp(classes_dir, dir) != 0) {
		if ((s = list_classes(classes_dir, &classes)) != PRESSO_OK)
			goto fail;
	} else {
		classes = own;
		own = (struct name_list){0};
	}
	const struct name_list *here = own.n ? &own : &classes;
	for (size_t i = 0; i < here->n; i++) {
		int32_t label = find_class(&classes, here->v[i]);
		char *folder = join(dir, here->v[i]);
		if (!folder) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		if (label < 0) {
			char list[512];
			format_classes(&classes, list, sizeof list);
			s = status_fail(PRESSO_E_FORMAT,
					"%s: class '%s' is not a class of %s (its classes: %s); "
					"the labels would not match",
					folder, here->v[i], classes_dir, list);
			free(folder);
			goto fail;
		}
		size_t before = files.n;
		s = walk(folder, label, 0, &files);
		if (s == PRESSO_OK && files.n == before)
			s = status_fail(PRESSO_E_FORMAT, "%s: no .png, .jpg or .jpeg files in the "
							 "class folder",
					folder);
		free(folder);
		if (s != PRESSO_OK)
			goto fail;
		qsort(files.v + before, files.n - before, sizeof *files.v, cmp_files);
	}

	ds = calloc(1, sizeof *ds);
	if (!ds || !(ds->images_path = strdup(dir)) || !(ds->labels_path = strdup(dir)) ||
	    !(ds->labels = malloc(sizeof *ds->labels * files.n))) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	ds->n = (int64_t)files.n;
	ds->hwc = true;
	ds->c = opt->channels == FOLDER_GRAY ? 1 : 3;
	size_t per = 0;
	const char *first = NULL;
	for (size_t i = 0; i < files.n; i++) {
		const char *path = files.v[i].path;
		if ((s = load_image(path, opt, &im)) != PRESSO_OK)
			goto fail;
		if (!ds->u8) {
			/* the first image sets the size (the crop when there is one) */
			ds->h = im.h;
			ds->w = im.w;
			first = path;
			per = (size_t)im.h * (size_t)im.w * (size_t)ds->c;
			if (files.n > SIZE_MAX / per ||
			    !(ds->u8 = malloc(per * files.n))) {
				s = status_fail(PRESSO_E_NOMEM,
						"%s: out of memory for %zu images of %dx%dx%d bytes "
						"(an image folder is held decoded in memory)",
						dir, files.n, im.w, im.h, ds->c);
				goto fail;
			}
		}
		if (im.h != ds->h || im.w != ds->w) {
			s = status_fail(PRESSO_E_FORMAT,
					"%s: %dx%d (width x height%s), but %s is %dx%d; images "
					"of different sizes need data.crop (and data.resize)",
					path, im.w, im.h, opt->resize > 0 ? ", after resize" : "",
					first, ds->w, ds->h);
			goto fail;
		}
		memcpy(ds->u8 + per * i, im.px, per);
		ds->labels[i] = files.v[i].label;
		image_free(&im);
	}
	int32_t max_label = -1;
	for (int64_t i = 0; i < ds->n; i++)
		max_label = ds->labels[i] > max_label ? ds->labels[i] : max_label;
	ds->n_classes = max_label + 1;
	names_free(&classes);
	names_free(&own);
	files_free(&files);
	*out = ds;
	return PRESSO_OK;
fail:
	image_free(&im);
	names_free(&classes);
	names_free(&own);
	files_free(&files);
	dataset_free(ds);
	return s;
}
