//! `ping` from iputils: argv, a runtime bound, the parser of its text output, and the mapping of
//! a run onto a [`ProbeOutcome`].
//!
//! Output parsed (iputils 20221126, `-n`):
//! ```text
//! 64 bytes from 10.99.3.2: icmp_seq=1 ttl=62 time=0.251 ms
//! From 10.99.2.2 icmp_seq=4 Packet filtered
//! --- 10.99.3.2 ping statistics ---
//! 10 packets transmitted, 7 received, +2 errors, 30% packet loss, time 1835ms
//! rtt min/avg/max/mdev = 0.062/0.077/0.090/0.007 ms
//! ```
//! The `rtt` line is missing when no reply came back.

use std::time::Duration;

use podperf_protocol::job::PingParams;
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{PingReply, PingResult, ProbeResult};

use super::{ParseError, ProbeContext, ProbeOutcome, ToolOutput};

const TOOL: &str = "ping";
/// `-W`: how long ping waits for a reply after the last request, in seconds.
const REPLY_WAIT_S: u64 = 2;
/// Margin for process start-up and the final statistics.
const SLACK: Duration = Duration::from_secs(2);

/// ping's arguments: `-n -4|-6 -c N -i SECONDS -s SIZE -W 2 [-I SOURCE] TARGET`.
///
/// The family flag follows the target; the source is bound only when it has the target's family
/// (a mismatched bind could only fail).
pub fn argv(params: &PingParams, ctx: &ProbeContext) -> Vec<String> {
    let family = if ctx.target_ip.is_ipv6() { "-6" } else { "-4" };
    let mut args: Vec<String> = vec!["-n".into(), family.into()];
    args.extend(["-c".into(), params.count.to_string()]);
    args.extend(["-i".into(), seconds(params.interval_ms)]);
    args.extend(["-s".into(), params.size_bytes.to_string()]);
    args.extend(["-W".into(), REPLY_WAIT_S.to_string()]);
    if let Some(source) = ctx
        .source_ip
        .filter(|s| s.is_ipv6() == ctx.target_ip.is_ipv6())
    {
        args.extend(["-I".into(), source.to_string()]);
    }
    args.push(ctx.target_ip.to_string());
    args
}

/// Renders milliseconds as decimal seconds without trailing zeros: 200 → "0.2", 1000 → "1".
pub fn seconds(ms: u32) -> String {
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    format!("{whole}.{frac:03}")
        .trim_end_matches('0')
        .to_string()
}

/// Upper bound on ping's runtime: every interval, the final reply wait, and some slack.
pub fn timeout(params: &PingParams) -> Duration {
    let sending = Duration::from_millis(u64::from(params.count) * u64::from(params.interval_ms));
    sending + Duration::from_secs(REPLY_WAIT_S) + SLACK
}

/// Parses ping's output; fails when the statistics block is missing.
pub fn parse(stdout: &str) -> Result<PingResult, ParseError> {
    let mut lines = stdout.lines();
    let mut replies = Vec::new();
    let target = loop {
        let line = lines
            .next()
            .ok_or_else(|| ParseError::new(TOOL, "no statistics line"))?;
        if let Some(target) = statistics_header(line) {
            break target.to_string();
        }
        if let Some(reply) = parse_reply(line)? {
            replies.push(reply);
        }
    };
    let counts = lines
        .next()
        .ok_or_else(|| ParseError::new(TOOL, "statistics line missing"))?;
    let mut result = parse_counts(counts, target, replies)?;
    if let Some(rtt) = lines.find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = ")) {
        let [min, avg, max, mdev] = parse_rtt(rtt)?;
        result.rtt_min_ms = Some(min);
        result.rtt_avg_ms = Some(avg);
        result.rtt_max_ms = Some(max);
        result.rtt_mdev_ms = Some(mdev);
    }
    Ok(result)
}

/// The target of a `--- TARGET ping statistics ---` line.
fn statistics_header(line: &str) -> Option<&str> {
    line.strip_prefix("--- ")?
        .strip_suffix(" ping statistics ---")
}

/// A `64 bytes from ADDR: icmp_seq=1 ttl=62 time=0.251 ms` line; `None` for any other line.
fn parse_reply(line: &str) -> Result<Option<PingReply>, ParseError> {
    let Some((bytes, rest)) = line.split_once(" bytes from ") else {
        return Ok(None);
    };
    let Ok(bytes) = bytes.parse::<u32>() else {
        return Ok(None);
    };
    let (mut seq, mut ttl, mut rtt_ms) = (None, None, None);
    for token in rest.split_whitespace() {
        match token.split_once('=') {
            Some(("icmp_seq", v)) => seq = Some(number(v, line)?),
            Some(("ttl", v)) => ttl = Some(number(v, line)?),
            Some(("time", v)) => rtt_ms = Some(number(v, line)?),
            _ => {}
        }
    }
    match (seq, rtt_ms) {
        (Some(seq), Some(rtt_ms)) => Ok(Some(PingReply {
            seq,
            ttl,
            bytes,
            rtt_ms,
        })),
        _ => Err(ParseError::new(
            TOOL,
            format!("reply without icmp_seq or time: {line:?}"),
        )),
    }
}

/// `N packets transmitted, M received, [+E errors, ]P% packet loss, time Tms`.
fn parse_counts(
    line: &str,
    target: String,
    replies: Vec<PingReply>,
) -> Result<PingResult, ParseError> {
    let (mut transmitted, mut received, mut errors, mut loss) = (None, None, 0, None);
    for part in line.split(", ") {
        if let Some(n) = part.strip_suffix(" packets transmitted") {
            transmitted = Some(number(n, line)?);
        } else if let Some(n) = part.strip_suffix(" received") {
            received = Some(number(n, line)?);
        } else if let Some(n) = part
            .strip_prefix('+')
            .and_then(|p| p.strip_suffix(" errors"))
        {
            errors = number(n, line)?;
        } else if let Some(n) = part.strip_suffix("% packet loss") {
            loss = Some(number(n, line)?);
        }
    }
    let (Some(transmitted), Some(received), Some(loss_percent)) = (transmitted, received, loss)
    else {
        return Err(ParseError::new(
            TOOL,
            format!("bad statistics line: {line:?}"),
        ));
    };
    Ok(PingResult {
        target,
        transmitted,
        received,
        errors,
        loss_percent,
        rtt_min_ms: None,
        rtt_avg_ms: None,
        rtt_max_ms: None,
        rtt_mdev_ms: None,
        replies,
    })
}

/// `0.062/0.077/0.090/0.007 ms` → [min, avg, max, mdev]; what follows a comma (`, pipe 3`: that
/// many requests were outstanding at once, when replies take longer than the interval) is not
/// an RTT.
fn parse_rtt(values: &str) -> Result<[f64; 4], ParseError> {
    let rtts = values.split(',').next().unwrap_or(values);
    let numbers: Vec<f64> = rtts
        .trim_end_matches(" ms")
        .split('/')
        .map(|v| number(v, values))
        .collect::<Result<_, _>>()?;
    numbers
        .try_into()
        .map_err(|_| ParseError::new(TOOL, format!("bad rtt line: {values:?}")))
}

fn number<T: std::str::FromStr + Finite>(text: &str, line: &str) -> Result<T, ParseError> {
    text.trim()
        .parse()
        .ok()
        .filter(Finite::is_finite)
        .ok_or_else(|| ParseError::new(TOOL, format!("bad number {text:?} in {line:?}")))
}

/// Numbers a tool prints are finite: `nan` or `inf` (which `str::parse` accepts) would not even
/// survive the trip through JSON.
pub(crate) trait Finite {
    fn is_finite(&self) -> bool;
}

impl Finite for f64 {
    fn is_finite(&self) -> bool {
        f64::is_finite(*self)
    }
}

macro_rules! always_finite {
    ($($t:ty),*) => { $(impl Finite for $t { fn is_finite(&self) -> bool { true } })* };
}
always_finite!(u8, u16, u32, u64, usize);

/// Classifies a ping run. Any reply → succeeded (loss is data); no reply → failed
/// `unreachable` with the partial result; no statistics → unreachable when stderr says so (e.g.
/// `connect: Network is unreachable`), else a tool error or invalid output.
pub fn interpret(out: &ToolOutput, _params: &PingParams) -> ProbeOutcome {
    match parse(&out.stdout) {
        Ok(result) if result.received > 0 => ProbeOutcome::Succeeded(ProbeResult::Ping(result)),
        Ok(result) => ProbeOutcome::Failed {
            reason: FailureReason::Unreachable,
            message: no_reply_message(&out.stdout, &result),
            result: Some(ProbeResult::Ping(result)),
        },
        Err(err) => failed_without_statistics(out, err),
    }
}

/// "no reply from T: <first ICMP error>" or "no reply from T (N sent, 100% packet loss)".
fn no_reply_message(stdout: &str, result: &PingResult) -> String {
    match stdout.lines().find(|l| l.starts_with("From ")) {
        Some(error) => format!("no reply from {}: {error}", result.target),
        None => format!(
            "no reply from {} ({} sent, {}% packet loss)",
            result.target, result.transmitted, result.loss_percent
        ),
    }
}

fn failed_without_statistics(out: &ToolOutput, err: ParseError) -> ProbeOutcome {
    let stderr = first_line(&out.stderr);
    let (reason, message) = match stderr {
        Some(line) if is_unreachable(line) => (FailureReason::Unreachable, line.to_string()),
        Some(line) if out.exit_code != Some(0) => (FailureReason::ToolError, line.to_string()),
        _ => (FailureReason::InvalidOutput, err.to_string()),
    };
    ProbeOutcome::Failed {
        reason,
        message,
        result: None,
    }
}

fn is_unreachable(line: &str) -> bool {
    ["Network is unreachable", "No route to host", "connect:"]
        .iter()
        .any(|m| line.contains(m))
}

/// The first non-blank line, trimmed.
fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}
