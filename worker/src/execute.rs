//! Runs one accepted job: `started` event, the probe, its interpretation, the durable result.

use std::time::Duration;

use async_nats::jetstream;
use podperf_protocol::command::JobAssignment;
use podperf_protocol::job::JobParams;
use podperf_protocol::names::{event_subject, result_subject};
use podperf_protocol::now_ms;
use podperf_protocol::outcome::{EventKind, FailureReason, JobEvent, JobOutcome, OutcomeStatus};
use podperf_protocol::result::{MtuResult, NoopResult, ProbeResult};
use tokio_util::sync::CancellationToken;

use crate::probe::{self, ProbeContext, ProbeOutcome};
use crate::runner::{self, Ended, Finished};

/// What a job run needs from the worker.
pub struct JobEnv {
    pub js: jetstream::Context,
    pub worker_id: String,
    /// The worker's addresses (its primary first): a probe binds to the one of its target's
    /// family.
    pub source_ips: Vec<std::net::IpAddr>,
    pub output_cap: usize,
    /// Fires at the end of the shutdown grace: stop publishing retries.
    pub give_up: CancellationToken,
}

impl JobEnv {
    /// The worker's address of `target`'s family, if it has one.
    pub fn source_for(&self, target: std::net::IpAddr) -> Option<std::net::IpAddr> {
        let v6 = target.is_ipv6();
        self.source_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv6() == v6)
    }
}

/// Why a run stopped early, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The dispatcher asked (the user cancelled).
    Cancelled,
    /// The worker is shutting down and the grace period ran out.
    Shutdown,
}

/// Runs `job` to its end and publishes the event and the result. `stop` carries the cause once set.
#[tracing::instrument(skip_all, fields(job_id = %job.job_id, kind = %job.params.kind()))]
pub async fn execute(
    env: &JobEnv,
    job: JobAssignment,
    cancel: CancellationToken,
    stop: impl Fn() -> StopCause,
) {
    let started_at_ms = now_ms();
    let event = JobEvent {
        job_id: job.job_id,
        worker_id: env.worker_id.clone(),
        event: EventKind::Started,
        at_ms: started_at_ms,
    };
    let msg_id = format!("{}-started", job.job_id);
    let started = crate::publish::durably(
        &env.js,
        event_subject(job.job_id),
        msg_id,
        &event,
        &env.give_up,
    );
    // Neither the probe nor the result waits for the event's acknowledgement: the store orders
    // what it receives (a late `started` never undoes a result), and the job is in hand until
    // both are acknowledged.
    let timeout = hard_timeout(&job);
    let finish = async {
        let (outcome, raw) = run_probe(env, &job, timeout, &cancel).await;
        let mut result = outcome_to_result(env, &job, outcome, raw, started_at_ms);
        if cancel.is_cancelled() {
            mark_stopped(&mut result, stop());
        }
        tracing::info!(status = ?result.status, reason = ?result.reason, "job finished");
        let msg_id = format!("{}-result", job.job_id);
        crate::publish::durably(
            &env.js,
            result_subject(job.job_id),
            msg_id,
            &result,
            &env.give_up,
        )
        .await;
    };
    tokio::join!(started, finish);
}

/// The probe's own bound, but never past the job's deadline.
fn hard_timeout(job: &JobAssignment) -> Duration {
    let expected = probe::expected_duration(&job.params) + Duration::from_secs(2);
    let left = Duration::from_millis(job.deadline_at_ms.saturating_sub(now_ms()));
    expected.min(left)
}

/// Internal result of a run: the interpretation plus the raw output kept.
enum RunOutcome {
    Probe(ProbeOutcome),
    TimedOut,
    Stopped,
}

async fn run_probe(
    env: &JobEnv,
    job: &JobAssignment,
    timeout: Duration,
    cancel: &CancellationToken,
) -> (RunOutcome, Option<String>) {
    if let (JobParams::Mtu(p), Some(target)) = (&job.params, &job.target) {
        let ctx = probe_context(env, target);
        return run_mtu(p, &ctx, timeout, cancel, env.output_cap).await;
    }
    let (program, args) = match probe_argv(env, job) {
        Some(pa) => pa,
        None => return noop(job, timeout, cancel).await,
    };
    match runner::run(program, &args, timeout, PARSE_CAP_BYTES, cancel).await {
        Ok(finished) => interpret(job, finished, env.output_cap),
        Err(err) => (RunOutcome::Probe(spawn_failed(err)), None),
    }
}

fn spawn_failed(err: runner::RunError) -> ProbeOutcome {
    let reason = match err {
        runner::RunError::Spawn { ref source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            FailureReason::ToolMissing
        }
        _ => FailureReason::ToolError,
    };
    ProbeOutcome::Failed {
        reason,
        message: err.to_string(),
        result: None,
    }
}

fn probe_context(env: &JobEnv, target: &podperf_protocol::command::ResolvedTarget) -> ProbeContext {
    ProbeContext {
        source_ip: env.source_for(target.ip),
        target_ip: target.ip,
        target_port: target.port,
    }
}

fn probe_argv(env: &JobEnv, job: &JobAssignment) -> Option<(&'static str, Vec<String>)> {
    if let JobParams::Sweep(p) = &job.params {
        let first = p.resolved.first().map(|t| t.ip);
        let source = first.and_then(|ip| env.source_for(ip));
        return Some((
            "fping",
            probe::sweep::argv(p, source.or(env.source_ips.first().copied())),
        ));
    }
    let ctx = probe_context(env, job.target.as_ref()?);
    Some(match &job.params {
        JobParams::Ping(p) => ("ping", probe::ping::argv(p, &ctx)),
        JobParams::Traceroute(p) => ("traceroute", probe::traceroute::argv(p, &ctx)),
        JobParams::Iperf3(p) => ("iperf3", probe::iperf3::argv(p, &ctx)),
        JobParams::Latency(p) => ("sockperf", probe::sockperf::argv(p, &ctx)),
        JobParams::Noop(_) | JobParams::Sweep(_) | JobParams::Mtu(_) => return None,
    })
}

/// Kind `mtu`: tracepath, then — when it reached the target — the DF ping at the MTU it found,
/// both within the job's one hard timeout. The raw output is both runs'.
async fn run_mtu(
    params: &podperf_protocol::job::MtuParams,
    ctx: &ProbeContext,
    timeout: Duration,
    cancel: &CancellationToken,
    raw_cap: usize,
) -> (RunOutcome, Option<String>) {
    use probe::tracepath;
    let started = tokio::time::Instant::now();
    let args = tracepath::argv(params, ctx);
    let trace = match runner::run("tracepath", &args, timeout, PARSE_CAP_BYTES, cancel).await {
        Ok(f) => f,
        Err(err) => return (RunOutcome::Probe(spawn_failed(err)), None),
    };
    let mut raw = raw_text(&trace, raw_cap);
    let checks = Checks {
        ctx,
        until: started + timeout,
        cancel,
        raw_cap,
    };
    let result = match trace.ended {
        Ended::TimedOut => return (RunOutcome::TimedOut, Some(raw)),
        Ended::Cancelled => return (RunOutcome::Stopped, Some(raw)),
        Ended::Exited => match tracepath::interpret(&trace.output, ctx.target_ip) {
            ProbeOutcome::Succeeded(ProbeResult::Mtu(result)) => result,
            ProbeOutcome::Failed {
                reason: FailureReason::Unreachable,
                message,
                result: Some(ProbeResult::Mtu(traced)),
            } if !tracepath::could_not_send(&trace.output) => {
                let outcome = checks.unreached(traced, message, &mut raw).await;
                return (outcome, Some(raw));
            }
            other => return (RunOutcome::Probe(other), Some(raw)),
        },
    };
    let succeeded = |r| RunOutcome::Probe(ProbeOutcome::Succeeded(ProbeResult::Mtu(r)));
    let Some(ping_args) = tracepath::df_ping_argv(result.path_mtu_bytes, ctx) else {
        return (succeeded(result), Some(raw));
    };
    let outcome = match checks.ping("DF ping", &ping_args, &mut raw).await {
        Ok(p) => succeeded(tracepath::with_df_ping(result, &p)),
        Err(NoFigures::NotRun(err)) => {
            // No ping: the MTU stands, unchecked.
            tracing::warn!(cause = %err, "DF ping not run");
            succeeded(result)
        }
        Err(other) => other.end(result),
    };
    (outcome, Some(raw))
}

/// The pings of kind `mtu` after tracepath, within the job's one hard timeout.
struct Checks<'a> {
    ctx: &'a ProbeContext,
    until: tokio::time::Instant,
    cancel: &'a CancellationToken,
    raw_cap: usize,
}

/// Why a check ping gave no figures.
enum NoFigures {
    /// ping could not be started.
    NotRun(runner::RunError),
    /// Its output did not parse.
    Invalid(String),
    TimedOut,
    Stopped,
}

impl NoFigures {
    /// The job's outcome; `traced` is what tracepath learnt.
    fn end(self, traced: MtuResult) -> RunOutcome {
        match self {
            NoFigures::TimedOut => RunOutcome::TimedOut,
            NoFigures::Stopped => RunOutcome::Stopped,
            NoFigures::NotRun(err) => RunOutcome::Probe(spawn_failed(err)),
            NoFigures::Invalid(message) => RunOutcome::Probe(ProbeOutcome::Failed {
                reason: FailureReason::InvalidOutput,
                message,
                result: Some(ProbeResult::Mtu(traced)),
            }),
        }
    }
}

impl Checks<'_> {
    /// Runs one ping of the checks (until the job's deadline), its output appended to `raw`
    /// under `label`.
    async fn ping(
        &self,
        label: &str,
        args: &[String],
        raw: &mut String,
    ) -> Result<podperf_protocol::result::PingResult, NoFigures> {
        let left = self
            .until
            .saturating_duration_since(tokio::time::Instant::now());
        let run = match runner::run("ping", args, left, PARSE_CAP_BYTES, self.cancel).await {
            Ok(f) => f,
            Err(err) => return Err(NoFigures::NotRun(err)),
        };
        raw.push_str(&format!("\n--- {label} ---\n"));
        raw.push_str(&raw_text(&run, self.raw_cap));
        match run.ended {
            Ended::TimedOut => Err(NoFigures::TimedOut),
            Ended::Cancelled => Err(NoFigures::Stopped),
            Ended::Exited => probe::ping::parse(&run.output.stdout)
                .map_err(|e| NoFigures::Invalid(e.to_string())),
        }
    }

    /// tracepath met silence before the target. A small ping tells an unreachable target (all
    /// lost: the tracepath failure stands) from a path that drops large packets silently. Then
    /// the DF ping at the local MTU: passes → the path carries it (tracepath's probes were
    /// filtered, not too big); lost → a black hole, and DF pings search the largest size that
    /// passes, which becomes the path MTU.
    async fn unreached(&self, traced: MtuResult, message: String, raw: &mut String) -> RunOutcome {
        use probe::tracepath;
        let target = self.ctx.target_ip;
        let unreachable = |traced: MtuResult, message: String| {
            RunOutcome::Probe(ProbeOutcome::Failed {
                reason: FailureReason::Unreachable,
                message,
                result: Some(ProbeResult::Mtu(traced)),
            })
        };
        let reach = tracepath::reach_ping_argv(self.ctx);
        match self.ping("reach ping", &reach, raw).await {
            Ok(p) if p.received > 0 => {}
            Ok(_) => return unreachable(traced, message),
            Err(no) => return no.end(traced),
        }
        let local = traced.local_mtu_bytes.unwrap_or(traced.path_mtu_bytes);
        let small = tracepath::reach_packet_bytes(target);
        let local_bytes = tracepath::checked_packet_bytes(local);
        let Some(args) = tracepath::df_ping_argv(local, self.ctx).filter(|_| local_bytes > small)
        else {
            return unreachable(traced, message);
        };
        let at_local = match self.ping("DF ping", &args, raw).await {
            Ok(p) => p,
            Err(no) => return no.end(traced),
        };
        if at_local.received > 0 {
            let mut result = traced;
            result.path_mtu_bytes = local;
            result.df_ping = Some(tracepath::df_figures(local_bytes, &at_local));
            return RunOutcome::Probe(ProbeOutcome::Succeeded(ProbeResult::Mtu(result)));
        }
        let lost = tracepath::df_figures(local_bytes, &at_local);
        let mut search = tracepath::MtuSearch::new(small, local_bytes);
        while let Some(size) = search.next() {
            let Some(args) = tracepath::df_ping_argv(size, self.ctx) else {
                break;
            };
            match self
                .ping(&format!("DF ping {size} bytes"), &args, raw)
                .await
            {
                Ok(p) => search.record(size, p.received > 0),
                Err(no) => return no.end(traced),
            }
        }
        let found = tracepath::black_hole(traced, search.largest_passing(), lost);
        RunOutcome::Probe(ProbeOutcome::Succeeded(ProbeResult::Mtu(found)))
    }
}

async fn noop(
    job: &JobAssignment,
    timeout: Duration,
    cancel: &CancellationToken,
) -> (RunOutcome, Option<String>) {
    let JobParams::Noop(p) = &job.params else {
        let failed = ProbeOutcome::Failed {
            reason: FailureReason::ToolError,
            message: "no target resolved for this probe".into(),
            result: None,
        };
        return (RunOutcome::Probe(failed), None);
    };
    let sleep = Duration::from_millis(u64::from(p.sleep_ms));
    let done = RunOutcome::Probe(ProbeOutcome::Succeeded(ProbeResult::Noop(NoopResult {
        slept_ms: p.sleep_ms,
    })));
    if sleep.is_zero() {
        return (done, None); // tokio's timer would round a zero sleep up to its 1 ms tick
    }
    let outcome = tokio::select! {
        _ = tokio::time::sleep(sleep), if sleep <= timeout => done,
        _ = tokio::time::sleep(timeout), if sleep > timeout => RunOutcome::TimedOut,
        _ = cancel.cancelled() => RunOutcome::Stopped,
    };
    (outcome, None)
}

fn interpret(job: &JobAssignment, f: Finished, raw_cap: usize) -> (RunOutcome, Option<String>) {
    let raw = raw_text(&f, raw_cap);
    let outcome = match f.ended {
        Ended::TimedOut => RunOutcome::TimedOut,
        Ended::Cancelled => RunOutcome::Stopped,
        Ended::Exited => RunOutcome::Probe(match &job.params {
            JobParams::Ping(p) => probe::ping::interpret(&f.output, p),
            JobParams::Traceroute(p) => probe::traceroute::interpret(&f.output, p),
            JobParams::Iperf3(p) => probe::iperf3::interpret(&f.output, p),
            JobParams::Sweep(p) => probe::sweep::interpret(&f.output, p),
            JobParams::Latency(p) => probe::sockperf::interpret(&f.output, p),
            JobParams::Noop(_) | JobParams::Mtu(_) => unreachable!("run apart"),
        }),
    };
    // A parsed sweep's fping text says no more than its per-target result and is as large
    // (≈ 100 B per target, 2,000 targets at most): publish it only when the sweep failed.
    let parsed_sweep = matches!(job.params, JobParams::Sweep(_))
        && matches!(outcome, RunOutcome::Probe(ProbeOutcome::Succeeded(_)));
    (outcome, (!parsed_sweep).then_some(raw))
}

/// What the parsers may read of a tool's output: far more than any bounded run prints (iperf3's
/// JSON for 60 s × 16 streams is a few MiB); only the raw output that is published is cut shorter.
const PARSE_CAP_BYTES: usize = 16 * 1024 * 1024;

/// The raw output to publish: stdout, then stderr, cut to `cap` bytes.
fn raw_text(f: &Finished, cap: usize) -> String {
    let mut raw = f.output.stdout.clone();
    if !f.output.stderr.is_empty() {
        raw.push_str("\n--- stderr ---\n");
        raw.push_str(&f.output.stderr);
    }
    if f.truncated || raw.len() > cap {
        let mut cut = cap.min(raw.len());
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        raw.truncate(cut);
        raw.push_str("\n[output truncated]");
    }
    raw
}

fn outcome_to_result(
    env: &JobEnv,
    job: &JobAssignment,
    outcome: RunOutcome,
    raw_output: Option<String>,
    started_at_ms: u64,
) -> JobOutcome {
    let mut r = JobOutcome {
        job_id: job.job_id,
        worker_id: env.worker_id.clone(),
        status: OutcomeStatus::Succeeded,
        reason: None,
        message: None,
        result: None,
        raw_output,
        started_at_ms,
        finished_at_ms: now_ms(),
    };
    match outcome {
        RunOutcome::Probe(ProbeOutcome::Succeeded(res)) => r.result = Some(res),
        RunOutcome::Probe(ProbeOutcome::Failed {
            reason,
            message,
            result,
        }) => {
            r.status = OutcomeStatus::Failed;
            r.reason = Some(reason);
            r.message = Some(message);
            r.result = result;
        }
        RunOutcome::TimedOut => {
            r.status = OutcomeStatus::TimedOut;
            r.message = Some("the probe ran into its hard timeout or the job's deadline".into());
        }
        RunOutcome::Stopped => r.status = OutcomeStatus::Cancelled,
    }
    r
}

fn mark_stopped(r: &mut JobOutcome, cause: StopCause) {
    if r.status == OutcomeStatus::Succeeded {
        return; // it finished before the stop took effect
    }
    match cause {
        StopCause::Cancelled => {
            r.status = OutcomeStatus::Cancelled;
            r.reason = None;
            r.message = Some("cancelled on request".into());
        }
        StopCause::Shutdown => {
            r.status = OutcomeStatus::Failed;
            r.reason = Some(FailureReason::WorkerShutdown);
            r.message = Some("the worker shut down before the job finished".into());
        }
    }
}
