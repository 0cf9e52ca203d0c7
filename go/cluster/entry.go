package cluster

// entry.go -- the bytes Raft carries: log entries and snapshot streams.
// Both are made of go/codec records (docs/FORMAT.md), so one decoder,
// fuzzed and CRC-checked, validates everything a peer sends before any of
// it touches the engine; decodeEntry, which frames those records into
// entries, has a fuzz target of its own (FuzzDecodeEntry).
//
// Batch entry (raft.Log.Data of a LogCommand carrying plain writes only):
// exactly one BATCH record, the WAL's batch record byte for byte:
//
//	+---------------------------+-----------+-----------+-----+
//	| BATCH header (seq 0)      | PUT/DELETE| PUT/DELETE| ... |
//	+---------------------------+-----------+-----------+-----+
//	  key empty, value = the nested records, each with seq 0
//
// A PUT carries the absolute expiry (Unix ns, 0 = none) the leader fixed
// when it accepted the write, so every replica, and every replay, stores
// the same deadline.  One entry holds the writes of many client requests
// (the batcher), applied as one engine batch.  Every op is a put of a
// value or a delete: replaying an entry on a state that already contains
// it changes nothing, which the fuzzy snapshots below rely on.
//
// Flush entry (FLUSHDB/FLUSHALL): exactly one META record, nothing else:
//
//	META  key "mantisdb-raft-flush"  value empty  (seq 0, no expiry)
//
// It means "delete every key outside ReservedPrefix", applied by the FSM
// as one engine flush (storage.PrefixFlusher) with the applied-index put
// in its batch.  It is idempotent too: a replay deletes what the first
// application deleted, and the keys written after it are written again
// by the entries that follow it in the log (fsm.go).  Compatibility: a
// node reads the entries older versions wrote unchanged (a BATCH record
// is decoded exactly as before); a node of a version without flush
// entries refuses one as ErrBadEntry and stops applying (ErrApplyFailed,
// docs/CLUSTER.md) rather than diverging, so every member must run a
// version that knows them before FLUSHDB is used.
//
// Requests entry (an entry carrying a read-modify-write, update.go): a
// META header, then one BATCH record per client request, in the order
// the batcher took them:
//
//	META   key "mantisdb-raft-requests"  value = u32 LE number of BATCHes (N)
//	BATCH  seq = read term (0: none)  value = that request's PUT/DELETE records
//	... N BATCH records in all
//
// A request's read term is the term in which its leader read the state
// its writes were computed from (the term whose barrier settle
// confirmed); a plain write (Write, Put, Delete, a member's address
// recorded) has none (seq 0) and is applied unconditionally.  The deletes
// of removed members' addresses (Node.pruneAddresses) carry the term
// their configuration was read in.  The FSM applies the
// writes of a request whose read term is 0 or equals the entry's own
// term (raft.Log.Term, the term of the leader that appended it) and skips,
// whole, a request whose read term differs: that leader lost its
// leadership between the read and the append, so another leader may
// have written the keys in between (update.go).  The decision depends on
// the entry alone, so every replica and every replay makes the same one.
// The writes of the applied requests, in entry order, are one engine
// batch, as for a batch entry; the skipped requests' positions are the
// Apply response, and the leader answers them ErrTryAgain (not
// written).  The batcher sends a batch entry (above, byte for byte as
// before) when none of its requests has a read term, so plain writes
// keep their format.  Compatibility: a node of a version without
// requests entries refuses one as ErrBadEntry (a META entry not named
// mantisdb-raft-flush, or more than one record) and stops applying
// (ErrApplyFailed) rather than apply a stale write; so every member must
// run a version that knows them before read-modify-writes (INCR, SET NX,
// EXEC ...) are sent to the cluster.
//
// Snapshot stream (FSM.Snapshot / Restore):
//
//	META  key "mantisdb-raft-snapshot"      value = u64 LE applied index, u32 LE version (1)
//	PUT   one per live entry, ascending key order, with its absolute expiry
//	META  key "mantisdb-raft-snapshot-end"  value = u64 LE number of PUTs
//
// The trailer makes a truncated stream an error rather than a silently
// smaller database.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	flushEntryKey   = "mantisdb-raft-flush"
	requestsKey     = "mantisdb-raft-requests"
	snapHeaderKey   = "mantisdb-raft-snapshot"
	snapTrailerKey  = "mantisdb-raft-snapshot-end"
	snapVersion     = 1
	snapHeaderValue = 12
)

// MaxEntryPayload is the most bytes of nested records one log entry may
// carry: the FSM applies an entry as one engine batch together with the
// applied-index record (fsm.go), and the engine refuses a batch over
// codec.MaxBatchSize.  An entry over it would be refused by every node,
// for good, and stop the cluster applying; so the leader refuses the
// write (storage.ErrBatchTooLarge) before it enters the log.
const MaxEntryPayload = codec.MaxBatchSize - appliedRecordSize

// MaxEntrySize is the most bytes one log entry (raft.Log.Data) may
// take: the engine log store (logstore.go) keeps an entry as one engine
// value, at most storage.DefaultMaxValueSize (the format's 64 MiB),
// behind its logValueOverhead bytes of header.  An entry over it cannot
// be stored by any node on that store: a leader's append fails (Raft
// then steps it down, and the client's retry does the same to the next
// leader), and a follower refuses the entry every time the leader sends
// it, so on a leader with the bbolt store it never commits and holds up
// every entry after it.  Members may run either store (a node keeps the
// one it started with, new nodes get the engine store), so the leader
// holds every entry to this limit, whatever its own store.
const MaxEntrySize = storage.DefaultMaxValueSize - logValueOverhead

// MaxRequestRecords is the most bytes of records one client request (a
// Write, an Update's writes) may carry: its entry, alone and framed as a
// requests entry (the larger framing), is then at most MaxEntrySize, and
// its records at most MaxEntryPayload.
const MaxRequestRecords = MaxEntrySize - requestsHeaderSize - codec.HeaderSize

// The entry's bound is the tighter one: an entry within MaxEntrySize
// holds at most MaxEntryPayload bytes of records.
var _ = [1]struct{}{}[MaxEntrySize/(MaxEntryPayload+1)] // MaxEntrySize <= MaxEntryPayload

// appliedRecordSize is the encoded size of the applied-index record
// (appliedKey, an 8-byte value), as codec.Size computes it.
const appliedRecordSize = (codec.HeaderSize + len(appliedKeyName) + 8 + codec.Align - 1) &^ (codec.Align - 1)

// requestsHeaderSize is the encoded size of a requests entry's META
// header record (requestsKey, a u32 value).
const requestsHeaderSize = (codec.HeaderSize + len(requestsKey) + 4 + codec.Align - 1) &^ (codec.Align - 1)

// entrySize is the exact size of the entry (raft.Log.Data) that holds
// reqs requests whose ops' records total opsBytes: a batch entry (the
// records behind one BATCH header) or, when conditional (a request
// carries a read term), a requests entry (its header record, then one
// BATCH header per request in front of that request's records).  The
// framing is not part of the engine batch that applies the entry (only
// the records are), but it is part of what the log stores and sends.
func entrySize(opsBytes, reqs int, conditional bool) int {
	if conditional {
		return requestsHeaderSize + reqs*codec.HeaderSize + opsBytes
	}
	return codec.HeaderSize + opsBytes
}

// opsEncodedSize is the exact size of ops' nested records in an entry
// (and in the engine batch that applies it).
func opsEncodedSize(ops []storage.Op) int {
	s := 0
	for i := range ops {
		if ops[i].Kind == storage.OpDelete {
			s += codec.Size(len(ops[i].Key), 0)
		} else {
			s += codec.Size(len(ops[i].Key), len(ops[i].Value))
		}
	}
	return s
}

// encodeEntry appends the log entry of ops to dst.  Puts must carry their
// expiry in ExpiresAt (TTL 0): the leader resolves TTLs before encoding.
// An entry over MaxEntrySize (so its records over MaxEntryPayload too)
// gets storage.ErrBatchTooLarge, before any encoding: every entry it
// returns is one every log store can hold and the engine can apply.
func encodeEntry(dst []byte, ops []storage.Op) ([]byte, error) {
	n := opsEncodedSize(ops)
	sz := entrySize(n, 1, false)
	if sz > MaxEntrySize {
		return dst, tooLarge(sz)
	}
	// The exact size is known: one allocation, and the nested records
	// are encoded in place behind the BATCH header (no copy).
	dst = slices.Grow(dst, sz)
	return appendOpsBatch(dst, 0, ops, 0)
}

func tooLarge(n int) error {
	return fmt.Errorf("%w: a Raft entry of %d bytes; the limit is %d", storage.ErrBatchTooLarge, n, MaxEntrySize)
}

// appendOpsBatch appends one BATCH record numbered seq holding ops;
// first is the index of ops[0] in its entry (for errors).
func appendOpsBatch(dst []byte, seq uint64, ops []storage.Op, first int) ([]byte, error) {
	out, err := codec.AppendBatch(dst, seq, func(payload []byte) ([]byte, error) {
		for i := range ops {
			op := &ops[i]
			r := codec.Record{Type: codec.TypePut, Key: op.Key, Value: op.Value, ExpiresAt: op.ExpiresAt}
			if op.Kind == storage.OpDelete {
				r = codec.Record{Type: codec.TypeDelete, Key: op.Key}
			} else if op.Kind != storage.OpPut || op.TTL != 0 {
				return payload, fmt.Errorf("%w: op %d: kind %d ttl %v", ErrBadEntry, first+i, op.Kind, op.TTL)
			}
			var err error
			if payload, err = codec.Append(payload, r); err != nil {
				return payload, fmt.Errorf("%w: op %d: %v", ErrBadEntry, first+i, err)
			}
		}
		return payload, nil
	})
	if err != nil {
		if !errors.Is(err, ErrBadEntry) {
			err = fmt.Errorf("%w: %v", ErrBadEntry, err)
		}
		return dst, err
	}
	return out, nil
}

// entryReq is one client request of a requests entry: its ops, and the
// term its read was made in (0: a plain write, applied unconditionally).
type entryReq struct {
	readTerm uint64
	ops      []storage.Op
}

// encodeRequestsEntry appends the requests entry of reqs (at least one)
// to dst.  The rules of encodeEntry hold for the whole entry: over
// MaxEntrySize is storage.ErrBatchTooLarge, so every entry it returns is
// one every log store can hold and the engine can apply whichever
// requests are skipped.
func encodeRequestsEntry(dst []byte, reqs []entryReq) ([]byte, error) {
	n := 0
	for i := range reqs {
		n += opsEncodedSize(reqs[i].ops)
	}
	sz := entrySize(n, len(reqs), true)
	if sz > MaxEntrySize {
		return dst, tooLarge(sz)
	}
	if len(reqs) == 0 || uint64(len(reqs)) > math.MaxUint32 {
		return dst, fmt.Errorf("%w: a requests entry of %d requests", ErrBadEntry, len(reqs))
	}
	start := len(dst)
	hdr := binary.LittleEndian.AppendUint32(nil, uint32(len(reqs)))
	dst = slices.Grow(dst, sz)
	out, err := codec.Append(dst, codec.Record{Type: codec.TypeMeta, Key: []byte(requestsKey), Value: hdr})
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	first := 0
	for i := range reqs {
		if out, err = appendOpsBatch(out, reqs[i].readTerm, reqs[i].ops, first); err != nil {
			return out[:start], err
		}
		first += len(reqs[i].ops)
	}
	return out, nil
}

// encodeFlushEntry appends the flush entry to dst.
func encodeFlushEntry(dst []byte) ([]byte, error) {
	out, err := codec.Append(dst, codec.Record{Type: codec.TypeMeta, Key: []byte(flushEntryKey)})
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	return out, nil
}

// decodeEntry validates data, the entry of a log entry appended in term,
// as one log entry: a flush entry (flush is true, b is untouched), a
// batch entry, whose ops it appends to b, or a requests entry, whose
// applied requests' ops (read term 0 or term) it appends to b in order,
// returning the positions of the skipped ones in stale.  The whole entry
// is validated before it returns nil, skipped requests included.  The
// ops' slices are views into data.
func decodeEntry(data []byte, term uint64, b *storage.Batch) (flush bool, stale []int, err error) {
	r, n, err := codec.Decode(data)
	if err != nil {
		return false, nil, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if r.Type == codec.TypeMeta && string(r.Key) == requestsKey {
		stale, err := decodeRequests(r, data[n:], term, b)
		return false, stale, err
	}
	if n != len(data) {
		return false, nil, fmt.Errorf("%w: type %d, %d of %d bytes", ErrBadEntry, r.Type, n, len(data))
	}
	if r.Type == codec.TypeMeta {
		if string(r.Key) != flushEntryKey || len(r.Value) != 0 || r.ExpiresAt != 0 || r.Seq != 0 {
			return false, nil, fmt.Errorf("%w: meta entry %q with %d value bytes", ErrBadEntry, r.Key, len(r.Value))
		}
		return true, nil, nil
	}
	if r.Type != codec.TypeBatch {
		return false, nil, fmt.Errorf("%w: type %d, %d of %d bytes", ErrBadEntry, r.Type, n, len(data))
	}
	return false, nil, appendBatchOps(r.Value, b, true)
}

// decodeRequests decodes the BATCH records (rest) after a requests
// entry's header hdr (decodeEntry).
func decodeRequests(hdr codec.Record, rest []byte, term uint64, b *storage.Batch) ([]int, error) {
	if len(hdr.Value) != 4 || hdr.ExpiresAt != 0 || hdr.Seq != 0 {
		return nil, fmt.Errorf("%w: requests entry header of %d value bytes", ErrBadEntry, len(hdr.Value))
	}
	want := binary.LittleEndian.Uint32(hdr.Value)
	if want == 0 {
		return nil, fmt.Errorf("%w: requests entry of no requests", ErrBadEntry)
	}
	var stale []int
	it := codec.NewIter(rest)
	count := uint32(0)
	for it.Next() {
		r := it.Record()
		if r.Type != codec.TypeBatch || count == want {
			return nil, fmt.Errorf("%w: requests entry: record %d of type %d", ErrBadEntry, count, r.Type)
		}
		apply := r.Seq == 0 || r.Seq == term
		if !apply {
			stale = append(stale, int(count))
		}
		if err := appendBatchOps(r.Value, b, apply); err != nil {
			return nil, err
		}
		count++
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%w: requests entry: %v", ErrBadEntry, err)
	}
	if count != want {
		return nil, fmt.Errorf("%w: requests entry of %d requests holds %d", ErrBadEntry, want, count)
	}
	return stale, nil
}

// appendBatchOps validates a BATCH payload and, if apply, appends its
// ops to b.
func appendBatchOps(payload []byte, b *storage.Batch, apply bool) error {
	it := codec.NewBatchIter(payload)
	for it.Next() {
		if !apply {
			continue
		}
		nr := it.Record()
		if nr.Type == codec.TypeDelete {
			b.Delete(nr.Key)
		} else {
			b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: nr.Key, Value: nr.Value, ExpiresAt: nr.ExpiresAt})
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	return nil
}

// snapWriter writes a snapshot stream.
type snapWriter struct {
	w     *bufio.Writer
	buf   []byte
	count uint64
}

func newSnapWriter(w io.Writer, applied uint64) (*snapWriter, error) {
	sw := &snapWriter{w: bufio.NewWriterSize(w, 256<<10)}
	v := make([]byte, snapHeaderValue)
	binary.LittleEndian.PutUint64(v, applied)
	binary.LittleEndian.PutUint32(v[8:], snapVersion)
	return sw, sw.write(codec.Record{Type: codec.TypeMeta, Key: []byte(snapHeaderKey), Value: v})
}

func (sw *snapWriter) write(r codec.Record) error {
	var err error
	if sw.buf, err = codec.Append(sw.buf[:0], r); err != nil {
		return err
	}
	_, err = sw.w.Write(sw.buf)
	return err
}

func (sw *snapWriter) put(key, value []byte, exp int64) error {
	sw.count++
	return sw.write(codec.Record{Type: codec.TypePut, Key: key, Value: value, ExpiresAt: exp})
}

func (sw *snapWriter) finish() error {
	v := binary.LittleEndian.AppendUint64(nil, sw.count)
	if err := sw.write(codec.Record{Type: codec.TypeMeta, Key: []byte(snapTrailerKey), Value: v}); err != nil {
		return err
	}
	return sw.w.Flush()
}

// snapReader reads a snapshot stream record by record.
type snapReader struct {
	r       *bufio.Reader
	buf     []byte
	applied uint64
	count   uint64
	done    bool
}

func newSnapReader(r io.Reader) (*snapReader, error) {
	sr := &snapReader{r: bufio.NewReaderSize(r, 256<<10)}
	rec, err := sr.read()
	if err != nil {
		return nil, err
	}
	if rec.Type != codec.TypeMeta || string(rec.Key) != snapHeaderKey || len(rec.Value) != snapHeaderValue {
		return nil, fmt.Errorf("%w: snapshot has no header", ErrBadEntry)
	}
	if v := binary.LittleEndian.Uint32(rec.Value[8:]); v != snapVersion {
		return nil, fmt.Errorf("%w: snapshot version %d", ErrBadEntry, v)
	}
	sr.applied = binary.LittleEndian.Uint64(rec.Value)
	return sr, nil
}

// read decodes the next record (a view into sr.buf, valid until the next
// read).
func (sr *snapReader) read() (codec.Record, error) {
	if cap(sr.buf) < codec.HeaderSize {
		sr.buf = make([]byte, codec.HeaderSize, 64<<10)
	}
	sr.buf = sr.buf[:codec.HeaderSize]
	if _, err := io.ReadFull(sr.r, sr.buf); err != nil {
		return codec.Record{}, fmt.Errorf("%w: snapshot truncated: %v", ErrBadEntry, err)
	}
	h, err := codec.ReadHeader(sr.buf)
	if err == nil {
		err = h.Check()
	}
	if err != nil {
		return codec.Record{}, fmt.Errorf("%w: snapshot record: %v", ErrBadEntry, err)
	}
	size := int(h.Size())
	if cap(sr.buf) < size {
		nb := make([]byte, size)
		copy(nb, sr.buf)
		sr.buf = nb
	}
	sr.buf = sr.buf[:size]
	if _, err := io.ReadFull(sr.r, sr.buf[codec.HeaderSize:]); err != nil {
		return codec.Record{}, fmt.Errorf("%w: snapshot truncated: %v", ErrBadEntry, err)
	}
	rec, _, err := codec.Decode(sr.buf)
	if err != nil {
		return codec.Record{}, fmt.Errorf("%w: snapshot record: %v", ErrBadEntry, err)
	}
	return rec, nil
}

// next returns the next PUT, or ok=false after a valid trailer.
func (sr *snapReader) next() (rec codec.Record, ok bool, err error) {
	if sr.done {
		return codec.Record{}, false, nil
	}
	rec, err = sr.read()
	if err != nil {
		return rec, false, err
	}
	switch {
	case rec.Type == codec.TypePut:
		sr.count++
		return rec, true, nil
	case rec.Type == codec.TypeMeta && string(rec.Key) == snapTrailerKey && len(rec.Value) == 8:
		if n := binary.LittleEndian.Uint64(rec.Value); n != sr.count {
			return rec, false, fmt.Errorf("%w: snapshot trailer counts %d entries, stream had %d", ErrBadEntry, n, sr.count)
		}
		sr.done = true
		return codec.Record{}, false, nil
	}
	return rec, false, fmt.Errorf("%w: unexpected record type %d in snapshot", ErrBadEntry, rec.Type)
}
