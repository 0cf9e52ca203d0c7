//go:build cgo && native

// flush_except_native.go -- the native engine's DeleteAllExcept
// (flush_except.go).
package storage

var _ PrefixFlusher = (*nativeEngine)(nil)

// DeleteAllExcept implements PrefixFlusher.
func (e *nativeEngine) DeleteAllExcept(keep []byte, with *Batch) (int, error) {
	return e.deleteAllExcept(e.NewIterator, keep, with)
}
