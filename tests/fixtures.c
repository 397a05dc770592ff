/* fixtures.c - see fixtures.h. */
#define _POSIX_C_SOURCE 200809L
#include "fixtures.h"

#include <fcntl.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FX_SLOTS 8
#define FX_PATH_BYTES 4096

static char *slot(void)
{
	static char bufs[FX_SLOTS][FX_PATH_BYTES];
	static int next;
	char *b = bufs[next];
	next = (next + 1) % FX_SLOTS;
	return b;
}

const char *fx_src(const char *rel)
{
	char *b = slot();
	snprintf(b, FX_PATH_BYTES, "%s/%s", PRESSO_SOURCE_DIR, rel);
	return b;
}

const char *fx_join(const char *dir, const char *name)
{
	char *b = slot();
	snprintf(b, FX_PATH_BYTES, "%s/%s", dir, name);
	return b;
}

char *fx_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[FX_PATH_BYTES];
	snprintf(tmpl, sizeof tmpl, "%s/presso-test-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

bool fx_rmtree(const char *dir)
{
	char cmd[FX_PATH_BYTES + 32];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0;
}

bool fx_write(const char *path, const void *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return false;
	bool ok = fwrite(bytes, 1, n, f) == n;
	return fclose(f) == 0 && ok;
}

char *fx_read(const char *path, size_t *n_out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	if (n_out)
		*n_out = n;
	return buf;
}

int fx_presso(const char *args, char **out, char **err)
{
	char *dir = fx_tmpdir();
	if (!dir)
		return -1;
	char out_path[FX_PATH_BYTES], err_path[FX_PATH_BYTES];
	snprintf(out_path, sizeof out_path, "%s/stdout", dir);
	snprintf(err_path, sizeof err_path, "%s/stderr", dir);
	size_t cmd_bytes = strlen(args) + 3 * FX_PATH_BYTES;
	char *cmd = malloc(cmd_bytes);
	snprintf(cmd, cmd_bytes, "'%s' %s >'%s' 2>'%s' </dev/null", PRESSO_BINARY, args,
		 out_path, err_path);
	int rc = system(cmd);
	free(cmd);
	int status = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
	if (out)
		*out = fx_read(out_path, NULL);
	if (err)
		*err = fx_read(err_path, NULL);
	unlink(out_path);
	unlink(err_path);
	rmdir(dir);
	free(dir);
	return status;
}

bool fx_have_fmnist(void)
{
	struct stat st;
	return stat(FX_FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &st) == 0;
}

int64_t fx_bias_bytes(const int32_t *b, int64_t n)
{
	int w = 0;
	for (int64_t i = 0; i < n; i++) {
		int need = 1;
		while (b[i] < -(1ll << (need - 1)) || b[i] > (1ll << (need - 1)) - 1)
			need++;
		if (b[i] && need > w)
			w = need;
	}
	return 1 + (n * w + 7) / 8;
}

int fx_spawn(const char *const *argv, const char *out_path, const char *err_path,
	     const char *hook)
{
	pid_t pid = fork();
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int z = open("/dev/null", O_RDONLY);
		if (o < 0 || e < 0 || z < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		dup2(z, 0);
		if (hook)
			setenv("PRESSO_TEST_INTERRUPT", hook, 1);
		else
			unsetenv("PRESSO_TEST_INTERRUPT");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return (int)pid;
}

int fx_wait(int pid)
{
	int status;
	if (pid <= 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

char *fx_rows(const char *path, const char *sql)
{
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "fx_rows: %s: no such file\n", path);
		return NULL;
	}
	sqlite3 *h = NULL;
	sqlite3_stmt *q = NULL;
	size_t cap = 1 << 14, n = 0;
	char *out = malloc(cap);
	int rc = out ? sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) : SQLITE_NOMEM;
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(h, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(h, sql, -1, &q, NULL);
	if (out)
		out[0] = '\0';
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		for (int c = 0; c < sqlite3_column_count(q) && rc == SQLITE_OK; c++) {
			const char *t = (const char *)sqlite3_column_text(q, c);
			size_t need = strlen(t ? t : "NULL") + 2;
			if (n + need + 1 > cap) {
				char *more = realloc(out, cap = 2 * (n + need + 1));
				if (!more) {
					rc = SQLITE_NOMEM;
					break;
				}
				out = more;
			}
			n += (size_t)sprintf(out + n, "%s%s", c ? "|" : "", t ? t : "NULL");
		}
		if (rc == SQLITE_OK) {
			out[n++] = '\n';
			out[n] = '\0';
		}
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "fx_rows: %s: %s: %s\n", path, sql,
			h ? sqlite3_errmsg(h) : "out of memory");
		free(out);
		out = NULL;
	}
	sqlite3_finalize(q);
	sqlite3_close(h);
	return out;
}
