//! `/api/v2/jobs`: submit (one spec or a batch, optionally waiting for the end), list, get, cancel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use podperf_protocol::api::{
    JobRecord, ListJobsReply, ListJobsRequest, SubmitReply, SubmitRequest,
};
use podperf_protocol::job::JobSpec;
use podperf_protocol::outcome::JobState;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::{AppError, Result};
use crate::extract::{parse_wait, Body, Id, Params};
use crate::hub::HubEvent;
use crate::state::AppState;

/// The submit body: one job spec, or `{"jobs": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SubmitBody {
    Batch(SubmitRequest),
    One(Box<JobSpec>),
}

#[derive(Debug, Deserialize)]
pub struct SubmitQuery {
    /// Wait this long (`30s`) for the terminal state and answer with the record(s).
    pub wait: Option<String>,
}

/// The `Idempotency-Key` request header: a UUID that becomes the submit id.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The submit id of a POST that creates jobs: its `Idempotency-Key` header (a UUID; anything
/// else is refused, 400 `invalid_param`), else the body's `submit_id`, else a new one. A retry
/// with the same key stores nothing and is answered the first submit's ids; the same key with
/// another body is refused, 422 `submit_id_reused`.
pub(crate) fn submit_id(headers: &HeaderMap, in_body: Option<Uuid>) -> Result<Uuid> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(in_body.unwrap_or_else(Uuid::new_v4));
    };
    let bad = || {
        let shown = String::from_utf8_lossy(value.as_bytes())
            .chars()
            .take(64)
            .collect::<String>();
        AppError::invalid_param(
            "Idempotency-Key",
            format!("{shown:?} is not a UUID (e.g. 0192f0c8-7b1e-4c3a-9d2e-5f6a7b8c9d0e)"),
        )
    };
    let key: Uuid = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(bad)?;
    match in_body {
        Some(other) if other != key => Err(AppError::invalid_param(
            "submit_id",
            format!("the body's submit_id {other} differs from the Idempotency-Key {key}"),
        )),
        _ => Ok(key),
    }
}

/// `POST /api/v2/jobs`: 202 `{"job_ids": [...]}`; with `?wait=`, 200 and the record (one spec)
/// or `{"jobs": [records]}` (a batch) once every job is terminal, 504 `wait_timeout` if not by then.
/// With an `Idempotency-Key` header, a retry stores nothing more.
#[utoipa::path(post, path = "/api/v2/jobs", operation_id = "submit_jobs", tag = "v2",
    params(("wait" = Option<String>, Query, description = "wait this long (e.g. `30s`, at most 1h) for the terminal state"),
           ("Idempotency-Key" = Option<String>, Header, description = "a UUID naming this submit: a retry with the same key (within an hour) stores nothing and is answered the first submit's job ids; the same key with another body is refused, 422 `submit_id_reused`; not a UUID: 400 `invalid_param`")),
    request_body(content = serde_json::Value, description = "one JobSpec (`{source, target, params: {kind, …}, timeout_s}`) or SubmitRequest `{jobs: [JobSpec]}`"),
    responses((status = 202, description = "SubmitReply `{job_ids: [uuid]}`", body = serde_json::Value),
              (status = 200, description = "with `wait`: the JobRecord (one spec) or `{jobs: [JobRecord]}` (a batch)", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn submit(
    State(s): State<AppState>,
    Params(q): Params<SubmitQuery>,
    headers: HeaderMap,
    body: Body<serde_json::Value>,
) -> Result<Response> {
    let wait = q
        .wait
        .as_deref()
        .map(|w| parse_wait(w, s.config.max_wait))
        .transpose()?;
    let (req, one) = parse_submit(body.0)?;
    let id = submit_id(&headers, req.submit_id)?;
    // The client named the submit: it may be a retry.
    let named = headers.contains_key(IDEMPOTENCY_KEY) || req.submit_id.is_some();
    let Some(limit) = wait else {
        let ids = s.client.submit_with_id(id, req.jobs).await?;
        return Ok((StatusCode::ACCEPTED, Json(SubmitReply { job_ids: ids })).into_response());
    };
    let give_up = Instant::now() + limit;
    // Before the submit, so that no job of it can end unseen. A named submit may be a retry
    // whose jobs ended before it came: their notices are gone, each job is read instead.
    let notices = if named { None } else { s.hub.done_events() };
    let ids = s.client.submit_with_id(id, req.jobs).await?;
    let mut records = match notices {
        Some(rx) => wait_notices(&s, &ids, rx, give_up).await?,
        None => wait_each(&s, &ids, give_up).await?,
    };
    let body = if one {
        records.swap_remove(0)
    } else {
        format!("{{\"jobs\":[{}]}}", records.join(","))
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The records (as JSON) of `ids` from the hub's done events: no request of its own per job, the
/// hub's subscription already has them. Whatever did not come by `give_up` (a notice lost while
/// NATS reconnected) or fell out of the channel (`Lagged`) is read from the store.
async fn wait_notices(
    s: &AppState,
    ids: &[Uuid],
    mut rx: broadcast::Receiver<Arc<HubEvent>>,
    give_up: Instant,
) -> Result<Vec<String>> {
    let mut got: HashMap<Uuid, Arc<HubEvent>> = HashMap::with_capacity(ids.len());
    let wanted: HashSet<Uuid> = ids.iter().copied().collect();
    while got.len() < wanted.len() {
        let next = tokio::select! {
            _ = s.shutdown.cancelled() => return Err(AppError::shutting_down()),
            r = tokio::time::timeout_at(give_up, rx.recv()) => r,
        };
        match next {
            Ok(Ok(ev)) => {
                if let Some(id) = ev.job_id.filter(|id| wanted.contains(id)) {
                    got.insert(id, ev);
                }
            }
            Ok(Err(RecvError::Lagged(_) | RecvError::Closed)) | Err(_) => break,
        }
    }
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        match got.get(id) {
            Some(ev) => records.push(ev.data.clone()),
            None => records.push(record_json(&wait_one(s, *id, left(give_up)).await?)),
        }
    }
    Ok(records)
}

/// The records (as JSON) of `ids`, each waited for through the client (the hub is not
/// following the feed).
async fn wait_each(s: &AppState, ids: &[Uuid], give_up: Instant) -> Result<Vec<String>> {
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.push(record_json(&wait_one(s, *id, left(give_up)).await?));
    }
    Ok(records)
}

/// The time left until `give_up`, at least 1 ms (one more read of the store).
fn left(give_up: Instant) -> Duration {
    give_up
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn record_json(rec: &JobRecord) -> String {
    serde_json::to_string(rec).expect("records serialise")
}

/// The request of a body and whether it was a single spec; the serde error of the shape it is
/// closest to (a body with `jobs` is a batch).
fn parse_submit(body: serde_json::Value) -> Result<(SubmitRequest, bool)> {
    let batch = body.get("jobs").is_some();
    let bad = |e: serde_json::Error| AppError::bad_request(format!("the body is not valid: {e}"));
    if batch {
        let req: SubmitRequest = serde_json::from_value(body).map_err(bad)?;
        Ok((req, false))
    } else {
        let spec: JobSpec = serde_json::from_value(body).map_err(bad)?;
        let req = SubmitRequest {
            jobs: vec![spec],
            submit_id: None,
        };
        Ok((req, true))
    }
}

async fn wait_one(s: &AppState, id: Uuid, limit: Duration) -> Result<JobRecord> {
    let waited = tokio::select! {
        _ = s.shutdown.cancelled() => return Err(AppError::shutting_down()),
        r = s.client.wait(id, limit) => r,
    };
    waited.map_err(|e| match e.kind() {
        podperf_client::ErrorKind::Timeout => AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "wait_timeout",
            format!("job {id} is not finished after {limit:?} (it goes on; GET /api/v2/jobs/{id})"),
        ),
        _ => e.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `queued`, `dispatched`, `running`, `succeeded`, `failed`, `timed_out`, `worker_lost`,
    /// `cancelled`.
    pub state: Option<String>,
    /// A worker id (source or target).
    pub worker: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// At most this many (default 100, max 1000).
    pub limit: Option<u32>,
}

/// `GET /api/v2/jobs?state=&worker=&limit=`: newest first.
#[utoipa::path(get, path = "/api/v2/jobs", operation_id = "list_jobs", tag = "v2",
    params(("state" = Option<String>, Query, description = "queued, dispatched, running, succeeded, failed, timed_out, worker_lost, cancelled"),
           ("worker" = Option<String>, Query, description = "a worker id (source or target)"),
           ("since_ms" = Option<u64>, Query), ("until_ms" = Option<u64>, Query),
           ("limit" = Option<u32>, Query, description = "default 100, max 1000")),
    responses((status = 200, description = "ListJobsReply `{jobs: [JobRecord], truncated?: true}`: `truncated` when the page was cut before `limit` to fit one NATS message (ask again with `until_ms` = the oldest `created_at_ms` shown)", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<ListJobsReply>> {
    let state = match q.state.as_deref().filter(|st| !st.is_empty()) {
        None => None,
        Some(st) => Some(JobState::parse(st).ok_or_else(|| {
            let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            AppError::invalid_param("state", format!("{st:?} is not one of {}", all.join(", ")))
        })?),
    };
    let req = ListJobsRequest {
        state,
        worker: q.worker.filter(|w| !w.is_empty()),
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        limit: q.limit,
    };
    Ok(Json(s.client.list_page(&req).await?))
}

/// `GET /api/v2/jobs/{id}`.
#[utoipa::path(get, path = "/api/v2/jobs/{id}", operation_id = "get_job", tag = "v2",
    params(("id" = uuid::Uuid, Path, description = "job id")),
    responses((status = 200, description = "JobRecord", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn get(State(s): State<AppState>, Id(id): Id) -> Result<Json<JobRecord>> {
    Ok(Json(s.client.get(id).await?))
}

/// `POST /api/v2/jobs/{id}/cancel`: the record once the cancellation is stored (unchanged when
/// the job had already ended).
#[utoipa::path(post, path = "/api/v2/jobs/{id}/cancel", operation_id = "cancel_job", tag = "v2",
    params(("id" = uuid::Uuid, Path, description = "job id")),
    responses((status = 200, description = "JobRecord", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn cancel(State(s): State<AppState>, Id(id): Id) -> Result<Json<JobRecord>> {
    Ok(Json(s.client.cancel(id).await?))
}
