//! [`Metrics`]: what the followers feed (workers joining and leaving, results, terminal jobs,
//! the queue depth) turned into series, with the cardinality plan of k8s/monitoring/README.md:
//! per node pair (never per pod pair), summed per source node (`dst_node="*"`) above
//! `PODPERF_METRICS_MAX_PAIRS` node pairs, and every series of a node removed once its last
//! worker has left. No I/O: the followers and the benchmark feed it alike.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use podperf_protocol::api::JobRecord;
use podperf_protocol::health::{HealthAnswer, HealthReport, PairBandwidth, SweepPath};
use podperf_protocol::job::{JobKind, JobParams, TransportProtocol};
use podperf_protocol::outcome::{JobOutcome, JobState};
use podperf_protocol::result::{Iperf3Result, PingResult, ProbeResult};
use podperf_protocol::schedule::{RunOutcome, Schedule};
use podperf_protocol::sweep::{SweepParams, SweepResult};
use podperf_protocol::worker::WorkerInfo;
use prometheus_client::registry::Registry;

use super::round::{Completed, Round};
use super::series::{BandwidthLabels, Families, FaultLabels, JobLabels, PairLabels, WorkerLabels};
use super::series::{NoLabels, ScheduleLabels, ANY_NODE};

/// Largest `PODPERF_METRICS_MAX_PAIRS` (1,000 nodes all per pair).
pub const MAX_PAIRS_LIMIT: u64 = 1_000_000;
/// Default `PODPERF_METRICS_MAX_PAIRS`: per node pair up to 32 nodes (≈ 77,000 series with pod
/// and host-network workers on every node); summed per source node above.
pub const MAX_PAIRS_DEFAULT: u64 = 1_000;
/// Bandwidth results older than this (by their end) are not given to `podperf health` when a
/// round completes (the CLI's and the API's `--bandwidth-max-age` default).
pub const HEALTH_BANDWIDTH_MAX_AGE_MS: u64 =
    podperf_protocol::health::BANDWIDTH_MAX_AGE_S_DEFAULT * 1000;
/// The `finding` label of a *slow* finding about bandwidth (`slow` is about RTT).
pub const SLOW_BANDWIDTH: &str = "slow_bandwidth";

/// The exporter's state and its registry. Cheap to share (`Arc`); every change takes one lock.
pub struct Metrics {
    registry: Registry,
    f: Families,
    max_pairs: u64,
    state: Mutex<State>,
    /// The findings of the latest completed round.
    latest: Mutex<Option<Latest>>,
}

/// The latest completed round's health.
struct Latest {
    completed_at_ms: u64,
    sweeps: u32,
    report: HealthReport,
}

#[derive(Default)]
struct State {
    /// Live workers by id.
    workers: HashMap<String, WorkerInfo>,
    /// Live workers per node.
    nodes: HashMap<String, usize>,
    /// Node pairs get their own series (else summed per source node).
    per_pair: bool,
    /// Label sets present in the pair families (to remove a departed node's).
    pairs: HashSet<PairLabels>,
    /// Latest bandwidth per label set (to remove a node's, and for the overlay ratio).
    bandwidth: HashMap<BandwidthLabels, f64>,
    /// Worker label sets present in `podperf_workers`.
    worker_series: HashSet<WorkerLabels>,
    /// The sweep round being gathered.
    round: Round,
    /// The latest TCP bandwidth per (path class, sending node, receiving node), always per
    /// node pair (whatever the series' mode), for `podperf health`.
    health_bandwidth: HashMap<(SweepPath, String, String), PairBandwidth>,
    /// Schedules with series.
    schedules: HashSet<String>,
}

/// Where a worker lives: its node and its network.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    node: String,
    host: bool,
}

impl Metrics {
    /// `max_pairs`: node pairs (n·(n−1)) up to which pairs get their own series.
    pub fn new(max_pairs: u64) -> Metrics {
        let (f, registry) = Families::register();
        Metrics {
            registry,
            f,
            max_pairs,
            state: Mutex::new(State {
                per_pair: true,
                ..State::default()
            }),
            latest: Mutex::new(None),
        }
    }

    /// `podperf health` of the latest completed sweep round, if one completed since this
    /// process started (`GET /api/v2/health`).
    pub fn latest_health(&self) -> Option<HealthAnswer> {
        let latest = self.latest.lock().unwrap();
        let l = latest.as_ref()?;
        let age_ms = podperf_protocol::now_ms().saturating_sub(l.completed_at_ms);
        Some(HealthAnswer {
            round_completed_at_ms: l.completed_at_ms,
            round_age_s: age_ms as f64 / 1000.0,
            sweeps: l.sweeps,
            report: l.report.clone(),
        })
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// A worker's key was written (joined, or refreshed).
    pub fn worker_up(&self, info: WorkerInfo) {
        let mut s = self.state.lock().unwrap();
        if let Some(old) = s.workers.get(&info.worker_id) {
            if old.node_name == info.node_name && old.host_network == info.host_network {
                s.workers.insert(info.worker_id.clone(), info);
                return;
            }
            let id = info.worker_id.clone();
            self.remove_worker(&mut s, &id);
        }
        *s.nodes.entry(info.node_name.clone()).or_default() += 1;
        s.workers.insert(info.worker_id.clone(), info);
        self.membership_changed(&mut s);
    }

    /// A worker's key was deleted or expired.
    pub fn worker_gone(&self, worker_id: &str) {
        let completed = {
            let mut s = self.state.lock().unwrap();
            if !self.remove_worker(&mut s, worker_id) {
                return;
            }
            self.membership_changed(&mut s);
            complete_round(&mut s)
        };
        if let Some(round) = completed {
            self.round_completed(&round);
        }
    }

    /// The ids of the live workers (for a re-read of the bucket to find who left meanwhile).
    pub fn worker_ids(&self) -> HashSet<String> {
        self.state.lock().unwrap().workers.keys().cloned().collect()
    }

    fn remove_worker(&self, s: &mut State, worker_id: &str) -> bool {
        let Some(info) = s.workers.remove(worker_id) else {
            return false;
        };
        s.round.forget(worker_id);
        let left = s.nodes.get_mut(&info.node_name).map(|n| {
            *n -= 1;
            *n
        });
        if left == Some(0) {
            s.nodes.remove(&info.node_name);
            self.remove_node(s, &info.node_name);
        }
        true
    }

    /// Removes every series naming `node`.
    fn remove_node(&self, s: &mut State, node: &str) {
        let names = |src: &str, dst: &str| src == node || dst == node;
        let gone: Vec<PairLabels> = s
            .pairs
            .iter()
            .filter(|l| names(&l.src_node, &l.dst_node))
            .cloned()
            .collect();
        for l in gone {
            self.f.remove_pair(&l);
            s.pairs.remove(&l);
        }
        let gone: Vec<BandwidthLabels> = s
            .bandwidth
            .keys()
            .filter(|l| names(&l.src_node, &l.dst_node))
            .cloned()
            .collect();
        for l in gone {
            self.f.bandwidth.remove(&l);
            s.bandwidth.remove(&l);
        }
        self.update_overlay_ratio(s);
        s.health_bandwidth
            .retain(|(_, src, dst), _| src != node && dst != node);
        let faults: Vec<FaultLabels> = [
            "cannot_send",
            "unreachable",
            "isolated",
            "slow",
            "lossy",
            SLOW_BANDWIDTH,
        ]
        .into_iter()
        .map(|finding| FaultLabels {
            node: node.to_string(),
            finding: finding.to_string(),
        })
        .collect();
        for l in &faults {
            self.f.fault.remove(l);
        }
    }

    /// Recounts `podperf_workers` and re-checks the pair mode.
    fn membership_changed(&self, s: &mut State) {
        let mut counts: HashMap<WorkerLabels, i64> = HashMap::new();
        for w in s.workers.values() {
            let network = if w.host_network { "host" } else { "pod" };
            let l = WorkerLabels {
                node: w.node_name.clone(),
                network: network.to_string(),
            };
            *counts.entry(l).or_default() += 1;
        }
        for gone in s.worker_series.iter().filter(|l| !counts.contains_key(*l)) {
            self.f.workers.remove(gone);
        }
        for (l, n) in &counts {
            self.f.workers.get_or_create(l).set(*n);
        }
        s.worker_series = counts.into_keys().collect();
        let n = s.nodes.len() as u64;
        let per_pair = n * n.saturating_sub(1) <= self.max_pairs;
        if per_pair != s.per_pair {
            tracing::info!(
                nodes = n,
                max_pairs = self.max_pairs,
                per_pair,
                "node-pair series {}",
                if per_pair {
                    "per node pair again"
                } else {
                    "now summed per source node"
                }
            );
            self.f.clear_pairs();
            s.pairs.clear();
            s.bandwidth.clear();
            self.update_overlay_ratio(s);
            s.per_pair = per_pair;
        }
    }

    /// A job reached a terminal state (the dispatcher's done notice carries its record). A
    /// sweep that ended without a result ends its source's part of the round (which it can
    /// complete: evaluating it takes a while at 1,000 nodes, call this off the async threads).
    pub fn job_done(&self, rec: &JobRecord) {
        let labels = JobLabels {
            kind: rec.params.kind().as_str().to_string(),
            state: rec.state.as_str().to_string(),
        };
        self.f.jobs.get_or_create(&labels).inc();
        if let (Some(ProbeResult::Iperf3(r)), true) = (&rec.result, rec.state.is_terminal()) {
            let mut s = self.state.lock().unwrap();
            let target = rec.target_worker.as_deref();
            let at = rec.finished_at_ms.unwrap_or(rec.created_at_ms);
            self.bandwidth(&mut s, &rec.source_worker, target, rec.target_ip, r, at);
        }
        // A sweep with a result came through the stream already (`observe`).
        if rec.params.kind() == JobKind::Sweep && rec.state.is_terminal() && rec.result.is_none() {
            let completed = {
                let mut s = self.state.lock().unwrap();
                if !s.workers.contains_key(&rec.source_worker) {
                    return; // a worker that left is no longer waited for
                }
                s.round.add_failed(rec.clone());
                complete_round(&mut s)
            };
            if let Some(round) = completed {
                self.round_completed(&round);
            }
        }
    }

    /// The schedules as the dispatcher lists them: each one's last run start and, once that run
    /// has finished, whether it succeeded (kept while the next run is running); a removed
    /// schedule's series removed.
    pub fn set_schedules(&self, schedules: &[Schedule]) {
        let mut s = self.state.lock().unwrap();
        let now: HashSet<String> = schedules.iter().map(|x| x.name.clone()).collect();
        for gone in s.schedules.difference(&now) {
            let labels = ScheduleLabels {
                schedule: gone.clone(),
            };
            self.f.schedule_last_run.remove(&labels);
            self.f.schedule_succeeded.remove(&labels);
        }
        for x in schedules {
            let Some(last) = &x.last_run else { continue };
            let labels = ScheduleLabels {
                schedule: x.name.clone(),
            };
            self.f
                .schedule_last_run
                .get_or_create(&labels)
                .set(last.started_at_ms as f64 / 1000.0);
            match last.outcome {
                RunOutcome::Running => {}
                RunOutcome::Succeeded => {
                    self.f.schedule_succeeded.get_or_create(&labels).set(1);
                }
                RunOutcome::Failed | RunOutcome::NotStarted => {
                    self.f.schedule_succeeded.get_or_create(&labels).set(0);
                }
            }
        }
        s.schedules = now;
    }

    /// The dispatcher's queue depth, or `None` when it did not answer (the series is absent).
    pub fn set_queue_depth(&self, depth: Option<u64>) {
        match depth {
            Some(d) => {
                let d = i64::try_from(d).unwrap_or(i64::MAX);
                self.f.queue_depth.get_or_create(&NoLabels::new()).set(d);
            }
            None => {
                self.f.queue_depth.remove(&NoLabels::new());
            }
        }
    }

    /// A worker's result from the results stream. When it completes a sweep round, evaluating
    /// the round takes a while at 1,000 nodes (call it off the async threads).
    pub fn observe(&self, outcome: JobOutcome) {
        let completed = {
            let mut s = self.state.lock().unwrap();
            let Some(src) = place(&s, &outcome.worker_id) else {
                return; // from a worker that is not (or no longer) live
            };
            match &outcome.result {
                Some(ProbeResult::Sweep(r)) => self.sweep(&mut s, &src, r),
                Some(ProbeResult::Ping(r)) => self.ping(&mut s, &src, r),
                _ => return,
            }
            if !matches!(outcome.result, Some(ProbeResult::Sweep(_))) {
                return;
            }
            s.round.add(outcome);
            complete_round(&mut s)
        };
        if let Some(round) = completed {
            self.round_completed(&round);
        }
    }

    /// The labels of a pair, or `None` when `dst` is not a live node.
    fn labels(&self, s: &State, src: &Place, dst: &Place) -> Option<PairLabels> {
        if !s.nodes.contains_key(&dst.node) {
            return None;
        }
        let path = SweepPath::of(&src.node, src.host, &dst.node, dst.host);
        let dst_node = if s.per_pair || src.node == dst.node {
            dst.node.clone()
        } else {
            ANY_NODE.to_string()
        };
        Some(PairLabels {
            src_node: src.node.clone(),
            dst_node,
            path: path.as_str().to_string(),
        })
    }

    fn sweep(&self, s: &mut State, src: &Place, r: &SweepResult) {
        for t in &r.targets {
            let dst = Place {
                node: t.node.clone(),
                host: t.host_network,
            };
            let Some(l) = self.labels(s, src, &dst) else {
                continue;
            };
            self.f.sent.get_or_create(&l).inc_by(u64::from(t.sent));
            self.f
                .received
                .get_or_create(&l)
                .inc_by(u64::from(t.received));
            let h = self.f.rtt.get_or_create(&l);
            for ms in sweep_rtts_ms(t.received, t.rtt_min_ms, t.rtt_avg_ms, t.rtt_max_ms) {
                h.observe(ms / 1000.0);
            }
            drop(h);
            s.pairs.insert(l);
        }
    }

    fn ping(&self, s: &mut State, src: &Place, r: &PingResult) {
        let Some(dst) = r.target.parse().ok().and_then(|ip| place_of_ip(s, ip)) else {
            return;
        };
        let Some(l) = self.labels(s, src, &dst) else {
            return;
        };
        self.f
            .sent
            .get_or_create(&l)
            .inc_by(u64::from(r.transmitted));
        self.f
            .received
            .get_or_create(&l)
            .inc_by(u64::from(r.received));
        let h = self.f.rtt.get_or_create(&l);
        for reply in &r.replies {
            h.observe(reply.rtt_ms / 1000.0);
        }
        drop(h);
        s.pairs.insert(l);
    }

    fn bandwidth(
        &self,
        s: &mut State,
        source: &str,
        target: Option<&str>,
        target_ip: Option<IpAddr>,
        r: &Iperf3Result,
        finished_at_ms: u64,
    ) {
        let dst = match (target, target_ip) {
            (Some(id), _) => place(s, id),
            (None, Some(ip)) => place_of_ip(s, ip),
            (None, None) => None,
        };
        let (Some(mut from), Some(mut to)) = (place(s, source), dst) else {
            return;
        };
        if r.reverse {
            // -R: the target sent, the source received.
            std::mem::swap(&mut from, &mut to);
        }
        let path = SweepPath::of(&from.node, from.host, &to.node, to.host);
        if r.protocol == TransportProtocol::Tcp {
            let key = (path, from.node.clone(), to.node.clone());
            let newer = s
                .health_bandwidth
                .get(&key)
                .is_none_or(|b| b.finished_at_ms <= finished_at_ms);
            if newer {
                let b = PairBandwidth {
                    path,
                    protocol: r.protocol,
                    src_node: from.node.clone(),
                    dst_node: to.node.clone(),
                    bits_per_second: r.receiver_bits_per_second,
                    finished_at_ms,
                };
                s.health_bandwidth.insert(key, b);
            }
        }
        let Some(l) = self.labels(s, &from, &to) else {
            return;
        };
        let protocol = match r.protocol {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Udp => "udp",
        };
        let bl = BandwidthLabels {
            src_node: l.src_node.clone(),
            dst_node: l.dst_node.clone(),
            path: l.path.clone(),
            protocol: protocol.to_string(),
        };
        // Prometheus' base unit is the byte (`promtool check metrics` insists).
        let bytes_per_second = r.receiver_bits_per_second / 8.0;
        self.f.bandwidth.get_or_create(&bl).set(bytes_per_second);
        s.bandwidth.insert(bl, bytes_per_second);
        if let (TransportProtocol::Tcp, Some(n)) = (r.protocol, r.retransmits) {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.f.retransmits.get_or_create(&l).set(n);
            s.pairs.insert(l);
        }
        self.update_overlay_ratio(s);
    }

    /// Mean latest TCP bandwidth of pod ↔ pod across nodes over that of node ↔ node; absent until
    /// both were measured.
    fn update_overlay_ratio(&self, s: &State) {
        let mean = |path: SweepPath| {
            let v: Vec<f64> = s
                .bandwidth
                .iter()
                .filter(|(l, _)| l.protocol == "tcp" && l.path == path.as_str())
                .map(|(_, v)| *v)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        match (mean(SweepPath::PodCrossNode), mean(SweepPath::NodeToNode)) {
            (Some(pod), Some(node)) if node > 0.0 => {
                self.f
                    .overlay_ratio
                    .get_or_create(&NoLabels::new())
                    .set(pod / node);
            }
            _ => {
                self.f.overlay_ratio.remove(&NoLabels::new());
            }
        }
    }

    /// A completed round: its time, and the findings of `podperf health` over it.
    fn round_completed(&self, round: &Completed) {
        let report = round.health();
        self.f
            .round_completed
            .get_or_create(&NoLabels::new())
            .set(round.completed_at_ms as f64 / 1000.0);
        self.f.fault.clear();
        for f in &report.findings {
            let finding = match f.protocol {
                Some(_) => SLOW_BANDWIDTH,
                None => f.finding.as_str(),
            };
            let l = FaultLabels {
                node: f.node.clone(),
                finding: finding.to_string(),
            };
            self.f.fault.get_or_create(&l).set(1);
        }
        let mut latest = self.latest.lock().unwrap();
        // Rounds can complete out of order (evaluated off the lock): keep the newest.
        if latest
            .as_ref()
            .is_none_or(|l| l.completed_at_ms <= round.completed_at_ms)
        {
            *latest = Some(Latest {
                completed_at_ms: round.completed_at_ms,
                sweeps: round.sweeps(),
                report,
            });
        }
    }
}

/// The round, if every live worker has now reported a sweep.
fn complete_round(s: &mut State) -> Option<Completed> {
    let live: BTreeSet<&String> = s.workers.keys().collect();
    let workers = &s.workers;
    let bandwidth = &s.health_bandwidth;
    let fresh = podperf_protocol::now_ms().saturating_sub(HEALTH_BANDWIDTH_MAX_AGE_MS);
    s.round.complete(
        &live,
        || {
            workers
                .iter()
                .map(|(id, w)| {
                    let info = podperf_report::SourceInfo {
                        node: w.node_name.clone(),
                        host_network: w.host_network,
                    };
                    (id.clone(), info)
                })
                .collect()
        },
        || {
            bandwidth
                .values()
                .filter(|b| b.finished_at_ms >= fresh)
                .cloned()
                .collect()
        },
    )
}

fn place(s: &State, worker_id: &str) -> Option<Place> {
    s.workers.get(worker_id).map(|w| Place {
        node: w.node_name.clone(),
        host: w.host_network,
    })
}

/// The live worker probes toward `ip` aim at (a host-network worker's is its node's IP).
fn place_of_ip(s: &State, ip: IpAddr) -> Option<Place> {
    s.workers.values().find(|w| w.pod_ip == ip).map(|w| Place {
        node: w.node_name.clone(),
        host: w.host_network,
    })
}

/// The RTTs a sweep target's summary stands for: fping gives the fastest, the mean and the
/// slowest of `received` replies, so the histogram gets the fastest and the slowest once and the
/// rest at the value that keeps the sum exact (`received × mean`), which lies between them.
pub fn sweep_rtts_ms(
    received: u32,
    min: Option<f64>,
    avg: Option<f64>,
    max: Option<f64>,
) -> Vec<f64> {
    let (Some(min), Some(avg), Some(max)) = (min, avg, max) else {
        return match avg {
            Some(avg) => vec![avg; received as usize],
            None => Vec::new(),
        };
    };
    match received {
        0 => Vec::new(),
        1 => vec![avg],
        2 => vec![min, max],
        n => {
            let rest = f64::from(n - 2);
            let middle = ((avg * f64::from(n) - min - max) / rest).clamp(min, max);
            let mut v = vec![min, max];
            v.extend(std::iter::repeat_n(middle, (n - 2) as usize));
            v
        }
    }
}

/// A job record of a sweep outcome, for `podperf_report::grid`.
pub fn sweep_record(o: JobOutcome) -> JobRecord {
    JobRecord {
        job_id: o.job_id,
        state: JobState::from(o.status),
        params: JobParams::Sweep(SweepParams::default()),
        source_worker: o.worker_id,
        source_node: None,
        target: None,
        target_ip: None,
        target_worker: None,
        reason: o.reason,
        message: o.message,
        result: o.result,
        raw_output: None,
        created_at_ms: o.started_at_ms,
        deadline_at_ms: o.finished_at_ms,
        dispatched_at_ms: None,
        started_at_ms: Some(o.started_at_ms),
        finished_at_ms: Some(o.finished_at_ms),
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_rtts_keep_count_extremes_and_sum() {
        let v = sweep_rtts_ms(5, Some(0.1), Some(0.2), Some(0.5));
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], 0.1);
        assert_eq!(v[1], 0.5);
        let sum: f64 = v.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        assert!(v.iter().all(|x| (0.1..=0.5).contains(x)));
        assert_eq!(sweep_rtts_ms(1, Some(0.3), Some(0.3), Some(0.3)), [0.3]);
        assert_eq!(
            sweep_rtts_ms(2, Some(0.1), Some(0.2), Some(0.3)),
            [0.1, 0.3]
        );
        assert!(sweep_rtts_ms(0, None, None, None).is_empty());
    }
}
