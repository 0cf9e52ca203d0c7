package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestLoadPipe: parts are linked exactly once each, in add order, however
// the builders interleave; after the first error (of a build or of a
// link) nothing more is linked, every part built but not linked is
// dropped, add reports the stop, and finish returns that error.
func TestLoadPipe(t *testing.T) {
	errBuild := errors.New("build failed")
	errLink := errors.New("link failed")
	for _, tc := range []struct {
		name      string
		parts     int
		buildFail int // part whose build fails; -1 none
		linkFail  int // part whose link fails; -1 none
		wantErr   error
	}{
		{"all", 200, -1, -1, nil},
		{"none", 0, -1, -1, nil},
		{"build error", 200, 57, -1, errBuild},
		{"link error", 200, -1, 91, errLink},
		{"first part", 50, 0, -1, errBuild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				built   = map[int]bool{}
				dropped = map[int]bool{}
				linked  []int
			)
			p := newLoadPipe(func(i int) (int, error) {
				if i == tc.buildFail {
					return 0, fmt.Errorf("part %d: %w", i, errBuild)
				}
				mu.Lock()
				built[i] = true
				mu.Unlock()
				return i, nil
			}, func(i int) error {
				if i == tc.linkFail {
					return errLink
				}
				linked = append(linked, i) // the linker is one goroutine
				return nil
			}, func(i int) {
				mu.Lock()
				dropped[i] = true
				mu.Unlock()
			})
			added := 0
			for i := range tc.parts {
				if !p.add(i) {
					break
				}
				added++
			}
			err := p.finish()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("finish: %v, want %v", err, tc.wantErr)
			}
			stop := tc.parts // first part not linked
			if tc.buildFail >= 0 {
				stop = tc.buildFail
			} else if tc.linkFail >= 0 {
				stop = tc.linkFail
			}
			if want := seq(stop); !slices.Equal(linked, want) {
				t.Fatalf("linked %v, want 0..%d in order", linked, stop-1)
			}
			if tc.wantErr == nil && added != tc.parts {
				t.Fatalf("added %d of %d parts without an error", added, tc.parts)
			}
			// Every part built is linked, dropped or the failed link's.
			for i := range built {
				if in := slices.Contains(linked, i); in == dropped[i] && i != tc.linkFail {
					t.Fatalf("part %d: linked %v, dropped %v", i, in, dropped[i])
				}
			}
		})
	}
}

func seq(n int) []int {
	s := []int{}
	for i := range n {
		s = append(s, i)
	}
	return s
}
