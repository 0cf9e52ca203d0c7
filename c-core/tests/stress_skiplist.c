/*
 * stress_skiplist.c -- multi-threaded torture of the ordered index.
 * Usage: stress_skiplist THREADS SECONDS   (make test passes "2 2")
 *
 * Six phases, each a sixth of SECONDS, threads released together by a
 * barrier (ck regressions style):
 *   1. disjoint inserts: every thread inserts its own keys; at the end all
 *      are present with their values, in order, counted right.
 *   2. overlapping put/update/delete on a small key set while readers get
 *      and scan.  A value names its key and generation and carries a hash
 *      of both (LevelDB's concurrent test idea), and the record's seq is the
 *      generation, so a reader can check that every value it sees was
 *      written for that key, whole, and with its own seq.
 *   3. iterators (the key-copy cursor, chunked and whole scans) during writes:
 *      keys in strictly ascending order, no duplicates, every value valid,
 *      and every "stable" key (present throughout) seen by every pass.
 *   4. ascending inserts (the splice-hint path) racing deletes of the keys
 *      the hints point at: each thread inserts its own interleaved ids in
 *      order and deletes, by a fixed rule, the id it inserted one step
 *      earlier, while the other threads splice next to it; a scanner
 *      checks order and values throughout.  At the end exactly the ids the
 *      rule keeps are present.
 *   5. puts and deletes of the same 4 keys by every thread (a put that
 *      finds a node its swap then sees DEAD inserts a new one).
 *   6. whole scans against stamped inserts and deletes: every key inserted
 *      before a scan began and not deleted before it ended is in it.
 * Exit status 0 on success; the first violation prints and exits 1.
 */
#include <mantis.h>

#include "stress_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAIL(...)                                              \
	do {                                                   \
		fprintf(stderr, "stress_skiplist: " __VA_ARGS__); \
		fprintf(stderr, "\n");                         \
		exit(1);                                       \
	} while (0)

static mantis_skiplist *sl;
static pthread_barrier_t barrier;
static int stop;
static int nthreads;

/* The list's shape, checked whenever no thread runs: after each phase's
 * threads join, and after its single-threaded checks and clean-up. */
static void
check_shape(const char *when)
{
	stress_check_shape(sl, "stress_skiplist", when);
}

/*
 * Runs one phase's threads: each of fns[0..nfns) on every thread index
 * 0..nthreads-1 (passed as the argument), plus extra (when not NULL) on one
 * more thread, all released together through the barrier; secs later it
 * sets stop and joins them all.
 */
static void
run_threads(void *(*const fns[])(void *), int nfns, void *(*extra)(void *), double secs)
{
	pthread_t th[2 * 256 + 1];
	int n = 0;
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	pthread_barrier_destroy(&barrier);
	pthread_barrier_init(&barrier, NULL, (unsigned)(nfns * nthreads + (extra != NULL) + 1));
	for (int t = 0; t < nthreads; t++)
		for (int f = 0; f < nfns; f++)
			pthread_create(&th[n++], NULL, fns[f], (void *)(intptr_t)t);
	if (extra != NULL)
		pthread_create(&th[n++], NULL, extra, NULL);
	pthread_barrier_wait(&barrier);
	stress_run_for(secs, &stop);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	check_shape("after the threads joined");
}

static uint64_t
mix(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Value: id(4) gen(4) hash(8) then gen%64 filler bytes equal to (uint8)gen. */
static size_t
make_value(uint8_t *v, uint32_t id, uint32_t gen)
{
	be32(v, id);
	be32(v + 4, gen);
	uint64_t h = mix(id, gen);
	memcpy(v + 8, &h, 8);
	size_t fill = gen % 64;
	memset(v + 16, (uint8_t)gen, fill);
	return 16 + fill;
}

static void
check_value(const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen, uint64_t seq)
{
	if (klen != 5 || vlen < 16)
		FAIL("bad shapes klen=%zu vlen=%zu", klen, vlen);
	uint32_t id = rd32(key + 1), vid = rd32(v), gen = rd32(v + 4);
	uint64_t h;
	memcpy(&h, v + 8, 8);
	if (vid != id)
		FAIL("value of key %u names key %u", id, vid);
	if (h != mix(id, gen))
		FAIL("torn value for key %u gen %u", id, gen);
	if (vlen != 16 + gen % 64)
		FAIL("value length %zu wrong for gen %u", vlen, gen);
	for (size_t i = 16; i < vlen; i++)
		if (v[i] != (uint8_t)gen)
			FAIL("torn filler for key %u", id);
	if (seq != gen)
		FAIL("seq %llu does not match value generation %u", (unsigned long long)seq, gen);
}

static void
make_key(uint8_t *k, char tag, uint32_t id)
{
	k[0] = (uint8_t)tag;
	be32(k + 1, id);
}

/* ------------------------------------------------------------------------ */
/* Phase 1: disjoint inserts                                                */
/* ------------------------------------------------------------------------ */

static uint64_t inserted[256];

static void *
disjoint_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	pthread_barrier_wait(&barrier);
	uint8_t k[5], v[96];
	uint32_t n = 0;
	/* Thread t owns ids t, t+T, t+2T...: interleaved, so splices from
	 * different threads land next to each other. */
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t id = n * (uint32_t)nthreads + (uint32_t)t;
		make_key(k, 'd', id);
		size_t vl = make_value(v, id, id);
		if (mantis_skiplist_put(sl, k, 5, v, vl, id, 0) != MANTIS_OK)
			FAIL("put failed");
		n++;
	}
	inserted[t] = n;
	return NULL;
}

struct order_check {
	uint8_t last[8];
	size_t last_len;
	uint64_t count;
	uint64_t stable_seen;
	bool have;
};

static void
check_order(struct order_check *o, const mantis_skiplist_entry *e)
{
	if (o->have) {
		size_t m = o->last_len < e->key_len ? o->last_len : e->key_len;
		int c = memcmp(o->last, e->key, m);
		if (c > 0 || (c == 0 && o->last_len >= e->key_len))
			FAIL("scan out of order or duplicate");
	}
	memcpy(o->last, e->key, e->key_len);
	o->last_len = e->key_len;
	o->have = true;
	o->count++;
}

static bool
scan_all_cb(void *arg, const mantis_skiplist_entry *e)
{
	check_order(arg, e);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	return true;
}

static void
phase_disjoint(double secs)
{
	void *(*const fns[])(void *) = {disjoint_main};
	run_threads(fns, 1, NULL, secs);
	uint64_t total = 0;
	for (int t = 0; t < nthreads; t++)
		total += inserted[t];
	for (int t = 0; t < nthreads; t++)
		for (uint32_t n = 0; n < inserted[t]; n++) {
			uint32_t id = n * (uint32_t)nthreads + (uint32_t)t;
			uint8_t k[5], v[96];
			size_t vl;
			uint64_t seq;
			make_key(k, 'd', id);
			if (mantis_skiplist_get(sl, k, 5, 0, v, sizeof(v), &vl, &seq, NULL) != MANTIS_OK)
				FAIL("inserted key %u missing", id);
			check_value(k, 5, v, vl, seq);
		}
	struct order_check o = {0};
	mantis_skiplist_scan(sl, NULL, 0, false, 0, scan_all_cb, &o, NULL);
	if (o.count != total)
		FAIL("scan saw %llu keys, %llu inserted", (unsigned long long)o.count,
		     (unsigned long long)total);
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	if (st.keys != total)
		FAIL("stats say %llu keys, %llu inserted", (unsigned long long)st.keys,
		     (unsigned long long)total);
	printf("phase 1: %d threads inserted %llu disjoint keys, all present\n", nthreads,
	       (unsigned long long)total);
	/* Clear for the next phase. */
	for (int t = 0; t < nthreads; t++)
		for (uint32_t n = 0; n < inserted[t]; n++) {
			uint8_t k[5];
			make_key(k, 'd', n * (uint32_t)nthreads + (uint32_t)t);
			if (mantis_skiplist_delete(sl, k, 5) != MANTIS_OK)
				FAIL("delete of inserted key failed");
		}
}

/* ------------------------------------------------------------------------ */
/* Phases 2 and 3: writers against readers and iterators                    */
/* ------------------------------------------------------------------------ */

#define HOT_KEYS 512
#define STABLE_KEYS 1000

static uint32_t gen_counter[HOT_KEYS]; /* per key, so gens rise per key */
static uint64_t ops_done[512];
static int phase;

static void *
writer_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = mix((uint64_t)t, 77) | 1, ops = 0;
	uint8_t k[5], v[96];
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t r = (uint32_t)stress_xorshift(&s);
		if (phase == 2) {
			uint32_t id = r % HOT_KEYS;
			make_key(k, 'h', id);
			if ((r >> 16) % 4 == 0) {
				mantis_status st = mantis_skiplist_delete(sl, k, 5);
				if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
					FAIL("delete: %s", mantis_strerror(st));
			} else {
				uint32_t gen = __atomic_fetch_add(&gen_counter[id], 1, __ATOMIC_RELAXED) + 1;
				size_t vl = make_value(v, id, gen);
				if (mantis_skiplist_put(sl, k, 5, v, vl, gen, 0) != MANTIS_OK)
					FAIL("put failed");
			}
		} else {
			/* Odd ids come and go between the stable even ids;
			 * stable ids are only updated, never deleted. */
			uint32_t id = r % (2 * STABLE_KEYS);
			make_key(k, 's', id);
			if ((id & 1) && (r >> 16) % 2 == 0) {
				(void)mantis_skiplist_delete(sl, k, 5);
			} else {
				uint32_t gen = (r >> 12) & 0xfffff;
				size_t vl = make_value(v, id, gen);
				if (mantis_skiplist_put(sl, k, 5, v, vl, gen, 0) != MANTIS_OK)
					FAIL("put failed");
			}
		}
		ops++;
	}
	ops_done[t] = ops;
	return NULL;
}

static bool
bounded_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct order_check *o = arg;
	check_order(o, e);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	if (e->key[0] == 's' && (rd32(e->key + 1) & 1) == 0)
		o->stable_seen++;
	return o->count % 64 != 0; /* chunks of 64 per call */
}

/* bounded_cb's checks with no chunk limit; stops past the 's' keys. */
static bool
stable_all_cb(void *arg, const mantis_skiplist_entry *e)
{
	if (e->key[0] != 's')
		return false;
	struct order_check *o = arg;
	check_order(o, e);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	if ((rd32(e->key + 1) & 1) == 0)
		o->stable_seen++;
	return true;
}

static void
iter_cb(void *arg, const mantis_skiplist_entry *e)
{
	(void)bounded_cb(arg, e);
}

static void *
reader_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = mix((uint64_t)t, 99) | 1, ops = 0;
	uint8_t k[5], v[96];
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t r = (uint32_t)stress_xorshift(&s);
		if (phase == 2 && r % 8 != 0) {
			make_key(k, 'h', r % HOT_KEYS);
			size_t vl = 0;
			uint64_t seq = 0;
			mantis_status st = mantis_skiplist_get(sl, k, 5, 0, v, sizeof(v), &vl, &seq, NULL);
			if (st == MANTIS_OK)
				check_value(k, 5, v, vl, seq);
			else if (st != MANTIS_NOT_FOUND)
				FAIL("get: %s", mantis_strerror(st));
		} else if (phase == 2) {
			struct order_check o = {0};
			make_key(k, 'h', r % HOT_KEYS);
			mantis_skiplist_scan(sl, k, 5, false, 0, bounded_cb, &o, NULL);
		} else if (r % 4 == 1) {
			/* One unbounded pass: past its first SL_RUN_AFTER keys a scan walks
			 * level 0 by runs (skiplist.c), whose segments race the
			 * writers' inserts and deletes around their anchors. */
			struct order_check o = {0};
			mantis_skiplist_scan(sl, "s", 1, false, 0, stable_all_cb, &o, NULL);
			if (o.stable_seen != STABLE_KEYS)
				FAIL("full scan saw %llu of %d stable keys",
				     (unsigned long long)o.stable_seen, STABLE_KEYS);
		} else if (r % 2 == 0) {
			/* Full pass in chunks of 64, resuming after the last key. */
			struct order_check o = {0};
			uint8_t start[8] = {'s'};
			size_t start_len = 1;
			bool excl = false;
			for (;;) {
				size_t visited = 0;
				uint64_t before = o.count;
				mantis_skiplist_scan(sl, start, start_len, excl, 0, bounded_cb, &o, &visited);
				if (o.count == before)
					break;
				memcpy(start, o.last, o.last_len);
				start_len = o.last_len;
				excl = true;
				if (o.count % 64 != 0)
					break; /* the scan ran out of keys */
			}
			if (o.stable_seen != STABLE_KEYS)
				FAIL("chunked scan saw %llu of %d stable keys",
				     (unsigned long long)o.stable_seen, STABLE_KEYS);
		} else {
			struct order_check o = {0};
			mantis_skiplist_iter *it;
			if (mantis_skiplist_iter_new(sl, &it) != MANTIS_OK)
				FAIL("iter_new");
			mantis_skiplist_iter_seek(it, "s", 1);
			mantis_status st;
			while ((st = mantis_skiplist_iter_next(it, 0, iter_cb, &o)) == MANTIS_OK)
				;
			if (st != MANTIS_END)
				FAIL("iter_next: %s", mantis_strerror(st));
			mantis_skiplist_iter_free(it);
			if (o.stable_seen != STABLE_KEYS)
				FAIL("iterator saw %llu of %d stable keys",
				     (unsigned long long)o.stable_seen, STABLE_KEYS);
		}
		ops++;
	}
	ops_done[256 + t] = ops;
	return NULL;
}

static void
phase_mixed(int which, double secs)
{
	phase = which;
	if (which == 3) {
		uint8_t k[5], v[96];
		for (uint32_t i = 0; i < 2 * STABLE_KEYS; i += 2) {
			make_key(k, 's', i);
			size_t vl = make_value(v, i, 1);
			if (mantis_skiplist_put(sl, k, 5, v, vl, 1, 0) != MANTIS_OK)
				FAIL("seed put");
		}
	}
	void *(*const fns[])(void *) = {writer_main, reader_main};
	run_threads(fns, 2, NULL, secs);
	uint64_t wops = 0, rops = 0;
	for (int t = 0; t < nthreads; t++) {
		wops += ops_done[t];
		rops += ops_done[256 + t];
	}
	/* Quiescent: the structure must agree with itself. */
	struct order_check o = {0};
	mantis_skiplist_scan(sl, NULL, 0, false, 0, scan_all_cb, &o, NULL);
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	if (st.keys != o.count)
		FAIL("stats say %llu keys, scan saw %llu", (unsigned long long)st.keys,
		     (unsigned long long)o.count);
	printf("phase %d: %llu writes, %llu reads/scans, %llu keys at end, consistent\n", which,
	       (unsigned long long)wops, (unsigned long long)rops, (unsigned long long)o.count);
}

/* ------------------------------------------------------------------------ */
/* Phase 4: ascending inserts against deletes of their neighbours           */
/* ------------------------------------------------------------------------ */

/* Whether the rule deletes id once its thread has inserted the next one. */
static bool
chased(uint32_t id)
{
	return (mix(id, 4242) & 3) == 0;
}

static void *
chase_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint8_t k[5], v[96];
	uint32_t n = 0;
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t id = n * (uint32_t)nthreads + (uint32_t)t;
		make_key(k, 'a', id);
		size_t vl = make_value(v, id, id);
		if (mantis_skiplist_put(sl, k, 5, v, vl, id, 0) != MANTIS_OK)
			FAIL("put failed");
		if (n > 0) {
			uint32_t prev = id - (uint32_t)nthreads;
			if (chased(prev)) {
				make_key(k, 'a', prev);
				if (mantis_skiplist_delete(sl, k, 5) != MANTIS_OK)
					FAIL("delete of own key %u failed", prev);
			}
		}
		n++;
	}
	inserted[t] = n;
	return NULL;
}

/* Checks order and values of the 'a' keys; stops at the first other key. */
static bool
chase_scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	if (e->key[0] != 'a')
		return false;
	check_order(arg, e);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	return true;
}

static void *
chase_reader_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		struct order_check o = {0};
		uint8_t start[1] = {'a'};
		mantis_skiplist_scan(sl, start, 1, false, 0, chase_scan_cb, &o, NULL);
	}
	return NULL;
}

static void
phase_chase(double secs)
{
	void *(*const fns[])(void *) = {chase_main};
	run_threads(fns, 1, chase_reader_main, secs);
	uint64_t want = 0, total = 0;
	for (int t = 0; t < nthreads; t++)
		total += inserted[t];
	for (int t = 0; t < nthreads; t++)
		for (uint32_t n = 0; n < inserted[t]; n++) {
			uint32_t id = n * (uint32_t)nthreads + (uint32_t)t;
			bool keep = n + 1 == inserted[t] || !chased(id);
			uint8_t k[5], v[96];
			size_t vl;
			uint64_t seq;
			make_key(k, 'a', id);
			mantis_status st = mantis_skiplist_get(sl, k, 5, 0, v, sizeof(v), &vl, &seq, NULL);
			if (st != (keep ? MANTIS_OK : MANTIS_NOT_FOUND))
				FAIL("id %u: %s, want %s", id, mantis_strerror(st), keep ? "present" : "absent");
			if (keep) {
				check_value(k, 5, v, vl, seq);
				want++;
			}
		}
	struct order_check o = {0};
	mantis_skiplist_scan(sl, "a", 1, false, 0, chase_scan_cb, &o, NULL);
	if (o.count != want)
		FAIL("scan saw %llu 'a' keys, %llu kept", (unsigned long long)o.count,
		     (unsigned long long)want);
	printf("phase 4: %llu ascending inserts, %llu kept, all as the rule says\n",
	       (unsigned long long)total, (unsigned long long)want);
}

/* ------------------------------------------------------------------------ */
/* Phase 5: puts and deletes of the same few keys                           */
/* ------------------------------------------------------------------------ */

/*
 * Every thread puts and deletes the same 4 keys, so a put often finds a
 * node in the index that a delete turns DEAD before the put's swap, and
 * falls back to inserting a new node (regression: the record kept naming
 * the dead node, which was then freed twice).  Values carry their key and
 * generation; at the end every present key holds a valid value, and free()
 * plus the leak check in main account for every node and record.
 */
static void *
tight_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = mix((uint64_t)t, 555) | 1;
	uint8_t k[5], v[96];
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t r = (uint32_t)stress_xorshift(&s);
		uint32_t id = r % 4;
		make_key(k, 't', id);
		if ((r >> 8) % 2 == 0) {
			mantis_status st = mantis_skiplist_delete(sl, k, 5);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				FAIL("delete: %s", mantis_strerror(st));
		} else {
			uint32_t gen = (r >> 12) & 0xfffff;
			size_t vl = make_value(v, id, gen);
			if (mantis_skiplist_put(sl, k, 5, v, vl, gen, 0) != MANTIS_OK)
				FAIL("put failed");
			uint64_t seq;
			mantis_status st = mantis_skiplist_get(sl, k, 5, 0, v, sizeof(v), &vl, &seq, NULL);
			if (st == MANTIS_OK)
				check_value(k, 5, v, vl, seq);
			else if (st != MANTIS_NOT_FOUND)
				FAIL("get: %s", mantis_strerror(st));
		}
	}
	return NULL;
}

static void
phase_tight(double secs)
{
	void *(*const fns[])(void *) = {tight_main};
	run_threads(fns, 1, NULL, secs);
	uint64_t present = 0;
	for (uint32_t id = 0; id < 4; id++) {
		uint8_t k[5], v[96];
		size_t vl;
		uint64_t seq;
		make_key(k, 't', id);
		mantis_status st = mantis_skiplist_get(sl, k, 5, 0, v, sizeof(v), &vl, &seq, NULL);
		if (st == MANTIS_OK) {
			check_value(k, 5, v, vl, seq);
			present++;
		} else if (st != MANTIS_NOT_FOUND) {
			FAIL("get: %s", mantis_strerror(st));
		}
	}
	printf("phase 5: put/delete races on 4 keys, %llu present at end, values valid\n",
	       (unsigned long long)present);
}

/* ------------------------------------------------------------------------ */
/* Phase 6: whole scans against stamped inserts and deletes                 */
/* ------------------------------------------------------------------------ */

/*
 * The scan's contract checked by clocks rather than by keys set aside:
 * writers insert keys of ids never reused, scattered over the key space,
 * and delete some of their own; a global counter stamps each insert after
 * it returned and each delete before it starts.  A scanner reads the
 * counter before and after each whole scan, and every key inserted before
 * the scan began and not deleted before it ended must be in it (ids and
 * stamps: seq_cst, so the counter orders them).  This catches a key a scan
 * misses by any route, including one no test builds by hand.
 */
#define STAMP_PER 65536 /* ids per writer; a writer that runs out stops */
#define STAMP_PENDING UINT64_MAX

static uint64_t stamp_clock;
static uint64_t *stamp_ins, *stamp_del; /* by id; 0: not yet */
static uint64_t stamp_scans, stamp_required;

static uint32_t
stamp_id(int t, uint32_t n)
{
	/* n -> a bijection of [0, STAMP_PER), interleaved with the other
	 * writers' ids: inserts land all over the list. */
	return ((n * 0x9e3779b1u) & (STAMP_PER - 1)) * (uint32_t)nthreads + (uint32_t)t;
}

static void *
stamp_writer_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = mix((uint64_t)t, 606) | 1;
	uint32_t *live = malloc(STAMP_PER * sizeof(*live)), nlive = 0, n = 0;
	if (live == NULL)
		FAIL("out of memory");
	uint8_t k[5], v[96];
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && n < STAMP_PER) {
		if (nlive > 0 && stress_xorshift(&s) % 3 == 0) {
			uint32_t i = (uint32_t)(stress_xorshift(&s) % nlive), id = live[i];
			live[i] = live[--nlive];
			__atomic_store_n(&stamp_del[id], STAMP_PENDING, __ATOMIC_SEQ_CST);
			__atomic_store_n(&stamp_del[id],
					 __atomic_add_fetch(&stamp_clock, 1, __ATOMIC_SEQ_CST),
					 __ATOMIC_SEQ_CST);
			make_key(k, 'u', id);
			if (mantis_skiplist_delete(sl, k, 5) != MANTIS_OK)
				FAIL("delete of stamped key %u failed", id);
			continue;
		}
		uint32_t id = stamp_id(t, n++);
		make_key(k, 'u', id);
		size_t vl = make_value(v, id, 1);
		if (mantis_skiplist_put(sl, k, 5, v, vl, 1, 0) != MANTIS_OK)
			FAIL("put failed");
		__atomic_store_n(&stamp_ins[id], __atomic_add_fetch(&stamp_clock, 1, __ATOMIC_SEQ_CST),
				 __ATOMIC_SEQ_CST);
		live[nlive++] = id;
	}
	free(live);
	return NULL;
}

struct stamp_scan {
	struct order_check o;
	uint8_t *seen; /* by id */
};

static bool
stamp_scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	if (e->key[0] != 'u')
		return false;
	struct stamp_scan *sc = arg;
	check_order(&sc->o, e);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	sc->seen[rd32(e->key + 1)] = 1;
	return true;
}

static void *
stamp_scanner_main(void *arg)
{
	(void)arg;
	size_t ids = (size_t)STAMP_PER * (size_t)nthreads;
	struct stamp_scan sc = {.seen = malloc(ids)};
	if (sc.seen == NULL)
		FAIL("out of memory");
	pthread_barrier_wait(&barrier);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		memset(sc.seen, 0, ids);
		sc.o = (struct order_check){0};
		uint64_t began = __atomic_load_n(&stamp_clock, __ATOMIC_SEQ_CST);
		mantis_skiplist_scan(sl, "u", 1, false, 0, stamp_scan_cb, &sc, NULL);
		uint64_t ended = __atomic_load_n(&stamp_clock, __ATOMIC_SEQ_CST);
		for (size_t id = 0; id < ids; id++) {
			uint64_t ins = __atomic_load_n(&stamp_ins[id], __ATOMIC_SEQ_CST);
			if (ins == 0 || ins > began)
				continue; /* not inserted before the scan began */
			/* 0 read here: the delete's first store, and so its stamp,
			 * come after this read, which is after `ended`. */
			uint64_t del = __atomic_load_n(&stamp_del[id], __ATOMIC_SEQ_CST);
			if (del != 0 && del <= ended)
				continue; /* deleted, or pending, before the scan ended */
			if (!sc.seen[id])
				FAIL("scan missed key %zu: inserted at %llu, scan %llu..%llu, deleted at %llu",
				     id, (unsigned long long)ins, (unsigned long long)began,
				     (unsigned long long)ended, (unsigned long long)del);
			stamp_required++;
		}
		stamp_scans++;
	}
	free(sc.seen);
	return NULL;
}

static void
phase_stamped(double secs)
{
	size_t ids = (size_t)STAMP_PER * (size_t)nthreads;
	stamp_ins = calloc(ids, sizeof(*stamp_ins));
	stamp_del = calloc(ids, sizeof(*stamp_del));
	if (stamp_ins == NULL || stamp_del == NULL)
		FAIL("out of memory");
	void *(*const fns[])(void *) = {stamp_writer_main};
	run_threads(fns, 1, stamp_scanner_main, secs);
	printf("phase 6: %llu whole scans during stamped writes, %llu keys required, all seen\n",
	       (unsigned long long)stamp_scans, (unsigned long long)stamp_required);
	free(stamp_ins);
	free(stamp_del);
}

int
main(int argc, char **argv)
{
	double secs;
	if (!stress_args(argc, argv, 256, &nthreads, &secs))
		return 2;
	mantis_alloc_stats a0, a1;
	mantis_alloc_get_stats(&a0);
	if (mantis_skiplist_new(&sl) != MANTIS_OK)
		FAIL("new");
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	phase_disjoint(secs / 6);
	check_shape("after phase 1");
	phase_mixed(2, secs / 6);
	check_shape("after phase 2");
	phase_mixed(3, secs / 6);
	check_shape("after phase 3");
	phase_chase(secs / 6);
	check_shape("after phase 4");
	phase_tight(secs / 6);
	check_shape("after phase 5");
	phase_stamped(secs / 6);
	check_shape("after phase 6");
	pthread_barrier_destroy(&barrier);
	mantis_skiplist_free(sl);
	mantis_alloc_get_stats(&a1);
	if (a1.bytes_in_use != a0.bytes_in_use)
		FAIL("leak: %lld bytes", (long long)(a1.bytes_in_use - a0.bytes_in_use));
	printf("stress_skiplist: OK\n");
	return 0;
}
