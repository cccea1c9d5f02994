//! The engine follows every job to exactly one terminal state. One task owns the job table, the
//! scheduler's locks and the deadlines; everything else talks to it through [`Input`]s.
//!
//! - queued jobs start when the scheduler allows ([`crate::scheduler`]) and are delivered to their
//!   worker by request/reply, retried with the same id until the deadline ([`crate::deliver`]);
//! - a result stored by [`crate::ingest`] releases the job's claim;
//! - past its deadline (plus a grace) a job is `timed_out`; when its source worker's key expires
//!   and the worker does not come back within `lost_grace` it is `worker_lost` — unless the
//!   worker's result is already in the results stream. (A broker restart can let a live worker's
//!   key expire: the same worker instance returning keeps its jobs; a new instance does not.)
//! - a cancel marks it `cancelled` and tells the worker to stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use podperf_protocol::command::{CancelJob, JobAssignment, ResolvedTarget, WorkerCommand};
use podperf_protocol::names::{done_subject, job_subject, result_subject};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{FailureReason, JobState};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};
use uuid::Uuid;

use crate::config::DispatcherConfig;
use crate::deliver::{self, Delivery};
use crate::membership::{MemberEvent, Members};
use crate::scheduler::{self, Claim, Locks};
use crate::store::{NewJob, Store, Transition};

/// What the engine reacts to.
#[derive(Debug)]
pub enum Input {
    /// New jobs, already stored as `queued`.
    Enqueue(Vec<NewJob>),
    Cancel {
        job_id: Uuid,
        reply: oneshot::Sender<bool>,
    },
    Delivered {
        job_id: Uuid,
        delivery: Delivery,
    },
    /// A terminal result for the job was stored.
    Finished {
        job_id: Uuid,
    },
    Member(MemberEvent),
}

/// Where an outstanding job is, as far as the engine is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Delivering,
    /// Accepted by the worker (it may be running).
    Dispatched,
}

struct Tracked {
    job: NewJob,
    phase: Phase,
    claim: Claim,
    /// `None` once the deadline fired.
    deadline: Option<delay_queue::Key>,
    delivery: Option<CancellationToken>,
    /// When the worker accepted it (`None` if before this dispatcher started).
    accepted_at_ms: Option<u64>,
}

/// The API's handle on the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Input>,
    outstanding: Arc<AtomicUsize>,
}

/// Room for `n` jobs under the dispatcher's limit, taken before the batch is stored so concurrent
/// submits cannot overshoot it; given back on drop unless the jobs were enqueued.
pub struct Reservation {
    counter: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.n, Ordering::Relaxed);
    }
}

impl EngineHandle {
    /// Reserves room for `n` more outstanding jobs, unless that would exceed `max`.
    pub fn reserve(&self, n: usize, max: usize) -> Option<Reservation> {
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|total| *total <= max)
            })
            .ok()
            .map(|_| Reservation {
                counter: self.outstanding.clone(),
                n,
            })
    }

    /// Hands stored jobs to the engine; their reserved room is now held until each ends.
    pub fn enqueue(&self, jobs: Vec<NewJob>, mut reservation: Reservation) {
        debug_assert_eq!(jobs.len(), reservation.n);
        reservation.n = 0; // the room now belongs to the jobs: the engine frees it as each ends
        let _ = self.tx.send(Input::Enqueue(jobs));
    }

    /// Cancels an outstanding job and returns once that is stored; false when the engine does not
    /// hold it (terminal or unknown).
    pub async fn cancel(&self, job_id: Uuid) -> bool {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Input::Cancel { job_id, reply });
        rx.await.unwrap_or(false)
    }

    /// Jobs not yet terminal (and room reserved for batches being stored).
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Input> {
        self.tx.clone()
    }
}

pub struct Engine {
    client: Client,
    results: Stream,
    store: Store,
    members: Members,
    cfg: DispatcherConfig,
    jobs: HashMap<Uuid, Tracked>,
    queue: Vec<Uuid>,
    /// Something that can let a queued job start happened (a job queued or ended).
    dirty: bool,
    /// A worker went away: queued jobs may have lost their source or target.
    members_changed: bool,
    locks: Locks,
    deadlines: DelayQueue<Uuid>,
    /// Each live worker's instance (`started_at_ms` of its info), to tell a return from a restart.
    instances: HashMap<String, u64>,
    /// Workers whose key expired, with the instance that left, waiting out `lost_grace`.
    departed: HashMap<String, (Option<u64>, delay_queue::Key)>,
    departures: DelayQueue<String>,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    outstanding: Arc<AtomicUsize>,
}

impl Engine {
    pub fn new(
        client: Client,
        results: Stream,
        store: Store,
        members: Members,
        cfg: DispatcherConfig,
    ) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let handle = EngineHandle {
            tx: tx.clone(),
            outstanding: outstanding.clone(),
        };
        let engine = Engine {
            client,
            results,
            store,
            members,
            cfg,
            jobs: HashMap::new(),
            queue: Vec::new(),
            dirty: false,
            members_changed: false,
            locks: Locks::default(),
            deadlines: DelayQueue::new(),
            instances: HashMap::new(),
            departed: HashMap::new(),
            departures: DelayQueue::new(),
            tx,
            rx,
            outstanding,
        };
        (engine, handle)
    }

    /// Resumes the jobs a previous dispatcher left outstanding (from Redis's active set).
    pub async fn recover(&mut self) -> Result<usize, crate::store::StoreError> {
        let ids = self.store.active().await?;
        let mut resumed = 0;
        for id in ids {
            let Some((job, state)) = self.store.get_new_job(id).await? else {
                self.store.forget_active(id).await?;
                continue;
            };
            let phase = match state {
                JobState::Queued => Phase::Queued,
                JobState::Dispatched => Phase::Delivering,
                JobState::Running => Phase::Dispatched,
                _ => continue, // terminal: the active set was stale
            };
            self.track(job, phase);
            resumed += 1;
        }
        // Counted before any of them can end (and be subtracted) below.
        self.outstanding.fetch_add(resumed, Ordering::Relaxed);
        // Jobs that were in flight hold their claims again; re-send those not yet accepted
        // (the worker runs an id once) and check that their workers are still alive.
        let in_flight: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.phase != Phase::Queued)
            .map(|(id, _)| *id)
            .collect();
        for id in in_flight {
            let t = &self.jobs[&id];
            self.locks.take(&t.claim);
            if !self.members.contains(&t.job.source_worker) {
                let msg = format!(
                    "worker {} was gone when the dispatcher restarted",
                    t.job.source_worker
                );
                self.finalize(id, JobState::WorkerLost, None, msg, true);
            } else if t.phase == Phase::Delivering {
                self.start_delivery(id);
            }
        }
        self.members_changed = true; // queued jobs of workers gone meanwhile end at once
        Ok(resumed)
    }

    fn track(&mut self, job: NewJob, phase: Phase) {
        let kind = job.params.kind();
        let server = job
            .target_ip
            .map(|ip| format!("{ip}:{}", job.target_port.unwrap_or(0)));
        let claim = Claim::for_job(kind, &job.source_node, job.target_node.as_deref(), server);
        let fire_at = job.deadline_at_ms + self.cfg.deadline_grace.as_millis() as u64;
        let in_ms = Duration::from_millis(fire_at.saturating_sub(now_ms()));
        let deadline = Some(self.deadlines.insert(job.job_id, in_ms));
        let id = job.job_id;
        if phase == Phase::Queued {
            self.queue.push(id);
            self.dirty = true;
        }
        self.jobs.insert(
            id,
            Tracked {
                job,
                phase,
                claim,
                deadline,
                delivery: None,
                accepted_at_ms: None,
            },
        );
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                input = self.rx.recv() => match input {
                    Some(i) => self.handle(i),
                    None => return,
                },
                Some(expired) = futures::future::poll_fn(|cx| self.deadlines.poll_expired(cx)),
                    if !self.deadlines.is_empty() => self.on_deadline(expired.into_inner()),
                Some(left) = futures::future::poll_fn(|cx| self.departures.poll_expired(cx)),
                    if !self.departures.is_empty() => self.on_grace_over(left.into_inner()),
                _ = shutdown.cancelled() => return,
            }
            // Drain what is already waiting before scheduling (batches schedule once).
            while let Ok(i) = self.rx.try_recv() {
                self.handle(i);
            }
            self.schedule();
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Enqueue(jobs) => {
                for job in jobs {
                    self.track(job, Phase::Queued);
                }
            }
            Input::Cancel { job_id, reply } => {
                let msg = "cancelled on request".to_string();
                match self.finalize(job_id, JobState::Cancelled, None, msg, false) {
                    // Answer once the cancellation is stored, so the caller reads it back.
                    Some(recorded) => {
                        tokio::spawn(async move {
                            let _ = recorded.await;
                            let _ = reply.send(true);
                        });
                    }
                    None => {
                        let _ = reply.send(false);
                    }
                }
            }
            Input::Delivered { job_id, delivery } => self.on_delivered(job_id, delivery),
            Input::Finished { job_id } => {
                if let Some(t) = self.untrack(job_id) {
                    if let Some(d) = t.delivery {
                        d.cancel();
                    }
                }
            }
            Input::Member(MemberEvent::Gone(worker)) => {
                self.members_changed = true;
                self.dirty = true;
                self.on_worker_departed(worker)
            }
            Input::Member(MemberEvent::Up(info)) => self.on_worker_up(&info),
        }
    }

    fn on_delivered(&mut self, job_id: Uuid, delivery: Delivery) {
        let Some(t) = self.jobs.get_mut(&job_id) else {
            return;
        };
        if t.phase != Phase::Delivering {
            return;
        }
        t.delivery = None;
        match delivery {
            Delivery::Accepted { attempts } => {
                t.phase = Phase::Dispatched;
                t.accepted_at_ms = Some(now_ms());
                let tr = Transition {
                    attempts: Some(attempts),
                    dispatched_at_ms: Some(now_ms()),
                    ..Transition::to(JobState::Dispatched)
                };
                let store = self.store.clone();
                tokio::spawn(async move {
                    if let Err(err) = store.transition(job_id, &tr).await {
                        tracing::warn!(%job_id, %err, "could not record the dispatch");
                    }
                });
            }
            Delivery::Refused { reason, message } => {
                let msg = format!("the worker refused the job ({reason:?}): {message}");
                self.finalize(
                    job_id,
                    JobState::Failed,
                    Some(FailureReason::Refused),
                    msg,
                    false,
                );
            }
            Delivery::Undeliverable { message } => {
                let msg = format!("not delivered before the deadline: {message}");
                let reason = Some(FailureReason::Undeliverable);
                self.finalize(job_id, JobState::Failed, reason, msg, false);
            }
            Delivery::Aborted => {}
        }
    }

    fn on_deadline(&mut self, job_id: Uuid) {
        let Some(t) = self.jobs.get_mut(&job_id) else {
            return;
        };
        t.deadline = None; // it fired: nothing to remove from the queue

        let phase = t.phase;
        let msg = format!(
            "the deadline passed while the job was {}",
            phase_name(phase)
        );
        self.finalize(job_id, JobState::TimedOut, None, msg, true);
    }

    /// A worker's key expired (or it deregistered): its jobs wait `lost_grace` for it to return.
    fn on_worker_departed(&mut self, worker: String) {
        if self.cfg.lost_grace.is_zero() {
            self.instances.remove(&worker);
            let msg =
                format!("worker {worker}'s liveness key expired while the job was outstanding");
            return self.lose_jobs(&worker, &msg);
        }
        if self.departed.contains_key(&worker) {
            return;
        }
        let instance = self.instances.remove(&worker);
        let key = self.departures.insert(worker.clone(), self.cfg.lost_grace);
        self.departed.insert(worker, (instance, key));
    }

    /// A worker appeared: back within the grace (its jobs go on), or a new instance of it (a
    /// restart, with or without its key expiring first: what the old instance had accepted is
    /// lost; jobs not yet accepted are delivered to the new one).
    fn on_worker_up(&mut self, info: &podperf_protocol::worker::WorkerInfo) {
        let (worker, instance) = (&info.worker_id, info.started_at_ms);
        let before = match self.departed.remove(worker) {
            Some((left, key)) => {
                self.departures.try_remove(&key);
                self.dirty = true;
                left
            }
            None => self.instances.get(worker).copied(),
        };
        self.instances.insert(worker.clone(), instance);
        match before {
            Some(b) if b != instance => {
                let msg = format!(
                    "worker {worker} restarted while the job was running (a new instance \
                     registered)"
                );
                self.lose_accepted_before(worker, instance, &msg);
            }
            Some(_) => {
                tracing::info!(worker_id = %worker, "worker back within the grace; its jobs go on")
            }
            None => {}
        }
    }

    /// Ends, `worker_lost`, the jobs `worker` accepted before `instance_started_at_ms`.
    fn lose_accepted_before(&mut self, worker: &str, instance_started_at_ms: u64, msg: &str) {
        let lost: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.job.source_worker == worker && t.phase == Phase::Dispatched)
            .filter(|(_, t)| t.accepted_at_ms.is_none_or(|a| a < instance_started_at_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.finalize(id, JobState::WorkerLost, None, msg.to_string(), true);
        }
    }

    fn on_grace_over(&mut self, worker: String) {
        if self.departed.remove(&worker).is_none() || self.members.contains(&worker) {
            return;
        }
        self.members_changed = true; // queued jobs aimed at it end too
        self.dirty = true;
        let msg = format!(
            "worker {worker}'s liveness key expired while the job was outstanding, and it did \
             not come back within {:?}",
            self.cfg.lost_grace
        );
        self.lose_jobs(&worker, &msg);
    }

    /// Ends all of `worker`'s jobs `worker_lost`.
    fn lose_jobs(&mut self, worker: &str, msg: &str) {
        let lost: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, t)| t.job.source_worker == worker)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.finalize(id, JobState::WorkerLost, None, msg.to_string(), true);
        }
    }

    /// Whether `worker` is live, or gone so recently that it may still return.
    fn may_run(&self, worker: &str) -> bool {
        self.members.contains(worker) || self.departed.contains_key(worker)
    }

    /// Starts every queued job the scheduler allows.
    fn schedule(&mut self) {
        if !std::mem::take(&mut self.dirty) || self.queue.is_empty() {
            return;
        }
        if std::mem::take(&mut self.members_changed) {
            self.fail_unrunnable();
        }
        let claims: Vec<&Claim> = self.queue.iter().map(|id| &self.jobs[id].claim).collect();
        let picked = scheduler::pick(&mut self.locks, claims);
        if picked.is_empty() {
            return;
        }
        // One pass: `picked` is in queue order.
        let mut started = Vec::with_capacity(picked.len());
        let mut next = picked.iter().copied().peekable();
        let mut i = 0;
        self.queue.retain(|id| {
            let pick = next.next_if_eq(&i).is_some();
            i += 1;
            if pick {
                started.push(*id);
            }
            !pick
        });
        for id in started {
            self.jobs.get_mut(&id).expect("queued job is tracked").phase = Phase::Delivering;
            self.start_delivery(id);
        }
    }

    /// Queued jobs whose source or target worker has gone end now instead of waiting.
    fn fail_unrunnable(&mut self) {
        let mut ends = Vec::new();
        for id in &self.queue {
            let job = &self.jobs[id].job;
            if !self.may_run(&job.source_worker) {
                let msg = format!(
                    "worker {} went away before the job started",
                    job.source_worker
                );
                ends.push((*id, JobState::WorkerLost, None, msg));
            } else if let Some(target) = job.target_worker.as_ref().filter(|t| !self.may_run(t)) {
                let msg = format!("target worker {target} went away before the job started");
                ends.push((*id, JobState::Failed, Some(FailureReason::Unreachable), msg));
            }
        }
        for (id, state, reason, msg) in ends {
            self.finalize(id, state, reason, msg, false);
        }
    }

    fn start_delivery(&mut self, job_id: Uuid) {
        let t = self
            .jobs
            .get_mut(&job_id)
            .expect("delivering job is tracked");
        let target = t.job.target_ip.map(|ip| ResolvedTarget {
            ip,
            port: t.job.target_port.unwrap_or(self.cfg.default_iperf3_port),
            worker_id: t.job.target_worker.clone(),
        });
        let assignment = JobAssignment {
            job_id,
            params: t.job.params.clone(),
            target,
            deadline_at_ms: t.job.deadline_at_ms,
        };
        let cancel = CancellationToken::new();
        t.delivery = Some(cancel.clone());
        let subject = job_subject(&t.job.source_worker);
        let (client, tx, timeout) = (
            self.client.clone(),
            self.tx.clone(),
            self.cfg.delivery_timeout,
        );
        tokio::spawn(async move {
            let delivery = deliver::deliver(&client, subject, &assignment, timeout, &cancel).await;
            let _ = tx.send(Input::Delivered { job_id, delivery });
        });
    }

    fn untrack(&mut self, job_id: Uuid) -> Option<Tracked> {
        let t = self.jobs.remove(&job_id)?;
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.dirty = true;
        if let Some(key) = &t.deadline {
            self.deadlines.try_remove(key);
        }
        if t.phase == Phase::Queued {
            self.queue.retain(|id| *id != job_id);
        } else {
            self.locks.release(&t.claim);
        }
        Some(t)
    }

    /// Ends a job: releases it now and records the terminal state (unless `check_stream` finds the
    /// worker's own result already in the results stream: ingest will store that one).
    fn finalize(
        &mut self,
        job_id: Uuid,
        state: JobState,
        reason: Option<FailureReason>,
        message: String,
        check_stream: bool,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let t = self.untrack(job_id)?;
        if let Some(d) = &t.delivery {
            d.cancel();
        }
        tracing::info!(%job_id, %state, %message, "job ended by the dispatcher");
        if t.phase != Phase::Queued && matches!(state, JobState::TimedOut | JobState::Cancelled) {
            self.tell_worker_to_stop(&t.job.source_worker, job_id);
        }
        let tr = Transition {
            reason,
            finished_at_ms: Some(now_ms()),
            ..Transition::to(state)
        }
        .message(message);
        let (store, results, client) = (
            self.store.clone(),
            self.results.clone(),
            self.client.clone(),
        );
        let source = t.job.source_worker.clone();
        Some(tokio::spawn(async move {
            if check_stream && result_in_stream(&results, job_id, &source).await {
                tracing::info!(%job_id, "the worker's result is in the stream; it wins");
                return;
            }
            let mut backoff = Duration::from_millis(200);
            for _ in 0..30 {
                match store.transition_returning(job_id, &tr).await {
                    Ok((_, Some(rec))) => return announce_done(&client, &rec).await,
                    Ok(_) => return,
                    Err(err) => {
                        tracing::warn!(%job_id, %err, "cannot record the terminal state; retrying")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            tracing::error!(%job_id, "gave up recording the terminal state; a restart resumes it");
        }))
    }

    fn tell_worker_to_stop(&self, worker: &str, job_id: Uuid) {
        let cmd = WorkerCommand::Cancel(CancelJob { job_id });
        let payload: bytes::Bytes = serde_json::to_vec(&cmd).expect("command serialises").into();
        let (client, subject) = (self.client.clone(), job_subject(worker));
        tokio::spawn(async move {
            let req = client.request(subject, payload);
            let _ = tokio::time::timeout(Duration::from_secs(2), req).await;
        });
    }
}

/// Tells waiting clients that `job_id`'s terminal state is stored ([`done_subject`]).
/// The payload is the stored record (JSON), so a waiting client needs no second request.
pub async fn announce_done(client: &Client, rec: &podperf_protocol::api::JobRecord) {
    let job_id = rec.job_id;
    let payload: bytes::Bytes = serde_json::to_vec(rec).expect("records serialise").into();
    if let Err(err) = client.publish(done_subject(job_id), payload).await {
        tracing::debug!(%job_id, %err, "could not announce the terminal state");
    }
}

/// Whether the job's source worker published its result (a result from another worker is not
/// one: ingest ignores it).
async fn result_in_stream(results: &Stream, job_id: Uuid, source: &str) -> bool {
    let Ok(msg) = results
        .direct_get_last_for_subject(result_subject(job_id))
        .await
    else {
        return false;
    };
    serde_json::from_slice::<podperf_protocol::outcome::JobOutcome>(&msg.payload)
        .is_ok_and(|o| o.worker_id == source)
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Queued => "queued",
        Phase::Delivering => "being delivered",
        Phase::Dispatched => "dispatched or running",
    }
}
