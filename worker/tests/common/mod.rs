//! Harness for the worker's integration tests: a real `nats-server` with JetStream (from
//! `podperf-testkit`), the infrastructure the dispatcher would create (liveness bucket, results
//! stream), in-process workers driven through `podperf_worker::run`, a stand-in dispatcher that
//! sends `WorkerCommand`s and reads results back from the stream, and `/proc` helpers to find the
//! tools' processes.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::Client;
use podperf_protocol::command::{JobAssignment, ResolvedTarget, WorkerCommand, WorkerReply};
use podperf_protocol::job::{Iperf3Params, JobParams, NoopParams, PingParams};
use podperf_protocol::names::{
    event_subject, job_subject, result_subject, RESULTS_STREAM, RESULTS_STREAM_SUBJECTS,
    WORKERS_BUCKET,
};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{JobEvent, JobOutcome};
use podperf_protocol::worker::WorkerInfo;
use podperf_testkit::{NatsServer, Proc};
use podperf_worker::{Identity, WorkerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a request to a worker may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A real nats-server plus the dispatcher's side of the contract.
pub struct Harness {
    /// Kept for its `Drop` (kills the server) and its log.
    pub nats: NatsServer,
    /// The stand-in dispatcher's connection.
    pub client: Client,
    pub js: jetstream::Context,
}

impl Harness {
    /// Starts nats-server and creates the bucket (TTL 2 s) and the results stream.
    pub async fn start() -> Self {
        let h = Self::start_bare().await;
        h.create_bucket(Duration::from_secs(2)).await;
        h.create_stream().await;
        h
    }

    /// Starts nats-server with neither bucket nor stream.
    pub async fn start_bare() -> Self {
        let nats = NatsServer::start();
        let client = async_nats::connect(nats.url())
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", nats.url()));
        let js = jetstream::new(client.clone());
        Harness { nats, client, js }
    }

    /// The liveness bucket as DESIGN.md describes it: history 1, `max_age` = TTL, memory
    /// storage, expiry markers kept 1 s.
    pub async fn create_bucket(&self, ttl: Duration) -> kv::Store {
        self.js
            .create_key_value(kv::Config {
                bucket: WORKERS_BUCKET.to_string(),
                history: 1,
                max_age: ttl,
                storage: stream::StorageType::Memory,
                limit_markers: Some(Duration::from_secs(1)),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating the {WORKERS_BUCKET} bucket: {e}"))
    }

    /// The results stream (events and terminal results), with direct get enabled.
    pub async fn create_stream(&self) -> stream::Stream {
        self.js
            .create_stream(stream::Config {
                name: RESULTS_STREAM.to_string(),
                subjects: RESULTS_STREAM_SUBJECTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                storage: stream::StorageType::Memory,
                duplicate_window: Duration::from_secs(120),
                allow_direct: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating the {RESULTS_STREAM} stream: {e}"))
    }

    pub async fn bucket(&self) -> kv::Store {
        self.js
            .get_key_value(WORKERS_BUCKET)
            .await
            .expect("the liveness bucket exists")
    }

    pub async fn stream(&self) -> stream::Stream {
        self.js
            .get_stream(RESULTS_STREAM)
            .await
            .expect("the results stream exists")
    }

    /// Starts an in-process worker on `pod_ip` with the test defaults ([`test_config`]).
    pub async fn worker(&self, pod_ip: &str) -> TestWorker {
        self.worker_with(test_config(pod_ip)).await
    }

    /// Starts an in-process worker with its own NATS connection (`run` drains it at the end).
    pub async fn worker_with(&self, config: WorkerConfig) -> TestWorker {
        let client = async_nats::connect(self.nats.url())
            .await
            .expect("worker connects");
        let (tx, rx) = oneshot::channel::<()>();
        let id = config.identity.worker_id.clone();
        let cfg = config.clone();
        let task = tokio::spawn(async move {
            // A dropped sender (the test panicked) also shuts the worker down.
            podperf_worker::run(client, cfg, async move {
                let _ = rx.await;
            })
            .await
        });
        let worker = TestWorker {
            id,
            config,
            shutdown: Some(tx),
            task: Some(task),
        };
        // Requests sent before the subscription exists would get "no responders".
        self.wait_serving(&worker.id).await;
        worker
    }

    /// Waits until the worker answers on its job subject (a cancel for an unknown id is harmless).
    pub async fn wait_serving(&self, worker_id: &str) {
        let subject = job_subject(worker_id);
        let probe = serde_json::to_vec(&cancel(Uuid::now_v7())).unwrap();
        eventually(
            Duration::from_secs(10),
            "the worker answers requests",
            || {
                let (client, subject, probe) =
                    (self.client.clone(), subject.clone(), probe.clone());
                async move {
                    let req = client.request(subject, probe.into());
                    matches!(
                        tokio::time::timeout(Duration::from_secs(1), req).await,
                        Ok(Ok(_))
                    )
                }
            },
        )
        .await;
    }

    /// Sends a command the way the dispatcher does and decodes the immediate reply.
    pub async fn send(&self, worker_id: &str, cmd: &WorkerCommand) -> WorkerReply {
        let body = serde_json::to_vec(cmd).expect("command serialises");
        self.send_raw(worker_id, body).await
    }

    /// Sends arbitrary bytes to the worker's job subject and decodes the reply.
    pub async fn send_raw(&self, worker_id: &str, body: Vec<u8>) -> WorkerReply {
        let req = self.client.request(job_subject(worker_id), body.into());
        let msg = tokio::time::timeout(REQUEST_TIMEOUT, req)
            .await
            .expect("the worker answers within 5 s")
            .expect("the request succeeds");
        serde_json::from_slice(&msg.payload).unwrap_or_else(|e| {
            panic!(
                "reply is not a WorkerReply ({e}): {}",
                String::from_utf8_lossy(&msg.payload)
            )
        })
    }

    /// Sends `Run(job)` and asserts it was accepted as a new job.
    pub async fn run_job(&self, worker_id: &str, job: &JobAssignment) {
        let reply = self.send(worker_id, &WorkerCommand::Run(job.clone())).await;
        assert_eq!(
            reply,
            WorkerReply::Accepted {
                job_id: job.job_id,
                duplicate: false
            }
        );
    }

    /// The last message on `subject` in the results stream, once there is one.
    pub async fn wait_last(&self, subject: String, timeout: Duration) -> Vec<u8> {
        let stream = &self.stream().await;
        let what = format!("a message on {subject}");
        wait_for(timeout, &what, || {
            let subject = subject.clone();
            async move {
                let msg = stream.direct_get_last_for_subject(subject).await.ok()?;
                Some(msg.payload.to_vec())
            }
        })
        .await
    }

    /// The job's terminal result, read back from the stream.
    pub async fn wait_outcome(&self, job_id: Uuid, timeout: Duration) -> JobOutcome {
        let payload = self.wait_last(result_subject(job_id), timeout).await;
        serde_json::from_slice(&payload).expect("a JobOutcome")
    }

    /// The job's `started` event, read back from the stream.
    pub async fn wait_started(&self, job_id: Uuid, timeout: Duration) -> JobEvent {
        let payload = self.wait_last(event_subject(job_id), timeout).await;
        serde_json::from_slice(&payload).expect("a JobEvent")
    }

    /// How many messages the results stream holds on exactly `subject`.
    pub async fn stored_count(&self, subject: &str) -> u64 {
        use futures::TryStreamExt;
        let stream = self.stream().await;
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(subject)
            .await
            .expect("stream info")
            .try_collect()
            .await
            .expect("subject counts");
        subjects
            .into_iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, n)| n as u64)
            .sum()
    }

    /// The worker's current liveness value, if its key exists.
    pub async fn worker_entry(&self, worker_id: &str) -> Option<kv::Entry> {
        self.bucket()
            .await
            .entry(worker_id)
            .await
            .expect("kv entry")
            .filter(|e| e.operation == kv::Operation::Put)
    }

    /// Waits for the worker's key to appear and returns it with its decoded value.
    pub async fn wait_registered(
        &self,
        worker_id: &str,
        timeout: Duration,
    ) -> (kv::Entry, WorkerInfo) {
        let what = format!("worker {worker_id} registers");
        let entry = wait_for(timeout, &what, || self.worker_entry(worker_id)).await;
        let info = serde_json::from_slice(&entry.value).expect("the value is a WorkerInfo");
        (entry, info)
    }
}

/// A worker running `podperf_worker::run` in a tokio task.
pub struct TestWorker {
    pub id: String,
    pub config: WorkerConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<podperf_worker::Result<()>>>,
}

impl TestWorker {
    /// Fires the shutdown future; returns at once.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits up to `timeout` for `run` to return, asserting it returned `Ok`.
    pub async fn join(&mut self, timeout: Duration) {
        let task = self.task.take().expect("join once");
        let res = tokio::time::timeout(timeout, task)
            .await
            .unwrap_or_else(|_| panic!("run() did not return within {timeout:?} of shutdown"));
        res.expect("the worker task did not panic")
            .expect("run() returned Ok");
    }

    pub fn pod_ip(&self) -> IpAddr {
        self.config.identity.pod_ip
    }

    pub fn iperf3_port(&self) -> u16 {
        self.config.iperf3_port
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.trigger_shutdown();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A worker configuration for tests: a fresh id, the given loopback address, a free iperf3 port,
/// a 250 ms heartbeat and a 1 s grace.
pub fn test_config(pod_ip: &str) -> WorkerConfig {
    let worker_id = Uuid::new_v4().to_string();
    let identity = Identity {
        pod_name: format!("test-{}", &worker_id[..8]),
        worker_id,
        pod_namespace: Some("podperf-test".into()),
        pod_ip: pod_ip.parse().expect("a valid IP"),
        node_name: "test-node".into(),
        node_ip: None,
        pod_ips: vec![],
        node_ips: vec![],
        host_network: false,
    };
    let mut config = WorkerConfig::new(identity);
    config.iperf3_port = podperf_testkit::free_port();
    config.sockperf_port = podperf_testkit::free_port();
    config.heartbeat = Duration::from_millis(250);
    config.shutdown_grace = Duration::from_secs(1);
    config
}

/// A deadline `secs` seconds from now.
pub fn in_secs(secs: u64) -> u64 {
    now_ms() + secs * 1000
}

/// A `noop` job sleeping `sleep_ms`, with a 60 s deadline.
pub fn noop(sleep_ms: u32) -> JobAssignment {
    JobAssignment {
        job_id: Uuid::now_v7(),
        params: JobParams::Noop(NoopParams { sleep_ms }),
        target: None,
        deadline_at_ms: in_secs(60),
    }
}

/// A `ping` job to `ip`, with a 60 s deadline.
pub fn ping(ip: &str, count: u32, interval_ms: u32) -> JobAssignment {
    JobAssignment {
        job_id: Uuid::now_v7(),
        params: JobParams::Ping(PingParams {
            count,
            interval_ms,
            ..Default::default()
        }),
        target: Some(ResolvedTarget {
            ip: ip.parse().expect("a valid IP"),
            port: 0,
            worker_id: None,
        }),
        deadline_at_ms: in_secs(60),
    }
}

/// A 1 s `iperf3` TCP job toward `server`'s own iperf3 server, with a 60 s deadline.
pub fn iperf3_to(server: &TestWorker) -> JobAssignment {
    JobAssignment {
        job_id: Uuid::now_v7(),
        params: JobParams::Iperf3(Iperf3Params {
            duration_s: 1,
            ..Default::default()
        }),
        target: Some(ResolvedTarget {
            ip: server.pod_ip(),
            port: server.iperf3_port(),
            worker_id: Some(server.id.clone()),
        }),
        deadline_at_ms: in_secs(60),
    }
}

pub fn cancel(job_id: Uuid) -> WorkerCommand {
    WorkerCommand::Cancel(podperf_protocol::command::CancelJob { job_id })
}

/// Polls `check` every 50 ms until it returns true; panics naming `what` after `timeout`.
/// The check runs at least once, and once more at the deadline.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `probe` until it yields `Some`, and returns that: testkit's [`podperf_testkit::eventually`].
pub use podperf_testkit::eventually as wait_for;

pub use podperf_testkit::is_alive;

/// Live processes whose argv[0] ends with `program` and whose command line contains every one of
/// `needles` as whole words (`"-I 127.0.0.3"` does not match `-I 127.0.0.30`). Zombies (dead,
/// not yet reaped) do not count.
pub fn find_procs(program: &str, needles: &[&str]) -> Vec<Proc> {
    podperf_testkit::processes()
        .into_iter()
        .filter(|p| {
            let argv0 = p.cmdline.split(' ').next().unwrap_or("");
            argv0.rsplit('/').next() == Some(program)
                && needles
                    .iter()
                    .all(|n| format!(" {} ", p.cmdline).contains(&format!(" {n} ")))
        })
        .collect()
}

/// The one live child of `parent` that [`find_procs`] matches, if exactly one does.
pub fn child_of(parent: u32, program: &str, needles: &[&str]) -> Option<u32> {
    let children: Vec<Proc> = find_procs(program, needles)
        .into_iter()
        .filter(|p| p.ppid == parent)
        .collect();
    match children.as_slice() {
        [p] => Some(p.pid),
        _ => None,
    }
}

/// Whether a TCP socket listens on exactly `ip:port` (IPv4), read from `/proc/net/tcp` so that
/// checking does not disturb the listener (a bare connect counts as a failed test for iperf3).
pub fn is_listening(ip: IpAddr, port: u16) -> bool {
    // /proc/net/tcp{,6} print an address as 32-bit words, each in host (little-endian) order.
    let (words, table): (Vec<[u8; 4]>, _) = match ip {
        IpAddr::V4(v4) => (vec![v4.octets()], "/proc/net/tcp"),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let words = o.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
            (words, "/proc/net/tcp6")
        }
    };
    let hex: String = words
        .iter()
        .map(|w| format!("{:08X}", u32::from_le_bytes(*w)))
        .collect();
    let want = format!("{hex}:{port:04X}");
    let Ok(table) = std::fs::read_to_string(table) else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1);
        let state = cols.nth(1);
        local == Some(want.as_str()) && state == Some("0A")
    })
}
