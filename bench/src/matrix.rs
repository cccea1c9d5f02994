//! Figure 6 — matrix planning: a full mesh of 8 nodes × 2 pods, rounds used by
//! `podperf_dispatcher::planner::plan` vs the N(N−1) tests of a serial run; then the wall time of
//! that mesh run with short tests by 16 real workers on loopback addresses 127.0.<node>.<pod>.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use podperf_protocol::outcome::JobState;
use podperf_protocol::run::{ListRunsRequest, MatrixRequest, RunStarted};
use podperf_protocol::worker::WorkerInfo;
use serde_json::json;

use crate::api;
use crate::env::{Stack, StackOpts};
use crate::report::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, default_value_t = 8)]
    pub nodes: usize,
    #[arg(long, default_value_t = 2)]
    pub pods: usize,
    /// Plan only (no real workers, no wall time).
    #[arg(long)]
    pub plan_only: bool,
}

fn info(node: usize, pod: usize) -> WorkerInfo {
    WorkerInfo {
        worker_id: format!("w-{node}-{pod}"),
        pod_name: format!("pod-{node}-{pod}"),
        pod_namespace: None,
        pod_ip: ip(node, pod),
        node_name: format!("node-{node}"),
        node_ip: None,
        pod_ips: vec![],
        node_ips: vec![],
        host_network: false,
        tools: vec![],
        iperf3_port: 5201,
        sockperf_port: 11111,
        max_concurrent_jobs: 8,
        started_at_ms: 0,
        version: String::new(),
    }
}

fn ip(node: usize, pod: usize) -> IpAddr {
    format!("127.0.{}.{}", node + 1, pod + 2)
        .parse()
        .expect("an IPv4 address")
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new(
        "matrix",
        "6. Matrix planning: full mesh of 8 nodes × 2 pods",
    );
    let ws: Vec<WorkerInfo> = (0..opts.nodes)
        .flat_map(|n| (0..opts.pods).map(move |p| info(n, p)))
        .collect();
    let refs: Vec<&WorkerInfo> = ws.iter().collect();
    let t = Instant::now();
    let plan = podperf_dispatcher::planner::plan(&refs, true);
    let plan_us = t.elapsed().as_secs_f64() * 1e6;
    let rounds = plan.iter().map(|p| p.round + 1).max().unwrap_or(0) as usize;
    let n = ws.len();
    // A round gives each node to one test: a cross-node pair takes two node slots, a same-node one.
    let slots: usize = plan
        .iter()
        .map(|p| {
            if p.source.node_name == p.target.node_name {
                1
            } else {
                2
            }
        })
        .sum();
    let lower = slots.div_ceil(opts.nodes);
    fig.row(
        &format!(
            "{} pairs (every ordered pod pair) planned in {plan_us:.0} µs",
            plan.len()
        ),
        format!("{rounds} rounds"),
        format!(
            "serial run: N(N−1) = {} tests one after another; node-disjoint bound ≥ {lower} rounds",
            n * (n - 1)
        ),
        Some(rounds < n * (n - 1)),
    );
    fig.note("node-disjoint bound: each node takes part in one test per round; a cross-node pair uses two nodes, a same-node pair one, so rounds ≥ Σ nodes used / nodes");
    if !opts.plan_only {
        wall_time(&mut fig, opts, rounds).await?;
    }
    Ok(fig.done())
}

async fn wall_time(fig: &mut Figure, opts: &Opts, rounds: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start(StackOpts::default()).await?;
    let client = stack.api("bench-client").await?;
    for n in 0..opts.nodes {
        for p in 0..opts.pods {
            stack.real_worker(&format!("pod-{n}-{p}"), &format!("node-{n}"), ip(n, p));
        }
    }
    let total = opts.nodes * opts.pods;
    api::wait_workers(&client, total, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // iperf3 servers up
    let req = MatrixRequest {
        mesh: true,
        samples: 1,
        ping_count: 1,
        iperf3_duration_s: 1,
        udp: false,
        traceroute: false,
        latency: false,
        mtu: false,
        ..MatrixRequest::default()
    };
    let t0 = Instant::now();
    let started: RunStarted = client.run_start(&req).await?;
    let mut progress = None;
    while t0.elapsed() < Duration::from_secs(900) {
        let l = client.runs(&ListRunsRequest { limit: Some(1) }).await?;
        if let Some(p) = l.runs.into_iter().next() {
            let fin = p.finished;
            progress = Some(p);
            if fin {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let mut busy = 0.0;
    let mut ok = 0;
    for id in &started.job_ids {
        if let Ok(r) = client.get(*id).await {
            if let (Some(s), Some(f)) = (r.started_at_ms, r.finished_at_ms) {
                busy += (f.saturating_sub(s)) as f64 / 1e3;
            }
            ok += usize::from(r.state == JobState::Succeeded);
        }
    }
    let p = progress.unwrap_or_else(|| panic!("no run progress"));
    fig.row(
        &format!("wall time of the mesh run on loopback ({} pairs × ping 1 + iperf3 TCP 1 s, {} rounds planned; {ok}/{} jobs succeeded)", started.pairs, started.rounds, p.jobs),
        format!("{wall:.1} s{}", if p.finished { "" } else { " (not finished)" }),
        format!("the same jobs one after another: Σ job run times = {busy:.1} s (serial; ×{:.1})", busy / wall),
        None,
    );
    fig.note(format!("rounds in the plan: {rounds}; the scheduler starts each pair as soon as its nodes are free, so it does not wait for a whole round"));
    fig.data = json!({ "wall_s": wall, "serial_sum_s": busy, "pairs": started.pairs, "rounds": started.rounds, "succeeded": ok });
    for w in &mut stack.workers {
        w.proc.sigterm();
    }
    Ok(())
}
