//! Full-mesh sweep rounds as seen on the results stream. The stream does not say which sweeps
//! belong together, so a round is defined by what it must contain: it completes when **every
//! live worker has reported a sweep since the previous round completed** (a worker that leaves
//! meanwhile is no longer waited for). Its grid is those sweeps (each source's latest), and
//! `podperf health`'s findings over it are `podperf_fault`.

use std::collections::{BTreeSet, HashMap};

use podperf_protocol::api::JobRecord;
use podperf_protocol::health::HealthReport;
use podperf_protocol::outcome::JobOutcome;
use podperf_protocol::result::ProbeResult;
use podperf_report::SourceInfo;

/// The sweeps of the round being gathered, by source worker.
#[derive(Default)]
pub struct Round {
    sweeps: HashMap<String, JobOutcome>,
}

/// A round that completed, to evaluate (outside any lock: at 1,000 nodes its grid has millions
/// of cells).
pub struct Completed {
    /// When its last sweep finished (epoch ms).
    pub completed_at_ms: u64,
    records: Vec<JobRecord>,
    sources: HashMap<String, SourceInfo>,
}

impl Completed {
    /// `podperf health` over the round's grid.
    pub fn health(&self) -> HealthReport {
        podperf_report::health(&podperf_report::grid(&self.sources, &self.records))
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
        self.sweeps.insert(outcome.worker_id.clone(), outcome);
    }

    /// Drops a worker that left.
    pub fn forget(&mut self, worker_id: &str) {
        self.sweeps.remove(worker_id);
    }

    /// When every one of `live` (two at least) has swept: the completed round (with where each
    /// of `live` lives), and a new one starts.
    pub fn complete(
        &mut self,
        live: &BTreeSet<&String>,
        sources: impl FnOnce() -> HashMap<String, SourceInfo>,
    ) -> Option<Completed> {
        if live.len() < 2 || !live.iter().all(|id| self.sweeps.contains_key(*id)) {
            return None;
        }
        let sweeps = std::mem::take(&mut self.sweeps);
        let completed_at_ms = sweeps.values().map(|o| o.finished_at_ms).max()?;
        let records = sweeps
            .into_values()
            .map(super::state::sweep_record)
            .collect();
        Some(Completed {
            completed_at_ms,
            records,
            sources: sources(),
        })
    }
}
