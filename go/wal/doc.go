// Package wal makes a MantisDB data directory durable: the write-ahead log
// with group commit, snapshots (checkpoints) and crash recovery, in the
// on-disk format of docs/FORMAT.md ("Files on disk") that the native core
// reads and writes too.  Engines plug it in; it knows nothing about their
// index.
//
//	l, err := wal.Open(dir, wal.Config{Sync: wal.SyncAlways}, wal.Handler{
//		Snapshot: func(info wal.SnapshotInfo, recs iter.Seq[wal.Record]) error {
//			// bulk-build the index from recs (ascending key order); copy slices
//		},
//		Apply: func(r wal.Record) error {
//			// PUT, DELETE, or a whole BATCH (wal.BatchRecords): apply atomically
//		},
//	})
//	seq := l.LastSeq()                     // continue numbering after it
//	pos, err := l.Enqueue(encodedRecords)  // under the engine's ordering lock
//	err = l.Wait(pos)                      // durable per policy (group commit)
//	info, err := l.WriteSnapshot(seq, sortedLiveRecords) // when l.CheckpointDue()
//	err = l.Close()
//
// Failure model: an error from a write or fsync is returned to the waiting
// callers and puts the log in fail-stop (ErrFailStop) until it is reopened;
// damage found at Open that is not a torn tail is a *CorruptError
// (ErrCorrupt) naming file and offset, a snapshot or segment that is gone
// is a *GapError (ErrGap, checked against the MANIFEST and the chain of
// sequence numbers, which must be consecutive), and nothing is dropped
// silently: every repair Open makes is in RecoveryInfo.Repairs and Logf.
// The file layer is go/wal/vfs; vfs.Fault injects ENOSPC/EIO in tests.
// docs/OPERATIONS.md covers sync policies, checkpoints and repair.
package wal
