#!/bin/sh
# skiplist_table.sh [N_KEYS [MAX_THREADS [REPS]]] -- runs bench_skiplist (mantis,
# mutex_sl, hash_ceiling) and the Rust crossbeam-skiplist peer
# (bench/peers/crossbeam) REPS times each, interleaved, on the same machine,
# and prints the median ns/op and Mops/s of every (row, system, threads) with
# the ratios the issue sets goals on:
#   vs_crossbeam  crossbeam ns/op / mantis ns/op   (> 1: mantis faster)
#   vs_mutex      mantis Mops/s / mutex_sl Mops/s  (goal >= 2 at 2 threads)
#   vs_hash       mantis ns/op / hash_ceiling ns/op (goal <= 2 for gets)
# Raw runs are kept in $OUT (default build/bench/skiplist-N.raw).
# Run from c-core/ after `make build/bench/bench_skiplist` and
# `cargo build --release` in bench/peers/crossbeam.  Not a test.
set -eu
n=${1:-1000000}; t=${2:-2}; reps=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
peer="$here/../bench/peers/crossbeam/target/release/crossbeam-peer"
out=${OUT:-$here/build/bench/skiplist-$n.raw}
: > "$out"
for r in $(seq "$reps"); do
	echo "# rep $r, load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"
	"$here/build/bench/bench_skiplist" "$n" "$t" >> "$out"
	if [ -x "$peer" ]; then "$peer" "$n" "$t" >> "$out"; fi
done
awk '
	/^#/ { next }
	$1 == "rss_per_key" { rss[$2] = rss[$2] " " $4; next }
	NF == 5 { k = $1 SUBSEP $2 SUBSEP $3; ns[k] = ns[k] " " $4; mo[k] = mo[k] " " $5;
		  rows[$1] = 1; thr[$3] = 1 }
	function med(s,   a, n, i, j, x) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
		return n ? a[int((n + 1) / 2)] : ""
	}
	END {
		split("seq_insert rand_insert get_hit get_miss scan100 scan_all mixed_90_10", order, " ")
		split("mantis crossbeam mutex_sl hash_ceiling", sys, " ")
		printf "%-12s %-2s", "row", "T"
		for (s = 1; s <= 4; s++) printf " %14s", sys[s] " ns"
		printf " %12s %9s %8s\n", "vs_crossbeam", "vs_mutex", "vs_hash"
		for (o = 1; o <= 7; o++) for (t = 1; t <= 64; t++) {
			r = order[o]; if (!((r SUBSEP "mantis" SUBSEP t) in ns)) continue
			printf "%-12s %-2d", r, t
			for (s = 1; s <= 4; s++) { k = r SUBSEP sys[s] SUBSEP t
				printf " %14s", (k in ns) ? sprintf("%.1f", med(ns[k])) : "-" }
			m = med(ns[r SUBSEP "mantis" SUBSEP t])
			k = r SUBSEP "crossbeam" SUBSEP t; printf " %12s", (k in ns) ? sprintf("%.2fx", med(ns[k]) / m) : "-"
			k = r SUBSEP "mutex_sl" SUBSEP t; printf " %9s", (k in mo) ? sprintf("%.2fx", med(mo[r SUBSEP "mantis" SUBSEP t]) / med(mo[k])) : "-"
			k = r SUBSEP "hash_ceiling" SUBSEP t; printf " %8s", (k in ns) ? sprintf("%.2fx", m / med(ns[k])) : "-"
			printf "\n"
		}
		for (s = 1; s <= 4; s++) if (sys[s] in rss) printf "peak RSS per key, %s: %.1f B\n", sys[s], med(rss[sys[s]])
	}' "$out"
