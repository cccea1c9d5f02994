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
//! - [`ingest`]: results stream → Redis; [`store`]: the Redis store.

pub mod api;
pub mod config;
pub mod deliver;
pub mod engine;
pub mod ingest;
pub mod membership;
pub mod planner;
pub mod resolve;
pub mod runs;
pub mod scheduler;
pub mod setup;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use async_nats::Client;
use tokio_util::sync::CancellationToken;

pub use config::DispatcherConfig;
pub use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error("cannot watch the liveness bucket: {0}")]
    Watch(String),
    #[error("cannot create the results consumer: {0}")]
    Consumer(String),
    #[error("cannot resume outstanding jobs: {0}")]
    Recover(#[from] store::StoreError),
    #[error("cannot serve the API: {0}")]
    Api(String),
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
pub async fn run_with_reconnects(
    client: Client,
    store: Store,
    cfg: DispatcherConfig,
    shutdown: impl Future<Output = ()>,
    reconnects: tokio::sync::watch::Receiver<u64>,
) -> Result<()> {
    let js = async_nats::jetstream::new(client.clone());
    let bucket = setup::workers_bucket(&js, &cfg).await?;
    let results = setup::results_stream(&js, &cfg).await?;
    let stop = CancellationToken::new();

    let members = membership::Members::default();
    let (member_tx, mut member_rx) = tokio::sync::mpsc::unbounded_channel();
    let resync = Arc::new(tokio::sync::Notify::new());
    let watcher = membership::start(
        bucket,
        members.clone(),
        member_tx,
        cfg.worker_ttl,
        resync.clone(),
        stop.clone(),
    )
    .await
    .map_err(|e| Error::Watch(e.to_string()))?;
    let repull = Arc::new(tokio::sync::Notify::new());
    let keeper = tokio::spawn(keep_up(
        js.clone(),
        cfg.clone(),
        reconnects,
        [resync, repull.clone()],
        stop.clone(),
    ));

    let (mut engine, handle) = engine::Engine::new(
        client.clone(),
        results.clone(),
        store.clone(),
        members.clone(),
        cfg.clone(),
    );
    let resumed = engine.recover().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed outstanding jobs");
    }
    let engine_task = tokio::spawn(engine.run(stop.clone()));

    // Membership events feed the engine; new workers are remembered in the store.
    let forward = {
        let (tx, store) = (handle.sender(), store.clone());
        tokio::spawn(async move {
            while let Some(ev) = member_rx.recv().await {
                if let membership::MemberEvent::Up(info) = &ev {
                    if let Err(err) = store.remember_worker(info).await {
                        tracing::warn!(%err, "could not remember the worker");
                    }
                }
                let _ = tx.send(engine::Input::Member(ev));
            }
        })
    };

    ingest::consumer(&results)
        .await
        .map_err(|err| Error::Consumer(err.to_string()))?;
    let ingest_task = tokio::spawn(ingest::run(
        client.clone(),
        results.clone(),
        store.clone(),
        handle.sender(),
        repull,
        stop.clone(),
    ));

    let api = Arc::new(api::Api {
        members,
        store,
        engine: handle,
        cfg,
    });
    let mut api_task = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            api::serve(&client, api, stop)
                .await
                .map_err(|e| e.to_string())
        })
    };
    tracing::info!("dispatcher running");

    tokio::select! {
        _ = shutdown => {}
        res = &mut api_task => {
            stop.cancel();
            let msg = match res {
                Ok(Ok(())) => "the API service stopped".to_string(),
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
            };
            return Err(Error::Api(msg));
        }
    }
    tracing::info!("shutting down");
    stop.cancel();
    let _ = tokio::join!(engine_task, ingest_task, watcher, api_task, keeper);
    forward.abort();
    podperf_connect::drain(&client).await;
    Ok(())
}

/// After every reconnection: re-creates the bucket and the stream if the server lost them (both
/// idempotent), then has the membership view re-read and the results pull restarted (a pull
/// request held by a server that died would otherwise only be noticed by missed heartbeats).
async fn keep_up(
    js: async_nats::jetstream::Context,
    cfg: DispatcherConfig,
    mut reconnects: tokio::sync::watch::Receiver<u64>,
    // The membership watch and the results pull: both are re-established after the check.
    restart: [Arc<tokio::sync::Notify>; 2],
    stop: CancellationToken,
) {
    reconnects.mark_unchanged();
    loop {
        tokio::select! {
            changed = reconnects.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
        tracing::info!("reconnected to NATS: checking the bucket and the stream");
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            let ensured = async {
                setup::workers_bucket(&js, &cfg).await?;
                setup::results_stream(&js, &cfg).await
            };
            match ensured.await {
                Ok(_) => break,
                Err(err) => tracing::warn!(%err, "cannot re-establish JetStream state; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
        for r in &restart {
            r.notify_one();
        }
    }
}
