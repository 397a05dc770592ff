/* test_export_roundtrip.c - a trial evaluated through the library and stored,
 * then `presso export` -> `presso eval --policy`, reproduces the stored metrics
 * exactly (same validation accuracy, same size_bytes): the path a user takes
 * from the database to a deployable policy. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/calib.h"
#include "config/config.h"
#include "base/sha256.h"
#include "db/store.h"
#include "evaluators/evaluate.h"
#include "evaluators/trial.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "tests/fixtures.h"

static const char *POLICY =
	"{\"default\": {\"bits\": 4}, \"layers\": {"
	"\"/conv1/Conv\": {\"bits\": 8}, \"/conv2/Conv\": {\"bits\": 3, \"bias_correction\": true},"
	"\"/fc1/Gemm\": {\"bits\": 2, \"act_bits\": 6}, \"/fc3/Gemm\": {\"bits\": 8}}}";

Test(export, stored_metrics_are_reproduced_by_eval, .timeout = 300)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	char *dir = fx_tmpdir();
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"name\": \"rt\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 3, \"calibration\": 300, \"validation\": 700}},"
		 "\"eval\": {\"batch\": 50}, \"quant\": {\"calibration\": \"mse\"}}",
		 fx_src("models/lenet.onnx"));
	char cfg_path[4200];
	snprintf(cfg_path, sizeof cfg_path, "%s", fx_join(dir, "c.json"));
	cr_assert(fx_write(cfg_path, body, strlen(body)));

	/* evaluate the policy through the library, as a search worker does */
	struct config *cfg;
	cr_assert_eq(config_load(cfg_path, &cfg), PRESSO_OK, "%s", status_msg());
	struct graph *g;
	cr_assert_eq(graph_load_onnx(cfg->model_path, &g), PRESSO_OK);
	struct layer *ls;
	int nl;
	cr_assert_eq(graph_layers(g, &ls, &nl), PRESSO_OK);
	struct policy *pol;
	cr_assert_eq(policy_parse(POLICY, "p", ls, nl, &pol), PRESSO_OK, "%s", status_msg());
	struct dataset *train;
	cr_assert_eq(dataset_load_idx(cfg->data.train_images, cfg->data.train_labels, &train), PRESSO_OK);
	struct split calib_sp, valid_sp;
	cr_assert_eq(dataset_make_splits(train->n, cfg->data.seed, cfg->data.n_calib, cfg->data.n_valid,
					 &calib_sp, &valid_sp), PRESSO_OK);
	struct quant_pipeline qp;
	cr_assert_eq(quant_pipeline_init(&qp, cfg, g, train, &calib_sp, false), PRESSO_OK, "%s",
		     status_msg());
	struct built_model built;
	cr_assert_eq(quant_pipeline_build(&qp, pol, &built), PRESSO_OK, "%s", status_msg());
	struct qmodel *qm = built.qm;
	struct eval_model em = {g, qm}, fm = {g, NULL};
	struct eval_result rq, rf;
	cr_assert_eq(eval_accuracy(&em, train, &cfg->data.norm, &valid_sp, cfg->eval.batch, 1, &rq), PRESSO_OK);
	cr_assert_eq(eval_accuracy(&fm, train, &cfg->data.norm, &valid_sp, cfg->eval.batch, 1, &rf), PRESSO_OK);
	struct qmodel_size zq, zf;
	qmodel_size(qm, &zq);
	qmodel_fp32_size(g, &zf);

	/* store it as trial 1 of a study */
	char db[4200];
	snprintf(db, sizeof db, "%s", fx_join(dir, "runs.db"));
	struct store *st;
	cr_assert_eq(store_open(db, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	char sha[65];
	cr_assert_eq(sha256_file(cfg->model_path, sha), PRESSO_OK);
	struct study_spec spec = {.name = "rt", .config_json = body, .model_path = cfg->model_path,
				  .model_sha256 = sha, .dataset = "fashion-mnist", .seed = 3,
				  .baseline = {.accuracy = rf.accuracy_pct, .test_accuracy = NAN,
					       .size_bytes = zf.size_bytes, .bops = zf.bops,
					       .latency_us = NAN, .n_classes = 10}};
	int64_t study;
	bool resumed;
	char name[STORE_NAME_MAX + 1];
	cr_assert_eq(store_create_or_resume_study(st, &spec, false, &study, &resumed, name), PRESSO_OK,
		     "%s", status_msg());
	char *pjson = policy_to_json(pol, ls);
	int64_t number;
	cr_assert_eq(store_begin_trial(st, study, pjson, NULL, "test", &number), PRESSO_OK);
	struct layer_choice *lc = calloc((size_t)nl, sizeof *lc);
	for (int i = 0; i < nl; i++)
		lc[i] = (struct layer_choice){ls[i].name, pol->layers[i].bits, pol->layers[i].act_bits,
					      pol->layers[i].bias_correction, 0.0, 0, 1.0};
	struct trial_metrics tm = {.accuracy = rq.accuracy_pct, .test_accuracy = NAN,
				   .size_bytes = zq.size_bytes, .bops = zq.bops, .latency_us = NAN,
				   .mean_bits = zq.mean_bits, .mean_prune = 0, .mean_rank = 1};
	cr_assert_eq(store_complete_trial(st, study, number, &tm, lc, nl, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
	store_close(st);

	/* the user's path: export, then eval the exported policy */
	char args[9000], *out, *err;
	char best[4200];
	snprintf(best, sizeof best, "%s", fx_join(dir, "best.json"));
	snprintf(args, sizeof args, "export --db '%s' --study rt --pick 'max accuracy where size_kb <= 64' -o '%s'",
		 db, best);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	snprintf(args, sizeof args, "eval --json --split valid --config '%s' --policy '%s'", cfg_path, best);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	const cJSON *q = cJSON_GetObjectItem(j, "quantized");
	cr_assert_not_null(q, "%s", out);
	cr_log_info("stored %.4f%% / %lld B; eval of the export %.4f%% / %.0f B", rq.accuracy_pct,
		    (long long)zq.size_bytes, cJSON_GetObjectItem(q, "accuracy")->valuedouble,
		    cJSON_GetObjectItem(q, "size_bytes")->valuedouble);
	cr_assert_eq(cJSON_GetObjectItem(q, "correct")->valuedouble, (double)rq.n_correct,
		     "same validation images right");
	/* JSON carries 15 significant digits */
	cr_assert_float_eq(cJSON_GetObjectItem(q, "accuracy")->valuedouble, rq.accuracy_pct, 1e-9);
	cr_assert_eq(cJSON_GetObjectItem(q, "size_bytes")->valuedouble, (double)zq.size_bytes);
	cr_assert_eq(cJSON_GetObjectItem(q, "bops")->valuedouble, zq.bops);
	cJSON_Delete(j);
	free(out);
	free(err);

	free(lc);
	free(pjson);
	built_model_free(&built);
	quant_pipeline_free(&qp);
	split_free(&calib_sp);
	split_free(&valid_sp);
	dataset_free(train);
	policy_free(pol);
	free(ls);
	graph_free(g);
	config_free(cfg);
	remove(best);
	remove(db);
	remove(cfg_path);
	char wal[4300];
	snprintf(wal, sizeof wal, "%s-wal", db);
	remove(wal);
	snprintf(wal, sizeof wal, "%s-shm", db);
	remove(wal);
	rmdir(dir);
	free(dir);
}
