// example_update_test.go -- the README's Update and AddInts examples,
// compiled and checked by `go test`.
package storage_test

import (
	"fmt"
	"log"
	"strconv"
	"sync"

	"github.com/mantisdb/mantisdb/go/storage"
)

func ExampleUpdate() {
	db, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	incr := func() error {
		return storage.Update(db, [][]byte{[]byte("hits")}, func(tx *storage.Txn) error {
			n := 0
			if e, err := tx.Get([]byte("hits")); err == nil {
				n, _ = strconv.Atoi(string(e.Value))
			}
			return tx.Put([]byte("hits"), []byte(strconv.Itoa(n+1)), 0) // 0: no expiry
		})
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := incr(); err != nil {
				log.Fatal(err)
			}
		}()
	}
	wg.Wait()
	v, _ := db.Get([]byte("hits"))
	fmt.Println(string(v))
	// Output: 10
}

func ExampleAdder() {
	db, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	_ = db.Put([]byte("name"), []byte("ada"))
	keys := [][]byte{[]byte("hits"), []byte("hits"), []byte("name")}
	out := make([]storage.AddResult, len(keys))
	if err := db.(storage.Adder).AddInts(keys, []int64{1, 41, 1}, out); err != nil {
		log.Fatal(err)
	}
	for _, r := range out {
		fmt.Println(r.Value, r.Err)
	}
	// Output:
	// 1 <nil>
	// 42 <nil>
	// 0 mantisdb: value is not an integer
}
