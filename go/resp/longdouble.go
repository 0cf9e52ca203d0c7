package resp

import (
	"math/big"
	"strings"
)

// INCRBYFLOAT computes as Redis does on x86-64 Linux, in the 80-bit x87
// long double: strtold parses the value and the increment (string2ld),
// the sum is rounded to a 64-bit mantissa, and the result is printed
// "%.17Lf" with its trailing zeros cut (ld2string, LD_STR_HUMAN).  A
// float64 would answer 0.30000000000000004 where Redis answers 0.3, and
// refuse 1e400 or 0x10, which Redis takes; math/big at 64 bits of
// precision, half to even, is that arithmetic.  Exponents are bounded
// as the long double's are (it overflows past about 1.19e4932; a
// non-zero literal that rounds to zero is refused, as strtold's ERANGE
// is by Redis).
const (
	ldPrec   = 64
	ldMaxExp = 16384  // LDBL_MAX < 2^16384: a MantExp above this overflowed
	ldMinExp = -16444 // the smallest subnormal is 2^-16445 (MantExp -16444)
	ldMaxLen = 5 << 10
)

// parseLongDouble parses b as Redis's string2ld: all of b (at most 5 KiB,
// no leading space) as strtold reads it: a decimal or hexadecimal
// (0x...p...) number, or inf/infinity (which the caller refuses after
// the sum, as Redis does); nan, a value out of the long double's range,
// and anything else are not a float (ok false).
func parseLongDouble(b []byte) (f *big.Float, inf int, ok bool) {
	if len(b) == 0 || len(b) >= ldMaxLen {
		return nil, 0, false
	}
	s := string(b)
	body, sign := s, 1
	if body[0] == '+' || body[0] == '-' {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	switch l := strings.ToLower(body); l {
	case "inf", "infinity":
		return nil, sign, true
	}
	hex := len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')
	digits, expMark := "0123456789", "eE"
	mant := body
	if hex {
		digits, expMark, mant = "0123456789abcdefABCDEF", "pP", body[2:]
	}
	// mantissa: digits with at most one point, at least one digit;
	// then an optional exponent with at least one digit.
	i, nd, point, lead, intDigits := 0, 0, false, true, 0
	for ; i < len(mant); i++ {
		c := mant[i]
		switch {
		case c == '.' && !point:
			point = true
		case strings.IndexByte(digits, c) >= 0:
			nd++
			if lead && c == '0' {
				if point {
					intDigits-- // 0.000x: the magnitude falls
				}
				continue
			}
			lead = false
			if !point {
				intDigits++
			}
		default:
			goto mantEnd
		}
	}
mantEnd:
	if nd == 0 {
		return nil, 0, false
	}
	exp := 0
	if i < len(mant) {
		if strings.IndexByte(expMark, mant[i]) < 0 {
			return nil, 0, false
		}
		e := mant[i+1:]
		neg := false
		if e != "" && (e[0] == '+' || e[0] == '-') {
			neg, e = e[0] == '-', e[1:]
		}
		if e == "" {
			return nil, 0, false
		}
		for _, c := range []byte(e) {
			if c < '0' || c > '9' {
				return nil, 0, false
			}
			if exp < 1<<20 {
				exp = exp*10 + int(c-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	if lead {
		return new(big.Float).SetPrec(ldPrec), 0, true // zero, whatever its exponent (strtold: no ERANGE)
	}
	// Bound the magnitude before math/big computes a power of ten (or
	// of two) that large: past the long double's range it is refused.
	// A hex digit is 4 bits of the binary exponent, a decimal one a
	// power of ten of the decimal one.
	if hex {
		if mag := exp + 4*intDigits; mag > ldMaxExp+8 || mag < ldMinExp-8-4*nd {
			return nil, 0, false
		}
	} else if mag := exp + intDigits; mag > 4934 || mag < -4952-nd {
		return nil, 0, false
	}
	f, _, err := big.ParseFloat(s, 0, ldPrec, big.ToNearestEven)
	if err != nil || !ldInRange(f) {
		return nil, 0, false
	}
	return f, 0, true
}

// ldInRange reports whether f is a finite long double: zero, or a
// magnitude between the smallest subnormal and LDBL_MAX.
func ldInRange(f *big.Float) bool {
	if f.IsInf() {
		return false
	}
	if f.Sign() == 0 {
		return true
	}
	e := f.MantExp(nil)
	if e == ldMinExp-1 {
		// Below the smallest subnormal: rounds up to it unless it is
		// exactly half of it (a tie, to even: zero, strtold's ERANGE).
		half := new(big.Float).SetMantExp(big.NewFloat(0.5), ldMinExp-1)
		return new(big.Float).Abs(f).Cmp(half) != 0
	}
	return e <= ldMaxExp && e >= ldMinExp
}

// formatLongDouble prints f as Redis's ld2string in LD_STR_HUMAN mode:
// "%.17Lf", trailing zeros (and a trailing point) cut, "-0" as "0".
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
