//! `sockperf ping-pong` (kind `latency`): argv, a runtime bound, the parser of its text report,
//! and the mapping of a run onto a [`ProbeOutcome`].
//!
//! Output parsed (sockperf 3.7, everything on stdout, colour escapes even off a terminal):
//! ```text
//! sockperf: [Valid Duration] RunTime=1.550 sec; SentMessages=219022; ReceivedMessages=219022
//! sockperf: ====> avg-rtt=7.039 (std-dev=36.448)
//! sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
//! sockperf: Total 219022 observations; each percentile contains 2190.22 observations
//! sockperf: ---> <MAX> observation = 5280.030
//! sockperf: ---> percentile 99.900 =   49.281
//! sockperf: ---> <MIN> observation =    5.687
//! ```
//! Times are µs. `--full-rtt` makes them whole round trips (`avg-rtt`); without it sockperf prints
//! half of each (`avg-latency`), which this parser refuses rather than report half a figure.
//! sockperf exits 0 even when it cannot connect: the report's absence and its `ERROR:` line say so.

use std::time::Duration;

use podperf_protocol::job::{LatencyParams, TransportProtocol};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{LatencyResult, ProbeResult};

use super::{ParseError, ProbeContext, ProbeOutcome, ToolOutput};

const TOOL: &str = "sockperf";
/// Warm-up before the measured part of the run (sockperf's own, fixed).
const WARM_UP: Duration = Duration::from_millis(400);
/// Margin for start-up, connecting and the report.
const SLACK: Duration = Duration::from_secs(5);

/// sockperf's arguments: `ping-pong -i TARGET -p PORT [--tcp] -t SECONDS -m SIZE --full-rtt
/// [--client_ip SOURCE]`.
pub fn argv(params: &LatencyParams, ctx: &ProbeContext) -> Vec<String> {
    let mut args: Vec<String> = vec!["ping-pong".into(), "-i".into(), ctx.target_ip.to_string()];
    args.extend(["-p".into(), ctx.target_port.to_string()]);
    if params.protocol == TransportProtocol::Tcp {
        args.push("--tcp".into());
    }
    args.extend(["-t".into(), params.duration_s.to_string()]);
    args.extend(["-m".into(), params.message_size_bytes.to_string()]);
    args.push("--full-rtt".into());
    if let Some(source) = ctx
        .source_ip
        .filter(|s| s.is_ipv6() == ctx.target_ip.is_ipv6())
    {
        args.extend(["--client_ip".into(), source.to_string()]);
    }
    args
}

/// Upper bound on sockperf's runtime: warm-up, the test and some slack.
pub fn timeout(params: &LatencyParams) -> Duration {
    WARM_UP + Duration::from_secs(u64::from(params.duration_s)) + SLACK
}

/// `text` without ANSI colour escapes (`ESC [ … m`).
fn strip_colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn number<T: std::str::FromStr>(text: &str, line: &str) -> Result<T, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(TOOL, format!("bad number {text:?} in {line:?}")))
}

/// A time or duration: a finite, non-negative number (`nan`/`inf` parse as f64 but mean nothing).
fn measure(text: &str, line: &str) -> Result<f64, ParseError> {
    let v: f64 = number(text, line)?;
    if !v.is_finite() || v < 0.0 {
        return Err(ParseError::new(
            TOOL,
            format!("bad figure {text:?} in {line:?}"),
        ));
    }
    Ok(v)
}

/// `KEY=VALUE` inside `line`, up to the next space, `;` or `)`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c == ';' || c == ')' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The report of one run (µs figures kept as printed until the end).
#[derive(Default)]
struct Report {
    duration_s: Option<f64>,
    received: Option<u64>,
    avg_us: Option<f64>,
    std_dev_us: Option<f64>,
    dropped: u64,
    observations: Option<u64>,
    min_us: Option<f64>,
    max_us: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    p99_9: Option<f64>,
    half_round_trip: bool,
}

impl Report {
    fn read_line(&mut self, line: &str) -> Result<(), ParseError> {
        let body = line.strip_prefix("sockperf: ").unwrap_or(line).trim();
        if body.starts_with("[Valid Duration]") {
            let run = field(body, "RunTime=").ok_or_else(|| missing("RunTime"))?;
            self.duration_s = Some(measure(run, line)?);
            let recv = field(body, "ReceivedMessages=").ok_or_else(|| missing("Received"))?;
            self.received = Some(number(recv, line)?);
        } else if let Some(avg) = field(body, "avg-rtt=") {
            self.avg_us = Some(measure(avg, line)?);
            self.std_dev_us = field(body, "std-dev=").and_then(|s| measure(s, line).ok());
        } else if body.contains("avg-latency=") {
            self.half_round_trip = true;
        } else if let Some(d) = body.strip_prefix("# dropped messages = ") {
            self.dropped = number(d.split(';').next().unwrap_or(d), line)?;
        } else if let Some(rest) = body.strip_prefix("Total ") {
            let n = rest.split_whitespace().next().unwrap_or("");
            self.observations = Some(number(n, line)?);
        } else if let Some(rest) = body.strip_prefix("---> ") {
            self.read_percentile(rest, line)?;
        }
        Ok(())
    }

    /// `<MAX> observation = X`, `<MIN> observation = X`, `percentile P = X`.
    fn read_percentile(&mut self, rest: &str, line: &str) -> Result<(), ParseError> {
        let Some((name, value)) = rest.split_once('=') else {
            return Ok(());
        };
        let value = measure(value, line)?;
        let slot = match name.trim() {
            "<MAX> observation" => &mut self.max_us,
            "<MIN> observation" => &mut self.min_us,
            "percentile 50.000" => &mut self.p50,
            "percentile 90.000" => &mut self.p90,
            "percentile 99.000" => &mut self.p99,
            "percentile 99.900" => &mut self.p99_9,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }
}

fn missing(what: &str) -> ParseError {
    ParseError::new(TOOL, format!("no {what} in the report"))
}

/// Parses a ping-pong report into full round-trip figures in ms.
pub fn parse(stdout: &str, params: &LatencyParams) -> Result<LatencyResult, ParseError> {
    let text = strip_colour(stdout);
    let mut r = Report::default();
    for line in text.lines() {
        r.read_line(line)?;
    }
    if r.half_round_trip {
        return Err(ParseError::new(
            TOOL,
            "the report gives half round trips (run without --full-rtt)",
        ));
    }
    let ms = |v: Option<f64>, what: &str| v.map(|us| us / 1000.0).ok_or_else(|| missing(what));
    let duration_s = r.duration_s.ok_or_else(|| missing("valid duration"))?;
    let observations = r.observations.ok_or_else(|| missing("observations"))?;
    let completed = r.received.unwrap_or(observations);
    Ok(LatencyResult {
        protocol: params.protocol,
        message_size_bytes: params.message_size_bytes,
        full_round_trip: true,
        duration_s,
        observations,
        transactions_per_second: if duration_s > 0.0 {
            completed as f64 / duration_s
        } else {
            0.0
        },
        rtt_min_ms: ms(r.min_us, "minimum")?,
        rtt_avg_ms: ms(r.avg_us, "average")?,
        rtt_p50_ms: ms(r.p50, "50th percentile")?,
        rtt_p90_ms: ms(r.p90, "90th percentile")?,
        rtt_p99_ms: ms(r.p99, "99th percentile")?,
        rtt_p99_9_ms: ms(r.p99_9, "99.9th percentile")?,
        rtt_max_ms: ms(r.max_us, "maximum")?,
        rtt_std_dev_ms: r.std_dev_us.map(|us| us / 1000.0),
        dropped_messages: r.dropped,
    })
}

/// Classifies a run: a report is a success; otherwise sockperf's `ERROR:` line (refused,
/// unreachable), its "No messages were received" (nothing answered, UDP) or its "Invalid
/// address" (an IPv6 target: sockperf 3.7 has no IPv6) says why.
pub fn interpret(out: &ToolOutput, params: &LatencyParams) -> ProbeOutcome {
    let err = match parse(&out.stdout, params) {
        Ok(result) if result.observations > 0 => {
            return ProbeOutcome::Succeeded(ProbeResult::Latency(result))
        }
        Ok(_) => ParseError::new(TOOL, "no round trip was measured"),
        Err(err) => err,
    };
    let text = strip_colour(&format!("{}\n{}", out.stdout, out.stderr));
    let complaint = text
        .lines()
        .map(|l| l.strip_prefix("sockperf: ").unwrap_or(l).trim())
        .find(|l| {
            l.starts_with("ERROR")
                || l.starts_with("No messages were received")
                || l.contains("Invalid address")
        });
    let (reason, message) = match complaint {
        // sockperf 3.7 (Debian 12) parses IPv4 addresses only.
        Some(line) if line.contains("Invalid address") && line.contains(':') => (
            FailureReason::ToolError,
            format!("{line} (this sockperf takes no IPv6 address)"),
        ),
        Some(line) => (classify(line), line.to_string()),
        None if out.exit_code != Some(0) => (FailureReason::ToolError, err.to_string()),
        None => (FailureReason::InvalidOutput, err.to_string()),
    };
    ProbeOutcome::Failed {
        reason,
        message,
        result: None,
    }
}

fn classify(line: &str) -> FailureReason {
    const UNREACHABLE: [&str; 4] = [
        "Network is unreachable",
        "No route to host",
        "timed out",
        "No messages were received",
    ];
    if line.contains("Connection refused") {
        FailureReason::ConnectionRefused
    } else if UNREACHABLE.iter().any(|m| line.contains(m)) {
        FailureReason::Unreachable
    } else {
        FailureReason::ToolError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_escapes_are_removed() {
        assert_eq!(
            strip_colour("a \u{1b}[2;35m====> x\u{1b}[0m b"),
            "a ====> x b"
        );
    }

    #[test]
    fn half_round_trips_are_refused() {
        let text = "sockperf: ====> avg-latency=3.5 (std-dev=1.0)\n";
        let err = parse(text, &LatencyParams::default()).unwrap_err();
        assert!(err.message.contains("half"), "{err}");
    }
}
