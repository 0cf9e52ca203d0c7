// loop.go -- the event-loop transport.  On a single node connections are
// served by a few event loops (github.com/panjf2000/gnet) instead of a
// goroutine each, as redis-server serves them from one thread: an epoll
// wait hands a loop every connection with input, the loop reads it, runs
// the complete commands and writes their replies, with no goroutine
// switch, no extra read that finds nothing and no netpoll wakeup per
// request.  A Raft commit (cluster mode) waits a network round trip: that
// mode always uses the goroutine transport.
//
// Contract of a loop connection:
//   - Input is consumed as it arrives; the limit scanner (limit.go) judges
//     it before the reader (reader.go) parses it, with the same limits and
//     the same errors as the goroutine transport.  The reader parses in
//     place: a command's arguments are valid only while its burst runs.
//   - A command runs to completion inside the loop callback, or in the
//     flush of the loop's turn (turn.go), or, under --sync always, on a
//     goroutine its client is suspended for (offload.go), so every
//     command a loop runs is finished, and its reply handed to the socket
//     (or to gnet's outbound buffer), before the loop reads that client
//     again.  A command the loop runs that waits (a key lock held by
//     another writer; the fsync of a turn's writes, shared by them, as
//     redis-server's appendfsync always shares one per turn) stalls its
//     whole loop; a write that would wait for an fsync of its own is the
//     one that suspends its client instead.
//   - Replies a client does not read pile up in gnet's outbound buffer; a
//     client that sends more while more than Config.MaxPendingReplies
//     bytes of its replies are unread is disconnected (Redis's
//     client-output-buffer-limit), so one client cannot grow the server
//     without bound.  (On the goroutine transport such a client's writes
//     block its own goroutine, which then stops reading it.)
//   - A connection the server closes (QUIT, a protocol error, Shutdown, a
//     panic) gets every reply written before it first: the loop stops
//     reading it and closes it once gnet's outbound buffer is empty, or
//     after lingerMax (linger).  A client that shuts down its side of the
//     connection is closed by gnet at once, its unsent replies dropped,
//     as redis-server drops them on EOF; every command it sent has run
//     by then, since the loop serves its input as it reads it (a
//     suspended client's goroutine serves the rest, and answers it
//     through a duplicate of the socket when gnet had sent every reply
//     before: offload.go).
//   - Shutdown closes connections between commands: a loop runs no
//     command once draining is set.
package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// defaultMaxPendingReplies is Config.MaxPendingReplies's default.
const defaultMaxPendingReplies = 256 << 20

// lingerMax bounds how long a connection being closed waits for its client
// to read the replies it was sent (linger).
const lingerMax = 10 * time.Second

// defaultLoops is the number of event loops when Config.Loops is 0: one
// per two Ps (GOMAXPROCS, the server's --workers), at least one, leaving
// the others to the engine's background work and to clients on the same
// machine.
func defaultLoops() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// loopConn is the loop transport's side of a client.
type loopConn struct {
	// rd parses the commands in the input (reader.go) and keeps a partial
	// command between callbacks.  Arguments point into the input: they
	// are valid only while their burst runs, so whatever keeps one past
	// it clones it (a MULTI queue, a client name, a WATCHed key).
	rd respReader
	// gc is set by OnOpen, under client.mu; closeReq records a close
	// asked for before it (client.closeConn).
	gc       gnet.Conn
	closeReq bool
	// authTimer closes the connection when it is still unauthenticated
	// AuthTimeout after it was accepted or RESET.
	authTimer *time.Timer
	// lingering is set once the connection is to be closed after its
	// replies are sent (linger); lingerUntil and lingerWait pace it.
	lingering   bool
	lingerUntil time.Time
	lingerWait  time.Duration
	// turn is its loop's deferred runs (turn.go), set by OnOpen.
	turn *loopTurn
	// kept is how much of c.r.b stands if serving its input panics:
	// the replies its last burst held back, and all before (and of) a
	// deferred run answered in this callback (execBurst).  Those
	// commands ran, and each reply is whole.
	kept int
	// closed is set by OnClose: gnet may close a connection inside a
	// write to it (a reset peer), and a closed connection's fd may be
	// reused, so nothing is written through gc once it is set.
	closed bool
	// Suspension under --sync always (offload.go).  Owned by the loop,
	// except while its goroutine runs (from goAway to resumeTask, or to
	// its end when the connection closed meanwhile), when the goroutine
	// owns them and the client's state.  mayOffload says the burst being
	// served may be suspended; suspended is set from offload to
	// resumeTask; away holds the commands the goroutine runs, failAfter
	// the protocol error that followed them in the input (answered after
	// them, then the connection is closed).  Under client.mu: running
	// (the goroutine has not finished), gone (OnClose ran meanwhile),
	// and what OnClose left it: tail, the input read but not served, and
	// fd, a duplicate of the socket of a client that only shut down its
	// sending side (-1 if none), for their replies; detached, the
	// connection over fd while replies are written through it (closed
	// by closeConn, so Close need not wait for a client that does not
	// read).
	mayOffload bool
	suspended  bool
	away       []redconCommand
	failAfter  string
	running    bool
	gone       bool
	tail       []byte
	fd         int
	detached   net.Conn
}

// loopHandler is gnet's view of the server.
type loopHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

// useLoop reports whether connections are served by event loops: on a
// single node unless Config.Loops is -1.
func (s *Server) useLoop() bool {
	return s.cfg.Cluster == nil && s.cfg.Loops >= 0
}

// serveLoop accepts connections on ln and enrolls them in the event
// loops until Close.
func (s *Server) serveLoop(ln net.Listener) error {
	n := s.cfg.Loops
	if n == 0 {
		n = defaultLoops()
	}
	s.lh = &loopHandler{s: s}
	cli, err := gnet.NewClient(s.lh,
		gnet.WithNumEventLoop(n),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLockOSThread(true),
		gnet.WithLogger(gnetLogger{}))
	if err == nil {
		err = cli.Start()
	}
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("resp: event loops: %w", err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	if s.closing { // Close ran before the loops existed
		s.mu.Unlock()
		_ = ln.Close()
		_ = cli.Stop()
		return nil
	}
	s.loops, s.acceptDone = cli, done
	s.mu.Unlock()
	defer close(done)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does, instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		lp := &loopConn{fd: -1}
		c := s.admit(nc.RemoteAddr().String(), nc.LocalAddr().String(), nil, lp)
		if c == nil {
			s.refuse(nc)
			_ = nc.Close()
			continue
		}
		// Enrolled on a goroutine of its own: EnrollContext waits for the
		// loop to register the connection, and a loop busy with a long
		// command must not hold up connections bound for the others.
		s.enrolling.Add(1)
		go func() {
			defer s.enrolling.Done()
			_, err := cli.EnrollContext(nc, c)
			c.mu.Lock()
			opened := c.lp.gc != nil // OnOpen ran: gnet closes it (OnClose)
			c.mu.Unlock()
			if err != nil || !opened {
				// Never opened (an error, or a registration that failed
				// in the loop, which EnrollContext does not report), so
				// never closed by gnet: released here.
				s.release(c, nil)
				if err != nil {
					log.Printf("resp: enroll %s: %v", c.addr, err)
				}
			}
		}()
	}
}

// isTemporary reports an accept error worth retrying (EMFILE and the
// like), which net reports through the deprecated Temporary.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// stopLoops ends the event loops after Close stopped accepting: every
// connection is closed (OnClose runs for each) and no command runs once it
// returns.
func (s *Server) stopLoops() {
	s.mu.Lock()
	cli, done := s.loops, s.acceptDone
	s.loops = nil
	s.mu.Unlock()
	if cli == nil {
		return
	}
	// Enrollments in flight wait for a loop to open their connection: the
	// loops must outlive them, and the accept loop, which starts them.
	<-done
	s.enrolling.Wait()
	_ = cli.Stop()
}

func (h *loopHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*client)
	c.mu.Lock()
	c.lp.gc = gc
	closeReq := c.lp.closeReq
	c.mu.Unlock()
	c.lp.turn = h.s.turnFor(gc.EventLoop())
	c.lp.turn.conns++
	if closeReq {
		return nil, gnet.Close
	}
	if h.s.cfg.AuthToken != "" {
		c.lp.authTimer = time.AfterFunc(h.s.cfg.AuthTimeout, func() {
			if c.lc.unauthed.Load() {
				_ = gc.Close()
			}
		})
	}
	return nil, gnet.None
}

func (h *loopHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*client)
	if !ok {
		return gnet.None
	}
	if t := c.lp.authTimer; t != nil {
		t.Stop()
	}
	if c.deferred {
		// What it sent is applied (turn.go); gnet closes the socket
		// after OnClose, so its replies are still sent if it reads.
		h.s.flushTurn(c.lp.turn, nil)
	}
	c.lp.closed = true // the loop writes nothing to it, or counts, again
	if c.lp.turn != nil {
		c.lp.turn.conns--
	}
	// A suspended client (offload.go) is finished on a goroutine: its
	// suspended commands' replies, and the input it sent after them,
	// read but not served, which is served too (Redis runs every
	// command it has read).  When it only shut down its sending side,
	// the replies are written through a duplicate of the socket, which
	// gnet closes after OnClose (finishDetached).
	//
	// Only a close its peer caused keeps that input: one the server
	// makes (Shutdown, Close, too much input while suspended) serves
	// nothing more.  And the duplicate is taken only when gnet has sent
	// every earlier reply: gnet drops what is left in its outbound buffer
	// at close, and replies written after a gap would be misread.
	suspended := c.lp.suspended
	c.mu.Lock()
	running := c.lp.running
	if suspended {
		c.lp.gone = running
		if err != nil && !h.s.draining.Load() && !h.s.isClosing() {
			in, _ := gc.Next(-1)
			c.lp.tail = bytes.Clone(in)
			if errors.Is(err, io.EOF) && gc.OutboundBuffered() == 0 {
				if fd, derr := gc.Dup(); derr == nil {
					c.lp.fd = fd
				}
			}
		}
	}
	c.mu.Unlock()
	switch {
	case running: // its goroutine finishes and releases it when it ends
	case suspended: // its goroutine has ended; its resumeTask will find it closed
		go func() {
			h.s.finishDetached(c)
			h.s.release(c, nil)
		}()
	default:
		h.s.release(c, nil)
	}
	return gnet.None
}

// OnTraffic serves the input that arrived on gc: the complete commands in
// it run in order, as one pipelined burst per parse, and their replies are
// written with one write.
func (h *loopHandler) OnTraffic(gc gnet.Conn) (act gnet.Action) {
	s := h.s
	c := gc.Context().(*client)
	if c.lp.suspended {
		// Its input waits in gnet's inbound buffer until the commands
		// before it have run (offload.go).
		if gc.InboundBuffered() > maxSuspendedInput {
			log.Printf("resp: closing %s: more than %d bytes sent while its writes waited", c.addr, maxSuspendedInput)
			return gnet.Close
		}
		return gnet.None
	}
	// Consumed now: a partial command is kept by c.lp.rd.  in may be the
	// loop's shared read buffer, valid only during this callback.
	in, _ := gc.Next(-1)
	if c.lp.lingering || s.draining.Load() {
		if c.deferred {
			// Its deferred run is answered before it closes (turn.go).
			// A failed write closes it at once (OnClose).
			s.flushTurn(c.lp.turn, nil)
			if c.lp.closed {
				return gnet.None
			}
		}
		return h.linger(c, gc) // its input is not served
	}
	out := gc.OutboundBuffered()
	if out > s.cfg.MaxPendingReplies {
		s.slowClient(c)
		return gnet.Close
	}
	c.unsent = out
	if c.deferred {
		c.lp.kept = len(c.r.b) // the replies its last burst held back (below)
	} else {
		c.r.b, c.lp.kept = c.rbuf[:0], 0
	}
	defer func() {
		if p := recover(); p != nil {
			// As in the goroutine transport: this connection gets an
			// error instead of the burst's replies (the one being built
			// may be half written) and is closed; the loop and the
			// other clients go on.  The replies of commands that ran
			// before the burst (c.lp.kept) go first.
			s.panics.Add(1)
			log.Printf("resp: panic serving %s: %v\n%s", c.addr, p, debug.Stack())
			c.r.b = append(c.r.b[:min(c.lp.kept, len(c.r.b))], "-ERR internal error\r\n"...)
			act = gnet.Close
		}
		if c.lp.suspended && act != gnet.Close {
			// Its commands from the one that waits run on a goroutine,
			// which appends their replies to these (offload.go).
			s.goAway(c)
			return
		}
		// After a panic nothing more of it runs.
		c.lp.suspended, c.lp.away = false, nil
		if c.deferred && act == gnet.None {
			// The burst's tail waits for the loop's turn: the replies
			// of the commands before it are held in c.r.b and written
			// with the tail's, at the flush (turn.go), so a burst is
			// answered with one write(2), as Redis answers it.
			return
		}
		if len(c.r.b) > 0 { // input with no complete command: no empty write(2)
			_, _ = gc.Write(c.r.b)
		}
		c.keepReplyBuf()
		if act == gnet.Close && !c.slow {
			act = h.linger(c, gc)
		}
	}()
	for len(in) > 0 {
		ok := c.lc.scan(in)
		cmds, err := c.lp.rd.read(in[:ok])
		// A frame held for the pre-AUTH limits is judged after the
		// commands before it, here: those are not suspended.
		c.lp.mayOffload = c.lc.pending == nil
		// The complete commands before a malformed frame run first, as
		// Redis runs them; then the error is answered.
		s.execBurst(c, cmds)
		c.lp.rd.keep()
		if c.lp.suspended {
			// The rest of the burst runs on its goroutine (offload.go);
			// an error after it is answered after it.
			c.lp.failAfter = protocolError(err, c.lc.bad)
			break
		}
		if c.deferred && (err != nil || c.lc.bad != "") {
			// The error closes the connection: the deferred run
			// before it is applied and answered first (turn.go).
			s.flushTurn(c.lp.turn, c)
		}
		if err != nil && !c.quit && !c.slow {
			c.r.err(protocolError(err, ""))
			s.protoErrors.Add(1)
			return gnet.Close
		}
		if c.slow { // closed at once, its replies dropped: it does not read them
			s.slowClient(c)
			return gnet.Close
		}
		if c.quit {
			return gnet.Close
		}
		if c.lc.bad != "" {
			c.r.err(protocolError(nil, c.lc.bad))
			s.protoErrors.Add(1)
			return gnet.Close
		}
		// A frame over the pre-AUTH limits behind commands that had not
		// run (limit.go): judged again now that they have.
		in, c.lc.pending = c.lc.pending, nil
	}
	return gnet.None
}

// protocolError is the reply to a malformed frame, which closes the
// connection: the reader's parse error err ("Protocol error: ...", as
// redcon's server answers), else the limit scanner's bad (limit.go); ""
// when there is neither.
func protocolError(err error, bad string) string {
	switch {
	case err != nil:
		return "ERR " + err.Error()
	case bad != "":
		return "ERR Protocol error: " + bad
	}
	return ""
}

// linger closes c once the replies written to it are sent: at once when
// none wait in gnet's outbound buffer; otherwise it marks c (its input is
// no longer served) and checks again, woken by a timer whose period
// doubles up to 100ms, until the buffer is empty or lingerMax has passed.
// It runs on c's loop (OnTraffic; the timer wakes OnTraffic).
func (h *loopHandler) linger(c *client, gc gnet.Conn) gnet.Action {
	lp := c.lp
	if gc.OutboundBuffered() == 0 {
		return gnet.Close
	}
	now := time.Now()
	switch {
	case !lp.lingering:
		lp.lingering, lp.lingerUntil, lp.lingerWait = true, now.Add(lingerMax), time.Millisecond
	case now.After(lp.lingerUntil):
		return gnet.Close
	}
	d := lp.lingerWait
	lp.lingerWait = min(2*d, 100*time.Millisecond)
	time.AfterFunc(d, func() { _ = gc.Wake(nil) }) // a wake after the close is ignored
	return gnet.None
}

// gnetLogger sends gnet's warnings and errors to the server log and drops
// its chatter.
type gnetLogger struct{}

func (gnetLogger) Debugf(string, ...any)     {}
func (gnetLogger) Infof(string, ...any)      {}
func (gnetLogger) Warnf(f string, a ...any)  { log.Printf("resp: gnet: "+f, a...) }
func (gnetLogger) Errorf(f string, a ...any) { log.Printf("resp: gnet: "+f, a...) }
func (gnetLogger) Fatalf(f string, a ...any) { log.Printf("resp: gnet: "+f, a...) }
