/*
 * hindex.c -- the hash index in front of the skiplist: key -> the same
 * struct sl_node the list links, so a point read costs one or two cache
 * misses instead of a ~20-miss list descent.
 *
 * Structure: HX_SHARDS shards chosen by the top hash bits.  Each shard is an
 * open-addressing, linear-probing table of tagged node pointers:
 *
 *   slot = node pointer | (16 hash bits << 48)     (user addresses < 2^48)
 *   0 = EMPTY (ends a probe), 1 = TOMBSTONE (probe continues)
 *
 * The tag lets a probe reject most non-matching slots without touching the
 * node.  Thread safety: readers (hx_find) are lock-free and write nothing;
 * writers hold the shard's spinlock (the table is single-writer, like
 * ck_hs).  Readers stay correct against one concurrent writer because
 *   1. a slot only goes EMPTY -> node, node -> TOMBSTONE, TOMBSTONE -> node:
 *      a slot that is part of some key's probe path never becomes EMPTY, so
 *      a reader never stops short of an entry that is present;
 *   2. a node is fully initialised before the store that publishes it
 *      (release fence), and the reader's load is a dependent load;
 *   3. resizing (grow, shrink, purge tombstones) builds a new table off to
 *      the side and publishes it with one pointer store; the old table is
 *      retired through the epoch, so a reader still probing it is safe and
 *      sees the shard as it was just before the swap.
 *
 * The shard word packs the table pointer (64-byte aligned) with log2 of its
 * capacity in the low 6 bits, so a probe computes its slot address from the
 * shard line alone: the table header is a second cache miss (and, with
 * 1024 tables spread over the heap, a TLB miss) that a lookup or insert
 * would otherwise pay before its slot miss (perf: ~9% of a sequential
 * insert stalled on that load).  Pointer and capacity change together in
 * one store, so a reader never pairs a table with another's capacity.
 */
#include "skiplist.h"

#include "alloc.h"
#include "epoch.h"

#include <ck_pr.h>
#include <string.h>

#define HX_EMPTY ((uintptr_t)0)
#define HX_TOMB ((uintptr_t)1)
#define HX_PTR_MASK (((uintptr_t)1 << 48) - 1)
#define HX_MIN_CAP 16u
#define HX_LOG_MASK ((uintptr_t)63)

struct hx_table {
	ck_epoch_entry_t entry;
	uint64_t mask; /* capacity - 1, capacity a power of two */
	/* Its live entries and tombstones are counted in the shard
	 * (struct hx_shard), beside the word that names the table. */
	uintptr_t slot[];
};

/*
 * The tag is the low 16 hash bits, the same bits that pick the home slot.
 * That costs little filtering (slots of a probe run mostly have different
 * homes, hence different tags) and lets a rebuild of a table of up to 2^16
 * slots re-place every entry from the slot alone, without touching the
 * node: a rebuild is then a sequential copy, not one cache miss per key.
 */
static inline uintptr_t
hx_tag(uint64_t hash)
{
	return (uintptr_t)(hash & 0xffff) << 48;
}

/* Home slot of an indexed entry, from its slot word when possible; for a
 * table over 2^16 slots (a shard of over ~32K keys) by hashing the node's
 * key again (nodes do not store their hash: 8 bytes of every node). */
static inline uint64_t
hx_home(uintptr_t s, uint64_t mask, uint64_t seed)
{
	if (mask <= 0xffff)
		return (s >> 48) & mask;
	const struct sl_node *n = (const struct sl_node *)(s & HX_PTR_MASK);
	return sl_hash(seed, sl_node_key(n), n->klen) & mask;
}

static size_t
hx_table_size(uint64_t cap)
{
	return sizeof(struct hx_table) + (size_t)cap * sizeof(uintptr_t);
}

/* The table a shard word names (NULL for 0) and that table's capacity - 1
 * (meaningless for 0). */
static inline struct hx_table *
hx_word_table(uintptr_t w)
{
	return (struct hx_table *)(w & ~HX_LOG_MASK);
}

static inline uint64_t
hx_word_mask(uintptr_t w)
{
	return ((uint64_t)1 << (w & HX_LOG_MASK)) - 1;
}

/* The shard's table (NULL when none), the writer's view. */
static inline struct hx_table *
hx_tab(const struct hx_shard *sh)
{
	return hx_word_table(sh->tabw);
}

static inline uintptr_t
hx_word(const struct hx_table *t)
{
	return t == NULL ? 0 : (uintptr_t)t | (uintptr_t)__builtin_ctzll(t->mask + 1);
}

/* How many slots hx_peek looks at when its caller only prefetches: a
 * probe rarely runs longer at the index's load factor, and a prefetch
 * pass should not stall on the lines past the one it prefetched. */
#define HX_PEEK_PROBES 4

/*
 * The one probe of the index: from hash's home slot to the first empty
 * one, skipping tombstones and other tags, at most limit slots (0: no
 * bound).  Unbounded, it ends: a live table keeps a quarter of its slots
 * empty (hx_reserve rebuilds before that) and a slot once filled never
 * becomes empty again (a removal leaves a tombstone), so a slot seen
 * empty was empty throughout, and a retired table is frozen.  With a key
 * it returns the node whose key matches; without (key NULL, hx_peek) the
 * first node whose tag matches, a guess that spares the wait for the
 * node's own miss.  *empty (when not NULL) is set when it stopped at an
 * empty slot.  Inlined with constant arguments, each caller gets its own
 * loop.
 */
static inline struct sl_node *
hx_probe(const struct hx_shard *sh, uint64_t hash, const void *key, uint32_t klen,
	 unsigned limit, bool *empty)
{
	/* Dependent load: the table's contents were published before it. */
	uintptr_t w = MANTIS_LOAD_ACQ(&sh->tabw);
	if (w == 0) {
		if (empty != NULL)
			*empty = true;
		return NULL;
	}
	const struct hx_table *t = hx_word_table(w);
	uintptr_t tag = hx_tag(hash);
	uint64_t mask = hx_word_mask(w);
	uint64_t i = hash & mask;
	for (unsigned probes = 0; limit == 0 || probes < limit; probes++, i = (i + 1) & mask) {
		uintptr_t s = MANTIS_LOAD_ACQ(&t->slot[i]);
		if (s == HX_EMPTY) {
			if (empty != NULL)
				*empty = true;
			return NULL;
		}
		if (s == HX_TOMB || (s & ~HX_PTR_MASK) != tag)
			continue;
		struct sl_node *n = (struct sl_node *)(s & HX_PTR_MASK);
		if (key == NULL || (n->klen == klen && memcmp(sl_node_key(n), key, klen) == 0))
			return n;
	}
	return NULL;
}

struct sl_node *
hx_find(const struct hx_shard *sh, uint64_t hash, const void *key, uint32_t klen)
{
	return hx_probe(sh, hash, key, klen, 0, NULL);
}

void
hx_prefetch(const struct hx_shard *sh, uint64_t hash)
{
	/* Computes an address from the shard word without touching the
	 * table; a prefetch never faults, so a table retired meanwhile is
	 * harmless (the hint is merely wasted). */
	uintptr_t w = MANTIS_LOAD_ACQ(&sh->tabw);
	if (w != 0)
		__builtin_prefetch(&hx_word_table(w)->slot[hash & hx_word_mask(w)]);
}

struct sl_node *
hx_peek(const struct hx_shard *sh, uint64_t hash, bool *empty)
{
	/* With empty: to the empty slot, not a few probes, since "absent"
	 * must not be said of a key whose slot lies further on (a splice
	 * search for it would be a whole descent for nothing); the slots
	 * past the first are mostly in the line its miss brought in. */
	if (empty == NULL)
		return hx_probe(sh, hash, NULL, 0, HX_PEEK_PROBES, NULL);
	*empty = false;
	return hx_probe(sh, hash, NULL, 0, 0, empty);
}

static void
hx_table_free_cb(ck_epoch_entry_t *e)
{
	mantis_epoch_before_free();
	struct hx_table *t = (struct hx_table *)((char *)e - offsetof(struct hx_table, entry));
	mantis_free(t, hx_table_size(t->mask + 1));
}

/* Places slot word s into a table private to the writer (unpublished). */
static void
hx_place(struct hx_table *t, uintptr_t s, uint64_t seed)
{
	for (uint64_t i = hx_home(s, t->mask, seed);; i = (i + 1) & t->mask) {
		if (t->slot[i] == HX_EMPTY) {
			t->slot[i] = s;
			return;
		}
	}
}

/*
 * Replaces the shard's table by one of capacity `cap` holding the same live
 * entries and no tombstones (cap 0: no table).  false on allocation failure,
 * shard unchanged.
 */
static bool
hx_rebuild(struct hx_shard *sh, uint64_t cap, struct mantis_epoch_slot *slot,
	   uint64_t seed)
{
	struct hx_table *old = hx_tab(sh), *t = NULL;
	uint64_t used = 0;
	if (cap != 0) {
		/* 64-aligned: the low 6 bits of the shard word hold log2(cap). */
		t = mantis_aligned_alloc(64, hx_table_size(cap));
		if (t == NULL)
			return false;
		t->mask = cap - 1;
		memset(t->slot, 0, (size_t)cap * sizeof(uintptr_t));
		for (uint64_t i = 0; old != NULL && i <= old->mask; i++) {
			uintptr_t s = old->slot[i];
			if (s != HX_EMPTY && s != HX_TOMB) {
				hx_place(t, s, seed);
				used++;
			}
		}
	}
	/* Release: the new table's slots are visible before the table is. */
	ck_pr_fence_store();
	MANTIS_STORE_REL(&sh->tabw, hx_word(t));
	sh->used = used;
	sh->tombs = 0;
	if (old != NULL)
		mantis_epoch_retire(slot, &old->entry, hx_table_free_cb,
				    hx_table_size(old->mask + 1));
	return true;
}

static uint64_t
hx_cap_for(uint64_t n)
{
	/* Load at most 1/2 right after a rebuild. */
	uint64_t cap = HX_MIN_CAP;
	while (cap < 2 * n)
		cap <<= 1;
	return cap;
}

bool
hx_reserve(struct hx_shard *sh, struct mantis_epoch_slot *slot, uint64_t seed)
{
	uintptr_t w = sh->tabw;
	/* Keep EMPTY slots >= 1/4 so probes stay short and always terminate. */
	if (w != 0 && (sh->used + sh->tombs + 1) * 4 <= (hx_word_mask(w) + 1) * 3)
		return true;
	return hx_rebuild(sh, hx_cap_for(sh->used + 1), slot, seed);
}

bool
hx_presize(struct hx_shard *sh, uint64_t n, struct mantis_epoch_slot *slot, uint64_t seed)
{
	struct hx_table *t = hx_tab(sh);
	/* The capacity n inserts would leave (hx_reserve grows past a load
	 * of 3/4), not hx_cap_for's 1/2: twice the table would cost a miss
	 * more often on every later probe. */
	uint64_t cap = HX_MIN_CAP;
	while ((n + 1) * 4 > cap * 3)
		cap <<= 1;
	/* Never shrinks: a presize is a hint, the table may already be big.
	 * The live entries move over as in any growth. */
	if ((t == NULL && cap <= HX_MIN_CAP) || (t != NULL && t->mask + 1 >= cap))
		return true;
	return hx_rebuild(sh, cap, slot, seed);
}

uint64_t
hx_presize_bytes(uint64_t n)
{
	return hx_table_size(hx_cap_for(n)); /* an upper bound of hx_presize's */
}

void
hx_insert(struct hx_shard *sh, struct sl_node *n, uint64_t hash)
{
	/* hx_reserve made room.  The mask from the shard word: the table's
	 * header is a line (and a page) the insert need not touch. */
	uintptr_t w = sh->tabw;
	struct hx_table *t = hx_word_table(w);
	uint64_t mask = hx_word_mask(w);
	for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
		uintptr_t s = t->slot[i];
		if (s == HX_EMPTY || s == HX_TOMB) {
			if (s == HX_TOMB)
				sh->tombs--;
			sh->used++;
			/* Release: the node (key, rec, tower) before the slot. */
			ck_pr_fence_store();
			MANTIS_STORE_REL(&t->slot[i], (uintptr_t)n | hx_tag(hash));
			return;
		}
	}
}

void
hx_remove(struct hx_shard *sh, struct sl_node *n, uint64_t hash,
	  struct mantis_epoch_slot *slot, uint64_t seed)
{
	uintptr_t w = sh->tabw;
	struct hx_table *t = hx_word_table(w);
	uint64_t mask = hx_word_mask(w);
	uintptr_t want = (uintptr_t)n | hx_tag(hash);
	for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
		uintptr_t s = t->slot[i];
		if (s == HX_EMPTY)
			return; /* not indexed: cannot happen (invariant 3) */
		if (s != want)
			continue;
		/* A tombstone, not EMPTY: other keys' probes pass through here. */
		MANTIS_STORE_REL(&t->slot[i], HX_TOMB);
		sh->used--;
		sh->tombs++;
		break;
	}
	/* Give memory back: drop an empty table, shrink a sparse one, purge
	 * tombstones.  Failure to allocate keeps the current table. */
	if (sh->used == 0)
		(void)hx_rebuild(sh, 0, slot, seed);
	else if ((sh->used * 8 < mask + 1 && mask + 1 > HX_MIN_CAP) ||
		 sh->tombs * 4 > mask + 1)
		(void)hx_rebuild(sh, hx_cap_for(sh->used), slot, seed);
}

void
hx_destroy(struct hx_shard *sh)
{
	struct hx_table *t = hx_tab(sh);
	if (t != NULL)
		mantis_free(t, hx_table_size(t->mask + 1));
	sh->tabw = 0;
	sh->used = 0;
	sh->tombs = 0;
}

/* ---- uniform sampling (RANDOMKEY) ----------------------------------------- */

/* splitmix64 (Steele, Lea, Flood): a full-period generator whose every
 * output is a bijective mix of its state, so any seed, 0 included, is a
 * good one and a fixed seed replays the same draws. */
static inline uint64_t
hx_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0, without modulo bias (Lemire, "Fast Random
 * Integer Generation in an Interval", 2019): the multiply maps 2^64
 * outputs onto n buckets; the few outputs that would make some bucket
 * one larger than the others are drawn again. */
static inline uint64_t
hx_below(uint64_t *state, uint64_t n)
{
	__uint128_t m = (__uint128_t)hx_rand(state) * n;
	if ((uint64_t)m < n) {
		uint64_t floor = -n % n; /* 2^64 mod n */
		while ((uint64_t)m < floor)
			m = (__uint128_t)hx_rand(state) * n;
	}
	return (uint64_t)(m >> 64);
}

/*
 * Uniformity: one snapshot of every shard word (table and capacity) is
 * taken first, and a draw is a global slot number in [0, sum of
 * capacities), uniform, mapped to (shard, slot) by the prefix sums.  So
 * every slot of the snapshot is equally likely, and rejecting the slots
 * that hold no live, unexpired key leaves every such key equally likely
 * (each live key sits in exactly one slot of its shard's table: invariant
 * 2 of skiplist.c).  Draws are independent, so the first accepted one is
 * uniform however many were rejected before it.
 *
 * Safety, the protocol of hx_find: the caller is inside an epoch section
 * and every table word is loaded (acquire) inside it, so a table swapped
 * out meanwhile is retired after the section began and stays allocated
 * (and frozen: writers only write the current table) until it ends.  A
 * node in such a table left the index after the section began, so it is
 * allocated too.  A slot's node is live when its rec, loaded with
 * acquire (the same linearization point as get's), is neither DEAD nor
 * PENDING nor expired at `now`: the key returned was live at that load.
 * Using the snapshot rather than reloading a shard that resized between
 * the scan and a draw keeps the draw uniform over one consistent set of
 * slots; keys inserted after the scan are simply not candidates, as they
 * would not be for a call that started a moment earlier.
 *
 * Cost: the scan reads HX_SHARDS shard words (independent loads, so they
 * overlap), then each draw is a binary search over the prefix sums and
 * one or two cache misses (slot, node).  A draw succeeds with probability
 * (live keys) / (slots); tables stay at least 1/8 full (hx_remove shrinks
 * them), so expect a handful of draws unless most entries are expired,
 * deleted-but-not-yet-purged, or the index is tiny (HX_MIN_CAP slots per
 * non-empty shard), which is what `draws` bounds.
 */
struct sl_node *
hx_sample(const struct hx_shard *shards, uint64_t *rng, uint64_t now, unsigned draws,
	  const struct sl_rec **rp)
{
	uintptr_t w[HX_SHARDS];
	uint64_t pre[HX_SHARDS + 1]; /* pre[i] = slots in shards [0, i) */
	pre[0] = 0;
	for (unsigned i = 0; i < HX_SHARDS; i++) {
		/* Acquire: the table's slots were published before it. */
		w[i] = MANTIS_LOAD_ACQ(&shards[i].tabw);
		pre[i + 1] = pre[i] + (w[i] == 0 ? 0 : hx_word_mask(w[i]) + 1);
	}
	uint64_t total = pre[HX_SHARDS];
	if (total == 0)
		return NULL;
	for (unsigned d = 0; d < draws; d++) {
		uint64_t g = hx_below(rng, total);
		/* The shard s with pre[s] <= g < pre[s + 1] (so a non-empty
		 * one): the last index whose prefix is <= g. */
		unsigned lo = 0, hi = HX_SHARDS; /* pre[lo] <= g < pre[hi] */
		while (hi - lo > 1) {
			unsigned mid = lo + (hi - lo) / 2;
			if (pre[mid] <= g)
				lo = mid;
			else
				hi = mid;
		}
		const struct hx_table *t = hx_word_table(w[lo]);
		uintptr_t s = MANTIS_LOAD_ACQ(&t->slot[g - pre[lo]]);
		if (s == HX_EMPTY || s == HX_TOMB)
			continue;
		struct sl_node *n = (struct sl_node *)(s & HX_PTR_MASK);
		uintptr_t r = MANTIS_LOAD_ACQ(&n->rec); /* the linearization point */
		if (r & SL_HIDDEN)
			continue;
		const struct sl_rec *rec = (const struct sl_rec *)r;
		if (sl_rec_expired(rec, now))
			continue;
		*rp = rec;
		return n;
	}
	return NULL;
}

/*
 * 64-bit hash of a byte string: MurmurHash64A (Austin Appleby, public
 * domain), 8 bytes per step.  Keys are 16 bytes in the common case, so a
 * two-step multiply-mix beats a table-driven or CRC-based hash here.
 *
 * Keys come from the network and the table probes linearly, so the hash
 * is keyed (seed from mantis_seed_new, per list): without the seed nobody can
 * precompute keys that share a shard and a home slot.  Plain seeded
 * Murmur2 still has seed-independent block collisions (Aumasson, Bernstein
 * and Bosslet, "Hash-flooding DoS reloaded", 2012): they need chosen values
 * at the input of the block mix, so the seed is also xored into every
 * block before it is mixed.  Not a PRF (SipHash would be, at ~4x the cost
 * for a 16-byte key); nothing persists a hash, so it can change freely.
 */
uint64_t
sl_hash(uint64_t seed, const void *key, size_t len)
{
	const uint64_t m = 0xc6a4a7935bd1e995ULL;
	const int r = 47;
	const uint8_t *p = key;
	const uint64_t kseed = (seed << 32 | seed >> 32) * m;
	uint64_t h = seed ^ (len * m);
	size_t nblocks = len / 8;
	for (size_t i = 0; i < nblocks; i++) {
		uint64_t k;
		memcpy(&k, p + i * 8, 8);
		k ^= kseed;
		k *= m;
		k ^= k >> r;
		k *= m;
		h ^= k;
		h *= m;
	}
	const uint8_t *tail = p + nblocks * 8;
	uint64_t t = 0;
	switch (len & 7) {
	case 7: t ^= (uint64_t)tail[6] << 48; /* fall through */
	case 6: t ^= (uint64_t)tail[5] << 40; /* fall through */
	case 5: t ^= (uint64_t)tail[4] << 32; /* fall through */
	case 4: t ^= (uint64_t)tail[3] << 24; /* fall through */
	case 3: t ^= (uint64_t)tail[2] << 16; /* fall through */
	case 2: t ^= (uint64_t)tail[1] << 8;  /* fall through */
	case 1: t ^= (uint64_t)tail[0];
		h ^= t ^ kseed;
		h *= m;
	}
	h ^= h >> r;
	h *= m;
	h ^= h >> r;
	return h;
}
