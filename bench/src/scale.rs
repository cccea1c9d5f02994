//! Figure 3 — scale: 10,000 simulated workers heartbeating every second on a handful of shared
//! clients: time until the dispatcher's view (`workers.list`) holds all; steady-state CPU/RSS of
//! nats-server and the dispatcher; job latency at that size; then 1,000 of them killed (their
//! runtime and connections dropped, no deregistration) → time until the view has lost them all.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::api;
use crate::env::{Sampler, Stack, StackOpts};
use crate::report::Figure;
use crate::sim;
use crate::stats::Summary;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, default_value_t = 10_000)]
    pub workers: usize,
    /// Of those, stopped without deregistering.
    #[arg(long, default_value_t = 1_000)]
    pub killed: usize,
    /// Workers per shared NATS client.
    #[arg(long, default_value_t = 500)]
    pub per_client: usize,
    /// Seconds of steady state measured.
    #[arg(long, default_value_t = 15)]
    pub steady_s: u64,
}

/// The view has to travel in one reply: ≈ 450 bytes per simulated worker (≈ 800 with tools), so
/// 10,000 workers do not fit nats-server's default 1 MiB `max_payload`.
const NATS_CONF: &str = "max_payload: 8MB\n";
const TTL_S: f64 = 3.0;

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new(
        "scale",
        "3. Scale: 10,000 workers heartbeating every second",
    );
    let stack = Stack::start(StackOpts {
        nats_conf: Some(NATS_CONF.into()),
        ..Default::default()
    })
    .await?;
    let url = stack.nats_url();
    let client = stack.api("bench-client").await?;
    let stable_n = opts.workers - opts.killed;
    let clients = |n: usize| n.div_ceil(opts.per_client).max(1);

    // The workers to be killed live on a runtime of their own: shutting it down drops their
    // tasks and connections at once, as a crashed pod would, without the shutdown path.
    let doomed_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let t0 = Instant::now();
    let stable = sim::start(&url, "stable", stable_n, clients(stable_n), 100).await?;
    let (killed_n, url2, per) = (opts.killed, url.clone(), clients(opts.killed));
    let doomed = doomed_rt
        .spawn(async move { sim::start(&url2, "doomed", killed_n, per, 10).await })
        .await??;
    let spawned = t0.elapsed();
    let mut first_full = None;
    while t0.elapsed() < Duration::from_secs(120) {
        match client.workers().await {
            Ok(w) if w.len() >= opts.workers => {
                first_full = Some(t0.elapsed());
                break;
            }
            Ok(_) => {}
            Err(err) => fig.note(format!("workers.list failed while starting: {err:#}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply_bytes = client
        .call_raw(podperf_protocol::names::endpoint::WORKERS_LIST, "{}".into())
        .await
        .map(|b| b.len())
        .unwrap_or(0);
    fig.row(
        &format!("{} workers started (tasks spawned in {:.2} s, {} + {} shared clients) → all in `workers.list`", opts.workers, spawned.as_secs_f64(), clients(stable_n), per),
        first_full.map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_else(|| "not within 120 s".into()),
        "DESIGN: the watcher saw 10,000 keys at start in ≤ 0.25 s (bucket already full)".into(),
        None,
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let seq0 = kv_last_seq(client.nats()).await.unwrap_or(0);
    let sampler = Sampler::start(&stack.pids());
    let t_steady = Instant::now();
    tokio::time::sleep(Duration::from_secs(opts.steady_s)).await;
    let usage = sampler.finish();
    let puts = (kv_last_seq(client.nats()).await.unwrap_or(0) - seq0) as f64
        / t_steady.elapsed().as_secs_f64();
    fig.row(
        "heartbeat puts/s into the liveness bucket (its stream's sequence)",
        format!("{puts:.0} /s"),
        format!("{} workers × 1/s", opts.workers),
        None,
    );
    for u in &usage {
        fig.row(
            &format!("steady state, {}", u.process),
            format!("{:.0} % of a core, RSS {:.0} MiB", u.cpu_percent, u.rss_mib),
            match u.process.as_str() {
                "nats-server" => "DESIGN: 50–75 % of a core for 10,000 puts/s".into(),
                "podperf-dispatcher" => "DESIGN: watcher 8–9 %".into(),
                _ => String::new(),
            },
            None,
        );
    }
    // What one submit costs with this many workers (the API snapshots the view per submit).
    let mut lat = Vec::new();
    let mut submits = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        let id = client
            .submit_one(api::noop(&stable.ids[i % stable.ids.len()]))
            .await?;
        submits.push(t.elapsed());
        client.wait(id, api::WAIT).await?;
        lat.push(t.elapsed());
    }
    let lat = Summary::of(&lat);
    let submits = Summary::of(&submits);
    fig.row(
        "job latency with 10,000 workers live (300 noop jobs), p50 / p99 / p99.9",
        lat.ms(),
        "p50 ≤ 1 ms, p99 ≤ 5 ms".into(),
        Some(lat.p50_us <= 1000.0 && lat.p99_us <= 5000.0),
    );
    fig.row(
        "of which the submit call alone, p50 / p99 / p99.9",
        submits.ms(),
        "".into(),
        None,
    );
    submit_costs(&mut fig, &stack, &client).await?;
    fig.row(
        "`workers.list` reply size",
        format!("{:.2} MB", reply_bytes as f64 / 1e6),
        "nats-server default max_payload 1 MB (this run: 8 MB)".into(),
        Some(reply_bytes <= 1 << 20),
    );

    let t_kill = Instant::now();
    doomed_rt.shutdown_background();
    drop(doomed);
    let mut first_drop = None;
    let mut all_gone = None;
    while t_kill.elapsed() < Duration::from_secs(30) {
        if let Ok(w) = client.workers().await {
            if w.len() < opts.workers && first_drop.is_none() {
                first_drop = Some(t_kill.elapsed());
            }
            if w.len() <= stable_n {
                all_gone = Some(t_kill.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_s = all_gone.map(|d| d.as_secs_f64());
    fig.row(
        &format!(
            "{} workers killed (no deregistration) → all gone from the view",
            opts.killed
        ),
        match (first_drop, gone_s) {
            (Some(f), Some(g)) => {
                format!("first after {:.2} s, all after {g:.2} s", f.as_secs_f64())
            }
            _ => "not within 30 s".into(),
        },
        format!("target ≤ TTL + 1 s = {:.0} s", TTL_S + 1.0),
        Some(gone_s.is_some_and(|g| g <= TTL_S + 1.0)),
    );
    fig.note("`workers.list` is polled every 100 ms (plus its own reply time, itself ~10–100 ms at this size): the gone time is an upper bound to that resolution.");
    fig.data = json!({ "usage": usage, "first_full_s": first_full.map(|d| d.as_secs_f64()), "gone_s": gone_s, "latency": lat, "submit": submits, "heartbeat_puts_per_s": puts, "reply_bytes": reply_bytes });
    stable.stop().await;
    Ok(fig.done())
}

/// Last sequence of the liveness bucket's stream (one per put, delete or expiry marker).
async fn kv_last_seq(client: &async_nats::Client) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js
        .get_stream(format!("KV_{}", podperf_protocol::names::WORKERS_BUCKET))
        .await?;
    Ok(stream.info().await?.state.last_sequence)
}

/// What every submit does that grows with the number of workers (`Api::submit` in dispatcher/src/api.rs):
/// `Store::known_workers` (HGETALL of every worker ever seen, each JSON-parsed) and
/// `Members::snapshot` (clone and sort of the whole view), timed here on the same data.
async fn submit_costs(
    fig: &mut Figure,
    stack: &Stack,
    client: &podperf_client::Client,
) -> anyhow::Result<()> {
    let store =
        podperf_dispatcher::Store::connect(&stack.redis.url(), Duration::from_secs(3600)).await?;
    let mut known = Vec::new();
    let mut n_known = 0;
    for _ in 0..20 {
        let t = Instant::now();
        n_known = store.known_workers().await?.len();
        known.push(t.elapsed());
    }
    let view = client.workers().await?;
    let mut snap = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let mut v = view.clone();
        v.sort_by(|a, b| {
            (&a.info.node_name, &a.info.pod_name).cmp(&(&b.info.node_name, &b.info.pod_name))
        });
        std::hint::black_box(&v);
        snap.push(t.elapsed());
    }
    let (k, s) = (Summary::of(&known), Summary::of(&snap));
    fig.row(
        &format!("per submit: Store::known_workers() over {n_known} known workers (HGETALL + JSON), median"),
        format!("{:.1} ms", k.p50_us / 1e3),
        "dispatcher/src/api.rs `Api::submit` — only needed when a name does not resolve".into(),
        None,
    );
    fig.row(
        &format!(
            "per submit: Members::snapshot() equivalent (clone + sort {} views), median",
            view.len()
        ),
        format!("{:.1} ms", s.p50_us / 1e3),
        "dispatcher/src/api.rs `Api::submit`, membership.rs `Members::snapshot`".into(),
        None,
    );
    Ok(())
}
