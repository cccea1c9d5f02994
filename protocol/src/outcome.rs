//! Job states, failure reasons, and the events and results a worker publishes to the results stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::result::ProbeResult;

/// Where a job is in its life cycle. Every job ends in exactly one terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    WorkerLost,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Dispatched,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::TimedOut,
        JobState::WorkerLost,
        JobState::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobState::Queued | JobState::Dispatched | JobState::Running
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Dispatched => "dispatched",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::TimedOut => "timed_out",
            JobState::WorkerLost => "worker_lost",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed. An unreachable target or a tool's error exit is an expected outcome (data),
/// not a fault of podperf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No reply came back (100 % loss, destination not reached, no route).
    Unreachable,
    /// The target refused the connection (no iperf3 server listening).
    ConnectionRefused,
    /// The iperf3 server was busy running another test.
    ServerBusy,
    /// The tool is not installed on the worker.
    ToolMissing,
    /// The tool exited with an error we could not classify further.
    ToolError,
    /// The tool's output could not be parsed.
    InvalidOutput,
    /// The worker refused the job (invalid spec, deadline passed, at capacity).
    Refused,
    /// The dispatcher could not deliver the job before its deadline.
    Undeliverable,
    /// The worker was stopped (SIGTERM) and its grace period ran out before the job finished.
    WorkerShutdown,
}

/// The terminal status a worker reports for a job it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl From<OutcomeStatus> for JobState {
    fn from(s: OutcomeStatus) -> Self {
        match s {
            OutcomeStatus::Succeeded => JobState::Succeeded,
            OutcomeStatus::Failed => JobState::Failed,
            OutcomeStatus::TimedOut => JobState::TimedOut,
            OutcomeStatus::Cancelled => JobState::Cancelled,
        }
    }
}

/// A life-cycle event, published on `podperf.events.<job_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub job_id: Uuid,
    pub worker_id: String,
    pub event: EventKind,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Started,
}

/// The terminal result of a job, published on `podperf.results.<job_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    pub job_id: Uuid,
    pub worker_id: String,
    pub status: OutcomeStatus,
    /// Set when `status` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// A human-readable explanation for anything but success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The typed measurement; may be present on failure too (e.g. ping with 100 % loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ProbeResult>,
    /// The tool's output, size-capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
}
