// common.go -- what both engines must do identically, so that they behave
// the same for every input (the differential test holds them to it):
// argument checks and their order, TTL to absolute expiry, batch
// validation and its size limit, and iterator bounds.
package storage

import (
	"bytes"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/mantisdb/mantisdb/go/codec"
)

// maxBatchBytes is the format's batch payload limit (docs/FORMAT.md,
// "Limits"): the encoded records of one batch, 256 MiB.
const maxBatchBytes = codec.MaxBatchSize

// Iterator fetch sizes, shared by both engines so they fetch alike: a
// fill's budget counts key and value bytes only, whatever the framing.
const (
	iterFirstBudget = 4 << 10  // short scans (a prefix, a page) stay small
	iterMaxBudget   = 64 << 10 // steady-state budget: many records per call
	// iterFetchMax bounds the entries of one fill whatever their size, so
	// a fill of tiny entries does not hold the pure engine's read lock, or
	// the native core's batch seqlock, for long.
	iterFetchMax = 1024
	// iterPoolBuf is a pooled page buffer: the largest budget plus room
	// for the native framing's 16-byte entry headers (native_codec.go) of
	// iterFetchMax entries, so a native fill is bounded by the budget and
	// the count as a pure-Go one is, not by its headers.
	iterPoolBuf = iterMaxBudget + 16*iterFetchMax
)

// limits holds an engine's resolved options and the checks built on them.
type limits struct {
	opts Options // withDefaults applied

	// mayExpire is set, for good, before the first entry with an expiry
	// can reach the index: a TTL write (expiry, prepareBatch) or one
	// recovered from disk (durable.go).  Until then nothing can expire,
	// so a native read skips the clock (readNow), a few percent of a Get.
	mayExpire atomic.Bool
}

// markExpiry records that entries with an expiry may exist from now on.
func (l *limits) markExpiry() {
	if !l.mayExpire.Load() {
		l.mayExpire.Store(true)
	}
}

// mayHoldExpiry reports whether an entry with an expiry may exist.
func (l *limits) mayHoldExpiry() bool { return l.mayExpire.Load() }

// readNow is the time a read judges expiry by: now, or 0 ("nothing has
// expired") while no entry carries an expiry.  A read that used 0 and
// found something must check recheckExpiry afterwards: an expiring entry
// may have been published during the read, and the read is then redone
// at the real time.
func (l *limits) readNow() int64 {
	if l.mayExpire.Load() {
		return l.now()
	}
	return 0
}

// recheckExpiry reports whether a read made at readNow() == now must be
// redone at the real time (see readNow).  mayExpire is set before an
// expiring entry is published, so a read that saw such an entry sees the
// flag here.
func (l *limits) recheckExpiry(now int64) bool { return now == 0 && l.mayExpire.Load() }

func (l *limits) checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > l.opts.MaxKeySize {
		return ErrKeyTooLarge
	}
	return nil
}

func (l *limits) checkValue(value []byte) error {
	if len(value) > l.opts.MaxValueSize {
		return ErrValueTooLarge
	}
	return nil
}

// now is Options.Clock in Unix nanoseconds, the unit of expires_at.
func (l *limits) now() int64 { return l.opts.Clock().UnixNano() }

// expiry turns a TTL into the absolute Unix-ns expiry stored with a value.
// A clock before 1970 or an expiry past 2262 cannot be represented.
func (l *limits) expiry(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, ErrInvalidTTL
	}
	now := l.now()
	if now <= 0 || int64(ttl) > math.MaxInt64-now {
		return 0, ErrInvalidTTL
	}
	l.markExpiry()
	return now + int64(ttl), nil
}

// expired reports whether an entry with expiry exp is dead at now.
func expired(exp, now int64) bool { return exp != 0 && exp <= now }

// prepOp is a validated batch operation with its absolute expiry.
type prepOp struct {
	kind       OpKind
	key, value []byte
	exp        int64
}

// prepareBatch validates every operation of b (in order; the first failure
// is reported with its index) and resolves TTLs against one clock reading,
// so that every op of a batch expires relative to the same instant.  It
// returns the ops and the size of their encoded records.
func (l *limits) prepareBatch(dst []prepOp, b *Batch) ([]prepOp, int, error) {
	var now int64
	size := 0
	for i := range b.Ops {
		op := &b.Ops[i]
		if err := l.checkKey(op.Key); err != nil {
			return dst, 0, fmt.Errorf("ops[%d]: %w", i, err)
		}
		p := prepOp{kind: op.Kind, key: op.Key}
		switch op.Kind {
		case OpPut:
			if err := l.checkValue(op.Value); err != nil {
				return dst, 0, fmt.Errorf("ops[%d]: %w", i, err)
			}
			if op.ExpiresAt != 0 {
				if op.ExpiresAt < 0 || op.TTL != 0 {
					return dst, 0, fmt.Errorf("ops[%d]: %w", i, ErrInvalidTTL)
				}
				p.exp = op.ExpiresAt
				l.markExpiry()
			} else if op.TTL != 0 {
				if now == 0 {
					now = l.now()
				}
				if op.TTL < 0 || now <= 0 || int64(op.TTL) > math.MaxInt64-now {
					return dst, 0, fmt.Errorf("ops[%d]: %w", i, ErrInvalidTTL)
				}
				p.exp = now + int64(op.TTL)
				l.markExpiry()
			}
			p.value = op.Value
			size += recordSize(len(op.Key), len(op.Value))
		case OpDelete:
			size += recordSize(len(op.Key), 0)
		default:
			return dst, 0, fmt.Errorf("ops[%d]: unknown kind %d: %w", i, op.Kind, ErrInvalid)
		}
		if size > maxBatchBytes {
			return dst, 0, ErrBatchTooLarge
		}
		dst = append(dst, p)
	}
	return dst, size, nil
}

// iterBounds folds IterOptions into one half-open range [lower, upper)
// (upper nil = unbounded).  empty reports that no key can be in range,
// including an empty but non-nil upper bound (nothing is below it).
func iterBounds(opts IterOptions) (lower, upper []byte, empty bool) {
	lower = bytes.Clone(opts.LowerBound)
	if opts.UpperBound != nil {
		upper = bytes.Clone(opts.UpperBound)
	}
	if len(opts.Prefix) > 0 {
		if bytes.Compare(opts.Prefix, lower) > 0 {
			lower = bytes.Clone(opts.Prefix)
		}
		if succ := prefixSuccessor(opts.Prefix); succ != nil &&
			(upper == nil || bytes.Compare(succ, upper) < 0) {
			upper = succ
		}
	}
	if upper != nil && (len(upper) == 0 || bytes.Compare(lower, upper) >= 0) {
		empty = true
	}
	return lower, upper, empty
}

// prefixSuccessor returns the smallest key greater than every key with
// prefix p, or nil when there is none (p is all 0xff).
func prefixSuccessor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}
