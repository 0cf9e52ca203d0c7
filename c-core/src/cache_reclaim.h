/*
 * cache_reclaim.h -- deferred reclamation for mantis_cache (src/cache.c):
 * reader slots, the asymmetric (membarrier) or symmetric (fence) barrier
 * pair, and per-shard grace periods over batches of retired blocks.  Not
 * installed; only cache.c uses it.  The protocol and its safety argument
 * are in cache_reclaim.c's header comment.
 *
 * Why this and not ck_epoch: a reader here executes no locked instruction
 * and no fence (see cache_reclaim.c); ck_epoch_begin's xchg and the CAS that
 * borrows a pooled record keep the CPU from overlapping one get's cache
 * misses with the next get's, and a memory-bound read's throughput comes
 * from exactly that overlap.
 *
 * Use:
 *   reader:  r = cache_reader_enter(readers, asym, &outer);
 *            ... load shared pointers, dereference them ...
 *            cache_reader_exit(readers, r, outer);
 *   writer (under the lock that serialises the structure's writers):
 *            unlink b with a release store; cache_retire(g, b, size);
 *            struct cache_reaped done;
 *            cache_grace_poll(g, readers, asym, force, &done);
 *            unlock; cache_reaped_free(&done);
 *   The blocks whose grace period has passed are freed after the unlock,
 *   so a batch's frees (a cache miss each) do not lengthen the critical
 *   section other writers of the domain wait on.
 *   A retired block starts with a struct cache_retired (its first two
 *   words are overwritten by the retirement link and size).
 */
#ifndef MANTIS_CACHE_RECLAIM_H
#define MANTIS_CACHE_RECLAIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_CACHELINE 64
/* What keeps two threads' written words apart: x86's spatial prefetcher
 * pulls in a line's 128-byte buddy, so data on adjacent lines still bounces
 * between cores (C++'s hardware_destructive_interference_size, folly's
 * cacheline padding). */
#define CACHE_PAIR 128
#define CACHE_READER_SLOTS 128 /* dedicated slots, one per thread id  */
#define CACHE_SPARE_SLOTS 32   /* try-locked by threads without an id */
/* Slots owned by a host runtime's scheduler contexts, not by threads: the
 * Go package reads the table from Go on slot i while it holds Go's P number
 * i pinned (mantis_cgo.h, "Reading the cache from Go").  C never enters a
 * section on them; writers snapshot them like every other slot. */
#define CACHE_HOST_SLOTS 64
#define CACHE_SPARE_END (CACHE_READER_SLOTS + CACHE_SPARE_SLOTS)
#define CACHE_NSLOTS (CACHE_SPARE_END + CACHE_HOST_SLOTS)

/* The header every retired block begins with (written at retirement). */
struct cache_retired {
	struct cache_retired *next;
	size_t size; /* for the sized free */
};

struct cache_rslot {
	/* Odd while a section runs on this slot.  Written by the owner only
	 * (load + store, no RMW); read by reclaiming writers. */
	_Atomic uint64_t seq;
	_Atomic unsigned busy;	   /* spare slots only: try-lock             */
	struct cache_rslot *outer; /* spare slots only: owner's previous one */
	/* Owner-written counters, summed by stats (the cache's, kept here so
	 * a hit writes one line). */
	_Atomic uint64_t hits;
	_Atomic uint64_t misses;
} __attribute__((aligned(CACHE_PAIR))); /* a slot per pair: see CACHE_PAIR */

/* One writer domain's retirements (a shard's); guarded by the caller's
 * writer lock. */
struct cache_grace {
	/* Retired, not yet covered by a snapshot. */
	struct cache_retired *pend;
	size_t pend_n;
	size_t pend_bytes; /* a count alone strands big values */
	size_t poll_bytes; /* pend_bytes that closes a batch */
	/* pend_bytes + wait_bytes past which a writer that is about to
	 * allocate must first reclaim (cache_grace_room). */
	size_t cap_bytes;
	/* One batch waiting for the sections in snap_* to end. */
	struct cache_retired *wait;
	size_t wait_bytes;
	bool waiting;
	/* A writer over the cap waited GRACE_WAIT_NS for this waiting batch
	 * and gave up; until the batch is freed, the next ones give up at
	 * once instead of each waiting under the lock. */
	bool gave_up;
	unsigned snap_n;
	uint16_t snap_idx[CACHE_NSLOTS];
	uint64_t snap_seq[CACHE_NSLOTS];
};

/* Blocks a poll found past their grace period: no reader can reach them
 * (invariant 3 of cache_reclaim.c), so whoever holds this frees them, with
 * or without the writer lock.  Up to two batches: the one that was
 * waiting, and the pending one when its snapshot found no reader. */
struct cache_reaped {
	struct cache_retired *list[2];
};

/* Thread state shared by every cache: 0 before the first read, i + 1 for
 * dedicated slot i, -1 for "use a spare slot". */
extern _Thread_local int cache_tl_tid;

/* Whether the membarrier protocol is usable in this process (registers it
 * once); false under TSan and where membarrier is missing. */
bool cache_reclaim_asym(void);

/* Sets g's batch threshold and its cap from the domain's byte budget. */
void cache_grace_init(struct cache_grace *g, uint64_t budget);

/* Caller holds the domain's writer lock; b (size bytes) is unlinked. */
void cache_retire(struct cache_grace *g, void *b, size_t size);

/*
 * Caller holds the domain's writer lock.  Hands the waiting batch to *out
 * once its grace period has passed; then, if enough is pending (or
 * `force`: anything), makes the pending list the waiting batch (and hands
 * that over too if no reader was in a section).  The caller frees *out
 * with cache_reaped_free, best after dropping the lock.
 */
void cache_grace_poll(struct cache_grace *g, struct cache_rslot *readers, bool asym, bool force,
		      struct cache_reaped *out);

/* Frees what a poll handed over (out of the writer lock is fine). */
void cache_reaped_free(struct cache_reaped *r);

/* Is the memory retired on g but not yet freed over its cap? */
static inline bool
cache_grace_over_cap(const struct cache_grace *g)
{
	return g->pend_bytes + g->wait_bytes > g->cap_bytes;
}

bool cache_grace_room_slow(struct cache_grace *g, struct cache_rslot *readers, bool asym);

/*
 * Caller holds the domain's writer lock and is about to add memory to the
 * domain (a put).  Keeps the memory retired but not yet freed under
 * cap_bytes: past it, reclaims what it can, waiting a bounded time for the
 * sections the waiting batch waits for (cache_reclaim.c, "The cap").
 * false: still over the cap, because a section outlasted the wait or the
 * caller is itself inside a section (a write from a view callback); the
 * caller must not add memory.
 */
static inline bool
cache_grace_room(struct cache_grace *g, struct cache_rslot *readers, bool asym)
{
	if (__builtin_expect(!cache_grace_over_cap(g), 1))
		return true;
	return cache_grace_room_slow(g, readers, asym);
}

/* Frees everything retired; no reader may be running (cache_free). */
void cache_grace_free_all(struct cache_grace *g);

int cache_tid_assign(void);
struct cache_rslot *cache_spare_acquire(struct cache_rslot *readers);
void cache_spare_release(struct cache_rslot *r);

static inline bool
cache_is_spare(const struct cache_rslot *readers, const struct cache_rslot *r)
{
	return r >= &readers[CACHE_READER_SLOTS] && r < &readers[CACHE_SPARE_END];
}

/*
 * Opens a read section on this thread's slot, or joins the one already
 * open on it (a read from inside a view callback): *outer says which, and
 * only the outer read closes it.
 */
static inline struct cache_rslot *
cache_reader_enter(struct cache_rslot *readers, bool asym, bool *outer)
{
	int t = cache_tl_tid;
	if (__builtin_expect(t == 0, 0))
		t = cache_tid_assign();
	struct cache_rslot *r = t > 0 ? &readers[t - 1] : cache_spare_acquire(readers);
	/* Relaxed: only this thread writes seq. */
	uint64_t q = atomic_load_explicit(&r->seq, memory_order_relaxed);
	*outer = (q & 1) == 0;
	if (!*outer)
		return r;
	if (asym) {
		/* BARRIER_R is the writer's membarrier; the compiler barrier
		 * keeps the store before the section's loads in our code. */
		atomic_store_explicit(&r->seq, q + 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		/* BARRIER_R: a seq_cst exchange (xchg; swpal on arm64)
		 * orders store(seq) before every load of the section. */
		atomic_exchange_explicit(&r->seq, q + 1, memory_order_seq_cst);
	}
	return r;
}

static inline void
cache_reader_exit(struct cache_rslot *readers, struct cache_rslot *r, bool outer)
{
	if (!outer)
		return;
	/* Release: the section's loads happen before a writer that acquires
	 * this value frees what they saw. */
	atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
			      memory_order_release);
	if (cache_is_spare(readers, r))
		cache_spare_release(r);
}

/* Single writer (writer lock or slot owner): load+store, no locked RMW. */
static inline void
cache_counter_inc(_Atomic uint64_t *ctr)
{
	/* Relaxed: a statistic, orders nothing. */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

#endif /* MANTIS_CACHE_RECLAIM_H */
