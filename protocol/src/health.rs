//! A sweep round's node × node grid and the health findings computed from it (by
//! `podperf-report`): the output of `podperf sweep` and `podperf health`, and what podperf-web's
//! `podperf_fault{node, finding}` metric names.

use serde::{Deserialize, Serialize};

use crate::job::TransportProtocol;

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
    /// The node has no live worker now, but its workers ran jobs within the look-back
    /// (`--gone-max-age`): its link or its workers went down after the round that could see it.
    Gone,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::CannotSend => "cannot_send",
            FindingKind::Unreachable => "unreachable",
            FindingKind::Isolated => "isolated",
            FindingKind::Slow => "slow",
            FindingKind::Lossy => "lossy",
            FindingKind::Gone => "gone",
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
    /// Set on a bandwidth finding (*slow* in bandwidth): the protocol whose bandwidth was
    /// compared; `value` and `baseline` are then bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TransportProtocol>,
    /// What was measured (RTT in ms, loss in %, the share of failed pairs in %, or with
    /// `protocol` the bandwidth in bits per second).
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
    /// Bandwidth figures (node pair, path class, protocol) taken into account.
    #[serde(default)]
    pub bandwidth_pairs: u32,
    /// Why no bandwidth was taken into account although it was asked for (the look-up of the
    /// latest iperf3 results failed); the sweep round's findings stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_unavailable: Option<String>,
    pub findings: Vec<Finding>,
}

/// The latest bandwidth measured from `src_node` to `dst_node` (the direction the data flowed:
/// an iperf3 `-R` test's target is the sender) for one path class and protocol: what
/// `podperf health` compares besides the sweep grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairBandwidth {
    pub path: SweepPath,
    pub protocol: TransportProtocol,
    pub src_node: String,
    pub dst_node: String,
    /// What the receiver measured.
    pub bits_per_second: f64,
    /// When the test finished (ms since the epoch).
    pub finished_at_ms: u64,
}

/// `GET`/`POST /api/v2/health`: a health report with the sweep round it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// When the round's last sweep finished (ms since the epoch).
    pub round_completed_at_ms: u64,
    /// Seconds between then and this answer.
    pub round_age_s: f64,
    /// Sweeps in the round.
    pub sweeps: u32,
    #[serde(flatten)]
    pub report: HealthReport,
}

/// `POST /api/v2/health`: a sweep round now (the options of `podperf health`). An omitted field
/// takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthRequest {
    /// Echo requests per target, 1..=100.
    pub count: u32,
    /// Time between two requests to one target, 20..=10,000 ms.
    pub interval_ms: u32,
    /// Only these source workers; empty: every live worker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Only these targets; empty: every live worker but the source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Bandwidth results older than this many seconds are not used (0: none are);
    /// 0..=[`BANDWIDTH_MAX_AGE_S_MAX`].
    pub bandwidth_max_age_s: u64,
    /// A node without a live worker whose workers ran jobs within this many seconds is named
    /// `gone` (0: never); 0..=[`BANDWIDTH_MAX_AGE_S_MAX`].
    pub gone_max_age_s: u64,
}

impl HealthRequest {
    /// The sweep round it asks for.
    pub fn round(&self) -> crate::schedule::SweepRound {
        crate::schedule::SweepRound {
            count: self.count,
            interval_ms: self.interval_ms,
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// Every field within its bounds (the same as a scheduled sweep round's).
    pub fn validate(&self) -> Result<(), crate::job::FieldError> {
        use crate::job::FieldError;
        let params = crate::sweep::SweepParams {
            count: self.count,
            interval_ms: self.interval_ms,
            ..Default::default()
        };
        params.validate().map_err(|e| {
            let field = e.field.trim_start_matches("params.").to_string();
            FieldError::new(field, e.message)
        })?;
        for (what, names) in [("from", &self.from), ("to", &self.to)] {
            if names.len() > crate::sweep::bounds::SWEEP_TARGETS_MAX {
                let msg = format!("{} workers named; too many", names.len());
                return Err(FieldError::new(what, msg));
            }
            if names.iter().any(String::is_empty) {
                return Err(FieldError::new(what, "an empty worker name"));
            }
        }
        if self.bandwidth_max_age_s > BANDWIDTH_MAX_AGE_S_MAX {
            let msg = format!(
                "{} s is out of bounds (0..={BANDWIDTH_MAX_AGE_S_MAX} s)",
                self.bandwidth_max_age_s
            );
            return Err(FieldError::new("bandwidth_max_age_s", msg));
        }
        if self.gone_max_age_s > BANDWIDTH_MAX_AGE_S_MAX {
            let msg = format!(
                "{} s is out of bounds (0..={BANDWIDTH_MAX_AGE_S_MAX} s)",
                self.gone_max_age_s
            );
            return Err(FieldError::new("gone_max_age_s", msg));
        }
        Ok(())
    }
}

/// Default of `--bandwidth-max-age` / `bandwidth_max_age_s`: an hour.
pub const BANDWIDTH_MAX_AGE_S_DEFAULT: u64 = 3600;
/// Default of `--gone-max-age` / `gone_max_age_s`: ten minutes.
pub const GONE_MAX_AGE_S_DEFAULT: u64 = 600;
/// Largest `bandwidth_max_age_s` (and `gone_max_age_s`): a week.
pub const BANDWIDTH_MAX_AGE_S_MAX: u64 = 7 * 24 * 3600;

impl Default for HealthRequest {
    fn default() -> Self {
        HealthRequest {
            count: 5,
            interval_ms: 100,
            from: Vec::new(),
            to: Vec::new(),
            bandwidth_max_age_s: BANDWIDTH_MAX_AGE_S_DEFAULT,
            gone_max_age_s: GONE_MAX_AGE_S_DEFAULT,
        }
    }
}
