//! The typed measurement results a worker publishes: one struct per probe kind, parsed from the
//! tool's output. Field names are part of the user-facing contract (JSON on the wire, in Redis and
//! in the CLI's `--json` output), so renaming one is a breaking change.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::job::TransportProtocol;

crate::tagged::tag_first! {
    tag = "kind";
    /// A measurement, tagged on the wire by `kind` (`ping`, `traceroute`, `iperf3`, `noop`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    pub enum ProbeResult {
        /// Round-trip times and loss from `ping`.
        Ping(PingResult),
        /// The path to the target from `traceroute`.
        Traceroute(TracerouteResult),
        /// Throughput from `iperf3 --json`.
        Iperf3(Iperf3Result),
        /// A no-op job, which measures the control plane itself.
        Noop(NoopResult),
        /// Per-target loss and round trips from one `fping` sweep.
        Sweep(crate::sweep::SweepResult),
        /// Request/response round trips from `sockperf ping-pong --full-rtt`.
        Latency(LatencyResult),
        /// The path MTU from `tracepath`, checked with a DF ping.
        Mtu(MtuResult),
    }
}

/// The summary of one `sockperf ping-pong` run. Every time is the **full round trip** (sockperf's
/// `--full-rtt`; without it sockperf prints half of it), in milliseconds, over the measured part of
/// the run (sockperf's "valid duration", after its warm-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyResult {
    /// TCP or UDP.
    pub protocol: TransportProtocol,
    /// Bytes per message.
    pub message_size_bytes: u32,
    /// Always true: the times are whole round trips, not sockperf's default half.
    pub full_round_trip: bool,
    /// Measured length of the run (without warm-up), seconds.
    pub duration_s: f64,
    /// Round trips measured.
    pub observations: u64,
    /// Round trips completed per second (observations / duration).
    pub transactions_per_second: f64,
    pub rtt_min_ms: f64,
    pub rtt_avg_ms: f64,
    pub rtt_p50_ms: f64,
    pub rtt_p90_ms: f64,
    pub rtt_p99_ms: f64,
    /// The 99.9th percentile.
    pub rtt_p99_9_ms: f64,
    pub rtt_max_ms: f64,
    /// Standard deviation of the round trips, when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_std_dev_ms: Option<f64>,
    /// Messages sockperf counted as dropped (UDP).
    #[serde(default)]
    pub dropped_messages: u64,
}

/// The path MTU toward a target, where it drops, and whether packets of that size really pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtuResult {
    /// The address traced, as the job gave it.
    pub target: String,
    /// The MTU of the whole path (tracepath's `Resume: pmtu N`), in bytes; in a black hole, the
    /// largest packet that passed with DF set (found by halving DF ping sizes).
    pub path_mtu_bytes: u32,
    /// The MTU of the first link, on the source itself (tracepath's `[LOCALHOST] pmtu N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_mtu_bytes: Option<u32>,
    /// Whether tracepath reached the target.
    pub reached: bool,
    /// Hops to the target (tracepath's `hops N`), when reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<u32>,
    /// Every point where the MTU dropped, in path order.
    #[serde(default)]
    pub drops: Vec<MtuDrop>,
    /// The check with DF set at `path_mtu_bytes`; absent when the path was not reached (or
    /// `ping` is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df_ping: Option<DfPing>,
    /// Packets of the path MTU (or, when tracepath met silence, of the source's MTU) with DF set
    /// were all lost though small pings pass: an MTU black hole (a hop drops them silently).
    #[serde(default)]
    pub black_hole: bool,
}

/// A hop that reported a smaller MTU (an ICMP "fragmentation needed").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtuDrop {
    /// The TTL of the probe that learnt it.
    pub ttl: u8,
    /// The hop that reported it, when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The MTU from there on.
    pub mtu_bytes: u32,
}

/// `ping -M do -s (MTU − headers)`: packets of exactly the path MTU, DF set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DfPing {
    /// Size of each packet on the wire (IP header included) = the MTU checked.
    pub packet_bytes: u32,
    pub transmitted: u32,
    pub received: u32,
    /// ICMP errors instead of replies (e.g. "Frag needed").
    pub errors: u32,
    pub loss_percent: f64,
}

/// What a no-op job did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoopResult {
    /// How long the worker slept before answering.
    pub slept_ms: u32,
}

/// The summary and per-reply round-trip times of one `ping` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingResult {
    /// The address pinged, as ping printed it.
    pub target: String,
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// ICMP errors received instead of replies (ping's "+N errors").
    pub errors: u32,
    /// Share of requests without a reply, 0–100.
    pub loss_percent: f64,
    /// Fastest round trip; absent when no reply came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    /// Mean round trip; absent when no reply came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    /// Slowest round trip; absent when no reply came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    /// Mean deviation of the round trips (ping's `mdev`); absent when no reply came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_mdev_ms: Option<f64>,
    /// Every reply, in the order received.
    pub replies: Vec<PingReply>,
}

/// One echo reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// ICMP sequence number (`icmp_seq`).
    pub seq: u32,
    /// The reply's remaining TTL (IPv4 `ttl`, IPv6 hop limit), when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Size of the reply, ICMP header included.
    pub bytes: u32,
    /// Round-trip time of this request.
    pub rtt_ms: f64,
}

/// The path to a target, hop by hop, from one `traceroute` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerouteResult {
    /// The address traced, as traceroute printed it.
    pub target: String,
    /// The TTL limit of the run.
    pub max_hops: u8,
    /// Whether some probe got an answer from the target itself.
    pub reached: bool,
    /// Every hop printed, in TTL order.
    pub hops: Vec<TracerouteHop>,
}

impl TracerouteResult {
    /// The number of hops up to and including the one that reached the target, or all hops if
    /// the target was not reached.
    pub fn hop_count(&self) -> usize {
        if !self.reached {
            return self.hops.len();
        }
        let target: Option<IpAddr> = self.target.parse().ok();
        let reaching = self.hops.iter().position(|hop| {
            hop.probes
                .iter()
                .any(|p| p.address.is_some() && p.address == target)
        });
        reaching.map_or(self.hops.len(), |i| i + 1)
    }
}

/// One TTL step of a traceroute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerouteHop {
    /// The TTL the probes of this hop were sent with (1 = first router).
    pub ttl: u8,
    /// The probes sent with this TTL, in order.
    pub probes: Vec<HopProbe>,
}

/// One probe of a hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopProbe {
    /// Who answered; `None` when the probe timed out (`*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Round-trip time; `None` when the probe timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// traceroute's annotation of the answer, e.g. `!H` (host unreachable), `!N`, `!X`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

/// The end-of-test summary of one `iperf3 --json` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iperf3Result {
    /// TCP or UDP.
    pub protocol: TransportProtocol,
    /// Whether the server sent and the client received (`-R`).
    pub reverse: bool,
    /// Parallel streams (`-P`).
    pub streams: u32,
    /// Measured test length in seconds.
    pub duration_s: f64,
    /// Bytes the sender sent.
    pub bytes_sent: u64,
    /// Bytes the receiver received.
    pub bytes_received: u64,
    /// Throughput seen by the sender.
    pub sender_bits_per_second: f64,
    /// Throughput seen by the receiver (the figure to report for TCP).
    pub receiver_bits_per_second: f64,
    /// TCP retransmissions by the sender (TCP only, when the sender reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// Packet delay variation seen by the receiver (UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// Datagrams lost (UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_packets: Option<u64>,
    /// Datagrams sent (UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Share of datagrams lost, 0–100 (UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_percent: Option<f64>,
    /// CPU used on the client host during the test, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_host_percent: Option<f64>,
    /// CPU used on the server during the test, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_remote_percent: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(addr: Option<&str>) -> HopProbe {
        HopProbe {
            address: addr.map(|a| a.parse().unwrap()),
            rtt_ms: addr.map(|_| 0.1),
            annotation: None,
        }
    }

    fn hop(ttl: u8, addr: Option<&str>) -> TracerouteHop {
        TracerouteHop {
            ttl,
            probes: vec![probe(addr)],
        }
    }

    #[test]
    fn hop_count_stops_at_the_target() {
        let mut r = TracerouteResult {
            target: "10.0.0.9".into(),
            max_hops: 5,
            reached: true,
            hops: vec![
                hop(1, Some("10.0.0.1")),
                hop(2, Some("10.0.0.9")),
                hop(3, None),
            ],
        };
        assert_eq!(r.hop_count(), 2);
        r.reached = false;
        assert_eq!(r.hop_count(), 3);
    }

    #[test]
    fn ping_result_json_skips_missing_rtts_and_tags_kind() {
        let r = ProbeResult::Ping(PingResult {
            target: "10.0.0.9".into(),
            transmitted: 2,
            received: 0,
            errors: 0,
            loss_percent: 100.0,
            rtt_min_ms: None,
            rtt_avg_ms: None,
            rtt_max_ms: None,
            rtt_mdev_ms: None,
            replies: vec![],
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "ping");
        assert!(json.get("rtt_avg_ms").is_none());
        assert_eq!(serde_json::from_value::<ProbeResult>(json).unwrap(), r);
    }
}
