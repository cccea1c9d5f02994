//! Liveness: the worker's key in the `podperf-workers` bucket, refreshed with a plain put every
//! heartbeat. The bucket's `max_age` expires the key when the worker stops refreshing it.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use podperf_protocol::names::WORKERS_BUCKET;
use podperf_protocol::worker::WorkerInfo;
use tokio_util::sync::CancellationToken;

/// Waits for the bucket (the dispatcher creates it), retrying until it exists or `shutdown` fires.
pub async fn open_bucket(
    js: &jetstream::Context,
    shutdown: &CancellationToken,
) -> Option<kv::Store> {
    let mut logged = false;
    loop {
        let opened = tokio::select! {
            opened = js.get_key_value(WORKERS_BUCKET) => opened,
            _ = shutdown.cancelled() => return None,
        };
        match opened {
            Ok(store) => return Some(store),
            Err(err) if !logged => {
                tracing::warn!(bucket = WORKERS_BUCKET, %err, "liveness bucket not there yet; retrying");
                logged = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

/// Puts `info` every `period` until `shutdown`, then deletes the key.
pub async fn heartbeat(
    store: kv::Store,
    info: &WorkerInfo,
    period: Duration,
    shutdown: CancellationToken,
) {
    let key = info.worker_id.clone();
    let value: bytes::Bytes = serde_json::to_vec(info)
        .expect("worker info serialises")
        .into();
    let mut failing = false;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let put = tokio::select! {
            put = store.put(&key, value.clone()) => put,
            _ = shutdown.cancelled() => break,
        };
        match put {
            Ok(_) if failing => {
                tracing::info!("liveness refresh works again");
                failing = false;
            }
            Ok(_) => {}
            Err(err) if !failing => {
                tracing::warn!(%err, "liveness refresh failed; retrying every heartbeat");
                failing = true;
            }
            Err(_) => {}
        }
    }
    // Bounded: with NATS unreachable the key simply expires by TTL.
    match tokio::time::timeout(Duration::from_secs(2), store.delete(&key)).await {
        Ok(Ok(())) => tracing::info!(worker_id = %key, "deregistered"),
        Ok(Err(err)) => {
            tracing::warn!(%err, "could not delete the liveness key; it expires by TTL")
        }
        Err(_) => tracing::warn!("deleting the liveness key timed out; it expires by TTL"),
    }
}
