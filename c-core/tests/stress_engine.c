/*
 * stress_engine.c -- multi-threaded torture test for mantis_db's batch
 * atomicity (the batch seqlock in engine.c).
 * Usage: stress_engine THREADS SECONDS   (THREADS writers and THREADS readers)
 *
 * The key space is GROUPS groups of GROUP_KEYS keys ("g<group>-<k>") plus
 * loose keys ("z<n>").  A group is only ever written whole, by one
 * mantis_db_apply: a batch puts every key of one or two groups with one
 * fresh generation, or deletes every key of one group.  So at any instant
 * between batches a group is either absent or uniform, and a reader that
 * sees anything else saw a batch in part.  Loose keys get single puts and
 * deletes, so batches race plain writes and the readers' fast path meets
 * both.  (The engine leaves the order of a put and a batch on one key to
 * its caller, mantis.h rule 3, so single writes never touch group keys.)
 * Loose keys ("g<group>-a<n>") sort just before their group's keys, so
 * their inserts and deletes change the list right where batches insert
 * (the splices a batch searched for its inserts, sl_find_paths, go stale
 * under it), and half the batches put their keys in a shuffled order
 * (an ascending batch uses the slot's splice hint instead).
 *
 * Readers also prefetch keys (mantis_db_prefetch) while batches rewrite
 * and delete them.
 *
 * Readers scan one group per mantis_db_scan or mantis_db_scan_entries call
 * (each call is atomic with respect to batches) and check: every value
 * belongs to its key (a hash of key and generation), and the group is
 * either wholly absent or wholly present with one generation.  A third of
 * the scans are mantis_db_scan_entries_relaxed calls, which owe only the
 * first check and key order (and read the map while batches write it,
 * without the seqlock: TSan's case); now and then a reader scans the
 * whole map relaxed in one call, long enough to walk in runs
 * (skiplist.c, "Runs"), with the same checks.  Threads
 * start together (barrier).  At the end, with every thread joined, the
 * engine's list gets the skiplist's shape check.  Exit status 0 on
 * success; failures print and exit 1.
 */
#include <mantis.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress_util.h"

#define GROUPS 64
#define GROUP_KEYS 16
#define LOOSE 256
#define KEY_LEN 8  /* "g000-k00" / "g000-a00" */
#define VALUE_LEN 16

static mantis_db *db;
static pthread_barrier_t start;
static _Atomic int stop;
static _Atomic int failed;
static _Atomic uint64_t batches, scans, whole_scans;

static void
fail(const char *what, int group)
{
	fprintf(stderr, "stress_engine: %s (group %d)\n", what, group);
	atomic_store(&failed, 1);
	atomic_store(&stop, 1);
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
group_key(char *k, int g, int i)
{
	char tmp[KEY_LEN + 1];
	snprintf(tmp, sizeof tmp, "g%03d-k%02d", g, i);
	memcpy(k, tmp, KEY_LEN);
}

/* Loose key n: just below group n % GROUPS's keys, outside its scans. */
static void
loose_key(char *k, uint64_t n)
{
	char tmp[KEY_LEN + 1];
	snprintf(tmp, sizeof tmp, "g%03d-a%02d", (int)(n % GROUPS), (int)(n / GROUPS % 100));
	memcpy(k, tmp, KEY_LEN);
}

static uint64_t
mix(const void *key, size_t n, uint64_t gen)
{
	uint64_t h = 1469598103934665603ull ^ gen;
	const unsigned char *p = key;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* value = gen | hash(key, gen), so a value moved to another key is seen. */
static void
make_value(unsigned char *v, const char *key, uint64_t gen)
{
	uint64_t h = mix(key, KEY_LEN, gen);
	memcpy(v, &gen, 8);
	memcpy(v + 8, &h, 8);
}

static int
value_gen(const void *key, size_t klen, const void *v, size_t vlen, uint64_t *gen)
{
	uint64_t h;
	if (vlen != VALUE_LEN)
		return 0;
	memcpy(gen, v, 8);
	memcpy(&h, (const unsigned char *)v + 8, 8);
	return klen == KEY_LEN && h == mix(key, klen, *gen);
}

static size_t
add_record(unsigned char *buf, size_t cap, uint8_t type, const char *key, const unsigned char *v)
{
	mantis_record r = {.type = type,
			   .key = (const uint8_t *)key,
			   .key_len = KEY_LEN,
			   .value = v,
			   .value_len = v == NULL ? 0 : VALUE_LEN};
	size_t w = 0;
	if (mantis_codec_encode(buf, cap, &r, &w) != MANTIS_OK) {
		fail("encode", -1);
		return 0;
	}
	return w;
}

static void *
writer(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	uint64_t s = id * 0x9E3779B97F4A7C15ull | 1, n = 0;
	static _Thread_local unsigned char buf[2 * GROUP_KEYS * 64];
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t op = rnd(&s) % 100;
		uint64_t gen = id << 40 | ++n;
		if (op < 80) {
			/* Put one or two whole groups, half the time in a
			 * shuffled order. */
			int g1 = (int)(rnd(&s) % GROUPS), g2 = op < 30 ? (int)(rnd(&s) % GROUPS) : -1;
			int order[GROUP_KEYS];
			for (int i = 0; i < GROUP_KEYS; i++)
				order[i] = i;
			if (rnd(&s) & 1)
				for (int i = GROUP_KEYS - 1; i > 0; i--) {
					int j = (int)(rnd(&s) % (uint64_t)(i + 1)), t = order[i];
					order[i] = order[j];
					order[j] = t;
				}
			size_t off = 0;
			for (int pass = 0; pass < 2; pass++) {
				int g = pass == 0 ? g1 : g2;
				if (g < 0 || (pass == 1 && g == g1))
					continue;
				for (int i = 0; i < GROUP_KEYS; i++) {
					char k[KEY_LEN];
					unsigned char v[VALUE_LEN];
					group_key(k, g, order[i]);
					make_value(v, k, gen);
					off += add_record(buf + off, sizeof buf - off, MANTIS_REC_PUT, k, v);
				}
			}
			if (mantis_db_apply(db, buf, off, NULL) != MANTIS_OK)
				fail("apply put", g1);
			atomic_fetch_add_explicit(&batches, 1, memory_order_relaxed);
		} else if (op < 90) {
			int g = (int)(rnd(&s) % GROUPS);
			size_t off = 0;
			for (int i = 0; i < GROUP_KEYS; i++) {
				char k[KEY_LEN];
				group_key(k, g, i);
				off += add_record(buf + off, sizeof buf - off, MANTIS_REC_DELETE, k, NULL);
			}
			if (mantis_db_apply(db, buf, off, NULL) != MANTIS_OK)
				fail("apply delete", g);
			atomic_fetch_add_explicit(&batches, 1, memory_order_relaxed);
		} else {
			char k[KEY_LEN];
			loose_key(k, rnd(&s) % LOOSE);
			unsigned char v[VALUE_LEN];
			make_value(v, k, gen);
			mantis_status st = op < 97 ? mantis_db_put(db, k, KEY_LEN, v, VALUE_LEN, 0)
						   : mantis_db_delete(db, k, KEY_LEN);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				fail("single write", -1);
		}
	}
	return NULL;
}

/* Checks one scan call's view of group g: absent, or whole with one gen. */
static void
check_group(int g, int count, const uint64_t *gens, int bad)
{
	if (bad)
		fail("a value that does not belong to its key", g);
	else if (count != 0 && count != GROUP_KEYS)
		fail("a batch seen in part: some of the group's keys, not all", g);
	for (int i = 1; i < count; i++)
		if (gens[i] != gens[0]) {
			fail("a batch seen in part: the group mixes generations", g);
			return;
		}
}

/*
 * One relaxed scan of the whole map in a buffer that holds it all, so the
 * call walks past the skiplist's run threshold (scan_runs) while batches
 * rewrite, delete and re-insert groups: every key once, in ascending
 * order, each with a value it had.
 */
static void
whole_relaxed_scan(void)
{
	static _Thread_local unsigned char buf[(GROUPS * GROUP_KEYS + LOOSE) * 64];
	size_t used = 0, count = 0;
	bool done = false;
	if (mantis_db_scan_entries_relaxed(db, NULL, 0, false, NULL, 0, 1, buf, sizeof buf, 0, 0,
					   &used, &count, &done) != MANTIS_OK ||
	    !done) {
		fail("whole relaxed scan did not fit or failed", -1);
		return;
	}
	const unsigned char *prev = NULL;
	size_t off = 0;
	for (size_t i = 0; i < count; i++) {
		uint32_t k32, v32;
		memcpy(&k32, buf + off, 4);
		memcpy(&v32, buf + off + 4, 4);
		const unsigned char *k = buf + off + MANTIS_SCAN_ENTRY_HEADER_SIZE;
		uint64_t gen;
		if (!value_gen(k, k32, k + k32, v32, &gen)) {
			fail("whole relaxed scan: a value that does not belong to its key", -1);
			return;
		}
		if (prev != NULL && memcmp(prev, k, KEY_LEN) >= 0) {
			fail("whole relaxed scan: keys out of order", -1);
			return;
		}
		prev = k;
		off += MANTIS_SCAN_ENTRY_HEADER_SIZE + k32 + v32;
	}
	if (off != used)
		fail("whole relaxed scan: entries do not fill what it wrote", -1);
	atomic_fetch_add_explicit(&whole_scans, 1, memory_order_relaxed);
}

static void *
reader(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg * 0xD1B54A32D192ED03ull | 1;
	static _Thread_local unsigned char buf[GROUP_KEYS * 128];
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int g = (int)(rnd(&s) % GROUPS);
		char lo[KEY_LEN], hi[5];
		group_key(lo, g, 0);
		snprintf(hi, sizeof hi, "g%03d", g + 1); /* every "g<g>-..." key is below */
		/* 0: mantis_db_scan, 1: entries, 2: entries, relaxed. */
		int mode = (int)(rnd(&s) % 3);
		bool entries = mode != 0;
		size_t used = 0, count = 0;
		bool done = false;
		mantis_status st;
		switch (mode) {
		case 0:
			st = mantis_db_scan(db, lo, KEY_LEN, false, hi, 4, 1, buf, sizeof buf, &used,
					    &count, &done);
			break;
		case 1:
			st = mantis_db_scan_entries(db, lo, KEY_LEN, false, hi, 4, 1, buf, sizeof buf,
						    0, 0, &used, &count, &done);
			break;
		default:
			st = mantis_db_scan_entries_relaxed(db, lo, KEY_LEN, false, hi, 4, 1, buf,
							    sizeof buf, 0, 0, &used, &count, &done);
		}
		if (st != MANTIS_OK || !done) {
			fail("scan of a group did not fit or failed", g);
			break;
		}
		uint64_t gens[GROUP_KEYS + 1];
		int n = 0, bad = 0;
		size_t off = 0;
		const unsigned char *prev = NULL;
		for (size_t i = 0; i < count && n <= GROUP_KEYS; i++) {
			const unsigned char *k, *v;
			size_t kl, vl;
			if (entries) {
				uint32_t k32, v32;
				memcpy(&k32, buf + off, 4);
				memcpy(&v32, buf + off + 4, 4);
				kl = k32, vl = v32;
				k = buf + off + MANTIS_SCAN_ENTRY_HEADER_SIZE;
				v = k + kl;
				off += MANTIS_SCAN_ENTRY_HEADER_SIZE + kl + vl;
			} else {
				mantis_record r;
				if (mantis_codec_decode(buf + off, used - off, &r) != MANTIS_OK) {
					fail("scan wrote a record that does not decode", g);
					return NULL;
				}
				k = r.key, kl = r.key_len, v = r.value, vl = r.value_len;
				off += r.size;
			}
			bad |= !value_gen(k, kl, v, vl, &gens[n]);
			if (kl != KEY_LEN || memcmp(k, lo, KEY_LEN) < 0 || memcmp(k, hi, 4) >= 0 ||
			    (prev != NULL && memcmp(prev, k, KEY_LEN) >= 0)) {
				fail("a scan key out of its range or out of order", g);
				return NULL;
			}
			prev = k;
			n++;
		}
		if (mode == 2) {
			/* Not atomic: a group may show in part or mix
			 * generations; every value must still be one its key
			 * had (and the keys in order, checked above). */
			if (bad)
				fail("relaxed scan: a value that does not belong to its key", g);
			else if (n > GROUP_KEYS)
				fail("relaxed scan: more keys than the group has", g);
		} else {
			check_group(g, n, gens, bad);
		}
		if (rnd(&s) % 64 == 0)
			whole_relaxed_scan();
		atomic_fetch_add_explicit(&scans, 1, memory_order_relaxed);
		/* A point read of a loose key takes the same seqlock path;
		 * before it, a prefetch of the key and of a group's keys, which
		 * races the batches that rewrite and delete them (it reads the
		 * index, nodes and records without the seqlock). */
		char k[KEY_LEN];
		loose_key(k, rnd(&s) % LOOSE);
		char pk[(GROUP_KEYS + 1) * KEY_LEN];
		uint32_t pl[GROUP_KEYS + 1];
		int pg = (int)(rnd(&s) % GROUPS);
		for (int i = 0; i < GROUP_KEYS; i++) {
			group_key(pk + i * KEY_LEN, pg, i);
			pl[i] = KEY_LEN;
		}
		memcpy(pk + GROUP_KEYS * KEY_LEN, k, KEY_LEN);
		pl[GROUP_KEYS] = KEY_LEN;
		if (mantis_db_prefetch(db, pk, pl, GROUP_KEYS + 1) != MANTIS_OK)
			fail("prefetch failed", pg);
		unsigned char v[VALUE_LEN + 8];
		size_t vl = 0;
		uint64_t gen;
		st = mantis_db_get(db, k, KEY_LEN, 1, v, sizeof v, &vl);
		if (st == MANTIS_OK && !value_gen(k, KEY_LEN, v, vl, &gen))
			fail("a loose key's value does not belong to it", -1);
		else if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
			fail("get failed", -1);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads;
	double seconds;
	if (!stress_args(argc, argv, 128, &threads, &seconds))
		return 2;
	if (mantis_db_open(NULL, &db) != MANTIS_OK) {
		fprintf(stderr, "db_open failed\n");
		return 1;
	}
	int n = 2 * threads;
	pthread_t *tids = calloc((size_t)n, sizeof *tids);
	if (tids == NULL)
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	for (int i = 0; i < threads; i++) {
		pthread_create(&tids[i], NULL, writer, (void *)(uintptr_t)(i + 1));
		pthread_create(&tids[threads + i], NULL, reader, (void *)(uintptr_t)(i + 1));
	}
	pthread_barrier_wait(&start);
	double end = stress_now_s() + seconds;
	while (stress_now_s() < end) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	printf("stress_engine: %d writers + %d readers %.1fs: %llu batches, %llu group scans, "
	       "%llu whole relaxed scans\n",
	       threads, threads, seconds, (unsigned long long)atomic_load(&batches),
	       (unsigned long long)atomic_load(&scans), (unsigned long long)atomic_load(&whole_scans));
	if (!atomic_load(&failed) &&
	    (atomic_load(&batches) == 0 || atomic_load(&scans) == 0 || atomic_load(&whole_scans) == 0))
		fail("no batch or no scan ran", -1);
	/* Quiescent now: every level of the engine's list must be intact. */
	stress_check_shape(engine_list(db), "stress_engine", "after the run");
	mantis_db_close(db);
	free(tids);
	pthread_barrier_destroy(&start);
	if (atomic_load(&failed)) {
		printf("stress_engine: FAILED\n");
		return 1;
	}
	printf("stress_engine: OK\n");
	return 0;
}
