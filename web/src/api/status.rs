//! `GET /api/v2/status`: what `podperf status -o json` shows — the dispatcher replicas (which one
//! leads), NATS and Redis reachability, the queue depth and each store's use against its budget.

use axum::extract::State;
use axum::Json;
use podperf_protocol::status::StatusReply;

use crate::error::Result;
use crate::state::AppState;

/// The dispatchers' status, as one of them answers it.
#[utoipa::path(get, path = "/api/v2/status", operation_id = "status", tag = "v2",
    responses((status = 200, description = "StatusReply: `{dispatchers: [...], answered_by, nats, redis, queue_depth, store}` (as `podperf -o json status`)", body = serde_json::Value),
              (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn status(State(s): State<AppState>) -> Result<Json<StatusReply>> {
    Ok(Json(s.client.status().await?))
}
