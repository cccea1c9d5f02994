//! The real dispatcher, in-process, against real `nats-server` and `redis-server` processes, driven
//! through its NATS API, with fake-but-real workers (liveness keys in the real bucket, real job
//! subscriptions, results published to the real JetStream stream).

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use podperf_dispatcher::DispatcherConfig;
use podperf_protocol::api::{ErrorCode, JobRecord, ListJobsRequest, ListWorkersRequest};
use podperf_protocol::command::{RefusalReason, WorkerCommand};
use podperf_protocol::job::{JobParams, NoopParams};
use podperf_protocol::names::{done_subject, endpoint};
use podperf_protocol::outcome::{FailureReason, JobState, OutcomeStatus};
use podperf_protocol::result::{NoopResult, ProbeResult};
use podperf_protocol::worker::{Tool, WorkerInfo};
use serde_json::{json, Value};
use uuid::Uuid;

/// A worker's key expires `worker_ttl` after its last put; the watcher sees it up to ~1 s later.
fn expiry_bound(env: &Env) -> Duration {
    env.cfg.worker_ttl + Duration::from_secs(6)
}

/// A job of a worker whose key expired ends `worker_lost` once the grace is over as well.
fn lost_bound(env: &Env) -> Duration {
    expiry_bound(env) + env.cfg.lost_grace
}

/// Subscribes to every job subject, to see whatever the dispatcher sends to any worker.
async fn observe_jobs(env: &Env) -> async_nats::Subscriber {
    let sub = env.client.subscribe("podperf.jobs.>").await.unwrap();
    env.client.flush().await.unwrap();
    sub
}

/// Asserts that nothing arrives on `sub` for [`QUIET`].
async fn assert_quiet(sub: &mut async_nats::Subscriber) {
    if let Ok(Some(msg)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!(
            "unexpected message on {}: {}",
            msg.subject,
            String::from_utf8_lossy(&msg.payload)
        );
    }
}

/// A `jobs.list` request with no filter.
fn all_jobs() -> ListJobsRequest {
    ListJobsRequest::default()
}

fn run_of(cmd: WorkerCommand) -> podperf_protocol::command::JobAssignment {
    match cmd {
        WorkerCommand::Run(a) => a,
        other => panic!("expected a run command, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_list_shows_live_workers_and_drops_expired_ones() {
    let env = Env::start().await;
    let a = env
        .register(worker("w-a", "pod-a", "n1", "10.244.1.2"))
        .await;
    let mut b = env
        .register(worker("w-b", "pod-b", "n2", "10.244.2.2"))
        .await;

    let workers = env.api.workers().await.unwrap();
    let infos: Vec<_> = workers.iter().map(|w| w.info.clone()).collect();
    assert_eq!(
        infos,
        vec![a.info.clone(), b.info.clone()],
        "ordered by node"
    );
    assert!(workers.iter().all(|w| w.last_seen_at_ms > 0));

    // Still listed after several TTLs while refreshed.
    tokio::time::sleep(env.cfg.worker_ttl * 2).await;
    assert_eq!(env.api.workers().await.unwrap().len(), 2);

    b.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w-b drops out of workers.list",
        || async {
            let ids: Vec<String> = env
                .api
                .workers()
                .await
                .ok()?
                .into_iter()
                .map(|w| w.info.worker_id)
                .collect();
            (ids == ["w-a"]).then_some(())
        },
    )
    .await;
}

/// One submit that must be refused: the raw request, the code, and the field it must name.
struct Refusal {
    name: &'static str,
    body: Vec<u8>,
    code: ErrorCode,
    field: Option<&'static str>,
}

fn refusal(name: &'static str, jobs: Value, code: ErrorCode, field: &'static str) -> Refusal {
    Refusal {
        name,
        body: serde_json::to_vec(&json!({ "jobs": jobs })).unwrap(),
        code,
        field: Some(field),
    }
}

fn bad_request(name: &'static str, body: &str) -> Refusal {
    Refusal {
        name,
        body: body.as_bytes().to_vec(),
        code: ErrorCode::BadRequest,
        field: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_list_pages_through_a_large_fleet() {
    let env = Env::start().await;
    let mut fleet = Vec::new();
    for i in 0..5 {
        let (id, pod, node) = (format!("w-{i}"), format!("pod-{i}"), format!("n{i}"));
        fleet.push(env.register(worker(&id, &pod, &node, "10.244.1.2")).await);
    }
    let mut seen = Vec::new();
    for offset in [0usize, 2, 4, 6] {
        let req = ListWorkersRequest {
            offset: Some(offset as u32),
            limit: Some(2),
        };
        let page = env.api.workers_page(&req).await.expect("workers.list");
        assert_eq!(page.total, 5);
        assert_eq!(
            page.workers.len(),
            [2, 2, 1, 0][offset / 2],
            "page at {offset}"
        );
        seen.extend(page.workers.into_iter().map(|w| w.info.worker_id));
    }
    let all: Vec<String> = fleet.iter().map(|w| w.info.worker_id.clone()).collect();
    assert_eq!(seen, all, "every worker once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_refuses_bad_batches_whole_and_stores_and_dispatches_nothing() {
    let env = Env::start().await;
    let mut a1 = env
        .register(worker("w-alpha-1", "pod-a1", "n1", "10.244.1.2"))
        .await;
    let mut a2 = env
        .register(worker("w-alpha-2", "pod-a2", "n1", "10.244.1.3"))
        .await;
    let mut no_iperf = worker("w-beta", "pod-b", "n2", "10.244.2.2");
    no_iperf.tools.retain(|t| t.tool != Tool::Iperf3);
    let mut no_iperf_listed = worker("w-gamma", "pod-c", "n3", "10.244.3.2");
    for t in &mut no_iperf_listed.tools {
        if t.tool == Tool::Iperf3 {
            t.available = false;
        }
    }
    let mut b = env.register(no_iperf).await;
    let mut c = env.register(no_iperf_listed).await;
    for w in [&mut a1, &mut a2, &mut b, &mut c] {
        w.listen().await;
    }
    let mut observed = observe_jobs(&env).await;

    let good = noop("pod-a1");
    let cases = [
        refusal(
            "unknown source",
            json!([noop("ghost")]),
            ErrorCode::UnknownWorker,
            "jobs[0].source",
        ),
        refusal(
            "unknown target worker",
            json!([{"source": "pod-a1", "target": {"worker": "ghost"}, "params": {"kind": "ping"}}]),
            ErrorCode::UnknownWorker,
            "jobs[0].target.worker",
        ),
        refusal(
            "ambiguous pod-name prefix",
            json!([noop("pod-a")]),
            ErrorCode::AmbiguousWorker,
            "jobs[0].source",
        ),
        refusal(
            "ambiguous id prefix as a target",
            json!([{"source": "pod-b", "target": {"worker": "w-alpha"}, "params": {"kind": "ping"}}]),
            ErrorCode::AmbiguousWorker,
            "jobs[0].target.worker",
        ),
        refusal(
            "ping count out of bounds",
            json!([{"source": "pod-a1", "target": {"worker": "pod-b"},
                    "params": {"kind": "ping", "count": 5000}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.count",
        ),
        refusal(
            "ping interval below the minimum",
            json!([{"source": "pod-a1", "target": {"worker": "pod-b"},
                    "params": {"kind": "ping", "interval_ms": 10}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.interval_ms",
        ),
        refusal(
            "iperf3 streams out of bounds",
            json!([{"source": "pod-a1", "target": {"worker": "pod-a2"},
                    "params": {"kind": "iperf3", "parallel": 17}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.parallel",
        ),
        refusal(
            "timeout out of bounds",
            json!([{"source": "pod-a1", "params": {"kind": "noop"}, "timeout_s": 0}]),
            ErrorCode::InvalidParam,
            "jobs[0].timeout_s",
        ),
        refusal(
            "probe without a target",
            json!([{"source": "pod-a1", "params": {"kind": "traceroute"}}]),
            ErrorCode::InvalidParam,
            "jobs[0].target",
        ),
        refusal(
            "address outside the allow-list",
            json!([{"source": "pod-a1", "target": {"address": "8.8.8.8"},
                    "params": {"kind": "ping"}}]),
            ErrorCode::AddressNotAllowed,
            "jobs[0].target.address",
        ),
        refusal(
            "iperf3 missing from the tool list",
            json!([{"source": "pod-b", "target": {"worker": "pod-a1"},
                    "params": {"kind": "iperf3"}}]),
            ErrorCode::ToolMissing,
            "jobs[0].source",
        ),
        refusal(
            "iperf3 listed as unavailable",
            json!([{"source": "w-gamma", "target": {"worker": "pod-a1"},
                    "params": {"kind": "iperf3"}}]),
            ErrorCode::ToolMissing,
            "jobs[0].source",
        ),
        refusal("empty batch", json!([]), ErrorCode::InvalidParam, "jobs"),
        refusal(
            "only the second job has a bad parameter",
            json!([good, {"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": 0}}]),
            ErrorCode::InvalidParam,
            "jobs[1].params.count",
        ),
        refusal(
            "only the second job names an unknown worker",
            json!([good, noop("ghost")]),
            ErrorCode::UnknownWorker,
            "jobs[1].source",
        ),
        refusal(
            "only the second job is refused by the allow-list",
            json!([good, {"source": "pod-a2", "target": {"address": "127.0.0.1"},
                          "params": {"kind": "ping"}}]),
            ErrorCode::AddressNotAllowed,
            "jobs[1].target.address",
        ),
        bad_request("malformed JSON", r#"{"jobs": ["#),
        bad_request("not an object", r#"[1, 2]"#),
        bad_request("empty payload", ""),
        bad_request(
            "jobs of the wrong type",
            r#"{"jobs": {"source": "pod-a1"}}"#,
        ),
        bad_request(
            "source of the wrong type",
            r#"{"jobs": [{"source": 5, "params": {"kind": "noop"}}]}"#,
        ),
        bad_request(
            "count of the wrong type",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": "5"}}]}"#,
        ),
        bad_request(
            "negative count",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": -1}}]}"#,
        ),
        bad_request(
            "unknown kind",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "shell"}}]}"#,
        ),
        bad_request(
            "missing kind",
            r#"{"jobs": [{"source": "pod-a1", "params": {"count": 3}}]}"#,
        ),
        bad_request(
            "free-form tool flags",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "flags": "-f"}}]}"#,
        ),
        bad_request(
            "unknown spec field",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}, "argv": ["sh"]}]}"#,
        ),
        bad_request(
            "unknown request field",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}}], "priority": 1}"#,
        ),
        bad_request(
            "unparsable address",
            r#"{"jobs": [{"source": "pod-a1", "target": {"address": "10.99.0.300"},
                          "params": {"kind": "ping"}}]}"#,
        ),
        bad_request(
            "only the second job is malformed",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}},
                         {"source": "pod-a1", "params": {"kind": "noop", "sleep_ms": "x"}}]}"#,
        ),
    ];
    for case in &cases {
        let err = match call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, case.body.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{}: accepted: {v}", case.name),
        };
        assert_eq!(err.kind(), ErrorKind::Refused, "{}: {err}", case.name);
        assert_eq!(err.code(), Some(case.code), "{}: {err}", case.name);
        let api = err.api_error().unwrap();
        assert_eq!(api.field.as_deref(), case.field, "{}: {api:?}", case.name);
        assert!(!api.message.is_empty(), "{}", case.name);
    }
    // The error for free-form flags says which field is unknown (serde's message, the only
    // place that names it).
    let flags = cases
        .iter()
        .find(|c| c.name == "free-form tool flags")
        .unwrap();
    let err = call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, flags.body.clone())
        .await
        .unwrap_err();
    let api = err.api_error().expect("a refusal");
    assert!(api.message.contains("flags"), "{api:?}");

    assert_quiet(&mut observed).await;
    for w in [&mut a1, &mut a2, &mut b, &mut c] {
        assert!(w.drain().is_empty(), "{} got a command", w.id());
    }
    assert!(
        env.api.list(&all_jobs()).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_key_expired_is_offline_not_unknown() {
    let env = Env::start().await;
    let _live = env
        .register(worker("w-live", "pod-live", "n1", "10.244.1.2"))
        .await;
    let mut gone = env
        .register(worker("w-gone", "pod-gone", "n2", "10.244.2.2"))
        .await;
    gone.listen().await;
    gone.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w-gone drops out of workers.list",
        || async {
            let ws = env.api.workers().await.ok()?;
            (!ws.iter().any(|w| w.info.worker_id == "w-gone")).then_some(())
        },
    )
    .await;
    let mut observed = observe_jobs(&env).await;

    for name in ["w-gone", "pod-gone"] {
        let err = env.api.submit(vec![noop(name)]).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::WorkerOffline), "{name}: {err}");
        let field = err.api_error().and_then(|e| e.field);
        assert_eq!(field.as_deref(), Some("jobs[0].source"), "{err}");
    }
    let ping_gone = spec(
        json!({"source": "pod-live", "target": {"worker": "pod-gone"},
                                "params": {"kind": "ping"}}),
    );
    let err = env.api.submit(vec![ping_gone]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::WorkerOffline), "{err}");
    let field = err.api_error().and_then(|e| e.field);
    assert_eq!(field.as_deref(), Some("jobs[0].target.worker"));
    // Never seen at all: unknown.
    let err = env.api.submit(vec![noop("w-never")]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownWorker), "{err}");

    assert_quiet(&mut observed).await;
    assert!(gone.drain().is_empty());
    assert!(env.api.list(&all_jobs()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_inside_the_allowed_cidrs_is_accepted_and_resolved() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "target": {"address": "10.99.3.4"},
               "params": {"kind": "ping", "count": 3}}),
        ))
        .await
        .unwrap();
    let run = run_of(w.next_command(SOON).await);
    assert_eq!(run.job_id, id);
    let target = run.target.expect("a resolved target");
    assert_eq!(target.ip, "10.99.3.4".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(target.port, env.cfg.default_iperf3_port);
    assert_eq!(target.worker_id, None);
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.source_worker, "w1");
    assert_eq!(rec.target_ip, Some(target.ip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noop_job_is_delivered_and_its_result_stored_and_announced() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let mut observed = observe_jobs(&env).await;

    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "params": {"kind": "noop", "sleep_ms": 5}}),
        ))
        .await
        .unwrap();
    let run = run_of(w.next_command(SOON).await);
    assert_eq!(run.job_id, id);
    assert_eq!(run.params, JobParams::Noop(NoopParams { sleep_ms: 5 }));
    assert_eq!(run.target, None);
    // The observer saw exactly that request on the worker's own subject.
    let msg = tokio::time::timeout(SOON, observed.next())
        .await
        .expect("observed")
        .unwrap();
    assert_eq!(msg.subject.as_str(), "podperf.jobs.w1");
    let raw: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(raw["command"], "run");
    assert_eq!(raw["job_id"], id.to_string());

    let rec = env.wait_state(id, JobState::Dispatched, SOON).await;
    assert_eq!(rec.attempts, 1);
    assert!(rec.dispatched_at_ms.is_some());
    assert_eq!(rec.deadline_at_ms, run.deadline_at_ms);
    assert!(rec.deadline_at_ms > rec.created_at_ms);

    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    let result = outcome(id, "w1", OutcomeStatus::Succeeded);
    env.publish_result(&result).await;
    let rec = env.wait_state(id, JobState::Succeeded, SOON).await;
    assert_eq!(
        rec.result,
        Some(ProbeResult::Noop(NoopResult { slept_ms: 7 }))
    );
    assert_eq!(rec.raw_output.as_deref(), Some("raw"));
    assert_eq!(rec.started_at_ms, Some(result.started_at_ms));
    assert_eq!(rec.finished_at_ms, Some(result.finished_at_ms));
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "succeeded")
    );

    let listed = env
        .api
        .list(&ListJobsRequest {
            state: Some(JobState::Succeeded),
            worker: Some("pod-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.job_id).collect::<Vec<_>>(),
        vec![id]
    );
    let dispatched = ListJobsRequest {
        state: Some(JobState::Dispatched),
        ..Default::default()
    };
    assert!(env.api.list(&dispatched).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_for_a_worker_not_yet_listening_is_retried_with_the_same_id() {
    let env = Env::start().await;
    // Its key is live, but nobody is subscribed to its job subject: "no responders".
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Queued);

    w.listen().await;
    let first = run_of(w.next_command(SOON).await);
    assert_eq!(first.job_id, id);
    let rec = env.wait_state(id, JobState::Dispatched, SOON).await;
    assert!(
        rec.attempts >= 2,
        "the first attempt(s) found no responder: {}",
        rec.attempts
    );
    env.publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(id, JobState::Succeeded, SOON).await;
    // Every delivery that reached the worker carried the same job id.
    for cmd in w.drain() {
        assert_eq!(run_of(cmd).job_id, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_job_without_a_result_times_out_after_its_deadline_and_grace() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "params": {"kind": "noop"}, "timeout_s": 1}),
        ))
        .await
        .unwrap();
    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);

    let rec = env.wait_state(id, JobState::TimedOut, SOON).await;
    let finished = rec.finished_at_ms.expect("finished_at_ms");
    let grace = env.cfg.deadline_grace.as_millis() as u64;
    assert!(
        finished >= rec.deadline_at_ms + grace,
        "timed out at {finished}, before deadline {} + grace {grace}",
        rec.deadline_at_ms
    );
    assert!(rec.message.is_some());
    // The worker is told to stop.
    match w.next_command(SOON).await {
        WorkerCommand::Cancel(c) => assert_eq!(c.job_id, id),
        other => panic!("expected a cancel, got {other:?}"),
    }
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "timed_out")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_key_expires_is_worker_lost() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    w.stop_heartbeat();
    let rec = env
        .wait_state(id, JobState::WorkerLost, lost_bound(&env))
        .await;
    assert!(rec.finished_at_ms.is_some());
    assert!(
        rec.message.as_deref().unwrap_or("").contains("w1"),
        "{rec:?}"
    );
}

/// A dispatcher with a long grace before `worker_lost`, and worker w1 (pod-1) running one noop.
async fn one_dispatched_job_and_a_long_grace() -> (Env, WorkerInfo, FakeWorker, Uuid) {
    let env = Env::start_with(DispatcherConfig {
        lost_grace: Duration::from_secs(20),
        ..test_config()
    })
    .await;
    let info = worker("w1", "pod-1", "n1", "10.244.1.2");
    let mut w = env.register(info.clone()).await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;
    (env, info, w, id)
}

/// A broker restart can let a live worker's key expire. The same worker instance registering
/// again within the grace keeps its job, whose result then ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_key_expired_and_that_comes_back_in_the_grace_keeps_its_jobs() {
    let (env, info, mut w, id) = one_dispatched_job_and_a_long_grace().await;
    w.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w1 drops out of workers.list",
        || async { env.api.workers().await.ok()?.is_empty().then_some(()) },
    )
    .await;
    let _back = env.register(info).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Dispatched);

    env.publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(id, JobState::Succeeded, SOON).await;
}

/// A new instance of a worker (another `started_at_ms`) means the old one died: the jobs it had
/// accepted end `worker_lost` at once, without waiting for a key to expire, and new jobs go to
/// the new instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_loses_what_its_old_instance_accepted() {
    let (env, info, old, id) = one_dispatched_job_and_a_long_grace().await;
    drop(old); // stops its heartbeat and its subscription
    let mut new = env
        .register(WorkerInfo {
            started_at_ms: info.started_at_ms + 1_000,
            ..info
        })
        .await;
    new.listen().await;
    let rec = env.wait_state(id, JobState::WorkerLost, SOON).await;
    let msg = rec.message.unwrap_or_default();
    assert!(msg.contains("restarted"), "{msg}");

    let next = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(new.next_command(SOON).await).job_id, next);
    env.wait_state(next, JobState::Dispatched, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_job_tells_the_worker_and_the_first_terminal_state_wins() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    let reply = env.api.cancel(id).await.expect("cancel");
    assert_eq!(reply.job_id, id);
    let rec = env.wait_state(id, JobState::Cancelled, SOON).await;
    assert!(rec.finished_at_ms.is_some());
    match w.next_command(SOON).await {
        WorkerCommand::Cancel(c) => assert_eq!(c.job_id, id),
        other => panic!("expected a cancel, got {other:?}"),
    }
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "cancelled")
    );

    // The worker's own result arrives afterwards: the first terminal state stays.
    let seq = env
        .publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.state, JobState::Cancelled);
    assert_eq!(rec.result, None);
    assert_eq!(rec.raw_output, None);

    // Cancelling again, or an unknown job.
    let again = env.api.cancel(id).await.expect("cancel again");
    assert_eq!(again.state, JobState::Cancelled);
    let err = env.api.cancel(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_a_worker_that_is_not_the_source_is_ignored() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    w2.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    let seq = env
        .publish_result(&outcome(id, "w2", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.state, JobState::Dispatched);
    assert_eq!(rec.result, None);

    // The source's own result still lands.
    env.publish_result(&outcome(id, "w1", OutcomeStatus::Failed))
        .await;
    let rec = env.wait_state(id, JobState::Failed, SOON).await;
    assert_eq!(rec.message.as_deref(), Some("from the test"));
}

/// Bandwidth job A (w1 → w2) and B (w1 → w3) share node n1; a result from the wrong worker for A
/// must neither end A's tracking (its deadline still applies) nor free n1 for B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_the_wrong_worker_keeps_the_job_tracked_and_its_nodes_held() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    let mut w3 = env
        .register(worker("w3", "pod-3", "n3", "10.244.3.2"))
        .await;
    for w in [&mut w1, &mut w2, &mut w3] {
        w.listen().await;
    }
    let ids = env
        .api
        .submit(vec![
            spec(
                json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "iperf3"},
                        "timeout_s": 3}),
            ),
            spec(json!({"source": "w1", "target": {"worker": "w3"}, "params": {"kind": "iperf3"}})),
        ])
        .await
        .expect("submit");
    let (a, b) = (ids[0], ids[1]);
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, a);
    env.wait_state(a, JobState::Dispatched, SOON).await;

    let seq = env
        .publish_result(&outcome(a, "w3", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    assert_eq!(env.api.get(a).await.unwrap().state, JobState::Dispatched);
    w1.no_command(QUIET).await; // B still waits for n1
    assert_eq!(env.api.get(b).await.unwrap().state, JobState::Queued);
    // A's deadline still ends it, and only then B starts.
    env.wait_state(a, JobState::TimedOut, SOON).await;
    assert_eq!(run_of_or_skip_cancel(&mut w1).await, b);
}

/// The next run's job id, skipping cancel commands.
async fn run_of_or_skip_cancel(w: &mut FakeWorker) -> Uuid {
    loop {
        match w.next_command(SOON).await {
            WorkerCommand::Run(a) => return a.job_id,
            WorkerCommand::Cancel(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_jobs_sharing_a_node_run_one_after_the_other() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    let mut w3 = env
        .register(worker("w3", "pod-3", "n3", "10.244.3.2"))
        .await;
    for w in [&mut w1, &mut w2, &mut w3] {
        w.listen().await;
    }
    // A: n1 → n2; B: n3 → n2 (same target node and iperf3 server); C: noop on n1 (free).
    let ids = env
        .api
        .submit(vec![
            spec(json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "iperf3"}})),
            spec(json!({"source": "w3", "target": {"worker": "w2"}, "params": {"kind": "iperf3"}})),
            noop("w1"),
        ])
        .await
        .expect("submit");
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let mut on_w1 = vec![
        run_of(w1.next_command(SOON).await).job_id,
        run_of(w1.next_command(SOON).await).job_id,
    ];
    on_w1.sort();
    let mut expect = vec![a, c];
    expect.sort();
    assert_eq!(on_w1, expect, "A and the noop start at once");
    env.wait_state(a, JobState::Dispatched, SOON).await;

    w3.no_command(Duration::from_millis(1500)).await;
    assert_eq!(env.api.get(b).await.unwrap().state, JobState::Queued);
    assert!(w3.drain().is_empty(), "B started while A held n2");
    let released_at = podperf_protocol::now_ms();
    env.publish_result(&outcome(a, "w1", OutcomeStatus::Succeeded))
        .await;
    let run_b = run_of(w3.next_command(SOON).await);
    assert_eq!(run_b.job_id, b);
    let rec_b = env.wait_state(b, JobState::Dispatched, SOON).await;
    let rec_a = env.api.get(a).await.unwrap();
    assert_eq!(rec_a.state, JobState::Succeeded);
    assert!(
        rec_b.dispatched_at_ms.unwrap() >= released_at,
        "B was dispatched before A's result was published"
    );
    assert!(w2.drain().is_empty(), "the target runs nothing itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dispatcher_ingests_missed_results_and_resumes_outstanding_jobs() {
    let mut env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    // A and C are accepted by w1; B waits for w2, which is not listening yet.
    let a = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, a);
    let c = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, c);
    env.wait_state(a, JobState::Dispatched, SOON).await;
    env.wait_state(c, JobState::Dispatched, SOON).await;
    let b = env.api.submit_one(noop("w2")).await.unwrap();

    env.stop_dispatcher().await;
    // `run` returns before its NATS connection has finished draining (async-nats' `drain()` only
    // starts it), and a result published in that window goes to the old pull request and waits
    // out the consumer's 30 s ack_wait. Wait until the server has dropped that request.
    env.wait_no_pull_requests().await;
    // While it is down: A's result arrives (durably, in the stream).
    env.publish_result(&outcome(a, "w1", OutcomeStatus::Succeeded))
        .await;
    assert_eq!(get_job_direct(&env, b).await, JobState::Queued);

    env.start_dispatcher().await;
    let rec = env.wait_state(a, JobState::Succeeded, SOON).await;
    assert!(rec.result.is_some());
    // B is resumed: delivered once w2 listens, with the same id.
    w2.listen().await;
    assert_eq!(run_of(w2.next_command(SOON).await).job_id, b);
    env.wait_state(b, JobState::Dispatched, SOON).await;
    env.publish_result(&outcome(b, "w2", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(b, JobState::Succeeded, SOON).await;
    // C is held by the new engine: re-sent with the same id (the worker dedups), cancellable.
    let resent: Vec<Uuid> = w1
        .drain()
        .into_iter()
        .map(|cmd| run_of(cmd).job_id)
        .collect();
    assert!(resent.contains(&c), "C was re-sent: {resent:?}");
    assert!(resent.iter().all(|id| *id == a || *id == c), "{resent:?}");
    env.api.cancel(c).await.expect("cancel");
    env.wait_state(c, JobState::Cancelled, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_finds_a_worker_gone_keeps_taking_jobs() {
    let mut env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    w2.listen().await;
    let a = env.api.submit_one(noop("w1")).await.unwrap();
    env.wait_state(a, JobState::Dispatched, SOON).await;

    env.stop_dispatcher().await;
    w1.stop_heartbeat();
    let bucket = env.bucket().await;
    eventually(expiry_bound(&env), "w1's key expires", || {
        let bucket = bucket.clone();
        async move {
            bucket
                .get("w1")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    env.start_dispatcher().await;
    env.wait_state(a, JobState::WorkerLost, SOON).await;
    // The job ended during recovery must not throw the outstanding-job count off.
    let b = env.api.submit_one(noop("w2")).await.unwrap();
    assert_eq!(run_of(w2.next_command(SOON).await).job_id, b);
}

/// A job's state straight from Redis (the API is down while the dispatcher is).
async fn get_job_direct(env: &Env, id: Uuid) -> JobState {
    let store = podperf_dispatcher::Store::connect(&env.redis.url(), env.cfg.retention)
        .await
        .unwrap();
    store.get(id).await.unwrap().expect("stored").state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_get_and_list_answer_not_found_and_filters() {
    let env = Env::start().await;
    let err = env.api.get(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    // Requests the typed client cannot even express.
    let err = call_raw_reply(&env.api, endpoint::JOBS_GET, r#"{"job_id": "nope"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
    let err = call_raw_reply(&env.api, endpoint::JOBS_LIST, r#"{"state": "sleeping"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_job_fails_and_a_worker_at_capacity_is_retried() {
    let env = Env::start().await;
    let mut strict = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut busy = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    strict
        .listen_with(|_| Some(RefusalReason::InvalidSpec))
        .await;
    busy.listen_with(|n| (n < 2).then_some(RefusalReason::AtCapacity))
        .await;

    let refused = env.api.submit_one(noop("w1")).await.unwrap();
    let rec = env.wait_state(refused, JobState::Failed, SOON).await;
    assert_eq!(rec.reason, Some(FailureReason::Refused));
    assert!(rec.message.is_some());
    assert_eq!(run_of(strict.next_command(SOON).await).job_id, refused);

    let retried = env.api.submit_one(noop("w2")).await.unwrap();
    let rec = env.wait_state(retried, JobState::Dispatched, SOON).await;
    assert_eq!(rec.attempts, 3, "two at-capacity refusals, then accepted");
    for _ in 0..3 {
        assert_eq!(run_of(busy.next_command(SOON).await).job_id, retried);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_delays_results_but_loses_none() {
    let mut env = Env::start_persistent().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    tokio::task::block_in_place(|| env.redis.stop());
    let seq = env
        .publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    let err = env.api.get(id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");
    let err = env.api.submit(vec![noop("w1")]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");

    tokio::task::block_in_place(|| env.redis.restart());
    let rec = eventually(
        Duration::from_secs(20),
        "the result lands after the outage",
        || async {
            let rec = env.api.get(id).await.ok()?;
            (rec.state == JobState::Succeeded).then_some(rec)
        },
    )
    .await;
    assert!(rec.result.is_some());
    env.wait_ingested(seq).await;
}

/// `worker_id: ""` must not pass the source check (an empty id is not a valid worker id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_with_an_empty_worker_id_is_ignored() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("w1")).await.unwrap();
    env.wait_state(id, JobState::Dispatched, SOON).await;
    let seq = env
        .publish_result(&outcome(id, "", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Dispatched);
}
