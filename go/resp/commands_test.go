// commands_test.go -- every supported command through go-redis in RESP2
// and RESP3, with Redis's replies and error texts.
package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/storage"
)

// step is one command and the reply it must get: want is the reply
// printed with fmt.Sprint ("<nil>" for a null), or wantErr the error's
// text prefix.
type step struct {
	args    []any
	want    string
	wantErr string
}

func s(want string, args ...any) step    { return step{args: args, want: want} }
func e(wantErr string, args ...any) step { return step{args: args, wantErr: wantErr} }

var commandSteps = []step{
	s("PONG", "PING"), s("hi", "PING", "hi"), s("hi", "ECHO", "hi"),
	s("OK", "SELECT", "0"), e("ERR DB index is out of range", "SELECT", "1"),
	// SET and its options
	s("OK", "SET", "k", "v"), s("v", "GET", "k"),
	s("<nil>", "SET", "k", "v2", "NX"), s("v", "SET", "k", "v3", "XX", "GET"),
	s("v3", "GET", "k"), s("<nil>", "SET", "nx", "1", "XX"), s("0", "EXISTS", "nx"),
	s("v3", "SET", "k", "v4", "NX", "GET"), s("v3", "GET", "k"),
	e("ERR syntax error", "SET", "k", "v", "NX", "XX"), e("ERR syntax error", "SET", "k", "v", "EX", "1", "PX", "1"),
	e("ERR syntax error", "SET", "k", "v", "KEEPTTL", "EX", "1"), e("ERR syntax error", "SET", "k", "v", "BOGUS"),
	e("ERR value is not an integer or out of range", "SET", "k", "v", "EX", "x"),
	e("ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "0"),
	e("ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "-5"),
	s("OK", "SET", "t", "v", "EX", "100"), s("100", "TTL", "t"),
	s("OK", "SET", "t", "w", "KEEPTTL"), s("100", "TTL", "t"), s("w", "GET", "t"),
	s("OK", "SET", "t", "x"), s("-1", "TTL", "t"),
	s("OK", "SET", "t", "v", "EXAT", "4102444800"), s("4102444800", "EXPIRETIME", "t"),
	s("OK", "SET", "t", "v", "PXAT", "4102444800123"), s("4102444800123", "PEXPIRETIME", "t"),
	s("OK", "SET", "gone", "v", "PXAT", "1"), s("0", "EXISTS", "gone"),
	s("0", "SETNX", "k", "x"), s("1", "SETNX", "n", "x"),
	s("OK", "SETEX", "e", "100", "v"), s("100", "TTL", "e"),
	e("ERR invalid expire time in 'setex' command", "SETEX", "e", "0", "v"),
	s("OK", "PSETEX", "pe", "100000", "v"), s("100", "TTL", "pe"),
	s("v3", "GETSET", "k", "new"), s("<nil>", "GETSET", "fresh", "1"),
	s("x", "GETDEL", "n"), s("0", "EXISTS", "n"), s("<nil>", "GETDEL", "n"),
	s("v", "GETEX", "e", "PERSIST"), s("-1", "TTL", "e"), s("v", "GETEX", "e", "EX", "50"), s("50", "TTL", "e"),
	s("v", "GETEX", "e"), s("50", "TTL", "e"), s("<nil>", "GETEX", "missing", "EX", "5"),
	e("ERR syntax error", "GETEX", "e", "EX", "5", "PERSIST"),
	// An expiry option given again replaces its value, as in Redis; only
	// the last value is checked, after the syntax.
	s("OK", "SET", "rep", "v", "EX", "10", "EX", "20"), s("20", "TTL", "rep"),
	s("OK", "SET", "rep", "v", "PX", "0", "PX", "30000"), s("30", "TTL", "rep"),
	e("ERR syntax error", "SET", "rep", "v", "EX", "10", "PX", "100"),
	e("ERR syntax error", "SET", "rep", "v", "PXAT", "99999999999999", "EXAT", "20"),
	e("ERR syntax error", "SET", "rep", "v", "KEEPTTL", "EX", "10"),
	s("v", "GETEX", "rep", "EX", "10", "EX", "40"), s("40", "TTL", "rep"),
	s("v", "GETEX", "rep", "PERSIST", "PERSIST"), s("-1", "TTL", "rep"),
	e("ERR syntax error", "GETEX", "rep", "PERSIST", "EX", "5"),
	// GETEX of a missing key answers nil before it reads the expiry.
	s("<nil>", "GETEX", "missing", "EX", "0"), s("<nil>", "GETEX", "missing", "PX", "abc"),
	e("ERR invalid expire time in 'getex' command", "GETEX", "rep", "EX", "0"),
	// multi-key strings
	s("OK", "MSET", "a", "1", "b", "2"), s("[1 2 <nil>]", "MGET", "a", "b", "zz"),
	e("ERR wrong number of arguments for 'mset' command", "MSET", "a", "1", "b"),
	s("0", "MSETNX", "a", "1", "c", "3"), s("0", "EXISTS", "c"), s("1", "MSETNX", "c", "3", "d", "4"), s("[3 4]", "MGET", "c", "d"),
	// APPEND, STRLEN, ranges
	s("4", "APPEND", "a", "xyz"), s("4", "STRLEN", "a"), s("0", "STRLEN", "zz"), s("3", "APPEND", "ap", "abc"),
	s("xy", "GETRANGE", "a", "1", "2"), s("yz", "GETRANGE", "a", "-2", "-1"), s("1xyz", "GETRANGE", "a", "0", "100"),
	s("", "GETRANGE", "a", "3", "1"), s("", "GETRANGE", "zz", "0", "-1"),
	e("ERR value is not an integer or out of range", "GETRANGE", "a", "x", "1"),
	s("5", "SETRANGE", "sr", "3", "ab"), s("\x00\x00\x00ab", "GET", "sr"), s("5", "SETRANGE", "sr", "0", "Z"), s("Z\x00\x00ab", "GET", "sr"),
	s("0", "SETRANGE", "none", "5", ""), s("0", "EXISTS", "none"),
	e("ERR offset is out of range", "SETRANGE", "sr", "-1", "x"),
	e("ERR string exceeds maximum allowed size (max-value-size)", "SETRANGE", "sr", "1048576", "x"),
	// An offset whose sum with the value's length overflows int64.
	e("ERR string exceeds maximum allowed size (max-value-size)", "SETRANGE", "sr", "9223372036854775807", "x"),
	e("ERR string exceeds maximum allowed size (max-value-size)", "SETRANGE", "srnew", "9223372036854775806", "xyz"),
	// counters
	s("1", "INCR", "i"), s("11", "INCRBY", "i", "10"), s("10", "DECR", "i"), s("5", "DECRBY", "i", "5"),
	s("-5", "INCRBY", "i", "-10"), s("1.5", "INCRBYFLOAT", "f", "1.5"), s("1.75", "INCRBYFLOAT", "f", "0.25"),
	s("3", "INCRBYFLOAT", "f", "1.25"), s("3", "GET", "f"),
	e("ERR value is not an integer or out of range", "INCR", "a"),
	e("ERR value is not an integer or out of range", "INCRBY", "i", "1.5"),
	e("ERR value is not an integer or out of range", "INCRBY", "i", "01"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "a", "1"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "f", "nan"),
	// Redis's long double arithmetic and "%.17Lf" (longdouble.go): the
	// answers redis-server 7.0 gives on x86-64, where a float64 reads
	// 0.30000000000000004, 3.3000000000000003, and refuses 1e400 and 0x10.
	s("0.1", "INCRBYFLOAT", "ld", "0.1"), s("0.2", "INCRBYFLOAT", "ld", "0.1"), s("0.3", "INCRBYFLOAT", "ld", "0.1"),
	s("OK", "SET", "ld", "1.1"), s("3.3", "INCRBYFLOAT", "ld", "2.2"),
	s("0", "INCRBYFLOAT", "tiny", "1e-20"), s("16", "INCRBYFLOAT", "hex", "0x10"), s("24", "INCRBYFLOAT", "hex", "0x1p3"),
	s("12345678901234567890", "INCRBYFLOAT", "big", "12345678901234567890"),
	s("OK", "SET", "nz", "-0"), s("0", "INCRBYFLOAT", "nz", "-0"),
	s("1000000000000000000024696061952", "INCRBYFLOAT", "huge", "1e30"),
	e("ERR increment would produce NaN or Infinity", "INCRBYFLOAT", "ld", "inf"),
	s("OK", "SET", "ovf", "1e4932"), e("ERR increment would produce NaN or Infinity", "INCRBYFLOAT", "ovf", "1e4932"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "ld", "1e5000"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "ld", "1e-4951"),
	// Between half the smallest subnormal and it, strtold rounds up.
	s("0", "INCRBYFLOAT", "sub1", "3.6e-4951"), s("0", "INCRBYFLOAT", "sub2", "1.9e-4951"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "sub3", "1.8e-4951"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "ld", "1e"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "ld", " 1"),
	e("ERR value is not a valid float", "INCRBYFLOAT", "ld", "0b101"),
	s("[0 []]", "SCAN", "0", "COUNT", "100000", "TYPE", ""), s("[0 []]", "SCAN", "0", "COUNT", "100000", "TYPE", "list"), // no key has these types
	// The cursor is read as Redis's strtoul reads it: these are all 0.
	s("[0 []]", "SCAN", "", "MATCH", "none*"), s("[0 []]", "SCAN", "00", "MATCH", "none*"),
	s("[0 []]", "SCAN", "+0", "MATCH", "none*"), s("[0 []]", "SCAN", "-0", "MATCH", "none*"),
	e("ERR invalid cursor", "SCAN", " 0"), e("ERR invalid cursor", "SCAN", "0 "), e("ERR invalid cursor", "SCAN", "+"),
	e("ERR invalid cursor", "SCAN", "x"), e("ERR invalid cursor", "SCAN", "18446744073709551616"),
	s("OK", "SET", "big", "9223372036854775807"), e("ERR increment or decrement would overflow", "INCR", "big"),
	s("OK", "SET", "small", "-9223372036854775808"), e("ERR increment or decrement would overflow", "DECR", "small"),
	e("ERR decrement would overflow", "DECRBY", "small", "-9223372036854775808"),
	s("OK", "SET", "ttlc", "1", "EX", "100"), s("2", "INCR", "ttlc"), s("100", "TTL", "ttlc"),
	// keys
	s("2", "DEL", "a", "b", "zz"), s("1", "UNLINK", "c"), s("2", "EXISTS", "d", "d", "zz"),
	s("string", "TYPE", "d"), s("none", "TYPE", "zz"),
	s("OK", "RENAME", "d", "d2"), s("4", "GET", "d2"), s("0", "EXISTS", "d"),
	e("ERR no such key", "RENAME", "zz", "x"), s("0", "RENAMENX", "d2", "k"), s("1", "RENAMENX", "d2", "d3"),
	s("OK", "SET", "rt", "v", "EX", "100"), s("OK", "RENAME", "rt", "rt2"), s("100", "TTL", "rt2"),
	s("1", "EXPIRE", "d3", "100"), s("0", "EXPIRE", "d3", "50", "GT"), s("1", "EXPIRE", "d3", "200", "GT"),
	s("200", "TTL", "d3"), s("0", "EXPIRE", "d3", "300", "LT"), s("1", "EXPIRE", "d3", "150", "LT"),
	s("0", "EXPIRE", "d3", "100", "NX"), s("1", "EXPIRE", "d3", "100", "XX"),
	s("1", "PERSIST", "d3"), s("0", "PERSIST", "d3"), s("0", "EXPIRE", "d3", "100", "XX"), s("0", "EXPIRE", "d3", "100", "GT"),
	s("1", "EXPIRE", "d3", "100", "LT"), s("100", "TTL", "d3"),
	e("ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "d3", "1", "NX", "XX"),
	e("ERR GT and LT options at the same time are not compatible", "EXPIRE", "d3", "1", "GT", "LT"),
	e("ERR Unsupported option bogus", "EXPIRE", "d3", "1", "bogus"),
	e("ERR value is not an integer or out of range", "EXPIRE", "d3", "x"),
	s("0", "EXPIRE", "zz", "100"), s("-2", "TTL", "zz"), s("-2", "PTTL", "zz"), s("-1", "EXPIRETIME", "k"),
	s("1", "PEXPIRE", "d3", "0"), s("0", "EXISTS", "d3"),
	s("OK", "SET", "p", "v"), s("1", "EXPIREAT", "p", "1"), s("0", "EXISTS", "p"),
	s("OK", "SET", "p", "v"), s("1", "PEXPIREAT", "p", "4102444800000"), s("4102444800", "EXPIRETIME", "p"),
	// errors of the dispatcher
	e("ERR unknown command 'FOOBAR', with args beginning with: 'x' ", "FOOBAR", "x"),
	e("ERR unknown command 'LPUSH', with args beginning with: 'l' 'v' ", "LPUSH", "l", "v"),
	e("ERR wrong number of arguments for 'get' command", "GET"),
	e("ERR wrong number of arguments for 'set' command", "SET", "k"),
	e("ERR empty keys are not supported", "SET", "", "v"), s("<nil>", "GET", ""),
	e("ERR AUTH <password> called without any password configured", "AUTH", "x"),
	s("OK", "CLIENT", "SETNAME", "tester"), s("tester", "CLIENT", "GETNAME"),
	e("ERR Client names cannot contain spaces", "CLIENT", "SETNAME", "a b"),
	e("ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.", "CLIENT", "BOGUS"),
	s("OK", "CLIENT", "SETINFO", "LIB-NAME", "x"),
	e("ERR CONFIG SET is not supported", "CONFIG", "SET", "maxmemory", "1"),
	s("OK", "FLUSHDB"), s("0", "DBSIZE"), s("OK", "SET", "x", "1"), s("1", "DBSIZE"), s("OK", "FLUSHALL", "ASYNC"), s("0", "DBSIZE"),
	e("ERR syntax error", "FLUSHDB", "BOGUS"),
}

func TestCommandsGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startServer(t, Config{}, storage.Options{})
			rdb := ts.client(t, proto, "")
			ctx := context.Background()
			for i, st := range commandSteps {
				v, err := rdb.Do(ctx, st.args...).Result()
				got := fmt.Sprint(v)
				if errors.Is(err, redis.Nil) {
					got, err = "<nil>", nil
				}
				switch {
				case st.wantErr != "":
					if err == nil || !strings.HasPrefix(err.Error(), st.wantErr) {
						t.Errorf("step %d %v: got %q, %v; want error %q", i, st.args, got, err, st.wantErr)
					}
				case err != nil:
					t.Errorf("step %d %v: error %v; want %q", i, st.args, err, st.want)
				case got != st.want:
					t.Errorf("step %d %v: got %q; want %q", i, st.args, got, st.want)
				}
			}
		})
	}
}

// TestTypedGoRedis drives the typed go-redis API (what applications call)
// over both protocols, including the replies that differ between them.
func TestTypedGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startServer(t, Config{}, storage.Options{})
			rdb := ts.client(t, proto, "")
			ctx := context.Background()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(rdb.Set(ctx, "a", "1", 0).Err())
			if v, err := rdb.IncrByFloat(ctx, "a", 0.5).Result(); err != nil || v != 1.5 {
				t.Fatalf("IncrByFloat = %v, %v", v, err)
			}
			if n, err := rdb.Incr(ctx, "n").Result(); err != nil || n != 1 {
				t.Fatalf("Incr = %v, %v", n, err)
			}
			if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("Get missing = %v", err)
			}
			ok, err := rdb.SetNX(ctx, "nx", "v", 0).Result()
			if err != nil || !ok {
				t.Fatalf("SetNX = %v, %v", ok, err)
			}
			hello, err := rdb.Do(ctx, "HELLO", proto).Result()
			must(err)
			if h := fmt.Sprint(hello); !strings.Contains(h, fmt.Sprintf("proto %d", proto)) && !strings.Contains(h, fmt.Sprintf("proto:%d", proto)) {
				t.Fatalf("HELLO %d = %v", proto, hello)
			}
			cfg, err := rdb.ConfigGet(ctx, "appendfsync").Result()
			if err != nil || cfg["appendfsync"] != ts.appendfsync() {
				t.Fatalf("CONFIG GET appendfsync = %v, %v", cfg, err)
			}
			info, err := rdb.Info(ctx, "keyspace", "stats").Result()
			if err != nil || !strings.Contains(info, "db0:keys=3") || !strings.Contains(info, "total_commands_processed:") {
				t.Fatalf("INFO = %q, %v", info, err)
			}
			id, err := rdb.ClientID(ctx).Result()
			must(err)
			list, err := rdb.ClientList(ctx).Result()
			if err != nil || !strings.Contains(list, fmt.Sprintf("id=%d ", id)) || !strings.Contains(list, fmt.Sprintf("resp=%d", proto)) {
				t.Fatalf("CLIENT LIST = %q, %v", list, err)
			}
			// The filters Redis's CLIENT LIST takes: every client here is
			// a normal one.
			for _, tc := range []struct {
				args []any
				has  bool
			}{
				{[]any{"CLIENT", "LIST", "TYPE", "normal"}, true}, {[]any{"CLIENT", "LIST", "TYPE", "replica"}, false},
				{[]any{"CLIENT", "LIST", "ID", id}, true}, {[]any{"CLIENT", "LIST", "ID", id + 1000}, false},
			} {
				got, err := rdb.Do(ctx, tc.args...).Text()
				if err != nil || strings.Contains(got, fmt.Sprintf("id=%d ", id)) != tc.has {
					t.Fatalf("%v = %q, %v", tc.args, got, err)
				}
			}
			for _, bad := range [][]any{{"CLIENT", "LIST", "TYPE", "bogus"}, {"CLIENT", "LIST", "ID", "x"}, {"CLIENT", "LIST", "X"}} {
				if err := rdb.Do(ctx, bad...).Err(); err == nil {
					t.Fatalf("%v: no error", bad)
				}
			}
			for _, tc := range []struct {
				args []any
				want string
			}{
				{[]any{"COMMAND", "LIST", "FILTERBY", "PATTERN", "xyz*"}, "[]"},
				{[]any{"COMMAND", "LIST", "FILTERBY", "PATTERN", "GET*"}, "[get getdel getex getrange getset]"},
				{[]any{"COMMAND", "LIST", "FILTERBY", "MODULE", "json"}, "[]"},
			} {
				got, err := rdb.Do(ctx, tc.args...).StringSlice()
				slices.Sort(got)
				if err != nil || fmt.Sprint(got) != tc.want {
					t.Fatalf("%v = %v, %v; want %s", tc.args, got, err, tc.want)
				}
			}
			if err := rdb.Do(ctx, "COMMAND", "LIST", "FOO").Err(); err == nil {
				t.Fatal("COMMAND LIST FOO: no syntax error")
			}
			n, err := rdb.Do(ctx, "COMMAND", "COUNT").Int()
			if err != nil || n < 50 {
				t.Fatalf("COMMAND COUNT = %d, %v", n, err)
			}
			infos, err := rdb.Command(ctx).Result()
			must(err)
			if c := infos["incr"]; c == nil || c.Arity != 2 || c.FirstKeyPos != 1 || c.ReadOnly {
				t.Fatalf("COMMAND incr = %+v", c)
			}
			tm, err := rdb.Time(ctx).Result()
			if err != nil || tm.IsZero() {
				t.Fatalf("TIME = %v, %v", tm, err)
			}
			if k, err := rdb.RandomKey(ctx).Result(); err != nil || (k != "a" && k != "n" && k != "nx") {
				t.Fatalf("RANDOMKEY = %q, %v", k, err)
			}
			keys, err := rdb.Keys(ctx, "n*").Result()
			if err != nil || fmt.Sprint(keys) != "[n nx]" {
				t.Fatalf("KEYS n* = %v, %v", keys, err)
			}
		})
	}
}

// TestConfigGetCheckpointRule: CONFIG GET reports the engine's checkpoint
// rule as Redis's AOF rewrite settings (a client or an operator's script
// that reads them sees the real floor), and "0%" when there is none.
func TestConfigGetCheckpointRule(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		floor            int64
		minSize, percent string
	}{
		{0, "67108864", "100"},
		{256 << 20, "268435456", "100"},
		{-1, "67108864", "0"},
	} {
		ts := startServer(t, Config{CheckpointBytes: tc.floor}, storage.Options{CheckpointBytes: tc.floor})
		got, err := ts.client(t, 2, "").ConfigGet(ctx, "auto-aof-rewrite-*").Result()
		if err != nil || got["auto-aof-rewrite-min-size"] != tc.minSize || got["auto-aof-rewrite-percentage"] != tc.percent {
			t.Fatalf("floor %d: CONFIG GET auto-aof-rewrite-* = %v, %v; want %s and %s", tc.floor, got, err, tc.minSize, tc.percent)
		}
	}
}

// TestHelpSubcommands: CLIENT, CONFIG and COMMAND HELP answer as Redis 7
// does (the unknown-subcommand error sends users there): an array of
// simple strings, Redis's usage line first, each subcommand the server
// serves on a line of its own, HELP last.
func TestHelpSubcommands(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	for _, tc := range []struct {
		cmd  string
		subs []string
	}{
		{"CLIENT", []string{"ID", "GETNAME", "SETNAME", "SETINFO", "INFO", "LIST", "NO-EVICT", "NO-TOUCH"}},
		{"CONFIG", []string{"GET", "RESETSTAT"}},
		{"COMMAND", []string{"COUNT", "LIST", "INFO", "DOCS"}},
	} {
		for _, proto := range []string{"2", "3"} {
			r := ts.raw(t)
			io.WriteString(r, "HELLO "+proto+"\r\nPING\r\n")
			for r.line(t) != "+PONG" { // skip HELLO's reply
			}
			io.WriteString(r, tc.cmd+" help\r\n")
			head := r.line(t)
			n, err := strconv.Atoi(strings.TrimPrefix(head, "*"))
			if !strings.HasPrefix(head, "*") || err != nil || n < 3 {
				t.Fatalf("%s HELP (RESP%s): header %q", tc.cmd, proto, head)
			}
			var lines []string
			for range n {
				l := r.line(t)
				if !strings.HasPrefix(l, "+") {
					t.Fatalf("%s HELP (RESP%s): %q is not a simple string", tc.cmd, proto, l)
				}
				lines = append(lines, l[1:])
			}
			if want := tc.cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"; lines[0] != want {
				t.Errorf("%s HELP: first line %q, want %q", tc.cmd, lines[0], want)
			}
			if got := lines[n-2:]; got[0] != "HELP" || got[1] != "    Prints this help." {
				t.Errorf("%s HELP: ends with %q", tc.cmd, got)
			}
			named := map[string]bool{}
			for _, l := range lines[1:] {
				if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, " ") {
					named[f[0]] = true
				}
			}
			for _, sub := range tc.subs {
				if !named[sub] {
					t.Errorf("%s HELP does not list %s: %q", tc.cmd, sub, lines)
				}
			}
			io.WriteString(r, tc.cmd+" HELP extra\r\n")
			if got, want := r.line(t), "-ERR wrong number of arguments for '"+strings.ToLower(tc.cmd)+"|help' command"; got != want {
				t.Errorf("%s HELP extra: %q, want %q", tc.cmd, got, want)
			}
		}
	}
}

// TestErrorEchoesArgs: the errors that quote a client's arguments cut
// them as redis-server 7 does (found by TestDifferentialRedis).  An
// unknown command lists its arguments while they fill less than 128
// bytes, the last cut to the rest of the 128; EXPIRE's "Unsupported
// option" prints the option whole.  Both stop at a NUL, as C's "%s".
func TestErrorEchoesArgs(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	rdb := ts.client(t, 2, "")
	ctx := context.Background()
	long := strings.Repeat("0123456789", 20)
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"FOOBAR", long, "x"}, "ERR unknown command 'FOOBAR', with args beginning with: '" + long[:128] + "' "},
		{[]any{"FOOBAR", "x", long}, "ERR unknown command 'FOOBAR', with args beginning with: 'x' '" + long[:124] + "' "},
		{[]any{"FOOBAR", long[:125], "x"}, "ERR unknown command 'FOOBAR', with args beginning with: '" + long[:125] + "' "},
		{[]any{"FOOBAR", long[:124], "xyz"}, "ERR unknown command 'FOOBAR', with args beginning with: '" + long[:124] + "' 'x' "},
		{[]any{"FOOBAR", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t",
			"u", "v", "w", "x", "y", "z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
			"ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' 'c' 'd' 'e' 'f' 'g' 'h' 'i' 'j' 'k' 'l' 'm' 'n' 'o' 'p' 'q' 'r' 's' 't' 'u' 'v' 'w' 'x' 'y' 'z' '0' '1' '2' '3' '4' '5' "},
		{[]any{long, "x"}, "ERR unknown command '" + long[:128] + "', with args beginning with: 'x' "},
		{[]any{"FOO\x00BAR", "a\x00b", "c"}, "ERR unknown command 'FOO', with args beginning with: 'a' 'c' "},
		{[]any{"EXPIRE", "k", "100", long}, "ERR Unsupported option " + long},
		{[]any{"EXPIRE", "k", "100", "bo\x00gus"}, "ERR Unsupported option bo"},
	} {
		err := rdb.Do(ctx, tc.args...).Err()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v\nwant %s", tc.args, err, tc.want)
		}
	}
}

// TestPersistenceReports: INFO and CONFIG GET say whether the server logs
// its writes (Redis's AOF) or keeps them in memory only (Config.InMemory):
// a client or exporter that reads aof_enabled or appendonly sees which.
func TestPersistenceReports(t *testing.T) {
	ctx := context.Background()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		inMemory             bool
		dataDir              string
		aof, appendonly, dir string
	}{
		{false, "data", "aof_enabled:1\r\n", "yes", filepath.Join(wd, "data")},
		{true, "", "aof_enabled:0\r\n", "no", wd},
	} {
		ts := startServer(t, Config{InMemory: tc.inMemory, DataDir: tc.dataDir}, storage.Options{})
		rdb := ts.client(t, 2, "")
		info, err := rdb.Info(ctx, "persistence").Result()
		if err != nil || !strings.Contains(info, tc.aof) {
			t.Fatalf("in memory %v: INFO persistence = %q, %v; want %q", tc.inMemory, info, err, tc.aof)
		}
		got, err := rdb.ConfigGet(ctx, "appendonly").Result()
		if err != nil || got["appendonly"] != tc.appendonly {
			t.Fatalf("in memory %v: CONFIG GET appendonly = %v, %v; want %s", tc.inMemory, got, err, tc.appendonly)
		}
		// Redis answers an absolute directory: its working one.
		got, err = rdb.ConfigGet(ctx, "dir").Result()
		if err != nil || got["dir"] != tc.dir {
			t.Fatalf("in memory %v: CONFIG GET dir = %v, %v; want %s", tc.inMemory, got, err, tc.dir)
		}
	}
}
