/*
 * bench_util.h -- what the C benchmarks share: the clock, a 64-bit mixer
 * for their random streams, the key format of the skiplist benchmarks,
 * permutations, medians, and the load-average line every run prints (on a shared
 * machine the load moves the absolute numbers).  Header-only: each
 * benchmark is one translation unit.
 */
#ifndef MANTIS_BENCH_UTIL_H
#define MANTIS_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic seconds. */
static inline double
bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64's finaliser: one step of a benchmark's random stream. */
static inline uint64_t
bench_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The 16-byte key of v: "k" + 15 hex digits, so key order is v's order.
 * The skiplist benchmarks store key 2i for index i and probe 2i+1 for a
 * miss, so an absent key sits between two present ones. */
static inline void
bench_hex_key(uint8_t k[16], uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	k[0] = (uint8_t)'k';
	for (int j = 15; j >= 1; j--) {
		k[j] = (uint8_t)hex[v & 15];
		v >>= 4;
	}
}

/* A random permutation of 0..n-1 from seed (Fisher-Yates); exits on
 * out of memory (a benchmark, not the library). */
static inline uint64_t *
bench_perm(size_t n, uint64_t seed)
{
	uint64_t *perm = malloc((n ? n : 1) * sizeof(*perm));
	if (perm == NULL) {
		fprintf(stderr, "bench: out of memory for a permutation of %zu\n", n);
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		seed = bench_mix64(seed);
		size_t j = seed % i;
		uint64_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
	return perm;
}

/* The first i in [0, n) with cdf[i] >= u (n - 1 if none): the rank a
 * uniform draw u in [0, cdf[n-1]) picks from a cumulative distribution,
 * as the Zipf traces draw theirs. */
static inline size_t
bench_cdf_rank(const double *cdf, size_t n, double u)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline int
bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
static inline double
bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, bench_cmp_dbl);
	return v[n / 2];
}

/* Prints "# loadavg <when>: <the /proc/loadavg line>". */
static inline void
bench_print_loadavg(const char *when)
{
	char buf[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fgets(buf, sizeof buf, f) == NULL)
			strcpy(buf, "?\n");
		fclose(f);
	}
	printf("# loadavg %s: %s%s", when, buf, strchr(buf, '\n') ? "" : "\n");
	fflush(stdout);
}

#endif
