//! `podperf-client`: the typed async client of the dispatcher's NATS API.
//!
//! Every caller of the API — the CLI, the benchmark harness, the tests and `podperf-web` — goes
//! through [`Client`]; nothing else builds `podperf.api.*` requests.
//!
//! ## Layout
//! - `lib.rs` — [`Client`]: one method per endpoint, plus [`Client::wait`] (the done notice).
//! - `error.rs` — [`Error`] with a [`ErrorKind`] to branch on.
//! - `live.rs` — [`LiveStream`]: job events and results as they are published.
//! - `schedules.rs` — the `schedules.*` endpoints.
//! - `sweep.rs` — sweep rounds, the latest bandwidth per node pair and `podperf health`.

mod error;
mod live;
mod schedules;
mod sweep;

use std::time::Duration;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use podperf_protocol::api::*;
use podperf_protocol::job::JobSpec;
use podperf_protocol::names::{api_subject, done_subject, endpoint};
use podperf_protocol::run::{
    ListRunsReply, ListRunsRequest, MatrixRequest, RunIdRequest, RunReport, RunStarted,
};
use podperf_protocol::worker::WorkerView;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub use error::{Error, ErrorKind, Result};
pub use live::{Live, LiveFilter, LiveStream};
pub use sweep::{pair_bandwidth, Recent, WAIT_SLACK};

/// How long [`Client::new`] waits for each API answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the dispatcher's API over an existing NATS client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    nats: async_nats::Client,
    timeout: Duration,
}

impl Client {
    /// A client whose requests each wait at most `timeout` for an answer.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Client { nats, timeout }
    }

    /// The NATS connection underneath (e.g. to drain it before exiting).
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `payload` as it is to `podperf.api.<endpoint>` and returns the reply's bytes (for
    /// callers that relay a body unparsed, or tests that send malformed ones).
    pub async fn call_raw(&self, endpoint: &str, payload: Bytes) -> Result<Bytes> {
        let subject = api_subject(endpoint);
        let reply = tokio::time::timeout(self.timeout, self.nats.request(subject.clone(), payload))
            .await
            .map_err(|_| Error::Timeout {
                what: subject.clone(),
                limit: self.timeout,
            })?;
        match reply {
            Ok(msg) => Ok(msg.payload),
            Err(err) if err.kind() == RequestErrorKind::NoResponders => {
                Err(Error::NoDispatcher { subject })
            }
            Err(err) if err.kind() == RequestErrorKind::TimedOut => Err(Error::Timeout {
                what: subject,
                limit: self.timeout,
            }),
            Err(err) => Err(Error::nats(format!("request {subject}"), err)),
        }
    }

    /// Sends `req` to `endpoint` and unwraps the `{"ok": …}` / `{"error": …}` envelope.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        endpoint: &str,
        req: &Req,
    ) -> Result<Resp> {
        let body = serde_json::to_vec(req).expect("API requests serialise");
        let payload = self.call_raw(endpoint, body.into()).await?;
        let reply: ApiReply<Resp> =
            serde_json::from_slice(&payload).map_err(|source| Error::Malformed {
                subject: api_subject(endpoint),
                source,
            })?;
        Ok(reply.into_result()?)
    }

    /// One page of the live workers.
    pub async fn workers_page(&self, req: &ListWorkersRequest) -> Result<ListWorkersReply> {
        self.call(endpoint::WORKERS_LIST, req).await
    }

    /// Every live worker, read page by page, ordered by node then pod name.
    pub async fn workers(&self) -> Result<Vec<WorkerView>> {
        let mut all = Vec::new();
        loop {
            let req = ListWorkersRequest {
                offset: Some(all.len() as u32),
                limit: None,
            };
            let page = self.workers_page(&req).await?;
            let done =
                page.workers.is_empty() || all.len() + page.workers.len() >= page.total as usize;
            all.extend(page.workers);
            if done {
                return Ok(all);
            }
        }
    }

    /// The dispatcher replicas (leader first), NATS and Redis reachability, the queue depth and
    /// each store's use against its budget.
    pub async fn status(&self) -> Result<podperf_protocol::status::StatusReply> {
        self.call(endpoint::STATUS, &serde_json::json!({})).await
    }

    /// Submits a batch (accepted or refused as a whole); one id per job, in order. The submit
    /// carries a new submit id; a caller that retries on a timeout uses [`Client::submit_with_id`]
    /// with one id for all its attempts, so the batch is stored once.
    pub async fn submit(&self, jobs: Vec<JobSpec>) -> Result<Vec<Uuid>> {
        self.submit_with_id(Uuid::new_v4(), jobs).await
    }

    /// Submits a batch under `submit_id`: a retry with the same id and the same jobs (on
    /// whichever dispatcher replica, within [`SUBMIT_ID_TTL_S`]) is answered the ids of the
    /// batch stored the first time and stores nothing; the same id with other jobs is refused
    /// (`submit_id_reused`).
    pub async fn submit_with_id(&self, submit_id: Uuid, jobs: Vec<JobSpec>) -> Result<Vec<Uuid>> {
        let n = jobs.len();
        let req = SubmitRequest {
            jobs,
            submit_id: Some(submit_id),
        };
        let reply: SubmitReply = self.call(endpoint::JOBS_SUBMIT, &req).await?;
        if reply.job_ids.len() != n {
            return Err(Error::Malformed {
                subject: api_subject(endpoint::JOBS_SUBMIT),
                source: serde::de::Error::invalid_length(reply.job_ids.len(), &"one id per job"),
            });
        }
        Ok(reply.job_ids)
    }

    /// Submits one job; its id.
    pub async fn submit_one(&self, job: JobSpec) -> Result<Uuid> {
        Ok(self.submit(vec![job]).await?[0])
    }

    pub async fn get(&self, job_id: Uuid) -> Result<JobRecord> {
        self.call(endpoint::JOBS_GET, &JobIdRequest { job_id })
            .await
    }

    /// Jobs matching the filters, newest first: one page, which the dispatcher cuts short to
    /// fit one NATS message (see [`ListJobsReply::truncated`]).
    pub async fn list(&self, req: &ListJobsRequest) -> Result<Vec<JobRecord>> {
        Ok(self.list_page(req).await?.jobs)
    }

    /// As [`Client::list`], with whether the page was cut short.
    pub async fn list_page(&self, req: &ListJobsRequest) -> Result<ListJobsReply> {
        self.call(endpoint::JOBS_LIST, req).await
    }

    /// Cancels a job; the record once the cancellation is stored (unchanged when it had ended).
    pub async fn cancel(&self, job_id: Uuid) -> Result<JobRecord> {
        self.call(endpoint::JOBS_CANCEL, &JobIdRequest { job_id })
            .await
    }

    /// Waits until the job is terminal, at most `limit`: subscribes to the dispatcher's done
    /// notice (which carries the stored record), then reads the record once in case the job had
    /// already ended. Reads it once more when the notice does not come (a notice can be lost, e.g.
    /// while the connection reconnects) before giving up with [`ErrorKind::Timeout`].
    pub async fn wait(&self, job_id: Uuid, limit: Duration) -> Result<JobRecord> {
        self.wait_until(job_id, |_| limit).await
    }

    /// Waits until the job is terminal, as long as its own deadline allows plus `slack` (the
    /// dispatcher ends every job by its deadline, so this gives up only when something is wrong).
    /// One submit and this call are all a caller needs: the deadline comes with the first read.
    pub async fn wait_past_deadline(&self, job_id: Uuid, slack: Duration) -> Result<JobRecord> {
        self.wait_until(job_id, |rec| {
            let left = rec
                .deadline_at_ms
                .saturating_sub(podperf_protocol::now_ms());
            Duration::from_millis(left) + slack
        })
        .await
    }

    async fn wait_until(
        &self,
        job_id: Uuid,
        limit: impl FnOnce(&JobRecord) -> Duration,
    ) -> Result<JobRecord> {
        let mut done = self.subscribed(done_subject(job_id)).await?;
        let rec = self.get(job_id).await?;
        if rec.state.is_terminal() {
            return Ok(rec);
        }
        let limit = limit(&rec);
        let give_up = tokio::time::Instant::now() + limit;
        if let Ok(Some(msg)) = tokio::time::timeout_at(give_up, done.next()).await {
            match serde_json::from_slice::<JobRecord>(&msg.payload) {
                Ok(rec) if rec.state.is_terminal() => return Ok(rec),
                _ => {} // not a record: read the store instead
            }
        }
        let rec = self.get(job_id).await?;
        if rec.state.is_terminal() {
            return Ok(rec);
        }
        Err(Error::Timeout {
            what: format!("job {job_id} (still {})", rec.state),
            limit,
        })
    }

    /// Starts a matrix run. Idempotent under `req.submit_id` (a new one when it has none): a
    /// caller that retries sets it once for all its attempts.
    pub async fn run_start(&self, req: &MatrixRequest) -> Result<RunStarted> {
        if req.submit_id.is_some() {
            return self.call(endpoint::RUNS_START, req).await;
        }
        let req = MatrixRequest {
            submit_id: Some(Uuid::new_v4()),
            ..req.clone()
        };
        self.call(endpoint::RUNS_START, &req).await
    }

    /// A run's progress and report.
    pub async fn run(&self, run_id: Uuid) -> Result<RunReport> {
        self.call(endpoint::RUNS_GET, &RunIdRequest { run_id })
            .await
    }

    /// Runs, newest first.
    pub async fn runs(&self, req: &ListRunsRequest) -> Result<ListRunsReply> {
        self.call(endpoint::RUNS_LIST, req).await
    }

    /// Follows job events and results; subscribed when this returns.
    pub async fn live(&self, filter: LiveFilter) -> Result<LiveStream> {
        LiveStream::subscribe(&self.nats, filter).await
    }

    /// Follows the dispatcher's done notices of every job: each job's record once its terminal
    /// state is stored (whoever ended it: its worker, a cancel, the deadline). Subscribed when
    /// this returns; a notice that is not a record is skipped.
    pub async fn done_notices(&self) -> Result<impl futures::Stream<Item = JobRecord> + Unpin> {
        let sub = self
            .subscribed(format!("{}>", podperf_protocol::names::DONE_PREFIX))
            .await?;
        Ok(sub.filter_map(|msg| {
            futures::future::ready(serde_json::from_slice::<JobRecord>(&msg.payload).ok())
        }))
    }

    /// Subscribes to `subject` and flushes, so the server has the subscription when this returns
    /// (a notice published after it cannot be missed).
    async fn subscribed(&self, subject: String) -> Result<async_nats::Subscriber> {
        let sub = self
            .nats
            .subscribe(subject.clone())
            .await
            .map_err(|e| Error::nats(format!("subscribe {subject}"), e))?;
        self.nats
            .flush()
            .await
            .map_err(|e| Error::nats("flush", e))?;
        Ok(sub)
    }
}
