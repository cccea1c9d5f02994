//! Full-mesh sweep rounds as seen on the results stream and the done notices. The stream does
//! not say which sweeps belong together, so a round is defined by what it must contain: it
//! completes when **every live worker's sweep has ended since the previous round completed** —
//! with a result (the stream) or without (a done notice of a sweep failed, timed out, lost, …;
//! such a source is evidence too: it reached nobody, see `podperf health`'s *cannot send*). A
//! worker that leaves meanwhile is no longer waited for. Its grid is those sweeps (each source's
//! latest), and `podperf health`'s findings over it (with the latest bandwidth per node pair)
//! are `podperf_fault` and `GET /api/v2/health`.

use std::collections::{BTreeSet, HashMap};

use podperf_protocol::api::JobRecord;
use podperf_protocol::health::{HealthReport, PairBandwidth};
use podperf_protocol::outcome::JobOutcome;
use podperf_protocol::result::ProbeResult;
use podperf_report::SourceInfo;

/// The sweeps of the round being gathered, by source worker.
#[derive(Default)]
pub struct Round {
    sweeps: HashMap<String, JobRecord>,
}

/// A round that completed, to evaluate (outside any lock: at 1,000 nodes its grid has millions
/// of cells).
pub struct Completed {
    /// When its last sweep finished (epoch ms).
    pub completed_at_ms: u64,
    records: Vec<JobRecord>,
    sources: HashMap<String, SourceInfo>,
    /// The latest bandwidth per node pair when it completed.
    pub bandwidth: Vec<PairBandwidth>,
}

impl Completed {
    /// Sweeps in the round.
    pub fn sweeps(&self) -> u32 {
        self.records.len() as u32
    }

    /// `podperf health` over the round's grid and the bandwidth.
    pub fn health(&self) -> HealthReport {
        let grid = podperf_report::grid(&self.sources, &self.records);
        podperf_report::health_with_bandwidth(&grid, &self.bandwidth)
    }
}

impl Round {
    /// A sweep result (its source's latest replaces an earlier one). Only what the grid needs
    /// is kept: the targets but the source itself, without their worker ids or the raw output.
    pub fn add(&mut self, mut outcome: JobOutcome) {
        if let Some(ProbeResult::Sweep(r)) = &mut outcome.result {
            r.targets.retain(|t| t.worker_id != outcome.worker_id);
            for t in &mut r.targets {
                t.worker_id = String::new();
            }
            r.targets.shrink_to_fit();
        }
        outcome.raw_output = None;
        self.sweeps.insert(
            outcome.worker_id.clone(),
            super::state::sweep_record(outcome),
        );
    }

    /// A sweep that ended without a result (its done notice).
    pub fn add_failed(&mut self, mut rec: JobRecord) {
        rec.raw_output = None;
        rec.result = None;
        self.sweeps.insert(rec.source_worker.clone(), rec);
    }

    /// Drops a worker that left.
    pub fn forget(&mut self, worker_id: &str) {
        self.sweeps.remove(worker_id);
    }

    /// When the sweep of every one of `live` (two at least) has ended: the completed round
    /// (with where each of `live` lives, and the bandwidth), and a new one starts.
    pub fn complete(
        &mut self,
        live: &BTreeSet<&String>,
        sources: impl FnOnce() -> HashMap<String, SourceInfo>,
        bandwidth: impl FnOnce() -> Vec<PairBandwidth>,
    ) -> Option<Completed> {
        if live.len() < 2 || !live.iter().all(|id| self.sweeps.contains_key(*id)) {
            return None;
        }
        let sweeps = std::mem::take(&mut self.sweeps);
        let completed_at_ms = sweeps.values().filter_map(|r| r.finished_at_ms).max()?;
        Some(Completed {
            completed_at_ms,
            records: sweeps.into_values().collect(),
            sources: sources(),
            bandwidth: bandwidth(),
        })
    }
}
