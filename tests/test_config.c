/* test_config.c - study configs (src/config/config.c) and the JSON getters under them
 * (src/base/json_get.c).
 *
 * Configs are written to a fresh temporary folder and loaded from there, so path
 * resolution is checked against a real folder; each class of mistake gets a test
 * that checks the status and the path the message names. The shipped
 * configs/ examples must parse as they are.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "base/json_get.h"
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

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(json_get);

#define ASSERT_FAILS(call, want, needle)                                                   \
	do {                                                                               \
		enum presso_status st_ = (call);                                           \
		cr_assert_eq(st_, (want), "status '%s' (want '%s'), message: %s",          \
			     status_str(st_), status_str(want), status_msg());             \
		cr_assert(strstr(status_msg(), (needle)), "message \"%s\" lacks \"%s\"",   \
			  status_msg(), (needle));                                         \
	} while (0)

/* The smallest valid config; DATA_EXTRA and TOP_EXTRA splice fields in. */
#define DATA_PATHS                                                                         \
	"\"train_images\": \"data/train-img.gz\", \"train_labels\": \"data/train-lab.gz\", " \
	"\"test_images\": \"/abs/test-img.gz\", \"test_labels\": \"test-lab.gz\""

static const char *config_text(const char *top_extra, const char *data_extra)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "{\n  \"model\": \"models/m.onnx\",\n  \"data\": {%s%s}%s\n}\n",
		 DATA_PATHS, data_extra, top_extra);
	return buf;
}

/* Writes text to tmp/name and loads it. */
static enum presso_status load_text(const char *name, const char *text, struct config **cfg)
{
	const char *path = fx_join(tmp, name);
	cr_assert(fx_write(path, text, strlen(text)));
	return config_load(path, cfg);
}

/* Loads a config with extra fields, expecting failure with status and needle. */
static void expect_bad(const char *top_extra, const char *data_extra, enum presso_status want,
		       const char *needle)
{
	struct config *cfg = (void *)1;
	ASSERT_FAILS(load_text("bad.json", config_text(top_extra, data_extra), &cfg), want,
		     needle);
	cr_assert_null(cfg);
}

Test(config, minimal_with_defaults)
{
	struct config *cfg = NULL;
	cr_assert_eq(load_text("study1.json", config_text("", ""), &cfg), PRESSO_OK, "%s",
		     status_msg());
	char want[4096];
	cr_assert_str_eq(cfg->path, fx_join(tmp, "study1.json"));
	cr_assert_str_eq(cfg->name, "study1");
	snprintf(want, sizeof want, "%s/models/m.onnx", tmp);
	cr_assert_str_eq(cfg->model_path, want);
	snprintf(want, sizeof want, "%s/data/train-img.gz", tmp);
	cr_assert_str_eq(cfg->data.train_images, want);
	snprintf(want, sizeof want, "%s/data/train-lab.gz", tmp);
	cr_assert_str_eq(cfg->data.train_labels, want);
	cr_assert_str_eq(cfg->data.test_images, "/abs/test-img.gz");
	snprintf(want, sizeof want, "%s/test-lab.gz", tmp);
	cr_assert_str_eq(cfg->data.test_labels, want);
	cr_assert_str_eq(cfg->data.format, "idx");
	cr_assert(!cfg->data.channels_last);
	cr_assert_eq(cfg->data.norm.scale, 1.0f);
	cr_assert_eq(cfg->data.norm.n_channels, 1);
	cr_assert_eq(cfg->data.norm.mean[0], 0.0f);
	cr_assert_eq(cfg->data.norm.std[0], 1.0f);
	cr_assert_eq(cfg->data.seed, 1);
	cr_assert_eq(cfg->data.n_calib, 1000);
	cr_assert_eq(cfg->data.n_valid, 5000);
	cr_assert_eq(cfg->data.n_test, 0);
	cr_assert_eq(cfg->eval.batch, 64);
	cr_assert_eq(cfg->eval.threads, 1);
	cr_assert(cJSON_IsObject(cfg->json));
	cr_assert(cJSON_GetObjectItemCaseSensitive(cfg->json, "model"));
	config_free(cfg);
	config_free(NULL);
}

Test(config, every_field_and_later_sections)
{
	struct config *cfg = NULL;
	const char *text =
		"{\"name\": \"my-study\", \"model\": \"/models/m.onnx\",\n"
		" \"data\": {\"format\": \"npy\", " DATA_PATHS ", \"channels_last\": true,\n"
		"   \"normalize\": {\"scale\": 0.5, \"mean\": [0.1, 0.2, 0.3], \"std\": [2]},\n"
		"   \"splits\": {\"seed\": 42, \"calibration\": 10, \"validation\": 20, \"test\": 30}},\n"
		" \"eval\": {\"batch\": 4096, \"threads\": 256},\n"
		" \"quant\": {\"calibration\": \"mse\", \"percentile\": 99.9}, \"search\": {},\n"
		" \"space\": {\"x\": 1},\n"
		" \"objectives\": {}, \"constraints\": {}}";
	cr_assert_eq(load_text("x.json", text, &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert_str_eq(cfg->name, "my-study");
	cr_assert_eq(cfg->quant.method, CALIB_MSE);
	cr_assert_float_eq(cfg->quant.percentile, 99.9, 1e-12);
	cr_assert_str_eq(cfg->model_path, "/models/m.onnx");
	cr_assert_str_eq(cfg->data.format, "npy");
	cr_assert(cfg->data.channels_last);
	cr_assert_eq(cfg->data.norm.scale, 0.5f);
	/* One std shared by the three channels. */
	cr_assert_eq(cfg->data.norm.n_channels, 3);
	cr_assert_eq(cfg->data.norm.mean[2], 0.3f);
	cr_assert_eq(cfg->data.norm.std[0], 2.0f);
	cr_assert_eq(cfg->data.norm.std[2], 2.0f);
	cr_assert_eq(cfg->data.seed, 42);
	cr_assert_eq(cfg->data.n_calib, 10);
	cr_assert_eq(cfg->data.n_valid, 20);
	cr_assert_eq(cfg->data.n_test, 30);
	cr_assert_eq(cfg->eval.batch, 4096);
	cr_assert_eq(cfg->eval.threads, 256);
	config_free(cfg);
}

Test(config, parse_from_string)
{
	struct config *cfg = NULL;
	cr_assert_eq(config_parse(config_text("", ""), NULL, NULL, &cfg), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_str_eq(cfg->path, "");
	cr_assert_str_eq(cfg->name, "study");
	cr_assert_str_eq(cfg->model_path, "models/m.onnx");
	cr_assert_str_eq(cfg->data.test_images, "/abs/test-img.gz");
	config_free(cfg);
	cr_assert_eq(config_parse(config_text("", ""), "/srv/cfg/", "nightly", &cfg), PRESSO_OK);
	cr_assert_str_eq(cfg->name, "nightly");
	cr_assert_str_eq(cfg->model_path, "/srv/cfg/models/m.onnx");
	config_free(cfg);
	/* Without a file there is nothing to prefix: the message starts with the key. */
	ASSERT_FAILS(config_parse("{\"data\": {}}", NULL, NULL, &cfg), PRESSO_E_CONFIG,
		     "model: expected a string");
	cr_assert_eq(strncmp(status_msg(), "model:", 6), 0, "%s", status_msg());
}

Test(config, missing_file)
{
	struct config *cfg = (void *)1;
	const char *path = fx_join(tmp, "absent.json");
	ASSERT_FAILS(config_load(path, &cfg), PRESSO_E_IO, "absent.json: No such file");
	cr_assert_null(cfg);
}

/* A device, a pipe or a folder is refused at once, saying what it is; a device
 * is never read until memory runs out. */
Test(config, non_regular_files_are_refused, .timeout = 20)
{
	struct config *cfg = (void *)1;
	ASSERT_FAILS(config_load("/dev/zero", &cfg), PRESSO_E_IO,
		     "/dev/zero: is a device, not a config file");
	cr_assert_null(cfg);
	ASSERT_FAILS(config_load(tmp, &cfg), PRESSO_E_IO, "is a folder, not a config file");
	cr_assert_eq(strncmp(status_msg(), tmp, strlen(tmp)), 0, "names the folder: %s",
		     status_msg());
	const char *fifo = fx_join(tmp, "pipe.json");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	ASSERT_FAILS(config_load(fifo, &cfg), PRESSO_E_IO, "pipe.json: is a pipe, not a config file");
}

Test(config, invalid_json_line_col)
{
	struct config *cfg = NULL;
	/* cJSON stops just after the stray comma on line 3. */
	ASSERT_FAILS(load_text("broken.json", "{\n  \"model\": \"m.onnx\",\n  \"data\": {,}\n}\n",
			       &cfg),
		     PRESSO_E_CONFIG, "broken.json:3:13: invalid JSON");
	ASSERT_FAILS(load_text("broken.json", "{\"model\" \"m\"}", &cfg), PRESSO_E_CONFIG,
		     "broken.json:1:10: invalid JSON near '\"m\"}'");
	ASSERT_FAILS(load_text("empty.json", "", &cfg), PRESSO_E_CONFIG, "empty.json:1:1");
	ASSERT_FAILS(load_text("trailing.json", "{} {}", &cfg), PRESSO_E_CONFIG,
		     "trailing.json:1:4");
	ASSERT_FAILS(load_text("array.json", "[1, 2]", &cfg), PRESSO_E_CONFIG,
		     "expected a JSON object at the top level");
}

Test(config, unknown_keys)
{
	expect_bad(", \"modle\": 1", "", PRESSO_E_CONFIG,
		   "bad.json: unknown key 'modle' (expected one of: name, model, data, eval, "
		   "quant, search, space, objectives, constraints, finetune)");
	expect_bad("", ", \"trian_images\": \"x\"", PRESSO_E_CONFIG,
		   "data: unknown key 'trian_images' (expected one of: format, train_images, ");
	expect_bad("", ", \"splits\": {\"seeed\": 3}", PRESSO_E_CONFIG,
		   "data.splits: unknown key 'seeed' (expected one of: seed, calibration, "
		   "validation, test)");
	expect_bad("", ", \"normalize\": {\"men\": [0]}", PRESSO_E_CONFIG,
		   "data.normalize: unknown key 'men'");
	expect_bad(", \"eval\": {\"batch_size\": 3}", "", PRESSO_E_CONFIG,
		   "eval: unknown key 'batch_size'");
	expect_bad(", \"model\": \"again.onnx\"", "", PRESSO_E_CONFIG, "key 'model' appears twice");
}

Test(config, wrong_types)
{
	expect_bad("", ", \"channels_last\": \"yes\"", PRESSO_E_CONFIG,
		   "data.channels_last: expected true or false, got the string \"yes\"");
	expect_bad(", \"eval\": {\"batch\": \"64\"}", "", PRESSO_E_CONFIG,
		   "eval.batch: expected an integer in 1..4096, got the string \"64\"");
	expect_bad(", \"eval\": []", "", PRESSO_E_CONFIG, "eval: expected an object, got an array");
	expect_bad(", \"search\": 3", "", PRESSO_E_CONFIG, "search: expected an object, got 3");
	expect_bad("", ", \"format\": \"csv\"", PRESSO_E_CONFIG,
		   "data.format: expected one of \"idx\", \"npy\", \"folder\", got the string "
		   "\"csv\"");
	expect_bad("", ", \"normalize\": {\"scale\": null}", PRESSO_E_CONFIG,
		   "data.normalize.scale: expected a number, got null");
	expect_bad(", \"name\": 7", "", PRESSO_E_CONFIG, "name: expected a string, got 7");
	expect_bad(", \"name\": \"\"", "", PRESSO_E_CONFIG, "name: expected a non-empty string");
}

Test(config, integers_out_of_range_or_non_integral)
{
	expect_bad(", \"eval\": {\"batch\": 5000}", "", PRESSO_E_CONFIG,
		   "eval.batch: expected an integer in 1..4096, got 5000");
	expect_bad(", \"eval\": {\"threads\": 0}", "", PRESSO_E_CONFIG,
		   "eval.threads: expected an integer in 1..256, got 0");
	expect_bad("", ", \"splits\": {\"validation\": 3.5}", PRESSO_E_CONFIG,
		   "data.splits.validation: expected an integer in 1..2147483647, got 3.5");
	expect_bad("", ", \"splits\": {\"seed\": -1}", PRESSO_E_CONFIG,
		   "data.splits.seed: expected an integer in 0..9007199254740991, got -1");
	expect_bad("", ", \"splits\": {\"test\": 1e300}", PRESSO_E_CONFIG,
		   "data.splits.test: expected an integer in 0..2147483647, got 1e+300");
	/* Integral values written as doubles are integers. */
	struct config *cfg = NULL;
	cr_assert_eq(load_text("ok.json", config_text(", \"eval\": {\"batch\": 32.0}", ""), &cfg),
		     PRESSO_OK, "%s", status_msg());
	cr_assert_eq(cfg->eval.batch, 32);
	config_free(cfg);
}

Test(config, bad_mean_std)
{
	expect_bad("", ", \"normalize\": {\"mean\": []}", PRESSO_E_CONFIG,
		   "data.normalize.mean: expected an array of 1..4 numbers, got 0 entries");
	expect_bad("", ", \"normalize\": {\"mean\": [0, 0, 0, 0, 0]}", PRESSO_E_CONFIG,
		   "data.normalize.mean: expected an array of 1..4 numbers, got 5 entries");
	expect_bad("", ", \"normalize\": {\"mean\": 0.5}", PRESSO_E_CONFIG,
		   "data.normalize.mean: expected an array of 1..4 numbers, got 0.5");
	expect_bad("", ", \"normalize\": {\"mean\": [0.1, \"a\"]}", PRESSO_E_CONFIG,
		   "data.normalize.mean[1]: expected a number, got the string \"a\"");
	expect_bad("", ", \"normalize\": {\"std\": [0.5, 0]}", PRESSO_E_CONFIG,
		   "data.normalize.std[1]: expected a number > 0, got 0");
	expect_bad("", ", \"normalize\": {\"std\": [-1]}", PRESSO_E_CONFIG,
		   "data.normalize.std[0]: expected a number > 0, got -1");
	expect_bad("", ", \"normalize\": {\"mean\": [0, 0, 0], \"std\": [1, 1]}", PRESSO_E_CONFIG,
		   "data.normalize: mean has 3 entries and std 2");
	expect_bad("", ", \"normalize\": {\"scale\": 0}", PRESSO_E_CONFIG,
		   "data.normalize.scale: expected a number > 0, got 0");
}

Test(config, missing_required)
{
	struct config *cfg = NULL;
	ASSERT_FAILS(load_text("m.json", "{\"data\": {" DATA_PATHS "}}", &cfg), PRESSO_E_CONFIG,
		     "m.json: model: expected a string, got nothing (the key is missing)");
	ASSERT_FAILS(load_text("m.json", "{\"model\": \"m.onnx\"}", &cfg), PRESSO_E_CONFIG,
		     "data: expected an object, got nothing");
	ASSERT_FAILS(load_text("m.json",
			       "{\"model\": \"m.onnx\", \"data\": {\"train_images\": \"a\", "
			       "\"train_labels\": \"b\", \"test_images\": \"c\"}}",
			       &cfg),
		     PRESSO_E_CONFIG, "data.test_labels: expected a string, got nothing");
	ASSERT_FAILS(load_text("m.json", "{\"model\": \"\", \"data\": {" DATA_PATHS "}}", &cfg),
		     PRESSO_E_CONFIG, "model: expected a file path");
	cr_assert_null(cfg);
}

/* An image folder: its paths resolve, its options read, the other format's
 * keys and bad values are named. */
Test(config, folder_format)
{
	struct config *cfg = NULL;
	const char *text =
		"{\"model\": \"m.onnx\", \"data\": {\"format\": \"folder\", \"train_dir\": \"img/train\", "
		"\"test_dir\": \"/abs/val\", \"resize\": 256, \"crop\": [224, 192], \"channels\": \"bgr\"}}";
	cr_assert_eq(load_text("f.json", text, &cfg), PRESSO_OK, "%s", status_msg());
	char want[4096];
	snprintf(want, sizeof want, "%s/img/train", tmp);
	cr_assert_str_eq(cfg->data.train_dir, want);
	cr_assert_str_eq(cfg->data.test_dir, "/abs/val");
	cr_assert_null(cfg->data.train_images);
	cr_assert_eq(cfg->data.resize, 256);
	cr_assert(cfg->data.crop_h == 224 && cfg->data.crop_w == 192);
	cr_assert_eq(cfg->data.channels, FOLDER_BGR);
	config_free(cfg);
	/* defaults: no resize, the crop and channels from the model */
	text = "{\"model\": \"m.onnx\", \"data\": {\"format\": \"folder\", \"train_dir\": \"a\", "
	       "\"test_dir\": \"b\", \"crop\": 32}}";
	cr_assert_eq(load_text("f.json", text, &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert(cfg->data.resize == 0 && cfg->data.crop_h == 32 && cfg->data.crop_w == 32);
	cr_assert_eq(cfg->data.channels, -1);
	config_free(cfg);

	static const struct {
		const char *data, *needle;
	} bad[] = {
		{"\"format\": \"folder\", \"test_dir\": \"b\"",
		 "data.train_dir: expected a string, got nothing"},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"crop\": [1, 2, 3]",
		 "data.crop: expected an integer in 1..16384 or an array of 2 of them, got 3 entries"},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"crop\": [224, 0]",
		 "data.crop[1]: expected an integer in 1..16384, got 0"},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"crop\": \"224\"",
		 "data.crop: expected an integer in 1..16384 or an array of 2 of them, got the string"},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"resize\": 0",
		 "data.resize: expected an integer in 1..16384, got 0"},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"channels\": \"rgba\"",
		 "data.channels: expected one of \"rgb\", \"bgr\", \"gray\", got the string \"rgba\""},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"train_images\": \"x\"",
		 "data.train_images: not used with \"format\": \"folder\""},
		{"\"format\": \"folder\", \"train_dir\": \"a\", \"test_dir\": \"b\", \"channels_last\": true",
		 "data.channels_last: not used with \"format\": \"folder\""},
		{DATA_PATHS ", \"resize\": 32",
		 "data.resize: not used with \"format\": \"idx\" (it belongs to \"format\": \"folder\")"},
		{"\"format\": \"npy\", " DATA_PATHS ", \"train_dir\": \"a\"",
		 "data.train_dir: not used with \"format\": \"npy\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char buf[2048];
		snprintf(buf, sizeof buf, "{\"model\": \"m.onnx\", \"data\": {%s}}", bad[i].data);
		cfg = NULL;
		ASSERT_FAILS(load_text("bad.json", buf, &cfg), PRESSO_E_CONFIG, bad[i].needle);
		cr_assert(strstr(status_msg(), "bad.json: "), "%s", status_msg());
		cr_assert_null(cfg);
	}
}

/* The shipped examples parse as they are (parsing does not open the model). */
Test(config, shipped_configs)
{
	static const char *const names[] = {"lenet", "mobilenetv2", "resnet"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char rel[64], model[4096];
		struct config *cfg = NULL;
		snprintf(rel, sizeof rel, "configs/%s.json", names[i]);
		cr_assert_eq(config_load(fx_src(rel), &cfg), PRESSO_OK, "%s: %s", rel,
			     status_msg());
		snprintf(model, sizeof model, "%s/configs/../models/%s.onnx", PRESSO_SOURCE_DIR,
			 names[i]);
		cr_assert_str_eq(cfg->model_path, model);
		cr_assert_str_eq(cfg->data.format, "idx");
		cr_assert_str_eq(cfg->data.train_images,
				 FX_FMNIST_DIR "/train-images-idx3-ubyte.gz");
		cr_assert_str_eq(cfg->data.test_labels, FX_FMNIST_DIR "/t10k-labels-idx1-ubyte.gz");
		cr_assert_eq(cfg->data.norm.scale, (float)(1.0 / 255));
		cr_assert_eq(cfg->data.norm.n_channels, 1);
		cr_assert_eq(cfg->data.norm.mean[0], 0.2860f);
		cr_assert_eq(cfg->data.norm.std[0], 0.3530f);
		cr_assert_eq(cfg->data.seed, 1);
		cr_assert_eq(cfg->data.n_calib, 1000);
		cr_assert_eq(cfg->data.n_valid, 5000);
		cr_assert_eq(cfg->data.n_test, 0);
		config_free(cfg);
	}
}

/* ---- the getters on their own ------------------------------------------------ */

Test(json_get, messages_and_defaults)
{
	cJSON *j = cJSON_Parse("{\"i\": 7, \"big\": 1e19, \"f\": 2.5, \"s\": \"b\", "
			       "\"o\": {\"k\": 1}, \"a\": [1, 2, 3], \"t\": true}");
	cr_assert(j);
	int64_t i = -5;
	double d = -5, arr[4];
	int n = 0;
	bool b = false;
	const char *s = NULL;
	const cJSON *o = NULL;
	/* Absent and optional: the default stays. */
	cr_assert_eq(json_get_int(j, "p", "nope", false, 0, 10, &i), PRESSO_OK);
	cr_assert_eq(i, -5);
	cr_assert_eq(json_get_int(NULL, "p", "nope", false, 0, 10, &i), PRESSO_OK);
	cr_assert_eq(json_get_int(j, "p", "i", true, 0, 10, &i), PRESSO_OK);
	cr_assert_eq(i, 7);
	ASSERT_FAILS(json_get_int(j, "p.q", "i", true, 8, INT64_MAX, &i), PRESSO_E_CONFIG,
		     "p.q.i: expected an integer >= 8, got 7");
	ASSERT_FAILS(json_get_int(j, "", "big", true, INT64_MIN, INT64_MAX, &i), PRESSO_E_CONFIG,
		     "big: expected an integer, got 1e+19");
	ASSERT_FAILS(json_get_int(j, "", "f", true, INT64_MIN, 3, &i), PRESSO_E_CONFIG,
		     "f: expected an integer <= 3, got 2.5");
	ASSERT_FAILS(json_get_int(NULL, "sec", "x", true, 0, 1, &i), PRESSO_E_CONFIG,
		     "sec.x: expected an integer in 0..1, got nothing");
	cr_assert_eq(json_get_double(j, "", "f", true, 0, 3, &d), PRESSO_OK);
	cr_assert_eq(d, 2.5);
	ASSERT_FAILS(json_get_double(j, "", "f", true, 0, 1, &d), PRESSO_E_CONFIG,
		     "f: expected a number in [0, 1], got 2.5");
	ASSERT_FAILS(json_get_double(j, "", "s", true, 0, HUGE_VAL, &d), PRESSO_E_CONFIG,
		     "s: expected a number >= 0, got the string \"b\"");
	cr_assert_eq(json_get_bool(j, "", "t", true, &b), PRESSO_OK);
	cr_assert(b);
	static const char *const choices[] = {"a", "b", NULL};
	cr_assert_eq(json_get_string(j, "", "s", true, choices, &s), PRESSO_OK);
	cr_assert_str_eq(s, "b");
	cr_assert_eq(json_get_object(j, "", "o", true, &o), PRESSO_OK);
	cr_assert_eq(json_get_int(o, "o", "k", true, 0, 1, &i), PRESSO_OK);
	cr_assert_eq(json_get_object(j, "", "none", false, &o), PRESSO_OK);
	cr_assert_null(o);
	cr_assert_eq(json_get_double_array(j, "", "a", true, 4, 0, 9, arr, &n), PRESSO_OK);
	cr_assert_eq(n, 3);
	cr_assert_eq(arr[2], 3.0);
	ASSERT_FAILS(json_get_double_array(j, "x", "a", true, 4, 0, 2, arr, &n), PRESSO_E_CONFIG,
		     "x.a[2]: expected a number in [0, 2], got 3");
	static const char *const allowed[] = {"i", "big", "f", "s", "o", "a", NULL};
	ASSERT_FAILS(json_check_keys(j, "root", allowed), PRESSO_E_CONFIG,
		     "root: unknown key 't' (expected one of: i, big, f, s, o, a)");
	cJSON_Delete(j);
}

Test(config, quant_section)
{
	struct config *cfg = NULL;
	cr_assert_eq(load_text("q.json", config_text("", ""), &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(cfg->quant.method, CALIB_PERCENTILE, "percentile calibration by default");
	cr_assert_float_eq(cfg->quant.percentile, 99.99, 1e-12);
	cr_assert(!cfg->quant.requant_q31, "float requantization by default");
	config_free(cfg);
	cr_assert_eq(load_text("q.json", config_text(", \"quant\": {\"requant\": \"q31\"}", ""),
			       &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert(cfg->quant.requant_q31);
	config_free(cfg);
	expect_bad(", \"quant\": {\"requant\": \"fixed\"}", "", PRESSO_E_CONFIG, "quant.requant");
	expect_bad(", \"quant\": {\"calibration\": \"median\"}", "", PRESSO_E_CONFIG,
		   "quant.calibration");
	expect_bad(", \"quant\": {\"percentile\": 100.5}", "", PRESSO_E_CONFIG, "quant.percentile");
	expect_bad(", \"quant\": {\"bits\": 4}", "", PRESSO_E_CONFIG, "quant: unknown key 'bits'");
	expect_bad(", \"quant\": 3", "", PRESSO_E_CONFIG, "quant");
}
