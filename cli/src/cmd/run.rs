//! `podperf run ping|traceroute|iperf3|latency|mtu`: one measurement; one submit, then one wait for its end.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use podperf_protocol::api::SubmitReply;
use podperf_protocol::job::*;

use super::job::print_job;
use super::{job_code, print, Ctx};

/// How long past the job's own deadline `run` waits before it gives up (the dispatcher ends every
/// job by its deadline; this covers its sweep and a slow store).
const WAIT_SLACK: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Run {
    #[command(subcommand)]
    probe: Probe,
}

impl Run {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let (spec, no_wait) = self.probe.spec();
        let job_id = ctx.client.submit_one(spec).await?;
        if no_wait {
            let reply = SubmitReply {
                job_ids: vec![job_id],
            };
            print(&ctx.out().submitted(&reply))?;
            return Ok(ExitCode::SUCCESS);
        }
        let rec = ctx.client.wait_past_deadline(job_id, WAIT_SLACK).await?;
        print_job(ctx, &rec).await?;
        Ok(job_code(rec.state))
    }
}

#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// Source worker: id, pod name, or a unique prefix of either.
    #[arg(long)]
    from: String,
    /// Target worker (id, pod name, unique prefix) or, with --to-address, nothing.
    #[arg(
        long,
        required_unless_present = "to_address",
        conflicts_with = "to_address"
    )]
    to: Option<String>,
    /// Target address (must be inside the dispatcher's allow-listed CIDRs).
    #[arg(long)]
    to_address: Option<IpAddr>,
    /// The family of the target worker's address to aim at (default: its primary address). A
    /// worker without an address of that family is refused, never measured over the other.
    #[arg(long, value_enum, value_name = "4|6")]
    family: Option<Family>,
    /// Deadline in seconds (default: the probe's duration plus a queueing allowance).
    #[arg(long)]
    timeout: Option<u32>,
    /// Print the job id and return at once.
    #[arg(long)]
    no_wait: bool,
}

/// `--family 4|6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    #[value(name = "4")]
    Ipv4,
    #[value(name = "6")]
    Ipv6,
}

impl From<Family> for IpFamily {
    fn from(f: Family) -> IpFamily {
        match f {
            Family::Ipv4 => IpFamily::Ipv4,
            Family::Ipv6 => IpFamily::Ipv6,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Probe {
    /// ICMP echo: RTT and loss.
    Ping {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 5)]
        count: u32,
        /// Seconds between requests (≥ 0.2).
        #[arg(long, default_value_t = 0.2)]
        interval: f64,
        /// Payload bytes.
        #[arg(long, default_value_t = 56)]
        size: u32,
    },
    /// The path, hop by hop.
    Traceroute {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 30)]
        max_hops: u8,
        #[arg(long, value_enum, default_value_t = TracerouteProto::Udp)]
        protocol: TracerouteProto,
    },
    /// Bandwidth with iperf3.
    Iperf3 {
        #[command(flatten)]
        common: Common,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u32,
        /// Parallel streams.
        #[arg(long, default_value_t = 1)]
        parallel: u32,
        #[arg(long)]
        udp: bool,
        /// UDP target bitrate in bits/s (suffixes K, M, G allowed, e.g. 100M).
        #[arg(long, value_parser = parse_bitrate)]
        bitrate: Option<u64>,
        /// The target sends, the source receives.
        #[arg(long)]
        reverse: bool,
    },
    /// Request/response latency with sockperf ping-pong: full round-trip percentiles (p50, p90,
    /// p99, p99.9, min, max, avg in ms) and transactions per second.
    Latency {
        #[command(flatten)]
        common: Common,
        /// Ping-pong over TCP or UDP.
        #[arg(long, value_enum, default_value_t = LatencyProto::Tcp)]
        protocol: LatencyProto,
        /// Seconds (1..=60; sockperf's first 0.4 s are a warm-up, not measured).
        #[arg(long, default_value_t = 5)]
        duration: u32,
        /// Bytes per message (14..=65000).
        #[arg(long, default_value_t = 64)]
        message_size: u32,
    },
    /// Path MTU with tracepath (and where it drops), checked with a ping with DF set at that MTU.
    Mtu {
        #[command(flatten)]
        common: Common,
        /// 1..=64.
        #[arg(long, default_value_t = 30)]
        max_hops: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LatencyProto {
    Tcp,
    Udp,
}

impl From<LatencyProto> for TransportProtocol {
    fn from(p: LatencyProto) -> Self {
        match p {
            LatencyProto::Tcp => TransportProtocol::Tcp,
            LatencyProto::Udp => TransportProtocol::Udp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TracerouteProto {
    Icmp,
    Udp,
    Tcp,
}

impl From<TracerouteProto> for TracerouteProtocol {
    fn from(p: TracerouteProto) -> Self {
        match p {
            TracerouteProto::Icmp => TracerouteProtocol::Icmp,
            TracerouteProto::Udp => TracerouteProtocol::Udp,
            TracerouteProto::Tcp => TracerouteProtocol::Tcp,
        }
    }
}

/// `100M` → 100_000_000; plain numbers are bits/s.
pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1_000),
        Some('M' | 'm') => (&s[..s.len() - 1], 1_000_000),
        Some('G' | 'g') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a bitrate like 100M"))?;
    if v.is_nan() || v <= 0.0 {
        return Err("the bitrate must be positive".into());
    }
    Ok((v * mult as f64) as u64)
}

impl Probe {
    /// The job to submit, and whether to return without waiting.
    fn spec(self) -> (JobSpec, bool) {
        let (common, params) = match self {
            Probe::Ping {
                common,
                count,
                interval,
                size,
            } => (
                common,
                JobParams::Ping(PingParams {
                    count,
                    interval_ms: (interval * 1000.0).round() as u32,
                    size_bytes: size,
                }),
            ),
            Probe::Traceroute {
                common,
                max_hops,
                protocol,
            } => (
                common,
                JobParams::Traceroute(TracerouteParams {
                    max_hops,
                    protocol: protocol.into(),
                }),
            ),
            Probe::Iperf3 {
                common,
                duration,
                parallel,
                udp,
                bitrate,
                reverse,
            } => (
                common,
                JobParams::Iperf3(Iperf3Params {
                    duration_s: duration,
                    parallel,
                    protocol: if udp {
                        TransportProtocol::Udp
                    } else {
                        TransportProtocol::Tcp
                    },
                    bitrate_bps: bitrate,
                    reverse,
                }),
            ),
            Probe::Latency {
                common,
                protocol,
                duration,
                message_size,
            } => (
                common,
                JobParams::Latency(LatencyParams {
                    protocol: protocol.into(),
                    duration_s: duration,
                    message_size_bytes: message_size,
                }),
            ),
            Probe::Mtu { common, max_hops } => (common, JobParams::Mtu(MtuParams { max_hops })),
        };
        let target = match (common.to, common.to_address) {
            (Some(w), _) => Some(Target::Worker(w)),
            (None, Some(a)) => Some(Target::Address(a)),
            (None, None) => None,
        };
        let spec = JobSpec {
            family: common.family.map(IpFamily::from),
            source: common.from,
            target,
            params,
            timeout_s: common.timeout,
        };
        (spec, common.no_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_take_si_suffixes() {
        assert_eq!(parse_bitrate("100M"), Ok(100_000_000));
        assert_eq!(parse_bitrate("1.5k"), Ok(1_500));
        assert_eq!(parse_bitrate("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bitrate("64"), Ok(64));
        assert!(parse_bitrate("0").is_err());
        assert!(parse_bitrate("fast").is_err());
    }
}
