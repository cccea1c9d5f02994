//! The `latency` (sockperf) and `mtu` (tracepath + DF ping) probes, table-driven over real outputs
//! captured by `tests/fixtures/capture_depth.sh`, plus property tests: mutated real outputs and
//! arbitrary text never make the parsers panic, and what they return crosses the wire.

use std::net::IpAddr;

use podperf_protocol::job::{LatencyParams, MtuParams, TransportProtocol};
use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::{MtuResult, ProbeResult};
use podperf_worker::probe::{ping, sockperf, tracepath, ProbeContext, ProbeOutcome, ToolOutput};
use proptest::prelude::*;
use test_case::test_case;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{fixture, read};

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

fn latency(protocol: TransportProtocol, duration_s: u32) -> LatencyParams {
    LatencyParams {
        protocol,
        duration_s,
        message_size_bytes: 64,
    }
}

fn failure(outcome: &ProbeOutcome) -> (FailureReason, &str) {
    match outcome {
        ProbeOutcome::Failed {
            reason, message, ..
        } => (*reason, message),
        ProbeOutcome::Succeeded(r) => panic!("expected a failure, got {r:?}"),
    }
}

// ---- sockperf ----

#[test_case("sockperf_tcp", TransportProtocol::Tcp, 2, 11111, Some("10.98.1.2"))]
#[test_case("sockperf_udp", TransportProtocol::Udp, 2, 11111, Some("10.98.1.2"))]
#[test_case(
    "sockperf_refused",
    TransportProtocol::Tcp,
    1,
    11112,
    Some("10.98.1.2")
)]
#[test_case("sockperf_net_unreachable", TransportProtocol::Tcp, 1, 11111, None)]
fn sockperf_argv_matches_capture(
    name: &str,
    protocol: TransportProtocol,
    duration_s: u32,
    port: u16,
    source: Option<&str>,
) {
    let args = sockperf::argv(
        &latency(protocol, duration_s),
        &ctx(source, "10.98.2.2", port),
    );
    assert_eq!(args, captured_argv(name));
    assert!(args.contains(&"--full-rtt".to_string()));
}

#[test_case("sockperf_tcp", TransportProtocol::Tcp, 219_022, 1.550, [5.687, 7.039, 5.992, 7.019, 15.224, 49.281, 5280.030])]
#[test_case("sockperf_udp", TransportProtocol::Udp, 0, 1.550, [0.0; 7]; "udp figures read from the file")]
fn sockperf_parses_full_round_trips(
    name: &str,
    protocol: TransportProtocol,
    observations: u64,
    duration_s: f64,
    us: [f64; 7],
) {
    let out = fixture(name);
    let ProbeOutcome::Succeeded(ProbeResult::Latency(r)) =
        sockperf::interpret(&out, &latency(protocol, 2))
    else {
        panic!("{name} did not parse");
    };
    assert_eq!(r.protocol, protocol);
    assert!(r.full_round_trip);
    assert_eq!(r.duration_s, duration_s);
    assert!(r.rtt_min_ms <= r.rtt_p50_ms && r.rtt_p50_ms <= r.rtt_p90_ms);
    assert!(r.rtt_p90_ms <= r.rtt_p99_ms && r.rtt_p99_ms <= r.rtt_p99_9_ms);
    assert!(r.rtt_p99_9_ms <= r.rtt_max_ms);
    let tps = r.observations as f64 / r.duration_s;
    assert!((r.transactions_per_second - tps).abs() < 1e-6 * tps);
    if observations > 0 {
        assert_eq!(r.observations, observations);
        let got = [
            r.rtt_min_ms,
            r.rtt_avg_ms,
            r.rtt_p50_ms,
            r.rtt_p90_ms,
            r.rtt_p99_ms,
            r.rtt_p99_9_ms,
            r.rtt_max_ms,
        ];
        for (g, want_us) in got.iter().zip(us) {
            assert!(
                (g - want_us / 1000.0).abs() < 1e-9,
                "{g} ms vs {want_us} µs"
            );
        }
    }
}

#[test]
fn sockperf_udp_figures_match_its_report() {
    // The UDP capture's summary line, read independently of the parser.
    let text = read("sockperf_udp", "stdout");
    let p50_us: f64 = text
        .lines()
        .find_map(|l| l.split_once("percentile 50.000 =").map(|(_, v)| v.trim()))
        .unwrap()
        .parse()
        .unwrap();
    let r = sockperf::parse(&text, &latency(TransportProtocol::Udp, 2)).unwrap();
    assert!((r.rtt_p50_ms - p50_us / 1000.0).abs() < 1e-9);
    assert!(r.observations > 1000);
}

#[test_case(
    "sockperf_refused",
    FailureReason::ConnectionRefused,
    "Connection refused"
)]
#[test_case(
    "sockperf_udp_no_server",
    FailureReason::Unreachable,
    "No messages were received"
)]
#[test_case(
    "sockperf_net_unreachable",
    FailureReason::Unreachable,
    "Network is unreachable"
)]
fn sockperf_interpret_classifies(name: &str, reason: FailureReason, text: &str) {
    let out = fixture(name);
    assert_eq!(read(name, "exit").trim(), "0", "sockperf exits 0 even then");
    let outcome = sockperf::interpret(&out, &LatencyParams::default());
    let (got, message) = failure(&outcome);
    assert_eq!(got, reason);
    assert!(message.contains(text), "{message}");
}

#[test]
fn a_cut_sockperf_report_is_invalid_output() {
    let mut out = fixture("sockperf_tcp");
    let cut = out.stdout.find("percentile 90.000").unwrap();
    out.stdout.truncate(cut);
    let outcome = sockperf::interpret(&out, &LatencyParams::default());
    assert_eq!(failure(&outcome).0, FailureReason::InvalidOutput);
}

// ---- tracepath and the DF ping ----

#[test_case("tracepath_no_drop", "10.98.1.1")]
#[test_case("tracepath_drop", "10.98.2.2")]
#[test_case("tracepath_net_unreachable", "10.98.2.2")]
#[test_case("tracepath_black_hole", "10.98.2.2")]
fn tracepath_argv_matches_capture(name: &str, target: &str) {
    let args = tracepath::argv(&MtuParams::default(), &ctx(Some("10.98.1.2"), target, 0));
    assert_eq!(args, captured_argv(name));
}

fn traced(name: &str, target: &str) -> MtuResult {
    match tracepath::interpret(&fixture(name), ip(target)) {
        ProbeOutcome::Succeeded(ProbeResult::Mtu(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn tracepath_without_a_drop() {
    let r = traced("tracepath_no_drop", "10.98.1.1");
    assert_eq!(r.path_mtu_bytes, 1500);
    assert_eq!(r.local_mtu_bytes, Some(1500));
    assert!(r.reached);
    assert_eq!(r.hops, Some(1));
    assert!(r.drops.is_empty());
}

#[test]
fn tracepath_names_the_hop_where_the_mtu_drops() {
    let r = traced("tracepath_drop", "10.98.2.2");
    assert_eq!(r.path_mtu_bytes, 1400);
    assert_eq!(r.local_mtu_bytes, Some(1500));
    assert_eq!(r.hops, Some(2));
    assert_eq!(r.drops.len(), 1);
    let d = &r.drops[0];
    assert_eq!(
        (d.ttl, d.address, d.mtu_bytes),
        (2, Some(ip("10.98.1.1")), 1400)
    );
}

#[test]
fn tracepath_without_a_route_is_unreachable() {
    let outcome = tracepath::interpret(&fixture("tracepath_net_unreachable"), ip("10.98.2.2"));
    assert_eq!(failure(&outcome).0, FailureReason::Unreachable);
}

#[test_case("ping_df_ok", 1400)]
#[test_case("ping_df_too_big", 1500)]
#[test_case("ping_df_black_hole", 1500)]
#[test_case("ping_df_black_hole_passes", 1400)]
fn df_ping_argv_matches_capture(name: &str, mtu: u32) {
    let args = tracepath::df_ping_argv(mtu, &ctx(Some("10.98.1.2"), "10.98.2.2", 0)).unwrap();
    assert_eq!(args, captured_argv(name));
}

#[test]
fn df_ping_too_small_an_mtu_is_not_run() {
    assert!(tracepath::df_ping_argv(20, &ctx(None, "10.98.2.2", 0)).is_none());
    assert_eq!(tracepath::header_bytes(ip("::1")), 48);
}

#[test_case("ping_df_ok", 3, false)]
#[test_case("ping_df_too_big", 0, true)]
fn df_ping_decides_the_black_hole(name: &str, received: u32, black_hole: bool) {
    let trace = traced("tracepath_drop", "10.98.2.2");
    let p = ping::parse(&read(name, "stdout")).unwrap();
    let r = tracepath::with_df_ping(trace, &p);
    let df = r.df_ping.as_ref().unwrap();
    assert_eq!((df.transmitted, df.received), (3, received));
    assert_eq!(df.packet_bytes, 1400);
    assert_eq!(r.black_hole, black_hole);
}

// ---- a black hole: tracepath meets silence, small pings pass, DF pings find the MTU ----

#[test]
fn tracepath_into_a_black_hole_is_silence_not_a_missing_route() {
    let out = fixture("tracepath_black_hole");
    assert!(!tracepath::could_not_send(&out));
    assert!(tracepath::could_not_send(&fixture(
        "tracepath_net_unreachable"
    )));
    let outcome = tracepath::interpret(&out, ip("10.98.2.2"));
    let ProbeOutcome::Failed {
        reason,
        result: Some(ProbeResult::Mtu(partial)),
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, FailureReason::Unreachable);
    assert!(!partial.reached);
    assert_eq!(partial.local_mtu_bytes, Some(1500));
    assert!(partial.drops.is_empty(), "nobody said the MTU drops");
}

#[test]
fn the_reach_ping_is_a_small_default_ping() {
    let c = ctx(Some("10.98.1.2"), "10.98.2.2", 0);
    assert_eq!(
        tracepath::reach_ping_argv(&c),
        captured_argv("ping_reach_ok")
    );
    assert_eq!(tracepath::reach_packet_bytes(ip("10.98.2.2")), 84);
    assert_eq!(tracepath::reach_packet_bytes(ip("fd00::1")), 104);
    let p = ping::parse(&read("ping_reach_ok", "stdout")).unwrap();
    assert_eq!((p.transmitted, p.received), (3, 3));
}

/// The search on the captured path (DF packets of up to 1400 bytes pass, 1500 are lost) where
/// every probe is answered as the real path answered: it ends at 1400 in at most 11 pings.
#[test]
fn the_search_finds_the_mtu_the_black_hole_lets_through() {
    let lost = ping::parse(&read("ping_df_black_hole", "stdout")).unwrap();
    let passed = ping::parse(&read("ping_df_black_hole_passes", "stdout")).unwrap();
    assert_eq!((lost.received, passed.received), (0, 3));
    let mut search = tracepath::MtuSearch::new(84, 1500);
    let mut steps = 0;
    while let Some(size) = search.next() {
        steps += 1;
        let seen = if size <= 1400 { &passed } else { &lost };
        search.record(size, seen.received > 0);
    }
    assert_eq!(search.largest_passing(), 1400);
    assert!(steps <= 11, "{steps} pings");
    let trace = match tracepath::interpret(&fixture("tracepath_black_hole"), ip("10.98.2.2")) {
        ProbeOutcome::Failed {
            result: Some(ProbeResult::Mtu(r)),
            ..
        } => r,
        other => panic!("{other:?}"),
    };
    let r = tracepath::black_hole(trace, 1400, tracepath::df_figures(1500, &lost));
    assert!(r.black_hole);
    assert_eq!(r.path_mtu_bytes, 1400);
    let df = r.df_ping.as_ref().unwrap();
    assert_eq!((df.packet_bytes, df.transmitted, df.received), (1500, 3, 0));
}

proptest! {
    /// Whatever the path lets through (a threshold between the reach ping and the local MTU),
    /// the search ends exactly there within its step bound.
    #[test]
    fn the_search_converges_on_any_threshold(local in 85u32..=65_535, frac in 0.0f64..1.0) {
        let threshold = 84 + ((f64::from(local - 84)) * frac) as u32;
        let threshold = threshold.min(local - 1);
        let mut search = tracepath::MtuSearch::new(84, local);
        let mut steps = 0;
        while let Some(size) = search.next() {
            prop_assert!(size > 84 && size < local);
            steps += 1;
            search.record(size, size <= threshold);
        }
        prop_assert_eq!(search.largest_passing(), threshold);
        prop_assert!(steps <= tracepath::SEARCH_STEPS_MAX, "{} steps", steps);
    }
}

// ---- properties ----

const ALL: [&str; 17] = [
    "sockperf_tcp",
    "sockperf_udp",
    "sockperf_refused",
    "sockperf_udp_no_server",
    "sockperf_net_unreachable",
    "tracepath_no_drop",
    "tracepath_drop",
    "tracepath_net_unreachable",
    "ping_df_ok",
    "ping_df_too_big",
    "tracepath_black_hole",
    "ping_reach_ok",
    "ping_df_black_hole",
    "ping_df_black_hole_passes",
    "tracepath_v6_drop",
    "tracepath_v6_no_drop",
    "sockperf_v6_invalid_address",
];

/// Both parsers on `out`; each answer must survive JSON (no NaN, nothing unrepresentable).
fn interpret_both(out: &ToolOutput) -> Result<(), String> {
    let target = ip("10.98.2.2");
    let a = sockperf::interpret(out, &LatencyParams::default());
    let b = tracepath::interpret(out, target);
    for o in [a, b] {
        let result = match o {
            ProbeOutcome::Succeeded(r) => Some(r),
            ProbeOutcome::Failed { result, .. } => result,
        };
        if let Some(r) = result {
            let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
            let back: ProbeResult = serde_json::from_str(&json).map_err(|e| e.to_string())?;
            if std::mem::discriminant(&back) != std::mem::discriminant(&r) {
                return Err(format!("{r:?} came back as {back:?}"));
            }
        }
    }
    Ok(())
}

fn mutated() -> impl Strategy<Value = ToolOutput> {
    let names = prop::sample::select(&ALL[..]);
    (
        names,
        any::<prop::sample::Index>(),
        0usize..4,
        "[0-9a-z .=:-]{0,12}",
    )
        .prop_map(|(name, at, how, junk)| {
            let mut out = fixture(name);
            let lines: Vec<&str> = out.stdout.lines().collect();
            let i = at
                .index(lines.len().max(1))
                .min(lines.len().saturating_sub(1));
            let mut lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            if !lines.is_empty() {
                match how {
                    0 => drop(lines.remove(i)),
                    1 => lines[i] = lines[i].replace(|c: char| c.is_ascii_digit(), "9"),
                    2 => lines[i].push_str(&junk),
                    _ => lines.insert(i, junk),
                }
            }
            out.stdout = lines.join("\n");
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic_on_mutated_real_output(out in mutated()) {
        interpret_both(&out).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(stdout in "(?s).{0,400}") {
        let out = ToolOutput { exit_code: Some(0), stdout, stderr: String::new() };
        interpret_both(&out).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn sockperf_argv_holds_only_flags_numbers_and_the_addresses(
        duration_s in 1u32..=60, size in 14u32..=65_000, udp in any::<bool>(), port in 1u16..,
    ) {
        let protocol = if udp { TransportProtocol::Udp } else { TransportProtocol::Tcp };
        let p = LatencyParams { protocol, duration_s, message_size_bytes: size };
        let args = sockperf::argv(&p, &ctx(Some("10.98.1.2"), "10.98.2.2", port));
        for a in &args {
            let known = ["ping-pong", "-i", "-p", "--tcp", "-t", "-m", "--full-rtt", "--client_ip"];
            prop_assert!(known.contains(&a.as_str()) || a.parse::<u32>().is_ok()
                || a.parse::<IpAddr>().is_ok(), "{a}");
        }
    }
}
