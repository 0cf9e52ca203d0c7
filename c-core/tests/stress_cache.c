/*
 * stress_cache.c -- multi-threaded torture test for mantis_cache.
 * Usage: stress_cache THREADS SECONDS
 *
 * Threads start together (barrier) and run a random mix of get, get_many,
 * view, put (with and without TTL), delete, sweep and rare clears over a key space
 * larger than the budget, so eviction and expiry run all the time.  Every
 * value is self-describing (key id, version, expiry, length, checksum), so
 * a reader checks that what it sees belongs to the key it asked for, is
 * intact (not freed or half-written), and is not expired at the time it
 * read.  The budget is checked from the stats after every write.
 *
 * Freshness (a read never returns a value older than the last put or
 * delete of its key that returned before the read started): each key is
 * written by one owner thread only, with versions rising per thread, and
 * the owner publishes the version of each acknowledged put or delete in
 * acked[key].  A reader loads acked[key] before its read; a hit carrying
 * an older version is stale.  Misses are always allowed (eviction).
 * At the end every byte the cache allocated must be freed.
 * Exit status 0 on success; failures print and exit 1.
 */
#include <mantis.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress_util.h"

#define NKEYS 20000
#define MAXV 240

static mantis_cache *cache;
static pthread_barrier_t start;
static _Atomic uint64_t clock_ns = 1;
static _Atomic int stop;
static _Atomic int failed;
static _Atomic uint64_t busy; /* puts refused at the retired-memory cap */
static int nthreads;
/* Version of the last acknowledged put/delete of each key (its owner's). */
static _Atomic uint64_t acked[NKEYS];

struct hdr {
	uint64_t key;
	uint64_t version;
	uint64_t expires_at;
	uint32_t len;
	uint32_t sum;
};

static void
fail(const char *what, uint64_t key)
{
	fprintf(stderr, "stress_cache: %s (key %llu)\n", what, (unsigned long long)key);
	atomic_store(&failed, 1);
	atomic_store(&stop, 1);
}

static uint32_t
sum_of(const unsigned char *p, size_t n)
{
	uint32_t s = 2166136261u;
	for (size_t i = 0; i < n; i++)
		s = (s ^ p[i]) * 16777619u;
	return s;
}

static void
validate(const unsigned char *v, size_t len, uint64_t key, uint64_t now, uint64_t floor)
{
	struct hdr h;
	if (len < sizeof h) {
		fail("short value", key);
		return;
	}
	memcpy(&h, v, sizeof h);
	if (h.key != key)
		fail("value of another key", key);
	else if (h.len != len)
		fail("length mismatch", key);
	else if (h.sum != sum_of(v + sizeof h, len - sizeof h))
		fail("corrupt value", key);
	else if (h.expires_at != 0 && h.expires_at <= now)
		fail("expired value returned", key);
	else if (h.version < floor)
		fail("stale value: older than an acknowledged write", key);
}

struct vctx {
	uint64_t key, now, floor;
};

static void
view_cb(void *ctx, const void *v, size_t len)
{
	struct vctx *x = ctx;
	validate(v, len, x->key, x->now, x->floor);
}

static void
check_budget(void)
{
	mantis_cache_stats st;
	if (mantis_cache_stats_get(cache, &st) != MANTIS_OK || st.bytes_used > st.budget)
		fail("budget exceeded", 0);
}

static void *
worker(void *arg)
{
	unsigned self = (unsigned)(uintptr_t)arg - 1; /* owns keys k % nthreads == self */
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
	unsigned char val[MAXV], buf[MAXV];
	uint64_t version = 0;
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint64_t k = rng % NKEYS;
		unsigned r = (unsigned)((rng >> 20) % 1000);
		if (r >= 700 && r < 980) {
			/* Writes go to a key this thread owns. */
			k = k - k % (uint64_t)nthreads + self;
			if (k >= NKEYS)
				k -= (uint64_t)nthreads;
		}
		uint64_t now = atomic_fetch_add_explicit(&clock_ns, 1, memory_order_relaxed);
		/* Acquire: pairs with the owner's release after its write returned. */
		uint64_t floor = atomic_load_explicit(&acked[k], memory_order_acquire);
		char key[24];
		int kl = snprintf(key, sizeof key, "stress-%llu", (unsigned long long)k);
		if (r < 50) {
			/* get_many of 8 consecutive keys, each checked as a get. */
			enum { M = 8 };
			uint8_t keys[M * 24];
			uint32_t offs[M + 1];
			uint64_t floors[M], lens[M];
			static _Thread_local unsigned char mbuf[M * MAXV];
			offs[0] = 0;
			for (int j = 0; j < M; j++) {
				uint64_t kj = (k + (uint64_t)j) % NKEYS;
				/* Acquire: as for floor above. */
				floors[j] = atomic_load_explicit(&acked[kj], memory_order_acquire);
				offs[j + 1] = offs[j] + (uint32_t)snprintf((char *)keys + offs[j], 24,
									   "stress-%llu",
									   (unsigned long long)kj);
			}
			size_t done;
			if (mantis_cache_get_many(cache, keys, offs, M, now, mbuf, sizeof mbuf, lens,
						  &done) != MANTIS_OK ||
			    done != M) {
				fail("get_many status", k);
				continue;
			}
			size_t at = 0;
			for (int j = 0; j < M; j++) {
				if (lens[j] == UINT64_MAX)
					continue;
				validate(mbuf + at, lens[j], (k + (uint64_t)j) % NKEYS, now, floors[j]);
				at += lens[j];
			}
		} else if (r < 600) {
			size_t len = 0;
			mantis_status st = mantis_cache_get(cache, key, (size_t)kl, now, buf,
							    sizeof buf, &len);
			if (st == MANTIS_OK)
				validate(buf, len, k, now, floor);
			else if (st != MANTIS_NOT_FOUND)
				fail("get status", k);
		} else if (r < 700) {
			struct vctx x = {k, now, floor};
			mantis_status st = mantis_cache_view(cache, key, (size_t)kl, now, view_cb, &x);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				fail("view status", k);
		} else if (r < 920) {
			struct hdr h;
			size_t len = sizeof h + (rng >> 40) % (MAXV - sizeof h);
			uint64_t ttl = ((rng >> 8) & 3) == 0 ? 1 + (rng >> 32) % 2000 : 0;
			h.key = k;
			h.version = ++version;
			h.expires_at = ttl ? now + ttl : 0;
			h.len = (uint32_t)len;
			for (size_t i = sizeof h; i < len; i++)
				val[i] = (unsigned char)(rng >> (i % 56));
			h.sum = sum_of(val + sizeof h, len - sizeof h);
			memcpy(val, &h, sizeof h);
			mantis_status st = mantis_cache_put(cache, key, (size_t)kl, val, len, ttl, now);
			if (st == MANTIS_BUSY) {
				/* A reader preempted in its section held the shard's
				 * retired memory at its cap: nothing changed, so the
				 * last acknowledged version stays the floor. */
				atomic_fetch_add_explicit(&busy, 1, memory_order_relaxed);
				continue;
			}
			if (st != MANTIS_OK)
				fail("put status", k);
			/* Release: the put returned before this version is visible. */
			atomic_store_explicit(&acked[k], h.version, memory_order_release);
			check_budget();
		} else if (r < 980) {
			mantis_status st = mantis_cache_delete(cache, key, (size_t)kl);
			if (st != MANTIS_OK && st != MANTIS_NOT_FOUND)
				fail("delete status", k);
			/* Every value put before this delete is now stale. */
			atomic_store_explicit(&acked[k], ++version, memory_order_release);
			check_budget();
		} else if (r < 999) {
			size_t got;
			if (mantis_cache_sweep(cache, now, 256, &got) != MANTIS_OK)
				fail("sweep status", 0);
			check_budget();
		} else if ((rng >> 50) % 50 == 0) {
			if (mantis_cache_clear(cache) != MANTIS_OK)
				fail("clear status", 0);
			check_budget();
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads;
	double seconds;
	if (!stress_args(argc, argv, 256, &threads, &seconds))
		return 2;
	nthreads = threads;
	mantis_alloc_stats a0, a1;
	mantis_alloc_get_stats(&a0);
	/* 2 MiB across 2 shards; the key space needs ~5 MiB. */
	mantis_cache_options o = {.budget_bytes = 2u << 20, .shards = 2};
	if (mantis_cache_new(&o, &cache) != MANTIS_OK) {
		fprintf(stderr, "cache_new failed\n");
		return 1;
	}
	pthread_t *tids = calloc((size_t)threads, sizeof *tids);
	if (tids == NULL)
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	pthread_barrier_wait(&start);
	double end = stress_now_s() + seconds;
	while (stress_now_s() < end) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	mantis_cache_stats st;
	mantis_cache_stats_get(cache, &st);
	printf("stress_cache: %d threads %.1fs: hits %llu misses %llu evictions %llu "
	       "expirations %llu entries %llu bytes %llu/%llu, puts refused busy %llu\n",
	       threads, seconds, (unsigned long long)st.hits, (unsigned long long)st.misses,
	       (unsigned long long)st.evictions, (unsigned long long)st.expirations,
	       (unsigned long long)st.entries, (unsigned long long)st.bytes_used,
	       (unsigned long long)st.budget, (unsigned long long)atomic_load(&busy));
	if (st.bytes_used > st.budget)
		fail("budget exceeded at end", 0);
	mantis_cache_free(cache);
	mantis_alloc_get_stats(&a1);
	if (a1.bytes_in_use != a0.bytes_in_use)
		fail("leak after free (bytes)", (uint64_t)(a1.bytes_in_use - a0.bytes_in_use));
	pthread_barrier_destroy(&start);
	free(tids);
	return atomic_load(&failed) ? 1 : 0;
}
