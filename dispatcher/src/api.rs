//! The `podperf` micro service: endpoints under `podperf.api.`. Every request is validated in full
//! before anything is stored or dispatched; errors name the offending field.

use std::sync::Arc;

use async_nats::service::ServiceExt;
use async_nats::Client;
use futures::StreamExt;
use podperf_protocol::api::*;
use podperf_protocol::job::{JobKind, JobSpec, Target, DEFAULT_QUEUE_ALLOWANCE_S};
use podperf_protocol::names::{endpoint, API_PREFIX, SERVICE_NAME};
use podperf_protocol::now_ms;
use podperf_protocol::worker::WorkerInfo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::DispatcherConfig;
use crate::engine::EngineHandle;
use crate::membership::Members;
use crate::store::{NewJob, Store, StoreError};

pub struct Api {
    pub members: Members,
    pub store: Store,
    pub engine: EngineHandle,
    pub cfg: DispatcherConfig,
}

type Reply<T> = Result<T, ApiError>;

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

fn encode<T: Serialize>(reply: Reply<T>) -> bytes::Bytes {
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
            other => encode::<()>(Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("unknown endpoint {other}"),
            ))),
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
        if req.jobs.is_empty() {
            return Err(
                ApiError::new(ErrorCode::InvalidParam, "the batch is empty").with_field("jobs")
            );
        }
        if req.jobs.len() > MAX_BATCH {
            let msg = format!("{} jobs in one batch; at most {MAX_BATCH}", req.jobs.len());
            return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("jobs"));
        }
        let reservation = self.reserve(req.jobs.len())?;
        let now = now_ms();
        let mut jobs = Vec::with_capacity(req.jobs.len());
        for (i, spec) in req.jobs.iter().enumerate() {
            match self.admit(spec, &[], now) {
                Ok(job) => jobs.push(job),
                // Only now read the workers seen before, to say "offline" rather than "unknown".
                Err(e) if e.code == ErrorCode::UnknownWorker => {
                    let known = self.store.known_workers().await.unwrap_or_default();
                    let e = self.admit(spec, &known, now).err().unwrap_or(e);
                    return Err(in_batch(e, i));
                }
                Err(e) => return Err(in_batch(e, i)),
            }
        }
        self.store.insert(&jobs).await.map_err(store_error)?;
        let job_ids = jobs.iter().map(|j| j.job_id).collect();
        self.engine.enqueue(jobs, reservation);
        Ok(SubmitReply { job_ids })
    }

    /// Room for `n` more jobs, or `busy`.
    pub(crate) fn reserve(&self, n: usize) -> Reply<crate::engine::Reservation> {
        self.engine.reserve(n, self.cfg.max_queued).ok_or_else(|| {
            let msg = format!(
                "{} jobs are outstanding (at most {}); try again later",
                self.engine.outstanding(),
                self.cfg.max_queued
            );
            ApiError::new(ErrorCode::Busy, msg)
        })
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
        let resolved = match &spec.target {
            None => None,
            Some(Target::Worker(name)) => {
                let w = self.members.resolve(name, known);
                let i = &w.map_err(|e| e.with_field("target.worker"))?.info;
                let port = match spec.params.kind() {
                    JobKind::Latency => i.sockperf_port,
                    _ => i.iperf3_port,
                };
                Some(crate::store::ResolvedTarget {
                    ip: i.pod_ip,
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
            params: spec.params.clone(),
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
        Ok(ListJobsReply {
            jobs: self.store.list(&req).await.map_err(store_error)?,
        })
    }

    async fn cancel(&self, payload: &[u8]) -> Reply<JobRecord> {
        let req: JobIdRequest = parse(payload)?;
        // Answers once the cancellation is stored (or at once when the job was not outstanding).
        self.engine.cancel(req.job_id).await;
        self.store
            .get(req.job_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(req.job_id))
    }
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
        .description("podperf dispatcher: workers, jobs")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await?;
    let group = service.group(API_PREFIX);
    // `workers.list` last: an answer from it is what clients (the testbed, the tests, the bench)
    // take as "the API is up", and the server handles one connection's subscriptions in order.
    let names = [
        endpoint::JOBS_SUBMIT,
        endpoint::JOBS_GET,
        endpoint::JOBS_LIST,
        endpoint::JOBS_CANCEL,
        endpoint::RUNS_START,
        endpoint::RUNS_GET,
        endpoint::RUNS_LIST,
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
