//! `podperf-dispatcher`: flags/env → [`podperf_dispatcher::DispatcherConfig`] → run.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use podperf_connect::{Fatal, NatsArgs};
use podperf_dispatcher::{DispatcherConfig, Store};

/// The podperf dispatcher: job API, scheduler, result store.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Redis URL of the job/result store.
    #[arg(
        long,
        env = "PODPERF_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Replicas of the bucket and stream (3 on a JetStream cluster).
    #[arg(long, env = "PODPERF_REPLICAS", default_value_t = 1)]
    replicas: usize,
    /// Seconds after its last heartbeat a worker is considered gone (the bucket's TTL).
    #[arg(long, env = "PODPERF_WORKER_TTL_S", default_value_t = 3)]
    worker_ttl_s: u64,
    /// Milliseconds a worker whose key expired has to come back (a broker restart can expire a
    /// live worker's key) before the jobs it holds end `worker_lost`; default: the worker TTL.
    #[arg(long, env = "PODPERF_LOST_GRACE_MS")]
    lost_grace_ms: Option<u64>,
    /// Hours jobs and results stay queryable.
    #[arg(long, env = "PODPERF_RETENTION_H", default_value_t = 168)]
    retention_h: u64,
    /// CIDRs address targets may lie in (comma-separated); none by default.
    #[arg(long, env = "PODPERF_ALLOWED_CIDRS", value_delimiter = ',')]
    allowed_cidrs: Vec<IpNet>,
    /// Outstanding jobs before submits are refused with `busy`.
    #[arg(long, env = "PODPERF_MAX_QUEUED", default_value_t = 100_000)]
    max_queued: usize,
    /// Storage of the liveness bucket: `file` survives a NATS restart, `memory` is cheaper with
    /// very many workers.
    #[arg(long, env = "PODPERF_LIVENESS_STORAGE", value_enum, default_value_t = Storage::File)]
    liveness_storage: Storage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Storage {
    File,
    Memory,
}

impl Args {
    fn config(&self) -> Result<DispatcherConfig, String> {
        if self.replicas == 0 || self.replicas > 5 {
            return Err("--replicas must be 1..=5".into());
        }
        if self.worker_ttl_s < 2 {
            return Err("--worker-ttl-s must be at least 2 (heartbeats come every second)".into());
        }
        if self.retention_h == 0 {
            return Err("--retention-h must be positive".into());
        }
        Ok(DispatcherConfig {
            replicas: self.replicas,
            worker_ttl: Duration::from_secs(self.worker_ttl_s),
            lost_grace: self.lost_grace_ms.map_or(
                Duration::from_secs(self.worker_ttl_s),
                Duration::from_millis,
            ),
            retention: Duration::from_secs(self.retention_h * 3600),
            allowed_cidrs: self.allowed_cidrs.clone(),
            max_queued: self.max_queued,
            liveness_in_memory: self.liveness_storage == Storage::Memory,
            ..DispatcherConfig::default()
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    podperf_connect::init_tracing();
    podperf_connect::exit("podperf-dispatcher", run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Fatal> {
    let config = args.config().map_err(Fatal::Config)?;
    let (client, reconnects) = args
        .nats
        .connect_watched(
            "podperf-dispatcher",
            podperf_protocol::names::DISPATCHER_INBOX_PREFIX,
            true,
        )
        .await
        .map_err(|err| {
            Fatal::Failed(format!(
                "cannot connect to NATS at {}: {err}",
                args.nats.nats_url
            ))
        })?;
    let store = Store::connect(&args.redis_url, config.retention)
        .await
        .map_err(|err| Fatal::Config(format!("bad Redis URL {}: {err}", args.redis_url)))?;
    let shutdown = podperf_connect::shutdown_signal();
    podperf_dispatcher::run_with_reconnects(client, store, config, shutdown, reconnects)
        .await
        .map_err(|err| Fatal::Failed(format!("{err:#}")))
}
