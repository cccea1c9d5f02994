//! The Redis key schema: every key the store reads or writes is named here, nowhere else (the
//! transition script receives its keys as `KEYS[]`).

use podperf_protocol::outcome::JobState;
use uuid::Uuid;

/// Sorted set: every job id by creation time (ms).
pub const ALL_JOBS: &str = "podperf:jobs";
/// Set: the ids of jobs not yet terminal (what a restarted dispatcher resumes).
pub const ACTIVE: &str = "podperf:jobs:active";
/// Hash: worker id → the last worker info seen (tells "offline" from "unknown").
pub const KNOWN_WORKERS: &str = "podperf:workers:known";
/// String (integer): the fencing epoch of the current leader, incremented by every new leader;
/// a state change carrying an older epoch is refused.
pub const EPOCH: &str = "podperf:leader:epoch";
/// Sorted set: run ids by creation time (ms).
pub const RUNS: &str = "podperf:runs";

/// Hash: one job (`state`, `source_worker`, `record`, `attempts`, `*_at_ms`, ...).
pub fn job(id: Uuid) -> String {
    format!("podperf:job:{id}")
}

/// [`job`] for an id read back from an index (as text).
pub fn job_str(id: &str) -> String {
    format!("podperf:job:{id}")
}

/// Sorted set: ids of the jobs in `state`, by creation time.
pub fn state_index(state: JobState) -> String {
    format!("podperf:jobs:state:{state}")
}

/// Sorted set: ids of the jobs `worker` is the source or the target of, by creation time.
pub fn worker_index(worker: &str) -> String {
    format!("podperf:jobs:worker:{worker}")
}

/// String: one matrix run (JSON).
pub fn run(id: Uuid) -> String {
    format!("podperf:run:{id}")
}

/// String: a submit's claim (its batch's fingerprint and the answer a retry gets), kept for
/// `PODPERF_SUBMIT_ID_TTL_S`.
pub fn submit(id: Uuid) -> String {
    format!("podperf:submit:{id}")
}
