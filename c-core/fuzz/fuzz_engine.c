/*
 * fuzz_engine.c -- libFuzzer target for the engine's decoder of caller
 * bytes: mantis_db_apply, which takes a batch of codec records straight from
 * cgo, and mantis_db_scan / mantis_db_scan_entries, whose output buffers a
 * caller decodes.
 *
 * Input layout:
 *   byte 0   mode: bit 0 = "script" (else the rest is a raw batch), bit 1 =
 *            small limits (max_key_size 8, max_value_size 32), bits 2..7 =
 *            the key+value budget of mantis_db_scan_entries / 4 (0 = none)
 *            (byte 1 % 4 is also its entry cap, 0 = none)
 *   byte 1   scan buffer capacity (0..255 bytes; grown on TOO_SMALL)
 *   rest     raw mode: the batch bytes as given, so every validation path
 *            (truncation, CRC, field rules, types, limits) meets arbitrary
 *            input.  Script mode: ops the harness encodes with the codec
 *            into a well-formed batch (random bytes almost never pass the
 *            CRC, so this is how the fuzzer reaches the apply path), then
 *            optionally corrupts one byte of it:
 *              op = tag klen vlen exp  key[klen % 17]  value[vlen % 65]
 *              tag & 1: PUT, else DELETE;  tag == 0xff: the next two bytes
 *              are an offset, the byte there is flipped after encoding.
 *
 * Properties checked on every input:
 *   1. apply never reads outside the batch (it is copied to an exact-size
 *      heap buffer: ASan), never hits UB (UBSan), never leaks (LSan: the db
 *      is closed each run);
 *   2. apply fails => nothing changed (the db is still empty) and
 *      bad_offset lies inside the batch;
 *   3. apply succeeds => every key of the batch reads as its last record
 *      says (the value of the last PUT, or absent after a DELETE), checked
 *      against a model built by decoding the batch independently;
 *   4. a full scan through a small buffer returns codec records that decode
 *      cleanly, in strictly ascending key order, each equal to a get of its
 *      key, as many as the model has live keys; a TOO_SMALL answer names a
 *      size that then works; a scan-entries budget bounds the key+value
 *      bytes of every call that returns more than one entry;
 *   5. mantis_db_load of the same bytes (which checks framing, not CRCs)
 *      never reads outside them and names a refused record inside them;
 *   6. a random key (mantis_db_random_key) is one whose last record is a
 *      PUT, and there is none when no key is live;
 *   7. mantis_db_apply_verified of the same bytes (framing and limits, not
 *      CRCs) never reads outside them, fails as a whole, and accepts what
 *      mantis_db_apply accepts with the same keys, bytes and puts;
 *   8. mantis_db_add_int on each key agrees with a reference reading of
 *      its value as a counter (ref_parse_int): the sum, or the refusal
 *      with the value kept.
 */
#include <mantis.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static int
key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m != 0 ? memcmp(a, b, m) : 0;
	if (c != 0)
		return c;
	return (al > bl) - (al < bl);
}

/* ---- script mode: encode ops into a valid batch ------------------------- */

struct out {
	uint8_t *buf;
	size_t len, cap;
};

static void
out_append(struct out *o, const mantis_record *r)
{
	size_t need = 0;
	if (mantis_codec_size(r->type, r->key_len, r->value_len, &need) != MANTIS_OK)
		return;
	if (o->len + need > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + need)
			cap *= 2;
		o->buf = realloc(o->buf, cap);
		CHECK(o->buf != NULL);
		o->cap = cap;
	}
	size_t w = 0;
	CHECK(mantis_codec_encode(o->buf + o->len, o->cap - o->len, r, &w) == MANTIS_OK);
	CHECK(w == need);
	o->len += w;
}

static uint8_t *
script_to_batch(const uint8_t *p, size_t n, size_t *len)
{
	struct out o = {0};
	size_t flip_at = SIZE_MAX;
	size_t i = 0;
	while (i + 4 <= n) {
		uint8_t tag = p[i], kl = p[i + 1] % 17, vl = p[i + 2] % 65, ex = p[i + 3];
		i += 4;
		if (tag == 0xff) {
			if (i + 2 <= n)
				flip_at = (size_t)p[i] << 8 | p[i + 1];
			i += 2;
			continue;
		}
		if (kl > n - i)
			kl = (uint8_t)(n - i);
		const uint8_t *key = p + i;
		i += kl;
		if (vl > n - i)
			vl = (uint8_t)(n - i);
		const uint8_t *val = p + i;
		i += vl;
		mantis_record r = {.key = key, .key_len = kl};
		if (tag & 1) {
			r.type = MANTIS_REC_PUT;
			r.value = val;
			r.value_len = vl;
			r.expires_at = ex < 128 ? 0 : ex; /* now = 0: never expired */
		} else {
			r.type = MANTIS_REC_DELETE;
		}
		/* An empty key is a valid record but an invalid batch entry:
		 * keep some, so apply's own validation is exercised too. */
		out_append(&o, &r);
	}
	if (flip_at != SIZE_MAX && o.len != 0)
		o.buf[flip_at % o.len] ^= 0x5a;
	*len = o.len;
	return o.buf;
}

/* ---- checks -------------------------------------------------------------- */

/* The last record of the batch for key r (decoded from the same batch). */
static const mantis_record *
model_last(const mantis_record *recs, size_t n, const uint8_t *key, size_t klen)
{
	for (size_t i = n; i-- > 0;)
		if (key_cmp(recs[i].key, recs[i].key_len, key, klen) == 0)
			return &recs[i];
	return NULL;
}

static void
check_get(mantis_db *db, const mantis_record *last)
{
	size_t vlen = 0;
	uint8_t *buf = malloc(last->value_len + 1);
	CHECK(buf != NULL);
	mantis_status st =
	    mantis_db_get(db, last->key, last->key_len, 0, buf, last->value_len + 1, &vlen);
	if (last->type == MANTIS_REC_DELETE) {
		CHECK(st == MANTIS_NOT_FOUND);
	} else {
		CHECK(st == MANTIS_OK);
		CHECK(vlen == last->value_len);
		CHECK(vlen == 0 || memcmp(buf, last->value, vlen) == 0);
	}
	free(buf);
}

/* Property 6: mantis_db_random_key returns only a key whose last record
 * is a PUT, whole (a short buffer names the size, and the same seed then
 * returns it), and nothing at all when no key is live.  Expiry is judged
 * at 0, as check_get does: nothing has expired. */
static void
check_random_key(mantis_db *db, const mantis_record *recs, size_t n, size_t live,
		 uint64_t seed)
{
	size_t klen = 0;
	mantis_status st = mantis_db_random_key(db, seed, 0, 64, NULL, 0, &klen);
	if (live == 0) {
		CHECK(st == MANTIS_NOT_FOUND);
		return;
	}
	if (st == MANTIS_NOT_FOUND)
		return; /* a sparse index: every draw may miss */
	CHECK(st == MANTIS_BUFFER_TOO_SMALL && klen != 0);
	uint8_t *key = malloc(klen);
	CHECK(key != NULL);
	size_t got = 0;
	CHECK(mantis_db_random_key(db, seed, 0, 64, key, klen, &got) == MANTIS_OK);
	CHECK(got == klen);
	const mantis_record *last = model_last(recs, n, key, klen);
	CHECK(last != NULL && last->type == MANTIS_REC_PUT);
	free(key);
}

/* The reference reading of a counter for property 8, written apart from
 * the core's: strtoll on a NUL-terminated copy, accepted only when the
 * text is exactly what printing the number gives back (so no sign '+',
 * spaces, leading zeros or "-0") and strtoll reported no range error. */
static bool
ref_parse_int(const uint8_t *v, size_t len, int64_t *out)
{
	if (len == 0 || len > 20)
		return false;
	char s[24], back[24];
	memcpy(s, v, len);
	s[len] = 0;
	if (strlen(s) != len)
		return false; /* a NUL inside */
	errno = 0;
	char *end = NULL;
	long long x = strtoll(s, &end, 10);
	if (errno != 0 || end != s + len)
		return false;
	snprintf(back, sizeof(back), "%lld", x);
	if (strcmp(back, s) != 0)
		return false;
	*out = (int64_t)x;
	return true;
}

/* Property 8: mantis_db_add_int on a key whose last record is r agrees
 * with the reference: the sum written and read back as its decimal text,
 * or, for a value that is not a counter or a sum out of range, that
 * outcome with the value unchanged. */
static void
check_add_int(mantis_db *db, const mantis_record *r, int64_t delta)
{
	uint32_t kl = (uint32_t)r->key_len;
	if (kl == 0)
		return;
	int64_t res = 0, cur = 0, sum = 0;
	uint8_t outcome = 0xff;
	size_t done = 0;
	CHECK(mantis_db_add_int(db, r->key, &kl, &delta, 1, 0, &res, &outcome, &done) == MANTIS_OK);
	CHECK(done == 1);
	bool put = r->type == MANTIS_REC_PUT;
	if (put && !ref_parse_int(r->value, r->value_len, &cur)) {
		CHECK(outcome == MANTIS_ADD_NOT_INTEGER);
		check_get(db, r);
		return;
	}
	if (__builtin_add_overflow(cur, delta, &sum)) {
		CHECK(outcome == MANTIS_ADD_OVERFLOW);
		if (put)
			check_get(db, r);
		return;
	}
	CHECK(outcome == MANTIS_ADD_OK && res == sum);
	char want[24];
	int wl = snprintf(want, sizeof(want), "%lld", (long long)sum);
	char got[24];
	size_t gl = 0;
	CHECK(mantis_db_get(db, r->key, r->key_len, 0, got, sizeof(got), &gl) == MANTIS_OK);
	CHECK(gl == (size_t)wl && memcmp(got, want, gl) == 0);
}

/* Reads the mantis_db_scan_entries entry at buf[*off..len) into *r as a
 * PUT record; MANTIS_END at len, MANTIS_TRUNCATED if it is not whole. */
static mantis_status
next_scan_entry(const uint8_t *buf, size_t len, size_t *off, mantis_record *r)
{
	if (*off == len)
		return MANTIS_END;
	const uint8_t *p = buf + *off;
	size_t left = len - *off;
	if (left < MANTIS_SCAN_ENTRY_HEADER_SIZE)
		return MANTIS_TRUNCATED;
	uint64_t f[3] = {0, 0, 0};
	for (int i = 3; i >= 0; i--) {
		f[0] = f[0] << 8 | p[i];
		f[1] = f[1] << 8 | p[4 + i];
	}
	for (int i = 7; i >= 0; i--)
		f[2] = f[2] << 8 | p[8 + i];
	if (left - MANTIS_SCAN_ENTRY_HEADER_SIZE < f[0] + f[1])
		return MANTIS_TRUNCATED;
	*r = (mantis_record){.type = MANTIS_REC_PUT,
			     .expires_at = f[2],
			     .key = p + MANTIS_SCAN_ENTRY_HEADER_SIZE,
			     .key_len = (uint32_t)f[0],
			     .value = p + MANTIS_SCAN_ENTRY_HEADER_SIZE + f[0],
			     .value_len = (uint32_t)f[1]};
	*off += MANTIS_SCAN_ENTRY_HEADER_SIZE + f[0] + f[1];
	return MANTIS_OK;
}

/* The scan calls scan_all pages with. */
enum scan_mode { SCAN_RECORDS, SCAN_ENTRIES, SCAN_ENTRIES_RELAXED };

/* Pages through the whole map with buffers of cap bytes (grown when the
 * first record does not fit), in codec records or in the scan-entry
 * framing (with a key+value budget and an entry cap, 0 = none; atomic or
 * relaxed, the same on a map nothing else writes), checking every record
 * against the model and every call's stop against its bounds. */
static size_t
scan_all(mantis_db *db, enum scan_mode mode, size_t cap, size_t budget, size_t max_count,
	 const mantis_record *recs, size_t nrecs)
{
	bool entries = mode != SCAN_RECORDS;
	uint8_t *buf = cap ? malloc(cap) : NULL;
	uint8_t *start = NULL;
	size_t start_len = 0, total = 0;
	bool excl = false;
	/* The previous call, when it stopped with entries left: its bytes,
	 * key+value bytes, count and capacity.  Its stop must be explained by
	 * one of its bounds given the entry this call returns first. */
	bool prev_stopped = false;
	size_t prev_len = 0, prev_payload = 0, prev_count = 0, prev_cap = 0;
	for (int rounds = 0;; rounds++) {
		CHECK(rounds < 100000);
		size_t len = 0, count = 0;
		bool done = false;
		mantis_status st;
		switch (mode) {
		case SCAN_RECORDS:
			st = mantis_db_scan(db, start, start_len, excl, NULL, 0, 0, buf, cap, &len,
					    &count, &done);
			break;
		case SCAN_ENTRIES:
			st = mantis_db_scan_entries(db, start, start_len, excl, NULL, 0, 0, buf, cap,
						    budget, max_count, &len, &count, &done);
			break;
		default:
			st = mantis_db_scan_entries_relaxed(db, start, start_len, excl, NULL, 0, 0,
							    buf, cap, budget, max_count, &len,
							    &count, &done);
		}
		if (st == MANTIS_BUFFER_TOO_SMALL) {
			CHECK(count == 0 && len > cap);
			cap = len;
			free(buf);
			buf = malloc(cap);
			CHECK(buf != NULL);
			continue;
		}
		CHECK(st == MANTIS_OK && len <= cap);
		CHECK(count > 0 || done);
		mantis_codec_iter it;
		mantis_record r;
		size_t seen = 0, payload = 0;
		size_t off = 0;
		mantis_codec_iter_init(&it, buf, len);
		while ((st = entries ? next_scan_entry(buf, len, &off, &r)
				     : mantis_codec_iter_next(&it, &r)) == MANTIS_OK) {
			CHECK(r.type == MANTIS_REC_PUT && r.key_len > 0);
			if (start != NULL)
				CHECK(key_cmp(start, start_len, r.key, r.key_len) < 0);
			const mantis_record *last = model_last(recs, nrecs, r.key, r.key_len);
			CHECK(last != NULL && last->type == MANTIS_REC_PUT);
			CHECK(r.value_len == last->value_len);
			CHECK(r.value_len == 0 || memcmp(r.value, last->value, r.value_len) == 0);
			CHECK(r.expires_at == last->expires_at);
			free(start);
			start = malloc(r.key_len);
			CHECK(start != NULL);
			memcpy(start, r.key, r.key_len);
			start_len = r.key_len;
			excl = true;
			if (entries && seen == 0 && prev_stopped) {
				/* The previous call did not stop early: this entry
				 * would have passed its cap, count or budget. */
				size_t size = MANTIS_SCAN_ENTRY_HEADER_SIZE + r.key_len + r.value_len;
				CHECK(prev_len + size > prev_cap ||
				      (max_count != 0 && prev_count >= max_count) ||
				      (budget != 0 && prev_payload + r.key_len + r.value_len > budget));
			}
			seen++;
			payload += r.key_len + r.value_len;
		}
		CHECK(st == MANTIS_END && seen == count);
		/* A budget bounds the key+value bytes of all but a lone entry;
		 * max_count bounds the entries. */
		CHECK(!entries || budget == 0 || seen <= 1 || payload <= budget);
		CHECK(!entries || max_count == 0 || seen <= max_count);
		total += seen;
		if (done)
			break;
		prev_stopped = true;
		prev_len = len;
		prev_payload = payload;
		prev_count = count;
		prev_cap = cap;
	}
	free(start);
	free(buf);
	return total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t mode = data[0];
	size_t scan_cap = data[1];
	size_t scan_budget = (size_t)(mode >> 2) * 4;
	size_t scan_max = scan_cap % 4; /* entry cap of scan_entries, 0 = none */
	size_t len = 0;
	uint8_t *batch;
	if (mode & 1) {
		batch = script_to_batch(data + 2, size - 2, &len);
	} else {
		len = size - 2;
		batch = len ? malloc(len) : NULL;
		if (len)
			memcpy(batch, data + 2, len);
	}

	mantis_db_options opts = {0};
	if (mode & 2) {
		opts.max_key_size = 8;
		opts.max_value_size = 32;
	}
	mantis_db *db = NULL;
	CHECK(mantis_db_open(&opts, &db) == MANTIS_OK);
	size_t bad = SIZE_MAX;
	mantis_status st = mantis_db_apply(db, batch, len, &bad);
	mantis_db_stats stats;
	CHECK(mantis_db_stats_get(db, &stats) == MANTIS_OK);

	/* The verified variant on the same bytes: memory-safe whatever they
	 * hold, all or nothing, and it accepts what mantis_db_apply accepts
	 * (it checks a subset) with the same result. */
	mantis_db *vdb = NULL;
	CHECK(mantis_db_open(&opts, &vdb) == MANTIS_OK);
	size_t vbad = SIZE_MAX;
	mantis_status vst = mantis_db_apply_verified(vdb, batch, len, &vbad);
	mantis_db_stats vstats;
	CHECK(mantis_db_stats_get(vdb, &vstats) == MANTIS_OK);
	if (vst != MANTIS_OK) /* a batch over the size limit has no bad record */
		CHECK(vstats.keys == 0 && vstats.puts == 0 && vstats.deletes == 0 &&
		      (vbad < len || len > MANTIS_MAX_BATCH_SIZE));
	if (st == MANTIS_OK)
		CHECK(vst == MANTIS_OK && vstats.keys == stats.keys &&
		      vstats.live_bytes == stats.live_bytes && vstats.puts == stats.puts);
	mantis_db_close(vdb);

	if (st != MANTIS_OK) {
		/* Property 2: rejected as a whole. */
		CHECK(st != MANTIS_NOMEM);
		CHECK(stats.keys == 0 && stats.puts == 0 && stats.deletes == 0);
		CHECK(bad < len);
		CHECK(scan_all(db, SCAN_RECORDS, scan_cap, 0, 0, NULL, 0) == 0);
		CHECK(scan_all(db, SCAN_ENTRIES, scan_cap, scan_budget, scan_max, NULL, 0) == 0);
		CHECK(scan_all(db, SCAN_ENTRIES_RELAXED, scan_cap, scan_budget, scan_max, NULL, 0) ==
		      0);
	} else {
		/* Property 3: decode the batch independently, replay as a model. */
		size_t n = 0, capr = 16;
		mantis_record *recs = malloc(capr * sizeof(*recs));
		CHECK(recs != NULL);
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, batch, len);
		mantis_record r;
		while ((st = mantis_codec_iter_next(&it, &r)) == MANTIS_OK) {
			if (n == capr) {
				capr *= 2;
				recs = realloc(recs, capr * sizeof(*recs));
				CHECK(recs != NULL);
			}
			recs[n++] = r;
		}
		CHECK(st == MANTIS_END);
		CHECK(stats.puts + stats.deletes == n);
		size_t live = 0;
		for (size_t i = 0; i < n; i++) {
			const mantis_record *last = model_last(recs, n, recs[i].key, recs[i].key_len);
			if (last != &recs[i])
				continue; /* judge each key once, by its last record */
			check_get(db, last);
			live += last->type == MANTIS_REC_PUT;
		}
		CHECK(stats.keys == live);
		/* Property 4. */
		CHECK(scan_all(db, SCAN_RECORDS, scan_cap, 0, 0, recs, n) == live);
		CHECK(scan_all(db, SCAN_ENTRIES, scan_cap, scan_budget, scan_max, recs, n) == live);
		CHECK(scan_all(db, SCAN_ENTRIES_RELAXED, scan_cap, scan_budget, scan_max, recs, n) ==
		      live);
		/* Property 6. */
		check_random_key(db, recs, n, live, len);
		/* Property 8. */
		for (size_t i = 0; i < n; i++)
			if (model_last(recs, n, recs[i].key, recs[i].key_len) == &recs[i])
				check_add_int(db, &recs[i], (int64_t)(len * 0x9e3779b97f4a7c15ull) >> (i % 64));
		free(recs);
	}
	mantis_db_close(db);

	/* Property 5. */
	CHECK(mantis_db_open(&opts, &db) == MANTIS_OK);
	bad = SIZE_MAX;
	st = mantis_db_load(db, batch, len, 1, &bad);
	CHECK(st == MANTIS_OK || bad < len);
	mantis_db_close(db);
	free(batch);
	return 0;
}
