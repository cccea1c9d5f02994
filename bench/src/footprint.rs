//! Figure 4 — worker footprint: RSS and CPU of one real `podperf-worker` process (release build,
//! its `iperf3 -s` child running) idle for ~30 s, then under a steady ping load.

use std::time::{Duration, Instant};

use podperf_protocol::job::{JobParams, JobSpec, PingParams, Target};
use podperf_protocol::outcome::JobState;
use serde_json::json;

use crate::api;
use crate::env::{rss_mib, Sampler, Stack, StackOpts};
use crate::report::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, default_value_t = 30)]
    pub idle_s: u64,
    #[arg(long, default_value_t = 30)]
    pub load_s: u64,
    /// Ping jobs kept running at once during the load phase.
    #[arg(long, default_value_t = 2)]
    pub concurrent: usize,
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new(
        "footprint",
        "4. Worker footprint (one real podperf-worker, release)",
    );
    let mut stack = Stack::start(StackOpts::default()).await?;
    let client = stack.api("bench-client").await?;
    let worker = stack.real_worker("footprint-0", "node-f", "127.0.0.2".parse()?);
    api::wait_workers(&client, 1, Duration::from_secs(30)).await?;
    let view = client.workers().await?.remove(0);
    let info_bytes = serde_json::to_vec(&view.info)?.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = stack.workers[worker].proc.pid();

    let idle = measure(pid, opts.idle_s).await;
    fig.row(
        &format!("idle {} s: RSS (peak)", opts.idle_s),
        format!("{:.1} MiB ({:.1} MiB)", idle.rss_mib, idle.peak_rss_mib),
        "target ≤ 10 MiB".into(),
        Some(idle.peak_rss_mib <= 10.0),
    );
    fig.row(
        &format!("idle {} s: CPU (heartbeat every 1 s)", opts.idle_s),
        format!("{:.3} % of a core", idle.cpu_percent),
        "target ≤ 0.5 %".into(),
        Some(idle.cpu_percent <= 0.5),
    );

    // Load: `concurrent` ping jobs (5 × 0.2 s to itself) always in flight.
    let t0 = Instant::now();
    let sampler = Sampler::start(&[(pid, "podperf-worker")]);
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrent {
        let (client, source, load) = (client.clone(), view.info.worker_id.clone(), opts.load_s);
        tasks.push(tokio::spawn(async move {
            let mut n = (0u32, 0u32);
            while t0.elapsed() < Duration::from_secs(load) {
                let spec = JobSpec {
                    family: None,
                    source: source.clone(),
                    target: Some(Target::Worker(source.clone())),
                    params: JobParams::Ping(PingParams::default()),
                    timeout_s: Some(30),
                };
                let Ok(id) = client.submit_one(spec).await else {
                    break;
                };
                if let Ok(rec) = client.wait(id, api::WAIT).await {
                    n.0 += 1;
                    n.1 += u32::from(rec.state == JobState::Succeeded);
                }
            }
            n
        }));
    }
    let mut peak = 0.0f64;
    while t0.elapsed() < Duration::from_secs(opts.load_s) {
        peak = peak.max(rss_mib(pid).0);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut jobs = (0, 0);
    for t in tasks {
        let (a, b) = t.await.unwrap_or((0, 0));
        jobs = (jobs.0 + a, jobs.1 + b);
    }
    let load = sampler.finish().remove(0);
    fig.row(
        &format!("ping load ({} jobs of 5 pings × 0.2 s in flight, {} jobs in {} s, {} succeeded): RSS (peak)", opts.concurrent, jobs.0, opts.load_s, jobs.1),
        format!("{:.1} MiB ({:.1} MiB)", load.rss_mib, load.peak_rss_mib.max(peak)),
        "".into(),
        None,
    );
    fig.row(
        "ping load: CPU of the worker / of its ping children",
        format!(
            "{:.2} % / {:.2} % of a core",
            load.cpu_percent, load.children_cpu_percent
        ),
        "".into(),
        None,
    );
    fig.note(format!("the worker's own `iperf3 -s` child is a separate process (not counted above); its advertised info is {info_bytes} bytes of JSON"));
    fig.data = json!({ "idle": idle, "load": load, "jobs": jobs });
    let proc = &mut stack.workers[worker].proc;
    proc.sigterm();
    let _ = proc.wait_timeout(Duration::from_secs(5));
    Ok(fig.done())
}

async fn measure(pid: u32, secs: u64) -> crate::env::Usage {
    let sampler = Sampler::start(&[(pid, "podperf-worker")]);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    sampler.finish().remove(0)
}
