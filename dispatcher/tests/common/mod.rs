//! Shared harness for the dispatcher's integration tests: real `nats-server` and `redis-server`
//! processes (testkit), the real dispatcher running in-process, fake-but-real workers (a key in
//! the real liveness bucket, kept alive by a heartbeat task, and a real subscription on the job
//! subject that answers the way a worker does), and API helpers.
//!
//! Every wait is a bounded poll with a generous limit, never a timed assertion.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use async_nats::Client;
use futures::StreamExt;
pub use podperf_client::{Client as ApiClient, ErrorKind};
use podperf_dispatcher::{DispatcherConfig, Store};
use podperf_protocol::api::JobRecord;
use podperf_protocol::command::{RefusalReason, WorkerCommand, WorkerReply};
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};
use podperf_protocol::names::{
    job_subject, result_subject, RESULTS_CONSUMER, RESULTS_STREAM, WORKERS_BUCKET,
};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{JobOutcome, JobState, OutcomeStatus};
use podperf_protocol::result::{NoopResult, ProbeResult};
use podperf_protocol::worker::{Tool, ToolInfo, WorkerInfo};
pub use podperf_testkit::{call_raw_reply, eventually};
use podperf_testkit::{NatsServer, RedisServer};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Upper bound for anything that should happen "soon" (generous for a busy 2-core machine).
pub const SOON: Duration = Duration::from_secs(10);
/// How long "nothing happens" is watched for.
pub const QUIET: Duration = Duration::from_secs(1);
/// How often polls look again.
const POLL: Duration = Duration::from_millis(50);
/// Heartbeat period of the fake workers.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// The configuration the API tests run with: short TTL, delivery timeout and grace.
pub fn test_config() -> DispatcherConfig {
    DispatcherConfig {
        worker_ttl: Duration::from_secs(2),
        lost_grace: Duration::from_secs(2),
        retention: Duration::from_secs(3600),
        allowed_cidrs: vec!["10.99.0.0/16".parse().unwrap()],
        delivery_timeout: Duration::from_secs(1),
        deadline_grace: Duration::from_secs(1),
        ..DispatcherConfig::default()
    }
}

/// A running in-process dispatcher.
struct Dispatcher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<podperf_dispatcher::Result<()>>,
}

/// Servers, a test client and (usually) a running dispatcher.
pub struct Env {
    pub nats: NatsServer,
    pub redis: RedisServer,
    /// The test's own connection (the dispatcher has its own).
    pub client: Client,
    /// The API client over [`client`](Self::client).
    pub api: ApiClient,
    pub js: jetstream::Context,
    pub cfg: DispatcherConfig,
    dispatcher: Option<Dispatcher>,
}

impl Env {
    /// Starts both servers and a dispatcher with [`test_config`].
    pub async fn start() -> Env {
        Env::start_with(test_config()).await
    }

    pub async fn start_with(cfg: DispatcherConfig) -> Env {
        Env::launch(cfg, RedisServer::start()).await
    }

    /// Like [`start`](Self::start), with a nats-server started with this config text (see
    /// [`NatsServer::start_with_config`]).
    pub async fn start_with_nats_config(conf_text: &str) -> Env {
        let nats = NatsServer::start_with_config(conf_text);
        Env::launch_on(nats, test_config(), RedisServer::start()).await
    }

    /// Like [`start`](Self::start), with a Redis whose data survives a stop + restart.
    pub async fn start_persistent() -> Env {
        Env::launch(test_config(), RedisServer::start_persistent()).await
    }

    async fn launch(cfg: DispatcherConfig, redis: RedisServer) -> Env {
        Env::launch_on(NatsServer::start(), cfg, redis).await
    }

    async fn launch_on(nats: NatsServer, cfg: DispatcherConfig, redis: RedisServer) -> Env {
        let client = async_nats::connect(nats.url()).await.expect("test client");
        let js = jetstream::new(client.clone());
        let api = ApiClient::new(client.clone(), SOON);
        let mut env = Env {
            nats,
            redis,
            client,
            api,
            js,
            cfg,
            dispatcher: None,
        };
        env.start_dispatcher().await;
        env
    }

    /// Starts a dispatcher (own NATS connection, own store) and waits until its API answers.
    pub async fn start_dispatcher(&mut self) {
        assert!(self.dispatcher.is_none(), "a dispatcher is already running");
        let client = async_nats::connect(self.nats.url())
            .await
            .expect("dispatcher client");
        let store = Store::connect(&self.redis.url(), self.cfg.retention)
            .await
            .expect("store");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(podperf_dispatcher::run(
            client,
            store,
            self.cfg.clone(),
            shutdown,
        ));
        self.dispatcher = Some(Dispatcher { stop, task });
        eventually(SOON, "the dispatcher's API answers", || async {
            self.api.workers().await.ok()
        })
        .await;
    }

    /// Resolves the dispatcher's shutdown future and waits for `run` to return `Ok`.
    pub async fn stop_dispatcher(&mut self) {
        let d = self.dispatcher.take().expect("a dispatcher is running");
        let _ = d.stop.send(());
        let res = tokio::time::timeout(Duration::from_secs(20), d.task)
            .await
            .expect("the dispatcher stops within 20 s")
            .expect("the dispatcher task did not panic");
        res.expect("the dispatcher returns Ok after shutdown");
    }

    /// The liveness bucket (created by the dispatcher).
    pub async fn bucket(&self) -> kv::Store {
        let js = self.js.clone();
        eventually(SOON, "the liveness bucket exists", || {
            let js = js.clone();
            async move { js.get_key_value(WORKERS_BUCKET).await.ok() }
        })
        .await
    }

    /// Registers a fake worker (its key in the real bucket, refreshed every 500 ms) and waits
    /// until the dispatcher lists it. It does not take jobs until [`FakeWorker::listen`].
    pub async fn register(&self, info: WorkerInfo) -> FakeWorker {
        let kv = self.bucket().await;
        let value: bytes::Bytes = serde_json::to_vec(&info).unwrap().into();
        let key = info.worker_id.clone();
        kv.put(&key, value.clone()).await.expect("first heartbeat");
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let _ = kv.put(&key, value.clone()).await;
            }
        });
        let id = &info.worker_id;
        eventually(SOON, "workers.list shows the new worker", || async {
            let ws = self.api.workers().await.ok()?;
            ws.iter().any(|w| &w.info.worker_id == id).then_some(())
        })
        .await;
        let (tx, commands) = mpsc::unbounded_channel();
        FakeWorker {
            info,
            client: self.client.clone(),
            heartbeat: Some(heartbeat),
            responder: None,
            tx,
            commands,
        }
    }

    /// Waits until `job_id` is in `state` (per `jobs.get`) and returns the record.
    pub async fn wait_state(&self, job_id: Uuid, state: JobState, within: Duration) -> JobRecord {
        let deadline = Instant::now() + within;
        loop {
            let rec = self
                .api
                .get(job_id)
                .await
                .unwrap_or_else(|e| panic!("jobs.get {job_id}: {e}"));
            if rec.state == state {
                return rec;
            }
            if Instant::now() >= deadline {
                panic!("job {job_id} did not reach {state} within {within:?}; last: {rec:#?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Publishes a terminal result to JetStream as a worker does (with an ack); returns the
    /// stream sequence.
    pub async fn publish_result(&self, outcome: &JobOutcome) -> u64 {
        let payload: bytes::Bytes = serde_json::to_vec(outcome).unwrap().into();
        let ack = self
            .js
            .publish(result_subject(outcome.job_id), payload)
            .await
            .expect("publish")
            .await
            .expect("JetStream ack");
        ack.sequence
    }

    /// Waits until no pull request is waiting on the results consumer (a stopped dispatcher's
    /// connection is really gone).
    pub async fn wait_no_pull_requests(&self) {
        let js = self.js.clone();
        eventually(
            SOON,
            "no pull request waits on the results consumer",
            || {
                let js = js.clone();
                async move {
                    let stream = js.get_stream(RESULTS_STREAM).await.ok()?;
                    let info = stream.consumer_info(RESULTS_CONSUMER).await.ok()?;
                    (info.num_waiting == 0).then_some(())
                }
            },
        )
        .await;
    }

    /// Waits until the dispatcher's durable consumer has acknowledged stream sequence `seq`
    /// (i.e. ingest has processed it).
    pub async fn wait_ingested(&self, seq: u64) {
        let js = self.js.clone();
        eventually(SOON, "ingest acknowledged the result", || {
            let js = js.clone();
            async move {
                let stream = js.get_stream(RESULTS_STREAM).await.ok()?;
                let info = stream.consumer_info(RESULTS_CONSUMER).await.ok()?;
                (info.ack_floor.stream_sequence >= seq).then_some(())
            }
        })
        .await;
    }
}

/// A worker as far as the dispatcher can tell: a live key and a job subscription.
pub struct FakeWorker {
    pub info: WorkerInfo,
    client: Client,
    heartbeat: Option<JoinHandle<()>>,
    responder: Option<JoinHandle<()>>,
    tx: mpsc::UnboundedSender<WorkerCommand>,
    /// Every command received, in order.
    pub commands: mpsc::UnboundedReceiver<WorkerCommand>,
}

impl FakeWorker {
    pub fn id(&self) -> &str {
        &self.info.worker_id
    }

    /// Subscribes to the worker's job subject and answers like a worker: `accepted` for a run
    /// (`duplicate` for an id seen before), `cancel_ack` for a cancel. Returns once the server
    /// has the subscription.
    pub async fn listen(&mut self) {
        self.listen_with(|_| None).await
    }

    /// Like [`listen`](Self::listen), but `refuse(n)` may refuse the `n`-th (0-based) run
    /// command for a job id instead of accepting it.
    pub async fn listen_with(
        &mut self,
        refuse: impl Fn(usize) -> Option<RefusalReason> + Send + 'static,
    ) {
        let mut sub = self
            .client
            .subscribe(job_subject(&self.info.worker_id))
            .await
            .expect("subscribe");
        self.client.flush().await.expect("flush");
        let (client, tx) = (self.client.clone(), self.tx.clone());
        self.responder = Some(tokio::spawn(async move {
            let mut runs: HashMap<Uuid, usize> = HashMap::new();
            let mut accepted = HashSet::new();
            while let Some(msg) = sub.next().await {
                let cmd: WorkerCommand = match serde_json::from_slice(&msg.payload) {
                    Ok(c) => c,
                    Err(err) => panic!("the dispatcher sent a malformed command: {err}"),
                };
                let reply = match &cmd {
                    WorkerCommand::Run(a) => {
                        let n = runs.entry(a.job_id).or_default();
                        *n += 1;
                        match refuse(*n - 1) {
                            Some(reason) => WorkerReply::Refused {
                                job_id: a.job_id,
                                reason,
                                message: format!("refused by the test ({reason:?})"),
                            },
                            None => WorkerReply::Accepted {
                                job_id: a.job_id,
                                duplicate: !accepted.insert(a.job_id),
                            },
                        }
                    }
                    WorkerCommand::Cancel(c) => WorkerReply::CancelAck {
                        job_id: c.job_id,
                        found: accepted.contains(&c.job_id),
                    },
                };
                let _ = tx.send(cmd);
                if let Some(reply_to) = msg.reply {
                    let body: bytes::Bytes = serde_json::to_vec(&reply).unwrap().into();
                    let _ = client.publish(reply_to, body).await;
                }
            }
        }));
    }

    /// Stops refreshing the liveness key (it expires after the bucket's TTL).
    pub fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// The next command, or a panic after `within`.
    pub async fn next_command(&mut self, within: Duration) -> WorkerCommand {
        tokio::time::timeout(within, self.commands.recv())
            .await
            .unwrap_or_else(|_| panic!("worker {} got no command within {within:?}", self.id()))
            .expect("responder alive")
    }

    /// The next `run` command's job id.
    pub async fn next_run(&mut self, within: Duration) -> Uuid {
        match self.next_command(within).await {
            WorkerCommand::Run(a) => a.job_id,
            other => panic!("expected a run command, got {other:?}"),
        }
    }

    /// Asserts that no command arrives within `within`.
    pub async fn no_command(&mut self, within: Duration) {
        if let Ok(Some(cmd)) = tokio::time::timeout(within, self.commands.recv()).await {
            panic!("worker {} unexpectedly got {cmd:?}", self.id());
        }
    }

    /// Commands received so far, without waiting.
    pub fn drain(&mut self) -> Vec<WorkerCommand> {
        let mut v = Vec::new();
        while let Ok(c) = self.commands.try_recv() {
            v.push(c);
        }
        v
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.stop_heartbeat();
        if let Some(r) = self.responder.take() {
            r.abort();
        }
    }
}

/// Worker info with every tool available.
pub fn worker(id: &str, pod: &str, node: &str, ip: &str) -> WorkerInfo {
    WorkerInfo {
        worker_id: id.into(),
        pod_name: pod.into(),
        pod_namespace: Some("podperf".into()),
        pod_ip: ip.parse().unwrap(),
        node_name: node.into(),
        node_ip: Some("192.168.0.1".parse().unwrap()),
        pod_ips: vec![],
        node_ips: vec![],
        host_network: false,
        tools: Tool::ALL
            .iter()
            .map(|&tool| ToolInfo {
                tool,
                available: true,
                path: Some(format!("/usr/bin/{}", tool.program())),
                version: Some("1.0".into()),
            })
            .collect(),
        iperf3_port: 5201,
        sockperf_port: 11111,
        max_concurrent_jobs: 4,
        started_at_ms: now_ms(),
        version: "test".into(),
    }
}

/// A terminal result as `worker_id` would publish it (a noop result when it succeeded).
pub fn outcome(job_id: Uuid, worker_id: &str, status: OutcomeStatus) -> JobOutcome {
    let now = now_ms();
    JobOutcome {
        job_id,
        worker_id: worker_id.into(),
        status,
        reason: None,
        message: (status != OutcomeStatus::Succeeded).then(|| "from the test".into()),
        result: (status == OutcomeStatus::Succeeded)
            .then_some(ProbeResult::Noop(NoopResult { slept_ms: 7 })),
        raw_output: Some("raw".into()),
        started_at_ms: now - 5,
        finished_at_ms: now,
    }
}

/// A noop job spec for `source`.
pub fn noop(source: &str) -> JobSpec {
    JobSpec {
        family: None,
        source: source.into(),
        target: None,
        params: JobParams::Noop(NoopParams::default()),
        timeout_s: None,
    }
}

/// A job spec written as JSON (the way a user writes it), typed.
pub fn spec(json: Value) -> JobSpec {
    serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("not a job spec ({e}): {json}"))
}
