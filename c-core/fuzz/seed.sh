#!/bin/sh
# seed.sh FUZZER CORPUS_DIR TESTDATA -- writes seed inputs for a fuzz target
# into its corpus directory.  Every fuzzer is seeded with each record of the
# shared test vectors (testdata/codec/vectors.txt), one file per vector;
# fuzz_engine inputs start with a mode byte and a scan-buffer byte (see
# fuzz/fuzz_engine.c), so its vector seeds get the prefix "raw batch, 64-byte
# scan buffer", and it also gets a few scripts (mode 1) that encode valid
# batches of puts and deletes, which random bytes would almost never do.
set -eu
fuzzer=$1; corpus=$2; testdata=$3
prefix=""
if [ "$fuzzer" = fuzz_engine ]; then
	prefix='\000\100'
	# op = tag klen vlen exp key value; tag odd = PUT, even = DELETE.
	printf '\001\100\001\003\005\000kkkvvvvv' > "$corpus/script-put"
	printf '\001\020\001\003\005\000kkkvvvvv\000\003\000\000kkk' > "$corpus/script-put-del"
	printf '\001\010\001\001\001\000a1\001\001\001\000b2\001\001\001\000a3\002\001\000\000b' \
		> "$corpus/script-overwrite"
	printf '\003\000\001\011\041\000key-too-long-for-eight' > "$corpus/script-small-limits"
	printf '\001\100\001\002\002\000k1vv\377\000\000\000\000\050' > "$corpus/script-corrupt"
fi
vectors="$testdata/codec/vectors.txt"
[ -f "$vectors" ] || exit 0
# Field 8 (the last) is record_hex; write each as raw bytes.
grep -v '^#' "$vectors" | awk 'NF == 8 { print $1, $8 }' | while read -r name hex; do
	{ printf "$prefix"; printf '%s' "$hex" | xxd -r -p; } > "$corpus/vec-$name" 2>/dev/null || true
done
