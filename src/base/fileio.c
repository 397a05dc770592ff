/* fileio.c - writing output files without ever leaving half of one (see fileio.h). */
#define _POSIX_C_SOURCE 200809L
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
