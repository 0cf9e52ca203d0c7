// Command respmix runs one of the bench harness's go-redis workloads
// (harness.RunRESPMix, resp_mix.go) against any RESP server and prints
// its figures: the two workloads redis-benchmark cannot send, a MULTI/EXEC
// transaction (-mode tx: MULTI, INCR, INCR, EXEC) and a pipeline that
// reads what it writes (-mode pipe: SET, GET), each client on one
// connection, ops split across the clients, every reply checked, e.g.
//
//	respmix -addr 127.0.0.1:6380 -clients 40 -ops 20000 -mode tx
//
// `make bench` runs the same code as the tx and pipe-set-get rows of the
// durable RESP sections (MantisDB --sync always, redis-server appendfsync
// always); this command is for one server at a time by hand.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mantisdb/mantisdb/bench/harness"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6380", "server address (host:port)")
	clients := flag.Int("clients", harness.RedisClients, "concurrent clients, one connection each")
	ops := flag.Int("ops", 20000, "transactions (tx) or pipelines (pipe), split across the clients")
	mode := flag.String("mode", "tx", "tx (MULTI INCR INCR EXEC) or pipe (SET, GET)")
	keys := flag.Int("keys", 200000, "distinct keys")
	flag.Parse()
	m, err := harness.ParseMixMode(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "respmix: -mode:", err)
		os.Exit(2)
	}
	f, err := harness.RunRESPMix(*addr, m, *clients, *ops, *keys)
	if f.Ops > 0 {
		fmt.Printf("%s: %d ops in %.2fs, %.0f/s, p50 %s, p99 %s, p99.9 %s\n", m.Workload(), f.Ops, f.Seconds,
			f.OpsPerSec, harness.FormatNs(f.P50ns), harness.FormatNs(f.P99ns), harness.FormatNs(f.P999ns))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "respmix:", err)
		os.Exit(1)
	}
}
