//go:build native && !cgo

// nocgo.go -- `-tags native` with CGO_ENABLED=0: the native engine cannot
// be linked, so NewNativeStorageEngine still compiles (code that names it
// builds either way) but says what is missing.  NewDefaultStorageEngine
// falls back to the pure-Go engine (default_pure.go covers !cgo).
package storage

// NewNativeStorageEngine always fails in a build without cgo.
func NewNativeStorageEngine(opts Options) (Engine, error) {
	return nil, ErrNativeUnavailable
}
