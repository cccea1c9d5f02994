//! The HTTP error: `{"error":{"code","field","message"}}` with a status derived from the code.
//!
//! The dispatcher's codes ([`ErrorCode`]) keep their names; failures of the way to the dispatcher
//! and of the HTTP layer itself get codes of their own (`no_dispatcher`, `timeout`,
//! `wait_timeout`, `unauthorized`, `payload_too_large`, …). Every refusal a handler or an
//! extractor makes is an [`AppError`], so no request ever gets a plain-text error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use podperf_client::ErrorKind;
use podperf_protocol::api::ErrorCode;
use serde::Serialize;

/// An HTTP refusal: its status and the body's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct AppError {
    pub status: StatusCode,
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `bad_request`, `invalid_param`, `unknown_worker`, …
    pub code: String,
    /// The offending input (`jobs[0].params.count`, `wait`, `id`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What went wrong, for people.
    pub message: String,
}

impl AppError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code: code.into(),
            field: None,
            message: message.into(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 `bad_request`: the body is not JSON of the expected shape.
    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `invalid_param`: a parameter (query, path, body field) is out of bounds.
    pub fn invalid_param(field: &str, message: impl Into<String>) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, "invalid_param", message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 503 `shutting_down`: the server is stopping.
    pub fn shutting_down() -> Self {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "podperf-web is shutting down",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.clone(),
                field: self.field.clone(),
                message: self.message.clone(),
            },
        }
    }
}

/// The HTTP status of a dispatcher refusal.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidParam => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AmbiguousWorker => StatusCode::CONFLICT,
        ErrorCode::UnknownWorker
        | ErrorCode::WorkerOffline
        | ErrorCode::ToolMissing
        | ErrorCode::AddressNotAllowed
        | ErrorCode::SubmitIdReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Busy => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<podperf_client::Error> for AppError {
    fn from(err: podperf_client::Error) -> Self {
        if let Some(api) = err.api_error() {
            return AppError {
                status: status_of(api.code),
                code: api.code.as_str().into(),
                field: api.field,
                message: api.message,
            };
        }
        let (status, code) = match err.kind() {
            ErrorKind::NoDispatcher => (StatusCode::SERVICE_UNAVAILABLE, "no_dispatcher"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ErrorKind::Nats => (StatusCode::SERVICE_UNAVAILABLE, "nats_unavailable"),
            ErrorKind::Malformed | ErrorKind::Refused => (StatusCode::BAD_GATEWAY, "bad_gateway"),
        };
        tracing::warn!(error = %podperf_connect::ErrorChain(&err), "dispatcher call failed");
        AppError::new(status, code, err.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_code_and_field() {
        let err: AppError = podperf_client::Error::Refused {
            code: ErrorCode::UnknownWorker,
            field: Some("jobs[0].source".into()),
            message: "no worker matches \"x\"".into(),
        }
        .into();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.code, "unknown_worker");
        assert_eq!(err.field.as_deref(), Some("jobs[0].source"));
        let json = serde_json::to_value(err.body()).unwrap();
        assert_eq!(json["error"]["code"], "unknown_worker");
        assert_eq!(json["error"]["field"], "jobs[0].source");
    }

    #[test]
    fn every_code_has_a_status() {
        use ErrorCode::*;
        let want = [
            (BadRequest, 400),
            (InvalidParam, 400),
            (UnknownWorker, 422),
            (WorkerOffline, 422),
            (AmbiguousWorker, 409),
            (ToolMissing, 422),
            (AddressNotAllowed, 422),
            (NotFound, 404),
            (Busy, 429),
            (StoreUnavailable, 503),
            (Internal, 500),
        ];
        for (code, status) in want {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }
}
