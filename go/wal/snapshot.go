// Snapshots (checkpoints): write to <seq>.snap.tmp, fsync, rename, fsync
// the directory, then drop the WAL segments and older snapshots it covers.

package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"iter"
	"path/filepath"
	"time"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// WriteSnapshot writes a snapshot covering every write with sequence number
// <= seq, then removes the WAL segments and older snapshots it makes
// redundant.  records must yield every live key as a PUT record, in
// strictly ascending key order, each with a sequence number <= seq (its
// key's last one, or seq itself) and its absolute expiry; keys already
// expired should be left out.  Appends may continue concurrently.
//
// The records must show every key in its state at seq or in a later state
// the log holds (durably: the log is fsynced before the snapshot is
// renamed, so every write the view can show is): a view exactly at seq,
// or a "fuzzy" one read while
// writers go on (a lock-free index read without stopping them), where a
// key may show a write numbered above seq or lack a key such a write
// deleted.  Both recover to the same state, because recovery replays every
// record above seq over the snapshot and each replayed write sets its
// key's whole state: a key that no write above seq touched shows its state
// at seq in either view.
//
// The current segment is closed first, so new appends go to a fresh
// segment (unless it reuses a retired one with old bytes to spare, which
// stays open: rotate).  A failed snapshot leaves the log and earlier snapshots as they
// were (its temporary file is removed) and does not fail-stop the log.
func (l *Log) WriteSnapshot(seq uint64, records iter.Seq[Record]) (SnapshotInfo, error) {
	return l.WriteSnapshotFrom(seq, func(yield func(Record, error) bool) {
		for r := range records {
			if !yield(r, nil) {
				return
			}
		}
	})
}

// WriteSnapshotFrom is WriteSnapshot over a source that can fail while it
// is read (an index scanned page by page): the first error it yields
// abandons the snapshot, which is then as if it had never been started,
// and is returned.
func (l *Log) WriteSnapshotFrom(seq uint64, records iter.Seq2[Record, error]) (SnapshotInfo, error) {
	// The number is known: check it before the log is rotated for it.
	if err := l.checkSnapshotSeq(seq); err != nil {
		return SnapshotInfo{}, err
	}
	return l.WriteSnapshotAt(func() (uint64, iter.Seq2[Record, error], error) { return seq, records, nil })
}

// refusalLocked is the error a snapshot gets from a closed or stopped
// log, nil if it may start.  Called with mu held.
func (l *Log) refusalLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failErr
}

// checkSnapshotSeq refuses a snapshot number above the last appended or
// below the last checkpoint's (a closed or stopped log first).
func (l *Log) checkSnapshotSeq(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusalLocked(); err != nil {
		return err
	}
	switch {
	case seq > l.lastSeq:
		return fmt.Errorf("%w: snapshot seq %d is above the last appended %d", ErrInvalid, seq, l.lastSeq)
	case seq < l.stats.lastCkptSeq:
		return fmt.Errorf("%w: snapshot seq %d is below the last checkpoint's %d", ErrInvalid, seq, l.stats.lastCkptSeq)
	}
	return nil
}

// WriteSnapshotAt is WriteSnapshotFrom for an engine that reads its
// sequence number and takes its view once the log has rotated: view is
// called after the current segment is closed, and its error, if any, is
// returned as it is.  Every record of the closed segment was numbered
// before it was enqueued, so at or below the seq view returns: the
// snapshot covers the segment whole, and the checkpoint drops it.  (A
// reused segment rotate leaves open stays live instead, its covered
// records skipped at replay and left out of CheckpointDue.)  A seq
// read before the rotation leaves the writes logged in between in that
// segment, which then stays, its size counted towards the next
// checkpoint (CheckpointDue), until a later checkpoint covers it: under a
// steady write load, one more checkpoint right after this one.
//
// view runs with the checkpoint lock held (it must not start another
// snapshot), must return a seq at or above every number enqueued before
// WriteSnapshotAt was called, and non-nil records when err is nil.  Close
// waits for the snapshot, so neither view nor records may call it, and
// Close must not be called holding a lock they take.
func (l *Log) WriteSnapshotAt(view func() (uint64, iter.Seq2[Record, error], error)) (SnapshotInfo, error) {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	err := l.refusalLocked()
	l.mu.Unlock()
	if err != nil {
		return SnapshotInfo{}, err
	}

	// Close the current segment so that it can be dropped once covered
	// (but a reused one may stay open: rotate).
	open, openBytes, err := l.rotate()
	if err != nil {
		return SnapshotInfo{}, err
	}
	seq, records, err := view()
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := l.checkSnapshotSeq(seq); err != nil {
		return SnapshotInfo{}, err
	}

	info, err := l.writeSnapshotFile(seq, records)
	if err != nil {
		return info, err
	}
	l.mu.Lock()
	l.stats.lastCkptSeq = seq
	l.stats.lastCkptTime = l.cfg.Now()
	l.stats.lastSnapBytes = info.Bytes
	if open != 0 {
		l.covered.num, l.covered.bytes = open, openBytes
	}
	l.mu.Unlock()
	return info, l.dropCovered(seq)
}

func (l *Log) writeSnapshotFile(seq uint64, records iter.Seq2[Record, error]) (info SnapshotInfo, err error) {
	final := l.snapPath(seq)
	tmp := final[:len(final)-len(snapExt)] + tmpExt
	f, err := l.fs.Create(tmp)
	if err != nil {
		return info, fmt.Errorf("wal: create snapshot: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = l.fs.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(&pacedWriter{f: f}, 1<<20)
	// The header carries the record count, not known yet: write a
	// placeholder of the same size and overwrite it before the fsync.
	hdr := snapHeader(nil, seq, 0)
	if _, err = w.Write(hdr); err != nil {
		return info, fmt.Errorf("wal: write snapshot: %w", err)
	}
	var (
		count   uint64
		prevKey []byte
		buf     []byte
		size    = int64(len(hdr))
	)
	for r, rerr := range records {
		switch {
		case rerr != nil:
			err = fmt.Errorf("wal: snapshot source: %w", rerr)
		case r.Type != TypePut:
			err = fmt.Errorf("%w: snapshot record of type %d", ErrInvalid, r.Type)
		case r.Seq > seq:
			err = fmt.Errorf("%w: snapshot record seq %d above %d", ErrInvalid, r.Seq, seq)
		case count > 0 && bytes.Compare(r.Key, prevKey) <= 0:
			err = fmt.Errorf("%w: snapshot keys not in ascending order at %q", ErrInvalid, r.Key)
		}
		if err != nil {
			return info, err
		}
		if buf, err = appendRecord(buf[:0], r); err != nil {
			return info, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if _, err = w.Write(buf); err != nil {
			return info, fmt.Errorf("wal: write snapshot: %w", err)
		}
		size += int64(len(buf))
		prevKey = append(prevKey[:0], r.Key...)
		count++
	}
	end := snapFooter(nil, seq, count)
	if _, err = w.Write(end); err != nil {
		return info, fmt.Errorf("wal: write snapshot: %w", err)
	}
	if err = w.Flush(); err != nil {
		return info, fmt.Errorf("wal: write snapshot: %w", err)
	}
	if _, err = f.WriteAt(snapHeader(hdr[:0], seq, count), 0); err != nil {
		return info, fmt.Errorf("wal: write snapshot header: %w", err)
	}
	if err = f.Sync(); err != nil {
		return info, fmt.Errorf("wal: fsync snapshot: %w", err)
	}
	// A fuzzy view may show writes above seq that are visible but not yet
	// durable (SyncInterval, SyncNone: visible once written, before the
	// fsync).  Once the snapshot is renamed, recovery trusts it and
	// replays only what the log still has, so everything the view could
	// have seen must be durable first: every such write was enqueued
	// before it became visible, so one Sync now covers them all.
	if err = l.Sync(); err != nil {
		return info, err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return info, fmt.Errorf("wal: close snapshot: %w", err)
	}
	if err = l.fs.Rename(tmp, final); err != nil {
		return info, fmt.Errorf("wal: rename snapshot: %w", err)
	}
	if err = l.fs.SyncDir(filepath.Dir(final)); err != nil {
		// The rename may or may not survive a crash; both outcomes are
		// consistent because nothing has been removed yet.
		return info, fmt.Errorf("wal: fsync snapshot directory: %w", err)
	}
	return SnapshotInfo{Seq: seq, Count: count, File: final, Bytes: size + int64(len(end))}, nil
}

// dropCovered removes closed segments whose records all have seq <= seq
// (or keeps them for reuse, Config.RecycleSegments),
// oldest first so a crash midway leaves a contiguous run, then the
// snapshots older than seq.  The manifest names the new snapshot and the
// first segment kept before anything is removed (manifest.go, invariants
// 1 and 2).
func (l *Log) dropCovered(seq uint64) error {
	wdir := filepath.Join(l.dir, walDirName)
	l.manMu.Lock()
	l.mu.Lock()
	// The open segment (if any) is always the last one and is kept.
	n := 0
	for n < len(l.segs) && !(l.curOpen && n == len(l.segs)-1) && l.segs[n].last <= seq {
		n++
	}
	drop := append([]segment(nil), l.segs[:n]...)
	m := l.man
	m.snapSeq = seq
	switch {
	case n < len(l.segs):
		m.firstSeg = l.segs[n].num
	case n > 0:
		m.firstSeg = drop[n-1].num + 1 // none left: the next one gets this number or a later one
	}
	l.mu.Unlock()
	err := l.writeManifestLocked(m)
	l.manMu.Unlock()
	if err != nil {
		return err
	}
	var kept []uint64
	for _, s := range drop {
		l.mu.Lock()
		keep := len(l.free)+len(kept) < l.cfg.RecycleSegments && s.size >= l.cfg.SegmentSize/2
		l.mu.Unlock()
		if keep {
			// Kept for reuse (Config.RecycleSegments).  A crash before
			// the directory's fsync may bring back the .wal name, as
			// for a removal: recovery takes it for a covered segment.
			// So the log may reuse it only once the rename is durable
			// (below): a reused file's new header under the old name
			// would be a segment whose header names another.
			if err := l.fs.Rename(l.segPath(s.num), l.freePath(s.num)); err != nil {
				return fmt.Errorf("wal: keep covered segment for reuse: %w", err)
			}
			kept = append(kept, s.num)
		} else if err := l.fs.Remove(l.segPath(s.num)); err != nil {
			return fmt.Errorf("wal: remove covered segment: %w", err)
		}
		l.mu.Lock()
		l.segs = l.segs[1:]
		l.mu.Unlock()
	}
	if len(drop) > 0 {
		if err := l.fs.SyncDir(wdir); err != nil {
			return fmt.Errorf("wal: fsync wal directory: %w", err)
		}
		l.mu.Lock()
		l.free = append(l.free, kept...)
		l.mu.Unlock()
	}
	sdir := filepath.Join(l.dir, snapDir)
	names, err := l.fs.ReadDir(sdir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	removed := false
	for _, n := range names {
		if s, ok := parseNum(n, snapExt); ok && s < seq {
			if err := l.fs.Remove(filepath.Join(sdir, n)); err != nil {
				return fmt.Errorf("wal: remove old snapshot: %w", err)
			}
			removed = true
		}
	}
	if removed {
		if err := l.fs.SyncDir(sdir); err != nil {
			return fmt.Errorf("wal: fsync snapshot directory: %w", err)
		}
	}
	return nil
}

func (l *Log) statTime(path string) (time.Time, error) {
	f, err := l.fs.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

// snapWriteBack is how many bytes of a snapshot pacedWriter lets the
// kernel hold before it has them written.
const snapWriteBack = 1 << 20

// pacedWriter writes a snapshot file a chunk at a time to the disk as it
// goes, at most two chunks in flight (RocksDB's bytes_per_sync, with
// waits), rather than leaving it all to the fsync at its end: that fsync
// put the whole snapshot in the disk's queue ahead of the log's own
// fsyncs, a stall of tens of milliseconds for every writer under --sync
// always.  Writeback is best effort: the fsync after it is what makes
// the snapshot durable, so its errors are left to that fsync.
type pacedWriter struct {
	f              vfs.File
	off, queued    int64 // bytes written; of those, handed to writeBack
	inFlight, size int64 // the chunk handed to it last, not waited for yet
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.off += int64(n)
	if d, ok := p.f.(vfs.Fder); ok && p.off-p.queued >= snapWriteBack {
		if p.size > 0 {
			_ = writeBack(d.Fd(), p.inFlight, p.size, true)
		}
		p.inFlight, p.size = p.queued, p.off-p.queued
		_ = writeBack(d.Fd(), p.inFlight, p.size, false)
		p.queued = p.off
	}
	return n, err
}
