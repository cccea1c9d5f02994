//! `fping` sweeps (Debian's fping 5.1): argv, a runtime bound, the parser of its quiet summary, and
//! the mapping of a run onto a [`ProbeOutcome`].
//!
//! Output parsed (`-q -c N`, on stderr, one line per target in argv order, the address padded):
//! ```text
//! 10.98.2.2 : xmt/rcv/%loss = 5/5/0%, min/avg/max = 0.054/0.138/0.411
//! 10.98.4.9  : xmt/rcv/%loss = 3/0/100%
//! 10.98.2.2 : duplicate for [0], 64 bytes, 0.616 ms
//! ```
//! `-q` leaves out per-reply lines and ICMP errors (an error counts as a lost request). Exit codes:
//! 0 all answered, 1 some did not, 2 an address was not found, 3 bad arguments, 4 a system call
//! failed (e.g. no raw-socket permission: it then prints nothing at all).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::sweep::{SweepParams, SweepResult, SweepTarget, SweepTargetResult};

use super::{ParseError, ProbeOutcome, ToolOutput};

const TOOL: &str = "fping";
/// `-t`: how long fping waits for each reply, in ms.
const REPLY_WAIT_MS: u64 = 1000;
/// `-i`: time between any two requests fping sends, in ms.
const SEND_INTERVAL_MS: u64 = 1;
/// Margin for process start-up and the summary.
const SLACK: Duration = Duration::from_secs(2);

/// fping's arguments: `-4|-6 -q -c COUNT -p INTERVAL -i 1 -t 1000 [-S SOURCE] TARGET…`.
///
/// Every distinct address once, in the order of the resolved targets; only targets of the first
/// target's family (a worker has one), and the source only when it has that family.
pub fn argv(params: &SweepParams, source_ip: Option<IpAddr>) -> Vec<String> {
    let ips = distinct_ips(&params.resolved);
    let v6 = ips.first().is_some_and(IpAddr::is_ipv6);
    let mut args: Vec<String> = vec![if v6 { "-6" } else { "-4" }.into(), "-q".into()];
    args.extend(["-c".into(), params.count.to_string()]);
    args.extend(["-p".into(), params.interval_ms.to_string()]);
    args.extend(["-i".into(), SEND_INTERVAL_MS.to_string()]);
    args.extend(["-t".into(), REPLY_WAIT_MS.to_string()]);
    if let Some(source) = source_ip.filter(|s| s.is_ipv6() == v6) {
        args.extend(["-S".into(), source.to_string()]);
    }
    args.extend(
        ips.iter()
            .filter(|ip| ip.is_ipv6() == v6)
            .map(ToString::to_string),
    );
    args
}

fn distinct_ips(targets: &[SweepTarget]) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    targets
        .iter()
        .map(|t| t.ip)
        .filter(|ip| seen.insert(*ip))
        .collect()
}

/// Upper bound on fping's runtime: the slower of the per-target period and the global send
/// interval, the last reply's wait, and some slack.
pub fn timeout(params: &SweepParams) -> Duration {
    let count = u64::from(params.count);
    let targets = params.resolved.len().max(1) as u64;
    let per_target = count * u64::from(params.interval_ms);
    let all = count * targets * SEND_INTERVAL_MS;
    Duration::from_millis(per_target.max(all) + REPLY_WAIT_MS) + SLACK
}

/// One target's summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub sent: u32,
    pub received: u32,
    pub loss_percent: f64,
    /// min, avg, max; absent when nothing came back.
    pub rtt_ms: Option<[f64; 3]>,
    pub duplicates: u32,
}

/// Parses fping's quiet output into a summary per address.
pub fn parse(stderr: &str) -> Result<HashMap<IpAddr, Summary>, ParseError> {
    let mut out = HashMap::new();
    let mut duplicates: HashMap<IpAddr, u32> = HashMap::new();
    for line in stderr.lines() {
        let Some((addr, rest)) = line.split_once(" : ") else {
            continue;
        };
        let Ok(ip) = addr.trim().parse::<IpAddr>() else {
            continue;
        };
        if rest.starts_with("duplicate for ") {
            *duplicates.entry(ip).or_default() += 1;
        } else if let Some(stats) = rest.strip_prefix("xmt/rcv/%loss = ") {
            out.insert(ip, parse_summary(stats, line)?);
        }
    }
    if out.is_empty() {
        return Err(ParseError::new(TOOL, "no summary line"));
    }
    for (ip, n) in duplicates {
        if let Some(s) = out.get_mut(&ip) {
            s.duplicates = n;
        }
    }
    Ok(out)
}

/// `5/5/0%, min/avg/max = 0.054/0.138/0.411` or `3/0/100%`.
fn parse_summary(stats: &str, line: &str) -> Result<Summary, ParseError> {
    let (counts, rtt) = match stats.split_once(", min/avg/max = ") {
        Some((c, r)) => (c, Some(r)),
        None => (stats, None),
    };
    let bad = || ParseError::new(TOOL, format!("bad summary line: {line:?}"));
    let mut parts = counts.trim_end_matches('%').split('/');
    let (Some(sent), Some(received), Some(loss), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let rtt_ms = match rtt {
        None => None,
        Some(r) => {
            let v: Vec<f64> = r
                .trim()
                .split('/')
                .map(number)
                .collect::<Option<_>>()
                .ok_or_else(bad)?;
            Some(v.try_into().map_err(|_| bad())?)
        }
    };
    Ok(Summary {
        sent: sent.parse().map_err(|_| bad())?,
        received: received.parse().map_err(|_| bad())?,
        loss_percent: number(loss).ok_or_else(bad)?,
        rtt_ms,
        duplicates: 0,
    })
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse().ok().filter(|v: &f64| v.is_finite())
}

/// Classifies a sweep. Summaries for every target → succeeded (unreachable targets are data),
/// unless none answered at all → failed `unreachable` with the result; no summary → a tool error
/// (with fping's first stderr line or its exit code) or invalid output.
pub fn interpret(out: &ToolOutput, params: &SweepParams) -> ProbeOutcome {
    let summaries = match parse(&out.stderr) {
        Ok(s) => s,
        Err(err) => return failed_without_summary(out, err),
    };
    let mut targets = Vec::with_capacity(params.resolved.len());
    for t in &params.resolved {
        let Some(s) = summaries.get(&t.ip) else {
            return ProbeOutcome::Failed {
                reason: FailureReason::InvalidOutput,
                message: format!("fping printed no summary for {}", t.ip),
                result: None,
            };
        };
        targets.push(target_result(t, s));
    }
    let answered = targets.iter().any(|t| t.received > 0);
    let result = ProbeResult::Sweep(SweepResult { targets });
    if answered {
        return ProbeOutcome::Succeeded(result);
    }
    ProbeOutcome::Failed {
        reason: FailureReason::Unreachable,
        message: format!("no reply from any of {} targets", params.resolved.len()),
        result: Some(result),
    }
}

fn target_result(t: &SweepTarget, s: &Summary) -> SweepTargetResult {
    SweepTargetResult {
        worker_id: t.worker_id.clone(),
        node: t.node.clone(),
        ip: t.ip,
        host_network: t.host_network,
        sent: s.sent,
        received: s.received,
        loss_percent: s.loss_percent,
        rtt_min_ms: s.rtt_ms.map(|r| r[0]),
        rtt_avg_ms: s.rtt_ms.map(|r| r[1]),
        rtt_max_ms: s.rtt_ms.map(|r| r[2]),
        duplicates: s.duplicates,
    }
}

fn failed_without_summary(out: &ToolOutput, err: ParseError) -> ProbeOutcome {
    let first = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
    let (reason, message) = match (out.exit_code, first) {
        (Some(0), _) => (FailureReason::InvalidOutput, err.to_string()),
        (_, Some(line)) => (FailureReason::ToolError, line.to_string()),
        (Some(4), None) => (
            FailureReason::ToolError,
            "fping exited with 4 (a system call failed: no permission for raw ICMP sockets?)"
                .to_string(),
        ),
        (code, None) => (
            FailureReason::ToolError,
            format!("fping exited with {code:?} and printed nothing"),
        ),
    };
    ProbeOutcome::Failed {
        reason,
        message,
        result: None,
    }
}
