/* fileio.c - reading whole input files that are really files, and writing output
 * files without ever leaving half of one (see fileio.h). */
#define _POSIX_C_SOURCE 200809L
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a file that is not a regular one is, for messages. */
static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a folder";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISFIFO(mode))
		return "a pipe";
	if (S_ISSOCK(mode))
		return "a socket";
	return "something other than a regular file";
}

enum presso_status file_open_regular(const char *path, const char *what, FILE **out,
				     size_t *size_bytes)
{
	*out = NULL;
	/* O_NONBLOCK: opening a pipe with no writer returns at once instead of waiting;
	 * it changes nothing for the regular files read below */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return status_fail(status_from_errno(errno), "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return status_fail(status_from_errno(err), "%s: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return status_fail(PRESSO_E_IO, "%s: is %s, not %s", path, file_kind(st.st_mode),
				   what);
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		int err = errno;
		close(fd);
		return status_fail(status_from_errno(err), "%s: %s", path, strerror(err));
	}
	*out = f;
	if (size_bytes)
		*size_bytes = (size_t)st.st_size;
	return PRESSO_OK;
}

enum presso_status file_read_all(const char *path, const char *what, size_t max_bytes,
				 char **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	FILE *f;
	size_t n;
	enum presso_status s = file_open_regular(path, what, &f, &n);
	if (s != PRESSO_OK)
		return s;
	if (max_bytes > 0 && n > max_bytes) {
		fclose(f);
		return status_fail(PRESSO_E_IO, "%s: larger than %zu bytes; not %s", path,
				   max_bytes, what);
	}
	char *buf = n < SIZE_MAX ? malloc(n + 1) : NULL;
	if (!buf) {
		fclose(f);
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
	}
	/* at most the size fstat gave: a file that grows meanwhile is read as it was */
	size_t got = fread(buf, 1, n, f);
	if (got < n && ferror(f)) {
		int err = errno;
		free(buf);
		fclose(f);
		return status_fail(status_from_errno(err), "%s: %s", path, strerror(err));
	}
	fclose(f);
	buf[got] = '\0';
	*out = buf;
	*n_out = got;
	return PRESSO_OK;
}

enum presso_status file_write_atomic(const char *path, const void *bytes, size_t n)
{
	const char *text = bytes;
	if (strcmp(path, "-") == 0) {
		if (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0)
			return status_fail(status_from_errno(errno), "standard output: %s",
					   strerror(errno));
		return PRESSO_OK;
	}
	size_t tmp_bytes = strlen(path) + 16;
	char *tmp = malloc(tmp_bytes);
	if (!tmp)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	snprintf(tmp, tmp_bytes, "%s.tmp-XXXXXX", path);
	enum presso_status s = PRESSO_OK;
	int fd = mkstemp(tmp);
	if (fd < 0) {
		s = status_fail(status_from_errno(errno), "%s: cannot create a file there: %s",
				path, strerror(errno));
		free(tmp);
		return s;
	}
	/* mkstemp makes the file 0600; give it the usual 0666 & ~umask */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, text + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			s = status_fail(status_from_errno(errno), "%s: %s", path, strerror(errno));
			break;
		}
		done += (size_t)w;
	}
	if (s == PRESSO_OK && fsync(fd) != 0)
		s = status_fail(status_from_errno(errno), "%s: %s", path, strerror(errno));
	if (close(fd) != 0 && s == PRESSO_OK)
		s = status_fail(status_from_errno(errno), "%s: %s", path, strerror(errno));
	if (s == PRESSO_OK && rename(tmp, path) != 0)
		s = status_fail(status_from_errno(errno), "%s: %s", path, strerror(errno));
	if (s != PRESSO_OK) {
		unlink(tmp);
		free(tmp);
		return s;
	}
	/* make the rename itself durable */
	char *slash = strrchr(tmp, '/');
	const char *dir = ".";
	if (slash == tmp) {
		dir = "/";
	} else if (slash) {
		*slash = '\0';
		dir = tmp;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(tmp);
	return PRESSO_OK;
}
