// pure_test.go -- the pure-Go engine against the conformance suite, in
// memory and durable, in every build.
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func openPure(t testing.TB, opts storage.Options) storage.Engine {
	t.Helper()
	e, err := storage.NewPureGoStorageEngine(opts)
	if err != nil {
		t.Fatalf("NewPureGoStorageEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestPureConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, opts storage.Options) storage.Engine {
		return openPure(t, opts)
	})
}

func TestPureDurableConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, opts storage.Options) storage.Engine {
		opts.Dir = t.TempDir()
		opts.Sync = storage.SyncNone // the suite tests semantics; fsyncs would only slow it
		return openPure(t, opts)
	})
}
