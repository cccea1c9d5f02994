//! The probe parsers and classifiers, table-driven over real outputs captured by
//! `tests/fixtures/capture.sh` (each fixture: `NAME.cmd`, `.stdout`, `.stderr`, `.exit`).

use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::job::{
    Iperf3Params, PingParams, TracerouteParams, TracerouteProtocol, TransportProtocol,
};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{ProbeResult, TracerouteResult};
use podperf_worker::probe::{iperf3, ping, traceroute, ProbeContext, ProbeOutcome, ToolOutput};
use test_case::test_case;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{fixture, read};

/// The arguments the fixture was captured with (program name dropped).
fn captured_argv(name: &str) -> Vec<String> {
    read(name, "cmd")
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ctx(source: Option<&str>, target: &str, port: u16) -> ProbeContext {
    ProbeContext {
        source_ip: source.map(ip),
        target_ip: ip(target),
        target_port: port,
    }
}

/// (reason, message, carries a partial result) of a failure; panics on success.
fn failure(outcome: &ProbeOutcome) -> (FailureReason, &str, bool) {
    match outcome {
        ProbeOutcome::Failed {
            reason,
            message,
            result,
        } => (*reason, message, result.is_some()),
        ProbeOutcome::Succeeded(r) => panic!("expected a failure, got {r:?}"),
    }
}

// ---- argv: the worker builds exactly the command lines the fixtures were captured with ----

#[test_case("ping_ok", 5, Some("10.99.1.2"), "10.99.3.2")]
#[test_case("ping_loss_partial", 10, Some("10.99.1.2"), "10.99.3.2")]
#[test_case("ping_net_unreachable", 3, None, "10.99.3.2")]
#[test_case("ping6_ok", 3, Some("10.99.1.2"), "::1"; "ping6_ok drops an IPv4 source")]
fn ping_argv_matches_capture(name: &str, count: u32, source: Option<&str>, target: &str) {
    let params = PingParams {
        count,
        interval_ms: 200,
        size_bytes: 56,
    };
    assert_eq!(
        ping::argv(&params, &ctx(source, target, 5201)),
        captured_argv(name)
    );
}

#[test_case("traceroute_udp_ok", TracerouteProtocol::Udp, Some("10.99.1.2"))]
#[test_case("traceroute_icmp_ok", TracerouteProtocol::Icmp, Some("10.99.1.2"))]
#[test_case("traceroute_tcp_ok", TracerouteProtocol::Tcp, Some("10.99.1.2"))]
#[test_case("traceroute_net_unreachable", TracerouteProtocol::Udp, None)]
fn traceroute_argv_matches_capture(name: &str, protocol: TracerouteProtocol, source: Option<&str>) {
    let params = TracerouteParams {
        max_hops: 30,
        protocol,
    };
    let argv = traceroute::argv(&params, &ctx(source, "10.99.3.2", 5201));
    assert_eq!(argv, captured_argv(name));
}

#[test_case(
    "iperf3_tcp",
    5201,
    1,
    TransportProtocol::Tcp,
    false,
    Some("10.99.1.2")
)]
#[test_case(
    "iperf3_tcp_reverse_p2",
    5201,
    2,
    TransportProtocol::Tcp,
    true,
    Some("10.99.1.2")
)]
#[test_case(
    "iperf3_udp",
    5201,
    1,
    TransportProtocol::Udp,
    false,
    Some("10.99.1.2")
)]
#[test_case(
    "iperf3_refused",
    5202,
    1,
    TransportProtocol::Tcp,
    false,
    Some("10.99.1.2")
)]
#[test_case("iperf3_net_unreachable", 5201, 1, TransportProtocol::Tcp, false, None)]
fn iperf3_argv_matches_capture(
    name: &str,
    port: u16,
    parallel: u32,
    protocol: TransportProtocol,
    reverse: bool,
    source: Option<&str>,
) {
    let bitrate_bps = Some(100_000_000);
    let params = Iperf3Params {
        duration_s: 1,
        parallel,
        protocol,
        bitrate_bps,
        reverse,
    };
    let argv = iperf3::argv(&params, &ctx(source, "10.99.3.2", port));
    assert_eq!(argv, captured_argv(name));
}

#[test_case(200, "0.2")]
#[test_case(250, "0.25")]
#[test_case(1000, "1")]
#[test_case(1500, "1.5")]
#[test_case(10_000, "10")]
fn ping_interval_renders_as_seconds(ms: u32, expected: &str) {
    let params = PingParams {
        interval_ms: ms,
        ..PingParams::default()
    };
    let argv = ping::argv(&params, &ctx(None, "10.0.0.1", 5201));
    let i = argv.iter().position(|a| a == "-i").unwrap();
    assert_eq!(argv[i + 1], expected);
}

#[test]
fn ping_argv_uses_ipv6_family_and_ipv6_source() {
    let argv = ping::argv(
        &PingParams::default(),
        &ctx(Some("fd00::1"), "fd00::2", 5201),
    );
    assert_eq!(argv[..2], ["-n", "-6"]);
    assert!(argv.windows(2).any(|w| w == ["-I", "fd00::1"]));
    assert_eq!(argv.last().unwrap(), "fd00::2");
}

#[test]
fn iperf3_tcp_argv_ignores_bitrate_and_udp_gets_it() {
    let tcp = Iperf3Params {
        bitrate_bps: Some(5_000_000),
        ..Iperf3Params::default()
    };
    let argv = iperf3::argv(&tcp, &ctx(None, "10.0.0.1", 5201));
    assert!(!argv.iter().any(|a| a == "-u" || a == "-b"));
    let udp = Iperf3Params {
        protocol: TransportProtocol::Udp,
        ..tcp
    };
    let argv = iperf3::argv(&udp, &ctx(None, "10.0.0.1", 5201));
    assert!(argv.windows(3).any(|w| w == ["-u", "-b", "5000000"]));
}

#[test]
fn timeouts_bound_the_configured_work() {
    let p = PingParams {
        count: 10,
        interval_ms: 200,
        size_bytes: 56,
    };
    assert!(ping::timeout(&p) >= Duration::from_secs(2) + Duration::from_secs(2));
    let t = TracerouteParams {
        max_hops: 30,
        protocol: TracerouteProtocol::Udp,
    };
    assert!(traceroute::timeout(&t) >= Duration::from_secs(30 * 3 * 2));
    let i = Iperf3Params {
        duration_s: 10,
        ..Iperf3Params::default()
    };
    assert!(iperf3::timeout(&i) >= Duration::from_secs(13));
    assert!(iperf3::timeout(&i) <= Duration::from_secs(30));
}

// ---- ping ----

#[test_case("ping_ok", "10.99.3.2", 5, 5, 0, 0.0, Some(0.147))]
#[test_case("ping_loss_partial", "10.99.3.2", 10, 7, 0, 30.0, Some(0.079))]
#[test_case("ping_errors_partial", "10.99.3.2", 10, 7, 2, 30.0, Some(0.200))]
#[test_case("ping_loss_all", "10.99.4.9", 3, 0, 0, 100.0, None)]
#[test_case("ping_host_unreachable", "10.99.3.99", 20, 0, 6, 100.0, None)]
#[test_case("ping6_ok", "::1", 3, 3, 0, 0.0, Some(0.040))]
fn ping_parses_statistics(
    name: &str,
    target: &str,
    transmitted: u32,
    received: u32,
    errors: u32,
    loss: f64,
    avg: Option<f64>,
) {
    let r = ping::parse(&fixture(name).stdout).unwrap();
    assert_eq!(r.target, target);
    assert_eq!(
        (r.transmitted, r.received, r.errors),
        (transmitted, received, errors)
    );
    assert_eq!(r.loss_percent, loss);
    assert_eq!(r.rtt_avg_ms, avg);
    assert_eq!(r.replies.len(), received as usize);
}

#[test]
fn ping_parses_each_reply() {
    let r = ping::parse(&fixture("ping_ok").stdout).unwrap();
    let first = &r.replies[0];
    assert_eq!(
        (first.seq, first.ttl, first.bytes, first.rtt_ms),
        (1, Some(62), 64, 0.453)
    );
    assert_eq!(
        (r.rtt_min_ms, r.rtt_max_ms, r.rtt_mdev_ms),
        (Some(0.064), Some(0.453), Some(0.152))
    );
    let partial = ping::parse(&fixture("ping_loss_partial").stdout).unwrap();
    let seqs: Vec<u32> = partial.replies.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 7, 8, 9, 10]);
}

#[test_case("ping_ok", None)]
#[test_case("ping_loss_partial", None)]
#[test_case("ping_errors_partial", None)]
#[test_case("ping6_ok", None)]
#[test_case("ping_loss_all", Some((FailureReason::Unreachable, "no reply from 10.99.4.9 (3 sent", true)))]
#[test_case("ping_host_unreachable", Some((FailureReason::Unreachable, "Destination Host Unreachable", true)))]
#[test_case("ping_net_unreachable", Some((FailureReason::Unreachable, "ping: connect: Network is unreachable", false)))]
fn ping_interpret_classifies(name: &str, expected: Option<(FailureReason, &str, bool)>) {
    let outcome = ping::interpret(&fixture(name), &PingParams::default());
    match expected {
        None => assert!(matches!(
            outcome,
            ProbeOutcome::Succeeded(ProbeResult::Ping(_))
        )),
        Some((reason, message, partial)) => {
            let (got, got_message, got_partial) = failure(&outcome);
            assert_eq!((got, got_partial), (reason, partial));
            assert!(got_message.contains(message), "{got_message:?}");
        }
    }
}

// ---- traceroute ----

fn parse_traceroute(name: &str) -> TracerouteResult {
    traceroute::parse(&fixture(name).stdout).unwrap()
}

#[test_case("traceroute_udp_ok", "10.99.3.2", 30, true, 3)]
#[test_case("traceroute_icmp_ok", "10.99.3.2", 30, true, 3)]
#[test_case("traceroute_tcp_ok", "10.99.3.2", 30, true, 3)]
#[test_case("traceroute_ecmp", "10.99.7.2", 30, true, 3)]
#[test_case("traceroute_stars", "10.99.4.9", 6, false, 6)]
#[test_case("traceroute_host_unreachable", "10.99.3.99", 5, false, 3)]
fn traceroute_parses_path(name: &str, target: &str, max_hops: u8, reached: bool, hops: usize) {
    let r = parse_traceroute(name);
    assert_eq!(
        (r.target.as_str(), r.max_hops, r.reached),
        (target, max_hops, reached)
    );
    assert_eq!(r.hop_count(), hops);
    assert_eq!(r.hops[0].probes[0].address, Some(ip("10.99.1.1")));
    let ttls: Vec<u8> = r.hops.iter().map(|h| h.ttl).collect();
    assert_eq!(ttls, (1..=hops as u8).collect::<Vec<_>>());
    assert!(r.hops.iter().all(|h| h.probes.len() == 3));
}

#[test]
fn traceroute_keeps_one_address_per_probe_on_ecmp_hops() {
    let r = parse_traceroute("traceroute_ecmp");
    let hop2: Vec<_> = r.hops[1]
        .probes
        .iter()
        .map(|p| (p.address, p.rtt_ms))
        .collect();
    assert_eq!(
        hop2,
        [
            (Some(ip("10.99.2.2")), Some(0.012)),
            (Some(ip("10.99.5.2")), Some(0.165)),
            (Some(ip("10.99.5.2")), Some(0.016)),
        ]
    );
    assert_eq!(r.hops[0].probes[2].address, None);
}

#[test]
fn traceroute_parses_timeouts_and_annotations() {
    let stars = parse_traceroute("traceroute_stars");
    let silent = stars.hops[2..].iter().flat_map(|h| &h.probes);
    assert!(silent
        .clone()
        .all(|p| p.address.is_none() && p.rtt_ms.is_none()));
    assert_eq!(silent.count(), 12);

    let unreachable = parse_traceroute("traceroute_host_unreachable");
    let last = &unreachable.hops[2].probes;
    assert!(last.iter().all(|p| p.annotation.as_deref() == Some("!H")));
    assert_eq!(
        (last[0].address, last[0].rtt_ms),
        (Some(ip("10.99.2.2")), Some(3073.473))
    );
}

#[test_case("traceroute_udp_ok", None)]
#[test_case("traceroute_tcp_ok", None)]
#[test_case("traceroute_ecmp", None)]
#[test_case("traceroute_stars", Some((FailureReason::Unreachable, "not reached in 6 hops; last answer from 10.99.2.2 at hop 2", true)))]
#[test_case("traceroute_host_unreachable", Some((FailureReason::Unreachable, "at hop 3 (!H)", true)))]
#[test_case("traceroute_net_unreachable", Some((FailureReason::Unreachable, "connect: Network is unreachable", false)))]
#[test_case("traceroute_not_permitted", Some((FailureReason::ToolError, "You do not have enough privileges", false)))]
fn traceroute_interpret_classifies(name: &str, expected: Option<(FailureReason, &str, bool)>) {
    let outcome = traceroute::interpret(&fixture(name), &TracerouteParams::default());
    match expected {
        None => assert!(matches!(
            outcome,
            ProbeOutcome::Succeeded(ProbeResult::Traceroute(_))
        )),
        Some((reason, message, partial)) => {
            let (got, got_message, got_partial) = failure(&outcome);
            assert_eq!((got, got_partial), (reason, partial));
            assert!(got_message.contains(message), "{got_message:?}");
        }
    }
}

// ---- iperf3 ----

#[test]
fn iperf3_parses_tcp() {
    let r = iperf3::parse(&fixture("iperf3_tcp").stdout).unwrap();
    assert_eq!(
        (r.protocol, r.reverse, r.streams),
        (TransportProtocol::Tcp, false, 1)
    );
    assert_eq!(
        (r.bytes_sent, r.bytes_received),
        (1_822_425_088, 1_822_424_336)
    );
    assert_eq!(r.duration_s, 1.000141);
    assert_eq!(r.receiver_bits_per_second, 14568468336.747438);
    assert!(r.sender_bits_per_second > r.receiver_bits_per_second);
    assert_eq!(r.retransmits, Some(1134));
    assert_eq!((r.jitter_ms, r.packets), (None, None));
    assert_eq!(r.cpu_host_percent, Some(93.12073484262287));
    assert_eq!(r.cpu_remote_percent, Some(46.141555568434576));
}

#[test]
fn iperf3_parses_tcp_reverse_with_two_streams() {
    let r = iperf3::parse(&fixture("iperf3_tcp_reverse_p2").stdout).unwrap();
    assert_eq!(
        (r.protocol, r.reverse, r.streams),
        (TransportProtocol::Tcp, true, 2)
    );
    assert_eq!(
        (r.bytes_sent, r.bytes_received),
        (2_608_988_160, 2_607_415_296)
    );
    assert!((20.8e9..20.9e9).contains(&r.receiver_bits_per_second));
    assert_eq!(r.retransmits, Some(3981));
}

#[test]
fn iperf3_parses_udp_loss_as_the_receiver_saw_it() {
    let r = iperf3::parse(&fixture("iperf3_udp").stdout).unwrap();
    assert_eq!((r.protocol, r.streams), (TransportProtocol::Udp, 1));
    assert_eq!(r.bytes_received, 12_490_448);
    assert_eq!(r.sender_bits_per_second, 99910495.72506);
    assert_eq!(r.receiver_bits_per_second, 99903703.16307054);
    assert_eq!(r.jitter_ms, Some(0.0070973845125612165));
    assert_eq!(
        (r.packets, r.lost_packets, r.lost_percent),
        (Some(8626), Some(0), Some(0.0))
    );
    assert_eq!(r.retransmits, None);
}

#[test_case("iperf3_tcp", None)]
#[test_case("iperf3_udp", None)]
#[test_case("iperf3_busy", Some((FailureReason::ServerBusy, "the server is busy running a test")))]
#[test_case("iperf3_refused", Some((FailureReason::ConnectionRefused, "Connection refused")))]
#[test_case("iperf3_net_unreachable", Some((FailureReason::Unreachable, "Network is unreachable")))]
#[test_case("iperf3_connect_timeout", Some((FailureReason::Unreachable, "Connection timed out")))]
fn iperf3_interpret_classifies(name: &str, expected: Option<(FailureReason, &str)>) {
    let out = fixture(name);
    // iperf3 3.12 exits 0 even when its JSON reports an error.
    assert_eq!(out.exit_code, Some(0));
    let outcome = iperf3::interpret(&out, &Iperf3Params::default());
    match expected {
        None => assert!(matches!(
            outcome,
            ProbeOutcome::Succeeded(ProbeResult::Iperf3(_))
        )),
        Some((reason, message)) => {
            let (got, got_message, partial) = failure(&outcome);
            assert_eq!((got, partial), (reason, false));
            assert!(got_message.contains(message), "{got_message:?}");
        }
    }
}

// ---- output no tool printed: garbage and truncation (synthetic, not captured) ----

#[test]
fn unparseable_output_is_invalid_output() {
    let out = ToolOutput {
        exit_code: Some(0),
        stdout: "garbage\n".into(),
        stderr: String::new(),
    };
    let ping = ping::interpret(&out, &PingParams::default());
    let tr = traceroute::interpret(&out, &TracerouteParams::default());
    let iperf = iperf3::interpret(&out, &Iperf3Params::default());
    for outcome in [ping, tr, iperf] {
        assert_eq!(failure(&outcome).0, FailureReason::InvalidOutput);
    }
}

#[test]
fn truncated_iperf3_report_is_invalid_output() {
    let mut out = fixture("iperf3_tcp");
    out.stdout.truncate(out.stdout.len() / 2);
    let outcome = iperf3::interpret(&out, &Iperf3Params::default());
    assert_eq!(failure(&outcome).0, FailureReason::InvalidOutput);
}
