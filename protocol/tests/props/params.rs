//! Job parameters in and out of bounds, and an independent model of the bounds.

use podperf_protocol::job::{
    bounds, Iperf3Params, JobParams, LatencyParams, MtuParams, NoopParams, PingParams,
    TracerouteParams, TracerouteProtocol, TransportProtocol,
};
use podperf_protocol::sweep::{SweepParams, SweepTargets};
use proptest::prelude::*;

/// Any parameters, in or out of bounds.
pub fn any_params() -> impl Strategy<Value = JobParams> {
    let tr = prop_oneof![
        Just(TracerouteProtocol::Icmp),
        Just(TracerouteProtocol::Udp),
        Just(TracerouteProtocol::Tcp)
    ];
    let tp = prop_oneof![Just(TransportProtocol::Tcp), Just(TransportProtocol::Udp)];
    let small = || prop_oneof![0u32..100, 100u32..70_000, any::<u32>()];
    prop_oneof![
        (small(), small(), small()).prop_map(|(count, interval_ms, size_bytes)| {
            JobParams::Ping(PingParams {
                count,
                interval_ms,
                size_bytes,
            })
        }),
        (any::<u8>(), tr).prop_map(|(max_hops, protocol)| {
            JobParams::Traceroute(TracerouteParams { max_hops, protocol })
        }),
        (
            small(),
            small(),
            tp,
            prop::option::of(prop_oneof![0u64..10, any::<u64>()]),
            any::<bool>()
        )
            .prop_map(|(duration_s, parallel, protocol, bitrate_bps, reverse)| {
                JobParams::Iperf3(Iperf3Params {
                    duration_s,
                    parallel,
                    protocol,
                    bitrate_bps,
                    reverse,
                })
            }),
        small().prop_map(|sleep_ms| JobParams::Noop(NoopParams { sleep_ms })),
        (small(), small(), sweep_targets()).prop_map(|(count, interval_ms, targets)| {
            JobParams::Sweep(SweepParams {
                targets,
                count,
                interval_ms,
                resolved: vec![],
            })
        }),
        (
            small(),
            small(),
            prop_oneof![Just(TransportProtocol::Tcp), Just(TransportProtocol::Udp)]
        )
            .prop_map(|(duration_s, message_size_bytes, protocol)| {
                JobParams::Latency(LatencyParams {
                    protocol,
                    duration_s,
                    message_size_bytes,
                })
            }),
        any::<u8>().prop_map(|max_hops| JobParams::Mtu(MtuParams { max_hops })),
    ]
}

fn sweep_targets() -> impl Strategy<Value = SweepTargets> {
    prop_oneof![
        Just(SweepTargets::All),
        prop::collection::vec("w[0-9]{1,3}", 0..3).prop_map(SweepTargets::Workers),
    ]
}

/// The bounds, written out independently of `JobParams::validate`.
pub fn model_valid(p: &JobParams) -> bool {
    use bounds::*;
    match p {
        JobParams::Ping(p) => {
            (1..=PING_COUNT_MAX).contains(&p.count)
                && (PING_INTERVAL_MS_MIN..=PING_INTERVAL_MS_MAX).contains(&p.interval_ms)
                && p.size_bytes <= PING_SIZE_BYTES_MAX
        }
        JobParams::Traceroute(p) => (1..=TRACEROUTE_MAX_HOPS_MAX).contains(&p.max_hops),
        JobParams::Iperf3(p) => {
            (1..=IPERF3_DURATION_S_MAX).contains(&p.duration_s)
                && (1..=IPERF3_PARALLEL_MAX).contains(&p.parallel)
                && match (p.protocol, p.bitrate_bps) {
                    (_, None) => true,
                    (TransportProtocol::Tcp, Some(_)) => false,
                    (TransportProtocol::Udp, Some(b)) => (1..=IPERF3_BITRATE_BPS_MAX).contains(&b),
                }
        }
        JobParams::Noop(p) => p.sleep_ms <= NOOP_SLEEP_MS_MAX,
        JobParams::Sweep(p) => {
            use podperf_protocol::sweep::bounds::*;
            (1..=SWEEP_COUNT_MAX).contains(&p.count)
                && (SWEEP_INTERVAL_MS_MIN..=SWEEP_INTERVAL_MS_MAX).contains(&p.interval_ms)
                && match &p.targets {
                    SweepTargets::All => true,
                    SweepTargets::Workers(w) => {
                        !w.is_empty()
                            && w.len() <= SWEEP_TARGETS_MAX
                            && w.iter().all(|n| !n.is_empty())
                    }
                }
                && p.resolved.len() <= SWEEP_TARGETS_MAX
        }
        JobParams::Latency(p) => {
            (1..=LATENCY_DURATION_S_MAX).contains(&p.duration_s)
                && (LATENCY_MESSAGE_SIZE_BYTES_MIN..=LATENCY_MESSAGE_SIZE_BYTES_MAX)
                    .contains(&p.message_size_bytes)
        }
        JobParams::Mtu(p) => (1..=MTU_MAX_HOPS_MAX).contains(&p.max_hops),
    }
}

pub const PARAM_FIELDS: [&str; 11] = [
    "params.targets.workers",
    "params.count",
    "params.interval_ms",
    "params.size_bytes",
    "params.max_hops",
    "params.duration_s",
    "params.parallel",
    "params.bitrate_bps",
    "params.sleep_ms",
    "params.protocol",
    "params.message_size_bytes",
];
