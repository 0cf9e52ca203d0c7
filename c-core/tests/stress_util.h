/*
 * stress_util.h -- what the index stress binaries (stress_skiplist.c,
 * stress_index.c) share: a monotonic clock, the wait of a timed phase and
 * a per-thread PRNG.  Header-only (static inline): each binary is one
 * translation unit.
 */
#ifndef MANTIS_STRESS_UTIL_H
#define MANTIS_STRESS_UTIL_H

#include <stdint.h>
#include <time.h>

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
