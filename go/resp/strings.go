// strings.go -- the string commands.  Each runs against a kv: inside
// Store.Update for writes (dispatch.go), so its read and its write are
// one atomic step.
package resp

import (
	"errors"
	"math"
	"math/big"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	errSyntax   = "ERR syntax error"
	errNotInt   = "ERR value is not an integer or out of range"
	errNotFloat = "ERR value is not a valid float"
	errOverflow = "ERR increment or decrement would overflow"
	errNaN      = "ERR increment would produce NaN or Infinity"
	errTooBig   = "ERR string exceeds maximum allowed size (max-value-size)"
)

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

func isKeyLimit(err error) bool {
	return errors.Is(err, storage.ErrEmptyKey) || errors.Is(err, storage.ErrKeyTooLarge)
}

// parseInt parses a Redis integer argument strictly (string2ll): an
// optional '-', digits, no leading zeros, no spaces or '+'.
func parseInt(b []byte) (int64, bool) { return storage.ParseInt(b) }

// lookupValue reads key for a command, writing an error reply on failure.
func (x *exec) lookupValue(key []byte) (storage.Entry, bool, bool) {
	ent, err := x.kv.Get(key)
	switch {
	case err == nil:
		return ent, true, true
	case isNotFound(err), isKeyLimit(err):
		return storage.Entry{}, false, true
	}
	x.fail(storeError(err))
	return storage.Entry{}, false, false
}

// put writes key through the kv, writing an error reply on failure.
func (x *exec) put(key, value []byte, exp int64) bool {
	if err := x.kv.Put(key, value, exp); err != nil {
		x.fail(storeError(err))
		return false
	}
	return true
}

func (x *exec) del(key []byte) bool {
	if err := x.kv.Delete(key); err != nil {
		x.fail(storeError(err))
		return false
	}
	return true
}

// failExpireTime answers Redis's error for an expiry out of range.
func (x *exec) failExpireTime() {
	x.fail("ERR invalid expire time in '" + x.cmd.name + "' command")
}

// expiryArg turns an EX/PX/EXAT/PXAT argument into Unix ns, or reports
// Redis's "invalid expire time" (not positive, or past year 2262).
func (x *exec) expiryArg(opt string, arg []byte) (int64, bool) {
	n, ok := parseInt(arg)
	if !ok {
		x.fail(errNotInt)
		return 0, false
	}
	var mul int64 = int64(time.Millisecond)
	if opt == "ex" || opt == "exat" {
		mul = int64(time.Second)
	}
	if n <= 0 || n > math.MaxInt64/mul {
		x.failExpireTime()
		return 0, false
	}
	v := n * mul
	if opt == "ex" || opt == "px" {
		now := x.kv.Now()
		if v > math.MaxInt64-now {
			x.failExpireTime()
			return 0, false
		}
		v += now
	}
	return v, true
}

// expiryOpt takes the EX|PX|EXAT|PXAT option at args[i] into *kind and
// *arg and returns the index of its value, as Redis parses them: the same
// option given again replaces its value (the last one counts), another
// expiry option (prev, or a KEEPTTL or PERSIST: other) and a missing
// value are syntax errors.  The value is checked later (expiryArg), so a
// syntax error anywhere wins over an invalid expire time, and GETEX of a
// missing key answers nil before its value is looked at, as in Redis.
func (x *exec) expiryOpt(opt string, i int, kind *string, arg *[]byte, other bool) (int, bool) {
	if other || *kind != "" && *kind != opt || i+1 >= len(x.args) {
		x.fail(errSyntax)
		return i, false
	}
	*kind, *arg = opt, x.args[i+1]
	return i + 1, true
}

func cmdGet(x *exec) {
	ent, ok, good := x.lookupValue(x.args[1])
	switch {
	case !good:
	case ok:
		x.r.bulk(ent.Value)
	default:
		x.r.null()
	}
}

// cmdSet: SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
func cmdSet(x *exec) {
	key, val := x.args[1], x.args[2]
	var nx, xx, get, keep bool
	var exp int64
	var expKind string
	var expArg []byte
	for i := 3; i < len(x.args); i++ {
		opt := lower(x.args[i])
		switch opt {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "get":
			get = true
		case "keepttl":
			keep = true
		case "ex", "px", "exat", "pxat":
			var ok bool
			if i, ok = x.expiryOpt(opt, i, &expKind, &expArg, keep); !ok {
				return
			}
		default:
			x.fail(errSyntax)
			return
		}
	}
	if (nx && xx) || (keep && expKind != "") {
		x.fail(errSyntax)
		return
	}
	if expKind != "" {
		var ok bool
		if exp, ok = x.expiryArg(expKind, expArg); !ok {
			return
		}
	}
	var old storage.Entry
	found := false
	if nx || xx || get || keep {
		var good bool
		if old, found, good = x.lookupValue(key); !good {
			return
		}
	}
	if (nx && found) || (xx && !found) {
		if get {
			x.bulkOrNull(old, found)
		} else {
			x.r.null()
		}
		return
	}
	if keep && found {
		exp = old.ExpiresAt
	}
	if !x.put(key, val, exp) {
		return
	}
	if get {
		x.bulkOrNull(old, found)
		return
	}
	x.r.ok()
}

func (x *exec) bulkOrNull(ent storage.Entry, found bool) {
	if found {
		x.r.bulk(ent.Value)
	} else {
		x.r.null()
	}
}

func cmdSetNX(x *exec) {
	_, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if found {
		x.r.int(0)
		return
	}
	if x.put(x.args[1], x.args[2], 0) {
		x.r.int(1)
	}
}

// cmdSetEX is SETEX (seconds) and PSETEX (milliseconds).
func cmdSetEX(x *exec) {
	opt := "ex"
	if x.cmd.name == "psetex" {
		opt = "px"
	}
	exp, ok := x.expiryArg(opt, x.args[2])
	if !ok {
		return
	}
	if x.put(x.args[1], x.args[3], exp) {
		x.r.ok()
	}
}

func cmdGetSet(x *exec) {
	old, found, good := x.lookupValue(x.args[1])
	if !good || !x.put(x.args[1], x.args[2], 0) {
		return
	}
	x.bulkOrNull(old, found)
}

func cmdGetDel(x *exec) {
	old, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if found && !x.del(x.args[1]) {
		return
	}
	x.bulkOrNull(old, found)
}

// cmdGetEx: GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST].
func cmdGetEx(x *exec) {
	key := x.args[1]
	var exp int64
	var expKind string
	var expArg []byte
	persist := false
	for i := 2; i < len(x.args); i++ {
		opt := lower(x.args[i])
		switch opt {
		case "persist":
			if expKind != "" {
				x.fail(errSyntax)
				return
			}
			persist = true
		case "ex", "px", "exat", "pxat":
			var ok bool
			if i, ok = x.expiryOpt(opt, i, &expKind, &expArg, persist); !ok {
				return
			}
		default:
			x.fail(errSyntax)
			return
		}
	}
	ent, found, good := x.lookupValue(key)
	if !good {
		return
	}
	if !found {
		x.r.null()
		return
	}
	if expKind != "" {
		var ok bool
		if exp, ok = x.expiryArg(expKind, expArg); !ok {
			return
		}
	}
	if change := persist || expKind != ""; change && (persist && ent.ExpiresAt != 0 || !persist) {
		if !x.put(key, ent.Value, exp) {
			return
		}
	}
	x.r.bulk(ent.Value)
}

func cmdMGet(x *exec) {
	x.r.array(len(x.args) - 1)
	for _, k := range x.args[1:] {
		ent, found, good := x.lookupValue(k)
		if !good {
			return
		}
		x.bulkOrNull(ent, found)
	}
}

// putsFit answers the error a put of the first pair of kvs whose value
// the Store would refuse gives, before any is staged: MSET and MSETNX
// write all their pairs or none, and a put staged in a transaction stays
// there (a failed command does not roll back, and the transaction commits
// the other commands of its run).  Keys need no check here: the Update
// refuses one it cannot take before any command runs.
func (x *exec) putsFit(kvs [][]byte) bool {
	for i := 0; i+1 < len(kvs); i += 2 {
		if len(kvs[i+1]) > x.s.cfg.MaxValueSize {
			x.fail(storeError(storage.ErrValueTooLarge))
			return false
		}
	}
	return true
}

func cmdMSet(x *exec) {
	if len(x.args)%2 != 1 {
		x.fail(arityError(x.cmd.name))
		return
	}
	if !x.putsFit(x.args[1:]) {
		return
	}
	for i := 1; i < len(x.args); i += 2 {
		if !x.put(x.args[i], x.args[i+1], 0) {
			return
		}
	}
	x.r.ok()
}

func cmdMSetNX(x *exec) {
	if len(x.args)%2 != 1 {
		x.fail(arityError(x.cmd.name))
		return
	}
	if !x.putsFit(x.args[1:]) {
		return
	}
	for i := 1; i < len(x.args); i += 2 {
		_, found, good := x.lookupValue(x.args[i])
		if !good {
			return
		}
		if found {
			x.r.int(0)
			return
		}
	}
	for i := 1; i < len(x.args); i += 2 {
		if !x.put(x.args[i], x.args[i+1], 0) {
			return
		}
	}
	x.r.int(1)
}

func cmdAppend(x *exec) {
	ent, _, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if len(ent.Value)+len(x.args[2]) > x.s.cfg.MaxValueSize {
		x.fail(errTooBig)
		return
	}
	v := make([]byte, 0, len(ent.Value)+len(x.args[2]))
	v = append(append(v, ent.Value...), x.args[2]...)
	if x.put(x.args[1], v, ent.ExpiresAt) {
		x.r.int(int64(len(v)))
	}
}

func cmdStrlen(x *exec) {
	ent, _, good := x.lookupValue(x.args[1])
	if good {
		x.r.int(int64(len(ent.Value)))
	}
}

func cmdGetRange(x *exec) {
	start, ok1 := parseInt(x.args[2])
	end, ok2 := parseInt(x.args[3])
	if !ok1 || !ok2 {
		x.fail(errNotInt)
		return
	}
	ent, _, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	n := int64(len(ent.Value))
	if start < 0 && end < 0 && start > end || n == 0 {
		x.r.bulk(nil)
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if start > end {
		x.r.bulk(nil)
		return
	}
	x.r.bulk(ent.Value[start : end+1])
}

func cmdSetRange(x *exec) {
	off, ok := parseInt(x.args[2])
	if !ok {
		x.fail(errNotInt)
		return
	}
	if off < 0 {
		x.fail("ERR offset is out of range")
		return
	}
	val := x.args[3]
	ent, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if len(val) == 0 {
		x.r.int(int64(len(ent.Value))) // nothing to write, nothing created
		return
	}
	if off > int64(x.s.cfg.MaxValueSize)-int64(len(val)) { // off+len(val) may overflow
		x.fail(errTooBig)
		return
	}
	size := max(int64(len(ent.Value)), off+int64(len(val)))
	v := make([]byte, size)
	copy(v, ent.Value)
	copy(v[off:], val)
	exp := int64(0)
	if found {
		exp = ent.ExpiresAt
	}
	if x.put(x.args[1], v, exp) {
		x.r.int(size)
	}
}

// incrDelta returns what cmd, a's command, adds when it is INCR, DECR,
// INCRBY or DECRBY with arguments cmdIncr would take; false for any
// other command (nil included) or arguments, which are left to cmdIncr
// and its errors.  What the turns and runs of increments serve with one
// AddInts (addTurn, runUpdates), answered by replyAdd.
func incrDelta(cmd *command, a [][]byte) (int64, bool) {
	if cmd == nil || len(a) != cmd.arity {
		return 0, false
	}
	switch cmd.name {
	case "incr":
		return 1, true
	case "decr":
		return -1, true
	case "incrby", "decrby":
		n, ok := parseInt(a[2])
		if !ok || cmd.name == "decrby" && n == math.MinInt64 {
			return 0, false
		}
		if cmd.name == "decrby" {
			n = -n
		}
		return n, true
	}
	return 0, false
}

// replyAdd answers an increment's AddInts result as cmdIncr answers it,
// and reports whether it failed.
func replyAdd(r *reply, res storage.AddResult) bool {
	switch res.Err {
	case nil:
		r.int(res.Value)
		return false
	case storage.ErrNotInteger:
		r.err(errNotInt)
	case storage.ErrOverflow:
		r.err(errOverflow)
	default:
		r.err(storeError(res.Err))
	}
	return true
}

// cmdIncr is INCR, DECR, INCRBY and DECRBY.
func cmdIncr(x *exec) {
	var by int64 = 1
	switch x.cmd.name {
	case "decr":
		by = -1
	case "incrby", "decrby":
		n, ok := parseInt(x.args[2])
		if !ok {
			x.fail(errNotInt)
			return
		}
		if x.cmd.name == "decrby" {
			if n == math.MinInt64 {
				x.fail("ERR decrement would overflow")
				return
			}
			n = -n
		}
		by = n
	}
	ent, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	var cur int64
	if found {
		var ok bool
		if cur, ok = parseInt(ent.Value); !ok {
			x.fail(errNotInt)
			return
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		x.fail(errOverflow)
		return
	}
	cur += by
	if x.put(x.args[1], x.appendInt(cur), ent.ExpiresAt) {
		x.r.int(cur)
	}
}

func cmdIncrByFloat(x *exec) {
	by, byInf, ok := parseLongDouble(x.args[2])
	if !ok {
		x.fail(errNotFloat)
		return
	}
	ent, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	cur, curInf := new(big.Float).SetPrec(ldPrec), 0
	if found {
		if cur, curInf, ok = parseLongDouble(ent.Value); !ok {
			x.fail(errNotFloat)
			return
		}
	}
	if byInf != 0 || curInf != 0 {
		x.fail(errNaN) // inf + x, or inf - inf: Redis's isnan/isinf check
		return
	}
	sum := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(cur, by)
	if !ldInRange(sum) {
		x.fail(errNaN) // the long double overflowed to infinity
		return
	}
	s := formatLongDouble(sum)
	if x.put(x.args[1], []byte(s), ent.ExpiresAt) {
		x.r.bulkString(s)
	}
}

// lower returns b in lower case (option names).
func lower(b []byte) string {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			out := make([]byte, len(b))
			for i, c := range b {
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				out[i] = c
			}
			return string(out)
		}
	}
	return string(b)
}
