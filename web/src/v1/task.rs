//! `POST /api/v1/external/task/create` (the old system's task array, `task_param` parsed by
//! [`super::params`]) and `GET /api/v1/external/task?task_id=…` (its status and the tool's raw
//! output, with the old keys).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{JobSpec, Target};
use podperf_protocol::outcome::JobState;
use podperf_protocol::worker::WorkerView;
use serde::{Deserialize, Serialize};

use super::params::{self, TaskType};
use crate::error::AppError;
use crate::extract::{Body, Params};
use crate::state::AppState;

/// One task as the old system's clients send it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskRequest {
    pub src_pod_uid: String,
    pub src_pod_ip: String,
    pub dst_pod_uid: String,
    pub dst_pod_ip: String,
    pub task_type: String,
    pub task_param: String,
}

/// Creates tasks (all or none): `task_param` is parsed with an allow-list of flags per type.
#[utoipa::path(post, path = "/api/v1/external/task/create", operation_id = "v1_task_create", tag = "v1",
    params(("Idempotency-Key" = Option<String>, Header, description = "a UUID naming this create: a retry with the same key (within an hour) creates nothing and is answered the first task ids")),
    request_body(content = serde_json::Value, description = "`[{src_pod_uid, src_pod_ip, dst_pod_uid, dst_pod_ip, task_type (ping | iperf | traceroute), task_param}]`"),
    responses((status = 200, description = "`{status: 0, msg: \"\", data: [task id]}`", body = serde_json::Value),
              (status = 400, description = "`{status: -1, msg}` naming the refused flag, type or field; nothing runs", body = serde_json::Value),
              (status = 401, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 409, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 422, description = "`{status: -1, msg}`: no live worker has that pod UID / IP", body = serde_json::Value),
              (status = 429, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 503, description = "`{status: -1, msg}`", body = serde_json::Value)))]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Body<Vec<TaskRequest>>, AppError>,
) -> Response {
    let created = async {
        let id = crate::api::jobs::submit_id(&headers, None)?;
        let Body(tasks) = body?;
        if tasks.is_empty() {
            return Err(AppError::bad_request("the body holds no task"));
        }
        let workers = s.client.workers().await?;
        let jobs = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| to_spec(t, &workers).map_err(|e| at(i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = s.client.submit_with_id(id, jobs).await?;
        Ok::<_, AppError>(ids.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    match created.await {
        Ok(ids) => super::ok(ids).into_response(),
        Err(e) => super::refusal(e),
    }
}

/// Prefixes the field of a task's refusal with its index.
fn at(i: usize, mut e: AppError) -> AppError {
    e.field = Some(match e.field {
        Some(f) => format!("[{i}].{f}"),
        None => format!("[{i}]"),
    });
    e
}

fn to_spec(t: &TaskRequest, workers: &[WorkerView]) -> Result<JobSpec, AppError> {
    let kind =
        TaskType::parse(&t.task_type).map_err(|m| AppError::invalid_param("task_type", m))?;
    let params =
        params::parse(kind, &t.task_param).map_err(|m| AppError::invalid_param("task_param", m))?;
    let source = find(workers, &t.src_pod_uid, &t.src_pod_ip, "src")?;
    let target = find(workers, &t.dst_pod_uid, &t.dst_pod_ip, "dst")?;
    Ok(JobSpec {
        family: None,
        source,
        target: Some(Target::Worker(target)),
        params,
        timeout_s: None,
    })
}

/// The id of the live worker with pod UID `uid`, or with pod IP `ip` when `uid` is empty.
fn find(workers: &[WorkerView], uid: &str, ip: &str, side: &str) -> Result<String, AppError> {
    let unknown = |m: String| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_worker", m)
            .with_field(format!("{side}_pod_uid"))
    };
    if !uid.is_empty() {
        return workers
            .iter()
            .find(|w| w.info.worker_id == uid)
            .map(|w| w.info.worker_id.clone())
            .ok_or_else(|| unknown(format!("no live worker has pod UID {uid:?}")));
    }
    if ip.is_empty() {
        return Err(AppError::invalid_param(
            &format!("{side}_pod_uid"),
            format!("give {side}_pod_uid or {side}_pod_ip"),
        ));
    }
    let matching: Vec<&WorkerView> = workers
        .iter()
        .filter(|w| w.info.pod_ip.to_string() == ip)
        .collect();
    match matching.as_slice() {
        [w] => Ok(w.info.worker_id.clone()),
        [] => Err(unknown(format!("no live worker has pod IP {ip:?}"))),
        _ => Err(AppError::new(
            StatusCode::CONFLICT,
            "ambiguous_worker",
            format!("several workers have pod IP {ip:?}: give {side}_pod_uid"),
        )
        .with_field(format!("{side}_pod_ip"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct TaskQuery {
    pub task_id: Option<String>,
}

/// A task with the old system's keys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskV1 {
    #[serde(rename = "ID")]
    pub id: u64,
    #[serde(rename = "TaskID")]
    pub task_id: String,
    #[serde(rename = "SrcPodUID")]
    pub src_pod_uid: String,
    #[serde(rename = "SrcPodIP")]
    pub src_pod_ip: String,
    #[serde(rename = "DstPodUID")]
    pub dst_pod_uid: String,
    #[serde(rename = "DstPodIP")]
    pub dst_pod_ip: String,
    pub task_param: String,
    pub task_type: String,
    /// 1 created, 2 running, 3 finished, 4 failed.
    pub task_status: u8,
    /// The tool's raw output.
    pub task_result: String,
    pub create_time: String,
    pub update_time: String,
}

/// A task's status and the tool's raw output.
#[utoipa::path(get, path = "/api/v1/external/task", operation_id = "v1_task", tag = "v1",
    params(("task_id" = String, Query, description = "a task id from task/create")),
    responses((status = 200, description = "`{status: 0, msg: \"\", data: {ID, TaskID, SrcPodUID, SrcPodIP, DstPodUID, DstPodIP, TaskParam, TaskType, TaskStatus (1 created, 2 running, 3 finished, 4 failed), TaskResult, CreateTime, UpdateTime}}`", body = serde_json::Value),
              (status = 400, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 401, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 404, description = "`{status: -1, msg}`", body = serde_json::Value),
              (status = 503, description = "`{status: -1, msg}`", body = serde_json::Value)))]
pub async fn get(State(s): State<AppState>, q: Result<Params<TaskQuery>, AppError>) -> Response {
    let task = async {
        let Params(q) = q?;
        let raw = q
            .task_id
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AppError::invalid_param("task_id", "task_id is required"))?;
        let id = raw
            .parse()
            .map_err(|_| AppError::invalid_param("task_id", format!("{raw:?} is not a task id")))?;
        let rec = s.client.get(id).await?;
        let workers = s.client.workers().await.unwrap_or_default();
        Ok::<_, AppError>(to_v1(&rec, &workers))
    };
    match task.await {
        Ok(t) => super::ok(t).into_response(),
        Err(e) => super::refusal(e),
    }
}

/// 1 created (queued, dispatched), 2 running, 3 finished (`succeeded`), 4 failed (every other
/// terminal state).
pub fn task_status(state: JobState) -> u8 {
    match state {
        JobState::Queued | JobState::Dispatched => 1,
        JobState::Running => 2,
        JobState::Succeeded => 3,
        JobState::Failed | JobState::TimedOut | JobState::WorkerLost | JobState::Cancelled => 4,
    }
}

fn to_v1(rec: &JobRecord, workers: &[WorkerView]) -> TaskV1 {
    let src_ip = workers
        .iter()
        .find(|w| w.info.worker_id == rec.source_worker)
        .map(|w| w.info.pod_ip.to_string())
        .unwrap_or_default();
    let updated = [rec.finished_at_ms, rec.started_at_ms, rec.dispatched_at_ms]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(rec.created_at_ms);
    TaskV1 {
        id: super::integer_id(&rec.job_id),
        task_id: rec.job_id.to_string(),
        src_pod_uid: rec.source_worker.clone(),
        src_pod_ip: src_ip,
        dst_pod_uid: rec.target_worker.clone().unwrap_or_default(),
        dst_pod_ip: rec.target_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        task_param: params::render(&rec.params),
        task_type: params::task_type(&rec.params).into(),
        task_status: task_status(rec.state),
        task_result: rec
            .raw_output
            .clone()
            .or_else(|| rec.message.clone())
            .unwrap_or_default(),
        create_time: super::rfc3339(rec.created_at_ms),
        update_time: super::rfc3339(updated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_terminal_state_but_success_is_failed() {
        for s in JobState::ALL {
            let want = match s {
                JobState::Queued | JobState::Dispatched => 1,
                JobState::Running => 2,
                JobState::Succeeded => 3,
                _ => 4,
            };
            assert_eq!(task_status(s), want, "{s}");
        }
    }
}
