//go:build cgo && native

// durable_native_test.go -- adds the native engine to the durability
// tests of durable_test.go.
package storage_test

import "github.com/mantisdb/mantisdb/go/storage"

func init() {
	durableEngines = append(durableEngines, engineCase{"native", storage.NewNativeWithHooks})
}

func init() { crashBuildTags = "native" }
