//go:build cgo && native

// linear_native_test.go -- the native engine under the linearizability
// test (storagetest.Linearizability).
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestNativeLinearizability(t *testing.T) {
	storagetest.Linearizability(t, storage.NewNativeStorageEngine)
}
