package cluster

// batcher.go -- many client writes per Raft entry.  One goroutine takes
// the writes waiting in the queue, packs them (up to MaxEntryBytes) into
// one entry and hands it to Raft; while MaxInflight entries are in
// flight it does not take more, so writes that arrive meanwhile gather in
// the queue and leave together in the next entry.  A busy leader thus
// pays one log append, one replication round trip and one engine batch
// per entry, not per write, and an idle one sends a lone write at once.
// Every write of an entry shares its fate: applied atomically together,
// or all failed with the same error.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

type writeReq struct {
	ops []storage.Op
	// size is opsEncodedSize(ops): the request's records, without the
	// framing its entry adds (entrySize).
	size int
	// readTerm is the term a read-modify-write's read was made in (0: a
	// plain write).  Its writes are applied only if its entry is appended
	// in that term (entry.go, "Requests entry"); else it is answered
	// errStaleRead.
	readTerm uint64
	done     chan error // buffered: the batcher never blocks on a caller
	// settled, if not nil, runs once the request is answered, which may
	// be after submit returned ErrUnknownOutcome (update.go's key locks
	// are released there).
	settled func(error)
	once    sync.Once
	// flush makes the request a flush entry (ops empty), always an
	// entry of its own; deleted is set to the keys it deleted before
	// the request is answered.
	flush   bool
	deleted int
	// gone is the submitter's ctx.Done(): once it is closed the caller
	// has its answer (ErrUnknownOutcome), and a request not yet handed
	// to Raft is answered ErrUnavailable (not applied) instead of being
	// sent, which also releases its key locks (settled).
	gone <-chan struct{}
}

// abandoned reports whether the submitter stopped waiting.
func (r *writeReq) abandoned() bool {
	select {
	case <-r.gone:
		return true
	default:
		return false
	}
}

// answer answers r, once: every request submit takes is answered exactly
// once, whatever happens to the node.
func (r *writeReq) answer(err error) {
	r.once.Do(func() {
		r.done <- err
		if r.settled != nil {
			r.settled(err)
		}
	})
}

type batcher struct {
	n     *Node
	queue chan *writeReq
	slots chan struct{} // one token per entry in flight
	quit  chan struct{}
	done  chan struct{}

	// enq guards stopped: submit holds its read side while it enqueues,
	// and the loop takes its write side when it stops, so no request
	// enters the queue after the loop's last drain (stop).
	enq     sync.RWMutex
	stopped bool

	entries  atomic.Uint64 // entries handed to Raft
	requests atomic.Uint64 // write requests they carried
}

func newBatcher(n *Node) *batcher {
	b := &batcher{
		n:     n,
		queue: make(chan *writeReq, 4096),
		slots: make(chan struct{}, n.cfg.MaxInflight),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.loop()
	return b
}

// submit queues ops and waits for their entry to be applied, ctx to end
// (ErrUnknownOutcome: the entry may still commit) or the node to close.
// settled (nil: none) runs once the request is answered: at once when it
// was never queued, else when its entry's fate is known, or when the
// node closes before it was sent; always exactly once.  readTerm is the
// request's writeReq.readTerm (0: a plain write).
func (b *batcher) submit(ctx context.Context, ops []storage.Op, readTerm uint64, settled func(error)) error {
	return b.submitReq(ctx, &writeReq{ops: ops, size: opsEncodedSize(ops), readTerm: readTerm, done: make(chan error, 1), settled: settled})
}

// errStaleRead answers a read-modify-write whose entry was appended in a
// term other than the one its read was made in: the FSM skipped its
// writes on every replica (entry.go), so nothing was written.
var errStaleRead = fmt.Errorf("%w (the leadership changed after the read; the entry skipped its writes)", ErrTryAgain)

// submitFlush is submit of a flush entry; it returns the keys the leader
// deleted.
func (b *batcher) submitFlush(ctx context.Context, settled func(error)) (int, error) {
	req := &writeReq{flush: true, done: make(chan error, 1), settled: settled}
	if err := b.submitReq(ctx, req); err != nil {
		return 0, err
	}
	return req.deleted, nil
}

func (b *batcher) submitReq(ctx context.Context, req *writeReq) error {
	req.gone = ctx.Done()
	b.enq.RLock()
	if b.stopped {
		b.enq.RUnlock()
		req.answer(ErrClosed)
		return ErrClosed
	}
	select {
	case b.queue <- req:
		b.enq.RUnlock()
	case <-ctx.Done():
		b.enq.RUnlock()
		req.answer(ErrUnavailable)
		return ErrUnavailable
	}
	// Every queued request is answered: by its entry's goroutine (send),
	// whose wait ends by 2*ApplyTimeout or when the node closes, or by
	// the loop's drain when it stops.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ErrUnknownOutcome
	}
}

// stop answers every queued request with ErrClosed and makes submit
// refuse new ones.  It drains the queue until no submit is enqueueing
// (TryLock succeeds: a submit blocked on a full queue holds the read
// side until a drain makes room), so nothing can enter the queue after
// the last drain.
func (b *batcher) stop() {
	for !b.enq.TryLock() {
		b.failQueued(ErrClosed)
		time.Sleep(time.Millisecond)
	}
	b.stopped = true
	b.enq.Unlock()
	b.failQueued(ErrClosed)
}

func (b *batcher) loop() {
	defer close(b.done)
	var pending *writeReq // taken from the queue but over one entry's budget
	for {
		first := pending
		pending = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.quit:
				b.stop()
				return
			}
		}
		if first.abandoned() {
			first.answer(ErrUnavailable)
			continue
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.quit:
			first.answer(ErrClosed)
			b.stop()
			return
		}
		// With the engine log store, no entry is proposed while the
		// log's retained bytes are at its cap: the leader's log then
		// stays under the cap plus MaxInflight entries (logstore.go).
		// Writes arriving meanwhile gather for this entry.
		// A request whose submitter gives up meanwhile is answered
		// ErrUnavailable, so a log held at its cap (say, snapshots
		// failing) cannot keep timed-out writes, and their key locks,
		// queued without end.
		if ls := b.n.elog; ls != nil {
			switch ls.waitRoom(b.quit, first.gone) {
			case roomStop:
				first.answer(ErrClosed)
				<-b.slots
				b.stop()
				return
			case roomAbandoned:
				first.answer(ErrUnavailable)
				<-b.slots
				continue
			}
		}
		// The budget (MaxEntryBytes) bounds the whole encoded entry,
		// framing included: entrySize of what is gathered is exact, and
		// a request that would take it over the budget waits for the
		// next entry.  A requests entry frames every request with a
		// BATCH header of its own (32 bytes), so counting the records
		// alone let an entry of many tiny read-modify-writes grow to
		// nearly twice the budget.  The budget is at most MaxEntrySize
		// (Config.withDefaults), so combining requests can never make
		// an entry a log store cannot hold, nor (the records being
		// part of the entry) one the engine refuses.  A lone request
		// over the budget is its own entry (Write held its records to
		// MaxRequestRecords, so its entry is within MaxEntrySize).
		reqs := []*writeReq{first}
		recs, cond := first.size, first.readTerm != 0
		size := entrySize(recs, 1, cond)
	gather:
		for size < b.n.cfg.MaxEntryBytes && !first.flush {
			select {
			case r := <-b.queue:
				if r.abandoned() {
					r.answer(ErrUnavailable)
					continue
				}
				rcond := cond || r.readTerm != 0
				rsize := entrySize(recs+r.size, len(reqs)+1, rcond)
				if r.flush || rsize > b.n.cfg.MaxEntryBytes {
					pending = r
					break gather
				}
				reqs = append(reqs, r)
				recs, cond, size = recs+r.size, rcond, rsize
			default:
				break gather
			}
		}
		b.send(reqs)
	}
}

// send encodes reqs as one entry, applies it through Raft and answers
// every request when the entry's fate is known: a batch entry when no
// request carries a read term, else a requests entry, of which the FSM
// may skip some requests (answered errStaleRead, the others nil).
func (b *batcher) send(reqs []*writeReq) {
	release := func(err error, stale staleReqs) {
		for i, r := range reqs {
			if len(stale) > 0 && stale[0] == i {
				stale = stale[1:]
				r.answer(errStaleRead)
				continue
			}
			r.answer(err)
		}
		<-b.slots
	}
	var data []byte
	var err error
	conditional := false
	for _, r := range reqs {
		conditional = conditional || r.readTerm != 0
	}
	switch {
	case reqs[0].flush:
		data, err = encodeFlushEntry(nil) // the loop sends a flush alone
	case conditional:
		ereqs := make([]entryReq, len(reqs))
		for i, r := range reqs {
			ereqs[i] = entryReq{readTerm: r.readTerm, ops: r.ops}
		}
		data, err = encodeRequestsEntry(nil, ereqs)
	default:
		var ops []storage.Op
		for _, r := range reqs {
			ops = append(ops, r.ops...)
		}
		data, err = encodeEntry(nil, ops)
	}
	if err != nil {
		release(err, nil)
		return
	}
	f := b.n.raft.Apply(data, b.n.cfg.ApplyTimeout)
	b.entries.Add(1)
	b.requests.Add(uint64(len(reqs)))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*b.n.cfg.ApplyTimeout)
		err := b.n.wait(ctx, f)
		cancel()
		if errors.Is(err, ErrClosed) {
			// Handed to Raft, then the node stopped: others may commit it.
			err = ErrUnknownOutcome
		}
		var stale staleReqs
		if err == nil {
			switch v := f.Response().(type) {
			case error:
				err = v
			case flushed:
				reqs[0].deleted = int(v)
			case staleReqs:
				stale = v
			}
		}
		release(err, stale)
	}()
}

// failQueued answers every queued request with err.
func (b *batcher) failQueued(err error) {
	for {
		select {
		case r := <-b.queue:
			r.answer(err)
		default:
			return
		}
	}
}

func (b *batcher) close() {
	close(b.quit)
	select {
	case <-b.done:
	case <-time.After(time.Minute):
	}
}
