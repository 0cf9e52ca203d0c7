// linear_test.go -- the pure-Go engine under the linearizability test
// (storagetest.Linearizability), in every build.
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestPureLinearizability(t *testing.T) {
	storagetest.Linearizability(t, storage.NewPureGoStorageEngine)
}
