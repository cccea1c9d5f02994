//! What the long-running podperf binaries share: the NATS connection options (the server URL and
//! user/password, token or a `.creds` file, as flags or `PODPERF_NATS_*` variables), the shutdown
//! signal and the tracing set-up.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ConnectOptions};

/// `--nats-url` and the credential flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long,
        env = "PODPERF_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// NATS user name (with --nats-password).
    #[arg(long, env = "PODPERF_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long, env = "PODPERF_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// NATS token.
    #[arg(long, env = "PODPERF_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// NATS credentials file (JWT + nkey seed).
    #[arg(long, env = "PODPERF_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
}

impl NatsArgs {
    /// Connects, naming the connection `name`, with replies coming to subjects under
    /// `inbox_prefix` (one per role: `podperf_protocol::names::*_INBOX_PREFIX`). Once connected
    /// the client reconnects by itself forever; `retry_initial` makes a long-running component
    /// wait for a server that is not up yet instead of failing (a command-line tool should fail
    /// fast instead).
    pub async fn connect(
        &self,
        name: &str,
        inbox_prefix: &str,
        retry_initial: bool,
    ) -> Result<Client, async_nats::ConnectError> {
        Ok(self
            .connect_watched(name, inbox_prefix, retry_initial)
            .await?
            .0)
    }

    /// Like [`NatsArgs::connect`], plus a counter of (re)connections: it changes each time the
    /// client gets connected, so a component can re-establish what a restarted server may have
    /// lost (streams, buckets, consumers).
    pub async fn connect_watched(
        &self,
        name: &str,
        inbox_prefix: &str,
        retry_initial: bool,
    ) -> Result<(Client, tokio::sync::watch::Receiver<u64>), async_nats::ConnectError> {
        let (connected_tx, connected_rx) = tokio::sync::watch::channel(0u64);
        let connected_tx = std::sync::Arc::new(connected_tx);
        let mut opts = match (&self.nats_creds, &self.nats_token, &self.nats_user) {
            (Some(creds), _, _) => ConnectOptions::with_credentials_file(creds).await?,
            (None, Some(token), _) => ConnectOptions::with_token(token.clone()),
            (None, None, Some(user)) => ConnectOptions::with_user_and_password(
                user.clone(),
                self.nats_password.clone().unwrap_or_default(),
            ),
            (None, None, None) => ConnectOptions::new(),
        };
        opts = opts
            .name(name)
            .custom_inbox_prefix(inbox_prefix)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let connected_tx = connected_tx.clone();
                async move {
                    if matches!(event, async_nats::Event::Connected) {
                        connected_tx.send_modify(|n| *n += 1);
                    }
                    tracing::info!(%event, "nats connection event");
                }
            });
        if retry_initial {
            opts = opts.retry_on_initial_connect();
        }
        let urls: Vec<&str> = self.nats_url.split(',').map(str::trim).collect();
        let addrs = urls
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, e)
            })?;
        Ok((opts.connect(addrs).await?, connected_rx))
    }
}

/// Resolves on SIGINT or SIGTERM: the one shutdown trigger of every long-running binary.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info, quiet NATS client).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,async_nats=warn".into()),
        )
        .init();
}

/// Drains the connection (pending subscriptions and publishes are flushed) and waits, at most two
/// seconds, until it is closed: `Client::drain` returns before the drain is done, and a pull
/// request left open by a component that exits too early is served to nobody.
pub async fn drain(client: &Client) {
    // Both are bounded: with the server unreachable, a flush would wait for its return.
    let flushed = tokio::time::timeout(std::time::Duration::from_secs(1), client.flush()).await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::debug!("flush before drain did not complete");
    }
    match tokio::time::timeout(std::time::Duration::from_secs(1), client.drain()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return tracing::warn!(%err, "draining the NATS connection failed"),
        Err(_) => return tracing::warn!("draining the NATS connection timed out"),
    }
    let closed = async {
        while client.connection_state() != async_nats::connection::State::Disconnected {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), closed).await;
}

/// Why a long-running binary gave up before or while running.
#[derive(Debug)]
pub enum Fatal {
    /// A bad flag or variable: exit 64, as sysexits' EX_USAGE.
    Config(String),
    /// Anything else: exit 1.
    Failed(String),
}

/// The process's exit: prints `program: …` to stderr for a failure.
pub fn exit(program: &str, outcome: Result<(), Fatal>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Fatal::Config(msg)) => {
            eprintln!("{program}: bad configuration: {msg}");
            std::process::ExitCode::from(64)
        }
        Err(Fatal::Failed(msg)) => {
            eprintln!("{program}: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
