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
	Snapshot      SnapshotInfo // zero when there was none
	Segments      int          // WAL segments read
	Replayed      uint64       // records passed to Apply (a batch counts once)
	ReplayedBytes int64        // their encoded bytes: the log this open had to read past the snapshot
	LastSeq       uint64       // highest sequence number recovered: continue after it
	TornFile      string       // segment whose torn tail was cut off, if any
	TornOffset    int64        // where it was cut
	TornBytes     int64        // bytes dropped
	RemovedTmp    []string     // stale *.snap.tmp files removed
	Repairs       []Repair     // every change Open made to the files, in order
}

// Repair kinds (Repair.Kind), stable strings for logs and metrics.
const (
	RepairTornTail     = "torn_tail"            // the last segment's torn tail was cut off
	RepairTmpSnapshot  = "interrupted_snapshot" // a *.snap.tmp of an interrupted checkpoint was removed
	RepairSegmentMoved = "segment_moved"        // AllowDataLoss: a segment after a gap was moved into lost/
	RepairWritesLost   = "writes_lost"          // AllowDataLoss: writes missing from the directory were given up
	RepairManifest     = "manifest_rebuilt"     // AllowDataLoss: an unreadable MANIFEST was replaced
	RepairSnapshotGone = "snapshot_missing"     // the snapshot the manifest names is gone, but the log still holds every write
)

// RepairKinds lists every Repair.Kind, for metrics that want a zero for each.
var RepairKinds = []string{RepairTornTail, RepairTmpSnapshot,
	RepairSegmentMoved, RepairWritesLost, RepairManifest, RepairSnapshotGone}

// Repair is one change recovery made to a data directory, or one loss it
// accepted: what an operator must be told.
type Repair struct {
	Kind     string // one of the Repair* constants
	File     string // the file cut, removed or moved; "" for writes_lost
	Offset   int64  // torn_tail: where the file was cut (0 for a file removed or moved whole)
	Bytes    int64  // bytes cut, removed or moved
	FirstSeq uint64 // writes_lost: the first sequence number given up
	LastSeq  uint64 // writes_lost: the last one; 0 when unknown
	Detail   string // why, and where a moved file went
}

// String is the log line for r.
func (r Repair) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wal: repair at open: %s", r.Kind)
	if r.File != "" {
		fmt.Fprintf(&b, " file=%s", r.File)
	}
	if r.File != "" {
		// A file removed or moved whole was dropped from offset 0.
		fmt.Fprintf(&b, " offset=%d bytes=%d", r.Offset, r.Bytes)
	}
	if r.FirstSeq != 0 {
		if r.LastSeq != 0 {
			fmt.Fprintf(&b, " seqs=%d..%d", r.FirstSeq, r.LastSeq)
		} else {
			fmt.Fprintf(&b, " seqs=%d..(end, unknown)", r.FirstSeq)
		}
	}
	if r.Detail != "" {
		fmt.Fprintf(&b, ": %s", r.Detail)
	}
	return b.String()
}

// repaired records and logs one repair.
func (l *Log) repaired(r Repair) {
	l.recovery.Repairs = append(l.recovery.Repairs, r)
	l.cfg.Logf("%s", r.String())
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
	if cfg.Sync == SyncInterval || (cfg.Sync == SyncNone && cfg.BytesPerSync > 0) {
		l.stopSync, l.syncDone = make(chan struct{}), make(chan struct{})
		l.kickSync = make(chan struct{}, 1)
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
	man, haveMan, err := l.readManifest()
	if err != nil {
		if !l.cfg.AllowDataLoss || !errors.Is(err, ErrCorrupt) {
			return err
		}
		l.repaired(Repair{Kind: RepairManifest, File: filepath.Join(l.dir, manifestName),
			Detail: "unreadable (" + err.Error() + "); rebuilt from the files, so this open cannot check for a lost tail"})
		man, haveMan = manifest{}, false
	}
	// An interrupted manifest update: the rename never happened.
	_ = l.fs.Remove(filepath.Join(l.dir, manifestTmp))
	info, err := l.recoverSnapshot(h)
	if err != nil {
		return err
	}
	l.recovery.Snapshot = info
	l.stats.lastCkptSeq = info.Seq
	l.stats.lastSnapBytes = info.Bytes
	rp := &replayPlan{snapSeq: info.Seq, man: man, haveMan: haveMan}
	if err := l.replay(rp, h); err != nil {
		return err
	}
	l.lastSeq = max(info.Seq, rp.cursor)
	l.recovery.LastSeq = l.lastSeq
	if len(l.segs) > 0 && l.segs[0].num == rp.coveredNum {
		l.covered.num, l.covered.bytes = rp.coveredNum, rp.coveredBytes
	}
	// A reused segment tells its old records by their numbers, below its
	// first, which holds while numbers only grow.  An open that gave
	// writes up (AllowDataLoss) may number the next ones below what the
	// kept files hold, so it keeps none.
	keep := l.cfg.RecycleSegments
	for _, r := range l.recovery.Repairs {
		if r.Kind == RepairWritesLost || r.Kind == RepairSegmentMoved || r.Kind == RepairManifest {
			keep = 0
		}
	}
	if err := l.keepFree(filepath.Join(l.dir, walDirName), rp.free, keep); err != nil {
		return err
	}
	// A process killed before its directory fsyncs leaves a new
	// segment's entry or a snapshot's rename in the page cache alone;
	// the manifest written next names what this open kept (invariants 1
	// and 2), so their directories are made durable first.
	if len(l.segs) > 0 {
		if err := l.fs.SyncDir(filepath.Join(l.dir, walDirName)); err != nil {
			return fmt.Errorf("wal: fsync wal directory: %w", err)
		}
	}
	if info.Seq > 0 {
		if err := l.fs.SyncDir(filepath.Join(l.dir, snapDir)); err != nil {
			return fmt.Errorf("wal: fsync snapshot directory: %w", err)
		}
	}
	// The manifest now describes exactly what this open kept.
	next := manifest{baseSeq: rp.base, snapSeq: info.Seq, firstSeg: l.nextNum, lastSeg: l.nextNum - 1}
	if len(l.segs) > 0 {
		first, last := l.segs[0], l.segs[len(l.segs)-1]
		next.firstSeg, next.lastSeg, next.lastFirst = first.num, last.num, rp.lastFirst
	}
	return l.writeManifestLocked(next)
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
			size, err := l.fileSize(filepath.Join(sdir, n))
			if err != nil {
				return SnapshotInfo{}, err
			}
			// An interrupted checkpoint: the rename never happened, so the
			// file was never the snapshot of record.
			if err := l.fs.Remove(filepath.Join(sdir, n)); err != nil {
				return SnapshotInfo{}, fmt.Errorf("wal: remove stale %s: %w", n, err)
			}
			l.recovery.RemovedTmp = append(l.recovery.RemovedTmp, n)
			l.repaired(Repair{Kind: RepairTmpSnapshot, File: filepath.Join(sdir, n), Bytes: size,
				Detail: "an interrupted checkpoint; the snapshot before it and the log still hold its data"})
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

	// One pass: records are validated as they are handed out.  The loop
	// lives in the iterator itself (no per-record closure call beyond
	// yield): a reopen of millions of records spends most of its reading
	// time on per-record overhead, not on the CRC.
	var (
		iterErr error
		count   uint64
		prevKey []byte // aliases the mapping, stable while it is mapped
		done    bool   // reached the end META record
	)
	records := func(yield func(Record) bool) {
		for iterErr == nil && !done {
			r, n, err := decodeRecord(data[off:])
			if err != nil {
				iterErr = recordErr(path, int64(off), err, "snapshot record")
				return
			}
			switch {
			case r.Type == TypeMeta:
				done = true
				return
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
				return
			}
			off += n
			count++
			prevKey = r.Key
			if !yield(r) {
				return
			}
		}
	}
	if fn != nil {
		if err := fn(info, records); err != nil {
			return info, err
		}
	}
	records(func(Record) bool { return true }) // validate whatever fn left
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

// replayPlan carries the chain check through replay (docs/FORMAT.md,
// "Recovery"): cursor is the highest sequence number the history holds
// without a hole so far, and every segment must continue it.
type replayPlan struct {
	snapSeq   uint64   // the loaded snapshot's seq (0: none)
	man       manifest // zero when haveMan is false
	haveMan   bool
	base      uint64   // writes <= base are accepted as absent (a repair gave them up)
	cursor    uint64   // history complete up to here
	prev      uint64   // highest seq seen in the log (records <= snapSeq included)
	kept      int      // segments kept so far
	lastFirst uint64   // first seq of the last kept segment
	lostDir   string   // where this open moves files after a gap, once made
	free      []uint64 // retired segments kept for reuse, found in the wal directory
	// covered: the bytes of the first kept segment, num, up to its last
	// record the snapshot covers (CheckpointDue leaves them out).
	coveredNum   uint64
	coveredBytes int64
	cut          bool // the history was cut at a hole (AllowDataLoss)
	lost         bool // some writes were given up (AllowDataLoss)
}

// segHeaderLen is the size of a segment's META header: a segment shorter
// than that holds no header, let alone records.
var segHeaderLen = int64(len(segHeader(nil, 0, 0, 0)))

// replay reads every segment in order, validating each record, passing
// those above the snapshot to h.Apply, checking that the segments
// continue the history without a hole, and truncating a torn tail of the
// last segment.  A hole is a *GapError unless Config.AllowDataLoss, which
// keeps the longest unbroken history and reports what it gave up.
func (l *Log) replay(rp *replayPlan, h Handler) error {
	wdir := filepath.Join(l.dir, walDirName)
	names, err := l.fs.ReadDir(wdir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	var nums []uint64
	for _, n := range names {
		if num, ok := parseNum(n, walExt); ok {
			nums = append(nums, num) // ReadDir is sorted, and names are fixed width
		} else if num, ok := parseNum(n, freeExt); ok {
			rp.free = append(rp.free, num)
		}
	}
	rp.base = rp.man.baseSeq
	rp.cursor = max(rp.snapSeq, rp.base)
	// The manifest's segment range must exist, unless the files show a
	// newer checkpoint than it names (a crash between the snapshot's
	// rename and the manifest update, or a MantisDB without manifests ran
	// in between): then the chain of sequence numbers alone is checked.
	reqLo, reqHi := uint64(1), uint64(0)
	if rp.haveMan && rp.snapSeq <= rp.man.snapSeq {
		reqLo, reqHi = rp.man.firstSeg, rp.man.lastSeg
	}
	required := func(num uint64) bool { return num >= reqLo && num <= reqHi }

	// A segment the manifest names has a durable header, so one shorter
	// than its header was emptied or cut after the fact.
	for i := 0; i < len(nums); i++ {
		num := nums[i]
		if !required(num) {
			continue
		}
		size, err := l.fileSize(l.segPath(num))
		if err != nil {
			return err
		}
		if size >= segHeaderLen {
			continue
		}
		g := &GapError{Detail: fmt.Sprintf("segment %s is %d bytes, shorter than its header: it was emptied or cut after it was written",
			l.segPath(num), size), Files: []string{l.segPath(num)}}
		if num == reqHi && rp.man.lastFirst > 0 {
			g.FirstSeq = rp.man.lastFirst
		}
		if !l.cfg.AllowDataLoss {
			return g
		}
		if err := l.moveLost(rp, l.segPath(num), size, "emptied segment"); err != nil {
			return err
		}
		nums = append(nums[:i:i], nums[i+1:]...)
		i--
	}

	var prevNum uint64
	for i, num := range nums {
		ok, err := l.replaySegment(rp, num, prevNum, i == len(nums)-1, required(num), h)
		if err != nil {
			return err
		}
		if !ok {
			// A hole before this segment, accepted (AllowDataLoss): keep
			// the history before it, set the rest aside.
			rp.cut = true
			for _, n := range nums[i:] {
				size, err := l.fileSize(l.segPath(n))
				if err != nil {
					return err
				}
				if err := l.moveLost(rp, l.segPath(n), size, "after a gap"); err != nil {
					return err
				}
			}
			break
		}
		prevNum = num
		l.recovery.Segments++
	}
	if rp.lostDir != "" {
		if err := l.fs.SyncDir(wdir); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", wdir, err)
		}
		if err := l.fs.SyncDir(rp.lostDir); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", rp.lostDir, err)
		}
	}

	// Segments the manifest names past the last one found: the log's
	// tail is gone.
	if reqHi >= reqLo && reqHi > 0 && (len(l.segs) == 0 || l.segs[len(l.segs)-1].num < reqHi) && !rp.cut {
		from := reqLo
		if len(l.segs) > 0 {
			from = l.segs[len(l.segs)-1].num + 1
		}
		g := &GapError{Detail: segRange(from, reqHi) + " (the manifest names it)", FirstSeq: rp.cursor + 1}
		if err := l.gap(rp, g); err != nil {
			return err
		}
	}
	// Writes the manifest proves existed, beyond what was recovered: a
	// snapshot and the segments after it are gone.
	if k := rp.man.known(); rp.cursor < k && !rp.cut && !rp.lost {
		g := &GapError{FirstSeq: rp.cursor + 1, LastSeq: k}
		switch {
		case rp.snapSeq < rp.man.snapSeq:
			g.Detail = fmt.Sprintf("snapshot %s is missing (the manifest names it) and the log does not hold its writes",
				l.snapPath(rp.man.snapSeq))
		default:
			g.Detail = "the log ends before the last write the manifest records"
		}
		if err := l.gap(rp, g); err != nil {
			return err
		}
	}
	if rp.haveMan && rp.snapSeq < rp.man.snapSeq && !rp.lost {
		// Gone, but the log still holds every write it covered.
		l.repaired(Repair{Kind: RepairSnapshotGone, File: l.snapPath(rp.man.snapSeq),
			Detail: "the log still holds every write it covered: nothing lost"})
	}
	if len(l.segs) == 0 && rp.haveMan {
		// Never reuse the numbers of segments a checkpoint removed.
		l.nextNum = max(l.nextNum, rp.man.firstSeg)
	}
	return nil
}

// segRange names missing segments a..b for a message.
func segRange(a, b uint64) string {
	if a == b {
		return "WAL segment " + segName(a) + " is missing"
	}
	return fmt.Sprintf("WAL segments %s..%s are missing", segName(a), segName(b))
}

// gap refuses the open with g, or under AllowDataLoss accepts the loss it
// describes and reports it.
func (l *Log) gap(rp *replayPlan, g *GapError) error {
	if !l.cfg.AllowDataLoss {
		return g
	}
	rp.lost = true
	l.repaired(Repair{Kind: RepairWritesLost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq, Detail: g.Detail})
	return nil
}

// moveLost moves path (of size bytes) into this open's lost/ directory:
// out of the data, still on disk for whoever wants to dig.
func (l *Log) moveLost(rp *replayPlan, path string, size int64, why string) error {
	if rp.lostDir == "" {
		rp.lostDir = filepath.Join(l.dir, lostDirName, fmt.Sprintf("%020d", l.cfg.Now().UnixNano()))
		if err := l.fs.MkdirAll(rp.lostDir); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	dst := filepath.Join(rp.lostDir, filepath.Base(path))
	if err := l.fs.Rename(path, dst); err != nil {
		return fmt.Errorf("wal: move %s aside: %w", path, err)
	}
	l.repaired(Repair{Kind: RepairSegmentMoved, File: path, Bytes: size, Detail: why + ", moved to " + dst})
	return nil
}

// fileSize is the size of path.
func (l *Log) fileSize(path string) (int64, error) {
	f, err := l.fs.Open(path)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	return st.Size(), nil
}

// chain checks that a segment whose first sequence number is first
// continues the history.  It returns false when there is a hole before
// it that AllowDataLoss accepts by cutting the history there.
func (l *Log) chain(rp *replayPlan, path string, num, prevNum, first uint64) (bool, error) {
	if first <= rp.cursor+1 {
		return true, nil
	}
	g := &GapError{FirstSeq: rp.cursor + 1, LastSeq: first - 1, Files: []string{path}}
	// At the start means nothing was recovered before the hole: no
	// snapshot, no segment.  Otherwise the hole is in the middle.
	atStart := rp.kept == 0 && rp.snapSeq == 0
	switch {
	case rp.kept > 0 && num != prevNum+1:
		g.Detail = segRange(prevNum+1, num-1)
	case rp.kept > 0:
		g.Detail = fmt.Sprintf("segment %s starts at seq %d but the one before it ends at %d", path, first, rp.cursor)
	case rp.haveMan && rp.snapSeq < rp.man.snapSeq:
		g.Detail = fmt.Sprintf("snapshot %s is missing (the manifest names it); the log starts at seq %d",
			l.snapPath(rp.man.snapSeq), first)
	case rp.snapSeq == 0:
		g.Detail = fmt.Sprintf("there is no snapshot and the first segment, %s, starts at seq %d: a snapshot or earlier segments are missing", path, first)
	default:
		g.Detail = fmt.Sprintf("snapshot %s covers up to seq %d but the first segment, %s, starts at seq %d: segments before it are missing",
			l.snapPath(rp.snapSeq), rp.snapSeq, path, first)
	}
	if !l.cfg.AllowDataLoss {
		return false, g
	}
	rp.lost = true
	if !atStart {
		// A hole in the middle: what follows it would be replayed over a
		// history missing writes, so it is set aside (moveLost) and the
		// state is the one after the last write before the hole.
		l.repaired(Repair{Kind: RepairWritesLost, FirstSeq: rp.cursor + 1,
			Detail: g.Detail + fmt.Sprintf("; kept the history up to seq %d, set aside every segment from %s on", rp.cursor, path)})
		return false, nil
	}
	// A hole at the start: the segments hold an unbroken suffix of the
	// history, kept over an empty state (writes before it are given up).
	l.repaired(Repair{Kind: RepairWritesLost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
		Detail: g.Detail + "; keys last written before it are gone"})
	rp.base, rp.cursor = first-1, first-1
	return true, nil
}

// replaySegment replays one segment.  It returns false, without applying
// anything, when a hole before the segment cut the history there.
func (l *Log) replaySegment(rp *replayPlan, num, prevNum uint64, last, required bool, h Handler) (bool, error) {
	path := l.segPath(num)
	seg := segment{num: num}
	f, err := l.fs.Open(path)
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	defer f.Close() // open for the fsync of a last segment kept whole, below
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	m, err := mapFile(f, st.Size())
	if err != nil {
		return false, fmt.Errorf("wal: read %s: %w", path, err)
	}
	defer m.close()
	data := m.data
	off, torn, pieces, checked := 0, false, false, false
	var headerFirst uint64
	recycled, old := false, false
	for off < len(data) || off == 0 {
		r, n, err := decodeRecord(data[off:])
		if err != nil {
			// A record of a type this build does not know, whose header
			// passed its check, was written by a newer build: never
			// taken for a torn tail (ErrUnsupported: open it with that
			// build).
			if last && (off > 0 || !required) && !errors.Is(err, errUnsupported) {
				torn = isTorn(data[off:])
				pieces = !torn && isTornOverwrite(data[off:], off)
				torn = torn || pieces || (recycled && recycledTail(data[off:], headerFirst))
			}
			if torn {
				break
			}
			return false, recordErr(path, int64(off), err, "record")
		}
		if off > 0 && recycled && r.Seq < headerFirst {
			// A record of the retired segment this one reuses: the log
			// ends here, if it is the last segment and nothing newer
			// follows (recycledTail).  Anywhere else it is damage.
			if last && recycledTail(data[off:], headerFirst) {
				torn, old = true, true
				break
			}
			return false, corruptf(path, int64(off), nil, "seq %d below the segment's first, %d", r.Seq, headerFirst)
		}
		if off == 0 {
			if r.Type != TypeMeta || string(r.Key) != segMetaKey || len(r.Value) != 24 {
				return false, corruptf(path, 0, nil, "not a segment header")
			}
			if v := binary.LittleEndian.Uint32(r.Value); v != segFormatVersion {
				return false, &CorruptError{File: path, Reason: fmt.Sprintf("segment version %d", v), Kind: ErrUnsupported}
			}
			switch fl := binary.LittleEndian.Uint32(r.Value[4:]); fl {
			case 0:
			case segRecycled:
				recycled = true
			default:
				return false, &CorruptError{File: path, Reason: fmt.Sprintf("segment flags %#x", fl), Kind: ErrUnsupported}
			}
			if hn := binary.LittleEndian.Uint64(r.Value[8:]); hn != num {
				return false, corruptf(path, 0, nil, "header says segment %d", hn)
			}
			headerFirst = binary.LittleEndian.Uint64(r.Value[16:])
			if recycled && headerFirst == 0 {
				return false, corruptf(path, 0, nil, "a reused segment's header names no first seq")
			}
			if headerFirst != 0 {
				if ok, err := l.chain(rp, path, num, prevNum, headerFirst); !ok || err != nil {
					return false, err
				}
				checked = true
			}
			off += n
			continue
		}
		if !checked {
			if ok, err := l.chain(rp, path, num, prevNum, r.Seq); !ok || err != nil {
				return false, err
			}
			checked = true
		}
		hi, err := checkLogRecord(r, rp.prev)
		if err == nil && seg.first == 0 && headerFirst != 0 && r.Seq != headerFirst {
			err = fmt.Errorf("first seq %d, header says %d", r.Seq, headerFirst)
		}
		if err != nil {
			return false, corruptf(path, int64(off), nil, "%v", err)
		}
		if r.Seq > rp.snapSeq {
			if h.Apply != nil {
				if err := h.Apply(r); err != nil {
					return false, err
				}
			}
			l.recovery.Replayed++
			l.recovery.ReplayedBytes += int64(n)
		}
		if seg.first == 0 {
			seg.first = r.Seq
		}
		seg.last, rp.prev = hi, hi
		rp.cursor = max(rp.cursor, hi)
		off += n
		if rp.kept == 0 && hi <= rp.snapSeq {
			rp.coveredNum, rp.coveredBytes = num, int64(off)
		}
	}
	seg.size = int64(off)
	if torn {
		dropped := int64(len(data) - off)
		l.recovery.TornFile, l.recovery.TornOffset, l.recovery.TornBytes = path, int64(off), dropped
		detail := "the last write(s) of a crash, never completed"
		switch {
		case isZero(data[off:]):
			detail = "zeros after the last record: space written ahead of the log (--sync always), or writes a crash lost; nothing acknowledged"
		case old || (recycled && !pieces):
			detail = "the bytes of the retired segment this one reuses (--sync always), after the last record or a write a crash left in pieces over them; nothing acknowledged (with no crash, a damaged last write)"
		case pieces:
			detail = "a write over zeros written ahead of the log, left in pieces by a power cut, never acknowledged; with no power cut, this is disk damage"
		}
		if off == 0 {
			detail = "a segment whose header never reached the disk, removed"
		}
		l.repaired(Repair{Kind: RepairTornTail, File: path, Offset: int64(off), Bytes: dropped, Detail: detail})
		if err := l.truncate(path, int64(off)); err != nil {
			return false, err
		}
	} else if last && off > 0 {
		// A process killed before its fsync leaves the last segment's
		// tail (or a new segment's header) in the page cache alone.
		// This open replays it, publishes it and names it in the
		// manifest (invariants 2 and 4), so it is made durable first:
		// the next process's writes go to a new segment, and nothing
		// else would ever fsync this one.  (fsync needs no write
		// access: the handle it was read through serves.)
		if err := f.Sync(); err != nil {
			return false, fmt.Errorf("wal: fsync %s: %w", path, err)
		}
	}
	l.nextNum = num + 1
	if seg.size > 0 {
		l.segs = append(l.segs, seg)
		rp.kept++
		rp.lastFirst = seg.first
		if seg.first == 0 {
			rp.lastFirst = headerFirst
		}
	} else {
		l.nextNum = num // it was removed: reuse its number, no gap
	}
	return true, nil
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
	z := zeroTail(rest)
	if size, ok := peekSize(rest); ok {
		return size >= len(rest) || z <= size
	}
	return z < headerSize
}

// maxTornOverwrite bounds one write over preallocated zeros
// (Config.Preallocate): a group larger than this is appended instead
// (writeGroup), so a write the crash may have left in pieces spans at
// most this many bytes.
const maxTornOverwrite = 1 << 20

// sectorSize is the unit a disk writes whole or not at all.
const sectorSize = 512

// isTornOverwrite applies the rule for a write over preallocated zeros
// (Config.Preallocate, --sync always) cut by a power cut: unlike an
// append, whose new size the file system commits after its data, an
// overwrite has no order among its sectors, and any of them may have
// kept its old content, zeros, while later ones reached the disk.  The
// writer makes such a write a pure overwrite of at most maxTornOverwrite
// bytes, followed by at least a sector of zeros made durable before it
// (writeGroup).  So the tail from the first record that fails to decode
// (rest, at file offset off) is such a write's when
//   - the file ends in a sector or more of zeros, a sector past any
//     record that decodes whole: a segment closed cleanly, or written
//     under another policy, never does, so damage there is not taken
//     for a torn write;
//   - every non-zero byte of rest lies within maxTornOverwrite of its
//     start: the bad record and what follows belong to that one write;
//   - and a sector inside the bad record reads as zeros from the record
//     (or the sector) on to the sector's end: a lost sector.  A bit
//     flipped by the disk leaves none.
//
// What it can still take for a torn write: after a crash under --sync
// always, a record of the last MiB damaged by the disk that holds a
// sector's worth of zeros of its own.  The repair says so
// (RecoveryInfo.Repairs).
func isTornOverwrite(rest []byte, off int) bool {
	z := zeroTail(rest)
	if z > maxTornOverwrite || len(rest)-z < sectorSize {
		return false
	}
	// Those zeros must lie a sector past every record that decodes whole
	// after the bad one: a segment closed cleanly whose last record's
	// value ends in zeros ends in zeros too, right after that record.
	for o := 8; o < z; o += 8 {
		if _, n, err := decodeRecord(rest[o:]); err == nil && len(rest)-(o+n) < sectorSize {
			return false
		}
	}
	end := min(len(rest), headerSize) // the record's extent, as far as known
	if size, ok := peekSize(rest); ok {
		end = min(len(rest), size)
	}
	for lo := 0; lo < end; {
		next := min(len(rest), lo+sectorSize-(off+lo)%sectorSize) // the sector's end
		if isZero(rest[lo:next]) {
			return true
		}
		lo = next
	}
	return false
}

// recycledTail applies the rule for the end of a segment that reuses a
// retired one's file (segRecycled): rest runs from the first record that
// fails to decode or is numbered below first, the segment's first seq
// (an old record: every record of a retired segment is numbered below
// every newer one), to the end of the file.  It is the old segment's
// content, behind at most one write a crash left in pieces over it, when
// no record numbered first or above decodes whole more than
// maxTornOverwrite bytes past rest's start: such a write began at or
// before rest's start and spans at most that many bytes (writeGroup
// appends larger groups after cutting the old records off), so a newer
// record further on means the bad one lies inside the history, and
// Open refuses the directory.
//
// What it can still take for a crash's torn write: a record of the last
// MiB damaged by the disk, as PostgreSQL, whose segments are reused too,
// takes any record that fails its check for the end of its log.  The
// repair says so (RecoveryInfo.Repairs).
func recycledTail(rest []byte, first uint64) bool {
	for o := maxTornOverwrite; o+headerSize <= len(rest); o += 8 {
		if r, _, err := decodeRecord(rest[o:]); err == nil && r.Seq >= first {
			return false
		}
	}
	return true
}

// zeroTail returns where the run of zero bytes that ends b starts.
func zeroTail(b []byte) int {
	z := len(b)
	for z > 0 && b[z-1] == 0 {
		z--
	}
	return z
}

func isZero(b []byte) bool { return zeroTail(b) == 0 }

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
