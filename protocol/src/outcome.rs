//! Job states, failure reasons, and the events and results a worker publishes to the results stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::result::ProbeResult;

/// Where a job is in its life cycle. Every job ends in exactly one terminal state.
///
/// The life-cycle order is defined here once ([`JobState::ALL`], [`JobState::rank`]); the store's
/// state machine (a Lua script) and the engine's phases are derived from it.
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
    /// Every state, in life-cycle order (live states first, then the terminal ones).
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

    /// The rank every terminal state shares (the highest).
    pub const TERMINAL_RANK: u8 = 3;

    /// Position in the life cycle. A job only ever moves to a higher rank; all terminal states
    /// share one rank, so the first terminal state a job reaches is its last.
    pub const fn rank(self) -> u8 {
        match self {
            JobState::Queued => 0,
            JobState::Dispatched => 1,
            JobState::Running => 2,
            JobState::Succeeded
            | JobState::Failed
            | JobState::TimedOut
            | JobState::WorkerLost
            | JobState::Cancelled => JobState::TERMINAL_RANK,
        }
    }

    pub const fn is_terminal(self) -> bool {
        self.rank() == JobState::TERMINAL_RANK
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_state_once_in_rank_order() {
        let ranks: Vec<u8> = JobState::ALL.iter().map(|s| s.rank()).collect();
        assert!(ranks.is_sorted(), "{ranks:?}");
        for (i, s) in JobState::ALL.iter().enumerate() {
            assert!(!JobState::ALL[..i].contains(s), "{s} twice");
        }
    }

    #[test]
    fn live_states_have_distinct_ranks_and_terminal_ones_share_the_top() {
        let live: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(
            live,
            [JobState::Queued, JobState::Dispatched, JobState::Running]
        );
        let live_ranks: Vec<u8> = live.iter().map(|s| s.rank()).collect();
        assert_eq!(live_ranks, [0, 1, 2]);
        for s in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert_eq!(s.rank(), JobState::TERMINAL_RANK, "{s}");
        }
        assert!(live_ranks.iter().all(|r| *r < JobState::TERMINAL_RANK));
    }

    #[test]
    fn names_parse_back_and_match_the_json_form() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(JobState::parse("done"), None);
    }
}
