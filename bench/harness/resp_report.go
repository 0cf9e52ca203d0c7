// resp_report.go -- the RESP rows of MantisDB and redis-server side by
// side, each MantisDB setup beside the Redis setup that keeps data the
// same way.  The server group's table takes ratios against the HTTP
// server, which has no RESP-only rows (pipelined, INCR, MSET,
// transactions), so the question those rows answer -- how close the RESP
// listener comes to redis-server on the same client and workload -- gets
// its own table.
package harness

import (
	"fmt"
	"io"
)

// RESPSubject and RedisSubject are two of the subjects the table compares
// (respPairs has all four).
const (
	RESPSubject  = "mantisdb-server-resp"
	RedisSubject = "redis"
)

// respPairs pairs each MantisDB RESP setup with the redis-server setup
// that keeps data the same way, so that each ratio compares like with
// like: nothing on disk, a log written to the OS without fsync, an fsync
// per acknowledged write.  RedisSubject holds two setups: its no-sync rows
// run without persistence, its sync-on-commit rows with appendfsync
// always (redis_suite.go).
var respPairs = []struct {
	durability                             string
	mantis, mantisSetup, redis, redisSetup string
}{
	{"no-sync", RESPMemorySubject, "--in-memory", RedisSubject, "no persistence"},
	{"no-sync", RESPSubject, "--sync none", RedisAOFSubject, "AOF, appendfsync no"},
	{"sync-on-commit", RESPSubject, "--sync always", RedisSubject, "AOF, appendfsync always"},
}

// writeRESPTable writes one line per MantisDB RESP row of a respPairs
// setup: its ops/s and that of the paired redis-server setup on the same
// row, their ratio (>1: MantisDB faster) and both p99s.  Nothing is
// written without MantisDB RESP rows.
func (r *Result) writeRESPTable(w io.Writer) {
	var lines []string
	for _, p := range respPairs {
		for _, s := range r.Rows {
			if s.Subject != p.mantis || s.Durability != p.durability {
				continue
			}
			red, ok := r.findKey(s.Key(), p.redis)
			ratio, p99 := "–", "–"
			if ok && s.Error == "" && red.Error == "" && s.OpsPerSec > 0 && red.OpsPerSec > 0 {
				ratio = fmt.Sprintf("%.2f", s.OpsPerSec/red.OpsPerSec)
				p99 = FormatNs(s.P99ns) + " / " + FormatNs(red.P99ns)
			}
			lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", s.Label(),
				p.mantisSetup, respCell(s, true), p.redisSetup, respCell(red, ok), ratio, p99))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "RESP: MantisDB beside redis-server, the same client and workload on each (an op of `tx` is MULTI, INCR, INCR, EXEC; of `pipe-set-get` a pipeline of SET, GET), each MantisDB setup beside the Redis setup that keeps data the same way: %s (--in-memory) beside %s without persistence, %s --sync none beside %s (an AOF never fsynced), --sync always beside appendfsync always.\n\n", RESPMemorySubject, RedisSubject, RESPSubject, RedisAOFSubject)
	fmt.Fprintf(w, "| row | MantisDB | ops/s | Redis | ops/s | MantisDB / Redis | p99 MantisDB / Redis |\n|---|---|---:|---|---:|---:|---|\n")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
}

// respCell is a RESP table cell: x's ops/s, or why there is none.
func respCell(x Summary, ok bool) string {
	switch {
	case !ok:
		return "–"
	case x.Error != "":
		return "FAILED"
	}
	return FormatOps(x.OpsPerSec)
}

// findKey returns the summary of subject on the row with key k.
func (r *Result) findKey(k, subject string) (Summary, bool) {
	for _, s := range r.Rows {
		if s.Subject == subject && s.Key() == k {
			return s, true
		}
	}
	return Summary{}, false
}
