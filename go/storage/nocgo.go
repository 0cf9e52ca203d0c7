//go:build native && !cgo

// nocgo.go -- `-tags native` with CGO_ENABLED=0: the native engine cannot
// be linked, so NewNativeStorageEngine still compiles (code that names it
// builds either way) but says what is missing.  NewDefaultStorageEngine
// falls back to the pure-Go engine (default_pure.go covers !cgo).
package storage

import "errors"

// ErrNativeUnavailable: this binary was built without cgo, so the native
// engine is not linked in.
var ErrNativeUnavailable = errors.New("mantisdb: native engine unavailable: built with CGO_ENABLED=0 (rebuild with cgo and -tags native)")

// NewNativeStorageEngine always fails in a build without cgo.
func NewNativeStorageEngine(opts Options) (Engine, error) {
	return nil, ErrNativeUnavailable
}
