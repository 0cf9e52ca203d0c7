/*
 * seed.h -- private: per-structure random seeds for keyed hashes, and the
 * 64-bit finaliser they and the hashes share.
 *
 * Keys reach the core from the network, and the skiplist's index and the
 * cache probe linearly: with a fixed hash anyone could precompute keys
 * that pile into one probe run.  Each structure therefore draws its own
 * seed when it is created.  No seed or hash is ever persisted.
 */
#ifndef MANTIS_SEED_H
#define MANTIS_SEED_H

#include <stdint.h>

/* MurmurHash3's fmix64: every input bit reaches every output bit. */
static inline uint64_t
mantis_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* A fresh non-zero seed from getrandom(2); if the kernel cannot give one
 * without blocking, a mix of salt's address, the clock and a counter
 * (weaker, but still unknown to a remote client).  Any thread. */
uint64_t mantis_seed_new(const void *salt);

#endif /* MANTIS_SEED_H */
