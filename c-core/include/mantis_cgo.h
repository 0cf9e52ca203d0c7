/*
 * mantis_cgo.h -- the Go packages' cgo entry points (go/storage, go/cache):
 * thin static inline shims over the mantis_db_* and mantis_cache_* calls
 * of the hot paths (mantis.h), with the handle as uintptr_t and byte
 * buffers as uint8_t pointers instead of an opaque struct pointer and
 * void *.  Not part of the C API: mantis.h is the one public header, and
 * nothing but the Go packages includes this one (it sits beside mantis.h
 * only so both packages reach it through the include path they use).
 *
 * Why: for every argument whose pointee might hold Go pointers (void * and
 * pointers to opaque structs), cgo inserts a runtime check
 * (_cgoCheckPointer) that walks the heap metadata of the value passed; a
 * native get paid three of them, a sizeable share of a cache-resident get
 * (bench/results/design-measurements.md, "cgo pointer checks").  A uint8_t buffer cannot hold a Go pointer and the handle is
 * C memory, so with these types cgo inserts no check: the saving that
 * GODEBUG=cgocheck=0 gave, without turning the check off for anything
 * else.  The shims are inlined into cgo's C stubs, so they add no call.
 * Go passes Go memory here only for the duration of a call and C never
 * keeps it.
 */
#ifndef MANTIS_CGO_H
#define MANTIS_CGO_H

#include <stdint.h>
#include <mantis.h>

static inline mantis_db *mgo_db(uintptr_t h) { return (mantis_db *)h; }

static inline mantis_status mgo_db_get(uintptr_t h, const uint8_t *key,
				    size_t key_len, uint64_t now, uint8_t *buf,
				    size_t cap, size_t *value_len)
{
	return mantis_db_get(mgo_db(h), key, key_len, now, buf, cap, value_len);
}

static inline mantis_status mgo_db_put(uintptr_t h, const uint8_t *key,
				    size_t key_len, const uint8_t *value,
				    size_t value_len, uint64_t expires_at)
{
	return mantis_db_put(mgo_db(h), key, key_len, value, value_len,
			     expires_at);
}

static inline mantis_status mgo_db_delete(uintptr_t h, const uint8_t *key,
				       size_t key_len)
{
	return mantis_db_delete(mgo_db(h), key, key_len);
}

/* The Go engine computes every record's CRC itself (record.go) or had
 * go/wal's reader decode and check every nested record of a replayed
 * BATCH (checkLogRecord), so the core does not check them again. */
static inline mantis_status mgo_db_apply(uintptr_t h, const uint8_t *batch,
				      size_t len, size_t *bad_offset)
{
	return mantis_db_apply_verified(mgo_db(h), batch, len, bad_offset);
}

static inline mantis_status mgo_db_add_int(uintptr_t h, const uint8_t *keys,
					const uint32_t *klens, const int64_t *deltas,
					size_t n, uint64_t now, int64_t *results,
					uint8_t *outcomes, size_t *done)
{
	return mantis_db_add_int(mgo_db(h), keys, klens, deltas, n, now, results,
				 outcomes, done);
}

/* atomic picks mantis_db_scan_entries, else its relaxed variant: one
 * call site in Go (native_iter.go, scan) for both. */
static inline mantis_status
mgo_db_scan_entries(uintptr_t h, bool atomic, const uint8_t *start, size_t start_len,
		    bool start_exclusive, const uint8_t *end, size_t end_len, uint64_t now,
		    uint8_t *buf, size_t cap, size_t budget, size_t max_count, size_t *out_len,
		    size_t *out_count, bool *out_done)
{
	return (atomic ? mantis_db_scan_entries : mantis_db_scan_entries_relaxed)(
	    mgo_db(h), start, start_len, start_exclusive, end, end_len, now, buf, cap, budget,
	    max_count, out_len, out_count, out_done);
}

/* go/cache */

static inline mantis_cache *mgo_cache(uintptr_t h) { return (mantis_cache *)h; }

/*
 * Reading the cache from Go (go/cache/native_read.go)
 * ----------------------------------------------------
 * Why: a cgo call costs more than the lookup of a resident key, and its
 * locked instructions (the Go scheduler's entersyscall/exitsyscall) keep
 * the CPU from overlapping one get's cache misses with the next one's.  So
 * go/cache reads the C table from Go, under the same reader protocol as
 * mantis_cache_get, and calls C only for what a read must not do alone.
 *
 * mgo_cache_layout_get describes the table to the Go reader: base
 * addresses, strides and field offsets of src/cache.c's private structs,
 * which Go reads through unsafe pointers.  Pointers in it stay valid until
 * mantis_cache_free; the offsets are fixed for the build.  Nothing in the
 * layout is a promise to anyone but go/cache, which is built against the
 * same library.
 *
 * The protocol the Go reader follows, step by step the one of
 * mantis_cache_get and cache_reader_enter/exit (src/cache.c,
 * src/cache_reclaim.c):
 *   R1. It owns host slot i (host_slots + i * slot_stride, i < host_nslots)
 *       while it holds Go's P number i pinned (runtime.procPin): no other
 *       goroutine runs on that P, so one owner writes the slot's words at a
 *       time, and a P is handed between OS threads only while unpinned, which
 *       orders the old owner's writes before the new one's.  With i >=
 *       host_nslots it calls mantis_cache_get instead.
 *   R2. Enter: seq (even) becomes seq + 1.  If `asym`, a plain store and
 *       nothing else: the writer's membarrier is the barrier (as
 *       cache_reader_enter); else a sequentially consistent store (Go's
 *       atomic.StoreUint64, an xchg), the reader's half of the Dekker pair.
 *   R3. Inside the section, loads only: the shard's table pointer and the
 *       slot words with acquire loads, then the entry's immutable fields
 *       (hash, expires_at, klen, vlen, key and value bytes; invariant 5 of
 *       cache.c).  The one store is the entry's freq, raised by one while
 *       below freq_max, as lookup does (a lost race costs an increment).
 *       The slot word format is cache.c's "Slot words": 0 empty, 1 TOMB,
 *       else the entry address in the low ptr_bits bits and bits 32..47 of
 *       the key hash above them.  The hash is hash_key's, which go/cache
 *       repeats (a test checks both agree through mgo_cache_hash).
 *   R4. A hit or a miss adds one to the slot's hits or misses (owner-only
 *       words, as cache_counter_inc).  An expired entry, a value that does
 *       not fit the caller's buffer, or a large one: it exits and calls
 *       mantis_cache_get, which reclaims, sizes and counts as usual.
 *   R5. Exit: seq + 2 (even) with a release store, after every load of the
 *       section (on x86-64 a plain store is one; elsewhere Go's atomic
 *       store).  No section outlives the call, and no Go code that could
 *       block, allocate or run user callbacks runs inside it.
 * Writers need no change: they snapshot every slot, the host ones too, and
 * free a batch only when each odd snapshotted seq has changed.
 *
 * MGO_CACHE_LAYOUT_VERSION names R1-R5, the slot-word format and the width
 * of every field above; change it with any of them.  The Go reader runs
 * only on the version it was written for (go/cache/native_read.go) and
 * otherwise leaves every get to mantis_cache_get; offsets alone cannot
 * tell it that a field changed width or meaning.
 */
#define MGO_CACHE_LAYOUT_VERSION 1

typedef struct mgo_cache_layout {
	uint32_t version;      /* MGO_CACHE_LAYOUT_VERSION */
	uint64_t seed;	       /* hash_key's seed */
	uint8_t *shards;       /* &shards[0] */
	uint64_t shard_stride; /* sizeof(struct shard) */
	uint32_t nshards;      /* 1: shard 0; else shard = hash >> shard_shift */
	uint32_t shard_shift;
	uint32_t off_shard_table; /* _Atomic(struct table *) */
	uint32_t off_table_mask;  /* size_t */
	uint32_t off_table_slots; /* _Atomic uintptr_t[mask + 1] */
	uint32_t off_entry_hash;  /* uint64_t */
	uint32_t off_entry_expires; /* uint64_t, 0 = never */
	uint32_t off_entry_klen;  /* uint32_t */
	uint32_t off_entry_vlen;  /* uint32_t */
	uint32_t off_entry_freq;  /* uint8_t */
	uint32_t off_entry_data;  /* key then value */
	uint32_t ptr_bits;	  /* slot word: address bits */
	uint32_t freq_max;
	uint8_t *host_slots;	  /* &readers[first host slot] */
	uint64_t slot_stride;	  /* sizeof(struct cache_rslot) */
	uint32_t host_nslots;
	uint32_t off_slot_seq;	  /* uint64_t */
	uint32_t off_slot_hits;	  /* uint64_t */
	uint32_t off_slot_misses; /* uint64_t */
	bool asym;		  /* R2: plain store (membarrier) or xchg */
} mgo_cache_layout;

/* Fills *out for c (see above).  MANTIS_INVALID if either is NULL. */
mantis_status mgo_cache_layout_get(mantis_cache *c, mgo_cache_layout *out);

/* hash_key of c's seed over key: for go/cache's test that its copy of the
 * hash agrees with C's.  0 if c or key is NULL. */
uint64_t mgo_cache_hash(mantis_cache *c, const uint8_t *key, size_t key_len);

static inline mantis_status mgo_cache_get(uintptr_t h, const uint8_t *key,
					  size_t key_len, uint64_t now,
					  uint8_t *buf, size_t cap,
					  size_t *value_len)
{
	return mantis_cache_get(mgo_cache(h), key, key_len, now, buf, cap,
				value_len);
}

static inline mantis_status mgo_cache_get_many(uintptr_t h, const uint8_t *keys,
					       const uint32_t *key_offs, size_t n,
					       uint64_t now, uint8_t *buf,
					       size_t cap, uint64_t *value_lens,
					       size_t *done)
{
	return mantis_cache_get_many(mgo_cache(h), keys, key_offs, n, now, buf,
				     cap, value_lens, done);
}

static inline mantis_status mgo_cache_put(uintptr_t h, const uint8_t *key,
					  size_t key_len, const uint8_t *value,
					  size_t value_len, uint64_t ttl_ns,
					  uint64_t now)
{
	return mantis_cache_put(mgo_cache(h), key, key_len, value, value_len,
				ttl_ns, now);
}

static inline mantis_status mgo_cache_delete(uintptr_t h, const uint8_t *key,
					     size_t key_len)
{
	return mantis_cache_delete(mgo_cache(h), key, key_len);
}

#endif /* MANTIS_CGO_H */
