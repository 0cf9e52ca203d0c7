// uniform.go -- the check that picks of a random key (storage.RandomKey,
// RESP's RANDOMKEY) spread as uniform ones do.
package storagetest

import "testing"

// CheckUniform fails t unless counts (picks per group of equally many
// keys, 10 groups) pass a chi-square test of uniformity.  The bound, 60
// for 9 degrees of freedom, is exceeded by a uniform pick with
// probability below 1e-8, so the check does not flake, while a pick
// biased to a part of the keyspace fails it by far.
func CheckUniform(t testing.TB, counts [10]int) {
	t.Helper()
	total := 0
	for _, c := range counts {
		total += c
	}
	exp := float64(total) / float64(len(counts))
	chi := 0.0
	for _, c := range counts {
		chi += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi > 60 {
		t.Fatalf("picks per group %v: chi-square %.1f, not uniform", counts, chi)
	}
}
