//! Job specs: the kind, its typed parameters with their bounds, source and target, and validation.
//!
//! Parameters are typed and bounded so that a job can never carry a free-form string to a tool:
//! the worker builds each tool's argv from these fields alone.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Bounds enforced on every job spec (by the dispatcher, and again by the worker).
pub mod bounds {
    pub const PING_COUNT_MAX: u32 = 1000;
    pub const PING_INTERVAL_MS_MIN: u32 = 200;
    pub const PING_INTERVAL_MS_MAX: u32 = 10_000;
    /// Largest ICMP payload that fits an IPv4 datagram.
    pub const PING_SIZE_BYTES_MAX: u32 = 65_507;
    pub const TRACEROUTE_MAX_HOPS_MAX: u8 = 64;
    pub const IPERF3_DURATION_S_MAX: u32 = 60;
    pub const IPERF3_PARALLEL_MAX: u32 = 16;
    /// 100 Gbit/s.
    pub const IPERF3_BITRATE_BPS_MAX: u64 = 100_000_000_000;
    pub const NOOP_SLEEP_MS_MAX: u32 = 600_000;
    pub const LATENCY_DURATION_S_MAX: u32 = 60;
    /// sockperf's smallest message (its header).
    pub const LATENCY_MESSAGE_SIZE_BYTES_MIN: u32 = 14;
    /// Fits one UDP datagram.
    pub const LATENCY_MESSAGE_SIZE_BYTES_MAX: u32 = 65_000;
    pub const MTU_MAX_HOPS_MAX: u8 = 64;
    /// Longest deadline a job may ask for, from submission.
    pub const TIMEOUT_S_MAX: u32 = 3600;
}

crate::tagged::tag_first! {
    tag = "kind";
    /// The measurement a job runs, with its typed parameters; `kind` tags it on the wire.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum JobParams {
        Ping(PingParams),
        Traceroute(TracerouteParams),
        Iperf3(Iperf3Params),
        Noop(NoopParams),
        /// One source, many targets, with fping ([`crate::sweep`]).
        Sweep(crate::sweep::SweepParams),
        /// Request/response latency with `sockperf ping-pong`.
        Latency(LatencyParams),
        /// Path MTU with `tracepath`, then a DF ping at the MTU found.
        Mtu(MtuParams),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Ping,
    Traceroute,
    Iperf3,
    Noop,
    Sweep,
    Latency,
    Mtu,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Ping => "ping",
            JobKind::Traceroute => "traceroute",
            JobKind::Iperf3 => "iperf3",
            JobKind::Noop => "noop",
            JobKind::Sweep => "sweep",
            JobKind::Latency => "latency",
            JobKind::Mtu => "mtu",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ping -c count -i interval -s size`. An omitted field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PingParams {
    /// Echo requests to send, 1..=1000.
    pub count: u32,
    /// Time between requests, ≥ 200 ms (what an unprivileged ping allows).
    pub interval_ms: u32,
    /// ICMP payload size.
    pub size_bytes: u32,
}

impl Default for PingParams {
    fn default() -> Self {
        PingParams {
            count: 5,
            interval_ms: 200,
            size_bytes: 56,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TracerouteProtocol {
    Icmp,
    Udp,
    Tcp,
}

/// `traceroute -n -m max_hops` with ICMP (`-I`), UDP (default) or TCP SYN (`-T`) probes. An
/// omitted field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracerouteParams {
    /// 1..=64.
    pub max_hops: u8,
    pub protocol: TracerouteProtocol,
}

impl Default for TracerouteParams {
    fn default() -> Self {
        TracerouteParams {
            max_hops: 30,
            protocol: TracerouteProtocol::Udp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportProtocol {
    Tcp,
    Udp,
}

/// `iperf3 -c target -p port --json -t duration -P parallel [-u -b bitrate] [-R]`. An omitted
/// field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Iperf3Params {
    /// Test length, 1..=60 s.
    pub duration_s: u32,
    /// Parallel streams, 1..=16.
    pub parallel: u32,
    pub protocol: TransportProtocol,
    /// Target bitrate, UDP only (iperf3's default for UDP is 1 Mbit/s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate_bps: Option<u64>,
    /// Server sends, client receives (`-R`).
    pub reverse: bool,
}

impl Default for Iperf3Params {
    fn default() -> Self {
        Iperf3Params {
            duration_s: 10,
            parallel: 1,
            protocol: TransportProtocol::Tcp,
            bitrate_bps: None,
            reverse: false,
        }
    }
}

/// Does nothing (after an optional sleep): measures the control plane itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoopParams {
    pub sleep_ms: u32,
}

/// `sockperf ping-pong -i target -p port [--tcp] -t duration -m message_size --full-rtt`: a
/// request/response loop (one message in flight) reporting the *full* round trip. An omitted
/// field takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyParams {
    pub protocol: TransportProtocol,
    /// Test length, 1..=60 s (sockperf spends the first 0.4 s warming up, unmeasured).
    pub duration_s: u32,
    /// Bytes per message, 14..=65000.
    pub message_size_bytes: u32,
}

impl Default for LatencyParams {
    fn default() -> Self {
        LatencyParams {
            protocol: TransportProtocol::Tcp,
            duration_s: 5,
            message_size_bytes: 64,
        }
    }
}

/// `tracepath -n -m max_hops target`, then `ping -M do` at the path MTU found. An omitted field
/// takes its value from [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtuParams {
    /// 1..=64.
    pub max_hops: u8,
}

impl Default for MtuParams {
    fn default() -> Self {
        MtuParams { max_hops: 30 }
    }
}

/// Where a probe is aimed: another worker (the dispatcher resolves its IP), or an address that
/// must lie in the operator's allow-listed CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Worker(String),
    Address(IpAddr),
}

/// An IP address family: which of a target worker's addresses a job aims at (`--family 4|6`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum IpFamily {
    #[default]
    #[serde(rename = "ipv4", alias = "4")]
    Ipv4,
    #[serde(rename = "ipv6", alias = "6")]
    Ipv6,
}

impl IpFamily {
    pub const ALL: [IpFamily; 2] = [IpFamily::Ipv4, IpFamily::Ipv6];

    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> IpFamily {
        match ip {
            IpAddr::V4(_) => IpFamily::Ipv4,
            IpAddr::V6(_) => IpFamily::Ipv6,
        }
    }

    /// `ipv4` or `ipv6`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "ipv4",
            IpFamily::Ipv6 => "ipv6",
        }
    }
}

impl std::fmt::Display for IpFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as a client submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The worker that runs the probe: its id, pod name, or a unique prefix of either.
    pub source: String,
    /// Required for ping, traceroute and iperf3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub params: JobParams,
    /// The family of the target worker's address to aim at (`--family`); without it, the
    /// worker's primary address (`pod_ip`). A worker without an address of that family (or an
    /// address target of the other family) is refused, never measured over the other family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    /// Deadline, in seconds from submission; by default the probe's own duration plus
    /// [`DEFAULT_QUEUE_ALLOWANCE_S`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
}

/// Time a job may wait in the scheduler's queue by default, on top of its own duration.
pub const DEFAULT_QUEUE_ALLOWANCE_S: u32 = 60;

/// A field that failed validation, and why. `field` is a dotted path such as `params.count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path, e.g. `jobs[3]` + `params.count`.
    pub fn within(self, prefix: &str) -> Self {
        FieldError {
            field: format!("{prefix}.{}", self.field),
            message: self.message,
        }
    }
}

pub(crate) fn check<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), FieldError> {
    if value < min || value > max {
        return Err(FieldError::new(
            format!("params.{field}"),
            format!("{value} is out of bounds ({min}..={max})"),
        ));
    }
    Ok(())
}

impl JobParams {
    pub fn kind(&self) -> JobKind {
        match self {
            JobParams::Ping(_) => JobKind::Ping,
            JobParams::Traceroute(_) => JobKind::Traceroute,
            JobParams::Iperf3(_) => JobKind::Iperf3,
            JobParams::Noop(_) => JobKind::Noop,
            JobParams::Sweep(_) => JobKind::Sweep,
            JobParams::Latency(_) => JobKind::Latency,
            JobParams::Mtu(_) => JobKind::Mtu,
        }
    }

    /// The external tool the job runs on its source worker.
    pub fn tool(&self) -> Option<crate::worker::Tool> {
        use crate::worker::Tool;
        match self {
            JobParams::Ping(_) => Some(Tool::Ping),
            JobParams::Traceroute(_) => Some(Tool::Traceroute),
            JobParams::Iperf3(_) => Some(Tool::Iperf3),
            JobParams::Noop(_) => None,
            JobParams::Sweep(_) => Some(Tool::Fping),
            JobParams::Latency(_) => Some(Tool::Sockperf),
            JobParams::Mtu(_) => Some(Tool::Tracepath),
        }
    }

    /// How long the probe itself should take when all goes well (the dispatcher's default
    /// deadline adds queueing time to it).
    pub fn nominal_duration(&self) -> std::time::Duration {
        use std::time::Duration;
        match self {
            JobParams::Ping(p) => {
                Duration::from_millis(u64::from(p.count) * u64::from(p.interval_ms))
            }
            // Three probes per hop, up to a few seconds each when hops do not answer.
            JobParams::Traceroute(p) => Duration::from_secs(u64::from(p.max_hops) * 3),
            JobParams::Iperf3(p) => Duration::from_secs(u64::from(p.duration_s) + 3),
            JobParams::Noop(p) => Duration::from_millis(u64::from(p.sleep_ms)),
            JobParams::Sweep(p) => {
                Duration::from_millis(u64::from(p.count) * u64::from(p.interval_ms))
            }
            JobParams::Latency(p) => Duration::from_secs(u64::from(p.duration_s) + 2),
            // tracepath probes each hop up to three times, 1 s apart when nothing answers; then a
            // DF ping, or, when tracepath met silence, a search of the MTU by DF pings.
            JobParams::Mtu(p) => Duration::from_secs(u64::from(p.max_hops) * 3 + 30),
        }
    }

    /// Whether the job aims at a single target (everything but `noop` and `sweep`, which
    /// carries its targets in its parameters).
    pub fn needs_target(&self) -> bool {
        !matches!(self, JobParams::Noop(_) | JobParams::Sweep(_))
    }

    /// Checks every parameter against [`bounds`].
    pub fn validate(&self) -> Result<(), FieldError> {
        use bounds::*;
        match self {
            JobParams::Ping(p) => {
                check("count", p.count, 1, PING_COUNT_MAX)?;
                check(
                    "interval_ms",
                    p.interval_ms,
                    PING_INTERVAL_MS_MIN,
                    PING_INTERVAL_MS_MAX,
                )?;
                check("size_bytes", p.size_bytes, 0, PING_SIZE_BYTES_MAX)
            }
            JobParams::Traceroute(p) => check("max_hops", p.max_hops, 1, TRACEROUTE_MAX_HOPS_MAX),
            JobParams::Iperf3(p) => {
                check("duration_s", p.duration_s, 1, IPERF3_DURATION_S_MAX)?;
                check("parallel", p.parallel, 1, IPERF3_PARALLEL_MAX)?;
                match (p.protocol, p.bitrate_bps) {
                    (TransportProtocol::Tcp, Some(_)) => Err(FieldError::new(
                        "params.bitrate_bps",
                        "a bitrate applies to UDP tests only",
                    )),
                    (TransportProtocol::Udp, Some(b)) => {
                        check("bitrate_bps", b, 1, IPERF3_BITRATE_BPS_MAX)
                    }
                    _ => Ok(()),
                }
            }
            JobParams::Noop(p) => check("sleep_ms", p.sleep_ms, 0, NOOP_SLEEP_MS_MAX),
            JobParams::Sweep(p) => p.validate(),
            JobParams::Latency(p) => {
                check("duration_s", p.duration_s, 1, LATENCY_DURATION_S_MAX)?;
                check(
                    "message_size_bytes",
                    p.message_size_bytes,
                    LATENCY_MESSAGE_SIZE_BYTES_MIN,
                    LATENCY_MESSAGE_SIZE_BYTES_MAX,
                )
            }
            JobParams::Mtu(p) => check("max_hops", p.max_hops, 1, MTU_MAX_HOPS_MAX),
        }
    }
}

impl JobSpec {
    /// Everything that can be checked without knowing the live workers.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.source.is_empty() {
            return Err(FieldError::new("source", "must name a worker"));
        }
        self.params.validate()?;
        if self.params.needs_target() && self.target.is_none() {
            let kind = self.params.kind();
            return Err(FieldError::new(
                "target",
                format!("a {kind} job needs a target"),
            ));
        }
        if matches!(self.params, JobParams::Sweep(_)) && self.target.is_some() {
            return Err(FieldError::new(
                "target",
                "a sweep takes its targets in params.targets",
            ));
        }
        match (&self.target, self.family) {
            (Some(Target::Worker(w)), _) if w.is_empty() => {
                return Err(FieldError::new("target.worker", "must name a worker"));
            }
            (Some(Target::Address(ip)), Some(f)) if IpFamily::of(*ip) != f => {
                return Err(FieldError::new(
                    "family",
                    format!("the target address {ip} is not an {f} address"),
                ));
            }
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "family",
                    "applies to a job with a target only",
                ));
            }
            _ => {}
        }
        if let Some(t) = self.timeout_s {
            check("timeout_s", t, 1, bounds::TIMEOUT_S_MAX)
                .map_err(|e| FieldError::new("timeout_s", e.message))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn spec(params: JobParams) -> JobSpec {
        JobSpec {
            family: None,
            source: "w1".into(),
            target: Some(Target::Worker("w2".into())),
            params,
            timeout_s: None,
        }
    }

    #[test]
    fn family_is_ipv4_or_ipv6_and_must_match_an_address_target() {
        let json = r#"{"source":"w1","target":{"worker":"w2"},"family":"ipv6",
                       "params":{"kind":"ping"}}"#;
        let s: JobSpec = serde_json::from_str(json).unwrap();
        assert_eq!(s.family, Some(IpFamily::Ipv6));
        let json =
            r#"{"source":"w1","target":{"worker":"w2"},"family":"4","params":{"kind":"ping"}}"#;
        assert_eq!(
            serde_json::from_str::<JobSpec>(json).unwrap().family,
            Some(IpFamily::Ipv4)
        );
        let json =
            r#"{"source":"w1","target":{"worker":"w2"},"family":"5","params":{"kind":"ping"}}"#;
        assert!(serde_json::from_str::<JobSpec>(json).is_err());
        let mut s = spec(JobParams::Ping(PingParams::default()));
        s.target = Some(Target::Address("127.0.0.3".parse().unwrap()));
        s.family = Some(IpFamily::Ipv6);
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, "family");
        assert!(err.message.contains("not an ipv6 address"), "{err}");
        s.target = Some(Target::Address("::1".parse().unwrap()));
        s.validate().unwrap();
        assert_eq!(IpFamily::of("::1".parse().unwrap()), IpFamily::Ipv6);
    }

    #[test_case(JobParams::Ping(PingParams { count: 0, ..Default::default() }), "params.count")]
    #[test_case(JobParams::Ping(PingParams { count: 1001, ..Default::default() }), "params.count")]
    #[test_case(JobParams::Ping(PingParams { interval_ms: 199, ..Default::default() }), "params.interval_ms")]
    #[test_case(JobParams::Ping(PingParams { size_bytes: 70_000, ..Default::default() }), "params.size_bytes")]
    #[test_case(JobParams::Traceroute(TracerouteParams { max_hops: 65, ..Default::default() }), "params.max_hops")]
    #[test_case(JobParams::Iperf3(Iperf3Params { duration_s: 61, ..Default::default() }), "params.duration_s")]
    #[test_case(JobParams::Iperf3(Iperf3Params { parallel: 17, ..Default::default() }), "params.parallel")]
    #[test_case(JobParams::Iperf3(Iperf3Params { bitrate_bps: Some(1), ..Default::default() }), "params.bitrate_bps")]
    #[test_case(JobParams::Latency(LatencyParams { duration_s: 0, ..Default::default() }), "params.duration_s")]
    #[test_case(JobParams::Latency(LatencyParams { duration_s: 61, ..Default::default() }), "params.duration_s")]
    #[test_case(JobParams::Latency(LatencyParams { message_size_bytes: 13, ..Default::default() }), "params.message_size_bytes")]
    #[test_case(JobParams::Latency(LatencyParams { message_size_bytes: 65_001, ..Default::default() }), "params.message_size_bytes")]
    #[test_case(JobParams::Mtu(MtuParams { max_hops: 0 }), "params.max_hops")]
    #[test_case(JobParams::Mtu(MtuParams { max_hops: 65 }), "params.max_hops")]
    fn out_of_bounds_names_the_field(params: JobParams, field: &str) {
        assert_eq!(spec(params).validate().unwrap_err().field, field);
    }

    #[test]
    fn defaults_are_valid() {
        for p in [
            JobParams::Ping(PingParams::default()),
            JobParams::Traceroute(TracerouteParams::default()),
            JobParams::Iperf3(Iperf3Params::default()),
            JobParams::Noop(NoopParams::default()),
            JobParams::Latency(LatencyParams::default()),
            JobParams::Mtu(MtuParams::default()),
        ] {
            spec(p).validate().unwrap();
        }
    }

    #[test]
    fn probes_need_a_target() {
        let mut s = spec(JobParams::Ping(PingParams::default()));
        s.target = None;
        assert_eq!(s.validate().unwrap_err().field, "target");
    }

    #[test]
    fn wire_format_is_tagged_by_kind() {
        let json = r#"{"source":"w1","target":{"address":"127.0.0.3"},
                       "params":{"kind":"ping","count":3}}"#;
        let s: JobSpec = serde_json::from_str(json).unwrap();
        assert_eq!(
            s.params,
            JobParams::Ping(PingParams {
                count: 3,
                ..Default::default()
            })
        );
        assert_eq!(
            s.target,
            Some(Target::Address("127.0.0.3".parse().unwrap()))
        );
    }

    #[test]
    fn unknown_params_are_rejected() {
        let json = r#"{"source":"w1","params":{"kind":"ping","count":3,"flags":"-f"}}"#;
        let err = serde_json::from_str::<JobSpec>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("flags"), "{err}");
        let json = r#"{"source":"w1","params":{"kind":"shell"}}"#;
        assert!(serde_json::from_str::<JobSpec>(json).is_err());
    }
}
