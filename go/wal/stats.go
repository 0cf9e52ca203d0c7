package wal

import "time"

// Stats is a point-in-time view of the log, for engine stats and metrics.
type Stats struct {
	WALBytes           int64     // bytes in live segments: the WAL written since the last checkpoint began
	Segments           int       // live segments
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
	for _, sg := range l.segs {
		s.WALBytes += sg.size
	}
	return s
}

// CheckpointDue reports whether the WAL has grown past
// Config.CheckpointBytes since the last checkpoint: the hint an engine uses
// to call WriteSnapshot on its own.
func (l *Log) CheckpointDue() bool {
	if l.cfg.CheckpointBytes < 0 {
		return false
	}
	return l.Stats().WALBytes >= l.cfg.CheckpointBytes
}

// LastSeq is the highest sequence number appended or recovered; an engine
// numbers its next write LastSeq()+1 after Open.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSeq
}
