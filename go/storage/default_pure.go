//go:build !native || !cgo

// default_pure.go -- without the `native` tag (or without cgo) the
// default engine is the pure-Go one (default_native.go is the other side).
package storage

// NewDefaultStorageEngine opens the engine this binary was built for: the
// pure-Go engine here, the native engine in `-tags native` builds with cgo.
func NewDefaultStorageEngine(opts Options) (Engine, error) {
	return NewPureGoStorageEngine(opts)
}
