// keys.go -- the data every subject sees: 16-byte keys, values that carry
// their key's index (so a read-back can tell a right value from a stale or
// foreign one), and the two key choosers of the suite, uniform and
// scrambled Zipf(0.99) as YCSB draws them.
package harness

import (
	"encoding/binary"
	"math"
)

// KeyLen is the key size of every row.
const KeyLen = 16

// mix64 is SplitMix64's finaliser: the same mixer c-core/bench and the
// crossbeam peer use, so "random" means the same thing on every side.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const hexDigits = "0123456789abcdef"

// MakeKey writes key i into k (len >= KeyLen): 'k' and 15 hex digits of 2i,
// the layout of c-core/bench/bench_skiplist.c.  Keys sort in index order,
// so "sequential" means ascending; 2i+1 (MissKey) are absent keys that sit
// between present ones.
func MakeKey(k []byte, i uint64) []byte {
	return makeKey(k, 2*i)
}

// MissKey is the absent key next to key i.
func MissKey(k []byte, i uint64) []byte {
	return makeKey(k, 2*i+1)
}

func makeKey(k []byte, v uint64) []byte {
	k = k[:KeyLen]
	k[0] = 'k'
	for j := KeyLen - 1; j >= 1; j-- {
		k[j] = hexDigits[v&15]
		v >>= 4
	}
	return k
}

// FillValue writes the value of key i at version gen into v: the index and
// the generation in the first 16 bytes, then a filler that depends on both
// (so values do not compress to nothing in an engine that compresses).
func FillValue(v []byte, i, gen uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], i)
	copy(v, b[:])
	if len(v) >= 16 {
		binary.LittleEndian.PutUint64(b[:], gen)
		copy(v[8:], b[:])
	}
	s := mix64(i ^ gen<<32)
	for j := 16; j < len(v); j += 8 {
		s = mix64(s)
		binary.LittleEndian.PutUint64(b[:], s)
		copy(v[j:], b[:])
	}
}

// ValueIndex returns the key index a value was written for, and whether the
// value is long enough to carry one.
func ValueIndex(v []byte) (uint64, bool) {
	if len(v) < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(v), true
}

// Perm is a random permutation of 0..n-1 with the seed of the C benchmark.
func Perm(n int) []uint32 {
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(i)
	}
	s := uint64(42)
	for i := n - 1; i > 0; i-- {
		s = mix64(s)
		j := s % uint64(i+1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// Chooser picks key indexes in [0, n).  Each worker owns one.
type Chooser interface {
	Next() uint64
}

// Uniform picks every index with the same probability.
type Uniform struct {
	n, s uint64
}

// NewUniform returns a uniform chooser over [0, n) seeded by seed.
func NewUniform(n int, seed uint64) *Uniform {
	return &Uniform{n: uint64(n), s: mix64(seed)}
}

// Next returns the next index.
func (u *Uniform) Next() uint64 {
	u.s = mix64(u.s)
	return u.s % u.n
}

// ZipfTable holds the constants of a Zipf distribution over n items; it is
// shared read-only by the workers' Zipf choosers (zeta(n) costs O(n) once).
type ZipfTable struct {
	n                        uint64
	theta, alpha, zetan, eta float64
	halfPowTheta, zeta2theta float64
}

// NewZipfTable prepares Zipf(theta) over n items with YCSB's
// ZipfianGenerator (Gray et al., "Quickly generating billion-record
// synthetic databases", SIGMOD 1994): theta 0.99 is YCSB's default, which
// math/rand.Zipf cannot draw (it needs s > 1).
func NewZipfTable(n int, theta float64) *ZipfTable {
	zetan := 0.0
	for i := 1; i <= n; i++ {
		zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + 1/math.Pow(2, theta)
	t := &ZipfTable{
		n:            uint64(n),
		theta:        theta,
		alpha:        1 / (1 - theta),
		zetan:        zetan,
		zeta2theta:   zeta2,
		halfPowTheta: 1 + math.Pow(0.5, theta),
	}
	t.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan)
	return t
}

// Zipf draws ranks from a ZipfTable and scrambles them (YCSB's
// ScrambledZipfian) so the hot keys are spread over the key space instead
// of all sitting at its start, where a B-tree or LSM would get an unfair
// locality bonus.
type Zipf struct {
	t *ZipfTable
	s uint64
}

// NewZipf returns a scrambled Zipf chooser over t, seeded by seed.
func NewZipf(t *ZipfTable, seed uint64) *Zipf { return &Zipf{t: t, s: mix64(seed ^ 0x5a5a)} }

// Rank returns the next unscrambled rank (0 is the most popular).
func (z *Zipf) Rank() uint64 {
	z.s = mix64(z.s)
	u := float64(z.s>>11) / (1 << 53)
	uz := u * z.t.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.t.halfPowTheta {
		return 1
	}
	r := uint64(float64(z.t.n) * math.Pow(z.t.eta*u-z.t.eta+1, z.t.alpha))
	if r >= z.t.n {
		r = z.t.n - 1
	}
	return r
}

// Next returns the next scrambled index.
func (z *Zipf) Next() uint64 {
	return mix64(z.Rank()) % z.t.n
}
