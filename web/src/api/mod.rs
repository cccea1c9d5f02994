//! REST API v2 (`/api/v2/…`): the protocol's types as JSON (the same as `podperf … -o json`).

pub mod events;
pub mod fleet;
pub mod health;
pub mod jobs;
pub mod runs;
pub mod schedules;
pub mod status;
pub mod workers;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// The v2 routes (behind the token).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/workers", get(workers::list))
        .route("/api/v2/jobs", post(jobs::submit).get(jobs::list))
        .route("/api/v2/jobs/{id}", get(jobs::get))
        .route("/api/v2/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/v2/runs", post(runs::start).get(runs::list))
        .route("/api/v2/runs/{id}", get(runs::get))
        .route("/api/v2/events", get(events::events))
        .route("/api/v2/status", get(status::status))
        .route("/api/v2/health", get(fleet::latest).post(fleet::run))
        .route(
            "/api/v2/schedules",
            get(schedules::list).post(schedules::add),
        )
        .route("/api/v2/schedules/{name}", delete(schedules::remove))
        .route("/api/v2/schedules/{name}/pause", post(schedules::pause))
        .route("/api/v2/schedules/{name}/resume", post(schedules::resume))
        .route("/api/v2/openapi.json", get(crate::openapi::openapi_json))
}
