//go:build cgo && native

// native_export_test.go -- exposes internals of the native engine to the
// external test package (the standard export_test.go pattern).
package storage

// CgoNoop makes one cgo call that does nothing (BenchmarkEmptyCgoCall).
func CgoNoop() { cgoNoop() }

// NewNativeWithHooks opens the native engine with test hooks.
func NewNativeWithHooks(opts Options, h WALHooks) (Engine, error) {
	e, err := newNative(opts, h.internal())
	if err != nil {
		return nil, err
	}
	return newNativeHandle(e), nil
}

// SweepForTest: see the pure-Go engine's (export_test.go).
func (e *nativeEngine) SweepForTest(max int) (reclaimed int, wrapped bool, err error) {
	return e.sweep.driveForTest(max)
}
