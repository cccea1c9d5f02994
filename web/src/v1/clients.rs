//! `GET /api/v1/external/clients`: one object per live worker, with the old system's keys.

use std::collections::HashSet;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use podperf_protocol::api::ListJobsRequest;
use podperf_protocol::outcome::JobState;
use podperf_protocol::worker::WorkerView;
use serde::Serialize;

use crate::error::AppError;
use crate::state::AppState;

/// A worker as the old system listed its client pods.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClientV1 {
    /// 1-based position in the list (ordered by node, then pod).
    #[serde(rename = "ID")]
    pub id: u64,
    pub pod_name: String,
    #[serde(rename = "PodUID")]
    pub pod_uid: String,
    #[serde(rename = "PodIP")]
    pub pod_ip: String,
    pub node_name: String,
    #[serde(rename = "NodeIP")]
    pub node_ip: String,
    /// 1 free, 2 busy (running or about to run a job).
    pub client_status: u8,
    pub register_time: String,
    pub update_time: String,
}

/// The live workers as the old system listed its client pods.
#[utoipa::path(get, path = "/api/v1/external/clients", operation_id = "v1_clients", tag = "v1",
    responses((status = 200, description = "`{status: 0, msg: \"\", data: [{ID, PodName, PodUID, PodIP, NodeName, NodeIP, ClientStatus (1 free, 2 busy), RegisterTime, UpdateTime}]}`", body = serde_json::Value),
              (status = 401, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 503, description = "`{status: -1, msg}`", body = serde_json::Value)))]
pub async fn list(State(s): State<AppState>) -> Response {
    match clients(&s).await {
        Ok(list) => super::ok(list).into_response(),
        Err(e) => super::refusal(e),
    }
}

async fn clients(s: &AppState) -> Result<Vec<ClientV1>, AppError> {
    let workers = s.client.workers().await?;
    let busy = busy_workers(s).await?;
    Ok(workers
        .iter()
        .enumerate()
        .map(|(i, w)| to_v1(i as u64 + 1, w, busy.contains(&w.info.worker_id)))
        .collect())
}

/// Workers that run (or are being handed) a job, as source or target.
async fn busy_workers(s: &AppState) -> Result<HashSet<String>, AppError> {
    let mut busy = HashSet::new();
    for state in [JobState::Dispatched, JobState::Running] {
        let req = ListJobsRequest {
            state: Some(state),
            limit: Some(1000),
            ..Default::default()
        };
        for job in s.client.list(&req).await? {
            busy.insert(job.source_worker);
            busy.extend(job.target_worker);
        }
    }
    Ok(busy)
}

fn to_v1(id: u64, w: &WorkerView, busy: bool) -> ClientV1 {
    ClientV1 {
        id,
        pod_name: w.info.pod_name.clone(),
        pod_uid: w.info.worker_id.clone(),
        pod_ip: w.info.pod_ip.to_string(),
        node_name: w.info.node_name.clone(),
        node_ip: w.info.node_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        client_status: if busy { 2 } else { 1 },
        register_time: super::rfc3339(w.info.started_at_ms),
        update_time: super::rfc3339(w.last_seen_at_ms),
    }
}
