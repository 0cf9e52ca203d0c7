/*
 * snapshot.c -- snapshots (checkpoints): validated reading at open (mmap,
 * one pass that both checks and hands records out), and writing through
 * <seq>.snap.tmp, fsync, rename, directory fsync, then dropping the WAL
 * segments and older snapshots the new one covers.
 *
 * File layout (docs/FORMAT.md, "Snapshot"), every record codec-encoded:
 *
 *   +--------------------------------+----------------------+-------------------------------+
 *   | META "mantisdb.snapshot"       | PUT, PUT, ...        | META "mantisdb.snapshot.end"  |
 *   | u32 1, u32 0, u64 seq,         | ascending key order, | u64 count, u64 seq            |
 *   | u64 count          (80 bytes)  | seq <= snapshot seq  |                   (72 bytes)  |
 *   +--------------------------------+----------------------+-------------------------------+
 *
 * A snapshot is valid only if it ends with the end record and both META
 * records agree with what lies between them.  The writer does not know the
 * count up front: it writes a header with count 0 and overwrites it
 * (same size) before the fsync, so a crash leaves at worst a .snap.tmp,
 * which recovery removes.
 */
#include "wal.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SNAP_BUF_SIZE ((size_t)1 << 20)

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* memcmp order, shorter first on a common prefix (the skiplist's order). */
static int
key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return (al > bl) - (al < bl);
}

mantis_status
snapshot_scan(const uint8_t *data, size_t len, uint64_t name_seq,
	      const mantis_wal_handler *h, const char *path,
	      mantis_wal_recovery *info, uint64_t *count_out)
{
	static const uint8_t empty[1];
	if (data == NULL)
		data = empty, len = 0;
	mantis_record hdr;
	mantis_status st = mantis_codec_decode(data, len, &hdr);
	if (st != MANTIS_OK)
		return wal_decode_error(info, path, 0, st, "snapshot header");
	if (!wal_meta_is(&hdr, SNAP_META_KEY, SNAP_HEADER_VALUE)) {
		wal_set_error(info, path, 0, "not a snapshot header");
		return MANTIS_CORRUPT;
	}
	uint32_t ver = wal_get32(hdr.value);
	if (ver != SNAP_FORMAT_VERSION) {
		wal_set_error(info, path, 0, "snapshot version %u", ver);
		return MANTIS_UNSUPPORTED;
	}
	uint64_t seq = wal_get64(hdr.value + 8), want = wal_get64(hdr.value + 16);
	if (seq != name_seq) {
		wal_set_error(info, path, 0, "header covers seq %llu, file name says %llu",
			      (unsigned long long)seq, (unsigned long long)name_seq);
		return MANTIS_CORRUPT;
	}
	if (h != NULL && h->snapshot_begin != NULL) {
		st = h->snapshot_begin(h->ctx, seq, want);
		if (st != MANTIS_OK) {
			wal_set_error(info, path, 0, "snapshot callback: %s",
				      mantis_strerror(st));
			return st;
		}
	}
	size_t off = hdr.size;
	uint64_t count = 0;
	const uint8_t *prev_key = NULL; /* points into the mapping */
	size_t prev_len = 0;
	mantis_record r;
	for (;;) {
		st = mantis_codec_decode(data + off, len - off, &r);
		if (st != MANTIS_OK)
			return wal_decode_error(info, path, off, st, "snapshot record");
		if (r.type == MANTIS_REC_META)
			break;
		const char *why = NULL;
		if (r.type != MANTIS_REC_PUT)
			why = "record type in a snapshot is not PUT";
		else if (r.seq > seq)
			why = "record seq above the snapshot's";
		else if (count > 0 && key_cmp(r.key, r.key_len, prev_key, prev_len) <= 0)
			why = "keys not in ascending order";
		else if (count >= want)
			why = "more records than the header's count";
		if (why != NULL) {
			wal_set_error(info, path, off, "%s", why);
			return MANTIS_CORRUPT;
		}
		if (h != NULL && h->snapshot_record != NULL) {
			st = h->snapshot_record(h->ctx, &r);
			if (st != MANTIS_OK) {
				wal_set_error(info, path, off, "snapshot callback: %s",
					      mantis_strerror(st));
				return st;
			}
		}
		off += r.size;
		count++;
		prev_key = r.key;
		prev_len = r.key_len;
	}
	/* r is the first META after the header: it must be the end record. */
	if (!wal_meta_is(&r, SNAP_END_META_KEY, SNAP_FOOTER_VALUE)) {
		wal_set_error(info, path, off, "not a snapshot end record");
		return MANTIS_CORRUPT;
	}
	uint64_t end_count = wal_get64(r.value), end_seq = wal_get64(r.value + 8);
	if (end_count != want || count != want) {
		wal_set_error(info, path, off, "record count %llu, header %llu, end record %llu",
			      (unsigned long long)count, (unsigned long long)want,
			      (unsigned long long)end_count);
		return MANTIS_CORRUPT;
	}
	if (end_seq != seq) {
		wal_set_error(info, path, off, "end record seq does not match the header");
		return MANTIS_CORRUPT;
	}
	if (off + r.size != len) {
		wal_set_error(info, path, off + r.size, "%zu bytes after the end record",
			      len - off - r.size);
		return MANTIS_CORRUPT;
	}
	if (count_out != NULL)
		*count_out = count;
	return MANTIS_OK;
}

mantis_status
snapshot_recover(mantis_wal *w, const mantis_wal_handler *h,
		 mantis_wal_recovery *info, uint64_t *snap_seq)
{
	char sdir[MANTIS_WAL_PATH_MAX], path[MANTIS_WAL_PATH_MAX];
	snprintf(sdir, sizeof sdir, "%s/%s", w->dir, SNAP_DIR);
	uint64_t *nums;
	size_t n;
	uint32_t removed = 0;
	mantis_status st = wal_list_dir(sdir, SNAP_EXT, TMP_EXT, &nums, &n, &removed);
	if (info != NULL)
		info->removed_tmp = removed;
	if (st == MANTIS_OK && removed > 0)
		st = wal_sync_dir(sdir);
	if (st != MANTIS_OK) {
		if (st == MANTIS_IO && info != NULL) {
			info->error_errno = errno;
			wal_set_error(info, sdir, 0, "list snapshots: %s", strerror(errno));
		}
		if (n > 0)
			mantis_free(nums, n * sizeof *nums);
		return st;
	}
	*snap_seq = 0;
	if (n == 0)
		return MANTIS_OK;
	/* Only the newest is considered: falling back to an older one could
	 * need WAL segments that its successor's checkpoint already removed. */
	uint64_t newest = nums[n - 1];
	mantis_free(nums, n * sizeof *nums);
	wal_path(path, sizeof path, w->dir, SNAP_DIR, newest, SNAP_EXT);
	wal_map m;
	if (wal_map_file(path, &m) != MANTIS_OK) {
		if (info != NULL) {
			info->error_errno = errno;
			wal_set_error(info, path, 0, "read snapshot: %s", strerror(errno));
		}
		return MANTIS_IO;
	}
	uint64_t count = 0;
	st = snapshot_scan(m.data, m.len, newest, h, path, info, &count);
	size_t bytes = m.len;
	wal_unmap(&m);
	if (st != MANTIS_OK)
		return st;
	if (info != NULL) {
		info->has_snapshot = true;
		info->snapshot_seq = newest;
		info->snapshot_count = count;
		info->snapshot_bytes = bytes;
	}
	*snap_seq = newest;
	return MANTIS_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

struct mantis_snapshot_writer {
	mantis_wal *w;
	uint64_t seq;
	int fd;
	bool broken; /* a rule was broken or a write failed: abort only */
	uint8_t *buf; /* write buffer: buf[0..len) not yet written     */
	size_t len, cap;
	uint8_t *prev_key; /* copy of the last key added                */
	size_t prev_len, prev_cap;
	uint64_t count;
	uint64_t size; /* bytes of the file so far, buffered included */
	char tmp[MANTIS_WAL_PATH_MAX];
	char final[MANTIS_WAL_PATH_MAX];
};

static void
end_ckpt(mantis_wal *w)
{
	pthread_mutex_lock(&w->mu);
	w->ckpt_active = false;
	pthread_mutex_unlock(&w->mu);
}

static void
sw_free(mantis_snapshot_writer *sw)
{
	if (sw->fd >= 0)
		close(sw->fd);
	mantis_free(sw->buf, sw->cap);
	mantis_free(sw->prev_key, sw->prev_cap);
	mantis_free(sw, sizeof *sw);
}

static mantis_status
sw_flush(mantis_snapshot_writer *sw)
{
	if (sw->len == 0)
		return MANTIS_OK;
	mantis_status st = wal_write_all(sw->fd, sw->buf, sw->len);
	sw->len = 0;
	return st;
}

/* Makes room for n more buffered bytes, flushing and growing as needed
 * (a single record can be larger than the usual buffer). */
static mantis_status
sw_reserve(mantis_snapshot_writer *sw, size_t n)
{
	if (sw->len + n <= sw->cap)
		return MANTIS_OK;
	mantis_status st = sw_flush(sw);
	if (st != MANTIS_OK || n <= sw->cap)
		return st;
	uint8_t *b = mantis_malloc(n);
	if (b == NULL)
		return MANTIS_NOMEM;
	mantis_free(sw->buf, sw->cap);
	sw->buf = b;
	sw->cap = n;
	return MANTIS_OK;
}

mantis_status
mantis_wal_snapshot_begin(mantis_wal *w, uint64_t seq, mantis_snapshot_writer **out)
{
	if (w == NULL || out == NULL)
		return MANTIS_INVALID;
	mantis_status st = MANTIS_OK;
	pthread_mutex_lock(&w->mu);
	if (w->closed)
		st = MANTIS_CLOSED;
	else if (w->failed)
		st = MANTIS_READ_ONLY;
	else if (w->ckpt_active)
		st = MANTIS_BUSY;
	else if (seq > w->last_seq || seq < w->last_ckpt_seq)
		st = MANTIS_INVALID;
	else
		w->ckpt_active = true;
	pthread_mutex_unlock(&w->mu);
	if (st != MANTIS_OK)
		return st;
	/* Close the current segment so that it can be dropped once covered. */
	st = wal_rotate(w);
	if (st != MANTIS_OK) {
		end_ckpt(w);
		return st;
	}
	mantis_snapshot_writer *sw = mantis_calloc(1, sizeof *sw);
	uint8_t *buf = mantis_malloc(SNAP_BUF_SIZE);
	if (sw == NULL || buf == NULL) {
		mantis_free(sw, sizeof *sw);
		mantis_free(buf, SNAP_BUF_SIZE);
		end_ckpt(w);
		return MANTIS_NOMEM;
	}
	sw->w = w;
	sw->seq = seq;
	sw->buf = buf;
	sw->cap = SNAP_BUF_SIZE;
	wal_path(sw->final, sizeof sw->final, w->dir, SNAP_DIR, seq, SNAP_EXT);
	wal_path(sw->tmp, sizeof sw->tmp, w->dir, SNAP_DIR, seq, TMP_EXT);
	sw->fd = open(sw->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sw->fd < 0) {
		sw_free(sw);
		end_ckpt(w);
		return MANTIS_IO;
	}
	/* The header's count is not known yet: a placeholder of the same
	 * size, overwritten at commit before the fsync. */
	uint8_t val[SNAP_HEADER_VALUE] = {0};
	wal_put32(val, SNAP_FORMAT_VERSION);
	wal_put64(val + 8, seq);
	sw->len = wal_encode_meta(sw->buf, sw->cap, SNAP_META_KEY, val, sizeof val);
	sw->size = sw->len;
	*out = sw;
	return MANTIS_OK;
}

/* The rules a snapshot record must obey; keeps a copy of its key. */
static mantis_status
sw_check(mantis_snapshot_writer *sw, const mantis_record *r)
{
	if (r->type != MANTIS_REC_PUT || r->seq > sw->seq ||
	    (sw->count > 0 &&
	     key_cmp(r->key, r->key_len, sw->prev_key, sw->prev_len) <= 0))
		return MANTIS_INVALID;
	if (r->key_len > sw->prev_cap) {
		size_t ncap = r->key_len < 64 ? 64 : r->key_len;
		uint8_t *k = mantis_malloc(ncap);
		if (k == NULL)
			return MANTIS_NOMEM;
		mantis_free(sw->prev_key, sw->prev_cap);
		sw->prev_key = k;
		sw->prev_cap = ncap;
	}
	if (r->key_len > 0)
		memcpy(sw->prev_key, r->key, r->key_len);
	sw->prev_len = r->key_len;
	return MANTIS_OK;
}

mantis_status
mantis_snapshot_add(mantis_snapshot_writer *sw, const mantis_record *rec)
{
	if (sw == NULL || rec == NULL)
		return MANTIS_INVALID;
	if (sw->broken)
		return MANTIS_INVALID;
	size_t n = 0;
	mantis_status st = mantis_codec_size(rec->type, rec->key_len, rec->value_len, &n);
	if (st == MANTIS_OK)
		st = sw_check(sw, rec);
	if (st == MANTIS_OK)
		st = sw_reserve(sw, n);
	if (st == MANTIS_OK)
		st = mantis_codec_encode(sw->buf + sw->len, sw->cap - sw->len, rec, &n);
	if (st != MANTIS_OK) {
		sw->broken = true;
		return st == MANTIS_TOO_LARGE || st == MANTIS_UNSUPPORTED ? MANTIS_INVALID : st;
	}
	sw->len += n;
	sw->size += n;
	sw->count++;
	return MANTIS_OK;
}

mantis_status
mantis_snapshot_add_encoded(mantis_snapshot_writer *sw, const void *buf, size_t len)
{
	if (sw == NULL || (buf == NULL && len > 0))
		return MANTIS_INVALID;
	if (sw->broken)
		return MANTIS_INVALID;
	mantis_codec_iter it;
	mantis_codec_iter_init(&it, buf, len);
	for (;;) {
		mantis_record r;
		mantis_status st = mantis_codec_iter_next(&it, &r);
		if (st == MANTIS_END)
			return MANTIS_OK;
		if (st != MANTIS_OK) {
			sw->broken = true;
			return MANTIS_INVALID;
		}
		st = sw_check(sw, &r);
		if (st == MANTIS_OK)
			st = sw_reserve(sw, r.size);
		if (st != MANTIS_OK) {
			sw->broken = true;
			return st;
		}
		memcpy(sw->buf + sw->len, (const uint8_t *)buf + it.offset - r.size, r.size);
		sw->len += r.size;
		sw->size += r.size;
		sw->count++;
	}
}

/* Removes closed segments whose records all have seq <= seq, oldest first
 * so a crash midway leaves a contiguous run, then older snapshots. */
static mantis_status
drop_covered(mantis_wal *w, uint64_t seq)
{
	char path[MANTIS_WAL_PATH_MAX], dir[MANTIS_WAL_PATH_MAX];
	bool removed = false;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		/* The open segment (if any) is always the last one and is kept. */
		if (w->nsegs == 0 || (w->cur_open && w->nsegs == 1) ||
		    w->segs[0].last > seq) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		uint64_t num = w->segs[0].num;
		pthread_mutex_unlock(&w->mu);
		wal_path(path, sizeof path, w->dir, WAL_DIR, num, WAL_EXT);
		if (unlink(path) != 0 && errno != ENOENT)
			return MANTIS_IO;
		removed = true;
		pthread_mutex_lock(&w->mu);
		memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof *w->segs);
		w->nsegs--;
		pthread_mutex_unlock(&w->mu);
	}
	snprintf(dir, sizeof dir, "%s/%s", w->dir, WAL_DIR);
	if (removed && wal_sync_dir(dir) != MANTIS_OK)
		return MANTIS_IO;
	snprintf(dir, sizeof dir, "%s/%s", w->dir, SNAP_DIR);
	uint64_t *nums;
	size_t n;
	mantis_status st = wal_list_dir(dir, SNAP_EXT, NULL, &nums, &n, NULL);
	if (st != MANTIS_OK)
		return st;
	removed = false;
	for (size_t i = 0; i < n && st == MANTIS_OK; i++) {
		if (nums[i] >= seq)
			continue;
		wal_path(path, sizeof path, w->dir, SNAP_DIR, nums[i], SNAP_EXT);
		if (unlink(path) != 0 && errno != ENOENT)
			st = MANTIS_IO;
		removed = true;
	}
	if (n > 0)
		mantis_free(nums, n * sizeof *nums);
	if (st == MANTIS_OK && removed && wal_sync_dir(dir) != MANTIS_OK)
		st = MANTIS_IO;
	return st;
}

mantis_status
mantis_snapshot_commit(mantis_snapshot_writer *sw, mantis_snapshot_info *info)
{
	if (sw == NULL)
		return MANTIS_INVALID;
	mantis_wal *w = sw->w;
	if (sw->broken) {
		mantis_snapshot_abort(sw);
		return MANTIS_INVALID;
	}
	uint8_t val[SNAP_HEADER_VALUE] = {0}, meta[SNAP_HEADER_SIZE];
	wal_put64(val, sw->count);
	wal_put64(val + 8, sw->seq);
	mantis_status st = sw_reserve(sw, SNAP_FOOTER_SIZE);
	if (st == MANTIS_OK) {
		size_t n = wal_encode_meta(sw->buf + sw->len, sw->cap - sw->len,
					   SNAP_END_META_KEY, val, SNAP_FOOTER_VALUE);
		sw->len += n;
		sw->size += n;
		st = sw_flush(sw);
	}
	if (st == MANTIS_OK) {
		memset(val, 0, sizeof val);
		wal_put32(val, SNAP_FORMAT_VERSION);
		wal_put64(val + 8, sw->seq);
		wal_put64(val + 16, sw->count);
		size_t n = wal_encode_meta(meta, sizeof meta, SNAP_META_KEY, val, sizeof val);
		st = wal_pwrite_all(sw->fd, meta, n, 0);
	}
	if (st == MANTIS_OK && mantis_fops->fsync(sw->fd) != 0)
		st = MANTIS_IO;
	if (st == MANTIS_OK) {
		int r = close(sw->fd);
		sw->fd = -1;
		if (r != 0)
			st = MANTIS_IO;
	}
	if (st == MANTIS_OK && rename(sw->tmp, sw->final) != 0)
		st = MANTIS_IO;
	if (st != MANTIS_OK) {
		mantis_snapshot_abort(sw);
		return st;
	}
	char sdir[MANTIS_WAL_PATH_MAX];
	snprintf(sdir, sizeof sdir, "%s/%s", w->dir, SNAP_DIR);
	/* If this fsync fails the rename may or may not survive a crash; both
	 * outcomes are consistent because nothing has been removed yet. */
	st = wal_sync_dir(sdir);
	if (st == MANTIS_OK) {
		pthread_mutex_lock(&w->mu);
		w->last_ckpt_seq = sw->seq;
		pthread_mutex_unlock(&w->mu);
		if (info != NULL) {
			info->seq = sw->seq;
			info->count = sw->count;
			info->bytes = sw->size;
		}
		st = drop_covered(w, sw->seq);
	}
	sw_free(sw);
	end_ckpt(w);
	return st;
}

void
mantis_snapshot_abort(mantis_snapshot_writer *sw)
{
	if (sw == NULL)
		return;
	mantis_wal *w = sw->w;
	if (sw->fd >= 0) {
		close(sw->fd);
		sw->fd = -1;
	}
	unlink(sw->tmp);
	sw_free(sw);
	end_ckpt(w);
}
