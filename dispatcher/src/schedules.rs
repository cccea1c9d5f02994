//! Schedules: the `schedules.*` endpoints and the runner.
//!
//! Schedules live in the JetStream KV bucket `podperf-schedules` (file storage, the replication
//! of the other buckets, history 1, no expiry): they survive a dispatcher and a NATS restart,
//! every replica reads them, and every change is a compare-and-set on the key's revision, so an
//! API call and the runner (or a deposed leader) never overwrite each other unnoticed.
//!
//! The runner works on the leader only (every replica runs the loop; it acts only while its
//! engine exists). For each schedule:
//! - when `now ≥ next_start` (due + a random offset in `[0, jitter × every]`), and no run of it
//!   is in progress, it first records the run it is about to start (the claim, a CAS write: a
//!   failover between the claim and the start cannot start it twice), then starts it through the
//!   same code path as `runs.start` (a matrix) or as `podperf sweep` makes a round (one sweep per
//!   source in one batch): ordinary jobs of the node-exclusive scheduler, an ordinary run tagged
//!   with the schedule's name;
//! - the next due time is the previous one plus the period; one that passed while the run was
//!   still going (or while no leader ran schedules) slips to the next slot on the grid instead of
//!   piling up: never two runs of one schedule at once;
//! - while a run is in progress it looks at its progress; once finished, it records the outcome.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::TryStreamExt;
use podperf_protocol::api::{ApiError, ErrorCode};
use podperf_protocol::now_ms;
use podperf_protocol::run::{MatrixRequest, RunJob, RunPair, RunRecord};
use podperf_protocol::schedule::*;
use podperf_protocol::worker::{Tool, WorkerInfo};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::{parse, Api};

type Reply<T> = Result<T, ApiError>;

/// The runner looks at the schedules at least this often (sooner when a start is due).
const TICK: Duration = Duration::from_millis(500);
/// Attempts of one compare-and-set change before giving up (another writer kept winning).
const CAS_ATTEMPTS: usize = 5;

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::StoreUnavailable,
        format!("the schedules bucket is unavailable: {err}"),
    )
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no schedule {name:?}")).with_field("name")
}

fn encode(s: &Schedule) -> Bytes {
    serde_json::to_vec(s).expect("schedules serialise").into()
}

/// A uniform draw in `[0, 1)` (from the OS's random source, via a v4 UUID's 62 random low bits).
fn uniform() -> f64 {
    let bits = Uuid::new_v4().as_u128() & ((1u128 << 62) - 1);
    bits as f64 / (1u128 << 62) as f64
}

/// `due` plus a random offset within the schedule's jitter window.
fn jittered(s: &Schedule, due: u64) -> u64 {
    due + (uniform() * s.jitter_window_ms() as f64) as u64
}

/// Reads one schedule with its revision.
async fn read(bucket: &kv::Store, name: &str) -> Reply<Option<(Schedule, u64)>> {
    let entry = bucket.entry(name).await.map_err(unavailable)?;
    let Some(entry) = entry else { return Ok(None) };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    match serde_json::from_slice::<Schedule>(&entry.value) {
        Ok(s) => Ok(Some((s, entry.revision))),
        Err(err) => {
            tracing::warn!(name, %err, "an unreadable schedule is skipped");
            Ok(None)
        }
    }
}

/// Every schedule, by name.
async fn read_all(bucket: &kv::Store) -> Reply<Vec<(Schedule, u64)>> {
    let keys: Vec<String> = match bucket.keys().await {
        Ok(keys) => keys.try_collect().await.map_err(unavailable)?,
        Err(err) => return Err(unavailable(err)),
    };
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(found) = read(bucket, &key).await? {
            out.push(found);
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out)
}

/// Applies `change` to the stored schedule with a compare-and-set, re-reading and retrying when
/// another writer came first. `change` returns false to leave it as it is.
async fn modify(
    bucket: &kv::Store,
    name: &str,
    mut change: impl FnMut(&mut Schedule) -> Reply<bool>,
) -> Reply<Schedule> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut s, revision) = read(bucket, name).await?.ok_or_else(|| not_found(name))?;
        if !change(&mut s)? {
            return Ok(s);
        }
        match bucket.update(name, encode(&s), revision).await {
            Ok(_) => return Ok(s),
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
            Err(err) => return Err(unavailable(err)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Busy,
        format!("schedule {name:?} kept changing; try again"),
    ))
}

impl Api {
    pub(crate) async fn handle_schedules(&self, endpoint: &str, payload: &[u8]) -> Option<Bytes> {
        let reply = match endpoint {
            endpoint::SCHEDULES_ADD => crate::api::encode(self.add_schedule(payload).await),
            endpoint::SCHEDULES_LIST => crate::api::encode(self.list_schedules(payload).await),
            endpoint::SCHEDULES_RM => crate::api::encode(self.rm_schedule(payload).await),
            endpoint::SCHEDULES_PAUSE => crate::api::encode(self.pause(payload, true).await),
            endpoint::SCHEDULES_RESUME => crate::api::encode(self.pause(payload, false).await),
            _ => return None,
        };
        Some(reply)
    }

    async fn add_schedule(&self, payload: &[u8]) -> Reply<Schedule> {
        let req: AddScheduleRequest = parse(payload)?;
        let now = now_ms();
        let min_every = self.cfg.schedule_min_every.as_millis() as u64;
        req.validate(min_every, now)?;
        if let ScheduledRun::Matrix(m) = &req.run {
            crate::runs::validate(m).map_err(|e| {
                let field = e
                    .field
                    .as_deref()
                    .map_or("run.matrix".into(), |f| format!("run.matrix.{f}"));
                e.with_field(field)
            })?;
        }
        let bucket = &self.schedules;
        let existing = read_all(bucket).await?;
        if existing.iter().any(|(s, _)| s.name == req.name) {
            return Err(exists(&req.name));
        }
        if existing.len() >= bounds::SCHEDULES_MAX {
            let msg = format!(
                "{} schedules exist (at most {})",
                existing.len(),
                bounds::SCHEDULES_MAX
            );
            return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("name"));
        }
        let mut s = Schedule {
            name: req.name.clone(),
            every_ms: req.every_ms,
            jitter: req.jitter,
            until_ms: req.until_ms,
            run: req.run,
            paused: false,
            created_at_ms: now,
            // The first run is due at once (within its jitter).
            next_due_ms: now,
            next_start_ms: now,
            running: None,
            last_run: None,
            runs: 0,
            status: ScheduleStatus::Waiting,
        };
        s.next_start_ms = jittered(&s, now);
        match bucket.create(&s.name, encode(&s)).await {
            Ok(_) => {}
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                return Err(exists(&s.name))
            }
            Err(err) => return Err(unavailable(err)),
        }
        tracing::info!(name = %s.name, every_ms = s.every_ms, "schedule added");
        self.schedules_changed.notify_one();
        s.status = s.status_at(now_ms());
        Ok(s)
    }

    async fn list_schedules(&self, payload: &[u8]) -> Reply<ListSchedulesReply> {
        let _: ListSchedulesRequest = parse(payload)?;
        let now = now_ms();
        let schedules = read_all(&self.schedules)
            .await?
            .into_iter()
            .map(|(mut s, _)| {
                s.status = s.status_at(now);
                s
            })
            .collect();
        Ok(ListSchedulesReply { schedules })
    }

    async fn rm_schedule(&self, payload: &[u8]) -> Reply<Schedule> {
        let req: ScheduleNameRequest = parse(payload)?;
        check_name(&req.name)?;
        let (s, _) = read(&self.schedules, &req.name)
            .await?
            .ok_or_else(|| not_found(&req.name))?;
        // A run in progress goes on as an ordinary run; no other starts.
        self.schedules.purge(&req.name).await.map_err(unavailable)?;
        tracing::info!(name = %req.name, "schedule removed");
        Ok(s)
    }

    async fn pause(&self, payload: &[u8], pause: bool) -> Reply<Schedule> {
        let req: ScheduleNameRequest = parse(payload)?;
        check_name(&req.name)?;
        let now = now_ms();
        let mut s = modify(&self.schedules, &req.name, |s| {
            if s.paused == pause {
                return Ok(false);
            }
            s.paused = pause;
            if !pause && s.running.is_none() && s.next_due_ms < now {
                // Runs missed while paused are not made up for: the next slot on the grid.
                s.next_due_ms = s.slot_after(s.next_due_ms, now);
                s.next_start_ms = jittered(s, s.next_due_ms);
            }
            Ok(true)
        })
        .await?;
        tracing::info!(name = %req.name, paused = pause, "schedule paused or resumed");
        self.schedules_changed.notify_one();
        s.status = s.status_at(now_ms());
        Ok(s)
    }
}

fn exists(name: &str) -> ApiError {
    let msg = format!("a schedule named {name:?} exists (rm it first)");
    ApiError::new(ErrorCode::InvalidParam, msg).with_field("name")
}

/// The runner: on every replica, acting while this one leads.
pub async fn run(api: Arc<Api>, stop: CancellationToken) {
    loop {
        let mut wake = TICK;
        if api.leadership.engine().is_some() {
            match read_all(&api.schedules).await {
                Ok(all) => {
                    for (s, revision) in all {
                        if let Some(next) = step(&api, s, revision).await {
                            wake = wake.min(next);
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "cannot read the schedules"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wake) => {}
            _ = api.schedules_changed.notified() => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One look at one schedule: starts its run when due, or records the outcome of its run once
/// finished. Returns how soon it needs another look, if sooner than the tick.
async fn step(api: &Api, s: Schedule, revision: u64) -> Option<Duration> {
    let now = now_ms();
    if let Some(run_id) = s.running {
        if let Some(outcome) = finished(api, run_id).await {
            record_end(api, &s.name, run_id, outcome).await;
            return Some(Duration::ZERO);
        }
        return None;
    }
    if s.status_at(now) != ScheduleStatus::Waiting {
        return None;
    }
    if now < s.next_start_ms {
        return Some(Duration::from_millis(s.next_start_ms - now));
    }
    start(api, s, revision, now).await;
    None
}

/// The outcome of a run once it finished (or of one that was never stored: a leader that died
/// between the claim and the start).
async fn finished(api: &Api, run_id: Uuid) -> Option<(RunOutcome, Option<String>)> {
    match api.run_report(run_id).await {
        Ok(r) if r.progress.finished => {
            let p = r.progress;
            Some(if p.jobs_succeeded == p.jobs {
                (RunOutcome::Succeeded, None)
            } else {
                let failed = p.jobs - p.jobs_succeeded;
                let msg = format!("{failed} of {} jobs did not succeed", p.jobs);
                (RunOutcome::Failed, Some(msg))
            })
        }
        Ok(_) => None,
        Err(e) if e.code == ErrorCode::NotFound => Some((
            RunOutcome::NotStarted,
            Some("the dispatcher stopped before the run was stored".into()),
        )),
        Err(err) => {
            tracing::warn!(%run_id, %err, "cannot read a scheduled run's progress");
            None
        }
    }
}

/// Claims the due run (CAS), then starts it; a refused start is recorded as `not_started`.
async fn start(api: &Api, mut s: Schedule, revision: u64, now: u64) {
    let run_id = Uuid::now_v7();
    let due = s.next_due_ms;
    s.running = Some(run_id);
    s.runs += 1;
    s.last_run = Some(LastRun {
        run_id: Some(run_id),
        due_at_ms: due,
        started_at_ms: now,
        finished_at_ms: None,
        outcome: RunOutcome::Running,
        message: None,
    });
    s.next_due_ms = s.slot_after(due + s.every_ms, now);
    s.next_start_ms = jittered(&s, s.next_due_ms);
    if let Err(err) = api.schedules.update(&s.name, encode(&s), revision).await {
        // Changed meanwhile (paused, removed, or another leader's claim): look again next time.
        tracing::debug!(name = %s.name, %err, "schedule changed before its run could be claimed");
        return;
    }
    let started = match &s.run {
        ScheduledRun::Matrix(req) => api
            .start_matrix(req.clone(), run_id, Some(s.name.clone()))
            .await
            .map(|_| ()),
        ScheduledRun::Sweep(round) => api.start_sweep_round(round, run_id, &s.name).await,
    };
    match started {
        Ok(()) => tracing::info!(name = %s.name, %run_id, due, "scheduled run started"),
        Err(err) => {
            tracing::warn!(name = %s.name, %err, "a scheduled run could not start");
            let outcome = (RunOutcome::NotStarted, Some(err.to_string()));
            record_end(api, &s.name, run_id, outcome).await;
        }
    }
}

/// Records how the run ended and frees the schedule for its next run; the next due time slips
/// past now if the run overran it.
async fn record_end(api: &Api, name: &str, run_id: Uuid, outcome: (RunOutcome, Option<String>)) {
    let now = now_ms();
    let changed = modify(&api.schedules, name, |s| {
        if s.running != Some(run_id) {
            return Ok(false);
        }
        s.running = None;
        if let Some(last) = s.last_run.as_mut().filter(|l| l.run_id == Some(run_id)) {
            last.finished_at_ms = Some(now);
            last.outcome = outcome.0;
            last.message = outcome.1.clone();
            if outcome.0 == RunOutcome::NotStarted {
                last.run_id = None;
            }
        }
        if s.next_due_ms <= now {
            s.next_due_ms = s.slot_after(s.next_due_ms, now);
            s.next_start_ms = jittered(s, s.next_due_ms);
        }
        Ok(true)
    })
    .await;
    match changed {
        Ok(_) => tracing::info!(name, %run_id, outcome = outcome.0.as_str(), "scheduled run ended"),
        Err(e) if e.code == ErrorCode::NotFound => {} // removed meanwhile
        Err(err) => tracing::warn!(name, %err, "cannot record a scheduled run's end"),
    }
}

impl Api {
    /// A sweep round as `podperf sweep` makes it — one sweep per source worker, in one batch,
    /// toward every live worker but itself (or the named ones) — stored as a run whose pairs are
    /// the mesh's pairs (`podperf matrix --mesh`'s: pod ↔ pod, node ↔ node), each with its
    /// source's sweep, as a mesh matrix measures RTT and loss.
    pub(crate) async fn start_sweep_round(
        &self,
        round: &SweepRound,
        run_id: Uuid,
        schedule: &str,
    ) -> Reply<()> {
        let live = self.members.snapshot();
        let resolve_all = |names: &[String], field: &str| -> Reply<HashSet<String>> {
            let mut ids = HashSet::new();
            for (i, name) in names.iter().enumerate() {
                let w = self.members.resolve(name, &[]);
                let w = w.map_err(|e| e.with_field(format!("run.sweep.{field}[{i}]")))?;
                ids.insert(w.info.worker_id.clone());
            }
            Ok(ids)
        };
        let from = resolve_all(&round.from, "from")?;
        let to = resolve_all(&round.to, "to")?;
        let sources: Vec<&WorkerInfo> = live
            .iter()
            .map(|v| &v.info)
            .filter(|w| w.has_tool(Tool::Fping))
            .filter(|w| from.is_empty() || from.contains(&w.worker_id))
            .collect();
        if sources.is_empty() || (round.to.is_empty() && live.len() < 2) {
            let msg = "nothing to sweep: a round needs at least two live workers (with fping)";
            return Err(ApiError::new(ErrorCode::InvalidParam, msg));
        }
        let now = now_ms();
        let mut jobs = Vec::with_capacity(sources.len());
        let mut sweep_of = std::collections::HashMap::new();
        for source in &sources {
            let spec = round.spec(source.worker_id.clone());
            let job = self.admit(&spec, &[], now)?;
            sweep_of.insert(source.worker_id.clone(), job.job_id);
            jobs.push(job);
        }
        let everyone: Vec<&WorkerInfo> = live.iter().map(|v| &v.info).collect();
        let pairs = crate::planner::mesh_pairs(&everyone)
            .into_iter()
            .filter(|(_, _, t)| to.is_empty() || to.contains(&t.worker_id))
            .filter_map(|(class, s, t)| {
                let job_id = *sweep_of.get(&s.worker_id)?;
                Some(RunPair {
                    class,
                    family: podperf_protocol::job::IpFamily::of(s.pod_ip),
                    source: s.worker_id.clone(),
                    source_pod: s.pod_name.clone(),
                    source_node: s.node_name.clone(),
                    source_ip: s.pod_ip,
                    target: t.worker_id.clone(),
                    target_pod: t.pod_name.clone(),
                    target_node: t.node_name.clone(),
                    target_ip: t.pod_ip,
                    round: 0,
                    jobs: vec![RunJob {
                        job_id,
                        kind: podperf_protocol::job::JobKind::Sweep,
                        protocol: None,
                        sample: 0,
                    }],
                })
            })
            .collect::<Vec<_>>();
        // A source without a pair the run can report (e.g. the only host-network worker) is
        // not swept: the run is exactly what its report shows.
        let paired: HashSet<Uuid> = pairs.iter().map(|p| p.jobs[0].job_id).collect();
        jobs.retain(|j| paired.contains(&j.job_id));
        if jobs.is_empty() {
            let msg =
                "nothing to sweep: no pair of live workers (with fping) the round can measure";
            return Err(ApiError::new(ErrorCode::InvalidParam, msg));
        }
        let run = RunRecord {
            run_id,
            created_at_ms: now,
            // What the round measures, in a matrix request's terms: RTT and loss only.
            request: MatrixRequest {
                mesh: true,
                samples: 1,
                ping_count: round.count,
                udp: false,
                traceroute: false,
                latency: false,
                mtu: false,
                ..MatrixRequest::default()
            },
            rounds: 1,
            sampling: None,
            pairs,
            schedule: Some(schedule.to_string()),
        };
        self.accept(jobs, Some(&run)).await
    }
}
