//! Probes: for each tool, the argv built from typed parameters, and the interpretation of what it
//! printed into a typed outcome. Running the process is [`crate::runner`]'s job; everything here
//! is pure and tested on captured real outputs (`worker/tests/fixtures/`).

use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::ProbeResult;

pub mod iperf3;
pub mod ping;
pub mod sockperf;
pub mod sweep;
pub mod tracepath;
pub mod traceroute;

/// Addresses a probe needs, resolved by the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeContext {
    /// The worker's own IP: probes are bound to it (`ping -I`, `traceroute -s`, `iperf3 -B`).
    pub source_ip: Option<IpAddr>,
    pub target_ip: IpAddr,
    /// The target's server port (iperf3's, or sockperf's for `latency`).
    pub target_port: u16,
}

/// What a finished tool process left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolOutput {
    /// `None` when the process was killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The interpretation of a tool run.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    Succeeded(ProbeResult),
    Failed {
        reason: FailureReason,
        message: String,
        /// A partial measurement when the output still carried one (e.g. ping with 100 % loss).
        result: Option<ProbeResult>,
    },
}

/// A parser's complaint about output it could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {tool} output: {message}")]
pub struct ParseError {
    pub tool: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(tool: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            tool,
            message: message.into(),
        }
    }
}

/// Upper bound on how long a probe may run, before the deadline is taken into account.
pub fn expected_duration(params: &podperf_protocol::job::JobParams) -> Duration {
    use podperf_protocol::job::JobParams;
    match params {
        JobParams::Ping(p) => ping::timeout(p),
        JobParams::Traceroute(p) => traceroute::timeout(p),
        JobParams::Iperf3(p) => iperf3::timeout(p),
        JobParams::Noop(p) => Duration::from_millis(u64::from(p.sleep_ms)),
        JobParams::Sweep(p) => sweep::timeout(p),
        JobParams::Latency(p) => sockperf::timeout(p),
        JobParams::Mtu(p) => tracepath::timeout(p) + tracepath::checks_timeout(),
    }
}
