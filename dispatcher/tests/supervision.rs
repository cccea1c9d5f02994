//! Supervision through the real binary: a long-lived task of the dispatcher that ends early ends
//! the process with a non-zero status, its name and error in the log (so Kubernetes restarts
//! it). The task is made to end by the test-only fault hook `PODPERF_TEST_FAULT=<task>[:<how>]`
//! (debug builds only; see `podperf_connect::Supervisor`). Real nats-server and redis-server.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use podperf_testkit::{wait_until, workspace_bin, ChildGuard, NatsServer, RedisServer};

/// Generous for a busy 2-core machine.
const SOON: Duration = Duration::from_secs(30);

struct Running {
    dispatcher: ChildGuard,
    _nats: NatsServer,
    _redis: RedisServer,
}

fn start(fault: &str) -> Running {
    let (nats, redis) = (NatsServer::start(), RedisServer::start());
    let mut cmd = Command::new(workspace_bin("podperf-dispatcher"));
    cmd.env("PODPERF_NATS_URL", nats.url())
        .env("PODPERF_REDIS_URL", redis.url())
        .env("PODPERF_TEST_FAULT", fault)
        .env("RUST_LOG", "info");
    Running {
        dispatcher: ChildGuard::spawn(cmd, "podperf-dispatcher"),
        _nats: nats,
        _redis: redis,
    }
}

/// Waits for the process to exit; its status and log.
fn exit_of(mut run: Running) -> (ExitStatus, String) {
    let status = run.dispatcher.wait_timeout(SOON);
    let log = run.dispatcher.log();
    let status = status.unwrap_or_else(|| panic!("the dispatcher did not exit; log:\n{log}"));
    (status, log)
}

#[test]
fn a_panicking_engine_ends_the_process_naming_it() {
    let (status, log) = exit_of(start("engine"));
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(
        log.contains("a task of the process ended; stopping task=\"engine\""),
        "the supervisor's log line names the task; log:\n{log}"
    );
    assert!(
        log.contains(
            "podperf-dispatcher: task `engine` failed: it panicked: \
             injected fault (PODPERF_TEST_FAULT=engine)"
        ),
        "log:\n{log}"
    );
}

#[test]
fn an_api_task_that_returns_ends_the_process_naming_it() {
    let (status, log) = exit_of(start("api:return"));
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(
        log.contains("podperf-dispatcher: task `api` failed: it returned before shutdown"),
        "log:\n{log}"
    );
}

/// The control: a fault naming no task changes nothing; SIGTERM stops the dispatcher cleanly.
#[test]
fn without_a_fault_the_dispatcher_runs_until_sigterm() {
    let mut run = start("no-such-task");
    let d = &mut run.dispatcher;
    wait_until(SOON, "the dispatcher logs `dispatcher running`", || {
        d.log().contains("dispatcher running")
    });
    assert!(d.is_running(), "log:\n{}", d.log());
    d.sigterm();
    let (status, log) = exit_of(run);
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(!log.contains("failed"), "log:\n{log}");
}
