// Names and META records of the files on disk (docs/FORMAT.md, "Files on
// disk"): <dir>/LOCK, <dir>/wal/<20-digit segment>.wal and the retired
// segments kept for reuse, <dir>/wal/<20-digit segment>.free,
// <dir>/snap/<20-digit seq>.snap and its .snap.tmp.

package wal

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	lockName   = "LOCK"
	walDirName = "wal"
	snapDir    = "snap"
	walExt     = ".wal"
	freeExt    = ".free"
	snapExt    = ".snap"
	tmpExt     = ".snap.tmp"
	// lostDirName holds, per repairing open, the files AllowDataLoss set
	// aside (docs/OPERATIONS.md, "Gaps").
	lostDirName = "lost"

	segMetaKey     = "mantisdb.wal"
	snapMetaKey    = "mantisdb.snapshot"
	snapEndMetaKey = "mantisdb.snapshot.end"

	segFormatVersion  = 1
	snapFormatVersion = 1

	// segRecycled, in a segment header's flags word, says the segment
	// reuses the file of a retired one (Config.RecycleSegments): the
	// bytes after its last record may be that segment's records, all
	// numbered below its first.  Builds that predate the flag ignore the
	// word (it was reserved, written 0): they read such a segment closed
	// cleanly as any other, and refuse one a crash left with old records
	// after its last (ErrCorrupt) rather than replay them.
	segRecycled = 1
)

func segName(num uint64) string  { return fmt.Sprintf("%020d%s", num, walExt) }
func freeName(num uint64) string { return fmt.Sprintf("%020d%s", num, freeExt) }
func snapName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, snapExt) }

// parseNum parses "<20 digits><ext>"; anything else is not ours.
func parseNum(name, ext string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ext)
	if !ok || len(s) != 20 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// metaHeader is the META record that opens a segment or a snapshot: u32
// format version, u32 flags (0 but for segRecycled), then two u64 fields.
func metaHeader(dst []byte, key string, version, flags uint32, a, b uint64) []byte {
	var v [24]byte
	binary.LittleEndian.PutUint32(v[0:], version)
	binary.LittleEndian.PutUint32(v[4:], flags)
	binary.LittleEndian.PutUint64(v[8:], a)
	binary.LittleEndian.PutUint64(v[16:], b)
	dst, _ = appendRecord(dst, Record{Type: TypeMeta, Key: []byte(key), Value: v[:]})
	return dst
}

// segHeader starts every segment: the segment number, then the seq of the
// first record that follows; flags is 0 or segRecycled.
func segHeader(dst []byte, num, firstSeq uint64, flags uint32) []byte {
	return metaHeader(dst, segMetaKey, segFormatVersion, flags, num, firstSeq)
}

// snapHeader starts every snapshot: the seq it covers, then its record count.
func snapHeader(dst []byte, seq, count uint64) []byte {
	return metaHeader(dst, snapMetaKey, snapFormatVersion, 0, seq, count)
}

func snapFooter(dst []byte, seq, count uint64) []byte {
	var v [16]byte
	binary.LittleEndian.PutUint64(v[0:], count)
	binary.LittleEndian.PutUint64(v[8:], seq)
	dst, _ = appendRecord(dst, Record{Type: TypeMeta, Key: []byte(snapEndMetaKey), Value: v[:]})
	return dst
}

func (l *Log) segPath(num uint64) string  { return filepath.Join(l.dir, walDirName, segName(num)) }
func (l *Log) freePath(num uint64) string { return filepath.Join(l.dir, walDirName, freeName(num)) }
func (l *Log) snapPath(seq uint64) string { return filepath.Join(l.dir, snapDir, snapName(seq)) }
