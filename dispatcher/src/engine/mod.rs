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
//!
//! # Layout
//! - `handle`: the API's handle (room under the job limit, enqueue, cancel);
//! - `table`: the tracked jobs and their phases, scheduling and delivery;
//! - `members`: workers leaving and returning; `recover`: resuming after a restart;
//! - `finalize`: the engine's own verdicts; [`done`]: where every terminal state is stored and
//!   announced (ingest's too).

pub mod done;
mod finalize;
mod handle;
mod members;
mod recover;
mod table;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{FailureReason, JobState};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};
use uuid::Uuid;

use crate::config::DispatcherConfig;
use crate::deliver::Delivery;
use crate::membership::{MemberEvent, Members};
use crate::scheduler::Locks;
use crate::store::{NewJob, Store, Transition};
use done::Finisher;
pub use handle::{EngineHandle, Reservation};
use table::{Phase, Tracked};

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
    /// Jobs stored (by a standby, or by this replica while it was deposed) that the engine may
    /// not hold yet, with their stored state: tracked unless held or ended lately.
    Adopt(Vec<(NewJob, JobState)>),
    /// The ids the engine holds or ended lately (a rescan of the store skips them).
    Known(oneshot::Sender<HashSet<Uuid>>),
}

pub struct Engine {
    client: Client,
    results: Stream,
    store: Store,
    /// Where the engine's terminal verdicts are stored and announced.
    finisher: Finisher,
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
    /// Jobs ended lately (by when), so a rescan of the store does not take them up again while
    /// their terminal state is still being written.
    ended: HashSet<Uuid>,
    ended_order: VecDeque<(Instant, Uuid)>,
}

/// How long an ended job is remembered against being adopted again.
const ENDED_MEMORY: std::time::Duration = std::time::Duration::from_secs(120);

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
            finisher: Finisher::new(store.clone(), client.clone()),
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
            ended: HashSet::new(),
            ended_order: VecDeque::new(),
        };
        (engine, handle)
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                input = self.rx.recv() => match input {
                    Some(i) => self.handle(i),
                    None => break,
                },
                Some(expired) = futures::future::poll_fn(|cx| self.deadlines.poll_expired(cx)),
                    if !self.deadlines.is_empty() => self.on_deadline(expired.into_inner()),
                Some(left) = futures::future::poll_fn(|cx| self.departures.poll_expired(cx)),
                    if !self.departures.is_empty() => self.on_grace_over(left.into_inner()),
                _ = shutdown.cancelled() => break,
            }
            // Drain what is already waiting before scheduling (batches schedule once).
            while let Ok(i) = self.rx.try_recv() {
                self.handle(i);
            }
            self.schedule();
        }
        // Stopped (shutdown, or this replica was deposed): no more deliveries from here.
        for t in self.jobs.values() {
            if let Some(d) = &t.delivery {
                d.cancel();
            }
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Enqueue(jobs) => {
                for job in jobs {
                    if !self.track(job, Phase::Queued) {
                        // Adopted by a rescan first: its room is counted once.
                        self.outstanding
                            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            Input::Adopt(jobs) => {
                let jobs: Vec<_> = jobs
                    .into_iter()
                    .filter(|(j, _)| !self.ended.contains(&j.job_id))
                    .collect();
                let adopted = self.resume(jobs);
                if adopted > 0 {
                    tracing::info!(adopted, "took up jobs stored without this leader");
                }
            }
            Input::Known(reply) => {
                let known = self.jobs.keys().chain(&self.ended).copied().collect();
                let _ = reply.send(known);
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
                    ..Transition::to(t.phase.state())
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

        let msg = format!(
            "the deadline passed while the job was {}",
            t.phase.describe()
        );
        self.finalize(job_id, JobState::TimedOut, None, msg, true);
    }
}
