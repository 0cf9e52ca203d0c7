#!/bin/sh
# seed.sh FUZZER CORPUS_DIR TESTDATA -- writes seed inputs for a fuzz target
# into its corpus directory.  Codec fuzzers are seeded with every record of
# the shared test vectors (testdata/codec/vectors.txt), one file per vector.
set -eu
fuzzer=$1; corpus=$2; testdata=$3
vectors="$testdata/codec/vectors.txt"
[ -f "$vectors" ] || exit 0
# Field 9 is record_hex; write each as raw bytes.
grep -v '^#' "$vectors" | awk 'NF == 9 { print $1, $9 }' | while read -r name hex; do
	printf '%s' "$hex" | xxd -r -p > "$corpus/vec-$name" 2>/dev/null || true
done
