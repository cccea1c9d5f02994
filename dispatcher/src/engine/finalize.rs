//! The engine's own verdicts (timed out, lost, cancelled, undeliverable): the job is released at
//! once, its worker told to stop, and the terminal state recorded through the [`Finisher`] —
//! unless the worker's own result is already in the results stream.
//!
//! [`Finisher`]: super::done::Finisher

use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use podperf_protocol::command::{CancelJob, WorkerCommand};
use podperf_protocol::names::{job_subject, result_subject};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{FailureReason, JobOutcome, JobState};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::table::Phase;
use super::Engine;
use crate::store::Transition;

impl Engine {
    /// Ends a job: releases it now and records the terminal state (unless `check_stream` finds the
    /// worker's own result already in the results stream: ingest will store that one). The handle
    /// finishes once the state is recorded (or given up on).
    pub(super) fn finalize(
        &mut self,
        job_id: Uuid,
        state: JobState,
        reason: Option<FailureReason>,
        message: String,
        check_stream: bool,
    ) -> Option<JoinHandle<()>> {
        let t = self.untrack(job_id)?;
        if let Some(d) = &t.delivery {
            d.cancel();
        }
        tracing::info!(%job_id, %state, %message, "job ended by the dispatcher");
        if t.phase != Phase::Queued && matches!(state, JobState::TimedOut | JobState::Cancelled) {
            self.tell_worker_to_stop(&t.job.source_worker, job_id);
        }
        let tr = Transition {
            reason,
            finished_at_ms: Some(now_ms()),
            ..Transition::to(state)
        }
        .message(message);
        let (finisher, results) = (self.finisher.clone(), self.results.clone());
        let source = t.job.source_worker;
        Some(tokio::spawn(async move {
            if check_stream && result_in_stream(&results, job_id, &source).await {
                tracing::info!(%job_id, "the worker's result is in the stream; it wins");
                return;
            }
            finisher.apply_retrying(job_id, &tr).await;
        }))
    }

    fn tell_worker_to_stop(&self, worker: &str, job_id: Uuid) {
        let cmd = WorkerCommand::Cancel(CancelJob { job_id });
        let payload: bytes::Bytes = serde_json::to_vec(&cmd).expect("command serialises").into();
        let (client, subject) = (self.client.clone(), job_subject(worker));
        tokio::spawn(async move {
            let req = client.request(subject, payload);
            let _ = tokio::time::timeout(Duration::from_secs(2), req).await;
        });
    }
}

/// Whether the job's source worker published its result (a result from another worker is not
/// one: ingest ignores it).
async fn result_in_stream(results: &Stream, job_id: Uuid, source: &str) -> bool {
    let Ok(msg) = results
        .direct_get_last_for_subject(result_subject(job_id))
        .await
    else {
        return false;
    };
    serde_json::from_slice::<JobOutcome>(&msg.payload).is_ok_and(|o| o.worker_id == source)
}
