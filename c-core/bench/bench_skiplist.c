/*
 * bench_skiplist.c -- micro-benchmark of the ordered index against a
 * mutex-protected ordered map and a hash-table point-lookup ceiling, on
 * one workload: 16-byte keys, 100-byte values.
 *
 * Usage: bench_skiplist [N_KEYS [MAX_THREADS [SYSTEM]]]
 *        (defaults 1000000, 2, all systems)
 *
 * Rows (each at 1..MAX_THREADS threads; threads split the key set):
 *   seq_insert    insert keys 0..N-1 in order into an empty map
 *   rand_insert   insert the same keys in a random order into an empty map
 *   get_hit       N random gets of present keys (value copied out)
 *   get_miss      N random gets of absent keys
 *   scan100       N/100 seeks to a random key, each followed by 100 entries
 *   scan_all      one pass over the whole map (the threads split it: each
 *                 seeks its share's first key and reads its share); ns/op
 *                 is per entry: what a checkpoint or a full SCAN pays
 *   mixed_90_10   N ops: 90% get of a present key, 10% put (update)
 *
 * Systems: "mantis" (this library), "mutex_sl" (a plain single-threaded
 * skiplist behind one pthread mutex: the obvious baseline), "hash_ceiling"
 * (an open-addressing table, built once, read concurrently: the ceiling for
 * point reads; it has no order, so no scan row).  Each system runs in its
 * own forked child so "peak RSS per key" is its own.
 *
 * Output: one line per (row, system, threads):
 *   row system threads ns_per_op mops_per_s
 * ns_per_op is wall time x threads / ops (the cost one thread pays per
 * op); mops_per_s is the aggregate throughput.  A benchmark, not a test:
 * nothing here asserts on time.
 */
#include <mantis.h>

#include "bench_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KLEN 16
#define VLEN 100

static size_t n_keys = 1000000;
static int max_threads = 2;

static uint64_t *perm; /* a random permutation of 0..n-1 */
static uint8_t value[VLEN];

/* ------------------------------------------------------------------------ */
/* The systems behind one small vtable                                      */
/* ------------------------------------------------------------------------ */

struct sys {
	const char *name;
	void *(*create)(void);
	void (*destroy)(void *);
	void (*put)(void *, const uint8_t *k, const uint8_t *v);
	bool (*get)(void *, const uint8_t *k, uint8_t *out);
	size_t (*scan)(void *, const uint8_t *k, size_t n); /* NULL: unsupported */
};

/* mantis */
static void *
m_create(void)
{
	mantis_skiplist *sl;
	if (mantis_skiplist_new(&sl) != MANTIS_OK)
		abort();
	return sl;
}
static void
m_destroy(void *p)
{
	mantis_skiplist_free(p);
}
static void
m_put(void *p, const uint8_t *k, const uint8_t *v)
{
	if (mantis_skiplist_put(p, k, KLEN, v, VLEN, 1, 0) != MANTIS_OK)
		abort();
}
static bool
m_get(void *p, const uint8_t *k, uint8_t *out)
{
	size_t n;
	return mantis_skiplist_get(p, k, KLEN, 0, out, VLEN, &n, NULL, NULL) == MANTIS_OK;
}
struct m_scan_arg {
	size_t left;
	uint64_t sink;
};
static bool
m_scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct m_scan_arg *a = arg;
	a->sink += e->value[0] + e->key[KLEN - 1];
	return --a->left > 0;
}
static size_t
m_scan(void *p, const uint8_t *k, size_t n)
{
	struct m_scan_arg a = {n, 0};
	size_t visited = 0;
	mantis_skiplist_scan(p, k, KLEN, false, 0, m_scan_cb, &a, &visited);
	return visited + (a.sink & 0);
}

/* mutex_sl: a textbook single-threaded skiplist behind one mutex */
#define MS_H 20
struct ms_node {
	uint8_t key[KLEN];
	uint8_t *val;
	int h;
	struct ms_node *next[];
};
struct ms {
	pthread_mutex_t mu;
	struct ms_node *head;
	uint64_t rng;
};
static void *
ms_create(void)
{
	struct ms *m = calloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->head = calloc(1, sizeof(struct ms_node) + MS_H * sizeof(void *));
	m->head->h = MS_H;
	m->rng = 7;
	return m;
}
static void
ms_destroy(void *p)
{
	struct ms *m = p;
	struct ms_node *n = m->head->next[0];
	while (n) {
		struct ms_node *nx = n->next[0];
		free(n->val);
		free(n);
		n = nx;
	}
	free(m->head);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
static struct ms_node *
ms_find(struct ms *m, const uint8_t *k, struct ms_node **preds)
{
	struct ms_node *x = m->head;
	for (int l = MS_H - 1; l >= 0; l--) {
		while (x->next[l] && memcmp(x->next[l]->key, k, KLEN) < 0)
			x = x->next[l];
		if (preds)
			preds[l] = x;
	}
	return x->next[0];
}
static void
ms_put(void *p, const uint8_t *k, const uint8_t *v)
{
	struct ms *m = p;
	struct ms_node *preds[MS_H];
	pthread_mutex_lock(&m->mu);
	struct ms_node *n = ms_find(m, k, preds);
	if (n && memcmp(n->key, k, KLEN) == 0) {
		memcpy(n->val, v, VLEN);
	} else {
		int h = 1;
		m->rng = bench_mix64(m->rng);
		for (uint64_t r = m->rng; h < MS_H && (r & 3) == 0; r >>= 2)
			h++;
		n = malloc(sizeof(*n) + (size_t)h * sizeof(void *));
		memcpy(n->key, k, KLEN);
		n->val = malloc(VLEN);
		memcpy(n->val, v, VLEN);
		n->h = h;
		for (int l = 0; l < h; l++) {
			n->next[l] = preds[l]->next[l];
			preds[l]->next[l] = n;
		}
	}
	pthread_mutex_unlock(&m->mu);
}
static bool
ms_get(void *p, const uint8_t *k, uint8_t *out)
{
	struct ms *m = p;
	pthread_mutex_lock(&m->mu);
	struct ms_node *n = ms_find(m, k, NULL);
	bool ok = n && memcmp(n->key, k, KLEN) == 0;
	if (ok)
		memcpy(out, n->val, VLEN);
	pthread_mutex_unlock(&m->mu);
	return ok;
}
static size_t
ms_scan(void *p, const uint8_t *k, size_t n)
{
	struct ms *m = p;
	uint64_t sink = 0;
	size_t i = 0;
	pthread_mutex_lock(&m->mu);
	for (struct ms_node *x = ms_find(m, k, NULL); x && i < n; x = x->next[0], i++)
		sink += x->val[0];
	pthread_mutex_unlock(&m->mu);
	return i + (sink & 0);
}

/* hash_ceiling: open addressing, linear probing, keys and value pointers
 * inline; sized once for n keys at load 1/2.  Inserts take a mutex (it is a
 * ceiling for reads, not a concurrent writer design). */
struct hc_slot {
	uint8_t key[KLEN];
	uint8_t *val;
	uint64_t used;
};
struct hc {
	pthread_mutex_t mu;
	size_t mask;
	struct hc_slot *slots;
};
static uint64_t
hc_hash(const uint8_t *k)
{
	uint64_t a, b;
	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	return bench_mix64(a ^ bench_mix64(b));
}
static void *
hc_create(void)
{
	struct hc *h = calloc(1, sizeof(*h));
	size_t cap = 16;
	while (cap < 2 * n_keys)
		cap <<= 1;
	h->mask = cap - 1;
	h->slots = calloc(cap, sizeof(struct hc_slot));
	pthread_mutex_init(&h->mu, NULL);
	return h;
}
static void
hc_destroy(void *p)
{
	struct hc *h = p;
	for (size_t i = 0; i <= h->mask; i++)
		free(h->slots[i].val);
	free(h->slots);
	free(h);
}
static void
hc_put(void *p, const uint8_t *k, const uint8_t *v)
{
	struct hc *h = p;
	pthread_mutex_lock(&h->mu);
	for (size_t i = hc_hash(k) & h->mask;; i = (i + 1) & h->mask) {
		struct hc_slot *s = &h->slots[i];
		if (!s->used) {
			memcpy(s->key, k, KLEN);
			s->val = malloc(VLEN);
			s->used = 1;
		} else if (memcmp(s->key, k, KLEN) != 0) {
			continue;
		}
		memcpy(s->val, v, VLEN);
		break;
	}
	pthread_mutex_unlock(&h->mu);
}
static bool
hc_get(void *p, const uint8_t *k, uint8_t *out)
{
	struct hc *h = p;
	for (size_t i = hc_hash(k) & h->mask;; i = (i + 1) & h->mask) {
		struct hc_slot *s = &h->slots[i];
		if (!s->used)
			return false;
		if (memcmp(s->key, k, KLEN) == 0) {
			memcpy(out, s->val, VLEN);
			return true;
		}
	}
}

static const struct sys systems[] = {
	{"mantis", m_create, m_destroy, m_put, m_get, m_scan},
	{"mutex_sl", ms_create, ms_destroy, ms_put, ms_get, ms_scan},
	{"hash_ceiling", hc_create, hc_destroy, hc_put, hc_get, NULL},
};

/* ------------------------------------------------------------------------ */
/* Runner                                                                   */
/* ------------------------------------------------------------------------ */

enum row { SEQ_INSERT, RAND_INSERT, GET_HIT, GET_MISS, SCAN100, SCAN_ALL, MIXED };
static const char *row_names[] = {"seq_insert", "rand_insert", "get_hit", "get_miss",
				  "scan100", "scan_all", "mixed_90_10"};

struct job {
	const struct sys *s;
	void *map;
	enum row row;
	int t, nt;
	pthread_barrier_t *bar;
	uint64_t found;
	double t0, t1; /* this thread's own start and end */
};

static void *
job_main(void *arg)
{
	struct job *j = arg;
	size_t lo = n_keys * (size_t)j->t / (size_t)j->nt;
	size_t hi = n_keys * (size_t)(j->t + 1) / (size_t)j->nt;
	uint8_t k[KLEN], out[VLEN];
	uint64_t rng = bench_mix64((uint64_t)j->t + 1000), found = 0;
	pthread_barrier_wait(j->bar);
	j->t0 = bench_now_s();
	switch (j->row) {
	case SEQ_INSERT:
		for (size_t i = lo; i < hi; i++) {
			bench_hex_key(k, 2 * i);
			j->s->put(j->map, k, value);
		}
		break;
	case RAND_INSERT:
		for (size_t i = lo; i < hi; i++) {
			bench_hex_key(k, 2 * perm[i]);
			j->s->put(j->map, k, value);
		}
		break;
	case GET_HIT:
	case GET_MISS:
		for (size_t i = lo; i < hi; i++) {
			rng = bench_mix64(rng);
			bench_hex_key(k, 2 * (rng % n_keys) + (j->row != GET_HIT));
			found += j->s->get(j->map, k, out);
		}
		break;
	case SCAN100:
		for (size_t i = lo; i < hi; i += 100) {
			rng = bench_mix64(rng);
			bench_hex_key(k, 2 * (rng % n_keys));
			found += j->s->scan(j->map, k, 100);
		}
		break;
	case SCAN_ALL:
		bench_hex_key(k, 2 * lo);
		found += j->s->scan(j->map, k, hi - lo);
		break;
	case MIXED:
		for (size_t i = lo; i < hi; i++) {
			rng = bench_mix64(rng);
			bench_hex_key(k, 2 * (rng % n_keys));
			if ((rng >> 40) % 10 == 0)
				j->s->put(j->map, k, value);
			else
				found += j->s->get(j->map, k, out);
		}
		break;
	}
	j->t1 = bench_now_s();
	j->found = found;
	return NULL;
}

static void
run_row(const struct sys *s, void *map, enum row row, int nt)
{
	pthread_t th[64];
	struct job jobs[64];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
	for (int t = 0; t < nt; t++) {
		jobs[t] = (struct job){s, map, row, t, nt, &bar, 0, 0, 0};
		pthread_create(&th[t], NULL, job_main, &jobs[t]);
	}
	pthread_barrier_wait(&bar);
	/* Elapsed = first worker start to last worker end, timed by the
	 * workers: on a busy machine the main thread may be descheduled at
	 * the barrier and would otherwise miss part of the run. */
	uint64_t found = 0;
	double t0 = 0, t1 = 0;
	for (int t = 0; t < nt; t++) {
		pthread_join(th[t], NULL);
		found += jobs[t].found;
		if (t == 0 || jobs[t].t0 < t0)
			t0 = jobs[t].t0;
		if (jobs[t].t1 > t1)
			t1 = jobs[t].t1;
	}
	double el = t1 - t0;
	pthread_barrier_destroy(&bar);
	size_t ops = row == SCAN100 ? n_keys / 100 : n_keys;
	/* Sanity (not timing): hits must hit, misses must miss. */
	if (((row == GET_HIT || row == SCAN_ALL) && found != n_keys) || (row == GET_MISS && found != 0))
		fprintf(stderr, "bench_skiplist: %s %s found %llu of %zu\n", s->name,
			row_names[row], (unsigned long long)found, n_keys);
	printf("%-12s %-13s %d %10.1f %10.2f\n", row_names[row], s->name, nt,
	       el * 1e9 * nt / (double)ops, (double)ops / el / 1e6);
	fflush(stdout);
}

static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
run_system(const struct sys *s)
{
	long rss0 = rss_kb();
	long peak = 0;
	for (int nt = 1; nt <= max_threads; nt++) {
		void *m = s->create();
		run_row(s, m, SEQ_INSERT, nt);
		s->destroy(m);
		m = s->create();
		run_row(s, m, RAND_INSERT, nt);
		long r = rss_kb();
		if (r > peak)
			peak = r;
		run_row(s, m, GET_HIT, nt);
		run_row(s, m, GET_MISS, nt);
		if (s->scan) {
			run_row(s, m, SCAN100, nt);
			run_row(s, m, SCAN_ALL, nt);
		}
		if (s != &systems[2])
			run_row(s, m, MIXED, nt);
		s->destroy(m);
	}
	printf("%-12s %-13s - %10.1f bytes/key (RSS of a full map)\n", "rss_per_key", s->name,
	       (double)(peak - rss0) * 1024.0 / (double)n_keys);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		n_keys = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		max_threads = atoi(argv[2]);
	const char *only = argc > 3 ? argv[3] : NULL;
	if (n_keys < 1000 || max_threads < 1 || max_threads > 64) {
		fprintf(stderr, "usage: bench_skiplist [N_KEYS>=1000 [MAX_THREADS 1..64]]\n");
		return 2;
	}
	memset(value, 'v', sizeof(value));
	perm = bench_perm(n_keys, 42);
	printf("# bench_skiplist: %zu keys, %d-byte keys, %d-byte values\n", n_keys, KLEN, VLEN);
	printf("# row          system       threads ns/op   Mops/s\n");
	fflush(stdout);
	for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
		if (only != NULL && strcmp(only, systems[i].name) != 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			run_system(&systems[i]);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
	}
	free(perm);
	return 0;
}
