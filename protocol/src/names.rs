//! NATS subjects, the liveness KV bucket and the results stream: the names all components share.

use uuid::Uuid;

/// KV bucket holding one key per live worker (key = worker id, value = [`crate::worker::WorkerInfo`]).
pub const WORKERS_BUCKET: &str = "podperf-workers";
/// JetStream stream holding every job event and terminal result.
pub const RESULTS_STREAM: &str = "PODPERF_RESULTS";
/// Durable consumer the dispatcher ingests results with.
pub const RESULTS_CONSUMER: &str = "podperf-dispatcher";
/// Subjects captured by [`RESULTS_STREAM`].
pub const RESULTS_STREAM_SUBJECTS: [&str; 2] = ["podperf.results.>", "podperf.events.>"];
/// Prefix of terminal results.
pub const RESULTS_PREFIX: &str = "podperf.results.";
/// Prefix of life-cycle events.
pub const EVENTS_PREFIX: &str = "podperf.events.";

/// The dispatcher's micro service name (`$SRV.PING.podperf` discovers it).
pub const SERVICE_NAME: &str = "podperf";
/// Every API endpoint lives under this prefix.
pub const API_PREFIX: &str = "podperf.api";

/// API endpoints, relative to [`API_PREFIX`].
pub mod endpoint {
    pub const WORKERS_LIST: &str = "workers.list";
    pub const JOBS_SUBMIT: &str = "jobs.submit";
    pub const JOBS_GET: &str = "jobs.get";
    pub const JOBS_LIST: &str = "jobs.list";
    pub const JOBS_CANCEL: &str = "jobs.cancel";
    pub const RUNS_START: &str = "runs.start";
    pub const RUNS_GET: &str = "runs.get";
    pub const RUNS_LIST: &str = "runs.list";
}

/// Full subject of an API endpoint, e.g. `podperf.api.jobs.submit`.
pub fn api_subject(endpoint: &str) -> String {
    format!("{API_PREFIX}.{endpoint}")
}

/// The subject a worker listens on for its jobs.
pub fn job_subject(worker_id: &str) -> String {
    format!("podperf.jobs.{worker_id}")
}

pub fn result_subject(job_id: Uuid) -> String {
    format!("{RESULTS_PREFIX}{job_id}")
}

pub fn event_subject(job_id: Uuid) -> String {
    format!("{EVENTS_PREFIX}{job_id}")
}

/// Core-NATS notice the dispatcher publishes once a job's terminal state is stored (payload: the
/// job's record as JSON). Clients waiting for a job subscribe to it instead of polling.
pub fn done_subject(job_id: Uuid) -> String {
    format!("{DONE_PREFIX}{job_id}")
}

/// Prefix of [`done_subject`]s.
pub const DONE_PREFIX: &str = "podperf.done.";

/// Inbox prefixes (replies, JetStream acks) of each role's connections, so that the broker's
/// permissions can give every role its own inbox (`broker-config/auth.conf`): a worker's
/// credential cannot read the replies the dispatcher or the CLI get.
pub const WORKER_INBOX_PREFIX: &str = "_INBOX_worker";
pub const DISPATCHER_INBOX_PREFIX: &str = "_INBOX_dispatcher";
pub const CLI_INBOX_PREFIX: &str = "_INBOX_cli";
pub const WEB_INBOX_PREFIX: &str = "_INBOX_web";

/// A worker id becomes a subject token and a KV key: 1–128 of `[A-Za-z0-9_-]`.
pub fn is_valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_are_subject_safe() {
        assert!(is_valid_worker_id("0f9c2d6e-1b7a-4a55-9a0e-3f1f0e7c9a11"));
        assert!(!is_valid_worker_id(""));
        assert!(!is_valid_worker_id("a.b"));
        assert!(!is_valid_worker_id("a*"));
        assert!(!is_valid_worker_id("a>"));
        assert!(!is_valid_worker_id("a b"));
        assert!(!is_valid_worker_id(&"x".repeat(129)));
    }
}
