//! The dispatcher's validated configuration.

use std::time::Duration;

use ipnet::IpNet;

#[derive(Debug, Clone)]
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
    /// How long the leader lease lasts without a renewal: a standby takes over at most this long
    /// after the leader died (at once when it shut down cleanly).
    pub leader_ttl: Duration,
    /// The results stream's byte budget: at it, the oldest messages are dropped.
    pub results_max_bytes: u64,
    /// Terminal jobs the Redis store keeps; the oldest are trimmed beyond it (outstanding jobs
    /// never are).
    pub store_max_jobs: u64,
    /// The shortest period a schedule may have (`PODPERF_SCHEDULE_MIN_EVERY_MS`; 10 s unless
    /// lowered for tests).
    pub schedule_min_every: Duration,
    /// How long a submit id's claim is kept (`PODPERF_SUBMIT_ID_TTL_S`): a retry within it is
    /// answered from the first submit; capped by the retention.
    pub submit_id_ttl: Duration,
    /// This replica, as advertised to `podperf status`.
    pub identity: crate::lease::Identity,
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
            leader_ttl: Duration::from_millis(DEFAULT_LEADER_TTL_MS),
            results_max_bytes: DEFAULT_RESULTS_MAX_BYTES,
            store_max_jobs: DEFAULT_STORE_MAX_JOBS,
            schedule_min_every: Duration::from_millis(
                podperf_protocol::schedule::bounds::EVERY_MS_MIN,
            ),
            submit_id_ttl: Duration::from_secs(podperf_protocol::api::SUBMIT_ID_TTL_S),
            identity: crate::lease::Identity::new(),
        }
    }
}

/// `PODPERF_LEADER_TTL_MS` by default.
pub const DEFAULT_LEADER_TTL_MS: u64 = 3000;
/// `PODPERF_RESULTS_MAX_BYTES` by default: 1 GiB (≈ 1 million noop/ping results).
pub const DEFAULT_RESULTS_MAX_BYTES: u64 = 1 << 30;
/// `PODPERF_STORE_MAX_JOBS` by default: 500,000 terminal jobs (≈ 1 GiB of Redis at ~2 KB each).
pub const DEFAULT_STORE_MAX_JOBS: u64 = 500_000;
