package server

// readyz_test.go -- /readyz in cluster mode.

import (
	"fmt"
	"testing"

	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

type fakeHealth struct {
	leader   bool
	applyErr error
}

func (f fakeHealth) HasLeader() bool   { return f.leader }
func (f fakeHealth) ApplyError() error { return f.applyErr }

// TestClusterUnready: /readyz is 503 on a node that knows no leader and
// on one whose state machine stopped applying, leader known or not.
func TestClusterUnready(t *testing.T) {
	failed := fmt.Errorf("%w: entry 7: %w", cluster.ErrApplyFailed, storage.ErrReadOnly)
	for _, tc := range []struct {
		name  string
		h     fakeHealth
		ready bool
	}{
		{"leader known", fakeHealth{leader: true}, true},
		{"no leader", fakeHealth{}, false},
		{"apply failed, leader known", fakeHealth{leader: true, applyErr: failed}, false},
		{"apply failed, no leader", fakeHealth{applyErr: failed}, false},
	} {
		if got := clusterUnready(tc.h); (got == "") != tc.ready {
			t.Errorf("%s: unready %q, want ready=%v", tc.name, got, tc.ready)
		}
	}
}
