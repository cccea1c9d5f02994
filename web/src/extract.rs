//! Extractors whose refusals are [`AppError`]s: a JSON body (any content type; an empty body reads
//! as `{}` where the type allows it), query parameters, and a job or run id in the path.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::AppError;

/// Largest request body accepted (larger ones get 413 `payload_too_large`).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON body. Malformed JSON or a wrong shape is 400 `bad_request` naming the line and column.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(body_error)?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Body)
            .map_err(|e| AppError::bad_request(format!("the body is not valid: {e}")))
    }
}

fn body_error(e: BytesRejection) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    } else {
        AppError::bad_request(format!("the body could not be read: {}", e.body_text()))
    }
}

/// Query parameters; one that does not parse is 400 `invalid_param`.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e: QueryRejection| {
                AppError::new(StatusCode::BAD_REQUEST, "invalid_param", e.body_text())
            })
    }
}

/// The `{id}` of a job or run path; not a UUID is 400 `invalid_param` (field `id`).
pub struct Id(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::invalid_param("id", e.body_text()))?;
        raw.parse()
            .map(Id)
            .map_err(|_| AppError::invalid_param("id", format!("{raw:?} is not a UUID")))
    }
}

/// Parses `?wait=` (`30s`, `500ms`, `2m`), at most `max`.
pub fn parse_wait(raw: &str, max: std::time::Duration) -> Result<std::time::Duration, AppError> {
    let d = humantime::parse_duration(raw).map_err(|e| {
        AppError::invalid_param("wait", format!("{raw:?} is not a duration (e.g. 30s): {e}"))
    })?;
    if d.is_zero() || d > max {
        return Err(AppError::invalid_param(
            "wait",
            format!(
                "{raw} is out of bounds (1ms..={})",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_takes_a_bounded_duration() {
        let max = Duration::from_secs(3600);
        assert_eq!(parse_wait("30s", max).unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_wait("250ms", max).unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["", "soon", "0s", "2h", "-1s"] {
            let err = parse_wait(bad, max).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("wait"), "{bad}");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
        }
    }
}
