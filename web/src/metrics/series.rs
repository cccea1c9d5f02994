//! The families of `/metrics` (k8s/monitoring/README.md is their contract), their label sets,
//! and the one registry they are registered in.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of `podperf_rtt_seconds`'s buckets, 50 µs … 1 s (with `+Inf`: 15 buckets).
pub const RTT_BUCKETS_S: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
];

/// `dst_node` of the series summed per source node, above `PODPERF_METRICS_MAX_PAIRS`.
pub const ANY_NODE: &str = "*";

/// A node pair and the class of the path between them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PairLabels {
    pub src_node: String,
    pub dst_node: String,
    pub path: String,
}

/// [`PairLabels`] and `tcp` / `udp`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct BandwidthLabels {
    pub src_node: String,
    pub dst_node: String,
    pub path: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    pub state: String,
}

/// `network`: `pod` or `host`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub node: String,
    pub network: String,
}

/// A schedule by its name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabels {
    pub schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub node: String,
    pub finding: String,
}

/// The label set of a series that has none: a family keyed by it is a gauge that can be absent
/// (no value yet) instead of reading 0.
pub type NoLabels = Vec<(String, String)>;

type FloatGauge = Gauge<f64, AtomicU64>;

fn rtt_histogram() -> Histogram {
    Histogram::new(RTT_BUCKETS_S.iter().copied())
}

/// Every family, cloned handles of what the registry holds.
#[derive(Clone)]
pub struct Families {
    pub rtt: Family<PairLabels, Histogram, fn() -> Histogram>,
    pub sent: Family<PairLabels, Counter>,
    pub received: Family<PairLabels, Counter>,
    pub bandwidth: Family<BandwidthLabels, FloatGauge>,
    pub retransmits: Family<PairLabels, Gauge>,
    pub overlay_ratio: Family<NoLabels, FloatGauge>,
    pub jobs: Family<JobLabels, Counter>,
    pub workers: Family<WorkerLabels, Gauge>,
    pub round_completed: Family<NoLabels, FloatGauge>,
    pub queue_depth: Family<NoLabels, Gauge>,
    pub fault: Family<FaultLabels, Gauge>,
    pub schedule_last_run: Family<ScheduleLabels, FloatGauge>,
    pub schedule_succeeded: Family<ScheduleLabels, Gauge>,
}

impl Families {
    /// The families, registered in a new registry. Counter names go without `_total` (the
    /// encoder appends it).
    pub fn register() -> (Families, Registry) {
        let f = Families {
            rtt: Family::new_with_constructor(rtt_histogram as fn() -> Histogram),
            sent: Family::default(),
            received: Family::default(),
            bandwidth: Family::default(),
            retransmits: Family::default(),
            overlay_ratio: Family::default(),
            jobs: Family::default(),
            workers: Family::default(),
            round_completed: Family::default(),
            queue_depth: Family::default(),
            fault: Family::default(),
            schedule_last_run: Family::default(),
            schedule_succeeded: Family::default(),
        };
        let mut r = Registry::default();
        r.register(
            "podperf_rtt_seconds",
            "Round-trip time of every probe (ping replies, sweep targets) per node pair and path class",
            f.rtt.clone(),
        );
        r.register(
            "podperf_probe_packets_sent",
            "Probe packets sent (ping, sweep) per node pair and path class",
            f.sent.clone(),
        );
        r.register(
            "podperf_probe_packets_received",
            "Probe replies received (ping, sweep) per node pair and path class",
            f.received.clone(),
        );
        r.register(
            "podperf_bandwidth_bytes_per_second",
            "Latest iperf3 throughput (receiver side, bytes/s) per node pair, path class and protocol",
            f.bandwidth.clone(),
        );
        r.register(
            "podperf_tcp_retransmits",
            "Retransmits of the latest TCP iperf3 result per node pair and path class",
            f.retransmits.clone(),
        );
        r.register(
            "podperf_overlay_bandwidth_ratio",
            "Pod-to-pod across nodes over node-to-node TCP bandwidth (latest results)",
            f.overlay_ratio.clone(),
        );
        r.register(
            "podperf_jobs",
            "Jobs that reached a terminal state",
            f.jobs.clone(),
        );
        r.register(
            "podperf_workers",
            "Live workers per node and network (pod, host)",
            f.workers.clone(),
        );
        r.register(
            "podperf_sweep_round_last_completed_timestamp_seconds",
            "When the last full-mesh sweep round completed (Unix time)",
            f.round_completed.clone(),
        );
        r.register(
            "podperf_queue_depth",
            "Jobs queued or running in the dispatcher",
            f.queue_depth.clone(),
        );
        r.register(
            "podperf_fault",
            "1 while podperf health names the node (latest complete sweep round)",
            f.fault.clone(),
        );
        r.register(
            "podperf_schedule_last_run_timestamp_seconds",
            "Start of each schedule's last run (Unix time)",
            f.schedule_last_run.clone(),
        );
        r.register(
            "podperf_schedule_last_run_succeeded",
            "1 if the schedule's last finished run's jobs all succeeded, else 0",
            f.schedule_succeeded.clone(),
        );
        (f, r)
    }

    /// Removes every series of the node-pair families (a change of the pair mode).
    pub fn clear_pairs(&self) {
        self.rtt.clear();
        self.sent.clear();
        self.received.clear();
        self.bandwidth.clear();
        self.retransmits.clear();
    }

    /// Removes the node-pair series of `labels`.
    pub fn remove_pair(&self, labels: &PairLabels) {
        self.rtt.remove(labels);
        self.sent.remove(labels);
        self.received.remove(labels);
        self.retransmits.remove(labels);
    }
}
