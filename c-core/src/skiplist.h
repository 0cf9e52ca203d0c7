/*
 * skiplist.h -- private: the node and record layout shared by the ordered
 * list (skiplist.c) and its hash index (hindex.c).  The protocol that ties
 * them together, the invariants and the linearization points are in the
 * header comment of skiplist.c.
 */
#ifndef MANTIS_SKIPLIST_PRIV_H
#define MANTIS_SKIPLIST_PRIV_H

#include <mantis.h>

#include "alloc.h"

#include <ck_epoch.h>
#include <ck_pr.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SL_MAX_HEIGHT 20 /* branching 4: 4^20 keys before towers saturate */

/*
 * A record: one immutable version of a value.  Replaced as a whole by one
 * CAS on node->rec; never written after publication.
 *
 *   +----------------+-----+------------+------+------+-------------+
 *   | epoch entry 16 | seq | expires_at | node | vlen | value bytes |
 *   +----------------+-----+------------+------+------+-------------+
 *
 * The epoch entry retires the record when an update replaces it, or, for a
 * node's last record (the one its delete marked DEAD, which no CAS can
 * replace any more), the node and the record together: `node` leads that
 * callback back to the node, so nodes carry no epoch hook of their own.
 */
struct sl_rec {
	ck_epoch_entry_t entry;
	uint64_t seq;
	uint64_t expires_at; /* Unix ns, 0 = never */
	struct sl_node *node; /* the node it was published in */
	uint32_t vlen;
	uint8_t value[];
};

/* Whether record r has expired at now (Unix ns). */
static inline bool
sl_rec_expired(const struct sl_rec *r, uint64_t now)
{
	return r->expires_at != 0 && r->expires_at <= now;
}

/*
 * A node: one key, its tower, its current record.  Everything a get touches
 * (rec, klen, and for short keys the key itself) sits in the node's first
 * 64 bytes, one cache line only when the block starts on one (of 48-byte
 * blocks, half straddle two); a list step touches rec..next[level] and the
 * key.
 *
 *   0        8      12      16              16+8h
 *   +--------+------+-------+--- ... -------+-----+
 *   |  rec   | klen |height | next[0..h-1]  | key |
 *   +--------+------+-------+--- ... -------+-----+
 *    ^ bit 0 = DEAD          next[i] low bit = MARK
 *      bit 1 = PENDING       (level i frozen)
 *      (not yet published)
 *
 * klen, height and the key are immutable after the node is linked.
 * Nothing else: the node is retired through its last record's epoch entry
 * (struct sl_rec), and its key's hash is recomputed where it is needed
 * (delete and sweep hash the key anyway), so a 16-byte key with a
 * one-level tower is 40 bytes (48 in Debian's mimalloc, whose small size
 * classes step by 16 bytes; a two-level one is 48, where it was 64).
 * Small nodes matter more than they seem: a descent touches one line per
 * node, but the nodes of a big list are spread over (node size x keys) of
 * memory, and every page of it is a TLB entry (a 2-D walk in a VM).
 * Putting the first value inline in the node (one allocation per insert)
 * made gets of never-updated keys ~25% faster but random inserts ~25%
 * slower (192-byte nodes instead of 80), so values stay apart.
 */
struct sl_node {
	uintptr_t rec; /* struct sl_rec * | SL_DEAD | SL_PENDING */
	uint32_t klen;
	uint32_t height;
	uintptr_t next[]; /* struct sl_node * | SL_MARK */
};

#define SL_DEAD ((uintptr_t)1)
/* An inserted node is born PENDING: linked and indexed but live to no
 * reader until the insert clears the bit (skiplist.c, "Linearization
 * points").  Records are at least 8-byte aligned, so bits 0-2 are free. */
#define SL_PENDING ((uintptr_t)2)
/* Bits that make a node's key absent to readers. */
#define SL_HIDDEN (SL_DEAD | SL_PENDING)
#define SL_MARK ((uintptr_t)1)

/*
 * memcmp order, shorter first on a common prefix: the one key order of the
 * core (the list and the engine's scan bounds).  Inlined 8 bytes at a
 * time (byte-swapped so integer order is memcmp order): a list step
 * compares one short key, and a libc memcmp call costs more than the
 * comparison itself (it showed up in insert profiles).
 */
static inline int
sl_bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl, i = 0;
	for (; i + 8 <= m; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
#endif
			return x < y ? -1 : 1;
		}
	}
	for (; i < m; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return (al > bl) - (al < bl);
}

static inline uint8_t *
sl_node_key(const struct sl_node *n)
{
	return (uint8_t *)&n->next[n->height];
}

static inline size_t
sl_node_size(uint32_t height, uint32_t klen)
{
	return sizeof(struct sl_node) + (size_t)height * sizeof(uintptr_t) + klen;
}

/* ------------------------------------------------------------------------ */
/* Hash index: key -> the node, sharded, single writer per shard            */
/* ------------------------------------------------------------------------ */

#define HX_SHARD_BITS 10
#define HX_SHARDS (1u << HX_SHARD_BITS)

struct hx_table;

struct hx_shard {
	unsigned int lock; /* serialises every writer of this shard */
	/* struct hx_table * | log2(capacity), 0 when empty; RCU-published
	 * (hindex.c says why the capacity rides in the low bits). */
	uintptr_t tabw;
	/* The current table's live entries and tombstones: writer-only,
	 * under lock.  Here rather than in the table so that a writer's
	 * room check and count touch this line and its slot, not a third
	 * line on another page (the table's header). */
	uint64_t used;
	uint64_t tombs;
	char pad[64 - 4 * sizeof(uint64_t)];
};
_Static_assert(sizeof(struct hx_shard) == 64, "one shard per cache line");

/* Pause-spins before a waiter starts yielding its CPU (hx_lock). */
#define HX_SPINS 1024

/*
 * Test-and-test-and-set spinlock.  Not ck_spinlock_fas: its spin loop is a
 * volatile load, which TSan sees as a plain access racing with the atomic
 * swap; these builtins are the same instructions and TSan understands them.
 * Held only for one list splice, so spinning beats sleeping, for a while:
 * with more runnable threads than cores (a Go program's usual state, or a
 * shared machine) the holder may be preempted, and a waiter that only
 * spins burns its whole time slice.  After HX_SPINS pauses it yields
 * instead (1M ascending inserts on 2 threads, load ~2 on 2 cores: 688-783
 * -> 597-638 ns/op per thread).
 */
static inline void
hx_lock(struct hx_shard *sh)
{
	unsigned int spins = 0;
	while (__atomic_exchange_n(&sh->lock, 1u, __ATOMIC_ACQUIRE) != 0)
		while (__atomic_load_n(&sh->lock, __ATOMIC_RELAXED) != 0) {
			if (++spins < HX_SPINS)
				ck_pr_stall();
			else
				sched_yield();
		}
}

static inline void
hx_unlock(struct hx_shard *sh)
{
	__atomic_store_n(&sh->lock, 0u, __ATOMIC_RELEASE);
}

struct mantis_epoch_slot;

static inline struct hx_shard *
hx_shard_for(struct hx_shard *shards, uint64_t hash)
{
	return &shards[hash >> (64 - HX_SHARD_BITS)];
}

/* Lock-free lookup; inside an epoch section.  NULL when absent. */
struct sl_node *hx_find(const struct hx_shard *sh, uint64_t hash,
			const void *key, uint32_t klen);
/* Prefetches the index slot where a probe for hash starts; inside an epoch
 * section.  A hint only: it changes nothing. */
void hx_prefetch(const struct hx_shard *sh, uint64_t hash);
/* The node a probe for hash would most likely end at (the first slot
 * whose tag matches; the key is not compared), or NULL.  With empty, the
 * probe runs to a tag match or an empty slot, and *empty says it met the
 * empty slot: no key of that hash was indexed when the slots were read;
 * without, it looks at a few slots only (a prefetch's guess).  Inside an
 * epoch section.  For prefetching and hints only: the node may be
 * another key's. */
struct sl_node *hx_peek(const struct hx_shard *sh, uint64_t hash, bool *empty);
/* Writers, under sh->lock.  reserve makes room for one more entry so that
 * the following insert cannot fail; false on allocation failure. */
bool hx_reserve(struct hx_shard *sh, struct mantis_epoch_slot *slot, uint64_t seed);
/* Under sh->lock: grows the table so that n entries fit without a further
 * rebuild (never shrinks; no table is made for what the minimum capacity
 * holds).  false on allocation failure, shard unchanged. */
bool hx_presize(struct hx_shard *sh, uint64_t n, struct mantis_epoch_slot *slot, uint64_t seed);
/* Bytes of the table hx_presize(n) allocates; n must be < 2^60. */
uint64_t hx_presize_bytes(uint64_t n);
void hx_insert(struct hx_shard *sh, struct sl_node *n, uint64_t hash);
void hx_remove(struct hx_shard *sh, struct sl_node *n, uint64_t hash,
	       struct mantis_epoch_slot *slot, uint64_t seed);
/* Frees the shard's table now (destruction only). */
void hx_destroy(struct hx_shard *sh);
/*
 * A node drawn uniformly among the indexed nodes whose record is live and
 * unexpired at `now` (its record in *rp), or NULL when `draws` uniform
 * slot draws over all HX_SHARDS shards found none (the index is empty or
 * too sparse in live keys: not proof that no key is live).  *rng is a
 * splitmix64 state, advanced.  Lock-free, inside an epoch section, like
 * hx_find.  hindex.c says why the pick is uniform and safe.
 */
struct sl_node *hx_sample(const struct hx_shard *shards, uint64_t *rng, uint64_t now,
			  unsigned draws, const struct sl_rec **rp);

/* Keyed hash of a key (hindex.c says why keyed).  Never persisted. */
uint64_t sl_hash(uint64_t seed, const void *key, size_t len);
/* Test hooks (not in mantis.h): the list's seed, and replacing it, which is
 * allowed only while the list is empty and no other call runs. */
uint64_t sl_hash_seed(const mantis_skiplist *sl);
void sl_set_hash_seed(mantis_skiplist *sl, uint64_t seed);
/*
 * Hash once, for a caller that walks many keys (engine.c, mantis_db_apply):
 * sl_hash_prefetch returns sl_hash of key under sl's seed and starts the
 * miss of the index slot a probe for it begins at (a hint: it reads only
 * the seed and the shard's table word, changes nothing, and may run
 * outside an epoch section).  sl_prefetch_nodes, given n such hashes
 * whose slots were prefetched, prefetches the nodes those slots likely
 * point at and then those nodes' records and keys (what a put's update
 * reads and writes, and the probe compares), each step a pass over all n
 * so that their misses overlap; a hint as well (it enters its own epoch
 * section to read the slots and nodes, and writes nothing).  sl_put_hashed and sl_delete_hashed are
 * mantis_skiplist_put and mantis_skiplist_delete, same checks, results
 * and effects, for a caller that already has h; h must be that hash of
 * key under sl's seed (another value breaks the index's invariants).
 * warm says the caller prefetched h's slot and node (sl_prefetch_nodes):
 * sl_put_hashed then probes the index before allocating a node, so an
 * update of an existing key allocates only its record; results and
 * effects are the same either way.  path, when not NULL, is key's splice
 * from sl_find_paths: an insert starts from it (when still current)
 * instead of the slot's own hint; results and effects are the same.
 */
uint64_t sl_hash_prefetch(mantis_skiplist *sl, const void *key, size_t klen);
/* With absent, returns a mask of the hashes (bit i for h[i]) whose probe
 * met an empty slot before any node: keys an insert will add unless one
 * is added meanwhile (a hint, like the rest); without, 0, and each probe
 * stops after a few slots (hx_peek). */
uint64_t sl_prefetch_nodes(mantis_skiplist *sl, const uint64_t *h, size_t n, bool absent);
/*
 * A splice hint: where an insert of some key would be spliced in, per
 * level, as a search saw it.  What it is and why reading its nodes later
 * is safe: skiplist.c, above struct sl_local.
 */
struct sl_hint {
	uint64_t gen;	 /* retire_gen when built; valid only if equal */
	uint32_t filled; /* levels [0, filled) hold a consistent splice */
	struct sl_node *preds[SL_MAX_HEIGHT];
	struct sl_node *succs[SL_MAX_HEIGHT];
};
/*
 * The searches for keys[0..n), run in lockstep so that their cache
 * misses overlap, each leaving its splice in paths[i]: for a batch about
 * to insert keys the index does not hold, which passes each path to that
 * key's sl_put_hashed.  At most 64 are searched; paths past those hold
 * no splice (an insert with one searches from the head).  Reads only, in
 * its own epoch section; skiplist.c says how and why.
 */
void sl_find_paths(mantis_skiplist *sl, const uint8_t *const *keys, const uint32_t *klens,
		   size_t n, struct sl_hint *paths);
mantis_status sl_put_hashed(mantis_skiplist *sl, const void *key, size_t klen,
			    const void *value, size_t vlen, uint64_t seq,
			    uint64_t expires_at, uint64_t h, bool warm,
			    struct sl_hint *path);
/*
 * Adds delta to key's value read as a canonical decimal int64 and writes
 * the sum back in decimal, keeping a live record's expiry (an absent or
 * expired key counts as 0 and gets none).  h, warm and path as for
 * sl_put_hashed, which an add of an absent key is.  MANTIS_OK with *outcome:
 * MANTIS_ADD_OK (*result = the sum, written), MANTIS_ADD_NOT_INTEGER or
 * MANTIS_ADD_OVERFLOW (nothing written).  MANTIS_TOO_LARGE when the sum's
 * digits exceed max_value, MANTIS_NOMEM: nothing written.  The caller
 * serialises writes of key; skiplist.c says why that makes it atomic.
 */
mantis_status sl_add_int(mantis_skiplist *sl, const void *key, size_t klen, uint64_t h,
			 int64_t delta, uint64_t now, uint32_t max_value, bool warm,
			 struct sl_hint *path, int64_t *result, mantis_add_outcome *outcome);
mantis_status sl_delete_hashed(mantis_skiplist *sl, const void *key, size_t klen,
			       uint64_t h);
/*
 * Bulk append in two steps, so that the allocating half of a load can run
 * on other threads than the linking half (engine.c, mantis_db_load_build):
 * sl_build checks entry e as mantis_skiplist_append does and builds its
 * node and record, unreachable and owned by the caller, and the key's
 * index hash under sl's seed (any thread: it reads only the seed, fixed
 * once the list is made), counting its allocations in *t (alloc.h: the
 * caller flushes t before the nodes are linked or freed); sl_append_built appends b[0..n), in order, with
 * mantis_skiplist_append's contract and results (it stops at the first
 * node not after the list's last key; MANTIS_NOMEM if the index cannot
 * grow), taking ownership of the nodes it appended; the caller frees the
 * others with sl_build_free.  Handing nodes built on one thread to
 * another needs the usual happens-before (a join, a mutex, a channel).
 */
struct sl_built {
	struct sl_node *node;
	uint64_t hash; /* sl_hash of the node's key under the list's seed */
	uint32_t vlen; /* its record's value length (the linker's statistics) */
};
mantis_status sl_build(const mantis_skiplist *sl, const mantis_skiplist_entry *e,
		       struct sl_built *out, mantis_alloc_tally *t);
void sl_build_free(struct sl_node *n);
mantis_status sl_append_built(mantis_skiplist *sl, const struct sl_built *b, size_t n,
			      size_t *appended);
/* Test hook: batch splices searched (sl_find_paths, per key) and used by
 * an insert (offered while still current), summed over the epoch slots. */
void sl_path_stats(const mantis_skiplist *sl, uint64_t *searched, uint64_t *used);
/* A scan walks level 0 by runs of segments between nodes taller than
 * SL_RUN_LEVEL once it has returned SL_RUN_AFTER entries (skiplist.c,
 * "Runs"); here so that tests can build lists around them. */
#define SL_RUN_LEVEL 2
#define SL_RUN_AFTER 256

/*
 * Test hooks: the states a concurrent insert or delete passes through,
 * built directly so that a single-threaded test can hold one while it
 * makes other calls (no other thread may use the list meanwhile).  The
 * stalled call holds its epoch section, as the real one does, until
 * sl_test_stalled_end, which must come before the list is quiesced or
 * freed (either would wait for that section).  The insert takes no shard
 * lock, as the real one would.
 *   sl_test_height: the height of key's node in the index, 0 if none.
 *   sl_test_insert_stalled: an insert of key (absent) stopped after its
 *     level-0 splice: a PENDING node of the given height, linked on level
 *     0 only, its upper next[] the successors its search found.  It is
 *     never indexed or published; it stays on level 0 after the end and
 *     is freed with the list (free the list next).
 *   sl_test_delete_stalled: a delete of key (present) stopped after a
 *     search snipped its node from every level above 0: DEAD, out of the
 *     index, tower marked, still on level 0.  Its end runs the rest of the
 *     delete (the search that unlinks it, the retirement).
 * false: allocation failure, a height out of [1, SL_MAX_HEIGHT], a key
 * already present (insert), no such key (delete), or a list another
 * call changed meanwhile (delete).
 */
struct sl_stalled {
	struct sl_node *node;
	struct mantis_epoch_slot *slot;
	bool deleting;
};
uint32_t sl_test_height(mantis_skiplist *sl, const void *key, uint32_t klen);
bool sl_test_insert_stalled(mantis_skiplist *sl, const void *key, uint32_t klen,
			    uint32_t height, struct sl_stalled *out);
bool sl_test_delete_stalled(mantis_skiplist *sl, const void *key, uint32_t klen,
			    struct sl_stalled *out);
void sl_test_stalled_end(mantis_skiplist *sl, struct sl_stalled *st);
/* Quiescent shape check for tests (skiplist.c): violations found. */
size_t sl_check_structure(const mantis_skiplist *sl, const char **what);
/* The engine's list (engine.c), so tests can run that check on a db. */
const mantis_skiplist *engine_list(const mantis_db *db);

#endif /* MANTIS_SKIPLIST_PRIV_H */
