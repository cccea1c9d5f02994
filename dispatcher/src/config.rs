//! The dispatcher's validated configuration.

use std::time::Duration;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Replicas of the KV bucket and the results stream (3 on a JetStream cluster).
    pub replicas: usize,
    /// The liveness bucket's `max_age`: a worker that stops refreshing is gone after this.
    pub worker_ttl: Duration,
    /// How long a worker whose key expired has to come back before the jobs it holds end
    /// `worker_lost`. A broker restart or a reconnection can let a live worker's key expire; the
    /// same worker (same `started_at_ms`) returning within this keeps its jobs.
    pub lost_grace: Duration,
    /// How long jobs and results stay queryable in Redis (and in the results stream).
    pub retention: Duration,
    /// CIDRs an address target may lie in; empty means only worker targets are allowed.
    pub allowed_cidrs: Vec<IpNet>,
    /// Jobs waiting in the scheduler's queue before submits are refused with `busy`.
    pub max_queued: usize,
    /// How long one delivery attempt waits for the worker's answer.
    pub delivery_timeout: Duration,
    /// Extra time after a job's deadline before the dispatcher declares it `timed_out` (lets the
    /// worker's own timed-out result, with its partial output, arrive first).
    pub deadline_grace: Duration,
    /// iperf3 port assumed for address targets.
    pub default_iperf3_port: u16,
    /// Keep the liveness bucket in memory (cheaper at very large scale) instead of on disk (it
    /// then survives a server restart that keeps its store).
    pub liveness_in_memory: bool,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            replicas: 1,
            worker_ttl: Duration::from_secs(3),
            lost_grace: Duration::from_secs(3),
            retention: Duration::from_secs(7 * 24 * 3600),
            allowed_cidrs: Vec::new(),
            max_queued: 100_000,
            delivery_timeout: Duration::from_secs(2),
            deadline_grace: Duration::from_secs(2),
            default_iperf3_port: 5201,
            liveness_in_memory: false,
        }
    }
}
