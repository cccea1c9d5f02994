//! `podperf schedule add|list|rm|pause|resume`: a sweep round or a matrix run every period, run
//! by the leading dispatcher (each run an ordinary run, tagged with the schedule's name).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use podperf_protocol::schedule::{
    bounds, AddScheduleRequest, Schedule as Stored, ScheduledRun, SweepRound,
};

use super::matrix::Matrix;
use super::{print, Ctx};
use crate::export::Output;

#[derive(Debug, clap::Args)]
pub struct Schedule {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Add a schedule: `schedule add NAME --every DURATION [--jitter F] [--until TIME] (sweep … |
    /// matrix …)`. Its first run starts at once (within the jitter).
    Add(Add),
    /// The schedules, with their last run and next due time.
    List,
    /// Remove a schedule (a run in progress goes on).
    Rm { name: String },
    /// Pause a schedule: no run starts until it is resumed.
    Pause { name: String },
    /// Resume a paused schedule (runs missed meanwhile are not made up for).
    Resume { name: String },
}

#[derive(Debug, clap::Args)]
struct Add {
    /// 1–64 of A–Z, a–z, 0–9, '-' and '_'.
    name: String,
    /// The period, e.g. `30s`, `5m`, `1h` (1 s..7 days; the dispatcher refuses less than its
    /// minimum, 10 s by default).
    #[arg(long, value_parser = parse_every)]
    every: Duration,
    /// Each start is drawn at random in [due, due + jitter × every], so schedules do not align
    /// (0..=0.5).
    #[arg(long, default_value_t = 0.0, value_parser = parse_jitter)]
    jitter: f64,
    /// No run starts after this time (RFC 3339, e.g. `2026-12-31T23:00:00Z`).
    #[arg(long, value_parser = parse_until)]
    until: Option<SystemTime>,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// A sweep round as `podperf sweep` makes it (one fping sweep per worker, all at once).
    Sweep(super::sweep::RoundArgs),
    /// A matrix run as `podperf matrix` starts it (the same flags).
    Matrix(Matrix),
}

fn parse_every(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30s, 5m, 1h)"))?;
    let (min, max) = (bounds::EVERY_MS_FLOOR, bounds::EVERY_MS_MAX);
    let ms = d.as_millis();
    if ms < u128::from(min) || ms > u128::from(max) {
        return Err("out of bounds (1s..=7days)".to_string());
    }
    Ok(d)
}

fn parse_jitter(s: &str) -> Result<f64, String> {
    let j: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=bounds::JITTER_MAX).contains(&j) {
        return Err(format!("out of bounds (0..={})", bounds::JITTER_MAX));
    }
    Ok(j)
}

fn parse_until(s: &str) -> Result<SystemTime, String> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{e} (RFC 3339, e.g. 2026-12-31T23:00:00Z)"))?;
    if t <= SystemTime::now() {
        return Err("lies in the past".into());
    }
    Ok(t)
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Schedule {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let client = &ctx.client;
        let (verb, one) = match self.command {
            Sub::Add(add) => {
                let run = match add.what {
                    What::Sweep(r) => ScheduledRun::Sweep(SweepRound {
                        count: r.count,
                        interval_ms: r.interval_ms,
                        from: r.from,
                        to: r.to,
                    }),
                    What::Matrix(m) => {
                        if let Some(flag) = m.output_flags() {
                            eprintln!("podperf: {flag} does not apply to a scheduled matrix");
                            return Ok(ExitCode::from(crate::EXIT_USAGE));
                        }
                        ScheduledRun::Matrix(m.request())
                    }
                };
                let req = AddScheduleRequest {
                    name: add.name,
                    every_ms: add.every.as_millis() as u64,
                    jitter: add.jitter,
                    until_ms: add.until.map(epoch_ms),
                    run,
                };
                ("added", client.schedule_add(&req).await?)
            }
            Sub::List => {
                let all = client.schedules().await?;
                let text = match ctx.output {
                    Output::Json => {
                        serde_json::to_string_pretty(&serde_json::json!({ "schedules": all }))?
                            + "\n"
                    }
                    _ => render(&all, podperf_protocol::now_ms()),
                };
                print(&text)?;
                return Ok(ExitCode::SUCCESS);
            }
            Sub::Rm { name } => ("removed", client.schedule_rm(&name).await?),
            Sub::Pause { name } => ("paused", client.schedule_pause(&name).await?),
            Sub::Resume { name } => ("resumed", client.schedule_resume(&name).await?),
        };
        let text = match ctx.output {
            Output::Json => serde_json::to_string_pretty(&one)? + "\n",
            _ => format!(
                "schedule {} {verb}: {}, next due {}\n",
                one.name,
                describe(&one),
                time(one.next_due_ms)
            ),
        };
        print(&text)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `sweep every 1m, jitter 0.1` or `matrix (mesh) every 1h`.
fn describe(s: &Stored) -> String {
    let what = match &s.run {
        ScheduledRun::Sweep(r) => format!("sweep --count {}", r.count),
        ScheduledRun::Matrix(m) if m.mesh => "matrix --mesh".to_string(),
        ScheduledRun::Matrix(_) => "matrix".to_string(),
    };
    let every = humantime::format_duration(Duration::from_millis(s.every_ms));
    let mut out = format!("{what} every {every}");
    if s.jitter > 0.0 {
        out += &format!(", jitter {}", s.jitter);
    }
    if let Some(until) = s.until_ms {
        out += &format!(", until {}", time(until));
    }
    out
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The schedules as a table: what, status, the last run and when the next is due.
pub fn render(all: &[Stored], now: u64) -> String {
    if all.is_empty() {
        return "no schedules\n".into();
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header([
        "NAME",
        "WHAT",
        "STATUS",
        "RUNS",
        "LAST RUN",
        "LAST START",
        "OUTCOME",
        "NEXT DUE",
    ]);
    for s in all {
        let last = s.last_run.as_ref();
        let outcome = last.map_or(String::new(), |l| match &l.message {
            Some(m) => format!("{}: {m}", l.outcome.as_str()),
            None => l.outcome.as_str().to_string(),
        });
        let next = if s.status_at(now) == podperf_protocol::schedule::ScheduleStatus::Expired {
            "-".to_string()
        } else {
            time(s.next_due_ms)
        };
        t.add_row([
            s.name.clone(),
            describe(s),
            s.status_at(now).as_str().to_string(),
            s.runs.to_string(),
            last.and_then(|l| l.run_id)
                .map_or(String::new(), |id| id.to_string()),
            last.map_or(String::new(), |l| time(l.started_at_ms)),
            outcome,
            next,
        ]);
    }
    format!("{t}\n")
}
