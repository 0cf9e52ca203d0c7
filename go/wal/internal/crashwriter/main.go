// Command crashwriter is the victim of the crash-loop test (go/wal
// crash_test.go): it opens a data directory with sync=always, writes puts,
// deletes and batches from several goroutines, and checkpoints now and
// then, until it is killed with SIGKILL.  Before enqueueing an operation it
// appends "W <seq> <op> <key>" to the ops file, and once Append has
// acknowledged it, "A <seq> <op> <key>"; the test then checks the reopened
// directory against those lines.
package main

import (
	"flag"
	"fmt"
	"iter"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/mantisdb/mantisdb/go/internal/crashtest"
	"github.com/mantisdb/mantisdb/go/wal"
)

type writer struct {
	mu    sync.Mutex // orders seq assignment with Enqueue, and guards state
	log   *wal.Log
	seq   uint64
	state map[string]wal.Record // live keys
	keys  []string              // put keys, oldest first; deleted ones are skipped lazily
	ops   *os.File
	opsMu sync.Mutex // one note at a time
}

func (w *writer) note(line string) {
	// One write(2) per line on an O_APPEND file: lines never interleave,
	// and they survive SIGKILL (they are in the page cache).
	w.opsMu.Lock()
	defer w.opsMu.Unlock()
	if _, err := w.ops.WriteString(line); err != nil {
		fail(err)
	}
}

const liveKeys = 2000

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashwriter:", err)
	os.Exit(2)
}

func (w *writer) step(g int, i int) {
	w.mu.Lock()
	var recs []wal.Record
	var lines []string
	// Keep about liveKeys keys so checkpoints and recovery stay quick.
	for len(w.keys) > 0 && w.state[w.keys[0]].Key == nil {
		w.keys = w.keys[1:]
	}
	switch {
	case (i%7 == 3 || (i%2 == 1 && len(w.state) > liveKeys)) && len(w.keys) > 0:
		k := w.keys[0]
		w.keys = w.keys[1:]
		w.seq++
		recs = append(recs, wal.Record{Type: wal.TypeDelete, Seq: w.seq, Key: []byte(k)})
		lines = append(lines, fmt.Sprintf("%d D %s", w.seq, k))
		delete(w.state, k)
	default:
		n := 1
		if i%11 == 5 {
			n = 3 // a batch
		}
		for j := 0; j < n; j++ {
			w.seq++
			k := fmt.Sprintf("k%d-%d", w.seq, g)
			r := wal.Record{Type: wal.TypePut, Seq: w.seq, Key: []byte(k), Value: crashtest.Value(k)}
			recs = append(recs, r)
			lines = append(lines, fmt.Sprintf("%d P %s", w.seq, k))
			w.state[k] = r
			w.keys = append(w.keys, k)
		}
	}
	var enc []byte
	if len(recs) == 1 {
		enc = encode(nil, recs[0])
	} else {
		var payload []byte
		for _, r := range recs {
			payload = encode(payload, r)
		}
		enc = encode(nil, wal.Record{Type: wal.TypeBatch, Seq: recs[0].Seq, Value: payload})
	}
	for _, l := range lines {
		w.note("W " + l + "\n")
	}
	pos, err := w.log.Enqueue(enc)
	w.mu.Unlock()
	if err == nil {
		err = w.log.Wait(pos)
	}
	if err != nil {
		fail(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("A " + l + "\n")
	}
	w.note(b.String())
}

func (w *writer) checkpoint() {
	w.mu.Lock()
	seq := w.seq
	recs := make([]wal.Record, 0, len(w.state))
	for _, k := range slices.Sorted(maps.Keys(w.state)) {
		recs = append(recs, w.state[k])
	}
	w.mu.Unlock()
	if _, err := w.log.WriteSnapshot(seq, slices.Values(recs)); err != nil {
		fail(err)
	}
}

func main() {
	dir := flag.String("dir", "", "data directory")
	opsPath := flag.String("ops", "", "ops file (appended)")
	writers := flag.Int("writers", 8, "concurrent writers")
	every := flag.Int("checkpoint-every", 500, "operations per writer between checkpoints (writer 0 checkpoints)")
	segment := flag.Int64("segment-size", 64<<10, "WAL segment size")
	flag.Parse()

	w := &writer{state: map[string]wal.Record{}}
	l, err := wal.Open(*dir, wal.Config{Sync: wal.SyncAlways, SegmentSize: *segment}, wal.Handler{
		Snapshot: func(_ wal.SnapshotInfo, recs iter.Seq[wal.Record]) error {
			for r := range recs {
				w.put(r)
			}
			return nil
		},
		Apply: func(r wal.Record) error {
			if r.Type == wal.TypeBatch {
				for n := range wal.BatchRecords(r) {
					w.apply(n)
				}
				return nil
			}
			w.apply(r)
			return nil
		},
	})
	if err != nil {
		fail(err)
	}
	w.log, w.seq = l, l.LastSeq()
	if w.ops, err = os.OpenFile(*opsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		fail(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < *writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				w.step(g, i)
				if g == 0 && i%*every == *every-1 {
					w.checkpoint()
				}
			}
		}(g)
	}
	wg.Wait()
}

func (w *writer) put(r wal.Record) {
	r.Key, r.Value = slices.Clone(r.Key), slices.Clone(r.Value)
	w.state[string(r.Key)] = r
	w.keys = append(w.keys, string(r.Key))
}

func (w *writer) apply(r wal.Record) {
	if r.Type == wal.TypePut {
		w.put(r)
		return
	}
	delete(w.state, string(r.Key))
}

func encode(dst []byte, r wal.Record) []byte {
	b, err := wal.EncodeRecord(dst, r)
	if err != nil {
		fail(err)
	}
	return b
}
