#!/bin/sh
# run-cluster.sh -- three MantisDB nodes in cluster mode on loopback, in
# the foreground; Ctrl-C (or SIGTERM) stops all three.  docs/CLUSTER.md.
#
#   deploy/run-cluster.sh [BINARY]      (default bin/mantisdb)
#
# Node i (1..3) serves HTTP on 127.0.0.1:(8080+i), the Redis protocol on
# 127.0.0.1:(6380+i), Raft on 127.0.0.1:(7000+i), data in $CLUSTER_DIR/n<i> (default ./data-cluster).
# n1 bootstraps; n2 and n3 join it.  Set MANTISDB_AUTH_TOKEN to require a
# token on HTTP and on the Raft transport.  Extra flags for every node go
# in CLUSTER_ARGS (e.g. CLUSTER_ARGS="--sync always").
set -eu
BIN=${1:-bin/mantisdb}
DIR=${CLUSTER_DIR:-./data-cluster}
ARGS=${CLUSTER_ARGS:-}
[ -x "$BIN" ] || { echo "run-cluster: $BIN not found (make build)" >&2; exit 1; }
pids=""
stop() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
for i in 1 2 3; do
	mkdir -p "$DIR/n$i"
	role="--join 127.0.0.1:8081"
	[ "$i" = 1 ] && role="--bootstrap"
	# shellcheck disable=SC2086 # ARGS and role are word lists
	"$BIN" --node-id "n$i" --port $((8080 + i)) --resp-port $((6380 + i)) --raft-addr "127.0.0.1:$((7000 + i))" \
		--data-dir "$DIR/n$i" $role $ARGS 2>"$DIR/n$i.log" &
	pids="$pids $!"
	[ "$i" = 1 ] && sleep 1 # let n1 elect itself before the others ask to join
done
echo "cluster up: http://127.0.0.1:8081 (n1), :8082 (n2), :8083 (n3); logs in $DIR/n*.log"
echo "status: curl -s http://127.0.0.1:8081/api/v1/cluster; Redis protocol on :6381-:6383 (redis-cli -p 6381 ROLE)"
wait
