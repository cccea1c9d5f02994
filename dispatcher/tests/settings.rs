//! The dispatcher's settings through the real binary: a numeric setting out of its range, or not a
//! number, is refused at start with exit 64 and a message naming the flag (before anything is
//! contacted); `--help` and `--version` exit 0, and `--help` documents each range.

use std::process::{Command, Output};

use podperf_testkit::workspace_bin;

fn dispatcher(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(workspace_bin("podperf-dispatcher"))
        .env_clear()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run podperf-dispatcher")
}

fn assert_refused(out: &Output, flag: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(
        stderr.contains(flag),
        "the message names {flag}; stderr:\n{stderr}"
    );
}

#[test]
fn out_of_range_values_exit_64_naming_the_flag() {
    let cases = [
        // Above ~2 years this used to panic in the engine's delay queue at the first departure.
        ("--lost-grace-ms", "63072000001"),
        ("--lost-grace-ms", "3600001"),
        // `retention_h * 3600` used to overflow.
        ("--retention-h", "18446744073709551615"),
        ("--retention-h", "0"),
        ("--worker-ttl-s", "1"),
        ("--worker-ttl-s", "3601"),
        ("--replicas", "0"),
        ("--replicas", "6"),
        ("--max-queued", "0"),
        ("--schedule-min-every-ms", "999"),
        ("--schedule-min-every-ms", "10001"),
        ("--submit-id-ttl-s", "59"),
        ("--submit-id-ttl-s", "86401"),
    ];
    for (flag, value) in cases {
        assert_refused(&dispatcher(&[flag, value], &[]), flag);
    }
}

#[test]
fn a_variable_out_of_range_is_refused_like_its_flag() {
    let out = dispatcher(&[], &[("PODPERF_LOST_GRACE_MS", "99999999999")]);
    assert_refused(&out, "--lost-grace-ms");
}

#[test]
fn non_numeric_values_exit_64_naming_the_flag() {
    for flag in [
        "--worker-ttl-s",
        "--retention-h",
        "--max-queued",
        "--replicas",
    ] {
        assert_refused(&dispatcher(&[flag, "ten"], &[]), flag);
    }
    assert_refused(&dispatcher(&["--replicas=-1"], &[]), "--replicas");
    assert_refused(&dispatcher(&["--no-such-flag"], &[]), "--no-such-flag");
}

#[test]
fn help_and_version_exit_0_and_help_documents_the_ranges() {
    let help = dispatcher(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for range in [
        "range 1..=5",
        "range 2..=3600",
        "range 0..=3600000",
        "range 1..=8760",
        "range 1..=10000000",
    ] {
        assert!(text.contains(range), "--help shows {range}:\n{text}");
    }
    assert_eq!(dispatcher(&["--version"], &[]).status.code(), Some(0));
}
