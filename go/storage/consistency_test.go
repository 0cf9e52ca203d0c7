// consistency_test.go -- the issue-15 regression tests (storagetest,
// consistency.go) against the pure-Go engine, in every build.
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestPureConsistency(t *testing.T) {
	storagetest.RunConsistency(t, func(t *testing.T, opts storage.Options) storage.Engine {
		return openPure(t, opts)
	})
}
