//! The fault-injection harness: testkit's [`Cluster`] (real nats-server(s), redis-server,
//! `podperf-dispatcher` and `podperf-worker` processes on free ports in temp dirs), driven through
//! the API with `podperf-client` (so that `noop` jobs, which the CLI does not expose, can be
//! submitted in batches), plus the audit every scenario ends with: every job in exactly one
//! terminal state, none missing, none duplicated, no result lost or invented.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_client::{Error as ClientError, ErrorKind};
use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{JobParams, JobSpec, NoopParams, PingParams, Target};
use podperf_protocol::names::RESULTS_STREAM;
use podperf_protocol::outcome::{JobOutcome, JobState};
use podperf_protocol::status::{DispatcherInfo, Role, StatusReply};
use podperf_testkit::{free_port, ChildGuard, Cluster, ClusterOpts, NatsServer, WorkerSpec};
use serde_json::Value;
use uuid::Uuid;

/// The liveness TTL the dispatcher runs with (seconds).
pub const TTL_S: u64 = 2;

pub const TERMINAL: [&str; 5] = [
    "succeeded",
    "failed",
    "timed_out",
    "worker_lost",
    "cancelled",
];
pub const ALL_STATES: [&str; 8] = [
    "queued",
    "dispatched",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "worker_lost",
    "cancelled",
];

/// Whether the long variants run (`PODPERF_LONG_TESTS=1`).
pub fn long() -> bool {
    std::env::var("PODPERF_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// Runs a blocking testkit call (start/stop/restart of a server) off the async worker threads.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

pub use podperf_testkit::eventually;

/// How the dispatcher is started.
#[derive(Debug, Clone)]
pub struct DispatcherOpts {
    pub replicas: usize,
    pub max_queued: Option<usize>,
    /// How long each API call of the test's client may take; `None` = the client's default.
    pub api_timeout: Option<Duration>,
    /// More dispatcher env (budgets, …).
    pub env: Vec<(String, String)>,
}

impl Default for DispatcherOpts {
    fn default() -> Self {
        DispatcherOpts {
            replicas: 1,
            max_queued: None,
            api_timeout: None,
            env: Vec::new(),
        }
    }
}

impl DispatcherOpts {
    fn cluster_opts(&self) -> ClusterOpts {
        let mut env = vec![("PODPERF_REPLICAS".to_string(), self.replicas.to_string())];
        if let Some(q) = self.max_queued {
            env.push(("PODPERF_MAX_QUEUED".into(), q.to_string()));
        }
        env.extend(self.env.iter().cloned());
        let defaults = ClusterOpts::default();
        ClusterOpts {
            worker_ttl_s: Some(TTL_S),
            dispatcher_env: env,
            api_timeout: self.api_timeout.unwrap_or(defaults.api_timeout),
            ..defaults
        }
    }
}

/// A whole system (testkit's [`Cluster`]: servers, dispatcher, workers, an API client) and a
/// recorder of every result publish seen on core NATS. Derefs to the [`Cluster`].
pub struct Sys {
    cluster: Cluster,
    pub seen: Arc<Mutex<Seen>>,
}

impl Deref for Sys {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl DerefMut for Sys {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// What the recorder saw on `podperf.results.>` (core NATS: every publish, retries included).
#[derive(Default)]
pub struct Seen {
    /// job → distinct `started_at_ms` of its published outcomes (2+ = the job ran twice).
    pub runs: HashMap<Uuid, HashSet<u64>>,
}

impl Sys {
    /// One nats-server (JetStream, file store kept across restarts), Redis with its append-only
    /// file, the dispatcher.
    pub async fn start(opts: DispatcherOpts) -> Sys {
        let nats = blocking(NatsServer::start);
        Sys::with_servers(vec![nats], opts).await
    }

    pub async fn with_servers(nats: Vec<NatsServer>, opts: DispatcherOpts) -> Sys {
        let cluster = Cluster::with_nats(nats, opts.cluster_opts()).await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut sub = cluster
            .client()
            .nats()
            .subscribe("podperf.results.>")
            .await
            .unwrap();
        cluster.client().nats().flush().await.unwrap();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Ok(o) = serde_json::from_slice::<JobOutcome>(&msg.payload) {
                    let mut s = s.lock().unwrap();
                    s.runs.entry(o.job_id).or_default().insert(o.started_at_ms);
                }
            }
        });
        Sys { cluster, seen }
    }

    pub fn add_worker(&mut self, pod: &str, node: &str, ip: &str, max_jobs: u32) -> usize {
        self.cluster
            .add_worker(WorkerSpec::new(pod, node, ip).max_jobs(max_jobs))
    }

    pub fn worker_id(&self, pod: &str) -> String {
        self.worker(pod).id.clone()
    }

    /// The test's own NATS connection (the API client's).
    pub fn nats_client(&self) -> &async_nats::Client {
        self.client().nats()
    }

    /// Submits a batch; the ids, or the client's error (typed: `kind()`, `code()`). Retried while
    /// the dispatcher cannot be reached (e.g. while it restarts), under one submit id: an
    /// attempt stored but unanswered is not stored again.
    pub async fn submit(&self, jobs: Vec<JobSpec>) -> Result<Vec<Uuid>, ClientError> {
        let submit_id = Uuid::new_v4();
        eventually(Duration::from_secs(30), "jobs.submit answers", || {
            let jobs = jobs.clone();
            async move {
                match self.client().submit_with_id(submit_id, jobs).await {
                    Err(e) if e.kind() != ErrorKind::Refused => None,
                    answered => Some(answered),
                }
            }
        })
        .await
    }

    pub async fn submit_ok(&self, jobs: Vec<JobSpec>) -> Vec<Uuid> {
        let n = jobs.len();
        let ids = self
            .submit(jobs)
            .await
            .unwrap_or_else(|e| panic!("submit refused: {e}\n{}", self.logs()));
        assert_eq!(ids.len(), n);
        ids
    }

    /// The job's record, or `None` when the API answered `not_found` or is unreachable.
    /// A job's record, `None` when it cannot be read now. A request that times out is asked
    /// again (up to 4 times): with a replica paused (SIGSTOP) the API's queue group still hands
    /// it about half of the requests, and one unlucky draw must not read as "unknown".
    pub async fn get(&self, id: Uuid) -> Option<JobRecord> {
        for _ in 0..4 {
            match self.client().get(id).await {
                Ok(r) => return Some(r),
                Err(e) if e.kind() == podperf_client::ErrorKind::Timeout => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// The state of every job (`"?"` when it cannot be read now).
    pub async fn states(&self, ids: &[Uuid]) -> HashMap<Uuid, String> {
        futures::stream::iter(ids.iter().copied())
            .map(|id| async move {
                let state = self
                    .get(id)
                    .await
                    .map(|r| r.state.as_str().to_string())
                    .unwrap_or_else(|| "?".into());
                (id, state)
            })
            .buffer_unordered(64)
            .collect()
            .await
    }

    /// Waits until every job is terminal; returns how long that took.
    pub async fn wait_terminal(&self, ids: &[Uuid], timeout: Duration) -> Duration {
        let t0 = Instant::now();
        let deadline = t0 + timeout;
        let mut pending: Vec<Uuid> = ids.to_vec();
        loop {
            let states = self.states(&pending).await;
            pending.retain(|id| !TERMINAL.contains(&states[id].as_str()));
            if pending.is_empty() {
                return t0.elapsed();
            }
            if Instant::now() >= deadline {
                let sample: BTreeMap<String, usize> =
                    states.values().fold(BTreeMap::new(), |mut m, s| {
                        *m.entry(s.clone()).or_default() += 1;
                        m
                    });
                panic!(
                    "{} of {} jobs not terminal after {timeout:?} (states of those: {sample:?})\n{}",
                    pending.len(),
                    ids.len(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every terminal result in the results stream: job → the outcomes stored (normally one).
    pub async fn stream_results(&self) -> HashMap<Uuid, Vec<JobOutcome>> {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let js = async_nats::jetstream::new(self.nats_client().clone());
        let stream = js.get_stream(RESULTS_STREAM).await.expect("results stream");
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: "podperf.results.>".into(),
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        let mut msgs = consumer.messages().await.expect("messages");
        let mut out: HashMap<Uuid, Vec<JobOutcome>> = HashMap::new();
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(1500), msgs.next()).await
        {
            if let Ok(o) = serde_json::from_slice::<JobOutcome>(&msg.payload) {
                out.entry(o.job_id).or_default().push(o);
            }
        }
        out
    }

    /// Checks the invariants over `ids` and returns the figures. `must_succeed`: jobs that must
    /// end `succeeded` (e.g. every noop of a batch the fault should not affect).
    pub async fn audit(&self, ids: &[Uuid], must_succeed: &[Uuid]) -> Audit {
        let mut a = Audit {
            jobs: ids.len(),
            ..Default::default()
        };
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "the API handed out a job id twice");
        let results = self.stream_results().await;
        let records: HashMap<Uuid, Option<JobRecord>> = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, self.get(id).await) })
            .buffer_unordered(64)
            .collect()
            .await;
        let redis_once = self.redis_index_counts(ids).await;
        let seen = self.seen.lock().unwrap();
        for id in ids {
            let Some(rec) = &records[id] else {
                a.missing.push(*id);
                continue;
            };
            let state = rec.state.as_str().to_string();
            *a.by_state.entry(state.clone()).or_default() += 1;
            if !TERMINAL.contains(&state.as_str()) {
                a.not_terminal.push(*id);
            }
            let stored = results.get(id).map(Vec::len).unwrap_or(0);
            let runs = seen.runs.get(id).map(HashSet::len).unwrap_or(0);
            if stored > 1 || runs > 1 || redis_once.get(id).copied().unwrap_or(0) > 1 {
                a.duplicated.push(*id);
            }
            // A worker's result that says succeeded must be what the job shows, and a job shown
            // succeeded must have a worker's result behind it.
            let worker_says = results
                .get(id)
                .and_then(|v| v.first())
                .map(|o| serde_json::to_value(o.status).unwrap());
            let lost_result =
                worker_says.as_ref().is_some_and(|s| s == "succeeded") && state != "succeeded";
            let invented = state == "succeeded" && worker_says.is_none();
            if lost_result || invented {
                a.misreported.push(*id);
            }
        }
        for id in must_succeed {
            let state = records[id].as_ref().map(|r| r.state);
            if state != Some(JobState::Succeeded) {
                a.not_succeeded.push(*id);
            }
        }
        a
    }

    /// How many of Redis's per-state indexes hold each job (must be exactly one).
    async fn redis_index_counts(&self, ids: &[Uuid]) -> HashMap<Uuid, usize> {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        let mut counts = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                for st in ALL_STATES {
                    pipe.zscore(format!("podperf:jobs:state:{st}"), id.to_string());
                }
            }
            let scores: Vec<Option<f64>> = pipe.query_async(&mut conn).await.expect("zscore");
            for (i, id) in chunk.iter().enumerate() {
                let n = scores[i * ALL_STATES.len()..(i + 1) * ALL_STATES.len()]
                    .iter()
                    .filter(|s| s.is_some())
                    .count();
                counts.insert(*id, n);
            }
        }
        counts
    }

    /// Waits until the status lists exactly the running dispatcher processes, one of them
    /// leading (and so the others standing by).
    pub async fn settled(&mut self) -> StatusReply {
        let mut pids: Vec<u32> = self.dispatchers_mut().map(|d| d.pid()).collect();
        pids.sort_unstable();
        let sys: &Sys = self;
        eventually(
            Duration::from_secs(30),
            "one leader and the others standing by",
            || {
                let pids = pids.clone();
                async move {
                    let s = sys.client().status().await.ok()?;
                    let mut listed: Vec<u32> = s.dispatchers.iter().map(|d| d.pid).collect();
                    listed.sort_unstable();
                    let leaders = s.dispatchers.iter().filter(|d| d.role == Role::Leader);
                    (listed == pids && leaders.count() == 1).then_some(s)
                }
            },
        )
        .await
    }

    /// The dispatcher process with this pid.
    pub fn dispatcher_process(&mut self, pid: u32) -> &mut ChildGuard {
        self.dispatchers_mut()
            .find(|d| d.pid() == pid)
            .unwrap_or_else(|| panic!("no dispatcher process {pid}"))
    }

    /// Starts the dispatcher process that had this pid again (as Kubernetes restarts a pod).
    pub fn restart_dispatcher(&mut self, pid: u32) {
        if self.dispatcher.as_ref().is_some_and(|d| d.pid() == pid) {
            self.spawn_dispatcher();
            return;
        }
        let i = self
            .replicas
            .iter()
            .position(|d| d.pid() == pid)
            .unwrap_or_else(|| panic!("no dispatcher process {pid}"));
        self.restart_replica(i);
    }

    /// Processes the workers started besides their own `iperf3 -s` and `sockperf server`
    /// servers: the tools of the jobs they are running (empty when nothing runs).
    pub fn worker_tools_running(&self) -> Vec<podperf_testkit::Proc> {
        self.workers
            .iter()
            .flat_map(|w| podperf_testkit::descendants(w.proc.pid()))
            .filter(|p| !p.cmdline.starts_with("iperf3 -s "))
            .filter(|p| !p.cmdline.starts_with("sockperf server "))
            .collect()
    }
}

/// The figures of one scenario.
#[derive(Debug, Default)]
pub struct Audit {
    pub jobs: usize,
    pub by_state: BTreeMap<String, usize>,
    pub missing: Vec<Uuid>,
    pub not_terminal: Vec<Uuid>,
    pub duplicated: Vec<Uuid>,
    pub misreported: Vec<Uuid>,
    pub not_succeeded: Vec<Uuid>,
}

impl Audit {
    /// Prints the figures (`cargo test -- --nocapture` shows them) and asserts the invariants.
    pub fn check(&self, scenario: &str, sys: &Sys) {
        println!(
            "FIGURES {scenario}: jobs {} states {:?} lost {} not-terminal {} duplicated {} \
             misreported {} not-succeeded {}",
            self.jobs,
            self.by_state,
            self.missing.len(),
            self.not_terminal.len(),
            self.duplicated.len(),
            self.misreported.len(),
            self.not_succeeded.len()
        );
        let ok = self.missing.is_empty()
            && self.not_terminal.is_empty()
            && self.duplicated.is_empty()
            && self.misreported.is_empty()
            && self.not_succeeded.is_empty();
        assert!(
            ok,
            "{scenario}: invariants broken: {self:#?}\n{}",
            sys.logs()
        );
    }
}

/// The leading replica of a status.
pub fn leader_of(s: &StatusReply) -> DispatcherInfo {
    s.dispatchers
        .iter()
        .find(|d| d.role == Role::Leader)
        .cloned()
        .expect("a leader")
}

/// A job spec written as JSON (the way a user writes it), typed.
pub fn spec(json: serde_json::Value) -> JobSpec {
    serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("not a job spec ({e}): {json}"))
}

pub fn noop(source: &str, sleep_ms: u32) -> JobSpec {
    JobSpec {
        family: None,
        source: source.into(),
        target: None,
        params: JobParams::Noop(NoopParams { sleep_ms }),
        timeout_s: None,
    }
}

pub fn noops(source: &str, n: usize, sleep_ms: u32) -> Vec<JobSpec> {
    (0..n).map(|_| noop(source, sleep_ms)).collect()
}

pub fn ping(source: &str, target: &str, count: u32) -> JobSpec {
    JobSpec {
        family: None,
        source: source.into(),
        target: Some(Target::Worker(target.into())),
        params: JobParams::Ping(PingParams {
            count,
            interval_ms: 200,
            ..PingParams::default()
        }),
        timeout_s: None,
    }
}

pub use podperf_testkit::process_running;

/// A 3-node JetStream cluster as `broker-config/cluster.conf` (cluster `podperf`, JetStream on
/// every node, monitoring on) on loopback ports: the nodes' names and monitoring ports, in the
/// order of the servers [`start`](Self::start) returns (and so of [`Cluster::nats`]).
pub struct NatsNodes {
    pub names: [&'static str; 3],
    pub http: Vec<u16>,
}

impl NatsNodes {
    /// Starts the three nodes and returns once JetStream has its meta leader (the dispatcher
    /// cannot create R3 assets before).
    pub async fn start() -> (Vec<NatsServer>, NatsNodes) {
        let names = ["n0", "n1", "n2"];
        let http: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let servers: Vec<NatsServer> = blocking(|| {
            (0..3)
                .map(|i| {
                    NatsServer::start_with_config(&node_config(names[i], http[i], route[i], &route))
                })
                .collect()
        });
        eventually(
            Duration::from_secs(30),
            "the cluster elects a meta leader",
            || async {
                let jsz = monitor(http[0], "/jsz")?;
                let size = jsz["meta_cluster"]["cluster_size"].as_u64()?;
                (size == 3 && jsz["meta_cluster"]["leader"].is_string()).then_some(())
            },
        )
        .await;
        (servers, NatsNodes { names, http })
    }

    /// Waits until node `i`, restarted at `restarted`, has its routes back and the results
    /// stream's replicas are all current with it among them; returns how long each took.
    pub async fn rejoined(&self, sys: &Sys, i: usize, restarted: Instant) -> (Duration, Duration) {
        eventually(
            Duration::from_secs(30),
            "the node has its routes back",
            || async {
                let routez = monitor(self.http[i], "/routez")?;
                (routez["num_routes"].as_u64()? >= 2).then_some(())
            },
        )
        .await;
        let routes_back = restarted.elapsed();
        let replica_current = eventually(
            Duration::from_secs(60),
            "its stream replica is current",
            || async {
                let c = stream_cluster(sys).await?;
                let all_current = c["replicas"]
                    .as_array()?
                    .iter()
                    .all(|r| r["current"] == true && r["offline"] != true);
                let back = c["leader"] == self.names[i]
                    || c["replicas"]
                        .as_array()?
                        .iter()
                        .any(|r| r["name"] == self.names[i]);
                (all_current && back).then(|| restarted.elapsed())
            },
        )
        .await;
        (routes_back, replica_current)
    }
}

/// `broker-config/cluster.conf` minus what needs Kubernetes (fixed ports, pid file, DNS routes,
/// the auth include — permissions are tested in `broker-config/tests/`), on loopback ports.
fn node_config(name: &str, http: u16, route: u16, routes: &[u16]) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    format!(
        r#"server_name: {name}
http: 127.0.0.1:{http}
jetstream {{
  store_dir: "{{store_dir}}"
  max_memory_store: 256MB
  max_file_store: 1GB
}}
cluster {{
  name: podperf
  listen: 127.0.0.1:{route}
  routes: [{}]
  connect_retries: 120
}}
"#,
        routes.join(", ")
    )
}

/// GET `path` from a monitoring port, as JSON.
pub fn monitor(port: u16, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()
}

/// The results stream's cluster info (leader and replicas) as the JetStream API reports it.
pub async fn stream_cluster(sys: &Sys) -> Option<Value> {
    let req = sys
        .nats_client()
        .request(format!("$JS.API.STREAM.INFO.{RESULTS_STREAM}"), "{}".into());
    let msg = tokio::time::timeout(Duration::from_secs(10), req)
        .await
        .ok()?
        .ok()?;
    let reply: Value = serde_json::from_slice(&msg.payload).ok()?;
    reply.get("cluster").cloned()
}
