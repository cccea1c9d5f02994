//! Sweeps through the real system: `podperf sweep` and `podperf health` over loopback workers
//! (real fping), and bad input refused before anything runs.

use super::*;
use serde_json::json;

/// Three pod workers on three nodes and a host-network worker on node-1.
fn mesh() -> Cluster {
    let mut c = Cluster::start();
    c.add_worker("pod-a", "node-1", "127.0.0.61");
    c.add_worker("pod-b", "node-2", "127.0.0.62");
    c.add_worker("pod-c", "node-3", "127.0.0.63");
    c.add_host_worker("host-1", "node-1", "127.0.0.64");
    c.wait_for_workers(&["pod-a", "pod-b", "pod-c", "host-1"]);
    c
}

fn jobs(c: &Cluster) -> usize {
    c.json(&["jobs"]).1["jobs"].as_array().unwrap().len()
}

#[test]
fn a_sweep_round_measures_every_pair_and_a_healthy_cluster_names_nothing_then_a_gone_node() {
    let mut c = mesh();
    let (out, grid) = c.json(&["sweep", "--count", "3", "--interval-ms", "20"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    assert_eq!(grid["sweeps"], 4);
    assert_eq!(grid["failed"].as_array().unwrap().len(), 0, "{grid}");
    let cells = grid["cells"].as_array().unwrap();
    let cell = |path: &str, src: &str, dst: &str| {
        cells
            .iter()
            .find(|c| c["path"] == path && c["src_node"] == src && c["dst_node"] == dst)
            .unwrap_or_else(|| panic!("no {path} {src} → {dst} in {grid}"))
    };
    // 3 pods: 6 ordered cross-node pairs; host-1 ↔ pods on nodes 2, 3 and its own node.
    let cross = cells
        .iter()
        .filter(|c| c["path"] == "pod_cross_node")
        .count();
    assert_eq!(cross, 6, "{grid}");
    for c in cells {
        assert_eq!(c["received"], c["sent"], "{c}");
        assert!(c["rtt_avg_ms"].as_f64().unwrap() > 0.0, "{c}");
    }
    let ab = cell("pod_cross_node", "node-1", "node-2");
    assert_eq!(
        (ab["pairs"].as_u64(), ab["sent"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(cell("pod_to_node", "node-1", "node-1")["pairs"], 1);
    assert_eq!(cell("node_to_pod", "node-1", "node-3")["loss_percent"], 0.0);
    assert_eq!(jobs(&c), 4, "one sweep per worker");
    // The stored records are compact: no fping text, no resolved list (the result has the
    // targets), `host_network` written only where it is true.
    for job in c.json(&["jobs"]).1["jobs"].as_array().unwrap() {
        let id = job["job_id"].as_str().unwrap();
        let (_, rec) = c.json(&["job", id]);
        assert_eq!(rec["state"], "succeeded", "{rec}");
        assert!(rec.get("raw_output").is_none(), "{rec}");
        assert!(rec["params"].get("resolved").is_none(), "{rec}");
        let targets = rec["result"]["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 3, "{rec}");
        for t in targets {
            let host = t["ip"] == "127.0.0.64"; // host-1
            assert_eq!(t.get("host_network") == Some(&json!(true)), host, "{t}");
            assert_eq!(t.get("host_network").is_some(), host, "{t}");
        }
    }

    let table = c.podperf(&["sweep", "--count", "1", "--interval-ms", "20"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(text.contains("pod_cross_node (RTT avg, loss)"), "{text}");
    assert!(text.contains("node-3") && text.contains(" ms"), "{text}");

    let (out, health) = c.json(&["health", "--count", "3", "--interval-ms", "20"]);
    assert_eq!(out.status.code(), Some(0), "{health}");
    assert_eq!(health["healthy"], true);
    assert_eq!(health["nodes"], 3);
    assert_eq!(health["findings"].as_array().unwrap().len(), 0);

    // node-3's only worker dies and leaves the live view: the round cannot see node-3 any more,
    // but its worker ran jobs minutes ago, so the node is named `gone` (not `healthy: 2 nodes`).
    c.workers[2].proc.sigkill();
    c.wait_for_workers(&["pod-a", "pod-b", "host-1"]);
    let (out, health) = c.json(&["health", "--count", "3", "--interval-ms", "20"]);
    assert_eq!(out.status.code(), Some(3), "{health}");
    let findings = health["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{health}");
    assert_eq!(findings[0]["finding"], "gone", "{health}");
    assert_eq!(findings[0]["node"], "node-3", "{health}");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("node-3 gone: no live worker"),
        "{health}"
    );
    assert_eq!(health["nodes"], 3);
    let (out, health) = c.json(&[
        "health",
        "--count",
        "3",
        "--interval-ms",
        "20",
        "--gone-max-age",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{health}");
    assert_eq!(health["nodes"], 2);
}

#[test]
fn bad_sweeps_are_refused_and_nothing_runs() {
    let c = mesh();
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["sweep", "--count", "101"],
            &["invalid_param", "params.count"],
        ),
        (
            &["sweep", "--interval-ms", "5"],
            &["invalid_param", "params.interval_ms", "20..=10000"],
        ),
        (
            &["sweep", "--from", "pod-a", "--to", "pod-b", "--to", "nope"],
            &["unknown_worker", "params.targets.workers[1]", "nope"],
        ),
        (
            &["health", "--from", "nope"],
            &["unknown_worker", "jobs[0].source"],
        ),
    ];
    for (args, expect) in cases {
        let out = c.podperf(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
        let err = stderr(&out);
        for e in expect {
            assert!(err.contains(e), "{args:?}: {err:?} lacks {e:?}");
        }
    }
    assert_eq!(jobs(&c), 0, "nothing was stored");
    let log: String = c.workers.iter().map(|w| w.proc.log()).collect();
    assert!(
        !log.contains("job finished"),
        "a worker ran something:\n{log}"
    );
}

#[test]
fn a_mesh_matrix_measures_rtt_and_loss_with_one_sweep_per_source() {
    let c = Cluster::two_workers("127.0.0.65", "127.0.0.66");
    let args = [
        "matrix",
        "--mesh",
        "--samples",
        "1",
        "--count",
        "3",
        "--duration",
        "1",
        "--no-traceroute",
    ];
    let (out, report) = c.json(&args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let pairs = report["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{report}");
    for p in pairs {
        assert_eq!(p["class"], "pod_cross_node");
        assert!(p["rtt_avg_ms"]["median"].as_f64().unwrap() > 0.0, "{p}");
        assert_eq!(p["loss_percent"]["median"], 0.0, "{p}");
        assert!(
            p["tcp_bits_per_second"]["median"].as_f64().unwrap() > 0.0,
            "{p}"
        );
        assert_eq!(p["jobs_failed"], 0, "{p}");
    }
    let (_, jobs) = c.json(&["jobs"]);
    let mut kinds: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["params"]["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    // RTT and loss from one sweep per source (no ping job); bandwidth, latency and MTU per pair.
    assert_eq!(
        kinds,
        ["iperf3", "iperf3", "latency", "latency", "mtu", "mtu", "sweep", "sweep"],
        "{jobs}"
    );
}
