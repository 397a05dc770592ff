/* dataset.h - image classification datasets: IDX (raw or gzip) and NPY files,
 * and folders of PNG/JPEG images (image_folder.c).
 *
 * A dataset keeps its pixels as stored (uint8 or float32, one image after the
 * other in its file's layout) and its labels as int32. Normalisation happens when
 * a batch is drawn: x = (raw * scale - mean[c]) / std[c], computed in float32, and
 * the batch is written in the layout the model takes (NCHW or NHWC).
 *
 * Splits are deterministic from a seed: calibration and validation are drawn,
 * disjoint, from the training set; the test split is the test set.
 */
#ifndef PRESSO_DATASET_H
#define PRESSO_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

#define DATASET_MAX_CHANNELS 4

struct dataset {
	int64_t n;       /* images */
	int c, h, w;     /* per image */
	bool hwc;        /* pixels stored [h, w, c] per image (else [c, h, w]) */
	uint8_t *u8;     /* pixels when the file holds uint8, else NULL */
	float *f32;      /* pixels when the file holds float32, else NULL */
	int32_t *labels; /* [n] */
	int n_classes;   /* max label + 1 */
	char *images_path, *labels_path; /* the files loaded, for messages (NULL if none) */
};

struct normalize {
	float scale;                        /* applied to raw values first (1/255 for bytes) */
	int n_channels;                     /* of mean/std: 1 (shared) or c */
	int n_mean, n_std;                  /* values given for each, for messages */
	float mean[DATASET_MAX_CHANNELS];
	float std[DATASET_MAX_CHANNELS];
};

/* Loads an IDX image file (magic 0x00000803, [n, h, w], uint8) and IDX label file
 * (0x00000801, [n], uint8), each raw or gzip-compressed (detected from the bytes).
 * Checks magics, header sizes against the file length, and that the counts match.
 * The caller frees *out with dataset_free(). */
enum presso_status dataset_load_idx(const char *images_path, const char *labels_path,
				    struct dataset **out);

/* Loads NPY images (uint8 or float32, C order; [n,d] (vectors, held as 1 x d
 * images), [n,h,w], or [n,c,h,w] / [n,h,w,c] as channels_last says; 1..DATASET_MAX_CHANNELS channels; finite values) and NPY
 * labels (any integer dtype, [n] or [n,1]), each raw or gzip-compressed, with the
 * same exact-length checks as IDX. Labels must be >= 0. The caller frees *out. */
enum presso_status dataset_load_npy(const char *images_path, const char *labels_path,
				    bool channels_last, struct dataset **out);

/* ---- image folders (image_folder.c) ---------------------------------------
 *
 * A folder with one subfolder per class (the layout of torchvision's
 * ImageFolder): the sorted class names are the labels 0, 1, ...; each class's
 * .png, .jpg and .jpeg files (any case; in its subfolders too), in the order of
 * their folder path, then name, are its images. Every image is decoded on load
 * (libpng, libjpeg), converted, resized and cropped as folder_opts says, and
 * kept as uint8 [h, w, c]: the whole dataset is in memory, n * h * w * c bytes.
 */

enum folder_channels { FOLDER_RGB, FOLDER_BGR, FOLDER_GRAY, FOLDER_CHANNELS_COUNT };

struct folder_opts {
	int resize;         /* the shorter side to this many pixels (image_folder.c
			       gives the filter); 0: no resize */
	int crop_h, crop_w; /* the centre crop; 0: none (every image must then come
			       out the same size) */
	enum folder_channels channels; /* RGB, BGR, or gray (BT.601 luma) */
};

/* Loads the image folder dir. Its classes are its own subfolders, or, when
 * classes_dir is given (the training folder, for the test folder), the
 * subfolders of classes_dir: then every class of dir must be one of those, so
 * the two folders' labels agree. Errors name the folder or the file: a corrupt
 * or truncated image (PRESSO_E_FORMAT), a CMYK JPEG (PRESSO_E_UNSUPPORTED), a
 * class folder without images, an image smaller than the crop, images of
 * different sizes without a crop. The caller frees *out with dataset_free(). */
enum presso_status dataset_load_folder(const char *dir, const char *classes_dir,
				       const struct folder_opts *opt, struct dataset **out);

/* ---- NPY tensors, for presso run ------------------------------------------ */

/* Loads an NPY array (float32 or uint8, converted to float; C order; 1..max_dims
 * dimensions, none 0; finite values), raw or gzip, with the dataset loaders'
 * exact-length checks: its shape into dims[0..*n_dims-1], its values into a new
 * buffer *data (free() it). Errors name the file. */
enum presso_status dataset_load_npy_tensor(const char *path, int max_dims, int64_t *dims,
					   int *n_dims, float **data);

/* Writes an array as an NPY 1.0 file of little-endian float32 ('<f4'), C order,
 * atomically (base/fileio.h); at most 32 dimensions. */
enum presso_status dataset_save_npy_tensor(const char *path, const int64_t *dims, int n_dims,
					   const float *data);

/* Frees a dataset; NULL is a no-op. */
void dataset_free(struct dataset *ds);

/* Fails (PRESSO_E_CONFIG, naming the data.normalize field, its count and the
 * images' channels) unless norm has 1 or ds->c channels. Call it once after
 * loading, before dataset_get_batch(). */
enum presso_status dataset_check_normalize(const struct dataset *ds,
					   const struct normalize *norm);

/* Writes n normalised images (by index) into x (NCHW, or NHWC when nhwc_out) and
 * their labels into y (may be NULL). Indices must be < ds->n, and norm must pass
 * dataset_check_normalize() (NULL: raw values). Never allocates. */
void dataset_get_batch(const struct dataset *ds, const struct normalize *norm,
		       const int64_t *indices, int n, bool nhwc_out, float *x, int32_t *y);

struct split {
	int64_t n;
	int64_t *indices; /* owned; free with split_free() */
};

/* Draws calibration and validation splits, disjoint, from n_train images with a
 * seeded shuffle (same seed, same splits on every machine). Indices come in draw
 * order, so any prefix of a split is itself a uniform sample. Fails if
 * n_calib + n_valid > n_train. On failure both splits are empty. */
enum presso_status dataset_make_splits(int64_t n_train, uint64_t seed, int64_t n_calib,
				       int64_t n_valid, struct split *calib,
				       struct split *valid);

/* The first n (or all, n <= 0) indices 0..n-1 of a dataset: the test split.
 * Fails if n > n_total. */
enum presso_status split_range(int64_t n_total, int64_t n, struct split *out);

/* Frees s->indices and empties *s; NULL is a no-op. */
void split_free(struct split *s);

#endif
