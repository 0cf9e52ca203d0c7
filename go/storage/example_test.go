// example_test.go -- the embedding example the README shows, compiled and
// checked by `go test` so the README cannot drift from the API.
package storage_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func Example() {
	dir, err := os.MkdirTemp("", "mantisdb-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Native engine in `-tags native` builds, pure Go otherwise; both read
	// and write the same files.  Zero Options fields take their defaults.
	db, err := storage.NewDefaultStorageEngine(storage.Options{Dir: dir, Sync: storage.SyncAlways})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.Put([]byte("user:1"), []byte("ada")); err != nil {
		log.Fatal(err)
	}
	if err := db.PutWithTTL([]byte("session:9"), []byte("tok"), time.Hour); err != nil {
		log.Fatal(err)
	}
	var b storage.Batch // applied all-or-nothing
	b.Put([]byte("user:2"), []byte("grace"))
	b.Delete([]byte("session:9"))
	if err := db.Apply(&b); err != nil {
		log.Fatal(err)
	}

	v, err := db.Get([]byte("user:1")) // a copy; View gives a zero-copy callback
	fmt.Println(string(v), err)
	_, err = db.Get([]byte("session:9"))
	fmt.Println(errors.Is(err, storage.ErrNotFound))

	it, err := db.NewIterator(storage.IterOptions{Prefix: []byte("user:")})
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	// Output:
	// ada <nil>
	// true
	// user:1=ada
	// user:2=grace
}
