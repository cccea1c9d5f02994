//! Supervision through the real binary: a long-lived task of the worker that ends early ends the
//! process with a non-zero status, its name and error in the log (so Kubernetes restarts it).
//! The task is made to end by the test-only fault hook `PODPERF_TEST_FAULT=<task>[:<how>]`
//! (debug builds only; see `podperf_connect::Supervisor`). A real nats-server.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use podperf_testkit::{workspace_bin, ChildGuard, NatsServer};

/// Generous for a busy 2-core machine.
const SOON: Duration = Duration::from_secs(30);

/// Runs a worker with `fault` until it exits; its status and log.
fn run_with_fault(fault: &str) -> (ExitStatus, String) {
    let nats = NatsServer::start();
    let mut cmd = Command::new(workspace_bin("podperf-worker"));
    cmd.env("PODPERF_NATS_URL", nats.url())
        .env("POD_UID", "supervised-worker")
        .env("POD_NAME", "supervised-worker")
        .env("POD_IP", "127.0.0.1")
        .env("NODE_NAME", "test-node")
        .env("PODPERF_NO_IPERF3_SERVER", "true")
        .env("PODPERF_TEST_FAULT", fault)
        .env("RUST_LOG", "info");
    let mut worker = ChildGuard::spawn(cmd, "podperf-worker");
    let status = worker.wait_timeout(SOON);
    let log = worker.log();
    let status = status.unwrap_or_else(|| panic!("the worker did not exit; log:\n{log}"));
    (status, log)
}

#[test]
fn a_liveness_task_that_returns_ends_the_process_naming_it() {
    let (status, log) = run_with_fault("liveness:return");
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(
        log.contains("a task of the process ended; stopping task=\"liveness\""),
        "the supervisor's log line names the task; log:\n{log}"
    );
    assert!(
        log.contains("podperf-worker: task `liveness` failed: it returned before shutdown"),
        "log:\n{log}"
    );
}

#[test]
fn a_failing_intake_ends_the_process_with_its_error() {
    let (status, log) = run_with_fault("intake:error");
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(
        log.contains(
            "podperf-worker: task `intake` failed: injected fault (PODPERF_TEST_FAULT=intake)"
        ),
        "log:\n{log}"
    );
}
