package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// FuzzDecodeEntry: a Raft entry's bytes come from the log or a peer;
// decodeEntry must refuse damage with ErrBadEntry and never panic, and
// what it accepts is decided by the bytes and the entry's term alone: a
// second decode gives the same writes and the same skipped requests,
// which are ascending.  Seeds are the three entry kinds (entry.go).
func FuzzDecodeEntry(f *testing.F) {
	put := func(k, v string) storage.Op { return storage.Op{Kind: storage.OpPut, Key: []byte(k), Value: []byte(v)} }
	batch, err := encodeEntry(nil, []storage.Op{put("a", "1"), {Kind: storage.OpDelete, Key: []byte("b")}})
	if err != nil {
		f.Fatal(err)
	}
	reqs, err := encodeRequestsEntry(nil, []entryReq{
		{readTerm: 0, ops: []storage.Op{put("a", "1")}},
		{readTerm: 5, ops: []storage.Op{put("b", "2"), {Kind: storage.OpDelete, Key: []byte("c")}}},
		{readTerm: 4, ops: []storage.Op{put("d", "3")}},
	})
	if err != nil {
		f.Fatal(err)
	}
	flush, err := encodeFlushEntry(nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{batch, reqs, flush, nil, {0}} {
		for _, term := range []uint64{0, 4, 5} {
			f.Add(seed, term)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, term uint64) {
		decode := func() (string, []int, bool, error) {
			var b storage.Batch
			fl, stale, err := decodeEntry(data, term, &b)
			return fmt.Sprint(b.Ops), stale, fl, err
		}
		ops, stale, fl, err := decode()
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error not ErrBadEntry: %v", err)
			}
			return
		}
		if !slices.IsSorted(stale) || len(slices.Compact(slices.Clone(stale))) != len(stale) {
			t.Fatalf("skipped requests not strictly ascending: %v", stale)
		}
		ops2, stale2, fl2, err2 := decode()
		if err2 != nil || ops2 != ops || !slices.Equal(stale, stale2) || fl2 != fl {
			t.Fatalf("a second decode differs: %v %v %v %v", ops2, stale2, fl2, err2)
		}
	})
}
