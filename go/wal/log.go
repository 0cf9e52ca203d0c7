package wal

import (
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// Log is an open data directory: the write-ahead log writer plus the
// snapshots beside it.  Create one with Open.
//
// Thread safety: every method may be called concurrently.  Appends are
// ordered by Enqueue (or Append) call order, which must also be sequence
// order: an engine assigns sequence numbers and calls Enqueue under the same
// lock, then waits outside it (see Enqueue).
//
// Group commit is leader/follower: an appender that must wait and finds no
// flush running becomes the leader, takes everything enqueued so far, writes
// it with one write(2) (and one fsync under SyncAlways) and wakes the
// others; appenders that arrive meanwhile queue up for the next leader.  A
// lone writer never hands off to another goroutine.
type Log struct {
	cfg  Config
	fs   vfs.FS
	dir  string
	lock io.Closer

	mu   sync.Mutex // guards the fields down to the next blank line
	cond sync.Cond  // signalled (with mu) when a flush ends
	// pending holds encoded records enqueued but not yet written; spare is
	// the other buffer of the double-buffer pair.
	pending, spare []byte
	pendingFirst   uint64 // seq of the first record in pending (0: empty)
	pendingLast    uint64 // highest seq in pending
	lastSeq        uint64 // highest sequence number enqueued or recovered
	enqPos         uint64 // logical bytes ever enqueued (this process)
	writtenPos     uint64 // of those, handed to the OS
	syncedPos      uint64 // of those, fsynced
	flushing       bool   // a leader owns the segment file
	failErr        error  // set once: fail-stop
	closed         bool
	segs           []segment // live segments, oldest first
	free           []uint64  // retired segments kept for reuse, as <num>.free (Config.RecycleSegments)
	// covered: a checkpoint left segment num open (rotate) with its
	// first bytes covered by the snapshot; CheckpointDue does not count
	// them while it is live.
	covered struct {
		num   uint64
		bytes int64
	}
	curOpen bool // the last of segs is open for appends
	stats   counters

	// Owned by the flush leader (flushing == true) and by Open/Close.
	// curAlloc is cur's file size: curSize bytes of records, then zeros
	// (Config.Preallocate) or a retired segment's records
	// (Config.RecycleSegments).
	cur       vfs.File
	curSize   int64
	curAlloc  int64
	curReused bool // cur reuses a retired segment's file (Config.RecycleSegments)
	nextNum   uint64

	syncMu sync.Mutex // held around cur.Sync and around closing/replacing cur
	ckptMu sync.Mutex // one WriteSnapshot at a time
	manMu  sync.Mutex // guards man and orders MANIFEST rewrites (manifest.go)
	man    manifest

	stopSync chan struct{}
	syncDone chan struct{}
	// kickSync wakes syncLoop before its period once BytesPerSync bytes
	// wait for an fsync (buffered: a kick pending is enough).
	kickSync chan struct{}

	recovery RecoveryInfo
}

type segment struct {
	num         uint64
	first, last uint64 // sequence numbers of its first and last record, 0 if none
	size        int64
}

type counters struct {
	appends, flushes, syncs uint64
	recycled                uint64 // segments started over a retired one's file
	lastCkptSeq             uint64
	lastCkptTime            time.Time
	lastSnapBytes           int64
}

// maxSpare bounds the buffer kept for reuse after a flush, so one huge
// batch does not pin its memory forever.
const maxSpare = 8 << 20

// Enqueue appends b to the log's in-memory queue, in call order, and
// returns the position to pass to Wait.  b holds one or more complete PUT,
// DELETE or BATCH records as go/codec encoded them, numbered first..last
// (a BATCH's nested records included), and first must be above every
// number enqueued before.  b is copied; the caller may reuse it at once.
//
// Enqueue takes the records as they are: it neither decodes nor
// checksums them (the caller encoded them a moment ago, and recovery
// checks every record's CRC when it reads them back).  It checks only the
// numbering it is told.  Enqueue never blocks on I/O, so an engine can call
// it while holding the lock that orders its sequence numbers:
//
//	mu.Lock(); seq++; rec := encode(seq, ...); pos, err := log.Enqueue(rec, seq, seq); mu.Unlock()
//	if err == nil { err = log.Wait(pos) }
func (l *Log) Enqueue(b []byte, first, last uint64) (uint64, error) {
	if len(b) < headerSize || first == 0 || last < first {
		return 0, fmt.Errorf("%w: %d bytes numbered %d..%d", ErrInvalid, len(b), first, last)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.failErr != nil {
		return 0, l.failErr
	}
	if first <= l.lastSeq {
		return 0, fmt.Errorf("%w: sequence number %d is not above the last one, %d", ErrInvalid, first, l.lastSeq)
	}
	if l.pendingFirst == 0 {
		l.pendingFirst = first
	}
	l.pending = append(l.pending, b...)
	l.pendingLast = last
	l.lastSeq = last
	l.enqPos += uint64(len(b))
	l.stats.appends++
	return l.enqPos, nil
}

// Wait blocks until everything up to pos (from Enqueue) is as durable as the
// sync policy promises: fsynced under SyncAlways, handed to the OS
// otherwise.  It returns the I/O error that stopped the log, if any: the
// records may or may not survive a crash then (the outcome of a failed
// commit is unknown, as in every database), and the log is fail-stopped.
func (l *Log) Wait(pos uint64) error { return l.wait(pos, l.cfg.Sync == SyncAlways) }

// Append is Enqueue followed by Wait.  Callers that assign sequence numbers
// concurrently must use Enqueue under their own lock instead.
func (l *Log) Append(b []byte, first, last uint64) error {
	pos, err := l.Enqueue(b, first, last)
	if err != nil {
		return err
	}
	return l.Wait(pos)
}

// EnqueueRecords encodes recs, numbered in ascending order, and enqueues
// them (see Enqueue).
func (l *Log) EnqueueRecords(recs ...Record) (uint64, error) {
	var buf []byte
	var first, last uint64
	for i, r := range recs {
		var err error
		if buf, err = appendRecord(buf, r); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		hi := r.Seq
		if r.Type == TypeBatch {
			if err := batchEach(r.Value, func(n Record) error { hi = max(hi, n.Seq); return nil }); err != nil {
				return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
		} else if r.Type != TypePut && r.Type != TypeDelete {
			return 0, fmt.Errorf("%w: record type %d cannot be appended", ErrInvalid, r.Type)
		}
		if i == 0 {
			first = r.Seq
		} else if r.Seq <= last {
			return 0, fmt.Errorf("%w: sequence numbers not increasing at record %d", ErrInvalid, i)
		}
		last = hi
	}
	return l.Enqueue(buf, first, last)
}

// AppendRecords encodes recs and appends them (Enqueue then Wait).
func (l *Log) AppendRecords(recs ...Record) error {
	pos, err := l.EnqueueRecords(recs...)
	if err != nil {
		return err
	}
	return l.Wait(pos)
}

// Sync makes everything enqueued so far durable, whatever the policy.
//
// Under SyncAlways the fsync is the next group commit's.  Under the other
// policies writers do not wait for fsyncs, and Sync does not make them:
// it takes the writers' turn only to hand the queue to the OS, then
// fsyncs outside it, as syncLoop does (a checkpoint calls Sync twice,
// and each fsync may write up to BytesPerSync of dirty pages, all of a
// segment's when BytesPerSync is off: milliseconds every writer would
// otherwise spend waiting).
func (l *Log) Sync() error {
	l.mu.Lock()
	pos := l.enqPos
	closed, failErr := l.closed, l.failErr
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if failErr != nil {
		// Whatever is already synced: after a fail-stop every Sync
		// reports it (wait's and syncWritten's shortcuts would not,
		// when nothing is left to write or no segment is open).
		return failErr
	}
	if l.cfg.Sync != SyncAlways {
		if err := l.wait(pos, false); err != nil {
			return err
		}
		if done, err := l.syncWritten(pos); done || err != nil {
			return err
		}
	}
	return l.wait(pos, true)
}

// syncWritten fsyncs the current segment outside the writers' turn and
// marks everything up to pos, already written, as synced.  Bytes up to
// pos are in cur or in a segment closed (and fsynced) since, by a
// rotation or a roll to the next segment, so syncing cur covers them.
// With no cur (between segments) it does nothing and reports false; the
// caller then takes a leader's turn.  The log's fail-stop error, set by
// this fsync or by one before it (syncCur), wins over a success.
func (l *Log) syncWritten(pos uint64) (bool, error) {
	synced, err := l.syncCur()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		return false, l.failErr // syncCur fail-stopped the log
	}
	if !synced {
		return false, nil
	}
	if l.failErr != nil {
		return false, l.failErr
	}
	if pos > l.syncedPos {
		l.syncedPos = pos
	}
	l.cond.Broadcast()
	return true, nil
}

// wait is the group-commit loop described on Log.
func (l *Log) wait(pos uint64, durable bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.syncedPos >= pos || (!durable && l.writtenPos >= pos) {
			return nil
		}
		if l.failErr != nil {
			return l.failErr
		}
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flushing = true
		buf, first, last := l.pending, l.pendingFirst, l.pendingLast
		l.pending, l.spare, l.pendingFirst = l.spare[:0], nil, 0
		target := l.enqPos
		doSync := durable || l.cfg.Sync == SyncAlways
		l.mu.Unlock()

		var err error
		if len(buf) > 0 {
			err = l.writeGroup(buf, first, last)
		}
		if err == nil && doSync {
			// No cur here means every segment written is closed, and
			// closing fsynced it (this leader excludes a rotation).
			_, err = l.syncCur()
		}

		l.mu.Lock()
		l.flushing = false
		if cap(buf) <= maxSpare {
			l.spare = buf[:0]
		}
		if err != nil {
			l.failLocked(err)
		} else if l.failErr == nil {
			// Not after a fail-stop: an fsync outside this turn may have
			// failed before this one succeeded (syncCur), and a success
			// then proves nothing about the bytes it was to cover.
			l.writtenPos = target
			if doSync {
				l.syncedPos = target
			} else if l.kickSync != nil && l.cfg.BytesPerSync > 0 &&
				l.writtenPos-l.syncedPos >= uint64(l.cfg.BytesPerSync) {
				select {
				case l.kickSync <- struct{}{}:
				default:
				}
			}
		}
		l.cond.Broadcast()
	}
}

// failLocked enters fail-stop and wakes every waiter, which then finds
// the log stopped.  Called with mu held.
func (l *Log) failLocked(err error) {
	if l.failErr == nil {
		l.failErr = fmt.Errorf("%w: %w", ErrFailStop, err)
	}
	l.cond.Broadcast()
}

// writeGroup writes one group of records at the end of the current segment,
// starting a new segment first when needed.  Leader only.
func (l *Log) writeGroup(buf []byte, first, last uint64) error {
	if l.cur == nil || l.curSize >= l.cfg.SegmentSize {
		if err := l.startSegment(first); err != nil {
			return err
		}
	}
	if l.cfg.Preallocate > 0 {
		switch end := l.curSize + int64(len(buf)); {
		case len(buf) > maxTornOverwrite && end+sectorSize <= l.curAlloc:
			// Over a reused segment's old bytes (or zeros, when
			// Preallocate is over a piece): written in pieces of whole records, each at
			// most maxTornOverwrite bytes and fsynced before the next,
			// so that a crash leaves at most one piece torn
			// (recycledTail) and the old bytes after it stay in use.
			start := l.curSize
			rest, err := l.writePieces(buf)
			if err != nil {
				// As for a short write below; the pieces fsynced may
				// survive (the outcome of a failed commit is unknown).
				_ = l.cur.Truncate(start)
				return err
			}
			if len(rest) > maxTornOverwrite {
				// A record larger than a piece: cut the old bytes off,
				// and append the rest.
				if err := l.trimSync(); err != nil {
					return err
				}
			}
			buf = rest
		case len(buf) > maxTornOverwrite:
			// Appended, not written over zeros: recovery takes a tail
			// damaged in pieces for a torn write only within
			// maxTornOverwrite bytes (isTornOverwrite).  The zeros
			// are cut, durably, first, so the write extends the file.
			if err := l.trimSync(); err != nil {
				return err
			}
		case end+sectorSize > l.curAlloc:
			// The zeros are extended, durably, first: the group is
			// then a pure overwrite (its fsync does not change the
			// file's size) with at least a sector of durable zeros
			// after it, which is how recovery tells a write a power
			// cut left in pieces (isTornOverwrite).
			if err := l.preallocate(end); err != nil {
				return err
			}
			if _, err := l.syncCur(); err != nil {
				return err
			}
		}
	}
	n, err := l.cur.Write(buf)
	if err != nil {
		// Best effort: cut the short write off so a record the caller was
		// told failed does not reappear at the next open.  Fail-stop
		// follows either way.
		if n > 0 {
			_ = l.cur.Truncate(l.curSize)
		}
		return fmt.Errorf("wal: write %s: %w", segName(l.nextNum-1), err)
	}
	l.curSize += int64(n)
	l.curAlloc = max(l.curAlloc, l.curSize)
	l.mu.Lock()
	s := &l.segs[len(l.segs)-1]
	s.size = l.curSize
	if s.first == 0 {
		s.first = first
	}
	s.last = last
	l.stats.flushes++
	l.mu.Unlock()
	return nil
}

// writePieces writes buf's leading records in pieces of whole records of
// at most maxTornOverwrite bytes, each fsynced, and returns the rest for
// the caller to write: at most a piece, unless a record larger than a
// piece (or one whose header does not read: Enqueue takes records
// unchecked) stopped it.  Leader only.
func (l *Log) writePieces(buf []byte) ([]byte, error) {
	for len(buf) > maxTornOverwrite {
		n := 0
		for n < len(buf) {
			size, ok := peekSize(buf[n:])
			if !ok || size > len(buf)-n || n+size > maxTornOverwrite {
				break
			}
			n += size
		}
		if n == 0 {
			return buf, nil
		}
		if _, err := l.cur.Write(buf[:n]); err != nil {
			return buf, fmt.Errorf("wal: write %s: %w", segName(l.nextNum-1), err)
		}
		l.curSize += int64(n)
		if _, err := l.syncCur(); err != nil {
			return buf, err
		}
		buf = buf[n:]
	}
	return buf, nil
}

// zeros is what preallocate writes.
var zeros [64 << 10]byte

// preallocate extends cur with zeros to Config.Preallocate bytes past end
// (but not past the segment size, and at least a sector), so the records
// up to end, and those after them, are written over blocks the file has.
// Leader only.
func (l *Log) preallocate(end int64) error {
	to := max(end+sectorSize, min(end+l.cfg.Preallocate, l.cfg.SegmentSize))
	// From the file's end, not from end: the group is then written over
	// zeros made durable before it, none of it over a hole.
	for off := l.curAlloc; off < to; {
		n, err := l.cur.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off)
		if err != nil {
			return fmt.Errorf("wal: preallocate %s: %w", segName(l.nextNum-1), err)
		}
		off += int64(n) // WriteAt writes it all or fails (io.WriterAt)
	}
	l.curAlloc = to
	return nil
}

// startSegment closes the current segment (fsynced, so that only the last
// segment can ever be torn) and starts the next one with its META header:
// over a retired segment's file when one is kept (Config.RecycleSegments),
// else in a new file.
func (l *Log) startSegment(first uint64) error {
	if err := l.closeCur(); err != nil {
		return err
	}
	num := l.nextNum
	path := l.segPath(num)
	l.mu.Lock()
	var old uint64
	reuse := len(l.free) > 0
	if reuse {
		old = l.free[0]
		l.free = l.free[1:]
	}
	l.mu.Unlock()
	var f vfs.File
	var alloc int64
	var err error
	if reuse {
		if f, alloc, err = l.reuseFree(old, num, first); err != nil {
			// The kept file is given up (removed by hand, say), not the
			// log: a new file serves, and fails the log if it fails too.
			l.cfg.Logf("wal: %v; starting a new segment file instead", err)
			_ = l.fs.Remove(l.freePath(old))
			reuse = false
		}
	}
	if !reuse {
		if f, err = l.createSegment(path, num, first); err != nil {
			return err
		}
	}
	if err := l.fs.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return fmt.Errorf("wal: fsync wal directory: %w", err)
	}
	l.syncMu.Lock()
	l.cur, l.curSize, l.curAlloc, l.curReused = f, segHeaderLen, max(segHeaderLen, alloc), reuse
	l.syncMu.Unlock()
	l.nextNum++
	l.mu.Lock()
	l.segs = append(l.segs, segment{num: num, size: segHeaderLen})
	l.curOpen = true
	if reuse {
		l.stats.recycled++
	}
	l.mu.Unlock()
	return l.segmentCreated(f, num, first)
}

// createSegment creates segment num's file with its header.
func (l *Log) createSegment(path string, num, first uint64) (vfs.File, error) {
	f, err := l.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wal: create segment: %w", err)
	}
	if _, err := f.Write(segHeader(nil, num, first, 0)); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: write segment header %s: %w", path, err)
	}
	return f, nil
}

// reuseFree makes the retired segment kept as <old>.free segment num: its
// header (flagged segRecycled) is written over the old one and fsynced
// under the .free name, then the file is renamed, so a crash leaves
// either a .free file, which the next Open keeps for reuse, or a segment
// whose durable header names it, and whose old records recovery cuts.  It
// returns the open file, positioned after the header, and its size: the
// bytes past the header the log may write over without extending it.
func (l *Log) reuseFree(old, num, first uint64) (vfs.File, int64, error) {
	from, path := l.freePath(old), l.segPath(num)
	f, err := l.fs.OpenRW(from)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: reuse segment: %w", err)
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.Write(segHeader(nil, num, first, segRecycled))
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = l.fs.Rename(from, path)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("wal: reuse segment %s as %s: %w", from, path, err)
	}
	return f, st.Size(), nil
}

// keepFree takes the retired segments a previous run kept for reuse
// (Open): up to keep of them, the newest; the rest are removed.
func (l *Log) keepFree(wdir string, nums []uint64, keep int) error {
	k := len(nums) - min(len(nums), keep)
	for _, num := range nums[:k] {
		if err := l.fs.Remove(l.freePath(num)); err != nil {
			return fmt.Errorf("wal: remove retired segment: %w", err)
		}
	}
	if k > 0 {
		if err := l.fs.SyncDir(wdir); err != nil {
			return fmt.Errorf("wal: fsync wal directory: %w", err)
		}
	}
	l.free = append(l.free, nums[k:]...)
	return nil
}

// closeCur cuts the zeros (or old records) off the current segment, if
// any, and fsyncs and closes it.  Leader only.
func (l *Log) closeCur() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.cur == nil {
		return nil
	}
	err := l.trimCur()
	if err == nil {
		if err = l.cur.Sync(); err != nil {
			err = fmt.Errorf("wal: fsync segment: %w", err)
		}
	}
	if cerr := l.cur.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: close segment: %w", cerr)
	}
	l.cur = nil
	l.mu.Lock()
	l.curOpen = false
	if err == nil {
		l.stats.syncs++
	} else {
		l.failLocked(err) // under syncMu, as syncCur does
	}
	l.mu.Unlock()
	return err
}

// trimSync cuts what follows cur's records (preallocated zeros, a reused
// segment's old records) off, if anything, and fsyncs it.
// Leader only (or Close, once no leader can run).
func (l *Log) trimSync() error {
	if l.cur == nil || l.curAlloc <= l.curSize {
		return nil
	}
	l.syncMu.Lock()
	err := l.trimCur()
	l.syncMu.Unlock()
	if err == nil {
		_, err = l.syncCur()
	}
	return err
}

// trimCur cuts what follows cur's records off: only the last segment may
// end in zeros or old records (recovery's torn-tail rules), and a clean
// close leaves neither.  The caller owns cur and fsyncs it after.
func (l *Log) trimCur() error {
	if l.curAlloc <= l.curSize {
		return nil
	}
	if err := l.cur.Truncate(l.curSize); err != nil {
		return fmt.Errorf("wal: trim segment: %w", err)
	}
	l.curAlloc = l.curSize
	return nil
}

// syncCur fsyncs the current segment and reports whether there was one.
//
// A failed fsync fail-stops the log before syncMu is released.  The
// kernel reports a lost write-back to one fsync of a file description
// only: the next fsync of cur may succeed although pages it should cover
// were lost, so whoever fsyncs records after this one (syncWritten, a
// leader, a segment's close) must find the log stopped, and each checks
// failErr before it takes its own success for durability.  (The one
// fsync of cur outside syncMu, the new segment's header in
// segmentCreated, covers no record, and its error reaches the leader.)
func (l *Log) syncCur() (bool, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.cur == nil {
		return false, nil
	}
	if err := l.cur.Sync(); err != nil {
		err = fmt.Errorf("wal: fsync segment: %w", err)
		l.mu.Lock()
		l.failLocked(err)
		l.mu.Unlock()
		return false, err
	}
	l.mu.Lock()
	l.stats.syncs++
	l.mu.Unlock()
	return true, nil
}

// syncLoop is the background fsync: under SyncInterval every period, and
// under SyncInterval and SyncNone when kicked (Config.BytesPerSync).
func (l *Log) syncLoop() {
	defer close(l.syncDone)
	var tick <-chan time.Time // nil under SyncNone: kicks only
	if l.cfg.Sync == SyncInterval {
		t := time.NewTicker(l.cfg.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stopSync:
			return
		case <-tick:
		case <-l.kickSync:
		}
		l.mu.Lock()
		target := l.writtenPos
		skip := target <= l.syncedPos || l.failErr != nil
		l.mu.Unlock()
		if skip {
			continue
		}
		// Nothing is marked synced when there was no cur (syncWritten).
		_, _ = l.syncWritten(target)
	}
}

// rotate flushes what is queued, then closes (and fsyncs) the current
// segment, so that the next write starts a new one and a checkpoint can
// drop it once covered.  A reused segment with more than a piece of old
// bytes after its records stays open instead: cutting them off frees that
// many blocks at once, a stall every writer waits for (zeros ahead are a
// MiB at most), and it fills soon enough.  The checkpoint keeps it then,
// its records up to the snapshot's seq skipped at replay as in any
// segment a snapshot straddles, and CheckpointDue counts only the bytes
// after them.
//
// It returns the segment left open and the bytes written to it so far,
// for the checkpoint to mark covered once its snapshot is written (0, 0
// when it closed the segment).
func (l *Log) rotate() (uint64, int64, error) {
	if err := l.Sync(); err != nil {
		return 0, 0, err
	}
	l.mu.Lock()
	for l.flushing {
		l.cond.Wait()
	}
	l.flushing = true // the segment file is ours until released below
	l.mu.Unlock()
	var err error
	keepOpen := l.cur != nil && l.curReused && l.curAlloc-l.curSize > maxTornOverwrite
	if !keepOpen {
		err = l.closeCur() // a failure fail-stops the log (closeCur)
	}
	var open uint64
	var size int64
	l.mu.Lock()
	if keepOpen {
		open, size = l.segs[len(l.segs)-1].num, l.curSize
	}
	if err != nil {
		err = l.failErr
	}
	l.flushing = false
	l.cond.Broadcast()
	l.mu.Unlock()
	return open, size, err
}

// Close flushes and fsyncs everything, closes the files and releases the
// directory lock.  A WriteSnapshot in flight ends first (failing, or
// done), so Close must not be called from a snapshot's view or records,
// nor while holding a lock they take: it would wait for them forever.
// It returns the first error met (the fail-stop error if the log had
// failed); resources are released either way.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	// Refuse new Enqueues first, then flush what is already queued.
	l.closed = true
	pos := l.enqPos
	l.mu.Unlock()
	// A snapshot in flight ends first (it fails at its next step that
	// finds the log closed, or completes): it renames its file, rewrites
	// the manifest and removes segments, which must not happen once the
	// directory lock is released to another Open.  One that starts now
	// waits here and is then refused.
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	err := l.wait(pos, true)
	if l.stopSync != nil {
		close(l.stopSync)
		<-l.syncDone
	}
	l.mu.Lock()
	for l.flushing {
		l.cond.Wait()
	}
	l.mu.Unlock()
	if err == nil {
		// A fsync outside the writers' turn may have failed after the
		// last one this wait saw succeed: the log's error, not nil.
		l.mu.Lock()
		err = l.failErr
		l.mu.Unlock()
	}
	if err == nil {
		// The zeros are cut, durably, so a clean close leaves a segment
		// that ends at its last record.
		err = l.trimSync()
	}
	l.syncMu.Lock()
	if l.cur != nil {
		if cerr := l.cur.Close(); err == nil {
			err = cerr
		}
		l.cur = nil
	}
	l.syncMu.Unlock()
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}
