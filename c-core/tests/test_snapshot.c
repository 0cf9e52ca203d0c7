/* test_snapshot.c -- snapshots (src/snapshot.c) against docs/FORMAT.md,
 * "Snapshot": the golden snapshot go/wal wrote is re-written byte for byte
 * by both add paths; the writer's rules; every way a snapshot can be
 * invalid (header, records, footer, trailing bytes) is MANTIS_CORRUPT or
 * MANTIS_UNSUPPORTED naming the file and offset, with no fallback to an
 * older snapshot; stale .snap.tmp files are removed; a failed checkpoint
 * leaves the log and the previous snapshot usable. */
#include "wal_testutil.h"

#include "wal.h"

static const char *
testdata(void)
{
	const char *d = getenv("MANTIS_TESTDATA");
	return d != NULL ? d : "../testdata";
}

static mantis_wal *
open_dir(const char *dir, const mantis_wal_handler *h, mantis_wal_recovery *info)
{
	mantis_wal_options o = {.sync = MANTIS_SYNC_NONE};
	mantis_wal *w = NULL;
	mantis_wal_recovery local;
	if (info == NULL)
		info = &local;
	mantis_status st = mantis_wal_open(dir, &o, h, info, &w);
	if (st != MANTIS_OK)
		fail_msg("open %s: %s: %s at %llu: %s", dir, mantis_strerror(st),
			 info->error_file, (unsigned long long)info->error_offset,
			 info->error_reason);
	return w;
}

/* Appends PUTs with seqs 1..n ("k001".."k00n") so snapshots up to n are
 * allowed. */
static void
append_puts(mantis_wal *w, uint64_t from, uint64_t to)
{
	tu_buf b = {0};
	for (uint64_t s = from; s <= to; s++) {
		char key[16];
		snprintf(key, sizeof key, "k%03llu", (unsigned long long)s);
		b.len = 0;
		tu_put(&b, s, key, "value", 0);
		assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	}
	tu_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Golden bytes                                                             */
/* ------------------------------------------------------------------------ */

static void
golden_rewrite(bool encoded)
{
	char src[1024], dir[256], a[1200], b[1200];
	snprintf(src, sizeof src, "%s/wal/golden", testdata());
	tu_tmpdir(dir, sizeof dir);
	tu_copy_data(src, dir);
	tu_snap_path(a, sizeof a, src, 154);
	size_t len;
	uint8_t *gold = tu_read_file(a, &len);
	if (gold == NULL)
		fail_msg("cannot read %s (set MANTIS_TESTDATA)", a);
	mantis_wal *w = open_dir(dir, NULL, NULL);
	mantis_snapshot_writer *sw;
	assert_int_equal(mantis_wal_snapshot_begin(w, 154, &sw), MANTIS_OK);
	/* The body: everything between the 80-byte header and the 72-byte
	 * end record. */
	const uint8_t *body = gold + SNAP_HEADER_SIZE;
	size_t blen = len - SNAP_HEADER_SIZE - SNAP_FOOTER_SIZE;
	if (encoded) {
		assert_int_equal(mantis_snapshot_add_encoded(sw, body, blen), MANTIS_OK);
	} else {
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, body, blen);
		mantis_record r;
		while (mantis_codec_iter_next(&it, &r) == MANTIS_OK)
			assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
		assert_int_equal(it.offset, blen);
	}
	mantis_snapshot_info info;
	assert_int_equal(mantis_snapshot_commit(sw, &info), MANTIS_OK);
	assert_int_equal(info.seq, 154);
	assert_int_equal(info.count, 91);
	assert_int_equal(info.bytes, len);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_snap_path(b, sizeof b, dir, 154);
	size_t n;
	uint8_t *mine = tu_read_file(b, &n);
	assert_non_null(mine);
	assert_int_equal(n, len);
	assert_memory_equal(mine, gold, len);
	free(mine);
	free(gold);
	tu_rmrf(dir);
}

static void
test_golden_rewrite(void **state)
{
	(void)state;
	golden_rewrite(true);
	golden_rewrite(false);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

static size_t
count_files(const char *dir, const char *sub)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	DIR *d = opendir(p);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_writer_rules(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_dir(dir, NULL, NULL);
	append_puts(w, 1, 5);
	mantis_snapshot_writer *sw = NULL, *sw2 = NULL;
	assert_int_equal(mantis_wal_snapshot_begin(w, 6, &sw), MANTIS_INVALID); /* > last */
	assert_int_equal(mantis_wal_snapshot_begin(NULL, 1, &sw), MANTIS_INVALID);
	assert_int_equal(mantis_wal_snapshot_begin(w, 1, NULL), MANTIS_INVALID);

	mantis_record r = {.type = MANTIS_REC_PUT, .seq = 3, .key = (const uint8_t *)"b",
			   .key_len = 1, .value = (const uint8_t *)"x", .value_len = 1};
	/* Each broken rule: INVALID, and commit then refuses and cleans up. */
	for (int c = 0; c < 4; c++) {
		assert_int_equal(mantis_wal_snapshot_begin(w, 5, &sw), MANTIS_OK);
		assert_int_equal(mantis_wal_snapshot_begin(w, 5, &sw2), MANTIS_BUSY);
		mantis_record bad = r;
		mantis_status want = MANTIS_INVALID;
		switch (c) {
		case 0:
			bad.type = MANTIS_REC_DELETE;
			bad.value_len = 0;
			break;
		case 1:
			bad.seq = 6; /* above the snapshot */
			break;
		case 2: /* keys not ascending */
			assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
			bad.key = (const uint8_t *)"a";
			break;
		case 3: /* equal keys */
			assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
			break;
		}
		assert_int_equal(mantis_snapshot_add(sw, &bad), want);
		assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_INVALID); /* stays broken */
		assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_INVALID);
		assert_int_equal(count_files(dir, "snap"), 0); /* tmp removed */
	}
	/* Encoded input: a corrupt buffer and a non-PUT are refused. */
	tu_buf b = {0};
	tu_put(&b, 1, "a", "1", 0);
	tu_del(&b, 2, "b");
	assert_int_equal(mantis_wal_snapshot_begin(w, 5, &sw), MANTIS_OK);
	assert_int_equal(mantis_snapshot_add_encoded(sw, b.p, b.len), MANTIS_INVALID);
	mantis_snapshot_abort(sw);
	b.len = 0;
	tu_put(&b, 1, "a", "1", 0);
	b.p[33] ^= 4;
	assert_int_equal(mantis_wal_snapshot_begin(w, 5, &sw), MANTIS_OK);
	assert_int_equal(mantis_snapshot_add_encoded(sw, b.p, b.len), MANTIS_INVALID);
	mantis_snapshot_abort(sw);
	assert_int_equal(count_files(dir, "snap"), 0);

	/* A good one, then one below it is refused, one equal is allowed. */
	assert_int_equal(mantis_wal_snapshot_begin(w, 4, &sw), MANTIS_OK);
	assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
	assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_OK);
	assert_int_equal(mantis_wal_snapshot_begin(w, 3, &sw), MANTIS_INVALID);
	assert_int_equal(mantis_wal_snapshot_begin(w, 4, &sw), MANTIS_OK);
	mantis_snapshot_abort(sw);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_buf_free(&b);
	tu_rmrf(dir);
}

/* An empty snapshot (no live keys) round trips; a newer snapshot removes
 * the older one and every segment it covers. */
static void
test_empty_and_replacement(void **state)
{
	(void)state;
	char dir[256], p[1200];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_dir(dir, NULL, NULL);
	append_puts(w, 1, 3);
	mantis_snapshot_writer *sw;
	assert_int_equal(mantis_wal_snapshot_begin(w, 3, &sw), MANTIS_OK);
	assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_OK);
	append_puts(w, 4, 6);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);

	tu_buf got = {0};
	mantis_wal_recovery info;
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_true(info.has_snapshot);
	assert_int_equal(info.snapshot_count, 0);
	assert_int_equal(info.replayed, 3);
	assert_non_null(strstr((char *)got.p, "snapshot 3 0\nW 1 4 "));
	tu_buf_free(&got);

	w = open_dir(dir, NULL, NULL);
	assert_int_equal(mantis_wal_snapshot_begin(w, 6, &sw), MANTIS_OK);
	mantis_record r = {.type = MANTIS_REC_PUT, .seq = 6, .key = (const uint8_t *)"k006",
			   .key_len = 4, .value = (const uint8_t *)"value", .value_len = 5};
	assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
	assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_OK);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_snap_path(p, sizeof p, dir, 3);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(count_files(dir, "snap"), 1);
	assert_int_equal(count_files(dir, "wal"), 0);
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.snapshot_seq, 6);
	assert_int_equal(info.replayed, 0);
	assert_int_equal(info.last_seq, 6);
	tu_buf_free(&got);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Invalid snapshots                                                        */
/* ------------------------------------------------------------------------ */

typedef struct snap_spec {
	uint64_t name_seq;   /* file name                        */
	uint64_t seq;	     /* header seq                       */
	uint32_t version;    /* header version                   */
	uint64_t count;	     /* header count                     */
	uint64_t end_count;  /* footer count                     */
	uint64_t end_seq;    /* footer seq                       */
	bool no_footer;	     /* file ends after the records      */
	bool trailing;	     /* 8 bytes after the footer         */
	bool descending;     /* records out of key order          */
	bool delete_rec;     /* a DELETE among the records        */
	bool high_seq;	     /* a record above the snapshot seq   */
	int flip;	     /* >= 0: flip a bit of this byte    */
} snap_spec;

/* Writes a two-record snapshot by hand; returns the records' offsets in
 * offs[0..2] (offs[2] = footer). */
static void
write_snap(const char *dir, const snap_spec *s, size_t *offs)
{
	tu_buf b = {0};
	uint8_t v[24] = {0};
	wal_put32(v, s->version);
	wal_put64(v + 8, s->seq);
	wal_put64(v + 16, s->count);
	tu_rec(&b, MANTIS_REC_META, 0, 0, SNAP_META_KEY, strlen(SNAP_META_KEY), v, 24);
	offs[0] = tu_put(&b, 1, s->descending ? "z" : "a", "1", 0);
	if (s->delete_rec)
		offs[1] = tu_del(&b, 2, "b");
	else
		offs[1] = tu_put(&b, s->high_seq ? s->seq + 1 : 2, "b", "2", 0);
	offs[2] = b.len;
	if (!s->no_footer) {
		wal_put64(v, s->end_count);
		wal_put64(v + 8, s->end_seq);
		tu_rec(&b, MANTIS_REC_META, 0, 0, SNAP_END_META_KEY,
		       strlen(SNAP_END_META_KEY), v, 16);
	}
	if (s->trailing)
		tu_buf_add(&b, "\0\0\0\0\0\0\0\0", 8);
	if (s->flip >= 0)
		b.p[s->flip] ^= 1;
	char p[1200];
	tu_snap_path(p, sizeof p, dir, s->name_seq);
	tu_write_file(p, b.p, b.len);
	tu_buf_free(&b);
}

static snap_spec
good_spec(void)
{
	return (snap_spec){.name_seq = 2, .seq = 2, .version = 1, .count = 2,
			   .end_count = 2, .end_seq = 2, .flip = -1};
}

static void
expect_bad_snapshot(const char *dir, uint64_t name_seq, uint64_t off,
		    mantis_status want)
{
	char p[1200];
	tu_snap_path(p, sizeof p, dir, name_seq);
	tu_expect_open_error(dir, p, off, want);
}

static void
test_invalid_snapshots(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_dir(dir, NULL, NULL); /* creates wal/ and snap/ */
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	size_t offs[3];
	snap_spec s = good_spec();
	write_snap(dir, &s, offs);
	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, NULL), MANTIS_OK);
	assert_non_null(strstr((char *)got.p, "snapshot 2 2\nS 1 0 61 31\nS 2 0 62 32\nlast 2\n"));
	tu_buf_free(&got);
	const size_t end = offs[2];

	/* Footer: missing, wrong count, wrong seq, trailing bytes, a flipped
	 * bit in each of its fields. */
	s = good_spec(), s.no_footer = true;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, end, MANTIS_CORRUPT);
	s = good_spec(), s.end_count = 3;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, end, MANTIS_CORRUPT);
	s = good_spec(), s.end_seq = 1;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, end, MANTIS_CORRUPT);
	s = good_spec(), s.trailing = true;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, end + SNAP_FOOTER_SIZE, MANTIS_CORRUPT);
	for (size_t i = 0; i < SNAP_FOOTER_SIZE; i++) {
		s = good_spec(), s.flip = (int)(end + i);
		write_snap(dir, &s, offs);
		expect_bad_snapshot(dir, 2, end, MANTIS_CORRUPT);
	}
	/* Header: count disagreeing, seq disagreeing with the name, newer
	 * version, flipped bits. */
	s = good_spec(), s.count = 3, s.end_count = 3;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, end, MANTIS_CORRUPT);
	s = good_spec(), s.count = 1, s.end_count = 1;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, offs[1], MANTIS_CORRUPT); /* more than the count */
	s = good_spec(), s.seq = 9, s.end_seq = 9;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, 0, MANTIS_CORRUPT);
	s = good_spec(), s.version = 2;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, 0, MANTIS_UNSUPPORTED);
	for (size_t i = 0; i < SNAP_HEADER_SIZE; i += 3) {
		s = good_spec(), s.flip = (int)i;
		write_snap(dir, &s, offs);
		expect_bad_snapshot(dir, 2, 0, MANTIS_CORRUPT);
	}
	/* Records: out of order, a DELETE, a seq above the snapshot, a
	 * flipped bit. */
	s = good_spec(), s.descending = true;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, offs[1], MANTIS_CORRUPT);
	s = good_spec(), s.delete_rec = true;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, offs[1], MANTIS_CORRUPT);
	s = good_spec(), s.high_seq = true;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, offs[1], MANTIS_CORRUPT);
	s = good_spec(), s.flip = (int)offs[1] + 33;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 2, offs[1], MANTIS_CORRUPT);

	/* The newest snapshot invalid, an older valid one present: CORRUPT
	 * naming the newest, never a silent fallback. */
	s = good_spec();
	write_snap(dir, &s, offs);
	s = good_spec(), s.name_seq = s.seq = s.end_seq = 5, s.end_count = 1;
	write_snap(dir, &s, offs);
	expect_bad_snapshot(dir, 5, end, MANTIS_CORRUPT);
	/* An empty file named as a snapshot. */
	char p[1200];
	tu_snap_path(p, sizeof p, dir, 5);
	tu_write_file(p, "", 0);
	expect_bad_snapshot(dir, 5, 0, MANTIS_CORRUPT);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Open-time housekeeping and callbacks                                     */
/* ------------------------------------------------------------------------ */

static mantis_status
refuse(void *ctx, const mantis_record *r)
{
	(void)ctx;
	(void)r;
	return MANTIS_NOMEM;
}

static int begin_calls;
static mantis_status
count_begin(void *ctx, uint64_t seq, uint64_t count)
{
	(void)ctx;
	assert_int_equal(seq, 2);
	assert_int_equal(count, 2);
	begin_calls++;
	return MANTIS_OK;
}

static void
test_tmp_removed_and_callbacks(void **state)
{
	(void)state;
	char dir[256], p[1200];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_dir(dir, NULL, NULL);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	size_t offs[3];
	snap_spec s = good_spec();
	write_snap(dir, &s, offs);
	/* Interrupted checkpoints: garbage under .snap.tmp names. */
	snprintf(p, sizeof p, "%s/snap/%020llu.snap.tmp", dir, 9ull);
	tu_write_file(p, "junk", 4);
	snprintf(p, sizeof p, "%s/snap/%020llu.snap.tmp", dir, 1ull);
	tu_write_file(p, "", 0);
	mantis_wal_recovery info;
	mantis_wal_handler h = {.snapshot_begin = count_begin};
	begin_calls = 0;
	w = open_dir(dir, &h, &info);
	assert_int_equal(begin_calls, 1);
	assert_int_equal(info.removed_tmp, 2);
	assert_int_equal(info.snapshot_seq, 2);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	assert_int_equal(count_files(dir, "snap"), 1);

	/* A callback's error aborts open with that status; the lock is
	 * released (a retry works). */
	h = (mantis_wal_handler){.snapshot_record = refuse};
	assert_int_equal(mantis_wal_open(dir, NULL, &h, &info, &w), MANTIS_NOMEM);
	w = open_dir(dir, NULL, NULL);
	append_puts(w, 3, 3);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	h = (mantis_wal_handler){.apply = refuse};
	assert_int_equal(mantis_wal_open(dir, NULL, &h, &info, &w), MANTIS_NOMEM);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* A checkpoint that fails                                                  */
/* ------------------------------------------------------------------------ */

static bool fail_fsync;
static int
maybe_fail_fsync(int fd)
{
	if (fail_fsync) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static const mantis_file_ops fail_ops = {
	.write = write, .pwrite = pwrite, .fsync = maybe_fail_fsync, .ftruncate = ftruncate};

static void
test_failed_checkpoint(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_file_ops_set(&fail_ops);
	fail_fsync = false;
	mantis_wal *w = open_dir(dir, NULL, NULL);
	append_puts(w, 1, 4);
	mantis_snapshot_writer *sw;
	assert_int_equal(mantis_wal_snapshot_begin(w, 4, &sw), MANTIS_OK);
	mantis_record r = {.type = MANTIS_REC_PUT, .seq = 4, .key = (const uint8_t *)"k",
			   .key_len = 1, .value = (const uint8_t *)"v", .value_len = 1};
	assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
	fail_fsync = true; /* the snapshot file's fsync */
	assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_IO);
	fail_fsync = false;
	assert_int_equal(count_files(dir, "snap"), 0); /* tmp removed */
	/* The log was not fail-stopped by a failed checkpoint. */
	append_puts(w, 5, 5);
	mantis_wal_stats st;
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_false(st.failed);
	assert_int_equal(st.last_checkpoint_seq, 0);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	mantis_file_ops_set(NULL);
	mantis_wal_recovery info;
	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_false(info.has_snapshot);
	assert_int_equal(info.replayed, 5);
	tu_buf_free(&got);
	tu_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_rewrite),
		cmocka_unit_test(test_writer_rules),
		cmocka_unit_test(test_empty_and_replacement),
		cmocka_unit_test(test_invalid_snapshots),
		cmocka_unit_test(test_tmp_removed_and_callbacks),
		cmocka_unit_test(test_failed_checkpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
