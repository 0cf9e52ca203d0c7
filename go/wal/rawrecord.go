// rawrecord.go -- the encoded bytes behind a record recovery hands out, so
// an index that takes codec records (the native engine's bulk load) can
// take them as they lie in the file, without encoding them again.

package wal

import (
	"unsafe"

	"github.com/mantisdb/mantisdb/go/codec"
)

// RecordBytes returns the encoded bytes r was decoded from, for a record
// handed to Handler.Snapshot or Handler.Apply by Open: those records are
// views into the file's mapping (a whole record: header, key, value,
// padding), and consecutive snapshot records are adjacent in it, so a run
// of them is one slice.  The result aliases the mapping and is valid only
// while r is.  For any other Record the result is meaningless and must not
// be used: r's key and value must sit right after a header in one buffer.
// A record with neither key nor value bytes gives nil (the codec's empty
// slices do not say where they are).
func RecordBytes(r Record) []byte {
	var p unsafe.Pointer
	switch {
	case len(r.Key) > 0:
		p = unsafe.Pointer(unsafe.SliceData(r.Key))
	case len(r.Value) > 0:
		p = unsafe.Pointer(unsafe.SliceData(r.Value))
	default:
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(p, -headerSize)), codec.Size(len(r.Key), len(r.Value)))
}
