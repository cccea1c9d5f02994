//! What a worker advertises about itself in the liveness bucket.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A worker's identity and capabilities; the value of its key in `podperf-workers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The pod UID (`POD_UID`), else a generated UUID.
    pub worker_id: String,
    pub pod_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    /// The address probes toward this worker aim at (the node IP for a host-network worker).
    pub pod_ip: IpAddr,
    pub node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<IpAddr>,
    /// Shares the node's network namespace: its measurements are the underlay baseline.
    pub host_network: bool,
    /// The tools found at start, with their versions; a missing tool is listed as unavailable.
    pub tools: Vec<ToolInfo>,
    /// Port of the worker's own `iperf3 -s`.
    pub iperf3_port: u16,
    /// Port of the worker's own `sockperf server` (TCP and UDP); absent in the info of workers
    /// older than the `latency` kind, which read as the default.
    #[serde(default = "default_sockperf_port")]
    pub sockperf_port: u16,
    /// Jobs it runs at once.
    pub max_concurrent_jobs: u32,
    pub started_at_ms: u64,
    /// podperf version of the worker binary.
    pub version: String,
}

/// sockperf's own default port.
pub const DEFAULT_SOCKPERF_PORT: u16 = 11111;

fn default_sockperf_port() -> u16 {
    DEFAULT_SOCKPERF_PORT
}

impl WorkerInfo {
    /// Whether `tool` was found on this worker.
    pub fn has_tool(&self, tool: Tool) -> bool {
        self.tools.iter().any(|t| t.tool == tool && t.available)
    }
}

/// The external tools a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Ping,
    Traceroute,
    Iperf3,
    Fping,
    /// `sockperf` (kind `latency`).
    Sockperf,
    /// `tracepath` from iputils (kind `mtu`).
    Tracepath,
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::Ping,
        Tool::Traceroute,
        Tool::Iperf3,
        Tool::Fping,
        Tool::Sockperf,
        Tool::Tracepath,
    ];

    /// The program name looked up on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Ping => "ping",
            Tool::Traceroute => "traceroute",
            Tool::Iperf3 => "iperf3",
            Tool::Fping => "fping",
            Tool::Sockperf => "sockperf",
            Tool::Tracepath => "tracepath",
        }
    }
}

/// One tool as found (or not) on the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub tool: Tool,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A worker as the dispatcher sees it: its info plus when its key was last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    #[serde(flatten)]
    pub info: WorkerInfo,
    pub last_seen_at_ms: u64,
}
