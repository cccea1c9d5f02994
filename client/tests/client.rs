//! The client against real parts: a real nats-server and redis-server (testkit), the real
//! dispatcher (`podperf_dispatcher::run`) and a real worker (`podperf_worker::run`) in-process.

use std::time::Duration;

use futures::StreamExt;
use podperf_client::{Client, ErrorKind, Live, LiveFilter};
use podperf_dispatcher::{DispatcherConfig, Store};
use podperf_protocol::api::{ErrorCode, WORKERS_PAGE_MAX};
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};
use podperf_protocol::names::WORKERS_BUCKET;
use podperf_protocol::outcome::{EventKind, JobState, OutcomeStatus};
use podperf_protocol::result::ProbeResult;
use podperf_protocol::worker::WorkerInfo;
use podperf_testkit::{eventually, free_port, NatsServer, RedisServer};
use podperf_worker::{Identity, WorkerConfig};
use tokio::sync::oneshot;

const SOON: Duration = Duration::from_secs(15);

/// Servers, an in-process dispatcher and a client; everything stops on drop.
struct Env {
    nats: NatsServer,
    _redis: RedisServer,
    client: Client,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Env {
    async fn start() -> Env {
        Env::start_with_ttl(Duration::from_secs(2)).await
    }

    async fn start_with_ttl(worker_ttl: Duration) -> Env {
        let nats = NatsServer::start();
        let redis = RedisServer::start();
        let cfg = DispatcherConfig {
            worker_ttl,
            ..DispatcherConfig::default()
        };
        let store = Store::connect(&redis.url(), cfg.retention)
            .await
            .expect("the dispatcher's store");
        let conn = async_nats::connect(nats.url())
            .await
            .expect("dispatcher connects");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(podperf_dispatcher::run(conn, store, cfg, async move {
            let _ = stopped.await;
        }));
        let client = connect(&nats).await;
        eventually(SOON, "the dispatcher answers", || async {
            client.workers().await.ok()
        })
        .await;
        Env {
            nats,
            _redis: redis,
            client,
            _stop: vec![stop],
        }
    }

    /// Starts a real worker named `pod` on 127.0.0.1 and waits until the dispatcher lists it.
    async fn worker(&mut self, pod: &str) {
        let identity = Identity {
            worker_id: format!("uid-{pod}"),
            pod_name: pod.into(),
            pod_namespace: Some("podperf-test".into()),
            pod_ip: "127.0.0.1".parse().unwrap(),
            node_name: "node-1".into(),
            node_ip: None,
            pod_ips: vec![],
            node_ips: vec![],
            host_network: false,
        };
        let mut config = WorkerConfig::new(identity);
        config.iperf3_port = free_port();
        config.heartbeat = Duration::from_millis(250);
        config.iperf3_server = false;
        let conn = async_nats::connect(self.nats.url())
            .await
            .expect("worker connects");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(podperf_worker::run(conn, config, async move {
            let _ = stopped.await;
        }));
        self._stop.push(stop);
        let client = &self.client;
        eventually(SOON, "the dispatcher lists the worker", || async {
            let ws = client.workers().await.ok()?;
            ws.iter().any(|w| w.info.pod_name == pod).then_some(())
        })
        .await;
    }
}

async fn connect(nats: &NatsServer) -> Client {
    let conn = async_nats::connect(nats.url())
        .await
        .expect("client connects");
    Client::new(conn, Duration::from_secs(5))
}

fn noop(source: &str, sleep_ms: u32) -> JobSpec {
    JobSpec {
        family: None,
        source: source.into(),
        target: None,
        params: JobParams::Noop(NoopParams { sleep_ms }),
        timeout_s: Some(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dispatcher_every_call_says_no_dispatcher() {
    let nats = NatsServer::start();
    let client = connect(&nats).await;
    let err = client.workers().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDispatcher, "{err}");
    let err = client.submit_one(noop("pod-a", 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDispatcher, "{err}");
    assert_eq!(err.code(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submit_is_typed_with_its_code_and_field() {
    let mut env = Env::start().await;
    env.worker("pod-a").await;

    let err = env.client.submit_one(noop("nobody", 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::UnknownWorker), "{err}");

    // A parameter out of bounds names the field.
    let err = env
        .client
        .submit_one(noop("pod-a", 600_001))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::InvalidParam), "{err}");
    let api = err.api_error().expect("the API's error");
    assert_eq!(
        api.field.as_deref(),
        Some("jobs[0].params.sleep_ms"),
        "{api:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_the_terminal_record_of_a_job_a_real_worker_ran() {
    let mut env = Env::start().await;
    env.worker("pod-a").await;

    let id = env.client.submit_one(noop("pod-a", 50)).await.unwrap();
    let rec = env.client.wait(id, SOON).await.unwrap();
    assert_eq!(rec.job_id, id);
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    assert!(
        matches!(rec.result, Some(ProbeResult::Noop(ref r)) if r.slept_ms >= 50),
        "{rec:?}"
    );
    // Waiting on a job that has already ended answers from the store.
    let again = env.client.wait(id, Duration::from_millis(1)).await.unwrap();
    assert_eq!(again.state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_gives_up_with_timeout_on_a_job_that_cannot_end_in_time() {
    let mut env = Env::start().await;
    env.worker("pod-a").await;

    let id = env.client.submit_one(noop("pod-a", 30_000)).await.unwrap();
    let err = env
        .client
        .wait(id, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!env.client.get(id).await.unwrap().state.is_terminal());
    // And the job can still be ended.
    env.client.cancel(id).await.unwrap();
    let rec = env.client.wait(id, SOON).await.unwrap();
    assert_eq!(rec.state, JobState::Cancelled, "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_yields_the_jobs_started_event_and_its_result() {
    let mut env = Env::start().await;
    env.worker("pod-a").await;

    let mut live = env.client.live(LiveFilter::All).await.unwrap();
    let id = env.client.submit_one(noop("pod-a", 0)).await.unwrap();
    let (mut started, mut result) = (None, None);
    tokio::time::timeout(SOON, async {
        while started.is_none() || result.is_none() {
            match live.next().await.expect("the live stream stays open") {
                Live::Event(e) if e.job_id == id => started = Some(e),
                Live::Result(o) if o.job_id == id => result = Some(o),
                Live::Malformed { subject, payload } => panic!(
                    "malformed message on {subject}: {}",
                    String::from_utf8_lossy(&payload)
                ),
                _ => {}
            }
        }
    })
    .await
    .expect("the job's event and result came on the live stream");
    let started = started.unwrap();
    assert_eq!(started.event, EventKind::Started);
    assert_eq!(started.worker_id, "uid-pod-a");
    let result = result.unwrap();
    assert_eq!(result.status, OutcomeStatus::Succeeded, "{result:?}");
}

/// `done_notices()` yields each job's stored record once its terminal state is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_notices_carry_the_stored_terminal_record() {
    let mut env = Env::start().await;
    env.worker("pod-a").await;

    let mut done = env.client.done_notices().await.unwrap();
    let id = env.client.submit_one(noop("pod-a", 0)).await.unwrap();
    let rec = tokio::time::timeout(SOON, async {
        loop {
            let rec = done.next().await.expect("the notices stay open");
            if rec.job_id == id {
                return rec;
            }
        }
    })
    .await
    .expect("the job's done notice came");
    assert_eq!(rec.state, JobState::Succeeded, "{rec:?}");
    assert_eq!(
        rec,
        env.client.get(id).await.unwrap(),
        "the notice is the stored record"
    );
}

/// `workers()` reads page after page: more workers than one page holds, all listed once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reads_every_page_of_a_fleet_larger_than_one() {
    // A TTL long enough that no key expires while the fleet is written.
    let env = Env::start_with_ttl(Duration::from_secs(120)).await;
    let js = async_nats::jetstream::new(async_nats::connect(env.nats.url()).await.unwrap());
    let kv = eventually(SOON, "the liveness bucket exists", || async {
        js.get_key_value(WORKERS_BUCKET).await.ok()
    })
    .await;
    let n = WORKERS_PAGE_MAX as usize + 5;
    let template = worker_info("w-0");
    for i in 0..n {
        let mut info = template.clone();
        info.worker_id = format!("w-{i:05}");
        info.pod_name = format!("pod-{i:05}");
        kv.put(&info.worker_id, serde_json::to_vec(&info).unwrap().into())
            .await
            .expect("put");
    }
    let listed = eventually(SOON, "every worker is listed", || async {
        let ws = env.client.workers().await.ok()?;
        (ws.len() >= n).then_some(ws)
    })
    .await;
    assert_eq!(listed.len(), n, "a worker listed twice");
    let pods: Vec<String> = listed.into_iter().map(|w| w.info.pod_name).collect();
    let mut sorted = pods.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(pods, sorted, "not in pod order, or a pod listed twice");
}

fn worker_info(id: &str) -> WorkerInfo {
    WorkerInfo {
        worker_id: id.into(),
        pod_name: id.into(),
        pod_namespace: Some("podperf".into()),
        pod_ip: "10.244.0.2".parse().unwrap(),
        node_name: "node-1".into(),
        node_ip: None,
        pod_ips: vec![],
        node_ips: vec![],
        host_network: false,
        tools: Vec::new(),
        iperf3_port: 5201,
        sockperf_port: 11111,
        max_concurrent_jobs: 4,
        started_at_ms: podperf_protocol::now_ms(),
        version: "test".into(),
    }
}
