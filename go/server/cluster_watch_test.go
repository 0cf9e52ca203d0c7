// cluster_watch_test.go -- WATCH on a cluster's leader follows the
// replicated keyspace's write versions (go/cluster/version.go): a write
// that leaves the value as it was, through RESP or HTTP, and a FLUSHDB
// abort EXEC; an untouched key lets it through.
package server

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestClusterRESPWatch(t *testing.T) {
	l := clusterLeader(t, startRESPCluster(t))
	ctx := context.Background()
	watcher, other := respClient(t, l), respClient(t, l)
	cases := []struct {
		name  string
		touch func() error
		abort bool
	}{
		{"untouched", func() error { return nil }, false},
		{"RESP write of the same value", func() error { return other.Set(ctx, "w", "v", 0).Err() }, true},
		{"HTTP write of the same value", func() error {
			if code, _, body := call(t, "PUT", "http://"+l.http+"/api/v1/kv/w", "v"); code != 204 {
				t.Fatalf("HTTP PUT: %d %s", code, body)
			}
			return nil
		}, true},
		{"FLUSHDB, then the same value again", func() error {
			if err := other.FlushDB(ctx).Err(); err != nil {
				return err
			}
			return other.Set(ctx, "w", "v", 0).Err()
		}, true},
	}
	for _, tc := range cases {
		if err := other.Set(ctx, "w", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		err := watcher.Watch(ctx, func(tx *redis.Tx) error {
			if err := tc.touch(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "w", "tx", 0)
				return nil
			})
			return err
		}, "w")
		switch aborted := errors.Is(err, redis.TxFailedErr); {
		case err != nil && !aborted:
			t.Fatalf("%s: %v", tc.name, err)
		case aborted != tc.abort:
			t.Fatalf("%s: EXEC aborted = %v, want %v", tc.name, aborted, tc.abort)
		}
	}
}
