//! Every probe toward an IPv6 target, over real outputs captured by
//! `tests/fixtures/capture_v6.sh` inside namespaces on fd99::/16: the argv the worker builds is
//! the one captured, and the parsers read the IPv6 output (addresses, ping's `, pipe N`, the
//! IPv6 path MTU); sockperf 3.7's refusal of an IPv6 address is a typed failure naming it.

use std::net::IpAddr;

use podperf_protocol::job::{
    Iperf3Params, LatencyParams, MtuParams, PingParams, TracerouteParams, TracerouteProtocol,
};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::ProbeResult;
use podperf_worker::probe::{
    iperf3, ping, sockperf, tracepath, traceroute, ProbeContext, ProbeOutcome,
};
use test_case::test_case;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{fixture, read};

const SOURCE: &str = "fd99:1::2";
const TARGET: &str = "fd99:2::2";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The worker's context for the captures: a dual-stack source toward `target`.
fn ctx(target: &str, port: u16) -> ProbeContext {
    ProbeContext {
        source_ip: Some(ip(SOURCE)),
        target_ip: ip(target),
        target_port: port,
    }
}

fn captured_argv(name: &str) -> Vec<String> {
    read(name, "cmd")
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect()
}

fn succeeded(outcome: ProbeOutcome) -> ProbeResult {
    match outcome {
        ProbeOutcome::Succeeded(r) => r,
        other => panic!("expected a success, got {other:?}"),
    }
}

#[test]
fn ping_reads_an_ipv6_run_with_requests_in_flight() {
    let params = PingParams {
        count: 3,
        ..Default::default()
    };
    assert_eq!(
        ping::argv(&params, &ctx(TARGET, 0)),
        captured_argv("ping6_pipe")
    );
    let ProbeResult::Ping(r) = succeeded(ping::interpret(&fixture("ping6_pipe"), &params)) else {
        panic!("not a ping result")
    };
    assert_eq!(r.target, TARGET);
    assert_eq!((r.transmitted, r.received, r.loss_percent), (3, 3, 0.0));
    // `rtt min/avg/max/mdev = 1624.084/1834.340/2040.961/170.208 ms, pipe 3`
    assert_eq!(r.rtt_min_ms, Some(1624.084));
    assert_eq!(r.rtt_avg_ms, Some(1834.340));
    assert_eq!(r.rtt_max_ms, Some(2040.961));
    assert_eq!(r.rtt_mdev_ms, Some(170.208));
    assert_eq!(r.replies.len(), 3);
}

#[test_case("traceroute_v6_udp_ok", TracerouteProtocol::Udp)]
#[test_case("traceroute_v6_icmp_ok", TracerouteProtocol::Icmp)]
fn traceroute_reads_ipv6_hops(name: &str, protocol: TracerouteProtocol) {
    let params = TracerouteParams {
        protocol,
        ..Default::default()
    };
    assert_eq!(
        traceroute::argv(&params, &ctx(TARGET, 0)),
        captured_argv(name)
    );
    let ProbeResult::Traceroute(r) = succeeded(traceroute::interpret(&fixture(name), &params))
    else {
        panic!("not a traceroute result")
    };
    assert!(r.reached, "{r:?}");
    assert_eq!(r.hops.len(), 2);
    for (hop, want) in r.hops.iter().zip(["fd99:1::1", TARGET]) {
        assert_eq!(hop.probes.len(), 3, "{hop:?}");
        for p in &hop.probes {
            assert_eq!(p.address, Some(ip(want)), "{hop:?}");
            assert!(p.rtt_ms.is_some_and(|ms| ms > 0.0), "{hop:?}");
        }
    }
}

#[test_case("tracepath_v6_no_drop", "fd99:1::1", 1500, 1, &[])]
#[test_case("tracepath_v6_drop", TARGET, 1400, 2, &[(2, "fd99:1::1", 1400)])]
fn tracepath_reads_the_ipv6_path_mtu(
    name: &str,
    target: &str,
    mtu: u32,
    hops: u32,
    drops: &[(u8, &str, u32)],
) {
    assert_eq!(
        tracepath::argv(&MtuParams::default(), &ctx(target, 0)),
        captured_argv(name)
    );
    let ProbeResult::Mtu(r) = succeeded(tracepath::interpret(&fixture(name), ip(target))) else {
        panic!("not an mtu result")
    };
    assert!(r.reached, "{r:?}");
    assert_eq!((r.path_mtu_bytes, r.local_mtu_bytes), (mtu, Some(1500)));
    assert_eq!(r.hops, Some(hops));
    let seen: Vec<_> = r
        .drops
        .iter()
        .map(|d| (d.ttl, d.address, d.mtu_bytes))
        .collect();
    let want: Vec<_> = drops
        .iter()
        .map(|(t, a, m)| (*t, Some(ip(a)), *m))
        .collect();
    assert_eq!(seen, want);
    // The DF ping at that MTU leaves room for IPv6's 40-byte header and ICMPv6's 8.
    let df = tracepath::df_ping_argv(mtu, &ctx(target, 0)).expect("a DF ping");
    let size = (mtu - 48).to_string();
    assert!(df.windows(2).any(|w| w == ["-s", size.as_str()]), "{df:?}");
    assert!(df.contains(&"-6".to_string()), "{df:?}");
}

#[test]
fn iperf3_reads_an_ipv6_test() {
    let params = Iperf3Params {
        duration_s: 1,
        ..Default::default()
    };
    assert_eq!(
        iperf3::argv(&params, &ctx(TARGET, 5201)),
        captured_argv("iperf3_v6_tcp")
    );
    let ProbeResult::Iperf3(r) = succeeded(iperf3::interpret(&fixture("iperf3_v6_tcp"), &params))
    else {
        panic!("not an iperf3 result")
    };
    assert!(r.receiver_bits_per_second > 1e6, "{r:?}");
    assert!(r.bytes_received > 0, "{r:?}");
}

#[test]
fn sockperf_3_7_refuses_an_ipv6_address_and_the_failure_says_so() {
    let params = LatencyParams {
        duration_s: 1,
        ..Default::default()
    };
    assert_eq!(
        sockperf::argv(&params, &ctx(TARGET, 11111)),
        captured_argv("sockperf_v6_invalid_address")
    );
    let out = fixture("sockperf_v6_invalid_address");
    assert_eq!(
        out.exit_code,
        Some(0),
        "sockperf exits 0 after its usage text"
    );
    match sockperf::interpret(&out, &params) {
        ProbeOutcome::Failed {
            reason, message, ..
        } => {
            assert_eq!(reason, FailureReason::ToolError);
            assert_eq!(
                message,
                "'-i' Invalid address: fd99:2::2 (this sockperf takes no IPv6 address)"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
