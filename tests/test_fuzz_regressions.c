/* test_fuzz_regressions.c - every input the fuzzers (tests/fuzz/) once broke
 * presso with, kept in tests/fuzz/regressions/{onnx,presso}/ and run again
 * through the loader and the engine the harness drives: each is refused with a
 * message or loads and runs. In the sanitizer build an overflow or a bad
 * access aborts the test, so a defect that returns is caught in CI, not only
 * by the next fuzzing run.
 *
 *   onnx/reshape-shape-overflow.onnx          Reshape whose target shape's
 *       product wrapped to 784 (signed overflow in shape inference, then a
 *       crash in the FP32 engine): refused at load, naming the node.
 *   onnx/add-empty-required-input.onnx       an Add whose second input's
 *       name is empty (the mark of an omitted optional input): the engine read
 *       a shape past its inputs. Refused at load: the op requires it.
 *   onnx/conv-empty-output-huge-kernel.onnx  a Conv with no output channels
 *       (weight [0, 1, 1, 32768]) on a [1, 1, 1, 65535] input: the engine
 *       sized the im2col of one output row, 4 GiB, for an output that has no
 *       element. An empty Conv weight is now refused at load
 *       (import_errors/empty_weights_and_products_are_refused).
 *   onnx/resize-empty-output-huge-dims.onnx  a Resize to sizes [1, 0, 1, 2^30]:
 *       its index maps, 8 GiB, were sized for an output with no element. A
 *       node whose output is empty now runs nothing and needs no scratch.
 *   onnx/constant-of-shape-copied-by-mul.onnx  a ConstantOfShape of 117
 *       million int64 (939 MB, inside the 1 GiB that folding may make) that
 *       a Mul folded into a copy of the same size: folds were counted only
 *       where they grew, so the second copy passed the fuzzer's 2 GB limit.
 *       Every folded constant now counts whole (fold_budget): refused at the
 *       Mul, naming it.
 *   onnx/concat-empty-input-name.onnx  a Concat of integer constants with an
 *       empty input name, taken for an omitted optional input: the fold read
 *       the value before the first. Concat, Sum, Max and Min have no optional
 *       input, so an empty name there is refused at load.
 *   onnx/lifted-conv-integer-weight.onnx  a 1-D Conv (lifted to 2-D at
 *       load) whose weight is an int64 constant: the lift copied its float
 *       data, which an integer constant does not have (a crash in a release
 *       build). Refused at load, naming the node and the input.
 *   presso/q31-add-output-scale-overflow.presso  an Add whose output scale is
 *       tiny next to its inputs': the Q31 table's requantized sum plus the
 *       zero point overflowed int32 while the model was built.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/presso_file.h"
#include "model/engine.h"
#include "model/graph.h"
#include "quant/qengine.h"
#include "tests/fixtures.h"

/* The regression files of one kind; *n set; free each and the list. */
static char **files_of(const char *kind, const char *ext, int *n)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", fx_src("tests/fuzz/regressions"));
	strncat(dir, "/", sizeof dir - strlen(dir) - 1);
	strncat(dir, kind, sizeof dir - strlen(dir) - 1);
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	char **list = NULL;
	*n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name), el = strlen(ext);
		if (len <= el || strcmp(e->d_name + len - el, ext) != 0)
			continue;
		list = realloc(list, sizeof *list * (size_t)(*n + 1));
		list[*n] = malloc(strlen(dir) + len + 2);
		sprintf(list[*n], "%s/%s", dir, e->d_name);
		(*n)++;
	}
	closedir(d);
	cr_assert_gt(*n, 0, "no %s regression files in %s", ext, dir);
	return list;
}

Test(fuzz_regressions, onnx_inputs_are_refused_or_run)
{
	int n;
	char **files = files_of("onnx", ".onnx", &n);
	for (int i = 0; i < n; i++) {
		struct graph *g = NULL;
		enum presso_status s = graph_load_onnx(files[i], &g);
		if (s != PRESSO_OK) {
			cr_assert_null(g);
			cr_assert(strlen(status_msg()) > 0, "%s: refused without a message", files[i]);
			cr_assert_eq(status_exit_code(s), 2, "%s: %s", files[i], status_msg());
		} else {
			struct engine *e = NULL;
			cr_assert_eq(engine_create(g, 1, &e), PRESSO_OK, "%s: %s", files[i],
				     status_msg());
			/* a model of a few KB with small values asks for no large scratch */
			cr_assert_lt(engine_scratch_bytes(e), (size_t)64 << 20, "%s: %zu bytes",
				     files[i], engine_scratch_bytes(e));
			for (int k = 0; k < g->n_inputs; k++)
				memset(engine_input(e, k), 0,
				       sizeof(float) *
					       (size_t)shape_numel(&g->values[g->inputs[k]].shape));
			cr_assert_eq(engine_run(e, 1), PRESSO_OK, "%s: %s", files[i], status_msg());
			engine_free(e);
			graph_free(g);
		}
		free(files[i]);
	}
	free(files);
}

Test(fuzz_regressions, presso_inputs_are_refused_or_run)
{
	int n;
	char **files = files_of("presso", ".presso", &n);
	for (int i = 0; i < n; i++) {
		struct graph *g = NULL;
		struct qmodel *m = NULL;
		enum presso_status s = presso_file_load(files[i], q8_isa_best(), &g, &m);
		if (s != PRESSO_OK) {
			cr_assert(g == NULL && m == NULL);
			cr_assert_eq(status_exit_code(s), 2, "%s: %s", files[i], status_msg());
		} else {
			struct qengine *e = NULL;
			cr_assert_eq(qengine_create(m, 1, &e), PRESSO_OK, "%s", status_msg());
			for (int k = 0; k < g->n_inputs; k++)
				memset(qengine_input(e, k), 0,
				       sizeof(float) *
					       (size_t)shape_numel(&g->values[g->inputs[k]].shape));
			cr_assert_eq(qengine_run(e, 1), PRESSO_OK, "%s: %s", files[i], status_msg());
			qengine_free(e);
			qmodel_free(m);
			graph_free(g);
		}
		free(files[i]);
	}
	free(files);
}
