//! `podperf status` (`podperf.api.status`): the dispatcher replicas and their roles, whether NATS
//! and Redis answer, the queue depth, and each store's use against its budget.

use serde::{Deserialize, Serialize};

/// A dispatcher replica's role: exactly one holds the lease and schedules, delivers and ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dispatcher replica, as it advertises itself in the dispatchers bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatcherInfo {
    pub dispatcher_id: String,
    /// The pod name (`POD_NAME`) or, outside Kubernetes, the host name.
    pub host: String,
    pub pid: u32,
    pub role: Role,
    /// When it took this role (epoch ms).
    pub since_ms: u64,
    pub version: String,
    /// The fencing epoch of its leadership (leaders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// Whether a backend answered the replica that answered, and how fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A store's use against its budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUse {
    /// Results stream: bytes held; `max_bytes`: `PODPERF_RESULTS_MAX_BYTES`.
    pub results_bytes: u64,
    pub results_max_bytes: u64,
    pub results_messages: u64,
    /// Redis: jobs kept (outstanding and terminal); `max_jobs`: `PODPERF_STORE_MAX_JOBS`.
    pub jobs_kept: u64,
    pub jobs_max: u64,
    /// Redis's `used_memory`.
    pub redis_used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// Every replica whose key has not expired, the leader first.
    pub dispatchers: Vec<DispatcherInfo>,
    /// Which replica answered.
    pub answered_by: String,
    pub nats: Reachability,
    pub redis: Reachability,
    /// Jobs not yet terminal (queued, dispatched, running).
    pub queue_depth: u64,
    pub store: StoreUse,
}
