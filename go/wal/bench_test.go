package wal

import (
	"fmt"
	"iter"
	"os"
	"sync"
	"testing"
	"time"
)

// benchDir is on the same file system as the repository (not tmpfs), so
// fsync costs what it costs for a real data directory.
func benchDir(b *testing.B) string {
	d, err := os.MkdirTemp(".", "bench-*")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// BenchmarkAppend: durable appends/s with 1, 8 and 40 concurrent writers
// under each sync policy.  Under "always" the appends/fsync metric shows
// group commit: concurrent writers share one fsync; "always-appending"
// is "always" without the zeros written ahead (Config.Preallocate), so
// each fsync also writes the file's new size.
//
//	go test -run '^$' -bench Append -benchtime 2s -count 3 ./go/wal
func BenchmarkAppend(b *testing.B) {
	for _, pc := range []struct {
		name string
		cfg  Config
	}{
		{"always", Config{Sync: SyncAlways}},
		{"always-appending", Config{Sync: SyncAlways, Preallocate: -1}},
		{"interval", Config{Sync: SyncInterval}},
		{"none", Config{Sync: SyncNone}},
	} {
		for _, writers := range []int{1, 8, 40} {
			b.Run(fmt.Sprintf("%s/writers=%d", pc.name, writers), func(b *testing.B) {
				l, err := Open(benchDir(b), pc.cfg, Handler{})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				value := make([]byte, 100)
				var (
					mu  sync.Mutex
					seq uint64
					wg  sync.WaitGroup
					buf []byte
				)
				b.ResetTimer()
				start := time.Now()
				for w := 0; w < writers; w++ {
					n := b.N / writers
					if w < b.N%writers {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < n; i++ {
							mu.Lock()
							seq++
							buf, _ = appendRecord(buf[:0], Record{Type: TypePut, Seq: seq, Key: []byte(fmt.Sprintf("key%013d", seq)), Value: value})
							pos, err := l.Enqueue(buf, seq, seq)
							mu.Unlock()
							if err == nil {
								err = l.Wait(pos)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				st := l.Stats()
				b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
				if st.Syncs > 0 {
					b.ReportMetric(float64(st.Appends)/float64(st.Syncs), "appends/fsync")
				}
			})
		}
	}
}

const benchRecords = 1_000_000

var (
	recOnce sync.Once
	recDir  string
)

// recoveryDir writes 1M PUT records (16-byte keys, 100-byte values) once
// per process.
func recoveryDir(b *testing.B) string {
	recOnce.Do(func() {
		d, err := os.MkdirTemp(".", "bench-recovery-*")
		if err != nil {
			b.Fatal(err)
		}
		recDir = d
		l, err := Open(d, Config{Sync: SyncNone}, Handler{})
		if err != nil {
			b.Fatal(err)
		}
		value := make([]byte, 100)
		var buf []byte
		for i := 1; i <= benchRecords; i++ {
			buf, _ = appendRecord(buf, Record{Type: TypePut, Seq: uint64(i), Key: []byte(fmt.Sprintf("key%013d", i)), Value: value})
			if i%1000 == 0 {
				if err := l.Append(buf, uint64(i-999), uint64(i)); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
			}
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	})
	return recDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if recDir != "" {
		os.RemoveAll(recDir)
	}
	os.Exit(code)
}

// BenchmarkRecovery1M: Open of a directory holding 1M records, from the
// WAL alone and from a snapshot.  The handler copies each key and value, as
// an engine building its index must.
//
//	go test -run '^$' -bench Recovery -benchtime 3x -count 3 ./go/wal
func BenchmarkRecovery1M(b *testing.B) {
	src := recoveryDir(b)
	var sink int
	copyRec := func(r Record) { sink += len(append([]byte(nil), r.Key...)) + len(append([]byte(nil), r.Value...)) }
	h := Handler{
		Snapshot: func(_ SnapshotInfo, recs iter.Seq[Record]) error {
			for r := range recs {
				copyRec(r)
			}
			return nil
		},
		Apply: func(r Record) error { copyRec(r); return nil },
	}
	b.Run("wal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			l, err := Open(src, Config{}, h)
			if err != nil {
				b.Fatal(err)
			}
			if l.Recovery().Replayed != benchRecords {
				b.Fatalf("replayed %d", l.Recovery().Replayed)
			}
			l.Close()
		}
		b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("snapshot", func(b *testing.B) {
		d := benchDir(b)
		l, err := Open(d, Config{Sync: SyncNone}, Handler{})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.AppendRecords(Record{Type: TypePut, Seq: benchRecords, Key: []byte("k")}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.WriteSnapshot(benchRecords, benchSnapshotRecords(benchRecords)); err != nil {
			b.Fatal(err)
		}
		l.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			l, err := Open(d, Config{}, h)
			if err != nil {
				b.Fatal(err)
			}
			if l.Recovery().Snapshot.Count != benchRecords {
				b.Fatalf("snapshot count %d", l.Recovery().Snapshot.Count)
			}
			l.Close()
		}
		b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	_ = sink
}

func benchSnapshotRecords(n int) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		value := make([]byte, 100)
		key := make([]byte, 0, 16)
		for i := 1; i <= n; i++ {
			key = fmt.Appendf(key[:0], "key%013d", i)
			if !yield(Record{Type: TypePut, Seq: uint64(i), Key: key, Value: value}) {
				return
			}
		}
	}
}

// BenchmarkSnapshot1M: checkpoint time and size for 1M keys (16-byte keys,
// 100-byte values), including fsync, rename and directory fsync.
//
//	go test -run '^$' -bench Snapshot1M -benchtime 3x -count 3 ./go/wal
func BenchmarkSnapshot1M(b *testing.B) {
	d := benchDir(b)
	l, err := Open(d, Config{Sync: SyncNone}, Handler{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var size int64
	for i := 0; i < b.N; i++ {
		seq := uint64(benchRecords + i)
		if err := l.AppendRecords(Record{Type: TypePut, Seq: seq, Key: []byte("k")}); err != nil {
			b.Fatal(err)
		}
		info, err := l.WriteSnapshot(seq, benchSnapshotRecords(benchRecords))
		if err != nil {
			b.Fatal(err)
		}
		size = info.Bytes
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}
