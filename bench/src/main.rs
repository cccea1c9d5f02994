//! `podperf-bench`: the benchmark harness behind `BENCHMARKS.md`. One subcommand per figure, and
//! `all`. Each run starts its own nats-server, redis-server and release dispatcher, prints its
//! figure as Markdown and writes it (JSON + Markdown) under `--out`. Benchmarks report; a missed
//! target never makes the command fail.
//!
//! # Layout
//! - [`env`]: servers, dispatcher and real workers (testkit's `Cluster`), machine, `/proc`
//!   CPU/RSS; [`api`]: the job the figures submit (every request goes through `podperf-client`).
//! - [`sim`]: simulated workers (real worker code, shared clients); [`sim_procs`]: the same in
//!   processes of their own (the hidden `sim-workers` subcommand, for `sweep-scale`).
//! - [`stats`], [`report`]: percentiles, figures.
//! - one module per figure: [`latency`], [`throughput`], [`scale`], [`footprint`], [`fidelity`],
//!   [`matrix`], [`sweep_scale`] (not in `all`: 5 minutes by default);
//!   [`ingest_ceiling`]: the prototype beside the throughput figure.

mod api;
mod env;
mod fidelity;
mod footprint;
#[allow(dead_code)] // `run` and `FakeRun`: for the podperf-bench-fping binary and the tests
mod fping_sim;
mod ingest_ceiling;
mod latency;
mod matrix;
mod report;
mod scale;
mod sim;
mod sim_procs;
mod stats;
mod sweep_scale;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "podperf benchmarks (see BENCHMARKS.md)")]
struct Args {
    /// Where figures are written (`<id>.json`, `figures.md`).
    #[arg(long, default_value = "bench-results", global = true)]
    out: PathBuf,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// 1. Job latency vs the bare NATS round trip.
    Latency(latency::Opts),
    /// 2. Sustained noop jobs/s, 100 workers.
    Throughput(throughput::Opts),
    /// 3. 10,000 workers: view, steady CPU/RSS, loss detection.
    Scale(scale::Opts),
    /// 4. One real worker's RSS and CPU, idle and under ping load.
    Footprint(footprint::Opts),
    /// 5. podperf vs the tools run directly, on the netns testbed.
    Fidelity(fidelity::Opts),
    /// 6. Mesh planning: rounds vs N(N−1), and wall time on loopback.
    Matrix(matrix::Opts),
    /// Sweep scale: full-mesh sweep rounds on 1,000 simulated nodes (not in `all`: 5 minutes).
    SweepScale(sweep_scale::Opts),
    /// Every figure but `sweep-scale`, in order.
    All,
    /// Simulated workers in a process of their own (started by `sweep-scale`).
    #[command(hide = true)]
    SimWorkers(sim_procs::Opts),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Bench::SimWorkers(o) = args.bench {
        return sim_procs::main(o); // its PATH is the simulated fping's, set by `sweep-scale`
    }
    hide_tools();
    let fping_dir = match &args.bench {
        Bench::SweepScale(o) => match sweep_scale::install_fake_fping(o.instant) {
            Ok(dir) => Some(dir),
            Err(err) => {
                eprintln!("podperf-bench: cannot install the simulated fping: {err}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let machine = env::Machine::describe();
    println!(
        "machine: {} × {}, {} MiB, kernel {}; {}; {}\n",
        machine.nproc,
        machine.cpu_model,
        machine.mem_total_mib,
        machine.kernel,
        machine.nats_server,
        machine.redis_server
    );
    let benches = match args.bench {
        Bench::All => vec![
            Bench::Latency(parse_default()),
            Bench::Throughput(parse_default()),
            Bench::Scale(parse_default()),
            Bench::Footprint(parse_default()),
            Bench::Fidelity(parse_default()),
            Bench::Matrix(parse_default()),
        ],
        b => vec![b],
    };
    for b in benches {
        let name = format!("{b:?}");
        let fig = rt.block_on(async {
            match b {
                Bench::Latency(o) => latency::run(&o).await,
                Bench::Throughput(o) => throughput::run(&o).await,
                Bench::Scale(o) => scale::run(&o).await,
                Bench::Footprint(o) => footprint::run(&o).await,
                Bench::Fidelity(o) => fidelity::run(&o).await,
                Bench::Matrix(o) => matrix::run(&o).await,
                Bench::SweepScale(o) => sweep_scale::run(&o).await,
                Bench::All | Bench::SimWorkers(_) => unreachable!("expanded above"),
            }
        });
        match fig {
            Ok(fig) => {
                println!("{}", fig.markdown());
                if let Err(err) = report::write(&args.out, &machine, &fig) {
                    eprintln!("podperf-bench: cannot write {}: {err}", args.out.display());
                }
            }
            Err(err) => eprintln!("podperf-bench: {name} could not run: {err:#}\n"),
        }
    }
    if let Some(dir) = fping_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    ExitCode::SUCCESS
}

/// Options of a subcommand at their defaults.
fn parse_default<T: clap::Args>() -> T {
    #[derive(Parser)]
    struct Wrap<T: clap::Args> {
        #[command(flatten)]
        inner: T,
    }
    Wrap::<T>::parse_from(["podperf-bench"]).inner
}

/// Simulated workers look their tools up on `PATH` at start and run each for its version; 10,000
/// of them would spawn 30,000 processes. They only run `noop`, so this process runs with an empty
/// `PATH` (servers are found first, by absolute path; real child processes get the original
/// `PATH` back, see [`env::orig_path`]). Done before any thread starts.
fn hide_tools() {
    let path = std::env::var("PATH").unwrap_or_default();
    for (tool, var) in [
        ("nats-server", podperf_testkit::NATS_SERVER_ENV),
        ("redis-server", podperf_testkit::REDIS_SERVER_ENV),
    ] {
        if std::env::var_os(var).is_none() {
            if let Some(p) = std::env::split_paths(&path)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
            {
                std::env::set_var(var, real_binary(tool, p, &path));
            }
        }
    }
    std::env::set_var("PODPERF_BENCH_ORIG_PATH", &path);
    std::env::set_var("PATH", "/nonexistent-podperf-bench");
}

/// `p`, or — when it is a script such as a pyenv shim, which needs `PATH` itself — the binary it
/// stands for (`pyenv which`).
fn real_binary(tool: &str, p: PathBuf, path: &str) -> PathBuf {
    let is_script = std::fs::read(&p)
        .map(|b| b.starts_with(b"#!"))
        .unwrap_or(false);
    if !is_script {
        return p;
    }
    std::process::Command::new("pyenv")
        .args(["which", tool])
        .env("PATH", path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or(p)
}
