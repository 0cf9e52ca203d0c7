// Command crashwriter is the victim of the storage crash loop
// (go/storage/crash_test.go): it opens a data directory through the
// storage engine with sync=always, writes puts, deletes and batches from
// several goroutines and checkpoints now and then, until it is killed with
// SIGKILL.  Before each operation it appends "W <id> <op> <key>" lines to
// the ops file (one per key; op P or D), and once the engine has
// acknowledged it, the same lines with "A".  The test then checks the
// reopened directory against those lines.
//
// Keys are unique per put ("<cycle>.<writer>.<n>"), so each key is put
// once and maybe deleted once: the checker needs no ordering between
// writers.  Values are a function of the key (Value), so a half-written or
// misplaced value is visible.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/mantisdb/mantisdb/go/internal/crashtest"
	"github.com/mantisdb/mantisdb/go/storage"
)

const liveKeys = 2000

type writer struct {
	e     storage.Engine
	cycle string

	mu   sync.Mutex // guards live
	live []string   // keys put (oldest first) that are candidates for deletion

	ops   *os.File
	opsMu sync.Mutex
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashwriter:", err)
	os.Exit(2)
}

// note appends lines with one write(2) on an O_APPEND file: lines never
// interleave, and they survive SIGKILL (they are in the page cache),
// except that the kill can cut the last one where it crosses a page (the
// kernel stops a write between pages when a fatal signal is pending); the
// checker drops a cut last line.
func (w *writer) note(s string) {
	w.opsMu.Lock()
	defer w.opsMu.Unlock()
	if _, err := w.ops.WriteString(s); err != nil {
		fail(err)
	}
}

func (w *writer) takeOldest() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.live) == 0 {
		return "", false
	}
	k := w.live[0]
	w.live = w.live[1:]
	return k, true
}

func (w *writer) step(g, i int) {
	id := fmt.Sprintf("%s.%d.%d", w.cycle, g, i)
	w.mu.Lock()
	crowded := len(w.live) > liveKeys
	w.mu.Unlock()
	var lines []string
	var err error
	if k, ok := "", false; i%7 == 3 || (i%2 == 1 && crowded) {
		if k, ok = w.takeOldest(); ok {
			lines = []string{fmt.Sprintf("%s D %s\n", id, k)}
			w.note("W " + lines[0])
			err = w.e.Delete([]byte(k))
		}
	}
	if lines == nil {
		n := 1
		if i%11 == 5 {
			n = 2 + i%3 // a batch
		}
		var b storage.Batch
		var keys []string
		for j := 0; j < n; j++ {
			k := fmt.Sprintf("%s.%d", id, j)
			keys = append(keys, k)
			lines = append(lines, fmt.Sprintf("%s P %s\n", id, k))
			b.Put([]byte(k), crashtest.Value(k))
		}
		w.note("W " + strings.Join(lines, "W "))
		if n == 1 {
			err = w.e.Put(b.Ops[0].Key, b.Ops[0].Value)
		} else {
			err = w.e.Apply(&b)
		}
		if err == nil {
			w.mu.Lock()
			w.live = append(w.live, keys...)
			w.mu.Unlock()
		}
	}
	if err != nil {
		fail(err)
	}
	w.note("A " + strings.Join(lines, "A "))
}

func main() {
	dir := flag.String("dir", "", "data directory")
	opsPath := flag.String("ops", "", "ops file (appended)")
	cycle := flag.String("cycle", "0", "cycle id, unique per run (prefixes every key)")
	engine := flag.String("engine", "default", "default or pure")
	writers := flag.Int("writers", 8, "concurrent writers")
	every := flag.Int("checkpoint-every", 500, "operations of writer 0 between checkpoints")
	flag.Parse()

	open := storage.NewDefaultStorageEngine
	if *engine == "pure" {
		open = storage.NewPureGoStorageEngine
	}
	e, err := open(storage.Options{Dir: *dir, Sync: storage.SyncAlways})
	if err != nil {
		fail(err)
	}
	w := &writer{e: e, cycle: *cycle}
	// Keys of earlier runs are candidates for deletion too.
	it, err := e.NewIterator(storage.IterOptions{})
	if err != nil {
		fail(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		w.live = append(w.live, string(bytes.Clone(it.Key())))
	}
	if err := it.Error(); err != nil {
		fail(err)
	}
	it.Close()
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
					if err := e.Checkpoint(); err != nil {
						fail(err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
}
