// kv_mantis.go -- MantisDB's storage.Engine as a KV subject.  The same
// adapter drives the native and the pure-Go engine; which constructors are
// linked in depends on the build (kv_mantis_native.go, kv_mantis_pure.go).
package harness

import (
	"errors"

	"github.com/mantisdb/mantisdb/go/storage"
)

type mantisKV struct{ e storage.Engine }

// mantisOptions maps a row's durability onto storage.Options: the data
// lives in dir either way (a WAL is written), and only the fsync policy
// differs, as for every peer.
func mantisOptions(dir string, d Durability) storage.Options {
	o := storage.Options{Dir: dir, Sync: storage.SyncNone}
	if d == SyncOnCommit {
		o.Sync = storage.SyncAlways
	}
	return o
}

const mantisNotes = "storage.Options{Dir, Sync: SyncNone | SyncAlways (group commit)} (no read cache: neither engine has one); Get = View + copy"

func (m mantisKV) Put(k, v []byte) error           { return m.e.Put(k, v) }
func (m mantisKV) PutConcurrent(k, v []byte) error { return m.e.Put(k, v) }

func (m mantisKV) Load(keys, values [][]byte) error {
	var b storage.Batch
	for i := range keys {
		b.Put(keys[i], values[i])
	}
	return m.e.Apply(&b)
}

func (m mantisKV) Get(k, buf []byte) ([]byte, error) {
	err := m.e.View(k, func(v []byte) error {
		buf = append(buf[:0], v...)
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return buf, ErrMissing
	}
	return buf, err
}

func (m mantisKV) Scan(start []byte, n int, fn func(k, v []byte)) (int, error) {
	it, err := m.e.NewIterator(storage.IterOptions{LowerBound: start})
	if err != nil {
		return 0, err
	}
	i := 0
	for ok := it.First(); ok && i < n; ok = it.Next() {
		fn(it.Key(), it.Value())
		i++
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return i, err
}

func (m mantisKV) Close() error { return m.e.Close() }
