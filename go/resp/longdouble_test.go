package resp

import "testing"

// FuzzLongDouble: INCRBYFLOAT's parser takes a client's bytes and stored
// values (longdouble.go).  Whatever the input, it must not panic or hang
// (math/big is never asked for a power past the long double's range), and
// a value it accepts must print as a float it accepts again, to the same
// text: what INCRBYFLOAT stores is always a valid INCRBYFLOAT operand.
func FuzzLongDouble(f *testing.F) {
	for _, s := range []string{"0.1", "-0", "1e400", "0x1p3", "0x.8", "5.", ".5", "inf", "-Infinity", "nan",
		"1e", "1e+", " 1", "0b1", "1_0", "1e4933", "1e-4951", "0e99999", "0x1.fffffffffffffffep16383",
		"123456789012345678901234567890", "-3.14159265358979323846"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, inf, ok := parseLongDouble(b)
		if !ok || inf != 0 {
			return
		}
		s := formatLongDouble(v)
		w, winf, ok := parseLongDouble([]byte(s))
		if !ok || winf != 0 {
			t.Fatalf("%q printed as %q, which does not parse", b, s)
		}
		if s2 := formatLongDouble(w); s2 != s {
			t.Fatalf("%q printed as %q, which prints as %q", b, s, s2)
		}
	})
}
