//! `/metrics` (OpenMetrics text) on a listener of its own (`PODPERF_METRICS_LISTEN`): the series
//! of k8s/monitoring/README.md, fed by following NATS (see [`follow`]), never by asking the
//! dispatcher for samples. No token: it is a separate port, meant for Prometheus inside the
//! cluster; nothing on it changes anything.
//!
//! # Layout
//! - `series.rs` — the families, their label sets and the registry.
//! - `state.rs` — [`Metrics`]: results, workers, terminal jobs → series; the cardinality plan.
//! - `round.rs` — full-mesh sweep rounds and their `podperf health` findings.
//! - `follow.rs` — the tasks that follow the results stream, the workers bucket, the done
//!   notices and the dispatcher's status.

pub mod follow;
pub mod round;
pub mod series;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use follow::Following;
pub use state::{Metrics, HEALTH_BANDWIDTH_MAX_AGE_MS, MAX_PAIRS_DEFAULT, MAX_PAIRS_LIMIT};

/// The content type of the OpenMetrics text format (what Prometheus asks for first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of Prometheus' own text format, for clients that do not ask for OpenMetrics
/// (`curl … | promtool check metrics`).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Served {
    metrics: Arc<Metrics>,
    following: Arc<Following>,
}

/// `GET /metrics` (anything else is 404).
pub fn router(metrics: Arc<Metrics>, following: Arc<Following>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Served { metrics, following })
}

/// 503 until the results stream and the workers bucket are followed (a scrape before would
/// show series that miss what happened meanwhile).
/// OpenMetrics when the `Accept` header names it, else Prometheus' text format.
async fn scrape(State(s): State<Served>, headers: HeaderMap) -> Response {
    if !s.following.all() {
        let msg = "not following the results stream and the workers bucket yet\n";
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = s.metrics.encode();
    if openmetrics {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, CONTENT_TYPE_TEXT)],
            prometheus_text(&text),
        )
            .into_response()
    }
}

/// OpenMetrics text → Prometheus' text format: a counter family's `HELP` and `TYPE` name its
/// samples (`…_total`), and the `UNIT` and `EOF` lines go.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta.and_then(|(p, rest)| Some((p, rest.split_once(' ')?))) {
            Some((p, (name, rest))) if counters.contains(name) => {
                out.push_str(&format!("{p}{name}_total {rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Done notices the live-event hub may fall behind by (a 1,000-node round ends 1,000 sweeps).
const DONE_BUFFER: usize = 4096;

/// What follows NATS for the metrics and the health of the latest round: shared by the
/// `/metrics` listener (when there is one) and `GET /api/v2/health`.
#[derive(Clone)]
pub struct Watch {
    pub metrics: Arc<Metrics>,
    pub following: Arc<Following>,
    /// Every done notice's record, as it comes (for the live-event hub).
    pub done: tokio::sync::broadcast::Sender<Arc<podperf_protocol::api::JobRecord>>,
}

impl Watch {
    /// Starts following NATS with `client`'s connection until `stop` is cancelled; the tasks to
    /// await after it. `max_pairs`: `PODPERF_METRICS_MAX_PAIRS`.
    pub fn start(
        client: podperf_client::Client,
        max_pairs: u64,
        stop: CancellationToken,
    ) -> (Watch, Vec<tokio::task::JoinHandle<()>>) {
        let metrics = Arc::new(Metrics::new(max_pairs));
        let following = Arc::new(Following::default());
        let (done, _) = tokio::sync::broadcast::channel(DONE_BUFFER);
        let js = async_nats::jetstream::new(client.nats().clone());
        let tasks = vec![
            tokio::spawn(follow::results(
                js.clone(),
                metrics.clone(),
                following.clone(),
                stop.clone(),
            )),
            tokio::spawn(follow::workers(
                js,
                metrics.clone(),
                following.clone(),
                stop.clone(),
            )),
            tokio::spawn(follow::done(
                client.clone(),
                metrics.clone(),
                following.clone(),
                done.clone(),
                stop.clone(),
            )),
            tokio::spawn(follow::status(client, metrics.clone(), stop)),
        ];
        let watch = Watch {
            metrics,
            following,
            done,
        };
        (watch, tasks)
    }
}

/// Serves `/metrics` of `watch` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    watch: Watch,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(watch.metrics, watch.following))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Follows NATS with `client`'s connection and serves `/metrics` on `listener` until `shutdown`
/// resolves. `max_pairs`: `PODPERF_METRICS_MAX_PAIRS`.
pub async fn run(
    listener: TcpListener,
    client: podperf_client::Client,
    max_pairs: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let (watch, tasks) = Watch::start(client, max_pairs, stop.clone());
    let stopping = stop.clone();
    let served = serve(listener, watch, async move {
        shutdown.await;
        stopping.cancel();
    })
    .await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    served
}
