//go:build !native || !cgo

// new_pure.go -- without `-tags native` New returns the pure-Go cache, and
// NewNative reports that the native core is not built in.
package cache

// New returns the cache this binary was built for: pure-Go here, native
// with the native tag.
func New(opts Options) (Cache, error) { return NewPureGo(opts) }

// NewNative is unavailable in this build.
func NewNative(Options) (Cache, error) { return nil, ErrNativeUnavailable }
