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
    let js = async_nats::jetstream::new(client.clone());
    let bucket = setup::workers_bucket(&js, &cfg).await?;
    let results = setup::results_stream(&js, &cfg).await?;
    let stop = CancellationToken::new();

    let members = membership::Members::default();
    let (member_tx, mut member_rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = membership::start(bucket, members.clone(), member_tx, stop.clone())
        .await
        .map_err(|e| Error::Watch(e.to_string()))?;

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

    let consumer = ingest::consumer(&results).await.map_err(Error::Consumer)?;
    let ingest_task = tokio::spawn(ingest::run(
        client.clone(),
        consumer,
        store.clone(),
        handle.sender(),
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
    let _ = tokio::join!(engine_task, ingest_task, watcher, api_task);
    forward.abort();
    if let Err(err) = client.drain().await {
        tracing::warn!(%err, "draining the NATS connection failed");
    }
    Ok(())
}
