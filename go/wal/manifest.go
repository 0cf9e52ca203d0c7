// The MANIFEST (docs/FORMAT.md, "Manifest"): the few facts about a data
// directory that its files alone cannot show once one of them is gone --
// which snapshot must exist, which segments must exist, how far the log
// is known to reach -- so that Open can tell a directory with a gap (a
// deleted snapshot, a segment deleted or emptied, every segment deleted)
// from one that simply holds less.  It is rewritten whole (tmp, fsync,
// rename, fsync the directory) when a segment is created and when a
// checkpoint drops files, never per write.
//
// Invariants (each holds on disk at every instant, crashes included):
//  1. a snapshot covering at least snapSeq exists (the snapshot is renamed
//     into place before the manifest names it, and removed only after a
//     newer one is named);
//  2. every segment numbered firstSeg..lastSeg exists with a durable
//     header (its header is fsynced before the manifest names it; a
//     segment is removed only after the manifest moved firstSeg past it);
//  3. no record is ever written to a segment the manifest does not name
//     yet, so a segment above lastSeg holds at most a header;
//  4. the log holds every write up to lastFirst-1 (when lastSeg >= firstSeg),
//     in the segments before lastSeg, which were fsynced when they closed.
// The manifest is a lower bound: the files may be ahead of it (a crash
// between a rename and the manifest update), never behind.

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

const (
	manifestName    = "MANIFEST"
	manifestTmp     = "MANIFEST.tmp"
	manifestMetaKey = "mantisdb.manifest"
	manifestVersion = 1
	manifestValLen  = 48
)

// manifest is the decoded MANIFEST.
type manifest struct {
	baseSeq   uint64 // writes numbered <= baseSeq were given up by a repair (AllowDataLoss)
	snapSeq   uint64 // a snapshot covering at least this seq exists (0: none needed)
	firstSeg  uint64 // segments numbered below are covered by that snapshot
	lastSeg   uint64 // highest segment number created; none needed if < firstSeg
	lastFirst uint64 // seq of the first record of segment lastSeg
}

// known is the highest sequence number the manifest proves the directory
// held: recovery that ends below it lost writes.
func (m manifest) known() uint64 {
	k := max(m.baseSeq, m.snapSeq)
	if m.lastSeg >= m.firstSeg && m.lastSeg > 0 && m.lastFirst > 0 {
		k = max(k, m.lastFirst-1)
	}
	return k
}

func (m manifest) encode() []byte {
	var v [manifestValLen]byte
	binary.LittleEndian.PutUint32(v[0:], manifestVersion)
	binary.LittleEndian.PutUint64(v[8:], m.baseSeq)
	binary.LittleEndian.PutUint64(v[16:], m.snapSeq)
	binary.LittleEndian.PutUint64(v[24:], m.firstSeg)
	binary.LittleEndian.PutUint64(v[32:], m.lastSeg)
	binary.LittleEndian.PutUint64(v[40:], m.lastFirst)
	b, _ := appendRecord(nil, Record{Type: TypeMeta, Key: []byte(manifestMetaKey), Value: v[:]})
	return b
}

// readManifest returns the directory's manifest; found is false when there
// is none (a directory written before manifests existed, or a new one).
func (l *Log) readManifest() (m manifest, found bool, err error) {
	path := filepath.Join(l.dir, manifestName)
	f, err := l.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return m, false, fmt.Errorf("wal: %w", err)
	}
	if st.Size() > 4096 {
		return m, true, corruptf(path, 0, nil, "manifest of %d bytes", st.Size())
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return m, true, fmt.Errorf("wal: read %s: %w", path, err)
	}
	r, n, err := decodeRecord(buf)
	if err != nil {
		return m, true, recordErr(path, 0, err, "manifest")
	}
	if r.Type != TypeMeta || string(r.Key) != manifestMetaKey || len(r.Value) != manifestValLen || n != len(buf) {
		return m, true, corruptf(path, 0, nil, "not a manifest")
	}
	if v := binary.LittleEndian.Uint32(r.Value); v != manifestVersion {
		return m, true, &CorruptError{File: path, Reason: fmt.Sprintf("manifest version %d", v), Kind: ErrUnsupported}
	}
	m.baseSeq = binary.LittleEndian.Uint64(r.Value[8:])
	m.snapSeq = binary.LittleEndian.Uint64(r.Value[16:])
	m.firstSeg = binary.LittleEndian.Uint64(r.Value[24:])
	m.lastSeg = binary.LittleEndian.Uint64(r.Value[32:])
	m.lastFirst = binary.LittleEndian.Uint64(r.Value[40:])
	return m, true, nil
}

// writeManifestLocked makes m the directory's manifest, atomically and
// durably.  Called with manMu held (or during Open).
func (l *Log) writeManifestLocked(m manifest) error {
	tmp := filepath.Join(l.dir, manifestTmp)
	f, err := l.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: create manifest: %w", err)
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, filepath.Join(l.dir, manifestName))
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		_ = l.fs.Remove(tmp)
		return fmt.Errorf("wal: write manifest: %w", err)
	}
	l.man = m
	return nil
}

// segmentCreated is called by startSegment once segment num (first record
// first) exists with its header written and its directory entry fsynced,
// and before any record goes into it: it makes the header durable, then
// names the segment in the manifest (invariants 2 and 3).
func (l *Log) segmentCreated(f interface{ Sync() error }, num, first uint64) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync segment header: %w", err)
	}
	l.manMu.Lock()
	defer l.manMu.Unlock()
	m := l.man
	m.lastSeg, m.lastFirst = num, first
	if m.firstSeg == 0 || m.firstSeg > num {
		m.firstSeg = num
	}
	return l.writeManifestLocked(m)
}
