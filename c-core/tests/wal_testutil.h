/*
 * wal_testutil.h -- helpers shared by test_wal.c and test_snapshot.c:
 * scratch directories, whole-file I/O, record encoding into a growable
 * buffer, and the recovery "listing" in the exact text format of
 * testdata/wal/golden.txt (go/wal/golden_test.go), so C and Go recoveries
 * can be compared line for line.  Header-only (static functions) so the
 * Makefile does not link it into every other test binary.
 */
#ifndef MANTIS_WAL_TESTUTIL_H
#define MANTIS_WAL_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <mantis.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* A fresh directory.  Prefers tmpfs (/dev/shm): the torn-tail and bit-flip
 * sweeps open hundreds of directories, and fsync on a real disk would make
 * them slow without testing anything more.  MANTIS_TEST_TMP overrides. */
static void __attribute__((unused))
tu_tmpdir(char *buf, size_t cap)
{
	const char *base = getenv("MANTIS_TEST_TMP");
	struct stat st;
	if (base == NULL)
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(buf, cap, "%s/mantis-wal-XXXXXX", base);
	assert_non_null(mkdtemp(buf));
}

static int
tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void __attribute__((unused))
tu_rmrf(const char *path)
{
	nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file, malloc'ed (free it); NULL if it cannot be read. */
static uint8_t *__attribute__((unused))
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void __attribute__((unused))
tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	if (len > 0)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Copies the wal/ and snap/ files of a data directory (as go/wal's
 * copyDir does for the golden directory). */
static void __attribute__((unused))
tu_copy_data(const char *src, const char *dst)
{
	static const char *const subs[] = {"wal", "snap"};
	char a[4096], b[4096];
	mkdir(dst, 0755);
	for (int i = 0; i < 2; i++) {
		snprintf(a, sizeof a, "%s/%s", src, subs[i]);
		snprintf(b, sizeof b, "%s/%s", dst, subs[i]);
		mkdir(b, 0755);
		DIR *d = opendir(a);
		assert_non_null(d);
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char pa[4096 + 256], pb[4096 + 256];
			snprintf(pa, sizeof pa, "%s/%s", a, de->d_name);
			snprintf(pb, sizeof pb, "%s/%s", b, de->d_name);
			size_t n;
			uint8_t *data = tu_read_file(pa, &n);
			assert_non_null(data);
			tu_write_file(pb, data, n);
			free(data);
		}
		closedir(d);
	}
}

static void __attribute__((unused))
tu_seg_path(char *buf, size_t cap, const char *dir, uint64_t num)
{
	snprintf(buf, cap, "%s/wal/%020llu.wal", dir, (unsigned long long)num);
}

static void __attribute__((unused))
tu_snap_path(char *buf, size_t cap, const char *dir, uint64_t seq)
{
	snprintf(buf, cap, "%s/snap/%020llu.snap", dir, (unsigned long long)seq);
}

/* ------------------------------------------------------------------------ */
/* Byte buffers and records                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tu_buf {
	uint8_t *p;
	size_t len, cap;
} tu_buf;

static void
tu_buf_add(tu_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n + 1)
			c *= 2;
		b->p = realloc(b->p, c);
		assert_non_null(b->p);
		b->cap = c;
	}
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0; /* keeps text buffers NUL-terminated */
}

static void __attribute__((unused))
tu_buf_free(tu_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* Appends one encoded record; returns its offset in b. */
static size_t __attribute__((unused))
tu_rec(tu_buf *b, uint8_t type, uint64_t seq, uint64_t exp, const void *key,
       size_t klen, const void *val, size_t vlen)
{
	mantis_record r = {.type = type, .seq = seq, .expires_at = exp,
			   .key = key, .key_len = (uint32_t)klen,
			   .value = val, .value_len = (uint32_t)vlen};
	size_t n = 0;
	assert_int_equal(mantis_codec_size(type, klen, vlen, &n), MANTIS_OK);
	size_t off = b->len;
	uint8_t *tmp = malloc(n);
	assert_non_null(tmp);
	size_t w = 0;
	assert_int_equal(mantis_codec_encode(tmp, n, &r, &w), MANTIS_OK);
	tu_buf_add(b, tmp, w);
	free(tmp);
	return off;
}

static size_t __attribute__((unused))
tu_put(tu_buf *b, uint64_t seq, const char *key, const char *val, uint64_t exp)
{
	return tu_rec(b, MANTIS_REC_PUT, seq, exp, key, strlen(key), val, strlen(val));
}

static size_t __attribute__((unused))
tu_del(tu_buf *b, uint64_t seq, const char *key)
{
	return tu_rec(b, MANTIS_REC_DELETE, seq, 0, key, strlen(key), NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Recovery listing (the format of testdata/wal/golden.txt)                 */
/* ------------------------------------------------------------------------ */

#define TU_LISTING_HEAD                                                  \
	"# Recovery listing of testdata/wal/golden; regenerate with\n"   \
	"# go test ./go/wal -run TestGolden -update\n"

static void __attribute__((format(printf, 2, 3)))
tu_printf(tu_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof tmp);
	tu_buf_add(b, tmp, (size_t)n);
}

static void
tu_hex(tu_buf *b, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	if (n == 0) {
		tu_buf_add(b, "-", 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
		tu_buf_add(b, c, 2);
	}
}

/* "<seq> <expires_at> <key_hex> <value_hex>\n" */
static void
tu_rec_line(tu_buf *b, const mantis_record *r)
{
	tu_printf(b, "%llu %llu ", (unsigned long long)r->seq,
		  (unsigned long long)r->expires_at);
	tu_hex(b, r->key, r->key_len);
	tu_buf_add(b, " ", 1);
	tu_hex(b, r->value, r->value_len);
	tu_buf_add(b, "\n", 1);
}

/* The line(s) of one WAL record, as listing() in golden_test.go. */
static void __attribute__((unused))
tu_wal_lines(tu_buf *b, const mantis_record *r)
{
	if (r->type == MANTIS_REC_BATCH) {
		tu_printf(b, "W %u %llu %llu - -\n", (unsigned)r->type,
			  (unsigned long long)r->seq, (unsigned long long)r->expires_at);
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, r->value, r->value_len);
		mantis_record n;
		while (mantis_codec_batch_iter_next(&it, &n) == MANTIS_OK) {
			tu_printf(b, "  N %u ", (unsigned)n.type);
			tu_rec_line(b, &n);
		}
		return;
	}
	tu_printf(b, "W %u ", (unsigned)r->type);
	tu_rec_line(b, r);
}

static mantis_status
tu_lst_begin(void *ctx, uint64_t seq, uint64_t count)
{
	tu_printf(ctx, "snapshot %llu %llu\n", (unsigned long long)seq,
		  (unsigned long long)count);
	return MANTIS_OK;
}

static mantis_status
tu_lst_snap(void *ctx, const mantis_record *r)
{
	tu_buf_add(ctx, "S ", 2);
	tu_rec_line(ctx, r);
	return MANTIS_OK;
}

static mantis_status
tu_lst_apply(void *ctx, const mantis_record *r)
{
	tu_wal_lines(ctx, r);
	return MANTIS_OK;
}

/* A handler that renders everything recovered into *out. */
static mantis_wal_handler __attribute__((unused))
tu_listing_handler(tu_buf *out)
{
	tu_buf_add(out, TU_LISTING_HEAD, strlen(TU_LISTING_HEAD));
	return (mantis_wal_handler){.ctx = out,
				    .snapshot_begin = tu_lst_begin,
				    .snapshot_record = tu_lst_snap,
				    .apply = tu_lst_apply};
}

/* Opens dir, renders its recovery listing (with the final "last" line)
 * into *out, closes it.  Returns the open status (the listing is partial
 * on failure); info may be NULL. */
static mantis_status __attribute__((unused))
tu_listing(const char *dir, tu_buf *out, mantis_wal_recovery *info)
{
	mantis_wal_handler h = tu_listing_handler(out);
	mantis_wal *w = NULL;
	mantis_wal_options o = {.sync = MANTIS_SYNC_NONE};
	mantis_status st = mantis_wal_open(dir, &o, &h, info, &w);
	if (st != MANTIS_OK)
		return st;
	mantis_wal_stats s;
	assert_int_equal(mantis_wal_stats_get(w, &s), MANTIS_OK);
	tu_printf(out, "last %llu\n", (unsigned long long)s.last_seq);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	return MANTIS_OK;
}

/* Opening dir must fail with `want`, naming `path` and byte offset `off`
 * with a reason, and hand back no handle. */
static void __attribute__((unused))
tu_expect_open_error(const char *dir, const char *path, uint64_t off,
		     mantis_status want)
{
	mantis_wal_recovery info;
	mantis_wal *w = NULL;
	mantis_status st = mantis_wal_open(dir, NULL, NULL, &info, &w);
	if (st != want)
		fail_msg("want %s, got %s (%s at %llu: %s)", mantis_strerror(want),
			 mantis_strerror(st), info.error_file,
			 (unsigned long long)info.error_offset, info.error_reason);
	assert_null(w);
	assert_string_equal(info.error_file, path);
	assert_int_equal(info.error_offset, off);
	assert_true(info.error_reason[0] != '\0');
}

#endif /* MANTIS_WAL_TESTUTIL_H */
