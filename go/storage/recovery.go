// recovery.go -- what an open of a data directory found and did, for
// Stats, logs and metrics, and the checkpoint an open takes before it
// returns when the log it replayed had grown past its checkpoint size.
package storage

import "github.com/mantisdb/mantisdb/go/wal"

// Repair is one change recovery made to the data directory at open, or
// one loss it accepted under Options.AllowDataLoss (go/wal: a torn tail
// cut, an interrupted snapshot removed, a segment set aside in lost/,
// writes given up).  Its String is the log line.
type Repair = wal.Repair

// RecoveryStats describe the last open of the data directory.
type RecoveryStats struct {
	// ReplayedBytes and ReplayedRecords are the log read past the
	// snapshot: what made the open slow, if it was.
	ReplayedBytes   int64
	ReplayedRecords uint64
	// CheckpointedAtOpen: the replayed log had reached the checkpoint
	// size, so the open wrote a checkpoint before returning and the next
	// open replays little, even if this process dies before its first
	// automatic checkpoint (a crash loop).
	CheckpointedAtOpen bool
	// Repairs lists every repair the open made, in order; each was also
	// passed to Options.Logf.
	Repairs []Repair
}

// afterOpen records what wal.Open found and, when the log it replayed had
// grown past the checkpoint size, checkpoints before the engine serves:
// without this a process killed before its first automatic checkpoint
// completes (a crash loop) reopens over a log that only grows.  A failed
// checkpoint is logged, not fatal: the data is safe in the log, and the
// automatic checkpoint retries once writes resume.
func (d *durability) afterOpen(logf func(string, ...any)) {
	ri := d.wal.Recovery()
	d.rec = RecoveryStats{ReplayedBytes: ri.ReplayedBytes, ReplayedRecords: ri.Replayed, Repairs: ri.Repairs}
	if !d.wal.CheckpointDueAtOpen() {
		return
	}
	if err := d.checkpoint(); err != nil {
		if logf != nil {
			logf("storage: checkpoint after replaying %d bytes of log at open failed: %v", ri.ReplayedBytes, err)
		}
		return
	}
	d.rec.CheckpointedAtOpen = true
}

// gapError is a *wal.GapError as this package reports it: it matches
// ErrGap and ErrCorrupt (a gap is damage to the directory) and keeps the
// wal error, which names what is missing.
type gapError struct{ err error }

func (e gapError) Error() string   { return e.err.Error() } // names what is missing, and says "gap"
func (e gapError) Unwrap() []error { return []error{ErrGap, ErrCorrupt, e.err} }
