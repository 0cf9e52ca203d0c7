/*
 * seed.c -- mantis_seed_new (seed.h).
 */
#include "seed.h"

#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

uint64_t
mantis_seed_new(const void *salt)
{
	uint64_t s = 0;
	/* GRND_NONBLOCK: never stall an open on an unseeded early-boot pool. */
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s) && s != 0)
		return s;
	static uint64_t counter;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Relaxed: the counter only makes two calls in one tick differ. */
	uint64_t n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	s = (uint64_t)(uintptr_t)salt ^ ((uint64_t)ts.tv_sec << 32) ^
	    (uint64_t)ts.tv_nsec ^ (n * 0x9e3779b97f4a7c15ULL);
	return mantis_mix64(s) | 1;
}
