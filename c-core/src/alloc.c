/*
 * alloc.c -- mimalloc-backed allocation with striped live-byte accounting
 * and failure injection.  See alloc.h for why each piece exists.
 */
#include "alloc.h"

#include <mantis.h>

#include <ck_pr.h>
#include <stdlib.h>
#include <string.h>

#ifndef MANTIS_SYSTEM_ALLOC
#include <mimalloc.h>
#define RAW_MALLOC(n) mi_malloc(n)
#define RAW_ALIGNED(a, n) mi_malloc_aligned((n), (a))
#define RAW_FREE(p) mi_free(p)
/*
 * A hint for the next allocation of the same size class.  mimalloc pops
 * a block off its page's free list by reading the block's first word (the
 * next free block); a block freed long ago (a reclaimed record of some
 * random key) is cold, so a stream of allocations stalls on one miss each,
 * in a chain (the load names the next block).  The block just handed out
 * still holds that word: prefetching it starts the next pop's miss now.
 * Only a hint: whatever the word holds (an encoded list; zeros or a fill
 * pattern in a secure or debug build; nothing like a pointer), a prefetch
 * never faults and changes no result.  The word is read only from a
 * block of at least its size.
 */
static inline void
next_hint(const void *p, size_t size)
{
	if (size >= sizeof(uintptr_t)) {
		uintptr_t next;
		memcpy(&next, p, sizeof next);
		__builtin_prefetch((const void *)next);
	}
}
#else
static inline void
next_hint(const void *p, size_t size)
{
	(void)p;
	(void)size;
}
#define RAW_MALLOC(n) malloc(n)
#define RAW_ALIGNED(a, n) aligned_alloc((a), (((n) + (a)-1) / (a)) * (a))
#define RAW_FREE(p) free(p)
#endif

/*
 * Counters are striped by a per-thread slot chosen once per thread.  Each
 * stripe sits on its own cache line.  Updates are atomic adds (a thread can
 * share a stripe with another after hashing), reads sum all stripes.
 */
#define STRIPES 64
struct stripe {
	int64_t bytes;
	int64_t count;
	char pad[64 - 2 * sizeof(int64_t)];
};
static struct stripe stripes[STRIPES] __attribute__((aligned(64)));
static unsigned next_stripe;
static _Thread_local int my_stripe = -1;

/* -1 = never fail; otherwise allocations left before failing. */
static int64_t fail_budget = -1;

static struct stripe *
stripe_for_thread(void)
{
	if (my_stripe < 0) {
		/* Round-robin assignment; the add orders nothing, it only spreads. */
		my_stripe = (int)(ck_pr_faa_uint(&next_stripe, 1) % STRIPES);
	}
	return &stripes[my_stripe];
}

static int
should_fail(void)
{
	/* Atomic load, no ordering: a test knob, not a synchronisation flag. */
	int64_t b = ck_pr_load_64((uint64_t *)&fail_budget);
	if (b < 0)
		return 0;
	if (b == 0)
		return 1;
	/* Tests that inject failures are single-threaded; a plain decrement
	 * through ck_pr keeps TSan quiet if a stray thread allocates. */
	ck_pr_dec_64((uint64_t *)&fail_budget);
	return 0;
}

static void
account(int64_t bytes, int64_t count)
{
	struct stripe *s = stripe_for_thread();
	/* Relaxed adds: counters are statistics, they order no other memory. */
	ck_pr_add_64((uint64_t *)&s->bytes, (uint64_t)bytes);
	ck_pr_add_64((uint64_t *)&s->count, (uint64_t)count);
}

void *
mantis_malloc(size_t size)
{
	if (size == 0 || should_fail())
		return NULL;
	void *p = RAW_MALLOC(size);
	if (p != NULL) {
		next_hint(p, size);
		account((int64_t)size, 1);
	}
	return p;
}

void *
mantis_malloc_tally(size_t size, mantis_alloc_tally *t)
{
	if (size == 0 || should_fail())
		return NULL;
	void *p = RAW_MALLOC(size);
	if (p != NULL) {
		next_hint(p, size);
		t->bytes += (int64_t)size;
		t->count++;
	}
	return p;
}

void
mantis_alloc_flush(mantis_alloc_tally *t)
{
	if (t->count != 0 || t->bytes != 0)
		account(t->bytes, t->count);
	t->bytes = 0;
	t->count = 0;
}

void *
mantis_calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	void *p = mantis_malloc(n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

void *
mantis_aligned_alloc(size_t align, size_t size)
{
	if (size == 0 || align == 0 || (align & (align - 1)) != 0 || should_fail())
		return NULL;
	void *p = RAW_ALIGNED(align, size);
	if (p != NULL)
		account((int64_t)size, 1);
	return p;
}

void
mantis_free(void *p, size_t size)
{
	if (p == NULL)
		return;
	account(-(int64_t)size, -1);
	RAW_FREE(p);
}

void
mantis_alloc_fail_after(int64_t n)
{
	/* Atomic store, no ordering needed: the test sets it before it calls. */
	ck_pr_store_64((uint64_t *)&fail_budget, (uint64_t)(n < 0 ? -1 : n));
}

void
mantis_alloc_get_stats(mantis_alloc_stats *out)
{
	if (out == NULL)
		return;
	int64_t bytes = 0, count = 0;
	/* Atomic loads of each stripe: a snapshot, ordered with nothing. */
	for (int i = 0; i < STRIPES; i++) {
		bytes += (int64_t)ck_pr_load_64((uint64_t *)&stripes[i].bytes);
		count += (int64_t)ck_pr_load_64((uint64_t *)&stripes[i].count);
	}
	out->bytes_in_use = bytes;
	out->allocations = count;
}
