/* arena.c - the greedy-by-size arena planner (see arena.h). */
#include "base/arena.h"

#include <stdlib.h>

enum presso_status arena_plan(struct arena_buf *bufs, int n, size_t *total_bytes)
{
	int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
	int *conf = malloc(sizeof(int) * (size_t)(n ? n : 1));
	if (!order || !conf) {
		free(order);
		free(conf);
		return status_fail(PRESSO_E_NOMEM, "out of memory planning an arena");
	}
	for (int i = 0; i < n; i++)
		order[i] = i;
	/* largest first; insertion sort keeps this reentrant (qsort has no context
	 * argument in C11) and n, the number of tensors, is small */
	{
		for (int i = 1; i < n; i++) {
			int x = order[i], j = i;
			while (j > 0 && (bufs[order[j - 1]].bytes < bufs[x].bytes ||
					 (bufs[order[j - 1]].bytes == bufs[x].bytes && order[j - 1] > x))) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = x;
		}
	}
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		struct arena_buf *b = &bufs[order[i]];
		int n_conf = 0;
		for (int j = 0; j < i; j++) {
			const struct arena_buf *o = &bufs[order[j]];
			if (o->first <= b->last && b->first <= o->last)
				conf[n_conf++] = order[j];
		}
		/* conflicting buffers by offset, then first fit in the gaps */
		for (int a = 1; a < n_conf; a++) {
			int x = conf[a], j = a;
			while (j > 0 && bufs[conf[j - 1]].offset > bufs[x].offset) {
				conf[j] = conf[j - 1];
				j--;
			}
			conf[j] = x;
		}
		size_t off = 0;
		for (int j = 0; j < n_conf; j++) {
			const struct arena_buf *o = &bufs[conf[j]];
			if (off + b->bytes <= o->offset)
				break;
			size_t end = arena_align(o->offset + o->bytes);
			if (end > off)
				off = end;
		}
		b->offset = off;
		if (off + b->bytes > total)
			total = off + b->bytes;
	}
	free(order);
	free(conf);
	*total_bytes = arena_align(total ? total : ARENA_ALIGN);
	return PRESSO_OK;
}
