// kv_bbolt.go -- bbolt (go.etcd.io/bbolt), the B+tree store etcd uses.
// One Put is one read-write transaction (DB.Update), as bbolt's README
// shows; the 40 sync-on-commit writers go through DB.Batch, bbolt's own
// coalescing of concurrent small transactions into one fsync, because that
// is what its docs tell a user with many durable writers to do.  NoSync=true is the no-sync row, the default
// (fdatasync per commit) the sync-on-commit row.
package harness

import (
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("bench")

type boltKV struct{ db *bolt.DB }

func init() {
	registerKV(KVSubject{
		Name: "bbolt",
		Open: func(dir string, d Durability) (KV, error) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bolt.Options{
				NoSync:       d == NoSync,
				FreelistType: bolt.FreelistMapType,
			})
			if err != nil {
				return nil, err
			}
			err = db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucketIfNotExists(boltBucket)
				return err
			})
			if err != nil {
				db.Close()
				return nil, err
			}
			return boltKV{db}, nil
		},
		Notes: "bolt.Options{NoSync: true | false, FreelistType: map}; one Update per Put, DB.Batch for the 40 durable writers",
	})
}

func (b boltKV) Put(k, v []byte) error {
	return b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(k, v) })
}

func (b boltKV) PutConcurrent(k, v []byte) error {
	return b.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(k, v) })
}

func (b boltKV) Load(keys, values [][]byte) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		for i := range keys {
			if err := bk.Put(keys[i], values[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b boltKV) Get(k, buf []byte) ([]byte, error) {
	found := false
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(boltBucket).Get(k); v != nil {
			buf = append(buf[:0], v...)
			found = true
		}
		return nil
	})
	if err == nil && !found {
		err = ErrMissing
	}
	return buf, err
}

func (b boltKV) Scan(start []byte, n int, fn func(k, v []byte)) (int, error) {
	i := 0
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.Seek(start); k != nil && i < n; k, v = c.Next() {
			fn(k, v)
			i++
		}
		return nil
	})
	return i, err
}

func (b boltKV) Close() error { return b.db.Close() }
