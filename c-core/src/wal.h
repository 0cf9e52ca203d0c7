/*
 * wal.h -- private: what src/wal.c and src/snapshot.c share, and the hooks
 * tests and the fuzz target reach past the public API with.
 *
 *   - mantis_file_ops: the few system calls that put bytes on disk, behind a
 *     table tests replace to inject ENOSPC/EIO (fail-stop tests);
 *   - struct mantis_wal: the writer's state, so snapshot.c can rotate the
 *     log and drop covered segments;
 *   - in-memory scanners of one segment and one snapshot, the code recovery
 *     runs over each mmap'ed file, exposed so the fuzzer can feed them bytes
 *     without touching the disk.
 *
 * On-disk names and META records: docs/FORMAT.md, "Files on disk".
 */
#ifndef MANTIS_WAL_PRIV_H
#define MANTIS_WAL_PRIV_H

#include <mantis.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define WAL_DIR "wal"
#define SNAP_DIR "snap"
#define LOCK_NAME "LOCK"
#define WAL_EXT ".wal"
#define SNAP_EXT ".snap"
#define TMP_EXT ".snap.tmp"
#define SEG_META_KEY "mantisdb.wal"
#define SNAP_META_KEY "mantisdb.snapshot"
#define SNAP_END_META_KEY "mantisdb.snapshot.end"
#define SEG_FORMAT_VERSION 1u
#define SNAP_FORMAT_VERSION 1u
#define SEG_HEADER_VALUE 24u  /* u32 version, u32 0, u64 num, u64 first seq */
#define SNAP_HEADER_VALUE 24u /* u32 version, u32 0, u64 seq, u64 count     */
#define SNAP_FOOTER_VALUE 16u /* u64 count, u64 seq                         */
/* Encoded size of each META record (32-byte header + key + value, padded). */
#define SEG_HEADER_SIZE 72u
#define SNAP_HEADER_SIZE 80u
#define SNAP_FOOTER_SIZE 72u

/* ------------------------------------------------------------------------ */
/* File operations (error injection)                                        */
/* ------------------------------------------------------------------------ */

/*
 * Every write, fsync and truncate of the WAL and snapshot code goes through
 * the current table.  Functions follow the libc contracts (-1 and errno on
 * failure; write may be short).  Tests install a table whose entries fail
 * with ENOSPC or EIO; NULL restores the real system calls.  The table is a
 * process-wide pointer read without synchronisation: set it only while no
 * mantis_wal is open (thread creation then orders it for every writer).
 */
typedef struct mantis_file_ops {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
} mantis_file_ops;

extern const mantis_file_ops *mantis_fops;
void mantis_file_ops_set(const mantis_file_ops *ops); /* ops borrowed, must outlive its use */

/* write(2) until done; MANTIS_IO with errno set on failure. */
mantis_status wal_write_all(int fd, const void *buf, size_t len);
mantis_status wal_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Opens and fsyncs a directory, so a create/rename/unlink in it is durable. */
mantis_status wal_sync_dir(const char *path);

/* "<dir>/<sub>/<20-digit num><ext>" into buf[cap]; false if it does not fit. */
bool wal_path(char *buf, size_t cap, const char *dir, const char *sub,
	      uint64_t num, const char *ext);
/* Parses "<20 digits><ext>" exactly; false for anything else. */
bool wal_parse_name(const char *name, const char *ext, uint64_t *num);

/* Sorted numbers of the "<20 digits><ext>" files of a directory.  *nums is
 * allocated (mantis_free(*nums, *n * 8) when *n > 0), NULL when empty.
 * Files ending in tmp_ext (if not NULL) are unlinked and counted in
 * *removed.  MANTIS_IO / MANTIS_NOMEM. */
mantis_status wal_list_dir(const char *dir, const char *ext, const char *tmp_ext,
			   uint64_t **nums, size_t *n, uint32_t *removed);

/* A read-only mapping of a whole file (data NULL when the file is empty). */
typedef struct wal_map {
	const uint8_t *data;
	size_t len;
} wal_map;
mantis_status wal_map_file(const char *path, wal_map *m);
void wal_unmap(wal_map *m);

/* Records a record that failed to decode at off of path (`what` names the
 * record) and maps the codec status to the recovery status:
 * MANTIS_UNSUPPORTED stays (a newer format), anything else is corrupt. */
mantis_status wal_decode_error(mantis_wal_recovery *info, const char *path,
			       uint64_t off, mantis_status st, const char *what);

/* Records the place and reason of a recovery failure in info (may be NULL). */
void wal_set_error(mantis_wal_recovery *info, const char *path, uint64_t off,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------------ */
/* Recovery scanners over bytes in memory                                   */
/* ------------------------------------------------------------------------ */

/*
 * Validates a snapshot file's bytes (named for name_seq) and hands its
 * records to h (may be NULL) as it goes.  MANTIS_CORRUPT/MANTIS_UNSUPPORTED
 * with the place in info; a handler's non-OK status is returned as is.
 * *count_out (may be NULL) gets the record count on success.
 */
mantis_status snapshot_scan(const uint8_t *data, size_t len, uint64_t name_seq,
			    const mantis_wal_handler *h, const char *path,
			    mantis_wal_recovery *info, uint64_t *count_out);

/* Removes stale *.snap.tmp, then validates the newest snapshot of w's
 * directory and hands it to h; *snap_seq = its seq (0 if none). */
struct mantis_wal;
mantis_status snapshot_recover(struct mantis_wal *w, const mantis_wal_handler *h,
			       mantis_wal_recovery *info, uint64_t *snap_seq);

typedef struct wal_seg_result {
	uint64_t first, last; /* seqs of its first and last record, 0 if none */
	uint64_t size;	      /* bytes of valid records (the length to keep)   */
	bool torn;	      /* last segment only: bytes past size to cut off */
} wal_seg_result;

/*
 * Scans one segment's bytes (segment number num; last says whether the
 * torn-tail rule applies), passing records with seq > snap_seq to h->apply.
 * *prev is the highest seq seen so far and is advanced.  Statuses as for
 * snapshot_scan.  Never touches the disk; the caller truncates a torn tail.
 */
mantis_status wal_scan_segment(const uint8_t *data, size_t len, uint64_t num,
			       bool last, uint64_t snap_seq, uint64_t *prev,
			       const mantis_wal_handler *h, const char *path,
			       mantis_wal_recovery *info, wal_seg_result *res);

/* ------------------------------------------------------------------------ */
/* The writer's state                                                       */
/* ------------------------------------------------------------------------ */

typedef struct wal_seg {
	uint64_t num;
	uint64_t first, last; /* sequence numbers, 0 if none yet */
	uint64_t size;
} wal_seg;

struct mantis_wal {
	char *dir;
	size_t dir_size; /* bytes allocated for dir */
	int lock_fd;
	uint32_t sync;
	uint64_t sync_interval_ms;
	uint64_t segment_size;

	pthread_mutex_t mu; /* guards every field down to the next blank line */
	pthread_cond_t cond; /* broadcast (with mu) when a flush ends or on close */
	uint8_t *pending;    /* encoded records enqueued, not yet written      */
	size_t pending_len, pending_cap;
	uint8_t *spare; /* the other buffer of the pair, reused after a flush  */
	size_t spare_cap;
	uint64_t pending_first, pending_last; /* seqs in pending (first 0: empty) */
	uint64_t last_seq;		       /* highest seq enqueued or recovered  */
	uint64_t enq_pos, written_pos, synced_pos; /* logical bytes, this process */
	bool flushing;			       /* a leader owns the segment file     */
	bool failed;			       /* fail-stop: see mantis.h            */
	int fail_errno;
	bool closed;
	bool ckpt_active; /* a snapshot writer is open                          */
	bool stop;	  /* tells the interval syncer to exit                   */
	wal_seg *segs;	  /* live segments, oldest first                         */
	size_t nsegs, segs_cap;
	bool cur_open; /* the last of segs is the one open for appends       */
	uint64_t last_ckpt_seq;
	mantis_wal_stats stats;

	/* Owned by the flush leader (flushing == true) and by open/close;
	 * cur_fd is also read by the syncer under sync_mu. */
	int cur_fd;
	uint64_t cur_size;
	uint64_t next_num;
	pthread_mutex_t sync_mu; /* held around fsync(cur_fd) and closing cur_fd */

	pthread_cond_t tick; /* (with mu) wakes the interval syncer to stop */
	pthread_t syncer;
	bool has_syncer;
};

/* Encodes a META record key -> val[0..vlen) into dst (cap >= its size);
 * returns the encoded size, 0 if it does not fit. */
size_t wal_encode_meta(uint8_t *dst, size_t cap, const char *key,
		       const uint8_t *val, uint32_t vlen);

static inline void
wal_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
wal_put64(uint8_t *p, uint64_t v)
{
	wal_put32(p, (uint32_t)v);
	wal_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
wal_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t
wal_get64(const uint8_t *p)
{
	return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

/* True when r is the META record named key with a value of vlen bytes:
 * the shape of every segment and snapshot header and footer. */
static inline bool
wal_meta_is(const mantis_record *r, const char *key, uint32_t vlen)
{
	size_t kl = strlen(key);
	return r->type == MANTIS_REC_META && r->key_len == kl &&
	       memcmp(r->key, key, kl) == 0 && r->value_len == vlen;
}

/* Checks what the codec cannot for a record in a segment body (or handed
 * to enqueue): a PUT, DELETE or BATCH whose seq is above prev, a BATCH's
 * nested seqs starting at its own and strictly increasing.  *hi gets the
 * record's highest seq.  MANTIS_CORRUPT with why[0..cap) filled. */
mantis_status wal_check_log_record(const mantis_record *r, uint64_t prev,
				   uint64_t *hi, char *why, size_t cap);

/* Sets the fail-stop state (first error wins).  Called with mu held. */
void wal_fail_locked(mantis_wal *w, int err);

/* Flushes and fsyncs everything queued, then closes the current segment
 * so the next write starts a new one (used before a snapshot). */
mantis_status wal_rotate(mantis_wal *w);

#endif /* MANTIS_WAL_PRIV_H */
