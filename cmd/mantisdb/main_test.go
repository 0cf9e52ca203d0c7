// main_test.go -- the command's flag handling: exit statuses, --version,
// --help, environment variables, and the refusal to expose an
// unauthenticated server.
package main

import (
	"bytes"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestRunFlags(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		status int
		out    string // substring of stdout
		errOut string // substring of stderr
	}{
		{"version", []string{"--version"}, nil, 0, "mantisdb dev (commit none, engine " + engineName() + ")", ""},
		{"help", []string{"--help"}, nil, 0, "MANTISDB_DATA_DIR", ""},
		{"unknown flag", []string{"--nope"}, nil, 2, "", "flag provided but not defined: -nope"},
		{"stray argument", []string{"serve"}, nil, 2, "", `unexpected argument "serve"`},
		{"bad sync", []string{"--sync", "sometimes"}, nil, 2, "", "always, interval or none"},
		{"bad size", []string{"--cache-size", "lots"}, nil, 2, "", "not a byte size"},
		{"bad env", nil, map[string]string{"MANTISDB_PORT": "eighty"}, 2, "", `MANTISDB_PORT="eighty": want an integer`},
		{"bad bool env", nil, map[string]string{"MANTISDB_ENABLE_PROFILING": "yes"}, 2, "", `MANTISDB_ENABLE_PROFILING="yes": want true or false`},
		// An empty variable is an unset one (a systemd EnvironmentFile's
		// `MANTISDB_WORKERS=`); --version shows the flags were accepted.
		{"empty env", []string{"--version"}, map[string]string{"MANTISDB_WORKERS": "", "MANTISDB_RESP_LOOPS": "", "MANTISDB_ENABLE_PROFILING": "", "MANTISDB_HOST": ""}, 0, "mantisdb dev", ""},
		{"bad stress", []string{"--benchmark-stress", "insane"}, nil, 2, "", "light, medium, heavy or extreme"},
		{"non-loopback without token", []string{"--host", "0.0.0.0"}, nil, 2, "", "refusing to listen on a non-loopback address without --auth-token"},
		{"non-loopback from env", nil, map[string]string{"MANTISDB_HOST": "::"}, 2, "", "without --auth-token"},
		{"port out of range", []string{"--port", "70000"}, nil, 2, "", "out of range"},
		{"RESP on the HTTP port", []string{"--port", "27081", "--resp-port", "27081"}, nil, 2, "", "--resp-port must differ from --port"},
		{"token with a trailing newline", nil, map[string]string{"MANTISDB_AUTH_TOKEN": "0123456789abcdef\n"}, 2, "", "whitespace"},
		{"one-character token", []string{"--auth-token", "x"}, nil, 2, "", "one character"},
		{"short token off loopback", []string{"--host", "0.0.0.0", "--auth-token", "secret"}, nil, 2, "", "at least 16"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		got := run(c.args, env(c.env), &out, &errOut)
		if got != c.status || !strings.Contains(out.String(), c.out) || !strings.Contains(errOut.String(), c.errOut) {
			t.Errorf("%s: status %d (want %d)\nstdout: %s\nstderr: %s", c.name, got, c.status, out.String(), errOut.String())
		}
	}
}
