//! `podperf health` with bandwidth results on the netns testbed (3 nodes × 1 pod): after a
//! `--mesh` matrix on the healthy cluster nothing is named; after a real `tc … tbf` cap
//! (50 Mbit/s) on node 2's underlay interface (its `eth0`: what node 2 sends) and a second
//! matrix, `podperf health` names node 2 slow in TCP bandwidth, and nothing else. Needs root
//! and `ip netns` (skipped, with a message, otherwise).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::testbed::{testbed_usable, text, Testbed};

/// A short mesh: one sample, 1 s iperf3 tests, no traceroute, latency test or MTU probe.
fn mesh_matrix(tb: &Testbed) {
    let started = Instant::now();
    let args = [
        "matrix",
        "--mesh",
        "--samples",
        "1",
        "--count",
        "2",
        "--duration",
        "1",
        "--no-traceroute",
        "--no-latency",
        "--no-mtu",
    ];
    let (code, v, err) = tb.try_podperf(&args);
    // Its gate may fail (exit 1): what counts is that the run finished with its bandwidth.
    assert!(
        matches!(code, Some(0) | Some(1)) && !v.is_null(),
        "matrix failed ({code:?}): {err}\n{v}\n{}",
        tb.logs()
    );
    println!(
        "FIGURES bandwidth health: mesh matrix in {:?}",
        started.elapsed()
    );
}

fn health(tb: &Testbed) -> (Option<i32>, Value) {
    crate::health::health_with(tb, "5", &["--bandwidth-max-age", "10m"])
}

/// (finding, node, protocol) of each finding.
fn findings(report: &Value) -> Vec<(String, String, Option<String>)> {
    crate::health::findings_with(report, "protocol")
}

#[test]
fn health_names_a_node_whose_bandwidth_is_capped_and_nothing_before() {
    if !testbed_usable() {
        return;
    }
    let tb = Testbed::up(3, 1, 'b');
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));

    mesh_matrix(&tb);
    let (code, healthy) = health(&tb);
    assert_eq!(code, Some(0), "{healthy}");
    assert_eq!(findings(&healthy), [], "{healthy}");
    assert!(
        healthy["bandwidth_pairs"].as_u64().unwrap() >= 6,
        "the matrix's bandwidth was used: {healthy}"
    );

    let cap = [
        "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "50mbit", "burst", "32kbit",
        "latency", "50ms",
    ];
    let out = tb.exec_in(Some("node-2"), &cap);
    assert!(out.status.success(), "{cap:?}: {}", text(&out.stderr));
    mesh_matrix(&tb);
    let (code, capped) = health(&tb);
    assert_eq!(code, Some(3), "{capped}");
    assert_eq!(
        findings(&capped),
        [("slow".into(), "node-2".into(), Some("tcp".into()))],
        "{capped}"
    );
    let f = &capped["findings"][0];
    let (value, baseline) = (
        f["value"].as_f64().unwrap(),
        f["baseline"].as_f64().unwrap(),
    );
    assert!(value < 60e6 && baseline > 3.0 * value, "{f}");
    println!("FIGURES bandwidth health capped: {}", f["message"]);
}
