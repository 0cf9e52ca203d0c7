/*
 * mantis_cgo.h -- the Go packages' cgo entry points (go/storage, go/cache):
 * thin static inline shims over the mantis_db_* and mantis_cache_* calls
 * of the hot paths (mantis.h), with the handle as uintptr_t and byte
 * buffers as uint8_t pointers instead of an opaque struct pointer and
 * void *.  Not part of the C API: mantis.h is the one public header, and
 * nothing but the Go packages includes this one (it sits beside mantis.h
 * only so both packages reach it through the include path they use).
 *
 * Why: for every argument whose pointee might hold Go pointers (void * and
 * pointers to opaque structs), cgo inserts a runtime check
 * (_cgoCheckPointer) that walks the heap metadata of the value passed; a
 * native get paid three of them, a sizeable share of a cache-resident get
 * (bench/results/design-measurements.md, "cgo pointer checks").  A uint8_t buffer cannot hold a Go pointer and the handle is
 * C memory, so with these types cgo inserts no check: the saving that
 * GODEBUG=cgocheck=0 gave, without turning the check off for anything
 * else.  The shims are inlined into cgo's C stubs, so they add no call.
 * Go passes Go memory here only for the duration of a call and C never
 * keeps it.
 */
#ifndef MANTIS_CGO_H
#define MANTIS_CGO_H

#include <stdint.h>
#include <mantis.h>

static inline mantis_db *mgo_db(uintptr_t h) { return (mantis_db *)h; }

static inline mantis_status mgo_db_get(uintptr_t h, const uint8_t *key,
				    size_t key_len, uint64_t now, uint8_t *buf,
				    size_t cap, size_t *value_len)
{
	return mantis_db_get(mgo_db(h), key, key_len, now, buf, cap, value_len);
}

static inline mantis_status mgo_db_put(uintptr_t h, const uint8_t *key,
				    size_t key_len, const uint8_t *value,
				    size_t value_len, uint64_t expires_at)
{
	return mantis_db_put(mgo_db(h), key, key_len, value, value_len,
			     expires_at);
}

static inline mantis_status mgo_db_delete(uintptr_t h, const uint8_t *key,
				       size_t key_len)
{
	return mantis_db_delete(mgo_db(h), key, key_len);
}

/* The Go engine computes every record's CRC itself (record.go) or had
 * go/wal's reader check it (replay), so the core does not check it again. */
static inline mantis_status mgo_db_apply(uintptr_t h, const uint8_t *batch,
				      size_t len, size_t *bad_offset)
{
	return mantis_db_apply_verified(mgo_db(h), batch, len, bad_offset);
}

static inline mantis_status
mgo_db_scan_entries(uintptr_t h, const uint8_t *start, size_t start_len,
		 bool start_exclusive, const uint8_t *end, size_t end_len,
		 uint64_t now, uint8_t *buf, size_t cap, size_t budget,
		 size_t max_count, size_t *out_len, size_t *out_count,
		 bool *out_done)
{
	return mantis_db_scan_entries(mgo_db(h), start, start_len,
				      start_exclusive, end, end_len, now, buf,
				      cap, budget, max_count, out_len,
				      out_count, out_done);
}

/* go/cache */

static inline mantis_cache *mgo_cache(uintptr_t h) { return (mantis_cache *)h; }

static inline mantis_status mgo_cache_get(uintptr_t h, const uint8_t *key,
					  size_t key_len, uint64_t now,
					  uint8_t *buf, size_t cap,
					  size_t *value_len)
{
	return mantis_cache_get(mgo_cache(h), key, key_len, now, buf, cap,
				value_len);
}

static inline mantis_status mgo_cache_get_many(uintptr_t h, const uint8_t *keys,
					       const uint32_t *key_offs, size_t n,
					       uint64_t now, uint8_t *buf,
					       size_t cap, uint64_t *value_lens,
					       size_t *done)
{
	return mantis_cache_get_many(mgo_cache(h), keys, key_offs, n, now, buf,
				     cap, value_lens, done);
}

static inline mantis_status mgo_cache_put(uintptr_t h, const uint8_t *key,
					  size_t key_len, const uint8_t *value,
					  size_t value_len, uint64_t ttl_ns,
					  uint64_t now)
{
	return mantis_cache_put(mgo_cache(h), key, key_len, value, value_len,
				ttl_ns, now);
}

static inline mantis_status mgo_cache_delete(uintptr_t h, const uint8_t *key,
					     size_t key_len)
{
	return mantis_cache_delete(mgo_cache(h), key, key_len);
}

#endif /* MANTIS_CGO_H */
