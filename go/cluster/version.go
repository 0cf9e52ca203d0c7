package cluster

// version.go -- write versions (storage.Versioner) of the replicated
// keyspace, for WATCH/EXEC on the leader (go/resp), and its uniform key
// draw (storage.KeySampler, RANDOMKEY).  Every committed
// write reaches this node's engine through FSM.Apply (or Restore), which
// writes it through the engine's shell, so the local engine's versions
// move with every write of the keyspace, whichever node it came from.
// Node.Update reads them with the keys' locks held and every earlier
// write of those keys applied (update.go), which is what the Versioner
// contract asks.

import (
	"math/rand/v2"

	"github.com/mantisdb/mantisdb/go/storage"
)

var _ storage.Versioner = (*engine)(nil)

// WriteVersion is the local engine's version of key.  An engine that
// keeps none (not one of go/storage's) falls back to the applied index:
// it moves with every applied entry, so a watch over it can only abort
// too often, never miss a write.
func (e *engine) WriteVersion(key []byte) uint64 {
	if v, ok := e.n.eng.(storage.Versioner); ok {
		return v.WriteVersion(key)
	}
	return e.n.fsm.applied.Load()
}

var _ storage.KeySampler = (*engine)(nil)

// sampleRetries bounds the redraws of a reserved key (the FSM's own
// bookkeeping, a handful among the keyspace) before the reservoir pass of
// storage.RandomKey, which skips reserved keys, decides.
const sampleRetries = 8

// SampleKey is the local engine's uniform draw with the reserved keys
// rejected, which leaves every other live key equally likely.  Like every
// read here it is the local state; the RESP gate has already confirmed
// leadership when the read must be linearizable.
func (e *engine) SampleKey(r *rand.Rand) ([]byte, bool, error) {
	s, ok := e.n.eng.(storage.KeySampler)
	if !ok {
		return nil, false, nil
	}
	for range sampleRetries {
		key, done, err := s.SampleKey(r)
		if err != nil || !done || !IsReserved(key) {
			return key, done, err
		}
	}
	return nil, false, nil
}
