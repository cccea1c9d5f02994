//! What the long-running podperf binaries share: the NATS connection options (the server URL and
//! user/password, token or a `.creds` file, as flags or `PODPERF_NATS_*` variables), the shutdown
//! signal and the tracing set-up, the supervision of their long-lived tasks ([`Supervisor`]), and
//! their exit: flags parsed with usage errors as exit 64 ([`parse_args`]), failures printed with
//! their whole cause chain ([`exit`]).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ConnectOptions};

mod supervise;
pub use supervise::{BoxError, Supervisor, TaskEnd, TaskExit, TaskFailed, FAULT_VAR};

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

/// Logs to stderr, filtered by `RUST_LOG` (default: info, quiet NATS client); colours only on a
/// terminal (a log collector or a file gets plain text).
pub fn init_tracing() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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

/// sysexits' EX_USAGE: the exit status for a bad flag or variable.
pub const EX_USAGE: u8 = 64;

/// Parses the command line and the `PODPERF_*` variables into `P`. A usage error (an unknown flag,
/// a value that does not parse or is out of its range) prints clap's message, which names the
/// flag, and gives exit 64; `--help` and `--version` print and give 0.
pub fn parse_args<P: clap::Parser>() -> Result<P, std::process::ExitCode> {
    P::try_parse().map_err(|err| {
        let _ = err.print();
        if err.use_stderr() {
            std::process::ExitCode::from(EX_USAGE)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
}

/// Why a long-running binary gave up before or while running.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// A bad flag or variable: exit 64 (EX_USAGE).
    #[error("bad configuration: {what}")]
    Config {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The first connection to NATS failed: exit 1, or 64 for a malformed URL.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    /// The component failed while running: exit 1.
    #[error(transparent)]
    Run(BoxError),
}

impl Fatal {
    /// A bad setting, said in `what`.
    pub fn config(what: impl Into<String>) -> Self {
        Fatal::Config {
            what: what.into(),
            source: None,
        }
    }

    /// A bad setting `what`, for the reason `source`.
    pub fn config_because(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Fatal::Config {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// The process's exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Fatal::Config { .. } => EX_USAGE,
            Fatal::Connect { source, .. }
                if source.kind() == async_nats::ConnectErrorKind::ServerParse =>
            {
                EX_USAGE
            }
            Fatal::Connect { .. } | Fatal::Run(_) => 1,
        }
    }
}

/// The process's exit: prints `program: error: cause: cause…` (the whole `source()` chain) to
/// stderr for a failure; the status is [`Fatal::exit_code`].
pub fn exit(program: &str, outcome: Result<(), Fatal>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {}", ErrorChain(&err));
            std::process::ExitCode::from(err.exit_code())
        }
    }
}

/// Displays an error with its causes (the `source()` chain) as `error: cause: cause`. A cause
/// whose text the one before already contains is skipped: many errors print their source too.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            cause = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_chain_shows_every_cause_once() {
        let err = Outer(Middle(std::io::Error::other("disk on fire")));
        assert_eq!(ErrorChain(&err).to_string(), "outer: middle: disk on fire");
        let fatal = Fatal::Run(Box::new(err));
        assert_eq!(fatal.exit_code(), 1);
        assert_eq!(
            ErrorChain(&fatal).to_string(),
            "outer: middle: disk on fire"
        );
    }

    #[test]
    fn a_bad_setting_exits_64_with_its_reason() {
        let fatal = Fatal::config_because("bad Redis URL x", "no scheme");
        assert_eq!(fatal.exit_code(), EX_USAGE);
        assert_eq!(
            ErrorChain(&fatal).to_string(),
            "bad configuration: bad Redis URL x: no scheme"
        );
    }
}
