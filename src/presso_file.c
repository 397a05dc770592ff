/* presso_file.c - the .presso format (see presso_file.h). */
#include "presso_file.h"

enum presso_status presso_file_write(const struct qmodel *m, const char *path,
				     int64_t *file_bytes)
{
	(void)m;
	(void)file_bytes;
	return status_fail(PRESSO_E_UNSUPPORTED, "%s: writing .presso files is not built yet",
			   path);
}

enum presso_status presso_file_load(const char *path, enum q8_isa isa, struct graph **g,
				    struct qmodel **m)
{
	(void)isa;
	*g = NULL;
	*m = NULL;
	return status_fail(PRESSO_E_UNSUPPORTED, "%s: reading .presso files is not built yet",
			   path);
}
