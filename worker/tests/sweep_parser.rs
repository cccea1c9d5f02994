//! The fping sweep probe: argv, parser and classifier, table-driven over real outputs captured by
//! `tests/fixtures/capture_fping.sh` (each fixture: `NAME.cmd`, `.stdout`, `.stderr`, `.exit`).

use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::outcome::FailureReason;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::sweep::{SweepParams, SweepTarget, SweepTargetResult, SweepTargets};
use podperf_worker::probe::{sweep, ProbeOutcome};
use test_case::test_case;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{fixture, read};

/// The fixture's command line: (flags before the targets, source, target addresses).
fn captured(name: &str) -> (Vec<String>, Option<IpAddr>, Vec<IpAddr>) {
    let args: Vec<String> = read(name, "cmd")
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let first_target = args
        .iter()
        .position(|a| a.parse::<IpAddr>().is_ok())
        .unwrap();
    let source = (args[first_target - 1] == "-S").then(|| args[first_target].parse().unwrap());
    let skip = first_target + usize::from(source.is_some());
    let targets = args[skip..].iter().map(|a| a.parse().unwrap()).collect();
    (args, source, targets)
}

fn target(i: usize, ip: IpAddr) -> SweepTarget {
    SweepTarget {
        worker_id: format!("w{i}"),
        node: format!("node-{i}"),
        ip,
        host_network: false,
    }
}

/// The parameters the fixture `name` was captured with (count and period read from its argv).
fn params_of(name: &str) -> SweepParams {
    let (args, _, targets) = captured(name);
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].parse().unwrap()
    };
    SweepParams {
        targets: SweepTargets::All,
        count: value("-c"),
        interval_ms: value("-p"),
        resolved: targets
            .iter()
            .enumerate()
            .map(|(i, ip)| target(i, *ip))
            .collect(),
    }
}

fn results(outcome: &ProbeOutcome) -> &[SweepTargetResult] {
    let result = match outcome {
        ProbeOutcome::Succeeded(r) => r,
        ProbeOutcome::Failed {
            result: Some(r), ..
        } => r,
        other => panic!("no result in {other:?}"),
    };
    match result {
        ProbeResult::Sweep(s) => &s.targets,
        other => panic!("not a sweep: {other:?}"),
    }
}

#[test_case("fping_ok")]
#[test_case("fping_ok_nobody")]
#[test_case("fping_some_unreachable")]
#[test_case("fping_all_unreachable")]
#[test_case("fping_duplicates")]
#[test_case("fping_ipv6")]
#[test_case("fping_not_permitted")]
fn argv_matches_capture(name: &str) {
    let (args, source, _) = captured(name);
    let source = source.or(Some("10.98.1.2".parse().unwrap()));
    assert_eq!(sweep::argv(&params_of(name), source), args);
}

#[test]
fn argv_lists_an_address_once_and_only_of_one_family() {
    let mut p = params_of("fping_ok");
    let first = p.resolved[0].ip;
    p.resolved.push(target(7, first));
    p.resolved.push(target(8, "::1".parse().unwrap()));
    let argv = sweep::argv(&p, None);
    let addresses: Vec<&String> = argv.iter().filter(|a| a.contains('.')).collect();
    assert_eq!(addresses, ["10.98.2.2", "10.98.2.3", "10.98.1.1"]);
    assert!(!argv.contains(&"::1".to_string()) && !argv.contains(&"-S".to_string()));
}

/// (sent, received, loss %, rtt min/avg/max) per target, in argv order.
type Row = (u32, u32, f64, Option<[f64; 3]>);

#[test_case("fping_ok", &[
    (5, 5, 0.0, Some([0.048, 0.180, 0.641])),
    (5, 5, 0.0, Some([0.021, 0.164, 0.713])),
    (5, 5, 0.0, Some([0.018, 0.028, 0.052])),
])]
#[test_case("fping_ok_nobody", &[
    (3, 3, 0.0, Some([0.079, 0.115, 0.176])),
    (3, 3, 0.0, Some([0.018, 0.039, 0.053])),
])]
#[test_case("fping_some_unreachable", &[
    (3, 3, 0.0, Some([0.047, 0.054, 0.063])),
    (3, 0, 100.0, None),
    (3, 0, 100.0, None),
    (3, 0, 100.0, None),
    (3, 3, 0.0, Some([0.027, 0.031, 0.034])),
])]
#[test_case("fping_all_unreachable", &[(3, 0, 100.0, None), (3, 0, 100.0, None)])]
#[test_case("fping_duplicates", &[(4, 4, 0.0, Some([0.074, 0.217, 0.616]))])]
#[test_case("fping_ipv6", &[(3, 3, 0.0, Some([0.051, 0.065, 0.085]))])]
fn parses_every_target_in_order(name: &str, expected: &[Row]) {
    let outcome = sweep::interpret(&fixture(name), &params_of(name));
    let got: Vec<Row> = results(&outcome)
        .iter()
        .map(|t| {
            let rtt = t
                .rtt_min_ms
                .map(|min| [min, t.rtt_avg_ms.unwrap(), t.rtt_max_ms.unwrap()]);
            (t.sent, t.received, t.loss_percent, rtt)
        })
        .collect();
    assert_eq!(got, expected);
    // Each result names the worker it was resolved for.
    for (i, t) in results(&outcome).iter().enumerate() {
        assert_eq!(
            (t.worker_id.as_str(), t.node.as_str()),
            (&*format!("w{i}"), &*format!("node-{i}"))
        );
    }
}

#[test]
fn duplicates_are_counted_but_not_as_replies() {
    let outcome = sweep::interpret(&fixture("fping_duplicates"), &params_of("fping_duplicates"));
    let t = &results(&outcome)[0];
    assert_eq!((t.received, t.duplicates), (4, 12));
    let ok = sweep::interpret(&fixture("fping_ok"), &params_of("fping_ok"));
    assert!(results(&ok).iter().all(|t| t.duplicates == 0));
}

#[test]
fn workers_sharing_an_address_share_its_summary() {
    let mut p = params_of("fping_ok");
    let first = p.resolved[0].ip;
    p.resolved.push(target(9, first));
    let outcome = sweep::interpret(&fixture("fping_ok"), &p);
    let r = results(&outcome);
    assert_eq!(r.len(), 4);
    assert_eq!(
        (r[3].worker_id.as_str(), r[3].rtt_avg_ms),
        ("w9", r[0].rtt_avg_ms)
    );
}

#[test_case("fping_ok", None)]
#[test_case("fping_ok_nobody", None; "non-root with the file capability works")]
#[test_case("fping_some_unreachable", None; "unreachable targets are data")]
#[test_case("fping_duplicates", None)]
#[test_case("fping_all_unreachable", Some((FailureReason::Unreachable, "no reply from any of 2 targets", true)))]
#[test_case("fping_not_permitted", Some((FailureReason::ToolError, "exited with 4", false)); "non-root without the capability")]
fn classifies(name: &str, expected: Option<(FailureReason, &str, bool)>) {
    let outcome = sweep::interpret(&fixture(name), &params_of(name));
    match (expected, &outcome) {
        (None, ProbeOutcome::Succeeded(_)) => {}
        (
            Some((reason, text, partial)),
            ProbeOutcome::Failed {
                reason: r,
                message,
                result,
            },
        ) => {
            assert_eq!(*r, reason);
            assert!(message.contains(text), "{message}");
            assert_eq!(result.is_some(), partial);
        }
        _ => panic!("{name}: unexpected {outcome:?}"),
    }
}

#[test]
fn a_target_missing_from_the_output_is_invalid_output() {
    let mut p = params_of("fping_ok");
    p.resolved.push(target(5, "10.98.9.9".parse().unwrap()));
    match sweep::interpret(&fixture("fping_ok"), &p) {
        ProbeOutcome::Failed {
            reason, message, ..
        } => {
            assert_eq!(reason, FailureReason::InvalidOutput);
            assert!(message.contains("10.98.9.9"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test_case("10.0.0.1 : xmt/rcv/%loss = 3/x/0%"; "not a number")]
#[test_case("10.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = 1/2"; "two rtts")]
#[test_case("10.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = nan/1/2"; "nan")]
fn malformed_summaries_are_errors(line: &str) {
    assert!(sweep::parse(line).is_err());
}

#[test]
fn the_timeout_covers_the_slower_of_period_and_send_rate() {
    let mut p = params_of("fping_ok");
    p.count = 10;
    p.interval_ms = 100;
    // 10 × 100 ms + 1 s reply wait + 2 s slack.
    assert_eq!(sweep::timeout(&p), Duration::from_millis(4000));
    p.resolved = (0..2000)
        .map(|i| target(i, "10.0.0.1".parse().unwrap()))
        .collect();
    // 10 × 2000 requests at 1 ms.
    assert_eq!(sweep::timeout(&p), Duration::from_millis(23_000));
}
