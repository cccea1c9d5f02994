//! The worker's settings through the real binary: a numeric setting out of its range, or not a
//! number, is refused at start with exit 64 and a message naming the flag (before anything is
//! contacted); `--help` and `--version` exit 0, and `--help` documents each range.

use std::process::{Command, Output};

use podperf_testkit::workspace_bin;
use test_case::test_case;

fn worker(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(workspace_bin("podperf-worker"))
        .env_clear()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run podperf-worker")
}

#[test_case("--heartbeat-ms", "0")]
#[test_case("--heartbeat-ms", "99")]
#[test_case("--heartbeat-ms", "60001")]
#[test_case("--max-jobs", "0")]
#[test_case("--max-jobs", "1025")]
#[test_case("--shutdown-grace-s", "3601")]
#[test_case("--shutdown-grace-s", "18446744073709551616")]
#[test_case("--iperf3-port", "0")]
#[test_case("--iperf3-port", "65536")]
#[test_case("--max-jobs", "eight")]
#[test_case("--heartbeat-ms", "1s")]
#[test_case("--pod-ip", "not-an-ip")]
#[test_case("--pod-ips", "127.0.0.1,not-an-ip")]
#[test_case("--host-ips", "fd00:18::1,::g")]
fn a_bad_value_exits_64_naming_the_flag(flag: &str, value: &str) {
    let out = worker(&["--pod-ip", "127.0.0.1", flag, value], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(
        stderr.contains(flag),
        "the message names {flag}; stderr:\n{stderr}"
    );
}

#[test]
fn a_variable_out_of_range_is_refused_like_its_flag() {
    let out = worker(
        &[],
        &[("POD_IP", "127.0.0.1"), ("PODPERF_MAX_JOBS", "100000")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(stderr.contains("--max-jobs"), "stderr:\n{stderr}");
}

#[test]
fn more_than_8_pod_ips_exit_64() {
    let ips: Vec<String> = (1..=9).map(|i| format!("127.0.0.{i}")).collect();
    let out = worker(&[], &[("POD_IPS", &ips.join(","))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(
        stderr.contains("POD_IPS: 9 addresses; at most 8"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn a_missing_pod_ip_exits_64() {
    let out = worker(&[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(stderr.contains("POD_IP"), "stderr:\n{stderr}");
}

#[test]
fn help_and_version_exit_0_and_help_documents_the_ranges() {
    let help = worker(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for range in [
        "range 1..=65535",
        "range 100..=60000",
        "range 1..=1024",
        "range 0..=3600",
    ] {
        assert!(text.contains(range), "--help shows {range}:\n{text}");
    }
    assert_eq!(worker(&["--version"], &[]).status.code(), Some(0));
}

#[test]
fn a_malformed_nats_url_exits_64_naming_it() {
    let out = worker(
        &["--pod-ip", "127.0.0.1", "--nats-url", "nats://a b:x"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot connect to NATS at nats://a b:x: "),
        "stderr:\n{stderr}"
    );
}
