// offload.go -- writes that wait for an fsync leave the event loop.
// Under --sync always a write is acknowledged once its log record is
// fsynced.  The writes a loop gathers into its turn (turn.go) share one
// fsync per turn, as redis-server's appendfsync always does; but a write
// the turn cannot take (a MULTI/EXEC, a write run followed by more
// commands in its burst) would make the loop, and every client on it,
// wait for an fsync of its own, one after another.  So such a write, and
// the rest of its client's burst, runs on a goroutine of its own, where
// the engine's group commit shares one fsync among every client waiting
// at once, as on the goroutine transport; the loop goes on serving the
// others.
//
// Contract (the loop transport under --sync always):
//   - A client is suspended from the command that would wait until the
//     end of its burst: its remaining commands (arguments copied, as the
//     input is the loop's) run in order on its goroutine, which owns the
//     client's state (replies, MULTI queue, WATCHed keys) meanwhile.
//     It appends their replies to those of the burst's earlier commands,
//     and the loop writes them all, with one write, in a task
//     (resumeTask), so a client's replies keep their order.
//   - Input that arrives while a client is suspended stays in gnet's
//     inbound buffer, unread, and is served by the resume task, so its
//     commands run after the suspended ones, as they were sent.
//   - A suspended client is released (Server.release) once its
//     goroutine has finished and its connection is closed: by OnClose
//     when the client was resumed first, else by a goroutine that
//     finishes it (finishDetached: the goroutine that ran its commands,
//     or one OnClose starts when the resume task is still queued), so
//     Close, which waits for every release, returns only when no
//     command runs.
//   - A burst that ends in a malformed frame is suspended too, and the
//     error is answered after the suspended commands (failAfter); one
//     with a frame held for the pre-AUTH limits is not (that frame is
//     judged after the commands before it, on the loop).  A loop
//     serving one connection runs its writes itself: it has no one else
//     to keep waiting.
package resp

import (
	"context"
	"log"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mantisdb/mantisdb/go/storage"
)

// maxSuspendedInput bounds the input a suspended client may send before
// it is resumed: gnet goes on reading its socket, where the goroutine
// transport would stop reading and let TCP push back.  Past it the
// client is closed, as Redis closes a client whose query buffer passes
// client-query-buffer-limit; the bound is one command's largest size,
// so a client waiting with one largest command in flight is not.
const maxSuspendedInput = maxCmdBytes + 64<<10

// waits reports whether args, served now for c, would wait for an fsync:
// a write, or the EXEC of a queue with one (under --sync always; others
// never call it).
func (s *Server) waits(c *client, args [][]byte) bool {
	if !c.authed || len(args) == 0 {
		return false
	}
	cmd := s.lookup(args[0])
	if cmd == nil {
		return false
	}
	if !c.multi {
		return cmd.flags&fWrite != 0
	}
	if !isName(args[0], "exec") {
		return false // queued, or DISCARD and the like
	}
	for _, q := range c.queue {
		if q.cmd.flags&fWrite != 0 {
			return true
		}
	}
	return false
}

// offload suspends c from cmds[0] when that command would wait for an
// fsync (see the file comment) and reports whether it did; the loop's
// callback then starts the goroutine (goAway), handing it the replies of
// c's earlier commands.
func (s *Server) offload(c *client, cmds []redconCommand) bool {
	lp := c.lp
	if s.cfg.Sync != storage.SyncAlways || !lp.mayOffload || lp.suspended || lp.turn == nil || lp.turn.conns < 2 || !s.waits(c, cmds[0].Args) {
		return false
	}
	size, nargs := argBytes(cmds)
	_, _, away := copyCmds(make([]byte, 0, size), make([][]byte, 0, nargs), make([]redconCommand, 0, len(cmds)), cmds)
	lp.away, lp.suspended = away, true
	return true
}

// goAway runs c's suspended commands on a goroutine and hands c back to
// its loop (resumeTask).  It runs on the loop, at the end of the
// callback that suspended c.
func (s *Server) goAway(c *client) {
	c.mu.Lock()
	c.lp.running = true
	c.mu.Unlock()
	go func() {
		s.runAway(c)
		c.mu.Lock()
		c.lp.running = false
		gone := c.lp.gone
		c.mu.Unlock()
		if gone { // closed while it ran: OnClose left the rest to it (loop.go)
			s.finishDetached(c)
			s.release(c, nil)
			return
		}
		// If the loop is stopping, the task may never run; the loop
		// then closes c, and OnClose, finding it suspended and no
		// longer running, finishes and releases it.
		_ = c.lp.turn.el.Execute(context.Background(), resumeTask{c})
	}()
}

// runAway serves c's suspended commands, appending their replies to
// c.r; a panic answers an error instead and closes c, as on the loop.
// A protocol error that followed them in the input is answered after
// them, and closes c too.
func (s *Server) runAway(c *client) {
	s.guard(c, func() { s.execBurst(c, c.lp.away) })
	if msg := c.lp.failAfter; msg != "" && !c.quit && !c.slow {
		c.r.err(msg)
		s.protoErrors.Add(1)
		c.quit = true
	}
	c.lp.failAfter = ""
}

// guard runs serve for c on its goroutine: a panic there answers an error
// instead of the replies being built and closes c, as on the loop.
func (s *Server) guard(c *client, serve func()) {
	defer func() {
		if p := recover(); p != nil {
			s.panics.Add(1)
			log.Printf("resp: panic serving %s: %v\n%s", c.addr, p, debug.Stack())
			c.r.b = append(c.r.b[:0], "-ERR internal error\r\n"...)
			c.quit = true
		}
	}()
	serve()
}

// finishDetached ends a client whose connection closed while its
// goroutine ran (OnClose): the input it had sent, read but not served,
// is served too (Redis runs every command it has read), as the loop
// would have served it, until a QUIT, a protocol error or a slow
// client's limit ends it; and when the client only shut down its sending
// side, every reply is written through the duplicate of its socket
// (within lingerMax), as the loop would have written them before it read
// the end of its input.
func (s *Server) finishDetached(c *client) {
	lp := c.lp
	in := lp.tail
	lp.tail = nil
	if s.draining.Load() || s.isClosing() {
		in = nil // Shutdown or Close began since: no more commands run
	}
	s.guard(c, func() {
		for len(in) > 0 && !c.quit {
			ok := c.lc.scan(in)
			cmds, err := lp.rd.read(in[:ok])
			s.execBurst(c, cmds) // suspended: nothing is deferred or offloaded
			lp.rd.keep()
			if c.quit {
				break
			}
			if msg := protocolError(err, c.lc.bad); msg != "" {
				c.r.err(msg)
				s.protoErrors.Add(1)
				break
			}
			in, c.lc.pending = c.lc.pending, nil
		}
	})
	if c.slow {
		s.slowClient(c)
	}
	if lp.fd < 0 {
		c.r.b = nil
		return
	}
	f := os.NewFile(uintptr(lp.fd), c.addr) // owns the duplicate now
	lp.fd = -1
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		c.r.b = nil
		return
	}
	// closeConn closes it from now on; a Close that began before did not
	// see it, and is seen here (both under their locks).
	c.mu.Lock()
	lp.detached = nc
	c.mu.Unlock()
	if len(c.r.b) > 0 && !c.slow && !s.isClosing() {
		_ = nc.SetWriteDeadline(time.Now().Add(lingerMax))
		_, _ = nc.Write(c.r.b)
	}
	c.mu.Lock()
	lp.detached = nil
	c.mu.Unlock()
	_ = nc.Close()
	c.r.b = nil
}

// resumeTask hands a suspended client back to its loop (a gnet.Runnable).
type resumeTask struct{ c *client }

// Run writes the suspended commands' replies and serves what the client
// sent meanwhile.  It runs on c's loop.
func (r resumeTask) Run(context.Context) error {
	c := r.c
	lp := c.lp
	if lp.closed { // finished and released elsewhere (OnClose): not touched
		return nil
	}
	lp.suspended, lp.away = false, nil
	gc, s := lp.gc, lp.turn.s
	if len(c.r.b) > 0 {
		// A failed write closes the connection (OnClose runs now and
		// releases c: it is no longer running).
		_, _ = gc.Write(c.r.b)
	}
	c.keepReplyBuf()
	if lp.closed {
		return nil
	}
	h := s.lh
	var act gnet.Action
	switch {
	case c.slow:
		s.slowClient(c)
		act = gnet.Close
	case c.quit:
		act = h.linger(c, gc)
	default:
		act = h.OnTraffic(gc) // its input meanwhile; a Shutdown meanwhile
	}
	if act == gnet.Close {
		_ = lp.turn.el.Close(gc)
	}
	return nil
}
