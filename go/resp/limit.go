// limit.go -- bounds on what a client may make the server buffer.  The
// readers (redcon's; reader.go's on the event loops) parse a frame only
// once it is complete and buffer it until it is, so a header announcing a
// 2 GiB bulk string or a line with no end would make them buffer without
// bound.  limitConn watches the byte stream as it is read (headers only: a
// bulk's payload is skipped by arithmetic, not scanned) and stops a frame
// that breaks a limit before a reader ever buffers it: the complete commands read before it are served, then the
// client gets Redis's protocol error and the connection is closed, as
// Redis does.
//
// Until a connection authenticates (only when a token is configured) the
// much smaller pre-AUTH limits apply, as Redis's for unauthenticated
// clients: a client without the token can make the server buffer a few
// KiB, not a 64 MiB argument per connection.  A frame over the pre-AUTH
// limits that follows complete commands in the same read is held back
// until those commands ran, so "AUTH token" pipelined before a large
// command is judged with the limits after AUTH, as Redis judges it.
package resp

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"sync/atomic"
)

// frameLimits are the bounds limitConn enforces.
type frameLimits struct {
	maxArgs   int64 // elements of one command array (Redis: 1024*1024)
	maxBulk   int64 // bytes of one argument
	maxCmd    int64 // bytes of all arguments of one command
	maxInline int64 // bytes of one inline command line (Redis: 64 KiB)
}

// Pre-AUTH limits (Redis's for unauthenticated clients).
const (
	preAuthArgs = 10       // elements of one command
	preAuthBulk = 16 << 10 // bytes of one argument
)

// errProtocolClosed ends a connection after a limit was broken; the
// client was sent the protocol error already.
var errProtocolClosed = errors.New("resp: protocol error, connection closed")

// Stream states of limitConn.
const (
	stStart    = iota // at the first byte of a command
	stMultiHdr        // inside "*<count>\r\n"
	stBulkHdr         // expecting '$' or inside "$<len>\r\n"
	stBulkBody        // skipping a bulk's payload and its CRLF
	stInline          // inside an inline command line
)

// maxHeaderLine bounds a "*<n>" or "$<n>" line: 20 digits and a sign fit.
const maxHeaderLine = 32

type limitConn struct {
	net.Conn
	lim frameLimits

	state int
	hdr   []byte // the header line read so far
	left  int64  // elements left in the array (stBulkHdr/stBulkBody)
	skip  int64  // payload bytes + CRLF left (stBulkBody)
	total int64  // argument bytes of the current command
	line  int64  // bytes of the current inline line

	bad string // the protocol error found; served on the next Read

	// unauthed is set while the pre-AUTH limits apply; the goroutine
	// serving the connection changes it (AUTH, HELLO, RESET), accept reads
	// it from the accept loop to choose a connection to shed.
	unauthed atomic.Bool
	// pending are bytes read but held back: a frame over the pre-AUTH
	// limits behind commands that had not run yet (see the file comment).
	// They start at a frame's first byte.
	pending []byte
}

func newLimitConn(c net.Conn, lim frameLimits, unauthed bool) *limitConn {
	lc := &limitConn{Conn: c, lim: lim, hdr: make([]byte, 0, maxHeaderLine)}
	lc.unauthed.Store(unauthed)
	return lc
}

// Read reads from the connection and checks the bytes.  When a frame
// breaks a limit, the bytes before it are returned, and the next Read
// sends the error and fails: by then redcon has answered the commands
// those bytes completed (it flushes before it reads again).
func (c *limitConn) Read(p []byte) (int, error) {
	if c.bad != "" {
		_, _ = c.Conn.Write([]byte("-ERR Protocol error: " + c.bad + "\r\n"))
		return 0, errProtocolClosed
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return c.scan(p[:n]), nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if ok := c.scan(p[:n]); ok < n {
			return ok, nil
		}
	}
	return n, err
}

// scan advances the state over b and returns how many bytes are fine:
// len(b), or the offset of the frame that broke a limit (c.bad is set).
func (c *limitConn) scan(b []byte) int {
	start := 0     // first byte of the frame being scanned
	began := false // that frame began in b
	for i := 0; i < len(b); {
		switch c.state {
		case stStart:
			start, began = i, true
			c.total, c.line = 0, 0
			if b[i] == '*' {
				c.state, c.hdr = stMultiHdr, c.hdr[:0]
				i++
			} else {
				c.state = stInline
			}
		case stInline:
			j := i
			for j < len(b) && b[j] != '\n' {
				j++
			}
			c.line += int64(j - i)
			if c.line > c.lim.maxInline {
				c.bad = "too big inline request"
				return start
			}
			if j < len(b) {
				c.state = stStart
				j++
			}
			i = j
		case stMultiHdr, stBulkHdr:
			if c.state == stBulkHdr && len(c.hdr) == 0 && b[i] != '$' {
				ch := b[i]
				if ch < ' ' || ch > '~' {
					ch = '?' // the error line must stay one printable line
				}
				c.bad = "expected '$', got '" + string(rune(ch)) + "'"
				return start
			}
			var line []byte
			j := -1
			if len(c.hdr) == 0 {
				j = bytes.IndexByte(b[i:min(len(b), i+maxHeaderLine+1)], '\n')
			}
			if j >= 0 {
				// The whole line is in b (the common case): judged
				// where it lies, as the loop below would judge it
				// gathered byte by byte.
				line = b[i : i+j]
				i += j + 1
			} else {
				if b[i] != '\n' {
					if len(c.hdr) == maxHeaderLine {
						if c.state == stMultiHdr {
							c.bad = "invalid multibulk length"
						} else {
							c.bad = "invalid bulk length"
						}
						return start
					}
					c.hdr = append(c.hdr, b[i])
					i++
					continue
				}
				line = c.hdr
				i++
			}
			if preAuth, ok := c.header(line); !ok {
				if preAuth && began && start > 0 {
					// Commands before this frame have not run; one of
					// them may be AUTH.  Hand them over and judge the
					// frame again on the next Read.
					c.bad, c.state = "", stStart
					c.pending = append(slices.Clone(b[start:]), c.pending...)
				}
				return start
			}
		case stBulkBody:
			step := min(c.skip, int64(len(b)-i))
			c.skip -= step
			i += int(step)
			if c.skip == 0 {
				c.left--
				c.state, c.hdr = stBulkHdr, c.hdr[:0]
				if c.left == 0 {
					c.state = stStart
				}
			}
		}
	}
	return len(b)
}

// header handles a complete header line h ("*n\r" without its '*', or
// "$n\r"; the '\n' consumed).  It reports whether the frame may go on and,
// when not, whether only a pre-AUTH limit was broken.  c.hdr is empty
// after it unless the frame broke a limit.
func (c *limitConn) header(h []byte) (preAuth, ok bool) {
	unauthed := c.unauthed.Load()
	if len(h) > 0 && h[len(h)-1] == '\r' {
		h = h[:len(h)-1]
	}
	if c.state == stMultiHdr {
		n, ok := atoi(h) // reader.go: strconv.Atoi's rules, no string
		if !ok || int64(n) > c.lim.maxArgs {
			c.bad = "invalid multibulk length"
			return false, false
		}
		if unauthed && n > preAuthArgs {
			c.bad = "unauthenticated multibulk length"
			return true, false
		}
		if n <= 0 { // the reader refuses it (invalid multibulk length)
			c.state, c.hdr = stStart, c.hdr[:0]
			return false, true
		}
		c.left, c.state, c.hdr = int64(n), stBulkHdr, c.hdr[:0]
		return false, true
	}
	// "$<len>"
	n, ok := atoi(h[min(1, len(h)):])
	if !ok || n < 0 || int64(n) > c.lim.maxBulk {
		c.bad = "invalid bulk length"
		return false, false
	}
	if unauthed && n > preAuthBulk {
		c.bad = "unauthenticated bulk length"
		return true, false
	}
	c.total += int64(n)
	if c.total > c.lim.maxCmd {
		c.bad = "command too large"
		return false, false
	}
	c.skip, c.state, c.hdr = int64(n)+2, stBulkBody, c.hdr[:0]
	return false, true
}
