//! The fault-injection harness: real nats-server(s), redis-server, `podperf-dispatcher` and
//! `podperf-worker` processes on free ports in temp dirs, driven through the API with async-nats
//! (so that `noop` jobs, which the CLI does not expose, can be submitted in batches), plus the
//! audit every scenario ends with: every job in exactly one terminal state, none missing, none
//! duplicated, no result lost or invented.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_protocol::names::RESULTS_STREAM;
use podperf_protocol::outcome::JobOutcome;
use podperf_testkit::{free_port, workspace_bin, ChildGuard, NatsServer, RedisServer};
use serde_json::{json, Value};
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

/// Polls `f` every 100 ms until it yields `Some`; panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How the dispatcher is started.
#[derive(Debug, Clone)]
pub struct DispatcherOpts {
    pub replicas: usize,
    pub max_queued: Option<usize>,
}

impl Default for DispatcherOpts {
    fn default() -> Self {
        DispatcherOpts {
            replicas: 1,
            max_queued: None,
        }
    }
}

pub struct Worker {
    pub pod: String,
    pub node: String,
    pub id: String,
    pub ip: String,
    pub max_jobs: u32,
    pub iperf3_port: u16,
    pub proc: Option<ChildGuard>,
}

/// A whole system: servers, dispatcher, workers, a test client and a recorder of every result
/// publish seen on core NATS.
pub struct Sys {
    pub nats: Vec<NatsServer>,
    pub redis: RedisServer,
    pub dispatcher: Option<ChildGuard>,
    pub opts: DispatcherOpts,
    pub workers: Vec<Worker>,
    pub client: async_nats::Client,
    pub seen: Arc<Mutex<Seen>>,
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
        let redis = blocking(RedisServer::start_persistent);
        let urls: Vec<String> = nats.iter().map(|n| n.url()).collect();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(urls.clone())
            .await
            .expect("test client connects");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut sub = client.subscribe("podperf.results.>").await.unwrap();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Ok(o) = serde_json::from_slice::<JobOutcome>(&msg.payload) {
                    let mut s = s.lock().unwrap();
                    s.runs.entry(o.job_id).or_default().insert(o.started_at_ms);
                }
            }
        });
        let mut sys = Sys {
            nats,
            redis,
            dispatcher: None,
            opts,
            workers: Vec::new(),
            client,
            seen,
        };
        sys.start_dispatcher().await;
        sys
    }

    pub fn nats_urls(&self) -> String {
        let urls: Vec<String> = self.nats.iter().map(|n| n.url()).collect();
        urls.join(",")
    }

    /// Starts the dispatcher and waits until its API answers; returns how long that took.
    pub async fn start_dispatcher(&mut self) -> Duration {
        let t0 = Instant::now();
        let mut cmd = Command::new(workspace_bin("podperf-dispatcher"));
        cmd.env("PODPERF_NATS_URL", self.nats_urls())
            .env("PODPERF_REDIS_URL", self.redis.url())
            .env("PODPERF_WORKER_TTL_S", TTL_S.to_string())
            .env("PODPERF_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("PODPERF_REPLICAS", self.opts.replicas.to_string())
            .env("RUST_LOG", "info,async_nats=warn");
        if let Some(q) = self.opts.max_queued {
            cmd.env("PODPERF_MAX_QUEUED", q.to_string());
        }
        self.dispatcher = Some(ChildGuard::spawn(cmd, "dispatcher"));
        eventually(
            Duration::from_secs(30),
            "the dispatcher answers",
            || async { self.try_api("workers.list", json!({})).await.ok() },
        )
        .await;
        t0.elapsed()
    }

    pub fn add_worker(&mut self, pod: &str, node: &str, ip: &str, max_jobs: u32) -> usize {
        self.workers.push(Worker {
            pod: pod.into(),
            node: node.into(),
            id: format!("uid-{pod}-{}", free_port()),
            ip: ip.into(),
            max_jobs,
            iperf3_port: free_port(),
            proc: None,
        });
        let i = self.workers.len() - 1;
        self.start_worker(i);
        i
    }

    /// (Re)starts worker `i` with its identity (a restarted container keeps its pod UID).
    pub fn start_worker(&mut self, i: usize) {
        let urls = self.nats_urls();
        let w = &mut self.workers[i];
        let mut cmd = Command::new(workspace_bin("podperf-worker"));
        cmd.env("PODPERF_NATS_URL", urls)
            .env("POD_UID", &w.id)
            .env("POD_NAME", &w.pod)
            .env("POD_NAMESPACE", "podperf")
            .env("POD_IP", &w.ip)
            .env("NODE_NAME", &w.node)
            .env("NODE_IP", &w.ip)
            .env("PODPERF_IPERF3_PORT", w.iperf3_port.to_string())
            .env("PODPERF_MAX_JOBS", w.max_jobs.to_string())
            .env("PODPERF_SHUTDOWN_GRACE_S", "2")
            .env("RUST_LOG", "info,async_nats=warn");
        w.proc = Some(ChildGuard::spawn(cmd, &w.pod));
    }

    pub fn worker_id(&self, pod: &str) -> String {
        self.workers
            .iter()
            .find(|w| w.pod == pod)
            .map(|w| w.id.clone())
            .unwrap_or_else(|| panic!("no worker {pod}"))
    }

    /// One API request; `Err` for transport failures (no responders, timeout).
    pub async fn try_api(&self, endpoint: &str, body: Value) -> Result<Value, String> {
        let subject = format!("podperf.api.{endpoint}");
        let payload = serde_json::to_vec(&body).unwrap();
        self.try_api_raw(&subject, payload).await
    }

    pub async fn try_api_raw(&self, subject: &str, payload: Vec<u8>) -> Result<Value, String> {
        let req = self.client.request(subject.to_string(), payload.into());
        match tokio::time::timeout(Duration::from_secs(10), req).await {
            Ok(Ok(msg)) => serde_json::from_slice(&msg.payload).map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no reply within 10 s".into()),
        }
    }

    /// An API request that must get a reply (retried while the dispatcher is unreachable).
    pub async fn api(&self, endpoint: &str, body: Value) -> Value {
        let what = format!("podperf.api.{endpoint} answers");
        eventually(Duration::from_secs(30), &what, || {
            let body = body.clone();
            async move { self.try_api(endpoint, body).await.ok() }
        })
        .await
    }

    /// Submits a batch; `Ok(ids)` or `Err(the error object)`.
    pub async fn submit(&self, jobs: Vec<Value>) -> Result<Vec<Uuid>, Value> {
        let reply = self.api("jobs.submit", json!({ "jobs": jobs })).await;
        match reply.get("ok") {
            Some(ok) => Ok(serde_json::from_value(ok["job_ids"].clone()).unwrap()),
            None => Err(reply["error"].clone()),
        }
    }

    pub async fn submit_ok(&self, jobs: Vec<Value>) -> Vec<Uuid> {
        let n = jobs.len();
        let ids = self
            .submit(jobs)
            .await
            .unwrap_or_else(|e| panic!("submit refused: {e}\n{}", self.logs()));
        assert_eq!(ids.len(), n);
        ids
    }

    pub async fn wait_workers(&self, pods: &[&str], timeout: Duration) -> Duration {
        let t0 = Instant::now();
        let mut want: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
        want.sort();
        let what = format!("workers {pods:?} are listed");
        eventually(timeout, &what, || async {
            let v = self.try_api("workers.list", json!({})).await.ok()?;
            let mut listed: Vec<String> = v["ok"]["workers"]
                .as_array()?
                .iter()
                .filter_map(|w| w["pod_name"].as_str().map(String::from))
                .collect();
            listed.sort();
            (listed == want).then_some(())
        })
        .await;
        t0.elapsed()
    }

    /// The job's record, or `None` when the API answered `not_found` or is unreachable.
    pub async fn get(&self, id: Uuid) -> Option<Value> {
        let v = self
            .try_api("jobs.get", json!({ "job_id": id }))
            .await
            .ok()?;
        v.get("ok").cloned()
    }

    /// The state of every job (`"?"` when it cannot be read now).
    pub async fn states(&self, ids: &[Uuid]) -> HashMap<Uuid, String> {
        futures::stream::iter(ids.iter().copied())
            .map(|id| async move {
                let state = self
                    .get(id)
                    .await
                    .and_then(|r| r["state"].as_str().map(String::from))
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
        let js = async_nats::jetstream::new(self.client.clone());
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
        let records: HashMap<Uuid, Option<Value>> = futures::stream::iter(ids.iter().copied())
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
            let state = rec["state"].as_str().unwrap_or("?").to_string();
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
            let state = records[id].as_ref().and_then(|r| r["state"].as_str());
            if state != Some("succeeded") {
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

    /// Processes the workers started besides their own `iperf3 -s` servers: the tools of the
    /// jobs they are running (empty when nothing runs).
    pub fn worker_tools_running(&self) -> Vec<podperf_testkit::Proc> {
        self.workers
            .iter()
            .filter_map(|w| w.proc.as_ref())
            .flat_map(|p| podperf_testkit::descendants(p.pid()))
            .filter(|p| !p.cmdline.starts_with("iperf3 -s "))
            .collect()
    }

    /// Every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.dispatcher {
            s += &format!("--- dispatcher ---\n{}\n", tail(&d.log(), 60));
        }
        for w in &self.workers {
            if let Some(p) = &w.proc {
                s += &format!("--- {} ---\n{}\n", w.pod, tail(&p.log(), 30));
            }
        }
        s
    }
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

pub fn noop(source: &str, sleep_ms: u32) -> Value {
    json!({"source": source, "params": {"kind": "noop", "sleep_ms": sleep_ms}})
}

pub fn noops(source: &str, n: usize, sleep_ms: u32) -> Vec<Value> {
    (0..n).map(|_| noop(source, sleep_ms)).collect()
}

pub fn ping(source: &str, target: &str, count: u32) -> Value {
    json!({"source": source, "target": {"worker": target},
           "params": {"kind": "ping", "count": count, "interval_ms": 200}})
}

pub use podperf_testkit::process_running;
