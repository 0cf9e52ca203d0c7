/*
 * test_random.c -- mantis_db_random_key (RANDOMKEY over the hash index,
 * hx_sample in hindex.c): uniform over the live keys (a per-key
 * chi-square with fixed seeds), never a deleted or expired key, empty and
 * sparse maps, seed replay, short buffers, bad arguments, and draws racing
 * writers that grow, shrink and purge the index (the TSan and ASan builds
 * check the memory protocol; the test checks that no key deleted before a
 * call started is returned by it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <mantis.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAWS 64

static mantis_db *
open_db(void)
{
	mantis_db *db = NULL;
	assert_int_equal(mantis_db_open(NULL, &db), MANTIS_OK);
	return db;
}

static size_t
key_of(char *buf, size_t cap, const char *prefix, unsigned i)
{
	int n = snprintf(buf, cap, "%s%06u", prefix, i);
	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

static void
put_key(mantis_db *db, const char *prefix, unsigned i, uint64_t exp)
{
	char k[32];
	size_t n = key_of(k, sizeof(k), prefix, i);
	assert_int_equal(mantis_db_put(db, k, n, "v", 1, exp), MANTIS_OK);
}

static void
del_key(mantis_db *db, const char *prefix, unsigned i)
{
	char k[32];
	size_t n = key_of(k, sizeof(k), prefix, i);
	assert_int_equal(mantis_db_delete(db, k, n), MANTIS_OK);
}

/* The index i of a key "<prefix>%06u", or -1 for anything else. */
static long
index_of(const char *prefix, const char *key, size_t len)
{
	size_t pl = strlen(prefix);
	if (len != pl + 6 || memcmp(key, prefix, pl) != 0)
		return -1;
	long i = 0;
	for (size_t j = pl; j < len; j++) {
		if (key[j] < '0' || key[j] > '9')
			return -1;
		i = i * 10 + (key[j] - '0');
	}
	return i;
}

/*
 * Draws `picks` keys (seeds 1, 2, ...; a NOT_FOUND draw is retried with
 * the next seed, which keeps the accepted picks uniform) of keys
 * "k%06u" for i < n and counts them per key; fails on a key i with
 * !live(i).  Then a chi-square over the live keys: with m live keys it has
 * m-1 degrees of freedom (mean m-1, deviation sqrt(2(m-1))); the bound is
 * 8 deviations above the mean, which a uniform pick exceeds with
 * probability far below 1e-9, while a pick that weights shards equally
 * instead of by capacity (keys of half-full tables twice as likely as
 * keys of quarter-full ones) lands tens of thousands above it.  Returns
 * the NOT_FOUND draws.
 */
static unsigned
check_uniform(mantis_db *db, unsigned n, bool (*live)(unsigned), uint64_t now, unsigned picks)
{
	unsigned *count = calloc(n, sizeof(*count));
	assert_non_null(count);
	unsigned misses = 0;
	uint64_t seed = 1;
	for (unsigned p = 0; p < picks; seed++) {
		char buf[64];
		size_t len = 0;
		mantis_status st = mantis_db_random_key(db, seed, now, DRAWS, buf, sizeof(buf), &len);
		if (st == MANTIS_NOT_FOUND) {
			misses++;
			assert_true(misses < picks); /* a dense map rarely misses */
			continue;
		}
		assert_int_equal(st, MANTIS_OK);
		long i = index_of("k", buf, len);
		assert_true(i >= 0 && (unsigned)i < n);
		if (!live((unsigned)i))
			fail_msg("drew k%06ld, which is not live", i);
		count[i]++;
		p++;
	}
	unsigned m = 0;
	for (unsigned i = 0; i < n; i++)
		m += live(i);
	double want = (double)picks / m, chi = 0;
	for (unsigned i = 0; i < n; i++)
		if (live(i))
			chi += (count[i] - want) * (count[i] - want) / want;
	double dof = m - 1, bound = dof + 8 * sqrt(2 * dof);
	if (chi > bound)
		fail_msg("chi-square %.0f over %u live keys, bound %.0f: not uniform", chi, m,
			 bound);
	free(count);
	return misses;
}

static bool
all_live(unsigned i)
{
	(void)i;
	return true;
}

static bool
even_live(unsigned i)
{
	return i % 2 == 0;
}

/* 20000 keys spread ~20 per shard, so shard tables have different
 * capacities (32 and 64 slots mostly): the draw must weight them. */
#define N_KEYS 20000
#define N_PICKS 200000

static void
test_uniform(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	for (unsigned i = 0; i < N_KEYS; i++)
		put_key(db, "k", i, 0);
	unsigned misses = check_uniform(db, N_KEYS, all_live, 1, N_PICKS);
	/* Tables are at least 1/4 full here: 64 draws all miss with
	 * probability below 1e-8 per call. */
	assert_int_equal(misses, 0);
	mantis_db_close(db);
}

static void
test_deleted_never_returned(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	for (unsigned i = 0; i < N_KEYS; i++)
		put_key(db, "k", i, 0);
	for (unsigned i = 1; i < N_KEYS; i += 2)
		del_key(db, "k", i);
	(void)check_uniform(db, N_KEYS, even_live, 1, N_PICKS / 2);
	/* Every key deleted: nothing to draw. */
	for (unsigned i = 0; i < N_KEYS; i += 2)
		del_key(db, "k", i);
	char buf[64];
	size_t len = 0;
	assert_int_equal(mantis_db_random_key(db, 7, 1, DRAWS, buf, sizeof(buf), &len),
			 MANTIS_NOT_FOUND);
	mantis_db_close(db);
}

static void
test_expired_never_returned(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	const uint64_t now = 1000;
	/* Odd keys expire at now (expired: expires_at <= now), even ones
	 * later or never. */
	for (unsigned i = 0; i < N_KEYS; i++)
		put_key(db, "k", i, i % 2 ? now : (i % 4 ? now + 1 : 0));
	(void)check_uniform(db, N_KEYS, even_live, now, N_PICKS / 2);
	/* Later, only the keys that never expire (i % 4 == 0) are drawn. */
	char buf[64];
	size_t len = 0;
	for (uint64_t seed = 0; seed < 1000; seed++) {
		mantis_status st =
		    mantis_db_random_key(db, seed, now + 1, DRAWS, buf, sizeof(buf), &len);
		if (st == MANTIS_NOT_FOUND)
			continue;
		assert_int_equal(st, MANTIS_OK);
		assert_int_equal(index_of("k", buf, len) % 4, 0);
	}
	/* Every key left expired: NOT_FOUND (the caller's full pass decides). */
	for (unsigned i = 0; i < N_KEYS; i += 4)
		del_key(db, "k", i);
	for (uint64_t seed = 0; seed < 100; seed++)
		assert_int_equal(mantis_db_random_key(db, seed, now + 1, DRAWS, buf, sizeof(buf),
						      &len),
				 MANTIS_NOT_FOUND);
	mantis_db_close(db);
}

static void
test_empty_and_single(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	char buf[64];
	size_t len = 0;
	assert_int_equal(mantis_db_random_key(db, 1, 1, DRAWS, buf, sizeof(buf), &len),
			 MANTIS_NOT_FOUND);
	/* One key: one non-empty table of 16 slots, so a call finds it
	 * with probability 1 - (15/16)^64, about 98%; over 100 seeds some
	 * find it and every one found is it. */
	put_key(db, "k", 42, 0);
	unsigned found = 0;
	for (uint64_t seed = 0; seed < 100; seed++) {
		mantis_status st = mantis_db_random_key(db, seed, 1, DRAWS, buf, sizeof(buf), &len);
		if (st == MANTIS_NOT_FOUND)
			continue;
		assert_int_equal(st, MANTIS_OK);
		assert_int_equal(index_of("k", buf, len), 42);
		found++;
	}
	assert_true(found >= 50);
	mantis_db_close(db);
}

static void
test_seed_replay_and_short_buffer(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	for (unsigned i = 0; i < 1000; i++)
		put_key(db, "k", i, 0);
	char a[64], b[64];
	size_t al = 0, bl = 0;
	assert_int_equal(mantis_db_random_key(db, 99, 1, 1000, a, sizeof(a), &al), MANTIS_OK);
	assert_int_equal(mantis_db_random_key(db, 99, 1, 1000, b, sizeof(b), &bl), MANTIS_OK);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	/* A short buffer: the size needed, then the same key with the same
	 * seed; a zero-capacity NULL buffer is allowed. */
	size_t need = 0;
	assert_int_equal(mantis_db_random_key(db, 99, 1, 1000, NULL, 0, &need),
			 MANTIS_BUFFER_TOO_SMALL);
	assert_int_equal(need, al);
	assert_int_equal(mantis_db_random_key(db, 99, 1, 1000, b, need - 1, &bl),
			 MANTIS_BUFFER_TOO_SMALL);
	assert_int_equal(mantis_db_random_key(db, 99, 1, 1000, b, need, &bl), MANTIS_OK);
	assert_memory_equal(a, b, al);
	/* Different seeds reach different keys. */
	unsigned differ = 0;
	for (uint64_t seed = 100; seed < 120; seed++) {
		assert_int_equal(mantis_db_random_key(db, seed, 1, 1000, b, sizeof(b), &bl),
				 MANTIS_OK);
		differ += bl != al || memcmp(a, b, al) != 0;
	}
	assert_true(differ >= 15);
	mantis_db_close(db);
}

static void
test_bad_arguments(void **state)
{
	(void)state;
	mantis_db *db = open_db();
	put_key(db, "k", 1, 0);
	char buf[64];
	size_t len = 0;
	assert_int_equal(mantis_db_random_key(NULL, 1, 1, DRAWS, buf, sizeof(buf), &len),
			 MANTIS_INVALID);
	assert_int_equal(mantis_db_random_key(db, 1, 1, DRAWS, buf, sizeof(buf), NULL),
			 MANTIS_INVALID);
	assert_int_equal(mantis_db_random_key(db, 1, 1, DRAWS, NULL, 8, &len), MANTIS_INVALID);
	assert_int_equal(mantis_db_random_key(db, 1, 1, 0, buf, sizeof(buf), &len),
			 MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_random_key(NULL, 1, 1, DRAWS, buf, sizeof(buf), &len),
			 MANTIS_INVALID);
	mantis_db_close(db);
}

/* ---- concurrent: draws racing index growth, shrinking and purges -------- */

#define RACE_KEYS 4000
#define RACE_ROUNDS 3

struct race {
	mantis_db *db;
	/* Keys "d%06u" below this were deleted for good (release store
	 * after each delete); "p%06u" keys live throughout; "c%06u" keys
	 * come and go, which grows and shrinks the shard tables. */
	unsigned deleted;
	int stop;
	unsigned long drawn, bad;
};

static void *
race_deleter(void *arg)
{
	struct race *r = arg;
	for (unsigned round = 0; round < RACE_ROUNDS; round++) {
		for (unsigned i = 0; i < RACE_KEYS; i++)
			put_key(r->db, "c", i, 0);
		for (unsigned i = 0; i < RACE_KEYS; i++)
			del_key(r->db, "c", i);
	}
	for (unsigned i = 0; i < RACE_KEYS; i++) {
		del_key(r->db, "d", i);
		/* Release: a drawer that reads i + 1 starts after the delete. */
		__atomic_store_n(&r->deleted, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *
race_drawer(void *arg)
{
	struct race *r = arg;
	uint64_t seed = 12345;
	unsigned long drawn = 0, bad = 0;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		unsigned gone = __atomic_load_n(&r->deleted, __ATOMIC_ACQUIRE);
		char buf[64];
		size_t len = 0;
		mantis_status st =
		    mantis_db_random_key(r->db, seed++, 1, DRAWS, buf, sizeof(buf), &len);
		if (st == MANTIS_NOT_FOUND)
			continue;
		if (st != MANTIS_OK) {
			bad++;
			continue;
		}
		drawn++;
		long d = index_of("d", buf, len);
		if (d >= 0) {
			bad += (unsigned long)d < gone; /* deleted before the call */
			continue;
		}
		if (index_of("p", buf, len) < 0 && index_of("c", buf, len) < 0)
			bad++; /* not a key anybody wrote: torn or freed memory */
	}
	__atomic_fetch_add(&r->drawn, drawn, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->bad, bad, __ATOMIC_RELAXED);
	return NULL;
}

static void
test_concurrent_writers(void **state)
{
	(void)state;
	struct race r = {.db = open_db()};
	for (unsigned i = 0; i < RACE_KEYS; i++) {
		put_key(r.db, "p", i, 0);
		put_key(r.db, "d", i, 0);
	}
	pthread_t w, d[2];
	assert_int_equal(pthread_create(&w, NULL, race_deleter, &r), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&d[i], NULL, race_drawer, &r), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(d[i], NULL);
	assert_int_equal(r.bad, 0);
	assert_true(r.drawn > 0);
	/* Quiescent now: only "p" keys are left, and draws find only them. */
	for (uint64_t seed = 0; seed < 1000; seed++) {
		char buf[64];
		size_t len = 0;
		mantis_status st = mantis_db_random_key(r.db, seed, 1, DRAWS, buf, sizeof(buf), &len);
		if (st == MANTIS_NOT_FOUND)
			continue;
		assert_int_equal(st, MANTIS_OK);
		assert_true(index_of("p", buf, len) >= 0);
	}
	mantis_db_close(r.db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uniform),
	    cmocka_unit_test(test_deleted_never_returned),
	    cmocka_unit_test(test_expired_never_returned),
	    cmocka_unit_test(test_empty_and_single),
	    cmocka_unit_test(test_seed_replay_and_short_buffer),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_concurrent_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
