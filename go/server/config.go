// config.go -- the server's settings: one Config, filled from command-line
// flags and MANTISDB_* environment variables by ParseFlags, then checked by
// Validate.  Flags are parsed by the standard library's flag package; the
// environment is folded in through flag.FlagSet.Set so both go through the
// same parsers and error messages.
package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mantisdb/mantisdb/go/benchmode"
	"github.com/mantisdb/mantisdb/go/storage"
)

// EnvPrefix is prepended to a flag's upper-cased name (dashes become
// underscores) to form its environment variable: --data-dir is
// MANTISDB_DATA_DIR.
const EnvPrefix = "MANTISDB_"

// Config is everything the server and the benchmark mode need.  Sizes are
// bytes.  DefaultConfig returns the documented defaults.
type Config struct {
	Host      string
	Port      int
	RESPPort  int // Redis protocol port; 0 = off
	RESPLoops int // event loops serving RESP connections; 0 = auto, -1 = a goroutine per connection
	DataDir   string
	// InMemory keeps the data in memory only: no data directory, log or
	// checkpoint, and nothing outlives the process (redis-server with
	// save "" and appendonly no; storage.Options with an empty Dir).
	// normalize then empties DataDir and sets Sync to none.
	InMemory bool
	// InMemoryIgnored lists the data directory's settings that were given
	// (flags or variables) and that InMemory ignores, for the log.
	InMemoryIgnored string
	CacheSize       int64 // budget of the /api/v1/cache namespace (also passed to the engine as Options.CacheSize, unused by today's engines)
	Workers         int   // GOMAXPROCS; 0 = number of CPUs
	Sync            storage.SyncPolicy
	AuthToken       string
	// AllowDataLoss opens a data directory with a gap (storage.ErrGap)
	// with the documented repair instead of refusing it
	// (storage.Options.AllowDataLoss).
	AllowDataLoss bool
	// WALPreallocate: under --sync always the log writes over zeros
	// written ahead (storage.Options.WALPreallocate); off on request.
	WALPreallocate bool
	// CheckpointBytes: the log written since the last checkpoint that
	// starts an automatic one (storage.Options.CheckpointBytes, the floor
	// of its rule).  The server cannot turn them off: it has no other way
	// to take a checkpoint, and without them its log, its disk use and
	// every restart's replay would grow with every write.
	CheckpointBytes int64

	MaxKeySize     int
	MaxValueSize   int
	MaxBatchSize   int64 // bytes of one POST /api/v1/kv/batch body
	MaxConnections int

	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long the server goes on serving after the
	// signal, with /readyz answering 503, before the shutdown proper.
	ShutdownDrain time.Duration

	EnableProfiling bool
	BenchmarkOnly   bool
	BenchmarkStress string
	ShowVersion     bool

	Cluster ClusterConfig // cluster mode (cluster_config.go); off by default
}

// DefaultConfig returns the defaults listed in --help and the README.
func DefaultConfig() Config {
	return Config{
		Host:            "127.0.0.1",
		Port:            8080,
		RESPPort:        6380,
		DataDir:         "./data",
		CacheSize:       256 << 20,
		Sync:            storage.SyncInterval,
		WALPreallocate:  true,
		CheckpointBytes: 64 << 20,
		MaxKeySize:      storage.DefaultMaxKeySize,
		MaxValueSize:    storage.DefaultMaxValueSize,
		MaxBatchSize:    128 << 20,
		MaxConnections:  1024,
		ReadTimeout:     60 * time.Second,
		WriteTimeout:    60 * time.Second,
		IdleTimeout:     120 * time.Second,
		ShutdownTimeout: 30 * time.Second,
		BenchmarkStress: "light",
		Cluster:         defaultClusterConfig(),
	}
}

// Addr is host:port for net.Listen.
func (c *Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Errors of configuration.  ParseFlags and Validate wrap them with the
// offending flag.
var (
	ErrConfig = errors.New("invalid configuration")
	// ErrUnauthenticatedExposure: a non-loopback bind without --auth-token
	// would put an unauthenticated database on the network.
	ErrUnauthenticatedExposure = errors.New("refusing to listen on a non-loopback address without --auth-token " +
		"(set --auth-token or MANTISDB_AUTH_TOKEN, or bind to 127.0.0.1)")
	// ErrBadAuthToken: a token that clients cannot send as it is (spaces
	// at either end are stripped from HTTP headers; control characters
	// cannot be sent), or one too short to be a secret.
	ErrBadAuthToken = errors.New("unusable --auth-token")
)

// MinAuthTokenLen is the shortest --auth-token accepted on a non-loopback
// address: 16 characters, 96 bits or more from any base64 or hex
// generator (openssl rand -hex 32 gives 64).  On loopback any token of
// two characters or more is accepted: there the token is optional, and
// a one-character one is a typo or a placeholder, not a secret.
const MinAuthTokenLen = 16

// checkAuthToken explains why a token cannot work, or returns nil.
func checkAuthToken(token string, loopback bool) error {
	if token == "" {
		return nil
	}
	if strings.TrimSpace(token) != token {
		return fmt.Errorf("%w: it starts or ends with whitespace, which HTTP strips from the header, so no request could match it", ErrBadAuthToken)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: character %d is %q; use visible ASCII only (e.g. openssl rand -hex 32)", ErrBadAuthToken, i+1, c)
		}
	}
	if len(token) < 2 {
		return fmt.Errorf("%w: one character is not a secret (e.g. openssl rand -hex 32)", ErrBadAuthToken)
	}
	if !loopback && len(token) < MinAuthTokenLen {
		return fmt.Errorf("%w: %d characters; off loopback at least %d are required (e.g. openssl rand -hex 32)",
			ErrBadAuthToken, len(token), MinAuthTokenLen)
	}
	return nil
}

// sizeFlag is a flag.Value taking "1048576", "256MB" (10^6) or "1GiB"
// (2^30), parsed by go-humanize.
type sizeFlag[T int | int64] struct{ p *T }

func (b sizeFlag[T]) String() string {
	if b.p == nil {
		return ""
	}
	return humanize.IBytes(uint64(*b.p))
}

func (b sizeFlag[T]) Set(s string) error {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a byte size (use e.g. 1048576, 256MB, 1GiB): %q", s)
	}
	if n > 1<<62 || T(n) < 0 || uint64(T(n)) != n {
		return fmt.Errorf("byte size too large: %q", s)
	}
	*b.p = T(n)
	return nil
}

// syncFlag is a flag.Value for always|interval|none.
type syncFlag struct{ p *storage.SyncPolicy }

func (f syncFlag) String() string {
	if f.p == nil {
		return ""
	}
	return f.p.String()
}

func (f syncFlag) Set(s string) error {
	p, err := ParseSyncPolicy(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// ParseSyncPolicy parses always|interval|none.
func ParseSyncPolicy(s string) (storage.SyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return storage.SyncAlways, nil
	case "interval":
		return storage.SyncInterval, nil
	case "none":
		return storage.SyncNone, nil
	}
	return 0, fmt.Errorf("sync policy must be always, interval or none, not %q", s)
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseFlags fills a Config from args (without the program name) on top of
// the environment (lookupEnv, usually os.LookupEnv): a flag on the command
// line wins over its variable, which wins over the default.
// -h/--help prints usage to out and returns flag.ErrHelp; other errors are
// returned, not printed.
// The result is not validated: call Validate.
func ParseFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("mantisdb", flag.ContinueOnError)

	env := func(name, usage string) string { return usage + " [$" + EnvName(name) + "]" }
	fs.StringVar(&cfg.Host, "host", cfg.Host, env("host", "address to listen on; a non-loopback address requires --auth-token"))
	fs.IntVar(&cfg.Port, "port", cfg.Port, env("port", "TCP port to listen on (0 picks a free port, logged at start)"))
	fs.IntVar(&cfg.RESPPort, "resp-port", cfg.RESPPort, env("resp-port", "Redis protocol (RESP) port on --host; 0 turns it off (6380 by default, beside a local Redis)"))
	fs.IntVar(&cfg.RESPLoops, "resp-loops", cfg.RESPLoops, env("resp-loops", "event loops serving Redis protocol connections on a single node; 0 = one per two --workers, N = N loops, -1 = a goroutine per connection (always in cluster mode)"))
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, env("data-dir", "data directory (created if missing)"))
	fs.BoolVar(&cfg.InMemory, "in-memory", cfg.InMemory, env("in-memory", "keep the data in memory only: no data directory, log or checkpoint, and nothing outlives the process (as redis-server with save \"\" and appendonly no); the data directory's flags are then ignored; not in cluster mode"))
	fs.Var(sizeFlag[int64]{&cfg.CacheSize}, "cache-size", env("cache-size", "byte budget of the /api/v1/cache namespace (e.g. 256MB, 1GiB)"))
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, env("workers", "OS threads running Go code (GOMAXPROCS); 0 = number of CPUs"))
	fs.Var(syncFlag{&cfg.Sync}, "sync", env("sync", "durability policy: always (fsync before ack), interval (fsync every 1s), none"))
	fs.BoolVar(&cfg.WALPreallocate, "wal-preallocate", cfg.WALPreallocate, env("wal-preallocate", "under --sync always, write the log over zeros written ahead (1 MiB at a time), or over up to two retired segments kept for reuse (wal/*.free): each fsync then skips the file's new size; turn off on copy-on-write file systems (btrfs, ZFS)"))
	fs.Var(sizeFlag[int64]{&cfg.CheckpointBytes}, "checkpoint-bytes", env("checkpoint-bytes", "start an automatic checkpoint (a snapshot, then the log before it is dropped) once the log written since the last one reaches the larger of this and the last snapshot's size (at least 1MiB); a reopen replays about that much log. Larger: fewer checkpoints under heavy writes, longer reopens"))
	fs.StringVar(&cfg.AuthToken, "auth-token", cfg.AuthToken, env("auth-token", fmt.Sprintf("require 'Authorization: Bearer <token>' on every endpoint but /health, /livez, /readyz; visible ASCII, at least %d characters off loopback (prefer the environment variable: flags show in ps)", MinAuthTokenLen)))
	fs.BoolVar(&cfg.AllowDataLoss, "allow-data-loss", cfg.AllowDataLoss, env("allow-data-loss", "open a data directory with a missing snapshot or WAL segment by keeping what is left (set aside in <data-dir>/lost/; every loss is logged); without it such a directory is refused. For one start, not for good"))
	fs.Var(sizeFlag[int]{&cfg.MaxKeySize}, "max-key-size", env("max-key-size", "largest key accepted (at most 64KiB)"))
	fs.Var(sizeFlag[int]{&cfg.MaxValueSize}, "max-value-size", env("max-value-size", "largest value accepted (at most 64MiB)"))
	fs.Var(sizeFlag[int64]{&cfg.MaxBatchSize}, "max-batch-size", env("max-batch-size", "largest POST /api/v1/kv/batch request body"))
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, env("max-connections", "connections served at once; at the limit the longest-idle or silent connection is closed to make room, and if all are busy a new one gets 503 (health endpoints are still answered)"))
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, env("read-timeout", "time to read a whole request, body included"))
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, env("write-timeout", "time to write a response"))
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, env("idle-timeout", "keep-alive connections idle longer are closed (sooner when --max-connections is reached)"))
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, env("shutdown-timeout", "on SIGTERM/SIGINT, time given to in-flight requests before connections are cut"))
	fs.DurationVar(&cfg.ShutdownDrain, "shutdown-drain", cfg.ShutdownDrain, env("shutdown-drain", "on SIGTERM/SIGINT, keep serving this long with /readyz answering 503, so a load balancer stops sending before the listeners close; then --shutdown-timeout applies (0: close at once)"))
	fs.BoolVar(&cfg.EnableProfiling, "enable-profiling", cfg.EnableProfiling, env("enable-profiling", "serve pprof under /debug/pprof/ (behind --auth-token if set)"))
	fs.BoolVar(&cfg.BenchmarkOnly, "benchmark-only", cfg.BenchmarkOnly, env("benchmark-only", "run the benchmark suite against this binary's engine, print a table and exit"))
	fs.StringVar(&cfg.BenchmarkStress, "benchmark-stress", cfg.BenchmarkStress, env("benchmark-stress", "benchmark size: light, medium, heavy or extreme"))
	fs.BoolVar(&cfg.ShowVersion, "version", cfg.ShowVersion, "print version, commit and engine, and exit")
	cfg.Cluster.flags(fs, env)

	// The flag package prints errors and usage itself; parse silently and
	// print usage only for -h (the caller prints errors once).
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	usage := func() {
		fs.SetOutput(out)
		fmt.Fprintf(out, "Usage: mantisdb [flags]\n\nMantisDB server: an ordered key-value store over HTTP and the Redis protocol.\n"+
			"Every flag can also be set with the environment variable shown in brackets;\n"+
			"a flag on the command line wins; an empty variable counts as unset.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	// An empty variable is an unset one: `MANTISDB_X=` in a systemd
	// EnvironmentFile is how a setting is left at its default.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || f.Name == "version" {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %s", ErrConfig, EnvName(f.Name), v, explainSetError(f, err))
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return cfg, err
		}
		// The flag package's "invalid value ... parse error" does not
		// say what the flag wants; say it as for a variable.
		if m := flagValueError.FindStringSubmatch(err.Error()); m != nil {
			if f := fs.Lookup(m[2]); f != nil {
				return cfg, fmt.Errorf("%w: --%s=%s: %s", ErrConfig, m[2], m[1], explainSetError(f, errors.New("parse error")))
			}
		}
		return cfg, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q (flags start with --)", ErrConfig, fs.Arg(0))
	}
	if cfg.InMemory {
		// The data directory's settings are ignored, not refused: a
		// deployment sets them for every server (deploy/mantisdb.service
		// sets MANTISDB_DATA_DIR), and one switched to --in-memory must
		// still start.  Run logs what was ignored; a flag or a variable,
		// so both names.
		var set []string
		fs.Visit(func(f *flag.Flag) {
			if slices.Contains(diskFlags, f.Name) {
				set = append(set, "--"+f.Name+"/"+EnvName(f.Name))
			}
		})
		cfg.InMemoryIgnored = strings.Join(set, ", ")
		cfg.normalize()
	}
	return cfg, nil
}

// normalize sets, under InMemory, the data directory's settings to what a
// server without one does: no directory, no sync, and the defaults of the
// rest, which the engine then never uses (CONFIG GET still reports the
// checkpoint floor, as Redis reports its AOF settings with appendonly
// no).  Every report of the configuration (the
// start-up log, stats, INFO, CONFIG GET) then says what the server does,
// whoever built the Config: ParseFlags and Run both call it.  Idempotent.
func (c *Config) normalize() {
	if !c.InMemory {
		return
	}
	d := DefaultConfig()
	c.DataDir, c.Sync = "", storage.SyncNone
	c.WALPreallocate, c.CheckpointBytes, c.AllowDataLoss = d.WALPreallocate, d.CheckpointBytes, false
}

// diskFlags are the settings of the data directory, which --in-memory
// ignores.
var diskFlags = []string{"data-dir", "sync", "wal-preallocate", "checkpoint-bytes", "allow-data-loss"}

// flagValueError matches the flag package's error for a value its Set
// could not parse: the value (quoted) and the flag's name.
var flagValueError = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-([\w-]+): parse error$`)

// explainSetError says what a flag of the standard library's types wants
// when its Set failed with the flag package's bare "parse error"; other
// errors (ours say what they want, "value out of range") pass unchanged.
func explainSetError(f *flag.Flag, err error) string {
	if err.Error() != "parse error" {
		return err.Error()
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case bool:
		return "want true or false"
	case int, int64:
		return "want an integer"
	case uint, uint64:
		return "want a non-negative integer"
	case float64:
		return "want a number"
	case time.Duration:
		return "want a duration such as 500ms, 30s or 2m"
	}
	return err.Error()
}

// maxShutdownDrain bounds --shutdown-drain: a drain is for a load
// balancer's probe interval or two, and a second signal does not end it.
const maxShutdownDrain = 5 * time.Minute

// badConfig is a configuration error (ErrConfig) saying what is wrong.
func badConfig(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
}

// Validate checks ranges and the loopback rule.  It does not touch the
// network or the disk.
func (c *Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return badConfig("--port %d out of range 0..65535", c.Port)
	case c.RESPLoops < -1 || c.RESPLoops > 256:
		return badConfig("--resp-loops %d out of range -1..256 (0: auto, -1: a goroutine per connection)", c.RESPLoops)
	case c.RESPPort < 0 || c.RESPPort > 65535:
		return badConfig("--resp-port %d out of range 0..65535 (0: off)", c.RESPPort)
	case c.Port != 0 && c.Port == c.RESPPort:
		// Both listen on --host: the second listen would fail at start
		// with "address already in use", which reads as a runtime failure.
		return badConfig("--resp-port must differ from --port (both are %d)", c.Port)
	case c.CacheSize < 1<<20:
		return badConfig("--cache-size %s is below the minimum 1MiB", humanize.IBytes(uint64(max(c.CacheSize, 0))))
	case c.CheckpointBytes < 1<<20:
		// Each checkpoint rewrites the whole data set, so a tiny floor
		// would start them back to back.
		return badConfig("--checkpoint-bytes %d is below the minimum 1MiB", c.CheckpointBytes)
	case c.Workers < 0:
		return badConfig("--workers %d must be >= 0", c.Workers)
	case c.MaxKeySize < 1 || c.MaxKeySize > storage.DefaultMaxKeySize:
		return badConfig("--max-key-size must be 1..%d bytes, not %d", storage.DefaultMaxKeySize, c.MaxKeySize)
	case c.MaxValueSize < 1 || c.MaxValueSize > storage.DefaultMaxValueSize:
		return badConfig("--max-value-size must be 1..%d bytes, not %d", storage.DefaultMaxValueSize, c.MaxValueSize)
	case c.MaxBatchSize < 1024 || c.MaxBatchSize > MaxBatchBodyLimit:
		return badConfig("--max-batch-size must be 1KiB..%d bytes (what the engine can apply in one batch), not %d", MaxBatchBodyLimit, c.MaxBatchSize)
	case c.MaxConnections < 1:
		return badConfig("--max-connections must be >= 1, not %d", c.MaxConnections)
	case c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0:
		return badConfig("timeouts must be > 0")
	case c.ShutdownDrain < 0 || c.ShutdownDrain > maxShutdownDrain:
		return badConfig("--shutdown-drain must be 0..%v, not %v", maxShutdownDrain, c.ShutdownDrain)
	case c.DataDir == "" && !c.InMemory:
		return badConfig("--data-dir must not be empty")
	case c.InMemory && c.Cluster.Enabled():
		return badConfig("--in-memory cannot be used in cluster mode: a node keeps its Raft log and snapshots in --data-dir")
	case c.InMemory && c.BenchmarkOnly:
		return badConfig("--in-memory cannot be used with --benchmark-only, which measures the engine on disk")
	}
	if !slices.Contains(benchmode.Stresses, c.BenchmarkStress) {
		return badConfig("--benchmark-stress must be light, medium, heavy or extreme, not %q", c.BenchmarkStress)
	}
	if err := c.Cluster.validate(c); err != nil {
		return err
	}
	if !c.BenchmarkOnly && c.AuthToken == "" && !IsLoopback(c.Host) {
		return fmt.Errorf("%w: %q: %w", ErrConfig, c.Host, ErrUnauthenticatedExposure)
	}
	// The token guards the Raft port too (go/cluster's handshake), so a
	// Raft address beyond loopback needs a token of full length, whatever
	// --host is.
	loopback := IsLoopback(c.Host)
	if c.Cluster.Enabled() {
		if h, _, err := net.SplitHostPort(c.Cluster.RaftAddr); err == nil && !IsLoopback(h) {
			loopback = false
		}
	}
	if err := checkAuthToken(c.AuthToken, c.BenchmarkOnly || loopback); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// IsLoopback reports whether host names only loopback addresses: a
// loopback IP literal or "localhost".  An empty host, 0.0.0.0, :: and any
// other name bind beyond this machine.
func IsLoopback(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Procs is the GOMAXPROCS the config asks for.
func (c *Config) Procs() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.NumCPU()
}
