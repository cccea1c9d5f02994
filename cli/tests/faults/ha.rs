//! Issue 13: two dispatcher replicas, one leader by lease. The leader SIGKILLed under a steady
//! load (failover), paused past its lease (fencing), both replicas restarted one after the other
//! (a rolling update): every submit is accepted, nothing is lost, no job ends twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};
use podperf_protocol::now_ms;
use podperf_protocol::status::Role;
use uuid::Uuid;

use crate::harness::{eventually, leader_of, long, noops, DispatcherOpts, Sys};

/// `PODPERF_LEADER_TTL_MS` the cluster runs with (testkit's default).
const LEADER_TTL: Duration = Duration::from_millis(1000);

/// Two dispatchers (the second `dispatcher-2`), two workers; returns once one leads and the
/// other stands by.
async fn ha_system() -> Sys {
    let mut sys = Sys::start(DispatcherOpts {
        api_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    })
    .await;
    sys.add_dispatcher("dispatcher-2");
    sys.add_worker("pod-a", "node-1", "127.0.0.111", 64);
    sys.add_worker("pod-b", "node-2", "127.0.0.112", 64);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;
    sys.settled().await;
    sys
}

/// Batches accepted: when (epoch ms), and their ids.
type Accepted = Arc<Mutex<Vec<(u64, Vec<Uuid>)>>>;

/// A steady load: a batch of noops (half on each worker) every 100 ms, each retried until
/// accepted; records the ids with the time each batch was accepted, and the longest wait.
struct Load {
    stop: Arc<AtomicBool>,
    accepted: Accepted,
    task: tokio::task::JoinHandle<Duration>,
}

impl Load {
    fn start(sys: &Sys, sleep_ms: u32) -> Load {
        let client = sys.client().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (s, acc) = (stop.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut longest = Duration::ZERO;
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let mut batch = noops("pod-a", 2, sleep_ms);
                batch.extend(noops("pod-b", 2, sleep_ms));
                // Retried until accepted: a request the killed replica took goes unanswered.
                let ids = loop {
                    match client.submit(batch.clone()).await {
                        Ok(ids) => break ids,
                        Err(e) if e.kind() == podperf_client::ErrorKind::Refused => {
                            panic!("a submit was refused during the fault: {e}")
                        }
                        Err(_) => continue,
                    }
                };
                longest = longest.max(last.elapsed());
                last = Instant::now();
                acc.lock().unwrap().push((now_ms(), ids));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            longest
        });
        Load {
            stop,
            accepted,
            task,
        }
    }

    fn count(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Jobs accepted after `t_ms`.
    fn since(&self, t_ms: u64) -> Vec<Uuid> {
        let acc = self.accepted.lock().unwrap();
        acc.iter()
            .filter(|(at, _)| *at >= t_ms)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }

    /// Stops; every id, and the longest time a batch waited to be accepted.
    async fn finish(self) -> (Vec<Uuid>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let longest = self.task.await.expect("the load task");
        let acc = self.accepted.lock().unwrap();
        (acc.iter().flat_map(|(_, v)| v.clone()).collect(), longest)
    }
}

/// Waits until the load has had `n` more batches accepted.
async fn more_batches(load: &Load, n: usize) {
    let want = load.count() + n;
    eventually(Duration::from_secs(20), "the load goes on", || async {
        (load.count() >= want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_the_leader_sigkilled_under_load_loses_nothing() {
    let iterations = if long() { 10 } else { 3 };
    let mut sys = ha_system().await;
    let load = Load::start(&sys, 300);
    let mut failovers = Vec::new();
    for _ in 0..iterations {
        more_batches(&load, 5).await;
        let old = leader_of(&sys.settled().await);
        let killed_ms = now_ms();
        sys.dispatcher_process(old.pid).sigkill();
        // The first job accepted after the kill that a new leader dispatched: when.
        let first_dispatch_ms = eventually(Duration::from_secs(15), "dispatching resumes", || {
            let after = load.since(killed_ms);
            let sys = &sys;
            async move {
                let recs: Vec<JobRecord> = futures::stream::iter(after)
                    .map(|id| async move { sys.get(id).await })
                    .buffer_unordered(16)
                    .filter_map(|r| async move { r })
                    .collect()
                    .await;
                recs.iter().filter_map(|r| r.dispatched_at_ms).min()
            }
        })
        .await;
        failovers.push(Duration::from_millis(
            first_dispatch_ms.saturating_sub(killed_ms),
        ));
        sys.restart_dispatcher(old.pid);
        let now = leader_of(&sys.settled().await);
        assert_ne!(now.dispatcher_id, old.dispatcher_id);
        assert!(now.epoch > old.epoch, "{now:?} after {old:?}");
    }
    let (ids, longest_wait) = load.finish().await;
    sys.wait_terminal(&ids, Duration::from_secs(60)).await;
    let audit = sys.audit(&ids, &ids).await;
    failovers.sort();
    println!(
        "FIGURES failover: {iterations} leader SIGKILLs under ~40 jobs/s, leader TTL \
         {LEADER_TTL:?}: SIGKILL→first new job dispatched median {:?} max {:?} (all {failovers:?}); \
         longest a batch waited to be accepted {longest_wait:?}; {} jobs",
        failovers[failovers.len() / 2],
        failovers.last().unwrap(),
        ids.len()
    );
    // The target is TTL + 1 s (see RELIABILITY.md for the figures); the test only
    // bounds it loosely (`eventually` above), as the project's tests assert no timings.
    audit.check("failover", &sys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_a_paused_leader_resumed_changes_nothing() {
    let mut sys = ha_system().await;
    // Every terminal state stored is announced once: a second notice means a second change.
    let notices: Arc<Mutex<HashMap<Uuid, usize>>> = Default::default();
    let mut sub = sys.nats_client().subscribe("podperf.done.>").await.unwrap();
    sys.nats_client().flush().await.unwrap();
    let n = notices.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Ok(r) = serde_json::from_slice::<JobRecord>(&msg.payload) {
                *n.lock().unwrap().entry(r.job_id).or_default() += 1;
            }
        }
    });
    let old = leader_of(&sys.settled().await);

    // In flight across the pause: noops that finish during it, and noops whose deadline passes
    // during it (the old leader holds a verdict for each when it wakes up).
    let mut batch = noops("pod-a", 10, 2_000);
    batch.extend(noops("pod-b", 10, 2_000));
    let finishing = sys.submit_ok(batch).await;
    let late = |src: &str| JobSpec {
        timeout_s: Some(1),
        ..JobSpec {
            family: None,
            source: src.into(),
            target: None,
            params: JobParams::Noop(NoopParams { sleep_ms: 8_000 }),
            timeout_s: None,
        }
    };
    let overdue = sys.submit_ok(vec![late("pod-a"), late("pod-b")]).await;
    eventually(Duration::from_secs(10), "the jobs run", || async {
        let states = sys.states(&finishing).await;
        states.values().all(|s| s == "running").then_some(())
    })
    .await;

    let paused = Instant::now();
    sys.dispatcher_process(old.pid).sigstop();
    let new = eventually(
        Duration::from_secs(15),
        "the standby takes over",
        || async {
            let s = sys.client().status().await.ok()?;
            let l = s.dispatchers.into_iter().find(|d| d.role == Role::Leader)?;
            (l.dispatcher_id != old.dispatcher_id).then_some(l)
        },
    )
    .await;
    let took_over = paused.elapsed();
    let during = sys.submit_ok(noops("pod-b", 10, 100)).await;
    let mut all: Vec<Uuid> = finishing
        .iter()
        .chain(&overdue)
        .chain(&during)
        .copied()
        .collect();
    sys.wait_terminal(&all, Duration::from_secs(30)).await;
    // Past the pause the issue asks for (TTL + 2 s) before the old leader runs again.
    let pause = LEADER_TTL + Duration::from_secs(2);
    if let Some(rest) = pause.checked_sub(paused.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let paused_for = paused.elapsed();
    sys.dispatcher_process(old.pid).sigcont();
    eventually(
        Duration::from_secs(15),
        "the old leader stands by",
        || async {
            let s = sys.client().status().await.ok()?;
            s.dispatchers
                .iter()
                .any(|d| d.dispatcher_id == old.dispatcher_id && d.role == Role::Standby)
                .then_some(())
        },
    )
    .await;
    let log = sys.dispatcher_process(old.pid).log();
    assert!(log.contains("lost the leader lease"), "{log}");

    let after = sys.submit_ok(noops("pod-a", 10, 100)).await;
    sys.wait_terminal(&after, Duration::from_secs(20)).await;
    all.extend(&after);
    let audit = sys
        .audit(&all, &[finishing.clone(), during, after].concat())
        .await;
    let twice: Vec<(Uuid, usize)> = {
        let n = notices.lock().unwrap();
        all.iter()
            .map(|id| (*id, n.get(id).copied().unwrap_or(0)))
            .filter(|(_, c)| *c != 1)
            .collect()
    };
    println!(
        "FIGURES fencing: leader paused {paused_for:?} (TTL {LEADER_TTL:?}); standby led after \
         {took_over:?} with epoch {:?} (old {:?}); {} jobs, states {:?}",
        new.epoch,
        old.epoch,
        all.len(),
        audit.by_state
    );
    audit.check("fencing", &sys);
    assert!(
        twice.is_empty(),
        "jobs not announced exactly once: {twice:?}"
    );
    assert!(new.epoch > old.epoch);
    // An overdue job times out; on a loaded machine its deadline may pass before the worker takes
    // it, and then it fails as not delivered in time (`undeliverable`, or `refused` by the worker
    // for its passed deadline) — one verdict either way, never a success.
    for id in &overdue {
        let r = sys.get(*id).await.unwrap();
        let late_delivery = r.state.as_str() == "failed"
            && r.message.as_deref().is_some_and(|m| m.contains("deadline"));
        assert!(
            r.state.as_str() == "timed_out" || late_delivery,
            "overdue job ended {}: {r:?}",
            r.state.as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_both_replicas_loses_nothing() {
    let mut sys = ha_system().await;
    let load = Load::start(&sys, 200);
    let mut restarts = Vec::new();
    for _ in 0..2 {
        more_batches(&load, 5).await;
        // The leader first, then the other one (now leading).
        let s = sys.settled().await;
        let pid = leader_of(&s).pid;
        let t0 = Instant::now();
        let proc = sys.dispatcher_process(pid);
        proc.sigterm();
        let status = proc.wait_timeout(Duration::from_secs(20));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", proc.log());
        sys.restart_dispatcher(pid);
        sys.settled().await;
        restarts.push(t0.elapsed());
    }
    more_batches(&load, 5).await;
    let (ids, longest_wait) = load.finish().await;
    sys.wait_terminal(&ids, Duration::from_secs(60)).await;
    let audit = sys.audit(&ids, &ids).await;
    println!(
        "FIGURES rolling restart: SIGTERM→replaced and settled {restarts:?}; longest a batch \
         waited to be accepted {longest_wait:?}; {} jobs",
        ids.len()
    );
    audit.check("rolling restart", &sys);
}
