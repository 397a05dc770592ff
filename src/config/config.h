/* config.h - the study config: a JSON file read through typed getters.
 *
 * Every field is checked as it is read; an error names the path of the bad field
 * ("data.splits.validation: expected a positive integer") and unknown keys are an
 * error, never silently ignored. Paths inside the config are resolved relative
 * to the config file's folder. The parsed cJSON document is kept (json) so later
 * stages can read their own sections and store the config verbatim.
 *
 * Shape of the file (defaults in brackets):
 * {
 *   "name": "lenet-fmnist",                 study name [file name without .json]
 *   "model": "../models/lenet.onnx",
 *   "data": {
 *     "format": "idx" | "npy" | "folder",
 *     "train_images": "...", "train_labels": "...",   idx, npy
 *     "test_images": "...",  "test_labels": "...",
 *     "channels_last": false,               NPY 4-D storage is [n,h,w,c] [false]
 *     "train_dir": "...", "test_dir": "...", folder: one subfolder per class
 *     "resize": 256,                        folder: shorter side to 256 [none]
 *     "crop": 224 | [224, 192],             folder: centre crop, [h, w]
 *                                           [the model's input height, width]
 *     "channels": "rgb" | "bgr" | "gray",   folder [gray if the model takes
 *                                           1 channel, else rgb]
 *     "normalize": { "scale": 0.00392156862745098, "mean": [0.286], "std": [0.353] },
 *     "splits": { "seed": 1, "calibration": 1000, "validation": 5000, "test": 0 }
 *   },                                      test: 0 = the whole test set
 *   "eval": { "batch": 64, "threads": 1 },  [64, 1]
 *   "finetune": { ... },                    presso finetune's settings, read by
 *                                           src/train/train_config.h
 *   "quant": { "calibration": "percentile", "percentile": 99.99,
 *              "rounding": "gptq", "requant": "float",
 *              "repair": true, "repair_images": 256 }
 * }                                         calibration: minmax | percentile | mse
 *                                           rounding: gptq (gptq.h) | nearest
 *                                           requant: float | q31 (qengine.h)
 *                                           repair: statistics repair after
 *                                           pruning/low-rank (repair.h); both
 *                                           use the first repair_images
 *                                           calibration images
 */
#ifndef PRESSO_CONFIG_H
#define PRESSO_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/calib.h"
#include "data/dataset.h"
#include "base/status.h"

struct cJSON;

struct data_config {
	char *format; /* "idx", "npy" or "folder" */
	char *train_images, *train_labels, *test_images, *test_labels; /* resolved paths
									  (idx, npy) */
	bool channels_last;
	/* "folder" (dataset.h, image_folder.c) */
	char *train_dir, *test_dir; /* resolved paths */
	int resize;                 /* shorter side, 0: none */
	int crop_h, crop_w;         /* centre crop, 0: the model's input size */
	int channels;               /* enum folder_channels, -1: from the model */
	struct normalize norm;
	uint64_t seed;
	int64_t n_calib, n_valid, n_test;
};

struct eval_config {
	int batch;
	int threads;
};

struct quant_section {
	enum calib_method method; /* CALIB_MINMAX, CALIB_PERCENTILE (default), CALIB_MSE */
	double percentile;        /* 50..100, default 99.99 */
	bool gptq;                /* rounding "gptq" (true, default) or "nearest" */
	bool requant_q31;         /* requant "q31" (TFLite's fixed point) or "float"
				     (false, default): see qengine.h */
	bool repair;              /* statistics repair after pruning/low-rank [true] */
	int64_t repair_images;    /* calibration images it uses [256] */
};

struct config {
	char *path;       /* the file it came from ("" when parsed from a string) */
	char *name;
	char *model_path; /* resolved */
	struct data_config data;
	struct eval_config eval;
	struct quant_section quant;
	struct cJSON *json; /* the whole document, owned */
};

/* Reads and validates a config file. The caller frees *out with config_free(). */
enum presso_status config_load(const char *path, struct config **out);

/* Same from text; relative paths resolve against base_dir ("." if NULL). */
enum presso_status config_parse(const char *text, const char *base_dir, const char *name,
				struct config **out);

void config_free(struct config *cfg);

#endif
