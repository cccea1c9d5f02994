//! The sweep-scale figure: 1,000 simulated nodes (one simulated worker each), a full-mesh sweep
//! round every 60 s for 5 minutes, as `podperf sweep` runs one: one batch of one `sweep` per live
//! worker toward every other, then a wait for each. Measured: each round's time (batch submitted →
//! every sweep terminal) and where it goes, CPU (averaged over the whole window) and RSS (peak) of
//! the dispatcher, nats-server, redis-server and a real `podperf-web` with `/metrics` on, the bytes
//! a round costs (NATS in/out from `/varz`, the results stream, Redis `used_memory`), and the
//! series of a `/metrics` scrape after each round.
//!
//! The workers are the real worker code ([`crate::sim`]) running the real sweep path (assignment
//! → `fping` process → parser → durable result), in `--sim-procs` processes of their own
//! ([`crate::sim_procs`]); only `fping` is simulated: the small `podperf-bench-fping` binary
//! ([`crate::fping_sim`]), called through a symlink named `fping` that is the only thing on the
//! simulated workers' `PATH` ([`install_fake_fping`]), prints fping's quiet summary with
//! synthetic values (RTT 0.05–0.3 ms per pair, ≈ 1 pair in 10,000 losing one echo in five)
//! after as long as fping would take to send them ([`fping_duration`]; `--instant` answers at
//! once).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{JobParams, JobSpec};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::sweep::{SweepParams, SweepTargets};
use podperf_protocol::worker::Tool;
use podperf_testkit::ChildGuard;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api;
use crate::env::{self, Sampler, Stack, StackOpts, Usage};
use crate::fping_sim::{fping_duration, INSTANT_ENV};
use crate::report::Figure;
use crate::sim_procs::Procs;
use crate::stats::median;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Simulated nodes, one simulated worker each (2–2000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(2..=2000))]
    pub nodes: u64,
    /// Sweep rounds (1–100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Seconds from one round's start to the next (1–3600); a round still running delays the next.
    #[arg(long = "every-s", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub every_s: u64,
    /// Echo requests per target, as `podperf sweep --count` (1–100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: u32,
    /// Milliseconds between two requests to one target, as `podperf sweep --interval-ms`
    /// (20–10000).
    #[arg(long, default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(20..=10_000))]
    pub interval_ms: u32,
    /// Simulated workers per shared NATS client (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub per_client: u64,
    /// Processes the simulated workers run in (1–2000; default: one per 100 nodes), apart from
    /// the harness, so a busy simulation does not delay the client's waits and scrapes.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=2000))]
    pub sim_procs: Option<u64>,
    /// Runtime threads of each simulated workers' process (1–64).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub sim_threads: u64,
    /// The simulated fping answers at once instead of taking as long as fping would.
    #[arg(long)]
    pub instant: bool,
}

/// How long past a sweep's deadline the round waits for it (as `podperf sweep`).
const WAIT_SLACK: Duration = Duration::from_secs(30);
/// How long after a round podperf-web may take to count it complete.
const WEB_ROUND_WITHIN: Duration = Duration::from_secs(60);
/// The gauge podperf-web sets when a full-mesh round completes.
const ROUND_GAUGE: &str = "podperf_sweep_round_last_completed_timestamp_seconds";
/// Names of the harness's own processes in the CPU/RSS rows.
const HARNESS: &str = "podperf-bench (client, counters, scrapes)";
const SIM_WORKERS: &str = "simulated workers (all processes)";

/// The pod IP of simulated worker `i` (fping reports targets by address, so each needs its own;
/// nothing is ever sent to them).
pub fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 244, (i / 250) as u8, (i % 250) as u8 + 2))
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let n = opts.nodes as usize;
    let mut fig = Figure::new(
        "sweep-scale",
        &format!(
            "Sweep scale: {n} simulated nodes, a full-mesh sweep round every {} s",
            opts.every_s
        ),
    );
    fig.command = format!(
        "scripts/bench.sh sweep-scale --nodes {n} --rounds {} --every-s {}{}",
        opts.rounds,
        opts.every_s,
        if opts.instant { " --instant" } else { "" }
    );
    // nats-server's defaults (max_payload 1 MiB included) plus its monitoring endpoint.
    let monitor_port = podperf_testkit::free_port();
    let stack = Stack::start(StackOpts {
        nats_conf: Some(format!("http: \"127.0.0.1:{monitor_port}\"\n")),
        ..Default::default()
    })
    .await?;
    let url = stack.nats_url();
    let client = stack.api("bench-client").await?;
    let web = Web::start(&url)?;
    web.ready(Duration::from_secs(30)).await?;

    let procs = opts
        .sim_procs
        .map_or(n.div_ceil(100), |p| p as usize)
        .clamp(1, n);
    let t0 = Instant::now();
    let mut sim = Procs::start(
        &url,
        "sweep",
        n,
        n,
        procs,
        opts.per_client as usize,
        opts.sim_threads as usize,
    )?;
    let joined = match api::wait_workers(&client, n, Duration::from_secs(180)).await {
        Ok(joined) => joined,
        Err(err) => {
            sim.check()?; // a process that died says why
            return Err(err);
        }
    };
    let workers = client.workers().await?;
    let with_fping = workers
        .iter()
        .filter(|w| w.info.has_tool(Tool::Fping))
        .count();
    if with_fping < n {
        bail!("only {with_fping} of {n} simulated workers found the simulated fping on PATH");
    }
    fig.row(
        &format!(
            "{n} simulated workers started ({procs} processes, {} NATS connections, {} runtime thread(s) each) → all in `workers.list`",
            sim.connections, opts.sim_threads
        ),
        format!(
            "{:.1} s (view complete after {:.1} s)",
            t0.elapsed().as_secs_f64(),
            joined.as_secs_f64()
        ),
        "one worker per node; each has the simulated fping".into(),
        None,
    );

    let sources: Vec<String> = workers.into_iter().map(|w| w.info.worker_id).collect();
    let mut counters = Counters::new(&stack, monitor_port).await?;
    let mut pids = stack.pids();
    pids.push((web.child.pid(), "podperf-web"));
    pids.retain(|(pid, _)| *pid != std::process::id()); // named below: no workers in it here
    pids.push((std::process::id(), HARNESS));
    pids.extend(sim.pids().into_iter().map(|p| (p, SIM_WORKERS)));
    let every = Duration::from_secs(opts.every_s);
    let mut last_round_ts = web.scrape().await.ok().and_then(|t| gauge(&t, ROUND_GAUGE));
    let stalls = Stalls::watch(&stack).await?;
    let sampler = Sampler::start(&pids);
    let start = tokio::time::Instant::now();
    let mut rounds = Vec::new();
    for r in 0..opts.rounds {
        tokio::time::sleep_until(start + every * r).await;
        let before = counters.read().await?;
        stalls.reset();
        let mut round = one_round(&client, &sources, opts).await?;
        (round.harness_stall_ms, round.kv_put_max_ms) = stalls.read();
        let (seen, scrape) = web.round_seen(&mut last_round_ts, round.started).await;
        round.web_saw_round_s = seen.map(|d| d.as_secs_f64());
        if let Some(s) = scrape {
            round.series = s.series;
            round.scrape_bytes = s.bytes;
            round.scrape_s = s.took.as_secs_f64();
        }
        round.bytes = counters.read().await?.minus(&before);
        eprintln!(
            "sweep-scale: round {}: {}",
            r + 1,
            serde_json::to_string(&round)?
        );
        rounds.push(round);
    }
    tokio::time::sleep_until(start + every * opts.rounds).await;
    let usage = sampler.finish();
    stalls.stop.cancel();
    let window_s = start.elapsed().as_secs_f64();
    let sim_failed = sim.stop().await;
    report(&mut fig, opts, &rounds, &usage, window_s);
    fig.row(
        "simulated workers whose `run` ended with an error",
        match &sim_failed {
            Ok(k) => format!("{k} of {n}"),
            Err(err) => format!("unknown: {err:#}"),
        },
        "a worker that fails stops taking jobs: its sweeps end `worker_lost`".into(),
        Some(matches!(sim_failed, Ok(0))),
    );
    fig.data = json!({ "nodes": n, "rounds": rounds, "usage": usage, "window_s": window_s,
        "sim_workers_failed": sim_failed.ok(), "opts": {
        "count": opts.count, "interval_ms": opts.interval_ms, "every_s": opts.every_s,
        "instant": opts.instant, "per_client": opts.per_client, "sim_procs": procs,
        "sim_threads": opts.sim_threads } });
    drop(web);
    Ok(fig.done())
}

/// Watches for stalls while rounds run (see [`RoundStats::harness_stall_ms`]).
struct Stalls {
    tick_ms: Arc<AtomicU64>,
    put_ms: Arc<AtomicU64>,
    stop: tokio_util::sync::CancellationToken,
}

impl Stalls {
    async fn watch(stack: &Stack) -> anyhow::Result<Stalls> {
        let js = async_nats::jetstream::new(stack.client("bench-stalls").await?);
        let kv = js
            .create_key_value(async_nats::jetstream::kv::Config {
                bucket: "podperf-bench-probe".into(),
                history: 1,
                ..Default::default()
            })
            .await?;
        let s = Stalls {
            tick_ms: Arc::default(),
            put_ms: Arc::default(),
            stop: tokio_util::sync::CancellationToken::new(),
        };
        let (tick_ms, stop) = (s.tick_ms.clone(), s.stop.clone());
        tokio::spawn(async move {
            let period = Duration::from_millis(100);
            while !stop.is_cancelled() {
                let t = Instant::now();
                tokio::time::sleep(period).await;
                let late = t.elapsed().saturating_sub(period).as_millis() as u64;
                tick_ms.fetch_max(late, Ordering::Relaxed);
            }
        });
        let (put_ms, stop) = (s.put_ms.clone(), s.stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let t = Instant::now();
                let _ = kv.put("probe", bytes::Bytes::from_static(b"x")).await;
                put_ms.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Ok(s)
    }

    fn reset(&self) {
        self.tick_ms.store(0, Ordering::Relaxed);
        self.put_ms.store(0, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (
            self.tick_ms.load(Ordering::Relaxed),
            self.put_ms.load(Ordering::Relaxed),
        )
    }
}

/// One round, measured.
#[derive(Debug, Clone, Serialize, Default)]
struct RoundStats {
    /// Batch submitted → every sweep terminal (as the client saw it).
    round_s: f64,
    /// The batch submit call alone.
    submit_s: f64,
    /// When the first / median sweep was terminal for the client.
    first_done_s: f64,
    median_done_s: f64,
    succeeded: usize,
    /// Sweeps in another terminal state, or whose wait failed.
    other: HashMap<String, usize>,
    /// Per-target results in the records (N·(N−1) when all went well).
    target_results: usize,
    /// Medians over the round's sweeps, ms: created → dispatched, dispatched → started,
    /// started → finished (the simulated fping), finished → the client saw it terminal.
    queue_ms: f64,
    deliver_ms: f64,
    probe_ms: f64,
    store_ms: f64,
    /// Largest record (the done notice and a `jobs.get` reply carry it whole), bytes.
    max_record_bytes: usize,
    web_saw_round_s: Option<f64>,
    /// During the round (until every wait returned): the largest lateness of a 100 ms timer on
    /// the harness's runtime (a stalled harness process), and the slowest put into a JetStream
    /// KV bucket of the bench's own, every 250 ms (a stalled JetStream), ms.
    harness_stall_ms: u64,
    kv_put_max_ms: u64,
    series: usize,
    scrape_bytes: usize,
    scrape_s: f64,
    bytes: Bytes,
    #[serde(skip)]
    started: Option<Instant>,
}

async fn one_round(
    client: &podperf_client::Client,
    sources: &[String],
    opts: &Opts,
) -> anyhow::Result<RoundStats> {
    let specs = sources
        .iter()
        .map(|source| JobSpec {
            family: None,
            source: source.clone(),
            target: None,
            params: JobParams::Sweep(SweepParams {
                targets: SweepTargets::All,
                count: opts.count,
                interval_ms: opts.interval_ms,
                resolved: vec![],
            }),
            timeout_s: None,
        })
        .collect();
    let t = Instant::now();
    let ids = client.submit(specs).await.context("submitting a round")?;
    let submit_s = t.elapsed().as_secs_f64();
    let waits = ids.iter().map(|id| async move {
        let rec = client.wait_past_deadline(*id, WAIT_SLACK).await;
        (rec, t.elapsed(), now_ms())
    });
    let done = futures::future::join_all(waits).await;
    let mut s = RoundStats {
        round_s: t.elapsed().as_secs_f64(),
        submit_s,
        started: Some(t),
        ..RoundStats::default()
    };
    let mut at: Vec<f64> = done.iter().map(|(_, d, _)| d.as_secs_f64()).collect();
    at.sort_by(f64::total_cmp);
    s.first_done_s = at.first().copied().unwrap_or(f64::NAN);
    s.median_done_s = median(&at);
    let (mut queue, mut deliver, mut probe, mut store) = (vec![], vec![], vec![], vec![]);
    for (rec, _, seen_ms) in &done {
        let rec = match rec {
            Ok(rec) => rec,
            Err(err) => {
                *s.other.entry(format!("wait failed: {err}")).or_default() += 1;
                continue;
            }
        };
        if rec.state == JobState::Succeeded {
            s.succeeded += 1;
        } else {
            *s.other.entry(rec.state.to_string()).or_default() += 1;
        }
        if let Some(ProbeResult::Sweep(r)) = &rec.result {
            s.target_results += r.targets.len();
        }
        s.max_record_bytes = s.max_record_bytes.max(record_bytes(rec));
        let span = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64);
        let created = Some(rec.created_at_ms);
        queue.extend(span(created, rec.dispatched_at_ms));
        deliver.extend(span(rec.dispatched_at_ms, rec.started_at_ms));
        probe.extend(span(rec.started_at_ms, rec.finished_at_ms));
        store.extend(span(rec.finished_at_ms, Some(*seen_ms)));
    }
    (s.queue_ms, s.deliver_ms, s.probe_ms, s.store_ms) = (
        median(&queue),
        median(&deliver),
        median(&probe),
        median(&store),
    );
    Ok(s)
}

fn record_bytes(rec: &JobRecord) -> usize {
    serde_json::to_vec(rec).map(|v| v.len()).unwrap_or(0)
}

fn report(fig: &mut Figure, opts: &Opts, rounds: &[RoundStats], usage: &[Usage], window_s: f64) {
    let n = opts.nodes as usize;
    let col = |f: fn(&RoundStats) -> f64| -> Vec<f64> { rounds.iter().map(f).collect() };
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let times = col(|r| r.round_s);
    let (med_t, max_t) = (median(&times), max(&times));
    fig.row(
        &format!(
            "round time (batch of {n} sweeps submitted → every sweep terminal), median / max of {}",
            rounds.len()
        ),
        format!("{med_t:.2} / {max_t:.2} s"),
        "target ≤ 10 s".into(),
        Some(max_t <= 10.0),
    );
    let sim = fping_duration(opts.count, opts.interval_ms, n.saturating_sub(1));
    fig.row(
        "of which the simulated fping's own time per sweep (as fping would take)",
        if opts.instant {
            "0 (`--instant`)".into()
        } else {
            format!("{:.2} s", sim.as_secs_f64())
        },
        format!(
            "{} targets × {} requests, 1 ms between any two sends, {} ms per target",
            n - 1,
            opts.count,
            opts.interval_ms
        ),
        None,
    );
    let m = |f: fn(&RoundStats) -> f64| median(&col(f));
    fig.row(
        "submit call / first sweep terminal / median sweep terminal, medians over rounds",
        format!(
            "{:.2} / {:.2} / {:.2} s",
            m(|r| r.submit_s),
            m(|r| r.first_done_s),
            m(|r| r.median_done_s)
        ),
        String::new(),
        None,
    );
    fig.row(
        "per sweep (median of the round's, median over rounds): queued → dispatched / → started / → finished / finished → client saw it terminal",
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0} ms",
            m(|r| r.queue_ms),
            m(|r| r.deliver_ms),
            m(|r| r.probe_ms),
            m(|r| r.store_ms)
        ),
        "where a round's time goes".into(),
        None,
    );
    let ok: usize = rounds.iter().map(|r| r.succeeded).sum();
    let targets: usize = rounds.iter().map(|r| r.target_results).sum();
    let want = rounds.len() * n * (n - 1);
    let mut other: HashMap<&str, usize> = HashMap::new();
    for r in rounds {
        for (k, v) in &r.other {
            *other.entry(k.as_str()).or_default() += v;
        }
    }
    fig.row(
        "sweeps succeeded / per-target results received, all rounds",
        format!(
            "{ok} / {targets}{}",
            if other.is_empty() {
                String::new()
            } else {
                format!(" (others: {other:?})")
            }
        ),
        format!("{} sweeps / N·(N−1)·rounds = {want}", rounds.len() * n),
        Some(ok == rounds.len() * n && targets == want),
    );
    let stall = rounds.iter().map(|r| r.harness_stall_ms).max().unwrap_or(0);
    let put = rounds.iter().map(|r| r.kv_put_max_ms).max().unwrap_or(0);
    fig.row(
        "during the rounds, worst: harness stalled (100 ms timer late by) / a JetStream KV put took (separate bucket, every 250 ms)",
        format!("{stall} ms / {put} ms"),
        "the liveness TTL and the leader lease are 3 s".into(),
        None,
    );
    let seen: Vec<f64> = rounds.iter().filter_map(|r| r.web_saw_round_s).collect();
    fig.row(
        &format!("podperf-web counted the round complete (`{ROUND_GAUGE}` moved), after submit, median / max"),
        if seen.is_empty() {
            format!("never within {} s", WEB_ROUND_WITHIN.as_secs())
        } else {
            format!("{:.2} / {:.2} s ({} of {} rounds)", median(&seen), max(&seen), seen.len(), rounds.len())
        },
        String::new(),
        Some(seen.len() == rounds.len()),
    );
    for u in &per_process(usage) {
        let target = match u.process.as_str() {
            "podperf-dispatcher" => Some(25.0),
            "nats-server" => Some(50.0),
            _ => None,
        };
        fig.row(
            &format!(
                "{}: CPU averaged over {window_s:.0} s / RSS peak",
                u.process
            ),
            format!(
                "{:.1} % of a core / {:.0} MiB",
                u.cpu_percent + u.children_cpu_percent,
                u.peak_rss_mib
            ),
            target
                .map(|t| format!("target ≤ {t:.0} % of a core"))
                .unwrap_or_default(),
            target.map(|t| u.cpu_percent <= t),
        );
    }
    let b = |f: fn(&Bytes) -> f64| median(&rounds.iter().map(|r| f(&r.bytes)).collect::<Vec<_>>());
    fig.row(
        "bytes per round, median: NATS in / out (`/varz`), results stream, Redis `used_memory` growth",
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0} MB",
            b(|x| x.nats_in) / 1e6,
            b(|x| x.nats_out) / 1e6,
            b(|x| x.stream) / 1e6,
            b(|x| x.redis_used) / 1e6
        ),
        "from before the submit until podperf-web counted the round (heartbeats included)".into(),
        None,
    );
    let rec = rounds.iter().map(|r| r.max_record_bytes).max().unwrap_or(0);
    fig.row(
        "largest sweep record (what a done notice and `jobs.get` carry)",
        format!("{:.0} KB", rec as f64 / 1e3),
        "nats-server default max_payload 1 MiB (this run: the default)".into(),
        Some(rec < 1 << 20),
    );
    let series: Vec<f64> = rounds.iter().map(|r| r.series as f64).collect();
    fig.row(
        "`/metrics` after a round: series / size / scrape time, last round",
        rounds
            .last()
            .map(|r| format!("{} / {:.1} MB / {:.2} s", r.series, r.scrape_bytes as f64 / 1e6, r.scrape_s))
            .unwrap_or_default(),
        format!(
            "podperf-web's default PODPERF_METRICS_MAX_PAIRS (1,000 node pairs): above it, pairs are summed per source node; max over rounds {:.0}",
            max(&series)
        ),
        None,
    );
}

/// One row per process name: the simulated workers' processes summed (CPU and peak RSS), in
/// the order first seen.
fn per_process(usage: &[Usage]) -> Vec<Usage> {
    let mut out: Vec<Usage> = Vec::new();
    for u in usage {
        match out.iter_mut().find(|o| o.process == u.process) {
            Some(o) => {
                o.cpu_percent += u.cpu_percent;
                o.children_cpu_percent += u.children_cpu_percent;
                o.rss_mib += u.rss_mib;
                o.peak_rss_mib += u.peak_rss_mib;
            }
            None => out.push(u.clone()),
        }
    }
    out
}

/// Traffic counters read before and after a round.
#[derive(Debug, Clone, Copy, Serialize, Default)]
struct Bytes {
    nats_in: f64,
    nats_out: f64,
    stream: f64,
    redis_used: f64,
}

impl Bytes {
    fn minus(&self, b: &Bytes) -> Bytes {
        Bytes {
            nats_in: self.nats_in - b.nats_in,
            nats_out: self.nats_out - b.nats_out,
            stream: self.stream - b.stream,
            redis_used: self.redis_used - b.redis_used,
        }
    }
}

struct Counters {
    monitor_port: u16,
    js: async_nats::jetstream::Context,
    redis: redis::aio::MultiplexedConnection,
}

impl Counters {
    async fn new(stack: &Stack, monitor_port: u16) -> anyhow::Result<Counters> {
        let js = async_nats::jetstream::new(stack.client("bench-counters").await?);
        let redis = redis::Client::open(stack.redis.url())?
            .get_multiplexed_async_connection()
            .await?;
        Ok(Counters {
            monitor_port,
            js,
            redis,
        })
    }

    async fn read(&mut self) -> anyhow::Result<Bytes> {
        let (status, varz) = http_get(self.monitor_port, "/varz").await?;
        if status != 200 {
            bail!("nats-server /varz answered {status}");
        }
        let varz: serde_json::Value = serde_json::from_slice(&varz)?;
        let num = |k: &str| varz.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let mut results = self
            .js
            .get_stream(podperf_protocol::names::RESULTS_STREAM)
            .await?;
        let stream = results.info().await?.state.bytes as f64;
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.redis)
            .await?;
        let used = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN);
        Ok(Bytes {
            nats_in: num("in_bytes"),
            nats_out: num("out_bytes"),
            stream,
            redis_used: used,
        })
    }
}

/// A real `podperf-web` (release binary) with `/metrics` on a port of its own.
struct Web {
    child: ChildGuard,
    metrics_port: u16,
}

struct Scrape {
    series: usize,
    bytes: usize,
    took: Duration,
}

impl Web {
    fn start(nats_url: &str) -> anyhow::Result<Web> {
        let metrics_port = podperf_testkit::free_port();
        let mut cmd = Command::new(env::bin("podperf-web")?);
        cmd.env_clear()
            .env("PATH", env::orig_path())
            .env("PODPERF_NATS_URL", nats_url)
            .env("PODPERF_WEB_LISTEN", "127.0.0.1:0")
            .env(
                "PODPERF_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("RUST_LOG", "warn");
        Ok(Web {
            child: ChildGuard::spawn(cmd, "podperf-web"),
            metrics_port,
        })
    }

    async fn ready(&self, within: Duration) -> anyhow::Result<()> {
        let t = Instant::now();
        while t.elapsed() < within {
            if matches!(http_get(self.metrics_port, "/metrics").await, Ok((200, _))) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "podperf-web's /metrics not ready within {within:?}; log:\n{}",
            self.child.log()
        )
    }

    async fn scrape(&self) -> anyhow::Result<String> {
        let (status, body) = http_get(self.metrics_port, "/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(String::from_utf8(body)?)
    }

    /// Scrapes until the round gauge moves past `last` (bounded): how long after `since` that
    /// was, and that scrape.
    async fn round_seen(
        &self,
        last: &mut Option<f64>,
        since: Option<Instant>,
    ) -> (Option<Duration>, Option<Scrape>) {
        let since = since.unwrap_or_else(Instant::now);
        let mut latest = None;
        while since.elapsed() < WEB_ROUND_WITHIN {
            let t = Instant::now();
            if let Ok(text) = self.scrape().await {
                let scrape = Scrape {
                    series: series_count(&text),
                    bytes: text.len(),
                    took: t.elapsed(),
                };
                let now = gauge(&text, ROUND_GAUGE);
                if now.is_some() && now != *last {
                    *last = now;
                    return (Some(since.elapsed()), Some(scrape));
                }
                latest = Some(scrape);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (None, latest)
    }
}

/// Samples in a Prometheus text exposition (every line that is not a comment).
fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// The value of an unlabelled sample.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0, the whole body): status and body.
async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
        .await
        .context("HTTP GET timed out")??;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the HTTP header")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    Ok((status, buf[end + 4..].to_vec()))
}

// ---- the simulated fping ----

/// Makes a directory holding `fping` → `podperf-bench-fping` (built beside this binary) and puts
/// it alone on `PATH` (call before any thread starts). Returns the directory, to remove at the
/// end.
pub fn install_fake_fping(instant: bool) -> std::io::Result<PathBuf> {
    let fping = std::env::current_exe()?.with_file_name("podperf-bench-fping");
    if !fping.is_file() {
        let msg = format!(
            "{} is missing: build it with `cargo build --release -p podperf-bench`",
            fping.display()
        );
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, msg));
    }
    let dir = std::env::temp_dir().join(format!("podperf-bench-fping-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let link = dir.join("fping");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(fping, &link)?;
    std::env::set_var("PATH", &dir);
    if instant {
        std::env::set_var(INSTANT_ENV, "1");
    } else {
        std::env::remove_var(INSTANT_ENV);
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fping_sim::FakeRun;
    use podperf_protocol::sweep::SweepTarget;

    /// The simulated output goes through the worker's real fping parser and interpretation: one
    /// summary per target, plausible RTTs, a little loss, fping's exit code.
    #[test]
    fn the_simulated_fping_speaks_fpings_language() {
        let resolved: Vec<SweepTarget> = (1..1000)
            .map(|i| SweepTarget {
                worker_id: format!("w{i}"),
                node: format!("node-{i}"),
                ip: node_ip(i),
                host_network: false,
            })
            .collect();
        let params = SweepParams {
            resolved,
            ..SweepParams::default()
        };
        let argv = podperf_worker::probe::sweep::argv(&params, Some(node_ip(0)));
        let run = FakeRun::of(&argv, 42).expect("the worker's argv is understood");
        assert_eq!(run.duration, Duration::from_millis(5 * 999));
        let parsed = podperf_worker::probe::sweep::parse(&run.stderr).unwrap();
        assert_eq!(parsed.len(), 999);
        let lossy = parsed.values().filter(|s| s.received < s.sent).count();
        assert!(lossy < 10, "{lossy} lossy pairs");
        for s in parsed.values() {
            let [min, avg, max] = s.rtt_ms.expect("every target answered");
            assert!(
                min < avg && avg < max && (0.04..0.4).contains(&avg),
                "{s:?}"
            );
        }
        let out = podperf_worker::probe::ToolOutput {
            exit_code: Some(if run.all_answered { 0 } else { 1 }),
            stdout: String::new(),
            stderr: run.stderr.clone(),
        };
        match podperf_worker::probe::sweep::interpret(&out, &params) {
            podperf_worker::probe::ProbeOutcome::Succeeded(ProbeResult::Sweep(r)) => {
                assert_eq!(r.targets.len(), 999)
            }
            other => panic!("{other:?}"),
        }
        // Over many pairs, about 1 in 10,000 loses an echo.
        let many: usize = (0..50)
            .map(|s| {
                let src = node_ip(s).to_string();
                let mut a = vec!["-c".to_string(), "5".into(), "-S".into(), src];
                a.extend((1000..2000).map(|i| format!("10.1.{}.{}", i / 250, i % 250)));
                let r = FakeRun::of(&a, 1).unwrap();
                r.stderr.lines().filter(|l| !l.contains("/5/0%")).count()
            })
            .sum();
        assert!((1..=20).contains(&many), "{many} lossy of 50,000 pairs");
        assert!(FakeRun::of(&["-x".into()], 0).is_none());
    }
}
