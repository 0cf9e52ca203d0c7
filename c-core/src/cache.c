/*
 * cache.c -- mantis_cache: a byte-bounded, sharded, concurrent cache with
 * per-entry TTL and S3-FIFO eviction (Yang et al., "FIFO queues are all you
 * need for cache eviction", SOSP 2023), made byte-bounded.
 *
 * Why S3-FIFO and not W-TinyLFU
 * -----------------------------
 * Both keep the hot set under scans and one-hit wonders; what differs is
 * what a read must do.  W-TinyLFU's LRU segments move an entry on every hit
 * (a lock, or a read buffer drained under one, as Caffeine and ristretto
 * do) and its count-min sketch takes an increment per read on shared
 * counters.  An S3-FIFO hit only raises a 2-bit frequency stored in the
 * entry itself, and only while it is below its cap of 3: a relaxed load
 * and, at most three times per residency, a relaxed store.  Queues are
 * touched by writers only, under the shard mutex they already hold.  So
 * reads stay what they were here: no lock, no locked instruction, no fence,
 * and usually no write to shared memory beyond the reader's own slot.
 * Sampled LRU (the policy before this one) was dropped, not kept as an
 * option: it needed a stamp store on every hit, which an option would have
 * made every read pay for, or a branch and a second hit path.
 *
 * Policy (per shard, all under the shard mutex)
 * ---------------------------------------------
 *   small S  FIFO of new entries, target 5% of the shard's bytes
 *   main  M  FIFO with reinsertion (CLOCK) for entries that proved reuse
 *   ghost G  fingerprints of keys S evicted recently (no values)
 *   put of a new key: into M if its fingerprint is in G, else into S.
 *   put replacing a key: the new entry takes the old one's place and queue,
 *            and counts as an access (freq + 1).
 *   get hit: freq = min(freq + 1, 3).
 *   evict (while the put does not fit): from S if S holds more than its
 *     target (or M is empty), else from M.
 *     S tail: expired -> reclaimed; freq > 0 (read while in S) -> M head,
 *             freq 0; else evicted and its fingerprint put in G.
 *     M tail: expired -> reclaimed; freq > 0 -> freq - 1, back to M's
 *             head; else evicted.
 *   One-hit wonders therefore leave through S (5% of the bytes) and never
 *   displace M, and a scan of new keys only cycles S.  G is a FIFO of
 *   32-bit fingerprints, half as many as the table has slots (1 to 2 per
 *   entry): a fingerprint survives exactly that many S evictions (ring
 *   and index, see ghost_add).  The paper's G is a FIFO of as many
 *   entries as M holds: this is that size.
 *   The sizes (S at 5% rather than the paper's 10%, G at half the table)
 *   are the best of those tried on the hit-ratio traces of `make bench`
 *   (bench/harness/cache_hitratio.go); a larger G admits too many keys
 *   to M, a larger S holds one-hit wonders longer.
 *
 * Layout
 * ------
 *   mantis_cache
 *     shards[n]   (n a power of two; shard = top bits of the key hash)
 *       table, mu, queues S and M, ghost, grace (retired memory)
 *     readers[CACHE_NSLOTS]  reader slots (cache_reclaim.h): section
 *                 counter, hit/miss counters
 *
 *   struct entry (one allocation):
 *     +---------------------+------+------------+------+------+------+-------+---------+-------+
 *     | newer/older (queue; | hash | expires_at | klen | vlen | freq | queue | key ... | value |
 *     | retirement header)  |      |            |      |      |      |       |         |       |
 *     +---------------------+------+------------+------+------+------+-------+---------+-------+
 *   hash, expires_at, klen, vlen and the bytes are written once, before
 *   publication.  freq is written by readers (relaxed) and by the evicting
 *   writer.  The queue links and `queue` are writer-only (mutex); readers
 *   never load them, and after the unlink they become the retirement
 *   header (cache_reclaim.h).
 *
 * Why not ck_hs
 * -------------
 * ck_hs/ck_ht (SPMC) would fit the single-writer-per-shard shape, but they
 * live in the prebuilt libck, so TSan sees neither their publication stores
 * nor their loads and would report every reader access to a freshly put
 * entry as a race.  The table here is ~150 lines, all of it visible to
 * TSan.  Publication uses C11 atomics with acquire/release (TSan models
 * them exactly).  Reclamation (reader slots, membarrier, grace periods) is
 * in cache_reclaim.c with its own safety argument.
 *
 * Thread safety
 * -------------
 * get, get_many, view, put, delete, clear, sweep and stats_get may all run
 * in parallel from any number of threads.  mantis_cache_free must not run
 * concurrently with anything else on the handle.
 *   - Readers (get/get_many/view) take no lock on the hit path and write
 *     only their reader slot and, below its cap, the entry's freq.
 *     A reader that meets an expired entry try-locks the shard to unlink
 *     it (never waits; if the lock is busy the sweep or the next writer
 *     reclaims it).
 *   - Writers (put, delete, clear, sweep, and that expired-entry path) hold
 *     the shard mutex; they alone touch queues, ghost and counters of the
 *     shard.  Entries and tables they unlink are retired and freed only
 *     after every reader section that could have seen them has ended.
 *     A writer takes the batches whose grace period has passed off the
 *     shard under the mutex and frees them after releasing it, so the
 *     frees do not lengthen the critical section (shard_unlock_polled).
 *     A put first keeps the shard's retired memory under its cap,
 *     waiting a bounded time for long reader sections, and is refused
 *     with MANTIS_BUSY if one outlasts the wait (cache_grace_room).
 *     The mutex is adaptive: a writer that finds it held spins briefly
 *     before it sleeps.
 *   - A view callback may read the same cache again (nested section).
 *
 * Invariants (per shard, whenever the mutex is free)
 * --------------------------------------------------
 *   1. used == sum of mantis_cache_charge() over entries in the table ==
 *      S.bytes + M.bytes, and used <= budget.  Unlinked entries leave
 *      `used` at the unlink, though their memory is freed after the grace
 *      period.  (`used` is published as the writer releases the mutex,
 *      shard_unlock_polled, never mid-operation.)
 *   2. Every entry in the table is on exactly one of S and M (its `queue`
 *      says which), and every entry on a queue is in the table.
 *   3. live + tombs < 3/4 (mask + 1), so every probe sequence reaches a NULL
 *      slot and terminates (for readers on a retired table too: retired
 *      tables are never written again).
 *   4. A key appears in at most one slot of the current table.
 *   5. An entry's fields other than freq and the writer-only queue fields
 *      never change after it is published; a new value is a new entry.
 *   6. A slot only ever goes live -> TOMB, live -> live' (same key),
 *      NULL/TOMB -> live, or (clear) anything -> NULL; a live entry never
 *      moves between slots of one table, so a key present throughout a
 *      reader's probe is found.
 *   7. Nothing reachable from the current or a retired-but-not-yet-freed
 *      table is freed (cache_reclaim.c).
 *   8. freq <= 3.
 *
 * Linearization points
 * --------------------
 *   put (insert or replace): the release store of the new entry pointer
 *     into its slot, or of the new table pointer when the insert rehashed.
 *     Evictions the put causes come after it, before the mutex is released.
 *   delete / eviction / expiry reclaim: the release store of TOMB.
 *   get/view hit (and each key of get_many, which is one read section
 *   around many lookups): the acquire load of the slot holding the entry (the
 *     entry's bytes are immutable, so copying later returns that value);
 *     miss: the load of the NULL slot that ended the probe.
 *   A reader that loaded the table pointer before a rehash reads a frozen
 *   table whose state was current at some instant during the read, so the
 *   result is still linearizable: a read never returns a value older than
 *   the last put or delete of that key that returned before the read began.
 *   A put that returns MANTIS_OK is readable until a later put, delete,
 *   clear, eviction or expiry removes it: the put never evicts the entry
 *   it installs.
 */
#include <mantis.h>
#include <mantis_cgo.h>

#include "alloc.h"
#include "cache_reclaim.h"
#include "seed.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define DEFAULT_SHARDS 16
#define MAX_SHARDS 1024
#define MIN_SHARD_BUDGET (1u << 20) /* shards shrink until each holds 1 MiB */
#define MIN_TABLE 16
#define DEFAULT_SWEEP_SLOTS 1024
#define FREQ_MAX 3
#define SMALL_PERCENT 5 /* S's share of a shard's bytes */
#define SMALL_PROMOTE 0	 /* S tail with freq > this moves to M */

enum { Q_SMALL = 0, Q_MAIN = 1 };

struct entry {
	union {
		struct {
			struct entry *newer; /* towards the queue's head */
			struct entry *older; /* towards its tail         */
		} q;
		struct cache_retired r; /* after the unlink */
	} link;
	uint64_t hash;
	uint64_t expires_at; /* absolute, caller's clock; 0 = never */
	uint32_t klen;
	uint32_t vlen;
	_Atomic uint8_t freq; /* 0..FREQ_MAX: hits since entering its queue */
	uint8_t queue;	      /* Q_SMALL / Q_MAIN; writer-only */
	unsigned char data[]; /* key then value */
};

/* The documented per-entry charge covers the header and two table slots.
 * Not charged, as table slack never was: slots beyond two per entry and the
 * ghost (6 bytes per table slot), both bounded by the table's size. */
_Static_assert(sizeof(struct entry) + 2 * sizeof(void *) <= MANTIS_CACHE_ENTRY_OVERHEAD,
	       "entry header grew past the documented overhead");

struct table {
	struct cache_retired r; /* retirement header */
	size_t mask;
	_Atomic uintptr_t slots[]; /* see "Slot words" below */
};

/* A FIFO of entries: head newest, tail oldest; writer-only. */
struct queue {
	struct entry *head;
	struct entry *tail;
	uint64_t bytes; /* sum of charges */
	size_t n;
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
	/* Read by readers, written by writers under mu (rarely: a rehash).
	 * A line pair of its own, so writers taking mu do not pull the
	 * readers' line along (CACHE_PAIR). */
	_Atomic(struct table *) table;
	char pad0[CACHE_PAIR - sizeof(void *)];

	/* Everything below: only under mu (atomics so stats can read them). */
	pthread_mutex_t mu;
	size_t live;  /* entries in table */
	size_t tombs; /* TOMB slots in table */
	uint64_t budget;
	uint64_t small_target; /* S's share of budget, bytes */
	_Atomic uint64_t used;
	_Atomic uint64_t entries;
	_Atomic uint64_t evictions;
	_Atomic uint64_t expirations;
	_Atomic uint64_t refused; /* puts answered MANTIS_BUSY */
	size_t sweep_pos;
	struct queue small, main;
	uint32_t *ghost; /* ring of gmask + 1 fingerprints, then its index */
	size_t gmask;
	size_t ghead; /* ring position the next ghost_add writes */
	struct cache_grace grace;
} __attribute__((aligned(CACHE_PAIR)));

struct mantis_cache {
	bool asym; /* membarrier protocol (else fences), fixed at new */
	uint64_t seed;
	uint64_t budget;
	uint64_t max_entry;
	unsigned nshards;
	unsigned shard_shift;
	_Atomic unsigned sweep_cursor;
	struct cache_rslot readers[CACHE_NSLOTS];
	struct shard shards[];
};

/* ------------------------------------------------------------------------ */
/* Hashing and entries                                                      */
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

static inline uint8_t
freq_get(struct entry *e)
{
	/* Relaxed: freq is an eviction hint; it orders nothing. */
	return atomic_load_explicit(&e->freq, memory_order_relaxed);
}

static inline void
freq_set(struct entry *e, uint8_t f)
{
	/* Relaxed: as above; a racing reader's increment may be lost. */
	atomic_store_explicit(&e->freq, f, memory_order_relaxed);
}

/* Caller holds s->mu; e is unlinked from table and queue. */
static void
retire_entry(struct shard *s, struct entry *e)
{
	cache_retire(&s->grace, e, entry_alloc_size(e));
}

static void
free_entry(struct entry *e)
{
	mantis_free(e, entry_alloc_size(e));
}

/* ------------------------------------------------------------------------ */
/* Queues and ghost (writer side; caller holds the shard mutex)              */
/* ------------------------------------------------------------------------ */

static inline struct queue *
queue_of(struct shard *s, const struct entry *e)
{
	return e->queue == Q_MAIN ? &s->main : &s->small;
}

/* Puts e at the head (newest end) of queue `which`. */
static void
q_push(struct shard *s, struct entry *e, uint8_t which)
{
	struct queue *q = which == Q_MAIN ? &s->main : &s->small;
	e->queue = which;
	e->link.q.newer = NULL;
	e->link.q.older = q->head;
	if (q->head != NULL)
		q->head->link.q.newer = e;
	else
		q->tail = e;
	q->head = e;
	q->bytes += entry_charge(e);
	q->n++;
}

static void
q_remove(struct shard *s, struct entry *e)
{
	struct queue *q = queue_of(s, e);
	struct entry *nw = e->link.q.newer, *od = e->link.q.older;
	if (nw != NULL)
		nw->link.q.older = od;
	else
		q->head = od;
	if (od != NULL)
		od->link.q.newer = nw;
	else
		q->tail = nw;
	q->bytes -= entry_charge(e);
	q->n--;
}

/* e takes old's place (and queue) in its queue. */
static void
q_replace(struct shard *s, struct entry *old, struct entry *e)
{
	struct queue *q = queue_of(s, old);
	e->queue = old->queue;
	e->link.q = old->link.q;
	if (e->link.q.newer != NULL)
		e->link.q.newer->link.q.older = e;
	else
		q->head = e;
	if (e->link.q.older != NULL)
		e->link.q.older->link.q.newer = e;
	else
		q->tail = e;
	q->bytes += entry_charge(e) - entry_charge(old);
}

/*
 * The ghost is a FIFO of fingerprints, as in the paper: a ring of
 * gcap = gmask + 1 fingerprints in which each add overwrites the oldest,
 * and an index from fingerprint to ring position (open addressing over
 * 2 * gcap slots, linear probing, backward-shift deletion) so that add and
 * take cost O(1).  A fingerprint therefore leaves after exactly gcap later
 * adds, however the keys hash.  (The set-associative ghost before it let
 * the one-off keys that shared a hot key's bucket push that key out after
 * as few as 4 adds: under about one hash seed in 50 a few hot keys never
 * reached M.)  One allocation: the ring, then the index.
 *
 * Invariants (shard mutex held):
 *   G1. The index holds each fingerprint at most once, as pos + 1 with
 *       ring[pos] == fp (the fingerprint is read back from the ring); 0
 *       marks a free index slot.
 *   G2. An index entry's ring slot was written by one of the last gcap adds
 *       (the add that overwrites ring[pos] first deletes the entry naming
 *       pos, the only one that can).
 *   G3. At most gcap index entries (G1, G2), so the index is at most half
 *       full and every probe ends at a free slot.
 * A ring slot whose index entry was taken, or re-pointed by a later add of
 * the same fingerprint, is left as is: no entry names it (G1), and the add
 * that overwrites it finds its fingerprint's entry naming another slot.
 * Memory: 4 bytes of ring and two 4-byte index slots per fingerprint.
 */
static inline uint32_t *
ghost_index(const struct shard *s)
{
	return s->ghost + s->gmask + 1;
}

static inline size_t
ghost_bytes(size_t gcap)
{
	return gcap * 3 * sizeof(uint32_t);
}

static inline uint32_t
ghost_fp(uint64_t h)
{
	/* Bits 32..63, made odd (never 0). */
	return (uint32_t)(h >> 32) | 1u;
}

static inline size_t
ghost_home(uint32_t fp, size_t imask)
{
	return (size_t)(fp >> 1) & imask; /* bit 0 is always 1 */
}

/* The fingerprint of index slot value v (not 0): G1. */
static inline uint32_t
ghost_slot_fp(const struct shard *s, uint32_t v)
{
	return s->ghost[v - 1];
}

/* The index slot holding fp, or SIZE_MAX. */
static size_t
ghost_find(const struct shard *s, uint32_t fp)
{
	const uint32_t *x = ghost_index(s);
	size_t imask = 2 * (s->gmask + 1) - 1;
	for (size_t i = ghost_home(fp, imask);; i = (i + 1) & imask) {
		if (x[i] == 0)
			return SIZE_MAX; /* G3: reached */
		if (ghost_slot_fp(s, x[i]) == fp)
			return i;
	}
}

/* Frees index slot i, shifting later members of its probe run back so
 * that no run has a hole (linear probing without tombstones). */
static void
ghost_unindex(struct shard *s, size_t i)
{
	uint32_t *x = ghost_index(s);
	size_t imask = 2 * (s->gmask + 1) - 1;
	for (size_t j = i;;) {
		x[i] = 0;
		for (;;) {
			j = (j + 1) & imask;
			if (x[j] == 0)
				return;
			/* x[j] may fill the hole at i unless its home lies
			 * cyclically in (i, j]. */
			size_t home = ghost_home(ghost_slot_fp(s, x[j]), imask);
			if (((j - home) & imask) >= ((j - i) & imask))
				break;
		}
		x[i] = x[j];
		i = j;
	}
}

static void
ghost_add(struct shard *s, uint64_t h)
{
	uint32_t *ring = s->ghost;
	uint32_t *x = ghost_index(s);
	size_t imask = 2 * (s->gmask + 1) - 1;
	size_t pos = s->ghead;
	s->ghead = (pos + 1) & s->gmask;
	uint32_t old = ring[pos];
	if (old != 0) { /* G2: the oldest leaves the ghost */
		size_t at = ghost_find(s, old);
		if (at != SIZE_MAX && x[at] == (uint32_t)pos + 1)
			ghost_unindex(s, at);
	}
	/* No index entry names pos now (G2), so writing it misleads no probe. */
	uint32_t fp = ghost_fp(h);
	ring[pos] = fp;
	size_t i = ghost_home(fp, imask);
	while (x[i] != 0 && ghost_slot_fp(s, x[i]) != fp)
		i = (i + 1) & imask;
	x[i] = (uint32_t)pos + 1; /* G1: a second add of fp re-points its entry */
}

/* Whether h was evicted from S recently; forgets it if so. */
static bool
ghost_take(struct shard *s, uint64_t h)
{
	size_t at = ghost_find(s, ghost_fp(h));
	if (at == SIZE_MAX)
		return false;
	ghost_unindex(s, at);
	return true;
}

/* A ghost of gcap fingerprints (a power of two), empty; NULL on NOMEM. */
static uint32_t *
ghost_alloc(size_t gcap)
{
	return mantis_calloc(1, ghost_bytes(gcap));
}

/* Forgets every fingerprint. */
static void
ghost_clear(struct shard *s)
{
	memset(s->ghost, 0, ghost_bytes(s->gmask + 1));
	s->ghead = 0;
}

/* Sizes the ghost to cap fingerprints (a power of two).  On NOMEM the old
 * ghost stays (it only holds hints), so this cannot fail.  The hints are
 * dropped, as they always were on a resize. */
static void
ghost_resize(struct shard *s, size_t cap)
{
	/* Index slots hold pos + 1 in 32 bits: at most 2^31 fingerprints. */
	if (cap == s->gmask + 1 || cap > ((size_t)1 << 31))
		return;
	uint32_t *g = ghost_alloc(cap);
	if (g == NULL)
		return;
	mantis_free(s->ghost, ghost_bytes(s->gmask + 1));
	s->ghost = g;
	s->gmask = cap - 1;
	s->ghead = 0;
}

/* ------------------------------------------------------------------------ */
/* Table (writer side; caller holds the shard mutex)                        */
/* ------------------------------------------------------------------------ */

static size_t
table_alloc_size(const struct table *t)
{
	return sizeof(*t) + (t->mask + 1) * sizeof(t->slots[0]);
}

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
	/* Relaxed: writers own the pointer (mutex held). */
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
		/* Relaxed: t is not yet published; the store below is. */
		slot_store(t, j, e, memory_order_relaxed);
	}
	/*
	 * Release: readers that load the new table pointer see its slots
	 * filled (and, transitively, the entries' published bytes).
	 */
	atomic_store_explicit(&s->table, t, memory_order_release);
	s->tombs = 0;
	cache_retire(&s->grace, old, table_alloc_size(old));
	ghost_resize(s, cap / 2);
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

/* Makes room for one more insert (invariant 3).  false = NOMEM, no change. */
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
		/* Relaxed: writer side, the mutex orders everything. */
		struct entry *e = slot_load(t, i, memory_order_relaxed);
		if (e == NULL)
			return SIZE_MAX;
		if (e != TOMB && key_eq(e, h, key, klen))
			return i;
	}
}

static void
shard_set_used(struct shard *s)
{
	/* Relaxed: statistics for stats_get; the mutex orders writers. */
	atomic_store_explicit(&s->used, s->small.bytes + s->main.bytes, memory_order_relaxed);
	atomic_store_explicit(&s->entries, s->live, memory_order_relaxed);
}

/* Unlinks the entry in slot i (linearization point of delete/evict). */
static void
shard_unlink_at(struct shard *s, struct table *t, size_t i, struct entry *e)
{
	/* Release: pairs with the reader's acquire of the slot (a reader that
	 * sees TOMB sees nothing of e it has not already loaded). */
	slot_store(t, i, TOMB, memory_order_release);
	s->live--;
	s->tombs++;
	q_remove(s, e);
	retire_entry(s, e);
}

/* Unlinks e, found through its key (eviction pops entries off a queue). */
static void
shard_unlink(struct shard *s, struct entry *e)
{
	struct table *t = shard_table(s);
	size_t i = table_find(t, e->hash, e->data, e->klen);
	shard_unlink_at(s, t, i, e);
}

/* ------------------------------------------------------------------------ */
/* Eviction (writer side; caller holds the shard mutex)                     */
/* ------------------------------------------------------------------------ */

/* Moves e from its queue's tail to M's head with frequency f. */
static void
to_main(struct shard *s, struct entry *e, uint8_t f)
{
	q_remove(s, e);
	freq_set(e, f);
	q_push(s, e, Q_MAIN);
}

/*
 * Removes one entry other than `keep` (the entry the running put installed,
 * or NULL): an expired entry met at a tail counts as an expiration, any
 * other as an eviction.  Caller guarantees a candidate exists (S and M
 * hold more than keep).  Terminates: each step evicts, moves an S entry to
 * M (at most S.n times), or lowers an M entry's freq (at most FREQ_MAX per
 * entry) or rotates keep (once per pass over M, between which freqs fall).
 */
static void
evict_one(struct shard *s, const struct entry *keep, uint64_t now)
{
	for (;;) {
		bool from_small = s->small.n > 0 &&
				  (s->small.bytes > s->small_target || s->main.n == 0 ||
				   (s->main.n == 1 && s->main.tail == keep));
		if (from_small && s->small.n == 1 && s->small.tail == keep)
			from_small = false;
		struct entry *e = from_small ? s->small.tail : s->main.tail;
		if (e != keep && expired(e, now)) {
			shard_unlink(s, e);
			cache_counter_inc(&s->expirations);
			return;
		}
		uint8_t f = freq_get(e);
		if (from_small) {
			if (e == keep || f > SMALL_PROMOTE) {
				to_main(s, e, e == keep ? f : 0);
				continue;
			}
			ghost_add(s, e->hash);
		} else {
			if (e == keep || f > 0) {
				to_main(s, e, e == keep ? f : (uint8_t)(f - 1));
				continue;
			}
		}
		shard_unlink(s, e);
		cache_counter_inc(&s->evictions);
		return;
	}
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

static inline struct shard *
shard_for(struct mantis_cache *c, uint64_t h)
{
	return &c->shards[c->nshards == 1 ? 0 : (h >> c->shard_shift)];
}

/*
 * Polls the shard's grace period, drops its lock, then frees what the poll
 * reaped: a batch is up to a thousand frees, a cache miss each, that the
 * shard's other writers need not wait for (cache_reclaim.h).
 */
static void
shard_unlock_polled(struct mantis_cache *c, struct shard *s, bool force)
{
	/* Published here, at the end of every writer's critical section,
	 * and nowhere in the middle of one: an update that grew its entry
	 * holds more than the budget until its evictions finish, and stats
	 * must not see that (invariant 1 holds whenever the mutex is free). */
	shard_set_used(s);
	struct cache_reaped done;
	cache_grace_poll(&s->grace, c->readers, c->asym, force, &done);
	pthread_mutex_unlock(&s->mu);
	cache_reaped_free(&done);
}

static size_t
cache_alloc_size(unsigned nshards)
{
	return sizeof(struct mantis_cache) + (size_t)nshards * sizeof(struct shard);
}

static void
shard_destroy(struct shard *s)
{
	struct table *t = shard_table(s);
	if (t != NULL) {
		for (size_t j = 0; j <= t->mask; j++) {
			struct entry *e = slot_load(t, j, memory_order_relaxed);
			if (e != NULL && e != TOMB)
				free_entry(e);
		}
		mantis_free(t, table_alloc_size(t));
	}
	if (s->ghost != NULL)
		mantis_free(s->ghost, ghost_bytes(s->gmask + 1));
	/* No reader is active (caller's guarantee): free what is retired. */
	cache_grace_free_all(&s->grace);
	pthread_mutex_destroy(&s->mu);
}

mantis_status
mantis_cache_new(const mantis_cache_options *opts, mantis_cache **out)
{
	if (opts == NULL || out == NULL || opts->budget_bytes == 0)
		return MANTIS_INVALID;
	if (opts->shards > MAX_SHARDS)
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
	struct mantis_cache *c = mantis_aligned_alloc(CACHE_PAIR, sz);
	if (c == NULL)
		return MANTIS_NOMEM;
	memset(c, 0, sz);
	c->nshards = p;
	c->shard_shift = 64 - shift;
	c->budget = opts->budget_bytes;
	c->max_entry = opts->budget_bytes / p;
	c->seed = mantis_seed_new(c);
	c->asym = cache_reclaim_asym();
	/*
	 * Adaptive: a writer that finds the shard busy spins for about one
	 * critical section (a few hundred instructions) before it sleeps.  A
	 * futex sleep and wake-up costs more than the wait, and through cgo a
	 * thread that blocks in C also loses its Go P to the scheduler.
	 */
	pthread_mutexattr_t mu_attr;
	pthread_mutexattr_init(&mu_attr);
#ifdef PTHREAD_MUTEX_ADAPTIVE_NP
	pthread_mutexattr_settype(&mu_attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	unsigned i;
	for (i = 0; i < p; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, &mu_attr);
		struct table *t = table_alloc(MIN_TABLE);
		s->ghost = ghost_alloc(MIN_TABLE / 2);
		s->gmask = MIN_TABLE / 2 - 1;
		atomic_init(&s->table, t);
		if (t == NULL || s->ghost == NULL) {
			i++;
			goto nomem;
		}
		s->budget = c->budget / p + (i < c->budget % p ? 1 : 0);
		s->small_target = s->budget * SMALL_PERCENT / 100;
		cache_grace_init(&s->grace, s->budget);
	}
	pthread_mutexattr_destroy(&mu_attr);
	*out = c;
	return MANTIS_OK;
nomem:
	pthread_mutexattr_destroy(&mu_attr);
	while (i-- > 0)
		shard_destroy(&c->shards[i]);
	mantis_free(c, sz);
	return MANTIS_NOMEM;
}

void
mantis_cache_free(mantis_cache *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->nshards; i++)
		shard_destroy(&c->shards[i]);
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
	/* max_entry, not this shard's budget: a shard that got a byte of the
	 * budget's remainder would take a charge one over the documented
	 * max_entry_size.  Checked before anything is evicted. */
	if (charge > c->max_entry)
		return MANTIS_TOO_LARGE;

	/* Allocate and fill before taking the lock or changing anything. */
	size_t asz = sizeof(struct entry) + key_len + value_len;
	struct entry *e = mantis_malloc(asz);
	if (e == NULL)
		return MANTIS_NOMEM;
	e->hash = h;
	e->expires_at = ttl_ns != 0 ? now + ttl_ns : 0;
	e->klen = (uint32_t)key_len;
	e->vlen = (uint32_t)value_len;
	atomic_init(&e->freq, 0);
	memcpy(e->data, key, key_len);
	if (value_len != 0)
		memcpy(e->data + key_len, value, value_len);

	pthread_mutex_lock(&s->mu);
	/* Memory retired but not yet freed stays under the shard's cap,
	 * whatever readers do (cache_reclaim.c, "The cap"). */
	if (!cache_grace_room(&s->grace, c->readers, c->asym)) {
		cache_counter_inc(&s->refused);
		pthread_mutex_unlock(&s->mu);
		mantis_free(e, asz);
		return MANTIS_BUSY;
	}
	if (!table_reserve(s)) {
		pthread_mutex_unlock(&s->mu);
		mantis_free(e, asz);
		return MANTIS_NOMEM;
	}
	/* From here nothing can fail. */
	struct table *t = shard_table(s);
	size_t at = table_find(t, h, key, key_len);
	if (at != SIZE_MAX) {
		struct entry *old = slot_load(t, at, memory_order_relaxed);
		/* A write is an access: the new value inherits old's standing. */
		uint8_t f = freq_get(old);
		atomic_init(&e->freq, f < FREQ_MAX ? f + 1 : FREQ_MAX);
		q_replace(s, old, e);
		/* Release: publishes e's bytes to readers that acquire the slot. */
		slot_store(t, at, e, memory_order_release);
		retire_entry(s, old);
		/* Make room around e (never evicting e: charge <= budget). */
		while (s->small.bytes + s->main.bytes > s->budget)
			evict_one(s, e, now);
	} else {
		/* Room first, so the new entry cannot be its own victim. */
		while (s->small.bytes + s->main.bytes + charge > s->budget)
			evict_one(s, NULL, now);
		t = shard_table(s); /* eviction never rehashes, but be explicit */
		size_t i = h & t->mask;
		for (;; i = (i + 1) & t->mask) {
			struct entry *x = slot_load(t, i, memory_order_relaxed);
			if (x == NULL || x == TOMB) {
				if (x == TOMB)
					s->tombs--;
				break;
			}
		}
		q_push(s, e, ghost_take(s, h) ? Q_MAIN : Q_SMALL);
		/* Release: publishes e's bytes to readers that acquire the slot. */
		slot_store(t, i, e, memory_order_release);
		s->live++;
	}
	shard_unlock_polled(c, s, false);
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
			shard_unlink_at(s, ct, at, x);
			cache_counter_inc(&s->expirations);
		}
	}
	shard_unlock_polled(c, s, false);
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
		/* The tag matched, so this is almost surely the entry the caller
		 * will copy: fetch the lines its value sits on together with the
		 * header line key_eq loads, instead of after it (a 100-byte value
		 * spans two more lines; larger ones the copy streams itself). */
		__builtin_prefetch((const char *)e + CACHE_CACHELINE);
		__builtin_prefetch((const char *)e + 2 * CACHE_CACHELINE);
		if (!key_eq(e, h, key, klen))
			continue;
		if (!expired(e, now)) {
			/* Write only below the cap: a hot entry's line stays
			 * shared between the CPUs that read it. */
			uint8_t f = freq_get(e);
			if (f < FREQ_MAX)
				freq_set(e, (uint8_t)(f + 1));
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
	struct cache_rslot *p = cache_reader_enter(c->readers, c->asym, &outer);
	struct entry *e = lookup(c, s, h, key, key_len, now);
	if (e == NULL) {
		cache_counter_inc(&p->misses);
		st = MANTIS_NOT_FOUND;
	} else {
		*value_len = e->vlen;
		if (e->vlen > cap) {
			/* Not a hit yet: the caller retries with a bigger buffer. */
			st = MANTIS_BUFFER_TOO_SMALL;
		} else {
			cache_counter_inc(&p->hits);
			if (e->vlen != 0)
				memcpy(buf, e->data + e->klen, e->vlen);
			st = MANTIS_OK;
		}
	}
	cache_reader_exit(c->readers, p, outer);
	return st;
}

/*
 * Keys per prefetch group of get_many.  Gets of different keys are
 * independent, so their cache misses can overlap: the group first hashes
 * its keys and prefetches each one's first slot, then loads the slots and
 * prefetches the entries they point to, then probes and copies.  Across a
 * cgo call each get waits for its own misses (the call's locked
 * instructions order them); inside one call a group waits for about two.
 */
#define MANY_GROUP 8

mantis_status
mantis_cache_get_many(mantis_cache *c, const uint8_t *keys, const uint32_t *key_offs, size_t n,
		      uint64_t now, uint8_t *buf, size_t cap, uint64_t *value_lens, size_t *done)
{
	if (done != NULL)
		*done = 0;
	if (c == NULL || done == NULL ||
	    (n != 0 && (keys == NULL || key_offs == NULL || value_lens == NULL)) ||
	    (buf == NULL && cap != 0))
		return MANTIS_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (key_offs[i + 1] <= key_offs[i])
			return MANTIS_INVALID; /* empty key, or offsets not rising */
		if (key_offs[i + 1] - key_offs[i] > MANTIS_MAX_KEY_SIZE)
			return MANTIS_TOO_LARGE;
	}
	bool outer;
	struct cache_rslot *p = cache_reader_enter(c->readers, c->asym, &outer);
	mantis_status st = MANTIS_OK;
	size_t used = 0, i = 0;
	uint64_t hits = 0, misses = 0;
	while (i < n) {
		size_t g = n - i < MANY_GROUP ? n - i : MANY_GROUP;
		uint64_t h[MANY_GROUP];
		for (size_t k = 0; k < g; k++) {
			size_t b = key_offs[i + k];
			h[k] = hash_key(c->seed, keys + b, key_offs[i + k + 1] - b);
			struct shard *s = shard_for(c, h[k]);
			/* Acquire: as in lookup (the table's slots). */
			struct table *t = atomic_load_explicit(&s->table, memory_order_acquire);
			__builtin_prefetch(&t->slots[h[k] & t->mask]);
		}
		for (size_t k = 0; k < g; k++) {
			struct shard *s = shard_for(c, h[k]);
			/* Acquire: as in lookup. */
			struct table *t = atomic_load_explicit(&s->table, memory_order_acquire);
			/* Relaxed: only a prefetch hint; lookup loads it again
			 * with acquire before dereferencing. */
			uintptr_t w = atomic_load_explicit(&t->slots[h[k] & t->mask],
							   memory_order_relaxed);
			if (w > SLOT_TOMB)
				__builtin_prefetch(slot_decode(w));
		}
		for (size_t k = 0; k < g; k++, i++) {
			size_t b = key_offs[i];
			struct shard *s = shard_for(c, h[k]);
			struct entry *e = lookup(c, s, h[k], keys + b, key_offs[i + 1] - b, now);
			if (e == NULL) {
				misses++;
				value_lens[i] = UINT64_MAX;
				continue;
			}
			if (e->vlen > cap - used) {
				/* Out of room: report where to resume.  Not a hit
				 * yet (the caller asks again). */
				value_lens[i] = e->vlen;
				st = MANTIS_BUFFER_TOO_SMALL;
				goto out;
			}
			hits++;
			value_lens[i] = e->vlen;
			if (e->vlen != 0)
				memcpy(buf + used, e->data + e->klen, e->vlen);
			used += e->vlen;
		}
	}
out:
	/* Relaxed: this slot's owner is the only writer of its counters. */
	atomic_store_explicit(&p->hits, atomic_load_explicit(&p->hits, memory_order_relaxed) + hits,
			      memory_order_relaxed);
	atomic_store_explicit(&p->misses,
			      atomic_load_explicit(&p->misses, memory_order_relaxed) + misses,
			      memory_order_relaxed);
	cache_reader_exit(c->readers, p, outer);
	*done = i;
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
	struct cache_rslot *p = cache_reader_enter(c->readers, c->asym, &outer);
	struct entry *e = lookup(c, s, h, key, key_len, now);
	if (e == NULL) {
		cache_counter_inc(&p->misses);
		st = MANTIS_NOT_FOUND;
	} else {
		cache_counter_inc(&p->hits);
		fn(ctx, e->data + e->klen, e->vlen);
	}
	cache_reader_exit(c->readers, p, outer);
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
		shard_unlink_at(s, t, at, slot_load(t, at, memory_order_relaxed));
		table_maybe_shrink(s);
	}
	shard_unlock_polled(c, s, false);
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
		memset(&s->small, 0, sizeof s->small);
		memset(&s->main, 0, sizeof s->main);
		ghost_clear(s);
		s->live = 0;
		s->tombs = 0;
		table_maybe_shrink(s);
		shard_unlock_polled(c, s, true);
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
				shard_unlink_at(s, t, pos, e);
				cache_counter_inc(&s->expirations);
				done++;
			}
		}
		s->sweep_pos = pos;
		table_maybe_shrink(s);
		/* Forced: the maintenance path also returns small batches that
		 * no further write to this shard would reach the threshold of. */
		shard_unlock_polled(c, s, true);
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
	/* Relaxed loads throughout: a snapshot of striped counters. */
	for (unsigned i = 0; i < CACHE_NSLOTS; i++) {
		out->hits += atomic_load_explicit(&c->readers[i].hits, memory_order_relaxed);
		out->misses += atomic_load_explicit(&c->readers[i].misses, memory_order_relaxed);
	}
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		out->evictions += atomic_load_explicit(&s->evictions, memory_order_relaxed);
		out->expirations += atomic_load_explicit(&s->expirations, memory_order_relaxed);
		out->refused += atomic_load_explicit(&s->refused, memory_order_relaxed);
		out->entries += atomic_load_explicit(&s->entries, memory_order_relaxed);
		out->bytes_used += atomic_load_explicit(&s->used, memory_order_relaxed);
	}
	out->budget = c->budget;
	out->max_entry_size = c->max_entry;
	out->shards = c->nshards;
	return MANTIS_OK;
}

/* ------------------------------------------------------------------------ */
/* The Go reader's view of the layout (mantis_cgo.h)                        */
/* ------------------------------------------------------------------------ */

mantis_status
mgo_cache_layout_get(mantis_cache *c, mgo_cache_layout *out)
{
	if (c == NULL || out == NULL)
		return MANTIS_INVALID;
	memset(out, 0, sizeof(*out));
	out->version = MGO_CACHE_LAYOUT_VERSION;
	out->seed = c->seed;
	out->shards = (uint8_t *)c->shards;
	out->shard_stride = sizeof(struct shard);
	out->nshards = c->nshards;
	out->shard_shift = c->shard_shift;
	out->off_shard_table = offsetof(struct shard, table);
	out->off_table_mask = offsetof(struct table, mask);
	out->off_table_slots = offsetof(struct table, slots);
	out->off_entry_hash = offsetof(struct entry, hash);
	out->off_entry_expires = offsetof(struct entry, expires_at);
	out->off_entry_klen = offsetof(struct entry, klen);
	out->off_entry_vlen = offsetof(struct entry, vlen);
	out->off_entry_freq = offsetof(struct entry, freq);
	out->off_entry_data = offsetof(struct entry, data);
	out->ptr_bits = PTR_BITS;
	out->freq_max = FREQ_MAX;
	out->host_slots = (uint8_t *)&c->readers[CACHE_SPARE_END];
	out->slot_stride = sizeof(struct cache_rslot);
	out->host_nslots = CACHE_HOST_SLOTS;
	out->off_slot_seq = offsetof(struct cache_rslot, seq);
	out->off_slot_hits = offsetof(struct cache_rslot, hits);
	out->off_slot_misses = offsetof(struct cache_rslot, misses);
	out->asym = c->asym;
	return MANTIS_OK;
}

uint64_t
mgo_cache_hash(mantis_cache *c, const uint8_t *key, size_t key_len)
{
	if (c == NULL || key == NULL)
		return 0;
	return hash_key(c->seed, key, key_len);
}
