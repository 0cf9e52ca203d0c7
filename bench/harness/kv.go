// kv.go -- the one small interface every key-value subject is driven
// through, and the registry of subjects.  Each adapter calls its store's
// own public API the way that store's documentation tells a user to; the
// choices that matter for fairness (durability, batching) are spelled out
// in each adapter.
package harness

import (
	"errors"
	"sort"
)

// ErrMissing is returned by KV.Get for an absent key.
var ErrMissing = errors.New("harness: key not found")

// Durability is the write durability a row runs with.  Every subject in a
// row runs with the same one.
type Durability int

const (
	// NoSync: a write is handed to the OS (WAL/log/page write) but not
	// fsynced before it is acknowledged.
	NoSync Durability = iota
	// SyncOnCommit: a write is acknowledged only after fsync.
	SyncOnCommit
)

func (d Durability) String() string {
	if d == SyncOnCommit {
		return "sync-on-commit"
	}
	return "no-sync"
}

// KV is a store under test.  Implementations must be safe for concurrent
// use (every peer here is).
type KV interface {
	// Put writes one key as one transaction/commit of the store.
	Put(k, v []byte) error
	// PutConcurrent is Put in the sync-on-commit row with 40 writers:
	// stores with a dedicated API for amortising fsync over concurrent
	// writers (bbolt's DB.Batch) use it there.  Elsewhere Put is used: a
	// batched commit waits up to 10 ms for company, which no-sync writers
	// would only pay for.
	PutConcurrent(k, v []byte) error
	// Load writes many keys in the store's own batch API (bulk load).
	Load(keys, values [][]byte) error
	// Get copies the value of k into buf (growing it) and returns it, or
	// ErrMissing.
	Get(k, buf []byte) ([]byte, error)
	// Scan visits up to n entries from the first key >= start and returns
	// how many it visited; fn sees views valid only during the call.
	Scan(start []byte, n int, fn func(k, v []byte)) (int, error)
	// Close flushes and closes the store.
	Close() error
}

// KVSubject opens one kind of store.
type KVSubject struct {
	Name string
	// Open opens (or creates) a store in dir with durability d.
	Open func(dir string, d Durability) (KV, error)
	// Notes say how the store is configured, for the report.
	Notes string
}

var kvSubjects = map[string]KVSubject{}

func registerKV(s KVSubject) { kvSubjects[s.Name] = s }

// KVSubjects returns the registered key-value subjects, MantisDB first.
func KVSubjects() []KVSubject {
	out := make([]KVSubject, 0, len(kvSubjects))
	for _, s := range kvSubjects {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return subjectOrder(out[i].Name) < subjectOrder(out[j].Name) })
	return out
}

// LookupKV returns the subject called name.
func LookupKV(name string) (KVSubject, bool) {
	s, ok := kvSubjects[name]
	return s, ok
}

// BaselineKV is the subject every KV ratio is taken against.
const BaselineKV = "mantisdb-native"

var order = []string{
	"mantisdb-native", "mantisdb-pure",
	"bbolt", "pebble", "badger",
	"mantis-cache-native", "mantis-cache-pure", "ristretto", "otter", "exact-lru",
	"mantis-skiplist", "crossbeam-skiplist", "mutex-skiplist", "hash-ceiling",
	"mantisdb-server-http", RESPSubject, RESPMemorySubject, RedisSubject, RedisAOFSubject,
}

func subjectOrder(name string) int {
	for i, n := range order {
		if n == name {
			return i
		}
	}
	return len(order)
}
