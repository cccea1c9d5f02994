//! Job intake on `podperf.jobs.<worker_id>`: every request is answered at once (accepted or a
//! typed refusal); accepted jobs run under a concurrency limit, each id at most once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subscriber};
use futures::StreamExt;
use podperf_protocol::command::{JobAssignment, RefusalReason, WorkerCommand, WorkerReply};
use podperf_protocol::now_ms;
use podperf_protocol::worker::WorkerInfo;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::execute::{self, JobEnv, StopCause};

/// How long accepted ids are remembered (retries of the same id within it are not run again).
const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// Most ids remembered; the oldest are forgotten first.
const REMEMBER_MAX: usize = 1_000_000;

/// Recently accepted job ids, forgotten in the order they came, after [`REMEMBER_FOR`].
#[derive(Default)]
struct Recent {
    ids: HashSet<Uuid>,
    order: VecDeque<(Instant, Uuid)>,
}

impl Recent {
    fn insert(&mut self, id: Uuid, now: Instant) {
        while let Some((at, old)) = self.order.front().copied() {
            if now.duration_since(at) < REMEMBER_FOR && self.order.len() < REMEMBER_MAX {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if self.ids.insert(id) {
            self.order.push_back((now, id));
        }
    }
}

/// Shared state of the intake loop and the job tasks.
pub struct Intake {
    client: Client,
    info: WorkerInfo,
    env: Arc<JobEnv>,
    permits: Arc<Semaphore>,
    recent: Mutex<Recent>,
    running: Mutex<HashMap<Uuid, CancellationToken>>,
    /// Set once the grace period is over: running jobs are being stopped because of shutdown.
    shutting_down: CancellationToken,
    pub tracker: TaskTracker,
}

impl Intake {
    pub fn new(client: Client, info: WorkerInfo, env: JobEnv) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(info.max_concurrent_jobs as usize));
        Arc::new(Intake {
            client,
            info,
            env: Arc::new(env),
            permits,
            recent: Mutex::default(),
            running: Mutex::default(),
            shutting_down: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })
    }

    /// Answers requests until `stop` fires; jobs keep running in [`Intake::tracker`].
    pub async fn serve(self: &Arc<Self>, mut sub: Subscriber, stop: CancellationToken) {
        loop {
            let msg = tokio::select! {
                msg = sub.next() => match msg { Some(m) => m, None => break },
                _ = stop.cancelled() => break,
            };
            let reply = self.handle(&msg);
            if let Some(to) = msg.reply {
                let body = serde_json::to_vec(&reply).expect("reply serialises");
                if let Err(err) = self.client.publish(to, body.into()).await {
                    tracing::warn!(%err, "could not answer a job request");
                }
            }
        }
        let _ = sub.unsubscribe().await;
    }

    /// Stops every running job (end of the shutdown grace period).
    pub fn stop_all(&self) {
        self.shutting_down.cancel();
        for token in self.running.lock().unwrap().values() {
            token.cancel();
        }
    }

    fn handle(self: &Arc<Self>, msg: &Message) -> WorkerReply {
        match serde_json::from_slice::<WorkerCommand>(&msg.payload) {
            Ok(WorkerCommand::Run(job)) => self.accept(job),
            Ok(WorkerCommand::Cancel(c)) => {
                let token = self.running.lock().unwrap().get(&c.job_id).cloned();
                if let Some(t) = &token {
                    t.cancel();
                }
                WorkerReply::CancelAck {
                    job_id: c.job_id,
                    found: token.is_some(),
                }
            }
            Err(err) => WorkerReply::Refused {
                job_id: Uuid::nil(),
                reason: RefusalReason::InvalidSpec,
                message: format!("malformed command: {err}"),
            },
        }
    }

    fn accept(self: &Arc<Self>, job: JobAssignment) -> WorkerReply {
        let job_id = job.job_id;
        let refuse = |reason, message: String| WorkerReply::Refused {
            job_id,
            reason,
            message,
        };
        // A retry of a job already accepted is acknowledged even while shutting down: refusing
        // it would end, as failed, a job whose result is still coming.
        if self.seen(job_id) {
            return WorkerReply::Accepted {
                job_id,
                duplicate: true,
            };
        }
        if self.shutting_down.is_cancelled() || self.tracker.is_closed() {
            return refuse(
                RefusalReason::ShuttingDown,
                "the worker is shutting down".into(),
            );
        }
        if job.deadline_at_ms <= now_ms() {
            return refuse(
                RefusalReason::DeadlinePassed,
                "the job's deadline has passed".into(),
            );
        }
        if let Err(e) = job.validate() {
            return refuse(RefusalReason::InvalidSpec, e.to_string());
        }
        if let Some(tool) = job.params.tool() {
            if !self.info.has_tool(tool) {
                let msg = format!("{} is not installed on this worker", tool.program());
                return refuse(RefusalReason::ToolMissing, msg);
            }
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let msg = format!("already running {} jobs", self.info.max_concurrent_jobs);
            return refuse(RefusalReason::AtCapacity, msg);
        };
        self.remember(job_id);
        let cancel = CancellationToken::new();
        self.running.lock().unwrap().insert(job_id, cancel.clone());
        let this = Arc::clone(self);
        self.tracker.spawn(async move {
            let shutdown = this.shutting_down.clone();
            let cause = move || {
                if shutdown.is_cancelled() {
                    StopCause::Shutdown
                } else {
                    StopCause::Cancelled
                }
            };
            execute::execute(&this.env, job, cancel, cause).await;
            this.running.lock().unwrap().remove(&job_id);
            drop(permit);
        });
        WorkerReply::Accepted {
            job_id,
            duplicate: false,
        }
    }

    fn seen(&self, id: Uuid) -> bool {
        self.recent.lock().unwrap().ids.contains(&id)
    }

    fn remember(&self, id: Uuid) {
        self.recent.lock().unwrap().insert(id, Instant::now());
    }
}
