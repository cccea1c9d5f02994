//! Resuming the jobs a previous leader left outstanding (after a restart or a failover), and
//! taking up jobs stored without this leader (by a standby, or during a change of leader).

use std::sync::atomic::Ordering;

use podperf_protocol::outcome::JobState;
use uuid::Uuid;

use super::table::Phase;
use super::Engine;
use crate::store::{NewJob, StoreError};

impl Engine {
    /// Resumes the jobs a previous leader left outstanding (from Redis's active set).
    pub async fn recover(&mut self) -> Result<usize, StoreError> {
        // Workers already live when this leader started: a later new instance of one is a restart.
        for view in self.members.snapshot() {
            self.instances
                .insert(view.info.worker_id.clone(), view.info.started_at_ms);
        }
        let ids = self.store.active().await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            match self.store.get_new_job(id).await? {
                Some(job) => jobs.push(job),
                None => self.store.forget_active(id).await?,
            }
        }
        Ok(self.resume(jobs))
    }

    /// Tracks each job not tracked yet in the phase its stored state calls for; returns how many.
    pub(super) fn resume(&mut self, jobs: Vec<(NewJob, JobState)>) -> usize {
        let mut resumed = Vec::new();
        for (job, state) in jobs {
            let Some(phase) = Phase::resume(state) else {
                continue; // terminal: the active set was stale
            };
            let id = job.job_id;
            if self.track(job, phase) {
                resumed.push(id);
            }
        }
        // Counted before any of them can end (and be subtracted) below.
        self.outstanding.fetch_add(resumed.len(), Ordering::Relaxed);
        // Jobs that were in flight hold their claims again; re-send those not yet accepted
        // (the worker runs an id once) and check that their workers are still alive.
        let in_flight: Vec<Uuid> = resumed
            .iter()
            .filter(|id| self.jobs[id].phase != Phase::Queued)
            .copied()
            .collect();
        for id in in_flight {
            let t = &self.jobs[&id];
            self.locks.take(&t.claim);
            if !self.members.contains(&t.job.source_worker) {
                // Gone, or not seen again yet (NATS restarted too): it has `lost_grace` to
                // return, as if it had just left.
                let worker = t.job.source_worker.clone();
                self.on_worker_departed(worker);
            } else if t.phase == Phase::Delivering {
                self.start_delivery(id);
            }
        }
        self.members_changed = true; // queued jobs of workers gone meanwhile end at once
        self.dirty = true;
        resumed.len()
    }
}
