/* fileio.h - whole input files read safely, and atomic output files.
 *
 * Everything presso reads whole (models, .presso files, configs, policies,
 * tensors) goes through file_read_all(), and every dataset file is opened with
 * file_open_regular(): a path that names a folder, a device (/dev/zero), a pipe
 * or a socket is refused with a message saying what it is, and a read never goes
 * past the size the file had when it was opened, so no input can make presso
 * read forever. */
#ifndef PRESSO_FILEIO_H
#define PRESSO_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

/* Opens path for reading if it is a regular file; *out is the stream (fclose()
 * it) and *size_bytes (may be NULL) its size. Never blocks on a pipe. `what`
 * names what the file should be, for messages: "a model file" gives
 * "dir: is a folder, not a model file". Errors (PRESSO_E_IO) name the path. */
enum presso_status file_open_regular(const char *path, const char *what, FILE **out,
				     size_t *size_bytes);

/* Reads the whole regular file at path into a new buffer *out (free() it) of
 * *n_out bytes, followed by a NUL that *n_out does not count (so text can be
 * parsed in place). Refuses what is not a regular file (as file_open_regular)
 * and, when max_bytes > 0, a file larger than max_bytes (PRESSO_E_IO, "larger
 * than N bytes; not WHAT"). Reads at most the size the file had when opened. */
enum presso_status file_read_all(const char *path, const char *what, size_t max_bytes,
				 char **out, size_t *n_out);

/* Writes n bytes to path through a temporary file in the same folder: write,
 * fsync, rename over path, fsync the folder. A reader (or a crash) sees the old
 * file or the whole new one, never a part. path "-" writes to standard output.
 * Errors name the path. */
enum presso_status file_write_atomic(const char *path, const void *bytes, size_t n);

#endif
