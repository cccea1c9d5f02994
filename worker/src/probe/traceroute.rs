//! `traceroute` (the Linux "modern traceroute", 2.1): argv, a runtime bound, the parser of its
//! `-n` output, and the mapping of a run onto a [`ProbeOutcome`].
//!
//! Output parsed:
//! ```text
//! traceroute to 10.99.7.2 (10.99.7.2), 30 hops max, 60 byte packets
//!  1  10.99.1.1  0.035 ms  0.007 ms *
//!  2  10.99.2.2  0.012 ms 10.99.5.2  0.165 ms  0.016 ms
//!  3  10.99.2.2  3071.047 ms !H  3071.025 ms !H  3071.013 ms !H
//!  4  * * *
//! ```
//! An address applies to the probes after it until the next address; `*` is a probe that timed
//! out; `!H`, `!N`, `!X`, … annotate the probe before them.

use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::job::{TracerouteParams, TracerouteProtocol};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{HopProbe, ProbeResult, TracerouteHop, TracerouteResult};

use super::{ParseError, ProbeContext, ProbeOutcome, ToolOutput};

const TOOL: &str = "traceroute";
/// `-q`: probes per hop.
const PROBES_PER_HOP: u32 = 3;
/// `-w`: seconds to wait for each probe's answer.
const WAIT_S: u32 = 2;
/// Margin for process start-up.
const SLACK: Duration = Duration::from_secs(2);

/// traceroute's arguments: `-n -m MAX_HOPS -q 3 -w 2 [-I | -T -p PORT] [-s SOURCE] TARGET`.
///
/// UDP is traceroute's default method. TCP SYN probes go to the target's iperf3 port
/// (`ctx.target_port`): the one port podperf knows the target's network policy admits, so the
/// last hop answers; the half-open handshake never reaches the iperf3 server's `accept`. The
/// source is bound only when it has the target's family.
pub fn argv(params: &TracerouteParams, ctx: &ProbeContext) -> Vec<String> {
    let mut args: Vec<String> = vec!["-n".into(), "-m".into(), params.max_hops.to_string()];
    args.extend([
        "-q".into(),
        PROBES_PER_HOP.to_string(),
        "-w".into(),
        WAIT_S.to_string(),
    ]);
    match params.protocol {
        TracerouteProtocol::Udp => {}
        TracerouteProtocol::Icmp => args.push("-I".into()),
        TracerouteProtocol::Tcp => {
            args.extend(["-T".into(), "-p".into(), ctx.target_port.to_string()]);
        }
    }
    if let Some(source) = ctx
        .source_ip
        .filter(|s| s.is_ipv6() == ctx.target_ip.is_ipv6())
    {
        args.extend(["-s".into(), source.to_string()]);
    }
    args.push(ctx.target_ip.to_string());
    args
}

/// Upper bound on traceroute's runtime: every probe of every hop waiting its full `-w`, as if
/// sent one after another (traceroute sends up to 16 at once, so real runs are far shorter).
pub fn timeout(params: &TracerouteParams) -> Duration {
    let probes = u32::from(params.max_hops) * PROBES_PER_HOP;
    Duration::from_secs(u64::from(probes * WAIT_S)) + SLACK
}

/// Parses `traceroute -n` output: the header line, then one line per hop.
pub fn parse(stdout: &str) -> Result<TracerouteResult, ParseError> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or_else(|| ParseError::new(TOOL, "empty output"))?;
    let (target, max_hops) = parse_header(header)?;
    let hops = lines.map(parse_hop).collect::<Result<Vec<_>, _>>()?;
    let target_ip: Option<IpAddr> = target.parse().ok();
    let reached = target_ip.is_some()
        && hops
            .iter()
            .flat_map(|h| &h.probes)
            .any(|p| p.address == target_ip);
    Ok(TracerouteResult {
        target,
        max_hops,
        reached,
        hops,
    })
}

/// `traceroute to NAME (ADDR), 30 hops max, 60 byte packets` → (ADDR, 30).
fn parse_header(line: &str) -> Result<(String, u8), ParseError> {
    let bad = || ParseError::new(TOOL, format!("bad header line: {line:?}"));
    let rest = line.strip_prefix("traceroute to ").ok_or_else(bad)?;
    let (_, rest) = rest.split_once(" (").ok_or_else(bad)?;
    let (target, rest) = rest.split_once("), ").ok_or_else(bad)?;
    let (max_hops, _) = rest.split_once(" hops max").ok_or_else(bad)?;
    Ok((target.to_string(), max_hops.parse().map_err(|_| bad())?))
}

/// ` 2  10.99.2.2  0.012 ms 10.99.5.2  0.165 ms *` → a hop with its probes.
fn parse_hop(line: &str) -> Result<TracerouteHop, ParseError> {
    let bad = |what: &str| ParseError::new(TOOL, format!("{what} in hop line {line:?}"));
    let mut tokens = line.split_whitespace().peekable();
    let ttl = tokens
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("no TTL"))?;
    let mut probes: Vec<HopProbe> = Vec::new();
    let mut address = None;
    while let Some(token) = tokens.next() {
        if token == "*" {
            probes.push(HopProbe {
                address: None,
                rtt_ms: None,
                annotation: None,
            });
        } else if let Some(ip) = parse_address(token) {
            address = Some(ip);
        } else if let Some(rtt) = token.parse::<f64>().ok().filter(|v| v.is_finite()) {
            tokens
                .next_if_eq(&"ms")
                .ok_or_else(|| bad("time without ms"))?;
            probes.push(HopProbe {
                address,
                rtt_ms: Some(rtt),
                annotation: None,
            });
        } else if token.starts_with('!') {
            let probe = probes
                .last_mut()
                .ok_or_else(|| bad("annotation before any probe"))?;
            probe.annotation = Some(token.to_string());
        } else {
            return Err(bad(&format!("unexpected {token:?}")));
        }
    }
    Ok(TracerouteHop { ttl, probes })
}

/// An address as printed with `-n` (`10.0.0.1`), or in the `(10.0.0.1)` form printed without.
fn parse_address(token: &str) -> Option<IpAddr> {
    let bare = token
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(token);
    bare.parse().ok()
}

/// Classifies a traceroute run.
///
/// A target that was not reached is a failed `unreachable` job that still carries the hops (as
/// ping with 100 % loss does): the measurement is kept, and the state says the path is broken.
/// A non-zero exit is `unreachable` when stderr says so (`connect: Network is unreachable`),
/// else a tool error (a bad option, `socket: Operation not permitted`).
pub fn interpret(out: &ToolOutput, _params: &TracerouteParams) -> ProbeOutcome {
    if out.exit_code != Some(0) {
        return tool_failure(out);
    }
    match parse(&out.stdout) {
        Ok(result) if result.reached => ProbeOutcome::Succeeded(ProbeResult::Traceroute(result)),
        Ok(result) => ProbeOutcome::Failed {
            reason: FailureReason::Unreachable,
            message: not_reached_message(&result),
            result: Some(ProbeResult::Traceroute(result)),
        },
        Err(err) => failed(FailureReason::InvalidOutput, err.to_string()),
    }
}

fn tool_failure(out: &ToolOutput) -> ProbeOutcome {
    let line = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
    let Some(line) = line else {
        return failed(
            FailureReason::ToolError,
            format!("exit status {:?}", out.exit_code),
        );
    };
    let unreachable = ["Network is unreachable", "No route to host"]
        .iter()
        .any(|m| line.contains(m));
    let reason = if unreachable {
        FailureReason::Unreachable
    } else {
        FailureReason::ToolError
    };
    failed(reason, line.to_string())
}

fn failed(reason: FailureReason, message: String) -> ProbeOutcome {
    ProbeOutcome::Failed {
        reason,
        message,
        result: None,
    }
}

/// "10.99.4.9 not reached in 6 hops; last answer from 10.99.2.2 at hop 2 (!H)".
fn not_reached_message(result: &TracerouteResult) -> String {
    let mut message = format!(
        "{} not reached in {} hops",
        result.target,
        result.hops.len()
    );
    let last_answer = result.hops.iter().rev().find_map(|hop| {
        let probe = hop.probes.iter().find(|p| p.address.is_some())?;
        Some((hop.ttl, probe.address?, probe.annotation.as_deref()))
    });
    if let Some((ttl, address, annotation)) = last_answer {
        message.push_str(&format!("; last answer from {address} at hop {ttl}"));
        if let Some(annotation) = annotation {
            message.push_str(&format!(" ({annotation})"));
        }
    }
    message
}
