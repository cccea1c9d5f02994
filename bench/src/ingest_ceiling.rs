//! A prototype beside figure 2: how many jobs/s the dispatcher's result ingest can store when it
//! applies results one at a time (as `dispatcher/src/ingest.rs` does: one `Store::transition`
//! round trip per message, two messages per job) versus with several in flight (the Redis
//! connection pipelines them). Uses the real `podperf_dispatcher::Store` against the same Redis.

use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_dispatcher::store::{NewJob, Store, Transition};
use podperf_protocol::job::{JobParams, NoopParams};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::JobState;
use uuid::Uuid;

/// Jobs/s stored (`running` then `succeeded`, as the event and the result) with `in_flight` jobs
/// handled at once.
pub async fn rate(redis_url: &str, jobs: usize, in_flight: usize) -> anyhow::Result<f64> {
    let store = Store::connect(redis_url, Duration::from_secs(3600)).await?;
    let now = now_ms();
    let batch: Vec<NewJob> = (0..jobs)
        .map(|i| NewJob {
            job_id: Uuid::now_v7(),
            params: JobParams::Noop(NoopParams { sleep_ms: 0 }),
            source_worker: format!("w{}", i % 100),
            source_node: "n".into(),
            target: None,
            resolved: None,
            created_at_ms: now,
            deadline_at_ms: now + 60_000,
        })
        .collect();
    for chunk in batch.chunks(1000) {
        store.insert(chunk).await?;
    }
    let t0 = Instant::now();
    futures::stream::iter(batch.iter().map(|j| j.job_id))
        .for_each_concurrent(in_flight, |id| {
            let store = store.clone();
            async move {
                let running = Transition {
                    started_at_ms: Some(now),
                    ..Transition::to(JobState::Running)
                };
                let done = Transition {
                    finished_at_ms: Some(now),
                    ..Transition::to(JobState::Succeeded)
                };
                let _ = store.transition(id, &running).await;
                let _ = store.transition(id, &done).await;
            }
        })
        .await;
    Ok(jobs as f64 / t0.elapsed().as_secs_f64())
}
