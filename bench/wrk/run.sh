#!/usr/bin/env bash
# run.sh -- the HTTP benchmark: for each server binary given (default
# bin/mantisdb and bin/mantisdb-native, built by `make build build-native`),
# start it on a loopback port with a fresh data directory, preload KEYS keys,
# then run wrk with CONNS connections for DURATION: GET hits (get.lua), then
# PUTs of 100-byte values (put.lua).  Each server is stopped with SIGTERM and
# must exit 0.
#   bench/wrk/run.sh [binary...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${PORT:-18081}
conns=${CONNS:-40}
threads=${THREADS:-2}
duration=${DURATION:-10s}
export KEYS=${KEYS:-10000}
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=(bin/mantisdb bin/mantisdb-native)
for b in "${bins[@]}"; do
  data=$(mktemp -d "${TMPDIR:-/tmp}/mantisdb-wrk.XXXXXX")
  "$b" --port "$port" --resp-port 0 --data-dir "$data/data" 2>"$data/server.log" &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null || true; rm -rf "$data"' EXIT
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done
  echo "### $("$b" --version)"
  "$here/preload.sh" "http://127.0.0.1:$port"
  echo "=== GET hits, $conns connections, $duration"
  wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$here/get.lua" "http://127.0.0.1:$port"
  echo "=== PUT 100-byte values, $conns connections, $duration"
  wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$here/put.lua" "http://127.0.0.1:$port"
  kill -TERM "$pid"
  wait "$pid"
  echo "server exited $?"
  trap - EXIT
  rm -rf "$data"
done
