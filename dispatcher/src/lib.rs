//! The podperf dispatcher: accepts jobs over the NATS service API, checks them against the live
//! workers, schedules them so bandwidth tests do not disturb each other, delivers them to workers,
//! follows each to exactly one terminal state, and keeps the job/result store in Redis.
//!
//! # Layout
//! - [`config`]: the validated configuration.
//! - [`setup`]: the KV bucket and results stream, created idempotently.
//! - [`membership`]: the live-worker view from watching the liveness bucket.
//! - [`api`]: the `podperf` micro service; [`resolve`]: worker names → workers.
//! - [`engine`]: the job table, deadlines, worker loss, cancellation; [`scheduler`]: who may run;
//!   [`deliver`]: request/reply delivery with retries.
//! - [`sweep`]: a sweep's targets resolved at admission.
//! - [`adaptive`]: `--samples auto`, adding samples to a matrix run until it converges.
//! - [`ingest`]: results stream → Redis; [`store`]: the Redis store.
//! - [`schedules`]: the schedules' endpoints and their runner (the leader starts their runs).
//! - [`lease`]: the leader lease; [`leader`]: standby and leader terms (only the leader runs the
//!   engine and ingest; every replica serves the API); [`status`]: `podperf status`.

pub mod adaptive;
pub mod api;
pub mod config;
pub mod deliver;
pub mod engine;
pub mod ingest;
pub mod leader;
pub mod lease;
pub mod membership;
pub mod planner;
pub mod resolve;
pub mod runs;
pub mod scheduler;
pub mod schedules;
pub mod setup;
pub mod status;
pub mod store;
pub mod sweep;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use backon::{ExponentialBuilder, Retryable};
use podperf_connect::{ErrorChain, Supervisor};
use tokio_util::sync::CancellationToken;

pub use config::DispatcherConfig;
pub use store::Store;

/// How long the tasks have to stop once shutdown is asked for (or one of them failed).
pub(crate) const STOP_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error("cannot watch the liveness bucket")]
    Watch(#[source] async_nats::jetstream::kv::WatchError),
    /// Boxed: the ingest module's error type is its own business.
    #[error("cannot create the results consumer")]
    Consumer(#[source] podperf_connect::BoxError),
    #[error("cannot subscribe to {0}")]
    Subscribe(&'static str, #[source] async_nats::SubscribeError),
    #[error("cannot resume outstanding jobs")]
    Recover(#[from] store::StoreError),
    /// A long-lived task (engine, ingest, API, membership…) ended or failed.
    #[error(transparent)]
    Task(#[from] podperf_connect::TaskFailed),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the dispatcher until `shutdown` resolves.
pub async fn run(
    client: Client,
    store: Store,
    cfg: DispatcherConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (_keep, reconnects) = tokio::sync::watch::channel(0);
    run_with_reconnects(client, store, cfg, shutdown, reconnects).await
}

/// [`run`], re-establishing the bucket, the stream and the membership view each time
/// `reconnects` changes (the NATS client reconnected: the server may have restarted and lost
/// what it kept in memory). See `podperf_connect::NatsArgs::connect_watched`.
///
/// Every long-lived task runs under one [`Supervisor`]: if one ends before `shutdown` (returns,
/// fails or panics), the others are stopped and its failure is returned ([`Error::Task`]).
pub async fn run_with_reconnects(
    client: Client,
    store: Store,
    cfg: DispatcherConfig,
    shutdown: impl Future<Output = ()>,
    reconnects: tokio::sync::watch::Receiver<u64>,
) -> Result<()> {
    let store = store.with_submit_id_ttl(cfg.submit_id_ttl);
    let js = async_nats::jetstream::new(client.clone());
    let bucket = setup::workers_bucket(&js, &cfg).await?;
    let results = setup::results_stream(&js, &cfg).await?;
    let dispatchers = setup::dispatchers_bucket(&js, &cfg).await?;
    let schedules = setup::schedules_bucket(&js, &cfg).await?;
    let stop = CancellationToken::new();
    let mut tasks = Supervisor::new();

    let members = membership::Members::default();
    let (member_tx, member_rx) = tokio::sync::mpsc::unbounded_channel();
    let resync = Arc::new(tokio::sync::Notify::new());
    membership::start(
        &mut tasks,
        bucket,
        members.clone(),
        member_tx,
        cfg.worker_ttl,
        resync.clone(),
        stop.clone(),
    )
    .await
    .map_err(Error::Watch)?;
    let repull = Arc::new(tokio::sync::Notify::new());
    tasks.spawn(
        "reconnect-keeper",
        keep_up(
            js.clone(),
            cfg.clone(),
            reconnects,
            [resync, repull.clone()],
            stop.clone(),
        ),
    );

    let leadership = leader::Leadership::new(cfg.identity.info(
        podperf_protocol::status::Role::Standby,
        podperf_protocol::now_ms(),
        None,
    ));
    tasks.spawn(
        "member-events",
        forward_members(member_rx, store.clone(), leadership.clone()),
    );
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let ctx = leader::Ctx {
        client: client.clone(),
        store: store.clone(),
        members: members.clone(),
        cfg: cfg.clone(),
        results,
        bucket: dispatchers.clone(),
        repull,
        leadership: leadership.clone(),
    };
    tasks.spawn("leadership", leader::elect(ctx, ready_tx, stop.clone()));
    // The API once this replica knows its role (a lone dispatcher serves it as the leader, with
    // the outstanding jobs resumed); bounded, in case taking the lead hangs on the store.
    let _ = tokio::time::timeout(cfg.leader_ttl + Duration::from_secs(5), ready).await;

    let api = Arc::new(api::Api {
        members,
        store,
        leadership,
        client: client.clone(),
        js: js.clone(),
        dispatchers,
        schedules,
        schedules_changed: Arc::new(tokio::sync::Notify::new()),
        cfg,
    });
    tasks.spawn("schedules", schedules::run(api.clone(), stop.clone()));
    {
        let (client, stop) = (client.clone(), stop.clone());
        tasks.spawn("api", async move { api::serve(&client, api, stop).await });
    }
    tracing::info!("dispatcher running");

    let outcome = tasks.watch(shutdown).await;
    if outcome.is_ok() {
        tracing::info!("shutting down");
    }
    stop.cancel();
    let stopped = tasks.join(STOP_WITHIN).await;
    podperf_connect::drain(&client).await;
    Ok(outcome.and(stopped).map_err(leader_task)?)
}

/// A leader's task (engine, ingest…) failing ends the `leadership` task with that task's
/// failure: named after the task that failed, as when every task ran side by side.
fn leader_task(failed: podperf_connect::TaskFailed) -> podperf_connect::TaskFailed {
    use podperf_connect::{TaskEnd, TaskFailed};
    let TaskFailed { task, end } = failed;
    match end {
        TaskEnd::Failed(boxed) if task == "leadership" => match boxed.downcast::<Error>() {
            Ok(err) => match *err {
                Error::Task(inner) => inner,
                other => TaskFailed {
                    task,
                    end: TaskEnd::Failed(Box::new(other)),
                },
            },
            Err(boxed) => TaskFailed {
                task,
                end: TaskEnd::Failed(boxed),
            },
        },
        end => TaskFailed { task, end },
    }
}

/// Membership events feed the engine; new workers are remembered in the store. Ends when the
/// membership task does (it holds the sender).
async fn forward_members(
    mut events: tokio::sync::mpsc::UnboundedReceiver<membership::MemberEvent>,
    store: Store,
    leadership: Arc<leader::Leadership>,
) {
    while let Some(ev) = events.recv().await {
        if let membership::MemberEvent::Up(info) = &ev {
            if let Err(err) = store.remember_worker(info).await {
                tracing::warn!(err = %ErrorChain(&err), "could not remember the worker");
            }
        }
        // Only the leader's engine follows workers (a new leader reads the live ones at start).
        if let Some(engine) = leadership.engine() {
            let _ = engine.sender().send(engine::Input::Member(ev));
        }
    }
}

/// After every reconnection: re-creates the bucket and the stream if the server lost them (both
/// idempotent; retried from 200 ms, doubling, up to every 5 s, until done or stopped), then has
/// the membership view re-read and the results pull restarted (a pull request held by a server
/// that died would otherwise only be noticed by missed heartbeats).
async fn keep_up(
    js: async_nats::jetstream::Context,
    cfg: DispatcherConfig,
    mut reconnects: tokio::sync::watch::Receiver<u64>,
    // The membership watch and the results pull: both are re-established after the check.
    restart: [Arc<tokio::sync::Notify>; 2],
    stop: CancellationToken,
) {
    reconnects.mark_unchanged();
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    loop {
        tokio::select! {
            changed = reconnects.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
        tracing::info!("reconnected to NATS: checking the bucket and the stream");
        let (js, cfg) = (&js, &cfg);
        let ensure = move || async move {
            setup::workers_bucket(js, cfg).await?;
            setup::dispatchers_bucket(js, cfg).await?;
            setup::schedules_bucket(js, cfg).await?;
            setup::results_stream(js, cfg).await
        };
        let ensured = ensure.retry(backoff).notify(|err, _| {
            tracing::warn!(err = %ErrorChain(err), "cannot re-establish JetStream state; retrying")
        });
        tokio::select! {
            _ = ensured => {}
            _ = stop.cancelled() => return,
        }
        for r in &restart {
            r.notify_one();
        }
    }
}
