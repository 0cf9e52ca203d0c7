//go:build cgo && native

// default_native.go -- in `-tags native` builds the default engine is the
// native one (default_pure.go is the other side of the tag).
package storage

// NewDefaultStorageEngine opens the engine this binary was built for: the
// native engine here, the pure-Go engine without the `native` tag.
func NewDefaultStorageEngine(opts Options) (Engine, error) {
	return NewNativeStorageEngine(opts)
}
