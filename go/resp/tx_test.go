// tx_test.go -- pipelines, MULTI/EXEC, WATCH with conflicting clients,
// SCAN's ordered cursor, expiry and authentication, through go-redis.
package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestPipelineKeepsOrder(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	rdb := ts.client(t, 2, "")
	ctx := context.Background()
	const n = 200
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("k%03d", i)
			p.Set(ctx, k, "v"+strconv.Itoa(i), 0)
			p.Get(ctx, k)
			if i%10 == 0 {
				p.MSet(ctx, k+"a", "x", k+"b", "y")
				p.MGet(ctx, k+"a", "nope", k+"b")
				p.Incr(ctx, "ctr")
				p.Get(ctx, "ctr")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	i, ctr := 0, 0
	for _, c := range cmds {
		switch c := c.(type) {
		case *redis.StatusCmd:
			if c.Val() != "OK" {
				t.Fatalf("%v: %q", c.Args(), c.Val())
			}
		case *redis.StringCmd:
			if c.Args()[1] == "ctr" {
				if c.Val() != strconv.Itoa(ctr) {
					t.Fatalf("GET ctr = %q, want %d", c.Val(), ctr)
				}
				continue
			}
			if want := "v" + strconv.Itoa(i); c.Val() != want {
				t.Fatalf("%v = %q, want %q (replies out of order?)", c.Args(), c.Val(), want)
			}
			i++
		case *redis.SliceCmd:
			if fmt.Sprint(c.Val()) != "[x <nil> y]" {
				t.Fatalf("%v = %v", c.Args(), c.Val())
			}
		case *redis.IntCmd:
			ctr++
			if c.Val() != int64(ctr) {
				t.Fatalf("INCR = %d, want %d", c.Val(), ctr)
			}
		}
	}
	if i != n {
		t.Fatalf("%d GET replies, want %d", i, n)
	}
	calls := ts.CommandCalls()
	if calls["get"] != n+uint64(ctr) || calls["set"] != n || calls["mget"] != uint64(ctr) {
		t.Fatalf("command counts %v", calls)
	}
}

func TestMultiExec(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	rdb := ts.client(t, 3, "")
	ctx := context.Background()
	cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a", "1", 0)
		p.Incr(ctx, "a")
		p.IncrBy(ctx, "a", 5)
		p.Get(ctx, "a")
		p.Rename(ctx, "a", "b")
		p.Get(ctx, "b")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cmds {
		got = append(got, fmt.Sprint(c.(interface{ String() string }).String()))
	}
	want := []string{"set a 1: OK", "incr a: 2", "incrby a 5: 7", "get a: 7", "rename a b: OK", "get b: 7"}
	if !slices.Equal(got, want) {
		t.Fatalf("EXEC replies %q, want %q", got, want)
	}
	// A command error inside EXEC fails alone; the others apply.
	r := ts.raw(t)
	fmt.Fprint(r, "MULTI\r\nSET s x\r\nINCR s\r\nSET t y\r\nEXEC\r\n")
	for _, want := range []string{"+OK", "+QUEUED", "+QUEUED", "+QUEUED", "*3", "+OK",
		"-ERR value is not an integer or out of range", "+OK"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A queueing error aborts EXEC; nothing applies.
	fmt.Fprint(r, "MULTI\r\nSET u 1\r\nGET\r\nEXEC\r\nEXISTS u\r\n")
	for _, want := range []string{"+OK", "+QUEUED", "-ERR wrong number of arguments for 'get' command",
		"-EXECABORT Transaction discarded because of previous errors.", ":0"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	fmt.Fprint(r, "EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH x\r\nFLUSHDB\r\nDISCARD\r\nGET s\r\n")
	for _, want := range []string{"-ERR EXEC without MULTI", "-ERR DISCARD without MULTI", "+OK",
		"-ERR MULTI calls can not be nested", "-ERR WATCH inside MULTI is not allowed",
		"-ERR Command not allowed inside a transaction", "+OK", "$1", "x"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// An EXEC with arguments aborts the transaction, as Redis rejects
	// it (execCommandAbort): the client leaves MULTI, its queue and its
	// WATCHes are dropped, and the next commands run at once.
	abort := "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
	fmt.Fprint(r, "MULTI\r\nSET v 1\r\nEXEC x\r\nEXISTS v\r\nSET v 2\r\nGET v\r\nEXEC x\r\nEXEC\r\n")
	r.expect(t, "+OK", "+QUEUED", abort, ":0", "+OK", "$1", "2", abort, "-ERR EXEC without MULTI")
	o := ts.raw(t)
	fmt.Fprint(r, "WATCH v\r\nEXEC x\r\nMULTI\r\nGET v\r\n")
	r.expect(t, "+OK", abort, "+OK", "+QUEUED")
	fmt.Fprint(o, "SET v 3\r\n")
	o.expect(t, "+OK")
	fmt.Fprint(r, "EXEC\r\n") // the WATCH went with the aborted EXEC
	r.expect(t, "*1", "$1", "3")
	// HELLO and AUTH are queued inside MULTI and run in EXEC, as in Redis.
	fmt.Fprint(r, "MULTI\r\nAUTH default any\r\nHELLO 2\r\nEXEC\r\n")
	r.expect(t, "+OK", "+QUEUED", "+QUEUED", "*2", "+OK", "*14")
}

// TestWatchConcurrent: clients race a GET/SET counter through WATCH and
// MULTI/EXEC, retrying on conflict (the CAS loop of go-redis's docs); the
// total must be exact: a lost update would leave it short.
func TestWatchConcurrent(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	const clients, each = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		rdb := ts.client(t, 2+w%2, "")
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					err := rdb.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "counter").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "counter", n+1, 0)
							return nil
						})
						return err
					}, "counter")
					if errors.Is(err, redis.TxFailedErr) {
						continue // another client won the race: retry
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := ts.client(t, 2, "").Get(ctx, "counter").Int()
	if err != nil || n != clients*each {
		t.Fatalf("counter = %d, %v; want %d", n, err, clients*each)
	}
	// An unchanged watched key lets EXEC through; a change aborts it.
	r, other := ts.raw(t), ts.client(t, 2, "")
	fmt.Fprint(r, "WATCH w\r\nMULTI\r\nSET w 1\r\n")
	for range 3 {
		r.line(t)
	}
	if err := other.Set(ctx, "w", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(r, "EXEC\r\nGET w\r\nWATCH w\r\nUNWATCH\r\nMULTI\r\nSET w 2\r\nEXEC\r\n")
	for _, want := range []string{"*-1", "$1", "x", "+OK", "+OK", "+OK", "+QUEUED", "*1", "+OK"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestScanOrderedCursor(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	rdb := ts.client(t, 3, "")
	ctx := context.Background()
	var want []string
	for i := 0; i < 103; i++ {
		k := fmt.Sprintf("user:%03d", i)
		want = append(want, k)
		if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Set(ctx, "other", "v", 0)
	tests := []struct {
		match string
		count int64
		typ   string
		want  []string
	}{
		{"user:*", 7, "", want},
		{"", 10, "", append([]string{"other"}, want...)},
		{"user:0[0-1]?", 3, "", want[:20]},
		{"*", 50, "string", append([]string{"other"}, want...)},
		{"*", 50, "hash", nil},
	}
	for _, tc := range tests {
		var got []string
		var cursor uint64
		for calls := 0; ; calls++ {
			var cmd *redis.ScanCmd
			if tc.typ != "" {
				cmd = rdb.ScanType(ctx, cursor, tc.match, tc.count, tc.typ)
			} else {
				cmd = rdb.Scan(ctx, cursor, tc.match, tc.count)
			}
			keys, next, err := cmd.Result()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, keys...)
			if cursor = next; cursor == 0 {
				break
			}
			if calls > 1000 {
				t.Fatal("scan does not end")
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Fatalf("SCAN MATCH %q COUNT %d TYPE %q: got %d keys %q", tc.match, tc.count, tc.typ, len(got), got)
		}
	}
	if err := rdb.Do(ctx, "SCAN", "42").Err(); err == nil {
		t.Fatal("SCAN with an unknown cursor succeeded")
	}
}

// TestExpiry: a key set with PX disappears for every read path; TTLs
// written by one command are read back by the others.
func TestExpiry(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	rdb := ts.client(t, 2, "")
	ctx := context.Background()
	if err := rdb.Set(ctx, "short", "v", 30*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "long", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := rdb.TTL(ctx, "long").Result(); err != nil || d != time.Hour {
		t.Fatalf("TTL long = %v, %v", d, err)
	}
	if d, err := rdb.PTTL(ctx, "short").Result(); err != nil || d <= 0 || d > 30*time.Millisecond {
		t.Fatalf("PTTL short = %v, %v", d, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := rdb.Exists(ctx, "short").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with PX 30 still exists after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []redis.Cmder{rdb.Get(ctx, "short"), rdb.MGet(ctx, "short", "long"), rdb.TTL(ctx, "short"),
		rdb.Keys(ctx, "*"), rdb.Incr(ctx, "short")} {
		got := fmt.Sprint(c)
		for _, want := range []string{"get short: redis: nil", "mget short long: [<nil> v]", "ttl short: -2ns", "keys *: [long]", "incr short: 1"} {
			if got == want {
				got = ""
			}
		}
		if got != "" {
			t.Fatalf("after expiry: %s", got)
		}
	}
	if d, err := rdb.TTL(ctx, "short").Result(); err != nil || d != -1 {
		t.Fatalf("INCR of an expired key must create it without TTL: %v, %v", d, err)
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, Config{AuthToken: "s3cret"}, storage.Options{})
	r := ts.raw(t)
	steps := []struct{ send, want string }{
		{"GET k\r\n", "-NOAUTH Authentication required."},
		{"PING\r\n", "-NOAUTH Authentication required."},
		{"AUTH wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"AUTH bob s3cret\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"HELLO 3\r\n", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"},
		{"HELLO 3 AUTH default wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"HELLO 2 AUTH default s3cret\r\n", "*14"},
	}
	for _, st := range steps {
		fmt.Fprint(r, st.send)
		if got := r.line(t); got != st.want {
			t.Fatalf("%q: got %q, want %q", st.send, got, st.want)
		}
	}
	for r.line(t) != "*0" { // the rest of the HELLO map ends with "modules" => []
	}
	fmt.Fprint(r, "SET k v\r\nRESET\r\nGET k\r\nAUTH s3cret\r\nGET k\r\n")
	for _, want := range []string{"+OK", "+RESET", "-NOAUTH Authentication required.", "+OK", "$1", "v"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// Without a token the default user has no password (Redis's
	// nopass): a username with any password is accepted, the legacy
	// one-argument form explains itself, other users do not exist.
	open := startServer(t, Config{}, storage.Options{})
	o := open.raw(t)
	fmt.Fprint(o, "AUTH default anything\r\nAUTH bob x\r\nAUTH x\r\nHELLO 2 AUTH default \"\"\r\n")
	o.expect(t, "+OK", "-WRONGPASS invalid username-password pair or user is disabled.",
		"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?", "*14")
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redis.NewClient(&redis.Options{Addr: open.addr, Protocol: proto, Username: "default", Password: "pw"})
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("go-redis with a username on an open server, RESP%d: %v", proto, err)
		}
		rdb.Close()
	}
	for _, proto := range []int{2, 3} {
		if v, err := ts.client(t, proto, "s3cret").Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("go-redis with password, RESP%d: %q, %v", proto, v, err)
		}
		if err := ts.client(t, proto, "nope").Ping(ctx).Err(); err == nil {
			t.Fatalf("go-redis with a wrong password, RESP%d: no error", proto)
		}
	}
}

// TestDurableAcrossReopen: RESP writes, counters included, survive a
// reopen of the data directory.
func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	func() {
		ts := startServer(t, Config{}, storage.Options{Dir: dir, Sync: storage.SyncAlways})
		rdb := ts.client(t, 2, "")
		for i := 0; i < 20; i++ {
			if err := rdb.Incr(ctx, "n").Err(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "a", "1", 0)
			p.Set(ctx, "b", "2", time.Hour)
			p.MSet(ctx, "c", "3", "d", "4")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_ = ts.Close()
		_ = ts.eng.Close()
	}()
	ts := startServer(t, Config{}, storage.Options{Dir: dir})
	vals, err := ts.client(t, 3, "").MGet(ctx, "n", "a", "b", "c", "d").Result()
	if err != nil || fmt.Sprint(vals) != "[20 1 2 3 4]" {
		t.Fatalf("after reopen: %v, %v", vals, err)
	}
}

// TestPipelinedUpdates: a burst of read-modify-write commands is served
// as one Update; each command still sees the ones before it, fails alone,
// and replies in order.
func TestPipelinedUpdates(t *testing.T) {
	ts := startServer(t, Config{MaxKeySize: 16}, storage.Options{MaxKeySize: 16})
	r := ts.raw(t)
	var b strings.Builder
	for i := 0; i < 50; i++ {
		b.WriteString("INCR n\r\n")
	}
	b.WriteString("SET s abc\r\nINCR s\r\nAPPEND s def\r\nSET e 1 EX 0\r\nINCR " + strings.Repeat("k", 17) + "\r\nGETSET n x\r\nGET n\r\n")
	io.WriteString(r, b.String())
	for i := 1; i <= 50; i++ {
		if got := r.line(t); got != ":"+strconv.Itoa(i) {
			t.Fatalf("INCR %d: %q", i, got)
		}
	}
	for _, want := range []string{"+OK", "-ERR value is not an integer or out of range", ":6",
		"-ERR invalid expire time in 'set' command", "-ERR key is larger than the server's max-key-size",
		"$2", "50", "$1", "x"} {
		if got := r.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestTTLRounding: TTLs read as Redis's, which keeps expiries in whole ms
// on a ms clock: the ms left round up (PX 1000 reads 1000 at once), the
// seconds left and EXPIRETIME round to the nearest; a time however far in
// the past expires the key.  The clock is fixed, so nothing here depends
// on how long a step takes.
func TestTTLRounding(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 123_456_789, time.UTC).UnixNano())
	ts := startServer(t, Config{}, storage.Options{Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	r := ts.raw(t)
	fmt.Fprint(r, "SET a v PX 1000\r\nPTTL a\r\nSET b v PX 1500\r\nTTL b\r\nSET c v PX 1499\r\nTTL c\r\n")
	r.expect(t, "+OK", ":1000", "+OK", ":2", "+OK", ":1")
	now.Add(int64(400 * time.Microsecond))
	fmt.Fprint(r, "PTTL a\r\n")
	r.expect(t, ":1000")
	fmt.Fprint(r, "PEXPIREAT a 4000000000623\r\nEXPIRETIME a\r\nPEXPIRETIME a\r\nPEXPIREAT a 4000000000499\r\nEXPIRETIME a\r\n")
	r.expect(t, ":1", ":4000000001", ":4000000000623", ":1", ":4000000000")
	// Past times of any size delete the key; only the future is bounded.
	fmt.Fprint(r, "EXPIRE a -9223372036854775\r\nEXISTS a\r\nPEXPIRE b -9223372036854775808\r\nEXISTS b\r\n")
	r.expect(t, ":1", ":0", ":1", ":0")
	fmt.Fprint(r, "PEXPIREAT c -9223372036854775808\r\nEXISTS c\r\nSET d v\r\nEXPIRE d 9223372036854775\r\nTTL d\r\n")
	r.expect(t, ":1", ":0", "+OK", "-ERR invalid expire time in 'expire' command", ":-1")
	// Seconds whose ms would overflow are refused, as in Redis.
	fmt.Fprint(r, "EXPIRE d -9223372036854776\r\nEXPIREAT d -9223372036854775808\r\nTTL d\r\n")
	r.expect(t, "-ERR invalid expire time in 'expire' command", "-ERR invalid expire time in 'expireat' command", ":-1")
	// The options are read before the time, as in Redis.
	fmt.Fprint(r, "EXPIRE d x NX LT\r\n")
	r.expect(t, "-ERR NX and XX, GT or LT options at the same time are not compatible")
}

// TestExecKeyspaceReadsSeeQueue: DBSIZE, KEYS, SCAN and RANDOMKEY queued
// in a transaction see the writes queued before them, as Redis runs the
// queue one command after another, on both transports.
func TestExecKeyspaceReadsSeeQueue(t *testing.T) {
	for _, loops := range []int{0, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			ts := startServer(t, Config{Loops: loops}, storage.Options{})
			r := ts.raw(t)
			fmt.Fprint(r, "MSET a 1 b 2 c 3\r\n")
			r.expect(t, "+OK")
			fmt.Fprint(r, "MULTI\r\nSET d 4\r\nDEL b\r\nDBSIZE\r\nKEYS *\r\nSCAN 0 COUNT 100\r\n"+
				"KEYS [bd]\r\nSCAN 0 MATCH b*\r\nSCAN 0 COUNT 2\r\nSET b 5\r\nDBSIZE\r\nEXEC\r\n")
			r.expect(t, "+OK", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED",
				"+QUEUED", "+QUEUED", "+QUEUED", "*10",
				"+OK", ":1", ":3", // SET d, DEL b, DBSIZE: a c d
				"*3", "$1", "a", "$1", "c", "$1", "d", // KEYS *
				"*2", "$1", "0", "*3", "$1", "a", "$1", "c", "$1", "d", // SCAN 0 COUNT 100
				"*1", "$1", "d", // KEYS [bd]
				"*2", "$1", "0", "*0") // SCAN 0 MATCH b*
			// SCAN 0 COUNT 2: two keys and a cursor to go on from c.
			r.expect(t, "*2")
			if hdr := r.line(t); !strings.HasPrefix(hdr, "$") {
				t.Fatalf("cursor header %q", hdr)
			}
			if cur := r.line(t); cur == "0" {
				t.Fatal("SCAN COUNT 2 of three keys ended the scan")
			}
			r.expect(t, "*2", "$1", "a", "$1", "c", "+OK", ":4") // SET b, DBSIZE: a b c d
			fmt.Fprint(r, "DBSIZE\r\nKEYS *\r\n")
			r.expect(t, ":4", "*4", "$1", "a", "$1", "b", "$1", "c", "$1", "d")
			// RANDOMKEY picks among the transaction's live keys: the one
			// created when every engine key is deleted, the one left when
			// all others are.
			for range 20 {
				fmt.Fprint(r, "MULTI\r\nDEL a b c d\r\nSET z 1\r\nRANDOMKEY\r\nDISCARD\r\n")
				r.expect(t, "+OK", "+QUEUED", "+QUEUED", "+QUEUED", "+OK")
				fmt.Fprint(r, "MULTI\r\nDEL a b c d\r\nSET z 1\r\nRANDOMKEY\r\nDEL z\r\nEXEC\r\n")
				r.expect(t, "+OK", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "*4", ":4", "+OK", "$1", "z", ":1")
				fmt.Fprint(r, "MSET a 1 b 2 c 3 d 4\r\nMULTI\r\nDEL a b d\r\nRANDOMKEY\r\nEXEC\r\nSET a 1\r\nSET b 2\r\nSET d 4\r\n")
				r.expect(t, "+OK", "+OK", "+QUEUED", "+QUEUED", "*2", ":3", "$1", "c", "+OK", "+OK", "+OK")
			}
			fmt.Fprint(r, "MULTI\r\nDEL a b c d\r\nRANDOMKEY\r\nDBSIZE\r\nKEYS *\r\nEXEC\r\n")
			r.expect(t, "+OK", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "*4", ":4", "$-1", ":0", "*0")
		})
	}
}
