//! Simulated workers: many `podperf_worker::run` instances sharing a few NATS clients in this
//! process. They go through the real liveness (KV put every heartbeat) and job-intake code
//! (request/reply, de-duplication, concurrency limit, durable result publishing); they run `noop`
//! jobs only (no iperf3 server, and no tools on `PATH`, see `main.rs`) — except in the
//! `sweep-scale` figure, where `PATH` holds the simulated `fping` (see `sweep_scale.rs`) and each
//! worker has an address of its own ([`start_with`]).

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_nats::Client;
use podperf_worker::{Identity, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::env::connect;

/// A group of simulated workers on their own clients.
pub struct Fleet {
    pub ids: Vec<String>,
    pub clients: Vec<Client>,
    /// Workers whose `run` ended with an error.
    pub failed: Arc<AtomicUsize>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// `n` workers named `<prefix>-<i>` on `nodes` nodes, over `clients` shared connections, all
/// with the pod IP 127.0.0.1.
pub async fn start(
    url: &str,
    prefix: &str,
    n: usize,
    clients: usize,
    nodes: usize,
) -> anyhow::Result<Fleet> {
    start_with(url, prefix, n, clients, nodes, |_| {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
    .await
}

/// Like [`start`], worker `i` with the pod IP `ip(i)` (a sweep's targets are told apart by their
/// address, as fping reports them).
pub async fn start_with(
    url: &str,
    prefix: &str,
    n: usize,
    clients: usize,
    nodes: usize,
    ip: impl Fn(usize) -> IpAddr,
) -> anyhow::Result<Fleet> {
    start_range(url, prefix, 0..n, clients, nodes, ip).await
}

/// Like [`start_with`], workers `range` of a larger fleet (one of several processes, see
/// [`crate::sim_procs`]): worker `i` is named `<prefix>-<i>` on node `i % nodes`.
pub async fn start_range(
    url: &str,
    prefix: &str,
    range: Range<usize>,
    clients: usize,
    nodes: usize,
    ip: impl Fn(usize) -> IpAddr,
) -> anyhow::Result<Fleet> {
    let n = range.len();
    let mut conns = Vec::with_capacity(clients);
    for c in 0..clients.max(1) {
        conns.push(connect(url, &format!("{prefix}-conn-{c}")).await?);
    }
    let stop = CancellationToken::new();
    let failed = Arc::new(AtomicUsize::new(0));
    let mut ids = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (k, i) in range.enumerate() {
        let id = Uuid::new_v4().to_string();
        let identity = Identity {
            worker_id: id.clone(),
            pod_name: format!("{prefix}-{i}"),
            pod_namespace: None,
            pod_ip: ip(i),
            node_name: format!("{prefix}-node-{}", i % nodes.max(1)),
            node_ip: None,
            pod_ips: vec![],
            node_ips: vec![],
            host_network: false,
        };
        let config = WorkerConfig {
            iperf3_server: false,
            ..WorkerConfig::new(identity)
        };
        let client = conns[k % conns.len()].clone();
        let (stop, failed) = (stop.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(err) = podperf_worker::run(client, config, stop.cancelled_owned()).await {
                failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("simulated worker failed: {err}");
            }
        }));
        ids.push(id);
    }
    Ok(Fleet {
        ids,
        clients: conns,
        failed,
        stop,
        tasks,
    })
}

impl Fleet {
    /// Clean shutdown through the workers' own path (deregister, drain).
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
