// reply.go -- encoding replies in RESP2 or RESP3 (HELLO 3), into a byte
// buffer handed to the connection in one write, on either transport:
// replies are built here because redcon's writer knows only RESP2 (RESP3
// adds nulls, maps, sets and doubles).
package resp

import (
	"math"
	"strconv"
)

// reply is a buffer of encoded replies for one protocol version.
type reply struct {
	b     []byte
	proto int // 2 or 3
}

func (r *reply) line(prefix byte, s string) {
	r.b = append(r.b, prefix)
	r.b = append(r.b, s...)
	r.b = append(r.b, '\r', '\n')
}

func (r *reply) header(prefix byte, n int64) {
	r.b = append(r.b, prefix)
	r.b = strconv.AppendInt(r.b, n, 10)
	r.b = append(r.b, '\r', '\n')
}

// ok is +OK.
func (r *reply) ok() { r.b = append(r.b, "+OK\r\n"...) }

// simple is a status reply; s must hold no CR or LF.
func (r *reply) simple(s string) { r.line('+', s) }

// err is an error reply: s starts with its code (ERR, WRONGPASS, ...).
// CR and LF would end the frame early, so they become spaces.
func (r *reply) err(s string) {
	r.b = append(r.b, '-')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		r.b = append(r.b, c)
	}
	r.b = append(r.b, '\r', '\n')
}

func (r *reply) int(n int64) { r.header(':', n) }

func (r *reply) bulk(v []byte) {
	r.header('$', int64(len(v)))
	r.b = append(r.b, v...)
	r.b = append(r.b, '\r', '\n')
}

func (r *reply) bulkString(s string) {
	r.header('$', int64(len(s)))
	r.b = append(r.b, s...)
	r.b = append(r.b, '\r', '\n')
}

// null is a missing value: $-1 in RESP2, _ in RESP3.
func (r *reply) null() {
	if r.proto >= 3 {
		r.b = append(r.b, "_\r\n"...)
		return
	}
	r.b = append(r.b, "$-1\r\n"...)
}

// nullArray is a missing array (an aborted EXEC): *-1 in RESP2.
func (r *reply) nullArray() {
	if r.proto >= 3 {
		r.b = append(r.b, "_\r\n"...)
		return
	}
	r.b = append(r.b, "*-1\r\n"...)
}

func (r *reply) array(n int) { r.header('*', int64(n)) }

// mapHeader starts n key/value pairs: a map in RESP3, a flat array of 2n
// elements in RESP2.
func (r *reply) mapHeader(n int) {
	if r.proto >= 3 {
		r.header('%', int64(n))
		return
	}
	r.header('*', int64(2*n))
}

// setHeader starts a set in RESP3, an array in RESP2.
func (r *reply) setHeader(n int) {
	if r.proto >= 3 {
		r.header('~', int64(n))
		return
	}
	r.header('*', int64(n))
}

// double is a RESP3 double, or its text as a bulk string in RESP2.
func (r *reply) double(f float64) {
	s := formatFloat(f)
	if r.proto >= 3 {
		r.line(',', s)
		return
	}
	r.bulkString(s)
}

// formatFloat prints f as Redis does for INCRBYFLOAT: the shortest
// decimal that reads back as f, without an exponent.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
