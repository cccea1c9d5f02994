//! `GET /api/v2/workers`: the live workers.

use axum::extract::State;
use axum::Json;
use podperf_protocol::api::{ListWorkersReply, ListWorkersRequest};
use serde::Deserialize;

use crate::error::Result;
use crate::extract::Params;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// Workers to skip (with `limit`: one page).
    pub offset: Option<u32>,
    /// At most this many (max 1000); without `offset` and `limit`, every worker.
    pub limit: Option<u32>,
}

/// Ordered by node then pod name: `{"workers": [...], "total": n}`.
#[utoipa::path(get, path = "/api/v2/workers", operation_id = "list_workers", tag = "v2",
    params(("offset" = Option<u32>, Query, description = "workers to skip"),
           ("limit" = Option<u32>, Query, description = "at most this many (max 1000); without offset and limit, every worker")),
    responses((status = 200, description = "ListWorkersReply: `{workers: [WorkerView], total}`", body = serde_json::Value),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Params(q): Params<WorkersQuery>,
) -> Result<Json<ListWorkersReply>> {
    if q.offset.is_some() || q.limit.is_some() {
        let req = ListWorkersRequest {
            offset: q.offset,
            limit: q.limit,
        };
        return Ok(Json(s.client.workers_page(&req).await?));
    }
    let workers = s.client.workers().await?;
    let total = workers.len() as u32;
    Ok(Json(ListWorkersReply { workers, total }))
}
