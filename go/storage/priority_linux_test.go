package storage

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowerThreadPriority: the thread a background checkpoint writes
// from runs backgroundNice below the process's priority (capped at the
// lowest), and other threads keep theirs.
func TestLowerThreadPriority(t *testing.T) {
	self, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatalf("getpriority: %v", err)
	}
	got := make(chan int, 1)
	go func() {
		lowerThreadPriority()
		p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		if err != nil {
			p = -1
		}
		got <- p
	}()
	want := 20 - min(20-self+backgroundNice, 19)
	if p := <-got; p != want {
		t.Fatalf("lowered thread: getpriority %d (nice %d), want %d (nice %d)", p, 20-p, want, 20-want)
	}
	if p, _ := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid()); p != self {
		t.Fatalf("this thread's priority changed: %d, was %d", p, self)
	}
}
