//! Publishes events and results to the results stream, retrying until JetStream acknowledges,
//! so a finished measurement is durable before the worker forgets it.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Publishes `value` on `subject` until acknowledged. `msg_id` makes retries idempotent inside the
/// stream's duplicate window. Gives up only when `give_up` fires (the end of the shutdown grace).
/// Returns whether the message was stored.
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
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match publish_once(js, &subject, &msg_id, payload.clone()).await {
            Ok(()) => return true,
            Err(err) => {
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::warn!(%subject, attempt, %err, "publish not acknowledged; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = give_up.cancelled() => {
                tracing::error!(%subject, "giving up publishing at shutdown: message lost");
                return false;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
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
