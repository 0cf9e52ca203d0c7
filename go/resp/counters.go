// counters.go -- the command counters (INFO stats and commandstats, the
// server's /api/v1/stats and /metrics): kept per connection, summed on
// demand.
//
// Each connection counts the commands it runs in its own slots, one per
// command of the table (cmdCounter).  Only the connection's goroutine
// writes them, so a count is an add to memory no other core writes: the
// connections never contend on a shared counter line, pipelined or not.
// A sum (commandTotals) walks, under s.mu, the open connections and the
// totals of the closed ones (retired): a connection's counts move into
// retired in closed(), under s.mu, at the moment it leaves the set of
// open ones, and it counts nothing afterwards, so every command that
// completed is in a sum exactly once.  CONFIG RESETSTAT records the sums
// as a base that INFO and CommandCalls subtract.
package resp

import (
	"sort"
	"sync/atomic"
	"time"
)

// cmdCounter is one command's counts on one connection; written only by
// the connection's goroutine, read by sums.
type cmdCounter struct {
	calls, usec, failed atomic.Uint64
}

// cmdTotals is one command's counts summed over connections.
type cmdTotals struct {
	calls, usec, failed uint64
}

// indexCommands numbers the table's commands (cmd.id), in name order,
// and returns them.
func indexCommands(cmds map[string]*command) []*command {
	seen := map[*command]bool{}
	var out []*command
	for _, cmd := range cmds {
		if !seen[cmd] {
			seen[cmd] = true
			out = append(out, cmd)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for i, cmd := range out {
		cmd.id = i
	}
	return out
}

// count updates c's counters for n calls of cmd taking d in all.
func (s *Server) count(c *client, cmd *command, n int, d time.Duration, failed bool) {
	k := &c.counts[cmd.id]
	k.calls.Add(uint64(n))
	k.usec.Add(uint64(d.Microseconds()))
	if failed {
		k.failed.Add(uint64(n))
	}
	c.mu.Lock()
	c.lastCmd = cmd.name
	c.lastAt = time.Now()
	c.mu.Unlock()
}

// retire moves c's counts into s.retired.  The caller holds s.mu and
// removes c from the open connections in the same critical section.
func (s *Server) retire(c *client) {
	for i := range c.counts {
		k := &c.counts[i]
		s.retired[i].calls += k.calls.Load()
		s.retired[i].usec += k.usec.Load()
		s.retired[i].failed += k.failed.Load()
	}
	c.counts = nil // a second closed() (after shedOne) adds nothing
}

// rawTotals sums every connection's counts, open and closed, by command
// id (no RESETSTAT base subtracted).  The caller holds s.mu.
func (s *Server) rawTotals() []cmdTotals {
	out := make([]cmdTotals, len(s.cmdList))
	copy(out, s.retired)
	add := func(c *client) {
		for i := range c.counts {
			k := &c.counts[i]
			out[i].calls += k.calls.Load()
			out[i].usec += k.usec.Load()
			out[i].failed += k.failed.Load()
		}
	}
	for c := range s.clients {
		add(c)
	}
	for c := range s.shedding {
		add(c)
	}
	return out
}

// commandTotals is rawTotals less the base CONFIG RESETSTAT recorded.
func (s *Server) commandTotals() []cmdTotals {
	_, out := s.commandSnapshot()
	return out
}

// commandSnapshot returns, from one sum, every command run since the
// server started (total_commands_processed: RESETSTAT does not reset it)
// and commandTotals, so INFO's numbers agree with each other.
func (s *Server) commandSnapshot() (total uint64, totals []cmdTotals) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.rawTotals()
	for i := range out {
		total += out[i].calls
		out[i].calls -= s.statBase[i].calls
		out[i].usec -= s.statBase[i].usec
		out[i].failed -= s.statBase[i].failed
	}
	return total, out
}

// resetStats is CONFIG RESETSTAT: later reports count from now.
func (s *Server) resetStats() {
	s.mu.Lock()
	s.statBase = s.rawTotals()
	s.mu.Unlock()
}

// commandsTotal is every command run since the server started
// (total_commands_processed; RESETSTAT does not reset it).
func (s *Server) commandsTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, t := range s.rawTotals() {
		n += t.calls
	}
	return n
}
