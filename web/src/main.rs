//! `podperf-web`: flags/env → [`podperf_web::WebConfig`] → bind → serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Parser;
use podperf_connect::{Fatal, NatsArgs};
use podperf_web::WebConfig;
use tokio_util::sync::CancellationToken;

/// mimalloc: see the workspace Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// podperf's HTTP API (v2 and v1), live events and web UI.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Address to listen on. Without a token only a loopback address is accepted.
    #[arg(long, env = "PODPERF_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token(s), comma-separated, one of which every API call and page needs
    /// (`Authorization: Bearer <token>`); /healthz and /readyz need none.
    #[arg(long, env = "PODPERF_WEB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Event streams (GET /api/v2/events) served at once; range 1..=100000.
    #[arg(long, env = "PODPERF_WEB_MAX_EVENT_STREAMS", default_value_t = 256,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_event_streams: usize,
    /// Seconds each dispatcher API call may take; range 1..=300.
    #[arg(long, env = "PODPERF_WEB_API_TIMEOUT_S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    api_timeout_s: u64,
    /// Address of the Prometheus listener (`GET /metrics`, no token); none = not served.
    #[arg(long, env = "PODPERF_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Node pairs (nodes × (nodes − 1)) up to which the pair series are per node pair; above it
    /// they are summed per source node (`dst_node="*"`); range 0..=1000000.
    #[arg(long, env = "PODPERF_METRICS_MAX_PAIRS",
          default_value_t = podperf_web::metrics::MAX_PAIRS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=podperf_web::metrics::MAX_PAIRS_LIMIT))]
    metrics_max_pairs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match podperf_connect::parse_args::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    podperf_connect::init_tracing();
    podperf_connect::exit("podperf-web", run(args).await)
}

async fn run(args: Args) -> Result<(), Fatal> {
    let config = WebConfig {
        tokens: podperf_web::parse_tokens(args.token.as_deref()),
        max_event_streams: args.max_event_streams,
        ..WebConfig::default()
    };
    podperf_web::check_listen(args.listen, &config.tokens)
        .map_err(|e| Fatal::config_because("--listen / PODPERF_WEB_LISTEN", e))?;
    let nats = args
        .nats
        .connect(
            "podperf-web",
            podperf_protocol::names::WEB_INBOX_PREFIX,
            true,
        )
        .await
        .map_err(|source| Fatal::Connect {
            url: args.nats.nats_url.clone(),
            source,
        })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Fatal::config_because(format!("cannot listen on {}", args.listen), e))?;
    let addr = listener.local_addr().map_err(|e| Fatal::Run(e.into()))?;
    if config.tokens.is_empty() {
        tracing::warn!(
            "no PODPERF_WEB_TOKEN: listening on loopback only, the API and the pages ask no token"
        );
    }
    tracing::info!(url = %format!("http://{addr}/"), tokens = config.tokens.len(), "podperf-web listening");
    let client = podperf_client::Client::new(nats.clone(), Duration::from_secs(args.api_timeout_s));
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            podperf_connect::shutdown_signal().await;
            stop.cancel();
        }
    });
    let metrics = match args.metrics_listen {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| Fatal::config_because(format!("cannot listen on {at}"), e))?;
            let addr = listener.local_addr().map_err(|e| Fatal::Run(e.into()))?;
            tracing::info!(url = %format!("http://{addr}/metrics"), "metrics listening");
            Some(podperf_web::MetricsListener {
                listener,
                max_pairs: args.metrics_max_pairs,
            })
        }
        None => None,
    };
    let served = podperf_web::serve(
        listener,
        client,
        config,
        metrics,
        stop.clone().cancelled_owned(),
    )
    .await;
    stop.cancel();
    podperf_connect::drain(&nats).await;
    tracing::info!("podperf-web stopped");
    served.map_err(|e| Fatal::Run(e.into()))
}
