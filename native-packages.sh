#!/bin/sh
# native-packages.sh -- prints the Go packages whose build, or whose tests'
# build, the `native` tag changes: those with files of their own that the
# tag selects or deselects, and those that import one (tests included).
# `make test` runs only these a second time with -tags native; every other
# package builds the same either way and is tested once.
set -eu
GO=${GO:-go}
build='{{.ImportPath}} {{join .GoFiles ","}} {{join .CgoFiles ","}}'
tests='{{.ImportPath}} {{join .TestGoFiles ","}} {{join .XTestGoFiles ","}}'
a=$(mktemp); b=$(mktemp)
trap 'rm -f "$a" "$b"' EXIT
# differ FORMAT: the packages whose FORMAT line differs between the builds.
differ() {
	"$GO" list -f "$1" ./... | sort > "$a"
	"$GO" list -tags native -f "$1" ./... | sort > "$b"
	comm -3 "$a" "$b" | awk '{print $1}' | sort -u
}
built=$(differ "$build")  # their package itself builds differently
tested=$(differ "$tests") # only their own tests differ
# Every package (test variants included) that is, or depends on, one whose
# build differs, plus those whose own tests differ.
"$GO" list -tags native -test -f '{{.ImportPath}} {{join .Deps " "}}' ./... |
	awk -v built="$built" -v tested="$tested" '
	BEGIN {
		n = split(built, c, "\n"); for (i = 1; i <= n; i++) if (c[i] != "") want[c[i]] = 1
		n = split(tested, c, "\n"); for (i = 1; i <= n; i++) if (c[i] != "") print c[i]
	}
	{
		p = $1; sub(/ \[.*\]$/, "", p); sub(/\.test$/, "", p); sub(/_test$/, "", p)
		hit = (p in want)
		for (i = 2; i <= NF && !hit; i++) if ($i in want) hit = 1
		if (hit) print p
	}' | sort -u
