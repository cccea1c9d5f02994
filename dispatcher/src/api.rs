//! The `podperf` micro service: endpoints under `podperf.api.`. Every request is validated in full
//! before anything is stored or dispatched; errors name the offending field.

use std::sync::Arc;

use async_nats::service::ServiceExt;
use async_nats::Client;
use futures::StreamExt;
use podperf_protocol::api::*;
use podperf_protocol::job::{JobKind, JobParams, JobSpec, Target, DEFAULT_QUEUE_ALLOWANCE_S};
use podperf_protocol::names::{endpoint, ADOPT_SUBJECT, API_PREFIX, CANCEL_SUBJECT, SERVICE_NAME};
use podperf_protocol::now_ms;
use podperf_protocol::worker::WorkerInfo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::DispatcherConfig;
use crate::leader::Leadership;
use crate::membership::Members;
use crate::store::{Claim, Inserted, NewJob, Store, StoreError};

pub struct Api {
    pub members: Members,
    pub store: Store,
    /// The engine while this replica leads; a standby stores jobs and tells the leader.
    pub leadership: Arc<Leadership>,
    pub client: Client,
    pub js: async_nats::jetstream::Context,
    /// The dispatchers bucket (the replicas and the lease), for `status`.
    pub dispatchers: async_nats::jetstream::kv::Store,
    /// The schedules bucket ([`crate::schedules`]).
    pub schedules: async_nats::jetstream::kv::Store,
    /// Wakes the schedules runner after a change through this replica's API.
    pub schedules_changed: Arc<tokio::sync::Notify>,
    pub cfg: DispatcherConfig,
}

type Reply<T> = Result<T, ApiError>;

/// What a reply adds around its records: `{"ok":{"jobs":[…],"truncated":true}}` and the
/// headers of NATS's reply, with room to spare.
const REPLY_ENVELOPE_BYTES: usize = 1024;

pub(crate) fn store_error(err: StoreError) -> ApiError {
    ApiError::new(
        ErrorCode::StoreUnavailable,
        format!("the job store is unavailable: {err}"),
    )
}

pub(crate) fn parse<T: DeserializeOwned>(payload: &[u8]) -> Reply<T> {
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    serde_json::from_slice(payload)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed request: {e}")))
}

pub(crate) fn encode<T: Serialize>(reply: Reply<T>) -> bytes::Bytes {
    serde_json::to_vec(&ApiReply::from(reply))
        .expect("replies serialise")
        .into()
}

impl Api {
    /// Answers one request on `endpoint` (relative to `podperf.api`).
    pub async fn handle(&self, endpoint: &str, payload: &[u8]) -> bytes::Bytes {
        match endpoint {
            endpoint::WORKERS_LIST => encode(self.workers(payload)),
            endpoint::JOBS_SUBMIT => encode(self.submit(payload).await),
            endpoint::JOBS_GET => encode(self.get(payload).await),
            endpoint::JOBS_LIST => encode(self.list(payload).await),
            endpoint::JOBS_CANCEL => encode(self.cancel(payload).await),
            endpoint::RUNS_START => encode(self.start_run(payload).await),
            endpoint::RUNS_GET => encode(self.get_run(payload).await),
            endpoint::RUNS_LIST => encode(self.list_runs(payload).await),
            endpoint::STATUS => encode(self.status(payload).await),
            other => match self.handle_schedules(other, payload).await {
                Some(reply) => reply,
                None => encode::<()>(Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("unknown endpoint {other}"),
                ))),
            },
        }
    }

    fn workers(&self, payload: &[u8]) -> Reply<ListWorkersReply> {
        let req: ListWorkersRequest = parse(payload)?;
        let all = self.members.snapshot();
        let total = all.len() as u32;
        let limit = req
            .limit
            .unwrap_or(WORKERS_PAGE_MAX)
            .clamp(1, WORKERS_PAGE_MAX) as usize;
        let workers = all
            .into_iter()
            .skip(req.offset.unwrap_or(0) as usize)
            .take(limit)
            .collect();
        Ok(ListWorkersReply { workers, total })
    }

    async fn submit(&self, payload: &[u8]) -> Reply<SubmitReply> {
        let req: SubmitRequest = parse(payload)?;
        // A retry of a stored submit is answered before anything else is checked: its jobs are
        // in, whatever the workers are doing now.
        if let Some(id) = req.submit_id {
            if let Some(prior) = self.store.claim(id).await.map_err(store_error)? {
                return replay(prior, &req.jobs);
            }
        }
        if req.jobs.is_empty() {
            return Err(
                ApiError::new(ErrorCode::InvalidParam, "the batch is empty").with_field("jobs")
            );
        }
        if req.jobs.len() > MAX_BATCH {
            let msg = format!("{} jobs in one batch; at most {MAX_BATCH}", req.jobs.len());
            return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("jobs"));
        }
        let now = now_ms();
        let mut jobs = Vec::with_capacity(req.jobs.len());
        for (i, spec) in req.jobs.iter().enumerate() {
            match self.admit(spec, &[], now) {
                Ok(job) => jobs.push(job),
                // Only now read the workers seen before, to say "offline" rather than "unknown"
                // — and to admit the job if its worker has come back meanwhile. A store that
                // cannot be read is said as such, not as an unknown worker.
                Err(e) if e.code == ErrorCode::UnknownWorker => {
                    let known = self.store.known_workers().await.map_err(store_error)?;
                    match self.admit(spec, &known, now) {
                        Ok(job) => jobs.push(job),
                        Err(e) => return Err(in_batch(e, i)),
                    }
                }
                Err(e) => return Err(in_batch(e, i)),
            }
        }
        let reply = SubmitReply {
            job_ids: jobs.iter().map(|j| j.job_id).collect(),
        };
        let claim = req.submit_id.map(|id| Claim::new(id, &req.jobs, &reply));
        match self.accept_claimed(jobs, None, claim.as_ref()).await? {
            Some(prior) => replay(prior, &req.jobs),
            None => Ok(reply),
        }
    }

    /// [`Api::accept_claimed`] without a submit id.
    pub(crate) async fn accept(
        &self,
        jobs: Vec<NewJob>,
        run: Option<&podperf_protocol::run::RunRecord>,
    ) -> Reply<()> {
        self.accept_claimed(jobs, run, None).await.map(|_| ())
    }

    /// Stores admitted jobs (and their run, and the submit's claim) and has them scheduled: by
    /// this replica's engine while it leads, else by the leader, told of them (and, should that
    /// fail, finding them in the store: a new leader resumes them, a leader rescans for them).
    /// `busy` beyond the dispatcher's limit. When the claim's submit was stored before (a retry
    /// another replica took, or this one took while this request waited), nothing is stored or
    /// scheduled, the room reserved is given back, and the prior claim is returned.
    pub(crate) async fn accept_claimed(
        &self,
        jobs: Vec<NewJob>,
        run: Option<&podperf_protocol::run::RunRecord>,
        claim: Option<&Claim>,
    ) -> Reply<Option<Claim>> {
        let n = jobs.len();
        let busy = |outstanding: usize| {
            let msg = format!(
                "{outstanding} jobs are outstanding (at most {}); try again later",
                self.cfg.max_queued
            );
            ApiError::new(ErrorCode::Busy, msg)
        };
        match self.leadership.engine() {
            Some(engine) => {
                let reservation = engine
                    .reserve(n, self.cfg.max_queued)
                    .ok_or_else(|| busy(engine.outstanding()))?;
                let stored = self.store.insert_claimed(&jobs, run, claim).await;
                // On a claim found (or an error) the reservation is dropped: its room is free.
                if let Inserted::Claimed(prior) = stored.map_err(store_error)? {
                    return Ok(Some(prior));
                }
                engine.enqueue(jobs, reservation);
            }
            None => {
                let outstanding = self.store.active_count().await.map_err(store_error)?;
                if outstanding + n > self.cfg.max_queued {
                    return Err(busy(outstanding));
                }
                let stored = self.store.insert_claimed(&jobs, run, claim).await;
                if let Inserted::Claimed(prior) = stored.map_err(store_error)? {
                    return Ok(Some(prior));
                }
                let ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
                tokio::spawn(tell_leader(self.client.clone(), ids, self.cfg.leader_ttl));
            }
        }
        Ok(None)
    }

    /// Validates one spec against the live workers and the allow-list; builds the job.
    pub(crate) fn admit(&self, spec: &JobSpec, known: &[WorkerInfo], now: u64) -> Reply<NewJob> {
        spec.validate()?;
        let source = self.members.resolve(&spec.source, known);
        let source = source.map_err(|e| e.with_field("source"))?;
        if let Some(tool) = spec.params.tool() {
            if !source.info.has_tool(tool) {
                let msg = format!("worker {} has no {}", source.info.pod_name, tool.program());
                return Err(ApiError::new(ErrorCode::ToolMissing, msg).with_field("source"));
            }
        }
        let params = match &spec.params {
            JobParams::Sweep(p) => {
                JobParams::Sweep(crate::sweep::resolve(&self.members, &source, p, known)?)
            }
            other => other.clone(),
        };
        let resolved = match &spec.target {
            None => None,
            Some(Target::Worker(name)) => {
                let w = self.members.resolve(name, known);
                let i = &w.map_err(|e| e.with_field("target.worker"))?.info;
                let port = match spec.params.kind() {
                    JobKind::Latency => i.sockperf_port,
                    _ => i.iperf3_port,
                };
                let ip = match spec.family {
                    None => i.pod_ip,
                    Some(family) => {
                        // The source must have the family too (its probes bind to it).
                        family_address(&source.info, family).map_err(|e| e.with_field("family"))?;
                        family_address(i, family).map_err(|e| e.with_field("family"))?
                    }
                };
                Some(crate::store::ResolvedTarget {
                    ip,
                    port,
                    worker: Some(i.worker_id.clone()),
                    node: i.node_name.clone(),
                })
            }
            Some(Target::Address(ip)) => {
                if !self.cfg.allowed_cidrs.iter().any(|net| net.contains(ip)) {
                    let msg = format!(
                        "{ip} is outside the allow-listed CIDRs ({})",
                        cidr_list(&self.cfg)
                    );
                    return Err(ApiError::new(ErrorCode::AddressNotAllowed, msg)
                        .with_field("target.address"));
                }
                let port = match spec.params.kind() {
                    JobKind::Latency => podperf_protocol::worker::DEFAULT_SOCKPERF_PORT,
                    _ => self.cfg.default_iperf3_port,
                };
                Some(crate::store::ResolvedTarget {
                    ip: *ip,
                    port,
                    worker: None,
                    node: format!("addr:{ip}"),
                })
            }
        };
        let timeout_s = spec.timeout_s.map(u64::from).unwrap_or_else(|| {
            let probe = spec.params.nominal_duration();
            probe.as_secs() + 5 + u64::from(DEFAULT_QUEUE_ALLOWANCE_S)
        });
        Ok(NewJob {
            job_id: Uuid::now_v7(),
            params,
            source_worker: source.info.worker_id.clone(),
            source_node: source.info.node_name.clone(),
            target: spec.target.clone(),
            resolved,
            created_at_ms: now,
            deadline_at_ms: now + timeout_s * 1000,
        })
    }

    async fn get(&self, payload: &[u8]) -> Reply<JobRecord> {
        let req: JobIdRequest = parse(payload)?;
        self.store
            .get(req.job_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(req.job_id))
    }

    async fn list(&self, payload: &[u8]) -> Reply<ListJobsReply> {
        let req: ListJobsRequest = parse(payload)?;
        let mut req = req;
        if let Some(w) = &req.worker {
            // Accept the same names as everywhere else; keep the raw value for gone workers.
            if let Ok(v) = self.members.resolve(w, &[]) {
                req.worker = Some(v.info.worker_id.clone());
            }
        }
        let budget = (self.client.server_info().max_payload).saturating_sub(REPLY_ENVELOPE_BYTES);
        let page = self.store.list_within(&req, budget).await;
        let page = page.map_err(store_error)?;
        if let Some((job_id, size)) = page.too_large {
            let msg = format!(
                "job {job_id}'s record ({size} bytes) is larger than one NATS message allows \
                 ({budget} bytes for records): read it with jobs.get"
            );
            return Err(ApiError::new(ErrorCode::Internal, msg));
        }
        Ok(ListJobsReply {
            jobs: page.jobs,
            truncated: page.truncated,
        })
    }

    async fn cancel(&self, payload: &[u8]) -> Reply<JobRecord> {
        let req: JobIdRequest = parse(payload)?;
        // Answers once the cancellation is stored (or at once when the job was not outstanding).
        match self.leadership.engine() {
            Some(engine) => {
                engine.cancel(req.job_id).await;
            }
            None => self.forward_cancel(&req).await?,
        }
        self.store
            .get(req.job_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(req.job_id))
    }
}

/// `worker`'s address of `family`; a worker without one is refused (`--family` never falls back
/// to the other family).
fn family_address(
    worker: &WorkerInfo,
    family: podperf_protocol::job::IpFamily,
) -> Reply<std::net::IpAddr> {
    worker.address(family).ok_or_else(|| {
        let addresses: Vec<String> = worker.addresses().map(|ip| ip.to_string()).collect();
        let msg = format!(
            "worker {} has no {family} address (its addresses: {})",
            worker.pod_name,
            addresses.join(", ")
        );
        ApiError::new(ErrorCode::InvalidParam, msg)
    })
}

impl Api {
    /// A standby hands a cancel to the leader and waits until it is stored.
    async fn forward_cancel(&self, req: &JobIdRequest) -> Reply<()> {
        let payload: bytes::Bytes = serde_json::to_vec(req).expect("request serialises").into();
        let ask = self.client.request(CANCEL_SUBJECT, payload);
        match tokio::time::timeout(std::time::Duration::from_secs(10), ask).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(no_leader(&err.to_string())),
            Err(_) => Err(no_leader("no answer within 10 s")),
        }
    }
}

fn no_leader(why: &str) -> ApiError {
    let msg = format!("no leading dispatcher could take the cancel ({why}); try again");
    ApiError::new(ErrorCode::Busy, msg)
}

/// Tells the leader about jobs this standby stored, retrying for a few lease TTLs (a failover
/// may be under way). Should all fail, the jobs are still in the store: the next leader resumes
/// them and a leader's rescan finds them.
async fn tell_leader(client: Client, ids: Vec<Uuid>, ttl: std::time::Duration) {
    use backon::{ExponentialBuilder, Retryable};
    let payload: bytes::Bytes = serde_json::to_vec(&ids).expect("ids serialise").into();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(ttl)
        .with_max_times(8);
    let ask = || async {
        let req = client.request(ADOPT_SUBJECT, payload.clone());
        match tokio::time::timeout(std::time::Duration::from_secs(2), req).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("no answer within 2 s".to_string()),
        }
    };
    if let Err(err) = ask.retry(backoff).await {
        tracing::warn!(jobs = ids.len(), %err, "could not tell the leader about stored jobs; a rescan will find them");
    }
}

/// The answer to a retried submit: the first one's, when it asked the same; else
/// `submit_id_reused`.
pub(crate) fn replay<T: DeserializeOwned>(prior: Claim, request: &impl Serialize) -> Reply<T> {
    if !prior.same_request(request) {
        let msg = format!(
            "submit id {} was used for a different request; use a new id for a new submit",
            prior.submit_id
        );
        return Err(ApiError::new(ErrorCode::SubmitIdReused, msg).with_field("submit_id"));
    }
    tracing::info!(submit_id = %prior.submit_id, "a retried submit answered from its first");
    prior.answer().map_err(store_error)
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no job {id}")).with_field("job_id")
}

fn in_batch(e: ApiError, i: usize) -> ApiError {
    let field = match &e.field {
        Some(f) => format!("jobs[{i}].{f}"),
        None => format!("jobs[{i}]"),
    };
    ApiError {
        field: Some(field),
        ..e
    }
}

fn cidr_list(cfg: &DispatcherConfig) -> String {
    if cfg.allowed_cidrs.is_empty() {
        return "none configured".into();
    }
    cfg.allowed_cidrs
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serves the API until `shutdown`.
pub async fn serve(
    client: &Client,
    api: Arc<Api>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::Error> {
    let service = client
        .service_builder()
        .description("podperf dispatcher: workers, jobs, runs, schedules")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await?;
    let group = service.group(API_PREFIX);
    // `workers.list` last: an answer from it is what clients (the testbed, the tests, the bench)
    // take as "the API is up", and the server handles one connection's subscriptions in order.
    use podperf_protocol::schedule::endpoint as schedules;
    let names = [
        endpoint::JOBS_SUBMIT,
        endpoint::JOBS_GET,
        endpoint::JOBS_LIST,
        endpoint::JOBS_CANCEL,
        endpoint::RUNS_START,
        endpoint::RUNS_GET,
        endpoint::RUNS_LIST,
        endpoint::STATUS,
        schedules::SCHEDULES_ADD,
        schedules::SCHEDULES_LIST,
        schedules::SCHEDULES_RM,
        schedules::SCHEDULES_PAUSE,
        schedules::SCHEDULES_RESUME,
        endpoint::WORKERS_LIST,
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let mut ep = group.endpoint(name).await?;
        let api = api.clone();
        tasks.spawn(async move {
            while let Some(req) = ep.next().await {
                let api = api.clone();
                tokio::spawn(async move {
                    let reply = api.handle(name, &req.message.payload).await;
                    if let Err(err) = req.respond(Ok(reply)).await {
                        tracing::warn!(%err, endpoint = name, "could not send the reply");
                    }
                });
            }
        });
    }
    shutdown.cancelled().await;
    let _ = service.stop().await;
    tasks.abort_all();
    Ok(())
}
