//! Property tests of the probe parsers and classifiers: arbitrary bytes, and the real captured
//! outputs of `tests/fixtures/` mutated (cut, spliced, numbers replaced by absurd ones, lines
//! dropped or repeated) never make them panic — the answer is always a typed result or a typed
//! failure. Also: whatever the classifier returns survives the trip to the dispatcher (JSON), and
//! the argv built from any parameters holds only known flags, numbers and the target address.
//!
//! `PROPTEST_CASES=20000 cargo test -p podperf-worker --test parser_props` for a longer run.

use std::net::IpAddr;

use podperf_protocol::job::{
    Iperf3Params, PingParams, TracerouteParams, TracerouteProtocol, TransportProtocol,
};
use podperf_protocol::outcome::{JobOutcome, OutcomeStatus};
use podperf_protocol::result::ProbeResult;
use podperf_worker::probe::{iperf3, ping, traceroute, ProbeContext, ProbeOutcome, ToolOutput};
use proptest::prelude::*;

/// Every captured run, by tool.
const PING: [&str; 8] = [
    "ping_ok",
    "ping6_ok",
    "ping_errors_partial",
    "ping_host_unreachable",
    "ping_loss_all",
    "ping_loss_partial",
    "ping_net_unreachable",
    "ping6_pipe",
];
const TRACEROUTE: [&str; 9] = [
    "traceroute_ecmp",
    "traceroute_host_unreachable",
    "traceroute_icmp_ok",
    "traceroute_net_unreachable",
    "traceroute_not_permitted",
    "traceroute_stars",
    "traceroute_tcp_ok",
    "traceroute_udp_ok",
    "traceroute_v6_udp_ok",
];
const IPERF3: [&str; 8] = [
    "iperf3_busy",
    "iperf3_connect_timeout",
    "iperf3_net_unreachable",
    "iperf3_refused",
    "iperf3_tcp",
    "iperf3_tcp_reverse_p2",
    "iperf3_udp",
    "iperf3_v6_tcp",
];

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::fixture;

/// Replacements for numbers and words: what a broken or hostile tool might print instead.
fn weird_token() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["nan", "NaN", "inf", "-inf", "infinity", "+Infinity"])
            .prop_map(String::from),
        3 => prop::sample::select(vec![
            "",
            "-1",
            "0",
            "-0",
            "4294967296",
            "18446744073709551616",
            "99999999999999999999999",
            "1e309",
            "-1e309",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "infinity",
            "0.0.0",
            "1..2",
            "1/2/3",
            "١٢٣",
            "\u{0}",
            "null",
            "true",
            "{}",
            "[]",
            "\"",
            "\\",
            "%",
            "ms",
            " ",
            "\n",
            "*",
            "!H",
            "!X",
            "256",
            "65536",
            "300.1.1.1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
        ])
        .prop_map(String::from),
        2 => ".{0,12}",
        2 => "[0-9.e+-]{1,30}",
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut `len` bytes at `at`.
    Delete { at: usize, len: usize },
    /// Insert a token at `at`.
    Insert { at: usize, token: String },
    /// Replace the `n`-th number (a run of digits and dots) with a token.
    Number { n: usize, token: String },
    /// Drop line `n`.
    DropLine(usize),
    /// Repeat line `n` `times` times.
    RepeatLine { n: usize, times: usize },
    /// Keep only the first `at` bytes.
    Truncate(usize),
    /// Flip one byte.
    Flip { at: usize, xor: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), weird_token()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), weird_token()).prop_map(|(n, token)| Mutation::Number { n, token }),
        any::<usize>().prop_map(Mutation::DropLine),
        (any::<usize>(), 2usize..50).prop_map(|(n, times)| Mutation::RepeatLine { n, times }),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut b = text.as_bytes().to_vec();
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match m {
        Mutation::Delete { at, len } => {
            let start = pos(*at, b.len());
            let end = (start + len).min(b.len());
            b.drain(start..end);
        }
        Mutation::Insert { at, token } => {
            let at = pos(*at, b.len());
            b.splice(at..at, token.bytes());
        }
        Mutation::Number { n, token } => {
            let runs: Vec<(usize, usize)> = digit_runs(&b);
            if !runs.is_empty() {
                let (s, e) = runs[n % runs.len()];
                b.splice(s..e, token.bytes());
            }
        }
        Mutation::DropLine(n) | Mutation::RepeatLine { n, .. } => {
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = n % lines.len();
            if let Mutation::RepeatLine { times, .. } = m {
                let line = lines[i];
                for _ in 1..*times {
                    lines.insert(i, line);
                }
            } else {
                lines.remove(i);
            }
            return lines.concat();
        }
        Mutation::Truncate(at) => b.truncate(pos(*at, b.len())),
        Mutation::Flip { at, xor } => {
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= xor;
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// A mutated fixture: its stdout and stderr each take a few mutations; the exit code may change.
fn mutated(names: &'static [&'static str]) -> impl Strategy<Value = ToolOutput> {
    (
        prop::sample::select(names),
        prop::collection::vec(mutation(), 0..5),
        prop::collection::vec(mutation(), 0..2),
        prop::option::of(prop_oneof![Just(None), any::<i32>().prop_map(Some)]),
    )
        .prop_map(|(name, out_muts, err_muts, exit)| {
            let mut out = fixture(name);
            for m in &out_muts {
                out.stdout = apply(&out.stdout, m);
            }
            for m in &err_muts {
                out.stderr = apply(&out.stderr, m);
            }
            if let Some(exit) = exit {
                out.exit_code = exit;
            }
            out
        })
}

fn arbitrary_output() -> impl Strategy<Value = ToolOutput> {
    (
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ".{0,200}",
        ],
        ".{0,80}",
        prop::option::of(any::<i32>()),
    )
        .prop_map(|(stdout, stderr, exit_code)| ToolOutput {
            exit_code,
            stdout,
            stderr,
        })
}

/// Runs every parser and classifier on `out`; returns every outcome for further checks.
fn interpret_all(out: &ToolOutput) -> Vec<ProbeOutcome> {
    let _ = ping::parse(&out.stdout);
    let _ = traceroute::parse(&out.stdout);
    let _ = iperf3::parse(&out.stdout);
    vec![
        ping::interpret(out, &PingParams::default()),
        traceroute::interpret(out, &TracerouteParams::default()),
        iperf3::interpret(out, &Iperf3Params::default()),
    ]
}

/// What the worker would publish for this outcome, and whether the dispatcher can read it back.
fn crosses_the_wire(outcome: &ProbeOutcome) -> Result<(), String> {
    let result: Option<&ProbeResult> = match outcome {
        ProbeOutcome::Succeeded(r) => Some(r),
        ProbeOutcome::Failed { result, .. } => result.as_ref(),
    };
    let Some(result) = result else { return Ok(()) };
    let json = serde_json::to_vec(result).map_err(|e| format!("does not serialise: {e}"))?;
    serde_json::from_slice::<ProbeResult>(&json).map_err(|e| {
        format!(
            "{} does not decode back ({e}); the dispatcher's ingest would drop the whole \
             JobOutcome as malformed",
            String::from_utf8_lossy(&json)
        )
    })?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parsers_never_panic_on_arbitrary_output(out in arbitrary_output()) {
        interpret_all(&out);
    }

    #[test]
    fn ping_never_panics_on_mutated_real_output(out in mutated(&PING)) {
        interpret_all(&out);
    }

    #[test]
    fn traceroute_never_panics_on_mutated_real_output(out in mutated(&TRACEROUTE)) {
        interpret_all(&out);
    }

    #[test]
    fn iperf3_never_panics_on_mutated_real_output(out in mutated(&IPERF3)) {
        interpret_all(&out);
    }

    #[test]
    fn argv_holds_only_known_flags_numbers_and_the_addresses(
        count in any::<u32>(), interval_ms in any::<u32>(), size_bytes in any::<u32>(),
        max_hops in any::<u8>(), trp in 0u8..3,
        duration_s in any::<u32>(), parallel in any::<u32>(), udp in any::<bool>(),
        bitrate in prop::option::of(any::<u64>()), reverse in any::<bool>(),
        target in any::<IpAddr>(), source in prop::option::of(any::<IpAddr>()),
        port in any::<u16>(),
    ) {
        let ctx = ProbeContext { source_ip: source, target_ip: target, target_port: port };
        let protocol = [TracerouteProtocol::Icmp, TracerouteProtocol::Udp, TracerouteProtocol::Tcp]
            [trp as usize];
        let transport = if udp { TransportProtocol::Udp } else { TransportProtocol::Tcp };
        let argvs = [
            ping::argv(&PingParams { count, interval_ms, size_bytes }, &ctx),
            traceroute::argv(&TracerouteParams { max_hops, protocol }, &ctx),
            iperf3::argv(
                &Iperf3Params {
                    duration_s, parallel, protocol: transport, bitrate_bps: bitrate, reverse,
                },
                &ctx,
            ),
        ];
        const FLAGS: [&str; 23] = [
            "-n", "-4", "-6", "-c", "-i", "-s", "-W", "-I", "-m", "-q", "-w", "-T", "-p",
            "--json", "-t", "-P", "-u", "-b", "-R", "-B", "--connect-timeout", "-U", "-N",
        ];
        for argv in &argvs {
            for arg in argv {
                let ok = FLAGS.contains(&arg.as_str())
                    || arg.parse::<f64>().is_ok_and(|n| n >= 0.0) && !arg.starts_with(['-', '+'])
                    || arg.parse::<IpAddr>().is_ok();
                prop_assert!(ok, "unexpected argument {:?} in {:?}", arg, argv);
            }
            let target = target.to_string();
            prop_assert!(argv.contains(&target), "{:?} lacks the target", argv);
        }
        let _ = ping::timeout(&PingParams { count, interval_ms, size_bytes });
        let _ = traceroute::timeout(&TracerouteParams { max_hops, protocol });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A parsed result the dispatcher cannot decode would be dropped by ingest as "malformed",
    /// leaving the job to time out instead of failing with `invalid_output`.
    #[test]
    fn whatever_the_parsers_return_crosses_the_wire(
        name in prop::sample::select(PING.iter().chain(&TRACEROUTE).chain(&IPERF3).copied()
            .collect::<Vec<_>>()),
        numbers in prop::collection::vec((any::<usize>(), weird_token()), 1..3),
    ) {
        let mut out = fixture(name);
        for (n, token) in numbers {
            out.stdout = apply(&out.stdout, &Mutation::Number { n, token });
        }
        for outcome in interpret_all(&out) {
            if let Err(e) = crosses_the_wire(&outcome) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// One ping reply, with `time` as given, and its summary.
fn one_reply_with_time(time: &str) -> ToolOutput {
    let stdout = format!(
        "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n\
         64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time={time} ms\n\n\
         --- 10.0.0.1 ping statistics ---\n\
         1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
    );
    ToolOutput {
        exit_code: Some(0),
        stdout,
        stderr: String::new(),
    }
}

/// The whole `JobOutcome` the worker would publish, through JSON as ingest decodes it.
fn job_outcome_round_trip(outcome: ProbeOutcome) {
    let (status, reason, message, result) = match outcome {
        ProbeOutcome::Succeeded(r) => (OutcomeStatus::Succeeded, None, None, Some(r)),
        ProbeOutcome::Failed {
            reason,
            message,
            result,
        } => (OutcomeStatus::Failed, Some(reason), Some(message), result),
    };
    let o = JobOutcome {
        job_id: uuid::Uuid::nil(),
        worker_id: "w".into(),
        status,
        reason,
        message,
        result,
        raw_output: None,
        started_at_ms: 0,
        finished_at_ms: 0,
    };
    let json = serde_json::to_vec(&o).unwrap();
    let back = serde_json::from_slice::<JobOutcome>(&json)
        .unwrap_or_else(|e| panic!("{} does not decode ({e})", String::from_utf8_lossy(&json)));
    assert_eq!(back.status, o.status);
    assert_eq!(back.result.is_some(), o.result.is_some());
}

/// The concrete case the property above found, as a plain regression test: `time=nan` is not a
/// number a tool prints, so the parser refuses the output, and that refusal still crosses the wire.
#[test]
fn a_ping_reply_with_nan_time_is_refused_with_a_decodable_outcome() {
    let outcome = ping::interpret(&one_reply_with_time("nan"), &PingParams::default());
    assert!(
        matches!(outcome, ProbeOutcome::Failed { .. }),
        "time=nan was accepted: {outcome:?}"
    );
    crosses_the_wire(&outcome).unwrap();
    job_outcome_round_trip(outcome);
}

/// The other half: the same reply with an extreme but finite time is a measurement, and the whole
/// succeeded `JobOutcome` decodes as ingest reads it.
#[test]
fn a_ping_reply_with_an_extreme_time_succeeds_with_a_decodable_outcome() {
    let outcome = ping::interpret(&one_reply_with_time("1e300"), &PingParams::default());
    assert!(
        matches!(outcome, ProbeOutcome::Succeeded(_)),
        "time=1e300 was refused: {outcome:?}"
    );
    crosses_the_wire(&outcome).unwrap();
    job_outcome_round_trip(outcome);
}

#[test]
fn unmutated_fixtures_still_classify_as_captured() {
    for name in PING.iter().chain(&TRACEROUTE).chain(&IPERF3) {
        for outcome in interpret_all(&fixture(name)) {
            crosses_the_wire(&outcome).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
