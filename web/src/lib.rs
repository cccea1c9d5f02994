//! `podperf-web`: the HTTP face of podperf. A stateless axum server that talks to the dispatcher
//! only through `podperf-client` (NATS user `web`, inbox prefix `_INBOX_web`); any number of
//! replicas can run.
//!
//! # Layout
//! - `lib.rs` — [`router`] (every route and layer in one place) and [`run`] (serve a listener
//!   the caller bound until `shutdown`, ending the event streams first).
//! - `config.rs` — [`WebConfig`]; the token rule for listen addresses ([`check_listen`]).
//! - `state.rs` — [`AppState`]: client, config, hub, stream cap, shutdown token.
//! - `error.rs` — [`AppError`]: `{"error":{"code","field","message"}}` and the status of each code.
//! - `extract.rs` — body, query and path extractors whose refusals are [`AppError`]s.
//! - `auth.rs` — the bearer-token check.
//! - `hub.rs` — the live-event hub behind `GET /api/v2/events`.
//! - `api/` — REST v2, one file per resource; `api/health.rs` — `/healthz`, `/readyz`;
//!   `api/fleet.rs` — `/api/v2/health` (`podperf health`: which node is at fault).
//! - `v1/` — the published design's v1 API (its envelope, its `task_param` parser).
//! - `openapi.rs` — the OpenAPI document (utoipa), snapshot-tested against `web/openapi.json`.
//! - `ui/` — the web UI's routes.
//! - `metrics/` — what is followed on NATS (always: the sweep rounds behind `GET /api/v2/health`)
//!   and `/metrics` for Prometheus on its own listener (with `PODPERF_METRICS_LISTEN`).

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod hub;
pub mod metrics;
pub mod openapi;
pub mod state;
pub mod ui;
pub mod v1;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{check_listen, parse_tokens, ListenRefused, WebConfig};
pub use error::AppError;
pub use state::AppState;

/// Every route: `/healthz` and `/readyz` and the UI's public routes open, the rest behind the
/// token; unknown paths and methods, oversized bodies and panics answered in JSON.
pub fn router(state: AppState) -> Router {
    let protected = api::routes()
        .merge(v1::routes())
        .merge(ui::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .merge(ui::public_routes())
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::not_found("no such endpoint")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    AppError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// Serves `listener` until `shutdown` resolves: then the event streams and `?wait=` requests end
/// at once, the requests in flight finish, and this returns. Without a metrics listener.
pub async fn run(
    listener: TcpListener,
    client: podperf_client::Client,
    config: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, client, config, None, shutdown).await
}

/// The `/metrics` listener (`PODPERF_METRICS_LISTEN`) and its `PODPERF_METRICS_MAX_PAIRS`.
pub struct MetricsListener {
    pub listener: TcpListener,
    pub max_pairs: u64,
}

/// [`run`], and `/metrics` on `metrics` if given. NATS is followed (results stream, workers
/// bucket, done notices) either way: `GET /api/v2/health` answers from the sweep rounds seen.
pub async fn serve(
    listener: TcpListener,
    client: podperf_client::Client,
    config: WebConfig,
    metrics: Option<MetricsListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let max_pairs = metrics
        .as_ref()
        .map_or(metrics::MAX_PAIRS_DEFAULT, |m| m.max_pairs);
    let (watch, tasks) = metrics::Watch::start(client.clone(), max_pairs, token.clone());
    let metrics_served = metrics.map(|m| {
        let stopped = token.clone().cancelled_owned();
        tokio::spawn(metrics::serve(m.listener, watch.clone(), stopped))
    });
    let state = AppState::new(client, config, watch, token.clone());
    // Answers are small: send them at once rather than wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY");
        }
    });
    let stopping = token.clone();
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
    if let Some(m) = metrics_served {
        match m.await {
            Ok(Err(err)) => tracing::warn!(%err, "the metrics listener failed"),
            Err(err) => tracing::warn!(%err, "the metrics task failed"),
            Ok(Ok(())) => {}
        }
    }
    served
}
