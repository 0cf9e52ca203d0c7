//go:build cgo && native

// native_export_test.go -- exposes internals of the native engine to the
// external test package (the standard export_test.go pattern).
package storage

// CgoNoop makes one cgo call that does nothing (BenchmarkEmptyCgoCall).
func CgoNoop() { cgoNoop() }
