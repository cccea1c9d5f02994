//! What a worker advertises about itself in the liveness bucket.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::job::IpFamily;

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
    /// Every address probes may aim at, `pod_ip` first (the Downward API's `status.podIPs`; the
    /// node's addresses for a host-network worker): one per family on a dual-stack cluster.
    /// Empty in the info of workers older than `--family`, which read as `[pod_ip]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<IpAddr>,
    /// Every address of the node (`status.hostIPs`, where the cluster has it), `node_ip` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ips: Vec<IpAddr>,
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
    /// The addresses probes may aim at: `pod_ip`, then the others of `pod_ips`.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let primary = self.pod_ip;
        std::iter::once(primary).chain(
            self.pod_ips
                .iter()
                .copied()
                .filter(move |ip| *ip != primary),
        )
    }

    /// The address of `family` probes aim at (the primary one when it has that family).
    pub fn address(&self, family: IpFamily) -> Option<IpAddr> {
        self.addresses().find(|ip| IpFamily::of(*ip) == family)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pod_ip: &str, pod_ips: &[&str]) -> WorkerInfo {
        let json = serde_json::json!({
            "worker_id": "w", "pod_name": "p", "pod_ip": pod_ip, "node_name": "n",
            "host_network": false, "tools": [], "iperf3_port": 5201,
            "max_concurrent_jobs": 1, "started_at_ms": 0, "version": "0",
            "pod_ips": pod_ips,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_address_of_a_family_is_the_primary_when_it_has_that_family() {
        let w = info("10.244.1.2", &["10.244.1.2", "fd10:244:1::2"]);
        assert_eq!(
            w.address(IpFamily::Ipv4),
            Some("10.244.1.2".parse().unwrap())
        );
        assert_eq!(
            w.address(IpFamily::Ipv6),
            Some("fd10:244:1::2".parse().unwrap())
        );
        let v6_first = info("fd10:244:1::2", &["fd10:244:1::2", "10.244.1.2"]);
        assert_eq!(v6_first.addresses().count(), 2);
        assert_eq!(
            v6_first.address(IpFamily::Ipv4),
            Some("10.244.1.2".parse().unwrap())
        );
    }

    #[test]
    fn an_old_record_without_the_lists_has_its_pod_ip_only() {
        let mut w = info("10.244.1.2", &[]);
        assert_eq!(w.address(IpFamily::Ipv6), None);
        assert_eq!(
            w.addresses().collect::<Vec<_>>(),
            ["10.244.1.2".parse::<IpAddr>().unwrap()]
        );
        let json = serde_json::to_value(&w).unwrap();
        assert!(
            json.get("pod_ips").is_none() && json.get("node_ips").is_none(),
            "{json}"
        );
        w.node_ips = vec!["fd00:18::1".parse().unwrap()];
        let back: WorkerInfo = serde_json::from_value(serde_json::to_value(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }
}

/// A worker as the dispatcher sees it: its info plus when its key was last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    #[serde(flatten)]
    pub info: WorkerInfo,
    pub last_seen_at_ms: u64,
}
