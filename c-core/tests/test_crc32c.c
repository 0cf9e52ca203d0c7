/* test_crc32c.c -- CRC32C: known vectors on both implementations, and the
 * hardware and software paths against each other on random lengths,
 * alignments and chained updates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <mantis.h>

#include <stdlib.h>
#include <string.h>

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Software always; hardware only where the CPU has it. */
static size_t
impls(crc_fn out[3])
{
	size_t n = 0;
	out[n++] = mantis_crc32c_sw;
	out[n++] = mantis_crc32c;
	if (mantis_crc32c_hw_available())
		out[n++] = mantis_crc32c_hw;
	return n;
}

static void
test_known_vectors(void **state)
{
	(void)state;
	uint8_t zeros[32], ones[32], asc[32], desc[32];
	memset(zeros, 0, sizeof zeros);
	memset(ones, 0xFF, sizeof ones);
	for (int i = 0; i < 32; i++) {
		asc[i] = (uint8_t)i;
		desc[i] = (uint8_t)(31 - i);
	}
	crc_fn f[3];
	size_t n = impls(f);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(f[i](0, "123456789", 9), 0xE3069283u);
		/* RFC 3720 (iSCSI) appendix B.4. */
		assert_int_equal(f[i](0, zeros, 32), 0x8A9136AAu);
		assert_int_equal(f[i](0, ones, 32), 0x62A8AB43u);
		assert_int_equal(f[i](0, asc, 32), 0x46DD794Eu);
		assert_int_equal(f[i](0, desc, 32), 0x113FDB5Cu);
		/* Empty input and NULL with len 0 leave the CRC unchanged. */
		assert_int_equal(f[i](0, "", 0), 0);
		assert_int_equal(f[i](0x12345678u, NULL, 0), 0x12345678u);
	}
}

static void
test_hw_reported(void **state)
{
	(void)state;
	/* Informational: make a missing hardware path visible in the log. */
	print_message("crc32c hardware path: %s\n",
		      mantis_crc32c_hw_available() ? "sse4.2" : "unavailable");
}

/* xorshift64*: deterministic test data without libc rand state. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void
test_paths_agree(void **state)
{
	(void)state;
	/* Past two rounds of the hardware path's 3 x 8 KiB interleaved blocks. */
	enum { MAX = 2 * 3 * 8192 + 3 * 256 + 128 };
	/* Lengths at the edges of the interleaved block sizes (3 x 256, 3 x 8192). */
	static const size_t edges[] = {767, 768, 769, 775, 776, 1535, 1536, 24575,
				       24576, 24577, 24576 + 768, 24576 + 768 + 7,
				       2 * 24576, 2 * 24576 + 3 * 256 + 63};
	uint8_t *buf = malloc(MAX);
	assert_non_null(buf);
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < MAX; i++)
		buf[i] = (uint8_t)rnd(&s);
	crc_fn f[3];
	size_t n = impls(f);
	for (int iter = 0; iter < 1000; iter++) {
		size_t off = rnd(&s) % 16; /* every alignment */
		size_t len = iter < 200 ? (size_t)iter : rnd(&s) % (MAX - off);
		if (iter >= 200 && iter < 200 + (int)(sizeof edges / sizeof edges[0]))
			len = edges[iter - 200];
		uint32_t want = mantis_crc32c_sw(0, buf + off, len);
		/* A chained update over a random split equals one pass. */
		size_t cut = len ? rnd(&s) % (len + 1) : 0;
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(f[k](0, buf + off, len), want);
			uint32_t c = f[k](0, buf + off, cut);
			assert_int_equal(f[k](c, buf + off + cut, len - cut), want);
		}
		/* Mixing implementations mid-stream also agrees. */
		uint32_t c = mantis_crc32c_sw(0, buf + off, cut);
		assert_int_equal(mantis_crc32c(c, buf + off + cut, len - cut), want);
	}
	free(buf);
}

/* The table path must match the bit-at-a-time definition. */
static uint32_t
crc_bitwise(const uint8_t *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;
	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

static void
test_matches_definition(void **state)
{
	(void)state;
	uint8_t buf[300];
	uint64_t s = 42;
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rnd(&s);
	for (size_t len = 0; len <= sizeof buf; len++)
		assert_int_equal(mantis_crc32c(0, buf, len), crc_bitwise(buf, len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_hw_reported),
		cmocka_unit_test(test_paths_agree),
		cmocka_unit_test(test_matches_definition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
