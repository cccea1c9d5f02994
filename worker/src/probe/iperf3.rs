//! `iperf3` client: argv, a runtime bound, the parser of its `--json` report, and the mapping of
//! a run onto a [`ProbeOutcome`].
//!
//! The report's `end` block (iperf3 3.12) has `sum_sent` and `sum_received` for TCP and UDP
//! (older releases give UDP only `sum`); `cpu_utilization_percent` has `host_total` and
//! `remote_total`. A failed run is still a JSON report, with an `"error"` string — and iperf3
//! 3.12 then exits with status 0, so the exit status alone says nothing.

use std::time::Duration;

use podperf_protocol::job::{Iperf3Params, TransportProtocol};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{Iperf3Result, ProbeResult};
use serde::Deserialize;

use super::{ParseError, ProbeContext, ProbeOutcome, ToolOutput};

const TOOL: &str = "iperf3";
/// `--connect-timeout`: how long the control connection may take to set up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Margin for start-up, the exchange of results after the test, and the end of the last stream.
const SLACK: Duration = Duration::from_secs(5);

/// iperf3's arguments: `-c TARGET -p PORT --json -t SECONDS -P STREAMS [-u -b BPS] [-R]
/// [-B SOURCE] --connect-timeout 3000`.
///
/// `-b` is passed for UDP only (without it iperf3 sends UDP at 1 Mbit/s); TCP is never paced. The
/// source is bound only when it has the target's family.
pub fn argv(params: &Iperf3Params, ctx: &ProbeContext) -> Vec<String> {
    let mut args: Vec<String> = vec!["-c".into(), ctx.target_ip.to_string()];
    args.extend(["-p".into(), ctx.target_port.to_string(), "--json".into()]);
    args.extend(["-t".into(), params.duration_s.to_string()]);
    args.extend(["-P".into(), params.parallel.to_string()]);
    if params.protocol == TransportProtocol::Udp {
        args.push("-u".into());
        if let Some(bitrate) = params.bitrate_bps {
            args.extend(["-b".into(), bitrate.to_string()]);
        }
    }
    if params.reverse {
        args.push("-R".into());
    }
    if let Some(source) = ctx
        .source_ip
        .filter(|s| s.is_ipv6() == ctx.target_ip.is_ipv6())
    {
        args.extend(["-B".into(), source.to_string()]);
    }
    args.extend([
        "--connect-timeout".into(),
        CONNECT_TIMEOUT.as_millis().to_string(),
    ]);
    args
}

/// Upper bound on iperf3's runtime: the test, the connect timeout, and some slack.
pub fn timeout(params: &Iperf3Params) -> Duration {
    Duration::from_secs(u64::from(params.duration_s)) + CONNECT_TIMEOUT + SLACK
}

/// The parts of the `--json` report podperf reads.
#[derive(Deserialize)]
struct Report {
    start: Start,
    end: End,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Start {
    test_start: TestStart,
}

#[derive(Deserialize)]
struct TestStart {
    protocol: String,
    num_streams: u32,
    reverse: u8,
}

#[derive(Deserialize)]
struct End {
    sum_sent: Option<Sum>,
    sum_received: Option<Sum>,
    sum: Option<Sum>,
    cpu_utilization_percent: Option<Cpu>,
}

/// A `sum*` block; the UDP fields are absent for TCP and `retransmits` for UDP.
#[derive(Deserialize)]
struct Sum {
    seconds: f64,
    bytes: u64,
    bits_per_second: f64,
    retransmits: Option<u64>,
    jitter_ms: Option<f64>,
    lost_packets: Option<u64>,
    packets: Option<u64>,
    lost_percent: Option<f64>,
}

#[derive(Deserialize)]
struct Cpu {
    host_total: f64,
    remote_total: f64,
}

/// The `"error"` of a JSON report, if it has one.
fn error_message(stdout: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct WithError {
        error: Option<String>,
    }
    serde_json::from_str::<WithError>(stdout).ok()?.error
}

/// Parses a `--json` report into the end-of-test summary; a report with an `"error"` is an error.
pub fn parse(stdout: &str) -> Result<Iperf3Result, ParseError> {
    let report: Report =
        serde_json::from_str(stdout).map_err(|e| ParseError::new(TOOL, e.to_string()))?;
    if let Some(error) = report.error {
        return Err(ParseError::new(TOOL, format!("iperf3 reported: {error}")));
    }
    let test = report.start.test_start;
    let protocol = match test.protocol.as_str() {
        "TCP" => TransportProtocol::Tcp,
        "UDP" => TransportProtocol::Udp,
        other => return Err(ParseError::new(TOOL, format!("unknown protocol {other:?}"))),
    };
    let end = report.end;
    let missing = || ParseError::new(TOOL, "no end-of-test summary");
    let sent = end
        .sum_sent
        .as_ref()
        .or(end.sum.as_ref())
        .ok_or_else(missing)?;
    let received = end
        .sum_received
        .as_ref()
        .or(end.sum.as_ref())
        .ok_or_else(missing)?;
    let mut result = Iperf3Result {
        protocol,
        reverse: test.reverse != 0,
        streams: test.num_streams,
        duration_s: sent.seconds,
        bytes_sent: sent.bytes,
        bytes_received: received.bytes,
        sender_bits_per_second: sent.bits_per_second,
        receiver_bits_per_second: received.bits_per_second,
        retransmits: None,
        jitter_ms: None,
        lost_packets: None,
        packets: None,
        lost_percent: None,
        cpu_host_percent: end.cpu_utilization_percent.as_ref().map(|c| c.host_total),
        cpu_remote_percent: end.cpu_utilization_percent.as_ref().map(|c| c.remote_total),
    };
    match protocol {
        TransportProtocol::Tcp => result.retransmits = sent.retransmits,
        TransportProtocol::Udp => add_udp_loss(&mut result, received),
    }
    Ok(result)
}

/// Jitter and loss as the receiver saw them.
fn add_udp_loss(result: &mut Iperf3Result, received: &Sum) {
    result.jitter_ms = received.jitter_ms;
    result.lost_packets = received.lost_packets;
    result.packets = received.packets;
    result.lost_percent = received.lost_percent;
}

/// Classifies an iperf3 run by its report's `"error"` first (busy server, refused or unreachable
/// target), then by whether the report parses. Output that is not JSON at all (iperf3 rejected
/// its arguments) is a tool error with the first line of stderr.
pub fn interpret(out: &ToolOutput, _params: &Iperf3Params) -> ProbeOutcome {
    if let Some(error) = error_message(&out.stdout) {
        return failed(classify_error(&error), error);
    }
    match parse(&out.stdout) {
        Ok(result) => ProbeOutcome::Succeeded(ProbeResult::Iperf3(result)),
        Err(err) => match out.stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) if out.exit_code != Some(0) => {
                failed(FailureReason::ToolError, line.to_string())
            }
            _ => failed(FailureReason::InvalidOutput, err.to_string()),
        },
    }
}

/// Maps iperf3's error text onto a failure reason.
fn classify_error(error: &str) -> FailureReason {
    const UNREACHABLE: [&str; 3] = ["Network is unreachable", "No route to host", "timed out"];
    if error.contains("server is busy") {
        FailureReason::ServerBusy
    } else if error.contains("Connection refused") {
        FailureReason::ConnectionRefused
    } else if UNREACHABLE.iter().any(|m| error.contains(m)) {
        FailureReason::Unreachable
    } else {
        FailureReason::ToolError
    }
}

fn failed(reason: FailureReason, message: String) -> ProbeOutcome {
    ProbeOutcome::Failed {
        reason,
        message,
        result: None,
    }
}
