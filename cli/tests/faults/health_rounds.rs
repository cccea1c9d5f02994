//! `podperf health` over many rounds on the netns testbed: nothing named on a healthy cluster
//! in any round (with the RTT spread that the *slow* and *lossy* thresholds must stay above), and
//! how many consecutive rounds after a real fault name the node at fault (the BENCHMARKS.md
//! figure "rounds from fault to finding"). Short by default (5 healthy rounds, 2 per fault);
//! `PODPERF_LONG_TESTS=1`: 50 and 10. Needs root and `ip netns` (skipped, with a message,
//! otherwise).
//!
//! ```sh
//! PODPERF_LONG_TESTS=1 cargo test -p podperf-cli --test faults health_rounds -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use podperf_protocol::health::{SweepGrid, SweepPath};
use podperf_report::{SLOW_EXCESS_MS, SLOW_RATIO};

use crate::harness::long;
use crate::health::{findings, health};
use crate::testbed::{testbed_usable, Fault, Testbed};

/// Echo requests per target and their spacing, as in [`crate::health`].
const COUNT: &str = "5";
const INTERVAL_MS: &str = "20";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The largest (ratio, excess ms) of a node's median cell RTT over the median of the class's
/// cells without it, per path class: what `podperf health` compares with [`SLOW_RATIO`] and
/// [`SLOW_EXCESS_MS`] to name a node *slow*.
fn slow_margin(grid: &SweepGrid) -> BTreeMap<SweepPath, (f64, f64)> {
    let mut out: BTreeMap<SweepPath, (f64, f64)> = BTreeMap::new();
    let nodes: BTreeSet<&str> = grid.cells.iter().map(|c| c.src_node.as_str()).collect();
    let paths: BTreeSet<SweepPath> = grid.cells.iter().map(|c| c.path).collect();
    for path in paths {
        for n in &nodes {
            let (mine, rest): (Vec<_>, Vec<_>) = grid
                .cells
                .iter()
                .filter(|c| c.path == path)
                .filter_map(|c| Some((c.src_node == *n || c.dst_node == *n, c.rtt_avg_ms?)))
                .partition(|(touches, _)| *touches);
            if mine.is_empty() || rest.is_empty() {
                continue;
            }
            let value = median(mine.into_iter().map(|(_, r)| r).collect());
            let baseline = median(rest.into_iter().map(|(_, r)| r).collect());
            let e = out.entry(path).or_insert((0.0, f64::MIN));
            e.0 = e.0.max(value / baseline);
            e.1 = e.1.max(value - baseline);
        }
    }
    out
}

/// A healthy 4-node testbed, round after round: every sweep round (`podperf sweep`, evaluated
/// by `podperf_report::health`, the function `podperf health` runs on the same grid) names
/// nothing. Prints each path class's spread of cell RTTs over all rounds and the worst
/// node-vs-rest ratio the *slow* rule saw, so the margin to its thresholds can be judged.
#[test]
fn healthy_testbed_names_nothing_over_many_rounds() {
    if !testbed_usable() {
        return;
    }
    let rounds = if long() { 50 } else { 5 };
    let tb = Testbed::up(4, 1, 'q');
    let all = [
        "host-0", "host-1", "host-2", "host-3", "pod-0-0", "pod-1-0", "pod-2-0", "pod-3-0",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));
    let mut rtts: BTreeMap<SweepPath, Vec<f64>> = BTreeMap::new();
    let mut margin: BTreeMap<SweepPath, (f64, f64)> = BTreeMap::new();
    let (mut sent, mut received, mut worst_round_lost) = (0, 0, 0);
    for round in 1..=rounds {
        let v = tb.podperf(&["sweep", "--count", COUNT, "--interval-ms", INTERVAL_MS]);
        let grid: SweepGrid = serde_json::from_value(v.clone()).expect("a sweep grid");
        assert_eq!(grid.failed, [], "round {round}: {v}");
        // 8 workers, each toward the 7 others.
        let pairs: u32 = grid.cells.iter().map(|c| c.pairs).sum();
        assert_eq!(pairs, 8 * 7, "round {round}: {v}");
        let report = podperf_report::health(&grid);
        assert!(
            report.healthy && report.findings.is_empty() && report.nodes == 4,
            "round {round} named something on the healthy testbed: {}\n{v}",
            serde_json::to_string(&report).unwrap()
        );
        let (s, r) = grid
            .cells
            .iter()
            .fold((0, 0), |(s, r), c| (s + c.sent, r + c.received));
        (sent, received) = (sent + s, received + r);
        worst_round_lost = worst_round_lost.max(s - r);
        for c in &grid.cells {
            if let Some(rtt) = c.rtt_avg_ms {
                rtts.entry(c.path).or_default().push(rtt);
            }
        }
        for (path, (ratio, excess)) in slow_margin(&grid) {
            let e = margin.entry(path).or_insert((0.0, f64::MIN));
            *e = (e.0.max(ratio), e.1.max(excess));
        }
    }
    println!(
        "FIGURES healthy testbed (4 nodes × 1 pod): {rounds} rounds, no finding; {} of {sent} \
         echo requests lost (at most {worst_round_lost} in one round)",
        sent - received
    );
    for (path, mut v) in rtts {
        v.sort_by(f64::total_cmp);
        let (ratio, excess) = margin.get(&path).copied().unwrap_or_default();
        println!(
            "FIGURES healthy {:<15} cell RTT ms: min {:.3} p50 {:.3} p90 {:.3} max {:.3} ({} \
             cells); worst node vs rest: {ratio:.2}× and {excess:+.3} ms (slow needs \
             {SLOW_RATIO}× and +{SLOW_EXCESS_MS} ms)",
            path.as_str(),
            v[0],
            quantile(&v, 0.5),
            quantile(&v, 0.9),
            v[v.len() - 1],
            v.len()
        );
    }
}

/// Each fault on the 3-node testbed, then `podperf health` round after round: how many of the
/// rounds name the node correctly, and the first that does.
///
/// - nftables faults (30 % random drop, the one-way blocks) are named by every round: the
///   one-way blocks by construction (every request of the blocked direction is dropped), the
///   drop with a miss chance of ≈ 7·10⁻⁶ per round (BENCHMARKS.md) — so every round must.
/// - A link down is named (`isolated`) by the first round, whose sweeps from the cut node end
///   `worker_lost`; once the node's workers have left the view a round no longer includes the
///   node, and `podperf health` names it `gone` (no live worker, but its workers ran jobs within
///   `--gone-max-age`): every round names node 1, `isolated` until it is `gone`.
#[test]
fn rounds_from_fault_to_finding() {
    if !testbed_usable() {
        return;
    }
    let rounds = if long() { 10 } else { 2 };
    let tb = Testbed::up(3, 1, 'r');
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    let faults = [
        (Fault::LinkDown(1), "isolated", "node-1"),
        (
            Fault::RandomDrop {
                node: 2,
                percent: 30,
            },
            "lossy",
            "node-2",
        ),
        (Fault::NoRequestsFrom(2), "cannot_send", "node-2"),
        (Fault::NoRequestsTo(2), "unreachable", "node-2"),
    ];
    for (fault, kind, node) in faults {
        tb.wait_pods(&all, Duration::from_secs(60));
        let (code, before) = health(&tb, COUNT);
        assert_eq!(code, Some(0), "before {fault:?}: {before}");
        tb.inject(fault);
        let mut seen: Vec<(bool, bool)> = Vec::new();
        for round in 1..=rounds {
            let (code, report) = health(&tb, COUNT);
            let named = findings(&report) == [(kind.to_string(), node.to_string(), None)];
            let gone = findings(&report) == [("gone".to_string(), node.to_string(), None)];
            assert_eq!(code, Some(3), "{fault:?} round {round}: {report}");
            match fault {
                // isolated while its workers are in the view, then gone (and stays gone).
                Fault::LinkDown(_) => assert!(
                    named && seen.iter().all(|(_, g)| !*g) || gone && round > 1,
                    "{fault:?} round {round}: {report}"
                ),
                _ => assert!(named, "{fault:?} round {round}: {report}"),
            }
            seen.push((named || gone, gone));
        }
        tb.clear(fault);
        let first = seen.iter().position(|(n, _)| *n).map(|i| i + 1);
        let named = seen.iter().filter(|(n, _)| *n).count();
        let gone = seen.iter().filter(|(_, g)| *g).count();
        println!(
            "FIGURES rounds from fault to finding: {fault:?} → `{kind} {node}` (or `gone`) named \
             by {named} of {rounds} rounds (first: round {}), of them `gone`: {gone}",
            first.map_or("none".to_string(), |r| r.to_string())
        );
    }
}
