/*
 * stress_util.h -- what the index stress binaries (stress_skiplist.c,
 * stress_index.c, stress_engine.c, stress_cache.c) share: the THREADS
 * SECONDS command line, a monotonic clock, the wait of a timed phase,
 * a per-thread PRNG and the skiplist's quiescent shape check.
 * Header-only (static inline): each binary is one translation unit.
 */
#ifndef MANTIS_STRESS_UTIL_H
#define MANTIS_STRESS_UTIL_H

#include "skiplist.h" /* sl_check_structure (a test hook) */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Parses "PROG THREADS SECONDS": threads in 1..max_threads, seconds > 0
 * (fractions allowed).  On bad arguments prints the usage and returns 0;
 * the caller exits 2. */
static inline int
stress_args(int argc, char **argv, int max_threads, int *threads, double *secs)
{
	if (argc == 3) {
		*threads = atoi(argv[1]);
		*secs = atof(argv[2]);
		if (*threads >= 1 && *threads <= max_threads && *secs > 0)
			return 1;
	}
	fprintf(stderr, "usage: %s THREADS SECONDS (threads 1..%d, seconds > 0)\n",
		argc > 0 ? argv[0] : "stress", max_threads);
	return 0;
}

static inline double
stress_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Lets a phase's threads run for secs, then raises *stop (release: what
 * the caller wrote before is visible to threads that see it). */
static inline void
stress_run_for(double secs, int *stop)
{
	double end = stress_now_s() + secs;
	while (stress_now_s() < end) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(stop, 1, __ATOMIC_RELEASE);
}

/*
 * Checks sl's shape while no thread runs on it (after a phase's threads
 * joined): exits 1 naming prog, when and the first violation.  A splice
 * that loses a node from an upper level passes every read-side check
 * (reads still reach the node through level 0) and shows only later, as
 * a walk into a node retired meanwhile, so the shape is checked directly.
 */
static inline void
stress_check_shape(const mantis_skiplist *sl, const char *prog, const char *when)
{
	const char *what;
	size_t bad = sl_check_structure(sl, &what);
	if (bad != 0) {
		fprintf(stderr, "%s: %s: %zu structure violations, first: %s\n", prog, when, bad, what);
		exit(1);
	}
}

/* xorshift64; *s must start non-zero. */
static inline uint64_t
stress_xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif /* MANTIS_STRESS_UTIL_H */
