//! Result ingest: a durable pull consumer on the results stream. Each event or result is written to
//! Redis first and acknowledged after, so a Redis outage delays results but loses none.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use podperf_protocol::names::{EVENTS_PREFIX, RESULTS_CONSUMER, RESULTS_PREFIX};
use podperf_protocol::outcome::{JobEvent, JobOutcome, JobState};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::done::Finisher;
use crate::engine::Input;
use crate::store::{Applied, Store, StoreError, Transition};

/// Why the results consumer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Creating (or looking up) the durable consumer failed.
    #[error("durable consumer {RESULTS_CONSUMER}: {0}")]
    Create(#[source] jetstream::stream::ConsumerError),
    /// Starting to pull from it failed.
    #[error("pulling from durable consumer {RESULTS_CONSUMER}: {0}")]
    Pull(#[source] consumer::StreamError),
}

/// Creates (or reuses) the durable consumer.
pub async fn consumer(
    stream: &jetstream::stream::Stream,
) -> Result<consumer::PullConsumer, ConsumerError> {
    stream
        .get_or_create_consumer(
            RESULTS_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(RESULTS_CONSUMER.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                // Redelivery is harmless (writes are idempotent): keep the wait after a crash short.
                ack_wait: Duration::from_secs(5),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(ConsumerError::Create)
}

/// The durable consumer's messages, from a pull started now.
async fn pull(stream: &jetstream::stream::Stream) -> Result<consumer::pull::Stream, ConsumerError> {
    let consumer = consumer(stream).await?;
    consumer.messages().await.map_err(ConsumerError::Pull)
}

/// Consumes until `shutdown`; tells the engine about every job that reached a terminal state.
/// The consumer is (re)created whenever pulling fails (e.g. a restarted server lost it), and the
/// pull is restarted whenever `repull` is notified (after a reconnection).
pub async fn run(
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
    store: Store,
    engine: mpsc::UnboundedSender<Input>,
    repull: std::sync::Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let finisher = Finisher::new(store.clone(), client);
    loop {
        let mut messages = match pull(&stream).await {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(%err, "cannot pull results; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        loop {
            let msg = tokio::select! {
                m = messages.next() => m,
                _ = repull.notified() => break,
                _ = shutdown.cancelled() => return,
            };
            let msg = match msg {
                Some(Ok(m)) => m,
                Some(Err(err)) => {
                    tracing::warn!(%err, "results consumer error");
                    continue;
                }
                None => break,
            };
            // Messages are written concurrently: each write is one atomic script that orders
            // itself (a late `started` never undoes a result), so only the number in flight
            // needs a bound.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (finisher, store, engine) = (finisher.clone(), store.clone(), engine.clone());
            tokio::spawn(async move {
                handle(&finisher, &store, &engine, &msg).await;
                drop(permit);
            });
        }
    }
}

/// Messages being written to the store at once.
const IN_FLIGHT: usize = 64;

/// Stores one message (a terminal result is announced to waiting clients as it is stored),
/// tells the engine about a terminal result, acknowledges the message (or asks for it again).
async fn handle(
    finisher: &Finisher,
    store: &Store,
    engine: &mpsc::UnboundedSender<Input>,
    msg: &jetstream::Message,
) {
    match apply(finisher, store, &msg.subject, &msg.payload).await {
        Ok(Some((job_id, applied))) => {
            // Stale: the job was terminal already. A result from the wrong worker, or for an
            // unknown job, leaves the engine's tracking alone.
            if matches!(applied, Applied::Yes | Applied::Stale) {
                let _ = engine.send(Input::Finished { job_id });
            }
            ack(msg, AckKind::Ack).await;
        }
        Ok(None) => ack(msg, AckKind::Ack).await,
        Err(err) => {
            tracing::warn!(%err, subject = %msg.subject, "store write failed; redelivering");
            ack(msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
    }
}

async fn ack(msg: &jetstream::Message, kind: AckKind) {
    if let Err(err) = msg.ack_with(kind).await {
        tracing::warn!(%err, "ack failed (the message will be redelivered)");
    }
}

/// Writes one message; for a result, returns the job and whether it was stored.
async fn apply(
    finisher: &Finisher,
    store: &Store,
    subject: &str,
    payload: &[u8],
) -> Result<Option<(Uuid, Applied)>, StoreError> {
    if subject.starts_with(RESULTS_PREFIX) {
        let outcome = match serde_json::from_slice::<JobOutcome>(payload) {
            Ok(o) => o,
            Err(err) => match undecodable(subject, payload, &err) {
                Some(o) => o,
                None => {
                    tracing::warn!(%subject, %err, "ignoring a malformed result");
                    return Ok(None);
                }
            },
        };
        let job_id = outcome.job_id;
        let t = result_transition(outcome);
        let applied = finisher.apply(job_id, &t).await?;
        log_applied(job_id, "result", applied);
        return Ok(Some((job_id, applied)));
    }
    if subject.starts_with(EVENTS_PREFIX) {
        let Ok(event) = serde_json::from_slice::<JobEvent>(payload) else {
            tracing::warn!(%subject, "ignoring a malformed event");
            return Ok(None);
        };
        let t = Transition {
            started_at_ms: Some(event.at_ms),
            expect_worker: Some(event.worker_id),
            ..Transition::to(JobState::Running)
        };
        log_applied(
            event.job_id,
            "started event",
            store.transition(event.job_id, &t).await?,
        );
    }
    Ok(None)
}

/// A result that names its job and worker but does not decode (a worker bug, an old version)
/// still ends the job: `failed` with `invalid_output`, instead of leaving it to time out.
fn undecodable(subject: &str, payload: &[u8], err: &serde_json::Error) -> Option<JobOutcome> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let job_id: Uuid = v["job_id"].as_str()?.parse().ok()?;
    if subject.strip_prefix(RESULTS_PREFIX) != Some(job_id.to_string().as_str()) {
        return None;
    }
    let now = podperf_protocol::now_ms();
    Some(JobOutcome {
        job_id,
        worker_id: v["worker_id"].as_str()?.to_string(),
        status: podperf_protocol::outcome::OutcomeStatus::Failed,
        reason: Some(podperf_protocol::outcome::FailureReason::InvalidOutput),
        message: Some(format!("the worker's result could not be decoded: {err}")),
        result: None,
        raw_output: None,
        started_at_ms: v["started_at_ms"].as_u64().unwrap_or(now),
        finished_at_ms: v["finished_at_ms"].as_u64().unwrap_or(now),
    })
}

fn result_transition(o: JobOutcome) -> Transition {
    Transition {
        state: Some(o.status.into()),
        started_at_ms: Some(o.started_at_ms),
        finished_at_ms: Some(o.finished_at_ms),
        reason: o.reason,
        message: o.message,
        result: o.result,
        raw_output: o.raw_output,
        expect_worker: Some(o.worker_id),
        ..Default::default()
    }
}

fn log_applied(job_id: Uuid, what: &str, applied: Applied) {
    match applied {
        Applied::Yes => tracing::debug!(%job_id, what, "stored"),
        Applied::Stale => tracing::debug!(%job_id, what, "ignored: the job is already past it"),
        Applied::Missing => tracing::warn!(%job_id, what, "ignored: unknown job"),
        Applied::WrongWorker => {
            tracing::warn!(%job_id, what, "ignored: sent by a worker that is not the job's source")
        }
    }
}
