package cluster

// entry.go -- the bytes Raft carries: log entries and snapshot streams.
// Both are made of go/codec records (docs/FORMAT.md), so one decoder,
// fuzzed and CRC-checked, validates everything a peer sends before any of
// it touches the engine.
//
// Log entry (raft.Log.Data of a LogCommand): exactly one BATCH record, the
// WAL's batch record byte for byte:
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
	"slices"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	flushEntryKey   = "mantisdb-raft-flush"
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

// appliedRecordSize is the encoded size of the applied-index record
// (appliedKey, an 8-byte value), as codec.Size computes it.
const appliedRecordSize = (codec.HeaderSize + len(appliedKeyName) + 8 + codec.Align - 1) &^ (codec.Align - 1)

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
// Ops over MaxEntryPayload get storage.ErrBatchTooLarge, before any
// encoding: every entry it returns is one the engine can apply.
func encodeEntry(dst []byte, ops []storage.Op) ([]byte, error) {
	n := opsEncodedSize(ops)
	if n > MaxEntryPayload {
		return dst, fmt.Errorf("%w: %d bytes of records in one Raft entry; the limit is %d", storage.ErrBatchTooLarge, n, MaxEntryPayload)
	}
	// The exact size is known: one allocation, and the nested records
	// are encoded in place behind the BATCH header (no copy).
	dst = slices.Grow(dst, codec.HeaderSize+n)
	out, err := codec.AppendBatch(dst, 0, func(payload []byte) ([]byte, error) {
		for i := range ops {
			op := &ops[i]
			r := codec.Record{Type: codec.TypePut, Key: op.Key, Value: op.Value, ExpiresAt: op.ExpiresAt}
			if op.Kind == storage.OpDelete {
				r = codec.Record{Type: codec.TypeDelete, Key: op.Key}
			} else if op.Kind != storage.OpPut || op.TTL != 0 {
				return payload, fmt.Errorf("%w: op %d: kind %d ttl %v", ErrBadEntry, i, op.Kind, op.TTL)
			}
			var err error
			if payload, err = codec.Append(payload, r); err != nil {
				return payload, fmt.Errorf("%w: op %d: %v", ErrBadEntry, i, err)
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

// encodeFlushEntry appends the flush entry to dst.
func encodeFlushEntry(dst []byte) ([]byte, error) {
	out, err := codec.Append(dst, codec.Record{Type: codec.TypeMeta, Key: []byte(flushEntryKey)})
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	return out, nil
}

// decodeEntry validates data as one log entry: a flush entry (flush is
// true, b is untouched) or a batch, whose ops it appends to b.  The ops'
// slices are views into data.
func decodeEntry(data []byte, b *storage.Batch) (flush bool, err error) {
	r, n, err := codec.Decode(data)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if n != len(data) {
		return false, fmt.Errorf("%w: type %d, %d of %d bytes", ErrBadEntry, r.Type, n, len(data))
	}
	if r.Type == codec.TypeMeta {
		if string(r.Key) != flushEntryKey || len(r.Value) != 0 || r.ExpiresAt != 0 || r.Seq != 0 {
			return false, fmt.Errorf("%w: meta entry %q with %d value bytes", ErrBadEntry, r.Key, len(r.Value))
		}
		return true, nil
	}
	if r.Type != codec.TypeBatch {
		return false, fmt.Errorf("%w: type %d, %d of %d bytes", ErrBadEntry, r.Type, n, len(data))
	}
	it := codec.NewBatchIter(r.Value)
	for it.Next() {
		nr := it.Record()
		if nr.Type == codec.TypeDelete {
			b.Delete(nr.Key)
		} else {
			b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: nr.Key, Value: nr.Value, ExpiresAt: nr.ExpiresAt})
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	return false, nil
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
