/* test_search_finetune.c - fine-tuned trials in a study, end to end on LeNet
 * with tiny splits and a few training steps:
 *   - search.finetune_front = 2: once the budget is spent, the two smallest
 *     front trials are fine-tuned, each stored as a trial of its own linked to
 *     its PTQ trial; presso pareto shows them with their "tuned from" trial;
 *     presso export --pick picks one and -o FILE.presso writes its tuned
 *     weights, which presso eval scores as the study recorded;
 *   - search.rescore_images re-scores a tuned trial close to an accuracy
 *     bound, as it does a PTQ trial, and export's confident pick takes it;
 *   - the run's time limit stops the fine-tunes as a stop request does, and
 *     --resume tunes the rest;
 *   - a search killed (SIGKILL) or stopped (SIGINT) after its first fine-tune
 *     and run again with --resume tunes only what is left, and ends with the
 *     fine-tunes of an uninterrupted run; killed while training, it stores
 *     nothing, and the resumed run continues from the checkpoint beside the
 *     database to the uninterrupted run's model, byte for byte;
 *   - presso finetune --db/--study/--trial records a fine-tuned trial beside
 *     the PTQ trial it names, and refuses what it cannot tune;
 *   - bad search.finetune_front values and a bad finetune section are config
 *     errors, exit 2, before any database is made.
 * The fine-tunes take 4 steps of 16 images at a small learning rate: these
 * tests check where results go, not how much training helps (test_finetune.c
 * does that). Each presso run takes a few seconds, most of it reading the
 * dataset.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "tests/fixtures.h"

#define BUDGET "8"    /* PTQ trials per study: the front has several members */
#define TUNE_FRONT 2  /* search.finetune_front */
#define ACC_PRINT_EPS 0.006 /* presso eval prints accuracy with 2 decimals */

static char *dir;
static char cfg[1024], out_path[1024], err_path[1024];

/* The study: LeNet, tiny splits, weights at the given bits (2, 4 or 8 in
 * write_config), the given search.finetune_front and finetune section. */
static void write_config_bits(const char *path, const char *bits, const char *finetune_front,
			      const char *finetune)
{
	char body[4096];
	snprintf(body, sizeof body,
		 "{\"name\": \"tune\", \"model\": \"%s\", \"data\": {"
		 "\"train_images\": \"" FX_FMNIST_TRAIN_IMAGES "\","
		 "\"train_labels\": \"" FX_FMNIST_TRAIN_LABELS "\","
		 "\"test_images\": \"" FX_FMNIST_TEST_IMAGES "\","
		 "\"test_labels\": \"" FX_FMNIST_TEST_LABELS "\","
		 "\"normalize\": {\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]},"
		 "\"splits\": {\"seed\": 1, \"calibration\": 64, \"validation\": 128, \"test\": 128}},"
		 "\"eval\": {\"batch\": 64, \"threads\": 1},"
		 "\"space\": {\"default\": {\"bits\": %s}},"
		 "\"search\": {\"seed\": 5, \"population\": 4, \"finetune_front\": %s},"
		 "\"finetune\": %s}",
		 fx_src("models/lenet.onnx"), bits, finetune_front, finetune);
	cr_assert(fx_write(path, body, strlen(body)));
}

static void write_config(const char *path, const char *finetune_front, const char *finetune)
{
	write_config_bits(path, "[2, 4, 8]", finetune_front, finetune);
}

#define TUNING "{\"batch\": 16, \"micro_batch\": 8, \"lr\": 0.001, \"max_steps\": 4, \"threads\": 1}"

static void setup(void)
{
	if (!fx_have_fmnist())
		cr_skip_test("dataset-fashion-mnist is not installed");
	dir = fx_tmpdir();
	cr_assert_not_null(dir);
	snprintf(cfg, sizeof cfg, "%s/tune.json", dir);
	snprintf(out_path, sizeof out_path, "%s/out", dir);
	snprintf(err_path, sizeof err_path, "%s/err", dir);
	write_config(cfg, "2", TUNING);
}

static void teardown(void)
{
	if (!dir)
		return;
	cr_assert(fx_rmtree(dir));
	free(dir);
	dir = NULL;
}

/* Runs presso with argv (NULL-terminated, after the program name) and the test
 * hook `hook` (NULL: none); stdout and stderr go to out_path and err_path.
 * Returns the exit status, or 128 + signal. */
static int run_argv(const char *hook, const char *const *args)
{
	const char *argv[32] = {PRESSO_BINARY};
	int n = 1;
	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	int pid = fx_spawn(argv, out_path, err_path, hook);
	cr_assert_gt(pid, 0);
	int code = fx_wait(pid);
	cr_assert_neq(code, -1);
	return code;
}

static int search(const char *db, bool resume, const char *hook)
{
	const char *args[] = {"search", "--quiet", "--config", cfg, "--db", fx_join(dir, db),
			      "--workers", "1", "--max-trials", BUDGET,
			      resume ? "--resume" : NULL, NULL};
	return run_argv(hook, args);
}

/* search() with --time-limit 1h, which the hook's TIME ends early. */
static int search_limited(const char *db, bool resume, const char *hook)
{
	const char *args[] = {"search", "--quiet", "--config", cfg, "--db", fx_join(dir, db),
			      "--workers", "1", "--max-trials", BUDGET, "--time-limit", "1h",
			      resume ? "--resume" : NULL, NULL};
	return run_argv(hook, args);
}

static char *out_text(void)
{
	char *t = fx_read(out_path, NULL);
	cr_assert_not_null(t);
	return t;
}

static char *err_text(void)
{
	char *t = fx_read(err_path, NULL);
	cr_assert_not_null(t);
	return t;
}

/* The rows of a query on db, one line each, '|'-separated (malloc'd). */
static char *rows(const char *db, const char *sql)
{
	char *r = fx_rows(fx_join(dir, db), sql);
	cr_assert_not_null(r, "%s: %s", db, sql);
	return r;
}

static long count(const char *db, const char *sql)
{
	char *r = rows(db, sql);
	long v = strtol(r, NULL, 10);
	free(r);
	return v;
}

/* The fine-tuned trials: "number|parent" lines in number order. */
#define TUNED "select number, parent_trial from trials where parent_trial is not null " \
	      "order by number"
/* The parents alone, in order, and the PTQ trials' policies. */
#define PARENTS "select parent_trial from trials where parent_trial is not null order by 1"
#define PTQ "select policy_sha256 from trials where parent_trial is null and " \
	    "state = 'complete' order by number"

/* Every fine-tuned trial is complete, has its finetunes row, its parent's
 * policy and a distinct parent that is a re-checked front trial. */
static void check_tuned_count(const char *db, long expected)
{
	cr_assert_eq(count(db, "select count(*) from trials where parent_trial is not null"),
		     expected, "%s", rows(db, TUNED));
	cr_assert_eq(count(db, "select count(*) from trials t join finetunes f on f.trial_id = t.id "
			       "join trials p on p.study_id = t.study_id and p.number = t.parent_trial "
			       "where t.state = 'complete' and p.parent_trial is null and "
			       "p.state = 'complete' and p.policy_sha256 = t.policy_sha256 and "
			       "f.source = 'search' and f.steps = 4 and length(f.model) > 0"),
		     expected);
	cr_assert_eq(count(db, "select count(distinct parent_trial) from trials "
			       "where parent_trial is not null"),
		     expected, "a front trial was tuned twice");
	/* the parents are front trials (re-checked on test) and no front trial
	 * outside them is smaller than the largest of them */
	cr_assert_eq(count(db, "select count(*) from trials where number in (" PARENTS ") and "
			       "test_accuracy is null"),
		     0, "a tuned trial was not on the front");
}

/* check_tuned_count, and the parents are the smallest re-checked front trials. */
static void check_tuned(const char *db, long expected)
{
	check_tuned_count(db, expected);
	cr_assert_eq(count(db, "select count(*) from trials f where f.parent_trial is null and "
			       "f.test_accuracy is not null and f.number not in (" PARENTS ") and "
			       "f.size_bytes < (select max(size_bytes) from trials where number in (" PARENTS "))"),
		     0, "a smaller front trial was left untuned");
}

Test(search_finetune, tunes_the_smallest_front_trials_shows_and_exports_them, .init = setup,
     .fini = teardown)
{
	cr_assert_eq(search("a.db", false, NULL), 0, "%s", err_text());
	char *out = out_text(), *err = err_text();
	cr_assert(strstr(out, "tuned:     2 front trials fine-tuned by this run"), "%s", out);
	cr_assert(strstr(err, "2 to do, 0 done before"), "%s", err);
	free(out);
	free(err);
	check_tuned("a.db", TUNE_FRONT);
	cr_assert_eq(count("a.db", "select count(*) from trials where parent_trial is null and "
				   "state = 'complete'"),
		     atol(BUDGET), "the fine-tunes do not count in the budget");
	cr_assert_eq(count("a.db", "select count(*) from v_trials where tuned = 1"), TUNE_FRONT);
	char *tuned = rows("a.db", TUNED);
	long t1, p1, t2, p2;
	cr_assert_eq(sscanf(tuned, "%ld|%ld\n%ld|%ld", &t1, &p1, &t2, &p2), 4, "%s", tuned);
	cr_assert(t1 == 9 && t2 == 10, "tuned trials are numbered after the budget: %s", tuned);
	free(tuned);
	/* pareto: the column, and each tuned trial with the trial it came from */
	const char *db = fx_join(dir, "a.db");
	char dbp[1100];
	snprintf(dbp, sizeof dbp, "%s", db);
	const char *table[] = {"pareto", "--db", dbp, "--study", "tune", NULL};
	cr_assert_eq(run_argv(NULL, table), 0);
	out = out_text();
	cr_assert(strstr(out, "tuned from"), "%s", out);
	free(out);
	long tn[2] = {t1, t2}, pn[2] = {p1, p2};
	for (int i = 0; i < 2; i++) {
		char where[64];
		snprintf(where, sizeof where, "trial = %ld", tn[i]);
		const char *csv[] = {"pareto", "--db", dbp, "--study", "tune", "--format", "csv",
				     "--where", where, NULL};
		cr_assert_eq(run_argv(NULL, csv), 0);
		out = out_text();
		const char *row = strchr(out, '\n');
		cr_assert(row && strtol(row + 1, NULL, 10) == tn[i], "%s", out);
		/* tuned_from is the 11th column */
		const char *f = row + 1;
		for (int c = 0; c < 10 && f; c++)
			if ((f = strchr(f, ',')))
				f++;
		cr_assert(f && strtol(f, NULL, 10) == pn[i], "trial %ld tuned from %ld:\n%s", tn[i],
			  pn[i], out);
		free(out);
	}
	/* export --pick picks a tuned trial; -o .presso writes its tuned weights */
	char model[1100], policy[1100];
	snprintf(model, sizeof model, "%s", fx_join(dir, "best.presso"));
	snprintf(policy, sizeof policy, "%s", fx_join(dir, "best.json"));
	const char *pick = "max accuracy where tuned = 1";
	const char *ex[] = {"export", "--db", dbp, "--study", "tune", "--pick", pick, "-o", model,
			    NULL};
	cr_assert_eq(run_argv(NULL, ex), 0, "%s", err_text());
	long picked = count("a.db", "select trial from v_trials where tuned = 1 "
				    "order by accuracy desc, trial limit 1");
	char sql[256], hex[SHA256_HEX_BYTES];
	cr_assert_eq(sha256_file(model, hex), PRESSO_OK);
	snprintf(sql, sizeof sql, "select model_sha256 = '%s' from v_finetunes where trial = %ld",
		 hex, picked);
	cr_assert_eq(count("a.db", sql), 1, "the file is the stored tuned model");
	const char *ev[] = {"eval", "--config", cfg, "--model", model, NULL};
	cr_assert_eq(run_argv(NULL, ev), 0, "%s", err_text());
	out = out_text();
	const char *q = strstr(out, "quantized:");
	cr_assert_not_null(q, "%s", out);
	double acc = strtod(q + strlen("quantized:"), NULL);
	snprintf(sql, sizeof sql, "select test_accuracy * 1000000 from trials where number = %ld",
		 picked);
	double stored = (double)count("a.db", sql) / 1e6;
	cr_assert(fabs(acc - stored) < ACC_PRINT_EPS, "eval %.2f%% vs stored test %.4f%%", acc,
		  stored);
	free(out);
	/* as JSON: the policy, with where it came from */
	const char *ej[] = {"export", "--db", dbp, "--study", "tune", "--pick", pick, "-o", policy,
			    NULL};
	cr_assert_eq(run_argv(NULL, ej), 0, "%s", err_text());
	char *json = fx_read(policy, NULL);
	cr_assert(json && strstr(json, "\"finetuned\"") && strstr(json, "\"from_trial\""), "%s",
		  json);
	free(json);
	err = err_text();
	cr_assert(strstr(err, "-o FILE.presso writes the tuned weights"), "%s", err);
	free(err);
	/* a PTQ trial's model is not in the database */
	char ptq[32];
	snprintf(ptq, sizeof ptq, "%ld", p1);
	const char *bad[] = {"export", "--db", dbp, "--study", "tune", "--trial", ptq, "-o",
			     fx_join(dir, "ptq.presso"), NULL};
	cr_assert_eq(run_argv(NULL, bad), 2);
	err = err_text();
	cr_assert(strstr(err, "is a PTQ trial"), "%s", err);
	free(err);
	struct stat st;
	cr_assert_neq(stat(fx_join(dir, "ptq.presso"), &st), 0, "nothing written");
	/* report: its front table says which trial each tuned one came from,
	 * for the same rows as pareto's front; the first tuned trial is made the
	 * most accurate so that the front has one */
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(dbp, &h), SQLITE_OK);
	char up[128];
	snprintf(up, sizeof up, "update trials set accuracy = 99.5 where number = %ld", t1);
	cr_assert_eq(sqlite3_exec(h, up, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
	const char *front[] = {"pareto", "--db", dbp, "--study", "tune", "--format", "csv", NULL};
	cr_assert_eq(run_argv(NULL, front), 0);
	out = out_text();
	int n_tuned_rows = 0;
	for (const char *row = strchr(out, '\n'); row && row[1]; row = strchr(row + 1, '\n')) {
		const char *f = row + 1;
		for (int c = 0; c < 10 && f; c++)
			if ((f = strchr(f, ',')))
				f++;
		n_tuned_rows += f && *f >= '1' && *f <= '9';
	}
	free(out);
	char html[1100];
	snprintf(html, sizeof html, "%s", fx_join(dir, "r.html"));
	const char *rep[] = {"report", "--db", dbp, "--study", "tune", "-o", html, NULL};
	cr_assert_eq(run_argv(NULL, rep), 0, "%s", err_text());
	char *page = fx_read(html, NULL);
	cr_assert(page && strstr(page, "<th>tuned from</th>"));
	int n_cells = 0;
	for (const char *c = strstr(page, "<td class=\"tuned\">"); c;
	     c = strstr(c + 1, "<td class=\"tuned\">")) {
		long parent = strtol(c + strlen("<td class=\"tuned\">"), NULL, 10);
		cr_assert(parent == p1 || parent == p2, "a tuned row from trial %ld", parent);
		n_cells++;
	}
	cr_assert_geq(n_tuned_rows, 1);
	cr_assert_eq(n_cells, n_tuned_rows, "report %d tuned rows, pareto %d", n_cells,
		     n_tuned_rows);
	free(page);
}

/* search.finetune_reach: the search's front reaches beyond the accuracy bound
 * (here 1 point below FP32), the best PTQ trial still meets the bound as
 * written, and the trials tuned are front trials smaller than it, some of
 * them beyond the bound: trials the plain front would not offer. */
Test(search_finetune, reach_tunes_front_trials_beyond_the_bound, .init = setup, .fini = teardown)
{
	write_config_bits(cfg, "[1, 2, 4, 8]", "2, \"finetune_reach\": 60",
		     TUNING ", \"constraints\": {\"max_accuracy_drop\": 1}");
	cr_assert_eq(search("r.db", false, NULL), 0, "%s", err_text());
	char *out = out_text(), *err = err_text();
	cr_assert(strstr(err, "fine-tuning 2 front trials within 60 points of the accuracy bounds "
			      "and smaller than the best trial: 2 to do"),
		  "%s", err);
	cr_assert(strstr(out, "with the accuracy bounds 60 points looser"), "%s", out);
	const char *f = strstr(out, "FP32:      "), *b = strstr(out, "best:      trial ");
	cr_assert(f && b, "%s", out);
	double fp32 = strtod(f + strlen("FP32:      "), NULL);
	long best = strtol(b + strlen("best:      trial "), NULL, 10);
	cr_assert(strstr(out, "best tuned: "), "%s", out);
	free(out);
	free(err);
	check_tuned_count("r.db", TUNE_FRONT);
	char sql[512];
	snprintf(sql, sizeof sql, "select accuracy * 1000000, size_bytes from trials where number = %ld",
		 best);
	char *r = rows("r.db", sql);
	double best_acc = strtod(r, NULL) / 1e6;
	long best_size = strtol(strchr(r, '|') + 1, NULL, 10);
	free(r);
	cr_assert_geq(best_acc, fp32 - 1 - ACC_PRINT_EPS, "the best meets the bound as written");
	snprintf(sql, sizeof sql, "select count(*) from trials where number in (" PARENTS ") and "
				  "size_bytes >= %ld", best_size);
	cr_assert_eq(count("r.db", sql), 0, "a tuned trial is no smaller than the best");
	snprintf(sql, sizeof sql, "select count(*) from trials where number in (" PARENTS ") and "
				  "accuracy < %.6f", fp32 - 1 - ACC_PRINT_EPS);
	cr_assert_geq(count("r.db", sql), 1, "no tuned trial lies beyond the bound:\n%s",
		      rows("r.db", "select number, accuracy, size_bytes, test_accuracy, parent_trial "
				   "from trials order by number"));
}

/* search.rescore_images reaches the tuned trials: one whose validation
 * accuracy meets the bound (here 5.5 points below FP32) at its point value
 * but not at constraints.confidence is scored on the same 4096 images after
 * the validation split that a PTQ trial's re-score uses, stored with the
 * split's own accuracy kept as valid_accuracy, and `export --pick ... at 95%`
 * can then take it (on the split's 128 images alone no tuned trial's
 * interval clears the bound). */
Test(search_finetune, a_tuned_trial_near_a_bound_is_rescored, .init = setup, .fini = teardown)
{
	write_config(cfg, "2, \"rescore_images\": 4096",
		     TUNING ", \"constraints\": {\"max_accuracy_drop\": 5.5, \"confidence\": 0.95}");
	cr_assert_eq(search("s.db", false, NULL), 0, "%s", err_text());
	char *err = err_text();
	cr_assert(strstr(err, "the tuned model re-scored on 4096 more images"), "%s", err);
	free(err);
	check_tuned_count("s.db", TUNE_FRONT);
	/* each re-scored tuned trial: the split's 128 images and the 4096 after
	 * them, a whole number of them right over the 4096 */
	char *r = rows("s.db", "select number, accuracy * 4224 / 100 - valid_accuracy * 128 / 100 "
			       "from trials where parent_trial is not null and n_images = 4224 and "
			       "valid_accuracy is not null");
	int n_rescored = 0;
	for (char *line = strtok(r, "\n"); line; line = strtok(NULL, "\n"), n_rescored++) {
		double extra = strtod(strchr(line, '|') + 1, NULL);
		cr_assert(fabs(extra - round(extra)) < 1e-6 && extra >= 0 && extra <= 4096,
			  "trial %s: not a count of the 4096 images", line);
	}
	free(r);
	cr_assert_geq(n_rescored, 1, "no tuned trial was re-scored:\n%s",
		      rows("s.db", "select number, accuracy, n_images, valid_accuracy, parent_trial "
				   "from trials order by number"));
	cr_assert_eq(count("s.db", "select count(*) from trials where parent_trial is not null and "
				   "(n_images not in (128, 4224) or "
				   "(n_images = 128) <> (valid_accuracy is null))"),
		     0, "a tuned trial is re-scored in part");
	/* the confident pick among the tuned trials finds the re-scored one */
	char dbp[1100], json[1100];
	snprintf(dbp, sizeof dbp, "%s", fx_join(dir, "s.db"));
	snprintf(json, sizeof json, "%s", fx_join(dir, "pick.json"));
	const char *pick[] = {"export", "--db", dbp, "--study", "tune", "--pick",
			      "max accuracy where tuned = 1 and accuracy_drop <= 5.5 at 95%",
			      "-o", json, NULL};
	cr_assert_eq(run_argv(NULL, pick), 0, "%s", err_text());
	err = err_text();
	const char *t = strstr(err, "presso export: trial ");
	cr_assert_not_null(t, "%s", err);
	char sql[256];
	snprintf(sql, sizeof sql, "select n_images from trials where number = %ld and "
				  "parent_trial is not null",
		 strtol(t + strlen("presso export: trial "), NULL, 10));
	cr_assert_eq(count("s.db", sql), 4224, "%s", err);
	free(err);
}

Test(search_finetune, resume_tunes_only_what_is_left, .init = setup, .fini = teardown)
{
	/* the reference: uninterrupted */
	cr_assert_eq(search("ref.db", false, NULL), 0, "%s", err_text());
	char *ref_ptq = rows("ref.db", PTQ), *ref_parents = rows("ref.db", PARENTS);
	/* killed right after the first fine-tune was stored */
	cr_assert_eq(search("k.db", false, "finetune:1:KILL"), 128 + SIGKILL, "%s", err_text());
	check_tuned("k.db", 1);
	char *first = rows("k.db", "select number, parent_trial, ended_at from trials where "
				   "parent_trial is not null");
	cr_assert_eq(search("k.db", true, NULL), 0, "%s", err_text());
	char *err = err_text();
	cr_assert(strstr(err, "1 to do, 1 done before"), "%s", err);
	free(err);
	check_tuned("k.db", TUNE_FRONT);
	char *again = rows("k.db", "select number, parent_trial, ended_at from trials where "
				   "parent_trial is not null order by number limit 1");
	cr_assert_str_eq(again, first, "the first fine-tune was kept, not redone");
	char *k_ptq = rows("k.db", PTQ), *k_parents = rows("k.db", PARENTS);
	cr_assert_str_eq(k_ptq, ref_ptq);
	cr_assert_str_eq(k_parents, ref_parents);
	/* a resume of a finished study tunes nothing more */
	cr_assert_eq(search("k.db", true, NULL), 0, "%s", err_text());
	check_tuned("k.db", TUNE_FRONT);
	/* stopped (SIGINT) after the first: the run ends as interrupted */
	cr_assert_eq(search("i.db", false, "finetune:1:INT"), 0, "%s", err_text());
	char *out = out_text();
	cr_assert(strstr(out, "interrupted") && strstr(out, "the rest on --resume"), "%s", out);
	free(out);
	check_tuned("i.db", 1);
	cr_assert_eq(search("i.db", true, NULL), 0, "%s", err_text());
	check_tuned("i.db", TUNE_FRONT);
	char *i_parents = rows("i.db", PARENTS);
	cr_assert_str_eq(i_parents, ref_parents);
	cr_assert_eq(count("i.db", "select count(*) from trials where state <> 'complete'"), 0);
	free(first);
	free(again);
	free(ref_ptq);
	free(ref_parents);
	free(k_ptq);
	free(k_parents);
	free(i_parents);
}

/* The run's time limit covers the fine-tunes at the end: over once the
 * budget is spent (no fine-tune begins), or after the first fine-tune (the
 * second does not begin); the run ends with "time limit reached", and
 * --resume tunes the rest. (A limit falling during training stops it at a
 * step boundary, checkpointed: test_train.c, resume_equals_uninterrupted.) */
Test(search_finetune, time_limit_covers_the_fine_tunes, .init = setup, .fini = teardown)
{
	cr_assert_eq(search_limited("t.db", false, "commit:" BUDGET ":TIME"), 0, "%s", err_text());
	char *out = out_text();
	cr_assert(strstr(out, "time limit reached") && strstr(out, "the rest on --resume"), "%s",
		  out);
	free(out);
	check_tuned_count("t.db", 0);
	cr_assert_eq(count("t.db", "select count(*) from trials where state = 'complete'"),
		     atol(BUDGET), "the limit fell after the budget was spent");
	cr_assert_eq(search_limited("t.db", true, NULL), 0, "%s", err_text());
	check_tuned("t.db", TUNE_FRONT);

	cr_assert_eq(search_limited("u.db", false, "finetune:1:TIME"), 0, "%s", err_text());
	out = out_text();
	cr_assert(strstr(out, "time limit reached") && strstr(out, "1 front trial fine-tuned") &&
			  strstr(out, "the rest on --resume"),
		  "%s", out);
	free(out);
	check_tuned("u.db", 1);
	cr_assert_eq(search_limited("u.db", true, NULL), 0, "%s", err_text());
	check_tuned("u.db", TUNE_FRONT);
	char *t_parents = rows("t.db", PARENTS), *u_parents = rows("u.db", PARENTS);
	cr_assert_str_eq(u_parents, t_parents);
	free(t_parents);
	free(u_parents);
}

/* The name of a fine-tune checkpoint beside db in the test's folder, or NULL.
 * Only whole checkpoints count: a kill can land while one is being written,
 * leaving its temporary file (NAME.ckpt.tmp-XXXXXX), as any atomic write
 * killed midway does. */
static char *checkpoint_of(const char *db)
{
	char prefix[256];
	snprintf(prefix, sizeof prefix, "%s.finetune-", db);
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	char *found = NULL;
	for (struct dirent *e; !found && (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n > 5 &&
		    strcmp(e->d_name + n - 5, ".ckpt") == 0)
			found = strdup(e->d_name);
	}
	closedir(d);
	return found;
}

Test(search_finetune, killed_while_training_resumes_to_the_same_model, .init = setup,
     .fini = teardown)
{
	write_config(cfg, "1", "{\"batch\": 16, \"micro_batch\": 8, \"lr\": 0.001, "
			       "\"max_steps\": 60, \"checkpoint_every\": 5, \"threads\": 1}");
	cr_assert_eq(search("ref.db", false, NULL), 0, "%s", err_text());
	char *ref = rows("ref.db", "select tuned_from, model_sha256, steps from v_finetunes");
	/* killed once the fine-tune has a checkpoint */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int z = open("/dev/null", O_RDWR);
		dup2(z, 0);
		dup2(z, 1);
		dup2(z, 2);
		unsetenv("PRESSO_TEST_INTERRUPT");
		execl(PRESSO_BINARY, PRESSO_BINARY, "search", "--quiet", "--config", cfg, "--db",
		      fx_join(dir, "k.db"), "--workers", "1", "--max-trials", BUDGET, (char *)NULL);
		_exit(127);
	}
	char *ckpt = NULL;
	int status;
	for (int waited_ms = 0; !(ckpt = checkpoint_of("k.db")) && waited_ms < 120000;
	     waited_ms += 2) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
		if (waitpid(pid, &status, WNOHANG) == pid)
			cr_assert_fail("the search ended before its fine-tune's first checkpoint");
	}
	cr_assert_not_null(ckpt, "no checkpoint after 120 s");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status), "the search ended before the kill");
	cr_assert_eq(count("k.db", "select count(*) from trials where parent_trial is not null"), 0,
		     "a fine-tune killed while training stores nothing");
	/* resumed: from the checkpoint, to the uninterrupted run's model */
	cr_assert_eq(search("k.db", true, NULL), 0, "%s", err_text());
	char *got = rows("k.db", "select tuned_from, model_sha256, steps from v_finetunes");
	cr_assert_str_eq(got, ref);
	free(ckpt);
	cr_assert_null(ckpt = checkpoint_of("k.db"), "the checkpoint %s is left", ckpt);
	free(got);
	free(ref);
}

Test(search_finetune, finetune_command_records_a_trial, .init = setup, .fini = teardown)
{
	snprintf(cfg, sizeof cfg, "%s/plain.json", dir);
	write_config(cfg, "0", TUNING);
	cr_assert_eq(search("f.db", false, NULL), 0, "%s", err_text());
	cr_assert_eq(count("f.db", "select count(*) from trials where parent_trial is not null"), 0,
		     "finetune_front 0 tunes nothing");
	char dbp[1100];
	snprintf(dbp, sizeof dbp, "%s", fx_join(dir, "f.db"));
	const char *ft[] = {"finetune", "--config", cfg, "--db", dbp, "--study", "tune",
			    "--trial", "3", "--steps", "3", "--quiet", NULL};
	cr_assert_eq(run_argv(NULL, ft), 0, "%s", err_text());
	char *out = out_text();
	cr_assert(strstr(out, "stored:      trial 9 of study 'tune'"), "%s", out);
	free(out);
	cr_assert_eq(count("f.db", "select count(*) from v_finetunes where trial = 9 and "
				   "tuned_from = 3 and source = 'finetune' and steps = 3 and "
				   "accuracy is not null and test_accuracy is not null and "
				   "model_bytes > 0"),
		     1, "%s", rows("f.db", "select * from v_finetunes"));
	cr_assert_eq(count("f.db", "select count(*) from trials t join trials p on p.number = 3 "
				   "where t.number = 9 and t.policy_sha256 = p.policy_sha256 and "
				   "t.size_bytes is not null"),
		     1);
	/* refused, with nothing stored: a tuned trial, a missing one, --policy too */
	const char *tuned[] = {"finetune", "--config", cfg, "--db", dbp, "--study", "tune",
			       "--trial", "9", "--steps", "3", "--quiet", NULL};
	cr_assert_eq(run_argv(NULL, tuned), 2);
	char *err = err_text();
	cr_assert(strstr(err, "itself fine-tuned (from trial 3)"), "%s", err);
	free(err);
	const char *missing[] = {"finetune", "--config", cfg, "--db", dbp, "--study", "tune",
				 "--trial", "99", "--steps", "3", "--quiet", NULL};
	cr_assert_eq(run_argv(NULL, missing), 2);
	const char *both[] = {"finetune", "--config", cfg, "--db", dbp, "--study", "tune",
			      "--trial", "3", "--policy", "int8", "--quiet", NULL};
	cr_assert_eq(run_argv(NULL, both), 2);
	const char *nostudy[] = {"finetune", "--config", cfg, "--db", dbp, "--trial", "3", NULL};
	cr_assert_eq(run_argv(NULL, nostudy), 2);
	/* a config with other splits than the study's */
	char other[1100];
	snprintf(other, sizeof other, "%s/other.json", dir);
	char *text = fx_read(cfg, NULL);
	cr_assert_not_null(text);
	char *v = strstr(text, "\"validation\": 128");
	cr_assert_not_null(v);
	memcpy(v, "\"validation\": 127", strlen("\"validation\": 127"));
	cr_assert(fx_write(other, text, strlen(text)));
	free(text);
	const char *splits[] = {"finetune", "--config", other, "--db", dbp, "--study", "tune",
				"--trial", "3", "--steps", "3", "--quiet", NULL};
	cr_assert_eq(run_argv(NULL, splits), 2);
	err = err_text();
	cr_assert(strstr(err, "is not study 'tune''s"), "%s", err);
	free(err);
	cr_assert_eq(count("f.db", "select count(*) from trials"), 9);
}

Test(search_finetune, bad_settings_are_config_errors, .init = setup, .fini = teardown)
{
	static const struct {
		const char *front, *finetune, *message;
	} cases[] = {
		{"-1", "{}", "search.finetune_front"},
		{"1.5", "{}", "search.finetune_front"},
		{"\"2\"", "{}", "search.finetune_front"},
		{"2", "{\"lr\": -1}", "finetune.lr"},
		{"2", "{\"optimizer\": \"lbfgs\"}", "finetune.optimizer"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_config(cfg, cases[i].front, cases[i].finetune);
		cr_assert_eq(search("bad.db", false, NULL), 2, "case %zu", i);
		char *err = err_text();
		cr_assert(strstr(err, cases[i].message), "case %zu: %s", i, err);
		free(err);
		struct stat st;
		cr_assert_neq(stat(fx_join(dir, "bad.db"), &st), 0, "case %zu: a database was made",
			      i);
	}
	/* a bad finetune section does not matter to a search that tunes nothing */
	write_config(cfg, "0", "{\"lr\": -1}");
	const char *args[] = {"search", "--quiet", "--config", cfg, "--db", fx_join(dir, "ok.db"),
			      "--workers", "1", "--max-trials", "2", NULL};
	cr_assert_eq(run_argv(NULL, args), 0, "%s", err_text());
}
