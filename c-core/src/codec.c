/*
 * codec.c -- the one record format of MantisDB (docs/FORMAT.md is the
 * specification; this file implements exactly that page).
 *
 *  byte 0       4    5    6         8            12           16
 *       +-------+----+----+---------+------------+------------+
 *       |  crc  |type|ver | hcheck  |  key_len   | value_len  |
 *       +-------+----+----+---------+------------+------------+
 *       16                          24                        32
 *       +---------------------------+-------------------------+
 *       |            seq            |       expires_at        |
 *       +---------------------------+-------------------------+
 *       32
 *       +------------------+--------------------+-------------+
 *       | key (key_len B)  | value (value_len B)| zero pad    |
 *       +------------------+--------------------+-------------+
 *                                                  to a multiple of 8
 *
 * crc    = CRC32C of bytes [4, size)
 * hcheck = low 16 bits of CRC32C of bytes [4, 32) with bytes 6..7 as zero
 *
 * Decoding is validation plus pointers into the caller's buffer: no copy,
 * no allocation, every field read byte-wise (any address alignment, any
 * host byte order), and never a read outside [buf, buf + len).  Lengths
 * are checked against the limits before any size arithmetic, so the sums
 * below cannot overflow even with a 32-bit size_t (32 + 64 KiB + 256 MiB
 * + 7 < 2^32).
 */
#include "codec_view.h"
#include "le.h"

#include <mantis.h>

#include <string.h>

enum {
	OFF_CRC = 0,
	OFF_TYPE = 4,
	OFF_VER = 5,
	OFF_HCHECK = 6,
	OFF_KEY_LEN = 8,
	OFF_VALUE_LEN = 12,
	OFF_SEQ = 16,
	OFF_EXPIRES = 24,
};

/* The value-length limit of a known type (keys are 64 KiB for all). */
static uint32_t
value_limit(uint8_t type)
{
	switch (type) {
	case MANTIS_REC_BATCH:
		return MANTIS_MAX_BATCH_SIZE;
	case MANTIS_REC_META:
		return MANTIS_MAX_META_SIZE;
	default:
		return MANTIS_MAX_VALUE_SIZE;
	}
}

static bool
type_known(uint8_t type)
{
	return type >= MANTIS_REC_PUT && type <= MANTIS_REC_META;
}

/*
 * Steps 4-5 of "Decoding", shared by size, encode and decode so the three
 * can never disagree about what is encodable.
 */
static mantis_status
check_type_and_limits(uint8_t type, size_t key_len, size_t value_len)
{
	if (!type_known(type))
		return MANTIS_UNSUPPORTED;
	if (key_len > MANTIS_MAX_KEY_SIZE || value_len > value_limit(type))
		return MANTIS_TOO_LARGE;
	return MANTIS_OK;
}

/* The type table's field rules (step 7): true when they hold. */
static bool
field_rules_hold(uint8_t type, uint32_t key_len, uint32_t value_len,
		 uint64_t expires_at)
{
	switch (type) {
	case MANTIS_REC_DELETE:
		return value_len == 0 && expires_at == 0;
	case MANTIS_REC_BATCH:
		return key_len == 0 && expires_at == 0;
	default:
		return true;
	}
}

/* Only call after check_type_and_limits: the sum cannot overflow. */
static inline size_t
record_size(size_t key_len, size_t value_len)
{
	size_t n = MANTIS_RECORD_HEADER_SIZE + key_len + value_len;
	return (n + (MANTIS_RECORD_ALIGN - 1)) & ~(size_t)(MANTIS_RECORD_ALIGN - 1);
}

static uint16_t
header_check(const uint8_t *hdr)
{
	uint8_t h[MANTIS_RECORD_HEADER_SIZE - 4];
	memcpy(h, hdr + 4, sizeof h);
	h[OFF_HCHECK - 4] = 0;
	h[OFF_HCHECK - 4 + 1] = 0;
	return (uint16_t)mantis_crc32c(0, h, sizeof h);
}

mantis_status
mantis_codec_size(uint8_t type, size_t key_len, size_t value_len, size_t *out)
{
	if (out == NULL)
		return MANTIS_INVALID;
	mantis_status st = check_type_and_limits(type, key_len, value_len);
	if (st != MANTIS_OK)
		return st;
	*out = record_size(key_len, value_len);
	return MANTIS_OK;
}

mantis_status
mantis_codec_encode(void *buf, size_t cap, const mantis_record *rec,
		    size_t *written)
{
	if (rec == NULL || written == NULL || (buf == NULL && cap != 0) ||
	    (rec->key == NULL && rec->key_len != 0) ||
	    (rec->value == NULL && rec->value_len != 0))
		return MANTIS_INVALID;
	mantis_status st = check_type_and_limits(rec->type, rec->key_len,
						 rec->value_len);
	if (st != MANTIS_OK)
		return st;
	/* A record decode would call corrupt is a caller bug, not corruption. */
	if (!field_rules_hold(rec->type, rec->key_len, rec->value_len,
			      rec->expires_at))
		return MANTIS_INVALID;
	size_t size = record_size(rec->key_len, rec->value_len);
	*written = size;
	if (cap < size)
		return MANTIS_BUFFER_TOO_SMALL;

	uint8_t *p = buf;
	p[OFF_TYPE] = rec->type;
	p[OFF_VER] = MANTIS_FORMAT_VERSION;
	le_st16(p + OFF_HCHECK, 0);
	le_st32(p + OFF_KEY_LEN, rec->key_len);
	le_st32(p + OFF_VALUE_LEN, rec->value_len);
	le_st64(p + OFF_SEQ, rec->seq);
	le_st64(p + OFF_EXPIRES, rec->expires_at);
	le_st16(p + OFF_HCHECK, header_check(p));
	uint8_t *body = p + MANTIS_RECORD_HEADER_SIZE;
	if (rec->key_len)
		memcpy(body, rec->key, rec->key_len);
	if (rec->value_len)
		memcpy(body + rec->key_len, rec->value, rec->value_len);
	size_t end = MANTIS_RECORD_HEADER_SIZE + (size_t)rec->key_len + rec->value_len;
	memset(p + end, 0, size - end);
	le_st32(p + OFF_CRC, mantis_crc32c(0, p + 4, size - 4));
	return MANTIS_OK;
}

mantis_status
mantis_codec_decode(const void *buf, size_t len, mantis_record *out)
{
	/* 1. */
	if (buf == NULL || out == NULL)
		return MANTIS_INVALID;
	/* 2. */
	if (len < MANTIS_RECORD_HEADER_SIZE)
		return MANTIS_TRUNCATED;
	const uint8_t *p = buf;
	/* 3. Nothing below trusts a length before this check. */
	if (le_ld16(p + OFF_HCHECK) != header_check(p))
		return MANTIS_CORRUPT;
	/* 4., 5. */
	uint8_t type = p[OFF_TYPE];
	if (p[OFF_VER] != MANTIS_FORMAT_VERSION)
		return MANTIS_UNSUPPORTED;
	uint32_t key_len = le_ld32(p + OFF_KEY_LEN);
	uint32_t value_len = le_ld32(p + OFF_VALUE_LEN);
	mantis_status st = check_type_and_limits(type, key_len, value_len);
	if (st != MANTIS_OK)
		return st;
	/* 6. */
	size_t size = record_size(key_len, value_len);
	if (len < size)
		return MANTIS_TRUNCATED;
	/* 7. */
	if (le_ld32(p + OFF_CRC) != mantis_crc32c(0, p + 4, size - 4))
		return MANTIS_CORRUPT;
	size_t end = MANTIS_RECORD_HEADER_SIZE + (size_t)key_len + value_len;
	for (size_t i = end; i < size; i++)
		if (p[i] != 0)
			return MANTIS_CORRUPT;
	uint64_t expires_at = le_ld64(p + OFF_EXPIRES);
	if (!field_rules_hold(type, key_len, value_len, expires_at))
		return MANTIS_CORRUPT;

	out->type = type;
	out->seq = le_ld64(p + OFF_SEQ);
	out->expires_at = expires_at;
	out->key = p + MANTIS_RECORD_HEADER_SIZE;
	out->key_len = key_len;
	out->value = p + MANTIS_RECORD_HEADER_SIZE + key_len;
	out->value_len = value_len;
	out->size = size;
	return MANTIS_OK;
}

void
mantis_codec_view(const void *buf, mantis_record *out)
{
	const uint8_t *p = buf;
	uint32_t key_len = le_ld32(p + OFF_KEY_LEN);
	uint32_t value_len = le_ld32(p + OFF_VALUE_LEN);
	out->type = p[OFF_TYPE];
	out->seq = le_ld64(p + OFF_SEQ);
	out->expires_at = le_ld64(p + OFF_EXPIRES);
	out->key = p + MANTIS_RECORD_HEADER_SIZE;
	out->key_len = key_len;
	out->value = p + MANTIS_RECORD_HEADER_SIZE + key_len;
	out->value_len = value_len;
	out->size = record_size(key_len, value_len);
}

mantis_status
mantis_codec_frame(const void *buf, size_t len, mantis_record *out)
{
	if (len < MANTIS_RECORD_HEADER_SIZE)
		return MANTIS_TRUNCATED;
	const uint8_t *p = buf;
	if (p[OFF_VER] != MANTIS_FORMAT_VERSION)
		return MANTIS_UNSUPPORTED;
	mantis_status st = check_type_and_limits(p[OFF_TYPE], le_ld32(p + OFF_KEY_LEN),
						 le_ld32(p + OFF_VALUE_LEN));
	if (st != MANTIS_OK)
		return st;
	mantis_codec_view(buf, out);
	return len < out->size ? MANTIS_TRUNCATED : MANTIS_OK;
}

void
mantis_codec_iter_init(mantis_codec_iter *it, const void *buf, size_t len)
{
	if (it == NULL)
		return;
	it->buf = buf;
	it->len = buf == NULL ? 0 : len;
	it->offset = 0;
}

mantis_status
mantis_codec_iter_next(mantis_codec_iter *it, mantis_record *out)
{
	if (it == NULL || out == NULL || it->offset > it->len ||
	    (it->buf == NULL && it->len != 0))
		return MANTIS_INVALID;
	if (it->offset == it->len)
		return MANTIS_END;
	mantis_status st = mantis_codec_decode(it->buf + it->offset,
					       it->len - it->offset, out);
	if (st == MANTIS_OK)
		it->offset += out->size;
	return st;
}

mantis_status
mantis_codec_batch_iter_next(mantis_codec_iter *it, mantis_record *out)
{
	mantis_record r;
	mantis_status st = mantis_codec_iter_next(it, out == NULL ? NULL : &r);
	switch (st) {
	case MANTIS_OK:
		break;
	case MANTIS_TRUNCATED:
		/*
		 * The payload is covered by the BATCH record's CRC, so a short
		 * nested record is not a torn write: the nested records do
		 * not fill the payload, which FORMAT.md calls corrupt.
		 */
		return MANTIS_CORRUPT;
	default:
		return st;
	}
	if (r.type != MANTIS_REC_PUT && r.type != MANTIS_REC_DELETE) {
		it->offset -= r.size; /* leave it pointing at the bad record */
		return MANTIS_CORRUPT;
	}
	*out = r;
	return MANTIS_OK;
}
