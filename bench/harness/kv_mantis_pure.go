// kv_mantis_pure.go -- registers the pure-Go engine, linked into every
// build (with or without -tags native), so one binary measures both
// MantisDB engines side by side.
package harness

import "github.com/mantisdb/mantisdb/go/storage"

func init() {
	registerKV(KVSubject{
		Name: "mantisdb-pure",
		Open: func(dir string, d Durability) (KV, error) {
			e, err := storage.NewPureGoStorageEngine(mantisOptions(dir, d))
			if err != nil {
				return nil, err
			}
			return mantisKV{e}, nil
		},
		Notes: "storage.NewPureGoStorageEngine; " + mantisNotes,
	})
}
