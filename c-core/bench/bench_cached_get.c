/*
 * bench_cached_get.c -- does a mantis_cache in front of the skiplist make
 * point reads faster?  (Issue 5: the cache is to be used as a point-lookup
 * accelerator "where the benchmark shows a win"; this is that benchmark.)
 * Not a test: nothing here asserts on time.
 *
 * Usage: bench_cached_get [N_KEYS [MAX_THREADS [OPS_PER_THREAD_MILLIONS]]]
 *        (defaults 1000000, 2, 1; ops per thread at MAX_THREADS: every run,
 *        whatever its thread count, does MAX_THREADS x that many ops)
 *        make -C c-core build/bench/bench_cached_get && \
 *          c-core/build/bench/bench_cached_get
 *
 * Workload: N_KEYS keys of 16 bytes (bench_skiplist's key format), 100-byte
 * values, loaded in key order into a mantis_skiplist.  Each variant below
 * owns its own skiplist (loaded identically, one after the other), so the
 * writes of one variant's mixed row never make another's cache stale.
 *
 * Variants:
 *   A_skiplist  mantis_skiplist_get alone (value copied out); a put is
 *               mantis_skiplist_put.
 *   B_cacheNN   the read-through composition a store would use, with a
 *               mantis_cache of NN% of the data (N x (key + value +
 *               MANTIS_CACHE_ENTRY_OVERHEAD), as bench_cache charges):
 *                 get: mantis_cache_get; on a miss, under the key's fill
 *                      stripe lock, mantis_skiplist_get then
 *                      mantis_cache_put of the value.
 *                 put: under the same stripe lock, mantis_skiplist_put then
 *                      mantis_cache_delete (invalidate).
 *               The stripe lock (4096 padded mutexes, never taken by a
 *               cache hit) is what keeps the invariant "a read never returns
 *               a value older than the last acknowledged write of that
 *               key": without it a filler that read the old value from the
 *               skiplist could put it into the cache after a concurrent
 *               writer's delete.  So the cost of freshness is included.
 *
 * Rows, each at 1..MAX_THREADS threads (threads split the ops):
 *   uniform_get    gets of keys drawn uniformly
 *   zipf_get       gets of keys drawn from Zipf(0.99) (inverse CDF as in
 *                  bench_cache; ranks scattered over the key space by a
 *                  random permutation, so hot keys are not neighbours)
 *   uniform_mixed  90% get / 10% put (a new value), uniform keys
 *   zipf_mixed     the same with Zipf(0.99) keys
 * Key traces are generated before timing (so both variants read exactly the
 * same keys and the Zipf draw costs nothing in the loop).  Before the timed
 * runs of a distribution each variant gets one untimed single-thread pass of
 * N_KEYS gets from the same distribution (for B: warms the cache).  Runs are
 * interleaved A, B10, B50, A, B10, B50, A, ... and each figure is the median
 * of REPS (3).  After each distribution a freshness check compares every
 * cached value of a sample of keys with its skiplist (any stale one is
 * reported on stderr: a broken invariant, not a timing).
 *
 * Output: one line per (row, variant, threads):
 *   row variant threads ns_per_op mops_per_s hit_ratio
 * ns_per_op is wall time x threads / ops (the cost one thread pays per op),
 * mops_per_s the aggregate throughput, hit_ratio the share of gets the
 * cache answered (B only).  Then ratio lines: B's Mops/s over A's in the
 * same row and thread count (> 1: the cache is faster).  The load average
 * is printed before and after: on a shared machine it moves the absolute
 * numbers (the interleaved ratios move less).
 */
#include <mantis.h>

#include "bench_util.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KLEN 16
#define VLEN 100
#define REPS 3
#define NVAR 3
#define NSTRIPES 4096
#define PUT_FLAG 0x80000000u /* top bit of a trace entry: this op is a put */

static size_t n_keys = 1000000;
static int max_threads = 2;
static size_t ops_per_thread = 1000000;

static uint64_t *perm; /* a random permutation of 0..n-1 (Zipf rank -> key) */

/* ------------------------------------------------------------------------ */
/* The variants                                                             */
/* ------------------------------------------------------------------------ */

struct stripe {
	_Alignas(64) pthread_mutex_t mu;
};

struct variant {
	const char *name;
	int budget_pct; /* 0: A (no cache) */
	mantis_skiplist *sl;
	mantis_cache *cache;
	struct stripe *stripes;
};

static struct variant vars[NVAR] = {
	{"A_skiplist", 0, NULL, NULL, NULL},
	{"B_cache10", 10, NULL, NULL, NULL},
	{"B_cache50", 50, NULL, NULL, NULL},
};

static inline struct stripe *
stripe_of(const struct variant *v, const uint8_t *k)
{
	uint64_t a, b;
	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	return &v->stripes[bench_mix64(a ^ bench_mix64(b)) & (NSTRIPES - 1)];
}

/* Returns true when the cache answered (B) ; *found whether the key was. */
static inline bool
v_get(const struct variant *v, const uint8_t *k, uint8_t *out, bool *found)
{
	size_t n;
	if (v->cache == NULL) {
		*found = mantis_skiplist_get(v->sl, k, KLEN, 0, out, VLEN, &n, NULL, NULL) ==
			 MANTIS_OK;
		return false;
	}
	if (mantis_cache_get(v->cache, k, KLEN, 0, out, VLEN, &n) == MANTIS_OK) {
		*found = true;
		return true;
	}
	struct stripe *s = stripe_of(v, k);
	pthread_mutex_lock(&s->mu);
	*found = mantis_skiplist_get(v->sl, k, KLEN, 0, out, VLEN, &n, NULL, NULL) == MANTIS_OK;
	if (*found)
		mantis_cache_put(v->cache, k, KLEN, out, n, 0, 0);
	pthread_mutex_unlock(&s->mu);
	return false;
}

static inline void
v_put(const struct variant *v, const uint8_t *k, const uint8_t *val, uint64_t seq)
{
	if (v->cache == NULL) {
		if (mantis_skiplist_put(v->sl, k, KLEN, val, VLEN, seq, 0) != MANTIS_OK)
			abort();
		return;
	}
	struct stripe *s = stripe_of(v, k);
	pthread_mutex_lock(&s->mu);
	if (mantis_skiplist_put(v->sl, k, KLEN, val, VLEN, seq, 0) != MANTIS_OK)
		abort();
	mantis_cache_delete(v->cache, k, KLEN);
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------------ */
/* Traces                                                                   */
/* ------------------------------------------------------------------------ */

enum dist { UNIFORM, ZIPF };

static double *zipf_cdf; /* cumulative weights of ranks 0..n-1, Zipf(0.99) */

static void
make_zipf_cdf(double s)
{
	zipf_cdf = malloc(n_keys * sizeof(*zipf_cdf));
	double sum = 0;
	for (size_t i = 0; i < n_keys; i++) {
		sum += 1.0 / pow((double)(i + 1), s);
		zipf_cdf[i] = sum;
	}
}

/* len key indices of distribution d; with mixed, every op whose own draw
 * says so (1 in 10) carries PUT_FLAG. */
static uint32_t *
make_trace(enum dist d, size_t len, uint64_t seed, bool mixed)
{
	uint32_t *t = malloc(len * sizeof(*t));
	uint64_t rng = seed;
	double total = zipf_cdf[n_keys - 1];
	for (size_t j = 0; j < len; j++) {
		rng = bench_mix64(rng);
		uint32_t key;
		if (d == UNIFORM) {
			key = (uint32_t)(rng % n_keys);
		} else {
			double u = (double)(rng >> 11) / 9007199254740992.0 * total;
			key = (uint32_t)perm[bench_cdf_rank(zipf_cdf, n_keys, u)];
		}
		if (mixed && bench_mix64(rng ^ 0x5bd1e995u) % 10 == 0)
			key |= PUT_FLAG;
		t[j] = key;
	}
	return t;
}

/* ------------------------------------------------------------------------ */
/* Runner                                                                   */
/* ------------------------------------------------------------------------ */

struct job {
	const struct variant *v;
	const uint32_t *trace; /* this thread's ops */
	size_t n;
	int t;
	uint64_t stamp; /* distinguishes this run's put values */
	pthread_barrier_t *bar;
	uint64_t gets, hits, found;
	double t0, t1; /* this thread's own start and end */
};

static void *
job_main(void *arg)
{
	struct job *j = arg;
	uint8_t k[KLEN], out[VLEN], val[VLEN];
	memset(val, 'v', sizeof(val));
	uint64_t gets = 0, hits = 0, found = 0;
	if (j->bar != NULL)
		pthread_barrier_wait(j->bar);
	j->t0 = bench_now_s();
	for (size_t i = 0; i < j->n; i++) {
		uint32_t e = j->trace[i];
		bench_hex_key(k, 2 * (e & ~PUT_FLAG));
		if (e & PUT_FLAG) {
			uint64_t stamp = j->stamp + ((uint64_t)j->t << 32) + i;
			memcpy(val, &stamp, sizeof(stamp));
			v_put(j->v, k, val, stamp);
		} else {
			bool f;
			hits += v_get(j->v, k, out, &f);
			found += f;
			gets++;
		}
	}
	j->t1 = bench_now_s();
	j->gets = gets;
	j->hits = hits;
	j->found = found;
	return NULL;
}

struct result {
	double ns_op, mops, hit;
};

static uint64_t run_counter;

static struct result
run(const struct variant *v, const uint32_t *trace, size_t ops_each, int nt)
{
	pthread_t th[64];
	struct job jobs[64];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
	run_counter++;
	for (int t = 0; t < nt; t++) {
		jobs[t] = (struct job){v, trace + (size_t)t * ops_each, ops_each, t,
				       run_counter << 40, &bar, 0, 0, 0, 0, 0};
		pthread_create(&th[t], NULL, job_main, &jobs[t]);
	}
	pthread_barrier_wait(&bar);
	/* First worker start to last worker end, timed by the workers (the
	 * main thread may be descheduled at the barrier on a busy machine). */
	uint64_t gets = 0, hits = 0, found = 0;
	double t0 = 0, t1 = 0;
	for (int t = 0; t < nt; t++) {
		pthread_join(th[t], NULL);
		gets += jobs[t].gets;
		hits += jobs[t].hits;
		found += jobs[t].found;
		if (t == 0 || jobs[t].t0 < t0)
			t0 = jobs[t].t0;
		if (jobs[t].t1 > t1)
			t1 = jobs[t].t1;
	}
	pthread_barrier_destroy(&bar);
	/* Sanity (not timing): every key is present. */
	if (found != gets)
		fprintf(stderr, "bench_cached_get: %s found %llu of %llu\n", v->name,
			(unsigned long long)found, (unsigned long long)gets);
	double el = t1 - t0, ops = (double)ops_each * nt;
	return (struct result){el * 1e9 * nt / ops, ops / el / 1e6,
			       gets ? 100.0 * (double)hits / (double)gets : 0};
}

/* One untimed single-thread pass of gets (B: fills the cache). */
static void
warm(const struct variant *v, const uint32_t *trace, size_t n)
{
	struct job j = {v, trace, n, 0, 0, NULL, 0, 0, 0, 0, 0};
	job_main(&j);
}

/* Every sampled key the cache holds must hold the skiplist's value. */
static void
check_fresh(const struct variant *v)
{
	uint8_t k[KLEN], a[VLEN], b[VLEN];
	size_t na, nb, held = 0, stale = 0;
	for (size_t i = 0; i < n_keys; i += 7) {
		bench_hex_key(k, 2 * i);
		if (mantis_cache_get(v->cache, k, KLEN, 0, a, VLEN, &na) != MANTIS_OK)
			continue;
		held++;
		if (mantis_skiplist_get(v->sl, k, KLEN, 0, b, VLEN, &nb, NULL, NULL) != MANTIS_OK ||
		    na != nb || memcmp(a, b, na) != 0)
			stale++;
	}
	printf("# freshness %s: %zu cached keys of every 7th compared, %zu stale\n", v->name,
	       held, stale);
	if (stale != 0)
		fprintf(stderr, "bench_cached_get: %s: %zu stale cache entries\n", v->name, stale);
}

#define NROWS 4
static const char *row_names[NROWS] = {"uniform_get", "zipf_get", "uniform_mixed",
				       "zipf_mixed"};
static double row_mops[NROWS][NVAR][65];

int
main(int argc, char **argv)
{
	if (argc > 1)
		n_keys = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		max_threads = atoi(argv[2]);
	if (argc > 3)
		ops_per_thread = (size_t)(atof(argv[3]) * 1e6);
	if (n_keys < 1000 || n_keys >= PUT_FLAG || max_threads < 1 || max_threads > 64 ||
	    ops_per_thread < 1000) {
		fprintf(stderr, "usage: bench_cached_get [N_KEYS>=1000 [MAX_THREADS 1..64 "
				"[OPS_PER_THREAD_MILLIONS]]]\n");
		return 2;
	}
	uint64_t charge = mantis_cache_charge(KLEN, VLEN);
	printf("# bench_cached_get: %zu keys, %d-byte keys, %d-byte values, %zu ops/thread, "
	       "median of %d; cache charge %llu B/entry\n",
	       n_keys, KLEN, VLEN, ops_per_thread, REPS, (unsigned long long)charge);
	bench_print_loadavg("before");
	perm = bench_perm(n_keys, 42);
	make_zipf_cdf(0.99);

	uint8_t k[KLEN], val[VLEN];
	memset(val, 'v', sizeof(val));
	for (int v = 0; v < NVAR; v++) {
		if (mantis_skiplist_new(&vars[v].sl) != MANTIS_OK)
			return 1;
		for (size_t i = 0; i < n_keys; i++) {
			bench_hex_key(k, 2 * i);
			if (mantis_skiplist_put(vars[v].sl, k, KLEN, val, VLEN, 1, 0) != MANTIS_OK)
				return 1;
		}
		if (vars[v].budget_pct != 0) {
			vars[v].stripes = aligned_alloc(64, NSTRIPES * sizeof(struct stripe));
			for (int s = 0; s < NSTRIPES; s++)
				pthread_mutex_init(&vars[v].stripes[s].mu, NULL);
		}
	}

	printf("# row          variant    threads ns/op    Mops/s  hit%%\n");
	fflush(stdout);
	size_t seg = ops_per_thread * (size_t)max_threads; /* one rep's ops */
	for (int d = UNIFORM; d <= ZIPF; d++) {
		/* Fresh caches per distribution, warmed by one pass of it. */
		uint32_t *wt = make_trace((enum dist)d, n_keys, 1000 + (uint64_t)d, false);
		for (int v = 0; v < NVAR; v++) {
			if (vars[v].budget_pct == 0) {
				warm(&vars[v], wt, n_keys);
				continue;
			}
			mantis_cache_options o = {
				.budget_bytes = (uint64_t)n_keys * charge *
						(uint64_t)vars[v].budget_pct / 100};
			if (mantis_cache_new(&o, &vars[v].cache) != MANTIS_OK)
				return 1;
			warm(&vars[v], wt, n_keys);
		}
		free(wt);
		for (int mixed = 0; mixed <= 1; mixed++) {
			int row = d + 2 * mixed;
			uint32_t *tr = make_trace((enum dist)d, seg * REPS,
						  2000 + (uint64_t)row, mixed != 0);
			for (int nt = 1; nt <= max_threads; nt++) {
				double ns[NVAR][REPS], mops[NVAR][REPS], hit[NVAR][REPS];
				size_t each = ops_per_thread * (size_t)max_threads / (size_t)nt;
				for (int rep = 0; rep < REPS; rep++)
					for (int v = 0; v < NVAR; v++) {
						struct result r =
							run(&vars[v], tr + (size_t)rep * seg, each, nt);
						ns[v][rep] = r.ns_op;
						mops[v][rep] = r.mops;
						hit[v][rep] = r.hit;
					}
				for (int v = 0; v < NVAR; v++) {
					row_mops[row][v][nt] = bench_median(mops[v], REPS);
					char hs[16] = "-";
					if (vars[v].budget_pct != 0)
						snprintf(hs, sizeof hs, "%.1f", bench_median(hit[v], REPS));
					printf("%-14s %-10s %d %10.1f %8.2f %6s\n", row_names[row],
					       vars[v].name, nt, bench_median(ns[v], REPS), row_mops[row][v][nt],
					       hs);
				}
				fflush(stdout);
			}
			free(tr);
		}
		for (int v = 0; v < NVAR; v++)
			if (vars[v].cache != NULL) {
				check_fresh(&vars[v]);
				mantis_cache_free(vars[v].cache);
				vars[v].cache = NULL;
			}
	}
	for (int row = 0; row < NROWS; row++)
		for (int nt = 1; nt <= max_threads; nt++)
			printf("ratio B/A Mops/s (>1: cache faster) %-14s T%d: cache10 %.2fx, "
			       "cache50 %.2fx\n",
			       row_names[row], nt, row_mops[row][1][nt] / row_mops[row][0][nt],
			       row_mops[row][2][nt] / row_mops[row][0][nt]);
	for (int v = 0; v < NVAR; v++) {
		mantis_skiplist_free(vars[v].sl);
		if (vars[v].stripes != NULL) {
			for (int s = 0; s < NSTRIPES; s++)
				pthread_mutex_destroy(&vars[v].stripes[s].mu);
			free(vars[v].stripes);
		}
	}
	free(perm);
	free(zipf_cdf);
	bench_print_loadavg("after");
	return 0;
}
