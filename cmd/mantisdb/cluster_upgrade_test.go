// cluster_upgrade_test.go -- a cluster node upgraded to a binary whose
// default Raft log store is the engine store keeps the bbolt log its data
// directory holds, and a node asked for the other store exits with status
// 2 and a message naming --raft-log-store.
package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterLogStoreUpgrade(t *testing.T) {
	bin, base, logf := processSetup(t)
	n := &soakNode{id: "n1", http: "127.0.0.1:" + soakPort(t), raft: "127.0.0.1:" + soakPort(t),
		dir: filepath.Join(base, "n1"), logf: logf}

	// The old default: a bbolt log.
	n.start(t, bin, "--bootstrap", "--raft-log-store", "bolt")
	waitWritable(t, n)
	if !soakPut(n, "before") {
		t.Fatal("write before the upgrade failed")
	}
	n.kill()
	if _, err := os.Stat(filepath.Join(n.dir, "raft", "raft.db")); err != nil {
		t.Fatalf("no bbolt log: %v", err)
	}

	// No flag: the node keeps its bbolt log.
	n.start(t, bin, "--bootstrap")
	waitWritable(t, n)
	if !soakPut(n, "after") {
		t.Fatal("write after the upgrade failed")
	}
	resp, err := soakClient.Get("http://" + n.http + "/api/v1/kv/before")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "v" {
		t.Fatalf("write from before the upgrade: %d %q", resp.StatusCode, body)
	}
	n.kill()
	if _, err := os.Stat(filepath.Join(n.dir, "raft", "log")); err == nil {
		t.Fatal("the upgraded node created an engine log beside its bbolt one")
	}

	// Asking for the engine store over a bbolt log is refused.
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--node-id", "n1", "--host", "127.0.0.1", "--port", strings.Split(n.http, ":")[1],
		"--raft-addr", n.raft, "--resp-port", "0", "--data-dir", n.dir, "--raft-log-store", "engine")
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the node started over a log store it cannot read; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "--raft-log-store bolt") {
		t.Fatalf("exit %v, stderr:\n%s", err, stderr.String())
	}
}
