// config_test.go -- flag and environment parsing, byte sizes, validation.
package server

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseFlagsDefaultsEnvAndPrecedence(t *testing.T) {
	cfg, err := ParseFlags(nil, lookup(nil), io.Discard)
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Addr() != "127.0.0.1:8080" || cfg.DataDir != "./data" {
		t.Fatalf("default address %s dir %s", cfg.Addr(), cfg.DataDir)
	}
	env := map[string]string{
		"MANTISDB_PORT": "9000", "MANTISDB_DATA_DIR": "/var/lib/mantisdb", "MANTISDB_CACHE_SIZE": "1GiB",
		"MANTISDB_SYNC": "always", "MANTISDB_AUTH_TOKEN": "t", "MANTISDB_ENABLE_PROFILING": "true",
		"MANTISDB_MAX_VALUE_SIZE": "1MB",
	}
	cfg, err = ParseFlags([]string{"--port", "9001", "--cache-size=256MB", "--max-key-size", "1KiB"}, lookup(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9001 || cfg.DataDir != "/var/lib/mantisdb" || cfg.CacheSize != 256_000_000 ||
		cfg.Sync != storage.SyncAlways || cfg.AuthToken != "t" || !cfg.EnableProfiling ||
		cfg.MaxValueSize != 1_000_000 || cfg.MaxKeySize != 1024 {
		t.Fatalf("flags over env: %+v", cfg)
	}
	cfg, err = ParseFlags([]string{"--cache-size", "1073741824"}, lookup(nil), io.Discard)
	if err != nil || cfg.CacheSize != 1<<30 {
		t.Fatalf("plain byte count: %d %v", cfg.CacheSize, err)
	}
	// The log preallocates by default; --wal-preallocate=false (or its
	// variable) turns it off in the engine's options.
	def := DefaultConfig()
	if o := def.EngineOptions("d"); o.WALPreallocate != 0 {
		t.Fatalf("default WALPreallocate %d, want 0 (the engine's default)", o.WALPreallocate)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--wal-preallocate=false"}, nil},
		{nil, map[string]string{"MANTISDB_WAL_PREALLOCATE": "false"}},
	} {
		cfg, err = ParseFlags(c.args, lookup(c.env), io.Discard)
		if err != nil || cfg.WALPreallocate || cfg.EngineOptions("d").WALPreallocate != -1 {
			t.Fatalf("%v %v: WALPreallocate %v, engine %d, %v", c.args, c.env, cfg.WALPreallocate, cfg.EngineOptions("d").WALPreallocate, err)
		}
	}
	// Automatic checkpoints start at 64 MiB of log by default; the flag
	// (or its variable) moves the floor.
	if o := def.EngineOptions("d"); o.CheckpointBytes != 64<<20 {
		t.Fatalf("default CheckpointBytes %d, want 64 MiB", o.CheckpointBytes)
	}
	for _, c := range []struct {
		args   []string
		env    map[string]string
		engine int64
	}{
		{[]string{"--checkpoint-bytes", "256MiB"}, nil, 256 << 20},
		{nil, map[string]string{"MANTISDB_CHECKPOINT_BYTES": "1GiB"}, 1 << 30},
	} {
		cfg, err = ParseFlags(c.args, lookup(c.env), io.Discard)
		if err != nil || cfg.Validate() != nil || cfg.EngineOptions("d").CheckpointBytes != c.engine {
			t.Fatalf("%v %v: engine CheckpointBytes %d, want %d (%v)", c.args, c.env, cfg.EngineOptions("d").CheckpointBytes, c.engine, err)
		}
	}
}

// TestParseFlagsEmptyEnvIsUnset: `MANTISDB_X=` (how a systemd
// EnvironmentFile leaves a setting at its default) is the default, for
// every variable --help lists.
func TestParseFlagsEmptyEnvIsUnset(t *testing.T) {
	var help bytes.Buffer
	if _, err := ParseFlags([]string{"-h"}, lookup(nil), &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	vars := regexp.MustCompile(`\[\$(MANTISDB_[A-Z_]+)\]`).FindAllStringSubmatch(help.String(), -1)
	if len(vars) < 20 {
		t.Fatalf("found %d variables in --help", len(vars))
	}
	env := map[string]string{}
	for _, m := range vars {
		env[m[1]] = ""
	}
	cfg, err := ParseFlags(nil, lookup(env), io.Discard)
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("every variable empty: %+v, %v", cfg, err)
	}
}

// TestParseFlagsEnvErrorSaysWhatIsWanted: a bad value in a variable of a
// plain int, bool or duration flag names what the flag takes, not the
// flag package's bare "parse error".
func TestParseFlagsEnvErrorSaysWhatIsWanted(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"MANTISDB_PORT", "abc", `MANTISDB_PORT="abc": want an integer`},
		{"MANTISDB_WORKERS", "all", `MANTISDB_WORKERS="all": want an integer`},
		{"MANTISDB_ENABLE_PROFILING", "yes", `MANTISDB_ENABLE_PROFILING="yes": want true or false`},
		{"MANTISDB_READ_TIMEOUT", "60", `MANTISDB_READ_TIMEOUT="60": want a duration`},
		{"MANTISDB_CACHE_SIZE", "lots", `MANTISDB_CACHE_SIZE="lots": not a byte size`},
	} {
		_, err := ParseFlags(nil, lookup(map[string]string{c.name: c.value}), io.Discard)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: %v, want %q", c.name, c.value, err, c.want)
		}
	}
}

// TestParseFlagsArgErrorSaysWhatIsWanted: a bad value on the command
// line says what the flag wants, as one in a variable does.
func TestParseFlagsArgErrorSaysWhatIsWanted(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "abc"}, `--port="abc": want an integer`},
		{[]string{"--enable-profiling=yes"}, `--enable-profiling="yes": want true or false`},
		{[]string{"--read-timeout=60"}, `--read-timeout="60": want a duration`},
		{[]string{"--cache-size=lots"}, `not a byte size`},
	} {
		_, err := ParseFlags(c.args, lookup(nil), io.Discard)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []func(*Config){
		func(c *Config) { c.Host = "localhost" },
		func(c *Config) { c.Host = "::1" },
		func(c *Config) { c.Host = "[::1]" },
		func(c *Config) { c.Host = "127.0.0.2" },
		func(c *Config) { c.Host = "0.0.0.0"; c.AuthToken = "0123456789abcdef" },
		func(c *Config) { c.AuthToken = "ab" },                         // loopback: any usable token
		func(c *Config) { c.Host = "0.0.0.0"; c.BenchmarkOnly = true }, // binds nothing
		func(c *Config) { c.Port = 0 },
		func(c *Config) { c.CheckpointBytes = 1 << 20 },
		func(c *Config) { c.Port = 0; c.RESPPort = 0 }, // two free ports, or RESP off
	}
	for i, f := range ok {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("ok case %d: %v", i, err)
		}
	}
	bad := []func(*Config){
		func(c *Config) { c.Host = "0.0.0.0" },
		func(c *Config) { c.Host = "" },
		func(c *Config) { c.Host = "::" },
		func(c *Config) { c.Host = "db.example.com" },
		func(c *Config) { c.Host = "10.0.0.1" },
		func(c *Config) { c.Port = -1 },
		func(c *Config) { c.CacheSize = 1000 },
		func(c *Config) { c.CheckpointBytes = 1000 },
		func(c *Config) { c.CheckpointBytes = 0 }, // no way off: see Config
		func(c *Config) { c.MaxKeySize = 0 },
		func(c *Config) { c.MaxKeySize = storage.DefaultMaxKeySize + 1 },
		func(c *Config) { c.MaxValueSize = storage.DefaultMaxValueSize + 1 },
		func(c *Config) { c.MaxConnections = 0 },
		func(c *Config) { c.ReadTimeout = 0 },
		func(c *Config) { c.DataDir = "" },
		func(c *Config) { c.BenchmarkStress = "x" },
		func(c *Config) { c.Workers = -1 },
		func(c *Config) { c.Port = 27081; c.RESPPort = 27081 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("bad case %d: %v", i, err)
		}
	}
	c := DefaultConfig()
	c.Host = "0.0.0.0"
	if err := c.Validate(); !errors.Is(err, ErrUnauthenticatedExposure) {
		t.Errorf("non-loopback without token: %v", err)
	}
}

// --in-memory leaves the data directory out: its settings, given as flags
// or variables (a systemd unit sets MANTISDB_DATA_DIR), are ignored and
// named for the log, and the configuration then reports no directory and
// no sync.  Cluster mode and --benchmark-only need the disk.
func TestParseFlagsInMemory(t *testing.T) {
	for _, c := range []struct {
		args    []string
		env     map[string]string
		ignored string
	}{
		{[]string{"--in-memory"}, map[string]string{"MANTISDB_DATA_DIR": ""}, ""},
		{nil, map[string]string{"MANTISDB_IN_MEMORY": "true", "MANTISDB_DATA_DIR": "/var/lib/mantisdb", "MANTISDB_SYNC": "interval"},
			"--data-dir/MANTISDB_DATA_DIR, --sync/MANTISDB_SYNC"},
		// Below the on-disk minimum, and ignored: not an error.
		{[]string{"--in-memory", "--wal-preallocate=false", "--checkpoint-bytes", "1k", "--port", "1"}, nil,
			"--checkpoint-bytes/MANTISDB_CHECKPOINT_BYTES, --wal-preallocate/MANTISDB_WAL_PREALLOCATE"},
	} {
		cfg, err := ParseFlags(c.args, lookup(c.env), io.Discard)
		if err != nil || !cfg.InMemory || cfg.DataDir != "" || cfg.Sync != storage.SyncNone || cfg.InMemoryIgnored != c.ignored ||
			cfg.CheckpointBytes != DefaultConfig().CheckpointBytes || !cfg.WALPreallocate {
			t.Fatalf("%v %v: %+v, %v", c.args, c.env, cfg, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%v %v does not validate: %v", c.args, c.env, err)
		}
	}
	// A Config built in code gets the same reports: Run normalizes it.
	cfg := DefaultConfig()
	cfg.InMemory = true
	cfg.normalize()
	if cfg.DataDir != "" || cfg.Sync != storage.SyncNone || cfg.Validate() != nil {
		t.Fatalf("normalized in code: %+v, %v", cfg, cfg.Validate())
	}
	for _, args := range [][]string{
		{"--in-memory", "--benchmark-only"},
		{"--in-memory", "--node-id", "a", "--raft-addr", "127.0.0.1:7000", "--bootstrap"},
	} {
		cfg, err := ParseFlags(args, lookup(nil), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if err := cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--in-memory cannot be used") {
			t.Errorf("%v: Validate %v", args, err)
		}
	}
}
