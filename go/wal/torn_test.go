package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"sync"
	"testing"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// durFS records, per file, its content as of its last Sync and, at each
// Write, the durable content at that moment: what a power cut during the
// write's fsync can leave of each sector.
type durFS struct {
	vfs.FS
	mu          sync.Mutex
	durable     map[string][]byte
	beforeWrite map[string][]byte
}

type durFile struct {
	vfs.File
	fs   *durFS
	name string
}

func (d *durFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &durFile{File: f, fs: d, name: name}, nil
}
func (d *durFS) Create(name string) (vfs.File, error) {
	f, err := d.FS.Create(name)
	d.mu.Lock()
	d.durable[name] = nil
	d.mu.Unlock()
	return d.wrap(name, f, err)
}
func (d *durFS) OpenRW(name string) (vfs.File, error) {
	f, err := d.FS.OpenRW(name)
	return d.wrap(name, f, err)
}
func (f *durFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	b, err := os.ReadFile(f.name)
	if err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.durable[f.name] = b
	f.fs.mu.Unlock()
	return nil
}
func (f *durFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	f.fs.beforeWrite[f.name] = bytes.Clone(f.fs.durable[f.name])
	f.fs.mu.Unlock()
	return f.File.Write(b)
}

// TestBitRotNearEndIsCorrupt: an acknowledged record in the last MiB of
// the last segment, damaged by the disk (one bit, in its key), whose value
// holds a sector's worth of zeros, followed by more acknowledged records,
// in a log closed cleanly under each policy: ErrCorrupt, not a torn write
// (its segment does not end in zeros written ahead; where the last value
// ends in zeros, they follow a record that decodes whole).
func TestBitRotNearEndIsCorrupt(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		for _, tc := range []struct {
			shape    string
			zeroTail bool
		}{
			{"zero page in value", false},
			{"value ends in a zero uint64 at a sector start", false},
			{"zero page in value, last value ends in zeros", true},
		} {
			shape, zeroTail := tc.shape, tc.zeroTail
			t.Run(fmt.Sprintf("%s/%s", pol, shape), func(t *testing.T) {
				dir := t.TempDir()
				l, _ := openT(t, dir, Config{Sync: pol})
				seq := uint64(0)
				put := func(v []byte) {
					seq++
					if err := l.AppendRecords(Record{Type: TypePut, Seq: seq, Key: fmt.Appendf(nil, "k%06d", seq), Value: v}); err != nil {
						t.Fatal(err)
					}
				}
				for range 5 {
					put([]byte("hello"))
				}
				at := l.curSize
				var v []byte
				switch shape {
				case "zero page in value", "zero page in value, last value ends in zeros":
					v = append(bytes.Repeat([]byte{'x'}, 10), make([]byte, 1100)...)
					v = append(v, 'y')
				default:
					// record = 32 + 7 (key) + len(v), padded to 8: choose
					// len(v) so that the last 8 bytes (a little-endian 0)
					// begin exactly at a 512-byte boundary.
					n := 8
					for (at+32+7+int64(n)-8)%512 != 0 || (32+7+n)%8 != 0 {
						n++
					}
					v = append(bytes.Repeat([]byte{'x'}, n-8), make([]byte, 8)...)
				}
				put(v)
				for range 200 {
					put([]byte("later, acknowledged"))
				}
				if zeroTail {
					// A last value ending in zeros: the segment ends
					// in zeros after a clean close too.
					put(append([]byte("blob"), make([]byte, 600)...))
				}
				path := l.segPath(l.segs[len(l.segs)-1].num)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b[at+33] ^= 0x10 // one bit of the damaged record's key
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				openRefused(t, dir, Config{Sync: pol}, seq, ErrCorrupt)
			})
		}
	}
}

// TestRandomTornOverwrite: a power-cut model finer than vfs.Crash's: the
// last group (written, not yet fsynced) lands sector by sector, each
// 512-byte sector of the overwritten range independently old or new, and
// the file's size is either the old or the new one (an extension commits
// after its data, as in ext4 data=ordered).  Every acknowledged record
// comes back, and Open never refuses.
func TestRandomTornOverwrite(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 150; iter++ {
		dir := t.TempDir()
		pre := []int64{4 << 10, 64 << 10, 1 << 20}[iter%3]
		dfs := &durFS{FS: vfs.OS, durable: map[string][]byte{}, beforeWrite: map[string][]byte{}}
		l, _ := openT(t, dir, Config{FS: dfs, Sync: SyncAlways, Preallocate: pre, SegmentSize: 8 << 20})
		g := newGen(int64(iter))
		var acked []Record
		nAcked := 1 + rng.Intn(300)
		for range nAcked {
			r := g.op()
			if rng.Intn(20) == 0 { // some values with zero runs
				r = Record{Type: TypePut, Seq: r.Seq, Key: []byte("z"), Value: make([]byte, rng.Intn(3000))}
			}
			acked = append(acked, r)
			if _, err := l.EnqueueRecords(r); err != nil {
				t.Fatal(err)
			}
			if rng.Intn(30) == 0 { // a few groups, each fsynced (acknowledged)
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		path := l.segPath(l.segs[len(l.segs)-1].num)
		// The group at issue: several records, one write.
		n := 1 + rng.Intn(40)
		for range n {
			r := g.op()
			if rng.Intn(5) == 0 {
				r = Record{Type: TypePut, Seq: r.Seq, Key: []byte("z"), Value: make([]byte, rng.Intn(3000))}
			}
			if _, err := l.EnqueueRecords(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		old := dfs.beforeWrite[path] // durable when the group was written
		nw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil { // trims; we overwrite the file anyway
			t.Fatal(err)
		}
		size := len(nw)
		if len(old) != len(nw) && rng.Intn(2) == 0 {
			size = len(old)
		}
		out := make([]byte, size)
		for s := 0; s < size; s += sectorSize {
			e := min(size, s+sectorSize)
			if rng.Intn(3) == 0 && s < len(old) {
				// lost: old content (zeros past old EOF read as zeros/hole)
				copy(out[s:e], old[s:min(e, len(old))])
			} else {
				copy(out[s:e], nw[s:e])
			}
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		rc := &recovered{}
		l2, err := Open(dir, Config{Sync: SyncAlways}, rc.handler())
		if err != nil {
			t.Fatalf("iter %d (prealloc %d, %d acked, group of %d): Open after a torn overwrite: %v", iter, pre, len(acked), n, err)
		}
		if len(rc.applied) < len(acked) {
			t.Fatalf("iter %d: %d records, want at least the %d acknowledged", iter, len(rc.applied), len(acked))
		}
		sameRecords(t, "acknowledged", rc.applied[:len(acked)], acked)
		l2.Close()
	}
}

// TestUnsupportedNotTorn: a record of a type this build does not know
// (written by a newer build: a downgrade), intact, whose value holds a
// sector of zeros, is never cut as a torn tail: Open reports
// ErrUnsupported, whether acknowledged records follow it in a segment a
// crash left with its zeros ahead, or it is the last record of a segment
// closed cleanly.
func TestUnsupportedNotTorn(t *testing.T) {
	for _, last := range []bool{false, true} {
		t.Run(fmt.Sprintf("last=%v", last), func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openT(t, dir, Config{Sync: SyncAlways})
			seq := uint64(0)
			put := func() {
				seq++
				if err := l.AppendRecords(Record{Type: TypePut, Seq: seq, Key: fmt.Appendf(nil, "k%06d", seq), Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
			for range 5 {
				put()
			}
			seq++
			b := encode(t, Record{Type: TypePut, Seq: seq, Key: []byte("new-type"), Value: make([]byte, 1200)})
			b[4] = 9 // a record type from a newer build
			c := crc32.MakeTable(crc32.Castagnoli)
			binary.LittleEndian.PutUint16(b[6:], 0)
			binary.LittleEndian.PutUint16(b[6:], uint16(crc32.Checksum(b[4:32], c)))
			binary.LittleEndian.PutUint32(b[0:], crc32.Checksum(b[4:], c))
			if _, _, err := decodeRecord(b); !errors.Is(err, errUnsupported) {
				t.Fatalf("crafted record: %v, want unsupported", err)
			}
			pos, err := l.Enqueue(b, seq, seq)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Wait(pos); err != nil {
				t.Fatal(err)
			}
			path := l.segPath(l.segs[len(l.segs)-1].num)
			var crashed []byte
			if !last {
				for range 100 {
					put()
				}
				// A crash: the segment keeps the zeros written ahead.
				if crashed, err = os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if crashed != nil {
				if err := os.WriteFile(path, crashed, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			openRefused(t, dir, Config{}, seq, ErrUnsupported)
		})
	}
}

// openRefused opens dir, whose log holds records 1..seq, and fails the
// test unless the open is refused with want.
func openRefused(t *testing.T, dir string, cfg Config, seq uint64, want error) {
	t.Helper()
	rc := &recovered{}
	l, err := Open(dir, cfg, rc.handler())
	if err == nil {
		reps := l.Recovery().Repairs
		l.Close()
		t.Fatalf("Open succeeded with %d of %d records, repairs %+v; want %v", len(rc.applied), seq, reps, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open: %v, want %v", err, want)
	}
}
