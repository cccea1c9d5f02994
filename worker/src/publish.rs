//! Publishes events and results to the results stream, retrying until JetStream acknowledges,
//! so a finished measurement is durable before the worker forgets it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Publishes `value` on `subject` until acknowledged, retrying from 50 ms, doubling, up to every
/// 2 s. `msg_id` makes retries idempotent inside the stream's duplicate window. Gives up only
/// when `give_up` fires (the end of the shutdown grace). Returns whether the message was stored.
pub async fn durably<T: Serialize>(
    js: &jetstream::Context,
    subject: String,
    msg_id: String,
    value: &T,
    give_up: &CancellationToken,
) -> bool {
    let payload: bytes::Bytes = serde_json::to_vec(value)
        .expect("wire types serialise")
        .into();
    let attempt = AtomicU32::new(0);
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times();
    // An attempt in flight is never cut short (the message may be stored meanwhile); a wait
    // between attempts is, and no attempt follows once `give_up` has fired.
    let published = (|| publish_once(js, &subject, &msg_id, payload.clone()))
        .retry(backoff)
        .sleep({
            let give_up = give_up.clone();
            move |delay| {
                let give_up = give_up.clone();
                async move {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = give_up.cancelled() => {}
                    }
                }
            }
        })
        .when(|_| !give_up.is_cancelled())
        .notify(|err, _| {
            let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_power_of_two() {
                tracing::warn!(%subject, attempt = n, %err, "publish not acknowledged; retrying");
            }
        })
        .await;
    if published.is_err() {
        tracing::error!(%subject, "giving up publishing at shutdown: message lost");
    }
    published.is_ok()
}

async fn publish_once(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    payload: bytes::Bytes,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    let ack = js
        .publish_with_headers(subject.to_string(), headers, payload)
        .await?;
    tokio::time::timeout(Duration::from_secs(5), ack).await??;
    Ok(())
}
