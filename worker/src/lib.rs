//! The podperf worker: registers itself in the liveness bucket, answers job requests on its own
//! subject, runs `ping`/`traceroute`/`iperf3`/`sockperf`/`tracepath` with typed parameters, and publishes typed results.
//!
//! # Layout
//! - [`config`]: the validated configuration.
//! - [`liveness`]: the heartbeat into `podperf-workers`.
//! - [`jobs`]: job intake (accept/refuse, de-duplication, concurrency limit).
//! - [`execute`]: one job from `started` to its durable result.
//! - [`probe`]: per-tool argv building and output parsing.
//! - [`runner`]: process spawning with timeout, process group and output cap.
//! - [`iperf_server`]: the supervised `iperf3 -s` and `sockperf server` (TCP and UDP).
//! - [`publish`]: JetStream publishing with retries until acknowledged.
//! - [`tools`]: tool discovery.

pub mod config;
pub mod execute;
pub mod iperf_server;
pub mod jobs;
pub mod liveness;
pub mod probe;
pub mod publish;
pub mod runner;
pub mod tools;

use std::future::Future;
use std::time::Duration;

use async_nats::Client;
use podperf_connect::Supervisor;
use podperf_protocol::names::job_subject;
use podperf_protocol::now_ms;
use podperf_protocol::worker::{Tool, WorkerInfo};
use tokio_util::sync::CancellationToken;

pub use config::{Identity, WorkerConfig};

/// How long the tasks have to stop once the jobs in hand are done.
const STOP_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot subscribe to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
    /// A long-lived task (intake, liveness, iperf3 server) ended or failed.
    #[error(transparent)]
    Task(#[from] podperf_connect::TaskFailed),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds the info this worker advertises (tools are looked up now).
pub async fn worker_info(config: &WorkerConfig) -> WorkerInfo {
    let id = &config.identity;
    WorkerInfo {
        worker_id: id.worker_id.clone(),
        pod_name: id.pod_name.clone(),
        pod_namespace: id.pod_namespace.clone(),
        pod_ip: id.pod_ip,
        node_name: id.node_name.clone(),
        node_ip: id.node_ip,
        pod_ips: id.pod_ips.clone(),
        node_ips: id.node_ips.clone(),
        host_network: id.host_network,
        tools: tools::detect_all().await,
        iperf3_port: config.iperf3_port,
        sockperf_port: config.sockperf_port,
        max_concurrent_jobs: config.max_concurrent_jobs,
        started_at_ms: now_ms(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Runs the worker until `shutdown` resolves, then: stops taking jobs, lets those in hand finish
/// within the grace period (stopping them after it), deregisters and drains the connection.
///
/// The long-lived tasks (intake, liveness, iperf3 server) run under one [`Supervisor`]: if one
/// ends before `shutdown`, the worker stops the same way but without a grace period (the jobs in
/// hand are stopped at once and their outcome published) and returns its failure
/// ([`Error::Task`]).
pub async fn run(
    client: Client,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let info = worker_info(&config).await;
    let js = async_nats::jetstream::new(client.clone());
    // Three phases of shutdown: stop taking jobs (`stop`), then — once the jobs in hand are done —
    // stop answering (cancels still reach running jobs until then) and deregister (`done`).
    let stop = CancellationToken::new();
    let done = CancellationToken::new();
    let give_up = CancellationToken::new();
    let subject = job_subject(&info.worker_id);
    let sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|source| Error::Subscribe { subject, source })?;
    let env = execute::JobEnv {
        js: js.clone(),
        worker_id: info.worker_id.clone(),
        source_ips: info.addresses().collect(),
        output_cap: config.raw_output_cap_bytes,
        give_up: give_up.clone(),
    };
    let intake = jobs::Intake::new(client.clone(), info.clone(), env);
    let mut tasks = Supervisor::new();
    if config.iperf3_server && info.has_tool(Tool::Iperf3) {
        // One server per address (a dual-stack pod has one per family), each bound to it: a
        // `::` server would also answer on addresses the worker does not advertise.
        for (nth, ip) in info.addresses().enumerate() {
            let name = match (nth, ip.is_ipv6()) {
                (0, _) => "iperf3-server",
                (_, true) => "iperf3-server-ipv6",
                (_, false) => "iperf3-server-ipv4",
            };
            tasks.spawn(
                name,
                iperf_server::supervise(ip, config.iperf3_port, stop.clone()),
            );
        }
    }
    // sockperf 3.7 (Debian 12) accepts IPv4 addresses only: its servers listen on the primary
    // address (a `latency` job toward an IPv6 address fails with sockperf's "Invalid address").
    if config.sockperf_server && info.has_tool(Tool::Sockperf) {
        for (name, tcp) in [
            ("sockperf-server-tcp", true),
            ("sockperf-server-udp", false),
        ] {
            let args = iperf_server::sockperf_args(info.pod_ip, config.sockperf_port, tcp);
            tasks.spawn(
                name,
                iperf_server::supervise_tool("sockperf", args, stop.clone()),
            );
        }
    }
    {
        let (intake, done) = (intake.clone(), done.clone());
        tasks.spawn("intake", async move { intake.serve(sub, done).await });
    }
    {
        let (js, info, done, period) = (js.clone(), info.clone(), done.clone(), config.heartbeat);
        tasks.spawn("liveness", async move {
            if let Some(store) = liveness::open_bucket(&js, &done).await {
                liveness::heartbeat(store, &info, period, done).await;
            }
        });
    }
    tracing::info!(worker_id = %info.worker_id, pod = %info.pod_name, ip = %info.pod_ip, "worker running");

    let outcome = tasks.watch(shutdown).await;
    let grace = match outcome {
        Ok(()) => {
            tracing::info!("shutting down: no new jobs; finishing those in hand");
            config.shutdown_grace
        }
        Err(_) => Duration::ZERO,
    };
    stop.cancel();
    intake.tracker.close(); // new jobs are refused `shutting_down` from here on
    if tokio::time::timeout(grace, intake.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: stopping the jobs still running");
        intake.stop_all();
        // Give the stopped jobs a moment to publish their outcome, then stop retrying.
        if tokio::time::timeout(Duration::from_secs(5), intake.tracker.wait())
            .await
            .is_err()
        {
            give_up.cancel();
            intake.tracker.wait().await;
        }
    }
    // Results are published (or given up): now deregister, so the dispatcher never mistakes a
    // clean stop for a lost worker.
    done.cancel();
    let stopped = tasks.join(STOP_WITHIN).await;
    podperf_connect::drain(&client).await;
    Ok(outcome.and(stopped)?)
}
