/* test_cli.c - the presso command as a user runs it: help, version, exit codes,
 * `info` and `eval` on the shipped models, and errors that name the bad input
 * and leave nothing on stdout. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fixtures.h"
#include "tests/onnx_builder.h"

static int presso(const char *args, char **out, char **err)
{
	int rc = fx_presso(args, out, err);
	cr_assert_geq(rc, 0, "could not run presso %s", args);
	return rc;
}

Test(cli, help_and_version)
{
	char *out, *err;
	cr_assert_eq(presso("--help", &out, &err), 0);
	cr_assert(strstr(out, "info") && strstr(out, "eval"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(presso("--version", &out, &err), 0);
	cr_assert(strncmp(out, "presso ", 7) == 0, "%s", out);
	free(out);
	free(err);
	cr_assert_eq(presso("info --help", &out, &err), 0);
	cr_assert(strstr(out, "--model"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(presso("eval --help", &out, &err), 0);
	cr_assert(strstr(out, "--config") && strstr(out, "--split"), "%s", out);
	free(out);
	free(err);
}

Test(cli, usage_errors_exit_2)
{
	char *out, *err;
	cr_assert_eq(presso("", &out, &err), 2);
	free(out);
	free(err);
	cr_assert_eq(presso("frobnicate", &out, &err), 2);
	cr_assert(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(presso("info --modle x.onnx", &out, &err), 2);
	cr_assert(strstr(err, "unknown option '--modle'"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(presso("info", &out, &err), 2);
	cr_assert(strstr(err, "--model is required"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(presso("eval --config", &out, &err), 2);
	cr_assert(strstr(err, "needs a value"), "%s", err);
	free(out);
	free(err);
}

Test(cli, info_table_and_json)
{
	char *out, *err, args[1024];
	snprintf(args, sizeof args, "info --model '%s'", fx_src("models/mobilenetv2.onnx"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "[N,1,28,28]"), "%s", out);
	cr_assert(strstr(out, "DWConv"), "depthwise convolutions are marked: %s", out);
	cr_assert(strstr(out, "Gemm"), "%s", out);
	free(out);
	free(err);
	snprintf(args, sizeof args, "info --json --model '%s'", fx_src("models/lenet.onnx"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "not JSON: %s", out);
	const cJSON *layers = cJSON_GetObjectItem(j, "layers");
	cr_assert_eq(cJSON_GetArraySize(layers), 5, "LeNet has 2 convs and 3 dense layers");
	const cJSON *l0 = cJSON_GetArrayItem(layers, 0);
	cr_assert_str_eq(cJSON_GetObjectItem(l0, "op")->valuestring, "Conv");
	cr_assert_eq(cJSON_GetObjectItem(l0, "params")->valuedouble, 6 * 25 + 6);
	cr_assert_eq(cJSON_GetObjectItem(l0, "macs")->valuedouble, 6 * 28 * 28 * 25);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recurrent_weights")), 0);
	cJSON_Delete(j);
	free(out);
	free(err);
	/* the LSTM's R (64 x 256) under its projection, layer 0 */
	snprintf(args, sizeof args, "info --json --model '%s'", fx_src("models/lstm.onnx"));
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	j = cJSON_Parse(out);
	cr_assert_not_null(j, "not JSON: %s", out);
	const cJSON *rec = cJSON_GetObjectItem(j, "recurrent_weights");
	cr_assert_eq(cJSON_GetArraySize(rec), 1, "%s", out);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rec, 0), "layer")->valuedouble, 0);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rec, 0), "params")->valuedouble, 64 * 256);
	cJSON_Delete(j);
	free(out);
	free(err);
}

Test(cli, bad_models_exit_2_naming_the_problem)
{
	char *dir = fx_tmpdir();
	char *out, *err, args[1024];
	snprintf(args, sizeof args, "info --model '%s'", fx_join(dir, "missing.onnx"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "missing.onnx") && strstr(err, "No such file"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);

	/* the first kilobyte of a real model */
	size_t n;
	char *bytes = fx_read(fx_src("models/lenet.onnx"), &n);
	cr_assert_not_null(bytes);
	cr_assert(fx_write(fx_join(dir, "cut.onnx"), bytes, n / 2));
	free(bytes);
	snprintf(args, sizeof args, "info --model '%s'", fx_join(dir, "cut.onnx"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "cut.onnx"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);

	/* an unsupported op: exit 2, the node and op named */
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	mb_node(&b, "GatherElements", "rnn3", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	uint8_t *model = mb_pack(&b, &n);
	cr_assert(fx_write(fx_join(dir, "lstm.onnx"), model, n));
	mb_free(&b);
	snprintf(args, sizeof args, "info --model '%s'", fx_join(dir, "lstm.onnx"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "node 'rnn3': op GatherElements is not supported"), "%s", err);
	free(out);
	free(err);
	remove(fx_join(dir, "cut.onnx"));
	remove(fx_join(dir, "lstm.onnx"));
	rmdir(dir);
	free(dir);
}

static char *write_config(const char *dir, const char *body)
{
	const char *p = fx_join(dir, "c.json");
	cr_assert(fx_write(p, body, strlen(body)));
	return strdup(p);
}

Test(cli, eval_json_on_a_small_test_split)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": 500, \"test\": 500}}}",
		 fx_src("models/lenet.onnx"));
	char *cfg = write_config(dir, body);
	char *out, *err, args[2048];
	snprintf(args, sizeof args, "eval --json --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	cr_assert_eq(cJSON_GetObjectItem(j, "images")->valuedouble, 500);
	const cJSON *fp32 = cJSON_GetObjectItem(j, "fp32");
	cr_assert_not_null(fp32, "%s", out);
	double acc = cJSON_GetObjectItem(fp32, "accuracy")->valuedouble;
	cr_assert(acc > 80.0 && acc <= 100.0, "LeNet accuracy %.2f on 500 test images", acc);
	cr_assert_gt(cJSON_GetObjectItem(fp32, "images_per_s")->valuedouble, 0);
	cr_assert_null(cJSON_GetObjectItem(j, "quantized"), "no policy, no quantized block");
	cJSON_Delete(j);
	free(out);
	free(err);
	snprintf(args, sizeof args, "eval --json --policy int4 --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	const cJSON *q = cJSON_GetObjectItem(j, "quantized");
	cr_assert_not_null(q, "%s", out);
	double qacc = cJSON_GetObjectItem(q, "accuracy")->valuedouble;
	double fp = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "fp32"), "accuracy")->valuedouble;
	cr_assert_float_eq(cJSON_GetObjectItem(q, "accuracy_delta")->valuedouble, qacc - fp, 1e-9);
	cr_assert(fabs(qacc - fp) < 3.0, "W4A8 LeNet %.2f vs FP32 %.2f", qacc, fp);
	double ratio = cJSON_GetObjectItem(q, "compression_ratio")->valuedouble;
	cr_assert(ratio > 5.0 && ratio < 8.0, "int4 compression ratio %.2f", ratio);
	cr_assert_gt(cJSON_GetObjectItem(q, "latency_us")->valuedouble, 0);
	cr_assert_gt(cJSON_GetObjectItem(q, "bops")->valuedouble, 0);
	cJSON_Delete(j);
	free(out);
	free(err);
	snprintf(args, sizeof args, "eval --json --split valid --threads 2 --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 0, "%s", err);
	j = cJSON_Parse(out);
	cr_assert_eq(cJSON_GetObjectItem(j, "images")->valuedouble, 500);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "split")->valuestring, "valid");
	cJSON_Delete(j);
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	rmdir(dir);
	free(dir);
}

Test(cli, eval_bad_config_exit_2)
{
	char *dir = fx_tmpdir();
	char *cfg = write_config(dir, "{\"model\": \"m.onnx\", \"data\": {\"format\": \"idx\",, }}");
	char *out, *err, args[2048];
	snprintf(args, sizeof args, "eval --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "c.json"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	cfg = write_config(dir, "{\"model\": \"m.onnx\", \"dta\": {}}");
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "dta"), "%s", err);
	free(out);
	free(err);
	snprintf(args, sizeof args, "eval --split train --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "--split"), "%s", err);
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	rmdir(dir);
	free(dir);
}

/* A device or a folder given as a model is refused at once, saying what it is,
 * from the command line and from a config; nothing is read from /dev/zero. */
Test(cli, non_regular_model_files_exit_2, .timeout = 60)
{
	char *dir = fx_tmpdir();
	char *out, *err, args[2048];
	cr_assert_eq(presso("info --model /dev/zero", &out, &err), 2);
	cr_assert(strstr(err, "/dev/zero: is a device, not a model file"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
	snprintf(args, sizeof args, "info '%s'", dir);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "is a folder, not a model file"), "%s", err);
	free(out);
	free(err);
	char *cfg = write_config(dir, "{\"model\": \"/dev/zero\", \"data\": {"
				      "\"train_images\": \"a\", \"train_labels\": \"b\","
				      "\"test_images\": \"c\", \"test_labels\": \"d\"}}");
	snprintf(args, sizeof args, "eval --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "/dev/zero: is a device, not a model file"), "%s", err);
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	rmdir(dir);
	free(dir);
}

/* An empty or cut .presso or ONNX file is reported as empty or truncated, with
 * its name; an empty .presso file is not called an ONNX model. */
Test(cli, empty_and_truncated_models_say_so)
{
	char *dir = fx_tmpdir();
	char *out, *err, args[2048];
	const char *names[] = {"m.presso", "m.onnx"};
	for (int i = 0; i < 2; i++) {
		cr_assert(fx_write(fx_join(dir, names[i]), "", 0));
		snprintf(args, sizeof args, "info '%s'", fx_join(dir, names[i]));
		cr_assert_eq(presso(args, &out, &err), 2);
		cr_assert(strstr(err, names[i]) && strstr(err, "the file is empty (0 bytes)"), "%s",
			  err);
		cr_assert_null(strstr(err, "ONNX"), "%s", err);
		free(out);
		free(err);
		remove(fx_join(dir, names[i]));
	}
	/* the first bytes of a .presso file's magic, under another name */
	cr_assert(fx_write(fx_join(dir, "m.bin"), "PRESS", 5));
	snprintf(args, sizeof args, "info '%s'", fx_join(dir, "m.bin"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "m.bin: truncated: 5 bytes"), "%s", err);
	free(out);
	free(err);
	remove(fx_join(dir, "m.bin"));
	rmdir(dir);
	free(dir);
}

/* A Reshape whose target shape wraps around int64 used to load and crash `eval`:
 * it is refused, exit 2, naming the file and the node. */
Test(cli, overflowing_reshape_exit_2_naming_the_node)
{
	char *dir = fx_tmpdir();
	char *out, *err, args[2048];
	size_t n;
	struct mb b;
	/* 5 * 3689348814741910480 wraps to 784 = 1 * 28 * 28 in int64 */
	mb_init(&b, 13);
	mb_input(&b, "x", (int64_t[]){-1, 1, 28, 28}, 4);
	mb_init_i64(&b, "shape", (int64_t[]){3}, 1, (int64_t[]){0, 5, 3689348814741910480});
	mb_node(&b, "Reshape", "reshape1", (const char *[]){"x", "shape", NULL}, "r");
	Onnx__NodeProto *t = mb_node(&b, "Transpose", "t", (const char *[]){"r", NULL}, "y");
	mb_attr_ints(&b, t, "perm", (int64_t[]){0, 2, 1}, 3);
	mb_output(&b, "y");
	uint8_t *model = mb_pack(&b, &n);
	cr_assert(fx_write(fx_join(dir, "wrap.onnx"), model, n));
	mb_free(&b);
	snprintf(args, sizeof args, "info '%s'", fx_join(dir, "wrap.onnx"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "wrap.onnx") && strstr(err, "node 'reshape1': Reshape target shape"),
		  "%s", err);
	free(out);
	free(err);
	remove(fx_join(dir, "wrap.onnx"));
	rmdir(dir);
	free(dir);
}

/* A model of an opset newer than presso implements is refused, exit 2, naming
 * its opset and the newest supported. */
Test(cli, newer_opset_exit_2_naming_the_opset)
{
	char *dir = fx_tmpdir();
	char *out, *err, args[2048];
	size_t n;
	struct mb b;
	mb_init(&b, 99);
	mb_input(&b, "x", (int64_t[]){-1, 4}, 2);
	mb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, "y");
	mb_output(&b, "y");
	uint8_t *model = mb_pack(&b, &n);
	cr_assert(fx_write(fx_join(dir, "new.onnx"), model, n));
	mb_free(&b);
	snprintf(args, sizeof args, "info '%s'", fx_join(dir, "new.onnx"));
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "opset 99; presso supports opsets up to 18"), "%s", err);
	free(out);
	free(err);
	remove(fx_join(dir, "new.onnx"));
	rmdir(dir);
	free(dir);
}

/* Writes n 28x28 images and their labels as raw IDX files in dir. */
static void write_idx(const char *dir, int n, const uint8_t *labels)
{
	size_t img_bytes = 16 + (size_t)n * 28 * 28;
	uint8_t *img = calloc(1, img_bytes), lab[8 + 64];
	cr_assert(n <= 64 && img);
	const uint8_t img_head[16] = {0, 0, 8, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, 28, 0, 0, 0, 28};
	const uint8_t lab_head[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
	memcpy(img, img_head, sizeof img_head);
	for (size_t i = 16; i < img_bytes; i++)
		img[i] = (uint8_t)(i * 7);
	memcpy(lab, lab_head, sizeof lab_head);
	memcpy(lab + 8, labels, (size_t)n);
	cr_assert(fx_write(fx_join(dir, "img.idx"), img, img_bytes));
	cr_assert(fx_write(fx_join(dir, "lab.idx"), lab, 8 + (size_t)n));
	free(img);
}

static char *idx_config(const char *dir, const char *normalize)
{
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"model\": \"%s\", \"data\": {\"format\": \"idx\","
		 "\"train_images\": \"img.idx\", \"train_labels\": \"lab.idx\","
		 "\"test_images\": \"img.idx\", \"test_labels\": \"lab.idx\","
		 "\"normalize\": %s,"
		 "\"splits\": {\"seed\": 1, \"calibration\": 4, \"validation\": 4, \"test\": 10}}}",
		 fx_src("models/lenet.onnx"), normalize);
	return write_config(dir, body);
}

/* A label past the model's classes is named by its file, index and value: the
 * model's output is not what is wrong. */
Test(cli, label_past_the_model_classes_names_the_label)
{
	char *dir = fx_tmpdir();
	uint8_t labels[10] = {0, 1, 2, 3, 4, 5, 6, 200, 8, 9};
	write_idx(dir, 10, labels);
	char *cfg = idx_config(dir, "{\"mean\": [0.5], \"std\": [0.5]}");
	char *out, *err, args[2048];
	snprintf(args, sizeof args, "eval --split test --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "lab.idx: label 7 is 200"), "%s", err);
	cr_assert(strstr(err, "10 classes"), "%s", err);
	cr_assert_null(strstr(err, "expected [N,"), "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	remove(fx_join(dir, "img.idx"));
	remove(fx_join(dir, "lab.idx"));
	rmdir(dir);
	free(dir);
}

/* Three means for one-channel images: the config file, the field, its count and
 * what to give instead. */
Test(cli, normalize_count_names_config_and_field)
{
	char *dir = fx_tmpdir();
	uint8_t labels[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	write_idx(dir, 10, labels);
	char *cfg = idx_config(dir, "{\"mean\": [0.5, 0.5, 0.5], \"std\": [0.5]}");
	char *out, *err, args[2048];
	snprintf(args, sizeof args, "eval --split test --config '%s'", cfg);
	cr_assert_eq(presso(args, &out, &err), 2);
	cr_assert(strstr(err, "c.json: data.normalize.mean has 3 values, but the images of "),
		  "%s", err);
	cr_assert(strstr(err, "img.idx have 1 channel: give 1 value"), "%s", err);
	cr_assert_null(strstr(err, "or 1"), "%s", err);
	free(out);
	free(err);
	remove(cfg);
	free(cfg);
	remove(fx_join(dir, "img.idx"));
	remove(fx_join(dir, "lab.idx"));
	rmdir(dir);
	free(dir);
}
