/*
 * bench_codec.c -- throughput of the record codec and of CRC32C.
 *
 *   bench_codec [MiB]     (or MANTIS_BENCH_MB=...; default 256)
 *
 * Each case processes about MiB mebibytes of encoded records (or checksummed
 * bytes) and prints records/s and GB/s (10^9 bytes of encoded record per
 * second, header and padding included).  Cases:
 *   encode   one record at a time into a reused buffer (the WAL append path)
 *   decode   iterate a 4 MiB region of concatenated records (the replay and
 *            scan path): header check + CRC of every byte + pointers
 *   crc32c   hardware (SSE4.2) vs software (slicing-by-8) on 4 KiB / 1 MiB
 * Keys are 16 bytes; values 100 bytes and 4 KiB.  Not a test: no pass/fail.
 */
#include <mantis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile uint64_t sink; /* keeps results observable to the compiler */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
row(const char *what, double secs, uint64_t items, uint64_t bytes, const char *unit)
{
	printf("%-30s %14.0f %s/s %8.2f GB/s   (%llu %s in %.3f s)\n", what,
	       (double)items / secs, unit, (double)bytes / secs / 1e9,
	       (unsigned long long)items, unit, secs);
}

static int
bench_record(size_t vlen, uint64_t budget)
{
	uint8_t key[16], *val = malloc(vlen);
	if (val == NULL)
		return -1;
	memset(key, 'k', sizeof key);
	for (size_t i = 0; i < vlen; i++)
		val[i] = (uint8_t)i;
	mantis_record r = {.type = MANTIS_REC_PUT, .key = key, .key_len = 16,
			   .value = val, .value_len = (uint32_t)vlen};
	size_t size;
	if (mantis_codec_size(MANTIS_REC_PUT, 16, vlen, &size) != MANTIS_OK)
		return -1;
	uint64_t n = budget / size + 1;

	/* encode */
	uint8_t *one = malloc(size);
	if (one == NULL)
		return -1;
	size_t w;
	double t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		r.seq = i; /* a different record every time, as in a log */
		if (mantis_codec_encode(one, size, &r, &w) != MANTIS_OK)
			return -1;
		sink += one[0];
	}
	double t = now_s() - t0;
	char label[64];
	snprintf(label, sizeof label, "encode  key 16 B, value %zu B", vlen);
	row(label, t, n, n * size, "rec");

	/* decode: iterate a region that stays in L2/L3 */
	size_t per = (4u << 20) / size;
	if (per == 0)
		per = 1;
	uint8_t *log = malloc(per * size);
	if (log == NULL)
		return -1;
	for (size_t i = 0; i < per; i++) {
		r.seq = i;
		if (mantis_codec_encode(log + i * size, size, &r, &w) != MANTIS_OK)
			return -1;
	}
	uint64_t passes = n / per + 1, recs = 0;
	t0 = now_s();
	for (uint64_t p = 0; p < passes; p++) {
		mantis_codec_iter it;
		mantis_record d;
		mantis_codec_iter_init(&it, log, per * size);
		while (mantis_codec_iter_next(&it, &d) == MANTIS_OK) {
			sink += d.seq;
			recs++;
		}
	}
	t = now_s() - t0;
	if (recs != passes * per)
		return -1;
	snprintf(label, sizeof label, "decode  key 16 B, value %zu B", vlen);
	row(label, t, recs, recs * size, "rec");
	free(log);
	free(one);
	free(val);
	return 0;
}

static void
bench_crc(size_t len, uint64_t budget)
{
	uint8_t *buf = malloc(len);
	if (buf == NULL)
		return;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31);
	uint64_t n = budget / len + 1;
	char label[64];
	for (int hw = 1; hw >= 0; hw--) {
		if (hw && !mantis_crc32c_hw_available()) {
			printf("%-34s (no SSE4.2 on this CPU)\n", "crc32c hw");
			continue;
		}
		uint32_t (*f)(uint32_t, const void *, size_t) =
			hw ? mantis_crc32c_hw : mantis_crc32c_sw;
		/* sw gets 1/4 of the budget: it is several times slower */
		uint64_t m = hw ? n : n / 4 + 1;
		uint32_t c = 0;
		double t0 = now_s();
		for (uint64_t i = 0; i < m; i++)
			c = f(c, buf, len);
		double t = now_s() - t0;
		sink += c;
		snprintf(label, sizeof label, "crc32c %s %7zu B", hw ? "hw" : "sw", len);
		row(label, t, m, m * len, "buf");
	}
	free(buf);
}

int
main(int argc, char **argv)
{
	const char *arg = argc > 1 ? argv[1] : getenv("MANTIS_BENCH_MB");
	long mb = arg ? strtol(arg, NULL, 10) : 256;
	if (mb <= 0) {
		fprintf(stderr, "usage: %s [MiB per case > 0]\n", argv[0]);
		return 2;
	}
	uint64_t budget = (uint64_t)mb << 20;
	printf("bench_codec: %ld MiB per case, crc32c dispatch: %s\n", mb,
	       mantis_crc32c_hw_available() ? "sse4.2" : "software");
	printf("%-30s %18s %13s\n", "case", "ops/s", "throughput");
	if (bench_record(100, budget) || bench_record(4096, budget)) {
		fprintf(stderr, "bench_codec: encode/decode failed\n");
		return 1;
	}
	bench_crc(4096, budget);
	bench_crc(1u << 20, budget);
	return 0;
}
