//! A sweep round's node × node grid and the health findings computed from it (by
//! `podperf-report`): the output of `podperf sweep` and `podperf health`, and what podperf-web's
//! `podperf_fault{node, finding}` metric names.

use serde::{Deserialize, Serialize};

/// The path between a sweep's source and one target (the `path` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepPath {
    PodSameNode,
    PodCrossNode,
    NodeToNode,
    PodToNode,
    NodeToPod,
}

impl SweepPath {
    /// The path from a worker on `src_node` to one on `dst_node`.
    pub fn of(src_node: &str, src_host: bool, dst_node: &str, dst_host: bool) -> SweepPath {
        match (src_host, dst_host) {
            (false, false) if src_node == dst_node => SweepPath::PodSameNode,
            (false, false) => SweepPath::PodCrossNode,
            (true, true) => SweepPath::NodeToNode,
            (false, true) => SweepPath::PodToNode,
            (true, false) => SweepPath::NodeToPod,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SweepPath::PodSameNode => "pod_same_node",
            SweepPath::PodCrossNode => "pod_cross_node",
            SweepPath::NodeToNode => "node_to_node",
            SweepPath::PodToNode => "pod_to_node",
            SweepPath::NodeToPod => "node_to_pod",
        }
    }
}

/// One cell of the grid: every worker pair of one path class from `src_node` to `dst_node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridCell {
    pub path: SweepPath,
    pub src_node: String,
    pub dst_node: String,
    /// Worker pairs summed into this cell.
    pub pairs: u32,
    pub sent: u32,
    pub received: u32,
    pub loss_percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    /// Mean of the pairs' averages, weighted by replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
}

/// A source whose sweep brought back no result (timed out, worker lost, tool error, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedSweep {
    pub worker_id: String,
    pub node: String,
    /// The job's terminal state.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A sweep round: one sweep per worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepGrid {
    pub sweeps: u32,
    pub cells: Vec<GridCell>,
    pub failed: Vec<FailedSweep>,
}

/// What `podperf health` can name (the `finding` label of `podperf_fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The node's probes to most other nodes fail.
    CannotSend,
    /// Most other nodes cannot reach the node (or, with `peer`, that one node cannot).
    Unreachable,
    /// Both: the node neither reaches nor is reached.
    Isolated,
    /// The node's round trips are far above the cluster's median for the path class.
    Slow,
    /// The node's loss is far above the rest of the cluster's.
    Lossy,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::CannotSend => "cannot_send",
            FindingKind::Unreachable => "unreachable",
            FindingKind::Isolated => "isolated",
            FindingKind::Slow => "slow",
            FindingKind::Lossy => "lossy",
        }
    }
}

/// One thing wrong, e.g. `node-5 slow: pod_cross_node RTT 6.1 ms vs 0.11 ms median`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub finding: FindingKind,
    pub node: String,
    /// For a single pair: the node that cannot reach `node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<SweepPath>,
    /// What was measured (RTT in ms, loss in %, or the share of failed pairs in %).
    pub value: f64,
    /// What the rest of the cluster shows for the same figure.
    pub baseline: f64,
    pub message: String,
}

/// `podperf health`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub nodes: u32,
    pub findings: Vec<Finding>,
}
