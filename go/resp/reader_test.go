// reader_test.go -- the loop transport's in-place RESP reader: what it
// parses, that it allocates nothing per command in steady state, that it
// agrees with redcon's Reader (FuzzReaderDifferential), and that nothing
// the server keeps past a burst points into the reused input.
package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/redcon"

	"github.com/mantisdb/mantisdb/go/storage"
)

// readAll runs rd over chunks as the loop does (read, run, keep) and
// returns copies of the commands' arguments, the error, and the offset in
// the whole input of the frame that failed.  Each chunk is overwritten
// after keep, as the loop's shared read buffer is by the next read: a
// reader that kept a pointer into it instead of a copy yields wrong
// commands.
func readAll(chunks [][]byte) (cmds [][]string, errAt int, err error) {
	var rd respReader
	fed := 0
	for _, ch := range chunks {
		got, rerr := rd.read(ch)
		for _, c := range got {
			cmds = append(cmds, argStrings(c.Args))
		}
		fed += len(ch)
		errAt = fed - len(rd.rest)
		rd.keep()
		for i := range ch {
			ch[i] = 0xAA
		}
		if rerr != nil {
			return cmds, errAt, rerr
		}
	}
	return cmds, errAt, nil
}

func argStrings(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

// oracleFeed hands redcon's Reader the bytes of one callback, as the loop
// transport did before it had its own reader.
type oracleFeed struct{ b []byte }

var errOracleDry = errors.New("oracle: input used up")

func (f *oracleFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, errOracleDry
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// redconAll is readAll with redcon's Reader, fed as the loop fed it.
func redconAll(chunks [][]byte) (cmds [][]string, err error) {
	var f oracleFeed
	rd := redcon.NewReader(&f)
	for _, ch := range chunks {
		f.b = ch
		for {
			got, rerr := rd.ReadCommands()
			if errors.Is(rerr, errOracleDry) {
				break
			}
			if rerr != nil {
				return cmds, rerr
			}
			for _, c := range got {
				cmds = append(cmds, argStrings(c.Args))
			}
		}
	}
	return cmds, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestReaderParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]string
		err  string
	}{
		{"multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}, ""},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\r\n\r\n",
			[][]string{{"PING"}, {"SET", "", "\r\n"}}, ""},
		{"binary arg", "*2\r\n$4\r\nECHO\r\n$3\r\n\x00*\n\r\n", [][]string{{"ECHO", "\x00*\n"}}, ""},
		{"incomplete bulk", "*2\r\n$3\r\nGET\r\n$3\r\nab", nil, ""},
		{"incomplete header", "*2", nil, ""},
		{"signed lengths", "*+1\r\n$+2\r\nhi\r\n", [][]string{{"hi"}}, ""},
		{"inline", "SET k v\r\nGET k\n", [][]string{{"SET", "k", "v"}, {"GET", "k"}}, ""},
		{"inline spaces and empty lines", "\r\n\n  PING   x  \r\n", [][]string{{"PING", "x"}}, ""},
		{"inline quotes", "SET \"a b\" 'c\\'d' \"\\n\\r\\t\\x\" \"\"\r\n",
			[][]string{{"SET", "a b", "c'd", "\n\r\tx", ""}}, ""},
		{"inline tab is no separator", "A\tB\r\n", [][]string{{"A\tB"}}, ""},
		{"inline incomplete", "GET k", nil, ""},
		{"quote inside an argument", "PING\r\nSET a\"b\" c\r\n", [][]string{{"PING"}}, "Protocol error: unbalanced quotes in request"},
		{"text after a closing quote", "SET \"a\"b\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"unclosed quote", "SET \"a\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"escape at the end", "SET \"a\\\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"zero count", "*0\r\n", nil, "Protocol error: invalid multibulk length"},
		{"negative count", "*-1\r\n", nil, "Protocol error: invalid multibulk length"},
		{"count not a number", "*x\r\n", nil, "Protocol error: invalid multibulk length"},
		{"count without CR", "*1\n", nil, "Protocol error: invalid multibulk length"},
		{"not a bulk", "*1\r\n:5\r\n", nil, "Protocol error: expected '$', got ':'"},
		{"not a bulk, non-ASCII", "*1\r\n\xff", nil, "Protocol error: expected '$', got '\u00ff'"},
		{"bulk length not a number", "*1\r\n$x\r\n", nil, "Protocol error: invalid bulk length"},
		{"negative bulk length", "*1\r\n$-1\r\n", nil, "Protocol error: invalid bulk length"},
		{"bulk without CRLF", "*1\r\n$1\r\nab\r\n", nil, "Protocol error: invalid bulk length"},
		{"bulk length without CR", "*1\r\n$1\nab\r\n", nil, "Protocol error: invalid bulk length"},
		{"commands before the bad frame", "PING\r\n*1\r\n$1\r\na\r\n*x\r\n", [][]string{{"PING"}, {"a"}}, "Protocol error: invalid multibulk length"},
		{"bulk length past the int range", "*1\r\n$99999999999999999999\r\n", nil, "Protocol error: invalid bulk length"},
		{"huge bulk length is incomplete", "*1\r\n$9223372036854775807\r\nab\r\n", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := readAll([][]byte{[]byte(tc.in)})
			if errText(err) != tc.err {
				t.Fatalf("error %q, want %q", errText(err), tc.err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("commands %q, want %q", got, tc.want)
			}
			// Every split in two callbacks gives the same.
			for i := 1; i < len(tc.in); i++ {
				in := []byte(tc.in)
				got2, _, err2 := readAll([][]byte{in[:i], in[i:]})
				if errText(err2) != tc.err || fmt.Sprintf("%q", got2) != fmt.Sprintf("%q", tc.want) {
					t.Fatalf("split at %d: %q, %v; want %q, %q", i, got2, err2, tc.want, tc.err)
				}
			}
		})
	}
}

// setBurst is a pipelined burst of n SETs of valueSize-byte values.
func setBurst(n, valueSize int) []byte {
	var b bytes.Buffer
	v := strings.Repeat("v", valueSize)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key:%012d", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	return b.Bytes()
}

// TestReaderAllocs: once a connection's slices have grown, parsing a
// burst allocates nothing, whole or split mid-command across callbacks.
func TestReaderAllocs(t *testing.T) {
	in := setBurst(64, 100)
	in = append(in, "GET k\r\nINCR \"a b\"\r\n"...) // inline ones too (no escapes)
	for _, cut := range []int{len(in), len(in) / 2, len(in) - 3} {
		var rd respReader
		parse := func() {
			n := 0
			for _, ch := range [][]byte{in[:cut], in[cut:]} {
				cmds, err := rd.read(ch)
				if err != nil {
					t.Fatal(err)
				}
				n += len(cmds)
				rd.keep()
			}
			if n != 66 {
				t.Fatalf("cut %d: %d commands, want 66", cut, n)
			}
		}
		parse() // grow the slices
		if a := testing.AllocsPerRun(50, parse); a != 0 {
			t.Errorf("cut %d: %v allocations per burst, want 0", cut, a)
		}
	}
}

// BenchmarkReader parses a pipelined burst of SETs with the loop's reader
// and, for comparison, with redcon's as the loop used it (allocs/op is
// per burst of 64 commands).
func BenchmarkReader(b *testing.B) {
	in := setBurst(64, 100)
	b.Run("own", func(b *testing.B) {
		var rd respReader
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for i := 0; i < b.N; i++ {
			if cmds, err := rd.read(in); err != nil || len(cmds) != 64 {
				b.Fatal(len(cmds), err)
			}
			rd.keep()
		}
	})
	b.Run("redcon", func(b *testing.B) {
		var f oracleFeed
		rd := redcon.NewReader(&f)
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for i := 0; i < b.N; i++ {
			f.b = in
			n := 0
			for {
				cmds, err := rd.ReadCommands()
				if errors.Is(err, errOracleDry) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n += len(cmds)
			}
			if n != 64 {
				b.Fatal(n)
			}
		}
	})
}

// oracleHangs reports input redcon's Reader cannot be given: a count it
// would loop over for long (it counts through missing bulks one by one)
// or a length near the int range, whose sum with the offset wraps and
// makes it index out of range.  The limit scanner (limit.go) keeps both
// from the reader in the server.
func oracleHangs(in []byte) bool {
	for i, c := range in {
		if c != '*' && c != '$' {
			continue
		}
		j := i + 1
		if j < len(in) && in[j] == '+' {
			j++
		}
		v := 0
		for ; j < len(in) && in[j] >= '0' && in[j] <= '9'; j++ {
			v = min(v*10+int(in[j]-'0'), 1<<62)
		}
		switch {
		case c == '$' && v >= 1<<62:
			return true
		case c == '*' && v > 1<<16 && bytes.HasPrefix(in[j:], []byte("\r\n")):
			return true
		}
	}
	return false
}

// chunksOf splits in at points drawn from seed.
func chunksOf(in []byte, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed>>32|1))
	var chunks [][]byte
	for len(in) > 0 {
		n := 1 + rng.IntN(len(in))
		if seed%3 == 0 {
			n = min(n, 1+rng.IntN(8)) // small pieces
		}
		chunks = append(chunks, bytes.Clone(in[:n]))
		in = in[n:]
	}
	return chunks
}

// FuzzReaderDifferential: split at any points into callbacks, the loop's
// reader yields the commands redcon's Reader yields and fails where it
// fails with the same text.  The one difference is on purpose (reader.go):
// before a malformed frame it returns every complete command, where redcon
// drops those it parsed in the same pass; so on an error redcon's commands
// must be a prefix of ours, ours must be exactly what redcon yields for
// the input up to the bad frame, and the bad frame alone must fail in
// redcon with the same error.
func FuzzReaderDifferential(f *testing.F) {
	for _, seed := range []string{
		"PING\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", string(setBurst(3, 10)),
		"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\r\n\r\n", "SET k v\nGET k\r\n\r\n  \r\n",
		"SET \"a b\" 'c\\'d' \"\\n\\x\"\r\nGET \"a b\"\r\n", "SET a\"b\" c\r\n", "SET \"a\"b\r\n",
		"MULTI\r\nINCR a\r\nEXEC\r\n", "*1\r\n$-1\r\n", "*-1\r\n", "*0\r\n", "*1\n", "*+1\r\n$+1\r\na\r\n",
		// go/resp/badinput_test.go's malformed frames
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n" + strings.Repeat("x", 1025) + "\r\n",
		"*2\r\n$3\r\nGET\r\n$99999999999\r\n", "*2\r\n$3\r\nGET\r\n$-5\r\n", "*99999999\r\n", "*x\r\n",
		"*" + strings.Repeat("1", 40), "*1\r\n:5\r\n", "PING\r\n*1\r\n$9999999999\r\n", "SET \"k v\r\n",
		"SET q 1\r\nQUIT\r\nSET q 2\r\n", "SET \"a\\x00\" 'b'\r\n",
	} {
		f.Add([]byte(seed), uint64(len(seed)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if oracleHangs(in) {
			readAll(chunksOf(in, seed)) // must not panic; nothing to compare with
			return
		}
		want, werr := redconAll([][]byte{bytes.Clone(in)})
		for _, chunks := range [][][]byte{{bytes.Clone(in)}, chunksOf(in, seed)} {
			n := len(chunks)
			got, errAt, err := readAll(chunks)
			if errText(err) != errText(werr) {
				t.Fatalf("%d chunks: error %q, redcon %q", n, errText(err), errText(werr))
			}
			if err == nil {
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
					t.Fatalf("%d chunks: %q, redcon %q", n, got, want)
				}
				continue
			}
			if len(want) > len(got) || fmt.Sprintf("%q", got[:len(want)]) != fmt.Sprintf("%q", want) {
				t.Fatalf("%d chunks: %q, redcon's are not a prefix: %q", n, got, want)
			}
			before, berr := redconAll([][]byte{bytes.Clone(in[:errAt])})
			if berr != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", before) {
				t.Fatalf("%d chunks: %q before the bad frame at %d, redcon %q, %v", n, got, errAt, before, berr)
			}
			after, aerr := redconAll([][]byte{bytes.Clone(in[errAt:])})
			if len(after) != 0 || errText(aerr) != errText(err) {
				t.Fatalf("%d chunks: the bad frame at %d alone: redcon %q, %v", n, errAt, after, aerr)
			}
		}
	})
}

// TestArgsNotRetained: arguments point into input the loop reuses, so
// whatever outlives a burst must be a copy.  Each case leaves something
// behind (a MULTI queue, a client name, a WATCHed key), then a second
// connection on the same loop sends other bytes, which land in the loop's
// read buffer where the first connection's were.
func TestArgsNotRetained(t *testing.T) {
	ts := startServer(t, Config{Loops: 1}, storage.Options{})
	ctx := t.Context()
	pad := strings.Repeat("Z", 300)
	overwrite := func() {
		o := ts.raw(t)
		io.WriteString(o, "SET "+pad+" "+pad+"\r\nSET wk "+pad+"\r\n")
		for _, want := range []string{"+OK", "+OK"} {
			if got := o.line(t); got != want {
				t.Fatalf("overwriting: %q", got)
			}
		}
	}
	val := strings.Repeat("a", 100)

	a := ts.raw(t)
	io.WriteString(a, "CLIENT SETNAME alpha\r\nMULTI\r\nSET qk "+val+"\r\nAPPEND qk bcd\r\n")
	for _, want := range []string{"+OK", "+OK", "+QUEUED", "+QUEUED"} {
		if got := a.line(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	overwrite()
	io.WriteString(a, "EXEC\r\nCLIENT GETNAME\r\n")
	for _, want := range []string{"*2", "+OK", ":103", "$5", "alpha"} {
		if got := a.line(t); got != want {
			t.Fatalf("after the overwrite: got %q, want %q", got, want)
		}
	}
	rdb := ts.client(t, 2, "")
	if v, err := rdb.Get(ctx, "qk").Result(); err != nil || v != val+"bcd" {
		t.Fatalf("queued SET stored %q, %v", v, err)
	}

	// WATCH wk, absent; another client creates it (and overwrites the
	// buffer): EXEC must see the change of the key WATCH named, not of
	// "ZZ" (absent, never written), which a kept slice would name.
	w := ts.raw(t)
	io.WriteString(w, "DEL wk\r\nWATCH wk\r\n")
	if got := w.line(t); got != ":1" {
		t.Fatal(got)
	}
	if got := w.line(t); got != "+OK" {
		t.Fatal(got)
	}
	overwrite()
	io.WriteString(w, "MULTI\r\nSET other 1\r\nEXEC\r\n")
	for _, want := range []string{"+OK", "+QUEUED", "*-1"} {
		if got := w.line(t); got != want {
			t.Fatalf("WATCH: got %q, want %q", got, want)
		}
	}
}

// TestReaderReleasesLarge: a large command or a long pipeline leaves no
// large slices behind once it is done.
func TestReaderReleasesLarge(t *testing.T) {
	var many bytes.Buffer
	fmt.Fprintf(&many, "*%d\r\n", 2*maxKeptArgs)
	for i := 0; i < 2*maxKeptArgs; i++ {
		many.WriteString("$1\r\nx\r\n")
	}
	big := fmt.Sprintf("*1\r\n$%d\r\n%s\r\n", 2*maxKeptTail, strings.Repeat("v", 2*maxKeptTail))
	tests := []struct {
		name string
		in   []byte
	}{
		{"many arguments", many.Bytes()},
		{"long pipeline", bytes.Repeat([]byte("PING\r\n"), 2*maxKeptCmds)},
		{"large value in pieces", []byte(big)},
		{"large value, then a partial command", []byte(big + "*1\r\n$4\r\nPI")},
		{"large escaped inline argument", []byte("ECHO \"" + strings.Repeat("\\t", maxKeptTail) + "\"\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd respReader
			half := len(tc.in) / 2
			n := 0
			for _, ch := range [][]byte{tc.in[:half], tc.in[half:]} {
				cmds, err := rd.read(ch)
				if err != nil {
					t.Fatal(err)
				}
				n += len(cmds)
				rd.keep()
			}
			if n == 0 {
				t.Fatal("no command parsed")
			}
			tailMax := maxIdleBuf
			if len(rd.tail) > 0 { // a partial command waits
				tailMax = maxKeptTail
			}
			if cap(rd.args) > maxKeptArgs || cap(rd.cmds) > maxKeptCmds || cap(rd.tail) > tailMax || cap(rd.scratch) > maxIdleBuf {
				t.Fatalf("kept args %d, cmds %d, tail %d, scratch %d", cap(rd.args), cap(rd.cmds), cap(rd.tail), cap(rd.scratch))
			}
		})
	}
}

// TestReaderPiecesLinear: a large argument arriving in small pieces is
// copied into the tail about once, not once per piece (which made its
// cost grow with the square of its size and stalled the loop).
func TestReaderPiecesLinear(t *testing.T) {
	const size, piece = 1 << 20, 1 << 10
	in := []byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n", size, strings.Repeat("v", size)))
	var rd respReader
	got := 0
	for off := 0; off < len(in); off += piece {
		cmds, err := rd.read(in[off:min(off+piece, len(in))])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			if len(c.Args) != 3 || len(c.Args[2]) != size {
				t.Fatalf("parsed %d args", len(c.Args))
			}
			got++
		}
		rd.keep()
	}
	if got != 1 {
		t.Fatalf("%d commands, want 1", got)
	}
	if rd.moved > 2*len(in) {
		t.Fatalf("keep copied %d bytes for a %d-byte command", rd.moved, len(in))
	}
}

// TestReaderPipelineAllocs: a pipelining client whose reads end inside
// a command, read after read, as gnet hands them (64 KiB at a time),
// allocates nothing once its buffers have grown.
func TestReaderPipelineAllocs(t *testing.T) {
	var stream []byte
	for i := 0; len(stream) < 1<<20; i++ {
		stream = fmt.Appendf(stream, "*3\r\n$3\r\nSET\r\n$8\r\nk%07d\r\n$100\r\n%s\r\n", i, strings.Repeat("v", 100))
	}
	const chunk = 64 << 10
	var rd respReader
	off := 0
	step := func() {
		if off+chunk > len(stream) {
			off = 0
			rd.tail = rd.tail[:0] // start again at a command's start
		}
		if _, err := rd.read(stream[off : off+chunk]); err != nil {
			t.Fatal(err)
		}
		rd.keep()
		off += chunk
	}
	for range 8 {
		step() // grow the buffers
	}
	if n := testing.AllocsPerRun(50, step); n != 0 {
		t.Fatalf("%.1f allocations per 64 KiB read", n)
	}
}

// TestReaderManyArgsInPieces: a command of many arguments arriving in
// small pieces is parsed once, going on where the last read stopped, not
// again from its start on every read; and what it parses is the command.
func TestReaderManyArgsInPieces(t *testing.T) {
	const pairs, piece = 20000, 512
	var in bytes.Buffer
	fmt.Fprintf(&in, "*%d\r\n$4\r\nMSET\r\n", 2*pairs+1)
	for i := range pairs {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		fmt.Fprintf(&in, "$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	in.WriteString("PING\r\n")
	b := in.Bytes()
	var rd respReader
	var got [][]string
	pieces := 0
	for off := 0; off < len(b); off += piece {
		pieces++
		cmds, err := rd.read(b[off:min(off+piece, len(b))])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			var args []string
			for _, a := range c.Args {
				args = append(args, string(a))
			}
			got = append(got, args)
		}
		rd.keep()
	}
	if len(got) != 2 || len(got[0]) != 2*pairs+1 || got[1][0] != "PING" {
		t.Fatalf("parsed %d commands", len(got))
	}
	for i := range pairs {
		if got[0][1+2*i] != fmt.Sprintf("k%d", i) || got[0][2+2*i] != fmt.Sprintf("v%d", i) {
			t.Fatalf("pair %d: %q %q", i, got[0][1+2*i], got[0][2+2*i])
		}
	}
	if max := 2*pairs + 1 + pieces; rd.headers > max {
		t.Fatalf("%d element headers parsed for %d elements in %d pieces (at most %d)", rd.headers, 2*pairs+1, pieces, max)
	}
}
