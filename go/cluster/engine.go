package cluster

// engine.go -- the storage.Engine the server serves in cluster mode.
// Writes go through Raft (Node.Write); reads are the local engine's,
// without the reserved keys.  Whether a read may be served locally
// (leader after ReadBarrier, or a stale read) is the caller's decision:
// the Engine interface has no request to carry a consistency level.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

type engine struct{ n *Node }

var _ storage.Updater = (*engine)(nil)

func (e *engine) write(ops ...storage.Op) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.n.cfg.ApplyTimeout)
	defer cancel()
	return e.n.Write(ctx, ops)
}

// writeOne is write for Put, PutWithTTL and Delete: their caller passed
// one key, so a refused op is reported by its cause alone, without the
// "ops[0]: " that names an op of a batch (as the local engines' Put does).
func (e *engine) writeOne(op storage.Op) error {
	err := e.write(op)
	if oe := (*opError)(nil); errors.As(err, &oe) {
		return oe.err
	}
	return err
}

func (e *engine) Get(key []byte) ([]byte, error) {
	if IsReserved(key) {
		return nil, storage.ErrNotFound
	}
	return e.n.eng.Get(key)
}

func (e *engine) View(key []byte, fn func([]byte) error) error {
	if IsReserved(key) && fn != nil {
		return storage.ErrNotFound
	}
	return e.n.eng.View(key, fn)
}

func (e *engine) Put(key, value []byte) error {
	return e.writeOne(storage.Op{Kind: storage.OpPut, Key: key, Value: value})
}

func (e *engine) PutWithTTL(key, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return storage.ErrInvalidTTL
	}
	return e.writeOne(storage.Op{Kind: storage.OpPut, Key: key, Value: value, TTL: ttl})
}

func (e *engine) Delete(key []byte) error {
	return e.writeOne(storage.Op{Kind: storage.OpDelete, Key: key})
}

func (e *engine) Apply(b *storage.Batch) error {
	if b == nil {
		return nil
	}
	return e.write(b.Ops...)
}

// Update is Node.Update bounded by the apply timeout: the cluster's
// storage.Updater, so the RESP server runs its read-modify-write commands
// through it unchanged.
func (e *engine) Update(keys [][]byte, fn func(tx *storage.Txn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.n.cfg.ApplyTimeout)
	defer cancel()
	return e.n.Update(ctx, keys, fn)
}

func (e *engine) updater() (storage.Updater, error) {
	u, ok := e.n.eng.(storage.Updater)
	if !ok {
		return nil, fmt.Errorf("%w: engine %T has no atomic update", storage.ErrInvalid, e.n.eng)
	}
	return u, nil
}

// GetEntry is the local engine's, without the reserved keys.
func (e *engine) GetEntry(key []byte) (storage.Entry, error) {
	if IsReserved(key) {
		return storage.Entry{}, storage.ErrNotFound
	}
	u, err := e.updater()
	if err != nil {
		return storage.Entry{}, err
	}
	return u.GetEntry(key)
}

// ViewMany is the local engine's, without the reserved keys.
func (e *engine) ViewMany(keys [][]byte, fn func(i int, value []byte, err error) error) error {
	u, err := e.updater()
	if err != nil {
		return err
	}
	if fn == nil {
		return storage.ErrInvalid
	}
	return u.ViewMany(keys, func(i int, v []byte, err error) error {
		if IsReserved(keys[i]) {
			return fn(i, nil, storage.ErrNotFound)
		}
		return fn(i, v, err)
	})
}

func (e *engine) NewIterator(opts storage.IterOptions) (storage.Iterator, error) {
	it, err := e.n.eng.NewIterator(opts)
	if err != nil {
		return nil, err
	}
	return &hidingIter{Iterator: it}, nil
}

func (e *engine) Sync() error        { return e.n.eng.Sync() }
func (e *engine) Checkpoint() error  { return e.n.eng.Checkpoint() }
func (e *engine) Engine() string     { return e.n.eng.Engine() }
func (e *engine) closeNode() error   { return e.n.Close() }
func (e *engine) closeEngine() error { return e.n.eng.Close() }

// Close stops the node, then closes the engine.
func (e *engine) Close() error {
	return errors.Join(e.closeNode(), e.closeEngine())
}

// Stats is the local engine's, without the reserved keys in Keys and
// LiveBytes: DBSIZE and /stats count the user's keyspace, which FLUSHDB
// empties.  The reserved keys are a handful (the applied index and the
// member table), so counting them is one short prefix scan.  Counters
// (Puts, Gets ...) still include the cluster's own work (docs/CLUSTER.md).
func (e *engine) Stats() storage.Stats {
	st := e.n.eng.Stats()
	it, err := e.n.eng.NewIterator(storage.IterOptions{Prefix: reserved})
	if err != nil {
		return st
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		st.Keys--
		st.LiveBytes -= int64(len(it.Key()) + len(it.Value()))
	}
	st.Keys, st.LiveBytes = max(st.Keys, 0), max(st.LiveBytes, 0)
	return st
}

// hidingIter skips the reserved keys.
type hidingIter struct{ storage.Iterator }

var reserved = []byte(ReservedPrefix)

func (it *hidingIter) skip(ok bool) bool {
	for ok && bytes.HasPrefix(it.Iterator.Key(), reserved) {
		ok = it.Iterator.Next()
	}
	return ok
}

func (it *hidingIter) First() bool            { return it.skip(it.Iterator.First()) }
func (it *hidingIter) SeekGE(key []byte) bool { return it.skip(it.Iterator.SeekGE(key)) }
func (it *hidingIter) Next() bool             { return it.skip(it.Iterator.Next()) }
