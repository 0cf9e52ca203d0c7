package server

// drain_test.go -- --shutdown-drain: after the signal the server goes on
// serving, with /readyz answering 503, until the drain ends.

import (
	"testing"
	"time"
)

// TestShutdownDrain: from the signal until the drain ends, /readyz is 503
// and everything else is served as before; then Serve shuts down.
func TestShutdownDrain(t *testing.T) {
	cfg := testConfig()
	cfg.ShutdownDrain = time.Hour // ended by the test (endDrain), never by the timer
	ts := startServer(t, cfg, nil, nil)
	if got := ts.do(t, rawReq{method: "GET", target: "/readyz"}); got.status != 200 {
		t.Fatalf("/readyz before the signal: %d %s", got.status, got.body)
	}
	ts.cancel() // the signal
	deadline := time.Now().Add(10 * time.Second)
	for ts.do(t, rawReq{method: "GET", target: "/readyz"}).status != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 10 s after the signal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Draining: every other request is still served, new connections too.
	if got := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/k", body: "v"}); got.status != 204 {
		t.Fatalf("PUT while draining: %d %s", got.status, got.body)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k"}); got.status != 200 || got.body != "v" {
		t.Fatalf("GET while draining: %d %q", got.status, got.body)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/livez"}); got.status != 200 {
		t.Fatalf("/livez while draining: %d", got.status)
	}
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned during the drain: %v", err)
	default:
	}
	close(ts.endDrain)
	select {
	case err := <-ts.done:
		close(ts.done) // stop (Cleanup) sees it closed
		if err != nil {
			t.Fatalf("Serve after the drain: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the drain ended")
	}
}

// TestShutdownDrainValidate: the drain is bounded (a second signal does
// not end it).
func TestShutdownDrainValidate(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, maxShutdownDrain + time.Second} {
		cfg := testConfig()
		cfg.ShutdownDrain = d
		if err := cfg.Validate(); err == nil {
			t.Errorf("--shutdown-drain %v accepted", d)
		}
	}
	cfg := testConfig()
	cfg.ShutdownDrain = maxShutdownDrain
	if err := cfg.Validate(); err != nil {
		t.Errorf("--shutdown-drain %v: %v", maxShutdownDrain, err)
	}
}
