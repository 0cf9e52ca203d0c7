// linmodel.go -- the pieces of the linearizability check that do not
// depend on how operations reach an engine, shared by the in-process test
// (linear.go) and the HTTP test against the server binaries
// (cmd/mantisdb/linear_e2e_test.go):
//
//   - self-checking values: every value names its key, its writer and
//     sequence number and carries a checksum, so a torn value or one read
//     under the wrong key is a failure on its own, and a read reports
//     exactly which write it saw (a ValueID);
//   - a History that records operations with a logical clock (a counter
//     taken before each call and after each return, so real-time order is
//     the counter's order);
//   - two Porcupine models: a register per key (puts with optional expiry,
//     deletes, reads), checked key by key; and the "group", a few keys
//     written only by batches, checked as one register holding the last
//     batch, so a reader that sees several group keys at once must see one
//     batch entirely (batch atomicity);
//   - the iterator contract (docs/API.md, "Iterator and listing
//     guarantees"): keys within bounds, strictly increasing, and every key
//     live for the whole iteration returned.
//
// Operations whose outcome is unknown (a write that failed with ErrClosed
// while the engine closed, an HTTP request in flight when the server was
// killed) are recorded as "maybe" writes: the model may apply them or
// not, anywhere between their call and the moment the outcome became
// fixed (the reopen or restart completed; nothing can apply later), which
// is their recorded return.  That is exactly "may or may not have been
// applied", and no stricter.  A write that failed with an error no valid
// call may get is a failure on its own, and is then recorded as a maybe
// write with no bound at all, so the check of the rest stays sound.
package storagetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ValueID names one written value: writer<<32 | sequence.  0 is "absent".
// Writers are below 256 so an ID fits the 40 bits of a compact value.
type ValueID uint64

// MakeID returns the ID of writer's seq-th value.
func MakeID(writer int, seq uint32) ValueID {
	return ValueID(uint64(writer&0xff)<<32 | uint64(seq))
}

func (id ValueID) String() string {
	if id == 0 {
		return "absent"
	}
	return fmt.Sprintf("w%d#%d", uint64(id)>>32, uint32(id))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Value layouts.  A full value (size >= fullMin):
//
//	+--------+---------+-----------+-------------------+-----------+
//	| id u64 | size u32| crc(key)  | filler (id, key)  | crc(all   |
//	|        |         | u32       |                   | before)u32|
//	+--------+---------+-----------+-------------------+-----------+
//
// A compact value (minValue <= size < fullMin): one u64 word, the ID in
// the low 40 bits and a 24-bit check of (key, id, size) above it, then
// filler derived from that word.  All integers little-endian.
const (
	minValue = 8
	fullMin  = 24
)

// fill writes a pattern derived from seed into dst: a 64-byte block, then
// doubling copies, so a 1 MiB value costs a memmove, not a loop.
func fill(dst []byte, seed uint64) {
	var blk [64]byte
	x := seed
	for i := 0; i < len(blk); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(blk[i:], z^(z>>31))
	}
	n := copy(dst, blk[:])
	for n < len(dst) {
		n += copy(dst[n:], dst[:n])
	}
}

func keySum(key []byte) uint32 { return crc32.Checksum(key, castagnoli) }

func compactCheck(key []byte, id ValueID, size int) uint64 {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:], uint64(id))
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
	c := crc32.Update(keySum(key), castagnoli, b[:])
	return uint64(c) & 0xffffff
}

// MakeValue returns a value of size bytes (at least 8) for key that
// CheckValue maps back to id.
func MakeValue(key []byte, id ValueID, size int) []byte {
	size = max(size, minValue)
	v := make([]byte, size)
	if size < fullMin {
		w := uint64(id)&(1<<40-1) | compactCheck(key, id, size)<<40
		binary.LittleEndian.PutUint64(v, w)
		fill(v[8:], w)
		return v
	}
	binary.LittleEndian.PutUint64(v, uint64(id))
	binary.LittleEndian.PutUint32(v[8:], uint32(size))
	binary.LittleEndian.PutUint32(v[12:], keySum(key))
	fill(v[16:size-4], uint64(id)^uint64(keySum(key))<<17)
	binary.LittleEndian.PutUint32(v[size-4:], crc32.Checksum(v[:size-4], castagnoli))
	return v
}

// CheckValue returns the ID of a value MakeValue made for key, or an
// error saying why val is not one (torn, truncated, or another key's).
func CheckValue(key, val []byte) (ValueID, error) {
	size := len(val)
	if size < minValue {
		return 0, fmt.Errorf("value of %q is %d bytes, shorter than any written", key, size)
	}
	if size < fullMin {
		w := binary.LittleEndian.Uint64(val)
		id := ValueID(w & (1<<40 - 1))
		if w>>40 != compactCheck(key, id, size) {
			return 0, fmt.Errorf("compact value of %q (%d bytes) fails its check: torn or another key's", key, size)
		}
		want := make([]byte, size-8)
		fill(want, w)
		if !bytes.Equal(val[8:], want) {
			return 0, fmt.Errorf("compact value of %q (%s, %d bytes): filler differs: torn", key, id, size)
		}
		return id, nil
	}
	id := ValueID(binary.LittleEndian.Uint64(val))
	if got := int(binary.LittleEndian.Uint32(val[8:])); got != size {
		return 0, fmt.Errorf("value of %q (%s) is %d bytes, its header says %d: torn or truncated", key, id, size, got)
	}
	if got := binary.LittleEndian.Uint32(val[12:]); got != keySum(key) {
		return 0, fmt.Errorf("value read under %q (%s) was written for another key", key, id)
	}
	if got, want := binary.LittleEndian.Uint32(val[size-4:]), crc32.Checksum(val[:size-4], castagnoli); got != want {
		return 0, fmt.Errorf("value of %q (%s, %d bytes) fails its checksum: torn", key, id, size)
	}
	return id, nil
}

// ---- the per-key model ----------------------------------------------------

type kvKind uint8

const (
	kvPut kvKind = iota + 1
	kvDelete
	kvRead
)

// kvInput is one operation on one key.  Clock values are the engine
// clock's Unix nanoseconds: C0 before the call, C1 after its return, so
// whatever instant the engine read its clock at lies in [C0, C1].
type kvInput struct {
	Key   string
	Kind  kvKind
	ID    ValueID // put: the value written
	E0    int64   // put with TTL: earliest possible expiry (C0+ttl); 0 = never expires
	E1    int64   // put with TTL: latest possible expiry (C1+ttl)
	C0    int64   // read: clock before the call
	C1    int64   // read: clock after the return
	Maybe bool    // write whose outcome is unknown
}

// kvState is a key's value: its ID and, for a TTL put, the range its
// expiry lies in.
type kvState struct {
	ID     ValueID
	E0, E1 int64
}

// kvReadOK reports whether a read whose clock lay in [c0, c1] may return
// got in state s.  Absent is allowed if the key is absent or may have
// expired at some clock <= c1 (expiry >= E0); a value is allowed if it is
// s's and may still be live at some clock >= c0 (expiry <= E1).  Expiry
// is judged per read, not remembered: two concurrent readers may read
// the clock in one order and the index in the other.
func kvReadOK(s kvState, got ValueID, c0, c1 int64) bool {
	if got == 0 {
		return s.ID == 0 || (s.E0 != 0 && c1 >= s.E0)
	}
	return got == s.ID && (s.E1 == 0 || c0 < s.E1)
}

var kvModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{kvState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in := state.(kvState), input.(kvInput)
		var next kvState
		switch in.Kind {
		case kvPut:
			next = kvState{ID: in.ID, E0: in.E0, E1: in.E1}
		case kvDelete:
		case kvRead:
			if kvReadOK(s, output.(ValueID), in.C0, in.C1) {
				return []interface{}{s}
			}
			return nil
		}
		if in.Maybe && next != s {
			return []interface{}{s, next}
		}
		return []interface{}{next}
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(kvInput)
		maybe := ""
		if in.Maybe {
			maybe = " (outcome unknown)"
		}
		switch in.Kind {
		case kvPut:
			if in.E0 != 0 {
				return fmt.Sprintf("put(%s, %s, expiry in [%d, %d])%s", in.Key, in.ID, in.E0, in.E1, maybe)
			}
			return fmt.Sprintf("put(%s, %s)%s", in.Key, in.ID, maybe)
		case kvDelete:
			return fmt.Sprintf("delete(%s)%s", in.Key, maybe)
		}
		return fmt.Sprintf("read(%s, clock [%d, %d]) -> %s", in.Key, in.C0, in.C1, output.(ValueID))
	},
}

// ---- the group model ------------------------------------------------------

// GroupKeys is the number of group keys; GroupKey(i) names them.  They
// are written only by batches that write all of them (GroupBatch), so the
// group's state is the last such batch.
const GroupKeys = 6

// GroupPrefix is the prefix every group key and no other key has.
const GroupPrefix = "g/"

// GroupKey returns the name of group key i.
func GroupKey(i int) []byte { return []byte(fmt.Sprintf("%s%d", GroupPrefix, i)) }

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}

// GroupPresent reports whether batch x puts group key i (else it deletes
// it).  Every batch puts at least one key.
func GroupPresent(x ValueID, i int) bool {
	if x == 0 {
		return false
	}
	m := mix64(uint64(x))
	return m>>i&1 == 1 || i == int(m>>32%GroupKeys)
}

// GroupValueSize is the size of the value batch x gives group key i:
// 8 to 300 bytes, so all group keys and values (under 2 KiB) fit the
// first fetch of an iterator (4 KiB, docs/API.md) and a prefix iteration
// over the group is one atomic read.
func GroupValueSize(x ValueID, i int) int {
	return minValue + int(mix64(uint64(x)+uint64(i)+1)%293)
}

type groupKind uint8

const (
	groupWrite   groupKind = iota + 1
	groupReadKey           // one key; output ValueID
	groupReadAll           // every key at once; output [GroupKeys]ValueID
)

type groupInput struct {
	Kind  groupKind
	X     ValueID // write: the batch
	Index int     // readKey: which key
	Maybe bool
}

// groupExpect is what batch x leaves in key i.
func groupExpect(x ValueID, i int) ValueID {
	if GroupPresent(x, i) {
		return x
	}
	return 0
}

var groupModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{ValueID(0)} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in := state.(ValueID), input.(groupInput)
		switch in.Kind {
		case groupWrite:
			if in.Maybe && in.X != s {
				return []interface{}{s, in.X}
			}
			return []interface{}{in.X}
		case groupReadKey:
			if output.(ValueID) == groupExpect(s, in.Index) {
				return []interface{}{s}
			}
		case groupReadAll:
			obs := output.([GroupKeys]ValueID)
			for i := range obs {
				if obs[i] != groupExpect(s, i) {
					return nil
				}
			}
			return []interface{}{s}
		}
		return nil
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(groupInput)
		switch in.Kind {
		case groupWrite:
			if in.Maybe {
				return fmt.Sprintf("batch %s (outcome unknown)", in.X)
			}
			return fmt.Sprintf("batch %s", in.X)
		case groupReadKey:
			return fmt.Sprintf("read(%s) -> %s", GroupKey(in.Index), output.(ValueID))
		}
		return fmt.Sprintf("read all -> %v", output.([GroupKeys]ValueID))
	},
}

// ---- iterator records -----------------------------------------------------

// IterRecord is one iteration (or one paginated listing) as the caller
// saw it.
type IterRecord struct {
	Desc         string
	Lower, Upper []byte // inclusive, exclusive; nil = unbounded
	Prefix       []byte
	Seek         []byte // SeekGE's key; nil for First
	Call, Return int64  // history ticks: before positioning, after the last step
	ClockReturn  int64  // engine clock after the last step
	Keys         []string
	// Exhausted: the iteration ran to its end without error, so every
	// key in range is subject to the completeness check; otherwise only
	// keys up to the last one returned are.
	Exhausted bool
	Failed    bool // the iteration ended in an error: no completeness check
}

func (r *IterRecord) inRange(k string) bool {
	kb := []byte(k)
	return (r.Lower == nil || bytes.Compare(kb, r.Lower) >= 0) &&
		(r.Upper == nil || bytes.Compare(kb, r.Upper) < 0) &&
		bytes.HasPrefix(kb, r.Prefix) &&
		(r.Seek == nil || bytes.Compare(kb, r.Seek) >= 0)
}

// writeRec is one write of one key, for the completeness check.
type writeRec struct {
	call, ret int64
	del       bool
	maybe     bool  // outcome unknown: never the put that proves liveness
	exp0      int64 // earliest expiry of a put (0 = never)
}

// ---- the history ----------------------------------------------------------

// History records operations for the checks.  Safe for concurrent use.
type History struct {
	ticks atomic.Int64

	mu     sync.Mutex
	kv     []porcupine.Operation
	group  []porcupine.Operation
	iters  []IterRecord
	writes map[string][]writeRec
	fails  []string
	maybes int // writes with an unknown outcome
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{writes: map[string][]writeRec{}} }

// Tick returns the next logical time.  Take one right before a call and
// one right after its return.
func (h *History) Tick() int64 { return h.ticks.Add(1) }

// Failf records a failure found while running (a torn value, an error a
// valid request must not get).
func (h *History) Failf(format string, args ...any) {
	h.mu.Lock()
	h.fails = append(h.fails, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// Failures returns the number of failures recorded so far.
func (h *History) Failures() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.fails)
}

// KVWrite is one key's part of a write: a put of id (0 = delete), with
// expiry range [e0, e1] (0 = none).
type KVWrite struct {
	Key    string
	ID     ValueID
	E0, E1 int64
}

// Write records writes applied by one operation (a put, a delete, or a
// batch's writes to ordinary keys) over [call, ret]; maybe marks an
// unknown outcome.
func (h *History) Write(call, ret int64, maybe bool, ws ...KVWrite) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if maybe {
		h.maybes++
	}
	for _, w := range ws {
		in := kvInput{Key: w.Key, Kind: kvPut, ID: w.ID, E0: w.E0, E1: w.E1, Maybe: maybe}
		if w.ID == 0 {
			in = kvInput{Key: w.Key, Kind: kvDelete, Maybe: maybe}
		}
		h.kv = append(h.kv, porcupine.Operation{Input: in, Call: call, Return: ret})
		h.writes[w.Key] = append(h.writes[w.Key], writeRec{call: call, ret: ret, del: w.ID == 0, maybe: maybe, exp0: w.E0})
	}
}

// Read records a read of an ordinary key over [call, ret] whose engine
// clock lay in [c0, c1], returning got (0 = not found).
func (h *History) Read(key string, call, ret, c0, c1 int64, got ValueID) {
	h.mu.Lock()
	h.kv = append(h.kv, porcupine.Operation{Input: kvInput{Key: key, Kind: kvRead, C0: c0, C1: c1}, Output: got, Call: call, Return: ret})
	h.mu.Unlock()
}

// GroupWrite records a batch x over the group keys.
func (h *History) GroupWrite(call, ret int64, maybe bool, x ValueID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if maybe {
		h.maybes++
	}
	h.group = append(h.group, porcupine.Operation{Input: groupInput{Kind: groupWrite, X: x, Maybe: maybe}, Call: call, Return: ret})
	for i := range GroupKeys {
		k := string(GroupKey(i))
		h.writes[k] = append(h.writes[k], writeRec{call: call, ret: ret, del: !GroupPresent(x, i), maybe: maybe})
	}
}

// GroupRead records a read of group key i.
func (h *History) GroupRead(i int, call, ret int64, got ValueID) {
	h.mu.Lock()
	h.group = append(h.group, porcupine.Operation{Input: groupInput{Kind: groupReadKey, Index: i}, Output: got, Call: call, Return: ret})
	h.mu.Unlock()
}

// GroupReadAll records one atomic read of every group key.
func (h *History) GroupReadAll(call, ret int64, got [GroupKeys]ValueID) {
	h.mu.Lock()
	h.group = append(h.group, porcupine.Operation{Input: groupInput{Kind: groupReadAll}, Output: got, Call: call, Return: ret})
	h.mu.Unlock()
}

// Observe records a key and value an iteration returned between call
// (its positioning) and ret (the step that returned it), with the engine
// clock in [c0, c1]: a group key's read goes to the group model, any
// other key's to its own.  It returns false if the value is not a valid
// value of key (the failure is recorded).
func (h *History) Observe(key, val []byte, call, ret, c0, c1 int64) bool {
	id, err := CheckValue(key, val)
	if err != nil {
		h.Failf("iterator: %v", err)
		return false
	}
	if i, ok := GroupIndex(key); ok {
		h.GroupRead(i, call, ret, id)
	} else {
		h.Read(string(key), call, ret, c0, c1, id)
	}
	return true
}

// GroupIndex returns i if key is GroupKey(i).
func GroupIndex(key []byte) (int, bool) {
	if !bytes.HasPrefix(key, []byte(GroupPrefix)) {
		return 0, false
	}
	for i := range GroupKeys {
		if bytes.Equal(key, GroupKey(i)) {
			return i, true
		}
	}
	return 0, false
}

// Iter records a finished iteration for the contract check.
func (h *History) Iter(r IterRecord) {
	h.mu.Lock()
	h.iters = append(h.iters, r)
	h.mu.Unlock()
}

// Summary says how many operations of each sort were recorded.
func (h *History) Summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d key operations, %d group operations, %d iterations, %d writes with an unknown outcome",
		len(h.kv), len(h.group), len(h.iters), h.maybes)
}

// Check runs every check on the history and reports each failure on t:
// failures recorded while running, the iterator contract, and Porcupine
// on every key and on the group.  A check that times out (Porcupine's
// Unknown) fails the test too: the histories are sized to check in a
// small fraction of timeout, so Unknown means the test no longer checks
// what it claims, which must not pass silently.
func (h *History) Check(t testing.TB, timeout time.Duration) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	const maxReport = 20
	for i, f := range h.fails {
		if i == maxReport {
			t.Errorf("... and %d more failures", len(h.fails)-maxReport)
			break
		}
		t.Error(f)
	}
	h.checkIters(t)

	byKey := map[string][]porcupine.Operation{}
	for _, op := range h.kv {
		k := op.Input.(kvInput).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	model := kvModel.ToModel()
	for _, k := range keys {
		checkLinear(t, "key "+k, model, byKey[k], timeout)
	}
	if len(h.group) > 0 {
		checkLinear(t, "group (batch atomicity)", groupModel.ToModel(), h.group, timeout)
	}
}

// checkLinear runs Porcupine on one partition and explains a violation.
func checkLinear(t testing.TB, what string, m porcupine.Model, ops []porcupine.Operation, timeout time.Duration) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(m, ops, timeout)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Errorf("%s: linearizability check of %d operations timed out after %v", what, len(ops), timeout)
		return
	}
	// The longest prefix Porcupine could linearize, and the operations
	// that could come next but none of which fits: the violation.
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: NOT linearizable (%d operations).  Longest linearizable prefix ends with:\n", what, len(ops))
	for _, op := range longest[max(0, len(longest)-6):] {
		fmt.Fprintf(&b, "    [%d, %s] %s\n", op.Call, retString(op.Return), m.DescribeOperation(op.Input, op.Output))
	}
	in := map[int64]bool{}
	var last int64 = math.MinInt64
	for _, op := range longest {
		in[op.Call] = true // ticks are unique per call
		last = max(last, op.Call)
	}
	// The earliest-returning operation not in the prefix bounds what can
	// come next; show the operations concurrent with it.
	rest := slices.DeleteFunc(slices.Clone(ops), func(op porcupine.Operation) bool { return in[op.Call] })
	slices.SortFunc(rest, func(a, b porcupine.Operation) int { return compare64(a.Return, b.Return) })
	if len(rest) > 0 {
		first := rest[0].Return
		b.WriteString("  none of these can come next:\n")
		n := 0
		for _, op := range rest {
			if op.Call <= first && n < 12 {
				fmt.Fprintf(&b, "    [%d, %s] %s\n", op.Call, retString(op.Return), m.DescribeOperation(op.Input, op.Output))
				n++
			}
		}
	}
	t.Error(b.String())
}

func compare64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func retString(r int64) string {
	if r == math.MaxInt64 {
		return "inf"
	}
	return fmt.Sprint(r)
}

// checkIters checks every recorded iteration against the contract: every
// key within bounds, keys strictly increasing (so none twice), and every
// key live for the whole iteration returned.  A key is certainly live
// over [Call, Return] when some put P of it returned before Call, does
// not expire before the iteration ended (no TTL, or its earliest expiry
// is after ClockReturn), and every delete, and every put that could
// expire by then, of that key either returned before P was called (so it
// is ordered before P) or was called after Return (so it is ordered after
// the iteration).  Anything else might have made the key absent at some
// instant of the iteration, and the contract then allows either.
func (h *History) checkIters(t testing.TB) {
	t.Helper()
	universe := make([]string, 0, len(h.writes))
	for k := range h.writes {
		universe = append(universe, k)
	}
	sort.Strings(universe)
	reported := 0
	fail := func(format string, args ...any) {
		if reported < 20 {
			t.Errorf(format, args...)
		}
		reported++
	}
	for i := range h.iters {
		r := &h.iters[i]
		for j, k := range r.Keys {
			if !r.inRange(k) {
				fail("iterator %s returned %q, outside its range", r.Desc, k)
			}
			if j > 0 && k <= r.Keys[j-1] {
				word := "out of order"
				if k == r.Keys[j-1] {
					word = "twice"
				}
				fail("iterator %s returned %q %s (after %q)", r.Desc, k, word, r.Keys[j-1])
			}
		}
		if r.Failed {
			continue
		}
		returned := map[string]bool{}
		for _, k := range r.Keys {
			returned[k] = true
		}
		for _, k := range universe {
			if !r.inRange(k) || returned[k] {
				continue
			}
			if !r.Exhausted && (len(r.Keys) == 0 || k > r.Keys[len(r.Keys)-1]) {
				continue // beyond where the caller stopped
			}
			if certainlyLive(h.writes[k], r) {
				fail("iterator %s [%d, %d] did not return %q, live for the whole iteration", r.Desc, r.Call, r.Return, k)
			}
		}
	}
	if reported > 20 {
		t.Errorf("... and %d more iterator failures", reported-20)
	}
}

func certainlyLive(ws []writeRec, r *IterRecord) bool {
	for _, p := range ws {
		if p.del || p.maybe || p.ret >= r.Call || (p.exp0 != 0 && p.exp0 <= r.ClockReturn) {
			continue
		}
		ok := true
		for _, w := range ws {
			ends := w.del || (w.exp0 != 0 && w.exp0 <= r.ClockReturn)
			if ends && !(w.ret < p.call || w.call > r.Return) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
