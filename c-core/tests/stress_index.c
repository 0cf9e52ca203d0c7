/*
 * stress_index.c -- multi-threaded torture of the index's read paths
 * against each other: the hash index (get, get_view) and the list (scans,
 * iterators) must agree on every write, and reads must never see a torn
 * value or a key outside what they asked for (issue 15).
 * Usage: stress_index THREADS SECONDS   (make test passes "2 2")
 *
 * Two phases, half of SECONDS each; THREADS writers and THREADS readers
 * released together by a barrier (ck regressions style):
 *   1. churn: writers put and delete keys a00..a15 (the stable ones,
 *      every fourth, are only overwritten); half the writers overwrite
 *      the stable keys with values whose size grows in a sawtooth from
 *      16 B to 16 KiB, the other half churn small values in and out of
 *      the others (churn_writer).  Every value states its length
 *      and carries a hash of its key, generation and bytes, so a reader
 *      tells a whole value from a torn one.  Readers:
 *        - get into a buffer, growing it when told it is too small, until
 *          the copy fits (it must, within a bounded number of tries);
 *        - get_view;
 *        - bounded scans and iterators from stored keys and from keys
 *          between them, exclusive or not: every key returned is >= the
 *          start (> when exclusive), < the end, strictly increasing, with a
 *          whole value, and every stable key in range is returned.
 *   2. insert-only: each writer inserts fresh keys of its own in
 *      ascending order (nothing is deleted).  Readers scan from the
 *      newest key a writer finished, and get every key the scan returned:
 *      it must be found.  And the other way: a get that finds the key
 *      being inserted is followed by a scan from it, which must return it.
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

#define FAIL(...)                                             \
	do {                                                  \
		fprintf(stderr, "stress_index: " __VA_ARGS__); \
		fprintf(stderr, "\n");                        \
		exit(1);                                      \
	} while (0)

#define MAX_THREADS 64
#define CHURN_KEYS 16
#define MAX_VAL (16 * 1024)
#define KEY_LEN 3 /* "a07" */
#define FRESH_KEY_LEN 11 /* 'n', writer (2 digits), id (8 digits) */
#define FRESH_PER_WRITER (1u << 18)

static mantis_skiplist *sl;
static pthread_barrier_t barrier;
static int stop;
static int nthreads;

/* Runs writer on threads 0..n-1 and reader on n more, all released
 * together by the barrier; secs later sets stop and joins them. */
static void
run_phase(void *(*writer)(void *), void *(*reader)(void *), double secs)
{
	pthread_t th[2 * MAX_THREADS];
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	pthread_barrier_init(&barrier, NULL, (unsigned)(2 * nthreads + 1));
	for (int t = 0; t < nthreads; t++) {
		pthread_create(&th[2 * t], NULL, writer, (void *)(intptr_t)t);
		pthread_create(&th[2 * t + 1], NULL, reader, (void *)(intptr_t)t);
	}
	pthread_barrier_wait(&barrier);
	stress_run_for(secs, &stop);
	for (int i = 0; i < 2 * nthreads; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
}

static bool
stopped(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE) != 0;
}

/* FNV-1a-like over 8-byte words (a reader hashes every value it sees, up
 * to 64 KiB, so bytewise would make reads rare); enough to catch a splice
 * of two values. */
static uint64_t
fnv(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/*
 * Value of n >= 16 bytes:  len(4) gen(4) hash(8) filler
 * hash covers the key, len, gen and the filler, so a value of another key,
 * a prefix of a longer value or a mix of two fails it.
 */
static uint64_t
value_hash(const uint8_t *key, size_t klen, const uint8_t *v, size_t n)
{
	uint64_t h = fnv(0xcbf29ce484222325ULL, key, klen);
	h = fnv(h, v, 8);
	return fnv(h, v + 16, n - 16);
}

static size_t
make_value(uint8_t *v, const uint8_t *key, size_t klen, uint32_t gen, size_t n)
{
	put32(v, (uint32_t)n);
	put32(v + 4, gen);
	memset(v + 16, (int)(gen * 7 + 1), n - 16);
	v[n - 1] = (uint8_t)gen; /* the last byte differs from the filler */
	uint64_t h = value_hash(key, klen, v, n);
	memcpy(v + 8, &h, 8);
	return n;
}

static void
check_value(const uint8_t *key, size_t klen, const uint8_t *v, size_t n, uint64_t seq)
{
	if (n < 16 || get32(v) != n)
		FAIL("value of %.*s: %zu bytes, says %u", (int)klen, key, n,
		     n >= 4 ? get32(v) : 0);
	uint64_t h;
	memcpy(&h, v + 8, 8);
	if (h != value_hash(key, klen, v, n))
		FAIL("value of %.*s (%zu bytes) fails its hash: torn or misplaced",
		     (int)klen, key, n);
	if (seq != get32(v + 4))
		FAIL("value of %.*s: seq %llu, value says generation %u", (int)klen,
		     key, (unsigned long long)seq, get32(v + 4));
}

static int
key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m != 0 ? memcmp(a, b, m) : 0;
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* ---- phase 1: churn ------------------------------------------------------ */

static void
churn_key(uint8_t *k, uint32_t id)
{
	k[0] = 'a';
	k[1] = (uint8_t)('0' + id / 10);
	k[2] = (uint8_t)('0' + id % 10);
}

static bool
stable(uint32_t id)
{
	return id % 4 == 0;
}

/*
 * Two roles, by thread parity (alternating ops with one writer thread):
 * "grow" overwrites the stable keys with values in a sawtooth of sizes,
 * most writes bigger than the one before; "churn" puts small values into
 * and deletes the unstable keys, fast, so nodes come and go between the
 * scans' start points.
 */
static void *
churn_writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = (uint64_t)t * 0x9e3779b97f4a7c15ULL + 1;
	uint8_t *v = malloc(MAX_VAL);
	if (v == NULL)
		FAIL("malloc");
	uint8_t k[KEY_LEN];
	size_t size = 16;
	pthread_barrier_wait(&barrier);
	for (uint32_t gen = 1; !stopped(); gen++) {
		uint32_t r = (uint32_t)stress_xorshift(&s);
		bool grow = (nthreads == 1 ? gen : (uint32_t)t) & 1;
		uint32_t id = r % CHURN_KEYS;
		size_t n;
		if (grow) {
			id &= ~3u; /* a stable key */
			n = size = size + 1021 > MAX_VAL ? 16 : size + 1021;
		} else {
			if (stable(id))
				id++;
			n = 16 + (r >> 20) % 64;
		}
		churn_key(k, id);
		if (!grow && (r >> 8) % 2 == 0) {
			mantis_status st = mantis_skiplist_delete(sl, k, KEY_LEN);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				FAIL("delete: %s", mantis_strerror(st));
			continue;
		}
		make_value(v, k, KEY_LEN, gen, n);
		if (mantis_skiplist_put(sl, k, KEY_LEN, v, n, gen, 0) != MANTIS_OK)
			FAIL("put failed");
	}
	free(v);
	return NULL;
}

/* What a bounded read asked for and what it has seen so far. */
struct bounded {
	uint8_t start[8], end[8];
	size_t start_len, end_len; /* end_len 0: no end */
	bool exclusive;
	uint8_t last[8];
	size_t last_len;
	uint64_t count;
	uint32_t stable_seen; /* bit per stable id */
	bool past_end;
};

/* Checks one entry of a bounded read; false once it is at or past end. */
static bool
bounded_visit(struct bounded *b, const mantis_skiplist_entry *e)
{
	if (e->key_len > sizeof(b->last))
		FAIL("key of %zu bytes", e->key_len);
	int c = key_cmp(e->key, e->key_len, b->start, b->start_len);
	if (c < 0 || (c == 0 && b->exclusive))
		FAIL("scan from %.*s%s returned %.*s, before its start",
		     (int)b->start_len, b->start, b->exclusive ? " (exclusive)" : "",
		     (int)e->key_len, e->key);
	if (b->count != 0 && key_cmp(e->key, e->key_len, b->last, b->last_len) <= 0)
		FAIL("scan from %.*s returned %.*s after %.*s", (int)b->start_len,
		     b->start, (int)e->key_len, e->key, (int)b->last_len, b->last);
	if (b->end_len != 0 && key_cmp(e->key, e->key_len, b->end, b->end_len) >= 0) {
		b->past_end = true;
		return false;
	}
	if (e->key_len != KEY_LEN || e->key[0] != 'a')
		FAIL("foreign key %.*s", (int)e->key_len, e->key);
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	uint32_t id = (uint32_t)(e->key[1] - '0') * 10 + (uint32_t)(e->key[2] - '0');
	if (stable(id))
		b->stable_seen |= 1u << id;
	memcpy(b->last, e->key, e->key_len);
	b->last_len = e->key_len;
	b->count++;
	return true;
}

static bool
scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	return bounded_visit(arg, e);
}

static void
iter_cb(void *arg, const mantis_skiplist_entry *e)
{
	(void)bounded_visit(arg, e);
}

/* A start or end point: a stored key ("a07") or one between two ("a07~"). */
static size_t
churn_point(uint8_t *p, uint32_t r)
{
	churn_key(p, (r >> 1) % CHURN_KEYS);
	if (r & 1) {
		p[KEY_LEN] = '~';
		return KEY_LEN + 1;
	}
	return KEY_LEN;
}

/* Every stable key in [start, end) (or (start, end)) was seen. */
static void
check_stable_seen(const struct bounded *b)
{
	for (uint32_t id = 0; id < CHURN_KEYS; id++) {
		if (!stable(id))
			continue;
		uint8_t k[KEY_LEN];
		churn_key(k, id);
		int c = key_cmp(k, KEY_LEN, b->start, b->start_len);
		if (c < 0 || (c == 0 && b->exclusive))
			continue;
		if (b->end_len != 0 && key_cmp(k, KEY_LEN, b->end, b->end_len) >= 0)
			continue;
		if (!(b->stable_seen & (1u << id)))
			FAIL("scan from %.*s to %.*s missed stable key %.*s",
			     (int)b->start_len, b->start, (int)b->end_len, b->end,
			     KEY_LEN, k);
	}
}

static void
get_view_cb(void *arg, const mantis_skiplist_entry *e)
{
	*(int *)arg = 1;
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
}

static uint64_t churn_reads[MAX_THREADS], churn_scans[MAX_THREADS];

static void *
churn_reader(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = (uint64_t)t * 0xbf58476d1ce4e5b9ULL + 7;
	size_t cap = 16;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		FAIL("malloc");
	pthread_barrier_wait(&barrier);
	while (!stopped()) {
		uint32_t r = (uint32_t)stress_xorshift(&s);
		uint8_t k[KEY_LEN];
		churn_key(k, (r >> 4) % CHURN_KEYS);
		churn_reads[t]++;
		/* Mostly bounded scans: a seek's race with a splice next to
		 * its start is the rarest of the three to hit. */
		switch (r % 8 < 2 ? r % 8 : r % 8 < 6 ? 2 : 3) {
		case 0: {
			/* Get with a buffer grown to the size reported, at least
			 * doubling: a record is copied whole or not at all, so
			 * this ends once the buffer passes the largest value. */
			size_t vlen = 0;
			uint64_t seq = 0;
			mantis_status st;
			int tries = 0;
			if ((r >> 28) == 0)
				cap = 16; /* now and then, start small again */
			while ((st = mantis_skiplist_get(sl, k, KEY_LEN, 0, buf, cap, &vlen,
							 &seq, NULL)) == MANTIS_BUFFER_TOO_SMALL) {
				if (++tries > 16)
					FAIL("get: buffer too small %d times", tries);
				size_t ncap = vlen > 2 * cap ? vlen : 2 * cap;
				free(buf);
				if ((buf = malloc(ncap)) == NULL)
					FAIL("malloc");
				cap = ncap;
			}
			if (st == MANTIS_OK)
				check_value(k, KEY_LEN, buf, vlen, seq);
			else if (st != MANTIS_NOT_FOUND)
				FAIL("get: %s", mantis_strerror(st));
			else if (stable((r >> 4) % CHURN_KEYS))
				FAIL("get missed stable key %.*s", KEY_LEN, k);
			if (cap > 4 * MAX_VAL)
				FAIL("get buffer grew to %zu", cap);
			break;
		}
		case 1: {
			int seen = 0;
			mantis_status st = mantis_skiplist_get_view(sl, k, KEY_LEN, 0,
								    get_view_cb, &seen);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				FAIL("get_view: %s", mantis_strerror(st));
			if ((st == MANTIS_OK) != (seen == 1))
				FAIL("get_view: status and callback disagree");
			break;
		}
		case 2: {
			/* Bounded scan in one call. */
			struct bounded b = {0};
			b.start_len = churn_point(b.start, r >> 8);
			b.exclusive = (r >> 16) & 1;
			if ((r >> 17) & 1)
				b.end_len = churn_point(b.end, r >> 20);
			mantis_skiplist_scan(sl, b.start, b.start_len, b.exclusive, 0,
					     scan_cb, &b, NULL);
			check_stable_seen(&b);
			churn_scans[t]++;
			break;
		}
		default: {
			/* Iterator: seek, then one call per key. */
			struct bounded b = {0};
			b.start_len = churn_point(b.start, r >> 8);
			if ((r >> 17) & 1)
				b.end_len = churn_point(b.end, r >> 20);
			mantis_skiplist_iter *it;
			if (mantis_skiplist_iter_new(sl, &it) != MANTIS_OK)
				FAIL("iter_new");
			if (mantis_skiplist_iter_seek(it, b.start, b.start_len) != MANTIS_OK)
				FAIL("iter_seek");
			mantis_status st = MANTIS_OK;
			while (!b.past_end &&
			       (st = mantis_skiplist_iter_next(it, 0, iter_cb, &b)) == MANTIS_OK)
				;
			if (!b.past_end && st != MANTIS_END)
				FAIL("iter_next: %s", mantis_strerror(st));
			mantis_skiplist_iter_free(it);
			check_stable_seen(&b);
			churn_scans[t]++;
			break;
		}
		}
	}
	free(buf);
	return NULL;
}

static void
phase_churn(double secs)
{
	/* Stable keys exist before any reader starts. */
	uint8_t v[64], k[KEY_LEN];
	for (uint32_t id = 0; id < CHURN_KEYS; id += 4) {
		churn_key(k, id);
		make_value(v, k, KEY_LEN, 0, 16);
		if (mantis_skiplist_put(sl, k, KEY_LEN, v, 16, 0, 0) != MANTIS_OK)
			FAIL("put");
	}
	run_phase(churn_writer, churn_reader, secs);
	uint64_t reads = 0, scans = 0;
	for (int t = 0; t < nthreads; t++) {
		reads += churn_reads[t];
		scans += churn_scans[t];
	}
	if (scans == 0 || reads == scans)
		FAIL("phase 1 checked no scans or no point reads");
	printf("phase 1: %llu reads (%llu scans) during churn with growing values: "
	       "values whole, scans within bounds\n",
	       (unsigned long long)reads, (unsigned long long)scans);
}

/* ---- phase 2: insert-only ------------------------------------------------ */

/* next[t]: the id writer t inserts next (all below it are inserted). */
static uint64_t next_id[MAX_THREADS];
static uint64_t fresh_checked[MAX_THREADS];

static void
fresh_key(uint8_t *k, int t, uint64_t id)
{
	k[0] = 'n';
	k[1] = (uint8_t)('0' + t / 10);
	k[2] = (uint8_t)('0' + t % 10);
	for (int i = FRESH_KEY_LEN - 1; i >= 3; i--, id /= 10)
		k[i] = (uint8_t)('0' + id % 10);
}

static void *
fresh_writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint8_t k[FRESH_KEY_LEN], v[16];
	pthread_barrier_wait(&barrier);
	/* Bounded, so a long run does not fill the machine; readers keep
	 * checking the last keys once a writer is done. */
	for (uint64_t id = 0; !stopped() && id < FRESH_PER_WRITER; id++) {
		fresh_key(k, t, id);
		make_value(v, k, FRESH_KEY_LEN, (uint32_t)id, 16);
		if (mantis_skiplist_put(sl, k, FRESH_KEY_LEN, v, 16, (uint32_t)id, 0) != MANTIS_OK)
			FAIL("put failed");
		__atomic_store_n(&next_id[t], id + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Collects up to 8 keys of one writer from a scan. */
struct fresh_scan {
	uint8_t prefix[3];
	uint8_t keys[8][FRESH_KEY_LEN];
	int n;
};

static bool
fresh_scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct fresh_scan *f = arg;
	if (e->key_len != FRESH_KEY_LEN || memcmp(e->key, f->prefix, 3) != 0)
		return false;
	check_value(e->key, e->key_len, e->value, e->value_len, e->seq);
	memcpy(f->keys[f->n++], e->key, FRESH_KEY_LEN);
	return f->n < 8;
}

static bool
first_key_cb(void *arg, const mantis_skiplist_entry *e)
{
	const uint8_t *want = arg;
	if (key_cmp(e->key, e->key_len, want, FRESH_KEY_LEN) != 0)
		FAIL("get found %.*s, but a scan from it then began at %.*s",
		     FRESH_KEY_LEN, want, (int)e->key_len, e->key);
	return false;
}

static void *
fresh_reader(void *arg)
{
	int t = (int)(intptr_t)arg;
	int w = t % nthreads;
	uint8_t k[FRESH_KEY_LEN], v[16];
	uint64_t checked = 0;
	pthread_barrier_wait(&barrier);
	while (!stopped()) {
		uint64_t n = __atomic_load_n(&next_id[w], __ATOMIC_ACQUIRE);
		/* Scan -> get: from the newest finished key, so the keys after
		 * it are being inserted right now. */
		struct fresh_scan f = {.n = 0};
		fresh_key(k, w, n == 0 ? 0 : n - 1);
		memcpy(f.prefix, k, 3);
		mantis_skiplist_scan(sl, k, FRESH_KEY_LEN, false, 0, fresh_scan_cb, &f, NULL);
		for (int i = 0; i < f.n; i++) {
			size_t vlen;
			uint64_t seq;
			mantis_status st = mantis_skiplist_get(sl, f.keys[i], FRESH_KEY_LEN, 0, v,
							       sizeof(v), &vlen, &seq, NULL);
			if (st != MANTIS_OK)
				FAIL("scan returned %.*s, then get said %s", FRESH_KEY_LEN,
				     f.keys[i], mantis_strerror(st));
			check_value(f.keys[i], FRESH_KEY_LEN, v, vlen, seq);
			checked++;
		}
		/* Get -> scan: the key being inserted now, if get sees it. */
		fresh_key(k, w, n);
		size_t vlen;
		if (mantis_skiplist_get(sl, k, FRESH_KEY_LEN, 0, v, sizeof(v), &vlen, NULL,
					NULL) == MANTIS_OK) {
			mantis_skiplist_scan(sl, k, FRESH_KEY_LEN, false, 0, first_key_cb, k, NULL);
			checked++;
		}
	}
	fresh_checked[t] = checked;
	return NULL;
}

static void
phase_fresh(double secs)
{
	run_phase(fresh_writer, fresh_reader, secs);
	uint64_t inserted = 0, checked = 0;
	for (int t = 0; t < nthreads; t++) {
		inserted += next_id[t];
		checked += fresh_checked[t];
	}
	if (checked == 0)
		FAIL("phase 2 checked nothing");
	printf("phase 2: %llu inserts, %llu scan/get cross-checks agreed\n",
	       (unsigned long long)inserted, (unsigned long long)checked);
}

int
main(int argc, char **argv)
{
	double secs;
	if (!stress_args(argc, argv, MAX_THREADS, &nthreads, &secs))
		return 2;
	mantis_alloc_stats a0, a1;
	mantis_alloc_get_stats(&a0);
	if (mantis_skiplist_new(&sl) != MANTIS_OK)
		FAIL("new");
	phase_churn(secs / 2);
	stress_check_shape(sl, "stress_index", "after phase 1");
	phase_fresh(secs / 2);
	stress_check_shape(sl, "stress_index", "after phase 2");
	mantis_skiplist_free(sl);
	mantis_alloc_get_stats(&a1);
	if (a1.bytes_in_use != a0.bytes_in_use)
		FAIL("leak: %lld bytes", (long long)(a1.bytes_in_use - a0.bytes_in_use));
	printf("stress_index: OK\n");
	return 0;
}
