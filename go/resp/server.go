// Package resp serves a storage engine over the Redis protocol (RESP2 and
// RESP3), so redis-cli, redis-benchmark and Redis client libraries work
// against MantisDB unchanged.  It runs in the server process beside HTTP,
// on the same engine.  docs/REDIS.md lists the commands and every
// difference from Redis.
//
// Wire format: requests (RESP arrays and inline commands) are parsed by
// github.com/tidwall/redcon's reader on the goroutine transport and by
// reader.go, in place, on the event loops; limit.go bounds what a client
// can make either buffer; reply.go encodes replies in the client's
// protocol version.
//
// Transports: on a single node whose writes do not wait for fsync,
// event loops serve the connections (loop.go, github.com/panjf2000/gnet),
// as redis-server's one thread does; with --sync always or in cluster
// mode, where a command waits for a disk or a Raft commit, each
// connection has a goroutine (redcon's server), so a waiting command holds
// up only its own client.  Both run the same commands (execBurst).
//
// Every write goes through Store (Put, Apply, Update): read-modify-write
// commands run inside Store.Update, so they are atomic against every
// other writer of the engine, HTTP included, and as durable as the sync
// policy says before they are answered.  In cluster mode the Store is
// the cluster's engine, which routes every write through the Raft log
// (cluster.go).
package resp

import (
	"context"
	"errors"
	"log"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/tidwall/redcon"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Store is what the RESP server needs from the engine: the engine itself
// for reads, and its writes (Put, PutWithTTL, Delete, Apply, Update).
// Every engine of go/storage implements it.
type Store interface {
	storage.Engine
	storage.Updater
}

// Config configures a Server.  Zero values take the documented defaults.
type Config struct {
	// AuthToken, when set, must be given through AUTH or HELLO ... AUTH
	// before any other command.
	AuthToken string
	// MaxKeySize and MaxValueSize are the engine's limits (default: the
	// format's); a longer argument is refused as a protocol error.
	MaxKeySize   int
	MaxValueSize int
	// MaxClients bounds connections served at once (default 10000, as
	// Redis's maxclients).  At the limit the unauthenticated connection
	// idle the longest is closed to make room; when there is none, the
	// new connection is refused with Redis's error.
	MaxClients int
	// AuthTimeout is how long a connection may stay unauthenticated when
	// AuthToken is set (default 10s); then it is closed.
	AuthTimeout time.Duration
	// Version, Sync and DataDir are reported by INFO and CONFIG GET.
	Version string
	Sync    storage.SyncPolicy
	DataDir string
	// InMemory: the engine keeps nothing on disk (the server's
	// --in-memory); INFO and CONFIG GET then report no AOF.
	InMemory bool
	// CheckpointBytes is the engine's checkpoint floor
	// (storage.Options.CheckpointBytes; 0: its default), which CONFIG GET
	// reports as auto-aof-rewrite-min-size: the same rule as Redis's
	// AOF rewrite (100% growth over the last snapshot, this minimum).
	CheckpointBytes int64
	// Cluster is set in cluster mode (cluster.go): store is then the
	// cluster's engine, and Cluster says where a command may run.
	Cluster Cluster
	// Loops is the number of event loops serving connections (loop.go)
	// on a single node: 0 chooses one per two Ps (GOMAXPROCS); -1 serves
	// every connection on a goroutine of its own.  With a Cluster, where
	// a write waits for a Raft commit, connections always have their own
	// goroutine.  Under SyncAlways a loop's turn shares one fsync, and a
	// client whose write waits for one of its own is served on a
	// goroutine meanwhile (offload.go).
	Loops int
	// MaxPendingReplies bounds the reply bytes a client may leave unread
	// and still be served (default 256 MiB): one burst's replies on
	// either transport, and on the event loops also the replies gnet has
	// not sent yet; past it the client is disconnected (loop.go).
	MaxPendingReplies int
	// Clock is the engine's clock (storage.Options.Clock; nil:
	// time.Now): the TTLs a read-only command reports are measured
	// against it, as the writes inside a transaction measure theirs.
	Clock func() time.Time
}

// Limits of the protocol (Redis's where it has one).
const (
	maxArgs      = 1024 * 1024 // elements of one command
	maxInline    = 64 << 10    // bytes of an inline command
	maxCmdBytes  = 256 << 20   // argument bytes of one command: the batch limit
	defaultMaxCl = 10000
	defaultAuthT = 10 * time.Second
	// maxKeptReplyBuf bounds the reply buffer a connection keeps between
	// bursts.
	maxKeptReplyBuf = 64 << 10
)

// Server is a RESP listener over one Store.
type Server struct {
	cfg     Config
	store   Store
	adder   storage.Adder // store's counter path (AddInts), nil without one
	started time.Time
	lim     frameLimits
	cmds    map[string]*command
	cmdList []*command // the commands once each, by name; cmd.id indexes it
	cursors *cursorTable

	rs *redcon.Server // the goroutine transport
	// loops and acceptDone are the event-loop transport's (loop.go), set
	// by serveLoop under mu.
	loops      *gnet.Client
	lh         *loopHandler // the loops' handler, set before they start
	acceptDone chan struct{}
	enrolling  sync.WaitGroup               // connections being enrolled in a loop
	turns      map[gnet.EventLoop]*loopTurn // each loop's deferred runs (turn.go), under mu

	nextID atomic.Uint64
	mu     sync.Mutex // guards clients, shedding, retired, statBase and closing
	// clients are the open connections, for CLIENT LIST and INFO.
	clients map[*client]struct{}
	// shedding are connections shedOne closed that have not reached
	// closed() yet: out of clients, but their counts are not retired.
	shedding map[*client]struct{}
	retired  []cmdTotals    // counts of the closed connections, by cmd.id
	statBase []cmdTotals    // the totals at CONFIG RESETSTAT
	closing  bool           // Close ran: accept refuses, so conns.Add never races Wait
	ln       net.Listener   // what Serve serves
	conns    sync.WaitGroup // one per open connection: Close waits for them

	// draining is set by Shutdown: connections end after the command
	// they run.  drained is closed by Close; until then limitListener
	// holds redcon's accept loop, which closes every connection when it
	// returns.
	draining    atomic.Bool
	drained     chan struct{}
	drainedOnce sync.Once

	connections atomic.Uint64 // connections accepted
	rejected    atomic.Uint64 // connections refused (max clients)
	shed        atomic.Uint64 // unauthenticated connections closed to make room
	protoErrors atomic.Uint64 // connections closed for a protocol error
	panics      atomic.Uint64 // commands that panicked (a bug; should stay 0)
	slowClients atomic.Uint64 // connections closed for unread replies (loop.go)
}

// New returns a server over store; call Serve to accept connections.
func New(cfg Config, store Store) *Server {
	if cfg.MaxKeySize <= 0 {
		cfg.MaxKeySize = storage.DefaultMaxKeySize
	}
	if cfg.MaxValueSize <= 0 {
		cfg.MaxValueSize = storage.DefaultMaxValueSize
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = defaultMaxCl
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = defaultAuthT
	}
	if cfg.MaxPendingReplies <= 0 {
		cfg.MaxPendingReplies = defaultMaxPendingReplies
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	adder, _ := store.(storage.Adder)
	s := &Server{
		cfg:     cfg,
		store:   store,
		adder:   adder,
		started: time.Now(),
		clients: make(map[*client]struct{}),
		cursors: newCursorTable(),
		drained: make(chan struct{}),
		lim: frameLimits{
			maxArgs:   maxArgs,
			maxBulk:   int64(max(cfg.MaxKeySize, cfg.MaxValueSize)),
			maxCmd:    maxCmdBytes,
			maxInline: maxInline,
		},
	}
	s.cmds = commandTable()
	s.cmdList = indexCommands(s.cmds)
	s.shedding = make(map[*client]struct{})
	s.retired = make([]cmdTotals, len(s.cmdList))
	s.statBase = make([]cmdTotals, len(s.cmdList))
	s.rs = redcon.NewServerNetwork("tcp", "", s.serveRESP, s.accept, s.closed)
	return s
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	if s.useLoop() {
		log.Printf("resp: connections served by event loops (--resp-loops)")
		return s.serveLoop(ln)
	}
	log.Printf("resp: a goroutine per connection (cluster mode, or --resp-loops -1)")
	return s.rs.Serve(limitListener{ln, s.lim, s.cfg.AuthToken != "", s.cfg.AuthTimeout, s})
}

// Shutdown stops accepting at once, lets every connection finish the
// command it is running (its reply is written) and closes it before it
// reads another, then closes the server.  When ctx ends first the
// remaining connections are cut as by Close.  Either way no command runs
// once it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.draining.Store(true)
	ln := s.ln
	now := time.Now()
	for c := range s.clients {
		if c.lp != nil {
			// A loop runs no command once draining is set, and runs each
			// to its end before it reads again; woken now, it closes the
			// connection once the replies written are sent (linger).
			c.wake()
			continue
		}
		// Wakes a connection waiting for a request; one running a command
		// finishes it and flushes its replies, then its next read fails.
		_ = c.conn.NetConn().SetReadDeadline(now)
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.Close()
}

// Close stops accepting, closes every connection and waits until no
// command is running, so the engine can be closed after it.
func (s *Server) Close() error {
	_ = s.rs.Close() // "not serving" when Serve has not reached redcon yet
	s.drainedOnce.Do(func() { close(s.drained) })
	s.mu.Lock()
	s.closing = true
	var err error
	if s.ln != nil {
		// Closed here too: redcon may not have the listener yet.
		if err = s.ln.Close(); errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	for c := range s.clients {
		c.closeConn() // redcon closes its own too; this does not wait for its accept loop
	}
	s.mu.Unlock()
	s.stopLoops()
	s.conns.Wait()
	return err
}

// limitListener wraps every accepted connection in a limitConn.  With a
// token, a connection starts unauthenticated: pre-AUTH limits and a read
// deadline that AUTH lifts (setAuthed).
type limitListener struct {
	net.Listener
	lim         frameLimits
	needAuth    bool
	authTimeout time.Duration
	s           *Server
}

func (l limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		if l.s.draining.Load() {
			// Shutdown closed the listener; redcon would close every
			// connection on this error, cutting commands in flight.
			<-l.s.drained
		}
		return nil, err
	}
	if l.needAuth {
		_ = c.SetReadDeadline(time.Now().Add(l.authTimeout))
	}
	return newLimitConn(c, l.lim, l.needAuth), nil
}

// client is one connection's state.  Fields below mu are read by other
// connections (CLIENT LIST); the rest only by the goroutine serving the
// connection: its own, or its event loop's, or, while the loop has
// suspended it, the goroutine that serves it meanwhile (offload.go; the
// go statement hands the client over, the loop's task queue hands it
// back).
type client struct {
	id      uint64
	conn    redcon.Conn // the goroutine transport's connection
	lp      *loopConn   // or the event-loop transport's (loop.go)
	lc      *limitConn
	addr    string
	laddr   string
	created time.Time

	mu      sync.Mutex
	name    string
	libName string
	libVer  string
	lastCmd string
	lastAt  time.Time
	proto   int

	authed   bool
	readonly bool         // READONLY: stale reads on a follower (cluster.go)
	multi    bool         // inside MULTI
	queue    []queued     // commands queued by MULTI
	dirty    bool         // a command failed to queue: EXEC aborts
	watch    []watched    // WATCHed keys and what they held
	quit     bool         // close after this burst's replies
	slow     bool         // closed for unread or oversized replies (MaxPendingReplies)
	deferred bool         // a run of its writes waits for its loop's turn (turn.go)
	unsent   int          // reply bytes gnet had not sent when the burst began (loop transport)
	counts   []cmdCounter // its commands' counters, by cmd.id (counters.go)
	r        reply        // replies of the burst being served
	rbuf     []byte       // r's buffer between bursts (at most maxKeptReplyBuf)
	burst    []redcon.Command
}

// queued is a command waiting for EXEC.
type queued struct {
	cmd  *command
	args [][]byte
}

// watched is a WATCHed key and what WATCH saw of it (cmdWatch).
type watched struct {
	key       []byte
	versioned bool          // the Store has write versions: ver is set, ent is not
	ver       uint64        // its write version
	found     bool          // it was live
	ent       storage.Entry // its entry (a Store without versions)
}

// accept admits a connection of the goroutine transport.
func (s *Server) accept(conn redcon.Conn) bool {
	c := s.admit(conn.RemoteAddr(), conn.NetConn().LocalAddr().String(), conn, nil)
	if c == nil {
		s.refuse(conn.NetConn())
		return false
	}
	c.lc, _ = conn.NetConn().(*limitConn)
	conn.SetContext(c)
	return true
}

// refuse tells a connection admit turned away why, unless the server is
// closing (then it is only closed).
func (s *Server) refuse(nc net.Conn) {
	if !s.isClosing() {
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admit registers a new connection from addr to laddr, or returns nil
// when the server is closing or at its client limit (counted as rejected).
// Every client admitted is released exactly once (release).
func (s *Server) admit(addr, laddr string, conn redcon.Conn, lp *loopConn) *client {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	if len(s.clients) >= s.cfg.MaxClients && !s.shedOne() {
		s.mu.Unlock()
		s.rejected.Add(1)
		return nil
	}
	c := &client{
		id:      s.nextID.Add(1),
		conn:    conn,
		lp:      lp,
		addr:    addr,
		laddr:   laddr,
		created: time.Now(),
		proto:   2,
		authed:  s.cfg.AuthToken == "",
		counts:  make([]cmdCounter, len(s.cmdList)),
	}
	c.r.proto = 2
	c.lastAt = c.created
	if lp != nil {
		c.lc = newLimitConn(nil, s.lim, s.cfg.AuthToken != "")
	}
	s.clients[c] = struct{}{}
	s.conns.Add(1)
	s.mu.Unlock()
	s.connections.Add(1)
	return c
}

// opened returns c's gnet connection (loop transport), or nil when its
// loop has not opened it yet; then OnOpen closes it instead.
func (c *client) opened() gnet.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lp.gc == nil {
		c.lp.closeReq = true
	}
	return c.lp.gc
}

// wake has c's loop look at c (loop transport): when the server is
// draining, that closes it after its replies.
func (c *client) wake() {
	if gc := c.opened(); gc != nil {
		_ = gc.Wake(nil)
	}
}

// closeConn closes c's connection from any goroutine; its transport then
// releases it.
func (c *client) closeConn() {
	if c.lp == nil {
		_ = c.conn.NetConn().Close()
		return
	}
	if gc := c.opened(); gc != nil {
		_ = gc.Close()
	}
	c.mu.Lock()
	d := c.lp.detached // a suspended client finished off the loop (offload.go)
	c.mu.Unlock()
	if d != nil {
		_ = d.Close()
	}
}

// shedOne closes the unauthenticated connection idle the longest to make
// room for a new one, and reports whether there was one.  An
// unauthenticated connection can run nothing but AUTH, HELLO and the like,
// so closing it loses no work; authenticated ones are never shed.  The
// caller holds s.mu.
func (s *Server) shedOne() bool {
	var victim *client
	var idle time.Time
	for c := range s.clients {
		if c.lc == nil || !c.lc.unauthed.Load() {
			continue
		}
		c.mu.Lock()
		at := c.lastAt
		c.mu.Unlock()
		if victim == nil || at.Before(idle) {
			victim, idle = c, at
		}
	}
	if victim == nil {
		return false
	}
	// Out of the table now (closed deletes it again, harmlessly) so the
	// slot is free before redcon notices the close.
	delete(s.clients, victim)
	s.shedding[victim] = struct{}{}
	victim.closeConn()
	s.shed.Add(1)
	return true
}

// setAuthed records that c authenticated (or, after RESET, no longer is):
// the limits after AUTH apply and the AUTH deadline is lifted, or both are
// put back.  Only c's goroutine calls it.
func (s *Server) setAuthed(c *client, authed bool) {
	c.authed = authed
	if c.lc == nil || s.cfg.AuthToken == "" {
		return
	}
	c.lc.unauthed.Store(!authed)
	if c.lp != nil {
		// The loop transport has no read deadline: a timer closes the
		// connection (loop.go, OnOpen).
		if t := c.lp.authTimer; t != nil && !authed {
			t.Reset(s.cfg.AuthTimeout)
		}
		return
	}
	if authed {
		_ = c.lc.SetReadDeadline(time.Time{})
	} else {
		_ = c.lc.SetReadDeadline(time.Now().Add(s.cfg.AuthTimeout))
	}
	if s.draining.Load() { // Shutdown's deadline must stand
		_ = c.lc.SetReadDeadline(time.Now())
	}
}

func (s *Server) closed(conn redcon.Conn, err error) {
	c, ok := conn.Context().(*client)
	if !ok {
		return
	}
	s.release(c, err)
}

// release forgets a closed connection; err is why the goroutine
// transport closed it (the loop transport counts its own errors).
func (s *Server) release(c *client, err error) {
	if errors.Is(err, errProtocolClosed) || isRedconProtocolError(err) {
		s.protoErrors.Add(1)
	}
	s.mu.Lock()
	s.retire(c)
	delete(s.clients, c)
	delete(s.shedding, c)
	s.mu.Unlock()
	s.conns.Done()
}

// isRedconProtocolError reports a parse error of redcon (its type is not
// exported; its message is Redis's "Protocol error: ...").
func isRedconProtocolError(err error) bool {
	return err != nil && len(err.Error()) > 15 && err.Error()[:15] == "Protocol error:"
}

// serveRESP serves cmd and every command already read behind it (a
// pipelined burst) and writes all their replies with one write.
func (s *Server) serveRESP(conn redcon.Conn, cmd redcon.Command) {
	c := conn.Context().(*client)
	defer func() {
		// A bug in one command must not take the process (and every
		// other client) down: this connection gets an error and is
		// closed; the others go on.
		if p := recover(); p != nil {
			s.panics.Add(1)
			log.Printf("resp: panic serving %s: %v\n%s", c.addr, p, debug.Stack())
			_, _ = conn.NetConn().Write([]byte("-ERR internal error\r\n"))
			_ = conn.NetConn().Close()
		}
	}()
	c.burst = append(c.burst[:0], cmd)
	c.burst = append(c.burst, conn.ReadPipeline()...)
	// Replies are built in the client's own buffer, kept between bursts,
	// and appended to redcon's (which it flushes after the burst, keeping
	// its capacity): redcon's Buffer/SetBuffer would copy both ways and
	// allocate a new buffer every burst.
	c.r.b = c.rbuf[:0]
	s.execBurst(c, c.burst)
	conn.WriteRaw(c.r.b)
	c.keepReplyBuf()
	clear(c.burst)
	if c.slow {
		s.slowClient(c)
	}
	if c.quit {
		_ = conn.Close()
	}
}

// keepReplyBuf keeps the buffer of the replies just written for the next
// burst, unless it grew large.
func (c *client) keepReplyBuf() {
	if cap(c.r.b) <= maxKeptReplyBuf {
		c.rbuf = c.r.b[:0]
	} else {
		c.rbuf = nil // a big reply's buffer is not kept by an idle client
	}
	c.r.b = nil
}

// slowClient counts and logs a client closed for its replies (c.slow).
func (s *Server) slowClient(c *client) {
	s.slowClients.Add(1)
	log.Printf("resp: closing %s: more than %d bytes of replies unread", c.addr, s.cfg.MaxPendingReplies)
}

// Stats are the RESP server's counters.
type Stats struct {
	ConnectedClients int
	Connections      uint64 // accepted since start
	Rejected         uint64 // refused: too many clients
	Shed             uint64 // unauthenticated, closed to make room for a new one
	ProtocolErrors   uint64 // connections closed for a protocol error
	Commands         uint64 // commands executed
	Panics           uint64 // commands that panicked (a bug; should stay 0)
	SlowClients      uint64 // closed for leaving too many replies unread
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	return Stats{
		ConnectedClients: n,
		Connections:      s.connections.Load(),
		Rejected:         s.rejected.Load(),
		Shed:             s.shed.Load(),
		ProtocolErrors:   s.protoErrors.Load(),
		Commands:         s.commandsTotal(),
		Panics:           s.panics.Load(),
		SlowClients:      s.slowClients.Load(),
	}
}

// CommandCalls returns how many times each command ran (those that ran
// at least once), by lower-case name.
func (s *Server) CommandCalls() map[string]uint64 {
	out := map[string]uint64{}
	for i, t := range s.commandTotals() {
		if t.calls > 0 {
			out[s.cmdList[i].name] = t.calls
		}
	}
	return out
}
