//! `/healthz` (the process answers) and `/readyz` (NATS connected, the job feed followed, the
//! dispatcher answers): no token needed, so probes work.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use podperf_protocol::api::ListWorkersRequest;
use serde::Serialize;

use crate::error::{AppError, Result};
use crate::state::AppState;

/// `ok`, as the published design's server answered.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "probes", security(()),
    responses((status = 200, description = "the process answers", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub nats: &'static str,
    pub dispatcher: &'static str,
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "probes", security(()),
    responses((status = 200, body = Ready),
              (status = 503, description = "NATS not connected, the job feed not followed, or no dispatcher", body = crate::error::ErrorBody)))]
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Ready>> {
    let unready = |code: &str, msg: &str| AppError::new(StatusCode::SERVICE_UNAVAILABLE, code, msg);
    if s.client.nats().connection_state() != async_nats::connection::State::Connected {
        return Err(unready("nats_unavailable", "not connected to NATS"));
    }
    if !s.hub.is_live() {
        return Err(unready(
            "nats_unavailable",
            "not yet following the job feed",
        ));
    }
    let req = ListWorkersRequest {
        offset: None,
        limit: Some(1),
    };
    match tokio::time::timeout(s.config.ready_timeout, s.client.workers_page(&req)).await {
        Ok(Ok(_)) => Ok(Json(Ready {
            nats: "connected",
            dispatcher: "answers",
        })),
        Ok(Err(e)) => {
            let mut err = AppError::from(e);
            err.status = StatusCode::SERVICE_UNAVAILABLE;
            Err(err)
        }
        Err(_) => Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_dispatcher",
            "the dispatcher did not answer in time",
        )),
    }
}
