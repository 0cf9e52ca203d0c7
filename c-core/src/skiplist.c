/*
 * skiplist.c -- the concurrent ordered index of the native core: a
 * lock-free skiplist over byte-string keys (memcmp order) plus a hash index
 * from key to the same node for point reads, with ck_epoch reclamation.
 * Public API and its contract: the skiplist section of mantis.h.
 *
 * ------------------------------------------------------------------------
 * Thread safety
 * ------------------------------------------------------------------------
 * Every public call may run in parallel with every other except
 * mantis_skiplist_free and mantis_skiplist_append (a bulk load into a
 * list nobody else uses: plain stores at the end of each level, see
 * sl_append_built).  Each call borrows one epoch record from a pool
 * (epoch.h explains why not thread-locals) and runs exactly one epoch
 * section; nothing it read is freed before that section ends.  What a
 * call keeps between calls (the splice hint and statistics deltas, struct
 * sl_local) is per epoch slot, owned by whoever holds the slot.
 *
 *   get/get_view   lock-free, write nothing shared but the epoch record
 *   scan/iter      lock-free, same
 *   put (update)   lock-free: one CAS on node->rec (an update racing the
 *                  insert of its key waits for that insert's lock)
 *   put (insert)   shard spinlock of the key (1 of 1024) held while the node
 *   delete         is spliced into the list and the index; the list splices
 *                  are CAS and never wait for writers of other shards
 *
 * Why the per-shard lock: the hash index is single-writer per shard (like
 * ck_hs), and holding that lock across the list splice makes "which node
 * is THE node of key k" a question with one answer at any instant, which is
 * what lets the index and the list never disagree (invariants 2-4).  Lock
 * hold times are one list splice; updates, the common write, never lock.
 *
 * ------------------------------------------------------------------------
 * Layout (skiplist.h has the byte offsets)
 * ------------------------------------------------------------------------
 *
 *  index shard s = hash>>54      list (level 0 shown with one tower)
 *  +------------------+
 *  | tagged ptr  -----+------+
 *  | TOMB             |      v
 *  | 0 (EMPTY)        |   +----------+--------+-----------+-------+
 *  +------------------+   | rec ---+ | klen,h | next[0..h)| key   |
 *                         +--------|-+--------+-----------+-------+
 *   head -> [a] -> [b] -> ...      v
 *                  +-------+-----+-----+------+------+-------+
 *                  | entry | seq | exp | node | vlen | value |  sl_rec,
 *                  +-------+-----+-----+------+------+-------+  immutable
 *
 * Pointer low bits: rec | PENDING (an insert's node, linked and maybe
 * indexed but not yet published: its key is absent to every reader),
 * rec | DEAD (key logically deleted; rec is its last record) and
 * next[i] | MARK (level i of this node is frozen, the node is being
 * unlinked; Harris/Fraser marking).  "Hidden" is DEAD or PENDING: a
 * reader treats a hidden node as no node.
 *
 * ------------------------------------------------------------------------
 * Invariants
 * ------------------------------------------------------------------------
 *  1. Every level is sorted by key, strictly, among nodes whose rec is not
 *     DEAD; a DEAD node of key k may sit next to the live node of k, never
 *     after it at any level (insert snips marked nodes before it splices).
 *  2. Outside the critical section of shard(k), key k has at most one node
 *     whose rec is not DEAD, it is not PENDING, and it is in the index iff
 *     it exists.
 *  3. The index holds only nodes that are fully linked at every level of
 *     their tower; a node leaves the index (under the lock) before or with
 *     its rec becoming DEAD, and its tower is fully MARKed before the lock
 *     is released.
 *  4. An inserted node's rec starts PENDING and loses it exactly once, by
 *     a release store under the lock after the node is linked at every
 *     level and indexed; it becomes DEAD at most once, later (by delete or
 *     sweep, under the lock), and is never un-DEADed.  Only a rec that is
 *     neither is ever replaced (update CAS).  next[i] gets MARK once and is
 *     never changed after.
 *  5. A node is retired only after a list search for its key has run after
 *     its tower was marked (which unlinks it from every level: a marked node
 *     cannot be re-linked, since every splice CASes an unmarked pointer) and
 *     after it left the index, and only after retire_gen was bumped (which
 *     invalidates every splice hint, struct sl_hint).  A record is retired
 *     when a CAS replaced it, or with its node.  Retired memory is freed by
 *     ck_epoch after every section that could have seen it has ended.
 *  6. Records and keys are immutable after publication; publication is a
 *     CAS or release store after a store fence.
 *  7. A splice hint (a slot's own, or a batch's path for one key, struct
 *     sl_hint) is read only by its owner (the slot's holder; the batch's
 *     caller) and only while retire_gen equals the value it was built
 *     under; every pointer it supplies is re-checked (key order by
 *     comparison, adjacency and unmarkedness by the splice CAS) before
 *     the list depends on it.
 *
 * ------------------------------------------------------------------------
 * Linearization points
 * ------------------------------------------------------------------------
 * Every write and every read of key k linearizes on ONE word, the rec of
 * k's node; the index and the list are only two ways to reach that node.
 * A get (index) and a scan (list) that reach the same node read the same
 * word, so they cannot disagree about whether a write happened: a key a
 * scan returned is then found by a get, and the reverse.
 *
 *  insert  the release store that clears PENDING, under the lock:
 *
 *             0. node built, rec = [r|PENDING]
 *             1. level 0..h-1 splice (CAS, below)    scans reach it, skip it
 *             2. index slot: EMPTY/TOMB --> node     gets find it, skip it
 *             3. rec: [r|PENDING] --store--> [r]    (linearization)
 *             4. unlock
 *
 *          Before 3 both paths see no key k; from 3 both see r.  The
 *          release orders 1 and 2 before 3, so a reader that saw r live
 *          and then probes the index or walks the list finds the node.
 *          An update that finds the node PENDING takes the lock and
 *          waits out step 4 (rec_swap).
 *  update  the CAS of node->rec from the old record to the new one:
 *
 *             node.rec: [r1] --CAS(r1 -> r2)--> [r2]     r1 retired
 *
 *          A CAS that finds rec hidden fails and the put falls back to the
 *          locked path: a DEAD node is no longer in the index (inv. 3), a
 *          PENDING one is published by the time the lock is granted.
 *  delete  the CAS of node->rec from r to r|DEAD, under the lock:
 *
 *             1. rec: [r] --CAS--> [r|DEAD]          (linearization)
 *             2. index slot: node --> TOMB
 *             3. next[h-1..0]: p --CAS--> p|MARK     (top down)
 *             4. unlock; search(k) snips it at each level:
 *                  pred.next[i]: node --CAS--> succ
 *             5. retire_gen++, then retire node (and r) via ck_epoch_call
 *
 *          From 1 both paths see no key k: a get that still finds the
 *          node in the index, and a scan that still walks through it, see
 *          DEAD.  A sweep's reclaim of an expired record is the same CAS.
 *  get     the acquire load of node->rec (or finding no node in the index,
 *          which is before the key's insert published it or after its
 *          delete hid it).
 *  scan    per key, the acquire load of node->rec as it walks level 0.
 *
 * Insert splice (one level; level 0 first, then upward; preds/succs from
 * a search that snipped every marked node in the way, or from a splice
 * hint when the key falls inside it, see struct sl_hint: the slot's own,
 * or the batch's path for the key, whose search snipped nothing, so its
 * succs may be marked; the hint's checks and the CAS below cover both):
 *
 *      pred -----------------> succ         node.next[i] = succ
 *      pred ---> node -------> succ         CAS(pred.next[i], succ, node)
 *
 * A failed CAS (pred changed or got marked) searches again and retries.
 *
 * Readers (get via the index, scan via level 0) may run through DEAD and
 * marked nodes: a marked node's next pointers are frozen and point to nodes
 * that cannot be unlinked before it is (their predecessor pointer is
 * marked), so everything reachable from a node reached inside a section
 * was unlinked after the section began and is still allocated.
 *
 * Scans skip hidden nodes and expired records and enforce strictly
 * increasing keys (a last-key comparison), so they never return a key
 * twice even when a DEAD node and a newer live node of the same key are
 * both linked.  A scan's first node comes from a seek that returns the
 * level-0 successor it compared against the start key (sl_seek), so no
 * key below the start is ever returned.
 */
#include <mantis.h>

#include "alloc.h"
#include "epoch.h"
#include "seed.h"
#include "skiplist.h"

#include <ck_pr.h>
#include <string.h>
#include <unistd.h>

/*
 * A splice hint (RocksDB's InlineSkipList "splice", LevelDB's sequential
 * insert case): the predecessors and successors around the last key this
 * epoch slot inserted.  An insert whose key falls between them at a low
 * level starts its descent there instead of at the head, so ascending
 * inserts cost O(1) list steps instead of ~log4(n) levels of them.
 *
 * Safety: the hint holds node pointers across calls, i.e. outside any
 * epoch section, so the nodes may have been retired and freed since.  It
 * is used only while sl->retire_gen still equals `gen`, the value read at
 * the start of the section that built it: every node retirement bumps
 * retire_gen before its ck_epoch_call, and a section reads retire_gen
 * after ck_epoch_begin's full fence.  So either this section sees the bump
 * (and ignores the hint), or the retirement's ck_epoch_call comes after
 * this section began and ck_epoch keeps the node allocated until it ends.
 * A node seen in the section that built the hint was not retired before
 * that section read `gen` (a node unlinked from every level before a
 * traversal starts cannot be reached by it; see "Readers" above).
 * Everything else about a hint is checked when used: keys by comparison,
 * adjacency by the splice CAS itself, which fails on a marked predecessor.
 *
 * Owned by whoever holds epoch slot i (local[i]): no other synchronisation.
 * A batch's lockstep search (sl_find_paths) builds hints of the same kind,
 * one per key, owned by the batch's caller.  (The struct: skiplist.h.)
 */

/*
 * What a call keeps per epoch slot: the splice hint and the statistics
 * deltas of the calls that held the slot.  Only the slot's holder writes
 * (plain load + store, atomic only so that stats_get may read them at any
 * time), so no insert or delete does a locked add on shared counters;
 * stats_get sums the slots.
 */
struct sl_local {
	int64_t keys;
	int64_t bytes;
	/* Batch splices searched (sl_find_paths) and used by an insert:
	 * what the test hook sl_path_stats reports. */
	int64_t paths_searched;
	int64_t paths_used;
	struct sl_hint hint;
} __attribute__((aligned(64)));

struct mantis_skiplist {
	mantis_epoch epoch; /* first: needs 64-byte alignment */
	struct hx_shard shards[HX_SHARDS];
	struct sl_node *head; /* key -infinity, SL_MAX_HEIGHT levels */
	uint64_t seed;	      /* sl_hash key; fixed after new (tests aside) */
	/* Bumped (seq_cst) by every node retirement, read by every insert:
	 * written only by deletes and sweeps, so read-mostly.  Own line. */
	uint64_t retire_gen __attribute__((aligned(64)));
	struct sl_local local[MANTIS_EPOCH_POOL_SIZE]; /* by epoch slot index */
};

struct mantis_skiplist_iter {
	mantis_skiplist *sl;
	uint8_t *key; /* copy of the last key returned (the position) */
	size_t klen;
	size_t kcap;
	bool positioned; /* key holds a position; false: from the start */
	bool exclusive;	 /* next returns keys > key (else >= key)       */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static inline bool
cas_word(uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	return ck_pr_cas_ptr(p, (void *)old, (void *)new_);
}

static inline struct sl_node *
next_ptr(uintptr_t v)
{
	return (struct sl_node *)(v & ~SL_MARK);
}

static inline int
key_cmp(const struct sl_node *n, const uint8_t *key, uint32_t klen)
{
	return sl_bytes_cmp(sl_node_key(n), n->klen, key, klen);
}

static size_t
rec_size(uint32_t vlen)
{
	return sizeof(struct sl_rec) + vlen;
}

/* mantis_malloc, or with its accounting deferred to *t (alloc.h) when t
 * is not NULL: a bulk builder's allocations. */
static inline void *
sl_alloc(size_t size, mantis_alloc_tally *t)
{
	return t != NULL ? mantis_malloc_tally(size, t) : mantis_malloc(size);
}

static struct sl_rec *
rec_new(const void *value, size_t vlen, uint64_t seq, uint64_t expires_at,
	mantis_alloc_tally *t)
{
	struct sl_rec *r = sl_alloc(rec_size((uint32_t)vlen), t);
	if (r == NULL)
		return NULL;
	r->seq = seq;
	r->expires_at = expires_at;
	r->vlen = (uint32_t)vlen;
	if (vlen != 0)
		memcpy(r->value, value, vlen);
	return r;
}

static void
rec_free(struct sl_rec *r)
{
	if (r != NULL)
		mantis_free(r, rec_size(r->vlen));
}

static void
rec_reclaim_cb(ck_epoch_entry_t *e)
{
	mantis_epoch_before_free();
	rec_free((struct sl_rec *)((char *)e - offsetof(struct sl_rec, entry)));
}

static void
node_free(struct sl_node *n)
{
	mantis_free(n, sl_node_size(n->height, n->klen));
}

/* Retired through the node's last record (struct sl_rec): frees both. */
static void
node_reclaim_cb(ck_epoch_entry_t *e)
{
	mantis_epoch_before_free();
	struct sl_rec *r = (struct sl_rec *)((char *)e - offsetof(struct sl_rec, entry));
	struct sl_node *n = r->node;
	rec_free(r);
	node_free(n);
}

/* Per-thread xorshift state for tower heights: no shared RNG cache line.
 * Seeded from the state's own (per-thread) address on first use. */
static _Thread_local uint64_t rng_state;

static uint32_t
random_height(void)
{
	uint64_t x = rng_state;
	if (x == 0)
		x = ((uint64_t)(uintptr_t)&rng_state * 0x9e3779b97f4a7c15ULL) | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	/* Branching factor 4, as LevelDB: 1.33 pointers per node on average. */
	uint32_t h = 1;
	while (h < SL_MAX_HEIGHT && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

static struct sl_node *
node_new(const void *key, uint32_t klen, uint32_t height,
	 struct sl_rec *r, mantis_alloc_tally *t)
{
	struct sl_node *n = sl_alloc(sl_node_size(height, klen), t);
	if (n == NULL)
		return NULL;
	n->rec = (uintptr_t)r;
	n->klen = klen;
	n->height = height;
	memset(n->next, 0, height * sizeof(uintptr_t));
	if (klen != 0)
		memcpy(sl_node_key(n), key, klen);
	if (r != NULL)
		r->node = n; /* published with n */
	return n;
}

/* This call's per-slot state (struct sl_local); slot held by the caller. */
static inline struct sl_local *
local_of(mantis_skiplist *sl, mantis_epoch_slot *slot)
{
	return &sl->local[slot - sl->epoch.slots];
}

/* Adds n to a per-slot counter (struct sl_local): the slot's holder is
 * the only writer, so load + store (no locked RMW); relaxed, it orders no
 * other memory, and atomic only so that readers (stats_get) may sum the
 * slots at any time. */
static inline void
local_count(int64_t *c, int64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Statistics: the key and byte counts of the slot's holder. */
static void
stats_add(mantis_skiplist *sl, mantis_epoch_slot *slot, int64_t keys, int64_t bytes)
{
	struct sl_local *l = local_of(sl, slot);
	local_count(&l->keys, keys);
	local_count(&l->bytes, bytes);
}

/* ------------------------------------------------------------------------ */
/* List search                                                              */
/* ------------------------------------------------------------------------ */

/*
 * While a search at node x on level lvl waits for the miss on x's successor,
 * it may as well fetch where it goes if that successor turns out too big:
 * x's successor one level down (x itself is cached).  With branching 4
 * that node differs from the level-lvl successor 3 times in 4, and a
 * search drops once per level, so this overlaps about one of every ~4
 * dependent misses.  A hint only (relaxed load; prefetch cannot fault).
 */
static inline void
prefetch_below(const struct sl_node *x, int lvl)
{
	if (lvl > 0)
		__builtin_prefetch(next_ptr(__atomic_load_n(&x->next[lvl - 1], __ATOMIC_RELAXED)));
}

/*
 * One descent of the writer search from pred (a node whose key is < key,
 * reached inside the current section) at level top down to level 0: fills
 * preds[i] (last node < key) and succs[i] (first unmarked node >= key) for
 * i <= top, unlinking every marked node it passes (Harris/Fraser).  false
 * when a snip CAS failed (pred changed or got marked): search again.
 */
static bool
sl_descend(const uint8_t *key, uint32_t klen, struct sl_node *pred, int top,
	   struct sl_node **preds, struct sl_node **succs)
{
	for (int lvl = top; lvl >= 0; lvl--) {
		struct sl_node *cur = next_ptr(MANTIS_LOAD_ACQ(&pred->next[lvl]));
		while (cur != NULL) {
			prefetch_below(pred, lvl);
			uintptr_t nx = MANTIS_LOAD_ACQ(&cur->next[lvl]);
			if (nx & SL_MARK) {
				/* Snip cur; fails if pred changed or was marked
				 * itself (then pred's own successor is stale). */
				if (!cas_word(&pred->next[lvl], (uintptr_t)cur, nx & ~SL_MARK))
					return false;
				cur = next_ptr(nx);
				continue;
			}
			if (key_cmp(cur, key, klen) >= 0)
				break;
			pred = cur;
			cur = next_ptr(nx);
		}
		preds[lvl] = pred;
		succs[lvl] = cur;
	}
	return true;
}

/*
 * Writer search from the head: preds/succs on every level.  After it
 * returns, no node whose tower was fully marked before the call started is
 * reachable on the path to key.
 */
static void
sl_find(mantis_skiplist *sl, const uint8_t *key, uint32_t klen,
	struct sl_node **preds, struct sl_node **succs)
{
	while (!sl_descend(key, klen, sl->head, SL_MAX_HEIGHT - 1, preds, succs))
		;
}

/* Levels of a hint tried, bottom up, before a full search: an ascending
 * insert finds its splice at level 0; a random one at none of them, and
 * pays these few comparisons of cache-hot nodes for nothing. */
#define SL_HINT_TRY 3

/* pred < key < succ (head is -infinity, NULL +infinity). */
static inline bool
sl_brackets(const mantis_skiplist *sl, const struct sl_node *pred,
	    const struct sl_node *succ, const uint8_t *key, uint32_t klen)
{
	return (pred == sl->head || key_cmp(pred, key, klen) < 0) &&
	       (succ == NULL || key_cmp(succ, key, klen) > 0);
}

/*
 * Writer search for an insert of height `height`, starting from hint h
 * (already checked current) when it brackets key: fills preds/succs for at
 * least levels [0, height) and returns how many levels from 0 it filled.
 * The caller's splice CAS validates what the hint supplied: a level whose
 * pred is no longer followed by succ (or got marked) fails and searches
 * again from the head.
 *
 * Invariant 1 holds as for sl_find: a DEAD node of key (tower fully marked
 * under the key's lock, which the caller holds) fails the strict bracket
 * check, and levels below the bracket are searched with snipping.
 */
static uint32_t
sl_find_hinted(mantis_skiplist *sl, const struct sl_hint *h, const uint8_t *key,
	       uint32_t klen, uint32_t height, struct sl_node **preds,
	       struct sl_node **succs)
{
	for (uint32_t l = 0; l < SL_HINT_TRY && l < h->filled; l++) {
		struct sl_node *p = h->preds[l], *s = h->succs[l];
		if (!sl_brackets(sl, p, s, key, klen) ||
		    MANTIS_LOAD_ACQ(&p->next[l]) != (uintptr_t)s)
			continue;
		/* Level l brackets key and is still adjacent.  Levels above
		 * it that the tower needs come from the hint too, checked. */
		for (uint32_t i = l + 1; i < height; i++) {
			if (i >= h->filled ||
			    !sl_brackets(sl, h->preds[i], h->succs[i], key, klen))
				goto full;
			preds[i] = h->preds[i];
			succs[i] = h->succs[i];
		}
		preds[l] = p;
		succs[l] = s;
		if (l == 0 || sl_descend(key, klen, p, (int)l - 1, preds, succs))
			return height > l + 1 ? height : l + 1;
		break;
	}
full:
	sl_find(sl, key, klen, preds, succs);
	return SL_MAX_HEIGHT;
}

/*
 * Reader search: the first node with key >= key (> key when exclusive),
 * possibly hidden (DEAD or PENDING), or NULL.  Writes nothing.
 */
static struct sl_node *
sl_seek(mantis_skiplist *sl, const uint8_t *key, uint32_t klen, bool exclusive)
{
	struct sl_node *x = sl->head, *nx = NULL;
	for (int lvl = SL_MAX_HEIGHT - 1; lvl >= 0; lvl--) {
		for (;;) {
			nx = next_ptr(MANTIS_LOAD_ACQ(&x->next[lvl]));
			if (nx == NULL)
				break;
			prefetch_below(x, lvl);
			int c = key_cmp(nx, key, klen);
			if (c > 0 || (c == 0 && !exclusive))
				break;
			x = nx;
		}
	}
	/* The level-0 successor the loop compared, not a fresh load of
	 * x->next[0]: a node spliced in after x since then may sort before
	 * key, and returning it put keys below a scan's start (and a key
	 * again after itself) into scans. */
	return nx;
}

/*
 * Where a scan, sweep or iterator step from start begins: what sl_seek
 * returns (the first node with key >= start, > start when exclusive,
 * possibly hidden, or NULL), found through the hash index in one probe when
 * start is an indexed key, which a continuation's start (the last key
 * returned) nearly always is.  Its node is the key's only non-DEAD node,
 * and no node of the key lies after it (invariant 1), so the node is the
 * answer when inclusive and its level-0 successor when exclusive; nodes
 * sl_seek could return before it are DEAD nodes of the same key, which
 * every caller skips.  If the node is unlinked meanwhile, its frozen
 * next[0] still leads through every node linked when its tower was
 * marked, which is after this section found it in the index (a node
 * leaves the index before it is marked: invariant 3), so only keys
 * inserted during the scan can be passed over, as weak consistency
 * allows.  A seek + 100-entry Go iterator makes three scan calls; this
 * turns two of three top-down searches into one probe each.
 */
static struct sl_node *
sl_scan_start(mantis_skiplist *sl, const uint8_t *start, uint32_t len, bool exclusive)
{
	uint64_t h = sl_hash(sl->seed, start, len);
	struct sl_node *n = hx_find(hx_shard_for(sl->shards, h), h, start, len);
	if (n == NULL)
		return sl_seek(sl, start, len, exclusive);
	return exclusive ? next_ptr(MANTIS_LOAD_ACQ(&n->next[0])) : n;
}

/* Splices n into level 0 (which publishes it to scans), its tower's
 * successors stored first from succs[]; a failed CAS (pred moved on or
 * got marked) searches again and retries.  Returns whether it searched,
 * which leaves preds/succs filled on every level. */
static inline bool
sl_splice0(mantis_skiplist *sl, struct sl_node *n, struct sl_node **preds,
	   struct sl_node **succs)
{
	for (bool searched = false;; searched = true) {
		for (uint32_t i = 0; i < n->height; i++)
			MANTIS_STORE_REL(&n->next[i], (uintptr_t)succs[i]);
		/* Node contents (key, tower, rec) visible before the node. */
		ck_pr_fence_store();
		/* Level 0 publishes the node; fails if pred moved on. */
		if (cas_word(&preds[0]->next[0], (uintptr_t)succs[0], (uintptr_t)n))
			return searched;
		sl_find(sl, sl_node_key(n), n->klen, preds, succs);
	}
}

/* Splices n into every level of its tower, starting from hint h when it is
 * current (gen matches) and leaving h describing the splice around n.
 * Caller holds shard(n) lock, so no other writer can touch n (it is not
 * in the index yet); h belongs to the caller's epoch slot. */
static void
sl_link(mantis_skiplist *sl, struct sl_node *n, struct sl_hint *h, uint64_t gen)
{
	struct sl_node *preds[SL_MAX_HEIGHT], *succs[SL_MAX_HEIGHT];
	const uint8_t *key = sl_node_key(n);
	uint32_t filled = h->gen == gen
				  ? sl_find_hinted(sl, h, key, n->klen, n->height, preds, succs)
				  : (sl_find(sl, key, n->klen, preds, succs), SL_MAX_HEIGHT);
	if (sl_splice0(sl, n, preds, succs))
		filled = SL_MAX_HEIGHT;
	for (uint32_t lvl = 1; lvl < n->height; lvl++) {
		/* Upper levels are hints for searches; a failure only means
		 * the neighbourhood changed: search again and retry.  n's
		 * level-lvl successor is (re)stored before every attempt:
		 * a retry at a lower level refreshed succs[] for every level,
		 * so what the loop above stored may be stale, and a splice
		 * CAS against the fresh succs[lvl] with the stale n->next[lvl]
		 * would drop every node between the two from level lvl (and
		 * strand them: a search dropping into that chain could walk
		 * into nodes retired since).  Plain store: n is not reachable
		 * at lvl until the CAS, which is a full barrier. */
		for (;;) {
			MANTIS_STORE_REL(&n->next[lvl], (uintptr_t)succs[lvl]);
			if (cas_word(&preds[lvl]->next[lvl], (uintptr_t)succs[lvl],
				     (uintptr_t)n))
				break;
			sl_find(sl, key, n->klen, preds, succs);
			filled = SL_MAX_HEIGHT;
		}
	}
	/* The splice around n: n precedes the successors it was linked
	 * before; above its tower, the search's own levels (kept from the
	 * old hint where this search did not fill them, if that was whole). */
	if (filled > h->filled) /* a stale hint is only replaced by a full one */
		h->filled = filled;
	for (uint32_t i = 0; i < filled; i++) {
		h->preds[i] = i < n->height ? n : preds[i];
		h->succs[i] = succs[i];
	}
	h->gen = gen;
}

/* Freezes every level of n, top down, so no splice can go through it. */
static void
sl_mark_tower(struct sl_node *n)
{
	for (int i = (int)n->height - 1; i >= 0; i--) {
		for (;;) {
			uintptr_t v = MANTIS_LOAD_ACQ(&n->next[i]);
			/* Set MARK; retry if a splice after n changed next[i]. */
			if ((v & SL_MARK) || cas_word(&n->next[i], v, v | SL_MARK))
				break;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

static mantis_status
check_key(const void *key, size_t klen)
{
	if (key == NULL || klen == 0)
		return MANTIS_INVALID;
	if (klen > MANTIS_MAX_KEY_SIZE)
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

mantis_status
mantis_skiplist_new(mantis_skiplist **out)
{
	if (out == NULL)
		return MANTIS_INVALID;
	mantis_skiplist *sl = mantis_aligned_alloc(64, sizeof(*sl));
	if (sl == NULL)
		return MANTIS_NOMEM;
	memset(sl, 0, sizeof(*sl));
	sl->head = node_new(NULL, 0, SL_MAX_HEIGHT, NULL, NULL);
	if (sl->head == NULL) {
		mantis_free(sl, sizeof(*sl));
		return MANTIS_NOMEM;
	}
	mantis_epoch_init(&sl->epoch);
	sl->seed = mantis_seed_new(sl);
	*out = sl;
	return MANTIS_OK;
}

/*
 * Test hook: checks the list's shape while no call runs on sl (quiescent):
 * every level strictly sorted, no MARKed pointer reachable (every removal
 * finished unlinking, invariant 5), no node reachable on a level above its
 * tower, and every node of level 0 reachable on every level of its tower
 * (a splice never loses a node).  Returns the number of violations found
 * and names the first through *what (a static string; "" when none).
 */
size_t
sl_check_structure(const mantis_skiplist *sl, const char **what)
{
	size_t bad = 0;
	*what = "";
#define SL_BAD(msg)                       \
	do {                              \
		if (bad++ == 0)           \
			*what = (msg);    \
	} while (0)
	for (uint32_t lvl = 0; lvl < SL_MAX_HEIGHT; lvl++) {
		const struct sl_node *p = sl->head;
		for (;;) {
			uintptr_t nx = p->next[lvl];
			if (nx & SL_MARK)
				SL_BAD("a marked link is still reachable");
			const struct sl_node *c = next_ptr(nx);
			if (c == NULL)
				break;
			if (c->height <= lvl)
				SL_BAD("a node is linked above its tower");
			if (p != sl->head && key_cmp(p, sl_node_key(c), c->klen) >= 0)
				SL_BAD("a level is out of order");
			p = c;
		}
		if (lvl == 0)
			continue;
		/* Merge walk: level lvl must be exactly the level-0 nodes of
		 * height > lvl, in the same order. */
		const struct sl_node *q = next_ptr(sl->head->next[lvl]);
		for (const struct sl_node *c = next_ptr(sl->head->next[0]); c != NULL;
		     c = next_ptr(c->next[0])) {
			if (c->height <= lvl)
				continue;
			if (q == c)
				q = next_ptr(q->next[lvl]);
			else
				SL_BAD("a node is missing from a level of its tower");
		}
		if (q != NULL)
			SL_BAD("a level holds a node level 0 does not");
	}
#undef SL_BAD
	return bad;
}

void
sl_path_stats(const mantis_skiplist *sl, uint64_t *searched, uint64_t *used)
{
	*searched = *used = 0;
	for (int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		*searched += (uint64_t)__atomic_load_n(&sl->local[i].paths_searched, __ATOMIC_RELAXED);
		*used += (uint64_t)__atomic_load_n(&sl->local[i].paths_used, __ATOMIC_RELAXED);
	}
}

uint64_t
sl_hash_seed(const mantis_skiplist *sl)
{
	return sl->seed;
}

void
sl_set_hash_seed(mantis_skiplist *sl, uint64_t seed)
{
	sl->seed = seed;
}

void
mantis_skiplist_free(mantis_skiplist *sl)
{
	if (sl == NULL)
		return;
	/* Runs every retired callback: deleted nodes are already unlinked
	 * (invariant 5), so the walk below sees only linked nodes. */
	mantis_epoch_destroy(&sl->epoch);
	struct sl_node *n = next_ptr(sl->head->next[0]);
	while (n != NULL) {
		struct sl_node *nx = next_ptr(n->next[0]);
		rec_free((struct sl_rec *)(n->rec & ~SL_HIDDEN));
		node_free(n);
		n = nx;
	}
	for (unsigned int i = 0; i < HX_SHARDS; i++)
		hx_destroy(&sl->shards[i]);
	node_free(sl->head);
	mantis_free(sl, sizeof(*sl));
}

/* Keys no address space holds (a node takes more than 2^5 bytes of the
 * 2^48 a user pointer spans): a reservation beyond it is refused before the
 * per-shard arithmetic can overflow. */
#define SL_RESERVE_MAX ((uint64_t)1 << 43)

mantis_status
mantis_skiplist_reserve(mantis_skiplist *sl, uint64_t keys)
{
	if (sl == NULL)
		return MANTIS_INVALID;
	if (keys > SL_RESERVE_MAX)
		return MANTIS_NOMEM;
	/* Shards are picked by hash bits, so each gets about keys/HX_SHARDS;
	 * the slack covers the spread (a few standard deviations for any
	 * shard count worth presizing), and hx_cap_for's load of at most 1/2
	 * leaves room to 3/4 before a rebuild anyway. */
	uint64_t per = keys / HX_SHARDS;
	per += per / 8 + 4;
	/* Refuse, before allocating, tables that physical memory cannot hold
	 * (with overcommit the allocations would succeed and zeroing them
	 * would wake the OOM killer instead of returning an error). */
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	if (pages > 0 && psize > 0 &&
	    hx_presize_bytes(per) > (uint64_t)pages / HX_SHARDS * (uint64_t)psize / 2)
		return MANTIS_NOMEM;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	mantis_status st = MANTIS_OK;
	/* Under each shard's lock like any writer, so a reservation is safe
	 * beside concurrent calls (readers see a rebuild as in any growth). */
	for (unsigned int i = 0; i < HX_SHARDS && st == MANTIS_OK; i++) {
		struct hx_shard *sh = &sl->shards[i];
		hx_lock(sh);
		if (!hx_presize(sh, per, slot, sl->seed))
			st = MANTIS_NOMEM;
		hx_unlock(sh);
	}
	mantis_epoch_exit(slot);
	return st;
}

/*
 * Swaps r in as n's record unless n is hidden (DEAD or PENDING).  On
 * success retires the old record and returns true.
 */
static bool
rec_swap(mantis_skiplist *sl, mantis_epoch_slot *slot, struct sl_node *n,
	 struct sl_rec *r)
{
	r->node = n;
	/* Record contents visible before the pointer to it. */
	ck_pr_fence_store();
	for (;;) {
		uintptr_t old = MANTIS_LOAD_ACQ(&n->rec);
		/* DEAD: deleted.  PENDING: its insert has not published it
		 * yet and holds the key's lock; the caller's locked path
		 * waits for that and then finds it published. */
		if (old & SL_HIDDEN)
			return false;
		/* The update's linearization point; fails only against another
		 * update or a delete of the same key. */
		if (cas_word(&n->rec, old, (uintptr_t)r)) {
			struct sl_rec *o = (struct sl_rec *)old;
			stats_add(sl, slot, 0, (int64_t)r->vlen - (int64_t)o->vlen);
			mantis_epoch_retire(slot, &o->entry, rec_reclaim_cb,
					    rec_size(o->vlen));
			return true;
		}
	}
}

/* The most hashes sl_prefetch_nodes takes at once (its stack array). */
#define SL_PREFETCH_MAX 64

uint64_t
sl_hash_prefetch(mantis_skiplist *sl, const void *key, size_t klen)
{
	uint64_t h = sl_hash(sl->seed, key, klen);
	hx_prefetch(hx_shard_for(sl->shards, h), h);
	return h;
}

uint64_t
sl_prefetch_nodes(mantis_skiplist *sl, const uint64_t *h, size_t n, bool want_absent)
{
	struct sl_node *nodes[SL_PREFETCH_MAX];
	uint64_t absent = 0;
	if (n > SL_PREFETCH_MAX)
		n = SL_PREFETCH_MAX;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	for (size_t i = 0; i < n; i++) {
		bool empty = false;
		nodes[i] = hx_peek(hx_shard_for(sl->shards, h[i]), h[i],
				   want_absent ? &empty : NULL);
		if (empty)
			absent |= (uint64_t)1 << i;
		/* Write hint: an update CASes the node's rec word. */
		if (nodes[i] != NULL)
			__builtin_prefetch(nodes[i], 1);
	}
	for (size_t i = 0; i < n; i++) {
		if (nodes[i] == NULL)
			continue;
		/* The node is allocated for this section (epoch); its record
		 * may be retired meanwhile, and a prefetch never faults.  Write
		 * hint: the update retires it through its entry, its first
		 * bytes. */
		uintptr_t r = MANTIS_LOAD_ACQ(&nodes[i]->rec) & ~SL_HIDDEN;
		if (r != 0)
			__builtin_prefetch((const void *)r, 1);
		/* The key the probe compares lies past the tower, often on a
		 * line the node's prefetch did not bring: blocks need not
		 * start on a line (of 48-byte blocks, half straddle two), and
		 * a tall tower or long key reaches further.  Its first and
		 * last bytes' lines; the header (height, klen) is loaded by
		 * now, and a key is never empty. */
		const uint8_t *k = sl_node_key(nodes[i]);
		__builtin_prefetch(k);
		__builtin_prefetch(k + nodes[i]->klen - 1);
	}
	mantis_epoch_exit(slot);
	return absent;
}

/* Starts the miss of a list step onto node n: the line of its header and
 * tower base, which holds a short key too when the node's first 64 bytes
 * do not straddle two lines. */
static inline void
prefetch_step(const struct sl_node *n)
{
	if (n != NULL)
		__builtin_prefetch(n);
}

/*
 * Lockstep searches.  A random insert's writer search is a chain of
 * dependent misses, one per node it steps onto (a few per level, over
 * ~log4(n) levels, each also a TLB miss in a big list): one search cannot
 * overlap its own misses.  Searches for different keys can: each cursor
 * below takes one step per round and prefetches the node its next step
 * reads, so a round's misses are in flight together, n at a time.
 *
 * Each search records, per level, the last node < its key and the first
 * node after it (sl_seek's path; unlike sl_descend's, a succ may be
 * marked, even a DEAD node of the key, since nothing is snipped) as a
 * splice hint (struct sl_hint) built under the retire_gen read after this
 * section's enter: the same guard, and the same argument, as a slot's own
 * hint.  The insert that then uses it (sl_put_hashed, sl_link) checks
 * everything as for a slot's hint: keys by strict comparison, adjacency
 * by its splice CAS; a level an earlier insert of the batch changed fails
 * those checks and is searched again.  Read-only, like sl_seek.
 *
 * Termination: a cursor either steps to a node with a smaller key than
 * its own or drops a level (lock-free, as sl_seek).
 */
void
sl_find_paths(mantis_skiplist *sl, const uint8_t *const *keys, const uint32_t *klens,
	      size_t n, struct sl_hint *paths)
{
	struct cursor {
		const uint8_t *key;
		uint32_t klen;
		int lvl;
		struct sl_node *x;  /* last node < key on level lvl */
		struct sl_node *nx; /* x's successor there, not yet compared */
		struct sl_hint *path;
	} c[SL_PREFETCH_MAX];
	/* Beyond the cursors: no splice (filled 0), a full search. */
	for (size_t i = SL_PREFETCH_MAX; i < n; i++)
		paths[i].filled = 0;
	if (n > SL_PREFETCH_MAX)
		n = SL_PREFETCH_MAX;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	/* After enter's full fence, before any node is read (struct sl_hint). */
	uint64_t gen = __atomic_load_n(&sl->retire_gen, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < n; i++) {
		paths[i].gen = gen;
		paths[i].filled = SL_MAX_HEIGHT;
		/* The head is cached: the first round drops through the
		 * levels it leads nowhere on without a miss. */
		c[i] = (struct cursor){keys[i], klens[i], SL_MAX_HEIGHT - 1, sl->head,
				       next_ptr(MANTIS_LOAD_ACQ(&sl->head->next[SL_MAX_HEIGHT - 1])),
				       &paths[i]};
	}
	/* Each round moves every unfinished cursor by one node (a miss
	 * started last round); finished ones are swapped out of [0, live). */
	for (size_t live = n; live > 0;) {
		for (size_t i = 0; i < live;) {
			struct cursor *k = &c[i];
			bool done = false;
			for (;;) {
				if (k->nx != NULL && key_cmp(k->nx, k->key, k->klen) < 0) {
					k->x = k->nx;
					k->nx = next_ptr(MANTIS_LOAD_ACQ(&k->x->next[k->lvl]));
					break;
				}
				k->path->preds[k->lvl] = k->x;
				k->path->succs[k->lvl] = k->nx;
				if (k->lvl == 0) {
					done = true;
					break;
				}
				/* Down a level from x (cached).  Its successor
				 * there is often the node just compared (>= key):
				 * then down again without a miss. */
				struct sl_node *d = next_ptr(MANTIS_LOAD_ACQ(&k->x->next[--k->lvl]));
				if (d != k->nx) {
					k->nx = d;
					break;
				}
			}
			if (done) {
				c[i] = c[--live];
				continue;
			}
			prefetch_step(k->nx);
			i++;
		}
	}
	local_count(&local_of(sl, slot)->paths_searched, (int64_t)n);
	mantis_epoch_exit(slot);
}

mantis_status
mantis_skiplist_put(mantis_skiplist *sl, const void *key, size_t klen,
		    const void *value, size_t vlen, uint64_t seq,
		    uint64_t expires_at)
{
	/* The checks in sl_put_hashed's order, those before hashing here. */
	if (sl == NULL || (value == NULL && vlen != 0))
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	return sl_put_hashed(sl, key, klen, value, vlen, seq, expires_at,
			     sl_hash(sl->seed, key, klen), false, NULL);
}

mantis_status
sl_put_hashed(mantis_skiplist *sl, const void *key, size_t klen, const void *value,
	      size_t vlen, uint64_t seq, uint64_t expires_at, uint64_t h, bool warm,
	      struct sl_hint *path)
{
	if (sl == NULL || (value == NULL && vlen != 0))
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	if (vlen > MANTIS_MAX_VALUE_SIZE)
		return MANTIS_TOO_LARGE;

	struct hx_shard *sh = hx_shard_for(sl->shards, h);
	/* Start the index slot's cache miss now, so it overlaps entering the
	 * section and building the record and node (a prefetch of a table
	 * retired meanwhile is harmless: it cannot fault). */
	hx_prefetch(sh, h);
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	/* After enter's full fence: the splice hint's guard (struct sl_hint). */
	uint64_t gen = __atomic_load_n(&sl->retire_gen, __ATOMIC_SEQ_CST);
	struct sl_rec *r = rec_new(value, vlen, seq, expires_at, NULL);
	if (r == NULL) {
		mantis_epoch_exit(slot);
		return MANTIS_NOMEM;
	}
	/* Cold (a lone put): the node too is built before the index is
	 * probed, so the slot's miss (prefetched above) overlaps both
	 * allocations instead of stalling the insert before the second; an
	 * update then frees it unused, one small malloc/free pair, and
	 * failing to allocate it fails only an insert.  Warm (the caller
	 * prefetched the slot and the node it leads to: a batch window,
	 * sl_prefetch_nodes): the probe costs no miss to overlap, so an
	 * update is tried first and the node is built only for an insert. */
	struct sl_node *nn = warm ? NULL : node_new(key, (uint32_t)klen, random_height(), r, NULL);
	/* Fast path: the key exists, swap its record without locking. */
	struct sl_node *n = hx_find(sh, h, key, (uint32_t)klen);
	if (n != NULL && rec_swap(sl, slot, n, r)) {
		if (nn != NULL)
			node_free(nn); /* never published */
		goto out;
	}
	if (nn == NULL)
		nn = node_new(key, (uint32_t)klen, random_height(), r, NULL);
	if (nn == NULL) {
		rec_free(r);
		st = MANTIS_NOMEM;
		goto out;
	}
	hx_lock(sh);
	n = hx_find(sh, h, key, (uint32_t)klen);
	if (n != NULL) {
		/* Inserted meanwhile by another thread, and published: the
		 * insert clears PENDING before it unlocks.  Under the lock no
		 * delete can make it DEAD (invariant 3), so the swap succeeds. */
		bool ok = rec_swap(sl, slot, n, r);
		hx_unlock(sh);
		(void)ok;
		node_free(nn); /* never published */
	} else if (!hx_reserve(sh, slot, sl->seed)) {
		hx_unlock(sh);
		node_free(nn);
		rec_free(r);
		st = MANTIS_NOMEM;
	} else {
		/* r is nn's: a swap attempted above on a node found hidden
		 * pointed it at that node. */
		r->node = nn;
		/* Hidden until the store below: scans that reach it once it is
		 * linked, and gets that find it once it is indexed, skip it.
		 * nn is unpublished, so a plain store (sl_link's fence orders
		 * it before the splice). */
		nn->rec = (uintptr_t)r | SL_PENDING;
		/* The batch's path for this key, unless an earlier retirement
		 * made it stale (then the slot's own hint, which sl_link uses
		 * only if that is current; sl_link's gen check is the safety
		 * guard, this one only picks the fallback).  sl_link leaves
		 * the splice around nn in whichever it was given. */
		bool use = path != NULL && path->gen == gen;
		if (use)
			local_count(&local_of(sl, slot)->paths_used, 1);
		sl_link(sl, nn, use ? path : &local_of(sl, slot)->hint, gen);
		hx_insert(sh, nn, h);
		/* The insert's linearization point: clearing PENDING makes the
		 * key live to both read paths at once.  Release: r->node and
		 * the index slot (hx_insert) are visible before the record is,
		 * so a reader that sees it live and then probes the index finds
		 * the node.  A plain store suffices: under the lock nothing
		 * else writes a PENDING node's rec (rec_swap refuses it). */
		MANTIS_STORE_REL(&nn->rec, (uintptr_t)r);
		hx_unlock(sh);
		stats_add(sl, slot, 1, (int64_t)(klen + vlen));
	}
out:
	mantis_epoch_exit(slot);
	return st;
}

/*
 * Integer add (mantis_db_add_int).  The value is read as Redis reads a
 * counter (string2ll): a canonical decimal int64, "0" or an optional '-'
 * then a digit 1-9 and at most 19 more digits, no sign '+', no spaces, no
 * leading zeros, within [INT64_MIN, INT64_MAX].  Anything else is not an
 * integer to it (and so not to the Go callers, which share the rule).
 */
static bool
parse_canonical_int(const uint8_t *p, uint32_t len, int64_t *out)
{
	if (len == 0 || len > 20)
		return false;
	if (len == 1 && p[0] == '0') {
		*out = 0;
		return true;
	}
	uint32_t i = 0;
	bool neg = p[0] == '-';
	if (neg)
		i = 1;
	if (i >= len || p[i] < '1' || p[i] > '9')
		return false;
	/* Accumulate the magnitude as unsigned: INT64_MIN's does not fit
	 * an int64. */
	uint64_t v = 0;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return false;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v;
	}
	return true;
}

/* Writes v in decimal into buf (at least SL_INT_MAX_LEN bytes); returns
 * the length. */
#define SL_INT_MAX_LEN 20
static uint32_t
format_int(int64_t v, uint8_t *buf)
{
	uint8_t tmp[SL_INT_MAX_LEN];
	uint32_t n = 0;
	/* The magnitude as unsigned, so INT64_MIN formats too. */
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (uint8_t)('0' + m % 10);
		m /= 10;
	} while (m != 0);
	uint32_t len = 0;
	if (v < 0)
		buf[len++] = '-';
	while (n > 0)
		buf[len++] = tmp[--n];
	return len;
}

/*
 * sl_add_int: key's value plus delta, as one write.  The caller serialises
 * the writes of each key (mantis.h, consistency rule 3), so between the
 * load of the record and the CAS that replaces it no other put, delete or
 * add of key runs; the one writer that may still race it is a sweep
 * reclaiming the record it read (expired at the sweep's clock, which may
 * be later than `now`).  That CAS then fails (the node is DEAD) and the
 * add starts over, finding the key absent.  So the add is linearizable at
 * its CAS (an update) or at the insert's publication (an absent key),
 * and the value it writes is computed from the record current at that
 * point.  A live record keeps its expiry; an expired or absent one counts
 * as 0 and the new value has none (as Redis's INCR on a missing key).
 */
mantis_status
sl_add_int(mantis_skiplist *sl, const void *key, size_t klen, uint64_t h, int64_t delta,
	   uint64_t now, uint32_t max_value, bool warm, struct sl_hint *path, int64_t *result,
	   mantis_add_outcome *outcome)
{
	uint8_t buf[SL_INT_MAX_LEN];
	struct hx_shard *sh = hx_shard_for(sl->shards, h);
	for (;;) {
		mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
		struct sl_node *n = hx_find(sh, h, key, (uint32_t)klen);
		uintptr_t old = n != NULL ? MANTIS_LOAD_ACQ(&n->rec) : SL_HIDDEN;
		int64_t cur = 0;
		uint64_t exp = 0;
		struct sl_rec *o = (struct sl_rec *)(old & ~(uintptr_t)SL_HIDDEN);
		bool live = !(old & SL_HIDDEN) && !sl_rec_expired(o, now);
		if (live) {
			if (!parse_canonical_int(o->value, o->vlen, &cur)) {
				mantis_epoch_exit(slot);
				*outcome = MANTIS_ADD_NOT_INTEGER;
				return MANTIS_OK;
			}
			exp = o->expires_at;
		}
		if ((delta > 0 && cur > INT64_MAX - delta) ||
		    (delta < 0 && cur < INT64_MIN - delta)) {
			mantis_epoch_exit(slot);
			*outcome = MANTIS_ADD_OVERFLOW;
			return MANTIS_OK;
		}
		int64_t v = cur + delta;
		uint32_t vlen = format_int(v, buf);
		if (vlen > max_value) {
			mantis_epoch_exit(slot);
			return MANTIS_TOO_LARGE;
		}
		if (!live) {
			/* Absent, expired, or hidden (a delete or sweep under
			 * way): a put of the new value, which waits out an insert
			 * or delete in progress on the shard lock.  An expired
			 * record it replaces is one the sweep has not reclaimed
			 * yet; replacing it is the put's update. */
			mantis_epoch_exit(slot);
			mantis_status st = sl_put_hashed(sl, key, klen, buf, vlen, 0, 0, h,
							 warm, path);
			if (st == MANTIS_OK) {
				*result = v;
				*outcome = MANTIS_ADD_OK;
			}
			return st;
		}
		struct sl_rec *r = rec_new(buf, vlen, 0, exp, NULL);
		if (r == NULL) {
			mantis_epoch_exit(slot);
			return MANTIS_NOMEM;
		}
		r->node = n;
		/* Record contents visible before the pointer to it. */
		ck_pr_fence_store();
		/* The add's linearization point (an update's CAS, from exactly
		 * the record it read). */
		if (cas_word(&n->rec, old, (uintptr_t)r)) {
			stats_add(sl, slot, 0, (int64_t)vlen - (int64_t)o->vlen);
			mantis_epoch_retire(slot, &o->entry, rec_reclaim_cb, rec_size(o->vlen));
			mantis_epoch_exit(slot);
			*result = v;
			*outcome = MANTIS_ADD_OK;
			return MANTIS_OK;
		}
		/* A sweep reclaimed it meanwhile: start over. */
		rec_free(r);
		mantis_epoch_exit(slot);
	}
}

/* ------------------------------------------------------------------------ */
/* Bulk append (loading sorted input)                                       */
/* ------------------------------------------------------------------------ */

/* Index slots are prefetched this many entries ahead of the insert that
 * fills them: each is a miss at a random address (the hash spreads
 * ascending keys everywhere), and issuing them early overlaps them with
 * the copying and linking of the entries in between. */
#define SL_APPEND_AHEAD 16

/*
 * The last node of every level, into tails[] (head where a level is
 * empty).  false when the walk met a marked pointer or the last node is
 * hidden: a removal has not finished unlinking, so the map is not
 * quiescent and mantis_skiplist_append must not run (its caller broke the
 * contract, or a test is probing it); the caller then appends nothing.
 */
static bool
sl_tails(mantis_skiplist *sl, struct sl_node **tails)
{
	struct sl_node *x = sl->head;
	for (int lvl = SL_MAX_HEIGHT - 1; lvl >= 0; lvl--) {
		for (;;) {
			uintptr_t v = MANTIS_LOAD_ACQ(&x->next[lvl]);
			if (v & SL_MARK)
				return false;
			if (v == 0)
				break;
			x = next_ptr(v);
		}
		tails[lvl] = x;
	}
	return x == sl->head || !(MANTIS_LOAD_ACQ(&x->rec) & SL_HIDDEN);
}

mantis_status
sl_build(const mantis_skiplist *sl, const mantis_skiplist_entry *e, struct sl_built *out,
	 mantis_alloc_tally *t)
{
	mantis_status st = check_key(e->key, e->key_len);
	if (st != MANTIS_OK)
		return st;
	if (e->value == NULL && e->value_len != 0)
		return MANTIS_INVALID;
	if (e->value_len > MANTIS_MAX_VALUE_SIZE)
		return MANTIS_TOO_LARGE;
	struct sl_rec *r = rec_new(e->value, e->value_len, e->seq, e->expires_at, t);
	struct sl_node *n =
	    r == NULL ? NULL : node_new(e->key, (uint32_t)e->key_len, random_height(), r, t);
	if (n == NULL) {
		rec_free(r); /* counted now, its allocation at t's flush */
		return MANTIS_NOMEM;
	}
	out->node = n;
	out->hash = sl_hash(sl->seed, e->key, e->key_len);
	out->vlen = (uint32_t)e->value_len;
	return MANTIS_OK;
}

void
sl_build_free(struct sl_node *n)
{
	if (n == NULL)
		return;
	rec_free((struct sl_rec *)n->rec);
	node_free(n);
}

/* Starts the misses of entry b's turn: its index slot (a random address:
 * the hash spreads ascending keys everywhere) and its node, built maybe on
 * another core, which the append reads (key, height) and later writes
 * (the next entry's links), hence the write hint. */
static inline void
append_prefetch(mantis_skiplist *sl, const struct sl_built *b)
{
	hx_prefetch(hx_shard_for(sl->shards, b->hash), b->hash);
	__builtin_prefetch(b->node, 1);
}

/*
 * Why plain stores suffice (contract in mantis.h: no other call runs on
 * sl): nobody can splice after, mark or snip the last node of a level
 * meanwhile, which is all the insert path's CAS and lock guard against,
 * and no reader can observe the instant between a node's linking and its
 * indexing, which the insert path hides behind PENDING.  When the call
 * returns, on success or error, every invariant holds for what it added:
 * 1, each key is compared with the one before it (the map's last key
 * first) and linked only if greater, so every level stays strictly
 * sorted; 2 and 3, a key greater than the map's last has no node and no
 * index entry, and gets exactly one node, linked at every level of its
 * tower before it is indexed; 4, records are published live (never
 * PENDING: there is no moment to hide); 6, the fence and release stores
 * below (the nodes may have been built on another thread: whoever handed
 * them over ordered their contents before this call, and the fence
 * orders them before the links for this list's readers).  Nodes and
 * records are allocated one by one as put's are (sl_build), so delete,
 * update and sweep reclaim them exactly as put's.
 */
mantis_status
sl_append_built(mantis_skiplist *sl, const struct sl_built *b, size_t n, size_t *appended)
{
	mantis_status st = MANTIS_OK;
	size_t i = 0;
	int64_t bytes = 0;
	struct sl_node *tails[SL_MAX_HEIGHT];
	*appended = 0;
	if (n == 0)
		return MANTIS_OK;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	if (!sl_tails(sl, tails))
		goto out;
	/* The key every appended key must exceed (none while the map is empty). */
	const struct sl_node *last = tails[0] == sl->head ? NULL : tails[0];
	for (size_t j = 0; j < n && j < SL_APPEND_AHEAD; j++)
		append_prefetch(sl, &b[j]);
	for (; i < n; i++) {
		struct sl_node *nn = b[i].node;
		uint64_t h = b[i].hash;
		if (i + SL_APPEND_AHEAD < n)
			append_prefetch(sl, &b[i + SL_APPEND_AHEAD]);
		if (last != NULL && key_cmp(last, sl_node_key(nn), nn->klen) >= 0)
			break; /* not after the map's last key: the caller's put */
		struct hx_shard *sh = hx_shard_for(sl->shards, h);
		/* Room first, so that nothing linked below can fail to be
		 * indexed (a no-op check once the index is presized). */
		if (!hx_reserve(sh, slot, sl->seed)) {
			st = MANTIS_NOMEM;
			break;
		}
		/* Node contents (key, tower, rec, record) visible before the node
		 * is reachable (invariant 6); nn->next[] is all NULL, nn is the
		 * new end of every level of its tower. */
		ck_pr_fence_store();
		for (uint32_t l = 0; l < nn->height; l++) {
			MANTIS_STORE_REL(&tails[l]->next[l], (uintptr_t)nn);
			tails[l] = nn;
		}
		hx_insert(sh, nn, h);
		last = nn;
		bytes += (int64_t)nn->klen + b[i].vlen;
	}
out:
	if (i != 0)
		stats_add(sl, slot, (int64_t)i, bytes);
	mantis_epoch_exit(slot);
	*appended = i;
	return st;
}

/* Entries built per sl_append_built call by mantis_skiplist_append. */
#define SL_APPEND_GROUP 64

mantis_status
mantis_skiplist_append(mantis_skiplist *sl, const mantis_skiplist_entry *e, size_t n,
		       size_t *appended)
{
	if (sl == NULL || appended == NULL || (e == NULL && n != 0))
		return MANTIS_INVALID;
	*appended = 0;
	struct sl_built g[SL_APPEND_GROUP];
	mantis_alloc_tally t = {0, 0};
	size_t done = 0;
	mantis_status st = MANTIS_OK;
	while (done < n) {
		size_t k = 0;
		while (k < SL_APPEND_GROUP && done + k < n &&
		       (st = sl_build(sl, &e[done + k], &g[k], &t)) == MANTIS_OK)
			k++;
		mantis_alloc_flush(&t);
		size_t linked = 0;
		mantis_status lst = sl_append_built(sl, g, k, &linked);
		for (size_t j = linked; j < k; j++)
			sl_build_free(g[j].node);
		done += linked;
		if (lst != MANTIS_OK || linked < k) {
			st = lst; /* OK when stopped by key order */
			break;
		}
		if (st != MANTIS_OK)
			break; /* entry `done` failed to build */
	}
	*appended = done;
	return st;
}

/* Steps 4-5 of a delete: n is DEAD (its last record old), out of the index
 * and its tower marked.  Inside the caller's section on slot, no lock
 * held. */
static void
sl_unlink_retire(mantis_skiplist *sl, mantis_epoch_slot *slot, struct sl_node *n,
		 struct sl_rec *old)
{
	struct sl_node *preds[SL_MAX_HEIGHT], *succs[SL_MAX_HEIGHT];
	sl_find(sl, sl_node_key(n), n->klen, preds, succs);
	stats_add(sl, slot, -1, -(int64_t)(n->klen + old->vlen));
	/* Invalidates every splice hint before the retirement (seq_cst RMW:
	 * ordered before ck_epoch_call, see struct sl_hint). */
	__atomic_fetch_add(&sl->retire_gen, 1, __ATOMIC_SEQ_CST);
	/* The last record's entry retires both (struct sl_rec): it is DEAD,
	 * so no update can replace and retire it on its own. */
	mantis_epoch_retire(slot, &old->entry, node_reclaim_cb,
			    sl_node_size(n->height, n->klen) + rec_size(old->vlen));
}

/* Steps 2-3 of a delete: n, just made DEAD under the lock of its shard sh
 * (hash: its key's), leaves the index, its tower is marked, sh unlocked.
 * Inside the caller's section on slot. */
static void
sl_unindex(mantis_skiplist *sl, mantis_epoch_slot *slot, struct hx_shard *sh,
	   struct sl_node *n, uint64_t hash)
{
	hx_remove(sh, n, hash, slot, sl->seed);
	sl_mark_tower(n);
	hx_unlock(sh);
}

/*
 * Finishes removing n, whose rec the caller just CASed from live record
 * `old` to DEAD under the lock of its shard sh (hash: its key's): takes it
 * out of the index, marks its tower, unlocks sh, unlinks it from every
 * level (invariant 5) and retires it.  Inside the caller's section on
 * `slot`.
 */
static void
sl_remove_dead(mantis_skiplist *sl, mantis_epoch_slot *slot,
	       struct hx_shard *sh, struct sl_node *n, uint64_t hash, struct sl_rec *old)
{
	sl_unindex(sl, slot, sh, n, hash);
	sl_unlink_retire(sl, slot, n, old);
}

/* Step 1 of a delete, under the lock of n's shard, n found in the index:
 * the CAS of its rec to DEAD (the linearization point), retried only
 * against a lock-free update that swapped the record first.  Returns the
 * live record it hid. */
static struct sl_rec *
sl_kill(struct sl_node *n)
{
	uintptr_t old;
	do
		old = MANTIS_LOAD_ACQ(&n->rec);
	while (!cas_word(&n->rec, old, old | SL_DEAD));
	return (struct sl_rec *)old;
}

mantis_status
mantis_skiplist_delete(mantis_skiplist *sl, const void *key, size_t klen)
{
	if (sl == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	return sl_delete_hashed(sl, key, klen, sl_hash(sl->seed, key, klen));
}

mantis_status
sl_delete_hashed(mantis_skiplist *sl, const void *key, size_t klen, uint64_t h)
{
	if (sl == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	struct hx_shard *sh = hx_shard_for(sl->shards, h);
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);

	/* Absent in the index means absent (invariant 2): no lock needed. */
	struct sl_node *n = hx_find(sh, h, key, (uint32_t)klen);
	if (n == NULL) {
		st = MANTIS_NOT_FOUND;
		goto out;
	}
	hx_lock(sh);
	n = hx_find(sh, h, key, (uint32_t)klen);
	if (n == NULL) {
		hx_unlock(sh);
		st = MANTIS_NOT_FOUND;
		goto out;
	}
	sl_remove_dead(sl, slot, sh, n, h, sl_kill(n));
out:
	mantis_epoch_exit(slot);
	return st;
}

/*
 * A start longer than any key can be (a caller's cursor after a
 * maximum-length key is that key plus a byte) positions where memcmp order
 * says instead of failing.  With p = start[:MANTIS_MAX_KEY_SIZE], a stored
 * key k (len(k) <= len(p)) is >= start, and > start, exactly when k > p:
 * if p is a prefix of k then k == p < start; otherwise they differ inside
 * p.  So position strictly after p.
 */
static void
clamp_start(size_t *len, bool *exclusive)
{
	if (*len > MANTIS_MAX_KEY_SIZE) {
		*len = MANTIS_MAX_KEY_SIZE;
		*exclusive = true;
	}
}

mantis_status
mantis_skiplist_sweep(mantis_skiplist *sl, uint64_t now, const void *start,
		      size_t start_len, size_t max_visit, void *next_buf,
		      size_t next_cap, size_t *next_len, size_t *reclaimed)
{
	if (sl == NULL || next_len == NULL || reclaimed == NULL ||
	    (start == NULL && start_len != 0) || (next_buf == NULL && next_cap != 0))
		return MANTIS_INVALID;
	bool exclusive = false;
	clamp_start(&start_len, &exclusive);
	mantis_status st = MANTIS_OK;
	size_t visited = 0, freed = 0;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *n = start_len == 0
				    ? next_ptr(MANTIS_LOAD_ACQ(&sl->head->next[0]))
				    : sl_scan_start(sl, start, (uint32_t)start_len, exclusive);
	for (; n != NULL && visited < max_visit; visited++) {
		uintptr_t r = MANTIS_LOAD_ACQ(&n->rec);
		if (!(r & SL_HIDDEN) && sl_rec_expired((const struct sl_rec *)r, now)) {
			uint64_t h = sl_hash(sl->seed, sl_node_key(n), n->klen);
			struct hx_shard *sh = hx_shard_for(sl->shards, h);
			hx_lock(sh);
			/* Still THE node of its key (inv. 2), and still holding
			 * the expired record: a put that swapped in a fresh one
			 * makes the CAS fail, and that put wins.  The CAS is the
			 * reclaim's linearization point, as for a delete. */
			if (hx_find(sh, h, sl_node_key(n), n->klen) == n &&
			    cas_word(&n->rec, r, r | SL_DEAD)) {
				/* n stays allocated for this section, and its
				 * frozen next[0] is still a valid way on. */
				sl_remove_dead(sl, slot, sh, n, h, (struct sl_rec *)r);
				freed++;
			} else {
				hx_unlock(sh);
			}
		}
		n = next_ptr(MANTIS_LOAD_ACQ(&n->next[0]));
	}
	*next_len = 0;
	if (n != NULL) {
		*next_len = n->klen;
		if (n->klen > next_cap)
			st = MANTIS_BUFFER_TOO_SMALL;
		else
			memcpy(next_buf, sl_node_key(n), n->klen);
	}
	mantis_epoch_exit(slot);
	/* Maintenance point: free what idle slots still hold (epoch.h, 3). */
	(void)mantis_epoch_reclaim(&sl->epoch);
	*reclaimed = freed;
	return st;
}

/* The live, unexpired record of key (its node in *np), or NULL.  Inside a
 * section.  (Hashing and prefetching the index slot before entering the
 * section, as put does, measured slower for get (`bench_skiplist`'s
 * get_hit row): the section's fence appears to wait for the prefetch, and
 * a get has no work of its own to overlap it with.) */
static const struct sl_rec *
lookup(mantis_skiplist *sl, const void *key, size_t klen, uint64_t now,
       struct sl_node **np)
{
	uint64_t h = sl_hash(sl->seed, key, klen);
	struct sl_node *n = hx_find(hx_shard_for(sl->shards, h), h, key, (uint32_t)klen);
	if (n == NULL)
		return NULL;
	*np = n;
	uintptr_t r = MANTIS_LOAD_ACQ(&n->rec); /* get's linearization point */
	if ((r & SL_HIDDEN) || sl_rec_expired((const struct sl_rec *)r, now))
		return NULL;
	return (const struct sl_rec *)r;
}

mantis_status
mantis_skiplist_get(mantis_skiplist *sl, const void *key, size_t klen,
		    uint64_t now, void *buf, size_t cap, size_t *vlen,
		    uint64_t *seq, uint64_t *expires_at)
{
	if (sl == NULL || vlen == NULL || (buf == NULL && cap != 0))
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *n;
	const struct sl_rec *r = lookup(sl, key, klen, now, &n);
	if (r == NULL) {
		st = MANTIS_NOT_FOUND;
	} else {
		*vlen = r->vlen;
		if (seq != NULL)
			*seq = r->seq;
		if (expires_at != NULL)
			*expires_at = r->expires_at;
		if (r->vlen > cap)
			st = MANTIS_BUFFER_TOO_SMALL;
		else if (r->vlen != 0)
			memcpy(buf, r->value, r->vlen);
	}
	mantis_epoch_exit(slot);
	return st;
}

static void
make_entry(mantis_skiplist_entry *e, const struct sl_node *n, const struct sl_rec *r)
{
	e->key = sl_node_key(n);
	e->key_len = n->klen;
	e->value = r->value;
	e->value_len = r->vlen;
	e->seq = r->seq;
	e->expires_at = r->expires_at;
}

mantis_status
mantis_skiplist_get_view(mantis_skiplist *sl, const void *key, size_t klen,
			 uint64_t now,
			 void (*fn)(void *arg, const mantis_skiplist_entry *e),
			 void *arg)
{
	if (sl == NULL || fn == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_key(key, klen);
	if (st != MANTIS_OK)
		return st;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *n;
	const struct sl_rec *r = lookup(sl, key, klen, now, &n);
	if (r == NULL) {
		st = MANTIS_NOT_FOUND;
	} else {
		mantis_skiplist_entry e;
		make_entry(&e, n, r);
		fn(arg, &e);
	}
	mantis_epoch_exit(slot);
	return st;
}

/*
 * Whether node n (reached inside the current section) is one a scan
 * returns after prev (NULL: the first): live, unexpired, and with a key
 * strictly greater than prev's.  Its record in *rp when so.
 */
static inline bool
live_after(const struct sl_node *n, const struct sl_node *prev, uint64_t now,
	   const struct sl_rec **rp)
{
	uintptr_t r = MANTIS_LOAD_ACQ(&n->rec);
	if ((r & SL_HIDDEN) || sl_rec_expired((const struct sl_rec *)r, now))
		return false;
	/* A DEAD node and its successor of the same key may both be
	 * linked; strict order keeps the scan duplicate-free. */
	if (prev != NULL && key_cmp(n, sl_node_key(prev), prev->klen) <= 0)
		return false;
	*rp = (const struct sl_rec *)r;
	return true;
}

/*
 * Walks level 0 from n (a node reached inside the current section) and
 * returns the first live, unexpired node with a key strictly greater than
 * the previous one returned (prev, may be NULL), with its record in *rp.
 */
static struct sl_node *
next_live(struct sl_node *n, const struct sl_node *prev, uint64_t now,
	  const struct sl_rec **rp)
{
	for (; n != NULL; n = next_ptr(MANTIS_LOAD_ACQ(&n->next[0]))) {
		/* A level-0 walk is one dependent miss per node, plus the
		 * record's.  Prefetch what the walk will need: the next node,
		 * this record, and, when n has a second level, the node ~4
		 * steps ahead (its next[1]), which starts misses the chain
		 * could not start yet.  Hints only (relaxed loads; prefetch
		 * cannot fault). */
		__builtin_prefetch(next_ptr(__atomic_load_n(&n->next[0], __ATOMIC_RELAXED)));
		if (n->height > 1)
			__builtin_prefetch(next_ptr(__atomic_load_n(&n->next[1], __ATOMIC_RELAXED)));
		__builtin_prefetch((const void *)(__atomic_load_n(&n->rec, __ATOMIC_RELAXED) &
						  ~SL_HIDDEN));
		if (live_after(n, prev, now, rp))
			return n;
	}
	return NULL;
}

/*
 * Runs: the level-0 walk of a long scan, several stretches at once.
 *
 * A level-0 walk is a chain of dependent cache misses (the next node's
 * address is in the node), so a scan of a large list whose nodes lie
 * scattered in memory (inserted in random order) waits for one miss per
 * key.  Stretches of level 0 that start at different nodes are
 * independent chains: a run reads up to SL_RUN_SEGS consecutive nodes of
 * level SL_RUN_LEVEL (anchors, one node in 4^SL_RUN_LEVEL), then walks the
 * level-0 segments between them in lockstep, each segment one step per
 * round with its next node and the node's record prefetched, so the
 * segments' misses overlap; then it hands the nodes to the scan in list
 * order, through the same live_after test as next_live.
 *
 * Anchor 0 is a node the plain walk reached on level 0 whose rec, read
 * with acquire, was neither PENDING nor DEAD.  Not PENDING: the read
 * synchronizes with the release store that cleared the bit, which came
 * after every splice of its tower (invariant 4), so the next[SL_RUN_LEVEL]
 * read after it is at least that splice's.  Not DEAD: its tower is marked
 * only after the DEAD CAS (invariant 3), which that read did not see, so
 * the next[SL_RUN_LEVEL] read after it is its successor on that level
 * either now or at a marking inside the section.  Either way a real step
 * along the level, to a node that was on it inside the section, and so is
 * every later anchor, read along the level from the one before ("Readers"
 * above, level by level).  (A hidden node may be on level 0 only: a
 * PENDING one before its upper splices, a DEAD one a search has already
 * snipped from its upper levels.  Its next[SL_RUN_LEVEL] may lead to a
 * node unlinked, and retired, before the scan's section began: keys after
 * it would be skipped and freed memory read.  So the hand-over waits for a
 * visible tall node.)
 *
 * Every anchor was then also on level 0 inside the section, because a
 * node joins its levels bottom up (sl_link) and leaves them top down: the
 * only unlink is a search's snip (sl_descend); a full search passes a key
 * on level i+1 before it snips on level i, and a hinted one descends below
 * level l only after checking that its bracket is adjacent there (so the
 * nodes it then passes are already off level l and every level above).
 *
 * Segment j starts at anchor j and ends before anchor j+1, or before the
 * first node taller than SL_RUN_LEVEL whose key is greater than anchor
 * j+1's, or at NULL (the last segment of the list ends there).  What
 * correctness needs is that no stop comes before a key of the segment:
 * anchor j+1 is the exact end, and the key test only bounds how far a
 * segment runs past an anchor it cannot meet (one unlinked from level 0
 * after the level walk read it): it stops at a tall node past that
 * anchor's key, and live_after's strict order drops what the next segment
 * then returns again.
 *
 * Why a scan by runs still returns every key present throughout, once and
 * in order.  The plain walk rests on this: a level-0 walk from a node that
 * was on level 0 inside the scan's section (following next[0], marked or
 * not) reaches every key greater than that node's that is present
 * throughout, before any node with a greater key.  A key k present
 * throughout with anchor j <= k < anchor j+1 (by key) is so reached from
 * anchor j, and no stop condition holds before it: anchor j+1 and the tall
 * nodes the key test stops at are greater, or equal to k only where a DEAD
 * node precedes the live node of its key (invariant 1), which then starts
 * segment j+1 or lies after its start.  Segments are handed over in order,
 * each in list order: the scan sees the nodes of a plain walk from anchor
 * 0, some perhaps twice, in non-decreasing key order apart from a repeated
 * stretch, which strict order removes.
 *
 * A segment keeps at most SL_RUN_CAP nodes; a longer one is finished by a
 * plain walk (nothing prefetched) when its turn comes.  Everything happens
 * inside the scan's one epoch section.
 *
 * The sizes: a level-2 anchor starts a segment of about 16 nodes (the
 * towers grow with p = 1/4), few enough anchors that their own chain of
 * misses is short beside the segments' overlapped ones; 32 segments keep
 * more misses in flight than a core can track, so the core, not the run,
 * is the limit; a cap of four mean segments makes a plain finish rare.
 * Runs start after SL_RUN_AFTER entries (skiplist.h), with 8 segments,
 * doubling: a run reads its segments whole before it hands any node
 * over, and the first ones also read anchors, so they pay off only over
 * a few hundred entries; a scan that stops sooner (a page or two of a
 * range query) never starts one, and one that stops inside a run has read
 * at most that run past its end.  struct sl_run (about 17 KiB) lives on
 * the scanning thread's stack.
 */
#define SL_RUN_SEGS 32
#define SL_RUN_CAP 64
/* Records are prefetched this many nodes before the hand-over reads them:
 * one record is up to three lines, and the copy out takes its time. */
#define SL_RUN_AHEAD 8
_Static_assert(SL_RUN_SEGS <= 32, "run_fill keeps the active segments in a 32-bit mask");

struct sl_run {
	struct sl_node *anchor[SL_RUN_SEGS + 1];
	struct sl_node *node[SL_RUN_SEGS][SL_RUN_CAP];
	struct sl_node *rest[SL_RUN_SEGS]; /* where a full segment goes on; NULL: ended */
	uint32_t len[SL_RUN_SEGS];
	uint32_t segs;
};

/* Whether node p ends a segment that runs to anchor end (NULL: to the end
 * of the list).  Reads p: call once p's line has been prefetched. */
static inline bool
run_ends(const struct sl_node *p, const struct sl_node *end)
{
	if (p == NULL || p == end)
		return true;
	return end != NULL && p->height > SL_RUN_LEVEL &&
	       key_cmp(p, sl_node_key(end), end->klen) > 0;
}

/*
 * Reads up to want segments starting at anchor a into run; returns the
 * anchor the next run starts at, NULL when the last segment reached the
 * end of the list.  a is taller than SL_RUN_LEVEL and was on that level
 * inside this section: anchor 0 as "Runs" says, or an anchor a run
 * returned.
 */
static struct sl_node *
run_fill(struct sl_run *run, struct sl_node *a, uint32_t want)
{
	uint32_t k = 0;
	run->anchor[0] = a;
	while (k < want && a != NULL) {
		/* The level walk is a dependent chain too, 4^SL_RUN_LEVEL times
		 * shorter; a taller anchor's next level starts the miss of an
		 * anchor ~4 ahead. */
		if (a->height > SL_RUN_LEVEL + 1)
			__builtin_prefetch(next_ptr(
				__atomic_load_n(&a->next[SL_RUN_LEVEL + 1], __ATOMIC_RELAXED)));
		a = next_ptr(MANTIS_LOAD_ACQ(&a->next[SL_RUN_LEVEL]));
		run->anchor[++k] = a;
	}
	run->segs = k;
	struct sl_node *pos[SL_RUN_SEGS];
	uint32_t active = 0;
	for (uint32_t j = 0; j < k; j++) {
		pos[j] = run->anchor[j];
		run->len[j] = 0;
		run->rest[j] = NULL;
		if (j > 0)
			__builtin_prefetch(pos[j]);
		active |= 1u << j;
	}
	while (active != 0) {
		for (uint32_t j = 0; j < k; j++) {
			if (!(active & (1u << j)))
				continue;
			struct sl_node *p = pos[j];
			if (run_ends(p, run->anchor[j + 1])) {
				active &= ~(1u << j);
				continue;
			}
			if (run->len[j] == SL_RUN_CAP) {
				run->rest[j] = p;
				active &= ~(1u << j);
				continue;
			}
			run->node[j][run->len[j]++] = p;
			struct sl_node *nx = next_ptr(MANTIS_LOAD_ACQ(&p->next[0]));
			__builtin_prefetch(nx);
			pos[j] = nx;
		}
	}
	return run->anchor[k];
}

/* Hands n, live with record r, to the scan's callback; false when the
 * callback asked to stop. */
static inline bool
scan_visit_node(const struct sl_node *n, const struct sl_rec *r, const struct sl_node **prev,
		bool (*fn)(void *, const mantis_skiplist_entry *), void *arg, size_t *count)
{
	mantis_skiplist_entry e;
	make_entry(&e, n, r);
	(*count)++;
	*prev = n;
	return fn(arg, &e);
}

/* A position in a filled run's nodes, in list order. */
struct run_cursor {
	uint32_t seg, i;
};

/* Prefetches the record of the node at c (its header and the first lines
 * of its value), then moves c on; nothing at the end of the run. */
static inline void
run_prefetch_rec(const struct sl_run *run, struct run_cursor *c)
{
	while (c->seg < run->segs && c->i >= run->len[c->seg]) {
		c->seg++;
		c->i = 0;
	}
	if (c->seg >= run->segs)
		return;
	const char *r = (const char *)(__atomic_load_n(&run->node[c->seg][c->i]->rec,
						       __ATOMIC_RELAXED) &
				       ~SL_HIDDEN);
	__builtin_prefetch(r);
	__builtin_prefetch(r + 64);
	__builtin_prefetch(r + 128);
	c->i++;
}

/* The rest of a scan by runs, from anchor a; see "Runs" above. */
static void
scan_runs(struct sl_node *a, const struct sl_node *prev, uint64_t now,
	  bool (*fn)(void *, const mantis_skiplist_entry *), void *arg, size_t *count)
{
	struct sl_run run;
	const struct sl_rec *r;
	/* Start small and double: a scan that stops soon has read few
	 * nodes past its end. */
	uint32_t want = 8;
	while (a != NULL) {
		struct sl_node *next = run_fill(&run, a, want);
		/* The records are read only here: each step prefetches the
		 * record SL_RUN_AHEAD nodes on (c marks it).  Not in run_fill,
		 * whose rounds already start a miss per segment. */
		struct run_cursor c = {0};
		for (uint32_t k = 0; k < SL_RUN_AHEAD; k++)
			run_prefetch_rec(&run, &c);
		for (uint32_t j = 0; j < run.segs; j++) {
			for (uint32_t i = 0; i < run.len[j]; i++) {
				run_prefetch_rec(&run, &c);
				const struct sl_node *p = run.node[j][i];
				if (live_after(p, prev, now, &r) &&
				    !scan_visit_node(p, r, &prev, fn, arg, count))
					return;
			}
			for (struct sl_node *p = run.rest[j]; !run_ends(p, run.anchor[j + 1]);
			     p = next_ptr(MANTIS_LOAD_ACQ(&p->next[0])))
				if (live_after(p, prev, now, &r) &&
				    !scan_visit_node(p, r, &prev, fn, arg, count))
					return;
		}
		a = next;
		want = want * 2 < SL_RUN_SEGS ? want * 2 : SL_RUN_SEGS;
	}
}

mantis_status
mantis_skiplist_scan(mantis_skiplist *sl, const void *start, size_t start_len,
		     bool exclusive, uint64_t now,
		     bool (*fn)(void *arg, const mantis_skiplist_entry *e),
		     void *arg, size_t *visited)
{
	if (sl == NULL || fn == NULL || (start == NULL && start_len != 0))
		return MANTIS_INVALID;
	clamp_start(&start_len, &exclusive);
	size_t count = 0;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	/* An empty start is "before the first key" (exclusive or not). */
	struct sl_node *n = start_len == 0
				    ? next_ptr(MANTIS_LOAD_ACQ(&sl->head->next[0]))
				    : sl_scan_start(sl, start, (uint32_t)start_len, exclusive);
	const struct sl_node *prev = NULL;
	const struct sl_rec *r;
	while ((n = next_live(n, prev, now, &r)) != NULL) {
		if (!scan_visit_node(n, r, &prev, fn, arg, &count))
			break;
		n = next_ptr(MANTIS_LOAD_ACQ(&n->next[0]));
		/* A long scan goes on by runs from its next tall node that is
		 * visible (neither PENDING nor DEAD: see "Runs"); the nodes
		 * before it, walked here, are below its key. */
		if (count >= SL_RUN_AFTER && n != NULL && n->height > SL_RUN_LEVEL &&
		    !(MANTIS_LOAD_ACQ(&n->rec) & SL_HIDDEN)) {
			scan_runs(n, prev, now, fn, arg, &count);
			break;
		}
	}
	mantis_epoch_exit(slot);
	if (visited != NULL)
		*visited = count;
	return MANTIS_OK;
}

mantis_status
mantis_skiplist_iter_new(mantis_skiplist *sl, mantis_skiplist_iter **out)
{
	if (sl == NULL || out == NULL)
		return MANTIS_INVALID;
	mantis_skiplist_iter *it = mantis_malloc(sizeof(*it));
	if (it == NULL)
		return MANTIS_NOMEM;
	memset(it, 0, sizeof(*it));
	it->sl = sl;
	*out = it;
	return MANTIS_OK;
}

void
mantis_skiplist_iter_free(mantis_skiplist_iter *it)
{
	if (it == NULL)
		return;
	mantis_free(it->key, it->kcap);
	mantis_free(it, sizeof(*it));
}

/* Makes room for a position key of len bytes; false on NOMEM (unchanged). */
static bool
iter_reserve(mantis_skiplist_iter *it, size_t len)
{
	if (len <= it->kcap)
		return true;
	size_t cap = it->kcap < 32 ? 32 : it->kcap;
	while (cap < len)
		cap *= 2;
	uint8_t *k = mantis_malloc(cap);
	if (k == NULL)
		return false;
	if (it->klen != 0)
		memcpy(k, it->key, it->klen);
	mantis_free(it->key, it->kcap);
	it->key = k;
	it->kcap = cap;
	return true;
}

mantis_status
mantis_skiplist_iter_seek(mantis_skiplist_iter *it, const void *key, size_t klen)
{
	if (it == NULL || (key == NULL && klen != 0))
		return MANTIS_INVALID;
	bool exclusive = false;
	clamp_start(&klen, &exclusive);
	if (!iter_reserve(it, klen))
		return MANTIS_NOMEM;
	if (klen != 0)
		memcpy(it->key, key, klen);
	it->klen = klen;
	it->positioned = klen != 0;
	it->exclusive = exclusive;
	return MANTIS_OK;
}

mantis_status
mantis_skiplist_iter_next(mantis_skiplist_iter *it, uint64_t now,
			  void (*fn)(void *arg, const mantis_skiplist_entry *e),
			  void *arg)
{
	if (it == NULL || fn == NULL)
		return MANTIS_INVALID;
	mantis_skiplist *sl = it->sl;
	mantis_status st = MANTIS_OK;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *n = it->positioned
				    ? sl_scan_start(sl, it->key, (uint32_t)it->klen, it->exclusive)
				    : next_ptr(MANTIS_LOAD_ACQ(&sl->head->next[0]));
	const struct sl_rec *r;
	n = next_live(n, NULL, now, &r);
	if (n == NULL) {
		st = MANTIS_END;
	} else if (!iter_reserve(it, n->klen)) {
		st = MANTIS_NOMEM;
	} else {
		memcpy(it->key, sl_node_key(n), n->klen);
		it->klen = n->klen;
		it->positioned = true;
		it->exclusive = true;
		mantis_skiplist_entry e;
		make_entry(&e, n, r);
		fn(arg, &e);
	}
	mantis_epoch_exit(slot);
	return st;
}

mantis_status
mantis_skiplist_stats_get(mantis_skiplist *sl, mantis_skiplist_stats *out)
{
	if (sl == NULL || out == NULL)
		return MANTIS_INVALID;
	int64_t keys = 0, bytes = 0;
	for (int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		keys += __atomic_load_n(&sl->local[i].keys, __ATOMIC_RELAXED);
		bytes += __atomic_load_n(&sl->local[i].bytes, __ATOMIC_RELAXED);
	}
	/* A snapshot under concurrent writers can be momentarily negative. */
	out->keys = keys < 0 ? 0 : (uint64_t)keys;
	out->bytes = bytes < 0 ? 0 : (uint64_t)bytes;
	return MANTIS_OK;
}

mantis_status
mantis_skiplist_quiesce(mantis_skiplist *sl)
{
	if (sl == NULL)
		return MANTIS_INVALID;
	mantis_epoch_quiesce(&sl->epoch);
	return MANTIS_OK;
}

mantis_status
mantis_skiplist_random_key(mantis_skiplist *sl, uint64_t seed, uint64_t now, unsigned draws,
			   void *buf, size_t cap, size_t *klen)
{
	if (sl == NULL || klen == NULL || (buf == NULL && cap != 0) || draws == 0)
		return MANTIS_INVALID;
	mantis_status st = MANTIS_OK;
	uint64_t rng = seed;
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	const struct sl_rec *r;
	const struct sl_node *n = hx_sample(sl->shards, &rng, now, draws, &r);
	if (n == NULL) {
		st = MANTIS_NOT_FOUND;
	} else {
		*klen = n->klen; /* the key is immutable; the section keeps it */
		if (n->klen > cap)
			st = MANTIS_BUFFER_TOO_SMALL;
		else
			memcpy(buf, sl_node_key(n), n->klen);
	}
	mantis_epoch_exit(slot);
	return st;
}

/* ---- test hooks (skiplist.h) ------------------------------------------- */

uint32_t
sl_test_height(mantis_skiplist *sl, const void *key, uint32_t klen)
{
	uint64_t h = sl_hash(sl->seed, key, klen);
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *n = hx_find(hx_shard_for(sl->shards, h), h, key, klen);
	uint32_t height = n != NULL ? n->height : 0;
	mantis_epoch_exit(slot);
	return height;
}

bool
sl_test_insert_stalled(mantis_skiplist *sl, const void *key, uint32_t klen, uint32_t height,
		       struct sl_stalled *out)
{
	if (height < 1 || height > SL_MAX_HEIGHT || sl_test_height(sl, key, klen) != 0)
		return false;
	struct sl_rec *r = rec_new(NULL, 0, 0, 0, NULL);
	struct sl_node *n = r != NULL ? node_new(key, klen, height, r, NULL) : NULL;
	if (n == NULL) {
		rec_free(r);
		return false;
	}
	n->rec = (uintptr_t)r | SL_PENDING;
	out->node = n;
	out->deleting = false;
	out->slot = mantis_epoch_enter(&sl->epoch);
	struct sl_node *preds[SL_MAX_HEIGHT], *succs[SL_MAX_HEIGHT];
	sl_find(sl, key, klen, preds, succs);
	(void)sl_splice0(sl, n, preds, succs);
	return true;
}

bool
sl_test_delete_stalled(mantis_skiplist *sl, const void *key, uint32_t klen,
		       struct sl_stalled *out)
{
	uint64_t h = sl_hash(sl->seed, key, klen);
	struct hx_shard *sh = hx_shard_for(sl->shards, h);
	mantis_epoch_slot *slot = mantis_epoch_enter(&sl->epoch);
	hx_lock(sh);
	struct sl_node *n = hx_find(sh, h, key, klen);
	if (n == NULL) {
		hx_unlock(sh);
		mantis_epoch_exit(slot);
		return false;
	}
	(void)sl_kill(n);
	sl_unindex(sl, slot, sh, n, h);
	/* Snip n from its upper levels, as a search that passes it there and
	 * drops to level 0 past it does. */
	for (uint32_t lvl = n->height - 1; lvl > 0; lvl--) {
		struct sl_node *p = sl->head;
		while (p != NULL && next_ptr(MANTIS_LOAD_ACQ(&p->next[lvl])) != n)
			p = next_ptr(MANTIS_LOAD_ACQ(&p->next[lvl]));
		/* Single-threaded use: n is on every level of its tower and its
		 * predecessor unmarked, so neither fails unless the list was
		 * used otherwise. */
		if (p == NULL ||
		    !cas_word(&p->next[lvl], (uintptr_t)n, MANTIS_LOAD_ACQ(&n->next[lvl]) & ~SL_MARK)) {
			mantis_epoch_exit(slot);
			return false;
		}
	}
	*out = (struct sl_stalled){.node = n, .slot = slot, .deleting = true};
	return true;
}

void
sl_test_stalled_end(mantis_skiplist *sl, struct sl_stalled *st)
{
	if (st->deleting)
		sl_unlink_retire(sl, st->slot, st->node,
				 (struct sl_rec *)(MANTIS_LOAD_ACQ(&st->node->rec) & ~SL_HIDDEN));
	mantis_epoch_exit(st->slot);
}
