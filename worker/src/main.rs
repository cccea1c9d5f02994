//! `podperf-worker`: flags/env → [`podperf_worker::WorkerConfig`] → [`podperf_worker::run`].
//!
//! Every numeric setting has a range, checked as the flags are parsed: a value out of it (or not a
//! number) is refused with exit 64 and clap's message naming the flag.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use podperf_connect::{Fatal, NatsArgs};
use podperf_protocol::names::is_valid_worker_id;
use podperf_worker::{Identity, WorkerConfig};

/// A podperf worker: runs ping, traceroute, iperf3, latency (sockperf) and mtu (tracepath) jobs sent by the dispatcher.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Worker id; the pod UID in Kubernetes (a UUID is generated when absent).
    #[arg(long, env = "POD_UID")]
    pod_uid: Option<String>,
    /// Pod name (defaults to the host name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    #[arg(long, env = "POD_NAMESPACE")]
    pod_namespace: Option<String>,
    /// The address other workers probe this one at (with --host-network, the node IP is used).
    #[arg(long, env = "POD_IP")]
    pod_ip: Option<IpAddr>,
    /// Node name (defaults to the host name).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    #[arg(long, env = "NODE_IP")]
    node_ip: Option<IpAddr>,
    /// Every address of the pod, comma-separated (the Downward API's `status.podIPs`: one per
    /// family on a dual-stack cluster); POD_IP comes first, the others are what `--family`
    /// chooses from. At most 8.
    #[arg(long, env = "POD_IPS", value_delimiter = ',')]
    pod_ips: Vec<IpAddr>,
    /// Every address of the node, comma-separated (`status.hostIPs` where the cluster has it);
    /// with --host-network these are the worker's addresses. At most 8.
    #[arg(long, env = "HOST_IPS", value_delimiter = ',')]
    host_ips: Vec<IpAddr>,
    /// The worker shares the node's network namespace (its pod IP is the node IP).
    #[arg(long, env = "PODPERF_HOST_NETWORK")]
    host_network: bool,
    /// Port of this worker's iperf3 server; range 1..=65535.
    #[arg(long, env = "PODPERF_IPERF3_PORT", default_value_t = 5201,
          value_parser = clap::value_parser!(u16).range(1..))]
    iperf3_port: u16,
    /// Do not run an iperf3 server (iperf3 jobs toward this worker then fail).
    #[arg(long, env = "PODPERF_NO_IPERF3_SERVER")]
    no_iperf3_server: bool,
    /// Port of this worker's sockperf server (TCP and UDP, for `latency` jobs); range 1..=65535.
    #[arg(long, env = "PODPERF_SOCKPERF_PORT", default_value_t = 11111,
          value_parser = clap::value_parser!(u16).range(1..))]
    sockperf_port: u16,
    /// Do not run a sockperf server (latency jobs toward this worker then fail).
    #[arg(long, env = "PODPERF_NO_SOCKPERF_SERVER")]
    no_sockperf_server: bool,
    /// Liveness refresh period in milliseconds (keep it well below the bucket's TTL); range
    /// 100..=60000.
    #[arg(long, env = "PODPERF_HEARTBEAT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    heartbeat_ms: u64,
    /// Jobs run at once; range 1..=1024.
    #[arg(long, env = "PODPERF_MAX_JOBS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_jobs: u32,
    /// Seconds jobs in hand may still run after SIGTERM; range 0..=3600.
    #[arg(long, env = "PODPERF_SHUTDOWN_GRACE_S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_grace_s: u64,
}

impl Args {
    /// The configuration; the ranges of the flags make every conversion safe.
    fn config(&self) -> Result<WorkerConfig, Fatal> {
        let host = hostname();
        let worker_id = match &self.pod_uid {
            Some(id) if !is_valid_worker_id(id) => {
                return Err(Fatal::config(format!(
                    "POD_UID {id:?}: use 1-128 of [A-Za-z0-9_-]"
                )))
            }
            Some(id) => id.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let node_ip = self.node_ip.or(self.host_ips.first().copied());
        let pod_ip = self.pod_ip.or(self.pod_ips.first().copied());
        let pod_ip = match (self.host_network, node_ip, pod_ip) {
            (true, Some(ip), _) => ip,
            (_, _, Some(ip)) => ip,
            (_, Some(ip), None) => ip,
            (_, None, None) => return Err(Fatal::config("POD_IP (or --pod-ip) is required")),
        };
        let node_ips = addresses(node_ip, &self.host_ips, "HOST_IPS")?;
        // A host-network pod's addresses are the node's (Kubernetes gives them as its podIPs).
        let pod_ips = match self.host_network {
            true => {
                let both = [&self.host_ips[..], &self.pod_ips[..]].concat();
                addresses(Some(pod_ip), &both, "HOST_IPS and POD_IPS")?
            }
            false => addresses(Some(pod_ip), &self.pod_ips, "POD_IPS")?,
        };
        let identity = Identity {
            worker_id,
            pod_name: self.pod_name.clone().unwrap_or_else(|| host.clone()),
            pod_namespace: self.pod_namespace.clone(),
            pod_ip,
            node_name: self.node_name.clone().unwrap_or(host),
            node_ip,
            pod_ips,
            node_ips,
            host_network: self.host_network,
        };
        let mut config = WorkerConfig::new(identity);
        config.iperf3_port = self.iperf3_port;
        config.iperf3_server = !self.no_iperf3_server;
        config.sockperf_port = self.sockperf_port;
        config.sockperf_server = !self.no_sockperf_server;
        config.heartbeat = Duration::from_millis(self.heartbeat_ms);
        config.max_concurrent_jobs = self.max_jobs;
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace_s);
        Ok(config)
    }
}

/// Most addresses a list (`POD_IPS`, `HOST_IPS`) may hold; Kubernetes gives one per family.
const ADDRESSES_MAX: usize = 8;

/// `primary` first, then the others of `list` (each once); at most [`ADDRESSES_MAX`].
fn addresses(primary: Option<IpAddr>, list: &[IpAddr], name: &str) -> Result<Vec<IpAddr>, Fatal> {
    if list.len() > ADDRESSES_MAX {
        let n = list.len();
        return Err(Fatal::config(format!(
            "{name}: {n} addresses; at most {ADDRESSES_MAX}"
        )));
    }
    let mut out: Vec<IpAddr> = primary.into_iter().collect();
    for ip in list {
        if !out.contains(ip) {
            out.push(*ip);
        }
    }
    Ok(out)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match podperf_connect::parse_args::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    podperf_connect::init_tracing();
    podperf_connect::exit("podperf-worker", run(args).await)
}

async fn run(args: Args) -> Result<(), Fatal> {
    let config = args.config()?;
    let name = format!("podperf-worker {}", config.identity.pod_name);
    let inbox = podperf_protocol::names::WORKER_INBOX_PREFIX;
    let client = args
        .nats
        .connect(&name, inbox, true)
        .await
        .map_err(|source| Fatal::Connect {
            url: args.nats.nats_url.clone(),
            source,
        })?;
    podperf_worker::run(client, config, podperf_connect::shutdown_signal())
        .await
        .map_err(|err| Fatal::Run(err.into()))
}
