/*
 * bench_apply.c -- mantis_db_apply with small batches of random-key puts
 * into a large db, the shape of a pipelined Redis SET/MSET run (issue 18):
 * each key's index probe is a miss at a random address.  Loads `keys`
 * 16-byte keys (100-byte values), then applies pre-encoded batches of
 * `batch` puts of keys drawn uniformly from the loaded ones (updates), in
 * `rounds` timed rounds of `ops` keys each, and prints the median ns per
 * key.  Usage: bench_apply [keys [batch [ops [rounds [verified [insert]]]]]];
 * defaults 1000000 16 2000000 3 0 0.  verified 1 times
 * mantis_db_apply_verified (the cgo path: no CRC check) instead of
 * mantis_db_apply.  insert 1 times inserts instead: the loaded keys are
 * the even ones, and each round's batches put `ops` odd keys never put
 * before, in a random order (each lands between two loaded keys, as a
 * Redis SET of a new random key does; needs rounds x ops <= keys).
 */
#include "bench_util.h"

#include <mantis.h>

#define VLEN 100
/* Keys in the pre-encoded batches, cycled: far more than the caches hold,
 * whatever the batch size, so each key's lines are cold. */
#define POOL_KEYS (1u << 18)

static void
die(const char *what, mantis_status st)
{
	fprintf(stderr, "bench_apply: %s: %s\n", what, mantis_strerror(st));
	exit(1);
}

/* Encodes a batch of n puts of keys[0..n) into buf; returns its size. */
static size_t
encode_batch(uint8_t *buf, size_t cap, const uint64_t *keys, size_t n, const uint8_t *val)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t k[16];
		bench_hex_key(k, keys[i]);
		mantis_record rec = {.type = MANTIS_REC_PUT, .key = k, .key_len = 16,
				     .value = val, .value_len = VLEN};
		size_t w;
		mantis_status st = mantis_codec_encode(buf + off, cap - off, &rec, &w);
		if (st != MANTIS_OK)
			die("encode", st);
		off += w;
	}
	return off;
}

/* Times rounds of ops inserts of odd keys (insert mode, see the top). */
static int
bench_inserts(mantis_db *db, size_t bsz, size_t ops, size_t rounds, bool verified,
	      mantis_status (*apply)(mantis_db *, const void *, size_t, size_t *),
	      const uint8_t *val, size_t rec_max)
{
	/* Odd keys 2j+1, j a random permutation of [0, rounds*ops): each
	 * round's keys are new and spread over the whole loaded range. */
	uint64_t *perm = bench_perm(rounds * ops, 99);
	size_t bcap = bsz * rec_max;
	size_t nb = (ops + bsz - 1) / bsz;
	uint8_t *pool = malloc(nb * bcap);
	size_t *plen = malloc(nb * sizeof(*plen));
	uint64_t *keys = malloc(bsz * sizeof(*keys));
	if (pool == NULL || plen == NULL || keys == NULL)
		die("malloc", MANTIS_NOMEM);
	double ns[64];
	for (size_t r = 0; r < rounds; r++) {
		/* This round's batches, encoded before the clock starts. */
		for (size_t b = 0; b < nb; b++) {
			size_t n = ops - b * bsz < bsz ? ops - b * bsz : bsz;
			for (size_t i = 0; i < n; i++)
				keys[i] = 2 * perm[r * ops + b * bsz + i] + 1;
			plen[b] = encode_batch(pool + b * bcap, bcap, keys, n, val);
		}
		double t0 = bench_now_s();
		for (size_t b = 0; b < nb; b++) {
			mantis_status st = apply(db, pool + b * bcap, plen[b], NULL);
			if (st != MANTIS_OK)
				die("apply", st);
		}
		ns[r] = (bench_now_s() - t0) * 1e9 / (double)ops;
		printf("round %zu: %.1f ns/key\n", r, ns[r]);
	}
	printf("apply%s insert batch=%zu: median %.1f ns/key\n", verified ? "_verified" : "",
	       bsz, bench_median(ns, rounds));
	bench_print_loadavg("end");
	mantis_db_close(db);
	free(perm);
	free(pool);
	free(plen);
	free(keys);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t nkeys = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	size_t bsz = argc > 2 ? strtoull(argv[2], NULL, 10) : 16;
	size_t ops = argc > 3 ? strtoull(argv[3], NULL, 10) : 2000000;
	size_t rounds = argc > 4 ? strtoull(argv[4], NULL, 10) : 3;
	bool verified = argc > 5 && strtoull(argv[5], NULL, 10) != 0;
	bool insert = argc > 6 && strtoull(argv[6], NULL, 10) != 0;
	mantis_status (*apply)(mantis_db *, const void *, size_t, size_t *) =
		verified ? mantis_db_apply_verified : mantis_db_apply;
	if (nkeys == 0 || bsz == 0 || bsz > 1000 || rounds == 0 || rounds > 64 ||
	    (insert && (ops == 0 || ops > nkeys / rounds))) {
		fprintf(stderr, "usage: bench_apply [keys [batch(1..1000) [ops [rounds(1..64) "
				"[verified(0|1) [insert(0|1): rounds*ops <= keys]]]]]]\n");
		return 2;
	}
	bench_print_loadavg("start");
	uint8_t val[VLEN];
	memset(val, 'v', sizeof val);
	size_t rec_max;
	mantis_status st = mantis_codec_size(MANTIS_REC_PUT, 16, VLEN, &rec_max);
	if (st != MANTIS_OK)
		die("size", st);

	mantis_db *db;
	if ((st = mantis_db_open(NULL, &db)) != MANTIS_OK)
		die("open", st);
	/* Load in batches of 1000, in a random order. */
	uint64_t *perm = bench_perm(nkeys, 42);
	size_t lcap = 1000 * rec_max;
	uint8_t *lbuf = malloc(lcap);
	uint64_t *keys = malloc(1000 * sizeof(*keys));
	if (lbuf == NULL || keys == NULL)
		die("malloc", MANTIS_NOMEM);
	for (size_t i = 0; i < nkeys; i += 1000) {
		size_t n = nkeys - i < 1000 ? nkeys - i : 1000;
		if (insert)
			for (size_t j = 0; j < n; j++)
				keys[j] = 2 * perm[i + j];
		size_t len = encode_batch(lbuf, lcap, insert ? keys : perm + i, n, val);
		if ((st = mantis_db_apply(db, lbuf, len, NULL)) != MANTIS_OK)
			die("load", st);
	}
	free(perm);
	if (insert) {
		free(lbuf);
		free(keys);
		return bench_inserts(db, bsz, ops, rounds, verified, apply, val, rec_max);
	}

	/* The pool of timed batches: random keys among the loaded ones. */
	size_t bcap = bsz * rec_max;
	size_t npool = POOL_KEYS / bsz;
	uint8_t *pool = malloc(npool * bcap);
	size_t *plen = malloc(npool * sizeof(*plen));
	if (pool == NULL || plen == NULL)
		die("malloc", MANTIS_NOMEM);
	uint64_t rng = 7;
	for (size_t b = 0; b < npool; b++) {
		for (size_t i = 0; i < bsz; i++) {
			rng = bench_mix64(rng);
			keys[i] = rng % nkeys;
		}
		plen[b] = encode_batch(pool + b * bcap, bcap, keys, bsz, val);
	}

	double ns[64];
	size_t nb = ops / bsz ? ops / bsz : 1;
	for (size_t r = 0; r < rounds; r++) {
		double t0 = bench_now_s();
		for (size_t b = 0; b < nb; b++) {
			size_t p = b % npool;
			if ((st = apply(db, pool + p * bcap, plen[p], NULL)) != MANTIS_OK)
				die("apply", st);
		}
		ns[r] = (bench_now_s() - t0) * 1e9 / (double)(nb * bsz);
		printf("round %zu: %.1f ns/key\n", r, ns[r]);
	}
	printf("apply%s keys=%zu batch=%zu: median %.1f ns/key\n", verified ? "_verified" : "",
	       nkeys, bsz, bench_median(ns, rounds));
	bench_print_loadavg("end");
	mantis_db_close(db);
	free(pool);
	free(plen);
	free(lbuf);
	free(keys);
	return 0;
}
