//go:build cgo && native

// cache_mantis_native.go -- registers MantisDB's native cache (the C core's
// sharded TTL cache through cgo), the one cache.New returns in this build.
package harness

import mcache "github.com/mantisdb/mantisdb/go/cache"

func init() {
	registerCache(CacheSubject{Name: "mantis-cache-native", New: newMantisCache(mcache.NewNative),
		Notes: "cache.New (native, C core) Options{BudgetBytes}; Get = AppendGet into the row's buffer"})
}
