// connlimit.go -- the connection limit (--max-connections) in a form that
// cannot be used to lock clients out.  A plain limit (netutil's
// LimitListener, used before) stops accepting at the limit, so a few
// thousand clients that connect and stay idle, or connect and send
// nothing, hold every slot until their timeouts fire and every later
// client, health probes included, waits in the kernel's accept queue.
//
// Here the server always accepts, and at the limit:
//  1. it closes the connection idle the longest (a keep-alive connection
//     between requests), else the oldest one that has not finished sending
//     its first request's headers (StateNew: connected and silent or
//     slow), to make room: nginx and HAProxy shed the same way.  A
//     connection in the middle of a request (StateActive) is never closed;
//  2. if every slot is busy with a request, the new connection is served
//     from a small reserve for one request only: the health endpoints
//     (/health, /livez, /readyz) are answered as usual, anything else gets
//     a 503 "connection limit reached" with Retry-After, and the
//     connection is closed after at most overLimitLife;
//  3. when the reserve is full too, the connection gets that 503 at once
//     and is closed, as Redis answers at maxclients.
//
// Shed and refused connections are counted in /metrics.
package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// overLimitReserve bounds the connections served beyond the limit
	// (one request each, see above), so the reserve itself cannot be
	// used to exhaust file descriptors.
	overLimitReserve = 32
	// overLimitLife is how long a connection served from the reserve may
	// stay open: enough for a probe, too short to hold the slot.
	overLimitLife = 2 * time.Second
	// refuseWriteTimeout bounds writing the canned 503 to a connection
	// refused outright; it goes into an empty socket buffer, so it does
	// not block unless the peer is gone.
	refuseWriteTimeout = 100 * time.Millisecond
)

// connLimiter is the listener wrapper.  Accept never blocks on the limit.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[*limConn]struct{} // connections holding a slot
	over  int                   // connections served from the reserve

	accepted, shedIdle, shedNew, overLimit, refused atomic.Uint64
}

// limConn is an accepted connection.  state, since and readAtState are
// guarded by the limiter's mu.
type limConn struct {
	net.Conn
	l         *connLimiter
	overLimit bool // served from the reserve: one request, probes only
	once      sync.Once
	state     http.ConnState
	since     time.Time
	// read counts the bytes read from the socket; readAtState is its
	// value when state was entered.  net/http reports a keep-alive
	// connection Active only once its next request's headers are read,
	// so an Idle one whose count moved is already receiving a request.
	read        atomic.Uint64
	readAtState uint64
}

// Read counts what arrives (see limConn.read).
func (c *limConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Add(uint64(n))
	}
	return n, err
}

// receiving reports whether bytes arrived since the state was entered.
// Caller holds the limiter's mu.
func (c *limConn) receiving() bool { return c.read.Load() != c.readAtState }

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: make(map[*limConn]struct{}, max)}
}

// Accept returns the next connection, making room for it as above.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepted.Add(1)
		lc := &limConn{Conn: c, l: l, state: http.StateNew, since: time.Now()}
		l.mu.Lock()
		if len(l.conns) >= l.max {
			if v := l.victimLocked(); v != nil {
				delete(l.conns, v)
				if v.state == http.StateIdle {
					l.shedIdle.Add(1)
				} else {
					l.shedNew.Add(1)
				}
				// Closing the socket ends the server's read on it; its
				// later Close through limConn finds it untracked.
				_ = v.Conn.Close()
			}
		}
		if len(l.conns) < l.max {
			l.conns[lc] = struct{}{}
			l.mu.Unlock()
			return lc, nil
		}
		if l.over < overLimitReserve {
			l.over++
			l.mu.Unlock()
			lc.overLimit = true
			l.overLimit.Add(1)
			time.AfterFunc(overLimitLife, func() { _ = lc.Close() })
			return lc, nil
		}
		l.mu.Unlock()
		l.refused.Add(1)
		refuseConn(c, l.max)
	}
}

// victimLocked picks the connection to shed: the longest idle, else the
// oldest still sending its first request, else the longest idle one whose
// next request has started to arrive (closing it would fail a request
// the client has sent; it goes last, not never, so trickling bytes into
// a kept-alive connection cannot hold a slot); nil if every one is busy.
func (l *connLimiter) victimLocked() *limConn {
	var idle, fresh, arriving *limConn
	older := func(c, than *limConn) bool { return than == nil || c.since.Before(than.since) }
	for c := range l.conns {
		switch c.state {
		case http.StateIdle:
			if c.receiving() {
				if older(c, arriving) {
					arriving = c
				}
			} else if older(c, idle) {
				idle = c
			}
		case http.StateNew:
			if older(c, fresh) {
				fresh = c
			}
		}
	}
	switch {
	case idle != nil:
		return idle
	case fresh != nil:
		return fresh
	}
	return arriving
}

// connState is the http.Server's ConnState hook: it keeps each tracked
// connection's state and when it entered it.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limConn)
	if !ok {
		return
	}
	if st == http.StateHijacked {
		// A hijacked connection leaves the server (and this limit); net/http
		// will not close it.
		lc.release()
		return
	}
	l.mu.Lock()
	lc.state, lc.since, lc.readAtState = st, time.Now(), lc.read.Load()
	l.mu.Unlock()
}

// open reports the connections holding a slot and those served from the
// reserve.
func (l *connLimiter) open() (slots, reserve int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.over
}

// Close releases the connection's slot (or reserve place) and closes it.
func (c *limConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// release gives back the connection's slot (or reserve place), once.
func (c *limConn) release() {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.overLimit {
			c.l.over--
		} else {
			delete(c.l.conns, c)
		}
		c.l.mu.Unlock()
	})
}

// refuseConn answers a connection the server cannot take with a 503 and
// closes it, without reading its request.
func refuseConn(c net.Conn, max int) {
	body := fmt.Sprintf(`{"error":"connection limit reached (%d); try again","code":%q}`+"\n", max, CodeUnavailable)
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = c.Close()
}

// overLimitKey marks, in a request's context, a connection served from
// the reserve.
type overLimitKey struct{}

// connContext is the http.Server's ConnContext hook.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limConn); ok && lc.overLimit {
		return context.WithValue(ctx, overLimitKey{}, true)
	}
	return ctx
}

// overLimitOnly lets a connection served from the reserve reach the
// health endpoints only, for one request.
func (s *Server) overLimitOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(overLimitKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if healthPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		writeAPIError(w, r, retryLater(fmt.Sprintf("connection limit reached (%d); try again", s.cfg.MaxConnections)))
	})
}
