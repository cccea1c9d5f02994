//! A sweep round's node × node grid: every sweep's per-target results summed per path class and
//! node pair.

use std::collections::{BTreeMap, HashMap};

use podperf_protocol::api::JobRecord;
use podperf_protocol::health::{FailedSweep, GridCell, SweepGrid, SweepPath};
use podperf_protocol::result::ProbeResult;

/// Where a sweep's source worker lives: its node and whether it is on the host network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub node: String,
    pub host_network: bool,
}

#[derive(Default)]
struct Acc {
    pairs: u32,
    sent: u32,
    received: u32,
    rtt_min: Option<f64>,
    rtt_max: Option<f64>,
    rtt_weighted: f64,
}

/// The grid of the sweeps in `records` (other jobs are ignored). `sources` maps a source worker's
/// id to where it lives; a sweep that brought back no result is listed in `failed`.
pub fn grid(sources: &HashMap<String, SourceInfo>, records: &[JobRecord]) -> SweepGrid {
    let mut cells: BTreeMap<(SweepPath, String, String), Acc> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut sweeps = 0;
    for rec in records {
        if rec.params.kind() != podperf_protocol::job::JobKind::Sweep {
            continue;
        }
        sweeps += 1;
        let src = sources
            .get(&rec.source_worker)
            .cloned()
            .unwrap_or(SourceInfo {
                node: "?".into(),
                host_network: false,
            });
        let Some(ProbeResult::Sweep(result)) = &rec.result else {
            failed.push(FailedSweep {
                worker_id: rec.source_worker.clone(),
                node: src.node.clone(),
                state: rec.state.to_string(),
                message: rec.message.clone(),
            });
            continue;
        };
        for t in result
            .targets
            .iter()
            .filter(|t| t.worker_id != rec.source_worker)
        {
            let path = SweepPath::of(&src.node, src.host_network, &t.node, t.host_network);
            let acc = cells
                .entry((path, src.node.clone(), t.node.clone()))
                .or_default();
            acc.pairs += 1;
            acc.sent += t.sent;
            acc.received += t.received;
            acc.rtt_min = min(acc.rtt_min, t.rtt_min_ms, f64::min);
            acc.rtt_max = min(acc.rtt_max, t.rtt_max_ms, f64::max);
            acc.rtt_weighted += t.rtt_avg_ms.unwrap_or(0.0) * f64::from(t.received);
        }
    }
    let cells = cells
        .into_iter()
        .map(|((path, src_node, dst_node), a)| GridCell {
            path,
            src_node,
            dst_node,
            pairs: a.pairs,
            sent: a.sent,
            received: a.received,
            loss_percent: loss_percent(a.sent, a.received),
            rtt_min_ms: a.rtt_min,
            rtt_avg_ms: (a.received > 0).then(|| a.rtt_weighted / f64::from(a.received)),
            rtt_max_ms: a.rtt_max,
        })
        .collect();
    SweepGrid {
        sweeps,
        cells,
        failed,
    }
}

fn min(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// 100 × lost / sent; 0 when nothing was sent.
pub fn loss_percent(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    100.0 * f64::from(sent.saturating_sub(received)) / f64::from(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::record;
    use podperf_protocol::job::JobParams;
    use podperf_protocol::outcome::JobState;
    use podperf_protocol::sweep::{SweepResult, SweepTargetResult};

    fn target(w: &str, node: &str, host: bool, sent: u32, rcv: u32, avg: f64) -> SweepTargetResult {
        SweepTargetResult {
            worker_id: w.into(),
            node: node.into(),
            ip: "10.0.0.1".parse().unwrap(),
            host_network: host,
            sent,
            received: rcv,
            loss_percent: loss_percent(sent, rcv),
            rtt_min_ms: (rcv > 0).then_some(avg / 2.0),
            rtt_avg_ms: (rcv > 0).then_some(avg),
            rtt_max_ms: (rcv > 0).then_some(avg * 2.0),
            duplicates: 0,
        }
    }

    fn sweep(src: &str, targets: Vec<SweepTargetResult>) -> JobRecord {
        let mut r = record(
            JobState::Succeeded,
            Some(ProbeResult::Sweep(SweepResult { targets })),
        );
        r.source_worker = src.into();
        r
    }

    fn info(node: &str, host: bool) -> SourceInfo {
        SourceInfo {
            node: node.into(),
            host_network: host,
        }
    }

    #[test]
    fn pairs_are_summed_per_path_and_node_pair() {
        let sources = HashMap::from([
            ("a1".to_string(), info("n1", false)),
            ("h1".to_string(), info("n1", true)),
        ]);
        let a1 = sweep(
            "a1",
            vec![
                target("b1", "n2", false, 5, 5, 0.2),
                target("b2", "n2", false, 5, 3, 0.4),
                target("a2", "n1", false, 5, 5, 0.05),
                target("h2", "n2", true, 5, 5, 0.1),
            ],
        );
        let h1 = sweep("h1", vec![target("h2", "n2", true, 5, 0, 0.0)]);
        let mut lost = record(JobState::WorkerLost, None);
        lost.source_worker = "gone".into();
        lost.params = JobParams::Sweep(Default::default());
        let g = grid(&sources, &[a1, h1, lost]);
        assert_eq!(g.sweeps, 3);
        let cell = |p: SweepPath| g.cells.iter().find(|c| c.path == p).unwrap();
        let cross = cell(SweepPath::PodCrossNode);
        assert_eq!((cross.pairs, cross.sent, cross.received), (2, 10, 8));
        assert_eq!(cross.loss_percent, 20.0);
        // (5 × 0.2 + 3 × 0.4) / 8
        assert!((cross.rtt_avg_ms.unwrap() - 0.275).abs() < 1e-9);
        assert_eq!((cross.rtt_min_ms, cross.rtt_max_ms), (Some(0.1), Some(0.8)));
        assert_eq!(cell(SweepPath::PodSameNode).dst_node, "n1");
        assert_eq!(cell(SweepPath::PodToNode).received, 5);
        let n2n = cell(SweepPath::NodeToNode);
        assert_eq!((n2n.loss_percent, n2n.rtt_avg_ms), (100.0, None));
        assert_eq!(g.failed.len(), 1);
        assert_eq!(
            (g.failed[0].node.as_str(), g.failed[0].state.as_str()),
            ("?", "worker_lost")
        );
    }
}
