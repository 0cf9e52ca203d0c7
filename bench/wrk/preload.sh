#!/usr/bin/env bash
# preload.sh -- write KEYS (default 10000) keys bench-0..bench-N-1 with
# 100-byte values through POST /api/v1/kv/batch, 500 per batch, so that
# get.lua only hits.  Usage: bench/wrk/preload.sh [base-url]
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
keys=${KEYS:-10000}
value=$(printf 'v%.0s' $(seq 1 100) | base64 -w0)
auth=()
[[ -n "${MANTISDB_AUTH_TOKEN:-}" ]] && auth=(-H "Authorization: Bearer $MANTISDB_AUTH_TOKEN")
for ((start = 0; start < keys; start += 500)); do
  end=$((start + 500 < keys ? start + 500 : keys))
  ops=""
  for ((i = start; i < end; i++)); do
    k=$(printf 'bench-%d' "$i" | base64 -w0)
    ops+="${ops:+,}{\"op\":\"put\",\"key\":\"$k\",\"value\":\"$value\"}"
  done
  curl -sf "${auth[@]}" -X POST --data-binary "{\"ops\":[$ops]}" "$base/api/v1/kv/batch" >/dev/null
done
echo "preloaded $keys keys into $base"
