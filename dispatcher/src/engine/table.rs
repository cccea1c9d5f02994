//! The job table: what the engine tracks per job, and queued jobs starting when the scheduler
//! allows.

use std::sync::atomic::Ordering;
use std::time::Duration;

use podperf_protocol::command::JobAssignment;
use podperf_protocol::job::JobParams;
use podperf_protocol::names::job_subject;
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{FailureReason, JobState};
use tokio_util::sync::CancellationToken;
use tokio_util::time::delay_queue;
use uuid::Uuid;

use super::{Engine, Input};
use crate::deliver;
use crate::scheduler::{self, Claim};
use crate::store::NewJob;

/// Where an outstanding job is, as far as the engine is concerned. Each phase sits at one of the
/// live [`JobState`]s in the store ([`Phase::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Queued,
    Delivering,
    /// Accepted by the worker (it may be running).
    Dispatched,
}

impl Phase {
    /// The state the store holds for a job in this phase (at least: ingest moves a dispatched
    /// job on to `running` without the engine).
    pub(super) fn state(self) -> JobState {
        match self {
            Phase::Queued | Phase::Delivering => JobState::Queued,
            Phase::Dispatched => JobState::Dispatched,
        }
    }

    /// The phase a restarted dispatcher resumes a job in, from its stored state; `None` for a
    /// terminal one. A stored `dispatched` job is delivered again (the worker runs an id once and
    /// answers a duplicate), a `running` one waits for its result.
    pub(super) fn resume(state: JobState) -> Option<Phase> {
        match state {
            JobState::Queued => Some(Phase::Queued),
            JobState::Dispatched => Some(Phase::Delivering),
            JobState::Running => Some(Phase::Dispatched),
            JobState::Succeeded
            | JobState::Failed
            | JobState::TimedOut
            | JobState::WorkerLost
            | JobState::Cancelled => None,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Delivering => "being delivered",
            Phase::Dispatched => "dispatched or running",
        }
    }
}

pub(super) struct Tracked {
    pub(super) job: NewJob,
    pub(super) phase: Phase,
    pub(super) claim: Claim,
    /// `None` once the deadline fired.
    pub(super) deadline: Option<delay_queue::Key>,
    pub(super) delivery: Option<CancellationToken>,
    /// When the worker accepted it (`None` if before this dispatcher started).
    pub(super) accepted_at_ms: Option<u64>,
}

impl Engine {
    /// Starts tracking `job`; false (and nothing done) when it is tracked already.
    pub(super) fn track(&mut self, job: NewJob, phase: Phase) -> bool {
        if self.jobs.contains_key(&job.job_id) {
            return false;
        }
        let target = job.resolved.as_ref();
        let server = target.map(|t| format!("{}:{}", t.ip, t.port));
        let target_node = target.map(|t| t.node.as_str());
        let claim = match &job.params {
            JobParams::Sweep(p) => {
                Claim::for_sweep(&job.source_node, p.resolved.iter().map(|t| t.node.as_str()))
            }
            _ => Claim::for_job(job.params.kind(), &job.source_node, target_node, server),
        };
        let fire_at = job.deadline_at_ms + self.cfg.deadline_grace.as_millis() as u64;
        let in_ms = Duration::from_millis(fire_at.saturating_sub(now_ms()));
        let deadline = Some(self.deadlines.insert(job.job_id, in_ms));
        let id = job.job_id;
        if phase == Phase::Queued {
            self.queue.push(id);
            self.dirty = true;
        }
        let tracked = Tracked {
            job,
            phase,
            claim,
            deadline,
            delivery: None,
            accepted_at_ms: None,
        };
        self.jobs.insert(id, tracked);
        true
    }

    pub(super) fn untrack(&mut self, job_id: Uuid) -> Option<Tracked> {
        let t = self.jobs.remove(&job_id)?;
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.remember_ended(job_id);
        self.dirty = true;
        if let Some(key) = &t.deadline {
            self.deadlines.try_remove(key);
        }
        if t.phase == Phase::Queued {
            self.queue.retain(|id| *id != job_id);
        } else {
            self.locks.release(&t.claim);
        }
        Some(t)
    }

    fn remember_ended(&mut self, job_id: Uuid) {
        let now = std::time::Instant::now();
        while let Some((at, id)) = self.ended_order.front().copied() {
            if now.duration_since(at) < super::ENDED_MEMORY {
                break;
            }
            self.ended_order.pop_front();
            self.ended.remove(&id);
        }
        if self.ended.insert(job_id) {
            self.ended_order.push_back((now, job_id));
        }
    }

    /// Whether `worker` is live, or gone so recently that it may still return.
    fn may_run(&self, worker: &str) -> bool {
        self.members.contains(worker) || self.departed.contains_key(worker)
    }

    /// Starts every queued job the scheduler allows.
    pub(super) fn schedule(&mut self) {
        if !std::mem::take(&mut self.dirty) || self.queue.is_empty() {
            return;
        }
        if std::mem::take(&mut self.members_changed) {
            self.fail_unrunnable();
        }
        let claims: Vec<&Claim> = self.queue.iter().map(|id| &self.jobs[id].claim).collect();
        let picked = scheduler::pick(&mut self.locks, claims);
        if picked.is_empty() {
            return;
        }
        // One pass: `picked` is in queue order.
        let mut started = Vec::with_capacity(picked.len());
        let mut next = picked.iter().copied().peekable();
        let mut i = 0;
        self.queue.retain(|id| {
            let pick = next.next_if_eq(&i).is_some();
            i += 1;
            if pick {
                started.push(*id);
            }
            !pick
        });
        for id in started {
            self.jobs.get_mut(&id).expect("queued job is tracked").phase = Phase::Delivering;
            self.start_delivery(id);
        }
    }

    /// Queued jobs whose source or target worker has gone end now instead of waiting.
    fn fail_unrunnable(&mut self) {
        let mut ends = Vec::new();
        for id in &self.queue {
            let job = &self.jobs[id].job;
            if !self.may_run(&job.source_worker) {
                let msg = format!(
                    "worker {} went away before the job started",
                    job.source_worker
                );
                ends.push((*id, JobState::WorkerLost, None, msg));
            } else if let Some(target) = job.target_worker().filter(|t| !self.may_run(t)) {
                let msg = format!("target worker {target} went away before the job started");
                ends.push((*id, JobState::Failed, Some(FailureReason::Unreachable), msg));
            }
        }
        for (id, state, reason, msg) in ends {
            self.finalize(id, state, reason, msg, false);
        }
    }

    pub(super) fn start_delivery(&mut self, job_id: Uuid) {
        let t = self
            .jobs
            .get_mut(&job_id)
            .expect("delivering job is tracked");
        let assignment = JobAssignment {
            job_id,
            params: t.job.params.clone(),
            target: t.job.resolved.as_ref().map(Into::into),
            deadline_at_ms: t.job.deadline_at_ms,
        };
        let cancel = CancellationToken::new();
        t.delivery = Some(cancel.clone());
        let subject = job_subject(&t.job.source_worker);
        let (client, tx, timeout) = (
            self.client.clone(),
            self.tx.clone(),
            self.cfg.delivery_timeout,
        );
        tokio::spawn(async move {
            let delivery = deliver::deliver(&client, subject, &assignment, timeout, &cancel).await;
            let _ = tx.send(Input::Delivered { job_id, delivery });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 3] = [Phase::Queued, Phase::Delivering, Phase::Dispatched];

    #[test]
    fn every_live_state_resumes_and_no_terminal_one_does() {
        for s in JobState::ALL {
            assert_eq!(Phase::resume(s).is_none(), s.is_terminal(), "{s}");
        }
    }

    #[test]
    fn phases_follow_the_life_cycle_order() {
        let ranks: Vec<u8> = PHASES.iter().map(|p| p.state().rank()).collect();
        assert!(ranks.is_sorted(), "{ranks:?}");
        for p in PHASES {
            assert!(!p.state().is_terminal(), "{p:?}");
            assert!(Phase::resume(p.state()).is_some(), "{p:?}");
        }
    }

    #[test]
    fn a_resumed_job_never_claims_more_than_the_store_holds() {
        for s in JobState::ALL {
            if let Some(p) = Phase::resume(s) {
                assert!(p.state().rank() <= s.rank(), "{s} resumes as {p:?}");
            }
        }
    }
}
