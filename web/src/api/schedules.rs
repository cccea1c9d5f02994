//! `/api/v2/schedules`: add, list, remove, pause and resume schedules (a sweep round or a matrix
//! run every period, run by the leading dispatcher; see `podperf schedule`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use podperf_protocol::schedule::{AddScheduleRequest, ListSchedulesReply, Schedule};

use crate::error::Result;
use crate::extract::Body;
use crate::state::AppState;

/// `GET /api/v2/schedules`: every schedule by name, with its status, last run and next due time.
#[utoipa::path(get, path = "/api/v2/schedules", operation_id = "list_schedules", tag = "v2",
    responses((status = 200, description = "ListSchedulesReply `{schedules: [Schedule]}`; a Schedule is `{name, every_ms, jitter, until_ms, run: {sweep: {…}} | {matrix: MatrixRequest}, paused, created_at_ms, next_due_ms, next_start_ms, running, last_run: {run_id, due_at_ms, started_at_ms, finished_at_ms, outcome, message}, runs, status}`", body = serde_json::Value),
              (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<ListSchedulesReply>> {
    let schedules = s.client.schedules().await?;
    Ok(Json(ListSchedulesReply { schedules }))
}

/// `POST /api/v2/schedules`: 201 with the schedule as stored (its first run is due at once,
/// within its jitter).
#[utoipa::path(post, path = "/api/v2/schedules", operation_id = "add_schedule", tag = "v2",
    request_body(content = serde_json::Value, description = "AddScheduleRequest `{name, every_ms, jitter, until_ms, run: {sweep: {count, interval_ms, from, to}} | {matrix: MatrixRequest}}` (name: 1–64 of `[A-Za-z0-9_-]`; every_ms: 10 s..7 days unless the dispatcher's minimum is lowered; jitter 0..=0.5)"),
    responses((status = 201, description = "the Schedule", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    Body(req): Body<AddScheduleRequest>,
) -> Result<(StatusCode, Json<Schedule>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.client.schedule_add(&req).await?),
    ))
}

/// `DELETE /api/v2/schedules/{name}`: the schedule as it was (a run in progress goes on).
#[utoipa::path(delete, path = "/api/v2/schedules/{name}", operation_id = "remove_schedule", tag = "v2",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, description = "the Schedule as it was", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn remove(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Schedule>> {
    Ok(Json(s.client.schedule_rm(&name).await?))
}

/// `POST /api/v2/schedules/{name}/pause`: no run starts until it is resumed.
#[utoipa::path(post, path = "/api/v2/schedules/{name}/pause", operation_id = "pause_schedule", tag = "v2",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, description = "the Schedule", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn pause(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Schedule>> {
    Ok(Json(s.client.schedule_pause(&name).await?))
}

/// `POST /api/v2/schedules/{name}/resume`: runs again from the next slot (runs missed while
/// paused are not made up for).
#[utoipa::path(post, path = "/api/v2/schedules/{name}/resume", operation_id = "resume_schedule", tag = "v2",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, description = "the Schedule", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn resume(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Schedule>> {
    Ok(Json(s.client.schedule_resume(&name).await?))
}
