//! Full-mesh sweep rounds as seen on the results stream. The stream does not say which sweeps
//! belong together, so a round is defined by what it must contain: it completes when **every
//! live worker has reported a sweep since the previous round completed** (a worker that leaves
//! meanwhile is no longer waited for). Its grid is those sweeps (each source's latest), and
//! `podperf health`'s findings over it are `podperf_fault`.

use std::collections::{BTreeSet, HashMap};

use podperf_protocol::health::HealthReport;
use podperf_protocol::outcome::JobOutcome;
use podperf_report::SourceInfo;

/// The sweeps of the round being gathered, by source worker.
#[derive(Default)]
pub struct Round {
    sweeps: HashMap<String, JobOutcome>,
}

/// A round that completed.
pub struct Completed {
    /// When its last sweep finished (epoch ms).
    pub completed_at_ms: u64,
    pub report: HealthReport,
}

impl Round {
    /// A sweep result (its source's latest replaces an earlier one).
    pub fn add(&mut self, outcome: JobOutcome) {
        self.sweeps.insert(outcome.worker_id.clone(), outcome);
    }

    /// Drops a worker that left.
    pub fn forget(&mut self, worker_id: &str) {
        self.sweeps.remove(worker_id);
    }

    /// When every one of `live` (two at least) has swept: the completed round, and a new one
    /// starts.
    pub fn complete(
        &mut self,
        live: &BTreeSet<&String>,
        sources: &HashMap<String, SourceInfo>,
    ) -> Option<Completed> {
        if live.len() < 2 || !live.iter().all(|id| self.sweeps.contains_key(*id)) {
            return None;
        }
        let sweeps = std::mem::take(&mut self.sweeps);
        let completed_at_ms = sweeps.values().map(|o| o.finished_at_ms).max()?;
        let records: Vec<_> = sweeps.values().map(super::state::sweep_record).collect();
        let grid = podperf_report::grid(sources, &records);
        Some(Completed {
            completed_at_ms,
            report: podperf_report::health(&grid),
        })
    }
}
