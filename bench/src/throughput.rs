//! Figure 2 — throughput: sustained `noop` jobs/s end to end (submitted in batches, results stored
//! in Redis, counted there as `succeeded`), 1 dispatcher, 100 simulated workers; where the CPU
//! goes, per process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podperf_protocol::outcome::JobState;
use redis::AsyncCommands;
use serde_json::json;

use crate::api;
use crate::env::{Sampler, Stack, StackOpts};
use crate::report::Figure;
use crate::sim;
use crate::stats::{percentile, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, default_value_t = 100)]
    pub workers: usize,
    /// Jobs per submit.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Most jobs submitted but not yet `succeeded`.
    #[arg(long, default_value_t = 4000)]
    pub window: u64,
    /// Seconds measured (after a 5 s warm-up).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new("throughput", "2. Throughput (noop, batches, 1 dispatcher)");
    let stack = Stack::start(StackOpts::default()).await?;
    let fleet = sim::start(&stack.nats_url(), "tp", opts.workers, 4, 10).await?;
    let client = stack.api("bench-client").await?;
    api::wait_workers(&client, opts.workers, Duration::from_secs(30)).await?;
    let redis = redis::Client::open(stack.redis.url())?;
    let mut conn = redis.get_multiplexed_async_connection().await?;

    let submitted = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let submitter = tokio::spawn(submit_loop(
        client.clone(),
        fleet.ids.clone(),
        opts.clone(),
        submitted.clone(),
        done.clone(),
        stop.clone(),
    ));
    let counter = {
        let (mut conn, done, stop) = (conn.clone(), done.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(n) = conn.zcard::<_, u64>(state_key(JobState::Succeeded)).await {
                    done.store(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (d0, t0) = (done.load(Ordering::Relaxed), Instant::now());
    let sampler = Sampler::start(&stack.pids());
    let mut per_second = Vec::new();
    let mut backlog: Vec<(u64, usize)> = Vec::new();
    let mut last = d0;
    for _ in 0..opts.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = done.load(Ordering::Relaxed);
        per_second.push((now - last) as f64);
        if let Ok(p) = pending(client.nats()).await {
            backlog.push(p);
        }
        last = now;
    }
    let usage = sampler.finish();
    let (d1, secs) = (done.load(Ordering::Relaxed), t0.elapsed().as_secs_f64());
    stop.cancel();
    let _ = submitter.await;
    let _ = counter.await;
    let rate = (d1 - d0) as f64 / secs;

    // Drain what is outstanding, then count every state and sample the jobs' records.
    let total = submitted.load(Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(60);
    let mut states = Vec::new();
    loop {
        states.clear();
        let mut terminal = 0;
        for s in JobState::ALL {
            let n: u64 = conn.zcard(state_key(s)).await?;
            terminal += if s.is_terminal() { n } else { 0 };
            states.push((s.as_str(), n));
        }
        if terminal >= total || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (attempts, in_system) = sample_records(&mut conn).await?;

    let mut sorted = per_second.clone();
    sorted.sort_by(f64::total_cmp);
    fig.row(
        &format!(
            "sustained noop jobs/s ({} workers, batches of {}, ≤ {} outstanding, {}s)",
            opts.workers, opts.batch, opts.window, opts.seconds
        ),
        format!(
            "{rate:.0} jobs/s (per-second min {:.0}, median {:.0}, max {:.0})",
            sorted.first().unwrap_or(&0.0),
            percentile(&sorted, 50.0),
            sorted.last().unwrap_or(&0.0)
        ),
        "target ≥ 10,000 jobs/s on 2 cores; polling design: 1 task/s per client".into(),
        Some(rate >= 10_000.0),
    );
    for u in &usage {
        fig.row(
            &format!("CPU {}", u.process),
            format!("{:.0} % of a core, RSS {:.0} MiB", u.cpu_percent, u.rss_mib),
            format!("{:.0} µs CPU per job", 1e4 * u.cpu_percent / rate.max(1.0)),
            None,
        );
    }
    let busy: f64 = usage.iter().map(|u| u.cpu_percent).sum();
    fig.note(format!(
        "results waiting for the dispatcher's ingest consumer (num_pending, num_ack_pending), once a second: {backlog:?}"
    ));
    fig.note(format!("all four processes together: {busy:.0} % of a core = {:.0} µs of CPU per job (2 cores = 200 %)", 1e4 * busy / rate.max(1.0)));
    fig.note(format!(
        "job states after draining {total} submitted: {states:?}"
    ));
    fig.note(format!("delivery attempts per job (sample of {}): mean {:.2}, max {:.0} — attempts > 1 are `at_capacity` refusals (8 jobs per worker) retried after ≥ 50 ms", attempts.len(), attempts.iter().sum::<f64>() / attempts.len().max(1) as f64, attempts.iter().cloned().fold(0.0, f64::max)));
    fig.note(format!(
        "created → finished (worker) under load, sample: {}",
        in_system.ms()
    ));
    fig.data = json!({ "rate": rate, "per_second": per_second, "usage": usage, "states": states, "consumer_backlog": backlog, "in_system": in_system });
    for in_flight in [1, 64] {
        let r = crate::ingest_ceiling::rate(&stack.redis.url(), 20_000, in_flight).await?;
        fig.row(
            &format!("prototype: Store::transition running + succeeded, {in_flight} job(s) in flight (the ingest's Redis work alone)"),
            format!("{r:.0} jobs/s"),
            if in_flight == 1 { "what ingest.rs does today (one message at a time)".into() } else { "ingest with concurrent applies".into() },
            None,
        );
    }
    fleet.stop().await;
    Ok(fig.done())
}

fn state_key(s: JobState) -> String {
    format!("podperf:jobs:state:{s}")
}

async fn submit_loop(
    client: podperf_client::Client,
    ids: Vec<String>,
    opts: Opts,
    submitted: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut next = 0usize;
    while !stop.is_cancelled() {
        let outstanding = submitted
            .load(Ordering::Relaxed)
            .saturating_sub(done.load(Ordering::Relaxed));
        if outstanding + opts.batch as u64 > opts.window {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let jobs = (0..opts.batch)
            .map(|i| api::noop(&ids[(next + i) % ids.len()]))
            .collect();
        next += opts.batch;
        match client.submit(jobs).await {
            Ok(ids) => {
                submitted.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
            Err(err) => {
                eprintln!("submit failed: {err:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Delivery attempts and created → finished times of up to 2000 succeeded jobs.
async fn sample_records(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<(Vec<f64>, Summary)> {
    let ids: Vec<String> = conn
        .zrange(state_key(JobState::Succeeded), -2000, -1)
        .await?;
    let mut attempts = Vec::new();
    let mut times = Vec::new();
    for id in ids {
        let (a, c, f): (Option<f64>, Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(format!("podperf:job:{id}"))
            .arg(&["attempts", "created_at_ms", "finished_at_ms"][..])
            .query_async(conn)
            .await?;
        attempts.extend(a);
        if let (Some(c), Some(f)) = (c, f) {
            times.push(Duration::from_millis(f.saturating_sub(c)));
        }
    }
    Ok((attempts, Summary::of(&times)))
}

/// The ingest consumer's backlog: messages not yet delivered, and delivered but not acked.
async fn pending(client: &async_nats::Client) -> anyhow::Result<(u64, usize)> {
    use podperf_protocol::names::{RESULTS_CONSUMER, RESULTS_STREAM};
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream(RESULTS_STREAM).await?;
    let info = stream.consumer_info(RESULTS_CONSUMER).await?;
    Ok((info.num_pending, info.num_ack_pending))
}
