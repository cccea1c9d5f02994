//! Workers leaving and coming back: a departed worker's jobs wait `lost_grace` for it; a new
//! instance of a worker loses what the old one had accepted.

use podperf_protocol::outcome::JobState;
use podperf_protocol::worker::WorkerInfo;
use uuid::Uuid;

use super::table::Phase;
use super::Engine;

impl Engine {
    /// A worker's key expired (or it deregistered): its jobs wait `lost_grace` for it to return.
    pub(super) fn on_worker_departed(&mut self, worker: String) {
        if self.cfg.lost_grace.is_zero() {
            self.instances.remove(&worker);
            let msg =
                format!("worker {worker}'s liveness key expired while the job was outstanding");
            return self.lose_jobs(&worker, &msg);
        }
        if self.departed.contains_key(&worker) {
            return;
        }
        let instance = self.instances.remove(&worker);
        let key = self.departures.insert(worker.clone(), self.cfg.lost_grace);
        self.departed.insert(worker, (instance, key));
    }

    /// A worker appeared: back within the grace (its jobs go on), or a new instance of it (a
    /// restart, with or without its key expiring first: what the old instance had accepted is
    /// lost; jobs not yet accepted are delivered to the new one).
    pub(super) fn on_worker_up(&mut self, info: &WorkerInfo) {
        let (worker, instance) = (&info.worker_id, info.started_at_ms);
        let before = match self.departed.remove(worker) {
            Some((left, key)) => {
                self.departures.try_remove(&key);
                self.dirty = true;
                left
            }
            None => self.instances.get(worker).copied(),
        };
        self.instances.insert(worker.clone(), instance);
        match before {
            Some(b) if b != instance => {
                let msg = format!(
                    "worker {worker} restarted while the job was running (a new instance \
                     registered)"
                );
                self.lose_accepted_before(worker, instance, &msg);
            }
            Some(_) => {
                tracing::info!(worker_id = %worker, "worker back within the grace; its jobs go on")
            }
            None => {}
        }
    }

    /// Ends, `worker_lost`, the jobs `worker` accepted before `instance_started_at_ms`.
    fn lose_accepted_before(&mut self, worker: &str, instance_started_at_ms: u64, msg: &str) {
        let lost: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.job.source_worker == worker && t.phase == Phase::Dispatched)
            .filter(|(_, t)| t.accepted_at_ms.is_none_or(|a| a < instance_started_at_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.finalize(id, JobState::WorkerLost, None, msg.to_string(), true);
        }
    }

    pub(super) fn on_grace_over(&mut self, worker: String) {
        if self.departed.remove(&worker).is_none() || self.members.contains(&worker) {
            return;
        }
        self.members_changed = true; // queued jobs aimed at it end too
        self.dirty = true;
        let msg = format!(
            "worker {worker}'s liveness key expired while the job was outstanding, and it did \
             not come back within {:?}",
            self.cfg.lost_grace
        );
        self.lose_jobs(&worker, &msg);
    }

    /// Ends all of `worker`'s jobs `worker_lost`.
    fn lose_jobs(&mut self, worker: &str, msg: &str) {
        let lost: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.job.source_worker == worker)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.finalize(id, JobState::WorkerLost, None, msg.to_string(), true);
        }
    }
}
