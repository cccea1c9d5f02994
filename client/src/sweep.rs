//! Sweep rounds and health: one implementation for `podperf sweep`, `podperf health`, and
//! podperf-web's `/api/v2/health`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use podperf_protocol::api::{ApiError, ErrorCode, JobRecord, ListJobsRequest};
use podperf_protocol::health::{HealthReport, HealthRequest, PairBandwidth, SweepGrid, SweepPath};
use podperf_protocol::job::TransportProtocol;
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::schedule::SweepRound;
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
        let specs = from.into_iter().map(|source| round.spec(source)).collect();
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
        Ok(self.recent(max_age, Duration::ZERO).await?.bandwidth)
    }

    /// One pass over the jobs of the look-back (newest first, at most 10,000): the latest TCP
    /// bandwidth per pair within `bandwidth_max_age` (as [`Client::latest_bandwidth`]) and each
    /// node's newest job within `gone_max_age` (any state: a cut-off node's last jobs fail).
    pub async fn recent(
        &self,
        bandwidth_max_age: Duration,
        gone_max_age: Duration,
    ) -> Result<Recent> {
        let workers = self.workers().await?;
        let places = sources(&workers);
        let mut recent = Recent {
            live_nodes: places.values().map(|p| p.node.clone()).collect(),
            ..Recent::default()
        };
        let window = bandwidth_max_age.max(gone_max_age);
        if window.is_zero() {
            return Ok(recent);
        }
        let now = podperf_protocol::now_ms();
        let since = |age: Duration| now.saturating_sub(age.as_millis() as u64);
        let (bw_since, gone_since) = (since(bandwidth_max_age), since(gone_max_age));
        // Only succeeded jobs matter unless nodes' last jobs are asked for.
        let state = gone_max_age.is_zero().then_some(JobState::Succeeded);
        let mut latest: BTreeMap<(SweepPath, String, String), PairBandwidth> = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut until = None;
        for _ in 0..MAX_PAGES {
            let reply = self
                .list_page(&ListJobsRequest {
                    state,
                    worker: None,
                    since_ms: Some(since(window)),
                    until_ms: until,
                    limit: Some(PAGE),
                })
                .await?;
            let full = reply.truncated || reply.jobs.len() as u32 >= PAGE;
            let page = reply.jobs;
            let mut new = 0;
            for rec in &page {
                if !seen.insert(rec.job_id) {
                    continue;
                }
                new += 1;
                if !gone_max_age.is_zero() && rec.created_at_ms >= gone_since {
                    if let Some(node) = &rec.source_node {
                        let at = rec.finished_at_ms.unwrap_or(rec.created_at_ms);
                        let last = recent.last_seen.entry(node.clone()).or_insert(at);
                        *last = (*last).max(at);
                    }
                }
                if bandwidth_max_age.is_zero() || rec.created_at_ms < bw_since {
                    continue;
                }
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
        recent.bandwidth = latest.into_values().collect();
        Ok(recent)
    }

    /// `podperf health`: a sweep round now, the bandwidth results of the last
    /// `bandwidth_max_age_s`, and the nodes whose workers left within `gone_max_age_s`; the
    /// round's grid and the report.
    pub async fn health(&self, req: &HealthRequest) -> Result<(SweepGrid, HealthReport)> {
        req.validate()
            .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.message).with_field(e.field))?;
        let grid = self.sweep_round(&req.round()).await?;
        // The round's findings stand without the look-up: a failed one is noted, not fatal.
        let (recent, unavailable) = match self
            .recent(
                Duration::from_secs(req.bandwidth_max_age_s),
                Duration::from_secs(req.gone_max_age_s),
            )
            .await
        {
            Ok(r) => (r, None),
            Err(e) => (Recent::default(), Some(e.to_string())),
        };
        let mut report = podperf_report::health_with_bandwidth(&grid, &recent.bandwidth);
        report.bandwidth_unavailable = unavailable;
        if !recent.live_nodes.is_empty() {
            let now = podperf_protocol::now_ms();
            podperf_report::add_gone(&mut report, &recent.last_seen, &recent.live_nodes, now);
        }
        Ok((grid, report))
    }
}

/// What the jobs of the look-back say (see [`Client::recent`]).
#[derive(Debug, Clone, Default)]
pub struct Recent {
    pub bandwidth: Vec<PairBandwidth>,
    /// Each node's newest job (its end, or its creation), ms since the epoch.
    pub last_seen: BTreeMap<String, u64>,
    /// The nodes with a live worker now.
    pub live_nodes: BTreeSet<String>,
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
