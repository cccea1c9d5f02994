//! Limits under load: a flood of submits gets typed back-pressure (`busy`) instead of unbounded
//! memory, the worker's concurrency limit holds, and raw output is capped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use podperf_client::Error as ClientError;
use podperf_protocol::api::ErrorCode;
use podperf_protocol::outcome::JobState;

use crate::harness::{noops, spec, DispatcherOpts, Sys};

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Submits 40 batches of 100 noops (4,000 jobs against `PODPERF_MAX_QUEUED=500`), `parallel` at a
/// time; checks that the refusals are typed `busy`, that no more than the limit was accepted, that
/// memory stays bounded, that every accepted job completes and that the queue takes jobs again.
async fn flood(parallel: usize, ip: &str) {
    const MAX_QUEUED: usize = 500;
    let mut sys = Sys::start(DispatcherOpts {
        max_queued: Some(MAX_QUEUED),
        ..Default::default()
    })
    .await;
    sys.add_worker("pod-a", "node-1", ip, 500);
    sys.wait_workers(&["pod-a"], Duration::from_secs(15)).await;
    let pid = sys.dispatcher.as_ref().unwrap().pid();
    let rss_before = rss_kib(pid);

    let t0 = Instant::now();
    let replies: Vec<Result<Vec<uuid::Uuid>, ClientError>> = futures::stream::iter(0..40)
        .map(|_| sys.submit(noops("pod-a", 100, 3_000)))
        .buffer_unordered(parallel)
        .collect()
        .await;
    let took = t0.elapsed();
    let rss_peak = rss_kib(pid);
    let mut codes: HashMap<Option<ErrorCode>, usize> = HashMap::new();
    let mut accepted = Vec::new();
    for r in &replies {
        match r {
            Ok(ids) => accepted.extend(ids.iter().copied()),
            Err(e) => *codes.entry(e.code()).or_default() += 1,
        }
    }
    println!(
        "FIGURES busy ({parallel} at a time): 40×100 noop submits in {took:?}: {} accepted, \
         refused {codes:?}; dispatcher RSS {rss_before} KiB → {rss_peak} KiB",
        accepted.len()
    );
    assert_eq!(
        codes.keys().copied().collect::<Vec<_>>(),
        vec![Some(ErrorCode::Busy)],
        "only busy refusals"
    );
    assert!(!accepted.is_empty(), "nothing accepted");
    assert!(
        accepted.len() <= MAX_QUEUED,
        "{} jobs accepted with PODPERF_MAX_QUEUED={MAX_QUEUED}",
        accepted.len()
    );
    assert!(rss_peak < 256 * 1024, "dispatcher RSS {rss_peak} KiB");

    // Every accepted job still completes, and the queue takes jobs again afterwards.
    sys.wait_terminal(&accepted, Duration::from_secs(60)).await;
    let audit = sys.audit(&accepted, &accepted).await;
    audit.check("busy flood", &sys);
    let again = sys.submit_ok(noops("pod-a", 100, 0)).await;
    sys.wait_terminal(&again, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_submits_gets_busy_and_memory_stays_bounded() {
    flood(1, "127.0.0.131").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_never_overshoot_max_queued() {
    flood(40, "127.0.0.137").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_concurrency_limit_holds() {
    const MAX_JOBS: u32 = 3;
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.132", MAX_JOBS);
    sys.wait_workers(&["pod-a"], Duration::from_secs(15)).await;
    let ids = sys.submit_ok(noops("pod-a", 24, 300)).await;
    let took = sys.wait_terminal(&ids, Duration::from_secs(60)).await;
    let audit = sys.audit(&ids, &ids).await;
    audit.check("worker concurrency", &sys);

    // The worker's own start/finish times: at no instant were more than MAX_JOBS running.
    let results = sys.stream_results().await;
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for id in &ids {
        let o = &results[id][0];
        edges.push((o.started_at_ms, 1));
        edges.push((o.finished_at_ms, -1));
    }
    edges.sort(); // a finish (-1) sorts before a start (+1) at the same millisecond
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    println!(
        "FIGURES concurrency: 24 noops of 300 ms on a worker with PODPERF_MAX_JOBS={MAX_JOBS}: \
         peak {peak} running at once, all done in {took:?}"
    );
    assert!(peak <= MAX_JOBS as i32, "{peak} jobs ran at once");
    assert_eq!(peak, MAX_JOBS as i32, "the limit was never reached");
}

/// A legitimate in-bounds iperf3 run whose `--json` report exceeds the raw-output cap (64 KiB
/// per stream, stdout and stderr): the stored raw output is capped, the state agrees with the
/// worker's own result, and the job succeeds (the parser reads the whole report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_output_is_capped_but_a_long_iperf3_report_still_parses() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.133", 8);
    sys.add_worker("pod-b", "node-2", "127.0.0.134", 8);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;
    let job = spec(json!({"source": "pod-a", "target": {"worker": "pod-b"},
                          "params": {"kind": "iperf3", "duration_s": 12, "parallel": 16}}));
    let id = sys.submit_ok(vec![job]).await[0];
    sys.wait_terminal(&[id], Duration::from_secs(30)).await;
    let rec = sys.get(id).await.unwrap();
    let raw = rec.raw_output.as_deref().unwrap_or("");
    println!(
        "FIGURES raw cap: iperf3 -P 16 -t 12 → {} ({:?}), raw_output {} bytes",
        rec.state,
        rec.reason,
        raw.len()
    );
    assert!(
        raw.len() <= 2 * 64 * 1024 + 64,
        "raw output not capped: {} bytes",
        raw.len()
    );
    assert!(
        sys.audit(&[id], &[]).await.misreported.is_empty(),
        "the stored state disagrees with the worker's result: {rec:?}"
    );
    assert_eq!(rec.state, JobState::Succeeded, "{:?}", rec.message);
}
