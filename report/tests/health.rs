//! `podperf health`'s classification on synthetic sweep rounds: each fault named once, with the
//! right name, and nothing named on a healthy cluster.

use podperf_protocol::health::{
    FailedSweep, FindingKind, GridCell, PairBandwidth, SweepGrid, SweepPath,
};
use podperf_protocol::job::TransportProtocol;
use podperf_report::{add_gone, bits_per_second, health, health_with_bandwidth, loss_percent};

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

/// A full mesh of `nodes` (pod_cross_node, 10 requests per pair), each pair's (received, rtt)
/// given by `link(src, dst)`.
fn mesh(nodes: &[&str], link: impl Fn(&str, &str) -> (u32, f64)) -> SweepGrid {
    let mut cells = Vec::new();
    for s in nodes {
        for d in nodes.iter().filter(|d| *d != s) {
            let (received, rtt) = link(s, d);
            cells.push(GridCell {
                path: SweepPath::PodCrossNode,
                src_node: s.to_string(),
                dst_node: d.to_string(),
                pairs: 1,
                sent: 10,
                received,
                loss_percent: loss_percent(10, received),
                rtt_min_ms: (received > 0).then_some(rtt),
                rtt_avg_ms: (received > 0).then_some(rtt),
                rtt_max_ms: (received > 0).then_some(rtt),
            });
        }
    }
    SweepGrid {
        sweeps: nodes.len() as u32,
        cells,
        failed: vec![],
    }
}

/// (finding, node, peer) of each finding.
fn named(grid: &SweepGrid) -> Vec<(FindingKind, String, Option<String>)> {
    let r = health(grid);
    assert_eq!(r.healthy, r.findings.is_empty());
    r.findings
        .into_iter()
        .map(|f| (f.finding, f.node, f.peer))
        .collect()
}

fn node(kind: FindingKind, n: &str) -> (FindingKind, String, Option<String>) {
    (kind, n.to_string(), None)
}

#[test]
fn a_healthy_cluster_names_nothing() {
    // A little jitter and one lost reply somewhere are not faults.
    let g = mesh(&NODES, |s, d| {
        let rcv = if (s, d) == ("n2", "n3") { 9 } else { 10 };
        (rcv, if s == "n4" { 0.3 } else { 0.11 })
    });
    assert_eq!(named(&g), []);
    assert_eq!(health(&g).nodes, 4);
}

#[test]
fn a_node_with_its_link_down_is_isolated() {
    let g = mesh(&NODES, |s, d| {
        if s == "n3" || d == "n3" {
            (0, 0.0)
        } else {
            (10, 0.1)
        }
    });
    assert_eq!(named(&g), [node(FindingKind::Isolated, "n3")]);
    let f = &health(&g).findings[0];
    assert_eq!(
        f.message,
        "n3 isolated: reaches and is reached by 0 of 6 node pairs"
    );
}

#[test]
fn one_way_faults_are_cannot_send_and_unreachable() {
    let g = mesh(&NODES, |s, _| if s == "n1" { (0, 0.0) } else { (10, 0.1) });
    assert_eq!(named(&g), [node(FindingKind::CannotSend, "n1")]);
    let g = mesh(&NODES, |_, d| if d == "n2" { (0, 0.0) } else { (10, 0.1) });
    assert_eq!(named(&g), [node(FindingKind::Unreachable, "n2")]);
}

#[test]
fn a_node_whose_sweeps_failed_cannot_send() {
    let mut g = mesh(&NODES, |_, _| (10, 0.1));
    g.cells.retain(|c| c.src_node != "n4");
    g.failed.push(FailedSweep {
        worker_id: "w4".into(),
        node: "n4".into(),
        state: "timed_out".into(),
        message: None,
    });
    assert_eq!(named(&g), [node(FindingKind::CannotSend, "n4")]);
}

#[test]
fn a_single_pair_is_named_as_a_pair() {
    let g = mesh(&NODES, |s, d| {
        if (s, d) == ("n1", "n4") {
            (0, 0.0)
        } else {
            (10, 0.1)
        }
    });
    assert_eq!(
        named(&g),
        [(FindingKind::Unreachable, "n4".into(), Some("n1".into()))]
    );
}

#[test]
fn with_two_nodes_only_pairs_can_be_named() {
    let g = mesh(&["n1", "n2"], |_, _| (0, 0.0));
    assert_eq!(
        named(&g),
        [
            (FindingKind::Unreachable, "n1".into(), Some("n2".into())),
            (FindingKind::Unreachable, "n2".into(), Some("n1".into())),
        ]
    );
}

#[test]
fn random_loss_on_one_node_makes_it_lossy_and_only_it() {
    // 30 % drop on n2's interface: ~50 % of its round trips lost, both directions.
    for nodes in [&NODES[..3], &NODES[..]] {
        let g = mesh(nodes, |s, d| {
            if s == "n2" || d == "n2" {
                (5, 0.1)
            } else {
                (10, 0.1)
            }
        });
        assert_eq!(named(&g), [node(FindingKind::Lossy, "n2")], "{nodes:?}");
        let f = &health(&g).findings[0];
        assert_eq!((f.value, f.baseline), (50.0, 0.0));
    }
}

#[test]
fn a_slow_node_is_named_with_its_path_and_the_median() {
    let g = mesh(&NODES, |s, d| {
        if s == "n3" || d == "n3" {
            (10, 6.1)
        } else {
            (10, 0.11)
        }
    });
    let r = health(&g);
    assert_eq!(named(&g), [node(FindingKind::Slow, "n3")]);
    assert_eq!(r.findings[0].path, Some(SweepPath::PodCrossNode));
    assert_eq!(
        r.findings[0].message,
        "n3 slow: pod_cross_node RTT 6.10 ms vs 0.11 ms median"
    );
    // 3× slower but by less than a millisecond is noise on an idle path.
    let g = mesh(&NODES, |s, _| (10, if s == "n3" { 0.5 } else { 0.11 }));
    assert_eq!(named(&g), []);
}

/// A full mesh of TCP bandwidth over `nodes` (pod_cross_node), each pair's bits per second given
/// by `bw(src, dst)` (`src` sends).
fn bandwidth_mesh(nodes: &[&str], bw: impl Fn(&str, &str) -> f64) -> Vec<PairBandwidth> {
    let mut out = Vec::new();
    for s in nodes {
        for d in nodes.iter().filter(|d| *d != s) {
            out.push(PairBandwidth {
                path: SweepPath::PodCrossNode,
                protocol: TransportProtocol::Tcp,
                src_node: s.to_string(),
                dst_node: d.to_string(),
                bits_per_second: bw(s, d),
                finished_at_ms: 1,
            });
        }
    }
    out
}

#[test]
fn a_node_whose_sending_is_capped_is_slow_in_bandwidth_and_only_it() {
    let grid = mesh(&NODES, |_, _| (10, 0.11));
    // An egress cap (tbf) on n3: only what n3 sends is slow; 3 and 4 nodes.
    for nodes in [&NODES[..3], &NODES[..]] {
        let bw = bandwidth_mesh(nodes, |s, _| if s == "n3" { 95e6 } else { 9.41e9 });
        let r = health_with_bandwidth(&grid, &bw);
        let named: Vec<_> = r.findings.iter().map(|f| (f.finding, &*f.node)).collect();
        assert_eq!(named, [(FindingKind::Slow, "n3")], "{nodes:?}: {r:?}");
        let f = &r.findings[0];
        assert_eq!(f.protocol, Some(TransportProtocol::Tcp));
        assert_eq!(f.path, Some(SweepPath::PodCrossNode));
        assert_eq!((f.value, f.baseline), (95e6, 9.41e9));
        assert_eq!(
            f.message,
            "n3 slow: pod_cross_node TCP bandwidth sending 95.0 Mbit/s vs 9.41 Gbit/s median"
        );
        assert_eq!(r.bandwidth_pairs as usize, bw.len());
    }
    // An ingress cap on n2: named as receiving.
    let bw = bandwidth_mesh(&NODES, |_, d| if d == "n2" { 50e6 } else { 940e6 });
    let r = health_with_bandwidth(&grid, &bw);
    assert_eq!(r.findings.len(), 1, "{r:?}");
    assert_eq!(
        r.findings[0].message,
        "n2 slow: pod_cross_node TCP bandwidth receiving 50.0 Mbit/s vs 940 Mbit/s median"
    );
}

#[test]
fn bandwidth_spread_within_the_ratio_names_nothing() {
    let grid = mesh(&NODES, |_, _| (10, 0.11));
    // Pairs between 2.5 and 9.4 Gbit/s (well under 3× apart from the median): healthy.
    let bw = bandwidth_mesh(&NODES, |s, d| match (s, d) {
        ("n1", _) => 3.5e9,
        (_, "n4") => 4e9,
        _ => 9.4e9,
    });
    let r = health_with_bandwidth(&grid, &bw);
    assert!(r.healthy, "{r:?}");
    // Classes are judged apart: a slow overlay beside a fast underlay is not a slow node.
    let mut bw = bandwidth_mesh(&NODES, |_, _| 1e9);
    bw.extend(bandwidth_mesh(&NODES, |_, _| 9e9).into_iter().map(|mut b| {
        b.path = SweepPath::NodeToNode;
        b
    }));
    assert!(health_with_bandwidth(&grid, &bw).healthy);
    // No bandwidth at all: the sweep grid's findings alone, as `health`.
    assert_eq!(health_with_bandwidth(&grid, &[]), health(&grid));
}

#[test]
fn a_node_already_named_unreachable_is_not_also_named_slow() {
    let grid = mesh(&NODES, |s, d| {
        if s == "n3" || d == "n3" {
            (0, 0.0)
        } else {
            (10, 0.1)
        }
    });
    let bw = bandwidth_mesh(&NODES, |s, _| if s == "n3" { 1e6 } else { 9e9 });
    let r = health_with_bandwidth(&grid, &bw);
    let named: Vec<_> = r.findings.iter().map(|f| (f.finding, &*f.node)).collect();
    assert_eq!(named, [(FindingKind::Isolated, "n3")]);
}

#[test]
fn a_node_that_left_the_view_after_running_jobs_is_gone_and_only_it() {
    let grid = mesh(&["n1", "n2"], |_, _| (10, 0.1));
    let mut r = health(&grid);
    assert!(r.healthy);
    let last_seen = [("n1", 9_000), ("n2", 9_500), ("n3", 4_000)]
        .map(|(n, at)| (n.to_string(), at))
        .into_iter()
        .collect();
    let live = ["n1", "n2"].map(String::from).into_iter().collect();
    add_gone(&mut r, &last_seen, &live, 10_000);
    assert!(!r.healthy);
    assert_eq!(r.nodes, 3);
    assert_eq!(r.findings.len(), 1, "{r:?}");
    let f = &r.findings[0];
    assert_eq!((f.finding, f.node.as_str()), (FindingKind::Gone, "n3"));
    assert_eq!(f.value, 6.0);
    assert_eq!(
        f.message,
        "n3 gone: no live worker; its workers ran jobs until 6 s ago"
    );
    // Nothing recent that is not live: nothing added.
    let mut r = health(&grid);
    add_gone(&mut r, &Default::default(), &live, 10_000);
    assert!(r.healthy);
}

#[test]
fn bits_per_second_has_three_significant_digits() {
    assert_eq!(bits_per_second(9.41e9), "9.41 Gbit/s");
    assert_eq!(bits_per_second(95e6), "95.0 Mbit/s");
    assert_eq!(bits_per_second(940e6), "940 Mbit/s");
    assert_eq!(bits_per_second(1500.0), "1.50 kbit/s");
    assert_eq!(bits_per_second(12.0), "12.0 bit/s");
}

/// 1,000 nodes (999,000 cells): one isolated node named, and how long that takes (debug build
/// here; the figure in BENCHMARKS.md "Metrics" is from `cargo test --release -p podperf-report
/// --test health -- --ignored --nocapture`). Every pass is one over the pairs (indexed by node),
/// not one per node.
#[test]
#[ignore]
fn a_1000_node_round_names_its_isolated_node() {
    let names: Vec<String> = (0..1000).map(|i| format!("node-{i}")).collect();
    let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
    let grid = mesh(&nodes, |s, d| {
        if s == "node-7" || d == "node-7" {
            (0, 0.0)
        } else {
            (10, 0.11)
        }
    });
    let t0 = std::time::Instant::now();
    let found = named(&grid);
    println!("health of 1,000 nodes: {:?}", t0.elapsed());
    assert_eq!(found, [node(FindingKind::Isolated, "node-7")]);
}
