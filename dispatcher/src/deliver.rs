//! Delivers one job to its worker by request/reply, retrying with the same id (the worker runs an
//! id once) on "no responders", timeouts and `at_capacity`, until the job's deadline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use backon::{ExponentialBuilder, Retryable};
use podperf_protocol::command::{JobAssignment, RefusalReason, WorkerCommand, WorkerReply};
use podperf_protocol::now_ms;
use tokio_util::sync::CancellationToken;

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Accepted {
        attempts: u32,
    },
    Refused {
        reason: RefusalReason,
        message: String,
    },
    Undeliverable {
        message: String,
    },
    /// The job ended meanwhile (cancelled, worker lost); nobody waits for this delivery.
    Aborted,
}

/// Delivers `job`, retrying from 50 ms, doubling, up to every 2 s, until the worker accepts or
/// refuses for good, the job's deadline passes, or `cancel` fires.
pub async fn deliver(
    client: &Client,
    subject: String,
    job: &JobAssignment,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Delivery {
    let cmd = WorkerCommand::Run(job.clone());
    let payload: bytes::Bytes = serde_json::to_vec(&cmd).expect("command serialises").into();
    let attempts = AtomicU32::new(0);
    let last = Mutex::new(String::from("no attempt made"));
    let (attempts, last, subject, payload) = (&attempts, &last, &subject, &payload);
    let attempt = move || async move {
        if now_ms() >= job.deadline_at_ms {
            let message = std::mem::take(&mut *last.lock().unwrap());
            return Ok(Delivery::Undeliverable { message });
        }
        let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let request = client.request(subject.clone(), payload.clone());
        let failure = match tokio::time::timeout(timeout, request).await {
            Ok(Ok(msg)) => match serde_json::from_slice::<WorkerReply>(&msg.payload) {
                Ok(WorkerReply::Accepted { job_id, .. }) if job_id == job.job_id => {
                    return Ok(Delivery::Accepted { attempts: n })
                }
                Ok(WorkerReply::Refused {
                    reason, message, ..
                }) if !reason.is_transient() => return Ok(Delivery::Refused { reason, message }),
                Ok(WorkerReply::Refused { message, .. }) => message,
                Ok(other) => format!("unexpected reply {other:?}"),
                Err(err) => format!("malformed reply: {err}"),
            },
            Ok(Err(err)) if err.kind() == RequestErrorKind::NoResponders => {
                "no responders: the worker is not subscribed".into()
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        if n == 1 || n % 10 == 0 {
            tracing::warn!(job_id = %job.job_id, %subject, attempts = n, last = %failure,
                "delivery failed; retrying");
        }
        last.lock().unwrap().clone_from(&failure);
        Err(failure)
    };
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times();
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Delivery::Aborted,
        // Retried until the deadline: an `Err` (the back-off gave up) cannot happen.
        delivery = attempt.retry(backoff) => {
            delivery.unwrap_or_else(|message| Delivery::Undeliverable { message })
        }
    }
}
