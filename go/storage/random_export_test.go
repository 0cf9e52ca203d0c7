// random_export_test.go -- exposes RandomKey's fast path (random.go) to
// the external test package, so tests can tell a draw of the engine's own
// sampler from the reservoir pass.
package storage

import "math/rand/v2"

// SampleForTest is e's KeySampler draw; ok false when e has none.
func SampleForTest(e Engine, r *rand.Rand) (key []byte, done, ok bool, err error) {
	s, ok := e.(KeySampler)
	if !ok {
		return nil, false, false, nil
	}
	key, done, err = s.SampleKey(r)
	return key, done, true, err
}
