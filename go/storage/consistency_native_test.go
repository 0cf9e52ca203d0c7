//go:build cgo && native

// consistency_native_test.go -- the issue-15 regression tests (storagetest,
// consistency.go) against the native engine: each reproduced one defect
// of the native core before its fix.
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestNativeConsistency(t *testing.T) {
	storagetest.RunConsistency(t, func(t *testing.T, opts storage.Options) storage.Engine {
		return openNative(t, opts)
	})
}
