//! The dispatcher's service API (`podperf.api.*`): requests, replies and error codes.
//!
//! Every reply is either `{"ok": …}` or `{"error": {"code": …, "message": …}}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{FieldError, JobParams, JobSpec, Target};
use crate::outcome::{FailureReason, JobState};
use crate::result::ProbeResult;
use crate::worker::WorkerView;

/// Most jobs one submit may carry.
pub const MAX_BATCH: usize = 10_000;

/// A reply envelope: `{"ok": T}` or `{"error": ApiError}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiReply<T> {
    Ok(T),
    Error(ApiError),
}

impl<T> ApiReply<T> {
    pub fn into_result(self) -> Result<T, ApiError> {
        match self {
            ApiReply::Ok(v) => Ok(v),
            ApiReply::Error(e) => Err(e),
        }
    }
}

impl<T> From<Result<T, ApiError>> for ApiReply<T> {
    fn from(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(v) => ApiReply::Ok(v),
            Err(e) => ApiReply::Error(e),
        }
    }
}

/// What went wrong with a request; `field` names the offending input when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `unknown_worker (jobs[0].source): no worker matches "x"`.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::new(ErrorCode::InvalidParam, e.message).with_field(e.field)
    }
}

/// Error codes clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was not valid JSON of the expected shape.
    BadRequest,
    /// A parameter is out of bounds or inconsistent.
    InvalidParam,
    /// No worker matches the name.
    UnknownWorker,
    /// The worker was seen before but its liveness key has expired.
    WorkerOffline,
    /// The name matches several workers.
    AmbiguousWorker,
    /// The source worker lacks the tool the job needs.
    ToolMissing,
    /// An address target outside the operator's allow-listed CIDRs.
    AddressNotAllowed,
    NotFound,
    /// Too many jobs are queued; try again later.
    Busy,
    /// The job store (Redis) is unreachable.
    StoreUnavailable,
    /// The submit id was used before for a different batch (or run).
    SubmitIdReused,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidParam => "invalid_param",
            ErrorCode::UnknownWorker => "unknown_worker",
            ErrorCode::WorkerOffline => "worker_offline",
            ErrorCode::AmbiguousWorker => "ambiguous_worker",
            ErrorCode::ToolMissing => "tool_missing",
            ErrorCode::AddressNotAllowed => "address_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Busy => "busy",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::SubmitIdReused => "submit_id_reused",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most workers one `workers.list` reply carries (≈ 500 bytes each: well inside NATS's default
/// 1 MB message limit); larger fleets are read page by page.
pub const WORKERS_PAGE_MAX: u32 = 1000;

/// One page of the live workers, ordered by node then pod name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWorkersRequest {
    /// Workers to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// At most this many (default and maximum [`WORKERS_PAGE_MAX`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWorkersReply {
    pub workers: Vec<WorkerView>,
    /// Live workers in all; more pages follow while `offset + workers.len() < total`.
    #[serde(default)]
    pub total: u32,
}

/// A batch of jobs, accepted or rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub jobs: Vec<JobSpec>,
    /// Makes the submit idempotent: a submit carrying the id of one already stored (a retry
    /// after a lost answer, whichever replica takes it) stores nothing and is answered the
    /// stored job ids; the same id with a different batch is refused (`submit_id_reused`). The
    /// dispatcher remembers an id for [`SUBMIT_ID_TTL_S`] (or the job retention, if shorter).
    /// Without one (older clients), every submit is a new batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_id: Option<Uuid>,
}

/// How long the dispatcher remembers a submit id by default (seconds; `PODPERF_SUBMIT_ID_TTL_S`,
/// 60..=86400): retries with the same id within it are answered from the first submit, never
/// stored again.
pub const SUBMIT_ID_TTL_S: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReply {
    /// One id per submitted job, in order.
    pub job_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobIdRequest {
    pub job_id: Uuid,
}

/// Filters for listing jobs; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListJobsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// A worker id (source or target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// At most this many (default 100, max 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListJobsReply {
    pub jobs: Vec<JobRecord>,
    /// The page was cut before `limit` to fit one NATS message (a 1,000-node sweep's record is
    /// ≈ 200 KB): more jobs may match. Ask again with `until_ms` set to the oldest
    /// `created_at_ms` of this page (the ids already seen repeat). Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A job as the store keeps it: its resolved spec, state and, once terminal, its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: Uuid,
    pub state: JobState,
    pub params: JobParams,
    /// The source worker's id (resolved from the name given).
    pub source_worker: String,
    /// The source worker's node when the job was submitted (kept after the worker has left:
    /// `podperf health` names a node whose workers left recently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The IP the probe aimed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ip: Option<std::net::IpAddr>,
    /// The target worker's id, when the target is a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ProbeResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
    pub created_at_ms: u64,
    pub deadline_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Delivery attempts to the worker.
    #[serde(default)]
    pub attempts: u32,
}
