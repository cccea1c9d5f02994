//! podperf's wire contract: the types the worker, the dispatcher and the CLI exchange over NATS,
//! the subject/bucket/stream names, and the validation of a job spec. No I/O lives here.
//!
//! # Layout
//! - [`names`]: subjects, KV bucket and stream names.
//! - [`worker`]: the worker info a worker advertises in the liveness bucket.
//! - [`job`]: job specs, per-kind typed parameters with their bounds, validation.
//! - [`command`]: what the dispatcher sends a worker and what the worker answers.
//! - [`outcome`]: job states, failure reasons, the events and results a worker publishes.
//! - [`result`]: the typed measurement results (ping, traceroute, iperf3, noop).
//! - [`api`]: the dispatcher's service API requests, replies and error codes.
//! - [`status`]: `podperf status`: the dispatcher replicas, reachability, queue depth, budgets.
//! - [`sweep`]: fping sweeps (one source, many targets): parameters, resolved targets, result.
//! - [`health`]: a sweep round's node × node grid and the health findings (`podperf health`).
//! - [`run`]: matrix runs: request, planned pairs, the report's types (`podperf-report` computes it).
//! - [`schedule`]: schedules (a sweep round or a matrix run every period), their API's types.

pub mod api;
pub mod command;
pub mod health;
pub mod job;
pub mod names;
pub mod outcome;
pub mod result;
pub mod run;
pub mod schedule;
pub mod status;
pub mod sweep;
mod tagged;
pub mod worker;

/// Milliseconds since the Unix epoch; every timestamp on the wire uses it (`*_at_ms`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
