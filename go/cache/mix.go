// mix.go -- mix64, the 64-bit finaliser of MurmurHash3 that c-core calls
// mantis_mix64 (src/seed.h): the native cache's Go reader repeats the C
// key hash with it (native_read.go), and the benchmarks build the keys and
// traces of c-core/bench/bench_cache.c with it.
package cache

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
