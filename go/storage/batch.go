package storage

import "time"

// OpKind is the kind of a batch operation.
type OpKind uint8

const (
	OpPut OpKind = iota + 1
	OpDelete
)

// Op is one operation of a Batch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
	TTL   time.Duration // 0 = no expiry
	// ExpiresAt is an absolute expiry in Unix nanoseconds, for a put whose
	// deadline was fixed elsewhere (a replicated write carries the
	// leader's, so every replica stores the same one).  0 = use TTL; a put
	// may set one of TTL and ExpiresAt, not both.  A past ExpiresAt stores
	// an entry that is already expired.
	ExpiresAt int64
}

// Batch collects puts and deletes applied atomically by Engine.Apply.  The
// batch copies nothing until Apply; do not modify the slices before then.
// A Batch is not safe for concurrent use; it may be reused after Reset.
type Batch struct {
	Ops []Op
}

// Put adds a put of key=value.
func (b *Batch) Put(key, value []byte) {
	b.Ops = append(b.Ops, Op{Kind: OpPut, Key: key, Value: value})
}

// PutWithTTL adds a put that expires after ttl.
func (b *Batch) PutWithTTL(key, value []byte, ttl time.Duration) {
	b.Ops = append(b.Ops, Op{Kind: OpPut, Key: key, Value: value, TTL: ttl})
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) { b.Ops = append(b.Ops, Op{Kind: OpDelete, Key: key}) }

// Len returns the number of operations.
func (b *Batch) Len() int { return len(b.Ops) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() { b.Ops = b.Ops[:0] }
