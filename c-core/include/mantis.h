/*
 * mantis.h -- the one public header of the MantisDB native core
 * (libmantisdb_core.a).
 *
 * Conventions (see shared STYLE.md):
 *   - every public symbol starts with mantis_ / MANTIS_;
 *   - every function that can fail returns mantis_status; mantis_strerror
 *     names each code; not-found is a status, not an error message;
 *   - no function aborts, exits or prints on bad input or out-of-memory;
 *   - destructors accept NULL;
 *   - ownership and lifetime of every pointer argument and result is stated
 *     at the declaration.  "Borrowed" means the callee does not keep the
 *     pointer after it returns.
 *
 * Sections: status codes, limits, allocation accounting, CRC32C, record
 * codec, then the components (skiplist, cache, engine), each with its
 * thread-safety block.  The core is in memory only: the write-ahead log,
 * snapshots and recovery are Go's (go/wal), shared by both engines.
 */
#ifndef MANTIS_H
#define MANTIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Values are stable: they cross cgo and appear in logs.  Never renumber;
 * append new codes at the end.
 */
typedef enum mantis_status {
	MANTIS_OK = 0,
	MANTIS_NOT_FOUND = 1,	     /* key absent or expired                 */
	MANTIS_END = 2,		     /* iteration finished cleanly            */
	MANTIS_INVALID = 3,	     /* bad argument: NULL handle/pointer ... */
	MANTIS_NOMEM = 4,	     /* allocation failed; nothing changed    */
	MANTIS_TOO_LARGE = 5,	     /* key/value/batch over the limit        */
	MANTIS_BUFFER_TOO_SMALL = 6, /* caller buffer short; size reported    */
	MANTIS_TRUNCATED = 7,	     /* bytes end inside a record             */
	MANTIS_CORRUPT = 8,	     /* checksum/field validation failed      */
	MANTIS_UNSUPPORTED = 9,	     /* well-formed but unknown type/version  */
	MANTIS_IO = 10,		     /* read/write/fsync failed (errno kept)  */
	MANTIS_CLOSED = 11,	     /* handle already closed                 */
	MANTIS_READ_ONLY = 12,	     /* writes refused after an I/O failure   */
	MANTIS_EXISTS = 13,	     /* insert-only op found the key          */
	MANTIS_BUSY = 14,	     /* locked by another owner, held by a reader */
	MANTIS_STATUS_COUNT_
} mantis_status;

/*
 * A static, NUL-terminated, human-readable name for a status, e.g.
 * "corrupt record".  Never NULL; unknown values give "unknown status".
 * The returned string is owned by the library and lives forever.
 */
const char *mantis_strerror(mantis_status status);

/* ------------------------------------------------------------------------ */
/* Limits (the reasoning is in docs/FORMAT.md, "Limits")                    */
/* ------------------------------------------------------------------------ */

#define MANTIS_MAX_KEY_SIZE ((uint32_t)64 * 1024)	    /* 64 KiB, inclusive  */
#define MANTIS_MAX_VALUE_SIZE ((uint32_t)64 * 1024 * 1024)  /* 64 MiB, inclusive  */
#define MANTIS_MAX_BATCH_SIZE ((uint32_t)256 * 1024 * 1024) /* batch payload      */
#define MANTIS_MAX_META_SIZE ((uint32_t)1024 * 1024)	    /* META payload       */

/* ------------------------------------------------------------------------ */
/* Allocation accounting                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Every byte the core allocates goes through mimalloc and is counted in
 * per-thread-striped counters (no global hot atomic).  The sum is exact when
 * no allocation is in flight; under concurrency it is a snapshot.
 * Thread-safe.
 */
typedef struct mantis_alloc_stats {
	int64_t bytes_in_use; /* requested bytes currently allocated */
	int64_t allocations;  /* live allocation count               */
} mantis_alloc_stats;

void mantis_alloc_get_stats(mantis_alloc_stats *out); /* out: borrowed; NULL ignored */

/* ------------------------------------------------------------------------ */
/* CRC32C (Castagnoli, reflected, polynomial 0x82F63B78)                     */
/* ------------------------------------------------------------------------ */

/*
 * Extends `crc` (0 to start) over `len` bytes of `data` (borrowed; may be
 * NULL only when len == 0).  Uses SSE4.2 `crc32` when the CPU has it,
 * chosen once at run time, and a slicing-by-8 table otherwise.
 * mantis_crc32c(0, "123456789", 9) == 0xE3069283.  Thread-safe, pure.
 */
uint32_t mantis_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table-driven implementation, always available (tests, bench). */
uint32_t mantis_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* The SSE4.2 implementation; only call when mantis_crc32c_hw_available(). */
uint32_t mantis_crc32c_hw(uint32_t crc, const void *data, size_t len);
bool mantis_crc32c_hw_available(void);

/* ------------------------------------------------------------------------ */
/* Record codec (docs/FORMAT.md is the specification)                       */
/* ------------------------------------------------------------------------ */

/* Thread safety: every codec function is reentrant and touches only its
 * arguments; an iterator is used by one thread at a time. */

#define MANTIS_RECORD_HEADER_SIZE 32u
#define MANTIS_RECORD_ALIGN 8u
#define MANTIS_FORMAT_VERSION 1u

typedef enum mantis_record_type {
	MANTIS_REC_PUT = 1,    /* key, value, seq, expiry                     */
	MANTIS_REC_DELETE = 2, /* key, seq; value empty                       */
	MANTIS_REC_BATCH = 3,  /* key empty; value = nested PUT/DELETE records */
	MANTIS_REC_META = 4    /* key = name, value = payload (file headers)   */
} mantis_record_type;

/*
 * A decoded record.  Produced by decode as a view: `key` and `value` point
 * into the buffer that was decoded and are valid exactly as long as that
 * buffer is.  For encode it is an input: key/value are borrowed.
 * expires_at is absolute, in Unix nanoseconds; 0 means never.
 */
typedef struct mantis_record {
	uint8_t type; /* mantis_record_type */
	uint64_t seq;
	uint64_t expires_at;
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *value;
	uint32_t value_len;
	size_t size; /* decode: total encoded bytes incl. padding */
} mantis_record;

/*
 * Encoded size of a record with these lengths, header and padding included.
 * Returns MANTIS_TOO_LARGE (and leaves *out untouched) when a length is over
 * the limit for `type`; MANTIS_UNSUPPORTED for an unknown type.
 */
mantis_status mantis_codec_size(uint8_t type, size_t key_len, size_t value_len,
				size_t *out);

/*
 * Encodes `rec` (borrowed; rec->size ignored) into buf[0..cap).  On success
 * *written is the encoded size.  When cap is too small returns
 * MANTIS_BUFFER_TOO_SMALL with *written set to the size needed and buf
 * untouched.  `buf` may be NULL when cap == 0 (size query).  Validates as
 * decode would, before touching buf: MANTIS_UNSUPPORTED for an unknown
 * type, MANTIS_TOO_LARGE over the limits, MANTIS_INVALID for NULL
 * rec/written, NULL key/value with a non-zero length, or a broken field
 * rule (DELETE with a value or expiry, BATCH with a key or expiry).
 * For a BATCH, rec->value must already hold the encoded nested records
 * (not re-validated here).  key/value must not overlap buf.
 */
mantis_status mantis_codec_encode(void *buf, size_t cap,
				  const mantis_record *rec, size_t *written);

/*
 * Decodes the one record at the start of buf[0..len): validation plus
 * pointers into buf, no copy, no allocation.  `buf` may have any address
 * alignment.  Checks, in this order (docs/FORMAT.md, "Decoding"):
 *   MANTIS_INVALID      buf or out is NULL
 *   MANTIS_TRUNCATED    len < 32 (not even a header)
 *   MANTIS_CORRUPT      header check fails (lengths cannot be trusted)
 *   MANTIS_UNSUPPORTED  header valid but unknown version or type
 *   MANTIS_TOO_LARGE    header valid but a length is over the type's limit
 *   MANTIS_TRUNCATED    len < the record's declared size
 *   MANTIS_CORRUPT      record CRC, zero padding or a field rule fails
 * On any non-OK status *out is untouched.
 */
mantis_status mantis_codec_decode(const void *buf, size_t len, mantis_record *out);

/*
 * Iterates the concatenated records of buf[0..len) (borrowed for the life
 * of the iterator).  Plain struct: put it on the stack, no cleanup.
 */
typedef struct mantis_codec_iter {
	const uint8_t *buf;
	size_t len;
	size_t offset; /* byte offset of the next record; of the bad one on error */
} mantis_codec_iter;

/* it NULL is ignored; buf NULL is treated as an empty buffer. */
void mantis_codec_iter_init(mantis_codec_iter *it, const void *buf, size_t len);

/*
 * MANTIS_OK with *out filled (a view into buf) and the iterator advanced;
 * MANTIS_END when offset == len; otherwise the decode status of the record at
 * it->offset, which is left pointing at it.  MANTIS_INVALID for NULL it/out.
 */
mantis_status mantis_codec_iter_next(mantis_codec_iter *it, mantis_record *out);

/*
 * Iterates the nested records of a decoded BATCH: init `it` with
 * mantis_codec_iter_init(&it, batch.value, batch.value_len), then call this
 * until MANTIS_END.  As mantis_codec_iter_next, plus the batch rules of
 * docs/FORMAT.md: a nested BATCH or META record, or nested records that do
 * not exactly fill the payload (a short tail, which iter_next would call
 * TRUNCATED), are MANTIS_CORRUPT, with it->offset left at the bad record.
 * Validation is lazy: check every nested record before applying any.
 */
mantis_status mantis_codec_batch_iter_next(mantis_codec_iter *it,
					   mantis_record *out);

/* ------------------------------------------------------------------------ */
/* Skiplist: the concurrent ordered index (src/skiplist.c)                  */
/* ------------------------------------------------------------------------ */

/*
 * An ordered map from byte-string keys (memcmp order, shorter key first on
 * a common prefix; 1..MANTIS_MAX_KEY_SIZE bytes, empty keys are
 * MANTIS_INVALID) to records (value of 0..MANTIS_MAX_VALUE_SIZE bytes, a
 * sequence number, an absolute expiry in Unix ns, 0 = never).  A lock-free
 * skiplist gives order; a hash index from key to the same node serves point
 * reads.  The design, invariants and linearization points are in the header
 * comment of src/skiplist.c.
 *
 * Thread safety: every function may run concurrently with every other on
 * the same handle, except mantis_skiplist_free (caller guarantees nothing
 * else runs or will start) and mantis_skiplist_append (nothing else runs
 * on the handle during it: a bulk load).  Readers (get, get_view, scan, iterators) never
 * block and write no shared memory except a borrowed epoch record.  Updates
 * of an existing key are one CAS; inserting a new key or deleting one takes
 * a spinlock of one of 1024 index shards for the duration of the list
 * splice (the index is single-writer per shard); list splices themselves
 * are lock-free CAS.  No call keeps an epoch record or section after it
 * returns, so callers may migrate between OS threads between calls.
 *
 * Consistency: put, delete and get are linearizable.  Scans and iterators
 * are weakly consistent: keys come in strictly ascending order, never
 * twice, never before their start, every key present for the whole scan
 * is returned, keys inserted or deleted during it may or may not be.  Gets
 * and scans observe a write at the same instant: a key a scan returned is
 * found by a get that starts after it, unless a delete came in between.
 */
typedef struct mantis_skiplist mantis_skiplist;

/* On MANTIS_OK *out owns a new empty map (free with mantis_skiplist_free).
 * MANTIS_INVALID for out == NULL; MANTIS_NOMEM, *out untouched. */
mantis_status mantis_skiplist_new(mantis_skiplist **out);

/* Frees the map, every entry and every retired record.  NULL ignored. */
void mantis_skiplist_free(mantis_skiplist *sl);

/*
 * Inserts key or replaces its record (key and value borrowed: copied).
 * A replacement is one atomic pointer swap: readers see the old or the new
 * record, never a mix.  MANTIS_INVALID: sl NULL, key NULL or klen 0, value
 * NULL with vlen != 0.  MANTIS_TOO_LARGE: over the limits.  MANTIS_NOMEM:
 * nothing changed, nothing leaked.
 */
mantis_status mantis_skiplist_put(mantis_skiplist *sl, const void *key,
				  size_t klen, const void *value, size_t vlen,
				  uint64_t seq, uint64_t expires_at);

/* Removes key (borrowed).  MANTIS_OK when it was present (expired or not),
 * MANTIS_NOT_FOUND when absent; bad arguments as for put.  The node's
 * memory is freed once no reader can hold it. */
mantis_status mantis_skiplist_delete(mantis_skiplist *sl, const void *key,
				     size_t klen);

/*
 * Copies the value of key into buf[0..cap) (borrowed; NULL allowed when
 * cap == 0).  No allocation.  *vlen (required) gets the value length;
 * seq and expires_at (optional, NULL ignored) the record's fields.
 *   MANTIS_OK                copied
 *   MANTIS_NOT_FOUND         absent, or expires_at != 0 && expires_at <= now
 *   MANTIS_BUFFER_TOO_SMALL  *vlen = size needed, buf untouched
 */
mantis_status mantis_skiplist_get(mantis_skiplist *sl, const void *key,
				  size_t klen, uint64_t now, void *buf,
				  size_t cap, size_t *vlen, uint64_t *seq,
				  uint64_t *expires_at);

/*
 * A view of one entry, valid only during the callback that receives it
 * (the memory may be reclaimed after the callback returns).  Callbacks run
 * inside an epoch section: they must not block for long, must not call
 * mantis_skiplist_free or mantis_skiplist_quiesce, and may call get/put.
 */
typedef struct mantis_skiplist_entry {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	uint64_t seq;
	uint64_t expires_at;
} mantis_skiplist_entry;

/* Point read handing a view to fn(arg, entry) (fn called once, on OK only).
 * Statuses as for get, without BUFFER_TOO_SMALL. */
mantis_status mantis_skiplist_get_view(mantis_skiplist *sl, const void *key,
				       size_t klen, uint64_t now,
				       void (*fn)(void *arg,
						  const mantis_skiplist_entry *e),
				       void *arg);

/*
 * Copies a key drawn uniformly at random among the keys live at `now`
 * (Redis's RANDOMKEY) into buf[0..cap) (borrowed; NULL allowed when cap ==
 * 0) and sets *klen (required) to its length.  Cost independent of the
 * number of keys: one read of every hash-index shard's table word (a fixed
 * 1024), then up to `draws` uniform draws of an index slot, rejecting
 * slots without a live key, each O(1).  No allocation, lock-free.  seed
 * fixes the draws: the same seed on an unchanged list draws the same key.
 *   MANTIS_OK                copied; the key was live at some instant
 *                            during the call
 *   MANTIS_NOT_FOUND         no live key in `draws` draws: the list is
 *                            empty or sparse in live keys (mostly expired
 *                            or deleted entries); NOT proof that it is
 *                            empty, so a caller that must know falls back
 *                            to a full pass (a reservoir over an iterator)
 *   MANTIS_BUFFER_TOO_SMALL  *klen = size needed, buf untouched; retry
 *                            with the same seed and a buffer that large
 *                            (MANTIS_MAX_KEY_SIZE always fits)
 *   MANTIS_INVALID           NULL sl or klen, NULL buf with cap != 0, or
 *                            draws == 0
 */
mantis_status mantis_skiplist_random_key(mantis_skiplist *sl, uint64_t seed,
					 uint64_t now, unsigned draws,
					 void *buf, size_t cap, size_t *klen);

/*
 * Visits live entries in ascending key order starting at the first key
 * >= start (> start when exclusive; start_len 0 = from the first key,
 * whatever exclusive says), skipping
 * entries expired at `now`, until fn returns false or the map ends.  One
 * epoch section for the whole call: bound the work per call (e.g. stop
 * after a batch) and continue with start = last key, exclusive = true.
 * A start longer than MANTIS_MAX_KEY_SIZE (a cursor after a maximum-length
 * key) positions as memcmp order says: no stored key can equal it.
 * *visited (optional) gets the number of calls to fn.  MANTIS_OK, or
 * MANTIS_INVALID for sl/fn NULL or start NULL with start_len != 0.
 */
mantis_status mantis_skiplist_scan(mantis_skiplist *sl, const void *start,
				   size_t start_len, bool exclusive,
				   uint64_t now,
				   bool (*fn)(void *arg,
					      const mantis_skiplist_entry *e),
				   void *arg, size_t *visited);

/*
 * A cursor that keeps its position as a copy of the last key returned, so
 * it holds no epoch section and no node between calls.  Owned by the
 * caller; free with mantis_skiplist_iter_free before freeing the map.
 * Not thread-safe itself (one thread at a time per iterator).
 */
typedef struct mantis_skiplist_iter mantis_skiplist_iter;

/* *out owns a new iterator positioned before the first key.
 * MANTIS_INVALID, MANTIS_NOMEM. */
mantis_status mantis_skiplist_iter_new(mantis_skiplist *sl,
				       mantis_skiplist_iter **out);
void mantis_skiplist_iter_free(mantis_skiplist_iter *it); /* NULL ignored */

/* Positions it so that next returns the first key >= key (klen 0: the
 * first key).  A key longer than MANTIS_MAX_KEY_SIZE positions after every
 * stored key it is greater than, as memcmp order says (no stored key can be
 * that long).  key borrowed.  MANTIS_INVALID, MANTIS_NOMEM. */
mantis_status mantis_skiplist_iter_seek(mantis_skiplist_iter *it,
					const void *key, size_t klen);

/* Calls fn(arg, entry) with the next live entry (view valid during fn) and
 * advances.  MANTIS_OK, MANTIS_END when none is left, MANTIS_NOMEM when the
 * position copy cannot grow (position unchanged, retry possible). */
mantis_status mantis_skiplist_iter_next(mantis_skiplist_iter *it, uint64_t now,
					void (*fn)(void *arg,
						   const mantis_skiplist_entry *e),
					void *arg);

typedef struct mantis_skiplist_stats {
	uint64_t keys;	/* entries, expired-but-present included */
	uint64_t bytes; /* key + value bytes of those entries     */
} mantis_skiplist_stats;

/* Sums per-thread stripes: exact when no writer runs.  MANTIS_INVALID for
 * NULL arguments. */
mantis_status mantis_skiplist_stats_get(mantis_skiplist *sl,
					mantis_skiplist_stats *out);

/* Sizes the hash index for `keys` entries in all, so that inserting up to
 * about that many keys rebuilds no index table (a hint: it never shrinks,
 * changes no entry, and the map works the same whether it succeeded or
 * not).  Safe beside any other call.  MANTIS_INVALID for NULL,
 * MANTIS_NOMEM when allocation fails (the shards sized so far keep their
 * size) or when the tables for `keys` would take over half of physical
 * memory (nothing allocated). */
mantis_status mantis_skiplist_reserve(mantis_skiplist *sl, uint64_t keys);

/*
 * Bulk append for loading sorted data (a snapshot at open): copies
 * entries e[0..n) (borrowed; key, value, seq and expires_at are used) to
 * the end of the map, building each tower by plain stores to the last
 * node of every level and indexing each key without a search, a CAS or
 * a lock.  Legal only while NO other call runs on sl (any thread), and
 * only for keys that sort after every key of the map: the call checks
 * the order itself (each key must be greater than the map's last key and
 * than the entry before it) and stops at the first entry that is not,
 * so out-of-order or duplicate input can never corrupt the map.
 *   MANTIS_OK      entries [0, *appended) are in the map; when *appended
 *                  < n, entry *appended does not sort after the map's
 *                  last key and nothing from it on was touched (the
 *                  caller inserts it with mantis_skiplist_put, which
 *                  takes any order, and may append the rest after).
 *   MANTIS_INVALID sl, e or appended NULL (with n != 0), or entry
 *                  *appended has a NULL or empty key or a NULL value with
 *                  value_len != 0; entries before it are in the map.
 *   MANTIS_TOO_LARGE, MANTIS_NOMEM  the same, for entry *appended.
 * Expired entries are not skipped (the caller knows `now`).  Presize the
 * index first (mantis_skiplist_reserve) or it grows as puts make it.
 */
mantis_status mantis_skiplist_append(mantis_skiplist *sl, const mantis_skiplist_entry *e,
				     size_t n, size_t *appended);

/* Waits for a grace period and frees what earlier calls retired (deleted
 * nodes, replaced records) right now, instead of opportunistically.  Any
 * thread, not from inside a callback.  MANTIS_INVALID for NULL. */
mantis_status mantis_skiplist_quiesce(mantis_skiplist *sl);

/*
 * Incremental expiry sweep: visits up to max_visit nodes in key order from
 * the first key >= start (start_len 0 = from the first key) and removes
 * every entry whose record is expired at `now`, but only while the node
 * still holds that same record: a put racing the sweep with a fresh value
 * wins, and the key survives.  A removal is a delete in every other way
 * (the index, the list and memory), counted in *reclaimed.
 *
 * The cursor: *next_len gets the length of the first key not visited, and
 * next_buf (caller-owned, next_cap bytes) a copy of it; pass it back as
 * start to continue.  *next_len = 0 means the walk reached the end of the
 * map (wrap around with start_len 0).  If that key is longer than
 * next_cap, MANTIS_BUFFER_TOO_SMALL is returned with *next_len set to its
 * length and nothing copied; the removals of the call stand, so retrying
 * from the same start with a bigger buffer is safe (a cap of
 * MANTIS_MAX_KEY_SIZE never fails).  Also frees what idle epoch slots
 * still hold, so it doubles as the map's periodic maintenance call:
 * max_visit 0 visits nothing (the cursor becomes the first key >= start)
 * and does only that.  One epoch section for the walk: max_visit bounds
 * the call's latency.
 * MANTIS_INVALID for NULL sl/next_len/reclaimed or a NULL pointer with a
 * non-zero length.  A start longer than MANTIS_MAX_KEY_SIZE positions as
 * memcmp order says, as in mantis_skiplist_scan.
 */
mantis_status mantis_skiplist_sweep(mantis_skiplist *sl, uint64_t now,
				    const void *start, size_t start_len,
				    size_t max_visit, void *next_buf,
				    size_t next_cap, size_t *next_len,
				    size_t *reclaimed);

/* ------------------------------------------------------------------------ */
/* Cache: byte-bounded, sharded, concurrent, per-entry TTL (src/cache.c)    */
/* ------------------------------------------------------------------------ */

/*
 * A mantis_cache maps byte-string keys (1..MANTIS_MAX_KEY_SIZE bytes) to
 * values (0..MANTIS_MAX_VALUE_SIZE bytes) within a budget of bytes that is
 * never exceeded: each entry is charged mantis_cache_charge(key, value) =
 * key + value + MANTIS_CACHE_ENTRY_OVERHEAD (its header and index slots).
 * Outside the budget: the index's slots beyond two per entry, the ghost (6
 * bytes per index slot: 8 to 48 bytes per entry, the index being kept
 * between 1/8 and 3/4 full) and memory retired but not yet freed
 * (src/cache_reclaim.c: a few MiB per shard while readers' sections are
 * short; while a section lasts, e.g. a mantis_cache_view callback that
 * blocks, the copy of a very large value or a reader thread preempted
 * mid-read, a put that finds the shard's retired memory past its budget
 * waits a bounded time for it and is then refused with MANTIS_BUSY, so
 * live plus retired memory stays under about twice the budget).
 * The budget is split evenly over the shards; an entry larger than one
 * shard's share (stats.max_entry_size, at least min(budget, 1 MiB)) is
 * refused with MANTIS_TOO_LARGE before anything is evicted.  When full, a
 * put evicts by S3-FIFO (src/cache.c): new keys enter a small FIFO (5% of
 * the bytes) and reach the main one only if read again before they leave
 * it, or if they return soon after leaving it; so one-hit wonders and scans
 * do not push out the hot set.  Expired entries met on the way go first.
 * A put never evicts the entry it installs.
 *
 * Time is the caller's: every call that needs it takes `now` (any
 * monotonic nanosecond clock, the same one for every call on a cache), so
 * tests control expiry exactly.  An entry put with ttl_ns > 0 at `now`
 * expires at now + ttl_ns: a read at a time >= that never returns it.
 * Until its first put with ttl_ns > 0, a caller may pass now = 0 and skip
 * reading its clock: no entry can have expired.
 * Expired entries are reclaimed lazily by reads and writes that meet them
 * and by mantis_cache_sweep, so their memory returns without reads.
 *
 * Thread safety: every function may run concurrently from any number of
 * threads, except mantis_cache_free.  Reads take no lock on the hit path.
 * No read section outlives a call, so a caller may move between OS threads
 * between calls (Go goroutines do); a thread keeps only its reader-slot
 * number between calls, returned when it exits.  On Linux, reads execute no
 * atomic read-modify-write or fence; writers pay one membarrier(2) per batch
 * of retired entries.  Without membarrier, or with the environment variable
 * MANTIS_CACHE_FENCES set (not "0") when the first cache is created, a
 * read enters with one full fence instead.
 * A read never returns a value older than the last put or delete of that
 * key that returned before the read started.
 */
typedef struct mantis_cache mantis_cache;

#define MANTIS_CACHE_ENTRY_OVERHEAD 64u

typedef struct mantis_cache_options {
	uint64_t budget_bytes; /* required, > 0                                  */
	uint32_t shards;       /* 0 = 16; rounded down to a power of two, then
				  halved until each shard holds >= 1 MiB; <= 1024 */
} mantis_cache_options;

typedef struct mantis_cache_stats {
	uint64_t hits;		 /* get/view calls that returned a value (a get
				    answered BUFFER_TOO_SMALL counts on retry)  */
	uint64_t misses;	 /* get/view calls that did not                  */
	uint64_t evictions;	 /* entries removed to make room                 */
	uint64_t expirations;	 /* expired entries reclaimed (read, put, sweep) */
	uint64_t entries;	 /* entries held, expired-not-yet-reclaimed too  */
	uint64_t bytes_used;	 /* sum of charges of those entries <= budget    */
	uint64_t budget;	 /* budget_bytes as configured                   */
	uint64_t max_entry_size; /* largest charge a put accepts                 */
	uint32_t shards;	 /* shard count actually used                    */
	uint64_t refused;	 /* puts refused with MANTIS_BUSY: a long read
				    held the shard's retired memory at its cap */
} mantis_cache_stats;

/* Called by mantis_cache_view with a view of the value: `value` (len bytes)
 * is valid only until the callback returns and must not be written.  The
 * callback must not call back into the same cache for writes. */
typedef void (*mantis_cache_view_fn)(void *ctx, const void *value, size_t len);

/* The bytes an entry is charged against the budget.  Pure. */
uint64_t mantis_cache_charge(size_t key_len, size_t value_len);

/*
 * Creates an empty cache.  opts (borrowed) is required.  MANTIS_INVALID for
 * NULL opts/out, budget 0 or shards > 1024; MANTIS_NOMEM.  On
 * MANTIS_OK *out owns the cache until mantis_cache_free; otherwise *out is
 * untouched and nothing leaks.
 */
mantis_status mantis_cache_new(const mantis_cache_options *opts, mantis_cache **out);

/* Frees the cache and every entry.  NULL is ignored.  No other call on c
 * may be running or start. */
void mantis_cache_free(mantis_cache *c);

/*
 * Inserts or replaces key -> value (both borrowed, copied before return),
 * expiring ttl_ns after now (ttl_ns 0 = never).  Evicts as needed.
 *   MANTIS_INVALID    NULL c or key, empty key, NULL value with len > 0,
 *                     now + ttl_ns overflows
 *   MANTIS_TOO_LARGE  key/value over the limits or charge > max_entry_size
 *                     (nothing evicted)
 *   MANTIS_NOMEM      nothing changed (the old value, if any, remains)
 *   MANTIS_BUSY       nothing changed: the shard's memory awaiting
 *                     reclamation is over its cap and a reader's section
 *                     outlasted the bounded wait (see above; a put from
 *                     inside a view callback of this cache, which is not
 *                     allowed, gets it at once when over the cap);
 *                     retry later.  A caller that must not leave the old
 *                     value deletes the key (delete is never refused).
 */
mantis_status mantis_cache_put(mantis_cache *c, const void *key, size_t key_len,
			       const void *value, size_t value_len, uint64_t ttl_ns,
			       uint64_t now);

/*
 * Copies the value of key (borrowed) into buf[0..cap) (borrowed; NULL only
 * when cap == 0) and sets *value_len.  Allocates nothing.
 *   MANTIS_OK                copied; *value_len = its length
 *   MANTIS_NOT_FOUND         absent or expired at now (counted as a miss)
 *   MANTIS_BUFFER_TOO_SMALL  *value_len = the size needed, buf unspecified
 *   MANTIS_INVALID / MANTIS_TOO_LARGE  bad arguments
 */
mantis_status mantis_cache_get(mantis_cache *c, const void *key, size_t key_len,
			       uint64_t now, void *buf, size_t cap, size_t *value_len);

/*
 * Many gets in one call, their memory accesses overlapped (prefetched in
 * groups): what a caller crossing from another runtime (cgo) wants, since
 * each crossing costs a call and serialises the gets' cache misses.
 * keys (borrowed) holds the keys; key i is keys[key_offs[i] ..
 * key_offs[i+1]) (key_offs, borrowed, has n + 1 entries), so key_offs must
 * rise strictly and each key be 1..MANTIS_MAX_KEY_SIZE bytes.  To resume
 * at key d, pass the same keys with key_offs + d and n - d.  Values are
 * copied into buf[0..cap) (borrowed) back to back in key order;
 * value_lens[i] (borrowed, n entries) = the length of key i's value, or
 * UINT64_MAX when absent or expired (a miss).  *done = keys handled.
 *   MANTIS_OK                every key handled (*done == n)
 *   MANTIS_BUFFER_TOO_SMALL  key *done's value (value_lens[*done] bytes) did
 *                            not fit after those copied; keys before it are
 *                            handled; ask again from key *done
 *   MANTIS_INVALID / MANTIS_TOO_LARGE  bad arguments, nothing handled
 * Each key is one get for linearizability and the hit/miss counters.
 * Allocates nothing.
 */
mantis_status mantis_cache_get_many(mantis_cache *c, const uint8_t *keys,
				    const uint32_t *key_offs, size_t n, uint64_t now,
				    uint8_t *buf, size_t cap, uint64_t *value_lens,
				    size_t *done);

/* Like get, but calls fn(ctx, value, len) on a hit (see mantis_cache_view_fn
 * for the view's lifetime).  fn is not called on any other status. */
mantis_status mantis_cache_view(mantis_cache *c, const void *key, size_t key_len,
				uint64_t now, mantis_cache_view_fn fn, void *ctx);

/* Removes key (borrowed).  MANTIS_OK if it was held (even if expired),
 * MANTIS_NOT_FOUND otherwise; errors as for get. */
mantis_status mantis_cache_delete(mantis_cache *c, const void *key, size_t key_len);

/* Removes every entry (counters other than entries/bytes_used are kept).
 * Never allocates; MANTIS_INVALID only for NULL c. */
mantis_status mantis_cache_clear(mantis_cache *c);

/*
 * Incremental expiry: examines up to max_slots index slots (0 = 1024),
 * continuing where the previous sweep of each shard stopped, and reclaims
 * entries expired at now.  *reclaimed (borrowed, may be NULL) = how many.
 * Call periodically (e.g. every second) to bound memory held by expired
 * entries nobody reads.
 */
mantis_status mantis_cache_sweep(mantis_cache *c, uint64_t now, size_t max_slots,
				 size_t *reclaimed);

/* Fills *out (borrowed).  Sums of per-shard / per-reader stripes: a
 * snapshot, not a transaction.  MANTIS_INVALID for NULL c or out. */
mantis_status mantis_cache_stats_get(mantis_cache *c, mantis_cache_stats *out);

/* ------------------------------------------------------------------------ */
/* Engine: mantis_db, the ordered key-value store the Go package wraps      */
/* ------------------------------------------------------------------------ */

/*
 * A mantis_db is an ordered map of byte-string keys (memcmp order, 1 byte
 * up to max_key_size) to values (0 up to max_value_size bytes), each with
 * an absolute expiry (Unix ns, 0 = never).  It is an index, in memory
 * only: it neither logs nor orders writes.  The Go engine shell logs each
 * write (go/wal) and serialises the writes to one key before it calls in
 * here; the core keeps no sequence numbers.
 *
 * Thread safety: every function may be called from any number of threads
 * at once, except mantis_db_close, which the caller must not run
 * concurrently with any other call on the same handle (the Go wrapper
 * enforces this with a reader/writer lock), and the recovery loads
 * (mantis_db_load, mantis_db_load_link: nothing else on the handle but
 * mantis_db_load_build and mantis_db_reserve).  No call keeps a thread-local
 * epoch record between calls, so a caller may move between OS threads
 * between two calls (Go goroutines do).
 *
 * Consistency:
 *   1. A write (put, delete, batch) is visible to every read that starts
 *      after the write returned.
 *   2. A batch is atomic for readers: a get, and all the records of one
 *      mantis_db_scan call, see all of a batch or none of it.  Successive
 *      scan calls are weakly consistent (each call is atomic on its own).
 *      mantis_db_scan_entries_relaxed is the one read without this rule.
 *      Batches are serialised with each other.
 *   3. Concurrent writes to one key are memory-safe and one of them wins,
 *      but which one is the caller's to decide: a caller that needs an
 *      order between them (a log) must not run them concurrently, and must
 *      not run a put concurrently with a batch that writes the same key.
 *   4. A read never returns an entry with expires_at != 0 && expires_at <=
 *      now (now is passed by the caller so tests can control the clock).
 *
 * Checks: each call still rejects, with a status, what would corrupt
 * memory or the map (NULL pointers, lengths over the limits, empty keys,
 * malformed or mistyped batch records); the Go engine validates requests
 * once, before they reach the log, and these checks never fire for it.
 */
typedef struct mantis_db mantis_db;

typedef struct mantis_db_options {
	uint32_t max_key_size;	 /* 0 = MANTIS_MAX_KEY_SIZE; larger is clamped   */
	uint32_t max_value_size; /* 0 = MANTIS_MAX_VALUE_SIZE; larger is clamped */
} mantis_db_options;

/*
 * Opens an empty in-memory database.  opts (borrowed) may be NULL for the
 * defaults.  On MANTIS_OK *out owns the handle until mantis_db_close; on
 * any other status (MANTIS_INVALID for out == NULL, MANTIS_NOMEM) *out is
 * untouched and nothing leaks.
 */
mantis_status mantis_db_open(const mantis_db_options *opts, mantis_db **out);

/*
 * Frees the database and every entry.  NULL is ignored.  The caller
 * guarantees no other call on db is running or will start (see the
 * thread-safety block); memory retired by earlier calls is reclaimed here
 * after an epoch barrier.
 */
void mantis_db_close(mantis_db *db);

/*
 * Sets key to value (both borrowed: copied before return) with the given
 * absolute expiry (0 = never).  MANTIS_INVALID for a NULL db, a NULL
 * pointer with a non-zero length, or an empty key; MANTIS_TOO_LARGE when
 * over the limits; MANTIS_NOMEM leaves the previous value in place.
 */
mantis_status mantis_db_put(mantis_db *db, const void *key, size_t key_len,
			    const void *value, size_t value_len,
			    uint64_t expires_at);

/*
 * Copies the value of key into buf[0..cap) (borrowed; may be NULL when cap
 * is 0) and sets *value_len to its length.  Nothing is allocated.
 *   MANTIS_OK                value copied, *value_len = its length
 *   MANTIS_NOT_FOUND         absent or expired at `now`
 *   MANTIS_BUFFER_TOO_SMALL  *value_len = the size needed; buf unspecified
 *                            (retry with a buffer that large)
 *   MANTIS_INVALID / MANTIS_TOO_LARGE  bad arguments, as for put
 */
mantis_status mantis_db_get(mantis_db *db, const void *key, size_t key_len,
			    uint64_t now, void *buf, size_t cap,
			    size_t *value_len);

/*
 * A hint for a caller about to look up several keys (a multi-get, the
 * reads of a grouped read-modify-write): starts the cache misses of their
 * index slots, nodes and records, all n at once so that they overlap,
 * instead of each get stalling on its own.  keys (borrowed) holds the n
 * keys back to back, klens[i] (borrowed) the length of key i.  Reads
 * nothing a get would not, writes nothing, never blocks a writer; a key
 * that is absent, too long or changed meanwhile costs only a wasted
 * prefetch.  Thread-safe.  MANTIS_INVALID for a NULL db, or NULL keys or
 * klens with n > 0; MANTIS_OK otherwise.  Best for n up to a few dozen:
 * the lines of many more may be evicted before their gets.
 */
mantis_status mantis_db_prefetch(mantis_db *db, const void *keys, const uint32_t *klens,
				 size_t n);

/*
 * RANDOMKEY: mantis_skiplist_random_key on the db's map (statuses and the
 * meaning of MANTIS_NOT_FOUND as documented there; MANTIS_INVALID also
 * for a NULL db).  Atomic for readers like get: a key a batch put or
 * deleted is drawn as before the batch or as after it, never mid-batch.
 */
mantis_status mantis_db_random_key(mantis_db *db, uint64_t seed, uint64_t now,
				   unsigned draws, void *buf, size_t cap,
				   size_t *key_len);

/*
 * Removes key (borrowed).  MANTIS_OK when it was present, MANTIS_NOT_FOUND
 * when it was absent (not an error for most callers); errors as for put.
 */
mantis_status mantis_db_delete(mantis_db *db, const void *key, size_t key_len);

/*
 * Applies a batch: batch[0..len) (borrowed) is a concatenation of codec
 * records (docs/FORMAT.md), each PUT or DELETE, seq ignored.  The whole
 * buffer is validated (each record's CRC checked once)
 * before anything is applied: on any error nothing changed, and when
 * bad_offset is non-NULL it receives the byte offset of the first bad
 * record.  Errors: the codec's decode status for a malformed record
 * (MANTIS_CORRUPT, MANTIS_TRUNCATED, MANTIS_UNSUPPORTED, MANTIS_TOO_LARGE),
 * MANTIS_INVALID for a BATCH/META record or an empty key, MANTIS_TOO_LARGE
 * for a key/value over this db's limits or len > MANTIS_MAX_BATCH_SIZE,
 * MANTIS_NOMEM.  An empty batch (len 0) is MANTIS_OK.  Atomic for readers
 * (consistency rule 2), except after MANTIS_NOMEM: publishing allocates
 * (a record per put, a node per new key), so running out of memory part
 * way leaves a prefix of the batch published (engine.c, "Known gap").
 * With a data directory the Go engine then refuses writes until a reopen,
 * whose log replays the batch whole; in memory the prefix stays.
 */
mantis_status mantis_db_apply(mantis_db *db, const void *batch, size_t len,
			      size_t *bad_offset);

/*
 * mantis_db_apply for records whose checksums the caller has verified or
 * computed itself: one owner for the check instead of two.  The Go
 * engine encodes a batch once, for its log and for this call, and a
 * replayed BATCH was checked by the log's reader, which decodes every
 * nested record with its CRC (go/wal, checkLogRecord) before replay.  Every check that keeps memory safe and the map valid
 * is still made, with mantis_db_apply's statuses and bad_offset: whole
 * headers and records within len, the format version, the types (PUT or
 * DELETE only), non-empty keys, this db's and the format's size limits.
 * Not checked: the CRCs, the header check, padding and the field rules;
 * a record damaged there is applied as it reads.  Atomic for readers as
 * mantis_db_apply.
 */
mantis_status mantis_db_apply_verified(mantis_db *db, const void *batch, size_t len,
				       size_t *bad_offset);

/* What mantis_db_add_int did with one key. */
typedef enum mantis_add_outcome {
	MANTIS_ADD_OK = 0,	    /* the sum written, in results[i]          */
	MANTIS_ADD_NOT_INTEGER = 1, /* the value is not a canonical int64      */
	MANTIS_ADD_OVERFLOW = 2	    /* the sum leaves the int64 range          */
} mantis_add_outcome;

/*
 * Counters (Redis's INCRBY): for i in 0..n, in order, adds deltas[i] to
 * the value of key i read as a decimal int64 and writes the sum back as
 * decimal digits, each key one write of its own (a put, not a batch).
 * keys (borrowed) holds the n keys back to back, klens[i] the length of
 * key i.  The value must be canonical as Redis's string2ll reads it: "0",
 * or an optional '-' then a digit 1-9 and more digits, within int64, at
 * most 20 bytes; no '+', spaces or leading zeros.  A live value keeps its
 * expiry; an absent key, or one expired at `now`, counts as 0 and the sum
 * is stored without one.  outcomes[i] (a mantis_add_outcome) says what
 * happened to key i; only MANTIS_ADD_OK writes, and only then is
 * results[i] set.  Like every write, the caller serialises the writes of
 * each key (consistency rule 3); given that, each add is atomic: the sum
 * is computed from the record it replaces (a concurrent expiry sweep that
 * reclaims it first makes the add start over).
 * Returns MANTIS_OK when every key was handled (whatever its outcome), or
 * the status of the key that stopped it, *done (may be NULL) being the
 * keys handled before it: MANTIS_INVALID for a NULL db, NULL arrays with
 * n > 0, or an empty key; MANTIS_TOO_LARGE for a key over the limit or a
 * sum longer than max_value_size; MANTIS_NOMEM (that key unchanged).
 * Keys are looked up in windows whose cache misses are overlapped, as
 * mantis_db_apply does.
 */
mantis_status mantis_db_add_int(mantis_db *db, const void *keys, const uint32_t *klens,
				const int64_t *deltas, size_t n, uint64_t now,
				int64_t *results, uint8_t *outcomes, size_t *done);

/*
 * Bulk load for recovery: recs[0..len) (borrowed) is a run of codec PUT
 * records as a snapshot file holds them, whose CRCs the caller has
 * verified (go/wal checks every record as it reads the file).  Records in
 * ascending key order, each after every key already loaded (a snapshot's
 * records, in the file's order, over calls on an empty db), are appended
 * with mantis_skiplist_append: no search, no CAS, no lock per key.  Any
 * other record (a duplicate or out-of-order key) is inserted by an
 * ordinary put, so any input loads as the same puts in order would.  The
 * core checks only what keeps memory safe: each record's header, lengths
 * and type (PUT, non-empty key, within this db's limits), not checksums.
 * Records expired at `now` are skipped.  Not atomic and not to be run
 * concurrently with any other call on db (recovery runs before the db is
 * shared).  On an error the records before bad_offset (if non-NULL, the
 * offset of the refused record) stay loaded: MANTIS_TRUNCATED,
 * MANTIS_UNSUPPORTED, MANTIS_TOO_LARGE, MANTIS_INVALID (a non-PUT record or
 * an empty key, NULL db or recs with len != 0), MANTIS_NOMEM.
 */
mantis_status mantis_db_load(mantis_db *db, const void *recs, size_t len, uint64_t now,
			     size_t *bad_offset);

/*
 * The same load in two steps, so that a caller can spread its work over
 * threads: mantis_db_load_build frames recs[0..len) (borrowed, only
 * during the call) and copies every unexpired record into a node and
 * record of its own (the allocation, copying and first touch of fresh
 * memory that are most of a load), into *out, a run the caller owns;
 * mantis_db_load_link then appends the run's entries to db in order
 * (consuming the run, whatever it returns) and returns what
 * mantis_db_load returns for the same bytes: the records before
 * *bad_offset (an offset in the run's recs) are loaded.
 *   Threads: builds read only db's fixed limits, so any number may run at
 *   once, on any threads, beside one mantis_db_load_link; links, and
 *   everything else on db, follow mantis_db_load's rule (nothing else
 *   runs on db).  Handing a run from the building thread to the linking
 *   one needs the usual happens-before (a join, a mutex, a channel).
 *   Link the runs of a snapshot in file order: a run whose keys do not
 *   all follow the keys already loaded still loads correctly, as puts.
 * build: MANTIS_OK (errors in the records are the link's to report),
 * MANTIS_INVALID for NULL db or out or recs with len != 0, MANTIS_NOMEM
 * (no run).  A run holds about len/2 bytes of arrays besides its
 * entries: bound len (the Go engine passes a few MiB).
 * mantis_db_load_run_free frees a run that will not be linked (NULL
 * ignored).
 */
typedef struct mantis_load_run mantis_load_run;
mantis_status mantis_db_load_build(const mantis_db *db, const void *recs, size_t len,
				   uint64_t now, mantis_load_run **out);
mantis_status mantis_db_load_link(mantis_db *db, mantis_load_run *run, size_t *bad_offset);
void mantis_db_load_run_free(mantis_load_run *run);

/*
 * Presizes the db's index for `keys` entries (mantis_skiplist_reserve):
 * recovery calls it with the snapshot's key count before the first
 * mantis_db_load, so the load grows no index table key by key.  A hint;
 * safe beside any other call.  MANTIS_INVALID for a NULL db, MANTIS_NOMEM
 * as mantis_skiplist_reserve.
 */
mantis_status mantis_db_reserve(mantis_db *db, uint64_t keys);

/*
 * Fills buf[0..cap) (borrowed) with live entries in ascending key order as
 * codec PUT records (expires_at included; seq 0, the core keeps none),
 * starting at the first
 * key >= start (> start when start_exclusive) and stopping before `end`
 * (exclusive; end_len == 0 means no upper bound).  start_len == 0 starts at
 * the first key.  Expired entries (at `now`) are skipped.
 *   MANTIS_OK  *out_len bytes written holding *out_count records (>= 1, or
 *              0 only with *out_done); *out_done is true when the range is
 *              exhausted.  To continue, call again with start = the last
 *              key returned and start_exclusive = true.
 *   MANTIS_BUFFER_TOO_SMALL  not even the first record fits: *out_len = the
 *              size needed, *out_count = 0.
 *   MANTIS_INVALID  NULL db or out pointers, NULL with non-zero length.
 * The records of one call are atomic with respect to batches (rule 2).
 */
mantis_status mantis_db_scan(mantis_db *db, const void *start, size_t start_len,
			     bool start_exclusive, const void *end,
			     size_t end_len, uint64_t now, void *buf,
			     size_t cap, size_t *out_len, size_t *out_count,
			     bool *out_done);

/*
 * mantis_db_scan with a lighter framing for a caller in the same process
 * (the Go engine's iterators; its checkpoints use the relaxed variant
 * below): no checksum, no seq, no
 * padding, because the bytes never leave memory the caller trusts.  Each
 * entry is
 *     u32 key_len | u32 value_len | u64 expires_at | key | value
 * (little-endian, MANTIS_SCAN_ENTRY_HEADER_SIZE bytes of header, entries
 * back to back).  Everything else (range, statuses, *out_len of a first
 * entry that does not fit, atomicity) is as for mantis_db_scan.  A codec
 * record would make a short scan pay a CRC and padding for every entry
 * (bench/results/design-measurements.md, "Scan framing").
 *
 * budget and max_count (0 = none) bound a call the way a caller expects
 * to read, independently of the framing: the call stops (with *out_done
 * false) before an entry that would take the key+value bytes written past
 * budget, or after max_count entries, but always writes the first entry
 * that fits in cap.  The Go iterator grows its budget fill by fill and caps
 * the count, as its pure-Go engine does: a short scan then fetches about
 * the entries it reads (a fill bounded by cap alone, headers included,
 * fetched twice as many for a seek + 100), and a fill of tiny entries
 * stays short (the call holds the batch seqlock's read side throughout).
 */
#define MANTIS_SCAN_ENTRY_HEADER_SIZE 16
mantis_status mantis_db_scan_entries(mantis_db *db, const void *start,
				     size_t start_len, bool start_exclusive,
				     const void *end, size_t end_len, uint64_t now,
				     void *buf, size_t cap, size_t budget,
				     size_t max_count, size_t *out_len,
				     size_t *out_count, bool *out_done);

/*
 * mantis_db_scan_entries without rule 2: each entry is read once, as it
 * is, so a batch applied during the call may show in part (some of its
 * keys written, others not yet, in any key order) and a key the batch
 * writes twice may show its value between the two.  Each entry is still a
 * state its key had during the call, keys are still returned once each in
 * ascending order.  For a caller that needs no more than that per key: the
 * Go engine's checkpoint, whose recovery replays every batch numbered
 * after the snapshot whole, over whatever the scan showed.  Why:
 * an atomic call re-reads its whole page whenever a batch lands during it
 * and, after a few such retries, takes the batch lock for the page, so
 * under a steady stream of batches a long page costs several reads and
 * stops every batch while it runs; this call does one read and stops
 * none.  Everything else is as for mantis_db_scan_entries.
 */
mantis_status mantis_db_scan_entries_relaxed(mantis_db *db, const void *start,
					     size_t start_len, bool start_exclusive,
					     const void *end, size_t end_len, uint64_t now,
					     void *buf, size_t cap, size_t budget,
					     size_t max_count, size_t *out_len,
					     size_t *out_count, bool *out_done);

/* Counters are sums of per-thread stripes: a snapshot, not a transaction. */
typedef struct mantis_db_stats {
	uint64_t keys;	      /* entries in the map (expired ones not yet removed included) */
	uint64_t live_bytes;  /* key + value bytes of those entries            */
	uint64_t gets;	      /* mantis_db_get calls that reached the map      */
	uint64_t misses;      /* of which not found or expired                 */
	uint64_t puts;	      /* puts, including those inside batches          */
	uint64_t deletes;     /* deletes, including those inside batches       */
	uint64_t batches;     /* successful mantis_db_apply calls              */
	uint64_t scans;	      /* mantis_db_scan calls                          */
	int64_t native_bytes; /* mantis_alloc_get_stats().bytes_in_use, process-wide */
	uint64_t expired;     /* expired entries removed by mantis_db_sweep    */
} mantis_db_stats;

/* Fills *out (borrowed).  MANTIS_INVALID for NULL db or out. */
mantis_status mantis_db_stats_get(mantis_db *db, mantis_db_stats *out);

/*
 * One bounded step of the background expiry sweep: mantis_skiplist_sweep
 * on the db's map (cursor, buffer ownership and statuses as documented
 * there; start longer than the db's key limit is MANTIS_TOO_LARGE).
 * Removes entries expired at `now` whose record is unchanged, counts them
 * in stats.expired and reports them in *reclaimed.  Writes no log record
 * and needs none: expiry is absolute and recovery drops expired records.
 * Runs concurrently with every call but mantis_db_close; a racing put or
 * batch that replaces an expired value wins.
 */
mantis_status mantis_db_sweep(mantis_db *db, uint64_t now, const void *start,
			      size_t start_len, size_t max_visit,
			      void *next_buf, size_t next_cap,
			      size_t *next_len, size_t *reclaimed);

/*
 * Does nothing and returns MANTIS_OK.  Exists so the Go benchmarks can
 * measure the fixed cost of one cgo crossing.
 */
mantis_status mantis_noop(void);

#ifdef __cplusplus
}
#endif

#endif /* MANTIS_H */
