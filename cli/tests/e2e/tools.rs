//! ping, traceroute, iperf3 and the matrix through the real tools.

use super::*;

#[test]
fn ping_traceroute_and_iperf3_end_to_end() {
    let c = Cluster::two_workers("127.0.0.13", "127.0.0.14");

    let (out, ping) = c.json(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "3",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    assert_eq!(ping["state"], "succeeded");
    assert_eq!(ping["target_ip"], "127.0.0.14");
    let r = &ping["result"];
    assert_eq!(r["kind"], "ping");
    assert_eq!(r["transmitted"], 3);
    assert_eq!(r["received"], 3);
    assert_eq!(r["loss_percent"], 0.0);
    assert_eq!(r["replies"].as_array().unwrap().len(), 3);
    let (min, avg, max) = (
        r["rtt_min_ms"].as_f64().unwrap(),
        r["rtt_avg_ms"].as_f64().unwrap(),
        r["rtt_max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= avg && avg <= max, "{r}");

    let (out, tr) = c.json(&["run", "traceroute", "--from", "pod-a", "--to", "pod-b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &tr["result"];
    assert_eq!(r["kind"], "traceroute");
    assert_eq!(r["reached"], true);
    let hops = r["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "loopback is one hop: {r}");
    assert_eq!(hops[0]["probes"][0]["address"], "127.0.0.14");

    let args = [
        "run",
        "iperf3",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--duration",
        "1",
    ];
    let (out, ip) = c.json(&args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let r = &ip["result"];
    assert_eq!(r["kind"], "iperf3");
    assert_eq!(r["protocol"], "tcp");
    assert!(r["receiver_bits_per_second"].as_f64().unwrap() > 1e6, "{r}");
    assert!(r["bytes_received"].as_u64().unwrap() > 0);
    assert!(r["retransmits"].is_u64());

    let args = [
        "run",
        "iperf3",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--duration",
        "1",
        "--udp",
    ];
    let (out, udp) = c.json(&[&args[..], &["--bitrate", "10M"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &udp["result"];
    assert_eq!(r["protocol"], "udp");
    assert!(r["jitter_ms"].is_f64() && r["lost_percent"].is_f64(), "{r}");
    let bps = r["receiver_bits_per_second"].as_f64().unwrap();
    assert!((5e6..20e6).contains(&bps), "asked for 10 Mbit/s, got {bps}");

    // The human summary.
    let out = c.podperf(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rtt avg") && text.contains("0% loss (2/2 received)"),
        "{text}"
    );
}

#[test]
fn matrix_measures_every_path_class_and_reports_the_overlay_cost() {
    let mut c = Cluster::start();
    c.add_worker("pod-a1", "node-a", "127.0.0.31");
    c.add_worker("pod-a2", "node-a", "127.0.0.32");
    c.add_worker("pod-b1", "node-b", "127.0.0.33");
    c.add_host_worker("host-a", "node-a", "127.0.0.34");
    c.add_host_worker("host-b", "node-b", "127.0.0.35");
    c.wait_for_workers(&["pod-a1", "pod-a2", "pod-b1", "host-a", "host-b"]);

    // Latency is left out here (the testbed test checks it): five pairs cost enough.
    let args = "matrix --samples 2 --duration 1 --count 3 --udp --udp-bitrate 50M --no-latency";
    let args: Vec<&str> = args.split(' ').collect();
    let (out, r) = c.json(&args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let p = &r["progress"];
    assert_eq!(p["finished"], true);
    assert_eq!(p["jobs_succeeded"], p["jobs"], "every job succeeded: {r}");
    assert_eq!(p["pairs"], 5);
    let classes: Vec<&str> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "pod_same_node",
            "pod_cross_node",
            "pod_to_node",
            "node_to_pod",
            "node_to_node"
        ]
    );
    for class in r["classes"].as_array().unwrap() {
        assert_eq!(class["loss_percent"]["max"], 0.0, "{class}");
        assert_eq!(class["rtt_avg_ms"]["samples"], 2, "{class}");
        let rtt = &class["rtt_avg_ms"];
        let (low, high) = (
            rtt["ci95_low"].as_f64().unwrap(),
            rtt["ci95_high"].as_f64().unwrap(),
        );
        let mean = rtt["mean"].as_f64().unwrap();
        assert!(low <= mean && mean <= high, "{class}");
        assert!(
            class["tcp_bits_per_second"]["median"].as_f64().unwrap() > 1e6,
            "{class}"
        );
        assert_eq!(class["hops"], 1, "loopback is one hop: {class}");
        assert!(class["udp_jitter_ms"]["median"].is_f64(), "{class}");
        assert_eq!(class["udp_lost_percent"]["samples"], 2, "{class}");
    }
    let node_pair = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["class"] == "node_to_node");
    assert_eq!(node_pair.unwrap()["source_pod"], "host-a");
    let quadrant = |class: &str| {
        let p = r["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["class"] == class);
        let p = p.unwrap_or_else(|| panic!("{class}: {r}"));
        (
            p["source_pod"].as_str().unwrap(),
            p["target_pod"].as_str().unwrap(),
        )
    };
    assert_eq!(quadrant("pod_to_node"), ("pod-a1", "host-b"));
    assert_eq!(quadrant("node_to_pod"), ("host-a", "pod-b1"));
    assert!(r["overlay_cost"]["bandwidth_ratio"].as_f64().unwrap() > 0.0);

    // The run is kept: listed, and its report can be shown again (here as CSV).
    let (_, runs) = c.json(&["runs"]);
    assert_eq!(runs["runs"][0]["run_id"], p["run_id"]);
    let out = c.podperf(&["-o", "csv", "runs", p["run_id"].as_str().unwrap()]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("path,pairs,tcp_bits_per_second"), "{csv}");
    assert_eq!(csv.lines().count(), 6, "{csv}");
}
