// linear_e2e_test.go -- the linearizability model of go/storage/storagetest
// over HTTP, against the server binary built with this test's tags (the
// pure-Go server in `go test`, the native one in `go test -tags native`):
// concurrent PUT (plain and with an hour-long TTL), GET, DELETE, batches
// and paginated listings on a handful of keys with self-checking values
// of 8 B to 1 MiB, while the server runs with --sync=always and is killed
// with SIGKILL and restarted on its data directory.  A request in flight
// at the kill may or may not have been applied: it is a "maybe" write
// whose outcome is fixed by the time the restarted server listens (a dead
// process applies nothing; recovery decides once).  Everything
// acknowledged must be there after the restart: the reads after it are
// in the same history.  Short TTLs are left to the in-process test: the
// server reads the wall clock, which the test cannot bound as exactly as
// its own monotonic clock; an hour-long TTL cannot expire during the test.
//
// TestHTTPSweepNo5xx sends only valid requests, with values growing under
// concurrent readers, listings and batches, and requires that none gets a
// 5xx.
//
// MANTISDB_LIN_ROUNDS=N repeats the model N times (a soak).
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

// httpGen is one server process; next is closed once its successor
// listens, killed is set before it is sent SIGKILL.
type httpGen struct {
	p      *proc
	base   string
	next   chan struct{}
	killed atomic.Bool
}

type httpRun struct {
	t      *testing.T
	h      *storagetest.History
	client *http.Client
	cur    atomic.Pointer[httpGen]
	done   atomic.Int64
}

var (
	httpStable = []string{"r/0", "r/1", "r/2"} // never deleted
	httpChurn  = []string{"r/3", "r/4", "r/5"}
)

func wallNs() int64 { return time.Now().UnixNano() }

// kill SIGKILLs the current server, starts a new one on the same
// arguments and publishes it.
func (run *httpRun) killAndRestart(bin string, args []string) {
	g := run.cur.Load()
	g.killed.Store(true)
	if err := g.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		run.t.Fatalf("SIGKILL: %v", err)
	}
	<-g.p.exited
	p, why := start(run.t, bin, args...)
	if p == nil {
		run.t.Fatalf("restart after SIGKILL: %s", why)
	}
	run.cur.Store(&httpGen{p: p, base: "http://" + p.addr, next: make(chan struct{})})
	close(g.next)
}

// do sends one request to g.
func (run *httpRun) do(g *httpGen, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, g.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := run.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func kvPath(key string) string { return "/api/v1/kv/" + url.PathEscape(key) }

// write sends a write and records it: acknowledged, refused, or (no
// answer because the server was killed) a maybe-write whose outcome is
// fixed once the next server listens.
func (run *httpRun) write(method, path string, body []byte, ok int, ws []storagetest.KVWrite, groupX storagetest.ValueID) {
	defer run.done.Add(1)
	g := run.cur.Load()
	call := run.h.Tick()
	status, resp, err := run.do(g, method, path, body)
	ret := run.h.Tick()
	maybe := false
	switch {
	case err != nil && g.killed.Load():
		<-g.next
		maybe, ret = true, run.h.Tick()
	case err != nil:
		run.h.Failf("%s %s: %v (no kill)", method, path, err)
		maybe, ret = true, math.MaxInt64
	case status == ok:
	case status >= 500:
		run.h.Failf("%s %s: %d %s", method, path, status, resp)
		maybe, ret = true, math.MaxInt64
	default:
		run.h.Failf("%s %s: %d %s (a valid request)", method, path, status, resp)
		return // refused: not applied
	}
	if len(ws) > 0 {
		run.h.Write(call, ret, maybe, ws...)
	}
	if groupX != 0 {
		run.h.GroupWrite(call, ret, maybe, groupX)
	}
}

func (run *httpRun) get(key string) {
	defer run.done.Add(1)
	g := run.cur.Load()
	call, c0 := run.h.Tick(), wallNs()
	status, body, err := run.do(g, http.MethodGet, kvPath(key), nil)
	ret, c1 := run.h.Tick(), wallNs()
	var got storagetest.ValueID
	switch {
	case err != nil:
		if !g.killed.Load() {
			run.h.Failf("GET %s: %v (no kill)", key, err)
		}
		return
	case status == http.StatusNotFound:
	case status == http.StatusOK:
		id, bad := storagetest.CheckValue([]byte(key), body)
		if bad != nil {
			run.h.Failf("GET: %v", bad)
			return
		}
		got = id
	default:
		run.h.Failf("GET %s: %d %s", key, status, body)
		return
	}
	if i, ok := storagetest.GroupIndex([]byte(key)); ok {
		run.h.GroupRead(i, call, ret, got)
	} else {
		run.h.Read(key, call, ret, c0, c1, got)
	}
}

type listItem struct {
	Key   []byte  `json:"key"`
	Value *[]byte `json:"value"`
}

type listPage struct {
	Items      []listItem `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// list walks a listing page by page and records it as one iteration;
// group reports whether it is the one-page listing of the group, which
// is also one atomic read of every group key.
func (run *httpRun) list(desc, prefix, start, end string, limit int, group bool) {
	defer run.done.Add(1)
	g := run.cur.Load()
	rec := storagetest.IterRecord{Desc: "listing " + desc}
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
		rec.Prefix = []byte(prefix)
	}
	if start != "" {
		q.Set("start", start)
		rec.Lower = []byte(start)
	}
	if end != "" {
		q.Set("end", end)
		rec.Upper = []byte(end)
	}
	q.Set("limit", fmt.Sprint(limit))
	rec.Call = run.h.Tick()
	c0 := wallNs()
	var obs [storagetest.GroupKeys]storagetest.ValueID
	pages := 0
	for {
		status, body, err := run.do(g, http.MethodGet, "/api/v1/kv?"+q.Encode(), nil)
		ret := run.h.Tick()
		if err != nil {
			if !g.killed.Load() {
				run.h.Failf("list %s: %v (no kill)", desc, err)
			}
			rec.Failed = true
			break
		}
		if status != http.StatusOK {
			run.h.Failf("list %s: %d %s", desc, status, body)
			rec.Failed = true
			break
		}
		var page listPage
		if err := json.Unmarshal(body, &page); err != nil {
			run.h.Failf("list %s: %v", desc, err)
			rec.Failed = true
			break
		}
		pages++
		for _, it := range page.Items {
			rec.Keys = append(rec.Keys, string(it.Key))
			if it.Value == nil {
				run.h.Failf("list %s: %q without a value", desc, it.Key)
				continue
			}
			if group {
				id, bad := storagetest.CheckValue(it.Key, *it.Value)
				i, isGroup := storagetest.GroupIndex(it.Key)
				if bad != nil {
					run.h.Failf("list %s: %v", desc, bad)
					group = false
				} else if isGroup {
					obs[i] = id
				}
				continue
			}
			run.h.Observe(it.Key, *it.Value, rec.Call, ret, c0, wallNs())
		}
		if page.NextCursor == "" {
			rec.Exhausted = true
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	rec.Return, rec.ClockReturn = run.h.Tick(), wallNs()
	run.h.Iter(rec)
	if group && rec.Exhausted && pages == 1 {
		run.h.GroupReadAll(rec.Call, rec.Return, obs)
	}
}

type batchOp struct {
	Op    string  `json:"op"`
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
	TTL   string  `json:"ttl,omitempty"`
}

func b64(b []byte) *string { s := base64.StdEncoding.EncodeToString(b); return &s }

func httpValueSize(r *rand.Rand) int {
	switch u := r.IntN(100); {
	case u < 60:
		return 8 + r.IntN(248)
	case u < 90:
		return 256 + r.IntN(16<<10)
	case u < 97:
		return 16<<10 + r.IntN(240<<10)
	default:
		return 256<<10 + r.IntN(768<<10)
	}
}

func pickOf(r *rand.Rand, sets ...[]string) string {
	var all []string
	for _, s := range sets {
		all = append(all, s...)
	}
	return all[r.IntN(len(all))]
}

func (run *httpRun) worker(w int, r *rand.Rand, n int) {
	var seq uint32
	nextID := func() storagetest.ValueID { seq++; return storagetest.MakeID(w, seq) }
	for range n {
		switch u := r.IntN(100); {
		case u < 20: // PUT, a fifth of them with an hour-long TTL
			k := pickOf(r, httpStable, httpChurn)
			id := nextID()
			v := storagetest.MakeValue([]byte(k), id, httpValueSize(r))
			ws := []storagetest.KVWrite{{Key: k, ID: id}}
			path := kvPath(k)
			if r.IntN(5) == 0 {
				path += "?ttl=1h"
				// The server takes its clock after now and before the
				// answer; an hour from either end bounds the expiry, and
				// no read of this test comes near it.
				now := wallNs()
				ws[0].E0, ws[0].E1 = now+int64(time.Hour), now+int64(2*time.Hour)
			}
			run.write(http.MethodPut, path, v, http.StatusNoContent, ws, 0)
		case u < 28:
			k := pickOf(r, httpChurn)
			run.write(http.MethodDelete, kvPath(k), nil, http.StatusNoContent, []storagetest.KVWrite{{Key: k}}, 0)
		case u < 55:
			run.get(pickOf(r, httpStable, httpChurn))
		case u < 62:
			run.get(string(storagetest.GroupKey(r.IntN(storagetest.GroupKeys))))
		case u < 72: // a batch over the group, sometimes with an ordinary key
			run.batch(r, nextID, r.IntN(2), nextID())
		case u < 78:
			run.batch(r, nextID, 2+r.IntN(2), 0)
		case u < 85:
			run.list("group", storagetest.GroupPrefix, "", "", 100, true)
		case u < 92:
			run.list("r/ by 2", "r/", "", "", 2, false)
		default:
			run.list("[r/1, r/5) by 3", "", "r/1", "r/5", 3, false)
		}
	}
}

func (run *httpRun) batch(r *rand.Rand, nextID func() storagetest.ValueID, nOrd int, x storagetest.ValueID) {
	var ops []batchOp
	var ws []storagetest.KVWrite
	used := map[string]bool{}
	for len(ws) < nOrd {
		k := pickOf(r, httpStable, httpChurn)
		if used[k] {
			continue
		}
		used[k] = true
		if r.IntN(3) == 0 && !slices.Contains(httpStable, k) {
			ops = append(ops, batchOp{Op: "delete", Key: *b64([]byte(k))})
			ws = append(ws, storagetest.KVWrite{Key: k})
			continue
		}
		id := nextID()
		ops = append(ops, batchOp{Op: "put", Key: *b64([]byte(k)), Value: b64(storagetest.MakeValue([]byte(k), id, 8+r.IntN(64<<10)))})
		ws = append(ws, storagetest.KVWrite{Key: k, ID: id})
	}
	if x != 0 {
		for i := range storagetest.GroupKeys {
			k := storagetest.GroupKey(i)
			if storagetest.GroupPresent(x, i) {
				ops = append(ops, batchOp{Op: "put", Key: *b64(k), Value: b64(storagetest.MakeValue(k, x, storagetest.GroupValueSize(x, i)))})
			} else {
				ops = append(ops, batchOp{Op: "delete", Key: *b64(k)})
			}
		}
	}
	body, err := json.Marshal(map[string]any{"ops": ops})
	if err != nil {
		run.t.Error(err)
		return
	}
	run.write(http.MethodPost, "/api/v1/kv/batch", body, http.StatusOK, ws, x)
}

func TestHTTPLinearizabilityWithSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for round := range storagetest.EnvInt("MANTISDB_LIN_ROUNDS", 1) {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) { httpRound(t, bin, uint64(round)) })
	}
}

func httpRound(t *testing.T, bin string, seed uint64) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--port", "0", "--resp-port", "0", "--data-dir", dir, "--sync", "always"}
	p, why := start(t, bin, args...)
	if p == nil {
		t.Fatalf("server: %s", why)
	}
	run := &httpRun{
		t: t, h: storagetest.NewHistory(),
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	}
	run.cur.Store(&httpGen{p: p, base: "http://" + p.addr, next: make(chan struct{})})

	const (
		workers      = 6
		opsPerWorker = 200
		kills        = 2
	)
	total := int64(workers * opsPerWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run.worker(w+1, rand.New(rand.NewPCG(seed, uint64(w))), opsPerWorker)
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	// Kill while the workers are busy, each time another third of the
	// operations has finished.
	for i := 1; i <= kills; i++ {
	wait:
		for run.done.Load() < total*int64(i)/int64(kills+1) {
			select {
			case <-workersDone:
				break wait
			case <-time.After(time.Millisecond):
			}
		}
		run.killAndRestart(bin, args)
	}
	<-workersDone
	// A last kill with nothing in flight, then every key read back: all
	// that was acknowledged survived.
	run.killAndRestart(bin, args)
	for _, k := range append(append([]string{}, httpStable...), httpChurn...) {
		run.get(k)
	}
	for i := range storagetest.GroupKeys {
		run.get(string(storagetest.GroupKey(i)))
	}
	run.list("group after restart", storagetest.GroupPrefix, "", "", 100, true)
	run.cur.Load().p.stop(t)
	t.Logf("%s; %d SIGKILLs", run.h.Summary(), kills+1)
	run.h.Check(t, 2*time.Minute)
}

// TestHTTPSweepNo5xx: valid requests only, concurrently -- a value
// rewritten with sizes growing from 1 KiB to 1 MiB while others GET and
// HEAD it, listings, batches, puts and deletes -- and none may get a 5xx
// (docs/API.md: 500 is never caused by request content).
func TestHTTPSweepNo5xx(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	p, why := start(t, bin, "--port", "0", "--resp-port", "0", "--data-dir", dir, "--sync", "none")
	if p == nil {
		t.Fatalf("server: %s", why)
	}
	base := "http://" + p.addr
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var requests, bad atomic.Int64
	var mu sync.Mutex
	var first []string
	// send returns the body of a 200 answer, nil for any other.
	send := func(method, path string, body []byte, want ...int) []byte {
		requests.Add(1)
		req, _ := http.NewRequestWithContext(context.Background(), method, base+path, bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ok := false
		for _, w := range want {
			ok = ok || resp.StatusCode == w
		}
		if !ok {
			bad.Add(1)
			mu.Lock()
			if len(first) < 10 {
				first = append(first, fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, b))
			}
			mu.Unlock()
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		return b
	}
	hot := "hot"
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if (i+r)%8 == 7 {
					send(http.MethodHead, kvPath(hot), nil, http.StatusOK, http.StatusNotFound)
					continue
				}
				if b := send(http.MethodGet, kvPath(hot), nil, http.StatusOK, http.StatusNotFound); b != nil {
					if _, err := storagetest.CheckValue([]byte(hot), b); err != nil {
						bad.Add(1)
						t.Errorf("GET %s: %v", hot, err)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; !stop.Load(); i++ {
			k := fmt.Sprintf("s/%d", r.IntN(6))
			switch i % 4 {
			case 0:
				send(http.MethodPut, kvPath(k), storagetest.MakeValue([]byte(k), storagetest.MakeID(3, uint32(i)), 8<<(i%15)), http.StatusNoContent)
			case 1:
				send(http.MethodDelete, kvPath(k), nil, http.StatusNoContent)
			case 2:
				send(http.MethodGet, "/api/v1/kv?limit=2&prefix=s%2F", nil, http.StatusOK)
			default:
				v := storagetest.MakeValue([]byte(k), storagetest.MakeID(3, uint32(i)), 8<<(i%13))
				body, _ := json.Marshal(map[string]any{"ops": []batchOp{{Op: "put", Key: *b64([]byte(k)), Value: b64(v)}, {Op: "delete", Key: *b64([]byte("s/x"))}}})
				send(http.MethodPost, "/api/v1/kv/batch", body, http.StatusOK)
			}
		}
	}()
	// Two writers grow the value from 1 KiB to 1 MiB, out of step, so it
	// often changes size while one GET runs.
	var gw sync.WaitGroup
	for g := range 2 {
		gw.Add(1)
		go func() {
			defer gw.Done()
			size := 1 << (10 + 5*g)
			for i := range 300 {
				send(http.MethodPut, kvPath(hot), storagetest.MakeValue([]byte(hot), storagetest.MakeID(10+g, uint32(i+1)), size), http.StatusNoContent)
				if size = size * 3 / 2; size > 1<<20 {
					size = 1 << 10
				}
			}
		}()
	}
	gw.Wait()
	stop.Store(true)
	wg.Wait()
	for _, f := range first {
		t.Error(f)
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d valid requests got an unexpected status", n, requests.Load())
	}
	t.Logf("%d requests", requests.Load())
	p.stop(t)
}
