package storage_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

type scanned struct {
	key, value string
	exp        int64
}

// TestScanRecordsAndExpiresAt: a batch with absolute expiries stores them
// exactly, ScanRecords reports them in key order, leaves expired entries
// out, and survives a reopen; bad expiries are refused.
func TestScanRecordsAndExpiresAt(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	future := now.Add(time.Hour).UnixNano()
	past := now.Add(-time.Second).UnixNano()
	for _, mem := range []bool{true, false} {
		t.Run(fmt.Sprintf("memory=%v", mem), func(t *testing.T) {
			opts := storage.Options{Clock: clock}
			if !mem {
				opts.Dir = t.TempDir()
			}
			e, err := storage.NewDefaultStorageEngine(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = e.Close() }()
			b := &storage.Batch{Ops: []storage.Op{
				{Kind: storage.OpPut, Key: []byte("c"), Value: []byte("3"), ExpiresAt: future},
				{Kind: storage.OpPut, Key: []byte("a"), Value: []byte("1")},
				{Kind: storage.OpPut, Key: []byte("gone"), Value: []byte("x"), ExpiresAt: past},
				{Kind: storage.OpPut, Key: []byte("b"), Value: []byte("2"), TTL: time.Minute},
			}}
			if err := e.Apply(b); err != nil {
				t.Fatal(err)
			}
			want := []scanned{{"a", "1", 0}, {"b", "2", now.Add(time.Minute).UnixNano()}, {"c", "3", future}}
			check := func(e storage.Engine) {
				t.Helper()
				var got []scanned
				if err := storage.ScanRecords(e, func(k, v []byte, exp int64) error {
					got = append(got, scanned{string(k), string(v), exp})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("scan = %v, want %v", got, want)
				}
			}
			check(e)
			if _, err := e.Get([]byte("gone")); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("get of an entry stored expired: %v", err)
			}
			for _, op := range []storage.Op{
				{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("v"), ExpiresAt: -1},
				{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("v"), ExpiresAt: future, TTL: time.Second},
			} {
				if err := e.Apply(&storage.Batch{Ops: []storage.Op{op}}); !errors.Is(err, storage.ErrInvalidTTL) {
					t.Fatalf("apply %+v: %v, want ErrInvalidTTL", op, err)
				}
			}
			stop := errors.New("stop")
			n := 0
			if err := storage.ScanRecords(e, func(k, v []byte, exp int64) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
				t.Fatalf("callback error: %v after %d calls", err, n)
			}
			if !mem {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				if e, err = storage.NewDefaultStorageEngine(opts); err != nil {
					t.Fatal(err)
				}
				check(e)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := storage.ScanRecords(e, func(k, v []byte, exp int64) error { return nil }); !errors.Is(err, storage.ErrClosed) {
				t.Fatalf("scan after close: %v", err)
			}
		})
	}
}

type foreignEngine struct{ inner storage.Engine }

func (f foreignEngine) Get(k []byte) ([]byte, error)                              { return nil, nil }
func (f foreignEngine) View(k []byte, fn func([]byte) error) error                { return nil }
func (f foreignEngine) Put(k, v []byte) error                                     { return nil }
func (f foreignEngine) PutWithTTL(k, v []byte, ttl time.Duration) error           { return nil }
func (f foreignEngine) Delete(k []byte) error                                     { return nil }
func (f foreignEngine) Apply(b *storage.Batch) error                              { return nil }
func (f foreignEngine) NewIterator(storage.IterOptions) (storage.Iterator, error) { return nil, nil }
func (f foreignEngine) Stats() storage.Stats                                      { return storage.Stats{} }
func (f foreignEngine) Sync() error                                               { return nil }
func (f foreignEngine) Checkpoint() error                                         { return nil }
func (f foreignEngine) Close() error                                              { return nil }
func (f foreignEngine) Engine() string                                            { return "foreign" }

func TestScanRecordsForeignEngine(t *testing.T) {
	err := storage.ScanRecords(foreignEngine{}, func(k, v []byte, exp int64) error { return nil })
	if !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}
