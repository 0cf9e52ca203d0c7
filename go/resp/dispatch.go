// dispatch.go -- from a parsed command to its reply: lookup, arity,
// authentication, MULTI queueing, and where a command runs: keyless ones
// directly, read-only ones against the engine, writes inside one
// Store.Update over the keys the command names (so each is atomic against
// every other writer).  A pipelined burst goes through pipeline.go first.
package resp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// cmdFlag describes a command (COMMAND INFO reports them as Redis does).
type cmdFlag uint16

const (
	fWrite    cmdFlag = 1 << iota // modifies the keyspace
	fReadonly                     // reads the keyspace
	fFast                         // O(1) or O(log n)
	fNoAuth                       // allowed before AUTH
	fNoMulti                      // refused inside MULTI
	fMultiCtl                     // runs at once even inside MULTI (not queued)
	fKeyless                      // takes no key arguments: runs without a kv
	fAdmin
	fLoading
	fStale
)

// command is one entry of the command table.
type command struct {
	name  string // lower case
	arity int    // Redis convention: n exact, -n at least n (name included)
	flags cmdFlag
	// first, last, step: the key arguments (Redis's key spec): last -1 is
	// the last argument; first 0 means no keys.
	first, last, step int
	group, summary    string
	run               func(x *exec)

	id int // index of its counters (counters.go)
}

// keys returns the key arguments of args (which passed the arity check).
func (cmd *command) keys(args [][]byte) [][]byte {
	if cmd.first == 0 || cmd.first >= len(args) {
		return nil
	}
	return cmd.appendKeys(make([][]byte, 0, len(args)-cmd.first), args)
}

// appendKeys appends the key arguments of args (which passed the arity
// check) to dst.
func (cmd *command) appendKeys(dst [][]byte, args [][]byte) [][]byte {
	if cmd.first == 0 {
		return dst
	}
	last := cmd.last
	if last < 0 {
		last = len(args) + last
	}
	for i := cmd.first; i <= last && i < len(args); i += cmd.step {
		dst = append(dst, args[i])
	}
	return dst
}

// kv is the keyspace a keyed command runs against: a storage.Txn inside
// Update (writes), or the engine itself for read-only commands.
type kv interface {
	Get(key []byte) (storage.Entry, error)
	Put(key, value []byte, expiresAt int64) error
	Delete(key []byte) error
	Now() int64
}

// readKV is the kv of read-only commands outside a transaction.
type readKV struct {
	st  Store
	now func() time.Time // Config.Clock
}

var errReadOnlyKV = errors.New("resp: write through a read-only command (bug)")

func (k readKV) Get(key []byte) (storage.Entry, error)  { return k.st.GetEntry(key) }
func (k readKV) Put(key, value []byte, exp int64) error { return errReadOnlyKV }
func (k readKV) Delete(key []byte) error                { return errReadOnlyKV }
func (k readKV) Now() int64                             { return k.now().UnixNano() }

// exec is one command being run.
type exec struct {
	s      *Server
	c      *client
	r      *reply
	cmd    *command
	args   [][]byte
	kv     kv
	tx     *storage.Txn // the EXEC's a keyspace-wide read runs in (space)
	vals   *[]byte      // the turn's arena for staged values (appendInt); nil: none
	failed bool
}

// appendInt returns n formatted as a value to stage: in the turn's arena
// when the command runs in a loop turn's Update (which has copied it into
// the engine before the turn resets the arena), else in a new slice.
func (x *exec) appendInt(n int64) []byte {
	if x.vals == nil {
		return strconv.AppendInt(nil, n, 10)
	}
	at := len(*x.vals)
	*x.vals = strconv.AppendInt(*x.vals, n, 10)
	return (*x.vals)[at:len(*x.vals):len(*x.vals)]
}

// fail writes an error reply.
func (x *exec) fail(msg string) {
	x.r.err(msg)
	x.failed = true
}

// lookup finds a command by name, in any case, without allocating for
// the all-lower and all-upper spellings clients send.
func (s *Server) lookup(name []byte) *command {
	if cmd, ok := s.cmds[string(name)]; ok {
		return cmd
	}
	return s.cmds[strings.ToLower(string(name))]
}

// unknownCommand is Redis's reply to a command it does not have, built
// as processCommand builds it: the name cut to 128 bytes, then the
// arguments, quoted, while they fill less than 128 bytes, each cut to
// what is left of the 128.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ERR unknown command '%s', with args beginning with: ", clip(args[0]))
	n := 0 // bytes of the quoted arguments
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		a = cstr(a)
		a = a[:min(len(a), 128-n)]
		fmt.Fprintf(&b, "'%s' ", a)
		n += len(a) + 3
	}
	return b.String()
}

// clip is an argument as Redis's "%.128s" prints it into an error: up to
// its first NUL and at most 128 bytes.
func clip(b []byte) []byte {
	b = cstr(b)
	if len(b) > 128 {
		return b[:128]
	}
	return b
}

// cstr is an argument as Redis's "%s" prints it into an error: up to its
// first NUL, where a C string ends.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func arityError(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

// execBurst serves a burst of commands in order, grouping runs of plain
// reads and writes (pipeline.go).
func (s *Server) execBurst(c *client, cmds []redconCommand) {
	if c.deferred {
		// Its deferred run is answered first, ahead of this burst's
		// replies in the same write (turn.go).
		s.flushTurn(c.lp.turn, c)
		c.lp.kept = len(c.r.b)
	}
	for i := 0; i < len(cmds) && !c.quit; { // nothing runs after QUIT
		if c.unsent+len(c.r.b) > s.cfg.MaxPendingReplies {
			// A burst whose replies outgrow the limit: the client is
			// closed (slow) rather than the server buffering without
			// bound; the commands after this point do not run.
			c.slow, c.quit = true, true
			break
		}
		if c.lp != nil && !c.lp.suspended {
			if c.authed && s.deferRun(c, cmds[i:]) {
				return // the burst's tail waits for the loop's turn (turn.go)
			}
			if s.offload(c, cmds[i:]) {
				return // the rest runs on a goroutine of its own (offload.go)
			}
		}
		if !c.multi && c.authed {
			if n := s.runReads(c, cmds[i:]); n > 0 {
				i += n
				continue
			}
			// A follower refuses writes one by one, in exec1 (cluster.go).
			if s.cfg.Cluster == nil || s.cfg.Cluster.IsLeader() {
				if n := s.runWrites(c, cmds[i:]); n > 0 {
					i += n
					continue
				}
				if n := s.runUpdates(c, cmds[i:]); n > 0 {
					i += n
					continue
				}
			}
		}
		s.exec1(c, cmds[i].Args)
		i++
	}
}

// exec1 serves one command.
func (s *Server) exec1(c *client, args [][]byte) {
	if len(args) == 0 {
		return
	}
	cmd := s.lookup(args[0])
	switch {
	case cmd == nil:
		c.r.err(unknownCommand(args))
		if c.multi {
			c.dirty = true
		}
		return
	case !cmd.arityOK(len(args)) && cmd.name == "exec":
		// Redis aborts the transaction whenever it rejects an EXEC
		// (execCommandAbort), in MULTI or not: the queue and the
		// WATCHes are dropped and the client leaves MULTI.
		c.resetMulti()
		c.r.err("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(arityError(cmd.name), "ERR "))
		return
	case !cmd.arityOK(len(args)):
		c.r.err(arityError(cmd.name))
		if c.multi {
			c.dirty = true
		}
		return
	case !c.authed && cmd.flags&fNoAuth == 0:
		c.r.err("NOAUTH Authentication required.")
		return
	}
	queueing := c.multi && cmd.flags&fMultiCtl == 0
	if msg := s.gate(c, cmd, queueing); msg != "" {
		c.r.err(msg)
		if queueing {
			c.dirty = true
		}
		return
	}
	if queueing {
		if cmd.flags&fNoMulti != 0 {
			c.r.err("ERR Command not allowed inside a transaction")
			c.dirty = true
			return
		}
		q := queued{cmd: cmd, args: make([][]byte, len(args))}
		for i, a := range args {
			q.args[i] = bytes.Clone(a) // the queue outlives the burst; the loop's arguments point into its reused input (reader.go)
		}
		c.queue = append(c.queue, q)
		c.r.simple("QUEUED")
		return
	}
	s.run(c, cmd, args)
}

// run executes cmd and counts it.
func (s *Server) run(c *client, cmd *command, args [][]byte) {
	start := time.Now()
	failed := s.serve(c, cmd, args, nil)
	s.count(c, cmd, 1, time.Since(start), failed)
}

// serve executes cmd, uncounted, and reports whether it failed; tx is
// the transaction of an EXEC (nil otherwise).
func (s *Server) serve(c *client, cmd *command, args [][]byte, tx *storage.Txn) bool {
	x := exec{s: s, c: c, r: &c.r, cmd: cmd, args: args}
	switch {
	case cmd.flags&fKeyless != 0:
		x.tx = tx
		cmd.run(&x)
	case tx != nil:
		x.kv = tx
		cmd.run(&x)
	case cmd.flags&fWrite == 0:
		x.kv = readKV{s.store, s.cfg.Clock}
		cmd.run(&x)
	default:
		mark := len(c.r.b)
		err := s.store.Update(cmd.keys(args), func(tx *storage.Txn) error {
			x.kv = tx
			cmd.run(&x)
			return nil
		})
		if err != nil {
			c.r.b = c.r.b[:mark]
			x.fail(storeError(err))
		}
	}
	return x.failed
}

// storeError is the reply text of an engine error.
func storeError(err error) string {
	if msg := clusterError(err); msg != "" {
		return msg
	}
	switch {
	case errors.Is(err, storage.ErrEmptyKey):
		return "ERR empty keys are not supported"
	case errors.Is(err, storage.ErrKeyTooLarge):
		return "ERR key is larger than the server's max-key-size"
	case errors.Is(err, storage.ErrValueTooLarge):
		return "ERR string exceeds maximum allowed size (max-value-size)"
	case errors.Is(err, storage.ErrBatchTooLarge):
		return "ERR command too large: its writes exceed the batch limit"
	case errors.Is(err, storage.ErrReadOnly):
		return "MISCONF the data directory failed a write; the server refuses writes until restarted: " + err.Error()
	case errors.Is(err, storage.ErrClosed):
		return "ERR server is shutting down"
	}
	return "ERR " + err.Error()
}

// ---- transactions -------------------------------------------------------

func cmdMulti(x *exec) {
	if x.c.multi {
		x.fail("ERR MULTI calls can not be nested")
		return
	}
	x.c.multi = true
	x.r.ok()
}

func cmdDiscard(x *exec) {
	if !x.c.multi {
		x.fail("ERR DISCARD without MULTI")
		return
	}
	x.c.resetMulti()
	x.r.ok()
}

func (c *client) resetMulti() {
	c.multi, c.dirty = false, false
	c.queue = nil
	c.watch = nil
}

// cmdWatch records, for each key, its write version (storage.Versioner)
// and whether it is live; EXEC compares them (cmdExec).  The version is
// read before the key, so a write the read missed moves it.  A Store
// without versions records the entry itself and EXEC compares values.
func cmdWatch(x *exec) {
	if x.c.multi {
		x.fail("ERR WATCH inside MULTI is not allowed")
		return
	}
	vs, versioned := x.s.store.(storage.Versioner)
	for _, k := range x.args[1:] {
		w := watched{key: bytes.Clone(k), versioned: versioned}
		if versioned {
			w.ver = vs.WriteVersion(k)
		}
		ent, err := x.s.store.GetEntry(k)
		switch {
		case err == nil:
			w.found = true
			if !versioned {
				w.ent = ent
			}
		case errors.Is(err, storage.ErrNotFound):
		default:
			x.fail(storeError(err))
			return
		}
		x.c.watch = append(x.c.watch, w)
	}
	x.r.ok()
}

func cmdUnwatch(x *exec) {
	x.c.watch = nil
	x.r.ok()
}

// cmdExec runs the queue in one Store.Update over every key it names and
// every watched key.  It aborts (null reply) when a watched key was
// touched since WATCH, as Redis 7 does: its write version moved (any
// write, from any client or protocol, even of the same value; FLUSHDB),
// or it was live at WATCH and has expired since.  A key already expired
// (absent) at WATCH whose entry the sweep then removes is no change,
// as in Redis.  Otherwise every queued command runs against the
// transaction and its writes are applied together.
func cmdExec(x *exec) {
	c, s := x.c, x.s
	if !c.multi {
		x.fail("ERR EXEC without MULTI")
		return
	}
	queue, watch, dirty := c.queue, c.watch, c.dirty
	c.resetMulti()
	if dirty {
		x.fail("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	var keys [][]byte
	for _, w := range watch {
		keys = append(keys, w.key)
	}
	keys = appendQueueKeys(keys, queue)
	mark := len(x.r.b)
	aborted := false
	vs, _ := s.store.(storage.Versioner)
	var res []queueRun
	err := s.store.Update(keys, func(tx *storage.Txn) error {
		res = res[:0]
		for _, w := range watch {
			cur, err := tx.Get(w.key)
			found := err == nil
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if w.touched(vs, found, cur) {
				aborted = true
				return nil
			}
		}
		res = s.runQueue(c, queue, tx, res)
		return nil
	})
	switch {
	case err != nil:
		x.r.b = x.r.b[:mark]
		x.fail(storeError(err))
	case aborted:
		x.r.nullArray()
	default:
		s.countQueue(c, queue, res)
	}
}

// queueRun is what an EXEC's queued command did: whether it failed, and
// how long it took.
type queueRun struct {
	failed bool
	d      time.Duration
}

// runQueue answers an EXEC: its queued commands run against tx in order
// (cmdExec; a turn's flushUpdates), and what each did is appended to res
// for countQueue, which counts them once the transaction is applied (an
// Update may run its function and still fail, and a turn's is then tried
// again run by run).
func (s *Server) runQueue(c *client, queue []queued, tx *storage.Txn, res []queueRun) []queueRun {
	c.r.array(len(queue))
	for _, q := range queue {
		start := time.Now()
		failed := s.serve(c, q.cmd, q.args, tx)
		res = append(res, queueRun{failed, time.Since(start)})
	}
	return res
}

// countQueue counts the commands of an applied EXEC (runQueue).
func (s *Server) countQueue(c *client, queue []queued, res []queueRun) {
	for i, q := range queue {
		s.count(c, q.cmd, 1, res[i].d, res[i].failed)
	}
}

// appendQueueKeys appends the keys of queue's keyed commands to dst.
func appendQueueKeys(dst [][]byte, queue []queued) [][]byte {
	for _, q := range queue {
		if q.cmd.flags&fKeyless == 0 {
			dst = q.cmd.appendKeys(dst, q.args)
		}
	}
	return dst
}

// touched reports whether w's key was touched since WATCH, given its
// state now (found, cur), read with its write lock held.  With versions,
// an unchanged version means no write was published since (an expiry is
// then the only way a live key can be gone); without, the entry is
// compared with the one WATCH saw.
func (w *watched) touched(vs storage.Versioner, found bool, cur storage.Entry) bool {
	if w.versioned {
		return vs.WriteVersion(w.key) != w.ver || (w.found && !found)
	}
	return found != w.found || (found && (cur.ExpiresAt != w.ent.ExpiresAt || !bytes.Equal(cur.Value, w.ent.Value)))
}
