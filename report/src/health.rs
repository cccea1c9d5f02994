//! `podperf health`: names the node at fault from a sweep round's grid (Madalert-style).
//!
//! - A node pair is *down* when none of its requests got a reply.
//! - A node whose pairs to **most** (more than half, at least two) other nodes are down *cannot
//!   send*; one most others cannot reach is *unreachable*; both, *isolated*. A down pair neither
//!   of whose nodes is named is named on its own (`unreachable` with the `peer` that cannot
//!   reach it). With two nodes a fault cannot be pinned on either: only pairs are named.
//! - *lossy*: the node's pairs (both directions) lose far more than the pairs without it
//!   ([`LOSSY_EXCESS_PERCENT`] points and twice as much, at least [`LOSSY_MIN_LOST`] packets).
//! - *slow*: the median RTT of the node's pairs of a path class is [`SLOW_RATIO`] times the median
//!   of the class's pairs without it, and [`SLOW_EXCESS_MS`] more.
//!
//! - *slow* in bandwidth (when bandwidth results are given): per path class and protocol, the
//!   median bandwidth of the pairs a node **sends** on (or, separately, **receives** on) is
//!   [`BANDWIDTH_SLOW_RATIO`] times below the median of the class's pairs without it. Directions
//!   are judged apart because a cap (e.g. `tc … tbf` on an interface) shapes one direction only.
//!
//! Comparing a node with the pairs *without* it (leave-one-out) keeps one bad node from moving
//! the baseline it is judged by, which matters in small clusters where it touches most pairs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use podperf_protocol::health::{
    Finding, FindingKind, GridCell, HealthReport, PairBandwidth, SweepGrid, SweepPath,
};
use podperf_protocol::job::TransportProtocol;

/// Loss (percentage points) a node must show above the rest to be *lossy*.
pub const LOSSY_EXCESS_PERCENT: f64 = 5.0;
/// Fewest lost packets that make a node *lossy* (one lost reply is noise).
pub const LOSSY_MIN_LOST: u32 = 3;
/// How many times the rest's median RTT a node must show to be *slow*.
pub const SLOW_RATIO: f64 = 3.0;
/// And by how much at least (scheduling noise on an idle path is well below it).
pub const SLOW_EXCESS_MS: f64 = 1.0;
/// How many times below the rest's median bandwidth a node's must be to be *slow* (a healthy
/// cluster's pairs of one path class stay well within it; a link capped or negotiated down falls
/// far outside).
pub const BANDWIDTH_SLOW_RATIO: f64 = 3.0;
/// Above this many nodes the slow baseline is the class median with the node in (leave-one-out
/// would cost nodes × pairs).
const LEAVE_ONE_OUT_MAX_NODES: usize = 200;

type Pairs = BTreeMap<(String, String), (u32, u32)>;
/// An entry of [`Pairs`]: (src, dst) → (sent, received).
type Pair<'a> = (&'a (String, String), &'a (u32, u32));

/// The findings of one sweep round.
pub fn health(grid: &SweepGrid) -> HealthReport {
    health_with_bandwidth(grid, &[])
}

/// The findings of one sweep round and of the latest bandwidth per node pair, path class and
/// protocol (see [`PairBandwidth`]; empty: the sweep round's findings only).
pub fn health_with_bandwidth(grid: &SweepGrid, bandwidth: &[PairBandwidth]) -> HealthReport {
    let pairs = node_pairs(&grid.cells);
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    for c in &grid.cells {
        nodes.insert(c.src_node.clone());
        nodes.insert(c.dst_node.clone());
    }
    let sources: BTreeSet<&str> = pairs.keys().map(|(s, _)| s.as_str()).collect();
    let silent: BTreeSet<&str> = grid
        .failed
        .iter()
        .map(|f| f.node.as_str())
        .filter(|n| *n != "?" && !sources.contains(n))
        .collect();
    nodes.extend(silent.iter().map(|n| n.to_string()));
    for b in bandwidth {
        nodes.insert(b.src_node.clone());
        nodes.insert(b.dst_node.clone());
    }
    let mut findings = reachability(&nodes, &pairs, &silent);
    let named: BTreeSet<String> = findings.iter().map(|f| f.node.clone()).collect();
    findings.extend(down_pairs(&pairs, &named));
    findings.extend(lossy(&nodes, &pairs, &named));
    findings.extend(slow(&nodes, &grid.cells, &named));
    findings.extend(slow_bandwidth(&nodes, bandwidth, &named));
    sort(&mut findings);
    HealthReport {
        healthy: findings.is_empty(),
        nodes: nodes.len() as u32,
        bandwidth_pairs: bandwidth.len() as u32,
        bandwidth_unavailable: None,
        findings,
    }
}

/// (sent, received) per ordered pair of distinct nodes, over every path class.
fn node_pairs(cells: &[GridCell]) -> Pairs {
    let mut pairs = Pairs::new();
    for c in cells.iter().filter(|c| c.src_node != c.dst_node) {
        let e = pairs
            .entry((c.src_node.clone(), c.dst_node.clone()))
            .or_default();
        e.0 += c.sent;
        e.1 += c.received;
    }
    pairs
}

fn is_down(&(sent, received): &(u32, u32)) -> bool {
    sent > 0 && received == 0
}

/// More than half of at least two.
fn most(down: usize, total: usize) -> bool {
    total >= 2 && 2 * down > total
}

fn reachability(nodes: &BTreeSet<String>, pairs: &Pairs, silent: &BTreeSet<&str>) -> Vec<Finding> {
    // (down, total) of each node's pairs as a source and as a destination: one pass.
    let mut from: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut to: HashMap<&str, (usize, usize)> = HashMap::new();
    for ((s, d), v) in pairs {
        let down = usize::from(is_down(v));
        for e in [from.entry(s).or_default(), to.entry(d).or_default()] {
            e.0 += down;
            e.1 += 1;
        }
    }
    let mut out = Vec::new();
    for n in nodes {
        let (mut out_down, mut out_total) = from.get(n.as_str()).copied().unwrap_or_default();
        if silent.contains(n.as_str()) {
            // Its sweeps brought back nothing: it reached nobody.
            (out_down, out_total) = (nodes.len() - 1, nodes.len() - 1);
        }
        let (in_down, in_total) = to.get(n.as_str()).copied().unwrap_or_default();
        let (cannot_send, unreachable) = (most(out_down, out_total), most(in_down, in_total));
        let (kind, down, total, what) = match (cannot_send, unreachable) {
            (true, true) => (
                FindingKind::Isolated,
                out_down + in_down,
                out_total + in_total,
                "reaches and is reached by",
            ),
            (true, false) => (FindingKind::CannotSend, out_down, out_total, "reaches"),
            (false, true) => (FindingKind::Unreachable, in_down, in_total, "is reached by"),
            (false, false) => continue,
        };
        let reached = total - down;
        out.push(Finding {
            finding: kind,
            node: n.clone(),
            peer: None,
            path: None,
            protocol: None,
            value: 100.0 * down as f64 / total as f64,
            baseline: 0.0,
            message: format!(
                "{n} {}: {what} {reached} of {total} node pairs",
                kind.as_str().replace('_', " ")
            ),
        });
    }
    out
}

fn down_pairs(pairs: &Pairs, named: &BTreeSet<String>) -> Vec<Finding> {
    pairs
        .iter()
        .filter(|((s, d), v)| is_down(v) && !named.contains(s) && !named.contains(d))
        .map(|((s, d), _)| Finding {
            finding: FindingKind::Unreachable,
            node: d.clone(),
            peer: Some(s.clone()),
            path: None,
            protocol: None,
            value: 100.0,
            baseline: 0.0,
            message: format!("{d} unreachable from {s}"),
        })
        .collect()
}

fn lossy(nodes: &BTreeSet<String>, pairs: &Pairs, named: &BTreeSet<String>) -> Vec<Finding> {
    let live: Vec<Pair> = pairs
        .iter()
        .filter(|((s, d), v)| !is_down(v) && !named.contains(s) && !named.contains(d))
        .collect();
    let (sent, lost) = sum(live.iter().map(|(_, v)| **v));
    // (sent, lost) of the pairs each node is part of: one pass (distinct nodes: counted once
    // for each end).
    let mut per_node: HashMap<&str, (u32, u32)> = HashMap::new();
    for ((s, d), v) in &live {
        let (sent, lost) = sum(std::iter::once(**v));
        for n in [s.as_str(), d.as_str()] {
            let e = per_node.entry(n).or_default();
            e.0 += sent;
            e.1 += lost;
        }
    }
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| !named.contains(*n)) {
        let (n_sent, n_lost) = per_node.get(n.as_str()).copied().unwrap_or_default();
        let (r_sent, r_lost) = (sent - n_sent, lost - n_lost);
        if n_sent == 0 || r_sent == 0 || n_lost < LOSSY_MIN_LOST {
            continue;
        }
        let value = 100.0 * f64::from(n_lost) / f64::from(n_sent);
        let baseline = 100.0 * f64::from(r_lost) / f64::from(r_sent);
        if value >= baseline + LOSSY_EXCESS_PERCENT && value >= 2.0 * baseline {
            out.push(Finding {
                finding: FindingKind::Lossy,
                node: n.clone(),
                peer: None,
                path: None,
                protocol: None,
                value,
                baseline,
                message: format!("{n} lossy: {value:.1} % loss vs {baseline:.1} % elsewhere"),
            });
        }
    }
    out
}

/// (sent, lost) summed.
fn sum(v: impl Iterator<Item = (u32, u32)>) -> (u32, u32) {
    v.fold((0, 0), |(s, l), (sent, rcv)| {
        (s + sent, l + sent.saturating_sub(rcv))
    })
}

fn slow(nodes: &BTreeSet<String>, cells: &[GridCell], named: &BTreeSet<String>) -> Vec<Finding> {
    let mut worst: BTreeMap<String, Finding> = BTreeMap::new();
    let paths: BTreeSet<_> = cells.iter().map(|c| c.path).collect();
    for path in paths {
        let class: Vec<(&GridCell, f64)> = cells
            .iter()
            .filter(|c| {
                c.path == path && !named.contains(&c.src_node) && !named.contains(&c.dst_node)
            })
            .filter_map(|c| Some((c, c.rtt_avg_ms?)))
            .collect();
        let everyone = median(class.iter().map(|(_, r)| *r).collect());
        // The RTTs of the cells each node is an end of: one pass.
        let mut mine: HashMap<&str, Vec<f64>> = HashMap::new();
        for (c, r) in &class {
            mine.entry(c.src_node.as_str()).or_default().push(*r);
            if c.dst_node != c.src_node {
                mine.entry(c.dst_node.as_str()).or_default().push(*r);
            }
        }
        for n in nodes.iter().filter(|n| !named.contains(*n)) {
            let touches = |c: &GridCell| c.src_node == *n || c.dst_node == *n;
            let Some(value) = median(mine.remove(n.as_str()).unwrap_or_default()) else {
                continue;
            };
            let baseline = rest_median(
                nodes.len(),
                everyone,
                &class,
                |(c, _)| touches(c),
                |(_, r)| *r,
            );
            let Some(baseline) = baseline else { continue };
            if value < SLOW_RATIO * baseline || value - baseline < SLOW_EXCESS_MS {
                continue;
            }
            let f = Finding {
                finding: FindingKind::Slow,
                node: n.clone(),
                peer: None,
                path: Some(path),
                protocol: None,
                value,
                baseline,
                message: format!(
                    "{n} slow: {} RTT {value:.2} ms vs {baseline:.2} ms median",
                    path.as_str()
                ),
            };
            let ratio = |f: &Finding| f.value / f.baseline.max(f64::MIN_POSITIVE);
            if worst.get(n).is_none_or(|w| ratio(&f) > ratio(w)) {
                worst.insert(n.clone(), f);
            }
        }
    }
    worst.into_values().collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// *slow* in bandwidth: each node's worst (lowest against its baseline) class and direction.
fn slow_bandwidth(
    nodes: &BTreeSet<String>,
    bandwidth: &[PairBandwidth],
    named: &BTreeSet<String>,
) -> Vec<Finding> {
    let mut worst: BTreeMap<String, Finding> = BTreeMap::new();
    let mut classes: BTreeMap<(SweepPath, &str), Vec<&PairBandwidth>> = BTreeMap::new();
    for b in bandwidth
        .iter()
        .filter(|b| !named.contains(&b.src_node) && !named.contains(&b.dst_node))
        .filter(|b| b.bits_per_second.is_finite() && b.bits_per_second >= 0.0)
    {
        classes
            .entry((b.path, protocol_name(b.protocol)))
            .or_default()
            .push(b);
    }
    for ((path, proto), class) in &classes {
        let everyone = median(class.iter().map(|b| b.bits_per_second).collect());
        for n in nodes.iter().filter(|n| !named.contains(*n)) {
            let baseline = rest_median(
                nodes.len(),
                everyone,
                class,
                |b| b.src_node == *n || b.dst_node == *n,
                |b| b.bits_per_second,
            );
            let Some(baseline) = baseline.filter(|b| *b > 0.0) else {
                continue;
            };
            for (sender, role) in [(true, "sending"), (false, "receiving")] {
                let mine = class
                    .iter()
                    .filter(|b| (if sender { &b.src_node } else { &b.dst_node }) == n)
                    .map(|b| b.bits_per_second)
                    .collect();
                let Some(value) = median(mine) else { continue };
                if value * BANDWIDTH_SLOW_RATIO > baseline {
                    continue;
                }
                let protocol = class[0].protocol;
                let f = Finding {
                    finding: FindingKind::Slow,
                    node: n.clone(),
                    peer: None,
                    path: Some(*path),
                    protocol: Some(protocol),
                    value,
                    baseline,
                    message: format!(
                        "{n} slow: {} {proto} bandwidth {role} {} vs {} median",
                        path.as_str(),
                        bits_per_second(value),
                        bits_per_second(baseline)
                    ),
                };
                if worst
                    .get(n)
                    .is_none_or(|w| f.value / f.baseline < w.value / w.baseline)
                {
                    worst.insert(n.clone(), f);
                }
            }
        }
    }
    worst.into_values().collect()
}

fn protocol_name(p: TransportProtocol) -> &'static str {
    match p {
        TransportProtocol::Tcp => "TCP",
        TransportProtocol::Udp => "UDP",
    }
}

/// `95.0 Mbit/s`, `9.41 Gbit/s`: three significant digits.
pub fn bits_per_second(v: f64) -> String {
    let (v, unit) = if v >= 1e9 {
        (v / 1e9, "Gbit/s")
    } else if v >= 1e6 {
        (v / 1e6, "Mbit/s")
    } else if v >= 1e3 {
        (v / 1e3, "kbit/s")
    } else {
        (v, "bit/s")
    };
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

/// Adds a `gone` finding for each node in `last_seen` (its workers' newest job, ms since the
/// epoch, within the look-back) that is not among `live` (the nodes with a live worker now): a
/// node cut off longer than the liveness TTL has left the round, and would otherwise not be
/// named at all.
pub fn add_gone(
    report: &mut HealthReport,
    last_seen: &BTreeMap<String, u64>,
    live: &BTreeSet<String>,
    now_ms: u64,
) {
    let named: BTreeSet<String> = report.findings.iter().map(|f| f.node.clone()).collect();
    let mut added = 0;
    for (node, &at) in last_seen {
        if live.contains(node) || named.contains(node) {
            continue;
        }
        let ago_s = now_ms.saturating_sub(at) as f64 / 1000.0;
        report.findings.push(Finding {
            finding: FindingKind::Gone,
            node: node.clone(),
            peer: None,
            path: None,
            protocol: None,
            value: ago_s,
            baseline: 0.0,
            message: format!(
                "{node} gone: no live worker; its workers ran jobs until {} ago",
                ago(ago_s)
            ),
        });
        added += 1;
    }
    sort(&mut report.findings);
    report.nodes += added;
    report.healthy = report.findings.is_empty();
}

/// The median of `value` over the `items` that do not `touch` the node judged — or, above
/// [`LEAVE_ONE_OUT_MAX_NODES`] nodes, `everyone`'s median (one node barely moves it, and leaving
/// each node out in turn would cost a pass per node).
fn rest_median<T>(
    nodes: usize,
    everyone: Option<f64>,
    items: &[T],
    touches: impl Fn(&T) -> bool,
    value: impl Fn(&T) -> f64,
) -> Option<f64> {
    if nodes > LEAVE_ONE_OUT_MAX_NODES {
        return everyone;
    }
    median(items.iter().filter(|i| !touches(i)).map(value).collect())
}

/// Findings in report order: by node, finding, peer.
fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| (&a.node, a.finding, &a.peer).cmp(&(&b.node, b.finding, &b.peer)));
}

/// `42 s`, `3.5 min`, `2.0 h`.
fn ago(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
