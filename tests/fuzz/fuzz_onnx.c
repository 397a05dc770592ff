/* fuzz_onnx.c - libFuzzer harness for the ONNX importer, the FP32 engine and
 * the INT8 quantizer and engine.
 *
 * Each input is the bytes of an ONNX file, loaded from memory with
 * graph_load_onnx_bytes(). External-data tensors resolve against "/dev/null",
 * which is no folder, so they always fail to open: the fuzzer never reads files
 * of the machine it runs on. A graph that loads has its layers listed, its
 * totals counted (what `presso info` prints) and, when it is small (common.h),
 * one input (a ramp) run through the FP32 engine, which calibrates on it. When
 * that run succeeds the graph is also quantized as `--policy int8` does it:
 * every layer at 8 bits, on the reference kernels (instrumented in this
 * build, unlike the per-ISA ones) or, for inputs of odd length, on this CPU's
 * best kernels; its size is counted and the INT8 engine runs the ramp.
 *
 * Seeds: tests/fuzz/corpus/onnx (tiny models from make_seeds.c and cases of
 * Debian's libonnx-testdata); dictionary: tests/fuzz/onnx.dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "model/graph.h"
#include "quant/calib.h"
#include "quant/policy.h"
#include "quant/qengine.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input: a ramp over [-1, 1), so that activations vary. */
static void fill_ramp(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(i % 17) / 8.5f - 1.0f;
}

static void observe(void *ctx, int v, const float *data, const struct shape *shape)
{
	calib_observe_all(ctx, v, data, shape);
}

/* One ramp input through the FP32 engine, every value it produces observed
 * into cal (when not NULL) as calib_run() gathers statistics; true when it
 * ran. */
static bool run_fp32(const struct graph *g, struct calib *cal)
{
	struct engine *e = NULL;
	if (engine_create(g, 1, &e) != PRESSO_OK) {
		fuzz_refused("engine");
		return false;
	}
	for (int i = 0; i < g->n_inputs; i++)
		fill_ramp(engine_input(e, i), shape_numel(&g->values[g->inputs[i]].shape));
	if (cal)
		engine_set_observer(e, observe, cal);
	bool ran = engine_run(e, 1) == PRESSO_OK;
	if (!ran) {
		fuzz_refused("run");
	} else {
		for (int i = 0; i < g->n_outputs; i++) {
			struct shape s;
			FUZZ_CHECK(engine_output(e, i, &s) != NULL || shape_numel(&s) == 0);
		}
		if (cal)
			cal->n_images = 1;
	}
	engine_free(e);
	return ran;
}

static void run_int8(const struct graph *g, const struct calib *cal, const struct layer *layers,
		     int n_layers, bool best)
{
	struct policy *p = NULL;
	struct qmodel *m = NULL;
	struct qengine *e = NULL;
	struct quant_config qc = {CALIB_PERCENTILE, 99.99, best ? q8_isa_best() : Q8_ISA_REF, NULL,
				  NULL, REQUANT_FLOAT};
	if (policy_load("int8", layers, n_layers, &p) != PRESSO_OK) {
		fuzz_refused("policy");
	} else if (qmodel_build(g, p, cal, &qc, &m) != PRESSO_OK) {
		FUZZ_CHECK(m == NULL);
		fuzz_refused("qmodel");
	} else {
		struct qmodel_size z;
		qmodel_size(m, &z);
		FUZZ_CHECK(z.size_bytes >= 0 && z.weight_bytes >= 0 && z.params >= 0);
		if (qengine_create(m, 1, &e) != PRESSO_OK) {
			fuzz_refused("qengine");
		} else {
			for (int i = 0; i < g->n_inputs; i++)
				fill_ramp(qengine_input(e, i),
					  shape_numel(&g->values[g->inputs[i]].shape));
			if (qengine_run(e, 1) != PRESSO_OK) {
				fuzz_refused("qengine run");
			} else {
				for (int i = 0; i < g->n_outputs; i++) {
					struct shape sh;
					FUZZ_CHECK(qengine_output(e, i, &sh) != NULL ||
						   shape_numel(&sh) == 0);
				}
			}
		}
	}
	qengine_free(e);
	qmodel_free(m);
	policy_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph *g = NULL;
	if (graph_load_onnx_bytes(data, size, "/dev/null", &g) != PRESSO_OK) {
		FUZZ_CHECK(g == NULL);
		fuzz_refused("model");
		return 0;
	}
	struct layer *layers = NULL;
	int n_layers = 0;
	bool listed = graph_layers(g, &layers, &n_layers) == PRESSO_OK;
	if (listed) {
		char buf[256];
		for (int i = 0; i < n_layers; i++) {
			const struct node *n = &g->nodes[layers[i].node];
			const struct value *out = &g->values[n->output];
			FUZZ_CHECK(layers[i].name != NULL && layers[i].params >= 0 && layers[i].macs >= 0);
			shape_format(&out->shape, out->batched, buf, sizeof buf);
		}
	}
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	if (fuzz_graph_small(g)) {
		struct calib *cal = NULL;
		if (calib_new(g, &cal) != PRESSO_OK) {
			fuzz_refused("calibration");
			cal = NULL;
		}
		if (run_fp32(g, cal) && listed && cal)
			run_int8(g, cal, layers, n_layers, size % 2 == 1);
		calib_free(cal);
	}
	free(layers);
	graph_free(g);
	return 0;
}
