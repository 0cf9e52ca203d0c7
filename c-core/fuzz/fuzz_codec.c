/*
 * fuzz_codec.c -- libFuzzer target for the record codec, the decoder of
 * every byte the core decodes (batches passed across cgo).
 *
 * Properties checked on arbitrary input:
 *   1. decode and both iterators never read outside the input (ASan) and
 *      never hit undefined behaviour (UBSan);
 *   2. a record that decodes OK re-encodes to exactly its bytes (the
 *      format has one encoding per record), and its views lie inside it;
 *   3. iteration makes progress and ends at END or at a record whose own
 *      decode fails with the same status;
 *   4. the nested records of a BATCH obey the same properties.
 *
 * The input is copied to an exact-size heap buffer at an odd address so
 * over-reads and alignment assumptions both surface.
 */
#include <mantis.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

static void
check_roundtrip(const uint8_t *buf, size_t len, const mantis_record *r)
{
	CHECK(r->size >= MANTIS_RECORD_HEADER_SIZE && r->size <= len &&
	      r->size % MANTIS_RECORD_ALIGN == 0);
	CHECK(r->key == buf + MANTIS_RECORD_HEADER_SIZE);
	CHECK(r->value == r->key + r->key_len);
	CHECK((size_t)(r->value - buf) + r->value_len <= r->size);
	uint8_t *out = malloc(r->size);
	CHECK(out != NULL);
	size_t w = 0;
	CHECK(mantis_codec_encode(out, r->size, r, &w) == MANTIS_OK);
	CHECK(w == r->size);
	CHECK(memcmp(out, buf, w) == 0);
	free(out);
}

static void
walk(const uint8_t *buf, size_t len, int batch_depth)
{
	mantis_codec_iter it;
	mantis_record r;
	mantis_status st;
	mantis_codec_iter_init(&it, buf, len);
	for (;;) {
		size_t at = it.offset;
		st = batch_depth ? mantis_codec_batch_iter_next(&it, &r)
				 : mantis_codec_iter_next(&it, &r);
		if (st != MANTIS_OK)
			break;
		CHECK(it.offset == at + r.size); /* progress */
		check_roundtrip(buf + at, len - at, &r);
		if (batch_depth)
			CHECK(r.type == MANTIS_REC_PUT || r.type == MANTIS_REC_DELETE);
		else if (r.type == MANTIS_REC_BATCH)
			walk(r.value, r.value_len, 1);
	}
	CHECK(st != MANTIS_INVALID);
	if (st == MANTIS_END) {
		CHECK(it.offset == len);
		return;
	}
	/* Stopped at a bad record: the offset points at it. */
	CHECK(it.offset < len && it.offset % MANTIS_RECORD_ALIGN == 0);
	mantis_status direct = mantis_codec_decode(buf + it.offset, len - it.offset, &r);
	if (!batch_depth)
		CHECK(direct == st);
	else if (direct == MANTIS_OK) /* a nested BATCH/META */
		CHECK(st == MANTIS_CORRUPT && r.type != MANTIS_REC_PUT &&
		      r.type != MANTIS_REC_DELETE);
	else /* a short tail is corrupt inside a batch */
		CHECK(st == (direct == MANTIS_TRUNCATED ? MANTIS_CORRUPT : direct));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *raw = malloc(size + 1);
	if (raw == NULL)
		return 0;
	uint8_t *buf = raw + 1;
	memcpy(buf, data, size);

	mantis_record r;
	mantis_status st = mantis_codec_decode(buf, size, &r);
	CHECK(st == MANTIS_OK || st == MANTIS_TRUNCATED || st == MANTIS_CORRUPT ||
	      st == MANTIS_UNSUPPORTED || st == MANTIS_TOO_LARGE);
	if (st == MANTIS_OK)
		check_roundtrip(buf, size, &r);
	walk(buf, size, 0);
	free(raw);
	return 0;
}
