package server

// clusterconfig_test.go -- cluster mode's configuration checks, made
// before anything opens.

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/cluster"
)

// TestClusterConfigChecksBeforeOpen: what cluster.Open would refuse is a
// configuration error (exit status 2) from ParseFlags and Validate.
func TestClusterConfigChecksBeforeOpen(t *testing.T) {
	token := strings.Repeat("t", 32)
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"loopback", []string{"--raft-addr", "127.0.0.1:7001"}, true},
		{"wildcard without advertise", []string{"--raft-addr", "0.0.0.0:7001"}, false},
		{"empty host without advertise", []string{"--raft-addr", ":7001"}, false},
		{"ipv6 wildcard without advertise", []string{"--raft-addr", "[::]:7001"}, false},
		{"wildcard with advertise", []string{"--raft-addr", "0.0.0.0:7001", "--raft-advertise", "10.0.0.5:7001"}, true},
		{"advertise a host name", []string{"--raft-addr", "0.0.0.0:7001", "--raft-advertise", "db1.internal:7001"}, true},
		{"advertise a wildcard", []string{"--raft-addr", "0.0.0.0:7001", "--raft-advertise", "0.0.0.0:7001"}, false},
		{"advertise no host", []string{"--raft-addr", "10.0.0.5:7001", "--raft-advertise", ":7001"}, false},
		{"advertise port 0", []string{"--raft-addr", "10.0.0.5:7001", "--raft-advertise", "10.0.0.5:0"}, false},
		{"advertise no port", []string{"--raft-addr", "10.0.0.5:7001", "--raft-advertise", "10.0.0.5"}, false},
		{"token at the Raft limit", []string{"--raft-addr", "127.0.0.1:7001", "--auth-token", strings.Repeat("t", cluster.MaxTokenLen)}, true},
		{"token over the Raft limit", []string{"--raft-addr", "127.0.0.1:7001", "--auth-token", strings.Repeat("t", cluster.MaxTokenLen+1)}, false},
	} {
		args := append([]string{"--node-id", "n1", "--bootstrap"}, tc.args...)
		env := func(k string) (string, bool) {
			if k == "MANTISDB_AUTH_TOKEN" {
				return token, true
			}
			return "", false
		}
		cfg, err := ParseFlags(args, env, io.Discard)
		if err == nil {
			err = cfg.Validate()
		}
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Without cluster mode the token is not a Raft token: no such limit.
	c := DefaultConfig()
	c.AuthToken = strings.Repeat("t", cluster.MaxTokenLen+1)
	if err := c.Validate(); err != nil {
		t.Errorf("long token on a single node: %v", err)
	}
}

// TestAdvertiseWithWildcardHost: a node bound to every interface is named
// to peers and clients by its Raft address's host, not by 0.0.0.0, which
// sent followers' redirects and MOVED replies nowhere.
func TestAdvertiseWithWildcardHost(t *testing.T) {
	for _, tc := range []struct {
		host, raft, raftAdv, http, resp string
	}{
		{"127.0.0.1", "127.0.0.1:7001", "", "127.0.0.1:8080", "127.0.0.1:6380"},
		{"0.0.0.0", "10.0.0.5:7001", "", "10.0.0.5:8080", "10.0.0.5:6380"},
		{"::", "0.0.0.0:7001", "db1.internal:7001", "db1.internal:8080", "db1.internal:6380"},
		{"", "[fd00::5]:7001", "", "[fd00::5]:8080", "[fd00::5]:6380"},
	} {
		cfg := DefaultConfig()
		cfg.Host, cfg.Port, cfg.RESPPort = tc.host, 8080, 6380
		cc := ClusterConfig{NodeID: "n1", RaftAddr: tc.raft, RaftAdvertise: tc.raftAdv}
		if got := cc.advertise(&cfg); got != tc.http {
			t.Errorf("--host %q --raft-addr %s: HTTP advertised as %s, want %s", tc.host, tc.raft, got, tc.http)
		}
		if got := cc.respAdvertise(&cfg); got != tc.resp {
			t.Errorf("--host %q --raft-addr %s: RESP advertised as %s, want %s", tc.host, tc.raft, got, tc.resp)
		}
	}
}
