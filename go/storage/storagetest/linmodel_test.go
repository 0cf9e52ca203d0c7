// linmodel_test.go -- the checker itself: hand-made histories that are
// and are not linearizable, iterations that keep and break the contract,
// and values that are whole, torn or another key's.  A check that cannot
// fail would make the linearizability test worthless, so each violation
// the engines are tested for is shown here to be reported.
package storagetest

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// recTB records what Check reports instead of failing the test.
type recTB struct {
	testing.TB
	errs []string
}

func (r *recTB) Helper()           {}
func (r *recTB) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *recTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckerHistories(t *testing.T) {
	a, b := MakeID(1, 1), MakeID(2, 1)
	const hour = int64(time.Hour)
	tests := []struct {
		name  string
		build func(h *History)
		want  string // substring of a reported failure; "" = must pass
	}{
		{"sequential put then read", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a})
			h.Read("k", 3, 4, 0, 0, a)
		}, ""},
		{"stale read after a newer put", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a})
			h.Write(3, 4, false, KVWrite{Key: "k", ID: b})
			h.Read("k", 5, 6, 0, 0, a)
		}, "key k: NOT linearizable"},
		{"concurrent put: either value", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a})
			h.Write(3, 8, false, KVWrite{Key: "k", ID: b})
			h.Read("k", 4, 5, 0, 0, a)
			h.Read("k", 6, 7, 0, 0, b)
		}, ""},
		{"value flips back", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a})
			h.Write(3, 10, false, KVWrite{Key: "k", ID: b})
			h.Read("k", 4, 5, 0, 0, b)
			h.Read("k", 6, 7, 0, 0, a)
		}, "NOT linearizable"},
		{"get misses a key an iterator returned (defect 3)", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a})
			h.Write(3, 4, false, KVWrite{Key: "k"})
			h.Write(5, 6, false, KVWrite{Key: "k", ID: b})
			// An iteration positioned at 7 returned k=b at 8, then a Get.
			if !h.Observe([]byte("k"), MakeValue([]byte("k"), b, 40), 7, 8, 0, 0) {
				panic("valid value refused")
			}
			h.Read("k", 9, 10, 0, 0, 0)
		}, "key k: NOT linearizable"},
		{"maybe write: applied", func(h *History) {
			h.Write(1, 5, true, KVWrite{Key: "k", ID: a})
			h.Read("k", 6, 7, 0, 0, a)
		}, ""},
		{"maybe write: not applied", func(h *History) {
			h.Write(1, 5, true, KVWrite{Key: "k", ID: a})
			h.Read("k", 6, 7, 0, 0, 0)
		}, ""},
		{"maybe write applies once, before its bound", func(h *History) {
			h.Write(1, 5, true, KVWrite{Key: "k", ID: a})
			h.Read("k", 6, 7, 0, 0, 0)
			h.Read("k", 8, 9, 0, 0, a)
		}, "NOT linearizable"},
		{"unbounded maybe write may apply late", func(h *History) {
			h.Write(1, math.MaxInt64, true, KVWrite{Key: "k", ID: a})
			h.Read("k", 6, 7, 0, 0, 0)
			h.Read("k", 8, 9, 0, 0, a)
		}, ""},
		{"ttl: live before expiry, absent after", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a, E0: 100, E1: 110})
			h.Read("k", 3, 4, 50, 60, a)
			h.Read("k", 5, 6, 120, 130, 0)
		}, ""},
		{"ttl: absent before the earliest expiry", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a, E0: 100, E1: 110})
			h.Read("k", 3, 4, 50, 60, 0)
		}, "NOT linearizable"},
		{"ttl: value after the latest expiry", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a, E0: 100, E1: 110})
			h.Read("k", 3, 4, 111, 120, a)
		}, "NOT linearizable"},
		{"ttl: either inside the expiry range", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a, E0: 100, E1: 110})
			h.Read("k", 3, 4, 105, 106, 0)
			h.Read("k", 5, 6, 105, 106, a)
		}, ""},
		{"long ttl behaves as a put", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "k", ID: a, E0: hour, E1: hour + 5})
			h.Read("k", 3, 4, 10, 20, a)
		}, ""},
		{"batch seen whole", func(h *History) {
			h.GroupWrite(1, 2, false, a)
			h.GroupWrite(3, 4, false, b)
			h.GroupReadAll(5, 6, groupObs(b))
		}, ""},
		{"batch seen in part", func(h *History) {
			h.GroupWrite(1, 2, false, a)
			h.GroupWrite(3, 20, false, b)
			obs := groupObs(a)
			// One key from b, the rest from a: no instant has that state.
			for i := range GroupKeys {
				if groupExpect(a, i) != groupExpect(b, i) {
					obs[i] = groupExpect(b, i)
					break
				}
			}
			h.GroupReadAll(5, 6, obs)
		}, "group (batch atomicity): NOT linearizable"},
		{"group key read goes back in time", func(h *History) {
			h.GroupWrite(1, 2, false, a)
			h.GroupWrite(3, 4, false, b)
			i := differing(a, b)
			h.GroupRead(i, 5, 6, groupExpect(a, i))
		}, "group (batch atomicity): NOT linearizable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			tc.build(h)
			rt := &recTB{}
			h.Check(rt, time.Minute)
			got := strings.Join(rt.errs, "\n")
			if tc.want == "" && got != "" {
				t.Fatalf("reported a failure for a linearizable history:\n%s", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("want a failure containing %q, got:\n%s", tc.want, got)
			}
		})
	}
}

func groupObs(x ValueID) [GroupKeys]ValueID {
	var o [GroupKeys]ValueID
	for i := range o {
		o[i] = groupExpect(x, i)
	}
	return o
}

func differing(a, b ValueID) int {
	for i := range GroupKeys {
		if groupExpect(a, i) != groupExpect(b, i) {
			return i
		}
	}
	return 0 // a and b both put key 0 with their own IDs
}

func TestCheckerIterators(t *testing.T) {
	put := func(h *History, k string, call, ret int64) {
		h.Write(call, ret, false, KVWrite{Key: k, ID: MakeID(1, uint32(call))})
	}
	tests := []struct {
		name  string
		build func(h *History)
		want  string
	}{
		{"contract kept", func(h *History) {
			put(h, "a", 1, 2)
			put(h, "b", 1, 2)
			put(h, "c", 1, 2)
			h.Iter(IterRecord{Desc: "it", Lower: []byte("a"), Upper: []byte("c"), Call: 3, Return: 4, Keys: []string{"a", "b"}, Exhausted: true})
		}, ""},
		{"out of bounds (defect 2)", func(h *History) {
			h.Iter(IterRecord{Desc: "it", Lower: []byte("k5"), Upper: []byte("k7"), Call: 3, Return: 4, Keys: []string{"k3"}, Exhausted: true})
		}, "outside its range"},
		{"below SeekGE key (defect 2)", func(h *History) {
			h.Iter(IterRecord{Desc: "it", Seek: []byte("k4"), Call: 3, Return: 4, Keys: []string{"k3", "k5"}, Exhausted: true})
		}, "outside its range"},
		{"twice (defect 2)", func(h *History) {
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Keys: []string{"k3", "k3"}, Exhausted: true})
		}, "twice"},
		{"out of order", func(h *History) {
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Keys: []string{"k3", "k2"}, Exhausted: true})
		}, "out of order"},
		{"prefix respected", func(h *History) {
			h.Iter(IterRecord{Desc: "it", Prefix: []byte("r/"), Call: 3, Return: 4, Keys: []string{"s/1"}, Exhausted: true})
		}, "outside its range"},
		{"live key missed", func(h *History) {
			put(h, "a", 1, 2)
			put(h, "b", 1, 2)
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Keys: []string{"a"}, Exhausted: true})
		}, `did not return "b"`},
		{"key written during the iteration may be missed", func(h *History) {
			put(h, "a", 1, 2)
			put(h, "b", 3, 4)
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 5, Keys: []string{"a"}, Exhausted: true})
		}, ""},
		{"key deleted concurrently may be missed", func(h *History) {
			put(h, "a", 1, 2)
			h.Write(4, 6, false, KVWrite{Key: "a"})
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 5, Exhausted: true})
		}, ""},
		{"key deleted before its put, iterated after", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "a"})
			put(h, "a", 3, 4)
			h.Iter(IterRecord{Desc: "it", Call: 5, Return: 6, Exhausted: true})
		}, `did not return "a"`},
		{"delete concurrent with the put: may be missed", func(h *History) {
			h.Write(1, 4, false, KVWrite{Key: "a"})
			put(h, "a", 2, 3)
			h.Iter(IterRecord{Desc: "it", Call: 5, Return: 6, Exhausted: true})
		}, ""},
		{"unacknowledged put proves nothing", func(h *History) {
			h.Write(1, 2, true, KVWrite{Key: "a", ID: MakeID(1, 1)})
			h.Iter(IterRecord{Desc: "it", Call: 5, Return: 6, Exhausted: true})
		}, ""},
		{"expiring key may be missed", func(h *History) {
			h.Write(1, 2, false, KVWrite{Key: "a", ID: MakeID(1, 1), E0: 100, E1: 101})
			h.Iter(IterRecord{Desc: "it", Call: 5, Return: 6, ClockReturn: 100, Exhausted: true})
		}, ""},
		{"key past where the caller stopped is not required", func(h *History) {
			put(h, "a", 1, 2)
			put(h, "b", 1, 2)
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Keys: []string{"a"}})
		}, ""},
		{"key before where the caller stopped is required", func(h *History) {
			put(h, "a", 1, 2)
			put(h, "b", 1, 2)
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Keys: []string{"b"}})
		}, `did not return "a"`},
		{"failed iteration: no completeness check", func(h *History) {
			put(h, "a", 1, 2)
			h.Iter(IterRecord{Desc: "it", Call: 3, Return: 4, Failed: true})
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			tc.build(h)
			rt := &recTB{}
			h.checkIters(rt)
			got := strings.Join(rt.errs, "\n")
			if tc.want == "" && got != "" {
				t.Fatalf("reported a failure for an iteration that keeps the contract:\n%s", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("want a failure containing %q, got:\n%s", tc.want, got)
			}
		})
	}
}

func TestValues(t *testing.T) {
	k := []byte("key")
	for _, size := range []int{8, 9, 23, 24, 25, 100, 4096, 1 << 20} {
		id := MakeID(7, uint32(size))
		v := MakeValue(k, id, size)
		if len(v) != size {
			t.Fatalf("MakeValue(%d) is %d bytes", size, len(v))
		}
		if got, err := CheckValue(k, v); err != nil || got != id {
			t.Fatalf("CheckValue(%d bytes) = %v, %v; want %v", size, got, err, id)
		}
		if _, err := CheckValue([]byte("other"), v); err == nil {
			t.Errorf("%d-byte value accepted under another key", size)
		}
		// Torn: the head of one value, the tail of another of the same size.
		w := MakeValue(k, MakeID(8, uint32(size)+1000), size)
		torn := append(append([]byte{}, v[:size/2]...), w[size/2:]...)
		if _, err := CheckValue(k, torn); err == nil {
			t.Errorf("torn %d-byte value accepted", size)
		}
		if size > 8 {
			if _, err := CheckValue(k, v[:size-1]); err == nil {
				t.Errorf("truncated %d-byte value accepted", size)
			}
		}
	}
	if _, err := CheckValue(k, []byte("short")); err == nil {
		t.Error("5-byte value accepted")
	}
}
