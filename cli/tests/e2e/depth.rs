//! Kinds `latency` and `mtu` through the `podperf` binary, the dispatcher and two workers with
//! their own sockperf servers (loopback), and the CLI's own refusal of out-of-range values.

use super::*;

/// Whether a socket is bound on exactly `ip:port` (IPv4), from `/proc/net/{tcp,udp}` (listening
/// TCP is state 0A, a bound UDP socket 07): connecting would count as a test for the server.
fn bound(ip: &str, port: u16, table: &str, state: &str) -> bool {
    let v4: std::net::Ipv4Addr = ip.parse().unwrap();
    let want = format!("{:08X}:{:04X}", u32::from_le_bytes(v4.octets()), port);
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.get(1) == Some(&want.as_str()) && cols.get(3) == Some(&state)
    })
}

#[test]
fn latency_and_mtu_end_to_end() {
    let c = Cluster::two_workers("127.0.0.17", "127.0.0.18");
    let b = c.worker("pod-b");
    wait_until(
        Duration::from_secs(15),
        "pod-b's sockperf servers listen",
        || {
            bound(b.ip(), b.sockperf_port, "tcp", "0A")
                && bound(b.ip(), b.sockperf_port, "udp", "07")
        },
    );
    for proto in ["tcp", "udp"] {
        let args = [
            "run",
            "latency",
            "--from",
            "pod-a",
            "--to",
            "pod-b",
            "--protocol",
            proto,
            "--duration",
            "1",
            "--message-size",
            "100",
        ];
        let (out, job) = c.json(&args);
        assert!(
            out.status.success(),
            "{proto}: {}\n{}",
            stderr(&out),
            c.logs()
        );
        assert_eq!(job["target_ip"], "127.0.0.18");
        let r = &job["result"];
        assert_eq!(r["kind"], "latency");
        assert_eq!(r["protocol"], proto);
        assert_eq!(r["message_size_bytes"], 100);
        assert_eq!(r["full_round_trip"], true);
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert!(
            f("rtt_min_ms") <= f("rtt_p50_ms") && f("rtt_p50_ms") <= f("rtt_p90_ms"),
            "{r}"
        );
        assert!(f("rtt_p90_ms") <= f("rtt_p99_ms") && f("rtt_p99_ms") <= f("rtt_p99_9_ms"));
        assert!(f("rtt_p99_9_ms") <= f("rtt_max_ms") && f("transactions_per_second") > 0.0);
        assert!(r["observations"].as_u64().unwrap() > 0);
    }

    let (out, job) = c.json(&["run", "mtu", "--from", "pod-a", "--to", "pod-b"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let r = &job["result"];
    assert_eq!(r["kind"], "mtu");
    assert_eq!(r["path_mtu_bytes"], 65_535, "loopback: {r}");
    assert_eq!(r["reached"], true);
    assert_eq!(r["black_hole"], false);
    assert_eq!(r["df_ping"]["received"], r["df_ping"]["transmitted"]);

    // The human summary says which round trip it reports.
    let out = c.podperf(&[
        "run",
        "latency",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--duration",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("round trip (tcp, 64 B): p50 "), "{text}");
}

#[test]
fn out_of_range_latency_and_mtu_flags_are_refused_before_anything_runs() {
    let c = Cluster::two_workers("127.0.0.19", "127.0.0.20");
    let cases: [&[&str]; 4] = [
        &[
            "run",
            "latency",
            "--from",
            "pod-a",
            "--to",
            "pod-b",
            "--duration",
            "0",
        ],
        &[
            "run",
            "latency",
            "--from",
            "pod-a",
            "--to",
            "pod-b",
            "--message-size",
            "70000",
        ],
        &[
            "run",
            "latency",
            "--from",
            "pod-a",
            "--to",
            "pod-b",
            "--protocol",
            "sctp",
        ],
        &[
            "run",
            "mtu",
            "--from",
            "pod-a",
            "--to",
            "pod-b",
            "--max-hops",
            "0",
        ],
    ];
    for args in cases {
        let out = c.podperf(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = stderr(&out);
        assert!(
            err.contains("duration")
                || err.contains("message_size")
                || err.contains("max_hops")
                || err.contains("sctp"),
            "{args:?}: {err}"
        );
    }
    let (_, jobs) = c.json(&["jobs"]);
    assert_eq!(
        jobs["jobs"].as_array().map(Vec::len),
        Some(0),
        "nothing was stored: {jobs}"
    );
}
