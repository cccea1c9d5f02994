//! Issue 13's chaos soak: a 3-node JetStream cluster (R3), two dispatcher replicas, four workers,
//! a steady mixed load (noops and pings, a matrix now and then), and faults injected at random,
//! one at a time: the leader SIGKILLed, the standby SIGKILLed, a worker SIGKILLed (and restarted),
//! a NATS node restarted, Redis restarted, the leader paused past its lease. At the end, the audit
//! of every fault test: each job in exactly one terminal state, none lost, duplicated or
//! misreported.
//!
//! Short by default (≈ 25 s of faults); `PODPERF_LONG_TESTS=1` runs it for 10 minutes
//! (`PODPERF_SOAK_SECS` sets the length). The seed of the random choices is printed;
//! `PODPERF_SOAK_SEED` replays a run's faults and load (their timing still depends on the
//! machine).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_client::{Client, ErrorKind};
use podperf_protocol::api::{ErrorCode, JobRecord};
use podperf_protocol::job::JobSpec;
use podperf_protocol::now_ms;
use podperf_protocol::run::MatrixRequest;
use podperf_protocol::status::{DispatcherInfo, Role};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{
    blocking, eventually, leader_of, long, noop, ping, DispatcherOpts, NatsNodes, Sys,
};

/// `PODPERF_LEADER_TTL_MS` the dispatchers run with (testkit's default).
const LEADER_TTL: Duration = Duration::from_millis(1000);
/// The workers: `(pod, node, ip)`.
const WORKERS: [(&str, &str, &str); 4] = [
    ("pod-a", "node-1", "127.0.0.141"),
    ("pod-b", "node-2", "127.0.0.142"),
    ("pod-c", "node-1", "127.0.0.143"),
    ("pod-d", "node-2", "127.0.0.144"),
];
/// The workers a fault may kill; jobs only on the others must all succeed.
const VICTIMS: [&str; 2] = ["pod-c", "pod-d"];
/// A submit refused (or unanswered) this long is given up, and the test fails.
const GIVE_UP: Duration = Duration::from_secs(120);

/// How long, how hard.
#[derive(Debug, Clone)]
struct Plan {
    /// Length of the load (faults are injected within it).
    secs: u64,
    /// Seconds from one fault's injection to the next one's (at random in the range; later if
    /// the system has not recovered by then).
    spacing_s: (u64, u64),
    /// Load jobs per second (a multiple of 10: a batch every 100 ms).
    jobs_per_s: usize,
    matrix_every: Duration,
}

impl Plan {
    fn from_env() -> Plan {
        let mut plan = if long() {
            Plan {
                secs: 600,
                spacing_s: (20, 40),
                jobs_per_s: 50,
                matrix_every: Duration::from_secs(60),
            }
        } else {
            Plan {
                secs: 25,
                spacing_s: (4, 7),
                jobs_per_s: 10,
                matrix_every: Duration::from_secs(15),
            }
        };
        if let Ok(v) = std::env::var("PODPERF_SOAK_SECS") {
            plan.secs = v
                .parse()
                .ok()
                .filter(|s| (10..=86_400).contains(s))
                .unwrap_or_else(|| panic!("PODPERF_SOAK_SECS={v}: seconds, 10..=86400"));
        }
        plan
    }
}

/// `PODPERF_SOAK_SEED`, or a new one.
fn seed() -> u64 {
    match std::env::var("PODPERF_SOAK_SEED") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PODPERF_SOAK_SEED={v}: an unsigned 64-bit integer")),
        Err(_) => rand::random(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    LeaderKill,
    StandbyKill,
    WorkerKill,
    NatsRestart,
    RedisRestart,
    LeaderPause,
}

const ALL_FAULTS: [FaultKind; 6] = [
    FaultKind::LeaderKill,
    FaultKind::StandbyKill,
    FaultKind::WorkerKill,
    FaultKind::NatsRestart,
    FaultKind::RedisRestart,
    FaultKind::LeaderPause,
];

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::LeaderKill => "leader SIGKILL",
            FaultKind::StandbyKill => "standby SIGKILL",
            FaultKind::WorkerKill => "worker SIGKILL",
            FaultKind::NatsRestart => "NATS node restart",
            FaultKind::RedisRestart => "Redis restart",
            FaultKind::LeaderPause => "leader SIGSTOP",
        }
    }
}

/// One fault: what, when it was injected, when the system had recovered (epoch ms).
#[derive(Debug)]
struct Fault {
    kind: FaultKind,
    detail: String,
    injected_ms: u64,
    recovered_ms: u64,
}

/// One accepted submit of the load.
struct Batch {
    /// When the first attempt was made (epoch ms).
    first_try_ms: u64,
    ids: Vec<Uuid>,
    /// Only on workers no fault kills: these jobs must succeed.
    stable: bool,
    matrix: bool,
}

/// What the load's submits met besides acceptance.
#[derive(Debug, Default)]
struct Tally {
    /// Refusals by error code (retried).
    refused: BTreeMap<&'static str, usize>,
    /// Each refusal: when (epoch ms), its code.
    refusals: Vec<(u64, &'static str)>,
    /// Attempts without an answer (retried).
    unanswered: usize,
    /// Submits given up after [`GIVE_UP`].
    abandoned: Vec<String>,
}

type Shared<T> = Arc<Mutex<T>>;

enum Work {
    Jobs(Vec<JobSpec>),
    Matrix(MatrixRequest),
}

/// Submits until accepted (or [`GIVE_UP`]), counting refusals and unanswered attempts, as a
/// client that must not lose its jobs does: every attempt under one submit id, so an attempt
/// stored but unanswered (its replica paused, say) is not stored again by the next one.
async fn submit_until_accepted(
    client: Client,
    work: Work,
    stable: bool,
    batches: Shared<Vec<Batch>>,
    tally: Shared<Tally>,
) {
    let first_try_ms = now_ms();
    let t0 = Instant::now();
    let submit_id = Uuid::new_v4();
    let work = match work {
        Work::Matrix(req) => Work::Matrix(MatrixRequest {
            submit_id: Some(submit_id),
            ..req
        }),
        jobs => jobs,
    };
    loop {
        let answer = match &work {
            Work::Jobs(jobs) => client.submit_with_id(submit_id, jobs.clone()).await,
            Work::Matrix(req) => client.run_start(req).await.map(|r| r.job_ids),
        };
        match answer {
            Ok(ids) => {
                batches.lock().unwrap().push(Batch {
                    first_try_ms,
                    ids,
                    stable,
                    matrix: matches!(work, Work::Matrix(_)),
                });
                return;
            }
            Err(e) if e.kind() == ErrorKind::Refused => {
                let code = e.code();
                // Every worker of the soak exists throughout: `unknown_worker` (or
                // `worker_offline` while no worker is down) is the dispatcher's view lagging,
                // retried like the others and reported by the fault it happened in.
                let transient = matches!(
                    code,
                    Some(
                        ErrorCode::WorkerOffline
                            | ErrorCode::UnknownWorker
                            | ErrorCode::Busy
                            | ErrorCode::StoreUnavailable
                            | ErrorCode::Internal
                    )
                );
                assert!(transient, "a soak submit was refused for good: {e}");
                let code = code.map_or("?", ErrorCode::as_str);
                let mut t = tally.lock().unwrap();
                *t.refused.entry(code).or_default() += 1;
                t.refusals.push((now_ms(), code));
            }
            Err(_) => tally.lock().unwrap().unanswered += 1,
        }
        if t0.elapsed() > GIVE_UP {
            let what = match &work {
                Work::Jobs(jobs) => format!("{} jobs from {}", jobs.len(), jobs[0].source),
                Work::Matrix(_) => "a matrix".into(),
            };
            tally.lock().unwrap().abandoned.push(what);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The steady load: every 100 ms `jobs_per_s / 10` jobs (4 in 5 a noop of 100–500 ms, 1 in 5 a
/// 3-echo ping toward another worker) from random workers, one submit per source and target,
/// each retried until accepted; a matrix every `matrix_every`.
struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    batches: Shared<Vec<Batch>>,
    tally: Shared<Tally>,
}

impl Load {
    fn start(client: Client, plan: &Plan, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let batches: Shared<Vec<Batch>> = Default::default();
        let tally: Shared<Tally> = Default::default();
        let (s, b, t) = (stop.clone(), batches.clone(), tally.clone());
        let per_tick = (plan.jobs_per_s / 10).max(1);
        let matrix_every = plan.matrix_every;
        let task = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
            let pods: Vec<&str> = WORKERS.iter().map(|w| w.0).collect();
            let mut submits = JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_matrix = Instant::now() + Duration::from_secs(2);
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut groups: BTreeMap<(&str, Option<&str>), Vec<JobSpec>> = BTreeMap::new();
                for _ in 0..per_tick {
                    let src = *pods.choose(&mut rng).unwrap();
                    if rng.gen_ratio(1, 5) {
                        let others: Vec<&str> =
                            pods.iter().copied().filter(|p| *p != src).collect();
                        let dst = *others.choose(&mut rng).unwrap();
                        groups
                            .entry((src, Some(dst)))
                            .or_default()
                            .push(ping(src, dst, 3));
                    } else {
                        let sleep_ms = rng.gen_range(100..=500);
                        groups
                            .entry((src, None))
                            .or_default()
                            .push(noop(src, sleep_ms));
                    }
                }
                for ((src, dst), jobs) in groups {
                    let stable =
                        !VICTIMS.contains(&src) && dst.is_none_or(|d| !VICTIMS.contains(&d));
                    submits.spawn(submit_until_accepted(
                        client.clone(),
                        Work::Jobs(jobs),
                        stable,
                        b.clone(),
                        t.clone(),
                    ));
                }
                if Instant::now() >= next_matrix {
                    next_matrix += matrix_every;
                    let req = MatrixRequest {
                        samples: 1,
                        ping_count: 3,
                        iperf3_duration_s: 1,
                        latency_duration_s: 1,
                        ..MatrixRequest::default()
                    };
                    submits.spawn(submit_until_accepted(
                        client.clone(),
                        Work::Matrix(req),
                        false,
                        b.clone(),
                        t.clone(),
                    ));
                }
                while let Some(done) = submits.try_join_next() {
                    done.expect("a submit of the load");
                }
            }
            while let Some(done) = submits.join_next().await {
                done.expect("a submit of the load");
            }
        });
        Load {
            stop,
            task,
            batches,
            tally,
        }
    }

    async fn finish(self) -> (Vec<Batch>, Tally) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the load task");
        let batches = std::mem::take(&mut *self.batches.lock().unwrap());
        let tally = std::mem::take(&mut *self.tally.lock().unwrap());
        (batches, tally)
    }
}

/// Waits until a replica other than `old` leads.
async fn new_leader(sys: &Sys, old: &DispatcherInfo) -> DispatcherInfo {
    eventually(Duration::from_secs(30), "another replica leads", || async {
        let s = sys.client().status().await.ok()?;
        let l = s.dispatchers.into_iter().find(|d| d.role == Role::Leader)?;
        (l.dispatcher_id != old.dispatcher_id).then_some(l)
    })
    .await
}

/// The `started_at_ms` of the worker listed for `pod` (0 when not listed).
async fn worker_started(sys: &Sys, pod: &str) -> u64 {
    let workers = sys.client().workers().await.unwrap_or_default();
    workers
        .iter()
        .find(|w| w.info.pod_name == pod)
        .map_or(0, |w| w.info.started_at_ms)
}

/// How many times a dispatcher's log declares a never-killed worker gone (its liveness key
/// deleted or expired, or not seen again within the TTL after a re-read of the bucket).
fn stable_gone(sys: &Sys, log: &str) -> usize {
    let ids: Vec<String> = WORKERS
        .iter()
        .filter(|w| !VICTIMS.contains(&w.0))
        .map(|w| sys.worker_id(w.0))
        .collect();
    log.lines()
        .filter(|l| l.contains("worker gone") && ids.iter().any(|id| l.contains(id.as_str())))
        .count()
}

/// Injects one fault and waits until the system has recovered from it; `gone` counts the
/// [`stable_gone`] lines of the dispatcher processes it replaces.
async fn inject(
    sys: &mut Sys,
    nodes: &NatsNodes,
    kind: FaultKind,
    rng: &mut StdRng,
    gone: &mut usize,
) -> Fault {
    let injected_ms;
    let detail = match kind {
        FaultKind::LeaderKill => {
            let old = leader_of(&sys.settled().await);
            injected_ms = now_ms();
            sys.dispatcher_process(old.pid).sigkill();
            let new = new_leader(sys, &old).await;
            let took = now_ms() - injected_ms;
            let log = sys.dispatcher_process(old.pid).log();
            *gone += stable_gone(sys, &log);
            sys.restart_dispatcher(old.pid);
            sys.settled().await;
            format!("{} killed, {} led {took} ms after", old.host, new.host)
        }
        FaultKind::StandbyKill => {
            let s = sys.settled().await;
            let standby = s
                .dispatchers
                .iter()
                .find(|d| d.role == Role::Standby)
                .cloned()
                .expect("a standby");
            injected_ms = now_ms();
            sys.dispatcher_process(standby.pid).sigkill();
            let log = sys.dispatcher_process(standby.pid).log();
            *gone += stable_gone(sys, &log);
            sys.restart_dispatcher(standby.pid);
            sys.settled().await;
            format!("{} killed", standby.host)
        }
        FaultKind::WorkerKill => {
            let pod = *VICTIMS.choose(rng).unwrap();
            let i = sys.workers.iter().position(|w| w.pod() == pod).unwrap();
            let before = worker_started(sys, pod).await;
            injected_ms = now_ms();
            sys.workers[i].proc.sigkill();
            sys.start_worker(i);
            let sys: &Sys = sys;
            eventually(
                Duration::from_secs(30),
                "the restarted worker is listed",
                || async { (worker_started(sys, pod).await > before).then_some(()) },
            )
            .await;
            format!("{pod} killed and restarted")
        }
        FaultKind::NatsRestart => {
            let i = rng.gen_range(0..3);
            let crash = rng.gen_bool(0.5);
            injected_ms = now_ms();
            blocking(|| {
                if crash {
                    sys.nats[i].kill();
                }
                sys.nats[i].restart();
            });
            let restarted = Instant::now();
            let (routes, current) = nodes.rejoined(sys, i, restarted).await;
            let how = if crash { "SIGKILL" } else { "SIGTERM" };
            format!(
                "{} {how} + restart: routes back {} ms, stream replica current {} ms",
                nodes.names[i],
                routes.as_millis(),
                current.as_millis()
            )
        }
        FaultKind::RedisRestart => {
            injected_ms = now_ms();
            blocking(|| {
                sys.redis.kill();
                sys.redis.restart();
            });
            let sys: &Sys = sys;
            eventually(
                Duration::from_secs(30),
                "the dispatchers reach Redis again",
                || async {
                    let s = sys.client().status().await.ok()?;
                    let leads = s.dispatchers.iter().any(|d| d.role == Role::Leader);
                    (s.redis.reachable && leads).then_some(())
                },
            )
            .await;
            "SIGKILL + restart (append-only file)".into()
        }
        FaultKind::LeaderPause => {
            let old = leader_of(&sys.settled().await);
            injected_ms = now_ms();
            sys.dispatcher_process(old.pid).sigstop();
            // The fault itself: paused for the lease's TTL + 2 s.
            tokio::time::sleep(LEADER_TTL + Duration::from_secs(2)).await;
            sys.dispatcher_process(old.pid).sigcont();
            let now = leader_of(&sys.settled().await);
            format!("{} paused 3 s; {} leads after", old.host, now.host)
        }
    };
    Fault {
        kind,
        detail,
        injected_ms,
        recovered_ms: now_ms(),
    }
}

/// Every job id Redis knows (`podperf:jobs`): also the jobs of a submit whose answer was lost.
async fn stored_ids(sys: &Sys) -> Vec<Uuid> {
    let client = redis::Client::open(sys.redis.url()).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg("podperf:jobs")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE podperf:jobs");
    ids.iter().map(|s| s.parse().expect("a job id")).collect()
}

/// Submit (first try) → terminal of the load's jobs of one kind, in ms: the worst of the jobs a
/// fault touched (outstanding between its injection and the recovery), by fault, and the others.
struct Latency {
    worst_by_fault: BTreeMap<&'static str, u64>,
    quiet: Vec<u64>,
}

impl Latency {
    fn of(jobs: &[&(u64, JobRecord)], faults: &[Fault]) -> Latency {
        let mut l = Latency {
            worst_by_fault: BTreeMap::new(),
            quiet: Vec::new(),
        };
        for (first, r) in jobs {
            let Some(finished) = r.finished_at_ms else {
                continue;
            };
            let latency = finished.saturating_sub(*first);
            let mut touched = false;
            for f in faults {
                if *first <= f.recovered_ms && finished >= f.injected_ms {
                    touched = true;
                    let w = l.worst_by_fault.entry(f.kind.name()).or_default();
                    *w = (*w).max(latency);
                }
            }
            if !touched {
                l.quiet.push(latency);
            }
        }
        l
    }
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_faults_under_mixed_load_lose_nothing() {
    let plan = Plan::from_env();
    let seed = seed();
    println!("SOAK seed {seed} (replay with PODPERF_SOAK_SEED={seed}); {plan:?}");
    let mut rng = StdRng::seed_from_u64(seed);

    let (servers, nodes) = NatsNodes::start().await;
    let mut sys = Sys::with_servers(
        servers,
        DispatcherOpts {
            replicas: 3,
            api_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        },
    )
    .await;
    sys.add_dispatcher("dispatcher-2");
    for (pod, node, ip) in WORKERS {
        sys.add_worker(pod, node, ip, 64);
    }
    let pods: Vec<&str> = WORKERS.iter().map(|w| w.0).collect();
    sys.wait_workers(&pods, Duration::from_secs(30)).await;
    let first_epoch = leader_of(&sys.settled().await).epoch.unwrap_or(0);

    let t0 = Instant::now();
    let t0_ms = now_ms();
    let end = t0 + Duration::from_secs(plan.secs);
    let spacing =
        |rng: &mut StdRng| Duration::from_secs(rng.gen_range(plan.spacing_s.0..=plan.spacing_s.1));
    let load = Load::start(sys.client().clone(), &plan, seed);
    let mut faults: Vec<Fault> = Vec::new();
    // Random, each kind once per round of six.
    let mut deck: Vec<FaultKind> = Vec::new();
    let mut gone = 0;
    let mut next = t0 + spacing(&mut rng);
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        if deck.is_empty() {
            deck = ALL_FAULTS.to_vec();
            deck.shuffle(&mut rng);
        }
        let kind = deck.pop().unwrap();
        let at = Instant::now();
        let fault = inject(&mut sys, &nodes, kind, &mut rng, &mut gone).await;
        println!(
            "SOAK {:>6} ms: {} ({}), recovered in {} ms",
            fault.injected_ms - t0_ms,
            kind.name(),
            fault.detail,
            fault.recovered_ms - fault.injected_ms
        );
        faults.push(fault);
        next = (at + spacing(&mut rng)).max(Instant::now());
    }
    tokio::time::sleep_until(end.into()).await;
    let (batches, tally) = load.finish().await;
    let soaked = t0.elapsed();

    let tracked: Vec<Uuid> = batches.iter().flat_map(|b| b.ids.clone()).collect();
    sys.wait_terminal(&tracked, Duration::from_secs(180)).await;
    let known: HashSet<Uuid> = tracked.iter().copied().collect();
    // Jobs in the store that no answer gave the client: a submit stored twice (an attempt
    // stored but unanswered, then another attempt stored again). Every attempt of a submit
    // carries its submit id, so there must be none.
    let untracked: Vec<Uuid> = stored_ids(&sys)
        .await
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    sys.wait_terminal(&untracked, Duration::from_secs(60)).await;
    // When the jobs stored twice were stored: in which fault's window.
    let mut untracked_by_fault: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &untracked {
        let created = sys.get(*id).await.map_or(0, |r| r.created_at_ms);
        let during = faults
            .iter()
            .find(|f| (f.injected_ms..=f.recovered_ms).contains(&created))
            .map_or("no fault", |f| f.kind.name());
        *untracked_by_fault.entry(during).or_default() += 1;
    }
    // Refusals by code and by the fault whose window they fell in.
    let mut refusals_by_fault: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (at, code) in &tally.refusals {
        let during = faults
            .iter()
            .find(|f| (f.injected_ms..=f.recovered_ms).contains(at))
            .map_or("no fault", |f| f.kind.name());
        *refusals_by_fault.entry((code, during)).or_default() += 1;
    }
    let all: Vec<Uuid> = tracked.iter().chain(&untracked).copied().collect();
    let must_succeed: Vec<Uuid> = batches
        .iter()
        .filter(|b| b.stable && !b.matrix)
        .flat_map(|b| b.ids.clone())
        .collect();
    let audit = sys.audit(&all, &must_succeed).await;
    let last_epoch = leader_of(&sys.settled().await).epoch.unwrap_or(0);
    let logs: Vec<String> = sys.dispatchers_mut().map(|d| d.log()).collect();
    gone += logs.iter().map(|l| stable_gone(&sys, l)).sum::<usize>();
    // Attempts that found their submit stored already (by the replicas running at the end).
    let replayed: usize = logs
        .iter()
        .map(|l| {
            l.matches("a retried submit answered from its first")
                .count()
        })
        .sum();

    // Submit → terminal of the load's noops and pings (a matrix's jobs wait for their round).
    let load_jobs: Vec<(u64, Uuid)> = batches
        .iter()
        .filter(|b| !b.matrix)
        .flat_map(|b| b.ids.iter().map(move |id| (b.first_try_ms, *id)))
        .collect();
    let records: Vec<(u64, JobRecord)> = futures::stream::iter(load_jobs)
        .map(|(first, id)| {
            let sys = &sys;
            async move { Some((first, sys.get(id).await?)) }
        })
        .buffer_unordered(64)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    // Per kind: a noop shows the control plane alone; a ping also waits while a matrix's iperf3
    // or latency job holds its nodes (the scheduler's exclusivity, by design).
    let mut latency_lines = Vec::new();
    for kind in ["noop", "ping"] {
        let mut of_kind: Vec<&(u64, JobRecord)> = records
            .iter()
            .filter(|(_, r)| r.params.kind().as_str() == kind)
            .collect();
        let l = Latency::of(&of_kind, &faults);
        latency_lines.push(format!(
            "{kind}: worst during a fault {} ms (by fault {:?}), outside faults median {} ms \
             max {} ms ({} jobs)",
            l.worst_by_fault.values().copied().max().unwrap_or(0),
            l.worst_by_fault,
            median(&mut l.quiet.clone()),
            l.quiet.iter().copied().max().unwrap_or(0),
            of_kind.len()
        ));
        // The slowest jobs' timelines, in ms since the load started.
        of_kind.sort_by_key(|(first, r)| {
            std::cmp::Reverse(r.finished_at_ms.unwrap_or(0).saturating_sub(*first))
        });
        let at = |ms: Option<u64>| ms.map_or(-1, |ms| ms as i64 - t0_ms as i64);
        for (first, r) in of_kind.iter().take(2) {
            println!(
                "SOAK slow {kind} {} from {}: first try {} created {} dispatched {} started {} \
                 finished {} ms ({}, {} attempts)",
                r.job_id,
                r.source_worker,
                at(Some(*first)),
                at(Some(r.created_at_ms)),
                at(r.dispatched_at_ms),
                at(r.started_at_ms),
                at(r.finished_at_ms),
                r.state.as_str(),
                r.attempts
            );
        }
    }
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut recovery: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &faults {
        *by_kind.entry(f.kind.name()).or_default() += 1;
        let r = recovery.entry(f.kind.name()).or_default();
        *r = (*r).max(f.recovered_ms - f.injected_ms);
    }
    let matrices = batches.iter().filter(|b| b.matrix).count();
    let matrix_jobs: usize = batches
        .iter()
        .filter(|b| b.matrix)
        .map(|b| b.ids.len())
        .sum();
    println!(
        "FIGURES soak: seed {seed}; {:.0} s of load, {} faults {by_kind:?}; jobs submitted {} \
         ({} noop/ping, {matrix_jobs} in {matrices} matrices); stored twice (stored, never \
         acknowledged) {} (during {untracked_by_fault:?}), retries answered from their first \
         attempt {replayed} (logs of the last replicas); refused and retried {:?} (by code and fault \
         {refusals_by_fault:?}), unanswered and retried {}; lost {} duplicated {} \
         misreported {} not-terminal {} stable-not-succeeded {}; states {:?}; submit→terminal \
         {}; recovery max by fault {recovery:?} ms; leader changes {} (epoch {first_epoch} → \
         {last_epoch}); never-killed workers declared gone by a dispatcher {gone} times",
        soaked.as_secs_f64(),
        faults.len(),
        tracked.len(),
        tracked.len() - matrix_jobs,
        untracked.len(),
        tally.refused,
        tally.unanswered,
        audit.missing.len(),
        audit.duplicated.len(),
        audit.misreported.len(),
        audit.not_terminal.len(),
        audit.not_succeeded.len(),
        audit.by_state,
        latency_lines.join("; "),
        last_epoch - first_epoch,
    );
    assert!(
        tally.abandoned.is_empty(),
        "submits never accepted (seed {seed}): {:?}\n{}",
        tally.abandoned,
        sys.logs()
    );
    assert!(!faults.is_empty(), "no fault was injected: {plan:?}");
    audit.check(&format!("soak (PODPERF_SOAK_SEED={seed})"), &sys);
    assert!(
        untracked.is_empty(),
        "{} jobs stored but never acknowledged to the client — a submit stored twice (seed \
         {seed}; stored during {untracked_by_fault:?}): {:?}\n{}",
        untracked.len(),
        &untracked[..untracked.len().min(10)],
        sys.logs()
    );
}
