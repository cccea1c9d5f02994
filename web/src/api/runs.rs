//! `/api/v2/runs`: start a matrix run, list runs, one run's progress and report.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use podperf_protocol::run::{ListRunsReply, ListRunsRequest, MatrixRequest, RunReport, RunStarted};
use serde::Deserialize;

use crate::error::Result;
use crate::extract::{Body, Id, Params};
use crate::state::AppState;

/// `POST /api/v2/runs` with a matrix request (an empty body takes every default): 202 with the
/// run's id, rounds, pairs and job ids.
#[utoipa::path(post, path = "/api/v2/runs", operation_id = "start_run", tag = "v2",
    params(("Idempotency-Key" = Option<String>, Header, description = "a UUID naming this start: a retry with the same key (within an hour) starts nothing and is answered the first run; the same key with another body is refused, 422 `submit_id_reused`; not a UUID: 400 `invalid_param`")),
    request_body(content = serde_json::Value, description = "MatrixRequest `{mesh, samples, ping_count, iperf3_duration_s, udp, udp_bitrate_bps, traceroute}` (every field optional)"),
    responses((status = 202, description = "RunStarted `{run_id, rounds, pairs, job_ids}`", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
              (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    Body(mut req): Body<MatrixRequest>,
) -> Result<(StatusCode, Json<RunStarted>)> {
    req.submit_id = Some(super::jobs::submit_id(&headers, req.submit_id)?);
    Ok((StatusCode::ACCEPTED, Json(s.client.run_start(&req).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
}

/// `GET /api/v2/runs?limit=`: newest first, with their progress.
#[utoipa::path(get, path = "/api/v2/runs", operation_id = "list_runs", tag = "v2",
    params(("limit" = Option<u32>, Query)),
    responses((status = 200, description = "ListRunsReply `{runs: [RunProgress]}`", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<ListRunsReply>> {
    let req = ListRunsRequest { limit: q.limit };
    Ok(Json(s.client.runs(&req).await?))
}

/// `GET /api/v2/runs/{id}`: progress and the report as far as measured (`podperf-report`,
/// computed by the dispatcher).
#[utoipa::path(get, path = "/api/v2/runs/{id}", operation_id = "get_run", tag = "v2",
    params(("id" = uuid::Uuid, Path, description = "run id")),
    responses((status = 200, description = "RunReport `{progress, request, classes, pairs, overlay_cost}`", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn get(State(s): State<AppState>, Id(id): Id) -> Result<Json<RunReport>> {
    Ok(Json(s.client.run(id).await?))
}
