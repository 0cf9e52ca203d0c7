/*
 * test_skiplist.c -- cmocka tests of the ordered index (src/skiplist.c):
 * every operation and edge, allocation failure at every allocation point,
 * a seeded model test against a sorted-array reference, and the memory
 * test (insert many keys, delete them all, bytes return).
 *
 * Model test knobs (environment): MANTIS_MODEL_OPS (default 2,000,000, or
 * 300,000 under a sanitizer) and MANTIS_MODEL_SEED (default fixed; the seed
 * is printed so a failure can be replayed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mantis.h>

#include "alloc.h"
#include "skiplist.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

static int64_t
live_bytes(void)
{
	mantis_alloc_stats st;
	mantis_alloc_get_stats(&st);
	return st.bytes_in_use;
}

static mantis_skiplist *
new_sl(void)
{
	mantis_skiplist *sl = NULL;
	assert_int_equal(mantis_skiplist_new(&sl), MANTIS_OK);
	assert_non_null(sl);
	return sl;
}

static mantis_status
put_s(mantis_skiplist *sl, const char *k, const char *v, uint64_t seq)
{
	return mantis_skiplist_put(sl, k, strlen(k), v, strlen(v), seq, 0);
}

static void
assert_get(mantis_skiplist *sl, const void *k, size_t klen, const char *want)
{
	char buf[256];
	size_t n = 0;
	mantis_status st = mantis_skiplist_get(sl, k, klen, 0, buf, sizeof(buf), &n, NULL, NULL);
	if (want == NULL) {
		assert_int_equal(st, MANTIS_NOT_FOUND);
		return;
	}
	assert_int_equal(st, MANTIS_OK);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

/* Collects scanned keys as a '|'-joined string for easy comparison. */
struct collect {
	char out[4096];
	size_t len;
	size_t max;
};

static bool
collect_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct collect *c = arg;
	if (c->len != 0)
		c->out[c->len++] = '|';
	for (size_t i = 0; i < e->key_len; i++)
		c->out[c->len++] = e->key[i] ? (char)e->key[i] : '0';
	c->out[c->len] = 0;
	return c->max == 0 || --c->max > 0;
}

static const char *
scan_str(mantis_skiplist *sl, const char *start, bool excl, uint64_t now, size_t max)
{
	static struct collect c;
	memset(&c, 0, sizeof(c));
	c.max = max;
	size_t visited = 0;
	assert_int_equal(mantis_skiplist_scan(sl, start, start ? strlen(start) : 0, excl,
					      now, collect_cb, &c, &visited),
			 MANTIS_OK);
	return c.out;
}

static void
test_bad_args(void **state)
{
	(void)state;
	char buf[8];
	size_t n;
	assert_int_equal(mantis_skiplist_new(NULL), MANTIS_INVALID);
	mantis_skiplist_free(NULL);
	mantis_skiplist_iter_free(NULL);
	mantis_skiplist *sl = new_sl();
	assert_int_equal(mantis_skiplist_put(NULL, "k", 1, "v", 1, 0, 0), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_put(sl, NULL, 1, "v", 1, 0, 0), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_put(sl, "k", 0, "v", 1, 0, 0), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_put(sl, "k", 1, NULL, 1, 0, 0), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_put(sl, "k", MANTIS_MAX_KEY_SIZE + 1, "v", 1, 0, 0),
			 MANTIS_TOO_LARGE);
	/* The length is checked before the value is read. */
	assert_int_equal(mantis_skiplist_put(sl, "k", 1, "v", (size_t)MANTIS_MAX_VALUE_SIZE + 1, 0, 0),
			 MANTIS_TOO_LARGE);
	assert_int_equal(mantis_skiplist_get(NULL, "k", 1, 0, buf, 8, &n, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_get(sl, "k", 1, 0, buf, 8, NULL, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_get(sl, "k", 1, 0, NULL, 8, &n, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_get(sl, NULL, 1, 0, buf, 8, &n, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_get(sl, "k", 0, 0, buf, 8, &n, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_delete(NULL, "k", 1), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_delete(sl, "k", 0), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_delete(sl, "k", MANTIS_MAX_KEY_SIZE + 1), MANTIS_TOO_LARGE);
	assert_int_equal(mantis_skiplist_get_view(sl, "k", 1, 0, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_scan(sl, NULL, 0, false, 0, NULL, NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_scan(sl, NULL, 3, false, 0, collect_cb, NULL, NULL),
			 MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_iter_new(NULL, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_iter_seek(NULL, "k", 1), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_stats_get(sl, NULL), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_quiesce(NULL), MANTIS_INVALID);
	mantis_skiplist_stats st;
	assert_int_equal(mantis_skiplist_stats_get(sl, &st), MANTIS_OK);
	assert_int_equal(st.keys, 0);
	mantis_skiplist_free(sl);
}

static void
noop_view(void *arg, const mantis_skiplist_entry *e)
{
	(void)arg;
	(void)e;
}

static void
test_empty(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	assert_get(sl, "a", 1, NULL);
	assert_int_equal(mantis_skiplist_delete(sl, "a", 1), MANTIS_NOT_FOUND);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "");
	assert_string_equal(scan_str(sl, "a", true, 0, 0), "");
	mantis_skiplist_iter *it;
	assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_OK);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, noop_view, NULL),
			 MANTIS_END);
	mantis_skiplist_iter_free(it);
	mantis_skiplist_free(sl);
}

static void
view_cb(void *arg, const mantis_skiplist_entry *e)
{
	mantis_skiplist_entry *out = arg;
	*out = *e;
	/* Copy out while the view is valid. */
	static char kbuf[MANTIS_MAX_KEY_SIZE], vbuf[64];
	memcpy(kbuf, e->key, e->key_len);
	memcpy(vbuf, e->value, e->value_len);
	out->key = (const uint8_t *)kbuf;
	out->value = (const uint8_t *)vbuf;
}

static void
test_one_key(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	assert_int_equal(mantis_skiplist_put(sl, "key", 3, "value", 5, 7, 1000), MANTIS_OK);
	char buf[16];
	size_t n = 0;
	uint64_t seq = 0, exp = 0;
	assert_int_equal(mantis_skiplist_get(sl, "key", 3, 0, buf, sizeof(buf), &n, &seq, &exp), MANTIS_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "value", 5);
	assert_int_equal(seq, 7);
	assert_int_equal(exp, 1000);
	/* Too small: size reported, buffer untouched. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(mantis_skiplist_get(sl, "key", 3, 0, buf, 4, &n, NULL, NULL),
			 MANTIS_BUFFER_TOO_SMALL);
	assert_int_equal(n, 5);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(mantis_skiplist_get(sl, "key", 3, 0, NULL, 0, &n, NULL, NULL),
			 MANTIS_BUFFER_TOO_SMALL);
	/* Prefix and extension of the key are different keys. */
	assert_get(sl, "ke", 2, NULL);
	assert_get(sl, "keyy", 4, NULL);
	mantis_skiplist_entry e;
	memset(&e, 0, sizeof(e));
	assert_int_equal(mantis_skiplist_get_view(sl, "key", 3, 0, view_cb, &e), MANTIS_OK);
	assert_int_equal(e.value_len, 5);
	assert_memory_equal(e.value, "value", 5);
	assert_int_equal(e.key_len, 3);
	assert_int_equal(e.seq, 7);
	assert_int_equal(mantis_skiplist_get_view(sl, "nope", 4, 0, view_cb, &e), MANTIS_NOT_FOUND);
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.bytes, 8);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "key");
	/* Empty value is a value, not absence. */
	assert_int_equal(mantis_skiplist_put(sl, "e", 1, NULL, 0, 1, 0), MANTIS_OK);
	assert_get(sl, "e", 1, "");
	mantis_skiplist_free(sl);
}

static void
test_duplicate_insert_updates(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	assert_int_equal(put_s(sl, "k", "v1", 1), MANTIS_OK);
	assert_int_equal(put_s(sl, "k", "value2", 2), MANTIS_OK);
	assert_get(sl, "k", 1, "value2");
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.bytes, 7);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "k");
	uint64_t seq;
	size_t n;
	char buf[8];
	mantis_skiplist_get(sl, "k", 1, 0, buf, 8, &n, &seq, NULL);
	assert_int_equal(seq, 2);
	mantis_skiplist_free(sl);
}

static void
test_delete(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	assert_int_equal(mantis_skiplist_delete(sl, "a", 1), MANTIS_NOT_FOUND);
	put_s(sl, "a", "1", 1);
	put_s(sl, "b", "2", 2);
	put_s(sl, "c", "3", 3);
	assert_int_equal(mantis_skiplist_delete(sl, "b", 1), MANTIS_OK);
	assert_int_equal(mantis_skiplist_delete(sl, "b", 1), MANTIS_NOT_FOUND);
	assert_get(sl, "b", 1, NULL);
	assert_get(sl, "a", 1, "1");
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "a|c");
	/* Re-insert after delete is a fresh key. */
	put_s(sl, "b", "22", 4);
	assert_get(sl, "b", 1, "22");
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "a|b|c");
	assert_int_equal(mantis_skiplist_delete(sl, "a", 1), MANTIS_OK);
	assert_int_equal(mantis_skiplist_delete(sl, "b", 1), MANTIS_OK);
	assert_int_equal(mantis_skiplist_delete(sl, "c", 1), MANTIS_OK);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "");
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.bytes, 0);
	mantis_skiplist_free(sl);
}

static void
test_seek_and_scan(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	const char *keys[] = {"d", "b", "f", "a", "e", "c"};
	for (int i = 0; i < 6; i++)
		put_s(sl, keys[i], "v", (uint64_t)i);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "a|b|c|d|e|f");
	assert_string_equal(scan_str(sl, NULL, true, 0, 0), "a|b|c|d|e|f");
	assert_string_equal(scan_str(sl, "c", false, 0, 0), "c|d|e|f");
	assert_string_equal(scan_str(sl, "c", true, 0, 0), "d|e|f");
	assert_string_equal(scan_str(sl, "cc", false, 0, 0), "d|e|f");
	assert_string_equal(scan_str(sl, "b", false, 0, 2), "b|c");
	/* Seek past the end. */
	assert_string_equal(scan_str(sl, "g", false, 0, 0), "");
	assert_string_equal(scan_str(sl, "f", true, 0, 0), "");
	/* Iterator: position survives deletes and inserts between calls. */
	mantis_skiplist_iter *it;
	assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_OK);
	mantis_skiplist_entry e;
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_memory_equal(e.key, "a", 1);
	mantis_skiplist_delete(sl, "b", 1);
	put_s(sl, "bb", "v", 9);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_int_equal(e.key_len, 2);
	assert_memory_equal(e.key, "bb", 2);
	assert_int_equal(mantis_skiplist_iter_seek(it, "e", 1), MANTIS_OK);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_memory_equal(e.key, "e", 1);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_memory_equal(e.key, "f", 1);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_END);
	assert_int_equal(mantis_skiplist_iter_seek(it, "z", 1), MANTIS_OK);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_END);
	assert_int_equal(mantis_skiplist_iter_seek(it, NULL, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_memory_equal(e.key, "a", 1);
	mantis_skiplist_iter_free(it);
	mantis_skiplist_free(sl);
}

struct order_seen {
	uint8_t key[8][16];
	size_t len[8];
	int n;
};

static bool
order_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct order_seen *o = arg;
	if (o->n < 8 && e->key_len <= 16) {
		memcpy(o->key[o->n], e->key, e->key_len);
		o->len[o->n] = e->key_len;
	}
	o->n++;
	return true;
}

static void
test_binary_keys(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	/* memcmp order, shorter first on a common prefix. */
	assert_int_equal(mantis_skiplist_put(sl, "a\0b", 3, "3", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "a\0", 2, "2", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "a", 1, "1", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "\0", 1, "0", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "\xff", 1, "f", 1, 1, 0), MANTIS_OK);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "0|a|a0|a0b|\xff");
	assert_get(sl, "a\0", 2, "2");
	assert_get(sl, "a\0b", 3, "3");
	assert_get(sl, "\0", 1, "0");
	assert_get(sl, "\0\0", 2, NULL);
	assert_int_equal(mantis_skiplist_delete(sl, "a\0", 2), MANTIS_OK);
	assert_get(sl, "a", 1, "1");
	assert_get(sl, "a\0b", 3, "3");
	mantis_skiplist_free(sl);

	/* Bytes >= 0x80 order as unsigned, inside the 8-byte compare blocks
	 * and in the tail: regression guard for the inlined comparison. */
	sl = new_sl();
	const char *k[] = {"\x7f\xff\xff\xff\xff\xff\xff\xff", "\x80\0\0\0\0\0\0\0",
			   "\x80\0\0\0\0\0\0\0\x01", "\x80\0\0\0\0\0\0\x01",
			   "\x80\0\0\0\0\0\0\x01\x7f\xff\xff\xff\xff\xff\xff\xff",
			   "\x80\0\0\0\0\0\0\x01\x80"};
	const size_t kl[] = {8, 8, 9, 8, 16, 9};
	for (int i = 5; i >= 0; i--)
		assert_int_equal(mantis_skiplist_put(sl, k[i], kl[i], "v", 1, 1, 0), MANTIS_OK);
	struct order_seen o = {0};
	assert_int_equal(mantis_skiplist_scan(sl, NULL, 0, false, 0, order_cb, &o, NULL), MANTIS_OK);
	assert_int_equal(o.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(o.len[i], kl[i]);
		assert_memory_equal(o.key[i], k[i], kl[i]);
	}
	mantis_skiplist_free(sl);
}

static void
test_max_length_keys(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	size_t n = MANTIS_MAX_KEY_SIZE;
	uint8_t *k1 = malloc(n + 1), *k2 = malloc(n + 1);
	memset(k1, 0x5a, n + 1);
	memcpy(k2, k1, n + 1);
	k2[n - 1] = 0x5b;
	assert_int_equal(mantis_skiplist_put(sl, k2, n, "2", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, k1, n, "1", 1, 1, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, k1, n + 1, "x", 1, 1, 0), MANTIS_TOO_LARGE);
	assert_get(sl, k1, n, "1");
	assert_get(sl, k2, n, "2");
	assert_get(sl, k1, n - 1, NULL);
	struct collect c;
	memset(&c, 0, sizeof(c));
	size_t visited = 0;
	mantis_skiplist_iter *it;
	assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_OK);
	mantis_skiplist_entry e;
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_int_equal(e.key_len, n);
	assert_int_equal(e.value_len, 1);
	assert_memory_equal(e.value, "1", 1);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_OK);
	assert_memory_equal(e.value, "2", 1);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, view_cb, &e), MANTIS_END);
	mantis_skiplist_iter_free(it);
	(void)c;
	(void)visited;
	assert_int_equal(mantis_skiplist_delete(sl, k1, n), MANTIS_OK);
	assert_get(sl, k1, n, NULL);
	free(k1);
	free(k2);
	mantis_skiplist_free(sl);
}

/* Scan callback: records the first entry's one-byte value and stops. */
static bool
first_value_cb(void *arg, const mantis_skiplist_entry *e)
{
	*(char *)arg = e->value_len == 1 ? (char)e->value[0] : '?';
	return false;
}

/*
 * Starts longer than any key can be (a cursor after a maximum-length key is
 * that key plus a byte) position as memcmp order says in scan, iterator
 * seek and sweep, instead of failing: the server's listing cursor relies
 * on it.
 */
static void
test_long_start_positions(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	size_t n = MANTIS_MAX_KEY_SIZE, ln = n + 100;
	uint8_t *k1 = malloc(n), *k2 = malloc(n), *start = malloc(ln);
	memset(k1, 0x5a, n);
	memcpy(k2, k1, n);
	k2[n - 1] = 0x5b; /* k1 < k2 < "\x5c" */
	assert_int_equal(mantis_skiplist_put(sl, k1, n, "1", 1, 1, 5), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, k2, n, "2", 1, 2, 5), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "\x5c", 1, "3", 1, 3, 5), MANTIS_OK);
	struct {
		const uint8_t *prefix; /* the start's first n bytes; NULL = fill */
		uint8_t fill, tail;
		char want; /* first value at or after the start, 0 = none */
	} cases[] = {
		{k1, 0, 0x00, '2'}, /* k1 plus bytes: just after k1 */
		{k2, 0, 0xff, '3'}, /* k2 plus bytes: just after k2 */
		{NULL, 0x00, 0x00, '1'},
		{NULL, 0x60, 0x60, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].prefix != NULL)
			memcpy(start, cases[i].prefix, n);
		else
			memset(start, cases[i].fill, n);
		memset(start + n, cases[i].tail, ln - n);
		for (int excl = 0; excl < 2; excl++) {
			char got = 0;
			assert_int_equal(mantis_skiplist_scan(sl, start, ln, excl != 0, 0,
							      first_value_cb, &got, NULL),
					 MANTIS_OK);
			assert_int_equal(got, cases[i].want);
		}
		mantis_skiplist_iter *it;
		assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_OK);
		assert_int_equal(mantis_skiplist_iter_seek(it, start, ln), MANTIS_OK);
		mantis_skiplist_entry e;
		mantis_status st = mantis_skiplist_iter_next(it, 0, view_cb, &e);
		if (cases[i].want == 0) {
			assert_int_equal(st, MANTIS_END);
		} else {
			assert_int_equal(st, MANTIS_OK);
			assert_int_equal(e.value[0], cases[i].want);
		}
		mantis_skiplist_iter_free(it);
	}
	/* Sweep from just after k2 reclaims only the key after it; from
	 * before everything, the other two. */
	uint8_t next[8];
	size_t next_len = 0, reclaimed = 0;
	memcpy(start, k2, n);
	memset(start + n, 0xff, ln - n);
	assert_int_equal(mantis_skiplist_sweep(sl, 10, start, ln, 100, next, sizeof(next),
					       &next_len, &reclaimed),
			 MANTIS_OK);
	assert_int_equal(reclaimed, 1);
	memset(start, 0x00, ln);
	assert_int_equal(mantis_skiplist_sweep(sl, 10, start, ln, 100, next, sizeof(next),
					       &next_len, &reclaimed),
			 MANTIS_OK);
	assert_int_equal(reclaimed, 2);
	free(k1);
	free(k2);
	free(start);
	mantis_skiplist_free(sl);
}

static void
test_expiry(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	assert_int_equal(mantis_skiplist_put(sl, "t", 1, "v", 1, 1, 100), MANTIS_OK);
	assert_int_equal(mantis_skiplist_put(sl, "u", 1, "v", 1, 1, 0), MANTIS_OK);
	char buf[4];
	size_t n;
	assert_int_equal(mantis_skiplist_get(sl, "t", 1, 99, buf, 4, &n, NULL, NULL), MANTIS_OK);
	assert_int_equal(mantis_skiplist_get(sl, "t", 1, 100, buf, 4, &n, NULL, NULL), MANTIS_NOT_FOUND);
	assert_int_equal(mantis_skiplist_get(sl, "u", 1, UINT64_MAX, buf, 4, &n, NULL, NULL), MANTIS_OK);
	assert_string_equal(scan_str(sl, NULL, false, 99, 0), "t|u");
	assert_string_equal(scan_str(sl, NULL, false, 100, 0), "u");
	/* Expired but present: counted, and delete reports it was there. */
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(mantis_skiplist_delete(sl, "t", 1), MANTIS_OK);
	mantis_skiplist_free(sl);
}

/*
 * Allocation failure at every allocation point of new, insert (record,
 * node, index table), update (record), iterator: NOMEM, nothing changed,
 * not a byte leaked, and the structure still works.
 */
static void
test_alloc_failure(void **state)
{
	(void)state;
	int64_t before = live_bytes();
	for (int64_t k = 0;; k++) {
		mantis_skiplist *sl = NULL;
		mantis_alloc_fail_after(k);
		mantis_status st = mantis_skiplist_new(&sl);
		mantis_alloc_fail_after(-1);
		if (st == MANTIS_OK) {
			mantis_skiplist_free(sl);
			break;
		}
		assert_int_equal(st, MANTIS_NOMEM);
		assert_null(sl);
		assert_int_equal(live_bytes(), before);
	}
	mantis_skiplist *sl = new_sl();
	char key[16];
	int failures = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "key%05d", i);
		for (int64_t k = 0;; k++) {
			int64_t b0 = live_bytes();
			mantis_alloc_fail_after(k);
			mantis_status st = mantis_skiplist_put(sl, key, strlen(key), "value", 5, (uint64_t)i, 0);
			mantis_alloc_fail_after(-1);
			if (st == MANTIS_OK)
				break;
			failures++;
			assert_int_equal(st, MANTIS_NOMEM);
			assert_int_equal(live_bytes(), b0);
			assert_get(sl, key, strlen(key), NULL);
		}
		/* Update of an existing key: only its record must be allocated
		 * (put builds a node speculatively; failing that is no error
		 * for an update). */
		int64_t b0 = live_bytes();
		mantis_alloc_fail_after(0);
		assert_int_equal(mantis_skiplist_put(sl, key, strlen(key), "other", 5, 0, 0), MANTIS_NOMEM);
		mantis_alloc_fail_after(-1);
		assert_int_equal(live_bytes(), b0);
		assert_get(sl, key, strlen(key), "value");
		mantis_alloc_fail_after(1);
		assert_int_equal(mantis_skiplist_put(sl, key, strlen(key), "value", 5, (uint64_t)i, 0),
				 MANTIS_OK);
		mantis_alloc_fail_after(-1);
		assert_get(sl, key, strlen(key), "value");
	}
	/* rec, node and the first index table of a shard all failed at least
	 * once per fresh shard. */
	assert_true(failures >= 300 * 2);
	mantis_skiplist_stats st;
	mantis_skiplist_stats_get(sl, &st);
	assert_int_equal(st.keys, 300);
	/* Iterator allocations. */
	mantis_skiplist_iter *it = NULL;
	mantis_alloc_fail_after(0);
	assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_NOMEM);
	mantis_alloc_fail_after(-1);
	assert_int_equal(mantis_skiplist_iter_new(sl, &it), MANTIS_OK);
	mantis_alloc_fail_after(0);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, noop_view, NULL), MANTIS_NOMEM);
	mantis_alloc_fail_after(-1);
	assert_int_equal(mantis_skiplist_iter_next(it, 0, noop_view, NULL), MANTIS_OK);
	mantis_skiplist_iter_free(it);
	/* Deletes never allocate; a failing shrink keeps the bigger table. */
	mantis_alloc_fail_after(0);
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "key%05d", i);
		assert_int_equal(mantis_skiplist_delete(sl, key, strlen(key)), MANTIS_OK);
	}
	mantis_alloc_fail_after(-1);
	assert_string_equal(scan_str(sl, NULL, false, 0, 0), "");
	mantis_skiplist_free(sl);
	assert_int_equal(live_bytes(), before);
}

/* ------------------------------------------------------------------------ */
/* A long scan hands over to runs only at a visible node                    */
/* ------------------------------------------------------------------------ */

/* Puts key "%04d" of i until its node's height is in [lo, hi]. */
static void
put_height(mantis_skiplist *sl, int i, uint32_t lo, uint32_t hi)
{
	char k[8];
	snprintf(k, sizeof(k), "%04d", i);
	for (;;) {
		assert_int_equal(mantis_skiplist_put(sl, k, 4, "v", 1, 1, 0), MANTIS_OK);
		uint32_t h = sl_test_height(sl, k, 4);
		if (h >= lo && h <= hi)
			return;
		assert_int_equal(mantis_skiplist_delete(sl, k, 4), MANTIS_OK);
	}
}

#define HO_START 36			/* where the scan starts */
#define HO_N (HO_START + SL_RUN_AFTER)	/* the node after its last plain entry */
#define HO_X (HO_N + 10)		/* n's level-2 successor, then deleted */
#define HO_KEYS (HO_X + 90)

static bool
digits_cb(void *arg, const mantis_skiplist_entry *e)
{
	char k[8] = {0};
	assert_int_equal(e->key_len, 4);
	memcpy(k, e->key, 4);
	int i = atoi(k);
	assert_true(i >= 0 && i < HO_KEYS);
	((bool *)arg)[i] = true;
	return true;
}

/*
 * skiplist.c, "Runs": a scan hands over to runs at its next tall node, and
 * reads that node's level-2 successor.  A PENDING node (an insert stalled
 * after its level-0 splice) or a DEAD one already snipped from its upper
 * levels (a delete in progress) is on level 0 only, and its next[2] can
 * lead to a node x unlinked before the scan began: a tall t and a key
 * inserted after x, present throughout the scan, were then skipped.  The
 * list is built so that the scan's last plain entry is right before that
 * node n, whose next[2] is x, with no tall node between; the stalled call
 * holds its epoch section, so x stays allocated.
 */
static void
test_runs_handover_hidden(void **state)
{
	(void)state;
	char n_key[8], x_key[8];
	snprintf(n_key, sizeof(n_key), "%04d", HO_N);
	snprintf(x_key, sizeof(x_key), "%04d", HO_X);
	for (int pending = 0; pending < 2; pending++) {
		mantis_skiplist *sl = new_sl();
		for (int i = 0; i < HO_KEYS; i++) {
			if (i > HO_X && i < HO_X + 10)
				continue; /* x's successor is HO_X + 10 */
			if (i == HO_N || i == HO_X)
				put_height(sl, i, 3, 3); /* n and x: on level 2 */
			else if (i >= HO_START && i < HO_X)
				put_height(sl, i, 1, SL_RUN_LEVEL); /* no other anchor */
			else
				put_height(sl, i, 1, SL_MAX_HEIGHT);
		}
		struct sl_stalled st;
		if (pending) {
			assert_int_equal(mantis_skiplist_delete(sl, n_key, 4), MANTIS_OK);
			assert_true(sl_test_insert_stalled(sl, n_key, 4, 3, &st));
		} else {
			assert_true(sl_test_delete_stalled(sl, n_key, 4, &st));
		}
		/* The state the test is about: n's level-2 successor is x. */
		const struct sl_node *x = (const struct sl_node *)(st.node->next[2] & ~SL_MARK);
		assert_int_equal(x->klen, 4);
		assert_memory_equal(sl_node_key(x), x_key, 4);
		assert_int_equal(mantis_skiplist_delete(sl, x_key, 4), MANTIS_OK);
		put_height(sl, HO_X + 2, 3, SL_MAX_HEIGHT); /* t */
		put_height(sl, HO_X + 5, 1, 1);

		bool seen[HO_KEYS] = {false};
		char start[8];
		snprintf(start, sizeof(start), "%04d", HO_START);
		assert_int_equal(mantis_skiplist_scan(sl, start, 4, false, 0, digits_cb, seen, NULL),
				 MANTIS_OK);
		for (int i = HO_START; i < HO_KEYS; i++) {
			bool gap = i > HO_X && i < HO_X + 10 && i != HO_X + 2 && i != HO_X + 5;
			bool want = i != HO_N && i != HO_X && !gap;
			if (seen[i] != want)
				fail_msg("%s n: key %04d %s", pending ? "PENDING" : "DEAD", i,
					 want ? "missed" : "returned");
		}
		sl_test_stalled_end(sl, &st);
		mantis_skiplist_free(sl);
	}
}

/* ------------------------------------------------------------------------ */
/* Model test: sorted array reference                                       */
/* ------------------------------------------------------------------------ */

#define MODEL_KEYS 600
#ifdef SANITIZED
#define MODEL_OPS_DEFAULT 300000
#else
#define MODEL_OPS_DEFAULT 2000000
#endif
/* Every step checks the key it touched and its neighbourhood, then compares
 * the whole map (a full scan, and the key and byte counts) with the
 * reference: with MODEL_KEYS keys that is a few hundred entries, so the
 * 2M-step model costs ~12 s instead of ~3 s, and a write that disturbs a
 * distant key fails at the step that made it. */

struct ref_ent {
	uint8_t key[12];
	uint32_t klen;
	uint8_t val[48];
	uint32_t vlen;
	uint64_t seq;
	uint64_t exp;
};

static struct ref_ent ref[MODEL_KEYS];
static size_t ref_n;

static int
ref_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = memcmp(a, b, m);
	if (c != 0)
		return c;
	return (al > bl) - (al < bl);
}

/* Index of the first entry >= key; *found when equal. */
static size_t
ref_lower(const uint8_t *k, size_t kl, bool *found)
{
	size_t lo = 0, hi = ref_n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ref_cmp(ref[mid].key, ref[mid].klen, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < ref_n && ref_cmp(ref[lo].key, ref[lo].klen, k, kl) == 0;
	return lo;
}

static uint64_t rng = 0x243f6a8885a308d3ULL;
static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct model_scan {
	size_t i; /* next expected reference index */
	size_t limit;
	uint64_t now;
	bool ok;
	bool stopped; /* the callback asked to stop: no call may follow */
};

static bool
model_scan_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct model_scan *m = arg;
	if (m->stopped) {
		m->ok = false;
		return false;
	}
	/* Skip reference entries expired at `now`, as the scan does. */
	while (m->i < ref_n && ref[m->i].exp != 0 && ref[m->i].exp <= m->now)
		m->i++;
	if (m->i >= ref_n) {
		m->ok = false;
		return false;
	}
	const struct ref_ent *r = &ref[m->i++];
	if (ref_cmp(r->key, r->klen, e->key, e->key_len) != 0 || r->vlen != e->value_len ||
	    memcmp(r->val, e->value, r->vlen) != 0 || r->seq != e->seq || r->exp != e->expires_at) {
		m->ok = false;
		return false;
	}
	m->stopped = m->limit != 0 && --m->limit == 0;
	return !m->stopped;
}

static void
model_check_scan(mantis_skiplist *sl, const uint8_t *k, size_t kl, bool excl,
		 size_t limit, uint64_t now)
{
	bool found;
	struct model_scan m = {.limit = limit, .now = now, .ok = true};
	m.i = kl == 0 ? 0 : ref_lower(k, kl, &found);
	if (kl != 0 && excl && found)
		m.i++;
	size_t visited = 0;
	assert_int_equal(mantis_skiplist_scan(sl, k, kl, excl, now, model_scan_cb, &m, &visited),
			 MANTIS_OK);
	assert_true(m.ok);
	if (limit == 0 || visited < limit) {
		/* The scan ended: nothing unexpired may be left over. */
		while (m.i < ref_n && ref[m.i].exp != 0 && ref[m.i].exp <= now)
			m.i++;
		assert_int_equal(m.i, ref_n);
	}
}

/* The map's record of key equals *want (NULL: absent), at time 0. */
static void
assert_get_model(mantis_skiplist *sl, const uint8_t *k, size_t kl, const struct ref_ent *want)
{
	uint8_t buf[48];
	size_t vl = 0;
	uint64_t seq = 0, exp = 0;
	mantis_status st = mantis_skiplist_get(sl, k, kl, 0, buf, sizeof(buf), &vl, &seq, &exp);
	if (want == NULL) {
		assert_int_equal(st, MANTIS_NOT_FOUND);
		return;
	}
	assert_int_equal(st, MANTIS_OK);
	assert_int_equal(vl, want->vlen);
	assert_memory_equal(buf, want->val, vl);
	assert_int_equal(seq, want->seq);
	assert_int_equal(exp, want->exp);
}

static void
test_model(void **state)
{
	(void)state;
	const char *env = getenv("MANTIS_MODEL_OPS");
	long ops = env ? atol(env) : MODEL_OPS_DEFAULT;
	const char *seed_env = getenv("MANTIS_MODEL_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x243f6a8885a308d3ULL;
	rng = seed | 1; /* xorshift needs a non-zero state */
	print_message("model: %ld ops, MANTIS_MODEL_SEED=%#llx\n", ops, (unsigned long long)seed);
	mantis_skiplist *sl = new_sl();
	/* A small key universe with zero bytes and shared prefixes, so that
	 * updates, deletes of present keys and re-inserts are all common. */
	static uint8_t universe[MODEL_KEYS][12];
	static uint32_t ulen[MODEL_KEYS];
	for (int i = 0; i < MODEL_KEYS; i++) {
		ulen[i] = 1 + (uint32_t)(rnd() % 12);
		for (uint32_t j = 0; j < ulen[i]; j++)
			universe[i][j] = (uint8_t)(rnd() % 4); /* 0..3: many prefixes */
	}
	ref_n = 0;
	uint64_t bytes = 0;
	for (long step = 0; step < ops; step++) {
		int u = (int)(rnd() % MODEL_KEYS);
		const uint8_t *k = universe[u];
		uint32_t kl = ulen[u];
		bool found;
		size_t pos = ref_lower(k, kl, &found);
		uint64_t now = rnd() % 4 == 0 ? (uint64_t)step : 0;
		unsigned op = (unsigned)(rnd() % 100);
		if (op < 40) { /* put */
			uint8_t val[48];
			uint32_t vl = (uint32_t)(rnd() % 48);
			for (uint32_t j = 0; j < vl; j++)
				val[j] = (uint8_t)rnd();
			uint64_t exp = rnd() % 8 == 0 ? (uint64_t)step + rnd() % 2000 : 0;
			assert_int_equal(mantis_skiplist_put(sl, k, kl, val, vl, (uint64_t)step, exp),
					 MANTIS_OK);
			if (!found) {
				memmove(&ref[pos + 1], &ref[pos], (ref_n - pos) * sizeof(ref[0]));
				ref_n++;
				memcpy(ref[pos].key, k, kl);
				ref[pos].klen = kl;
				bytes += kl;
			} else {
				bytes -= ref[pos].vlen;
			}
			memcpy(ref[pos].val, val, vl);
			ref[pos].vlen = vl;
			ref[pos].seq = (uint64_t)step;
			ref[pos].exp = exp;
			bytes += vl;
		} else if (op < 60) { /* delete */
			mantis_status st = mantis_skiplist_delete(sl, k, kl);
			assert_int_equal(st, found ? MANTIS_OK : MANTIS_NOT_FOUND);
			if (found) {
				bytes -= ref[pos].klen + ref[pos].vlen;
				memmove(&ref[pos], &ref[pos + 1], (ref_n - pos - 1) * sizeof(ref[0]));
				ref_n--;
			}
		} else if (op < 90) { /* get */
			uint8_t buf[48];
			size_t vl = 0;
			uint64_t seq = 0, exp = 0;
			mantis_status st = mantis_skiplist_get(sl, k, kl, now, buf, sizeof(buf), &vl, &seq, &exp);
			bool live = found && !(ref[pos].exp != 0 && ref[pos].exp <= now);
			if (!live) {
				assert_int_equal(st, MANTIS_NOT_FOUND);
			} else {
				assert_int_equal(st, MANTIS_OK);
				assert_int_equal(vl, ref[pos].vlen);
				assert_memory_equal(buf, ref[pos].val, vl);
				assert_int_equal(seq, ref[pos].seq);
				assert_int_equal(exp, ref[pos].exp);
			}
		} else { /* seek + scan from a key that may be absent: mostly
			  * short; a long one may stop inside runs (skiplist.c) */
			size_t limit = rnd() % 4 == 0 ? SL_RUN_AFTER + 1 + rnd() % 200 : 1 + rnd() % 8;
			model_check_scan(sl, k, kl, rnd() % 2 == 0, limit, now);
		}
		if (op < 60) {
			/* After every write: the key itself and its neighbours,
			 * from the entry before it, agree with the reference. */
			size_t p = ref_lower(k, kl, &found);
			assert_get_model(sl, k, kl, found ? &ref[p] : NULL);
			if (p > 0) /* a present start: the index finds it */
				model_check_scan(sl, ref[p - 1].key, ref[p - 1].klen,
						 rnd() % 2 == 0, 3, 0);
			else
				model_check_scan(sl, NULL, 0, false, 3, 0);
		}
		/* The whole map, at the step's time: past its first entries a
		 * full scan goes by runs, which must skip what expired too. */
		model_check_scan(sl, NULL, 0, false, 0, now);
		mantis_skiplist_stats st;
		mantis_skiplist_stats_get(sl, &st);
		assert_int_equal(st.keys, ref_n);
		assert_int_equal(st.bytes, bytes);
	}
	model_check_scan(sl, NULL, 0, false, 0, 0);
	mantis_skiplist_free(sl);
}

/* Model helpers for test_model_splices: apply a put or a delete to both the
 * map and the reference, then check the key and its neighbourhood. */
/* A put, through a batch's splice (sl_find_paths) when path is not NULL. */
static void
model_put_path(mantis_skiplist *sl, const uint8_t *k, uint32_t kl, uint64_t seq,
	       struct sl_hint *path)
{
	bool found;
	size_t pos = ref_lower(k, kl, &found);
	uint8_t val[48];
	uint32_t vl = (uint32_t)(rnd() % 48);
	for (uint32_t j = 0; j < vl; j++)
		val[j] = (uint8_t)rnd();
	assert_int_equal(path == NULL ? mantis_skiplist_put(sl, k, kl, val, vl, seq, 0)
				      : sl_put_hashed(sl, k, kl, val, vl, seq, 0,
						      sl_hash(sl_hash_seed(sl), k, kl), false, path),
			 MANTIS_OK);
	if (!found) {
		memmove(&ref[pos + 1], &ref[pos], (ref_n - pos) * sizeof(ref[0]));
		ref_n++;
		memcpy(ref[pos].key, k, kl);
		ref[pos].klen = kl;
	}
	memcpy(ref[pos].val, val, vl);
	ref[pos].vlen = vl;
	ref[pos].seq = seq;
	ref[pos].exp = 0;
}

static void
model_put(mantis_skiplist *sl, const uint8_t *k, uint32_t kl, uint64_t seq)
{
	model_put_path(sl, k, kl, seq, NULL);
}

static void
model_delete(mantis_skiplist *sl, const uint8_t *k, uint32_t kl)
{
	bool found;
	size_t pos = ref_lower(k, kl, &found);
	assert_int_equal(mantis_skiplist_delete(sl, k, kl), found ? MANTIS_OK : MANTIS_NOT_FOUND);
	if (found) {
		memmove(&ref[pos], &ref[pos + 1], (ref_n - pos - 1) * sizeof(ref[0]));
		ref_n--;
	}
}

static void
model_check_near(mantis_skiplist *sl, const uint8_t *k, uint32_t kl)
{
	bool found;
	size_t p = ref_lower(k, kl, &found);
	assert_get_model(sl, k, kl, found ? &ref[p] : NULL);
	if (p > 0)
		model_check_scan(sl, ref[p - 1].key, ref[p - 1].klen, false, 4, 0);
	else
		model_check_scan(sl, NULL, 0, false, 4, 0);
}

/*
 * The splice hint (sl_hint in skiplist.c) against the reference: runs of
 * ascending inserts, the pattern the hint serves, interleaved with what
 * must make it fall back or go stale: deletes of the keys it points at
 * (the previous insert, its predecessor, the next key), re-inserts of a
 * key just deleted (a DEAD node of the same key next to the splice), runs
 * that descend, and jumps.  Keys are 2-byte positions, some with a third
 * byte, so shorter-is-smaller order is exercised too.
 */
static void
test_model_splices(void **state)
{
	(void)state;
	const char *env = getenv("MANTIS_MODEL_OPS");
	long ops = (env ? atol(env) : MODEL_OPS_DEFAULT) / 4;
	rng = 0x13198a2e03707344ULL;
	mantis_skiplist *sl = new_sl();
	ref_n = 0;
	long cur = 0, dir = 1;
	for (long step = 0; step < ops; step++) {
		unsigned op = (unsigned)(rnd() % 100);
		if (op < 3) { /* jump */
			cur = (long)(rnd() % 290);
			dir = rnd() % 4 == 0 ? -1 : 1;
		}
		uint8_t k[3] = {(uint8_t)(cur >> 8), (uint8_t)cur, (uint8_t)(rnd() % 3)};
		uint32_t kl = k[2] == 0 ? 3 : 2;
		uint8_t near[3] = {0};
		long d = op < 50 ? 0 : op < 62 ? -1 : op < 70 ? -2 : op < 78 ? 1 : 0;
		long at = cur + d < 0 ? 0 : cur + d;
		near[0] = (uint8_t)(at >> 8);
		near[1] = (uint8_t)at;
		if (op < 50) {
			model_put(sl, k, kl, (uint64_t)step);
			model_check_near(sl, k, kl);
			cur += dir;
		} else if (op < 78) { /* delete behind or ahead of the cursor */
			model_delete(sl, near, 2);
			model_check_near(sl, near, 2);
		} else if (op < 88) { /* delete, then re-insert the same key */
			model_delete(sl, k, kl);
			model_put(sl, k, kl, (uint64_t)step);
			model_check_near(sl, k, kl);
			cur += dir;
		} else {
			model_check_near(sl, k, kl);
		}
		if (cur < 0 || cur >= 290) {
			cur = cur < 0 ? 0 : 289;
			dir = -dir;
		}
		model_check_scan(sl, NULL, 0, false, 0, 0); /* as test_model */
		mantis_skiplist_stats st;
		mantis_skiplist_stats_get(sl, &st);
		assert_int_equal(st.keys, ref_n);
	}
	model_check_scan(sl, NULL, 0, false, 0, 0);
	mantis_skiplist_free(sl);
}

/*
 * Memory comes back: insert N keys (16-byte keys, 100-byte values), delete
 * them all, quiesce: the live bytes return to within 5% of the empty map.
 */
static void
test_memory_returns(void **state)
{
	(void)state;
#ifdef SANITIZED
	const int n = 200000;
#else
	const int n = 1000000;
#endif
	int64_t base0 = live_bytes();
	mantis_skiplist *sl = new_sl();
	int64_t empty = live_bytes() - base0;
	char key[17], val[100];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < n; i++) {
		/* Scattered order: a multiplicative permutation of 0..n-1. */
		snprintf(key, sizeof(key), "%016x", (unsigned)((uint64_t)i * 2654435761u % (uint64_t)n));
		assert_int_equal(mantis_skiplist_put(sl, key, 16, val, sizeof(val), (uint64_t)i, 0), MANTIS_OK);
	}
	int64_t full = live_bytes() - base0;
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%016x", (unsigned)i);
		assert_int_equal(mantis_skiplist_delete(sl, key, 16), MANTIS_OK);
	}
	assert_int_equal(mantis_skiplist_quiesce(sl), MANTIS_OK);
	int64_t after = live_bytes() - base0;
	print_message("memory: empty %lld B, %d keys %lld B (%.1f B/key), after delete-all %lld B\n",
		      (long long)empty, n, (long long)full, (double)(full - empty) / n,
		      (long long)after);
	assert_true(after * 100 <= empty * 105);
	mantis_skiplist_free(sl);
	assert_int_equal(live_bytes(), base0);
}

/*
 * Regression: retirement polling counted objects, not bytes, so 60
 * overwrites of a 4 MiB value and a delete left ~240 MiB retired on one
 * slot (fewer than 64 pending) until the list was freed.  No quiesce here:
 * the memory must come back through ordinary calls.
 */
static void
test_large_overwrites_return(void **state)
{
	(void)state;
	const size_t big = (size_t)4 << 20;
	char *val = malloc(big);
	assert_non_null(val);
	memset(val, 'b', big);
	int64_t base0 = live_bytes();
	mantis_skiplist *sl = new_sl();
	int64_t empty = live_bytes() - base0;
	for (int i = 0; i < 60; i++)
		assert_int_equal(mantis_skiplist_put(sl, "big", 3, val, big, (uint64_t)i, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_delete(sl, "big", 3), MANTIS_OK);
	int64_t after = live_bytes() - base0;
	print_message("large overwrites: empty %lld B, after 60x4MiB + delete %lld B\n",
		      (long long)empty, (long long)after);
	assert_true(after <= empty + (2 << 20));
	mantis_skiplist_free(sl);
	assert_int_equal(live_bytes(), base0);
	free(val);
}

struct pin_arg {
	mantis_skiplist *sl;
	const char *val;
	size_t vlen;
	int64_t base0;
	int64_t pinned;
};

/* Runs inside the section of a get_view: what it retires cannot be freed
 * until that section ends, so its polls find nothing to free. */
static void
pin_cb(void *arg, const mantis_skiplist_entry *e)
{
	(void)e;
	struct pin_arg *a = arg;
	for (int i = 0; i < 8; i++)
		assert_int_equal(mantis_skiplist_put(a->sl, "big", 3, a->val, a->vlen, (uint64_t)i, 0), MANTIS_OK);
	assert_int_equal(mantis_skiplist_delete(a->sl, "big", 3), MANTIS_OK);
	a->pinned = live_bytes() - a->base0;
}

/*
 * Retirements made while a section pins the epoch cannot be freed by the
 * retiring call's poll; the slot is then idle.  They must still come back
 * once the pin ends, without a quiesce (epoch.h, "Reclamation progress").
 */
static void
test_pinned_retirements_return(void **state)
{
	(void)state;
	const size_t big = (size_t)4 << 20;
	char *val = malloc(big);
	assert_non_null(val);
	memset(val, 'p', big);
	int64_t base0 = live_bytes();
	mantis_skiplist *sl = new_sl();
	assert_int_equal(put_s(sl, "pin", "x", 1), MANTIS_OK);
	int64_t empty = live_bytes() - base0;
	struct pin_arg a = {.sl = sl, .val = val, .vlen = big, .base0 = base0};
	assert_int_equal(mantis_skiplist_get_view(sl, "pin", 3, 0, pin_cb, &a), MANTIS_OK);
	/* Inside the pin the seven replaced values and the deleted one were
	 * all still allocated: the section protected them. */
	assert_true(a.pinned >= empty + (int64_t)(8 * big));
	int64_t after = live_bytes() - base0;
	if (after > empty + (2 << 20)) {
		/* A bounded number of ordinary calls must finish the job. */
		for (int i = 0; i < 4; i++)
			assert_get(sl, "pin", 3, "x");
		after = live_bytes() - base0;
	}
	print_message("pinned: empty %lld B, in pin %lld B, after %lld B\n",
		      (long long)empty, (long long)a.pinned, (long long)after);
	assert_true(after <= empty + (2 << 20));
	mantis_skiplist_free(sl);
	assert_int_equal(live_bytes(), base0);
	free(val);
}

/*
 * Hash flooding: keys arrive over HTTP and the index probes linearly, so
 * the hash must be keyed per list.  Two lists get different seeds, the
 * same key hashes differently under them, and the key whitening makes
 * the hash depend on the seed even for keys of whole 8-byte blocks.  A
 * fixed seed (the private hook) keeps a list fully functional.
 */
static void
test_hash_seeded(void **state)
{
	(void)state;
	mantis_skiplist *a = new_sl(), *b = new_sl();
	assert_true(sl_hash_seed(a) != 0);
	assert_true(sl_hash_seed(a) != sl_hash_seed(b));
	const char *keys[] = {"k", "user:0000000001", "0123456789abcdef", ""};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t n = strlen(keys[i]);
		assert_true(sl_hash(sl_hash_seed(a), keys[i], n) !=
			    sl_hash(sl_hash_seed(b), keys[i], n));
		assert_int_equal(sl_hash(42, keys[i], n), sl_hash(42, keys[i], n));
	}
	/* Two 8-byte blocks whose mixed values collide under one seed must
	 * not collide under another: compare a block pair across seeds. */
	uint64_t h1 = sl_hash(1, "AAAAAAAABBBBBBBB", 16), h2 = sl_hash(2, "AAAAAAAABBBBBBBB", 16);
	assert_true(h1 != h2);
	mantis_skiplist_free(b);

	mantis_skiplist *c = new_sl();
	sl_set_hash_seed(c, 0x1234);
	assert_int_equal(sl_hash_seed(c), 0x1234);
	char key[16];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		assert_int_equal(put_s(c, key, "v", (uint64_t)i), MANTIS_OK);
	}
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		assert_get(c, key, strlen(key), "v");
	}
	mantis_skiplist_free(c);
	mantis_skiplist_free(a);
}

/* ---- bulk append (mantis_skiplist_append) ------------------------------- */

/* Key i as 8 big-endian bytes behind a fixed prefix: memcmp order is i's. */
static void
append_key(uint8_t k[12], uint64_t i)
{
	memcpy(k, "ak:-", 4);
	for (int b = 0; b < 8; b++)
		k[4 + b] = (uint8_t)(i >> (56 - 8 * b));
}

static mantis_skiplist_entry
append_entry(const uint8_t k[12])
{
	/* The value is the key's index bytes. */
	return (mantis_skiplist_entry){.key = k, .key_len = 12, .value = k + 4, .value_len = 8};
}

/* Whether key i is present with its index as value (false: absent). */
static bool
append_has(mantis_skiplist *sl, uint64_t i)
{
	uint8_t k[12], v[8];
	size_t vl = 0;
	append_key(k, i);
	mantis_status st = mantis_skiplist_get(sl, k, 12, 0, v, sizeof(v), &vl, NULL, NULL);
	if (st == MANTIS_NOT_FOUND)
		return false;
	assert_int_equal(st, MANTIS_OK);
	assert_int_equal(vl, 8);
	assert_memory_equal(v, k + 4, 8);
	return true;
}

struct scan_keys {
	uint64_t got[64];
	size_t n;
};

static bool
scan_keys_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct scan_keys *c = arg;
	assert_int_equal(e->key_len, 12);
	uint64_t i = 0;
	for (int b = 0; b < 8; b++)
		i = i << 8 | e->key[4 + b];
	c->got[c->n++] = i;
	return c->n < 64;
}

static void
assert_shape(const mantis_skiplist *sl)
{
	const char *what;
	size_t bad = sl_check_structure(sl, &what);
	if (bad != 0)
		fail_msg("structure: %zu violations, first: %s", bad, what);
}

static uint64_t
sl_keys(mantis_skiplist *sl)
{
	mantis_skiplist_stats st;
	assert_int_equal(mantis_skiplist_stats_get(sl, &st), MANTIS_OK);
	return st.keys;
}

/* Counts scanned entries and checks strict key order. */
struct scan_order {
	uint8_t prev[12];
	size_t seen;
};

static bool
scan_order_cb(void *arg, const mantis_skiplist_entry *e)
{
	struct scan_order *c = arg;
	assert_int_equal(e->key_len, 12);
	if (c->seen != 0)
		assert_true(memcmp(c->prev, e->key, 12) < 0);
	memcpy(c->prev, e->key, 12);
	c->seen++;
	return true;
}

/*
 * Batch splices (sl_find_paths) against the reference.  Each round
 * searches the splices of a few keys in lockstep, then changes the list
 * where they point before the keys are put with them: inserts of the keys
 * right beside them (retire_gen stays, so each put must catch a stale
 * level by key comparison and its splice CAS), updates, and sometimes a
 * delete whose node is freed at once (retire_gen moves: the paths must be
 * ignored; a path used anyway reads freed memory, which the ASan build of
 * `make sanitize` reports).  Some of a round's keys are present (an
 * update, the path unused) or repeated.  Keys are 2-byte positions, some
 * with a third byte, so a key's nearest neighbours are one insert away.
 * The list's shape is checked every round.
 */
static void
test_model_paths(void **state)
{
	(void)state;
	const char *env = getenv("MANTIS_MODEL_OPS");
	long rounds = (env ? atol(env) : MODEL_OPS_DEFAULT) / 40;
	rng = 0x452821e638d01377ULL;
	mantis_skiplist *sl = new_sl();
	ref_n = 0;
	uint64_t seq = 0;
	for (long r = 0; r < rounds; r++) {
		uint8_t keys[16][3];
		const uint8_t *kp[16];
		uint32_t kl[16];
		struct sl_hint paths[16];
		size_t m = 2 + (size_t)(rnd() % 15);
		for (size_t i = 0; i < m; i++) {
			long at = (long)(rnd() % 280);
			keys[i][0] = (uint8_t)(at >> 8);
			keys[i][1] = (uint8_t)at;
			keys[i][2] = 0;
			kl[i] = rnd() % 2 ? 3 : 2;
			kp[i] = keys[i];
		}
		sl_find_paths(sl, kp, kl, m, paths);
		for (unsigned j = (unsigned)(rnd() % 6); j > 0; j--) {
			const uint8_t *b = keys[rnd() % m];
			long at = (long)(b[0] << 8 | b[1]) + (long)(rnd() % 3) - 1;
			if (at < 0)
				at = 0;
			uint8_t near[3] = {(uint8_t)(at >> 8), (uint8_t)at, 0};
			uint32_t nl = rnd() % 2 ? 3 : 2;
			if (rnd() % 10 == 0) {
				/* Freed now, not at some later poll: a path
				 * used across the delete is a use after free
				 * (sanitized builds). */
				model_delete(sl, near, nl);
				assert_int_equal(mantis_skiplist_quiesce(sl), MANTIS_OK);
			} else
				model_put(sl, near, nl, ++seq);
		}
		for (size_t i = 0; i < m; i++)
			model_put_path(sl, kp[i], kl[i], ++seq, &paths[i]);
		assert_shape(sl);
		for (size_t i = 0; i < m; i++)
			model_check_near(sl, kp[i], kl[i]);
		model_check_scan(sl, NULL, 0, false, 0, 0);
		assert_int_equal(sl_keys(sl), ref_n);
		/* Thin the map out, so that rounds keep inserting. */
		while (ref_n > MODEL_KEYS / 2) {
			size_t v = (size_t)(rnd() % ref_n);
			uint8_t k[12];
			uint32_t l = ref[v].klen;
			memcpy(k, ref[v].key, l);
			model_delete(sl, k, l);
		}
	}
	/* The puts above took their paths (not only the fallbacks). */
	uint64_t searched, used;
	sl_path_stats(sl, &searched, &used);
	assert_true(used > 0 && searched >= used);
	mantis_skiplist_free(sl);
}

/*
 * Sorted keys appended in calls of every size from 1 up (and an empty
 * call) give a map with the list's shape, every key found by get and
 * scan in order, and the right statistics; then deletes, updates and
 * inserts between the appended keys work on it, and appending after them.
 */
static void
test_append_sorted(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	const uint64_t n = 6000;
	uint8_t(*keys)[12] = malloc(n * sizeof(*keys));
	mantis_skiplist_entry *e = malloc(n * sizeof(*e));
	for (uint64_t i = 0; i < n; i++) {
		append_key(keys[i], 2 * i); /* even: room for inserts between */
		e[i] = append_entry(keys[i]);
		e[i].seq = i;
	}
	size_t done = 99;
	assert_int_equal(mantis_skiplist_append(sl, e, 0, &done), MANTIS_OK);
	assert_int_equal(done, 0);
	assert_int_equal(mantis_skiplist_reserve(sl, n / 2), MANTIS_OK); /* the rest grows */
	for (uint64_t i = 0, step = 1; i < n; step++) {
		uint64_t k = step < n - i ? step : n - i;
		assert_int_equal(mantis_skiplist_append(sl, e + i, k, &done), MANTIS_OK);
		assert_int_equal(done, k);
		i += k;
	}
	assert_shape(sl);
	mantis_skiplist_stats st;
	assert_int_equal(mantis_skiplist_stats_get(sl, &st), MANTIS_OK);
	assert_int_equal(st.keys, n);
	assert_int_equal(st.bytes, n * 20);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t seq = 0;
		uint8_t v[8];
		size_t vl;
		assert_int_equal(mantis_skiplist_get(sl, keys[i], 12, 0, v, 8, &vl, &seq, NULL),
				 MANTIS_OK);
		assert_int_equal(seq, i);
		assert_true(append_has(sl, 2 * i));
		assert_false(append_has(sl, 2 * i + 1));
	}
	struct scan_order so = {0};
	assert_int_equal(mantis_skiplist_scan(sl, NULL, 0, false, 0, scan_order_cb, &so, NULL),
			 MANTIS_OK);
	assert_int_equal(so.seen, n);
	struct scan_keys sk = {0};
	uint8_t from[12];
	append_key(from, 2 * 100);
	assert_int_equal(mantis_skiplist_scan(sl, from, 12, true, 0, scan_keys_cb, &sk, NULL),
			 MANTIS_OK);
	assert_int_equal(sk.n, 64);
	for (size_t j = 0; j < sk.n; j++)
		assert_int_equal(sk.got[j], 2 * (101 + j));

	/* Ordinary writes on the result: delete every third key, update the
	 * rest, insert the odd keys between (descending, so every splice
	 * searches), then append past the end again. */
	for (uint64_t i = 0; i < n; i++) {
		if (i % 3 == 0)
			assert_int_equal(mantis_skiplist_delete(sl, keys[i], 12), MANTIS_OK);
		else
			assert_int_equal(mantis_skiplist_put(sl, keys[i], 12, keys[i] + 4, 8, 0, 0),
					 MANTIS_OK);
	}
	for (uint64_t i = n; i-- > 0;) {
		uint8_t k[12];
		append_key(k, 2 * i + 1);
		assert_int_equal(mantis_skiplist_put(sl, k, 12, k + 4, 8, 0, 0), MANTIS_OK);
	}
	assert_shape(sl);
	uint8_t tail[3][12];
	mantis_skiplist_entry te[3];
	for (int i = 0; i < 3; i++) {
		append_key(tail[i], 2 * n + (uint64_t)i);
		te[i] = append_entry(tail[i]);
	}
	assert_int_equal(mantis_skiplist_append(sl, te, 3, &done), MANTIS_OK);
	assert_int_equal(done, 3);
	assert_shape(sl);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(append_has(sl, 2 * i), i % 3 != 0);
		assert_true(append_has(sl, 2 * i + 1));
	}
	for (uint64_t i = 0; i < 3; i++)
		assert_true(append_has(sl, 2 * n + i));
	uint64_t want = n - (n + 2) / 3 + n + 3;
	assert_int_equal(sl_keys(sl), want);
	so = (struct scan_order){0};
	assert_int_equal(mantis_skiplist_scan(sl, NULL, 0, false, 0, scan_order_cb, &so, NULL),
			 MANTIS_OK);
	assert_int_equal(so.seen, want);
	mantis_skiplist_free(sl);
	free(keys);
	free(e);
}

/*
 * Input the append must not take: a key not after the map's last (equal
 * or smaller, at the start of a call or inside it) stops the call there
 * with MANTIS_OK and *appended short, touching nothing from it on; bad
 * entries are refused with their status and index.  The map keeps its
 * shape and exactly the keys appended.
 */
static void
test_append_refuses(void **state)
{
	(void)state;
	mantis_skiplist *sl = new_sl();
	uint8_t k[10][12];
	for (int i = 0; i < 10; i++)
		append_key(k[i], (uint64_t)i);
	size_t done = 99;
	assert_int_equal(mantis_skiplist_append(NULL, NULL, 0, &done), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_append(sl, NULL, 1, &done), MANTIS_INVALID);
	assert_int_equal(mantis_skiplist_append(sl, NULL, 0, NULL), MANTIS_INVALID);

	struct {
		int keys[4]; /* key indexes, -1 ends */
		size_t want;  /* appended */
	} cases[] = {
		{{5, 3, -1}, 1},     /* descending inside a call: 5 only */
		{{5, -1}, 0},	     /* equal to the map's last key */
		{{4, 6, -1}, 0},     /* smaller than the last key */
		{{6, 6, 7, -1}, 1},  /* a duplicate inside the call */
		{{7, 8, 2, 9}, 2},   /* stops at 2, 9 untouched */
	};
	uint64_t total = 0;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		mantis_skiplist_entry e[4];
		size_t n = 0;
		while (n < 4 && cases[c].keys[n] >= 0) {
			e[n] = append_entry(k[cases[c].keys[n]]);
			n++;
		}
		assert_int_equal(mantis_skiplist_append(sl, e, n, &done), MANTIS_OK);
		assert_int_equal(done, cases[c].want);
		total += done;
		assert_int_equal(sl_keys(sl), total);
		assert_shape(sl);
	}
	assert_true(append_has(sl, 5) && append_has(sl, 6) && append_has(sl, 7) &&
		    append_has(sl, 8));
	assert_false(append_has(sl, 2) || append_has(sl, 3) || append_has(sl, 4) ||
		     append_has(sl, 9));

	/* Bad entries: their status, the index in *appended, the entries
	 * before them appended. */
	uint8_t big[MANTIS_MAX_KEY_SIZE + 1];
	memset(big, 0xff, sizeof(big));
	mantis_skiplist_entry bad[] = {
		append_entry(k[9]),
		{.key = NULL, .key_len = 3},
	};
	assert_int_equal(mantis_skiplist_append(sl, bad, 2, &done), MANTIS_INVALID);
	assert_int_equal(done, 1);
	bad[1] = (mantis_skiplist_entry){.key = big, .key_len = 0};
	assert_int_equal(mantis_skiplist_append(sl, bad + 1, 1, &done), MANTIS_INVALID);
	assert_int_equal(done, 0);
	bad[1] = (mantis_skiplist_entry){.key = big, .key_len = sizeof(big)};
	assert_int_equal(mantis_skiplist_append(sl, bad + 1, 1, &done), MANTIS_TOO_LARGE);
	bad[1] = (mantis_skiplist_entry){.key = big, .key_len = 4, .value = NULL, .value_len = 1};
	assert_int_equal(mantis_skiplist_append(sl, bad + 1, 1, &done), MANTIS_INVALID);
	bad[1] = (mantis_skiplist_entry){.key = big, .key_len = 4, .value = big,
					 .value_len = (size_t)MANTIS_MAX_VALUE_SIZE + 1};
	assert_int_equal(mantis_skiplist_append(sl, bad + 1, 1, &done), MANTIS_TOO_LARGE);
	assert_int_equal(sl_keys(sl), total + 1);
	assert_shape(sl);
	mantis_skiplist_free(sl);
}

/* Allocation failure at each allocation of an append (index table,
 * record, node): NOMEM at that entry, the entries before it in the map,
 * the map in shape, and every byte back after free. */
static void
test_append_alloc_failure(void **state)
{
	(void)state;
	int64_t base = live_bytes();
	uint8_t k[40][12];
	mantis_skiplist_entry e[40];
	for (int i = 0; i < 40; i++) {
		append_key(k[i], (uint64_t)i);
		e[i] = append_entry(k[i]);
	}
	for (int64_t fail = 0; fail < 100; fail++) {
		mantis_skiplist *sl = new_sl();
		size_t done = 0;
		mantis_alloc_fail_after(fail);
		mantis_status st = mantis_skiplist_append(sl, e, 40, &done);
		mantis_alloc_fail_after(-1);
		assert_int_equal(sl_keys(sl), done);
		assert_shape(sl);
		if (st == MANTIS_OK) {
			assert_int_equal(done, 40);
		} else {
			assert_int_equal(st, MANTIS_NOMEM);
			assert_true(done < 40);
		}
		for (size_t i = 0; i < 40; i++)
			assert_int_equal(append_has(sl, i), i < done);
		/* Appending the rest completes it. */
		size_t more = 0;
		assert_int_equal(mantis_skiplist_append(sl, e + done, 40 - done, &more), MANTIS_OK);
		assert_int_equal(done + more, 40);
		assert_shape(sl);
		mantis_skiplist_free(sl);
		assert_int_equal(live_bytes(), base);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_one_key),
		cmocka_unit_test(test_duplicate_insert_updates),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_seek_and_scan),
		cmocka_unit_test(test_binary_keys),
		cmocka_unit_test(test_max_length_keys),
		cmocka_unit_test(test_long_start_positions),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_model_splices),
		cmocka_unit_test(test_memory_returns),
		cmocka_unit_test(test_large_overwrites_return),
		cmocka_unit_test(test_pinned_retirements_return),
		cmocka_unit_test(test_hash_seeded),
		cmocka_unit_test(test_model_paths),
		cmocka_unit_test(test_runs_handover_hidden),
		cmocka_unit_test(test_append_sorted),
		cmocka_unit_test(test_append_refuses),
		cmocka_unit_test(test_append_alloc_failure),
	};
	return cmocka_run_group_tests_name("skiplist", tests, NULL, NULL);
}
