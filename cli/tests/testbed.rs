//! The network-namespace testbed end to end: `testbed/testbed.sh up` builds a 2 nodes × 2 pods
//! Flannel-VXLAN replica with NATS, Redis, the dispatcher and 6 workers (4 pods + 2 host-network)
//! inside it; the real `podperf` runs through `testbed.sh exec`; `down` must leave nothing behind.
//!
//! Needs root (network namespaces); without it the test prints why and passes.
//! Run it alone with `cargo test -p podperf-cli --test testbed -- --nocapture`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use podperf_testkit::workspace_bin;
use serde_json::Value;

#[path = "support/testbed.rs"]
mod support;
use support::{state_root, testbed_usable, text, Testbed};

/// Pids of live (non-zombie) processes whose command line or environment contains any of
/// `needles`.
fn processes_with(needles: &[String]) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            let path = e.path();
            let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
            if status.contains("State:\tZ") {
                return false;
            }
            let mut seen = std::fs::read(path.join("cmdline")).unwrap_or_default();
            seen.extend(std::fs::read(path.join("environ")).unwrap_or_default());
            let seen = String::from_utf8_lossy(&seen);
            needles.iter().any(|n| seen.contains(n.as_str()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Lines of `cmd`'s stdout that mention `needle`.
fn lines_with(cmd: &[&str], needle: &str) -> Vec<String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .expect("run a listing command");
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

fn ping(tb: &Testbed, from: &str, to: &str) -> Value {
    let job = tb.podperf(&["run", "ping", "--from", from, "--to", to, "--count", "3"]);
    assert_eq!(job["state"], "succeeded", "ping {from} → {to}: {job:#}");
    let r = &job["result"];
    assert_eq!(
        r["loss_percent"].as_f64(),
        Some(0.0),
        "ping {from} → {to}: {r:#}"
    );
    assert_eq!(r["received"], r["transmitted"], "ping {from} → {to}: {r:#}");
    eprintln!(
        "ping {from} → {to} ({}): avg {} ms",
        job["target_ip"], r["rtt_avg_ms"]
    );
    job
}

fn traceroute_hops(tb: &Testbed, from: &str, to: &str) -> usize {
    let job = tb.podperf(&["run", "traceroute", "--from", from, "--to", to]);
    assert_eq!(
        job["state"], "succeeded",
        "traceroute {from} → {to}: {job:#}"
    );
    let r = &job["result"];
    assert_eq!(r["reached"], true, "traceroute {from} → {to}: {r:#}");
    let hops = r["hops"].as_array().expect("hops").len();
    eprintln!("traceroute {from} → {to}: {hops} hop(s)");
    hops
}

#[test]
fn testbed_2x2_end_to_end_and_nothing_left_after_down() {
    if !testbed_usable() {
        return;
    }
    // Every worker (and its sockperf) on CPU 0: see the latency order below.
    let mut tb = Testbed::up_with(2, 2, 't', &["--worker-cpus", "0"]);
    let run = tb.run_id.clone();
    let prefix = format!("ppt-{run}-");

    // 6 namespaces of nodes/pods + underlay + infra.
    assert_eq!(lines_with(&["ip", "netns", "list"], &prefix).len(), 8);

    // 4 pod workers + 2 host-network workers, with the DaemonSet env.
    let v = tb.podperf(&["workers"]);
    let workers = v["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 6, "{v:#}");
    let host: Vec<&Value> = workers
        .iter()
        .filter(|w| w["host_network"] == true)
        .collect();
    assert_eq!(host.len(), 2, "{v:#}");
    for w in &host {
        assert_eq!(
            w["pod_ip"], w["node_ip"],
            "a host-network worker uses its node IP: {w:#}"
        );
        assert_eq!(w["iperf3_port"], 5202, "{w:#}");
    }
    for w in workers.iter().filter(|w| w["host_network"] == false) {
        let ip = w["pod_ip"].as_str().unwrap();
        assert!(ip.starts_with("10.244."), "pod IP in the pod CIDR: {w:#}");
        assert_ne!(w["pod_ip"], w["node_ip"], "{w:#}");
        assert_eq!(w["pod_namespace"], "testbed", "{w:#}");
    }

    // Same node, across nodes (through flannel.1), and the underlay between the nodes.
    let same = ping(&tb, "pod-0-0", "pod-0-1");
    assert_eq!(same["target_ip"], "10.244.0.3");
    let cross = ping(&tb, "pod-0-0", "pod-1-0");
    assert_eq!(cross["target_ip"], "10.244.1.2");
    let nodes = ping(&tb, "host-0", "host-1");
    assert_eq!(nodes["target_ip"], "198.18.0.11");

    // The VXLAN path shows: cni0 gateway → remote flannel.1 → pod.
    let same_hops = traceroute_hops(&tb, "pod-0-0", "pod-0-1");
    let cross_hops = traceroute_hops(&tb, "pod-0-0", "pod-1-0");
    let node_hops = traceroute_hops(&tb, "host-0", "host-1");
    assert!(
        cross_hops > same_hops,
        "cross-node {cross_hops} hops vs same-node {same_hops}"
    );
    assert_eq!(node_hops, 1);

    // The whole matrix through the scheduler: every class measured, every job succeeded.
    let args = [
        "matrix",
        "--samples",
        "2",
        "--duration",
        "1",
        "--count",
        "5",
    ];
    let r = tb.podperf(&args);
    let p = &r["progress"];
    assert_eq!(p["finished"], true, "{r:#}");
    assert_eq!(p["jobs_succeeded"], p["jobs"], "every job succeeded: {r:#}");
    let classes = r["classes"].as_array().expect("classes");
    let class = |name: &str| {
        classes
            .iter()
            .find(|c| c["class"] == name)
            .unwrap_or_else(|| panic!("{name}: {r:#}"))
    };
    // The four quadrants: pod ↔ pod, pod → node, node → pod, node ↔ node.
    let names: Vec<&str> = classes
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pod_same_node",
            "pod_cross_node",
            "pod_to_node",
            "node_to_pod",
            "node_to_node"
        ],
        "{r:#}"
    );
    for name in &names {
        let c = class(name);
        assert_eq!(c["loss_percent"]["max"], 0.0, "{c:#}");
        assert!(c["rtt_avg_ms"]["median"].as_f64().unwrap() > 0.0, "{c:#}");
        assert!(
            c["tcp_bits_per_second"]["median"].as_f64().unwrap() > 1e6,
            "{c:#}"
        );
    }
    // Path MTU: 1450 through the VXLAN overlay, 1500 on the underlay; no MTU problem here.
    assert_eq!(class("pod_cross_node")["path_mtu_bytes"], 1450, "{r:#}");
    assert_eq!(class("node_to_node")["path_mtu_bytes"], 1500, "{r:#}");
    assert!(r.get("mtu_problems").is_none(), "{r:#}");
    // Latency (full round trips): p50 ≤ p99.
    let p50 = |name: &str| class(name)["latency_p50_ms"]["median"].as_f64().unwrap();
    for name in ["pod_same_node", "pod_cross_node", "node_to_node"] {
        let p99 = class(name)["latency_p99_ms"]["median"].as_f64().unwrap();
        assert!(0.0 < p50(name) && p50(name) <= p99, "{name}: {r:#}");
    }
    // Same node below across nodes. The testbed's "nodes" share the machine's CPUs and have no
    // wire between them: the VXLAN path costs ≈ 12 µs more per round trip, less than whether
    // sockperf's client and server run on one CPU or two (≈ 35 µs: a cross-CPU wake-up); unpinned,
    // the scheduler's placement decided the order (inverted in 2 of 4 runs, issue 12). With every
    // worker on CPU 0 (up --worker-cpus 0) the order is the path's: ≈ 17 vs 29 µs, samples tight.
    println!(
        "FIGURES latency p50 (median of samples, workers on CPU 0): same node {} ms, across \
         nodes {} ms",
        p50("pod_same_node"),
        p50("pod_cross_node")
    );
    assert!(p50("pod_same_node") < p50("pod_cross_node"), "{r:#}");
    let hops = |name: &str| class(name)["hops"].as_u64().unwrap();
    assert!(hops("pod_cross_node") > hops("pod_same_node"), "{r:#}");
    let pairs = r["pairs"].as_array().expect("pairs");
    let node_pair = pairs
        .iter()
        .find(|p| p["class"] == "node_to_node")
        .expect("node pair");
    let quadrant = |class: &str| {
        let p = pairs.iter().find(|p| p["class"] == class).expect(class);
        (
            p["source_pod"].as_str().unwrap(),
            p["target_ip"].as_str().unwrap(),
        )
    };
    assert_eq!(quadrant("pod_to_node"), ("pod-0-0", "198.18.0.11"), "{r:#}");
    assert_eq!(quadrant("node_to_pod"), ("host-0", "10.244.1.2"), "{r:#}");
    for end in ["source_ip", "target_ip"] {
        let ip = node_pair[end].as_str().unwrap();
        assert!(
            ip.starts_with("198.18.0."),
            "the node row uses node IPs: {node_pair:#}"
        );
    }
    assert!(
        r["overlay_cost"]["bandwidth_ratio"].as_f64().unwrap() > 0.0,
        "{r:#}"
    );

    // NATS runs with authentication: without the cli credential the API is out of reach.
    let infra = format!("ppt-{run}-infra");
    let anonymous = Command::new("ip")
        .args([
            "netns",
            "exec",
            &infra,
            "env",
            "-i",
            "PODPERF_NATS_URL=nats://198.18.0.2:4222",
        ])
        .arg(workspace_bin("podperf"))
        .arg("workers")
        .output()
        .expect("run podperf anonymously");
    assert!(!anonymous.status.success(), "an anonymous client got in");
    assert!(
        text(&anonymous.stderr).to_lowercase().contains("authoriz"),
        "{}",
        text(&anonymous.stderr)
    );

    // What identifies this run's processes: its state dir (nats-server, redis-server, the
    // supervisor) and the workers' POD_UIDs.
    let state_dir = state_root().join(&run).display().to_string();
    let mut needles = vec![state_dir.clone()];
    let workers_tsv =
        std::fs::read_to_string(format!("{state_dir}/workers.tsv")).unwrap_or_default();
    needles.extend(
        workers_tsv
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').nth(6))
            .map(|uid| format!("POD_UID={uid}")),
    );
    assert_eq!(
        needles.len(),
        7,
        "workers.tsv lists 6 workers: {workers_tsv}"
    );
    assert!(
        !processes_with(&needles).is_empty(),
        "the run's processes are found"
    );

    let out = tb.down();
    assert!(
        out.status.success(),
        "testbed.sh down failed: {}",
        text(&out.stderr)
    );
    eprintln!("{}", text(&out.stderr));
    assert!(
        lines_with(&["ip", "netns", "list"], &prefix).is_empty(),
        "namespaces of run {run} left behind"
    );
    assert!(
        lines_with(&["ip", "-o", "link"], &prefix).is_empty(),
        "links of run {run} left behind"
    );
    let left = processes_with(&needles);
    assert!(
        left.is_empty(),
        "processes of run {run} left behind: {left:?}"
    );
    assert!(
        !PathBuf::from(&state_dir).exists(),
        "state dir of run {run} left behind"
    );
}

#[test]
fn testbed_4x4_comes_up_with_every_worker_and_goes_away() {
    if !testbed_usable() {
        return;
    }
    let mut tb = Testbed::up(4, 4, 't');
    let prefix = format!("ppt-{}-", tb.run_id);
    // 4 nodes + 16 pods + underlay + infra.
    assert_eq!(lines_with(&["ip", "netns", "list"], &prefix).len(), 22);
    let v = tb.podperf(&["workers"]);
    let workers = v["workers"].as_array().expect("workers");
    assert_eq!(
        workers.len(),
        20,
        "16 pod workers + 4 host-network workers: {v:#}"
    );
    // Across the farthest pair of nodes, through the overlay.
    let job = ping(&tb, "pod-0-0", "pod-3-3");
    assert_eq!(job["target_ip"], "10.244.3.5");
    let out = tb.down();
    assert!(
        out.status.success(),
        "testbed.sh down failed: {}",
        text(&out.stderr)
    );
    assert!(lines_with(&["ip", "netns", "list"], &prefix).is_empty());
}

/// `testbed.sh up --pod-mtu 1500`: pod interfaces of 1500 over a VXLAN that carries 1450 (the
/// classic misconfiguration). The matrix names the problem (the default testbed, above, has none).
/// Then a black hole on the same cluster: `podperf run mtu` names it and finds the MTU that passes.
#[test]
fn a_pod_mtu_of_1500_over_vxlan_is_named_by_the_matrix() {
    if !testbed_usable() {
        return;
    }
    let mut tb = Testbed::up_with(2, 1, 'm', &["--pod-mtu", "1500"]);
    tb.wait_pods(
        &["host-0", "host-1", "pod-0-0", "pod-1-0"],
        Duration::from_secs(30),
    );
    let args = [
        "matrix",
        "--samples",
        "1",
        "--duration",
        "1",
        "--count",
        "2",
        "--no-latency",
        "--no-traceroute",
    ];
    let r = tb.podperf(&args);
    let problems = r["mtu_problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:#}"));
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "pod_mtu_exceeds_underlay"
                && p["pod_path_mtu_bytes"] == 1500
                && p["node_path_mtu_bytes"] == 1500),
        "{r:#}"
    );

    // A black hole: node 1 drops forwarded ICMP and UDP packets above 1400 bytes toward its pods
    // and says nothing (no "fragmentation needed"). tracepath's 1500-byte probes then meet silence
    // after node 1; the small reach ping passes; DF pings find the 1400 bytes that pass.
    for rule in [
        &["nft", "add", "table", "inet", "pp_black_hole"][..],
        &[
            "nft",
            "add",
            "chain",
            "inet",
            "pp_black_hole",
            "silent",
            "{ type filter hook forward priority 0; }",
        ],
        &[
            "nft",
            "add",
            "rule",
            "inet",
            "pp_black_hole",
            "silent",
            "ip",
            "daddr",
            "10.244.1.0/24",
            "meta",
            "l4proto",
            "{ icmp, udp }",
            "ip",
            "length",
            ">",
            "1400",
            "drop",
        ],
    ] {
        let out = tb.exec_in(Some("node-1"), rule);
        assert!(out.status.success(), "{rule:?}: {}", text(&out.stderr));
    }
    let r = tb.podperf(&[
        "run",
        "mtu",
        "--from",
        "pod-0-0",
        "--to",
        "pod-1-0",
        "--max-hops",
        "4",
    ]);
    let mtu = &r["result"];
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(mtu["black_hole"], true, "{r:#}");
    assert_eq!(mtu["reached"], false, "{r:#}");
    assert_eq!(mtu["path_mtu_bytes"], 1400, "{r:#}");
    // The DF check at the source's own MTU (1450 here: the MTU learnt from VXLAN's "fragmentation
    // needed" during the matrix above) was all lost.
    assert_eq!(
        mtu["df_ping"]["packet_bytes"], mtu["local_mtu_bytes"],
        "{r:#}"
    );
    assert_eq!(mtu["df_ping"]["received"], 0, "{r:#}");
    assert!(tb.down().status.success());
}
