// differential_test.go -- redis-server as the reference model: random
// sequences of string, keyspace and transaction commands, drawn from fixed
// seeds, go to a throwaway redis-server and to this server, and every reply
// must match, its RESP type included (a client library depends on the
// type: an integer is not a bulk string, a status is not either).
//
// What the generator leaves out, and why (docs/REDIS.md, "Differences
// from Redis", unless said otherwise):
//   - RANDOMKEY, SCAN cursors, INFO, CLIENT, CONFIG, TIME, COMMAND, HELLO's
//     reply, DEBUG, OBJECT: not deterministic, or documented as ours.  A
//     full SCAN is compared as the set of keys it returns (scanAll).
//   - Empty keys (refused here), SELECT of another database, types other
//     than strings (no WRONGTYPE case can be built), values past
//     --max-value-size: documented differences.
//   - Expiry times past the year 2262 (refused here, accepted there), and
//     short TTLs: a key that expires during the run would race the two
//     servers' clocks.  Future expiries are far off and a time in the past
//     is one that deletes at once (EXPIRE 0, EXPIREAT 1).
//   - SET with an EXAT/PXAT in the past (docs/REDIS.md, Expiry): gone at
//     once here, while redis-server 7.0 stores the key and expires it
//     later, so its DBSIZE depends on when its expiry cycle ran.  GETEX
//     and the EXPIRE family delete at once in both, and are in.
//   - FLUSHDB/FLUSHALL inside MULTI (refused here), inline commands and
//     malformed frames (the reader's documented strictness).  WATCH is
//     in, with only the watched keys written before EXEC (watch), so the
//     documented false conflicts of its version slots cannot arise.
//
// What it normalizes: positive TTL-family answers (TTL, PTTL, EXPIRETIME,
// PEXPIRETIME), which differ by the time between the two servers' runs
// of a command, match within a tolerance; the keys of KEYS and of a
// SCAN from 0 are compared sorted (Redis's order is unspecified, ours
// ascending); such a SCAN has a COUNT over the whole keyspace, so both
// answer cursor 0.
//
// Relative expiries are made so that which of two is later never depends
// on timing: each is a whole number of seconds unique to its step and
// growing with it (relSeconds), so EXPIRE ... GT/LT decides the same on
// both servers even when Redis's clock did not move a millisecond
// between two commands and ours (nanoseconds) did.
//
// A mismatch fails with the seed, the step, the command, both replies and
// the commands before it, quoted for redis-cli.
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	diffSteps   = 2000 // commands per seed
	diffHistory = 20   // commands shown before a mismatch
)

// The seeds `go test` runs, in RESP2 and in RESP3 (HELLO 3).
// MANTISDB_TEST_DIFF_SEEDS=n runs n others instead, in both.
var (
	diffSeeds      = []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	diffSeedsRESP3 = []uint64{101, 102}
)

func TestDifferentialRedis(t *testing.T) {
	redisAddr := startRedis(t)
	ts := startServer(t, Config{}, storage.Options{})
	run := func(seed uint64, proto int) {
		t.Run(fmt.Sprintf("seed%d/resp%d", seed, proto), func(t *testing.T) {
			ref := dialDiff(t, "unix", redisAddr)
			got := dialDiff(t, "tcp", ts.addr)
			for _, c := range []*diffConn{ref, got} {
				if r := c.do(t, "FLUSHALL"); r.String() != "+OK" {
					t.Fatalf("FLUSHALL: %s", r)
				}
			}
			runDiff(t, seed, proto, ref, got)
		})
	}
	if v := os.Getenv("MANTISDB_TEST_DIFF_SEEDS"); v != "" {
		// A longer search, by hand: n other seeds, each in RESP2 and RESP3.
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("MANTISDB_TEST_DIFF_SEEDS=%q: %v", v, err)
		}
		for i := range uint64(n) {
			run(1000+i, 2)
			run(1000+i, 3)
		}
		return
	}
	for _, seed := range diffSeeds {
		run(seed, 2)
	}
	for _, seed := range diffSeedsRESP3 {
		run(seed, 3)
	}
}

// startRedis runs a redis-server for the test on a Unix socket (no TCP
// port to collide with another test or user on the machine) and returns
// the socket's path.  Without redis-server the test skips, except in CI
// (build.sh installs it there), where a skip would hide that it cannot
// fail.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := osexec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not on PATH (build.sh installs it): %v", err)
		}
		t.Skipf("redis-server is not on PATH: %v", err)
	}
	// A short directory: a socket path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "mantis-redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	logFile := filepath.Join(dir, "redis.log")
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	cmd := osexec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logFile, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("unix", sock); err == nil {
			_ = c.Close()
			return sock
		}
		select {
		case <-exited:
			t.Fatalf("redis-server exited: %s", logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %s", sock, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runDiff sends seed's commands to ref (Redis) and got (ours) in
// pipelined bursts (one to eight units: a command, a transaction or a
// run), so that the loops' batched reads and writes are held to Redis
// too, and compares each reply.
func runDiff(t *testing.T, seed uint64, proto int, ref, got *diffConn) {
	g := &diffGen{r: rand.New(rand.NewPCG(seed, 0x6d616e746973))}
	// HELLO's reply names the server, so it is sent, not compared.
	hello := func() {
		for _, c := range []*diffConn{ref, got} {
			if r := c.do(t, "HELLO", "3"); r.kind != '%' {
				t.Fatalf("HELLO 3: %s", r)
			}
		}
	}
	if proto == 3 {
		hello()
	}
	var hist []string // every command sent, for the failure message
	var queued []string
	inMulti := false
	for len(hist) < diffSteps {
		// A whole SCAN walks each server's own cursors, so it goes alone
		// (and outside MULTI).
		if g.r.IntN(40) == 0 {
			opts := []string{"MATCH", g.pattern(), "COUNT", g.pick([]string{"1", "3", "100"})}
			if g.r.IntN(3) == 0 {
				opts = append(opts, "TYPE", g.pick([]string{"string", "STRING", "list", "none"}))
			}
			a, b := scanAll(t, ref, opts), scanAll(t, got, opts)
			scan := "SCAN <cursor> " + quoteCmd(opts) + " (from 0 back to 0)"
			hist = append(hist, scan)
			if !slices.Equal(a, b) {
				diffFail(t, seed, hist, scan, fmt.Sprintf("%q", a), fmt.Sprintf("%q", b))
			}
			continue
		}
		var burst [][]string
		for n := 1 + g.r.IntN(8); len(burst) < n; {
			burst = append(burst, g.unit()...)
		}
		ra, rb := ref.pipeline(t, burst), got.pipeline(t, burst)
		reset := false
		for i, args := range burst {
			hist = append(hist, quoteCmd(args))
			name := strings.ToLower(args[0])
			a, b := ra[i], rb[i]
			// The transaction state follows Redis's replies.
			var names []string
			switch {
			case name == "multi" && a.String() == "+OK":
				inMulti, queued = true, nil
			case name == "reset":
				inMulti, queued, reset = false, nil, true
			case (name == "exec" || name == "discard") && inMulti:
				inMulti, names = false, queued
			case inMulti && a.String() == "+QUEUED":
				queued = append(queued, name)
			}
			if !sameReply(name, names, a, b) {
				diffFail(t, seed, hist, quoteCmd(args), a.String(), b.String())
			}
		}
		// Each MULTI block ends in its burst (unit), so none is open here.
		if inMulti {
			t.Fatalf("seed %d, step %d: the generator left a transaction open", seed, len(hist))
		}
		if reset && proto == 3 { // RESET went back to RESP2
			hello()
		}
	}
}

func diffFail(t *testing.T, seed uint64, hist []string, cmd, want, got string) {
	t.Helper()
	from := max(0, len(hist)-diffHistory)
	t.Fatalf("seed %d, step %d: %s\nredis-server: %s\nmantisdb:     %s\ncommands %d..%d (redis-cli):\n%s",
		seed, len(hist), cmd, want, got, from+1, len(hist), strings.Join(hist[from:], "\n"))
}

// sameReply compares the replies to one command, name (lower case); for
// an EXEC or DISCARD, queued names the commands of the transaction.
func sameReply(name string, queued []string, a, b wireReply) bool {
	switch name {
	case "ttl", "expiretime":
		return a.kind == ':' && b.kind == ':' && closeInts(a.s, b.s, 2) || a.String() == b.String()
	case "pttl", "pexpiretime":
		return a.kind == ':' && b.kind == ':' && closeInts(a.s, b.s, 2000) || a.String() == b.String()
	case "keys":
		if a.kind == '*' && b.kind == '*' && !a.null && !b.null {
			return slices.Equal(sortedElems(a), sortedElems(b))
		}
	case "scan":
		if a.kind == '*' && b.kind == '*' && len(a.elems) == 2 && len(b.elems) == 2 {
			return a.elems[0].String() == b.elems[0].String() &&
				sameReply("keys", nil, a.elems[1], b.elems[1])
		}
	case "exec":
		if a.kind == '*' && b.kind == '*' && len(a.elems) == len(queued) && len(b.elems) == len(queued) {
			for i, q := range queued {
				if !sameReply(q, nil, a.elems[i], b.elems[i]) {
					return false
				}
			}
			return true
		}
	}
	return a.String() == b.String()
}

// closeInts: a and b are both positive and within tol, or equal.
func closeInts(a, b string, tol int64) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if x <= 0 || y <= 0 {
		return x == y
	}
	return x-y <= tol && y-x <= tol
}

func sortedElems(r wireReply) []string {
	var out []string
	for _, e := range r.elems {
		out = append(out, e.String())
	}
	slices.Sort(out)
	return out
}

// scanAll runs SCAN from cursor 0 with opts until it returns to 0 and
// returns the keys it saw, sorted, each once (Redis may return a key
// twice when its table grows during the scan).
func scanAll(t *testing.T, c *diffConn, opts []string) []string {
	t.Helper()
	var keys []string
	cursor := "0"
	for calls := 0; ; calls++ {
		if calls > 1000 {
			t.Fatalf("SCAN did not end after %d calls", calls)
		}
		r := c.do(t, append([]string{"SCAN", cursor}, opts...)...)
		if r.kind != '*' || len(r.elems) != 2 {
			t.Fatalf("SCAN %s: %s", cursor, r)
		}
		for _, k := range r.elems[1].elems {
			keys = append(keys, k.s)
		}
		if cursor = r.elems[0].s; cursor == "0" {
			break
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func quoteCmd(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteArg(a)
	}
	return strings.Join(q, " ")
}

// quoteArg quotes what redis-cli would split or misread (its double
// quotes take Go's escapes: \\, \", \n, \r, \t, \xHH).
func quoteArg(a string) string {
	plain := func(r rune) bool { return r > ' ' && r <= '~' && !strings.ContainsRune("\"'\\", r) }
	if a == "" || strings.ContainsFunc(a, func(r rune) bool { return !plain(r) }) {
		return strconv.Quote(a)
	}
	return a
}

// The generator.  Keys share prefixes (KEYS and SCAN patterns select
// among them); values are integers (some at the int64 limits), floats,
// text and the empty string, so that each command meets the values it
// refuses as well as those it takes.
var (
	diffKeys   = []string{"k", "k1", "k10", "key", "k*1", "user:1", "user:2", "user:10", "a b", "\x00k\xff"}
	diffValues = []string{
		"0", "1", "-1", "42", "007", "+5", " 12", "12 ", "1.5", "-0.25", "3.0", "1e3", "0x1A",
		"9223372036854775807", "9223372036854775806", "-9223372036854775808", "-9223372036854775807",
		"18446744073709551616", "abc", "", "hello world", "inf", "nan", "1e308", "a\x00b\r\n",
		"10", "-3", "2.5", "9223372036854775800", "-0", "9223372036854775808", "1e4000", "0.1",
		strings.Repeat("long value ", 30),
	}
	diffIncrs = []string{
		"1", "-1", "0", "100", "-100", "9223372036854775807", "-9223372036854775808",
		"9223372036854775806", "1.5", "abc", "", " 1", "01",
	}
	diffFloats = []string{
		"0.1", "-0.1", "1", "3", "-2.5", "1e10", "1.5e308", "-1.5e308", "0x10", "1e-5",
		"abc", "", "inf", "-inf", "nan", " 1", "5.", ".5", "+3", "-0", "1e-400", "0x1p3", "1e4000",
		"4.9e-324", "1.7976931348623157e308", "123456789012345678901234567890", "0.30000000000000004", "1e+5",
	}
	diffRanges  = []string{"0", "1", "2", "5", "-1", "-3", "-100", "100", "9223372036854775807", "-9223372036854775808", "x", "+1", "01", ""}
	diffOffsets = []string{"0", "1", "3", "10", "-1", "x", "+1", "01", ""}
	// Absolute expiries: far future (2065 and 2100), the past (deletes).
	diffAtSecs = []string{"3000000000", "4102444800", "1", "0", "-1"}
	diffAtMs   = []string{"3000000000000", "4102444800123", "4102444800000", "1", "0", "-5"}
	// Invalid times: refused by SET, SETEX, GETEX (0 and negative too).
	diffBadTimes = []string{"0", "-1", "x", "1.5", ""}
	// diffLong and diffOdd are arguments that errors echo: long ones are
	// cut, and CR, LF and NUL must not break the reply.
	diffLong     = strings.Repeat("0123456789", 20)
	diffOdd      = []string{"x", "x y", diffLong, diffLong[:127], diffLong[:129], "a\x00b", "a\r\nb", "a\nb", "\x00", ""}
	diffPatterns = []string{
		"*", "k*", "k?", "k??", "user:*", "user:1*", "*1*", "[ak]*", "[^k]*", "?", "*e*", "a b", "k\\1",
		"nomatch*", "k\\*1", "k\\*", "k*\\1", "k\\", "\\k*", "k[", "k[1", "[k", "us[e]r*", "[a-z]*",
		"[z-a]*", "k[\\]]*", "user\\:*", "*\\", "**1", "k[*]1", "[]k", "k1*0",
	}
)

type diffGen struct {
	r    *rand.Rand
	step int      // counts relSeconds calls: each relative expiry is unique
	only []string // when set, the keys to draw from (watch)
}

func (g *diffGen) pick(from []string) string { return from[g.r.IntN(len(from))] }
func (g *diffGen) key() string {
	if g.only != nil {
		return g.pick(g.only)
	}
	return g.pick(diffKeys)
}
func (g *diffGen) value() string   { return g.pick(diffValues) }
func (g *diffGen) pattern() string { return g.pick(diffPatterns) }

func (g *diffGen) keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = g.key()
	}
	return out
}

// relSeconds is a relative expiry: 100,000 s times a random 1..50, plus
// ten seconds per relative expiry drawn before.  Two draws with different
// multiples are ordered by them (by far more than a run lasts), two with
// the same multiple by the order they were drawn in (by ten seconds or
// more, far more than the commands between them take).  All stay decades
// short of the absolute times in diffAtSecs.
func (g *diffGen) relSeconds() int64 {
	g.step++
	return int64(1+g.r.IntN(50))*100000 + 10*int64(g.step)
}

// expiry is an option and its time for SET or GETEX: mostly valid.
func (g *diffGen) expiry() []string {
	opt := g.pick([]string{"EX", "PX", "EXAT", "PXAT"})
	if g.r.IntN(10) == 0 {
		return []string{opt, g.pick(diffBadTimes)}
	}
	switch opt {
	case "EX":
		return []string{opt, strconv.FormatInt(g.relSeconds(), 10)}
	case "PX":
		return []string{opt, strconv.FormatInt(g.relSeconds()*1000+int64(g.r.IntN(500)), 10)}
	case "EXAT":
		return []string{opt, g.pick(diffAtSecs[:2])}
	default:
		return []string{opt, g.pick(diffAtMs[:3])}
	}
}

// unit is one command, or a whole MULTI ... EXEC/DISCARD block, or
// WATCH, commands of the watched keys, and such a block.
func (g *diffGen) unit() [][]string {
	if g.r.IntN(60) == 0 {
		return g.watch()
	}
	if g.r.IntN(25) == 0 {
		return g.multi()
	}
	if g.r.IntN(30) == 0 {
		return g.run()
	}
	switch g.r.IntN(200) {
	case 0:
		return [][]string{{"EXEC"}}
	case 1:
		return [][]string{{"DISCARD"}}
	}
	return [][]string{g.single()}
}

// run is a long run of plain GET, MGET, SET and MSET, with an odd
// other write: the loops serve such a run as one multi-get or one batch
// (pipeline.go), whose reads must see the writes before them.
func (g *diffGen) run() [][]string {
	var cmds [][]string
	for n := 8 + g.r.IntN(24); n > 0; n-- {
		switch g.r.IntN(12) {
		case 0, 1, 2:
			cmds = append(cmds, []string{"GET", g.key()})
		case 3:
			cmds = append(cmds, append([]string{"MGET"}, g.keys(1+g.r.IntN(4))...))
		case 4, 5, 6:
			cmds = append(cmds, []string{"SET", g.key(), g.value()})
		case 7:
			cmd := []string{"MSET"}
			for m := 1 + g.r.IntN(3); m > 0; m-- {
				cmd = append(cmd, g.key(), g.value())
			}
			cmds = append(cmds, cmd)
		default:
			cmds = append(cmds, g.single())
		}
	}
	return cmds
}

// single is one command: mostly a well-formed one of a key, sometimes
// one of the wrong arity, one neither server has, or a keyless one.
func (g *diffGen) single() []string {
	switch g.r.IntN(40) {
	case 0:
		return g.arityError()
	case 1:
		return g.unknown()
	case 2:
		// Connection commands whose replies do not name the server.
		// (RESET runs at once inside MULTI and ends it, in both.)
		return g.pick2([][]string{{"PING"}, {"PING", "a b"}, {"ECHO", g.value()}, {"SELECT", "0"},
			{"AUTH", "x"}, {"AUTH", "default", "x"}, {"AUTH", "bob", "x"}, {"RESET"}})
	case 3:
		return g.scan()
	}
	return g.mixCase(g.command())
}

// scan is one SCAN call from cursor 0 with a COUNT that covers the
// keyspace, so that both servers answer cursor 0 and every key (compared
// sorted), or a malformed one.  (Cursors are ours: docs/REDIS.md, SCAN.)
func (g *diffGen) scan() []string {
	cmd := []string{"SCAN", "0", "COUNT", "1000"}
	if g.r.IntN(2) == 0 {
		cmd = append(cmd, "MATCH", g.pattern())
	}
	if g.r.IntN(4) == 0 {
		cmd = append(cmd, "TYPE", g.pick([]string{"string", "STRING", "list", "none"}))
	}
	if g.r.IntN(5) == 0 {
		bad := g.pick2([][]string{{"COUNT", "0"}, {"COUNT", "-1"}, {"COUNT", "x"}, {"COUNT"}, {"MATCH"}, {"TYPE"}, {"BOGUS"}, {"count", "1000"}})
		cmd = append(cmd, bad...)
	}
	if g.r.IntN(20) == 0 {
		// Redis's strtoul reads some as 0, refuses the others.  (A
		// negative cursor is a large one there, unknown here.)
		cmd[1] = g.pick([]string{"x", "", "1.5", "00", "+0", "-0", " 0", "+", "18446744073709551616"})
	}
	return cmd
}

// multi is MULTI, a few commands (some refused when queued, which aborts
// the EXEC), and EXEC or DISCARD.
func (g *diffGen) multi() [][]string {
	block := [][]string{{"MULTI"}}
	for n := g.r.IntN(5); n > 0; n-- {
		switch g.r.IntN(20) {
		case 0:
			block = append(block, []string{"MULTI"}) // an error, not queued
		case 1:
			block = append(block, []string{"WATCH", g.key()}) // refused inside MULTI
		default:
			block = append(block, g.single())
		}
	}
	if g.r.IntN(6) == 0 {
		return append(block, []string{"DISCARD"})
	}
	return append(block, []string{"EXEC"})
}

// watch is WATCH of a key or two, commands of those keys only, and a
// MULTI block: the EXEC aborts (a null reply) if one of them wrote a
// watched key.  Only the watched keys are touched in between, so the
// false conflicts of the version slots (docs/REDIS.md, WATCH) cannot
// arise: which commands count as a write is held to Redis.
func (g *diffGen) watch() [][]string {
	watched := g.keys(1 + g.r.IntN(2))
	block := [][]string{append([]string{"WATCH"}, watched...)}
	g.only = watched
	for n := g.r.IntN(4); n > 0; n-- {
		block = append(block, g.command())
	}
	g.only = nil
	if g.r.IntN(10) == 0 {
		block = append(block, []string{"UNWATCH"})
	}
	return append(block, g.multi()...)
}

// unknown is a command neither server has: the error echoes its name
// and arguments, cut as Redis cuts them.
func (g *diffGen) unknown() []string {
	cmd := []string{g.pick([]string{"FOOBAR", "foo", diffLong})}
	for n := g.r.IntN(4); n > 0; n-- {
		cmd = append(cmd, g.pick(diffOdd))
	}
	if g.r.IntN(4) == 0 {
		for n := g.r.IntN(40); n > 0; n-- {
			cmd = append(cmd, g.key())
		}
	}
	return cmd
}

// mixCase sometimes writes a command's name and its options in lower or
// mixed case (Redis takes any): keys and values stay as they are.
func (g *diffGen) mixCase(cmd []string) []string {
	switch g.r.IntN(16) {
	case 0, 1:
		cmd[0] = strings.ToLower(cmd[0])
	case 2: // any mix: errors still name the command in lower case
		b := []byte(cmd[0])
		for i := range b {
			if g.r.IntN(2) == 0 {
				b[i] |= 0x20
			}
		}
		cmd[0] = string(b)
	default:
		return cmd
	}
	for i, a := range cmd {
		switch a {
		case "EX", "PX", "EXAT", "PXAT", "NX", "XX", "GT", "LT", "KEEPTTL", "GET", "PERSIST":
			if i >= 2 {
				cmd[i] = strings.ToLower(a)
			}
		}
	}
	return cmd
}

// arityError is a supported command with too few or too many arguments.
func (g *diffGen) arityError() []string {
	cases := [][]string{
		{"GET"}, {"GET", "k", "k1"}, {"SET", "k"}, {"SETNX", "k"}, {"SETEX", "k", "10"},
		{"PSETEX", "k", "10", "v", "x"}, {"GETSET", "k"}, {"GETDEL"}, {"GETEX"}, {"MGET"},
		{"MSET"}, {"MSET", "k"}, {"MSET", "k", "v", "k1"}, {"MSETNX", "k", "v", "k1"},
		{"APPEND", "k"}, {"STRLEN"}, {"GETRANGE", "k", "0"}, {"SETRANGE", "k", "0"},
		{"INCR"}, {"INCR", "k", "1"}, {"DECR"}, {"INCRBY", "k"}, {"DECRBY", "k", "1", "2"},
		{"INCRBYFLOAT", "k"}, {"DEL"}, {"UNLINK"}, {"EXISTS"}, {"TYPE"}, {"TYPE", "k", "k1"},
		{"RENAME", "k"}, {"RENAMENX", "k", "k1", "k10"}, {"EXPIRE", "k"}, {"PEXPIRE"},
		{"EXPIREAT", "k"}, {"PEXPIREAT", "k"}, {"PERSIST"}, {"TTL"}, {"PTTL", "k", "k1"},
		{"EXPIRETIME"}, {"PEXPIRETIME"}, {"DBSIZE", "x"}, {"KEYS"}, {"KEYS", "*", "*"},
		{"EXEC", "x"}, {"DISCARD", "x"},
	}
	return g.pick2(cases)
}

func (g *diffGen) pick2(from [][]string) []string { return slices.Clone(from[g.r.IntN(len(from))]) }

// command is one command with well-formed arity (its arguments may still
// be refused).
func (g *diffGen) command() []string {
	k := g.key()
	switch g.r.IntN(40) {
	case 0, 1, 2:
		return []string{"GET", k}
	case 3, 4, 5:
		return g.set(k)
	case 6:
		return []string{"SETNX", k, g.value()}
	case 7:
		cmd := g.pick([]string{"SETEX", "PSETEX"})
		n := g.relSeconds()
		if cmd == "PSETEX" {
			n *= 1000
		}
		t := strconv.FormatInt(n, 10)
		if g.r.IntN(6) == 0 {
			t = g.pick(diffBadTimes)
		}
		return []string{cmd, k, t, g.value()}
	case 8:
		return []string{"GETSET", k, g.value()}
	case 9:
		return []string{"GETDEL", k}
	case 10:
		cmd := []string{"GETEX", k}
		switch g.r.IntN(6) {
		case 0:
		case 1:
			cmd = append(cmd, "PERSIST")
		case 2:
			// A time in the past deletes the key (not given to SET: see
			// the top of the file).
			cmd = append(cmd, g.pick([]string{"EXAT", "PXAT"}), "1")
		default:
			cmd = append(cmd, g.expiry()...)
		}
		if g.r.IntN(12) == 0 { // conflicting or unknown options
			cmd = append(cmd, g.pick([]string{"PERSIST", "EX", "BOGUS"}))
		}
		return cmd
	case 11, 12:
		return append([]string{"MGET"}, g.keys(1+g.r.IntN(4))...)
	case 13, 14:
		cmd := []string{g.pick([]string{"MSET", "MSET", "MSETNX"})}
		for n := 1 + g.r.IntN(3); n > 0; n-- {
			cmd = append(cmd, g.key(), g.value())
		}
		return cmd
	case 15:
		return []string{"APPEND", k, g.value()}
	case 16:
		return []string{"STRLEN", k}
	case 17:
		return []string{"GETRANGE", k, g.pick(diffRanges), g.pick(diffRanges)}
	case 18:
		return []string{"SETRANGE", k, g.pick(diffOffsets), g.pick([]string{"", "ab", "X", "hello world"})}
	case 19, 20:
		return []string{g.pick([]string{"INCR", "DECR"}), k}
	case 21, 22:
		return []string{g.pick([]string{"INCRBY", "DECRBY"}), k, g.pick(diffIncrs)}
	case 23:
		return []string{"INCRBYFLOAT", k, g.pick(diffFloats)}
	case 24, 25:
		return append([]string{g.pick([]string{"DEL", "UNLINK"})}, g.keys(1+g.r.IntN(3))...)
	case 26:
		return append([]string{"EXISTS"}, g.keys(1+g.r.IntN(3))...)
	case 27:
		return []string{"TYPE", k}
	case 28:
		return []string{g.pick([]string{"RENAME", "RENAMENX"}), k, g.key()}
	case 29, 30, 31:
		return g.expire(k)
	case 32:
		return []string{"PERSIST", k}
	case 33, 34, 35:
		return []string{g.pick([]string{"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"}), k}
	case 36:
		return []string{"DBSIZE"}
	case 37:
		return []string{"KEYS", g.pattern()}
	case 38:
		// A valid integer or float in place: INCR's and INCRBYFLOAT's
		// answers then go on from there.
		return []string{"SET", k, g.pick([]string{"10", "-3", "2.5", "9223372036854775800"})}
	default:
		return []string{"SET", k, g.value()}
	}
}

// set is SET with a random mix of its options, sometimes a bad one.
func (g *diffGen) set(k string) []string {
	cmd := []string{"SET", k, g.value()}
	var opts [][]string
	if g.r.IntN(2) == 0 {
		opts = append(opts, g.expiry())
	}
	for _, o := range []string{"NX", "XX", "KEEPTTL", "GET"} {
		if g.r.IntN(6) == 0 {
			opts = append(opts, []string{o})
		}
	}
	if g.r.IntN(30) == 0 {
		opts = append(opts, []string{g.pick([]string{"BOGUS", "EX", "PX"})})
	}
	if len(opts) > 0 && g.r.IntN(15) == 0 { // an option given twice
		opts = append(opts, slices.Clone(opts[g.r.IntN(len(opts))]))
	}
	g.r.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
	for _, o := range opts {
		cmd = append(cmd, o...)
	}
	return cmd
}

// expire is one of the EXPIRE family with an option or two, times far
// in the future or at or before now (which delete).
func (g *diffGen) expire(k string) []string {
	cmd := []string{g.pick([]string{"EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"}), k}
	past := g.r.IntN(8) == 0
	var t string
	switch {
	case g.r.IntN(25) == 0:
		t = g.pick([]string{"x", "1.5", "", "+1", "01", "-9223372036854775", "-9223372036854776",
			"-9223372036854775808", "-9223372036854775807"})
	case cmd[0] == "EXPIRE" && past:
		t = g.pick([]string{"0", "-1", "-100"})
	case cmd[0] == "EXPIRE":
		t = strconv.FormatInt(g.relSeconds(), 10)
	case cmd[0] == "PEXPIRE" && past:
		t = g.pick([]string{"0", "-1", "-100000"})
	case cmd[0] == "PEXPIRE":
		t = strconv.FormatInt(g.relSeconds()*1000+int64(g.r.IntN(500)), 10)
	case cmd[0] == "EXPIREAT" && past:
		t = g.pick(diffAtSecs[2:])
	case cmd[0] == "EXPIREAT":
		t = g.pick(diffAtSecs[:2])
	case past:
		t = g.pick(diffAtMs[3:])
	default:
		t = g.pick(diffAtMs[:3])
	}
	cmd = append(cmd, t)
	for n := g.r.IntN(3); n > 0 && g.r.IntN(3) != 0; n-- {
		if g.r.IntN(8) == 0 {
			cmd = append(cmd, g.pick(diffOdd))
		} else {
			cmd = append(cmd, g.pick([]string{"NX", "XX", "GT", "LT", "gt", "BOGUS"}))
		}
	}
	return cmd
}

// diffConn is a connection that sends commands as RESP arrays and reads
// typed replies.
type diffConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dialDiff(t *testing.T, network, addr string) *diffConn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &diffConn{c: c, rd: bufio.NewReader(c)}
}

func (c *diffConn) do(t *testing.T, args ...string) wireReply {
	t.Helper()
	return c.pipeline(t, [][]string{args})[0]
}

// pipeline writes cmds in one write and reads their replies.
func (c *diffConn) pipeline(t *testing.T, cmds [][]string) []wireReply {
	t.Helper()
	var b []byte
	for _, args := range cmds {
		b = fmt.Appendf(b, "*%d\r\n", len(args))
		for _, a := range args {
			b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		t.Fatalf("write to %s: %v", c.c.RemoteAddr(), err)
	}
	out := make([]wireReply, len(cmds))
	for i := range out {
		r, err := readReply(c.rd)
		if err != nil {
			t.Fatalf("reply to %s from %s: %v", quoteCmd(cmds[i]), c.c.RemoteAddr(), err)
		}
		out[i] = r
	}
	return out
}

// wireReply is one RESP2 or RESP3 reply: kind is its type byte.
type wireReply struct {
	kind  byte
	s     string // a scalar's text
	null  bool   // $-1 or *-1 (RESP2's nulls)
	elems []wireReply
}

// String prints the type with the value: "+OK", ":1", "$\"v\"", "$nil",
// "*[...]", "_" (RESP3 null).
func (r wireReply) String() string {
	switch {
	case r.null:
		return string(r.kind) + "nil"
	case r.elems != nil || strings.ContainsRune("*%~>|", rune(r.kind)):
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.String()
		}
		return string(r.kind) + "[" + strings.Join(parts, " ") + "]"
	case r.kind == '$' || r.kind == '=':
		return string(r.kind) + strconv.Quote(r.s)
	}
	return string(r.kind) + r.s
}

func readReply(rd *bufio.Reader) (wireReply, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return wireReply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return wireReply{}, fmt.Errorf("bad reply line %q", line)
	}
	r := wireReply{kind: line[0], s: line[1 : len(line)-2]}
	switch r.kind {
	case '+', '-', ':', ',', '#', '(', '_':
		return r, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(r.s)
		if err != nil {
			return wireReply{}, fmt.Errorf("bad length in %q", line)
		}
		if n < 0 {
			return wireReply{kind: r.kind, null: true}, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return wireReply{}, err
		}
		r.s = string(b[:n])
		return r, nil
	case '*', '%', '~', '>', '|':
		n, err := strconv.Atoi(r.s)
		if err != nil {
			return wireReply{}, fmt.Errorf("bad count in %q", line)
		}
		if n < 0 {
			return wireReply{kind: r.kind, null: true}, nil
		}
		if r.kind == '%' || r.kind == '|' {
			n *= 2
		}
		r.s, r.elems = "", make([]wireReply, n)
		for i := range r.elems {
			if r.elems[i], err = readReply(rd); err != nil {
				return wireReply{}, err
			}
		}
		return r, nil
	}
	return wireReply{}, errors.New("unknown reply type in " + strconv.Quote(line))
}
