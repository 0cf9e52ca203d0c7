//go:build !native || !cgo

// default_pure_test.go -- without the native tag the default engine is the
// pure-Go one (native_test.go checks the other side).
package storage_test

import (
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestPureIsDefault(t *testing.T) {
	e, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Engine(); got != "pure-go" {
		t.Fatalf("default engine without the native tag = %q, want pure-go", got)
	}
}
