package cluster

// update.go -- atomic read-modify-writes (INCR, APPEND, SET NX, RENAME,
// MULTI/EXEC with WATCH ...) in cluster mode.
//
// Where they run: on the leader, before the log.  The leader reads the
// keys from its engine, runs the caller's function and replicates its
// result as puts of whole values and deletes, like any other write.  The
// log never carries an increment: every entry stays idempotent, which the
// fuzzy snapshots (fsm.go) rely on, and a replay cannot apply an
// increment twice.  Running the command inside FSM.Apply instead would
// make entries depend on the state they are applied to, so a snapshot
// scan that already shows a later entry's effect would apply it again.
//
// Why it is atomic.  Let e be the entry an Update proposes at index i.
// The state e's writes were computed from must be the state after
// entries 1..i-1 for the keys it names.
//
//  0. e carries the term T in which the read was made: the term whose
//     barrier settle confirmed just before it (termBarrier).  Every
//     replica's FSM applies e's writes only if e was appended in T
//     (raft.Log.Term; entry.go, "Requests entry"), and skips them
//     otherwise, deterministically, since the choice depends on the
//     entry alone.  A node leads a term at most once, without a break,
//     and never loses entries of its log while it leads; so if e is
//     appended in T, this node led T from before its read until the
//     append, its engine changed meanwhile only by entries of its own
//     log, and Raft's log matching property says that if e commits, the
//     committed prefix before it is this leader's log of term T before
//     i.  (Without the check this fails: deposed after the read, the
//     node may lead again before the batcher hands e to Raft, for it
//     keeps queued requests across leadership changes, say while
//     waitRoom holds them at the log's cap; e would then be appended in
//     a later term behind another leader's acknowledged writes of the
//     keys, and overwrite them with a result computed before them.)
//
// Entries of that prefix come from
//
//  1. earlier terms: a barrier entry of the current term has been applied
//     (termBarrier), so all of them that will ever commit are in the
//     engine;
//  2. this leader's term, through Write or Update: each holds the key
//     locks below from before it is queued for Raft until the batcher
//     has answered it (even when its caller stopped waiting first),
//     shared for Write (blind writes of one key do not wait for each
//     other) and exclusive for Update, so while an Update holds its keys
//     every earlier write of them is applied, or refused before it
//     entered the log, or ...
//  3. ... was handed to Raft and its fate is unknown (a timeout, a lost
//     leadership): it may still be applied.  Such an answer bumps
//     uncertain before the locks are released; an Update that sees
//     uncertain ahead of settled first waits for a full raft.Barrier,
//     which is ordered after every entry handed to Raft before it.
//
// So the engine, read under the exclusive locks, holds exactly the
// prefix's state of those keys.  If this node has lost its leadership
// of T meanwhile, e either never commits, or commits with its writes
// skipped everywhere (point 0), or was appended in T before the loss
// and commits right behind that same prefix: what fn computed is never
// applied on a state it did not read.  The caller hears ErrNotLeader or
// ErrUnknownOutcome, or, when e was skipped, an error wrapping
// ErrTryAgain (errStaleRead: nothing was written, retrying is safe).  An
// Update that writes nothing answers from its read alone, so it then
// confirms its leadership (ReadBarrier) after reading: no other leader
// can have changed the keys since, and this one could not (it holds the
// locks).
//
// Cost: an Update of a key waits for the previous write of that key to
// commit; updates of one hot key are serialized at one Raft round trip
// each, updates of different keys share entries through the batcher.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"

	"github.com/mantisdb/mantisdb/go/storage"
)

// keyLockStripes is the number of key locks; keys share them by hash.
const keyLockStripes = 1024

// keyLocks are the per-key (striped) locks of update.go's protocol.
type keyLocks struct {
	seed maphash.Seed
	mu   [keyLockStripes]sync.RWMutex
}

func (l *keyLocks) init() { l.seed = maphash.MakeSeed() }

// lock takes the stripes of keys, in ascending order (so two callers
// never wait on each other in a cycle), exclusive or shared, and returns
// the function that releases them.
func (l *keyLocks) lock(keys [][]byte, exclusive bool) func() {
	var set [keyLockStripes / 64]uint64
	for _, k := range keys {
		i := maphash.Bytes(l.seed, k) % keyLockStripes
		set[i/64] |= 1 << (i % 64)
	}
	each := func(fn func(*sync.RWMutex)) {
		for w, bitsLeft := range set {
			for bitsLeft != 0 {
				b := bits.TrailingZeros64(bitsLeft)
				bitsLeft &^= 1 << b
				fn(&l.mu[w*64+b])
			}
		}
	}
	if exclusive {
		each((*sync.RWMutex).Lock)
		return func() { each((*sync.RWMutex).Unlock) }
	}
	each((*sync.RWMutex).RLock)
	return func() { each((*sync.RWMutex).RUnlock) }
}

func opKeys(ops []storage.Op) [][]byte {
	keys := make([][]byte, len(ops))
	for i := range ops {
		keys[i] = ops[i].Key
	}
	return keys
}

// release returns the settled callback of a write that holds key locks:
// it records an unknown fate, then lets the keys go.
func (n *Node) release(unlock func()) func(error) {
	return func(err error) {
		n.noteOutcome(err)
		unlock()
	}
}

// noteOutcome records the batcher's answer to a write that was (or may
// have been) handed to Raft and failed without a known outcome (point 3
// above).  ErrNotLeader means Raft refused it before it entered the log.
func (n *Node) noteOutcome(err error) {
	// ErrTryAgain: the FSM skipped a stale read-modify-write's writes
	// (point 0); its entry is applied, so nothing is left uncertain.
	if err == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTryAgain) {
		return
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) {
		n.uncertain.Add(1)
	}
}

// settle returns once the engine holds every entry that may precede the
// caller's next proposal and touch keys it holds exclusively (update.go,
// points 1 and 3), provided that proposal is appended in term, the term
// whose barrier it confirmed (point 0).  Its errors wrap ErrTryAgain
// (nothing was proposed), or are ErrNotLeader / ErrClosed.
func (n *Node) settle(ctx context.Context) (term uint64, err error) {
	term, _, err = n.termBarrier(ctx)
	if err != nil {
		return 0, tryAgain(err)
	}
	u := n.uncertain.Load()
	if u <= n.settled.Load() {
		return term, nil
	}
	// Read before the barrier: every failure counted in u was handed to
	// Raft before this barrier is.
	if err := n.wait(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
		return 0, tryAgain(err)
	}
	for {
		s := n.settled.Load()
		if s >= u || n.settled.CompareAndSwap(s, u) {
			return term, nil
		}
	}
}

// tryAgain maps the error of a step that proposed nothing: ErrNotLeader
// and ErrClosed stay, anything else wraps ErrTryAgain (and only it: a
// barrier's ErrUnknownOutcome says nothing about the caller's writes).
func tryAgain(err error) error {
	if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w (%v)", ErrTryAgain, err)
}

// errStaged ends the local engine's Update once fn has staged its
// writes: they go through Raft instead.
var errStaged = errors.New("cluster: writes staged for replication")

// Update runs fn atomically over keys, with the contract of
// storage.Updater.Update, and replicates its writes: it returns once they
// are committed and applied here (leader only: ErrNotLeader elsewhere).
// fn runs once, against the leader's engine, with the keys locked; its
// writes enter the log as puts of the resulting values (absolute
// expiries) and deletes.  An error from fn is returned and nothing is
// written.  The keys of the reserved prefix are refused
// (ErrReservedKey).  Errors after fn ran are those of Write
// (ErrUnknownOutcome: the writes may still be applied), ErrNotLeader, or
// wrap ErrTryAgain (nothing was written: the leadership could not be
// confirmed before the read, or changed between the read and the
// writes' entry).
func (n *Node) Update(ctx context.Context, keys [][]byte, fn func(tx *storage.Txn) error) error {
	if fn == nil {
		return storage.ErrInvalid
	}
	for _, k := range keys {
		if IsReserved(k) {
			return ErrReservedKey
		}
	}
	u, ok := n.eng.(storage.Updater)
	if !ok {
		return fmt.Errorf("%w: engine %T has no atomic update", storage.ErrInvalid, n.eng)
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if !n.IsLeader() {
		return ErrNotLeader
	}
	unlock := n.keys.lock(keys, true)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	term, err := n.settle(ctx)
	if err != nil {
		return err
	}
	var staged []storage.Op
	err = u.Update(keys, func(tx *storage.Txn) error {
		if err := fn(tx); err != nil {
			return err
		}
		staged = tx.Writes()
		return errStaged
	})
	if !errors.Is(err, errStaged) {
		return err // fn's error, or the engine's (a key over the limits)
	}
	if len(staged) == 0 {
		if err := n.ReadBarrier(ctx); err != nil {
			return tryAgain(err)
		}
		return nil
	}
	ops, err := n.prepare(staged)
	if err != nil {
		return err
	}
	locked = false // released once the batcher has answered (point 2)
	// The entry carries term: its writes are applied only if it is
	// appended in the term the read was made in (point 0).
	return n.proposeThen(ctx, ops, term, n.release(unlock))
}
