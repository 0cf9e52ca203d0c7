/*
 * alloc.h -- private: the one allocation path of the core.
 *
 * Every allocation goes through mantis_malloc/mantis_free so that
 *   1. the allocator is mimalloc (or libc malloc in sanitizer builds,
 *      MANTIS_SYSTEM_ALLOC, so ASan/TSan see every block);
 *   2. live bytes are counted (mantis_alloc_get_stats), in per-thread
 *      stripes so no global cache line is hit by every insert;
 *   3. tests can inject allocation failure (mantis_alloc_fail_after).
 *
 * Callers pass the size back to mantis_free: the core always knows it (a
 * node knows its key length), and it keeps accounting exact without a
 * usable-size query.
 */
#ifndef MANTIS_ALLOC_H
#define MANTIS_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *mantis_malloc(size_t size);		   /* NULL on failure or size 0 */
void *mantis_calloc(size_t n, size_t size);	   /* zeroed; NULL on overflow   */
void *mantis_aligned_alloc(size_t align, size_t size); /* align: power of two */
void mantis_free(void *p, size_t size);		   /* NULL ignored               */

/*
 * Allocation with deferred accounting, for loops that allocate many blocks
 * on one thread (a bulk load's builder): each call adds to *t, a plain
 * local, instead of the shared stripe, whose atomic adds cost more than
 * the allocation when they follow streams of stores to fresh memory;
 * mantis_alloc_flush adds the total to the stripe once and zeroes *t.
 * Flush before the blocks can be freed by another path (mantis_free
 * counts every free at once), so the live total never runs negative for
 * long; the failure hook applies as to mantis_malloc.
 */
typedef struct mantis_alloc_tally {
	int64_t bytes;
	int64_t count;
} mantis_alloc_tally;
void *mantis_malloc_tally(size_t size, mantis_alloc_tally *t); /* NULL on failure or size 0 */
void mantis_alloc_flush(mantis_alloc_tally *t);

/*
 * Test hook: the next `n` allocations succeed, then every allocation fails
 * until it is called again with -1 (never fail).  Process-wide; meant for
 * single-threaded tests.
 */
void mantis_alloc_fail_after(int64_t n);

#endif /* MANTIS_ALLOC_H */
