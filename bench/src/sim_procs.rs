//! Simulated workers in processes of their own: the `sweep-scale` figure starts `--sim-procs`
//! copies of this binary (the hidden `sim-workers` subcommand), each running a slice of the fleet
//! ([`crate::sim::start_range`]) on its own runtime and NATS connections until SIGTERM.
//!
//! One process for 1,000 simulated workers measured the harness more than podperf: every sweep
//! forks the simulated `fping` from it (a fork of a process holding 0.5–0.8 GB of worker state
//! per sweep), and a worker whose shared connection stalled took its neighbours' intake with it
//! (`worker_lost` by the dozen). Apart, each process is as small as a node's worker is, and a
//! stall stays in its slice.

use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use podperf_testkit::ChildGuard;

use crate::sim;
use crate::sweep_scale::node_ip;

/// The `sim-workers` subcommand's options (set by [`Procs::start`], not typed by people).
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// NATS URL.
    #[arg(long)]
    url: String,
    /// Worker and node names' prefix.
    #[arg(long)]
    prefix: String,
    /// This process's first worker index (a slice of the whole fleet).
    #[arg(long)]
    first: usize,
    /// Workers in this process.
    #[arg(long)]
    count: usize,
    /// Nodes of the whole fleet (worker `i` runs on node `i % nodes`).
    #[arg(long)]
    nodes: usize,
    /// Workers per shared NATS connection.
    #[arg(long)]
    per_client: usize,
    /// Runtime threads.
    #[arg(long)]
    threads: usize,
}

/// What a `sim-workers` process prints once its workers are registered.
const STARTED: &str = "sim-workers: started";
/// What it prints after its workers stopped: how many `run`s ended with an error.
const FAILED: &str = "sim-workers: failed";

/// The `sim-workers` subcommand: starts its slice, runs until SIGTERM, stops the workers through
/// their own path (deregister, drain) and prints how many failed.
pub fn main(o: Opts) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads.max(1))
        .thread_name("sim-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sim-workers: no runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let run = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let clients = clients(o.count, o.per_client);
        let range = o.first..o.first + o.count;
        let fleet = sim::start_range(&o.url, &o.prefix, range, clients, o.nodes, node_ip).await?;
        println!("{STARTED} {}", fleet.ids.len());
        term.recv().await;
        let failed = fleet.failed.clone();
        fleet.stop().await;
        println!("{FAILED} {}", failed.load(Ordering::Relaxed));
        anyhow::Ok(())
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sim-workers: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// NATS connections of a process of `count` workers, `per_client` to a connection.
fn clients(count: usize, per_client: usize) -> usize {
    count.div_ceil(per_client.max(1))
}

/// The `sim-workers` processes of one figure.
pub struct Procs {
    children: Vec<ChildGuard>,
    /// NATS connections of all the processes together.
    pub connections: usize,
}

impl Procs {
    /// `n` workers named `<prefix>-<i>` on `nodes` nodes in `procs` processes (as even as they
    /// divide), each with `threads` runtime threads and one NATS connection per `per_client`
    /// workers. The processes inherit this one's environment (the simulated fping's `PATH`).
    pub fn start(
        url: &str,
        prefix: &str,
        n: usize,
        nodes: usize,
        procs: usize,
        per_client: usize,
        threads: usize,
    ) -> anyhow::Result<Procs> {
        let procs = procs.clamp(1, n.max(1));
        let exe = std::env::current_exe()?;
        let mut children = Vec::with_capacity(procs);
        let (mut first, mut connections) = (0, 0);
        for p in 0..procs {
            let count = n / procs + usize::from(p < n % procs);
            let mut cmd = Command::new(&exe);
            cmd.arg("sim-workers")
                .args(["--url", url, "--prefix", prefix])
                .args(["--first", &first.to_string()])
                .args(["--count", &count.to_string()])
                .args(["--nodes", &nodes.to_string()])
                .args(["--per-client", &per_client.to_string()])
                .args(["--threads", &threads.to_string()]);
            children.push(ChildGuard::spawn(cmd, &format!("sim-workers-{p}")));
            first += count;
            connections += clients(count, per_client);
        }
        Ok(Procs {
            children,
            connections,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(ChildGuard::pid).collect()
    }

    /// Whether every process is still running; the first one's log that is not.
    pub fn check(&mut self) -> anyhow::Result<()> {
        for c in &mut self.children {
            if !c.is_running() {
                bail!("{} exited early; its log:\n{}", c.name(), c.log());
            }
        }
        Ok(())
    }

    /// SIGTERM to every process, then waits (bounded) for each to stop its workers: the
    /// simulated workers whose `run` ended with an error, or an error naming a process that did
    /// not say.
    pub async fn stop(mut self) -> anyhow::Result<usize> {
        for c in &mut self.children {
            c.sigterm();
        }
        tokio::task::spawn_blocking(move || {
            let mut failed = 0;
            for c in &mut self.children {
                c.wait_timeout(Duration::from_secs(60));
                let log = c.log();
                for line in log.lines().filter(|l| l.contains("failed")).take(5) {
                    eprintln!("{}: {line}", c.name());
                }
                let said = log
                    .lines()
                    .find_map(|l| l.strip_prefix(FAILED)?.trim().parse::<usize>().ok());
                match said {
                    Some(n) => failed += n,
                    None => bail!("{} did not stop cleanly; its log:\n{log}", c.name()),
                }
            }
            Ok(failed)
        })
        .await?
    }
}
