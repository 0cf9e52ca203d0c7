#!/usr/bin/env bash
# resp-fresh-incr.sh BIN P N: server CPU ticks of N INCRs (-P P) on a fresh
# in-memory server (every counter key inserted by its first INCR).
BIN=$1; P=$2; N=$3
pkill -f "resp-port 6393"; sleep 0.3
$BIN --in-memory --host 127.0.0.1 --port 18093 --resp-port 6393 >/dev/null 2>&1 &
sleep 1
PID=$(pgrep -f "resp-port 6393")
c0=$(awk '{print $14+$15}' /proc/$PID/stat)
line=$(redis-benchmark -p 6393 -c 40 -r 200000 -n $N -P $P -t incr --csv 2>/dev/null | tail -1)
c1=$(awk '{print $14+$15}' /proc/$PID/stat)
echo "$(basename $BIN) P=$P ticks=$((c1-c0)) $line"
kill $PID; wait 2>/dev/null
