package storage

import "testing"

// TestStripeSetLocks: lock takes exactly the stripes of the keys added
// (across summary words), unlock releases them all.
func TestStripeSetLocks(t *testing.T) {
	var s shell
	var set stripeSet
	hashes := []uint64{0, 63, 64, 4095, 4096 + 5, 2*keyStripes + 1000, 1000}
	want := map[int]bool{}
	for _, h := range hashes {
		set.add(h)
		want[int(h%keyStripes)] = true
	}
	s.lock(&set)
	for i := range s.stripes {
		free := s.stripes[i].TryLock()
		if free {
			s.stripes[i].Unlock()
		}
		if free == want[i] {
			t.Fatalf("stripe %d: locked %v, want %v", i, !free, want[i])
		}
	}
	s.unlock(&set)
	for i := range s.stripes {
		if !s.stripes[i].TryLock() {
			t.Fatalf("stripe %d still locked after unlock", i)
		}
	}
}
