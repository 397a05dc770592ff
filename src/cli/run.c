/* run.c - `presso run`: input tensors through a model; the outputs written as
 * NPY, printed as a summary, or compared with an ONNX test data set's.
 *
 * The model runs in presso's FP32 engine (an ONNX file) or its INT8 engine (a
 * .presso file, or an ONNX file quantized by --policy and calibrated on the
 * calibration split of --config's dataset). The input is an NPY array (one
 * model input) or a test_data_set_* folder of the ONNX test suites:
 * input_0.pb, input_1.pb, ... (TensorProto, one per model input, matched by
 * name, else by position) and output_0.pb, ... (the expected outputs).
 *
 * The first dimension of every input is the batch. A model whose batch is
 * dynamic runs RUN_CHUNK items at a time; one with a fixed batch B (data/feed.h)
 * runs B at a time, so the input holds a multiple of B. The outputs of the runs
 * are joined along their first dimension. A model with an output that does not
 * follow the batch runs the whole input at once.
 *
 * Comparison: an output value passes when |got - expected| <= atol + rtol *
 * |expected| (numpy's allclose); the largest absolute error and the largest
 * relative error |got - expected| / |expected| (over expected values not 0) are
 * reported. Exit status 0 when every value passes, 1 when one does not, 2 for a
 * bad model, input or option.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "config/config.h"
#include "data/dataset.h"
#include "evaluators/trial.h"
#include "format/presso_file.h"
#include "model/engine.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "quant/qengine.h"

/* Items per run of a model with a dynamic batch: the memory of 64 images'
 * activations, a batch every engine is planned for elsewhere too. */
#define RUN_CHUNK 64
/* Default tolerance: FP32 kernels that sum in another order than the reference
 * differ in the last bits (float32 epsilon is 1.2e-7; a dot product of K terms
 * drifts by about sqrt(K) of them), and exp/log by a few ulp. */
#define DEFAULT_ATOL 1e-5
#define DEFAULT_RTOL 1e-3
/* The summary prints this many leading values and row argmaxes. */
#define SHOW_VALUES 8
#define SHOW_ROWS 32
/* An ONNX test data set has few tensors; more is not a test data set. */
#define MAX_PB_TENSORS 64

struct tensor {
	char *name;  /* the tensor's own name (a .pb may carry one), or NULL */
	char *file;  /* where it came from, for messages */
	struct shape shape;
	float *data;
};

static void tensor_free(struct tensor *t)
{
	free(t->name);
	free(t->file);
	free(t->data);
	memset(t, 0, sizeof *t);
}

struct tensors {
	int n;
	struct tensor t[MAX_PB_TENSORS];
};

static void tensors_free(struct tensors *ts)
{
	for (int i = 0; i < ts->n; i++)
		tensor_free(&ts->t[i]);
	ts->n = 0;
}

static char *dup_or_fail(const char *s, enum presso_status *st)
{
	char *d = strdup(s);
	if (!d)
		*st = status_fail(PRESSO_E_NOMEM, "out of memory");
	return d;
}

static enum presso_status load_npy(const char *path, struct tensors *ts)
{
	struct tensor *t = &ts->t[0];
	memset(t, 0, sizeof *t);
	enum presso_status s = dataset_load_npy_tensor(path, GRAPH_MAX_DIMS, t->shape.dims,
						       &t->shape.n_dims, &t->data);
	if (s != PRESSO_OK)
		return s;
	ts->n = 1;
	t->file = dup_or_fail(path, &s);
	return s;
}

/* prefix_0.pb, prefix_1.pb, ... of dir into ts, float32 only. */
static enum presso_status load_pbs(const char *dir, const char *prefix, struct tensors *ts)
{
	enum presso_status s = PRESSO_OK;
	ts->n = 0;
	for (int i = 0; i < MAX_PB_TENSORS; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, i);
		if (stat(path, &st) != 0)
			break;
		struct value v;
		if ((s = graph_load_tensor_pb(path, &v)) != PRESSO_OK)
			return s;
		struct tensor *t = &ts->t[ts->n++];
		memset(t, 0, sizeof *t);
		t->name = v.name && *v.name ? v.name : NULL;
		if (!t->name)
			free(v.name);
		t->shape = v.shape;
		t->data = v.data;
		free(v.idata);
		t->file = dup_or_fail(path, &s);
		if (s != PRESSO_OK)
			return s;
		if (!t->data)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "%s: an int64 tensor; presso's model inputs and outputs "
					   "are float32",
					   path);
	}
	return PRESSO_OK;
}

/* ---- the engines ------------------------------------------------------------- */

struct runner {
	struct engine *f;
	struct qengine *q;
};

static enum presso_status runner_create(const struct graph *g, const struct qmodel *qm,
					int batch, struct runner *r)
{
	memset(r, 0, sizeof *r);
	return qm ? qengine_create(qm, batch, &r->q) : engine_create(g, batch, &r->f);
}

static float *runner_input(struct runner *r, int i)
{
	return r->q ? qengine_input(r->q, i) : engine_input(r->f, i);
}

static enum presso_status runner_run(struct runner *r, int batch)
{
	return r->q ? qengine_run(r->q, batch) : engine_run(r->f, batch);
}

static const float *runner_output(struct runner *r, int i, struct shape *s)
{
	return r->q ? qengine_output(r->q, i, s) : engine_output(r->f, i, s);
}

static void runner_free(struct runner *r)
{
	qengine_free(r->q);
	engine_free(r->f);
}

/* ---- matching the inputs and running --------------------------------------- */

/* How the inputs are cut into runs. */
struct plan {
	int order[MAX_PB_TENSORS]; /* tensor of graph input i */
	bool fixed;                /* the model's batch is fixed */
	int64_t n_runs;
	int64_t items;             /* dynamic: items (dimension 0 of the inputs) */
	int per_run;               /* dynamic: items per run */
};

static void format_shape(const struct shape *s, char *buf, size_t cap)
{
	shape_format(s, false, buf, cap);
}

static enum presso_status plan_runs(const struct graph *g, const struct tensors *in,
				    struct plan *p)
{
	char have[128], want[128];
	memset(p, 0, sizeof *p);
	if (g->n_inputs > MAX_PB_TENSORS || g->n_outputs > MAX_PB_TENSORS)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "the model has %d inputs and %d outputs; presso run takes at "
				   "most %d of each",
				   g->n_inputs, g->n_outputs, MAX_PB_TENSORS);
	if (in->n != g->n_inputs)
		return status_fail(PRESSO_E_FORMAT,
				   "the model has %d input%s, but %d input tensor%s given (%s%s)",
				   g->n_inputs, g->n_inputs == 1 ? "" : "s", in->n,
				   in->n == 1 ? " is" : "s are", in->n ? in->t[0].file : "none",
				   in->n > 1 ? ", ..." : "");
	/* by name when a tensor has a model input's name, else by position */
	bool taken[MAX_PB_TENSORS] = {false};
	for (int i = 0; i < g->n_inputs; i++)
		p->order[i] = -1;
	for (int k = 0; k < in->n; k++) {
		int v = in->t[k].name ? graph_find_value(g, in->t[k].name) : -1;
		for (int i = 0; v >= 0 && i < g->n_inputs; i++)
			if (g->inputs[i] == v && p->order[i] < 0) {
				p->order[i] = k;
				taken[k] = true;
			}
	}
	for (int i = 0, k = 0; i < g->n_inputs; i++) {
		if (p->order[i] >= 0)
			continue;
		while (taken[k])
			k++;
		p->order[i] = k;
		taken[k] = true;
	}
	int n_fixed = 0;
	for (int i = 0; i < g->n_inputs; i++) {
		const struct value *v = &g->values[g->inputs[i]];
		const struct tensor *t = &in->t[p->order[i]];
		bool fits = t->shape.n_dims == v->shape.n_dims && v->shape.n_dims >= 1;
		for (int d = 1; fits && d < v->shape.n_dims; d++)
			fits = t->shape.dims[d] == v->shape.dims[d];
		if (fits && !v->batched)
			fits = t->shape.dims[0] % v->shape.dims[0] == 0;
		if (!fits) {
			format_shape(&t->shape, have, sizeof have);
			shape_format(&v->shape, v->batched, want, sizeof want);
			return status_fail(PRESSO_E_FORMAT,
					   "%s: a tensor of shape %s, but model input '%s' is %s%s",
					   t->file, have, v->name, want,
					   v->batched ? " (the first dimension is the batch)"
						      : " (a fixed batch: the first dimension must be "
							"a multiple of it)");
		}
		int64_t runs = v->batched ? t->shape.dims[0] : t->shape.dims[0] / v->shape.dims[0];
		if (i == 0)
			p->n_runs = runs;
		if (runs != p->n_runs)
			return status_fail(PRESSO_E_FORMAT,
					   "%s holds %lld batch rows but %s holds %lld: the inputs' "
					   "batches differ",
					   in->t[p->order[0]].file, (long long)p->n_runs, t->file,
					   (long long)runs);
		n_fixed += !v->batched;
	}
	if (n_fixed && n_fixed != g->n_inputs)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "the model mixes inputs with a fixed batch and inputs whose "
				   "batch is dynamic; presso run takes either");
	p->fixed = n_fixed > 0;
	if (!p->fixed) {
		p->items = p->n_runs;
		p->per_run = p->items < RUN_CHUNK ? (int)p->items : RUN_CHUNK;
		bool all_batched = true;
		for (int o = 0; o < g->n_outputs; o++)
			all_batched = all_batched && g->values[g->outputs[o]].batched;
		if (!all_batched) /* an output that does not follow the batch: one run */
			p->per_run = (int)p->items; /* a shape dimension: fits (graph.h) */
		p->n_runs = (p->items + p->per_run - 1) / p->per_run;
	}
	return PRESSO_OK;
}

/* Runs the inputs through the model; out->t[o] gets graph output o, the runs'
 * outputs joined along the first dimension. */
static enum presso_status run_model(const struct graph *g, const struct qmodel *qm,
				    const struct tensors *in, const struct plan *p,
				    struct tensors *out)
{
	struct runner r;
	int engine_batch = p->fixed ? 1 : p->per_run;
	enum presso_status s = runner_create(g, qm, engine_batch, &r);
	if (s != PRESSO_OK)
		return s;
	int64_t cap_values[MAX_PB_TENSORS] = {0}, used[MAX_PB_TENSORS] = {0};
	out->n = g->n_outputs;
	for (int o = 0; o < out->n; o++)
		memset(&out->t[o], 0, sizeof out->t[o]);
	for (int64_t run = 0; s == PRESSO_OK && run < p->n_runs; run++) {
		int m = p->fixed ? 1 : (int)(p->items - run * p->per_run < p->per_run
						      ? p->items - run * p->per_run
						      : p->per_run);
		for (int i = 0; i < g->n_inputs; i++) {
			const struct value *v = &g->values[g->inputs[i]];
			const struct tensor *t = &in->t[p->order[i]];
			/* rows of this run: m items, or the fixed shape */
			int64_t per = shape_numel(&v->shape);
			int64_t first = p->fixed ? run * per : run * p->per_run * per;
			memcpy(runner_input(&r, i), t->data + first,
			       sizeof(float) * (size_t)(per * (p->fixed ? 1 : m)));
		}
		if ((s = runner_run(&r, p->fixed ? 1 : m)) != PRESSO_OK)
			break;
		for (int o = 0; o < out->n; o++) {
			struct shape os;
			const float *y = runner_output(&r, o, &os);
			struct tensor *t = &out->t[o];
			int64_t n = shape_numel(&os);
			if (run == 0) {
				t->shape = os;
				t->name = dup_or_fail(g->values[g->outputs[o]].name, &s);
				if (s != PRESSO_OK)
					break;
			} else if (os.n_dims < 1) {
				s = status_fail(PRESSO_E_UNSUPPORTED,
						"output '%s' is a scalar per run; it cannot be joined "
						"over %lld runs",
						g->values[g->outputs[o]].name, (long long)p->n_runs);
				break;
			} else {
				t->shape.dims[0] += os.dims[0];
			}
			if (used[o] + n > cap_values[o]) {
				int64_t cap = (used[o] + n) * 2;
				float *d = realloc(t->data, sizeof(float) * (size_t)cap);
				if (!d) {
					s = status_fail(PRESSO_E_NOMEM, "out of memory for output '%s'",
							t->name);
					break;
				}
				t->data = d;
				cap_values[o] = cap;
			}
			memcpy(t->data + used[o], y, sizeof(float) * (size_t)n);
			used[o] += n;
		}
	}
	runner_free(&r);
	if (s != PRESSO_OK)
		tensors_free(out);
	return s;
}

/* ---- what is printed --------------------------------------------------------- */

static void print_summary(const struct tensor *t)
{
	char shape[128];
	format_shape(&t->shape, shape, sizeof shape);
	int64_t n = shape_numel(&t->shape);
	printf("output '%s' %s\n  values:", t->name, shape);
	for (int64_t i = 0; i < n && i < SHOW_VALUES; i++)
		printf(" %.6g", t->data[i]);
	if (n > SHOW_VALUES)
		printf(" ... (%lld values)", (long long)n);
	printf("\n");
	/* a row is one item of the batch: everything after the first dimension */
	int64_t rows = t->shape.n_dims >= 2 ? t->shape.dims[0] : 1;
	int64_t per = rows ? n / rows : 0;
	if (per < 1)
		return;
	printf("  argmax per row:");
	for (int64_t r = 0; r < rows && r < SHOW_ROWS; r++) {
		const float *x = t->data + r * per;
		int64_t best = 0;
		for (int64_t k = 1; k < per; k++)
			if (x[k] > x[best])
				best = k;
		printf(" %lld", (long long)best);
	}
	if (rows > SHOW_ROWS)
		printf(" ... (%lld rows)", (long long)rows);
	printf("\n");
}

/* Compares got with want; prints one line; true when every value passes. */
static bool compare(const struct tensor *got, const struct tensor *want, double atol, double rtol)
{
	char gs[128], ws[128];
	format_shape(&got->shape, gs, sizeof gs);
	format_shape(&want->shape, ws, sizeof ws);
	bool same = got->shape.n_dims == want->shape.n_dims;
	for (int d = 0; same && d < got->shape.n_dims; d++)
		same = got->shape.dims[d] == want->shape.dims[d];
	if (!same) {
		printf("output '%s' %s vs %s %s: the shapes differ\n", got->name, gs, want->file, ws);
		return false;
	}
	int64_t n = shape_numel(&got->shape), bad = 0;
	double max_abs = 0, max_rel = 0;
	for (int64_t i = 0; i < n; i++) {
		double a = got->data[i], e = want->data[i], d = fabs(a - e);
		if (!(d <= atol + rtol * fabs(e)))
			bad++;
		if (d > max_abs || isnan(d))
			max_abs = isnan(d) ? INFINITY : d;
		if (e != 0 && d / fabs(e) > max_rel)
			max_rel = d / fabs(e);
	}
	printf("output '%s' %s vs %s: max abs error %.3g, max rel error %.3g: ", got->name, gs,
	       want->file, max_abs, max_rel);
	if (bad)
		printf("%lld of %lld values outside atol %g + rtol %g x |expected|\n", (long long)bad,
		       (long long)n, atol, rtol);
	else
		printf("within atol %g + rtol %g x |expected|\n", atol, rtol);
	return bad == 0;
}

/* path with "_k" before its ".npy" (k >= 1): the file of output k. */
static char *output_path(const char *path, int k)
{
	size_t n = strlen(path);
	char *p = malloc(n + 16);
	if (!p)
		return NULL;
	if (k == 0)
		memcpy(p, path, n + 1);
	else
		snprintf(p, n + 16, "%.*s_%d.npy", (int)(n - 4), path, k);
	return p;
}

static bool parse_tolerance(const char *opt, const char *arg, double *out)
{
	if (!arg)
		return true;
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (!*arg || *end || errno || !isfinite(v) || v < 0) {
		fprintf(stderr, "presso run: --%s must be a number >= 0, not '%s'\n", opt, arg);
		return false;
	}
	*out = v;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

int cmd_run(int argc, char **argv)
{
	const char *model_path = NULL, *policy_arg = NULL, *config_path = NULL, *input = NULL,
		   *output = NULL, *atol_arg = NULL, *rtol_arg = NULL;
	const struct cli_opt opts[] = {
		{"model", CLI_STRING, "FILE", "the model: FILE.onnx (FP32, or quantized by --policy) "
		 "or FILE.presso (INT8)", NULL, &model_path},
		{"policy", CLI_STRING, "FILE|int8|int4",
		 "quantize the ONNX model with this policy (needs --config)", NULL, &policy_arg},
		{"config", CLI_STRING, "FILE",
		 "study config whose calibration split calibrates --policy (its model is not used)",
		 NULL, &config_path},
		{"input", CLI_STRING, "FILE.npy|DIR",
		 "an NPY array (batch first), or an ONNX test_data_set_N folder", NULL, &input},
		{"output", CLI_STRING, "FILE.npy",
		 "-o FILE.npy: write output 0 there (output k to FILE_k.npy)", NULL, &output},
		{"atol", CLI_STRING, "X", "absolute tolerance against output_*.pb (default 1e-5)",
		 NULL, &atol_arg},
		{"rtol", CLI_STRING, "X", "relative tolerance against output_*.pb (default 1e-3)",
		 NULL, &rtol_arg},
	};
	const struct cli_cmd cmd = {
		"run",
		"Runs input tensors through a model and writes its outputs as NPY (-o), or\n"
		"prints them: each output's shape, first values and the argmax of each row\n"
		"(one row per item of the batch). The model runs in presso's FP32 engine\n"
		"(an .onnx file), or in its INT8 engine (a .presso file, or an .onnx file with\n"
		"--policy, calibrated on --config's calibration split).\n"
		"The input is an NPY array of float32 (or uint8), fed as it is (normalise it\n"
		"first), whose first dimension is the batch (a model with a fixed batch B\n"
		"takes a multiple of B), or an ONNX\n"
		"test_data_set_N folder: input_0.pb, ... and the expected output_0.pb, ...\n"
		"Given expected outputs, prints the largest absolute and relative errors and\n"
		"exits 0 when every value is within atol + rtol x |expected|, 1 otherwise.",
		"--model FILE.onnx|FILE.presso [--policy P --config FILE] --input FILE.npy|DIR\n"
		"       [-o FILE.npy] [--atol X] [--rtol X]",
		opts, 7};
	int rc;
	if (!cli_parse(&cmd, argc, argv, &rc))
		return rc;
	if (!cli_require(&cmd, "model", model_path) || !cli_require(&cmd, "input", input))
		return 2;
	double atol = DEFAULT_ATOL, rtol = DEFAULT_RTOL;
	if (!parse_tolerance("atol", atol_arg, &atol) || !parse_tolerance("rtol", rtol_arg, &rtol))
		return 2;
	bool presso_model = ends_with(model_path, ".presso");
	if (policy_arg && presso_model) {
		fprintf(stderr, "presso run: %s is already quantized; --policy applies to an ONNX "
				"model\n", model_path);
		return 2;
	}
	if (!!policy_arg != !!config_path) {
		fprintf(stderr, "presso run: --policy and --config go together (the policy is "
				"calibrated on the config's data)\n");
		return 2;
	}
	if (output && !ends_with(output, ".npy")) {
		fprintf(stderr, "presso run: -o %s: the file name must end in .npy\n", output);
		return 2;
	}

	struct graph *g = NULL;
	struct qmodel *qm = NULL, *own_qm = NULL;
	struct config *cfg = NULL;
	struct layer *layers = NULL;
	int n_layers = 0;
	struct policy *pol = NULL;
	struct dataset *train = NULL;
	struct split calib = {0}, valid = {0};
	struct quant_pipeline pipe = {0};
	struct built_model built = {0};
	struct tensors *in = calloc(1, sizeof *in), *want = calloc(1, sizeof *want),
		       *got = calloc(1, sizeof *got);
	const struct graph *run_g = NULL;
	enum presso_status s = PRESSO_OK;
	if (!in || !want || !got) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}

	/* the model */
	if (presso_model) {
		if ((s = presso_file_load(model_path, q8_isa_best(), &g, &own_qm)) != PRESSO_OK)
			goto fail;
		run_g = g;
		qm = own_qm;
	} else {
		if ((s = graph_load_onnx(model_path, &g)) != PRESSO_OK)
			goto fail;
		run_g = g;
	}
	if (policy_arg) {
		if ((s = config_load(config_path, &cfg)) != PRESSO_OK ||
		    (s = graph_layers(g, &layers, &n_layers)) != PRESSO_OK ||
		    (s = policy_load(policy_arg, layers, n_layers, &pol)) != PRESSO_OK ||
		    (s = trial_load_dataset(cfg, false, g, &train)) != PRESSO_OK ||
		    (s = dataset_make_splits(train->n, cfg->data.seed, cfg->data.n_calib,
					     cfg->data.n_valid, &calib, &valid)) != PRESSO_OK)
			goto fail;
		if ((s = quant_pipeline_init(&pipe, cfg, g, train, &calib, false)) != PRESSO_OK ||
		    (s = quant_pipeline_build(&pipe, pol, &built)) != PRESSO_OK) {
			status_wrap(s, "%s", model_path);
			goto fail;
		}
		run_g = built.g;
		qm = built.qm;
	}

	/* the input, and the expected outputs of a test data set */
	struct stat st;
	bool folder = stat(input, &st) == 0 && S_ISDIR(st.st_mode);
	if (folder) {
		if ((s = load_pbs(input, "input", in)) != PRESSO_OK ||
		    (s = load_pbs(input, "output", want)) != PRESSO_OK)
			goto fail;
		if (in->n == 0) {
			s = status_fail(PRESSO_E_IO,
					"%s: no input_0.pb (an ONNX test data set holds input_0.pb, "
					"... and output_0.pb, ...)",
					input);
			goto fail;
		}
		if (want->n && want->n != run_g->n_outputs) {
			s = status_fail(PRESSO_E_FORMAT,
					"%s holds %d expected output%s, but the model has %d", input,
					want->n, want->n == 1 ? "" : "s", run_g->n_outputs);
			goto fail;
		}
	} else if ((s = load_npy(input, in)) != PRESSO_OK) {
		goto fail;
	}

	struct plan plan;
	if ((s = plan_runs(run_g, in, &plan)) != PRESSO_OK ||
	    (s = run_model(run_g, qm, in, &plan, got)) != PRESSO_OK) {
		status_wrap(s, "%s", model_path);
		goto fail;
	}

	bool pass = true;
	for (int o = 0; o < want->n; o++)
		pass = compare(&got->t[o], &want->t[o], atol, rtol) && pass;
	for (int o = 0; o < got->n && output; o++) {
		char *path = output_path(output, o);
		if (!path) {
			s = status_fail(PRESSO_E_NOMEM, "out of memory");
			goto fail;
		}
		s = dataset_save_npy_tensor(path, got->t[o].shape.dims, got->t[o].shape.n_dims,
					    got->t[o].data);
		if (s == PRESSO_OK) {
			char shape[128];
			format_shape(&got->t[o].shape, shape, sizeof shape);
			printf("written: %s (output '%s' %s)\n", path, got->t[o].name, shape);
		}
		free(path);
		if (s != PRESSO_OK)
			goto fail;
	}
	for (int o = 0; o < got->n && !output; o++)
		print_summary(&got->t[o]);
	rc = pass ? 0 : 1;
	goto done;
fail:
	rc = cli_fail("run", s);
done:
	if (in)
		tensors_free(in);
	if (want)
		tensors_free(want);
	if (got)
		tensors_free(got);
	free(in);
	free(want);
	free(got);
	built_model_free(&built);
	quant_pipeline_free(&pipe);
	split_free(&calib);
	split_free(&valid);
	dataset_free(train);
	policy_free(pol);
	free(layers);
	config_free(cfg);
	qmodel_free(own_qm);
	graph_free(g);
	return rc;
}
