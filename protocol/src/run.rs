//! Matrix runs: the request, the planned pairs, and the report (medians with their spread, per
//! pair and per path class, and the overlay cost). The aggregation is pure, so it is tested here.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::JobRecord;
use crate::job::{JobKind, TransportProtocol};
use crate::outcome::JobState;
use crate::result::ProbeResult;

/// Most samples per measurement.
pub const SAMPLES_MAX: u32 = 20;

/// The kind of path between two workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathClass {
    /// Pod ↔ pod on one node (through the node's bridge).
    PodSameNode,
    /// Pod ↔ pod on two nodes (through the overlay).
    PodCrossNode,
    /// Host-network worker ↔ host-network worker: the underlay baseline.
    NodeToNode,
}

impl PathClass {
    pub const ALL: [PathClass; 3] = [
        PathClass::PodSameNode,
        PathClass::PodCrossNode,
        PathClass::NodeToNode,
    ];

    /// The row label of the table.
    pub fn label(self) -> &'static str {
        match self {
            PathClass::PodSameNode => "pod ↔ pod, same node",
            PathClass::PodCrossNode => "pod ↔ pod, across nodes",
            PathClass::NodeToNode => "node ↔ node",
        }
    }
}

/// `podperf matrix` options. An omitted field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixRequest {
    /// Every ordered pod pair (and node pair) instead of one pair per path class.
    pub mesh: bool,
    /// Repetitions of each measurement (the report shows the median and the spread).
    pub samples: u32,
    pub ping_count: u32,
    pub iperf3_duration_s: u32,
    /// Adds an iperf3 UDP test (jitter, loss) at `udp_bitrate_bps`.
    pub udp: bool,
    pub udp_bitrate_bps: u64,
    /// Adds one traceroute per pair (hop count).
    pub traceroute: bool,
}

impl Default for MatrixRequest {
    fn default() -> Self {
        MatrixRequest {
            mesh: false,
            samples: 3,
            ping_count: 20,
            iperf3_duration_s: 5,
            udp: false,
            udp_bitrate_bps: 1_000_000_000,
            traceroute: true,
        }
    }
}

/// One measured pair of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPair {
    pub class: PathClass,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: Uuid,
    pub created_at_ms: u64,
    pub request: MatrixRequest,
    pub rounds: u32,
    pub pairs: Vec<RunPair>,
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
}

/// A statistic over samples: the median with its spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: u32,
    /// (max − min) / median above [`TRUST_SPREAD`]: too noisy to trust.
    pub wide: bool,
}

/// Relative spread above which a cell is marked as not to be trusted.
pub const TRUST_SPREAD: f64 = 0.25;

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (min, max) = (v[0], v[n - 1]);
        let wide = median > 0.0 && (max - min) / median > TRUST_SPREAD;
        Some(Spread {
            median,
            min,
            max,
            samples: n as u32,
            wide,
        })
    }
}

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
    /// Jobs of this row that did not succeed.
    pub jobs_failed: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    pub class: PathClass,
    pub source_pod: String,
    pub target_pod: String,
    pub source_node: String,
    pub target_node: String,
    pub source_ip: IpAddr,
    pub target_ip: IpAddr,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub class: PathClass,
    pub pairs: u32,
    #[serde(flatten)]
    pub figures: Figures,
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
}

/// Samples of one pair (or class), collected from its jobs.
#[derive(Default)]
struct Samples {
    tcp_bps: Vec<f64>,
    retransmits: Vec<f64>,
    rtt: Vec<f64>,
    loss: Vec<f64>,
    hops: Vec<u32>,
    udp_bps: Vec<f64>,
    jitter: Vec<f64>,
    udp_lost: Vec<f64>,
    failed: u32,
}

impl Samples {
    fn add(&mut self, rec: &JobRecord) {
        if rec.state.is_terminal() && rec.state != JobState::Succeeded {
            self.failed += 1;
        }
        if rec.state != JobState::Succeeded {
            return;
        }
        match &rec.result {
            Some(ProbeResult::Ping(p)) => {
                self.rtt.extend(p.rtt_avg_ms);
                self.loss.push(p.loss_percent);
            }
            Some(ProbeResult::Iperf3(r)) if r.protocol == TransportProtocol::Tcp => {
                self.tcp_bps.push(r.receiver_bits_per_second);
                self.retransmits.extend(r.retransmits.map(|n| n as f64));
            }
            Some(ProbeResult::Iperf3(r)) => {
                self.udp_bps.push(r.receiver_bits_per_second);
                self.jitter.extend(r.jitter_ms);
                self.udp_lost.extend(r.lost_percent);
            }
            Some(ProbeResult::Traceroute(t)) if t.reached => self.hops.push(t.hop_count() as u32),
            _ => {}
        }
    }

    fn figures(&self) -> Figures {
        let mut hops = self.hops.clone();
        hops.sort_unstable();
        Figures {
            tcp_bits_per_second: Spread::of(&self.tcp_bps),
            tcp_retransmits: Spread::of(&self.retransmits),
            rtt_avg_ms: Spread::of(&self.rtt),
            loss_percent: Spread::of(&self.loss),
            hops: hops.get(hops.len() / 2).copied(),
            udp_bits_per_second: Spread::of(&self.udp_bps),
            udp_jitter_ms: Spread::of(&self.jitter),
            udp_lost_percent: Spread::of(&self.udp_lost),
            jobs_failed: self.failed,
        }
    }
}

/// Builds the report of `run` from its jobs' records (records of other jobs are ignored).
pub fn report(run: &RunRecord, records: &[JobRecord]) -> RunReport {
    let by_id: std::collections::HashMap<Uuid, &JobRecord> =
        records.iter().map(|r| (r.job_id, r)).collect();
    let mut classes: std::collections::BTreeMap<PathClass, (u32, Samples)> = Default::default();
    let mut pairs = Vec::new();
    let (mut done, mut succeeded) = (0, 0);
    for pair in &run.pairs {
        let mut samples = Samples::default();
        let class = classes.entry(pair.class).or_default();
        class.0 += 1;
        for rec in pair.jobs.iter().filter_map(|j| by_id.get(&j.job_id)) {
            done += u32::from(rec.state.is_terminal());
            succeeded += u32::from(rec.state == JobState::Succeeded);
            samples.add(rec);
            class.1.add(rec);
        }
        pairs.push(PairReport {
            class: pair.class,
            source_pod: pair.source_pod.clone(),
            target_pod: pair.target_pod.clone(),
            source_node: pair.source_node.clone(),
            target_node: pair.target_node.clone(),
            source_ip: pair.source_ip,
            target_ip: pair.target_ip,
            figures: samples.figures(),
        });
    }
    let classes: Vec<ClassReport> = classes
        .into_iter()
        .map(|(class, (n, s))| ClassReport {
            class,
            pairs: n,
            figures: s.figures(),
        })
        .collect();
    let jobs = run.pairs.iter().map(|p| p.jobs.len() as u32).sum();
    RunReport {
        progress: RunProgress {
            run_id: run.run_id,
            created_at_ms: run.created_at_ms,
            rounds: run.rounds,
            pairs: run.pairs.len() as u32,
            jobs,
            jobs_done: done,
            jobs_succeeded: succeeded,
            finished: done == jobs,
        },
        request: run.request.clone(),
        overlay_cost: overlay_cost(&classes),
        classes,
        pairs,
    }
}

fn overlay_cost(classes: &[ClassReport]) -> Option<OverlayCost> {
    let get = |c: PathClass| classes.iter().find(|r| r.class == c).map(|r| &r.figures);
    let (pod, node) = (get(PathClass::PodCrossNode)?, get(PathClass::NodeToNode)?);
    let ratio = |a: &Option<Spread>, b: &Option<Spread>| match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    };
    Some(OverlayCost {
        bandwidth_ratio: ratio(&pod.tcp_bits_per_second, &node.tcp_bits_per_second),
        rtt_ratio: ratio(&pod.rtt_avg_ms, &node.rtt_avg_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples), (2.0, 1.0, 3.0, 3));
        assert!(s.wide, "(3-1)/2 = 100 % spread");
        let s = Spread::of(&[10.0, 10.5, 9.9, 10.1]).unwrap();
        assert_eq!(s.median, 10.05);
        assert!(!s.wide);
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn request_defaults() {
        let r: MatrixRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(r, MatrixRequest::default());
        assert_eq!((r.samples, r.ping_count, r.iperf3_duration_s), (3, 20, 5));
    }
}
