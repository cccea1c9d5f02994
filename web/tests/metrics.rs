//! `/metrics` of the podperf-web binary in front of a real system (nats-server, redis-server,
//! the dispatcher, loopback workers running real fping and ping): the series of a sweep round
//! and a ping with their labels and values, `promtool check metrics` on the real scrape, a
//! departed node's series removed. And the series count of synthetic clusters (the cardinality
//! plan of k8s/monitoring/README.md; the figures in BENCHMARKS.md come from
//! `series_count_at_scale`).

mod metrics_common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_common::{pair, sample, sweep_round, MetricsWeb};
use podperf_protocol::job::{Iperf3Params, JobParams, JobSpec, PingParams, Target};
use podperf_protocol::outcome::{JobOutcome, OutcomeStatus};
use podperf_protocol::result::ProbeResult;
use podperf_protocol::sweep::{SweepResult, SweepTargetResult};
use podperf_protocol::worker::WorkerInfo;
use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};
use podperf_web::metrics::Metrics;

/// `promtool check metrics` on `text`; panics with its output when it finds a problem.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

async fn ping(cluster: &Cluster, from: &str, to: &str, count: u32) {
    let client = cluster.client();
    let spec = JobSpec {
        family: None,
        source: cluster.worker(from).id.clone(),
        target: Some(Target::Worker(cluster.worker(to).id.clone())),
        params: JobParams::Ping(PingParams {
            count,
            interval_ms: 200,
            ..PingParams::default()
        }),
        timeout_s: None,
    };
    let id = client.submit_one(spec).await.expect("ping accepted");
    let rec = client
        .wait_past_deadline(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rec.state.as_str(), "succeeded", "{rec:?}");
}

async fn iperf3(cluster: &Cluster, from: &str, to: &str) {
    let client = cluster.client();
    let spec = JobSpec {
        family: None,
        source: cluster.worker(from).id.clone(),
        target: Some(Target::Worker(cluster.worker(to).id.clone())),
        params: JobParams::Iperf3(Iperf3Params {
            duration_s: 1,
            ..Iperf3Params::default()
        }),
        timeout_s: None,
    };
    let id = client.submit_one(spec).await.expect("iperf3 accepted");
    let rec = client
        .wait_past_deadline(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rec.state.as_str(), "succeeded", "{rec:?}");
}

#[tokio::test]
async fn a_sweep_round_and_a_ping_become_series_and_a_departed_node_loses_them() {
    let mut c = Cluster::start(ClusterOpts::default()).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.171"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.172"));
    c.add_worker(WorkerSpec::new("pod-c", "node-3", "127.0.0.173"));
    c.add_worker(WorkerSpec::new("host-1", "node-1", "127.0.0.174").host_network());
    c.add_worker(WorkerSpec::new("host-2", "node-2", "127.0.0.175").host_network());
    let pods = ["pod-a", "pod-b", "pod-c", "host-1", "host-2"];
    c.wait_workers(&pods, Duration::from_secs(20)).await;
    let web = MetricsWeb::start(&c, 10_000).await;
    let workers = |node: &str, network: &str| {
        format!("podperf_workers{{node=\"{node}\",network=\"{network}\"}}")
    };
    web.wait_for("every worker is counted", |t| {
        (sample(t, &workers("node-1", "pod")) == Some(1.0)
            && sample(t, &workers("node-1", "host")) == Some(1.0)
            && sample(t, &workers("node-3", "pod")) == Some(1.0))
        .then_some(())
    })
    .await;
    let before = web.scrape().await.unwrap();
    assert!(
        !before.contains("podperf_sweep_round_last_completed_timestamp_seconds "),
        "no round yet: {before}"
    );

    let started = podperf_protocol::now_ms() as f64 / 1000.0;
    sweep_round(&c, 3).await;
    ping(&c, "pod-a", "pod-b", 2).await;

    let ab = |name: &str| pair(name, "node-1", "node-2", "pod_cross_node");
    let text = web
        .wait_for("the ping and the sweeps are counted", |t| {
            let done = sample(t, "podperf_jobs_total{kind=\"ping\",state=\"succeeded\"}");
            (sample(t, &ab("podperf_probe_packets_sent_total")) == Some(5.0) && done == Some(1.0))
                .then(|| t.to_string())
        })
        .await;
    // pod-a → pod-b: 3 sweep requests and 2 pings, all answered, every RTT in the histogram.
    assert_eq!(
        sample(&text, &ab("podperf_probe_packets_received_total")),
        Some(5.0)
    );
    assert_eq!(sample(&text, &ab("podperf_rtt_seconds_count")), Some(5.0));
    let sum = sample(&text, &ab("podperf_rtt_seconds_sum")).unwrap();
    assert!(sum > 0.0 && sum < 0.5, "{sum}");
    let inf = "podperf_rtt_seconds_bucket{le=\"+Inf\",src_node=\"node-1\",dst_node=\"node-2\",path=\"pod_cross_node\"}";
    assert_eq!(sample(&text, inf), Some(5.0), "{text}");
    // Every path class of the mesh, with the host worker's.
    for (src, dst, path, sent) in [
        ("node-1", "node-1", "pod_to_node", 3.0),
        ("node-1", "node-1", "node_to_pod", 3.0),
        ("node-1", "node-3", "node_to_pod", 3.0),
        ("node-3", "node-1", "pod_to_node", 3.0),
        ("node-2", "node-3", "pod_cross_node", 3.0),
    ] {
        let s = pair("podperf_probe_packets_sent_total", src, dst, path);
        assert_eq!(sample(&text, &s), Some(sent), "{s}\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "podperf_jobs_total{kind=\"sweep\",state=\"succeeded\"}"
        ),
        Some(5.0)
    );
    // The round completed (every worker swept) and `podperf health` named nothing.
    let at = sample(
        &text,
        "podperf_sweep_round_last_completed_timestamp_seconds",
    )
    .unwrap();
    assert!(
        at >= started.floor() && at <= podperf_protocol::now_ms() as f64 / 1000.0 + 1.0,
        "{at}"
    );
    assert!(!text.contains("podperf_fault{"), "{text}");
    assert!(
        !text.contains("podperf_overlay_bandwidth_ratio "),
        "no bandwidth yet"
    );
    // TCP bandwidth pod ↔ pod across nodes and node ↔ node: the gauges and the overlay ratio.
    iperf3(&c, "pod-a", "pod-b").await;
    iperf3(&c, "host-1", "host-2").await;
    let bw = |path: &str| {
        format!(
            "podperf_bandwidth_bytes_per_second{{src_node=\"node-1\",dst_node=\"node-2\",path=\"{path}\",protocol=\"tcp\"}}"
        )
    };
    let text = web
        .wait_for("the bandwidth is exported", |t| {
            sample(t, "podperf_overlay_bandwidth_ratio").map(|_| t.to_string())
        })
        .await;
    let pod = sample(&text, &bw("pod_cross_node")).unwrap();
    let node = sample(&text, &bw("node_to_node")).unwrap();
    let ratio = sample(&text, "podperf_overlay_bandwidth_ratio").unwrap();
    assert!(pod > 1e6 && node > 1e6, "{pod} {node}");
    assert!(
        (ratio - pod / node).abs() < 1e-9 * ratio.max(1.0),
        "{ratio} {pod} {node}"
    );
    let retransmits = pair(
        "podperf_tcp_retransmits",
        "node-1",
        "node-2",
        "node_to_node",
    );
    assert!(sample(&text, &retransmits).is_some(), "{text}");
    let depth = web
        .wait_for("the queue depth is read", |t| {
            sample(t, "podperf_queue_depth")
        })
        .await;
    assert_eq!(depth, 0.0);
    let plain = web.scrape_text().await.unwrap();
    assert!(
        plain.contains("# TYPE podperf_jobs_total counter"),
        "{plain}"
    );
    promtool_check(&plain);

    // node-3's only worker leaves: none of its series stays.
    let i = c.workers.iter().position(|w| w.pod() == "pod-c").unwrap();
    c.workers[i].proc.sigterm();
    let text = web
        .wait_for("node-3's series are removed", |t| {
            (!t.contains("node-3")).then(|| t.to_string())
        })
        .await;
    assert_eq!(
        sample(&text, &ab("podperf_probe_packets_sent_total")),
        Some(5.0)
    );
    assert_eq!(sample(&text, &workers("node-2", "pod")), Some(1.0));
    promtool_check(&web.scrape_text().await.unwrap());
}

fn worker(node: usize, host: bool) -> WorkerInfo {
    let id = format!("{}-{node}", if host { "host" } else { "pod" });
    WorkerInfo {
        worker_id: id.clone(),
        pod_name: id,
        pod_namespace: None,
        pod_ip: format!("10.{}.{}.{}", node / 250, node % 250, u8::from(host) + 1)
            .parse()
            .unwrap(),
        node_name: format!("node-{node}"),
        node_ip: None,
        pod_ips: vec![],
        node_ips: vec![],
        host_network: host,
        tools: vec![],
        iperf3_port: 5201,
        sockperf_port: 11111,
        max_concurrent_jobs: 4,
        started_at_ms: 0,
        version: "test".into(),
    }
}

fn sweep_from(src: &WorkerInfo, all: &[WorkerInfo]) -> JobOutcome {
    sweep_reaching(src, all, |_| true)
}

/// A sweep from `src` to every other of `all`: 5 requests each, all answered where `reaches`
/// says so, none elsewhere.
fn sweep_reaching(
    src: &WorkerInfo,
    all: &[WorkerInfo],
    reaches: impl Fn(&WorkerInfo) -> bool,
) -> JobOutcome {
    let targets = all
        .iter()
        .filter(|t| t.worker_id != src.worker_id)
        .map(|t| {
            let ok = reaches(t);
            SweepTargetResult {
                worker_id: t.worker_id.clone(),
                node: t.node_name.clone(),
                ip: t.pod_ip,
                host_network: t.host_network,
                sent: 5,
                received: if ok { 5 } else { 0 },
                loss_percent: if ok { 0.0 } else { 100.0 },
                rtt_min_ms: ok.then_some(0.05),
                rtt_avg_ms: ok.then_some(0.1),
                rtt_max_ms: ok.then_some(0.3),
                duplicates: 0,
            }
        })
        .collect();
    JobOutcome {
        job_id: uuid::Uuid::new_v4(),
        worker_id: src.worker_id.clone(),
        status: OutcomeStatus::Succeeded,
        reason: None,
        message: None,
        result: Some(ProbeResult::Sweep(SweepResult { targets })),
        raw_output: None,
        started_at_ms: 1,
        finished_at_ms: 2,
    }
}

/// The series of a full-mesh sweep round over `nodes` nodes with a pod and a host worker each
/// (all five path classes), how long feeding it and a scrape take, and the peak RSS so far.
/// Without `complete`, the last host worker sends no sweep: the round does not complete and its
/// `podperf health` (O(nodes × node pairs) in podperf-report) is not evaluated.
fn series_after_a_round(
    nodes: usize,
    max_pairs: u64,
    complete: bool,
) -> (usize, Duration, Duration) {
    let m = Metrics::new(max_pairs);
    let all: Vec<WorkerInfo> = (0..nodes)
        .flat_map(|n| [worker(n, false), worker(n, true)])
        .collect();
    for w in &all {
        m.worker_up(w.clone());
    }
    let sources = if complete { all.len() } else { all.len() - 1 };
    let t = Instant::now();
    for w in &all[..sources] {
        m.observe(sweep_from(w, &all));
    }
    let fed = t.elapsed();
    let t = Instant::now();
    let text = m.encode();
    let scrape = t.elapsed();
    let round = text.contains("podperf_sweep_round_last_completed_timestamp_seconds 0.002");
    assert_eq!(round, complete, "round completed");
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    (series, fed, scrape)
}

/// Peak RSS of this process (`VmHWM`), MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// 10 nodes by default; `PODPERF_LONG_TESTS=1` adds 100 and (round not completed) 1,000. The
/// BENCHMARKS.md figures: `PODPERF_LONG_TESTS=1 cargo test -p podperf-web --test metrics --
/// series_count --nocapture`.
#[test]
fn series_count_at_scale() {
    let mut sizes = vec![(10, true)];
    if std::env::var("PODPERF_LONG_TESTS").is_ok_and(|v| v == "1") {
        sizes.extend([(100, true), (1000, false)]);
    }
    for (nodes, complete) in sizes {
        let n = nodes as u64;
        for max_pairs in [podperf_web::metrics::MAX_PAIRS_DEFAULT, 0] {
            let per_pair = n * (n - 1) <= max_pairs;
            if nodes >= 1000 && per_pair {
                continue;
            }
            let (series, fed, scrape) = series_after_a_round(nodes, max_pairs, complete);
            println!(
                "{nodes} nodes, max_pairs {max_pairs}: {series} series, round fed in {fed:?}, \
                 scrape encoded in {scrape:?}, peak RSS so far {} MiB",
                peak_rss_mib()
            );
            // Per pair: 4 classes between distinct nodes (n·(n−1) pairs each) and 2 on one node
            // (pod ↔ its own node; pod_same_node has no pair: one pod per node); summed: one
            // per source node and class.
            let pairs = if per_pair {
                4 * n * (n - 1) + 2 * n
            } else {
                6 * n
            };
            // 17 histogram series and 2 counters per pair, 2 worker gauges per node, the round's
            // timestamp. The silent host worker's own 3 sums are missing.
            let mut expected = pairs * 19 + 2 * n + 1;
            if !complete {
                expected -= 3 * 19 + 1;
            }
            assert_eq!(
                series as u64, expected,
                "{nodes} nodes, max_pairs {max_pairs}"
            );
        }
    }
}

#[test]
fn above_the_bound_pairs_are_summed_per_source_and_a_change_of_mode_starts_afresh() {
    // 2 nodes = 2 node pairs: per pair; 3 nodes = 6 > 2: summed per source node.
    let m = Metrics::new(2);
    let all: Vec<WorkerInfo> = (0..3).map(|n| worker(n, false)).collect();
    m.worker_up(all[0].clone());
    m.worker_up(all[1].clone());
    m.observe(sweep_from(&all[0], &all[..2]));
    let sent = |dst: &str| {
        pair(
            "podperf_probe_packets_sent_total",
            "node-0",
            dst,
            "pod_cross_node",
        )
    };
    assert_eq!(sample(&m.encode(), &sent("node-1")), Some(5.0));
    m.worker_up(all[2].clone());
    let text = m.encode();
    assert!(
        !text.contains("podperf_probe_packets_sent_total{"),
        "{text}"
    );
    m.observe(sweep_from(&all[0], &all));
    let text = m.encode();
    assert_eq!(sample(&text, &sent("*")), Some(10.0), "{text}");
    assert_eq!(sample(&text, &sent("node-1")), None);
    // node-2 leaves: per pair again, and nothing names it.
    m.worker_gone("pod-2");
    let text = m.encode();
    assert!(
        !text.contains("dst_node=\"*\"") && !text.contains("node-2"),
        "{text}"
    );
}

#[test]
fn a_round_sets_the_findings_of_podperf_health_and_the_next_one_clears_them() {
    let m = Metrics::new(10_000);
    let all: Vec<WorkerInfo> = (0..4).map(|n| worker(n, false)).collect();
    for w in &all {
        m.worker_up(w.clone());
    }
    let fault = "podperf_fault{node=\"node-3\",finding=\"unreachable\"}";
    // Nobody reaches node-3 (it reaches everyone): named once every worker has swept.
    for w in &all[..3] {
        m.observe(sweep_reaching(w, &all, |t| t.node_name != "node-3"));
        assert_eq!(
            sample(&m.encode(), fault),
            None,
            "the round is not complete"
        );
    }
    m.observe(sweep_from(&all[3], &all));
    let text = m.encode();
    assert_eq!(sample(&text, fault), Some(1.0), "{text}");
    assert_eq!(text.matches("podperf_fault{").count(), 1, "{text}");
    for w in &all {
        m.observe(sweep_from(w, &all));
    }
    let text = m.encode();
    assert!(!text.contains("podperf_fault{"), "{text}");
    assert!(text.contains("podperf_sweep_round_last_completed_timestamp_seconds 0.002"));
}

/// A TCP iperf3 job from `src` to `dst` at `bps`, as its done notice carries it.
fn iperf3_done(src: &WorkerInfo, dst: &WorkerInfo, bps: f64) -> podperf_protocol::api::JobRecord {
    let mut rec = podperf_web::metrics::state::sweep_record(sweep_from(src, &[]));
    rec.params = JobParams::Iperf3(Iperf3Params::default());
    rec.target_worker = Some(dst.worker_id.clone());
    rec.finished_at_ms = Some(podperf_protocol::now_ms());
    rec.result = Some(ProbeResult::Iperf3(
        podperf_protocol::result::Iperf3Result {
            protocol: podperf_protocol::job::TransportProtocol::Tcp,
            reverse: false,
            streams: 1,
            duration_s: 1.0,
            bytes_sent: 0,
            bytes_received: 0,
            sender_bits_per_second: bps,
            receiver_bits_per_second: bps,
            retransmits: Some(0),
            jitter_ms: None,
            lost_packets: None,
            packets: None,
            lost_percent: None,
            cpu_host_percent: None,
            cpu_remote_percent: None,
        },
    ));
    rec
}

/// A sweep that ends without a result (timed out: only its done notice tells) completes the
/// round, its node named as cannot send; a node whose sending bandwidth is far below the rest
/// is `slow_bandwidth`; the latest round's report is what `GET /api/v2/health` answers.
#[test]
fn a_failed_sweep_completes_the_round_and_bandwidth_findings_are_faults() {
    let m = Metrics::new(10_000);
    let all: Vec<WorkerInfo> = (0..4).map(|n| worker(n, false)).collect();
    for w in &all {
        m.worker_up(w.clone());
    }
    for s in &all {
        for d in all.iter().filter(|d| d.worker_id != s.worker_id) {
            let bps = if s.node_name == "node-3" { 50e6 } else { 9e9 };
            m.job_done(&iperf3_done(s, d, bps));
        }
    }
    for w in &all[1..] {
        m.observe(sweep_from(w, &all));
    }
    assert!(m.latest_health().is_none(), "node-0's sweep has not ended");
    let mut failed = podperf_web::metrics::state::sweep_record(sweep_from(&all[0], &all));
    failed.result = None;
    failed.state = podperf_protocol::outcome::JobState::TimedOut;
    m.job_done(&failed);
    let text = m.encode();
    let fault = |n: &str, f: &str| format!("podperf_fault{{node=\"{n}\",finding=\"{f}\"}}");
    assert_eq!(
        sample(&text, &fault("node-0", "cannot_send")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &fault("node-3", "slow_bandwidth")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(text.matches("podperf_fault{").count(), 2, "{text}");
    let h = m.latest_health().expect("the round completed");
    assert_eq!(h.sweeps, 4);
    assert!(!h.report.healthy);
    let slow = h
        .report
        .findings
        .iter()
        .find(|f| f.node == "node-3")
        .unwrap();
    assert_eq!(
        slow.message,
        "node-3 slow: pod_cross_node TCP bandwidth sending 50.0 Mbit/s vs 9.00 Gbit/s median"
    );
}

/// A schedule's last run as series (read with the status every 5 s), removed with the schedule.
#[tokio::test]
async fn a_schedule_s_last_run_becomes_series_and_goes_with_it() {
    use podperf_protocol::schedule::{AddScheduleRequest, ScheduledRun, SweepRound};
    let opts = ClusterOpts {
        dispatcher_env: vec![("PODPERF_SCHEDULE_MIN_EVERY_MS".into(), "1000".into())],
        ..ClusterOpts::default()
    };
    let mut c = Cluster::start(opts).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.181"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.182"));
    c.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(20))
        .await;
    let web = MetricsWeb::start(&c, 10_000).await;
    let added = podperf_protocol::now_ms() as f64 / 1000.0;
    let req = AddScheduleRequest {
        name: "sweeps".into(),
        every_ms: 1_000,
        jitter: 0.0,
        until_ms: None,
        run: ScheduledRun::Sweep(SweepRound {
            count: 2,
            interval_ms: 20,
            ..SweepRound::default()
        }),
    };
    c.client().schedule_add(&req).await.unwrap();
    let text = web
        .wait_for("the schedule's last run has succeeded", |t| {
            let ok = sample(
                t,
                "podperf_schedule_last_run_succeeded{schedule=\"sweeps\"}",
            );
            (ok == Some(1.0)).then(|| t.to_string())
        })
        .await;
    let at = sample(
        &text,
        "podperf_schedule_last_run_timestamp_seconds{schedule=\"sweeps\"}",
    )
    .expect("the last run's start");
    let now = podperf_protocol::now_ms() as f64 / 1000.0;
    assert!(at >= added - 1.0 && at <= now, "{at} not in {added}..{now}");
    c.client().schedule_rm("sweeps").await.unwrap();
    web.wait_for("a removed schedule's series are gone", |t| {
        (!t.contains("schedule=\"sweeps\"")).then_some(())
    })
    .await;
}
