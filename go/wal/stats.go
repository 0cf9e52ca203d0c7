package wal

import "time"

// Stats is a point-in-time view of the log, for engine stats and metrics.
type Stats struct {
	WALBytes           int64     // bytes in live segments: the WAL written since the last checkpoint began, and a reused segment's records before it that the checkpoint left open (rotate)
	Segments           int       // live segments
	FreeSegments       int       // retired segments kept for reuse (Config.RecycleSegments)
	Recycled           uint64    // segments started over a retired one's file since Open
	LastSeq            uint64    // highest sequence number appended or recovered
	Appends            uint64    // Enqueue/Append calls since Open
	Writes             uint64    // write(2) groups since Open (appends/writes = group size)
	Syncs              uint64    // segment fsyncs since Open
	LastCheckpointSeq  uint64    // seq covered by the newest snapshot, 0 if none
	LastCheckpointTime time.Time // when it was written (file mtime if from a previous run)
	SnapshotBytes      int64     // size of the newest snapshot
	TornBytes          int64     // torn-tail bytes dropped at Open
	TornFile           string    // and where
	FailStop           bool      // writes refused until reopen
	FailErr            error     // the error that caused it
}

// Stats returns current statistics.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		Segments:           len(l.segs),
		FreeSegments:       len(l.free),
		Recycled:           l.stats.recycled,
		LastSeq:            l.lastSeq,
		Appends:            l.stats.appends,
		Writes:             l.stats.flushes,
		Syncs:              l.stats.syncs,
		LastCheckpointSeq:  l.stats.lastCkptSeq,
		LastCheckpointTime: l.stats.lastCkptTime,
		SnapshotBytes:      l.stats.lastSnapBytes,
		TornBytes:          l.recovery.TornBytes,
		TornFile:           l.recovery.TornFile,
		FailStop:           l.failErr != nil,
		FailErr:            l.failErr,
	}
	s.WALBytes = l.liveBytesLocked()
	return s
}

// liveBytesLocked is the size of the live segments.  Called with mu held.
func (l *Log) liveBytesLocked() int64 {
	var n int64
	for _, sg := range l.segs {
		n += sg.size
	}
	return n
}

// CheckpointDue reports whether the WAL written since the last checkpoint
// has reached the larger of Config.CheckpointBytes and the newest
// snapshot's size: the hint an engine uses to call WriteSnapshot on its
// own.  So a reopen replays at most about as much log as it loads snapshot
// (or the floor, for small data), and a checkpoint rewrites the data once
// per its own size of log, at most: Redis's auto-aof-rewrite rule (100%
// growth, 64mb minimum).  A fixed 256 MiB threshold, used before, left a
// 30 MB database replaying up to 256 MiB of log at every reopen.
func (l *Log) CheckpointDue() bool {
	if l.cfg.CheckpointBytes < 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.liveBytesLocked()
	if len(l.segs) > 0 && l.segs[0].num == l.covered.num {
		n -= l.covered.bytes // a segment the last checkpoint left open (rotate)
	}
	return n >= max(l.cfg.CheckpointBytes, l.stats.lastSnapBytes)
}

// LastSeq is the highest sequence number appended or recovered; an engine
// numbers its next write LastSeq()+1 after Open.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSeq
}

// maxSegmentsAtOpen: past this many live segments after Open,
// CheckpointDueAtOpen reports true whatever their size.  Every open that
// writes starts a new segment, so a process killed again and again before
// it checkpoints would otherwise pile up small segments without bound.
const maxSegmentsAtOpen = 16

// CheckpointDueAtOpen reports whether an engine should checkpoint right
// after Open, before it serves: CheckpointDue, or more than
// maxSegmentsAtOpen live segments holding less than half a segment each
// on average.  Checkpointing then bounds what the
// next open replays even when this process is killed before any
// automatic checkpoint finishes (a crash loop): each open replays at most
// about the checkpoint size plus what the run before it wrote.
func (l *Log) CheckpointDueAtOpen() bool {
	if l.cfg.CheckpointBytes < 0 {
		return false
	}
	if l.CheckpointDue() {
		return true
	}
	// Many segments, mostly near empty: the trace of short runs.  A large
	// database whose log merely spans many full segments waits for
	// CheckpointDue instead of rewriting its snapshot at every open.
	s := l.Stats()
	return s.Segments > maxSegmentsAtOpen && s.WALBytes < int64(s.Segments)*l.cfg.SegmentSize/2
}
