//! A whole podperf system as processes: nats-server (one or several), redis-server, the
//! `podperf-dispatcher` binary and any number of `podperf-worker` binaries, each with the env a
//! Deployment / DaemonSet gives it, plus a [`Client`] of the dispatcher's API. Used by the CLI's
//! end-to-end and fault tests and by the benchmark harness.
//!
//! Everything is stopped on drop (the servers and [`ChildGuard`]s kill their processes).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use podperf_client::Client;
use podperf_protocol::api::ListWorkersRequest;

use crate::{eventually, free_port, workspace_bin, ChildGuard, NatsServer, RedisServer};

/// How the cluster's processes are started. [`Default`] is what the tests use: a persistent
/// Redis, a 2 s liveness TTL, address targets allowed on loopback, `info` logs.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    /// nats-server configuration text (see [`NatsServer::start_with_config`]); `None` = defaults.
    pub nats_conf: Option<String>,
    /// Redis keeps its data across a restart (append-only file).
    pub persistent_redis: bool,
    /// `PODPERF_WORKER_TTL_S` of the dispatcher; `None` = its own default.
    pub worker_ttl_s: Option<u64>,
    /// `PODPERF_ALLOWED_CIDRS` of the dispatcher; `None` = its own default.
    pub allowed_cidrs: Option<String>,
    /// `PODPERF_LEADER_TTL_MS` of the dispatchers: short, so that a restarted (or killed)
    /// dispatcher's successor leads soon; `None` = their own default.
    pub leader_ttl_ms: Option<u64>,
    /// More dispatcher env (e.g. `PODPERF_REPLICAS`, `PODPERF_MAX_QUEUED`); set last, so it wins.
    pub dispatcher_env: Vec<(String, String)>,
    /// Env every podperf process gets (e.g. `PATH`); set after the defaults.
    pub env: Vec<(String, String)>,
    /// Start podperf processes with only the env above, not the test's own.
    pub env_clear: bool,
    /// `RUST_LOG` of the podperf processes.
    pub log: String,
    /// Where the podperf binaries are; `None` = next to the test executable ([`workspace_bin`]).
    pub bin_dir: Option<PathBuf>,
    /// How long each API request of the cluster's [`Client`] may take.
    pub api_timeout: Duration,
    /// How long the dispatcher may take to answer after it starts.
    pub ready_within: Duration,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            nats_conf: None,
            persistent_redis: true,
            worker_ttl_s: Some(2),
            allowed_cidrs: Some("127.0.0.0/8".into()),
            leader_ttl_ms: Some(1000),
            dispatcher_env: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            log: "info,async_nats=warn".into(),
            bin_dir: None,
            api_timeout: podperf_client::DEFAULT_TIMEOUT,
            ready_within: Duration::from_secs(30),
        }
    }
}

/// One worker process to start: where it lives and how it is configured.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub pod: String,
    pub node: String,
    pub ip: String,
    /// `PODPERF_MAX_JOBS`; `None` = the worker's default.
    pub max_jobs: Option<u32>,
    /// On the node's network (`PODPERF_HOST_NETWORK=true`).
    pub host_network: bool,
    /// More env for this worker only.
    pub env: Vec<(String, String)>,
}

impl WorkerSpec {
    pub fn new(pod: &str, node: &str, ip: &str) -> Self {
        WorkerSpec {
            pod: pod.into(),
            node: node.into(),
            ip: ip.into(),
            max_jobs: None,
            host_network: false,
            env: Vec::new(),
        }
    }

    pub fn max_jobs(mut self, n: u32) -> Self {
        self.max_jobs = Some(n);
        self
    }

    pub fn host_network(mut self) -> Self {
        self.host_network = true;
        self
    }
}

/// A worker of the cluster: its spec, the identity it was given, and its process.
pub struct Worker {
    pub spec: WorkerSpec,
    /// `POD_UID`, the worker's id; kept across restarts like a restarted container's.
    pub id: String,
    pub iperf3_port: u16,
    /// Its sockperf server's port (TCP and UDP).
    pub sockperf_port: u16,
    /// The process (the latest one after [`Cluster::start_worker`]).
    pub proc: ChildGuard,
}

impl Worker {
    pub fn pod(&self) -> &str {
        &self.spec.pod
    }

    pub fn ip(&self) -> &str {
        &self.spec.ip
    }
}

/// nats-server(s) + redis-server + dispatcher + workers, and an API client.
pub struct Cluster {
    pub nats: Vec<NatsServer>,
    pub redis: RedisServer,
    pub dispatcher: Option<ChildGuard>,
    /// More dispatcher replicas ([`add_dispatcher`](Self::add_dispatcher)); which one leads is
    /// theirs to settle (`client().status()` tells).
    pub replicas: Vec<ChildGuard>,
    pub workers: Vec<Worker>,
    pub opts: ClusterOpts,
    client: Client,
}

impl Cluster {
    /// One nats-server (JetStream), Redis, the dispatcher; returns once its API answers.
    ///
    /// Starting the servers blocks the calling thread for a moment (it waits until they accept
    /// connections).
    pub async fn start(opts: ClusterOpts) -> Cluster {
        let nats = match &opts.nats_conf {
            Some(conf) => NatsServer::start_with_config(conf),
            None => NatsServer::start(),
        };
        Cluster::with_nats(vec![nats], opts).await
    }

    /// Like [`start`](Self::start), over nats-servers the caller started (e.g. a NATS cluster).
    pub async fn with_nats(nats: Vec<NatsServer>, opts: ClusterOpts) -> Cluster {
        let redis = if opts.persistent_redis {
            RedisServer::start_persistent()
        } else {
            RedisServer::start()
        };
        let urls: Vec<String> = nats.iter().map(NatsServer::url).collect();
        let conn = async_nats::ConnectOptions::new()
            .name("podperf-testkit")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(urls)
            .await
            .expect("the test client connects to NATS");
        let client = Client::new(conn, opts.api_timeout);
        let mut cluster = Cluster {
            nats,
            redis,
            dispatcher: None,
            replicas: Vec::new(),
            workers: Vec::new(),
            opts,
            client,
        };
        cluster.start_dispatcher().await;
        cluster
    }

    /// The API client (its own NATS connection, reconnecting for ever).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The NATS URL(s) the processes are given, comma-separated.
    pub fn nats_url(&self) -> String {
        let urls: Vec<String> = self.nats.iter().map(NatsServer::url).collect();
        urls.join(",")
    }

    /// Path of one of the podperf binaries.
    pub fn bin(&self, name: &str) -> PathBuf {
        match &self.opts.bin_dir {
            Some(dir) => {
                let path = dir.join(name);
                assert!(
                    path.exists(),
                    "{} is missing: build with `cargo build --release --workspace --bins`",
                    path.display()
                );
                path
            }
            None => workspace_bin(name),
        }
    }

    fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin(name));
        if self.opts.env_clear {
            cmd.env_clear();
        }
        cmd.env("PODPERF_NATS_URL", self.nats_url())
            .env("RUST_LOG", &self.opts.log)
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts the dispatcher process without waiting for it.
    pub fn spawn_dispatcher(&mut self) {
        self.dispatcher = Some(self.dispatcher_process("dispatcher"));
    }

    /// Starts one more dispatcher replica (`name`, e.g. `dispatcher-2`) without waiting for it;
    /// returns its index in [`replicas`](Self::replicas).
    pub fn add_dispatcher(&mut self, name: &str) -> usize {
        let proc = self.dispatcher_process(name);
        self.replicas.push(proc);
        self.replicas.len() - 1
    }

    /// Starts replica `i` again (after it was killed or stopped).
    pub fn restart_replica(&mut self, i: usize) {
        let name = self.replicas[i].name().to_string();
        self.replicas[i] = self.dispatcher_process(&name);
    }

    /// Every dispatcher process: the first one, then the replicas.
    pub fn dispatchers_mut(&mut self) -> impl Iterator<Item = &mut ChildGuard> {
        self.dispatcher.iter_mut().chain(self.replicas.iter_mut())
    }

    fn dispatcher_process(&self, name: &str) -> ChildGuard {
        let mut cmd = self.command("podperf-dispatcher");
        cmd.env("PODPERF_REDIS_URL", self.redis.url());
        if let Some(ttl) = self.opts.worker_ttl_s {
            cmd.env("PODPERF_WORKER_TTL_S", ttl.to_string());
        }
        if let Some(cidrs) = &self.opts.allowed_cidrs {
            cmd.env("PODPERF_ALLOWED_CIDRS", cidrs);
        }
        if let Some(ttl) = self.opts.leader_ttl_ms {
            cmd.env("PODPERF_LEADER_TTL_MS", ttl.to_string());
        }
        cmd.env("POD_NAME", name);
        cmd.envs(self.opts.dispatcher_env.iter().map(|(k, v)| (k, v)));
        ChildGuard::spawn(cmd, name)
    }

    /// Starts the dispatcher and waits until its API answers; returns how long that took.
    pub async fn start_dispatcher(&mut self) -> Duration {
        let t0 = Instant::now();
        self.spawn_dispatcher();
        self.wait_api().await;
        t0.elapsed()
    }

    /// Waits until the dispatcher's API answers (at most [`ClusterOpts::ready_within`]).
    pub async fn wait_api(&self) {
        let req = ListWorkersRequest::default();
        let deadline = Instant::now() + self.opts.ready_within;
        loop {
            match self.client.workers_page(&req).await {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => panic!(
                    "the dispatcher did not answer within {:?} ({e})\n{}",
                    self.opts.ready_within,
                    self.logs()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until the dispatcher's ingest has acknowledged every message the results stream held
    /// when this was called: whatever the workers had published by then has been written to the
    /// store.
    pub async fn wait_ingested(&self, within: Duration) {
        use podperf_protocol::names::{RESULTS_CONSUMER, RESULTS_STREAM};
        let js = async_nats::jetstream::new(self.client.nats().clone());
        let last = {
            let mut stream = js
                .get_stream(RESULTS_STREAM)
                .await
                .expect("the results stream");
            stream
                .info()
                .await
                .expect("stream info")
                .state
                .last_sequence
        };
        eventually(within, "ingest acknowledged every published result", || {
            let js = js.clone();
            async move {
                let stream = js.get_stream(RESULTS_STREAM).await.ok()?;
                let info = stream.consumer_info(RESULTS_CONSUMER).await.ok()?;
                (info.ack_floor.stream_sequence >= last).then_some(())
            }
        })
        .await;
    }

    /// Adds a worker and starts it; returns its index in [`workers`](Self::workers).
    pub fn add_worker(&mut self, spec: WorkerSpec) -> usize {
        let id = format!("uid-{}-{}", spec.pod, free_port());
        let iperf3_port = free_port();
        let sockperf_port = free_port();
        let proc = self.spawn_worker(&spec, &id, [iperf3_port, sockperf_port]);
        self.workers.push(Worker {
            spec,
            id,
            iperf3_port,
            sockperf_port,
            proc,
        });
        self.workers.len() - 1
    }

    /// Starts worker `i` again (after it was killed) with its identity: a restarted container
    /// keeps its pod UID.
    pub fn start_worker(&mut self, i: usize) {
        let w = &self.workers[i];
        let proc = self.spawn_worker(&w.spec, &w.id, [w.iperf3_port, w.sockperf_port]);
        self.workers[i].proc = proc;
    }

    /// `ports`: the iperf3 and the sockperf server's.
    fn spawn_worker(&self, s: &WorkerSpec, id: &str, ports: [u16; 2]) -> ChildGuard {
        let mut cmd = self.command("podperf-worker");
        cmd.env("POD_UID", id)
            .env("POD_NAME", &s.pod)
            .env("POD_NAMESPACE", "podperf")
            .env("POD_IP", &s.ip)
            .env("NODE_NAME", &s.node)
            .env("NODE_IP", &s.ip)
            .env("PODPERF_IPERF3_PORT", ports[0].to_string())
            .env("PODPERF_SOCKPERF_PORT", ports[1].to_string())
            .env("PODPERF_SHUTDOWN_GRACE_S", "2")
            .env("PODPERF_HOST_NETWORK", s.host_network.to_string());
        if let Some(n) = s.max_jobs {
            cmd.env("PODPERF_MAX_JOBS", n.to_string());
        }
        cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
        ChildGuard::spawn(cmd, &s.pod)
    }

    /// The worker whose pod is `pod`.
    pub fn worker(&self, pod: &str) -> &Worker {
        self.workers
            .iter()
            .find(|w| w.spec.pod == pod)
            .unwrap_or_else(|| panic!("no worker {pod}"))
    }

    /// The pods the dispatcher lists now (sorted); empty while it cannot answer.
    pub async fn listed_pods(&self) -> Vec<String> {
        let mut pods: Vec<String> = match self.client.workers().await {
            Ok(ws) => ws.into_iter().map(|w| w.info.pod_name).collect(),
            Err(_) => Vec::new(),
        };
        pods.sort();
        pods
    }

    /// Waits until the dispatcher lists exactly these pods; returns how long that took.
    pub async fn wait_workers(&self, pods: &[&str], within: Duration) -> Duration {
        let t0 = Instant::now();
        let mut want: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
        want.sort();
        let what = format!("workers {pods:?} are listed");
        eventually(within, &what, || async {
            (self.listed_pods().await == want).then_some(())
        })
        .await;
        t0.elapsed()
    }

    /// The last lines of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.dispatcher {
            s += &format!("--- dispatcher ---\n{}\n", tail(&d.log(), 80));
        }
        for d in &self.replicas {
            s += &format!("--- {} ---\n{}\n", d.name(), tail(&d.log(), 80));
        }
        for w in &self.workers {
            s += &format!("--- {} ---\n{}\n", w.spec.pod, tail(&w.proc.log(), 40));
        }
        s
    }
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
