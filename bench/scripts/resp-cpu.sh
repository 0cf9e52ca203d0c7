#!/usr/bin/env bash
# resp-cpu.sh BIN ROW P N [ROUNDS]: the server CPU time (user + system, in
# clock ticks of 10 ms, from /proc/PID/stat) that N requests of one
# redis-benchmark row take, for BIN (a mantisdb binary, --sync none) and
# redis-server without persistence, alternated for ROUNDS (3).  CPU per
# request is steadier than requests/s on a shared machine, and on two CPUs
# with the load generator on one it bounds what the server can serve.
# EXTRA: more flags for mantisdb.
set -u
BIN=$1; T=$2; P=$3; N=$4; R=${5:-3}
pkill -f "resp-port 6391"; pkill -f "redis-server 127.0.0.1:6399"; sleep 0.3
rm -rf /tmp/resp-cpu; mkdir -p /tmp/resp-cpu
$BIN --host 127.0.0.1 --port 18091 --data-dir /tmp/resp-cpu --sync none --resp-port 6391 ${EXTRA:-} >/dev/null 2>&1 &
redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
sleep 1
for p in 6391 6399; do redis-benchmark -p $p -t set -n 200000 -r 200000 -d 100 -P 16 -c 40 -q >/dev/null 2>&1; done
PA=$(pgrep -f "resp-port 6391"); PR=$(pgrep -f "redis-server 127.0.0.1:6399")
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq $R); do
	for s in "MantisDB:6391:$PA" "Redis:6399:$PR"; do
		IFS=: read -r name port pid <<< "$s"
		sleep 0.5
		a=$(ticks $pid)
		rps=$(redis-benchmark -p $port -c 40 -d 100 -r 200000 -n $N -P $P -t $T --csv | tail -1 | cut -d, -f2)
		b=$(ticks $pid)
		echo "$r $name ticks=$((b - a)) rps=$rps"
	done
done
pkill -f "resp-port 6391"; pkill -f "redis-server 127.0.0.1:6399"
