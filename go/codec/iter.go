// Iteration over concatenated records: a log segment, a snapshot, a scan
// result, or the payload of a BATCH.

package codec

// Iter walks the records of a buffer (borrowed for the iterator's life).
// It is a plain value: declare it on the stack, nothing to close.
//
//	it := codec.NewIter(buf)
//	for it.Next() {
//		r := it.Record() // a view into buf
//	}
//	if err := it.Err(); err != nil {
//		// the record at it.Offset() failed to decode
//	}
type Iter struct {
	buf   []byte
	off   int // offset of the next record; of the bad one after an error
	batch bool
	rec   Record
	err   error
}

// NewIter returns an iterator over the records of b.  Each record is
// decoded with Decode; a failure stops the iteration.  A buffer that ends
// inside a record yields ErrTruncated, which at the end of a log is a torn
// write.
func NewIter(b []byte) Iter { return Iter{buf: b} }

// NewBatchIter returns an iterator over the nested records of a decoded
// BATCH record's payload (its Value), with the batch rules of
// docs/FORMAT.md on top of Decode's: a nested record that is not a PUT or
// DELETE, or nested records that do not exactly fill the payload, are
// ErrCorrupt.  (A short tail is corrupt, not truncated: the payload is
// covered by the BATCH's CRC, so it cannot be a torn write.)  Validation
// is lazy: a batch is atomic, so run the whole iteration, or CheckBatch,
// before applying any of it.
func NewBatchIter(payload []byte) Iter { return Iter{buf: payload, batch: true} }

// Next decodes the next record.  It returns false at the end of the buffer
// or on the first record that fails to decode; Err tells which.
func (it *Iter) Next() bool {
	if it.err != nil || it.off >= len(it.buf) {
		it.rec = Record{}
		return false
	}
	n, err := decode(it.buf[it.off:], &it.rec)
	switch {
	case err == ErrTruncated && it.batch:
		err = ErrCorrupt
	case err == nil && it.batch && it.rec.Type != TypePut && it.rec.Type != TypeDelete:
		err = ErrCorrupt
	}
	if err != nil {
		it.err = err
		it.rec = Record{}
		return false
	}
	it.off += n
	return true
}

// Record is the record the last successful Next decoded (a view into the
// iterated buffer); the zero Record after Next returned false.
func (it *Iter) Record() Record { return it.rec }

// Err is nil while iterating and after a clean end, otherwise the sentinel
// error of the record that stopped the iteration.
func (it *Iter) Err() error { return it.err }

// Offset is the byte offset of the record the next call to Next decodes:
// after a clean end, the buffer's length; after an error, the offset of the
// record that failed (where a log would be truncated).
func (it *Iter) Offset() int { return it.off }

// CheckBatch validates a whole BATCH payload and returns the number of
// nested records, so a caller can refuse a damaged batch before applying
// any of it.
func CheckBatch(payload []byte) (int, error) {
	it := NewBatchIter(payload)
	n := 0
	for it.Next() {
		n++
	}
	return n, it.Err()
}
