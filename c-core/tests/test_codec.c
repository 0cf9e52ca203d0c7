/* test_codec.c -- the record codec against docs/FORMAT.md: hand-built
 * bytes, round trips, every corruption shape (truncation at every offset,
 * every single-bit flip, oversized lengths, unknown type/version, bad
 * padding, field rules), NULLs, misalignment, the iterators, and the shared
 * test vectors in $MANTIS_TESTDATA/codec/vectors.txt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <mantis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* Recomputes hcheck and, when size >= 32, the record CRC over [4, size):
 * lets a test forge a record whose only defect is the one under test. */
static void
fix_checks(uint8_t *rec, size_t size)
{
	uint8_t h[28];
	memcpy(h, rec + 4, 28);
	h[2] = h[3] = 0;
	uint32_t hc = mantis_crc32c(0, h, 28);
	rec[6] = (uint8_t)hc;
	rec[7] = (uint8_t)(hc >> 8);
	put32(rec, mantis_crc32c(0, rec + 4, size - 4));
}

/* A 32-byte header with valid checks; body bytes (if any) follow. */
static void
forge_header(uint8_t *rec, uint8_t type, uint8_t ver, uint32_t klen,
	     uint32_t vlen, uint64_t seq, uint64_t exp)
{
	memset(rec, 0, 32);
	rec[4] = type;
	rec[5] = ver;
	put32(rec + 8, klen);
	put32(rec + 12, vlen);
	put64(rec + 16, seq);
	put64(rec + 24, exp);
}

/* Decodes from an exact-size heap copy so ASan flags any read past len. */
static mantis_status
decode_exact(const uint8_t *bytes, size_t len, mantis_record *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, bytes, len);
	mantis_status st = mantis_codec_decode(copy, len, out);
	free(copy);
	return st; /* out's pointers are dead here: callers check fields only */
}

static size_t
encode_or_die(uint8_t *buf, size_t cap, uint8_t type, uint64_t seq,
	      uint64_t exp, const void *k, uint32_t kl, const void *v, uint32_t vl)
{
	mantis_record r = {.type = type, .seq = seq, .expires_at = exp,
			   .key = k, .key_len = kl, .value = v, .value_len = vl};
	size_t w = 0;
	assert_int_equal(mantis_codec_encode(buf, cap, &r, &w), MANTIS_OK);
	return w;
}

/* The record of test_known_bytes, built by hand from the FORMAT.md table;
 * the checksums were computed with a bitwise CRC32C outside this code. */
static const uint8_t known[40] = {
	0xd7, 0xc4, 0xa7, 0xc5, /* crc 0xC5A7C4D7 over [4, 40)     */
	0x01,			/* type PUT                        */
	0x01,			/* ver 1                           */
	0x8f, 0x45,		/* hcheck 0x458F                   */
	0x02, 0x00, 0x00, 0x00, /* key_len 2                       */
	0x03, 0x00, 0x00, 0x00, /* value_len 3                     */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* seq        */
	0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* expires_at */
	'k', '1',		/* key                             */
	'a', 'b', 'c',		/* value                           */
	0x00, 0x00, 0x00,	/* pad 37 -> 40                    */
};

/* ------------------------------------------------------------------------ */
/* Format                                                                   */
/* ------------------------------------------------------------------------ */

static void
test_known_bytes(void **state)
{
	(void)state;
	mantis_record r;
	assert_int_equal(mantis_codec_decode(known, sizeof known, &r), MANTIS_OK);
	assert_int_equal(r.type, MANTIS_REC_PUT);
	assert_int_equal(r.seq, 0x0102030405060708ull);
	assert_int_equal(r.expires_at, 0x1122334455667788ull);
	assert_int_equal(r.key_len, 2);
	assert_int_equal(r.value_len, 3);
	assert_ptr_equal(r.key, known + 32); /* a view, not a copy */
	assert_ptr_equal(r.value, known + 34);
	assert_int_equal(r.size, 40);

	uint8_t out[48];
	memset(out, 0xEE, sizeof out);
	size_t w = encode_or_die(out, sizeof out, MANTIS_REC_PUT,
				 0x0102030405060708ull, 0x1122334455667788ull,
				 "k1", 2, "abc", 3);
	assert_int_equal(w, 40);
	assert_memory_equal(out, known, 40);
	assert_int_equal(out[40], 0xEE); /* nothing written past size */

	/* Trailing bytes after a record are not part of it. */
	uint8_t more[64];
	memcpy(more, known, 40);
	memset(more + 40, 0x5A, 24);
	assert_int_equal(mantis_codec_decode(more, sizeof more, &r), MANTIS_OK);
	assert_int_equal(r.size, 40);
}

static void
test_size(void **state)
{
	(void)state;
	size_t n = 0;
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 0, 0, &n), MANTIS_OK);
	assert_int_equal(n, 32);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 1, 0, &n), MANTIS_OK);
	assert_int_equal(n, 40);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 4, 4, &n), MANTIS_OK);
	assert_int_equal(n, 40);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, MANTIS_MAX_KEY_SIZE,
					   MANTIS_MAX_VALUE_SIZE, &n), MANTIS_OK);
	assert_int_equal(n, 32 + (size_t)MANTIS_MAX_KEY_SIZE + MANTIS_MAX_VALUE_SIZE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_BATCH, 0, MANTIS_MAX_BATCH_SIZE, &n),
			 MANTIS_OK);
	assert_int_equal(mantis_codec_size(MANTIS_REC_META, 3, MANTIS_MAX_META_SIZE, &n),
			 MANTIS_OK);
	assert_int_equal(n, 32 + 8 + (size_t)MANTIS_MAX_META_SIZE);

	n = 12345; /* untouched on every failure */
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, MANTIS_MAX_KEY_SIZE + 1, 0, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 0, MANTIS_MAX_VALUE_SIZE + 1, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_DELETE, 0, MANTIS_MAX_VALUE_SIZE + 1, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_BATCH, 0, MANTIS_MAX_BATCH_SIZE + 1, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_META, 0, MANTIS_MAX_META_SIZE + 1, &n),
			 MANTIS_TOO_LARGE);
	/* Lengths that would overflow the sum are rejected, not wrapped. */
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, SIZE_MAX, SIZE_MAX, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 1, SIZE_MAX - 30, &n),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_codec_size(0, 0, 0, &n), MANTIS_UNSUPPORTED);
	assert_int_equal(mantis_codec_size(5, 0, 0, &n), MANTIS_UNSUPPORTED);
	assert_int_equal(n, 12345);
	assert_int_equal(mantis_codec_size(MANTIS_REC_PUT, 0, 0, NULL), MANTIS_INVALID);
}

static void
test_roundtrip(void **state)
{
	(void)state;
	size_t cap = 32 + MANTIS_MAX_KEY_SIZE + MANTIS_MAX_META_SIZE + 8;
	uint8_t *buf = malloc(cap);
	/* values start at data + 3 (an odd source address), hence the slack */
	size_t dlen = (size_t)MANTIS_MAX_META_SIZE + 8;
	uint8_t *data = malloc(dlen);
	assert_non_null(buf);
	assert_non_null(data);
	for (size_t i = 0; i < dlen; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	static const struct {
		uint8_t type;
		uint32_t kl, vl;
		uint64_t seq, exp;
	} cases[] = {
		{MANTIS_REC_PUT, 0, 0, 0, 0},
		{MANTIS_REC_PUT, 1, 0, 1, 0},
		{MANTIS_REC_PUT, 16, 100, UINT64_MAX, UINT64_MAX},
		{MANTIS_REC_PUT, 7, 1, 42, 1},
		{MANTIS_REC_PUT, MANTIS_MAX_KEY_SIZE, 4096, 9, 0},
		{MANTIS_REC_DELETE, 16, 0, 77, 0},
		{MANTIS_REC_DELETE, MANTIS_MAX_KEY_SIZE, 0, 3, 0},
		{MANTIS_REC_META, 12, 24, 0, 0},
		{MANTIS_REC_META, MANTIS_MAX_KEY_SIZE, MANTIS_MAX_META_SIZE, 0, 5},
		{MANTIS_REC_BATCH, 0, 0, 5, 0}, /* empty batch: payload is opaque here */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (uint32_t extra = 0; extra < 8; extra++) { /* every padding length */
			uint32_t kl = cases[c].kl, vl = cases[c].vl;
			if (cases[c].type == MANTIS_REC_PUT && vl + extra <= MANTIS_MAX_VALUE_SIZE)
				vl += extra;
			else if (extra)
				continue;
			size_t w = encode_or_die(buf, cap, cases[c].type, cases[c].seq,
						 cases[c].exp, data, kl, data + 3, vl);
			size_t want;
			assert_int_equal(mantis_codec_size(cases[c].type, kl, vl, &want), MANTIS_OK);
			assert_int_equal(w, want);
			assert_int_equal(w % 8, 0);
			mantis_record r;
			assert_int_equal(mantis_codec_decode(buf, w, &r), MANTIS_OK);
			assert_int_equal(r.type, cases[c].type);
			assert_int_equal(r.seq, cases[c].seq);
			assert_int_equal(r.expires_at, cases[c].exp);
			assert_int_equal(r.key_len, kl);
			assert_int_equal(r.value_len, vl);
			assert_int_equal(r.size, w);
			assert_memory_equal(r.key, data, kl);
			assert_memory_equal(r.value, data + 3, vl);
			for (size_t i = 32 + (size_t)kl + vl; i < w; i++)
				assert_int_equal(buf[i], 0);
		}
	}
	free(buf);
	free(data);
}

static void
test_encode_buffer_too_small(void **state)
{
	(void)state;
	uint8_t buf[64];
	mantis_record r = {.type = MANTIS_REC_PUT, .seq = 1, .key = (const uint8_t *)"key",
			   .key_len = 3, .value = (const uint8_t *)"value", .value_len = 5};
	for (size_t cap = 0; cap < 40; cap++) {
		memset(buf, 0xA5, sizeof buf);
		size_t w = 0;
		assert_int_equal(mantis_codec_encode(buf, cap, &r, &w), MANTIS_BUFFER_TOO_SMALL);
		assert_int_equal(w, 40);
		for (size_t i = 0; i < sizeof buf; i++)
			assert_int_equal(buf[i], 0xA5);
	}
	size_t w = 0;
	assert_int_equal(mantis_codec_encode(NULL, 0, &r, &w), MANTIS_BUFFER_TOO_SMALL);
	assert_int_equal(w, 40); /* size query */
	assert_int_equal(mantis_codec_encode(buf, 40, &r, &w), MANTIS_OK);
}

static void
test_encode_validates(void **state)
{
	(void)state;
	uint8_t buf[128];
	size_t w = 999;
	mantis_record r = {.type = MANTIS_REC_PUT, .key = buf, .key_len = 1};
	r.type = 0;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_UNSUPPORTED);
	r.type = 5;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_UNSUPPORTED);
	r.type = MANTIS_REC_PUT;
	r.key_len = MANTIS_MAX_KEY_SIZE + 1;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_TOO_LARGE);
	r.key_len = 1;
	r.value = buf;
	r.value_len = MANTIS_MAX_VALUE_SIZE + 1;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_TOO_LARGE);
	r.type = MANTIS_REC_META;
	r.value_len = MANTIS_MAX_META_SIZE + 1;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_TOO_LARGE);
	r.type = MANTIS_REC_BATCH;
	r.key_len = 0;
	r.value_len = MANTIS_MAX_BATCH_SIZE + 1;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_TOO_LARGE);
	assert_int_equal(w, 999); /* untouched */

	/* Field rules: a record decode would call corrupt is a bad argument. */
	mantis_record del = {.type = MANTIS_REC_DELETE, .key = buf, .key_len = 1,
			     .value = buf, .value_len = 1};
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &del, &w), MANTIS_INVALID);
	del.value_len = 0;
	del.expires_at = 5;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &del, &w), MANTIS_INVALID);
	mantis_record bat = {.type = MANTIS_REC_BATCH, .key = buf, .key_len = 1};
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &bat, &w), MANTIS_INVALID);
	bat.key_len = 0;
	bat.expires_at = 1;
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &bat, &w), MANTIS_INVALID);
	assert_int_equal(w, 999);
}

static void
test_null_pointers(void **state)
{
	(void)state;
	mantis_record r = {.type = MANTIS_REC_PUT};
	uint8_t buf[64];
	size_t w;
	assert_int_equal(mantis_codec_decode(NULL, 40, &r), MANTIS_INVALID);
	assert_int_equal(mantis_codec_decode(NULL, 0, &r), MANTIS_INVALID);
	assert_int_equal(mantis_codec_decode(known, sizeof known, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, NULL, &w), MANTIS_INVALID);
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_codec_encode(NULL, 64, &r, &w), MANTIS_INVALID);
	r.key_len = 1; /* key NULL */
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_INVALID);
	r.key_len = 0;
	r.value_len = 1; /* value NULL */
	assert_int_equal(mantis_codec_encode(buf, sizeof buf, &r, &w), MANTIS_INVALID);

	mantis_codec_iter it;
	mantis_codec_iter_init(NULL, known, sizeof known); /* harmless */
	assert_int_equal(mantis_codec_iter_next(NULL, &r), MANTIS_INVALID);
	mantis_codec_iter_init(&it, known, sizeof known);
	assert_int_equal(mantis_codec_iter_next(&it, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_codec_batch_iter_next(&it, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_codec_batch_iter_next(NULL, &r), MANTIS_INVALID);
	assert_int_equal(it.offset, 0);
	mantis_codec_iter_init(&it, NULL, 100); /* treated as empty */
	assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_END);
}

/* ------------------------------------------------------------------------ */
/* Corruption shapes                                                        */
/* ------------------------------------------------------------------------ */

static void
test_zero_length_and_short(void **state)
{
	(void)state;
	mantis_record r;
	memset(&r, 0x77, sizeof r);
	mantis_record before = r;
	uint8_t b = 0;
	assert_int_equal(mantis_codec_decode(&b, 0, &r), MANTIS_TRUNCATED);
	assert_memory_equal(&r, &before, sizeof r); /* *out untouched */
	mantis_codec_iter it;
	mantis_codec_iter_init(&it, &b, 0);
	assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_END);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_END);
}

/* Records covering every type and padding shape, for the exhaustive loops. */
static size_t
sample_records(uint8_t *buf, size_t cap, size_t offs[8])
{
	size_t n = 0, at = 0;
	uint8_t nested[200];
	size_t nl = encode_or_die(nested, sizeof nested, MANTIS_REC_PUT, 11, 0, "a", 1, "xyz", 3);
	nl += encode_or_die(nested + nl, sizeof nested - nl, MANTIS_REC_DELETE, 12, 0, "b", 1, NULL, 0);
	offs[n++] = at;
	memcpy(buf, known, sizeof known);
	at += sizeof known;
	offs[n++] = at;
	at += encode_or_die(buf + at, cap - at, MANTIS_REC_DELETE, 99, 0, "gone", 4, NULL, 0);
	offs[n++] = at;
	at += encode_or_die(buf + at, cap - at, MANTIS_REC_BATCH, 11, 0, NULL, 0, nested, (uint32_t)nl);
	offs[n++] = at;
	at += encode_or_die(buf + at, cap - at, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12,
			    "0123456789abcdef01234567", 24);
	offs[n++] = at;
	at += encode_or_die(buf + at, cap - at, MANTIS_REC_PUT, 0, 0, NULL, 0, NULL, 0);
	offs[n] = at;
	return n;
}

static void
test_truncation_every_offset(void **state)
{
	(void)state;
	uint8_t buf[1024];
	size_t offs[8];
	size_t n = sample_records(buf, sizeof buf, offs);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *rec = buf + offs[i];
		size_t size = offs[i + 1] - offs[i];
		mantis_record r;
		assert_int_equal(decode_exact(rec, size, &r), MANTIS_OK);
		for (size_t len = 0; len < size; len++)
			assert_int_equal(decode_exact(rec, len, &r), MANTIS_TRUNCATED);
	}
}

static void
test_every_bit_flip(void **state)
{
	(void)state;
	uint8_t buf[1024], rec[512];
	size_t offs[8];
	size_t n = sample_records(buf, sizeof buf, offs);
	for (size_t i = 0; i < n; i++) {
		size_t size = offs[i + 1] - offs[i];
		for (size_t bit = 0; bit < size * 8; bit++) {
			memcpy(rec, buf + offs[i], size);
			rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			mantis_record r;
			memset(&r, 0, sizeof r);
			mantis_status st = decode_exact(rec, size, &r);
			/*
			 * Every flip hits a byte covered by hcheck (header) or
			 * the crc (everything else), so the specific answer is
			 * CORRUPT; the contract users rely on is "never OK".
			 */
			assert_int_not_equal(st, MANTIS_OK);
			assert_int_equal(st, MANTIS_CORRUPT);
			assert_int_equal(r.size, 0); /* *out untouched */
		}
	}
}

static void
test_lengths_over_buffer_or_limits(void **state)
{
	(void)state;
	uint8_t h[32];
	mantis_record r;
	static const struct {
		uint8_t type;
		uint32_t kl, vl;
		mantis_status want;
	} cases[] = {
		/* over a limit: TOO_LARGE even though the buffer is short too */
		{MANTIS_REC_PUT, UINT32_MAX, 0, MANTIS_TOO_LARGE},
		{MANTIS_REC_PUT, 0, UINT32_MAX, MANTIS_TOO_LARGE},
		{MANTIS_REC_PUT, UINT32_MAX, UINT32_MAX, MANTIS_TOO_LARGE},
		{MANTIS_REC_PUT, MANTIS_MAX_KEY_SIZE + 1, 0, MANTIS_TOO_LARGE},
		{MANTIS_REC_PUT, 0, MANTIS_MAX_VALUE_SIZE + 1, MANTIS_TOO_LARGE},
		{MANTIS_REC_DELETE, MANTIS_MAX_KEY_SIZE + 1, 0, MANTIS_TOO_LARGE},
		{MANTIS_REC_BATCH, 0, MANTIS_MAX_BATCH_SIZE + 1, MANTIS_TOO_LARGE},
		{MANTIS_REC_META, 0, MANTIS_MAX_META_SIZE + 1, MANTIS_TOO_LARGE},
		{MANTIS_REC_META, MANTIS_MAX_KEY_SIZE + 1, 0, MANTIS_TOO_LARGE},
		/* within limits but past the end of the buffer: TRUNCATED */
		{MANTIS_REC_PUT, MANTIS_MAX_KEY_SIZE, MANTIS_MAX_VALUE_SIZE, MANTIS_TRUNCATED},
		{MANTIS_REC_BATCH, 0, MANTIS_MAX_BATCH_SIZE, MANTIS_TRUNCATED},
		{MANTIS_REC_META, 0, MANTIS_MAX_META_SIZE, MANTIS_TRUNCATED},
		{MANTIS_REC_PUT, 0, 1, MANTIS_TRUNCATED},
		/* step 6 before the field rules of step 7 */
		{MANTIS_REC_DELETE, 0, 100, MANTIS_TRUNCATED},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		forge_header(h, cases[c].type, 1, cases[c].kl, cases[c].vl, 1, 0);
		fix_checks(h, 32);
		assert_int_equal(decode_exact(h, 32, &r), cases[c].want);
	}
}

static void
test_unknown_type_and_version(void **state)
{
	(void)state;
	uint8_t rec[40];
	mantis_record r;
	static const uint8_t types[] = {0, 5, 6, 127, 255};
	for (size_t i = 0; i < sizeof types; i++) {
		memcpy(rec, known, sizeof rec);
		rec[4] = types[i];
		fix_checks(rec, sizeof rec);
		assert_int_equal(decode_exact(rec, sizeof rec, &r), MANTIS_UNSUPPORTED);
	}
	static const uint8_t vers[] = {0, 2, 3, 255};
	for (size_t i = 0; i < sizeof vers; i++) {
		memcpy(rec, known, sizeof rec);
		rec[5] = vers[i];
		fix_checks(rec, sizeof rec);
		assert_int_equal(decode_exact(rec, sizeof rec, &r), MANTIS_UNSUPPORTED);
	}
	/* Order: header check first, then version/type, then limits, then size. */
	memcpy(rec, known, sizeof rec);
	rec[5] = 2;
	assert_int_equal(decode_exact(rec, sizeof rec, &r), MANTIS_CORRUPT);
	forge_header(rec, 9, 1, UINT32_MAX, UINT32_MAX, 0, 0);
	fix_checks(rec, 32);
	assert_int_equal(decode_exact(rec, 32, &r), MANTIS_UNSUPPORTED);
	/* An unknown future type may have a body we cannot size: still UNSUPPORTED. */
	forge_header(rec, 9, 1, 0, 4, 0, 0);
	fix_checks(rec, 32);
	assert_int_equal(decode_exact(rec, 32, &r), MANTIS_UNSUPPORTED);
}

static void
test_bad_padding_and_field_rules(void **state)
{
	(void)state;
	uint8_t rec[48];
	mantis_record r;
	/* A non-zero padding byte with a CRC that covers it. */
	for (size_t i = 37; i < 40; i++) {
		memcpy(rec, known, 40);
		rec[i] = 0x01;
		fix_checks(rec, 40);
		assert_int_equal(decode_exact(rec, 40, &r), MANTIS_CORRUPT);
	}
	static const struct {
		uint8_t type;
		uint32_t kl, vl;
		uint64_t exp;
		mantis_status want;
	} cases[] = {
		{MANTIS_REC_DELETE, 1, 1, 0, MANTIS_CORRUPT}, /* DELETE with value */
		{MANTIS_REC_DELETE, 1, 0, 1, MANTIS_CORRUPT}, /* DELETE with expiry */
		{MANTIS_REC_DELETE, 0, 0, 0, MANTIS_OK},
		{MANTIS_REC_BATCH, 1, 0, 0, MANTIS_CORRUPT},  /* BATCH with key */
		{MANTIS_REC_BATCH, 0, 0, 1, MANTIS_CORRUPT},  /* BATCH with expiry */
		{MANTIS_REC_BATCH, 0, 8, 0, MANTIS_OK}, /* payload checked when iterated */
		{MANTIS_REC_META, 8, 0, 1, MANTIS_OK},
		{MANTIS_REC_PUT, 0, 0, UINT64_MAX, MANTIS_OK},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memset(rec, 0, sizeof rec);
		forge_header(rec, cases[c].type, 1, cases[c].kl, cases[c].vl, 3, cases[c].exp);
		size_t size = 32 + ((cases[c].kl + cases[c].vl + 7) & ~7u);
		memset(rec + 32, 'x', cases[c].kl + cases[c].vl);
		fix_checks(rec, size);
		assert_int_equal(decode_exact(rec, size, &r), cases[c].want);
	}
}

static void
test_misaligned(void **state)
{
	(void)state;
	uint8_t *raw = malloc(sizeof known + 16);
	assert_non_null(raw);
	for (size_t off = 0; off < 16; off++) {
		memcpy(raw + off, known, sizeof known);
		mantis_record r;
		assert_int_equal(mantis_codec_decode(raw + off, sizeof known, &r), MANTIS_OK);
		assert_int_equal(r.seq, 0x0102030405060708ull);
		assert_int_equal(r.expires_at, 0x1122334455667788ull);
		assert_memory_equal(r.key, "k1", 2);
		assert_memory_equal(r.value, "abc", 3);
		/* and encoding at an odd address gives the same bytes */
		memset(raw, 0, sizeof known + 16);
		mantis_record in = r;
		in.key = (const uint8_t *)"k1";
		in.value = (const uint8_t *)"abc";
		size_t w;
		assert_int_equal(mantis_codec_encode(raw + off, sizeof known, &in, &w), MANTIS_OK);
		assert_memory_equal(raw + off, known, sizeof known);
	}
	free(raw);
}

/* ------------------------------------------------------------------------ */
/* Iterators                                                                */
/* ------------------------------------------------------------------------ */

enum { N_ITER = 1000 };

static size_t
build_log(uint8_t *buf, size_t cap, size_t offs[N_ITER + 1])
{
	size_t at = 0;
	uint8_t key[16], val[300];
	for (uint32_t i = 0; i < N_ITER; i++) {
		memset(key, (int)i, sizeof key);
		memset(val, (int)(i * 7), sizeof val);
		offs[i] = at;
		if (i % 10 == 3)
			at += encode_or_die(buf + at, cap - at, MANTIS_REC_DELETE, i, 0, key,
					    1 + i % 16, NULL, 0);
		else
			at += encode_or_die(buf + at, cap - at, MANTIS_REC_PUT, i, i * 3, key,
					    1 + i % 16, val, i % 300);
	}
	offs[N_ITER] = at;
	return at;
}

static void
test_iter_many(void **state)
{
	(void)state;
	size_t cap = N_ITER * (32 + 16 + 300 + 8);
	uint8_t *buf = malloc(cap);
	size_t *offs = malloc((N_ITER + 1) * sizeof *offs);
	assert_non_null(buf);
	assert_non_null(offs);
	size_t len = build_log(buf, cap, offs);

	mantis_codec_iter it;
	mantis_record r;
	mantis_codec_iter_init(&it, buf, len);
	for (uint32_t i = 0; i < N_ITER; i++) {
		assert_int_equal(it.offset, offs[i]);
		assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_OK);
		assert_int_equal(r.seq, i);
		assert_int_equal(r.type, i % 10 == 3 ? MANTIS_REC_DELETE : MANTIS_REC_PUT);
		assert_int_equal(r.key_len, 1 + i % 16);
		assert_int_equal(r.key[0], (uint8_t)i);
	}
	assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_END);
	assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_END); /* stays at end */

	/* A corrupt record in the middle: stop there, offset at it. */
	buf[offs[500] + 33] ^= 0x10;
	mantis_codec_iter_init(&it, buf, len);
	uint32_t seen = 0;
	mantis_status st;
	while ((st = mantis_codec_iter_next(&it, &r)) == MANTIS_OK)
		seen++;
	assert_int_equal(st, MANTIS_CORRUPT);
	assert_int_equal(seen, 500);
	assert_int_equal(it.offset, offs[500]);
	assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_CORRUPT); /* sticky */
	assert_int_equal(it.offset, offs[500]);
	buf[offs[500] + 33] ^= 0x10;

	/* A torn tail: the last record cut short. */
	mantis_codec_iter_init(&it, buf, len - 1);
	seen = 0;
	while ((st = mantis_codec_iter_next(&it, &r)) == MANTIS_OK)
		seen++;
	assert_int_equal(st, MANTIS_TRUNCATED);
	assert_int_equal(seen, N_ITER - 1);
	assert_int_equal(it.offset, offs[N_ITER - 1]);
	free(buf);
	free(offs);
}

static void
test_batch_iter(void **state)
{
	(void)state;
	uint8_t payload[512], rec[1024];
	size_t pl = 0;
	pl += encode_or_die(payload + pl, sizeof payload - pl, MANTIS_REC_PUT, 10, 0, "a", 1, "1", 1);
	size_t second = pl;
	pl += encode_or_die(payload + pl, sizeof payload - pl, MANTIS_REC_DELETE, 11, 0, "b", 1, NULL, 0);
	size_t third = pl;
	pl += encode_or_die(payload + pl, sizeof payload - pl, MANTIS_REC_PUT, 12, 99, "c", 1, "333", 3);

	size_t w = encode_or_die(rec, sizeof rec, MANTIS_REC_BATCH, 10, 0, NULL, 0, payload, (uint32_t)pl);
	mantis_record b, r;
	assert_int_equal(mantis_codec_decode(rec, w, &b), MANTIS_OK);
	assert_int_equal(b.type, MANTIS_REC_BATCH);
	mantis_codec_iter it;
	mantis_codec_iter_init(&it, b.value, b.value_len);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
	assert_int_equal(r.seq, 10);
	assert_memory_equal(r.value, "1", 1);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
	assert_int_equal(r.type, MANTIS_REC_DELETE);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
	assert_int_equal(r.expires_at, 99);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_END);

	/* Nested META or BATCH: corrupt, offset at it, *out untouched. */
	static const uint8_t bad_types[] = {MANTIS_REC_META, MANTIS_REC_BATCH};
	for (size_t i = 0; i < sizeof bad_types; i++) {
		uint8_t p2[512];
		memcpy(p2, payload, pl);
		size_t n = second;
		n += encode_or_die(p2 + n, sizeof p2 - n, bad_types[i], 0, 0, NULL, 0, NULL, 0);
		mantis_codec_iter_init(&it, p2, n);
		assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
		memset(&r, 0, sizeof r);
		assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_CORRUPT);
		assert_int_equal(it.offset, second);
		assert_int_equal(r.size, 0);
		/* the plain iterator does not apply batch rules */
		mantis_codec_iter_init(&it, p2, n);
		assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_OK);
		assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_OK);
	}

	/* Payload not exactly filled: a short or garbage tail is CORRUPT. */
	for (size_t cut = third + 1; cut < pl; cut++) {
		mantis_codec_iter_init(&it, payload, cut);
		assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
		assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
		assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_CORRUPT);
		assert_int_equal(it.offset, third);
	}
	/* A nested record with a bad CRC is corrupt too. */
	uint8_t p3[512];
	memcpy(p3, payload, pl);
	p3[second + 32] ^= 1;
	mantis_codec_iter_init(&it, p3, pl);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_OK);
	assert_int_equal(mantis_codec_batch_iter_next(&it, &r), MANTIS_CORRUPT);
	assert_int_equal(it.offset, second);
}

/* ------------------------------------------------------------------------ */
/* Shared test vectors                                                      */
/* ------------------------------------------------------------------------ */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex ("-" = empty) into a fresh heap buffer of exactly n bytes. */
static uint8_t *
unhex(const char *s, size_t *n)
{
	if (strcmp(s, "-") == 0)
		s = "";
	size_t l = strlen(s);
	if (l % 2)
		return NULL;
	uint8_t *b = malloc(l / 2 ? l / 2 : 1);
	if (b == NULL)
		return NULL;
	for (size_t i = 0; i < l / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(b);
			return NULL;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = l / 2;
	return b;
}

static int
parse_status(const char *s, mantis_status *out)
{
	static const struct {
		const char *name;
		mantis_status st;
	} names[] = {{"OK", MANTIS_OK}, {"TRUNCATED", MANTIS_TRUNCATED},
		     {"CORRUPT", MANTIS_CORRUPT}, {"UNSUPPORTED", MANTIS_UNSUPPORTED},
		     {"TOO_LARGE", MANTIS_TOO_LARGE}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].st;
			return 0;
		}
	return -1;
}

/* The type column: a number, or the name from the FORMAT.md table. */
static int
parse_type(const char *s, uint8_t *out)
{
	static const char *const names[] = {NULL, "PUT", "DELETE", "BATCH", "META"};
	for (uint8_t t = 1; t <= 4; t++)
		if (strcmp(s, names[t]) == 0) {
			*out = t;
			return 0;
		}
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v > 255)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static void
check_vector(const char *line, size_t lineno)
{
	char *dup = strdup(line);
	assert_non_null(dup);
	/* name status type seq expires_at key_hex value_hex record_hex */
	char *f[8];
	size_t nf = 0;
	for (char *save, *t = strtok_r(dup, " \t\r\n", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r\n", &save))
		if (nf < 8)
			f[nf++] = t;
		else
			nf = 9;
	if (nf != 8)
		fail_msg("vectors.txt:%zu: want 8 fields, got %zu", lineno, nf);
	mantis_status want;
	if (parse_status(f[1], &want) != 0)
		fail_msg("vectors.txt:%zu: bad status %s", lineno, f[1]);
	size_t rl = 0;
	uint8_t *rec = unhex(f[7], &rl);
	if (rec == NULL)
		fail_msg("vectors.txt:%zu: bad record_hex", lineno);

	mantis_record r;
	memset(&r, 0, sizeof r);
	mantis_status got = mantis_codec_decode(rec, rl, &r);
	if (got != want)
		fail_msg("vectors.txt:%zu (%s): decode says %s, vector says %s", lineno,
			 f[0], mantis_strerror(got), f[1]);
	/* The same bytes at an odd address decode the same way. */
	uint8_t *odd = malloc(rl + 1);
	assert_non_null(odd);
	memcpy(odd + 1, rec, rl);
	mantis_record r2;
	assert_int_equal(mantis_codec_decode(odd + 1, rl, &r2), want);
	free(odd);

	if (want == MANTIS_OK) {
		uint8_t type = 0;
		uint64_t seq = 0, exp = 0;
		size_t kl = 0, vl = 0;
		if (parse_type(f[2], &type) || parse_u64(f[3], &seq) || parse_u64(f[4], &exp))
			fail_msg("vectors.txt:%zu: bad type/seq/expires_at", lineno);
		uint8_t *k = unhex(f[5], &kl), *v = unhex(f[6], &vl);
		if (k == NULL || v == NULL)
			fail_msg("vectors.txt:%zu: bad key/value hex", lineno);
		if (r.type != type || r.seq != seq || r.expires_at != exp ||
		    r.key_len != kl || r.value_len != vl || memcmp(r.key, k, kl) != 0 ||
		    memcmp(r.value, v, vl) != 0)
			fail_msg("vectors.txt:%zu (%s): decoded fields differ", lineno, f[0]);
		/* Vectors hold one record each: it must fill the buffer. */
		assert_int_equal(r.size, rl);
		mantis_record in = {.type = type, .seq = seq, .expires_at = exp,
				    .key = k, .key_len = (uint32_t)kl,
				    .value = v, .value_len = (uint32_t)vl};
		uint8_t *enc = malloc(rl);
		assert_non_null(enc);
		size_t w = 0;
		assert_int_equal(mantis_codec_encode(enc, rl, &in, &w), MANTIS_OK);
		if (w != rl || memcmp(enc, rec, rl) != 0)
			fail_msg("vectors.txt:%zu (%s): encoding differs", lineno, f[0]);
		free(enc);
		free(k);
		free(v);
	} else {
		for (int i = 2; i <= 6; i++)
			if (strcmp(f[i], "-") != 0)
				fail_msg("vectors.txt:%zu: non-OK vector with fields", lineno);
	}
	free(rec);
	free(dup);
}

static void
test_shared_vectors(void **state)
{
	(void)state;
	const char *dir = getenv("MANTIS_TESTDATA");
	if (dir == NULL || *dir == '\0')
		dir = "../testdata";
	char path[4096];
	snprintf(path, sizeof path, "%s/codec/vectors.txt", dir);
	FILE *fp = fopen(path, "r");
	/* Missing vectors is a failure, not a skip: they pin the format. */
	if (fp == NULL)
		fail_msg("cannot open %s (set MANTIS_TESTDATA)", path);
	char *line = NULL;
	size_t cap = 0, lineno = 0, count = 0;
	size_t per_status[MANTIS_STATUS_COUNT_] = {0};
	while (getline(&line, &cap, fp) != -1) {
		lineno++;
		const char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
			continue;
		check_vector(s, lineno);
		mantis_status st;
		char name[64], status[32];
		if (sscanf(s, "%63s %31s", name, status) == 2 && parse_status(status, &st) == 0)
			per_status[st]++;
		count++;
	}
	free(line);
	fclose(fp);
	print_message("%zu vectors: %zu OK, %zu TRUNCATED, %zu CORRUPT, %zu UNSUPPORTED, "
		      "%zu TOO_LARGE\n", count, per_status[MANTIS_OK],
		      per_status[MANTIS_TRUNCATED], per_status[MANTIS_CORRUPT],
		      per_status[MANTIS_UNSUPPORTED], per_status[MANTIS_TOO_LARGE]);
	/* An empty or comment-only file would pass vacuously. */
	assert_true(per_status[MANTIS_OK] > 0);
	assert_true(per_status[MANTIS_CORRUPT] > 0);
	assert_true(per_status[MANTIS_TRUNCATED] > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_bytes),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_encode_buffer_too_small),
		cmocka_unit_test(test_encode_validates),
		cmocka_unit_test(test_null_pointers),
		cmocka_unit_test(test_zero_length_and_short),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_lengths_over_buffer_or_limits),
		cmocka_unit_test(test_unknown_type_and_version),
		cmocka_unit_test(test_bad_padding_and_field_rules),
		cmocka_unit_test(test_misaligned),
		cmocka_unit_test(test_iter_many),
		cmocka_unit_test(test_batch_iter),
		cmocka_unit_test(test_shared_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
