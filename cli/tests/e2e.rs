//! End to end through the `podperf` binary: real nats-server, redis-server, dispatcher, workers,
//! and real ping/traceroute/iperf3 between loopback addresses.

mod common;

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
    assert_eq!(a["tools"].as_array().unwrap().len(), 3);
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
fn bad_input_is_rejected_with_a_clear_error_and_nothing_is_dispatched() {
    let mut c = Cluster::start();
    c.add_worker("pod-a", "node-1", "127.0.0.15");
    c.add_worker("pod-b", "node-2", "127.0.0.16");
    c.add_worker("pod-c", "node-2", "127.0.0.17");
    c.wait_for_workers(&["pod-a", "pod-b", "pod-c"]);
    c.workers[2].proc.sigkill();
    c.wait_for_workers(&["pod-a", "pod-b"]);

    let cases: [(&[&str], &[&str]); 5] = [
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
fn sigkill_of_the_source_worker_mid_iperf3_ends_the_job_worker_lost() {
    let mut c = Cluster::two_workers("127.0.0.21", "127.0.0.22");

    let id = c.submit(&[
        "run",
        "iperf3",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--duration",
        "30",
    ]);
    c.wait_job(&id, Some("running"), Duration::from_secs(10));
    let client = ["-c", "127.0.0.22"];
    assert!(process_running(&client), "the iperf3 client runs");
    c.workers[0].proc.sigkill();

    let job = c.wait_job(&id, None, Duration::from_secs(TTL_S + 10));
    assert_eq!(job["state"], "worker_lost", "{job}\n{}", c.logs());
    assert!(
        job["message"].as_str().unwrap().contains("liveness"),
        "{job}"
    );
    wait_until(
        Duration::from_secs(5),
        "the orphaned iperf3 client is gone",
        || !process_running(&client),
    );
}

#[test]
fn a_job_past_its_deadline_times_out_and_a_cancelled_job_stays_cancelled() {
    let c = Cluster::two_workers("127.0.0.23", "127.0.0.24");

    let args = [
        "run",
        "ping",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--count",
        "50",
        "--timeout",
        "2",
    ];
    let (out, job) = c.json(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a job that did not succeed exits 2"
    );
    assert_eq!(job["state"], "timed_out", "{job}");

    let id = c.submit(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "100",
    ]);
    c.wait_job(&id, Some("running"), Duration::from_secs(10));
    let (out, job) = c.json(&["cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(job["state"], "cancelled", "{job}");
    wait_until(Duration::from_secs(5), "the ping is stopped", || {
        !process_running(&["ping", "127.0.0.24", "-c", "100"])
    });
    // The worker's own (cancelled) outcome arrives later and must not overwrite the state.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.job(&id)["state"], "cancelled");
}

#[test]
fn results_published_while_the_dispatcher_is_down_are_stored_after_it_restarts() {
    let mut c = Cluster::two_workers("127.0.0.25", "127.0.0.26");
    let watch = watch(&c);

    let mut ids = c.running_pings("pod-a", "pod-b", 10, 3);
    ids.extend(c.running_pings("pod-b", "pod-a", 10, 3));
    c.dispatcher.as_mut().unwrap().sigkill();
    // The pings finish (2 s) and their results land in the stream while nobody ingests them.
    wait_results(&watch, &ids, Duration::from_secs(15));
    c.start_dispatcher();
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(15));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
        assert_eq!(job["result"]["received"], 10);
    }
}

#[test]
fn no_result_is_lost_while_redis_is_down() {
    let mut c = Cluster::two_workers("127.0.0.27", "127.0.0.28");
    let watch = watch(&c);

    let ids = c.running_pings("pod-a", "pod-b", 10, 4);
    c.redis.stop();
    let out = c.podperf(&["jobs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("store_unavailable"),
        "{}",
        stderr(&out)
    );
    wait_results(&watch, &ids, Duration::from_secs(15)); // the pings end during the outage
    c.redis.restart();
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(20));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
    }
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

#[test]
fn matrix_measures_every_path_class_and_reports_the_overlay_cost() {
    let mut c = Cluster::start();
    c.add_worker("pod-a1", "node-a", "127.0.0.31");
    c.add_worker("pod-a2", "node-a", "127.0.0.32");
    c.add_worker("pod-b1", "node-b", "127.0.0.33");
    c.add_host_worker("host-a", "node-a", "127.0.0.34");
    c.add_host_worker("host-b", "node-b", "127.0.0.35");
    c.wait_for_workers(&["pod-a1", "pod-a2", "pod-b1", "host-a", "host-b"]);

    let args = "matrix --samples 2 --duration 1 --count 3 --udp --udp-bitrate 50M";
    let args: Vec<&str> = args.split(' ').collect();
    let (out, r) = c.json(&args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.logs());
    let p = &r["progress"];
    assert_eq!(p["finished"], true);
    assert_eq!(p["jobs_succeeded"], p["jobs"], "every job succeeded: {r}");
    assert_eq!(p["pairs"], 3);
    let classes: Vec<&str> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["pod_same_node", "pod_cross_node", "node_to_node"]);
    for class in r["classes"].as_array().unwrap() {
        assert_eq!(class["loss_percent"]["max"], 0.0, "{class}");
        assert_eq!(class["rtt_avg_ms"]["samples"], 2, "{class}");
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
    assert!(r["overlay_cost"]["bandwidth_ratio"].as_f64().unwrap() > 0.0);

    // The run is kept: listed, and its report can be shown again (here as CSV).
    let (_, runs) = c.json(&["runs"]);
    assert_eq!(runs["runs"][0]["run_id"], p["run_id"]);
    let out = c.podperf(&["-o", "csv", "runs", p["run_id"].as_str().unwrap()]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("path,pairs,tcp_bits_per_second"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

#[test]
fn everything_reconnects_by_itself_when_nats_restarts_mid_batch() {
    let mut c = Cluster::two_workers("127.0.0.36", "127.0.0.37");

    let ids = c.running_pings("pod-a", "pod-b", 15, 3);
    let down = Instant::now();
    c.nats[0].restart(); // same port, JetStream file store kept
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(30));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
    }
    c.wait_for_workers(&["pod-a", "pod-b"]);
    let (out, job) = c.json(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "2",
    ]);
    assert!(out.status.success(), "{job}\n{}", c.logs());
    eprintln!("recovered {:?} after the restart began", down.elapsed());
}
