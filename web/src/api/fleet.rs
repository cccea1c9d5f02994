//! `/api/v2/health`: `podperf health` over HTTP — which node is at fault.
//!
//! - `GET` answers from the latest complete sweep round this podperf-web has seen on NATS
//!   (scheduled sweeps, `podperf sweep`, a `POST` here — anything that sweeps from every live
//!   worker), with the latest TCP bandwidth per node pair of the last hour; 404 `no_round`
//!   before one completed (since this process started).
//! - `POST` runs a round now (the options of `podperf health`) and answers when it has ended.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use podperf_protocol::health::{HealthAnswer, HealthRequest};

use crate::error::{AppError, Result};
use crate::extract::Body;
use crate::state::AppState;

/// The error code of `GET /api/v2/health` before any round completed.
pub const NO_ROUND: &str = "no_round";

const ANSWER: &str = "HealthAnswer `{round_completed_at_ms, round_age_s, sweeps, healthy, nodes, bandwidth_pairs, bandwidth_unavailable?, findings: [{finding: cannot_send|unreachable|isolated|slow|lossy, node, peer?, path?, protocol?, value, baseline, message}]}` (with `protocol`, a bandwidth finding: value and baseline in bits per second)";

/// `GET /api/v2/health`: the findings of the latest complete sweep round seen.
#[utoipa::path(get, path = "/api/v2/health", operation_id = "get_health", tag = "v2",
    responses((status = 200, description = ANSWER, body = serde_json::Value),
              (status = 401, body = crate::error::ErrorBody),
              (status = 404, description = "`no_round`: no complete sweep round seen since this podperf-web started (POST runs one; or schedule sweeps)", body = crate::error::ErrorBody)))]
pub async fn latest(State(s): State<AppState>) -> Result<Json<HealthAnswer>> {
    s.watch.metrics.latest_health().map(Json).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            NO_ROUND,
            "no complete sweep round seen since podperf-web started: POST /api/v2/health runs \
             one now, or schedule sweeps (podperf schedule add NAME --every 5m sweep)",
        )
    })
}

/// `POST /api/v2/health`: a sweep round now, and its findings with the latest bandwidth.
#[utoipa::path(post, path = "/api/v2/health", operation_id = "run_health", tag = "v2",
    request_body(content = serde_json::Value, description = "HealthRequest `{count, interval_ms, from, to, bandwidth_max_age_s}`, every field optional (count 1–100, default 5; interval_ms 20–10000, default 100; from/to: worker names, default every live worker; bandwidth_max_age_s 0–604800, default 3600, 0 = no bandwidth; gone_max_age_s 0–604800, default 600, 0 = never name a node gone)"),
    responses((status = 200, description = ANSWER, body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 404, description = "a worker named in from/to is unknown", body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn run(
    State(s): State<AppState>,
    Body(req): Body<HealthRequest>,
) -> Result<Json<HealthAnswer>> {
    req.validate()
        .map_err(|e| AppError::invalid_param(&e.field, e.message))?;
    let ran = tokio::select! {
        r = s.client.health(&req) => r?,
        _ = s.shutdown.cancelled() => return Err(AppError::shutting_down()),
    };
    let (grid, report) = ran;
    Ok(Json(HealthAnswer {
        round_completed_at_ms: podperf_protocol::now_ms(),
        round_age_s: 0.0,
        sweeps: grid.sweeps,
        report,
    }))
}
