// cli_test.go -- the real redis-cli (Debian's redis-tools, installed by
// build.sh) against the server: one scripted command each, --pipe mass
// insertion, and -3 for RESP3.  --no-raw makes redis-cli print reply
// types ("(integer) 1", "(nil)", "(error) ..."), so a wrong type fails.
package resp

import (
	"fmt"
	"net"
	osexec "os/exec"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// cli runs redis-cli with args against ts and returns its output.
func (ts *testServer) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(ts.addr)
	cmd := osexec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestRedisCLI(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	tests := []struct {
		args string
		want string
	}{
		{"PING", "PONG"},
		{"ECHO hello", `"hello"`},
		{"SET k v", "OK"},
		{"GET k", `"v"`},
		{"GET missing", "(nil)"},
		{"SET k w NX", "(nil)"},
		{"SET k w XX GET", `"v"`},
		{"SET t v EX 100", "OK"},
		{"TTL t", "(integer) 100"},
		{"PTTL missing", "(integer) -2"},
		{"SET t v PX 100000 KEEPTTL", "(error) ERR syntax error"},
		{"SETNX k x", "(integer) 0"},
		{"SETEX s 60 v", "OK"},
		{"PSETEX ps 60000 v", "OK"},
		{"GETSET k g", `"w"`},
		{"GETDEL k", `"g"`},
		{"GETEX s PERSIST", `"v"`},
		{"TTL s", "(integer) -1"},
		{"MSET a 1 b 2", "OK"},
		{"MGET a b missing", "1) \"1\"\n2) \"2\"\n3) (nil)"},
		{"MSETNX a 9 c 3", "(integer) 0"},
		{"APPEND a 23", "(integer) 3"},
		{"STRLEN a", "(integer) 3"},
		{"GETRANGE a 0 1", `"12"`},
		{"SETRANGE a 1 X", "(integer) 3"},
		{"GET a", `"1X3"`},
		{"INCR n", "(integer) 1"},
		{"INCRBY n 41", "(integer) 42"},
		{"DECR n", "(integer) 41"},
		{"DECRBY n 1", "(integer) 40"},
		{"INCRBYFLOAT fl 2.5", `"2.5"`},
		{"INCR a", "(error) ERR value is not an integer or out of range"},
		{"EXISTS a b missing", "(integer) 2"},
		{"TYPE a", "string"},
		{"TYPE missing", "none"},
		{"RENAME b b2", "OK"},
		{"RENAMENX b2 a", "(integer) 0"},
		{"EXPIRE b2 100", "(integer) 1"},
		{"EXPIRE b2 50 GT", "(integer) 0"},
		{"PEXPIRE b2 200000 GT", "(integer) 1"},
		{"TTL b2", "(integer) 200"},
		{"EXPIREAT b2 4102444800", "(integer) 1"},
		{"EXPIRETIME b2", "(integer) 4102444800"},
		{"PEXPIREAT b2 4102444800500", "(integer) 1"},
		{"PEXPIRETIME b2", "(integer) 4102444800500"},
		{"PERSIST b2", "(integer) 1"},
		{"DEL b2 missing", "(integer) 1"},
		{"UNLINK c", "(integer) 0"},
		{"KEYS [a-f]*", "1) \"a\"\n2) \"fl\""},
		{"SCAN 0 MATCH n* COUNT 100", "1) \"0\"\n2) 1) \"n\""},
		{"DBSIZE", "(integer) 6"}, // t s ps a n fl
		{"SELECT 0", "OK"},
		{"SELECT 3", "(error) ERR DB index is out of range"},
		{"CLIENT SETNAME cli", "OK"},
		{"CLIENT GETNAME", "(nil)"}, // each invocation is a new connection
		{"CONFIG GET appendfsync", "1) \"appendfsync\"\n2) \"" + ts.appendfsync() + "\""},
		{"COMMAND COUNT", fmt.Sprintf("(integer) %d", len(ts.uniqueCommands()))},
		{"LPUSH l x", "(error) ERR unknown command 'LPUSH', with args beginning with: 'l' 'x' "},
		{"GET", "(error) ERR wrong number of arguments for 'get' command"},
		{"AUTH x", "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{"FLUSHDB", "OK"},
		{"DBSIZE", "(integer) 0"},
	}
	for _, tc := range tests {
		if got := ts.cli(t, "", append([]string{"--no-raw"}, strings.Fields(tc.args)...)...); got != tc.want {
			t.Errorf("redis-cli %s:\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
	// A transaction and inline commands typed into one session.
	got := ts.cli(t, "MULTI\nSET x 1\nINCR x\nEXEC\nGET x\n", "--no-raw")
	if want := "OK\nQUEUED\nQUEUED\n1) OK\n2) (integer) 2\n\"2\""; got != want {
		t.Errorf("MULTI session:\n got %q\nwant %q", got, want)
	}
}

func TestRedisCLIPipe(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	const n = 5000
	var b strings.Builder
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("key:%05d", i), fmt.Sprintf("value-%d", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	b.WriteString("*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n")
	out := ts.cli(t, b.String(), "--pipe")
	if !strings.Contains(out, fmt.Sprintf("errors: 0, replies: %d", n+1)) {
		t.Fatalf("--pipe: %s", out)
	}
	if got := ts.cli(t, "", "DBSIZE"); got != fmt.Sprint(n+1) {
		t.Fatalf("DBSIZE after --pipe = %s", got)
	}
	if got := ts.cli(t, "", "GET", "key:04999"); got != "value-4999" {
		t.Fatalf("GET after --pipe = %q", got)
	}
}

func TestRedisCLIRESP3(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	tests := []struct {
		args string
		want string
	}{
		{"HELLO 3", "1# \"server\" => \"redis\"\n2# \"version\" => \"7.2.0\"\n3# \"proto\" => (integer) 3\n"},
		{"GET missing", "(nil)"},
		{"CONFIG GET databases", "1# \"databases\" => \"1\""},
		{"SET k v", "OK"},
		{"MGET k missing", "1) \"v\"\n2) (nil)"},
		{"INCRBYFLOAT f 0.5", `"0.5"`},
	}
	for _, tc := range tests {
		got := ts.cli(t, "", append([]string{"--no-raw", "-3"}, strings.Fields(tc.args)...)...)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("redis-cli -3 %s:\n got %q\nwant prefix %q", tc.args, got, tc.want)
		}
	}
}
