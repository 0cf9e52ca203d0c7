/*
 * cache.c -- mantis_cache: a byte-bounded, sharded, concurrent cache with
 * per-entry TTL and sampled (Redis-style) approximate-LRU eviction.
 *
 * Layout
 * ------
 *   mantis_cache
 *     shards[n]   (n a power of two; shard = top bits of the key hash)
 *       mu        pthread mutex: serialises every writer of the shard
 *       table  -> struct table { mask, slots[mask+1] }   open addressing,
 *                 linear probing; a slot is NULL (never used), TOMB
 *                 (deleted) or a pointer to an immutable struct entry
 *       era       writer-advanced logical clock for access stamps
 *       pending, waiting, snap   retired memory and its grace period (below)
 *     readers[160] one slot per reader thread: section counter, hit/miss
 *
 *   struct entry (one allocation):
 *     +-------------+------+------------+-------+------+------+---------+-------+
 *     | retire link | hash | expires_at | stamp | klen | vlen | key ... | value |
 *     +-------------+------+------------+-------+------+------+---------+-------+
 *   Everything but `stamp` is written once, before publication; the link
 *   only after the entry is unlinked.
 *
 * Why this design and not ck_hs
 * -----------------------------
 * ck_hs/ck_ht (SPMC) would fit the single-writer-per-shard shape, but they
 * live in the prebuilt libck, so TSan sees neither their publication stores
 * nor their loads and would report every reader access to a freshly put
 * entry as a race (or need annotations on every table operation).  The
 * table here is ~150 lines, all of it visible to TSan, and gives eviction
 * direct access to slots for sampling.  Publication uses C11 atomics with
 * acquire/release (TSan models them exactly; CK's builtin port in TSan
 * builds is volatile + __sync_synchronize, which it does not).
 *
 * Why not ck_epoch for reclamation (it was used here first): a get-hit
 * (1M keys, one thread, CPU time per get on a shared 2-vCPU VM) took
 * ~250 ns with it and 15-45 ns less with no reclamation at all, and that
 * cost was the two locked instructions every read paid: the CAS that
 * borrowed a pooled record and the xchg in ck_epoch_begin (the store-load
 * fence any epoch or hazard scheme needs).  Removing the CAS alone gained
 * nothing; removing both gained it all: a locked instruction keeps the
 * CPU from overlapping one get's cache misses with the next get's, which
 * is where a memory-bound read's throughput comes from.  So reads here
 * execute no locked instruction and no fence:
 *   - each thread gets a dedicated reader slot (a process-wide thread id,
 *     returned to a free list when the thread exits), so no CAS to own it;
 *   - the store-load fence moves to the writer side: before a writer
 *     snapshots the readers' section counters it calls
 *     membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full
 *     barrier on every thread of the process (the asymmetric fence of
 *     liburcu's urcu-memb and folly's hazard pointers).  Writers pay a
 *     syscall per reclaimed batch (POLL_EVERY retirements or poll_bytes
 *     bytes), readers pay nothing.
 * Where membarrier is missing (non-Linux, seccomp, old kernels) and in
 * TSan builds (TSan does not model membarrier), a reader's store is a
 * seq_cst exchange and the writer's barrier a seq_cst fence instead: the
 * same protocol, the textbook Dekker pairing, at ck_epoch's read cost.
 * The grace-period argument is under "Reclamation" below.
 *
 * Thread safety
 * -------------
 * get, view, put, delete, clear, sweep and stats_get may all run in
 * parallel from any number of threads.  mantis_cache_free must not run
 * concurrently with anything else on the handle.
 *   - Readers (get/view) take no lock on the hit path and write only their
 *     reader slot and the entry's access stamp.
 *     A reader that meets an expired entry try-locks the shard to unlink
 *     it (never waits; if the lock is busy the sweep or the next writer
 *     reclaims it).
 *   - Writers (put, delete, clear, sweep, and that expired-entry path) hold
 *     the shard mutex; entries and tables they unlink are retired on the
 *     shard's lists and freed only after every reader section that could
 *     have seen them has ended (see "Reclamation").
 *   - No read section outlives a call: a reader opens it on its thread's
 *     slot and closes it before returning, so a caller may move between OS
 *     threads between calls (Go goroutines do).  What a thread keeps
 *     between calls is only its slot number (tl_tid).  Threads beyond
 *     READER_SLOTS, and threads whose number was returned at exit, share
 *     SPARE_SLOTS slots through a try-lock (a CAS per outermost read).
 *   - A view callback may read the same cache again: the inner read finds
 *     its slot's seq odd, runs inside the outer section and leaves seq to
 *     the outer read.
 *
 * Invariants (per shard, whenever the mutex is free)
 * --------------------------------------------------
 *   1. used == sum of mantis_cache_charge() over entries in the table, and
 *      used <= budget.  Unlinked entries leave `used` at the unlink, even
 *      though their memory is freed after the grace period.
 *   2. live + tombs < 3/4 (mask + 1), so every probe sequence reaches a NULL
 *      slot and terminates (for readers on a retired table too: retired
 *      tables are never written again).
 *   3. A key appears in at most one slot of the current table.
 *   4. An entry's fields other than `stamp` never change after it is
 *      published; a new value is a new entry.
 *   5. A slot only ever goes live -> TOMB, live -> live' (same key),
 *      NULL/TOMB -> live, or (clear) anything -> NULL; a live entry never
 *      moves between slots of one table, so a key present throughout a
 *      reader's probe is found.
 *   6. Nothing reachable from the current or a retired-but-not-yet-freed
 *      table is freed.
 *   7. readers[i].seq is odd exactly while a section runs on slot i, and
 *      only slot i's owner writes it.
 *
 * Linearization points
 * --------------------
 *   put (insert or replace): the release store of the new entry pointer
 *     into its slot, or of the new table pointer when the insert rehashed.
 *   delete / eviction / expiry reclaim: the release store of TOMB.
 *   get/view hit: the acquire load of the slot holding the entry (the
 *     entry's bytes are immutable, so copying later returns that value);
 *     miss: the load of the NULL slot that ended the probe.
 *   A reader that loaded the table pointer before a rehash reads a frozen
 *   table whose state was current at some instant during the read, so the
 *   result is still linearizable: a read never returns a value older than
 *   the last put or delete of that key that returned before the read began.
 *
 * Reclamation (why nothing is freed under a reader)
 * -------------------------------------------------
 *   reader:  seq = seq + 1 (odd)  ;  BARRIER_R  ;  load table, slots,
 *            entries ... ;  seq = seq + 1 (even, release)
 *   writer:  unlink o (release store) ; retire o to `pending` ;  ...
 *            later, in shard_poll: BARRIER_W ; snapshot every odd seq ;
 *            o's batch is freed once each snapshotted slot's seq changed
 *            (an acquire load of a different value).
 *   BARRIER_R/BARRIER_W are a compiler barrier / membarrier(), or else a
 *   seq_cst exchange (the odd store itself) / a seq_cst fence (a seq_cst
 *   RMW under TSan, which rejects fences).  The
 *   writer's unlink of o is globally visible before BARRIER_W completes
 *   (membarrier starts with a full barrier on the caller), and BARRIER_W
 *   splits each reader's instruction stream at a point P (membarrier: a
 *   full barrier on every thread, or a context switch for one not
 *   running; fence mode: the place of R's exchange relative to the fence
 *   in the single total order of seq_cst operations).  For a reader R
 *   that could dereference o:
 *     - if R's odd store is before P, the snapshot (after BARRIER_W) sees
 *       it or a later value; a section with that odd value has to end, by
 *       a release store the writer acquires, before o is freed;
 *     - if R's odd store is after P, so are R's loads, which then see the
 *       unlink: R never reaches o.
 *   A seq that changed means the snapshotted section ended; any later
 *   section began after BARRIER_W and is in the second case.  Counters
 *   are 64-bit and never wrap.  Each batch is snapshotted after all its
 *   unlinks (under the shard mutex, in program order), and one batch
 *   waits per shard while the next accumulates in `pending`.
 *
 * Eviction: on put, while the shard is over budget, sample `samples`
 * random slots (each advances to the next live entry) and evict an expired
 * one if seen, otherwise the one with the oldest stamp.  If the samples
 * all hit one entry while others exist, one more distinct entry is taken,
 * so the victim is always the older of at least two: the most recently
 * used entry of a shard survives any eviction that has another candidate.
 *
 * Access stamps: stamp = era << 24 | per-thread sequence (low 24 bits).
 * `era` is advanced by writers only; readers load it (a shared read, no
 * write to the shard line) and store their stamp into the entry.  Within
 * one thread stamps strictly increase (until the 24-bit sequence wraps
 * inside one era); across threads order is approximate, as LRU needs.
 */
#include <mantis.h>

#include "alloc.h"
#include "seed.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define CACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CACHE_TSAN 1
#endif
#endif

#define CACHELINE 64
#define READER_SLOTS 128	  /* dedicated slots, one per thread id      */
#define SPARE_SLOTS 32		  /* try-locked by threads without an id     */
#define NSLOTS (READER_SLOTS + SPARE_SLOTS)
#define DEFAULT_SHARDS 16
#define MAX_SHARDS 1024
#define MIN_SHARD_BUDGET (1u << 20) /* shards shrink until each holds 1 MiB */
#define DEFAULT_SAMPLES 8
#define MAX_SAMPLES 64
#define MIN_TABLE 16
/*
 * A grace-period batch closes at POLL_EVERY retirements or at
 * min(POLL_BYTES, shard budget / 16) retired bytes, whichever comes first.
 * Each batch costs one membarrier, which interrupts every CPU running one
 * of our threads (an IPI: several microseconds in a VM).  At 64 per batch
 * a 90/10 get/put mix on 2 threads lost ~20% to those interrupts; at 1024
 * they are amortised.  What waits for reclamation is at most two batches
 * per shard (pending, and waiting for the readers of its snapshot), each
 * under poll_bytes plus the entry that closed it: with small entries
 * about 1/8 of the budget for small caches, ~2 MiB per shard for large.
 */
#define POLL_EVERY 1024
#define POLL_BYTES (1u << 20)
#define SEQ_BITS 24
#define DEFAULT_SWEEP_SLOTS 1024

struct entry {
	struct entry *rnext; /* retirement list link; unused while published */
	uint64_t hash;
	uint64_t expires_at; /* absolute, caller's clock; 0 = never */
	_Atomic uint64_t stamp;
	uint32_t klen;
	uint32_t vlen;
	unsigned char data[]; /* key then value */
};

/* The documented per-entry charge covers the header and its table slots. */
_Static_assert(sizeof(struct entry) + 2 * sizeof(void *) <= MANTIS_CACHE_ENTRY_OVERHEAD,
	       "entry header grew past the documented overhead");

struct table {
	struct table *rnext; /* retirement list link */
	size_t mask;
	_Atomic uintptr_t slots[]; /* see "Slot words" below */
};

/*
 * Slot words.  A slot is one atomic word: 0 (NULL, never used), 1 (TOMB,
 * deleted: keeps probe chains through it intact) or an entry pointer with
 * 16 bits of its hash in the top 16 bits, which x86-64 and AArch64 user
 * addresses (48-bit) leave zero.  A reader compares the tag before it
 * dereferences, so a probe past a non-matching slot costs no cache miss on
 * that slot's entry.  Writer code works on decoded pointers; TOMB decodes
 * to the sentinel below so comparisons stay pointer comparisons.
 */
static struct entry tomb_sentinel;
#define TOMB (&tomb_sentinel)
#define SLOT_TOMB ((uintptr_t)1)
#define PTR_BITS 48
#define PTR_MASK (((uintptr_t)1 << PTR_BITS) - 1)

_Static_assert(sizeof(uintptr_t) == 8, "slot words need 64-bit pointers");

static inline uintptr_t
tag_of(uint64_t h)
{
	/* Bits 32..47: independent of the shard (top) and slot (low) bits. */
	return (uintptr_t)((h >> 32) & 0xffff) << PTR_BITS;
}

static inline struct entry *
slot_decode(uintptr_t w)
{
	return w == SLOT_TOMB ? TOMB : (struct entry *)(w & PTR_MASK);
}

static inline uintptr_t
slot_encode(struct entry *e)
{
	if (e == NULL)
		return 0;
	if (e == TOMB)
		return SLOT_TOMB;
	return (uintptr_t)e | tag_of(e->hash);
}

#define slot_load(t, i, mo) slot_decode(atomic_load_explicit(&(t)->slots[i], (mo)))
#define slot_store(t, i, e, mo) atomic_store_explicit(&(t)->slots[i], slot_encode(e), (mo))

struct shard {
	/* Read by readers, written by writers under mu. */
	_Atomic(struct table *) table;
	_Atomic uint64_t era;
	char pad0[CACHELINE - sizeof(void *) - sizeof(uint64_t)];

	/* Everything below: only under mu (atomics so stats can read them). */
	pthread_mutex_t mu;
	size_t live;  /* entries in table */
	size_t tombs; /* TOMB slots in table */
	uint64_t budget;
	_Atomic uint64_t used;
	_Atomic uint64_t entries;
	_Atomic uint64_t evictions;
	_Atomic uint64_t expirations;
	uint64_t rng;
	size_t sweep_pos;
	/* Retired, not yet covered by a snapshot. */
	struct entry *pend_e;
	struct table *pend_t;
	size_t pend_n;
	size_t pend_bytes; /* a count alone strands big values */
	size_t poll_bytes; /* pend_bytes that closes a batch (POLL_BYTES) */
	/* One batch waiting for the sections in snap_* to end. */
	struct entry *wait_e;
	struct table *wait_t;
	bool waiting;
	unsigned snap_n;
	uint16_t snap_idx[NSLOTS];
	uint64_t snap_seq[NSLOTS];
} __attribute__((aligned(CACHELINE)));

struct rslot {
	/* Odd while a section runs on this slot (invariant 7).  Written by
	 * the owner only (load + store, no RMW); read by reclaiming writers. */
	_Atomic uint64_t seq;
	_Atomic unsigned busy; /* spare slots only: try-lock */
	struct rslot *outer;   /* spare slots only: owner's tl_spare before */
	/* Owner-written, summed by stats_get. */
	_Atomic uint64_t hits;
	_Atomic uint64_t misses;
} __attribute__((aligned(CACHELINE)));

struct mantis_cache {
	bool asym; /* membarrier protocol (else fences), fixed at new */
	uint64_t seed;
	uint64_t budget;
	uint64_t max_entry;
	unsigned nshards;
	unsigned shard_shift;
	unsigned samples;
	_Atomic unsigned sweep_cursor;
	struct rslot readers[NSLOTS];
	struct shard shards[];
};

static _Thread_local uint64_t tl_seq;

/* ------------------------------------------------------------------------ */
/* Hashing                                                                  */
/* ------------------------------------------------------------------------ */

/* 8 bytes at a time; seeded per cache so keys cannot be chosen to collide. */
static uint64_t
hash_key(uint64_t seed, const unsigned char *k, size_t n)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, k, 8);
		h = (h ^ mantis_mix64(w)) * 0x9e3779b97f4a7c15ULL;
		k += 8;
		n -= 8;
	}
	if (n > 0) {
		uint64_t w = 0;
		memcpy(&w, k, n);
		h = (h ^ mantis_mix64(w ^ 0xa5)) * 0x9e3779b97f4a7c15ULL;
	}
	return mantis_mix64(h);
}

uint64_t
mantis_cache_charge(size_t key_len, size_t value_len)
{
	return (uint64_t)key_len + (uint64_t)value_len + MANTIS_CACHE_ENTRY_OVERHEAD;
}

static inline size_t
entry_alloc_size(const struct entry *e)
{
	return sizeof(struct entry) + e->klen + e->vlen;
}

static inline uint64_t
entry_charge(const struct entry *e)
{
	return mantis_cache_charge(e->klen, e->vlen);
}

static inline bool
expired(const struct entry *e, uint64_t now)
{
	return e->expires_at != 0 && e->expires_at <= now;
}

static inline bool
key_eq(const struct entry *e, uint64_t h, const void *key, size_t klen)
{
	return e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0;
}

/* ------------------------------------------------------------------------ */
/* Reclamation: reader slots, barriers, grace periods ("Reclamation" above)  */
/* ------------------------------------------------------------------------ */

/*
 * Thread ids: process-wide, shared by every cache.  tl_tid is 0 before the
 * first read, i + 1 for dedicated slot i, -1 for "use a spare slot".  An
 * id returns to the free set when its thread exits (the key destructor),
 * and that thread uses spare slots from then on (a later destructor may
 * still read a cache).  tid_mu orders the old owner's last slot writes
 * before the new owner's first.
 */
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;
static pthread_key_t tid_key;
static bool tid_key_ok;
static pthread_mutex_t tid_mu = PTHREAD_MUTEX_INITIALIZER;
static bool tid_used[READER_SLOTS];
static _Thread_local int tl_tid;
/* The spare slot this thread holds (innermost), so a nested read of the
 * same cache reuses it instead of waiting for a second one. */
static _Thread_local struct rslot *tl_spare;

static void
tid_release(void *v)
{
	unsigned i = (unsigned)(uintptr_t)v - 1;
	pthread_mutex_lock(&tid_mu);
	tid_used[i] = false;
	pthread_mutex_unlock(&tid_mu);
	tl_tid = -1;
}

static void
tid_init(void)
{
	tid_key_ok = pthread_key_create(&tid_key, tid_release) == 0;
}

static int
tid_assign(void)
{
	int t = -1;
	pthread_once(&tid_once, tid_init);
	if (tid_key_ok) {
		pthread_mutex_lock(&tid_mu);
		for (unsigned i = 0; i < READER_SLOTS; i++) {
			if (!tid_used[i]) {
				tid_used[i] = true;
				t = (int)i + 1;
				break;
			}
		}
		pthread_mutex_unlock(&tid_mu);
		if (t > 0 && pthread_setspecific(tid_key, (void *)(uintptr_t)t) != 0) {
			tid_release((void *)(uintptr_t)t);
			t = -1;
		}
	}
	tl_tid = t;
	return t;
}

/*
 * Whether membarrier(PRIVATE_EXPEDITED) is usable: registered once per
 * process.  Never under TSan, which cannot see the barrier it implies.
 */
#if defined(__linux__) && defined(__NR_membarrier) && !defined(CACHE_TSAN)
#define CACHE_MEMBARRIER 1
#endif
static pthread_once_t asym_once = PTHREAD_ONCE_INIT;
static bool asym_ok;

static void
asym_init(void)
{
#ifdef CACHE_MEMBARRIER
	long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	asym_ok = q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
		  syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

/* BARRIER_W.  false: no barrier was possible, so nothing may be freed. */
static bool
writer_barrier(const struct mantis_cache *c)
{
#ifdef CACHE_MEMBARRIER
	if (c->asym) {
		/* A full barrier on every thread of the process, this one too. */
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
			return true;
		/* Registration is per address space; should it be gone,
		 * renew and retry once.  If that fails too, free nothing this
		 * time: readers do not fence, so there is no other barrier. */
		return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) ==
			       0 &&
		       syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
	}
#else
	(void)c;
#endif
	/* Full barrier, pairs with the readers' seq_cst exchange (Dekker):
	 * see "Reclamation".  GCC's TSan rejects atomic_thread_fence, so
	 * TSan builds use a seq_cst RMW, a full barrier on x86 and arm64. */
#ifdef CACHE_TSAN
	static _Atomic unsigned fence_word;
	atomic_fetch_add_explicit(&fence_word, 0, memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
	return true;
}

static struct rslot *
spare_acquire(struct mantis_cache *c)
{
	uintptr_t a = (uintptr_t)tl_spare, lo = (uintptr_t)c->readers;
	if (a >= lo && a < lo + sizeof(c->readers))
		return tl_spare; /* nested read of this cache: seq is odd */
	for (;;) {
		for (unsigned i = READER_SLOTS; i < NSLOTS; i++) {
			struct rslot *r = &c->readers[i];
			unsigned expect = 0;
			/* Acquire: the previous owner's slot writes happen first. */
			if (atomic_load_explicit(&r->busy, memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_strong_explicit(&r->busy, &expect, 1,
								    memory_order_acquire,
								    memory_order_relaxed)) {
				r->outer = tl_spare;
				tl_spare = r;
				return r;
			}
		}
		/* More than SPARE_SLOTS id-less reads in flight: let one end. */
		sched_yield();
	}
}

/*
 * Opens a read section on this thread's slot, or joins the one already
 * open on it (a read from inside a view callback): *outer says which, and
 * only the outer read closes it.
 */
static inline struct rslot *
reader_enter(struct mantis_cache *c, bool *outer)
{
	int t = tl_tid;
	if (__builtin_expect(t == 0, 0))
		t = tid_assign();
	struct rslot *r = t > 0 ? &c->readers[t - 1] : spare_acquire(c);
	/* Relaxed: only this thread writes seq. */
	uint64_t q = atomic_load_explicit(&r->seq, memory_order_relaxed);
	*outer = (q & 1) == 0;
	if (!*outer)
		return r;
	if (c->asym) {
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
reader_exit(struct mantis_cache *c, struct rslot *r, bool outer)
{
	if (!outer)
		return;
	/* Release: the section's loads happen before a writer that acquires
	 * this value frees what they saw. */
	atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
			      memory_order_release);
	if (r >= &c->readers[READER_SLOTS]) {
		tl_spare = r->outer;
		/* Release: hands the slot (seq, counters) to the next owner. */
		atomic_store_explicit(&r->busy, 0, memory_order_release);
	}
}

static void
free_entry(struct entry *e)
{
	mantis_free(e, entry_alloc_size(e));
}

static size_t
table_alloc_size(const struct table *t)
{
	return sizeof(*t) + (t->mask + 1) * sizeof(t->slots[0]);
}

static void
free_lists(struct entry *e, struct table *t)
{
	while (e != NULL) {
		struct entry *n = e->rnext;
		free_entry(e);
		e = n;
	}
	while (t != NULL) {
		struct table *n = t->rnext;
		mantis_free(t, table_alloc_size(t));
		t = n;
	}
}

/* Has every section in the shard's snapshot ended?  Drops those that have. */
static bool
grace_passed(struct mantis_cache *c, struct shard *s)
{
	unsigned n = s->snap_n;
	for (unsigned k = 0; k < n;) {
		/* Acquire: pairs with reader_exit's release (what the section
		 * read happens before our free). */
		uint64_t q = atomic_load_explicit(&c->readers[s->snap_idx[k]].seq,
						  memory_order_acquire);
		if (q == s->snap_seq[k]) {
			s->snap_n = n;
			return false;
		}
		n--;
		s->snap_idx[k] = s->snap_idx[n];
		s->snap_seq[k] = s->snap_seq[n];
	}
	s->snap_n = 0;
	return true;
}

static void
free_waiting(struct shard *s)
{
	free_lists(s->wait_e, s->wait_t);
	s->wait_e = NULL;
	s->wait_t = NULL;
	s->waiting = false;
}

/*
 * Caller holds s->mu.  Frees the waiting batch once its grace period has
 * passed; then, if enough is pending (or `force`: anything), makes the
 * pending lists the waiting batch: BARRIER_W, snapshot of the sections
 * running, and free at once if none was.
 */
static void
shard_poll(struct mantis_cache *c, struct shard *s, bool force)
{
	if (s->waiting) {
		if (!grace_passed(c, s))
			return;
		free_waiting(s);
	}
	if (s->pend_e == NULL && s->pend_t == NULL)
		return;
	if (!force && s->pend_n < POLL_EVERY && s->pend_bytes < s->poll_bytes)
		return;
	if (!writer_barrier(c))
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < NSLOTS; i++) {
		/* Acquire: an even value orders the slot's earlier sections
		 * before our free (pairs with reader_exit). */
		uint64_t q = atomic_load_explicit(&c->readers[i].seq, memory_order_acquire);
		if (q & 1) {
			s->snap_idx[n] = (uint16_t)i;
			s->snap_seq[n] = q;
			n++;
		}
	}
	s->snap_n = n;
	s->wait_e = s->pend_e;
	s->wait_t = s->pend_t;
	s->pend_e = NULL;
	s->pend_t = NULL;
	s->pend_n = 0;
	s->pend_bytes = 0;
	s->waiting = true;
	if (grace_passed(c, s))
		free_waiting(s);
}

/* Caller holds s->mu; e is already unlinked. */
static void
retire_entry(struct shard *s, struct entry *e)
{
	e->rnext = s->pend_e;
	s->pend_e = e;
	s->pend_n++;
	s->pend_bytes += entry_alloc_size(e);
}

/* Caller holds s->mu; t is no longer the shard's table. */
static void
retire_table(struct shard *s, struct table *t)
{
	t->rnext = s->pend_t;
	s->pend_t = t;
	s->pend_n++;
	s->pend_bytes += table_alloc_size(t);
}

/* ------------------------------------------------------------------------ */
/* Table (writer side; caller holds the shard mutex)                        */
/* ------------------------------------------------------------------------ */

static struct table *
table_alloc(size_t cap)
{
	struct table *t = mantis_malloc(sizeof(*t) + cap * sizeof(t->slots[0]));
	if (t == NULL)
		return NULL;
	t->mask = cap - 1;
	for (size_t i = 0; i < cap; i++)
		atomic_init(&t->slots[i], 0);
	return t;
}

static inline struct table *
shard_table(struct shard *s)
{
	/* Writers own the pointer (mutex held): relaxed is enough. */
	return atomic_load_explicit(&s->table, memory_order_relaxed);
}

/* Rehashes the live entries into a fresh table of `cap` slots. */
static bool
table_rehash(struct shard *s, size_t cap)
{
	struct table *old = shard_table(s);
	struct table *t = table_alloc(cap);
	if (t == NULL)
		return false;
	for (size_t i = 0; i <= old->mask; i++) {
		struct entry *e = slot_load(old, i, memory_order_relaxed);
		if (e == NULL || e == TOMB)
			continue;
		size_t j = e->hash & t->mask;
		while (slot_load(t, j, memory_order_relaxed) != NULL)
			j = (j + 1) & t->mask;
		slot_store(t, j, e, memory_order_relaxed);
	}
	/*
	 * Release: readers that load the new table pointer see its slots
	 * filled (and, transitively, the entries' published bytes).
	 */
	atomic_store_explicit(&s->table, t, memory_order_release);
	s->tombs = 0;
	retire_table(s, old);
	return true;
}

static size_t
cap_for(size_t live)
{
	size_t cap = MIN_TABLE;
	while (cap / 2 < live)
		cap *= 2;
	return cap;
}

/* Makes room for one more insert (invariant 2).  false = NOMEM, no change. */
static bool
table_reserve(struct shard *s)
{
	struct table *t = shard_table(s);
	size_t cap = t->mask + 1;
	if ((s->live + s->tombs + 1) * 4 < cap * 3)
		return true;
	return table_rehash(s, cap_for(s->live + 1));
}

/* Shrinks a mostly empty table; failure is harmless (it stays big). */
static void
table_maybe_shrink(struct shard *s)
{
	struct table *t = shard_table(s);
	size_t cap = t->mask + 1;
	if (cap > MIN_TABLE && s->live * 8 < cap)
		(void)table_rehash(s, cap_for(s->live));
}

/* Slot index holding key, or SIZE_MAX. */
static size_t
table_find(struct table *t, uint64_t h, const void *key, size_t klen)
{
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct entry *e = slot_load(t, i, memory_order_relaxed);
		if (e == NULL)
			return SIZE_MAX;
		if (e != TOMB && key_eq(e, h, key, klen))
			return i;
	}
}

/* Unlinks the entry in slot i (linearization point of delete/evict). */
static void
shard_unlink(struct shard *s, struct table *t, size_t i, struct entry *e)
{
	/* Release pairs with the reader's acquire of the slot. */
	slot_store(t, i, TOMB, memory_order_release);
	s->live--;
	s->tombs++;
	atomic_store_explicit(&s->used, atomic_load_explicit(&s->used, memory_order_relaxed) -
						entry_charge(e),
			      memory_order_relaxed);
	atomic_store_explicit(&s->entries, s->live, memory_order_relaxed);
	retire_entry(s, e);
}

static inline void
counter_inc(_Atomic uint64_t *ctr)
{
	/* Single writer (mutex or slot owner): load+store, no locked RMW. */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline uint64_t
next_stamp(uint64_t era)
{
	return (era << SEQ_BITS) | (++tl_seq & ((1u << SEQ_BITS) - 1));
}

static inline uint64_t
rng_next(struct shard *s)
{
	/* xorshift64*: cheap, good enough to spread samples. */
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Next live entry at or after slot i (wrapping), other than `skip`. */
static size_t
next_live(struct table *t, size_t i, const struct entry *skip)
{
	for (size_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		struct entry *e = slot_load(t, i, memory_order_relaxed);
		if (e != NULL && e != TOMB && e != skip)
			return i;
	}
	return SIZE_MAX;
}

/*
 * Evicts one entry other than `keep`.  Caller guarantees at least one
 * candidate exists.  Prefers an expired entry (counted as an expiration).
 */
static void
evict_one(struct mantis_cache *c, struct shard *s, const struct entry *keep, uint64_t now)
{
	struct table *t = shard_table(s);
	size_t best = SIZE_MAX;
	struct entry *be = NULL;
	uint64_t bstamp = 0;
	bool distinct = false;
	for (unsigned k = 0; k < c->samples; k++) {
		size_t i = next_live(t, rng_next(s) & t->mask, keep);
		struct entry *e = slot_load(t, i, memory_order_relaxed);
		if (expired(e, now)) {
			shard_unlink(s, t, i, e);
			counter_inc(&s->expirations);
			return;
		}
		uint64_t st = atomic_load_explicit(&e->stamp, memory_order_relaxed);
		if (be != NULL && e != be)
			distinct = true;
		if (be == NULL || st < bstamp) {
			best = i;
			be = e;
			bstamp = st;
		}
	}
	size_t candidates = s->live - (keep != NULL ? 1 : 0);
	if (!distinct && candidates >= 2) {
		/* Never pick a lone sample when another candidate exists. */
		size_t i = next_live(t, (best + 1) & t->mask, keep);
		struct entry *e = slot_load(t, i, memory_order_relaxed);
		if (e == be) /* wrapped onto itself: skip it explicitly */
			i = next_live(t, (best + 1) & t->mask, be);
		e = slot_load(t, i, memory_order_relaxed);
		if (e != keep && e != be &&
		    atomic_load_explicit(&e->stamp, memory_order_relaxed) < bstamp) {
			best = i;
			be = e;
		}
	}
	shard_unlink(s, t, best, be);
	counter_inc(&s->evictions);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

static inline struct shard *
shard_for(struct mantis_cache *c, uint64_t h)
{
	return &c->shards[c->nshards == 1 ? 0 : (h >> c->shard_shift)];
}

static size_t
cache_alloc_size(unsigned nshards)
{
	return sizeof(struct mantis_cache) + (size_t)nshards * sizeof(struct shard);
}

mantis_status
mantis_cache_new(const mantis_cache_options *opts, mantis_cache **out)
{
	if (opts == NULL || out == NULL || opts->budget_bytes == 0)
		return MANTIS_INVALID;
	if (opts->samples > MAX_SAMPLES || opts->shards > MAX_SHARDS)
		return MANTIS_INVALID;
	unsigned n = opts->shards ? opts->shards : DEFAULT_SHARDS;
	unsigned p = 1;
	while (p * 2 <= n)
		p *= 2;
	/* Keep shards big enough that one large entry still fits in one. */
	while (p > 1 && opts->budget_bytes / p < MIN_SHARD_BUDGET)
		p /= 2;
	unsigned shift = 0;
	while ((1u << shift) < p)
		shift++;

	size_t sz = cache_alloc_size(p);
	struct mantis_cache *c = mantis_aligned_alloc(CACHELINE, sz);
	if (c == NULL)
		return MANTIS_NOMEM;
	memset(c, 0, sz);
	c->nshards = p;
	c->shard_shift = 64 - shift;
	c->samples = opts->samples ? opts->samples : DEFAULT_SAMPLES;
	c->budget = opts->budget_bytes;
	c->max_entry = opts->budget_bytes / p;
	c->seed = mantis_seed_new(c);
	pthread_once(&asym_once, asym_init);
	c->asym = asym_ok;
	unsigned i;
	for (i = 0; i < p; i++) {
		struct shard *s = &c->shards[i];
		struct table *t = table_alloc(MIN_TABLE);
		if (t == NULL)
			goto nomem;
		atomic_init(&s->table, t);
		s->budget = c->budget / p + (i < c->budget % p ? 1 : 0);
		s->poll_bytes = s->budget / 16 < POLL_BYTES ? s->budget / 16 : POLL_BYTES;
		s->rng = mantis_mix64(c->seed + i + 1) | 1;
		atomic_init(&s->era, 1);
		pthread_mutex_init(&s->mu, NULL);
	}
	*out = c;
	return MANTIS_OK;
nomem:
	while (i-- > 0) {
		mantis_free(shard_table(&c->shards[i]), table_alloc_size(shard_table(&c->shards[i])));
		pthread_mutex_destroy(&c->shards[i].mu);
	}
	mantis_free(c, sz);
	return MANTIS_NOMEM;
}

void
mantis_cache_free(mantis_cache *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		struct table *t = shard_table(s);
		for (size_t j = 0; j <= t->mask; j++) {
			struct entry *e = slot_load(t, j, memory_order_relaxed);
			if (e != NULL && e != TOMB)
				mantis_free(e, entry_alloc_size(e));
		}
		mantis_free(t, table_alloc_size(t));
		/* No reader is active (caller's guarantee): free what is retired. */
		free_lists(s->pend_e, s->pend_t);
		free_lists(s->wait_e, s->wait_t);
		pthread_mutex_destroy(&s->mu);
	}
	mantis_free(c, cache_alloc_size(c->nshards));
}

static mantis_status
check_key(const mantis_cache *c, const void *key, size_t klen)
{
	if (c == NULL || key == NULL || klen == 0)
		return MANTIS_INVALID;
	if (klen > MANTIS_MAX_KEY_SIZE)
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

mantis_status
mantis_cache_put(mantis_cache *c, const void *key, size_t key_len, const void *value,
		 size_t value_len, uint64_t ttl_ns, uint64_t now)
{
	mantis_status st = check_key(c, key, key_len);
	if (st != MANTIS_OK)
		return st;
	if (value == NULL && value_len != 0)
		return MANTIS_INVALID;
	if (ttl_ns != 0 && now > UINT64_MAX - ttl_ns)
		return MANTIS_INVALID; /* expiry not representable */
	if (value_len > MANTIS_MAX_VALUE_SIZE)
		return MANTIS_TOO_LARGE;
	uint64_t charge = mantis_cache_charge(key_len, value_len);
	uint64_t h = hash_key(c->seed, key, key_len);
	struct shard *s = shard_for(c, h);
	if (charge > s->budget)
		return MANTIS_TOO_LARGE; /* checked before anything is evicted */

	/* Allocate and fill before taking the lock or changing anything. */
	size_t asz = sizeof(struct entry) + key_len + value_len;
	struct entry *e = mantis_malloc(asz);
	if (e == NULL)
		return MANTIS_NOMEM;
	e->hash = h;
	e->expires_at = ttl_ns != 0 ? now + ttl_ns : 0;
	e->klen = (uint32_t)key_len;
	e->vlen = (uint32_t)value_len;
	memcpy(e->data, key, key_len);
	if (value_len != 0)
		memcpy(e->data + key_len, value, value_len);

	pthread_mutex_lock(&s->mu);
	if (!table_reserve(s)) {
		pthread_mutex_unlock(&s->mu);
		mantis_free(e, asz);
		return MANTIS_NOMEM;
	}
	/* From here nothing can fail. */
	struct table *t = shard_table(s);
	size_t at = table_find(t, h, key, key_len);
	struct entry *old = at == SIZE_MAX ? NULL
					   : slot_load(t, at, memory_order_relaxed);
	uint64_t old_charge = old != NULL ? entry_charge(old) : 0;
	while (atomic_load_explicit(&s->used, memory_order_relaxed) - old_charge + charge >
	       s->budget)
		evict_one(c, s, old, now); /* charge <= budget: a candidate exists */
	t = shard_table(s);		   /* eviction never rehashes, but be explicit */
	uint64_t era = atomic_load_explicit(&s->era, memory_order_relaxed) + 1;
	atomic_store_explicit(&s->era, era, memory_order_relaxed);
	atomic_init(&e->stamp, next_stamp(era));
	uint64_t used = atomic_load_explicit(&s->used, memory_order_relaxed) - old_charge + charge;
	if (old != NULL) {
		/* Release: publishes e's bytes to readers that acquire the slot. */
		slot_store(t, at, e, memory_order_release);
		retire_entry(s, old);
	} else {
		size_t i = h & t->mask;
		for (;; i = (i + 1) & t->mask) {
			struct entry *x = slot_load(t, i, memory_order_relaxed);
			if (x == NULL || x == TOMB) {
				if (x == TOMB)
					s->tombs--;
				break;
			}
		}
		/* Release: as above. */
		slot_store(t, i, e, memory_order_release);
		s->live++;
	}
	atomic_store_explicit(&s->used, used, memory_order_relaxed);
	atomic_store_explicit(&s->entries, s->live, memory_order_relaxed);
	shard_poll(c, s, false);
	pthread_mutex_unlock(&s->mu);
	return MANTIS_OK;
}

/* A read met an expired entry: unlink it if the shard lock is free. */
static __attribute__((noinline, cold)) void
reclaim_expired(struct mantis_cache *c, struct shard *s, uint64_t h, const void *key,
		size_t klen, uint64_t now)
{
	if (pthread_mutex_trylock(&s->mu) != 0)
		return; /* a writer or the sweep will */
	/* Re-check under the lock: a writer may have moved on. */
	struct table *ct = shard_table(s);
	size_t at = table_find(ct, h, key, klen);
	if (at != SIZE_MAX) {
		struct entry *x = slot_load(ct, at, memory_order_relaxed);
		if (expired(x, now)) {
			shard_unlink(s, ct, at, x);
			counter_inc(&s->expirations);
			shard_poll(c, s, false);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/*
 * Lock-free lookup inside the caller's read section.  Returns the entry,
 * or NULL on a miss.  The rare expired path lives out of line, so the hit
 * path is one straight probe loop in get and view.
 */
static inline __attribute__((always_inline)) struct entry *
lookup(struct mantis_cache *c, struct shard *s, uint64_t h, const void *key, size_t klen,
       uint64_t now)
{
	/* Acquire: pairs with the release store of a rehashed table. */
	struct table *t = atomic_load_explicit(&s->table, memory_order_acquire);
	uintptr_t tag = tag_of(h);
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		/* Acquire: pairs with the writer's release store of the entry. */
		uintptr_t w = atomic_load_explicit(&t->slots[i], memory_order_acquire);
		if (w == 0)
			return NULL;
		if ((w & ~PTR_MASK) != tag || w == SLOT_TOMB)
			continue;
		struct entry *e = slot_decode(w);
		if (!key_eq(e, h, key, klen))
			continue;
		if (!expired(e, now)) {
			uint64_t era = atomic_load_explicit(&s->era, memory_order_relaxed);
			/* Relaxed: the stamp is a hint for eviction, it orders nothing. */
			atomic_store_explicit(&e->stamp, next_stamp(era), memory_order_relaxed);
			return e;
		}
		reclaim_expired(c, s, h, key, klen, now);
		return NULL;
	}
}

mantis_status
mantis_cache_get(mantis_cache *c, const void *key, size_t key_len, uint64_t now, void *buf,
		 size_t cap, size_t *value_len)
{
	mantis_status st = check_key(c, key, key_len);
	if (st != MANTIS_OK)
		return st;
	if (value_len == NULL || (buf == NULL && cap != 0))
		return MANTIS_INVALID;
	uint64_t h = hash_key(c->seed, key, key_len);
	struct shard *s = shard_for(c, h);
	bool outer;
	struct rslot *p = reader_enter(c, &outer);
	struct entry *e = lookup(c, s, h, key, key_len, now);
	if (e == NULL) {
		counter_inc(&p->misses);
		st = MANTIS_NOT_FOUND;
	} else {
		*value_len = e->vlen;
		if (e->vlen > cap) {
			/* Not a hit yet: the caller retries with a bigger buffer. */
			st = MANTIS_BUFFER_TOO_SMALL;
		} else {
			counter_inc(&p->hits);
			if (e->vlen != 0)
				memcpy(buf, e->data + e->klen, e->vlen);
			st = MANTIS_OK;
		}
	}
	reader_exit(c, p, outer);
	return st;
}

mantis_status
mantis_cache_view(mantis_cache *c, const void *key, size_t key_len, uint64_t now,
		  mantis_cache_view_fn fn, void *ctx)
{
	mantis_status st = check_key(c, key, key_len);
	if (st != MANTIS_OK)
		return st;
	if (fn == NULL)
		return MANTIS_INVALID;
	uint64_t h = hash_key(c->seed, key, key_len);
	struct shard *s = shard_for(c, h);
	bool outer;
	struct rslot *p = reader_enter(c, &outer);
	struct entry *e = lookup(c, s, h, key, key_len, now);
	if (e == NULL) {
		counter_inc(&p->misses);
		st = MANTIS_NOT_FOUND;
	} else {
		counter_inc(&p->hits);
		fn(ctx, e->data + e->klen, e->vlen);
	}
	reader_exit(c, p, outer);
	return st;
}

mantis_status
mantis_cache_delete(mantis_cache *c, const void *key, size_t key_len)
{
	mantis_status st = check_key(c, key, key_len);
	if (st != MANTIS_OK)
		return st;
	uint64_t h = hash_key(c->seed, key, key_len);
	struct shard *s = shard_for(c, h);
	pthread_mutex_lock(&s->mu);
	struct table *t = shard_table(s);
	size_t at = table_find(t, h, key, key_len);
	if (at == SIZE_MAX) {
		st = MANTIS_NOT_FOUND;
	} else {
		shard_unlink(s, t, at, slot_load(t, at, memory_order_relaxed));
		table_maybe_shrink(s);
		shard_poll(c, s, false);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

mantis_status
mantis_cache_clear(mantis_cache *c)
{
	if (c == NULL)
		return MANTIS_INVALID;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		struct table *t = shard_table(s);
		/*
		 * In place, no allocation, so clear cannot fail.  NULLing slots
		 * is safe here although delete needs TOMB: no key survives, so
		 * no probe chain needs to stay intact.
		 */
		for (size_t j = 0; j <= t->mask; j++) {
			struct entry *e = slot_load(t, j, memory_order_relaxed);
			if (e == NULL)
				continue;
			/* Release: orders the unlink before the entry's retirement. */
			slot_store(t, j, NULL, memory_order_release);
			if (e != TOMB)
				retire_entry(s, e);
		}
		s->live = 0;
		s->tombs = 0;
		atomic_store_explicit(&s->used, 0, memory_order_relaxed);
		atomic_store_explicit(&s->entries, 0, memory_order_relaxed);
		table_maybe_shrink(s);
		shard_poll(c, s, true);
		pthread_mutex_unlock(&s->mu);
	}
	return MANTIS_OK;
}

mantis_status
mantis_cache_sweep(mantis_cache *c, uint64_t now, size_t max_slots, size_t *reclaimed)
{
	if (c == NULL)
		return MANTIS_INVALID;
	if (max_slots == 0)
		max_slots = DEFAULT_SWEEP_SLOTS;
	size_t done = 0;
	/* Relaxed: the cursor only spreads concurrent sweeps over shards. */
	unsigned first = atomic_fetch_add_explicit(&c->sweep_cursor, 1, memory_order_relaxed);
	for (unsigned k = 0; k < c->nshards && max_slots > 0; k++) {
		struct shard *s = &c->shards[(first + k) & (c->nshards - 1)];
		pthread_mutex_lock(&s->mu);
		struct table *t = shard_table(s);
		size_t n = t->mask + 1;
		if (n > max_slots)
			n = max_slots;
		max_slots -= n;
		size_t pos = s->sweep_pos & t->mask;
		for (size_t j = 0; j < n; j++, pos = (pos + 1) & t->mask) {
			struct entry *e = slot_load(t, pos, memory_order_relaxed);
			if (e != NULL && e != TOMB && expired(e, now)) {
				shard_unlink(s, t, pos, e);
				counter_inc(&s->expirations);
				done++;
			}
		}
		s->sweep_pos = pos;
		table_maybe_shrink(s);
		/* Forced: the maintenance path also returns small batches that
		 * no further write to this shard would reach the threshold of. */
		shard_poll(c, s, true);
		pthread_mutex_unlock(&s->mu);
	}
	if (reclaimed != NULL)
		*reclaimed = done;
	return MANTIS_OK;
}

mantis_status
mantis_cache_stats_get(mantis_cache *c, mantis_cache_stats *out)
{
	if (c == NULL || out == NULL)
		return MANTIS_INVALID;
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < NSLOTS; i++) {
		out->hits += atomic_load_explicit(&c->readers[i].hits, memory_order_relaxed);
		out->misses += atomic_load_explicit(&c->readers[i].misses, memory_order_relaxed);
	}
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		out->evictions += atomic_load_explicit(&s->evictions, memory_order_relaxed);
		out->expirations += atomic_load_explicit(&s->expirations, memory_order_relaxed);
		out->entries += atomic_load_explicit(&s->entries, memory_order_relaxed);
		out->bytes_used += atomic_load_explicit(&s->used, memory_order_relaxed);
	}
	out->budget = c->budget;
	out->max_entry_size = c->max_entry;
	out->shards = c->nshards;
	return MANTIS_OK;
}
