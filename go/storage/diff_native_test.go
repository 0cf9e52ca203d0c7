//go:build cgo && native

// diff_native_test.go -- the native engine against the conformance suite
// (in memory and durable), and the differential test: one seeded random
// stream of operations, valid and invalid, applied to the native and the
// pure-Go engines must give identical results, call by call.
package storage_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

func TestNativeConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, opts storage.Options) storage.Engine {
		return openNative(t, opts)
	})
}

func TestNativeDurableConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, opts storage.Options) storage.Engine {
		opts.Dir = t.TempDir()
		opts.Sync = storage.SyncNone
		return openNative(t, opts)
	})
}

// errString makes errors comparable: both engines build their errors with
// the same shared code, so even the messages must match.
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// sweeper is the engines' test hook into the expiry sweep (export_test.go).
type sweeper interface {
	SweepForTest(max int) (reclaimed int, wrapped bool, err error)
}

// diffOp is one step of the differential stream; it returns a string
// rendering of everything the call produced.
type diffOp func(e storage.Engine) string

func diffStream(seed uint64, n int, clk *storagetest.Clock) []diffOp {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	key := func() []byte {
		switch r.IntN(40) {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2:
			return bytes.Repeat([]byte{0xff}, 33) // over MaxKeySize
		case 3:
			return []byte{0, byte(r.IntN(3))}
		case 4:
			return []byte{0xff, byte(r.IntN(3))}
		}
		return []byte(fmt.Sprintf("d%03d", r.IntN(400)))
	}
	val := func() []byte {
		if r.IntN(50) == 0 {
			return make([]byte, 129) // over MaxValueSize
		}
		return bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(100))
	}
	ttl := func() time.Duration {
		if r.IntN(30) == 0 {
			return -time.Second
		}
		return time.Duration(1+r.IntN(100)) * time.Millisecond
	}
	ops := make([]diffOp, 0, n)
	for i := 0; i < n; i++ {
		switch c := r.IntN(100); {
		case c < 30:
			k, v := key(), val()
			ops = append(ops, func(e storage.Engine) string { return errString(e.Put(k, v)) })
		case c < 40:
			k, v, d := key(), val(), ttl()
			ops = append(ops, func(e storage.Engine) string { return errString(e.PutWithTTL(k, v, d)) })
		case c < 50:
			k := key()
			ops = append(ops, func(e storage.Engine) string { return errString(e.Delete(k)) })
		case c < 58:
			var b storage.Batch
			for j := r.IntN(8); j >= 0; j-- {
				switch r.IntN(4) {
				case 0:
					b.Delete(key())
				case 1:
					b.PutWithTTL(key(), val(), ttl())
				default:
					b.Put(key(), val())
				}
			}
			if r.IntN(40) == 0 {
				b.Ops = append(b.Ops, storage.Op{Kind: 7, Key: []byte("x")})
			}
			ops = append(ops, func(e storage.Engine) string { return errString(e.Apply(&b)) })
		case c < 62:
			d := time.Duration(r.IntN(20)) * time.Millisecond
			// The clock is shared; the step runs once per engine, so it
			// moves the clock on the pure-Go (second) run only.
			ops = append(ops, func(e storage.Engine) string {
				if e.Engine() == "pure-go" {
					clk.Advance(d)
				}
				return "tick"
			})
		case c < 64:
			// One bounded sweep step on each engine: the same keys are
			// examined and the same expired ones removed.
			step := 1 + r.IntN(50)
			ops = append(ops, func(e storage.Engine) string {
				n, wrapped, err := e.(sweeper).SweepForTest(step)
				return fmt.Sprintf("swept %d %v %s", n, wrapped, errString(err))
			})
		case c < 90:
			k := key()
			ops = append(ops, func(e storage.Engine) string {
				v, err := e.Get(k)
				return fmt.Sprintf("%x %s", v, errString(err))
			})
		case c < 98:
			lo, hi, p := key(), key(), key()
			opts := storage.IterOptions{LowerBound: lo, UpperBound: hi}
			switch r.IntN(3) {
			case 0:
				opts = storage.IterOptions{Prefix: p[:min(len(p), 2)]}
			case 1:
				opts.UpperBound = nil
			}
			seek := key()
			ops = append(ops, func(e storage.Engine) string {
				it, err := e.NewIterator(opts)
				if err != nil {
					return errString(err)
				}
				defer it.Close()
				var sb bytes.Buffer
				for ok := it.First(); ok; ok = it.Next() {
					fmt.Fprintf(&sb, "%x=%x ", it.Key(), it.Value())
				}
				fmt.Fprintf(&sb, "| seek %v %x |", it.SeekGE(seek), it.Key())
				return sb.String() + errString(it.Error())
			})
		default:
			ops = append(ops, func(e storage.Engine) string {
				s := e.Stats()
				return fmt.Sprintf("keys %d bytes %d puts %d dels %d batches %d gets %d misses %d expired %d",
					s.Keys, s.LiveBytes, s.Puts, s.Deletes, s.Batches, s.Gets, s.Misses, s.Expired)
			})
		}
	}
	return ops
}

func TestDifferentialNativeVsPure(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			clk := storagetest.NewClock()
			opts := storage.Options{MaxKeySize: 32, MaxValueSize: 128, Clock: clk.Now}
			nat, pure := openNative(t, opts), openPure(t, opts)
			// The stream drives both sweepers (Keys would otherwise
			// depend on when each background ticker fired).
			for _, e := range []storage.Engine{nat, pure} {
				if _, _, err := e.(sweeper).SweepForTest(0); err != nil {
					t.Fatal(err)
				}
			}
			ops := diffStream(seed, 6000, clk)
			for i, op := range ops {
				// Native first, then pure-Go, at the same clock reading.
				a := op(nat)
				b := op(pure)
				if a != b {
					t.Fatalf("seed %d op %d: native %q, pure-go %q", seed, i, a, b)
				}
			}
		})
	}
}
