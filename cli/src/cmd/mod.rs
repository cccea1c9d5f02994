//! The commands, one file each (mini-redis style): its clap arguments and its handler, which
//! calls the API through [`podperf_client::Client`] and prints through the chosen
//! [`Exporter`](crate::export::Exporter).

mod cancel;
mod health;
mod job;
mod jobs;
mod matrix;
mod run;
mod runs;
mod schedule;
mod status;
mod sweep;
mod watch;
mod workers;

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use podperf_client::Client;
use podperf_protocol::outcome::JobState;

use crate::export::{Exporter, Names, Output};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the live workers.
    Workers(workers::Workers),
    /// Run one measurement and wait for its result.
    Run(run::Run),
    /// Show one job.
    Job(job::Job),
    /// List jobs, newest first.
    Jobs(jobs::Jobs),
    /// Cancel a job.
    Cancel(cancel::Cancel),
    /// Follow events and results live (Ctrl-C to stop).
    Watch(watch::Watch),
    /// Measure every path class (pod ↔ pod same node, across nodes, pod → node, node → pod,
    /// node ↔ node) and print the comparison table with the overlay cost.
    Matrix(matrix::Matrix),
    /// List matrix runs, or show one run's report.
    Runs(runs::Runs),
    /// The dispatcher replicas (which one leads), NATS and Redis reachability, the queue depth
    /// and each store's use against its budget (exit 1 when NATS or Redis does not answer).
    Status(status::Status),
    /// One full-mesh latency round now (an fping sweep per worker, all at once): the node × node
    /// RTT/loss grid per path class.
    Sweep(sweep::Sweep),
    /// Run a sweep round and name what is wrong (cannot send, unreachable, isolated, slow, lossy);
    /// exit 3 when something is found.
    Health(health::Health),
    /// Run a sweep round or a matrix every period: add, list, rm, pause, resume schedules.
    Schedule(schedule::Schedule),
}

impl Command {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        match self {
            Command::Workers(c) => c.run(ctx).await,
            Command::Run(c) => c.run(ctx).await,
            Command::Job(c) => c.run(ctx).await,
            Command::Jobs(c) => c.run(ctx).await,
            Command::Cancel(c) => c.run(ctx).await,
            Command::Watch(c) => c.run(ctx).await,
            Command::Matrix(c) => c.run(ctx).await,
            Command::Runs(c) => c.run(ctx).await,
            Command::Status(c) => c.run(ctx).await,
            Command::Sweep(c) => c.run(ctx).await,
            Command::Health(c) => c.run(ctx).await,
            Command::Schedule(c) => c.run(ctx).await,
        }
    }
}

/// What every handler works with: the API client and the output format.
pub struct Ctx {
    pub client: Client,
    pub output: Output,
}

impl Ctx {
    pub fn out(&self) -> &'static dyn Exporter {
        self.output.exporter()
    }

    /// Worker id → pod name when the output shows names (one lookup), else nothing is asked.
    /// Names are a nicety: when the lookup fails, ids are shown.
    pub async fn names(&self) -> Names {
        if !self.out().shows_names() {
            return Names::default();
        }
        self.client
            .workers()
            .await
            .map(Names::of)
            .unwrap_or_default()
    }
}

/// Writes an exporter's text to stdout.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// 0 when the job succeeded, else 2 (it ended, but not well).
pub fn job_code(state: JobState) -> ExitCode {
    if state == JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
