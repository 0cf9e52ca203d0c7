//! Peer benchmark: crossbeam-skiplist's SkipMap on exactly the workload of
//! c-core/bench/bench_skiplist.c (same keys, same random permutation, same
//! rows, same output format), so the two tables can be put side by side.
//!
//! Usage: crossbeam-peer [N_KEYS [MAX_THREADS]]   (defaults 1000000, 2)

use crossbeam_skiplist::SkipMap;
use std::sync::Barrier;
use std::time::Instant;

const KLEN: usize = 16;
const VLEN: usize = 100;
type Key = [u8; KLEN];

fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// Present keys are 2i, absent keys 2i+1, as 'k' + 15 hex digits.
fn make_key(i: u64, miss: bool) -> Key {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut k = [0u8; KLEN];
    k[0] = b'k';
    let mut v = 2 * i + miss as u64;
    for j in (1..KLEN).rev() {
        k[j] = HEX[(v & 15) as usize];
        v >>= 4;
    }
    k
}

fn make_perm(n: usize) -> Vec<u64> {
    let mut p: Vec<u64> = (0..n as u64).collect();
    let mut s = 42u64;
    for i in (1..n).rev() {
        s = mix64(s);
        let j = (s % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

#[derive(Clone, Copy, PartialEq)]
enum Row {
    SeqInsert,
    RandInsert,
    GetHit,
    GetMiss,
    Scan100,
    Mixed,
}

fn row_name(r: Row) -> &'static str {
    match r {
        Row::SeqInsert => "seq_insert",
        Row::RandInsert => "rand_insert",
        Row::GetHit => "get_hit",
        Row::GetMiss => "get_miss",
        Row::Scan100 => "scan100",
        Row::Mixed => "mixed_90_10",
    }
}

/// Runs one thread's share of a row; returns (found, start, end), timed by
/// the thread itself as bench_skiplist.c does.
fn job(map: &SkipMap<Key, Vec<u8>>, row: Row, t: usize, nt: usize, n: usize, perm: &[u64],
       bar: &Barrier) -> (u64, Instant, Instant) {
    let lo = n * t / nt;
    let hi = n * (t + 1) / nt;
    let value = vec![b'v'; VLEN];
    let mut out = [0u8; VLEN];
    let mut rng = mix64(t as u64 + 1000);
    let mut found = 0u64;
    bar.wait();
    let t0 = Instant::now();
    match row {
        Row::SeqInsert => {
            for i in lo..hi {
                map.insert(make_key(i as u64, false), value.clone());
            }
        }
        Row::RandInsert => {
            for i in lo..hi {
                map.insert(make_key(perm[i], false), value.clone());
            }
        }
        Row::GetHit | Row::GetMiss => {
            for _ in lo..hi {
                rng = mix64(rng);
                let k = make_key(rng % n as u64, row == Row::GetMiss);
                if let Some(e) = map.get(&k) {
                    out.copy_from_slice(e.value());
                    found += 1;
                }
            }
        }
        Row::Scan100 => {
            let mut i = lo;
            while i < hi {
                rng = mix64(rng);
                let k = make_key(rng % n as u64, false);
                let mut sink = 0u64;
                for e in map.range(k..).take(100) {
                    sink += e.value()[0] as u64 + e.key()[KLEN - 1] as u64;
                    found += 1;
                }
                std::hint::black_box(sink);
                i += 100;
            }
        }
        Row::Mixed => {
            for _ in lo..hi {
                rng = mix64(rng);
                let k = make_key(rng % n as u64, false);
                if (rng >> 40) % 10 == 0 {
                    map.insert(k, value.clone());
                } else if let Some(e) = map.get(&k) {
                    out.copy_from_slice(e.value());
                    found += 1;
                }
            }
        }
    }
    let t1 = Instant::now();
    std::hint::black_box(&out);
    (found, t0, t1)
}

fn run_row(map: &SkipMap<Key, Vec<u8>>, row: Row, nt: usize, n: usize, perm: &[u64]) {
    let bar = Barrier::new(nt + 1);
    let (el, found) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..nt)
            .map(|t| {
                let bar = &bar;
                s.spawn(move || job(map, row, t, nt, n, perm, bar))
            })
            .collect();
        bar.wait();
        // Elapsed = first worker start to last worker end, timed by the
        // workers (as in bench_skiplist.c): a main thread descheduled at
        // the barrier on a busy machine would otherwise start the clock
        // late and credit the peer with time it did not measure.
        let rs: Vec<(u64, Instant, Instant)> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let t0 = rs.iter().map(|r| r.1).min().unwrap();
        let t1 = rs.iter().map(|r| r.2).max().unwrap();
        ((t1 - t0).as_secs_f64(), rs.iter().map(|r| r.0).sum::<u64>())
    });
    let ops = if row == Row::Scan100 { n / 100 } else { n };
    if (row == Row::GetHit && found != n as u64) || (row == Row::GetMiss && found != 0) {
        eprintln!("crossbeam-peer: {} found {} of {}", row_name(row), found, n);
    }
    println!("{:<12} {:<13} {} {:10.1} {:10.2}", row_name(row), "crossbeam", nt,
             el * 1e9 * nt as f64 / ops as f64, ops as f64 / el / 1e6);
}

fn rss_kb() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let rss: i64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    rss * 4 // 4 KiB pages on the machines we bench on
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let max_threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let perm = make_perm(n);
    println!("# crossbeam-peer: {} keys, {}-byte keys, {}-byte values", n, KLEN, VLEN);
    let rss0 = rss_kb();
    let mut peak = 0i64;
    for nt in 1..=max_threads {
        let m = SkipMap::new();
        run_row(&m, Row::SeqInsert, nt, n, &perm);
        drop(m);
        let m = SkipMap::new();
        run_row(&m, Row::RandInsert, nt, n, &perm);
        peak = peak.max(rss_kb());
        for row in [Row::GetHit, Row::GetMiss, Row::Scan100, Row::Mixed] {
            run_row(&m, row, nt, n, &perm);
        }
    }
    println!("{:<12} {:<13} - {:10.1} bytes/key (RSS of a full map)", "rss_per_key", "crossbeam",
             (peak - rss0) as f64 * 1024.0 / n as f64);
}
