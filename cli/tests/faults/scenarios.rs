//! Scenarios 1–4 of issue 5: a worker, the dispatcher, nats-server and Redis each fail while a
//! batch is in flight. Every test ends with [`Sys::audit`] and prints a `FIGURES` line.

use std::time::{Duration, Instant};

use serde_json::json;

use podperf_protocol::api::ErrorCode;
use podperf_protocol::outcome::JobState;

use crate::harness::{
    blocking, eventually, long, noops, ping, process_running, spec, DispatcherOpts, Sys, TTL_S,
};

/// Scenario 1: the source worker is SIGKILLed mid-iperf3 (and, once restarted, mid-ping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_worker_sigkilled_mid_job_ends_worker_lost_and_a_restart_takes_new_jobs() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.101", 64);
    sys.add_worker("pod-b", "node-2", "127.0.0.102", 64);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;

    // On pod-a: a 30 s iperf3 and 20 long noops; on pod-b: 20 noops that must be unaffected.
    let iperf = spec(json!({"source": "pod-a", "target": {"worker": "pod-b"},
                            "params": {"kind": "iperf3", "duration_s": 30}}));
    let lost = sys.submit_ok(noops("pod-a", 20, 20_000)).await;
    let iperf_id = sys.submit_ok(vec![iperf]).await[0];
    let fine = sys.submit_ok(noops("pod-b", 20, 3_000)).await;
    eventually(Duration::from_secs(10), "the iperf3 job runs", || async {
        let r = sys.get(iperf_id).await?;
        (r.state == JobState::Running).then_some(())
    })
    .await;
    let client = ["iperf3", "-c", "127.0.0.102"];
    let tools = sys.worker_tools_running();
    assert!(
        tools
            .iter()
            .any(|p| client.iter().all(|n| p.cmdline.contains(n))),
        "the iperf3 client runs under its worker: {tools:?}"
    );

    let killed = Instant::now();
    sys.workers[0].proc.sigkill();
    let gone_after = eventually(
        Duration::from_secs(5),
        "the iperf3 client is gone",
        || async { (!process_running(&client)).then(|| killed.elapsed()) },
    )
    .await;
    let to_lost = gone_after
        + wait_state(
            &sys,
            iperf_id,
            JobState::WorkerLost,
            Duration::from_secs(TTL_S + 8),
        )
        .await;
    let rec = sys.get(iperf_id).await.unwrap();
    assert!(
        rec.message.as_deref().unwrap_or("").contains("liveness"),
        "{rec:?}"
    );
    sys.wait_terminal(&lost, Duration::from_secs(10)).await;

    // Restarted with the same pod UID: it re-registers and takes new jobs.
    let restarted = Instant::now();
    sys.start_worker(0);
    let rejoin = sys
        .wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;
    let again = sys.submit_ok(noops("pod-a", 5, 10)).await;
    sys.wait_terminal(&again, Duration::from_secs(15)).await;
    let first_job_after = restarted.elapsed();

    // Same again mid-ping: the ping dies with its worker.
    let ping_id = sys.submit_ok(vec![ping("pod-a", "pod-b", 100)]).await[0];
    wait_state(&sys, ping_id, JobState::Running, Duration::from_secs(10)).await;
    let ping_proc = ["ping", "-c", "100", "127.0.0.102"];
    assert!(process_running(&ping_proc), "the ping runs");
    let killed2 = Instant::now();
    sys.workers[0].proc.sigkill();
    let ping_gone = eventually(Duration::from_secs(5), "the ping is gone", || async {
        (!process_running(&ping_proc)).then(|| killed2.elapsed())
    })
    .await;
    let to_lost2 = ping_gone
        + wait_state(
            &sys,
            ping_id,
            JobState::WorkerLost,
            Duration::from_secs(TTL_S + 8),
        )
        .await;

    sys.wait_terminal(&fine, Duration::from_secs(15)).await;
    let all: Vec<_> = lost
        .iter()
        .chain(&fine)
        .chain(&again)
        .copied()
        .chain([iperf_id, ping_id])
        .collect();
    let must: Vec<_> = fine.iter().chain(&again).copied().collect();
    let audit = sys.audit(&all, &must).await;
    assert_eq!(audit.by_state.get("worker_lost"), Some(&22), "{audit:?}");
    println!(
        "FIGURES s1: SIGKILL→worker_lost {to_lost:?} (iperf3), {to_lost2:?} (ping) with TTL \
         {TTL_S} s; tool gone {gone_after:?} (iperf3), {ping_gone:?} (ping) after SIGKILL; restart→listed {rejoin:?}, \
         restart→first job done {first_job_after:?}"
    );
    audit.check("s1 worker SIGKILL", &sys);
    assert!(to_lost < Duration::from_secs(TTL_S + 3), "{to_lost:?}");
}

/// Waits until job `id` is in `state`; returns the time it took.
async fn wait_state(sys: &Sys, id: uuid::Uuid, state: JobState, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let what = format!("job {id} is {state}");
    eventually(timeout, &what, || async {
        let r = sys.get(id).await?;
        (r.state == state).then_some(())
    })
    .await;
    t0.elapsed()
}

/// The batch scenarios 2–4 share: two workers, `n` noops split across them and 10 real pings.
async fn batch_system(ips: [&str; 2], max_jobs: u32) -> Sys {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", ips[0], max_jobs);
    sys.add_worker("pod-b", "node-2", ips[1], max_jobs);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;
    sys
}

async fn submit_batch(sys: &Sys, n: usize, sleep_ms: u32) -> Vec<uuid::Uuid> {
    let mut jobs = noops("pod-a", n / 2, sleep_ms);
    jobs.extend(noops("pod-b", n - n / 2, sleep_ms));
    for _ in 0..5 {
        jobs.push(ping("pod-a", "pod-b", 10));
        jobs.push(ping("pod-b", "pod-a", 10));
    }
    let mut ids = Vec::new();
    for chunk in jobs.chunks(10_000) {
        ids.extend(sys.submit_ok(chunk.to_vec()).await);
    }
    ids
}

/// How many of `ids` are not terminal now (jobs in flight).
async fn in_flight(sys: &Sys, ids: &[uuid::Uuid]) -> usize {
    sys.states(ids)
        .await
        .values()
        .filter(|s| !crate::harness::TERMINAL.contains(&s.as_str()))
        .count()
}

/// Scenario 2: the dispatcher is SIGKILLed with a batch in flight, and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_dispatcher_sigkilled_mid_batch_loses_and_duplicates_nothing() {
    let (n, down) = if long() {
        (5_000, Duration::from_secs(10))
    } else {
        (1_000, Duration::from_secs(2))
    };
    let mut sys = batch_system(["127.0.0.103", "127.0.0.104"], 200).await;
    let t0 = Instant::now();
    let ids = submit_batch(&sys, n, 1_000).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let flying = in_flight(&sys, &ids).await;

    sys.dispatcher.as_mut().unwrap().sigkill();
    let killed = Instant::now();
    tokio::time::sleep(down).await; // results keep landing in the stream meanwhile
    let api_up = sys.start_dispatcher().await;
    let restarted = Instant::now();
    sys.wait_terminal(&ids, Duration::from_secs(90)).await;
    let (done_after_restart, done_after_kill) = (restarted.elapsed(), killed.elapsed());

    let audit = sys.audit(&ids, &ids).await;
    println!(
        "FIGURES s2: {} jobs ({n} noop + 10 ping), {flying} in flight at SIGKILL, down {down:?}; \
         restart→API answers {api_up:?}; restart→all terminal {done_after_restart:?}; \
         SIGKILL→all terminal {done_after_kill:?}; batch total {:?}",
        ids.len(),
        t0.elapsed()
    );
    audit.check("s2 dispatcher SIGKILL", &sys);
    assert!(flying > 0, "the fault hit no job in flight");
}

/// Scenario 3: nats-server stopped (JetStream file store kept) for longer than the liveness TTL
/// mid-batch, then started again on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_nats_server_restart_mid_batch_everything_reconnects_and_the_batch_completes() {
    let (n, down) = if long() {
        (5_000, Duration::from_secs(10))
    } else {
        (1_000, Duration::from_secs(1))
    };
    nats_outage(["127.0.0.105", "127.0.0.106"], n, down).await;
}

/// Scenario 3, with the server down longer than the workers' liveness TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3b_nats_server_down_longer_than_the_ttl_mid_batch() {
    nats_outage(
        ["127.0.0.107", "127.0.0.108"],
        1_000,
        Duration::from_secs(TTL_S + 3),
    )
    .await;
}

async fn nats_outage(ips: [&str; 2], n: usize, down: Duration) {
    let mut sys = batch_system(ips, 200).await;
    let ids = submit_batch(&sys, n, 1_000).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let flying = in_flight(&sys, &ids).await;

    blocking(|| sys.nats[0].stop());
    tokio::time::sleep(down).await;
    blocking(|| sys.nats[0].restart());
    let restarted = Instant::now();
    let listed = sys
        .wait_workers(&["pod-a", "pod-b"], Duration::from_secs(30))
        .await;
    // The workers' liveness keys may expire across the restart (their age counts while the server
    // is down) and come back with the next heartbeat: until then a submit is refused
    // `worker_offline`, which is the right answer, so the first new job is the first one accepted.
    let probe = eventually(
        Duration::from_secs(30),
        "a new job is accepted after the restart",
        || async {
            match sys.submit(noops("pod-a", 1, 0)).await {
                Err(e) if e.code() == Some(ErrorCode::WorkerOffline) => None,
                other => Some(other),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("submit refused: {e}\n{}", sys.logs()));
    sys.wait_terminal(&probe, Duration::from_secs(30)).await;
    let first_new_job = restarted.elapsed();
    sys.wait_terminal(&ids, Duration::from_secs(90)).await;
    let batch_done = restarted.elapsed();

    let all: Vec<_> = ids.iter().chain(&probe).copied().collect();
    let audit = sys.audit(&all, &all).await;
    println!(
        "FIGURES s3 (down {down:?}): {} jobs, {flying} in flight at stop; restart→workers listed \
         {listed:?}; restart→new job done {first_new_job:?}; restart→batch done {batch_done:?}",
        all.len()
    );
    audit.check(&format!("s3 nats-server down {down:?}"), &sys);
}

/// Scenario 4: Redis stopped mid-batch (5 s; 30 s with PODPERF_LONG_TESTS=1), then started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_redis_outage_mid_batch_loses_nothing_and_the_store_catches_up() {
    let (n, down) = if long() {
        (1_000, Duration::from_secs(30))
    } else {
        (1_000, Duration::from_secs(5))
    };
    let mut sys = batch_system(["127.0.0.109", "127.0.0.110"], 200).await;
    let ids = submit_batch(&sys, n, 1_000).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let flying = in_flight(&sys, &ids).await;

    blocking(|| sys.redis.stop());
    let stopped = Instant::now();
    // While Redis is down the API says so, typed.
    let err = sys.client().get(ids[0]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");
    let err = sys.submit(noops("pod-a", 1, 0)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");
    tokio::time::sleep(down.saturating_sub(stopped.elapsed())).await;
    blocking(|| sys.redis.restart());
    let restarted = Instant::now();
    sys.wait_terminal(&ids, Duration::from_secs(120)).await;
    let catch_up = restarted.elapsed();

    let audit = sys.audit(&ids, &ids).await;
    println!(
        "FIGURES s4: {} jobs, {flying} in flight when Redis stopped, down {down:?}; \
         restart→every job terminal in Redis {catch_up:?}",
        ids.len()
    );
    audit.check("s4 Redis outage", &sys);
}
