# resp-ab.py OUT: medians per row and subject of a resp-ab.sh run (rps,
# p99 and max ms; for the respmix rows tx and pipe, which report no
# maximum, p99.9 in its place), with the ratios B/A, B/R (and B/F with
# AOF set).
import sys, re, statistics as st, collections
# respmix's line: "tx: 20000 ops in 0.50s, 40275/s, p50 882.7µs, p99 2.36ms, p99.9 9.79ms"
MIX = re.compile(r'[\w-]+: \d+ ops in [\d.]+s, ([\d.]+)/s, p50 \S+, p99 ([\d.]+)(µs|ms|s), p99\.9 ([\d.]+)(µs|ms|s)')
MS = {"µs": 1e-3, "ms": 1.0, "s": 1e3}
d = collections.defaultdict(lambda: collections.defaultdict(list))
order = []; subs = []
for line in open(sys.argv[1]):
    parts = line.split(' ', 3)
    if len(parts) < 4: continue
    r, row, s, csv = parts
    s = {"1":"A","2":"B","3":"C"}.get(s, s)
    m = MIX.match(csv)
    if m:
        fig = (float(m.group(1)), float(m.group(2)) * MS[m.group(3)], float(m.group(4)) * MS[m.group(5)])
    else:
        f = [x.strip('"') for x in csv.strip().split('","')]
        if len(f) < 8: continue
        fig = (float(f[1]), float(f[6]), float(f[7]))
    if row not in order: order.append(row)
    if s not in subs: subs.append(s)
    d[row][s].append(fig)
subs.sort()
print("%-9s " % "row" + " ".join("%9s" % (s+" rps") for s in subs) + "   B/A   B/R  " + ("B/F  " if 'F' in subs else "") + "| " + " ".join("%5s" % ("p99"+s) for s in subs) + " | " + " ".join("%5s" % ("max"+s) for s in subs))
for row in order:
    m = {s: [st.median(x[i] for x in v) for i in range(3)] for s, v in d[row].items()}
    g = lambda s, i: m.get(s, [0,0,0])[i]
    rat = lambda a, b: g(a,0)/g(b,0) if g(b,0) else 0
    print("%-9s " % row + " ".join("%9.0f" % g(s,0) for s in subs) + " %5.2f %5.2f " % (rat('B','A'), rat('B','R')) + ("%5.2f " % rat('B','F') if 'F' in subs else "") + "| " + " ".join("%5.2f" % g(s,1) for s in subs) + " | " + " ".join("%5.1f" % g(s,2) for s in subs))
