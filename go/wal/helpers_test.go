package wal

import (
	"bytes"
	"fmt"
	"io"
	"iter"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// model is the reference state a replay must rebuild: key -> last PUT.
type model map[string]Record

func cloneRec(r Record) Record {
	r.Key = bytes.Clone(r.Key)
	r.Value = bytes.Clone(r.Value)
	return r
}

func (m model) apply(r Record) {
	switch r.Type {
	case TypePut:
		m[string(r.Key)] = cloneRec(r)
	case TypeDelete:
		delete(m, string(r.Key))
	case TypeBatch:
		for n := range BatchRecords(r) {
			m.apply(n)
		}
	}
}

// sorted yields the model's records in key order, as a snapshot needs.
func (m model) sorted() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(m[k]) {
				return
			}
		}
	}
}

// recovered is what a Handler saw.
type recovered struct {
	state    model
	snapInfo SnapshotInfo
	snapRecs []Record
	applied  []Record
}

func (rc *recovered) handler() Handler {
	rc.state = model{}
	return Handler{
		Snapshot: func(info SnapshotInfo, recs iter.Seq[Record]) error {
			rc.snapInfo = info
			for r := range recs {
				rc.snapRecs = append(rc.snapRecs, cloneRec(r))
				rc.state.apply(r)
			}
			return nil
		},
		Apply: func(r Record) error {
			rc.applied = append(rc.applied, cloneRec(r))
			rc.state.apply(r)
			return nil
		},
	}
}

func openT(t testing.TB, dir string, cfg Config) (*Log, *recovered) {
	t.Helper()
	rc := &recovered{}
	l, err := Open(dir, cfg, rc.handler())
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l, rc
}

// gen produces a seeded stream of PUT, TTL PUT, DELETE and BATCH records
// with consecutive sequence numbers.
type gen struct {
	rng *rand.Rand
	seq uint64
}

func newGen(seed int64) *gen { return &gen{rng: rand.New(rand.NewSource(seed))} }

func (g *gen) key() []byte { return []byte(fmt.Sprintf("key-%04d", g.rng.Intn(300))) }

func (g *gen) op() Record {
	g.seq++
	switch k := g.rng.Intn(10); {
	case k < 5:
		v := make([]byte, g.rng.Intn(40))
		g.rng.Read(v)
		return Record{Type: TypePut, Seq: g.seq, Key: g.key(), Value: v}
	case k < 6:
		return Record{Type: TypePut, Seq: g.seq, Key: g.key(), Value: []byte("ttl"), ExpiresAt: 1_900_000_000_000_000_000 + int64(g.seq)}
	case k < 8:
		return Record{Type: TypeDelete, Seq: g.seq, Key: g.key()}
	default:
		first := g.seq
		var payload []byte
		n := 1 + g.rng.Intn(4)
		for i := 0; i < n; i++ {
			if i > 0 {
				g.seq++
			}
			typ := uint8(TypePut)
			var v []byte
			if g.rng.Intn(3) == 0 {
				typ = TypeDelete
			} else {
				v = []byte(fmt.Sprintf("batch-%d", g.seq))
			}
			payload, _ = appendRecord(payload, Record{Type: typ, Seq: g.seq, Key: g.key(), Value: v})
		}
		return Record{Type: TypeBatch, Seq: first, Value: payload}
	}
}

// genStream returns the generator and its first n records.
func genStream(seed int64, n int) (*gen, []Record) {
	g := newGen(seed)
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = g.op()
	}
	return g, recs
}

func encode(t testing.TB, recs ...Record) []byte {
	t.Helper()
	var b []byte
	for _, r := range recs {
		var err error
		if b, err = appendRecord(b, r); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func sameRecords(t *testing.T, what string, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Seq != w.Seq || g.ExpiresAt != w.ExpiresAt || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("%s: record %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func sameState(t *testing.T, got, want model) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("state has %d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.Seq != w.Seq || g.ExpiresAt != w.ExpiresAt || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("key %q = %+v (present %v), want %+v", k, g, ok, w)
		}
	}
}

// copyDir copies a data directory (files one level deep in wal/ and snap/).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func segFiles(t testing.TB, dir string) []string { return walFiles(t, dir, walExt) }

// walFiles lists the files of dir's wal directory whose names end in ext.
func walFiles(t testing.TB, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, walDirName, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
