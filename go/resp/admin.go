// admin.go -- connection and server commands: PING, ECHO, HELLO, AUTH,
// SELECT, QUIT, RESET, CLIENT, COMMAND, CONFIG GET, INFO, TIME.
package resp

import (
	"cmp"
	"crypto/subtle"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// redisVersion is the Redis version whose commands and replies this
// server follows; INFO and HELLO report it as redis_version/version so
// clients that gate features on it behave, and report MantisDB's own
// version beside it.
const redisVersion = "7.2.0"

func cmdPing(x *exec) {
	switch len(x.args) {
	case 1:
		x.r.simple("PONG")
	case 2:
		x.r.bulk(x.args[1])
	default:
		x.fail(arityError("ping"))
	}
}

func cmdEcho(x *exec) { x.r.bulk(x.args[1]) }

func cmdTime(x *exec) {
	now := time.Now()
	x.r.array(2)
	x.r.bulkString(strconv.FormatInt(now.Unix(), 10))
	x.r.bulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

func cmdSelect(x *exec) {
	n, ok := parseInt(x.args[1])
	switch {
	case !ok:
		x.fail(errNotInt)
	case n != 0:
		x.fail("ERR DB index is out of range")
	default:
		x.r.ok()
	}
}

func cmdQuit(x *exec) {
	x.r.ok()
	x.c.quit = true
}

func cmdReset(x *exec) {
	c := x.c
	c.resetMulti()
	c.readonly = false
	c.mu.Lock()
	c.name, c.proto = "", 2
	c.mu.Unlock()
	c.r.proto = 2
	x.s.setAuthed(c, x.s.cfg.AuthToken == "")
	x.r.simple("RESET")
}

// checkAuth compares a user and password with the token: the only user
// is "default", as in Redis without ACLs.
func (s *Server) checkAuth(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	if s.cfg.AuthToken == "" {
		// Redis's default user without a password (nopass): AUTH
		// default <anything> and HELLO ... AUTH default <anything>
		// succeed, which is how clients configured with a username
		// connect to an open server.
		return true
	}
	return subtle.ConstantTimeCompare(pass, []byte(s.cfg.AuthToken)) == 1
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// cmdAuth: AUTH password | AUTH username password.
func cmdAuth(x *exec) {
	if len(x.args) > 3 {
		x.fail(errSyntax)
		return
	}
	if x.s.cfg.AuthToken == "" && len(x.args) == 2 {
		x.fail("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	user, pass := []byte("default"), x.args[1]
	if len(x.args) == 3 {
		user, pass = x.args[1], x.args[2]
	}
	if !x.s.checkAuth(user, pass) {
		x.fail(errWrongPass)
		return
	}
	x.s.setAuthed(x.c, true)
	x.r.ok()
}

// cmdHello: HELLO [protover [AUTH username password] [SETNAME name]].
func cmdHello(x *exec) {
	c := x.c
	proto := c.r.proto
	args := x.args[1:]
	if len(args) > 0 {
		v, ok := parseInt(args[0])
		if !ok {
			x.fail("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			x.fail("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
		args = args[1:]
	}
	var name []byte
	setName := false
	for len(args) > 0 {
		switch lower(args[0]) {
		case "auth":
			if len(args) < 3 {
				x.fail(errSyntax)
				return
			}
			if !x.s.checkAuth(args[1], args[2]) {
				x.fail(errWrongPass)
				return
			}
			x.s.setAuthed(c, true)
			args = args[3:]
		case "setname":
			if len(args) < 2 {
				x.fail(errSyntax)
				return
			}
			name, setName = args[1], true
			args = args[2:]
		default:
			x.fail("ERR Syntax error in HELLO option '" + string(clip(args[0])) + "'")
			return
		}
	}
	if !c.authed {
		x.fail("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName && !validName(name) {
		x.fail(errBadName)
		return
	}
	c.mu.Lock()
	c.proto = proto
	if setName {
		c.name = string(name)
	}
	c.mu.Unlock()
	c.r.proto = proto
	x.r.mapHeader(7)
	x.r.bulkString("server")
	x.r.bulkString("redis")
	x.r.bulkString("version")
	x.r.bulkString(redisVersion)
	x.r.bulkString("proto")
	x.r.int(int64(proto))
	x.r.bulkString("id")
	x.r.int(int64(c.id))
	x.r.bulkString("mode")
	x.r.bulkString("standalone")
	x.r.bulkString("role")
	if cl := x.s.cfg.Cluster; cl != nil && !cl.IsLeader() {
		x.r.bulkString("replica")
	} else {
		x.r.bulkString("master")
	}
	x.r.bulkString("modules")
	x.r.array(0)
}

const errBadName = "ERR Client names cannot contain spaces, newlines or special characters."

func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

// cmdClient: CLIENT ID|SETNAME|GETNAME|SETINFO|INFO|LIST|NO-EVICT|NO-TOUCH|HELP.
func cmdClient(x *exec) {
	c, s := x.c, x.s
	sub := lower(x.args[1])
	n := len(x.args)
	switch {
	case sub == "id" && n == 2:
		x.r.int(int64(c.id))
	case sub == "setname" && n == 3:
		if !validName(x.args[2]) {
			x.fail(errBadName)
			return
		}
		c.mu.Lock()
		c.name = string(x.args[2])
		c.mu.Unlock()
		x.r.ok()
	case sub == "getname" && n == 2:
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			x.r.null()
		} else {
			x.r.bulkString(name)
		}
	case sub == "setinfo" && n == 4:
		attr := lower(x.args[2])
		if attr != "lib-name" && attr != "lib-ver" {
			x.fail("ERR Unrecognized option '" + string(clip(x.args[2])) + "'")
			return
		}
		if !validName(x.args[3]) {
			x.fail("ERR " + attr + " cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		if attr == "lib-name" {
			c.libName = string(x.args[3])
		} else {
			c.libVer = string(x.args[3])
		}
		c.mu.Unlock()
		x.r.ok()
	case sub == "info" && n == 2:
		x.r.bulkString(s.clientLine(c, time.Now()))
	case sub == "list":
		// CLIENT LIST [TYPE normal|master|replica|slave|pubsub] [ID id...],
		// with Redis's errors; every client here is a normal one.
		var ids map[uint64]bool
		none := false
		switch {
		case n == 2:
		case n == 4 && lower(x.args[2]) == "type":
			switch lower(x.args[3]) {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				none = true
			default:
				x.fail("ERR Unknown client type '" + string(clip(x.args[3])) + "'")
				return
			}
		case n > 3 && lower(x.args[2]) == "id":
			ids = make(map[uint64]bool, n-3)
			for _, a := range x.args[3:] {
				id, ok := parseInt(a)
				if !ok {
					x.fail("ERR Invalid client ID")
					return
				}
				ids[uint64(id)] = true
			}
		default:
			x.fail(errSyntax)
			return
		}
		s.mu.Lock()
		all := make([]*client, 0, len(s.clients))
		for cl := range s.clients {
			if !none && (ids == nil || ids[cl.id]) {
				all = append(all, cl)
			}
		}
		s.mu.Unlock()
		sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
		var b strings.Builder
		now := time.Now()
		for _, cl := range all {
			b.WriteString(s.clientLine(cl, now))
		}
		x.r.bulkString(b.String())
	case (sub == "no-evict" || sub == "no-touch") && n == 3:
		x.r.ok() // nothing is evicted or LRU-touched here
	case sub == "help":
		x.help(clientHelp)
	default:
		x.fail("ERR unknown subcommand '" + string(clip(x.args[1])) + "'. Try CLIENT HELP.")
	}
}

// help answers CLIENT, CONFIG or COMMAND HELP as Redis 7 does: an array
// of simple strings, a usage line, then each subcommand this server
// serves followed by indented lines saying what it does; HELP last.
// Extra arguments get Redis's arity error ("'client|help'").
func (x *exec) help(lines []string) {
	name := x.cmd.name
	if len(x.args) != 2 {
		x.fail(arityError(name + "|help"))
		return
	}
	x.r.array(len(lines) + 3)
	x.r.simple(strings.ToUpper(name) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		x.r.simple(l)
	}
	x.r.simple("HELP")
	x.r.simple("    Prints this help.")
}

// The subcommands each HELP lists: those the switch of its command serves,
// in Redis's words where Redis has the same subcommand.
var (
	clientHelp = []string{
		"GETNAME",
		"    Return the name of the current connection.",
		"ID",
		"    Return the ID of the current connection.",
		"INFO",
		"    Return information about the current client connection.",
		"LIST [options ...]",
		"    Return information about client connections. Options:",
		"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
		"      Return clients of specified type.",
		"    * ID <client-id> [<client-id> ...]",
		"      Return clients with the given IDs.",
		"SETNAME <name>",
		"    Assign the name <name> to the current connection.",
		"SETINFO <option> <value>",
		"    Set client meta attr. Options are:",
		"    * LIB-NAME: the client lib name.",
		"    * LIB-VER: the client lib version.",
		"NO-EVICT (ON|OFF)",
		"    Accepted; this server never evicts a client connection.",
		"NO-TOUCH (ON|OFF)",
		"    Accepted; this server keeps no LRU/LFU statistics.",
	}
	configHelp = []string{
		"GET <pattern> [<pattern> ...]",
		"    Return parameters matching the glob-like <pattern> and their values.",
		"RESETSTAT",
		"    Reset statistics reported by the INFO command.",
	}
	commandHelp = []string{
		"(no subcommand)",
		"    Return details about all commands.",
		"COUNT",
		"    Return the total number of commands in this server.",
		"LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
		"    Return a list of all commands in this server.",
		"INFO [<command-name> ...]",
		"    Return details about multiple commands.",
		"    If no command names are given, details for all commands are returned.",
		"DOCS [<command-name> ...]",
		"    Return documentation details about multiple commands.",
		"    If no command names are given, documentation details for all",
		"    commands are returned.",
	}
)

// clientLine is one CLIENT LIST line, in Redis's format (fields this
// server has no notion of are left out).
func (s *Server) clientLine(c *client, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := c.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s age=%d idle=%d flags=N db=0 cmd=%s user=default resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, c.name, int(now.Sub(c.created).Seconds()), int(now.Sub(c.lastAt).Seconds()),
		cmd, c.proto, c.libName, c.libVer)
}

// configParams answers CONFIG GET: the settings clients and
// redis-benchmark ask about, with this server's real values.
func (s *Server) configParams() [][2]string {
	fsync := s.appendfsync()
	// Redis answers its working directory, an absolute path, which is
	// where it keeps its files; in memory, so does this server.
	dir := s.cfg.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	appendonly := "yes"
	if s.cfg.InMemory {
		appendonly = "no"
	}
	// The engine's checkpoint rule is Redis's AOF rewrite rule: the log
	// grew by 100% of the last snapshot and past the floor.  Negative
	// (a library user's engine with no automatic checkpoint): Redis's
	// "0%", never.
	floor, growth := cmp.Or(s.cfg.CheckpointBytes, storage.DefaultCheckpointBytes), "100"
	if floor < 0 {
		floor, growth = storage.DefaultCheckpointBytes, "0"
	}
	return [][2]string{
		{"appendfsync", fsync},
		{"appendonly", appendonly},
		{"auto-aof-rewrite-min-size", strconv.FormatInt(floor, 10)},
		{"auto-aof-rewrite-percentage", growth},
		{"databases", "1"},
		{"dir", dir},
		{"maxclients", strconv.Itoa(s.cfg.MaxClients)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"proto-max-bulk-len", strconv.Itoa(max(s.cfg.MaxKeySize, s.cfg.MaxValueSize))},
		{"save", ""},
		{"timeout", "0"},
	}
}

// cmdConfig: CONFIG GET pattern [pattern ...]; CONFIG RESETSTAT; CONFIG HELP.
func cmdConfig(x *exec) {
	switch sub := lower(x.args[1]); {
	case sub == "get" && len(x.args) >= 3:
		var out [][2]string
		for _, p := range x.s.configParams() {
			for _, pat := range x.args[2:] {
				if globMatch([]byte(strings.ToLower(string(pat))), []byte(p[0])) {
					out = append(out, p)
					break
				}
			}
		}
		x.r.mapHeader(len(out))
		for _, p := range out {
			x.r.bulkString(p[0])
			x.r.bulkString(p[1])
		}
	case sub == "resetstat" && len(x.args) == 2:
		x.s.resetStats()
		x.r.ok()
	case sub == "set" && len(x.args) >= 4:
		x.fail("ERR CONFIG SET is not supported: MantisDB is configured by flags and MANTISDB_* variables")
	case sub == "help":
		x.help(configHelp)
	default:
		x.fail("ERR unknown subcommand '" + string(clip(x.args[1])) + "'. Try CONFIG HELP.")
	}
}

// uniqueCommands lists the table's commands once each, by name.
func (s *Server) uniqueCommands() []*command { return s.cmdList }

// cmdCommand: COMMAND, COMMAND COUNT, COMMAND INFO [name...], COMMAND
// DOCS [name...], COMMAND LIST, COMMAND HELP.
func cmdCommand(x *exec) {
	s := x.s
	if len(x.args) == 1 {
		all := s.uniqueCommands()
		x.r.array(len(all))
		for _, cmd := range all {
			s.commandInfo(x.r, cmd)
		}
		return
	}
	switch lower(x.args[1]) {
	case "count":
		x.r.int(int64(len(s.uniqueCommands())))
	case "list":
		// COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN glob]
		keep, ok := commandFilter(x.args[2:])
		if !ok {
			x.fail(errSyntax)
			return
		}
		var names []string
		for _, cmd := range s.uniqueCommands() {
			if keep(cmd) {
				names = append(names, cmd.name)
			}
		}
		x.r.array(len(names))
		for _, name := range names {
			x.r.bulkString(name)
		}
	case "info":
		names := x.args[2:]
		if len(names) == 0 {
			all := s.uniqueCommands()
			x.r.array(len(all))
			for _, cmd := range all {
				s.commandInfo(x.r, cmd)
			}
			return
		}
		x.r.array(len(names))
		for _, n := range names {
			if cmd := s.lookup(n); cmd != nil {
				s.commandInfo(x.r, cmd)
			} else {
				x.r.null()
			}
		}
	case "docs":
		var cmds []*command
		if len(x.args) == 2 {
			cmds = s.uniqueCommands()
		} else {
			for _, n := range x.args[2:] {
				if cmd := s.lookup(n); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		x.r.mapHeader(len(cmds))
		for _, cmd := range cmds {
			x.r.bulkString(cmd.name)
			x.r.mapHeader(4)
			x.r.bulkString("summary")
			x.r.bulkString(cmd.summary)
			x.r.bulkString("since")
			x.r.bulkString("1.0.0")
			x.r.bulkString("group")
			x.r.bulkString(cmd.group)
			x.r.bulkString("arguments")
			x.r.array(0)
		}
	case "help":
		x.help(commandHelp)
	default:
		x.fail("ERR unknown subcommand '" + string(clip(x.args[1])) + "'. Try COMMAND HELP.")
	}
}

// commandInfo is one COMMAND INFO entry: name, arity, flags, first key,
// last key, step, ACL categories, tips, key specs, subcommands.
func (s *Server) commandInfo(r *reply, cmd *command) {
	var flags []string
	for _, f := range []struct {
		f    cmdFlag
		name string
	}{{fWrite, "write"}, {fReadonly, "readonly"}, {fFast, "fast"}, {fNoAuth, "no_auth"},
		{fNoMulti, "no_multi"}, {fAdmin, "admin"}, {fLoading, "loading"}, {fStale, "stale"}} {
		if cmd.flags&f.f != 0 {
			flags = append(flags, f.name)
		}
	}
	r.array(10)
	r.bulkString(cmd.name)
	r.int(int64(cmd.arity))
	r.setHeader(len(flags))
	for _, f := range flags {
		r.simple(f)
	}
	last := cmd.last
	r.int(int64(cmd.first))
	r.int(int64(last))
	r.int(int64(cmd.step))
	r.setHeader(0)
	r.array(0)
	r.array(0)
	r.array(0)
}

// cmdInfo: INFO [section ...] in Redis's "# Section" / "field:value"
// format.  Counters of the engine (keyspace hits, expired keys) include
// what HTTP clients did: both protocols share one engine.
func cmdInfo(x *exec) {
	want := map[string]bool{}
	for _, a := range x.args[1:] {
		want[lower(a)] = true
	}
	all := want["all"] || want["everything"]
	def := len(want) == 0 || want["default"]
	show := func(name string, inDefault bool) bool {
		return all || want[name] || def && inDefault
	}
	x.r.bulkString(x.s.info(show))
}

func (s *Server) info(show func(string, bool) bool) string {
	var b strings.Builder
	st := s.store.Stats()
	rs := s.Stats()
	commands, totals := s.commandSnapshot()
	section := func(name string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
	}
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	if show("server", true) {
		section("Server")
		kv("redis_version", redisVersion)
		kv("mantisdb_version", s.cfg.Version)
		kv("mantisdb_engine", st.Engine)
		kv("redis_mode", "standalone")
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.IntSize)
		kv("process_id", os.Getpid())
		kv("uptime_in_seconds", int64(time.Since(s.started).Seconds()))
		kv("uptime_in_days", int64(time.Since(s.started).Hours()/24))
	}
	if show("clients", true) {
		section("Clients")
		kv("connected_clients", rs.ConnectedClients)
		kv("maxclients", s.cfg.MaxClients)
	}
	if show("memory", true) {
		section("Memory")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		used := int64(ms.HeapAlloc) + st.NativeBytes
		kv("used_memory", used)
		kv("used_memory_human", humanBytes(used))
		kv("mantisdb_go_heap_bytes", ms.HeapAlloc)
		kv("mantisdb_native_bytes", st.NativeBytes)
		kv("mantisdb_live_bytes", st.LiveBytes)
		kv("maxmemory", 0)
		kv("maxmemory_policy", "noeviction")
	}
	if show("persistence", true) {
		section("Persistence")
		kv("loading", 0)
		aof := 1
		if s.cfg.InMemory {
			aof = 0
		}
		kv("aof_enabled", aof)
		kv("mantisdb_sync", s.cfg.Sync.String())
		kv("mantisdb_wal_bytes", st.WALBytes)
		kv("mantisdb_wal_segments", st.WALSegments)
		kv("mantisdb_wal_free_segments", st.WALFree)
		kv("mantisdb_wal_segments_reused", st.WALReused)
		last := int64(-1)
		if !st.LastCheckpoint.IsZero() {
			last = st.LastCheckpoint.Unix()
		}
		kv("rdb_last_save_time", last)
		ro := 0
		if st.ReadOnly {
			ro = 1
		}
		kv("mantisdb_read_only", ro)
	}
	if show("stats", true) {
		section("Stats")
		kv("total_connections_received", rs.Connections)
		kv("total_commands_processed", commands)
		kv("rejected_connections", rs.Rejected)
		kv("total_error_replies", failedTotal(totals))
		kv("client_output_buffer_limit_disconnections", rs.SlowClients)
		kv("mantisdb_protocol_errors", rs.ProtocolErrors)
		kv("mantisdb_panics", rs.Panics)
		kv("expired_keys", st.Expired)
		kv("keyspace_hits", st.Gets-st.Misses)
		kv("keyspace_misses", st.Misses)
	}
	if show("replication", true) {
		section("Replication")
		s.replicationInfo(kv)
	}
	if show("commandstats", false) {
		section("Commandstats")
		for i, t := range totals {
			if t.calls == 0 {
				continue
			}
			fmt.Fprintf(&b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=0,failed_calls=%d\r\n",
				s.cmdList[i].name, t.calls, t.usec, float64(t.usec)/float64(t.calls), t.failed)
		}
	}
	if show("keyspace", true) {
		section("Keyspace")
		if st.Keys > 0 {
			kv("db0", fmt.Sprintf("keys=%d", st.Keys))
		}
	}
	return b.String()
}

func failedTotal(totals []cmdTotals) uint64 {
	var n uint64
	for _, t := range totals {
		n += t.failed
	}
	return n
}

func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "K", "M", "G"} {
		if f < 1024 {
			return strconv.FormatFloat(f, 'f', 2, 64) + u
		}
		f /= 1024
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "T"
}

// appendfsync is Redis's name of the sync policy (CONFIG GET appendfsync).
func (s *Server) appendfsync() string {
	return map[string]string{"always": "always", "interval": "everysec", "none": "no"}[s.cfg.Sync.String()]
}

// commandFilter parses COMMAND LIST's FILTERBY clause as Redis does (a
// clause of another shape is a syntax error).  MODULE matches nothing
// (there are no modules); PATTERN is a glob over the name, in any case;
// ACLCAT knows the categories these commands' flags and groups give
// (read, write, fast, string, keyspace, connection, transaction, server).
func commandFilter(args [][]byte) (func(*command) bool, bool) {
	all := func(*command) bool { return true }
	if len(args) == 0 {
		return all, true
	}
	if len(args) != 3 || lower(args[0]) != "filterby" {
		return nil, false
	}
	arg := args[2]
	switch lower(args[1]) {
	case "module":
		return func(*command) bool { return false }, true
	case "pattern":
		p := []byte(lower(arg))
		return func(c *command) bool { return globMatch(p, []byte(c.name)) }, true
	case "aclcat":
		cat := lower(arg)
		return func(c *command) bool {
			switch cat {
			case "read":
				return c.flags&fReadonly != 0
			case "write":
				return c.flags&fWrite != 0
			case "fast":
				return c.flags&fFast != 0
			case "string":
				return c.group == "string"
			case "keyspace":
				return c.group == "generic"
			case "connection":
				return c.group == "connection"
			case "transaction":
				return c.group == "transactions"
			case "server":
				return c.group == "server"
			}
			return false
		}, true
	}
	return nil, false
}
