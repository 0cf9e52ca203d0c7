package storage

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// backgroundNice is how much lowerThreadPriority lowers a thread's CPU
// priority (a nice increment: the scheduler weighs a nice-10 thread at
// about a tenth of a nice-0 one).
const backgroundNice = 10

// lowerThreadPriority locks the calling goroutine to its OS thread and
// lowers that thread's CPU priority by backgroundNice.  It never unlocks:
// an unprivileged process may not raise a priority again, so the caller
// must be a goroutine that ends soon after, and Go then ends the thread
// with it instead of giving it to other goroutines.  Best effort: a
// failure leaves the priority as it was.
func lowerThreadPriority() {
	runtime.LockOSThread()
	tid := unix.Gettid()
	if cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil {
		// The raw syscall returns 20-nice (the getpriority(2) ABI).
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, min(20-cur+backgroundNice, 19))
	}
}
