//go:build !linux

package storage

// lowerThreadPriority is a no-op off Linux, where thread priorities are
// not set per thread this way.
func lowerThreadPriority() {}
