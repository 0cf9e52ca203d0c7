//go:build cgo && native

// flush_native.go -- the native engine's DeleteAll (flush.go).
package storage

// DeleteAll implements Flusher.
func (e *nativeEngine) DeleteAll() (int, error) { return e.deleteAll(e.NewIterator) }
