//! Sweep rounds and health: one implementation for `podperf sweep`, `podperf health`, and
//! podperf-web's `/api/v2/health`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use podperf_protocol::api::{ApiError, ErrorCode, JobRecord, ListJobsRequest};
use podperf_protocol::health::{HealthReport, HealthRequest, PairBandwidth, SweepGrid, SweepPath};
use podperf_protocol::job::{JobParams, JobSpec, TransportProtocol};
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::schedule::SweepRound;
use podperf_protocol::sweep::{SweepParams, SweepTargets};
use podperf_report::SourceInfo;

use crate::{Client, Result};

/// How long past a sweep's deadline a round waits for it.
pub const WAIT_SLACK: Duration = Duration::from_secs(30);
/// Jobs read per page when looking for bandwidth results: records carry their raw output (up to
/// the worker's 64 KiB cap, ~10 KiB for an iperf3 test), and a reply must fit NATS's 1 MB.
const PAGE: u32 = 50;
/// Pages read at most (the newest 10,000 succeeded jobs of the window).
const MAX_PAGES: usize = 200;

impl Client {
    /// Runs one full-mesh sweep round now (one batch: every sweep or none is accepted), waits
    /// for every sweep to end and returns the node × node grid. With neither `from` nor `to`,
    /// at least two live workers are needed.
    pub async fn sweep_round(&self, round: &SweepRound) -> Result<SweepGrid> {
        let workers = self.workers().await?;
        let sources = sources(&workers);
        let from: Vec<String> = if round.from.is_empty() {
            workers.iter().map(|w| w.info.worker_id.clone()).collect()
        } else {
            round.from.clone()
        };
        if round.from.is_empty() && round.to.is_empty() && workers.len() < 2 {
            return Err(ApiError::new(
                ErrorCode::InvalidParam,
                "a sweep round needs at least two live workers",
            )
            .into());
        }
        let targets = if round.to.is_empty() {
            SweepTargets::All
        } else {
            SweepTargets::Workers(round.to.clone())
        };
        let specs = from
            .into_iter()
            .map(|source| JobSpec {
                source,
                target: None,
                params: JobParams::Sweep(SweepParams {
                    targets: targets.clone(),
                    count: round.count,
                    interval_ms: round.interval_ms,
                    resolved: vec![],
                }),
                timeout_s: None,
            })
            .collect();
        let ids = self.submit(specs).await?;
        let waits = ids
            .iter()
            .map(|id| self.wait_past_deadline(*id, WAIT_SLACK));
        let records: Vec<JobRecord> = futures::future::try_join_all(waits).await?;
        Ok(podperf_report::grid(&sources, &records))
    }

    /// The latest TCP bandwidth per node pair (in the direction the data flowed) and path class
    /// among the succeeded iperf3 jobs created within `max_age` whose two workers are still live
    /// (UDP tests run at a requested rate: no measure of capacity). `max_age` zero: none.
    pub async fn latest_bandwidth(&self, max_age: Duration) -> Result<Vec<PairBandwidth>> {
        if max_age.is_zero() {
            return Ok(Vec::new());
        }
        let workers = self.workers().await?;
        let places = sources(&workers);
        let since = podperf_protocol::now_ms().saturating_sub(max_age.as_millis() as u64);
        let mut latest: BTreeMap<(SweepPath, String, String), PairBandwidth> = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut until = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .list(&ListJobsRequest {
                    state: Some(JobState::Succeeded),
                    worker: None,
                    since_ms: Some(since),
                    until_ms: until,
                    limit: Some(PAGE),
                })
                .await?;
            let full = page.len() as u32 >= PAGE;
            let mut new = 0;
            for rec in &page {
                if !seen.insert(rec.job_id) {
                    continue;
                }
                new += 1;
                if let Some(b) = pair_bandwidth(&places, rec) {
                    // Newest first: the first of a pair is its latest.
                    let key = (b.path, b.src_node.clone(), b.dst_node.clone());
                    latest.entry(key).or_insert(b);
                }
            }
            if !full {
                break;
            }
            // The next page ends where this one did (inclusive: ids already seen are skipped);
            // a page of nothing new (more jobs created in one millisecond than a page holds,
            // e.g. a batch) steps past that millisecond.
            let oldest = page.iter().map(|r| r.created_at_ms).min().unwrap_or(0);
            until = Some(if new == 0 {
                oldest.saturating_sub(1)
            } else {
                oldest
            });
        }
        Ok(latest.into_values().collect())
    }

    /// `podperf health`: a sweep round now and the bandwidth results of the last
    /// `bandwidth_max_age_s`; the round's grid and the report.
    pub async fn health(&self, req: &HealthRequest) -> Result<(SweepGrid, HealthReport)> {
        req.validate()
            .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.message).with_field(e.field))?;
        let grid = self.sweep_round(&req.round()).await?;
        // The round's findings stand without the bandwidth: a failed look-up is noted, not fatal.
        let (bandwidth, unavailable) = match self
            .latest_bandwidth(Duration::from_secs(req.bandwidth_max_age_s))
            .await
        {
            Ok(b) => (b, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let mut report = podperf_report::health_with_bandwidth(&grid, &bandwidth);
        report.bandwidth_unavailable = unavailable;
        Ok((grid, report))
    }
}

/// Where each live worker lives, by id.
fn sources(workers: &[podperf_protocol::worker::WorkerView]) -> HashMap<String, SourceInfo> {
    workers
        .iter()
        .map(|w| {
            let info = SourceInfo {
                node: w.info.node_name.clone(),
                host_network: w.info.host_network,
            };
            (w.info.worker_id.clone(), info)
        })
        .collect()
}

/// A succeeded TCP iperf3 job between two known workers as a [`PairBandwidth`].
pub fn pair_bandwidth(
    places: &HashMap<String, SourceInfo>,
    rec: &JobRecord,
) -> Option<PairBandwidth> {
    let Some(ProbeResult::Iperf3(r)) = &rec.result else {
        return None;
    };
    if rec.state != JobState::Succeeded || r.protocol != TransportProtocol::Tcp {
        return None;
    }
    let mut from = places.get(&rec.source_worker)?;
    let mut to = places.get(rec.target_worker.as_deref()?)?;
    if r.reverse {
        // -R: the target sent, the source received.
        std::mem::swap(&mut from, &mut to);
    }
    Some(PairBandwidth {
        path: SweepPath::of(&from.node, from.host_network, &to.node, to.host_network),
        protocol: r.protocol,
        src_node: from.node.clone(),
        dst_node: to.node.clone(),
        bits_per_second: r.receiver_bits_per_second,
        finished_at_ms: rec.finished_at_ms.unwrap_or(rec.created_at_ms),
    })
}
