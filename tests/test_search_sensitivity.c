/* test_search_sensitivity.c - per-layer sensitivity (search/sensitivity.h): on
 * LeNet the table has a row per layer whose space varies and exactly the
 * values of its space, and a 1-bit layer loses at least what it loses at 8
 * bits; the table round-trips through JSON; the greedy genomes lead the first
 * generation; a resumed study reads the stored table instead of measuring it
 * again, and a seeded study killed and resumed is the study that ran without a
 * break; config errors name their key. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "evaluators/trial.h"
#include "search/sensitivity.h"
#include "search/space.h"
#include "search/strategy.h"
#include "tests/fixtures.h"

#define SMALL_IMAGES 128 /* resolution 0.8 points: enough to see 1 bit hurt */

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

#define SPACE_JSON                                                                       \
	"\"space\": {\"default\": {\"bits\": [2, 4, 8], \"bias_correction\": [false, true]}," \
	" \"layers\": {\"/fc1/Gemm\": {\"bits\": [1, 2, 4, 8]}},"                          \
	" \"frozen\": {\"/conv1/Conv\": {\"bits\": 8}}}"

/* A LeNet config with tiny splits and the given search section; its path. */
static const char *config(const char *name, const char *search)
{
	static char file[4096];
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"%s\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 100, \"validation\": 200, \"test\": 200}}, "
		 SPACE_JSON ", \"search\": {%s}}",
		 name, fx_src("models/lenet.onnx"), search);
	snprintf(file, sizeof file, "%s", fx_join(dir, name));
	cr_assert(fx_write(file, body, strlen(body)));
	return file;
}

Test(sensitivity, lenet_table, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	struct config *cfg = NULL;
	struct study_ctx *ctx = NULL;
	struct space *sp = NULL;
	struct sensitivity *sn = NULL, *back = NULL;
	cr_assert_eq(config_load(config("t.json", ""), &cfg), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(study_ctx_open_for_trials(cfg, &ctx), PRESSO_OK, "%s", status_msg());
	cr_assert_eq(space_parse(cfg->json, ctx->layers, ctx->n_layers, &sp), PRESSO_OK);
	cr_assert_eq(sensitivity_measure(ctx, sp, SMALL_IMAGES, NULL, &sn), PRESSO_OK, "%s",
		     status_msg());
	cr_assert_eq(sn->n_images, SMALL_IMAGES);
	cr_assert_eq(sn->n_layers, ctx->n_layers);
	/* per layer: exactly its bits domain (conv1 is frozen: no row) */
	for (int l = 0; l < ctx->n_layers; l++) {
		const struct knob_domain *d = &sp->ls[l].d[KNOB_BITS];
		int n = 0;
		for (int i = 0; i < sn->n_entries; i++) {
			const struct sensitivity_entry *e = &sn->e[i];
			cr_assert_eq(e->knob, KNOB_BITS, "only bits vary in this space");
			if (e->layer != l)
				continue;
			bool in = false;
			for (int j = 0; j < d->n; j++)
				in |= d->v[j] == e->value;
			cr_assert(in, "layer %d: %g bits is not in its space", l, e->value);
			n++;
		}
		cr_assert_eq(n, d->n > 1 ? d->n : 0, "layer %d has %d entries", l, n);
		if (d->n > 1)
			cr_assert_eq(sensitivity_drop(sn, l, KNOB_BITS, 8), 0, "the reference");
	}
	int fc1 = 2;
	cr_assert_str_eq(ctx->layers[fc1].name, "/fc1/Gemm");
	cr_assert_geq(sensitivity_drop(sn, fc1, KNOB_BITS, 1), sensitivity_drop(sn, fc1, KNOB_BITS, 8));
	cr_assert_gt(sensitivity_drop(sn, fc1, KNOB_BITS, 1), 0, "1-bit fc1 costs accuracy");
	/* JSON round trip, exact */
	char *text = sensitivity_to_json(sn, ctx->layers);
	cr_assert_not_null(text);
	cr_assert_eq(sensitivity_from_json(text, "t", ctx->layers, ctx->n_layers, &back), PRESSO_OK,
		     "%s", status_msg());
	cr_assert_eq(back->n_entries, sn->n_entries);
	for (int i = 0; i < sn->n_entries; i++)
		cr_assert(back->e[i].drop == sn->e[i].drop && back->e[i].value == sn->e[i].value);
	cr_assert_eq(sensitivity_from_json(text, "t", ctx->layers, 3, &back), PRESSO_E_FORMAT);
	cr_assert(strstr(status_msg(), "t: "), "%s", status_msg());
	free(text);
	sensitivity_free(back);
	sensitivity_free(sn);
	space_free(sp);
	study_ctx_free(ctx);
	config_free(cfg);
}

/* --- the strategy's seeds ---------------------------------------------------- */

static struct layer layers[3] = {
	{.node = 0, .name = "a", .params = 1000},
	{.node = 1, .name = "b", .params = 50000},
	{.node = 2, .name = "c", .params = 800},
};

static bool claim_all(void *ctx, const uint8_t *g)
{
	(void)ctx;
	(void)g;
	return true;
}

Test(sensitivity, greedy_seeds_lead_the_first_generation)
{
	cJSON *root = cJSON_Parse("{\"space\": {\"default\": {\"bits\": [2, 4, 8]}},"
				  " \"search\": {\"population\": 16}}");
	struct space *sp = NULL;
	cr_assert_eq(space_parse(root, layers, 3, &sp), PRESSO_OK, "%s", status_msg());
	cJSON_Delete(root);
	/* a: cheap at 2 bits; b: 1 point at 4, 10 at 2; c: 5 points at 4 */
	struct sensitivity_entry e[] = {
		{0, KNOB_BITS, 2, 0}, {0, KNOB_BITS, 4, 0},  {0, KNOB_BITS, 8, 0},
		{1, KNOB_BITS, 2, 10}, {1, KNOB_BITS, 4, 1}, {1, KNOB_BITS, 8, 0},
		{2, KNOB_BITS, 2, 20}, {2, KNOB_BITS, 4, 5}, {2, KNOB_BITS, 8, 0},
	};
	struct sensitivity sn = {3, 256, 90, 9, e};
	uint8_t g[3 * KNOB_COUNT];
	/* budget 4 over 3 layers: 1.33 points each -> a 2 bits, b 4 bits, c 8 bits */
	sensitivity_greedy_genome(&sn, sp, 4, g);
	cr_assert_eq(g[0 * KNOB_COUNT + KNOB_BITS], 0);
	cr_assert_eq(g[1 * KNOB_COUNT + KNOB_BITS], 1);
	cr_assert_eq(g[2 * KNOB_COUNT + KNOB_BITS], 2);
	for (int kind = 0; kind < STRATEGY_COUNT; kind++) {
		sp->search.strategy = (enum strategy_kind)kind;
		struct archive a;
		struct baseline base = {90.0, NAN, 100000, 1e6, NAN, 10};
		cr_assert_eq(archive_init(&a, sp, &base), PRESSO_OK);
		struct strategy *s = NULL;
		cr_assert_eq(strategy_create(sp, &a, &s), PRESSO_OK);
		cr_assert_eq(strategy_use_sensitivity(s, &sn), PRESSO_OK);
		struct candidate c[16];
		uint8_t genomes[16][3 * KNOB_COUNT];
		for (int i = 0; i < 16; i++)
			c[i].genome = genomes[i];
		struct rng r;
		rng_seed(&r, 1);
		int n = 0;
		cr_assert_eq(strategy_ask(s, &r, claim_all, NULL, 16, c, &n), PRESSO_OK);
		cr_assert_eq(n, 16);
		for (int b = 0; b < SENSITIVITY_N_BUDGETS; b++) {
			sensitivity_greedy_genome(&sn, sp, sensitivity_budgets[b], g);
			cr_assert_eq(memcmp(c[SPACE_N_SEEDS + b].genome, g, sizeof g), 0,
				     "%s: greedy seed %d", space_strategy_name(kind), b);
			cr_assert_eq(c[SPACE_N_SEEDS + b].origin, ORIGIN_SEED);
		}
		const struct bandit *op = strategy_operator_bandit(s);
		if (op) /* c's "down" arm (bits: free gene 2) starts below a's */
			cr_assert_lt(op->sum[2 * 2], op->sum[0]);
		strategy_free(s);
		archive_free(&a);
	}
	space_free(sp);
}

/* --- a study ------------------------------------------------------------------ */

static char *state_value(const char *db, const char *key)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(h, "select value from search_state where key = ?", -1, &q,
					NULL),
		     SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	char *out = NULL;
	if (sqlite3_step(q) == SQLITE_ROW)
		out = strdup((const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(h);
	return out;
}

Test(sensitivity, a_resume_reads_the_stored_table, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	const char *cfg = config("s.json", "\"population\": 8, \"sensitivity\": true, "
					   "\"sensitivity_images\": 64");
	char db[4200], args[8800], *out, *err;
	snprintf(db, sizeof db, "%s", fx_join(dir, "s.db"));
	snprintf(args, sizeof args, "search --config '%s' --db '%s' --workers 1 --max-trials 8",
		 cfg, db);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cr_assert(strstr(err, "measuring per-layer sensitivity on 64"), "%s", err);
	free(out);
	free(err);
	char *first = state_value(db, SENSITIVITY_STATE_KEY);
	cr_assert_not_null(first);
	cr_assert(strstr(first, "\"n_images\":64"), "%s", first);
	snprintf(args, sizeof args,
		 "search --config '%s' --db '%s' --workers 1 --max-trials 16 --resume", cfg, db);
	cr_assert_eq(fx_presso(args, &out, &err), 0, "%s", err);
	cr_assert_null(strstr(err, "measuring per-layer sensitivity"), "%s", err);
	free(out);
	free(err);
	char *second = state_value(db, SENSITIVITY_STATE_KEY);
	cr_assert_str_eq(second, first);
	free(first);
	free(second);
}

/* The trials of a study, one line each: number, policy hash, accuracy, size. */
static char *trial_rows(const char *db)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(h,
					"select number, policy_sha256, accuracy, size_bytes "
					"from trials order by number",
					-1, &q, NULL),
		     SQLITE_OK, "%s", sqlite3_errmsg(h));
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	out[0] = '\0';
	while (sqlite3_step(q) == SQLITE_ROW && n + 256 < cap)
		n += (size_t)snprintf(out + n, cap - n, "%d %s %.6f %lld\n", sqlite3_column_int(q, 0),
				      (const char *)sqlite3_column_text(q, 1),
				      sqlite3_column_double(q, 2),
				      (long long)sqlite3_column_int64(q, 3));
	sqlite3_finalize(q);
	sqlite3_close(h);
	return out;
}

Test(sensitivity, a_seeded_study_resumes_as_it_would_have_run, .init = setup, .fini = teardown)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	static const char *const strategies[] = {"bandit", "hybrid"};
	for (int k = 0; k < 2; k++) {
		char search[256], name[64];
		snprintf(search, sizeof search,
			 "\"population\": 6, \"seed\": 3, \"sensitivity\": true, "
			 "\"sensitivity_images\": 64, \"strategy\": \"%s\"",
			 strategies[k]);
		snprintf(name, sizeof name, "%s.json", strategies[k]);
		const char *cfg = config(name, search);
		char db[2][4200], args[8800], *out, *err;
		for (int i = 0; i < 2; i++) {
			snprintf(name, sizeof name, "%s-%c.db", strategies[k], i ? 'b' : 'a');
			snprintf(db[i], sizeof db[i], "%s", fx_join(dir, name));
			for (int step = i ? 0 : 1; step < 2; step++) {
				/* the second study is killed (-9) right after its 8th commit, in
				 * its second batch, then resumed */
				snprintf(args, sizeof args,
					 "search --quiet --config '%s' --db '%s' --workers 1 "
					 "--max-trials 18%s",
					 cfg, db[i], step && i ? " --resume" : "");
				if (step == 0)
					cr_assert_eq(
					    setenv("PRESSO_TEST_INTERRUPT", "commit:8:KILL", 1), 0);
				int rc = fx_presso(args, &out, &err);
				unsetenv("PRESSO_TEST_INTERRUPT");
				if (step == 1)
					cr_assert_eq(rc, 0, "%s", err);
				else
					cr_assert_neq(rc, 0, "the kill landed");
				free(out);
				free(err);
			}
		}
		char *a = trial_rows(db[0]), *b = trial_rows(db[1]);
		cr_assert_str_eq(b, a, "%s resumed:\n%s\nuninterrupted:\n%s", strategies[k], b, a);
		free(a);
		free(b);
	}
}

Test(sensitivity, config_errors_name_the_key)
{
	static const struct {
		const char *search, *key;
	} bad[] = {
		{"{\"sensitivity\": \"yes\"}", "search.sensitivity"},
		{"{\"sensitivity_images\": 0}", "search.sensitivity_images"},
		{"{\"sensitivity_images\": 1.5}", "search.sensitivity_images"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "{\"search\": %s}", bad[i].search);
		cJSON *root = cJSON_Parse(text);
		struct space *sp = NULL;
		cr_assert_eq(space_parse(root, layers, 3, &sp), PRESSO_E_CONFIG, "%s", bad[i].search);
		cr_assert(strstr(status_msg(), bad[i].key), "%s", status_msg());
		cJSON_Delete(root);
	}
	cJSON *root = cJSON_Parse("{\"search\": {\"sensitivity\": true}}");
	struct space *sp = NULL;
	cr_assert_eq(space_parse(root, layers, 3, &sp), PRESSO_OK, "%s", status_msg());
	cr_assert(sp->search.sensitivity);
	cr_assert_eq(sp->search.sensitivity_images, SPACE_SENSITIVITY_IMAGES);
	space_free(sp);
	cJSON_Delete(root);
}
