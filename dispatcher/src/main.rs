//! `podperf-dispatcher`: flags/env → [`podperf_dispatcher::DispatcherConfig`] → run.
//!
//! Every numeric setting has a range, checked as the flags are parsed: a value out of it (or not a
//! number) is refused with exit 64 and clap's message naming the flag.

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Parser;
use ipnet::IpNet;
use podperf_connect::{Fatal, NatsArgs};
use podperf_dispatcher::{DispatcherConfig, Store};

/// mimalloc: see the workspace Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Replicas of the bucket and stream (3 on a JetStream cluster); range 1..=5.
    #[arg(long, env = "PODPERF_REPLICAS", default_value_t = 1,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=5))]
    replicas: usize,
    /// Seconds after its last heartbeat a worker is considered gone (the bucket's TTL); range
    /// 2..=3600 (heartbeats come every second).
    #[arg(long, env = "PODPERF_WORKER_TTL_S", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    worker_ttl_s: u64,
    /// Milliseconds a worker whose key expired has to come back (a broker restart can expire a
    /// live worker's key) before the jobs it holds end `worker_lost`; range 0..=3600000 (an hour);
    /// default: the worker TTL.
    #[arg(long, env = "PODPERF_LOST_GRACE_MS",
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    lost_grace_ms: Option<u64>,
    /// Hours jobs and results stay queryable; range 1..=8760 (a year).
    #[arg(long, env = "PODPERF_RETENTION_H", default_value_t = 168,
          value_parser = clap::value_parser!(u64).range(1..=8760))]
    retention_h: u64,
    /// CIDRs address targets may lie in (comma-separated); none by default.
    #[arg(long, env = "PODPERF_ALLOWED_CIDRS", value_delimiter = ',')]
    allowed_cidrs: Vec<IpNet>,
    /// Outstanding jobs before submits are refused with `busy`; range 1..=10000000.
    #[arg(long, env = "PODPERF_MAX_QUEUED", default_value_t = 100_000,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    max_queued: usize,
    /// Storage of the liveness bucket: `file` survives a NATS restart, `memory` is cheaper with
    /// very many workers.
    #[arg(long, env = "PODPERF_LIVENESS_STORAGE", value_enum, default_value_t = Storage::File)]
    liveness_storage: Storage,
    /// Milliseconds the leader lease lasts without a renewal (a standby takes over at most this
    /// long after the leader dies); range 500..=60000.
    #[arg(long, env = "PODPERF_LEADER_TTL_MS", default_value_t = podperf_dispatcher::config::DEFAULT_LEADER_TTL_MS,
          value_parser = clap::value_parser!(u64).range(500..=60_000))]
    leader_ttl_ms: u64,
    /// Byte budget of the results stream (the oldest messages are dropped at it); range
    /// 1048576..=1099511627776 (1 MiB..1 TiB).
    #[arg(long, env = "PODPERF_RESULTS_MAX_BYTES", default_value_t = podperf_dispatcher::config::DEFAULT_RESULTS_MAX_BYTES,
          value_parser = clap::value_parser!(u64).range(1 << 20..=1 << 40))]
    results_max_bytes: u64,
    /// Terminal jobs kept in Redis (the oldest are trimmed; outstanding jobs never are); range
    /// 10..=100000000.
    #[arg(long, env = "PODPERF_STORE_MAX_JOBS", default_value_t = podperf_dispatcher::config::DEFAULT_STORE_MAX_JOBS,
          value_parser = clap::value_parser!(u64).range(10..=100_000_000))]
    store_max_jobs: u64,
    /// The shortest period a schedule may have, milliseconds; range 1000..=10000 (lower it only
    /// to test schedules quickly).
    #[arg(long, env = "PODPERF_SCHEDULE_MIN_EVERY_MS", default_value_t = podperf_protocol::schedule::bounds::EVERY_MS_MIN,
          value_parser = clap::value_parser!(u64).range(1000..=10_000))]
    schedule_min_every_ms: u64,
    /// Seconds a submit id is remembered (a retry within it is answered from the first submit,
    /// stored once); range 60..=86400.
    #[arg(long, env = "PODPERF_SUBMIT_ID_TTL_S", default_value_t = podperf_protocol::api::SUBMIT_ID_TTL_S,
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    submit_id_ttl_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Storage {
    File,
    Memory,
}

impl Args {
    /// The configuration; the ranges of the flags make every conversion safe.
    fn config(&self) -> DispatcherConfig {
        let worker_ttl = Duration::from_secs(self.worker_ttl_s);
        DispatcherConfig {
            replicas: self.replicas,
            worker_ttl,
            lost_grace: self.lost_grace_ms.map_or(worker_ttl, Duration::from_millis),
            retention: Duration::from_secs(self.retention_h * 3600),
            allowed_cidrs: self.allowed_cidrs.clone(),
            max_queued: self.max_queued,
            liveness_in_memory: self.liveness_storage == Storage::Memory,
            leader_ttl: Duration::from_millis(self.leader_ttl_ms),
            results_max_bytes: self.results_max_bytes,
            store_max_jobs: self.store_max_jobs,
            schedule_min_every: Duration::from_millis(self.schedule_min_every_ms),
            submit_id_ttl: Duration::from_secs(self.submit_id_ttl_s),
            ..DispatcherConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match podperf_connect::parse_args::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    podperf_connect::init_tracing();
    podperf_connect::exit("podperf-dispatcher", run(args).await)
}

async fn run(args: Args) -> Result<(), Fatal> {
    let config = args.config();
    let (client, reconnects) = args
        .nats
        .connect_watched(
            "podperf-dispatcher",
            podperf_protocol::names::DISPATCHER_INBOX_PREFIX,
            true,
        )
        .await
        .map_err(|source| Fatal::Connect {
            url: args.nats.nats_url.clone(),
            source,
        })?;
    let store = Store::connect(&args.redis_url, config.retention)
        .await
        .map_err(|err| Fatal::config_because(format!("bad Redis URL {}", args.redis_url), err))?;
    let shutdown = podperf_connect::shutdown_signal();
    podperf_dispatcher::run_with_reconnects(client, store, config, shutdown, reconnects)
        .await
        .map_err(|err| Fatal::Run(err.into()))
}
