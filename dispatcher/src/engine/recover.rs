//! Resuming, after a restart, the jobs a previous dispatcher left outstanding.

use std::sync::atomic::Ordering;

use podperf_protocol::outcome::JobState;
use uuid::Uuid;

use super::table::Phase;
use super::Engine;
use crate::store::StoreError;

impl Engine {
    /// Resumes the jobs a previous dispatcher left outstanding (from Redis's active set).
    pub async fn recover(&mut self) -> Result<usize, StoreError> {
        let ids = self.store.active().await?;
        let mut resumed = 0;
        for id in ids {
            let Some((job, state)) = self.store.get_new_job(id).await? else {
                self.store.forget_active(id).await?;
                continue;
            };
            let Some(phase) = Phase::resume(state) else {
                continue; // terminal: the active set was stale
            };
            self.track(job, phase);
            resumed += 1;
        }
        // Counted before any of them can end (and be subtracted) below.
        self.outstanding.fetch_add(resumed, Ordering::Relaxed);
        // Jobs that were in flight hold their claims again; re-send those not yet accepted
        // (the worker runs an id once) and check that their workers are still alive.
        let in_flight: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.phase != Phase::Queued)
            .map(|(id, _)| *id)
            .collect();
        for id in in_flight {
            let t = &self.jobs[&id];
            self.locks.take(&t.claim);
            if !self.members.contains(&t.job.source_worker) {
                let msg = format!(
                    "worker {} was gone when the dispatcher restarted",
                    t.job.source_worker
                );
                self.finalize(id, JobState::WorkerLost, None, msg, true);
            } else if t.phase == Phase::Delivering {
                self.start_delivery(id);
            }
        }
        self.members_changed = true; // queued jobs of workers gone meanwhile end at once
        Ok(resumed)
    }
}
