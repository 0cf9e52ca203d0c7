// reader.go -- the event-loop transport's RESP request reader.  It parses
// requests in place: a command's arguments are slices of the bytes the
// loop was handed, not copies, and the slices that hold the commands and
// their arguments are the reader's own, reused from one parse to the next,
// so a connection in steady state allocates nothing per command.  (redcon's
// Reader, which the loop used before, copied every command into a new Raw
// buffer and a new Args slice: the bulk of the server's allocation and so
// of its garbage collection.)
//
// It accepts what redcon's Reader accepts and refuses what it refuses, with
// the same "Protocol error: ..." texts (FuzzReaderDifferential holds it to
// that): multibulk frames "*<n>\r\n" followed by n "$<len>\r\n<bytes>\r\n",
// and inline commands (a line split at spaces, with redcon's quoting and
// its \n \r \t escapes inside quotes).  One difference, on purpose: the
// complete commands before a malformed frame are returned with the error,
// and run, as Redis runs them, where redcon dropped those parsed in the
// same pass as the bad frame.
//
// Lifetime: the commands returned by read, and every argument in them,
// are valid until the next read or keep; an argument points into the input
// handed to read, into the reader's kept tail, or into its scratch buffer.
// Whatever must outlive the burst (a MULTI queue, a client name, a WATCHed
// key) is cloned by the code that keeps it.
package resp

import (
	"bytes"
	"errors"
	"math"
)

// Parse errors, with redcon's texts; the loop answers them "-ERR <text>",
// as redcon's server does.
var (
	errRdUnbalancedQuotes = errors.New("Protocol error: unbalanced quotes in request")
	errRdBulkLength       = errors.New("Protocol error: invalid bulk length")
	errRdMultiBulkLength  = errors.New("Protocol error: invalid multibulk length")
)

// What a reader keeps between reads, so that a connection that once sent
// a large value in pieces, a command of very many arguments or a very
// long pipeline does not hold their size for good: bytes of its tail
// while a partial command waits in it (a pipelining client's reads mostly
// end inside a command, and each read appends up to gnet's 64 KiB read
// buffer to the tail), bytes of its buffers otherwise, commands,
// arguments and argument spans once no partial command waits (the spans
// of a partial multibulk frame are where its parse goes on).
const (
	maxKeptTail = 256 << 10
	maxIdleBuf  = 64 << 10
	maxKeptCmds = 1024
	maxKeptArgs = 4096
)

// respReader parses the requests of one connection.  It is used by one
// goroutine at a time (the connection's event loop).
type respReader struct {
	cmds    []redconCommand // the commands of the last read
	args    [][]byte        // their arguments, each command's a sub-slice
	scratch []byte          // inline arguments whose escapes were undone
	// tail holds the unparsed end of the input (a partial command)
	// between callbacks; rest is what keep moves there: the unparsed end
	// of the last read's input.
	tail []byte
	rest []byte
	// moved counts the bytes keep has copied into the tail (a test's
	// check that a partial command is not copied again on every read).
	moved int
	// headers counts the element headers multibulk has parsed (a test's
	// check that a frame arriving in pieces is not parsed again from its
	// start on every read).
	headers int
	// pend is where the parse of the partial multibulk frame at the
	// start of tail stopped, so the next read goes on from there instead
	// of parsing its complete arguments again (a command of many
	// arguments arriving in pieces would cost the square of its size);
	// spans are the frame's complete arguments, as offsets from its
	// start, made into slices once the frame is complete.
	pend  pendFrame
	spans []argSpan
}

// pendFrame is a partial multibulk frame's parse state: count elements in
// all, done of them complete, the last complete one's line ending at
// offset next ('\n'); count 0: none.
type pendFrame struct{ count, done, next int }

// argSpan is an argument's place in its frame.
type argSpan struct{ off, n int }

// read parses the complete commands in the kept tail followed by in.  It
// returns them, and a protocol error when a malformed frame follows them
// (the connection is then to be closed; the commands before it may run).
// The caller runs the commands, then calls keep, before the next read: in
// need not outlive the call to keep, and the commands are invalid after it.
func (rd *respReader) read(in []byte) ([]redconCommand, error) {
	data := in
	if len(rd.tail) > 0 {
		rd.tail = append(rd.tail, in...)
		data = rd.tail
	} else {
		rd.pend = pendFrame{} // what it described is gone
	}
	n, err := rd.parse(data)
	rd.rest = data[n:]
	return rd.cmds, err
}

// keep saves the unparsed end of the last read's input for the next read:
// the commands that read returned are done with, so the tail buffer, which
// they may point into, can be reused.
func (rd *respReader) keep() {
	clear(rd.args) // drop references into buffers that are about to be reused
	clear(rd.cmds)
	rest := rd.rest
	rd.rest = nil
	if len(rest) == 0 {
		rd.pend = pendFrame{}
		if cap(rd.spans) > maxKeptArgs {
			rd.spans = nil
		}
		if cap(rd.args) > maxKeptArgs {
			rd.args = nil
		}
		if cap(rd.cmds) > maxKeptCmds {
			rd.cmds = nil
		}
		if cap(rd.tail) > maxIdleBuf {
			rd.tail = nil
		}
	}
	if cap(rd.scratch) > maxIdleBuf {
		rd.scratch = nil
	}
	if len(rest) > 0 && len(rd.tail) > 0 && &rest[0] == &rd.tail[0] {
		// Nothing was parsed: the partial command is in place already.
		// (Copying it onto itself on every read made a command arriving
		// in pieces cost the square of its size.)
		return
	}
	if cap(rd.tail) > maxKeptTail && len(rest) <= maxKeptTail/2 {
		rd.tail = nil // a copy of a short rest below is cheaper than holding it
	}
	// rest may lie in tail itself: append(tail[:0], ...) moves it with
	// copy's memmove semantics, so the overlap is fine.
	rd.tail = append(rd.tail[:0], rest...)
	rd.moved += len(rest)
}

// parse parses the complete commands at the start of b into rd.cmds and
// returns the bytes they take.  A malformed frame after them is reported
// by err; an incomplete one ends the parse without error.
func (rd *respReader) parse(b []byte) (n int, err error) {
	rd.cmds, rd.args, rd.scratch = rd.cmds[:0], rd.args[:0], rd.scratch[:0]
	for n < len(b) {
		var m int
		if b[n] == '*' {
			// Only the frame at the start of the input can be the
			// partial one a previous read stopped in.
			m, err = rd.multibulk(b[n:], n == 0 && rd.pend.count > 0)
		} else {
			m, err = rd.inline(b[n:])
		}
		if err != nil || m == 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}

// multibulk parses the frame "*<count>\r\n" + count * "$<len>\r\n<bytes>\r\n"
// at the start of b and returns its length, or 0 when it is incomplete.
// It checks what redcon checks, in the same order, so it fails where redcon
// fails: the count line, then each bulk's '$', length line and CRLF as far
// as the input reaches.
func (rd *respReader) multibulk(b []byte, resume bool) (int, error) {
	var count, j, i int
	if resume {
		count, j, i = rd.pend.count, rd.pend.done, rd.pend.next
	} else {
		nl := bytes.IndexByte(b[1:], '\n')
		if nl < 0 {
			return 0, nil
		}
		i = nl + 1 // b[i] == '\n'
		if b[i-1] != '\r' {
			return 0, errRdMultiBulkLength
		}
		var ok bool
		count, ok = atoi(b[1 : i-1])
		if !ok || count <= 0 {
			return 0, errRdMultiBulkLength
		}
		rd.spans = rd.spans[:0]
	}
	rd.pend = pendFrame{}
	for ; j < count; j++ {
		at := i // the '\n' before element j: where a later read goes on
		i++
		if i >= len(b) {
			return rd.stop(count, j, at)
		}
		if b[i] != '$' {
			return 0, expectedDollar(b[i])
		}
		si := i
		rd.headers++
		nl := bytes.IndexByte(b[si:], '\n')
		if nl < 0 {
			return rd.stop(count, j, at)
		}
		i = si + nl
		if b[i-1] != '\r' {
			return 0, errRdBulkLength
		}
		size, ok := atoi(b[si+1 : i-1])
		if !ok || size < 0 {
			return 0, errRdBulkLength
		}
		if size >= len(b)-i-2 { // i+size+2 >= len(b), without overflow
			return rd.stop(count, j, at)
		}
		if b[i+size+2] != '\n' || b[i+size+1] != '\r' {
			return 0, errRdBulkLength
		}
		i++
		rd.spans = append(rd.spans, argSpan{i, size})
		i += size + 1
	}
	first := len(rd.args)
	for _, sp := range rd.spans {
		rd.args = append(rd.args, b[sp.off:sp.off+sp.n:sp.off+sp.n])
	}
	rd.push(first)
	return i + 1, nil
}

// stop ends the parse of an incomplete multibulk frame: "no command", and
// where the next read goes on (pend: the frame is the input's last, so
// keep moves it to the start of the tail, where its offsets hold).
func (rd *respReader) stop(count, done, next int) (int, error) {
	rd.pend = pendFrame{count, done, next}
	return 0, nil
}

// unwind drops the arguments of an unfinished command and returns "no
// command" and err (nil when the command is only incomplete).
func (rd *respReader) unwind(first int, err error) (int, error) {
	clear(rd.args[first:])
	rd.args = rd.args[:first]
	return 0, err
}

// push records the arguments from rd.args[first:] as a command.  The full
// slice expression keeps an append to one command's Args from writing
// over the next command's.
func (rd *respReader) push(first int) {
	rd.cmds = append(rd.cmds, redconCommand{Args: rd.args[first:len(rd.args):len(rd.args)]})
}

// expectedDollar is redcon's error for a bulk that does not start with '$'.
// It names the byte as redcon does (string(b), a rune).
func expectedDollar(c byte) error {
	return &protoError{"Protocol error: expected '$', got '" + string(rune(c)) + "'"}
}

// protoError is a parse error whose text depends on the input.
type protoError struct{ msg string }

func (e *protoError) Error() string { return e.msg }

// inline parses the command line at the start of b as redcon does: split at
// spaces; an argument that starts with a quote (" or ') runs to the
// matching quote, which must end the argument, and inside it a backslash
// escapes the next byte (\n, \r and \t stand for the control characters).
// It returns the line's length with its "\n", or 0 when the line is
// incomplete.  An empty line (only spaces) is no command.
func (rd *respReader) inline(b []byte) (int, error) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		return 0, nil
	}
	line := b[:end]
	if end > 0 && b[end-1] == '\r' {
		line = b[:end-1]
	}
	first := len(rd.args)
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ':
			i++
		case c == '"' || c == '\'':
			n, arg, err := rd.quoted(line[i:])
			if err != nil {
				return rd.unwind(first, err)
			}
			rd.args = append(rd.args, arg)
			i += n
		default:
			j := i
			for j < len(line) && line[j] != ' ' {
				if line[j] == '"' || line[j] == '\'' {
					// A quote inside an argument.
					return rd.unwind(first, errRdUnbalancedQuotes)
				}
				j++
			}
			rd.args = append(rd.args, line[i:j:j])
			i = j
		}
	}
	if len(rd.args) > first {
		rd.push(first)
	}
	return end + 1, nil
}

// quoted parses the quoted argument at the start of s (s[0] is the quote)
// and returns the bytes it takes and its value: a slice of s when it has no
// escape, else the unescaped bytes in rd.scratch.
func (rd *respReader) quoted(s []byte) (int, []byte, error) {
	q := s[0]
	start := len(rd.scratch)
	escaped := false // an escape was seen: the value is in scratch
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			if i+1 < len(s) && s[i+1] != ' ' {
				return 0, nil, errRdUnbalancedQuotes
			}
			if !escaped {
				return i + 1, s[1:i:i], nil
			}
			return i + 1, rd.scratch[start:len(rd.scratch):len(rd.scratch)], nil
		case c == '\\':
			if i+1 == len(s) {
				return 0, nil, errRdUnbalancedQuotes // the quote cannot close
			}
			if !escaped {
				escaped = true
				rd.scratch = append(rd.scratch, s[1:i]...)
			}
			i++
			switch c = s[i]; c {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			}
			rd.scratch = append(rd.scratch, c)
		case escaped:
			rd.scratch = append(rd.scratch, c)
		}
	}
	return 0, nil, errRdUnbalancedQuotes
}

// atoi parses b as strconv.Atoi does in base 10 (an optional sign, then
// digits, in int range) without converting it to a string.
func atoi(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	const maxU = uint64(math.MaxInt) // the int range of this platform
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (maxU+1-d)/10 { // u*10+d > maxU+1 (the magnitude of MinInt)
			return 0, false
		}
		u = u*10 + d
	}
	switch {
	case neg:
		return int(-u), true // -(maxU+1) wraps to MinInt, as it should
	case u > maxU:
		return 0, false
	}
	return int(u), true
}
