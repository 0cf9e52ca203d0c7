/* test_wal.c -- the write-ahead log (src/wal.c) against docs/FORMAT.md,
 * "Files on disk": the golden directory go/wal wrote (read back record for
 * record, and re-written byte for byte), write -> recover round trips with
 * rotation and checkpoints, the torn-tail rule at every byte offset, a
 * flipped bit in every field of a mid-log record, zero-filled tails, the
 * directory lock, fail-stop on injected ENOSPC/EIO, group commit under
 * concurrent appenders, and the interval syncer.
 *
 * A crash loop runs this binary as a writer process and SIGKILLs it.
 *
 * Helper modes (for go/wal/interop_test.go and the crash loop):
 *   test_wal --write-interop DIR LISTING  writes a seeded stream into DIR
 *                                         and its expected listing to LISTING
 *   test_wal --list DIR                   prints C's recovery listing of DIR
 *   test_wal --crash-writer DIR           appends (sync=always) until killed,
 *                                         printing each acknowledged seq
 */
#include "wal_testutil.h"

#include "wal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

static const char *
testdata(void)
{
	const char *d = getenv("MANTIS_TESTDATA");
	return d != NULL ? d : "../testdata";
}

static mantis_wal *
open_ok(const char *dir, uint32_t sync, uint64_t segsize, tu_buf *listing,
	mantis_wal_recovery *info)
{
	mantis_wal_options o = {.sync = sync, .segment_size = segsize};
	mantis_wal_handler h = {0};
	if (listing != NULL)
		h = tu_listing_handler(listing);
	mantis_wal *w = NULL;
	mantis_wal_recovery local;
	if (info == NULL)
		info = &local;
	mantis_status st = mantis_wal_open(dir, &o, &h, info, &w);
	if (st != MANTIS_OK)
		fail_msg("open %s: %s: %s at %llu: %s", dir, mantis_strerror(st),
			 info->error_file, (unsigned long long)info->error_offset,
			 info->error_reason);
	return w;
}

/* ------------------------------------------------------------------------ */
/* A seeded stream of puts, TTL puts, deletes and batches                   */
/* ------------------------------------------------------------------------ */

#define NKEYS 300
#define TTL_BASE 1900000000000000000ull

typedef struct stream {
	uint64_t rng;
	uint64_t seq;
	bool present[NKEYS];
	uint64_t vseq[NKEYS], vexp[NKEYS];
	uint8_t val[NKEYS][48];
	uint8_t vlen[NKEYS];
	tu_buf wal_lines; /* expected W lines since the last snapshot */
	tu_buf snap_lines;
} stream;

static uint64_t
rnd(stream *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* Encodes one random operation (taking the next seqs) into *out and
 * applies it to the model. */
static void
stream_op(stream *s, tu_buf *out)
{
	uint64_t kind = rnd(s) % 100;
	int nops = kind < 20 ? 1 + (int)(rnd(s) % 4) : 1;
	tu_buf nested = {0};
	uint64_t first = s->seq + 1;
	for (int i = 0; i < nops; i++) {
		uint64_t seq = ++s->seq;
		int k = (int)(rnd(s) % NKEYS);
		char key[16];
		snprintf(key, sizeof key, "key-%04d", k);
		uint64_t op = rnd(s) % 100;
		tu_buf *dst = kind < 20 ? &nested : out;
		if (op < 20) {
			tu_rec(dst, MANTIS_REC_DELETE, seq, 0, key, strlen(key), NULL, 0);
			s->present[k] = false;
			continue;
		}
		uint8_t v[48];
		size_t vl = rnd(s) % sizeof v;
		for (size_t j = 0; j < vl; j++)
			v[j] = (uint8_t)rnd(s);
		uint64_t exp = op < 35 ? TTL_BASE + seq : 0;
		tu_rec(dst, MANTIS_REC_PUT, seq, exp, key, strlen(key), v, vl);
		s->present[k] = true;
		s->vseq[k] = seq;
		s->vexp[k] = exp;
		memcpy(s->val[k], v, vl);
		s->vlen[k] = (uint8_t)vl;
	}
	if (kind < 20)
		tu_rec(out, MANTIS_REC_BATCH, first, 0, NULL, 0, nested.p, nested.len);
	tu_buf_free(&nested);
}

static void
expect_wal(stream *s, const uint8_t *recs, size_t len)
{
	mantis_codec_iter it;
	mantis_codec_iter_init(&it, recs, len);
	mantis_record r;
	while (mantis_codec_iter_next(&it, &r) == MANTIS_OK)
		tu_wal_lines(&s->wal_lines, &r);
}

/* Writes the model as a snapshot at s->seq, through the C writer. */
static void
stream_snapshot(stream *s, mantis_wal *w)
{
	mantis_snapshot_writer *sw = NULL;
	assert_int_equal(mantis_wal_snapshot_begin(w, s->seq, &sw), MANTIS_OK);
	tu_buf_free(&s->snap_lines);
	tu_buf_free(&s->wal_lines);
	uint64_t count = 0;
	tu_buf lines = {0};
	for (int k = 0; k < NKEYS; k++) {
		if (!s->present[k])
			continue;
		char key[16];
		snprintf(key, sizeof key, "key-%04d", k);
		mantis_record r = {.type = MANTIS_REC_PUT, .seq = s->vseq[k],
				   .expires_at = s->vexp[k], .key = (uint8_t *)key,
				   .key_len = (uint32_t)strlen(key), .value = s->val[k],
				   .value_len = s->vlen[k]};
		assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
		tu_buf_add(&lines, "S ", 2);
		tu_rec_line(&lines, &r);
		count++;
	}
	mantis_snapshot_info info;
	assert_int_equal(mantis_snapshot_commit(sw, &info), MANTIS_OK);
	assert_int_equal(info.count, count);
	assert_int_equal(info.seq, s->seq);
	tu_printf(&s->snap_lines, "snapshot %llu %llu\n", (unsigned long long)s->seq,
		  (unsigned long long)count);
	if (lines.len > 0)
		tu_buf_add(&s->snap_lines, lines.p, lines.len);
	tu_buf_free(&lines);
}

/* Writes nops operations (snapshot after op snap_at, if >= 0) into dir and
 * renders the listing recovery must produce into *expected. */
static void
stream_write(const char *dir, uint64_t seed, int nops, int snap_at,
	     uint32_t sync, uint64_t segsize, tu_buf *expected)
{
	stream *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->rng = seed * 0x9E3779B97F4A7C15ull + 1;
	mantis_wal *w = open_ok(dir, sync, segsize, NULL, NULL);
	for (int i = 0; i < nops; i++) {
		tu_buf op = {0};
		stream_op(s, &op);
		mantis_status st = mantis_wal_append(w, op.p, op.len);
		assert_int_equal(st, MANTIS_OK);
		expect_wal(s, op.p, op.len);
		tu_buf_free(&op);
		if (i == snap_at)
			stream_snapshot(s, w);
	}
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_buf_add(expected, TU_LISTING_HEAD, strlen(TU_LISTING_HEAD));
	if (s->snap_lines.len > 0)
		tu_buf_add(expected, s->snap_lines.p, s->snap_lines.len);
	if (s->wal_lines.len > 0)
		tu_buf_add(expected, s->wal_lines.p, s->wal_lines.len);
	tu_printf(expected, "last %llu\n", (unsigned long long)s->seq);
	tu_buf_free(&s->snap_lines);
	tu_buf_free(&s->wal_lines);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Golden files (written by go/wal)                                         */
/* ------------------------------------------------------------------------ */

static void
test_golden_read(void **state)
{
	(void)state;
	char src[1024], want_path[1024], dir[256];
	snprintf(src, sizeof src, "%s/wal/golden", testdata());
	snprintf(want_path, sizeof want_path, "%s/wal/golden.txt", testdata());
	size_t wn;
	uint8_t *want = tu_read_file(want_path, &wn);
	if (want == NULL)
		fail_msg("cannot read %s (set MANTIS_TESTDATA)", want_path);
	want[wn] = 0;
	tu_tmpdir(dir, sizeof dir);
	tu_copy_data(src, dir);
	tu_buf got = {0};
	mantis_wal_recovery info;
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_string_equal((char *)got.p, (char *)want);
	assert_true(info.has_snapshot);
	assert_int_equal(info.snapshot_seq, 154);
	assert_int_equal(info.snapshot_count, 91);
	assert_int_equal(info.segments, 7);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.last_seq, 265);
	tu_buf_free(&got);
	free(want);
	tu_rmrf(dir);
}

/* Re-appending the records of golden segments 11..16 after segment 10,
 * one operation per append with go/wal's 1 KiB segment size, reproduces
 * those files byte for byte: same records, same segment headers, same
 * rotation points. */
static void
test_golden_write_bytes(void **state)
{
	(void)state;
	char src[1024], dir[256], a[1200], b[1200];
	snprintf(src, sizeof src, "%s/wal/golden", testdata());
	tu_tmpdir(dir, sizeof dir);
	tu_copy_data(src, dir);
	for (uint64_t n = 11; n <= 16; n++) {
		tu_seg_path(a, sizeof a, dir, n);
		assert_int_equal(unlink(a), 0);
	}
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 1024, NULL, NULL);
	for (uint64_t n = 11; n <= 16; n++) {
		tu_seg_path(a, sizeof a, src, n);
		size_t len;
		uint8_t *seg = tu_read_file(a, &len);
		assert_non_null(seg);
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, seg, len);
		mantis_record r;
		assert_int_equal(mantis_codec_iter_next(&it, &r), MANTIS_OK); /* header */
		size_t start = it.offset;
		while (mantis_codec_iter_next(&it, &r) == MANTIS_OK) {
			assert_int_equal(mantis_wal_append(w, seg + start, r.size), MANTIS_OK);
			start = it.offset;
		}
		assert_int_equal(it.offset, len);
		free(seg);
	}
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	for (uint64_t n = 10; n <= 16; n++) {
		tu_seg_path(a, sizeof a, src, n);
		tu_seg_path(b, sizeof b, dir, n);
		size_t la, lb;
		uint8_t *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
		assert_non_null(x);
		assert_non_null(y);
		assert_int_equal(la, lb);
		assert_memory_equal(x, y, la);
		free(x);
		free(y);
	}
	tu_seg_path(b, sizeof b, dir, 17);
	assert_int_equal(access(b, F_OK), -1);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

static void
roundtrip(uint32_t sync, uint64_t segsize, int nops, int snap_at)
{
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	tu_buf want = {0}, got = {0};
	stream_write(dir, 7 + (uint64_t)nops, nops, snap_at, sync, segsize, &want);
	assert_int_equal(tu_listing(dir, &got, NULL), MANTIS_OK);
	assert_string_equal((char *)got.p, (char *)want.p);
	/* A second recovery of a cleanly closed log sees the same. */
	tu_buf again = {0};
	assert_int_equal(tu_listing(dir, &again, NULL), MANTIS_OK);
	assert_string_equal((char *)again.p, (char *)want.p);
	tu_buf_free(&want);
	tu_buf_free(&got);
	tu_buf_free(&again);
	tu_rmrf(dir);
}

static void
test_roundtrip_plain(void **state)
{
	(void)state;
	roundtrip(MANTIS_SYNC_NONE, 0, 400, -1);
}

static void
test_roundtrip_rotation_snapshot(void **state)
{
	(void)state;
	roundtrip(MANTIS_SYNC_ALWAYS, 512, 300, 150);
	roundtrip(MANTIS_SYNC_INTERVAL, 2048, 300, 299); /* snapshot at the end */
}

/* Appends continue after a reopen (new segment, next number); a checkpoint
 * removes every covered segment and the older snapshot. */
static void
test_reopen_and_checkpoint(void **state)
{
	(void)state;
	char dir[256], p[1200];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 256, NULL, NULL);
	tu_buf recs = {0};
	for (uint64_t s = 1; s <= 20; s++) {
		recs.len = 0;
		tu_put(&recs, s, "k", "some value bytes", 0);
		assert_int_equal(mantis_wal_append(w, recs.p, recs.len), MANTIS_OK);
	}
	mantis_wal_stats st;
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_true(st.segments > 3);
	uint64_t segs_before = st.segments;
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);

	mantis_wal_recovery info;
	w = open_ok(dir, MANTIS_SYNC_NONE, 256, NULL, &info);
	assert_int_equal(info.last_seq, 20);
	assert_int_equal(info.segments, segs_before);
	recs.len = 0;
	tu_put(&recs, 21, "k", "after reopen", 0);
	assert_int_equal(mantis_wal_append(w, recs.p, recs.len), MANTIS_OK);
	/* A seq not above the last is refused. */
	recs.len = 0;
	tu_put(&recs, 21, "k", "dup", 0);
	assert_int_equal(mantis_wal_append(w, recs.p, recs.len), MANTIS_INVALID);
	tu_seg_path(p, sizeof p, dir, segs_before + 1);
	assert_int_equal(access(p, F_OK), 0); /* a new segment, not an append to the old */

	mantis_snapshot_writer *sw;
	assert_int_equal(mantis_wal_snapshot_begin(w, 21, &sw), MANTIS_OK);
	mantis_record r = {.type = MANTIS_REC_PUT, .seq = 21, .key = (const uint8_t *)"k",
			   .key_len = 1, .value = (const uint8_t *)"after reopen",
			   .value_len = 12};
	assert_int_equal(mantis_snapshot_add(sw, &r), MANTIS_OK);
	assert_int_equal(mantis_snapshot_commit(sw, NULL), MANTIS_OK);
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_int_equal(st.segments, 0);
	assert_int_equal(st.last_checkpoint_seq, 21);
	for (uint64_t n = 1; n <= segs_before + 1; n++) {
		tu_seg_path(p, sizeof p, dir, n);
		assert_int_equal(access(p, F_OK), -1);
	}
	recs.len = 0;
	tu_del(&recs, 22, "k");
	assert_int_equal(mantis_wal_append(w, recs.p, recs.len), MANTIS_OK);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);

	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_non_null(strstr((char *)got.p, "snapshot 21 1\n"));
	assert_non_null(strstr((char *)got.p, "W 2 22 0 6b -\nlast 22\n"));
	assert_int_equal(info.replayed, 1);
	tu_buf_free(&got);
	tu_buf_free(&recs);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Torn tails and corruption                                                */
/* ------------------------------------------------------------------------ */

/* Writes a one-segment log of a few records (one a batch) and returns the
 * segment's bytes and the end offset of each record (ends[0] = header). */
static uint8_t *
one_segment(const char *dir, size_t *len, size_t *ends, size_t *nends)
{
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 0, NULL, NULL);
	tu_buf b = {0}, nested = {0};
	tu_put(&b, 1, "alpha", "one", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	b.len = 0;
	tu_put(&b, 2, "beta", "a longer value that spans some bytes", TTL_BASE);
	tu_del(&b, 3, "alpha");
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	b.len = 0;
	tu_put(&nested, 4, "gamma", "g", 0);
	tu_del(&nested, 5, "beta");
	tu_rec(&b, MANTIS_REC_BATCH, 4, 0, NULL, 0, nested.p, nested.len);
	tu_put(&b, 6, "delta", "last", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_buf_free(&b);
	tu_buf_free(&nested);
	char p[1200];
	tu_seg_path(p, sizeof p, dir, 1);
	uint8_t *seg = tu_read_file(p, len);
	assert_non_null(seg);
	mantis_codec_iter it;
	mantis_codec_iter_init(&it, seg, *len);
	mantis_record r;
	*nends = 0;
	while (mantis_codec_iter_next(&it, &r) == MANTIS_OK)
		ends[(*nends)++] = it.offset;
	assert_int_equal(it.offset, *len);
	assert_int_equal(*nends, 6); /* header + 5 records */
	return seg;
}

/* For every cut of the segment (and the same cut followed by zeros, as
 * when a page write is torn or space was allocated but never written),
 * recovery keeps exactly the complete records and never errors. */
static void
test_torn_tail_every_offset(void **state)
{
	(void)state;
	char dir[256], p[1200];
	tu_tmpdir(dir, sizeof dir);
	size_t len, ends[16], nends;
	uint8_t *seg = one_segment(dir, &len, ends, &nends);
	uint8_t *img = calloc(1, len + 64);
	assert_non_null(img);
	tu_seg_path(p, sizeof p, dir, 1);
	static const uint64_t last_seq_after[] = {0, 1, 2, 3, 5, 6};
	for (int zeros = 0; zeros < 2; zeros++) {
		for (size_t cut = 0; cut <= len; cut++) {
			size_t flen = zeros ? len + 64 : cut;
			memset(img, 0, len + 64);
			memcpy(img, seg, cut);
			tu_write_file(p, img, flen);
			/* The complete prefix: a record counts when its bytes
			 * are all there (a cut inside its zero padding followed
			 * by zeros leaves it whole). */
			size_t keep = 0, nrec = 0;
			for (size_t i = 0; i < nends; i++)
				if (ends[i] <= flen && memcmp(img, seg, ends[i]) == 0) {
					keep = ends[i];
					nrec = i;
				}
			mantis_wal_recovery info;
			tu_buf got = {0};
			mantis_status st = tu_listing(dir, &got, &info);
			if (st != MANTIS_OK)
				fail_msg("cut %zu zeros %d: %s: %s", cut, zeros,
					 mantis_strerror(st), info.error_reason);
			assert_int_equal(info.replayed, nrec);
			assert_int_equal(info.torn_bytes, flen - keep);
			assert_int_equal(info.last_seq, keep ? last_seq_after[nrec] : 0);
			if (flen > keep) {
				assert_int_equal(info.torn_offset, keep);
				assert_string_equal(info.torn_file, p);
			}
			struct stat sb;
			if (keep == 0) {
				assert_int_equal(stat(p, &sb), -1); /* nothing left: removed */
			} else {
				assert_int_equal(stat(p, &sb), 0);
				assert_int_equal((size_t)sb.st_size, keep);
			}
			tu_buf_free(&got);
		}
	}
	free(img);
	free(seg);
	tu_rmrf(dir);
}

static void
write_segment(const char *dir, uint64_t num, const uint8_t *data, size_t len)
{
	char p[1200];
	tu_seg_path(p, sizeof p, dir, num);
	tu_write_file(p, data, len);
}

static void
expect_corrupt(const char *dir, uint64_t seg, uint64_t off, mantis_status want)
{
	char p[1200];
	tu_seg_path(p, sizeof p, dir, seg);
	tu_expect_open_error(dir, p, off, want);
}

/* A flipped bit anywhere in a record in the middle of the log -- every bit
 * of its header (crc, type, ver, hcheck, lengths, seq, expiry) and one bit
 * of every body byte -- is MANTIS_CORRUPT naming the file and the
 * record's offset, and nothing is changed on disk. */
static void
test_bitflip_mid_log(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	size_t len, ends[16], nends;
	uint8_t *seg = one_segment(dir, &len, ends, &nends);
	uint8_t *img = malloc(len);
	assert_non_null(img);
	/* Victims: the second record (PUT with TTL) and the batch. */
	const size_t victims[] = {1, 3};
	for (size_t v = 0; v < 2; v++) {
		size_t start = ends[victims[v]], end = ends[victims[v] + 1];
		for (size_t byte = start; byte < end; byte++) {
			for (int bit = 0; bit < 8; bit++) {
				if (byte >= start + 32 && bit != (int)(byte % 8))
					continue; /* one bit per body byte */
				memcpy(img, seg, len);
				img[byte] ^= (uint8_t)(1u << bit);
				write_segment(dir, 1, img, len);
				expect_corrupt(dir, 1, start, MANTIS_CORRUPT);
				size_t n;
				char p[1200];
				tu_seg_path(p, sizeof p, dir, 1);
				uint8_t *after = tu_read_file(p, &n);
				assert_int_equal(n, len); /* not truncated */
				free(after);
			}
		}
	}
	free(img);
	free(seg);
	tu_rmrf(dir);
}

/* The same damage in an earlier segment is corrupt even where it would be
 * a torn tail in the last one; a zero-filled tail is torn only in the
 * last segment; a gap in segment numbers and a header naming the wrong
 * segment are corrupt. */
static void
test_corrupt_shapes(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	size_t len, ends[16], nends;
	uint8_t *seg = one_segment(dir, &len, ends, &nends);
	uint8_t *img = calloc(1, len + 4096);
	assert_non_null(img);

	/* Segment 2: a header (first seq 7) and one record. */
	tu_buf s2 = {0};
	uint8_t val[24] = {0};
	wal_put32(val, 1);
	wal_put64(val + 8, 2);
	wal_put64(val + 16, 7);
	tu_rec(&s2, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12, val, 24);
	tu_put(&s2, 7, "epsilon", "e", 0);
	write_segment(dir, 2, s2.p, s2.len);
	mantis_wal_recovery info;
	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.last_seq, 7);
	tu_buf_free(&got);

	/* Zero-filled tail of 4 KiB: torn in the last segment. */
	memcpy(img, s2.p, s2.len);
	write_segment(dir, 2, img, s2.len + 4096);
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.torn_bytes, 4096);
	assert_int_equal(info.torn_offset, s2.len);
	assert_int_equal(info.last_seq, 7);
	tu_buf_free(&got);
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.torn_bytes, 0); /* cut for good */
	tu_buf_free(&got);

	/* ... but corrupt in segment 1, which is not the last. */
	memcpy(img, seg, len);
	memset(img + len, 0, 4096);
	write_segment(dir, 1, img, len + 4096);
	expect_corrupt(dir, 1, len, MANTIS_CORRUPT);
	/* A last record cut short in segment 1: corrupt there too. */
	write_segment(dir, 1, seg, len - 3);
	expect_corrupt(dir, 1, ends[4], MANTIS_CORRUPT);
	write_segment(dir, 1, seg, len);

	/* A corrupt final record followed only by zeros ends the non-zero
	 * data: torn (a write torn at a page boundary). */
	memcpy(img, s2.p, s2.len);
	memset(img + s2.len, 0, 4096);
	img[s2.len - 2] ^= 0x10; /* the last record's key */
	write_segment(dir, 2, img, s2.len + 100);
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.torn_offset, 72); /* cut after the header */
	assert_int_equal(info.last_seq, 6);
	tu_buf_free(&got);
	/* Segment 2 now holds only its header; put its record back. */
	write_segment(dir, 2, s2.p, s2.len);

	/* Damage followed by more data in the last segment: corrupt. */
	tu_buf s2b = {0};
	tu_buf_add(&s2b, s2.p, s2.len);
	tu_put(&s2b, 8, "zeta", "z", 0);
	memcpy(img, s2b.p, s2b.len);
	img[s2.len - 2] ^= 1;
	write_segment(dir, 2, img, s2b.len);
	expect_corrupt(dir, 2, 72, MANTIS_CORRUPT);

	/* A valid record whose seq does not increase. */
	tu_buf s2c = {0};
	tu_buf_add(&s2c, s2.p, s2.len);
	tu_put(&s2c, 7, "eta", "dup seq", 0);
	tu_put(&s2c, 9, "theta", "more", 0);
	write_segment(dir, 2, s2c.p, s2c.len);
	expect_corrupt(dir, 2, s2.len, MANTIS_CORRUPT);

	/* Header first-seq disagreeing with the first record. */
	tu_buf s2d = {0};
	wal_put64(val + 16, 99);
	tu_rec(&s2d, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12, val, 24);
	tu_put(&s2d, 7, "epsilon", "e", 0);
	write_segment(dir, 2, s2d.p, s2d.len);
	expect_corrupt(dir, 2, 72, MANTIS_CORRUPT);

	/* Header naming the wrong segment; unknown segment version. */
	tu_buf s2e = {0};
	wal_put64(val + 16, 7);
	wal_put64(val + 8, 5);
	tu_rec(&s2e, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12, val, 24);
	tu_put(&s2e, 7, "epsilon", "e", 0);
	write_segment(dir, 2, s2e.p, s2e.len);
	expect_corrupt(dir, 2, 0, MANTIS_CORRUPT);
	s2e.len = 0;
	wal_put64(val + 8, 2);
	wal_put32(val, 2);
	tu_rec(&s2e, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12, val, 24);
	write_segment(dir, 2, s2e.p, s2e.len);
	expect_corrupt(dir, 2, 0, MANTIS_UNSUPPORTED);
	/* A record of an unknown version in a middle segment. */
	write_segment(dir, 2, s2.p, s2.len);
	memcpy(img, seg, len);
	img[ends[2] + 5] = 2; /* ver */
	{
		uint8_t h[28];
		memcpy(h, img + ends[2] + 4, 28);
		h[2] = h[3] = 0;
		uint32_t hc = mantis_crc32c(0, h, 28);
		img[ends[2] + 6] = (uint8_t)hc;
		img[ends[2] + 7] = (uint8_t)(hc >> 8);
	}
	write_segment(dir, 1, img, len);
	expect_corrupt(dir, 1, ends[2], MANTIS_UNSUPPORTED);
	write_segment(dir, 1, seg, len);

	/* A missing segment between two others. */
	s2e.len = 0;
	wal_put32(val, 1);
	wal_put64(val + 8, 4);
	wal_put64(val + 16, 8);
	tu_rec(&s2e, MANTIS_REC_META, 0, 0, "mantisdb.wal", 12, val, 24);
	tu_put(&s2e, 8, "iota", "i", 0);
	write_segment(dir, 4, s2e.p, s2e.len);
	expect_corrupt(dir, 3, 0, MANTIS_CORRUPT);

	tu_buf_free(&s2);
	tu_buf_free(&s2b);
	tu_buf_free(&s2c);
	tu_buf_free(&s2d);
	tu_buf_free(&s2e);
	free(img);
	free(seg);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Lock                                                                     */
/* ------------------------------------------------------------------------ */

static void
test_lock(void **state)
{
	(void)state;
	char dir[256], p[1200];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 0, NULL, NULL);
	mantis_wal *w2 = NULL;
	mantis_wal_recovery info;
	assert_int_equal(mantis_wal_open(dir, NULL, NULL, &info, &w2), MANTIS_BUSY);
	assert_null(w2);
	snprintf(p, sizeof p, "%s/LOCK", dir);
	assert_string_equal(info.error_file, p);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);

	/* Held by another open file description (as another process would). */
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(mantis_wal_open(dir, NULL, NULL, &info, &w2), MANTIS_BUSY);
	close(fd);
	w = open_ok(dir, MANTIS_SYNC_NONE, 0, NULL, NULL);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);

	/* Argument checks and close(NULL). */
	assert_int_equal(mantis_wal_open(NULL, NULL, NULL, NULL, &w2), MANTIS_INVALID);
	assert_int_equal(mantis_wal_open(dir, NULL, NULL, NULL, NULL), MANTIS_INVALID);
	mantis_wal_options bad = {.sync = 7};
	assert_int_equal(mantis_wal_open(dir, &bad, NULL, NULL, &w2), MANTIS_INVALID);
	assert_int_equal(mantis_wal_close(NULL), MANTIS_OK);
	mantis_snapshot_abort(NULL);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Fail-stop under injected I/O errors                                      */
/* ------------------------------------------------------------------------ */

static int inj_writes_left = -1; /* successful writes before failing; -1 never */
static int inj_write_errno;
static bool inj_short; /* the failing write first writes half */
static int inj_fsyncs_left = -1;

static ssize_t
inj_write(int fd, const void *buf, size_t len)
{
	if (inj_writes_left == 0) {
		if (inj_short && len > 1) {
			inj_short = false;
			return write(fd, buf, len / 2);
		}
		errno = inj_write_errno;
		return -1;
	}
	if (inj_writes_left > 0)
		inj_writes_left--;
	return write(fd, buf, len);
}

static int
inj_fsync(int fd)
{
	if (inj_fsyncs_left == 0) {
		errno = EIO;
		return -1;
	}
	if (inj_fsyncs_left > 0)
		inj_fsyncs_left--;
	return fsync(fd);
}

static const mantis_file_ops inj_ops = {
	.write = inj_write, .pwrite = pwrite, .fsync = inj_fsync, .ftruncate = ftruncate};

static void
failstop_case(int write_errno, bool short_write, bool fsync_fails)
{
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	inj_writes_left = -1;
	inj_fsyncs_left = -1;
	mantis_file_ops_set(&inj_ops);
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_ALWAYS, 0, NULL, NULL);
	tu_buf b = {0};
	tu_put(&b, 1, "a", "survives", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	if (fsync_fails) {
		inj_fsyncs_left = 0;
	} else {
		inj_writes_left = 0;
		inj_write_errno = write_errno;
		inj_short = short_write;
	}
	b.len = 0;
	tu_put(&b, 2, "b", "the write that fails", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_IO);
	mantis_wal_stats st;
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_true(st.failed);
	assert_int_equal(st.fail_errno, fsync_fails ? EIO : write_errno);
	/* Fail-stop: even with the disk healthy again, nothing more is
	 * accepted until reopen. */
	inj_writes_left = -1;
	inj_fsyncs_left = -1;
	b.len = 0;
	tu_put(&b, 3, "c", "refused", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_READ_ONLY);
	assert_int_equal(mantis_wal_sync(w), MANTIS_IO);
	mantis_snapshot_writer *sw = NULL;
	assert_int_equal(mantis_wal_snapshot_begin(w, 1, &sw), MANTIS_READ_ONLY);
	assert_int_equal(mantis_wal_close(w), MANTIS_IO);
	mantis_file_ops_set(NULL);

	tu_buf got = {0};
	mantis_wal_recovery info;
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_non_null(strstr((char *)got.p, "W 1 1 0 61 7375727669766573\n"));
	assert_null(strstr((char *)got.p, "W 1 3 "));
	if (!fsync_fails) /* the failed write was cut off, not replayed */
		assert_null(strstr((char *)got.p, "W 1 2 "));
	tu_buf_free(&got);
	tu_buf_free(&b);
	tu_rmrf(dir);
}

static void
test_failstop(void **state)
{
	(void)state;
	failstop_case(ENOSPC, false, false);
	failstop_case(EIO, false, false);
	failstop_case(ENOSPC, true, false); /* half written, then ENOSPC */
	failstop_case(0, false, true);	    /* fsync EIO */
}

/* A failure while starting a segment (header write) also fail-stops. */
static void
test_failstop_rotation(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_file_ops_set(&inj_ops);
	inj_fsyncs_left = -1;
	inj_writes_left = -1;
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 64, NULL, NULL);
	tu_buf b = {0};
	tu_put(&b, 1, "a", "first segment", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	inj_writes_left = 0; /* the next segment's header */
	inj_write_errno = ENOSPC;
	inj_short = false;
	b.len = 0;
	tu_put(&b, 2, "b", "second segment", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_IO);
	inj_writes_left = -1;
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_READ_ONLY);
	assert_int_equal(mantis_wal_close(w), MANTIS_IO);
	mantis_file_ops_set(NULL);
	/* The empty new segment is the last one: a torn (empty) tail. */
	tu_buf got = {0};
	mantis_wal_recovery info;
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.last_seq, 1);
	tu_buf_free(&got);
	tu_buf_free(&b);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Group commit and the interval syncer                                     */
/* ------------------------------------------------------------------------ */

#define GC_THREADS 4

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_enqueued;
static bool gate_armed;

/* Holds the first fsync until every appender has enqueued, so the others
 * must pile up behind the leader and share the next flush. */
static int
gate_fsync(int fd)
{
	pthread_mutex_lock(&gate_mu);
	if (gate_armed) {
		gate_armed = false;
		while (gate_enqueued < GC_THREADS)
			pthread_cond_wait(&gate_cv, &gate_mu);
	}
	pthread_mutex_unlock(&gate_mu);
	return fsync(fd);
}

static const mantis_file_ops gate_ops = {
	.write = write, .pwrite = pwrite, .fsync = gate_fsync, .ftruncate = ftruncate};

typedef struct gc_ctx {
	mantis_wal *w;
	pthread_mutex_t *seq_mu;
	uint64_t *seq;
	int rounds;
	int id;
	bool gate;
} gc_ctx;

static void *
gc_thread(void *arg)
{
	gc_ctx *c = arg;
	for (int i = 0; i < c->rounds; i++) {
		tu_buf b = {0};
		char key[32];
		snprintf(key, sizeof key, "t%d-%04d", c->id, i);
		/* Seqs are assigned and enqueued under one lock, waited on
		 * outside it: the pattern mantis.h prescribes. */
		pthread_mutex_lock(c->seq_mu);
		uint64_t seq = ++*c->seq;
		tu_put(&b, seq, key, "v", 0);
		uint64_t pos;
		mantis_status st = mantis_wal_enqueue(c->w, b.p, b.len, &pos);
		pthread_mutex_unlock(c->seq_mu);
		if (c->gate) {
			pthread_mutex_lock(&gate_mu);
			gate_enqueued++;
			pthread_cond_broadcast(&gate_cv);
			pthread_mutex_unlock(&gate_mu);
		}
		if (st == MANTIS_OK)
			st = mantis_wal_wait(c->w, pos);
		tu_buf_free(&b);
		if (st != MANTIS_OK)
			return (void *)1;
	}
	return NULL;
}

static void
run_appenders(mantis_wal *w, int rounds, bool gate)
{
	pthread_mutex_t seq_mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t seq = 0;
	pthread_t th[GC_THREADS];
	gc_ctx ctx[GC_THREADS];
	for (int i = 0; i < GC_THREADS; i++) {
		ctx[i] = (gc_ctx){w, &seq_mu, &seq, rounds, i, gate};
		assert_int_equal(pthread_create(&th[i], NULL, gc_thread, &ctx[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
}

static void
test_group_commit_shares_fsync(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_file_ops_set(&gate_ops);
	gate_enqueued = 0;
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_ALWAYS, 0, NULL, NULL);
	gate_armed = true; /* after open: recovery fsyncs directories too */
	run_appenders(w, 1, true);
	mantis_wal_stats st;
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_int_equal(st.appends, GC_THREADS);
	/* The first leader flushes what it found; everyone who enqueued while
	 * it was held shares the second write and fsync. */
	assert_true(st.flushes <= 2);
	assert_true(st.syncs <= 2);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	mantis_file_ops_set(NULL);
	mantis_wal_recovery info;
	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.replayed, GC_THREADS);
	tu_buf_free(&got);
	tu_rmrf(dir);
}

/* Many concurrent appenders with rotation: every acknowledged record is
 * recovered, in sequence order (checked by recovery itself). */
static void
test_concurrent_appenders(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_ALWAYS, 1024, NULL, NULL);
	const int rounds = 100;
	run_appenders(w, rounds, false);
	mantis_wal_stats st;
	assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	assert_int_equal(st.appends, GC_THREADS * rounds);
	assert_true(st.flushes <= st.appends);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	mantis_wal_recovery info;
	tu_buf got = {0};
	assert_int_equal(tu_listing(dir, &got, &info), MANTIS_OK);
	assert_int_equal(info.replayed, GC_THREADS * rounds);
	assert_int_equal(info.last_seq, GC_THREADS * rounds);
	for (int t = 0; t < GC_THREADS; t++) {
		char key[64];
		snprintf(key, sizeof key, "t%d-%04d", t, rounds - 1);
		tu_buf hex = {0};
		tu_hex(&hex, (const uint8_t *)key, strlen(key));
		assert_non_null(strstr((char *)got.p, (char *)hex.p));
		tu_buf_free(&hex);
	}
	tu_buf_free(&got);
	tu_rmrf(dir);
}

static void
test_interval_syncer(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal_options o = {.sync = MANTIS_SYNC_INTERVAL, .sync_interval_ms = 2};
	mantis_wal *w = NULL;
	assert_int_equal(mantis_wal_open(dir, &o, NULL, NULL, &w), MANTIS_OK);
	tu_buf b = {0};
	tu_put(&b, 1, "k", "v", 0);
	assert_int_equal(mantis_wal_append(w, b.p, b.len), MANTIS_OK);
	/* Not a timing assertion: wait (bounded) for the background fsync. */
	mantis_wal_stats st = {0};
	for (int i = 0; i < 20000 && st.syncs == 0; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		assert_int_equal(mantis_wal_stats_get(w, &st), MANTIS_OK);
	}
	assert_true(st.syncs >= 1);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_buf_free(&b);
	tu_rmrf(dir);
}

/* enqueue refuses what recovery would refuse. */
static void
test_enqueue_validation(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	mantis_wal *w = open_ok(dir, MANTIS_SYNC_NONE, 0, NULL, NULL);
	tu_buf b = {0}, nested = {0};
	uint64_t pos;
	assert_int_equal(mantis_wal_enqueue(w, NULL, 0, &pos), MANTIS_INVALID);
	tu_put(&b, 5, "k", "v", 0);
	b.p[32] ^= 1; /* key byte: CRC fails */
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_INVALID);
	b.len = 0;
	tu_put(&b, 0, "k", "v", 0); /* seq 0 */
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_INVALID);
	b.len = 0;
	tu_put(&b, 5, "k", "v", 0);
	tu_put(&b, 5, "k", "v", 0); /* not increasing */
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_INVALID);
	b.len = 0;
	tu_rec(&b, MANTIS_REC_META, 5, 0, "m", 1, "x", 1);
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_INVALID);
	b.len = 0;
	tu_put(&nested, 6, "k", "v", 0); /* batch seq 5, nested starts at 6 */
	tu_rec(&b, MANTIS_REC_BATCH, 5, 0, NULL, 0, nested.p, nested.len);
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_INVALID);
	b.len = 0;
	tu_put(&b, 5, "k", "v", 0);
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len - 8, &pos), MANTIS_INVALID);
	assert_int_equal(mantis_wal_enqueue(w, b.p, b.len, &pos), MANTIS_OK);
	assert_int_equal(mantis_wal_wait(w, pos), MANTIS_OK);
	assert_int_equal(mantis_wal_wait(w, pos + 1), MANTIS_INVALID); /* never returned */
	assert_int_equal(mantis_wal_wait(NULL, pos), MANTIS_INVALID);
	assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	tu_buf_free(&b);
	tu_buf_free(&nested);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Crash loop                                                               */
/* ------------------------------------------------------------------------ */

static mantis_status
crash_collect(void *ctx, const mantis_record *r)
{
	uint64_t *last = ctx;
	/* Recovery already checks seqs increase; they must also be gapless,
	 * since the writer appends one seq at a time. */
	assert_int_equal(r->seq, *last + 1);
	char key[32];
	snprintf(key, sizeof key, "crash-%llu", (unsigned long long)r->seq);
	assert_int_equal(r->key_len, strlen(key));
	assert_memory_equal(r->key, key, r->key_len);
	*last = r->seq;
	return MANTIS_OK;
}

/* A writer process (this binary, --crash-writer) with sync=always is
 * SIGKILLed after a random number of acknowledged appends, CRASH_CYCLES
 * times (MANTIS_CRASH_CYCLES overrides) over the same directory.  After each kill, recovery must open
 * cleanly and hold every acknowledged seq, gaplessly, and nothing torn. */
#define CRASH_CYCLES 20
static char self_exe[4096];

static void
test_crash_loop(void **state)
{
	(void)state;
	char dir[256];
	tu_tmpdir(dir, sizeof dir);
	uint64_t acked = 0, rng = 0x2545F4914F6CDD1Dull;
	const char *env = getenv("MANTIS_CRASH_CYCLES");
	int cycles = env != NULL ? atoi(env) : CRASH_CYCLES;
	int torn = 0;
	signal(SIGPIPE, SIG_IGN); /* a writer that died early fails an assert instead */
	for (int cycle = 0; cycle < cycles; cycle++) {
		int fds[2], go[2];
		assert_int_equal(pipe(fds), 0);
		assert_int_equal(pipe(go), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			dup2(fds[1], 1);
			dup2(go[0], 0);
			close(fds[0]);
			close(fds[1]);
			close(go[0]);
			close(go[1]);
			execl(self_exe, self_exe, "--crash-writer", dir, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		close(go[0]);
		assert_int_equal(write(go[1], "gggg", 4), 4); /* a window of 4 */
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint64_t kill_after = 1 + rng % 64, got = 0, seq;
		bool killed = false;
		for (;;) {
			ssize_t n = read(fds[0], &seq, sizeof seq);
			if (n == 0)
				break; /* EOF: the writer is gone */
			assert_int_equal(n, sizeof seq);
			assert_int_equal(seq, acked + 1);
			acked = seq;
			if (++got == kill_after && !killed) {
				kill(pid, SIGKILL);
				killed = true; /* acks already in the pipe still count */
			}
			if (!killed)
				assert_int_equal(write(go[1], "g", 1), 1);
		}
		close(fds[0]);
		close(go[1]);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		uint64_t last = 0;
		mantis_wal_handler h = {.ctx = &last, .apply = crash_collect};
		mantis_wal_recovery info;
		mantis_wal *w = NULL;
		mantis_status st = mantis_wal_open(dir, NULL, &h, &info, &w);
		if (st != MANTIS_OK)
			fail_msg("cycle %d: %s: %s at %llu: %s", cycle, mantis_strerror(st),
				 info.error_file, (unsigned long long)info.error_offset,
				 info.error_reason);
		assert_true(last >= acked); /* every acknowledged write survived */
		torn += info.torn_bytes > 0;
		assert_int_equal(info.last_seq, last);
		acked = last; /* the next writer continues from what is on disk */
		assert_int_equal(mantis_wal_close(w), MANTIS_OK);
	}
	assert_true(acked >= (uint64_t)cycles);
	if (env != NULL)
		print_message("crash loop: %d cycles, %llu records, %d torn tails cut\n",
			      cycles, (unsigned long long)acked, torn);
	tu_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Helper modes for go/wal/interop_test.go                                  */
/* ------------------------------------------------------------------------ */

/* Appends PUTs with sync=always forever, writing each seq to stdout
 * (8 bytes) only after mantis_wal_append acknowledged it.  Killed by the
 * crash test. */
static int
crash_writer(const char *dir)
{
	mantis_wal_options o = {.sync = MANTIS_SYNC_ALWAYS, .segment_size = 4096};
	mantis_wal_recovery info;
	mantis_wal *w = NULL;
	if (mantis_wal_open(dir, &o, NULL, &info, &w) != MANTIS_OK)
		return 1;
	uint8_t buf[256];
	for (uint64_t seq = info.last_seq + 1;; seq++) {
		/* One token from the parent per append keeps this writer only
		 * a few records ahead of the acks it has read, so the kill
		 * lands at a random point of an append, not after a burst. */
		char token;
		if (read(0, &token, 1) != 1)
			return 1;
		char key[32];
		snprintf(key, sizeof key, "crash-%llu", (unsigned long long)seq);
		mantis_record r = {.type = MANTIS_REC_PUT, .seq = seq,
				   .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key),
				   .value = (const uint8_t *)key, .value_len = (uint32_t)strlen(key)};
		size_t n;
		if (mantis_codec_encode(buf, sizeof buf, &r, &n) != MANTIS_OK ||
		    mantis_wal_append(w, buf, n) != MANTIS_OK)
			return 1;
		if (write(1, &seq, sizeof seq) != sizeof seq)
			return 1;
	}
}

static int
helper_main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--write-interop") == 0) {
		tu_buf want = {0};
		/* Small segments and a mid-stream checkpoint exercise every
		 * file the format has. */
		stream_write(argv[2], 2026, 2000, 999, MANTIS_SYNC_NONE, 4096, &want);
		tu_write_file(argv[3], want.p, want.len);
		tu_buf_free(&want);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--list") == 0) {
		tu_buf got = {0};
		mantis_wal_recovery info;
		mantis_status st = tu_listing(argv[2], &got, &info);
		if (st != MANTIS_OK) {
			fprintf(stderr, "%s: %s at %llu: %s\n", mantis_strerror(st),
				info.error_file, (unsigned long long)info.error_offset,
				info.error_reason);
			return 1;
		}
		fwrite(got.p, 1, got.len, stdout);
		tu_buf_free(&got);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--crash-writer") == 0)
		return crash_writer(argv[2]);
	fprintf(stderr, "usage: test_wal [--write-interop DIR LISTING | --list DIR | --crash-writer DIR]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return helper_main(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n > 0)
		self_exe[n] = '\0';
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_read),
		cmocka_unit_test(test_golden_write_bytes),
		cmocka_unit_test(test_roundtrip_plain),
		cmocka_unit_test(test_roundtrip_rotation_snapshot),
		cmocka_unit_test(test_reopen_and_checkpoint),
		cmocka_unit_test(test_torn_tail_every_offset),
		cmocka_unit_test(test_bitflip_mid_log),
		cmocka_unit_test(test_corrupt_shapes),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_failstop),
		cmocka_unit_test(test_failstop_rotation),
		cmocka_unit_test(test_group_commit_shares_fsync),
		cmocka_unit_test(test_concurrent_appenders),
		cmocka_unit_test(test_interval_syncer),
		cmocka_unit_test(test_enqueue_validation),
		cmocka_unit_test(test_crash_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
