// pipeline.go -- serving a pipelined burst together.  A run of
// consecutive GET and MGET commands becomes one Store.ViewMany (one cgo
// crossing for the native engine); a run of consecutive plain SET and
// MSET commands becomes one Store.Apply (one log record, one group-commit
// wait); a run of other write commands (INCR, APPEND, SET with options,
// ...) runs inside one Store.Update over all their keys, so it too is one
// log record.  Each command stays atomic on its own (a batch is applied
// all-or-nothing, so more than atomic), and replies are written in the
// order of the commands.  Anything else, and any command that would fail
// (wrong arity, a bad size), ends the run and is served alone by exec1.
package resp

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tidwall/redcon"

	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

type redconCommand = redcon.Command

// isName reports whether arg is name (given in lower case), in any case.
func isName(arg []byte, name string) bool {
	return len(arg) == len(name) && (string(arg) == name || bytes.EqualFold(arg, []byte(name)))
}

// runReads serves the leading run of GET/MGET commands of cmds and
// returns how many it served (0: cmds[0] is not one).
func (s *Server) runReads(c *client, cmds []redconCommand) int {
	// execBurst checks the replies' size between runs.  (In a cluster a
	// run costs one leadership confirmation: not split.)
	limit := maxReadRun
	if s.cfg.Cluster != nil {
		limit = -1
	}
	n, nkeys := readPrefix(cmds, limit)
	if n == 0 {
		return 0
	}
	if msg := s.gate(c, s.cmds["get"], false); msg != "" {
		// One confirmation answers the whole run (cluster.go).
		for range cmds[:n] {
			c.r.err(msg)
		}
		return n
	}
	start := time.Now()
	if n == 1 && nkeys == 1 && !isName(cmds[0].Args[0], "mget") { // one GET: a plain View
		s.get(c, cmds[0].Args[1])
	} else {
		keys := make([][]byte, 0, nkeys)
		for _, cmd := range cmds[:n] {
			keys = append(keys, cmd.Args[1:]...)
		}
		pos, k := 0, 0 // command being answered, keys of it left
		err := s.store.ViewMany(keys, func(i int, v []byte, err error) error {
			if k == 0 {
				a := cmds[pos].Args
				if isName(a[0], "mget") {
					c.r.array(len(a) - 1)
				}
				k = len(a) - 1
				pos++
			}
			k--
			if err == nil {
				c.r.bulk(v)
			} else {
				c.r.null() // absent, or a key no engine can hold: Redis's nil
			}
			return nil
		})
		if err != nil {
			// Nothing was answered (ViewMany fails only before its walk):
			// serve them one by one for per-command errors.
			for _, cmd := range cmds[:n] {
				s.exec1(c, cmd.Args)
			}
			return n
		}
	}
	s.countRun(c, cmds[:n], "get", "mget", time.Since(start), false)
	return n
}

// readPrefix returns how many leading commands of cmds are GET or MGET,
// and their keys, ending the run before a command when the keys before it
// reach limit (negative: no limit).
func readPrefix(cmds []redconCommand, limit int) (n, nkeys int) {
	for _, cmd := range cmds {
		a := cmd.Args
		k := 0
		switch {
		case len(a) == 2 && isName(a[0], "get"):
			k = 1
		case len(a) >= 2 && isName(a[0], "mget"):
			k = len(a) - 1
		default:
			return n, nkeys
		}
		if limit >= 0 && nkeys >= limit && n > 0 {
			return n, nkeys
		}
		n, nkeys = n+1, nkeys+k
	}
	return n, nkeys
}

// countRun counts a run of n commands served together, each either one
// (name) or two (name2), as count does per command, with the run's time d
// shared evenly: one update of each shared counter per name, not one per
// command, so a pipelined burst does not contend on them per command.
func (s *Server) countRun(c *client, cmds []redconCommand, name, name2 string, d time.Duration, failed bool) {
	n2 := 0
	for _, cmd := range cmds {
		if isName(cmd.Args[0], name2) {
			n2++
		}
	}
	n1 := len(cmds) - n2
	per := d / time.Duration(len(cmds))
	// The kind of the run's last command is counted last: it is the
	// client's last command (CLIENT LIST's cmd=).
	first, last, nf, nl := name, name2, n1, n2
	if !isName(cmds[len(cmds)-1].Args[0], name2) {
		first, last, nf, nl = name2, name, n2, n1
	}
	if nf > 0 {
		s.count(c, s.cmds[first], nf, per*time.Duration(nf), failed)
	}
	s.count(c, s.cmds[last], nl, per*time.Duration(nl), failed)
}

// get answers one GET through View (no copy of the value).
func (s *Server) get(c *client, key []byte) {
	err := s.store.View(key, func(v []byte) error {
		c.r.bulk(v)
		return nil
	})
	switch {
	case err == nil:
	case isNotFound(err), isKeyLimit(err):
		c.r.null()
	default:
		c.r.err(storeError(err))
	}
}

// runWrites serves the leading run of plain SET (no options) and MSET
// commands of cmds as one batch and returns how many it served.
func (s *Server) runWrites(c *client, cmds []redconCommand) int {
	n, ops := 0, 0
	for _, cmd := range cmds {
		a := cmd.Args
		if !plainWrite(a) || !s.fits(a[1:]) {
			break
		}
		ops += (len(a) - 1) / 2
		n++
	}
	if n == 0 {
		return 0
	}
	start := time.Now()
	var err error
	if n == 1 && ops == 1 {
		err = s.store.Put(cmds[0].Args[1], cmds[0].Args[2])
	} else {
		b := batchPool.Get().(*storage.Batch)
		putPlain(b, cmds[:n])
		err = s.store.Apply(b)
		putBatch(b)
	}
	if n > 1 && errors.Is(err, storage.ErrBatchTooLarge) {
		s.execEach(c, cmds[:n]) // too much together, maybe not alone
		return n
	}
	if err != nil {
		for range cmds[:n] {
			c.r.err(storeError(err))
		}
	} else {
		for range cmds[:n] {
			c.r.ok()
		}
	}
	s.countRun(c, cmds[:n], "set", "mset", time.Since(start), err != nil)
	return n
}

// putPlain adds the key/value pairs of plain SETs and MSETs (plainWrite)
// to b.
func putPlain(b *storage.Batch, cmds []redconCommand) {
	for _, cmd := range cmds {
		for i := 1; i+1 < len(cmd.Args); i += 2 {
			b.Put(cmd.Args[i], cmd.Args[i+1])
		}
	}
}

// batchPool recycles runWrites' batches.  Apply is done with a batch
// when it returns (the log record and the index hold copies), and the
// arguments its ops point at belong to the connection's read buffer,
// so nothing may keep them past the burst anyway.
var batchPool = sync.Pool{New: func() any { return new(storage.Batch) }}

// maxPooledOps bounds the ops a pooled batch keeps (a huge MSET's list
// is let go rather than pinned).
const maxPooledOps = 1024

// putBatch drops b's references to the arguments and pools it.
func putBatch(b *storage.Batch) {
	if cap(b.Ops) > maxPooledOps {
		return
	}
	clear(b.Ops)
	b.Reset()
	batchPool.Put(b)
}

// fits reports whether key/value pairs are within the engine's limits, so
// a batch of them cannot fail on one command's input.
func (s *Server) fits(kvs [][]byte) bool {
	for i := 0; i+1 < len(kvs); i += 2 {
		if !s.validKey(kvs[i]) || len(kvs[i+1]) > s.cfg.MaxValueSize {
			return false
		}
	}
	return true
}

// validKey reports whether the Store accepts key: within the limits, and
// in cluster mode outside the cluster's reserved prefix.
func (s *Server) validKey(k []byte) bool {
	return len(k) > 0 && len(k) <= s.cfg.MaxKeySize && (s.cfg.Cluster == nil || !cluster.IsReserved(k))
}

// maxReadRun bounds the keys of one run of reads (a run holds at least
// one command), so the size of the replies is checked between runs.
const maxReadRun = 256

// maxUpdateRun bounds the commands of one grouped Update, and so how long
// it holds its keys' locks.
const maxUpdateRun = 256

// runUpdates serves the leading run of keyed write commands of cmds (at
// least two; a single one is left to exec1) inside one Store.Update: each
// runs against the transaction in order, seeing the writes of those
// before it, and their writes are applied together.  A command that
// fails replies its error and writes nothing, as it would alone.  If the
// batch is too large, each command is served alone (execEach); if it
// cannot be applied otherwise, every command of the run gets that
// error.  The run's bookkeeping (its key list, the exec each command
// runs with, its counters) is done once per run, not per command.
func (s *Server) runUpdates(c *client, cmds []redconCommand) int {
	u := updPool.Get().(*updRun)
	defer u.release()
	n := 0
	for _, rc := range cmds {
		if n == maxUpdateRun {
			break
		}
		a := rc.Args
		cmd := s.keyedWrite(a)
		if cmd == nil {
			break
		}
		mark := len(u.keys)
		u.keys = cmd.appendKeys(u.keys, a)
		if !s.validKeys(u.keys[mark:]) {
			u.keys = u.keys[:mark]
			break // its own error, from exec1, must not fail the others
		}
		u.cmds = append(u.cmds, cmd)
		n++
	}
	if n < 2 {
		return 0
	}
	for range n {
		u.failed = append(u.failed, false)
	}
	mark := len(c.r.b)
	start := time.Now()
	if s.addRun(c, cmds[:n], u) {
		countStretches(s, c, u.cmds[:n], u.failed[:n], time.Since(start)/time.Duration(n))
		return n
	}
	err := s.store.Update(u.keys, func(tx *storage.Txn) error {
		for i, rc := range cmds[:n] {
			u.x = exec{s: s, c: c, r: &c.r, cmd: u.cmds[i], args: rc.Args, kv: tx}
			u.cmds[i].run(&u.x)
			u.failed[i] = u.x.failed
		}
		return nil
	})
	if errors.Is(err, storage.ErrBatchTooLarge) {
		c.r.b = c.r.b[:mark] // nothing was applied: no answer stands
		s.execEach(c, cmds[:n])
		return n
	}
	if err != nil {
		c.r.b = c.r.b[:mark]
		for i := range cmds[:n] {
			c.r.err(storeError(err))
			u.failed[i] = true
		}
	}
	countStretches(s, c, u.cmds[:n], u.failed[:n], time.Since(start)/time.Duration(n))
	return n
}

// addRun serves a run of increments with one AddInts, as addTurn serves
// a turn's (u holds the run's keys and commands); false, having done
// nothing, when a command of it is not one incrDelta takes.
func (s *Server) addRun(c *client, cmds []redconCommand, u *updRun) bool {
	if s.adder == nil {
		return false
	}
	u.deltas = u.deltas[:0]
	for i, rc := range cmds {
		d, ok := incrDelta(u.cmds[i], rc.Args)
		if !ok {
			return false
		}
		u.deltas = append(u.deltas, d)
	}
	u.adds = slices.Grow(u.adds[:0], len(cmds))[:len(cmds)]
	_ = s.adder.AddInts(u.keys, u.deltas, u.adds) // every key's result says what it got
	for i := range cmds {
		u.failed[i] = replyAdd(&c.r, u.adds[i])
	}
	return true
}

// execEach serves cmds one by one (exec1, which counts each): a run whose
// writes together pass the engine's batch limit (ErrBatchTooLarge) is
// served as it would be unpipelined, where only a command too large on
// its own gets that error.
func (s *Server) execEach(c *client, cmds []redconCommand) {
	for _, rc := range cmds {
		s.exec1(c, rc.Args)
	}
}

// countStretches counts a run of commands served together: one count per
// stretch of the same command and outcome, each command's time per; the
// last stretch is counted last, so the client's last command (CLIENT
// LIST's cmd=) is the run's last.
func countStretches(s *Server, c *client, exe []*command, failed []bool, per time.Duration) {
	for i := 0; i < len(exe); {
		j := i + 1
		for j < len(exe) && exe[j] == exe[i] && failed[j] == failed[i] {
			j++
		}
		s.count(c, exe[i], j-i, per*time.Duration(j-i), failed[i])
		i = j
	}
}

// plainWrite reports whether a is a SET without options or an MSET:
// the writes served as one batch (runWrites, a turn's flushPlain).
func plainWrite(a [][]byte) bool {
	return len(a) == 3 && isName(a[0], "set") || len(a) >= 3 && len(a)%2 == 1 && isName(a[0], "mset")
}

// keyedWrite returns a's command when it is a keyed write command with a
// valid arity, one that runs inside an Update (runUpdates, a turn's
// flushUpdates); nil otherwise.
func (s *Server) keyedWrite(a [][]byte) *command {
	if len(a) == 0 {
		return nil
	}
	if cmd := s.lookup(a[0]); writesKeys(cmd, a) {
		return cmd
	}
	return nil
}

// writesKeys reports whether cmd, a's command (nil: unknown), is as
// keyedWrite returns.
func writesKeys(cmd *command, a [][]byte) bool {
	return cmd != nil && cmd.flags&(fWrite|fKeyless) == fWrite && cmd.arityOK(len(a))
}

// arityOK reports whether n arguments (the name included) fit cmd's
// arity: exactly arity, or at least -arity when it is negative.
func (cmd *command) arityOK(n int) bool {
	return cmd.arity > 0 && n == cmd.arity || cmd.arity < 0 && n >= -cmd.arity
}

// keyedRead returns a's command when it is a keyed command that writes
// nothing, with a valid arity: one a turn's write run may include, run
// inside its Update against the transaction, as EXEC runs it (turn.go).
// WATCH (which must read outside any transaction) and the commands MULTI
// refuses are not.
func (s *Server) keyedRead(a [][]byte) *command {
	if len(a) == 0 {
		return nil
	}
	if cmd := s.lookup(a[0]); readsKeys(cmd, a) {
		return cmd
	}
	return nil
}

// readsKeys reports whether cmd, a's command (nil: unknown), is as
// keyedRead returns.
func readsKeys(cmd *command, a [][]byte) bool {
	return cmd != nil && cmd.flags&(fWrite|fKeyless|fMultiCtl|fNoMulti|fAdmin) == 0 && cmd.arityOK(len(a))
}

// updRun is runUpdates' scratch, pooled: the keys and commands of the
// run, whether each failed, and the exec each runs with.
type updRun struct {
	keys   [][]byte
	cmds   []*command
	failed []bool
	x      exec
	deltas []int64             // addRun's
	adds   []storage.AddResult // addRun's
}

var updPool = sync.Pool{New: func() any { return new(updRun) }}

// release drops u's references to the connection and its arguments and
// pools it, unless a big run grew it past what is worth keeping.
func (u *updRun) release() {
	if cap(u.keys) > 4*maxUpdateRun {
		return
	}
	clear(u.keys)
	clear(u.cmds)
	clear(u.adds)
	u.keys, u.cmds, u.failed, u.deltas, u.adds = u.keys[:0], u.cmds[:0], u.failed[:0], u.deltas[:0], u.adds[:0]
	u.x = exec{}
	updPool.Put(u)
}

// validKeys reports whether the engine accepts every key of keys.
func (s *Server) validKeys(keys [][]byte) bool {
	for _, k := range keys {
		if !s.validKey(k) {
			return false
		}
	}
	return true
}
