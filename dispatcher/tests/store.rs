//! `Store` against a real `redis-server` (one per test).

use std::time::Duration;

use podperf_dispatcher::store::{Applied, NewJob, ResolvedTarget, Store, Transition};
use podperf_protocol::api::{JobRecord, ListJobsRequest};
use podperf_protocol::job::{JobParams, NoopParams, PingParams, Target};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{FailureReason, JobState};
use podperf_protocol::result::{NoopResult, ProbeResult};
use podperf_protocol::worker::{Tool, ToolInfo, WorkerInfo};
use podperf_testkit::RedisServer;
use uuid::Uuid;

const RETENTION: Duration = Duration::from_secs(3600);
/// Bound on any single store call while Redis is down (the connection manager has timeouts).
const OUTAGE_BOUND: Duration = Duration::from_secs(30);

async fn store(redis: &RedisServer) -> Store {
    tokio::time::timeout(
        Duration::from_secs(10),
        Store::connect(&redis.url(), RETENTION),
    )
    .await
    .expect("connect within 10 s")
    .expect("connect")
}

/// A ping job from `source` to worker `target` created `age_ms` ago.
fn ping_job(source: &str, target: &str, age_ms: u64) -> NewJob {
    let created = now_ms() - age_ms;
    NewJob {
        job_id: Uuid::now_v7(),
        params: JobParams::Ping(PingParams {
            count: 3,
            ..Default::default()
        }),
        source_worker: source.into(),
        source_node: format!("node-{source}"),
        target: Some(Target::Worker(target.into())),
        resolved: Some(ResolvedTarget {
            ip: "10.244.1.7".parse().unwrap(),
            port: 5201,
            worker: Some(target.into()),
            node: format!("node-{target}"),
        }),
        created_at_ms: created,
        deadline_at_ms: created + 60_000,
    }
}

fn noop_job(source: &str, age_ms: u64) -> NewJob {
    let created = now_ms() - age_ms;
    NewJob {
        job_id: Uuid::now_v7(),
        params: JobParams::Noop(NoopParams { sleep_ms: 3 }),
        source_worker: source.into(),
        source_node: format!("node-{source}"),
        target: None,
        resolved: None,
        created_at_ms: created,
        deadline_at_ms: created + 60_000,
    }
}

fn ids(recs: &[JobRecord]) -> Vec<Uuid> {
    recs.iter().map(|r| r.job_id).collect()
}

fn noop_result(ms: u32) -> Option<ProbeResult> {
    Some(ProbeResult::Noop(NoopResult { slept_ms: ms }))
}

async fn state_of(store: &Store, id: Uuid) -> JobState {
    store.get(id).await.unwrap().expect("job exists").state
}

async fn by_state(store: &Store, state: JobState) -> Vec<Uuid> {
    let q = ListJobsRequest {
        state: Some(state),
        ..Default::default()
    };
    ids(&store.list(&q).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_jobs_are_queued_with_their_fields_and_listable_by_filters() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    // Oldest first: a (w1→w2), b (w2→w3), c (noop on w3), d (w1→w3).
    let a = ping_job("w1", "w2", 40_000);
    let b = ping_job("w2", "w3", 30_000);
    let c = noop_job("w3", 20_000);
    let d = ping_job("w1", "w3", 10_000);
    store
        .insert(&[a.clone(), b.clone(), c.clone(), d.clone()])
        .await
        .unwrap();

    let rec = store.get(a.job_id).await.unwrap().expect("a is stored");
    assert_eq!(rec.job_id, a.job_id);
    assert_eq!(rec.state, JobState::Queued);
    assert_eq!(rec.params, a.params);
    assert_eq!(rec.source_worker, "w1");
    assert_eq!(rec.target, a.target);
    assert_eq!(rec.target_ip, Some("10.244.1.7".parse().unwrap()));
    assert_eq!(rec.target_worker.as_deref(), Some("w2"));
    assert_eq!(rec.created_at_ms, a.created_at_ms);
    assert_eq!(rec.deadline_at_ms, a.deadline_at_ms);
    assert_eq!(rec.attempts, 0);
    assert_eq!(
        (rec.dispatched_at_ms, rec.started_at_ms, rec.finished_at_ms),
        (None, None, None)
    );
    assert!(rec.result.is_none() && rec.reason.is_none() && rec.message.is_none());
    let rec_c = store.get(c.job_id).await.unwrap().expect("c is stored");
    assert_eq!((rec_c.target, rec_c.target_worker), (None, None));
    let (new_job, state) = store.get_new_job(b.job_id).await.unwrap().unwrap();
    assert_eq!((new_job, state), (b.clone(), JobState::Queued));
    assert_eq!(store.get(Uuid::now_v7()).await.unwrap(), None);

    let all = store.list(&ListJobsRequest::default()).await.unwrap();
    assert_eq!(
        ids(&all),
        vec![d.job_id, c.job_id, b.job_id, a.job_id],
        "newest first"
    );
    let mut active = store.active().await.unwrap();
    active.sort();
    let mut expected = vec![a.job_id, b.job_id, c.job_id, d.job_id];
    expected.sort();
    assert_eq!(active, expected);

    // By worker: as source or as target.
    let q = |w: &str| ListJobsRequest {
        worker: Some(w.into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&q("w1")).await.unwrap()),
        vec![d.job_id, a.job_id]
    );
    assert_eq!(
        ids(&store.list(&q("w2")).await.unwrap()),
        vec![b.job_id, a.job_id]
    );
    assert_eq!(
        ids(&store.list(&q("w3")).await.unwrap()),
        vec![d.job_id, c.job_id, b.job_id]
    );
    assert!(store.list(&q("nobody")).await.unwrap().is_empty());

    // By time window (inclusive bounds on the creation time).
    let window = ListJobsRequest {
        since_ms: Some(b.created_at_ms),
        until_ms: Some(c.created_at_ms),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&window).await.unwrap()),
        vec![c.job_id, b.job_id]
    );
    let since = ListJobsRequest {
        since_ms: Some(c.created_at_ms + 1),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&since).await.unwrap()), vec![d.job_id]);
    let until = ListJobsRequest {
        until_ms: Some(a.created_at_ms),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&until).await.unwrap()), vec![a.job_id]);

    // Limit keeps the newest.
    let limit = ListJobsRequest {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&limit).await.unwrap()),
        vec![d.job_id, c.job_id]
    );

    // By state, alone and combined with a worker.
    let tr = Transition {
        attempts: Some(1),
        dispatched_at_ms: Some(now_ms()),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(store.transition(b.job_id, &tr).await.unwrap(), Applied::Yes);
    assert_eq!(store.transition(d.job_id, &tr).await.unwrap(), Applied::Yes);
    assert_eq!(
        by_state(&store, JobState::Dispatched).await,
        vec![d.job_id, b.job_id]
    );
    assert_eq!(
        by_state(&store, JobState::Queued).await,
        vec![c.job_id, a.job_id]
    );
    let w3_dispatched = ListJobsRequest {
        worker: Some("w3".into()),
        state: Some(JobState::Dispatched),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&w3_dispatched).await.unwrap()),
        vec![d.job_id, b.job_id]
    );
    let w1_queued_limit1 = ListJobsRequest {
        worker: Some("w1".into()),
        state: Some(JobState::Queued),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&w1_queued_limit1).await.unwrap()),
        vec![a.job_id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_only_move_forward_and_the_first_terminal_state_wins() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = ping_job("w1", "w2", 1_000);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();

    let dispatched = Transition {
        attempts: Some(2),
        dispatched_at_ms: Some(1_111),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(
        store.transition(id, &dispatched).await.unwrap(),
        Applied::Yes
    );
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Dispatched);
    assert_eq!((rec.attempts, rec.dispatched_at_ms), (2, Some(1_111)));
    assert_eq!(by_state(&store, JobState::Queued).await, Vec::<Uuid>::new());
    assert_eq!(by_state(&store, JobState::Dispatched).await, vec![id]);

    // The same rank again is stale.
    assert_eq!(
        store.transition(id, &dispatched).await.unwrap(),
        Applied::Stale
    );

    let running = Transition {
        started_at_ms: Some(2_222),
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Running)
    };
    assert_eq!(store.transition(id, &running).await.unwrap(), Applied::Yes);
    assert_eq!(by_state(&store, JobState::Running).await, vec![id]);
    assert_eq!(
        by_state(&store, JobState::Dispatched).await,
        Vec::<Uuid>::new()
    );

    // A late "dispatched" (e.g. the engine's write racing the worker's started event).
    let late = Transition {
        attempts: Some(9),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(store.transition(id, &late).await.unwrap(), Applied::Stale);
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Running, "the state never moves back");
    // By design a live job still takes a late transition's fields (attempts, dispatch time).
    assert_eq!(rec.attempts, 9);
    assert_eq!(rec.started_at_ms, Some(2_222));
    assert_eq!(store.active().await.unwrap(), vec![id]);

    let succeeded = Transition {
        finished_at_ms: Some(3_333),
        result: noop_result(5),
        raw_output: Some("first".into()),
        message: Some("first message".into()),
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Succeeded)
    };
    assert_eq!(
        store.transition(id, &succeeded).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(by_state(&store, JobState::Succeeded).await, vec![id]);
    assert_eq!(
        by_state(&store, JobState::Running).await,
        Vec::<Uuid>::new()
    );
    assert!(
        store.active().await.unwrap().is_empty(),
        "terminal jobs are not active"
    );

    // After a terminal state: every other transition, terminal or not, is stale.
    let later = [
        Transition::to(JobState::Queued),
        Transition::to(JobState::Dispatched),
        Transition::to(JobState::Running),
        Transition::to(JobState::Succeeded),
        Transition {
            reason: Some(FailureReason::ToolError),
            message: Some("second message".into()),
            result: noop_result(99),
            raw_output: Some("second".into()),
            finished_at_ms: Some(4_444),
            ..Transition::to(JobState::Failed)
        },
        Transition::to(JobState::TimedOut).message("late timeout"),
        Transition::to(JobState::WorkerLost).message("late loss"),
        Transition::to(JobState::Cancelled).message("late cancel"),
        // A field-only update must not touch a terminal job either.
        Transition {
            message: Some("field only".into()),
            ..Default::default()
        },
    ];
    for t in &later {
        assert_eq!(
            store.transition(id, t).await.unwrap(),
            Applied::Stale,
            "{t:?}"
        );
    }
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Succeeded);
    assert_eq!(rec.result, noop_result(5));
    assert_eq!(rec.reason, None);
    assert_eq!(rec.message.as_deref(), Some("first message"));
    assert_eq!(rec.raw_output.as_deref(), Some("first"));
    assert_eq!(rec.finished_at_ms, Some(3_333));
    for s in JobState::ALL {
        let expect = if s == JobState::Succeeded {
            vec![id]
        } else {
            vec![]
        };
        assert_eq!(by_state(&store, s).await, expect, "index of {s}");
    }

    // Straight from queued to a terminal state, keeping reason and message.
    let other = noop_job("w1", 500);
    let oid = other.job_id;
    store.insert(&[other]).await.unwrap();
    let lost = Transition {
        reason: None,
        ..Transition::to(JobState::WorkerLost).message("gone")
    };
    assert_eq!(store.transition(oid, &lost).await.unwrap(), Applied::Yes);
    let cancel = Transition::to(JobState::Cancelled).message("too late");
    assert_eq!(
        store.transition(oid, &cancel).await.unwrap(),
        Applied::Stale
    );
    let rec = store.get(oid).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.message.as_deref()),
        (JobState::WorkerLost, Some("gone"))
    );
    assert!(store.active().await.unwrap().is_empty());
    assert_eq!(by_state(&store, JobState::WorkerLost).await, vec![oid]);
    assert_eq!(by_state(&store, JobState::Queued).await, Vec::<Uuid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_another_worker_changes_nothing_and_unknown_jobs_are_missing() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = ping_job("w1", "w2", 1_000);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();
    let before = store.get(id).await.unwrap().unwrap();

    // The target worker (or anyone but the source) cannot complete the job.
    for intruder in ["w2", "w", "w1x", "W1"] {
        let t = Transition {
            result: noop_result(1),
            message: Some("forged".into()),
            finished_at_ms: Some(9),
            expect_worker: Some(intruder.into()),
            ..Transition::to(JobState::Succeeded)
        };
        let applied = store.transition(id, &t).await.unwrap();
        assert_eq!(applied, Applied::WrongWorker, "from {intruder:?}");
    }
    let after = store.get(id).await.unwrap().unwrap();
    assert_eq!(after, before, "nothing changed");
    assert_eq!(by_state(&store, JobState::Queued).await, vec![id]);
    assert_eq!(store.active().await.unwrap(), vec![id]);

    // The source worker can.
    let ok = Transition {
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Failed)
    };
    assert_eq!(store.transition(id, &ok).await.unwrap(), Applied::Yes);

    let unknown = Uuid::now_v7();
    for t in [
        Transition::to(JobState::Dispatched),
        Transition::to(JobState::Succeeded),
        Transition {
            expect_worker: Some("w1".into()),
            ..Transition::to(JobState::Running)
        },
    ] {
        assert_eq!(
            store.transition(unknown, &t).await.unwrap(),
            Applied::Missing
        );
    }
    assert_eq!(store.get(unknown).await.unwrap(), None);
    assert_eq!(store.get_new_job(unknown).await.unwrap(), None);
}

/// An address target: read back with its resolved fields, indexed under its source only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_target_is_stored_resolved_and_indexed_under_its_source() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let ip: std::net::IpAddr = "10.99.0.5".parse().unwrap();
    let mut job = ping_job("w1", "w2", 100);
    job.target = Some(Target::Address(ip));
    job.resolved = Some(ResolvedTarget {
        ip,
        port: 5201,
        worker: None,
        node: "addr:10.99.0.5".into(),
    });
    store.insert(std::slice::from_ref(&job)).await.unwrap();

    let (back, _) = store.get_new_job(job.job_id).await.unwrap().unwrap();
    assert_eq!(back, job);
    let rec = store.get(job.job_id).await.unwrap().unwrap();
    assert_eq!((rec.target_ip, rec.target_worker), (Some(ip), None));
    let by = |w: &str| ListJobsRequest {
        worker: Some(w.into()),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&by("w1")).await.unwrap()), vec![job.job_id]);
    assert!(store.list(&by("w2")).await.unwrap().is_empty());
}

/// A result whose `worker_id` is empty (ingest passes it on as `expect_worker: Some("")`) must
/// not bypass the source check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_expected_worker_is_not_a_wildcard() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = noop_job("w1", 100);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();
    let forged = Transition {
        message: Some("forged".into()),
        expect_worker: Some(String::new()),
        ..Transition::to(JobState::Succeeded)
    };
    let applied = store.transition(id, &forged).await.unwrap();
    assert_eq!(state_of(&store, id).await, JobState::Queued);
    assert_eq!(applied, Applied::WrongWorker);
}

fn info(id: &str, pod: &str, iperf3: bool) -> WorkerInfo {
    WorkerInfo {
        worker_id: id.into(),
        pod_name: pod.into(),
        pod_namespace: None,
        pod_ip: "10.244.0.9".parse().unwrap(),
        node_name: "n1".into(),
        node_ip: Some("192.168.0.1".parse().unwrap()),
        host_network: false,
        tools: vec![ToolInfo {
            tool: Tool::Iperf3,
            available: iperf3,
            path: None,
            version: None,
        }],
        iperf3_port: 5201,
        max_concurrent_jobs: 1,
        started_at_ms: 42,
        version: "t".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_workers_are_known() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    assert!(store.known_workers().await.unwrap().is_empty());
    let a = info("id-a", "pod-a", true);
    let b = info("id-b", "pod-b", false);
    store.remember_worker(&a).await.unwrap();
    store.remember_worker(&b).await.unwrap();
    // Remembering again replaces the entry (the newest info wins).
    let mut a2 = a.clone();
    a2.started_at_ms = 43;
    store.remember_worker(&a2).await.unwrap();
    let mut known = store.known_workers().await.unwrap();
    known.sort_by(|x, y| x.worker_id.cmp(&y.worker_id));
    assert_eq!(known, vec![a2, b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_an_error_and_the_store_reconnects_by_itself() {
    let mut redis = RedisServer::start_persistent();
    let store = store(&redis).await;
    let job = noop_job("w1", 100);
    store.insert(std::slice::from_ref(&job)).await.unwrap();

    tokio::task::block_in_place(|| redis.stop());
    let res = tokio::time::timeout(OUTAGE_BOUND, store.get(job.job_id))
        .await
        .expect("get returns (an error) instead of hanging");
    assert!(res.is_err(), "get while Redis is down: {res:?}");
    let res = tokio::time::timeout(OUTAGE_BOUND, store.insert(&[noop_job("w1", 50)]))
        .await
        .expect("insert returns instead of hanging");
    assert!(res.is_err(), "insert while Redis is down");
    let t = Transition::to(JobState::Succeeded);
    let res = tokio::time::timeout(OUTAGE_BOUND, store.transition(job.job_id, &t))
        .await
        .expect("transition returns instead of hanging");
    assert!(res.is_err(), "transition while Redis is down: {res:?}");

    // Same port, same data (append-only file): the same Store works again.
    tokio::task::block_in_place(|| redis.restart());
    let again = noop_job("w2", 10);
    let deadline = std::time::Instant::now() + OUTAGE_BOUND;
    loop {
        let attempt =
            tokio::time::timeout(OUTAGE_BOUND, store.insert(std::slice::from_ref(&again)))
                .await
                .expect("insert returns");
        if attempt.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not reconnect within {OUTAGE_BOUND:?}: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rec = store
        .get(again.job_id)
        .await
        .unwrap()
        .expect("stored after the restart");
    assert_eq!(rec.state, JobState::Queued);
    // The Lua script is loaded again on the new process (EVALSHA → NOSCRIPT → load).
    let t = Transition::to(JobState::Dispatched);
    assert_eq!(
        store.transition(again.job_id, &t).await.unwrap(),
        Applied::Yes
    );
    let old = store.get(job.job_id).await.unwrap().expect("data survived");
    assert_eq!(
        old.state,
        JobState::Queued,
        "nothing landed during the outage"
    );
    let done = Transition::to(JobState::Succeeded);
    assert_eq!(
        store.transition(job.job_id, &done).await.unwrap(),
        Applied::Yes
    );
}

/// `worker` + `state` together: the matching job is older than ten newer jobs of that worker in
/// another state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_by_worker_and_state_finds_older_matches() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let old = noop_job("w1", 60_000);
    let newer: Vec<NewJob> = (0..15).map(|i| noop_job("w1", 30_000 - i * 100)).collect();
    store.insert(std::slice::from_ref(&old)).await.unwrap();
    store.insert(&newer).await.unwrap();
    for j in &newer {
        let t = Transition::to(JobState::Dispatched);
        assert_eq!(store.transition(j.job_id, &t).await.unwrap(), Applied::Yes);
    }
    let q = ListJobsRequest {
        worker: Some("w1".into()),
        state: Some(JobState::Queued),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&q).await.unwrap()), vec![old.job_id]);
}

/// Every index is "trimmed to the retention window" (module docs), the per-worker ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_older_than_the_retention_leave_every_index() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), Duration::from_secs(1))
        .await
        .unwrap();
    let old = ping_job("w1", "w2", 5_000);
    let fresh = ping_job("w1", "w2", 0);
    store.insert(std::slice::from_ref(&old)).await.unwrap();
    store.insert(std::slice::from_ref(&fresh)).await.unwrap();

    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for key in [
        "podperf:jobs",
        "podperf:jobs:state:queued",
        "podperf:jobs:worker:w1",
        "podperf:jobs:worker:w2",
    ] {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(members, vec![fresh.job_id.to_string()], "{key}");
    }
}
