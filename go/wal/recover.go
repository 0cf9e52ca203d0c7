// Open and crash recovery (docs/FORMAT.md, "Recovery"): lock, newest valid
// snapshot, WAL replay after its sequence number, torn-tail truncation.

package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// Handler receives the recovered state during Open.  Either field may be
// nil (the data is still fully validated).
type Handler struct {
	// Snapshot is called once, before any Apply, if a snapshot exists.
	// info carries its covered sequence number and record count (to size
	// an index); records yields its PUT records in ascending key order, so
	// the caller can bulk-build a sorted index.  Key and Value alias the
	// mapped file and are valid only until Snapshot returns: copy what you
	// keep.  The snapshot is validated while it is iterated; if it proves
	// corrupt, the iteration ends early and Open fails with ErrCorrupt, so
	// whatever was built must be discarded.
	Snapshot func(info SnapshotInfo, records iter.Seq[Record]) error
	// Apply is called for every WAL record with a sequence number above
	// the snapshot's, in log order: a PUT, a DELETE, or a BATCH delivered
	// whole (iterate it with BatchRecords and apply it atomically; it has
	// already been validated).  Slices are valid only during the call.  An
	// error from Apply aborts Open and is returned.
	Apply func(r Record) error
}

// SnapshotInfo describes one snapshot file.
type SnapshotInfo struct {
	Seq   uint64 // every write with seq <= Seq is in it
	Count uint64 // PUT records (live keys)
	File  string
	Bytes int64
}

// RecoveryInfo reports what Open found.
type RecoveryInfo struct {
	Snapshot   SnapshotInfo // zero when there was none
	Segments   int          // WAL segments read
	Replayed   uint64       // records passed to Apply (a batch counts once)
	LastSeq    uint64       // highest sequence number recovered: continue after it
	TornFile   string       // segment whose torn tail was cut off, if any
	TornOffset int64        // where it was cut
	TornBytes  int64        // bytes dropped
	RemovedTmp []string     // stale *.snap.tmp files removed
}

// BatchRecords yields the nested records of a BATCH record (already
// validated when it came from Apply).  Slices alias b's value.
func BatchRecords(b Record) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		stop := errors.New("stop")
		_ = batchEach(b.Value, func(r Record) error {
			if !yield(r) {
				return stop
			}
			return nil
		})
	}
}

// Open locks dir (creating it if needed), recovers its contents through h
// and returns the log ready for appends after RecoveryInfo.LastSeq.  A
// second Open of the same directory, from any process, fails at once with
// ErrLocked.  Damage that is not a torn tail fails with a *CorruptError
// (ErrCorrupt) naming the file and offset; nothing is dropped silently.
func Open(dir string, cfg Config, h Handler) (*Log, error) {
	cfg = cfg.withDefaults()
	l := &Log{cfg: cfg, fs: cfg.FS, dir: dir, nextNum: 1}
	l.cond.L = &l.mu
	if err := l.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lk, err := l.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	l.lock = lk
	if err := l.recover(h); err != nil {
		lk.Close()
		return nil, err
	}
	if cfg.Sync == SyncInterval {
		l.stopSync, l.syncDone = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	return l, nil
}

// Recovery returns what Open found.
func (l *Log) Recovery() RecoveryInfo { return l.recovery }

func (l *Log) recover(h Handler) error {
	for _, d := range []string{walDirName, snapDir} {
		if err := l.fs.MkdirAll(filepath.Join(l.dir, d)); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", l.dir, err)
	}
	info, err := l.recoverSnapshot(h)
	if err != nil {
		return err
	}
	l.recovery.Snapshot = info
	l.stats.lastCkptSeq = info.Seq
	l.stats.lastSnapBytes = info.Bytes
	last, err := l.replay(info.Seq, h)
	if err != nil {
		return err
	}
	l.lastSeq = max(info.Seq, last)
	l.recovery.LastSeq = l.lastSeq
	return nil
}

func (l *Log) recoverSnapshot(h Handler) (SnapshotInfo, error) {
	sdir := filepath.Join(l.dir, snapDir)
	names, err := l.fs.ReadDir(sdir)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("wal: %w", err)
	}
	var newest uint64
	found, removed := false, false
	for _, n := range names {
		if strings.HasSuffix(n, tmpExt) {
			// An interrupted checkpoint: the rename never happened, so the
			// file was never the snapshot of record.
			if err := l.fs.Remove(filepath.Join(sdir, n)); err != nil {
				return SnapshotInfo{}, fmt.Errorf("wal: remove stale %s: %w", n, err)
			}
			l.recovery.RemovedTmp = append(l.recovery.RemovedTmp, n)
			l.cfg.Logf("wal: removed interrupted snapshot %s", filepath.Join(sdir, n))
			removed = true
			continue
		}
		if seq, ok := parseNum(n, snapExt); ok && (!found || seq > newest) {
			newest, found = seq, true
		}
	}
	if removed {
		if err := l.fs.SyncDir(sdir); err != nil {
			return SnapshotInfo{}, fmt.Errorf("wal: fsync %s: %w", sdir, err)
		}
	}
	if !found {
		return SnapshotInfo{}, nil
	}
	// Only the newest is considered: falling back to an older one could
	// need WAL segments that its successor's checkpoint already removed.
	info, err := l.readSnapshot(l.snapPath(newest), newest, h.Snapshot)
	if err == nil {
		if st, serr := l.statTime(info.File); serr == nil {
			l.stats.lastCkptTime = st
		}
	}
	return info, err
}

// readSnapshot validates the snapshot at path (named for seq) and, if fn is
// set, hands its records to fn.
func (l *Log) readSnapshot(path string, seq uint64, fn func(SnapshotInfo, iter.Seq[Record]) error) (SnapshotInfo, error) {
	f, err := l.fs.Open(path)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("wal: %w", err)
	}
	m, err := mapFile(f, st.Size())
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("wal: read %s: %w", path, err)
	}
	defer m.close()
	data := m.data
	info := SnapshotInfo{File: path, Bytes: st.Size()}

	hdr, off, err := decodeRecord(data)
	if err != nil {
		return info, recordErr(path, 0, err, "snapshot header")
	}
	if hdr.Type != TypeMeta || string(hdr.Key) != snapMetaKey || len(hdr.Value) != 24 {
		return info, corruptf(path, 0, nil, "not a snapshot header")
	}
	if v := binary.LittleEndian.Uint32(hdr.Value); v != snapFormatVersion {
		return info, &CorruptError{File: path, Reason: fmt.Sprintf("snapshot version %d", v), Kind: ErrUnsupported}
	}
	info.Seq = binary.LittleEndian.Uint64(hdr.Value[8:])
	info.Count = binary.LittleEndian.Uint64(hdr.Value[16:])
	if info.Seq != seq {
		return info, corruptf(path, 0, nil, "header covers seq %d, file name says %d", info.Seq, seq)
	}

	// One pass: records are validated as they are handed out.
	var (
		iterErr error
		count   uint64
		prevKey []byte // aliases the mapping, stable while it is mapped
		done    bool   // reached the end META record
	)
	next := func() (Record, bool) {
		if iterErr != nil || done {
			return Record{}, false
		}
		r, n, err := decodeRecord(data[off:])
		if err != nil {
			iterErr = recordErr(path, int64(off), err, "snapshot record")
			return Record{}, false
		}
		switch {
		case r.Type == TypeMeta:
			done = true
			return Record{}, false
		case r.Type != TypePut:
			iterErr = corruptf(path, int64(off), nil, "record type %d in a snapshot", r.Type)
		case r.Seq > info.Seq:
			iterErr = corruptf(path, int64(off), nil, "record seq %d above the snapshot's %d", r.Seq, info.Seq)
		case count > 0 && bytes.Compare(r.Key, prevKey) <= 0:
			iterErr = corruptf(path, int64(off), nil, "keys not in ascending order")
		case count >= info.Count:
			iterErr = corruptf(path, int64(off), nil, "more records than the header's %d", info.Count)
		}
		if iterErr != nil {
			return Record{}, false
		}
		off += n
		count++
		prevKey = r.Key
		return r, true
	}
	if fn != nil {
		err := fn(info, func(yield func(Record) bool) {
			for r, ok := next(); ok; r, ok = next() {
				if !yield(r) {
					return
				}
			}
		})
		if err != nil {
			return info, err
		}
	}
	for _, ok := next(); ok; _, ok = next() { // validate whatever fn left
	}
	if iterErr != nil {
		return info, iterErr
	}
	end, n, err := decodeRecord(data[off:])
	if err != nil {
		return info, recordErr(path, int64(off), err, "snapshot end record")
	}
	switch {
	case string(end.Key) != snapEndMetaKey || len(end.Value) != 16:
		return info, corruptf(path, int64(off), nil, "not a snapshot end record")
	case binary.LittleEndian.Uint64(end.Value) != info.Count || count != info.Count:
		return info, corruptf(path, int64(off), nil, "record count %d, header %d, end record %d",
			count, info.Count, binary.LittleEndian.Uint64(end.Value))
	case binary.LittleEndian.Uint64(end.Value[8:]) != info.Seq:
		return info, corruptf(path, int64(off), nil, "end record seq does not match the header")
	case off+n != len(data):
		return info, corruptf(path, int64(off+n), nil, "%d bytes after the end record", len(data)-off-n)
	}
	return info, nil
}

// replay reads every segment in order, validating each record, passing
// those above snapSeq to h.Apply, and truncating a torn tail of the last
// segment.  It returns the highest sequence number seen.
func (l *Log) replay(snapSeq uint64, h Handler) (uint64, error) {
	wdir := filepath.Join(l.dir, walDirName)
	names, err := l.fs.ReadDir(wdir)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	var nums []uint64
	for _, n := range names {
		if num, ok := parseNum(n, walExt); ok {
			nums = append(nums, num) // ReadDir is sorted, and names are fixed width
		}
	}
	var prev uint64
	for i, num := range nums {
		if i > 0 && num != nums[i-1]+1 {
			return 0, corruptf(l.segPath(nums[i-1]+1), 0, nil, "segment missing (found %s after it)", segName(num))
		}
		seg, err := l.replaySegment(num, i == len(nums)-1, snapSeq, &prev, h)
		if err != nil {
			return 0, err
		}
		l.nextNum = num + 1
		if seg.size > 0 {
			l.segs = append(l.segs, seg)
		} else {
			l.nextNum = num // it was removed: reuse its number, no gap
		}
		l.recovery.Segments++
	}
	return prev, nil
}

func (l *Log) replaySegment(num uint64, last bool, snapSeq uint64, prev *uint64, h Handler) (segment, error) {
	path := l.segPath(num)
	seg := segment{num: num}
	f, err := l.fs.Open(path)
	if err != nil {
		return seg, fmt.Errorf("wal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return seg, fmt.Errorf("wal: %w", err)
	}
	m, err := mapFile(f, st.Size())
	f.Close()
	if err != nil {
		return seg, fmt.Errorf("wal: read %s: %w", path, err)
	}
	data := m.data
	off, torn := 0, false
	var headerFirst uint64
	for off < len(data) || off == 0 {
		r, n, err := decodeRecord(data[off:])
		if err != nil {
			if last && isTorn(data[off:]) {
				torn = true
				break
			}
			m.close()
			return seg, recordErr(path, int64(off), err, "record")
		}
		if off == 0 {
			if r.Type != TypeMeta || string(r.Key) != segMetaKey || len(r.Value) != 24 {
				m.close()
				return seg, corruptf(path, 0, nil, "not a segment header")
			}
			if v := binary.LittleEndian.Uint32(r.Value); v != segFormatVersion {
				m.close()
				return seg, &CorruptError{File: path, Reason: fmt.Sprintf("segment version %d", v), Kind: ErrUnsupported}
			}
			if hn := binary.LittleEndian.Uint64(r.Value[8:]); hn != num {
				m.close()
				return seg, corruptf(path, 0, nil, "header says segment %d", hn)
			}
			headerFirst = binary.LittleEndian.Uint64(r.Value[16:])
			off += n
			continue
		}
		hi, err := checkLogRecord(r, *prev)
		if err == nil && seg.first == 0 && headerFirst != 0 && r.Seq != headerFirst {
			err = fmt.Errorf("first seq %d, header says %d", r.Seq, headerFirst)
		}
		if err != nil {
			m.close()
			return seg, corruptf(path, int64(off), nil, "%v", err)
		}
		if r.Seq > snapSeq && h.Apply != nil {
			if err := h.Apply(r); err != nil {
				m.close()
				return seg, err
			}
		}
		if r.Seq > snapSeq {
			l.recovery.Replayed++
		}
		if seg.first == 0 {
			seg.first = r.Seq
		}
		seg.last, *prev = hi, hi
		off += n
	}
	m.close()
	seg.size = int64(off)
	if torn {
		dropped := int64(len(data) - off)
		l.recovery.TornFile, l.recovery.TornOffset, l.recovery.TornBytes = path, int64(off), dropped
		l.cfg.Logf("wal: torn tail in %s: truncated at offset %d, %d bytes dropped", path, off, dropped)
		if err := l.truncate(path, int64(off)); err != nil {
			return seg, err
		}
	}
	return seg, nil
}

// checkLogRecord checks what the codec cannot: the record may appear in a
// segment body, and sequence numbers strictly increase (inside batches
// too).  It returns the record's highest sequence number.
func checkLogRecord(r Record, prev uint64) (uint64, error) {
	if r.Seq <= prev {
		return 0, fmt.Errorf("seq %d not above the previous %d", r.Seq, prev)
	}
	switch r.Type {
	case TypePut, TypeDelete:
		return r.Seq, nil
	case TypeBatch:
		hi, n := r.Seq, 0
		err := batchEach(r.Value, func(nr Record) error {
			if (n == 0 && nr.Seq != r.Seq) || (n > 0 && nr.Seq <= hi) {
				return fmt.Errorf("batch seq %d: nested seq %d out of order", r.Seq, nr.Seq)
			}
			hi = nr.Seq
			n++
			return nil
		})
		return hi, err
	default:
		return 0, fmt.Errorf("record type %d inside a segment", r.Type)
	}
}

// isTorn applies the torn-tail rule to the bytes from a record that failed
// to decode to the end of the last segment: the header is cut short, the
// (trustworthy) header declares an end at or past EOF, or the record ends
// the file's non-zero data: every byte after its declared end (or, when its
// header check fails, from inside its header) is zero.  The last case is a
// write torn at a page boundary: the record's first bytes reached the disk
// and the pages after them read back as zeros (docs/FORMAT.md, Recovery).
func isTorn(rest []byte) bool {
	if len(rest) < headerSize {
		return true
	}
	z := len(rest) // start of the trailing run of zero bytes
	for z > 0 && rest[z-1] == 0 {
		z--
	}
	if size, ok := peekSize(rest); ok {
		return size >= len(rest) || z <= size
	}
	return z < headerSize
}

// truncate cuts a torn tail off for good (fsynced), or removes a segment
// left with nothing, not even its header.
func (l *Log) truncate(path string, size int64) error {
	if size == 0 {
		if err := l.fs.Remove(path); err != nil {
			return fmt.Errorf("wal: remove torn segment: %w", err)
		}
		if err := l.fs.SyncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("wal: fsync wal directory: %w", err)
		}
		return nil
	}
	f, err := l.fs.OpenRW(path)
	if err != nil {
		return fmt.Errorf("wal: truncate torn tail: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s: %w", path, err)
	}
	return nil
}

// recordErr maps a codec failure to a *CorruptError of the right kind.
func recordErr(path string, off int64, err error, what string) error {
	kind := ErrCorrupt
	if errors.Is(err, errUnsupported) {
		kind = ErrUnsupported
	}
	return &CorruptError{File: path, Offset: off, Reason: what + " fails to decode", Kind: kind, Err: err}
}
