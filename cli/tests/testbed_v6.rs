//! The dual-stack testbed end to end: `testbed.sh up --dual-stack` gives every pod and node an
//! IPv6 address beside its IPv4 one (pods fd10:244:N::/64, nodes fd00:18::/64, flannel.1 carrying
//! both), and `podperf matrix --family both` measures every path class over each family.
//!
//! Needs root (network namespaces); without it the test prints why and passes.
//! Run it alone with `cargo test -p podperf-cli --test testbed_v6 -- --nocapture`.

use std::time::Duration;

use serde_json::Value;

#[path = "support/testbed.rs"]
mod support;
use support::{testbed_usable, Testbed};

/// The classes of 2 nodes × 1 pod (no two pods share a node).
const CLASSES: [&str; 4] = [
    "pod_cross_node",
    "pod_to_node",
    "node_to_pod",
    "node_to_node",
];

#[test]
fn the_matrix_over_both_families_on_a_dual_stack_testbed() {
    if !testbed_usable() {
        return;
    }
    let mut tb = Testbed::up_with(2, 1, 'v', &["--dual-stack"]);
    let workers = ["host-0", "host-1", "pod-0-0", "pod-1-0"];
    tb.wait_pods(&workers, Duration::from_secs(30));

    // Every worker advertises both addresses, the IPv4 one first.
    let listed = tb.podperf(&["workers"]);
    for w in listed["workers"].as_array().expect("workers") {
        let ips: Vec<&str> = w["pod_ips"]
            .as_array()
            .unwrap_or_else(|| panic!("{w:#}"))
            .iter()
            .map(|ip| ip.as_str().unwrap())
            .collect();
        let want_v6 = match w["pod_name"].as_str().unwrap() {
            "host-0" => "fd00:18::10",
            "host-1" => "fd00:18::11",
            "pod-0-0" => "fd10:244:0::2",
            _ => "fd10:244:1::2",
        };
        let want_v6: std::net::IpAddr = want_v6.parse().unwrap();
        assert_eq!(ips.len(), 2, "{w:#}");
        assert_eq!(ips[0], w["pod_ip"], "{w:#}");
        assert_eq!(
            ips[1].parse::<std::net::IpAddr>().unwrap(),
            want_v6,
            "{w:#}"
        );
    }

    // One job with --family 6 aims at the target's IPv6 address.
    let args = ["run", "ping", "--from", "pod-0-0", "--to", "pod-1-0"];
    let job = tb.podperf(&[&args[..], &["--family", "6", "--count", "3"]].concat());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["target_ip"], "fd10:244:1::2", "{job:#}");
    assert_eq!(job["result"]["received"], 3, "{job:#}");

    let args = [
        "matrix",
        "--family",
        "both",
        "--samples",
        "1",
        "--duration",
        "1",
        "--count",
        "3",
    ];
    // Exit 2: some jobs failed (the IPv6 latency tests, below).
    let (code, r, stderr) = tb.try_podperf(&args);
    assert_eq!(code, Some(2), "{stderr}\n{r:#}");
    assert_eq!(r["progress"]["finished"], true, "{r:#}");
    let classes = r["classes"].as_array().expect("classes");
    let rows: Vec<(&str, &str)> = classes
        .iter()
        .map(|c| (c["family"].as_str().unwrap(), c["class"].as_str().unwrap()))
        .collect();
    let want: Vec<(&str, &str)> = ["ipv4", "ipv6"]
        .iter()
        .flat_map(|f| CLASSES.iter().map(move |c| (*f, *c)))
        .collect();
    assert_eq!(rows, want, "a row per family and class: {r:#}");
    for c in classes {
        assert_eq!(c["loss_percent"]["max"], 0.0, "{c:#}");
        assert!(c["rtt_avg_ms"]["median"].as_f64().unwrap() > 0.0, "{c:#}");
        let bps = c["tcp_bits_per_second"]["median"].as_f64().unwrap();
        assert!(bps > 1e6, "{c:#}");
        // tracepath reports the links' MTU, whatever the family: the overlay's 1450 (VXLAN's 50
        // bytes over the 1500 underlay, the same for an IPv6 inner packet), the underlay's 1500.
        let mtu = if c["class"] == "node_to_node" {
            1500
        } else {
            1450
        };
        assert_eq!(c["path_mtu_bytes"], mtu, "{c:#}");
        assert!(c.get("mtu_black_hole").is_none(), "{c:#}");
    }
    // Latency: measured over IPv4; over IPv6 sockperf 3.7 refuses the address, and says so.
    for c in classes.iter().filter(|c| c["family"] == "ipv4") {
        assert!(
            c["latency_p50_ms"]["median"].as_f64().unwrap() > 0.0,
            "{c:#}"
        );
        assert_eq!(c["jobs_failed"], 0, "{c:#}");
    }
    for c in classes.iter().filter(|c| c["family"] == "ipv6") {
        assert!(c.get("latency_p50_ms").is_none(), "{c:#}");
        assert_eq!(c["jobs_failed"], 1, "only the latency job failed: {c:#}");
    }
    let pairs = r["pairs"].as_array().expect("pairs");
    for p in pairs.iter().filter(|p| p["family"] == "ipv6") {
        for end in ["source_ip", "target_ip"] {
            let ip: std::net::IpAddr = p[end].as_str().unwrap().parse().unwrap();
            assert!(ip.is_ipv6(), "{p:#}");
        }
        let failed = failed_jobs(&tb, p);
        assert_eq!(failed.len(), 1, "{p:#}");
        assert_eq!(failed[0]["params"]["kind"], "latency", "{:#}", failed[0]);
        let message = failed[0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Invalid address"), "{:#}", failed[0]);
    }
    let node_pair = pairs
        .iter()
        .find(|p| p["family"] == "ipv6" && p["class"] == "node_to_node")
        .expect("an IPv6 node pair");
    let target = node_pair["target_ip"].as_str().unwrap();
    assert!(target.starts_with("fd00:18::"), "{node_pair:#}");
    assert!(tb.down().status.success());
}

/// The pair's jobs that did not succeed, as `podperf job ID` shows them.
fn failed_jobs(tb: &Testbed, pair: &Value) -> Vec<Value> {
    pair["job_ids"]
        .as_array()
        .expect("job ids")
        .iter()
        .map(|id| tb.podperf(&["job", id.as_str().unwrap()]))
        .filter(|j| j["state"] != "succeeded")
        .collect()
}
