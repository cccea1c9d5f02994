//! The worker's validated configuration (built from flags/env by the binary).

use std::net::IpAddr;
use std::time::Duration;

/// Who this worker is, as the Downward API (or flags) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub worker_id: String,
    pub pod_name: String,
    pub pod_namespace: Option<String>,
    pub pod_ip: IpAddr,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    /// Every address of the pod, `pod_ip` first (dual-stack: one per family).
    pub pod_ips: Vec<IpAddr>,
    /// Every address of the node, `node_ip` first.
    pub node_ips: Vec<IpAddr>,
    pub host_network: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    pub identity: Identity,
    /// Port of this worker's `iperf3 -s` (bound to the pod IP).
    pub iperf3_port: u16,
    /// Whether to run and supervise the iperf3 server at all.
    pub iperf3_server: bool,
    /// Port of this worker's `sockperf server` (TCP and UDP, bound to the pod IP).
    pub sockperf_port: u16,
    /// Whether to run and supervise the sockperf servers at all.
    pub sockperf_server: bool,
    /// How often the liveness key is refreshed (the bucket's TTL must be longer).
    pub heartbeat: Duration,
    /// Jobs run at once; more are refused with `at_capacity`.
    pub max_concurrent_jobs: u32,
    /// On SIGTERM, how long jobs in hand may still run before they are stopped.
    pub shutdown_grace: Duration,
    /// Raw tool output kept per stream (stdout, stderr), in bytes.
    pub raw_output_cap_bytes: usize,
}

impl WorkerConfig {
    /// A configuration with the defaults for everything but the identity.
    pub fn new(identity: Identity) -> Self {
        WorkerConfig {
            identity,
            iperf3_port: 5201,
            iperf3_server: true,
            sockperf_port: podperf_protocol::worker::DEFAULT_SOCKPERF_PORT,
            sockperf_server: true,
            heartbeat: Duration::from_secs(1),
            max_concurrent_jobs: 8,
            shutdown_grace: Duration::from_secs(10),
            raw_output_cap_bytes: 64 * 1024,
        }
    }
}
