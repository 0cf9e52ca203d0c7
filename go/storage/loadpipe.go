// loadpipe.go -- the pipeline both engines load a snapshot through, so
// that a reopen uses every core: the caller reads the file (go/wal
// decodes and checks each record) and cuts it into parts; builder
// goroutines turn parts into what the index takes (the engine's copies of
// keys and values: allocation and first touch of fresh memory, most of a
// load's work), several parts at once; one linker hands the built parts
// to the index in the order they were added, which is the file's, so the
// index is built exactly as one sequential load would build it.
package storage

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// loadPipe runs build on builder goroutines and link on one linker
// goroutine in the order of add.  The channels bound the parts in flight,
// and with them the memory a load holds beyond the index.  What a part
// refers to must stay valid until finish returns (the snapshot mapping,
// which go/wal keeps until the load returns): finish waits for every
// goroutine.  After the first error (of build or link) nothing more is
// linked; every built part after it goes to drop.
type loadPipe[In, Out any] struct {
	jobs   chan *loadJob[In, Out] // to the builders
	order  chan *loadJob[In, Out] // to the linker, in add order
	wg     sync.WaitGroup
	failed atomic.Bool // set by the linker with err: stop adding
	err    error       // the linker's first error; read after wg.Wait
}

// loadJob is one part: its input, then what build made of it (owned by
// the job until linked or dropped).
type loadJob[In, Out any] struct {
	in    In
	out   Out
	err   error
	built chan struct{} // closed once out/err are set
}

// newLoadPipe starts one builder per core (the reader and the linker do
// less per record than a builder, and the scheduler shares the cores out)
// and the linker.  drop may be nil.
func newLoadPipe[In, Out any](build func(In) (Out, error), link func(Out) error, drop func(Out)) *loadPipe[In, Out] {
	n := max(1, min(runtime.GOMAXPROCS(0), 8))
	p := &loadPipe[In, Out]{jobs: make(chan *loadJob[In, Out], n), order: make(chan *loadJob[In, Out], 2*n)}
	p.wg.Add(n + 1)
	for range n {
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				j.out, j.err = build(j.in)
				close(j.built)
			}
		}()
	}
	go func() {
		defer p.wg.Done()
		for j := range p.order {
			<-j.built
			switch {
			case p.err != nil || j.err != nil:
				if p.err == nil {
					p.err = j.err
				}
				if drop != nil && j.err == nil {
					drop(j.out)
				}
			default:
				p.err = link(j.out)
			}
			var zero Out
			j.out = zero
			if p.err != nil {
				p.failed.Store(true)
			}
		}
	}()
	return p
}

// add queues a part.  false once an error stopped the load (finish
// reports it).
func (p *loadPipe[In, Out]) add(in In) bool {
	if p.failed.Load() {
		return false
	}
	j := &loadJob[In, Out]{in: in, built: make(chan struct{})}
	p.order <- j // first: the linker drops it if the load has failed
	p.jobs <- j
	return true
}

// finish lets the linker take what is queued, stops every goroutine and
// returns the load's first error.
func (p *loadPipe[In, Out]) finish() error {
	close(p.jobs)
	close(p.order)
	p.wg.Wait()
	return p.err
}
