/* presso_file.h - presso's own deployable format (.presso): a quantized model's
 * graph structure, packed sub-byte weights (sparse layers in their coding),
 * per-channel scales, int32 biases and activation quantization parameters.
 *
 * presso_file_load() rebuilds the graph and a quantized model that computes
 * exactly what the written one did; `presso eval --model out.presso` runs it.
 * The file's size is the model's size_bytes plus a small structural header
 * (documented in the implementation).
 */
#ifndef PRESSO_FILE_H
#define PRESSO_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/graph.h"
#include "quant/qengine.h"

/* Writes m (and the graph it was built from) to path, atomically (a temporary
 * file renamed into place). *file_bytes (may be NULL) gets the file's size. */
enum presso_status presso_file_write(const struct qmodel *m, const char *path,
				     int64_t *file_bytes);

/* The same file's bytes in memory: *bytes is malloc'd (the caller frees it),
 * *n_bytes its length. */
enum presso_status presso_file_encode(const struct qmodel *m, uint8_t **bytes, size_t *n_bytes);

/* Loads a .presso file: *g is the graph (weights dequantized to float) and *m the
 * quantized model over it, packed for the kernels of isa. The caller frees *m
 * with qmodel_free() and then *g with graph_free(). */
enum presso_status presso_file_load(const char *path, enum q8_isa isa, struct graph **g,
				    struct qmodel **m);

/* True when path names a .presso file: its name ends in ".presso", or it starts
 * with the .presso magic, or with the first bytes of it (a file cut inside its
 * magic); false if it is not a readable regular file. Decides which loader
 * reports on a file, so an empty or truncated .presso file is called that. */
bool presso_file_sniff(const char *path);

#endif
