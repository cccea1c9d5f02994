//! `podperf matrix`: start a run, follow it with a progress bar, print its report.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use podperf_client::{Client, Live, LiveFilter};
use podperf_protocol::run::{
    MatrixFamily, MatrixRequest, RunReport, RunStarted, MAX_RTT_RATIO_MAX, SAMPLES_AUTO_MAX,
    SAMPLES_MAX, TOLERANCE_PERCENT_MAX,
};
use tokio::time::{sleep_until, Instant};
use uuid::Uuid;

use super::run::parse_bitrate;
use super::runs::print_report;
use super::{print, Ctx};
use crate::export::Output;

/// How often the report is re-read while jobs are pending (results can be missed, e.g. while the
/// connection reconnects, and jobs the dispatcher ends itself publish none).
const POLL: Duration = Duration::from_secs(5);
/// How often once every job has its result, until the dispatcher has stored them all.
const SETTLE: Duration = Duration::from_millis(250);
/// How often while jobs the dispatcher added (`--samples auto`) run.
const ADDED: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Matrix {
    /// Every ordered pod pair (and node pair), not one pair per class.
    #[arg(long)]
    mesh: bool,
    /// The address family measured: 4, 6, or both (every pair over each; a row per family).
    /// Every worker needs an address of the family.
    #[arg(long, value_enum, default_value = "4", value_name = "4|6|both")]
    family: FamilyChoice,
    /// Repetitions of each measurement (1..=20); the table shows the median, the spread and the
    /// 95 % confidence interval of the mean. `auto`: start with 3 and add samples until every
    /// row's intervals (TCP bandwidth, RTT, latency p50) are within 5 % of their means, at most
    /// 20.
    #[arg(long, default_value = "3", value_parser = parse_samples, value_name = "N|auto")]
    samples: Samples,
    /// With `--samples auto`: add samples up to this many (the first count..=20).
    #[arg(long, default_value_t = SAMPLES_AUTO_MAX, value_parser = clap::value_parser!(u32).range(1..=i64::from(SAMPLES_AUTO_MAX)))]
    max_samples: u32,
    /// Gate: exit 3 when pod ↔ pod across nodes is more than PERCENT below node ↔ node in TCP
    /// bandwidth (0–100; k8s-netperf's --tcp-tolerance).
    #[arg(long, value_name = "PERCENT", value_parser = parse_tolerance)]
    tolerance: Option<f64>,
    /// Gate: exit 3 when pod ↔ pod across nodes has an RTT more than X times node ↔ node's
    /// (above 0, at most 10000).
    #[arg(long, value_name = "X", value_parser = parse_rtt_ratio)]
    max_rtt_ratio: Option<f64>,
    /// Echo requests per ping.
    #[arg(long, default_value_t = 20)]
    count: u32,
    /// Seconds per iperf3 test.
    #[arg(long, default_value_t = 5)]
    duration: u32,
    /// Adds an iperf3 UDP test (jitter, loss) and a UDP latency test.
    #[arg(long)]
    udp: bool,
    /// UDP bitrate in bits/s (K, M, G suffixes).
    #[arg(long, value_parser = parse_bitrate, default_value = "1G")]
    udp_bitrate: u64,
    /// Skip the traceroute (hop count) per pair.
    #[arg(long)]
    no_traceroute: bool,
    /// Skip the latency test (sockperf ping-pong, full round trip) per sample.
    #[arg(long)]
    no_latency: bool,
    /// Seconds per latency test (1..=60).
    #[arg(long, default_value_t = 1)]
    latency_duration: u32,
    /// Skip the path-MTU test (tracepath + DF ping) per pair.
    #[arg(long)]
    no_mtu: bool,
    /// Also print one row per measured pair.
    #[arg(long)]
    pairs: bool,
    /// Print the run id and return at once (see `podperf runs ID`).
    #[arg(long)]
    no_wait: bool,
}

/// `--family 4|6|both`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyChoice {
    #[value(name = "4")]
    Ipv4,
    #[value(name = "6")]
    Ipv6,
    Both,
}

impl From<FamilyChoice> for MatrixFamily {
    fn from(f: FamilyChoice) -> MatrixFamily {
        match f {
            FamilyChoice::Ipv4 => MatrixFamily::Ipv4,
            FamilyChoice::Ipv6 => MatrixFamily::Ipv6,
            FamilyChoice::Both => MatrixFamily::Both,
        }
    }
}

impl Matrix {
    /// The run these flags ask for (also what `podperf schedule add … matrix` stores).
    pub(super) fn request(&self) -> MatrixRequest {
        MatrixRequest {
            mesh: self.mesh,
            family: self.family.into(),
            // `auto` starts at 3, or at the bound if that is lower.
            samples: if self.samples.auto {
                self.samples.first.min(self.max_samples)
            } else {
                self.samples.first
            },
            samples_auto: self.samples.auto,
            samples_auto_max: self.max_samples,
            tolerance_percent: self.tolerance,
            max_rtt_ratio: self.max_rtt_ratio,
            ping_count: self.count,
            iperf3_duration_s: self.duration,
            udp: self.udp,
            udp_bitrate_bps: self.udp_bitrate,
            traceroute: !self.no_traceroute,
            latency: !self.no_latency,
            latency_duration_s: self.latency_duration,
            mtu: !self.no_mtu,
            submit_id: None, // podperf-client gives `runs.start` one
        }
    }

    /// The flags about following and printing a run, which a schedule has no use for.
    pub(super) fn output_flags(&self) -> Option<&'static str> {
        if self.pairs {
            Some("--pairs")
        } else if self.no_wait {
            Some("--no-wait")
        } else {
            None
        }
    }

    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let req = self.request();
        if self.no_wait {
            let started = ctx.client.run_start(&req).await?;
            print(&format!("{}\n", started.run_id))?;
            return Ok(ExitCode::SUCCESS);
        }
        let quiet = ctx.output != Output::Table;
        let report = follow(&ctx.client, &req, quiet).await?;
        print_report(ctx, &report, self.pairs)
    }
}

/// `--samples`: a count, or `auto` (starting at the default count).
#[derive(Debug, Clone, Copy)]
struct Samples {
    first: u32,
    auto: bool,
}

fn parse_samples(s: &str) -> Result<Samples, String> {
    if s == "auto" {
        let first = MatrixRequest::default().samples;
        return Ok(Samples { first, auto: true });
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=SAMPLES_MAX).contains(&n) => Ok(Samples {
            first: n,
            auto: false,
        }),
        _ => Err(format!("expected 1..={SAMPLES_MAX} or auto")),
    }
}

fn parse_tolerance(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=TOLERANCE_PERCENT_MAX).contains(&t) => Ok(t),
        _ => Err(format!("expected a percent, 0..={TOLERANCE_PERCENT_MAX}")),
    }
}

fn parse_rtt_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= MAX_RTT_RATIO_MAX => Ok(x),
        _ => Err(format!(
            "expected a ratio above 0, at most {MAX_RTT_RATIO_MAX}"
        )),
    }
}

/// Starts the run and follows it to the end: the bar advances with each job's result on the live
/// feed, and the report is re-read until the run is finished (with `--samples auto` the
/// dispatcher may add jobs: the bar grows with them).
async fn follow(client: &Client, req: &MatrixRequest, quiet: bool) -> anyhow::Result<RunReport> {
    // Subscribed before the start, so no result is missed.
    let mut live = client.live(LiveFilter::All).await?;
    let started = client.run_start(req).await?;
    let bar = progress_bar(&started, quiet);
    let mut pending: HashSet<Uuid> = started.job_ids.iter().copied().collect();
    let mut check_at = Instant::now() + if pending.is_empty() { SETTLE } else { POLL };
    loop {
        tokio::select! {
            Some(item) = live.next() => {
                if let Live::Result(o) = item {
                    if pending.remove(&o.job_id) {
                        bar.inc(1);
                        if pending.is_empty() {
                            check_at = Instant::now();
                        }
                    }
                }
            }
            _ = sleep_until(check_at) => {
                let r = client.run(started.run_id).await?;
                if r.progress.finished {
                    bar.finish_and_clear();
                    return Ok(r);
                }
                let done = u64::from(r.progress.jobs_done);
                bar.set_length(u64::from(r.progress.jobs).max(bar.length().unwrap_or(0)));
                bar.set_position(done.max(bar.position()));
                // Samples added later are not in `pending`: the report says when they are done.
                let all_done = r.progress.jobs_done == r.progress.jobs;
                let wait = if all_done { SETTLE } else if pending.is_empty() { ADDED } else { POLL };
                check_at = Instant::now() + wait;
            }
        }
    }
}

fn progress_bar(started: &RunStarted, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(started.job_ids.len() as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} matrix {msg} [{bar:30}] {pos}/{len} jobs, {elapsed}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(format!(
        "{} pairs, {} rounds",
        started.pairs, started.rounds
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
