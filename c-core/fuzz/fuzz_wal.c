/*
 * fuzz_wal.c -- libFuzzer target for recovery: the code that reads WAL
 * segments and snapshots from disk (src/wal.c, src/snapshot.c), run over
 * arbitrary bytes through the same in-memory scanners open() applies to
 * each mmap'ed file.
 *
 * The first input byte picks what the rest is:
 *   0  a whole segment file (header included), as the last segment
 *   1  the same, as an earlier segment (no torn-tail rule)
 *   2  the body of a segment: a valid header is prepended, so mutations
 *      reach the record rules instead of dying on the header CRC
 *   3  a whole snapshot file, named for the seq its header claims
 *
 * Properties checked on every input:
 *   1. no read outside the input (ASan), no undefined behaviour (UBSan);
 *   2. the scanners return only OK, CORRUPT or UNSUPPORTED, and on failure
 *      name an offset inside the input with a reason;
 *   3. on OK, the kept prefix is 8-aligned and within the input, the
 *      whole input unless a torn tail was found (only in a last segment),
 *      and what was delivered is what recovery promises: records inside
 *      the input, seqs strictly increasing, BATCH payloads iterable;
 *   4. a snapshot that scans OK delivered header-count PUTs in strictly
 *      ascending key order.
 */
#include "wal.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

typedef struct ctx {
	const uint8_t *buf;
	size_t len;
	uint64_t prev_seq;
	uint64_t count;
	const uint8_t *prev_key;
	size_t prev_len;
	uint64_t snap_count;
} ctx;

static void
check_inside(const ctx *c, const mantis_record *r)
{
	CHECK(r->key == NULL || r->key_len == 0 ||
	      (r->key >= c->buf && r->key + r->key_len <= c->buf + c->len));
	CHECK(r->value == NULL || r->value_len == 0 ||
	      (r->value >= c->buf && r->value + r->value_len <= c->buf + c->len));
}

static mantis_status
on_apply(void *arg, const mantis_record *r)
{
	ctx *c = arg;
	check_inside(c, r);
	CHECK(r->seq > c->prev_seq);
	CHECK(r->type == MANTIS_REC_PUT || r->type == MANTIS_REC_DELETE ||
	      r->type == MANTIS_REC_BATCH);
	uint64_t hi = r->seq;
	if (r->type == MANTIS_REC_BATCH) {
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, r->value, r->value_len);
		mantis_record n;
		mantis_status st;
		while ((st = mantis_codec_batch_iter_next(&it, &n)) == MANTIS_OK) {
			CHECK(n.seq >= hi);
			hi = n.seq;
		}
		CHECK(st == MANTIS_END); /* validated before delivery */
	}
	c->prev_seq = hi;
	c->count++;
	return MANTIS_OK;
}

static mantis_status
on_begin(void *arg, uint64_t seq, uint64_t count)
{
	ctx *c = arg;
	(void)seq;
	c->snap_count = count;
	return MANTIS_OK;
}

static mantis_status
on_snap(void *arg, const mantis_record *r)
{
	ctx *c = arg;
	check_inside(c, r);
	CHECK(r->type == MANTIS_REC_PUT);
	if (c->count > 0) {
		size_t n = r->key_len < c->prev_len ? r->key_len : c->prev_len;
		int cmp = n ? memcmp(r->key, c->prev_key, n) : 0;
		CHECK(cmp > 0 || (cmp == 0 && r->key_len > c->prev_len));
	}
	c->prev_key = r->key;
	c->prev_len = r->key_len;
	c->count++;
	return MANTIS_OK;
}

static void
check_failure(mantis_status st, const mantis_wal_recovery *info, size_t len)
{
	CHECK(st == MANTIS_CORRUPT || st == MANTIS_UNSUPPORTED);
	CHECK(info->error_offset <= len);
	CHECK(info->error_reason[0] != '\0');
}

static void
scan_segment(const uint8_t *buf, size_t len, bool last)
{
	ctx c = {.buf = buf, .len = len};
	mantis_wal_handler h = {.ctx = &c, .apply = on_apply};
	mantis_wal_recovery *info = calloc(1, sizeof *info);
	CHECK(info != NULL);
	wal_seg_result res;
	uint64_t prev = 0;
	mantis_status st = wal_scan_segment(buf, len, 1, last, 0, &prev, &h,
					    "fuzz.wal", info, &res);
	if (st == MANTIS_OK) {
		CHECK(res.size <= len && res.size % 8 == 0);
		CHECK(res.torn ? last : res.size == len);
		CHECK(res.last == prev && prev == c.prev_seq);
		CHECK(info->replayed == c.count);
	} else {
		check_failure(st, info, len);
	}
	free(info);
}

static void
scan_snapshot(const uint8_t *buf, size_t len)
{
	ctx c = {.buf = buf, .len = len};
	mantis_wal_handler h = {.ctx = &c, .snapshot_begin = on_begin,
				.snapshot_record = on_snap};
	mantis_wal_recovery *info = calloc(1, sizeof *info);
	CHECK(info != NULL);
	/* Name the file for the seq its header claims (value bytes 8..15). */
	uint64_t name = len >= 32 + 17 + 16 ? wal_get64(buf + 32 + 17 + 8) : 0;
	uint64_t count = 0;
	mantis_status st = snapshot_scan(buf, len, name, &h, "fuzz.snap", info, &count);
	if (st == MANTIS_OK)
		CHECK(count == c.count && count == c.snap_count);
	else
		check_failure(st, info, len);
	free(info);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0] % 4;
	data++;
	size--;
	/* An exact-size heap copy so ASan flags any read past the end. */
	size_t extra = mode == 2 ? SEG_HEADER_SIZE : 0;
	uint8_t *buf = malloc(size + extra + 1);
	CHECK(buf != NULL);
	if (mode == 2) {
		uint8_t v[SEG_HEADER_VALUE] = {0};
		wal_put32(v, SEG_FORMAT_VERSION);
		wal_put64(v + 8, 1);
		CHECK(wal_encode_meta(buf, SEG_HEADER_SIZE, SEG_META_KEY, v, sizeof v) ==
		      SEG_HEADER_SIZE);
	}
	memcpy(buf + extra, data, size);
	switch (mode) {
	case 0:
	case 1:
		scan_segment(buf, size, mode == 0);
		break;
	case 2:
		scan_segment(buf, size + extra, true);
		break;
	default:
		scan_snapshot(buf, size);
		break;
	}
	free(buf);
	return 0;
}
