// export_test.go -- test-only entry points (the standard export_test.go
// pattern): open an engine over a fault-injecting file layer with small
// WAL segments and checkpoint size, without widening the public API.
package storage

import "github.com/mantisdb/mantisdb/go/wal/vfs"

// WALHooks mirrors walHooks for the external test package.
type WALHooks struct {
	FS              vfs.FS
	SegmentSize     int64
	CheckpointBytes int64
}

func (h WALHooks) internal() walHooks {
	return walHooks{fs: h.FS, segmentSize: h.SegmentSize, checkpointBytes: h.CheckpointBytes}
}

// NewPureGoWithHooks opens the pure-Go engine with test hooks.
func NewPureGoWithHooks(opts Options, h WALHooks) (Engine, error) {
	e, err := newPure(opts, h.internal())
	if err != nil {
		return nil, err
	}
	return e, nil
}

// SweepForTest takes one expiry-sweep step of at most max entries from the
// engine's saved cursor, as the background sweeper does every
// sweepInterval, and reports what it removed and whether it reached the
// end of the key space.  The first call hands the sweeper to the test: the
// background ticker no longer takes steps, so counts are deterministic.
func (e *pureEngine) SweepForTest(max int) (reclaimed int, wrapped bool, err error) {
	return e.sweep.driveForTest(max)
}

// sweeperForTest is the engine's background sweeper (either engine).
func (s *shell) sweeperForTest() *sweeper { return s.sweep }

func (s *sweeper) driveForTest(max int) (int, bool, error) {
	s.manual.Store(true)
	return s.runOnce(max)
}

// FillSizes reports how many entries each of an iterator's first n fills
// over e (either engine) fetches from the first key, as the fill budget
// grows (iter.go, nextPageBuf).
func FillSizes(e Engine, n int) ([]int, error) {
	src, ok := e.(pageSource)
	if !ok {
		return nil, ErrClosed
	}
	var pg page
	defer src.releasePage(&pg)
	var start []byte
	var sizes []int
	for i := 0; i < n; i++ {
		done, err := src.fillPage(&pg, start, i > 0, nil)
		if err != nil {
			return sizes, err
		}
		sizes = append(sizes, len(pg.ents))
		if done || len(pg.ents) == 0 {
			break
		}
		last := pg.ents[len(pg.ents)-1]
		start = append(start[:0], (*pg.bufp)[last.koff:last.koff+last.klen]...)
	}
	return sizes, nil
}

// IterFillEntries reports how many entries its current fill fetched (0
// for an iterator of another package).
func IterFillEntries(it Iterator) int {
	if p, ok := it.(*pagedIter); ok {
		return len(p.pg.ents)
	}
	return 0
}
