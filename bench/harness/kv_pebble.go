// kv_pebble.go -- Pebble (github.com/cockroachdb/pebble/v2), CockroachDB's
// LSM.  Default options except the block cache, which gets MantisDB's
// default read-cache budget (64 MiB) instead of Pebble's 8 MiB so that
// neither side reads with less memory than the other; a Put is DB.Set with
// pebble.NoSync (no-sync row) or pebble.Sync (sync-on-commit row); Pebble's
// commit pipeline groups concurrent syncs like MantisDB's group commit.
package harness

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

type pebbleKV struct {
	db *pebble.DB
	wo *pebble.WriteOptions
}

func init() {
	registerKV(KVSubject{
		Name: "pebble",
		Open: func(dir string, d Durability) (KV, error) {
			cache := pebble.NewCache(64 << 20)
			defer cache.Unref() // the DB holds its own reference
			db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, Cache: cache})
			if err != nil {
				return nil, err
			}
			wo := pebble.NoSync
			if d == SyncOnCommit {
				wo = pebble.Sync
			}
			return pebbleKV{db, wo}, nil
		},
		Notes: "pebble.Options{Cache: 64 MiB} otherwise defaults; DB.Set with pebble.NoSync | pebble.Sync; Get copies then closes",
	})
}

// quietLogger keeps Pebble's informational lines out of the report.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(errors.New("pebble fatal: " + format))
}

func (p pebbleKV) Put(k, v []byte) error           { return p.db.Set(k, v, p.wo) }
func (p pebbleKV) PutConcurrent(k, v []byte) error { return p.db.Set(k, v, p.wo) }

func (p pebbleKV) Load(keys, values [][]byte) error {
	b := p.db.NewBatch()
	for i := range keys {
		if err := b.Set(keys[i], values[i], nil); err != nil {
			b.Close()
			return err
		}
	}
	return b.Commit(p.wo)
}

func (p pebbleKV) Get(k, buf []byte) ([]byte, error) {
	v, closer, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return buf, ErrMissing
	}
	if err != nil {
		return buf, err
	}
	buf = append(buf[:0], v...)
	return buf, closer.Close()
}

func (p pebbleKV) Scan(start []byte, n int, fn func(k, v []byte)) (int, error) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: start})
	if err != nil {
		return 0, err
	}
	i := 0
	for ok := it.First(); ok && i < n; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return i, err
		}
		fn(it.Key(), v)
		i++
	}
	return i, it.Close()
}

func (p pebbleKV) Close() error { return p.db.Close() }
