/*
 * engine.c -- mantis_db: the in-memory index the Go engine wraps.  It
 * stores, orders by key and reclaims; it neither logs nor orders writes.
 * The Go engine shell (go/storage) logs each write (go/wal) and serialises
 * writes to one key before it calls in here, so per key, calls arrive in
 * log order.  This file checks what would corrupt memory (NULL pointers,
 * lengths over the limits, malformed batch records) and returns a status,
 * makes batches atomic for readers, encodes scan results, and keeps
 * striped statistics.  The ordered map is the lock-free skiplist
 * (skiplist.c); memory reclamation is its epoch.
 *
 * Batch atomicity: a sequence lock (batch_seq) written only by batches.
 * A reader (get, one scan call) samples it, reads, and retries if a batch
 * ran meanwhile, so it sees a batch entirely or not at all; the one
 * exception, mantis_db_scan_entries_relaxed, reads without it.  Readers take
 * no lock a writer holds and write nothing shared beyond their borrowed
 * epoch slot and a per-thread statistics stripe: the fast path costs two
 * loads of a line that only batches write.  A reader that keeps meeting
 * batches (or a long batch) stops spinning after a few attempts and takes
 * batch_mu, the mutex batches hold while they publish, so nothing starves
 * and nobody spins for the length of a 256 MiB batch.  The simpler
 * alternative, a pthread_rwlock with every get on the read side, puts an
 * atomic read-modify-write of one shared word on every get; that word's
 * cache line bounces between every reading core, which is what stops
 * scaling on bigger machines, so the seqlock is kept.  Single-key writes
 * do not touch the seqlock: a put is one key, which a reader sees
 * atomically anyway.
 *
 * Thread safety: every function may run concurrently with every other on
 * the same db except mantis_db_close (see mantis.h).  Concurrent writes to
 * one key are safe (the skiplist's CAS decides) but their order is the
 * caller's to fix; batches are serialised by batch_mu.
 */
#include "alloc.h"
#include "codec_view.h"
#include "le.h"
#include "skiplist.h"

#include <mantis.h>

#include <ck_pr.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define STAT_STRIPES 32 /* power of two */
#define READ_SPINS 64	/* sampling attempts before a reader waits on batch_mu */
#define READ_RETRIES 3	/* torn reads before a reader waits on batch_mu */

enum stat_counter {
	ST_GETS,
	ST_MISSES,
	ST_PUTS,
	ST_DELETES,
	ST_BATCHES,
	ST_SCANS,
	ST_EXPIRED,
	ST_COUNT_
};

/* One cache line of counters per stripe; threads pick a stripe once. */
struct stat_stripe {
	uint64_t c[8];
} __attribute__((aligned(64)));

struct mantis_db {
	uint32_t max_key;
	uint32_t max_value;
	mantis_skiplist *sl;

	/* Odd while a batch publishes; written only under batch_mu. */
	unsigned batch_seq __attribute__((aligned(64)));
	/* Serialises batches; held for the whole publish step. */
	pthread_mutex_t batch_mu;

	struct stat_stripe stats[STAT_STRIPES];
};

static unsigned stat_next;
static _Thread_local int stat_slot = -1;

static void
count(mantis_db *db, enum stat_counter c, uint64_t n)
{
	if (stat_slot < 0) {
		/* Round-robin spread; the add orders nothing. */
		stat_slot = (int)(__atomic_fetch_add(&stat_next, 1, __ATOMIC_RELAXED) &
				  (STAT_STRIPES - 1));
	}
	/* Statistics only: a relaxed add, ordering no other memory.  A stripe
	 * may be shared by two threads, so it must still be atomic. */
	__atomic_fetch_add(&db->stats[stat_slot].c[c], n, __ATOMIC_RELAXED);
}

static uint64_t
count_sum(const mantis_db *db, enum stat_counter c)
{
	uint64_t s = 0;
	for (int i = 0; i < STAT_STRIPES; i++)
		s += __atomic_load_n(&db->stats[i].c[c], __ATOMIC_RELAXED);
	return s;
}

/* ---- argument checks ---------------------------------------------------- */

static mantis_status
check_key(const mantis_db *db, const void *key, size_t key_len)
{
	if (key == NULL || key_len == 0)
		return MANTIS_INVALID;
	if (key_len > db->max_key)
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

static mantis_status
check_value(const mantis_db *db, const void *value, size_t value_len)
{
	if (value == NULL && value_len != 0)
		return MANTIS_INVALID;
	if (value_len > db->max_value)
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* ---- batch seqlock, reader side ----------------------------------------- */

struct read_guard {
	unsigned version;
	int attempts;
	bool locked; /* holding batch_mu: no batch can run, no retry needed */
};

static void
read_begin(mantis_db *db, struct read_guard *g)
{
	if (!g->locked && g->attempts < READ_RETRIES) {
		for (int spin = 0; spin < READ_SPINS; spin++) {
			/* Acquire: the map reads below happen after this
			 * sample (pairs with the release store in write_end). */
			unsigned v = __atomic_load_n(&db->batch_seq, __ATOMIC_ACQUIRE);
			if ((v & 1) == 0) {
				g->version = v;
				g->attempts++;
				return;
			}
			cpu_relax();
		}
	}
	if (!g->locked) {
		/* A batch is long or batches keep coming: wait for the one in
		 * progress and keep the next out while this read runs. */
		pthread_mutex_lock(&db->batch_mu);
		g->locked = true;
	}
}

/* True when the read must be redone because a batch published meanwhile. */
static bool
read_retry(mantis_db *db, struct read_guard *g)
{
	if (g->locked)
		return false;
	/* No fence needed: the map reads above are acquire loads of node and
	 * record pointers, so this re-sample cannot move before them, and a
	 * read that saw any store of a batch synchronises with it and sees
	 * the batch's odd (or a later) value here.  (A standalone fence would
	 * also be invisible to TSan, which this file must stay clean under.) */
	return __atomic_load_n(&db->batch_seq, __ATOMIC_RELAXED) != g->version;
}

static void
read_end(mantis_db *db, struct read_guard *g)
{
	if (g->locked)
		pthread_mutex_unlock(&db->batch_mu);
}

/* ---- batch seqlock, writer side (under batch_mu) ------------------------ */

static void
write_begin(mantis_db *db)
{
	unsigned v = __atomic_load_n(&db->batch_seq, __ATOMIC_RELAXED);
	/* The standard seqlock writer: odd value, then a store fence, then the
	 * batch's map stores.  The skiplist's ck_pr CAS is not a barrier on
	 * every target (CK 0.7.1's aarch64 CAS has no ordering, and delete
	 * has no fence before its DEAD CAS), so ordering cannot lean on it. */
	__atomic_store_n(&db->batch_seq, v + 1, __ATOMIC_RELAXED);
	/* Orders the odd batch_seq before every map store of the batch, so a
	 * reader whose acquire load sees any of them re-samples odd (or
	 * later) in read_retry.  (TSan does not model the fence; in its build
	 * CK's CAS are C11 builtins, which give TSan the same edge.) */
	ck_pr_fence_store();
}

static void
write_end(mantis_db *db)
{
	unsigned v = __atomic_load_n(&db->batch_seq, __ATOMIC_RELAXED);
	/* Release: every map store of the batch is ordered before the even
	 * value (pairs with the acquire load in read_begin). */
	__atomic_store_n(&db->batch_seq, v + 1, __ATOMIC_RELEASE);
}

/* ---- open / close -------------------------------------------------------- */

mantis_status
mantis_db_open(const mantis_db_options *opts, mantis_db **out)
{
	if (out == NULL)
		return MANTIS_INVALID;
	mantis_db *db = mantis_aligned_alloc(64, sizeof(*db));
	if (db == NULL)
		return MANTIS_NOMEM;
	memset(db, 0, sizeof(*db));
	db->max_key = MANTIS_MAX_KEY_SIZE;
	db->max_value = MANTIS_MAX_VALUE_SIZE;
	if (opts != NULL) {
		if (opts->max_key_size != 0 && opts->max_key_size < db->max_key)
			db->max_key = opts->max_key_size;
		if (opts->max_value_size != 0 && opts->max_value_size < db->max_value)
			db->max_value = opts->max_value_size;
	}
	mantis_status st = mantis_skiplist_new(&db->sl);
	if (st != MANTIS_OK) {
		mantis_free(db, sizeof(*db));
		return st;
	}
	pthread_mutex_init(&db->batch_mu, NULL);
	*out = db;
	return MANTIS_OK;
}

void
mantis_db_close(mantis_db *db)
{
	if (db == NULL)
		return;
	/* No call is running (caller's guarantee), so the skiplist can free
	 * every node and every record retired through its epoch. */
	mantis_skiplist_free(db->sl);
	pthread_mutex_destroy(&db->batch_mu);
	mantis_free(db, sizeof(*db));
}

/* ---- single-key operations ---------------------------------------------- */

mantis_status
mantis_db_put(mantis_db *db, const void *key, size_t key_len,
	      const void *value, size_t value_len, uint64_t expires_at)
{
	if (db == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_key(db, key, key_len);
	if (st == MANTIS_OK)
		st = check_value(db, value, value_len);
	if (st != MANTIS_OK)
		return st;
	/* No sequence number: the core keeps none (the log's are Go's). */
	st = mantis_skiplist_put(db->sl, key, key_len, value, value_len, 0, expires_at);
	if (st == MANTIS_OK)
		count(db, ST_PUTS, 1);
	return st;
}

mantis_status
mantis_db_delete(mantis_db *db, const void *key, size_t key_len)
{
	if (db == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_key(db, key, key_len);
	if (st != MANTIS_OK)
		return st;
	st = mantis_skiplist_delete(db->sl, key, key_len);
	if (st == MANTIS_OK || st == MANTIS_NOT_FOUND)
		count(db, ST_DELETES, 1);
	return st;
}

mantis_status
mantis_db_get(mantis_db *db, const void *key, size_t key_len, uint64_t now,
	      void *buf, size_t cap, size_t *value_len)
{
	if (db == NULL || value_len == NULL || (buf == NULL && cap != 0))
		return MANTIS_INVALID;
	mantis_status st = check_key(db, key, key_len);
	if (st != MANTIS_OK)
		return st;
	struct read_guard g = {0};
	do {
		read_begin(db, &g);
		st = mantis_skiplist_get(db->sl, key, key_len, now, buf, cap, value_len,
					 NULL, NULL);
	} while (read_retry(db, &g));
	read_end(db, &g);
	count(db, ST_GETS, 1);
	if (st == MANTIS_NOT_FOUND)
		count(db, ST_MISSES, 1);
	return st;
}

mantis_status
mantis_db_random_key(mantis_db *db, uint64_t seed, uint64_t now, unsigned draws, void *buf,
		     size_t cap, size_t *key_len)
{
	if (db == NULL)
		return MANTIS_INVALID;
	/* Under the batch seqlock like get; a retry redraws with the same
	 * seed, so a retry on an unchanged map draws the same slots. */
	struct read_guard g = {0};
	mantis_status st;
	do {
		read_begin(db, &g);
		st = mantis_skiplist_random_key(db->sl, seed, now, draws, buf, cap, key_len);
	} while (read_retry(db, &g));
	read_end(db, &g);
	return st;
}

/* ---- batches ------------------------------------------------------------- */

/*
 * A batch buffer is a plain concatenation of records (docs/FORMAT.md):
 *
 *   +------------------+------------------+-----+------------------+
 *   | PUT/DELETE rec 0 | PUT/DELETE rec 1 | ... | PUT/DELETE rec n |
 *   +------------------+------------------+-----+------------------+
 *   each: 32-byte header | key | value | pad to 8, own CRC, seq ignored
 *
 * Pass 1 decodes and checks every record (mantis_db_apply: CRCs included;
 * mantis_db_apply_verified: framing, types and limits, not the CRCs its
 * caller owns); pass 2 publishes.  Nothing is published unless pass 1 accepted
 * all.
 *
 * Known gap (out of memory): pass 2 allocates (each put copies its value
 * into a new skiplist record, a new key also a node), so MANTIS_NOMEM in
 * pass 2 returns with a prefix of the batch published.  Readers never saw
 * the partial state while the seqlock was odd, but they see it after.
 * The fix is an allocate-then-publish split in the skiplist (prepare every
 * node and record and reserve index room first, then link with steps that
 * cannot fail; hx_reserve already has that shape); until then, an undo
 * would itself need memory, so it is not attempted.
 */
/* The records mantis_db_apply prefetches for at once: enough misses in
 * flight to cover one's latency, few enough that the lines are still
 * cached when the puts use them (as SL_APPEND_AHEAD for a load); at most
 * sl_prefetch_nodes' SL_PREFETCH_MAX. */
#define APPLY_AHEAD 16

/* Pass 1.  crc: the full decode (CRCs, padding, field rules); otherwise
 * mantis_codec_frame's memory-safety checks only, for records whose CRCs
 * the caller verified (mantis_db_apply_verified). */
static mantis_status
batch_validate(const mantis_db *db, const void *batch, size_t len, size_t *bad_offset,
	       bool crc)
{
	mantis_codec_iter it;
	mantis_record rec;
	mantis_status st;
	mantis_codec_iter_init(&it, batch, len);
	for (;;) {
		if (crc) {
			st = mantis_codec_iter_next(&it, &rec);
		} else if (it.offset == it.len) {
			st = MANTIS_END;
		} else if ((st = mantis_codec_frame(it.buf + it.offset, it.len - it.offset,
						   &rec)) == MANTIS_OK) {
			it.offset += rec.size;
		}
		if (st != MANTIS_OK)
			break;
		size_t at = it.offset - rec.size;
		if (rec.type != MANTIS_REC_PUT && rec.type != MANTIS_REC_DELETE)
			st = MANTIS_INVALID;
		else if (rec.key_len == 0)
			st = MANTIS_INVALID;
		else if (rec.key_len > db->max_key || rec.value_len > db->max_value)
			st = MANTIS_TOO_LARGE;
		if (st != MANTIS_OK) {
			if (bad_offset != NULL)
				*bad_offset = at;
			return st;
		}
	}
	if (st != MANTIS_END) {
		if (bad_offset != NULL)
			*bad_offset = it.offset;
		return st;
	}
	return MANTIS_OK;
}

/*
 * The splices of a window's likely inserts (puts whose index probe met an
 * empty slot first: `absent`, from sl_prefetch_nodes), searched in lockstep
 * (sl_find_paths) when there are two or more to overlap and they are not
 * ascending: an ascending run is spliced from the slot's own hint
 * (skiplist.c, struct sl_hint) without a search from the head, which
 * paths searched before the run's earlier keys went in would not do.
 * Only puts before the window's first delete: a delete that removes its
 * key makes every path searched before it stale (retire_gen).
 * path_of[] comes all NULL; a record whose splice was searched gets its
 * path.  Hints: what the puts then do is what they do without them.
 */
static void
find_insert_paths(mantis_db *db, const uint8_t *const *keys, const uint32_t *klens,
		  const bool *put, size_t n, uint64_t absent, struct sl_hint *paths,
		  struct sl_hint **path_of)
{
	const uint8_t *k[APPLY_AHEAD];
	uint32_t kl[APPLY_AHEAD];
	size_t rec[APPLY_AHEAD], m = 0;
	bool ascending = true;
	for (size_t i = 0; i < n && put[i]; i++) {
		if (!(absent & ((uint64_t)1 << i)))
			continue;
		if (m > 0 && sl_bytes_cmp(k[m - 1], kl[m - 1], keys[i], klens[i]) >= 0)
			ascending = false;
		k[m] = keys[i];
		kl[m] = klens[i];
		rec[m++] = i;
	}
	if (m < 2 || ascending)
		return;
	sl_find_paths(db->sl, k, kl, m, paths);
	for (size_t j = 0; j < m; j++)
		path_of[rec[j]] = &paths[j];
}

/*
 * The second and third passes of a write window (batch_apply, adds):
 * with hash[] hashed and its slots prefetched (sl_hash_prefetch), the
 * nodes and records they lead to, then the splices of the window's likely
 * inserts (find_insert_paths; path_of[] comes all NULL).  One key has no
 * other's misses to overlap with, so a window of one gets neither pass
 * (the passes would only add epoch sections); a window of updates (every
 * slot led to a node) has no splices to search.  Returns whether the
 * window's keys are warm (their slots and nodes prefetched), the warm
 * argument of their puts.
 */
static bool
prepare_window(mantis_db *db, const uint64_t *hash, const uint8_t *const *keys,
	       const uint32_t *klens, const bool *put, size_t n, struct sl_hint *paths,
	       struct sl_hint **path_of)
{
	if (n < 2)
		return false;
	uint64_t absent = sl_prefetch_nodes(db->sl, hash, n, true);
	if (absent != 0)
		find_insert_paths(db, keys, klens, put, n, absent, paths, path_of);
	return true;
}

static mantis_status
batch_apply(mantis_db *db, const void *batch, size_t len, size_t *bad_offset, bool crc)
{
	if (db == NULL || (batch == NULL && len != 0))
		return MANTIS_INVALID;
	if (len > MANTIS_MAX_BATCH_SIZE)
		return MANTIS_TOO_LARGE;
	if (len == 0)
		return MANTIS_OK;
	mantis_status st = batch_validate(db, batch, len, bad_offset, crc);
	if (st != MANTIS_OK)
		return st;

	pthread_mutex_lock(&db->batch_mu);

	size_t puts = 0, dels = 0;
	mantis_record rec;
	/* Pass 1 checked every record (CRCs too, unless the caller verified
	 * them: mantis_db_apply_verified) and the bytes are the caller's for
	 * the whole call: walk them without checking again.
	 * In windows of APPLY_AHEAD records: hash each key and prefetch its
	 * index slot (a random address, a miss in a large index), then the
	 * nodes and records those slots lead to, then, for the puts whose
	 * probe met an empty slot (likely inserts), their splices in the list
	 * (find_insert_paths), then apply the window in order with those
	 * hashes and splices.  Each step is a pass over the window, so the
	 * misses of its keys overlap instead of each stalling its own put.
	 * Prefetches and splices are hints and the hash a pure function of
	 * the key: the order of the operations, duplicate keys, statistics
	 * and what readers see are as without them. */
	write_begin(db);
	for (size_t off = 0; st == MANTIS_OK && off < len;) {
		uint64_t hash[APPLY_AHEAD];
		const uint8_t *keys[APPLY_AHEAD];
		uint32_t klens[APPLY_AHEAD];
		bool put[APPLY_AHEAD];
		size_t n = 0;
		for (size_t o = off; n < APPLY_AHEAD && o < len; n++, o += rec.size) {
			mantis_codec_view((const uint8_t *)batch + o, &rec);
			hash[n] = sl_hash_prefetch(db->sl, rec.key, rec.key_len);
			keys[n] = rec.key;
			klens[n] = rec.key_len;
			put[n] = rec.type == MANTIS_REC_PUT;
		}
		struct sl_hint paths[APPLY_AHEAD], *path_of[APPLY_AHEAD] = {NULL};
		bool warm = prepare_window(db, hash, keys, klens, put, n, paths, path_of);
		for (size_t i = 0; st == MANTIS_OK && i < n; i++, off += rec.size) {
			mantis_codec_view((const uint8_t *)batch + off, &rec);
			if (rec.type == MANTIS_REC_PUT) {
				st = sl_put_hashed(db->sl, rec.key, rec.key_len, rec.value,
						   rec.value_len, 0, rec.expires_at, hash[i],
						   warm, path_of[i]);
				puts += st == MANTIS_OK;
			} else {
				/* Cannot fail for a validated key: absent is fine. */
				(void)sl_delete_hashed(db->sl, rec.key, rec.key_len, hash[i]);
				dels++;
			}
		}
	}
	write_end(db);

	pthread_mutex_unlock(&db->batch_mu);
	count(db, ST_PUTS, puts);
	count(db, ST_DELETES, dels);
	if (st == MANTIS_OK)
		count(db, ST_BATCHES, 1);
	return st;
}

mantis_status
mantis_db_apply(mantis_db *db, const void *batch, size_t len, size_t *bad_offset)
{
	return batch_apply(db, batch, len, bad_offset, true);
}

mantis_status
mantis_db_apply_verified(mantis_db *db, const void *batch, size_t len, size_t *bad_offset)
{
	return batch_apply(db, batch, len, bad_offset, false);
}

mantis_status
mantis_db_prefetch(mantis_db *db, const void *keys, const uint32_t *klens, size_t n)
{
	if (db == NULL || (n != 0 && (keys == NULL || klens == NULL)))
		return MANTIS_INVALID;
	/* As mantis_db_apply's windows of APPLY_AHEAD keys: hash
	 * and prefetch every slot of a window, then the nodes and records
	 * they lead to.  Hints only: no seqlock, nothing to retry. */
	const uint8_t *k = keys;
	for (size_t i = 0; i < n;) {
		uint64_t hash[APPLY_AHEAD];
		size_t m = 0;
		for (; m < APPLY_AHEAD && i < n; m++, i++) {
			hash[m] = sl_hash_prefetch(db->sl, k, klens[i]);
			k += klens[i];
		}
		sl_prefetch_nodes(db->sl, hash, m, false);
	}
	return MANTIS_OK;
}

/* ---- counters ----------------------------------------------------------- */

mantis_status
mantis_db_add_int(mantis_db *db, const void *keys, const uint32_t *klens,
		  const int64_t *deltas, size_t n, uint64_t now, int64_t *results,
		  uint8_t *outcomes, size_t *done)
{
	size_t i = 0;
	mantis_status st = MANTIS_OK;
	if (db == NULL || (n != 0 && (keys == NULL || klens == NULL || deltas == NULL ||
				      results == NULL || outcomes == NULL))) {
		st = MANTIS_INVALID;
		goto out;
	}
	/* In windows of APPLY_AHEAD keys, as batch_apply's: the index slots,
	 * then the nodes and records they lead to, then the splices of the
	 * keys likely absent (an add to an absent key inserts it), then the
	 * adds in order.  Prefetches and splices are hints. */
	const uint8_t *k = keys;
	while (i < n) {
		uint64_t hash[APPLY_AHEAD];
		const uint8_t *wkeys[APPLY_AHEAD];
		bool put[APPLY_AHEAD];
		size_t m = 0;
		const uint8_t *wk = k;
		mantis_status bad = MANTIS_OK; /* the key that ends the window early */
		for (; m < APPLY_AHEAD && i + m < n; m++) {
			bad = check_key(db, wk, klens[i + m]);
			if (bad != MANTIS_OK)
				break;
			hash[m] = sl_hash_prefetch(db->sl, wk, klens[i + m]);
			wkeys[m] = wk;
			put[m] = true;
			wk += klens[i + m];
		}
		struct sl_hint paths[APPLY_AHEAD], *path_of[APPLY_AHEAD] = {NULL};
		bool warm = prepare_window(db, hash, wkeys, klens + i, put, m, paths, path_of);
		for (size_t j = 0; j < m; j++, i++) {
			mantis_add_outcome o = MANTIS_ADD_OK;
			st = sl_add_int(db->sl, k, klens[i], hash[j], deltas[i], now,
					db->max_value, warm, path_of[j], &results[i], &o);
			if (st != MANTIS_OK)
				goto out;
			outcomes[i] = (uint8_t)o;
			if (o == MANTIS_ADD_OK)
				count(db, ST_PUTS, 1);
			k += klens[i];
		}
		if (bad != MANTIS_OK) { /* key i */
			st = bad;
			break;
		}
	}
out:
	if (done != NULL)
		*done = i;
	return st;
}

/* ---- bulk load ----------------------------------------------------------- */

static mantis_status
load_frame(const mantis_db *db, const uint8_t *p, size_t len, mantis_record *rec)
{
	mantis_status st = mantis_codec_frame(p, len, rec);
	if (st != MANTIS_OK)
		return st;
	if (rec->type != MANTIS_REC_PUT || rec->key_len == 0)
		return MANTIS_INVALID;
	if (rec->key_len > db->max_key || rec->value_len > db->max_value)
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

/*
 * A load split in two (mantis.h): build frames the records and allocates
 * every node and record (the copies and first touches of fresh memory,
 * most of a load's work), link appends them in order.  The run remembers
 * where building stopped and why, so that link reports exactly what
 * mantis_db_load reports for the same bytes.
 */
struct mantis_load_run {
	size_t n;		/* entries built */
	size_t cap;		/* entries ents[] and at[] have room for */
	struct sl_built *ents;	/* n, in record order; their nodes owned by the run */
	size_t *at;		/* offset in recs of each entry's record */
	mantis_status st;	/* why building stopped early (MANTIS_OK: it did not) */
	size_t stop;		/* offset of the record building stopped at */
};

void
mantis_db_load_run_free(mantis_load_run *run)
{
	if (run == NULL)
		return;
	for (size_t i = 0; i < run->n; i++)
		sl_build_free(run->ents[i].node);
	mantis_free(run->ents, run->cap * sizeof(*run->ents));
	mantis_free(run->at, run->cap * sizeof(*run->at));
	mantis_free(run, sizeof(*run));
}

/* Builds a run from recs[0..len), stopping after `limit` records (run->st
 * MANTIS_OK, run->stop where it stopped) or at the first record it
 * refuses (run->st says why). */
static mantis_status
load_build(const mantis_db *db, const uint8_t *p, size_t len, uint64_t now, size_t limit,
	   mantis_load_run **out)
{
	mantis_load_run *run = mantis_calloc(1, sizeof(*run));
	if (run == NULL)
		return MANTIS_NOMEM;
	/* A record takes at least a header: no more entries than that. */
	run->cap = len / MANTIS_RECORD_HEADER_SIZE < limit ? len / MANTIS_RECORD_HEADER_SIZE
							    : limit;
	if (run->cap != 0) {
		run->ents = mantis_malloc(run->cap * sizeof(*run->ents));
		run->at = mantis_malloc(run->cap * sizeof(*run->at));
		if (run->ents == NULL || run->at == NULL) {
			mantis_db_load_run_free(run);
			return MANTIS_NOMEM;
		}
	}
	size_t o = 0, seen = 0;
	mantis_status st = MANTIS_OK;
	mantis_alloc_tally t = {0, 0};
	for (; o < len && seen < limit; seen++) {
		mantis_record rec;
		if ((st = load_frame(db, p + o, len - o, &rec)) != MANTIS_OK)
			break;
		if (rec.expires_at == 0 || rec.expires_at > now) {
			mantis_skiplist_entry e = {
			    .key = rec.key,
			    .key_len = rec.key_len,
			    .value = rec.value,
			    .value_len = rec.value_len,
			    .seq = 0, /* the core keeps none */
			    .expires_at = rec.expires_at,
			};
			if ((st = sl_build(db->sl, &e, &run->ents[run->n], &t)) != MANTIS_OK)
				break;
			run->at[run->n++] = o;
		}
		o += rec.size;
	}
	mantis_alloc_flush(&t);
	run->st = st;
	run->stop = o;
	*out = run;
	return MANTIS_OK;
}

mantis_status
mantis_db_load_build(const mantis_db *db, const void *recs, size_t len, uint64_t now,
		     mantis_load_run **out)
{
	if (db == NULL || out == NULL || (recs == NULL && len != 0))
		return MANTIS_INVALID;
	return load_build(db, recs, len, now, SIZE_MAX, out);
}

mantis_status
mantis_db_load_link(mantis_db *db, mantis_load_run *run, size_t *bad_offset)
{
	if (db == NULL || run == NULL) {
		mantis_db_load_run_free(run);
		return MANTIS_INVALID;
	}
	/* No seqlock and no batch_mu: nothing else uses the db (contract). */
	size_t i = 0, bad = run->stop;
	mantis_status st = MANTIS_OK;
	while (i < run->n) {
		size_t k = 0;
		st = sl_append_built(db->sl, run->ents + i, run->n - i, &k);
		i += k;
		if (st != MANTIS_OK || i == run->n)
			break;
		/* Not after the last key loaded (a duplicate or out-of-order
		 * key, which a valid snapshot never holds): the ordinary put,
		 * which takes any order, so any input loads as the same puts
		 * in the same order would. */
		struct sl_node *n = run->ents[i].node;
		const struct sl_rec *r = (const struct sl_rec *)n->rec;
		st = mantis_skiplist_put(db->sl, sl_node_key(n), n->klen, r->value, r->vlen, 0,
					 r->expires_at);
		if (st != MANTIS_OK)
			break;
		sl_build_free(n);
		i++;
	}
	if (st != MANTIS_OK)
		bad = run->at[i];
	else
		st = run->st;
	count(db, ST_PUTS, i);
	/* The run keeps only what was not loaded (ents is NULL when the
	 * run has no room, and then i is 0). */
	if (i != 0) {
		memmove(run->ents, run->ents + i, (run->n - i) * sizeof(*run->ents));
		run->n -= i;
	}
	mantis_db_load_run_free(run);
	if (st != MANTIS_OK && bad_offset != NULL)
		*bad_offset = bad;
	return st;
}

/* Records per run when mantis_db_load builds and links by itself: bounds
 * the run's arrays whatever len is. */
#define LOAD_RUN 4096

mantis_status
mantis_db_load(mantis_db *db, const void *recs, size_t len, uint64_t now, size_t *bad_offset)
{
	if (db == NULL || (recs == NULL && len != 0))
		return MANTIS_INVALID;
	const uint8_t *p = recs;
	size_t off = 0;
	while (off < len) {
		mantis_load_run *run = NULL;
		size_t bad = 0;
		mantis_status st = load_build(db, p + off, len - off, now, LOAD_RUN, &run);
		if (st != MANTIS_OK) {
			if (bad_offset != NULL)
				*bad_offset = off;
			return st;
		}
		size_t stop = run->stop;
		st = mantis_db_load_link(db, run, &bad);
		if (st != MANTIS_OK) {
			if (bad_offset != NULL)
				*bad_offset = off + bad;
			return st;
		}
		off += stop;
	}
	return MANTIS_OK;
}

mantis_status
mantis_db_reserve(mantis_db *db, uint64_t keys)
{
	if (db == NULL)
		return MANTIS_INVALID;
	return mantis_skiplist_reserve(db->sl, keys);
}

const mantis_skiplist *
engine_list(const mantis_db *db)
{
	return db == NULL ? NULL : db->sl;
}

/* ---- scan ---------------------------------------------------------------- */

struct scan_ctx {
	const void *end;
	size_t end_len;
	uint8_t *buf;
	size_t cap, used, count, need;
	size_t budget;	  /* key+value bytes to aim for, 0 = only cap bounds it */
	size_t max_count; /* entries at most, 0 = no limit */
	size_t payload;	  /* key+value bytes written so far */
	bool full;      /* stopped with entries left (cap or budget reached) */
	bool entries; /* MANTIS_SCAN_ENTRY framing instead of codec records */
};

/* Writes e as a scan entry (mantis.h, mantis_db_scan_entries) into
 * buf[0..cap); *w = its size either way. */
static mantis_status
put_scan_entry(uint8_t *buf, size_t cap, const mantis_skiplist_entry *e, size_t *w)
{
	size_t size = MANTIS_SCAN_ENTRY_HEADER_SIZE + e->key_len + e->value_len;
	*w = size;
	if (cap < size)
		return MANTIS_BUFFER_TOO_SMALL;
	le_st32(buf, (uint32_t)e->key_len);
	le_st32(buf + 4, (uint32_t)e->value_len);
	le_st64(buf + 8, e->expires_at);
	memcpy(buf + MANTIS_SCAN_ENTRY_HEADER_SIZE, e->key, e->key_len);
	if (e->value_len != 0)
		memcpy(buf + MANTIS_SCAN_ENTRY_HEADER_SIZE + e->key_len, e->value, e->value_len);
	return MANTIS_OK;
}

/* mantis_skiplist_scan callback: encodes one entry, false to stop. */
static bool
scan_visit(void *arg, const mantis_skiplist_entry *e)
{
	struct scan_ctx *c = arg;
	if (c->end_len != 0 && sl_bytes_cmp(e->key, e->key_len, c->end, c->end_len) >= 0)
		return false;
	size_t payload = e->key_len + e->value_len;
	if ((c->max_count != 0 && c->count >= c->max_count) ||
	    (c->budget != 0 && c->count != 0 && c->payload + payload > c->budget)) {
		c->full = true; /* count or budget spent; not a BUFFER_TOO_SMALL */
		return false;
	}
	uint8_t *dst = c->buf == NULL ? NULL : c->buf + c->used;
	size_t w = 0;
	mantis_status st;
	if (c->entries) {
		st = put_scan_entry(dst, c->cap - c->used, e, &w);
	} else {
		mantis_record r = {.type = MANTIS_REC_PUT,
				   .seq = e->seq,
				   .expires_at = e->expires_at,
				   .key = e->key,
				   .key_len = (uint32_t)e->key_len,
				   .value = e->value,
				   .value_len = (uint32_t)e->value_len};
		st = mantis_codec_encode(dst, c->cap - c->used, &r, &w);
	}
	if (st != MANTIS_OK) {
		/* BUFFER_TOO_SMALL; nothing else is possible for entries the map
		 * accepted, but any failure stops here rather than skipping. */
		c->full = true;
		c->need = w;
		return false;
	}
	c->used += w;
	c->payload += payload;
	c->count++;
	return true;
}

/* The scans' one body: entries picks the framing; atomic makes the call's
 * entries atomic with respect to batches (the batch seqlock's read side),
 * without it each entry is read once, as it is. */
static mantis_status
db_scan(mantis_db *db, bool entries, bool atomic, const void *start, size_t start_len,
	bool start_exclusive, const void *end, size_t end_len, uint64_t now,
	void *buf, size_t cap, size_t budget, size_t max_count, size_t *out_len, size_t *out_count,
	bool *out_done)
{
	if (db == NULL || out_len == NULL || out_count == NULL || out_done == NULL ||
	    (start == NULL && start_len != 0) || (end == NULL && end_len != 0) ||
	    (buf == NULL && cap != 0))
		return MANTIS_INVALID;
	count(db, ST_SCANS, 1);
	struct read_guard g = {0};
	struct scan_ctx c;
	mantis_status st;
	do {
		if (atomic)
			read_begin(db, &g);
		c = (struct scan_ctx){.end = end,
				      .end_len = end_len,
				      .buf = buf,
				      .cap = cap,
				      .budget = budget,
				      .max_count = max_count,
				      .entries = entries};
		st = mantis_skiplist_scan(db->sl, start, start_len, start_exclusive, now,
					  scan_visit, &c, NULL);
	} while (atomic && read_retry(db, &g)); /* not atomic: one read, as it is */
	if (atomic)
		read_end(db, &g);
	if (st != MANTIS_OK)
		return st;
	if (c.full && c.count == 0) {
		*out_len = c.need; /* the size the first record needs */
		*out_count = 0;
		*out_done = false;
		return MANTIS_BUFFER_TOO_SMALL;
	}
	*out_len = c.used;
	*out_count = c.count;
	*out_done = !c.full; /* stopped at `end` or at the end of the map */
	return MANTIS_OK;
}

mantis_status
mantis_db_scan(mantis_db *db, const void *start, size_t start_len,
	       bool start_exclusive, const void *end, size_t end_len,
	       uint64_t now, void *buf, size_t cap, size_t *out_len,
	       size_t *out_count, bool *out_done)
{
	return db_scan(db, false, true, start, start_len, start_exclusive, end, end_len, now, buf,
		       cap, 0, 0, out_len, out_count, out_done);
}

mantis_status
mantis_db_scan_entries(mantis_db *db, const void *start, size_t start_len,
		       bool start_exclusive, const void *end, size_t end_len,
		       uint64_t now, void *buf, size_t cap, size_t budget, size_t max_count,
		       size_t *out_len, size_t *out_count, bool *out_done)
{
	return db_scan(db, true, true, start, start_len, start_exclusive, end, end_len, now, buf,
		       cap, budget, max_count, out_len, out_count, out_done);
}

mantis_status
mantis_db_scan_entries_relaxed(mantis_db *db, const void *start, size_t start_len,
			       bool start_exclusive, const void *end, size_t end_len,
			       uint64_t now, void *buf, size_t cap, size_t budget,
			       size_t max_count, size_t *out_len, size_t *out_count,
			       bool *out_done)
{
	return db_scan(db, true, false, start, start_len, start_exclusive, end, end_len, now, buf,
		       cap, budget, max_count, out_len, out_count, out_done);
}

/* ---- expiry sweep --------------------------------------------------------- */

mantis_status
mantis_db_sweep(mantis_db *db, uint64_t now, const void *start,
		size_t start_len, size_t max_visit, void *next_buf,
		size_t next_cap, size_t *next_len, size_t *reclaimed)
{
	if (db == NULL || next_len == NULL || reclaimed == NULL)
		return MANTIS_INVALID;
	if (start_len > db->max_key)
		return MANTIS_TOO_LARGE;
	/* No seqlock: the removal only takes an
	 * expired record that no read returns anyway, and its record CAS
	 * loses to any write of the key (mantis_skiplist_sweep). */
	size_t n = 0;
	mantis_status st = mantis_skiplist_sweep(db->sl, now, start, start_len, max_visit,
						 next_buf, next_cap, next_len, &n);
	if (n != 0)
		count(db, ST_EXPIRED, n);
	*reclaimed = n;
	return st;
}

/* ---- stats --------------------------------------------------------------- */

mantis_status
mantis_db_stats_get(mantis_db *db, mantis_db_stats *out)
{
	if (db == NULL || out == NULL)
		return MANTIS_INVALID;
	memset(out, 0, sizeof(*out));
	mantis_skiplist_stats ss;
	if (mantis_skiplist_stats_get(db->sl, &ss) == MANTIS_OK) {
		out->keys = ss.keys;
		out->live_bytes = ss.bytes;
	}
	out->gets = count_sum(db, ST_GETS);
	out->misses = count_sum(db, ST_MISSES);
	out->puts = count_sum(db, ST_PUTS);
	out->deletes = count_sum(db, ST_DELETES);
	out->batches = count_sum(db, ST_BATCHES);
	out->scans = count_sum(db, ST_SCANS);
	out->expired = count_sum(db, ST_EXPIRED);
	mantis_alloc_stats as;
	mantis_alloc_get_stats(&as);
	out->native_bytes = as.bytes_in_use;
	return MANTIS_OK;
}

mantis_status
mantis_noop(void)
{
	return MANTIS_OK;
}
