/* common.c - helpers shared by the harnesses (see common.h). */
#define _GNU_SOURCE
#include "tests/fuzz/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef PRESSO_SOURCE_DIR
#define PRESSO_SOURCE_DIR "."
#endif

static char fallback_path[256];

static void remove_fallback(void)
{
	if (fallback_path[0])
		unlink(fallback_path);
}

void fuzz_file_open(struct fuzz_file *f, const char *tag)
{
	memset(f, 0, sizeof *f);
	f->fd = memfd_create(tag, MFD_CLOEXEC);
	if (f->fd >= 0) {
		snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
		if (access(f->path, R_OK) == 0)
			return;
		close(f->fd); /* no /proc: a file on disk instead */
	}
	FUZZ_CHECK(!fallback_path[0]); /* one fallback file per process */
	const char *tmp = getenv("TMPDIR");
	snprintf(fallback_path, sizeof fallback_path, "%s/presso-fuzz-%s-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", tag);
	f->fd = mkstemp(fallback_path);
	if (f->fd < 0) {
		fprintf(stderr, "fuzz: cannot create a temporary file %s: %s\n", fallback_path,
			strerror(errno));
		abort();
	}
	atexit(remove_fallback);
	snprintf(f->path, sizeof f->path, "%s", fallback_path);
	f->on_disk = true;
}

void fuzz_file_set(struct fuzz_file *f, const uint8_t *bytes, size_t n)
{
	FUZZ_CHECK(ftruncate(f->fd, 0) == 0);
	size_t done = 0;
	while (done < n) {
		ssize_t k = pwrite(f->fd, bytes + done, n - done, (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		FUZZ_CHECK(k > 0);
		done += (size_t)k;
	}
}

char *fuzz_text(const uint8_t *data, size_t size)
{
	if (memchr(data, '\0', size))
		return NULL;
	char *text = malloc(size + 1);
	FUZZ_CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

/* a * b, false past FUZZ limits or on overflow */
static bool mul_small(int64_t a, int64_t b, int64_t limit, int64_t *out)
{
	int64_t p;
	if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &p) || p > limit)
		return false;
	*out = p;
	return true;
}

static bool numel_small(const struct shape *s, int64_t *out)
{
	int64_t n = 1;
	if (s->n_dims < 0 || s->n_dims > GRAPH_MAX_DIMS)
		return false;
	for (int i = 0; i < s->n_dims; i++)
		if (!mul_small(n, s->dims[i], FUZZ_MAX_ELEMS, &n))
			return false;
	*out = n;
	return true;
}

/* a * b * c, saturated at FUZZ_MAX_WORK + 1 (dims of an empty tensor may be huge) */
static int64_t prod3(int64_t a, int64_t b, int64_t c)
{
	int64_t p;
	if (!mul_small(a, b, FUZZ_MAX_WORK, &p) || !mul_small(p, c, FUZZ_MAX_WORK, &p))
		return FUZZ_MAX_WORK + 1;
	return p;
}

/* Work per output element of node n: the reduction each output needs. */
static int64_t per_output(const struct graph *g, const struct node *n)
{
	const struct shape *in0 = n->n_inputs > 0 && n->inputs[0] >= 0
					  ? &g->values[n->inputs[0]].shape : NULL;
	const struct shape *in1 = n->n_inputs > 1 && n->inputs[1] >= 0
					  ? &g->values[n->inputs[1]].shape : NULL;
	int64_t k = 1;
	switch (n->op) {
	case OP_CONV: /* weight [c_out, c_in/group, kh, kw] */
		if (in1 && in1->n_dims == 4)
			k = prod3(in1->dims[1], in1->dims[2], in1->dims[3]);
		break;
	case OP_MAXPOOL:
	case OP_AVGPOOL:
		k = prod3(n->a.kernel[0], n->a.kernel[1], 1);
		break;
	case OP_GLOBALAVGPOOL: /* [n, c, h, w] -> [n, c, 1, 1] */
		if (in0 && in0->n_dims == 4)
			k = prod3(in0->dims[2], in0->dims[3], 1);
		break;
	case OP_GEMM:
		if (in0 && in0->n_dims == 2)
			k = n->a.trans_a ? in0->dims[0] : in0->dims[1];
		break;
	case OP_MATMUL:
		if (in0 && in0->n_dims >= 1)
			k = in0->dims[in0->n_dims - 1];
		break;
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX:
		k = 4; /* max, exp, sum, divide */
		break;
	default:
		break;
	}
	return k;
}

bool fuzz_graph_small(const struct graph *g)
{
	int64_t elems = 0, work = 0, n;
	for (int i = 0; i < g->n_values; i++) {
		if (!numel_small(&g->values[i].shape, &n))
			return false;
		elems += n;
		if (elems > FUZZ_MAX_ELEMS)
			return false;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const struct node *nd = &g->nodes[i];
		if (nd->output < 0 || nd->output >= g->n_values)
			return false;
		int64_t k = per_output(g, nd), w;
		numel_small(&g->values[nd->output].shape, &n);
		if (!mul_small(n, k < 1 ? 1 : k, FUZZ_MAX_WORK, &w))
			return false;
		work += w + n;
		if (work > FUZZ_MAX_WORK)
			return false;
	}
	return true;
}

void fuzz_refused(const char *what)
{
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "fuzz: %s refused: %s\n", what, status_msg());
}

const char *fuzz_src(const char *rel)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", PRESSO_SOURCE_DIR, rel);
	return buf;
}
