// resp_watch_test.go -- a RESP WATCH is aborted by an HTTP write of the
// watched key, even one that writes the value the key already holds.
package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRESPWatchAbortedByHTTPWrite(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	rdb := startRESP(t, ts)
	ctx := context.Background()
	if err := rdb.Set(ctx, "w", "same", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		req, _ := http.NewRequest(http.MethodPut, "http://"+ts.addr+"/api/v1/kv/w", strings.NewReader("same"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT: %s", resp.Status)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "w", "tx", 0)
			return nil
		})
		return err
	}, "w")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after an HTTP write of the watched key: %v, want an aborted transaction", err)
	}
	if v, err := rdb.Get(ctx, "w").Result(); err != nil || v != "same" {
		t.Fatalf("w = %q, %v; want the HTTP write", v, err)
	}
}
