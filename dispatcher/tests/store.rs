//! `Store` against a real `redis-server` (one per test).

#[path = "store/budget.rs"]
mod budget;
#[path = "store/fence.rs"]
mod fence;
#[path = "store/jobs.rs"]
mod jobs;
#[path = "store/outage.rs"]
mod outage;
#[path = "store/transitions.rs"]
mod transitions;
#[path = "store/workers.rs"]
mod workers;

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
