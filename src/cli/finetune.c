/* finetune.c - `presso finetune`: a policy's quantized model fine-tuned with
 * quantization-aware training and distillation from the FP32 model
 * (evaluators/finetune.h), scored on a split beside the policy's PTQ model,
 * and written as a .presso or QDQ ONNX model. A checkpoint beside the output
 * (or at --checkpoint) lets a killed run resume where it stopped; it is
 * removed once the model is written.
 *
 * With --db/--study/--trial the policy is that PTQ trial's, and the result is
 * stored in the study beside it: a fine-tuned trial of its own (validation and
 * test accuracy, size, the settings, the tuned model's bytes; db/README.md,
 * "Fine-tuned trials"), in one transaction once training is done, so a killed
 * run stores nothing (its checkpoint, beside the database without -o, holds
 * the progress). The store is opened and the trial checked before anything
 * slow, and the config's model and data splits must be the study's. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/json_get.h"
#include "cli/cli.h"
#include "config/config.h"
#include "db/store.h"
#include "evaluators/evaluate.h"
#include "evaluators/finetune.h"
#include "evaluators/trial.h"
#include "format/onnx_export.h"
#include "format/presso_file.h"
#include "quant/policy.h"
#include "search/driver.h"
#include "search/signals.h"
#include "train/train_config.h"

#define MAX_EPOCHS 100000
#define MAX_STEPS 1000000000

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

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static enum presso_status score(const struct study_ctx *ctx, const struct graph *g,
				const struct qmodel *qm, bool on_test, struct eval_result *r)
{
	const struct config *cfg = ctx->cfg;
	struct eval_model em = {g, qm};
	return eval_accuracy(&em, on_test ? ctx->test : ctx->train, &cfg->data.norm,
			     on_test ? &ctx->test_split : &ctx->valid, cfg->eval.batch,
			     cfg->eval.threads, r);
}

/* --db/--study/--trial: the store opened for writing, the study, and its
 * trial, which must be a complete PTQ trial of the config's model. */
static enum presso_status open_trial(const char *db, const char *study, int64_t trial,
				     const struct config *cfg, struct store **st,
				     struct study_info *info, struct store_trial **t)
{
	char model_hex[SHA256_HEX_BYTES];
	enum presso_status s = store_open(db, 0, st);
	if (s == PRESSO_OK)
		s = store_find_study(*st, study, info);
	if (s == PRESSO_OK)
		s = store_get_trial(*st, info->id, trial, t);
	if (s != PRESSO_OK)
		return s;
	if ((*t)->state != TRIAL_COMPLETE)
		return status_fail(PRESSO_E_USAGE,
				   "trial %lld of study '%s' is %s; only a complete trial can be "
				   "fine-tuned",
				   (long long)trial, study, store_trial_state_str((*t)->state));
	if ((*t)->parent_trial)
		return status_fail(PRESSO_E_USAGE,
				   "trial %lld of study '%s' is itself fine-tuned (from trial %lld); "
				   "give --trial %lld",
				   (long long)trial, study, (long long)(*t)->parent_trial,
				   (long long)(*t)->parent_trial);
	if ((s = sha256_file(cfg->model_path, model_hex)) != PRESSO_OK)
		return s;
	if (strcmp(model_hex, info->model_sha256) != 0)
		return status_fail(PRESSO_E_USAGE,
				   "the config's model %s is not study '%s''s model %s (their "
				   "SHA-256 differ): give the study's config",
				   cfg->model_path, study, info->model_path);
	/* the same splits, so that the accuracies stand beside the PTQ trial's */
	char *data = driver_dataset_text(cfg);
	if (!data)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	if (strcmp(data, info->dataset) != 0)
		s = status_fail(PRESSO_E_USAGE,
				"the config's data (%s) is not study '%s''s (%s): give the study's "
				"config",
				data, study, info->dataset);
	free(data);
	return s;
}

int cmd_finetune(int argc, char **argv)
{
	const char *config_path = NULL, *policy_arg = NULL, *output = NULL, *split_name = "test";
	const char *epochs_arg = NULL, *steps_arg = NULL, *ckpt_arg = NULL, *threads_arg = NULL;
	const char *db = NULL, *study = NULL, *trial_arg = NULL;
	bool quiet = false, restart = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, dataset, splits, finetune section)",
		 NULL, &config_path},
		{"policy", CLI_STRING, "FILE|int8|int4", "the per-layer policy to fine-tune", NULL,
		 &policy_arg},
		{"output", CLI_STRING, "FILE", "-o FILE: tuned.presso or tuned.onnx (QDQ)", NULL,
		 &output},
		{"epochs", CLI_STRING, "N", "passes over the training images (default: finetune.epochs)",
		 NULL, &epochs_arg},
		{"steps", CLI_STRING, "N", "steps in all instead of epochs", NULL, &steps_arg},
		{"threads", CLI_STRING, "N", "training threads (default: finetune.threads, 0 = all cores)",
		 NULL, &threads_arg},
		{"checkpoint", CLI_STRING, "FILE", "checkpoint path (default: the output + .ckpt)", NULL,
		 &ckpt_arg},
		{"restart", CLI_FLAG, NULL, "start over, ignoring an existing checkpoint", &restart, NULL},
		{"split", CLI_STRING, "test|valid", "split to score on (default: test)", NULL,
		 &split_name},
		{"quiet", CLI_FLAG, NULL, "no progress lines on stderr", &quiet, NULL},
		{"db", CLI_STRING, "FILE", "record the result in this study database", NULL, &db},
		{"study", CLI_STRING, "NAME", "the study (with --db)", NULL, &study},
		{"trial", CLI_STRING, "N", "fine-tune this PTQ trial's policy (with --db)", NULL,
		 &trial_arg},
	};
	const struct cli_cmd cmd = {
		"finetune",
		"Fine-tunes a policy's compressed model: quantization-aware training at the\n"
		"policy's weight and activation bits (straight-through gradients, pruned\n"
		"weights kept at zero, low-rank factors as two layers) with distillation\n"
		"from the FP32 model, on the training images outside the validation split.\n"
		"The config's \"finetune\" section sets epochs, batch, optimizer, schedule,\n"
		"distillation weight and temperature, the quantization penalty and the seed\n"
		"(src/train/train_config.h). Prints the PTQ and the fine-tuned accuracy on a\n"
		"split and writes the tuned model (.presso or QDQ ONNX, replaced atomically).\n"
		"A checkpoint is written as it trains: run the same command again after an\n"
		"interruption (Ctrl-C, kill -9) and it resumes; it is removed at the end.\n"
		"With --db FILE --study S --trial N it tunes trial N's policy and stores the\n"
		"result in the study as a fine-tuned trial beside trial N (presso pareto marks\n"
		"it; presso export -o FILE.presso writes its weights); -o is then optional.",
		"--config FILE (--policy FILE|int8|int4 | --db FILE --study S --trial N)\n"
		"       [-o FILE.presso|FILE.onnx] [--epochs N | --steps N] [--threads N]\n"
		"       [--checkpoint FILE] [--restart] [--split test|valid] [--quiet]",
		opts, 13};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	bool recording = db || study || trial_arg;
	if (!cli_require(&cmd, "config", config_path))
		return 2;
	if (recording && (!cli_require(&cmd, "db", db) || !cli_require(&cmd, "study", study) ||
			  !cli_require(&cmd, "trial", trial_arg)))
		return 2;
	if (recording && policy_arg) {
		fprintf(stderr, "presso finetune: --policy and --trial contradict each other: "
				"the trial's policy is the one fine-tuned\n");
		return 2;
	}
	if (!recording && (!cli_require(&cmd, "policy", policy_arg) ||
			   !cli_require(&cmd, "output", output)))
		return 2;
	int64_t trial = 0;
	if (trial_arg && !parse_int(trial_arg, 1, INT64_MAX, &trial)) {
		fprintf(stderr, "presso finetune: --trial must be a trial number (1, 2, ...), not '%s'\n",
			trial_arg);
		return 2;
	}
	if (strcmp(split_name, "test") != 0 && strcmp(split_name, "valid") != 0) {
		fprintf(stderr, "presso finetune: --split must be test or valid, not '%s'\n", split_name);
		return 2;
	}
	enum out_format fmt = output ? format_of(output) : OUT_PRESSO;
	if (fmt == OUT_UNKNOWN) {
		fprintf(stderr,
			"presso finetune: -o %s: the file name must end in .presso or .onnx\n", output);
		return 2;
	}
	int64_t epochs = -1, steps = 0, threads = -1;
	if (epochs_arg && !parse_int(epochs_arg, 1, MAX_EPOCHS, &epochs)) {
		fprintf(stderr, "presso finetune: --epochs must be an integer in 1..%d, not '%s'\n",
			MAX_EPOCHS, epochs_arg);
		return 2;
	}
	if (steps_arg && !parse_int(steps_arg, 1, MAX_STEPS, &steps)) {
		fprintf(stderr, "presso finetune: --steps must be an integer in 1..%d, not '%s'\n",
			MAX_STEPS, steps_arg);
		return 2;
	}
	if (epochs_arg && steps_arg) {
		fprintf(stderr, "presso finetune: --epochs and --steps contradict each other\n");
		return 2;
	}
	if (threads_arg && !parse_int(threads_arg, 1, 256, &threads)) {
		fprintf(stderr, "presso finetune: --threads must be an integer in 1..256, not '%s'\n",
			threads_arg);
		return 2;
	}
	char *ckpt = NULL;
	if (ckpt_arg) {
		ckpt = strdup(ckpt_arg);
	} else if (output) {
		size_t n = strlen(output) + 6;
		if ((ckpt = malloc(n)))
			snprintf(ckpt, n, "%s.ckpt", output);
	} else { /* beside the database */
		size_t n = strlen(db) + 64;
		if ((ckpt = malloc(n)))
			snprintf(ckpt, n, "%s.finetune-trial-%lld.ckpt", db, (long long)trial);
	}
	if (!ckpt)
		return cli_fail("finetune", status_fail(PRESSO_E_NOMEM, "out of memory"));
	/* before any other thread exists (signals.h) */
	struct signals *sig = NULL;
	enum presso_status s = signals_catch(&sig);
	if (s != PRESSO_OK) {
		free(ckpt);
		return cli_fail("finetune", s);
	}
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct policy *pol = NULL;
	struct built_model b = {0};
	struct finetune_result fr = {0};
	struct train_config tc;
	const cJSON *sec = NULL;
	struct store *store = NULL;
	struct study_info info = {0};
	struct store_trial *parent = NULL;
	uint8_t *model_bytes = NULL;
	char *settings = NULL;
	char policy_name[64] = "";
	if ((s = config_load(config_path, &cfg)) != PRESSO_OK)
		goto fail;
	if (recording && (s = open_trial(db, study, trial, cfg, &store, &info, &parent)) != PRESSO_OK)
		goto fail;
	if (recording) {
		snprintf(policy_name, sizeof policy_name, "trial %lld", (long long)trial);
		policy_arg = policy_name;
	}
	if ((s = json_get_object(cfg->json, "", "finetune", false, &sec)) != PRESSO_OK ||
	    (s = train_config_parse(sec, "finetune", &tc)) != PRESSO_OK) {
		status_wrap(s, "%s", config_path);
		goto fail;
	}
	if (epochs > 0) {
		tc.epochs = (int)epochs;
		tc.max_steps = 0;
	}
	if (threads > 0)
		tc.threads = (int)threads;
	if ((s = study_ctx_open(cfg, !quiet, &ctx)) != PRESSO_OK)
		goto fail;
	s = recording ? policy_parse(parent->policy_json, policy_name, ctx->layers, ctx->n_layers,
				     &pol)
		      : policy_load(policy_arg, ctx->layers, ctx->n_layers, &pol);
	if (s != PRESSO_OK)
		goto fail;
	bool on_test = strcmp(split_name, "test") == 0;
	double fp32 = on_test ? ctx->fp32_test_accuracy : ctx->fp32_valid_accuracy;
	if (!quiet)
		fprintf(stderr, "presso: building the PTQ model for policy %s\n", policy_arg);
	struct eval_result ptq, tuned;
	struct qmodel_size ptq_size, tuned_size;
	if ((s = trial_build(ctx, pol, &b)) != PRESSO_OK ||
	    (s = score(ctx, b.g, b.qm, on_test, &ptq)) != PRESSO_OK)
		goto wrap;
	qmodel_size(b.qm, &ptq_size);
	built_model_free(&b);
	struct finetune_opts fo = {
		.tc = &tc, .steps = steps, .checkpoint = ckpt, .restart = restart,
		.log = quiet ? NULL : stderr, .stop = signals_flag(sig), .eval_epochs = !quiet,
	};
	if ((s = finetune_run(ctx, pol, &fo, &fr)) != PRESSO_OK)
		goto wrap;
	if (fr.train.interrupted) {
		s = status_fail(PRESSO_E_RUNTIME,
				"interrupted at step %lld of %lld; the checkpoint %s holds it: run the same command again to resume",
				(long long)fr.train.steps, (long long)fr.train.total_steps, ckpt);
		goto fail;
	}
	if ((s = score(ctx, fr.g, fr.qm, on_test, &tuned)) != PRESSO_OK)
		goto wrap;
	qmodel_size(fr.qm, &tuned_size);
	double fs = (double)ctx->fp32_size.size_bytes;
	printf("model:       %s\n", cfg->model_path);
	printf("policy:      %s\n", policy_arg);
	printf("split:       %s, %lld images\n", split_name, (long long)tuned.n_images);
	printf("FP32:        %.2f%% top-1, %lld bytes\n", fp32, (long long)ctx->fp32_size.size_bytes);
	printf("PTQ:         %.2f%% top-1 (%+.2f vs FP32), %lld bytes (%.2fx smaller)\n",
	       ptq.accuracy_pct, ptq.accuracy_pct - fp32, (long long)ptq_size.size_bytes,
	       fs / (double)(ptq_size.size_bytes ? ptq_size.size_bytes : 1));
	printf("fine-tuned:  %.2f%% top-1 (%+.2f vs FP32, %+.2f vs PTQ), %lld bytes (%.2fx smaller; "
	       "mean %.2f weight bits)\n",
	       tuned.accuracy_pct, tuned.accuracy_pct - fp32, tuned.accuracy_pct - ptq.accuracy_pct,
	       (long long)tuned_size.size_bytes,
	       fs / (double)(tuned_size.size_bytes ? tuned_size.size_bytes : 1), tuned_size.mean_bits);
	printf("training:    %lld steps of %d images (%lld this run%s), %.1f s, %.0f images/s\n",
	       (long long)fr.train.steps, tc.batch,
	       (long long)(fr.train.steps - fr.train.resumed_at),
	       fr.train.resumed_at ? ", resumed" : "", fr.train.seconds, fr.train.images_per_s);
	fflush(stdout);
	if (tuned.accuracy_pct < ptq.accuracy_pct - 1.0)
		fprintf(stderr,
			"presso finetune: warning: fine-tuning lowered the %s accuracy from %.2f%% (PTQ) to "
			"%.2f%%; the model %s is the fine-tuned one. Try a smaller finetune.lr (now %g) "
			"or fewer steps, or keep the PTQ model (presso compress --policy %s)\n",
			split_name, ptq.accuracy_pct, tuned.accuracy_pct,
			output ? "written" : "stored", tc.lr, policy_arg);
	if (recording) {
		struct trial_metrics_out mv, mt;
		size_t n_bytes = 0;
		int64_t number = 0;
		if ((s = finetune_evaluate(ctx, pol, &fr, false, &mv)) != PRESSO_OK ||
		    (s = finetune_evaluate(ctx, pol, &fr, true, &mt)) != PRESSO_OK ||
		    (s = presso_file_encode(fr.qm, &model_bytes, &n_bytes)) != PRESSO_OK)
			goto wrap;
		if (!(settings = train_config_canonical(&tc))) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		struct layer_choice *lc = malloc(sizeof *lc * (size_t)ctx->n_layers);
		if (!lc) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		for (int i = 0; i < ctx->n_layers; i++) {
			const struct layer_policy *l = &pol->layers[i];
			lc[i] = (struct layer_choice){ctx->layers[i].name, l->bits, l->act_bits,
						      l->bias_correction, l->prune, (int)l->prune_kind,
						      l->rank};
		}
		/* the tuned model has the PTQ model's structure: its latency */
		struct trial_metrics m = {.accuracy = mv.accuracy, .test_accuracy = mt.accuracy,
					  .size_bytes = mv.size_bytes, .bops = mv.bops,
					  .latency_us = parent->metrics.latency_us,
					  .mean_bits = mv.mean_bits, .mean_prune = mv.mean_prune,
					  .mean_rank = mv.mean_rank, .n_images = mv.n_images};
		struct finetune_record rec = {
			.parent = trial, .source = "finetune", .settings_json = settings,
			.steps = fr.train.steps, .epochs = steps || tc.max_steps > 0 ? 0 : tc.epochs,
			.lr = tc.lr, .kd_weight = tc.kd_weight, .temperature = tc.temperature,
			.train_seconds = fr.train.seconds, .images_per_s = fr.train.images_per_s,
			.model = model_bytes, .model_bytes = n_bytes};
		char worker[96];
		snprintf(worker, sizeof worker, "presso finetune:%ld", (long)getpid());
		s = store_add_finetuned(store, info.id, &rec, &m, lc, ctx->n_layers, worker, &number);
		free(lc);
		if (s != PRESSO_OK)
			goto fail;
		printf("stored:      trial %lld of study '%s' in %s: trial %lld fine-tuned, %.2f%% "
		       "validation (PTQ %.2f%%), %.2f%% test\n",
		       (long long)number, info.name, db, (long long)trial, mv.accuracy,
		       parent->metrics.accuracy, mt.accuracy);
		fflush(stdout);
	}
	int64_t file_bytes = -1;
	if (!output) {
		/* nothing to write: the model is in the database */
	} else if (fmt == OUT_ONNX) {
		char note[256];
		snprintf(note, sizeof note, "presso %s finetune, study '%s', policy %s", PRESSO_VERSION,
			 cfg->name, policy_arg);
		s = onnx_export_qdq(fr.qm, note, output);
		struct stat st;
		if (s == PRESSO_OK && stat(output, &st) == 0)
			file_bytes = (int64_t)st.st_size;
	} else {
		s = presso_file_write(fr.qm, output, &file_bytes);
	}
	if (s != PRESSO_OK)
		goto fail;
	if (output)
		printf("written:     %s (%s, %lld bytes)\n", output,
		       fmt == OUT_ONNX ? "ONNX opset 13, QDQ" : "presso", (long long)file_bytes);
	if (unlink(ckpt) != 0 && errno != ENOENT && !quiet)
		fprintf(stderr, "presso: warning: could not remove the checkpoint %s: %s\n", ckpt,
			strerror(errno));
	rc = 0;
	goto done;
wrap:
	status_wrap(s, "%s", cfg->model_path);
fail:
	rc = cli_fail("finetune", s);
done:
	free(settings);
	free(model_bytes);
	store_trials_free(parent, parent ? 1 : 0);
	store_study_info_free(&info);
	store_close(store);
	finetune_result_free(&fr);
	built_model_free(&b);
	policy_free(pol);
	study_ctx_free(ctx);
	config_free(cfg);
	signals_release(sig);
	free(ckpt);
	return rc;
}
