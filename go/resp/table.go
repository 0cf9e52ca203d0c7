// table.go -- the command table: name, arity, flags and key positions in
// Redis's conventions (COMMAND INFO reports them), and the handler.
package resp

import "strings"

// commandTable builds the table, keyed by lower- and upper-case name.
func commandTable() map[string]*command {
	const (
		w   = fWrite
		ro  = fReadonly
		f   = fFast
		kl  = fKeyless
		na  = fNoAuth
		ctl = fMultiCtl
	)
	list := []*command{
		// connection and server
		{name: "ping", arity: -1, flags: kl | f, group: "connection", summary: "Returns the server's liveliness response.", run: cmdPing},
		{name: "echo", arity: 2, flags: kl | f, group: "connection", summary: "Returns the given string.", run: cmdEcho},
		{name: "hello", arity: -1, flags: kl | f | na, group: "connection", summary: "Handshakes with the server.", run: cmdHello},
		{name: "auth", arity: -2, flags: kl | f | na, group: "connection", summary: "Authenticates the connection.", run: cmdAuth},
		{name: "select", arity: 2, flags: kl | f, group: "connection", summary: "Changes the selected database (only 0 exists).", run: cmdSelect},
		{name: "quit", arity: -1, flags: kl | f | na | ctl, group: "connection", summary: "Closes the connection.", run: cmdQuit},
		{name: "reset", arity: 1, flags: kl | f | na | ctl, group: "connection", summary: "Resets the connection.", run: cmdReset},
		{name: "client", arity: -2, flags: kl, group: "connection", summary: "CLIENT ID, SETNAME, GETNAME, SETINFO, INFO, LIST, HELP.", run: cmdClient},
		{name: "command", arity: -1, flags: kl, group: "server", summary: "Returns detailed information about commands.", run: cmdCommand},
		{name: "config", arity: -2, flags: kl | fAdmin, group: "server", summary: "CONFIG GET, RESETSTAT and HELP.", run: cmdConfig},
		{name: "role", arity: 1, flags: kl | f, group: "server", summary: "Returns the replication role.", run: cmdRole},
		{name: "readonly", arity: 1, flags: kl | f, group: "cluster", summary: "Lets this connection read a follower's own state (cluster mode).", run: cmdReadonly},
		{name: "readwrite", arity: 1, flags: kl | f, group: "cluster", summary: "Undoes READONLY.", run: cmdReadonly},
		{name: "info", arity: -1, flags: kl, group: "server", summary: "Returns information and statistics about the server.", run: cmdInfo},
		{name: "dbsize", arity: 1, flags: kl | ro | f, group: "server", summary: "Returns the number of keys.", run: cmdDBSize},
		{name: "time", arity: 1, flags: kl | f, group: "server", summary: "Returns the server time.", run: cmdTime},
		{name: "flushdb", arity: -1, flags: kl | w | fNoMulti, group: "server", summary: "Removes all keys.", run: cmdFlushDB},
		{name: "flushall", arity: -1, flags: kl | w | fNoMulti, group: "server", summary: "Removes all keys.", run: cmdFlushDB},
		// strings
		{name: "get", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "string", summary: "Returns the string value of a key.", run: cmdGet},
		{name: "set", arity: -3, flags: w, first: 1, last: 1, step: 1, group: "string", summary: "Sets the string value of a key.", run: cmdSet},
		{name: "setnx", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key only when it does not exist.", run: cmdSetNX},
		{name: "setex", arity: 4, flags: w, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key with an expiry in seconds.", run: cmdSetEX},
		{name: "psetex", arity: 4, flags: w, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key with an expiry in milliseconds.", run: cmdSetEX},
		{name: "getset", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key and returns its previous value.", run: cmdGetSet},
		{name: "getdel", arity: 2, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Returns a key's value and deletes it.", run: cmdGetDel},
		{name: "getex", arity: -2, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Returns a key's value and changes its expiry.", run: cmdGetEx},
		{name: "mget", arity: -2, flags: ro | f, first: 1, last: -1, step: 1, group: "string", summary: "Returns the values of keys.", run: cmdMGet},
		{name: "mset", arity: -3, flags: w, first: 1, last: -1, step: 2, group: "string", summary: "Sets keys atomically.", run: cmdMSet},
		{name: "msetnx", arity: -3, flags: w, first: 1, last: -1, step: 2, group: "string", summary: "Sets keys atomically only when none exists.", run: cmdMSetNX},
		{name: "append", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Appends to a key's value.", run: cmdAppend},
		{name: "strlen", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "string", summary: "Returns the length of a key's value.", run: cmdStrlen},
		{name: "getrange", arity: 4, flags: ro, first: 1, last: 1, step: 1, group: "string", summary: "Returns a substring of a key's value.", run: cmdGetRange},
		{name: "setrange", arity: 4, flags: w, first: 1, last: 1, step: 1, group: "string", summary: "Overwrites part of a key's value at an offset.", run: cmdSetRange},
		{name: "incr", arity: 2, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Increments an integer value by one.", run: cmdIncr},
		{name: "decr", arity: 2, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Decrements an integer value by one.", run: cmdIncr},
		{name: "incrby", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Increments an integer value.", run: cmdIncr},
		{name: "decrby", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Decrements an integer value.", run: cmdIncr},
		{name: "incrbyfloat", arity: 3, flags: w | f, first: 1, last: 1, step: 1, group: "string", summary: "Increments a floating point value.", run: cmdIncrByFloat},
		// keys
		{name: "del", arity: -2, flags: w, first: 1, last: -1, step: 1, group: "generic", summary: "Deletes keys.", run: cmdDel},
		{name: "unlink", arity: -2, flags: w | f, first: 1, last: -1, step: 1, group: "generic", summary: "Deletes keys.", run: cmdDel},
		{name: "exists", arity: -2, flags: ro | f, first: 1, last: -1, step: 1, group: "generic", summary: "Counts the keys that exist.", run: cmdExists},
		{name: "type", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "generic", summary: "Returns the type of a key.", run: cmdType},
		{name: "rename", arity: 3, flags: w, first: 1, last: 2, step: 1, group: "generic", summary: "Renames a key, overwriting the destination.", run: cmdRename},
		{name: "renamenx", arity: 3, flags: w | f, first: 1, last: 2, step: 1, group: "generic", summary: "Renames a key only when the destination does not exist.", run: cmdRename},
		{name: "expire", arity: -3, flags: w | f, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry in seconds.", run: cmdExpire},
		{name: "pexpire", arity: -3, flags: w | f, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry in milliseconds.", run: cmdExpire},
		{name: "expireat", arity: -3, flags: w | f, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry to a Unix time in seconds.", run: cmdExpire},
		{name: "pexpireat", arity: -3, flags: w | f, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry to a Unix time in milliseconds.", run: cmdExpire},
		{name: "ttl", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's time to live in seconds.", run: cmdTTL},
		{name: "pttl", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's time to live in milliseconds.", run: cmdTTL},
		{name: "expiretime", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's expiry as a Unix time in seconds.", run: cmdTTL},
		{name: "pexpiretime", arity: 2, flags: ro | f, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's expiry as a Unix time in milliseconds.", run: cmdTTL},
		{name: "persist", arity: 2, flags: w | f, first: 1, last: 1, step: 1, group: "generic", summary: "Removes a key's expiry.", run: cmdPersist},
		{name: "scan", arity: -2, flags: kl | ro, group: "generic", summary: "Iterates over the keys in order.", run: cmdScan},
		{name: "keys", arity: 2, flags: kl | ro, group: "generic", summary: "Returns the keys matching a pattern.", run: cmdKeys},
		{name: "randomkey", arity: 1, flags: kl | ro, group: "generic", summary: "Returns a key picked at random.", run: cmdRandomKey},
		// transactions
		{name: "multi", arity: 1, flags: kl | f | ctl, group: "transactions", summary: "Starts a transaction.", run: cmdMulti},
		{name: "exec", arity: 1, flags: kl | ctl, group: "transactions", summary: "Executes the queued commands atomically.", run: cmdExec},
		{name: "discard", arity: 1, flags: kl | f | ctl, group: "transactions", summary: "Discards the queued commands.", run: cmdDiscard},
		{name: "watch", arity: -2, flags: kl | ro | f | ctl, group: "transactions", summary: "Aborts the next EXEC if a key changes.", run: cmdWatch},
		{name: "unwatch", arity: 1, flags: kl | f, group: "transactions", summary: "Forgets every watched key.", run: cmdUnwatch},
	}
	m := make(map[string]*command, 2*len(list))
	for _, cmd := range list {
		m[cmd.name] = cmd
		m[strings.ToUpper(cmd.name)] = cmd
	}
	return m
}
