// turn.go -- one engine call for the requests of a whole loop turn.  An
// event loop serves every connection with input in one turn (one epoll
// wait); redis-server appends the writes of a turn to its AOF with one
// write, before it sends their replies.  Serving each client's requests
// as their own engine calls costs a log write(2) per client's writes, and
// a crossing into C per client's reads whose cache misses cannot overlap.
// So on the loop transport a burst that ends in a run of reads or writes
// defers that run: its arguments are copied, its client gets no reply
// yet, and once the loop has served the turn's other connections one
// ViewMany answers every deferred read (its misses prefetched together)
// and one engine call (one Apply, or one Update over all their keys)
// applies every deferred write, and the replies are written.
//
// Contract (every step runs on the loop's goroutine):
//   - Only a burst's tail is deferred, and only a run that one engine
//     call can serve: GET/MGET (one ViewMany), plain SET/MSET (one
//     Apply), or keyed commands with at least one write among them,
//     headed by an EXEC or not (one Update, inside which each reads and
//     writes through the transaction, as EXEC's queue does).  So the
//     commands that came before it have run and nothing of the same
//     client runs after it until the flush.  An EXEC with WATCHed keys
//     is not deferred: its check must see every write before it
//     published, and another run of the turn may write a watched key
//     inside the same transaction.
//   - The replies of the commands a burst ran before its deferred tail
//     are held in the client's reply buffer (OnTraffic) and written with
//     the tail's at the flush: one write per burst, as Redis answers a
//     MULTI ... EXEC sent at once.
//   - A client with a deferred run is flushed before any more of its
//     input is served (OnTraffic, execBurst) and when its connection
//     closes (OnClose), so its commands run, and are answered, in order.
//     A write received is applied even if its client is gone, as Redis
//     runs every command it has read.
//   - The flush is a task of the loop (gnet's EventLoop.Execute), which
//     runs after the events of the poll that delivers it: the turn's
//     other connections are served first and add their runs.
//   - Each command stays atomic; deferred runs of different clients are
//     concurrent, and each takes effect, and is answered, at the flush:
//     the runs of reads first, then the write runs in turn, inside one
//     transaction.  A run of reads that reads a key another client's
//     deferred run writes sees the value before it, as if that write
//     came later: it has not been acknowledged.  A read inside a write
//     run sees the writes of the runs before it in the transaction,
//     which are acknowledged with it, after the transaction is in the
//     log (and, under --sync always, fsynced); if the transaction fails,
//     its reads answer the error too.  Nothing is published before it
//     is in the log.
package resp

import (
	"bytes"
	"context"
	"errors"
	"log"
	"runtime/debug"
	"slices"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mantisdb/mantisdb/go/storage"
)

// turnRun is one client's deferred run.
type turnRun struct {
	c      *client
	read   bool            // GET/MGET (flushReads), else writes
	cmds   []redconCommand // arguments copied into the turn's arena
	exe    []*command      // the commands (flushUpdates)
	failed []bool          // whether each failed (flushUpdates)
	mark   int             // c's replies before the run's (flushTurn)
	// exec: the run begins with an EXEC, whose queue (taken from c when
	// the run was deferred) runs inside the turn's Update.
	exec  bool
	queue []queued
	qres  []queueRun // what the queue's commands did (countQueue)
}

// A run whose arguments pass maxTurnRunBytes is served at once, not
// deferred.  A turn is flushed early when its arguments would pass
// maxTurnBytes, its commands maxUpdateRun (the bound of one Update's
// locks) or its read keys maxTurnReadKeys, which also bound the scratch
// a loop keeps: slices of commands grown past maxTurnScratch, and of
// arguments (keys, a batch's operations) past maxTurnArgs, are let go.
// A full turn of pipelined MSETs has some thousands of arguments; a loop
// that let their slices go after every turn allocated them again in the
// next, and its garbage set the pace of the collector.
const (
	maxTurnRunBytes = 64 << 10
	maxTurnBytes    = 1 << 20
	maxTurnReadKeys = 4 * maxReadRun
	maxTurnScratch  = 4 * maxUpdateRun
	maxTurnArgs     = 16 << 10
	maxTurnVals     = 64 << 10
)

// loopTurn is one event loop's deferred runs.
type loopTurn struct {
	s  *Server
	el gnet.EventLoop

	runs      []turnRun
	reads     int  // runs that are reads
	plain     bool // every write run is plain SET/MSET: one Apply serves them
	scheduled bool // a flush task is queued
	conns     int  // connections the loop serves (OnOpen, OnClose)
	ncmds     int  // commands of runs
	nbytes    int  // argument bytes of runs
	nreadKeys int  // keys of the read runs

	// Scratch reused across turns; the arena holds the copied arguments
	// until the flush (the engines copy what they keep).
	arena []byte
	args  [][]byte
	cmds  []redconCommand
	keys  [][]byte
	fail  []bool
	exe   []*command
	pend  []*command // deferRun's, for the run it is judging
	// lastName and lastCmd are deferRun's last lookup (lookup): a
	// pipelined burst mostly repeats one command.
	lastName []byte
	lastCmd  *command
	vals     []byte              // values the turn's commands stage (exec.vals)
	batch    storage.Batch       // flushPlain's
	deltas   []int64             // addTurn's, one per key of keys
	adds     []storage.AddResult // addTurn's results
}

// turnFor returns the deferred-run state of event loop el, created on
// first use (OnOpen).
func (s *Server) turnFor(el gnet.EventLoop) *loopTurn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.turns == nil {
		s.turns = make(map[gnet.EventLoop]*loopTurn)
	}
	t := s.turns[el]
	if t == nil {
		t = &loopTurn{s: s, el: el}
		s.turns[el] = t
	}
	return t
}

// lookup is s.lookup with the last name looked up kept, so that a burst
// of one command is looked up by comparing a few bytes rather than by
// hashing each name into the command table.  A name the table lacks is
// not kept.
func (t *loopTurn) lookup(name []byte) *command {
	if t.lastCmd != nil && bytes.Equal(name, t.lastName) {
		return t.lastCmd
	}
	cmd := t.s.lookup(name)
	if cmd != nil {
		t.lastName, t.lastCmd = append(t.lastName[:0], name...), cmd
	}
	return cmd
}

// deferRun defers cmds, the rest of c's burst, when they are one run of
// reads or writes (see the file comment) and reports whether it did.
// Only the loop transport calls it, and it never serves a cluster, so no
// command here needs a leadership check (gate).
func (s *Server) deferRun(c *client, cmds []redconCommand) bool {
	t := c.lp.turn
	if t == nil || t.conns < 2 || len(cmds) == 0 || len(cmds) > maxUpdateRun || c.deferred || c.lp.closed {
		// A loop with one connection has no turn to share: deferring
		// would only add the flush task's wakeup to each request.
		return false
	}
	execHead := c.multi // the run begins with an EXEC
	if execHead && (!isName(cmds[0].Args[0], "exec") || len(cmds[0].Args) != 1 || c.dirty || len(c.watch) > 0 ||
		len(cmds)+len(c.queue) > maxUpdateRun) {
		// Inside MULTI only an EXEC is deferred, and only one that runs
		// its queue: a WATCH must be checked outside any other write
		// of the turn, and an aborted EXEC writes nothing.
		return false
	}
	// A run of reads as runReads serves one, or of writes as runWrites or
	// runUpdates does (a command that would fail alone ends the run
	// there: it gets its own error from exec1), with keyed reads among
	// them and an EXEC at their head: those run inside the Update.
	n, nkeys := readPrefix(cmds, -1)
	read, plain := !execHead && n == len(cmds) && nkeys <= maxReadRun, true
	t.pend = t.pend[:0] // each command's, nil where flushUpdates looks it up
	if !read {
		nkeys = 0
		writes := false
		for i, rc := range cmds {
			a := rc.Args
			t.pend = append(t.pend, nil)
			if i == 0 && execHead {
				plain, writes = false, true
				// Its keys are locked through the turn's write (and
				// fsync): a queue naming many is served alone.
				t.keys = appendQueueKeys(t.keys[:0], c.queue)
				if len(t.keys) > maxReadRun || !s.validKeys(t.keys) {
					return false
				}
				continue
			}
			if plainWrite(a) {
				if !s.fits(a[1:]) {
					return false
				}
				writes = true
				continue
			}
			plain = false
			// One lookup serves the test and flushUpdates (t.pend).
			cmd := t.lookup(a[0])
			keyedRead := !writesKeys(cmd, a)
			if keyedRead {
				if !readsKeys(cmd, a) {
					return false
				}
			} else {
				writes = true
			}
			t.pend[i] = cmd
			t.keys = cmd.appendKeys(t.keys[:0], a)
			if !s.validKeys(t.keys) {
				return false
			}
			if keyedRead {
				// Its keys are locked through the turn's write (and
				// fsync): bounded as a turn's reads are.
				if nkeys += len(t.keys); nkeys > maxReadRun {
					return false
				}
			}
		}
		if !writes {
			return false // reads the turn does not take: they wait for nothing
		}
	}
	size, _ := argBytes(cmds)
	if execHead {
		for _, q := range c.queue {
			for _, a := range q.args {
				size += len(a)
			}
		}
	}
	if size > maxTurnRunBytes {
		// Copying it costs more than the log write it would share.
		return false
	}
	ncmds := len(cmds)
	if execHead {
		ncmds += len(c.queue)
	}
	if t.ncmds+ncmds > maxUpdateRun || t.nbytes+size > maxTurnBytes || t.nreadKeys+nkeys > maxTurnReadKeys {
		s.flushTurn(t, c) // a full turn is applied now; this run starts the next
	}
	t.nbytes += size
	t.nreadKeys += nkeys
	// Copy the arguments: the input they point into is the loop's.  The
	// scratch slices may move when they grow; the runs already deferred
	// keep the old arrays, which nothing writes again.
	if cap(t.arena)-len(t.arena) < size {
		t.arena = make([]byte, 0, min(max(2*cap(t.arena), size, 4096), maxTurnBytes))
	}
	first := len(t.cmds)
	t.arena, t.args, t.cmds = copyCmds(t.arena, t.args, t.cmds, cmds)
	run := turnRun{c: c, read: read, cmds: t.cmds[first:len(t.cmds):len(t.cmds)]}
	if !read {
		mark := len(t.exe)
		t.exe = append(t.exe, t.pend...)
		run.exe = t.exe[mark:len(t.exe):len(t.exe)]
	}
	if execHead {
		// EXEC's effect on the client is taken now; its queue runs at
		// the flush.  Nothing of the client runs in between.
		run.exec, run.queue = true, c.queue
		c.resetMulti()
	}
	if read {
		t.reads++
	} else {
		if len(t.runs) == t.reads { // the turn's first write run
			t.plain = true
		}
		t.plain = t.plain && plain
	}
	t.ncmds += ncmds
	t.runs = append(t.runs, run)
	c.deferred = true
	if !t.scheduled {
		if err := t.el.Execute(context.Background(), t); err != nil {
			s.flushTurn(t, c) // the loop is stopping: no task would run
			return true
		}
		t.scheduled = true
	}
	return true
}

// argBytes returns the argument bytes and the arguments of cmds.
func argBytes(cmds []redconCommand) (size, nargs int) {
	for _, rc := range cmds {
		nargs += len(rc.Args)
		for _, a := range rc.Args {
			size += len(a)
		}
	}
	return size, nargs
}

// copyCmds appends copies of cmds to dst, their arguments to args and
// the arguments' bytes to arena, which must have room for them all
// (argBytes), so the slices of arena already handed out stay valid.
func copyCmds(arena []byte, args [][]byte, dst, cmds []redconCommand) ([]byte, [][]byte, []redconCommand) {
	for _, rc := range cmds {
		start := len(args)
		for _, a := range rc.Args {
			at := len(arena)
			arena = append(arena, a...)
			args = append(args, arena[at:len(arena):len(arena)])
		}
		dst = append(dst, redconCommand{Args: args[start:len(args):len(args)]})
	}
	return arena, args, dst
}

// Run is the flush task (gnet.Runnable): it runs on the loop.
func (t *loopTurn) Run(context.Context) error {
	t.scheduled = false
	t.s.flushTurn(t, nil)
	return nil
}

// flushTurn applies t's deferred runs and answers them.  cur is the client
// whose callback is running, if any: its replies are appended to the
// burst it is building (after those of its earlier commands, before those
// of its later ones); every other client's are written to its connection.
// A closed client's run is applied but neither answered nor counted.
func (s *Server) flushTurn(t *loopTurn, cur *client) {
	if len(t.runs) == 0 {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			// What was applied stays applied; whoever waited for an
			// answer gets none.  As OnTraffic's recovery: the turn's
			// clients are closed (now, on this loop, so none of them is
			// served again in this poll), the loop and the others go
			// on; cur's own callback recovers it again.
			runs := append([]turnRun(nil), t.runs...)
			for i := range runs {
				runs[i].c.deferred = false
			}
			t.reset()
			for _, r := range runs {
				if c := r.c; c != cur && !c.lp.closed && c.lp.gc != nil {
					if r.mark > 0 && r.mark <= len(c.r.b) {
						// The replies its burst held back before
						// the run (OnTraffic) are sent: those
						// commands ran.  (cur's are OnTraffic's.)
						_, _ = c.lp.gc.Write(c.r.b[:r.mark])
					}
					c.r.b = nil
					if !c.lp.closed { // a failed Write closed it
						_ = t.el.Close(c.lp.gc)
					}
				}
			}
			if cur != nil {
				panic(p)
			}
			s.panics.Add(1)
			log.Printf("resp: panic serving a turn's runs: %v\n%s", p, debug.Stack())
		}
	}()
	for i := range t.runs {
		r := &t.runs[i]
		if r.c != cur && r.c.r.b == nil {
			// Else it holds the replies of the commands its burst ran
			// before the run (OnTraffic), which go out first, in the
			// same write.
			r.c.r.b = r.c.rbuf[:0]
		}
		r.mark = len(r.c.r.b)
	}
	start := time.Now()
	counted := false // reads served one by one, by exec1, which counts them
	if t.reads > 0 {
		counted = s.flushReads(t)
	}
	if len(t.runs) > t.reads {
		if t.plain {
			s.flushPlain(t)
		} else {
			s.flushUpdates(t, -1)
		}
	}
	// The time per command of the runs, without an EXEC queue's commands,
	// which are counted with their own (countQueue).
	n, d := t.ncmds, time.Since(start)
	for i := range t.runs {
		if r := &t.runs[i]; r.exec {
			n -= len(r.queue)
			for _, q := range r.qres {
				d -= q.d
			}
		}
	}
	per := max(d, 0) / time.Duration(max(n, 1))
	for i := range t.runs {
		r := &t.runs[i]
		c := r.c
		c.deferred = false
		if c.lp.closed {
			c.r.b = nil
			continue
		}
		switch {
		case r.read:
			if !counted {
				s.countRun(c, r.cmds, "get", "mget", per*time.Duration(len(r.cmds)), false)
			}
		case t.plain:
			s.countRun(c, r.cmds, "set", "mset", per*time.Duration(len(r.cmds)), r.failed[0])
		default:
			countStretches(s, c, r.exe, r.failed, per)
		}
		if c == cur {
			continue
		}
		if len(c.r.b) > 0 {
			// A failed write closes the connection (OnClose runs now;
			// c is no longer deferred, so it does not flush again).
			_, _ = c.lp.gc.Write(c.r.b)
		}
		c.keepReplyBuf()
	}
	t.reset()
}

// flushReads answers a turn's GET/MGET runs with one ViewMany, as
// runReads answers one client's run; it reports whether ViewMany failed
// and the commands were served (and counted) one by one instead.
func (s *Server) flushReads(t *loopTurn) bool {
	keys := t.keys[:0]
	for _, r := range t.runs {
		if r.read {
			for _, rc := range r.cmds {
				keys = append(keys, rc.Args[1:]...)
			}
		}
	}
	t.keys = keys
	ri, ci, k := -1, 0, 0 // run and command being answered, keys of it left
	var r *turnRun
	err := s.store.ViewMany(keys, func(_ int, v []byte, err error) error {
		for k == 0 {
			if r == nil || ci == len(r.cmds) {
				ri++
				for !t.runs[ri].read {
					ri++
				}
				r, ci = &t.runs[ri], 0
			}
			a := r.cmds[ci].Args
			if isName(a[0], "mget") {
				r.c.r.array(len(a) - 1)
			}
			k = len(a) - 1
			ci++
		}
		k--
		if err == nil {
			r.c.r.bulk(v)
		} else {
			r.c.r.null() // absent, or a key no engine can hold: Redis's nil
		}
		return nil
	})
	if err == nil {
		return false
	}
	// Nothing was answered (ViewMany fails only before its walk).
	for _, r := range t.runs {
		if r.read {
			for _, rc := range r.cmds {
				s.exec1(r.c, rc.Args)
			}
		}
	}
	return true
}

// flushPlain applies a turn of plain SET/MSET runs as one batch.  (A
// batch of them cannot pass the engine's batch limit: their arguments
// are bounded by maxTurnBytes.)
func (s *Server) flushPlain(t *loopTurn) {
	b := &t.batch
	for _, r := range t.runs {
		if !r.read {
			putPlain(b, r.cmds)
		}
	}
	err := s.store.Apply(b)
	clear(b.Ops) // the arena's arguments are not kept alive by it
	b.Reset()
	for i := range t.runs {
		r := &t.runs[i]
		if r.read {
			continue
		}
		mark := len(t.fail)
		t.fail = append(t.fail, err != nil)
		r.failed = t.fail[mark : mark+1 : mark+1]
		for range r.cmds {
			if err != nil {
				r.c.r.err(storeError(err))
			} else {
				r.c.r.ok()
			}
		}
	}
}

// prepareRun gives write run r its commands (deferRun looked up none for
// plain writes and an EXEC) and its failed flags, once.
func (s *Server) prepareRun(t *loopTurn, r *turnRun) {
	if r.failed != nil {
		return
	}
	for j, rc := range r.cmds {
		if r.exe[j] == nil {
			r.exe[j] = s.lookup(rc.Args[0])
		}
	}
	mark := len(t.fail)
	for range r.cmds {
		t.fail = append(t.fail, false)
	}
	r.failed = t.fail[mark:len(t.fail):len(t.fail)]
}

// addTurn serves the turn's write runs (only as for flushUpdates) with one
// AddInts when every command of them is an increment incrDelta takes (a
// burst of pipelined INCRs, or one INCR from each of many clients): the
// engine's counter path, which in memory adds in place without a
// transaction.  Each command stays atomic on its own, as in an Update,
// and is answered as cmdIncr answers.  It reports false, having done
// nothing, for any other turn (and when the store has no counter path:
// cluster mode), which flushUpdates then serves in an Update.
func (s *Server) addTurn(t *loopTurn, only int) bool {
	if s.adder == nil {
		return false
	}
	keys, deltas := t.keys[:0], t.deltas[:0]
	for i := range t.runs {
		r := &t.runs[i]
		if r.read || only >= 0 && i != only {
			continue
		}
		if r.exec {
			return false
		}
		for j, rc := range r.cmds {
			d, ok := incrDelta(r.exe[j], rc.Args)
			if !ok {
				return false
			}
			keys = append(keys, rc.Args[1])
			deltas = append(deltas, d)
		}
	}
	t.keys, t.deltas = keys, deltas
	if len(keys) == 0 {
		return false
	}
	t.adds = slices.Grow(t.adds[:0], len(keys))[:len(keys)]
	_ = s.adder.AddInts(keys, deltas, t.adds) // every key's result says what it got
	n := 0
	for i := range t.runs {
		r := &t.runs[i]
		if r.read || only >= 0 && i != only {
			continue
		}
		s.prepareRun(t, r)
		for j := range r.cmds {
			r.failed[j] = replyAdd(&r.c.r, t.adds[n])
			n++
		}
	}
	return true
}

// flushUpdates runs the turn's write runs (only: that run alone, -1:
// all) inside one Update over all their keys, each command against the
// transaction in order, as runUpdates does for one client's run.  When
// the writes of several runs together pass the engine's batch limit
// (SETRANGE and APPEND write whole values), nothing was applied, and
// each run is tried in an Update of its own, as it would have been alone;
// a run too large on its own is applied a command at a time (flushEach).
func (s *Server) flushUpdates(t *loopTurn, only int) {
	if s.addTurn(t, only) {
		return
	}
	keys := t.keys[:0]
	nruns := 0
	for i := range t.runs {
		r := &t.runs[i]
		if r.read || only >= 0 && i != only {
			continue
		}
		nruns++
		s.prepareRun(t, r)
		for j, rc := range r.cmds {
			if j == 0 && r.exec {
				keys = appendQueueKeys(keys, r.queue)
				continue
			}
			keys = r.exe[j].appendKeys(keys, rc.Args)
		}
	}
	t.keys = keys
	var x exec
	err := s.store.Update(keys, func(tx *storage.Txn) error {
		for i := range t.runs {
			r := &t.runs[i]
			if r.read || only >= 0 && i != only {
				continue
			}
			for j, rc := range r.cmds {
				if j == 0 && r.exec {
					r.qres = s.runQueue(r.c, r.queue, tx, r.qres[:0])
					continue
				}
				x = exec{s: s, c: r.c, r: &r.c.r, cmd: r.exe[j], args: rc.Args, kv: tx, vals: &t.vals}
				r.exe[j].run(&x)
				r.failed[j] = x.failed
			}
		}
		return nil
	})
	if err == nil {
		for i := range t.runs {
			r := &t.runs[i]
			if r.exec && (only < 0 || i == only) && !r.c.lp.closed {
				s.countQueue(r.c, r.queue, r.qres)
			}
		}
		return
	}
	for i := range t.runs {
		r := &t.runs[i]
		if !r.read && (only < 0 || i == only) {
			r.c.r.b = r.c.r.b[:r.mark] // nothing was applied: no answer stands
		}
	}
	if errors.Is(err, storage.ErrBatchTooLarge) && nruns > 1 {
		for i := range t.runs {
			if !t.runs[i].read {
				s.flushUpdates(t, i)
			}
		}
		return
	}
	if errors.Is(err, storage.ErrBatchTooLarge) {
		for i := range t.runs {
			if r := &t.runs[i]; !r.read && (only < 0 || i == only) && len(r.cmds) > 1 {
				s.flushEach(t, i)
				return
			}
		}
	}
	for i := range t.runs {
		r := &t.runs[i]
		if r.read || only >= 0 && i != only {
			continue
		}
		for j := range r.cmds {
			r.c.r.err(storeError(err))
			r.failed[j] = true
		}
	}
}

// flushEach applies run i of t, whose writes together pass the engine's
// batch limit, one command at a time, each in an Update of its own, as
// they would be unpipelined (only a command too large on its own gets
// that error).  Each step is the run narrowed to one command (an EXEC at
// its head with its queue), so the replies, the failures and the counts
// land where the whole run's would.
func (s *Server) flushEach(t *loopTurn, i int) {
	r := &t.runs[i]
	cmds, exe, failed, exec := r.cmds, r.exe, r.failed, r.exec
	for j := range cmds {
		r.cmds, r.exe, r.failed = cmds[j:j+1:j+1], exe[j:j+1:j+1], failed[j:j+1:j+1]
		r.exec = exec && j == 0
		r.mark = len(r.c.r.b)
		s.flushUpdates(t, i)
	}
	r.cmds, r.exe, r.failed, r.exec = cmds, exe, failed, exec
}

// reset empties t for the next turn, keeping its scratch unless a large
// turn grew it past maxTurnScratch.
func (t *loopTurn) reset() {
	clear(t.runs)
	clear(t.args)
	clear(t.cmds)
	clear(t.keys)
	clear(t.exe)
	clear(t.adds)
	t.runs, t.args, t.cmds, t.keys, t.exe, t.fail = t.runs[:0], t.args[:0], t.cmds[:0], t.keys[:0], t.exe[:0], t.fail[:0]
	t.deltas, t.adds = t.deltas[:0], t.adds[:0]
	if cap(t.args) > maxTurnArgs || cap(t.keys) > maxTurnArgs || cap(t.batch.Ops) > maxTurnArgs ||
		cap(t.deltas) > maxTurnArgs || cap(t.adds) > maxTurnArgs {
		t.args, t.keys, t.batch.Ops, t.deltas, t.adds = nil, nil, nil, nil, nil
	}
	if cap(t.cmds) > maxTurnScratch || cap(t.exe) > maxTurnScratch || cap(t.fail) > maxTurnScratch || cap(t.runs) > maxTurnScratch {
		t.cmds, t.exe, t.fail, t.runs = nil, nil, nil, nil
	}
	t.arena, t.vals = t.arena[:0], t.vals[:0] // the turn's Update has copied what it staged
	if cap(t.vals) > maxTurnVals {
		t.vals = nil
	}
	t.ncmds, t.nbytes, t.nreadKeys, t.reads, t.plain = 0, 0, 0, 0, false
}
