package wal

import "golang.org/x/sys/unix"

// writeBack has the kernel write bytes [off, off+n) of the file behind fd
// to the disk, and, when wait is set, waits until they are (not a
// durability step: no metadata, no disk cache flush; the fsync after is
// that).
func writeBack(fd uintptr, off, n int64, wait bool) error {
	flags := unix.SYNC_FILE_RANGE_WRITE
	if wait {
		flags |= unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	}
	return unix.SyncFileRange(int(fd), off, n, flags)
}
