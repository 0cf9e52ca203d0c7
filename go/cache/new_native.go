//go:build cgo && native

// new_native.go -- with `-tags native` (and cgo) New returns the C-core cache.
package cache

// New returns the cache this binary was built for: native here, pure-Go
// without the native tag.
func New(opts Options) (Cache, error) { return NewNative(opts) }
