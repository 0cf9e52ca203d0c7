//go:build cgo && native

// kv_mantis_native.go -- registers the native engine (C core through cgo);
// only in `-tags native` builds, where it is linked in.
package harness

import "github.com/mantisdb/mantisdb/go/storage"

func init() {
	registerKV(KVSubject{
		Name: "mantisdb-native",
		Open: func(dir string, d Durability) (KV, error) {
			e, err := storage.NewNativeStorageEngine(mantisOptions(dir, d))
			if err != nil {
				return nil, err
			}
			return mantisKV{e}, nil
		},
		Notes: "storage.NewNativeStorageEngine; " + mantisNotes,
	})
}
