//! Matrix runs: the request, the planned pairs, and the report (medians with their spread, per
//! pair and per path class, and the overlay cost). Only the types live here: the report is
//! computed from the jobs' records by `podperf-report`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{IpFamily, JobKind, TransportProtocol};

/// Most samples per measurement, fixed or added by `--samples auto`.
pub const SAMPLES_MAX: u32 = 20;

/// `--samples auto` stops adding samples to a cell once its 95 % confidence interval's
/// half-width is within this share of its mean (5 %).
pub const CONVERGED_HALF_WIDTH: f64 = 0.05;

/// `--samples auto` adds samples up to this many per measurement unless the request sets fewer
/// (`samples_auto_max`).
pub const SAMPLES_AUTO_MAX: u32 = SAMPLES_MAX;

/// Bounds of `tolerance_percent` (a share of the node ↔ node bandwidth).
pub const TOLERANCE_PERCENT_MAX: f64 = 100.0;

/// Bounds of `max_rtt_ratio`: above 0, at most this.
pub const MAX_RTT_RATIO_MAX: f64 = 10_000.0;

/// The kind of path between two workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathClass {
    /// Pod ↔ pod on one node (through the node's bridge).
    PodSameNode,
    /// Pod ↔ pod on two nodes (through the overlay).
    PodCrossNode,
    /// A pod-network worker to a host-network worker on another node (through the overlay's
    /// node end: on Flannel the remote node's `flannel.1`).
    PodToNode,
    /// A host-network worker to a pod-network worker on another node.
    NodeToPod,
    /// Host-network worker ↔ host-network worker: the underlay baseline.
    NodeToNode,
}

impl PathClass {
    pub const ALL: [PathClass; 5] = [
        PathClass::PodSameNode,
        PathClass::PodCrossNode,
        PathClass::PodToNode,
        PathClass::NodeToPod,
        PathClass::NodeToNode,
    ];

    /// The row label of the table.
    pub fn label(self) -> &'static str {
        match self {
            PathClass::PodSameNode => "pod ↔ pod, same node",
            PathClass::PodCrossNode => "pod ↔ pod, across nodes",
            PathClass::PodToNode => "pod → node, across nodes",
            PathClass::NodeToPod => "node → pod, across nodes",
            PathClass::NodeToNode => "node ↔ node",
        }
    }
}

/// `podperf matrix --family 4|6|both`: the address family (families) the pairs are measured over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatrixFamily {
    #[default]
    #[serde(rename = "ipv4", alias = "4")]
    Ipv4,
    #[serde(rename = "ipv6", alias = "6")]
    Ipv6,
    /// Every pair once per family: a row per family.
    #[serde(rename = "both")]
    Both,
}

impl MatrixFamily {
    /// The families measured, IPv4 first.
    pub fn families(self) -> &'static [IpFamily] {
        match self {
            MatrixFamily::Ipv4 => &[IpFamily::Ipv4],
            MatrixFamily::Ipv6 => &[IpFamily::Ipv6],
            MatrixFamily::Both => &IpFamily::ALL,
        }
    }

    fn is_default(&self) -> bool {
        *self == MatrixFamily::Ipv4
    }
}

/// `podperf matrix` options. An omitted field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixRequest {
    /// Every ordered pod pair (and node pair) instead of one pair per path class.
    pub mesh: bool,
    /// The family of the addresses measured (`both`: every pair over each, a row per family).
    #[serde(skip_serializing_if = "MatrixFamily::is_default")]
    pub family: MatrixFamily,
    /// Repetitions of each measurement (the report shows the median and the spread); with
    /// `samples_auto`, the first count.
    pub samples: u32,
    /// `--samples auto`: the dispatcher adds samples to every row whose 95 % confidence
    /// intervals are wider than [`CONVERGED_HALF_WIDTH`] of their mean, up to
    /// [`SAMPLES_AUTO_MAX`] per measurement.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub samples_auto: bool,
    /// `--max-samples`: with `samples_auto`, the bound (`samples`..=[`SAMPLES_AUTO_MAX`]).
    #[serde(skip_serializing_if = "is_samples_auto_max")]
    pub samples_auto_max: u32,
    /// `--tolerance`: the run fails its gate when pod ↔ pod across nodes is more than this many
    /// percent below node ↔ node in TCP bandwidth (k8s-netperf's `--tcp-tolerance`), 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance_percent: Option<f64>,
    /// `--max-rtt-ratio`: the run fails its gate when pod ↔ pod across nodes has an RTT more
    /// than this many times node ↔ node's (above 0, at most [`MAX_RTT_RATIO_MAX`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rtt_ratio: Option<f64>,
    pub ping_count: u32,
    pub iperf3_duration_s: u32,
    /// Adds an iperf3 UDP test (jitter, loss) at `udp_bitrate_bps`.
    pub udp: bool,
    pub udp_bitrate_bps: u64,
    /// Adds one traceroute per pair (hop count).
    pub traceroute: bool,
    /// Adds a sockperf TCP ping-pong per sample (and a UDP one with `udp`): the latency
    /// percentiles.
    pub latency: bool,
    /// Length of each latency test, seconds.
    pub latency_duration_s: u32,
    /// Adds one `mtu` job per pair (path MTU, DF black hole).
    pub mtu: bool,
    /// Makes `runs.start` idempotent as [`crate::api::SubmitRequest::submit_id`] makes a submit:
    /// a retry with the same id is answered the run already started. Not kept in the run's
    /// record; ignored in a schedule's request (each of its runs is a new one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_id: Option<Uuid>,
}

fn is_samples_auto_max(n: &u32) -> bool {
    *n == SAMPLES_AUTO_MAX
}

impl Default for MatrixRequest {
    fn default() -> Self {
        MatrixRequest {
            mesh: false,
            family: MatrixFamily::Ipv4,
            samples: 3,
            samples_auto: false,
            samples_auto_max: SAMPLES_AUTO_MAX,
            tolerance_percent: None,
            max_rtt_ratio: None,
            ping_count: 20,
            iperf3_duration_s: 5,
            udp: false,
            udp_bitrate_bps: 1_000_000_000,
            traceroute: true,
            latency: true,
            latency_duration_s: 1,
            mtu: true,
            submit_id: None,
        }
    }
}

/// One measured pair of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPair {
    pub class: PathClass,
    /// The family of `source_ip` and `target_ip` (absent in runs made before `--family`: IPv4).
    #[serde(default)]
    pub family: IpFamily,
    pub source: String,
    pub source_pod: String,
    pub source_node: String,
    pub source_ip: IpAddr,
    pub target: String,
    pub target_pod: String,
    pub target_node: String,
    pub target_ip: IpAddr,
    /// The scheduling round (0-based): pairs of one round touch disjoint nodes.
    pub round: u32,
    pub jobs: Vec<RunJob>,
}

/// One job of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJob {
    pub job_id: Uuid,
    pub kind: JobKind,
    /// `tcp` or `udp` for iperf3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TransportProtocol>,
    pub sample: u32,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: Uuid,
    pub created_at_ms: u64,
    pub request: MatrixRequest,
    pub rounds: u32,
    pub pairs: Vec<RunPair>,
    /// The schedule that started the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `--samples auto`: whether the dispatcher is still adding samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
}

/// A `--samples auto` run's sampling, as the dispatcher drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Samples may still be added (the run is not finished).
    Adding,
    /// No more samples will be added.
    Done,
}

/// Where a row's (or the run's) `--samples auto` sampling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingState {
    /// Samples are still being added.
    Sampling,
    /// Every confidence interval of the row is within [`CONVERGED_HALF_WIDTH`] of its mean.
    Converged,
    /// The request's bound (`samples_auto_max`) reached and still wider.
    BoundReached,
    /// The dispatcher replica that added samples stopped before either (the run ends with the
    /// samples it has).
    Stopped,
}

impl RunRecord {
    pub fn job_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.pairs
            .iter()
            .flat_map(|p| p.jobs.iter().map(|j| j.job_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: Uuid,
    pub rounds: u32,
    pub pairs: u32,
    pub job_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunIdRequest {
    pub run_id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRunsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRunsReply {
    pub runs: Vec<RunProgress>,
}

/// How far a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    pub run_id: Uuid,
    pub created_at_ms: u64,
    pub rounds: u32,
    pub pairs: u32,
    pub jobs: u32,
    pub jobs_done: u32,
    pub jobs_succeeded: u32,
    pub finished: bool,
    /// The schedule that started the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// A statistic over samples: the median with its spread, and the 95 % confidence interval of
/// the mean (Student's t with `samples − 1` degrees of freedom: mean ± t₀.₉₇₅ · s / √n).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: u32,
    /// (max − min) / median above [`TRUST_SPREAD`]: too noisy to trust.
    pub wide: bool,
    /// The mean of the samples: the estimate the confidence interval is about (absent in
    /// reports made before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Lower end of the 95 % confidence interval of the mean; absent with one sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95_low: Option<f64>,
    /// Upper end of the 95 % confidence interval of the mean; absent with one sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95_high: Option<f64>,
}

impl Spread {
    /// The confidence interval's half-width as a share of the mean (0.03 = ±3 %); `None`
    /// without an interval, or a mean of zero with a non-zero width.
    pub fn ci95_relative(&self) -> Option<f64> {
        let (low, high, mean) = (self.ci95_low?, self.ci95_high?, self.mean?);
        let half = (high - low) / 2.0;
        if half == 0.0 {
            return Some(0.0);
        }
        (mean != 0.0).then(|| half / mean.abs())
    }

    /// Whether `--samples auto` may stop: the interval is within [`CONVERGED_HALF_WIDTH`].
    pub fn converged(&self) -> bool {
        self.ci95_relative()
            .is_some_and(|r| r <= CONVERGED_HALF_WIDTH)
    }
}

/// Relative spread above which a cell is marked as not to be trusted. It defines what `wide`
/// means on the wire (the CLI's legend names it); `podperf-report` applies it.
pub const TRUST_SPREAD: f64 = 0.25;

/// The measured figures of a pair or a class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_bits_per_second: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_retransmits: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_percent: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_bits_per_second: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_jitter_ms: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_lost_percent: Option<Spread>,
    /// Full round trip, TCP ping-pong: the median over samples of each sample's p50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<Spread>,
    /// Full round trip, TCP ping-pong: the median over samples of each sample's p99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_latency_p50_ms: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_latency_p99_ms: Option<Spread>,
    /// The smallest path MTU measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_mtu_bytes: Option<u32>,
    /// The largest first-link MTU seen at the source (its own interface): above the path MTU,
    /// every new flow needs path-MTU discovery to work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_mtu_bytes: Option<u32>,
    /// Some DF ping at the path MTU lost every packet: an MTU black hole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mtu_black_hole: bool,
    /// Jobs of this row that did not succeed.
    pub jobs_failed: u32,
}

/// VXLAN's encapsulation: what a pod path over a VXLAN overlay loses against its node path.
pub const VXLAN_OVERHEAD_BYTES: u32 = 50;

/// An overlay MTU fault the matrix found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtuProblem {
    /// `pod_mtu_exceeds_underlay` or `black_hole`.
    pub kind: String,
    /// What is wrong, in words.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_path_mtu_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_path_mtu_bytes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    pub class: PathClass,
    #[serde(default)]
    pub family: IpFamily,
    pub source_pod: String,
    pub target_pod: String,
    pub source_node: String,
    pub target_node: String,
    pub source_ip: IpAddr,
    pub target_ip: IpAddr,
    #[serde(flatten)]
    pub figures: Figures,
    /// The pair's jobs (every kind and sample), so a report links to each measurement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub class: PathClass,
    /// The family the row was measured over (`--family both` makes a row per family).
    #[serde(default)]
    pub family: IpFamily,
    pub pairs: u32,
    /// `--samples auto`: where this row's sampling stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingState>,
    #[serde(flatten)]
    pub figures: Figures,
}

impl Figures {
    /// The figures `--samples auto` waits on: TCP bandwidth, RTT and the TCP latency p50 (those
    /// measured). Retransmits, loss, jitter and the p99 are too uneven to converge on.
    pub fn sampled(&self) -> impl Iterator<Item = &Spread> {
        [
            &self.tcp_bits_per_second,
            &self.rtt_avg_ms,
            &self.latency_p50_ms,
        ]
        .into_iter()
        .flatten()
    }
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    Pass,
    Fail,
}

/// The run's gate (`--tolerance`, `--max-rtt-ratio`): each check and the whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `fail` when any check failed (or could not be made).
    pub status: VerdictStatus,
    pub checks: Vec<GateCheck>,
}

/// One check of the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// `tcp_tolerance` (`measured` = percent pod ↔ pod across nodes is below node ↔ node in
    /// TCP bandwidth; `limit` = the tolerance in percent) or `max_rtt_ratio` (`measured` = pod
    /// ↔ pod across nodes RTT / node ↔ node RTT; `limit` = the largest ratio that passes).
    pub check: String,
    /// `fail` also when either row was not measured.
    pub status: VerdictStatus,
    pub limit: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    /// What was found, in words.
    pub message: String,
}

/// Pod across nodes against node ↔ node: what the overlay costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayCost {
    /// Pod cross-node bandwidth / node ↔ node bandwidth (0.84 = 16 % less).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_ratio: Option<f64>,
    /// Pod cross-node RTT / node ↔ node RTT (1.68 = 68 % more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ratio: Option<f64>,
}

/// `runs.get`: the run's progress and, as far as measured, its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub progress: RunProgress,
    pub request: MatrixRequest,
    pub classes: Vec<ClassReport>,
    pub pairs: Vec<PairReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_cost: Option<OverlayCost>,
    /// Overlay MTU faults (empty when none was found or nothing was measured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mtu_problems: Vec<MtuProblem>,
    /// `--samples auto`: `converged` when every row converged, `bound_reached` when some row
    /// reached [`SAMPLES_AUTO_MAX`] first, `sampling` while samples are added, `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingState>,
    /// The gate's verdict when the request set `tolerance_percent` or `max_rtt_ratio` (and the
    /// run is finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_defaults() {
        let r: MatrixRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(r, MatrixRequest::default());
        assert_eq!((r.samples, r.ping_count, r.iperf3_duration_s), (3, 20, 5));
    }
}
