#!/usr/bin/env bash
# go-fuzz.sh PKG FUZZFN SECONDS [go test flags...]
#
# Runs one Go native fuzz target for SECONDS and fails on any finding.
#
# One failure is not a finding: Go up to 1.26 has a race in its fuzzing
# coordinator (golang/go#75804, fixed in Go 1.27) by which a worker still
# busy when -fuzztime expires makes the run end with a bare "context deadline
# exceeded" and a non-zero exit, with no input written.  A real finding always
# writes its input to testdata/fuzz/FUZZFN and prints "Failing input written".
# So a non-zero exit counts as that race only when all of these hold: the
# output says "context deadline exceeded", no failing input was written, no
# panic or test error was printed, and a deterministic replay of the seed and
# committed corpus (go test -run) then passes.  Anything else fails.
set -uo pipefail
pkg=$1 fn=$2 secs=$3; shift 3
go=${GO:-go}
corpus="$pkg/testdata/fuzz/$fn"
before=$(ls "$corpus" 2>/dev/null | sort)
log=$(mktemp); trap 'rm -f "$log"' EXIT

"$go" test "$@" -run='^$' -fuzz="^$fn\$" -fuzztime="${secs}s" "$pkg" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0

after=$(ls "$corpus" 2>/dev/null | sort)
if grep -q 'context deadline exceeded' "$log" &&
   ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log" &&
   [ "$before" = "$after" ]; then
	echo "go-fuzz.sh: $fn ended on Go's -fuzztime deadline race (golang/go#75804), no input written; replaying its corpus"
	"$go" test "$@" -run="^$fn\$" -count=1 "$pkg" && exit 0
fi
echo "go-fuzz.sh: $fn failed" >&2
exit "$rc"
