/* fuzz_dataset.c - libFuzzer harness for the IDX and NPY readers (raw or gzip).
 *
 * Input layout (the seeds in tests/fuzz/corpus/dataset follow it):
 *   byte 0     flags: bit 0 NPY (else IDX), bit 1 channels_last (NPY),
 *              bit 2 draw the batch NHWC (else NCHW)
 *   bytes 1..  the images file, then the marker SEPARATOR, then the labels
 *              file (no marker: the labels file is empty)
 * Both files go through in-memory files (common.h), since the readers take
 * paths and detect gzip from the bytes. A dataset that loads is checked against
 * the promises of dataset.h (one pixel buffer, 1..4 channels, labels in
 * 0..n_classes-1), then its first and last images are drawn normalised and
 * splits are made from it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "tests/fuzz/common.h"

#define SEPARATOR "@@LABELS@@"
#define FLAG_NPY 0x01u
#define FLAG_CHANNELS_LAST 0x02u
#define FLAG_NHWC_OUT 0x04u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_file images, labels;

static void check_and_draw(const struct dataset *ds, bool nhwc_out)
{
	FUZZ_CHECK(ds->n >= 0 && ds->c >= 1 && ds->c <= DATASET_MAX_CHANNELS);
	FUZZ_CHECK(ds->h >= 1 && ds->w >= 1);
	FUZZ_CHECK((ds->u8 != NULL) != (ds->f32 != NULL));
	for (int64_t i = 0; i < ds->n; i++)
		FUZZ_CHECK(ds->labels[i] >= 0 && ds->labels[i] < ds->n_classes);
	if (ds->n == 0)
		return;

	struct normalize norm = {1.0f / 255, 1, 1, 1, {0.5f}, {0.25f}};
	FUZZ_CHECK(dataset_check_normalize(ds, &norm) == PRESSO_OK);
	int64_t idx[2] = {0, ds->n - 1};
	size_t image = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
	float *x = malloc(2 * image * sizeof *x);
	FUZZ_CHECK(x);
	int32_t y[2];
	dataset_get_batch(ds, &norm, idx, 2, nhwc_out, x, y);
	dataset_get_batch(ds, NULL, idx, 1, !nhwc_out, x, NULL);
	FUZZ_CHECK(y[0] == ds->labels[0] && y[1] == ds->labels[ds->n - 1]);
	free(x);

	struct split calib, valid;
	if (dataset_make_splits(ds->n, 7, ds->n / 3, ds->n / 3, &calib, &valid) == PRESSO_OK) {
		for (int64_t i = 0; i < valid.n; i++)
			FUZZ_CHECK(valid.indices[i] >= 0 && valid.indices[i] < ds->n);
		split_free(&calib);
		split_free(&valid);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!images.path[0]) {
		fuzz_file_open(&images, "images");
		fuzz_file_open(&labels, "labels");
	}
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	const uint8_t *img = data + 1;
	size_t n_img = size - 1;
	const uint8_t *lab = NULL;
	size_t n_lab = 0;
	const uint8_t *sep = memmem(img, n_img, SEPARATOR, strlen(SEPARATOR));
	if (sep) {
		lab = sep + strlen(SEPARATOR);
		n_lab = (size_t)(img + n_img - lab);
		n_img = (size_t)(sep - img);
	}
	fuzz_file_set(&images, img, n_img);
	fuzz_file_set(&labels, lab, n_lab);

	struct dataset *ds = NULL;
	enum presso_status s =
		flags & FLAG_NPY
			? dataset_load_npy(images.path, labels.path, flags & FLAG_CHANNELS_LAST, &ds)
			: dataset_load_idx(images.path, labels.path, &ds);
	if (s != PRESSO_OK) {
		FUZZ_CHECK(ds == NULL);
		fuzz_refused("dataset");
		return 0;
	}
	check_and_draw(ds, flags & FLAG_NHWC_OUT);
	dataset_free(ds);
	return 0;
}
