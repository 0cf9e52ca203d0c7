// add.go -- counters: AddInts, Redis's INCRBY over many keys at once, for
// both engines.
//
// A counter is a value holding a canonical decimal int64 (ParseInt's
// rule, Redis's string2ll).  AddInts adds to it and writes the sum back
// as digits, keeping the value's expiry.  Each key's add is its own
// atomic write, linearizable against every other write of that key
// through any API (it holds the key's stripe, as Update does); the adds
// of one call are applied in order, so a key named twice sees its first
// sum.
//
// Two ways to run it, with the same results:
//
//   - in memory, on an index that can add in place (the native core,
//     mantis_db_add_int): the stripes are locked and the whole list goes
//     to the index in one call, which reads, adds and publishes each key
//     with one lookup.  There is no log to order against, so nothing is
//     encoded and no value crosses into Go;
//   - otherwise (a data directory, or the pure-Go index): one Update over
//     every key, whose batch is logged and published as any Update's.
package storage

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Errors of one key of AddInts (AddResult.Err).
var (
	// ErrNotInteger: the key's value is not a canonical decimal int64.
	ErrNotInteger = errors.New("mantisdb: value is not an integer")
	// ErrOverflow: the sum leaves the int64 range.
	ErrOverflow = errors.New("mantisdb: increment or decrement would overflow")
)

// AddResult is what AddInts did with one key.
type AddResult struct {
	// Value is the sum written, when Err is nil.
	Value int64
	// Err is nil (the sum was written); this key's own refusal, nothing
	// written for it: ErrNotInteger, ErrOverflow, ErrValueTooLarge (the
	// sum's digits pass Options.MaxValueSize) or the key's validation
	// error (ErrEmptyKey, ErrKeyTooLarge); or the error that stopped the
	// call at or before this key (AddInts' own).
	Err error
}

// Adder is implemented by both engines of this package.  Use it through
// a type assertion, e.Engine.(storage.Adder).
type Adder interface {
	// AddInts adds deltas[i] to the value of keys[i] read as a decimal
	// int64 (ParseInt), for each i in order, and sets out[i]: as Redis's
	// INCRBY, an absent or expired key counts as 0, and the sum keeps
	// the value's expiry (a new key gets none).  Each key's add is one
	// atomic write, durable under the sync policy when AddInts returns;
	// they are not atomic together, and a key refused on its own (see
	// AddResult.Err) does not stop the others.  len(deltas) must equal
	// len(keys) and out must hold at least as many (ErrInvalid, nothing
	// written).  Any other error (ErrClosed, ErrNoMem, a log failure)
	// stops the call: keys before it may have been written (out says
	// which), every later one gets it, and it is returned.
	AddInts(keys [][]byte, deltas []int64, out []AddResult) error
}

// intAdder is an index that adds in place (the native core): with the
// stripes of keys held and no log, addInts runs AddInts' adds at now and
// returns how many keys it handled (out[:n] set) and, when n < len(keys),
// the error that stopped it.
type intAdder interface {
	addInts(keys [][]byte, deltas []int64, now int64, out []AddResult) (int, error)
}

// ParseInt reads b as AddInts reads a counter: "0", or an optional '-'
// then a digit 1-9 and more digits, within int64; no '+', spaces or
// leading zeros (Redis's string2ll).
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxIntLen {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i := 0
	if b[0] == '-' {
		i = 1
	}
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// maxIntLen is the longest decimal int64, math.MinInt64's 20 bytes.
const maxIntLen = 20

// addOverflows reports whether cur + delta leaves the int64 range.
func addOverflows(cur, delta int64) bool {
	return delta > 0 && cur > math.MaxInt64-delta || delta < 0 && cur < math.MinInt64-delta
}

// addInts is AddInts for an engine whose reads are read and many (as
// update takes them).
func (s *shell) addInts(read entryReader, many keysReader, keys [][]byte, deltas []int64, out []AddResult) error {
	if len(deltas) != len(keys) || len(out) < len(keys) {
		return fmt.Errorf("%w: AddInts needs a delta and a result per key", ErrInvalid)
	}
	for _, k := range keys {
		if s.lim.checkKey(k) != nil {
			return s.addEach(read, many, keys, deltas, out)
		}
	}
	// The index knows only the format's value limit, and a sum is at
	// most maxIntLen bytes: under a smaller Options.MaxValueSize, Update
	// checks each sum against it.
	if ad, ok := s.idx.(intAdder); ok && s.dur == nil && s.lim.opts.MaxValueSize >= maxIntLen {
		var set stripeSet
		for _, k := range keys {
			s.add(&set, k)
		}
		s.lock(&set)
		defer s.unlock(&set)
		n, err := ad.addInts(keys, deltas, s.lim.now(), out)
		s.touchAdded(keys[:n], out[:n])
		if n < len(keys) {
			return failAdds(out[n:len(keys)], err)
		}
		return nil
	}
	// The sums' digits, back to back: one allocation per call, kept until
	// Update has applied them (Txn.Put does not copy).
	digits := make([]byte, 0, maxIntLen*len(keys))
	err := s.update(read, many, keys, func(tx *Txn) error {
		for i, k := range keys {
			ent, err := tx.Get(k)
			var cur int64
			switch {
			case err == nil:
				var ok bool
				if cur, ok = ParseInt(ent.Value); !ok {
					out[i] = AddResult{Err: ErrNotInteger}
					continue
				}
			case !errors.Is(err, ErrNotFound):
				return err
			}
			if addOverflows(cur, deltas[i]) {
				out[i] = AddResult{Err: ErrOverflow}
				continue
			}
			v := cur + deltas[i]
			start := len(digits)
			digits = strconv.AppendInt(digits, v, 10) // within its capacity: no move
			sum := digits[start:len(digits):len(digits)]
			if err := s.lim.checkValue(sum); err != nil {
				out[i] = AddResult{Err: err} // this key's own refusal, as an overflow
				continue
			}
			if err := tx.Put(k, sum, ent.ExpiresAt); err != nil {
				return err
			}
			out[i] = AddResult{Value: v}
		}
		return nil
	})
	if err != nil {
		return failAdds(out[:len(keys)], err) // nothing was written
	}
	return nil
}

// addEach is addInts for a list with an invalid key: that key gets its
// error, and every other key is added alone, in order, so one bad key
// costs only its own add.  An error of the call stops it there, as in
// addInts.
func (s *shell) addEach(read entryReader, many keysReader, keys [][]byte, deltas []int64, out []AddResult) error {
	for i, k := range keys {
		if err := s.lim.checkKey(k); err != nil {
			out[i] = AddResult{Err: err}
			continue
		}
		if err := s.addInts(read, many, keys[i:i+1], deltas[i:i+1], out[i:i+1]); err != nil {
			return failAdds(out[i:len(keys)], err)
		}
	}
	return nil
}

// failAdds sets every result of out to err and returns it.
func failAdds(out []AddResult, err error) error {
	for i := range out {
		out[i] = AddResult{Err: err}
	}
	return err
}
