//go:build cgo && native

// bench_native_test.go -- adds the native engine to the side-by-side
// benchmarks of bench_test.go, plus the fixed cost of one empty cgo call
// for reference.  Run: go test -tags native -run '^$' -bench . ./go/storage
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func init() {
	sbsEngines = append(sbsEngines, benchEngine{"native", storage.NewNativeStorageEngine})
}

func BenchmarkEmptyCgoCall(b *testing.B) {
	for b.Loop() {
		storage.CgoNoop()
	}
}
