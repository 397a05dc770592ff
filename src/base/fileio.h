/* fileio.h - atomic output files. */
#ifndef PRESSO_FILEIO_H
#define PRESSO_FILEIO_H

#include <stddef.h>

#include "base/status.h"

/* Writes n bytes to path through a temporary file in the same folder: write,
 * fsync, rename over path, fsync the folder. A reader (or a crash) sees the old
 * file or the whole new one, never a part. path "-" writes to standard output.
 * Errors name the path. */
enum presso_status file_write_atomic(const char *path, const void *bytes, size_t n);

#endif
