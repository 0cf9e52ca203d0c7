package resp

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// scanFeed runs a fresh authenticated limitConn's scan over data in
// pieces of the given sizes (the rest in one piece), as reads would
// deliver them, stopping at the first broken limit.  It returns the
// scanner and the bytes accepted.
func scanFeed(t *testing.T, data []byte, pieces ...int) (*limitConn, int) {
	t.Helper()
	lim := frameLimits{maxArgs: 8, maxBulk: 64, maxCmd: 128, maxInline: 64}
	return scanFeedAs(t, newLimitConn(nil, lim, false), -1, data, pieces...)
}

// scanFeedAs is scanFeed with the scanner given.  One that has not
// authenticated does once the bytes accepted reach auth (-1: never), as
// an AUTH ending there takes effect once the commands up to it have run:
// before the next read.  A frame over a pre-AUTH limit behind other bytes
// of its read is held back (pending), which must be the read from the
// frame's first byte on; it is fed again as the next read, as Read hands
// it out, which starts with the frame and so judges it: refused for a
// pre-AUTH limit if the client has still not authenticated.
func scanFeedAs(t *testing.T, lc *limitConn, auth int, data []byte, pieces ...int) (*limitConn, int) {
	t.Helper()
	accepted, held := 0, 0
	for len(data) > 0 {
		if auth >= 0 && accepted >= auth {
			lc.unauthed.Store(false)
		}
		n := len(data)
		refeed := held > 0
		switch {
		case refeed:
			n, held = held, 0
		case len(pieces) > 0:
			n = min(max(pieces[0], 1), n)
			pieces = pieces[1:]
		}
		ok := lc.scan(data[:n])
		if refeed && lc.unauthed.Load() && !strings.HasPrefix(lc.bad, "unauthenticated") {
			t.Fatalf("held frame fed again as %q: bad %q, not a pre-AUTH limit", data[:n], lc.bad)
		}
		if lc.pending != nil {
			if !lc.unauthed.Load() || lc.bad != "" || ok == 0 || ok >= n || lc.state != stStart ||
				!bytes.Equal(lc.pending, data[ok:n]) {
				t.Fatalf("scan of %q accepted %d, held %q (bad %q, state %d)", data[:n], ok, lc.pending, lc.bad, lc.state)
			}
			lc.pending = nil
			accepted += ok
			data, held = data[ok:], n-ok
			continue
		}
		if ok < 0 || ok > n || (ok < n && lc.bad == "") || (ok == n && lc.bad != "") {
			t.Fatalf("scan of %q accepted %d with bad %q", data[:n], ok, lc.bad)
		}
		accepted += ok
		if lc.bad != "" {
			break
		}
		data = data[n:]
	}
	return lc, accepted
}

// FuzzLimitScanSplit: how the bytes are split into reads does not change
// what the limit scanner decides: the same protocol error (or none, and
// then the same place in the stream), whether a header line arrives whole
// in one read (judged where it lies) or a byte at a time (gathered first).
// The limits are small so that input can break each of them.
func FuzzLimitScanSplit(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n",
		"*2\r\n$3\r\nGET\r\n$99\r\n",
		"*9\r\n$1\r\na\r\n",
		"*-1\r\n*0\r\nPING\r\n",
		"*1\r\n:5\r\n",
		"*1\r\n$12345678901234567890123456789012345\r\n",
		"*2\r\n$60\r\n" + string(bytes.Repeat([]byte("x"), 60)) + "\r\n$70\r\n",
		"GET k\r\n" + string(bytes.Repeat([]byte("y"), 70)) + "\r\n",
		"*1\r\n$4\r\nPI",
	} {
		f.Add([]byte(s), uint16(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		checkScanSplits(t, data, cut, scanFeed)
	})
}

// unauthedLimits are FuzzLimitScanSplitUnauthed's: the counts above the
// pre-AUTH ones, so that input can break either kind, and a command's
// bytes below the pre-AUTH bulk, so that after an AUTH a bulk refused
// before it is "command too large".
var unauthedLimits = frameLimits{maxArgs: 2 * preAuthArgs, maxBulk: 2 * preAuthBulk, maxCmd: 128, maxInline: 64}

// FuzzLimitScanSplitUnauthed is FuzzLimitScanSplit for a client that has
// not authenticated, whose frames the pre-AUTH limits bound too, and
// which authenticates at a frame boundary picked by auth (or never).  A
// frame over a pre-AUTH limit is held back when other bytes come before
// it in its read, which may hold the AUTH, and judged when fed again.
// Whatever the split, every frame before the boundary is judged by the
// pre-AUTH limits and every frame after it by the others alone.
func FuzzLimitScanSplitUnauthed(f *testing.F) {
	for _, c := range []struct {
		s    string
		auth uint16
	}{
		{"*2\r\n$4\r\nAUTH\r\n$1\r\nt\r\n*11\r\n$3\r\nDEL\r\n", 1},
		{"*2\r\n$4\r\nAUTH\r\n$1\r\nt\r\n*11\r\n$3\r\nDEL\r\n", 0},
		{"PING\r\n*2\r\n$3\r\nGET\r\n$20000\r\n", 1},
		{"PING\r\n*2\r\n$3\r\nGET\r\n$20000\r\n", 2},
		{"*12\r\n$3\r\nDEL\r\n", 1},
		{"*1\r\n$4\r\nPING\r\n*25\r\n", 1},
		{"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$40000\r\n", 2},
		{"*1\r\n$4\r\nPING\r\n*1\r\n$16385\r\n*1\r\n$4\r\nPING\r\n", 3},
		{"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$200\r\n", 1},
	} {
		f.Add([]byte(c.s), uint16(9), c.auth)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut, auth uint16) {
		// The boundaries: where an authenticated scanner fed a byte at
		// a time is between frames, until it meets a broken limit.
		at := []int{0}
		lc := newLimitConn(nil, unauthedLimits, false)
		for i := range data {
			if lc.scan(data[i : i+1]); lc.bad != "" {
				break
			}
			if lc.state == stStart {
				at = append(at, i+1)
			}
		}
		a := -1 // never
		if k := int(auth) % (len(at) + 1); k < len(at) {
			a = at[k]
		}
		feed := func(t *testing.T, data []byte, pieces ...int) (*limitConn, int) {
			t.Helper()
			return scanFeedAs(t, newLimitConn(nil, unauthedLimits, true), a, data, pieces...)
		}
		checkScanSplits(t, data, cut, feed)
	})
}

// checkScanSplits feeds data whole, a byte at a time and cut in two at
// cut, and requires the same decision of each.
func checkScanSplits(t *testing.T, data []byte, cut uint16, feed func(*testing.T, []byte, ...int) (*limitConn, int)) {
	t.Helper()
	whole, _ := feed(t, data)
	ones := make([]int, len(data))
	for i := range ones {
		ones[i] = 1
	}
	for _, split := range [][]int{ones, {int(cut) % (len(data) + 1)}} {
		got, _ := feed(t, data, split...)
		if got.bad != whole.bad {
			t.Fatalf("split %v: error %q, whole: %q", split, got.bad, whole.bad)
		}
		if whole.bad != "" {
			continue
		}
		if got.state != whole.state || got.left != whole.left || got.skip != whole.skip ||
			got.total != whole.total || got.line != whole.line || !bytes.Equal(got.hdr, whole.hdr) {
			t.Fatalf("split %v ends in state %d left %d skip %d total %d line %d hdr %q; whole: %d %d %d %d %d %q",
				split, got.state, got.left, got.skip, got.total, got.line, got.hdr,
				whole.state, whole.left, whole.skip, whole.total, whole.line, whole.hdr)
		}
	}
}

// TestLimitScanWholeFrames: a stream of complete frames within the limits
// is accepted whole however it is split, and one breaking a limit is
// stopped at its first byte when it starts in the read.
func TestLimitScanWholeFrames(t *testing.T) {
	ok := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	for cut := 0; cut <= len(ok); cut++ {
		lc, n := scanFeed(t, ok, cut)
		if lc.bad != "" || n != len(ok) || lc.state != stStart {
			t.Fatalf("cut %d: accepted %d of %d, bad %q, state %d", cut, n, len(ok), lc.bad, lc.state)
		}
	}
	for _, tc := range []struct{ frame, bad string }{
		{"*9\r\n", "invalid multibulk length"},
		{"*1\r\n$65\r\n", "invalid bulk length"},
		{"*1\r\n$x\r\n", "invalid bulk length"},
		{"*1\r\n:1\r\n", "expected '$', got ':'"},
		{"*3\r\n$60\r\n" + string(bytes.Repeat([]byte("a"), 60)) + "\r\n$60\r\n" +
			string(bytes.Repeat([]byte("b"), 60)) + "\r\n$60\r\n", "command too large"},
		{"*1\r\n$123456789012345678901234567890123\r\n", "invalid bulk length"},
	} {
		in := append(append([]byte{}, ok...), tc.frame...)
		lc, n := scanFeed(t, in)
		if lc.bad != tc.bad || n != len(ok) {
			t.Fatalf("%q: bad %q after %d bytes, want %q after %d", tc.frame, lc.bad, n, tc.bad, len(ok))
		}
	}
}

// BenchmarkLimitScan: the limit scanner over a read of 16 pipelined
// commands, as redis-benchmark -P 16 sends them (bytes/s in MB/s).
func BenchmarkLimitScan(b *testing.B) {
	for _, bc := range []struct{ name, cmd string }{
		{"incr", "*2\r\n$4\r\nINCR\r\n$20\r\ncounter:000000123456\r\n"},
		{"set-100B", "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000123456\r\n$100\r\n" +
			string(bytes.Repeat([]byte("x"), 100)) + "\r\n"},
	} {
		in := bytes.Repeat([]byte(bc.cmd), 16)
		lc := newLimitConn(nil, frameLimits{maxArgs: 1 << 20, maxBulk: 512 << 20, maxCmd: 512 << 20, maxInline: 64 << 10}, false)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if lc.scan(in) != len(in) {
					b.Fatal(lc.bad)
				}
			}
		})
	}
}

// TestAtoi: atoi (the reader's and the limit scanner's number parser)
// fails exactly where strconv.Atoi does and otherwise returns the same
// number (edges, then random values).
func TestAtoi(t *testing.T) {
	cases := []string{"", "+", "-", "0", "-0", "+7", "12", "007", "1a", " 1", "1 ", "1_0",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "99999999999999999999", "18446744073709551616"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := int64(rng.Uint64()) >> rng.IntN(64)
		cases = append(cases, strconv.FormatInt(v, 10))
	}
	for _, c := range cases {
		want, err := strconv.Atoi(c)
		got, ok := atoi([]byte(c))
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("atoi(%q) = %d, %v; Atoi: %d, %v", c, got, ok, want, err)
		}
	}
}
