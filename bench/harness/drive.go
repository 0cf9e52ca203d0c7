// drive.go -- runs one measured phase: N workers released together, each
// doing ops until its op budget is spent or the phase's time limit passes,
// with a per-worker latency histogram (see latency.go for the sampling).
package harness

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// wstate is one worker's private state: its buffers, its key chooser and
// what it saw.  Nothing here is shared, so workers never contend in the
// harness itself.
type wstate struct {
	id       int
	key, val []byte
	buf      []byte
	ch       Chooser
	rng      uint64
	gets     int64
	misses   int64 // gets of keys that must be present but were not
	wrong    int64 // gets that returned another key's value
	puts     int64
	scanned  int64
	acked    []uint64 // write phases: indexes whose Put returned nil
	trackAck bool
}

func newWState(id, valueSize int) *wstate {
	return &wstate{
		id:  id,
		key: make([]byte, KeyLen),
		val: make([]byte, valueSize),
		buf: make([]byte, 0, valueSize),
		rng: mix64(uint64(id) + 1000),
	}
}

// phase describes one measured run.
type phase struct {
	workers   int
	perWorker int64         // op budget of each worker (0 = unbounded)
	limit     time.Duration // wall-time cap (0 = none)
	every     int64         // time one op in every `every` (1 = all)
	state     func(w int) *wstate
	op        func(s *wstate, i int64) error
}

// drive runs p and returns its figures and the workers' states.  The first
// op error stops every worker and is returned.
func drive(p phase) (Figures, []*wstate, error) {
	if p.workers < 1 {
		p.workers = 1
	}
	if p.every < 1 {
		p.every = 1
	}
	states := make([]*wstate, p.workers)
	hists := make([]*hdrhistogram.Histogram, p.workers)
	counts := make([]int64, p.workers)
	for w := range states {
		states[w] = p.state(w)
		hists[w] = newHist()
	}
	var stop atomic.Bool
	var errMu sync.Mutex
	var firstErr error
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(p.workers)
	done.Add(p.workers)
	for w := 0; w < p.workers; w++ {
		go func(w int) {
			defer done.Done()
			s, h := states[w], hists[w]
			ready.Done()
			<-start
			var i int64
			for ; p.perWorker == 0 || i < p.perWorker; i++ {
				// Every worker runs at least one op, so a phase whose
				// limit ends before a worker is scheduled (a loaded
				// machine, the tests' short limits) still measures.
				if i > 0 && stop.Load() {
					break
				}
				var err error
				if i%p.every == 0 {
					t := time.Now()
					err = p.op(s, i)
					_ = h.RecordValue(int64(time.Since(t)))
				} else {
					err = p.op(s, i)
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("worker %d op %d: %w", w, i, err)
					}
					errMu.Unlock()
					stop.Store(true)
					break
				}
			}
			counts[w] = i
		}(w)
	}
	ready.Wait()
	var timer *time.Timer
	t0 := time.Now()
	if p.limit > 0 {
		timer = time.AfterFunc(p.limit, func() { stop.Store(true) })
	}
	close(start)
	done.Wait()
	el := time.Since(t0)
	if timer != nil {
		timer.Stop()
	}
	var ops int64
	for w := range counts {
		ops += counts[w]
		if w > 0 {
			hists[0].Merge(hists[w])
		}
	}
	method := "every op"
	if p.every > 1 {
		method = fmt.Sprintf("1/%d ops", p.every)
	}
	f := figuresFrom(ops, el, hists[0], method)
	return f, states, firstErr
}
