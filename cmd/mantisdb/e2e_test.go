// e2e_test.go -- the built binary, end to end: start it on a free loopback
// port with a fresh data directory, write (and delete) under concurrent
// load, send SIGTERM while writes are in flight, check it exits 0,
// restart it on the same directory and check that every acknowledged write
// is there.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the server with the test's own tags into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mantisdb")
	args := []string{"build", "-o", bin}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd        *exec.Cmd
	addr       string
	exited     chan error
	readerDone chan struct{} // closed when all of stderr is in the buffer

	mu     sync.Mutex // guards stderr (written by the reader goroutine)
	stderr bytes.Buffer
}

// log is the process's stderr so far.
func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

var listenRE = regexp.MustCompile(`listening on http://(\S+)`)

// start runs the binary and waits for its "listening on" line.  It
// returns nil and the output if the process exits first.
func start(t *testing.T, bin string, args ...string) (*proc, string) {
	t.Helper()
	return startIn(t, "", bin, args...)
}

// startIn is start with the process's working directory at dir ("": the
// test's).  The server runs without the test's MANTISDB_* variables: a
// developer's or CI's exported MANTISDB_DATA_DIR must not move a test's
// data elsewhere.
func startIn(t *testing.T, dir, bin string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "MANTISDB_") })
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1), readerDone: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		defer close(p.readerDone)
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addrc <- m[1]
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		p.exited <- err
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case p.addr = <-addrc:
		return p, ""
	case err := <-p.exited:
		<-p.readerDone
		return nil, fmt.Sprintf("exited (%v) before listening:\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	return nil, ""
}

// stop sends SIGTERM and requires exit status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		<-p.readerDone
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// keyState is what the client knows about a key: its value if the last
// acknowledged operation was a put, absent after an acknowledged delete,
// or unknown when an operation on it got no answer (its outcome is not
// defined, as for any database).
type keyState struct {
	value   string
	deleted bool
	unknown bool
}

func TestEndToEndSIGTERMKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--port", "0", "--resp-port", "0", "--data-dir", dir, "--sync", "interval"}
	p, why := start(t, bin, args...)
	if p == nil {
		t.Fatalf("server: %s", why)
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const writers = 8
	states := make([]map[string]*keyState, writers)
	var acked atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		states[w] = map[string]*keyState{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				// Each writer owns its keys, so its own order is the
				// order the server applied them in.
				key := fmt.Sprintf("w%d-%d", w, i)
				method, body := http.MethodPut, fmt.Sprintf("value %d/%d \x00\xff", w, i)
				if i%7 == 6 {
					key, method, body = fmt.Sprintf("w%d-%d", w, i-3), http.MethodDelete, ""
				}
				st := states[w][key]
				if st == nil {
					st = &keyState{}
					states[w][key] = st
				}
				req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+p.addr+"/api/v1/kv/"+key, strings.NewReader(body))
				resp, err := client.Do(req)
				if err != nil {
					st.unknown = true // no answer: outcome unknown
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusNoContent:
					*st = keyState{value: body, deleted: method == http.MethodDelete}
					acked.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable:
					// Refused during shutdown: not applied.
				default:
					st.unknown = true
				}
			}
		}()
	}
	for acked.Load() < 3000 {
		time.Sleep(5 * time.Millisecond)
	}
	p.stop(t) // while the writers keep going
	close(stopLoad)
	wg.Wait()
	if !strings.Contains(p.log(), "shut down cleanly") {
		t.Errorf("no clean-shutdown log:\n%s", p.log())
	}

	p, why = start(t, bin, args...)
	if p == nil {
		t.Fatalf("restart: %s", why)
	}
	checked := 0
	for _, m := range states {
		for key, st := range m {
			if st.unknown || (st.value == "" && !st.deleted) {
				continue
			}
			resp, err := client.Get("http://" + p.addr + "/api/v1/kv/" + key)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case st.deleted && resp.StatusCode != http.StatusNotFound:
				t.Errorf("%s: acknowledged delete lost: %d %q", key, resp.StatusCode, got)
			case !st.deleted && (resp.StatusCode != http.StatusOK || string(got) != st.value):
				t.Errorf("%s: acknowledged write lost: %d %q, want %q", key, resp.StatusCode, got, st.value)
			}
			checked++
		}
	}
	if checked < 2000 {
		t.Errorf("only %d keys checked", checked)
	}
	t.Logf("%d acknowledged operations, %d keys checked after restart", acked.Load(), checked)
	p.stop(t)
}
