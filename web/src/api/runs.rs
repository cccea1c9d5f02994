//! `/api/v2/runs`: start a matrix run, list runs, one run's progress and report.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use podperf_protocol::run::{ListRunsReply, ListRunsRequest, MatrixRequest, RunReport, RunStarted};
use serde::Deserialize;

use crate::error::Result;
use crate::extract::{Body, Id, Params};
use crate::state::AppState;

/// `POST /api/v2/runs` with a matrix request (an empty body takes every default): 202 with the
/// run's id, rounds, pairs and job ids.
pub async fn start(
    State(s): State<AppState>,
    Body(req): Body<MatrixRequest>,
) -> Result<(StatusCode, Json<RunStarted>)> {
    Ok((StatusCode::ACCEPTED, Json(s.client.run_start(&req).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
}

/// `GET /api/v2/runs?limit=`: newest first, with their progress.
pub async fn list(
    State(s): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<ListRunsReply>> {
    let req = ListRunsRequest { limit: q.limit };
    Ok(Json(s.client.runs(&req).await?))
}

/// `GET /api/v2/runs/{id}`: progress and the report as far as measured (`podperf-report`,
/// computed by the dispatcher).
pub async fn get(State(s): State<AppState>, Id(id): Id) -> Result<Json<RunReport>> {
    Ok(Json(s.client.run(id).await?))
}
