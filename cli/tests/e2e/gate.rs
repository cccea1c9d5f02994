//! `--samples auto` and the pass/fail gate (`--tolerance`, `--max-rtt-ratio`) through the real
//! tools: the verdict in JSON, CSV and Markdown, and the exit codes a pipeline gates on.

use super::*;

/// Two nodes, each with a pod worker and a host-network worker: every row but pod ↔ pod on one
/// node.
fn two_nodes() -> Cluster {
    let mut c = Cluster::start();
    c.add_worker("pod-a", "node-a", "127.0.0.91");
    c.add_worker("pod-b", "node-b", "127.0.0.92");
    c.add_host_worker("host-a", "node-a", "127.0.0.93");
    c.add_host_worker("host-b", "node-b", "127.0.0.94");
    c.wait_for_workers(&["pod-a", "pod-b", "host-a", "host-b"]);
    c
}

/// The matrix's cheapest measurements: one short ping and a 1 s iperf3 per sample.
const CHEAP: [&str; 7] = [
    "--count",
    "3",
    "--duration",
    "1",
    "--no-traceroute",
    "--no-mtu",
    "--no-latency",
];

fn matrix(c: &Cluster, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut all = vec!["matrix"];
    all.extend_from_slice(&CHEAP);
    all.extend_from_slice(args);
    c.json(&all)
}

#[test]
fn samples_auto_converges_or_reaches_its_bound_and_a_failing_gate_exits_3() {
    let c = two_nodes();
    let (out, r) = matrix(
        &c,
        &[
            "--samples",
            "auto",
            "--max-samples",
            "4",
            "--max-rtt-ratio",
            "0.0001",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}\n{r:#}", stderr(&out));
    assert_eq!(r["progress"]["finished"], true, "{r:#}");
    assert_eq!(
        r["progress"]["jobs_succeeded"], r["progress"]["jobs"],
        "{r:#}"
    );
    let classes = r["classes"].as_array().unwrap();
    let names: Vec<&str> = classes
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pod_cross_node",
            "pod_to_node",
            "node_to_pod",
            "node_to_node"
        ]
    );
    let mut added = false;
    for class in classes {
        let bw = &class["tcp_bits_per_second"];
        let n = bw["samples"].as_u64().unwrap();
        match class["sampling"].as_str().unwrap() {
            "converged" => {
                for f in ["tcp_bits_per_second", "rtt_avg_ms"] {
                    let s = &class[f];
                    let (low, high) = (
                        s["ci95_low"].as_f64().unwrap(),
                        s["ci95_high"].as_f64().unwrap(),
                    );
                    let mean = s["mean"].as_f64().unwrap();
                    assert!((high - low) / 2.0 <= 0.05 * mean + 1e-12, "{class:#}");
                }
                assert!((3..=4).contains(&n), "{class:#}");
            }
            "bound_reached" => {
                assert_eq!(n, 4, "{class:#}");
                added = true;
            }
            other => panic!("{other}: {class:#}"),
        }
        let (low, high) = (
            bw["ci95_low"].as_f64().unwrap(),
            bw["ci95_high"].as_f64().unwrap(),
        );
        let mean = bw["mean"].as_f64().unwrap();
        assert!(low <= mean && mean <= high, "{class:#}");
    }
    let expect = if added { "bound_reached" } else { "converged" };
    assert_eq!(r["sampling"], expect, "{r:#}");
    // 4 pairs × (ping + iperf3) × 3 first samples, and more where the bound was reached.
    let jobs = r["progress"]["jobs"].as_u64().unwrap();
    assert_eq!(jobs > 24, added, "{jobs} jobs: {r:#}");

    let v = &r["verdict"];
    assert_eq!(v["status"], "fail", "{v:#}");
    assert_eq!(v["checks"][0]["check"], "max_rtt_ratio");
    assert!(
        v["checks"][0]["measured"].as_f64().unwrap() > 0.0001,
        "{v:#}"
    );

    // The verdict is the run's: shown again (and exit 3 again) by `runs ID`, as CSV and Markdown.
    let id = r["progress"]["run_id"].as_str().unwrap();
    let csv = c.podperf(&["-o", "csv", "runs", id]);
    assert_eq!(csv.status.code(), Some(3));
    let csv = String::from_utf8_lossy(&csv.stdout);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"verdict"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",fail")), "{csv}");
    let md = c.podperf(&["-o", "markdown", "runs", id]);
    assert_eq!(md.status.code(), Some(3));
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("VERDICT: FAIL") && md.contains("max_rtt_ratio"),
        "{md}"
    );
}

#[test]
fn a_passing_gate_exits_0_and_bad_gates_are_usage_errors() {
    let c = two_nodes();
    let (out, r) = matrix(
        &c,
        &[
            "--samples",
            "1",
            "--tolerance",
            "100",
            "--max-rtt-ratio",
            "1000",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}\n{r:#}", stderr(&out));
    let v = &r["verdict"];
    assert_eq!(v["status"], "pass", "{v:#}");
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["tcp_tolerance", "max_rtt_ratio"]);
    assert!(r.get("sampling").is_none(), "a fixed count: {r:#}");

    for bad in [
        ["--tolerance", "101"],
        ["--tolerance", "-1"],
        ["--max-rtt-ratio", "0"],
        ["--samples", "often"],
        ["--samples", "21"],
        ["--max-samples", "21"],
    ] {
        let out = c.podperf(&["matrix", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn samples_auto_in_a_mesh_adds_sweeps_with_the_samples() {
    let c = Cluster::two_workers("127.0.0.95", "127.0.0.96");
    let args = [
        "matrix",
        "--mesh",
        "--samples",
        "auto",
        "--max-samples",
        "4",
        "--count",
        "3",
        "--duration",
        "1",
        "--no-traceroute",
        "--no-mtu",
        "--no-latency",
    ];
    let (out, r) = c.json(&args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let class = &r["classes"][0];
    assert_eq!(class["class"], "pod_cross_node", "{r:#}");
    // The row has both pairs' samples; each pair has n.
    let n = r["pairs"][0]["tcp_bits_per_second"]["samples"]
        .as_u64()
        .unwrap();
    assert_eq!(
        class["tcp_bits_per_second"]["samples"].as_u64(),
        Some(2 * n)
    );
    match class["sampling"].as_str().unwrap() {
        "converged" => assert!((3..=4).contains(&n), "{r:#}"),
        "bound_reached" => assert_eq!(n, 4, "{r:#}"),
        other => panic!("{other}: {r:#}"),
    }
    // RTT from one sweep per source and sample, the added samples' too.
    for p in r["pairs"].as_array().unwrap() {
        assert_eq!(p["rtt_avg_ms"]["samples"].as_u64(), Some(n), "{p:#}");
    }
    let (_, jobs) = c.json(&["jobs", "--limit", "100"]);
    let sweeps = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["params"]["kind"] == "sweep")
        .count() as u64;
    assert_eq!(sweeps, 2 * n, "{jobs:#}");
}
