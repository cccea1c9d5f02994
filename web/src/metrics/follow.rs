//! What feeds [`Metrics`], each a task that runs until shutdown and starts over after an error:
//!
//! - the results stream `PODPERF_RESULTS` through an **ordered** JetStream consumer of
//!   `podperf.results.>` (ephemeral: nothing is left on the server when podperf-web goes; the
//!   client re-creates it from the last sequence seen after a gap or a reconnection, so no result
//!   is counted twice or skipped while the server keeps it). It delivers **new** results only:
//!   the series are counters of what happened since this process started, as Prometheus expects
//!   of a restarted exporter (replaying the stream would add past probes at once);
//! - the workers bucket (a watch with history: the live workers first, then every change);
//! - the dispatcher's done notices (`podperf.done.>`): every terminal state, the dispatcher's
//!   own verdicts (timed out, worker lost, undeliverable, cancelled) included, which never reach
//!   the stream (a sweep that ended so ends its source's part of a round); and iperf3 results
//!   with their target (the stream's result does not name it);
//! - the dispatcher's status (the queue depth) every [`STATUS_EVERY`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv::Operation};
use futures::StreamExt;
use podperf_protocol::api::JobRecord;
use podperf_protocol::names::{RESULTS_PREFIX, RESULTS_STREAM, WORKERS_BUCKET};
use podperf_protocol::outcome::JobOutcome;
use podperf_protocol::worker::WorkerInfo;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// How often the queue depth is asked for.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Set once the results consumer and the bucket watch are both in place.
#[derive(Default)]
pub struct Following {
    pub results: AtomicBool,
    pub workers: AtomicBool,
    /// The done notices are subscribed (the live-event hub's `?wait=` requests need them).
    pub done: AtomicBool,
}

impl Following {
    pub fn all(&self) -> bool {
        self.results.load(Ordering::Acquire) && self.workers.load(Ordering::Acquire)
    }
}

/// Sleeps [`RETRY`]; false on shutdown.
async fn pause(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(RETRY) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// Follows the results stream until `shutdown`.
pub async fn results(
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    following: Arc<Following>,
    shutdown: CancellationToken,
) {
    loop {
        match results_once(&js, &metrics, &following, &shutdown).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(%err, "following the results stream; starting over"),
        }
        if !pause(&shutdown).await {
            return;
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Ok on shutdown; an error when the consumer cannot be had or its messages end.
async fn results_once(
    js: &jetstream::Context,
    metrics: &Arc<Metrics>,
    following: &Following,
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    let stream = js.get_stream(RESULTS_STREAM).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{RESULTS_PREFIX}>"),
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    following.results.store(true, Ordering::Release);
    tracing::info!("metrics: following the results stream");
    loop {
        let msg = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.cancelled() => return Ok(()),
        };
        match msg {
            Some(Ok(msg)) => match serde_json::from_slice::<JobOutcome>(&msg.payload) {
                Ok(outcome) => {
                    // A round's evaluation can take a while: off the async threads.
                    let metrics = metrics.clone();
                    tokio::task::spawn_blocking(move || metrics.observe(outcome)).await?;
                }
                Err(err) => tracing::debug!(subject = %msg.subject, %err, "not a result"),
            },
            Some(Err(err)) => return Err(err.into()),
            None => return Err("the consumer's messages ended".into()),
        }
    }
}

/// Follows the workers bucket until `shutdown`.
pub async fn workers(
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    following: Arc<Following>,
    shutdown: CancellationToken,
) {
    loop {
        match workers_once(&js, &metrics, &following, &shutdown).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(%err, "watching the workers bucket; starting over"),
        }
        if !pause(&shutdown).await {
            return;
        }
    }
}

/// One watch: the bucket's current keys first (workers not among them left meanwhile), then
/// every change.
async fn workers_once(
    js: &jetstream::Context,
    metrics: &Arc<Metrics>,
    following: &Following,
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    let kv = js.get_key_value(WORKERS_BUCKET).await?;
    let mut watch = kv.watch_with_history(">").await?;
    // Workers known from before that the watch does not list (once caught up) left meanwhile.
    let mut unseen = Some(metrics.worker_ids());
    if kv.status().await?.values() == 0 {
        if let Some(left) = unseen.take() {
            gone(metrics, left.into_iter().collect()).await?;
        }
    }
    following.workers.store(true, Ordering::Release);
    loop {
        let entry = tokio::select! {
            e = watch.next() => e,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let entry = match entry {
            Some(Ok(e)) => e,
            Some(Err(err)) => return Err(err.into()),
            None => return Err("the watch ended".into()),
        };
        if let Some(unseen) = unseen.as_mut() {
            unseen.remove(&entry.key);
        }
        match entry.operation {
            Operation::Put => match serde_json::from_slice::<WorkerInfo>(&entry.value) {
                Ok(info) => metrics.worker_up(info),
                Err(err) => tracing::debug!(key = %entry.key, %err, "not a worker's info"),
            },
            Operation::Delete | Operation::Purge => gone(metrics, vec![entry.key]).await?,
        }
        if entry.delta == 0 {
            if let Some(left) = unseen.take() {
                gone(metrics, left.into_iter().collect()).await?;
            }
        }
    }
}

/// Workers that left (off the async threads: one can complete a sweep round).
async fn gone(metrics: &Arc<Metrics>, ids: Vec<String>) -> Result<(), BoxError> {
    let metrics = metrics.clone();
    tokio::task::spawn_blocking(move || ids.iter().for_each(|id| metrics.worker_gone(id))).await?;
    Ok(())
}

/// Counts terminal jobs from the done notices until `shutdown`, and passes each record on to
/// `tx` (the live-event hub): one subscription for both — at 1,000 nodes a round's notices are
/// ≈ 200 MB, each copy of them costs nats-server and this process.
pub async fn done(
    client: podperf_client::Client,
    metrics: Arc<Metrics>,
    following: Arc<Following>,
    tx: broadcast::Sender<Arc<JobRecord>>,
    shutdown: CancellationToken,
) {
    loop {
        match client.done_notices().await {
            Ok(mut notices) => {
                following.done.store(true, Ordering::Release);
                loop {
                    tokio::select! {
                        rec = notices.next() => match rec {
                            Some(rec) => {
                                let rec = Arc::new(rec);
                                let _ = tx.send(rec.clone()); // the hub is not listening: no matter
                                // A failed sweep can complete a round: off the async threads.
                                let metrics = metrics.clone();
                                if tokio::task::spawn_blocking(move || metrics.job_done(&rec))
                                    .await
                                    .is_err()
                                {
                                    tracing::warn!("counting a done notice panicked");
                                }
                            }
                            None => break,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "cannot follow the done notices; retrying"),
        }
        following.done.store(false, Ordering::Release);
        if !pause(&shutdown).await {
            return;
        }
    }
}

/// Reads the queue depth and the schedules every [`STATUS_EVERY`] until `shutdown`.
pub async fn status(
    client: podperf_client::Client,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match client.status().await {
            Ok(s) => metrics.set_queue_depth(Some(s.queue_depth)),
            Err(err) => {
                tracing::debug!(%err, "no status from the dispatcher");
                metrics.set_queue_depth(None);
            }
        }
        // Schedules: kept as they were while the dispatcher does not answer.
        match client.schedules().await {
            Ok(list) => metrics.set_schedules(&list),
            Err(err) => tracing::debug!(%err, "no schedules from the dispatcher"),
        }
    }
}
