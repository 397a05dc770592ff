/* common.h - what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * A harness aborts only on a real defect: a sanitizer report, a leak, or a
 * broken invariant it checks itself (FUZZ_CHECK). Inputs that a loader refuses
 * are the normal case and end the iteration quietly.
 *
 * Loaders that only take a path read the input through a fuzz_file: an
 * anonymous in-memory file (memfd) named by /proc/self/fd/N, rewritten for
 * every input, so nothing is left on disk, not even after a crash. Where memfd
 * is missing it falls back to one temporary file, removed at exit.
 *
 * The engines run only on graphs whose activations and arithmetic stay under
 * FUZZ_MAX_ELEMS and FUZZ_MAX_WORK, so that one input costs milliseconds and a
 * big but valid model is not reported as a timeout.
 */
#ifndef PRESSO_FUZZ_COMMON_H
#define PRESSO_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/graph.h"

/* Floats in all values of a graph at batch 1 (4 MiB), and multiply-adds or
 * window reads of one run at batch 1: LeNet (0.42 M MACs) runs, anything over
 * 20x its work is skipped. */
#define FUZZ_MAX_ELEMS (INT64_C(1) << 20)
#define FUZZ_MAX_WORK (INT64_C(1) << 23)

/* Aborts with file:line when a harness's own invariant fails: libFuzzer then
 * saves the input and reports it. */
#define FUZZ_CHECK(cond)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                                      \
			abort();                                                       \
		}                                                                      \
	} while (0)

struct fuzz_file {
	int fd;
	char path[64];
	bool on_disk; /* the fallback temporary file, unlinked at exit */
};

/* Creates the file (once per process; tag names it in /proc). Aborts if no file
 * can be made at all: the harness could test nothing. */
void fuzz_file_open(struct fuzz_file *f, const char *tag);

/* Replaces the file's content with n bytes. */
void fuzz_file_set(struct fuzz_file *f, const uint8_t *bytes, size_t n);

/* A copy of the input with a NUL after it (the text parsers take C strings), or
 * NULL when the input holds a NUL byte (text ends there, nothing new to test).
 * free() it. */
char *fuzz_text(const uint8_t *data, size_t size);

/* True when the graph at batch 1 is small enough to run (see FUZZ_MAX_*):
 * every value's element count, without overflow, and an estimate of the work
 * of every node. */
bool fuzz_graph_small(const struct graph *g);

/* With FUZZ_VERBOSE set in the environment, prints why an input was refused
 * (status_msg()): to check that seeds get past the parsers,
 * `FUZZ_VERBOSE=1 build-fuzz/fuzz_NAME SEED_FILE...`. */
void fuzz_refused(const char *what);

/* The absolute path of a file of the source tree (for models loaded at init). */
const char *fuzz_src(const char *rel);

#endif
