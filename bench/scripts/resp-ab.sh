#!/usr/bin/env bash
# resp-ab.sh OUT BIN_A BIN_B [rows...]: round-robin redis-benchmark rows
# against two mantisdb binaries (A, B; --sync $SYNC), redis-server without
# persistence (R) and, with AOF=1, redis-server appendonly yes appendfsync
# no (F; AOF=always: appendfsync always, beside SYNC=always); each a fresh
# server on ports 6391-6399 and 18091-18092, the subjects' order rotated
# every round.  Rows: get set incr mset, each optionally -P<n> (get-P16),
# and the go-redis rows of bench/cmd/respmix, tx (MULTI, INCR, INCR,
# EXEC) and pipe (a pipeline of SET, GET), MIXOPS (100000) each, with
# RESPMIX naming its binary (built to /tmp/respmix when unset); at 20000
# a row lasted half a second, and its p99 moved between runs by more
# than the gaps it was to show (session 24's results).  ROUNDS (3), N
# (200000 ops), KEYS (200000), EXTRA (flags for both mantisdb servers),
# EXTRA_A and EXTRA_B (for one: EXTRA_B=--in-memory compares a
# binary with itself in memory).  One line per run in OUT; `python3
# resp-ab.py OUT` prints the medians, B/A and B/R.  A session's numbers
# are the medians of several such runs (bench/results).
set -u
OUT=$1; A=$2; B=$3; shift 3
ROWS=${*:-"get set incr mset get-P16 set-P16 incr-P16 mset-P16"}
ROUNDS=${ROUNDS:-3}; N=${N:-200000}; KEYS=${KEYS:-200000}; SYNC=${SYNC:-none}; AOF=${AOF:-0}
EXTRA=${EXTRA:-}
case " $ROWS " in *" tx "*|*" pipe "*)
  if [ -z "${RESPMIX:-}" ]; then
    RESPMIX=/tmp/respmix
    (cd "$(dirname "$0")/.." && go build -o $RESPMIX ./cmd/respmix) || exit 1
  fi;;
esac
FSYNC=no; [ "$AOF" = always ] && FSYNC=always
pkill -f "resp-port 639" ; pkill -f "redis-server 127.0.0.1:639"; sleep 0.5
rm -rf /tmp/qA /tmp/qB /tmp/qF; mkdir -p /tmp/qA /tmp/qB /tmp/qF
$A --host 127.0.0.1 --port 18091 --data-dir /tmp/qA --sync $SYNC $EXTRA ${EXTRA_A:-} --resp-port 6391 >/tmp/qA.log 2>&1 &
$B --host 127.0.0.1 --port 18092 --data-dir /tmp/qB --sync $SYNC $EXTRA ${EXTRA_B:-} --resp-port 6392 >/tmp/qB.log 2>&1 &
redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/tmp/qR.log 2>&1 &
SV="A:6391 B:6392 R:6399"
if [ "$AOF" != 0 ]; then
  redis-server --port 6398 --bind 127.0.0.1 --save "" --dir /tmp/qF --appendonly yes --appendfsync $FSYNC --daemonize no >/tmp/qF.log 2>&1 &
  SV="$SV F:6398"
fi
sleep 1.5
for s in $SV; do
  redis-benchmark -p ${s#*:} -t set -n $KEYS -r $KEYS -d 100 -P 16 -c 40 -q >/dev/null 2>&1
done
: > $OUT
PIDS="$(pgrep -f 'resp-port 639' | tr '\n' ' ') $(pgrep -f 'redis-server 127.0.0.1:639' | tr '\n' ' ')"
cpu() { local t=0; for p in $PIDS; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
# quiesce: wait (at most 5 s) until no server used CPU for 200 ms, so a
# checkpoint a row left running does not land on the next server's row
quiesce() { local a b i; a=$(cpu); for i in $(seq 25); do sleep 0.2; b=$(cpu); [ "$a" = "$b" ] && return; a=$b; done; }
arr=($SV); k=${#arr[@]}
for r in $(seq $ROUNDS); do
  for row in $ROWS; do
    t=${row%-P*}; P=1; [[ $row == *-P* ]] && P=${row#*-P}
    for j in $(seq 0 $((k-1))); do
      s=${arr[$(( (j + r) % k ))]}
      quiesce
      case $row in
      tx|pipe) line=$($RESPMIX -addr 127.0.0.1:${s#*:} -clients 40 -keys $KEYS -ops ${MIXOPS:-100000} -mode $row 2>&1 | tail -1);;
      *) line=$(redis-benchmark -p ${s#*:} -c 40 -d 100 -r $KEYS -n $N -P $P -t $t --csv 2>/dev/null | tail -1);;
      esac
      echo "$r $row ${s%%:*} $line" >> $OUT
    done
  done
done
quiesce
for p in $(pgrep -f 'resp-port 6391'); do echo "cpuA $(awk '{print $14+$15}' /proc/$p/stat)"; done > $OUT.cpu
for p in $(pgrep -f 'resp-port 6392'); do echo "cpuB $(awk '{print $14+$15}' /proc/$p/stat)"; done >> $OUT.cpu
pkill -f "resp-port 639"; pkill -f "redis-server 127.0.0.1:639"
wait 2>/dev/null
