/* fuzz_presso.c - libFuzzer harness for the .presso loader and the INT8 engine.
 *
 * Each input is a .presso file. Its 24-byte header carries a CRC-32 of the body
 * and the body's length (presso_file.c); a mutated input would almost never
 * pass those two checks, so the harness rewrites both from the bytes it got
 * before loading, and the mutations reach the parser behind them. The checks
 * themselves are covered by tests/test_presso_file.c. presso_file_load() reads
 * a path, so the input goes through an in-memory file (common.h). A model that
 * loads has its layers listed and its size counted (what `presso info` prints)
 * and, when small, one zero input run through the INT8 engine with the kernels
 * this CPU would use.
 *
 * Seeds: tests/fuzz/corpus/presso (`presso compress` of small models, see
 * tests/fuzz/make_corpus.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/presso_file.h"
#include "quant/qengine.h"
#include "tests/fuzz/common.h"

#define HEADER_BYTES 24 /* magic 8, version 4, crc32 4, body_bytes 8 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_file file;
static enum q8_isa isa;

static void put_le(uint8_t *p, uint64_t v, int n_bytes)
{
	for (int i = 0; i < n_bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void run_int8(const struct graph *g, const struct qmodel *m)
{
	struct qengine *e = NULL;
	if (qengine_create(m, 1, &e) != PRESSO_OK) {
		fuzz_refused("engine");
		return;
	}
	for (int i = 0; i < g->n_inputs; i++) {
		const struct value *v = &g->values[g->inputs[i]];
		memset(qengine_input(e, i), 0, sizeof(float) * (size_t)shape_numel(&v->shape));
	}
	if (qengine_run(e, 1) != PRESSO_OK)
		fuzz_refused("run");
	else
		for (int i = 0; i < g->n_outputs; i++)
			qengine_output(e, i, NULL);
	qengine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!file.path[0]) {
		fuzz_file_open(&file, "presso");
		isa = q8_isa_best();
	}
	uint8_t *buf = malloc(size ? size : 1);
	FUZZ_CHECK(buf);
	memcpy(buf, data, size);
	if (size >= HEADER_BYTES) {
		size_t body = size - HEADER_BYTES;
		uLong crc = crc32(crc32(0L, Z_NULL, 0), buf + HEADER_BYTES, (uInt)body);
		put_le(buf + 12, crc, 4);
		put_le(buf + 16, body, 8);
	}
	fuzz_file_set(&file, buf, size);
	free(buf);

	struct graph *g = NULL;
	struct qmodel *m = NULL;
	if (presso_file_load(file.path, isa, &g, &m) != PRESSO_OK) {
		FUZZ_CHECK(g == NULL && m == NULL);
		fuzz_refused("file");
		return 0;
	}
	FUZZ_CHECK(qmodel_graph(m) == g);
	struct layer *layers = NULL;
	int n_layers = 0;
	if (graph_layers(g, &layers, &n_layers) == PRESSO_OK) {
		FUZZ_CHECK(n_layers == qmodel_n_layers(m));
		for (int i = 0; i < n_layers; i++) {
			struct qlayer_view v;
			qmodel_layer_view(m, i, &v);
			FUZZ_CHECK(v.bits >= 1 && v.bits <= 8 && v.n_out >= 0 && v.k >= 0);
		}
		free(layers);
	}
	struct qmodel_size qs;
	qmodel_size(m, &qs);
	FUZZ_CHECK(qs.size_bytes >= 0 && qs.size_bytes <= (int64_t)size - HEADER_BYTES);
	if (fuzz_graph_small(g))
		run_int8(g, m);
	qmodel_free(m);
	graph_free(g);
	return 0;
}
