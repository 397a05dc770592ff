/* arena.h - static memory planning: places buffers with known lifetimes in one
 * arena so that buffers alive at the same time never overlap.
 *
 * Greedy by size (the TFLite Micro planner's idea): buffers are placed largest
 * first, each at the lowest ARENA_ALIGN-aligned offset that overlaps no already
 * placed buffer whose lifetime [first, last] intersects its own. */
#ifndef PRESSO_ARENA_H
#define PRESSO_ARENA_H

#include <stddef.h>

#include "base/status.h"

#define ARENA_ALIGN 64

struct arena_buf {
	size_t bytes;
	int first, last; /* inclusive step indices of the first write and last read */
	size_t offset;   /* out */
};

/* Assigns offsets to n buffers; *total_bytes gets the arena size (aligned). */
enum presso_status arena_plan(struct arena_buf *bufs, int n, size_t *total_bytes);

static inline size_t arena_align(size_t x)
{
	return (x + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

#endif
