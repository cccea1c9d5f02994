//! End to end through the `podperf` binary: real nats-server, redis-server, dispatcher, workers,
//! and real ping/traceroute/iperf3 between loopback addresses.

mod common;
#[path = "e2e/depth.rs"]
mod depth;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/gate.rs"]
mod gate;
#[path = "e2e/sweep.rs"]
mod sweep;
#[path = "e2e/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use common::{process_running, Cluster, TTL_S};
use podperf_testkit::wait_until;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `podperf -o json watch`, returned once its ready line says it is subscribed.
fn watch(c: &Cluster) -> podperf_testkit::ChildGuard {
    let mut cmd = std::process::Command::new(podperf_testkit::workspace_bin("podperf"));
    cmd.args(["-o", "json", "watch"])
        .env("PODPERF_NATS_URL", c.nats_url());
    let watch = podperf_testkit::ChildGuard::spawn(cmd, "watch");
    wait_until(Duration::from_secs(10), "watch is subscribed", || {
        watch.log().contains("following events and results")
    });
    watch
}

/// Waits until `watch` has printed every job's result: the workers have published them.
fn wait_results(watch: &podperf_testkit::ChildGuard, ids: &[String], timeout: Duration) {
    wait_until(timeout, "the workers published every result", || {
        let log = watch.log();
        ids.iter().all(|id| {
            log.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("\"status\":"))
        })
    });
}

#[test]
fn a_worker_is_listed_after_start_and_gone_within_ttl_after_sigkill() {
    let mut c = Cluster::two_workers("127.0.0.11", "127.0.0.12");

    let (_, v) = c.json(&["workers"]);
    let a = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pod_name"] == "pod-a")
        .unwrap();
    assert_eq!(a["pod_ip"], "127.0.0.11");
    assert_eq!(a["node_name"], "node-1");
    assert_eq!(a["host_network"], false);
    let tools = a["tools"].as_array().unwrap().len();
    assert_eq!(tools, podperf_protocol::worker::Tool::ALL.len());
    assert!(a["last_seen_at_ms"].as_u64().unwrap() > 0);

    c.workers[0].proc.sigkill();
    let killed = Instant::now();
    wait_until(
        Duration::from_secs(TTL_S + 2),
        "pod-a is gone from the list",
        || c.worker_pods() == vec!["pod-b".to_string()],
    );
    eprintln!(
        "pod-a gone {:?} after SIGKILL (TTL {TTL_S} s)",
        killed.elapsed()
    );
}

#[test]
fn bad_input_is_rejected_with_a_clear_error_and_nothing_is_dispatched() {
    let mut c = Cluster::start();
    c.add_worker("pod-a", "node-1", "127.0.0.15");
    c.add_worker("pod-b", "node-2", "127.0.0.16");
    c.add_worker("pod-c", "node-2", "127.0.0.17");
    c.wait_for_workers(&["pod-a", "pod-b", "pod-c"]);
    c.workers[2].proc.sigkill();
    c.wait_for_workers(&["pod-a", "pod-b"]);

    let cases: [(&[&str], &[&str]); 6] = [
        (
            &["run", "ping", "--from", "nope", "--to", "pod-b"],
            &["unknown_worker", "source"],
        ),
        (
            &["run", "ping", "--from", "pod-a", "--to", "pod-c"],
            &["worker_offline", "pod-c"],
        ),
        (
            &[
                "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "5000",
            ],
            &["invalid_param", "params.count"],
        ),
        (
            &[
                "run",
                "ping",
                "--from",
                "pod-a",
                "--to-address",
                "192.0.2.1",
            ],
            &["address_not_allowed", "192.0.2.1"],
        ),
        (
            &["run", "ping", "--from", "pod", "--to", "pod-b"],
            &["ambiguous_worker"],
        ),
        (
            // These workers advertise IPv4 only: no silent IPv4 run in its place.
            &[
                "run", "ping", "--from", "pod-a", "--to", "pod-b", "--family", "6",
            ],
            &["invalid_param", "family", "has no ipv6 address"],
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
    // Flags the CLI itself refuses never reach the dispatcher.
    let out = c.podperf(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "-f",
    ]);
    assert_eq!(out.status.code(), Some(64), "a usage error exits 64");
    for args in [
        &[
            "run", "ping", "--from", "pod-a", "--to", "pod-b", "--family", "5",
        ][..],
        &["matrix", "--family", "ipv7"],
    ] {
        let out = c.podperf(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--family"), "{args:?}");
    }

    let (_, jobs) = c.json(&["jobs"]);
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        0,
        "nothing stored: {jobs}"
    );
    let log = c.workers[0].proc.log() + &c.workers[1].proc.log();
    assert!(
        !log.contains("job finished"),
        "a worker ran something:\n{log}"
    );
}

#[test]
fn jobs_can_be_listed_by_state_and_worker_and_watched_live() {
    let c = Cluster::two_workers("127.0.0.29", "127.0.0.30");

    let watch = watch(&c);

    let ok = c
        .json(&[
            "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "2",
        ])
        .1;
    let args = [
        "run",
        "ping",
        "--from",
        "pod-b",
        "--to",
        "pod-a",
        "--count",
        "50",
        "--timeout",
        "1",
    ];
    let timed_out = c.json(&args).1;
    let (ok_id, to_id) = (
        ok["job_id"].as_str().unwrap(),
        timed_out["job_id"].as_str().unwrap(),
    );

    let ids = |args: &[&str]| -> Vec<String> {
        let v = c.json(args).1;
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(
        ids(&["jobs", "--state", "succeeded"]),
        vec![ok_id.to_string()]
    );
    assert_eq!(
        ids(&["jobs", "--state", "timed_out"]),
        vec![to_id.to_string()]
    );
    assert_eq!(
        ids(&["jobs", "--worker", "pod-a"]),
        vec![to_id.to_string(), ok_id.to_string()]
    );
    assert_eq!(
        ids(&["jobs", "--worker", "pod-b", "--state", "succeeded"]),
        vec![ok_id.to_string()]
    );
    assert_eq!(ids(&["jobs", "--limit", "1"]).len(), 1);

    wait_until(
        Duration::from_secs(5),
        "watch printed the started event and the result",
        || {
            let log = watch.log();
            log.contains(ok_id)
                && log.contains("\"status\":\"succeeded\"")
                && log.contains("\"started\"")
        },
    );
}
