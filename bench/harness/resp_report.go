// resp_report.go -- the RESP rows of MantisDB and redis-server side by
// side.  The server group's table takes ratios against the HTTP server,
// which has no RESP-only rows (pipelined, INCR, MSET, transactions), so
// the question those rows answer -- how close the RESP listener comes to
// redis-server on the same client and workload -- gets its own table.
package harness

import (
	"fmt"
	"io"
)

// RESPSubject and RedisSubject are the subjects the table compares.
const (
	RESPSubject  = "mantisdb-server-resp"
	RedisSubject = "redis"
)

// writeRESPTable writes one line per MantisDB RESP row: its ops/s and
// redis-server's on the same row, their ratio (>1: MantisDB faster) and
// both p99s, then the same against redis-server logging to its AOF
// without fsync (RedisAOFSubject; no-sync rows only).  Nothing is written
// without MantisDB RESP rows.
func (r *Result) writeRESPTable(w io.Writer) {
	var lines []string
	for _, s := range r.Rows {
		if s.Subject != RESPSubject {
			continue
		}
		line := fmt.Sprintf("| %s | %s |", s.Label(), respCell(s, true))
		for _, peer := range []string{RedisSubject, RedisAOFSubject} {
			red, ok := r.findKey(s.Key(), peer)
			ratio, p99 := "–", "–"
			if ok && s.Error == "" && red.Error == "" && s.OpsPerSec > 0 && red.OpsPerSec > 0 {
				ratio = fmt.Sprintf("%.2f", s.OpsPerSec/red.OpsPerSec)
				p99 = FormatNs(s.P99ns) + " / " + FormatNs(red.P99ns)
			}
			line += fmt.Sprintf(" %s | %s | %s |", respCell(red, ok), ratio, p99)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "RESP: MantisDB beside redis-server, the same client and workload on each (an op of `tx` is MULTI, INCR, INCR, EXEC; of `pipe-set-get` a pipeline of SET, GET). %s logs nothing; %s logs every write to its AOF without fsync (appendfsync no), as MantisDB's no-sync rows (--sync none) do.\n\n", RedisSubject, RedisAOFSubject)
	fmt.Fprintf(w, "| row | %s ops/s | %s ops/s | MantisDB / Redis | p99 MantisDB / Redis | %s ops/s | MantisDB / Redis AOF | p99 MantisDB / Redis AOF |\n|---|---:|---:|---:|---|---:|---:|---|\n", RESPSubject, RedisSubject, RedisAOFSubject)
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
