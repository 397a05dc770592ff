/* compress.c - `presso compress`: a policy applied to a study's model, checked on
 * a split with presso's INT8 engine, written as a deployable model: ONNX in QDQ
 * form (onnx_export.h) or presso's own .presso file (presso_file.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "config/config.h"
#include "evaluators/evaluate.h"
#include "evaluators/trial.h"
#include "format/onnx_export.h"
#include "quant/policy.h"
#include "format/presso_file.h"
#include "quant/qengine.h"

enum out_format { OUT_ONNX, OUT_PRESSO, OUT_UNKNOWN };

static enum out_format format_of(const char *path)
{
	size_t n = strlen(path);
	if (n > 5 && strcmp(path + n - 5, ".onnx") == 0)
		return OUT_ONNX;
	if (n > 7 && strcmp(path + n - 7, ".presso") == 0)
		return OUT_PRESSO;
	return OUT_UNKNOWN;
}

/* "presso compress, policy P: {canonical policy JSON}", for the ONNX doc_string;
 * NULL when out of memory. */
static char *producer_note(const char *policy_arg, const struct policy *pol,
			   const struct study_ctx *ctx)
{
	char *json = policy_to_json(pol, ctx->layers);
	if (!json)
		return NULL;
	size_t n = strlen(json) + strlen(policy_arg) + strlen(ctx->cfg->name) + 96;
	char *note = malloc(n);
	if (note)
		snprintf(note, n, "presso %s compress, study '%s', policy %s: %s", PRESSO_VERSION,
			 ctx->cfg->name, policy_arg, json);
	free(json);
	return note;
}

int cmd_compress(int argc, char **argv)
{
	const char *config_path = NULL, *policy_arg = NULL, *output = NULL, *split_name = "test";
	bool quiet = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, dataset, splits, calibration)",
		 NULL, &config_path},
		{"policy", CLI_STRING, "FILE|int8|int4",
		 "the per-layer policy (JSON from presso export, or a shorthand)", NULL, &policy_arg},
		{"output", CLI_STRING, "FILE",
		 "-o FILE: out.onnx (ONNX, QDQ form) or out.presso (presso's format)", NULL, &output},
		{"split", CLI_STRING, "test|valid", "split to check accuracy on (default: test)", NULL,
		 &split_name},
		{"quiet", CLI_FLAG, NULL, "no progress lines on stderr", &quiet, NULL},
	};
	const struct cli_cmd cmd = {
		"compress",
		"Applies a policy to the config's model (calibrating on the config's\n"
		"calibration split), measures the compressed model's top-1 accuracy with\n"
		"presso's INT8 engine on a split, prints it with the parameter count and\n"
		"size_bytes, and writes the model. The extension of -o picks the format:\n"
		"  .onnx    ONNX opset 13 in QDQ form: int8 weights with per-channel scales\n"
		"           and int32 biases behind DequantizeLinear, every uint8 activation\n"
		"           as QuantizeLinear -> DequantizeLinear (narrower activations\n"
		"           clipped to their range first); runs in ONNX Runtime and other\n"
		"           ONNX runtimes (README: presso compress)\n"
		"  .presso  presso's own format: packed sub-byte weights, size_bytes exact\n"
		"The file is replaced atomically, never half-written.",
		"--config FILE --policy FILE|int8|int4 -o FILE.onnx|FILE.presso [--split test|valid] "
		"[--quiet]",
		opts, 5};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path) || !cli_require(&cmd, "policy", policy_arg) ||
	    !cli_require(&cmd, "output", output))
		return 2;
	if (strcmp(split_name, "test") != 0 && strcmp(split_name, "valid") != 0) {
		fprintf(stderr, "presso compress: --split must be test or valid, not '%s'\n",
			split_name);
		return 2;
	}
	enum out_format fmt = format_of(output);
	if (fmt == OUT_UNKNOWN) {
		fprintf(stderr,
			"presso compress: -o %s: the file name must end in .onnx (ONNX, QDQ form) or "
			".presso (presso's format)\n",
			output);
		return 2;
	}
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct policy *pol = NULL;
	struct built_model b = {0};
	char *note = NULL;
	enum presso_status s = config_load(config_path, &cfg);
	if (s == PRESSO_OK)
		s = study_ctx_open(cfg, !quiet, &ctx);
	if (s == PRESSO_OK)
		s = policy_load(policy_arg, ctx->layers, ctx->n_layers, &pol);
	if (s != PRESSO_OK)
		goto fail;
	if (!quiet)
		fprintf(stderr, "presso: building the model for policy %s\n", policy_arg);
	if ((s = trial_build(ctx, pol, &b)) != PRESSO_OK)
		goto wrap;
	bool on_test = strcmp(split_name, "test") == 0;
	const struct dataset *ds = on_test ? ctx->test : ctx->train;
	const struct split *sp = on_test ? &ctx->test_split : &ctx->valid;
	struct eval_model em = {b.g, b.qm};
	struct eval_result r;
	if ((s = eval_accuracy(&em, ds, &cfg->data.norm, sp, cfg->eval.batch, cfg->eval.threads,
			       &r)) != PRESSO_OK)
		goto wrap;
	struct qmodel_size z;
	qmodel_size(b.qm, &z);
	double fp32 = on_test ? ctx->fp32_test_accuracy : ctx->fp32_valid_accuracy;
	printf("model:       %s\n", cfg->model_path);
	printf("policy:      %s\n", policy_arg);
	printf("split:       %s, %lld images\n", split_name, (long long)r.n_images);
	printf("FP32:        %.2f%% top-1, %lld params, %lld bytes\n", fp32,
	       (long long)ctx->fp32_size.params, (long long)ctx->fp32_size.size_bytes);
	printf("compressed:  %.2f%% top-1 (%+.2f vs FP32), %lld params, %lld bytes "
	       "(size_bytes, %.2fx smaller; mean %.2f weight bits)\n",
	       r.accuracy_pct, r.accuracy_pct - fp32, (long long)z.params,
	       (long long)z.size_bytes,
	       (double)ctx->fp32_size.size_bytes / (double)(z.size_bytes ? z.size_bytes : 1),
	       z.mean_bits);
	built_model_report(&b, stdout);
	fflush(stdout);
	int64_t file_bytes = -1;
	if (fmt == OUT_ONNX) {
		note = producer_note(policy_arg, pol, ctx);
		s = note ? onnx_export_qdq(b.qm, note, output)
			 : status_fail(PRESSO_E_NOMEM, "out of memory");
		struct stat st;
		if (s == PRESSO_OK && stat(output, &st) == 0)
			file_bytes = (int64_t)st.st_size;
	} else {
		s = presso_file_write(b.qm, output, &file_bytes);
	}
	if (s != PRESSO_OK)
		goto fail;
	printf("written:     %s (%s, %lld bytes)\n", output,
	       fmt == OUT_ONNX ? "ONNX opset 13, QDQ" : "presso", (long long)file_bytes);
	rc = 0;
	goto done;
wrap:
	status_wrap(s, "%s", cfg->model_path);
fail:
	rc = cli_fail("compress", s);
done:
	free(note);
	built_model_free(&b);
	policy_free(pol);
	study_ctx_free(ctx);
	config_free(cfg);
	return rc;
}
