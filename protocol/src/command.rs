//! What the dispatcher sends to a worker on `podperf.jobs.<worker_id>`, and the worker's answer.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{FieldError, JobParams};

crate::tagged::tag_first! {
    tag = "command";
    /// A message on a worker's job subject (always a request: the worker answers at once).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum WorkerCommand {
        Run(JobAssignment),
        Cancel(CancelJob),
    }
}

/// A job for the worker to run. Re-sent with the same `job_id` on retries; the worker runs it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAssignment {
    pub job_id: Uuid,
    pub params: JobParams,
    /// Resolved by the dispatcher; absent for `noop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ResolvedTarget>,
    /// After this instant the job must not start, and a running one is stopped.
    pub deadline_at_ms: u64,
}

impl JobAssignment {
    /// The worker's own check (defence in depth: it never trusts the dispatcher blindly).
    pub fn validate(&self) -> Result<(), FieldError> {
        self.params.validate()?;
        if self.params.needs_target() && self.target.is_none() {
            return Err(FieldError::new("target", "this kind needs a target"));
        }
        if let JobParams::Sweep(p) = &self.params {
            if p.resolved.is_empty() {
                return Err(FieldError::new(
                    "params.resolved",
                    "a sweep needs the targets the dispatcher resolved",
                ));
            }
        }
        Ok(())
    }
}

/// The address (and iperf3 port) a probe aims at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTarget {
    pub ip: IpAddr,
    pub port: u16,
    /// Set when the target is a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelJob {
    pub job_id: Uuid,
}

/// The worker's immediate answer to a [`WorkerCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum WorkerReply {
    /// The job will run (or already did: `duplicate` is true for a retried id).
    Accepted { job_id: Uuid, duplicate: bool },
    Refused {
        job_id: Uuid,
        reason: RefusalReason,
        message: String,
    },
    /// Answer to a cancel; `found` is false when the job was not running here.
    CancelAck { job_id: Uuid, found: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    DeadlinePassed,
    InvalidSpec,
    AtCapacity,
    ShuttingDown,
    ToolMissing,
}

impl RefusalReason {
    /// Whether the dispatcher may try again later (the job itself is fine).
    pub fn is_transient(self) -> bool {
        matches!(self, RefusalReason::AtCapacity)
    }
}
