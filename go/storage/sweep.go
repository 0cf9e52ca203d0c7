// sweep.go -- the background expiry sweep both engines run: reads never
// return an expired value, but without a sweep an expired key would hold
// its memory (and count in Stats.Keys) until it is overwritten or deleted.
//
// The sweeper is engine-neutral: every sweepInterval it asks the engine to
// examine a bounded batch of entries (sweepBatch) from a saved cursor and
// remove the expired ones, and wraps around at the end of the key space;
// while no entry was ever written with an expiry it examines none.
// So a full pass over n keys takes n/sweepBatch seconds, and no step holds
// a lock (or, natively, an epoch section) for longer than one batch.
//
// No log record is written for a removal: expiry is absolute and recovery
// drops records that are expired when it runs, so the log and the index
// still agree.  A removal races no checkpoint into inconsistency either:
// the pure-Go checkpoint writes a copy-on-write clone, and the native one
// skips entries expired at its own `now`, so an entry the sweep removes
// mid-scan is one that was already expired (clocks move forward).
package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

const (
	// sweepInterval is how often the background sweeper takes one step.
	// Unexported: tests drive the sweeper directly (export_test.go).
	sweepInterval = time.Second
	// sweepBatch bounds the entries one step examines.
	sweepBatch = 10_000
)

// sweepStepFunc examines up to max entries from cursor (nil = the first
// key), removes those expired now whose value is still the expired one,
// and returns the first key not examined (nil when it reached the end) and
// how many entries it removed.
type sweepStepFunc func(cursor []byte, max int) (next []byte, reclaimed int, err error)

// sweeper runs an engine's sweep steps in the background.
type sweeper struct {
	step sweepStepFunc
	// idle reports that no entry can have expired (none was ever written
	// with an expiry: limits.mayExpire): the background steps then visit
	// no entry (max 0), which still runs the native step's epoch
	// maintenance, instead of walking the key space for nothing (a walk
	// that takes a cache miss per entry, beside the writers and readers).
	idle func() bool

	mu     sync.Mutex // serialises steps; guards cursor
	cursor []byte

	manual atomic.Bool // a test drives the steps: the ticker only idles
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// startSweeper starts the background sweeper of engine e.  The goroutine
// holds e only weakly, so an engine its owner forgot to Close can still be
// collected (the native engine's finalizer relies on that); the goroutine
// then exits on its next tick.  mayExpire reports whether e may hold an
// entry with an expiry (limits.mayExpire).
func startSweeper[T any](e *T, step func(e *T, cursor []byte, max int) ([]byte, int, error),
	mayExpire func(e *T) bool) *sweeper {
	wp := weak.Make(e)
	s := &sweeper{
		step: func(cursor []byte, max int) ([]byte, int, error) {
			e := wp.Value()
			if e == nil {
				return nil, 0, ErrClosed
			}
			return step(e, cursor, max)
		},
		idle: func() bool {
			e := wp.Value()
			return e != nil && !mayExpire(e)
		},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.loop()
	return s
}

func (s *sweeper) loop() {
	defer close(s.done)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.manual.Load() {
			continue
		}
		if errors.Is(s.tick(), ErrClosed) {
			return
		}
		// Any other error (the native core out of memory for a cursor
		// copy cannot happen; a bad cursor cannot either) is retried on
		// the next tick from the same cursor: the sweep has no caller to
		// report to, and a failed step changes nothing.
	}
}

// tick is one background step: a batch of sweepBatch entries, or none
// while no entry can have expired (idle).
func (s *sweeper) tick() error {
	max := sweepBatch
	if s.idle() {
		max = 0
	}
	_, _, err := s.runOnce(max)
	return err
}

// runOnce takes one step from the saved cursor.  wrapped reports that the
// step reached the end of the key space (the next one starts over).
func (s *sweeper) runOnce(max int) (reclaimed int, wrapped bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, n, err := s.step(s.cursor, max)
	if err != nil {
		return n, false, err
	}
	s.cursor = next
	return n, next == nil, nil
}

// close stops the background goroutine and waits for a step in flight.
// The shell calls it first thing in Close, before the index goes away.
// Idempotent.
func (s *sweeper) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
