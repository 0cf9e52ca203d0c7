#!/usr/bin/env bash
# build.sh -- makes a fresh Debian machine ready to build and test MantisDB,
# then builds it.  Idempotent: installs only what is missing.
#
#   ./build.sh              install what is missing, then build everything
#   ./build.sh --deps-only  install what is missing, build nothing
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: the C core's libraries (Concurrency Kit, mimalloc), its
# test framework (cmocka), clang for libFuzzer with its runtime
# (libclang-rt-dev: clang only recommends it, and without it every fuzz
# target fails to link), and the tools the benchmark and server tests drive
# (wrk, redis-server, and redis-tools' redis-cli and redis-benchmark for
# the RESP tests and benchmark rows).
PKGS=(build-essential pkg-config libck-dev libmimalloc-dev libcmocka-dev clang
      libclang-rt-dev wrk redis-server redis-tools xxd)
GO_MIN_MINOR=26 # go.mod says go 1.26 (go-redis v9.23, the RESP tests' client, requires it)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	echo "build.sh: installing ${missing[*]}"
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
	echo "build.sh: the Go toolchain (1.${GO_MIN_MINOR}+) is required: https://go.dev/dl" >&2
	exit 1
fi
minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${minor:-0}" -lt "$GO_MIN_MINOR" ]; then
	echo "build.sh: Go 1.${GO_MIN_MINOR}+ required, found $(go env GOVERSION)" >&2
	exit 1
fi
go mod download

if [ "${1:-}" != "--deps-only" ]; then
	make build-core build build-native
fi
