//! The published design's v1 API (`/api/v1/external/…`), unchanged for its users' scripts: the
//! envelope `{"status": 0 | -1, "msg": "…", "data": …}` and its Go-cased keys.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::AppError;

/// The v1 envelope.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    pub status: i32,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// A success: `{"status":0,"msg":"","data":…}`.
pub fn ok<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        status: 0,
        msg: String::new(),
        data: Some(data),
    })
}

/// A refusal in the v1 envelope (`status: -1`), with the HTTP status v2 would give it.
pub fn refusal(err: AppError) -> Response {
    let msg = match &err.field {
        Some(f) => format!("{} ({f}): {}", err.code, err.message),
        None => format!("{}: {}", err.code, err.message),
    };
    let body = Envelope::<()> {
        status: -1,
        msg,
        data: None,
    };
    (err.status, Json(body)).into_response()
}

pub mod clients;
pub mod params;
pub mod task;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The v1 routes (behind the token).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/external/clients", get(clients::list))
        .route("/api/v1/external/task/create", post(task::create))
        .route("/api/v1/external/task", get(task::get))
}

/// RFC 3339 (UTC, milliseconds) of a `*_at_ms` timestamp.
pub fn rfc3339(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An integer id for the `ID` key (the old system's row id): the last 48 bits of the UUID
/// (random in v4 and v7 ids), below 2^53 so JavaScript reads it exactly.
pub fn integer_id(id: &uuid::Uuid) -> u64 {
    let b = id.as_bytes();
    b[10..16].iter().fold(0u64, |n, x| (n << 8) | u64::from(*x))
}
