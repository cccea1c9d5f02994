//! `podperf`: list workers, run measurements between them, follow jobs.
//!
//! Exit codes: 0 success; 1 an error (bad input, dispatcher unreachable, …); 2 a job ended in a
//! state other than `succeeded`; 64 bad flags.

mod client;
mod matrix;
mod render;

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use podperf_connect::NatsArgs;
use podperf_protocol::api::*;
use podperf_protocol::job::*;
use podperf_protocol::names::{endpoint, EVENTS_PREFIX, RESULTS_PREFIX};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{JobEvent, JobOutcome, JobState};
use uuid::Uuid;

use client::Api;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    /// For `matrix` and `runs ID` (other commands print a table).
    Csv,
    /// For `matrix` and `runs ID` (other commands print a table).
    Markdown,
}

impl From<Output> for matrix::Format {
    fn from(o: Output) -> Self {
        match o {
            Output::Table => matrix::Format::Table,
            Output::Json => matrix::Format::Json,
            Output::Csv => matrix::Format::Csv,
            Output::Markdown => matrix::Format::Markdown,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the live workers.
    Workers,
    /// Run one measurement and wait for its result.
    Run {
        #[command(subcommand)]
        probe: Probe,
    },
    /// Show one job.
    Job { job_id: Uuid },
    /// List jobs, newest first.
    Jobs {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// A worker (id, pod name or unique prefix), as source or target.
        #[arg(long)]
        worker: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Cancel a job.
    Cancel { job_id: Uuid },
    /// Follow events and results live (Ctrl-C to stop).
    Watch,
    /// Measure every path class (pod ↔ pod same node, across nodes, node ↔ node) and print the
    /// comparison table with the overlay cost.
    Matrix {
        /// Every ordered pod pair (and node pair), not one pair per class.
        #[arg(long)]
        mesh: bool,
        /// Repetitions of each measurement; the table shows the median and the spread.
        #[arg(long, default_value_t = 3)]
        samples: u32,
        /// Echo requests per ping.
        #[arg(long, default_value_t = 20)]
        count: u32,
        /// Seconds per iperf3 test.
        #[arg(long, default_value_t = 5)]
        duration: u32,
        /// Adds an iperf3 UDP test (jitter, loss).
        #[arg(long)]
        udp: bool,
        /// UDP bitrate in bits/s (K, M, G suffixes).
        #[arg(long, value_parser = parse_bitrate, default_value = "1G")]
        udp_bitrate: u64,
        /// Skip the traceroute (hop count) per pair.
        #[arg(long)]
        no_traceroute: bool,
        /// Also print one row per measured pair.
        #[arg(long)]
        pairs: bool,
        /// Print the run id and return at once (see `podperf runs ID`).
        #[arg(long)]
        no_wait: bool,
    },
    /// List matrix runs, or show one run's report.
    Runs {
        run_id: Option<Uuid>,
        /// Also print one row per measured pair.
        #[arg(long)]
        pairs: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// Source worker: id, pod name, or a unique prefix of either.
    #[arg(long)]
    from: String,
    /// Target worker (id, pod name, unique prefix) or, with --to-address, nothing.
    #[arg(
        long,
        required_unless_present = "to_address",
        conflicts_with = "to_address"
    )]
    to: Option<String>,
    /// Target address (must be inside the dispatcher's allow-listed CIDRs).
    #[arg(long)]
    to_address: Option<IpAddr>,
    /// Deadline in seconds (default: the probe's duration plus a queueing allowance).
    #[arg(long)]
    timeout: Option<u32>,
    /// Print the job id and return at once.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Subcommand)]
enum Probe {
    /// ICMP echo: RTT and loss.
    Ping {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 5)]
        count: u32,
        /// Seconds between requests (≥ 0.2).
        #[arg(long, default_value_t = 0.2)]
        interval: f64,
        /// Payload bytes.
        #[arg(long, default_value_t = 56)]
        size: u32,
    },
    /// The path, hop by hop.
    Traceroute {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 30)]
        max_hops: u8,
        #[arg(long, value_enum, default_value_t = TracerouteProto::Udp)]
        protocol: TracerouteProto,
    },
    /// Bandwidth with iperf3.
    Iperf3 {
        #[command(flatten)]
        common: Common,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u32,
        /// Parallel streams.
        #[arg(long, default_value_t = 1)]
        parallel: u32,
        #[arg(long)]
        udp: bool,
        /// UDP target bitrate in bits/s (suffixes K, M, G allowed, e.g. 100M).
        #[arg(long, value_parser = parse_bitrate)]
        bitrate: Option<u64>,
        /// The target sends, the source receives.
        #[arg(long)]
        reverse: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TracerouteProto {
    Icmp,
    Udp,
    Tcp,
}

impl From<TracerouteProto> for TracerouteProtocol {
    fn from(p: TracerouteProto) -> Self {
        match p {
            TracerouteProto::Icmp => TracerouteProtocol::Icmp,
            TracerouteProto::Udp => TracerouteProtocol::Udp,
            TracerouteProto::Tcp => TracerouteProtocol::Tcp,
        }
    }
}

/// Job states as they are printed (`timed_out`, `worker_lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum StateArg {
    Queued,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    WorkerLost,
    Cancelled,
}

impl From<StateArg> for JobState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Queued => JobState::Queued,
            StateArg::Dispatched => JobState::Dispatched,
            StateArg::Running => JobState::Running,
            StateArg::Succeeded => JobState::Succeeded,
            StateArg::Failed => JobState::Failed,
            StateArg::TimedOut => JobState::TimedOut,
            StateArg::WorkerLost => JobState::WorkerLost,
            StateArg::Cancelled => JobState::Cancelled,
        }
    }
}

/// `100M` → 100_000_000; plain numbers are bits/s.
fn parse_bitrate(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1_000),
        Some('M' | 'm') => (&s[..s.len() - 1], 1_000_000),
        Some('G' | 'g') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a bitrate like 100M"))?;
    if v.is_nan() || v <= 0.0 {
        return Err("the bitrate must be positive".into());
    }
    Ok((v * mult as f64) as u64)
}

impl Probe {
    fn spec(&self) -> (JobSpec, bool) {
        let (common, params) = match self {
            Probe::Ping {
                common,
                count,
                interval,
                size,
            } => (
                common,
                JobParams::Ping(PingParams {
                    count: *count,
                    interval_ms: (interval * 1000.0).round() as u32,
                    size_bytes: *size,
                }),
            ),
            Probe::Traceroute {
                common,
                max_hops,
                protocol,
            } => (
                common,
                JobParams::Traceroute(TracerouteParams {
                    max_hops: *max_hops,
                    protocol: (*protocol).into(),
                }),
            ),
            Probe::Iperf3 {
                common,
                duration,
                parallel,
                udp,
                bitrate,
                reverse,
            } => (
                common,
                JobParams::Iperf3(Iperf3Params {
                    duration_s: *duration,
                    parallel: *parallel,
                    protocol: if *udp {
                        TransportProtocol::Udp
                    } else {
                        TransportProtocol::Tcp
                    },
                    bitrate_bps: *bitrate,
                    reverse: *reverse,
                }),
            ),
        };
        let target = match (&common.to, common.to_address) {
            (Some(w), _) => Some(Target::Worker(w.clone())),
            (None, Some(a)) => Some(Target::Address(a)),
            (None, None) => None,
        };
        let spec = JobSpec {
            source: common.from.clone(),
            target,
            params,
            timeout_s: common.timeout,
        };
        (spec, common.no_wait)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("podperf: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = cli
        .nats
        .connect(
            "podperf-cli",
            podperf_protocol::names::CLI_INBOX_PREFIX,
            false,
        )
        .await
        .with_context(|| format!("cannot connect to NATS at {}", cli.nats.nats_url))?;
    let api = Api {
        client,
        timeout: Duration::from_secs(cli.api_timeout_s),
    };
    let json = cli.output == Output::Json;
    match cli.command {
        Command::Workers => workers(&api, json).await,
        Command::Run { probe } => run_probe(&api, probe, json).await,
        Command::Job { job_id } => {
            let rec = api.job(job_id).await?;
            print_job(&api, &rec, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs {
            state,
            worker,
            limit,
        } => {
            let req = ListJobsRequest {
                state: state.map(Into::into),
                worker,
                limit: Some(limit),
                ..Default::default()
            };
            let reply: ListJobsReply = api.call(endpoint::JOBS_LIST, &req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                let names = worker_names(&api).await;
                println!("{}", render::jobs(&reply.jobs, |id| name_of(&names, id)));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { job_id } => {
            let rec: JobRecord = api
                .call(endpoint::JOBS_CANCEL, &JobIdRequest { job_id })
                .await?;
            print_job(&api, &rec, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch => watch(&api, json).await,
        Command::Matrix {
            mesh,
            samples,
            count,
            duration,
            udp,
            udp_bitrate,
            no_traceroute,
            pairs,
            no_wait,
        } => {
            let req = podperf_protocol::run::MatrixRequest {
                mesh,
                samples,
                ping_count: count,
                iperf3_duration_s: duration,
                udp,
                udp_bitrate_bps: udp_bitrate,
                traceroute: !no_traceroute,
            };
            let quiet = cli.output != Output::Table;
            let report = matrix::run(&api, req, no_wait, quiet).await?;
            if no_wait {
                println!("{}", report.progress.run_id);
                return Ok(ExitCode::SUCCESS);
            }
            matrix::print(&report, cli.output.into(), pairs)?;
            Ok(report_code(&report))
        }
        Command::Runs {
            run_id: Some(id),
            pairs,
        } => {
            let report = matrix::report(&api, id).await?;
            matrix::print(&report, cli.output.into(), pairs)?;
            Ok(report_code(&report))
        }
        Command::Runs { run_id: None, .. } => {
            let list = matrix::list(&api).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{}", render::runs(&list.runs));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 2 when some job of the run did not succeed.
fn report_code(r: &podperf_protocol::run::RunReport) -> ExitCode {
    if r.progress.jobs_succeeded == r.progress.jobs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

async fn workers(api: &Api, json: bool) -> anyhow::Result<ExitCode> {
    let workers = api.workers().await?;
    let reply = ListWorkersReply {
        total: workers.len() as u32,
        workers,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else if reply.workers.is_empty() {
        println!("no live workers");
    } else {
        println!("{}", render::workers(&reply.workers, now_ms()));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_probe(api: &Api, probe: Probe, json: bool) -> anyhow::Result<ExitCode> {
    let (spec, no_wait) = probe.spec();
    let reply: SubmitReply = api
        .call(endpoint::JOBS_SUBMIT, &SubmitRequest { jobs: vec![spec] })
        .await?;
    let job_id = reply.job_ids[0];
    if no_wait {
        if json {
            println!("{}", serde_json::to_string_pretty(&reply)?);
        } else {
            println!("{job_id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let submitted = api.job(job_id).await?;
    let limit = Duration::from_millis(submitted.deadline_at_ms.saturating_sub(now_ms()) + 30_000);
    let rec = api.wait(job_id, limit).await?;
    print_job(api, &rec, json).await?;
    Ok(if rec.state == JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn print_job(api: &Api, rec: &JobRecord, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rec)?);
        return Ok(());
    }
    let names = worker_names(api).await;
    let took = match (rec.started_at_ms, rec.finished_at_ms) {
        (Some(s), Some(f)) if f.saturating_sub(s) < 1000 => {
            format!(" in {} ms", f.saturating_sub(s))
        }
        (Some(s), Some(f)) => format!(" in {:.2} s", f.saturating_sub(s) as f64 / 1000.0),
        _ => String::new(),
    };
    println!(
        "job {}  {}  {}{took}",
        rec.job_id,
        render::job_line(rec, |id| name_of(&names, id)),
        rec.state
    );
    println!("  {}", render::outcome(rec));
    Ok(())
}

/// Worker id → pod name, for display (empty when the API cannot be reached).
async fn worker_names(api: &Api) -> HashMap<String, String> {
    api.workers()
        .await
        .map(|workers| {
            workers
                .into_iter()
                .map(|w| (w.info.worker_id, w.info.pod_name))
                .collect()
        })
        .unwrap_or_default()
}

fn name_of(names: &HashMap<String, String>, id: &str) -> String {
    names
        .get(id)
        .cloned()
        .unwrap_or_else(|| render::short_id(id))
}

async fn watch(api: &Api, json: bool) -> anyhow::Result<ExitCode> {
    let mut events = api.client.subscribe(format!("{EVENTS_PREFIX}>")).await?;
    let mut results = api.client.subscribe(format!("{RESULTS_PREFIX}>")).await?;
    api.client.flush().await?;
    if !json {
        eprintln!("following events and results (Ctrl-C to stop)");
    }
    loop {
        tokio::select! {
            Some(msg) = events.next() => {
                if json {
                    println!("{}", String::from_utf8_lossy(&msg.payload));
                } else if let Ok(ev) = serde_json::from_slice::<JobEvent>(&msg.payload) {
                    println!("{} {:?} on {}", ev.job_id, ev.event, render::short_id(&ev.worker_id));
                }
            }
            Some(msg) = results.next() => {
                if json {
                    println!("{}", String::from_utf8_lossy(&msg.payload));
                } else if let Ok(o) = serde_json::from_slice::<JobOutcome>(&msg.payload) {
                    let what = o.result.as_ref().map(render::result).unwrap_or_default();
                    let why = o.message.clone().unwrap_or_default();
                    println!("{} {:?} {what}{why}", o.job_id, o.status);
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            else => return Ok(ExitCode::SUCCESS),
        }
    }
}
