/* search.c - `presso search`: runs or resumes a study's search (search/driver.h)
 * and prints its summary: how it ended, the FP32 baseline, the front with its
 * test-split re-check, and the best policy under the constraints.
 *
 * Under mpirun (an MPI build), every rank runs this command with the same
 * arguments: rank 0 runs the search, the others serve it (pool_serve in
 * evaluators/pool.h) and print nothing of their own. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/stats.h"
#include "cli/cli.h"
#include "config/config.h"
#include "evaluators/pool.h"
#include "format/presso_file.h"
#include "search/driver.h"
#include "search/signals.h"
#include "search/space.h"

#define MAX_WORKERS 1024

static bool parse_count(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void print_value(double v, const char *fmt, int width)
{
	if (isnan(v))
		printf(" %*s", width, "-");
	else
		printf(fmt, width, v);
}

static void print_trial_row(const struct driver_result *r, const struct driver_trial *t,
			    bool estimates)
{
	const struct trial_metrics *m = &t->m;
	printf("  %6lld", (long long)t->number);
	print_value(m->accuracy, " %*.2f", 9);
	print_value(m->test_accuracy, " %*.2f", 9);
	print_value((double)m->size_bytes / 1024.0, " %*.1f", 9);
	print_value((double)r->base.size_bytes / (double)m->size_bytes, " %*.2f", 6);
	print_value(m->bops, " %*.3g", 10);
	if (estimates)
		print_value(t->latency_estimate_us, " %*.1f", 8);
	print_value(m->latency_us, " %*.1f", 8);
	print_value(m->mean_bits, " %*.2f", 5);
	if (t->n_same)
		printf("  (+%d same)", t->n_same);
	printf("\n");
}

static void print_summary(const struct driver_opts *o, const struct driver_result *r)
{
	printf("study:     %s (%s) in %s\n", r->study, r->resumed ? "resumed" : "new", o->db_path);
	double rate = r->seconds > 0 ? 60.0 * (r->n_complete_run + r->n_failed_run) / r->seconds : 0;
	char size_text[32];
	char ranks[48] = "";
	if (r->ranks > 1)
		snprintf(ranks, sizeof ranks, " on %d MPI ranks", r->ranks);
	printf("search:    %s, %d layers, %s policies in the space, %d worker%s%s, batches of %d\n",
	       space_strategy_name(r->strategy), r->n_layers,
	       space_size_text(r->space_size, size_text, sizeof size_text), r->workers,
	       r->workers == 1 ? "" : "s", ranks, r->batch);
	printf("ended:     %s: %lld of %lld trials (this run: %d complete, %d failed", driver_end_str(r->end),
	       (long long)r->done, (long long)r->budget, r->n_complete_run, r->n_failed_run);
	if (r->n_requeued)
		printf(", %d lost earlier and run again", r->n_requeued);
	printf(") in %.1f s, %.1f trials/min\n", r->seconds, rate);
	if (r->n_rescored_run > 0)
		printf("rescored:  %d front trial%s whose accuracy interval straddled a bound, on "
		       "more validation images\n",
		       r->n_rescored_run, r->n_rescored_run == 1 ? "" : "s");
	if (r->fidelity_images > 0)
		printf("fidelity:  every candidate first on %lld of the %lld validation images; "
		       "this run: %d screened out there, %d promoted to the whole split "
		       "(%.1f full-fidelity trials/min)\n",
		       (long long)r->fidelity_images, (long long)r->valid_images, r->n_screened_run,
		       r->n_promoted_run, r->seconds > 0 ? 60.0 * r->n_promoted_run / r->seconds : 0);
	if (r->seconds > 0 && r->workers > 0 && r->n_complete_run + r->n_failed_run > 0)
		printf("workers:   evaluating %.1f%% of the time (%d worker%s x %.1f s); the driver: "
		       "%.2f ms of CPU per trial\n",
		       100.0 * r->eval_seconds / (r->workers * r->seconds), r->workers,
		       r->workers == 1 ? "" : "s", r->seconds,
		       1e3 * r->driver_cpu_s / (r->n_complete_run + r->n_failed_run));
	if (r->last_error[0])
		printf("failed:    %s\n", r->last_error);
	printf("FP32:      %.2f%% validation, %.2f%% test, %lld bytes, %.3g BOPs, %.1f us\n",
	       r->base.accuracy, r->base.test_accuracy, (long long)r->base.size_bytes, r->base.bops,
	       r->base.latency_us);
	char objs[64] = "";
	for (int k = 0; k < r->n_obj; k++)
		snprintf(objs + strlen(objs), sizeof objs - strlen(objs), "%s%s", k ? ", " : "",
			 store_objective_name(r->obj[k]));
	/* `presso studies` counts the front of every complete trial: say which this is */
	printf("front:     %d trial%s over %s, %s", r->n_front, r->n_front == 1 ? "" : "s", objs,
	       r->constrained ? "of the trials that meet the constraints" : "no constraints set");
	if (r->finetune_reach > 0)
		printf(" with the accuracy bounds %g points looser (search.finetune_reach)",
		       r->finetune_reach);
	if (r->n_front_same)
		printf(" (%d more with the same values: not listed, not re-checked)", r->n_front_same);
	printf("; hypervolume %.2f%% of the reference box (%.4g)\n", 100.0 * r->hv_ratio,
	       r->hypervolume);
	if (r->n_front) {
		bool estimates = false;
		for (int i = 0; i < r->n_front; i++)
			estimates |= !isnan(r->front[i].latency_estimate_us);
		printf("  %6s %9s %9s %9s %6s %10s", "trial", "accuracy", "test_acc", "size_kb",
		       "ratio", "bops");
		if (estimates)
			printf(" %8s", "lat_est");
		printf(" %8s %5s\n", "lat_us", "bits");
		for (int i = 0; i < r->n_front; i++)
			print_trial_row(r, &r->front[i], estimates);
		if (r->front_rechecked)
			printf("           test_acc and lat_us (batch 1, one thread) measured for the "
			       "front%s\n",
			       estimates ? "; lat_est from the latency table" : "");
		else
			printf("           not re-checked on the test split (%s); --resume finishes "
			       "it\n",
			       r->end == DRIVER_END_INTERRUPTED ? "interrupted" : "stopped");
	}
	if (r->n_finetuned_run || r->n_finetune_todo)
		printf("tuned:     %d front trial%s fine-tuned by this run%s; presso pareto marks "
		       "them\n",
		       r->n_finetuned_run, r->n_finetuned_run == 1 ? "" : "s",
		       r->n_finetune_todo ? ", the rest on --resume" : "");
	if (r->has_best_tuned) {
		const struct trial_metrics *m = &r->best_tuned.m;
		printf("best tuned: trial %lld (trial %lld fine-tuned), the smallest that meets the "
		       "constraints: %.2f%% validation, %.2f%% test, %.1f KiB (%.2fx smaller than "
		       "FP32)\n           presso export --db %s --study '%s' --trial %lld -o "
		       "best.presso\n",
		       (long long)r->best_tuned.number, (long long)r->best_tuned_parent, m->accuracy,
		       m->test_accuracy, (double)m->size_bytes / 1024.0,
		       (double)r->base.size_bytes / (double)m->size_bytes, o->db_path, r->study,
		       (long long)r->best_tuned.number);
	} else if (r->n_finetuned_run) {
		printf("best tuned: none of this run's fine-tuned trials meets the constraints%s\n",
		       isnan(r->confidence) ? "" : " at their confidence");
	}
	if (r->has_best) {
		const struct trial_metrics *m = &r->best.m;
		printf("best:      trial %lld, %s: %.2f%% validation", (long long)r->best.number,
		       r->best_rule, m->accuracy);
		if (m->n_images > 0) {
			/* the two-sided interval pareto shows; with a confidence,
			 * also the one-sided bound the constraint was checked with */
			double z = stats_normal_quantile(0.975);
			printf(" (95%% interval %.2f..%.2f on %lld images",
			       stats_wilson_bound(m->accuracy, (double)m->n_images, -z),
			       stats_wilson_bound(m->accuracy, (double)m->n_images, z),
			       (long long)m->n_images);
			if (!isnan(r->confidence))
				printf("; %g%% lower bound %.2f", 100 * r->confidence,
				       stats_wilson_bound(m->accuracy, (double)m->n_images,
							  -stats_one_sided_z(r->confidence)));
			printf(")");
		}
		if (!isnan(m->test_accuracy))
			printf(", %.2f%% test", m->test_accuracy);
		printf(", %.1f KiB (%.2fx smaller than FP32)", (double)m->size_bytes / 1024.0,
		       (double)r->base.size_bytes / (double)m->size_bytes);
		if (!isnan(m->latency_us))
			printf(", %.1f us", m->latency_us);
		printf("\n           presso export --db %s --study '%s' --trial %lld -o best.json\n",
		       o->db_path, r->study, (long long)r->best.number);
	} else {
		printf("best:      no trial meets the constraints%s yet\n",
		       isnan(r->confidence) ? "" : " at their confidence");
	}
}

int cmd_search(int argc, char **argv)
{
	const char *config_path = NULL, *db = NULL, *study = NULL, *workers_arg = NULL,
		   *max_trials_arg = NULL, *time_limit_arg = NULL;
	bool new_study = false, resume = false, quiet = false;
	const struct cli_opt opts[] = {
		{"config", CLI_STRING, "FILE", "study config (model, data, space, objectives, search)",
		 NULL, &config_path},
		{"db", CLI_STRING, "FILE", "the study database (created if missing)", NULL, &db},
		{"study", CLI_STRING, "NAME", "study name (default: the config's name)", NULL, &study},
		{"new-study", CLI_FLAG, NULL, "start a new study even if the name exists (NAME-2, ...)",
		 &new_study, NULL},
		{"resume", CLI_FLAG, NULL, "continue the study (population, bandits, RNG) or start it",
		 &resume, NULL},
		{"workers", CLI_STRING, "N",
		 "trials evaluated in parallel (default: all cores); under mpirun, per worker rank",
		 NULL, &workers_arg},
		{"max-trials", CLI_STRING, "N",
		 "the study's trial budget (default: search.max_trials, else 100)", NULL,
		 &max_trials_arg},
		{"time-limit", CLI_STRING, "T",
		 "stop this run after T (90s, 15m, 8h), the end's fine-tunes included", NULL,
		 &time_limit_arg},
		{"quiet", CLI_FLAG, NULL, "no progress line", &quiet, NULL},
	};
	const struct cli_cmd cmd = {
		"search",
		"Searches per-layer bits, activation bits and bias correction for the config's\n"
		"model (random, bandit, evolution or hybrid: the config's search.strategy),\n"
		"evaluating candidates on the validation split in parallel and keeping every\n"
		"trial in the database. Interrupt (Ctrl-C, SIGTERM) finishes the trials in\n"
		"flight and exits 0; a second interrupt abandons them. --resume continues an\n"
		"interrupted or killed search where it stopped. At the end the front is\n"
		"re-checked on the test split and the best policy under the constraints shown.",
		"--config FILE --db FILE [--study NAME] [--new-study | --resume] [--workers N]\n"
		"       [--max-trials N] [--time-limit T] [--quiet]",
		opts, 9};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "config", config_path) || !cli_require(&cmd, "db", db))
		return 2;
	if (new_study && resume) {
		fprintf(stderr, "presso search: --new-study and --resume contradict each other\n");
		return 2;
	}
	int64_t workers = omp_get_num_procs(), max_trials = 0;
	double time_limit_s = 0;
	if (workers_arg && !parse_count(workers_arg, 1, MAX_WORKERS, &workers)) {
		fprintf(stderr, "presso search: --workers must be an integer in 1..%d, not '%s'\n",
			MAX_WORKERS, workers_arg);
		return 2;
	}
	if (max_trials_arg && !parse_count(max_trials_arg, 1, 1000000000, &max_trials)) {
		fprintf(stderr, "presso search: --max-trials must be an integer in 1..1000000000, "
				"not '%s'\n",
			max_trials_arg);
		return 2;
	}
	if (time_limit_arg && !space_parse_duration(time_limit_arg, &time_limit_s)) {
		fprintf(stderr, "presso search: --time-limit must be a duration like 90s, 15m or 8h, "
				"not '%s'\n",
			time_limit_arg);
		return 2;
	}
	/* before any other thread exists (signals.h) */
	struct signals *sig = NULL;
	enum presso_status s = signals_catch(&sig);
	if (s != PRESSO_OK)
		return cli_fail("search", s);
	/* after signals_catch: MPI's own threads inherit the blocked signals */
	struct pool_world world;
	if ((s = pool_world_init(&world)) != PRESSO_OK) {
		rc = cli_fail("search", s);
		pool_world_finish();
		signals_release(sig);
		return rc;
	}
	if (world.rank > 0) {
		/* a worker rank: its errors reach rank 0, which reports them */
		s = pool_serve(config_path, (int)workers);
		pool_world_finish();
		signals_release(sig);
		return status_exit_code(s);
	}
	struct config *cfg = NULL;
	struct driver_result r = {0};
	s = config_load(config_path, &cfg);
	if (s == PRESSO_OK) {
		struct driver_opts o = {
			.cfg = cfg,
			.db_path = db,
			.study = study,
			.new_study = new_study,
			.resume = resume,
			.workers = (int)workers,
			.max_trials = max_trials,
			.time_limit_s = time_limit_s,
			.quiet = quiet,
			.log = stderr,
			.stop = signals_flag(sig),
			.signals = sig,
			.encode_model = presso_file_encode,
		};
		s = driver_run(&o, &r);
		if (s == PRESSO_OK) {
			print_summary(&o, &r);
			fflush(stdout);
		}
	}
	rc = s == PRESSO_OK ? 0 : cli_fail("search", s);
	driver_result_free(&r);
	config_free(cfg);
	pool_world_finish();
	signals_release(sig);
	return rc;
}
