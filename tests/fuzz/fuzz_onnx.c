/* fuzz_onnx.c - libFuzzer harness for the ONNX importer and the FP32 engine.
 *
 * Each input is the bytes of an ONNX file, loaded from memory with
 * graph_load_onnx_bytes(). External-data tensors resolve against "/dev/null",
 * which is no folder, so they always fail to open: the fuzzer never reads files
 * of the machine it runs on. A graph that loads has its layers listed, its
 * totals counted (what `presso info` prints) and, when it is small (common.h), one zero input run through
 * the FP32 engine.
 *
 * Seeds: tests/fuzz/corpus/onnx (tiny models from make_seeds.c and cases of
 * Debian's libonnx-testdata); dictionary: tests/fuzz/onnx.dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "model/graph.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_fp32(const struct graph *g)
{
	struct engine *e = NULL;
	if (engine_create(g, 1, &e) != PRESSO_OK) {
		fuzz_refused("engine");
		return;
	}
	for (int i = 0; i < g->n_inputs; i++) {
		const struct value *v = &g->values[g->inputs[i]];
		memset(engine_input(e, i), 0, sizeof(float) * (size_t)shape_numel(&v->shape));
	}
	if (engine_run(e, 1) != PRESSO_OK) {
		fuzz_refused("run");
	} else {
		for (int i = 0; i < g->n_outputs; i++) {
			struct shape s;
			FUZZ_CHECK(engine_output(e, i, &s) != NULL || shape_numel(&s) == 0);
		}
	}
	engine_free(e);
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
	if (graph_layers(g, &layers, &n_layers) == PRESSO_OK) {
		char buf[256];
		for (int i = 0; i < n_layers; i++) {
			const struct node *n = &g->nodes[layers[i].node];
			const struct value *out = &g->values[n->output];
			FUZZ_CHECK(layers[i].name != NULL && layers[i].params >= 0 && layers[i].macs >= 0);
			shape_format(&out->shape, out->batched, buf, sizeof buf);
		}
		free(layers);
	}
	int64_t params, macs;
	graph_totals(g, &params, &macs);
	if (fuzz_graph_small(g))
		run_fp32(g);
	graph_free(g);
	return 0;
}
