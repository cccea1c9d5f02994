//! Figure 1 — job latency: submit → terminal state visible to a client (the CLI's wait), `noop`
//! jobs one at a time, next to a bare NATS request/reply round trip on the same server (the
//! floor). A second, shorter pass listens on the job, event, result and done subjects to say
//! where the time goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::Client;
use futures::StreamExt;
use podperf_client::Client as ApiClient;
use podperf_protocol::command::{WorkerCommand, WorkerReply};
use podperf_protocol::outcome::JobState;
use serde_json::json;
use uuid::Uuid;

use crate::api;
use crate::env::{Stack, StackOpts};
use crate::report::Figure;
use crate::sim;
use crate::stats::{median, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Jobs timed (one in flight).
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// Jobs of the breakdown pass.
    #[arg(long, default_value_t = 2_000)]
    pub breakdown_jobs: usize,
    /// Bare request/reply round trips.
    #[arg(long, default_value_t = 10_000)]
    pub floor: usize,
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new(
        "latency",
        "1. Job latency (noop, one in flight) vs the NATS floor",
    );
    let stack = Stack::start(StackOpts::default()).await?;
    let fleet = sim::start(&stack.nats_url(), "lat", 1, 1, 1).await?;
    let client = stack.api("bench-client").await?;
    api::wait_workers(&client, 1, Duration::from_secs(20)).await?;
    let source = fleet.ids[0].clone();

    timed_jobs(&client, &source, 300).await?; // warm-up
    let floor = Summary::of(&floor(client.nats(), &fleet.clients[0], opts.floor).await?);
    let js_floor = Summary::of(&js_floor(&fleet.clients[0], opts.floor / 2).await?);
    let (lat, failed) = timed_jobs(&client, &source, opts.jobs).await?;
    let job = Summary::of(&lat);
    let sleep0 = Summary::of(&sleep_zero(2000).await);
    let stages = breakdown(&stack, &client, &source, opts.breakdown_jobs).await?;

    let ratio = |a: f64, b: f64| format!("{:.1}×", a / b);
    fig.row(
        "bare NATS request/reply (floor), p50 / p99 / p99.9",
        floor.ms(),
        "DESIGN: p50 ≈ 0.10 ms, p99 ≈ 0.16 ms".into(),
        None,
    );
    fig.row(
        "JetStream publish → ack, one outstanding, file stream (as the worker publishes), p50 / p99 / p99.9",
        js_floor.ms(),
        "DESIGN: ≈ 12k msg/s with one ack outstanding (≈ 0.08 ms)".into(),
        None,
    );
    fig.row(
        &format!(
            "submit → terminal visible, {} noop jobs, p50 / p99 / p99.9",
            job.n
        ),
        job.ms(),
        "p50 ≤ 1 ms, p99 ≤ 5 ms; polling design ≈ 1000 ms (0–2 s)".into(),
        Some(job.p50_us <= 1000.0 && job.p99_us <= 5000.0),
    );
    fig.row(
        "job latency / floor (p50, p99, p99.9)",
        format!(
            "{}, {}, {}",
            ratio(job.p50_us, floor.p50_us),
            ratio(job.p99_us, floor.p99_us),
            ratio(job.p999_us, floor.p999_us)
        ),
        "".into(),
        None,
    );
    fig.row(
        "mean, max",
        format!("{:.3} ms, {:.1} ms", job.mean_us / 1e3, job.max_us / 1e3),
        "".into(),
        None,
    );
    fig.note(format!(
        "{failed} of {} jobs did not end `succeeded`; each wait is `podperf_client::Client::wait`, \
         as the CLI waits (subscribe to the done notice, read the record, wait for the notice)",
        job.n
    ));
    for (what, ms) in &stages {
        fig.note(format!(
            "breakdown (median of {} jobs, seen by a listener): {what}: {ms:.3} ms",
            opts.breakdown_jobs
        ));
    }
    fig.note(format!(
        "for reference, tokio's sleep(0) takes p50 {:.3} ms / p99 {:.3} ms (its timer has 1 ms \
         ticks): a `sleep_ms: 0` noop returns without sleeping",
        sleep0.p50_us / 1e3,
        sleep0.p99_us / 1e3
    ));
    fig.data = json!({ "floor": floor, "js_floor": js_floor, "tokio_sleep_zero": sleep0, "job": job, "breakdown_ms": stages });
    fleet.stop().await;
    Ok(fig.done())
}

/// Submits and waits for `n` jobs one after the other.
async fn timed_jobs(
    client: &ApiClient,
    source: &str,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut lat = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let t0 = Instant::now();
        let id = client.submit_one(api::noop(source)).await?;
        let rec = client.wait(id, api::WAIT).await?;
        lat.push(t0.elapsed());
        failed += usize::from(rec.state != JobState::Succeeded);
    }
    Ok((lat, failed))
}

/// Bare request/reply: `responder` answers on `bench.echo`, `client` asks.
async fn floor(client: &Client, responder: &Client, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut sub = responder.subscribe("bench.echo").await?;
    let r = responder.clone();
    let echo = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(to) = m.reply {
                let _ = r.publish(to, m.payload).await;
            }
        }
    });
    responder.flush().await?;
    let payload = bytes::Bytes::from(vec![b'x'; 200]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let t0 = Instant::now();
        client.request("bench.echo", payload.clone()).await?;
        if i >= 200 {
            out.push(t0.elapsed());
        }
    }
    echo.abort();
    Ok(out)
}

/// JetStream publish with a message id, awaiting each ack, on a file stream of its own (the
/// worker's `publish::durably` minus the retries).
async fn js_floor(client: &Client, n: usize) -> anyhow::Result<Vec<Duration>> {
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_FLOOR".into(),
        subjects: vec!["bench.floor.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 300]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        let t0 = Instant::now();
        let ack = js
            .publish_with_headers(format!("bench.floor.{i}"), headers, payload.clone())
            .await?;
        ack.await?;
        if i >= 100 {
            out.push(t0.elapsed());
        }
    }
    js.delete_stream("BENCH_FLOOR").await?;
    Ok(out)
}

/// How long `tokio::time::sleep(Duration::ZERO)` takes on this runtime.
async fn sleep_zero(n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        tokio::time::sleep(Duration::ZERO).await;
        out.push(t0.elapsed());
    }
    out
}

type Seen = Arc<Mutex<HashMap<Uuid, HashMap<&'static str, Instant>>>>;

/// Timestamps every hop of `n` jobs as a listener on the job, reply, event, result and done
/// subjects sees them; returns the median time from submit to each hop.
async fn breakdown(
    stack: &Stack,
    client: &ApiClient,
    source: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, f64)>> {
    let monitor = stack.client("bench-monitor").await?;
    let seen: Seen = Arc::default();
    let mut listeners = Vec::new();
    for (subject, stage) in [
        ("podperf.jobs.>", "job request reaches the worker"),
        ("_INBOX_dispatcher.>", "worker's acceptance sent"),
        ("podperf.events.>", "`started` event published"),
        ("podperf.results.>", "result published"),
        ("podperf.done.>", "done notice published"),
    ] {
        let mut sub = monitor.subscribe(subject).await?;
        let seen = seen.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let at = Instant::now();
                if let Some(id) = job_of(&m.subject, &m.payload) {
                    seen.lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .entry(stage)
                        .or_insert(at);
                }
            }
        }));
    }
    monitor.flush().await?;
    let mut rows: Vec<HashMap<&'static str, f64>> = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let id = client.submit_one(api::noop(source)).await?;
        let t_submit = t0.elapsed();
        client.wait(id, api::WAIT).await?;
        let t_end = t0.elapsed();
        tokio::time::sleep(Duration::from_micros(200)).await; // let the listener catch up
        let hops = seen.lock().unwrap().remove(&id).unwrap_or_default();
        let mut row: HashMap<&'static str, f64> = hops
            .iter()
            .map(|(k, at)| (*k, ms(at.duration_since(t0))))
            .collect();
        row.insert("submit reply received", ms(t_submit));
        row.insert("terminal record read by the client (end)", ms(t_end));
        rows.push(row);
    }
    for l in listeners {
        l.abort();
    }
    let order = [
        "submit reply received",
        "job request reaches the worker",
        "worker's acceptance sent",
        "`started` event published",
        "result published",
        "done notice published",
        "terminal record read by the client (end)",
    ];
    Ok(order
        .iter()
        .map(|k| {
            let v: Vec<f64> = rows.iter().filter_map(|r| r.get(k).copied()).collect();
            (format!("t(submit) → {k}"), median(&v))
        })
        .collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The job a message is about (job requests and worker replies carry it in the payload).
fn job_of(subject: &str, payload: &[u8]) -> Option<Uuid> {
    if let Some(rest) = subject
        .strip_prefix("podperf.events.")
        .or_else(|| subject.strip_prefix("podperf.results."))
        .or_else(|| subject.strip_prefix("podperf.done."))
    {
        return rest.parse().ok();
    }
    if subject.starts_with("podperf.jobs.") {
        return match serde_json::from_slice::<WorkerCommand>(payload).ok()? {
            WorkerCommand::Run(j) => Some(j.job_id),
            WorkerCommand::Cancel(c) => Some(c.job_id),
        };
    }
    match serde_json::from_slice::<WorkerReply>(payload).ok()? {
        WorkerReply::Accepted { job_id, .. } => Some(job_id),
        _ => None,
    }
}
