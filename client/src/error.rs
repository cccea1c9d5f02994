//! The client's error: what failed, with a [`ErrorKind`] callers branch on (nats.rs style).

use podperf_protocol::api::{ApiError, ErrorCode};

/// What kind of failure an [`Error`] is; tests and callers match on this, not on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nobody answers on the API subject: no dispatcher is running (or it cannot be reached).
    NoDispatcher,
    /// The dispatcher answered with a typed error.
    Refused,
    /// No answer (or no terminal state) within the time allowed.
    Timeout,
    /// The NATS connection failed (publish, subscribe, request).
    Nats,
    /// The dispatcher's reply was not of the expected shape.
    Malformed,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no dispatcher answers on {subject} (is podperf-dispatcher running?)")]
    NoDispatcher { subject: String },
    /// The API's own error, as it came: branch on `code`, show `field` and `message`.
    #[error("{}", ApiError { code: *code, field: field.clone(), message: message.clone() })]
    Refused {
        code: ErrorCode,
        field: Option<String>,
        message: String,
    },
    #[error("{what}: no answer within {limit:?}")]
    Timeout {
        what: String,
        limit: std::time::Duration,
    },
    #[error("NATS: {what}")]
    Nats {
        what: String,
        #[source]
        source: async_nats::Error,
    },
    #[error("malformed reply from {subject}")]
    Malformed {
        subject: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoDispatcher { .. } => ErrorKind::NoDispatcher,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Nats { .. } => ErrorKind::Nats,
            Error::Malformed { .. } => ErrorKind::Malformed,
        }
    }

    /// The API's error when the dispatcher refused the request.
    pub fn api_error(&self) -> Option<ApiError> {
        match self {
            Error::Refused {
                code,
                field,
                message,
            } => Some(ApiError {
                code: *code,
                field: field.clone(),
                message: message.clone(),
            }),
            _ => None,
        }
    }

    /// The API's error code when the dispatcher refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn nats(what: impl Into<String>, source: impl Into<async_nats::Error>) -> Self {
        Error::Nats {
            what: what.into(),
            source: source.into(),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Refused {
            code: e.code,
            field: e.field,
            message: e.message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
