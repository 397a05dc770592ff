/* fixtures.h - helpers shared by the Criterion tests: source paths, temp files,
 * running the presso binary and capturing what it prints. */
#ifndef PRESSO_TEST_FIXTURES_H
#define PRESSO_TEST_FIXTURES_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* PRESSO_SOURCE_DIR "/" rel, in a static rotating buffer (8 slots). */
const char *fx_src(const char *rel);

/* A fresh empty temporary folder (created under $TMPDIR or /tmp); free() it. */
char *fx_tmpdir(void);

/* Removes dir and everything under it (rm -rf); true on success. */
bool fx_rmtree(const char *dir);

/* dir "/" name in a static rotating buffer. */
const char *fx_join(const char *dir, const char *name);

/* Writes n bytes to path; false on failure. */
bool fx_write(const char *path, const void *bytes, size_t n);

/* Reads a whole file (NUL-terminated, *n_out without the NUL); NULL on failure. */
char *fx_read(const char *path, size_t *n_out);

/* Runs `presso ARGS` (args is a shell fragment) and returns its exit status;
 * *out and *err (each may be NULL) receive what it printed (free them). */
int fx_presso(const char *args, char **out, char **err);

/* Starts argv (argv[0] a program path, NULL-terminated) in a child process with
 * stdin from /dev/null and stdout and stderr written to out_path and err_path,
 * and the search's test hook PRESSO_TEST_INTERRUPT set to hook (NULL: unset).
 * Returns the child's pid; fx_wait() waits for it. */
int fx_spawn(const char *const *argv, const char *out_path, const char *err_path,
	     const char *hook);

/* Waits for a child of fx_spawn(): its exit status, 128 + signal when killed. */
int fx_wait(int pid);

/* True in a build with AddressSanitizer, where heavy end-to-end checks run on
 * smaller splits (the full checks run in the plain build of the same suite). */
static inline bool fx_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

/* The rows of a query on the SQLite database at path (opened read-only,
 * waiting up to 5 s on a writer's lock), one line each, columns '|'-separated
 * and NULL written "NULL" (malloc'd); NULL, with the reason on stderr, when
 * the file is missing or the query fails. */
char *fx_rows(const char *path, const char *sql);

/* True if the Fashion-MNIST files of Debian's dataset-fashion-mnist are there. */
bool fx_have_fmnist(void);

/* The bytes size accounting gives a layer's n biases, counted here by hand: a
 * width byte, then each bias in the fewest bits that hold all of them in two's
 * complement (0 bits when all are 0). */
int64_t fx_bias_bytes(const int32_t *b, int64_t n);

/* Debian's dataset-fashion-mnist: CMakeLists.txt passes its folder
 * (FMNIST_DIR) as PRESSO_FMNIST_DIR, so the path is written once. */
#define FX_FMNIST_DIR PRESSO_FMNIST_DIR

/* The files the tests' configs and loads name: the same four decompressed
 * into the build tree (CMakeLists.txt, when the dataset was there at
 * configure time), so that each of the tests' presso runs reads them without
 * inflating 60,000 images first; else the .gz files themselves. */
#ifdef PRESSO_FMNIST_TEST_DIR
#define FX_FMNIST_FILE(name) PRESSO_FMNIST_TEST_DIR "/" name
#else
#define FX_FMNIST_FILE(name) FX_FMNIST_DIR "/" name ".gz"
#endif
#define FX_FMNIST_TRAIN_IMAGES FX_FMNIST_FILE("train-images-idx3-ubyte")
#define FX_FMNIST_TRAIN_LABELS FX_FMNIST_FILE("train-labels-idx1-ubyte")
#define FX_FMNIST_TEST_IMAGES FX_FMNIST_FILE("t10k-images-idx3-ubyte")
#define FX_FMNIST_TEST_LABELS FX_FMNIST_FILE("t10k-labels-idx1-ubyte")
#define FX_ONNX_NODE_DIR "/usr/share/libonnx-testdata/data/node"

#endif
