//! Bearer-token authentication: every route behind [`require_token`] needs
//! `Authorization: Bearer <one of the tokens>` when tokens are configured.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// Lets the request through when it carries a configured token (or none is configured: the
/// server then listens on loopback only); otherwise 401 with the JSON error (the v1 envelope
/// under `/api/v1/`).
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.config.tokens.is_empty() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let message = match given {
        None => "this endpoint needs `Authorization: Bearer <token>`",
        Some(t) if state.config.tokens.iter().any(|k| same(k, t)) => {
            return next.run(req).await;
        }
        Some(_) => "the bearer token is not valid",
    };
    let err = AppError::unauthorized(message);
    if req.uri().path().starts_with("/api/v1/") {
        crate::v1::refusal(err).into_response()
    } else {
        err.into_response()
    }
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::same("abc", "abc"));
        assert!(!super::same("abc", "abd"));
        assert!(!super::same("abc", "ab"));
        assert!(!super::same("", "a"));
    }
}
