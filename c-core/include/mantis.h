/*
 * mantis.h -- the one public header of the MantisDB native core
 * (libmantisdb_core.a).
 *
 * Conventions (see shared STYLE.md):
 *   - every public symbol starts with mantis_ / MANTIS_;
 *   - every function that can fail returns mantis_status; mantis_strerror
 *     names each code; not-found is a status, not an error message;
 *   - no function aborts, exits or prints on bad input or out-of-memory;
 *   - destructors accept NULL;
 *   - ownership and lifetime of every pointer argument and result is stated
 *     at the declaration.  "Borrowed" means the callee does not keep the
 *     pointer after it returns.
 *
 * Sections: status codes, limits, allocation accounting, CRC32C, record
 * codec.  Components added later (skiplist, cache, engine, WAL) append their
 * own sections below, each with its thread-safety block.
 */
#ifndef MANTIS_H
#define MANTIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Values are stable: they cross cgo and appear in logs.  Never renumber;
 * append new codes at the end.
 */
typedef enum mantis_status {
	MANTIS_OK = 0,
	MANTIS_NOT_FOUND = 1,	     /* key absent or expired                 */
	MANTIS_END = 2,		     /* iteration finished cleanly            */
	MANTIS_INVALID = 3,	     /* bad argument: NULL handle/pointer ... */
	MANTIS_NOMEM = 4,	     /* allocation failed; nothing changed    */
	MANTIS_TOO_LARGE = 5,	     /* key/value/batch over the limit        */
	MANTIS_BUFFER_TOO_SMALL = 6, /* caller buffer short; size reported    */
	MANTIS_TRUNCATED = 7,	     /* bytes end inside a record             */
	MANTIS_CORRUPT = 8,	     /* checksum/field validation failed      */
	MANTIS_UNSUPPORTED = 9,	     /* well-formed but unknown type/version  */
	MANTIS_IO = 10,		     /* read/write/fsync failed (errno kept)  */
	MANTIS_CLOSED = 11,	     /* handle already closed                 */
	MANTIS_READ_ONLY = 12,	     /* writes refused after an I/O failure   */
	MANTIS_EXISTS = 13,	     /* insert-only op found the key          */
	MANTIS_BUSY = 14,	     /* resource locked by another owner      */
	MANTIS_STATUS_COUNT_
} mantis_status;

/*
 * A static, NUL-terminated, human-readable name for a status, e.g.
 * "corrupt record".  Never NULL; unknown values give "unknown status".
 * The returned string is owned by the library and lives forever.
 */
const char *mantis_strerror(mantis_status status);

/* ------------------------------------------------------------------------ */
/* Limits (the reasoning is in docs/FORMAT.md, "Limits")                    */
/* ------------------------------------------------------------------------ */

#define MANTIS_MAX_KEY_SIZE ((uint32_t)64 * 1024)	    /* 64 KiB, inclusive  */
#define MANTIS_MAX_VALUE_SIZE ((uint32_t)64 * 1024 * 1024)  /* 64 MiB, inclusive  */
#define MANTIS_MAX_BATCH_SIZE ((uint32_t)256 * 1024 * 1024) /* batch payload      */
#define MANTIS_MAX_META_SIZE ((uint32_t)1024 * 1024)	    /* META payload       */

/* ------------------------------------------------------------------------ */
/* Allocation accounting                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Every byte the core allocates goes through mimalloc and is counted in
 * per-thread-striped counters (no global hot atomic).  The sum is exact when
 * no allocation is in flight; under concurrency it is a snapshot.
 * Thread-safe.
 */
typedef struct mantis_alloc_stats {
	int64_t bytes_in_use; /* requested bytes currently allocated */
	int64_t allocations;  /* live allocation count               */
} mantis_alloc_stats;

void mantis_alloc_get_stats(mantis_alloc_stats *out); /* out: borrowed; NULL ignored */

/* ------------------------------------------------------------------------ */
/* CRC32C (Castagnoli, reflected, polynomial 0x82F63B78)                     */
/* ------------------------------------------------------------------------ */

/*
 * Extends `crc` (0 to start) over `len` bytes of `data` (borrowed; may be
 * NULL only when len == 0).  Uses SSE4.2 `crc32` when the CPU has it,
 * chosen once at run time, and a slicing-by-8 table otherwise.
 * mantis_crc32c(0, "123456789", 9) == 0xE3069283.  Thread-safe, pure.
 */
uint32_t mantis_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table-driven implementation, always available (tests, bench). */
uint32_t mantis_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* The SSE4.2 implementation; only call when mantis_crc32c_hw_available(). */
uint32_t mantis_crc32c_hw(uint32_t crc, const void *data, size_t len);
bool mantis_crc32c_hw_available(void);

/* ------------------------------------------------------------------------ */
/* Record codec (docs/FORMAT.md is the specification)                       */
/* ------------------------------------------------------------------------ */

#define MANTIS_RECORD_HEADER_SIZE 32u
#define MANTIS_RECORD_ALIGN 8u
#define MANTIS_FORMAT_VERSION 1u

typedef enum mantis_record_type {
	MANTIS_REC_PUT = 1,    /* key, value, seq, expiry                     */
	MANTIS_REC_DELETE = 2, /* key, seq; value empty                       */
	MANTIS_REC_BATCH = 3,  /* key empty; value = nested PUT/DELETE records */
	MANTIS_REC_META = 4    /* key = name, value = payload (file headers)   */
} mantis_record_type;

/*
 * A decoded record.  Produced by decode as a view: `key` and `value` point
 * into the buffer that was decoded and are valid exactly as long as that
 * buffer is.  For encode it is an input: key/value are borrowed.
 * expires_at is absolute, in Unix nanoseconds; 0 means never.
 */
typedef struct mantis_record {
	uint8_t type; /* mantis_record_type */
	uint64_t seq;
	uint64_t expires_at;
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *value;
	uint32_t value_len;
	size_t size; /* decode: total encoded bytes incl. padding */
} mantis_record;

/*
 * Encoded size of a record with these lengths, header and padding included.
 * Returns MANTIS_TOO_LARGE (and leaves *out untouched) when a length is over
 * the limit for `type`; MANTIS_UNSUPPORTED for an unknown type.
 */
mantis_status mantis_codec_size(uint8_t type, size_t key_len, size_t value_len,
				size_t *out);

/*
 * Encodes `rec` (borrowed; rec->size ignored) into buf[0..cap).  On success
 * *written is the encoded size.  When cap is too small returns
 * MANTIS_BUFFER_TOO_SMALL with *written set to the size needed and buf
 * untouched.  `buf` may be NULL when cap == 0 (size query).  Validates as
 * decode would: limits, type, DELETE without value, BATCH without key.
 * For a BATCH, rec->value must already hold the encoded nested records.
 */
mantis_status mantis_codec_encode(void *buf, size_t cap,
				  const mantis_record *rec, size_t *written);

/*
 * Decodes the one record at the start of buf[0..len): validation plus
 * pointers into buf, no copy, no allocation.  `buf` may have any address
 * alignment.  Checks, in this order (docs/FORMAT.md, "Decoding"):
 *   MANTIS_INVALID      buf or out is NULL
 *   MANTIS_TRUNCATED    len < 32 (not even a header)
 *   MANTIS_CORRUPT      header check fails (lengths cannot be trusted)
 *   MANTIS_UNSUPPORTED  header valid but unknown version or type
 *   MANTIS_TOO_LARGE    header valid but a length is over the type's limit
 *   MANTIS_TRUNCATED    len < the record's declared size
 *   MANTIS_CORRUPT      record CRC, zero padding or a field rule fails
 * On any non-OK status *out is untouched.
 */
mantis_status mantis_codec_decode(const void *buf, size_t len, mantis_record *out);

/*
 * Iterates the concatenated records of buf[0..len) (borrowed for the life
 * of the iterator).  Plain struct: put it on the stack, no cleanup.
 */
typedef struct mantis_codec_iter {
	const uint8_t *buf;
	size_t len;
	size_t offset; /* byte offset of the next record; of the bad one on error */
} mantis_codec_iter;

void mantis_codec_iter_init(mantis_codec_iter *it, const void *buf, size_t len);

/*
 * MANTIS_OK with *out filled (a view into buf) and the iterator advanced;
 * MANTIS_END when offset == len; otherwise the decode status of the record at
 * it->offset, which is left pointing at it.
 */
mantis_status mantis_codec_iter_next(mantis_codec_iter *it, mantis_record *out);

/* @@SKIPLIST-SECTION@@ (the skiplist/index helper replaces this line) */

/* @@CACHE-SECTION@@ (the cache helper replaces this line) */

/* @@ENGINE-SECTION@@ (the engine helper replaces this line) */

#ifdef __cplusplus
}
#endif

#endif /* MANTIS_H */
