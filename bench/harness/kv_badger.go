// kv_badger.go -- Badger v4 (github.com/dgraph-io/badger/v4), the LSM with
// a value log.  Default options with logging off; SyncWrites false (no-sync
// row) or true (sync-on-commit row).  A Put is one DB.Update transaction;
// the bulk load uses Badger's WriteBatch.
package harness

import (
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

type badgerKV struct{ db *badger.DB }

func init() {
	registerKV(KVSubject{
		Name: "badger",
		Open: func(dir string, d Durability) (KV, error) {
			opts := badger.DefaultOptions(dir).WithSyncWrites(d == SyncOnCommit).WithLogger(nil)
			db, err := badger.Open(opts)
			if err != nil {
				return nil, err
			}
			return badgerKV{db}, nil
		},
		Notes: "badger.DefaultOptions(dir).WithSyncWrites(false | true); one Update txn per Put, WriteBatch for the bulk load",
	})
}

func (b badgerKV) Put(k, v []byte) error {
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}

func (b badgerKV) PutConcurrent(k, v []byte) error { return b.Put(k, v) }

func (b badgerKV) Load(keys, values [][]byte) error {
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range keys {
		if err := wb.Set(keys[i], values[i]); err != nil {
			return err
		}
	}
	return wb.Flush()
}

func (b badgerKV) Get(k, buf []byte) ([]byte, error) {
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		buf, err = item.ValueCopy(buf[:0])
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return buf, ErrMissing
	}
	return buf, err
}

func (b badgerKV) Scan(start []byte, n int, fn func(k, v []byte)) (int, error) {
	i := 0
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchSize = n
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(start); it.Valid() && i < n; it.Next() {
			item := it.Item()
			err := item.Value(func(v []byte) error {
				fn(item.Key(), v)
				return nil
			})
			if err != nil {
				return err
			}
			i++
		}
		return nil
	})
	return i, err
}

func (b badgerKV) Close() error { return b.db.Close() }
