//go:build cgo && native

// native_random_test.go -- RandomKey's fast path on the native engine
// (native_random.go): it answers without the reservoir pass on a dense
// keyspace, uniformly, copies keys longer than its first buffer whole, and
// refuses after Close.
package storage_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestNativeRandomKeyFastPath(t *testing.T) {
	e, err := storage.NewNativeStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const keys, picks = 20000, 20000
	for i := range keys {
		check(t, e.Put([]byte(fmt.Sprintf("k%05d", i)), []byte("v")), "put")
	}
	r := rand.New(rand.NewPCG(3, 4))
	var count [10]int
	for range picks {
		key, done, ok, err := storage.SampleForTest(e, r)
		if !ok {
			t.Fatal("the native engine has no sampler: RandomKey would scan every key")
		}
		check(t, err, "sample")
		// Index tables stay over 1/4 full here, so 64 draws all miss
		// with probability below 1e-8: a miss means the sampler is broken.
		if !done {
			t.Fatal("the sampler gave up on a dense keyspace")
		}
		var i int
		if _, err := fmt.Sscanf(string(key), "k%05d", &i); err != nil || i >= keys {
			t.Fatalf("sampled %q: not a key of the engine", key)
		}
		count[i/(keys/len(count))]++
	}
	storagetest.CheckUniform(t, count)
}

// TestNativeRandomKeyLongKeys: keys past the first buffer (and one of the
// maximum size) come back whole, and every key is reached.
func TestNativeRandomKeyLongKeys(t *testing.T) {
	e, err := storage.NewNativeStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 511, 512, 513, 4000, storage.DefaultMaxKeySize}
	want := map[string]bool{}
	for i, n := range sizes {
		key := bytes.Repeat([]byte{byte('a' + i)}, n)
		check(t, e.Put(key, []byte("v")), "put")
		want[string(key)] = true
	}
	r := rand.New(rand.NewPCG(5, 6))
	seen := map[string]bool{}
	for range 600 {
		key, done, _, err := storage.SampleForTest(e, r)
		check(t, err, "sample")
		if !done {
			continue // six keys in 16-slot tables: a call may miss them all
		}
		if !want[string(key)] {
			t.Fatalf("sampled a %d-byte key that was never written", len(key))
		}
		seen[string(key)] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("600 samples reached %d of %d keys", len(seen), len(want))
	}
	check(t, e.Close(), "close")
	if _, _, _, err := storage.SampleForTest(e, r); err != storage.ErrClosed {
		t.Fatalf("sample after Close: %v, want ErrClosed", err)
	}
}
