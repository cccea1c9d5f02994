//! The worker against a real nats-server with JetStream: liveness, job intake (accept, refuse,
//! de-duplicate, cancel), real probes, timeouts, shutdown, and what happens to its child
//! processes when the iperf3 server or the worker itself is killed.
//!
//! Each test starts its own nats-server, creates the bucket and stream the dispatcher would, and
//! plays the dispatcher by sending `WorkerCommand`s. Each worker uses its own loopback address
//! (127.0.0.x) so that its `ping`/`iperf3` processes can be told apart by their arguments.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use common::{
    cancel, child_of, eventually, find_procs, in_secs, iperf3_to, is_alive, is_listening, noop,
    ping, test_config, wait_for, Harness,
};
use futures::StreamExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podperf_protocol::command::{RefusalReason, WorkerCommand, WorkerReply};
use podperf_protocol::job::{JobParams, PingParams, TransportProtocol};
use podperf_protocol::names::{event_subject, result_subject, WORKERS_BUCKET};
use podperf_protocol::outcome::{EventKind, FailureReason, OutcomeStatus};
use podperf_protocol::result::{NoopResult, ProbeResult};
use podperf_protocol::worker::Tool;
use podperf_testkit::ChildGuard;
use uuid::Uuid;

const SECS_5: Duration = Duration::from_secs(5);
const SECS_10: Duration = Duration::from_secs(10);

fn refusal(reply: &WorkerReply) -> RefusalReason {
    match reply {
        WorkerReply::Refused { reason, .. } => *reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_its_info_and_keeps_refreshing() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.21").await;

    let (first, info) = h.wait_registered(&w.id, SECS_5).await;
    assert_eq!(info.worker_id, w.id);
    assert_eq!(info.pod_ip, w.pod_ip());
    assert_eq!(info.pod_name, w.config.identity.pod_name);
    assert_eq!(info.iperf3_port, w.iperf3_port());
    assert_eq!(info.max_concurrent_jobs, w.config.max_concurrent_jobs);
    for tool in Tool::ALL {
        let t = info
            .tools
            .iter()
            .find(|t| t.tool == tool)
            .unwrap_or_else(|| panic!("{tool:?} missing from {:?}", info.tools));
        assert!(t.available, "{tool:?} not available: {t:?}");
        assert!(
            t.version.as_deref().is_some_and(|v| !v.is_empty()),
            "{tool:?} has no version: {t:?}"
        );
    }

    // Refreshed by plain puts: the revision moves on, the key stays.
    wait_for(SECS_5, "the key is refreshed twice", || async {
        let e = h.worker_entry(&w.id).await?;
        (e.revision >= first.revision + 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_the_bucket_and_registers_once_it_exists() {
    let h = Harness::start_bare().await;
    // The worker looks the bucket up with a JetStream API request, which a plain subscriber sees.
    let mut lookups = h
        .client
        .subscribe(format!("$JS.API.STREAM.INFO.KV_{WORKERS_BUCKET}"))
        .await
        .unwrap();
    h.client.flush().await.unwrap();
    let w = h.worker("127.0.0.22").await; // answers requests with no bucket yet

    // A second lookup means the first one found the bucket missing.
    for n in 1..=2 {
        tokio::time::timeout(SECS_10, lookups.next())
            .await
            .unwrap_or_else(|_| panic!("the worker did not look the bucket up {n} times"))
            .expect("the subscription is open");
    }
    h.create_bucket(Duration::from_secs(2)).await;

    let (_, info) = h.wait_registered(&w.id, SECS_10).await;
    assert_eq!(info.worker_id, w.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_job_publishes_started_event_and_result() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.23").await;
    let job = noop(50);

    h.run_job(&w.id, &job).await;

    let started = h.wait_started(job.job_id, SECS_5).await;
    assert_eq!(started.job_id, job.job_id);
    assert_eq!(started.worker_id, w.id);
    assert_eq!(started.event, EventKind::Started);

    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.job_id, job.job_id);
    assert_eq!(outcome.worker_id, w.id);
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.reason, None);
    assert_eq!(
        outcome.result,
        Some(ProbeResult::Noop(NoopResult { slept_ms: 50 }))
    );
    assert!(outcome.started_at_ms <= outcome.finished_at_ms);
    assert!(outcome.finished_at_ms - outcome.started_at_ms >= 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_job_id_runs_once() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.24").await;
    let job = noop(300);
    // A plain subscriber sees every publish, even those the stream's duplicate window drops.
    let mut seen = h
        .client
        .subscribe(format!("podperf.*.{}", job.job_id))
        .await
        .unwrap();

    h.run_job(&w.id, &job).await;
    let again = h.send(&w.id, &WorkerCommand::Run(job.clone())).await;
    assert_eq!(
        again,
        WorkerReply::Accepted {
            job_id: job.job_id,
            duplicate: true
        }
    );
    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);

    // A retry after the job finished is still recognised.
    let late = h.send(&w.id, &WorkerCommand::Run(job.clone())).await;
    assert_eq!(
        late,
        WorkerReply::Accepted {
            job_id: job.job_id,
            duplicate: true
        }
    );

    // Give a wrongly started second run time to finish (it would sleep 300 ms too).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.stored_count(&result_subject(job.job_id)).await, 1);
    assert_eq!(h.stored_count(&event_subject(job.job_id)).await, 1);
    let mut published = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), seen.next()).await {
        published.push(msg.subject.to_string());
    }
    assert_eq!(
        published,
        vec![event_subject(job.job_id), result_subject(job.job_id)],
        "the job ran more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_job_whose_deadline_passed() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.25").await;
    let mut job = noop(0);
    job.deadline_at_ms = podperf_protocol::now_ms() - 1000;

    let reply = h.send(&w.id, &WorkerCommand::Run(job.clone())).await;
    assert_eq!(refusal(&reply), RefusalReason::DeadlinePassed, "{reply:?}");

    // A refused id is not remembered: a retry with a fresh deadline runs.
    job.deadline_at_ms = in_secs(60);
    h.run_job(&w.id, &job).await;
    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_invalid_specs_and_garbage() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.26").await;

    let zero_count = ping("127.0.0.1", 0, 200);
    let reply = h.send(&w.id, &WorkerCommand::Run(zero_count.clone())).await;
    assert_eq!(refusal(&reply), RefusalReason::InvalidSpec, "{reply:?}");
    assert!(
        matches!(&reply, WorkerReply::Refused { job_id, message, .. }
            if *job_id == zero_count.job_id && message.contains("count")),
        "{reply:?}"
    );

    let mut no_target = ping("127.0.0.1", 3, 200);
    no_target.target = None;
    let reply = h.send(&w.id, &WorkerCommand::Run(no_target.clone())).await;
    assert_eq!(refusal(&reply), RefusalReason::InvalidSpec, "{reply:?}");
    assert!(
        matches!(&reply, WorkerReply::Refused { message, .. } if message.contains("target")),
        "{reply:?}"
    );

    for garbage in [
        &b"not json at all"[..],
        br#"{"command":"run"}"#,
        br#"{"command":"shell","cmd":"rm -rf /"}"#,
        br#"{"command":"run","job_id":"x","params":{"kind":"ping","flags":"-f"}}"#,
    ] {
        let reply = h.send_raw(&w.id, garbage.to_vec()).await;
        assert_eq!(
            refusal(&reply),
            RefusalReason::InvalidSpec,
            "{}: {reply:?}",
            String::from_utf8_lossy(garbage)
        );
    }

    // None of these left a trace in the results stream.
    for id in [zero_count.job_id, no_target.job_id] {
        assert_eq!(h.stored_count(&result_subject(id)).await, 0);
        assert_eq!(h.stored_count(&event_subject(id)).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_when_at_capacity_and_accepts_again_after() {
    let h = Harness::start().await;
    let mut config = test_config("127.0.0.27");
    config.max_concurrent_jobs = 1;
    let w = h.worker_with(config).await;

    let long = noop(3000);
    h.run_job(&w.id, &long).await;
    let second = noop(0);
    let reply = h.send(&w.id, &WorkerCommand::Run(second.clone())).await;
    assert_eq!(refusal(&reply), RefusalReason::AtCapacity, "{reply:?}");
    assert!(RefusalReason::AtCapacity.is_transient());

    // Once the slot is free, the same (not remembered) id is accepted.
    let outcome = h.wait_outcome(long.job_id, SECS_10).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    // The permit is released just after the result is published: retry while still busy.
    let reply = wait_for(SECS_5, "the freed slot takes the job", || async {
        let reply = h.send(&w.id, &WorkerCommand::Run(second.clone())).await;
        let busy = matches!(
            &reply,
            WorkerReply::Refused {
                reason: RefusalReason::AtCapacity,
                ..
            }
        );
        (!busy).then_some(reply)
    })
    .await;
    assert_eq!(
        reply,
        WorkerReply::Accepted {
            job_id: second.job_id,
            duplicate: false
        }
    );
    let outcome = h.wait_outcome(second.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_job_to_loopback_succeeds() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.28").await;
    let job = ping("127.0.0.1", 3, 200);

    h.run_job(&w.id, &job).await;
    let outcome = h.wait_outcome(job.job_id, SECS_10).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    let Some(ProbeResult::Ping(r)) = &outcome.result else {
        panic!("expected a ping result: {outcome:?}");
    };
    assert_eq!(r.target, "127.0.0.1");
    assert_eq!(r.transmitted, 3);
    assert_eq!(r.received, 3);
    assert_eq!(r.loss_percent, 0.0);
    assert_eq!(r.replies.len(), 3);
    assert!(r.rtt_avg_ms.is_some_and(|v| v > 0.0), "{r:?}");
    let raw = outcome.raw_output.as_deref().unwrap_or("");
    assert!(raw.contains("ping statistics"), "raw output: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_job_between_two_workers_succeeds() {
    let h = Harness::start().await;
    let client = h.worker("127.0.0.2").await;
    let server = h.worker("127.0.0.3").await;
    let (ip, port) = (server.pod_ip(), server.iperf3_port());
    eventually(
        SECS_10,
        "the target's iperf3 server listens",
        || async move { is_listening(ip, port) },
    )
    .await;

    let job = iperf3_to(&server);
    h.run_job(&client.id, &job).await;
    let outcome = h.wait_outcome(job.job_id, Duration::from_secs(15)).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    let Some(ProbeResult::Iperf3(r)) = &outcome.result else {
        panic!("expected an iperf3 result: {outcome:?}");
    };
    assert_eq!(r.protocol, TransportProtocol::Tcp);
    assert_eq!(r.streams, 1);
    assert!(!r.reverse);
    assert!(r.receiver_bits_per_second > 0.0, "{r:?}");
    assert!(r.bytes_received > 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_job() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.29").await;
    let job = noop(10_000);
    h.run_job(&w.id, &job).await;
    h.wait_started(job.job_id, SECS_5).await;
    let asked = Instant::now();

    let ack = h.send(&w.id, &cancel(job.job_id)).await;
    assert_eq!(
        ack,
        WorkerReply::CancelAck {
            job_id: job.job_id,
            found: true
        }
    );
    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Cancelled, "{outcome:?}");
    assert_eq!(outcome.reason, None);
    assert!(asked.elapsed() < SECS_5, "the noop was not interrupted");

    // Finished now: a second cancel finds nothing.
    let again = h.send(&w.id, &cancel(job.job_id)).await;
    assert_eq!(
        again,
        WorkerReply::CancelAck {
            job_id: job.job_id,
            found: false
        }
    );
    let unknown = Uuid::now_v7();
    let ack = h.send(&w.id, &cancel(unknown)).await;
    assert_eq!(
        ack,
        WorkerReply::CancelAck {
            job_id: unknown,
            found: false
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_a_running_ping() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.30").await;
    let job = ping("127.0.0.10", 100, 200);
    h.run_job(&w.id, &job).await;
    let needles = ["-I 127.0.0.30", "127.0.0.10"];
    eventually(SECS_5, "ping runs", || async {
        !find_procs("ping", &needles).is_empty()
    })
    .await;

    let ack = h.send(&w.id, &cancel(job.job_id)).await;
    assert!(
        matches!(ack, WorkerReply::CancelAck { found: true, .. }),
        "{ack:?}"
    );
    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Cancelled, "{outcome:?}");
    eventually(SECS_5, "the cancelled ping is gone", || async {
        find_procs("ping", &needles).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_is_a_hard_timeout_that_kills_the_tool() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.31").await;
    // Would take 10 s; the deadline allows 2.
    let mut job = ping("127.0.0.9", 50, 200);
    job.deadline_at_ms = in_secs(2);
    let needles = ["-I 127.0.0.31", "127.0.0.9"];

    h.run_job(&w.id, &job).await;
    eventually(SECS_5, "ping runs", || async {
        !find_procs("ping", &needles).is_empty()
    })
    .await;
    let outcome = h.wait_outcome(job.job_id, SECS_10).await;

    assert_eq!(outcome.status, OutcomeStatus::TimedOut, "{outcome:?}");
    let ran_ms = outcome.finished_at_ms - outcome.started_at_ms;
    assert!(ran_ms < 5000, "ran {ran_ms} ms past a 2 s deadline");
    eventually(SECS_5, "no ping toward 127.0.0.9 is left", || async {
        find_procs("ping", &needles).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_running_jobs_and_deregisters() {
    let h = Harness::start_bare().await;
    // A TTL far beyond the test: only an explicit delete removes the key in time.
    let kv = h.create_bucket(Duration::from_secs(60)).await;
    h.create_stream().await;
    let mut w = h.worker("127.0.0.32").await;
    h.wait_registered(&w.id, SECS_5).await;
    let mut watch = kv.watch(&w.id).await.unwrap();

    let job = noop(30_000);
    h.run_job(&w.id, &job).await;
    h.wait_started(job.job_id, SECS_5).await;

    let asked = Instant::now();
    w.trigger_shutdown();
    // The shutdown has begun once a new job is refused as `shutting_down`.
    wait_for(SECS_5, "a new job is refused as shutting_down", || async {
        match h.send(&w.id, &WorkerCommand::Run(noop(0))).await {
            WorkerReply::Refused {
                reason: RefusalReason::ShuttingDown,
                ..
            } => Some(()),
            _ => None,
        }
    })
    .await;
    // During the grace a retry of the job in hand is still acknowledged, never refused (a refusal
    // would end it as failed while its result is still coming).
    let retry = h.send(&w.id, &WorkerCommand::Run(job.clone())).await;
    assert_eq!(
        retry,
        WorkerReply::Accepted {
            job_id: job.job_id,
            duplicate: true
        }
    );
    // Grace 1 s, then the job is stopped and its outcome published.
    w.join(SECS_10).await;
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );

    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.reason, Some(FailureReason::WorkerShutdown));

    let gone = tokio::time::timeout(SECS_5, async {
        while let Some(entry) = watch.next().await {
            let entry = entry.expect("watch entry");
            if entry.operation != Operation::Put {
                return entry.operation;
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("the key was removed within 5 s (TTL is 60 s)");
    assert_eq!(gone, Operation::Delete);
    assert_eq!(kv.get(&w.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_short_job_finish_within_the_grace() {
    let h = Harness::start().await;
    let mut config = test_config("127.0.0.33");
    config.shutdown_grace = Duration::from_secs(5);
    let mut w = h.worker_with(config).await;
    let job = noop(1000);
    h.run_job(&w.id, &job).await;
    h.wait_started(job.job_id, SECS_5).await;

    w.trigger_shutdown();
    w.join(SECS_10).await;

    let outcome = h.wait_outcome(job.job_id, SECS_5).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_server_is_restarted_when_killed() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.34").await;
    let (ip, port) = (w.pod_ip(), w.iperf3_port());
    let port_arg = format!("-p {port}");
    let needles = ["-s", "-B 127.0.0.34", port_arg.as_str()];
    let old = wait_for(
        SECS_10,
        "the iperf3 server runs and listens",
        || async move {
            match find_procs("iperf3", &needles).as_slice() {
                [p] if is_listening(ip, port) => Some(p.pid),
                _ => None,
            }
        },
    )
    .await;

    kill(Pid::from_raw(old.try_into().unwrap()), Signal::SIGKILL).unwrap();
    eventually(
        SECS_10,
        "a new iperf3 server accepts connections",
        || async move {
            let procs = find_procs("iperf3", &needles);
            procs.len() == 1
                && procs[0].pid != old
                && is_listening(ip, port)
                && tokio::net::TcpStream::connect((ip, port)).await.is_ok()
        },
    )
    .await;
    assert!(!is_alive(old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_process_takes_its_tools_with_it() {
    let h = Harness::start().await;
    let worker_id = Uuid::new_v4().to_string();
    let pod_ip = "127.0.0.35";
    let port = podperf_testkit::free_port();
    let mut cmd = Command::new(podperf_testkit::workspace_bin("podperf-worker"));
    cmd.env("POD_UID", &worker_id)
        .env("POD_NAME", "killed-worker")
        .env("POD_IP", pod_ip)
        .env("NODE_NAME", "test-node")
        .env("PODPERF_NATS_URL", h.nats.url())
        .env("PODPERF_IPERF3_PORT", port.to_string())
        .env("PODPERF_HEARTBEAT_MS", "250")
        .env("RUST_LOG", "info");
    let mut worker = ChildGuard::spawn(cmd, "podperf-worker");
    let pid = worker.pid();
    h.wait_registered(&worker_id, SECS_10).await;

    let job = ping("127.0.0.1", 100, 200);
    h.run_job(&worker_id, &job).await;
    let port_arg = format!("-p {port}");
    let server_needles = ["-s", "-B 127.0.0.35", port_arg.as_str()];
    let ping_needles = ["-c 100", "-I 127.0.0.35", "127.0.0.1"];
    let (ping_pid, server_pid) = wait_for(SECS_10, "the worker's ping and iperf3 -s run", || {
        let ping = child_of(pid, "ping", &ping_needles);
        let found = ping.zip(child_of(pid, "iperf3", &server_needles));
        async move { found }
    })
    .await;

    worker.sigkill();
    assert!(
        worker.wait_timeout(SECS_5).is_some(),
        "the worker survived SIGKILL"
    );
    eventually(
        SECS_5,
        "ping and iperf3 -s die with the worker",
        || async move { !is_alive(ping_pid) && !is_alive(server_pid) },
    )
    .await;
    assert!(find_procs("ping", &ping_needles).is_empty());
    assert!(find_procs("iperf3", &server_needles).is_empty());
    let log = worker.log();
    assert!(log.contains("worker running"), "worker log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_params_reach_the_tool_as_typed_arguments() {
    let h = Harness::start().await;
    let w = h.worker("127.0.0.36").await;
    let mut job = ping("127.0.0.11", 1000, 10_000);
    if let JobParams::Ping(p) = &mut job.params {
        *p = PingParams {
            count: 1000,
            interval_ms: 10_000,
            size_bytes: 120,
        };
    }
    h.run_job(&w.id, &job).await;
    let argv = wait_for(SECS_5, "ping runs", || async {
        let procs = find_procs("ping", &["-I 127.0.0.36", "127.0.0.11"]);
        procs.into_iter().next().map(|p| p.cmdline)
    })
    .await;
    for arg in ["-n", "-4", "-c 1000", "-i 10", "-s 120", "-W 2"] {
        assert!(argv.contains(arg), "{arg} missing from {argv}");
    }
    h.send(&w.id, &cancel(job.job_id)).await;
    h.wait_outcome(job.job_id, SECS_5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_wait_for_the_stream_and_are_published_once_it_exists() {
    let h = Harness::start_bare().await;
    h.create_bucket(Duration::from_secs(2)).await;
    let w = h.worker("127.0.0.37").await;
    let job = noop(0);

    // No stream yet: the worker accepts and keeps retrying its publishes. A plain subscriber sees
    // the first attempt, made while no stream could store it.
    let mut attempts = h.client.subscribe(event_subject(job.job_id)).await.unwrap();
    h.client.flush().await.unwrap();
    h.run_job(&w.id, &job).await;
    tokio::time::timeout(SECS_10, attempts.next())
        .await
        .expect("the worker tried to publish its started event")
        .expect("the subscription is open");
    h.create_stream().await;

    let started = h.wait_started(job.job_id, SECS_10).await;
    assert_eq!(started.event, EventKind::Started);
    let outcome = h.wait_outcome(job.job_id, SECS_10).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert_eq!(h.stored_count(&result_subject(job.job_id)).await, 1);
}

/// `iperf3 -s` writes one line to stderr for every connection that is not a proper test
/// ("unable to receive parameters from client") — port scans, TCP health checks. The supervisor
/// pipes the server's stderr but reads it only after the server exits, so once the pipe buffer
/// (64 KiB, ~1,100 such lines) is full the server blocks in write(2) for ever: it no longer
/// serves tests, and as it never exits the supervisor never restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_server_keeps_serving_after_many_bare_connections() {
    let h = Harness::start().await;
    let client = h.worker("127.0.0.38").await;
    let server = h.worker("127.0.0.39").await;
    let (ip, port) = (server.pod_ip(), server.iperf3_port());
    eventually(
        SECS_10,
        "the target's iperf3 server listens",
        || async move { is_listening(ip, port) },
    )
    .await;

    // Well past one pipe buffer of error lines (~57 bytes each).
    for _ in 0..1500 {
        if let Ok(conn) = tokio::net::TcpStream::connect((ip, port)).await {
            drop(conn);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    eventually(SECS_10, "the iperf3 server listens again", || async move {
        is_listening(ip, port)
    })
    .await;

    let job = iperf3_to(&server);
    h.run_job(&client.id, &job).await;
    let outcome = h.wait_outcome(job.job_id, Duration::from_secs(15)).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
}

/// The dispatcher ends every outstanding job of a worker whose key is deleted as `worker_lost`
/// (first terminal state wins), so a worker that deregisters as soon as shutdown begins turns
/// jobs that finish within the grace period into `worker_lost`. `run`'s own docs say it lets the
/// jobs finish, *then* deregisters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deregisters_only_after_the_jobs_in_hand_published() {
    let h = Harness::start().await;
    let mut config = test_config("127.0.0.40");
    config.shutdown_grace = Duration::from_secs(5);
    let mut w = h.worker_with(config).await;
    h.wait_registered(&w.id, SECS_5).await;
    let job = noop(1000);
    h.run_job(&w.id, &job).await;
    h.wait_started(job.job_id, SECS_5).await;
    // One connection, one publisher: messages arrive in the order the worker published them.
    let mut kv_updates = h
        .client
        .subscribe(format!(
            "$KV.{}.{}",
            podperf_protocol::names::WORKERS_BUCKET,
            w.id
        ))
        .await
        .unwrap();
    let mut results = h
        .client
        .subscribe(result_subject(job.job_id))
        .await
        .unwrap();
    h.client.flush().await.unwrap();

    w.trigger_shutdown();
    w.join(SECS_10).await;

    let mut order = Vec::new();
    let collect = async {
        loop {
            tokio::select! {
                Some(m) = kv_updates.next() => {
                    let op = m.headers.as_ref().and_then(|h| h.get("KV-Operation"));
                    if op.is_some_and(|v| v.as_str() == "DEL") {
                        order.push("key deleted");
                    }
                }
                Some(_) = results.next() => order.push("result published"),
            }
            if order.len() == 2 {
                break;
            }
        }
    };
    tokio::time::timeout(SECS_5, collect)
        .await
        .expect("saw both the result and the key's deletion");
    assert_eq!(order, ["result published", "key deleted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_binary_stops_cleanly_on_sigterm() {
    let h = Harness::start().await;
    let worker_id = Uuid::new_v4().to_string();
    let port = podperf_testkit::free_port();
    let mut cmd = Command::new(podperf_testkit::workspace_bin("podperf-worker"));
    cmd.env("POD_UID", &worker_id)
        .env("POD_NAME", "sigterm-worker")
        .env("POD_IP", "127.0.0.42")
        .env("NODE_NAME", "test-node")
        .env("PODPERF_NATS_URL", h.nats.url())
        .env("PODPERF_IPERF3_PORT", port.to_string())
        .env("PODPERF_HEARTBEAT_MS", "250")
        .env("PODPERF_SHUTDOWN_GRACE_S", "1")
        .env("RUST_LOG", "info");
    let mut worker = ChildGuard::spawn(cmd, "podperf-worker");
    h.wait_registered(&worker_id, SECS_10).await;
    let port_arg = format!("-p {port}");
    let server_needles = ["-s", "-B 127.0.0.42", port_arg.as_str()];
    let server = wait_for(SECS_10, "the iperf3 server runs", || {
        let found = child_of(worker.pid(), "iperf3", &server_needles);
        async move { found }
    })
    .await;

    worker.sigterm();
    let status = worker.wait_timeout(SECS_10);
    let log = worker.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; log:\n{log}"
    );
    assert_eq!(h.worker_entry(&worker_id).await, None, "log:\n{log}");
    assert!(!is_alive(server), "iperf3 -s outlived a clean stop");
}
