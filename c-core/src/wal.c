/*
 * wal.c -- the write-ahead log: open/lock/recover a data directory, append
 * with group commit, sync policies, segment rotation, fail-stop.
 *
 * The files are those of docs/FORMAT.md, "Files on disk", byte for byte the
 * ones go/wal writes (testdata/wal/golden is read by both).  Snapshots live
 * in snapshot.c; what the two share is in wal.h.
 *
 * Segment layout (every record 8-byte aligned, codec format):
 *
 *   +-----------------------------+--------+--------+-----+--------+
 *   | META "mantisdb.wal"         | record | record | ... | record |
 *   | u32 1, u32 0, u64 num,      | PUT /  |        |     |        |
 *   | u64 first seq (72 bytes)    | DELETE | BATCH  |     |        |
 *   +-----------------------------+--------+--------+-----+--------+
 *
 * Writing (thread-safety block; the fields each lock guards are marked in
 * struct mantis_wal, wal.h):
 *   1. enqueue validates records outside any lock, then under mu appends
 *      them to `pending` in sequence order and returns a logical position
 *      (bytes ever enqueued).  It never does I/O.
 *   2. wait: a waiter whose position is not yet written (or synced, under
 *      SYNC_ALWAYS) and who finds no leader becomes the leader: it swaps
 *      `pending` for the spare buffer, drops mu, writes the whole group
 *      with one write(2), fsyncs once if the policy says so, retakes mu,
 *      publishes written_pos/synced_pos and broadcasts.  Everyone else
 *      sleeps on `cond`.  Only the leader touches cur_fd/cur_size/next_num.
 *   3. The interval syncer fsyncs cur_fd without being the leader (so
 *      appenders never wait for its fsync); sync_mu keeps the leader from
 *      closing cur_fd under it during a rotation.
 *   4. Any failed write or fsync sets `failed` (fail-stop, see mantis.h);
 *      it is never cleared.
 * Invariants: synced_pos <= written_pos <= enq_pos; a rotated-out segment
 * is fsynced before the next is created, so only the last segment can be
 * torn; seqs in the files strictly increase.
 */
#include "wal.h"

#include "alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A flushed buffer larger than this is freed, not kept as the spare, so
 * one huge batch does not pin its memory for the life of the log. */
#define MAX_SPARE ((size_t)8 << 20)
#define DEFAULT_SEGMENT_SIZE ((uint64_t)64 << 20)
#define DEFAULT_INTERVAL_MS 1000u

/* ------------------------------------------------------------------------ */
/* File operations                                                          */
/* ------------------------------------------------------------------------ */

static const mantis_file_ops real_ops = {
	.write = write,
	.pwrite = pwrite,
	.fsync = fsync,
	.ftruncate = ftruncate,
};

const mantis_file_ops *mantis_fops = &real_ops;

void
mantis_file_ops_set(const mantis_file_ops *ops)
{
	mantis_fops = ops != NULL ? ops : &real_ops;
}

/* Writes all of buf; *done (may be NULL) gets the bytes that made it. */
static mantis_status
write_all_n(int fd, const void *buf, size_t len, size_t *done)
{
	const uint8_t *p = buf;
	size_t off = 0;
	while (off < len) {
		ssize_t n = mantis_fops->write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* no progress: treat as an error */
			if (done != NULL)
				*done = off;
			return MANTIS_IO;
		}
		off += (size_t)n;
	}
	if (done != NULL)
		*done = off;
	return MANTIS_OK;
}

mantis_status
wal_write_all(int fd, const void *buf, size_t len)
{
	return write_all_n(fd, buf, len, NULL);
}

mantis_status
wal_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = mantis_fops->pwrite(fd, p + done, len - done,
						off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return MANTIS_IO;
		}
		done += (size_t)n;
	}
	return MANTIS_OK;
}

static int
fsync_retry(int fd)
{
	/* EINTR is the only error worth retrying: after EIO the kernel may
	 * have marked the pages clean (fsyncgate), so a retry can lie. */
	int r;
	do
		r = mantis_fops->fsync(fd);
	while (r < 0 && errno == EINTR);
	return r;
}

mantis_status
wal_sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return MANTIS_IO;
	int r = fsync_retry(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r == 0 ? MANTIS_OK : MANTIS_IO;
}

/* ------------------------------------------------------------------------ */
/* Names, listings, mappings                                                */
/* ------------------------------------------------------------------------ */

bool
wal_path(char *buf, size_t cap, const char *dir, const char *sub, uint64_t num,
	 const char *ext)
{
	int n = snprintf(buf, cap, "%s/%s/%020llu%s", dir, sub,
			 (unsigned long long)num, ext);
	return n > 0 && (size_t)n < cap;
}

bool
wal_parse_name(const char *name, const char *ext, uint64_t *num)
{
	size_t nl = strlen(name), el = strlen(ext);
	if (nl != 20 + el || strcmp(name + 20, ext) != 0)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		unsigned d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false; /* 20 digits can exceed 2^64 */
		v = v * 10 + d;
	}
	*num = v;
	return true;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static bool
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

mantis_status
wal_list_dir(const char *dir, const char *ext, const char *tmp_ext,
	     uint64_t **nums, size_t *n, uint32_t *removed)
{
	*nums = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return MANTIS_IO;
	uint64_t *v = NULL;
	size_t len = 0, cap = 0;
	mantis_status st = MANTIS_OK;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				st = MANTIS_IO;
			break;
		}
		if (tmp_ext != NULL && has_suffix(de->d_name, tmp_ext)) {
			/* An interrupted checkpoint: the rename never happened,
			 * so the file never was the snapshot of record. */
			if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
				st = MANTIS_IO;
				break;
			}
			if (removed != NULL)
				(*removed)++;
			continue;
		}
		uint64_t num;
		if (!wal_parse_name(de->d_name, ext, &num))
			continue;
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			uint64_t *nv = mantis_malloc(ncap * sizeof *nv);
			if (nv == NULL) {
				st = MANTIS_NOMEM;
				break;
			}
			if (len > 0)
				memcpy(nv, v, len * sizeof *v);
			mantis_free(v, cap * sizeof *v);
			v = nv;
			cap = ncap;
		}
		v[len++] = num;
	}
	int e = errno;
	closedir(d);
	errno = e;
	if (st != MANTIS_OK || len == 0) {
		mantis_free(v, cap * sizeof *v);
		return st;
	}
	qsort(v, len, sizeof *v, cmp_u64);
	/* Shrink to exactly len so the caller frees len * 8 bytes. */
	uint64_t *exact = mantis_malloc(len * sizeof *exact);
	if (exact == NULL) {
		mantis_free(v, cap * sizeof *v);
		return MANTIS_NOMEM;
	}
	memcpy(exact, v, len * sizeof *v);
	mantis_free(v, cap * sizeof *v);
	*nums = exact;
	*n = len;
	return MANTIS_OK;
}

mantis_status
wal_map_file(const char *path, wal_map *m)
{
	m->data = NULL;
	m->len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return MANTIS_IO;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return MANTIS_IO;
	}
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			errno = e;
			return MANTIS_IO;
		}
		/* Recovery reads each file once, front to back. */
		(void)madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		m->data = p;
		m->len = (size_t)st.st_size;
	}
	close(fd); /* the mapping keeps the file referenced */
	return MANTIS_OK;
}

void
wal_unmap(wal_map *m)
{
	if (m->data != NULL)
		munmap((void *)m->data, m->len);
	m->data = NULL;
	m->len = 0;
}

void
wal_set_error(mantis_wal_recovery *info, const char *path, uint64_t off,
	      const char *fmt, ...)
{
	if (info == NULL)
		return;
	snprintf(info->error_file, sizeof info->error_file, "%s", path ? path : "");
	info->error_offset = off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(info->error_reason, sizeof info->error_reason, fmt, ap);
	va_end(ap);
}

static void
set_io_error(mantis_wal_recovery *info, const char *path, const char *what)
{
	int e = errno;
	if (info != NULL)
		info->error_errno = e;
	wal_set_error(info, path, 0, "%s: %s", what, strerror(e));
	errno = e;
}

size_t
wal_encode_meta(uint8_t *dst, size_t cap, const char *key, const uint8_t *val,
		uint32_t vlen)
{
	mantis_record r = {
		.type = MANTIS_REC_META,
		.key = (const uint8_t *)key,
		.key_len = (uint32_t)strlen(key),
		.value = val,
		.value_len = vlen,
	};
	size_t n = 0;
	if (mantis_codec_encode(dst, cap, &r, &n) != MANTIS_OK)
		return 0;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Segment scanning (recovery)                                              */
/* ------------------------------------------------------------------------ */

mantis_status
wal_check_log_record(const mantis_record *r, uint64_t prev, uint64_t *hi,
		     char *why, size_t cap)
{
	if (r->seq <= prev) {
		snprintf(why, cap, "seq %llu not above the previous %llu",
			 (unsigned long long)r->seq, (unsigned long long)prev);
		return MANTIS_CORRUPT;
	}
	switch (r->type) {
	case MANTIS_REC_PUT:
	case MANTIS_REC_DELETE:
		*hi = r->seq;
		return MANTIS_OK;
	case MANTIS_REC_BATCH: {
		uint64_t top = r->seq;
		size_t n = 0;
		mantis_codec_iter it;
		mantis_codec_iter_init(&it, r->value, r->value_len);
		for (;;) {
			mantis_record nr;
			mantis_status st = mantis_codec_batch_iter_next(&it, &nr);
			if (st == MANTIS_END)
				break;
			if (st != MANTIS_OK) {
				snprintf(why, cap, "batch seq %llu: nested record at %zu: %s",
					 (unsigned long long)r->seq, it.offset,
					 mantis_strerror(st));
				return MANTIS_CORRUPT;
			}
			if ((n == 0 && nr.seq != r->seq) || (n > 0 && nr.seq <= top)) {
				snprintf(why, cap, "batch seq %llu: nested seq %llu out of order",
					 (unsigned long long)r->seq,
					 (unsigned long long)nr.seq);
				return MANTIS_CORRUPT;
			}
			top = nr.seq;
			n++;
		}
		*hi = top;
		return MANTIS_OK;
	}
	default:
		snprintf(why, cap, "record type %u inside a segment", (unsigned)r->type);
		return MANTIS_CORRUPT;
	}
}

/* The size a record header declares, if the header is trustworthy: at
 * least 32 bytes and hcheck matches (docs/FORMAT.md, "Why two checks"). */
static bool
peek_size(const uint8_t *p, size_t len, uint64_t *size)
{
	if (len < MANTIS_RECORD_HEADER_SIZE)
		return false;
	uint8_t h[28];
	memcpy(h, p + 4, sizeof h);
	h[2] = h[3] = 0;
	uint16_t hc = (uint16_t)mantis_crc32c(0, h, sizeof h);
	if ((uint16_t)(p[6] | p[7] << 8) != hc)
		return false;
	uint64_t n = MANTIS_RECORD_HEADER_SIZE + (uint64_t)wal_get32(p + 8) +
		     (uint64_t)wal_get32(p + 12);
	*size = (n + 7) & ~(uint64_t)7;
	return true;
}

/*
 * The torn-tail rule of docs/FORMAT.md, "Recovery", for the bytes from a
 * record that failed to decode to the end of the last segment: the header
 * is cut short; or its (trustworthy) header declares an end at or past
 * EOF; or it ends the file's non-zero data -- every byte after its
 * declared end, or, when its header check fails, from some byte inside its
 * header, is zero (a multi-record write torn at a page boundary: the first
 * bytes reached the disk, the pages after them read back as zeros).
 */
static bool
is_torn(const uint8_t *rest, size_t len)
{
	if (len < MANTIS_RECORD_HEADER_SIZE)
		return true;
	size_t z = len; /* start of the trailing run of zero bytes */
	while (z > 0 && rest[z - 1] == 0)
		z--;
	uint64_t size;
	if (peek_size(rest, len, &size))
		return size >= len || z <= size;
	return z < MANTIS_RECORD_HEADER_SIZE;
}

mantis_status
wal_decode_error(mantis_wal_recovery *info, const char *path, uint64_t off,
		 mantis_status st, const char *what)
{
	wal_set_error(info, path, off, "%s fails to decode: %s", what,
		      mantis_strerror(st));
	return st == MANTIS_UNSUPPORTED ? MANTIS_UNSUPPORTED : MANTIS_CORRUPT;
}

mantis_status
wal_scan_segment(const uint8_t *data, size_t len, uint64_t num, bool last,
		 uint64_t snap_seq, uint64_t *prev, const mantis_wal_handler *h,
		 const char *path, mantis_wal_recovery *info, wal_seg_result *res)
{
	static const uint8_t empty[1];
	if (data == NULL)
		data = empty, len = 0;
	memset(res, 0, sizeof *res);
	size_t off = 0;
	uint64_t header_first = 0;
	char why[160];
	while (off < len || off == 0) {
		mantis_record r;
		mantis_status st = mantis_codec_decode(data + off, len - off, &r);
		if (st != MANTIS_OK) {
			if (last && is_torn(data + off, len - off)) {
				res->torn = true;
				break;
			}
			return wal_decode_error(info, path, off, st,
						off == 0 ? "segment header" : "record");
		}
		if (off == 0) {
			if (!wal_meta_is(&r, SEG_META_KEY, SEG_HEADER_VALUE)) {
				wal_set_error(info, path, 0, "not a segment header");
				return MANTIS_CORRUPT;
			}
			uint32_t v = wal_get32(r.value);
			if (v != SEG_FORMAT_VERSION) {
				wal_set_error(info, path, 0, "segment version %u", v);
				return MANTIS_UNSUPPORTED;
			}
			uint64_t hn = wal_get64(r.value + 8);
			if (hn != num) {
				wal_set_error(info, path, 0, "header says segment %llu",
					      (unsigned long long)hn);
				return MANTIS_CORRUPT;
			}
			header_first = wal_get64(r.value + 16);
			off += r.size;
			continue;
		}
		uint64_t hi = 0;
		st = wal_check_log_record(&r, *prev, &hi, why, sizeof why);
		if (st == MANTIS_OK && res->first == 0 && header_first != 0 &&
		    r.seq != header_first) {
			snprintf(why, sizeof why, "first seq %llu, header says %llu",
				 (unsigned long long)r.seq,
				 (unsigned long long)header_first);
			st = MANTIS_CORRUPT;
		}
		if (st != MANTIS_OK) {
			wal_set_error(info, path, off, "%s", why);
			return MANTIS_CORRUPT;
		}
		if (r.seq > snap_seq) {
			if (h != NULL && h->apply != NULL) {
				st = h->apply(h->ctx, &r);
				if (st != MANTIS_OK) {
					wal_set_error(info, path, off,
						      "apply callback: %s",
						      mantis_strerror(st));
					return st;
				}
			}
			if (info != NULL)
				info->replayed++;
		}
		if (res->first == 0)
			res->first = r.seq;
		res->last = *prev = hi;
		off += r.size;
	}
	res->size = off;
	return MANTIS_OK;
}

/* ------------------------------------------------------------------------ */
/* Open and recovery                                                        */
/* ------------------------------------------------------------------------ */

static mantis_status
mkdir_p(char *path)
{
	/* Creates every missing component, like Go's os.MkdirAll. */
	for (char *p = path + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			int r = mkdir(path, 0755);
			int e = errno;
			*p = c;
			if (r != 0 && e != EEXIST) {
				errno = e;
				return MANTIS_IO;
			}
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return MANTIS_IO;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return MANTIS_IO;
	}
	return MANTIS_OK;
}

/* Cuts a torn tail off for good (fsynced), or removes a segment left with
 * nothing, not even its header. */
static mantis_status
truncate_torn(const char *path, uint64_t size, const char *wdir,
	      mantis_wal_recovery *info)
{
	if (size == 0) {
		if (unlink(path) != 0 || wal_sync_dir(wdir) != MANTIS_OK) {
			set_io_error(info, path, "remove torn segment");
			return MANTIS_IO;
		}
		return MANTIS_OK;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		set_io_error(info, path, "truncate torn tail");
		return MANTIS_IO;
	}
	int r = mantis_fops->ftruncate(fd, (off_t)size);
	if (r == 0)
		r = fsync_retry(fd);
	int e = errno;
	close(fd);
	errno = e;
	if (r != 0) {
		set_io_error(info, path, "truncate torn tail");
		return MANTIS_IO;
	}
	return MANTIS_OK;
}

static mantis_status
push_seg(mantis_wal *w, wal_seg s)
{
	if (w->nsegs == w->segs_cap) {
		size_t ncap = w->segs_cap ? w->segs_cap * 2 : 8;
		wal_seg *n = mantis_malloc(ncap * sizeof *n);
		if (n == NULL)
			return MANTIS_NOMEM;
		if (w->nsegs > 0)
			memcpy(n, w->segs, w->nsegs * sizeof *n);
		mantis_free(w->segs, w->segs_cap * sizeof *w->segs);
		w->segs = n;
		w->segs_cap = ncap;
	}
	w->segs[w->nsegs++] = s;
	return MANTIS_OK;
}

static mantis_status
replay(mantis_wal *w, uint64_t snap_seq, const mantis_wal_handler *h,
       mantis_wal_recovery *info, uint64_t *last)
{
	char wdir[MANTIS_WAL_PATH_MAX], path[MANTIS_WAL_PATH_MAX];
	snprintf(wdir, sizeof wdir, "%s/%s", w->dir, WAL_DIR);
	uint64_t *nums;
	size_t n;
	mantis_status st = wal_list_dir(wdir, WAL_EXT, NULL, &nums, &n, NULL);
	if (st != MANTIS_OK) {
		if (st == MANTIS_IO)
			set_io_error(info, wdir, "list");
		return st;
	}
	uint64_t prev = 0;
	for (size_t i = 0; i < n && st == MANTIS_OK; i++) {
		uint64_t num = nums[i];
		if (i > 0 && num != nums[i - 1] + 1) {
			wal_path(path, sizeof path, w->dir, WAL_DIR, nums[i - 1] + 1, WAL_EXT);
			wal_set_error(info, path, 0,
				      "segment missing (found %020llu%s after it)",
				      (unsigned long long)num, WAL_EXT);
			st = MANTIS_CORRUPT;
			break;
		}
		wal_path(path, sizeof path, w->dir, WAL_DIR, num, WAL_EXT);
		wal_map m;
		if (wal_map_file(path, &m) != MANTIS_OK) {
			set_io_error(info, path, "read segment");
			st = MANTIS_IO;
			break;
		}
		wal_seg_result res;
		bool is_last = i == n - 1;
		st = wal_scan_segment(m.data, m.len, num, is_last, snap_seq, &prev,
				      h, path, info, &res);
		size_t flen = m.len;
		wal_unmap(&m);
		if (st != MANTIS_OK)
			break;
		if (res.torn) {
			if (info != NULL) {
				snprintf(info->torn_file, sizeof info->torn_file, "%s", path);
				info->torn_offset = res.size;
				info->torn_bytes = flen - res.size;
			}
			st = truncate_torn(path, res.size, wdir, info);
			if (st != MANTIS_OK)
				break;
		}
		w->next_num = num + 1;
		if (res.size > 0)
			st = push_seg(w, (wal_seg){num, res.first, res.last, res.size});
		else
			w->next_num = num; /* it was removed: reuse its number */
		if (info != NULL)
			info->segments++;
	}
	if (n > 0)
		mantis_free(nums, n * sizeof *nums);
	*last = prev;
	return st;
}

static void *syncer_main(void *arg);

static void
wal_free(mantis_wal *w)
{
	if (w->cur_fd >= 0)
		close(w->cur_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd); /* releases the flock */
	pthread_cond_destroy(&w->tick);
	pthread_mutex_destroy(&w->sync_mu);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	mantis_free(w->pending, w->pending_cap);
	mantis_free(w->spare, w->spare_cap);
	mantis_free(w->segs, w->segs_cap * sizeof *w->segs);
	mantis_free(w->dir, w->dir_size);
	mantis_free(w, sizeof *w);
}

mantis_status
mantis_wal_open(const char *dir, const mantis_wal_options *opts,
		const mantis_wal_handler *h, mantis_wal_recovery *info,
		mantis_wal **out)
{
	if (info != NULL)
		memset(info, 0, sizeof *info);
	if (dir == NULL || out == NULL || dir[0] == '\0')
		return MANTIS_INVALID;
	mantis_wal_options o = {0};
	if (opts != NULL)
		o = *opts;
	if (o.sync > MANTIS_SYNC_NONE)
		return MANTIS_INVALID;
	size_t dlen = strlen(dir);
	/* Room for "/snap/<20 digits>.snap.tmp" after the directory. */
	if (dlen + 64 >= MANTIS_WAL_PATH_MAX) {
		wal_set_error(info, dir, 0, "path too long");
		return MANTIS_INVALID;
	}
	mantis_wal *w = mantis_calloc(1, sizeof *w);
	if (w == NULL)
		return MANTIS_NOMEM;
	w->dir_size = dlen + 1;
	w->dir = mantis_malloc(w->dir_size);
	if (w->dir == NULL) {
		mantis_free(w, sizeof *w);
		return MANTIS_NOMEM;
	}
	memcpy(w->dir, dir, w->dir_size);
	while (dlen > 1 && w->dir[dlen - 1] == '/')
		w->dir[--dlen] = '\0'; /* "d/" and "d" name one directory */
	w->cur_fd = -1;
	w->lock_fd = -1;
	w->next_num = 1;
	w->sync = o.sync;
	w->sync_interval_ms = o.sync_interval_ms ? o.sync_interval_ms : DEFAULT_INTERVAL_MS;
	w->segment_size = o.segment_size ? o.segment_size : DEFAULT_SEGMENT_SIZE;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_init(&w->sync_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->tick, &ca);
	pthread_condattr_destroy(&ca);

	char path[MANTIS_WAL_PATH_MAX];
	mantis_status st = mkdir_p(w->dir);
	if (st != MANTIS_OK) {
		set_io_error(info, w->dir, "create data directory");
		goto fail;
	}
	snprintf(path, sizeof path, "%s/%s", w->dir, LOCK_NAME);
	w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w->lock_fd < 0) {
		set_io_error(info, path, "open lock");
		st = MANTIS_IO;
		goto fail;
	}
	/* flock, not fcntl locks: fcntl locks are per process, so a second
	 * open in the same process would succeed; flock locks belong to the
	 * open file description and conflict there too.  Go's vfs.Lock takes
	 * the same lock, so the two builds exclude each other. */
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			set_io_error(info, path, "locked by another owner");
			st = MANTIS_BUSY;
		} else {
			set_io_error(info, path, "flock");
			st = MANTIS_IO;
		}
		goto fail;
	}
	static const char *const subs[] = {WAL_DIR, SNAP_DIR};
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", w->dir, subs[i]);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			set_io_error(info, path, "mkdir");
			st = MANTIS_IO;
			goto fail;
		}
	}
	if (wal_sync_dir(w->dir) != MANTIS_OK) {
		set_io_error(info, w->dir, "fsync");
		st = MANTIS_IO;
		goto fail;
	}
	uint64_t snap_seq = 0, last = 0;
	st = snapshot_recover(w, h, info, &snap_seq);
	if (st != MANTIS_OK)
		goto fail;
	st = replay(w, snap_seq, h, info, &last);
	if (st != MANTIS_OK)
		goto fail;
	w->last_seq = snap_seq > last ? snap_seq : last;
	w->last_ckpt_seq = snap_seq;
	if (info != NULL)
		info->last_seq = w->last_seq;
	if (w->sync == MANTIS_SYNC_INTERVAL) {
		if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
			st = MANTIS_NOMEM;
			goto fail;
		}
		w->has_syncer = true;
	}
	*out = w;
	return MANTIS_OK;
fail:
	wal_free(w);
	return st;
}

/* ------------------------------------------------------------------------ */
/* Appending                                                                */
/* ------------------------------------------------------------------------ */

void
wal_fail_locked(mantis_wal *w, int err)
{
	if (!w->failed) {
		w->failed = true;
		w->fail_errno = err ? err : EIO;
	}
}

/* Validates a buffer handed to enqueue: whole records that would pass
 * recovery, seqs strictly increasing.  Returns first/last seq. */
static mantis_status
check_records(const uint8_t *buf, size_t len, uint64_t *first, uint64_t *last)
{
	uint64_t prev = 0;
	char why[160];
	for (size_t off = 0; off < len;) {
		mantis_record r;
		if (mantis_codec_decode(buf + off, len - off, &r) != MANTIS_OK)
			return MANTIS_INVALID;
		uint64_t hi;
		if (wal_check_log_record(&r, prev, &hi, why, sizeof why) != MANTIS_OK)
			return MANTIS_INVALID;
		if (off == 0)
			*first = r.seq;
		prev = hi;
		off += r.size;
	}
	*last = prev;
	return MANTIS_OK;
}

mantis_status
mantis_wal_enqueue(mantis_wal *w, const void *recs, size_t len, uint64_t *pos)
{
	if (w == NULL || recs == NULL || len == 0 || pos == NULL)
		return MANTIS_INVALID;
	uint64_t first = 0, last = 0;
	mantis_status st = check_records(recs, len, &first, &last);
	if (st != MANTIS_OK)
		return st;
	pthread_mutex_lock(&w->mu);
	if (w->closed)
		st = MANTIS_CLOSED;
	else if (w->failed)
		st = MANTIS_READ_ONLY;
	else if (first <= w->last_seq)
		st = MANTIS_INVALID;
	if (st == MANTIS_OK && w->pending_len + len > w->pending_cap) {
		size_t need = w->pending_len + len;
		size_t ncap = w->pending_cap ? w->pending_cap * 2 : 4096;
		while (ncap < need)
			ncap *= 2;
		uint8_t *n = mantis_malloc(ncap);
		if (n == NULL) {
			st = MANTIS_NOMEM;
		} else {
			if (w->pending_len > 0)
				memcpy(n, w->pending, w->pending_len);
			mantis_free(w->pending, w->pending_cap);
			w->pending = n;
			w->pending_cap = ncap;
		}
	}
	if (st == MANTIS_OK) {
		memcpy(w->pending + w->pending_len, recs, len);
		w->pending_len += len;
		if (w->pending_first == 0)
			w->pending_first = first;
		w->pending_last = last;
		w->last_seq = last;
		w->enq_pos += len;
		w->stats.appends++;
		*pos = w->enq_pos;
	}
	pthread_mutex_unlock(&w->mu);
	return st;
}

/* Fsyncs and closes the current segment, if any.  Leader only. */
static mantis_status
close_cur(mantis_wal *w, int *err)
{
	pthread_mutex_lock(&w->sync_mu);
	if (w->cur_fd < 0) {
		pthread_mutex_unlock(&w->sync_mu);
		return MANTIS_OK;
	}
	int r = fsync_retry(w->cur_fd);
	int e = errno;
	if (close(w->cur_fd) != 0 && r == 0) {
		r = -1;
		e = errno;
	}
	w->cur_fd = -1;
	pthread_mutex_unlock(&w->sync_mu);
	pthread_mutex_lock(&w->mu);
	w->cur_open = false;
	if (r == 0)
		w->stats.syncs++;
	pthread_mutex_unlock(&w->mu);
	if (r != 0) {
		*err = e;
		return MANTIS_IO;
	}
	return MANTIS_OK;
}

static mantis_status
sync_cur(mantis_wal *w, int *err)
{
	pthread_mutex_lock(&w->sync_mu);
	int r = 0;
	if (w->cur_fd >= 0)
		r = fsync_retry(w->cur_fd);
	int e = errno;
	pthread_mutex_unlock(&w->sync_mu);
	if (r != 0) {
		*err = e;
		return MANTIS_IO;
	}
	pthread_mutex_lock(&w->mu);
	w->stats.syncs++;
	pthread_mutex_unlock(&w->mu);
	return MANTIS_OK;
}

/* Closes the current segment (fsynced, so only the last segment can ever
 * be torn) and creates the next one with its META header.  Leader only. */
static mantis_status
start_segment(mantis_wal *w, uint64_t first, int *err)
{
	mantis_status st = close_cur(w, err);
	if (st != MANTIS_OK)
		return st;
	pthread_mutex_lock(&w->mu);
	/* Reserve the list slot first so nothing can fail after the file
	 * exists. */
	wal_seg s = {.num = w->next_num, .size = SEG_HEADER_SIZE};
	st = push_seg(w, s);
	if (st == MANTIS_OK)
		w->nsegs--;
	pthread_mutex_unlock(&w->mu);
	if (st != MANTIS_OK) {
		*err = ENOMEM;
		return st;
	}
	char path[MANTIS_WAL_PATH_MAX], wdir[MANTIS_WAL_PATH_MAX];
	wal_path(path, sizeof path, w->dir, WAL_DIR, s.num, WAL_EXT);
	snprintf(wdir, sizeof wdir, "%s/%s", w->dir, WAL_DIR);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*err = errno;
		return MANTIS_IO;
	}
	uint8_t val[SEG_HEADER_VALUE] = {0}, hdr[SEG_HEADER_SIZE];
	wal_put32(val, SEG_FORMAT_VERSION);
	wal_put64(val + 8, s.num);
	wal_put64(val + 16, first);
	size_t hn = wal_encode_meta(hdr, sizeof hdr, SEG_META_KEY, val, sizeof val);
	if (wal_write_all(fd, hdr, hn) != MANTIS_OK ||
	    wal_sync_dir(wdir) != MANTIS_OK) {
		*err = errno;
		close(fd);
		return MANTIS_IO;
	}
	pthread_mutex_lock(&w->sync_mu);
	w->cur_fd = fd;
	w->cur_size = hn;
	pthread_mutex_unlock(&w->sync_mu);
	w->next_num++;
	pthread_mutex_lock(&w->mu);
	w->segs[w->nsegs++] = s; /* slot reserved above */
	w->cur_open = true;
	pthread_mutex_unlock(&w->mu);
	return MANTIS_OK;
}

/* Writes one group at the end of the current segment, rotating first when
 * it is full.  Leader only. */
static mantis_status
write_group(mantis_wal *w, const uint8_t *buf, size_t len, uint64_t first,
	    uint64_t last, int *err)
{
	if (w->cur_fd < 0 || w->cur_size >= w->segment_size) {
		mantis_status st = start_segment(w, first, err);
		if (st != MANTIS_OK)
			return st;
	}
	size_t done = 0;
	if (write_all_n(w->cur_fd, buf, len, &done) != MANTIS_OK) {
		*err = errno;
		/* Best effort: cut a short write off so records the caller
		 * was told failed do not reappear at the next open.
		 * Fail-stop follows either way. */
		if (done > 0)
			(void)mantis_fops->ftruncate(w->cur_fd, (off_t)w->cur_size);
		return MANTIS_IO;
	}
	w->cur_size += len;
	pthread_mutex_lock(&w->mu);
	wal_seg *s = &w->segs[w->nsegs - 1];
	s->size = w->cur_size;
	if (s->first == 0)
		s->first = first;
	s->last = last;
	w->stats.flushes++;
	w->stats.bytes_written += len;
	pthread_mutex_unlock(&w->mu);
	return MANTIS_OK;
}

/* The group-commit loop described at the top of this file. */
static mantis_status
wait_for(mantis_wal *w, uint64_t pos, bool durable)
{
	pthread_mutex_lock(&w->mu);
	if (pos > w->enq_pos) {
		/* Not a position enqueue returned: no flush could reach it. */
		pthread_mutex_unlock(&w->mu);
		return MANTIS_INVALID;
	}
	for (;;) {
		if (w->synced_pos >= pos || (!durable && w->written_pos >= pos))
			break;
		if (w->failed) {
			pthread_mutex_unlock(&w->mu);
			return MANTIS_IO;
		}
		if (w->flushing) {
			pthread_cond_wait(&w->cond, &w->mu);
			continue;
		}
		w->flushing = true;
		uint8_t *buf = w->pending;
		size_t blen = w->pending_len, bcap = w->pending_cap;
		uint64_t first = w->pending_first, last = w->pending_last;
		w->pending = w->spare;
		w->pending_cap = w->spare_cap;
		w->pending_len = 0;
		w->spare = NULL;
		w->spare_cap = 0;
		w->pending_first = 0;
		uint64_t target = w->enq_pos;
		bool do_sync = durable || w->sync == MANTIS_SYNC_ALWAYS;
		pthread_mutex_unlock(&w->mu);

		mantis_status st = MANTIS_OK;
		int err = 0;
		if (blen > 0)
			st = write_group(w, buf, blen, first, last, &err);
		if (st == MANTIS_OK && do_sync)
			st = sync_cur(w, &err);

		pthread_mutex_lock(&w->mu);
		w->flushing = false;
		if (bcap <= MAX_SPARE && w->spare == NULL) {
			w->spare = buf;
			w->spare_cap = bcap;
		} else {
			mantis_free(buf, bcap);
		}
		if (st != MANTIS_OK) {
			wal_fail_locked(w, err);
		} else {
			w->written_pos = target;
			if (do_sync)
				w->synced_pos = target;
		}
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->mu);
	return MANTIS_OK;
}

mantis_status
mantis_wal_wait(mantis_wal *w, uint64_t pos)
{
	if (w == NULL)
		return MANTIS_INVALID;
	return wait_for(w, pos, w->sync == MANTIS_SYNC_ALWAYS);
}

mantis_status
mantis_wal_append(mantis_wal *w, const void *recs, size_t len)
{
	uint64_t pos;
	mantis_status st = mantis_wal_enqueue(w, recs, len, &pos);
	if (st != MANTIS_OK)
		return st;
	return mantis_wal_wait(w, pos);
}

mantis_status
mantis_wal_sync(mantis_wal *w)
{
	if (w == NULL)
		return MANTIS_INVALID;
	pthread_mutex_lock(&w->mu);
	uint64_t pos = w->enq_pos;
	bool closed = w->closed;
	pthread_mutex_unlock(&w->mu);
	if (closed)
		return MANTIS_CLOSED;
	return wait_for(w, pos, true);
}

mantis_status
wal_rotate(mantis_wal *w)
{
	mantis_status st = mantis_wal_sync(w);
	if (st != MANTIS_OK)
		return st;
	pthread_mutex_lock(&w->mu);
	while (w->flushing)
		pthread_cond_wait(&w->cond, &w->mu);
	w->flushing = true; /* the segment file is ours until released below */
	pthread_mutex_unlock(&w->mu);
	int err = 0;
	st = close_cur(w, &err);
	pthread_mutex_lock(&w->mu);
	if (st != MANTIS_OK)
		wal_fail_locked(w, err);
	w->flushing = false;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return st;
}

/* The SYNC_INTERVAL background fsync. */
static void *
syncer_main(void *arg)
{
	mantis_wal *w = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		next.tv_sec += (time_t)(w->sync_interval_ms / 1000);
		next.tv_nsec += (long)(w->sync_interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		int r = 0;
		while (!w->stop && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&w->tick, &w->mu, &next);
		if (w->stop)
			break;
		uint64_t target = w->written_pos;
		if (target <= w->synced_pos || w->failed)
			continue;
		pthread_mutex_unlock(&w->mu);
		/* Bytes up to target are in cur_fd or in a segment closed (and
		 * fsynced) by a rotation since, so syncing cur_fd covers them. */
		int err = 0;
		mantis_status st = sync_cur(w, &err);
		pthread_mutex_lock(&w->mu);
		if (st != MANTIS_OK)
			wal_fail_locked(w, err);
		else if (target > w->synced_pos)
			w->synced_pos = target;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

mantis_status
mantis_wal_stats_get(mantis_wal *w, mantis_wal_stats *out)
{
	if (w == NULL || out == NULL)
		return MANTIS_INVALID;
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	out->last_seq = w->last_seq;
	out->segments = w->nsegs;
	out->wal_bytes = 0;
	for (size_t i = 0; i < w->nsegs; i++)
		out->wal_bytes += w->segs[i].size;
	out->last_checkpoint_seq = w->last_ckpt_seq;
	out->failed = w->failed;
	out->fail_errno = w->failed ? w->fail_errno : 0;
	pthread_mutex_unlock(&w->mu);
	return MANTIS_OK;
}

mantis_status
mantis_wal_close(mantis_wal *w)
{
	if (w == NULL)
		return MANTIS_OK;
	/* Refuse new enqueues first, then flush what is already queued. */
	pthread_mutex_lock(&w->mu);
	w->closed = true;
	uint64_t pos = w->enq_pos;
	pthread_mutex_unlock(&w->mu);
	mantis_status st = wait_for(w, pos, true);
	if (w->has_syncer) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->tick);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->syncer, NULL);
	}
	pthread_mutex_lock(&w->mu);
	while (w->flushing)
		pthread_cond_wait(&w->cond, &w->mu);
	if (st == MANTIS_OK && w->failed)
		st = MANTIS_IO;
	pthread_mutex_unlock(&w->mu);
	if (w->cur_fd >= 0) {
		if (close(w->cur_fd) != 0 && st == MANTIS_OK)
			st = MANTIS_IO;
		w->cur_fd = -1;
	}
	wal_free(w);
	return st;
}
