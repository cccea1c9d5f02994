//! The real dispatcher, in-process, against real `nats-server` and `redis-server` processes, driven
//! through its NATS API, with fake-but-real workers (liveness keys in the real bucket, real job
//! subscriptions, results published to the real JetStream stream).

mod common;
#[path = "api/delivery.rs"]
mod delivery;
#[path = "api/family.rs"]
mod family;
#[path = "api/idempotent.rs"]
mod idempotent;
#[path = "api/restart.rs"]
mod restart;
#[path = "api/results.rs"]
mod results;
#[path = "api/submit.rs"]
mod submit;
#[path = "api/workers.rs"]
mod workers;

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
