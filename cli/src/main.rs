//! `podperf`: list workers, run measurements between them, follow jobs.
//!
//! Exit codes: 0 success; 1 an error (bad input, dispatcher unreachable, …); 2 a job ended in a
//! state other than `succeeded`; 3 `podperf health` found a problem, or a matrix run failed its
//! gate (`--tolerance`, `--max-rtt-ratio`); 64 bad flags.
//!
//! ## Layout
//! - `main.rs` — the global flags, the exit codes, and the error messages.
//! - `cmd/` — one file per command: its arguments and its handler.
//! - `export/` — the output formats (table, JSON, CSV, Markdown) behind one trait.
//! - `render.rs` — the one-line summaries and tables the table format is made of.

mod cmd;
mod export;
mod render;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use podperf_client::{Client, Error as ClientError};
use podperf_connect::NatsArgs;

use cmd::{Command, Ctx};
use export::Output;

/// Bad flags (BSD `EX_USAGE`), kept apart from 2, "the job ended but did not succeed".
const EXIT_USAGE: u8 = 64;

/// podperf: measure the network between the pods and nodes of a cluster.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    nats: NatsArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    /// Seconds to wait for each API answer.
    #[arg(long, default_value_t = 10, global = true)]
    api_timeout_s: u64,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("podperf: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message: help and version on stdout with 0, a usage error on stderr with 64.
fn usage(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let nats = cli
        .nats
        .connect(
            "podperf-cli",
            podperf_protocol::names::CLI_INBOX_PREFIX,
            false,
        )
        .await
        .with_context(|| format!("cannot connect to NATS at {}", cli.nats.nats_url))?;
    let ctx = Ctx {
        client: Client::new(nats, Duration::from_secs(cli.api_timeout_s)),
        output: cli.output,
    };
    cli.command.run(&ctx).await
}

/// The message for an error: the API's refusal as `code (field): message`, a hint when no
/// dispatcher answers, otherwise the chain of causes.
fn describe(err: &anyhow::Error) -> String {
    let Some(e) = err.downcast_ref::<ClientError>() else {
        return format!("{err:#}");
    };
    match e {
        ClientError::NoDispatcher { subject } => format!(
            "no dispatcher answers on {subject}: start podperf-dispatcher \
             (or point --nats-url at the NATS server it uses)"
        ),
        // `code (field): message`, as the API sent it, without what the CLI was doing.
        ClientError::Refused { .. } => e.to_string(),
        _ => format!("{err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podperf_protocol::api::ErrorCode;

    #[test]
    fn bad_flags_exit_64_and_help_exits_0() {
        let bad = Cli::try_parse_from(["podperf", "run", "ping", "--count", "-f"]).unwrap_err();
        assert_eq!(usage(&bad), ExitCode::from(EXIT_USAGE));
        let none = Cli::try_parse_from(["podperf"]).unwrap_err();
        assert_eq!(usage(&none), ExitCode::from(EXIT_USAGE));
        for ok in [["podperf", "--help"], ["podperf", "--version"]] {
            let err = Cli::try_parse_from(ok).unwrap_err();
            assert!(!err.use_stderr(), "{ok:?} prints on stdout and exits 0");
        }
    }

    /// The commands' help, as users read it (the global NATS flags are left out: their help
    /// shows the environment's values).
    #[test]
    fn help_snapshot() {
        use clap::CommandFactory;
        let mut root = Cli::command().bin_name("podperf");
        root.build();
        let mut text = String::new();
        let paths: [&[&str]; 19] = [
            &["workers"],
            &["run"],
            &["run", "ping"],
            &["run", "traceroute"],
            &["run", "iperf3"],
            &["run", "latency"],
            &["run", "mtu"],
            &["job"],
            &["jobs"],
            &["cancel"],
            &["watch"],
            &["matrix"],
            &["runs"],
            &["status"],
            &["sweep"],
            &["health"],
            &["schedule"],
            &["schedule", "add"],
            &["schedule", "add", "sweep"],
        ];
        for path in paths {
            let mut cmd = &mut root;
            for name in path {
                cmd = cmd.find_subcommand_mut(name).expect("a command");
            }
            text += &format!(
                "$ podperf {} --help\n{}\n",
                path.join(" "),
                cmd.render_long_help()
            );
        }
        insta::assert_snapshot!(text);
    }

    #[test]
    fn client_errors_read_clearly() {
        let refused = podperf_client::Error::Refused {
            code: ErrorCode::InvalidParam,
            field: Some("jobs[0].params.count".into()),
            message: "5000 is out of bounds (1..=1000)".into(),
        };
        assert_eq!(
            describe(&refused.into()),
            "invalid_param (jobs[0].params.count): 5000 is out of bounds (1..=1000)"
        );
        let none = podperf_client::Error::NoDispatcher {
            subject: "podperf.api.workers.list".into(),
        };
        let text = describe(&anyhow::Error::from(none));
        assert!(text.contains("podperf.api.workers.list"), "{text}");
        assert!(text.contains("start podperf-dispatcher"), "{text}");
    }
}
