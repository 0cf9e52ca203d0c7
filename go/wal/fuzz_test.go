package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// noSync is the real file system without its fsyncs: what a fuzz input's
// open writes need not reach the disk, and the fsyncs were most of each
// run's time (and the fuzzer's minimizing runs many).
type noSync struct{ vfs.FS }

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error { return nil }

func (n noSync) Create(name string) (vfs.File, error) { return noSyncWrap(n.FS.Create(name)) }
func (n noSync) OpenRW(name string) (vfs.File, error) { return noSyncWrap(n.FS.OpenRW(name)) }
func (noSync) SyncDir(string) error                   { return nil }

func noSyncWrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

// FuzzRecoverTail: the last segment of a log holding 20 acknowledged
// records, then arbitrary bytes (what a crash, a torn write over zeros or
// over a reused segment's old records, or a damaged disk may leave after
// them), its header flagged segRecycled when reused is set.  Open must
// not panic, must either open or refuse with ErrCorrupt, ErrUnsupported
// or ErrGap, and when it opens, the 20 records come back first, intact:
// the tail rules (isTorn, isTornOverwrite, recycledTail) only ever cut
// what follows them.
//
//	go test -run '^$' -fuzz FuzzRecoverTail -fuzztime 60s ./go/wal
func FuzzRecoverTail(f *testing.F) {
	src := f.TempDir()
	_, recs := genStream(5, 20)
	l, _ := openT(f, src, Config{Sync: SyncNone})
	for _, r := range recs {
		if err := l.AppendRecords(r); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	segs := segFiles(f, src)
	if len(segs) != 1 {
		f.Fatalf("%d segments", len(segs))
	}
	base, err := os.ReadFile(segs[0])
	if err != nil {
		f.Fatal(err)
	}
	next := encode(f, Record{Type: TypePut, Seq: 21, Key: []byte("k"), Value: bytes.Repeat([]byte{'v'}, 700)})
	reusedBase := append(segHeader(nil, 1, 1, segRecycled), base[segHeaderLen:]...)
	old := encode(f, Record{Type: TypePut, Seq: 3, Key: []byte("old"), Value: []byte("value")})
	for _, reused := range []bool{false, true} {
		f.Add(reused, make([]byte, 4096))
		f.Add(reused, next)
		f.Add(reused, append(next[:len(next)/2:len(next)/2], make([]byte, 1024)...))
		lost := append(make([]byte, 512-len(base)%512), next[512-len(base)%512:]...) // its first sector lost
		f.Add(reused, append(lost, make([]byte, 1024)...))
		f.Add(reused, []byte("\x01\x02\x03garbage"))
		f.Add(reused, append(bytes.Clone(old), next...))
	}
	f.Fuzz(func(t *testing.T, reused bool, tail []byte) {
		if len(tail) > 4<<20 {
			return
		}
		dir := t.TempDir()
		copyDir(t, src, dir)
		seg := filepath.Join(dir, walDirName, filepath.Base(segs[0]))
		b := base
		if reused {
			b = reusedBase
		}
		if err := os.WriteFile(seg, append(bytes.Clone(b), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		rc := &recovered{}
		l, err := Open(dir, Config{FS: noSync{vfs.OS}}, rc.handler())
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrGap) {
				t.Fatalf("Open: %v, want a CorruptError or a gap", err)
			}
			return
		}
		defer l.Close()
		if len(rc.applied) < len(recs) {
			t.Fatalf("%d records recovered, the %d acknowledged ones were cut", len(rc.applied), len(recs))
		}
		sameRecords(t, "acknowledged", rc.applied[:len(recs)], recs)
	})
}
