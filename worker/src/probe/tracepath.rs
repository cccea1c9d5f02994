//! `tracepath` (kind `mtu`): argv, a runtime bound, the parser of its output, the DF ping that
//! checks the MTU found, and the mapping of both runs onto a [`ProbeOutcome`].
//!
//! Output parsed (iputils 20221126, `-n`):
//! ```text
//!  1?: [LOCALHOST]                      pmtu 1500
//!  1:  10.98.1.1                                             0.156ms
//!  2:  10.98.1.1                                             0.010ms pmtu 1400
//!  2:  10.98.2.2                                             0.262ms reached
//!      Resume: pmtu 1400 hops 2 back 2
//! ```
//! A hop line with `pmtu N` is the hop that answered "fragmentation needed" (the router in front of
//! the smaller link); tracepath then probes the same TTL again with smaller packets. tracepath has
//! no option to bind a source address: it leaves from the route's source.
//!
//! A path that drops large packets silently (no "fragmentation needed": a black hole) leaves
//! tracepath with `no reply` after some hop, `Too many hops` and the source's MTU; the worker then
//! checks with a small ping and DF pings ([`reach_ping_argv`], [`MtuSearch`]).

use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::job::MtuParams;
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{DfPing, MtuDrop, MtuResult, PingResult, ProbeResult};

use super::{ParseError, ProbeContext, ProbeOutcome, ToolOutput};

const TOOL: &str = "tracepath";
/// DF pings sent at the path MTU.
pub const DF_PING_COUNT: u32 = 3;

/// tracepath's arguments: `-n -4|-6 -m MAX_HOPS TARGET`.
pub fn argv(params: &MtuParams, ctx: &ProbeContext) -> Vec<String> {
    let family = if ctx.target_ip.is_ipv6() { "-6" } else { "-4" };
    vec![
        "-n".into(),
        family.into(),
        "-m".into(),
        params.max_hops.to_string(),
        ctx.target_ip.to_string(),
    ]
}

/// Upper bound on tracepath's runtime: it probes each TTL up to three times, 1 s apart when
/// nothing answers (measured: 30 silent hops take 87 s, fixture `tracepath_black_hole`).
pub fn timeout(params: &MtuParams) -> Duration {
    Duration::from_secs(u64::from(params.max_hops) * 3 + 3)
}

/// Bytes of IP + ICMP headers in an echo request of the target's family.
pub fn header_bytes(target: IpAddr) -> u32 {
    if target.is_ipv6() {
        48
    } else {
        28
    }
}

/// The largest IP packet there is (loopback's MTU, 65536, is larger).
const IP_PACKET_MAX: u32 = 65_535;

/// The packet size the DF ping checks for a path MTU: the MTU, or the largest IP packet.
pub fn checked_packet_bytes(mtu: u32) -> u32 {
    mtu.min(IP_PACKET_MAX)
}

/// The DF ping at `mtu`: `ping -n -4|-6 -c 3 -i 0.2 -s (MTU − headers) -W 2 -M do [-I SOURCE]
/// TARGET`; `None` when the MTU is too small to carry a ping.
pub fn df_ping_argv(mtu: u32, ctx: &ProbeContext) -> Option<Vec<String>> {
    let size = checked_packet_bytes(mtu).checked_sub(header_bytes(ctx.target_ip))?;
    let params = podperf_protocol::job::PingParams {
        count: DF_PING_COUNT,
        interval_ms: 200,
        size_bytes: size,
    };
    let mut args = super::ping::argv(&params, ctx);
    let target = args.pop()?;
    let at = args.iter().position(|a| a == "-I").unwrap_or(args.len());
    args.splice(at..at, ["-M".to_string(), "do".to_string()]);
    args.push(target);
    Some(args)
}

/// Upper bound on the DF ping's runtime.
pub fn df_ping_timeout() -> Duration {
    super::ping::timeout(&podperf_protocol::job::PingParams {
        count: DF_PING_COUNT,
        ..Default::default()
    })
}

/// Upper bound on the checks after tracepath: the DF ping, or — when tracepath did not reach the
/// target — the reach ping, the DF ping at the local MTU and the search ([`SEARCH_STEPS_MAX`]).
pub fn checks_timeout() -> Duration {
    df_ping_timeout() * (2 + SEARCH_STEPS_MAX)
}

/// The payload of the reach ping (ping's default): 84-byte IPv4 packets, 104-byte IPv6 ones.
pub const REACH_PING_PAYLOAD_BYTES: u32 = 56;

/// The small ping that tells a black hole (small packets pass) from an unreachable target:
/// `ping -n -4|-6 -c 3 -i 0.2 -s 56 -W 2 [-I SOURCE] TARGET`.
pub fn reach_ping_argv(ctx: &ProbeContext) -> Vec<String> {
    let params = podperf_protocol::job::PingParams {
        count: DF_PING_COUNT,
        interval_ms: 200,
        size_bytes: REACH_PING_PAYLOAD_BYTES,
    };
    super::ping::argv(&params, ctx)
}

/// The size of the reach ping's packets: known to pass when it got a reply.
pub fn reach_packet_bytes(target: IpAddr) -> u32 {
    REACH_PING_PAYLOAD_BYTES + header_bytes(target)
}

/// Most DF pings a search makes: enough to halve any range of IP packet sizes to one byte.
pub const SEARCH_STEPS_MAX: u32 = 17;

/// The search for the largest packet that passes with DF set, by halving the range between a size
/// known to pass and one known to be lost. Used when tracepath could not reach a target that small
/// pings reach: the path drops large packets without saying so (a black hole), and the MTU it
/// really carries is found by probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtuSearch {
    passes: u32,
    lost: u32,
}

impl MtuSearch {
    /// `passes` < `lost`: packet sizes (bytes, IP header included) seen to pass and to be lost.
    pub fn new(passes: u32, lost: u32) -> MtuSearch {
        MtuSearch {
            passes,
            lost: lost.max(passes + 1),
        }
    }

    /// The next packet size to try, or `None` when the answer is known.
    pub fn next(&self) -> Option<u32> {
        (self.lost - self.passes > 1).then(|| self.passes + (self.lost - self.passes) / 2)
    }

    /// What the DF ping of `size` bytes saw.
    pub fn record(&mut self, size: u32, passed: bool) {
        if passed {
            self.passes = self.passes.max(size);
        } else {
            self.lost = self.lost.min(size);
        }
        self.lost = self.lost.max(self.passes + 1);
    }

    /// The largest packet seen to pass.
    pub fn largest_passing(&self) -> u32 {
        self.passes
    }
}

/// The outcome when tracepath did not reach the target but a small ping did and the DF ping at
/// the local MTU was all lost: a black hole, with the path MTU the search found (`path_mtu_bytes`
/// is then the largest DF packet that passed) and `df_ping` the lost check at the local MTU.
pub fn black_hole(mut traced: MtuResult, largest_passing: u32, lost: DfPing) -> MtuResult {
    traced.path_mtu_bytes = largest_passing;
    traced.df_ping = Some(lost);
    traced.black_hole = true;
    traced
}

/// The DF ping's figures for a check of `packet_bytes`.
pub fn df_figures(packet_bytes: u32, ping: &PingResult) -> DfPing {
    DfPing {
        packet_bytes,
        transmitted: ping.transmitted,
        received: ping.received,
        errors: ping.errors,
        loss_percent: ping.loss_percent,
    }
}

fn number<T: std::str::FromStr>(text: &str, line: &str) -> Result<T, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(TOOL, format!("bad number {text:?} in {line:?}")))
}

/// The number after `key` among the whitespace-separated tokens of `line`.
fn after(line: &str, key: &str) -> Option<String> {
    let mut tokens = line.split_whitespace();
    tokens.by_ref().find(|t| *t == key)?;
    tokens.next().map(str::to_string)
}

/// Parses tracepath's output; `target` is the address traced. Fails without a `Resume:` line.
pub fn parse(stdout: &str, target: IpAddr) -> Result<MtuResult, ParseError> {
    let mut result = MtuResult {
        target: target.to_string(),
        path_mtu_bytes: 0,
        local_mtu_bytes: None,
        reached: false,
        hops: None,
        drops: vec![],
        df_ping: None,
        black_hole: false,
    };
    let mut current: Option<u32> = None;
    let mut resumed = false;
    for line in stdout.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Resume:") {
            let pmtu = after(rest, "pmtu").ok_or_else(|| missing("pmtu in Resume"))?;
            result.path_mtu_bytes = number(&pmtu, line)?;
            result.hops = after(rest, "hops").map(|h| number(&h, line)).transpose()?;
            resumed = true;
            continue;
        }
        let Some((ttl, rest)) = trimmed.split_once(':') else {
            continue;
        };
        let Ok(ttl) = ttl.trim_end_matches('?').parse::<u8>() else {
            continue;
        };
        let pmtu = after(rest, "pmtu")
            .map(|p| number::<u32>(&p, line))
            .transpose()?;
        if rest.contains("[LOCALHOST]") {
            result.local_mtu_bytes = pmtu;
            current = pmtu;
            continue;
        }
        if rest.split_whitespace().last() == Some("reached") {
            result.reached = true;
        }
        if let Some(mtu) = pmtu.filter(|m| current.is_none_or(|c| *m < c)) {
            let address = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            result.drops.push(MtuDrop {
                ttl,
                address,
                mtu_bytes: mtu,
            });
            current = Some(mtu);
        }
    }
    if !resumed {
        return Err(missing("Resume line"));
    }
    Ok(result)
}

fn missing(what: &str) -> ParseError {
    ParseError::new(TOOL, format!("no {what} in the output"))
}

/// Whether tracepath could not send at all (no route), as opposed to sending into silence.
pub fn could_not_send(out: &ToolOutput) -> bool {
    out.stdout.lines().any(|l| l.contains("send failed"))
}

/// Classifies the tracepath run alone: reached → success (to be checked with a DF ping); not
/// reached → `unreachable` (with what was learnt when there were hops).
pub fn interpret(out: &ToolOutput, target: IpAddr) -> ProbeOutcome {
    match parse(&out.stdout, target) {
        Ok(result) if result.reached => ProbeOutcome::Succeeded(ProbeResult::Mtu(result)),
        Ok(result) => {
            let message = if could_not_send(out) {
                format!("tracepath could not send toward {target} (no route)")
            } else {
                format!("tracepath did not reach {target}")
            };
            let partial = result.local_mtu_bytes.is_some();
            ProbeOutcome::Failed {
                reason: FailureReason::Unreachable,
                message,
                result: partial.then_some(ProbeResult::Mtu(result)),
            }
        }
        Err(err) => {
            let stderr = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
            let (reason, message) = match stderr {
                Some(line) if out.exit_code != Some(0) => {
                    (FailureReason::ToolError, line.to_string())
                }
                _ => (FailureReason::InvalidOutput, err.to_string()),
            };
            ProbeOutcome::Failed {
                reason,
                message,
                result: None,
            }
        }
    }
}

/// Adds the DF ping's figures: all lost while tracepath's small probes reached the target is a
/// black hole at that MTU.
pub fn with_df_ping(mut result: MtuResult, ping: &PingResult) -> MtuResult {
    result.df_ping = Some(df_figures(
        checked_packet_bytes(result.path_mtu_bytes),
        ping,
    ));
    result.black_hole = ping.transmitted > 0 && ping.received == 0;
    result
}
