package resp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestPipelinedUpdateCounts: a burst served as one grouped Update
// (runUpdates) counts each command once under its own name, its
// failures as failed calls, and leaves the client's last command as the
// burst's last; a second burst on the same connection reuses the run's
// pooled scratch without carrying anything over.
func TestPipelinedUpdateCounts(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	r := ts.raw(t)
	batches := ts.eng.Stats().Batches
	bursts := []struct {
		send  string
		wants []string
	}{
		{"INCR n\r\nINCR n\r\nAPPEND t x\r\nINCR t\r\nINCR n\r\nAPPEND t y\r\n",
			[]string{":1", ":2", ":1", "-ERR value is not an integer or out of range", ":3", ":2"}},
		{"DECR m\r\nINCRBY n 10\r\nAPPEND u z\r\n",
			[]string{":-1", ":13", ":1"}},
	}
	for _, b := range bursts {
		io.WriteString(r, b.send)
		for _, want := range b.wants {
			if got := r.line(t); got != want {
				t.Fatalf("burst %q: got %q, want %q", b.send, got, want)
			}
		}
	}
	// Grouped: one logged batch per burst (a burst split across reads
	// makes two); served one by one, the eight writing commands would
	// each log their own.
	if n := ts.eng.Stats().Batches - batches; n > 4 {
		t.Errorf("the bursts logged %d batches: not grouped", n)
	}
	mon := ts.client(t, 2, "")
	info := mon.Info(ctx, "commandstats").Val()
	_, calls := infoCounts(t, info)
	for name, want := range map[string]uint64{"incr": 4, "append": 3, "decr": 1, "incrby": 1} {
		if calls[name] != want {
			t.Errorf("cmdstat_%s calls = %d, want %d (all: %v)", name, calls[name], want, calls)
		}
	}
	for name, failed := range map[string]int{"incr": 1, "append": 0, "decr": 0, "incrby": 0} {
		line := ""
		for _, l := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(l, "cmdstat_"+name+":") {
				line = l
			}
		}
		if !strings.HasSuffix(line, fmt.Sprintf(",failed_calls=%d", failed)) {
			t.Errorf("cmdstat_%s: %q, want failed_calls=%d", name, line, failed)
		}
	}
	list := mon.ClientList(ctx).Val()
	if !strings.Contains(list, " cmd=append ") {
		t.Errorf("CLIENT LIST: no connection whose last command is append:\n%s", list)
	}
	for k, want := range map[string]string{"n": "13", "t": "xy", "m": "-1", "u": "z"} {
		if got := mon.Get(ctx, k).Val(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestMGETOneKeyIsAnArray: MGET of one key answers an array of one, alone
// or in a run of reads (a GET of one key answers a bulk string).
func TestMGETOneKeyIsAnArray(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	r := ts.raw(t)
	send(t, r, "SET a x")
	if got := r.line(t); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	for _, burst := range []string{"MGET a", "MGET nokey", "GET a\r\nMGET a"} {
		send(t, r, burst)
		want := map[string][]string{
			"MGET a":          {"*1", "$1", "x"},
			"MGET nokey":      {"*1", "$-1"},
			"GET a\r\nMGET a": {"$1", "x", "*1", "$1", "x"},
		}[burst]
		for _, w := range want {
			if got := r.line(t); got != w {
				t.Fatalf("%q: %q, want %q", burst, got, w)
			}
		}
	}
}

// TestPipelinedIncrements: bursts made only of increments (served with
// one AddInts: addTurn, addRun) answer as cmdIncr answers, errors
// included, in order; keep a counter's TTL; count each command; and move
// the write versions a WATCH checks.  A burst with an increment whose
// own arguments are bad is served in an Update, with the same replies.
func TestPipelinedIncrements(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	r := ts.raw(t)
	steps := []struct {
		send  string
		wants []string
	}{
		{"SET s abc\r\nSET m 9223372036854775807\r\nSET t 5 EX 100\r\n", []string{"+OK", "+OK", "+OK"}},
		{"INCR c\r\nINCRBY c 41\r\nINCR s\r\nDECRBY c 2\r\nDECR d\r\n",
			[]string{":1", ":42", "-ERR value is not an integer or out of range", ":40", ":-1"}},
		{"INCR m\r\nDECR m\r\nINCR t\r\nINCR t\r\n",
			[]string{"-ERR increment or decrement would overflow", ":9223372036854775806", ":6", ":7"}},
		{"INCRBY c x\r\nINCR c\r\nDECRBY c -9223372036854775808\r\nINCR c\r\n",
			[]string{"-ERR value is not an integer or out of range", ":41", "-ERR decrement would overflow", ":42"}},
	}
	for _, st := range steps {
		io.WriteString(r, st.send)
		for _, want := range st.wants {
			if got := r.line(t); got != want {
				t.Fatalf("burst %q: got %q, want %q", st.send, got, want)
			}
		}
	}
	mon := ts.client(t, 2, "")
	if ttl := mon.TTL(ctx, "t").Val(); ttl < 90*time.Second {
		t.Errorf("TTL t after INCR = %v, want the SET's 100s kept", ttl)
	}
	for k, want := range map[string]string{"c": "42", "d": "-1", "s": "abc", "m": "9223372036854775806", "t": "7"} {
		if got := mon.Get(ctx, k).Val(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	_, calls := infoCounts(t, mon.Info(ctx, "commandstats").Val())
	for name, want := range map[string]uint64{"incr": 7, "incrby": 2, "decr": 2, "decrby": 2} {
		if calls[name] != want {
			t.Errorf("cmdstat_%s calls = %d, want %d (all: %v)", name, calls[name], want, calls)
		}
	}

	// A burst of increments from another client aborts a WATCH of its key.
	w := ts.raw(t)
	for _, c := range []string{"WATCH c", "MULTI", "SET c 0"} {
		send(t, w, c)
		w.line(t)
	}
	io.WriteString(r, "INCR c\r\nINCR c\r\n")
	for _, want := range []string{":43", ":44"} {
		if got := r.line(t); got != want {
			t.Fatalf("INCR after WATCH: %q, want %q", got, want)
		}
	}
	send(t, w, "EXEC")
	if got := w.line(t); got != "*-1" {
		t.Fatalf("EXEC after the watched key was incremented: %q, want *-1 (aborted)", got)
	}
	if got := mon.Get(ctx, "c").Val(); got != "44" {
		t.Errorf("c = %q after the aborted EXEC, want 44", got)
	}
}

// TestPipelinedIncrementsValueLimit: under a value limit shorter than a
// sum, the increment whose sum does not fit gets the size error alone;
// the burst's other increments are written (the reviewer's reproduction
// of a regression where one such sum failed the whole turn).
func TestPipelinedIncrementsValueLimit(t *testing.T) {
	ts := startServer(t, Config{MaxValueSize: 5}, storage.Options{MaxValueSize: 5})
	r := ts.raw(t)
	send(t, r, "SET big 99999")
	if got := r.line(t); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	io.WriteString(r, "INCR a\r\nINCR big\r\nINCR a\r\nGET a\r\n")
	for _, want := range []string{":1", "-ERR string exceeds maximum allowed size (max-value-size)", ":2", "$1", "2"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
